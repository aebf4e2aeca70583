"""ModelBuilder: accumulates variables, objective terms and named row blocks.

Terms (risk, costs, constraints) call `variables`, `add_rows` and `cost`; `program()`
assembles one sparse matrix at the end, so building never copies the matrix per term.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from core.model.program import BlockRole, ConeKind, ConicProgram, Cone, RowBlock


@dataclass
class Rows:
    """A block of rows: A[rows, cols] = vals (COO, rows local to the block), b, one cone."""

    rows: np.ndarray
    cols: np.ndarray
    vals: np.ndarray
    b: np.ndarray


def coo(row: np.ndarray, col: np.ndarray, val: np.ndarray | float) -> tuple:
    row = np.asarray(row, dtype=np.int64)
    col = np.asarray(col, dtype=np.int64)
    val = np.broadcast_to(np.asarray(val, dtype=float), row.shape)
    return row, col, val


@dataclass
class ModelBuilder:
    n_vars: int = 0
    var_blocks: dict[str, slice] = field(default_factory=dict)
    _c: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    c0: float = 0.0
    _parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
    _b: list[np.ndarray] = field(default_factory=list)
    cones: list[Cone] = field(default_factory=list)
    blocks: list[RowBlock] = field(default_factory=list)
    n_rows: int = 0

    def variables(self, name: str, n: int) -> np.ndarray:
        """Indices of n new variables, registered under `name`."""
        if name in self.var_blocks:
            raise ValueError(f"variable block {name} defined twice")
        idx = np.arange(self.n_vars, self.n_vars + n, dtype=np.int64)
        self.var_blocks[name] = slice(self.n_vars, self.n_vars + n)
        self.n_vars += n
        return idx

    def cost(self, idx: np.ndarray, coef: np.ndarray | float) -> None:
        """Add coef' x[idx] to the minimized objective."""
        idx = np.asarray(idx, dtype=np.int64)
        coef = np.broadcast_to(np.asarray(coef, dtype=float), idx.shape)
        keep = coef != 0
        if keep.any():
            self._c.append((idx[keep], coef[keep]))

    def add_rows(self, name: str, role: BlockRole, cone: ConeKind, m: int,
                 entries: list[tuple], b: np.ndarray | float, *, labels=None, side="",
                 scale: float | np.ndarray = 1.0, cone_dims: list[int] | None = None,
                 alpha: float = 0.0) -> RowBlock:
        """Rows A x + s = b with s in `cone`.

        entries: (row, col, val) COO triples with rows local to this block. For "soc",
        `cone_dims` splits the block into several cones (default: one cone of m rows);
        for "power", the block is m/3 cones of dimension 3.
        """
        start = self.n_rows
        for row, col, val in entries:
            if len(row):
                self._parts.append((row + start, col, val))
        self._b.append(np.broadcast_to(np.asarray(b, dtype=float), (m,)).copy())
        if cone in ("zero", "nonneg"):
            self.cones.append(Cone(cone, m))
        elif cone == "soc":
            for d in cone_dims or [m]:
                self.cones.append(Cone("soc", d))
        elif cone == "power":
            self.cones.extend([Cone("power", 3, alpha)] * (m // 3))
        self.n_rows += m
        block = RowBlock(name, role, start, start + m, cone,
                         labels=None if labels is None else np.asarray(labels), side=side,
                         scale=scale)
        self.blocks.append(block)
        return block

    def program(self, objective_scale: float = 1.0) -> ConicProgram:
        c = np.zeros(self.n_vars)
        for idx, coef in self._c:
            np.add.at(c, idx, coef)
        c *= objective_scale
        if self._parts:
            rows = np.concatenate([p[0] for p in self._parts])
            cols = np.concatenate([p[1] for p in self._parts])
            vals = np.concatenate([p[2] for p in self._parts])
        else:
            rows = cols = np.zeros(0, dtype=np.int64)
            vals = np.zeros(0)
        A = sp.csc_matrix((vals, (rows, cols)), shape=(self.n_rows, self.n_vars))
        A.sum_duplicates()
        A.eliminate_zeros()
        b = np.concatenate(self._b) if self._b else np.zeros(0)
        # Merge runs of zero / nonneg cones: fewer, larger cones are cheaper for the solvers.
        merged: list[Cone] = []
        for cone in self.cones:
            if merged and cone.kind in ("zero", "nonneg") and merged[-1].kind == cone.kind:
                merged[-1] = Cone(cone.kind, merged[-1].dim + cone.dim)
            else:
                merged.append(cone)
        merged = [cone for cone in merged if cone.dim > 0]
        prog = ConicProgram(c=c, A=A, b=b, cones=merged, var_blocks=dict(self.var_blocks),
                            row_blocks=list(self.blocks), c0=self.c0 * objective_scale,
                            objective_scale=objective_scale)
        prog.check()
        return prog
