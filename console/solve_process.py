"""Solves run in a warm child process, so the screen never stalls while one runs.

A thread is not enough: Clarabel's Python binding holds the GIL while it sets a problem up
(0.7 s at 15,000 instruments), and the Python parts of building the model compete with the
UI for it. A child process holds its own GIL. It is started once, in the background when the
console opens, and reused; its imports (numpy, polars, the solvers) are paid once.

The universe goes over a pipe (a few MB pickled, milliseconds), progress comes back per
iteration, Esc sets a shared event the solver checks every iteration, and the result and
its advice come back whole. If the child dies, the solve fails with a message through the
app's one error path and the next solve starts a new child.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import threading
from dataclasses import dataclass
from typing import Any, Callable

_CTX = mp.get_context("spawn")  # fork would copy the UI's threads and polars' pool


class SolveFailed(Exception):
    """The solve raised in the child; the message is the child's."""


@dataclass
class SolveJob:
    universe: Any
    constraints: list
    settings: Any
    solver: str
    time_limit_s: float
    config: Any  # the RunConfig, for the advice and the run log
    context: Any  # core.context.RunContext of the load
    runs_dir: Any  # None: the config's
    dataset: Any  # the load's tables, for the run log's row counts


def run_job(job: SolveJob, progress: Callable[[Any], None], cancel) -> tuple:
    """Solve, then write the run log with its advice: (result, advice, log path, or a str
    saying why the log was not written). `progress(None)` marks the switch to the log.
    The child runs this; so does the console when it solves in its own thread."""
    from core.results import optimize
    from core.runlog import record_solve
    from core.solvers.base import SolverOptions

    options = SolverOptions(time_limit_s=job.time_limit_s, cancel=cancel, progress=progress)
    result = optimize(job.universe, job.constraints, job.settings, solver=job.solver,
                      options=options)
    if result.status == "cancelled":
        return result, [], None
    progress(None)
    try:
        log, path = record_solve(result, job.universe, job.config, job.context,
                                 runs_dir=job.runs_dir, dataset=job.dataset)
    except OSError as exc:
        # A log that cannot be written must not cost the trader the solve.
        return result, [], f"run log not written: {exc}"
    return result, log.advice, path


def _child(conn, cancel) -> None:
    """The child's loop: one job in, progress out, then what run_job returns."""
    # The screen comes first: on a busy solve server the UI process must win the CPU.
    try:
        os.nice(10)
    except OSError:
        pass
    # Nothing the child prints may reach the terminal the console draws on.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)

    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        try:
            conn.send(("result", run_job(job, lambda p: conn.send(("progress", p)), cancel)))
        except Exception as exc:  # noqa: BLE001 - shown by the app's one error path
            # The message, not the object: our errors take keyword fields that pickling
            # would drop, and the message already names the file, field and fix.
            conn.send(("error", str(exc)))


class SolveProcess:
    """One child process that solves; `solve` blocks its (worker) thread until done."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy = threading.Lock()  # one job at a time on the one pipe
        self._proc = None
        self._conn = None
        self._cancel = None

    def start(self) -> None:
        """Start the child if it is not running (cheap when it is)."""
        with self._lock:
            if self._proc is not None and self._proc.is_alive():
                return
            # Textual swaps sys.stderr for a capture object without a file descriptor, and
            # multiprocessing's resource tracker hands stderr's descriptor to its process.
            saved = sys.stdout, sys.stderr
            if sys.__stderr__ is not None:
                sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
            try:
                parent, child = _CTX.Pipe()
                self._cancel = _CTX.Event()
                self._proc = _CTX.Process(target=_child, args=(child, self._cancel),
                                          name="spo-solver", daemon=True)
                self._proc.start()
            finally:
                sys.stdout, sys.stderr = saved
            child.close()
            self._conn = parent

    def solve(self, job: SolveJob, progress: Callable[[Any], None],
              cancel: threading.Event, poll_s: float = 0.05):
        """(result, advice, run log path, or a str saying why the log was not written).

        RuntimeError when the child dies. One job at a time: a second caller waits. If this
        call ends early for any reason, the child is stopped, so the next call never meets a
        child still talking about the last job."""
        with self._busy:
            self.start()
            self._cancel.clear()
            try:
                return self._run(job, progress, cancel, poll_s)
            except BaseException:
                self._kill()
                raise

    def _run(self, job, progress, cancel, poll_s):
        try:
            self._conn.send(job)
        except (BrokenPipeError, EOFError, OSError):
            return self._died()
        while True:
            if cancel.is_set():
                self._cancel.set()
            try:
                ready = self._conn.poll(poll_s)
            except (EOFError, OSError):
                ready = True
            if not ready:
                if not self._proc.is_alive():
                    return self._died()
                continue
            try:
                kind, payload = self._conn.recv()
            except (EOFError, OSError):
                return self._died()
            if kind == "progress":
                progress(payload)
            elif kind == "result":
                return payload
            else:
                raise SolveFailed(payload)

    def _kill(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            self._proc.kill()
            self._proc.join(timeout=2)
        self._proc = None

    def _died(self):
        code = self._proc.exitcode if self._proc is not None else None
        self._proc = None
        raise RuntimeError(f"the solver process stopped (exit code {code}); the next solve "
                           "starts a new one. If it repeats, run `spo solve` on the same "
                           "config to see the error")

    def stop(self) -> None:
        with self._lock:
            if self._proc is not None and self._proc.is_alive():
                try:
                    self._conn.send(None)
                except OSError:
                    pass
                self._proc.join(timeout=2)
                if self._proc.is_alive():
                    self._proc.kill()
            self._proc = None


_shared: SolveProcess | None = None


def shared() -> SolveProcess:
    """The process-wide solver child (one per console, or per test session)."""
    global _shared
    if _shared is None:
        _shared = SolveProcess()
    return _shared
