"""`spo mcp`: the run logs, and what-if re-solves of them, for an AI assistant over MCP.

Design section 8 / platform spec section 13. An assistant connected over stdio reads the
structured run logs (`core.runlog`) as resources and calls tools that answer a trader's
questions: why did this run fail, what would it take to solve, what does relaxing X do.

Every answer is built from the logged run: the advice stored with it, its relaxation
report, its config snapshot. `what_if` is the only tool that loads data and solves; it
never writes a run log, so the desk's records hold only runs that were really made.

    python -m console.mcp_server --runs-dir runs [--config run.toml]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import polars as pl
from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.types import Resource
from pydantic import Field

from core.advice import ConfigChange, apply_change
from core.constraints.catalogue import KINDS
from core.errors import SpoInputError
from core.runlog import RunLog, data_qc, list_runs, load_run
from core.settings import RunConfig

RUN_URI = "spo://runs/{run_id}"
RUNS_URI = "spo://runs"
MAX_LISTED_RESOURCES = 100  # resources/list shows the newest; list_runs reaches the rest
RELAXATION_CODES = ("RELAX_INFEASIBLE", "RELAX_BOUND", "TIGHT_EXPOSURE")
TOP_HOLDINGS = 10
MAX_BINDING_LISTED = 30

# Parts of a config that change the universe itself; when a what-if leaves them alone the
# baseline and the what-if share one data load.
UNIVERSE_KEYS = ("account", "run_date", "as_of", "numeraire", "data", "validation")

INSTRUCTIONS = """\
spo is a single-period portfolio optimizer. Every solve writes a JSON run log; this server
reads them. Start with list_runs (newest first) to get a run_id. get_run returns the log or
chosen sections. For a run that did not solve, explain_infeasibility says which limits
conflict and by how much, and suggest_relaxations gives the concrete config change.
what_if re-solves a run with changes (constraint bounds by name, settings by dotted path)
and reports the differences; nothing is written. data_quality shows the data checks of a
run or of the current data. Units: %NAV is percent of net asset value, bp is 0.01% of NAV,
%vol is annualized volatility in percent."""


# --- reading run logs -----------------------------------------------------------------------

@contextlib.contextmanager
def _as_tool_error() -> Iterator[None]:
    """A bad run id, a bad change or bad data is the assistant's to fix: it comes back as
    a tool error carrying spo's one-line message (file, field, fix), not a crash."""
    try:
        yield
    except SpoInputError as exc:
        raise ToolError(str(exc)) from exc


def _check_run_id(run_id: str) -> str:
    # Run ids become file names: anything that could leave the runs folder is refused.
    run_id = run_id.strip()
    if not run_id or "/" in run_id or "\\" in run_id or "\x00" in run_id \
            or run_id.startswith("."):
        raise ToolError(f"'{run_id}' is not a run id; take one from list_runs")
    return run_id


def _load(runs_dir: Path, run_id: str) -> RunLog:
    run_id = _check_run_id(run_id)
    with _as_tool_error():
        return load_run(runs_dir, run_id)


def run_uri(run_id: str) -> str:
    return RUN_URI.format(run_id=quote(run_id, safe=""))


def _run_listing(runs_dir: Path, limit: int | None = None) -> list[dict[str, Any]]:
    runs = list_runs(runs_dir)
    if limit is not None:
        runs = runs[:limit]
    out = []
    for s in runs:
        row = s.model_dump(mode="json", exclude_none=True)
        if s.problem is None:
            row["uri"] = run_uri(s.run_id)
        out.append(row)
    return out


# --- what the tools say ---------------------------------------------------------------------

def _constraint_meaning(kind: str) -> str:
    k = KINDS.get(kind)
    return k.doc if k is not None else kind


def _num(x: float | None, digits: int = 6) -> str:
    return "n/a" if x is None else f"{x:,.{digits}g}"


