"""spo's optimization problem stated again, independently, in CVXPY.

Written from docs/formulation.md (the specification) and the data contracts
(core.model.data.ProblemData, core.constraints, core.settings) only -- not from spo's own
model code -- so the tests can check that spo's conic model reaches the same optimum, and
the benchmark can time a "CVXPY path" against spo's own.

Units: every position, trade and money bound is a fraction of NAV (X). The numbers in
ProblemData are final: cost switches and `costs.scale` are already applied by
`core.model.data.problem_data`, alpha is already over the horizon (and zero unless
`use_alpha` and the utility mode), so they are used here as they are.

Besides the CVXPY model this module has a plain-numpy evaluator (`constraint_rows`,
`objective_value`) that computes, for a given post-trade h, every constraint row's value in
its own unit and the objective, used by the tests to check spo's diagnostics.

Resolutions of points the formulation leaves open:
- A soft constraint gets one violation variable per row (per instrument / group / factor),
  shared by its lower and upper side; P sums penalty x 1e-4 x v over all rows. A row whose
  unit is worth nothing (%holding of a name not held) stays hard.
- A soft max_concentration (unit %gross) measures its violation in percent of NAV
  (|h_i| <= hi/100 G + v/100): a violation in percent of the variable G is not convex.
- no_new_longs / no_new_shorts / no_trade are bounds in %NAV (their unit): h_i <= max(h0,0),
  h_i >= min(h0,0), h_i = h0; soft ones pay per %NAV of violation. no_buy (in the
  catalogue, not in formulation.md: "may sell, not buy") is h_i <= h0_i.
- total_risk and tracking_error use V as `risk_terms` defines it; factor_risk is FV.
- target_exposures sums over the factors named in `factor_targets` only; a weight for a
  factor without a target is ignored; unknown factor names raise ValueError.
- Names with an impact curve pay the curve instead of the 3/2-power term.
- Upper bounds alone on gross / leverage / LMV / SMV are stated on h (sum |h|, sum h+,
  sum h-): the same feasible set as through minimal legs. The legs l, s (h = l - s) are
  built only for lower bounds and max_concentration, where the formulation relaxes.
- Carry (financing, borrow) is on max(h, 0), max(-h, 0) as written, never on the legs, so
  overlapping legs cost nothing: see `legs_priced` for the variant spo implements.

Baskets, margin, flows and currencies (formulation.md's section of that name; ProblemData's
lookthrough / hedges / flows / currencies are used as data, like the loadings):
- Look-through (settings.look_through and an active LookThrough): e = E h_all over
  h_all = [h; h0_F] (minus [b_T; b_F] when relative); x = B_all' e; SV = sum over
  non-mapped rows of idio_i e_i^2 + sum over mapped baskets of residual_b h_all_b^2;
  group_net sums the group's rows of E h_all (no benchmark, as without look-through).
- margin_budget with hedge credit (margin_hedge_credit and data.hedges): a variable p with
  sum rate_i |h_all_i - (V p)_i| + sum hedge_rate_k |p_k| <= budget and
  |p_k| <= |h_all_b(k)|. That cap is not convex in a tradable h_b, so each model fixes the
  sign of every tradable hedged basket (sigma h_b >= 0, |p_k| <= sigma h_b) and
  solve_reference takes the best of all 2^n sign patterns (exact; n <=
  MAX_HEDGE_SIGN_ENUMERATION, beyond that the sign of h0_b is used: a restriction).
- Flows (data.flows): k with lower <= k <= upper; the market trade m = h - h0 - V k is what
  costs, turnover, max_trade and group_turnover see; flows cost cost_j |k_j| and gain
  gain_j k_j in the objective (every mode; the alpha reduction is already in data.alpha).
- currency_cash (group = a currency or '*'): c_j = cash0_j - sum over settling tradable i
  of currency j of m_i + f_j, sum f = 0, f costs fx_cost_bps x 1e-4 |f_j| off the
  numeraire; f exists only when some currency_cash constraint does. Units: %NAV, notional.
- Expiring futures (data.extra["no_buy"]): h_i <= h0_i.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from core.constraints.catalogue import KINDS
from core.constraints.spec import ConstraintSpec
from core.model.data import ProblemData
from core.settings import OptimizationSettings

PENALTY_SCALE = 1e-4  # penalty is in bp of NAV per unit of violation
# |m|^1.5 as a 3-d power cone ("power") or through cvxpy's second-order-cone tower ("soc";
# exact for the rational power 3/2). Clarabel is more accurate with the power cone on small
# problems (e.g. when the optimum does not trade, where the tower is degenerate) but stalls
# on 15,000 of them, where the tower solves: "auto" picks by size.
IMPACT_CONE_AUTO_MAX_N = 5000

# Bounds of these kinds are applied to sums over the legs l, s (h = l - s).
LEG_KINDS = ("gross_exposure", "leverage", "long_market_value", "short_market_value",
             "max_concentration")


@dataclass
class ReferenceResult:
    status: str
    objective: float  # maximize sense: utility including soft penalties
    h: np.ndarray  # post-trade weights of the tradable instruments (data.tradable.ids)
    solve_s: float
    build_s: float
    extra: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------
# Selections and units (shared by the CVXPY model and the numpy evaluator)


def _ids(arr) -> list[str]:
    return [str(v) for v in arr]


def instrument_selection(data: ProblemData, spec: ConstraintSpec) -> tuple[np.ndarray,
                                                                            np.ndarray]:
    """(indices into tradable, indices into fixed) that the instrument constraint names."""
    if spec.instrument == "*":
        return np.arange(data.tradable.n), np.zeros(0, dtype=int)
    t = _ids(data.tradable.ids)
    f = _ids(data.fixed.ids)
    if spec.instrument in t:
        return np.array([t.index(spec.instrument)]), np.zeros(0, dtype=int)
    if spec.instrument in f:
        return np.zeros(0, dtype=int), np.array([f.index(spec.instrument)])
    raise ValueError(f"{spec.name}: unknown instrument '{spec.instrument}'")


def _labels(side, col: str) -> np.ndarray:
    lab = side.labels.get(col)
    if lab is None:
        return np.array([None] * side.n, dtype=object)
    return np.asarray([str(v) for v in lab], dtype=object)


def group_selection(data: ProblemData, spec: ConstraintSpec
                    ) -> tuple[list[tuple[str, np.ndarray, np.ndarray]], list[str]]:
    """([(group value, tradable indices, fixed indices)], skipped group values)."""
    col = spec.group_by
    if col not in data.tradable.labels and col not in data.fixed.labels:
        raise ValueError(f"{spec.name}: unknown group column '{col}'")
    lt, lf = _labels(data.tradable, col), _labels(data.fixed, col)
    values: list[str] = []
    for v in list(lt) + list(lf):
        if v is not None and v not in values:
            values.append(v)
    if spec.group != "*":
        if spec.group not in values:
            raise ValueError(f"{spec.name}: unknown group '{spec.group}' in '{col}'")
        values = [spec.group]
    groups, skipped = [], []
    for v in values:
        it = np.flatnonzero(lt == v) if len(lt) else np.zeros(0, dtype=int)
        jf = np.flatnonzero(lf == v) if len(lf) else np.zeros(0, dtype=int)
        if len(it) == 0:
            skipped.append(v)
            continue
        groups.append((v, it, jf))
    return groups, skipped


def factor_selection(data: ProblemData, sel: str, what: str = "") -> np.ndarray:
    names = list(data.factor_names)
    if sel == "*":
        return np.arange(len(names))
    if sel.startswith("kind:"):
        kind = sel[5:]
        idx = np.flatnonzero(np.asarray(data.factor_kinds, dtype=object) == kind)
        if len(idx) == 0:
            raise ValueError(f"{what}: no factor of kind '{kind}'")
        return idx
    if sel not in names:
        raise ValueError(f"{what}: unknown factor '{sel}'")
    return np.array([names.index(sel)])


def instrument_scale(data: ProblemData, unit: str, idx: np.ndarray) -> np.ndarray:
    """Fraction of NAV per one unit of the bound, per selected tradable instrument."""
    x = data.nav
    if unit == "%NAV":
        return np.full(len(idx), 0.01)
    if unit == "notional":
        return np.full(len(idx), 1.0 / x)
    if unit == "shares":
        return data.unit_value[idx] / x
    if unit == "%ADV":
        return data.adv[idx] / 100.0 / x
    if unit == "ADV-days":
        return data.adv[idx] / x
    if unit == "%holding":
        return np.abs(data.tradable.h0[idx]) / 100.0
    raise ValueError(f"unit '{unit}' is not an instrument unit")


def scalar_scale(data: ProblemData, unit: str) -> float:
    """Fraction of NAV (or exposure / volatility) per one unit, for group and portfolio."""
    return {"%NAV": 0.01, "notional": 1.0 / data.nav, "x": 1.0, "exposure": 1.0,
            "%vol": 0.01}[unit]


def _check_units(spec: ConstraintSpec) -> None:
    kind = KINDS.get(spec.kind)
    if kind is None:
        raise ValueError(f"unknown constraint kind '{spec.kind}'")
    if spec.unit not in kind.units:
        raise ValueError(f"{spec.kind} does not take unit '{spec.unit}'")


NO_BOUNDS_KINDS = ("no_new_longs", "no_new_shorts", "no_trade", "no_buy")


def flag_bounds(kind: str, h0):
    """(lower, upper) in %NAV on h_i that a flag kind stands for (None: no bound).

    no_new_longs: h <= max(h0, 0); no_new_shorts: h >= min(h0, 0); no_trade: h = h0;
    no_buy ("may sell, not buy", not in formulation.md): h <= h0.
    """
    h0 = np.asarray(h0, dtype=float) * 100
    if kind == "no_new_longs":
        return None, np.maximum(h0, 0.0)
    if kind == "no_new_shorts":
        return np.minimum(h0, 0.0), None
    if kind == "no_trade":
        return h0, h0
    if kind == "no_buy":
        return None, h0
    raise ValueError(f"{kind} is not a flag kind")


def _sqrt_cov(cov: np.ndarray) -> np.ndarray:
    """R with R'R = cov (K x K), from the eigen-decomposition (works when singular)."""
    cov = 0.5 * (np.asarray(cov, dtype=float) + np.asarray(cov, dtype=float).T)
    w, q = np.linalg.eigh(cov)
    if w.min() < -1e-10 * max(1.0, abs(w).max()):
        raise ValueError("factor covariance is not positive semidefinite")
    return np.sqrt(np.clip(w, 0.0, None))[:, None] * q.T


