"""ProblemData: the numbers of one optimization, in model units, taken from the universe.

Model units (DESIGN.md section 3): every position, trade and limit is a fraction of NAV
in the numeraire, so variables are O(1) whatever the book's size or currency. Annual
variances and carry rates are kept annual here; the objective scales them by
`horizon_scale` = horizon_days / 252. Alpha is already over the horizon.

Tradable instruments are variables; everything else that is held, or in the benchmark, is
`fixed`: a constant that still counts in exposures and risk but costs the solver nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl
import scipy.sparse as sp

from core.model.lookthrough import LookThrough, build_lookthrough, identity
from core.model.currency import Currencies, build_currencies
from core.model.flows import Flows, build_flows
from core.model.margin import Hedges, build_hedges, margin_used, margin_without_credit
from core.settings import OptimizationSettings
from core.universe import Universe

TRADING_DAYS = 252.0


@dataclass
class Side:
    """One set of instruments (the tradable variables, or the fixed constants)."""

    ids: np.ndarray  # instrument_id
    rows: np.ndarray  # row index in universe.frame
    h0: np.ndarray  # current position / NAV
    bench: np.ndarray  # benchmark weight
    loadings: sp.csr_matrix  # n x K
    idio: np.ndarray  # annual specific variance
    beta: np.ndarray
    is_future: np.ndarray
    margin_rate: np.ndarray  # initial margin, fraction of |notional|
    labels: dict[str, np.ndarray]  # group column -> value per instrument

    @property
    def n(self) -> int:
        return len(self.ids)


@dataclass
class ImpactCurve:
    """Convex piecewise-linear cost of |trade| for one instrument: max_j(a_j + b_j |m|)."""

    index: int  # position among tradable instruments
    intercepts: np.ndarray  # NAV fraction
    slopes: np.ndarray  # NAV fraction of cost per NAV fraction traded


@dataclass
class ProblemData:
    nav: float
    numeraire: str
    horizon_scale: float
    factor_names: tuple[str, ...]
    factor_kinds: tuple[str, ...]
    factor_cov: np.ndarray  # K x K annual
    tradable: Side
    fixed: Side
    alpha: np.ndarray  # over the horizon, per tradable instrument
    unit_value: np.ndarray  # numeraire value of one share or contract
    lot_size: np.ndarray
    adv: np.ndarray  # ADV in the numeraire per day
    linear_cost: np.ndarray  # fraction of traded notional
    impact: np.ndarray  # cost / NAV = impact * |m|^1.5 (m in NAV fractions)
    curves: list[ImpactCurve]
    borrow: np.ndarray  # annual rate on short notional
    financing: np.ndarray  # annual rate on long notional
    dividend: np.ndarray  # annual yield
    no_new_longs: np.ndarray
    no_new_shorts: np.ndarray
    extra: dict = field(default_factory=dict)
    factor_root: np.ndarray | None = None  # R with R'R = factor_cov, when already known
    lookthrough: LookThrough | None = None  # None: every instrument is its own exposure
    hedges: Hedges | None = None  # recognized hedges for margin credit
    flows: Flows | None = None  # ETF create/redeem and EFP
    currencies: Currencies | None = None  # cash per currency (self-financing trades)
    fx_factor: np.ndarray | None = None  # per currency: its factor's index, -1 for none

    def market_trade(self, h: np.ndarray, k: np.ndarray | None = None) -> np.ndarray:
        """The part of h - h0 that crosses the market: flows (k) move the rest."""
        trade = h - self.tradable.h0
        if self.flows is not None and k is not None and len(k):
            trade = trade - self.flows.V @ k
        return trade

    def margin_rate_all(self) -> np.ndarray:
        return np.concatenate([self.tradable.margin_rate, self.fixed.margin_rate])

    def margin(self, h: np.ndarray, hedge_credit: bool = True) -> float:
        """Initial margin of post-trade positions h, as a fraction of NAV."""
        h_all = self.positions_all(h, False)
        rate = self.margin_rate_all()
        if not hedge_credit:
            return margin_without_credit(rate, h_all)
        return margin_used(rate, h_all, self.hedges)[0]

    # --- risk, in one place for the model, the diagnostics and the results ----------------

    @property
    def lt(self) -> LookThrough:
        if self.lookthrough is None:
            self.lookthrough = identity(self.tradable.n + self.fixed.n)
        return self.lookthrough

    def effective_loadings(self) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """(B_T, B_F): loadings per unit of position, baskets through their constituents."""
        B = sp.vstack([self.tradable.loadings, self.fixed.loadings], format="csr")
        if self.lt.active:
            B = sp.csr_matrix(self.lt.E.T @ B)
        return B[: self.tradable.n], B[self.tradable.n:]

    def specific_matrix(self) -> sp.csr_matrix:
        """G with specific variance = ||G e_all||^2 over positions of the combined index."""
        lt = self.lt
        idio = np.concatenate([self.tradable.idio, self.fixed.idio])
        own = np.where(lt.mapped, 0.0, idio)
        G = sp.diags(np.sqrt(own)) @ lt.E
        if lt.active:
            G = sp.vstack([G, sp.diags(np.sqrt(lt.residual))])
        G = sp.csr_matrix(G)
        return G[np.flatnonzero(G.getnnz(axis=1))]

    def positions_all(self, h: np.ndarray, active: bool) -> np.ndarray:
        h_all = np.concatenate([h, self.fixed.h0])
        if active:
            h_all = h_all - np.concatenate([self.tradable.bench, self.fixed.bench])
        return h_all

    def factor_exposures(self, h: np.ndarray, active: bool, k: np.ndarray | None = None,
                         f: np.ndarray | None = None) -> np.ndarray:
        """Factor exposures of positions h (flows k and FX trades f where they matter)."""
        bt, bf = self.effective_loadings()
        h_all = self.positions_all(h, active)
        x = np.asarray(bt.T @ h_all[: self.n] + bf.T @ h_all[self.n:]).ravel()
        if self.fx_factor is not None and self.currencies is not None:
            # FX factor risk: cash balances load on their currency's factor.
            cash = self.currencies.cash_after(self.market_trade(h, k), f)
            has = self.fx_factor >= 0
            np.add.at(x, self.fx_factor[has], cash[has])
        return x

    def specific_variance(self, h: np.ndarray, active: bool) -> float:
        g = self.specific_matrix() @ self.positions_all(h, active)
        return float(g @ g)

    @property
    def n(self) -> int:
        return self.tradable.n

    @property
    def k(self) -> int:
        return len(self.factor_names)


def _side(frame: pl.DataFrame, mask: np.ndarray, uni: Universe, nav: float,
          group_columns: tuple[str, ...]) -> Side:
    rows = np.flatnonzero(mask)
    sub = frame[rows]
    return Side(
        ids=sub.get_column("instrument_id").to_numpy(),
        rows=rows,
        h0=sub.get_column("position_notional").to_numpy() / nav,
        bench=sub.get_column("benchmark_weight").to_numpy(),
        loadings=sp.csr_matrix(uni.loadings[rows]),
        idio=sub.get_column("idio_variance").fill_null(0.0).to_numpy(),
        beta=sub.get_column("beta").fill_null(1.0).to_numpy(),
        is_future=sub.get_column("is_future").to_numpy(),
        margin_rate=sub.get_column("initial_margin").fill_null(0.0).to_numpy(),
        labels={c: sub.get_column(c).cast(pl.String).fill_null("(none)").to_numpy()
                for c in group_columns if c in sub.columns},
    )


def _curve_segments(points: pl.DataFrame, fx: float, nav: float) -> tuple[np.ndarray,
                                                                           np.ndarray]:
    """Lower convex envelope of cost(|trade|) through (0,0) and the curve points.

    cost at a point = percent_impact / 100 x trade_size; beyond the last point the last
    slope continues. A non-convex curve is replaced by its convex envelope, which is the
    best convex under-estimate of the points; the slopes are made non-decreasing.
    """
    size = points.get_column("trade_size").to_numpy() * fx / nav
    cost = points.get_column("percent_impact").to_numpy() / 100.0 * size
    return lower_convex_envelope(np.concatenate([[0.0], size]), np.concatenate([[0.0], cost]))


def lower_convex_envelope(xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Segments (intercepts, slopes) of the lower convex envelope of points sorted by x."""
    hull = [0]
    for i in range(1, len(xs)):
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            cross = (xs[b] - xs[a]) * (ys[i] - ys[a]) - (ys[b] - ys[a]) * (xs[i] - xs[a])
            if cross <= 0:  # b lies on or above the chord a-i: not on the lower envelope
                hull.pop()
            else:
                break
        hull.append(i)
    hx, hy = xs[hull], ys[hull]
    slopes = np.diff(hy) / np.diff(hx)
    return hy[:-1] - slopes * hx[:-1], slopes


