"""The data validation report, as a dict (for --json) and as terminal tables."""

from __future__ import annotations

from typing import Any

import polars as pl
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from console.state import AppState


def validation_report(state: AppState) -> dict[str, Any]:
    uni = state.universe
    ds = state.dataset
    diags = uni.diagnostics
    counts = (diags.group_by("severity", "code").len().sort("severity", "code")
              .to_dicts())
    return {
        "run_id": state.run_id,
        "account": state.config.account,
        "as_of": uni.as_of.isoformat(),
        "numeraire": uni.numeraire,
        "data_dir": str(state.config.data_dir()),
        "tables": {
            name: {"rows": t.frame.height, "rows_read": t.rows_read,
                   "rows_dropped": t.rows_dropped,
                   "path": str(t.path) if t.path else None}
            for name, t in ds.tables.items()
        },
        "universe_rows": uni.frame.height,
        "summary": uni.summary,
        "factor_model": {"name": uni.factor_model.set_name, "factors": uni.factor_model.size},
        "errors": int((diags.get_column("severity") == "error").sum()),
        "warnings": int((diags.get_column("severity") == "warning").sum()),
        "diagnostic_counts": counts,
        "diagnostics": diags.to_dicts(),
        "timings": state.timings,
    }


def print_validation(report: dict[str, Any], limit: int = 20,
                     console: Console | None = None) -> None:
    console = console or Console(highlight=False)
    s = report["summary"]
    ccy = report["numeraire"]
    console.print(f"[bold]spo data validate[/]  account {report['account']}  as of "
                  f"{report['as_of']}  numeraire {ccy}  data {report['data_dir']}")

    tables = Table(title="Tables", title_justify="left", box=None, pad_edge=False)
    for col, justify in (("table", "left"), ("rows", "right"), ("dropped", "right"),
                         ("file", "left")):
        tables.add_column(col, justify=justify)
    for name, t in report["tables"].items():
        dropped = str(t["rows_dropped"]) if t["rows_dropped"] else ""
        tables.add_row(name, f"{t['rows']:,}", dropped, t["path"] or "(absent, optional)")
    tables.add_row("[bold]universe[/]", f"[bold]{report['universe_rows']:,}[/]", "", "")
    console.print(tables)

    console.print(
        f"NAV {s['nav']:,.0f} {ccy}   gross {s['gross']:,.0f}   net {s['net']:,.0f}   "
        f"long {s['long']:,.0f}   short {s['short']:,.0f}   leverage {s['leverage']:.2f}x   "
        f"positions {s['positions']:,}   tradable {s['tradable']:,} of {s['instruments']:,}   "
        f"factors {report['factor_model']['factors']} ({report['factor_model']['name']})")

    if report["diagnostic_counts"]:
        counts = Table(title="Diagnostics", title_justify="left", box=None, pad_edge=False)
        counts.add_column("severity")
        counts.add_column("code")
        counts.add_column("count", justify="right")
        for row in report["diagnostic_counts"]:
            counts.add_row(_sev(row["severity"]), row["code"], f"{row['len']:,}")
        console.print(counts)
        rows = report["diagnostics"][:limit]
        detail = Table(box=None, pad_edge=False)
        for col in ("severity", "code", "instrument", "table", "message"):
            detail.add_column(col, overflow="fold")
        for d in rows:
            detail.add_row(_sev(d["severity"]), d["code"], escape(d["instrument_id"] or ""),
                           d["table"], escape(d["message"]))
        console.print(detail)
        rest = len(report["diagnostics"]) - len(rows)
        if rest > 0:
            console.print(f"... {rest:,} more (use --limit N or --json)")
    verdict = ("[bold red]FAILED[/]: fix the errors above" if report["errors"]
               else "[bold green]OK[/]")
    console.print(f"{verdict}  ({report['errors']} errors, {report['warnings']} warnings)")


def _sev(severity: str) -> str:
    return {"error": "[red]error[/]", "warning": "[yellow]warning[/]"}.get(severity, severity)



NO_SOLUTION = {
    "time_limit": "the solver reached the time limit before the optimum. Fix: raise "
                  "[optimization] time_limit_s, or remove constraints you do not need",
    "iteration_limit": "the solver ran out of iterations. Fix: check for bounds far outside "
                       "the book's scale (units: %NAV vs notional), or try solver = mosek",
    "numerical_error": "the solver stopped on a numerical difficulty. Fix: check for bounds "
                       "far outside the book's scale or near-duplicate constraints, or try "
                       "solver = mosek",
    "cancelled": "the solve was cancelled",
    "unbounded": "the utility can grow without limit. Fix: add a gross_exposure or "
                 "leverage limit, or raise risk_aversion",
}


