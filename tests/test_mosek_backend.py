"""MOSEK backend: the task equals the neutral program; solves agree with Clarabel.

Building and reading a task needs no license, so the round trips always run. Solves need
one and are skipped (with the reason) otherwise; the status mapping, callback and license
error are checked without one.
"""

from __future__ import annotations

import threading
from pathlib import Path

import mosek
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import ConfigError
from core.model.program import Cone, ConicProgram
from core.solvers import clarabel_backend
from core.solvers import mosek_backend as mb
from core.solvers.base import (Progress, SolverChoice, SolverOptions, Status, choose_solver,
                               mosek_license)

LICENSE, LICENSE_WHY = mosek_license()
needs_license = pytest.mark.skipif(LICENSE is None, reason=f"no MOSEK license: {LICENSE_WHY}")


def program(A, b, c, cones, c0=0.0, integer=()) -> ConicProgram:
    A = sp.csc_matrix(np.asarray(A, dtype=float) if not sp.issparse(A) else A)
    return ConicProgram(c=np.asarray(c, dtype=float), A=A, b=np.asarray(b, dtype=float),
                        cones=list(cones), var_blocks={}, row_blocks=[], c0=c0,
                        integer_vars=np.asarray(integer, dtype=np.int64))


def assert_round_trip(p: ConicProgram) -> None:
    with mb.build_task(p) as task:
        back = mb.read_back(task)
    expected = sp.csc_matrix(p.A, copy=True)
    expected.sum_duplicates()
    assert back["A"].shape == expected.shape
    assert (back["A"] != expected).nnz == 0  # exact, entry by entry
    assert np.array_equal(back["b"], p.b)
    assert np.array_equal(back["c"], p.c)
    assert back["c0"] == p.c0
    assert back["cones"] == list(p.cones)  # kind, dim and alpha exactly
    assert np.array_equal(back["integer"], np.unique(p.integer_vars))
    assert back["all_free"] and back["minimize"]


# ----------------------------------------------------------------------------- fixtures

def lp() -> ConicProgram:
    """min x0 + 2 x1 + 3 x2 + 0.5, sum x = 1, x >= 0: x = e0, z = (-1, 0, 1, 2)."""
    A = np.vstack([np.ones((1, 3)), -np.eye(3)])
    return program(A, [1, 0, 0, 0], [1, 2, 3], [Cone("zero", 1), Cone("nonneg", 3)], c0=0.5)


def socp() -> ConicProgram:
    """min 3 x0 + 4 x1, ||x|| <= 1: x = -(3, 4)/5, objective -5, z = (5, 3, 4)."""
    A = np.array([[0, 0], [-1, 0], [0, -1]])
    return program(A, [1, 0, 0], [3, 4], [Cone("soc", 3)])


ALPHA = 0.3


def power() -> ConicProgram:
    """max z, x0 + x1 = 1, x0^a x1^(1-a) >= |z|: x = (a, 1-a, a^a (1-a)^(1-a))."""
    A = np.vstack([[1, 1, 0], -np.eye(3)])
    return program(A, [1, 0, 0, 0], [0, 0, -1], [Cone("zero", 1), Cone("power", 3, ALPHA)])


def mixed() -> ConicProgram:
    """All four cones: a 3-asset book with risk ||L w|| <= t and impact u_i >= |w_i|^1.5."""
    mu = np.array([0.10, 0.12, 0.11])
    L = np.array([[0.20, 0.00, 0.00], [0.05, 0.25, 0.00], [0.02, 0.04, 0.22]])
    n = 7  # w 0..2, t 3, u 4..6
    rows, b, cones = [], [], []
    rows.append(np.r_[1, 1, 1, 0, 0, 0, 0]); b.append(1.0); cones.append(Cone("zero", 1))
    for i in range(3):
        rows.append(-np.eye(n)[i]); b.append(0.0)
    cones.append(Cone("nonneg", 3))
    rows.append(-np.eye(n)[3]); b.append(0.0)
    for i in range(3):
        rows.append(np.r_[-L[i], 0, 0, 0, 0]); b.append(0.0)
    cones.append(Cone("soc", 4))
    for i in range(3):
        rows += [-np.eye(n)[4 + i], np.zeros(n), -np.eye(n)[i]]
        b += [0.0, 1.0, 0.0]
        cones.append(Cone("power", 3, 2 / 3))
    c = np.r_[-mu, 0.5, 0.3, 0.3, 0.3]
    return program(np.array(rows), b, c, cones, c0=1.25)


