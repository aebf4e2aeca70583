"""The tables spo reads: one explicit schema per file, with units.

Every loader, the sample-data generator and the Axioma reader work to these specs, so a
column's name, type and unit are stated once, here.

Units (DESIGN.md section 3):
- prices and notionals are in the instrument's own currency (the `currency` column);
  futures prices are index points, one contract is worth price x contract_multiplier;
- rates, returns, volatilities, margins and haircuts are decimals (0.02 = 2%), annual
  unless the column says otherwise;
- variances are annual, in decimal return squared;
- fx `rate` is units of the base currency (USD in the sample) per one unit of `currency`;
  any currency in the table can be the numeraire.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

INSTRUMENT_TYPES = ("Equity", "ETF", "Future")
SYNTHETIC_PREFIX = "Synthetic_"
CASH_TYPE = "Cash"
FACTOR_KINDS = ("style", "industry", "country", "currency", "market")


def is_valid_instrument_type(value: str) -> bool:
    return value in INSTRUMENT_TYPES or (
        value.startswith(SYNTHETIC_PREFIX) and len(value) > len(SYNTHETIC_PREFIX)
    )


@dataclass(frozen=True)
class Column:
    name: str
    dtype: pl.DataType
    unit: str = ""
    doc: str = ""
    required: bool = True  # the column must be present in the file
    nullable: bool = False  # nulls are allowed in the column
    min: float | None = None  # inclusive range checked row by row (a diagnostic, not fatal)
    max: float | None = None
    strictly_positive: bool = False


@dataclass(frozen=True)
class TableSpec:
    name: str
    doc: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    required: bool = True  # the file must exist
    instrument_column: str | None = "instrument_id"  # references instruments.instrument_id
    allow_empty: bool = True  # False: a file with no rows is certainly a broken export
    extra: dict = field(default_factory=dict)

    @property
    def file_name(self) -> str:
        return f"{self.name}.parquet"

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def polars_schema(self) -> dict[str, pl.DataType]:
        return {c.name: c.dtype for c in self.columns}


Str, F64, I64, Bool = pl.String(), pl.Float64(), pl.Int64(), pl.Boolean()

INSTRUMENTS = TableSpec(
    "instruments",
    "Static reference data, one row per tradable instrument.",
    (
        Column("instrument_id", Str, doc="join key across every table"),
        Column("ticker", Str, doc="symbol written to the OMS file"),
        Column("type", Str, doc="Equity, ETF, Future or Synthetic_<kind>"),
        Column("primary_listing", Str, doc="ISO 10383 MIC of the primary venue, e.g. XNYS"),
        Column("currency", Str, doc="ISO 4217 trading currency"),
        Column("sector", Str, nullable=True),
        Column("industry", Str, nullable=True),
        Column("country", Str, nullable=True, doc="ISO 3166 alpha-2"),
        Column("universe_flags", Str, required=False, nullable=True, doc="comma-separated tags"),
        Column("expiry", pl.Date(), required=False, nullable=True, doc="futures only"),
        Column("contract_multiplier", F64, unit="currency per point", strictly_positive=True),
        Column("lot_size", I64, unit="shares or contracts", min=1),
        Column("beta", F64, required=False, nullable=True, min=-5.0, max=5.0),
    ),
    key=("instrument_id",),
    allow_empty=False,
)

BASKETS = TableSpec(
    "baskets",
    "Constituents of ETFs, index futures and synthetic baskets.",
    (
        Column("basket_id", Str, doc="the ETF, future or synthetic instrument_id"),
        Column("constituent_id", Str, doc="an instrument_id"),
        Column("shares_per_unit", F64, unit="constituent shares per basket share or contract"),
        Column("creation_unit_size", F64, unit="basket shares per creation unit", nullable=True,
               strictly_positive=True),
    ),
    key=("basket_id", "constituent_id"),
    required=False,
    instrument_column="basket_id",
)

FACTORS = TableSpec(
    "factors",
    "Factor names of each factor set, in the order of risk_model.factor_loadings.",
    (
        Column("factor_set_name", Str),
        Column("name", Str),
        Column("kind", Str, doc="style, industry, country, currency or market"),
        Column("position", I64, doc="index into factor_loadings", min=0),
    ),
    key=("factor_set_name", "name"),
    instrument_column=None,
    allow_empty=False,
)

FACTOR_COVARIANCE = TableSpec(
    "factor_covariance",
    "Factor covariance in long form; one triangle or both (they must agree).",
    (
        Column("factor_set_name", Str),
        Column("factor_i", Str),
        Column("factor_j", Str),
        Column("covariance", F64, unit="annual decimal return squared"),
    ),
    key=("factor_set_name", "factor_i", "factor_j"),
    instrument_column=None,
    allow_empty=False,
)

RISK_MODEL = TableSpec(
    "risk_model",
    "Factor loadings and specific (idiosyncratic) variance per instrument.",
    (
        Column("instrument_id", Str),
        Column("factor_loadings", pl.List(pl.Float64()), doc="one per factor, in factors.position order"),
        Column("idio_variance", F64, unit="annual decimal return squared", min=0.0),
        Column("model_type", Str, doc="axioma or in_house"),
        Column("factor_set_name", Str),
    ),
    key=("instrument_id",),
    allow_empty=False,
)

LIQUIDITY = TableSpec(
    "liquidity",
    "Average daily volume, spread and volatility.",
    (
        Column("instrument_id", Str),
        Column("adv_value", F64, unit="currency per day", min=0.0),
        Column("adv_shares", F64, unit="shares or contracts per day", min=0.0),
        Column("spread_bps", F64, unit="bp of price", min=0.0, max=5000.0),
        Column("volatility", F64, unit="annual decimal", min=0.0, max=5.0),
    ),
    key=("instrument_id",),
    required=False,
)

COST_MODEL = TableSpec(
    "cost_model",
    "Execution and carry costs.",
    (
        Column("instrument_id", Str),
        Column("linear_cost_bps", F64, unit="bp of traded notional (half spread + commission)",
               min=0.0, max=5000.0),
        Column("impact_coeff", F64, unit="c in c*sigma*|m|^1.5/sqrt(ADV)", min=0.0),
        Column("borrow_rate", F64, unit="annual decimal on short notional", min=0.0, max=5.0),
        Column("financing_rate", F64, unit="annual decimal on long notional", min=-1.0, max=1.0),
        Column("dividend_yield", F64, unit="annual decimal", min=0.0, max=1.0),
    ),
    key=("instrument_id",),
    required=False,
)

IMPACT_CURVE = TableSpec(
    "impact_curve",
    "Optional piecewise-linear market impact points (seed 004 forecast.marketImpact).",
    (
        Column("instrument_id", Str),
        Column("trade_size", F64, unit="currency notional", strictly_positive=True),
        Column("percent_impact", F64, unit="percent of price", min=0.0, max=100.0),
    ),
    key=("instrument_id", "trade_size"),
    required=False,
)

RESTRICTIONS = TableSpec(
    "restrictions",
    "Compliance restrictions; instruments not listed are unrestricted.",
    (
        Column("instrument_id", Str),
        Column("restricted", Bool, doc="no trading at all"),
        Column("no_new_shorts", Bool),
        Column("no_new_longs", Bool),
    ),
    key=("instrument_id",),
    required=False,
)

MARGIN_MODEL = TableSpec(
    "margin_model",
    "Margin rates and haircuts as fractions of absolute notional.",
    (
        Column("instrument_id", Str),
        Column("initial_margin", F64, unit="decimal of notional", min=0.0, max=1.0),
        Column("maintenance_margin", F64, unit="decimal of notional", min=0.0, max=1.0),
        Column("haircut", F64, unit="decimal of notional", min=0.0, max=1.0),
        Column("synthetic_margin_override", F64, unit="decimal of notional", nullable=True,
               min=0.0, max=1.0),
    ),
    key=("instrument_id",),
    required=False,
)

ALPHA = TableSpec(
    "alpha",
    "Expected returns over the horizon.",
    (
        Column("instrument_id", Str),
        Column("alpha", F64, unit="decimal return over horizon_days", min=-1.0, max=1.0),
        Column("horizon_days", I64, unit="trading days", min=1),
    ),
    key=("instrument_id",),
    required=False,
)

POSITIONS = TableSpec(
    "positions",
    "Intraday book and marks: one row per instrument with a price (0 shares when flat).",
    (
        Column("instrument_id", Str),
        Column("position_shares", F64, unit="shares, or contracts for futures"),
        Column("price", F64, unit="currency per share, or index points for futures",
               nullable=True),
        Column("currency", Str),
        Column("price_time", pl.Datetime("us"), required=False, nullable=True,
               doc="time of the mark; older than the stale limit is flagged"),
    ),
    key=("instrument_id",),
)

CASH = TableSpec(
    "cash",
    "Cash balances per currency.",
    (
        Column("currency", Str),
        Column("cash_amount", F64, unit="currency"),
    ),
    key=("currency",),
    instrument_column=None,
)

FX_RATES = TableSpec(
    "fx_rates",
    "Exchange rates against the table's base currency (rate 1.0).",
    (
        Column("currency", Str),
        Column("rate", F64, unit="base currency per unit of currency", strictly_positive=True),
    ),
    key=("currency",),
    instrument_column=None,
    allow_empty=False,
)

BENCHMARK = TableSpec(
    "benchmark",
    "Benchmark weights for active optimization.",
    (
        Column("instrument_id", Str),
        Column("weight", F64, unit="decimal of benchmark value", min=-1.0, max=1.0),
    ),
    key=("instrument_id",),
    required=False,
)

TABLES: dict[str, TableSpec] = {
    t.name: t
    for t in (
        INSTRUMENTS, BASKETS, FACTORS, FACTOR_COVARIANCE, RISK_MODEL, LIQUIDITY, COST_MODEL,
        IMPACT_CURVE, RESTRICTIONS, MARGIN_MODEL, ALPHA, POSITIONS, CASH, FX_RATES, BENCHMARK,
    )
}

# Start-of-day tables are loaded once; intraday ones are reloaded without restarting.
STATIC_TABLES = tuple(n for n in TABLES if n not in ("positions", "cash"))
INTRADAY_TABLES = ("positions", "cash")


def empty_frame(spec: TableSpec) -> pl.DataFrame:
    return pl.DataFrame(schema=spec.polars_schema)
