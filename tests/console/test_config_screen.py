"""Config tab: run context, data paths and solver; save, save as and open from the keyboard."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest
from textual.app import App
from textual.widgets import Input, OptionList, Static

from form_harness import FormHarness
from books import write_sample_config
from console import recent
from core.settings import RunConfig
from core.solvers import base as solver_base
from screens.config import ConfigTab, OpenConfigModal, SaveAsModal

SIZE = (100, 30)


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    """Recent configs go to a throwaway folder, never the user's."""
    monkeypatch.setenv("SPO_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


class Harness(FormHarness):
    """Just the ConfigTab; records ConfigChanged and shows it back."""

    TAB = ConfigTab
    TAB_ID = "config"


def help_text(app: App, key: str) -> str:
    return str(app.query_one(f"#h-{key}", Static).render())


def file_status(app: App) -> str:
    return str(app.query_one("#config-file-status", Static).render())


async def focus(pilot, key: str):
    widget = pilot.app.query_one(f"#f-{key}")
    widget.focus()
    await pilot.pause()
    return widget


def sample(tmp_path: Path) -> tuple[RunConfig, Path]:
    path = write_sample_config(tmp_path)
    return RunConfig.load(path), path


def names(text: str, prefix: str, path: Path) -> bool:
    """`text` is prefix + `path`, maybe cut from the left ("…/context0/runs")."""
    shown = text.removeprefix(prefix)
    return text.startswith(prefix) and str(path).endswith(shown.removeprefix("…"))


def same(a: RunConfig, b: RunConfig) -> bool:
    return a.model_dump() == b.model_dump()


async def test_shows_the_run_context(tmp_path):
    cfg, path = sample(tmp_path)
    app = Harness(cfg, path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.query_one("#config-file", Input).value == str(path)
        assert file_status(app).startswith("saved")
        assert app.query_one("#f-account", Input).value == "T"
        assert app.query_one("#f-as_of", Input).value == "2026-11-20 15:30"
        assert app.query_one("#f-numeraire", Input).value == "USD"
        reason = solver_base.choose_solver("auto").reason
        assert help_text(app, "solver") == f"→ {reason}"
        assert help_text(app, "data-dir").startswith("ok ")
        assert help_text(app, "data-files-positions") == "ok positions.parquet"
        assert names(help_text(app, "runs_dir"), "→ ", tmp_path / "runs")


async def test_edits_post_with_or_without_a_reload(tmp_path):
    cfg, path = sample(tmp_path)
    app = Harness(cfg, path)
    async with app.run_test(size=SIZE) as pilot:
        await focus(pilot, "account")
        await pilot.press(*"ARB-1", "enter")
        await focus(pilot, "as_of")
        await pilot.press(*"2026-11-20 16:00", "enter")
        await focus(pilot, "solver")
        await pilot.press("enter", "down", "enter")  # auto -> clarabel
        await pilot.pause()
        got = [(c.reason, c.reload_data) for c in app.changes]
        assert got == [("account T -> ARB-1", False),
                       ("as of 2026-11-20 15:30 -> 2026-11-20 16:00", True),
                       ("solver auto -> clarabel", False)]
        assert app.config.as_of == dt.datetime(2026, 11, 20, 16, 0)
        assert help_text(app, "solver") == "Clarabel: chosen in the config"
        assert file_status(app).startswith("modified")
        # A bad date: the message beside the field, nothing posted.
        await focus(pilot, "run_date")
        await pilot.press(*"20-11-2026", "enter")
        await pilot.pause()
        assert "valid date" in help_text(app, "run_date") and len(app.changes) == 3


async def test_data_paths_show_where_each_table_is_and_reload(tmp_path):
    cfg, path = sample(tmp_path)
    app = Harness(cfg, path)
    async with app.run_test(size=SIZE) as pilot:
        await focus(pilot, "data-files-positions")
        await pilot.press(*"intraday/positions.parquet", "enter")
        await pilot.pause()
        (change,) = app.changes
        assert change.reload_data is True
        assert change.config.data.files == {"positions": Path("intraday/positions.parquet")}
        assert help_text(app, "data-files-positions").startswith("missing ")
        assert help_text(app, "data-files-positions").endswith("intraday/positions.parquet")
        assert app.query_one("#h-data-files-positions").has_class("-error")
        # The file appears: relative to the config's folder, and shown as found.
        (tmp_path / "intraday").mkdir()
        (tmp_path / "intraday" / "positions.parquet").write_bytes(b"")
        await pilot.press("ctrl+a", "ctrl+k", "enter")  # clear: back to the data dir
        await pilot.pause()
        assert app.config.data.files == {}
        await pilot.press(*"intraday/positions.parquet", "enter")
        await pilot.pause()
        assert names(help_text(app, "data-files-positions"), "ok ",
                     tmp_path / "intraday" / "positions.parquet")
        assert [c.reload_data for c in app.changes] == [True, True, True]
        await focus(pilot, "data-dir")
        await pilot.press(*"nowhere", "enter")
        await pilot.pause()
        assert help_text(app, "data-dir").startswith("missing")
        assert help_text(app, "data-files-instruments") == "missing instruments.parquet"
        assert help_text(app, "data-files-baskets") == "none (optional)"


async def test_mosek_without_a_license_is_a_warning(tmp_path, monkeypatch):
    monkeypatch.setenv("MOSEKLM_LICENSE_FILE", str(tmp_path / "none.lic"))
    monkeypatch.setenv("HOME", str(tmp_path))
    app = Harness()
    async with app.run_test(size=SIZE) as pilot:
        await focus(pilot, "solver")
        await pilot.press("enter", "down", "down", "enter")
        await pilot.pause()
        assert app.config.solver == "mosek"
        assert "no MOSEK license found" in help_text(app, "solver")
        assert app.query_one("#h-solver").has_class("-warning")


async def test_save_writes_the_toml(tmp_path):
    cfg, path = sample(tmp_path)
    app = Harness(cfg, path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await focus(pilot, "account")
        await pilot.press(*"ARB-2")  # not yet committed: ctrl+s commits it first
        await pilot.press("ctrl+s")
        await pilot.pause()
        # The edit, then the save, so the app knows the edits are on disk.
        assert [c.reason for c in app.changes] == ["account T -> ARB-2", f"saved {path}"]
        assert app.changes[-1].path == path and not app.changes[-1].reload_data
        saved = RunConfig.load(path)
        assert saved.account == "ARB-2"
        assert same(saved, app.query_one(ConfigTab).config)
        assert file_status(app).startswith("saved")
        assert recent.read_recent() == [path.resolve()]


async def test_save_with_no_path_asks_for_one(tmp_path):
    app = Harness(RunConfig(account="NEW"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert file_status(app).startswith("not saved")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, SaveAsModal)
        target = tmp_path / "desk" / "new.toml"
        box = app.screen.query_one("#save-path", Input)
        box.value = str(target)
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, SaveAsModal)
        (change,) = app.changes
        assert change.path == target and change.reload_data is False
        assert change.reason.startswith(f"saved as {target}")
        assert RunConfig.load(target).account == "NEW"
        assert app.query_one(ConfigTab).path == target
        assert file_status(app).startswith("saved")


async def test_save_as_keeps_relative_paths_pointing_at_the_same_files(tmp_path):
    src = tmp_path / "a"
    src.mkdir()
    (src / "run.toml").write_text(textwrap.dedent("""
        account = "REL"
        runs_dir = "logs"
        [data]
        dir = "data"
        files = { positions = "intraday/positions.parquet" }
    """))
    cfg = RunConfig.load(src / "run.toml")
    app = Harness(cfg, src / "run.toml")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+shift+s")
        await pilot.pause()
        assert isinstance(app.screen, SaveAsModal)
        target = tmp_path / "b" / "run.toml"
        app.screen.query_one("#save-path", Input).value = str(target)
        await pilot.press("enter")
        await pilot.pause()
        (change,) = app.changes
        assert "made absolute: data.dir, data.files.positions, runs_dir" in change.reason
        back = RunConfig.load(target)
        assert back.data_dir() == src / "data"
        assert back.file_overrides() == {"positions": src / "intraday" / "positions.parquet"}
        assert back.runs_path() == src / "logs"
        assert (src / "run.toml").read_text().count("REL") == 1  # the original untouched


async def test_enter_in_the_file_field_saves_as_and_asks_before_overwriting(tmp_path):
    cfg, path = sample(tmp_path)
    other = tmp_path / "other.toml"
    other.write_text("# someone else's\n")
    app = Harness(cfg, path)
    async with app.run_test(size=SIZE) as pilot:
        box = app.query_one("#config-file", Input)
        box.focus()
        box.value = str(other)
        await pilot.press("enter")
        await pilot.pause()
        assert "exists: Enter again to overwrite" in file_status(app)
        assert other.read_text() == "# someone else's\n" and app.changes == []
        await pilot.press("enter")
        await pilot.pause()
        assert RunConfig.load(other).account == "T"
        assert app.changes[-1].path == other


async def test_open_a_valid_file(tmp_path):
    first, _ = sample(tmp_path)
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    other = write_sample_config(other_dir, optimization="risk_aversion = 3.0")
    text = other.read_text().replace('account = "T"', 'account = "OPENED"')
    other.write_text(text)
    app = Harness(first, tmp_path / "run.toml")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert isinstance(app.screen, OpenConfigModal)
        box = app.screen.query_one("#open-path", Input)
        assert box.value == f"{tmp_path}/"  # starts in the current config's folder
        await pilot.press(*"other/run.toml", "enter")
        await pilot.pause()
        assert not isinstance(app.screen, OpenConfigModal)
        (change,) = app.changes
        assert change.reload_data is True and change.path == other
        assert change.config.account == "OPENED"
        assert change.config.optimization.risk_aversion == 3.0
        assert change.reason == f"opened {other}"
        assert app.query_one("#f-account", Input).value == "OPENED"
        assert recent.read_recent() == [other.resolve()]
        assert file_status(app).startswith("saved")


@pytest.mark.parametrize("content, expected", [
    ("account = \n", "not valid TOML"),
    ("numerarie = \"EUR\"\n", "unknown key 'numerarie'"),
    (None, "config file not found"),
])
async def test_open_a_bad_file_shows_the_message_in_the_dialog(tmp_path, content, expected):
    bad = tmp_path / "bad.toml"
    if content is not None:
        bad.write_text(content)
    app = Harness()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+o")
        await pilot.pause()
        app.screen.query_one("#open-path", Input).value = str(bad)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, OpenConfigModal)  # still open, to fix the path
        error = app.screen.query_one("#open-error", Static)
        assert error.display and expected in str(error.render())
        assert "Traceback" not in str(error.render())
        assert app.changes == []
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, OpenConfigModal) and app.changes == []


async def test_open_from_the_recent_list(tmp_path):
    paths = []
    for name in ("a", "b"):
        d = tmp_path / name
        d.mkdir()
        p = write_sample_config(d)
        p.write_text(p.read_text().replace('account = "T"', f'account = "{name.upper()}"'))
        recent.add_recent(p)
        paths.append(p)
    app = Harness()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+o")
        await pilot.pause()
        options = app.screen.query_one("#recent", OptionList)
        assert [o.id for o in options.options] == [str(paths[1]), str(paths[0])]
        await pilot.press("down")  # from the path to the list
        assert app.focused is options and options.highlighted == 0
        await pilot.press("down", "enter")  # the older one
        await pilot.pause()
        (change,) = app.changes
        assert change.config.account == "A" and change.path == paths[0]
        assert recent.read_recent() == [paths[0], paths[1]]


def test_snapshot_config_tab(snap_compare, monkeypatch):
    """Fixed paths that do not exist (shown as missing) and a fixed solver reason."""
    monkeypatch.setattr(solver_base, "choose_solver", lambda choice: solver_base.SolverChoice(
        "clarabel", "Clarabel: no MOSEK license found"))
    cfg = RunConfig.from_dict(
        {"account": "ARB-1", "as_of": dt.datetime(2026, 11, 20, 15, 30),
         "data": {"dir": "data", "files": {"positions": "/srv/intraday/positions.parquet"}}},
        base_dir=Path("/srv/desk"))

    async def run_before(pilot):
        await focus(pilot, "account")

    assert snap_compare(Harness(cfg, Path("/srv/desk/run.toml")), terminal_size=SIZE,
                        run_before=run_before)
