"""A test app holding one form tab and playing the app's part: it records every
ConfigChanged and shows the new config back, as SpoApp does."""

from __future__ import annotations

from pathlib import Path

from textual.app import App, ComposeResult

from core.settings import RunConfig
from screens.messages import ConfigChanged

STYLES = Path(__file__).resolve().parents[2] / "styles" / "spo.tcss"


class FormHarness(App):
    CSS_PATH = str(STYLES)
    TAB: type  # the tab class, set by the subclass
    TAB_ID = "tab"

    def __init__(self, config: RunConfig | None = None, path: Path | None = None) -> None:
        super().__init__()
        self.animation_level = "none"
        self.config = config or RunConfig()
        self.path = path
        self.changes: list[ConfigChanged] = []

    def compose(self) -> ComposeResult:
        yield self.TAB(id=self.TAB_ID)

    def on_mount(self) -> None:
        self.query_one(self.TAB).show_config(self.config, self.path)

    def on_config_changed(self, message: ConfigChanged) -> None:
        self.changes.append(message)
        self.config, self.path = message.config, message.path
        self.query_one(self.TAB).show_config(message.config, message.path)
