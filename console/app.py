"""The spo console: one App, workflow tabs as widgets, every blocking call a worker.

Loading runs in a thread worker that ends by posting a message; worker errors go through
one handler (`on_worker_state_changed`) to a notification, never a crash.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Callable

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Footer, Static, TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from console.state import AppState
from core.settings import RunConfig
from screens.data import DataUniverse

STYLES = Path(__file__).resolve().parent.parent / "styles" / "spo.tcss"


class StatusLine(Static):
    """account | run | numeraire | NAV | solver and why | last solve."""

    def show(self, state: AppState, solver_reason: str, last_solve: str) -> None:
        uni = state.universe
        nav = f"NAV {uni.nav:,.0f} {uni.numeraire}" if uni is not None else "loading..."
        run = state.run_id or "-"
        self.update(f" {state.config.account} | {run} | {nav} | {solver_reason} | {last_solve}")


class SpoApp(App):
    CSS_PATH = str(STYLES)
    TITLE = "spo"
    BINDINGS = [
        Binding("1", "show_tab('data')", "Data", id="tab.data"),
        Binding("ctrl+l", "reload_intraday", "Reload intraday", id="data.reload"),
        Binding("f1", "show_help_panel", "Help", id="app.help"),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True),
    ]

    class Loaded(Message):
        def __init__(self, changes=None) -> None:
            super().__init__()
            self.changes = changes

    def __init__(self, config: RunConfig | None = None,
                 clock: Callable[[], dt.datetime] = dt.datetime.now,
                 token: Callable[[], str] | None = None) -> None:
        super().__init__()
        self.animation_level = "none"
        self.state = AppState(config or RunConfig(), clock=clock)
        if token is not None:
            self.state.token = token
        from core.solvers.base import choose_solver
        self.solver_reason = choose_solver(self.state.config.solver).reason
        self.last_solve = "no solve yet"

    def compose(self) -> ComposeResult:
        yield StatusLine(id="status")
        with TabbedContent(initial="data", id="tabs"):
            with TabPane("1 Data & Universe", id="data"):
                yield DataUniverse(id="data-universe")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_status()
        self.load()

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

    @on(Loaded)
    async def _loaded(self, message: Loaded) -> None:
        self.refresh_status()
        await self.query_one(DataUniverse).show_state(self.state)
        if message.changes is not None:
            n = message.changes.height
            self.notify(f"intraday reload: {n} instrument(s) changed" if n
                        else "intraday reload: nothing changed")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one error path for every worker: a notification with the message."""
        if event.state == WorkerState.ERROR:
            self.notify(str(event.worker.error), title=f"{event.worker.group} failed",
                        severity="error", markup=False, timeout=15)

    # --- actions -------------------------------------------------------------------------

    def action_show_tab(self, tab: str) -> None:
        self.query_one("#tabs", TabbedContent).active = tab

    def action_reload_intraday(self) -> None:
        if self.state.dataset is None:
            self.notify("still loading", severity="warning")
            return
        self.reload()