def print_solve(result, files: dict, state: AppState, console: Console | None = None,
                top: int = 10) -> None:
    """The terminal report of `spo solve`: what came out, and why."""
    console = console or Console(highlight=False)
    s = result.summary
    ccy = s["numeraire"]
    console.print(f"[bold]spo solve[/]  run {state.run_id}  account {state.config.account}  "
                  f"NAV {s['nav']:,.0f} {ccy}")
    console.print(f"solver: {result.solver_reason}; status [bold]{result.status}[/] "
                  f"in {s['iterations']} iterations, "
                  + ", ".join(f"{k[:-2]} {v:.3f}s" for k, v in result.timings.items()))
    for note in result.solved.notes:
        console.print(f"[yellow]note[/]: {escape(note)}")
    if not result.ok:
        why = NO_SOLUTION.get(result.status)
        if why:
            console.print(f"[bold red]No solution[/]: {why}")
        if result.relaxation is not None and result.relaxation.height:
            console.print("[bold red]No portfolio satisfies every hard constraint.[/] "
                          "The smallest relaxations that restore feasibility:")
            for msg in result.relaxation.get_column("message").head(top):
                console.print(f"  - {escape(msg)}")
            if result.solved.conflicts:
                console.print("Conflicting constraints: "
                              + escape(", ".join(result.solved.conflicts)))
        console.print(f"diagnostics: {files.get('diagnostics')}   run: {files.get('run')}")
        return
    rb, ra = s["risk"]["before"], s["risk"]["after"]
    bb, ba = s["book"]["before"], s["book"]["after"]
    t = Table(box=None, pad_edge=False, title="Post-trade", title_justify="left")
    for c, j in (("", "left"), ("before", "right"), ("after", "right")):
        t.add_column(c, justify=j)
    t.add_row("utility", "", f"{s['utility_bp']:,.2f} bp")
    t.add_row("alpha", f"{s['alpha_bp']['before']:,.1f} bp", f"{s['alpha_bp']['after']:,.1f} bp")
    t.add_row("total risk", f"{rb['total_pct']:.2f}%", f"{ra['total_pct']:.2f}%")
    t.add_row("  factor / specific", f"{rb['factor_pct']:.2f}% / {rb['idio_pct']:.2f}%",
              f"{ra['factor_pct']:.2f}% / {ra['idio_pct']:.2f}%")
    for k in ("gross_pct", "net_pct", "long_pct", "short_pct", "cash_pct"):
        t.add_row(k[:-4], f"{bb[k]:.1f}%", f"{ba[k]:.1f}%")
    t.add_row("positions", f"{bb['positions']:,}", f"{ba['positions']:,}")
    console.print(t)
    costs = ", ".join(f"{k} {v:,.2f}" for k, v in s["costs_bp"].items() if v)
    console.print(f"trades {s['trades']:,} ({s['orders']:,} orders), turnover "
                  f"{s['turnover_pct']:.1f}% NAV ({s['turnover']:,.0f} {ccy}); costs bp: {costs}; "
                  f"max trade {s['liquidity']['max_trade_adv_days'] * 100:.1f}% ADV")
    diag = result.diagnostics
    binding = (diag.filter(pl.col("binding"))
               .group_by("name", "unit", "dual_unit", maintain_order=True)
               .agg(rows=pl.len(), dual=pl.col("dual").max(),
                    label=pl.col("label").sort_by("dual", descending=True).first())
               .sort("dual", descending=True).head(top))
    if binding.height:
        b = Table(box=None, pad_edge=False, title="Binding constraints (by shadow price)",
                  title_justify="left")
        for c, j in (("constraint", "left"), ("rows", "right"), ("top", "left"),
                     ("shadow price", "right")):
            b.add_column(c, justify=j)
        for row in binding.iter_rows(named=True):
            b.add_row(escape(row["name"]), str(row["rows"]), escape(row["label"] or ""),
                      f"{row['dual']:.4g} {row['dual_unit']}")
        console.print(b)
    console.print("wrote " + escape(", ".join(str(p) for p in files.values())))


# --- run logs: `spo runs list`, `spo runs show`, and the advice after `spo solve` -----------

_SEVERITY_STYLE = {"error": "[red]error[/]", "warning": "[yellow]warning[/]",
                   "info": "[cyan]info[/]"}


def print_advice(advice, console: Console | None = None, top: int | None = None) -> None:
    """Suggestions, most severe first, each with the change that would act on it.
    One line each, never hard-wrapped: they are read, grepped and pasted."""
    console = console or Console(highlight=False)
    shown = advice if top is None else advice[:top]
    for s in shown:
        console.print(f"  {_SEVERITY_STYLE.get(s.severity, s.severity)} {s.code}: "
                      f"{escape(s.title)}", soft_wrap=True)
        if s.change is not None and s.change.ops:
            console.print(f"      change: {escape(s.change.describe())}", soft_wrap=True)
        if s.fix:
            console.print(f"      fix: {escape(s.fix)}", soft_wrap=True)
    rest = len(advice) - len(shown)
    if rest > 0:
        console.print(f"  ... {rest} more (spo runs show ID)")


