"""The data validation report, as a dict (for --json) and as terminal tables."""

from __future__ import annotations

from typing import Any

import polars as pl
from rich.console import Console
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
            detail.add_row(_sev(d["severity"]), d["code"], d["instrument_id"] or "",
                           d["table"], d["message"])
        console.print(detail)
        rest = len(report["diagnostics"]) - len(rows)
        if rest > 0:
            console.print(f"... {rest:,} more (use --limit N or --json)")
    verdict = ("[bold red]FAILED[/]: fix the errors above" if report["errors"]
               else "[bold green]OK[/]")
    console.print(f"{verdict}  ({report['errors']} errors, {report['warnings']} warnings)")


def _sev(severity: str) -> str:
    return {"error": "[red]error[/]", "warning": "[yellow]warning[/]"}.get(severity, severity)


def diagnostics_frame(report: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(report["diagnostics"])
