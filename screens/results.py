"""Run & Results: solve with live progress, then what came out and why.

The solve itself runs in the app's thread worker (ctrl+r, Esc cancels); this tab shows the
progress line, a compact post-trade summary, and the result tables in a FrameBrowser:
trades, orders, binding constraints by the size of their shadow price, the relaxation report
when nothing is feasible, margin and risk by factor, and the change against the previous
solve.
"""

from __future__ import annotations

import polars as pl
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Static

from screens.bars import margin_chart, risk_chart
from screens.data import FrameBrowser


def binding_frame(diagnostics: pl.DataFrame) -> pl.DataFrame:
    """Binding rows, largest shadow price first, with its unit."""
    return (diagnostics.filter(pl.col("binding"))
            .sort("dual", descending=True)
            .select("name", "label", pl.col("value").round(4), "lower", "upper",
                    pl.col("dual").round(4), "dual_unit", pl.col("violation").round(4),
                    "unit"))


def trades_frame(result, representation: str = "shares") -> pl.DataFrame:
    """The trades in the settings' representation: its column leads, the others follow.

    Money in whole units of the numeraire, rates to 2 dp: a blotter, not a dump."""
    nav = result.summary["nav"]
    t = result.trades.select(
        "ticker", "side", pl.col("shares").cast(pl.Int64),
        pl.col("notional").round(0).cast(pl.Int64),
        weight_pct=(pl.col("notional") / nav * 100).round(3),
        cost=pl.col("cost").round(0).cast(pl.Int64), cost_bps=pl.col("cost_bps").round(2),
        price=pl.col("price"), currency=pl.col("currency"),
        instrument_id=pl.col("instrument_id"))
    lead = {"shares": "shares", "notional": "notional", "weights": "weight_pct"}[
        representation]
    rest = [c for c in ("shares", "notional", "weight_pct") if c != lead]
    return t.select("ticker", "side", lead, *rest, "cost", "cost_bps", "price", "currency",
                    "instrument_id")


def result_frames(result, previous=None, representation: str = "shares"
                  ) -> dict[str, pl.DataFrame]:
    s = result.summary
    frames: dict[str, pl.DataFrame] = {}
    if result.relaxation is not None and result.relaxation.height:
        frames["relaxation"] = result.relaxation.select("message", "name", "label", "bound",
                                                       "current", "relaxed_to", "unit")
    if result.ok:
        frames["trades"] = trades_frame(result, representation)
        frames["orders"] = result.orders
    if result.ok or result.status == "infeasible":
        # A cancelled or failed solve has no solution to measure the constraints at.
        frames["binding"] = binding_frame(result.diagnostics)
        frames["constraints"] = result.diagnostics
    frames["risk by factor"] = pl.DataFrame(s["factors"]).sort(
        "risk_contribution_pct", descending=True)
    margin = s.get("margin") or {}
    if margin.get("by_group"):
        frames["margin by sector"] = pl.DataFrame(margin["by_group"]["sector"])
    if result.flows is not None and result.flows.height:
        frames["flows"] = result.flows
    if result.fx_orders is not None and result.fx_orders.height:
        frames["fx orders"] = result.fx_orders
    if previous is not None and previous.ok and result.ok:
        frames["change vs previous"] = change_frame(previous, result)
    return frames


def result_charts(result) -> dict[str, tuple]:
    """Bar charts listed beside the tables: risk by factor kind, margin used by sector."""
    if not result.ok:
        return {}
    return {"risk decomposition": (risk_chart, result.summary),
            "margin usage": (margin_chart, result.summary)}


def change_frame(previous, current) -> pl.DataFrame:
    """Instruments whose target moved between two solves."""
    cols = ["instrument_id", "ticker", "shares_after"]
    a = previous.optimal.select(cols).rename({"shares_after": "shares_previous"})
    b = current.optimal.select(cols)
    joined = a.join(b, on=["instrument_id"], how="full", coalesce=True, suffix="_now")
    return joined.select(
        "instrument_id", ticker=pl.coalesce("ticker_now", "ticker"),
        shares_previous=pl.col("shares_previous").fill_null(0.0),
        shares_now=pl.col("shares_after").fill_null(0.0),
    ).with_columns(change=pl.col("shares_now") - pl.col("shares_previous")).filter(
        pl.col("change").abs() >= 0.5  # whole shares; below is the solver's rounding noise
    ).with_columns(pl.col("shares_previous", "shares_now", "change").round(0).cast(pl.Int64)
                   ).sort(pl.col("change").abs(), descending=True)


