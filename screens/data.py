"""Data & Universe: every raw table and the merged universe, with the diagnostics.

Grids are textual-fastdatatable over the Polars frames: only the visible cells render, so
the 15,000-row universe opens at once. `/` filters rows (case-insensitive, any text column),
`s` sorts by the cursor's column (again to reverse), and `j` on a diagnostic jumps to its
instrument in the universe.
"""

from __future__ import annotations

import polars as pl
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option
from textual_fastdatatable import DataTable
from textual_fastdatatable.backend import PolarsBackend

UNIVERSE, DIAGNOSTICS, INTRADAY_CHANGES = "universe", "diagnostics", "intraday changes"


def filter_frame(frame: pl.DataFrame, text: str) -> pl.DataFrame:
    """Rows where any text column contains `text` (case-insensitive)."""
    text = text.strip()
    if not text:
        return frame
    cols = [c for c, t in frame.schema.items() if t == pl.String]
    if not cols:
        return frame.clear()
    needle = text.lower()
    return frame.filter(pl.any_horizontal(
        pl.col(c).str.to_lowercase().str.contains(needle, literal=True).fill_null(False)
        for c in cols))


class FrameBrowser(Vertical):
    """A list of named Polars frames beside a grid of the chosen one; filter and sort."""

    BINDINGS = [
        Binding("t", "focus_tables", "Tables", id="grid.tables",
                tooltip="Pick another table from the list (Enter shows it)"),
        Binding("slash", "filter", "Filter", key_display="/", id="grid.filter"),
        Binding("s", "sort", "Sort", id="grid.sort"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="grid.clear_filter"),
    ]

    def __init__(self, first: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.frames: dict[str, pl.DataFrame] = {}
        # Named charts (screens/bars.py) listed after the frames: (draw, summary).
        self.charts: dict[str, tuple] = {}
        self.current = first
        self.shown: pl.DataFrame | None = None
        self.sort_state: tuple[str, bool] | None = None
        self.filter_text = ""

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield OptionList(id="tables")
            with Vertical(id="grid-pane"):
                yield Static("", id="grid-title")
                yield Input(placeholder="filter: text in any column, Enter to apply, "
                                        "Esc to clear", id="filter")
                yield Vertical(id="grid-holder")

    def on_mount(self) -> None:
        self.query_one("#filter", Input).display = False
        self.query_one("#filter", Input).cursor_blink = False

    # --- data in ---------------------------------------------------------------------------

    async def show_frames(self, frames: dict[str, pl.DataFrame],
                          charts: dict[str, tuple] | None = None) -> None:
        self.frames = frames
        self.charts = charts or {}
        names = [*frames, *self.charts]
        if self.current not in names:
            self.current = names[0]
        tables = self.query_one("#tables", OptionList)
        tables.clear_options()
        for name, frame in self.frames.items():
            tables.add_option(Option(f"{name} ({frame.height:,})", id=name))
        for name in self.charts:
            tables.add_option(Option(f"{name} (chart)", id=name))
        tables.highlighted = names.index(self.current)
        await self.show_table(self.current)
        if self.showing():
            self.query_one("#grid").focus()

    def showing(self) -> bool:
        """Whether this browser's tab is the one on screen: focusing a widget in another tab
        would make TabbedContent switch to it."""
        from textual.widgets import TabbedContent, TabPane

        pane = next((a for a in self.ancestors if isinstance(a, TabPane)), None)
        tabs = next((a for a in self.ancestors if isinstance(a, TabbedContent)), None)
        return pane is None or tabs is None or tabs.active == pane.id

    def action_focus_tables(self) -> None:
        self.query_one("#tables", OptionList).focus()

    async def show_chart(self, name: str) -> None:
        from screens.bars import BarChart

        self.current, self.shown = name, None
        holder = self.query_one("#grid-holder", Vertical)
        await holder.remove_children()
        draw, summary = self.charts[name]
        # The scroll pane takes the grid's id so focus and the keys that move it stay put.
        await holder.mount(VerticalScroll(BarChart(draw, summary), id="grid"))
        self.query_one("#grid-title", Static).update(f"{name}")

    async def show_table(self, name: str, frame: pl.DataFrame | None = None) -> None:
        if name in self.charts:
            await self.show_chart(name)
            return
        self.current = name
        base = self.frames[name]
        if frame is None:
            frame = filter_frame(base, self.filter_text)
            if self.sort_state:
                col, desc = self.sort_state
                if col in frame.columns:
                    frame = frame.sort(col, descending=desc, nulls_last=True)
        self.shown = frame
        holder = self.query_one("#grid-holder", Vertical)
        had_focus = self.app.focused is not None and self.app.focused.id == "grid"
        await holder.remove_children()
        grid = DataTable(backend=PolarsBackend.from_dataframe(frame), id="grid",
                         render_markup=False, max_column_content_width=28, null_rep="")
        await holder.mount(grid)
        if had_focus:
            grid.focus()  # a re-sorted or re-filtered table keeps the keyboard
        shown = f"{frame.height:,} of {base.height:,} rows" if frame.height != base.height \
            else f"{base.height:,} rows"
        extra = f"  filter '{self.filter_text}'" if self.filter_text else ""
        if self.sort_state:
            extra += f"  sorted by {self.sort_state[0]}{' desc' if self.sort_state[1] else ''}"
        self.query_one("#grid-title", Static).update(f"{name}: {shown}{extra}")

    @on(OptionList.OptionSelected, "#tables")
    async def _pick(self, event: OptionList.OptionSelected) -> None:
        self.sort_state = None
        await self.show_table(event.option.id)
        self.query_one("#grid").focus()

    # --- actions ---------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        # Esc clears a filter only when there is one; otherwise it belongs to the app
        # (cancel a running solve).
        if action == "clear_filter":
            return bool(self.filter_text) or self.query_one("#filter", Input).display
        if action in ("filter", "sort"):
            return self.current not in self.charts  # a chart has no rows to filter or sort
        return True

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.value = self.filter_text
        box.focus()

    @on(Input.Submitted, "#filter")
    async def _apply_filter(self, event: Input.Submitted) -> None:
        self.filter_text = event.value
        event.input.display = bool(self.filter_text)
        await self.show_table(self.current)
        self.query_one("#grid").focus()

    async def action_clear_filter(self) -> None:
        self.filter_text = ""
        self.query_one("#filter", Input).display = False
        await self.show_table(self.current)

    async def action_sort(self) -> None:
        grid = self.query_one("#grid", DataTable)
        if self.shown is None or not self.shown.width:
            return
        col = self.shown.columns[min(grid.cursor_column, self.shown.width - 1)]
        desc = bool(self.sort_state and self.sort_state[0] == col and not self.sort_state[1])
        self.sort_state = (col, desc)
        await self.show_table(self.current)
        # The new grid starts at column 0; put the cursor back so `s` again reverses.
        self.query_one("#grid", DataTable).move_cursor(column=self.shown.columns.index(col))

    @on(DataTable.CellSelected)
    def _row_detail(self, event: DataTable.CellSelected) -> None:
        """Enter on a row: every column of it in full, for the text a grid cell cuts."""
        if self.shown is None or not self.shown.height:
            return
        event.stop()
        row = self.shown.row(min(event.coordinate.row, self.shown.height - 1), named=True)
        self.app.push_screen(RowDetail(f"{self.current}: row {event.coordinate.row + 1}", row))

class RowDetail(ModalScreen[None]):
    """One row, one line per column, nothing cut; Esc or Enter closes."""

    BINDINGS = [Binding("escape,enter,q", "app.pop_screen", "Close", id="row.close")]
    DEFAULT_CSS = """
    RowDetail { align: center middle; }
    RowDetail > VerticalScroll { width: 90%; max-width: 110; height: auto; max-height: 90%;
        border: round $primary; background: $surface; padding: 0 1; }
    """

    def __init__(self, title: str, row: dict) -> None:
        super().__init__()
        self.title_text = title
        self.row = row

    def compose(self) -> ComposeResult:
        width = max((len(k) for k in self.row), default=4)
        text = Text(self.title_text + "  (Esc closes)\n", style="bold")
        for key, value in self.row.items():
            text.append(f"{key:<{width}}  ", style="cyan")
            text.append(("" if value is None else str(value)) + "\n")
        with VerticalScroll():
            yield Static(text, markup=False)

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).focus()