# --------------------------------------------------------------------------------------
# The CVXPY model


class _Builder:
    def __init__(self, data: ProblemData, settings: OptimizationSettings,
                 legs_priced: bool = False, impact_cone: str = "auto",
                 hedge_signs: dict | None = None):
        if impact_cone not in ("auto", "power", "soc"):
            raise ValueError(f"impact_cone must be auto, power or soc, not {impact_cone!r}")
        self.data, self.settings = data, settings
        self.legs_priced = legs_priced
        self.impact_cone = impact_cone
        t, f = data.tradable, data.fixed
        self.n = t.n
        self.rel = settings.relative_to_benchmark
        self.h = cp.Variable(self.n, name="h")
        # Baskets, margin, flows and currencies (formulation.md, last data section).
        self.lt = data.lookthrough if (settings.look_through and data.lookthrough is not None
                                       and data.lookthrough.active) else None
        self.hedges = data.hedges if (settings.margin_hedge_credit
                                      and data.hedges is not None
                                      and data.hedges.size) else None
        self.hedge_signs = hedge_signs or {}
        self.flows = data.flows if data.flows is not None and data.flows.size else None
        self.k = None
        if self.flows is not None:
            # Flows move positions in kind: the market trade is m = h - h0 - V k.
            fl = self.flows
            self.k = cp.Variable(fl.size, name="k_flow")
            self.m = self.h - t.h0 - sp.csr_matrix(fl.V) @ self.k
        else:
            self.m = self.h - t.h0
        self._fx = None
        self.R = _sqrt_cov(data.factor_cov)
        self.BtT = sp.csr_matrix(t.loadings).T.tocsr()  # K x n
        self.BfT = sp.csr_matrix(f.loadings).T.tocsr() if f.n else None
        self.cons: list = []
        self.penalty_terms: list = []
        if self.flows is not None:
            lo, hi = np.asarray(self.flows.lower, float), np.asarray(self.flows.upper, float)
            j = np.flatnonzero(np.isfinite(lo))
            if len(j):
                self.cons.append(self.k[j] >= lo[j])
            j = np.flatnonzero(np.isfinite(hi))
            if len(j):
                self.cons.append(self.k[j] <= hi[j])
        self._legs = None
        self._leg_vars = None
        self._gross_var = None
        self._abs_m = None
        self._abs_h = None
        self._risk: dict = {}

    # -- building blocks
    @property
    def abs_m(self):
        if self._abs_m is None:
            self._abs_m = cp.abs(self.m)
        return self._abs_m

    @property
    def abs_h(self):
        if self._abs_h is None:
            if self.legs_priced:  # variant: |h_i| is l_i + s_i wherever it appears
                self.legs()
                lv, sv = self._leg_vars
                self._abs_h = lv + sv
            else:
                self._abs_h = cp.abs(self.h)
        return self._abs_h

    def legs(self):
        if self._legs is None:
            l = cp.Variable(self.n, nonneg=True, name="long_leg")
            s = cp.Variable(self.n, nonneg=True, name="short_leg")
            self.cons.append(self.h == l - s)
            self._leg_vars = (l, s)
            h0f = self.data.fixed.h0
            lf = float(np.maximum(h0f, 0).sum())
            sf = float(np.maximum(-h0f, 0).sum())
            self._legs = (cp.sum(l) + lf, cp.sum(s) + sf)
        return self._legs

    def gross(self):
        lmv, smv = self.legs()
        return lmv + smv

    def gross_var(self):
        if self._gross_var is None:
            self._gross_var = cp.Variable(name="gross")
            self.cons.append(self._gross_var == self.gross())
        return self._gross_var

    def h_all(self, relative: bool = False):
        """[h; h0_fixed] (minus [b_T; b_F] when relative): positions of the combined index."""
        t, f = self.data.tradable, self.data.fixed
        ha = cp.hstack([self.h, cp.Constant(f.h0)]) if f.n else self.h
        if relative:
            ha = ha - np.concatenate([t.bench, f.bench])
        return ha

    def risk(self, relative: bool):
        """(e_T expr, x expr, fixed idio variance constant) on h - b or h.

        With look-through: (specific-risk vector g with SV = ||g||^2, x, 0), where
        e = E h_all, x = B_all' e, g = [sqrt(idio_i) e_i over non-mapped i;
        sqrt(residual_b) h_all_b over mapped baskets b].
        """
        key = bool(relative)
        if key not in self._risk and self.lt is not None:
            t, f, lt = self.data.tradable, self.data.fixed, self.lt
            ha = self.h_all(relative)
            e = sp.csr_matrix(lt.E) @ ha
            B_all = sp.vstack([sp.csr_matrix(t.loadings), sp.csr_matrix(f.loadings)]
                              ).tocsr() if f.n else sp.csr_matrix(t.loadings)
            x = B_all.T.tocsr() @ e
            idio = np.concatenate([t.idio, f.idio])
            mapped = np.asarray(lt.mapped, bool)
            own = np.flatnonzero(~mapped & (idio > 0))
            mb = np.flatnonzero(mapped & (np.asarray(lt.residual, float) > 0))
            parts = [cp.multiply(np.sqrt(idio[own]), e[own])]
            if len(mb):
                parts.append(cp.multiply(np.sqrt(np.asarray(lt.residual, float)[mb]), ha[mb]))
            self._risk[key] = ("lt", cp.hstack(parts), x)
        if key not in self._risk:
            t, f = self.data.tradable, self.data.fixed
            e = self.h - t.bench if relative else self.h
            ef = (f.h0 - f.bench) if relative else f.h0
            x = self.BtT @ e
            if self.BfT is not None:
                x = x + self.BfT @ ef
            sv_f = float(np.sum(f.idio * ef ** 2)) if f.n else 0.0
            self._risk[key] = (e, x, sv_f)
        r = self._risk[key]
        if isinstance(r[0], str):
            return None, r[2], 0.0
        return r

    def specific(self, relative: bool):
        """(vector g, constant c) with SV = ||g||^2 + c."""
        self.risk(relative)
        r = self._risk[bool(relative)]
        if isinstance(r[0], str):
            return r[1], 0.0
        e, _, sv_f = r
        return cp.multiply(np.sqrt(self.data.tradable.idio), e), sv_f

    def variance(self, relative: bool, terms: str):
        _, x, _ = self.risk(relative)
        fv = cp.sum_squares(self.R @ x)
        g, sv_f = self.specific(relative)
        sv = cp.sum_squares(g) + sv_f
        return {"full": fv + sv, "factor": fv, "idio": sv}[terms]

    def vol(self, relative: bool, terms: str):
        """sqrt of the variance as a norm (second-order cone)."""
        _, x, _ = self.risk(relative)
        parts = []
        if terms in ("full", "factor"):
            parts.append(self.R @ x)
        if terms in ("full", "idio"):
            g, sv_f = self.specific(relative)
            parts.append(g)
            if sv_f > 0:
                parts.append(cp.Constant(np.array([np.sqrt(sv_f)])))
        return cp.norm(cp.hstack(parts), 2)

    def costs(self):
        d = self.data
        terms = []
        if np.any(d.linear_cost != 0):
            terms.append(d.linear_cost @ self.abs_m)
        curve_idx = {c.index for c in d.curves}
        k = d.impact.astype(float).copy()
        if curve_idx:
            k[list(curve_idx)] = 0.0
        ii = np.flatnonzero(k != 0)
        if len(ii):
            approx = self.impact_cone == "soc" or (
                self.impact_cone == "auto" and self.n > IMPACT_CONE_AUTO_MAX_N)
            terms.append(k[ii] @ cp.power(cp.abs(self.m[ii]), 1.5, approx=approx))
        if d.curves:
            idx = np.array([c.index for c in d.curves])
            nseg = max(len(c.slopes) for c in d.curves)
            A = np.zeros((len(d.curves), nseg))
            B = np.zeros((len(d.curves), nseg))
            for r, c in enumerate(d.curves):
                a, b = np.asarray(c.intercepts, float), np.asarray(c.slopes, float)
                if np.any(b < 0):
                    raise ValueError(f"impact curve of instrument {idx[r]}: negative slope")
                A[r, :len(a)], B[r, :len(b)] = a, b
                A[r, len(a):], B[r, len(b):] = a[-1], b[-1]  # repeat the last segment
            u = cp.abs(self.m[idx])
            segs = [A[:, j] + cp.multiply(B[:, j], u) for j in range(nseg)]
            terms.append(cp.sum(segs[0] if nseg == 1 else cp.maximum(*segs)))
        if self.flows is not None and np.any(self.flows.cost != 0):
            terms.append(np.asarray(self.flows.cost, float) @ cp.abs(self.k))
        if self._fx is not None:
            fxc, f = self._fx
            if np.any(fxc != 0):
                terms.append(fxc @ cp.abs(f))
        hs = d.horizon_scale
        if self.legs_priced and self._legs is not None:
            # Variant (not the formulation): financing and borrow charged on the legs.
            lv, sv = self._leg_vars
            terms.append(hs * (d.financing @ lv + d.borrow @ sv))
        else:
            if np.any(d.financing != 0):
                terms.append(hs * (d.financing @ cp.pos(self.h)))
            if np.any(d.borrow != 0):
                terms.append(hs * (d.borrow @ cp.neg(self.h)))
        if np.any(d.dividend != 0):
            terms.append(-hs * (d.dividend @ self.h))
        return cp.sum(cp.hstack(terms)) if terms else cp.Constant(0.0)

    def objective(self):
        s, d = self.settings, self.data
        hs = d.horizon_scale
        if s.objective == "utility":
            core = d.alpha @ self.h
            if s.risk_aversion != 0:
                core = core - s.risk_aversion * hs * self.variance(self.rel, s.risk_terms)
        elif s.objective == "min_total_risk":
            core = -hs * self.variance(self.rel, s.risk_terms)
        elif s.objective == "min_factor_risk":
            core = -hs * self.variance(self.rel, "factor")
        elif s.objective == "target_exposures":
            _, x, _ = self.risk(self.rel)
            unknown = [n for n in list(s.factor_targets) + list(s.factor_target_weights)
                       if n not in d.factor_names]
            if unknown:
                raise ValueError(f"factor_targets: unknown factor(s) {unknown}")
            names = list(s.factor_targets)
            if names:
                ks = np.array([d.factor_names.index(n) for n in names])
                tgt = np.array([s.factor_targets[n] for n in names], dtype=float)
                w = np.array([s.factor_target_weights.get(n, 1.0) for n in names], float)
                if np.any(w < 0):
                    raise ValueError("factor_target_weights must be >= 0")
                core = -cp.sum_squares(cp.multiply(np.sqrt(w), x[ks] - tgt))
            else:
                core = cp.Constant(0.0)
        else:
            raise ValueError(f"unknown objective mode '{s.objective}'")
        if self.flows is not None and np.any(self.flows.gain != 0):
            # a created ETF unit gains its premium (formulation.md, flows)
            core = core + np.asarray(self.flows.gain, float) @ self.k
        obj = core - self.costs()
        if self.penalty_terms:
            obj = obj - cp.sum(cp.hstack(self.penalty_terms))
        return obj

    # -- constraints
    def bound(self, spec: ConstraintSpec, g, scale, lo, hi, rows: int):
        """lo*scale <= g <= hi*scale (per row), softened by v >= 0 in the unit."""
        scale = np.broadcast_to(np.asarray(scale, dtype=float), (rows,))
        if spec.soft and np.any(scale > 0):
            # w = scale x v is the violation in NAV fractions (well scaled for the solver
            # whatever the unit); it costs penalty x 1e-4 x v = penalty x 1e-4 x w / scale.
            # A row whose unit is worth nothing (%holding of a name not held) cannot be
            # relaxed by any v: it stays hard.
            pos = scale > 0
            w = cp.Variable(rows, nonneg=True, name=f"viol[{spec.name}]")
            if not np.all(pos):
                self.cons.append(w[np.flatnonzero(~pos)] == 0)
            if lo is not None:
                self.cons.append(g >= lo * scale - w)
            if hi is not None:
                self.cons.append(g <= hi * scale + w)
            cost = np.where(pos, spec.penalty * PENALTY_SCALE / np.where(pos, scale, 1.0), 0.0)
            self.penalty_terms.append(cost @ w)
        else:
            if lo is not None and hi is not None and np.all(np.asarray(lo) == np.asarray(hi)):
                self.cons.append(g == lo * scale)
                return
            if lo is not None:
                self.cons.append(g >= lo * scale)
            if hi is not None:
                self.cons.append(g <= hi * scale)

    def add(self, spec: ConstraintSpec) -> None:
        if not spec.enabled:
            return
        _check_units(spec)
        scope = KINDS[spec.kind].scope
        if scope == "instrument":
            self._instrument(spec)
        elif spec.kind == "factor_exposure":
            _, x, _ = self.risk(self.rel)
            ks = factor_selection(self.data, spec.factor, spec.name)
            self.bound(spec, x[ks], 1.0, spec.lo, spec.hi, len(ks))
        elif scope == "group":
            self._group(spec)
        else:
            self._portfolio(spec)

    def _instrument(self, spec: ConstraintSpec) -> None:
        d = self.data
        it, _ = instrument_selection(d, spec)
        if len(it) == 0:  # a fixed instrument: checked, not imposed
            return
        h, h0, kind = self.h[it], d.tradable.h0[it], spec.kind
        if kind in NO_BOUNDS_KINDS:
            # bounds in %NAV (the kind's unit), so a soft one pays per %NAV of violation
            dn, up = flag_bounds(kind, h0)
            self.bound(spec, h, 0.01, dn, up, len(it))
            return
        lo, hi = spec.lo, spec.hi
        if kind == "max_concentration":
            g = self.gross_var()  # a scalar variable: keeps each row sparse
            size = cp.abs(h)
            if spec.soft:
                v = cp.Variable(len(it), nonneg=True, name=f"viol[{spec.name}]")
                self.cons.append(size <= hi / 100.0 * g + v / 100.0)
                self.penalty_terms.append(spec.penalty * PENALTY_SCALE * cp.sum(v))
            else:
                self.cons.append(size <= hi / 100.0 * g)
            return
        scale = instrument_scale(d, spec.unit, it)
        if kind == "holding":
            self.bound(spec, h, scale, lo, hi, len(it))
        elif kind == "max_trade":
            self.bound(spec, cp.abs(self.m[it]), scale, None, hi, len(it))
        elif kind == "max_holding_adv":
            self.bound(spec, self.abs_h[it], scale, None, hi, len(it))
        elif kind == "max_margin":
            self.bound(spec, cp.multiply(d.tradable.margin_rate[it], self.abs_h[it]), scale,
                       None, hi, len(it))
        else:
            raise ValueError(f"unhandled instrument kind {kind}")

    def fx_trades(self):
        """f per currency (sum f = 0), costing fx_cost_bps x 1e-4 x |f_j| off the numeraire."""
        if self._fx is None:
            cur = self.data.currencies
            f = cp.Variable(cur.size, name="fx")
            self.cons.append(cp.sum(f) == 0)
            rate = self.settings.fx_cost_bps * 1e-4
            fxc = np.where(np.asarray(cur.codes, dtype=object) == cur.numeraire, 0.0, rate)
            self._fx = (fxc, f)
        return self._fx[1]

    def cash_after(self):
        """c_j = cash0_j - sum over settling i in j of m_i + f_j (NAV fractions)."""
        cur = self.data.currencies
        f = self.fx_trades()
        st = np.flatnonzero(np.asarray(cur.settles, bool))
        A = sp.csr_matrix((np.ones(len(st)), (np.asarray(cur.index)[st], st)),
                          shape=(cur.size, self.n))
        return np.asarray(cur.cash0, float) - A @ self.m + f

    def _currency_cash(self, spec: ConstraintSpec) -> None:
        cur = self.data.currencies
        if cur is None or cur.size == 0:
            raise ValueError(f"{spec.name}: no currencies in the problem")
        codes = [str(c) for c in cur.codes]
        if spec.group == "*":
            rows = np.arange(len(codes))
        elif spec.group in codes:
            rows = np.array([codes.index(spec.group)])
        else:
            raise ValueError(f"{spec.name}: unknown currency '{spec.group}'")
        c = self.cash_after()[rows]
        self.bound(spec, c, scalar_scale(self.data, spec.unit), spec.lo, spec.hi, len(rows))

    def _group(self, spec: ConstraintSpec) -> None:
        d = self.data
        if spec.kind == "currency_cash":
            self._currency_cash(spec)
            return
        groups, _ = group_selection(d, spec)
        if not groups:
            return
        t, f = d.tradable, d.fixed
        ng = len(groups)
        rows, cols = [], []
        for r, (_, it, _) in enumerate(groups):
            rows += [r] * len(it)
            cols += list(it)
        S = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(ng, self.n))

        def fixed_sum(values):
            out = np.zeros(ng)
            for r, (_, _, jf) in enumerate(groups):
                out[r] = float(np.sum(values[jf])) if len(jf) else 0.0
            return out

        kind = spec.kind
        if kind == "group_net" and self.lt is not None:
            # look-through: the group's members' rows of e = E h_all
            r2, c2 = [], []
            for r, (_, it, jf) in enumerate(groups):
                r2 += [r] * (len(it) + len(jf))
                c2 += list(it) + [self.n + j for j in jf]
            S_all = sp.csr_matrix((np.ones(len(r2)), (r2, c2)), shape=(ng, self.n + f.n))
            g = sp.csr_matrix(S_all @ self.lt.E) @ self.h_all(False)
        elif kind == "group_net":
            g = S @ self.h + fixed_sum(f.h0)
        elif kind == "group_gross":
            g = S @ self.abs_h + fixed_sum(np.abs(f.h0))
        elif kind == "group_turnover":
            g = S @ self.abs_m
        elif kind == "group_margin":
            g = S @ cp.multiply(t.margin_rate, self.abs_h) + fixed_sum(
                f.margin_rate * np.abs(f.h0))
        else:
            raise ValueError(f"unhandled group kind {kind}")
        lo = spec.lo if kind == "group_net" else None
        self.bound(spec, g, scalar_scale(d, spec.unit), lo, spec.hi, ng)

    def _portfolio(self, spec: ConstraintSpec) -> None:
        d, kind = self.data, spec.kind
        t, f = d.tradable, d.fixed
        lo, hi = spec.lo, spec.hi
        if kind == "net_exposure":
            g = cp.sum(self.h) + float(f.h0.sum())
        elif kind in ("gross_exposure", "leverage", "long_market_value",
                      "short_market_value") and (lo is None or KINDS[kind].needs_upper) \
                and not self.legs_priced:
            # An upper bound alone on the legs admits exactly the h whose true value meets
            # it (the legs can always be taken minimal), so state it on h directly: same
            # feasible set, no 2n leg variables (better conditioned at scale).
            h0f = f.h0
            if kind in ("gross_exposure", "leverage"):
                g = cp.sum(self.abs_h) + float(np.abs(h0f).sum())
            elif kind == "long_market_value":
                g = cp.sum(cp.pos(self.h)) + float(np.maximum(h0f, 0).sum())
            else:
                g = cp.sum(cp.neg(self.h)) + float(np.maximum(-h0f, 0).sum())
        elif kind in ("gross_exposure", "leverage"):
            g = self.gross()
        elif kind == "long_market_value":
            g = self.legs()[0]
        elif kind == "short_market_value":
            g = self.legs()[1]
        elif kind == "cash":
            nf = ~np.asarray(t.is_future, bool)
            nff = ~np.asarray(f.is_future, bool)
            g = 1.0 - cp.sum(self.h[np.flatnonzero(nf)]) - float(f.h0[nff].sum())
        elif kind == "turnover":
            g, lo = cp.sum(self.abs_m), None
        elif kind == "beta_exposure":
            g = t.beta @ self.h + float(f.beta @ f.h0)
        elif kind == "total_risk":
            g, lo = self.vol(self.rel, self.settings.risk_terms), None
        elif kind == "factor_risk":
            g, lo = self.vol(self.rel, "factor"), None
        elif kind == "tracking_error":
            g, lo = self.vol(True, self.settings.risk_terms), None
        elif kind == "margin_budget" and self.hedges is not None:
            g, lo = self.hedged_margin(), None
        elif kind == "margin_budget":
            g = t.margin_rate @ self.abs_h + float(f.margin_rate @ np.abs(f.h0))
            lo = None
        else:
            raise ValueError(f"unhandled portfolio kind {kind}")
        if KINDS[kind].needs_upper:
            lo = None
        g = cp.reshape(g, (1,), order="C")
        self.bound(spec, g, scalar_scale(d, spec.unit), lo, hi, 1)

    def hedged_margin(self):
        """min over p of sum rate_i |h_all_i - (V p)_i| + sum hedge_rate_k |p_k|, with
        |p_k| <= |h_all_basket_k|; stated with p as variables (an upper bound on a min).

        |p_k| <= |h_b| is not convex in a tradable h_b: `hedge_signs` {basket index: +1/-1}
        fixes the sign of h_b (sigma h_b >= 0, |p_k| <= sigma h_b); solve_reference
        enumerates the signs, so the optimum is exact. Without a sign the sign of h0_b
        (or +1) is used.
        """
        d, hg = self.data, self.hedges
        rate = np.concatenate([d.tradable.margin_rate, d.fixed.margin_rate])
        ha = self.h_all(False)
        p = cp.Variable(hg.size, name="hedge")
        h0_all = np.concatenate([d.tradable.h0, d.fixed.h0])
        for k, b in enumerate(np.asarray(hg.basket, int)):
            if b >= self.n:  # a fixed basket: |h_b| is a constant
                self.cons.append(cp.abs(p[k]) <= abs(h0_all[b]))
                continue
            sgn = self.hedge_signs.get(int(b), 1.0 if h0_all[b] >= 0 else -1.0)
            self.cons.append(sgn * self.h[b] >= 0)
            self.cons.append(cp.abs(p[k]) <= sgn * self.h[b])
        return rate @ cp.abs(ha - sp.csr_matrix(hg.V) @ p) + \
            np.asarray(hg.rate, float) @ cp.abs(p)

    def restrictions(self) -> None:
        d = self.data
        h0 = d.tradable.h0
        nl = np.flatnonzero(np.asarray(d.no_new_longs, bool))
        ns = np.flatnonzero(np.asarray(d.no_new_shorts, bool))
        if len(nl):
            self.cons.append(self.h[nl] <= np.maximum(h0[nl], 0.0))
        if len(ns):
            self.cons.append(self.h[ns] >= np.minimum(h0[ns], 0.0))
        nb = np.flatnonzero(np.asarray(d.extra.get("no_buy", np.zeros(self.n)), bool))
        if len(nb):  # expiring futures: h_i <= h0_i
            self.cons.append(self.h[nb] <= h0[nb])


