"""Constraints: the run's constraints in three editable grids, and what is wrong with them.

Instrument, group and portfolio constraints each have a textual-fastdatatable grid over a
Polars frame of their specs; below them the pre-solve diagnostics (core.constraints.presolve)
for the current universe, recomputed in a thread worker after every edit.

Keys: e/Enter edit the cell under the cursor (Enter on `on` or `hard/soft` toggles it), a adds
a constraint to the focused grid, d/Delete deletes the row, h toggles hard/soft, space
enables/disables, u undoes (several levels), Tab/Shift+Tab or ] / [ move between the grids
and the diagnostics (Enter on a diagnostic jumps to its constraint). Every edit is validated
by building the ConstraintSpec; a refused one keeps the old value and says why. Each accepted
edit posts one ConfigChanged with the whole new config.
"""

from __future__ import annotations

import threading

import polars as pl
from pydantic import ValidationError
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option
from textual_fastdatatable import DataTable
from textual_fastdatatable.backend import PolarsBackend

from core.constraints.catalogue import KINDS
from core.constraints.presolve import SCHEMA as PRESOLVE_SCHEMA
from core.constraints.presolve import fmt, presolve
from core.constraints.spec import ConstraintSpec
from core.errors import SpoInputError
from core.settings import RunConfig
from screens.messages import ConfigChanged

SCOPES = ("instrument", "group", "portfolio")
TITLES = {"instrument": "Instrument", "group": "Group", "portfolio": "Portfolio"}
SELECTORS = {"instrument": ("instrument",), "group": ("group_by", "group", "factor"),
             "portfolio": ()}
# Grid column -> ConstraintSpec field.
FIELD = {"on": "enabled", "hard/soft": "soft"}
UNDO_DEPTH = 100


def grid_columns(scope: str) -> list[str]:
    return ["on", "name", "kind", *SELECTORS[scope], "lower", "upper", "unit", "hard/soft",
            "penalty", "priority"]


def scope_of(spec: ConstraintSpec) -> str:
    return KINDS[spec.kind].scope


def spec_frame(specs: list[ConstraintSpec], scope: str) -> pl.DataFrame:
    """The grid's frame: one row per spec of the scope, as the trader reads it. A target and
    band show as the lower and upper bounds they mean."""
    cols = grid_columns(scope)
    rows = []
    for s in specs:
        if scope_of(s) != scope:
            continue
        cell = {"on": "on" if s.enabled else "off", "name": s.name, "kind": s.kind,
                "instrument": s.instrument, "group_by": s.group_by, "group": s.group,
                "factor": s.factor, "lower": "" if s.lo is None else fmt(s.lo),
                "upper": "" if s.hi is None else fmt(s.hi), "unit": s.unit,
                "hard/soft": "soft" if s.soft else "hard", "penalty": fmt(s.penalty),
                "priority": fmt(s.priority)}
        if scope == "group" and s.kind in ("factor_exposure", "currency_cash"):
            cell["group_by"] = ""
            if s.kind == "factor_exposure":
                cell["group"] = ""
        rows.append([cell[c] for c in cols])
    return pl.DataFrame(rows, schema={c: pl.String for c in cols}, orient="row")


def validation_message(exc: ValidationError) -> str:
    err = exc.errors()[0]
    msg = err["msg"].removeprefix("Value error, ")
    loc = ".".join(str(p) for p in err["loc"])
    return f"{loc}: {msg}" if loc else msg


def parse_number(text: str, field: str) -> float | None:
    text = text.strip().replace(",", "").replace("_", "")
    if text.lower() in ("", "none", "-"):
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{field}: '{text}' is not a number") from None


def parse_flag(text: str, field: str, yes: tuple[str, ...], no: tuple[str, ...]) -> bool:
    t = text.strip().lower()
    if t in yes:
        return True
    if t in no:
        return False
    raise ValueError(f"{field}: type {yes[0]} or {no[0]}")


def _auto_named(spec: ConstraintSpec) -> bool:
    return ConstraintSpec.model_validate({**spec.model_dump(), "name": ""}).name == spec.name


