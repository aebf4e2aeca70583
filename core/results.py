"""From a solved problem to what a trader reads: frames, orders and the post-trade summary.

The optimizer's continuous holdings are rounded to lots (futures to whole contracts, ETFs
to whole shares: their lot size is 1). Frames and the summary describe the rounded book,
the one the orders produce; constraint diagnostics describe the solver's solution.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl

from core.model.data import ProblemData
from core.model.discrete import needed, repair_lots, round_and_repair
from core.optimize import SolvedProblem, solve_problem
from core.universe import Universe

GROUP_COLUMNS = ("sector", "industry", "country", "currency", "type")
NOISE_FLOOR = 1e-6  # fraction of NAV: interior-point solutions are accurate to about this
ORDER_SCHEMA = {"symbol": pl.String, "side": pl.String, "shares": pl.Int64}


@dataclass
class OptimizationResult:
    status: str
    solver: str
    solver_reason: str
    solved: SolvedProblem
    current: pl.DataFrame
    optimal: pl.DataFrame
    trades: pl.DataFrame
    orders: pl.DataFrame
    summary: dict
    timings: dict[str, float] = field(default_factory=dict)
    flows: pl.DataFrame | None = None  # create/redeem and EFP, for the AP or the futures desk
    fx_orders: pl.DataFrame | None = None  # currency_pair, side, notional

    @property
    def diagnostics(self) -> pl.DataFrame:
        return self.solved.diagnostics

    @property
    def relaxation(self) -> pl.DataFrame | None:
        return self.solved.relaxation

    @property
    def ok(self) -> bool:
        return self.solved.status.has_solution


def _round_to_lots(shares: np.ndarray, lot: np.ndarray) -> np.ndarray:
    return np.round(shares / lot) * lot


def holdings_frame(uni: Universe, data: ProblemData, h: np.ndarray,
                   k: np.ndarray | None = None) -> pl.DataFrame:
    """One row per instrument that is held or tradable: before and after, in every unit.

    trade_shares is the market trade (rounded to lots); flow_shares what create/redeem and
    EFP move without the market.
    """
    frame = uni.frame
    t = data.tradable
    rows = np.concatenate([t.rows, data.fixed.rows])
    sub = frame[rows]
    nav = data.nav
    unit_value = sub.get_column("unit_value").to_numpy()
    lot = sub.get_column("lot_size").to_numpy().astype(float)
    before = sub.get_column("position_shares").to_numpy()
    target = before.copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        target[: t.n] = np.where(unit_value[: t.n] > 0, h * nav / unit_value[: t.n],
                                 before[: t.n])
    flow = np.zeros(len(before))
    if data.flows is not None and k is not None and len(k):
        with np.errstate(divide="ignore", invalid="ignore"):
            flow[: t.n] = np.where(unit_value[: t.n] > 0,
                                   (data.flows.V @ k) * nav / unit_value[: t.n], 0.0)
    trade = target - before - flow
    # A trade under solver precision (1e-6 of NAV) is noise, not an order, even where it
    # would round up to a lot of a cheap stock.
    trade[np.abs(trade * unit_value) < NOISE_FLOOR * nav] = 0.0
    trade = _round_to_lots(trade, lot)
    trade[t.n:] = 0.0
    after = before + flow + trade
    out = sub.select("instrument_id", "ticker", "type", "currency", "sector", "industry",
                     "country", "maintenance_margin",
                     "price", "unit_value", "lot_size", "tradable").with_columns(
        shares_before=pl.Series(before), shares_target=pl.Series(target),
        flow_shares=pl.Series(flow), trade_shares=pl.Series(trade),
        shares_after=pl.Series(after),
        notional_before=pl.Series(before * unit_value),
        notional_after=pl.Series(after * unit_value),
        trade_notional=pl.Series(trade * unit_value),
    )
    return out.with_columns(weight_before=pl.col("notional_before") / nav,
                            weight_after=pl.col("notional_after") / nav)


def _trade_costs(data: ProblemData, trade_w: np.ndarray) -> dict[str, np.ndarray]:
    """Per tradable instrument, the cost of its trade in fractions of NAV, by kind."""
    m = np.abs(trade_w)
    impact = data.impact * m**1.5
    curve = np.zeros_like(m)
    for c in data.curves:
        curve[c.index] = np.max(c.intercepts + c.slopes * m[c.index])
    return {"linear": data.linear_cost * m, "impact": impact, "impact_curve": curve}


def _side(before: float, trade: float, is_future: bool) -> list[tuple[str, float]]:
    """OMS sides; a trade that crosses zero is split, as venues require for equities."""
    if trade == 0:
        return []
    after = before + trade
    if is_future:
        return [("BUY" if trade > 0 else "SELL", abs(trade))]
    if trade > 0:
        if before >= 0:
            return [("BUY", trade)]
        if after <= 0:
            return [("BUY_TO_COVER", trade)]
        return [("BUY_TO_COVER", -before), ("BUY", after)]
    if before <= 0:
        return [("SELL_SHORT", -trade)]
    if after >= 0:
        return [("SELL", -trade)]
    return [("SELL", before), ("SELL_SHORT", -after)]


def trades_and_orders(holdings: pl.DataFrame, data: ProblemData
                      ) -> tuple[pl.DataFrame, pl.DataFrame]:
    nav = data.nav
    n = data.n
    trade_w = holdings.get_column("trade_notional").to_numpy()[:n] / nav
    costs = _trade_costs(data, trade_w)
    cost = (costs["linear"] + costs["impact"] + costs["impact_curve"]) * nav
    cost_full = np.zeros(holdings.height)
    cost_full[:n] = cost
    is_future = holdings.get_column("type").to_numpy() == "Future"
    h = holdings.with_columns(cost=pl.Series(cost_full), is_future=pl.Series(is_future))
    traded = h.filter(pl.col("trade_shares") != 0)
    order_rows = []
    sides = []
    for row in traded.iter_rows(named=True):
        legs = _side(row["shares_before"], row["trade_shares"], row["is_future"])
        sides.append(" + ".join(s for s, _ in legs))
        for side, qty in legs:
            order_rows.append((row["ticker"], side, int(round(qty))))
    trades = traded.select(
        "instrument_id", "ticker", "type", "currency",
        side=pl.Series(sides, dtype=pl.String),
        shares=pl.col("trade_shares").abs(),
        notional=pl.col("trade_notional").abs(), signed_notional="trade_notional",
        price="price", cost="cost",
        cost_bps=pl.when(pl.col("trade_notional") != 0)
        .then(pl.col("cost") / pl.col("trade_notional").abs() * 1e4),
        shares_before="shares_before", shares_after="shares_after",
    ).sort("notional", descending=True)
    orders = pl.DataFrame(order_rows, schema=ORDER_SCHEMA, orient="row")
    return trades, orders


def _risk(data: ProblemData, h: np.ndarray, active: bool, k: np.ndarray | None = None,
          f: np.ndarray | None = None) -> dict:
    x = data.factor_exposures(h, active, k, f)
    fx = data.factor_cov @ x
    fv = float(x @ fx)
    sv = data.specific_variance(h, active)
    total = fv + sv
    contrib = x * fx / total if total > 0 else np.zeros_like(x)
    return {
        "total_pct": 100 * np.sqrt(max(total, 0)), "factor_pct": 100 * np.sqrt(max(fv, 0)),
        "idio_pct": 100 * np.sqrt(max(sv, 0)), "variance": total,
        "exposures": x, "contribution": contrib,
    }


def _margin_summary(data: ProblemData, holdings: pl.DataFrame, hb: np.ndarray,
                    ha: np.ndarray, solved: SolvedProblem) -> dict:
    """Initial margin before and after, with and without hedge credit, and by group."""
    nav = data.nav
    # A block's bound is in fractions of NAV, whatever unit the trader wrote it in.
    budget = next((b.hi[0] * nav for b in solved.model.blocks
                   if b.spec.kind == "margin_budget"), None)
    rate = data.margin_rate_all()
    n = data.n
    by_group = {}
    for col in ("sector", "type"):
        g = holdings.select(
            group=pl.col(col).fill_null("(none)"),
            before=pl.Series(rate[: len(holdings)] * np.abs(holdings.get_column(
                "weight_before").to_numpy())) * nav,
            after=pl.Series(rate[: len(holdings)] * np.abs(holdings.get_column(
                "weight_after").to_numpy())) * nav,
        ).group_by("group").agg(pl.col("before").sum(), pl.col("after").sum()).sort("group")
        by_group[col] = g.to_dicts()
    maint = holdings.get_column("maintenance_margin").fill_null(0.0).to_numpy()[:n]
    out = {}
    for label, h in (("before", hb), ("after", ha)):
        out[label] = {"used": data.margin(h) * nav,
                      "used_without_hedge_credit": data.margin(h, hedge_credit=False) * nav,
                      "maintenance_without_hedge_credit": float(maint @ np.abs(h)) * nav}
    return {"used": out["after"]["used"],
            "used_without_hedge_credit": out["after"]["used_without_hedge_credit"],
            "budget": budget, "before": out["before"], "after": out["after"],
            "by_group": by_group, "hedges": 0 if data.hedges is None else data.hedges.size,
            "tradable": n}


def post_trade_summary(uni: Universe, data: ProblemData, holdings: pl.DataFrame,
                       trades: pl.DataFrame, solved: SolvedProblem,
                       flows_k: np.ndarray | None = None) -> dict:
    nav = data.nav
    n = data.n
    w_before = holdings.get_column("weight_before").to_numpy()
    w_after = holdings.get_column("weight_after").to_numpy()
    hb, ha = w_before[:n], w_after[:n]
    has_bench = bool(np.any(data.tradable.bench) or np.any(data.fixed.bench))

    def book(w: np.ndarray) -> dict:
        nonfut = holdings.get_column("type").to_numpy() != "Future"
        long = float(w[w > 0].sum())
        short = float(-w[w < 0].sum())
        return {"gross_pct": 100 * (long + short), "net_pct": 100 * (long - short),
                "long_pct": 100 * long, "short_pct": 100 * short,
                "cash_pct": 100 * (1 - float(w[nonfut].sum())),
                "positions": int((w != 0).sum()), "gross": (long + short) * nav,
                "net": (long - short) * nav, "long": long * nav, "short": short * nav}

    risk = {}
    after_k = flows_k if flows_k is not None and len(flows_k) else None
    after_f = solved.fx if len(solved.fx) else None
    for label, hv, kv, fv in (("before", hb, None, np.zeros(0)), ("after", ha, after_k,
                                                                  after_f)):
        r = _risk(data, hv, False, kv, fv)
        entry = {k: r[k] for k in ("total_pct", "factor_pct", "idio_pct")}
        if has_bench:
            entry["tracking_error_pct"] = _risk(data, hv, True, kv, fv)["total_pct"]
        risk[label] = entry
        risk[f"_{label}"] = r
    factors = [
        {"factor": name, "kind": kind,
         "exposure_before": float(risk["_before"]["exposures"][k]),
         "exposure_after": float(risk["_after"]["exposures"][k]),
         "risk_contribution_pct": float(100 * risk["_after"]["contribution"][k])}
        for k, (name, kind) in enumerate(zip(data.factor_names, data.factor_kinds))]
    del risk["_before"], risk["_after"]

    groups = {}
    for col in GROUP_COLUMNS:
        g = holdings.group_by(pl.col(col).fill_null("(none)").alias("group")).agg(
            net_before_pct=pl.col("weight_before").sum() * 100,
            net_after_pct=pl.col("weight_after").sum() * 100,
            gross_after_pct=pl.col("weight_after").abs().sum() * 100,
        ).sort("group")
        groups[col] = g.to_dicts()

    trade_w = holdings.get_column("trade_notional").to_numpy()[:n] / nav
    costs = _trade_costs(data, trade_w)
    if flows_k is not None and len(flows_k):
        costs["flows"] = data.flows.cost * np.abs(flows_k)
        costs["flow_premium_captured"] = -data.flows.gain * flows_k
    hs = data.horizon_scale
    carry = {
        "borrow": float(hs * data.borrow @ np.maximum(-ha, 0)),
        "financing": float(hs * data.financing @ np.maximum(ha, 0)),
        "dividends": float(-hs * data.dividend @ ha),
    }
    cost_bp = {k: float(v.sum() * 1e4) for k, v in costs.items()}
    cost_bp.update({k: v * 1e4 for k, v in carry.items()})
    adv_shares = uni.frame[data.tradable.rows].get_column("adv_shares").to_numpy()
    trade_shares = holdings.get_column("trade_shares").to_numpy()[:n]
    with np.errstate(divide="ignore", invalid="ignore"):
        days = np.where(adv_shares > 0, np.abs(trade_shares) / adv_shares, np.nan)
    traded = np.abs(trade_shares) > 0
    alpha_after = float(data.alpha @ ha)
    margin = _margin_summary(data, holdings, hb, ha, solved)
    return {
        "status": solved.status.value,
        "nav": nav, "numeraire": data.numeraire,
        "utility_bp": solved.objective * 1e4 if solved.status.has_solution else None,
        "alpha_bp": {"before": float(data.alpha @ hb) * 1e4, "after": alpha_after * 1e4},
        "risk": risk,
        "factors": factors,
        "groups": groups,
        "costs_bp": cost_bp,
        "costs": {k: v / 1e4 * nav for k, v in cost_bp.items()},
        "trading_cost_bp": cost_bp["linear"] + cost_bp["impact"] + cost_bp["impact_curve"]
        + cost_bp.get("flows", 0.0),
        "turnover_pct": float(np.abs(trade_w).sum() * 100),
        "turnover": float(np.abs(trade_w).sum() * nav),
        "trades": int(traded.sum()),
        "orders": None,  # filled by optimize()
        "book": {"before": book(w_before), "after": book(w_after)},
        "liquidity": {
            "max_trade_adv_days": float(np.nanmax(days[traded])) if traded.any() else 0.0,
            "trades_over_10pct_adv": int(np.nansum(days[traded] > 0.10)),
            "mean_trade_adv_pct": float(np.nanmean(days[traded]) * 100) if traded.any()
            else 0.0,
        },
        "margin": margin,
        "binding_constraints": int(solved.diagnostics.get_column("binding").sum()),
        "iterations": solved.raw.iterations,
        "notes": solved.notes,
    }


def optimize(uni: Universe, constraints: list, settings, solver: str = "auto",
             options=None) -> OptimizationResult:
    """Universe + constraints + settings -> the trader's result. Raises SpoInputError for
    bad constraints or settings; an infeasible problem is a result, not an error."""
    import time

    from core.model.data import problem_data
    from core.solvers.base import choose_solver

    choice = choose_solver(solver)
    t0 = time.perf_counter()
    data = problem_data(uni, settings)
    t1 = time.perf_counter()
    solved = solve_problem(data, constraints, settings, solver=choice.name, options=options)
    t_repair = time.perf_counter()
    discrete = None
    if solved.status.has_solution and needed(settings):
        solved, data, discrete = round_and_repair(data, list(constraints), settings, solved,
                                                   choice.name, options)
    k = None
    if solved.status.has_solution and data.flows is not None:
        # Flows settle in whole creation units (ETFs) or contracts (EFP): round them, then
        # re-solve with the flows fixed so every limit holds for what is actually sent.
        k = np.round(solved.flows / data.flows.unit_notional) * data.flows.unit_notional
        if np.abs(k - solved.flows).max() > 1e-12:
            fixed = replace(data, flows=replace(data.flows, lower=k, upper=k))
            repaired = solve_problem(fixed, constraints, settings, solver=choice.name,
                                     options=options)
            if repaired.status.has_solution:
                repaired.notes.append(
                    f"flows rounded to whole creation units or contracts and the rest "
                    f"re-solved; utility {1e4 * (repaired.objective - solved.objective):+.3f} "
                    "bp against the continuous solution")
                repaired.timings = {k_: solved.timings.get(k_, 0) + v
                                    for k_, v in repaired.timings.items()}
                # k stays the exact rounded flows; the solver holds them only to tolerance.
                solved, data = repaired, fixed
    repair_s = time.perf_counter() - t_repair
    t2 = time.perf_counter()
    h = solved.h if solved.status.has_solution else data.tradable.h0
    holdings = holdings_frame(uni, data, h, k)
    broken: list[dict] = []
    if solved.status.has_solution:
        holdings, broken = repair_lots(solved, data, holdings)
    trades, orders = trades_and_orders(holdings, data)
    summary = post_trade_summary(uni, data, holdings, trades, solved, k)
    summary["orders"] = orders.height
    summary["solver"] = {"name": solved.solver, "reason": choice.reason,
                         "status": solved.raw.message, "iterations": solved.raw.iterations}
    current = holdings.filter(pl.col("shares_before") != 0).select(
        "instrument_id", "ticker", "type", "currency", "price", shares="shares_before",
        notional="notional_before", weight="weight_before")
    optimal = holdings.filter((pl.col("shares_after") != 0) | (pl.col("shares_before") != 0))
    timings = {"problem_data_s": t1 - t0, **solved.timings,
               "repair_s": repair_s, "results_s": time.perf_counter() - t2}
    summary["timings"] = timings
    from core.model.flows import flows_frame

    flows = flows_frame(data.flows, k if k is not None else np.zeros(0), data.tradable.ids,
                        data.nav)
    summary["flows"] = flows.to_dicts()
    if discrete is not None:
        summary["discrete"] = discrete
    if solved.status.has_solution:
        summary["broken_by_rounding"] = broken
        solved.notes.extend(
            f"rounding to lots moves {b['name']} [{b['label']}] to {b['value']:.6g} "
            f"{b['unit']}, outside its bound by {b['excess']:.3g}" for b in broken)
    fx_trades = None
    if data.currencies is not None:
        from core.model.currency import fx_orders

        f = solved.fx if solved.status.has_solution else np.zeros(0)
        fx_trades = fx_orders(data.currencies, f, data.nav)  # empty f: no FX trades
        trade_w = holdings.get_column("trade_notional").to_numpy()[: data.n] / data.nav
        cur = data.currencies
        summary["cash"] = [
            {"currency": c, "before": b * data.nav, "after": a * data.nav}
            for c, b, a in zip(cur.codes, cur.cash0,
                               cur.cash_after(trade_w, f))]
        summary["fx_orders"] = fx_trades.to_dicts()
    return OptimizationResult(
        status=solved.status.value, solver=solved.solver, solver_reason=choice.reason,
        solved=solved, current=current, optimal=optimal, trades=trades, orders=orders,
        summary=summary, timings=timings, flows=flows, fx_orders=fx_trades)
