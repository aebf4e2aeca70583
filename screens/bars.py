"""Horizontal bar charts for the results: risk decomposition and margin usage.

Plain text with eighth-block characters, so they draw the same over SSH, in 256 colours and
at 80 columns: a bar chart is a few rows of a blotter, not a picture. The charts are pure
functions of the post-trade summary (core/results.py) and the width they get.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widget import Widget

EIGHTHS = " ▏▎▍▌▋▊▉█"
LABEL = 14


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    note: str = ""  # printed after the value, e.g. "before 1.2m"


def bar_text(value: float, scale: float, width: int) -> str:
    """`value` as a bar of at most `width` cells, where `scale` fills them all."""
    if scale <= 0 or width <= 0:
        return ""
    eighths = round(min(abs(value) / scale, 1.0) * width * 8)
    full, part = divmod(eighths, 8)
    return "█" * full + (EIGHTHS[part] if part else "")


def chart(title: str, bars: list[Bar], width: int, unit: str, *,
          scale: float | None = None, fmt=lambda v: f"{v:,.1f}") -> Text:
    """One titled block of bars; negative values draw in another colour."""
    out = Text(title + "\n", style="bold")
    if not bars:
        out.append("  (nothing to show)\n", style="dim")
        return out
    values = [fmt(b.value) + unit for b in bars]
    value_w = max(len(v) for v in values)
    note_w = max(len(b.note) for b in bars)
    bar_w = max(4, width - LABEL - value_w - (note_w + 2 if note_w else 0) - 3)
    top = scale if scale else max(abs(b.value) for b in bars) or 1.0
    for b, v in zip(bars, values):
        out.append(f"{b.label[:LABEL]:<{LABEL}} ")
        drawn = bar_text(b.value, top, bar_w)
        out.append(f"{drawn:<{bar_w}}", style="red" if b.value < 0 else "green")
        out.append(f" {v:>{value_w}}")
        if note_w:
            out.append(f"  {b.note}", style="dim")
        out.append("\n")
    return out


def money(x: float) -> str:
    for size, suffix in ((1e9, "bn"), (1e6, "m"), (1e3, "k")):
        if abs(x) >= size:
            return f"{x / size:,.1f}{suffix}"
    return f"{x:,.0f}"


def risk_chart(summary: dict, width: int, top: int = 8) -> Text:
    """Share of the post-trade variance by factor kind and specific, then the top factors.

    Shares can be negative (a factor that hedges the rest), which is why they are shares of
    variance and not of volatility: they add up to 100%.
    """
    risk = summary["risk"]
    by_kind: dict[str, float] = {}
    for f in summary["factors"]:
        by_kind[f["kind"]] = by_kind.get(f["kind"], 0.0) + f["risk_contribution_pct"]
    factor_share = sum(by_kind.values())
    kinds = sorted(by_kind.items(), key=lambda kv: -abs(kv[1]))
    bars = [Bar(kind, share) for kind, share in kinds]
    bars.append(Bar("specific", 100.0 - factor_share if factor_share or risk["after"][
        "total_pct"] else 0.0))
    before, after = risk["before"], risk["after"]
    out = Text()
    out.append(f"total risk {before['total_pct']:.2f}% -> {after['total_pct']:.2f}%   "
               f"factor {after['factor_pct']:.2f}%   specific {after['idio_pct']:.2f}%\n",
               style="dim")
    out.append(chart("risk decomposition (share of variance after the trades)", bars, width,
                     "%", scale=100.0))
    biggest = sorted(summary["factors"], key=lambda f: -abs(f["risk_contribution_pct"]))[:top]
    out.append("\n")
    out.append(chart(f"top {len(biggest)} factors", [
        Bar(f["factor"], f["risk_contribution_pct"],
            f"exposure {f['exposure_before']:+.2f} -> {f['exposure_after']:+.2f}")
        for f in biggest], width, "%"))
    return out


def margin_chart(summary: dict, width: int, group: str = "sector") -> Text:
    """Initial margin used against the budget, then by group after the trades."""
    m = summary.get("margin") or {}
    out = Text()
    if not m:
        return Text("no margin model in this run's data\n", style="dim")
    used, budget = m["used"], m.get("budget")
    saved = m["used_without_hedge_credit"] - used
    total = [Bar("used after", used, f"before {money(m['before']['used'])}"),
             Bar("no hedge cr.", m["used_without_hedge_credit"],
                 f"hedges save {money(saved)}")]
    if budget:
        total.insert(0, Bar("budget", budget, f"{100 * used / budget:.0f}% used"))
    out.append(chart(f"initial margin ({summary.get('numeraire', '')})", total, width, "",
                     fmt=money))
    rows = (m.get("by_group") or {}).get(group) or []
    rows = sorted(rows, key=lambda r: -r["after"])
    out.append("\n")
    out.append(chart(f"margin by {group} after the trades (before hedge credit)", [
        Bar(str(r["group"]), r["after"], f"before {money(r['before'])}") for r in rows],
        width, "", fmt=money))
    return out


class BarChart(Widget):
    """Renders one chart function at whatever width the pane has."""

    DEFAULT_CSS = "BarChart { height: auto; }"

    def __init__(self, draw, summary: dict, **kwargs) -> None:
        super().__init__(**kwargs)
        self.draw = draw
        self.summary = summary

    def render(self) -> Text:
        return self.draw(self.summary, max(self.size.width, 40))

    def get_content_height(self, container, viewport, width: int) -> int:
        return len(self.draw(self.summary, max(width, 40)).plain.splitlines())
