"""Pre-solve diagnostics: what is wrong with the constraints before the solver runs.

`presolve(specs, universe, settings)` returns one row per finding (severity, code,
constraint, message, fix), errors first. The checks use the same ProblemData and constraint
blocks the solve builds (core.model.data, core.constraints.normalize), so a value shown here
is the value the solver would see:

- references: a duplicate name; an unknown instrument, group column, group value, factor or
  currency; an instrument that is untradable (and not held: the solve stops on it; held: the
  limit is checked, not imposed); a group with nothing tradable in it.
- contradictory bounds: two constraints on the same exposure whose bands do not intersect
  (two gross limits, a group_net for every sector against one for Tech, leverage against
  gross); for one instrument, the bounds implied by holding, no-new-shorts/longs, no-trade,
  the restrictions table, max_trade (|trade| around the current position) and
  max_holding_adv / max_margin (|position|); and the identities between portfolio measures
  (|net| <= gross, gross = long + short, net = long - short, and how far net, gross, long
  and short can move within the turnover limit).
- out of reach: a group or portfolio band its members' hard instrument bounds cannot reach
  (a sector lower bound above what the members' holding limits allow, a net upper bound
  below what no-new-shorts permits, ...).
- broken now: each constraint evaluated on the current book, value against bound in the
  constraint's unit; the solve will have to trade to restore it.

Soft constraints can be violated at a price, so a contradiction involving one is a warning,
not an error; a soft constraint the current book breaks is information.

Not concluded on (the solve still decides): floors on gross, long, short or turnover (the
model can meet them with both legs of a name), risk, margin and concentration limits against
the instrument bounds, and trade-derived bounds where create/redeem or EFP flows can move a
position without a market trade.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import polars as pl

from core.constraints.catalogue import KINDS
from core.constraints.normalize import (
    ConstraintBlock, block_values, exposures, normalize, normalize_all,
)
from core.constraints.spec import ConstraintSpec
from core.errors import SpoInputError, sample_ids
from core.model.data import ProblemData, problem_data

SCHEMA = {"severity": pl.String, "code": pl.String, "constraint": pl.String,
          "message": pl.String, "fix": pl.String}
ORDER = {"error": 0, "warning": 1, "info": 2}
TOL = 1e-8  # model units (fractions of NAV): 1e-6 %NAV

# Portfolio kinds that bound the same quantity, in model units.
MEASURE = {"net_exposure": "net", "gross_exposure": "gross", "leverage": "gross",
           "long_market_value": "long", "short_market_value": "short"}
FIX_CONFLICT = "widen one of the bands, or disable one, or make one soft"


@dataclass
class Finding:
    severity: str
    code: str
    constraint: str
    message: str
    fix: str


def fmt(value: float | None, unit: str = "", numeraire: str = "") -> str:
    """A bound or value for a trader: 200, 0.25, -5.06, 1,250,000 USD, 1.5x."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    if np.isinf(value):
        return "inf" if value > 0 else "-inf"
    if unit == "notional":
        return f"{value:,.0f} {numeraire}".rstrip()
    if unit == "shares":
        return f"{value:,.0f} shares"
    a = abs(value)
    if a == 0:
        s = "0"
    elif a >= 100:
        s = f"{value:,.1f}"
    elif a >= 1:
        s = f"{value:.2f}"
    else:
        s = f"{value:.3g}"
    if "." in s and "e" not in s:
        s = s.rstrip("0").rstrip(".")
    if unit == "x":
        return f"{s}x"
    return f"{s} {unit}" if unit and unit != "exposure" else s


def pct(value: float) -> str:
    """Model units (fraction of NAV) as %NAV."""
    return fmt(value * 100.0, "%NAV")


