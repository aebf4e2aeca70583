"""`spo bench`: generate a book per size, then time every stage in a fresh process.

Data generation is not timed. Each size runs `repeat` times, each in a new interpreter so
peak RSS is that run's own; the figures are the median of the runs. Ratios (our overhead
over pure solver time, ours against CVXPY) come from the same runs.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

STAGES = ("load_s", "universe_s", "build_s", "solve_s", "results_s", "total_s",
          "cvxpy_total_s")


def bench_size(size: int, seed: int = 7, repeat: int = 3, cvxpy: bool = True) -> dict:
    from core.data.sample import generate, write_tables

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / f"n{size}"
        write_tables(generate(size, seed), data)
        runs = []
        for _ in range(repeat):
            cmd = [sys.executable, "-m", "bench.stages", str(data)]
            if not cvxpy:
                cmd.append("--no-cvxpy")
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode != 0:
                raise RuntimeError(f"bench run for size {size} failed:\n{out.stderr[-2000:]}")
            runs.append(json.loads(out.stdout))
    result = {"size": size, "repeat": repeat}
    for key, value in runs[0].items():
        if key not in STAGES and key != "peak_rss_mb":
            result[key] = value
    for key in STAGES:
        if key in runs[0]:
            result[key] = statistics.median(r[key] for r in runs)
    result["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    total = result["total_s"]
    result["overhead_share"] = (total - result["solve_s"]) / total
    if "cvxpy_total_s" in result:
        result["speedup_vs_cvxpy"] = result["cvxpy_total_s"] / total
    return result


def format_table(rows: list[dict]) -> str:
    head = (f"{'size':>6} {'status':>8} {'iter':>4} {'load':>6} {'univ':>6} {'build':>6} "
            f"{'solve':>6} {'results':>7} {'total':>6} {'overhead':>8} {'cvxpy':>7} "
            f"{'speedup':>7} {'MB':>5}")
    lines = [head, "-" * len(head)]
    for r in rows:
        cvx = f"{r['cvxpy_total_s']:7.2f}" if "cvxpy_total_s" in r else f"{'-':>7}"
        spd = f"{r['speedup_vs_cvxpy']:6.2f}x" if "speedup_vs_cvxpy" in r else f"{'-':>7}"
        lines.append(
            f"{r['size']:>6} {r['status'][:8]:>8} {r['iterations']:>4} {r['load_s']:6.3f} "
            f"{r['universe_s']:6.3f} {r['build_s']:6.3f} {r['solve_s']:6.3f} "
            f"{r['results_s']:7.3f} {r['total_s']:6.3f} {100 * r['overhead_share']:7.1f}% "
            f"{cvx} {spd} {r['peak_rss_mb']:5.0f}")
    return "\n".join(lines)
