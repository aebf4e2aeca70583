"""The sample-data generator: reproducible, schema-exact, internally consistent data."""

from __future__ import annotations

import math
import re
import time
from datetime import timedelta

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from core.data import sample
from core.data.schemas import FACTOR_KINDS, TABLES
from sample_data import SAMPLE_DIR

CCY_COUNTRIES = {"USD": {"US"}, "EUR": {"DE", "FR", "NL", "IT", "ES"}, "GBP": {"GB"},
                 "JPY": {"JP"}}
COUNTRY_MICS = {"US": {"XNYS", "XNAS"}, "DE": {"XETR"}, "FR": {"XPAR"}, "NL": {"XAMS"},
                "IT": {"XMIL"}, "ES": {"XMAD"}, "GB": {"XLON"}, "JP": {"XTKS"}}


@pytest.fixture(scope="module")
def data() -> dict[str, pl.DataFrame]:
    return sample.generate(2000, 7)


@pytest.fixture(scope="module")
def book(data) -> pl.DataFrame:
    """Positions with instrument type, multiplier, lot, fx and USD notional."""
    fx = dict(data["fx_rates"].iter_rows())
    inst = data["instruments"].select("instrument_id", "type", "contract_multiplier",
                                      "lot_size", inst_currency="currency")
    return (data["positions"].join(inst, on="instrument_id", how="left")
            .with_columns(fx=pl.col("currency").replace_strict(fx, return_dtype=pl.Float64))
            .with_columns(notional=pl.col("position_shares") * pl.col("price")
                          * pl.col("contract_multiplier") * pl.col("fx")))


@pytest.fixture(scope="module")
def basket_values(data, book) -> pl.DataFrame:
    """Per basket: constituent count, basket value in USD, and the basket's own unit value."""
    cons = book.select(constituent_id="instrument_id", c_unit=pl.col("price") * pl.col("fx"),
                       c_currency="currency")
    legs = data["baskets"].join(cons, on="constituent_id", how="left")
    per = legs.group_by("basket_id").agg(
        n=pl.len(), value=(pl.col("shares_per_unit") * pl.col("c_unit")).sum(),
        currencies=pl.col("c_currency").unique(), cu=pl.col("creation_unit_size").unique())
    own = book.select(basket_id="instrument_id", type="type", currency="currency",
                      unit=pl.col("price") * pl.col("contract_multiplier") * pl.col("fx"))
    return per.join(own, on="basket_id", how="left").with_columns(
        premium_bp=(pl.col("unit") / pl.col("value") - 1.0) * 1e4).sort("basket_id")


# ----------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_frames(data):
    again = sample.generate(2000, 7)
    assert list(again) == list(data)
    for name in data:
        assert_frame_equal(again[name], data[name], check_exact=True)


def test_other_seed_gives_different_data(data):
    other = sample.generate(2000, 8)
    for name in ("instruments", "positions", "risk_model", "baskets", "factor_covariance"):
        assert not other[name].equals(data[name]), name
    assert other["fx_rates"].equals(data["fx_rates"])  # fixed reference rates


def test_size_below_minimum_is_refused():
    with pytest.raises(ValueError, match="at least"):
        sample.generate(sample.MIN_SIZE - 1, 7)


# ----------------------------------------------------------------------------- schema


def test_every_table_matches_its_spec(data):
    assert list(data) == list(TABLES)
    for name, spec in TABLES.items():
        frame = data[name]
        assert frame.columns == [c.name for c in spec.columns], name
        assert dict(frame.schema) == spec.polars_schema, name
        assert frame.height > 0, name


def test_values_respect_nullability_ranges_and_finiteness(data):
    for name, spec in TABLES.items():
        frame = data[name]
        for col in spec.columns:
            s = frame.get_column(col.name)
            if not col.nullable:
                assert s.null_count() == 0, f"{name}.{col.name} has nulls"
            values = s.drop_nulls()
            if isinstance(col.dtype, pl.List):
                values = values.explode()
            if values.dtype == pl.Float64:
                assert values.is_finite().all(), f"{name}.{col.name} has NaN/inf"
            if col.min is not None:
                assert (values >= col.min).all(), f"{name}.{col.name} below {col.min}"
            if col.max is not None:
                assert (values <= col.max).all(), f"{name}.{col.name} above {col.max}"
            if col.strictly_positive:
                assert (values > 0).all(), f"{name}.{col.name} not > 0"


