"""The embedded default data set (parquet files beside this module)."""

import datetime as dt
from pathlib import Path

SAMPLE_DIR = Path(__file__).resolve().parent
# The moment the sample's marks were taken. Runs on the sample default to it, so the embedded
# data never goes stale and every run on it is reproducible.
SAMPLE_AS_OF = dt.datetime(2026, 11, 20, 15, 30, 0)
