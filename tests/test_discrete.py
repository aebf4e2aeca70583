"""Round and repair: thresholds and counts the convex model cannot hold on its own."""

from __future__ import annotations

import polars as pl
import pytest

from console.state import AppState
from core.results import optimize
from core.settings import DiscreteSettings, RunConfig
from sample_data import SAMPLE_DIR


@pytest.fixture(scope="module")
def sample():
    cfg = RunConfig.load(SAMPLE_DIR / "scenarios" / "default.toml")
    return cfg, AppState(cfg).load()


def run(sample, **discrete):
    cfg, uni = sample
    settings = cfg.optimization.model_copy(update={"discrete": DiscreteSettings(**discrete)})
    return optimize(uni, cfg.constraints, settings)


def test_minimum_trade_drops_small_trades_and_reports_the_cost(sample):
    base = run(sample)
    res = run(sample, min_trade_pct=0.05)
    trades = res.trades.with_columns(pct=pl.col("notional") / res.summary["nav"] * 100)
    assert res.status == "optimal"
    # Lot rounding aside, no trade is smaller than 0.05% of NAV.
    assert (trades.get_column("pct") >= 0.05 - 0.01).all()
    assert res.trades.height < base.trades.height
    d = res.summary["discrete"]
    assert d["given_up_bp"] >= -1e-6 and d["names"]
    assert all(n["action"].startswith("trade dropped") for n in d["names"])
    assert d["relaxation_utility_bp"] == pytest.approx(base.summary["utility_bp"], abs=1e-6)


def test_max_trades(sample):
    res = run(sample, max_trades=20)
    assert res.status == "optimal"
    assert res.trades.height <= 20


def test_max_positions_and_min_holding(sample):
    res = run(sample, max_positions=500, min_holding_pct=0.02)
    held = res.optimal.filter(pl.col("shares_after") != 0)
    assert held.height <= 500
    small = held.filter((pl.col("weight_after").abs() < 0.0002 - 1e-6)
                        & (pl.col("tradable")))
    assert small.height == 0
    actions = {n["action"] for n in res.summary["discrete"]["names"]}
    assert "position closed: max_positions" in actions


def test_no_repair_without_discrete_settings(sample):
    res = run(sample)
    assert "discrete" not in res.summary
    # Rounding to lots is checked against every hard constraint and reported by name.
    assert isinstance(res.summary["broken_by_rounding"], list)


def _lot_book(tmp_path):
    from books import book_config, book_tables, write_book

    t = book_tables()
    # AAA trades in lots of 100 shares: 10,000 USD, 4.4% of the book's NAV.
    t["instruments"] = t["instruments"].with_columns(
        lot_size=pl.when(pl.col("instrument_id") == "AAA").then(100).otherwise(1))
    t["alpha"] = t["alpha"].with_columns(
        alpha=pl.when(pl.col("instrument_id") == "AAA").then(0.2).otherwise(0.0))
    return AppState(book_config(write_book(tmp_path, t))).load()


def test_rounding_keeps_a_hard_bound_it_can_keep(tmp_path):
    from core.constraints.spec import ConstraintSpec as C
    from core.settings import OptimizationSettings

    uni = _lot_book(tmp_path)
    nav = uni.nav
    # The optimizer wants AAA up to its cap: 0.6 lot more. Rounding to the nearest lot
    # would buy a whole lot and break the cap; the repair buys none.
    cap = 100 * (100_000 + 6_000) / nav
    res = optimize(uni, [C(kind="holding", instrument="AAA", upper=cap)],
                   OptimizationSettings(risk_aversion=0.1))
    aaa = res.optimal.filter(pl.col("instrument_id") == "AAA").row(0, named=True)
    assert aaa["shares_target"] == pytest.approx(1060, abs=1)
    assert aaa["shares_after"] == 1000 and aaa["notional_after"] <= cap * nav / 100
    assert res.summary["broken_by_rounding"] == []


def test_rounding_says_which_bound_it_could_not_keep(tmp_path):
    from core.constraints.spec import ConstraintSpec as C
    from core.settings import OptimizationSettings

    uni = _lot_book(tmp_path)
    nav = uni.nav
    # Exactly 1,050 shares: neither 1,000 nor 1,100 keeps it.
    target = 100 * 105_000 / nav
    res = optimize(uni, [C(kind="holding", instrument="AAA", lower=target, upper=target)],
                   OptimizationSettings(risk_aversion=0.1))
    broken = res.summary["broken_by_rounding"]
    assert [(b["name"], b["label"]) for b in broken] == [("holding[AAA]", "AAA")]
    assert any("rounding to lots moves holding[AAA]" in note for note in res.solved.notes)
