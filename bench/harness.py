"""`spo bench`: generate a data set per size, then time every stage in a fresh process.

Data generation is not timed. Each size runs `repeat` times in a new interpreter (so imports
and page cache are warm after the first, as on a solve server that has been up a while, and
peak RSS is that size's alone); the reported figure is the median.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

STAGES = ("load_s", "universe_s")


def bench_size(size: int, seed: int = 7, repeat: int = 3, workdir: Path | None = None) -> dict:
    from core.data.sample import generate, write_tables

    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        data = Path(tmp) / f"n{size}"
        write_tables(generate(size, seed), data)
        runs = []
        for _ in range(repeat):
            out = subprocess.run([sys.executable, "-m", "bench.stages", str(data)],
                                 capture_output=True, text=True, check=True)
            runs.append(json.loads(out.stdout))
    result = {"size": size, "instruments": runs[0]["instruments"],
              "universe_rows": runs[0]["universe_rows"], "repeat": repeat}
    for key in STAGES:
        result[key] = statistics.median(r[key] for r in runs)
    result["total_s"] = sum(result[k] for k in STAGES)
    result["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    return result


def format_table(rows: list[dict]) -> str:
    head = f"{'size':>7} {'rows':>7} {'load s':>8} {'universe s':>11} {'total s':>8} {'peak MB':>8}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['size']:>7} {r['universe_rows']:>7} {r['load_s']:>8.3f} "
                     f"{r['universe_s']:>11.3f} {r['total_s']:>8.3f} {r['peak_rss_mb']:>8.0f}")
    return "\n".join(lines)
