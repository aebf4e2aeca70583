"""Cash per currency: self-financing trades, FX orders, and numeraire independence."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from books import book_config, book_tables, write_book
from console.state import AppState
from core.constraints.spec import ConstraintSpec as C
from core.results import optimize
from core.settings import OptimizationSettings

SETTINGS = OptimizationSettings(risk_aversion=3.0)


def load(tmp_path, numeraire="USD"):
    return AppState(book_config(write_book(tmp_path), numeraire=numeraire)).load()


def test_switching_numeraire_leaves_the_solution_the_same_up_to_fx(tmp_path):
    cons = [C(kind="turnover", upper=30),
            C(kind="holding", instrument="CCC", upper=10_000, unit="notional")]
    usd = optimize(load(tmp_path / "usd"), cons, SETTINGS)
    # 10,000 USD of CCC is 10,000 / 1.1 EUR: the same limit, in the other currency.
    cons_eur = cons[:1] + [C(kind="holding", instrument="CCC", upper=10_000 / 1.1,
                             unit="notional")]
    eur = optimize(load(tmp_path / "eur", "EUR"), cons_eur, SETTINGS)
    assert usd.status == eur.status == "optimal"
    assert usd.summary["utility_bp"] == pytest.approx(eur.summary["utility_bp"], rel=1e-6)
    a = usd.optimal.sort("instrument_id")
    b = eur.optimal.sort("instrument_id")
    assert a.get_column("shares_after").to_list() == b.get_column("shares_after").to_list()
    assert np.allclose(a.get_column("notional_after").to_numpy() / 1.1,
                       b.get_column("notional_after").to_numpy(), rtol=1e-9)


def test_cash_band_is_funded_by_an_fx_trade(tmp_path):
    uni = load(tmp_path)
    nav = uni.nav
    # Buy 20,000 EUR of CCC (22,000 USD) with only 10,000 EUR of cash and no overdraft.
    target = 100 * (11_000 + 22_000) / nav
    cons = [C(kind="holding", instrument="CCC", lower=target, upper=target),
            C(kind="currency_cash", group="EUR", lower=0.0)]
    res = optimize(uni, cons, SETTINGS)
    assert res.status == "optimal"
    fx = res.fx_orders
    assert fx.get_column("currency_pair").to_list() == ["EURUSD"]
    assert fx.item(0, "side") == "BUY"
    assert fx.item(0, "notional") == pytest.approx(10_000.0, rel=1e-3)  # EUR bought
    cash = {c["currency"]: c["after"] for c in res.summary["cash"]}
    assert cash["EUR"] == pytest.approx(0.0, abs=5.0)  # within a share's rounding


def test_no_fx_trades_without_cash_bands(tmp_path):
    res = optimize(load(tmp_path), [C(kind="turnover", upper=30)], SETTINGS)
    assert res.fx_orders is None or res.fx_orders.height == 0


def test_unknown_currency_in_a_band(tmp_path):
    from core.constraints.normalize import ConstraintInputError

    with pytest.raises(ConstraintInputError, match="no cash or instrument in currency 'CHF'"):
        optimize(load(tmp_path), [C(kind="currency_cash", group="CHF", lower=0)], SETTINGS)


def _book_with_eur_factor(tmp_path):
    t = book_tables()
    # A EUR currency factor (10% vol): CCC, the EUR stock, loads 1 on it.
    t["factors"] = pl.concat([t["factors"], pl.DataFrame(
        {"factor_set_name": ["TINY"], "name": ["EUR"], "kind": ["currency"], "position": [3]},
        schema=t["factors"].schema)])
    t["factor_covariance"] = pl.concat([t["factor_covariance"], pl.DataFrame(
        {"factor_set_name": ["TINY"], "factor_i": ["EUR"], "factor_j": ["EUR"],
         "covariance": [0.01]}, schema=t["factor_covariance"].schema)])
    t["risk_model"] = t["risk_model"].with_columns(factor_loadings=pl.struct(
        "instrument_id", "factor_loadings").map_elements(
        lambda r: r["factor_loadings"] + [1.0 if r["instrument_id"] == "CCC" else 0.0],
        return_dtype=pl.List(pl.Float64)))
    return AppState(book_config(write_book(tmp_path, t))).load()


def test_fx_factor_risk_counts_cash_and_is_hedged_with_fx(tmp_path):
    from core.model.data import problem_data
    from core.settings import CostSettings

    uni = _book_with_eur_factor(tmp_path)
    nav = uni.nav
    off = problem_data(uni, OptimizationSettings())
    on = problem_data(uni, OptimizationSettings(fx_factor_risk=True))
    eur = list(on.factor_names).index("EUR")
    # CCC is 11,000 USD; EUR cash another 11,000 USD, counted only with FX factor risk.
    assert off.factor_exposures(off.tradable.h0, False)[eur] * nav == pytest.approx(11_000)
    assert on.factor_exposures(on.tradable.h0, False)[eur] * nav == pytest.approx(22_000)
    # Nothing may trade: the only way to cut the EUR risk is to sell EUR cash for USD.
    # FX at no cost: at 0.5 bp the hedge stops where the last bit of variance is worth
    # less than the FX cost (7,091 USD of EUR exposure left in this small book).
    settings = OptimizationSettings(objective="min_total_risk", fx_factor_risk=True,
                                    fx_cost_bps=0.0,
                                    costs=CostSettings(linear=False, impact=False,
                                                       borrow=False, financing=False))
    res = optimize(uni, [C(kind="no_trade")], settings)
    fx = res.fx_orders
    assert fx.get_column("currency_pair").to_list() == ["EURUSD"]
    assert fx.item(0, "side") == "SELL"
    assert fx.item(0, "notional") == pytest.approx(20_000.0, rel=1e-3)  # EUR sold
    assert res.summary["risk"]["after"]["factor_pct"] < res.summary["risk"]["before"][
        "factor_pct"]
