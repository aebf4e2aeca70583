"""Build the conic program of docs/formulation.md from ProblemData and constraint blocks.

Variables (all in fractions of NAV): h post-trade positions, l/s long and short legs
(h = l - s), u >= |h - h0| trade sizes, g post-trade gross (when a concentration limit
needs it), x factor exposures on the run's e (K of them: the N x N covariance is never
formed), r the variance epigraph, t impact epigraphs, v soft or elastic violations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.linalg

from core.constraints.normalize import ConstraintBlock, fixed_exposures
from core.model.builder import ModelBuilder, coo
from core.model.data import ProblemData
from core.model.program import ConicProgram, RowBlock
from core.settings import OptimizationSettings

POWER_ALPHA = 2.0 / 3.0  # t^(2/3) * 1^(1/3) >= |m|  <=>  t >= |m|^(3/2)
OBJECTIVE_SCALE = 1e4  # the solver sees utility in bp of NAV


@dataclass
class Violation:
    name: str
    side: str
    var: np.ndarray  # variable indices, one per row of the block
    scale: np.ndarray  # model units per constraint unit


@dataclass
class Model:
    data: ProblemData
    settings: OptimizationSettings
    program: ConicProgram
    var: dict[str, np.ndarray]
    constraint_rows: dict[str, dict[str, RowBlock]]
    violations: list[Violation]
    blocks: list[ConstraintBlock]
    elastic: bool = False
    risk_root: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))


def risk_root(cov: np.ndarray) -> np.ndarray:
    """R with R'R = cov, so x'cov x = ||R x||^2. Eigen-based: a singular cov is fine."""
    w, q = scipy.linalg.eigh((cov + cov.T) / 2)
    w = np.clip(w, 0.0, None)
    keep = w > w.max(initial=0.0) * 1e-14
    return (np.sqrt(w[keep])[:, None] * q[:, keep].T)


class _Build:
    def __init__(self, data: ProblemData, settings: OptimizationSettings,
                 blocks: list[ConstraintBlock], elastic: bool, impact_cone: str,
                 whole_lots: bool = False) -> None:
        self.d = data
        self.st = settings
        self.blocks = blocks
        self.elastic = elastic
        self.mb = ModelBuilder()
        self.var: dict[str, np.ndarray] = {}
        self.rows: dict[str, dict[str, RowBlock]] = {}
        self.violations: list[Violation] = []
        self.relative = settings.relative_to_benchmark
        if data.factor_root is not None:
            self.R = data.factor_root
        else:
            self.R = risk_root(data.factor_cov) if data.k else np.zeros((0, 0))
        self.impact_cone = impact_cone
        self.whole_lots = whole_lots
        self.integers: list[np.ndarray] = []

    # --- core variables ------------------------------------------------------------------

    def core(self) -> None:
        d, mb = self.d, self.mb
        n = d.n
        h = self.var["h"] = mb.variables("h", n)
        l = self.var["l"] = mb.variables("l", n)
        s = self.var["s"] = mb.variables("s", n)
        u = self.var["u"] = mb.variables("u", n)
        i = np.arange(n)
        mb.add_rows("legs", "definition", "zero", n,
                    [coo(i, h, 1.0), coo(i, l, -1.0), coo(i, s, 1.0)], 0.0)
        mb.add_rows("legs_nonneg", "bound", "nonneg", 2 * n,
                    [coo(i, l, -1.0), coo(i + n, s, -1.0)], 0.0)
        h0 = d.tradable.h0
        entries = [coo(i, h, 1.0), coo(i, u, -1.0), coo(i + n, h, -1.0), coo(i + n, u, -1.0)]
        if d.flows is not None:
            entries += self._flows()
        # u >= |h - h0 - V k|: the market trade, what costs and trade limits apply to
        mb.add_rows("trade_size", "definition", "nonneg", 2 * n, entries,
                    np.concatenate([h0, -h0]))
        if any(b.transform == "concentration" for b in self.blocks):
            g = self.var["g"] = mb.variables("g", 1)
            mb.add_rows("gross", "definition", "zero", 1,
                        [coo([0], g, 1.0), coo(np.zeros(n), l, -1.0), coo(np.zeros(n), s, -1.0)],
                        float(np.abs(d.fixed.h0).sum()))
        if d.k:
            x = self.var["x"] = mb.variables("x", d.k)
            B = d.effective_loadings()[0].T.tocoo()  # K x n, baskets through constituents
            entries = [coo(np.arange(d.k), x, 1.0), coo(B.row, h[B.col], -B.data)]
            if d.fx_factor is not None:
                entries += self._fx_factor_entries()
            mb.add_rows("factor_exposure_definition", "definition", "zero", d.k, entries,
                        fixed_exposures(d, self.relative))

    def _flows(self) -> list[tuple]:
        """Create/redeem and EFP flows k: bounds, |k| costs; returns trade-row entries."""
        F, mb = self.d.flows, self.mb
        n, f = self.d.n, F.size
        k = self.var["k_flow"] = mb.variables("k_flow", f)
        z = self.var["z_flow"] = mb.variables("z_flow", f)
        j = np.arange(f)
        mb.add_rows("flow_size", "definition", "nonneg", 2 * f,
                    [coo(j, k, 1.0), coo(j, z, -1.0), coo(j + f, k, -1.0), coo(j + f, z, -1.0)],
                    0.0)
        lo = np.flatnonzero(np.isfinite(F.lower))
        if len(lo):
            mb.add_rows("flow_limit", "bound", "nonneg", len(lo),
                        [coo(np.arange(len(lo)), k[lo], -1.0)], -F.lower[lo])
        hi = np.flatnonzero(np.isfinite(F.upper))
        if len(hi):
            mb.add_rows("flow_limit_upper", "bound", "nonneg", len(hi),
                        [coo(np.arange(len(hi)), k[hi], 1.0)], F.upper[hi])
        mb.cost(z, F.cost)
        mb.cost(k, -F.gain)
        V = F.V.tocoo()
        return [coo(V.row, k[V.col], -V.data), coo(V.row + n, k[V.col], V.data)]

    # --- risk ------------------------------------------------------------------------------

    def _risk_entries(self, offset: int, factor: bool, idio: bool, active: bool):
        """COO entries and b for rows w (starting at `offset`) with ||w||^2 = variance."""
        d = self.d
        t, f = d.tradable, d.fixed
        entries, b = [], []
        row = offset
        if factor and d.k:
            R = self.R
            rr, cc = np.nonzero(R)
            entries.append(coo(rr + row, self.var["x"][cc], -R[rr, cc]))
            shift = np.zeros(R.shape[0])
            if active and not self.relative:
                x_bench = np.asarray(t.loadings.T @ t.bench).ravel() + np.asarray(
                    f.loadings.T @ f.bench).ravel()
                shift = -R @ x_bench
            b.append(shift)
            row += R.shape[0]
        if idio:
            use_bench = active or self.relative
            G = d.specific_matrix()
            h_const = d.positions_all(np.zeros(d.n), use_bench)
            G_t, const = G[:, : d.n], G @ h_const
            moving = np.flatnonzero(G_t.getnnz(axis=1))
            Gm = G_t[moving].tocoo()
            entries.append(coo(row + Gm.row, self.var["h"][Gm.col], -Gm.data))
            b.append(const[moving])
            row += len(moving)
            # Rows no position moves are one constant: the fixed book's specific risk.
            rest = np.setdiff1d(np.arange(G.shape[0]), moving)
            const_rest = float(np.sqrt(const[rest] @ const[rest]))
            if const_rest > 0:
                b.append(np.array([const_rest]))
                row += 1
        return entries, (np.concatenate(b) if b else np.zeros(0)), row - offset

    def variance_epigraph(self, name: str, factor: bool, idio: bool) -> np.ndarray:
        """r >= ||w||^2 as a rotated cone: ||((1 - r)/2, w)|| <= (1 + r)/2."""
        r = self.mb.variables(name, 1)
        entries, b, m = self._risk_entries(2, factor, idio, active=False)
        entries = [coo([0, 1], [r[0], r[0]], [-0.5, 0.5])] + entries
        self.mb.add_rows(name, "risk", "soc", m + 2, entries, np.concatenate([[0.5, 0.5], b]))
        return r

    # --- costs -----------------------------------------------------------------------------

    def costs(self) -> None:
        d, mb, v = self.d, self.mb, self.var
        mb.cost(v["u"], d.linear_cost)
        imp = np.flatnonzero(d.impact > 0)
        if len(imp):
            self._impact(imp)
        if d.curves:
            tc = v["t_curve"] = mb.variables("t_curve", len(d.curves))
            rows, cols, vals, b = [], [], [], []
            r = 0
            for c, curve in enumerate(d.curves):
                for a, slope in zip(curve.intercepts, curve.slopes):
                    rows += [r, r]
                    cols += [v["u"][curve.index], tc[c]]
                    vals += [slope, -1.0]
                    b.append(-a)
                    r += 1
            mb.add_rows("impact_curve", "cost", "nonneg", r, [coo(rows, cols, vals)],
                        np.array(b))
            mb.cost(tc, 1.0)
        hs = d.horizon_scale
        mb.cost(v["l"], hs * d.financing)
        mb.cost(v["s"], hs * d.borrow)
        mb.cost(v["h"], -hs * d.dividend)

    def _impact(self, imp: np.ndarray) -> None:
        """k |m|^1.5 for each name, with t >= u^1.5 / sqrt(w) and cost k sqrt(w) t.

        w is a typical trade size for the name (its position, or 1/n of NAV): with w = 1 a
        book of 15,000 names has t ~ 1e-6 and no interior-point method converges.
        `impact_cone = "power"` writes (t, w, u) in the 3-d power cone t^2/3 w^1/3 >= u;
        `"soc"` (the default) uses the exact equivalent u^2 <= t q, q^2 <= u w with two 3-d
        second-order cones, which are symmetric cones and solve robustly at any size.
        """
        d, mb, v = self.d, self.mb, self.var
        m = len(imp)
        w = np.maximum(np.abs(d.tradable.h0[imp]), 1.0 / max(d.n, 1))
        t = v["t_impact"] = mb.variables("t_impact", m)
        u = v["u"][imp]
        j = np.arange(m)
        if self.impact_cone == "power":
            mb.add_rows("impact", "cost", "power", 3 * m,
                        [coo(3 * j, t, -1.0), coo(3 * j + 2, u, -1.0)],
                        np.column_stack([np.zeros(m), w, np.zeros(m)]).ravel(),
                        labels=d.tradable.ids[imp], alpha=POWER_ALPHA)
        else:
            q = v["q_impact"] = mb.variables("q_impact", m)
            r = 6 * j
            # ||(2u, t - q)|| <= t + q   and   ||(2q, u - w)|| <= u + w
            entries = [coo(r, t, -1.0), coo(r, q, -1.0), coo(r + 1, t, -1.0),
                       coo(r + 1, q, 1.0), coo(r + 2, u, -2.0),
                       coo(r + 3, u, -1.0), coo(r + 4, u, -1.0), coo(r + 5, q, -2.0)]
            b = np.zeros(6 * m)
            b[r + 3] = w
            b[r + 4] = -w
            mb.add_rows("impact", "cost", "soc", 6 * m, entries, b,
                        labels=np.repeat(d.tradable.ids[imp], 6), cone_dims=[3] * (2 * m))
        mb.cost(t, d.impact[imp] * np.sqrt(w))

    # --- objective -------------------------------------------------------------------------

    def objective(self) -> None:
        st, d, mb = self.st, self.d, self.mb
        mode = st.objective
        hs = d.horizon_scale
        factor = st.risk_terms in ("full", "factor")
        idio = st.risk_terms in ("full", "idio")
        if mode == "utility":
            mb.cost(self.var["h"], -d.alpha)
            if st.risk_aversion > 0:
                r = self.variance_epigraph("variance", factor, idio)
                mb.cost(r, st.risk_aversion * hs)
        elif mode == "min_total_risk":
            mb.cost(self.variance_epigraph("variance", factor, idio), hs)
        elif mode == "min_factor_risk":
            mb.cost(self.variance_epigraph("variance", True, False), hs)
        elif mode == "target_exposures":
            names = list(d.factor_names)
            unknown = sorted(set(st.factor_targets) - set(names))
            if unknown or not st.factor_targets:
                from core.errors import ConfigError
                raise ConfigError(
                    f"objective target_exposures: unknown factor(s) {', '.join(unknown)}"
                    if unknown else "objective target_exposures needs factor_targets",
                    field="optimization.factor_targets",
                    fix="set [optimization.factor_targets] with factor names from the model")
            idx = np.array([names.index(k) for k in st.factor_targets])
            target = np.array(list(st.factor_targets.values()))
            w = np.sqrt(np.array([st.factor_target_weights.get(k, 1.0)
                                  for k in st.factor_targets]))
            q = mb.variables("target_distance", 1)
            m = len(idx)
            mb.add_rows("target_distance", "risk", "soc", m + 2,
                        [coo([0, 1], [q[0], q[0]], [-0.5, 0.5]),
                         coo(2 + np.arange(m), self.var["x"][idx], -w)],
                        np.concatenate([[0.5, 0.5], -w * target]))
            mb.cost(q, 1.0)

    # --- constraints -----------------------------------------------------------------------

    def _columns(self, block: ConstraintBlock) -> list[tuple[np.ndarray, float]]:
        tr, v = block.transform, self.var
        return {"linear": [(v["h"], 1.0)], "abs": [(v["l"], 1.0), (v["s"], 1.0)],
                "abs_trade": [(v["u"], 1.0)], "pos": [(v["l"], 1.0)], "neg": [(v["s"], 1.0)],
                "factor": [(v.get("x"), 1.0)]}[tr]

    def _violation(self, block: ConstraintBlock, side: str, m: int) -> np.ndarray | None:
        if not (block.spec.soft or self.elastic):
            return None
        viol = self.mb.variables(f"v:{block.spec.name}:{side}", m)
        self.mb.add_rows(f"v:{block.spec.name}:{side}", "bound", "nonneg", m,
                         [coo(np.arange(m), viol, -1.0)], 0.0)
        if self.elastic:
            self.mb.cost(viol, block.spec.priority)
        else:
            # A %holding bound on a flat name has no unit to price a violation in: it is
            # priced per %NAV instead.
            scale = np.where(block.scale > 0, block.scale, 0.01)
            self.mb.cost(viol, block.spec.penalty * 1e-4 / scale)
        self.violations.append(Violation(block.spec.name, side, viol, block.scale))
        return viol

    def constraint(self, block: ConstraintBlock) -> None:
        name = block.spec.name
        self.rows[name] = {}
        if block.rows == 0:
            return
        if block.transform in ("risk", "factor_risk", "tracking"):
            self._risk_limit(block)
            return
        if block.transform == "concentration":
            self._concentration(block)
            return
        if block.transform == "margin":
            self._margin_budget(block)
            return
        if block.transform == "cash":
            self._currency_cash(block)
            return
        S = block.S.tocoo()

        def entries(local: np.ndarray, sign: float) -> list[tuple]:
            keep = local[S.row] >= 0
            return [coo(local[S.row[keep]], cols[S.col[keep]], sign * coef * S.data[keep])
                    for cols, coef in self._columns(block)]

        self._two_sided(block, entries, block.const)

    def _two_sided(self, block: ConstraintBlock, entries, const: np.ndarray) -> None:
        """Rows sign * (expression + const) <= sign * bound for each finite bound.

        `entries(local, sign)` gives the expression's COO entries for the rows kept
        (local[i] is row i's position in the block, -1 when the bound is absent).
        """
        name = block.spec.name
        for side, bound, sign in (("upper", block.hi, 1.0), ("lower", block.lo, -1.0)):
            rows = np.flatnonzero(~np.isnan(bound))
            if not len(rows):
                continue
            local = np.full(block.rows, -1)
            local[rows] = np.arange(len(rows))
            row_entries = entries(local, sign)
            viol = self._violation(_sub(block, rows), side, len(rows))
            if viol is not None:
                row_entries.append(coo(np.arange(len(rows)), viol, -1.0))
            self.rows[name][side] = self.mb.add_rows(
                name, "constraint", "nonneg", len(rows), row_entries,
                sign * (bound[rows] - const[rows]), labels=block.labels[rows], side=side,
                scale=block.scale[rows])

    def _concentration(self, block: ConstraintBlock) -> None:
        """|h_i| <= c G: h_i - c g <= 0 and -h_i - c g <= 0, g the post-trade gross."""
        S = block.S.tocoo()
        m = block.rows
        viol = self._violation(block, "upper", m)
        for side, sign in (("upper", 1.0), ("upper_short", -1.0)):
            entries = [coo(S.row, self.var["h"][S.col], sign),
                       coo(np.arange(m), np.full(m, self.var["g"][0]), -block.hi)]
            if viol is not None:
                entries.append(coo(np.arange(m), viol, -1.0))
            self.rows[block.spec.name][side] = self.mb.add_rows(
                block.spec.name, "constraint", "nonneg", m, entries, 0.0, labels=block.labels,
                side="upper", scale=block.scale)

    def _fx_factor_entries(self) -> list[tuple]:
        """x_j also holds cash_j = cash0_j - sum_{i in j} (h_i - h0_i - (V k)_i) + f_j."""
        d, v = self.d, self.var
        cur = d.currencies
        f = self._fx()
        has = np.flatnonzero(d.fx_factor >= 0)
        member = cur.membership()[has]
        rows = d.fx_factor[has]
        m = member.tocoo()
        out = [coo(rows[m.row], v["h"][m.col], 1.0), coo(rows, f[has], -1.0)]
        if "k_flow" in v:
            mk = (member @ d.flows.V).tocoo()
            out.append(coo(rows[mk.row], v["k_flow"][mk.col], -mk.data))
        return out

    def _fx(self) -> np.ndarray:
        """FX conversions f (one per currency, summing to zero), costed per unit of |f|."""
        if "fx" in self.var:
            return self.var["fx"]
        cur, mb = self.d.currencies, self.mb
        m = cur.size
        f = self.var["fx"] = mb.variables("fx", m)
        z = self.var["fx_size"] = mb.variables("fx_size", m)
        j = np.arange(m)
        mb.add_rows("fx_balance", "definition", "zero", 1, [coo(np.zeros(m), f, 1.0)], 0.0)
        mb.add_rows("fx_size", "definition", "nonneg", 2 * m,
                    [coo(j, f, 1.0), coo(j, z, -1.0), coo(j + m, f, -1.0), coo(j + m, z, -1.0)],
                    0.0)
        # One leg of each pair pays: the numeraire side is the other currency's mirror.
        cost = np.where(cur.codes == cur.numeraire, 0.0, self.st.fx_cost_bps * 1e-4)
        mb.cost(z, cost)
        return f

    def _currency_cash(self, block: ConstraintBlock) -> None:
        """c0_j - sum_{i in j} market trade_i + f_j within [lower, upper] per currency j."""
        d, v = self.d, self.var
        cur = d.currencies
        f = self._fx()
        ccy = block.S.tocoo().col  # currency of each row
        # spend_j(h, k) = sum over settling i in j of (h_i - h0_i - (V k)_i)
        member = cur.membership()[ccy]
        spend_h = member.tocoo()
        const = cur.cash0[ccy] + member @ d.tradable.h0
        flow = (member @ d.flows.V).tocoo() if "k_flow" in v else None

        def entries(local: np.ndarray, sign: float) -> list[tuple]:
            # sign * (const - h-part + k-part + f) <= sign * bound
            keep = local[spend_h.row] >= 0
            out = [coo(local[spend_h.row[keep]], v["h"][spend_h.col[keep]],
                       -sign * spend_h.data[keep])]
            rows = np.flatnonzero(local >= 0)
            out.append(coo(local[rows], f[ccy[rows]], sign))
            if flow is not None:
                fk = local[flow.row] >= 0
                out.append(coo(local[flow.row[fk]], v["k_flow"][flow.col[fk]],
                               sign * flow.data[fk]))
            return out

        self._two_sided(block, entries, const)

    def _margin_budget(self, block: ConstraintBlock) -> None:
        """sum rate |h - V p| + sum hedge_rate |p| <= budget (core/model/margin.py)."""
        d, mb, v = self.d, self.mb, self.var
        H = d.hedges
        n, k = d.n, H.size
        rate = d.margin_rate_all()
        sup = H.support()
        p = v["p_hedge"] = mb.variables("p_hedge", k)
        w = v["w_hedge"] = mb.variables("w_hedge", k)
        a = v["a_hedge"] = mb.variables("a_hedge", len(sup))
        j = np.arange(k)
        mb.add_rows("hedge_size", "definition", "nonneg", 2 * k,
                    [coo(j, p, 1.0), coo(j, w, -1.0), coo(j + k, p, -1.0), coo(j + k, w, -1.0)],
                    0.0)
        # Credit reaches at most the basket position held: |p| <= |h_b| (<= l_b + s_b).
        in_t = H.basket < n
        bt, bf = np.flatnonzero(in_t), np.flatnonzero(~in_t)
        h0_basket = np.abs(np.concatenate([np.zeros(n), d.fixed.h0])[H.basket])
        mb.add_rows("hedge_cap", "definition", "nonneg", k,
                    [coo(bt, w[bt], 1.0), coo(bt, v["l"][H.basket[bt]], -1.0),
                     coo(bt, v["s"][H.basket[bt]], -1.0), coo(bf, w[bf], 1.0)],
                    np.where(in_t, 0.0, h0_basket))
        Vs = H.V[sup].tocoo()
        m = len(sup)
        i = np.arange(m)
        in_t = sup < n
        h0_all = np.concatenate([np.zeros(n), d.fixed.h0])
        # +/-(h_i - (V p)_i) - a_i <= 0, with h_i a constant for fixed instruments
        entries = [coo(i[in_t], v["h"][sup[in_t]], 1.0), coo(Vs.row, p[Vs.col], -Vs.data),
                   coo(i, a, -1.0),
                   coo(m + i[in_t], v["h"][sup[in_t]], -1.0),
                   coo(m + Vs.row, p[Vs.col], Vs.data), coo(m + i, a, -1.0)]
        mb.add_rows("hedge_residual", "definition", "nonneg", 2 * m, entries,
                    np.concatenate([-h0_all[sup], h0_all[sup]]))
        outside_t = np.setdiff1d(np.arange(n), sup)
        outside_f = np.setdiff1d(np.arange(n, n + d.fixed.n), sup)
        const = float(rate[outside_f] @ np.abs(h0_all[outside_f]))
        zero = np.zeros
        entries = [coo(zero(len(outside_t)), v["l"][outside_t], rate[outside_t]),
                   coo(zero(len(outside_t)), v["s"][outside_t], rate[outside_t]),
                   coo(zero(m), a, rate[sup]), coo(zero(k), w, H.rate)]
        viol = self._violation(block, "upper", 1)
        if viol is not None:
            entries.append(coo([0], viol, -1.0))
        self.rows[block.spec.name]["upper"] = mb.add_rows(
            block.spec.name, "constraint", "nonneg", 1, entries, block.hi[0] - const,
            labels=block.labels, side="upper", scale=block.scale)

    def _risk_limit(self, block: ConstraintBlock) -> None:
        st = self.st
        tr = block.transform
        factor = tr == "factor_risk" or st.risk_terms in ("full", "factor")
        idio = tr != "factor_risk" and st.risk_terms in ("full", "idio")
        entries, b, m = self._risk_entries(1, factor, idio, active=(tr == "tracking"))
        viol = self._violation(block, "upper", 1)
        if viol is not None:
            entries.append(coo([0], viol, -1.0))
        self.rows[block.spec.name]["upper"] = self.mb.add_rows(
            block.spec.name, "constraint", "soc", m + 1, entries,
            np.concatenate([[block.hi[0]], b]), labels=np.array([""] * (m + 1), dtype=object),
            side="upper", scale=block.scale)

    def integer_lots(self) -> None:
        """MOSEK's mixed-integer path: market trades in whole lots (contracts for futures),
        flows in whole creation units or contracts: h - h0 - V k = lot_value * n, n integer.
        """
        d, mb, v = self.d, self.mb, self.var
        n = d.n
        lot_value = d.lot_size * d.unit_value / d.nav
        lots = v["lots"] = mb.variables("lots", n)
        i = np.arange(n)
        entries = [coo(i, v["h"], 1.0), coo(i, lots, -lot_value)]
        if "k_flow" in v:
            units = v["flow_units"] = mb.variables("flow_units", d.flows.size)
            j = np.arange(d.flows.size)
            mb.add_rows("flow_units", "definition", "zero", d.flows.size,
                        [coo(j, v["k_flow"], 1.0), coo(j, units, -d.flows.unit_notional)], 0.0)
            V = d.flows.V.tocoo()
            entries.append(coo(V.row, v["k_flow"][V.col], -V.data))
            self.integers.append(units)
        mb.add_rows("whole_lots", "definition", "zero", n, entries, d.tradable.h0)
        self.integers.append(lots)

    def run(self) -> Model:
        self.core()
        if not self.elastic:
            self.costs()
            self.objective()
        for block in self.blocks:
            self.constraint(block)
        if self.whole_lots:
            self.integer_lots()
        program = self.mb.program(OBJECTIVE_SCALE)
        if self.integers:
            program.integer_vars = np.concatenate(self.integers)
        return Model(self.d, self.st, program, self.var, self.rows, self.violations,
                     self.blocks, self.elastic, self.R)


def _sub(block: ConstraintBlock, rows: np.ndarray) -> ConstraintBlock:
    return ConstraintBlock(block.spec, block.transform, block.labels[rows], block.S[rows],
                           block.const[rows], block.lo[rows], block.hi[rows], block.scale[rows])


def build_model(data: ProblemData, blocks: list[ConstraintBlock],
                settings: OptimizationSettings, elastic: bool = False,
                impact_cone: str = "soc", whole_lots: bool = False) -> Model:
    """The program for the problem; with elastic=True, the phase that measures how far
    each hard constraint must move for the problem to become feasible; with
    whole_lots=True, the mixed-integer program MOSEK solves (trades in whole lots)."""
    return _Build(data, settings, blocks, elastic, impact_cone, whole_lots).run()
