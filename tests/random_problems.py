"""Small random optimization problems (ProblemData) and constraint sets for the cross-checks.

Everything is in model units (fractions of NAV), built directly as core.model.data.Side /
ImpactCurve / ProblemData. Seeded with numpy; `problems()` and `cases()` are hypothesis
strategies over the seeds and sizes.

Constraint bounds are calibrated against two books: `h_from` (the current book h0, unless
given) must satisfy every hard constraint, and `h_to` (e.g. the unconstrained optimum, or a
random move) should violate some of them, so the constraints bind without making the
problem infeasible. `infeasible_sets` builds deliberately contradictory sets and says which
constraints conflict.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from hypothesis import strategies as st

from bench.cvxpy_reference import Row, constraint_rows, instrument_scale, scalar_scale
from core.constraints.catalogue import KINDS
from core.constraints.spec import ConstraintSpec
from core.model.data import ImpactCurve, ProblemData, Side, lower_convex_envelope
from core.settings import OptimizationSettings

NAV = 1e8
GROUP_COLUMNS = ("sector", "industry", "country", "currency", "type")
GROUP_VALUES = {
    "sector": ["Tech", "Energy", "Health", "Financials"],
    "industry": ["Software", "Hardware", "Oil", "Pharma"],
    "country": ["US", "GB", "FR", "JP"],
    "currency": ["USD", "EUR", "GBP", "JPY"],
    "type": ["Equity", "ETF", "Future", "Basket"],
}
FACTORS = [("Market", "market"), ("Value", "style"), ("Momentum", "style"),
           ("Tech", "industry"), ("US", "country"), ("Size", "style")]
FIXED_ONLY_SECTOR = "Utilities"  # a sector only fixed instruments have (groups get skipped)


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _side(rng, prefix: str, n: int, k: int, labels: dict[str, list[str]],
          h0_scale: float = 0.05) -> Side:
    dense = rng.normal(0.0, 1.0, (n, k))
    dense[:, 0] = rng.uniform(0.6, 1.4, n)  # market-like first factor
    dense[rng.random((n, k)) < 0.25] = 0.0
    lab = {c: np.array([vals[j] for j in rng.integers(0, len(vals), n)], dtype=object)
           for c, vals in labels.items()}
    h0 = rng.choice([-1.0, 1.0], n) * rng.uniform(0.0, h0_scale, n)
    h0[rng.random(n) < 0.1] = 0.0
    return Side(
        ids=np.array([f"{prefix}{i:03d}" for i in range(n)], dtype=object),
        rows=np.arange(n),
        h0=h0,
        bench=np.zeros(n),
        loadings=sp.csr_matrix(dense),
        idio=rng.uniform(0.01, 0.1, n),
        beta=rng.uniform(0.5, 1.5, n),
        is_future=lab["type"] == "Future",
        margin_rate=rng.uniform(0.05, 0.5, n),
        labels=lab,
    )


def random_curve(rng, index: int) -> ImpactCurve:
    npts = int(rng.integers(2, 5))
    size = np.sort(rng.uniform(0.002, 0.1, npts))
    pct = np.sort(rng.uniform(0.02, 1.0, npts))  # percent impact, mostly increasing
    if rng.random() < 0.3:
        rng.shuffle(pct)  # sometimes non-convex points: the envelope fixes it
    xs = np.concatenate([[0.0], size])
    ys = np.concatenate([[0.0], pct / 100.0 * size])
    a, b = lower_convex_envelope(xs, ys)
    return ImpactCurve(index=index, intercepts=a, slopes=b)


def random_problem(seed=0, n: int | None = None, n_fixed: int | None = None,
                   k: int | None = None, *, n_curves: int | None = None,
                   restrictions: bool | None = None, fixed_only_group: bool | None = None,
                   bench: bool = True) -> ProblemData:
    rng = _rng(seed)
    n = int(rng.integers(5, 41)) if n is None else n
    n_fixed = int(rng.integers(0, 6)) if n_fixed is None else n_fixed
    k = int(rng.integers(2, 7)) if k is None else k
    labels = {c: list(rng.choice(v, int(rng.integers(2, 5)), replace=False))
              for c, v in GROUP_VALUES.items()}
    t = _side(rng, "T", n, k, labels)
    f = _side(rng, "F", n_fixed, k, labels)
    if fixed_only_group is None:
        fixed_only_group = rng.random() < 0.3
    if fixed_only_group and n_fixed:
        f.labels["sector"][0] = FIXED_ONLY_SECTOR
    if bench:
        w = rng.uniform(0.0, 1.0, n + n_fixed) * (rng.random(n + n_fixed) < 0.7)
        if w.sum() == 0:
            w[0] = 1.0
        w = w / w.sum()
        t.bench, f.bench = w[:n], w[n:]

    # factor covariance: random correlation, annual variances 0.0004 - 0.04
    a = rng.normal(size=(k, k + 2))
    c = a @ a.T
    d = np.sqrt(np.diag(c))
    corr = c / np.outer(d, d)
    vol = np.sqrt(rng.uniform(0.0004, 0.04, k))
    cov = corr * np.outer(vol, vol)
    cov = 0.5 * (cov + cov.T)

    impact = rng.uniform(0.001, 0.05, n)
    if n_curves is None:
        n_curves = int(rng.integers(0, 4))
    curves = [random_curve(rng, int(i))
              for i in rng.choice(n, min(n_curves, n), replace=False)]
    for cv in curves:
        impact[cv.index] = 0.0  # the curve replaces the 3/2-power model (as problem_data)
    if restrictions is None:
        restrictions = rng.random() < 0.2
    nnl = np.zeros(n, bool)
    nns = np.zeros(n, bool)
    if restrictions:
        nnl[rng.choice(n, max(1, n // 10), replace=False)] = True
        nns[rng.choice(n, max(1, n // 10), replace=False)] = True

    names = tuple(nm for nm, _ in FACTORS[:k]) + tuple(f"Style{i}" for i in range(k - 6))
    kinds = tuple(kd for _, kd in FACTORS[:k]) + ("style",) * max(0, k - 6)
    return ProblemData(
        nav=NAV, numeraire="USD", horizon_scale=20 / 252,
        factor_names=names, factor_kinds=kinds, factor_cov=cov,
        tradable=t, fixed=f,
        alpha=rng.normal(0.0, 0.01, n),
        unit_value=rng.uniform(10.0, 500.0, n),
        lot_size=rng.choice([1.0, 10.0, 100.0], n),
        adv=NAV * np.exp(rng.uniform(np.log(0.5), np.log(20.0), n)),
        linear_cost=rng.uniform(1.0, 10.0, n) * 1e-4,
        impact=impact,
        curves=curves,
        borrow=rng.uniform(0.0, 0.05, n),
        financing=rng.uniform(0.0, 0.05, n),
        dividend=rng.uniform(0.0, 0.04, n),
        no_new_longs=nnl, no_new_shorts=nns,
    )


def large_problem(n: int = 15_000, k: int = 72, seed: int = 0, n_fixed: int = 50,
                  n_curves: int = 200) -> ProblemData:
    """A benchmark-sized problem (sparse loadings: ~10 nonzeros per row)."""
    rng = _rng(seed)
    labels = {c: [f"{c}{j}" for j in range(10)] for c in GROUP_COLUMNS}

    def side(prefix, m):
        rows = np.repeat(np.arange(m), 10)
        cols = np.concatenate([np.concatenate([[0], rng.choice(np.arange(1, k), 9, False)])
                               for _ in range(m)]) if m else np.zeros(0, int)
        vals = rng.normal(0, 1, len(rows))
        lab = {c: np.array([v[j] for j in rng.integers(0, len(v), m)], dtype=object)
               for c, v in labels.items()}
        return Side(ids=np.array([f"{prefix}{i}" for i in range(m)], dtype=object),
                    rows=np.arange(m), h0=rng.normal(0, 2.0 / (n + n_fixed), m),
                    bench=np.full(m, 1.0 / (n + n_fixed)),
                    loadings=sp.csr_matrix((vals, (rows, cols)), shape=(m, k)),
                    idio=rng.uniform(0.01, 0.1, m), beta=rng.uniform(0.5, 1.5, m),
                    is_future=np.zeros(m, bool), margin_rate=rng.uniform(0.05, 0.5, m),
                    labels=lab)

    t, f = side("T", n), side("F", n_fixed)
    a = rng.normal(size=(k, k + 10)) * 0.02
    cov = a @ a.T / (k + 10) + np.diag(rng.uniform(0.0004, 0.01, k))
    impact = rng.uniform(0.001, 0.05, n)
    curves = [random_curve(rng, int(i)) for i in rng.choice(n, n_curves, replace=False)]
    for cv in curves:
        impact[cv.index] = 0.0
    return ProblemData(
        nav=NAV, numeraire="USD", horizon_scale=20 / 252,
        factor_names=tuple(f"F{i}" for i in range(k)),
        factor_kinds=tuple("style" if i < k // 2 else "industry" for i in range(k)),
        factor_cov=0.5 * (cov + cov.T), tradable=t, fixed=f,
        alpha=rng.normal(0, 2e-4, n), unit_value=rng.uniform(10, 500, n),
        lot_size=np.ones(n), adv=NAV * np.exp(rng.uniform(np.log(0.01), np.log(2.0), n)),
        linear_cost=rng.uniform(1, 10, n) * 1e-4, impact=impact, curves=curves,
        borrow=rng.uniform(0, 0.05, n), financing=rng.uniform(0, 0.05, n),
        dividend=rng.uniform(0, 0.04, n),
        no_new_longs=np.zeros(n, bool), no_new_shorts=np.zeros(n, bool))


# --------------------------------------------------------------------------------------
# Constraints

# Kinds that need data the cross-check problems do not have (cash per currency); they are
# tested on books in tests/test_currency.py.
OUTSIDE_CROSS_CHECK = {"currency_cash"}
ALL_KIND_UNITS = [(k.name, u) for k in KINDS.values() for u in k.units
                  if k.name not in OUTSIDE_CROSS_CHECK]


def _selector(data: ProblemData, kind: str, rng) -> dict:
    scope = KINDS[kind].scope
    if scope == "instrument":
        r = rng.random()
        if r < 0.55:
            return {"instrument": "*"}
        if r < 0.62 and data.fixed.n:  # a fixed instrument: checked, not imposed
            return {"instrument": str(data.fixed.ids[rng.integers(data.fixed.n)])}
        return {"instrument": str(data.tradable.ids[rng.integers(data.tradable.n)])}
    if kind == "factor_exposure":
        r = rng.random()
        if r < 0.5:
            return {"factor": str(data.factor_names[rng.integers(data.k)])}
        if r < 0.7:
            return {"factor": "kind:style" if "style" in data.factor_kinds else "*"}
        return {"factor": "*"}
    if scope == "group":
        col = str(rng.choice(GROUP_COLUMNS))
        vals = sorted(set(data.tradable.labels[col]))
        if col == "sector" and FIXED_ONLY_SECTOR in set(data.fixed.labels.get(col, [])):
            vals.append(FIXED_ONLY_SECTOR)  # a group with no tradable member: skipped
        grp = "*" if rng.random() < 0.5 else str(rng.choice(vals))
        return {"group_by": col, "group": grp}
    return {}


def _rows(data, spec, settings, h) -> list[Row]:
    return constraint_rows(data, [spec], settings, h)


def unit_fraction(data: ProblemData, unit: str) -> float:
    """A typical fraction of NAV (or exposure, or volatility) per one unit."""
    if unit in ("%NAV", "notional", "x", "exposure", "%vol"):
        return scalar_scale(data, unit)
    if unit == "%gross":
        return 0.01
    sc = instrument_scale(data, unit, np.arange(data.tradable.n))
    sc = sc[sc > 0]
    return float(np.median(sc)) if len(sc) else 0.01


def calibrated(data: ProblemData, settings: OptimizationSettings, kind: str, unit: str,
               h_to: np.ndarray, *, h_from: np.ndarray | None = None, rng=None,
               soft: bool = False, penalty: float = 100.0, selector: dict | None = None,
               frac: float = 0.5, target_form: bool = False, name: str = "") -> ConstraintSpec:
    """A constraint of `kind` in `unit` that h_from satisfies and h_to (probably) violates.

    Each bound is put `frac` of the way from h_from's extreme row value towards h_to's,
    when h_to goes beyond h_from on that side; otherwise a loose bound is set past h_from.
    """
    rng = _rng(rng)
    h_from = data.tradable.h0 if h_from is None else h_from
    sel = _selector(data, kind, rng) if selector is None else selector
    kd = KINDS[kind]
    if kd.no_bounds:
        return ConstraintSpec(kind=kind, unit=unit, soft=soft, penalty=penalty, name=name,
                              **sel)
    probe = ConstraintSpec(kind=kind, unit=unit, lower=-1e300, upper=1e300, **sel)
    a = [r.value for r in _rows(data, probe, settings, h_from) if r.imposed]
    b = [r.value for r in _rows(data, probe, settings, h_to) if r.imposed]
    a = [v for v in a if np.isfinite(v)] or [0.0]
    b = [v for v in b if np.isfinite(v)] or [0.0]
    amax, amin, bmax, bmin = max(a), min(a), max(b), min(b)
    span = max(abs(amax), abs(amin), abs(bmax), abs(bmin), 1e-6)
    pad = 1e-3 * span
    if bmax > amax + pad:
        hi = amax + frac * (bmax - amax)
    else:
        hi = amax + 0.2 * span + pad
    if bmin < amin - pad:
        lo = amin - frac * (amin - bmin)
    else:
        lo = amin - 0.2 * span - pad
    if kd.needs_upper or kind in ("group_gross", "group_turnover", "group_margin"):
        lo = None
        hi = max(hi, 0.0)
    if kind in ("gross_exposure", "long_market_value", "short_market_value") and lo < 0:
        lo = None
    if soft and rng.random() < 0.5:  # soft bounds may cut the current book as well
        hi = hi - 0.3 * span
        if kd.needs_upper or lo is None:
            hi = max(hi, 0.0)
        if lo is not None and lo > hi:
            lo = hi
    penalty = penalty * unit_fraction(data, unit) / 0.01  # given per 1% NAV
    kw = dict(kind=kind, unit=unit, soft=soft, penalty=penalty, name=name, **sel)
    if target_form and lo is not None and hi is not None:
        return ConstraintSpec(target=0.5 * (lo + hi), band=0.5 * (hi - lo), **kw)
    return ConstraintSpec(lower=lo, upper=hi, **kw)


def random_constraints(data: ProblemData, settings: OptimizationSettings, seed=0,
                       count: int | None = None, soft_prob: float = 0.2,
                       h_to: np.ndarray | None = None) -> list[ConstraintSpec]:
    """0-5 constraints of random kinds and units; the current book meets the hard ones."""
    rng = _rng(seed)
    count = int(rng.integers(0, 6)) if count is None else count
    if h_to is None:
        h_to = data.tradable.h0 + rng.normal(0.0, 0.03, data.tradable.n)
    out, names = [], set()
    for i in range(count):
        kind, unit = ALL_KIND_UNITS[rng.integers(len(ALL_KIND_UNITS))]
        spec = calibrated(data, settings, kind, unit, h_to, rng=rng,
                          soft=bool(rng.random() < soft_prob),
                          penalty=float(rng.uniform(1.0, 500.0)),
                          frac=float(rng.uniform(0.2, 0.9)),
                          target_form=bool(rng.random() < 0.2))
        if spec.name in names:
            spec = spec.model_copy(update={"name": f"{spec.name}#{i}"})
        names.add(spec.name)
        out.append(spec)
    return out


def infeasible_sets(data: ProblemData, settings: OptimizationSettings
                    ) -> list[tuple[str, list[ConstraintSpec], set[str]]]:
    """[(case, constraints, names of the constraints that conflict)]."""
    t, f = data.tradable, data.fixed
    out = []
    # 1. every holding >= 0.5% NAV, but the book's net exposure must stay below that sum
    floor = t.n * 0.5 + f.h0.sum() * 100
    out.append(("holding_vs_net", [
        ConstraintSpec(kind="holding", lower=0.5, upper=20.0),
        ConstraintSpec(kind="net_exposure", lower=-100.0, upper=floor - 2.0)],
        {"holding[*]", "net_exposure"}))
    # 2. a sector's net band contradicted by instrument holding bounds (long-only, >= 0)
    sec = str(t.labels["sector"][0])
    members_f = f.labels["sector"] == sec if f.n else np.zeros(0, bool)
    fixed_sum = float(f.h0[members_f].sum() * 100) if f.n else 0.0
    n_in = int(np.sum(t.labels["sector"] == sec))
    out.append(("group_vs_holding", [
        ConstraintSpec(kind="holding", lower=0.2, upper=5.0),
        ConstraintSpec(kind="group_net", group_by="sector", group=sec,
                       upper=fixed_sum + n_in * 0.2 - 1.0),
        ConstraintSpec(kind="turnover", upper=1000.0)],
        {"holding[*]", f"group_net[sector={sec}]"}))
    # 3. nothing may trade, but the net exposure must move by 10% NAV
    net0 = (t.h0.sum() + f.h0.sum()) * 100
    out.append(("no_trade_vs_net", [
        ConstraintSpec(kind="no_trade"),
        ConstraintSpec(kind="net_exposure", target=net0 + 10.0, band=1.0)],
        {"no_trade[*]", "net_exposure"}))
    # 4. no trade allowed (0 %ADV) but the total risk must halve
    rows = constraint_rows(data, [ConstraintSpec(kind="total_risk", upper=1e9)], settings,
                           t.h0)
    out.append(("trade_vs_risk", [
        ConstraintSpec(kind="max_trade", unit="%ADV", upper=0.0),
        ConstraintSpec(kind="total_risk", upper=0.5 * rows[0].value)],
        {"max_trade[*]", "total_risk"}))
    return out


# --------------------------------------------------------------------------------------
# Hypothesis strategies


def problems(min_n: int = 5, max_n: int = 40) -> st.SearchStrategy[ProblemData]:
    return st.builds(
        lambda seed, n, nf, k: random_problem(seed, n=n, n_fixed=nf, k=k),
        st.integers(0, 2 ** 32 - 1), st.integers(min_n, max_n), st.integers(0, 5),
        st.integers(2, 6))


def settings_strategy() -> st.SearchStrategy[OptimizationSettings]:
    return st.builds(
        lambda mode, rel, terms, lam: OptimizationSettings(
            objective=mode, relative_to_benchmark=rel, risk_terms=terms, risk_aversion=lam,
            factor_targets={"Market": 0.1} if mode == "target_exposures" else {}),
        st.sampled_from(["utility", "min_total_risk", "min_factor_risk",
                         "target_exposures"]),
        st.booleans(), st.sampled_from(["full", "factor", "idio"]),
        st.sampled_from([0.5, 2.0, 10.0]))


@st.composite
def cases(draw, min_n: int = 5, max_n: int = 25):
    """(data, constraints, settings) with 0-5 random constraints the current book meets."""
    data = draw(problems(min_n, max_n))
    settings = draw(settings_strategy())
    cseed = draw(st.integers(0, 2 ** 32 - 1))
    return data, random_constraints(data, settings, cseed), settings
