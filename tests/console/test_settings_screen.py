"""Optimization Settings, driven from the keyboard: every field validated where it is typed."""

from __future__ import annotations


from textual.app import App
from textual.widgets import Checkbox, Input, Select, Static

from form_harness import FormHarness
from books import write_sample_config
from core.settings import RunConfig
from screens.settings import SettingsTab

SIZE = (100, 30)


class Harness(FormHarness):
    """Just the SettingsTab; records ConfigChanged and shows it back."""

    TAB = SettingsTab
    TAB_ID = "settings"


def help_text(app: App, key: str) -> str:
    return str(app.query_one(f"#h-{key}", Static).render())


async def focus(pilot, key: str):
    widget = pilot.app.query_one(f"#f-{key}")
    widget.focus()
    await pilot.pause()
    return widget


async def test_risk_aversion_from_the_keyboard(tmp_path):
    cfg = RunConfig.load(write_sample_config(tmp_path))  # risk_aversion = 10
    app = Harness(cfg, tmp_path / "run.toml")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        # The form takes the focus (so digits still switch tabs); down enters the fields.
        assert app.focused is app.query_one(SettingsTab)
        await pilot.press("down")
        assert app.focused.id == "f-optimization-objective"  # the first field
        await pilot.press("tab", "tab")  # relative to benchmark, then risk aversion
        assert app.focused.id == "f-optimization-risk_aversion"
        assert app.focused.value == "10"
        await pilot.press(*"5", "enter")  # the text was selected on focus: typing replaces
        await pilot.pause()
        assert len(app.changes) == 1
        change = app.changes[0]
        assert change.config.optimization.risk_aversion == 5.0
        assert change.reason == "risk aversion 10 -> 5"
        assert change.reload_data is False and change.path == tmp_path / "run.toml"
        assert change.config.base_dir == tmp_path  # relative paths still resolve the same
        tab = app.query_one(SettingsTab)
        assert tab.config.optimization.risk_aversion == 5.0
        # Leaving the field commits nothing more: the value is already the config's.
        await pilot.press("tab")
        await pilot.pause()
        assert len(app.changes) == 1
        # Esc with nothing pending hands the focus back to the form (digits switch tabs).
        await pilot.press("escape")
        assert app.focused is tab


async def test_leaving_a_field_commits_it():
    app = Harness()
    async with app.run_test(size=SIZE) as pilot:
        await focus(pilot, "optimization-horizon_days")
        await pilot.press(*"60", "tab")
        await pilot.pause()
        assert [c.reason for c in app.changes] == ["horizon days 20 -> 60"]
        assert app.config.optimization.horizon_days == 60


async def test_invalid_values_show_the_message_and_post_nothing():
    app = Harness()
    async with app.run_test(size=SIZE) as pilot:
        tab = app.query_one(SettingsTab)
        box = await focus(pilot, "optimization-risk_aversion")
        await pilot.press(*"-1")
        await pilot.pause()
        assert "greater than or equal to 0" in help_text(app, "optimization-risk_aversion")
        assert app.query_one("#h-optimization-risk_aversion").has_class("-error")
        await pilot.press("enter")
        await pilot.pause()
        assert app.changes == [] and tab.config.optimization.risk_aversion == 2.0
        box.value = ""
        await pilot.press(*"abc", "tab")  # letters, then leave the field
        await pilot.pause()
        assert "valid number" in help_text(app, "optimization-risk_aversion")
        assert app.changes == [] and tab.config.optimization.risk_aversion == 2.0
        assert box.value == "abc"  # kept for fixing, not silently thrown away
        # Back in the field, Esc puts the config's value back and clears the error.
        box.focus()
        await pilot.press("escape")
        await pilot.pause()
        assert box.value == "2"
        assert help_text(app, "optimization-risk_aversion") == "lambda on horizon variance"
        assert not app.query_one("#h-optimization-risk_aversion").has_class("-error")
        # An integer field refuses a fraction; a bounded one its bound.
        await focus(pilot, "optimization-horizon_days")
        await pilot.press(*"2.5", "enter")
        await pilot.pause()
        assert "valid integer" in help_text(app, "optimization-horizon_days")
        await focus(pilot, "optimization-time_limit_s")
        await pilot.press("0", "enter")
        await pilot.pause()
        assert "greater than 0" in help_text(app, "optimization-time_limit_s")
        assert app.changes == []
        assert tab.config == RunConfig()


