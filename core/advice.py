"""Rule-based advice on a solved run: what to change, why, and what it is worth.

Platform spec section 13 lists five uses; each is a family of deterministic rules here:
  1. constraint relaxations  RELAX_BOUND (binding limits, priced by their shadow price),
                             RELAX_INFEASIBLE (the elastic re-solve's relaxations)
  2. tight / loose exposures TIGHT_EXPOSURE, LOOSE_EXPOSURE
  3. data issues             DATA_MISSING_RISK, DATA_MISSING_COST, DATA_MISSING_LIQUIDITY,
                             DATA_MISSING_PRICE, DATA_MISSING_MARGIN, DATA_STALE_PRICE,
                             DATA_BASKET, DATA_INVALID
  4. synthetic inefficiency  ETF_ARB_UNUSED, EFP_CHEAPER
  5. parameter settings      RISK_AVERSION_CASH, RISK_AVERSION_LOW, COSTS_DOMINATE, TIME_LIMIT
A suggestion that can be acted on carries a ConfigChange; `apply_change` turns it into a new
RunConfig, so "what if" is one re-solve away. Gains from shadow prices are first-order
estimates (exact for a small move, optimistic for a large one) and say so.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from core.constraints.catalogue import KINDS
from core.constraints.spec import ConstraintSpec
from core.errors import ConfigError, SpoInputError, sample_ids
from core.settings import RunConfig

Severity = Literal["error", "warning", "info"]
SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}

MIN_GAIN_BP = 0.01  # a relaxation worth less than this is noise, not advice
MIN_DUAL = 1e-6  # bp of utility per unit: below this a "binding" row is not priced
LOOSE_USE = 0.25  # a band the book uses less than a quarter of (from its centre) is loose
IDS_IN_EVIDENCE = 20

# Directional exposures: when one of these binds it shapes the book's bets (TIGHT_EXPOSURE);
# every other binding limit (gross, turnover, trade size, risk, margin) is a RELAX_BOUND.
EXPOSURE_KINDS = frozenset({
    "group_net", "net_exposure", "beta_exposure", "factor_exposure", "long_market_value",
    "short_market_value", "currency_cash", "cash"})
# Limits that shrink the book when they bind: a small book is then their doing, not risk
# aversion's.
SIZE_LIMIT_KINDS = frozenset({
    "gross_exposure", "leverage", "long_market_value", "short_market_value", "total_risk",
    "factor_risk", "tracking_error", "margin_budget", "turnover", "group_gross"})


# --- changes a suggestion proposes ----------------------------------------------------------

class _Op(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SetSetting(_Op):
    """Set one setting by its dotted path, e.g. optimization.risk_aversion = 5."""

    op: Literal["set"] = "set"
    path: str
    value: Any

    def describe(self) -> str:
        return f"{self.path} = {json.dumps(self.value)}"


class SetBound(_Op):
    """Move one bound of a constraint, found by name; None removes the bound."""

    op: Literal["bound"] = "bound"
    constraint: str
    field: Literal["lower", "upper"]
    value: float | None

    def describe(self) -> str:
        value = "none" if self.value is None else f"{self.value:g}"
        return f"constraint '{self.constraint}' {self.field} = {value}"


class DisableConstraint(_Op):
    op: Literal["disable"] = "disable"
    constraint: str

    def describe(self) -> str:
        return f"constraint '{self.constraint}' enabled = false"


ChangeOp = Annotated[SetSetting | SetBound | DisableConstraint, Field(discriminator="op")]


class ConfigChange(BaseModel):
    """A concrete edit of a RunConfig: apply it with `apply_change`."""

    model_config = ConfigDict(extra="forbid")

    ops: list[ChangeOp] = Field(default_factory=list)

    def describe(self) -> str:
        return "; ".join(op.describe() for op in self.ops)


class Suggestion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(description="stable rule code, e.g. RELAX_BOUND")
    severity: Severity
    title: str = Field(description="one line a trader reads")
    evidence: dict[str, Any] = Field(default_factory=dict,
                                     description="the numbers behind the suggestion")
    change: ConfigChange | None = None
    utility_gain_bp: float | None = Field(
        default=None, description="estimated utility gained by the change, bp of NAV")
    fix: str | None = Field(default=None, description="what to do where no change applies")


# --- applying a change -----------------------------------------------------------------------

def apply_change(config: RunConfig, change: ConfigChange) -> RunConfig:
    """A NEW validated RunConfig with the change applied; `config` is left as it was.

    The base dir is kept so relative data paths still resolve. An op naming an unknown
    setting or constraint raises ConfigError with the fix.
    """
    data = config.model_dump()
    for op in change.ops:
        if isinstance(op, SetSetting):
            _set_path(config, data, op.path, op.value)
        elif isinstance(op, SetBound):
            for spec in _constraints_named(config, data, op.constraint):
                _set_bound(spec, op.field, op.value)
        else:
            named = [c for c in data["constraints"] if c["name"] == op.constraint]
            for spec in named or _constraints_named(config, data, op.constraint):
                spec["enabled"] = False
    return RunConfig.from_dict(data, source="suggested change", base_dir=config.base_dir)


def _set_path(config: RunConfig, data: dict, path: str, value: Any) -> None:
    parts = path.split(".")
    node: Any = config
    target = data
    for i, part in enumerate(parts):
        fields = type(node).model_fields if isinstance(node, BaseModel) else {}
        if part not in fields or part == "constraints":
            where = ".".join(parts[:i]) or "the top level"
            known = ", ".join(f for f in fields if f != "constraints")
            raise ConfigError(
                f"unknown setting '{path}'", field=path,
                fix=f"use a dotted path shown by `spo config show`; {where} has: {known}"
                if known else "use a dotted path shown by `spo config show`, e.g. "
                              "optimization.risk_aversion")
        if i == len(parts) - 1:
            target[part] = value
        else:
            node = getattr(node, part)
            target = target[part]


def _constraints_named(config: RunConfig, data: dict, name: str) -> list[dict]:
    specs = [c for c in data["constraints"] if c["name"] == name]
    live = [c for c in specs if c.get("enabled", True)]
    if live:
        return live  # a disabled namesake is not the limit the change is about
    if specs:
        raise ConfigError(f"constraint '{name}' is disabled, so changing its bounds changes "
                          "nothing", field="constraints",
                          fix=f"enable '{name}' first (Constraints tab: space), then change it")
    if config.constraint_files:
        fix = (f"'{name}' may come from a constraint file ("
               f"{', '.join(str(p) for p in config.constraint_files)}): edit it there, or use "
               f"one of: {sample_ids([c['name'] for c in data['constraints']], 10)}")
    else:
        fix = ("use a constraint name from the config: "
               + (sample_ids([c["name"] for c in data["constraints"]], 10) or "(none)"))
    raise ConfigError(f"no constraint named '{name}'", field="constraints", fix=fix)


def _set_bound(spec: dict, field: str, value: float | None) -> None:
    if spec.get("target") is not None:
        # target +- band becomes explicit bounds, so one side can move alone.
        band = spec.get("band") or 0.0
        spec["lower"], spec["upper"] = spec["target"] - band, spec["target"] + band
        spec["target"] = spec["band"] = None
    spec[field] = value


# --- the rules -------------------------------------------------------------------------------

def advise(result, universe, config: RunConfig) -> list[Suggestion]:
    """Every rule over one run, sorted by severity, then by estimated gain (largest first)."""
    specs = _specs_by_name(config)
    out: list[Suggestion] = []
    if result.ok:
        out += binding_limits(result, universe, config, specs)
        out += loose_exposures(result, specs)
        out += efp_cheaper(result, universe, config)
        out += risk_aversion_cash(result, universe, config)
        out += risk_aversion_low(result, config, specs)
        out += costs_dominate(result)
    else:
        out += infeasible_relaxations(result, specs)
        out += time_limit(result, config)
    out += data_issues(universe)
    out += etf_arb_unused(universe, config)
    return sorted(out, key=_rank)


def _rank(s: Suggestion) -> tuple:
    gain = s.utility_gain_bp if s.utility_gain_bp is not None else -math.inf
    return SEVERITY_ORDER[s.severity], -gain, s.code, s.title


def _specs_by_name(config: RunConfig) -> dict[str, tuple[ConstraintSpec, bool]]:
    """name -> (spec, editable in the config); file constraints are shown, not edited."""
    # A disabled copy may share its name with the live one: the live one is what binds.
    specs = {c.name: (c, True) for c in config.constraints if not c.enabled}
    specs.update({c.name: (c, True) for c in config.constraints if c.enabled})
    try:
        extra = config.all_constraints()[len(config.constraints):]
    except SpoInputError:
        extra = []  # a constraint file that cannot be read now: its rows still show in the log
    for c in extra:
        specs.setdefault(c.name, (c, False))
    return specs


def _fmt(x: float | None) -> str:
    return "none" if x is None else f"{x:,.4g}"


def _range(values: np.ndarray) -> str:
    lo, hi = float(values.min()), float(values.max())
    return _fmt(lo) if _fmt(lo) == _fmt(hi) else f"{_fmt(lo)} to {_fmt(hi)}"


def _round_out(x: float, up: bool) -> float:
    """Round to 4 significant digits, away from the feasible side (never less relaxed)."""
    if x == 0 or not math.isfinite(x):
        return x
    grid = 10.0 ** (math.floor(math.log10(abs(x))) - 3)
    return (math.ceil(x / grid) if up else math.floor(x / grid)) * grid


def relax_step(unit: str, scope: str, bound: float, nav: float) -> float:
    """A sensible move of a bound: 5% of NAV for book-level %NAV limits, 10% otherwise."""
    if unit == "%NAV":
        return 5.0 if scope != "instrument" else max(0.1 * abs(bound), 0.1)
    if unit == "notional":
        return 0.05 * nav if scope != "instrument" else max(0.1 * abs(bound), 1e-3 * nav)
    floor = {"%ADV": 1.0, "ADV-days": 0.1, "%gross": 0.5, "%holding": 5.0, "x": 0.1,
             "%vol": 0.5, "exposure": 0.05, "shares": 1.0}.get(unit, 0.0)
    return max(0.1 * abs(bound), floor)


def _binding_side(diag: pl.DataFrame) -> pl.DataFrame:
    """Which bound each binding row sits on: the nearer one."""
    to_upper = (pl.col("value") - pl.col("upper")).abs()
    to_lower = (pl.col("value") - pl.col("lower")).abs()
    return diag.with_columns(side=pl.when(pl.col("upper").is_not_null() & (
        pl.col("lower").is_null() | (to_upper <= to_lower))).then(pl.lit("upper"))
        .otherwise(pl.lit("lower")))


def binding_limits(result, universe, config: RunConfig,
                   specs: dict[str, tuple[ConstraintSpec, bool]]) -> list[Suggestion]:
    """RELAX_BOUND / TIGHT_EXPOSURE: what moving each priced binding limit by a step is worth.

    Shadow price x step is the first-order gain; a '*' constraint moves for every group or
    name at once, so the duals of all its binding rows on that side add up.
    """
    # Any positive shadow price: a dual per unit of notional is tiny and still worth basis
    # points over a step of 5% of NAV, so the cut-off is on the gain, below.
    diag = result.diagnostics.filter(pl.col("binding") & (pl.col("dual") > 0)
                                     & pl.col("name").is_in(list(specs)))
    if diag.is_empty():
        return []
    utility = result.summary.get("utility_bp") or 0.0
    nav = result.summary["nav"]
    out = []
    for (name, side), rows in _binding_side(diag).group_by("name", "side",
                                                            maintain_order=True):
        spec, editable = specs[name]
        bound = spec.hi if side == "upper" else spec.lo
        if bound is None or spec.lo == spec.hi:
            continue  # a pinned value (lower = upper) is the trader's decision, not a limit
        step = relax_step(spec.unit, KINDS[spec.kind].scope, bound, nav)
        if step <= 0:
            continue
        # A soft row already over its bound saves its penalty only up to the violation.
        moves = np.where(rows.get_column("soft").to_numpy()
                         & (rows.get_column("violation").to_numpy() > 0),
                         np.minimum(step, rows.get_column("violation").to_numpy()), step)
        duals = rows.get_column("dual").to_numpy()
        gain = float(duals @ moves)
        if gain < MIN_GAIN_BP:
            continue
        new = bound + step if side == "upper" else bound - step
        labels = rows.sort("dual", descending=True).get_column("label").to_list()
        where = ""
        if labels and labels != [""] and KINDS[spec.kind].scope != "portfolio":
            where = f" (binding for {sample_ids(labels, 3)})"
        verb = "raising" if side == "upper" else "lowering"
        exposure = spec.kind in EXPOSURE_KINDS
        title = (f"{verb} {name} {side} from {_fmt(bound)} to {_fmt(new)} {spec.unit}"
                 f"{where} adds about {gain:,.3g} bp of utility (estimate: shadow price "
                 f"{duals.sum():,.3g} {rows.item(0, 'dual_unit')} x {step:g})")
        if exposure:
            title = f"{name} is tight: " + title
        severe = gain >= max(1.0, 0.05 * abs(utility))
        out.append(Suggestion(
            code="TIGHT_EXPOSURE" if exposure else "RELAX_BOUND",
            severity="warning" if severe else "info", title=title,
            evidence={"constraint": name, "kind": spec.kind, "side": side, "bound": bound,
                      "proposed": new, "step": step, "unit": spec.unit,
                      "shadow_price": float(duals.sum()),
                      "dual_unit": rows.item(0, "dual_unit"),
                      "binding_rows": rows.height, "labels": labels[:IDS_IN_EVIDENCE],
                      "values": rows.get_column("value").to_list()[:IDS_IN_EVIDENCE],
                      "estimate": "first order: shadow price x step"},
            change=ConfigChange(ops=[SetBound(constraint=name, field=side, value=new)])
            if editable else None,
            fix=None if editable else "the constraint comes from a constraint file: edit it "
                                      "there",
            utility_gain_bp=gain))
    return out


def loose_exposures(result, specs: dict[str, tuple[ConstraintSpec, bool]]) -> list[Suggestion]:
    """LOOSE_EXPOSURE: a two-sided exposure band the book stays deep inside.

    Only info: a loose band costs nothing today, but it does not guard the next run either.
    The proposed band is half as wide around the same centre, still well clear of today's
    values, so the re-solve gives the same book.
    """
    out = []
    diag = result.diagnostics
    for name, (spec, editable) in specs.items():
        lo, hi = spec.lo, spec.hi
        if (not spec.enabled or spec.kind not in EXPOSURE_KINDS or lo is None or hi is None
                or hi <= lo):
            continue
        rows = diag.filter(pl.col("name") == name).drop_nulls("value")
        if rows.is_empty() or rows.get_column("binding").any():
            continue
        values = rows.get_column("value").to_numpy()
        centre, half = (lo + hi) / 2, (hi - lo) / 2
        used = float(np.abs(values - centre).max() / half)
        if used > LOOSE_USE:
            continue
        new_lo, new_hi = centre - half / 2, centre + half / 2
        out.append(Suggestion(
            code="LOOSE_EXPOSURE", severity="info",
            title=(f"{name} allows {_fmt(lo)} to {_fmt(hi)} {spec.unit} but the book sits at "
                   f"{_range(values)}; a {_fmt(new_lo)} to "
                   f"{_fmt(new_hi)} band changes nothing today and guards the next runs"),
            evidence={"constraint": name, "kind": spec.kind, "lower": lo, "upper": hi,
                      "unit": spec.unit, "realised_min": float(values.min()),
                      "realised_max": float(values.max()), "band_used": used,
                      "rows": rows.height},
            change=ConfigChange(ops=[SetBound(constraint=name, field="lower", value=new_lo),
                                     SetBound(constraint=name, field="upper", value=new_hi)])
            if editable else None,
            utility_gain_bp=0.0))
    return out


def infeasible_relaxations(result, specs: dict[str, tuple[ConstraintSpec, bool]]
                           ) -> list[Suggestion]:
    """RELAX_INFEASIBLE: the elastic re-solve's relaxations, together, as one change.

    They restore feasibility jointly (one alone may not), so they are one suggestion. Each
    new bound is padded 1% past the minimum and rounded outward so the re-solve is not left
    balancing on the edge of feasibility.
    """
    rel = result.relaxation
    if rel is None or rel.is_empty():
        return []
    ops, moves, outside = [], [], []
    for (name, side), rows in rel.group_by("name", "bound", maintain_order=True):
        up = side == "upper"
        relaxed = float(rows.get_column("relaxed_to").max() if up
                        else rows.get_column("relaxed_to").min())
        current = float(rows.item(0, "current"))
        amount = float(rows.get_column("amount").max())
        pad = max(0.01 * amount, 1e-4 * max(1.0, abs(current)))
        new = _round_out(relaxed + pad if up else relaxed - pad, up)
        unit = rows.item(0, "unit")
        moves.append({"constraint": name, "side": side, "current": current,
                      "relaxed_to": relaxed, "proposed": new, "unit": unit,
                      "labels": rows.get_column("label").to_list()[:IDS_IN_EVIDENCE]})
        spec = specs.get(name)
        if spec is not None and spec[1]:
            # A '*' constraint shares one bound: the most relaxed row sets it for all.
            spec_bound = spec[0].hi if up else spec[0].lo
            if spec_bound is not None:
                new = max(new, spec_bound) if up else min(new, spec_bound)
            ops.append(SetBound(constraint=name, field=side, value=new))
        else:
            outside.append(name)
    parts = [f"{m['constraint']} {m['side']} {_fmt(m['current'])} -> {_fmt(m['proposed'])} "
             f"{m['unit']}" for m in moves]
    title = "no portfolio meets every hard constraint; relax " + ", ".join(parts)
    fix = None
    if outside:
        fix = (f"{', '.join(outside)} are not in the config (restrictions or constraint "
               "files): change them at their source")
    return [Suggestion(
        code="RELAX_INFEASIBLE", severity="error", title=title,
        evidence={"relaxations": moves, "conflicts": list(result.solved.conflicts),
                  "not_in_config": outside},
        change=ConfigChange(ops=ops) if ops else None, fix=fix)]


def time_limit(result, config: RunConfig) -> list[Suggestion]:
    if result.status != "time_limit":
        return []
    now = config.optimization.time_limit_s
    new = max(4 * now, 30.0)
    return [Suggestion(
        code="TIME_LIMIT", severity="error",
        title=f"the solver stopped at the {now:g}s time limit; allow {new:g}s",
        evidence={"time_limit_s": now, "iterations": result.summary.get("iterations"),
                  "timings": result.timings},
        change=ConfigChange(ops=[SetSetting(path="optimization.time_limit_s", value=new)]))]


# --- data --------------------------------------------------------------------------------------

_DATA_RULES: dict[str, tuple[str, str, str]] = {
    # diagnostic code -> (suggestion code, what it means for the run, the fix)
    "missing_risk": ("DATA_MISSING_RISK",
                     "have no usable risk model row; they are not traded and their risk is "
                     "not measured",
                     "add their rows to risk_model (factor_loadings, idio_variance) or fix "
                     "the loadings' length"),
    "missing_cost": ("DATA_MISSING_COST",
                     "have no cost_model row; the highest rates of their type are used",
                     "add their cost_model rows"),
    "missing_liquidity": ("DATA_MISSING_LIQUIDITY",
                          "have no liquidity row; they are not traded (ADV limits and impact "
                          "cannot be applied)",
                          "add their liquidity rows (adv_value, adv_shares, spread_bps, "
                          "volatility)"),
    "missing_price": ("DATA_MISSING_PRICE", "have no price; they are not traded",
                      "mark them in positions (price, price_time)"),
    "zero_price": ("DATA_MISSING_PRICE", "have a price that is not positive; they are not "
                                         "traded", "correct their price in positions"),
    "missing_margin": ("DATA_MISSING_MARGIN",
                       "have no margin_model row; the highest rates of their type are used",
                       "add their margin_model rows"),
    "stale_price": ("DATA_STALE_PRICE",
                    "are marked with stale prices; their trades are sized on old marks",
                    "reload intraday prices (ctrl+l in the console), or raise [validation] "
                    "stale_price_hours if the marks are known good"),
    "mismatched_basket_weights": ("DATA_BASKET",
                                  "trade far from their basket value; look-through and "
                                  "arbitrage signals are suspect",
                                  "check shares_per_unit in baskets and the contract "
                                  "multiplier"),
    "unhedgeable_synthetic": ("DATA_BASKET",
                              "have baskets that cannot be valued or traded; no look-through "
                              "or hedge credit",
                              "complete the baskets table and price every constituent"),
}


def data_issues(universe) -> list[Suggestion]:
    """DATA_*: one suggestion per diagnostic code, naming the instruments and the fix."""
    diags = universe.diagnostics.filter(pl.col("severity").is_in(["error", "warning"]))
    if diags.is_empty():
        return []
    frame = universe.frame
    held = set(frame.filter(pl.col("position_shares") != 0).get_column("instrument_id"))
    out = []
    for (code,), rows in diags.group_by("code", maintain_order=True):
        sugg_code, meaning, fix = _DATA_RULES.get(
            code, ("DATA_INVALID", f"have {code.replace('_', ' ')} problems",
                   "see `spo data validate` for each row and correct the source file"))
        ids = rows.get_column("instrument_id").drop_nulls().unique(maintain_order=True)
        ids = ids.to_list()
        held_ids = [i for i in ids if i in held]
        is_error = (rows.get_column("severity") == "error").any()
        severity = ("error" if is_error and held_ids else
                    "warning" if is_error or held_ids else "info")
        what = (f"{len(ids)} instrument(s) {meaning}: {sample_ids(ids)}" if ids
                else f"{rows.height} row(s) {meaning}: {rows.item(0, 'message')}")
        if held_ids:
            what += f" ({len(held_ids)} held)"
        out.append(Suggestion(
            code=sugg_code, severity=severity, title=what,
            evidence={"diagnostic": code, "count": rows.height, "instruments": len(ids),
                      "ids": ids[:IDS_IN_EVIDENCE], "held_ids": held_ids[:IDS_IN_EVIDENCE],
                      "tables": sorted(set(rows.get_column("table"))),
                      "messages": rows.get_column("message").head(3).to_list()},
            fix=fix))
    return out


# --- synthetics ----------------------------------------------------------------------------

def _deliverable_baskets(universe) -> set[str]:
    """Baskets whose every constituent is tradable: only those can be created or EFP'd."""
    legs = universe.baskets
    if legs.is_empty():
        return set()
    tradable = universe.frame.select(constituent_id="instrument_id", leg_ok="tradable")
    ok = (legs.join(tradable, on="constituent_id", how="left")
          .group_by("basket_id").agg(pl.col("leg_ok").fill_null(False).all())
          .filter(pl.col("leg_ok")))
    return set(ok.get_column("basket_id"))


