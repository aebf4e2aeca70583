"""Every screen of the console at a fixed size, on the sample book, after a fixed solve.

Deterministic: fixed clock and run id, durations shown as a fixed string, no cursor blink,
every worker awaited before the capture. Look at a changed picture before updating it
(`pytest --snapshot-update`, then the report's SVGs).
"""

from __future__ import annotations

import datetime as dt

import pytest

from console.app import SpoApp
from core.settings import RunConfig
from sample_data import SAMPLE_DIR

SIZE = (100, 30)
SMALL = (80, 24)


@pytest.fixture
def make_app(tmp_path):
    def make(scenario: str = "default") -> SpoApp:
        cfg = RunConfig.load(SAMPLE_DIR / "scenarios" / f"{scenario}.toml")
        app = SpoApp(cfg, clock=lambda: dt.datetime(2026, 11, 20, 15, 31),
                     token=lambda: "snap01")
        app.seconds = lambda s: "0.50s"
        app.out_dir = tmp_path / "out"
        app.runs_dir = tmp_path / "runs"
        return app
    return make


async def settle(pilot) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def keys_then_settle(*keys: str):
    async def run_before(pilot) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)
    return run_before


def test_config_tab(snap_compare, make_app):
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=keys_then_settle("1"))


def test_constraints_tab(snap_compare, make_app):
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=keys_then_settle("3"))


def test_settings_tab(snap_compare, make_app):
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=keys_then_settle("4"))


def test_results_after_a_solve(snap_compare, make_app):
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=keys_then_settle("ctrl+r"))


def test_results_risk_chart(snap_compare, make_app):
    async def run_before(pilot) -> None:
        await keys_then_settle("ctrl+r")(pilot)
        await pilot.app.query_one("#results-browser").show_table("risk decomposition")
        await pilot.pause()
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_results_margin_chart(snap_compare, make_app):
    async def run_before(pilot) -> None:
        await keys_then_settle("ctrl+r")(pilot)
        await pilot.app.query_one("#results-browser").show_table("margin usage")
        await pilot.pause()
    assert snap_compare(make_app("index_arb"), terminal_size=SIZE, run_before=run_before)


def test_results_advice(snap_compare, make_app):
    async def run_before(pilot) -> None:
        await keys_then_settle("ctrl+r")(pilot)
        await pilot.app.query_one("#results-browser").show_table("advice")
        await pilot.pause()
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_help(snap_compare, make_app):
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=keys_then_settle("f1"))


@pytest.mark.parametrize("key", ["1", "2", "3", "4"])
def test_every_tab_at_80x24(snap_compare, make_app, key):
    assert snap_compare(make_app(), terminal_size=SMALL, run_before=keys_then_settle(key))


def test_results_at_80x24(snap_compare, make_app):
    assert snap_compare(make_app(), terminal_size=SMALL, run_before=keys_then_settle("ctrl+r"))
