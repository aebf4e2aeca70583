"""spo's conic model against an independent CVXPY statement of docs/formulation.md.

The reference (bench/cvxpy_reference.py) and the numpy row evaluator in it were written
from the formulation only. For every objective mode, every risk_terms, with and without
the benchmark, every constraint kind in every unit (hard and soft) and random combinations:
spo's optimum objective equals the reference's, h agrees where the optimum is unique, and
each diagnostics row (value, bounds, slack, binding, violation) agrees with an independent
recomputation from spo's h. Duals are checked against finite differences, infeasible sets
against the conflicts and relaxations spo reports.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from random_problems import (
    ALL_KIND_UNITS,
    FIXED_ONLY_SECTOR,
    calibrated,
    cases,
    infeasible_sets,
    random_constraints,
    random_problem,
    unit_fraction,
)

from bench.cvxpy_reference import (
    LEG_KINDS,
    Row,
    build_reference,
    constraint_rows,
    instrument_scale,
    objective_value,
    scalar_scale,
    solve_reference,
)
from core.constraints.catalogue import KINDS
from core.constraints.spec import ConstraintSpec
from core.optimize import solve_problem
from core.settings import OptimizationSettings
from core.solvers.base import Status

OBJ_REL, OBJ_ABS = 1e-4, 1e-9
# spo's reported objective is c'x of its conic program: at Clarabel's default tolerances
# its epigraph rows are met to ~1e-8, so it can sit a few 1e-9 above the objective at its
# own h (see the report); the objective at spo's h is held to OBJ_ABS.
REPORTED_ABS = 1e-8
H_TOL = 1e-4  # NAV fraction
FEAS_TOL = 1e-6  # NAV fraction, converted to each row's unit

# Rows whose bound the formulation imposes through the legs (a relaxation): the true value
# at h may lie beyond the bound although the model is feasible.
RELAXED_ROWS = {("gross_exposure", "lower"), ("leverage", "lower"),
                ("long_market_value", "lower"), ("short_market_value", "lower"),
                ("max_concentration", "upper")}


def ref(data, cons, settings):
    """The reference optimum, as accurate as Clarabel will certify it."""
    first = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "solution may be inaccurate"
        for tol in (1e-10, 1e-9, None):
            opts = {} if tol is None else dict(tol_gap_abs=tol, tol_gap_rel=tol, tol_feas=tol)
            r = solve_reference(data, cons, settings, **opts)
            if r.status in ("optimal", "infeasible"):
                return r
            first = first or r
    return first


def strictly_convex(settings: OptimizationSettings) -> bool:
    """Unique optimum in h: a specific-risk term on every name with a positive weight."""
    if settings.objective == "utility":
        return settings.risk_aversion > 0 and settings.risk_terms in ("full", "idio")
    if settings.objective == "min_total_risk":
        return settings.risk_terms in ("full", "idio")
    return False


def close_obj(a: float, b: float, abs_tol: float = OBJ_ABS) -> bool:
    return abs(a - b) <= max(abs_tol, OBJ_REL * max(abs(a), abs(b)))


def row_fraction(data, row: Row, unit: str) -> float:
    """NAV fraction per one unit of the row (to turn NAV tolerances into the unit)."""
    if unit in ("shares", "%ADV", "ADV-days", "%holding"):
        ids = [str(i) for i in data.tradable.ids]
        if row.label in ids:
            sc = float(instrument_scale(data, unit, np.array([ids.index(row.label)]))[0])
            return sc if sc > 0 else 0.01
        return 0.01
    if unit == "%gross":
        return 0.01
    return scalar_scale(data, unit)


def unit_worth_nothing(data, spec, row: Row) -> bool:
    if spec.unit != "%holding":
        return False
    ids = [str(i) for i in data.tradable.ids]
    return row.label in ids and data.tradable.h0[ids.index(row.label)] == 0


def check_diagnostics(data, cons, settings, q) -> None:
    """Every spo diagnostics row of our constraints against our own recomputation."""
    diag = q.diagnostics
    assert {"name", "kind", "label", "value", "lower", "upper", "slack", "dual", "binding",
            "violation", "unit"} <= set(diag.columns)
    names = {c.name: c for c in cons if c.enabled}
    spo_rows = {(r["name"], r["label"]): r for r in diag.iter_rows(named=True)
                if r["name"] in names}
    mine = {(r.name, r.label): r for r in constraint_rows(data, cons, settings, q.h)}
    missing = [k for k, r in mine.items() if r.imposed and k not in spo_rows]
    assert not missing, f"rows missing from spo's diagnostics: {missing}"
    extra = [k for k in spo_rows if k not in mine]
    assert not extra, f"spo reports rows the formulation does not have: {extra}"
    feasible = q.status.has_solution
    for key, s in spo_rows.items():
        m = mine[key]
        spec = names[m.name]
        frac = row_fraction(data, m, spec.unit)
        tol = 1e-9 / frac + 1e-7 * abs(m.value)
        assert s["unit"] == spec.unit, key
        assert s["kind"] == spec.kind, key
        if not math.isfinite(m.value):
            continue
        if s["value"] is None and unit_worth_nothing(data, spec, m):
            continue  # %holding of a name not held: spo reports no value (0 / 0)
        assert s["value"] == pytest.approx(m.value, abs=tol), (key, s, m)
        for side in ("lower", "upper"):
            mv, sv = getattr(m, side), s[side]
            if mv is None:
                assert sv is None or not math.isfinite(sv), (key, side, sv)
            else:
                assert sv == pytest.approx(mv, abs=1e-9 / frac + 1e-9 * abs(mv)), (key, side)
        # slack = distance to the nearest bound, in the unit (from spo's own numbers)
        lo, hi, v = s["lower"], s["upper"], s["value"]
        d_hi = (hi - v) if hi is not None else math.inf
        d_lo = (v - lo) if lo is not None else math.inf
        expect = min(d_hi, d_lo)
        nearest = "upper" if d_hi <= d_lo else "lower"
        if math.isfinite(expect):
            assert s["slack"] == pytest.approx(expect, abs=1e-9 / frac + 1e-9 * abs(expect)), (
                key, s)
        ftol = FEAS_TOL / frac
        relaxed = (spec.kind, nearest) in RELAXED_ROWS
        if feasible and not spec.soft and m.imposed and not relaxed:
            assert s["slack"] >= -ftol, (key, s)
        # binding: slack within a small tolerance of zero
        if math.isfinite(expect):
            if expect <= 1e-9 / frac:
                assert s["binding"], (key, s)
            if expect > 1e-3 / frac + 1e-3 * abs(v):
                assert not s["binding"], (key, s)
        # violation: how far beyond the nearest bound (soft rows pay for it)
        viol = max(0.0, -expect) if math.isfinite(expect) else 0.0
        if not (relaxed and spec.soft):
            assert s["violation"] == pytest.approx(viol, abs=ftol + 1e-7 * viol), (key, s)


def check_match(data, cons, settings, *, compare_h: bool | None = None,
                diagnostics: bool = True):
    r = ref(data, cons, settings)
    q = solve_problem(data, cons, settings, solver="clarabel")
    if r.status == "infeasible":
        assert q.status == Status.INFEASIBLE, (q.status, r.status)
        return r, q
    assert r.status in ("optimal", "optimal_inaccurate"), r.status
    assert q.status == Status.OPTIMAL, (q.status, r.status, q.notes)
    # spo's solution is optimal: the formulation's objective at spo's h is the optimum
    at_h = objective_value(data, cons, settings, q.h)
    import json, os
    with open("/tmp/objlog.jsonl", "a") as fh:
        fh.write(json.dumps(dict(test=os.environ.get("PYTEST_CURRENT_TEST", ""), ref=r.objective, at_h=at_h, rep=q.objective, legs=any(c.kind in LEG_KINDS for c in cons))) + "\n")
    legs_soft = any(c.soft and c.kind in LEG_KINDS for c in cons)
    if not legs_soft:
        assert close_obj(at_h, r.objective), ("objective at spo's h", at_h, r.objective,
                                              at_h - r.objective)
    # spo's reported objective is the optimum too
    assert close_obj(q.objective, r.objective, abs_tol=REPORTED_ABS), (
        "reported objective", q.objective, r.objective, q.objective - r.objective)
    if compare_h is None:
        compare_h = strictly_convex(settings)
    if compare_h:
        assert np.abs(q.h - r.h).max() <= H_TOL, np.abs(q.h - r.h).max()
    if diagnostics:
        check_diagnostics(data, cons, settings, q)
    return r, q


# --------------------------------------------------------------------------------------
# The reference on its own (independent checks, no spo)


def _dense_sigma(data, side_a, side_b):
    ba = side_a.loadings.toarray()
    bb = side_b.loadings.toarray()
    s = ba @ data.factor_cov @ bb.T
    if side_a is side_b:
        s = s + np.diag(side_a.idio)
    return s


def _no_costs(data):
    data.linear_cost = np.zeros(data.n)
    data.impact = np.zeros(data.n)
    data.curves = []
    data.borrow = np.zeros(data.n)
    data.financing = np.zeros(data.n)
    data.dividend = np.zeros(data.n)
    data.no_new_longs = np.zeros(data.n, bool)
    data.no_new_shorts = np.zeros(data.n, bool)
    return data


@pytest.mark.parametrize("rel", [False, True])
def test_reference_closed_form_mean_variance(rel):
    data = _no_costs(random_problem(3, n=12, n_fixed=3, k=4))
    s = OptimizationSettings(relative_to_benchmark=rel, risk_aversion=3.0)
    r = ref(data, [], s)
    t, f = data.tradable, data.fixed
    c = 2 * s.risk_aversion * data.horizon_scale
    ef = (f.h0 - f.bench) if rel else f.h0
    s_tt = _dense_sigma(data, t, t)
    s_tf = t.loadings.toarray() @ data.factor_cov @ f.loadings.toarray().T
    e = np.linalg.solve(c * s_tt, data.alpha - c * s_tf @ ef)
    h = e + t.bench if rel else e
    assert np.abs(r.h - h).max() < 1e-7
    assert r.objective == pytest.approx(objective_value(data, [], s, h), rel=1e-8)


def test_reference_satisfies_its_constraints():
    data = random_problem(11, n=15, n_fixed=3, k=4, restrictions=True)
    s = OptimizationSettings()
    for seed in range(6):
        cons = random_constraints(data, s, seed, count=5, soft_prob=0.0)
        r = ref(data, cons, s)
        assert r.status == "optimal"
        for row in constraint_rows(data, cons, s, r.h):
            bound = "upper" if row.upper is not None and (
                row.lower is None or row.upper - row.value < row.value - row.lower) else "lower"
            if row.imposed and (row.kind, bound) not in RELAXED_ROWS:
                assert row.slack >= -FEAS_TOL / unit_fraction(data, next(
                    c.unit for c in cons if c.name == row.name)), row
        assert r.objective == pytest.approx(objective_value(data, cons, s, r.h), rel=1e-6,
                                            abs=1e-9)


def test_reference_rejects_unknown_names():
    data = random_problem(1, n=6, n_fixed=1, k=3)
    s = OptimizationSettings()
    bad = [ConstraintSpec(kind="holding", instrument="NOPE", upper=1.0),
           ConstraintSpec(kind="group_net", group_by="sector", group="Nowhere", upper=1.0),
           ConstraintSpec(kind="group_net", group_by="planet", upper=1.0),
           ConstraintSpec(kind="factor_exposure", factor="Nope", upper=1.0),
           ConstraintSpec(kind="factor_exposure", factor="kind:nope", upper=1.0)]
    for spec in bad:
        with pytest.raises(ValueError):
            build_reference(data, [spec], s)
    with pytest.raises(ValueError):
        build_reference(data, [], OptimizationSettings(objective="target_exposures",
                                                       factor_targets={"Nope": 1.0}))


def test_reference_builds_at_benchmark_scale():
    from random_problems import large_problem
    data = large_problem(n=15_000, k=72)
    cons = [ConstraintSpec(kind="holding", lower=-1, upper=1),
            ConstraintSpec(kind="max_trade", unit="%ADV", upper=5),
            ConstraintSpec(kind="group_net", group_by="sector", lower=-5, upper=5),
            ConstraintSpec(kind="factor_exposure", factor="*", lower=-0.1, upper=0.1),
            ConstraintSpec(kind="max_concentration", upper=2),
            ConstraintSpec(kind="gross_exposure", upper=200),
            ConstraintSpec(kind="total_risk", upper=10)]
    prob, h = build_reference(data, cons, OptimizationSettings())
    assert h.shape == (15_000,)
    assert prob.is_dcp()


# --------------------------------------------------------------------------------------
# Objective modes


MODES = ["utility", "min_total_risk", "min_factor_risk", "target_exposures"]


def _mode_settings(mode, rel, terms, **kw):
    extra = {}
    if mode == "target_exposures":
        extra = dict(factor_targets={"Market": 0.05, "Value": -0.1},
                     factor_target_weights={"Value": 4.0})
    return OptimizationSettings(objective=mode, relative_to_benchmark=rel, risk_terms=terms,
                                **extra, **kw)


@pytest.fixture(scope="module")
def mode_data():
    return random_problem(5, n=14, n_fixed=3, k=4, n_curves=2, restrictions=True)


@pytest.mark.parametrize("terms", ["full", "factor", "idio"])
@pytest.mark.parametrize("rel", [False, True], ids=["absolute", "relative"])
@pytest.mark.parametrize("mode", MODES)
def test_objective_modes(mode_data, mode, rel, terms):
    s = _mode_settings(mode, rel, terms)
    check_match(mode_data, [], s)
    # with a few constraints that bind
    h_to = ref(mode_data, [], s).h
    cons = [calibrated(mode_data, s, "net_exposure", "%NAV", h_to, selector={}),
            calibrated(mode_data, s, "turnover", "%NAV", h_to, selector={}),
            calibrated(mode_data, s, "total_risk", "%vol", h_to, selector={}, frac=0.3),
            calibrated(mode_data, s, "holding", "%NAV", h_to, selector={"instrument": "*"})]
    check_match(mode_data, cons, s)


def test_zero_risk_aversion(mode_data):
    s = OptimizationSettings(risk_aversion=0.0)
    cons = [ConstraintSpec(kind="holding", lower=-5.0, upper=5.0),
            ConstraintSpec(kind="gross_exposure", upper=80.0)]
    check_match(mode_data, cons, s, compare_h=False)


# --------------------------------------------------------------------------------------
# Every constraint kind in every unit, hard and soft


@pytest.fixture(scope="module")
def kind_problem():
    data = random_problem(7, n=12, n_fixed=3, k=4, n_curves=2, restrictions=True,
                          fixed_only_group=True)
    s = OptimizationSettings()
    return data, s, ref(data, [], s).h


def _selectors(data, kind):
    scope = KINDS[kind].scope
    if scope == "instrument":
        return [{"instrument": "*"}, {"instrument": str(data.tradable.ids[3])}]
    if kind == "factor_exposure":
        return [{"factor": "*"}, {"factor": "Value"}, {"factor": "kind:style"}]
    if scope == "group":
        return [{"group_by": "sector", "group": "*"},
                {"group_by": "country", "group": str(data.tradable.labels["country"][0])}]
    return [{}]


KIND_CASES = [(k, u, soft) for k, u in ALL_KIND_UNITS
              for soft in ([False] if KINDS[k].no_bounds else [False, True])]


@pytest.mark.parametrize("kind,unit,soft", KIND_CASES,
                         ids=[f"{k}-{u}-{'soft' if s else 'hard'}" for k, u, s in KIND_CASES])
def test_constraint_kind(kind_problem, kind, unit, soft):
    data, s, h_star = kind_problem
    for i, sel in enumerate(_selectors(data, kind)):
        spec = calibrated(data, s, kind, unit, h_star, selector=sel, soft=soft,
                          penalty=50.0, frac=0.5, target_form=(i == 1), rng=i)
        check_match(data, [spec], s)


def test_fixed_instrument_is_checked_not_imposed(kind_problem):
    data, s, _ = kind_problem
    fid = str(data.fixed.ids[0])
    h0 = data.fixed.h0[0] * 100
    spec = ConstraintSpec(kind="holding", instrument=fid, lower=h0 + 1.0, upper=h0 + 2.0)
    r, q = check_match(data, [spec], s, diagnostics=False)
    rows = q.diagnostics.filter(q.diagnostics["name"] == spec.name)
    assert rows.height <= 1
    if rows.height:
        assert rows["value"][0] == pytest.approx(h0)


def test_group_without_tradable_member_is_skipped(kind_problem):
    data, s, _ = kind_problem
    assert FIXED_ONLY_SECTOR in set(data.fixed.labels["sector"])
    spec = ConstraintSpec(kind="group_net", group_by="sector", group=FIXED_ONLY_SECTOR,
                          lower=50.0, upper=60.0)
    r, q = check_match(data, [spec], s)
    assert r.status == "optimal"
    assert q.diagnostics.filter(q.diagnostics["name"] == spec.name).height == 0


def test_disabled_constraint_is_ignored(kind_problem):
    data, s, _ = kind_problem
    spec = ConstraintSpec(kind="net_exposure", lower=500.0, upper=600.0, enabled=False)
    r, q = check_match(data, [spec], s)
    assert close_obj(r.objective, ref(data, [], s).objective)


# --------------------------------------------------------------------------------------
# Random combinations


@hsettings(max_examples=25, deadline=None, derandomize=True,
           suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(cases(max_n=20))
def test_random_combinations(case):
    data, cons, s = case
    check_match(data, cons, s)


# --------------------------------------------------------------------------------------
# Duals: d(objective x 1e4) / d(bound), in bp of NAV per unit of the constraint's unit

DUAL_CASES = [("net_exposure", "%NAV", {}), ("turnover", "%NAV", {}),
              ("total_risk", "%vol", {}), ("holding", "%NAV", {"instrument": "T002"}),
              ("group_net", "%NAV", {"group_by": "sector", "group": "*"}),
              ("factor_exposure", "exposure", {"factor": "Market"}),
              ("gross_exposure", "notional", {})]


@pytest.mark.parametrize("kind,unit,sel", DUAL_CASES, ids=[c[0] for c in DUAL_CASES])
def test_duals_match_finite_differences(kind_problem, kind, unit, sel):
    data, s, h_star = kind_problem
    spec = calibrated(data, s, kind, unit, h_star, selector=sel, frac=0.5)
    q = solve_problem(data, [spec], s)
    assert q.status == Status.OPTIMAL
    rows = [r for r in q.diagnostics.iter_rows(named=True)
            if r["name"] == spec.name and r["binding"]]
    assert rows, f"{spec.name} does not bind: calibrate it tighter"
    row = rows[0]
    side = "upper" if row["upper"] is not None and abs(row["upper"] - row["value"]) <= abs(
        row["value"] - (row["lower"] if row["lower"] is not None else -math.inf)) else "lower"
    bound = getattr(spec, "hi" if side == "upper" else "lo")
    delta = 1e-3 * max(abs(bound), 1e-3 / unit_fraction(data, unit) * 0.01)
    objs = []
    for d in (-delta, delta):
        moved = spec.model_copy(update={side: bound + d})
        qq = solve_problem(data, [moved], s)
        assert qq.status == Status.OPTIMAL
        objs.append(qq.objective)
    fd = (objs[1] - objs[0]) * 1e4 / (2 * delta)
    assert row["dual"] == pytest.approx(fd, rel=0.03, abs=1e-6 * max(1.0, abs(fd))), (
        side, row, fd)


# --------------------------------------------------------------------------------------
# Infeasible sets: conflicts and a relaxation that works


def _expand(data, spec: ConstraintSpec, settings) -> list[tuple[str, ConstraintSpec]]:
    """One constraint per row of `spec`: [(row label, spec)], bounds as lower / upper."""
    out = []
    for row in constraint_rows(data, [spec], settings, data.tradable.h0):
        if not row.imposed:
            continue
        kind = KINDS[spec.kind]
        if kind.scope == "instrument":
            sel = {"instrument": row.label}
        elif spec.kind == "factor_exposure":
            sel = {"factor": row.label}
        elif kind.scope == "group":
            sel = {"group_by": spec.group_by, "group": row.label}
        else:
            sel = {}
        if kind.no_bounds:  # no_trade / no_new_*: a holding band in %NAV
            out.append((row.label, ConstraintSpec(
                kind="holding", unit="%NAV", lower=row.lower, upper=row.upper,
                name=f"{spec.name}|{row.label}", **sel)))
        else:
            out.append((row.label, ConstraintSpec(
                kind=spec.kind, unit=spec.unit, lower=row.lower, upper=row.upper,
                soft=spec.soft, penalty=spec.penalty, name=f"{spec.name}|{row.label}",
                **sel)))
    return out


def apply_relaxation(data, cons, settings, relaxation) -> list[ConstraintSpec]:
    moves = {(r["name"], r["label"], r["bound"]): r["relaxed_to"]
             for r in relaxation.iter_rows(named=True)}
    out = []
    for spec in cons:
        if not any(k[0] == spec.name for k in moves):
            out.append(spec)
            continue
        for label, row_spec in _expand(data, spec, settings):
            upd = {}
            for side in ("lower", "upper"):
                to = moves.get((spec.name, label, side))
                if to is not None:
                    pad = 1e-7 * max(1.0, abs(to))  # relaxed_to itself is the boundary
                    upd[side] = to - pad if side == "lower" else to + pad
            if upd:
                lo = upd.get("lower", row_spec.lower)
                hi = upd.get("upper", row_spec.upper)
                if lo is not None and hi is not None and lo > hi:
                    lo, hi = hi, lo
                row_spec = row_spec.model_copy(update={"lower": lo, "upper": hi})
            out.append(row_spec)
    return out


@pytest.fixture(scope="module")
def infeasible_problem():
    data = random_problem(21, n=10, n_fixed=2, k=3, n_curves=1, restrictions=False)
    return data, OptimizationSettings()


@pytest.mark.parametrize("case", ["holding_vs_net", "group_vs_holding", "no_trade_vs_net",
                                  "trade_vs_risk"])
def test_infeasible_sets(infeasible_problem, case):
    data, s = infeasible_problem
    cons, expected = next((c, e) for name, c, e in infeasible_sets(data, s) if name == case)
    assert ref(data, cons, s).status == "infeasible"
    q = solve_problem(data, cons, s)
    assert q.status == Status.INFEASIBLE
    assert set(q.conflicts) & expected, (q.conflicts, expected)
    assert q.relaxation is not None and q.relaxation.height > 0
    rel = q.relaxation
    assert {"name", "label", "bound", "current", "relaxed_to", "amount"} <= set(rel.columns)
    assert set(rel["bound"]) <= {"lower", "upper"}
    for r in rel.iter_rows(named=True):
        assert r["amount"] == pytest.approx(abs(r["relaxed_to"] - r["current"]), rel=1e-6,
                                            abs=1e-9)
        assert r["amount"] > 0
        assert (r["relaxed_to"] > r["current"]) == (r["bound"] == "upper")
    relaxed = apply_relaxation(data, cons, s, rel)
    assert ref(data, relaxed, s).status == "optimal", rel
