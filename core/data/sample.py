"""Deterministic sample data: every table of `core.data.schemas.TABLES`, from one seed.

`generate(size, seed)` builds a multi-currency universe of about `size` instruments
(equities in USD/EUR/GBP/JPY, ETFs with creation baskets, index futures on three indices
with their constituent baskets), an Axioma-style factor risk model, liquidity, costs,
margin, alpha, restrictions, a benchmark, and a long/short book with an index arbitrage
(short future against its basket) and an ETF hedged against its basket.

Everything comes from `numpy.random.default_rng(seed)` and the fixed `AS_OF` time, so the
same size and seed give identical frames. `write_tables` writes them as parquet, one file
per table, atomically. The committed set in `sample_data/` is `generate(2000, 7)`.

Units follow `core.data.schemas`: prices and notionals in the instrument's currency
(futures in index points, one contract = price x contract_multiplier), rates and
volatilities as annual decimals, fx rates in USD per unit of currency.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from sample_data import SAMPLE_AS_OF

from core.atomic import atomic_write
from core.data.schemas import TABLES

AS_OF: datetime = SAMPLE_AS_OF  # naive, treat as UTC
RUN_DATE: date = AS_OF.date()
STALE_PRICE_TIME = AS_OF - timedelta(days=2)
N_STALE_PRICES = 3

FACTOR_SET_NAME = "SPO_GLOBAL_V1"
MODEL_TYPE = "axioma"
HORIZON_DAYS = 20
TARGET_NAV_USD = 150e6
MIN_SIZE = 300

FX_RATES = {"USD": 1.0, "EUR": 1.08, "GBP": 1.27, "JPY": 0.0067, "CHF": 1.13, "CAD": 0.73}
BASE_RATES = {"USD": 0.046, "EUR": 0.025, "GBP": 0.040, "JPY": 0.0025}
FINANCING_SPREAD = 0.005

# Equity currencies, their share of the equities, countries (with weights) and venues.
EQUITY_CURRENCIES = ("USD", "EUR", "GBP", "JPY")
CURRENCY_SHARE = (0.50, 0.25, 0.10, 0.15)
COUNTRIES = {
    "USD": (("US",), (1.0,)),
    "EUR": (("DE", "FR", "NL", "IT", "ES"), (0.30, 0.30, 0.15, 0.13, 0.12)),
    "GBP": (("GB",), (1.0,)),
    "JPY": (("JP",), (1.0,)),
}
COUNTRY_MIC = {"DE": "XETR", "FR": "XPAR", "NL": "XAMS", "IT": "XMIL", "ES": "XMAD",
               "GB": "XLON", "JP": "XTKS"}  # US: XNYS or XNAS
COUNTRY_SUFFIX = {"US": "", "DE": ".DE", "FR": ".PA", "NL": ".AS", "IT": ".MI", "ES": ".MC",
                  "GB": ".L", "JP": ".T"}

SECTORS: dict[str, tuple[str, ...]] = {
    "Energy": ("Oil & Gas", "Energy Equipment & Services"),
    "Materials": ("Chemicals", "Metals & Mining", "Construction Materials"),
    "Industrials": ("Aerospace & Defense", "Machinery", "Transportation", "Building Products"),
    "Consumer Discretionary": ("Automobiles", "Specialty Retail", "Hotels & Leisure"),
    "Consumer Staples": ("Food Products", "Beverages", "Household Products"),
    "Health Care": ("Pharmaceuticals", "Biotechnology", "Health Care Equipment"),
    "Financials": ("Banks", "Insurance", "Capital Markets"),
    "Information Technology": ("Software", "Semiconductors", "Technology Hardware"),
    "Communication Services": ("Media & Entertainment", "Telecommunication Services"),
    "Utilities": ("Electric Utilities", "Multi-Utilities"),
    "Real Estate": ("Equity REITs", "Real Estate Services"),
}
CYCLICAL_SECTORS = ("Energy", "Materials", "Industrials", "Consumer Discretionary",
                    "Financials", "Information Technology")
INDUSTRIES: tuple[str, ...] = tuple(i for inds in SECTORS.values() for i in inds)
INDUSTRY_SECTOR: tuple[str, ...] = tuple(s for s, inds in SECTORS.items() for _ in inds)

STYLE_FACTORS = ("Value", "Size", "Momentum", "Volatility", "Quality", "Growth", "Leverage",
                 "Liquidity", "Dividend Yield", "Earnings Yield")
# A global model covers more markets than the sample trades in; the extra country factors
# carry no sample exposure but keep the model the shape of a real one.
TRADED_COUNTRIES = ("US", "DE", "FR", "NL", "IT", "ES", "GB", "JP")
OTHER_COUNTRIES = ("CA", "CH", "SE", "DK", "NO", "FI", "BE", "AT", "IE", "PT", "AU", "NZ",
                   "HK", "SG", "KR", "TW", "CN", "IN", "BR")
EUROPE = {"DE", "FR", "NL", "IT", "ES", "GB", "CH", "SE", "DK", "NO", "FI", "BE", "AT", "IE",
          "PT"}
ASIA = {"JP", "AU", "NZ", "HK", "SG", "KR", "TW", "CN", "IN"}
MARKET_FACTOR = "Market"
FACTOR_NAMES: tuple[str, ...] = (STYLE_FACTORS + INDUSTRIES + TRADED_COUNTRIES
                                 + OTHER_COUNTRIES + EQUITY_CURRENCIES + (MARKET_FACTOR,))
FACTOR_KINDS: tuple[str, ...] = (
    ("style",) * len(STYLE_FACTORS) + ("industry",) * len(INDUSTRIES)
    + ("country",) * (len(TRADED_COUNTRIES) + len(OTHER_COUNTRIES))
    + ("currency",) * len(EQUITY_CURRENCIES) + ("market",))
K = len(FACTOR_NAMES)
F_STYLE = 0
F_INDUSTRY = len(STYLE_FACTORS)
F_COUNTRY = F_INDUSTRY + len(INDUSTRIES)
F_CURRENCY = F_COUNTRY + len(TRADED_COUNTRIES) + len(OTHER_COUNTRIES)
F_MARKET = K - 1

# Index futures: root, currency, venue, multiplier, index level, tick, constituents,
# near/far daily volume in contracts, initial margin rate, Friday of the expiry month.
INDEX_FUTURES = (
    ("ES", "USD", "XCME", 50.0, 5950.0, 0.25, 200, (1.5e6, 8.0e4), 0.060, 3),
    ("FESX", "EUR", "XEUR", 10.0, 4850.0, 1.0, 50, (8.0e5, 4.0e4), 0.080, 3),
    ("NK", "JPY", "XOSE", 1000.0, 38500.0, 10.0, 150, (3.0e4, 2.0e3), 0.070, 2),
)
EXPIRIES = (("Z6", 2026, 12), ("H7", 2027, 3))

ETF_SHARE = 0.05
ETF_EUR_SHARE = 0.20
ETF_SECTOR_SHARE = 0.35
ETF_PREMIUM_BP = 25.0  # fair ETFs trade within +-25bp (+ price rounding) of their basket
RICH_ETF_PREMIUM_BP = (45.0, 75.0)
N_RICH_ETFS = 2
FUTURE_BASIS_BP = 5.0  # basket value per contract within +-5bp of price x multiplier


def third_friday(year: int, month: int, nth: int = 3) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(4 - first.weekday()) % 7 + 7 * (nth - 1))


# ----------------------------------------------------------------------------- helpers


def _ids(prefix: str, n: int, width: int) -> np.ndarray:
    return np.char.add(prefix, np.char.zfill(np.arange(1, n + 1).astype(str), width))


def _letter_codes(rng: np.random.Generator, n: int, p3: float) -> np.ndarray:
    """n unique upper-case codes of 3 or 4 letters, in draw order."""
    out = np.empty(0, dtype="U4")
    while out.size < n:
        m = 2 * (n - out.size) + 64
        chars = rng.integers(65, 91, size=(m, 4), dtype=np.uint8)
        chars[rng.random(m) < p3, 3] = 0
        cand = np.concatenate([out, chars.view("S4").ravel().astype("U4")])
        _, first = np.unique(cand, return_index=True)
        out = cand[np.sort(first)]
    return out[:n]


def _weighted_choice(rng: np.random.Generator, labels: tuple, weights: tuple, n: int
                     ) -> np.ndarray:
    return np.asarray(labels)[rng.choice(len(labels), size=n, p=np.asarray(weights))]


def _frame(name: str, data: dict) -> pl.DataFrame:
    spec = TABLES[name]
    names = [c.name for c in spec.columns]
    if set(data) != set(names):
        raise ValueError(f"{name}: columns {sorted(data)} do not match the spec {names}")
    height = max(len(v) for v in data.values() if not np.isscalar(v) and v is not None)
    cols = []
    for c in spec.columns:
        v = data[c.name]
        if v is None:
            cols.append(pl.Series(c.name, [None] * height, dtype=c.dtype))
        elif isinstance(v, pl.Series):
            cols.append(v.alias(c.name).cast(c.dtype))
        elif np.isscalar(v):
            cols.append(pl.Series(c.name, [v] * height).cast(c.dtype))
        else:
            cols.append(pl.Series(c.name, v).cast(c.dtype))
    return pl.DataFrame(cols).cast(spec.polars_schema)


def _rank_desc(values: np.ndarray) -> np.ndarray:
    """Indices of values, largest first (stable, so ties keep id order)."""
    return np.argsort(-values, kind="stable")


# ----------------------------------------------------------------------------- generator


def generate(size: int = 2000, seed: int = 7) -> dict[str, pl.DataFrame]:
    """One frame per table in `TABLES`, with the spec's columns and dtypes, in spec order."""
    if size < MIN_SIZE:
        raise ValueError(f"size must be at least {MIN_SIZE} (got {size})")
    rng = np.random.default_rng(seed)
    fx_of = lambda ccy: np.vectorize(FX_RATES.__getitem__, otypes=[float])(ccy)  # noqa: E731

    n_fut = len(INDEX_FUTURES) * len(EXPIRIES)
    n_etf = max(4, int(round(ETF_SHARE * size)))
    n_eq = size - n_etf - n_fut

    # ---- equities: identity ---------------------------------------------------------
    counts = [int(round(s * n_eq)) for s in CURRENCY_SHARE[:-1]]
    counts.append(n_eq - sum(counts))
    eq_ccy = rng.permutation(np.repeat(np.asarray(EQUITY_CURRENCIES), counts))
    eq_country = np.empty(n_eq, dtype="U2")
    for ccy, (countries, weights) in COUNTRIES.items():
        m = eq_ccy == ccy
        eq_country[m] = _weighted_choice(rng, countries, weights, int(m.sum()))
    eq_mic = np.empty(n_eq, dtype="U4")
    us = eq_country == "US"
    eq_mic[us] = np.where(rng.random(int(us.sum())) < 0.55, "XNYS", "XNAS")
    for country, mic in COUNTRY_MIC.items():
        eq_mic[eq_country == country] = mic
    eq_ind = rng.integers(0, len(INDUSTRIES), n_eq)
    eq_industry = np.asarray(INDUSTRIES)[eq_ind]
    eq_sector = np.asarray(INDUSTRY_SECTOR)[eq_ind]
    eq_ids = _ids("EQ", n_eq, 6)

    jp = eq_ccy == "JPY"
    n_jp = int(jp.sum())
    codes = _letter_codes(rng, n_eq - n_jp + n_etf, p3=0.45)
    eq_ticker = np.empty(n_eq, dtype="U12")
    eq_ticker[~jp] = np.char.add(codes[: n_eq - n_jp],
                                 np.vectorize(COUNTRY_SUFFIX.__getitem__)(eq_country[~jp]))
    jp_pool = np.arange(1301, 10000) if n_jp <= 8699 else np.arange(10000, 100000)
    eq_ticker[jp] = np.char.add(rng.choice(jp_pool, n_jp, replace=False).astype(str), ".T")
    etf_codes = codes[n_eq - n_jp:]

    # ---- equities: size, price, liquidity --------------------------------------------
    eq_fx = fx_of(eq_ccy)
    mcap_usd = np.exp(rng.normal(np.log(4e9), 1.4, n_eq)).clip(2e8, 3e12)
    turnover = np.select([eq_ccy == "USD", eq_ccy == "JPY"], [1.0, 0.8], 0.6)
    adv_usd = (5e6 * (mcap_usd / 1e9) ** 0.85 * turnover
               * np.exp(rng.normal(0.0, 0.35, n_eq))).clip(1e6, 5e9)
    price_mu = np.select([eq_ccy == "USD", eq_ccy == "EUR", eq_ccy == "GBP"],
                         [np.log(60.0), np.log(40.0), np.log(8.0)], np.log(2500.0))
    price_lo = np.select([eq_ccy == "USD", eq_ccy == "EUR", eq_ccy == "GBP"], [5, 2, 1], 300)
    price_hi = np.select([eq_ccy == "USD", eq_ccy == "EUR", eq_ccy == "GBP"],
                         [800, 500, 60], 20000)
    eq_price = np.exp(price_mu + rng.normal(0, 0.85, n_eq)).clip(price_lo, price_hi)
    eq_price = np.where(jp, np.round(eq_price), np.round(eq_price, 2))
    eq_lot = np.where(jp, 100, 1)
    eq_adv_shares = np.maximum(np.round(adv_usd / eq_fx / eq_price), 100.0)
    eq_adv_value = np.round(eq_adv_shares * eq_price, 2)
    eq_spread = (15.0 * (adv_usd / 5e6) ** -0.4 * np.exp(rng.normal(0, 0.2, n_eq))).clip(1, 30)
    eq_flags = np.where(adv_usd >= 2e7, "CORE,LIQUID", "CORE")

    # ---- equities: risk ---------------------------------------------------------------
    eq_beta = np.round(rng.normal(1.0, 0.3, n_eq).clip(0.3, 1.8), 3)
    div_mean = np.select([eq_ccy == "USD", eq_ccy == "EUR", eq_ccy == "GBP"],
                         [0.015, 0.030, 0.035], 0.022)
    eq_div = np.where(rng.random(n_eq) < 0.15, 0.0,
                      rng.gamma(2.0, div_mean / 2.0, n_eq)).clip(0.0, 0.06)
    eq_idio_vol = rng.uniform(0.15, 0.45, n_eq)
    z = lambda x: (x - x.mean()) / x.std()  # noqa: E731
    style = rng.normal(0.0, 1.0, (n_eq, len(STYLE_FACTORS)))
    style[:, 1] = 0.9 * z(np.log(mcap_usd)) + 0.3 * style[:, 1]  # Size
    style[:, 3] = 0.7 * z(eq_idio_vol) + 0.6 * style[:, 3]  # Volatility
    style[:, 7] = 0.7 * z(np.log(adv_usd / mcap_usd)) + 0.6 * style[:, 7]  # Liquidity
    style[:, 8] = 0.8 * z(eq_div) + 0.5 * style[:, 8]  # Dividend Yield
    style = np.round(style.clip(-3.0, 3.0), 4)

    b_eq = np.zeros((n_eq, K))
    b_eq[:, F_STYLE:F_INDUSTRY] = style
    rows = np.arange(n_eq)
    b_eq[rows, F_INDUSTRY + eq_ind] = 1.0
    country_pos = {c: F_COUNTRY + i for i, c in enumerate(TRADED_COUNTRIES + OTHER_COUNTRIES)}
    b_eq[rows, np.vectorize(country_pos.__getitem__)(eq_country)] = 1.0
    ccy_pos = {c: F_CURRENCY + i for i, c in enumerate(EQUITY_CURRENCIES)}
    b_eq[rows, np.vectorize(ccy_pos.__getitem__)(eq_ccy)] = 1.0
    b_eq[:, F_MARKET] = eq_beta

    eq_alpha = np.round(rng.normal(0.0, 0.015, n_eq).clip(-0.08, 0.08), 6)

    # Compliance flags are drawn before the baskets: restricted names stay out of every
    # basket (a restricted constituent makes the basket unusable as a hedge) except one.
    restricted = rng.random(n_eq) < 0.02
    htb = rng.random(n_eq) < 0.03
    no_new_shorts = (rng.random(n_eq) < 0.02) | (htb & (rng.random(n_eq) < 0.5))
    no_new_longs = rng.random(n_eq) < 0.01

    # ---- index futures ------------------------------------------------------------------
    idx_members: dict[str, np.ndarray] = {}
    fut_rows: list[dict] = []
    basket_parts: list[dict] = []
    for root, ccy, mic, mult, level, tick, n_cons, advs, im, nth in INDEX_FUTURES:
        pool = np.flatnonzero((eq_ccy == ccy) & ~restricted)
        n_take = min(n_cons, max(30, len(pool) // 3) if ccy == "USD" else len(pool))
        members = np.sort(pool[_rank_desc(mcap_usd[pool])[:n_take]])
        idx_members[root] = members
        w = mcap_usd[members] / mcap_usd[members].sum()
        spot = level * (1.0 + rng.normal(0.0, 0.01))
        q = float(w @ eq_div[members])
        for (code, year, month), adv_contracts in zip(EXPIRIES, advs):
            expiry = third_friday(year, month, nth)
            t = (expiry - RUN_DATE).days / 365.0
            fut_price = round(spot * (1.0 + (BASE_RATES[ccy] - q) * t) / tick) * tick
            eps = rng.uniform(-FUTURE_BASIS_BP, FUTURE_BASIS_BP) * 1e-4
            spu = w * fut_price * mult * (1.0 + eps) / eq_price[members]
            fid = f"FUT_{root}_{code}"
            basket_parts.append({"basket_id": fid, "idx": members, "spu": spu, "cu": None})
            fut_rows.append({
                "id": fid, "ticker": f"{root}{code}", "mic": mic, "ccy": ccy, "mult": mult,
                "expiry": expiry, "price": fut_price, "im": im,
                "adv": adv_contracts * float(np.exp(rng.normal(0.0, 0.1))),
            })

    # ---- ETFs ---------------------------------------------------------------------------
    n_etf_eur = int(round(ETF_EUR_SHARE * n_etf))
    etf_ccy = np.where(np.arange(n_etf) < n_etf - n_etf_eur, "USD", "EUR")
    etf_ccy = np.concatenate([etf_ccy[:1], rng.permutation(etf_ccy[1:])])  # ETF0001: USD
    etf_ids = _ids("ETF", n_etf, 4)
    etf_ticker = np.where(etf_ccy == "USD", etf_codes, np.char.add(etf_codes, ".DE"))
    etf_mic = np.where(etf_ccy == "USD", "ARCX", "XETR")
    hedged_etf = 0  # held long against a short basket: its names are kept out of the rest
    others = np.arange(1, n_etf)
    rich = np.sort(rng.choice(others, size=N_RICH_ETFS, replace=False))
    odd_one = int(rng.choice(np.setdiff1d(others, rich)))  # holds one restricted name
    es_set = np.zeros(n_eq, bool)
    es_set[idx_members["ES"]] = True
    etf_price = np.empty(n_etf)
    etf_cu = np.empty(n_etf)
    etf_parts: list[dict] = []
    open_names = {c: (eq_ccy == c) & ~restricted for c in ("USD", "EUR")}
    sector_of = {sec: eq_sector == sec for sec in SECTORS}
    for e in range(n_etf):
        ccy = etf_ccy[e]
        base = open_names[ccy]
        if e == hedged_etf:
            base = base & ~es_set
        pool = np.flatnonzero(base)
        n_cons = int(rng.integers(10, 61))
        if e != hedged_etf and rng.random() < ETF_SECTOR_SHARE:
            sector = rng.choice(list(SECTORS))
            themed = np.flatnonzero(base & sector_of[sector])
            if len(themed) >= 10:
                pool = themed
        idx = np.sort(rng.choice(pool, size=min(n_cons, len(pool)), replace=False))
        if e == odd_one:
            bad = np.flatnonzero((eq_ccy == ccy) & restricted)
            if len(bad):
                idx = np.sort(np.append(idx[1:], bad[0]))
        w = mcap_usd[idx] * np.exp(rng.normal(0.0, 0.3, len(idx)))
        w /= w.sum()
        nav_target = rng.uniform(25.0, 250.0)
        cu = float(rng.choice([25000.0, 50000.0]))
        shares_cu = np.maximum(np.round(w * nav_target * cu / eq_price[idx]), 1.0)
        spu = shares_cu / cu
        nav = float(spu @ eq_price[idx])
        if e in rich:
            prem = rng.uniform(*RICH_ETF_PREMIUM_BP)
        else:
            prem = rng.uniform(-ETF_PREMIUM_BP, ETF_PREMIUM_BP)
        etf_price[e] = round(nav * (1.0 + prem * 1e-4), 2)
        etf_cu[e] = cu
        etf_parts.append({"basket_id": etf_ids[e], "idx": idx, "spu": spu, "cu": cu})
    basket_parts = etf_parts + basket_parts

    # ---- look-through risk for ETFs and futures -----------------------------------------
    def look_through(part: dict) -> tuple[np.ndarray, np.ndarray]:
        value = part["spu"] * eq_price[part["idx"]]
        w = value / value.sum()
        return w, w @ b_eq[part["idx"]]

    etf_b = np.zeros((n_etf, K))
    etf_div = np.zeros(n_etf)
    for e, part in enumerate(etf_parts):
        w, etf_b[e] = look_through(part)
        etf_div[e] = w @ eq_div[part["idx"]]
    fut_b = np.zeros((n_fut, K))
    for f, part in enumerate(basket_parts[n_etf:]):
        fut_b[f] = look_through(part)[1]
    b_all = np.round(np.vstack([b_eq, etf_b, fut_b]), 6)

    # ---- factor covariance ----------------------------------------------------------------
    cov = _factor_covariance(rng)
    var_model = ((b_all @ cov) * b_all).sum(axis=1)
    etf_idio_vol = rng.uniform(0.02, 0.05, n_etf)
    idio_var = np.round(np.concatenate([eq_idio_vol ** 2, etf_idio_vol ** 2,
                                        np.full(n_fut, 0.01 ** 2)]), 8)
    total_vol = np.sqrt(var_model + idio_var)
    vol = np.round(np.concatenate([
        total_vol[:n_eq].clip(0.15, 0.60),
        total_vol[n_eq:n_eq + n_etf].clip(0.10, 0.25),
        total_vol[n_eq + n_etf:].clip(0.15, 0.25)]), 4)

    # ---- instruments ---------------------------------------------------------------------
    fut_ids = np.array([r["id"] for r in fut_rows])
    fut_ccy = np.array([r["ccy"] for r in fut_rows])
    fut_price = np.array([r["price"] for r in fut_rows])
    fut_mult = np.array([r["mult"] for r in fut_rows])
    all_ids = np.concatenate([eq_ids, etf_ids, fut_ids])
    all_ccy = np.concatenate([eq_ccy, etf_ccy, fut_ccy])
    all_price = np.concatenate([eq_price, etf_price, fut_price])
    all_mult = np.concatenate([np.ones(n_eq + n_etf), fut_mult])
    all_fx = fx_of(all_ccy)
    n_all = len(all_ids)
    beta_all = np.round(b_all[:, F_MARKET], 3)

    instruments = pl.concat([
        _frame("instruments", {
            "instrument_id": eq_ids, "ticker": eq_ticker, "type": "Equity",
            "primary_listing": eq_mic, "currency": eq_ccy, "sector": eq_sector,
            "industry": eq_industry, "country": eq_country, "universe_flags": eq_flags,
            "expiry": None, "contract_multiplier": 1.0, "lot_size": eq_lot,
            "beta": eq_beta}),
        _frame("instruments", {
            "instrument_id": etf_ids, "ticker": etf_ticker, "type": "ETF",
            "primary_listing": etf_mic, "currency": etf_ccy, "sector": None,
            "industry": None, "country": None, "universe_flags": "CORE,LIQUID",
            "expiry": None, "contract_multiplier": 1.0, "lot_size": 1,
            "beta": beta_all[n_eq:n_eq + n_etf]}),
        _frame("instruments", {
            "instrument_id": fut_ids, "ticker": np.array([r["ticker"] for r in fut_rows]),
            "type": "Future", "primary_listing": np.array([r["mic"] for r in fut_rows]),
            "currency": fut_ccy, "sector": "Index", "industry": None, "country": None,
            "universe_flags": "CORE,LIQUID",
            "expiry": pl.Series([r["expiry"] for r in fut_rows], dtype=pl.Date),
            "contract_multiplier": fut_mult, "lot_size": 1,
            "beta": beta_all[n_eq + n_etf:]}),
    ])

    # ---- baskets -------------------------------------------------------------------------
    sizes = [len(p["idx"]) for p in basket_parts]
    baskets = _frame("baskets", {
        "basket_id": np.repeat([p["basket_id"] for p in basket_parts], sizes),
        "constituent_id": eq_ids[np.concatenate([p["idx"] for p in basket_parts])],
        "shares_per_unit": np.concatenate([p["spu"] for p in basket_parts]),
        "creation_unit_size": pl.Series(
            np.repeat([p["cu"] for p in basket_parts], sizes).tolist(), dtype=pl.Float64),
    })

    # ---- factor model tables ---------------------------------------------------------------
    factors = _frame("factors", {
        "factor_set_name": FACTOR_SET_NAME, "name": np.asarray(FACTOR_NAMES),
        "kind": np.asarray(FACTOR_KINDS), "position": np.arange(K)})
    factor_covariance = _frame("factor_covariance", {
        "factor_set_name": FACTOR_SET_NAME,
        "factor_i": np.repeat(np.asarray(FACTOR_NAMES), K),
        "factor_j": np.tile(np.asarray(FACTOR_NAMES), K),
        "covariance": cov.ravel()})
    risk_model = _frame("risk_model", {
        "instrument_id": all_ids,
        "factor_loadings": pl.Series(b_all).cast(pl.List(pl.Float64)),
        "idio_variance": idio_var, "model_type": MODEL_TYPE,
        "factor_set_name": FACTOR_SET_NAME})

    # ---- liquidity ------------------------------------------------------------------------
    etf_adv_value = np.exp(rng.uniform(np.log(5e7), np.log(5e9), n_etf)) / fx_of(etf_ccy)
    etf_adv_shares = np.round(etf_adv_value / etf_price)
    fut_adv_shares = np.round([r["adv"] for r in fut_rows])
    adv_shares = np.concatenate([eq_adv_shares, etf_adv_shares, fut_adv_shares])
    adv_value = np.round(adv_shares * all_price * all_mult, 2)
    spread = np.round(np.concatenate([
        eq_spread, rng.uniform(1.0, 5.0, n_etf),
        np.tile([0.5, 1.0], len(INDEX_FUTURES)) * rng.uniform(1.0, 1.2, n_fut)]), 3)
    liquidity = _frame("liquidity", {
        "instrument_id": all_ids, "adv_value": adv_value, "adv_shares": adv_shares,
        "spread_bps": spread, "volatility": vol})

    # ---- cost model ----------------------------------------------------------------------
    is_eq = np.arange(n_all) < n_eq
    is_fut = np.arange(n_all) >= n_eq + n_etf
    commission = np.where(is_fut, 0.2, rng.uniform(1.0, 2.0, n_all))
    borrow = rng.uniform(0.0025, 0.01, n_all)
    borrow[:n_eq] = np.where(htb, rng.uniform(0.05, 0.30, n_eq), borrow[:n_eq])
    borrow[is_fut] = 0.0
    financing = np.vectorize(BASE_RATES.__getitem__, otypes=[float])(all_ccy) + FINANCING_SPREAD
    financing[is_fut] = 0.0
    cost_model = _frame("cost_model", {
        "instrument_id": all_ids,
        "linear_cost_bps": np.round(spread / 2.0 + commission, 3),
        "impact_coeff": np.round(np.where(is_fut, rng.uniform(0.3, 0.5, n_all),
                                          rng.uniform(0.3, 1.0, n_all)), 3),
        "borrow_rate": np.round(borrow, 5), "financing_rate": np.round(financing, 5),
        "dividend_yield": np.round(np.concatenate([eq_div, etf_div, np.zeros(n_fut)]), 5)})

    # ---- impact curves (about 5% of equities) ---------------------------------------------
    curve_names = np.sort(rng.choice(n_eq, size=max(1, int(round(0.05 * n_eq))), replace=False))
    n_pts = rng.integers(3, 6, len(curve_names))
    who = np.repeat(curve_names, n_pts)
    step = np.arange(len(who)) - np.repeat(np.cumsum(n_pts) - n_pts, n_pts)
    frac = np.array([0.01, 0.05, 0.10, 0.20, 0.30])[step]
    level_pct = np.repeat(rng.uniform(0.3, 0.8, len(curve_names)), n_pts) * (
        vol[who] / 0.30)
    impact_curve = _frame("impact_curve", {
        "instrument_id": eq_ids[who],
        "trade_size": np.round(frac * eq_adv_value[who], 0),
        "percent_impact": np.round((level_pct * np.sqrt(frac)).clip(0.01, 0.6), 4)})

    # ---- restrictions (only names with a flag) -------------------------------------------
    flagged = np.flatnonzero(restricted | no_new_shorts | no_new_longs)
    restrictions = _frame("restrictions", {
        "instrument_id": eq_ids[flagged], "restricted": restricted[flagged],
        "no_new_shorts": no_new_shorts[flagged], "no_new_longs": no_new_longs[flagged]})

    # ---- margin ----------------------------------------------------------------------------
    vol_score = ((vol - 0.15) / 0.45).clip(0.0, 1.0)
    im_eq = (0.25 + 0.22 * vol_score + rng.uniform(0.0, 0.03, n_all)).clip(0.25, 0.5)
    im_etf = rng.uniform(0.15, 0.25, n_all)
    im_fut = np.zeros(n_all)
    im_fut[is_fut] = np.array([r["im"] for r in fut_rows]) * rng.uniform(1.0, 1.15, n_fut)
    initial = np.select([is_eq, is_fut], [im_eq, im_fut], im_etf)
    maintenance = initial * np.where(is_fut, 0.8, 0.7)
    haircut = np.select([is_eq, is_fut],
                        [0.15 + 0.18 * vol_score + rng.uniform(0.0, 0.02, n_all), initial],
                        rng.uniform(0.12, 0.20, n_all))
    override = np.where(is_eq, np.nan, np.where(is_fut, rng.uniform(0.02, 0.03, n_all),
                                                 rng.uniform(0.02, 0.05, n_all)))
    margin_model = _frame("margin_model", {
        "instrument_id": all_ids, "initial_margin": np.round(initial, 4),
        "maintenance_margin": np.round(maintenance, 4), "haircut": np.round(haircut, 4),
        "synthetic_margin_override": pl.Series(np.round(override, 4), nan_to_null=True)})

    # ---- alpha -----------------------------------------------------------------------------
    alpha = _frame("alpha", {
        "instrument_id": all_ids,
        "alpha": np.concatenate([eq_alpha, np.round(rng.normal(0.0, 5e-4, n_etf + n_fut), 6)]),
        "horizon_days": HORIZON_DAYS})

    # ---- book ------------------------------------------------------------------------------
    shares = np.zeros(n_all)
    # Index arbitrage: short the near ES future, long its basket.
    es_near = n_eq + n_etf  # FUT_ES_Z6
    es_part = basket_parts[n_etf]
    n_es = -int(round(30e6 / (fut_price[0] * fut_mult[0])))
    shares[es_near] = n_es
    shares[es_part["idx"]] += np.round(-n_es * es_part["spu"])
    # ETF hedge: long whole creation units of ETF0001, short its basket.
    hp = etf_parts[hedged_etf]
    n_cu = max(1, int(round(8e6 / (etf_cu[hedged_etf] * etf_price[hedged_etf]))))
    shares[n_eq + hedged_etf] = n_cu * etf_cu[hedged_etf]
    shares[hp["idx"]] -= np.round(n_cu * etf_cu[hedged_etf] * hp["spu"])
    # Long/short sleeve, away from the hedged names.
    busy = es_set.copy()
    busy[hp["idx"]] = True
    pool = np.flatnonzero(~busy)
    n_ls = min(int(np.clip(round(0.17 * size), 40, 400)), len(pool))
    ls = np.sort(rng.choice(pool, size=n_ls, replace=False))
    side = np.where(eq_alpha[ls] + rng.normal(0.0, 0.01, n_ls) > 0, 1.0, -1.0)
    raw = np.exp(rng.normal(0.0, 0.5, n_ls)) * adv_usd[ls] ** 0.25
    cap = 0.25 * adv_usd[ls]
    notional = np.zeros(n_ls)
    for sgn, target in ((1.0, 1.04 * TARGET_NAV_USD), (-1.0, 0.96 * TARGET_NAV_USD)):
        m = side == sgn
        x = raw[m] / raw[m].sum() * target
        for _ in range(3):  # cap at a quarter of ADV, spread the excess over the rest
            x = np.minimum(x, cap[m])
            free = x < cap[m]
            if not free.any():
                break
            x[free] *= 1.0 + (target - x.sum()) / x[free].sum()
        notional[m] = np.minimum(x, cap[m])
    lots = np.maximum(np.round(notional / (eq_price[ls] * eq_fx[ls] * eq_lot[ls])), 1.0)
    shares[ls] += side * lots * eq_lot[ls]
    # Beta hedges of the non-USD sleeves with the other index futures.
    value_usd = shares * all_price * all_mult * all_fx
    fut_index = {r["id"]: n_eq + n_etf + i for i, r in enumerate(fut_rows)}
    for fid, ccy in (("FUT_FESX_Z6", "EUR"), ("FUT_NK_H7", "JPY")):
        j = fut_index[fid]
        net = value_usd[:n_eq][eq_ccy == ccy].sum()
        n = -int(round(net / (all_price[j] * all_mult[j] * all_fx[j])))
        shares[j] = n if n != 0 else (-1 if net > 0 else 1)
    shares = shares + 0.0  # no negative zeros

    price_time = np.full(n_all, np.datetime64(AS_OF, "us"))
    held_eq = np.flatnonzero(shares[:n_eq] != 0)
    stale = rng.choice(held_eq, size=N_STALE_PRICES, replace=False)
    price_time[stale] = np.datetime64(STALE_PRICE_TIME, "us")
    positions = _frame("positions", {
        "instrument_id": all_ids, "position_shares": shares, "price": all_price,
        "currency": all_ccy, "price_time": price_time})

    # ---- cash: USD balances the book to the target NAV ---------------------------------------
    non_fut_value = float((shares * all_price * all_mult * all_fx)[~is_fut].sum())
    other = {"EUR": round(rng.uniform(10e6, 20e6), 2), "GBP": round(rng.uniform(4e6, 8e6), 2),
             "JPY": round(rng.uniform(1.5e9, 3.0e9), 0)}
    usd = round(TARGET_NAV_USD - non_fut_value
                - sum(v * FX_RATES[c] for c, v in other.items()), 2)
    cash_ccy = ["USD", "EUR", "GBP", "JPY"]
    cash = _frame("cash", {"currency": np.asarray(cash_ccy),
                           "cash_amount": np.array([usd] + [other[c] for c in cash_ccy[1:]])})
    fx_rates = _frame("fx_rates", {"currency": np.asarray(list(FX_RATES)),
                                   "rate": np.asarray(list(FX_RATES.values()))})

    # ---- benchmark: cap-weighted top 500 equities ------------------------------------------
    top = np.sort(_rank_desc(mcap_usd)[: min(500, n_eq)])
    bw = mcap_usd[top] / mcap_usd[top].sum()
    benchmark = _frame("benchmark", {"instrument_id": eq_ids[top], "weight": bw})

    out = {
        "instruments": instruments, "baskets": baskets, "factors": factors,
        "factor_covariance": factor_covariance, "risk_model": risk_model,
        "liquidity": liquidity, "cost_model": cost_model, "impact_curve": impact_curve,
        "restrictions": restrictions, "margin_model": margin_model, "alpha": alpha,
        "positions": positions, "cash": cash, "fx_rates": fx_rates, "benchmark": benchmark,
    }
    return {name: out[name] for name in TABLES}


def _factor_covariance(rng: np.random.Generator) -> np.ndarray:
    """A symmetric positive definite K x K covariance from a few latent drivers.

    Correlation = L L' + D (rows of L have norm < 0.9, so D >= 0.19 on the diagonal), then
    scaled by annual vols: styles 2-6%, industries 5-10%, countries 6-12%, currencies 6-10%,
    market 15%.
    """
    drivers = 6  # global equity, Europe, Asia, cyclical, dollar, value-growth
    lat = rng.normal(0.0, 0.08, (K, drivers))
    kinds = np.asarray(FACTOR_KINDS)
    names = np.asarray(FACTOR_NAMES)
    lat[F_MARKET, 0] = 0.85
    for i in range(F_COUNTRY, F_CURRENCY):
        lat[i, 0] += 0.1
        lat[i, 1] += 0.45 if names[i] in EUROPE else 0.0
        lat[i, 2] += 0.45 if names[i] in ASIA else 0.0
    for j, sector in enumerate(INDUSTRY_SECTOR):
        lat[F_INDUSTRY + j, 0] += 0.1
        lat[F_INDUSTRY + j, 3] += 0.4 if sector in CYCLICAL_SECTORS else -0.3
    lat[F_STYLE + STYLE_FACTORS.index("Volatility"), 0] += 0.35
    lat[F_STYLE + STYLE_FACTORS.index("Value"), 5] += 0.5
    lat[F_STYLE + STYLE_FACTORS.index("Earnings Yield"), 5] += 0.4
    lat[F_STYLE + STYLE_FACTORS.index("Growth"), 5] -= 0.4
    lat[F_STYLE + STYLE_FACTORS.index("Momentum"), 5] -= 0.3
    for c, load in zip(EQUITY_CURRENCIES, (-0.4, 0.5, 0.45, 0.3)):
        lat[F_CURRENCY + EQUITY_CURRENCIES.index(c), 4] += load
    norms = np.linalg.norm(lat, axis=1)
    lat *= np.minimum(1.0, 0.9 / norms)[:, None]
    corr = lat @ lat.T
    np.fill_diagonal(corr, 1.0)
    corr = (corr + corr.T) / 2.0
    lo_hi = {"style": (0.02, 0.06), "industry": (0.05, 0.10), "country": (0.06, 0.12),
             "currency": (0.06, 0.10), "market": (0.15, 0.15)}
    vols = np.array([rng.uniform(*lo_hi[k]) for k in kinds])
    cov = corr * np.outer(vols, vols)
    return (cov + cov.T) / 2.0


def write_tables(tables: dict[str, pl.DataFrame], out_dir: Path) -> list[Path]:
    """Write `<name>.parquet` for each table into out_dir (created if needed), atomically."""
    out_dir = Path(out_dir)
    return [atomic_write(out_dir / f"{name}.parquet",
                         lambda tmp, f=frame: f.write_parquet(tmp, compression="zstd"))
            for name, frame in tables.items()]
