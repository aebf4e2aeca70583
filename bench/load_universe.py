"""Load and universe only, with this process's peak memory: `python -m bench.load_universe DIR`.

The figure issue 2 asks for (time and peak memory to load and build the universe); `spo bench`
times the whole pipeline, whose peak includes the solver and the CVXPY path.
"""

import json, resource, sys, time
from core.data.loaders import check_references, load_intraday, load_static, resolve_paths
from core.settings import RunConfig
from core.universe import build_universe
from sample_data import SAMPLE_AS_OF
cfg = RunConfig(data={"dir": sys.argv[1]}, as_of=SAMPLE_AS_OF)
t0 = time.perf_counter()
paths = resolve_paths(cfg.data_dir(), cfg.file_overrides())
ds = load_static(paths); intr = load_intraday(paths); ds.tables.update(intr.tables); check_references(ds)
t1 = time.perf_counter(); uni = build_universe(ds, cfg); t2 = time.perf_counter()
print(json.dumps({"rows": uni.frame.height, "load_s": round(t1 - t0, 3), "universe_s": round(t2 - t1, 3),
                  "total_s": round(t2 - t0, 3), "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
