"""Messages the workflow tabs post to the app.

Every tab that edits the run (Config, Constraints, Optimization Settings) posts one
ConfigChanged with the whole new RunConfig; the app owns the state, reloads data when asked
and shows the new config to every tab. Tabs never reach into each other.
"""

from __future__ import annotations

from pathlib import Path

from textual.message import Message

from core.settings import RunConfig


class ConfigChanged(Message):
    """The run's config changed.

    path: set when the config came from (or was saved to) a file.
    reload_data: the change needs the data reloaded and the universe rebuilt (data paths,
    as-of, numeraire, a newly opened file); constraint and setting edits do not.
    reason: one line for the notification, e.g. "gross max 200 -> 210 % NAV".
    """

    def __init__(self, config: RunConfig, *, path: Path | None = None,
                 reload_data: bool = False, reason: str = "") -> None:
        super().__init__()
        self.config = config
        self.path = path
        self.reload_data = reload_data
        self.reason = reason