def build_reference(data: ProblemData, constraints: list[ConstraintSpec],
                    settings: OptimizationSettings, *, legs_priced: bool = False,
                    impact_cone: str = "auto", hedge_signs: dict | None = None
                    ) -> tuple[cp.Problem, cp.Variable]:
    """The CVXPY problem (Maximize utility incl. soft penalties) and the variable h.

    `legs_priced=True` is a diagnostic variant, NOT the formulation: when the constraints
    create the legs l, s, financing and borrow are charged on them instead of on max(h, 0)
    and max(-h, 0), and |h_i| in max_holding_adv, max_margin, group_gross, group_margin
    and margin_budget is l_i + s_i (max_concentration keeps |h_i|). It agrees with
    the formulation unless the legs overlap (l_i s_i > 0), which happens when a lower bound
    on gross / LMV / SMV or a max_concentration pushes them up: under the formulation the
    overlap is free, so those constraints do not bind.
    """
    b = _Builder(data, settings, legs_priced, impact_cone, hedge_signs)
    b.restrictions()
    for spec in constraints:
        b.add(spec)
    prob = cp.Problem(cp.Maximize(b.objective()), b.cons)
    prob._spo_builder = b  # flows k and FX f for the caller
    return prob, b.h


MAX_HEDGE_SIGN_ENUMERATION = 4


