"""Every screen of the console at a fixed size, on the sample book, after a fixed solve.

Deterministic: fixed clock and run id, durations shown as a fixed string, no cursor blink,
every worker awaited before the capture. Look at a changed picture before updating it
(`pytest --snapshot-update`, then the report's SVGs).
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path

import pytest

from console.app import SpoApp
from core.settings import RunConfig
from sample_data import SAMPLE_DIR

SIZE = (100, 30)
SMALL = (80, 24)


# The Config tab shows resolved paths, so the sample is read from the same absolute place on
# every machine, not from wherever the clone happens to be.
FIXED_SAMPLE = Path(tempfile.gettempdir()) / "spo-snapshots" / "sample_data"


@pytest.fixture(scope="session")
def fixed_sample() -> Path:
    shutil.rmtree(FIXED_SAMPLE, ignore_errors=True)
    shutil.copytree(SAMPLE_DIR, FIXED_SAMPLE,
                    ignore=shutil.ignore_patterns("__pycache__", "runs"))
    return FIXED_SAMPLE


@pytest.fixture
def make_app(tmp_path, fixed_sample):
    def make(scenario: str = "default") -> SpoApp:
        cfg = RunConfig.load(fixed_sample / "scenarios" / f"{scenario}.toml")
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


def solve_then_show(table: str):
    """Solve, then show one entry of the results list (a table or a chart)."""
    async def run_before(pilot) -> None:
        await keys_then_settle("ctrl+r")(pilot)
        await pilot.app.query_one("#results-browser").show_table(table)
        await pilot.pause()
    return run_before


def test_results_risk_chart(snap_compare, make_app):
    assert snap_compare(make_app(), terminal_size=SIZE,
                        run_before=solve_then_show("risk decomposition"))


def test_results_margin_chart(snap_compare, make_app):
    assert snap_compare(make_app("index_arb"), terminal_size=SIZE,
                        run_before=solve_then_show("margin usage"))


def test_results_advice(snap_compare, make_app):
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=solve_then_show("advice"))


def test_help(snap_compare, make_app):
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=keys_then_settle("f1"))


@pytest.mark.parametrize("key", ["1", "2", "3", "4"])
def test_every_tab_at_80x24(snap_compare, make_app, key):
    assert snap_compare(make_app(), terminal_size=SMALL, run_before=keys_then_settle(key))


def test_results_at_80x24(snap_compare, make_app):
    assert snap_compare(make_app(), terminal_size=SMALL, run_before=keys_then_settle("ctrl+r"))
