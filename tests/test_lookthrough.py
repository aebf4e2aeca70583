"""Look-through: a basket against its constituents carries only its residual risk."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from books import book_config, book_tables, write_book
from console.state import AppState
from core.constraints.spec import ConstraintSpec as C
from core.model.data import problem_data
from core.optimize import solve_problem
from core.settings import CostSettings, OptimizationSettings


def load(tmp_path, shares: dict[str, float], restrictions: bool = True):
    t = book_tables()
    if not restrictions:
        t["restrictions"] = t["restrictions"].clear()
    t["positions"] = t["positions"].with_columns(position_shares=pl.col("instrument_id").replace_strict(
        shares, default=0.0, return_dtype=pl.Float64))
    return AppState(book_config(write_book(tmp_path, t))).load()


def test_index_arbitrage_carries_only_the_futures_residual(tmp_path):
    # Short 2 FUT1 (150,000 notional) against exactly its basket: 1,000 AAA and 1,000 BBB.
    uni = load(tmp_path, {"FUT1": -2.0, "AAA": 1000.0, "BBB": 1000.0})
    on = problem_data(uni, OptimizationSettings())
    off = problem_data(uni, OptimizationSettings(look_through=False))
    h_on, h_off = on.tradable.h0, off.tradable.h0
    assert np.allclose(on.factor_exposures(h_on, False), 0.0, atol=1e-12)
    fut = list(on.tradable.ids).index("FUT1")
    residual = 0.0001 * h_on[fut] ** 2  # FUT1's own specific variance on its position
    assert on.specific_variance(h_on, False) == pytest.approx(residual, rel=1e-9)
    # Without look-through the two legs' risks add up instead of cancelling.
    assert off.specific_variance(h_off, False) > 100 * residual
    assert np.abs(off.factor_exposures(h_off, False)).max() > 0.01


def test_etf_against_its_basket_nets_by_constituent(tmp_path):
    # ETF1 = 0.1 AAA + 0.4 BBB per share at a 20 bp premium: 10,000 shares against 1,000 AAA
    # and 4,000 BBB short leaves 20 bp of the ETF's notional as net exposure.
    uni = load(tmp_path, {"ETF1": 10_000.0, "AAA": -1000.0, "BBB": -4000.0})
    data = problem_data(uni, OptimizationSettings())
    h = data.tradable.h0
    lt = data.lt
    e = lt.E @ data.positions_all(h, False)
    ids = list(data.tradable.ids) + list(data.fixed.ids)
    etf_notional = 10_000 * 30.06 / data.nav
    assert e[ids.index("ETF1")] == 0.0  # mapped away
    assert e[ids.index("AAA")] == pytest.approx(etf_notional * 10 / 30.06 - 100_000 / data.nav)
    assert abs(e).sum() < 0.003 * etf_notional * 2


def test_group_exposure_counts_constituents(tmp_path):
    uni = load(tmp_path, {"ETF1": 10_000.0})
    data = problem_data(uni, OptimizationSettings())
    res = solve_problem(data, [C(kind="group_net", group_by="sector", lower=-100, upper=100),
                               C(kind="turnover", upper=0.0001)],
                        OptimizationSettings(risk_aversion=1.0))
    by = {r["label"]: r["value"] for r in res.diagnostics.filter(
        pl.col("name").str.starts_with("group_net")).to_dicts()}
    nav = data.nav
    # 10,000 ETF1 = 1,000 AAA (Tech, 100 each) + 4,000 BBB (Energy, 50 each), in %NAV.
    assert by["Tech"] == pytest.approx(100 * 100_000 / nav, rel=1e-3)
    assert by["Energy"] == pytest.approx(100 * 200_000 / nav, rel=1e-3)
    assert "(none)" not in by or by["(none)"] == pytest.approx(0.0, abs=1e-6)


def test_optimizer_hedges_through_the_basket(tmp_path):
    # Long ETF1 with no view on anything: minimizing risk should short its constituents.
    uni = load(tmp_path, {"ETF1": 10_000.0}, restrictions=False)
    off = CostSettings(linear=False, impact=False, borrow=False, financing=False,
                       dividends=False)
    settings = OptimizationSettings(objective="min_total_risk", costs=off)
    data = problem_data(uni, settings)
    cons = [C(kind="no_trade", instrument="ETF1"), C(kind="no_trade", instrument="FUT1")]
    res = solve_problem(data, cons, settings)
    after = data.factor_exposures(res.h, False)
    assert np.abs(after).max() < 0.1 * np.abs(data.factor_exposures(data.tradable.h0, False)).max()
    ids = list(data.tradable.ids)
    # The basket itself: 0.1 AAA and 0.4 BBB per ETF share, short.
    nav = data.nav
    assert res.h[ids.index("AAA")] * nav / 100 == pytest.approx(-1000, rel=0.05)
    assert res.h[ids.index("BBB")] * nav / 50 == pytest.approx(-4000, rel=0.05)
