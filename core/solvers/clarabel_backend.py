"""Clarabel backend: the program is already in Clarabel's standard form."""

from __future__ import annotations

import dataclasses
import time

import clarabel
import numpy as np
import scipy.sparse as sp

from core.model.program import ConicProgram, Cone
from core.solvers.base import Progress, RawSolution, SolverOptions, Status

_STATUS = {
    "Solved": Status.OPTIMAL,
    "AlmostSolved": Status.NEAR_OPTIMAL,
    "PrimalInfeasible": Status.INFEASIBLE,
    "AlmostPrimalInfeasible": Status.INFEASIBLE,
    "DualInfeasible": Status.UNBOUNDED,
    "AlmostDualInfeasible": Status.UNBOUNDED,
    "MaxTime": Status.TIME_LIMIT,
    "MaxIterations": Status.ITERATION_LIMIT,
    "CallbackTerminated": Status.CANCELLED,
    "NumericalError": Status.NUMERICAL_ERROR,
    "InsufficientProgress": Status.NUMERICAL_ERROR,
    "Unsolved": Status.NUMERICAL_ERROR,
}


def _cones(cones: list[Cone]) -> list:
    out = []
    for cone in cones:
        if cone.kind == "zero":
            out.append(clarabel.ZeroConeT(cone.dim))
        elif cone.kind == "nonneg":
            out.append(clarabel.NonnegativeConeT(cone.dim))
        elif cone.kind == "soc":
            out.append(clarabel.SecondOrderConeT(cone.dim))
        elif cone.kind == "power":
            out.append(clarabel.PowerConeT(cone.alpha))
        else:
            raise ValueError(f"unknown cone {cone.kind}")
    return out


def _settings(options: SolverOptions, static_reg: float | None = None):
    settings = clarabel.DefaultSettings()
    settings.verbose = options.verbose
    settings.time_limit = float(options.time_limit_s)
    settings.tol_gap_rel = options.tol_gap_rel
    settings.tol_gap_abs = options.tol_gap_rel
    settings.tol_feas = options.tol_feas
    settings.presolve_enable = True
    if static_reg is not None:
        settings.static_regularization_constant = static_reg
    return settings


def solve(program: ConicProgram, options: SolverOptions) -> RawSolution:
    """Solve; a near-optimal stop is retried once with lighter static regularization.

    Clarabel's "AlmostSolved" points can be slightly infeasible with an objective better
    than the optimum (seen on small books by the CVXPY cross-check); with the static
    regularization at 1e-10 the same problems solve to full tolerance.
    """
    first = _solve(program, options, None)
    if first.status != Status.NEAR_OPTIMAL:
        return first
    # The retry gets what is left of the time limit, and only if that could be enough for
    # a second pass as long as the first: the limit is the trader's, not per attempt.
    left = options.time_limit_s - first.solve_time_s
    if left < first.solve_time_s:
        first.message += " (no time left to retry for full accuracy)"
        return first
    retry = _solve(program, dataclasses.replace(options, time_limit_s=left), 1e-10,
                   elapsed_before=first.solve_time_s)
    retry.solve_time_s += first.solve_time_s
    retry.iterations += first.iterations
    return retry if retry.status == Status.OPTIMAL else first


def _solve(program: ConicProgram, options: SolverOptions, static_reg: float | None,
           elapsed_before: float = 0.0) -> RawSolution:
    settings = _settings(options, static_reg)
    n = program.num_vars
    P = sp.csc_matrix((n, n))
    solver = clarabel.DefaultSolver(P, program.c, sp.csc_matrix(program.A), program.b,
                                    _cones(program.cones), settings)
    start = time.perf_counter()

    def callback(info) -> bool:
        if options.progress is not None:
            options.progress(Progress(
                iteration=int(info.iterations), primal_objective=float(info.cost_primal)
                + program.c0, dual_objective=float(info.cost_dual) + program.c0,
                gap=float(info.gap_rel),
                elapsed_s=elapsed_before + time.perf_counter() - start))
        return bool(options.cancel is not None and options.cancel.is_set())

    if options.progress is not None or options.cancel is not None:
        solver.set_termination_callback(callback)
    sol = solver.solve()
    elapsed = time.perf_counter() - start
    status = _STATUS.get(str(sol.status), Status.NUMERICAL_ERROR)
    x = np.asarray(sol.x, dtype=float)
    return RawSolution(
        solver="clarabel", status=status, x=x, s=np.asarray(sol.s, dtype=float),
        z=np.asarray(sol.z, dtype=float),
        objective=float(program.c @ x + program.c0) if status.has_solution else float("nan"),
        iterations=int(sol.iterations), solve_time_s=elapsed, message=str(sol.status),
        extra={"clarabel_solve_time_s": float(sol.solve_time)})