def test_keys_are_unique(data):
    for name, spec in TABLES.items():
        frame = data[name]
        assert not frame.select(spec.key).is_duplicated().any(), f"{name} key {spec.key}"


def test_references_resolve(data):
    ids = set(data["instruments"].get_column("instrument_id"))
    for name, spec in TABLES.items():
        if spec.instrument_column:
            refs = set(data[name].get_column(spec.instrument_column))
            assert refs <= ids, f"{name}: unknown {sorted(refs - ids)[:5]}"
    cons = data["baskets"].join(data["instruments"], left_on="constituent_id",
                                right_on="instrument_id", how="left")
    assert (cons.get_column("type") == "Equity").all()
    fx = set(data["fx_rates"].get_column("currency"))
    for name in ("instruments", "positions", "cash"):
        assert set(data[name].get_column("currency")) <= fx, name
    # Every instrument has exactly one row in the per-instrument tables.
    for name in ("positions", "risk_model", "liquidity", "cost_model", "margin_model", "alpha"):
        assert data[name].get_column("instrument_id").sort().equals(
            data["instruments"].get_column("instrument_id").sort()), name
    pos = data["positions"].join(data["instruments"], on="instrument_id")
    assert (pos.get_column("currency") == pos.get_column("currency_right")).all()


# ----------------------------------------------------------------------------- instruments


def test_instrument_mix_and_identity(data):
    inst = data["instruments"]
    counts = dict(inst.group_by("type").len().iter_rows())
    assert counts == {"Equity": 1894, "ETF": 100, "Future": 6}
    eq = inst.filter(pl.col("type") == "Equity")
    share = {c: n / eq.height for c, n in eq.group_by("currency").len().iter_rows()}
    for ccy, target in zip(("USD", "EUR", "GBP", "JPY"), (0.50, 0.25, 0.10, 0.15)):
        assert share[ccy] == pytest.approx(target, abs=0.01)
    for ccy, country, mic, lot in eq.select("currency", "country", "primary_listing",
                                            "lot_size").unique().iter_rows():
        assert country in CCY_COUNTRIES[ccy]
        assert mic in COUNTRY_MICS[country]
        assert lot == (100 if ccy == "JPY" else 1)
    assert eq.get_column("sector").n_unique() == 11
    assert 25 <= eq.get_column("industry").n_unique() <= 30
    assert eq.get_column("beta").is_between(0.3, 1.8).all()
    assert set(eq.get_column("universe_flags")) == {"CORE", "CORE,LIQUID"}
    tickers = inst.get_column("ticker")
    assert tickers.n_unique() == inst.height
    assert tickers.str.contains(r"^[A-Z0-9][A-Z0-9.]{1,9}$").all()
    jp = eq.filter(pl.col("currency") == "JPY").get_column("ticker")
    assert jp.str.contains(r"^\d{4}\.T$").all()
    us = eq.filter(pl.col("country") == "US").get_column("ticker")
    assert us.str.contains(r"^[A-Z]{3,4}$").all()
    assert inst.get_column("instrument_id").str.contains(r"^(EQ\d{6}|ETF\d{4}|FUT_[A-Z]+_[A-Z]\d)$").all()
    not_fut = inst.filter(pl.col("type") != "Future")
    assert (not_fut.get_column("contract_multiplier") == 1.0).all()
    assert not_fut.get_column("expiry").null_count() == not_fut.height


def test_futures_contracts(data):
    fut = data["instruments"].filter(pl.col("type") == "Future").sort("instrument_id")
    assert (fut.get_column("expiry") > sample.RUN_DATE).all()
    assert (fut.get_column("lot_size") == 1).all()
    assert (fut.get_column("sector") == "Index").all()
    mult = dict(fut.select("instrument_id", "contract_multiplier").iter_rows())
    assert mult == {"FUT_ES_Z6": 50.0, "FUT_ES_H7": 50.0, "FUT_FESX_Z6": 10.0,
                    "FUT_FESX_H7": 10.0, "FUT_NK_Z6": 1000.0, "FUT_NK_H7": 1000.0}
    ccy = dict(fut.select("instrument_id", "currency").iter_rows())
    assert ccy["FUT_ES_Z6"] == "USD" and ccy["FUT_FESX_Z6"] == "EUR" and ccy["FUT_NK_Z6"] == "JPY"


