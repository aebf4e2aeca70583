"""AppState: everything one run holds (platform spec section 3), usable without a screen.

The console, `spo` sub-commands and the MCP server all drive a run through this object, so
what a screen shows can always be reproduced headless.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

import polars as pl

# RunContext moved to core.context (the run log needs it without the console); re-exported
# here so existing imports keep working.
from core.context import RunContext, new_run_context  # noqa: F401
from core.data.loaders import DataSet, check_references, load_intraday, load_static, \
    resolve_paths
from core.diagnostics import Diagnostics
from core.settings import RunConfig
from core.universe import Universe, build_universe


@dataclass
class AppState:
    config: RunConfig
    run_context: RunContext | None = None
    static_snapshot: dict[str, pl.DataFrame] | None = None
    intraday_state: dict[str, pl.DataFrame] | None = None
    universe: Universe | None = None
    constraints: dict[str, pl.DataFrame] = field(default_factory=dict)
    optimization_settings: dict[str, Any] = field(default_factory=dict)
    optimization_result: dict[str, pl.DataFrame] | None = None
    constraint_diagnostics: pl.DataFrame | None = None
    timings: dict[str, float] = field(default_factory=dict)
    dataset: DataSet | None = None
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("spo.run"))
    clock: Callable[[], dt.datetime] = dt.datetime.now
    token: Callable[[], str] = lambda: uuid.uuid4().hex[:6]  # run-id suffix; fixed in tests
    # Start-of-day diagnostics are kept so an intraday reload does not lose them.
    _static_diagnostics: Diagnostics = field(default_factory=Diagnostics, repr=False)

    @property
    def numeraire(self) -> str:
        return self.config.numeraire

    @property
    def fx_rates(self) -> dict[str, float]:
        return self.universe.fx if self.universe else {}

    @property
    def run_id(self) -> str | None:
        return self.run_context.run_id if self.run_context else None

    def _paths(self):
        return resolve_paths(self.config.data_dir(), self.config.file_overrides())

    def load(self) -> Universe:
        """Load start-of-day and intraday data and build the universe."""
        self.run_context = new_run_context(self.config, self.clock, self.token)
        t0 = time.perf_counter()
        paths = self._paths()
        static = load_static(paths)
        t1 = time.perf_counter()
        intraday = load_intraday(paths)
        t2 = time.perf_counter()
        self.timings = {"load_static_s": t1 - t0, "load_intraday_s": t2 - t1}
        return self._rebuild(static, intraday)

    def reload_intraday(self) -> pl.DataFrame:
        """Re-read positions and cash only; returns what changed, one row per instrument."""
        if self.dataset is None:
            raise RuntimeError("load() must run before reload_intraday()")
        before = self.universe.frame if self.universe is not None else None
        t0 = time.perf_counter()
        intraday = load_intraday(self._paths())
        self.timings["load_intraday_s"] = time.perf_counter() - t0
        static = DataSet(
            tables={n: t for n, t in self.dataset.tables.items() if n not in intraday.tables},
            diagnostics=self._static_diagnostics)
        self._rebuild(static, intraday)
        return intraday_changes(before, self.universe.frame)

    def _rebuild(self, static: DataSet, intraday: DataSet) -> Universe:
        self._static_diagnostics = static.diagnostics
        ds = DataSet(tables={**static.tables, **intraday.tables})
        ds.diagnostics.extend(static.diagnostics)
        ds.diagnostics.extend(intraday.diagnostics)
        check_references(ds)
        t0 = time.perf_counter()
        self.universe = build_universe(ds, self.config)
        self.timings["universe_s"] = time.perf_counter() - t0
        self.dataset = ds
        self.static_snapshot = {n: t.frame for n, t in ds.tables.items()
                                if n not in intraday.tables}
        self.intraday_state = {n: t.frame for n, t in intraday.tables.items()}
        self.logger.info("universe built: %d rows, NAV %.0f %s", self.universe.frame.height,
                         self.universe.nav, self.numeraire)
        return self.universe


def intraday_changes(before: pl.DataFrame | None, after: pl.DataFrame) -> pl.DataFrame:
    """Instruments whose shares or price moved between two universes (cash included)."""
    cols = ["instrument_id", "ticker", "position_shares", "price", "position_notional"]
    new = after.select(cols)
    if before is None:
        old = new.clear()
    else:
        old = before.select(cols)
    joined = old.join(new, on="instrument_id", how="full", suffix="_after", coalesce=True,
                      maintain_order="left_right")
    return joined.select(
        "instrument_id",
        ticker=pl.coalesce("ticker_after", "ticker"),
        shares_before=pl.col("position_shares").fill_null(0.0),
        shares_after=pl.col("position_shares_after").fill_null(0.0),
        price_before=pl.col("price"),
        price_after=pl.col("price_after"),
        notional_change=pl.col("position_notional_after").fill_null(0.0)
        - pl.col("position_notional").fill_null(0.0),
    ).with_columns(shares_change=pl.col("shares_after") - pl.col("shares_before")).filter(
        (pl.col("shares_change") != 0)
        | (pl.col("price_before").ne_missing(pl.col("price_after")))
    )
