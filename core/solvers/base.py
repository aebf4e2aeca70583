"""What every backend takes and returns, and how `solver = auto` chooses one."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Callable

import numpy as np


class Status(StrEnum):
    OPTIMAL = "optimal"
    NEAR_OPTIMAL = "near_optimal"  # stopped at reduced tolerances; usable, flagged
    INFEASIBLE = "infeasible"
    UNBOUNDED = "unbounded"
    TIME_LIMIT = "time_limit"
    CANCELLED = "cancelled"
    ITERATION_LIMIT = "iteration_limit"
    NUMERICAL_ERROR = "numerical_error"

    @property
    def has_solution(self) -> bool:
        return self in (Status.OPTIMAL, Status.NEAR_OPTIMAL)


@dataclass(frozen=True)
class Progress:
    iteration: int
    primal_objective: float
    dual_objective: float
    gap: float  # relative duality gap
    elapsed_s: float


@dataclass
class SolverOptions:
    time_limit_s: float = 30.0
    verbose: bool = False
    progress: Callable[[Progress], None] | None = None
    cancel: threading.Event | None = None
    tol_gap_rel: float = 1e-8
    tol_feas: float = 1e-8


@dataclass
class RawSolution:
    solver: str
    status: Status
    x: np.ndarray
    s: np.ndarray
    z: np.ndarray  # duals with c + A'z = 0; for INFEASIBLE, the Farkas certificate
    objective: float  # c'x + c0
    iterations: int
    solve_time_s: float
    message: str = ""
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SolverChoice:
    name: str  # "clarabel" or "mosek"
    reason: str  # shown in the status line: "Clarabel: no MOSEK license found"


def mosek_license() -> tuple[Path | None, str]:
    """Where a MOSEK license is, or why none was found (no solve is attempted)."""
    env = os.environ.get("MOSEKLM_LICENSE_FILE")
    candidates = []
    if env:
        # May be a list, a file or a port@host server address.
        for part in env.split(os.pathsep):
            if "@" in part:
                return Path(part), f"MOSEK license server {part} (MOSEKLM_LICENSE_FILE)"
            candidates.append(Path(part).expanduser())
    candidates.append(Path.home() / "mosek" / "mosek.lic")
    for path in candidates:
        if path.is_file():
            return path, f"MOSEK license {path}"
    return None, "no MOSEK license found"


def choose_solver(requested: str) -> SolverChoice:
    if requested == "clarabel":
        return SolverChoice("clarabel", "Clarabel: chosen in the config")
    license_path, why = mosek_license()
    if requested == "mosek":
        if license_path is None:
            from core.errors import ConfigError
            raise ConfigError(f"solver = 'mosek' but {why}", field="solver",
                              fix="set MOSEKLM_LICENSE_FILE or put mosek.lic in ~/mosek, or "
                                  "use solver = 'auto' to fall back to Clarabel")
        return SolverChoice("mosek", f"MOSEK: chosen in the config ({why})")
    if license_path is not None:
        return SolverChoice("mosek", f"MOSEK: {why}")
    return SolverChoice("clarabel", f"Clarabel: {why}")