# ----------------------------------------------------------------------------- baskets


def test_etf_baskets_price_at_basket_value(basket_values):
    etfs = basket_values.filter(pl.col("type") == "ETF")
    assert etfs.height == 100
    assert etfs.get_column("n").is_between(10, 60).all()
    for ccy, currencies, cu in etfs.select("currency", "currencies", "cu").iter_rows():
        assert currencies == [ccy]  # constituents trade in the ETF's currency
        assert len(cu) == 1 and cu[0] in (25000.0, 50000.0)
    prem = etfs.get_column("premium_bp")
    fair = prem.filter(prem.abs() <= 30.0)
    rich = prem.filter(prem.abs() > 30.0)
    assert fair.len() >= etfs.height - 2
    assert 1 <= rich.len() <= 2 and rich.is_between(40.0, 80.0).all()


def test_future_baskets_match_notional(data, basket_values):
    futs = basket_values.filter(pl.col("type") == "Future")
    assert futs.height == 6
    assert futs.get_column("n").is_between(30, 200).all()
    assert futs.get_column("premium_bp").abs().max() <= 10.0
    for ccy, currencies, cu in futs.select("currency", "currencies", "cu").iter_rows():
        assert currencies == [ccy] and cu == [None]
    price = dict(data["positions"].select("instrument_id", "price").iter_rows())
    assert price["FUT_ES_H7"] > price["FUT_ES_Z6"]  # positive carry on the USD index
    # The index is priced off its basket: level x multiplier ~ basket value per contract.
    es = futs.filter(pl.col("basket_id") == "FUT_ES_Z6")
    assert es.get_column("value").item() == pytest.approx(price["FUT_ES_Z6"] * 50.0, rel=1e-3)


def test_restricted_names_stay_out_of_hedge_baskets(data, basket_values):
    restricted = data["restrictions"].filter("restricted").get_column("instrument_id")
    legs = data["baskets"].filter(pl.col("constituent_id").is_in(restricted.implode()))
    # Exactly one ETF holds a restricted name (to exercise that diagnostic); no future does.
    assert legs.get_column("basket_id").unique().str.starts_with("ETF").all()
    assert legs.get_column("basket_id").n_unique() == 1


# ----------------------------------------------------------------------------- risk model


def test_factor_model_is_a_valid_covariance(data):
    factors = data["factors"].sort("position")
    k = factors.height
    assert 70 <= k <= 80
    assert factors.get_column("position").to_list() == list(range(k))
    assert set(factors.get_column("kind")) == set(FACTOR_KINDS)
    kinds = dict(factors.group_by("kind").len().iter_rows())
    assert kinds["style"] == 10 and kinds["currency"] == 4 and kinds["market"] == 1
    assert 25 <= kinds["industry"] <= 30
    names = factors.get_column("name").to_list()
    cov = data["factor_covariance"]
    assert cov.height == k * k
    pos = {n: i for i, n in enumerate(names)}
    m = np.full((k, k), np.nan)
    m[[pos[n] for n in cov.get_column("factor_i")],
      [pos[n] for n in cov.get_column("factor_j")]] = cov.get_column("covariance").to_numpy()
    assert not np.isnan(m).any()
    assert np.array_equal(m, m.T)
    assert np.linalg.eigvalsh(m).min() > 1e-6
    vol = dict(zip(names, np.sqrt(np.diag(m))))
    bands = {"style": (0.02, 0.06), "industry": (0.05, 0.10), "country": (0.06, 0.12),
             "currency": (0.06, 0.10), "market": (0.149, 0.151)}
    for name, kind in factors.select("name", "kind").iter_rows():
        lo, hi = bands[kind]
        assert lo <= vol[name] <= hi, (name, vol[name])


