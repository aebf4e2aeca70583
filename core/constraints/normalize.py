"""Turn ConstraintSpecs into ConstraintBlocks: rows in model units, with their labels.

A block's value, row by row, is `transform(S, h) + const` in model units (fractions of NAV,
or exposure / volatility units); dividing by `scale` gives the constraint's own unit. The
model builder turns blocks into solver rows; `evaluate` computes the same values from any
holdings (current, or optimal) for pre-solve checks and post-solve diagnostics, so what the
trader sees is recomputed from positions, never read back from solver slacks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import scipy.sparse as sp

from core.constraints.catalogue import KINDS
from core.constraints.spec import ConstraintSpec
from core.errors import ConfigError
from core.model.data import ProblemData

Transform = Literal["linear", "abs", "abs_trade", "pos", "neg", "factor", "concentration",
                    "risk", "factor_risk", "tracking", "margin", "cash"]


# Transforms whose every row is enforced (not only rows with a finite bound).
WHOLE_BLOCK = ("risk", "factor_risk", "tracking", "concentration", "margin")


@dataclass
class ConstraintBlock:
    spec: ConstraintSpec
    transform: Transform
    labels: np.ndarray
    S: sp.csr_matrix  # rows x n (tradable) or rows x K for factor transforms
    const: np.ndarray  # model units, from fixed instruments
    lo: np.ndarray  # model units; nan = unbounded
    hi: np.ndarray
    scale: np.ndarray  # model units per unit of the constraint
    notes: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(self.labels)


class ConstraintInputError(ConfigError):
    pass


def _err(spec: ConstraintSpec, problem: str, fix: str) -> ConstraintInputError:
    return ConstraintInputError(problem, field=f"constraints '{spec.name}'", fix=fix)


def _money_scale(spec: ConstraintSpec, data: ProblemData, sel: np.ndarray | None) -> np.ndarray:
    """Model units per unit of `spec.unit`, for the selected tradable instruments."""
    n = len(sel) if sel is not None else 1
    unit = spec.unit
    if unit == "%NAV":
        return np.full(n, 0.01)
    if unit == "notional":
        return np.full(n, 1.0 / data.nav)
    if unit in ("x", "exposure"):
        return np.ones(n)
    if unit in ("%vol", "%gross"):
        return np.full(n, 0.01)
    if sel is None:
        raise _err(spec, f"unit {unit} needs an instrument", "use %NAV or notional")
    if unit == "shares":
        return data.unit_value[sel] / data.nav
    if unit == "%ADV":
        return 0.01 * data.adv[sel] / data.nav
    if unit == "ADV-days":
        return data.adv[sel] / data.nav
    if unit == "%holding":
        return 0.01 * np.abs(data.tradable.h0[sel])
    raise _err(spec, f"unit {unit} is not supported here", "see core/constraints/catalogue.py")


def _bounds(spec: ConstraintSpec, scale: np.ndarray, const: np.ndarray | float = 0.0):
    lo = np.full(scale.shape, np.nan) if spec.lo is None else spec.lo * scale
    hi = np.full(scale.shape, np.nan) if spec.hi is None else spec.hi * scale
    return lo, hi


def _select_instruments(spec: ConstraintSpec, data: ProblemData) -> tuple[np.ndarray, list[str]]:
    t = data.tradable
    if spec.instrument == "*":
        return np.arange(t.n), []
    hits = np.flatnonzero(t.ids == spec.instrument)
    if len(hits):
        return hits, []
    if spec.instrument in set(data.fixed.ids.tolist()):
        return hits, [f"{spec.instrument} is not tradable; {spec.name} is checked, not imposed"]
    raise _err(spec, f"unknown or untradable instrument '{spec.instrument}'",
               "use an instrument_id from the universe, or '*' for every tradable name")


def _groups(spec: ConstraintSpec, data: ProblemData):
    """(labels, S over tradable, fixed members per group) for a group constraint."""
    col = spec.group_by
    t, f = data.tradable, data.fixed
    if col not in t.labels:
        raise _err(spec, f"cannot group by '{col}'",
                   f"use one of {', '.join(sorted(t.labels))}")
    t_lab, f_lab = t.labels[col], f.labels.get(col, np.array([], dtype=object))
    values = sorted(set(t_lab.tolist()) | set(f_lab.tolist()))
    if spec.group != "*":
        if spec.group not in values:
            raise _err(spec, f"no instrument has {col} = '{spec.group}'",
                       f"use one of {', '.join(values[:12])}{' ...' if len(values) > 12 else ''}")
        values = [spec.group]
    notes = []
    keep = []
    for v in values:
        if (t_lab == v).any():
            keep.append(v)
        else:
            notes.append(f"{col} = {v} has nothing tradable; {spec.name} skipped for it")
    index = {v: i for i, v in enumerate(keep)}
    rows = np.array([index.get(v, -1) for v in t_lab.tolist()], dtype=np.int64)
    mask = rows >= 0
    S = sp.csr_matrix((np.ones(mask.sum()), (rows[mask], np.flatnonzero(mask))),
                      shape=(len(keep), t.n))
    frows = np.array([index.get(v, -1) for v in f_lab.tolist()], dtype=np.int64)
    fmask = frows >= 0
    Sf = sp.csr_matrix((np.ones(fmask.sum()), (frows[fmask], np.flatnonzero(fmask))),
                       shape=(len(keep), f.n))
    return np.array(keep, dtype=object), S, Sf, notes


def _factors(spec: ConstraintSpec, data: ProblemData) -> np.ndarray:
    names = np.array(data.factor_names, dtype=object)
    sel = spec.factor
    if sel == "*":
        return np.arange(len(names))
    if sel.startswith("kind:"):
        kind = sel[5:]
        idx = np.flatnonzero(np.array(data.factor_kinds) == kind)
        if not len(idx):
            raise _err(spec, f"no factor of kind '{kind}'",
                       "use style, industry, country, currency or market")
        return idx
    idx = np.flatnonzero(names == sel)
    if not len(idx):
        raise _err(spec, f"unknown factor '{sel}'",
                   f"use a factor name (e.g. {', '.join(names[:5])}), 'kind:style' or '*'")
    return idx


def fixed_exposures(data: ProblemData, relative: bool) -> np.ndarray:
    """Factor exposures of the fixed instruments, less the benchmark's when active:
    the constant part of x = B_T' h + this."""
    return data.factor_exposures(np.zeros(data.n), relative)


