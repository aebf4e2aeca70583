"""Cash per currency: self-financing trades, FX orders, and numeraire independence."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from books import book_config, write_book
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
