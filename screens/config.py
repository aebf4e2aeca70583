"""Config: the run's context, data paths and solver, and the config file itself.

ctrl+s saves to the current file (asking for a path when there is none), ctrl+shift+s saves
under another name (terminals that cannot send ctrl+shift+s: type a path in the "file"
field and press Enter), ctrl+o opens a file by path or from the recent list. Every edit is
validated by RunConfig as it is typed (screens/forms.py) and posts one ConfigChanged; data
paths, the as-of time and the numeraire ask the app to reload the data.
"""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from console import recent
from core.data.loaders import resolve_paths
from core.data.schemas import TABLES
from core.errors import SpoInputError
from core.settings import RunConfig
from core.solvers import base as solver_base
from screens.forms import ConfigForm, FormField, FormInput, section, short_path
from screens.messages import ConfigChanged

RUN_FIELDS = [
    FormField(("account",), "account", "text", help="desk account; names the run"),
    FormField(("run_date",), "run date", "date", placeholder="as-of date",
              help="YYYY-MM-DD; empty: the as-of date", reload_data=True),
    FormField(("as_of",), "as of", "datetime", placeholder="now", reload_data=True,
              help="YYYY-MM-DD HH:MM; empty: now"),
    FormField(("numeraire",), "numeraire", "upper", reload_data=True,
              help="NAV, risk, costs; reloads the data"),
]
SOLVER_FIELDS = [
    FormField(("solver",), "solver", "choice", choices=("auto", "clarabel", "mosek")),
    FormField(("runs_dir",), "runs dir", "path", help="run logs go here"),
]
DATA_FIELDS = [
    FormField(("data", "dir"), "data dir", "optional_path", placeholder="sample data",
              reload_data=True),
] + [
    FormField(("data", "files", name), name, "optional_path", placeholder="in data dir",
              reload_data=True)
    for name in TABLES
]
VALIDATION_FIELDS = [
    FormField(("validation", "stale_price_hours"), "stale price hours", "number",
              reload_data=True, help="older marks are flagged stale"),
    FormField(("validation", "basket_tolerance_pct"), "basket tolerance %", "number",
              reload_data=True, help="basket vs price gap flagged"),
    FormField(("validation", "expiry_warning_days"), "expiry warning days", "int",
              reload_data=True, help="futures this close are flagged"),
]


def absolute(raw: str | Path) -> Path:
    path = Path(raw).expanduser()
    return path if path.is_absolute() else Path.cwd() / path


def rebased(config: RunConfig, new_base: Path) -> tuple[RunConfig, list[str]]:
    """The config as it must be written into a file in `new_base`.

    Relative paths mean "beside the config file", so a config saved to another folder gets
    its relative paths made absolute (they keep naming the same files). Returns the copy and
    the keys rewritten."""
    if config.base_dir.resolve() == new_base.resolve():
        return config, []
    new = config.model_copy(deep=True)
    changed: list[str] = []

    def fix(path: Path, key: str) -> Path:
        if path.expanduser().is_absolute():
            return path
        changed.append(key)
        return config.resolve(path)

    if new.data.dir is not None:
        new.data.dir = fix(new.data.dir, "data.dir")
    new.data.files = {name: fix(p, f"data.files.{name}") for name, p in new.data.files.items()}
    new.runs_dir = fix(new.runs_dir, "runs_dir")
    new.constraint_files = [fix(p, "constraint_files") for p in new.constraint_files]
    new._base_dir = new_base
    return new, sorted(set(changed))


# --- modals ------------------------------------------------------------------------------


