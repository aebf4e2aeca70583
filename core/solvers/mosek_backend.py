"""MOSEK backend: the neutral program as one affine conic constraint (ACC) per cone.

The neutral program (core.model.program) is

    minimize c'x + c0   s.t.   A x + s = b,   s in K          (Clarabel's standard form)

and MOSEK's Optimizer API solves

    minimize c'x + c^f  s.t.   F x + g in D                   (affine conic form)

so the task gets F = -A, g = b (AFE row r = program row r), c^f = c0, every variable free,
and one ACC per cone over consecutive AFE rows, in program order.

Dual sign convention (derivation)
---------------------------------
The MOSEK manual ("Duality for Conic Optimization") states the dual of the affine conic
form above as

    maximize  -g'y + c^f   s.t.   F'y = c,   y in D*

(the variable-bound duals s_l^x, s_u^x that appear in the general form are zero because
every variable is free), and `Task.getaccdotys` returns that y, the ACC duals, stacked in
ACC order. Substituting F = -A, g = b:

    maximize  -b'y + c0    s.t.   c + A'y = 0,   y in K*

which is exactly the dual the neutral program documents (Clarabel's): z with c + A'z = 0,
z in K*, dual objective -b'z + c0. So z = doty with NO sign change and no reordering
(AFE rows and ACCs are appended in program row order). The dual cones agree too: R^n's
zero cone <-> free, R_+ and the quadratic cone are self-dual, and MOSEK's dual of the
primal power cone with alpha = (a, 1-a) is the dual power cone
(y0/a)^a (y1/(1-a))^(1-a) >= |y2|, which is also Clarabel's dual of PowerConeT(a).

Infeasibility: MOSEK's certificate of primal infeasibility (solsta.prim_infeas_cer) is a
y with F'y = 0, -g'y > 0, y in D*, again read with getaccdotys. With F = -A, g = b that is
A'y = 0, b'y < 0, y in K*: Clarabel's Farkas certificate, so RawSolution.z = doty as is.
An unbounded problem (solsta.dual_infeas_cer) gives a ray x with F x in D, c'x < 0,
i.e. A x + s = 0 with s = -A x in K: Clarabel's dual-infeasibility certificate.
"""

from __future__ import annotations

import math
import sys
import time

import mosek
import numpy as np
import scipy.sparse as sp

from core.model.program import Cone, ConicProgram
from core.solvers.base import Progress, RawSolution, SolverOptions, Status, mosek_license

_KINDS = ("zero", "nonneg", "soc", "power")

# Response codes that mean "no usable license", not "bad program".
_LICENSE_CODES = frozenset(
    code for name, code in vars(mosek.rescode).items()
    if isinstance(code, mosek.rescode) and name.startswith("err_")
    and ("license" in name or "licensed" in name))

_LICENSE_FIX = ("set MOSEKLM_LICENSE_FILE to the path of your mosek.lic (or port@host of a "
                "license server) or put mosek.lic in ~/mosek; or use solver = \"clarabel\" "
                "(solver = \"auto\" falls back to Clarabel when no license is found)")


# ----------------------------------------------------------------------------- building

def _validate_cones(cones: list[Cone]) -> None:
    for i, cone in enumerate(cones):
        if cone.kind not in _KINDS:
            raise ValueError(f"cone {i}: unknown kind {cone.kind!r}")
        if cone.dim < 0 or (cone.kind == "soc" and cone.dim < 1):
            raise ValueError(f"cone {i}: invalid dimension {cone.dim} for a {cone.kind} cone")
        if cone.kind == "power" and (cone.dim != 3 or not 0.0 < cone.alpha < 1.0):
            raise ValueError(f"cone {i}: power cone needs dim 3 and 0 < alpha < 1, got dim "
                             f"{cone.dim}, alpha {cone.alpha}")


