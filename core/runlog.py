"""The run log: one JSON document per solve, so any run can be read, explained and re-solved.

Platform spec section 13: run metadata, config snapshot, data QC, the constraints before the
solve, settings, solver diagnostics (slack, dual, status), results summary, and the advice.
The document is a versioned pydantic schema (`schema_version`); a reader refuses a newer
version with a message rather than misreading it. Files are published atomically and never
overwritten: `<runs_dir>/<run_id>.json`, one per solve.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import math
import os
import platform
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.advice import Suggestion, advise
from core.context import RunContext
from core.errors import SpoInputError, sample_ids
from core.settings import RunConfig

SCHEMA_VERSION = 1
MAX_DIAGNOSTICS = 200  # data diagnostics kept verbatim; the counts cover every one
MAX_INSTRUMENT_ROWS = 500  # per-name constraint rows kept (binding or violated first)
MAX_FILE_CONSTRAINTS = 2000  # constraints kept per constraint file (large bound tables)
TOP_TRADES = 20
SUFFIX = ".json"


class RunLogError(SpoInputError):
    """A run log that is missing, damaged or from a newer spo."""


class RunLogExists(FileExistsError):
    """A log with this run id is already written; logs are records, never replaced."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- the document --------------------------------------------------------------------------

class Versions(_Model):
    spo: str | None = None
    python: str
    polars: str | None = None
    numpy: str | None = None
    clarabel: str | None = None
    mosek: str | None = None


class RunMeta(_Model):
    run_id: str = Field(description="this solve: <load id>-s<N>")
    load_id: str = Field(description="the load (RunContext.run_id) the solve belongs to")
    account: str
    run_date: dt.date
    as_of: dt.datetime
    loaded_at: dt.datetime = Field(description="when the data load started")
    started_at: dt.datetime = Field(description="when the solve started")
    finished_at: dt.datetime
    user: str
    host: str
    versions: Versions
    solver: str
    solver_reason: str = Field(description="which solver and why (license found or not)")
    config_base_dir: str = Field(description="relative paths in the config resolve here")
    data_dir: str


class TableQC(_Model):
    rows: int
    rows_read: int
    rows_dropped: int
    path: str | None = None


class DiagnosticRow(_Model):
    severity: str
    code: str
    instrument_id: str | None = None
    table: str
    message: str


class DiagnosticCount(_Model):
    severity: str
    code: str
    count: int


class DataQC(_Model):
    tables: dict[str, TableQC] = Field(default_factory=dict,
                                       description="empty when the load's tables were not given")
    universe_rows: int
    instruments: int
    tradable: int
    untradable: dict[str, int] = Field(default_factory=dict, description="count per reason")
    book: dict[str, float | int | None] = Field(default_factory=dict,
                                                description="NAV, gross, net, ... pre-trade")
    by_severity: dict[str, int] = Field(default_factory=dict)
    by_code: list[DiagnosticCount] = Field(default_factory=list)
    diagnostics: list[DiagnosticRow] = Field(
        default_factory=list, description=f"error and warning rows, at most {MAX_DIAGNOSTICS}")
    diagnostics_total: int = Field(0, description="error and warning rows in all")


class ConstraintRow(_Model):
    name: str
    kind: str
    label: str
    value: float | None = None
    lower: float | None = None
    upper: float | None = None
    slack: float | None = None
    dual: float | None = None
    dual_unit: str
    binding: bool
    violation: float | None = None
    unit: str
    soft: bool
    scope: str


class ConstraintTotals(_Model):
    name: str
    kind: str
    rows: int
    binding: int
    max_dual: float | None = None
    total_violation: float | None = None


class RelaxationRow(_Model):
    name: str
    kind: str
    label: str
    bound: str
    current: float | None = None
    relaxed_to: float | None = None
    amount: float | None = None
    unit: str
    message: str


class SolverReport(_Model):
    name: str
    reason: str
    status: str
    message: str
    iterations: int | None = None
    objective_bp: float | None = Field(None, description="utility incl. soft penalties")
    timings: dict[str, float] = Field(default_factory=dict)
    constraints: list[ConstraintRow] = Field(
        default_factory=list, description="every book- and group-level row; per-name rows "
                                          "only when binding or violated (capped)")
    constraint_totals: list[ConstraintTotals] = Field(default_factory=list)
    constraint_rows_total: int = 0
    relaxation: list[RelaxationRow] | None = None
    conflicts: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class TradeRow(_Model):
    instrument_id: str
    ticker: str
    type: str
    side: str
    shares: float
    notional: float
    signed_notional: float
    price: float | None = None
    cost: float | None = None
    cost_bps: float | None = None


