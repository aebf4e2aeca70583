"""One benchmark run in this process: time each stage on one data folder.

Run as a child process by bench.harness so each size's peak memory is its own.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path


def run_stages(data_dir: Path, numeraire: str = "USD") -> dict:
    from core.data.loaders import check_references, load_intraday, load_static, resolve_paths
    from core.settings import RunConfig
    from core.universe import build_universe

    cfg = RunConfig(data={"dir": str(data_dir)}, numeraire=numeraire)
    from sample_data import SAMPLE_AS_OF
    cfg.as_of = SAMPLE_AS_OF
    t0 = time.perf_counter()
    paths = resolve_paths(cfg.data_dir(), cfg.file_overrides())
    static = load_static(paths)
    intraday = load_intraday(paths)
    static.tables.update(intraday.tables)
    static.diagnostics.extend(intraday.diagnostics)
    check_references(static)
    t1 = time.perf_counter()
    universe = build_universe(static, cfg)
    t2 = time.perf_counter()
    return {
        "instruments": universe.summary["instruments"],
        "universe_rows": universe.frame.height,
        "load_s": t1 - t0,
        "universe_s": t2 - t1,
        # ru_maxrss is KiB on Linux.
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }


if __name__ == "__main__":
    print(json.dumps(run_stages(Path(sys.argv[1]), *sys.argv[2:])))