def edited_spec(old: ConstraintSpec, column: str, text: str) -> ConstraintSpec:
    """The spec with one grid cell changed; ValueError says why not."""
    field = FIELD.get(column, column)
    data = old.model_dump()
    kind = KINDS[old.kind]
    if field in ("lower", "upper"):
        if kind.no_bounds:
            raise ValueError(f"{old.kind} takes no bounds")
        # A target and band become the lower and upper bounds they stand for.
        data.update(target=None, band=None, lower=old.lo, upper=old.hi)
        data[field] = parse_number(text, field)
    elif field in ("penalty", "priority"):
        value = parse_number(text, field)
        if value is None:
            raise ValueError(f"{field} needs a number")
        data[field] = value
    elif field == "enabled":
        data[field] = parse_flag(text, "on", ("on", "yes", "true", "1"),
                                 ("off", "no", "false", "0"))
    elif field == "soft":
        data[field] = parse_flag(text, "hard/soft", ("soft",), ("hard",))
    elif field == "kind":
        new = text.strip()
        if new in KINDS and KINDS[new].scope != kind.scope:
            raise ValueError(f"{new} is a {KINDS[new].scope} constraint; add it in that grid")
        data["kind"] = new
        if new in KINDS and data["unit"] not in KINDS[new].units:
            data["unit"] = ""  # the new kind's default unit
    elif field in ("instrument", "group"):
        data[field] = text.strip() or "*"
    else:
        data[field] = text.strip()
    if field != "name" and _auto_named(old):
        data["name"] = ""  # an automatic name follows the new selector
    try:
        return ConstraintSpec.model_validate(data)
    except ValidationError as exc:
        raise ValueError(validation_message(exc)) from None


def duplicate_name(specs: list[ConstraintSpec], index: int | None,
                   spec: ConstraintSpec) -> str | None:
    """An error when `spec` (replacing specs[index], or added) shares an enabled name."""
    if not spec.enabled:
        return None
    for i, other in enumerate(specs):
        if i != index and other.enabled and other.name == spec.name:
            return (f"another constraint is named '{spec.name}'; give this one a name "
                    "of its own")
    return None


# --- modals --------------------------------------------------------------------------------


class QuietInput(Input):
    """A one-line input that does not blink (deterministic snapshots)."""

    def on_mount(self) -> None:
        self.cursor_blink = False