class ResultsSummary(_Model):
    status: str
    nav: float
    numeraire: str
    utility_bp: float | None = None
    alpha_bp: dict[str, float | None] = Field(default_factory=dict)
    risk: dict[str, Any] = Field(default_factory=dict, description="before/after, % vol")
    book: dict[str, Any] = Field(default_factory=dict, description="gross/net/long/short")
    turnover_pct: float | None = None
    turnover: float | None = None
    trades: int = 0
    orders: int | None = None
    costs_bp: dict[str, float | None] = Field(default_factory=dict)
    trading_cost_bp: float | None = None
    margin: dict[str, Any] = Field(default_factory=dict)
    liquidity: dict[str, Any] = Field(default_factory=dict)
    groups: dict[str, Any] = Field(default_factory=dict)
    factors: list[dict[str, Any]] = Field(default_factory=list)
    flows: list[dict[str, Any]] = Field(default_factory=list)
    fx_orders: list[dict[str, Any]] = Field(default_factory=list)
    cash: list[dict[str, Any]] = Field(default_factory=list)
    discrete: dict[str, Any] | None = None
    broken_by_rounding: list[dict[str, Any]] = Field(default_factory=list)
    top_trades: list[TradeRow] = Field(default_factory=list)


class RunLog(_Model):
    schema_version: int = SCHEMA_VERSION
    meta: RunMeta
    config: dict[str, Any] = Field(description="RunConfig.model_dump(mode='json')")
    data_qc: DataQC
    constraints: list[dict[str, Any]] = Field(
        default_factory=list, description="the specs before the solve, with their source")
    constraints_total: int = 0
    settings: dict[str, Any] = Field(description="the optimization settings")
    solver: SolverReport
    results: ResultsSummary
    advice: list[Suggestion] = Field(default_factory=list)
    advice_error: str | None = Field(None, description="why advice is missing, if it is")

    def config_model(self) -> RunConfig:
        """The run's RunConfig, with its base dir, ready to re-solve."""
        return RunConfig.from_dict(self.config, source=f"run log {self.meta.run_id}",
                                   base_dir=Path(self.meta.config_base_dir))

    def summary(self) -> "RunLogSummary":
        return RunLogSummary(
            run_id=self.meta.run_id, finished_at=self.meta.finished_at,
            account=self.meta.account, status=self.results.status,
            utility_bp=self.results.utility_bp,
            solve_seconds=sum(self.solver.timings.values()),
            suggestions=len(self.advice))


class RunLogSummary(_Model):
    """One line of `spo runs list`; `problem` says why a file could not be read."""

    run_id: str
    finished_at: dt.datetime | None = None
    account: str | None = None
    status: str | None = None
    utility_bp: float | None = None
    solve_seconds: float | None = None
    suggestions: int | None = None
    file: str | None = None
    problem: str | None = None


# --- building ------------------------------------------------------------------------------

