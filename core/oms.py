"""The order file for the OMS: symbol, side, shares (platform spec section 14).

Sides are BUY, SELL, SELL_SHORT and BUY_TO_COVER for equities and ETFs (a trade through
zero is two orders, as venues require); futures are BUY or SELL in contracts.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from core.atomic import atomic_write

SIDES = ("BUY", "SELL", "SELL_SHORT", "BUY_TO_COVER")


def write_orders(orders: pl.DataFrame, path: str | Path) -> Path:
    bad = orders.filter(~pl.col("side").is_in(SIDES) | (pl.col("shares") <= 0))
    if bad.height:
        raise ValueError(f"refusing to write invalid orders: {bad.head(3).to_dicts()}")
    return atomic_write(path, lambda tmp: orders.select("symbol", "side", "shares")
                        .write_csv(tmp))