def hedge_sign_patterns(data: ProblemData, constraints: list[ConstraintSpec],
                        settings: OptimizationSettings) -> list[dict | None]:
    """Sign patterns of the tradable hedged baskets to enumerate (see hedged_margin)."""
    uses = any(c.enabled and c.kind == "margin_budget" for c in constraints)
    if not (uses and settings.margin_hedge_credit and data.hedges is not None
            and data.hedges.size):
        return [None]
    bs = sorted({int(b) for b in data.hedges.basket if int(b) < data.tradable.n})
    if not bs or len(bs) > MAX_HEDGE_SIGN_ENUMERATION:
        return [None]
    import itertools
    return [dict(zip(bs, signs)) for signs in itertools.product((1.0, -1.0), repeat=len(bs))]


def solve_reference(data: ProblemData, constraints: list[ConstraintSpec],
                    settings: OptimizationSettings, solver: str = "CLARABEL",
                    legs_priced: bool = False, impact_cone: str = "auto",
                    **solver_opts) -> ReferenceResult:
    """Build and solve; with impact_cone "auto", a solve that fails or ends inaccurate is
    tried again with the other form of the 3/2 power (each stalls on some problems)."""
    cones = [impact_cone]
    if impact_cone == "auto":
        first = "soc" if data.tradable.n > IMPACT_CONE_AUTO_MAX_N else "power"
        cones = [first, "power" if first == "soc" else "soc"]
    patterns = hedge_sign_patterns(data, constraints, settings)
    if len(patterns) > 1:
        # |p_k| <= |h_b| is not convex: the optimum is the best over the signs of h_b.
        best = None
        for pat in patterns:
            r = _solve_once(data, constraints, settings, solver, legs_priced, cones, pat,
                            solver_opts)
            if best is None:
                best = r
                continue
            ok_r = r.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE)
            ok_b = best.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE)
            if ok_r and (not ok_b or r.objective > best.objective):
                r.solve_s += best.solve_s
                r.build_s += best.build_s
                best = r
            else:
                best.solve_s += r.solve_s
                best.build_s += r.build_s
        best.extra["hedge_signs"] = best.extra.get("hedge_signs")
        return best
    return _solve_once(data, constraints, settings, solver, legs_priced, cones, None,
                       solver_opts)


