"""`spo` command line. Bad input ends in one message and exit 1, never a traceback."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from core.errors import SpoInputError

EXIT_OK, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 3


def _load_config(args: argparse.Namespace):
    from core.settings import RunConfig

    cfg = RunConfig.load(args.config) if getattr(args, "config", None) else RunConfig()
    if getattr(args, "data", None):
        cfg.data.dir = Path(args.data).resolve()
    if getattr(args, "numeraire", None):
        cfg.numeraire = args.numeraire.upper()
    return cfg


def cmd_data_validate(args: argparse.Namespace) -> int:
    from console.state import AppState
    from core.diagnostics import error_count
    from console.report import validation_report, print_validation

    state = AppState(_load_config(args))
    state.load()
    report = validation_report(state)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print_validation(report, limit=args.limit)
    return EXIT_BAD_INPUT if error_count(state.universe.diagnostics) else EXIT_OK


EXIT_INFEASIBLE, EXIT_NO_SOLUTION = 2, 3


def cmd_solve(args: argparse.Namespace) -> int:
    from console.report import print_solve
    from console.state import AppState
    from core.outputs import run_document, write_outputs
    from core.results import optimize
    from core.settings import RunConfig
    from sample_data import SAMPLE_DIR

    if args.config:
        cfg = _load_config(args)
    else:
        cfg = RunConfig.load(SAMPLE_DIR / "scenarios" / "default.toml")
        if args.data:
            cfg.data.dir = Path(args.data).resolve()
        if args.numeraire:
            cfg.numeraire = args.numeraire.upper()
    if args.solver:
        cfg.solver = args.solver
    state = AppState(cfg)
    state.load()
    options = None
    if sys.stderr.isatty() and not args.json:
        from core.solvers.base import SolverOptions

        def progress(p) -> None:  # one line, rewritten in place: a long solve shows life
            print(f"\r  iteration {p.iteration:3d}  utility {-p.primal_objective:12.4f} bp  "
                  f"gap {p.gap:8.1e}  {p.elapsed_s:6.2f}s", end="", file=sys.stderr,
                  flush=True)

        options = SolverOptions(time_limit_s=cfg.optimization.time_limit_s, progress=progress)
    result = optimize(state.universe, cfg.all_constraints(), cfg.optimization,
                      solver=cfg.solver, options=options)
    if options is not None:
        print("\r" + " " * 72 + "\r", end="", file=sys.stderr, flush=True)
    files = write_outputs(result, Path(args.out))
    log, log_path = _record(result, state, cfg, args)
    if args.json:
        doc = run_document(result) | {"files": {k: str(v) for k, v in files.items()}}
        if log is not None:
            doc |= {"run_log": str(log_path),
                    "advice": [s.model_dump(mode="json") for s in log.advice]}
        print(json.dumps(doc, indent=2, default=str))
    else:
        print_solve(result, files, state)
        if log is not None:
            from console.report import print_advice

            print(f"run log: {log_path}")
            if log.advice:
                print(f"advice ({len(log.advice)}):")
                print_advice(log.advice, top=5)
    if result.ok:
        return EXIT_OK
    return EXIT_INFEASIBLE if result.status == "infeasible" else EXIT_NO_SOLUTION


def _runs_dir(args: argparse.Namespace, cfg) -> Path:
    """--runs-dir, else the config's runs_dir. A sample scenario's relative runs_dir would
    point inside the installed package: its logs go beside --out instead."""
    from core.runlog import runs_dir_for

    if getattr(args, "runs_dir", None):
        return Path(args.runs_dir)
    default = runs_dir_for(cfg)
    if default != cfg.runs_path() and getattr(args, "out", None):
        return Path(args.out).resolve().parent / cfg.runs_dir
    return default


def _record(result, state, cfg, args: argparse.Namespace):
    """Write the solve's run log; a log that cannot be written costs a warning, not the
    orders already written."""
    from core.runlog import record_solve

    try:
        return record_solve(result, state.universe, cfg, state.run_context,
                            runs_dir=_runs_dir(args, cfg), dataset=state.dataset)
    except OSError as exc:
        print(f"spo: warning: run log not written ({exc}); pass --runs-dir with a writable "
              "folder", file=sys.stderr)
        return None, None


def _runs_folder(args: argparse.Namespace) -> Path:
    if args.runs_dir:
        return Path(args.runs_dir)
    if args.config:
        return _runs_dir(args, _load_config(args))
    return Path("runs")


def cmd_runs_list(args: argparse.Namespace) -> int:
    from console.report import print_runs
    from core.runlog import list_runs

    if args.limit is not None and args.limit < 0:
        raise SpoInputError("--limit must be 0 (all) or more", field="--limit",
                            fix="e.g. --limit 20")
    folder = _runs_folder(args)
    runs = list_runs(folder)
    if args.limit:
        runs = runs[: args.limit]
    if args.json:
        print(json.dumps([r.model_dump(mode="json") for r in runs], indent=2))
    else:
        print_runs(runs, folder)
    return EXIT_OK


def cmd_runs_show(args: argparse.Namespace) -> int:
    from console.report import print_run
    from core.runlog import load_run

    log = load_run(_runs_folder(args), args.run_id)
    if args.json:
        print(log.model_dump_json(indent=2))
    else:
        print_run(log)
    return EXIT_OK


def cmd_sample_data(args: argparse.Namespace) -> int:
    from core.data.sample import generate, write_tables

    if args.size < 50:
        raise SpoInputError("--size must be at least 50 instruments", field="--size",
                            fix="pass --size 2000 for the default set")
    paths = write_tables(generate(args.size, args.seed), Path(args.out))
    print(f"wrote {len(paths)} tables for {args.size} instruments (seed {args.seed}) "
          f"to {Path(args.out).resolve()}")
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    from bench.harness import bench_size, format_table

    try:
        sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    except ValueError:
        raise SpoInputError(f"--sizes must be comma-separated integers, got {args.sizes!r}",
                            field="--sizes", fix="e.g. --sizes 2000,15000") from None
    rows = []
    for size in sizes:
        rows.append(bench_size(size, repeat=args.repeat, cvxpy=not args.no_cvxpy))
        if not args.json:
            lines = format_table(rows[-1:]).splitlines()
            print("\n".join(lines if len(rows) == 1 else lines[-1:]), flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))
    return EXIT_OK


def cmd_config_show(args: argparse.Namespace) -> int:
    print(_load_config(args).to_toml(), end="")
    return EXIT_OK


def cmd_console(args: argparse.Namespace) -> int:
    from console.app import SpoApp
    from core.settings import RunConfig
    from sample_data import SAMPLE_DIR

    # Like `spo solve`: without a config, the sample book with its default constraints.
    cfg = (_load_config(args) if args.config
           else RunConfig.load(SAMPLE_DIR / "scenarios" / "default.toml"))
    if not args.config and args.data:
        cfg.data.dir = Path(args.data).resolve()
    SpoApp(cfg, config_path=Path(args.config).resolve() if args.config else None).run()
    return EXIT_OK


def cmd_mcp(args: argparse.Namespace) -> int:
    from console.mcp_server import serve_stdio

    # Absolute paths: an MCP client starts the server from a folder of its own.
    config = Path(args.config).resolve() if args.config else None
    # A bad config fails here, in one line, not later inside the server.
    cfg = _load_config(args) if config is not None else None
    if args.runs_dir:
        runs_dir = Path(args.runs_dir)
    elif cfg is not None:
        from core.runlog import runs_dir_for
        runs_dir = runs_dir_for(cfg)
    else:
        runs_dir = Path("runs")
    serve_stdio(runs_dir.resolve(), config)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spo", description=__doc__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", help="run config TOML (default: embedded sample data)")
        p.add_argument("--data", help="data folder, overriding the config's [data] dir")
        p.add_argument("--numeraire", help="numeraire currency, overriding the config")

    data = sub.add_parser("data", help="data checks")
    data_sub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    validate = data_sub.add_parser("validate", help="load every table, build the universe, "
                                                    "print row counts and diagnostics")
    common(validate)
    validate.add_argument("--json", action="store_true", help="machine-readable output")
    validate.add_argument("--limit", type=int, default=20,
                          help="diagnostic rows to print (default 20; --json prints all)")
    validate.set_defaults(func=cmd_data_validate)

    solve = sub.add_parser("solve", help="optimize and write orders, trades, diagnostics")
    common(solve)
    solve.add_argument("--solver", choices=["auto", "clarabel", "mosek"],
                       help="override the config's solver")
    solve.add_argument("--out", default="out", help="output folder (default: out)")
    solve.add_argument("--json", action="store_true", help="print run.json to stdout")
    solve.add_argument("--runs-dir", help="where the run log goes (default: the config's "
                                          "runs_dir; for the sample, runs/ beside --out)")
    solve.set_defaults(func=cmd_solve)

    runs = sub.add_parser("runs", help="the run logs every solve writes")
    runs_sub = runs.add_subparsers(dest="runs_command", metavar="ACTION", required=True)
    runs_list = runs_sub.add_parser("list", help="run logs, newest first")
    runs_show = runs_sub.add_parser("show", help="one run: summary, binding constraints, "
                                                 "relaxations and advice")
    runs_show.add_argument("run_id", metavar="ID", help="a run id or a unique prefix of one")
    for p in (runs_list, runs_show):
        p.add_argument("--runs-dir", help="run logs folder (default: the config's runs_dir, "
                                          "else ./runs)")
        p.add_argument("--config", help="take runs_dir from this config")
        p.add_argument("--json", action="store_true", help="machine-readable output")
    runs_list.add_argument("--limit", type=int, default=20,
                           help="newest N runs (default 20; 0 for all)")
    runs_list.set_defaults(func=cmd_runs_list)
    runs_show.set_defaults(func=cmd_runs_show)

    console = sub.add_parser("console", help="open the console (default: the sample data)")
    common(console)
    console.set_defaults(func=cmd_console)

    mcp = sub.add_parser("mcp", help="serve the run logs to an AI assistant over MCP (stdio)")
    mcp.add_argument("--runs-dir", help="run logs folder (default: the config's runs_dir, "
                                        "else ./runs)")
    mcp.add_argument("--config", help="the config data_quality checks when no run is named "
                                      "(default: the sample data)")
    mcp.set_defaults(func=cmd_mcp)

    sample = sub.add_parser("sample-data", help="generate a deterministic sample data set")
    sample.add_argument("--size", type=int, default=2000, help="number of instruments")
    sample.add_argument("--seed", type=int, default=7)
    sample.add_argument("--out", required=True, help="output folder")
    sample.set_defaults(func=cmd_sample_data)

    bench = sub.add_parser("bench", help="time each stage for generated books of given sizes")
    bench.add_argument("--sizes", default="2000,15000", help="comma-separated sizes")
    bench.add_argument("--repeat", type=int, default=3, help="runs per size (median reported)")
    bench.add_argument("--json", action="store_true", help="print a JSON list of results")
    bench.add_argument("--no-cvxpy", action="store_true", help="skip the CVXPY comparison")
    bench.set_defaults(func=cmd_bench)

    config = sub.add_parser("config", help="config files")
    config_sub = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    show = config_sub.add_parser("show", help="print the effective config as TOML, every key")
    common(show)
    show.set_defaults(func=cmd_config_show)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        # `spo` alone opens the console on the embedded sample data.
        args = parser.parse_args(["console"])
    try:
        return args.func(args)
    except SpoInputError as exc:
        print(f"spo: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("spo: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - a bug: say so in one line, keep the trace on demand
        if os.environ.get("SPO_DEBUG"):
            raise
        print(f"spo: internal error: {type(exc).__name__}: {exc} "
              "(rerun with SPO_DEBUG=1 for the traceback and report it)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