def normalize(spec: ConstraintSpec, data: ProblemData, relative: bool) -> ConstraintBlock:
    kind = spec.kind
    t, f = data.tradable, data.fixed
    n = t.n
    scope = KINDS[kind].scope
    notes: list[str] = []

    if scope == "instrument":
        sel, notes = _select_instruments(spec, data)
        r = len(sel)
        S = sp.csr_matrix((np.ones(r), (np.arange(r), sel)), shape=(r, n))
        labels = t.ids[sel]
        const = np.zeros(r)
        if kind in ("no_new_longs", "no_new_shorts", "no_trade", "no_buy"):
            h0 = t.h0[sel]
            scale = np.full(r, 0.01)
            lo = np.full(r, np.nan)
            hi = np.full(r, np.nan)
            if kind in ("no_new_longs", "no_trade", "no_buy"):
                hi = np.maximum(h0, 0.0) if kind == "no_new_longs" else h0.copy()
            if kind in ("no_new_shorts", "no_trade"):
                lo = np.minimum(h0, 0.0) if kind == "no_new_shorts" else h0.copy()
            return ConstraintBlock(spec, "linear", labels, S, const, lo, hi, scale, notes)
        scale = _money_scale(spec, data, sel)
        lo, hi = _bounds(spec, scale)
        transform: Transform = {"holding": "linear", "max_trade": "abs_trade",
                                "max_holding_adv": "abs", "max_margin": "abs",
                                "max_concentration": "concentration"}[kind]
        if kind == "max_margin":
            S = sp.csr_matrix((t.margin_rate[sel], (np.arange(r), sel)), shape=(r, n))
        return ConstraintBlock(spec, transform, labels, S, const, lo, hi, scale, notes)

    if kind == "factor_exposure":
        idx = _factors(spec, data)
        r = len(idx)
        S = sp.csr_matrix((np.ones(r), (np.arange(r), idx)), shape=(r, data.k))
        const = np.zeros(r)  # the model's x already holds the fixed and benchmark parts
        scale = np.ones(r)
        lo, hi = _bounds(spec, scale)
        labels = np.array(data.factor_names, dtype=object)[idx]
        return ConstraintBlock(spec, "factor", labels, S, const, lo, hi, scale, notes)

    if kind == "currency_cash":
        cur = data.currencies
        if cur is None:
            raise _err(spec, "no cash or currencies in this problem", "load a cash table")
        codes = list(cur.codes)
        if spec.group != "*" and spec.group not in codes:
            raise _err(spec, f"no cash or instrument in currency '{spec.group}'",
                       f"use one of {', '.join(codes)}")
        idx = np.arange(len(codes)) if spec.group == "*" else np.array([codes.index(spec.group)])
        r = len(idx)
        S = sp.csr_matrix((np.ones(r), (np.arange(r), idx)), shape=(r, len(codes)))
        scale = _money_scale(spec, data, None)[0] * np.ones(r)
        lo, hi = _bounds(spec, scale)
        return ConstraintBlock(spec, "cash", cur.codes[idx], S, np.zeros(r), lo, hi, scale)

    if scope == "group":
        labels, S, Sf, notes = _groups(spec, data)
        r = len(labels)
        scale = _money_scale(spec, data, None)[0] * np.ones(r)
        lo, hi = _bounds(spec, scale)
        if kind == "group_net":
            if data.lt.active:
                # Exposure by group counts a basket's constituents, not the basket.
                S_all = sp.csr_matrix(sp.hstack([S, Sf]) @ data.lt.E)
                S, Sf = S_all[:, : t.n], S_all[:, t.n:]
            return ConstraintBlock(spec, "linear", labels, sp.csr_matrix(S), Sf @ f.h0, lo, hi,
                                   scale, notes)
        if kind == "group_gross":
            return ConstraintBlock(spec, "abs", labels, S, Sf @ np.abs(f.h0), lo, hi, scale,
                                   notes)
        if kind == "group_turnover":
            return ConstraintBlock(spec, "abs_trade", labels, S, np.zeros(r), lo, hi, scale,
                                   notes)
        if kind == "group_margin":
            Sm = S @ sp.diags(t.margin_rate)
            return ConstraintBlock(spec, "abs", labels, sp.csr_matrix(Sm),
                                   Sf @ (f.margin_rate * np.abs(f.h0)), lo, hi, scale, notes)
        raise AssertionError(kind)

    # Portfolio: one row.
    ones = sp.csr_matrix(np.ones((1, n)))
    scale = _money_scale(spec, data, None)
    lo, hi = _bounds(spec, scale)
    label = np.array([""], dtype=object)
    nonfut = ~t.is_future
    table = {
        "net_exposure": ("linear", ones, f.h0.sum()),
        "gross_exposure": ("abs", ones, np.abs(f.h0).sum()),
        "leverage": ("abs", ones, np.abs(f.h0).sum()),
        "long_market_value": ("pos", ones, np.maximum(f.h0, 0).sum()),
        "short_market_value": ("neg", ones, np.maximum(-f.h0, 0).sum()),
        "cash": ("linear", sp.csr_matrix(-nonfut.astype(float)[None, :]),
                 1.0 - f.h0[~f.is_future].sum()),
        "turnover": ("abs_trade", ones, 0.0),
        "beta_exposure": ("linear", sp.csr_matrix(t.beta[None, :]), (f.beta * f.h0).sum()),
        "margin_budget": ("abs", sp.csr_matrix(t.margin_rate[None, :]),
                          (f.margin_rate * np.abs(f.h0)).sum()),
        "total_risk": ("risk", ones, 0.0),
        "factor_risk": ("factor_risk", ones, 0.0),
        "tracking_error": ("tracking", ones, 0.0),
    }
    transform, S, const = table[kind]
    if kind == "margin_budget" and data.hedges is not None:
        transform = "margin"  # with hedge credit: see core/model/margin.py
    return ConstraintBlock(spec, transform, label, S, np.array([float(const)]), lo, hi, scale)


