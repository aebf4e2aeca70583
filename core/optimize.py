"""Solve one problem end to end: normalize, build, solve, and explain the answer.

`solve_problem` works on ProblemData (what the tests cross-check against CVXPY);
`optimize` starts from a Universe and adds the trader-facing frames (core.results).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from core.constraints.normalize import (
    WHOLE_BLOCK, block_values, exposures, normalize_all,
)
from core.constraints.spec import ConstraintSpec
from core.model.build import Model, build_model
from core.model.data import ProblemData
from core.settings import OptimizationSettings
from core.solvers import run_solver
from core.solvers.base import RawSolution, SolverOptions, Status

DIAGNOSTICS_SCHEMA = {
    "name": pl.String, "kind": pl.String, "label": pl.String, "value": pl.Float64,
    "lower": pl.Float64, "upper": pl.Float64, "slack": pl.Float64, "dual": pl.Float64,
    "dual_unit": pl.String, "binding": pl.Boolean, "violation": pl.Float64,
    "unit": pl.String, "soft": pl.Boolean, "scope": pl.String,
}
RELAXATION_SCHEMA = {
    "name": pl.String, "kind": pl.String, "label": pl.String, "bound": pl.String,
    "current": pl.Float64, "relaxed_to": pl.Float64, "amount": pl.Float64, "unit": pl.String,
    "message": pl.String,
}


@dataclass
class SolvedProblem:
    status: Status
    objective: float  # maximize sense: utility including soft penalties, fraction of NAV
    h: np.ndarray  # post-trade positions of data.tradable, fraction of NAV
    data: ProblemData
    model: Model
    raw: RawSolution
    diagnostics: pl.DataFrame
    relaxation: pl.DataFrame | None = None
    conflicts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    flows: np.ndarray = field(default_factory=lambda: np.zeros(0))
    fx: np.ndarray = field(default_factory=lambda: np.zeros(0))  # FX bought per currency
    timings: dict[str, float] = field(default_factory=dict)
    solver: str = "clarabel"


def _divide(a: np.ndarray, scale: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(scale != 0, a / np.where(scale != 0, scale, 1.0), np.nan)


def diagnostics(model: Model, h: np.ndarray, z: np.ndarray | None, x: np.ndarray | None
                ) -> pl.DataFrame:
    """One row per constraint row: value, bounds, slack, dual, binding, violation.

    Values are recomputed from the holdings h; duals come from the solver (utility in bp of
    NAV gained per one unit of relaxation of the bound, in the constraint's unit).
    """
    st = model.settings
    k = x[model.var["k_flow"]] if (x is not None and "k_flow" in model.var) else None
    fx = x[model.var["fx"]] if (x is not None and "fx" in model.var) else None
    ex = exposures(model.data, h, st.relative_to_benchmark, st.risk_terms, k, fx)
    viol_of = {(v.name, v.side): v for v in model.violations}
    frames = []
    for block in model.blocks:
        if block.rows == 0:
            continue
        spec = block.spec
        value = _divide(block_values(block, ex), block.scale)
        lower = _divide(block.lo, block.scale)
        upper = _divide(block.hi, block.scale)
        with np.errstate(invalid="ignore"):
            slack = np.fmin(value - lower, upper - value)
        dual = np.zeros(block.rows)
        violation = np.zeros(block.rows)
        for side, rb in model.constraint_rows.get(spec.name, {}).items():
            side = "upper" if side.startswith("upper") else side
            bound = block.hi if side == "upper" else block.lo
            rows = (np.arange(block.rows) if block.transform in WHOLE_BLOCK
                    else np.flatnonzero(~np.isnan(bound)))
            if z is not None:
                zz = z[rb.start:rb.stop]
                if rb.cone == "soc":
                    zz = zz[:1]
                dual[rows] = np.maximum(dual[rows], zz * block.scale[rows] * 1e4)
            v = viol_of.get((spec.name, side))
            if v is not None and x is not None:
                # One violation per row with a bound, scaled like those rows.
                violation[rows] = np.maximum(violation[rows], _divide(x[v.var], v.scale))
        # Binding: at the bound to solver precision, or priced (a dual above noise) and
        # within 0.1% of it; slack summed over thousands of names (turnover) is larger
        # than one name's, hence the dual test.
        size = np.maximum(1.0, np.fmax(np.abs(np.nan_to_num(lower)),
                                       np.abs(np.nan_to_num(upper))))
        gap = np.nan_to_num(slack, nan=np.inf)
        binding = (gap <= 1e-4 * size) | ((dual > 1e-3) & (gap <= 1e-3 * size))
        frames.append(pl.DataFrame({
            "name": [spec.name] * block.rows, "kind": [spec.kind] * block.rows,
            "label": [str(lab) for lab in block.labels], "value": value, "lower": lower,
            "upper": upper, "slack": slack, "dual": dual,
            "dual_unit": [f"bp/{spec.unit}"] * block.rows, "binding": binding,
            "violation": violation, "unit": [spec.unit] * block.rows,
            "soft": [spec.soft] * block.rows,
            "scope": [_scope(spec)] * block.rows,
        }, schema=DIAGNOSTICS_SCHEMA).with_columns(pl.col(pl.Float64).fill_nan(None)))
    if not frames:
        return pl.DataFrame(schema=DIAGNOSTICS_SCHEMA)
    return pl.concat(frames)


def _scope(spec: ConstraintSpec) -> str:
    from core.constraints.catalogue import KINDS
    return KINDS[spec.kind].scope


def relaxation_report(elastic: Model, x: np.ndarray, tol: float = 1e-7) -> pl.DataFrame:
    """For each hard constraint the elastic phase had to move: 'relax X from a to b'."""
    rows = []
    by_name = {b.spec.name: b for b in elastic.blocks}
    for v in elastic.violations:
        block = by_name[v.name]
        amounts = x[v.var]
        bound_arr = block.hi if v.side == "upper" else block.lo
        idx = (np.arange(block.rows) if block.transform in WHOLE_BLOCK
               else np.flatnonzero(~np.isnan(bound_arr)))
        for j, amount in zip(idx, amounts):
            if amount <= tol * max(1.0, abs(bound_arr[j]) if not np.isnan(bound_arr[j]) else 1):
                continue
            scale = block.scale[j]
            current = bound_arr[j] / scale if scale else float("nan")
            amount_unit = amount / scale if scale else float("nan")
            new = current + amount_unit if v.side == "upper" else current - amount_unit
            label = str(block.labels[j])
            where = f"{v.name}" + (f" [{label}]" if label and label not in v.name else "")
            rows.append({
                "name": v.name, "kind": block.spec.kind, "label": label, "bound": v.side,
                "current": current, "relaxed_to": new, "amount": amount_unit,
                "unit": block.spec.unit,
                "message": f"relax {where} {v.side} bound from {current:,.6g} to {new:,.6g} "
                           f"{block.spec.unit}"})
    frame = pl.DataFrame(rows, schema=RELAXATION_SCHEMA)
    return frame.sort("amount", descending=True) if frame.height else frame


def conflicts_from_certificate(model: Model, z: np.ndarray, rel_tol: float = 1e-6) -> list[str]:
    """Constraints whose rows carry weight in the solver's infeasibility certificate."""
    if z is None or not len(z) or not np.isfinite(z).all():
        return []
    weights: dict[str, float] = {}
    for rb in model.program.row_blocks:
        if rb.role != "constraint":
            continue
        w = float(np.abs(z[rb.start:rb.stop]).max(initial=0.0))
        weights[rb.name] = max(weights.get(rb.name, 0.0), w)
    top = max(weights.values(), default=0.0)
    if top <= 0:
        return []
    return sorted((n for n, w in weights.items() if w > rel_tol * top),
                  key=lambda n: -weights[n])


def _relaxation_notes(model: Model, x: np.ndarray, h: np.ndarray) -> list[str]:
    """Say so when a limit was met through the legs' convex relaxation, not by positions.

    Lower bounds on gross, long or short market value, and concentration limits (a share
    of gross), are not convex in h; the model states them through the legs l, s. If the
    optimum holds both legs of a name, those limits were met on paper only, and the
    diagnostics (recomputed from h) show by how much.
    """
    uses_legs = any(b.transform == "concentration" or (
        b.transform in ("abs", "pos", "neg") and not np.isnan(b.lo).all())
        for b in model.blocks)
    if not uses_legs:
        return []
    inflated = x[model.var["l"]] + x[model.var["s"]] - np.abs(h)
    n = int((inflated > 1e-6).sum())
    if not n:
        return []
    return [f"{n} names hold both a long and a short leg ({inflated.sum() * 100:.3g}% NAV of "
            "paper gross) to meet a gross/market-value floor or a concentration limit; the "
            "diagnostics show the values the positions really have"]


def _unscaled(raw: RawSolution, scale: float) -> RawSolution:
    if scale != 1.0:
        raw.objective = raw.objective / scale
        raw.z = raw.z / scale
    return raw


def solve_problem(data: ProblemData, constraints: list[ConstraintSpec],
                  settings: OptimizationSettings, solver: str = "clarabel",
                  options: SolverOptions | None = None) -> SolvedProblem:
    options = options or SolverOptions(time_limit_s=settings.time_limit_s)
    t0 = time.perf_counter()
    blocks = normalize_all(constraints, data, settings.relative_to_benchmark)
    notes = [note for b in blocks for note in b.notes]
    # MOSEK solves the mixed-integer program (whole lots, contracts and creation units);
    # Clarabel the relaxation, which core.results then rounds and repairs.
    model = build_model(data, blocks, settings, whole_lots=(solver == "mosek"))
    t1 = time.perf_counter()
    raw = _unscaled(run_solver(model.program, solver, options), model.program.objective_scale)
    t2 = time.perf_counter()
    timings = {"build_s": t1 - t0, "solve_s": t2 - t1}
    h_idx = model.var["h"]
    if raw.status.has_solution:
        h = raw.x[h_idx]
        diag = diagnostics(model, h, raw.z, raw.x)
        notes.extend(_relaxation_notes(model, raw.x, h))
        result = SolvedProblem(raw.status, -raw.objective, h, data, model, raw, diag,
                               notes=notes, timings=timings, solver=raw.solver)
        if "k_flow" in model.var:
            result.flows = raw.x[model.var["k_flow"]]
        if "fx" in model.var:
            result.fx = raw.x[model.var["fx"]]
    else:
        h = data.tradable.h0.copy()
        diag = diagnostics(model, h, None, None)
        result = SolvedProblem(raw.status, float("nan"), h, data, model, raw, diag,
                               notes=notes, timings=timings, solver=raw.solver)
        # Interior-point solvers sometimes drift toward an infeasibility certificate without
        # certifying it (NumericalError with a growing objective): the elastic phase then
        # decides, and names the relaxations either way.
        if raw.status in (Status.INFEASIBLE, Status.NUMERICAL_ERROR) and blocks:
            if raw.status == Status.INFEASIBLE:
                result.conflicts = conflicts_from_certificate(model, raw.z)
            t3 = time.perf_counter()
            elastic = build_model(data, blocks, settings, elastic=True)
            eraw = _unscaled(run_solver(elastic.program, solver, options),
                             elastic.program.objective_scale)
            if eraw.status.has_solution:
                report = relaxation_report(elastic, eraw.x)
                if report.height:
                    result.relaxation = report
                    if raw.status == Status.NUMERICAL_ERROR:
                        result.status = Status.INFEASIBLE
                        result.notes.append(
                            f"{raw.solver} stopped with a numerical error; the elastic "
                            "re-solve shows the constraints cannot all hold")
                    if not result.conflicts:
                        result.conflicts = sorted(set(report.get_column("name")))
            timings["elastic_s"] = time.perf_counter() - t3
    return result