def summary_text(result) -> str:
    s = result.summary
    if not result.ok:
        lines = [f"status {result.status}: no portfolio satisfies every hard constraint"
                 if result.status == "infeasible" else f"status {result.status}: no solution"]
        if result.solved.conflicts:
            lines.append("conflicting: " + ", ".join(result.solved.conflicts[:6]))
        return "\n".join(lines)
    rb, ra = s["risk"]["before"], s["risk"]["after"]
    bb, ba = s["book"]["before"], s["book"]["after"]
    costs = s["trading_cost_bp"]
    return "\n".join([
        f"utility {s['utility_bp']:,.2f} bp   alpha {s['alpha_bp']['before']:,.1f} -> "
        f"{s['alpha_bp']['after']:,.1f} bp   risk {rb['total_pct']:.2f}% -> "
        f"{ra['total_pct']:.2f}% (factor {ra['factor_pct']:.2f}, specific {ra['idio_pct']:.2f})",
        f"gross {bb['gross_pct']:.1f} -> {ba['gross_pct']:.1f}%   net {bb['net_pct']:.1f} -> "
        f"{ba['net_pct']:.1f}%   turnover {s['turnover_pct']:.1f}%   trades {s['trades']:,}   "
        f"trading cost {costs:.2f} bp",
    ] + [f"note: {n}" for n in result.solved.notes[:2]])


def validation_line(checks: pl.DataFrame, data: pl.DataFrame) -> str:
    """"constraints: 1 error, 2 warnings | data: 0 errors, 4 warnings - ..." in one line."""
    def counts(frame: pl.DataFrame) -> str:
        n = {sev: frame.filter(pl.col("severity") == sev).height
             for sev in ("error", "warning")}
        return f"{n['error']} error(s), {n['warning']} warning(s)"

    errors = checks.filter(pl.col("severity") == "error").height + data.filter(
        pl.col("severity") == "error").height
    verdict = ("errors first: the solve would stop or relax" if errors
               else "ready: ctrl+r solves")
    return f"validated  constraints: {counts(checks)} | data: {counts(data)} - {verdict}"


def advice_frame(advice: list) -> pl.DataFrame:
    """The suggestions as rows; `#` maps a (filtered, sorted) row back to its suggestion."""
    return pl.DataFrame({
        "#": list(range(len(advice))),
        "severity": [s.severity for s in advice],
        "suggestion": [s.title for s in advice],
        "gain_bp": [None if s.utility_gain_bp is None else round(s.utility_gain_bp, 2)
                    for s in advice],
        "change": [s.change.describe() if s.change else (s.fix or "") for s in advice],
        "code": [s.code for s in advice],
    }, schema={"#": pl.Int64, "severity": pl.String, "suggestion": pl.String,
               "gain_bp": pl.Float64, "change": pl.String, "code": pl.String})


class RunResults(Vertical, can_focus=True):
    """The Run & Results tab (focusable, so Esc reaches the app while a solve runs)."""

    BINDINGS = [Binding("a", "apply_advice", "Apply advice", id="advice.apply")]

    class ApplyAdvice(Message):
        """Apply this suggestion's change to the config and solve again."""

        def __init__(self, suggestion) -> None:
            super().__init__()
            self.suggestion = suggestion

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.advice: list = []

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "apply_advice":
            return self.query_one(FrameBrowser).current == "advice" and bool(self.advice)
        return True

    def action_apply_advice(self) -> None:
        browser = self.query_one(FrameBrowser)
        if browser.shown is None or not browser.shown.height:
            return
        row = min(self.query_one("#results-browser #grid").cursor_row, browser.shown.height - 1)
        suggestion = self.advice[browser.shown.item(row, "#")]
        if suggestion.change is None or not suggestion.change.ops:
            self.app.notify(f"nothing to apply: {suggestion.fix or suggestion.title}",
                            markup=False)
            return
        self.post_message(self.ApplyAdvice(suggestion))

    async def show_validation(self, checks: pl.DataFrame, data: pl.DataFrame) -> None:
        """Before a solve: what would stop it or make it mean less, data and constraints."""
        self.show_progress(validation_line(checks, data))
        self.query_one("#summary", Static).update("")
        self.advice = []
        browser = self.query_one(FrameBrowser)
        browser.current = "pre-solve checks"
        await browser.show_frames({"pre-solve checks": checks, "data diagnostics": data})

    def compose(self) -> ComposeResult:
        yield Static("ctrl+v validates, ctrl+r solves the current constraints and settings",
                     id="progress")
        yield Static("", id="summary")
        yield FrameBrowser("trades", id="results-browser")

    def show_progress(self, text: str) -> None:
        self.query_one("#progress", Static).update(text)

    async def show_result(self, result, previous=None, advice=None, log_path=None,
                          representation: str = "shares") -> None:
        t = result.timings
        total = sum(t.values())
        logged = f"   log {log_path.name}" if log_path is not None else ""
        self.show_progress(f"{result.status} in {result.summary['iterations']} iterations, "
                           f"{self.app.seconds(total)} ({result.solver_reason}){logged}")
        self.query_one("#summary", Static).update(summary_text(result))
        browser = self.query_one(FrameBrowser)
        frames = result_frames(result, previous, representation)
        self.advice = list(advice or [])
        if self.advice:
            # Right after the relaxation report (when infeasible), before the trades.
            first = {k: frames.pop(k) for k in ("relaxation",) if k in frames}
            frames = {**first, "advice": advice_frame(self.advice), **frames}
        charts = result_charts(result)
        browser.current = "relaxation" if "relaxation" in frames else (
            browser.current if browser.current in (*frames, *charts) else next(iter(frames)))
        await browser.show_frames(frames, charts)
