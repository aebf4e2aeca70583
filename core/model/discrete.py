"""Round and repair: minimum trade and holding sizes, maximum positions and trades.

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

from core.model.data import ProblemData

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
