"""Optimization Settings: how the objective is formed (platform spec section 10).

One dense row per setting, "label  [field]  help", grouped under small section titles in a
scrolling column that fits 80x24. Every field is checked by OptimizationSettings itself as
it is typed (screens/forms.py); a valid change posts ConfigChanged with a reason such as
"risk aversion 2 -> 5". The numeraire asks for the data to be reloaded (NAV, FX and costs
are all in it); nothing else here does.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll

from screens.forms import ConfigForm, FormField, note, section

O = "optimization"


def _f(*path: str, label: str, kind: str, help: str = "", **kw) -> FormField:
    return FormField(path=path, label=label, kind=kind, help=help, **kw)


SECTIONS: list[tuple[str, list[FormField]]] = [
    ("Objective", [
        _f(O, "objective", label="objective", kind="choice",
           choices=("utility", "min_total_risk", "min_factor_risk", "target_exposures"),
           help="utility: alpha - risk - costs"),
        _f(O, "relative_to_benchmark", label="relative to benchmark", kind="bool",
           help="active risk and exposures"),
        _f(O, "risk_aversion", label="risk aversion", kind="number",
           help="lambda on horizon variance"),
        _f(O, "use_alpha", label="use alpha", kind="bool", help="alpha forecasts enter"),
        _f(O, "alpha_scale", label="alpha scale", kind="number", help="multiplier on alpha"),
        _f(O, "horizon_days", label="horizon days", kind="int",
           help="one period of this many days"),
        _f(O, "risk_terms", label="risk terms", kind="choice",
           choices=("full", "factor", "idio"),
           help="full, factor-only or specific-only"),
    ]),
    ("Costs", [
        _f(O, "costs", "linear", label="linear", kind="bool",
           help="half spread + commission"),
        _f(O, "costs", "impact", label="impact", kind="bool",
           help="market impact, 3/2-power"),
        _f(O, "costs", "impact_curve", label="impact curve", kind="bool",
           help="the desk's curve where given"),
        _f(O, "costs", "borrow", label="borrow", kind="bool", help="borrow fee on shorts"),
        _f(O, "costs", "financing", label="financing", kind="bool",
           help="financing on longs"),
        _f(O, "costs", "dividends", label="dividends", kind="bool",
           help="only when alpha is price return"),
        _f(O, "costs", "scale", label="cost scale", kind="number",
           help="multiplier on all trading costs"),
    ]),
    ("Synthetics", [
        _f(O, "synthetics", "allow_create_redeem", label="create/redeem", kind="bool",
           help="ETF units against their baskets"),
        _f(O, "synthetics", "create_redeem_cost_bps", label="create/redeem cost bp",
           kind="number", help="fee + slippage, bp of notional"),
        _f(O, "synthetics", "max_redeem_notional", label="max redeem notional",
           kind="optional_number", placeholder="no limit",
           help="per ETF, numeraire; empty: none"),
        _f(O, "synthetics", "allow_efp", label="EFP", kind="bool",
           help="futures for their baskets"),
        _f(O, "synthetics", "efp_cost_bps", label="EFP cost bp", kind="number",
           help="fees + basis, bp of notional"),
    ]),
    ("Margin", [
        _f(O, "margin_hedge_credit", label="hedge credit", kind="bool",
           help="basket+legs at the synthetic rate"),
    ]),
    ("Representation", [
        _f(O, "representation", label="representation", kind="choice",
           choices=("shares", "notional", "weights"),
           help="how positions and trades are shown"),
    ]),
    ("Currency", [
        _f("numeraire", label="numeraire", kind="upper", reload_data=True,
           help="NAV, risk, costs; reloads the data"),
        _f(O, "fx_factor_risk", label="FX factor risk", kind="bool",
           help="foreign cash on its FX factor"),
        _f(O, "fx_cost_bps", label="FX cost bp", kind="number",
           help="per FX trade, bp of notional"),
    ]),
    ("Discrete", [
        _f(O, "discrete", "min_trade_pct", label="min trade %NAV", kind="number",
           help="drop smaller trades; 0 = off"),
        _f(O, "discrete", "min_holding_pct", label="min holding %NAV", kind="number",
           help="close smaller positions; 0 = off"),
        _f(O, "discrete", "max_positions", label="max positions", kind="optional_int",
           placeholder="no limit", help="empty = no limit"),
        _f(O, "discrete", "max_trades", label="max trades", kind="optional_int",
           placeholder="no limit", help="empty = no limit"),
    ]),
    ("Model", [
        _f(O, "look_through", label="look-through", kind="bool",
           help="ETFs, futures via constituents"),
        _f(O, "time_limit_s", label="time limit s", kind="number",
           help="the solver stops after this"),
    ]),
]

MARGIN_NOTE = "margin budgets are constraints: set them on the Constraints tab (3)"


class SettingsTab(ConfigForm):
    """The "4 Optimization Settings" tab. `show_config(config, path)` is called by the app."""

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="settings-form", can_focus=False):
            for title, fields in SECTIONS:
                yield section(title)
                for field in fields:
                    yield self.row(field)
                if title == "Margin":
                    yield note(MARGIN_NOTE, id="margin-note")
                if title == "Objective":
                    yield note("", id="targets-note")

    def refresh_extras(self) -> None:
        opt = self.config.optimization
        targets = self.query_one("#targets-note")
        targets.display = opt.objective == "target_exposures"
        n = len(opt.factor_targets)
        targets.update(f"factor targets: {n} set in [optimization.factor_targets] "
                       "(edit the TOML)" if n else
                       "no factor targets: add [optimization.factor_targets] to the TOML")
