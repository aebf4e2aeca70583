"""ETF create/redeem and EFP: taken when they pay, not otherwise."""

from __future__ import annotations

import numpy as np
import pytest

from books import book_config, flows_tables, write_book
from console.state import AppState
from core.model.data import problem_data
from core.optimize import solve_problem
from core.results import optimize
from core.settings import OptimizationSettings, SyntheticSettings


def book(tmp_path, etf_price: float = 30.06, fut_price: float = 1500.0):
    t = flows_tables(etf_price, fut_price)
    return AppState(book_config(write_book(tmp_path, t))).load()


ARB = OptimizationSettings(risk_aversion=5.0, synthetics=SyntheticSettings(
    allow_create_redeem=True, create_redeem_cost_bps=2.0))


def test_rich_etf_is_created_and_sold(tmp_path):
    uni = book(tmp_path, etf_price=30.06)  # 20 bp over its basket
    result = optimize(uni, [], ARB)
    flows = result.flows
    assert flows.height == 1 and flows.item(0, "direction") == "CREATE"
    assert flows.item(0, "notional") > 0
    # The created units are sold; the basket exposure left behind is hedged in the market
    # (through the constituents or the future, whichever is cheaper).
    sides = dict(zip(result.trades.get_column("instrument_id"), result.trades.get_column("side")))
    assert sides["ETF1"].startswith("SELL")
    assert result.summary["utility_bp"] > 0
    assert result.summary["costs_bp"]["flow_premium_captured"] < 0  # a gain
    gross = result.summary["book"]["after"]["gross_pct"]
    assert result.summary["risk"]["after"]["total_pct"] < 0.05 * gross  # hedged, not a bet


def test_cheap_etf_is_redeemed(tmp_path):
    uni = book(tmp_path, etf_price=29.94)  # 20 bp under
    result = optimize(uni, [], ARB)
    assert result.flows.item(0, "direction") == "REDEEM"


def test_fair_etf_is_left_alone(tmp_path):
    uni = book(tmp_path, etf_price=30.0)
    result = optimize(uni, [], ARB)
    assert result.flows.height == 0 or abs(result.flows.item(0, "notional")) < 1.0
    assert result.trades.height == 0


def test_no_arbitrage_when_create_redeem_is_off(tmp_path):
    uni = book(tmp_path, etf_price=30.06)
    result = optimize(uni, [], OptimizationSettings(risk_aversion=5.0))
    assert result.flows.height == 0 and result.trades.height == 0


def test_redeem_limit(tmp_path):
    uni = book(tmp_path, etf_price=29.94)
    capped = ARB.model_copy(update={"synthetics": ARB.synthetics.model_copy(
        update={"max_redeem_notional": 6_100.0})})  # two creation units of 3,000
    result = optimize(uni, [], capped)
    assert result.flows.item(0, "units") == pytest.approx(-2.0)


def test_efp_is_cheaper_than_crossing_both_legs(tmp_path):
    # Switch 2 contracts of futures exposure into the basket: by EFP or in the market.
    from core.constraints.spec import ConstraintSpec as C

    uni = book(tmp_path)
    nav = uni.nav
    cons = [C(kind="holding", instrument="FUT1", upper=-100 * 150_000 / nav,
              lower=-100 * 150_000 / nav),
            C(kind="holding", instrument="AAA", lower=100 * 100_000 / nav,
              upper=100 * 100_000 / nav),
            C(kind="holding", instrument="BBB", lower=100 * 50_000 / nav,
              upper=100 * 50_000 / nav)]
    cheap = OptimizationSettings(synthetics=SyntheticSettings(allow_efp=True, efp_cost_bps=0.5))
    data = problem_data(uni, cheap)
    res = solve_problem(data, cons, cheap)
    assert len(res.flows) == 1 and res.flows[0] * nav == pytest.approx(-150_000, rel=1e-3)
    # Nothing crosses the market: the EFP delivers both legs.
    assert np.abs(data.market_trade(res.h, res.flows)).max() < 1e-6
    dear = OptimizationSettings(synthetics=SyntheticSettings(allow_efp=True, efp_cost_bps=50.0))
    data = problem_data(uni, dear)
    res = solve_problem(data, cons, dear)
    assert abs(res.flows[0]) * nav < 1.0  # crossing both legs is cheaper than a 50 bp EFP