def _solve_once(data, constraints, settings, solver, legs_priced, cones, hedge_signs,
                solver_opts) -> ReferenceResult:
    build_s = solve_s = 0.0
    for cone in cones:
        t0 = time.perf_counter()
        prob, h = build_reference(data, constraints, settings, legs_priced=legs_priced,
                                  impact_cone=cone, hedge_signs=hedge_signs)
        t1 = time.perf_counter()
        try:
            prob.solve(solver=solver, **solver_opts)
            status = prob.status
        except cp.error.SolverError as exc:
            status = f"solver_error: {exc}"
        t2 = time.perf_counter()
        build_s += t1 - t0
        solve_s += t2 - t1
        if status in (cp.OPTIMAL, cp.INFEASIBLE, cp.UNBOUNDED):
            break
    ok = status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE)
    hv = np.asarray(h.value, dtype=float) if ok and h.value is not None else np.full(
        data.tradable.n, np.nan)
    obj = float(prob.value) if ok and prob.value is not None else float("nan")
    b = getattr(prob, "_spo_builder", None)
    extra = {"problem": prob, "impact_cone": cone, "hedge_signs": hedge_signs}
    if ok and b is not None:
        if b.k is not None and b.k.value is not None:
            extra["flows"] = np.asarray(b.k.value, float)
        if b._fx is not None and b._fx[1].value is not None:
            extra["fx"] = np.asarray(b._fx[1].value, float)
    return ReferenceResult(status=status, objective=obj, h=hv, solve_s=solve_s,
                           build_s=build_s, extra=extra)


