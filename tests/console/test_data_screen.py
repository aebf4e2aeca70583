"""Data & Universe, driven from the keyboard as a trader would."""

from __future__ import annotations

import datetime as dt
import shutil

import polars as pl
import pytest

from console.app import SpoApp
from core.settings import RunConfig
from sample_data import SAMPLE_AS_OF, SAMPLE_DIR

CLOCK = lambda: dt.datetime(2026, 11, 20, 15, 31)  # noqa: E731
SIZE = (100, 30)


def app_for(config: RunConfig | None = None) -> SpoApp:
    return SpoApp(config, clock=CLOCK, token=lambda: "abc123")


async def loaded(pilot):
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    return pilot.app.query_one("#data-universe")


async def test_opens_on_the_universe_with_the_status_line():
    app = app_for()
    async with app.run_test(size=SIZE) as pilot:
        du = await loaded(pilot)
        assert du.current == "universe" and du.shown.height == 2004
        status = str(app.query_one("#status").render())
        assert "DEMO-20261120-153100-abc123" in status and "NAV 150.0m USD" in status
        assert "Clarabel" in status and "no solve yet" in status
        tables = [o.id for o in du.query_one("#tables").options]
        assert tables[:2] == ["universe", "diagnostics"] and "positions" in tables


async def test_filter_sort_and_clear_from_the_keyboard():
    app = app_for()
    async with app.run_test(size=SIZE) as pilot:
        du = await loaded(pilot)
        await pilot.press("slash", *"etf00", "enter")
        await pilot.pause()
        assert du.shown.height == 99  # ETF0001..ETF0099, case-insensitive
        assert du.shown.get_column("instrument_id").str.starts_with("ETF00").all()
        await pilot.press("s")  # by the cursor's column: instrument_id, ascending
        await pilot.pause()
        ids = du.shown.get_column("instrument_id").to_list()
        assert ids == sorted(ids)
        await pilot.press("s")  # again: descending
        await pilot.pause()
        assert du.shown.get_column("instrument_id").to_list() == sorted(ids, reverse=True)
        await pilot.press("escape")
        await pilot.pause()
        assert du.shown.height == 2004 and du.filter_text == ""


async def test_diagnostic_jumps_to_its_instrument():
    app = app_for()
    async with app.run_test(size=SIZE) as pilot:
        du = await loaded(pilot)
        du.query_one("#tables").focus()
        await pilot.press("down", "enter")
        await pilot.pause()
        assert du.current == "diagnostics"
        first = du.shown.item(0, "instrument_id")
        await pilot.press("j")
        await pilot.pause()
        grid = du.query_one("#grid")
        assert du.current == "universe"
        assert du.shown.item(grid.cursor_row, "instrument_id") == first


async def test_intraday_reload_reports_changes(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(SAMPLE_DIR, data, ignore=shutil.ignore_patterns("*.py", "__pycache__",
                                                                    "scenarios"))
    app = app_for(RunConfig(data={"dir": str(data)}, as_of=SAMPLE_AS_OF))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await loaded(pilot)
        pos = pl.read_parquet(data / "positions.parquet")
        held = pos.filter(pl.col("position_shares") > 0).item(0, "instrument_id")
        pos.with_columns(position_shares=pl.when(pl.col("instrument_id") == held)
                         .then(pl.col("position_shares") * 2)
                         .otherwise(pl.col("position_shares"))).write_parquet(
            data / "positions.parquet")
        await pilot.press("ctrl+l")
        await loaded(pilot)
        messages = [n.message for n in app._notifications]
        assert any("1 instrument(s) changed" in m for m in messages)
        # What changed is the table shown, and j jumps from it to the instrument.
        du = app.query_one("#data-universe")
        assert du.current == "intraday changes"
        row = du.shown.row(0, named=True)
        assert row["instrument_id"] == held
        assert row["shares_after"] == 2 * row["shares_before"]
        await pilot.press("j")
        assert du.current == "universe"
        grid = du.query_one("#grid")
        assert du.shown.item(grid.cursor_row, "instrument_id") == held


async def test_a_broken_file_is_a_notification_not_a_crash(tmp_path):
    from textual.worker import WorkerFailed

    data = tmp_path / "data"
    shutil.copytree(SAMPLE_DIR, data, ignore=shutil.ignore_patterns("*.py", "__pycache__",
                                                                    "scenarios"))
    (data / "fx_rates.parquet").write_bytes(b"not parquet")
    app = app_for(RunConfig(data={"dir": str(data)}, as_of=SAMPLE_AS_OF))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        with pytest.raises(WorkerFailed):
            await app.workers.wait_for_complete()
        await pilot.pause()
        messages = [n.message for n in app._notifications]
        assert any("fx_rates.parquet" in m and "Fix:" in m for m in messages)
        assert app.is_running


def test_snapshot_data_screen(snap_compare):
    async def run_before(pilot):
        await loaded(pilot)

    assert snap_compare(app_for(), terminal_size=SIZE, run_before=run_before)
