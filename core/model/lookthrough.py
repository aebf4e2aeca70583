"""Look-through: ETFs, futures and synthetic baskets seen as their constituents.

Over the combined index of tradable then fixed instruments, exposures are e = E h with
E = I - D + M: D removes a mapped basket's own row and M[c, b] is the notional of
constituent c carried by one unit of notional of basket b (shares_per_unit x constituent
unit value / basket unit value, all in the numeraire). A long ETF against a short basket
then nets to almost nothing constituent by constituent, and keeps only its residual: the
basket's own specific variance (its tracking error to the constituents) on h_b.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.sparse as sp


@dataclass
class LookThrough:
    E: sp.csr_matrix  # n_all x n_all, rows = exposures, columns = positions
    mapped: np.ndarray  # bool per instrument of the combined index: a basket mapped away
    residual: np.ndarray  # specific variance left on a mapped basket's own position

    @property
    def active(self) -> bool:
        return bool(self.mapped.any())


def identity(n_all: int) -> LookThrough:
    return LookThrough(sp.identity(n_all, format="csr"), np.zeros(n_all, bool),
                       np.zeros(n_all))


def build_lookthrough(ids: np.ndarray, baskets: pl.DataFrame, unit_value: np.ndarray,
                      valid: np.ndarray, idio: np.ndarray) -> LookThrough:
    """ids: instrument ids of the combined index; valid: look-through usable per id."""
    n = len(ids)
    index = {iid: i for i, iid in enumerate(ids.tolist())}
    legs = baskets.filter(pl.col("basket_id").is_in(ids[valid].tolist())
                          & pl.col("constituent_id").is_in(ids.tolist())
                          & pl.col("leg_value").is_not_null())
    if legs.is_empty():
        return identity(n)
    b = np.fromiter((index[x] for x in legs.get_column("basket_id")), np.int64, legs.height)
    c = np.fromiter((index[x] for x in legs.get_column("constituent_id")), np.int64,
                    legs.height)
    w = legs.get_column("leg_value").to_numpy() / unit_value[b]
    mapped = np.zeros(n, bool)
    mapped[np.unique(b)] = True
    keep = np.flatnonzero(~mapped)
    rows = np.concatenate([keep, c])
    cols = np.concatenate([keep, b])
    vals = np.concatenate([np.ones(len(keep)), w])
    E = sp.csr_matrix((vals, (rows, cols)), shape=(n, n))
    return LookThrough(E, mapped, np.where(mapped, idio, 0.0))