class DataUniverse(FrameBrowser):
    """The Data & Universe tab: raw tables, the merged universe and its diagnostics."""

    BINDINGS = [Binding("j", "jump", "Jump to instrument", id="data.jump")]

    def __init__(self, **kwargs) -> None:
        super().__init__(UNIVERSE, **kwargs)

    async def show_state(self, state, changes: pl.DataFrame | None = None) -> None:
        """Called by the app once the data is loaded; after an intraday reload, with what
        changed (shares and prices per instrument), which is then the table shown."""
        frames = {UNIVERSE: state.universe.frame, DIAGNOSTICS: state.universe.diagnostics}
        if changes is not None:
            frames = {INTRADAY_CHANGES: changes, **frames}
            self.current, self.sort_state, self.filter_text = INTRADAY_CHANGES, None, ""
        frames.update({name: t.frame for name, t in state.dataset.tables.items()})
        await self.show_frames(frames)

    async def action_jump(self) -> None:
        """From a diagnostic row to its instrument in the universe grid."""
        if self.current not in (DIAGNOSTICS, INTRADAY_CHANGES) or self.shown is None \
                or not self.shown.height:
            return
        grid = self.query_one("#grid", DataTable)
        iid = self.shown.item(min(grid.cursor_row, self.shown.height - 1), "instrument_id")
        if iid is None:
            self.app.notify("this diagnostic is about the whole table, not one instrument")
            return
        self.filter_text, self.sort_state = "", None
        self.query_one("#filter", Input).display = False
        await self.show_table(UNIVERSE)
        ids = self.shown.get_column("instrument_id")
        hits = ids.eq(iid).arg_true()
        if hits.len():
            self.query_one("#grid", DataTable).move_cursor(row=int(hits[0]))
            self.query_one("#tables", OptionList).highlighted = list(self.frames).index(
                UNIVERSE)
        else:
            self.app.notify(f"{iid} is not in the universe (its rows were dropped at load)",
                            severity="warning")