def problem_data(uni: Universe, settings: OptimizationSettings,
                 group_columns: tuple[str, ...] = ("sector", "industry", "country", "currency",
                                                   "type")) -> ProblemData:
    frame = uni.frame
    nav = uni.nav
    tradable = frame.get_column("tradable").to_numpy()
    non_cash = ~frame.get_column("is_cash").to_numpy()
    held = frame.get_column("position_notional").to_numpy() != 0
    in_bench = frame.get_column("benchmark_weight").to_numpy() != 0
    # Benchmark names stay in even for absolute runs: tracking error is always active.
    fixed_mask = non_cash & ~tradable & (held | in_bench)
    mapped_ids: list[str] = []
    if settings.look_through and uni.baskets.height:
        # Constituents of a basket in the problem must be in it too, if only as constants.
        valid = frame.get_column("look_through_valid").fill_null(False).to_numpy()
        ids_all = frame.get_column("instrument_id").to_numpy()
        mapped_ids = ids_all[valid & (tradable | fixed_mask)].tolist()
        cons = uni.baskets.filter(pl.col("basket_id").is_in(mapped_ids)).get_column(
            "constituent_id").unique().to_list()
        fixed_mask |= non_cash & ~tradable & np.isin(ids_all, cons)
    t = _side(frame, tradable, uni, nav, group_columns)
    f = _side(frame, fixed_mask, uni, nav, group_columns)
    sub = frame[t.rows]

    col = lambda name, fill=0.0: sub.get_column(name).fill_null(fill).to_numpy()  # noqa: E731
    fx = col("fx", 1.0)
    adv = col("adv_value") * fx
    unit_value = col("unit_value")
    horizon = settings.horizon_days
    if settings.use_alpha and settings.objective == "utility":
        alpha = col("alpha") * horizon / col("horizon_days", float(horizon)) * settings.alpha_scale
    else:
        alpha = np.zeros(t.n)
    costs = settings.costs
    linear = col("linear_cost_bps") * 1e-4 * costs.scale if costs.linear else np.zeros(t.n)
    # Square-root law: cost rate c * sigma_daily * sqrt(|M| / ADV) on a trade of M money,
    # so cost / NAV = c * sigma_daily * sqrt(NAV / ADV) * |m|^1.5 with m = M / NAV.
    sigma_daily = col("volatility") / np.sqrt(TRADING_DAYS)
    with np.errstate(divide="ignore", invalid="ignore"):
        impact = np.where(adv > 0, col("impact_coeff") * sigma_daily * np.sqrt(nav / adv), 0.0)
    impact = impact * costs.scale if costs.impact else np.zeros(t.n)

    curves: list[ImpactCurve] = []
    curve_table = uni.impact_curves
    if costs.impact and costs.impact_curve and curve_table is not None and curve_table.height:
        index = {iid: i for i, iid in enumerate(t.ids)}
        for (iid,), pts in curve_table.sort("instrument_id", "trade_size").group_by(
                "instrument_id", maintain_order=True):
            i = index.get(iid)
            if i is None:
                continue
            a, b = _curve_segments(pts, float(fx[i]), nav)
            curves.append(ImpactCurve(i, a * costs.scale, b * costs.scale))
            impact[i] = 0.0  # the desk's own curve replaces the parametric model

    fm = uni.factor_model
    lookthrough = hedges = None
    if mapped_ids:
        both = frame[np.concatenate([t.rows, f.rows])]  # the combined index: tradable, fixed
        ids_both = both.get_column("instrument_id").to_numpy()
        lookthrough = build_lookthrough(
            ids_both, uni.baskets, both.get_column("unit_value").fill_null(0.0).to_numpy(),
            np.isin(ids_both, mapped_ids), np.concatenate([t.idio, f.idio]))
        if settings.margin_hedge_credit:
            override = both.get_column("synthetic_margin_override").fill_null(
                float("nan")).to_numpy()
            hedges = build_hedges(lookthrough.E, lookthrough.mapped, override)
    flows = None
    if lookthrough is not None:
        flows = build_flows(lookthrough, t.n, sub.get_column("type").to_numpy(), unit_value,
                            sub.get_column("creation_unit_size").fill_null(float("nan"))
                            .to_numpy(), nav, settings.synthetics)
    if flows is not None and settings.objective == "utility":
        # Where creation and redemption are open, the arbitrage closes an ETF's premium:
        # holding a rich ETF loses its premium over the horizon. Without this the model
        # would "create and hold", booking a premium no one will pay.
        cr = flows.kind == "create_redeem"
        alpha[flows.basket[cr]] -= flows.gain[cr]
    currencies = build_currencies(frame, t.rows, nav, uni.fx, uni.numeraire)
    fx_factor = None
    if settings.fx_factor_risk:
        by_name = {name: i for i, (name, kind) in enumerate(zip(fm.names, fm.kinds))
                   if kind == "currency"}
        fx_factor = np.array([by_name.get(c, -1) if c != uni.numeraire else -1
                              for c in currencies.codes], dtype=np.int64)
    return ProblemData(
        lookthrough=lookthrough, hedges=hedges, flows=flows, currencies=currencies,
        fx_factor=fx_factor,
        nav=nav, numeraire=uni.numeraire, horizon_scale=horizon / TRADING_DAYS,
        factor_names=fm.names, factor_kinds=fm.kinds, factor_cov=fm.covariance,
        factor_root=fm.root,
        tradable=t, fixed=f, alpha=alpha, unit_value=unit_value,
        lot_size=col("lot_size", 1).astype(float), adv=adv, linear_cost=linear, impact=impact,
        curves=curves,
        borrow=col("borrow_rate") if costs.borrow else np.zeros(t.n),
        # A negative financing rate would reward holding both legs of a name: not convex.
        financing=np.maximum(col("financing_rate"), 0.0) if costs.financing
        else np.zeros(t.n),
        dividend=col("dividend_yield") if costs.dividends else np.zeros(t.n),
        no_new_longs=col("no_new_longs", False).astype(bool),
        no_new_shorts=col("no_new_shorts", False).astype(bool),
        extra={"no_buy": col("expiring", False).astype(bool)},
    )