def print_runs(runs, runs_dir, console: Console | None = None) -> None:
    """A compact table, newest first; plain columns so it survives a pipe or a narrow SSH
    terminal without truncating the ids a trader copies into `spo runs show`."""
    console = console or Console(highlight=False)
    if not runs:
        console.print(f"no run logs in {escape(str(runs_dir))}")
        return
    width = max(len("run"), *(len(r.run_id) for r in runs))
    console.print(f"{'run':<{width}}  {'finished':<19}  {'account':<10}  {'status':<15}  "
                  f"{'utility bp':>11}  {'solve s':>7}  {'advice':>6}", soft_wrap=True)
    for r in runs:
        if r.problem:
            console.print(f"{escape(r.run_id):<{width}}  [red]unreadable[/]: "
                          f"{escape(r.problem)}", soft_wrap=True)
            continue
        utility = "" if r.utility_bp is None else f"{r.utility_bp:,.2f}"
        console.print(f"{escape(r.run_id):<{width}}  {r.finished_at:%Y-%m-%d %H:%M:%S}  "
                      f"{escape(r.account or ''):<10}  {r.status:<15}  {utility:>11}  "
                      f"{r.solve_seconds:>7.2f}  {r.suggestions:>6}", soft_wrap=True)


def print_run(log, console: Console | None = None, top: int = 10) -> None:
    """One run log as a trader reads it: what ran, what came out, what binds, what to do."""
    console = console or Console(highlight=False)
    m, r, sv = log.meta, log.results, log.solver
    console.print(f"[bold]run {escape(m.run_id)}[/]  account {escape(m.account)}  as of "
                  f"{m.as_of:%Y-%m-%d %H:%M}  finished {m.finished_at:%Y-%m-%d %H:%M:%S}  "
                  f"by {escape(m.user)}@{escape(m.host)}")
    console.print(f"solver: {escape(sv.reason)}; status [bold]{sv.status}[/] in "
                  f"{sv.iterations} iterations, {sum(sv.timings.values()):.2f}s")
    qc = log.data_qc
    counts = ", ".join(f"{n} {s}" for s, n in sorted(qc.by_severity.items())) or "none"
    console.print(f"data: {qc.instruments:,} instruments, {qc.tradable:,} tradable; "
                  f"diagnostics {counts}")
    ccy = r.numeraire
    if r.utility_bp is not None:
        rb, ra = r.risk.get("before", {}), r.risk.get("after", {})
        bb, ba = r.book.get("before", {}), r.book.get("after", {})
        console.print(
            f"utility {r.utility_bp:,.2f} bp   risk {rb.get('total_pct', 0):.2f}% -> "
            f"{ra.get('total_pct', 0):.2f}%   gross {bb.get('gross_pct', 0):.1f}% -> "
            f"{ba.get('gross_pct', 0):.1f}%   net {bb.get('net_pct', 0):.1f}% -> "
            f"{ba.get('net_pct', 0):.1f}% of NAV {r.nav:,.0f} {ccy}")
        console.print(f"trades {r.trades:,}, turnover {r.turnover_pct or 0:.1f}% NAV, "
                      f"trading cost {r.trading_cost_bp or 0:,.2f} bp, margin used "
                      f"{(r.margin.get('used') or 0):,.0f} {ccy}")
    # One line per constraint, its priciest row first: a per-name limit binding in 300
    # names is one decision, not 300.
    by_name: dict[str, list] = {}
    for c in sorted((c for c in sv.constraints if c.binding), key=lambda c: -(c.dual or 0.0)):
        by_name.setdefault(c.name, []).append(c)
    if by_name:
        b = Table(box=None, pad_edge=False, title="Binding constraints (by shadow price)",
                  title_justify="left")
        for c, j in (("constraint", "left"), ("rows", "right"), ("top", "left"),
                     ("value", "right"), ("lower", "right"), ("upper", "right"),
                     ("shadow price", "right")):
            b.add_column(c, justify=j, no_wrap=True)
        fmt = lambda x: "" if x is None else f"{x:,.4g}"  # noqa: E731
        binding_rows = {t.name: t.binding for t in sv.constraint_totals}
        for name, rows in list(by_name.items())[:top]:
            c = rows[0]
            b.add_row(escape(name), str(binding_rows.get(name, len(rows))), escape(c.label),
                      fmt(c.value), fmt(c.lower), fmt(c.upper), f"{fmt(c.dual)} {c.dual_unit}")
        console.print(b)
    if sv.relaxation:
        console.print("[bold red]Infeasible.[/] The smallest relaxations that restore "
                      "feasibility:")
        for row in sv.relaxation[:top]:
            console.print(f"  - {escape(row.message)}", soft_wrap=True)
        if sv.conflicts:
            console.print("Conflicting constraints: " + escape(", ".join(sv.conflicts)),
                          soft_wrap=True)
    for note in sv.notes:
        console.print(f"[yellow]note[/]: {escape(note)}", soft_wrap=True)
    if log.advice:
        console.print(f"[bold]Advice[/] ({len(log.advice)})")
        print_advice(log.advice, console)
    elif log.advice_error:
        console.print(f"[yellow]advice unavailable[/]: {escape(log.advice_error)}")
    else:
        console.print("Advice: none")