def presolve(specs: list[ConstraintSpec], universe, settings,
             data: ProblemData | None = None) -> pl.DataFrame:
    """Findings about `specs` on `universe` before solving; see the module doc.

    settings: OptimizationSettings (or a RunConfig, whose .optimization is used). `data`
    may be passed when the caller keeps the ProblemData of this universe and settings.
    """
    settings = getattr(settings, "optimization", settings)
    out: list[Finding] = []
    enabled = _unique(specs, out)
    if universe is not None:
        if data is None:
            data = problem_data(universe, settings)
        _Checks(enabled, universe, settings, data, out).run()
    rows = sorted(out, key=lambda f: ORDER[f.severity])  # stable: check order within one
    return pl.DataFrame([(f.severity, f.code, f.constraint, f.message, f.fix) for f in rows],
                        schema=SCHEMA, orient="row")


def _unique(specs: list[ConstraintSpec], out: list[Finding]) -> list[ConstraintSpec]:
    seen: set[str] = set()
    keep = []
    for spec in specs:
        if not spec.enabled:
            continue
        if spec.name in seen:
            out.append(Finding("error", "duplicate_name", spec.name,
                               f"two enabled constraints are named '{spec.name}'; the solve "
                               "stops on the second", "give each constraint a unique name"))
            continue
        seen.add(spec.name)
        keep.append(spec)
    return keep


