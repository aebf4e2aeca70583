import os
import sys
from pathlib import Path

from hypothesis import settings

# Test helpers (books.py) import as plain modules.
sys.path.insert(0, str(Path(__file__).parent))

# CI runs the same examples every time (a failure there must be reproducible); local runs
# keep exploring new ones, which is how the corruption and cross-check properties find bugs.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")