def infeasible() -> ConicProgram:
    """x >= 1 and x <= 0."""
    return program([[-1.0], [1.0]], [-1.0, 0.0], [1.0], [Cone("nonneg", 2)])


def unbounded() -> ConicProgram:
    """min -x, x >= 0."""
    return program([[-1.0]], [0.0], [-1.0], [Cone("nonneg", 1)])


def knapsack() -> ConicProgram:
    """min -x0 - x1, 2 x0 + 2 x1 <= 3, x >= 0 integer: objective -1 (relaxation -1.5)."""
    return program([[2, 2], [-1, 0], [0, -1]], [3, 0, 0], [-1, -1], [Cone("nonneg", 3)],
                   integer=[0, 1])


def no_rows() -> ConicProgram:
    return program(np.zeros((0, 2)), np.zeros(0), [1.0, -1.0], [], c0=3.0, integer=[1])


def empty_cones() -> ConicProgram:
    """Zero-dimensional zero/nonneg blocks (an empty constraint family) between real ones."""
    return program(np.array([[1.0, 2.0], [0.0, -1.0]]), [1.0, 0.0], [1.0, 1.0],
                   [Cone("zero", 0), Cone("zero", 1), Cone("nonneg", 0), Cone("nonneg", 1)])


def random_program(seed: int) -> ConicProgram:
    rng = np.random.default_rng(seed)
    cones = []
    for _ in range(rng.integers(1, 12)):
        kind = rng.choice(["zero", "nonneg", "soc", "power"])
        if kind == "power":
            cones.append(Cone("power", 3, float(rng.uniform(1e-6, 1 - 1e-6))))
        else:
            cones.append(Cone(str(kind), int(rng.integers(1, 7))))
    m = sum(cone.dim for cone in cones)
    n = int(rng.integers(1, 40))
    A = sp.random(m, n, density=float(rng.uniform(0.05, 0.6)), format="csc", random_state=rng,
                  # Magnitudes 1e-8..1e8: MOSEK ignores coefficients below ~1e-12, which a
                  # normal draw times 1e-8 can produce.
                  data_rvs=lambda k: rng.choice([-1.0, 1.0], k) * 10.0 ** rng.uniform(-8, 8, k))
    integer = rng.choice(n, size=int(rng.integers(0, n + 1)) // 3, replace=False)
    return program(A, rng.standard_normal(m), rng.standard_normal(n), cones,
                   c0=float(rng.standard_normal()), integer=np.sort(integer))


# ----------------------------------------------------------------------------- build / read back

@pytest.mark.parametrize("make", [lp, socp, power, mixed, infeasible, unbounded, knapsack,
                                  no_rows, empty_cones])
def test_hand_made_programs_round_trip(make):
    assert_round_trip(make())


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_random_programs_round_trip(seed):
    assert_round_trip(random_program(seed))


def test_duplicates_are_summed_and_explicit_zeros_dropped():
    A = sp.csc_matrix((np.array([1.0, 2.0, 5.0, 0.0]), np.array([0, 0, 1, 1]),
                       np.array([0, 3, 4])), shape=(2, 2))
    assert A.nnz == 4  # duplicate (0, 0) and an explicit zero at (1, 1)
    p = program(A, [1, 2], [1, 1], [Cone("nonneg", 2)])
    with mb.build_task(p) as task:
        back = mb.read_back(task)
        assert task.getafefnumnz() == 2
    assert back["A"].toarray().tolist() == [[3.0, 0.0], [5.0, 0.0]]


def test_variables_are_free_and_rows_are_afes_in_order():
    p = mixed()
    with mb.build_task(p) as task:
        assert task.getnumvar() == p.num_vars and task.getnumafe() == p.num_rows
        assert task.getnumacc() == len(p.cones)
        bk, bl, bu = task.getvarboundslice(0, p.num_vars)
        assert all(k == mosek.boundkey.fr for k in bk)
        # ACC i covers the consecutive rows of cone i.
        start = 0
        for i, cone in enumerate(p.cones):
            assert list(task.getaccafeidxlist(i)) == list(range(start, start + cone.dim))
            assert np.array_equal(task.getaccb(i), np.zeros(cone.dim))
            start += cone.dim
        # F = -A row by row, g = b.
        for r in (0, 4, 7, 8):
            nnz, cols, vals = task.getafefrow(r)
            assert task.getafefrownumnz(r) == nnz
            row = np.zeros(p.num_vars)
            row[list(cols)] = vals
            assert np.array_equal(row, -p.A.toarray()[r])
        assert np.array_equal(task.getafegslice(0, p.num_rows), p.b)
        power_acc = len(p.cones) - 1
        dom = task.getaccdomain(power_acc)
        assert task.getdomaintype(dom) == mosek.domaintype.primal_power_cone
        assert np.allclose(task.getpowerdomainalpha(dom), [2 / 3, 1 / 3])


def test_identical_cones_share_one_domain():
    cones = [Cone("power", 3, 0.4)] * 50 + [Cone("nonneg", 2)] * 10
    m = 3 * 50 + 2 * 10
    p = program(sp.eye(m, 5, format="csc"), np.ones(m), np.ones(5), cones)
    with mb.build_task(p) as task:
        assert task.getnumacc() == 60 and task.getnumdomain() == 2
        assert mb.read_back(task)["cones"] == cones


def test_realistic_size_builds():
    """50k variables, 15k power cones, 500k nonzeros (timing is measured elsewhere)."""
    rng = np.random.default_rng(7)
    n, n_power, n_lin, nnz = 50_000, 15_000, 20_000, 500_000
    m = 1 + n_lin + 3 * n_power
    A = sp.csc_matrix((rng.standard_normal(nnz), (rng.integers(0, m, nnz),
                                                   rng.integers(0, n, nnz))), shape=(m, n))
    cones = ([Cone("zero", 1), Cone("nonneg", n_lin)]
             + [Cone("power", 3, 2 / 3)] * (n_power // 2)
             + [Cone("power", 3, float(a)) for a in rng.uniform(0.1, 0.9, n_power // 2)])
    p = program(A, rng.standard_normal(m), rng.standard_normal(n), cones)
    with mb.build_task(p) as task:
        assert task.getnumacc() == len(cones) and task.getafefnumnz() == A.nnz
        back = mb.read_back(task)
    assert (back["A"] != A).nnz == 0 and back["cones"] == cones


def test_bad_cones_are_bugs_not_mosek_errors():
    with pytest.raises(ValueError, match="power cone"):
        mb.build_task(program(np.eye(3), np.zeros(3), np.zeros(3), [Cone("power", 3, 1.5)]))
    with pytest.raises(ValueError, match="unknown kind"):
        mb.build_task(program(np.eye(3), np.zeros(3), np.zeros(3), [Cone("exp", 3)]))
    with pytest.raises(ValueError, match="out of range"):
        mb.build_task(program(np.eye(1), [0.0], [0.0], [Cone("nonneg", 1)], integer=[3]))


def test_mosek_rejection_becomes_value_error_with_context(monkeypatch):
    monkeypatch.setattr(mb, "_validate_cones", lambda cones: None)
    p = program(np.zeros((0, 2)), np.zeros(0), np.zeros(2), [Cone("soc", 0)])
    with pytest.raises(ValueError, match=r"MOSEK rejected.*ERR_DOMAIN_DIMENSION") as info:
        mb.build_task(p)
    assert isinstance(info.value.__cause__, mosek.Error)


# ----------------------------------------------------------------------------- no license

def test_without_license_solve_raises_config_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("MOSEKLM_LICENSE_FILE", str(tmp_path / "nowhere" / "mosek.lic"))
    assert choose_solver("auto") == SolverChoice("clarabel", "Clarabel: no MOSEK license found")
    with pytest.raises(ConfigError) as info:
        mb.solve(lp(), SolverOptions())
    text = str(info.value)
    assert "MOSEKLM_LICENSE_FILE" in text and 'solver = "clarabel"' in text
    assert "MISSING_LICENSE_FILE" in text
    assert not isinstance(info.value, mosek.Error)


@pytest.mark.parametrize("make", [mixed, knapsack])
def test_without_license_everything_up_to_optimize_is_accepted(tmp_path, monkeypatch, make):
    """Skip the early license checkout: MOSEK then accepts the task, every parameter, the
    log stream and the callback, and the license error raised by optimize() itself is
    translated too."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("MOSEKLM_LICENSE_FILE", str(tmp_path / "mosek.lic"))
    monkeypatch.setattr(mosek.Env, "checkoutlicense", lambda self, feature: None)
    options = SolverOptions(time_limit_s=5.0, verbose=True, progress=lambda p: None,
                            cancel=threading.Event(), tol_gap_rel=1e-9, tol_feas=1e-9)
    with pytest.raises(ConfigError, match="MOSEKLM_LICENSE_FILE") as info:
        mb.solve(make(), options)
    assert isinstance(info.value.__cause__, mosek.Error)


class FakeTask:
    """Just the getters _read_solution uses, returning a scripted MOSEK outcome."""

    def __init__(self, solsta, prosta, xx=None, doty=None, defined=True):
        self.solsta, self.prosta, self.xx, self.doty, self.defined = (
            solsta, prosta, xx, doty, defined)

    def solutiondef(self, whichsol):
        return self.defined

    def getsolsta(self, whichsol):
        return self.solsta

    def getprosta(self, whichsol):
        return self.prosta

    def getxx(self, whichsol):
        return self.xx

    def getaccdotys(self, whichsol):
        return self.doty

    def getintinf(self, item):
        return 9

    def getdouinf(self, item):
        return 0.01


def read(fake, trm=mosek.rescode.ok, p=None, integer=False):
    p = p or lp()
    whichsol = mosek.soltype.itg if integer else mosek.soltype.itr
    return mb._read_solution(fake, p, whichsol, trm, integer, 0.5, 0.1)


def test_optimal_passes_x_and_doty_through_unchanged():
    p = lp()
    out = read(FakeTask(mosek.solsta.optimal, mosek.prosta.prim_and_dual_feas,
                        xx=[1.0, 0.0, 0.0], doty=[-1.0, 0.0, 1.0, 2.0]), p=p)
    assert out.status == Status.OPTIMAL and out.solver == "mosek"
    assert np.array_equal(out.z, [-1.0, 0.0, 1.0, 2.0])  # no sign flip (module docstring)
    assert np.allclose(p.c + p.A.T @ out.z, 0)  # ...which is the c + A'z = 0 convention
    assert np.array_equal(out.s, p.b - p.A @ out.x) and out.objective == 1.5
    assert out.iterations == 9


def test_infeasible_certificate_is_doty_and_has_no_primal():
    p = infeasible()
    out = read(FakeTask(mosek.solsta.prim_infeas_cer, mosek.prosta.prim_infeas,
                        xx=[0.0], doty=[1.0, 1.0]), p=p)
    assert out.status == Status.INFEASIBLE and np.array_equal(out.z, [1.0, 1.0])
    assert np.isnan(out.x).all() and np.isnan(out.objective)
    assert np.allclose(p.A.T @ out.z, 0) and p.b @ out.z < 0


def test_unbounded_returns_the_ray():
    p = unbounded()
    out = read(FakeTask(mosek.solsta.dual_infeas_cer, mosek.prosta.dual_infeas, xx=[1.0],
                        doty=[0.0]), p=p)
    assert out.status == Status.UNBOUNDED and out.x.tolist() == [1.0]
    assert out.s.tolist() == [1.0] and p.c @ out.x < 0 and np.isnan(out.z).all()


@pytest.mark.parametrize("trm,status", [
    (mosek.rescode.trm_user_callback, Status.CANCELLED),
    (mosek.rescode.trm_max_time, Status.TIME_LIMIT),
    (mosek.rescode.trm_max_iterations, Status.ITERATION_LIMIT),
    (mosek.rescode.trm_stall, Status.NUMERICAL_ERROR),
    (mosek.rescode.trm_numerical_problem, Status.NUMERICAL_ERROR),
])
def test_termination_codes(trm, status):
    out = read(FakeTask(mosek.solsta.unknown, mosek.prosta.unknown, xx=[0.0] * 3,
                        doty=[0.0] * 4), trm=trm)
    assert out.status == status and not out.status.has_solution
    assert np.isnan(out.objective) and np.isnan(out.x).all()
    sym, _ = mosek.Env.getcodedesc(trm)
    assert sym in out.message


def test_integer_time_limit_keeps_the_incumbent_without_duals():
    p = knapsack()
    out = read(FakeTask(mosek.solsta.prim_feas, mosek.prosta.prim_feas, xx=[1.0, 0.0]),
               trm=mosek.rescode.trm_max_time, p=p, integer=True)
    assert out.status == Status.TIME_LIMIT and out.x.tolist() == [1.0, 0.0]
    assert np.isnan(out.z).all() and np.isnan(out.objective)


def test_integer_infeasible_without_certificate():
    out = read(FakeTask(mosek.solsta.unknown, mosek.prosta.prim_infeas), p=knapsack(),
               integer=True)
    assert out.status == Status.INFEASIBLE and np.isnan(out.z).all()


def _info_arrays():
    dinf = np.zeros(max(int(v) for v in mosek.dinfitem.members()) + 1)
    iinf = np.zeros(max(int(v) for v in mosek.iinfitem.members()) + 1, dtype=np.int32)
    liinf = np.zeros(max(int(v) for v in mosek.liinfitem.members()) + 1, dtype=np.int64)
    return dinf, iinf, liinf


def test_callback_reports_progress_and_stops_on_cancel():
    seen: list[Progress] = []
    cancel = threading.Event()
    options = SolverOptions(progress=seen.append, cancel=cancel)
    failure: list = []
    cb = mb._make_callback(options, start=0.0, failure=failure)
    dinf, iinf, liinf = _info_arrays()
    iinf[mosek.iinfitem.intpnt_iter] = 4
    dinf[mosek.dinfitem.intpnt_primal_obj] = 10.0
    dinf[mosek.dinfitem.intpnt_dual_obj] = 9.0
    assert cb(mosek.callbackcode.intpnt, dinf, iinf, liinf) == 0
    assert cb(mosek.callbackcode.begin_intpnt, dinf, iinf, liinf) == 0  # not an iteration
    cancel.set()
    assert cb(mosek.callbackcode.begin_intpnt, dinf, iinf, liinf) != 0
    assert len(seen) == 1
    got = seen[0]
    assert (got.iteration, got.primal_objective, got.dual_objective) == (4, 10.0, 9.0)
    assert got.gap == pytest.approx(1 / 9) and got.elapsed_s > 0 and not failure


def test_callback_stops_and_keeps_a_progress_exception():
    def boom(progress):
        raise RuntimeError("screen gone")

    failure: list = []
    cb = mb._make_callback(SolverOptions(progress=boom), start=0.0, failure=failure)
    dinf, iinf, liinf = _info_arrays()
    assert cb(mosek.callbackcode.intpnt, dinf, iinf, liinf) != 0
    assert isinstance(failure[0], RuntimeError)


def test_fixtures_have_their_analytic_solutions_under_clarabel():
    """The programs the licensed tests compare on, checked against their closed forms."""
    out = clarabel_backend.solve(lp(), SolverOptions())
    assert np.allclose(out.x, [1, 0, 0], atol=1e-7) and np.allclose(out.z, [-1, 0, 1, 2],
                                                                    atol=1e-6)
    out = clarabel_backend.solve(socp(), SolverOptions())
    assert np.allclose(out.x, [-0.6, -0.8], atol=1e-7) and np.allclose(out.z, [5, 3, 4],
                                                                       atol=1e-6)
    out = clarabel_backend.solve(power(), SolverOptions())
    z_max = ALPHA**ALPHA * (1 - ALPHA) ** (1 - ALPHA)
    # The optimum is flat in x0 (error ~ sqrt(gap)), hence the looser tolerance.
    assert np.allclose(out.x, [ALPHA, 1 - ALPHA, z_max], atol=1e-4)
    out = clarabel_backend.solve(mixed(), SolverOptions())
    assert out.status == Status.OPTIMAL and (out.x[:3] > 1e-3).all()  # interior: unique duals
    out = clarabel_backend.solve(infeasible(), SolverOptions())
    assert out.status == Status.INFEASIBLE
    assert_farkas(infeasible(), out.z)


def assert_farkas(p: ConicProgram, z: np.ndarray) -> None:
    """A'z = 0, b'z < 0, z in K* (all cones here are nonneg)."""
    scale = np.abs(z).max()
    assert scale > 0
    assert np.allclose(p.A.T @ z / scale, 0, atol=1e-7)
    assert p.b @ z / scale < -1e-6 and (z / scale >= -1e-8).all()


# ----------------------------------------------------------------------------- licensed solves

@needs_license
@pytest.mark.parametrize("make", [lp, socp, power, mixed])
def test_solve_matches_clarabel(make):
    p = make()
    ref = clarabel_backend.solve(p, SolverOptions())
    out = mb.solve(p, SolverOptions())
    assert ref.status == Status.OPTIMAL and out.status == Status.OPTIMAL, out.message
    assert out.objective == pytest.approx(ref.objective, rel=1e-6, abs=1e-9)
    # Interior-point x and z agree to about sqrt(gap tolerance) on flat optima (power()).
    assert np.allclose(out.x, ref.x, atol=2e-4 * max(1.0, np.abs(ref.x).max()))
    assert np.allclose(out.z, ref.z, atol=2e-4 * max(1.0, np.abs(ref.z).max()))
    assert np.allclose(p.c + p.A.T @ out.z, 0, atol=1e-6)
    assert np.allclose(out.s, p.b - p.A @ out.x)


@needs_license
def test_solve_infeasible_gives_a_farkas_certificate():
    out = mb.solve(infeasible(), SolverOptions())
    assert out.status == Status.INFEASIBLE, out.message
    assert_farkas(infeasible(), out.z)


@needs_license
def test_solve_unbounded():
    out = mb.solve(unbounded(), SolverOptions())
    assert out.status == Status.UNBOUNDED, out.message
    assert out.x[0] > 0


@needs_license
def test_solve_integer_program():
    out = mb.solve(knapsack(), SolverOptions())
    assert out.status == Status.OPTIMAL, out.message
    assert out.objective == pytest.approx(-1.0, abs=1e-6)
    assert np.allclose(out.x, np.round(out.x), atol=1e-6) and np.isnan(out.z).all()


@needs_license
def test_solve_reports_progress_including_c0():
    p = mixed()
    p.c0 = 100.0
    seen: list[Progress] = []
    out = mb.solve(p, SolverOptions(progress=seen.append))
    assert out.status == Status.OPTIMAL and seen
    assert [s.iteration for s in seen] == sorted(s.iteration for s in seen)
    assert seen[-1].primal_objective == pytest.approx(out.objective, rel=1e-3)


@needs_license
def test_solve_cancelled():
    cancel = threading.Event()
    cancel.set()
    out = mb.solve(mixed(), SolverOptions(cancel=cancel))
    assert out.status == Status.CANCELLED, out.message


def test_mosek_gets_whole_lots_as_integers(tmp_path):
    """The mixed-integer program MOSEK solves: trades in whole lots, read back exactly."""
    import sys
    sys.path.insert(0, str(Path(__file__).parent))
    from books import book_config, write_book
    from console.state import AppState
    from core.constraints.normalize import normalize_all
    from core.model.build import build_model
    from core.model.data import problem_data
    from core.settings import OptimizationSettings

    uni = AppState(book_config(write_book(tmp_path))).load()
    settings = OptimizationSettings()
    data = problem_data(uni, settings)
    model = build_model(data, normalize_all([], data, False), settings, whole_lots=True)
    p = model.program
    assert np.array_equal(np.sort(p.integer_vars), model.var["lots"])
    with mb.build_task(p) as task:
        back = mb.read_back(task)
    assert np.array_equal(back["integer"], np.sort(p.integer_vars))
    # One unit of a lot variable is one lot's value as a fraction of NAV.
    rows = [b for b in p.row_blocks if b.name == "whole_lots"][0]
    block = p.A[rows.start:rows.stop][:, model.var["lots"]].toarray()
    lot_value = data.lot_size * data.unit_value / data.nav
    assert np.allclose(-np.diag(block), lot_value)