def _basket_market_cost(universe) -> dict[str, float]:
    """Per basket: the linear cost (bp) of crossing its legs, weighted by leg value."""
    legs = universe.baskets
    if legs.is_empty():
        return {}
    cost = universe.frame.select(constituent_id="instrument_id",
                                 leg_cost=pl.col("linear_cost_bps").fill_null(0.0))
    per = (legs.join(cost, on="constituent_id", how="left")
           .group_by("basket_id").agg(
               (pl.col("leg_value") * pl.col("leg_cost").fill_null(0.0)).sum()
               / pl.col("leg_value").sum()))
    return dict(zip(per.get_column("basket_id"), per.get_column("leg_value")))


def etf_arb_unused(universe, config: RunConfig) -> list[Suggestion]:
    """ETF_ARB_UNUSED: a tradable ETF whose premium to its basket beats the create/redeem
    cost while create/redeem is off. A warning where the premium also pays for crossing the
    ETF and its basket in the market (a full round trip), info where it only beats the fee.
    Premiums past the basket tolerance are data suspects (DATA_BASKET), not arbitrage."""
    syn = config.optimization.synthetics
    if syn.allow_create_redeem or config.optimization.objective != "utility":
        return []
    tolerance_bps = config.validation.basket_tolerance_pct * 100.0
    deliverable = _deliverable_baskets(universe)
    etfs = universe.frame.filter(
        (pl.col("type") == "ETF") & pl.col("tradable") & pl.col("hedgeable").fill_null(False)
        & pl.col("instrument_id").is_in(list(deliverable))
        & (pl.col("basket_premium_bps").abs() > syn.create_redeem_cost_bps)
        & (pl.col("basket_premium_bps").abs() <= tolerance_bps)
    ).sort(pl.col("basket_premium_bps").abs(), descending=True)
    if etfs.is_empty():
        return []
    basket_cost = _basket_market_cost(universe)
    rows = []
    for r in etfs.iter_rows(named=True):
        market = (r["linear_cost_bps"] or 0.0) + basket_cost.get(r["instrument_id"], 0.0)
        premium = r["basket_premium_bps"]
        rows.append({"instrument_id": r["instrument_id"], "ticker": r["ticker"],
                     "premium_bps": premium,
                     "create_redeem_cost_bps": syn.create_redeem_cost_bps,
                     "market_cost_bps": market,
                     "edge_bps": abs(premium) - syn.create_redeem_cost_bps - market,
                     "action": "create and sell" if premium > 0 else "buy and redeem",
                     "position_shares": r["position_shares"]})
    rows.sort(key=lambda x: -x["edge_bps"])
    paying = [x for x in rows if x["edge_bps"] > 0]
    top = rows[0]
    more = f" ({len(rows)} ETFs in all, {len(paying)} after market costs)" if len(rows) > 1 \
        else ""
    return [Suggestion(
        code="ETF_ARB_UNUSED", severity="warning" if paying else "info",
        title=(f"{top['ticker']} trades {top['premium_bps']:+.1f} bp to its basket, more than "
               f"the {syn.create_redeem_cost_bps:g} bp create/redeem cost "
               f"({top['market_cost_bps']:.1f} bp to cross both legs){more}, but "
               "create/redeem is off: turn on allow_create_redeem"),
        evidence={"etfs": rows[:IDS_IN_EVIDENCE], "count": len(rows),
                  "paying_after_market_costs": len(paying),
                  "create_redeem_cost_bps": syn.create_redeem_cost_bps},
        change=ConfigChange(ops=[SetSetting(
            path="optimization.synthetics.allow_create_redeem", value=True)]))]


