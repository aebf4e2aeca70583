"""The solver-neutral conic program every backend solves.

    minimize    c'x + c0
    subject to  A x + s = b,   s in K = K_1 x K_2 x ... (in row order)

Cones: zero (equalities), nonneg (inequalities A x <= b), soc (||s[1:]|| <= s[0]) and
power (s0^alpha * s1^(1-alpha) >= |s2|). This is Clarabel's standard form; MOSEK's affine
conic form F x + g in K is the same with F = -A, g = b. Duals z live in the dual cone and
are signed so that c + A'z = 0 at the optimum: relaxing row r's b by one unit lowers the
minimum by z_r.

Rows come in named blocks (one per constraint, definition or cost term) so every dual and
slack can be reported against the constraint a trader wrote, with its unit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import scipy.sparse as sp

ConeKind = Literal["zero", "nonneg", "soc", "power"]
BlockRole = Literal["constraint", "definition", "cost", "risk", "bound"]


@dataclass(frozen=True)
class Cone:
    kind: ConeKind
    dim: int
    alpha: float = 0.0  # power cones only


@dataclass
class RowBlock:
    name: str  # the constraint or term it implements, e.g. "max_trade[*]"
    role: BlockRole
    start: int
    stop: int
    cone: ConeKind
    labels: np.ndarray | None = None  # one label per row (an instrument id, a group value)
    side: Literal["upper", "lower", "equal", ""] = ""  # which bound a linear row enforces
    scale: float = 1.0  # row = scale x (constraint in its unit); duals are divided by it

    @property
    def rows(self) -> slice:
        return slice(self.start, self.stop)


@dataclass
class ConicProgram:
    c: np.ndarray
    A: sp.csc_matrix
    b: np.ndarray
    cones: list[Cone]
    var_blocks: dict[str, slice]
    row_blocks: list[RowBlock]
    c0: float = 0.0
    # c and c0 are multiplied by this (utility in bp rather than fractions of NAV), so the
    # solvers' absolute tolerances bite at a useful precision; objective and duals are
    # divided by it on the way out.
    objective_scale: float = 1.0
    integer_vars: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def num_vars(self) -> int:
        return self.A.shape[1]

    @property
    def num_rows(self) -> int:
        return self.A.shape[0]

    def block(self, name: str) -> list[RowBlock]:
        return [b for b in self.row_blocks if b.name == name]

    def check(self) -> None:
        """Shapes and cone dimensions agree; raised as a bug, never as user input."""
        m, n = self.A.shape
        if self.b.shape != (m,) or self.c.shape != (n,):
            raise ValueError(f"shape mismatch: A {self.A.shape}, b {self.b.shape}, "
                             f"c {self.c.shape}")
        if sum(cone.dim for cone in self.cones) != m:
            raise ValueError("cone dimensions do not add up to the number of rows")
        if not (np.isfinite(self.A.data).all() and np.isfinite(self.b).all()
                and np.isfinite(self.c).all()):
            raise ValueError("non-finite coefficient in the program")