class EditModal(ModalScreen[str | None]):
    """One cell: the old value, an input, and the validation message inline."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="constraints.edit_cancel")]

    def __init__(self, title: str, old: str, check) -> None:
        super().__init__()
        self.title_text = title
        self.old = old
        self.check = check  # text -> error message or None

    def compose(self) -> ComposeResult:
        with Vertical(id="ct-edit-box", classes="ct-modal"):
            yield Static(self.title_text, classes="ct-modal-title", markup=False)
            yield Static(f"was: {self.old or '(empty)'}", classes="ct-modal-hint",
                         markup=False)
            yield QuietInput(self.old, compact=True, id="ct-edit-input")
            yield Static("", id="ct-edit-error", classes="ct-error", markup=False)
            yield Static("Enter accept   Esc cancel", classes="ct-modal-hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submit(self, event: Input.Submitted) -> None:
        error = self.check(event.value)
        if error:
            self.query_one("#ct-edit-error", Static).update(error)
            return
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


ADD_FIELDS = ("name", "instrument", "group_by", "group", "factor", "lower", "upper", "unit",
              "hard/soft", "penalty")


class AddModal(ModalScreen[dict | None]):
    """A new constraint: pick a kind of this grid's scope, then fill in its fields."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="constraints.add_cancel")]

    def __init__(self, scope: str, check) -> None:
        super().__init__()
        self.scope = scope
        self.check = check  # fields -> error message or None
        self.kinds = [k for k in KINDS.values() if k.scope == scope]
        self.kind = self.kinds[0].name

    def compose(self) -> ComposeResult:
        with Vertical(id="ct-add-box", classes="ct-modal"):
            article = "an" if self.scope == "instrument" else "a"
            yield Static(f"Add {article} {self.scope} constraint", classes="ct-modal-title")
            yield OptionList(*[Option(Text(_short(f"{k.name:<18} {k.doc}", 62)), id=k.name)
                               for k in self.kinds], id="ct-add-kinds")
            yield Static("", id="ct-add-doc", classes="ct-modal-hint", markup=False)
            for name in ADD_FIELDS:
                with Horizontal(classes="ct-field", id=f"ct-row-{_css(name)}"):
                    yield Label(name, classes="ct-field-label")
                    yield QuietInput(compact=True, id=f"ct-add-{_css(name)}")
            yield Static("", id="ct-add-error", classes="ct-error", markup=False)
            yield Static("Up/Down kind  Enter fields  Tab next field  Enter adds  Esc cancels",
                         classes="ct-modal-hint")

    def on_mount(self) -> None:
        kinds = self.query_one("#ct-add-kinds", OptionList)
        kinds.highlighted = 0
        kinds.focus()
        self._show_kind(self.kind)

    def _show_kind(self, name: str) -> None:
        self.kind = name
        kind = KINDS[name]
        show = {"name", "unit", "hard/soft", "penalty"}
        if kind.scope == "instrument":
            show.add("instrument")
        elif name == "factor_exposure":
            show.add("factor")
        elif name == "currency_cash":
            show.add("group")
        elif kind.scope == "group":
            show |= {"group_by", "group"}
        if not kind.no_bounds:
            show |= {"lower", "upper"}
        for field in ADD_FIELDS:
            self.query_one(f"#ct-row-{_css(field)}").display = field in show
        placeholders = {"name": "automatic", "instrument": "* or an instrument_id",
                        "group_by": "sector, industry, country, currency or type",
                        "group": "* for each, or one value", "factor": "a name, kind:style or *",
                        "lower": "none", "upper": "none",
                        "unit": " | ".join(kind.units), "hard/soft": "hard",
                        "penalty": "100 (bp of NAV per unit, soft only)"}
        for field, text in placeholders.items():
            self.query_one(f"#ct-add-{_css(field)}", Input).placeholder = text
        needs = "no bounds" if kind.no_bounds else (
            "an upper bound" if kind.needs_upper else "lower and/or upper")
        self.query_one("#ct-add-doc", Static).update(
            f"{name}: {kind.doc}; units {', '.join(kind.units)}; {needs}")

    @on(OptionList.OptionHighlighted, "#ct-add-kinds")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self._show_kind(event.option.id)

    @on(OptionList.OptionSelected, "#ct-add-kinds")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self._show_kind(event.option.id)
        for field in ADD_FIELDS:
            if self.query_one(f"#ct-row-{_css(field)}").display and field != "name":
                self.query_one(f"#ct-add-{_css(field)}", Input).focus()
                return

    def fields(self) -> dict[str, str]:
        out = {"kind": self.kind}
        for field in ADD_FIELDS:
            if self.query_one(f"#ct-row-{_css(field)}").display:
                out[field] = self.query_one(f"#ct-add-{_css(field)}", Input).value
        return out

    @on(Input.Submitted)
    def _submit(self) -> None:
        fields = self.fields()
        error = self.check(fields)
        if error:
            self.query_one("#ct-add-error", Static).update(error)
            return
        self.dismiss(fields)

    def action_cancel(self) -> None:
        self.dismiss(None)


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _css(name: str) -> str:
    return name.replace("/", "-").replace("_", "-")


def new_spec(fields: dict[str, str]) -> ConstraintSpec:
    """The spec an add form describes; ValueError says what is wrong."""
    data: dict = {"kind": fields["kind"]}
    for key in ("name", "instrument", "group_by", "group", "factor", "unit"):
        value = fields.get(key, "").strip()
        if value:
            data[key] = value
    for key in ("lower", "upper", "penalty"):
        value = parse_number(fields.get(key, ""), key)
        if value is not None:
            data[key] = value
    if fields.get("hard/soft", "").strip():
        data["soft"] = parse_flag(fields["hard/soft"], "hard/soft", ("soft",), ("hard",))
    try:
        return ConstraintSpec.model_validate(data)
    except ValidationError as exc:
        raise ValueError(validation_message(exc)) from None