# --------------------------------------------------------------------------------------
# Numpy evaluation at a given h (independent of any solver)


@dataclass
class Row:
    name: str
    kind: str
    label: str
    value: float  # in the constraint's unit
    lower: float | None
    upper: float | None
    soft: bool
    penalty: float
    imposed: bool = True  # False for a fixed instrument's row (checked, not imposed)

    @property
    def slack(self) -> float:
        s = np.inf
        if self.upper is not None:
            s = min(s, self.upper - self.value)
        if self.lower is not None:
            s = min(s, self.value - self.lower)
        return s

    @property
    def violation(self) -> float:
        return max(0.0, -self.slack) if np.isfinite(self.slack) else 0.0


def variance_parts(data: ProblemData, h: np.ndarray, relative: bool) -> tuple[float, float]:
    """(FV, SV), annual, on e = h - b (relative) or h."""
    t, f = data.tradable, data.fixed
    e = h - t.bench if relative else h
    ef = (f.h0 - f.bench) if relative else f.h0
    x = np.asarray(t.loadings.T @ e).ravel()
    if f.n:
        x = x + np.asarray(f.loadings.T @ ef).ravel()
    fv = float(x @ data.factor_cov @ x)
    sv = float(np.sum(t.idio * e ** 2) + (np.sum(f.idio * ef ** 2) if f.n else 0.0))
    return fv, sv


