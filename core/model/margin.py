"""Margin with hedge credit (platform spec section 7; DESIGN.md section 4).

Positions split as h = r + V p: the columns of V are recognized hedges (one unit of a basket
against its constituents, from the look-through), p the hedged amounts. Margin is

    min over p of  sum_i rate_i |r_i|  +  sum_k hedge_rate_k |p_k|

an infimal convolution, so it stays convex: a tight index arbitrage margins at the hedge
rate (the basket's `synthetic_margin_override`) instead of the sum of both legs' rates.
A basket without an override is not recognized as a hedge and gets no credit, and credit
reaches at most the basket position held (|p_k| <= |h_basket|): a basket of stocks alone is
not margined as if it were the ETF.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog


@dataclass
class Hedges:
    V: sp.csc_matrix  # n_all x n_hedges: +1 on the basket, -M[c, b] on its constituents
    rate: np.ndarray  # hedge margin rate per hedge, fraction of hedged notional
    basket: np.ndarray  # index of each hedge's basket in the combined index

    @property
    def size(self) -> int:
        return self.V.shape[1]

    def support(self) -> np.ndarray:
        """Instruments of the combined index that some hedge touches."""
        return np.flatnonzero(self.V.getnnz(axis=1))


def build_hedges(E: sp.csr_matrix, mapped: np.ndarray, override: np.ndarray) -> Hedges | None:
    """Hedges for mapped baskets that carry a hedge margin rate (override not NaN)."""
    baskets = np.flatnonzero(mapped & ~np.isnan(override))
    if not len(baskets):
        return None
    cols = sp.csc_matrix(E)[:, baskets]  # M[:, b] (the basket's own row was mapped away)
    V = sp.csc_matrix(sp.identity(E.shape[0], format="csc")[:, baskets] - cols)
    return Hedges(V, override[baskets], baskets)


def margin_without_credit(rate: np.ndarray, h_all: np.ndarray) -> float:
    return float(rate @ np.abs(h_all))


def margin_used(rate: np.ndarray, h_all: np.ndarray, hedges: Hedges | None) -> tuple[float,
                                                                                      np.ndarray]:
    """Margin of positions h_all with the best hedge decomposition, and that decomposition p.

    A linear program over the instruments the hedges touch: p free, a >= |h - V p|,
    w >= |p|; everything else margins at its own rate.
    """
    gross = margin_without_credit(rate, h_all)
    if hedges is None:
        return gross, np.zeros(0)
    held = np.flatnonzero(h_all[hedges.basket] != 0)
    if not len(held):
        return gross, np.zeros(hedges.size)
    Vh = sp.csc_matrix(hedges.V[:, held])
    sup = np.flatnonzero(Vh.getnnz(axis=1))
    V = sp.csr_matrix(Vh[sup])
    hs, rs = h_all[sup], rate[sup]
    m, k = V.shape
    cap = np.abs(h_all[hedges.basket[held]])
    # x = [p (k), a (m), w (k)]; minimize rs'a + rate_h'w
    c = np.concatenate([np.zeros(k), rs, hedges.rate[held]])
    eye_m, eye_k = sp.identity(m), sp.identity(k)
    A = sp.bmat([[-V, -eye_m, None],     # h - V p <= a
                 [V, -eye_m, None],      # -(h - V p) <= a
                 [eye_k, None, -eye_k],  # p <= w
                 [-eye_k, None, -eye_k]], format="csc")  # -p <= w
    b = np.concatenate([-hs, hs, np.zeros(2 * k)])
    bounds = ([(-cp, cp) for cp in cap] + [(0, None)] * m + [(0, cp) for cp in cap])
    res = linprog(c, A_ub=A, b_ub=b, bounds=bounds, method="highs")
    p = np.zeros(hedges.size)
    if res.status != 0:
        return gross, p
    p[held] = res.x[:k]
    outside = gross - margin_without_credit(rs, hs)
    return float(res.fun + outside), p
