"""Round and repair: minimum trade and holding sizes, maximum positions and trades, lots.

These are not convex, so with Clarabel the relaxation is solved first, then names are
decided (a trade below its minimum is dropped, the smallest positions beyond max_positions
are closed, the smallest trades beyond max_trades are dropped, positions below the minimum
holding are closed), the decisions are fixed as constraints and the continuous rest is
re-solved; this repeats while a re-solve creates new small trades (at most `rounds` times).
The utility given up against the relaxation and every name decided are reported.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl

from core.model.data import ProblemData
from core.optimize import SolvedProblem, solve_problem

TINY = 1e-6  # fraction of NAV below which a trade or position is solver noise


def apply(data: ProblemData, rows: list[dict], freeze_others: np.ndarray | None) -> ProblemData:
    """The problem with decisions fixed: dropped trades and frozen names hold their
    position (one `discrete:no_trade` block), closed positions go to zero."""
    ids = list(data.tradable.ids)
    frozen = np.zeros(data.n, bool) if freeze_others is None else freeze_others.copy()
    closed = np.zeros(data.n, bool)
    for r in rows:
        i = ids.index(r["instrument_id"])
        if r["action"].startswith("trade dropped"):
            frozen[i] = True
        else:
            closed[i] = True
    frozen &= ~closed
    return replace(data, extra={**data.extra, "discrete_frozen": frozen,
                                "discrete_closed": closed})


def needed(settings) -> bool:
    d = settings.discrete
    return bool(d.min_trade_pct or d.min_holding_pct or d.min_trade
                or d.max_positions is not None or d.max_trades is not None)


def decide(data: ProblemData, h: np.ndarray, trade: np.ndarray, settings,
           decided: set[str]) -> tuple[list[dict], np.ndarray | None]:
    """New decisions for a solution (names already decided are left alone), and, when
    max_trades binds, the names frozen because they are not among the kept trades."""
    d = settings.discrete
    ids = data.tradable.ids
    h0 = data.tradable.h0
    out: list[dict] = []
    free = np.array([i not in decided for i in ids])

    min_trade = np.full(data.n, d.min_trade_pct / 100.0)
    for iid, pct in d.min_trade.items():
        hit = np.flatnonzero(ids == iid)
        min_trade[hit] = np.maximum(min_trade[hit], pct / 100.0)
    # Every trade that would become an order: at least half a lot and above solver noise.
    lot_value = data.lot_size * data.unit_value / data.nav
    real = (np.abs(trade) >= np.maximum(0.5 * lot_value, TINY))
    small = free & real & (np.abs(trade) < min_trade)
    for i in np.flatnonzero(small):
        out.append({"instrument_id": ids[i], "action": "trade dropped: below minimum trade",
                    "size_pct": 100 * trade[i]})
    kept = free & real & ~small

    freeze = None
    if d.max_trades is not None and kept.sum() > d.max_trades:
        order = np.flatnonzero(kept)[np.argsort(-np.abs(trade[kept]))]
        for i in order[d.max_trades:]:
            out.append({"instrument_id": ids[i], "action": "trade dropped: max_trades",
                        "size_pct": 100 * trade[i]})
            kept[i] = False
        # Keep the best names and freeze the rest, or the re-solve moves trading elsewhere.
        freeze = free & ~kept
    after = np.where(small | (free & real & ~kept), h0, h)

    closing = np.zeros(data.n, bool)
    if d.min_holding_pct:
        closing |= free & (np.abs(after) > TINY) & (np.abs(after) < d.min_holding_pct / 100.0)
    if d.max_positions is not None:
        held = np.flatnonzero((np.abs(after) > TINY) & ~closing)
        n_fixed = int((np.abs(data.fixed.h0) > TINY).sum())
        room = max(d.max_positions - n_fixed, 0)
        if len(held) > room:
            order = held[np.argsort(np.abs(after[held]))]  # smallest first
            closable = [i for i in order if free[i]]
            for i in closable[: len(held) - room]:
                closing[i] = True
    for i in np.flatnonzero(closing):
        reason = ("position closed: below minimum holding"
                  if d.min_holding_pct and abs(after[i]) < d.min_holding_pct / 100.0
                  else "position closed: max_positions")
        out.append({"instrument_id": ids[i], "action": reason, "size_pct": 100 * after[i]})
    return out, freeze


def round_and_repair(data: ProblemData, constraints: list, settings, solved: SolvedProblem,
                     solver: str, options, rounds: int = 3
                     ) -> tuple[SolvedProblem, ProblemData, dict]:
    """Decide whole names, fix them, re-solve the rest (up to `rounds` times)."""
    relaxed = solved.objective
    decided: dict[str, dict] = {}
    frozen = None
    fixed = data
    for _ in range(rounds):
        new, freeze = decide(data, solved.h, data.market_trade(solved.h, solved.flows),
                             settings, set(decided))
        if not new:
            break
        decided.update({r["instrument_id"]: r for r in new})
        if freeze is not None:
            frozen = freeze if frozen is None else (frozen | freeze)
        attempt_data = apply(data, list(decided.values()), frozen)
        attempt = solve_problem(attempt_data, constraints, settings, solver=solver,
                                options=options)
        if not attempt.status.has_solution:
            solved.notes.append("the discrete decisions made the problem infeasible; the "
                                "relaxation's solution is kept")
            break
        attempt.timings = {k: solved.timings.get(k, 0) + v for k, v in attempt.timings.items()}
        solved, fixed = attempt, attempt_data
    given_up = (relaxed - solved.objective) * 1e4
    if decided:
        solved.notes.append(f"{len(decided)} names decided by round-and-repair; "
                            f"{given_up:.3f} bp of utility given up against the relaxation")
    return solved, fixed, {"relaxation_utility_bp": relaxed * 1e4,
                           "utility_bp": solved.objective * 1e4, "given_up_bp": given_up,
                           "names": list(decided.values())}


def broken_rows(solved: SolvedProblem, h: np.ndarray) -> pl.DataFrame:
    """Hard rows that holdings h break and the solver's own solution did not.

    Rows already outside their bound at the continuous solution are the legs' relaxation
    (reported in the notes and diagnostics), not rounding. Flows and FX trades come from
    the solution; the tolerance (1e-4 of the bound's size) covers fractional basket shares.
    """
    from core.optimize import diagnostics

    size = pl.max_horizontal(pl.lit(1.0), pl.col("upper").abs().fill_null(0),
                             pl.col("lower").abs().fill_null(0))
    ok_before = solved.diagnostics.select(
        "name", "label", was_ok=pl.col("slack").fill_null(0) >= -1e-4 * size)
    diag = diagnostics(solved.model, h, None, solved.raw.x)
    return diag.join(ok_before, on=["name", "label"], how="left").filter(
        ~pl.col("soft") & pl.col("was_ok").fill_null(True)
        & (pl.col("slack") < -1e-4 * size)).drop("was_ok")


def repair_lots(solved: SolvedProblem, data: ProblemData, holdings: pl.DataFrame,
                 passes: int = 4) -> tuple[pl.DataFrame, list[dict]]:
    """Round the other way, one lot at a time, where rounding broke a hard constraint.

    For each broken row of a constraint that sums positions or trades, the names whose
    rounding pushed the value past the bound are rounded the other way, largest push
    first, until the row holds. What cannot be mended this way is returned by name.
    """

    n, nav = data.n, data.nav
    uv = holdings.get_column("unit_value").to_numpy()[:n]
    lot = holdings.get_column("lot_size").to_numpy()[:n].astype(float)
    before = holdings.get_column("shares_before").to_numpy()[:n]
    flow = holdings.get_column("flow_shares").to_numpy()[:n]
    cont = holdings.get_column("shares_target").to_numpy()[:n] - before - flow
    trade = holdings.get_column("trade_shares").to_numpy()[:n].copy()
    blocks = {b.spec.name: b for b in solved.model.blocks}
    summed = ("linear", "abs", "abs_trade", "pos", "neg")
    broken = pl.DataFrame()
    for _ in range(passes):
        h = (before + flow + trade) * uv / nav
        broken = broken_rows(solved, h)
        if broken.is_empty():
            break
        changed = False
        h_cont = (before + flow + cont) * uv / nav
        for row in broken.iter_rows(named=True):
            block = blocks.get(row["name"])
            if block is None or block.transform not in summed:
                continue
            r = int(np.flatnonzero(block.labels.astype(str) == row["label"])[0])
            S = block.S[r].toarray().ravel()
            upper = row["upper"] is not None and row["value"] > row["upper"]
            rounded_part = {"linear": h, "abs": np.abs(h), "pos": np.maximum(h, 0),
                            "neg": np.maximum(-h, 0),
                            "abs_trade": np.abs(trade) * uv / nav}[block.transform]
            cont_part = {"linear": h_cont, "abs": np.abs(h_cont),
                         "pos": np.maximum(h_cont, 0), "neg": np.maximum(-h_cont, 0),
                         "abs_trade": np.abs(cont) * uv / nav}[block.transform]
            push = S * (rounded_part - cont_part) * (1.0 if upper else -1.0)
            need = (-row["slack"]) * block.scale[r]
            for i in np.argsort(-push):
                if push[i] <= 0 or need <= 0:
                    break
                trade[i] -= np.sign(trade[i] - cont[i]) * lot[i]
                need -= 2 * push[i]  # flipping a lot undoes its push and adds the other side
                changed = True
        if not changed:
            break
    if not broken.is_empty():
        # Rows were mended in place; the last pass reports what is still broken.
        h = (before + flow + trade) * uv / nav
        broken = broken_rows(solved, h)
    full = holdings.get_column("trade_shares").to_numpy().copy()
    full[:n] = trade
    uv_all = holdings.get_column("unit_value").to_numpy()
    holdings = holdings.with_columns(
        trade_shares=pl.Series(full),
        shares_after=pl.Series(holdings.get_column("shares_before").to_numpy()
                               + holdings.get_column("flow_shares").to_numpy() + full),
    ).with_columns(notional_after=pl.col("shares_after") * pl.col("unit_value"),
                   trade_notional=pl.Series(full * uv_all)).with_columns(
        weight_after=pl.col("notional_after") / nav)
    still = [{"name": r["name"], "label": r["label"], "value": r["value"], "unit": r["unit"],
              "excess": -r["slack"]} for r in broken.head(20).iter_rows(named=True)]
    return holdings, still