class _Checks:
    def __init__(self, specs, universe, settings, data: ProblemData, out: list[Finding]):
        self.specs = specs
        self.uni = universe
        self.st = settings
        self.d = data
        self.out = out
        self.relative = settings.relative_to_benchmark
        self.unit_money = universe.numeraire
        frame = universe.frame
        self.reason = dict(zip(
            frame.get_column("instrument_id").to_list(),
            frame.select(pl.when(pl.col("is_cash")).then(pl.lit("cash"))
                         .otherwise(pl.col("untradable_reason").fill_null("not tradable"))
                         ).to_series().to_list()))
        self.tradable_ids = set(data.tradable.ids.tolist())
        self.fixed_ids = set(data.fixed.ids.tolist())
        # Flows (create/redeem, EFP) move positions without a market trade: trade limits
        # then bound less than |h - h0| for the instruments they touch.
        self.flowing = np.zeros(data.n, bool)
        if data.flows is not None and data.flows.size:
            self.flowing = np.asarray(abs(data.flows.V).sum(axis=1)).ravel() > 0

    def add(self, severity: str, code: str, name: str, message: str, fix: str) -> None:
        self.out.append(Finding(severity, code, name, message, fix))

    def run(self) -> None:
        blocks = []
        for spec in self.specs:
            if not self._references(spec):
                continue
            try:
                blocks.append(normalize(spec, self.d, self.relative))
            except SpoInputError as exc:
                self.add("error", "invalid_constraint", spec.name, exc.problem,
                         exc.fix or "correct the constraint")
        automatic = normalize_all([], self.d, self.relative, automatic=True)
        instrument = [b for b in blocks + automatic
                      if KINDS[b.spec.kind].scope == "instrument" and b.rows]
        aggregate = [b for b in blocks if KINDS[b.spec.kind].scope != "instrument" and b.rows]
        hard_box = self._instrument_conflicts(instrument)
        self._same_exposure(aggregate)
        self._relations(aggregate)
        self._reach(aggregate, hard_box)
        self._broken_now(blocks)

    # --- references ----------------------------------------------------------------------

    def _why(self, ids) -> str:
        return sample_ids(f"{i}: {self.reason.get(i, 'not tradable')}" for i in ids)

    def _references(self, spec: ConstraintSpec) -> bool:
        """False when the constraint cannot be normalized (an error was recorded)."""
        kind = KINDS[spec.kind]
        name = spec.name
        if kind.scope == "instrument" and spec.instrument != "*":
            iid = spec.instrument
            if iid in self.tradable_ids:
                return True
            if iid in self.fixed_ids:
                self.add("warning", "instrument_not_tradable", name,
                         f"{iid} is not tradable ({self.reason.get(iid)}): its position "
                         f"stays {self._fixed_holding(spec) or 'as it is'}; this limit is "
                         "checked, not imposed",
                         "disable the constraint, or clear what blocks the instrument")
                return True
            if iid in self.reason:
                self.add("error", "instrument_not_tradable", name,
                         f"{iid} is not tradable ({self.reason[iid]}) and not held: the "
                         "solve stops on this constraint",
                         "disable or delete the constraint, or clear what blocks the "
                         "instrument")
                return False
            tickers = self.uni.frame.filter(pl.col("ticker") == iid).get_column(
                "instrument_id").to_list()
            hint = f" (ticker {iid} is instrument_id {tickers[0]})" if tickers else ""
            self.add("error", "unknown_instrument", name,
                     f"no instrument '{iid}' in the universe{hint}",
                     "use an instrument_id from the universe, or '*' for every tradable name")
            return False
        if spec.kind == "factor_exposure":
            return self._factor_reference(spec)
        if spec.kind == "currency_cash":
            cur = self.d.currencies
            codes = [] if cur is None else list(cur.codes)
            if spec.group != "*" and spec.group not in codes:
                self.add("error", "unknown_currency", name,
                         f"no cash or instrument in currency '{spec.group}'",
                         f"use one of {', '.join(codes)} or '*'")
                return False
            return True
        if kind.scope == "group":
            return self._group_reference(spec)
        return True

    def _fixed_holding(self, spec: ConstraintSpec) -> str:
        """'at 4.89 %NAV, above its upper 1 %NAV' for a holding limit on a fixed name."""
        if spec.kind != "holding":
            return ""
        row = self.uni.frame.filter(pl.col("instrument_id") == spec.instrument).row(
            0, named=True)
        value = {"%NAV": 100.0 * row["position_notional"] / self.uni.nav,
                 "notional": row["position_notional"],
                 "shares": row["position_shares"] or 0.0}[spec.unit]
        text = f"at {fmt(value, spec.unit, self.unit_money)}"
        if spec.hi is not None and value > spec.hi:
            text += f", above its upper {fmt(spec.hi, spec.unit, self.unit_money)}"
        elif spec.lo is not None and value < spec.lo:
            text += f", below its lower {fmt(spec.lo, spec.unit, self.unit_money)}"
        return text

    def _factor_reference(self, spec: ConstraintSpec) -> bool:
        names = list(self.d.factor_names)
        sel = spec.factor
        if sel == "*":
            return True
        if sel.startswith("kind:"):
            kinds = sorted(set(self.d.factor_kinds))
            if sel[5:] in kinds:
                return True
            self.add("error", "unknown_factor", spec.name,
                     f"the risk model has no factor of kind '{sel[5:]}'",
                     f"use kind:{' or kind:'.join(kinds)}, a factor name or '*'")
            return False
        if sel in names:
            return True
        self.add("error", "unknown_factor", spec.name,
                 f"the risk model has no factor '{sel}'",
                 f"use a factor name ({sample_ids(names)}), 'kind:style' or '*'")
        return False

    def _group_reference(self, spec: ConstraintSpec) -> bool:
        col, name = spec.group_by, spec.name
        t, f = self.d.tradable, self.d.fixed
        if col not in t.labels:
            known = ", ".join(sorted(t.labels))
            where = ("the model groups by " + known if col in self.uni.frame.columns
                     else f"no column '{col}' in the universe; the model groups by " + known)
            self.add("error", "unknown_group_by", name, f"cannot group by '{col}': {where}",
                     f"set group_by to one of {known}")
            return False
        t_lab = t.labels[col]
        values = sorted(set(t_lab.tolist()) | set(f.labels.get(col, np.array([])).tolist()))
        frame = self.uni.frame.filter(~pl.col("is_cash")).with_columns(
            pl.col(col).cast(pl.String).fill_null("(none)").alias("_g"))
        if spec.group != "*":
            if spec.group not in values:
                members = frame.filter(pl.col("_g") == spec.group).get_column(
                    "instrument_id").to_list()
                if members:
                    self.add("error", "group_nothing_tradable", name,
                             f"{col} = {spec.group} has {len(members)} member(s), none "
                             f"tradable or held ({self._why(members)}): the solve stops on "
                             "this constraint", "disable or delete the constraint")
                else:
                    self.add("error", "unknown_group", name,
                             f"no instrument has {col} = '{spec.group}'",
                             f"use one of {sample_ids(values, 12)}, or '*' for each")
                return False
            values = [spec.group]
        empty = [v for v in values if not (t_lab == v).any()]
        if empty and spec.group != "*":
            members = frame.filter(pl.col("_g") == empty[0]).get_column(
                "instrument_id").to_list()
            self.add("warning", "group_nothing_tradable", name,
                     f"{col} = {empty[0]} has nothing tradable ({self._why(members)}): the "
                     "constraint is skipped", "disable it, or clear what blocks the members")
        elif empty:
            self.add("info", "group_nothing_tradable", name,
                     f"skipped for {col} = {sample_ids(empty)}: nothing tradable there", "")
        return True

    # --- one instrument's bounds ---------------------------------------------------------

    def _intervals(self, block: ConstraintBlock):
        """(cols, lower, upper) the block implies for positions h (model units), or None."""
        S = block.S.tocoo()
        r, j, c = S.row, S.col, S.data
        ok = c != 0
        r, j, c = r[ok], j[ok], c[ok]
        lo = np.where(np.isnan(block.lo[r]), -np.inf, block.lo[r])
        hi = np.where(np.isnan(block.hi[r]), np.inf, block.hi[r])
        tr = block.transform
        if tr == "linear":
            a, b = lo / c, hi / c
            return j, np.where(c > 0, a, b), np.where(c > 0, b, a)
        if tr == "abs":  # c |h| <= hi (a lower bound on |h| is not a bound on h)
            m = hi / np.abs(c)
            return j, -m, m
        if tr == "abs_trade":  # |h - h0| <= hi, where no flow moves the position
            keep = ~self.flowing[j]
            j, c, hi = j[keep], c[keep], hi[keep]
            m = hi / np.abs(c)
            h0 = self.d.tradable.h0[j]
            return j, h0 - m, h0 + m
        return None

    def _box(self, blocks: list[ConstraintBlock], soft: bool):
        n = self.d.n
        lo, hi = np.full(n, -np.inf), np.full(n, np.inf)
        lo_src, hi_src = np.full(n, -1), np.full(n, -1)
        for k, block in enumerate(blocks):
            if block.spec.soft and not soft:
                continue
            iv = self._intervals(block)
            if iv is None:
                continue
            j, a, b = iv
            # Several rows may name one instrument: take the tightest per instrument.
            best_a = np.full(n, -np.inf)
            np.maximum.at(best_a, j, a)
            best_b = np.full(n, np.inf)
            np.minimum.at(best_b, j, b)
            up = best_a > lo
            lo[up], lo_src[up] = best_a[up], k
            down = best_b < hi
            hi[down], hi_src[down] = best_b[down], k
        return lo, hi, lo_src, hi_src

    def _describe(self, block: ConstraintBlock, j: int, side: str, value: float) -> str:
        if block.transform == "abs_trade":
            h0 = self.d.tradable.h0[j]
            return (f"{block.spec.name} ({'at least' if side == 'lo' else 'at most'} "
                    f"{pct(value)}: |trade| <= {pct(abs(value - h0))} from the current "
                    f"{pct(h0)})")
        return f"{block.spec.name} ({'at least' if side == 'lo' else 'at most'} {pct(value)})"

    def _instrument_conflicts(self, blocks: list[ConstraintBlock]):
        """Empty intervals per instrument; returns the hard box with them opened up (so
        one contradiction is not reported again by every group it belongs to)."""
        self.box_names = [b.spec.name for b in blocks]
        ids = self.d.tradable.ids
        box = None
        reported: set[tuple[int, int]] = set()
        for soft in (False, True):
            lo, hi, lo_src, hi_src = self._box(blocks, soft)
            bad = lo > hi + TOL
            if not soft:
                box = (np.where(bad, -np.inf, lo), np.where(bad, np.inf, hi), lo_src, hi_src)
            pairs: dict[tuple[int, int], list[int]] = {}
            for j in np.flatnonzero(bad):
                pairs.setdefault((int(lo_src[j]), int(hi_src[j])), []).append(int(j))
            for (a, b), cols in pairs.items():
                if (a, b) in reported:
                    continue
                A, B = blocks[a], blocks[b]
                if soft and not (A.spec.soft or B.spec.soft):
                    continue
                reported.add((a, b))
                j = max(cols, key=lambda i: lo[i] - hi[i])
                more = f" (and {len(cols) - 1} more instrument(s))" if len(cols) > 1 else ""
                # Name the trader's own constraint, not the restrictions table's.
                user = B if A.spec.name.startswith("restriction:") else A
                self.add("warning" if soft else "error", "contradictory_bounds",
                         user.spec.name,
                         f"{ids[j]}: {self._describe(A, j, 'lo', lo[j])} contradicts "
                         f"{self._describe(B, j, 'hi', hi[j])}{more}", FIX_CONFLICT)
        return box

    # --- the same exposure twice ---------------------------------------------------------

    @staticmethod
    def _key(spec: ConstraintSpec) -> tuple:
        if spec.kind in MEASURE:
            return (MEASURE[spec.kind],)
        if spec.kind in ("factor_exposure", "currency_cash"):
            return (spec.kind,)
        if KINDS[spec.kind].scope == "group":
            return (spec.kind, spec.group_by)
        return (spec.kind,)

    def _same_exposure(self, blocks: list[ConstraintBlock]) -> None:
        by_key: dict[tuple, list[tuple[ConstraintBlock, int]]] = {}
        for block in blocks:
            if block.transform in ("risk", "factor_risk", "tracking", "margin",
                                   "concentration"):
                key = (block.spec.kind,)
            else:
                key = self._key(block.spec)
            for r, label in enumerate(block.labels):
                by_key.setdefault(key + (str(label),), []).append((block, r))
        done: set[tuple[str, str]] = set()
        for key, rows in by_key.items():
            if len(rows) < 2:
                continue
            for soft in (False, True):
                use = [(b, r) for b, r in rows if soft or not b.spec.soft]
                los = [(b.lo[r], b, r) for b, r in use if not np.isnan(b.lo[r])]
                his = [(b.hi[r], b, r) for b, r in use if not np.isnan(b.hi[r])]
                if not los or not his:
                    continue
                lo, A, ra = max(los, key=lambda x: x[0])
                hi, B, rb = min(his, key=lambda x: x[0])
                if A is B or lo <= hi + TOL or (A.spec.name, B.spec.name) in done:
                    continue
                if soft and not (A.spec.soft or B.spec.soft):
                    continue
                done.add((A.spec.name, B.spec.name))
                label = key[-1]
                where = f" for {label}" if label else ""
                self.add("warning" if soft else "error", "contradictory_bounds", A.spec.name,
                         f"{A.spec.name} lower {self._in_unit(A, ra, lo)} is above "
                         f"{B.spec.name} upper {self._in_unit(B, rb, hi)}{where}",
                         FIX_CONFLICT)

    def _in_unit(self, block: ConstraintBlock, r: int, model_value: float) -> str:
        scale = block.scale[r]
        if not scale:
            return pct(model_value)
        return fmt(model_value / scale, block.spec.unit, self.unit_money)

    # --- identities between portfolio measures -------------------------------------------

    def _measures(self, blocks: list[ConstraintBlock], soft: bool) -> dict:
        """measure -> {'lo': (value, block), 'hi': (value, block)} in model units."""
        out: dict[str, dict] = {}
        for block in blocks:
            spec = block.spec
            m = MEASURE.get(spec.kind, "turnover" if spec.kind == "turnover" else None)
            if m is None or (spec.soft and not soft):
                continue
            slot = out.setdefault(m, {})
            lo, hi = block.lo[0], block.hi[0]
            if not np.isnan(lo) and ("lo" not in slot or lo > slot["lo"][0]):
                slot["lo"] = (lo, block)
            if not np.isnan(hi) and ("hi" not in slot or hi < slot["hi"][0]):
                slot["hi"] = (hi, block)
        return out

    def _current(self) -> dict[str, float]:
        t, f = self.d.tradable, self.d.fixed
        h = np.concatenate([t.h0, f.h0])
        return {"net": float(h.sum()), "gross": float(np.abs(h).sum()),
                "long": float(np.maximum(h, 0).sum()), "short": float(np.maximum(-h, 0).sum())}

    def _relations(self, blocks: list[ConstraintBlock]) -> None:
        now = self._current()
        reported: set[str] = set()
        for soft in (False, True):
            m = self._measures(blocks, soft)

            def get(measure: str, side: str):
                return m.get(measure, {}).get(side)

            found: list[tuple[str, list[ConstraintBlock], str]] = []
            net_lo, net_hi = get("net", "lo"), get("net", "hi")
            gross_lo, gross_hi = get("gross", "lo"), get("gross", "hi")
            long_lo, long_hi = get("long", "lo"), get("long", "hi")
            short_lo, short_hi = get("short", "lo"), get("short", "hi")
            if gross_hi:
                g, G = gross_hi
                if net_lo and net_lo[0] > g + TOL:
                    found.append(("net>gross", [net_lo[1], G],
                                  f"net lower {pct(net_lo[0])} ({net_lo[1].spec.name}) is "
                                  f"above gross upper {pct(g)} ({G.spec.name}): |net| can "
                                  "never exceed gross"))
                if net_hi and net_hi[0] < -g - TOL:
                    found.append(("net<-gross", [net_hi[1], G],
                                  f"net upper {pct(net_hi[0])} ({net_hi[1].spec.name}) is "
                                  f"below minus gross upper {pct(-g)} ({G.spec.name}): |net| "
                                  "can never exceed gross"))
                legs = [x for x in (long_lo, short_lo) if x and x[0] > 0]
                if legs and sum(x[0] for x in legs) > g + TOL:
                    names = " + ".join(f"{x[1].spec.name} lower {pct(x[0])}" for x in legs)
                    found.append(("legs>gross", [x[1] for x in legs] + [G],
                                  f"{names} is above gross upper {pct(g)} ({G.spec.name}): "
                                  "gross = long + short"))
            if gross_lo and long_hi and short_hi and \
                    gross_lo[0] > long_hi[0] + short_hi[0] + TOL:
                found.append(("gross>legs", [gross_lo[1], long_hi[1], short_hi[1]],
                              f"gross lower {pct(gross_lo[0])} ({gross_lo[1].spec.name}) is "
                              f"above long upper {pct(long_hi[0])} + short upper "
                              f"{pct(short_hi[0])}: gross = long + short"))
            if net_hi and long_lo:
                least = long_lo[0] - (short_hi[0] if short_hi else np.inf)
                if least > net_hi[0] + TOL:
                    found.append(("long-short>net", [long_lo[1], short_hi[1], net_hi[1]],
                                  f"long lower {pct(long_lo[0])} less short upper "
                                  f"{pct(short_hi[0])} is above net upper {pct(net_hi[0])} "
                                  f"({net_hi[1].spec.name}): net = long - short"))
            if net_lo and short_lo:
                most = (long_hi[0] if long_hi else np.inf) - short_lo[0]
                if most < net_lo[0] - TOL:
                    found.append(("long-short<net", [long_hi[1], short_lo[1], net_lo[1]],
                                  f"long upper {pct(long_hi[0])} less short lower "
                                  f"{pct(short_lo[0])} is below net lower {pct(net_lo[0])} "
                                  f"({net_lo[1].spec.name}): net = long - short"))
            turnover = get("turnover", "hi")
            if turnover and not self.flowing.any():
                T, TB = turnover
                # Each of these moves by at most the turnover; net both ways, and gross,
                # long and short downwards (the model can always add both legs of a name).
                for measure, sides in (("net", ("lo", "hi")), ("gross", ("hi",)),
                                       ("long", ("hi",)), ("short", ("hi",))):
                    for side in sides:
                        bound = get(measure, side)
                        if not bound:
                            continue
                        v, B = bound
                        gap = (v - now[measure]) if side == "lo" else (now[measure] - v)
                        if gap > T + TOL:
                            found.append((f"turnover:{measure}:{side}", [B, TB],
                                          f"{measure} {'lower' if side == 'lo' else 'upper'} "
                                          f"{pct(v)} ({B.spec.name}) is {pct(gap)} from the "
                                          f"current {pct(now[measure])}, but turnover upper "
                                          f"{pct(T)} ({TB.spec.name}) allows a move of "
                                          f"{pct(T)} at most"))
            for rule, involved, message in found:
                if rule in reported:
                    continue
                if soft and not any(b.spec.soft for b in involved):
                    continue
                reported.add(rule)
                self.add("warning" if soft else "error",
                         "turnover_too_small" if rule.startswith("turnover")
                         else "conflicting_limits", involved[0].spec.name, message,
                         FIX_CONFLICT)

    # --- out of reach of the instrument bounds -------------------------------------------

    def _reach(self, blocks: list[ConstraintBlock], box) -> None:
        names = self.box_names
        for block in blocks:
            rng = self._range(block, *box)
            if rng is None:
                continue
            vmin, vmax, S, src_min, src_max = rng
            checks = []
            can_lower = block.transform in ("linear", "factor")
            for r in range(block.rows):
                if not np.isnan(block.hi[r]) and vmin[r] > block.hi[r] + TOL:
                    checks.append((vmin[r] - block.hi[r], r, "upper", vmin[r], src_min))
                if can_lower and not np.isnan(block.lo[r]) and vmax[r] < block.lo[r] - TOL:
                    checks.append((block.lo[r] - vmax[r], r, "lower", vmax[r], src_max))
            if not checks:
                continue
            gap, r, side, reach, src = max(checks, key=lambda x: x[0])
            srcs = src[S.indptr[r]:S.indptr[r + 1]]  # the binding bound of each member
            spec = block.spec
            label = str(block.labels[r])
            where = f" for {label}" if label else ""
            bound = block.hi[r] if side == "upper" else block.lo[r]
            who = ", ".join(n for n, _ in Counter(names[s] for s in srcs if s >= 0)
                            .most_common(3)) or "the instrument bounds"
            more = f" ({len(checks)} rows in all)" if len(checks) > 1 else ""
            self.add("warning" if spec.soft else "error", "out_of_reach", spec.name,
                     f"{side} {self._in_unit(block, r, bound)}{where} is out of reach: the "
                     f"hard instrument bounds ({who}) keep it "
                     f"{'at or above' if side == 'upper' else 'at or below'} "
                     f"{self._in_unit(block, r, reach)}{more}"
                     + ("; as a soft constraint it will be violated" if spec.soft else ""),
                     FIX_CONFLICT)

    def _range(self, block: ConstraintBlock, lo: np.ndarray, hi: np.ndarray,
               lo_src: np.ndarray, hi_src: np.ndarray):
        """(min, max) of each row's value over the box, the rows x n matrix (CSR), and per
        stored entry the box source binding the min and the max."""
        tr = block.transform
        d = self.d
        if tr == "factor":
            if d.fx_factor is not None:
                return None
            B = d.effective_loadings()[0]  # n x K
            x0 = d.factor_exposures(np.zeros(d.n), self.relative)
            S = block.S.tocoo()
            fac = S.col[np.argsort(S.row)]
            return self._linear_range(B[:, fac].T, x0[fac], lo, hi, lo_src, hi_src)
        if tr == "linear":
            return self._linear_range(block.S, block.const, lo, hi, lo_src, hi_src)
        if tr in ("abs", "pos", "neg", "abs_trade"):
            # Only upper bounds: the model meets a floor on these through both legs.
            if tr == "abs_trade":
                if self.flowing.any():
                    return None
                h0 = d.tradable.h0
                least = np.maximum(0.0, np.maximum(lo - h0, h0 - hi))
                from_lo = lo - h0 > 0
            elif tr == "abs":
                least = np.where((lo <= 0) & (hi >= 0), 0.0, np.minimum(np.abs(lo), np.abs(hi)))
                from_lo = lo > 0
            elif tr == "pos":
                least = np.maximum(lo, 0.0)
                from_lo = np.ones(d.n, bool)
            else:
                least = np.maximum(-hi, 0.0)
                from_lo = np.zeros(d.n, bool)
            S = block.S.tocsr()
            vmin = S @ least + block.const
            src = np.where(from_lo, lo_src, hi_src)[S.indices]
            return vmin, np.full(block.rows, np.inf), S, src, src
        return None

    @staticmethod
    def _linear_range(S, const, lo, hi, lo_src, hi_src):
        S = S.tocsr()
        c, j = S.data, S.indices
        with np.errstate(invalid="ignore"):
            low = np.where(c > 0, c * lo[j], c * hi[j])
            high = np.where(c > 0, c * hi[j], c * lo[j])
        row = np.repeat(np.arange(S.shape[0]), np.diff(S.indptr))
        vmin = np.asarray(const, float).copy()
        vmax = np.asarray(const, float).copy()
        np.add.at(vmin, row, np.where(c == 0, 0.0, low))
        np.add.at(vmax, row, np.where(c == 0, 0.0, high))
        return (vmin, vmax, S, np.where(c > 0, lo_src[j], hi_src[j]),
                np.where(c > 0, hi_src[j], lo_src[j]))

    # --- the current book ----------------------------------------------------------------

    def _broken_now(self, blocks: list[ConstraintBlock]) -> None:
        d = self.d
        ex = exposures(d, d.tradable.h0, self.relative, self.st.risk_terms)
        for block in blocks:
            if not block.rows:
                continue
            spec = block.spec
            with np.errstate(divide="ignore", invalid="ignore"):
                ok = block.scale != 0
                scale = np.where(ok, block.scale, 1.0)
                value = np.where(ok, block_values(block, ex) / scale, np.nan)
                lo = np.where(ok, block.lo / scale, np.nan)
                hi = np.where(ok, block.hi / scale, np.nan)
            size = np.maximum(1.0, np.fmax(np.abs(np.nan_to_num(lo)), np.abs(np.nan_to_num(hi))))
            over = np.nan_to_num(value - hi, nan=0.0)
            under = np.nan_to_num(lo - value, nan=0.0)
            excess = np.maximum(over, under)
            broken = np.flatnonzero(excess > 1e-6 * size)
            if not len(broken):
                continue
            r = int(broken[np.argmax(excess[broken] / size[broken])])
            side, bound = ("upper", hi[r]) if over[r] >= under[r] else ("lower", lo[r])
            label = str(block.labels[r])
            unit = spec.unit
            text = (f"{fmt(value[r], unit, self.unit_money)} now, {side} "
                    f"{fmt(bound, unit, self.unit_money)}")
            if block.rows == 1 and not label:
                message = f"the current book breaks it: {text}"
            elif len(broken) == 1:
                message = f"the current book breaks it for {label}: {text}"
            else:
                message = (f"the current book breaks it in {len(broken)} of {block.rows} rows;"
                           f" worst {label}: {text}")
            if spec.soft:
                self.add("info", "broken_now", spec.name,
                         message + "; as a soft constraint it costs its penalty until fixed",
                         "")
            else:
                self.add("warning", "broken_now", spec.name,
                         message + "; the solve must trade to restore it",
                         "widen the bound or make it soft if that trade is not wanted")
