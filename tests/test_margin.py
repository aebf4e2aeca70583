"""Margin with hedge credit: an index arbitrage margins at the hedge rate."""

from __future__ import annotations

import polars as pl
import pytest

from books import book_config, book_tables, write_book
from console.state import AppState
from core.constraints.spec import ConstraintSpec as C
from core.model.data import problem_data
from core.optimize import solve_problem
from core.settings import CostSettings, OptimizationSettings


def arb_book(tmp_path):
    # Short 2 FUT1 (150,000) against its basket, 1,000 AAA and 1,000 BBB; NAV 361,000.
    t = book_tables()
    shares = {"FUT1": -2.0, "AAA": 1000.0, "BBB": 1000.0}
    t["positions"] = t["positions"].with_columns(position_shares=pl.col(
        "instrument_id").replace_strict(shares, default=0.0, return_dtype=pl.Float64))
    t["restrictions"] = t["restrictions"].clear()
    return AppState(book_config(write_book(tmp_path, t))).load()


def test_hedge_credit_by_hand(tmp_path):
    uni = arb_book(tmp_path)
    nav = uni.nav
    assert nav == pytest.approx(361_000.0)
    data = problem_data(uni, OptimizationSettings())
    h = data.tradable.h0
    without = 100_000 * 0.3 + 50_000 * 0.5 + 150_000 * 0.08
    assert data.margin(h, hedge_credit=False) * nav == pytest.approx(without)
    # The basket is exactly the future's: all of it is hedged at FUT1's 2% override.
    assert data.margin(h) * nav == pytest.approx(0.02 * 150_000, rel=1e-6)
    off = problem_data(uni, OptimizationSettings(margin_hedge_credit=False))
    assert off.hedges is None and off.margin(off.tradable.h0) * nav == pytest.approx(without)


def test_partial_hedge_margins_the_rest_at_own_rates(tmp_path):
    uni = arb_book(tmp_path)
    data = problem_data(uni, OptimizationSettings())
    ids = list(data.tradable.ids)
    h = data.tradable.h0.copy()
    h[ids.index("AAA")] += 50_000 / data.nav  # 500 more AAA: unhedged
    expected = 0.02 * 150_000 + 0.3 * 50_000
    assert data.margin(h) * data.nav == pytest.approx(expected, rel=1e-6)


def test_margin_budget_binds_without_hedge_credit_and_not_with_it(tmp_path):
    uni = arb_book(tmp_path)
    # The future stays; the question is whether its hedge fits a 5% NAV (18,050) budget.
    cons = [C(kind="margin_budget", upper=5.0), C(kind="no_trade", instrument="FUT1")]
    free = CostSettings(linear=False, impact=False, borrow=False, financing=False,
                        dividends=False)  # pure risk: the hedge is worth keeping whole
    with_credit = OptimizationSettings(objective="min_total_risk", costs=free)
    data = problem_data(uni, with_credit)
    res = solve_problem(data, cons, with_credit)
    row = res.diagnostics.filter(pl.col("name") == "margin_budget").row(0, named=True)
    assert not row["binding"] and row["value"] < 5.0
    assert row["value"] == pytest.approx(100 * data.margin(res.h), rel=1e-6)
    ids = list(data.tradable.ids)
    basket = res.h[ids.index("AAA")] * data.nav, res.h[ids.index("BBB")] * data.nav
    assert basket == pytest.approx((100_000, 50_000), rel=1e-3)  # fully hedged

    no_credit = OptimizationSettings(objective="min_total_risk", margin_hedge_credit=False,
                                     costs=free)
    data = problem_data(uni, no_credit)
    res = solve_problem(data, cons, no_credit)
    row = res.diagnostics.filter(pl.col("name") == "margin_budget").row(0, named=True)
    assert row["binding"] and row["value"] == pytest.approx(5.0, abs=1e-4)
    assert row["dual"] > 0
    assert data.margin(res.h, hedge_credit=False) <= 0.05 + 1e-7
    # Without credit the basket legs cost 30-50% margin each: the hedge has to shrink.
    assert res.h[ids.index("AAA")] * data.nav < 50_000
