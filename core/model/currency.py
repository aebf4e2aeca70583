"""Cash per currency, self-financing trades and the FX trades they need.

Post-trade cash in currency j (fractions of NAV, in the numeraire):

    c_j = c0_j - sum over non-futures i in j of (h_i - h0_i) + f_j,   sum_j f_j = 0

f_j is the FX bought into currency j. Futures settle variation margin, not notional, so
they do not move cash. FX costs `fx_cost_bps` per unit of |f|, so the solver only converts
what a cash band (`currency_cash` constraints) requires.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.sparse as sp


@dataclass
class Currencies:
    codes: np.ndarray  # currency codes with a cash row or a tradable instrument
    cash0: np.ndarray  # current cash per currency, fraction of NAV in the numeraire
    index: np.ndarray  # per tradable instrument: its currency's position in codes
    settles: np.ndarray  # per tradable instrument: moves cash when traded (not a future)
    fx: np.ndarray  # numeraire per unit of each currency
    numeraire: str

    @property
    def size(self) -> int:
        return len(self.codes)

    def membership(self) -> sp.csr_matrix:
        """currencies x tradable: 1 where trading the instrument moves that currency's cash."""
        n = len(self.index)
        return sp.csr_matrix((np.ones(int(self.settles.sum())),
                              (self.index[self.settles], np.flatnonzero(self.settles))),
                             shape=(self.size, n))

    def cash_after(self, market_trade: np.ndarray, f: np.ndarray | None) -> np.ndarray:
        """Cash per currency after the market trades (in-kind flows move no cash)."""
        spend = np.zeros(self.size)
        np.add.at(spend, self.index[self.settles], market_trade[self.settles])
        return self.cash0 - spend + (f if f is not None and len(f) else 0.0)


def build_currencies(frame: pl.DataFrame, tradable_rows: np.ndarray, nav: float,
                     fx: dict[str, float], numeraire: str) -> Currencies:
    cash = frame.filter(pl.col("is_cash"))
    sub = frame[tradable_rows]
    codes = sorted(set(cash.get_column("currency").to_list())
                   | set(sub.get_column("currency").drop_nulls().to_list()) | {numeraire})
    pos = {c: i for i, c in enumerate(codes)}
    cash0 = np.zeros(len(codes))
    for ccy, value in zip(cash.get_column("currency"), cash.get_column("position_value")):
        cash0[pos[ccy]] += value / nav
    index = np.array([pos[c] for c in sub.get_column("currency").to_list()], dtype=np.int64)
    settles = ~sub.get_column("is_future").to_numpy()
    return Currencies(np.array(codes, dtype=object), cash0, index, settles,
                      np.array([fx.get(c, np.nan) for c in codes]), numeraire)


def fx_orders(cur: Currencies, f: np.ndarray, nav: float, tol: float = 1e-9) -> pl.DataFrame:
    """FX trades against the numeraire: currency_pair, side (of the first currency), notional
    in the first currency."""
    schema = {"currency_pair": pl.String, "side": pl.String, "notional": pl.Float64,
              "notional_numeraire": pl.Float64}
    rows = []
    for code, amount, rate in zip(cur.codes, f, cur.fx):
        if code == cur.numeraire or abs(amount) <= tol:
            continue
        rows.append((f"{code}{cur.numeraire}", "BUY" if amount > 0 else "SELL",
                     abs(amount) * nav / rate, abs(amount) * nav))
    return pl.DataFrame(rows, schema=schema, orient="row")