def _relaxation_words(rows: list[dict[str, Any]]) -> list[str]:
    words = []
    for r in rows:
        where = r["name"] + (f" [{r['label']}]" if r["label"] and r["label"] not in r["name"]
                             else "")
        words.append(
            f"{where} ({_constraint_meaning(r['kind'])}): {r['bound']} bound from "
            f"{_num(r['current'])} to {_num(r['relaxed_to'])} {r['unit']} "
            f"(by {_num(r['amount'], 4)})")
    return words


def explain(log: RunLog) -> dict[str, Any]:
    """The conflict of an unsolved run in plain words; for a solved run, that it solved and
    which limits shaped the book."""
    solver = log.solver
    status = log.results.status
    feasible = status in ("optimal", "near_optimal")
    out: dict[str, Any] = {"run_id": log.meta.run_id, "status": status, "feasible": feasible}
    if feasible:
        # One entry per constraint, not per row: a restriction binds on hundreds of names.
        binding = sorted((t for t in solver.constraint_totals if t.binding),
                         key=lambda t: -(t.max_dual or 0.0))
        out["binding_constraints"] = [
            {"name": t.name, "kind": t.kind, "meaning": _constraint_meaning(t.kind),
             "binding_rows": t.binding, "rows": t.rows, "max_shadow_price": t.max_dual,
             "examples": [
                 {"label": c.label, "value": c.value, "lower": c.lower, "upper": c.upper,
                  "unit": c.unit, "shadow_price": c.dual, "dual_unit": c.dual_unit}
                 for c in solver.constraints if c.name == t.name and c.binding][:3]}
            for t in binding[:MAX_BINDING_LISTED]]
        near = " (stopped at reduced tolerances; usable but flagged)" \
            if status == "near_optimal" else ""
        limits = ", ".join(t.name for t in binding[:5])
        out["explanation"] = (
            f"The run solved{near}: every hard constraint holds, so there is no conflict to "
            "explain. " + (f"The limits that bind (shape the book), priciest first: {limits}. "
                           "suggest_relaxations says what loosening them is worth."
                           if binding else "No constraint binds."))
        return out
    relaxation = [r.model_dump() for r in solver.relaxation or []]
    out["conflicting_constraints"] = list(solver.conflicts)
    out["relaxation"] = relaxation
    out["solver_message"] = solver.message
    out["notes"] = list(solver.notes)
    if relaxation:
        moves = _relaxation_words(relaxation)
        largest = ""
        if len({r["unit"] for r in relaxation}) == 1:  # amounts compare only in one unit
            top = max(relaxation, key=lambda r: abs(r["amount"] or 0.0))
            largest = f"The largest move is on {top['name']}, the limit the book is " \
                      "furthest from meeting. "
        cert = (f"The solver's infeasibility certificate involves: "
                f"{', '.join(solver.conflicts)}. " if solver.conflicts else "")
        out["explanation"] = (
            "No portfolio meets every hard constraint at once. " + cert
            + "An elastic re-solve (which finds the smallest priority-weighted loosening of "
              "the hard limits that makes the problem solvable) had to move: "
            + "; ".join(moves) + ". These moves restore feasibility together; one alone may "
            "not. " + largest + "suggest_relaxations gives the config change (padded just "
            "past the minimum) and what_if confirms it solves.")
    elif status == "infeasible":
        out["explanation"] = (
            "The solver proved no portfolio meets every hard constraint, but the elastic "
            "re-solve could not name the relaxations. "
            + (f"Its certificate involves: {', '.join(solver.conflicts)}. "
               if solver.conflicts else "")
            + "Check restrictions (no_new_longs/shorts, no_trade) against the targets, and "
              "the data_quality of the run: untradable names cannot move.")
    else:
        out["explanation"] = (
            f"The solver stopped without a solution ({status}: {solver.message}); this is "
            "not proof that the constraints conflict. A time limit calls for a longer "
            "optimization.time_limit_s; a numerical error often for extreme bounds or "
            "penalties. suggest_relaxations and the run's advice name the setting to change.")
    return out


