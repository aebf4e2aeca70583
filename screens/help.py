"""F1: every key of the console, where it works, its id for remapping, and how to remap.

The table is built from the live bindings (the app's and each tab's), with the keymap from
`[console.keys]` applied, so it can never disagree with what the keys actually do.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


@dataclass(frozen=True)
class KeyRow:
    where: str
    key: str
    description: str
    binding_id: str


NAMES = {"right_square_bracket": "]", "left_square_bracket": "[", "slash": "/",
         "space": "space", "delete": "del"}


def readable(key: str) -> str:
    """"tab,right_square_bracket" -> "tab / ]": what a trader presses, not Textual's names."""
    return " / ".join(NAMES.get(k.strip(), k.strip()) for k in key.split(","))


def key_rows(sources: list[tuple[str, list[Binding]]], keymap: dict[str, str]) -> list[KeyRow]:
    """One row per binding with an id; the key is the remapped one when there is one."""
    rows, seen = [], set()
    for where, bindings in sources:
        for b in bindings:
            if not isinstance(b, Binding) or not b.id or (where, b.id) in seen:
                continue
            seen.add((where, b.id))
            key = keymap.get(b.id, b.key_display or b.key)
            rows.append(KeyRow(where, readable(key), b.tooltip or b.description or b.action,
                               b.id))
    return rows


def help_text(rows: list[KeyRow]) -> Text:
    # One line per key, cut at the edge rather than wrapped: at 80 columns the id is what
    # gets cut, and it is still there in a wider terminal.
    out = Text(no_wrap=True, overflow="ellipsis")
    key_w = min(max((len(r.key) for r in rows), default=4), 10)
    desc_w = min(max((len(r.description) for r in rows), default=10), 34)
    where = None
    for r in rows:
        if r.where != where:
            where = r.where
            out.append(f"\n{where}\n", style="bold")
        out.append(f"  {r.key:<{key_w}}  ", style="bold cyan")
        out.append(f"{r.description:<{desc_w}}  ")
        out.append(f"{r.binding_id}\n", style="dim")
    out.append("\nctrl+p opens the command palette: every action above by name.\n"
               "Remap any key by its id in the config, e.g.\n", style="dim")
    out.append('  [console.keys]\n  "run.solve" = "f5"\n', style="cyan")
    return out


class HelpScreen(ModalScreen[None]):
    """The key reference; Esc, F1 or q closes it."""

    BINDINGS = [Binding("escape,f1,q", "app.pop_screen", "Close", id="help.close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical { width: 90%; max-width: 96; height: 90%;
        border: round $primary; background: $surface; padding: 0 1; }
    HelpScreen #help-title { height: 1; text-style: bold; }
    """

    def __init__(self, rows: list[KeyRow]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("spo keys  (Esc closes)", id="help-title")
            with VerticalScroll(id="help-body"):
                yield Static(help_text(self.rows), id="help-text")

    def on_mount(self) -> None:
        self.query_one("#help-body").focus()