class OpenConfigModal(ModalScreen[tuple[Path, RunConfig] | None]):
    """A path to type, or a recent config to pick with the arrows; Enter opens.

    A bad path or an invalid config shows its message here and the dialog stays open."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="config.open.cancel"),
        Binding("down", "to_recent", "Recent", show=False, id="config.open.recent"),
    ]

    def __init__(self, recent_paths: list[Path], start: str = "") -> None:
        super().__init__()
        self.recent_paths = recent_paths
        self.start = start

    def compose(self) -> ComposeResult:
        with Vertical(id="open-dialog", classes="dialog"):
            yield Static("Open config: a path, or ↓ for a recent one; Enter opens, "
                         "Esc cancels", classes="dialog-title")
            yield FormInput(value=self.start, placeholder="path to a config .toml",
                            select_on_focus=False, id="open-path")
            yield Static("", id="open-error", classes="dialog-error", markup=False)
            yield Static("recent" if self.recent_paths else "no recent configs",
                         classes="dialog-note")
            yield OptionList(*[Option(str(p), id=str(p)) for p in self.recent_paths],
                             id="recent")

    def on_mount(self) -> None:
        self.query_one("#open-error").display = False
        self.query_one("#open-path", Input).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_to_recent(self) -> None:
        options = self.query_one("#recent", OptionList)
        if options.option_count:
            options.focus()
            if options.highlighted is None:
                options.highlighted = 0

    def show_error(self, text: str) -> None:
        error = self.query_one("#open-error", Static)
        error.update(text)
        error.display = True

    def try_open(self, raw: str) -> None:
        if not raw.strip():
            self.show_error("type the path of a config file")
            return
        path = absolute(raw.strip())
        try:
            config = RunConfig.load(path)
        except SpoInputError as exc:
            self.show_error(str(exc))
            return
        except Exception as exc:  # never a traceback in the console
            self.show_error(f"{path}: cannot open ({exc})")
            return
        self.dismiss((path, config))

    @on(Input.Submitted, "#open-path")
    def _typed(self, event: Input.Submitted) -> None:
        event.stop()
        self.try_open(event.value)

    @on(OptionList.OptionSelected, "#recent")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.query_one("#open-path", Input).value = event.option.id
        self.try_open(event.option.id)


class SaveAsModal(ModalScreen[Path | None]):
    """Where to save; an existing file other than the current one needs Enter twice."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="config.save_as.cancel")]

    def __init__(self, start: str, current: Path | None) -> None:
        super().__init__()
        self.start = start
        self.current = current
        self._confirm: Path | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="save-dialog", classes="dialog"):
            yield Static("Save config as: Enter saves, Esc cancels", classes="dialog-title")
            yield FormInput(value=self.start, placeholder="path of the .toml to write",
                            id="save-path")
            yield Static("", id="save-error", classes="dialog-error", markup=False)

    def on_mount(self) -> None:
        self.query_one("#save-error").display = False
        self.query_one("#save-path", Input).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def show_error(self, text: str) -> None:
        error = self.query_one("#save-error", Static)
        error.update(text)
        error.display = True

    @on(Input.Submitted, "#save-path")
    def _typed(self, event: Input.Submitted) -> None:
        event.stop()
        target = check_save_target(event.value, self.current, self._confirm)
        if isinstance(target, str):
            self.show_error(target)
            self._confirm = absolute(event.value.strip()) if "exists" in target else None
            return
        self.dismiss(target)


def check_save_target(raw: str, current: Path | None, confirmed: Path | None) -> Path | str:
    """The path to write, or why not yet (a message; "exists" asks for a second Enter)."""
    if not raw.strip():
        return "type the path of the .toml file to write"
    path = absolute(raw.strip())
    if path.is_dir():
        return f"{path} is a folder: add a file name, e.g. {path / 'run.toml'}"
    if path.exists() and path != current and path != confirmed:
        return f"{path} exists: Enter again to overwrite it"
    return path


# --- the tab -----------------------------------------------------------------------------


