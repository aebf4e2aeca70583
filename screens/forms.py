"""Form rows for the Config and Optimization Settings tabs, validated by the config itself.

A form is a list of `FormField`s, each naming a key of RunConfig by its path (for example
("optimization", "costs", "scale")). Every edit is checked by assigning the typed text to a
copy of the config (pydantic, `validate_assignment`), so the form never duplicates a rule:

- while typing, an invalid value shows pydantic's message beside the field, in red;
- Enter, leaving the field (tab), toggling a checkbox or picking from a select commits: a
  valid, different value becomes the form's config and is posted as one ConfigChanged with
  a reason such as "risk aversion 2 -> 5"; an invalid one posts nothing and the config keeps
  its last good value;
- Esc in a field with an unsaved or invalid edit puts back the config's value.

Rows are one line each, "label  [field]  help", so a tab fits a 80x24 terminal.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Checkbox, Input, Label, Select, Static

from core.settings import RunConfig
from screens.messages import ConfigChanged

Kind = Literal["text", "upper", "number", "int", "optional_number", "optional_int", "path",
               "optional_path", "date", "datetime", "bool", "choice"]
OPTIONAL = {"optional_number", "optional_int", "optional_path", "date", "datetime"}


@dataclass(frozen=True)
class FormField:
    """One editable key of RunConfig."""

    path: tuple[str, ...]  # attribute names from RunConfig; a dict key may end it
    label: str  # lower case: it also starts the change's reason, "risk aversion 2 -> 5"
    kind: Kind
    help: str = ""
    choices: tuple[str, ...] = ()
    reload_data: bool = False  # the change needs the data reloaded (paths, as-of, numeraire)
    placeholder: str = ""

    @property
    def key(self) -> str:
        return "-".join(self.path)

    @property
    def widget_id(self) -> str:
        return f"f-{self.key}"

    @property
    def help_id(self) -> str:
        return f"h-{self.key}"


# --- values ------------------------------------------------------------------------------


def get_value(config: RunConfig, path: tuple[str, ...]) -> Any:
    obj: Any = config
    for part in path:
        obj = obj.get(part) if isinstance(obj, dict) else getattr(obj, part)
    return obj


def with_value(config: RunConfig, path: tuple[str, ...], value: Any) -> RunConfig:
    """A validated copy of `config` with the key at `path` set to `value`.

    Raises pydantic's ValidationError for a bad value; `config` itself is never touched.
    A dict entry (data.files.positions) set to None is removed.
    """
    new = config.model_copy(deep=True)
    owner: Any = new
    for i, part in enumerate(path[:-1]):
        child = getattr(owner, part)
        if isinstance(child, dict):  # the last part is a key of this dict field
            entries = dict(child)
            if value is None:
                entries.pop(path[-1], None)
            else:
                entries[path[-1]] = value
            setattr(owner, part, entries)
            return new
        owner = child
    setattr(owner, path[-1], value)
    return new


def parse(field: FormField, raw: Any) -> Any:
    """What the widget holds, as the input to give pydantic (which does the converting)."""
    if field.kind in ("bool", "choice"):
        return raw
    text = str(raw).strip()
    if field.kind == "upper":
        return text.upper()
    if not text and field.kind in OPTIONAL:
        return None
    return text


def fmt(value: Any) -> str:
    """A value as the field shows it and the reason names it: 2.0 -> "2", None -> ""."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="seconds" if value.second else "minutes")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def fmt_reason(value: Any) -> str:
    return fmt(value) if value is not None else "none"


