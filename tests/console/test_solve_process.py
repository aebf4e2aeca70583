"""The solver's child process: same answer as solving in the thread, survives its death."""

from __future__ import annotations

import threading

import pytest

from console.solve_process import SolveJob, SolveProcess
from console.state import AppState
from core.results import optimize
from core.settings import RunConfig
from sample_data import SAMPLE_DIR


@pytest.fixture(scope="module")
def loaded():
    cfg = RunConfig.load(SAMPLE_DIR / "scenarios" / "default.toml")
    state = AppState(cfg)
    state.load()
    return state


@pytest.fixture(scope="module")
def child():
    proc = SolveProcess()
    yield proc
    proc.stop()


def job_for(state, runs_dir):
    cfg = state.config
    return SolveJob(state.universe, cfg.all_constraints(), cfg.optimization, cfg.solver,
                    cfg.optimization.time_limit_s, cfg, state.run_context, runs_dir,
                    state.dataset)


def test_same_answer_as_solving_in_the_thread(loaded, child, tmp_path):
    seen = []
    result, advice, path = child.solve(job_for(loaded, tmp_path), seen.append,
                                       threading.Event())
    cfg = loaded.config
    here = optimize(loaded.universe, cfg.all_constraints(), cfg.optimization,
                    solver=cfg.solver)
    assert result.status == here.status == "optimal"
    assert result.summary["utility_bp"] == pytest.approx(here.summary["utility_bp"], rel=1e-9)
    assert result.trades.get_column("shares").to_list() == \
        here.trades.get_column("shares").to_list()
    assert [p.iteration for p in seen if p is not None][:3] == [0, 1, 2]  # live progress
    assert path.parent == tmp_path and path.exists() and advice


def test_cancel_reaches_the_child(loaded, child, tmp_path):
    cancel = threading.Event()

    def progress(p) -> None:
        if p is not None and p.iteration == 2:
            cancel.set()

    result, advice, path = child.solve(job_for(loaded, tmp_path), progress, cancel)
    assert result.status == "cancelled" and path is None and advice == []


def test_a_child_dying_mid_solve_is_an_error_then_a_new_child(loaded, tmp_path):
    proc = SolveProcess()

    def kill_at_first_iteration(p) -> None:
        if p is not None and p.iteration == 1:
            proc._proc.kill()

    with pytest.raises(RuntimeError, match="solver process stopped"):
        proc.solve(job_for(loaded, tmp_path), kill_at_first_iteration, threading.Event())
    result, _, _ = proc.solve(job_for(loaded, tmp_path), lambda p: None, threading.Event())
    assert result.status == "optimal"
    proc.stop()


def test_a_run_log_that_cannot_be_written_does_not_cost_the_solve(loaded, child, tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    result, advice, path = child.solve(job_for(loaded, blocked / "runs"), lambda p: None,
                                       threading.Event())
    assert result.status == "optimal"
    assert isinstance(path, str) and path.startswith("run log not written")


def test_a_caller_that_stops_early_leaves_a_usable_child(loaded, tmp_path):
    """A progress handler that raises ends the call; the next job must not meet a child
    still sending the last one's progress (that used to block the parent for ever)."""
    proc = SolveProcess()

    def boom(p) -> None:
        raise KeyError("the screen went away")

    with pytest.raises(KeyError):
        proc.solve(job_for(loaded, tmp_path), boom, threading.Event())
    result, _, _ = proc.solve(job_for(loaded, tmp_path), lambda p: None, threading.Event())
    assert result.status == "optimal"
    proc.stop()