class ConfigTab(ConfigForm):
    """The "1 Config" tab. The app calls `show_config(config, path)` after every change."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save config", id="config.save"),
        Binding("ctrl+o", "open", "Open config", id="config.open"),
        Binding("ctrl+shift+s", "save_as", "Save as", id="config.save_as"),
    ]

    def __init__(self, config: RunConfig | None = None, path: Path | None = None,
                 **kwargs) -> None:
        super().__init__(config, path, **kwargs)
        self._saved_text: str | None = None  # the file's content as last opened or saved
        self._confirm: Path | None = None
        if path is not None:
            self._saved_text = self.config.to_toml()

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="config-form", can_focus=False):
            yield section("Config file")
            with Horizontal(classes="field-row"):
                yield Label("file", classes="field-label")
                yield FormInput(placeholder="not saved", id="config-file")
                yield Static("", id="config-file-status", classes="field-help", markup=False)
            yield section("Run")
            for field in RUN_FIELDS:
                yield self.row(field)
            yield section("Solver")
            for field in SOLVER_FIELDS:
                yield self.row(field)
            yield section("Data")
            for field in DATA_FIELDS:
                yield self.row(field)
            yield section("Validation")
            for field in VALIDATION_FIELDS:
                yield self.row(field)

    # --- the app calls this ----------------------------------------------------------------

    def show_config(self, config: RunConfig, path: Path | None = None) -> None:
        if path != self.path:  # a file just opened or saved: its content is this config
            self._saved_text = config.to_toml() if path is not None else None
        super().show_config(config, path)

    @property
    def modified(self) -> bool:
        return self._saved_text is None or self.config.to_toml() != self._saved_text

    # --- live help -------------------------------------------------------------------------

    def help_for(self, field: FormField) -> str | tuple[str, str]:
        cfg = self.config
        if field.path == ("solver",):
            try:
                reason = solver_base.choose_solver(cfg.solver).reason
            except SpoInputError as exc:
                return exc.problem, "warning"
            return f"→ {reason}" if cfg.solver == "auto" else reason
        if field.path == ("runs_dir",):
            from core.runlog import runs_dir_for  # the sample's logs go to ./runs
            return f"→ {short_path(runs_dir_for(cfg), 34)}"
        if field.path == ("data", "dir"):
            if cfg.data.dir is None:
                return "empty: the embedded sample data"
            where = cfg.data_dir()
            if where.is_dir():
                return f"ok {short_path(where, 34)}"
            return f"missing {short_path(where, 30)}", "error"
        if field.path[:2] == ("data", "files"):
            return self._table_help(field.path[2])
        if field.path == ("as_of",) and cfg.data.dir is None:
            return "YYYY-MM-DD HH:MM; empty: the sample's time"
        return field.help

    def _table_help(self, name: str) -> str | tuple[str, str]:
        path = self._paths[name]
        required = TABLES[name].required
        shown = path.name if name not in self.config.data.files else short_path(path, 30)
        if path.is_file():
            return f"ok {shown}"
        if required:
            return f"missing {shown}", "error"
        return ("none (optional)", "") if name not in self.config.data.files \
            else (f"missing {shown}", "warning")

    def _refresh_help(self) -> None:
        self._paths = resolve_paths(self.config.data_dir(), self.config.file_overrides())
        super()._refresh_help()

    def refresh_extras(self) -> None:
        box = self.query_one("#config-file", Input)
        if self.app.focused is not box:
            box.value = str(self.path) if self.path is not None else ""
        if self.path is None:
            status = "not saved: ctrl+s asks for a path"
        elif self.modified:
            status = "modified: ctrl+s saves"
        else:
            status = "saved"
        status_widget = self.query_one("#config-file-status", Static)
        status_widget.set_class(self.path is not None and self.modified, "-warning")
        status_widget.update(status + "; Enter here: save as")

    # --- save and open ---------------------------------------------------------------------

    def _commit_pending(self) -> bool:
        """Commit an edit still in the focused field; False if it is invalid."""
        field = self._pending()
        if field is None:
            return True
        self.commit(field, self.app.focused.value)
        if field.widget_id in self.errors:
            self.app.notify(f"{field.label}: {self.errors[field.widget_id]} (Esc reverts)",
                            severity="error", markup=False)
            return False
        return True

    def action_save(self) -> None:
        if not self._commit_pending():
            return
        if self.path is None:
            self.action_save_as()
        else:
            self.save_to(self.path)

    def action_save_as(self) -> None:
        if not self._commit_pending():
            return
        start = str(self.path) if self.path is not None else str(Path.cwd() / "run.toml")

        def chosen(path: Path | None) -> None:
            if path is not None:
                self.save_to(path)

        self.app.push_screen(SaveAsModal(start, self.path), chosen)

    def save_to(self, path: Path) -> bool:
        """Write the config to `path` atomically; a new path is posted as ConfigChanged."""
        path = absolute(path)
        config, rewritten = rebased(self.config, path.parent)
        try:
            config.save(path)
        except OSError as exc:
            self.app.notify(f"cannot save {path}: {exc}", severity="error", markup=False)
            return False
        self._remember(path)
        if path != self.path or rewritten:
            reason = f"saved as {path}"
            if rewritten:
                reason += f" (made absolute: {', '.join(rewritten)})"
            self.show_config(config, path)
            self.post_message(ConfigChanged(config, path=path, reload_data=False,
                                            reason=reason))
        else:
            self._saved_text = config.to_toml()
            self.refresh_extras()
            # Posted even though nothing changed, so the app knows the edits are on disk.
            self.post_message(ConfigChanged(config, path=path, reload_data=False,
                                            reason=f"saved {path}"))
        return True

    def action_open(self) -> None:
        start = f"{self.path.parent}/" if self.path is not None else ""

        def chosen(result: tuple[Path, RunConfig] | None) -> None:
            if result is not None:
                self.open_config(*result)

        self.app.push_screen(OpenConfigModal(recent.read_recent(), start), chosen)

    def open_config(self, path: Path, config: RunConfig) -> None:
        """Adopt a config just loaded from `path` and ask the app to reload the data."""
        self._remember(path)
        self.show_config(config, path)
        self.post_message(ConfigChanged(config, path=path, reload_data=True,
                                        reason=f"opened {path}"))

    def _remember(self, path: Path) -> None:
        try:
            recent.add_recent(path)
        except OSError as exc:
            self.app.notify(f"recent configs not updated: {exc}", severity="warning",
                            markup=False)

    # --- the file field: Enter saves under the typed name ----------------------------------

    @on(Input.Submitted, "#config-file")
    def _save_here(self, event: Input.Submitted) -> None:
        event.stop()
        if not self._commit_pending():
            return
        target = check_save_target(event.value, self.path, self._confirm)
        if isinstance(target, str):
            self._confirm = absolute(event.value.strip()) if "exists" in target else None
            status = self.query_one("#config-file-status", Static)
            status.set_class(True, "-warning")
            status.update(target)
            return
        self._confirm = None
        self.save_to(target)

    @on(Input.Blurred, "#config-file")
    def _leave_file(self, event: Input.Blurred) -> None:
        self._confirm = None
        if self.is_attached:
            self.refresh_extras()
