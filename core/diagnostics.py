"""Validation diagnostics: row-level problems that do not stop a load.

A diagnostic is a row of (severity, code, instrument, table, message). `error` means the
instrument cannot be traded or valued as given; `warning` means it can, with a caveat the
trader should see; `info` is context.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

import polars as pl


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class Code(StrEnum):
    MISSING_RISK = "missing_risk"
    MISSING_COST = "missing_cost"
    MISSING_LIQUIDITY = "missing_liquidity"
    MISSING_MARGIN = "missing_margin"
    MISSING_PRICE = "missing_price"
    INVALID_SYMBOL = "invalid_symbol"
    UNHEDGEABLE_SYNTHETIC = "unhedgeable_synthetic"
    MISMATCHED_BASKET = "mismatched_basket_weights"
    ZERO_PRICE = "zero_price"
    STALE_PRICE = "stale_price"
    UNKNOWN_CURRENCY = "unknown_currency"
    CURRENCY_MISMATCH = "currency_mismatch"
    DUPLICATE_ID = "duplicate_id"
    UNKNOWN_INSTRUMENT = "unknown_instrument"
    OUT_OF_RANGE = "out_of_range"
    MISSING_VALUE = "missing_value"
    INVALID_VALUE = "invalid_value"
    EXPIRED_CONTRACT = "expired_contract"
    BENCHMARK_WEIGHTS = "benchmark_weights"


SCHEMA = {
    "severity": pl.String(),
    "code": pl.String(),
    "instrument_id": pl.String(),
    "table": pl.String(),
    "message": pl.String(),
}

_SEVERITY_ORDER = {Severity.ERROR.value: 0, Severity.WARNING.value: 1, Severity.INFO.value: 2}


class Diagnostics:
    """Collects diagnostics while loading and building; `frame()` gives the table."""

    def __init__(self) -> None:
        self._rows: list[tuple[str, str, str | None, str, str]] = []
        self._frames: list[pl.DataFrame] = []

    def add(self, severity: Severity, code: Code, table: str, message: str,
            instrument_id: str | None = None) -> None:
        self._rows.append((severity.value, code.value, instrument_id, table, message))

    def add_many(self, severity: Severity, code: Code, table: str,
                 instrument_ids: Iterable[str | None], messages: Iterable[str] | str) -> None:
        """Vectorised add: one row per id, with one message or a message per id."""
        ids = list(instrument_ids)
        if not ids:
            return
        msgs = [messages] * len(ids) if isinstance(messages, str) else list(messages)
        self._frames.append(pl.DataFrame(
            {
                "severity": [severity.value] * len(ids),
                "code": [code.value] * len(ids),
                "instrument_id": ids,
                "table": [table] * len(ids),
                "message": msgs,
            },
            schema=SCHEMA,
        ))

    def extend(self, other: "Diagnostics") -> None:
        self._rows.extend(other._rows)
        self._frames.extend(other._frames)

    def frame(self) -> pl.DataFrame:
        parts = [pl.DataFrame(self._rows, schema=SCHEMA, orient="row")] + self._frames
        out = pl.concat(parts, how="vertical")
        rank = pl.col("severity").replace_strict(_SEVERITY_ORDER, default=3, return_dtype=pl.Int8)
        return out.sort(rank, "code", "instrument_id", nulls_last=True, maintain_order=True)

    def __len__(self) -> int:
        return len(self._rows) + sum(f.height for f in self._frames)


def error_count(diagnostics: pl.DataFrame) -> int:
    return diagnostics.filter(pl.col("severity") == Severity.ERROR.value).height
