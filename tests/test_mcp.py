"""`spo mcp`: every tool and resource through the SDK's own client, against run logs made by
really solving the sample book; one session over stdio as an MCP client launches it."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import pytest
from mcp import Client, MCPError, StdioServerParameters

from books import INFEASIBLE_CONSTRAINTS, write_sample_config
from console.mcp_server import build_server, run_uri
from console.state import AppState
from core.context import new_run_context
from core.results import optimize
from core.runlog import list_runs, load_run, record_solve
from core.settings import RunConfig

REPO = Path(__file__).resolve().parents[1]

# A turnover limit that binds: the solved run carries a priced RELAX_BOUND suggestion.
TIGHT_TURNOVER = """
    [[constraints]]
    kind = "turnover"
    upper = 10.0
"""


def _record(folder: Path, runs_dir: Path, constraints: str, minute: int, token: str):
    folder.mkdir()
    config = RunConfig.load(write_sample_config(folder, constraints))
    state = AppState(config)
    state.load()
    result = optimize(state.universe, config.all_constraints(), config.optimization,
                      solver=config.solver)
    context = new_run_context(config, clock=lambda: dt.datetime(2026, 11, 20, 15, minute),
                              token=lambda: token)
    log, path = record_solve(result, state.universe, config, context, runs_dir=runs_dir,
                             dataset=state.dataset)
    return log, path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("mcp")
    runs_dir = root / "runs"
    feasible, feasible_path = _record(root / "tight", runs_dir, TIGHT_TURNOVER, 0, "aaaaaa")
    infeasible, infeasible_path = _record(root / "clash", runs_dir, INFEASIBLE_CONSTRAINTS, 5,
                                          "bbbbbb")
    assert feasible.results.status == "optimal"
    assert infeasible.results.status == "infeasible"
    return {"dir": runs_dir, "feasible": feasible, "feasible_path": feasible_path,
            "infeasible": infeasible, "infeasible_path": infeasible_path,
            "config": root / "tight" / "run.toml"}


def client(runs, with_config: bool = False) -> Client:
    return Client(build_server(runs["dir"], runs["config"] if with_config else None))


async def call(c: Client, tool: str, **arguments):
    result = await c.call_tool(tool, arguments)
    assert not result.is_error, result.content[0].text
    return result.structured_content


async def call_error(c: Client, tool: str, **arguments) -> str:
    result = await c.call_tool(tool, arguments)
    assert result.is_error
    return result.content[0].text


async def test_every_tool_is_listed_with_parameter_docs(runs):
    async with client(runs) as c:
        tools = {t.name: t for t in (await c.list_tools()).tools}
    assert set(tools) == {"list_runs", "get_run", "explain_infeasibility",
                          "suggest_relaxations", "what_if", "data_quality"}
    for tool in tools.values():
        assert len(tool.description) > 100, tool.name
        for name, schema in tool.input_schema["properties"].items():
            assert schema.get("description"), f"{tool.name}.{name}"
    assert tools["what_if"].input_schema["required"] == ["run_id", "changes"]


async def test_list_runs_newest_first_as_in_the_folder(runs):
    async with client(runs) as c:
        listed = (await call(c, "list_runs"))["result"]
        one = (await call(c, "list_runs", limit=1))["result"]
    ids = [r["run_id"] for r in listed]
    assert ids == [s.run_id for s in list_runs(runs["dir"])]
    assert ids == [runs["infeasible"].meta.run_id, runs["feasible"].meta.run_id]
    assert listed[0]["status"] == "infeasible" and listed[1]["status"] == "optimal"
    assert listed[1]["utility_bp"] == pytest.approx(runs["feasible"].results.utility_bp)
    assert listed[0]["uri"] == run_uri(ids[0])
    assert [r["run_id"] for r in one] == ids[:1]


async def test_each_run_is_a_resource_holding_its_log(runs):
    async with client(runs) as c:
        uris = {str(r.uri) for r in (await c.list_resources()).resources}
        log_text = (await c.read_resource(run_uri(runs["feasible"].meta.run_id))).contents[0]
        listing = (await c.read_resource("spo://runs")).contents[0]
    assert uris == {"spo://runs", *(run_uri(s.run_id) for s in list_runs(runs["dir"]))}
    assert log_text.mime_type == "application/json"
    assert json.loads(log_text.text) == json.loads(runs["feasible_path"].read_text())
    assert [r["run_id"] for r in json.loads(listing.text)] == [
        s.run_id for s in list_runs(runs["dir"])]


async def test_unknown_resource_is_a_protocol_error(runs):
    async with client(runs) as c:
        with pytest.raises(MCPError, match="no run log with id 'nope'"):
            await c.read_resource("spo://runs/nope")


async def test_get_run_whole_or_by_section(runs):
    log = runs["infeasible"]
    async with client(runs) as c:
        whole = await call(c, "get_run", run_id=log.meta.run_id)
        # A unique prefix of the id is enough, as in `spo runs`.
        part = await call(c, "get_run", run_id=log.meta.run_id[:-3],
                          sections=["results", "solver"])
        bad = await call_error(c, "get_run", run_id=log.meta.run_id, sections=["resluts"])
    assert whole == json.loads(runs["infeasible_path"].read_text())
    assert set(part) == {"run_id", "results", "solver"}
    assert part["solver"]["conflicts"] == log.solver.conflicts
    assert "resluts" in bad and "results" in bad


@pytest.mark.parametrize("tool", ["get_run", "explain_infeasibility", "suggest_relaxations",
                                  "data_quality"])
async def test_unknown_run_is_a_tool_error_not_a_crash(runs, tool):
    async with client(runs) as c:
        message = await call_error(c, tool, run_id="nope")
        escape = await call_error(c, tool, run_id="../runs/x")
        still_up = await call(c, "list_runs")
    assert "no run log with id 'nope'" in message
    assert runs["infeasible"].meta.run_id in message  # names runs that do exist
    assert "not a run id" in escape
    assert len(still_up["result"]) == 2


async def test_explain_infeasibility_names_the_relaxed_constraints(runs):
    log = runs["infeasible"]
    async with client(runs) as c:
        out = await call(c, "explain_infeasibility", run_id=log.meta.run_id)
    relaxed = {r.name for r in log.solver.relaxation}
    assert relaxed == {"turnover", "net_exposure"}
    assert out["feasible"] is False and out["status"] == "infeasible"
    assert {r["name"] for r in out["relaxation"]} == relaxed
    assert out["conflicting_constraints"] == log.solver.conflicts
    turnover = next(r for r in out["relaxation"] if r["name"] == "turnover")
    assert turnover["current"] == pytest.approx(5.0)
    assert turnover["relaxed_to"] > 5.0
    for name in relaxed:
        assert name in out["explanation"]
    assert "sum of |trades|" in out["explanation"]  # what the limit means, in words


async def test_explain_a_solved_run_says_it_solved(runs):
    async with client(runs) as c:
        out = await call(c, "explain_infeasibility", run_id=runs["feasible"].meta.run_id)
    assert out["feasible"] is True
    assert "solved" in out["explanation"] and "no conflict" in out["explanation"]
    assert "turnover" in [b["name"] for b in out["binding_constraints"]]


async def test_suggest_relaxations_for_an_infeasible_run(runs):
    log = runs["infeasible"]
    async with client(runs) as c:
        out = await call(c, "suggest_relaxations", run_id=log.meta.run_id)
    [s] = out["suggestions"]
    assert s["code"] == "RELAX_INFEASIBLE"
    logged = next(a for a in log.advice if a.code == "RELAX_INFEASIBLE")
    assert s["change"] == logged.change.model_dump(mode="json")
    ops = {op["constraint"]: op for op in s["change"]["ops"]}
    assert set(ops) == {"turnover", "net_exposure"}
    assert ops["turnover"]["field"] == "upper" and ops["turnover"]["value"] > 5.0
    assert "turnover" in s["change_in_words"]


async def test_suggest_relaxations_prices_a_binding_limit(runs):
    log = runs["feasible"]
    async with client(runs) as c:
        out = await call(c, "suggest_relaxations", run_id=log.meta.run_id)
    turnover = next(s for s in out["suggestions"] if s["evidence"].get("constraint")
                    == "turnover")
    assert turnover["code"] == "RELAX_BOUND"
    assert turnover["utility_gain_bp"] > 0
    assert turnover["change"]["ops"] == [{"op": "bound", "constraint": "turnover",
                                          "field": "upper", "value": 15.0}]
    assert {s["code"] for s in out["suggestions"]} <= {"RELAX_BOUND", "TIGHT_EXPOSURE"}


async def test_what_if_the_suggested_relaxation_solves_and_nothing_is_written(runs):
    log = runs["infeasible"]
    path = runs["infeasible_path"]
    before_bytes = path.read_bytes()
    before_files = sorted(p.name for p in runs["dir"].iterdir())
    async with client(runs) as c:
        change = (await call(c, "suggest_relaxations", run_id=log.meta.run_id)
                  )["suggestions"][0]["change"]
        out = await call(c, "what_if", run_id=log.meta.run_id, changes=change)
    assert out["status_change"] == "infeasible -> optimal"
    assert out["baseline"]["status"] == "infeasible" and out["baseline_matches_log"]
    new = out["what_if"]
    assert new["utility_bp"] is not None and new["trades"] > 0
    new_turnover = next(op["value"] for op in change["ops"] if op["constraint"] == "turnover")
    assert new["turnover_pct"] <= new_turnover + 0.5  # within the relaxed limit (lots)
    assert 19.0 - 0.5 <= new["net_pct"] <= 21.0 + 0.5
    assert out["difference"]["turnover_pct"] == pytest.approx(
        new["turnover_pct"] - out["baseline"]["turnover_pct"])
    # The relaxed turnover limit is what now shapes the book; the unsolved baseline had none.
    assert "turnover" in [r["constraint"] for r in out["binding_added"]]
    assert out["binding_removed"] == []
    assert out["top_holding_changes"] and out["written"] is False
    assert path.read_bytes() == before_bytes
    assert sorted(p.name for p in runs["dir"].iterdir()) == before_files
    assert load_run(runs["dir"], log.meta.run_id) == log


async def test_what_if_looser_turnover_on_a_solved_run(runs):
    log = runs["feasible"]
    async with client(runs) as c:
        out = await call(c, "what_if", run_id=log.meta.run_id, changes={"ops": [
            {"op": "bound", "constraint": "turnover", "field": "upper", "value": 20.0}]})
    assert out["baseline_matches_log"]
    assert out["baseline"]["utility_bp"] == pytest.approx(log.results.utility_bp, rel=1e-3)
    assert out["baseline"]["turnover_pct"] <= 10.0 + 0.5
    assert out["what_if"]["turnover_pct"] > out["baseline"]["turnover_pct"]
    assert out["difference"]["utility_bp"] > 0  # a looser limit cannot cost utility
    assert out["changes"] == "constraint 'turnover' upper = 20"
    moves = out["top_holding_changes"]
    assert moves and all(abs(m["change_pct"]) > 0 for m in moves)
    assert abs(moves[0]["change_pct"]) >= abs(moves[-1]["change_pct"])


async def test_what_if_setting_change_by_dotted_path(runs):
    log = runs["feasible"]
    async with client(runs) as c:
        out = await call(c, "what_if", run_id=log.meta.run_id, changes={"ops": [
            {"op": "set", "path": "optimization.risk_aversion", "value": 40.0},
            {"op": "disable", "constraint": "turnover"}]})
    assert out["what_if"]["status"] == "optimal"
    assert out["changes"] == ("optimization.risk_aversion = 40.0; "
                              "constraint 'turnover' enabled = false")
    assert out["what_if"]["turnover_pct"] > 10.0 + 0.5  # no longer held to 10%
    removed = {r["constraint"]: r for r in out["binding_removed"]}
    assert removed["turnover"] == {"constraint": "turnover", "whole_constraint": True,
                                   "rows": 1, "labels": []}


@pytest.mark.parametrize("changes, message", [
    ({"ops": [{"op": "bound", "constraint": "turnovr", "field": "upper", "value": 9.0}]},
     "no constraint named 'turnovr'"),
    ({"ops": [{"op": "set", "path": "optimization.risk_aversoin", "value": 3}]},
     "unknown setting 'optimization.risk_aversoin'"),
    ({"ops": [{"op": "set", "path": "optimization.risk_aversion", "value": "high"}]},
     "risk_aversion"),
    ({"ops": [{"op": "widen", "constraint": "turnover"}]}, "changes"),
    ({"ops": []}, "no changes given"),
])
async def test_a_bad_change_is_a_tool_error(runs, changes, message):
    async with client(runs) as c:
        text = await call_error(c, "what_if", run_id=runs["feasible"].meta.run_id,
                                changes=changes)
        still_up = await call(c, "list_runs")
    assert message in text
    assert len(still_up["result"]) == 2


async def test_data_quality_of_a_run_is_what_it_logged(runs):
    log = runs["feasible"]
    async with client(runs) as c:
        out = await call(c, "data_quality", run_id=log.meta.run_id, limit=3)
    qc = log.data_qc
    assert out["source"] == "run log" and out["run_id"] == log.meta.run_id
    assert out["instruments"] == qc.instruments and out["tradable"] == qc.tradable
    assert out["by_severity"] == qc.by_severity
    assert out["diagnostics_total"] == qc.diagnostics_total
    assert len(out["diagnostics"]) == min(3, len(qc.diagnostics))
    assert out["ok"] == (qc.by_severity.get("error", 0) == 0)
    assert set(out["tables"]) >= {"instruments", "positions", "risk_model"}


async def test_data_quality_fresh_load_of_the_server_config(runs):
    async with client(runs, with_config=True) as c:
        out = await call(c, "data_quality")
    qc = runs["feasible"].data_qc  # same data, so the same checks
    assert out["source"].startswith("fresh load of") and "run.toml" in out["source"]
    assert out["instruments"] == qc.instruments
    assert out["by_severity"] == qc.by_severity
    assert len(out["diagnostics"]) == min(50, qc.diagnostics_total)


async def test_over_stdio_as_a_client_launches_it(runs):
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "console.mcp_server", "--runs-dir",
                                      str(runs["dir"])], cwd=str(REPO))
    async with Client(params, read_timeout_seconds=60) as c:
        names = {t.name for t in (await c.list_tools()).tools}
        listed = await c.call_tool("list_runs", {"limit": 5})
    assert "what_if" in names and "list_runs" in names
    assert not listed.is_error
    assert [r["run_id"] for r in listed.structured_content["result"]] == [
        s.run_id for s in list_runs(runs["dir"])]
