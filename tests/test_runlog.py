"""The run log: what it holds, that it reads back equal, that it is written atomically and
never overwritten, and that a bad file is one clear message."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import core.runlog as runlog
from books import AS_OF, book_config, book_tables, write_book
from console.state import AppState
from core.advice import advise
from core.errors import SpoInputError
from core.results import optimize
from core.runlog import (
    SCHEMA_VERSION, RunLog, RunLogError, RunLogExists, build_run_log, list_runs, load_run,
    record_solve, write_run_log,
)

T0 = dt.datetime(2026, 11, 20, 15, 31, 0)
CONSTRAINTS = [
    {"kind": "gross_exposure", "upper": 300.0},
    {"kind": "group_net", "group_by": "sector", "group": "Tech", "upper": 5.0},
    {"kind": "max_trade", "unit": "%ADV", "upper": 50.0},
]


def loaded(config):
    state = AppState(config, clock=lambda: T0, token=lambda: "abc123")
    state.load()
    return state


def solved(config):
    state = loaded(config)
    result = optimize(state.universe, config.all_constraints(), config.optimization,
                      solver="clarabel")
    return state, result


@pytest.fixture
def book(tmp_path):
    cfg = book_config(write_book(tmp_path / "book"), optimization={"risk_aversion": 20.0},
                      constraints=CONSTRAINTS)
    cfg._base_dir = tmp_path
    state, result = solved(cfg)
    return cfg, state, result


def make_log(book, **kw) -> RunLog:
    cfg, state, result = book
    return build_run_log(result, state.universe, cfg, state.run_context,
                         dataset=state.dataset, **kw)


# --- contents ---------------------------------------------------------------------------------

def test_log_holds_what_the_run_was(book):
    cfg, state, result = book
    log = make_log(book, finished_at=T0 + dt.timedelta(seconds=5))
    m = log.meta
    assert log.schema_version == SCHEMA_VERSION == 1
    assert (m.run_id, m.load_id) == ("TEST-20261120-153100-abc123",) * 2
    assert (m.account, m.as_of, m.loaded_at) == ("TEST", AS_OF, T0)
    assert m.finished_at == T0 + dt.timedelta(seconds=5)
    assert m.started_at == m.finished_at - dt.timedelta(seconds=sum(result.timings.values()))
    assert m.versions.polars == pl.__version__ and m.versions.numpy == np.__version__
    assert m.solver == "clarabel" and m.solver_reason == result.solver_reason
    assert m.config_base_dir == str(cfg.base_dir)
    assert log.config == cfg.model_dump(mode="json")
    assert log.settings["risk_aversion"] == 20.0
    assert [c["name"] for c in log.constraints] == ["gross_exposure", "group_net[sector=Tech]",
                                                   "max_trade[*]"]
    assert log.constraints_total == 3 and log.constraints[0]["source"] == "config"

    qc = log.data_qc
    assert qc.tables["instruments"].rows == 5 and qc.tables["positions"].rows_dropped == 0
    assert (qc.universe_rows, qc.instruments, qc.tradable) == (7, 5, 5)
    assert qc.book["nav"] == pytest.approx(225_006.0)

    s = log.solver
    assert s.status == "optimal" and s.iterations == result.summary["iterations"]
    assert s.objective_bp == pytest.approx(result.summary["utility_bp"])
    tech = next(c for c in s.constraints if c.name == "group_net[sector=Tech]")
    want = result.diagnostics.filter(pl.col("name") == "group_net[sector=Tech]").row(
        0, named=True)
    assert tech.binding and tech.dual == want["dual"] and tech.dual_unit == "bp/%NAV"
    assert (tech.value, tech.upper, tech.slack) == (want["value"], 5.0, want["slack"])

    r = log.results
    assert r.utility_bp == result.summary["utility_bp"]
    assert r.turnover_pct == result.summary["turnover_pct"]
    assert r.trades == result.trades.height == len(r.top_trades)
    assert r.top_trades[0].notional == result.trades.get_column("notional").max()
    assert [a.code for a in log.advice] == [a.code for a in advise(result, state.universe,
                                                                   cfg)]
    assert "TIGHT_EXPOSURE" in [a.code for a in log.advice]


def test_per_name_rows_are_kept_only_when_they_bind(book):
    _, _, result = book
    log = make_log(book)
    diag = result.diagnostics
    trade_rows = diag.filter(pl.col("name") == "max_trade[*]")
    kept = [c for c in log.solver.constraints if c.name == "max_trade[*]"]
    assert len(kept) == trade_rows.filter(pl.col("binding")).height < trade_rows.height
    totals = {t.name: t for t in log.solver.constraint_totals}
    assert totals["max_trade[*]"].rows == trade_rows.height
    assert log.solver.constraint_rows_total == diag.height


def test_data_qc_counts_and_caps_the_diagnostics(tmp_path, monkeypatch):
    t = book_tables()
    t["risk_model"] = t["risk_model"].filter(pl.col("instrument_id") != "CCC")
    t["liquidity"] = pl.concat([t["liquidity"], t["liquidity"].head(1)])  # AAA twice
    cfg = book_config(write_book(tmp_path / "book", t), optimization={"risk_aversion": 20.0},
                      constraints=CONSTRAINTS)
    state, result = solved(cfg)
    log = build_run_log(result, state.universe, cfg, state.run_context, dataset=state.dataset)
    qc = log.data_qc
    counts = {(c.severity, c.code): c.count for c in qc.by_code}
    assert counts[("error", "missing_risk")] == 1
    # A duplicated id is ambiguous: both rows go, and AAA cannot be traded without one.
    assert qc.tables["liquidity"].rows_read == 6 and qc.tables["liquidity"].rows_dropped == 2
    assert qc.untradable == {"no risk": 1, "no liquidity": 1}
    assert any(d.code == "missing_risk" and d.instrument_id == "CCC" for d in qc.diagnostics)
    assert qc.diagnostics_total == len(qc.diagnostics) == sum(
        n for (sev, _), n in counts.items() if sev in ("error", "warning"))

    monkeypatch.setattr(runlog, "MAX_DIAGNOSTICS", 1)
    capped = build_run_log(result, state.universe, cfg, state.run_context).data_qc
    assert len(capped.diagnostics) == 1 and capped.diagnostics_total == qc.diagnostics_total
    assert capped.tables == {}  # no dataset given: no per-table counts, nothing invented


def test_infeasible_run_logs_its_relaxations(tmp_path):
    cfg = book_config(write_book(tmp_path / "book"), optimization={"risk_aversion": 20.0},
                      constraints=[{"kind": "net_exposure", "target": 20.0, "band": 1.0},
                                   {"kind": "turnover", "upper": 5.0}])
    state, result = solved(cfg)
    log = build_run_log(result, state.universe, cfg, state.run_context)
    assert log.results.status == "infeasible" and log.results.utility_bp is None
    names = {r.name for r in log.solver.relaxation}
    assert names and names <= {"net_exposure", "turnover"}
    assert log.solver.conflicts == result.solved.conflicts
    assert log.advice[0].code == "RELAX_INFEASIBLE"
    write_run_log(log, tmp_path / "runs")
    assert load_run(tmp_path / "runs", log.meta.run_id) == log


# --- round trip and re-solve ----------------------------------------------------------------

def test_write_then_load_gives_the_same_document(book, tmp_path):
    log = make_log(book)
    path = write_run_log(log, tmp_path / "runs")
    assert path == tmp_path / "runs" / f"{log.meta.run_id}.json"
    assert load_run(tmp_path / "runs", log.meta.run_id) == log
    assert RunLog.model_validate_json(path.read_text()) == log
    doc = json.loads(path.read_text())
    assert doc["schema_version"] == 1 and doc["meta"]["account"] == "TEST"
    assert oct(path.stat().st_mode & 0o777) == "0o644"


def test_logged_config_rebuilds_and_re_solves_to_the_same_answer(book, tmp_path):
    cfg, state, result = book
    log = load_run(tmp_path / "runs", write_run_log(make_log(book), tmp_path / "runs").stem)
    again = log.config_model()
    assert again.model_dump() == cfg.model_dump() and again.base_dir == cfg.base_dir
    assert again.data_dir() == cfg.data_dir() and again.runs_path() == tmp_path / "runs"
    _, redo = solved(again)
    assert redo.summary["utility_bp"] == pytest.approx(log.results.utility_bp, rel=1e-9)


# --- writing: atomic, never overwriting --------------------------------------------------------

def test_record_solve_numbers_each_solve_and_never_overwrites(book, tmp_path):
    cfg, state, result = book
    runs = cfg.runs_path()
    assert runs == tmp_path / "runs"
    first, p1 = record_solve(result, state.universe, cfg, state.run_context)
    second, p2 = record_solve(result, state.universe, cfg, state.run_context)
    load_id = state.run_context.run_id
    assert (p1.name, p2.name) == (f"{load_id}-s1.json", f"{load_id}-s2.json")
    assert first.meta.run_id == f"{load_id}-s1" and first.meta.load_id == load_id
    # A foreign file where the next number would go is skipped, not replaced.
    taken = runs / f"{load_id}-s4.json"
    taken.write_text("someone else's")
    (runs / f"{load_id}-s2.json").rename(runs / f"{load_id}-s3.json")
    _, p = record_solve(result, state.universe, cfg, state.run_context)
    assert p.name == f"{load_id}-s5.json" and taken.read_text() == "someone else's"


def test_write_refuses_to_replace_a_log(book, tmp_path):
    log = make_log(book)
    runs = tmp_path / "runs"
    path = write_run_log(log, runs)
    before = path.read_text()
    with pytest.raises(RunLogExists):
        write_run_log(log.model_copy(deep=True), runs)
    assert path.read_text() == before
    assert sorted(p.name for p in runs.iterdir()) == [path.name]  # no temporary left


@pytest.mark.parametrize("fail", ["link", "serialize"])
def test_failed_write_leaves_no_file(book, tmp_path, monkeypatch, fail):
    log = make_log(book)

    def boom(*a, **k):
        raise OSError("disk full")

    if fail == "link":
        monkeypatch.setattr(runlog.os, "link", boom)
    else:
        monkeypatch.setattr(RunLog, "model_dump_json", boom)
    with pytest.raises(OSError, match="disk full"):
        write_run_log(log, tmp_path / "runs")
    assert list((tmp_path / "runs").iterdir()) == []


# --- reading: listing and the messages for bad files ------------------------------------------

def three_logs(book, runs: Path) -> list[RunLog]:
    logs = []
    for i, minutes in enumerate((5, 1, 9)):
        log = make_log(book, run_id=f"TEST-run-{i}",
                       finished_at=T0 + dt.timedelta(minutes=minutes))
        write_run_log(log, runs)
        logs.append(log)
    return logs


def test_list_runs_newest_first_and_reports_unreadable_files(book, tmp_path):
    runs = tmp_path / "runs"
    logs = three_logs(book, runs)
    (runs / "broken.json").write_text("{\"schema_version\": 1, \"meta\": ")
    (runs / ".TEST-run-9.json.x.tmp").write_text("half")  # a writer's temporary: ignored
    (runs / "notes.txt").write_text("not a log")
    found = list_runs(runs)
    assert [r.run_id for r in found] == ["TEST-run-2", "TEST-run-0", "TEST-run-1", "broken"]
    top = found[0]
    assert top.finished_at == T0 + dt.timedelta(minutes=9) and top.problem is None
    assert (top.account, top.status) == ("TEST", "optimal")
    assert top.utility_bp == logs[2].results.utility_bp
    assert top.suggestions == len(logs[2].advice) > 0
    assert top.solve_seconds == pytest.approx(sum(logs[2].solver.timings.values()))
    assert "not valid JSON" in found[-1].problem and found[-1].utility_bp is None
    assert list_runs(tmp_path / "absent") == []


def test_load_by_unique_prefix_and_ambiguous_prefix(book, tmp_path):
    runs = tmp_path / "runs"
    three_logs(book, runs)
    assert load_run(runs, "TEST-run-1").meta.run_id == "TEST-run-1"
    (runs / "TEST-run-1.json").rename(runs / "TEST-run-1x.json")
    assert load_run(runs, "TEST-run-1").meta.run_id == "TEST-run-1"  # content, not file name
    with pytest.raises(RunLogError, match="matches 3 run logs") as err:
        load_run(runs, "TEST-run")
    assert "give more of the id" in str(err.value)


def test_unknown_id_says_which_ids_exist(book, tmp_path):
    runs = tmp_path / "runs"
    three_logs(book, runs)
    with pytest.raises(SpoInputError) as err:
        load_run(runs, "nope")
    msg = str(err.value)
    assert "no run log with id 'nope'" in msg and "field 'run id'" in msg
    assert "Fix:" in msg and "TEST-run-2" in msg
    with pytest.raises(RunLogError, match="no run logs folder"):
        load_run(tmp_path / "absent", "x")


def test_corrupt_file_is_one_message_with_the_file(tmp_path):
    (tmp_path / "bad.json").write_text("{\"schema_version\": 1,,}")
    with pytest.raises(RunLogError) as err:
        load_run(tmp_path, "bad")
    msg = str(err.value)
    assert "bad.json" in msg and "not valid JSON" in msg and "line 1" in msg and "Fix:" in msg


def test_newer_schema_is_refused_not_misread(book, tmp_path):
    log = make_log(book)
    doc = json.loads(log.model_dump_json())
    doc["schema_version"] = SCHEMA_VERSION + 1
    doc["meta"]["a_field_from_the_future"] = 1
    (tmp_path / "new.json").write_text(json.dumps(doc))
    with pytest.raises(RunLogError) as err:
        load_run(tmp_path, "new")
    msg = str(err.value)
    assert "field 'schema_version'" in msg and "schema 2" in msg and "upgrade spo" in msg


def test_invalid_field_names_its_path(book, tmp_path):
    doc = json.loads(make_log(book).model_dump_json())
    del doc["meta"]["account"]
    (tmp_path / "edited.json").write_text(json.dumps(doc))
    with pytest.raises(RunLogError, match="field 'meta.account'"):
        load_run(tmp_path, "edited")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(RunLogError, match="not a spo run log"):
        load_run(tmp_path, "list")


def test_runs_dir_for_sample_scenarios_is_not_the_package(tmp_path, monkeypatch):
    from core.runlog import runs_dir_for
    from core.settings import RunConfig
    from sample_data import SAMPLE_DIR

    monkeypatch.chdir(tmp_path)
    sample = RunConfig.load(SAMPLE_DIR / "scenarios" / "default.toml")
    assert runs_dir_for(sample) == tmp_path / "runs"
    own = book_config(tmp_path)
    own._base_dir = tmp_path / "desk"
    assert runs_dir_for(own) == tmp_path / "desk" / "runs"


def test_a_log_with_a_utc_offset_sorts_among_the_others(book, tmp_path):
    """A log whose time carries a UTC offset (written elsewhere, or by hand) must not make
    the listing compare naive and aware times and fail."""
    import json

    runs = tmp_path / "runs"
    logs = three_logs(book, runs)
    data = json.loads((runs / f"{logs[0].meta.run_id}.json").read_text())
    data["meta"]["run_id"] += "-utc"
    data["meta"]["finished_at"] = "2099-01-01T00:00:00+00:00"
    (runs / f"{data['meta']['run_id']}.json").write_text(json.dumps(data))
    listed = list_runs(runs)
    assert listed[0].run_id.endswith("-utc")
    assert len(listed) == 4 and not any(r.problem for r in listed)