def normalize_all(specs: list[ConstraintSpec], data: ProblemData, relative: bool,
                  automatic: bool = True) -> list[ConstraintBlock]:
    """Normalize the enabled specs, plus the restrictions' no-new-longs/shorts."""
    blocks = []
    names = set()
    for spec in specs:
        if not spec.enabled:
            continue
        if spec.name in names:
            raise _err(spec, f"two constraints are named '{spec.name}'",
                       "give each constraint a unique name")
        names.add(spec.name)
        block = normalize(spec, data, relative)
        if block.rows or block.notes:
            blocks.append(block)
    if automatic:
        none = np.zeros(data.n, bool)
        for name, kind, flags in (
                ("restriction:no_new_longs", "no_new_longs", data.no_new_longs),
                ("restriction:no_new_shorts", "no_new_shorts", data.no_new_shorts),
                ("restriction:no_buy", "no_buy", data.extra.get("no_buy", none)),
                ("discrete:no_trade", "no_trade", data.extra.get("discrete_frozen", none)),
                ("discrete:closed", "holding", data.extra.get("discrete_closed", none))):
            if flags.any():
                spec = (ConstraintSpec(kind=kind, name=name) if kind != "holding" else
                        ConstraintSpec(kind=kind, name=name, lower=0.0, upper=0.0))
                block = normalize(spec, data, relative)
                keep = np.flatnonzero(flags)
                blocks.append(ConstraintBlock(
                    spec, block.transform, block.labels[keep], block.S[keep], block.const[keep],
                    block.lo[keep], block.hi[keep], block.scale[keep]))
    return blocks