def _append_domain(task: mosek.Task, kind: str, dim: int, alpha: float) -> int:
    if kind == "zero":
        return task.appendrzerodomain(dim)
    if kind == "nonneg":
        return task.appendrplusdomain(dim)
    if kind == "soc":
        return task.appendquadraticconedomain(dim)
    return task.appendprimalpowerconedomain(3, [alpha, 1.0 - alpha])


def _fill(task: mosek.Task, program: ConicProgram) -> None:
    """Put the program into an empty task; raises mosek.Error, annotated by the caller."""
    m, n = program.A.shape
    A = sp.csc_matrix(program.A, copy=True)
    A.sum_duplicates()
    A.eliminate_zeros()
    coo = A.tocoo()

    task.appendvars(n)
    # MOSEK appends variables fixed at 0: make every variable free explicitly.
    task.putvarboundsliceconst(0, n, mosek.boundkey.fr, -math.inf, math.inf)
    task.putobjsense(mosek.objsense.minimize)
    if n:
        task.putcslice(0, n, np.ascontiguousarray(program.c, dtype=np.float64))
    task.putcfix(float(program.c0))

    # F = -A, g = b; AFE row r is program row r. One call for all nonzeros.
    task.appendafes(m)
    if coo.nnz:
        task.putafefentrylist(coo.row.astype(np.int64), coo.col.astype(np.int32),
                              np.ascontiguousarray(-coo.data, dtype=np.float64))
    if m:
        task.putafegslice(0, m, np.ascontiguousarray(program.b, dtype=np.float64))

    # One domain per distinct (kind, dim, alpha): domains can be shared by many ACCs, so
    # 15,000 identical power cones cost one appendprimalpowerconedomain call.
    domain_of: dict[tuple, int] = {}
    domidxs = np.empty(len(program.cones), dtype=np.int64)
    for i, cone in enumerate(program.cones):
        key = (cone.kind, int(cone.dim), float(cone.alpha) if cone.kind == "power" else 0.0)
        dom = domain_of.get(key)
        if dom is None:
            dom = domain_of[key] = _append_domain(task, *key)
        domidxs[i] = dom
    # All ACCs in one call over consecutive AFEs 0..m-1 (b = 0: the constant is in g).
    if len(domidxs):
        task.appendaccsseq(domidxs, m, 0, None)

    ints = np.unique(np.asarray(program.integer_vars, dtype=np.int64))
    if ints.size:
        if ints[0] < 0 or ints[-1] >= n:
            raise ValueError(f"integer variable index out of range 0..{n - 1}")
        task.putvartypelist(ints.astype(np.int32),
                            [mosek.variabletype.type_int] * int(ints.size))


def build_task(program: ConicProgram, env: mosek.Env | None = None) -> mosek.Task:
    """A MOSEK task equal to `program` (see the module docstring). No license needed.

    The caller owns the task: use it as a context manager (`with build_task(p) as t:`).
    MOSEK rejecting the data is a bug in the model builder, raised as ValueError.
    """
    program.check()
    _validate_cones(program.cones)
    task = env.Task() if env is not None else mosek.Task()
    try:
        _fill(task, program)
    except mosek.Error as err:
        task.__exit__(None, None, None)
        raise ValueError(
            f"MOSEK rejected the conic program ({program.num_vars} variables, "
            f"{program.num_rows} rows, {len(program.cones)} cones, {program.A.nnz} nonzeros): "
            f"{_code_text(err.errno)}: {err.msg.strip() if err.msg else ''}") from err
    except BaseException:
        task.__exit__(None, None, None)
        raise
    return task


# ----------------------------------------------------------------------------- reading back

