"""Tiny hand-built books whose derived fields can be checked by hand.

The default book (numeraire USD; EUR at 1.1):
    AAA  Equity USD  price 100   +1,000 sh   notional  100,000
    BBB  Equity USD  price  50   -2,000 sh   notional -100,000
    CCC  Equity EUR  price  20     +500 sh   notional   11,000
    ETF1 ETF    USD  price 30.06   +100 sh   notional    3,006  basket 0.1 AAA + 0.4 BBB = 30
    FUT1 Future USD  1500 pts x 50   -2 ct   notional -150,000  basket 500 AAA + 500 BBB
    cash USD 200,000 and EUR 10,000 (11,000 USD)
NAV = 100,000 - 100,000 + 11,000 + 3,006 + 211,000 = 225,006 (the future adds nothing).
Long 114,006, short 250,000, gross 364,006.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from core.data.schemas import TABLES

AS_OF = dt.datetime(2026, 11, 20, 15, 30)
NAV = 225_006.0
LONG, SHORT = 114_006.0, 250_000.0

FACTORS = ["Market", "Value", "Size"]


def book_tables() -> dict[str, pl.DataFrame]:
    ids = ["AAA", "BBB", "CCC", "ETF1", "FUT1"]
    t = {
        "instruments": {
            "instrument_id": ids,
            "ticker": ["AAA", "BBB", "CCC", "ETFA", "FUTZ6"],
            "type": ["Equity", "Equity", "Equity", "ETF", "Future"],
            "primary_listing": ["XNYS", "XNAS", "XPAR", "ARCX", "XCME"],
            "currency": ["USD", "USD", "EUR", "USD", "USD"],
            "sector": ["Tech", "Energy", "Tech", None, None],
            "industry": ["Software", "Oil", "Hardware", None, None],
            "country": ["US", "US", "FR", "US", "US"],
            "universe_flags": ["CORE"] * 5,
            "expiry": [None, None, None, None, dt.date(2026, 12, 18)],
            "contract_multiplier": [1.0, 1.0, 1.0, 1.0, 50.0],
            "lot_size": [1, 1, 1, 1, 1],
            "beta": [1.1, 0.9, 1.0, 1.0, 1.0],
        },
        "baskets": {
            "basket_id": ["ETF1", "ETF1", "FUT1", "FUT1"],
            "constituent_id": ["AAA", "BBB", "AAA", "BBB"],
            "shares_per_unit": [0.1, 0.4, 500.0, 500.0],
            "creation_unit_size": [50_000.0, 50_000.0, None, None],
        },
        "factors": {
            "factor_set_name": ["TINY"] * 3, "name": FACTORS,
            "kind": ["market", "style", "style"], "position": [0, 1, 2],
        },
        "factor_covariance": {
            "factor_set_name": ["TINY"] * 4,
            "factor_i": ["Market", "Value", "Size", "Market"],
            "factor_j": ["Market", "Value", "Size", "Value"],
            "covariance": [0.04, 0.0025, 0.0016, 0.001],
        },
        "risk_model": {
            "instrument_id": ids,
            "factor_loadings": [[1.1, 0.5, -0.2], [0.9, -0.3, 0.4], [1.0, 0.1, 0.0],
                                [1.0, 0.0, 0.1], [1.0, 0.1, 0.1]],
            "idio_variance": [0.09, 0.04, 0.0625, 0.0004, 0.0001],
            "model_type": ["in_house"] * 5, "factor_set_name": ["TINY"] * 5,
        },
        "liquidity": {
            "instrument_id": ids,
            "adv_value": [50e6, 10e6, 2e6, 5e6, 5e9],
            "adv_shares": [500_000.0, 200_000.0, 100_000.0, 166_334.0, 66_667.0],
            "spread_bps": [2.0, 5.0, 8.0, 3.0, 0.5],
            "volatility": [0.3, 0.25, 0.28, 0.18, 0.17],
        },
        "cost_model": {
            "instrument_id": ids,
            "linear_cost_bps": [1.5, 3.0, 5.0, 2.0, 0.3],
            "impact_coeff": [0.5, 0.6, 0.8, 0.3, 0.1],
            "borrow_rate": [0.003, 0.05, 0.004, 0.003, 0.0],
            "financing_rate": [0.053, 0.053, 0.033, 0.053, 0.0],
            "dividend_yield": [0.01, 0.04, 0.02, 0.015, 0.0],
        },
        "impact_curve": {
            "instrument_id": ["AAA", "AAA"], "trade_size": [1e6, 5e6],
            "percent_impact": [0.05, 0.2],
        },
        "restrictions": {
            "instrument_id": ["BBB"], "restricted": [False], "no_new_shorts": [True],
            "no_new_longs": [False],
        },
        "margin_model": {
            "instrument_id": ids,
            "initial_margin": [0.3, 0.5, 0.3, 0.2, 0.08],
            "maintenance_margin": [0.25, 0.4, 0.25, 0.15, 0.06],
            "haircut": [0.25, 0.35, 0.25, 0.15, 0.08],
            "synthetic_margin_override": [None, None, None, 0.03, 0.02],
        },
        "alpha": {
            "instrument_id": ids, "alpha": [0.02, -0.01, 0.005, 0.0, 0.0],
            "horizon_days": [20] * 5,
        },
        "positions": {
            "instrument_id": ids,
            "position_shares": [1000.0, -2000.0, 500.0, 100.0, -2.0],
            "price": [100.0, 50.0, 20.0, 30.06, 1500.0],
            "currency": ["USD", "USD", "EUR", "USD", "USD"],
            "price_time": [AS_OF] * 5,
        },
        "cash": {"currency": ["USD", "EUR"], "cash_amount": [200_000.0, 10_000.0]},
        "fx_rates": {"currency": ["USD", "EUR", "JPY"], "rate": [1.0, 1.1, 0.007]},
        "benchmark": {"instrument_id": ["AAA", "BBB", "CCC"], "weight": [0.5, 0.3, 0.2]},
    }
    return {name: pl.DataFrame(cols, schema=TABLES[name].polars_schema)
            for name, cols in t.items()}


def write_book(directory: Path, tables: dict[str, pl.DataFrame] | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, frame in (tables or book_tables()).items():
        frame.write_parquet(directory / f"{name}.parquet")
    return directory


def book_config(directory: Path, **overrides):
    from core.settings import RunConfig

    return RunConfig(account="TEST", as_of=AS_OF, data={"dir": str(directory)}, **overrides)


def write_sample_config(directory: Path, constraints: str = "",
                        optimization: str = "risk_aversion = 10.0") -> Path:
    """A run.toml on the embedded sample data, with extra [optimization] keys and
    [[constraints]] tables given as TOML text."""
    import textwrap

    from sample_data import SAMPLE_DIR

    cfg = directory / "run.toml"
    cfg.write_text(textwrap.dedent(f"""
        account = "T"
        as_of = 2026-11-20T15:30:00
        [data]
        dir = "{SAMPLE_DIR}"
        [optimization]
        {optimization}
    """) + textwrap.dedent(constraints))
    return cfg


# Net 20% +- 1% of NAV cannot be reached from the sample book within 5% turnover.
INFEASIBLE_CONSTRAINTS = """
    [[constraints]]
    kind = "net_exposure"
    target = 20.0
    band = 1.0
    [[constraints]]
    kind = "turnover"
    upper = 5.0
"""


def flows_tables(etf_price: float = 30.06, fut_price: float = 1500.0) -> dict[str, pl.DataFrame]:
    """The book flat with no alpha: the only return is ETF1's premium to its basket (30.06
    is 20 bp over) or FUT1's basis, with creation units of 100 shares (the default 50,000
    would be 7x this small book)."""
    t = book_tables()
    t["positions"] = t["positions"].with_columns(
        price=pl.when(pl.col("instrument_id") == "ETF1").then(etf_price)
        .when(pl.col("instrument_id") == "FUT1").then(fut_price).otherwise(pl.col("price")),
        position_shares=pl.lit(0.0))
    t["alpha"] = t["alpha"].with_columns(alpha=pl.lit(0.0))
    t["baskets"] = t["baskets"].with_columns(
        creation_unit_size=pl.when(pl.col("basket_id") == "ETF1").then(100.0))
    t["restrictions"] = t["restrictions"].clear()
    return t