# --- evaluation from holdings --------------------------------------------------------------

@dataclass
class Exposures:
    """Everything a constraint value can depend on, computed once from holdings h."""

    data: ProblemData
    h: np.ndarray
    fx: np.ndarray | None
    trade: np.ndarray
    gross: float
    x_run: np.ndarray  # factor exposures on the run's e (active if relative)
    risk: float  # sqrt(V) on e
    factor_risk: float
    tracking: float  # sqrt(V) on h - b


def exposures(data: ProblemData, h: np.ndarray, relative: bool, risk_terms: str,
              flows: np.ndarray | None = None, fx: np.ndarray | None = None) -> Exposures:
    def total(fv: float, sv: float) -> float:
        return {"full": fv + sv, "factor": fv, "idio": sv}[risk_terms]

    def variance(active: bool) -> tuple[np.ndarray, float, float]:
        x = data.factor_exposures(h, active, flows, fx)
        return x, float(x @ data.factor_cov @ x), data.specific_variance(h, active)

    x_run, fv, sv = variance(relative)
    _, fva, sva = variance(True)
    f = data.fixed
    return Exposures(
        data=data, h=h, trade=data.market_trade(h, flows), fx=fx, gross=float(np.abs(h).sum() + np.abs(f.h0).sum()),
        x_run=x_run, risk=float(np.sqrt(max(total(fv, sv), 0.0))),
        factor_risk=float(np.sqrt(max(fv, 0.0))),
        tracking=float(np.sqrt(max(total(fva, sva), 0.0))))


def block_values(block: ConstraintBlock, ex: Exposures) -> np.ndarray:
    """Row values in model units."""
    tr = block.transform
    if tr == "linear":
        return block.S @ ex.h + block.const
    if tr == "abs":
        return block.S @ np.abs(ex.h) + block.const
    if tr == "abs_trade":
        return block.S @ np.abs(ex.trade) + block.const
    if tr == "pos":
        return block.S @ np.maximum(ex.h, 0) + block.const
    if tr == "neg":
        return block.S @ np.maximum(-ex.h, 0) + block.const
    if tr == "factor":
        return block.S @ ex.x_run
    if tr == "concentration":
        # In fractions of gross, so that scale (0.01 per %gross) converts it.
        return (block.S @ np.abs(ex.h)) / ex.gross if ex.gross > 0 else np.zeros(block.rows)
    if tr == "risk":
        return np.array([ex.risk])
    if tr == "factor_risk":
        return np.array([ex.factor_risk])
    if tr == "tracking":
        return np.array([ex.tracking])
    if tr == "margin":
        return np.array([ex.data.margin(ex.h)])
    if tr == "cash":
        cash = ex.data.currencies.cash_after(ex.trade, ex.fx)
        return block.S @ cash
    raise AssertionError(tr)
