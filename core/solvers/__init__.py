"""Solver backends behind one call; both take the same neutral ConicProgram."""

from __future__ import annotations

from core.model.program import ConicProgram
from core.solvers.base import RawSolution, SolverOptions


def run_solver(program: ConicProgram, name: str, options: SolverOptions) -> RawSolution:
    if name == "mosek":
        from core.solvers import mosek_backend
        return mosek_backend.solve(program, options)
    if name == "clarabel":
        from core.solvers import clarabel_backend
        return clarabel_backend.solve(program, options)
    raise ValueError(f"unknown solver backend {name!r}")