def test_loadings_cover_every_instrument(data):
    factors = data["factors"].sort("position")
    k = factors.height
    names = factors.get_column("name").to_list()
    risk = data["risk_model"].join(data["instruments"], on="instrument_id")
    assert (risk.get_column("factor_loadings").list.len() == k).all()
    assert set(risk.get_column("factor_set_name")) == {sample.FACTOR_SET_NAME}
    assert set(risk.get_column("model_type")) == {"axioma"}
    b = np.array(risk.get_column("factor_loadings").to_list())
    eq = (risk.get_column("type") == "Equity").to_numpy()
    idx = {n: i for i, n in enumerate(names)}
    rows = np.flatnonzero(eq)
    for col in ("industry", "country", "currency"):
        own = [idx[v] for v in risk.get_column(col).to_numpy()[rows]]
        assert np.all(b[rows, own] == 1.0), col
    styles = factors.filter(pl.col("kind") == "style").get_column("position").to_numpy()
    assert np.abs(b[np.ix_(rows, styles)]).max() <= 3.0
    mkt = idx["Market"]
    assert np.allclose(b[rows, mkt], risk.get_column("beta").to_numpy()[rows])
    # Baskets carry the value-weighted exposures of their constituents: exposure sums to 1.
    for kind in ("industry", "country", "currency"):
        cols = factors.filter(pl.col("kind") == kind).get_column("position").to_numpy()
        assert np.allclose(b[:, cols].sum(axis=1), 1.0, atol=1e-4), kind
    idio_vol = np.sqrt(risk.get_column("idio_variance").to_numpy())
    types = risk.get_column("type").to_numpy()
    assert np.all((idio_vol[types == "Equity"] >= 0.15) & (idio_vol[types == "Equity"] <= 0.45))
    assert np.all((idio_vol[types == "ETF"] >= 0.02) & (idio_vol[types == "ETF"] <= 0.05))
    assert np.allclose(idio_vol[types == "Future"], 0.01)


# ----------------------------------------------------------------------------- market data


def test_liquidity_costs_and_margin_are_plausible(data, book):
    typ = data["instruments"].select("instrument_id", "type")
    liq = data["liquidity"].join(typ, on="instrument_id").join(
        book.select("instrument_id", "price", "contract_multiplier"), on="instrument_id")
    assert np.allclose(liq["adv_shares"] * liq["price"] * liq["contract_multiplier"],
                       liq["adv_value"], rtol=1e-6)
    by = {t: liq.filter(pl.col("type") == t) for t in ("Equity", "ETF", "Future")}
    assert by["Equity"]["spread_bps"].is_between(1, 30).all()
    assert by["ETF"]["spread_bps"].is_between(1, 5).all()
    assert by["Future"]["spread_bps"].is_between(0.5, 1.5).all()
    assert by["Equity"]["volatility"].is_between(0.15, 0.60).all()
    assert by["ETF"]["volatility"].is_between(0.10, 0.25).all()
    assert by["Future"]["volatility"].is_between(0.15, 0.25).all()
    # Tighter spreads for more liquid names.
    us = by["Equity"].join(book.select("instrument_id", "currency"), on="instrument_id").filter(
        pl.col("currency") == "USD")
    assert np.corrcoef(np.log(us["adv_value"]), us["spread_bps"])[0, 1] < -0.5

    cost = data["cost_model"].join(data["instruments"], on="instrument_id")
    eqc = cost.filter(pl.col("type") == "Equity")
    assert eqc["impact_coeff"].is_between(0.3, 1.0).all()
    assert eqc["dividend_yield"].is_between(0.0, 0.06).all()
    htb = eqc.filter(pl.col("borrow_rate") > 0.02)
    assert 0 < htb.height < 0.1 * eqc.height and htb["borrow_rate"].is_between(0.05, 0.30).all()
    assert eqc.filter(pl.col("borrow_rate") <= 0.02)["borrow_rate"].is_between(0.0025, 0.01).all()
    fin = dict(eqc.group_by("currency").agg(pl.col("financing_rate").mean()).iter_rows())
    assert fin["USD"] == pytest.approx(0.05, abs=0.01) and fin["JPY"] < 0.01
    assert fin["EUR"] == pytest.approx(0.03, abs=0.01) and fin["GBP"] == pytest.approx(0.045, abs=0.01)
    futc = cost.filter(pl.col("type") == "Future")
    assert (futc["dividend_yield"] == 0).all() and (futc["borrow_rate"] == 0).all()

    mm = data["margin_model"].join(typ, on="instrument_id")
    assert (mm["maintenance_margin"] < mm["initial_margin"]).all()
    m_eq = mm.filter(pl.col("type") == "Equity")
    assert m_eq["initial_margin"].is_between(0.25, 0.5).all()
    assert m_eq["haircut"].is_between(0.15, 0.35).all()
    assert m_eq["synthetic_margin_override"].null_count() == m_eq.height
    m_etf = mm.filter(pl.col("type") == "ETF")
    assert m_etf["initial_margin"].is_between(0.15, 0.25).all()
    m_fut = mm.filter(pl.col("type") == "Future")
    assert m_fut["initial_margin"].is_between(0.05, 0.10).all()
    assert mm.filter(pl.col("type") != "Equity")["synthetic_margin_override"].is_between(
        0.02, 0.05).all()


