"""The console as a whole: tabs, keys, remapping, palette, help, charts, advice, run logs."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from console.app import SpoApp
from core.runlog import list_runs
from core.settings import RunConfig
from sample_data import SAMPLE_DIR
from screens.bars import Bar, bar_text, chart, margin_chart, money, risk_chart
from screens.help import HelpScreen

SIZE = (100, 30)


def app_for(config: RunConfig, tmp_path) -> SpoApp:
    app = SpoApp(config, clock=lambda: dt.datetime(2026, 11, 20, 15, 31),
                 token=lambda: "abc123")
    app.out_dir = tmp_path / "out"
    app.runs_dir = tmp_path / "runs"
    return app


def scenario(name: str = "default") -> RunConfig:
    return RunConfig.load(SAMPLE_DIR / "scenarios" / f"{name}.toml")


async def settle(pilot):
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def test_keys_1_to_5_switch_tabs(tmp_path):
    app = app_for(scenario(), tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        for key, tab in zip("13452", ["config", "constraints", "settings", "run", "data"]):
            await pilot.press(key)
            assert app.query_one("#tabs").active == tab


async def test_f1_lists_every_binding_and_closes(tmp_path):
    app = app_for(scenario(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#help-text").render())
        ids = {b.id for b in app.BINDINGS} | {b.id for _, _, b in app.tab_bindings()}
        assert {"run.solve", "tab.config", "data.jump", "advice.apply"} <= ids
        missing = [i for i in ids if i not in text]
        assert not missing
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_keys_remap_from_the_config(tmp_path):
    cfg = scenario()
    cfg.console.keys = {"run.solve": "f5", "tab.constraints": "f3", "no.such": "x"}
    app = app_for(cfg, tmp_path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        warnings = [n.message for n in app._notifications]
        assert any("no.such" in m for m in warnings)
        await pilot.press("f3")
        assert app.query_one("#tabs").active == "constraints"
        await pilot.press("f5")
        await settle(pilot)
        assert app.result is not None and app.result.status == "optimal"
        await pilot.press("f1")
        assert "f5" in str(app.screen.query_one("#help-text").render())


async def test_the_palette_lists_every_action(tmp_path):
    app = app_for(scenario(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for b in app.BINDINGS:
            if b.id not in ("app.quit", "app.help"):
                assert (b.tooltip or b.description) in titles
        assert "Keys" in titles and "Quit" in titles  # Textual's own: help and quit
        assert "Constraints: Add" in titles
        # A tab's command switches to its tab and runs there.
        command = next(c for c in app.get_system_commands(app.screen)
                       if c.title == "Data & Universe: Filter")
        await command.callback()
        await pilot.pause()
        assert app.query_one("#tabs").active == "data"
        assert app.query_one("#data-universe #filter").display


async def test_two_solves_write_two_run_logs_and_charts_show(tmp_path):
    app = app_for(scenario("index_arb"), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+r")
        await settle(pilot)
        first = app.last_log
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert first != app.last_log and first.exists() and app.last_log.exists()
        runs = list_runs(tmp_path / "runs")
        assert [r.run_id for r in runs] == [app.last_log.stem, first.stem]
        logged = json.loads(app.last_log.read_text())
        assert logged["meta"]["run_id"].endswith("-s2")
        browser = app.query_one("#results-browser")
        assert {"risk decomposition", "margin usage"} <= set(browser.charts)
        await browser.show_table("margin usage")
        await pilot.pause()
        shown = app.query_one("#results-browser BarChart")
        assert "initial margin" in shown.render().plain


async def test_applying_advice_changes_the_config_and_solves_again(tmp_path):
    app = app_for(scenario(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+r")
        await settle(pilot)
        results = app.query_one("#run-results")
        assert not app.state.config.optimization.synthetics.allow_create_redeem
        browser = app.query_one("#results-browser")
        await browser.show_table("advice")
        await pilot.pause()
        row = browser.shown.get_column("code").to_list().index("ETF_ARB_UNUSED")
        browser.query_one("#grid").move_cursor(row=row)
        before = app.result.summary["utility_bp"]
        await pilot.press("a")
        await settle(pilot)
        assert app.state.config.optimization.synthetics.allow_create_redeem
        assert app.result.status == "optimal"
        assert app.result.flows is not None and app.result.flows.height > 0
        assert app.result.summary["utility_bp"] > before
        assert len(list_runs(tmp_path / "runs")) == 2
        # The settings tab shows the applied change.
        assert results.advice  # the new solve's advice replaced the old


def test_bar_text_scales_in_eighths():
    assert bar_text(1.0, 1.0, 10) == "█" * 10
    assert bar_text(0.5, 1.0, 10) == "█" * 5
    assert bar_text(0.0625, 1.0, 2) == "▏"  # one eighth of two cells
    assert bar_text(5.0, 1.0, 3) == "███"  # clipped at the scale
    assert bar_text(1.0, 0.0, 10) == ""


def test_chart_rows_fit_the_width_and_mark_negatives():
    text = chart("t", [Bar("long name that is cut", 2.0), Bar("b", -1.0, "note")], 40, "%")
    lines = text.plain.splitlines()
    assert lines[0] == "t" and all(len(line) <= 40 for line in lines)
    assert lines[1].startswith("long name that")
    assert lines[2].rstrip().endswith("note")
    assert "-1.0%" in lines[2]
    assert money(1_234_567) == "1.2m" and money(950) == "950" and money(2.5e9) == "2.5bn"


def test_risk_chart_shares_add_to_100():
    summary = {
        "risk": {"before": {"total_pct": 5.0, "factor_pct": 3.0, "idio_pct": 4.0},
                 "after": {"total_pct": 4.0, "factor_pct": 2.0, "idio_pct": 3.46}},
        "factors": [
            {"factor": "Value", "kind": "style", "exposure_before": 0.1,
             "exposure_after": 0.2, "risk_contribution_pct": 20.0},
            {"factor": "Momentum", "kind": "style", "exposure_before": 0.0,
             "exposure_after": -0.1, "risk_contribution_pct": -5.0},
            {"factor": "US", "kind": "country", "exposure_before": 1.0,
             "exposure_after": 1.0, "risk_contribution_pct": 10.0},
        ]}
    plain = risk_chart(summary, 70).plain
    assert "style" in plain and "15.0%" in plain  # 20 - 5 within the style kind
    assert "specific" in plain and "75.0%" in plain  # the rest of the variance
    assert "-5.0%" in plain  # a hedging factor shows as negative


def test_margin_chart_shows_budget_use_and_hedge_credit():
    summary = {"numeraire": "USD", "margin": {
        "used": 80e6, "used_without_hedge_credit": 100e6, "budget": 100e6,
        "before": {"used": 70e6},
        "by_group": {"sector": [{"group": "Energy", "before": 1e6, "after": 3e6},
                                {"group": "Tech", "before": 5e6, "after": 4e6}]}}}
    plain = margin_chart(summary, 70).plain
    assert "80% used" in plain and "hedges save 20.0m" in plain
    assert plain.index("Tech") < plain.index("Energy")  # largest first
    assert "no margin model" in margin_chart({"margin": None}, 70).plain


@pytest.mark.parametrize("width, lines", [(200, 1), (80, 2)])
async def test_status_line_fits_80_columns(tmp_path, width, lines):
    app = app_for(scenario(), tmp_path)
    async with app.run_test(size=(width, 24)) as pilot:
        await settle(pilot)
        status = app.query_one("#status")
        text = str(status.render())
        assert len(text.splitlines()) == lines
        assert "NAV 150.0m USD" in text and ("Clarabel" in text or "MOSEK" in text)


async def test_the_whole_workflow_from_the_keyboard(tmp_path):
    """Open, raise the turnover limit in the grid, solve, export, save the config."""
    import polars as pl

    from sample_data import SAMPLE_AS_OF

    path = tmp_path / "desk.toml"
    cfg = RunConfig.load(SAMPLE_DIR / "scenarios" / "default.toml")
    cfg.data.dir = SAMPLE_DIR
    cfg.as_of = SAMPLE_AS_OF
    cfg.save(path)
    app = app_for(RunConfig.load(path), tmp_path)
    app.config_path = path
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+r")
        await settle(pilot)
        before = app.result.summary["turnover_pct"]
        assert before == pytest.approx(40.0, abs=0.5)  # the 40 %NAV limit binds (lots round)
        await pilot.press("3", "tab", "tab")  # the portfolio grid
        grid = app.focused
        tab = app.query_one("#constraints-tab")
        row = [tab.specs[i].kind for i in tab.rows("portfolio")].index("turnover")
        await pilot.press(*["down"] * row, *["right"] * 4, "e")  # its upper bound
        await pilot.press("end", *["backspace"] * 12, *"45", "enter")
        await settle(pilot)
        assert app.focused.id == grid.id  # the keyboard stays in the grid
        turnover = [s for s in app.state.config.constraints if s.kind == "turnover"]
        assert [s.upper for s in turnover] == [45.0]
        await pilot.press("ctrl+r")
        await settle(pilot)
        after = app.result.summary["turnover_pct"]
        assert 40.5 < after <= 45.0 + 1e-6
        await pilot.press("ctrl+e")
        await pilot.pause()
        orders = pl.read_csv(tmp_path / "out" / app.last_log.stem / "orders.csv")
        assert orders.height == app.result.orders.height
        logged = json.loads(app.last_log.read_text())
        assert [c["upper"] for c in logged["constraints"] if c["kind"] == "turnover"] == [45.0]
        await pilot.press("1", "ctrl+s")
        await pilot.pause()
        saved = RunConfig.load(path)
        assert [s.upper for s in saved.all_constraints() if s.kind == "turnover"] == [45.0]


async def test_quick_tab_switches_settle_on_the_last_tab(tmp_path):
    """Two switches in a row (what a solve does before the trader goes back to the data)
    once made the two panes chase each other's focus for ever."""
    import asyncio

    app = app_for(scenario(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        focus_calls = []
        set_focus = app.screen.set_focus
        app.screen.set_focus = lambda w, *a, **k: (focus_calls.append(w), set_focus(w, *a, **k))[1]
        app.action_show_tab("run")
        app.action_show_tab("data")
        for _ in range(5):
            await pilot.pause()
        await asyncio.sleep(0.3)
        await pilot.pause()
        assert app.query_one("#tabs").active == "data"
        assert app.query_one("#data") in app.focused.ancestors
        assert len(focus_calls) <= 4


async def test_trades_lead_with_the_representation_chosen_in_settings(tmp_path):
    import polars as pl

    cfg = scenario()
    cfg.optimization.representation = "weights"
    app = app_for(cfg, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+r")
        await settle(pilot)
        trades = app.query_one("#results-browser").frames["trades"]
        assert trades.columns[:5] == ["ticker", "side", "weight_pct", "shares", "notional"]
        nav = app.result.summary["nav"]
        expected = (app.result.trades.get_column("notional") / nav * 100).round(3)
        assert trades.get_column("weight_pct").to_list() == expected.to_list()
        assert trades.get_column("weight_pct").sum() == pytest.approx(
            app.result.summary["turnover_pct"], rel=1e-3)
        assert isinstance(trades, pl.DataFrame)


async def test_validate_shows_the_checks_before_a_solve(tmp_path):
    """ctrl+v: the pre-solve checks and the data diagnostics, counted in one line."""
    app = app_for(scenario(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+v")
        await settle(pilot)
        browser = app.query_one("#results-browser")
        assert app.query_one("#tabs").active == "run"
        assert browser.current == "pre-solve checks"
        checks = browser.frames["pre-solve checks"]
        # The sample book already breaks its 2.5 %gross concentration limit in two names.
        broken = checks.filter(checks["constraint"] == "max_concentration[*]")
        assert broken.height == 1 and broken.item(0, "severity") == "warning"
        assert browser.frames["data diagnostics"].equals(app.state.universe.diagnostics)
        line = str(app.query_one("#progress").render())
        warnings = checks.filter(checks["severity"] == "warning").height
        assert f"constraints: 0 error(s), {warnings} warning(s)" in line and "ready" in line


async def test_the_table_list_row_detail_and_sort_from_the_keyboard(tmp_path):
    """t reaches the list of tables, Enter on a row shows it whole, s twice reverses."""
    from screens.data import RowDetail

    app = app_for(scenario(), tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        du = app.query_one("#data-universe")
        await pilot.press("t")
        assert app.focused.id == "tables"
        await pilot.press("down", "enter")  # the diagnostics
        await pilot.pause()
        assert du.current == "diagnostics" and app.focused.id == "grid"
        await pilot.press("enter")
        assert isinstance(app.screen, RowDetail)
        shown = str(app.screen.query_one("Static").render())
        assert du.shown.item(0, "message") in shown  # the message in full, not cut at 28
        await pilot.press("escape")
        await pilot.press("t", "up", "enter", "right", "right", "s")  # universe by type
        await pilot.pause()
        assert du.sort_state == ("type", False)
        await pilot.press("s")
        await pilot.pause()
        assert du.sort_state == ("type", True)
        assert du.shown.get_column("type").is_sorted(descending=True)


async def test_quit_with_unsaved_edits_warns_once(tmp_path):
    from screens.messages import ConfigChanged

    app = app_for(scenario(), tmp_path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        edited = app.state.config.model_copy(deep=True)
        edited.optimization.risk_aversion = 5.0
        app.post_message(ConfigChanged(edited, reason="risk aversion 10 -> 5"))
        await pilot.pause()
        await pilot.press("ctrl+q")
        assert app.is_running
        assert any("not saved" in n.message for n in app._notifications)
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert not app.is_running


async def test_a_cancelled_solve_lists_no_binding_constraints(tmp_path):
    app = app_for(scenario(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.action_solve()
        app.action_cancel_solve()
        await settle(pilot)
        assert app.result.status == "cancelled"
        frames = app.query_one("#results-browser").frames
        assert "binding" not in frames and "trades" not in frames


async def test_solving_in_the_worker_thread_gives_the_same_result_and_log(tmp_path):
    """The fallback path (no child process) runs the same job function."""
    app = app_for(scenario(), tmp_path)
    app.solve_in_process = False
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert app.result.status == "optimal" and app.last_log.exists()
        assert app.query_one("#run-results").advice


async def test_a_failed_solve_is_a_notification_and_the_next_ctrl_r_solves(tmp_path):
    app = app_for(scenario(), tmp_path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        real = app.state.config

        class Broken:  # all_constraints() raising stands for any failure inside the job
            def __getattr__(self, name):
                if name == "all_constraints":
                    raise RuntimeError("constraint file vanished")
                return getattr(real, name)

        app.state.config = Broken()
        app.action_solve()
        try:
            await app.workers.wait_for_complete()
        except Exception:  # noqa: BLE001 - the worker's error, already notified
            pass
        await pilot.pause()
        assert any("constraint file vanished" in n.message for n in app._notifications)
        assert not app.solving
        app.state.config = real
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert app.result.status == "optimal"
