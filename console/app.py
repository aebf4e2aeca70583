"""The spo console: one App, workflow tabs as widgets, every blocking call a worker.

Loading runs in a thread worker that ends by posting a message; worker errors go through
one handler (`on_worker_state_changed`) to a notification, never a crash.
"""

from __future__ import annotations

import datetime as dt
import inspect
import threading
from functools import partial
from pathlib import Path
from typing import Callable

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Footer, Static, TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from console.state import AppState
from core.settings import RunConfig
from screens.bars import money
from screens.config import ConfigTab
from screens.constraints import ConstraintsTab
from screens.data import DataUniverse
from screens.messages import ConfigChanged
from screens.results import RunResults
from screens.settings import SettingsTab

STYLES = Path(__file__).resolve().parent.parent / "styles" / "spo.tcss"


class StatusLine(Static):
    """account | run | NAV | last solve | solver and why: one line when it fits, else two
    (the run on the first, the solve and the solver on the second)."""

    parts: tuple[str, str] = ("", "")

    def show(self, state: AppState, solver_reason: str, last_solve: str) -> None:
        uni = state.universe
        nav = f"NAV {money(uni.nav)} {uni.numeraire}" if uni is not None else "loading..."
        run = state.run_id or "-"
        self.parts = (f" {state.config.account} | {run} | {nav}",
                      f" {last_solve} | {solver_reason}")
        self.update(self._text(self.size.width))

    def _text(self, width: int) -> str:
        first, second = self.parts
        one = f"{first} |{second}"
        return one if width == 0 or len(one) <= width else f"{first}\n{second}"

    def on_resize(self) -> None:
        self.update(self._text(self.size.width))