def exposures(data: ProblemData, h: np.ndarray, relative: bool) -> np.ndarray:
    t, f = data.tradable, data.fixed
    e = h - t.bench if relative else h
    x = np.asarray(t.loadings.T @ e).ravel()
    if f.n:
        ef = (f.h0 - f.bench) if relative else f.h0
        x = x + np.asarray(f.loadings.T @ ef).ravel()
    return x


def _var(data, h, relative, terms):
    fv, sv = variance_parts(data, h, relative)
    return {"full": fv + sv, "factor": fv, "idio": sv}[terms]


def constraint_rows(data: ProblemData, constraints: list[ConstraintSpec],
                    settings: OptimizationSettings, h: np.ndarray) -> list[Row]:
    """Every row of every enabled constraint, its value at h in its own unit."""
    h = np.asarray(h, dtype=float)
    t, f = data.tradable, data.fixed
    h0 = t.h0
    hall, h0f = h, f.h0
    gross = float(np.abs(h).sum() + np.abs(h0f).sum())
    rows: list[Row] = []
    for spec in constraints:
        if not spec.enabled:
            continue
        _check_units(spec)
        kind = KINDS[spec.kind]
        lo, hi = spec.lo, spec.hi
        if kind.needs_upper:
            lo = None
        mk = lambda label, value, lower, upper, imposed=True: rows.append(  # noqa: E731
            Row(spec.name, spec.kind, label, float(value), lower, upper, spec.soft,
                spec.penalty, imposed))
        if kind.scope == "instrument":
            it, jf = instrument_selection(data, spec)
            sides = [(i, t.ids[i], h[i], h0[i], t.margin_rate[i], True) for i in it]
            sides += [(j, f.ids[j], h0f[j], h0f[j], f.margin_rate[j], False) for j in jf]
            for i, iid, hv, h0v, mr, tradable in sides:
                label = str(iid)
                if spec.kind in NO_BOUNDS_KINDS:
                    dn, up = flag_bounds(spec.kind, h0v)
                    mk(label, hv * 100, None if dn is None else float(dn),
                       None if up is None else float(up), tradable)
                    continue
                if spec.kind == "max_concentration":
                    mk(label, abs(hv) / gross * 100 if gross > 0 else 0.0, None, hi, tradable)
                    continue
                if tradable:
                    sc = float(instrument_scale(data, spec.unit, np.array([i]))[0])
                elif spec.unit == "%NAV":
                    sc = 0.01
                elif spec.unit == "notional":
                    sc = 1.0 / data.nav
                elif spec.unit == "%holding":
                    sc = abs(h0v) / 100
                else:
                    sc = np.nan  # no unit value / ADV for a fixed instrument
                raw = {"holding": hv, "max_trade": abs(hv - h0v),
                       "max_holding_adv": abs(hv), "max_margin": mr * abs(hv)}[spec.kind]
                if sc == 0:  # %holding of a name not held: no trade allowed
                    value = 0.0 if raw <= 1e-9 else np.inf
                else:
                    value = raw / sc
                mk(label, value, lo, hi, tradable)
        elif spec.kind == "factor_exposure":
            x = exposures(data, h, settings.relative_to_benchmark)
            for k in factor_selection(data, spec.factor, spec.name):
                mk(data.factor_names[k], x[k], lo, hi)
        elif kind.scope == "group":
            groups, _ = group_selection(data, spec)
            sc = scalar_scale(data, spec.unit)
            for label, it, jf in groups:
                if spec.kind == "group_net":
                    raw = h[it].sum() + h0f[jf].sum()
                elif spec.kind == "group_gross":
                    raw = np.abs(h[it]).sum() + np.abs(h0f[jf]).sum()
                elif spec.kind == "group_turnover":
                    raw = np.abs(h[it] - h0[it]).sum()
                else:
                    raw = (t.margin_rate[it] * np.abs(h[it])).sum() + (
                        f.margin_rate[jf] * np.abs(h0f[jf])).sum()
                mk(label, raw / sc, lo if spec.kind == "group_net" else None, hi)
        else:
            sc = scalar_scale(data, spec.unit)
            k = spec.kind
            if k == "net_exposure":
                raw = hall.sum() + h0f.sum()
            elif k in ("gross_exposure", "leverage"):
                raw = gross
            elif k == "long_market_value":
                raw = np.maximum(h, 0).sum() + np.maximum(h0f, 0).sum()
            elif k == "short_market_value":
                raw = np.maximum(-h, 0).sum() + np.maximum(-h0f, 0).sum()
            elif k == "cash":
                raw = 1.0 - h[~np.asarray(t.is_future, bool)].sum() - h0f[
                    ~np.asarray(f.is_future, bool)].sum()
            elif k == "turnover":
                raw = np.abs(h - h0).sum()
            elif k == "beta_exposure":
                raw = t.beta @ h + f.beta @ h0f
            elif k == "total_risk":
                raw = np.sqrt(max(_var(data, h, settings.relative_to_benchmark,
                                       settings.risk_terms), 0.0))
            elif k == "factor_risk":
                raw = np.sqrt(max(_var(data, h, settings.relative_to_benchmark, "factor"),
                                  0.0))
            elif k == "tracking_error":
                raw = np.sqrt(max(_var(data, h, True, settings.risk_terms), 0.0))
            elif k == "margin_budget":
                raw = t.margin_rate @ np.abs(h) + f.margin_rate @ np.abs(h0f)
            else:
                raise ValueError(f"unhandled kind {k}")
            mk("", raw / sc, lo, hi)
    return rows