def _clean(obj: Any) -> Any:
    """JSON-safe: numpy scalars to Python, NaN and inf to None, dates to ISO text in dicts."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, (dt.date, dt.datetime, Path)):
        return obj.isoformat() if not isinstance(obj, Path) else str(obj)
    return obj


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions() -> Versions:
    return Versions(spo=_version("spo"), python=platform.python_version(),
                    polars=_version("polars"), numpy=_version("numpy"),
                    clarabel=_version("clarabel"), mosek=_version("mosek"))


def data_qc(universe, dataset=None) -> DataQC:
    frame = universe.frame
    diags = universe.diagnostics
    risky = frame.filter(~pl.col("is_cash"))
    untradable = (risky.filter(~pl.col("tradable"))
                  .group_by(pl.col("untradable_reason").fill_null("(unknown)")).len())
    serious = diags.filter(pl.col("severity").is_in(["error", "warning"]))
    tables = {}
    if dataset is not None:
        tables = {name: TableQC(rows=t.frame.height, rows_read=t.rows_read,
                                rows_dropped=t.rows_dropped,
                                path=str(t.path) if t.path else None)
                  for name, t in dataset.tables.items()}
    return DataQC(
        tables=tables, universe_rows=frame.height, instruments=risky.height,
        tradable=int(frame.get_column("tradable").sum()),
        untradable=dict(zip(untradable.get_column("untradable_reason").to_list(),
                            untradable.get_column("len").to_list())),
        book=_clean(universe.summary),
        by_severity=dict(diags.group_by("severity").len().iter_rows()),
        by_code=[DiagnosticCount(severity=s, code=c, count=n) for s, c, n in
                 diags.group_by("severity", "code").len().sort("severity", "code").iter_rows()],
        diagnostics=[DiagnosticRow(**r) for r in serious.head(MAX_DIAGNOSTICS).to_dicts()],
        diagnostics_total=serious.height)


def constraints_before(config: RunConfig) -> tuple[list[dict[str, Any]], int]:
    """Every spec the trader asked for, with where it came from; big files are capped."""
    rows = [c.model_dump(mode="json") | {"source": "config"} for c in config.constraints]
    total = len(rows)
    from core.constraints.tables import read_constraint_file

    for path in config.constraint_files:
        resolved = config.resolve(path)
        try:
            specs = read_constraint_file(resolved)
        except SpoInputError as exc:
            rows.append({"source": str(resolved), "error": str(exc)})
            continue
        total += len(specs)
        rows += [c.model_dump(mode="json") | {"source": str(resolved)}
                 for c in specs[:MAX_FILE_CONSTRAINTS]]
    return rows, total


def solver_report(result) -> SolverReport:
    diag = result.diagnostics
    # Book and group rows are few and all worth reading; per-name rows can be 15,000 per
    # constraint, so only those that bind or break a soft bound are kept, priciest first.
    named = diag.filter(pl.col("scope") == "instrument")
    keep = pl.concat([
        diag.filter(pl.col("scope") != "instrument"),
        named.filter(pl.col("binding") | (pl.col("violation") > 0))
        .sort("dual", descending=True, nulls_last=True).head(MAX_INSTRUMENT_ROWS)])
    totals = diag.group_by("name", "kind", maintain_order=True).agg(
        rows=pl.len(), binding=pl.col("binding").sum(), max_dual=pl.col("dual").max(),
        total_violation=pl.col("violation").sum())
    s = result.summary
    relaxation = None
    if result.relaxation is not None:
        relaxation = [RelaxationRow(**_clean(r)) for r in result.relaxation.to_dicts()]
    return SolverReport(
        name=result.solver, reason=result.solver_reason, status=result.status,
        message=str(result.solved.raw.message), iterations=s.get("iterations"),
        objective_bp=_clean(s.get("utility_bp")), timings=_clean(result.timings),
        constraints=[ConstraintRow(**_clean(r)) for r in keep.to_dicts()],
        constraint_totals=[ConstraintTotals(**_clean(r)) for r in totals.to_dicts()],
        constraint_rows_total=diag.height, relaxation=relaxation,
        conflicts=list(result.solved.conflicts), notes=list(result.solved.notes))


def results_summary(result) -> ResultsSummary:
    s = _clean(result.summary)
    trades = result.trades.sort("notional", descending=True).head(TOP_TRADES).select(
        list(TradeRow.model_fields))
    keys = set(ResultsSummary.model_fields) - {"top_trades"}
    fields = {k: v for k, v in s.items() if k in keys and v is not None}
    fields["fx_orders"] = fields.get("fx_orders") or []
    return ResultsSummary(**fields, top_trades=[TradeRow(**_clean(r))
                                                for r in trades.to_dicts()])


def build_run_log(result, universe, config: RunConfig, context: RunContext,
                  advice: list[Suggestion] | None = None, *, run_id: str | None = None,
                  dataset=None, finished_at: dt.datetime | None = None) -> RunLog:
    """The run log of one solve. `run_id` defaults to the load's id; `dataset` (the load's
    tables) adds row counts per table to the data QC."""
    finished = finished_at or dt.datetime.now()
    advice_error = None
    if advice is None:
        try:
            advice = advise(result, universe, config)
        except Exception as exc:  # noqa: BLE001 - the log of a solve must not be lost to advice
            advice, advice_error = [], f"{type(exc).__name__}: {exc}"
    # Evidence is free-form: make it JSON-safe here so the log reads back equal.
    advice = [s.model_copy(update={"evidence": _clean(s.evidence)}) for s in advice]
    elapsed = sum(v for v in result.timings.values() if v is not None)
    constraints, total = constraints_before(config)
    return RunLog(
        meta=RunMeta(
            run_id=run_id or context.run_id, load_id=context.run_id, account=context.account,
            run_date=context.run_date, as_of=context.as_of, loaded_at=context.started_at,
            started_at=finished - dt.timedelta(seconds=elapsed), finished_at=finished,
            user=context.user, host=context.host, versions=versions(),
            solver=result.solver, solver_reason=result.solver_reason,
            config_base_dir=str(config.base_dir), data_dir=str(config.data_dir())),
        config=config.model_dump(mode="json"),
        data_qc=data_qc(universe, dataset),
        constraints=constraints, constraints_total=total,
        settings=config.optimization.model_dump(mode="json"),
        solver=solver_report(result), results=results_summary(result),
        advice=advice, advice_error=advice_error)


# --- writing -------------------------------------------------------------------------------

def write_run_log(log: RunLog, runs_dir: str | Path) -> Path:
    """Publish `<runs_dir>/<run_id>.json` atomically; an existing log is never replaced
    (RunLogExists): a run log is a record."""
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    path = runs_dir / f"{log.meta.run_id}{SUFFIX}"
    text = log.model_dump_json(indent=1)
    fd, tmp = tempfile.mkstemp(dir=runs_dir, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        # A hard link publishes the complete file in one step and fails if the name is
        # taken, where a rename would silently replace another solve's log.
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise RunLogExists(f"run log {path} already exists") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


_solve_lock = threading.Lock()  # console solves run in worker threads


def runs_dir_for(config: RunConfig) -> Path:
    """Where a config's run logs go. The embedded sample scenarios live inside the package,
    which may be read-only and is no place for a desk's records: theirs go to ./runs."""
    from sample_data import SAMPLE_DIR

    path = config.runs_path()
    if not config.runs_dir.is_absolute() and config.base_dir.resolve().is_relative_to(
            SAMPLE_DIR):
        path = Path.cwd() / config.runs_dir
    return path