async def test_toggle_create_redeem():
    app = Harness()
    async with app.run_test(size=SIZE) as pilot:
        box = await focus(pilot, "optimization-synthetics-allow_create_redeem")
        assert isinstance(box, Checkbox) and not box.value
        await pilot.press("space")
        await pilot.pause()
        assert [c.reason for c in app.changes] == ["create/redeem off -> on"]
        assert app.config.optimization.synthetics.allow_create_redeem is True
        assert str(box.label) == "on"
        await pilot.press("enter")  # enter toggles too
        await pilot.pause()
        assert app.config.optimization.synthetics.allow_create_redeem is False
        assert len(app.changes) == 2


async def test_numeraire_asks_for_a_reload():
    app = Harness()
    async with app.run_test(size=SIZE) as pilot:
        await focus(pilot, "numeraire")
        await pilot.press(*"eur", "enter")  # upper-cased as typed
        await pilot.pause()
        (change,) = app.changes
        assert change.config.numeraire == "EUR" and change.reload_data is True
        assert change.reason == "numeraire USD -> EUR"
        await pilot.press("ctrl+a", "ctrl+k", *"EURO", "enter")
        await pilot.pause()
        assert "pattern" in help_text(app, "numeraire") and len(app.changes) == 1


async def test_select_objective_from_the_keyboard():
    app = Harness()
    async with app.run_test(size=SIZE) as pilot:
        select = await focus(pilot, "optimization-objective")
        assert isinstance(select, Select)
        assert not app.query_one("#targets-note").display
        await pilot.press("enter", "down", "enter")
        await pilot.pause()
        assert app.config.optimization.objective == "min_total_risk"
        assert app.changes[-1].reason == "objective utility -> min_total_risk"
        await pilot.press("enter", "down", "down", "enter")
        await pilot.pause()
        assert app.config.optimization.objective == "target_exposures"
        note = app.query_one("#targets-note", Static)
        assert note.display and "factor_targets" in str(note.render())


async def test_optional_limits_take_empty_for_none():
    app = Harness()
    async with app.run_test(size=SIZE) as pilot:
        box = await focus(pilot, "optimization-discrete-max_trades")
        assert box.value == "" and box.placeholder == "no limit"
        await pilot.press(*"150", "enter")
        await pilot.pause()
        assert app.config.optimization.discrete.max_trades == 150
        await pilot.press("ctrl+a", "ctrl+k", "enter")
        await pilot.pause()
        assert app.config.optimization.discrete.max_trades is None
        assert [c.reason for c in app.changes] == ["max trades none -> 150",
                                                   "max trades 150 -> none"]
        await focus(pilot, "optimization-synthetics-max_redeem_notional")
        await pilot.press(*"25000000", "enter")
        await pilot.pause()
        assert app.config.optimization.synthetics.max_redeem_notional == 25e6
        assert app.changes[-1].reason == "max redeem notional none -> 25000000"


async def test_show_config_updates_fields_but_keeps_an_edit_in_progress():
    app = Harness()
    async with app.run_test(size=SIZE) as pilot:
        tab = app.query_one(SettingsTab)
        box = await focus(pilot, "optimization-alpha_scale")
        await pilot.press(*"x")  # invalid, in progress
        await pilot.pause()
        other = RunConfig(optimization={"risk_aversion": 7.0, "costs": {"borrow": False}})
        tab.show_config(other, None)
        await pilot.pause()
        assert app.query_one("#f-optimization-risk_aversion", Input).value == "7"
        assert app.query_one("#f-optimization-costs-borrow", Checkbox).value is False
        assert box.value == "x" and "valid number" in help_text(app, "optimization-alpha_scale")
        assert app.changes == []  # showing a config is not a change


async def test_every_row_fits_80_columns():
    app = Harness()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        tab = app.query_one(SettingsTab)
        for wid, field in tab.fields.items():
            editor = app.query_one(f"#{wid}")
            help_ = app.query_one(f"#{field.help_id}")
            assert editor.region.right <= help_.region.x, wid
            assert help_.region.width >= 30, wid
            assert help_.region.height == 1, (wid, help_text(app, field.key))


def test_snapshot_settings_tab(snap_compare):
    """The top of the tab, with an invalid alpha scale being typed (its message in red)."""
    cfg = RunConfig(optimization={"risk_aversion": 5.0, "synthetics": {"allow_efp": True}})

    async def run_before(pilot):
        await focus(pilot, "optimization-alpha_scale")
        await pilot.press("minus", "1")

    assert snap_compare(Harness(cfg), terminal_size=SIZE, run_before=run_before)
