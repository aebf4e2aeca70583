"""`spo solve` writes a run log; `spo runs list` and `spo runs show` read them back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from books import book_config, write_book
from console.cli import main
from core.runlog import RunLog, load_run


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def book_toml(tmp_path: Path, constraints: list[dict]) -> Path:
    cfg = book_config(write_book(tmp_path / "book"), optimization={"risk_aversion": 20.0},
                      constraints=constraints)
    return cfg.save(tmp_path / "desk" / "run.toml")


TIGHT = [{"kind": "gross_exposure", "upper": 300.0},
         {"kind": "group_net", "group_by": "sector", "group": "Tech", "upper": 5.0}]
INFEASIBLE = [{"kind": "net_exposure", "target": 20.0, "band": 1.0},
              {"kind": "turnover", "upper": 5.0}]


@pytest.fixture
def two_solves(tmp_path, capsys):
    cfg = book_toml(tmp_path, TIGHT)
    runs = tmp_path / "runs"
    outputs = []
    for _ in range(2):
        outputs.append(run(capsys, "solve", "--config", cfg, "--out", tmp_path / "out",
                           "--runs-dir", runs, "--solver", "clarabel"))
    return runs, outputs


def test_solve_writes_the_run_log_and_prints_the_advice(two_solves):
    runs, outputs = two_solves
    code, out, err = outputs[0]
    assert code == 0, err
    logs = sorted(runs.glob("*.json"))
    assert len(logs) == 2  # one per solve, never overwritten
    line = next(l for l in out.splitlines() if l.startswith("run log: "))
    path = Path(line.removeprefix("run log: "))
    assert path in logs
    log = RunLog.model_validate_json(path.read_text())
    assert log.meta.account == "TEST" and log.results.status == "optimal"
    assert "TIGHT_EXPOSURE" in out and "group_net[sector=Tech]" in out
    assert "change: constraint 'group_net[sector=Tech]' upper = 10" in out


def test_solve_json_names_the_log_and_carries_the_advice(tmp_path, capsys):
    cfg = book_toml(tmp_path, TIGHT)
    code, out, _ = run(capsys, "solve", "--config", cfg, "--out", tmp_path / "out", "--json")
    assert code == 0
    doc = json.loads(out)
    path = Path(doc["run_log"])
    # Without --runs-dir: the config's runs_dir, relative to the config file.
    assert path.parent == tmp_path / "desk" / "runs" and path.exists()
    log = RunLog.model_validate_json(path.read_text())
    assert doc["advice"] == [s.model_dump(mode="json") for s in log.advice]
    assert {s["code"] for s in doc["advice"]} >= {"TIGHT_EXPOSURE", "RELAX_BOUND"}


def test_runs_list_newest_first(two_solves, capsys):
    runs, _ = two_solves
    ids = [load_run(runs, p.stem) for p in runs.glob("*.json")]
    newest = max(ids, key=lambda log: log.meta.finished_at)
    code, out, _ = run(capsys, "runs", "list", "--runs-dir", runs)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["run", "finished", "account", "status", "utility", "bp",
                                "solve", "s", "advice"]
    rows = [l.split() for l in lines[1:]]
    assert len(rows) == 2 and rows[0][0] == newest.meta.run_id
    assert rows[0][3] == "TEST" and rows[0][4] == "optimal"
    assert float(rows[0][5].replace(",", "")) == pytest.approx(newest.results.utility_bp,
                                                               abs=0.005)
    assert int(rows[0][7]) == len(newest.advice)

    code, out, _ = run(capsys, "runs", "list", "--runs-dir", runs, "--json", "--limit", "1")
    listed = json.loads(out)
    assert code == 0 and [r["run_id"] for r in listed] == [newest.meta.run_id]


def test_runs_show_text_and_json(two_solves, capsys):
    runs, _ = two_solves
    run_id = sorted(p.stem for p in runs.glob("*.json"))[0]
    log = load_run(runs, run_id)
    # Each `spo solve` is its own load: the load id is a unique prefix of its solve's id.
    code, out, _ = run(capsys, "runs", "show", log.meta.load_id, "--runs-dir", runs)
    assert code == 0
    assert f"run {run_id}" in out and "status optimal" in out
    assert "Binding constraints" in out and "group_net[sector=Tech]" in out
    assert f"utility {log.results.utility_bp:,.2f} bp" in out
    assert f"Advice ({len(log.advice)})" in out and "TIGHT_EXPOSURE" in out
    code, out, _ = run(capsys, "runs", "show", run_id, "--runs-dir", runs, "--json")
    assert code == 0 and RunLog.model_validate_json(out) == log


def test_runs_show_unknown_and_corrupt_exit_1_in_one_line(two_solves, capsys):
    runs, _ = two_solves
    code, out, err = run(capsys, "runs", "show", "nope", "--runs-dir", runs)
    assert code == 1 and out == "" and err.count("\n") == 1
    assert "no run log with id 'nope'" in err and "Fix:" in err
    (runs / "broken.json").write_text("{")
    code, _, err = run(capsys, "runs", "show", "broken", "--runs-dir", runs)
    assert code == 1 and err.count("\n") == 1 and "broken.json" in err
    assert "not valid JSON" in err
    code, out, _ = run(capsys, "runs", "list", "--runs-dir", runs)
    last = out.splitlines()[-1]  # unreadable files come last, each with the reason
    assert code == 0 and len(out.splitlines()) == 4
    assert last.split()[:2] == ["broken", "unreadable:"] and "not valid JSON" in last


def test_runs_list_empty_folder(tmp_path, capsys):
    code, out, _ = run(capsys, "runs", "list", "--runs-dir", tmp_path / "none")
    assert code == 0 and "no run logs in" in out


def test_infeasible_solve_logs_the_relaxations(tmp_path, capsys):
    cfg = book_toml(tmp_path, INFEASIBLE)
    runs = tmp_path / "runs"
    code, out, _ = run(capsys, "solve", "--config", cfg, "--out", tmp_path / "out",
                       "--runs-dir", runs)
    assert code == 2 and "RELAX_INFEASIBLE" in out
    (path,) = runs.glob("*.json")
    code, out, _ = run(capsys, "runs", "show", path.stem, "--runs-dir", runs)
    assert code == 0 and "Infeasible." in out and "relax turnover upper bound" in out
    assert "RELAX_INFEASIBLE" in out and "change: constraint" in out


def test_bad_input_writes_no_log(tmp_path, capsys):
    cfg = book_toml(tmp_path, [{"kind": "group_net", "group_by": "sector", "group": "Crypto",
                                "upper": 5.0}])
    runs = tmp_path / "runs"
    code, out, err = run(capsys, "solve", "--config", cfg, "--out", tmp_path / "out",
                         "--runs-dir", runs)
    assert code == 1 and err.count("\n") == 1 and "Crypto" in err
    assert not runs.exists()


def test_unwritable_runs_dir_warns_and_keeps_the_orders(tmp_path, capsys):
    cfg = book_toml(tmp_path, TIGHT)
    blocker = tmp_path / "runs"
    blocker.write_text("a file where the folder should be")
    code, out, err = run(capsys, "solve", "--config", cfg, "--out", tmp_path / "out",
                         "--runs-dir", blocker)
    assert code == 0 and (tmp_path / "out" / "orders.csv").exists()
    assert "warning: run log not written" in err and "--runs-dir" in err
    assert "run log:" not in out


def test_sample_run_logs_beside_the_output_not_in_the_package(tmp_path, capsys):
    from sample_data import SAMPLE_DIR

    before = set((SAMPLE_DIR / "scenarios").iterdir())
    code, out, _ = run(capsys, "solve", "--out", tmp_path / "out")
    assert code == 0
    (path,) = (tmp_path / "runs").glob("*.json")
    assert f"run log: {path}" in out
    assert set((SAMPLE_DIR / "scenarios").iterdir()) == before
    log = load_run(tmp_path / "runs", path.stem)
    assert log.meta.account == "DEMO" and len(log.data_qc.tables) >= 7
    assert "ETF_ARB_UNUSED" in [s.code for s in log.advice]


def test_spo_mcp_serves_the_runs_over_stdio(tmp_path):
    """`spo mcp` as a client would start it: list its tools and the (empty) runs."""
    import asyncio
    import shutil
    import sys
    from pathlib import Path

    from mcp import Client, StdioServerParameters

    spo = shutil.which("spo") or str(Path(sys.executable).parent / "spo")

    async def talk():
        params = StdioServerParameters(command=spo, args=["mcp", "--runs-dir", str(tmp_path)])
        async with Client(params, read_timeout_seconds=60) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            listed = await client.call_tool("list_runs", {})
            return tools, listed

    tools, listed = asyncio.run(talk())
    assert {"list_runs", "get_run", "explain_infeasibility", "suggest_relaxations",
            "what_if", "data_quality"} <= tools
    assert not listed.is_error
    runs = listed.structured_content
    assert runs == {"result": []}  # an empty runs folder


def test_spo_mcp_with_a_bad_config_fails_in_one_line(tmp_path, capsys):
    from console.cli import main

    bad = tmp_path / "bad.toml"
    bad.write_text("numeraire = [\n")
    assert main(["mcp", "--config", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("spo: ") and "bad.toml" in err and len(err.splitlines()) == 1
