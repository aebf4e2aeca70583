"""Run & Results: solve, cancel, export and the infeasible path, from the keyboard."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
import polars as pl

from books import INFEASIBLE_CONSTRAINTS, write_sample_config
from console.app import SpoApp
from core.settings import RunConfig
from sample_data import SAMPLE_DIR

SIZE = (100, 30)


def app_for(config: RunConfig) -> SpoApp:
    app = SpoApp(config, clock=lambda: dt.datetime(2026, 11, 20, 15, 31),
                 token=lambda: "abc123")
    app.runs_dir = Path(tempfile.mkdtemp(prefix="spo-test-runs-"))  # not the repo's ./runs
    return app


def default_config() -> RunConfig:
    return RunConfig.load(SAMPLE_DIR / "scenarios" / "default.toml")


async def settle(pilot):
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def test_solve_then_export(tmp_path):
    app = app_for(default_config())
    app.out_dir = tmp_path
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert app.result is not None and app.result.status == "optimal"
        assert app.query_one("#tabs").active == "run"
        browser = app.query_one("#results-browser")
        assert browser.current == "trades" and browser.shown.height == app.result.trades.height
        binding = browser.frames["binding"]
        assert binding.height and binding.get_column("dual").is_sorted(descending=True)
        assert "last solve optimal" in str(app.query_one("#status").render())
        await pilot.press("ctrl+e")
        await pilot.pause()
        orders = tmp_path / "DEMO-20261120-153100-abc123-s1" / "orders.csv"  # per solve
        assert orders.exists()
        assert pl.read_csv(orders).height == app.result.orders.height
        # A second solve shows the change against the first.
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert "change vs previous" in browser.frames


async def test_escape_cancels_a_running_solve():
    app = app_for(default_config())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        # Esc is the cancel key wherever the focus is once a solve runs ...
        app.action_solve()
        assert app.active_bindings["escape"].binding.action == "cancel_solve"
        # ... and cancelling stops the solver at its next iteration. (pilot.press waits
        # for the app to go idle, which a running solve is not, so the actions are called.)
        app.action_cancel_solve()
        await settle(pilot)
        assert app.result.status == "cancelled"
        assert "no solution" in str(app.query_one("#summary").render())


async def test_infeasible_shows_the_relaxation_first(tmp_path):
    cfg = write_sample_config(tmp_path, INFEASIBLE_CONSTRAINTS, optimization="")
    app = app_for(RunConfig.load(cfg))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+r")
        await settle(pilot)
        browser = app.query_one("#results-browser")
        assert app.result.status == "infeasible"
        assert browser.current == "relaxation"
        assert browser.shown.get_column("message").str.starts_with("relax ").all()
        assert any("infeasible" in n.message for n in app._notifications)
