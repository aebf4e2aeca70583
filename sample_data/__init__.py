"""The embedded default data set (parquet files beside this module)."""

from pathlib import Path

SAMPLE_DIR = Path(__file__).resolve().parent