def cost_value(data: ProblemData, h: np.ndarray) -> float:
    m = h - data.tradable.h0
    am = np.abs(m)
    k = data.impact.astype(float).copy()
    for c in data.curves:
        k[c.index] = 0.0
    c = float(data.linear_cost @ am + k @ am ** 1.5)
    for cv in data.curves:
        c += float(np.max(np.asarray(cv.intercepts) + np.asarray(cv.slopes) * am[cv.index]))
    c += data.horizon_scale * float(data.financing @ np.maximum(h, 0)
                                    + data.borrow @ np.maximum(-h, 0) - data.dividend @ h)
    return c


def objective_value(data: ProblemData, constraints: list[ConstraintSpec],
                    settings: OptimizationSettings, h: np.ndarray) -> float:
    """The objective (maximize sense) at h, with P from the soft rows' violations at h.

    (For soft lower bounds on gross / LMV / SMV the model's violation, measured through the
    legs, can be smaller than the one at h; and soft max_concentration is measured here in
    %gross, not as the model does. Use with care on those.)
    """
    h = np.asarray(h, dtype=float)
    s, hs = settings, data.horizon_scale
    if s.objective == "utility":
        core = float(data.alpha @ h) - s.risk_aversion * hs * _var(
            data, h, s.relative_to_benchmark, s.risk_terms)
    elif s.objective == "min_total_risk":
        core = -hs * _var(data, h, s.relative_to_benchmark, s.risk_terms)
    elif s.objective == "min_factor_risk":
        core = -hs * _var(data, h, s.relative_to_benchmark, "factor")
    else:
        x = exposures(data, h, s.relative_to_benchmark)
        core = 0.0
        for name, tgt in s.factor_targets.items():
            k = data.factor_names.index(name)
            core -= s.factor_target_weights.get(name, 1.0) * (x[k] - tgt) ** 2
    pen = sum(r.penalty * PENALTY_SCALE * r.violation
              for r in constraint_rows(data, constraints, settings, h) if r.soft and r.imposed)
    return core - cost_value(data, h) - pen