class SpoApp(App):
    CSS_PATH = str(STYLES)
    TITLE = "spo"
    BINDINGS = [
        # The tab bar shows these keys ("1 Config" ...), so the Footer keeps its room.
        Binding("1", "show_tab('config')", "Config", show=False, id="tab.config",
                tooltip="Go to 1 Config"),
        Binding("2", "show_tab('data')", "Data", show=False, id="tab.data",
                tooltip="Go to 2 Data & Universe"),
        Binding("3", "show_tab('constraints')", "Constraints", show=False,
                id="tab.constraints", tooltip="Go to 3 Constraints"),
        Binding("4", "show_tab('settings')", "Settings", show=False, id="tab.settings",
                tooltip="Go to 4 Optimization Settings"),
        Binding("5", "show_tab('run')", "Run", show=False, id="tab.run",
                tooltip="Go to 5 Run & Results"),
        Binding("f1", "show_help_panel", "Help", id="app.help"),
        Binding("ctrl+v", "validate", "Validate", id="run.validate",
                tooltip="Validate the data and the constraints before solving"),
        Binding("ctrl+r", "solve", "Solve", id="run.solve"),
        Binding("escape", "cancel_solve", "Cancel solve", show=False, id="run.cancel"),
        # priority: an Input would otherwise take ctrl+e as "end of line" (End does that).
        Binding("ctrl+e", "export", "Export", id="run.export", priority=True,
                tooltip="Export the orders for the OMS"),
        Binding("ctrl+l", "reload_intraday", "Reload", id="data.reload",
                tooltip="Reload intraday positions and cash"),
        Binding("ctrl+q", "quit_checked", "Quit", id="app.quit", priority=True),
    ]

    class SolveProgress(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class Solved(Message):
        def __init__(self, result, advice=(), log_path: Path | None = None) -> None:
            super().__init__()
            self.result = result
            self.advice = list(advice)
            self.log_path = log_path

    class Validated(Message):
        def __init__(self, checks, data_diagnostics) -> None:
            super().__init__()
            self.checks = checks
            self.data_diagnostics = data_diagnostics

    class Loaded(Message):
        def __init__(self, changes=None) -> None:
            super().__init__()
            self.changes = changes

    def __init__(self, config: RunConfig | None = None,
                 clock: Callable[[], dt.datetime] = dt.datetime.now,
                 token: Callable[[], str] | None = None,
                 config_path: Path | None = None) -> None:
        super().__init__()
        self.config_path = config_path
        self.animation_level = "none"
        self.state = AppState(config or RunConfig(), clock=clock)
        if token is not None:
            self.state.token = token
        from core.solvers.base import choose_solver
        self.solver_reason = choose_solver(self.state.config.solver).reason
        self.last_solve = "no solve yet"
        self.result = None
        self.previous = None
        self.cancel = threading.Event()
        self.solving = False
        self.out_dir = Path("out")
        self.unsaved = False  # edits since the config was opened or saved
        self._quit_warned = False
        # How a duration is shown; snapshot tests fix it so the pictures do not move.
        self.seconds: Callable[[float], str] = lambda s: f"{s:.2f}s"
        self.runs_dir: Path | None = None  # None: the config's runs_dir
        # Solve in the warm child process (console/solve_process.py) so the screen never
        # stalls; False solves in the worker thread.
        self.solve_in_process = True
        self.last_log: Path | None = None

    def compose(self) -> ComposeResult:
        yield StatusLine(id="status")
        with TabbedContent(initial="data", id="tabs"):
            # The editing tabs are mounted after the first paint (_mount_editing_tabs):
            # their few hundred form widgets would otherwise double the time to a screen.
            yield TabPane("1 Config", id="config")
            with TabPane("2 Data & Universe", id="data"):
                yield DataUniverse(id="data-universe")
            yield TabPane("3 Constraints", id="constraints")
            # "Settings" is left out of the title so all five fit in 80 columns.
            yield TabPane("4 Optimization", id="settings")
            with TabPane("5 Run & Results", id="run"):
                yield RunResults(id="run-results")
        yield Footer(compact=True)

    async def on_mount(self) -> None:
        self.refresh_status()
        self.load()
        if self.solve_in_process:
            self.warm_solver()
        self.call_after_refresh(self._mount_editing_tabs)

    async def _mount_editing_tabs(self) -> None:
        await self.query_one("#config", TabPane).mount(ConfigTab(id="config-tab"))
        await self.query_one("#constraints", TabPane).mount(
            ConstraintsTab(id="constraints-tab"))
        await self.query_one("#settings", TabPane).mount(SettingsTab(id="settings-tab"))
        self.apply_keymap(self.state.config.console.keys)  # now every binding id exists
        await self.show_config_everywhere()
        if self.state.universe is not None:
            await self.query_one(ConstraintsTab).show_universe(self.state.universe)

    @work(thread=True, group="warm", exit_on_error=False)
    def warm_solver(self) -> None:
        """Start the solver's child now, so the first ctrl+r does not wait for its imports."""
        from console.solve_process import shared

        shared().start()

    async def show_config_everywhere(self) -> None:
        cfg = self.state.config
        shows = [tab.show_config(cfg, self.config_path)
                 for tab in [*self.query(ConfigTab), *self.query(SettingsTab)]]
        shows += [tab.show_config(cfg) for tab in self.query(ConstraintsTab)]
        for shown in shows:
            if inspect.isawaitable(shown):
                await shown

    @on(ConfigChanged)
    async def _config_changed(self, message: ConfigChanged) -> None:
        """An edit from any tab: the app takes the new config, and reloads when it must."""
        from core.solvers.base import choose_solver

        self.state.config = message.config
        if message.path is not None:
            self.config_path = message.path
        # A save or an open brings a file and the config level; any other edit does not.
        self.unsaved = message.path is None or not message.reason.startswith(("saved", "opened"))
        self._quit_warned = False
        self.solver_reason = choose_solver(message.config.solver).reason
        self.apply_keymap(message.config.console.keys)
        self.refresh_status()
        await self.show_config_everywhere()
        if message.reason:
            self.notify(message.reason, markup=False)
        if message.reload_data:
            self.state.universe = None
            self.load()

    # --- keys: remap, palette, help ------------------------------------------------------

    def tab_bindings(self) -> list[tuple[TabPane, Widget, Binding]]:
        """Bindings with an id of the widgets inside each tab (their classes' and bases')."""
        found = []
        for pane in self.query(TabPane):
            for widget in pane.query("*"):
                seen = set()
                for cls in type(widget).__mro__:
                    for b in cls.__dict__.get("BINDINGS", []):
                        if isinstance(b, Binding) and b.id and b.id not in seen:
                            seen.add(b.id)
                            found.append((pane, widget, b))
        return found

    def binding_sources(self) -> list[tuple[str, list[Binding]]]:
        """Every binding with an id, grouped by where it works (app-wide, then per tab)."""
        sources = [("everywhere", list(self.BINDINGS))]
        by_tab: dict[str, list[Binding]] = {}
        for pane, _, b in self.tab_bindings():
            by_tab.setdefault(str(pane._title), []).append(b)
        return sources + list(by_tab.items())

    def apply_keymap(self, keys: dict[str, str]) -> None:
        known = {b.id for _, bs in self.binding_sources() for b in bs}
        unknown = sorted(set(keys) - known)
        if unknown:
            self.notify(f"[console.keys]: unknown binding id(s) {', '.join(unknown)}; "
                        "F1 lists the ids", severity="warning", markup=False, timeout=15)
        self.set_keymap({k: v for k, v in keys.items() if k in known})

    def action_show_help_panel(self) -> None:
        from screens.help import HelpScreen, key_rows

        self.push_screen(HelpScreen(key_rows(self.binding_sources(),
                                             self.state.config.console.keys)))

    def get_system_commands(self, screen):
        """The palette lists every app action by name (ctrl+p), beside Textual's own."""
        yield from super().get_system_commands(screen)
        keys = self.state.config.console.keys
        for b in self.BINDINGS:
            if b.id in ("app.quit", "app.help"):  # Textual lists these as Quit and Keys
                continue
            yield SystemCommand(b.tooltip or b.description,
                                f"{keys.get(b.id, b.key_display or b.key)}  ({b.id})",
                                partial(self.run_action, b.action))
        listed = set()
        for pane, widget, b in self.tab_bindings():
            title = f"{str(pane._title).split(' ', 1)[-1]}: {b.tooltip or b.description}"
            if title in listed or b.action == "clear_filter":
                continue
            listed.add(title)
            yield SystemCommand(title, f"{keys.get(b.id, b.key_display or b.key)}  ({b.id})",
                                partial(self.run_in_tab, pane.id, widget, b.action))

    async def run_in_tab(self, tab: str, widget: Widget, action: str) -> None:
        """A tab's action from the palette: show the tab, then act as its key would."""
        self.action_show_tab(tab)
        await self.run_action(action, widget)

    def refresh_status(self) -> None:
        self.query_one(StatusLine).show(self.state, self.solver_reason, self.last_solve)

    # --- workers -------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def load(self) -> None:
        self.state.load()
        self.post_message(self.Loaded())

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def reload(self) -> None:
        changes = self.state.reload_intraday()
        self.post_message(self.Loaded(changes))

    @work(thread=True, exclusive=True, group="solve", exit_on_error=False)
    def solve(self) -> None:
        cfg = self.state.config

        def progress(p) -> None:
            if p is None:
                self.post_message(self.SolveProgress("writing the run log and the advice..."))
                return
            self.post_message(self.SolveProgress(
                f"solving: iteration {p.iteration}  utility {-p.primal_objective:,.4f} bp  "
                f"gap {p.gap:.1e}  {p.elapsed_s:.2f} s   (Esc cancels)"))

        from console.solve_process import SolveJob, run_job, shared

        job = SolveJob(self.state.universe, cfg.all_constraints(), cfg.optimization,
                       cfg.solver, cfg.optimization.time_limit_s, cfg, self.state.run_context,
                       self.runs_dir, self.state.dataset)
        if self.solve_in_process:
            result, advice, path = shared().solve(job, progress, self.cancel)
        else:
            result, advice, path = run_job(job, progress, self.cancel)
        self.post_message(self.Solved(result, advice, path))

    @work(thread=True, exclusive=True, group="validate", exit_on_error=False)
    def validate(self) -> None:
        """The data diagnostics and the pre-solve checks of the constraints, as they stand."""
        from core.constraints.presolve import presolve

        cfg = self.state.config
        checks = presolve(cfg.all_constraints(), self.state.universe, cfg.optimization)
        self.post_message(self.Validated(checks, self.state.universe.diagnostics))

    @on(Validated)
    async def _validated(self, message: Validated) -> None:
        await self.query_one(RunResults).show_validation(message.checks,
                                                         message.data_diagnostics)

    @on(SolveProgress)
    def _progress(self, message: SolveProgress) -> None:
        self.query_one(RunResults).show_progress(message.text)

    @on(Solved)
    async def _solved(self, message: Solved) -> None:
        result = message.result
        self.solving = False
        self.previous, self.result = self.result, result
        total = sum(result.timings.values())
        self.last_solve = f"last solve {result.status} {self.seconds(total)}"
        if result.ok and result.summary.get("utility_bp") is not None:
            self.last_solve += f" {result.summary['utility_bp']:,.1f}bp"
        self.refresh_status()
        if isinstance(message.log_path, str):  # why the run log could not be written
            self.notify(message.log_path, severity="warning", markup=False, timeout=15)
            message.log_path = None
        self.last_log = message.log_path
        await self.query_one(RunResults).show_result(
            result, self.previous, message.advice, message.log_path,
            self.state.config.optimization.representation)
        if self.query_one("#tabs", TabbedContent).active == "run":
            self.query_one("#results-browser #grid").focus()
        if result.status == "infeasible":
            self.notify("infeasible: the relaxation report shows what to relax",
                        severity="warning")

    @on(Loaded)
    async def _loaded(self, message: Loaded) -> None:
        self.refresh_status()
        await self.query_one(DataUniverse).show_state(self.state, message.changes)
        for tab in self.query(ConstraintsTab):  # absent until mounted after the first paint
            await tab.show_universe(self.state.universe)
        if message.changes is not None:
            n = message.changes.height
            if n:
                self.action_show_tab("data")
            self.notify(f"intraday reload: {n} instrument(s) changed; ctrl+r solves again"
                        if n else "intraday reload: nothing changed")

    @on(RunResults.ApplyAdvice)
    async def _apply_advice(self, message: RunResults.ApplyAdvice) -> None:
        """A suggestion's change goes into the config like any edit, then it solves again."""
        from core.advice import apply_change
        from core.errors import SpoInputError

        change = message.suggestion.change
        try:
            config = apply_change(self.state.config, change)
        except SpoInputError as exc:
            self.notify(str(exc), title="cannot apply", severity="error", markup=False)
            return
        await self._config_changed(ConfigChanged(
            config, reason=f"applied: {change.describe()}; solving again"))
        self.action_solve()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one error path for every worker: a notification with the message."""
        if event.worker.group == "solve" and event.state in (WorkerState.ERROR,
                                                             WorkerState.CANCELLED):
            self.solving = False  # no Solved message comes: the next ctrl+r must work
            self.refresh_bindings()
        if event.state == WorkerState.ERROR:
            self.notify(str(event.worker.error), title=f"{event.worker.group} failed",
                        severity="error", markup=False, timeout=15)

    # --- actions -------------------------------------------------------------------------

    def action_show_tab(self, tab: str) -> None:
        self.query_one("#tabs", TabbedContent).active = tab

    @on(TabbedContent.TabActivated)
    def _focus_tab(self, event: TabbedContent.TabActivated) -> None:
        """The keys of a tab work at once: focus its first field or grid.

        Only for the tab still showing and only when the focus is outside it: focusing a
        widget in another pane makes TabbedContent switch to that pane, so two quick
        switches would otherwise chase each other's focus back and forth for ever."""
        pane = event.pane
        if self.query_one("#tabs", TabbedContent).active != pane.id:
            return
        focused = self.focused
        if focused is not None and pane in focused.ancestors:
            return
        grids = [g for g in pane.query("#grid") if g.focusable]
        if grids:
            grids[0].focus()
            return
        for widget in pane.query("*"):
            if widget.focusable and widget.display and widget.id != "tables":
                widget.focus()
                return

    def action_solve(self) -> None:
        if self.state.universe is None:
            self.notify("still loading", severity="warning")
            return
        if self.solving:
            self.notify("a solve is running: Esc cancels it", severity="warning")
            return
        self.cancel.clear()
        self.solving = True
        self.action_show_tab("run")
        self.query_one(RunResults).focus()
        self.query_one(RunResults).show_progress("solving...   (Esc cancels)")
        self.solve()

    def action_quit_checked(self) -> None:
        """Quit; with edits not saved to the config file, the first ctrl+q only warns."""
        if self.unsaved and not self._quit_warned:
            self._quit_warned = True
            self.notify("the config has edits not saved to a file: ctrl+s on tab 1 saves, "
                        "ctrl+q again quits without saving", severity="warning", timeout=10)
            return
        self.exit()

    def action_validate(self) -> None:
        if self.state.universe is None:
            self.notify("still loading", severity="warning")
            return
        self.action_show_tab("run")
        self.query_one(RunResults).show_progress("validating the data and the constraints...")
        self.validate()

    def action_cancel_solve(self) -> None:
        if self.solving:
            self.cancel.set()  # the solver checks it every iteration
            self.query_one(RunResults).show_progress("cancelling...")

    def action_export(self) -> None:
        from core.outputs import write_outputs

        if self.result is None:
            self.notify("nothing to export: solve first (ctrl+r)", severity="warning")
            return
        # One folder per solve, named like its run log, so a later export never overwrites.
        name = self.last_log.stem if self.last_log is not None else (self.state.run_id or "run")
        files = write_outputs(self.result, self.out_dir / name)
        where = files.get("orders", files["run"])
        self.notify(f"wrote {len(files)} files; orders: {where}", markup=False, timeout=10)

    def action_reload_intraday(self) -> None:
        if self.state.dataset is None:
            self.notify("still loading", severity="warning")
            return
        self.reload()
