"""Recently used config files: a short most-recent-first list for the console's Open dialog.

Stored as a JSON list of absolute paths in `$SPO_STATE_DIR/recent.json`, else
`$XDG_STATE_HOME/spo/recent.json`, else `~/.local/state/spo/recent.json`. Reading never
fails: a missing or corrupt file is an empty list, and paths whose file is gone are dropped.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from core.atomic import atomic_write_text

MAX_RECENT = 10
FILE_NAME = "recent.json"


def state_dir() -> Path:
    """Where the console keeps small per-user state between sessions."""
    if os.environ.get("SPO_STATE_DIR"):
        return Path(os.environ["SPO_STATE_DIR"]).expanduser()
    if os.environ.get("XDG_STATE_HOME"):
        return Path(os.environ["XDG_STATE_HOME"]).expanduser() / "spo"
    return Path.home() / ".local" / "state" / "spo"


def recent_file() -> Path:
    return state_dir() / FILE_NAME


def _normal(path: str | Path) -> Path:
    return Path(path).expanduser().resolve()


def read_recent() -> list[Path]:
    """Existing config files, most recent first, at most MAX_RECENT, no duplicates."""
    try:
        data = json.loads(recent_file().read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return []
    if not isinstance(data, list):
        return []
    out: list[Path] = []
    for item in data:
        if not isinstance(item, str) or not item:
            continue
        path = _normal(item)
        if path not in out and path.is_file():
            out.append(path)
    return out[:MAX_RECENT]


def add_recent(path: str | Path) -> list[Path]:
    """Put `path` first (moving it up if already listed) and write the list atomically.

    Raises OSError when the state folder cannot be written; the caller decides whether
    that matters (the console shows a warning and carries on).
    """
    path = _normal(path)
    entries = [path] + [p for p in read_recent() if p != path]
    entries = entries[:MAX_RECENT]
    atomic_write_text(recent_file(), json.dumps([str(p) for p in entries], indent=1) + "\n")
    return entries