def relaxation_suggestions(log: RunLog) -> dict[str, Any]:
    picked = [s.model_dump(mode="json") for s in log.advice if s.code in RELAXATION_CODES]
    for s in picked:
        if s["change"] is not None:
            s["change_in_words"] = ConfigChange.model_validate(s["change"]).describe()
    out: dict[str, Any] = {"run_id": log.meta.run_id, "status": log.results.status,
                           "suggestions": picked}
    if not picked:
        out["message"] = (
            "No relaxation is suggested for this run: nothing conflicts and no binding limit "
            "is priced above noise." if log.results.status in ("optimal", "near_optimal")
            else "The run did not solve but the log holds no relaxation; see "
                 "explain_infeasibility.")
    if log.advice_error:
        out["advice_error"] = log.advice_error
    return out


# --- what-if --------------------------------------------------------------------------------

_solve_lock = threading.Lock()  # one re-solve at a time: a 15k-name solve takes the machine


def _solve(config: RunConfig, state=None):
    from console.state import AppState
    from core.results import optimize

    if state is None:
        state = AppState(config)
        state.load()
    result = optimize(state.universe, config.all_constraints(), config.optimization,
                      solver=config.solver)
    return result, state


def _binding_rows(result) -> dict[str, set[str]]:
    """constraint name -> labels of its binding rows ('' for a book-level limit)."""
    rows: dict[str, set[str]] = {}
    for name, label in result.diagnostics.filter(pl.col("binding")).select(
            "name", "label").iter_rows():
        rows.setdefault(name, set()).add(label)
    return rows


def _binding_change(was: dict[str, set[str]], now: dict[str, set[str]]) -> list[dict]:
    """Rows binding in `now` and not in `was`, per constraint: whole limits that start (or
    stop) binding first, then per-name limits that gain a few names."""
    out = []
    for name, labels in now.items():
        new = labels - was.get(name, set())
        if new:
            named = sorted(label for label in new if label)
            out.append({"constraint": name, "whole_constraint": name not in was,
                        "rows": len(new), "labels": named[:MAX_BINDING_LISTED]})
    return sorted(out, key=lambda r: (not r["whole_constraint"], r["constraint"]))


def _figures(result) -> dict[str, Any]:
    s = result.summary
    after = s["book"]["after"]
    return {"status": result.status, "utility_bp": s.get("utility_bp"),
            "alpha_bp": s["alpha_bp"]["after"], "risk_pct": s["risk"]["after"]["total_pct"],
            "factor_risk_pct": s["risk"]["after"]["factor_pct"],
            "gross_pct": after["gross_pct"], "net_pct": after["net_pct"],
            "turnover_pct": s["turnover_pct"], "trades": s["trades"],
            "trading_cost_bp": s["trading_cost_bp"]}


def _top_holding_changes(base, new) -> list[dict[str, Any]]:
    cols = ["instrument_id", "ticker", "weight_before", "weight_after"]
    joined = base.optimal.select(cols).join(
        new.optimal.select("instrument_id", "ticker", "weight_before",
                           what_if="weight_after"),
        on="instrument_id", how="full", coalesce=True, suffix="_new")
    joined = joined.select(
        "instrument_id", ticker=pl.coalesce("ticker", "ticker_new"),
        current_pct=100 * pl.coalesce("weight_before", "weight_before_new").fill_null(0.0),
        baseline_pct=100 * pl.col("weight_after").fill_null(0.0),
        what_if_pct=100 * pl.col("what_if").fill_null(0.0),
    ).with_columns(change_pct=pl.col("what_if_pct") - pl.col("baseline_pct"))
    moved = joined.filter(pl.col("change_pct").abs() > 1e-6)
    return moved.sort(pl.col("change_pct").abs(), descending=True).head(TOP_HOLDINGS).to_dicts()


