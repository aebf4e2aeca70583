"""Universe Builder: derived fields against hand-computed values, and each diagnostic."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from books import AS_OF, LONG, NAV, SHORT, book_config, book_tables, write_book
from console.state import AppState
from core.errors import DataError


def build(tmp_path, tables=None, **cfg):
    state = AppState(book_config(write_book(tmp_path / "data", tables), **cfg))
    return state.load()


def row(uni, iid):
    return uni.instrument(iid)


def codes(uni, iid=None):
    d = uni.diagnostics
    if iid is not None:
        d = d.filter(pl.col("instrument_id") == iid)
    return set(d.get_column("code").to_list())


def test_book_summary_matches_hand_computation(tmp_path):
    uni = build(tmp_path)
    s = uni.summary
    assert s["nav"] == pytest.approx(NAV)
    assert s["long"] == pytest.approx(LONG)
    assert s["short"] == pytest.approx(SHORT)
    assert s["gross"] == pytest.approx(LONG + SHORT)
    assert s["net"] == pytest.approx(LONG - SHORT)
    assert s["cash"] == pytest.approx(211_000.0)
    assert uni.diagnostics.is_empty()


def test_weights_and_legs(tmp_path):
    uni = build(tmp_path)
    aaa, bbb, fut = row(uni, "AAA"), row(uni, "BBB"), row(uni, "FUT1")
    assert aaa["weight_net"] == pytest.approx(100_000 / NAV)
    assert aaa["weight_gross"] == pytest.approx(100_000 / (LONG + SHORT))
    assert aaa["weight_long_leg"] == pytest.approx(100_000 / LONG)
    assert aaa["weight_short_leg"] == 0.0
    assert bbb["weight_short_leg"] == pytest.approx(-100_000 / SHORT)
    assert bbb["weight_long_leg"] == 0.0
    assert bbb["weight_max_leg"] == pytest.approx(-100_000 / max(LONG, SHORT))
    # A future carries full economic exposure but adds nothing to NAV.
    assert fut["position_notional"] == pytest.approx(-2 * 1500 * 50)
    assert fut["position_value"] == 0.0
    assert fut["weight_net"] == pytest.approx(-150_000 / NAV)


def test_fx_conversion_and_numeraire_switch(tmp_path):
    ccc = row(build(tmp_path), "CCC")
    assert ccc["fx"] == pytest.approx(1.1)
    assert ccc["unit_value"] == pytest.approx(22.0)
    assert ccc["position_notional"] == pytest.approx(11_000.0)
    eur = build(tmp_path / "eur", numeraire="EUR")
    assert eur.summary["nav"] == pytest.approx(NAV / 1.1)
    assert row(eur, "CCC")["position_notional"] == pytest.approx(10_000.0)
    assert row(eur, "AAA")["fx"] == pytest.approx(1 / 1.1)
    # Weights do not depend on the numeraire.
    assert row(eur, "AAA")["weight_net"] == pytest.approx(row(build(tmp_path / "usd"), "AAA")
                                                          ["weight_net"])


def test_numeraire_without_fx_rate_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match=r"numeraire CHF has no fx rate.*Fix: add a CHF row"):
        build(tmp_path, numeraire="CHF")


def test_liquidity_and_margin_fields(tmp_path):
    uni = build(tmp_path)
    aaa = row(uni, "AAA")
    assert aaa["position_adv_days"] == pytest.approx(1000 / 500_000)
    assert aaa["potential_trade_adv"] == pytest.approx(0.01 * NAV / 50e6)
    assert aaa["margin_initial"] == pytest.approx(100_000 * 0.3)
    assert aaa["margin_maintenance"] == pytest.approx(100_000 * 0.25)
    assert aaa["haircut_exposure"] == pytest.approx(100_000 * 0.25)
    assert row(uni, "FUT1")["margin_initial"] == pytest.approx(150_000 * 0.08)
    bbb = row(uni, "BBB")
    assert bbb["no_new_shorts"] and not bbb["restricted"] and bbb["tradable"]
    assert not aaa["no_new_shorts"] and not aaa["restricted"]


def test_basket_look_through(tmp_path):
    uni = build(tmp_path)
    etf, fut = row(uni, "ETF1"), row(uni, "FUT1")
    assert etf["basket_value"] == pytest.approx(0.1 * 100 + 0.4 * 50)
    assert etf["basket_premium_bps"] == pytest.approx(20.0)
    assert etf["look_through_valid"] and etf["hedgeable"]
    assert etf["creation_unit_size"] == 50_000
    assert fut["basket_value"] == pytest.approx(75_000.0)
    assert fut["basket_premium_bps"] == pytest.approx(0.0, abs=1e-9)
    assert row(uni, "AAA")["hedgeable"] is None  # not a basket


def test_factor_model_and_loadings(tmp_path):
    uni = build(tmp_path)
    fm = uni.factor_model
    assert fm.names == ("Market", "Value", "Size")
    assert fm.covariance[0, 1] == fm.covariance[1, 0] == pytest.approx(0.001)
    assert fm.covariance[1, 2] == 0.0  # omitted pairs are uncorrelated
    ids = uni.frame.get_column("instrument_id").to_list()
    assert np.allclose(uni.loadings[ids.index("BBB")], [0.9, -0.3, 0.4])
    assert np.allclose(uni.loadings[ids.index("CASH_USD")], 0.0)


def test_missing_price_and_zero_price_make_names_untradable(tmp_path):
    t = book_tables()
    t["positions"] = t["positions"].with_columns(
        price=pl.when(pl.col("instrument_id") == "AAA").then(None)
        .when(pl.col("instrument_id") == "CCC").then(0.0).otherwise(pl.col("price")))
    uni = build(tmp_path, t)
    assert "missing_price" in codes(uni, "AAA")
    assert "the book cannot be valued" in uni.diagnostics.filter(
        pl.col("instrument_id") == "AAA").item(0, "message")
    assert "zero_price" in codes(uni, "CCC")
    assert row(uni, "AAA")["tradable"] is False
    assert row(uni, "AAA")["untradable_reason"] == "no price"
    assert row(uni, "CCC")["untradable_reason"] == "zero price"
    # The ETF whose constituent has no price loses its look-through, with a warning.
    assert row(uni, "ETF1")["look_through_valid"] is False
    assert "unhedgeable_synthetic" in codes(uni, "ETF1")


def test_nan_price_is_treated_as_missing(tmp_path):
    t = book_tables()
    t["positions"] = t["positions"].with_columns(
        price=pl.when(pl.col("instrument_id") == "BBB").then(float("nan"))
        .otherwise(pl.col("price")))
    uni = build(tmp_path, t)
    assert "missing_price" in codes(uni, "BBB")


def test_stale_price_warning(tmp_path):
    t = book_tables()
    t["positions"] = t["positions"].with_columns(
        price_time=pl.when(pl.col("instrument_id") == "CCC")
        .then(pl.lit(AS_OF - dt.timedelta(days=3))).otherwise(pl.col("price_time")))
    uni = build(tmp_path, t)
    stale = uni.diagnostics.filter(pl.col("code") == "stale_price")
    assert stale.get_column("instrument_id").to_list() == ["CCC"]
    assert stale.item(0, "severity") == "warning"
    assert row(uni, "CCC")["tradable"]


def test_unknown_currency_and_currency_mismatch(tmp_path):
    t = book_tables()
    t["instruments"] = t["instruments"].with_columns(
        currency=pl.when(pl.col("instrument_id") == "CCC").then(pl.lit("XXX"))
        .otherwise(pl.col("currency")))
    t["positions"] = t["positions"].with_columns(
        currency=pl.when(pl.col("instrument_id") == "AAA").then(pl.lit("EUR"))
        .when(pl.col("instrument_id") == "CCC").then(pl.lit("XXX"))
        .otherwise(pl.col("currency")))
    uni = build(tmp_path, t)
    assert "unknown_currency" in codes(uni, "CCC")
    assert "currency_mismatch" in codes(uni, "AAA")
    assert not row(uni, "CCC")["tradable"] and not row(uni, "AAA")["tradable"]


def test_invalid_symbol_and_duplicate_symbol(tmp_path):
    t = book_tables()
    t["instruments"] = t["instruments"].with_columns(
        ticker=pl.when(pl.col("instrument_id") == "AAA").then(pl.lit("aa a!"))
        .when(pl.col("instrument_id") == "CCC").then(pl.lit("BBB"))
        .otherwise(pl.col("ticker")),
        primary_listing=pl.when(pl.col("instrument_id") == "CCC").then(pl.lit("XNAS"))
        .otherwise(pl.col("primary_listing")))
    uni = build(tmp_path, t)
    assert "invalid_symbol" in codes(uni, "AAA")
    assert "invalid_symbol" in codes(uni, "CCC") and "invalid_symbol" in codes(uni, "BBB")
    assert row(uni, "CCC")["untradable_reason"] == "ambiguous symbol"


def test_missing_risk_cost_and_liquidity(tmp_path):
    t = book_tables()
    t["risk_model"] = t["risk_model"].filter(pl.col("instrument_id") != "AAA")
    t["cost_model"] = t["cost_model"].filter(pl.col("instrument_id") != "BBB")
    t["liquidity"] = t["liquidity"].filter(pl.col("instrument_id") != "CCC")
    uni = build(tmp_path, t)
    assert "missing_risk" in codes(uni, "AAA") and not row(uni, "AAA")["tradable"]
    assert "missing_cost" in codes(uni, "BBB")
    bbb = row(uni, "BBB")
    # Conservative imputation: the most expensive equity in the book.
    assert bbb["tradable"] and bbb["linear_cost_bps"] == 5.0 and not bbb["has_cost"]
    assert "missing_liquidity" in codes(uni, "CCC") and not row(uni, "CCC")["tradable"]


def test_wrong_length_loadings_is_missing_risk(tmp_path):
    t = book_tables()
    t["risk_model"] = t["risk_model"].with_columns(
        factor_loadings=pl.when(pl.col("instrument_id") == "BBB")
        .then(pl.lit([1.0, 2.0], dtype=pl.List(pl.Float64)))
        .otherwise(pl.col("factor_loadings")))
    uni = build(tmp_path, t)
    msg = uni.diagnostics.filter(pl.col("instrument_id") == "BBB").item(0, "message")
    assert "2 factor loadings, the factor set has 3" in msg
    assert not row(uni, "BBB")["tradable"]


def test_unhedgeable_synthetic_and_mismatched_basket(tmp_path):
    t = book_tables()
    t["instruments"] = pl.concat([t["instruments"], t["instruments"].filter(
        pl.col("instrument_id") == "ETF1").with_columns(
        instrument_id=pl.lit("SYN1"), ticker=pl.lit("SYN1"), type=pl.lit("Synthetic_Basket"))])
    for name in ("risk_model", "liquidity", "cost_model", "margin_model", "positions"):
        t[name] = pl.concat([t[name], t[name].filter(pl.col("instrument_id") == "ETF1")
                            .with_columns(instrument_id=pl.lit("SYN1"))])
    t["baskets"] = t["baskets"].with_columns(
        shares_per_unit=pl.when(pl.col("basket_id") == "FUT1").then(550.0)
        .otherwise(pl.col("shares_per_unit")))
    uni = build(tmp_path, t)
    assert "unhedgeable_synthetic" in codes(uni, "SYN1")
    assert row(uni, "SYN1")["untradable_reason"] == "no basket"
    mismatch = uni.diagnostics.filter(pl.col("code") == "mismatched_basket_weights")
    assert mismatch.get_column("instrument_id").to_list() == ["FUT1"]
    assert row(uni, "FUT1")["basket_premium_bps"] == pytest.approx((75_000 / 82_500 - 1) * 1e4)


def test_restricted_constituent_makes_basket_unhedgeable(tmp_path):
    t = book_tables()
    t["restrictions"] = pl.DataFrame({
        "instrument_id": ["AAA"], "restricted": [True], "no_new_shorts": [False],
        "no_new_longs": [False]})
    uni = build(tmp_path, t)
    assert row(uni, "AAA")["untradable_reason"] == "restricted"
    assert row(uni, "ETF1")["hedgeable"] is False
    assert row(uni, "ETF1")["look_through_valid"] is True


def test_expired_and_expiring_futures(tmp_path):
    t = book_tables()
    t["instruments"] = t["instruments"].with_columns(
        expiry=pl.when(pl.col("instrument_id") == "FUT1").then(pl.lit(dt.date(2026, 11, 19)))
        .otherwise(pl.col("expiry")))
    uni = build(tmp_path, t)
    assert row(uni, "FUT1")["untradable_reason"] == "expired"
    t["instruments"] = t["instruments"].with_columns(
        expiry=pl.when(pl.col("instrument_id") == "FUT1").then(pl.lit(dt.date(2026, 11, 21)))
        .otherwise(pl.col("expiry")))
    uni = build(tmp_path / "2", t)
    d = uni.diagnostics.filter(pl.col("instrument_id") == "FUT1")
    assert d.item(0, "severity") == "warning" and "not bought" in d.item(0, "message")
    assert row(uni, "FUT1")["tradable"] and row(uni, "FUT1")["expiring"]
    # The optimizer may sell it but not buy it.
    from core.model.data import problem_data
    from core.optimize import solve_problem
    from core.settings import OptimizationSettings

    data = problem_data(uni, OptimizationSettings())
    res = solve_problem(data, [], OptimizationSettings(objective="min_total_risk"))
    diag = res.diagnostics.filter(pl.col("name") == "restriction:no_buy")
    assert diag.get_column("label").to_list() == ["FUT1"]
    fut = list(data.tradable.ids).index("FUT1")
    assert res.h[fut] <= data.tradable.h0[fut] + 1e-9


def test_duplicate_ids_are_reported_not_silently_dropped(tmp_path):
    t = book_tables()
    t["liquidity"] = pl.concat([t["liquidity"], t["liquidity"].filter(
        pl.col("instrument_id") == "AAA")])
    uni = build(tmp_path, t)
    dup = uni.diagnostics.filter(pl.col("code") == "duplicate_id")
    assert dup.get_column("instrument_id").to_list() == ["AAA"]
    assert "2 rows share" in dup.item(0, "message")
    # Both rows are ignored, so AAA also has no liquidity and cannot trade.
    assert row(uni, "AAA")["untradable_reason"] == "no liquidity"


def test_positions_for_unknown_instruments(tmp_path):
    t = book_tables()
    t["positions"] = pl.concat([t["positions"], pl.DataFrame({
        "instrument_id": ["GHOST"], "position_shares": [10.0], "price": [5.0],
        "currency": ["USD"], "price_time": [AS_OF]}, schema=t["positions"].schema)])
    uni = build(tmp_path, t)
    d = uni.diagnostics.filter(pl.col("instrument_id") == "GHOST")
    assert d.item(0, "severity") == "error" and d.item(0, "code") == "unknown_instrument"
    assert "GHOST" not in uni.frame.get_column("instrument_id").to_list()


def test_benchmark_weights_that_do_not_sum_to_one(tmp_path):
    t = book_tables()
    t["benchmark"] = t["benchmark"].with_columns(pl.col("weight") * 0.9)
    uni = build(tmp_path, t)
    assert "benchmark_weights" in codes(uni)


def test_intraday_reload_reports_changes(tmp_path):
    data = write_book(tmp_path / "data")
    state = AppState(book_config(data))
    state.load()
    t = book_tables()
    t["positions"] = t["positions"].with_columns(
        position_shares=pl.when(pl.col("instrument_id") == "AAA").then(1500.0)
        .otherwise(pl.col("position_shares")),
        price=pl.when(pl.col("instrument_id") == "BBB").then(51.0).otherwise(pl.col("price")))
    t["positions"].write_parquet(data / "positions.parquet")
    changes = state.reload_intraday()
    by_id = {r["instrument_id"]: r for r in changes.to_dicts()}
    assert set(by_id) == {"AAA", "BBB"}
    assert by_id["AAA"]["shares_change"] == 500.0
    assert by_id["AAA"]["notional_change"] == pytest.approx(50_000.0)
    assert by_id["BBB"]["price_after"] == 51.0 and by_id["BBB"]["shares_change"] == 0
    assert state.universe.summary["nav"] == pytest.approx(NAV + 50_000 - 2_000)


def test_cash_carries_no_margin_or_cost(tmp_path):
    uni = build(tmp_path)
    cash = uni.frame.filter(pl.col("is_cash"))
    assert cash.height == 2 and not cash.get_column("tradable").any()
    for c in ("margin_initial", "haircut_exposure", "linear_cost_bps", "initial_margin"):
        assert cash.get_column(c).to_list() == [0.0, 0.0], c
    expected = 100_000 * 0.3 + 100_000 * 0.5 + 11_000 * 0.3 + 3_006 * 0.2 + 150_000 * 0.08
    assert uni.summary["margin_initial"] == pytest.approx(expected)
