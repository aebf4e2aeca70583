"""The optimizer on problems whose answers are known in closed form, and its explanations."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from core.constraints.spec import ConstraintSpec as C
from core.model.build import build_model
from core.constraints.normalize import normalize_all
from core.model.data import ImpactCurve, ProblemData, Side
from core.optimize import solve_problem
from core.results import _side
from core.settings import CostSettings, OptimizationSettings
from core.solvers.base import Status

HS = 20 / 252


def side(n: int, h0=None, idio=None, loadings=None, labels=None) -> Side:
    return Side(
        ids=np.array([f"A{i}" for i in range(n)], dtype=object), rows=np.arange(n),
        h0=np.zeros(n) if h0 is None else np.asarray(h0, float), bench=np.zeros(n),
        loadings=sp.csr_matrix(np.zeros((n, 1)) if loadings is None else loadings),
        idio=np.full(n, 0.04) if idio is None else np.asarray(idio, float),
        beta=np.ones(n), is_future=np.zeros(n, bool), margin_rate=np.full(n, 0.3),
        labels={"sector": np.array(labels or ["S"] * n, dtype=object)})


def problem(n=2, alpha=(0.01, -0.005), h0=None, idio=None, linear=0.0, impact=0.0,
            factor_var=0.0, loadings=None, curves=()) -> ProblemData:
    empty = side(0)
    return ProblemData(
        nav=1e8, numeraire="USD", horizon_scale=HS, factor_names=("Mkt",),
        factor_kinds=("market",), factor_cov=np.array([[factor_var]]),
        tradable=side(n, h0, idio, loadings), fixed=empty, alpha=np.asarray(alpha, float),
        unit_value=np.full(n, 100.0), lot_size=np.ones(n), adv=np.full(n, 1e8),
        linear_cost=np.full(n, linear), impact=np.full(n, impact), curves=list(curves),
        borrow=np.zeros(n), financing=np.zeros(n), dividend=np.zeros(n),
        no_new_longs=np.zeros(n, bool), no_new_shorts=np.zeros(n, bool))


def test_mean_variance_closed_form():
    # max a h - lam hs s2 h^2  =>  h = a / (2 lam hs s2)
    lam = 3.0
    data = problem()
    res = solve_problem(data, [], OptimizationSettings(risk_aversion=lam))
    expected = data.alpha / (2 * lam * HS * 0.04)
    assert res.status == Status.OPTIMAL
    assert np.allclose(res.h, expected, atol=5e-5)
    utility = data.alpha @ expected - lam * HS * 0.04 * (expected**2).sum()
    assert res.objective == pytest.approx(utility, rel=1e-7)


def test_linear_cost_creates_a_no_trade_zone():
    # With cost c per unit traded, the optimum moves only where |a| > c: h = (|a| - c)/(2 k).
    lam, c = 3.0, 0.007
    data = problem(linear=c)
    res = solve_problem(data, [], OptimizationSettings(risk_aversion=lam))
    k = lam * HS * 0.04
    # Interior-point accuracy on a flat optimum: |dh| ~ sqrt(gap / k), ~1e-5 of NAV here.
    assert res.h[0] == pytest.approx((0.01 - c) / (2 * k), abs=5e-5)
    assert res.h[1] == pytest.approx(0.0, abs=1e-7)


def test_power_impact_matches_first_order_condition():
    # a - 2k h - 1.5 c h^0.5 = 0 at the optimum of a h - k h^2 - c h^1.5 (from h0 = 0).
    lam, c = 3.0, 0.02
    data = problem(n=1, alpha=(0.01,), impact=c)
    res = solve_problem(data, [], OptimizationSettings(risk_aversion=lam))
    k = lam * HS * 0.04
    h = res.h[0]
    assert 0.01 - 2 * k * h - 1.5 * c * np.sqrt(h) == pytest.approx(0.0, abs=1e-6)
    assert res.diagnostics.is_empty()
    power = build_model(data, [], OptimizationSettings(risk_aversion=lam), impact_cone="power")
    from core.solvers import clarabel_backend
    from core.solvers.base import SolverOptions
    raw = clarabel_backend.solve(power.program, SolverOptions())
    assert raw.x[power.var["h"][0]] == pytest.approx(h, abs=5e-5)


def test_impact_curve_replaces_power_law():
    # Cost 0.5% of notional up to a 1% NAV trade, then 2%: with alpha 1.2% the name trades to
    # exactly the kink, where the marginal cost passes the alpha.
    curve = ImpactCurve(0, intercepts=np.array([0.0, -0.00015]), slopes=np.array([0.005, 0.02]))
    data = problem(n=1, alpha=(0.012,), idio=(1e-6,), curves=[curve])
    res = solve_problem(data, [C(kind="holding", upper=5)], OptimizationSettings(risk_aversion=1))
    assert res.h[0] == pytest.approx(0.01, abs=1e-5)


def test_binding_bound_dual_matches_finite_difference():
    data = problem()
    settings = OptimizationSettings(risk_aversion=3.0)
    cap = C(kind="holding", instrument="A0", upper=2.0)  # %NAV; unconstrained h0 ~ 5.25%
    res = solve_problem(data, [cap], settings)
    row = res.diagnostics.filter(pl.col("label") == "A0").row(0, named=True)
    assert row["binding"] and row["value"] == pytest.approx(2.0, abs=1e-6)
    assert row["dual_unit"] == "bp/%NAV"
    bumped = solve_problem(data, [C(kind="holding", instrument="A0", upper=2.01)], settings)
    fd = (bumped.objective - res.objective) * 1e4 / 0.01
    assert row["dual"] == pytest.approx(fd, rel=1e-3)


def test_soft_constraint_reports_violation_and_penalty():
    data = problem()
    settings = OptimizationSettings(risk_aversion=3.0)
    # Marginal utility at 2% NAV is a - 2 k h = 0.962 bp per %NAV.
    soft = C(kind="holding", instrument="A0", upper=2.0, soft=True, penalty=0.5)
    res = solve_problem(data, [soft], settings)
    row = res.diagnostics.filter(pl.col("label") == "A0").row(0, named=True)
    # A penalty below the marginal utility: the bound gives until they are equal.
    k = 3.0 * HS * 0.04
    h = (0.01 - 0.5e-2) / (2 * k)  # a - 2 k h = penalty (0.5 bp/%NAV = 0.005 per unit)
    assert row["violation"] == pytest.approx(100 * h - 2.0, abs=1e-3)
    assert row["value"] == pytest.approx(2.0 + row["violation"], abs=1e-6)
    assert row["dual"] == pytest.approx(0.5, rel=1e-4)  # the penalty prices the constraint
    firm = solve_problem(data, [soft.model_copy(update={"penalty": 1.0})], settings)
    row = firm.diagnostics.filter(pl.col("label") == "A0").row(0, named=True)
    assert row["violation"] == pytest.approx(0.0, abs=1e-6)
    marginal_bp_per_pct = (0.01 - 2 * k * 0.02) * 0.01 * 1e4
    assert row["dual"] == pytest.approx(marginal_bp_per_pct, rel=1e-3)


def test_infeasible_constraints_are_explained():
    data = problem(n=3, alpha=(0.01, 0.0, -0.01))
    cons = [C(kind="holding", instrument="A0", lower=10),
            C(kind="holding", instrument="A1", lower=10),
            C(kind="holding", instrument="A2", lower=0),
            C(kind="net_exposure", upper=5, priority=1.0)]
    res = solve_problem(data, cons, OptimizationSettings())
    assert res.status == Status.INFEASIBLE
    assert "net_exposure" in res.conflicts
    total = res.relaxation.get_column("amount").sum()
    assert total == pytest.approx(15.0, rel=1e-4)  # 10 + 10 - 5 %NAV must give somewhere
    assert all(m.startswith("relax ") for m in res.relaxation.get_column("message"))


def test_priority_steers_the_relaxation():
    data = problem(n=2, alpha=(0.0, 0.0))
    cons = [C(kind="holding", instrument="A0", lower=10, priority=100.0),
            C(kind="holding", instrument="A1", lower=0, priority=100.0),
            C(kind="net_exposure", upper=5, priority=1.0)]
    res = solve_problem(data, cons, OptimizationSettings())
    rel = res.relaxation
    assert rel.get_column("name").to_list() == ["net_exposure"]
    assert rel.item(0, "current") == pytest.approx(5.0)
    assert rel.item(0, "relaxed_to") == pytest.approx(10.0, rel=1e-4)


def test_contradictory_bounds_rejected_before_solving():
    with pytest.raises(ValueError, match="contradictory bounds"):
        C(kind="net_exposure", lower=10, upper=5)


def test_unknown_instrument_group_and_factor_are_clear_errors():
    from core.constraints.normalize import ConstraintInputError

    data = problem()
    for spec, text in ((C(kind="holding", instrument="ZZZ", upper=1), "unknown or untradable"),
                       (C(kind="group_net", group_by="sector", group="Nope", upper=1),
                        "no instrument has sector = 'Nope'"),
                       (C(kind="group_net", group_by="colour", upper=1), "cannot group by"),
                       (C(kind="factor_exposure", factor="Value", upper=1), "unknown factor")):
        with pytest.raises(ConstraintInputError, match=text):
            normalize_all([spec], data, relative=False)


def test_restrictions_are_imposed_automatically():
    data = problem(h0=(0.0, -0.01))
    data.no_new_longs[0] = True
    data.no_new_shorts[1] = True
    res = solve_problem(data, [], OptimizationSettings(risk_aversion=3.0))
    assert res.h[0] <= 1e-8  # alpha wants it long; it may not go long
    assert res.h[1] >= -0.01 - 1e-8  # alpha wants it shorter; it may not add to the short
    names = set(res.diagnostics.get_column("name"))
    assert {"restriction:no_new_longs", "restriction:no_new_shorts"} <= names


def test_factor_risk_term_uses_exposures_not_a_dense_covariance():
    # Two names with the same loading: factor risk depends on their sum only.
    loadings = np.array([[1.0], [1.0]])
    data = problem(alpha=(0.01, 0.01), idio=(1e-8, 1e-8), factor_var=0.04, loadings=loadings)
    res = solve_problem(data, [], OptimizationSettings(risk_aversion=3.0))
    k = 3.0 * HS * 0.04
    assert res.h.sum() == pytest.approx(0.01 / (2 * k), rel=1e-3)
    assert "h" in res.model.var and res.model.program.A.shape[1] < 40


@pytest.mark.parametrize("before,trade,future,expected", [
    (0, 100, False, [("BUY", 100)]),
    (100, -40, False, [("SELL", 40)]),
    (100, -150, False, [("SELL", 100), ("SELL_SHORT", 50)]),
    (-100, 40, False, [("BUY_TO_COVER", 40)]),
    (-100, 150, False, [("BUY_TO_COVER", 100), ("BUY", 50)]),
    (0, -10, False, [("SELL_SHORT", 10)]),
    (-5, -10, False, [("SELL_SHORT", 10)]),
    (-3, 5, True, [("BUY", 5)]),
    (2, -5, True, [("SELL", 5)]),
])
def test_order_sides(before, trade, future, expected):
    assert _side(before, trade, future) == expected


def test_cost_switches_reach_the_problem(tmp_path):
    from books import book_config, write_book
    from console.state import AppState
    from core.model.data import problem_data

    uni = AppState(book_config(write_book(tmp_path))).load()
    on = problem_data(uni, OptimizationSettings(costs=CostSettings(dividends=True)))
    off = problem_data(uni, OptimizationSettings(costs=CostSettings(
        linear=False, impact=False, borrow=False, financing=False, dividends=False)))
    assert on.linear_cost.min() > 0 and on.impact.max() > 0 and on.borrow.max() > 0
    assert not off.linear_cost.any() and not off.impact.any() and not off.curves
    assert not (off.borrow.any() or off.financing.any() or off.dividend.any())
    # AAA's desk impact curve replaces its 3/2-power coefficient.
    aaa = list(on.tradable.ids).index("AAA")
    assert on.impact[aaa] == 0.0 and [c.index for c in on.curves] == [aaa]
    half = problem_data(uni, OptimizationSettings(costs=CostSettings(scale=0.5)))
    assert np.allclose(half.linear_cost, on.linear_cost / 2)


def test_the_near_optimal_retry_stays_within_the_time_limit(monkeypatch):
    """A near-optimal first pass is retried only with the time that is left of the limit."""
    import numpy as np

    from core.solvers import clarabel_backend as cb
    from core.solvers.base import RawSolution, SolverOptions, Status

    calls = []

    def fake(program, options, static_reg, elapsed_before=0.0):
        calls.append((options.time_limit_s, static_reg, elapsed_before))
        status = Status.NEAR_OPTIMAL if static_reg is None else Status.OPTIMAL
        return RawSolution(solver="clarabel", status=status, x=np.zeros(1), s=np.zeros(1),
                           z=np.zeros(1), objective=0.0, iterations=10, solve_time_s=4.0,
                           message=str(status))

    monkeypatch.setattr(cb, "_solve", fake)
    out = cb.solve(None, SolverOptions(time_limit_s=10.0))
    assert out.status == Status.OPTIMAL and calls[1] == (6.0, 1e-10, 4.0)
    assert out.solve_time_s == 8.0
    calls.clear()
    out = cb.solve(None, SolverOptions(time_limit_s=6.0))  # 2 s left < a 4 s pass
    assert out.status == Status.NEAR_OPTIMAL and len(calls) == 1
    assert "no time left" in out.message