def test_impact_curves_increase_and_are_concave(data):
    curve = data["impact_curve"].sort("instrument_id", "trade_size")
    n_eq = data["instruments"].filter(pl.col("type") == "Equity").height
    names = curve["instrument_id"].n_unique()
    assert 0.03 * n_eq <= names <= 0.07 * n_eq
    per = curve.group_by("instrument_id", maintain_order=True).agg("trade_size", "percent_impact")
    for _, size, impact in per.iter_rows():
        assert 3 <= len(size) <= 5
        assert np.all(np.diff(size) > 0) and np.all(np.diff(impact) > 0)
        slope = np.diff(impact) / np.diff(size)
        assert np.all(np.diff(slope) <= 1e-12)  # concave
    assert curve["percent_impact"].is_between(0.01, 0.6).all()


def test_restrictions_alpha_and_benchmark(data):
    r = data["restrictions"]
    n_eq = data["instruments"].filter(pl.col("type") == "Equity").height
    assert (r["restricted"] | r["no_new_shorts"] | r["no_new_longs"]).all()
    assert 0.01 * n_eq <= r["restricted"].sum() <= 0.04 * n_eq
    assert 0.02 * n_eq <= r["no_new_shorts"].sum() <= 0.06 * n_eq
    assert 0.003 * n_eq <= r["no_new_longs"].sum() <= 0.02 * n_eq

    a = data["alpha"].join(data["instruments"], on="instrument_id")
    assert (a["horizon_days"] == 20).all()
    eq_alpha = a.filter(pl.col("type") == "Equity")["alpha"]
    assert 0.01 <= eq_alpha.std() <= 0.02 and abs(eq_alpha.mean()) < 0.002
    assert a.filter(pl.col("type") != "Equity")["alpha"].abs().max() < 0.005

    bench = data["benchmark"]
    assert bench.height == 500
    assert bench["weight"].sum() == pytest.approx(1.0, abs=1e-12)
    assert bench["weight"].is_between(0.0, 1.0).all()


# ----------------------------------------------------------------------------- the book


def test_positions_are_lot_multiples_with_marks(book):
    shares = book["position_shares"].to_numpy()
    lots = book["lot_size"].to_numpy()
    assert np.all(np.mod(shares, lots) == 0)
    assert np.all(shares == np.round(shares))
    assert (book["currency"] == book["inst_currency"]).all()
    stale = book.filter(pl.col("price_time") != sample.AS_OF)
    assert stale.height == sample.N_STALE_PRICES
    assert (stale["price_time"] == sample.AS_OF - timedelta(days=2)).all()
    assert (stale["position_shares"] != 0).all()  # a held name, so the warning matters