def error_text(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return err["msg"].removeprefix("Value error, ")


def short_path(path: Path, width: int = 48) -> str:
    """A long path cut from the left, where the file name survives: ".../data/x.parquet"."""
    text = str(path)
    return text if len(text) <= width else "…" + text[-(width - 1):]


# --- widgets -----------------------------------------------------------------------------


class FormInput(Input):
    """A one-line Input that does not blink (deterministic snapshots)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("compact", True)
        super().__init__(*args, **kwargs)

    def on_mount(self) -> None:
        self.cursor_blink = False


def editor_for(field: FormField) -> Widget:
    if field.kind == "bool":
        return Checkbox("off", compact=True, id=field.widget_id)
    if field.kind == "choice":
        return Select([(c, c) for c in field.choices], allow_blank=False, compact=True,
                      value=field.choices[0], id=field.widget_id)
    return FormInput(placeholder=field.placeholder, id=field.widget_id)


class FieldRow(Horizontal):
    """label  [field]  help-or-error."""

    def __init__(self, field: FormField) -> None:
        super().__init__(classes="field-row")
        self.field = field

    def compose(self) -> ComposeResult:
        yield Label(self.field.label, classes="field-label")
        yield editor_for(self.field)
        yield Static(self.field.help, id=self.field.help_id, classes="field-help",
                     markup=False)


def section(title: str) -> Static:
    return Static(title, classes="form-section")


def note(text: str, id: str | None = None) -> Static:
    return Static(text, classes="form-note", id=id, markup=False)


class ConfigForm(Vertical, can_focus=True):
    """The editing behaviour both tabs share; subclasses compose rows with `self.row(f)`.

    The app owns the config: it calls `show_config(config, path)` after every change, on
    every tab. The form keeps a copy to validate against and to post the next change from.
    """

    # The form itself takes the focus when its tab opens, so the digits still switch tabs;
    # down (or Tab) enters the fields and Esc leaves them again.
    BINDINGS = [
        Binding("escape", "revert", "Revert field", show=False, id="form.revert"),
        Binding("escape", "leave_field", "Leave field", show=False, id="form.leave"),
        Binding("down", "enter_fields", "Edit fields", id="form.enter"),
    ]

    def __init__(self, config: RunConfig | None = None, path: Path | None = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.config = config or RunConfig()
        self.path = path
        self.fields: dict[str, FormField] = {}  # by widget id
        self.errors: dict[str, str] = {}  # widget id -> pydantic's message
        self._shown: dict[str, Any] = {}  # widget id -> the config value the widget shows
        self._ready = False

    def row(self, field: FormField) -> FieldRow:
        self.fields[field.widget_id] = field
        return FieldRow(field)

    def on_mount(self) -> None:
        self._ready = True
        self._refresh(force=True)

    # --- the app calls this ----------------------------------------------------------------

    def show_config(self, config: RunConfig, path: Path | None = None) -> None:
        """Show `config` (the app's current one). A field keeps an edit in progress unless
        its own value changed."""
        self.config = config
        self.path = path
        if self._ready:
            self._refresh(force=False)

    # --- hooks for the tabs ----------------------------------------------------------------

    def help_for(self, field: FormField) -> str | tuple[str, str]:
        """The help beside a field without an error, optionally with a level ("warning",
        "error") that colours it; tabs make some of it live."""
        return field.help

    def refresh_extras(self) -> None:
        """Called after every show and commit: tabs update their own derived lines here."""

    # --- internals -------------------------------------------------------------------------

    def _widget(self, field: FormField) -> Widget:
        return self.query_one(f"#{field.widget_id}")

    def _set_widget(self, field: FormField, value: Any) -> None:
        widget = self._widget(field)
        if isinstance(widget, Checkbox):
            widget.value = bool(value)
            widget.label = fmt(bool(value))
        elif isinstance(widget, Select):
            widget.value = value
        else:
            widget.value = fmt(value)
        self._shown[field.widget_id] = value

    def _refresh(self, force: bool) -> None:
        for wid, field in self.fields.items():
            value = get_value(self.config, field.path)
            if force or wid not in self._shown or self._shown[wid] != value:
                self._set_widget(field, value)
                self.errors.pop(wid, None)
        self._refresh_help()
        self.refresh_extras()

    def _refresh_help(self) -> None:
        for wid, field in self.fields.items():
            self._show_help(field)

    def _show_help(self, field: FormField) -> None:
        help_widget = self.query_one(f"#{field.help_id}", Static)
        error = self.errors.get(field.widget_id)
        if error is not None:
            text, level = error, "error"
        else:
            shown = self.help_for(field)
            text, level = (shown, "") if isinstance(shown, str) else shown
        help_widget.set_class(level == "error", "-error")
        help_widget.set_class(level == "warning", "-warning")
        help_widget.update(text)

    def _check(self, field: FormField, raw: Any) -> RunConfig | None:
        """The config with this value, or None with the error shown beside the field."""
        try:
            new = with_value(self.config, field.path, parse(field, raw))
        except ValidationError as exc:
            self.errors[field.widget_id] = error_text(exc)
            self._show_help(field)
            return None
        if self.errors.pop(field.widget_id, None) is not None:
            self._show_help(field)
        return new

    def commit(self, field: FormField, raw: Any) -> bool:
        """Validate and, when valid and different, adopt and post. True if it posted."""
        new = self._check(field, raw)
        if new is None:
            return False
        old_value = get_value(self.config, field.path)
        new_value = get_value(new, field.path)
        widget = self._widget(field)
        if isinstance(widget, Input) and widget.value != fmt(new_value):
            widget.value = fmt(new_value)  # "5.0" is shown as the config has it: "5"
        self._shown[field.widget_id] = new_value
        if new_value == old_value:
            return False
        self.config = new
        self._refresh_help()
        self.refresh_extras()
        self.post_message(ConfigChanged(
            new, path=self.path, reload_data=field.reload_data,
            reason=f"{field.label} {fmt_reason(old_value)} -> {fmt_reason(new_value)}"))
        return True

    def _field_of(self, widget: Widget | None) -> FormField | None:
        return self.fields.get(widget.id) if widget is not None and widget.id else None

    @on(Input.Changed)
    def _typed(self, event: Input.Changed) -> None:
        field = self._field_of(event.input)
        if field is not None and event.value != fmt(self._shown.get(field.widget_id)):
            self._check(field, event.value)
        elif field is not None and self.errors.pop(field.widget_id, None) is not None:
            self._show_help(field)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        field = self._field_of(event.input)
        if field is not None:
            event.stop()
            self.commit(field, event.value)

    @on(Input.Blurred)
    def _blurred(self, event: Input.Blurred) -> None:
        field = self._field_of(event.input)
        if field is not None and self.is_attached:
            self.commit(field, event.value)

    @on(Checkbox.Changed)
    def _toggled(self, event: Checkbox.Changed) -> None:
        field = self._field_of(event.checkbox)
        if field is not None:
            event.stop()
            event.checkbox.label = fmt(event.value)
            self.commit(field, event.value)

    @on(Select.Changed)
    def _picked(self, event: Select.Changed) -> None:
        field = self._field_of(event.select)
        if field is not None and event.value is not Select.BLANK:
            event.stop()
            self.commit(field, event.value)

    # --- Esc -------------------------------------------------------------------------------

    def _pending(self) -> FormField | None:
        """The focused field if it holds an edit that is not the config's value."""
        field = self._field_of(self.app.focused)
        if field is None or not isinstance(self.app.focused, Input):
            return None
        value = get_value(self.config, field.path)
        if field.widget_id in self.errors or self.app.focused.value != fmt(value):
            return field
        return None

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        # Esc reverts only an edit in progress; otherwise it belongs to the app (cancel solve).
        if action == "revert":
            return self._pending() is not None
        if action == "leave_field":
            # While a solve runs, Esc cancels it wherever the focus is.
            return (self._pending() is None and self.app.focused is not self
                    and not getattr(self.app, "solving", False))
        if action == "enter_fields":
            return self.app.focused is self
        return True

    def action_leave_field(self) -> None:
        self.focus()

    def action_enter_fields(self) -> None:
        self.app.action_focus_next()

    def action_revert(self) -> None:
        field = self._pending()
        if field is not None:
            self.errors.pop(field.widget_id, None)
            self._set_widget(field, get_value(self.config, field.path))
            self._show_help(field)