def _cone_of_domain(task: mosek.Task, dom: int) -> Cone:
    dtype = task.getdomaintype(dom)
    dim = int(task.getdomainn(dom))
    if dtype == mosek.domaintype.rzero:
        return Cone("zero", dim)
    if dtype == mosek.domaintype.rplus:
        return Cone("nonneg", dim)
    if dtype == mosek.domaintype.quadratic_cone:
        return Cone("soc", dim)
    if dtype == mosek.domaintype.primal_power_cone:
        n, nleft = task.getpowerdomaininfo(dom)
        if n != 3 or nleft != 2:
            raise ValueError(f"domain {dom}: power cone of dim {n} with {nleft} left terms")
        a0, a1 = (float(v) for v in task.getpowerdomainalpha(dom))
        # MOSEK keeps the exponents as given; we always give (alpha, 1 - alpha).
        # (1 - alpha is rounded, so the sum may be off 1 by an ulp; then a0 is alpha.)
        alpha = a0 if abs(a0 + a1 - 1.0) <= 4 * np.finfo(float).eps else a0 / (a0 + a1)
        return Cone("power", dim, alpha)
    raise ValueError(f"domain {dom}: type {dtype} has no neutral cone")


def read_back(task: mosek.Task) -> dict:
    """The neutral program stored in `task`: A (csc, = -F), b (= g), c, c0, cones, integer.

    Rows are taken in ACC order (the AFE index lists of the ACCs concatenated), so this
    reads what the ACCs constrain, not merely what the AFE store holds. Also returns
    `all_free` (every variable bound is free) and `minimize` (objective sense).
    """
    n = int(task.getnumvar())
    k = int(task.getnumafe())
    frow, fcol, fval = task.getafeftrip()
    F = sp.csr_matrix((np.asarray(fval, dtype=np.float64),
                       (np.asarray(frow, dtype=np.int64), np.asarray(fcol, dtype=np.int64))),
                      shape=(k, n))
    g = np.asarray(task.getafegslice(0, k), dtype=np.float64) if k else np.zeros(0)
    domidxs, afeidx, accb = task.getaccs()
    domidxs = np.asarray(domidxs, dtype=np.int64)
    afeidx = np.asarray(afeidx, dtype=np.int64)
    # An ACC is F[afeidx] x + g[afeidx] - b in D (b is 0 in tasks built here).
    A = sp.csc_matrix(-F[afeidx])
    A.sort_indices()
    b = g[afeidx] - np.asarray(accb, dtype=np.float64)

    cone_of: dict[int, Cone] = {}
    cones = []
    for dom in domidxs.tolist():
        if dom not in cone_of:
            cone_of[dom] = _cone_of_domain(task, dom)
        cones.append(cone_of[dom])

    if n:
        bk, _, _ = task.getvarboundslice(0, n)
        all_free = all(key == mosek.boundkey.fr for key in bk)
        types = task.getvartypelist(np.arange(n, dtype=np.int32))
        integer = np.flatnonzero(np.fromiter(
            (t == mosek.variabletype.type_int for t in types), dtype=bool, count=n))
        c = np.asarray(task.getc(), dtype=np.float64)
    else:
        all_free, integer, c = True, np.zeros(0, dtype=np.int64), np.zeros(0)
    return {
        "A": A, "b": b, "c": c, "c0": float(task.getcfix()), "cones": cones,
        "integer": integer.astype(np.int64), "all_free": all_free,
        "minimize": task.getobjsense() == mosek.objsense.minimize,
    }


# ----------------------------------------------------------------------------- solving

def _code_text(code) -> str:
    try:
        sym, desc = mosek.Env.getcodedesc(mosek.rescode(int(code)))
        return f"{sym} ({desc})"
    except Exception:  # an unknown code must never hide the original error
        return f"MOSEK response code {code}"


def _license_error(err: mosek.Error):
    from core.errors import ConfigError
    _, why = mosek_license()
    detail = (err.msg or "").strip()
    return ConfigError(
        f"MOSEK cannot get a license: {_code_text(err.errno)}"
        + (f": {detail}" if detail else "") + f" [license search: {why}]",
        field="solver", fix=_LICENSE_FIX)


def _is_license_error(err: mosek.Error) -> bool:
    return err.errno in _LICENSE_CODES