def what_if_run(log: RunLog, changes: ConfigChange) -> dict[str, Any]:
    """Re-solve the logged config with the changes and compare it with the logged config
    re-solved on the same data load (so data that moved since the run is not mistaken for
    the changes' effect). Nothing is written."""
    if not changes.ops:
        raise ToolError("no changes given: pass at least one op in changes.ops")
    with _as_tool_error():
        base_config = log.config_model()
        # All ops at once: moving a band (lower, then upper) must not fail half-way.
        new_config = apply_change(base_config, changes)
        same_universe = (base_config.model_dump(include=set(UNIVERSE_KEYS))
                         == new_config.model_dump(include=set(UNIVERSE_KEYS)))
        with _solve_lock:
            base, state = _solve(base_config)
            new, _ = _solve(new_config, state if same_universe else None)
    before, after = _figures(base), _figures(new)
    delta = {k: after[k] - before[k] for k in after
             if isinstance(after[k], (int, float)) and isinstance(before[k], (int, float))}
    # An unsolved run's rows describe the current book, not a solution: nothing binds.
    base_binding = _binding_rows(base) if base.ok else {}
    new_binding = _binding_rows(new) if new.ok else {}
    logged = log.results
    reproduced = (base.status == logged.status and (
        logged.utility_bp is None or base.summary["utility_bp"] is None
        or abs(base.summary["utility_bp"] - logged.utility_bp) <= 1e-3 * max(
            1.0, abs(logged.utility_bp))))
    out: dict[str, Any] = {
        "run_id": log.meta.run_id,
        "changes": changes.describe(),
        "baseline": before, "what_if": after, "difference": delta,
        "status_change": f"{before['status']} -> {after['status']}",
        "binding_added": _binding_change(base_binding, new_binding),
        "binding_removed": _binding_change(new_binding, base_binding),
        "top_holding_changes": _top_holding_changes(base, new),
        "baseline_matches_log": reproduced,
        "written": False,
    }
    if not reproduced:
        out["baseline_note"] = (
            f"the logged config re-solved today gives {base.status} / utility "
            f"{base.summary['utility_bp']} bp where the log has {logged.status} / "
            f"{logged.utility_bp} bp: the data has changed since the run; differences are "
            "measured against today's re-solve")
    if not new.ok:
        out["what_if_relaxation"] = (new.relaxation.to_dicts()
                                     if new.relaxation is not None else [])
        out["what_if_conflicts"] = list(new.solved.conflicts)
    out["what_if_notes"] = list(new.solved.notes)
    return out


# --- data quality ---------------------------------------------------------------------------

def _qc_view(qc: dict[str, Any], limit: int) -> dict[str, Any]:
    rows = qc.get("diagnostics", [])
    qc = dict(qc, diagnostics=rows[:limit])
    qc["errors"] = qc.get("by_severity", {}).get("error", 0)
    qc["warnings"] = qc.get("by_severity", {}).get("warning", 0)
    qc["ok"] = qc["errors"] == 0
    return qc


def fresh_data_quality(config_path: Path | None, limit: int) -> dict[str, Any]:
    from console.state import AppState

    with _as_tool_error():
        config = RunConfig.load(config_path) if config_path else RunConfig()
        state = AppState(config)
        state.load()
    qc = data_qc(state.universe, state.dataset).model_dump(mode="json")
    return {"source": f"fresh load of {config_path}" if config_path
            else "fresh load of the default config (the embedded sample data)",
            "data_dir": str(config.data_dir()), "as_of": state.universe.as_of.isoformat(),
            "numeraire": config.numeraire, **_qc_view(qc, limit)}


# --- the server -----------------------------------------------------------------------------