# --- the tab -------------------------------------------------------------------------------


class ConstraintsTab(Vertical):
    """Tab 3: instrument, group and portfolio constraints, and the pre-solve diagnostics."""

    BINDINGS = [
        # Enter and Tab are priority bindings: the grids would take them otherwise (select,
        # next cell). They apply only while the focus is inside this tab.
        Binding("e,enter", "edit", "Edit", priority=True, id="constraints.edit"),
        Binding("a", "add", "Add", id="constraints.add"),
        Binding("d,delete", "delete", "Delete", id="constraints.delete"),
        Binding("h", "toggle_soft", "Hard/soft", id="constraints.soft"),
        Binding("space", "toggle_enabled", "On/off", id="constraints.enable"),
        Binding("u", "undo", "Undo", id="constraints.undo"),
        Binding("tab,right_square_bracket", "next_grid", "Next grid", show=False,
                priority=True, id="constraints.next_grid"),
        Binding("shift+tab,left_square_bracket", "previous_grid", "Previous grid",
                show=False, priority=True, id="constraints.previous_grid"),
    ]

    class PresolveDone(Message):
        def __init__(self, frame: pl.DataFrame, generation: int) -> None:
            super().__init__()
            self.frame = frame
            self.generation = generation

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.config: RunConfig | None = None
        self.universe = None
        self.specs: list[ConstraintSpec] = []
        self.undo_stack: list[tuple[list[ConstraintSpec], str]] = []
        self.findings = pl.DataFrame(schema=PRESOLVE_SCHEMA)
        self.load_error = ""
        self.active = "instrument"
        self._generation = 0
        self._data_key = None
        self._data = None
        self._data_lock = threading.Lock()

    def compose(self) -> ComposeResult:
        for scope in SCOPES:
            yield Static("", id=f"ct-title-{scope}", classes="ct-title")
            yield Vertical(id=f"ct-holder-{scope}", classes="ct-holder")
        yield Static("pre-solve: waiting for the universe", id="ct-presolve-title",
                     classes="ct-title", markup=False)
        yield Vertical(id="ct-holder-presolve")
        yield Static("", id="ct-message", markup=False)

    async def on_mount(self) -> None:
        await self._render_grids()
        await self._render_presolve()

    # --- called by the app ---------------------------------------------------------------

    async def show_config(self, config: RunConfig) -> None:
        """Show the config's constraints (inline and from constraint files)."""
        first = self.config is None
        settings_changed = first or self.config.optimization != config.optimization
        self.config = config
        load_error = self.load_error
        try:
            specs = config.all_constraints()
            self.load_error = ""
        except SpoInputError as exc:
            specs = list(config.constraints)
            self.load_error = str(exc)
        changed = specs != self.specs
        if changed:
            # Another tab (or a newly opened config) changed them: the undo history is
            # about constraints that are no longer there. (The config this tab posted
            # itself comes back unchanged and keeps it.)
            self.undo_stack.clear()
            self.specs = specs
            await self._render_grids()
        if changed or settings_changed:
            self._presolve()
        elif load_error != self.load_error:
            await self._render_presolve()

    async def show_universe(self, universe) -> None:
        """The universe the constraints are checked against (after a load or reload)."""
        self.universe = universe
        if universe is None:
            self._generation += 1
            self.findings = self.findings.clear()
            await self._render_presolve()
            return
        self._presolve()

    # --- pre-solve -----------------------------------------------------------------------

    def _presolve(self) -> None:
        self._generation += 1
        if self.universe is None or self.config is None:
            return
        self.query_one("#ct-presolve-title", Static).update("pre-solve: checking...")
        self._run_presolve(list(self.specs), self.universe, self.config, self._generation)

    @work(thread=True, exclusive=True, group="presolve", exit_on_error=False)
    def _run_presolve(self, specs, universe, config: RunConfig, generation: int) -> None:
        from core.model.data import problem_data

        settings = config.optimization
        key = settings.model_dump_json()
        with self._data_lock:
            # ProblemData depends on the universe and the settings, not on the constraints:
            # built once (seconds on 15,000 names), reused after every edit.
            if self._data_key is None or self._data_key[0] is not universe \
                    or self._data_key[1] != key:
                self._data, self._data_key = problem_data(universe, settings), (universe, key)
            data = self._data
        frame = presolve(specs, universe, settings, data=data)
        self.post_message(self.PresolveDone(frame, generation))

    @on(PresolveDone)
    async def _presolved(self, message: PresolveDone) -> None:
        if message.generation != self._generation:
            return  # an edit came after: its own check is on the way
        self.findings = message.frame
        await self._render_presolve()

    async def _render_presolve(self) -> None:
        frame = self._shown_findings()
        counts = frame.get_column("severity").value_counts()
        n = dict(zip(counts.get_column("severity").to_list(),
                     counts.get_column("count").to_list()))
        if self.universe is None:
            title = "pre-solve: waiting for the universe"
        elif not frame.height:
            title = "pre-solve: no problems found"
        else:
            parts = [f"{n[s]} {s}{'s' if n[s] > 1 else ''}" for s in ("error", "warning", "info")
                     if s in n]
            title = "pre-solve: " + ", ".join(parts) + "   (Enter on a row: its constraint)"
        self.query_one("#ct-presolve-title", Static).update(title)
        holder = self.query_one("#ct-holder-presolve", Vertical)
        had_focus = self._focused_id() == "ct-grid-presolve"
        holder.display = bool(frame.height)
        grid = None
        if frame.height:
            shown = frame.select("severity", "message", "constraint", "fix", "code")
            grid = DataTable(backend=PolarsBackend.from_dataframe(shown), id="ct-grid-presolve",
                             classes="ct-grid", render_markup=False, cursor_type="row",
                             max_column_content_width=120, show_row_labels=False)
        await self._swap(holder, grid, had_focus)
        if had_focus and grid is None:
            self._focus_scope("instrument")

    # --- grids ---------------------------------------------------------------------------

    def _focused_id(self) -> str | None:
        focused = self.app.focused
        return focused.id if focused is not None and self in focused.ancestors else None

    def rows(self, scope: str) -> list[int]:
        """Indices into self.specs of the grid's rows."""
        return [i for i, s in enumerate(self.specs) if scope_of(s) == scope]

    def grid(self, scope: str) -> DataTable:
        return self.query_one(f"#ct-grid-{scope}", DataTable)

    async def _render_grids(self, cursor: dict[str, tuple[int, int]] | None = None) -> None:
        focused = self._focused_id()
        cursor = dict(cursor or {})
        for scope in SCOPES:
            holder = self.query_one(f"#ct-holder-{scope}", Vertical)
            if scope not in cursor:
                old = holder.query(DataTable)
                cursor[scope] = ((old.first().cursor_row, old.first().cursor_column)
                                 if old else (0, 0))
            frame = spec_frame(self.specs, scope)
            off = frame.filter(pl.col("on") == "off").height
            extra = f", {off} off" if off else ""
            self.query_one(f"#ct-title-{scope}", Static).update(
                f"{TITLES[scope]} constraints ({frame.height}{extra})"
                + ("   a adds one" if not frame.height else ""))
            grid = DataTable(backend=PolarsBackend.from_dataframe(frame), id=f"ct-grid-{scope}",
                             classes="ct-grid", render_markup=False,
                             max_column_content_width=28, show_row_labels=False)
            await self._swap(holder, grid, focused == f"ct-grid-{scope}")
            row, col = cursor[scope]
            if frame.height:
                grid.move_cursor(row=max(0, min(row, frame.height - 1)),
                                 column=max(0, min(col, frame.width - 1)))

    async def _swap(self, holder: Vertical, grid: DataTable | None, focus: bool) -> None:
        """Replace the holder's grid (fastdatatable cannot reload in place). The focus is
        parked first, or removing the focused grid would hand it to another widget."""
        if focus:
            self.screen.set_focus(None)
        await holder.remove_children()
        if grid is not None:
            await holder.mount(grid)
            if focus:
                self.screen.set_focus(grid)

    @on(DataTable.RowHighlighted, "#ct-grid-presolve")
    def _finding(self, event: DataTable.RowHighlighted) -> None:
        if self.active == "presolve":
            self._show_finding(event.cursor_row)

    def _show_finding(self, row: int) -> None:
        """The whole of a finding below the grids: the grid cuts long messages."""
        frame = self._shown_findings()
        if 0 <= row < frame.height:
            r = frame.row(row, named=True)
            fix = f"  Fix: {r['fix']}." if r["fix"] else ""
            where = f"{r['constraint']}: " if r["constraint"] else ""
            self.message(f"{where}{r['message']}.{fix}")

    def _shown_findings(self) -> pl.DataFrame:
        if not self.load_error:
            return self.findings
        return pl.concat([pl.DataFrame(
            [("error", "constraint_file", "", self.load_error,
              "correct the file; the grids show the config's own constraints")],
            schema=PRESOLVE_SCHEMA, orient="row"), self.findings])

    def _focus_scope(self, scope: str) -> None:
        self.active = scope
        if scope == "presolve":
            if self.query("#ct-grid-presolve"):
                self.query_one("#ct-grid-presolve", DataTable).focus()
                return
            self.active = scope = "instrument"
        self.grid(scope).focus()

    def on_descendant_focus(self, event) -> None:
        wid = event.widget.id or ""
        if wid.startswith("ct-grid-"):
            self.active = wid.removeprefix("ct-grid-")
        if wid == "ct-grid-presolve":
            self._show_finding(event.widget.cursor_row)

    def current(self) -> tuple[str, int, int, int] | None:
        """(scope, row, column, index into specs) under the cursor of the focused grid."""
        scope = self.active
        if scope not in SCOPES:
            return None
        rows = self.rows(scope)
        if not rows:
            return None
        grid = self.grid(scope)
        row = min(grid.cursor_row, len(rows) - 1)
        return scope, row, grid.cursor_column, rows[row]

    # --- applying an edit ----------------------------------------------------------------

    def message(self, text: str) -> None:
        self.query_one("#ct-message", Static).update(text)

    async def apply(self, specs: list[ConstraintSpec], reason: str,
                    cursor: dict[str, tuple[int, int]] | None = None,
                    undo: bool = True) -> None:
        if undo:
            self.undo_stack.append((self.specs, reason))
            del self.undo_stack[:-UNDO_DEPTH]
        self.specs = specs
        # The edited list replaces the config's inline constraints and those read from
        # constraint_files: the grids show both, and after an edit the config holds them
        # all inline (saving it writes them to the TOML).
        self.config = self.config.model_copy(
            update={"constraints": list(specs), "constraint_files": []})
        self.load_error = ""
        self.message(reason)
        await self._render_grids(cursor)
        self._presolve()
        self.post_message(ConfigChanged(self.config, reason=reason))

    def _replace(self, index: int, spec: ConstraintSpec) -> list[ConstraintSpec]:
        specs = list(self.specs)
        specs[index] = spec
        return specs

    def _try_cell(self, index: int, column: str, text: str):
        """(new specs, reason) or an error message."""
        old = self.specs[index]
        try:
            spec = edited_spec(old, column, text)
        except ValueError as exc:
            return str(exc)
        error = duplicate_name(self.specs, index, spec)
        if error:
            return error
        field = FIELD.get(column, column)
        if field in ("lower", "upper"):
            before = getattr(old, "lo" if field == "lower" else "hi")
            after = getattr(spec, field)
            reason = f"{spec.name} {field} {fmt(before)} -> {fmt(after)} {spec.unit}"
        elif field == "enabled":
            reason = f"{spec.name} {'enabled' if spec.enabled else 'disabled'}"
        elif field == "soft":
            reason = f"{spec.name} {'soft' if spec.soft else 'hard'}"
        else:
            reason = (f"{old.name} {column} {getattr(old, field)!s} -> "
                      f"{getattr(spec, field)!s}")
        return self._replace(index, spec), reason

    # --- actions -------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if self.config is None and action not in ("next_grid", "previous_grid"):
            return False
        return True

    async def action_edit(self) -> None:
        if self.active == "presolve":
            await self._jump_to_constraint()
            return
        here = self.current()
        if here is None:
            self.message("nothing to edit here: a adds a constraint")
            return
        scope, row, col, index = here
        column = grid_columns(scope)[min(col, len(grid_columns(scope)) - 1)]
        if column in FIELD:  # on, hard/soft: Enter toggles them
            await (self.action_toggle_enabled() if column == "on"
                   else self.action_toggle_soft())
            return
        old_text = str(spec_frame([self.specs[index]], scope).item(0, column) or "")
        spec = self.specs[index]

        def check(text: str) -> str | None:
            result = self._try_cell(index, column, text)
            return result if isinstance(result, str) else None

        async def done(text: str | None) -> None:
            if text is None:
                self.message("edit cancelled")
                return
            result = self._try_cell(index, column, text)
            if isinstance(result, str):  # the modal checked it; the list may have moved
                self.message(result)
                return
            await self.apply(*result, cursor={scope: (row, col)})

        unit = f"  ({spec.unit})" if column in ("lower", "upper") else ""
        await self.app.push_screen(EditModal(f"{column} of {spec.name}{unit}", old_text, check),
                                   done)

    async def action_add(self) -> None:
        scope = self.active if self.active in SCOPES else "instrument"

        def check(fields: dict[str, str]) -> str | None:
            try:
                spec = new_spec(fields)
            except ValueError as exc:
                return str(exc)
            return duplicate_name(self.specs, None, spec)

        async def done(fields: dict | None) -> None:
            if fields is None:
                self.message("add cancelled")
                return
            spec = new_spec(fields)
            specs = [*self.specs, spec]
            await self.apply(specs, f"added {spec.name}",
                             cursor={scope: (len(self.rows(scope)), 0)})

        await self.app.push_screen(AddModal(scope, check), done)

    async def action_delete(self) -> None:
        here = self.current()
        if here is None:
            return
        scope, row, col, index = here
        spec = self.specs[index]
        specs = [s for i, s in enumerate(self.specs) if i != index]
        await self.apply(specs, f"deleted {spec.name}", cursor={scope: (row, col)})

    async def _toggle(self, column: str) -> None:
        here = self.current()
        if here is None:
            return
        scope, row, col, index = here
        spec = self.specs[index]
        text = ("off" if spec.enabled else "on") if column == "on" else (
            "hard" if spec.soft else "soft")
        result = self._try_cell(index, column, text)
        if isinstance(result, str):
            self.message(f"refused: {result}")
            return
        await self.apply(*result, cursor={scope: (row, col)})

    async def action_toggle_soft(self) -> None:
        await self._toggle("hard/soft")

    async def action_toggle_enabled(self) -> None:
        await self._toggle("on")

    async def action_undo(self) -> None:
        if not self.undo_stack:
            self.message("nothing to undo")
            return
        specs, reason = self.undo_stack.pop()
        await self.apply(specs, f"undo {reason}", undo=False)

    def _cycle(self) -> list[str]:
        return [*SCOPES, *(["presolve"] if self.query("#ct-grid-presolve") else [])]

    def action_next_grid(self) -> None:
        order = self._cycle()
        at = order.index(self.active) if self.active in order else -1
        self._focus_scope(order[(at + 1) % len(order)])

    def action_previous_grid(self) -> None:
        order = self._cycle()
        at = order.index(self.active) if self.active in order else 0
        self._focus_scope(order[(at - 1) % len(order)])

    async def _jump_to_constraint(self) -> None:
        grid = self.query_one("#ct-grid-presolve", DataTable)
        frame = self._shown_findings()
        if not (0 <= grid.cursor_row < frame.height):
            return
        name = frame.item(grid.cursor_row, "constraint")
        if not name:
            return
        for i, spec in enumerate(self.specs):
            if spec.name == name:
                scope = scope_of(spec)
                self._focus_scope(scope)
                self.grid(scope).move_cursor(row=self.rows(scope).index(i))
                return
        self.message(f"{name} is not in the grids (an automatic restriction)")