def efp_cheaper(result, universe, config: RunConfig) -> list[Suggestion]:
    """EFP_CHEAPER: the solution trades a future against its basket in the market (future
    one way, every leg the other) while an EFP would exchange them for less.

    The exchangeable notional is what the legs' trades can deliver against the future's;
    crossing cost is the trades' own cost per notional (spread, commission and impact).
    """
    syn = config.optimization.synthetics
    trades = result.trades
    if syn.allow_efp or trades.is_empty():
        return []
    deliverable = _deliverable_baskets(universe)
    futures = trades.filter((pl.col("type") == "Future")
                            & pl.col("instrument_id").is_in(list(deliverable)))
    if futures.is_empty():
        return []
    by_id = {r["instrument_id"]: r for r in trades.select(
        "instrument_id", "signed_notional", "cost_bps").iter_rows(named=True)}
    nav = result.summary["nav"]
    rows = []
    for fut in futures.iter_rows(named=True):
        legs = universe.baskets.filter(pl.col("basket_id") == fut["instrument_id"])
        leg_value = dict(zip(legs.get_column("constituent_id"),
                             legs.get_column("leg_value").fill_null(0.0)))
        basket = sum(leg_value.values())
        if basket <= 0:
            continue
        direction = math.copysign(1.0, fut["signed_notional"])
        exchangeable = abs(fut["signed_notional"])
        leg_cost = 0.0
        for c, v in leg_value.items():
            w = v / basket
            t = by_id.get(c) or {"signed_notional": 0.0, "cost_bps": 0.0}
            if w > 0:
                # Only a leg traded against the future can be delivered by the EFP.
                opposite = -direction * t["signed_notional"]
                exchangeable = min(exchangeable, max(opposite, 0.0) / w)
                leg_cost += w * (t["cost_bps"] or 0.0)
        cross_bps = (fut["cost_bps"] or 0.0) + leg_cost
        if exchangeable <= 0 or cross_bps <= syn.efp_cost_bps:
            continue
        saving_bp = exchangeable * (cross_bps - syn.efp_cost_bps) / nav
        rows.append({"instrument_id": fut["instrument_id"], "ticker": fut["ticker"],
                     "exchangeable_notional": exchangeable, "cross_cost_bps": cross_bps,
                     "efp_cost_bps": syn.efp_cost_bps, "saving_bp_of_nav": saving_bp})
    rows = [r for r in rows if r["saving_bp_of_nav"] >= MIN_GAIN_BP]
    if not rows:
        return []
    rows.sort(key=lambda r: -r["saving_bp_of_nav"])
    gain = sum(r["saving_bp_of_nav"] for r in rows)
    top = rows[0]
    return [Suggestion(
        code="EFP_CHEAPER", severity="warning",
        title=(f"{top['ticker']} is traded against its basket in the market at "
               f"{top['cross_cost_bps']:.1f} bp for both legs; an EFP at "
               f"{syn.efp_cost_bps:g} bp saves about {gain:,.3g} bp of NAV (estimate): turn "
               "on allow_efp"),
        evidence={"futures": rows, "estimate": "average cost of today's trades x the "
                                               "notional an EFP would exchange"},
        change=ConfigChange(ops=[SetSetting(path="optimization.synthetics.allow_efp",
                                            value=True)]),
        utility_gain_bp=gain)]


