import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings

# Test helpers (books.py) import as plain modules.
sys.path.insert(0, str(Path(__file__).parent))

# CI runs the same examples every time (a failure there must be reproducible); local runs
# keep exploring new ones, which is how the corruption and cross-check properties find bugs.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _private_state_dir(tmp_path, monkeypatch):
    """Recent configs and other per-user state go to a throwaway folder, never the
    tester's own."""
    monkeypatch.setenv("SPO_STATE_DIR", str(tmp_path / "spo-state"))
