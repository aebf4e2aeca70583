"""ETF create/redeem and EFP: moving a basket and its constituents without the market.

A flow k_b along basket b adds k_b to the basket's position and takes M[c, b] k_b from each
constituent c (the look-through weights): creating ETF units delivers the basket and
receives the ETF; an EFP exchanges a future for its basket. Positions then change by the
market trade m plus V k, so u >= |h - h0 - V k| and market costs fall on m only, while a
flow pays its fee and slippage per unit of |k| and has no market impact.
Only baskets whose every leg is tradable can flow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.sparse as sp

from core.model.lookthrough import LookThrough


@dataclass
class Flows:
    V: sp.csc_matrix  # n_tradable x n_flows
    basket: np.ndarray  # tradable index of each flow's basket
    kind: np.ndarray  # "create_redeem" or "efp"
    cost: np.ndarray  # fraction of flow notional
    lower: np.ndarray  # NAV fractions; -inf for none
    upper: np.ndarray
    unit_notional: np.ndarray  # NAV fraction of one creation unit, or one contract
    gain: np.ndarray  # value gained per unit of flow: 1 - basket value / price (the premium)

    @property
    def size(self) -> int:
        return self.V.shape[1]


def build_flows(lt: LookThrough, n_tradable: int, types: np.ndarray,
                unit_value: np.ndarray, creation_unit: np.ndarray, nav: float,
                synthetics) -> Flows | None:
    """types, unit_value and creation_unit are per tradable instrument."""
    if not (synthetics.allow_create_redeem or synthetics.allow_efp):
        return None
    E = sp.csc_matrix(lt.E)
    cols, baskets, kinds, costs, lows, ups, units, gains = [], [], [], [], [], [], [], []
    for b in np.flatnonzero(lt.mapped[:n_tradable]):
        kind = {"ETF": "create_redeem", "Future": "efp"}.get(str(types[b]))
        if kind is None or (kind == "create_redeem" and not synthetics.allow_create_redeem) \
                or (kind == "efp" and not synthetics.allow_efp):
            continue
        legs = E[:, b]
        if legs.indices.size == 0 or legs.indices.max() >= n_tradable:
            continue  # a leg is not tradable: the basket cannot be delivered
        col = sp.csc_matrix(([1.0], ([b], [0])), shape=(n_tradable, 1)) - legs[:n_tradable]
        # Creating one unit of ETF notional consumes sum(M) of basket notional: a rich ETF
        # (price above basket) gains the premium; EFPs trade at the basis, priced by cost.
        gains.append(1.0 - float(legs.sum()) if kind == "create_redeem" else 0.0)
        cols.append(col)
        baskets.append(b)
        kinds.append(kind)
        if kind == "create_redeem":
            costs.append(synthetics.create_redeem_cost_bps * 1e-4)
            cap = synthetics.max_redeem_notional
            lows.append(-cap / nav if cap is not None else -np.inf)
            cu = creation_unit[b] if np.isfinite(creation_unit[b]) else 1.0
            units.append(cu * unit_value[b] / nav)
        else:
            costs.append(synthetics.efp_cost_bps * 1e-4)
            lows.append(-np.inf)
            units.append(unit_value[b] / nav)
        ups.append(np.inf)
    if not cols:
        return None
    return Flows(sp.csc_matrix(sp.hstack(cols)), np.array(baskets), np.array(kinds),
                 np.array(costs), np.array(lows), np.array(ups), np.array(units),
                 np.array(gains))


def flows_frame(flows: Flows | None, k: np.ndarray, ids: np.ndarray, nav: float) -> pl.DataFrame:
    """The flows of a solution: basket, kind, notional, units (creation units or contracts)."""
    schema = {"instrument_id": pl.String, "kind": pl.String, "direction": pl.String,
              "notional": pl.Float64, "units": pl.Float64}
    if flows is None or not len(k):
        return pl.DataFrame(schema=schema)
    keep = np.abs(k) > 1e-9
    direction = np.where(
        flows.kind == "create_redeem", np.where(k > 0, "CREATE", "REDEEM"),
        np.where(k > 0, "EFP_BUY_FUTURE", "EFP_SELL_FUTURE"))
    return pl.DataFrame({
        "instrument_id": ids[flows.basket][keep], "kind": flows.kind[keep],
        "direction": direction[keep], "notional": (k * nav)[keep],
        "units": (k / flows.unit_notional)[keep]}, schema=schema)