def test_book_size_nav_and_gross(data, book):
    fx = dict(data["fx_rates"].iter_rows())
    cash = data["cash"]
    assert cash["currency"].to_list() == ["USD", "EUR", "GBP", "JPY"]
    amounts = dict(cash.iter_rows())
    assert 1e7 <= amounts["USD"] <= 1e8 and 1e9 <= amounts["JPY"] <= 1e10
    assert fx["USD"] == 1.0 and fx["EUR"] == pytest.approx(1.08, abs=0.05)
    assert fx["GBP"] == pytest.approx(1.27, abs=0.05) and fx["JPY"] == pytest.approx(0.0067, rel=0.1)
    cash_usd = sum(v * fx[c] for c, v in amounts.items())
    held = book.filter(pl.col("position_shares") != 0)
    non_fut = held.filter(pl.col("type") != "Future")
    nav = non_fut["notional"].sum() + cash_usd
    assert 100e6 <= nav <= 250e6
    assert nav == pytest.approx(sample.TARGET_NAV_USD, abs=1.0)
    eq = held.filter(pl.col("type") == "Equity")
    longs, shorts = (eq["notional"] > 0).sum(), (eq["notional"] < 0).sum()
    assert longs >= 100 and shorts >= 100
    gross = non_fut["notional"].abs().sum()
    assert 1.8 <= gross / nav <= 2.8


def test_book_has_index_arbitrage_against_future_basket(data, book):
    futs = book.filter((pl.col("type") == "Future") & (pl.col("position_shares") != 0))
    assert futs.height >= 1
    es = futs.filter(pl.col("instrument_id") == "FUT_ES_Z6")
    n = es["position_shares"].item()
    assert n < 0  # short the future ...
    legs = data["baskets"].filter(pl.col("basket_id") == "FUT_ES_Z6").join(
        book, left_on="constituent_id", right_on="instrument_id")
    # ... long the basket, share for share (rounded to whole shares).
    assert np.allclose(legs["position_shares"], np.round(-n * legs["shares_per_unit"]))
    assert legs["notional"].sum() == pytest.approx(-es["notional"].item(), rel=2e-3)


def test_book_has_etf_hedged_against_its_basket(data, book):
    held_etfs = book.filter((pl.col("type") == "ETF") & (pl.col("position_shares") > 0))
    hedged = []
    for etf, q, value in held_etfs.select("instrument_id", "position_shares",
                                          "notional").iter_rows():
        legs = data["baskets"].filter(pl.col("basket_id") == etf).join(
            book, left_on="constituent_id", right_on="instrument_id")
        if (np.allclose(legs["position_shares"], -np.round(q * legs["shares_per_unit"]))
                and math.isclose(-legs["notional"].sum(), value, rel_tol=0.005)):
            hedged.append(etf)
    assert hedged, "no ETF held long against a short position in its basket"


def test_other_seed_and_sizes_keep_the_invariants():
    small = sample.generate(sample.MIN_SIZE, 3)
    assert small["instruments"].height == sample.MIN_SIZE
    assert small["factors"].height == sample.K
    t0 = time.perf_counter()
    big = sample.generate(15000, 7)
    assert time.perf_counter() - t0 < 5.0
    assert big["instruments"].height == 15000
    assert (big["risk_model"]["factor_loadings"].list.len() == sample.K).all()
    assert big["positions"]["price"].null_count() == 0
    for tables in (small, big):
        assert not tables["instruments"]["ticker"].is_duplicated().any()
        ids = set(tables["instruments"]["instrument_id"])
        assert set(tables["baskets"]["constituent_id"]) <= ids


# ----------------------------------------------------------------------------- files


def test_write_tables_round_trips_atomically(tmp_path, data):
    out = tmp_path / "nested" / "set"
    paths = sample.write_tables(data, out)
    assert [p.name for p in paths] == [f"{n}.parquet" for n in TABLES]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)  # no temps
    for name, path in zip(TABLES, paths):
        assert_frame_equal(pl.read_parquet(path), data[name], check_exact=True)


def test_committed_sample_data_equals_generate_2000_7(data):
    for name in TABLES:
        path = SAMPLE_DIR / f"{name}.parquet"
        assert path.is_file(), f"missing {path}; regenerate the sample set"
        assert_frame_equal(pl.read_parquet(path), data[name], check_exact=True)
    total = sum((SAMPLE_DIR / f"{n}.parquet").stat().st_size for n in TABLES)
    assert total < 3_000_000
    readme = (SAMPLE_DIR / "README.md").read_text()
    assert re.search(r"spo sample-data --size 2000 --seed 7", readme)
