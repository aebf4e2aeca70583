"""Universe Builder: join every table into one row per instrument and validate it.

Derived fields (platform spec section 8), all in the numeraire unless named otherwise:
- fx: numeraire per unit of the instrument's currency; unit_value: one share or contract
  (price x contract_multiplier x fx);
- position_notional: economic exposure (futures count their full notional);
  position_value: what the position adds to NAV (futures add nothing: their P&L is settled
  through variation margin, so NAV = non-futures values + cash);
- weight_net = notional / NAV; weight_gross = notional / gross; weight_long_leg = notional /
  long market value for longs (0 for shorts); weight_short_leg = notional / short market
  value for shorts (a negative number; 0 for longs); weight_max_leg = notional /
  max(long, short market value);
- position_adv_days = |shares| / ADV shares (days of volume to exit at 100% of ADV);
  potential_trade_adv = a trade of 1% of NAV as a fraction of a day's value traded;
- margin_initial, margin_maintenance, haircut_exposure: |notional| x rate;
- for baskets (ETFs, futures, synthetics): basket_value (numeraire value of the
  constituents of one share or contract), basket_premium_bps (price over basket),
  look_through_valid (every constituent priced and valued) and hedgeable (and tradable).
`tradable` is false where a data problem means the optimizer must not trade the name;
`untradable_reason` says why. Cash in each currency is a row of type Cash.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from core.data.factor_model import FactorModel, build_factor_model, choose_factor_set, \
    loadings_matrix
from core.data.loaders import DataSet
from core.data.schemas import CASH_TYPE, INSTRUMENT_TYPES, SYNTHETIC_PREFIX
from core.diagnostics import Code, Diagnostics, Severity
from core.errors import DataError
from core.settings import RunConfig

TICKER_PATTERN = r"^[A-Z0-9][A-Z0-9./_\- ]{0,23}$"
MIC_PATTERN = r"^[A-Z0-9]{4}$"
BASKET_TYPES_EXPR = pl.col("type").is_in(["ETF", "Future"]) | pl.col("type").str.starts_with(
    SYNTHETIC_PREFIX)


@dataclass
class Universe:
    frame: pl.DataFrame
    diagnostics: pl.DataFrame
    numeraire: str
    fx: dict[str, float]
    factor_model: FactorModel
    loadings: np.ndarray  # rows aligned with frame, K columns
    baskets: pl.DataFrame  # look-through rows with constituent values in the numeraire
    as_of: dt.datetime
    run_date: dt.date
    summary: dict[str, float] = field(default_factory=dict)
    impact_curves: pl.DataFrame | None = None  # instrument_id, trade_size, percent_impact

    @property
    def nav(self) -> float:
        return self.summary["nav"]

    def instrument(self, instrument_id: str) -> dict:
        rows = self.frame.filter(pl.col("instrument_id") == instrument_id)
        if rows.is_empty():
            raise KeyError(instrument_id)
        return rows.row(0, named=True)


def fx_to_numeraire(fx_rates: pl.DataFrame, numeraire: str) -> dict[str, float]:
    rates = dict(zip(fx_rates.get_column("currency").to_list(),
                     fx_rates.get_column("rate").to_list()))
    if numeraire not in rates:
        raise DataError(f"numeraire {numeraire} has no fx rate", file="fx_rates.parquet",
                        field="currency",
                        fix=f"add a {numeraire} row or choose one of {', '.join(sorted(rates))}")
    base = rates[numeraire]
    return {ccy: rate / base for ccy, rate in rates.items()}


def _join_reference(ds: DataSet) -> pl.DataFrame:
    inst = ds.frame("instruments")
    pos = ds.frame("positions").rename({"currency": "price_currency"})
    liq = ds.frame("liquidity").with_columns(has_liquidity=pl.lit(True))
    cost = ds.frame("cost_model").with_columns(has_cost=pl.lit(True))
    margin = ds.frame("margin_model").with_columns(has_margin=pl.lit(True))
    restr = ds.frame("restrictions")
    alpha = ds.frame("alpha")
    bench = ds.frame("benchmark").rename({"weight": "benchmark_weight"})
    risk = ds.frame("risk_model").select("instrument_id", "idio_variance")
    curve = ds.frame("impact_curve").group_by("instrument_id").len("impact_curve_points")
    out = inst.join(pos.with_columns(has_position_row=pl.lit(True)), on="instrument_id",
                    how="left", maintain_order="left")
    for table in (liq, cost, margin, restr, alpha, bench, risk, curve):
        out = out.join(table, on="instrument_id", how="left", maintain_order="left")
    return out


def _cash_rows(cash: pl.DataFrame) -> pl.DataFrame:
    return cash.select(
        instrument_id=pl.lit("CASH_") + pl.col("currency"),
        ticker=pl.col("currency"),
        type=pl.lit(CASH_TYPE),
        currency=pl.col("currency"),
        price_currency=pl.col("currency"),
        contract_multiplier=pl.lit(1.0),
        lot_size=pl.lit(1, dtype=pl.Int64),
        position_shares=pl.col("cash_amount"),
        price=pl.lit(1.0),
        has_position_row=pl.lit(True),
    )


class _Builder:
    def __init__(self, ds: DataSet, config: RunConfig) -> None:
        self.ds = ds
        self.cfg = config
        self.diags = Diagnostics()
        self.diags.extend(ds.diagnostics)
        self.as_of = config.effective_as_of()
        self.run_date = config.effective_run_date()

    def flag(self, frame: pl.DataFrame, mask: pl.Expr, severity: Severity, code: Code,
             table: str, message: pl.Expr | str) -> pl.Series:
        hits = frame.filter(mask)
        if hits.height:
            msgs = (hits.select(message.alias("m")).to_series().to_list()
                    if isinstance(message, pl.Expr) else message)
            self.diags.add_many(severity, code, table, hits.get_column("instrument_id").to_list(),
                                msgs)
        return frame.select(mask.fill_null(False)).to_series()

    def build(self) -> Universe:
        numeraire = self.cfg.numeraire
        fx = fx_to_numeraire(self.ds.frame("fx_rates"), numeraire)
        df = _join_reference(self.ds)
        df = pl.concat([df, _cash_rows(self.ds.frame("cash"))], how="diagonal_relaxed")
        df = df.with_columns(
            fx=pl.col("currency").replace_strict(fx, default=None, return_dtype=pl.Float64),
            position_shares=pl.col("position_shares").fill_null(0.0),
            is_cash=pl.col("type") == CASH_TYPE,
            is_future=pl.col("type") == "Future",
            is_basket=BASKET_TYPES_EXPR,
        )
        untradable: list[tuple[pl.Series, str]] = []

        def block(mask: pl.Series, reason: str) -> None:
            untradable.append((mask, reason))

        # Identity and symbology.
        valid_type = pl.col("type").is_in(list(INSTRUMENT_TYPES) + [CASH_TYPE]) | (
            pl.col("type").str.starts_with(SYNTHETIC_PREFIX)
            & (pl.col("type").str.len_chars() > len(SYNTHETIC_PREFIX)))
        block(self.flag(df, ~valid_type, Severity.ERROR, Code.INVALID_VALUE, "instruments",
                        pl.format("unknown instrument type '{}'; use Equity, ETF, Future or "
                                  "Synthetic_<kind>", "type")), "invalid type")
        not_cash = ~pl.col("is_cash")
        bad_ticker = not_cash & ~pl.col("ticker").str.contains(TICKER_PATTERN)
        bad_mic = not_cash & ~pl.col("primary_listing").fill_null("").str.contains(MIC_PATTERN)
        dup_symbol = not_cash & pl.struct("ticker", "primary_listing").is_duplicated()
        block(self.flag(df, bad_ticker, Severity.ERROR, Code.INVALID_SYMBOL, "instruments",
                        pl.format("ticker '{}' is not a valid OMS symbol (upper-case letters, "
                                  "digits, . / _ - and spaces)", "ticker")), "invalid symbol")
        self.flag(df, bad_mic & ~bad_ticker, Severity.WARNING, Code.INVALID_SYMBOL,
                  "instruments", pl.format("primary_listing '{}' is not a 4-character MIC",
                                           "primary_listing"))
        block(self.flag(df, dup_symbol, Severity.ERROR, Code.INVALID_SYMBOL, "instruments",
                        pl.format("ticker {} on {} is used by more than one instrument; orders "
                                  "would be ambiguous", "ticker", "primary_listing")),
              "ambiguous symbol")

        # Currency and price.
        block(self.flag(df, pl.col("fx").is_null(), Severity.ERROR, Code.UNKNOWN_CURRENCY,
                        "fx_rates", pl.format("currency {} has no fx rate; add it to fx_rates",
                                              "currency")), "unknown currency")
        mismatch = pl.col("has_position_row").fill_null(False) & (
            pl.col("price_currency") != pl.col("currency"))
        block(self.flag(df, mismatch, Severity.ERROR, Code.CURRENCY_MISMATCH, "positions",
                        pl.format("price is in {} but the instrument trades in {}",
                                  "price_currency", "currency")), "price currency")
        no_price = pl.col("price").is_null()
        held = pl.col("position_shares") != 0
        block(self.flag(df, no_price, Severity.ERROR, Code.MISSING_PRICE, "positions",
                        pl.when(held).then(pl.format("no price for a held position of {} shares;"
                                                     " the book cannot be valued",
                                                     "position_shares"))
                        .otherwise(pl.lit("no price; not tradable until marked"))),
              "no price")
        block(self.flag(df, ~no_price & (pl.col("price") <= 0), Severity.ERROR, Code.ZERO_PRICE,
                        "positions", pl.format("price {} is not positive", "price")),
              "zero price")
        stale_before = self.as_of - dt.timedelta(hours=self.cfg.validation.stale_price_hours)
        self.flag(df, pl.col("price_time") < stale_before, Severity.WARNING, Code.STALE_PRICE,
                  "positions", pl.format("price from {} is older than {} h before the run",
                                         pl.col("price_time").dt.strftime("%Y-%m-%d %H:%M"),
                                         pl.lit(f"{self.cfg.validation.stale_price_hours:g}")))

        # Futures expiry.
        run_date = pl.lit(self.run_date, dtype=pl.Date)
        expired = pl.col("is_future") & (pl.col("expiry") < run_date)
        block(self.flag(df, expired, Severity.ERROR, Code.EXPIRED_CONTRACT, "instruments",
                        pl.format("contract expired on {}; cannot be traded", "expiry")),
              "expired")
        soon = pl.col("is_future") & ~expired & (
            pl.col("expiry") <= run_date + pl.duration(
                days=self.cfg.validation.expiry_warning_days))
        self.flag(df, soon, Severity.WARNING, Code.EXPIRED_CONTRACT, "instruments",
                  pl.format("contract expires on {}; it can be sold, not bought", "expiry"))
        df = df.with_columns(expiring=soon.fill_null(False))
        no_expiry = pl.col("is_future") & pl.col("expiry").is_null()
        self.flag(df, no_expiry, Severity.WARNING, Code.MISSING_VALUE, "instruments",
                  "future has no expiry date")

        # Risk, liquidity, costs, margin.
        model = build_factor_model(
            self.ds.frame("factors"), self.ds.frame("factor_covariance"),
            choose_factor_set(self.ds.frame("risk_model"), self.ds.frame("factors")))
        loadings, bad_risk = loadings_matrix(df.get_column("instrument_id"),
                                             self.ds.frame("risk_model"), model)
        bad_ids = bad_risk.get_column("instrument_id")
        for row in bad_risk.iter_rows(named=True):
            self.diags.add(Severity.ERROR, Code.MISSING_RISK, "risk_model",
                           f"risk row unusable: {row['reason']}", row["instrument_id"])
        df = df.with_columns(has_risk=pl.col("idio_variance").is_not_null()
                             & ~pl.col("instrument_id").is_in(bad_ids.implode()))
        block(self.flag(df, not_cash & pl.col("idio_variance").is_null()
                        & ~pl.col("instrument_id").is_in(bad_ids.implode()),
                        Severity.ERROR, Code.MISSING_RISK, "risk_model",
                        "no risk model row; risk cannot be measured"), "no risk")
        block(df.select(pl.col("instrument_id").is_in(bad_ids.implode())).to_series(),
              "no risk")
        block(self.flag(df, not_cash & pl.col("has_liquidity").is_null(), Severity.ERROR,
                        Code.MISSING_LIQUIDITY, "liquidity",
                        "no liquidity row; ADV limits and impact cannot be applied"),
              "no liquidity")
        df = self._impute(df, not_cash)

        # Values and derived fields.
        df = df.with_columns(unit_value=pl.col("price") * pl.col("contract_multiplier")
                             * pl.col("fx"))
        df = df.with_columns(position_notional=(pl.col("position_shares") * pl.col("unit_value"))
                             .fill_null(0.0))
        df = df.with_columns(position_value=pl.when(pl.col("is_future")).then(0.0)
                             .otherwise(pl.col("position_notional")))
        risky = df.filter(~pl.col("is_cash"))
        notional = risky.get_column("position_notional")
        long_mv = float(notional.filter(notional > 0).sum())
        short_mv = float(-notional.filter(notional < 0).sum())
        nav = float(df.get_column("position_value").sum())
        gross = long_mv + short_mv
        if nav <= 0:
            self.diags.add(Severity.ERROR, Code.INVALID_VALUE, "positions",
                           f"NAV is {nav:,.0f} {numeraire}; weights and %NAV limits are "
                           "meaningless for a non-positive NAV")
        safe = lambda x: x if x > 0 else float("nan")  # noqa: E731 - weights undefined at 0
        n = pl.col("position_notional")
        df = df.with_columns(
            weight_net=n / safe(nav),
            weight_gross=pl.when(pl.col("is_cash")).then(0.0).otherwise(n / safe(gross)),
            weight_long_leg=pl.when(~pl.col("is_cash") & (n > 0)).then(n / safe(long_mv))
            .otherwise(0.0),
            weight_short_leg=pl.when(~pl.col("is_cash") & (n < 0)).then(n / safe(short_mv))
            .otherwise(0.0),
            weight_max_leg=pl.when(pl.col("is_cash")).then(0.0)
            .otherwise(n / safe(max(long_mv, short_mv))),
            adv_value_numeraire=pl.col("adv_value") * pl.col("fx"),
            position_adv_days=pl.col("position_shares").abs() / pl.col("adv_shares"),
            potential_trade_adv=0.01 * abs(nav) / (pl.col("adv_value") * pl.col("fx")),
            margin_initial=n.abs() * pl.col("initial_margin"),
            margin_maintenance=n.abs() * pl.col("maintenance_margin"),
            haircut_exposure=n.abs() * pl.col("haircut"),
            restricted=pl.col("restricted").fill_null(False),
            no_new_shorts=pl.col("no_new_shorts").fill_null(False),
            no_new_longs=pl.col("no_new_longs").fill_null(False),
            alpha=pl.col("alpha").fill_null(0.0),
            benchmark_weight=pl.col("benchmark_weight").fill_null(0.0),
        )
        df, baskets = self._baskets(df, block)
        self._benchmark_check()

        reason = pl.lit(None, dtype=pl.String)
        for mask, why in reversed(untradable):
            reason = pl.when(pl.lit(mask)).then(pl.lit(why)).otherwise(reason)
        df = df.with_columns(untradable_reason=pl.when(pl.col("is_cash")).then(None)
                             .otherwise(reason))
        df = df.with_columns(
            untradable_reason=pl.when(pl.col("restricted") & pl.col("untradable_reason").is_null())
            .then(pl.lit("restricted")).otherwise(pl.col("untradable_reason")))
        df = df.with_columns(tradable=pl.col("untradable_reason").is_null() & ~pl.col("is_cash"))
        df = df.select([c for c in UNIVERSE_COLUMNS if c in df.columns])

        summary = {
            "nav": nav, "gross": gross, "net": long_mv - short_mv, "long": long_mv,
            "short": short_mv, "leverage": gross / nav if nav > 0 else float("nan"),
            "instruments": int(risky.height), "positions": int((notional != 0).sum()),
            "tradable": int(df.get_column("tradable").sum()),
            "cash": float(df.filter(pl.col("is_cash")).get_column("position_value").sum()),
            "margin_initial": float(df.get_column("margin_initial").fill_null(0).sum()),
        }
        return Universe(frame=df, diagnostics=self.diags.frame(), numeraire=numeraire, fx=fx,
                        factor_model=model, loadings=loadings, baskets=baskets, as_of=self.as_of,
                        run_date=self.run_date, summary=summary,
                        impact_curves=self.ds.frame("impact_curve"))

    def _impute(self, df: pl.DataFrame, not_cash: pl.Expr) -> pl.DataFrame:
        """Missing costs and margin get the most expensive rate of the instrument's type.

        Conservative on purpose: a name with unknown costs should look expensive, not free,
        so the optimizer only trades it when the case is strong; the warning says so.
        """
        for has, table, code, cols in (
            ("has_cost", "cost_model", Code.MISSING_COST,
             ("linear_cost_bps", "impact_coeff", "borrow_rate", "financing_rate")),
            ("has_margin", "margin_model", Code.MISSING_MARGIN,
             ("initial_margin", "maintenance_margin", "haircut")),
        ):
            missing = not_cash & pl.col(has).is_null()
            self.flag(df, missing, Severity.WARNING, code, table,
                      f"no {table} row; using the highest rates of its type")
            df = df.with_columns(
                [pl.when(pl.col("is_cash")).then(0.0).otherwise(
                    pl.col(c).fill_null(pl.col(c).max().over("type"))
                    .fill_null(1.0 if table == "margin_model" else 0.0)).alias(c) for c in cols]
                + [pl.col(has).fill_null(False)])
        return df.with_columns(pl.col("dividend_yield").fill_null(0.0),
                               pl.col("has_liquidity").fill_null(False))

    def _baskets(self, df: pl.DataFrame, block) -> tuple[pl.DataFrame, pl.DataFrame]:
        legs = self.ds.frame("baskets")
        tradable_now = pl.col("price").is_not_null() & (pl.col("price") > 0) & pl.col(
            "fx").is_not_null()
        cons = df.select(
            constituent_id="instrument_id", constituent_unit_value="unit_value",
            constituent_priced=tradable_now, constituent_restricted="restricted",
            constituent_currency="currency")
        legs = legs.join(cons, on="constituent_id", how="left", maintain_order="left").with_columns(
            leg_value=pl.col("shares_per_unit") * pl.col("constituent_unit_value"))
        per = legs.group_by("basket_id").agg(
            basket_constituents=pl.len(),
            basket_value=pl.col("leg_value").sum(),
            basket_unpriced=(~pl.col("constituent_priced").fill_null(False)).sum(),
            basket_restricted=pl.col("constituent_restricted").fill_null(False).sum(),
            creation_unit_size=pl.col("creation_unit_size").first(),
        )
        df = df.join(per, left_on="instrument_id", right_on="basket_id", how="left",
                     maintain_order="left")
        df = df.with_columns(
            basket_premium_bps=pl.when(pl.col("basket_value") > 0)
            .then((pl.col("unit_value") / pl.col("basket_value") - 1.0) * 1e4),
            look_through_valid=pl.when(pl.col("is_basket"))
            .then(pl.col("basket_constituents").fill_null(0).gt(0)
                  & pl.col("basket_unpriced").fill_null(0).eq(0)),
        )
        synthetic = pl.col("type").str.starts_with(SYNTHETIC_PREFIX)
        no_legs = pl.col("is_basket") & pl.col("basket_constituents").is_null()
        # A synthetic *is* its basket, so without legs it cannot exist; an ETF or future can
        # still trade outright, only its hedge and look-through are lost.
        block(self.flag(df, synthetic & no_legs, Severity.ERROR, Code.UNHEDGEABLE_SYNTHETIC,
                        "baskets", "synthetic has no basket definition"), "no basket")
        self.flag(df, ~synthetic & no_legs, Severity.WARNING, Code.UNHEDGEABLE_SYNTHETIC,
                  "baskets", "no basket definition; no look-through or hedge credit")
        unpriced = pl.col("is_basket") & (pl.col("basket_unpriced").fill_null(0) > 0)
        block(self.flag(df, synthetic & unpriced, Severity.ERROR, Code.UNHEDGEABLE_SYNTHETIC,
                        "baskets", pl.format("{} of {} constituents cannot be valued",
                                             "basket_unpriced", "basket_constituents")),
              "basket unpriced")
        self.flag(df, ~synthetic & unpriced, Severity.WARNING, Code.UNHEDGEABLE_SYNTHETIC,
                  "baskets", pl.format("{} of {} constituents cannot be valued; look-through "
                                       "off", "basket_unpriced", "basket_constituents"))
        restricted_legs = pl.col("is_basket") & pl.col("look_through_valid").fill_null(False) & (
            pl.col("basket_restricted").fill_null(0) > 0)
        self.flag(df, restricted_legs, Severity.WARNING, Code.UNHEDGEABLE_SYNTHETIC, "baskets",
                  pl.format("{} constituents are restricted; the basket cannot be traded as a "
                            "hedge", "basket_restricted"))
        tol = self.cfg.validation.basket_tolerance_pct * 100.0
        self.flag(df, pl.col("basket_premium_bps").abs() > tol, Severity.WARNING,
                  Code.MISMATCHED_BASKET, "baskets",
                  pl.format("price is {} bp away from the basket value; check shares_per_unit"
                            " and the contract multiplier",
                            pl.col("basket_premium_bps").round(0)))
        df = df.with_columns(
            hedgeable=pl.when(pl.col("is_basket")).then(
                pl.col("look_through_valid") & pl.col("basket_restricted").fill_null(0).eq(0)))
        return df, legs

    def _benchmark_check(self) -> None:
        bench = self.ds.frame("benchmark")
        if bench.is_empty():
            return
        total = float(bench.get_column("weight").sum())
        if abs(total - 1.0) > 1e-4:
            self.diags.add(Severity.WARNING, Code.BENCHMARK_WEIGHTS, "benchmark",
                           f"benchmark weights sum to {total:.6f}, not 1; active risk is "
                           "measured against weights as given")


UNIVERSE_COLUMNS = (
    "instrument_id", "ticker", "type", "primary_listing", "currency", "sector", "industry",
    "country", "universe_flags", "expiry", "contract_multiplier", "lot_size", "beta",
    "tradable", "untradable_reason", "restricted", "no_new_shorts", "no_new_longs",
    "position_shares", "price", "price_time", "fx", "unit_value", "position_notional",
    "position_value", "weight_net", "weight_gross", "weight_long_leg", "weight_short_leg",
    "weight_max_leg", "adv_value", "adv_shares", "adv_value_numeraire", "spread_bps",
    "volatility", "position_adv_days", "potential_trade_adv", "linear_cost_bps",
    "impact_coeff", "impact_curve_points", "borrow_rate", "financing_rate", "dividend_yield",
    "initial_margin", "maintenance_margin", "haircut", "synthetic_margin_override",
    "margin_initial", "margin_maintenance", "haircut_exposure", "alpha", "horizon_days",
    "idio_variance", "has_risk", "has_liquidity", "has_cost", "has_margin", "benchmark_weight",
    "is_cash", "is_future", "is_basket", "expiring", "basket_constituents", "creation_unit_size",
    "basket_value", "basket_premium_bps", "look_through_valid", "hedgeable",
)


def build_universe(ds: DataSet, config: RunConfig) -> Universe:
    return _Builder(ds, config).build()