def record_solve(result, universe, config: RunConfig, context: RunContext, *,
                 runs_dir: str | Path | None = None, dataset=None,
                 advice: list[Suggestion] | None = None) -> tuple[RunLog, Path]:
    """Build and write the log of one solve as `<load id>-s<N>`, N the first free number,
    so the many solves of one console session never overwrite each other."""
    folder = Path(runs_dir) if runs_dir is not None else runs_dir_for(config)
    log = build_run_log(result, universe, config, context, advice, dataset=dataset)
    with _solve_lock:
        n = 1 + len(list(folder.glob(f"{context.run_id}-s*{SUFFIX}"))) if folder.exists() else 1
        while True:
            run_id = f"{context.run_id}-s{n}"
            log.meta.run_id = run_id
            try:
                return log, write_run_log(log, folder)
            except RunLogExists:
                n += 1


# --- reading -------------------------------------------------------------------------------

def _read(path: Path) -> RunLog:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise RunLogError(f"cannot read the run log ({exc})", file=path,
                          fix="check the file's permissions") from None
    except json.JSONDecodeError as exc:
        raise RunLogError(f"not valid JSON ({exc.msg} at line {exc.lineno} column "
                          f"{exc.colno})", file=path,
                          fix="the file is damaged (an interrupted copy?): restore it from "
                              "a backup or delete it") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("schema_version"), int):
        raise RunLogError("not a spo run log (no integer schema_version)", file=path,
                          field="schema_version",
                          fix="point --runs-dir at a folder of spo run logs")
    version = raw["schema_version"]
    if version > SCHEMA_VERSION:
        raise RunLogError(f"written with run log schema {version}; this spo reads schema "
                          f"{SCHEMA_VERSION} and older", file=path, field="schema_version",
                          fix="upgrade spo to read it")
    try:
        return RunLog.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise RunLogError(f"invalid run log: {err['msg']}{more}", file=path, field=where,
                          fix="the file was edited or written by another tool: restore "
                              "it from a backup") from None


def _log_files(runs_dir: Path) -> list[Path]:
    # Dot files are the writer's temporary files, not logs.
    return sorted(p for p in runs_dir.glob(f"*{SUFFIX}") if not p.name.startswith("."))


def list_runs(runs_dir: str | Path) -> list[RunLogSummary]:
    """Every run log in the folder, newest first; unreadable files come last, each with
    the reason (`problem`) instead of its numbers."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    good, bad = [], []
    for path in _log_files(runs_dir):
        try:
            good.append(_read(path).summary().model_copy(update={"file": str(path)}))
        except RunLogError as exc:
            bad.append(RunLogSummary(run_id=path.stem, file=str(path), problem=str(exc)))
    # timestamp(): a log written with a UTC offset sorts among naive (local) ones.
    good.sort(key=lambda s: (s.finished_at.timestamp() if s.finished_at else 0.0, s.run_id),
              reverse=True)
    return good + bad


def load_run(runs_dir: str | Path, run_id: str) -> RunLog:
    """The run log with this id, or the only one whose id starts with it."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise RunLogError("no run logs folder", file=runs_dir,
                          fix="run `spo solve` first, or pass --runs-dir with the folder "
                              "holding the run logs")
    exact = runs_dir / f"{run_id}{SUFFIX}"
    if exact.is_file():
        return _read(exact)
    stems = [p.stem for p in _log_files(runs_dir)]
    matches = [s for s in stems if s.startswith(run_id)]
    if len(matches) == 1:
        return _read(runs_dir / f"{matches[0]}{SUFFIX}")
    if matches:
        raise RunLogError(f"run id '{run_id}' matches {len(matches)} run logs",
                          file=runs_dir, field="run id", ids=matches,
                          fix="give more of the id")
    newest = [s.run_id for s in list_runs(runs_dir)[:5]]
    raise RunLogError(f"no run log with id '{run_id}'", file=runs_dir, field="run id",
                      fix=("pick one from `spo runs list`, e.g. " + sample_ids(newest, 3))
                      if newest else "the folder has no run logs; run `spo solve` first")