# --- settings ------------------------------------------------------------------------------

def _binding_kinds(result, side: str = "upper") -> set[str]:
    diag = _binding_side(result.diagnostics.filter(pl.col("binding")))
    return set(diag.filter(pl.col("side") == side).get_column("kind"))


def risk_aversion_cash(result, universe, config: RunConfig) -> list[Suggestion]:
    """RISK_AVERSION_CASH: with alpha to trade and no size limit binding, the book shrank to
    under half its gross (or sits nearly all in cash): risk aversion is doing that."""
    opt = config.optimization
    if opt.objective != "utility" or not opt.use_alpha or opt.risk_aversion <= 0:
        return []
    alpha = universe.frame.filter(pl.col("tradable")).get_column("alpha")
    if alpha.is_empty() or float(alpha.abs().max()) == 0.0:
        return []
    book = result.summary["book"]
    before, after = book["before"]["gross_pct"], book["after"]["gross_pct"]
    collapsed = before >= 10.0 and after < 0.5 * before
    idle = after < 5.0
    if not (collapsed or idle) or _binding_kinds(result) & SIZE_LIMIT_KINDS:
        return []
    new = _round_out(opt.risk_aversion / 2, up=False)
    why = (f"gross falls from {before:.1f}% to {after:.1f}% of NAV" if collapsed
           else f"gross is only {after:.1f}% of NAV")
    return [Suggestion(
        code="RISK_AVERSION_CASH", severity="warning",
        title=(f"risk aversion {opt.risk_aversion:g} leaves the book mostly in cash ({why}, "
               f"no size limit binding): try {new:g}"),
        evidence={"risk_aversion": opt.risk_aversion, "gross_before_pct": before,
                  "gross_after_pct": after, "cash_after_pct": book["after"]["cash_pct"],
                  "risk_after_pct": result.summary["risk"]["after"]["total_pct"],
                  "alpha_after_bp": result.summary["alpha_bp"]["after"]},
        change=ConfigChange(ops=[SetSetting(path="optimization.risk_aversion", value=new)]))]


