"""Every constraint kind spo knows: its scope, the units it accepts and what it bounds.

Units (the `unit` field of a constraint):
  %NAV       percent of NAV                 notional  money in the numeraire
  shares     shares, or contracts           %ADV      percent of average daily volume
  ADV-days   multiples of ADV               %holding  percent of the current position
  %gross     percent of post-trade gross    x         multiple of NAV (leverage)
  %vol       annual volatility in percent   exposure  NAV-weighted factor exposure
Holdings and trades are signed (negative = short or sell) unless the kind says |.|.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Scope = Literal["instrument", "group", "portfolio"]


@dataclass(frozen=True)
class Kind:
    name: str
    scope: Scope
    units: tuple[str, ...]  # the first is the default
    doc: str
    needs_upper: bool = False  # one-sided kinds: only an upper bound makes sense
    no_bounds: bool = False  # flags such as no_new_longs
    seed_name: str = ""  # the optimization API (seed 004) name it expresses


MONEY = ("%NAV", "notional")

KINDS: dict[str, Kind] = {k.name: k for k in (
    # --- instrument: one row per instrument selected by `instrument` ("*" = every tradable)
    Kind("holding", "instrument", MONEY + ("shares",),
         "post-trade position between lower and upper", seed_name="securities"),
    Kind("max_trade", "instrument", MONEY + ("shares", "%ADV", "ADV-days", "%holding"),
         "|trade| <= upper", needs_upper=True,
         seed_name="maxTrade.percentEquity / percentOriginalEconomicExposure / percentADV, "
                   "maxLiquidationDays"),
    Kind("max_holding_adv", "instrument", ("%ADV", "ADV-days"),
         "|post-trade position| <= upper x ADV", needs_upper=True),
    Kind("max_concentration", "instrument", ("%gross",),
         "|position| <= upper % of post-trade gross", needs_upper=True,
         seed_name="maxConcentration"),
    Kind("max_margin", "instrument", MONEY,
         "initial margin of the position <= upper", needs_upper=True),
    Kind("no_new_longs", "instrument", ("%NAV",),
         "the long side may shrink, not grow", no_bounds=True),
    Kind("no_new_shorts", "instrument", ("%NAV",),
         "the short side may shrink, not grow", no_bounds=True),
    Kind("no_trade", "instrument", ("%NAV",), "hold the position as it is", no_bounds=True),
    Kind("no_buy", "instrument", ("%NAV",), "may sell, not buy (expiring futures)",
         no_bounds=True),
    # --- group: one row per group value of `group_by` (sector, industry, country, currency,
    # type, or a custom bucket column); `group` selects one value or "*" for each value
    Kind("group_net", "group", MONEY, "sum of positions in the group",
         seed_name="composition"),
    Kind("group_gross", "group", MONEY, "sum of |positions| in the group", needs_upper=True),
    Kind("group_turnover", "group", MONEY, "sum of |trades| in the group", needs_upper=True),
    Kind("group_margin", "group", MONEY, "initial margin of the group", needs_upper=True),
    Kind("currency_cash", "group", MONEY,
         "post-trade cash in a currency (`group` = the currency, or '*' for each); trades "
         "settle in their currency and FX trades fund the difference"),
    Kind("factor_exposure", "group", ("exposure",),
         "NAV-weighted exposure to `factor` (a name, 'kind:style', or '*')",
         seed_name="exposure"),
    # --- portfolio: one row
    Kind("net_exposure", "portfolio", MONEY,
         "long minus short, futures at full notional; or target +- band",
         seed_name="netExposure"),
    Kind("gross_exposure", "portfolio", MONEY, "long plus short"),
    Kind("leverage", "portfolio", ("x",), "gross / NAV", needs_upper=True),
    Kind("long_market_value", "portfolio", MONEY, "sum of long positions",
         seed_name="longMarketValue"),
    Kind("short_market_value", "portfolio", MONEY, "sum of |short positions|",
         seed_name="shortMarketValue"),
    Kind("cash", "portfolio", MONEY, "post-trade cash (NAV less non-futures positions)"),
    Kind("turnover", "portfolio", MONEY, "sum of |trades|", needs_upper=True,
         seed_name="maxTurnover"),
    Kind("beta_exposure", "portfolio", MONEY,
         "sum of beta x position (market neutral: lower = upper = 0)"),
    Kind("total_risk", "portfolio", ("%vol",), "annual volatility", needs_upper=True,
         seed_name="risk.total.max"),
    Kind("factor_risk", "portfolio", ("%vol",), "annual factor volatility", needs_upper=True,
         seed_name="risk.factor.max"),
    Kind("tracking_error", "portfolio", ("%vol",), "annual active volatility to benchmark",
         needs_upper=True),
    Kind("margin_budget", "portfolio", MONEY, "total initial margin", needs_upper=True),
)}

GROUP_COLUMNS = ("sector", "industry", "country", "currency", "type")