class RunLogServer(MCPServer):
    """An MCPServer whose resource list names every run log in the folder as it is now:
    runs solved after the server started appear without a restart."""

    def __init__(self, runs_dir: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.runs_dir = runs_dir

    async def list_resources(self) -> list[Resource]:
        fixed = await super().list_resources()
        runs = [s for s in list_runs(self.runs_dir) if s.problem is None]
        return fixed + [
            Resource(uri=run_uri(s.run_id), name=s.run_id, mime_type="application/json",
                     description=f"run log: account {s.account}, {s.status}, utility "
                                 f"{_num(s.utility_bp, 4)} bp, finished {s.finished_at}")
            for s in runs[:MAX_LISTED_RESOURCES]]


RunId = Annotated[str, Field(description="a run id from list_runs (a unique prefix is "
                                         "enough), e.g. 'ARB-1-20261120-153000-ab12cd-s1'")]


def build_server(runs_dir: Path, config_path: Path | None = None) -> MCPServer:
    """The spo MCP server over the run logs in `runs_dir`; `config_path` is the config that
    data_quality validates when no run is named (the sample data when None)."""
    runs_dir = Path(runs_dir)
    server = RunLogServer(runs_dir, name="spo", title="spo run logs",
                          instructions=INSTRUCTIONS, log_level="WARNING")

    @server.resource(RUNS_URI, name="runs", mime_type="application/json",
                     description="every run log in the folder, newest first: id, account, "
                                 "status, utility, finish time and resource URI")
    def runs_resource() -> str:
        return json.dumps(_run_listing(runs_dir), indent=1)

    @server.resource(RUN_URI, name="run", mime_type="application/json",
                     description="one run log (JSON): metadata, config snapshot, data QC, "
                                 "constraints, settings, solver diagnostics, results, advice")
    def run_resource(run_id: str) -> str:
        try:
            log = load_run(runs_dir, _check_run_id(run_id))
        except (SpoInputError, ToolError) as exc:
            known = runs_dir.is_dir() and any(
                p.stem.startswith(run_id) for p in runs_dir.glob("*.json"))
            raise (ResourceError if known else ResourceNotFoundError)(str(exc)) from exc
        return log.model_dump_json(indent=1)

    @server.tool(name="list_runs")
    def list_runs_tool(
        limit: Annotated[int, Field(ge=1, le=1000, description="how many runs, newest "
                                                               "first")] = 20,
    ) -> list[dict[str, Any]]:
        """List the solver runs on record, newest first: run_id, account, status (optimal,
        infeasible, time_limit, ...), utility in bp of NAV, solve seconds, number of
        suggestions and the resource URI of the full log. A file that cannot be read is
        listed with `problem` saying why. Start here to find a run_id."""
        return _run_listing(runs_dir, limit)

    @server.tool()
    def get_run(
        run_id: RunId,
        sections: Annotated[list[str] | None, Field(
            description="top-level sections to return; all when omitted. One or more of: "
                        "meta, config, data_qc, constraints, settings, solver, results, "
                        "advice, advice_error, schema_version, constraints_total")] = None,
    ) -> dict[str, Any]:
        """Return one run log, or only the chosen sections. `meta` is who/when/which
        solver; `config` the full config snapshot; `data_qc` the data checks; `constraints`
        the constraint specs as written; `settings` the optimization settings; `solver` the
        status, per-constraint values, slacks, shadow prices (dual) and binding flags, the
        relaxation report and conflicts; `results` utility, risk, gross/net, turnover,
        costs and top trades; `advice` the rule-based suggestions."""
        doc = _load(runs_dir, run_id).model_dump(mode="json")
        if not sections:
            return doc
        unknown = [s for s in sections if s not in doc]
        if unknown:
            raise ToolError(f"unknown section(s) {', '.join(unknown)}; choose from: "
                            f"{', '.join(doc)}")
        return {"run_id": doc["meta"]["run_id"]} | {s: doc[s] for s in sections}

    @server.tool()
    def explain_infeasibility(run_id: RunId) -> dict[str, Any]:
        """Explain why a run found no portfolio: the constraints named by the solver's
        infeasibility certificate, the elastic relaxation report (for each hard limit that
        had to move: current bound, the bound that restores feasibility, by how much, in
        its unit) and a plain-words explanation. For a run that solved it says so and lists
        the binding limits with their shadow prices instead."""
        return explain(_load(runs_dir, run_id))

    @server.tool()
    def suggest_relaxations(run_id: RunId) -> dict[str, Any]:
        """The run's suggestions for loosening constraints: RELAX_INFEASIBLE (the joint
        change that makes an infeasible run solvable), RELAX_BOUND and TIGHT_EXPOSURE
        (binding limits, with the utility gain in bp of NAV estimated from the shadow
        price). Each carries `change`, the concrete config edit, which can be passed as-is
        to what_if as `changes`."""
        return relaxation_suggestions(_load(runs_dir, run_id))

    @server.tool()
    def what_if(
        run_id: RunId,
        changes: Annotated[ConfigChange, Field(description=(
            "the edit, in the shape of a suggestion's `change`: {\"ops\": [...]}, each op "
            "one of {\"op\": \"bound\", \"constraint\": NAME, \"field\": \"lower\"|\"upper\", "
            "\"value\": NUMBER or null to remove the bound}, {\"op\": \"disable\", "
            "\"constraint\": NAME}, {\"op\": \"set\", \"path\": DOTTED.SETTING, \"value\": "
            "V} (e.g. optimization.risk_aversion). Constraint names are those in the run's "
            "config (get_run sections=[\"constraints\"])"))],
    ) -> dict[str, Any]:
        """Re-solve a logged run with changed constraint bounds or settings and report
        what changes: status, utility, alpha, risk, gross and net exposure, turnover,
        number of trades, trading cost, the binding constraints added and removed, and the
        holdings that move most. The baseline is the run's own config re-solved on the same
        data load, so the difference is the changes' effect alone; `baseline_matches_log`
        says whether that re-solve reproduced the logged run. Loads data and solves (a few
        seconds on a small book, longer on a large one). Writes nothing: the logged run and
        the runs folder are left as they are."""
        return what_if_run(_load(runs_dir, run_id), changes)

    @server.tool()
    def data_quality(
        run_id: Annotated[str | None, Field(description=(
            "a run id from list_runs for the checks recorded with that run; omit to load "
            "and check the current data now"))] = None,
        limit: Annotated[int, Field(ge=0, le=1000, description="diagnostic rows to "
                                                               "return (counts cover all)")
                         ] = 50,
    ) -> dict[str, Any]:
        """Data quality: rows read and dropped per table, instruments and how many are
        untradable (by reason), the pre-trade book (NAV, gross, net), and the validation
        diagnostics (missing risk, stale prices, bad baskets, ...) with counts by severity
        and code. With a run_id it is what that run saw; without, a fresh `spo data
        validate` of the server's config. `ok` is true when there is no error."""
        if run_id is None:
            return fresh_data_quality(config_path, limit)
        log = _load(runs_dir, run_id)
        return {"run_id": log.meta.run_id, "source": "run log",
                "data_dir": log.meta.data_dir, "as_of": log.meta.as_of.isoformat(),
                **_qc_view(log.data_qc.model_dump(mode="json"), limit)}

    return server


def serve_stdio(runs_dir: Path, config_path: Path | None = None) -> None:
    """Serve over stdin/stdout until the client disconnects (what `spo mcp` runs)."""
    build_server(runs_dir, config_path).run("stdio")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m console.mcp_server",
                                     description="serve spo run logs over MCP (stdio)")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"),
                        help="folder of run logs (default ./runs)")
    parser.add_argument("--config", type=Path, default=None,
                        help="config that data_quality validates when no run is named")
    args = parser.parse_args(argv)
    serve_stdio(args.runs_dir.resolve(), args.config.resolve() if args.config else None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