def _gap(p: float, d: float) -> float:
    """Relative duality gap as Clarabel reports it: |p - d| / max(1, min(|p|, |d|))."""
    if not (math.isfinite(p) and math.isfinite(d)):
        return math.inf
    return abs(p - d) / max(1.0, min(abs(p), abs(d)))


def _make_callback(options: SolverOptions, start: float, failure: list):
    intpnt_codes = {mosek.callbackcode.intpnt, mosek.callbackcode.conic}
    mio_codes = {mosek.callbackcode.new_int_mio, mosek.callbackcode.im_mio}

    def callback(code, dinf, iinf, liinf) -> int:
        # MOSEK forbids calling MOSEK from here; only the arrays passed in are read.
        try:
            if options.progress is not None and (code in intpnt_codes or code in mio_codes):
                if code in intpnt_codes:
                    it = int(iinf[mosek.iinfitem.intpnt_iter])
                    p = float(dinf[mosek.dinfitem.intpnt_primal_obj])
                    d = float(dinf[mosek.dinfitem.intpnt_dual_obj])
                    gap = _gap(p, d)
                else:
                    it = int(iinf[mosek.iinfitem.mio_num_relax])
                    p = float(dinf[mosek.dinfitem.mio_obj_int])
                    d = float(dinf[mosek.dinfitem.mio_obj_bound])
                    gap = float(dinf[mosek.dinfitem.mio_obj_rel_gap])
                options.progress(Progress(iteration=it, primal_objective=p,
                                          dual_objective=d, gap=gap,
                                          elapsed_s=time.perf_counter() - start))
        except BaseException as exc:  # surfaced after optimize() returns
            failure.append(exc)
            return 1
        return int(options.cancel is not None and options.cancel.is_set())

    return callback


def _enum_name(value) -> str:
    return str(value).rsplit(".", 1)[-1]  # "solsta.optimal" -> "optimal"


def _nan(size: int) -> np.ndarray:
    return np.full(size, np.nan)


def solve(program: ConicProgram, options: SolverOptions) -> RawSolution:
    """Solve with MOSEK; statuses and duals follow core.solvers.base (see module doc).

    Raises ConfigError when MOSEK has no usable license and ValueError when MOSEK
    rejects the program data (a model-builder bug).
    """
    m, n = program.A.shape
    integer = np.asarray(program.integer_vars).size > 0
    whichsol = mosek.soltype.itg if integer else mosek.soltype.itr
    try:
        with mosek.Env() as env:
            # Fail fast (before building a large task) when there is no license.
            env.checkoutlicense(mosek.feature.pts)
            t0 = time.perf_counter()
            with build_task(program, env) as task:
                build_time = time.perf_counter() - t0
                if options.verbose:
                    task.set_Stream(mosek.streamtype.log, sys.stdout.write)
                task.putdouparam(mosek.dparam.optimizer_max_time, float(options.time_limit_s))
                task.putdouparam(mosek.dparam.intpnt_co_tol_rel_gap, options.tol_gap_rel)
                task.putdouparam(mosek.dparam.intpnt_co_tol_pfeas, options.tol_feas)
                task.putdouparam(mosek.dparam.intpnt_co_tol_dfeas, options.tol_feas)
                # Mixed-integer runs keep MOSEK's default mio_tol_rel_gap (1e-4): the
                # interior-point gap tolerance would make branch and bound run forever.
                task.putintparam(mosek.iparam.optimizer, mosek.optimizertype.mixed_int
                                 if integer else mosek.optimizertype.intpnt)
                failure: list[BaseException] = []
                start = time.perf_counter()
                if options.progress is not None or options.cancel is not None:
                    task.set_InfoCallback(_make_callback(options, start, failure))
                try:
                    trm = task.optimize()
                except mosek.Error as err:
                    if _is_license_error(err):
                        raise
                    elapsed = time.perf_counter() - start
                    return RawSolution(
                        solver="mosek", status=Status.NUMERICAL_ERROR, x=_nan(n), s=_nan(m),
                        z=_nan(m), objective=float("nan"), iterations=0,
                        solve_time_s=elapsed,
                        message=f"MOSEK failed: {_code_text(err.errno)}: {err.msg or ''}".strip(),
                        extra={"build_time_s": build_time})
                elapsed = time.perf_counter() - start
                if failure:
                    raise failure[0]
                return _read_solution(task, program, whichsol, trm, integer, elapsed,
                                      build_time)
    except mosek.Error as err:
        if _is_license_error(err):
            raise _license_error(err) from err
        raise ValueError(f"MOSEK error while solving: {_code_text(err.errno)}: "
                         f"{err.msg or ''}") from err


