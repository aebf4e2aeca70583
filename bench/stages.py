"""One benchmark run in this process: time each stage on one data folder.

Run as a child process by bench.harness so each size's peak memory is its own. The problem
is the default scenario with 3/2-power impact on every name (impact curves off), solved by
spo's conic model and, separately, by the independent CVXPY formulation with Clarabel.
Look-through is off so that both solve exactly the problem of docs/formulation.md.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path


def run_stages(data_dir: Path, with_cvxpy: bool = True) -> dict:
    from core.data.loaders import check_references, load_intraday, load_static, resolve_paths
    from core.model.data import problem_data
    from core.optimize import solve_problem
    from core.results import holdings_frame, post_trade_summary, trades_and_orders
    from core.settings import RunConfig
    from core.universe import build_universe
    from sample_data import SAMPLE_AS_OF, SAMPLE_DIR

    cfg = RunConfig.load(SAMPLE_DIR / "scenarios" / "default.toml")
    cfg.data.dir = data_dir
    cfg.as_of = SAMPLE_AS_OF
    cfg.optimization.costs.impact_curve = False
    cfg.optimization.look_through = False
    settings = cfg.optimization

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
    data = problem_data(universe, settings)
    solved = solve_problem(data, cfg.constraints, settings, solver="clarabel")
    t3 = time.perf_counter()
    holdings = holdings_frame(universe, data, solved.h)
    trades, _ = trades_and_orders(holdings, data)
    post_trade_summary(universe, data, holdings, trades, solved)
    t4 = time.perf_counter()
    # solve_problem times build and solve itself; problem_data counts as build.
    solve_s = solved.timings["solve_s"]
    build_s = (t3 - t2) - solve_s
    program = solved.model.program
    row = {
        "instruments": universe.summary["instruments"],
        "universe_rows": universe.frame.height,
        "tradable": data.n,
        "solver": solved.solver,
        "status": solved.status.value,
        "iterations": solved.raw.iterations,
        "variables": program.num_vars, "rows": program.num_rows, "nonzeros": program.A.nnz,
        "utility_bp": solved.objective * 1e4,
        "load_s": t1 - t0, "universe_s": t2 - t1, "build_s": build_s, "solve_s": solve_s,
        "results_s": t4 - t3,
    }
    row["total_s"] = row["load_s"] + row["universe_s"] + build_s + solve_s + row["results_s"]
    if with_cvxpy:
        from bench.cvxpy_reference import solve_reference

        t5 = time.perf_counter()
        ref = solve_reference(data, cfg.constraints, settings)
        row["cvxpy_total_s"] = time.perf_counter() - t5
        row["cvxpy_build_s"] = ref.build_s
        row["cvxpy_solve_s"] = ref.solve_s
        row["cvxpy_status"] = ref.status
        row["cvxpy_utility_bp"] = ref.objective * 1e4
    # ru_maxrss is KiB on Linux.
    row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return row


if __name__ == "__main__":
    print(json.dumps(run_stages(Path(sys.argv[1]), with_cvxpy=sys.argv[2:] != ["--no-cvxpy"])))