def risk_aversion_low(result, config: RunConfig,
                      specs: dict[str, tuple[ConstraintSpec, bool]]) -> list[Suggestion]:
    """RISK_AVERSION_LOW: a total-risk limit binds, so the limit (not risk aversion) sets
    the book's risk. The risk aversion that prices risk the same way is lambda + y /
    (2 hs sigma), y the limit's shadow price in utility per %vol: with it the optimizer
    trades risk against return smoothly instead of running into a wall."""
    opt = config.optimization
    if (opt.objective != "utility" or opt.relative_to_benchmark or opt.risk_terms != "full"):
        return []
    diag = result.diagnostics.filter(pl.col("binding") & (pl.col("kind") == "total_risk")
                                     & (pl.col("dual") > MIN_DUAL))
    if diag.is_empty():
        return []
    row = diag.sort("dual", descending=True).row(0, named=True)
    sigma, dual = row["upper"], row["dual"]
    if not sigma or sigma <= 0:
        return []
    hs = opt.horizon_days / 252.0
    implied = opt.risk_aversion + dual / (2 * hs * sigma)  # dual in bp/%vol: 1e-4 / 1e-4
    new = _round_out(implied, up=True)
    return [Suggestion(
        code="RISK_AVERSION_LOW", severity="info",
        title=(f"{row['name']} binds at {sigma:g}% vol: the limit, not risk aversion "
               f"{opt.risk_aversion:g}, sets the risk; risk aversion {new:g} prices risk the "
               "same way"),
        evidence={"constraint": row["name"], "limit_pct": sigma, "shadow_price": dual,
                  "dual_unit": row["dual_unit"], "risk_aversion": opt.risk_aversion,
                  "implied_risk_aversion": implied, "horizon_days": opt.horizon_days},
        change=ConfigChange(ops=[SetSetting(path="optimization.risk_aversion", value=new)]))]


def costs_dominate(result) -> list[Suggestion]:
    """COSTS_DOMINATE: the trades pay more than half the alpha they add and barely cut risk;
    a cost model too cheap or too dear, or a rebalance too frequent, usually explains it."""
    s = result.summary
    gained = s["alpha_bp"]["after"] - s["alpha_bp"]["before"]
    cost = s["trading_cost_bp"]
    rb, ra = s["risk"]["before"]["total_pct"], s["risk"]["after"]["total_pct"]
    if gained <= 0 or cost < 0.5 * gained or ra < 0.9 * rb:
        return []
    return [Suggestion(
        code="COSTS_DOMINATE", severity="info",
        title=(f"trading costs of {cost:,.3g} bp take {100 * cost / gained:.0f}% of the "
               f"{gained:,.3g} bp of alpha the trades add, and risk barely moves"),
        evidence={"trading_cost_bp": cost, "alpha_gained_bp": gained,
                  "costs_bp": s["costs_bp"], "risk_before_pct": rb, "risk_after_pct": ra,
                  "turnover_pct": s["turnover_pct"]},
        fix="check cost_model rates and [optimization.costs] scale; a longer horizon_days "
            "lets the alpha pay for its trades")]