def _read_solution(task: mosek.Task, program: ConicProgram, whichsol, trm, integer: bool,
                   elapsed: float, build_time: float) -> RawSolution:
    m, n = program.A.shape
    A = program.A
    defined = bool(task.solutiondef(whichsol))
    solsta = task.getsolsta(whichsol) if defined else mosek.solsta.unknown
    prosta = task.getprosta(whichsol) if defined else mosek.prosta.unknown
    x, s, z = _nan(n), _nan(m), _nan(m)
    objective = float("nan")

    if solsta in (mosek.solsta.optimal, mosek.solsta.integer_optimal):
        status = Status.OPTIMAL
    elif solsta == mosek.solsta.prim_infeas_cer or (
            integer and prosta == mosek.prosta.prim_infeas):
        status = Status.INFEASIBLE
    elif solsta == mosek.solsta.dual_infeas_cer or (
            integer and prosta == mosek.prosta.dual_infeas):
        status = Status.UNBOUNDED
    elif trm == mosek.rescode.trm_user_callback:
        status = Status.CANCELLED
    elif trm in (mosek.rescode.trm_max_time, mosek.rescode.trm_server_max_time):
        status = Status.TIME_LIMIT
    elif trm in (mosek.rescode.trm_max_iterations, mosek.rescode.trm_mio_num_relaxs,
                 mosek.rescode.trm_mio_num_branches):
        status = Status.ITERATION_LIMIT
    else:
        status = Status.NUMERICAL_ERROR

    if defined:
        if status == Status.INFEASIBLE:
            if not integer:  # Farkas certificate: A'z = 0, b'z < 0, z in K* (see top)
                z = np.asarray(task.getaccdotys(whichsol), dtype=np.float64)
        elif status == Status.UNBOUNDED:
            if not integer:  # ray: A x + s = 0, s in K, c'x < 0
                x = np.asarray(task.getxx(whichsol), dtype=np.float64)
                s = -(A @ x)
        elif status == Status.OPTIMAL or solsta in (mosek.solsta.prim_feas,
                                                    mosek.solsta.prim_and_dual_feas):
            # Optimal, or the incumbent of a stopped run (reported, not flagged usable).
            x = np.asarray(task.getxx(whichsol), dtype=np.float64)
            s = program.b - A @ x
            if not integer:  # integer solutions have no duals
                z = np.asarray(task.getaccdotys(whichsol), dtype=np.float64)
            if status == Status.OPTIMAL:
                objective = float(program.c @ x + program.c0)

    if integer:
        iterations = int(task.getintinf(mosek.iinfitem.mio_num_relax))
    else:
        iterations = int(task.getintinf(mosek.iinfitem.intpnt_iter))
    message = f"{_code_text(trm)}; solution {_enum_name(solsta)}, problem {_enum_name(prosta)}"
    if status == Status.NUMERICAL_ERROR:
        message = "MOSEK did not solve the problem: " + message
    return RawSolution(
        solver="mosek", status=status, x=x, s=s, z=z, objective=objective,
        iterations=iterations, solve_time_s=elapsed, message=message,
        extra={"build_time_s": build_time,
               "mosek_optimizer_time_s": float(task.getdouinf(mosek.dinfitem.optimizer_time)),
               "trmcode": _enum_name(trm), "solsta": _enum_name(solsta),
               "prosta": _enum_name(prosta),
               "integer": integer})
