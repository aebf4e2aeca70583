"""Advice on hand-made books with known problems: the rule fires, names the culprit, and its
change, applied and re-solved, does what the suggestion says."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from books import AS_OF, book_config, book_tables, flows_tables, write_book
from console.state import AppState
from core.advice import (
    ConfigChange, DisableConstraint, SetBound, SetSetting, Suggestion, advise, apply_change,
)
from core.errors import ConfigError
from core.results import optimize

TECH_CAP = {"kind": "group_net", "group_by": "sector", "group": "Tech", "upper": 5.0}
GROSS_CAP = {"kind": "gross_exposure", "upper": 300.0}


def solve(config, universe=None):
    universe = universe or AppState(config).load()
    result = optimize(universe, config.all_constraints(), config.optimization,
                      solver="clarabel")
    return result, universe


def codes(advice: list[Suggestion]) -> list[str]:
    return [s.code for s in advice]


def only(advice: list[Suggestion], code: str) -> Suggestion:
    found = [s for s in advice if s.code == code]
    assert len(found) == 1, codes(advice)
    return found[0]


@pytest.fixture
def book_dir(tmp_path) -> Path:
    return write_book(tmp_path / "book")


def flows_book(directory: Path, etf_price: float = 30.06, fut_price: float = 1500.0) -> Path:
    return write_book(directory, flows_tables(etf_price, fut_price))


# --- 1. relaxations and tight exposures -----------------------------------------------------

def test_over_tight_sector_band_is_named_priced_and_relaxing_it_pays(book_dir):
    cfg = book_config(book_dir, optimization={"risk_aversion": 20.0},
                      constraints=[GROSS_CAP, TECH_CAP])
    result, uni = solve(cfg)
    tech = result.diagnostics.filter(pl.col("name") == "group_net[sector=Tech]").row(
        0, named=True)
    assert tech["binding"] and tech["value"] == pytest.approx(5.0, abs=1e-4)

    advice = advise(result, uni, cfg)
    tight = only(advice, "TIGHT_EXPOSURE")
    assert tight.evidence["constraint"] == "group_net[sector=Tech]"
    assert tight.evidence["side"] == "upper" and tight.evidence["proposed"] == 10.0
    # 5% of NAV times the shadow price, labelled an estimate.
    assert tight.utility_gain_bp == pytest.approx(5.0 * tech["dual"], rel=1e-9)
    assert "estimate" in tight.title and "group_net[sector=Tech]" in tight.title
    assert tight.change == ConfigChange(ops=[SetBound(
        constraint="group_net[sector=Tech]", field="upper", value=10.0)])

    relaxed_cfg = apply_change(cfg, tight.change)
    relaxed, _ = solve(relaxed_cfg, uni)
    gain = relaxed.summary["utility_bp"] - result.summary["utility_bp"]
    assert gain > 0.1
    # Utility is concave in the bound: the shadow-price estimate is an upper bound.
    assert gain <= tight.utility_gain_bp + 1e-6
    # The binding gross limit is priced the same way, as a plain relaxation.
    gross = only(advice, "RELAX_BOUND")
    assert gross.evidence["constraint"] == "gross_exposure"
    assert gross.change.ops[0].value == 305.0


def test_binding_suggestions_are_sorted_by_gain_within_severity(book_dir):
    cfg = book_config(book_dir, optimization={"risk_aversion": 20.0},
                      constraints=[GROSS_CAP, TECH_CAP])
    result, uni = solve(cfg)
    advice = advise(result, uni, cfg)
    order = {"error": 0, "warning": 1, "info": 2}
    keys = [(order[s.severity], -(s.utility_gain_bp if s.utility_gain_bp is not None
                                   else float("-inf"))) for s in advice]
    assert keys == sorted(keys)


def test_loose_band_is_info_and_tightening_it_changes_nothing(book_dir):
    wide = {"kind": "group_net", "group_by": "sector", "group": "Energy", "lower": -80.0,
            "upper": 80.0}
    cfg = book_config(book_dir, optimization={"risk_aversion": 20.0},
                      constraints=[GROSS_CAP, TECH_CAP, wide])
    result, uni = solve(cfg)
    energy = result.diagnostics.filter(pl.col("name") == "group_net[sector=Energy]").item(
        0, "value")
    assert abs(energy) < 20.0  # the book uses under a quarter of the band
    loose = only(advise(result, uni, cfg), "LOOSE_EXPOSURE")
    assert loose.severity == "info" and loose.evidence["constraint"] == "group_net[sector=Energy]"
    assert loose.evidence["realised_min"] == pytest.approx(energy)
    assert [(op.field, op.value) for op in loose.change.ops] == [("lower", -40.0),
                                                                  ("upper", 40.0)]
    tighter, _ = solve(apply_change(cfg, loose.change), uni)
    assert tighter.summary["utility_bp"] == pytest.approx(result.summary["utility_bp"],
                                                          abs=1e-3)


def test_infeasible_run_gets_relaxations_that_restore_feasibility(book_dir):
    # Net is -60% of NAV; +20% +- 1% cannot be reached trading 5% of NAV.
    cons = [{"kind": "net_exposure", "target": 20.0, "band": 1.0},
            {"kind": "turnover", "upper": 5.0}]
    cfg = book_config(book_dir, optimization={"risk_aversion": 20.0}, constraints=cons)
    result, uni = solve(cfg)
    assert result.status == "infeasible"
    advice = advise(result, uni, cfg)
    fix = advice[0]
    assert fix.code == "RELAX_INFEASIBLE" and fix.severity == "error"
    moved = {op.constraint: op for op in fix.change.ops}
    assert set(moved) <= {"net_exposure", "turnover"} and moved
    rel = result.relaxation
    for op in fix.change.ops:
        row = rel.filter((pl.col("name") == op.constraint) & (pl.col("bound") == op.field))
        # At least as far as the elastic re-solve said, never less.
        if op.field == "upper":
            assert op.value >= row.get_column("relaxed_to").max()
        else:
            assert op.value <= row.get_column("relaxed_to").min()
    feasible, _ = solve(apply_change(cfg, fix.change), uni)
    assert feasible.status == "optimal"


def test_time_limit_suggests_more_time(book_dir):
    cfg = book_config(book_dir, optimization={"risk_aversion": 20.0, "time_limit_s": 1e-6},
                      constraints=[GROSS_CAP])
    result, uni = solve(cfg)
    assert result.status == "time_limit"
    s = only(advise(result, uni, cfg), "TIME_LIMIT")
    assert s.change.ops == [SetSetting(path="optimization.time_limit_s", value=30.0)]
    assert apply_change(cfg, s.change).optimization.time_limit_s == 30.0


# --- 3. data issues ---------------------------------------------------------------------------

def test_missing_risk_row_names_the_instrument_and_the_fix(tmp_path):
    t = book_tables()
    t["risk_model"] = t["risk_model"].filter(pl.col("instrument_id") != "CCC")
    cfg = book_config(write_book(tmp_path / "book", t), optimization={"risk_aversion": 20.0},
                      constraints=[GROSS_CAP])
    result, uni = solve(cfg)
    s = only(advise(result, uni, cfg), "DATA_MISSING_RISK")
    assert s.evidence["ids"] == ["CCC"] and s.evidence["held_ids"] == ["CCC"]
    assert s.severity == "error"  # a held position whose risk is not measured
    assert "CCC" in s.title and "risk_model" in s.fix
    assert s.change is None


def test_stale_price_is_a_data_suggestion(tmp_path):
    t = book_tables()
    t["positions"] = t["positions"].with_columns(
        price_time=pl.when(pl.col("instrument_id") == "BBB")
        .then(pl.lit(AS_OF.replace(day=17))).otherwise(pl.col("price_time")))
    cfg = book_config(write_book(tmp_path / "book", t), optimization={"risk_aversion": 20.0},
                      constraints=[GROSS_CAP])
    result, uni = solve(cfg)
    s = only(advise(result, uni, cfg), "DATA_STALE_PRICE")
    assert s.evidence["ids"] == ["BBB"] and s.severity == "warning"
    assert "stale_price_hours" in s.fix


# --- 4. synthetics ----------------------------------------------------------------------------

def test_etf_arbitrage_left_unused_is_found_and_the_change_captures_it(tmp_path):
    cfg = book_config(flows_book(tmp_path / "book"), optimization={"risk_aversion": 5.0})
    result, uni = solve(cfg)
    assert result.trades.height == 0  # create/redeem off: the premium is left alone
    s = only(advise(result, uni, cfg), "ETF_ARB_UNUSED")
    etf = s.evidence["etfs"][0]
    assert etf["instrument_id"] == "ETF1" and etf["premium_bps"] == pytest.approx(20.0)
    assert etf["action"] == "create and sell"
    # 20 bp premium less the 2 bp fee and the linear costs of ETF1 (2) and its basket
    # (AAA 1.5 on 10/30 of the value, BBB 3.0 on 20/30).
    assert etf["market_cost_bps"] == pytest.approx(2.0 + 1.5 / 3 + 3.0 * 2 / 3)
    assert etf["edge_bps"] == pytest.approx(20.0 - 2.0 - 4.5)
    assert s.severity == "warning"

    on = apply_change(cfg, s.change)
    assert on.optimization.synthetics.allow_create_redeem is True
    assert cfg.optimization.synthetics.allow_create_redeem is False  # never mutated
    arb, _ = solve(on, uni)
    assert arb.flows.height == 1 and arb.flows.item(0, "direction") == "CREATE"
    assert arb.summary["utility_bp"] > result.summary["utility_bp"]
    assert "ETF_ARB_UNUSED" not in codes(advise(arb, uni, on))


def test_efp_cheaper_than_crossing_both_legs(tmp_path):
    # Switch 2 contracts of futures exposure into their basket (1,000 AAA and 1,000 BBB).
    book = flows_book(tmp_path / "book")
    uni = AppState(book_config(book)).load()
    nav = uni.nav
    pin = lambda iid, pct: {"kind": "holding", "instrument": iid, "lower": pct,  # noqa: E731
                            "upper": pct}
    cons = [pin("FUT1", -100 * 150_000 / nav), pin("AAA", 100 * 100_000 / nav),
            pin("BBB", 100 * 50_000 / nav)]
    cfg = book_config(book, optimization={"synthetics": {"efp_cost_bps": 0.5}},
                      constraints=cons)
    result, _ = solve(cfg, uni)
    s = only(advise(result, uni, cfg), "EFP_CHEAPER")
    fut = s.evidence["futures"][0]
    assert fut["instrument_id"] == "FUT1"
    assert fut["exchangeable_notional"] == pytest.approx(150_000, rel=1e-6)
    trades = {r["instrument_id"]: r for r in result.trades.to_dicts()}
    cross = (trades["FUT1"]["cost_bps"] + trades["AAA"]["cost_bps"] * 2 / 3
             + trades["BBB"]["cost_bps"] / 3)  # AAA is 50,000 of each 75,000 contract
    assert fut["cross_cost_bps"] == pytest.approx(cross)
    assert s.utility_gain_bp == pytest.approx(150_000 * (cross - 0.5) / nav)

    efp, _ = solve(apply_change(cfg, s.change), uni)
    assert efp.flows.height == 1 and efp.flows.item(0, "kind") == "efp"
    # Costs saved, less the EFP fee: the first-order estimate is what the solve finds.
    gain = efp.summary["utility_bp"] - result.summary["utility_bp"]
    assert gain == pytest.approx(s.utility_gain_bp, rel=0.05)


# --- 5. settings ------------------------------------------------------------------------------

def test_risk_aversion_that_sends_the_book_to_cash(book_dir):
    cfg = book_config(book_dir, optimization={"risk_aversion": 5000.0})
    result, uni = solve(cfg)
    book = result.summary["book"]
    assert book["after"]["gross_pct"] < 0.5 * book["before"]["gross_pct"]
    s = only(advise(result, uni, cfg), "RISK_AVERSION_CASH")
    assert s.change.ops == [SetSetting(path="optimization.risk_aversion", value=2500.0)]
    lower, _ = solve(apply_change(cfg, s.change), uni)
    assert lower.summary["book"]["after"]["gross_pct"] > book["after"]["gross_pct"]


def test_binding_risk_limit_implies_a_risk_aversion(book_dir):
    cfg = book_config(book_dir, optimization={"risk_aversion": 1.0},
                      constraints=[GROSS_CAP, {"kind": "total_risk", "upper": 10.0}])
    result, uni = solve(cfg)
    row = result.diagnostics.filter(pl.col("kind") == "total_risk").row(0, named=True)
    assert row["binding"]
    s = only(advise(result, uni, cfg), "RISK_AVERSION_LOW")
    hs = 20 / 252
    assert s.evidence["implied_risk_aversion"] == pytest.approx(1.0 + row["dual"] /
                                                                (2 * hs * 10.0))
    # With that risk aversion and no limit the book lands near the same risk.
    priced = apply_change(cfg, s.change.model_copy(update={"ops": s.change.ops + [
        DisableConstraint(constraint="total_risk")]}))
    again, _ = solve(priced, uni)
    assert again.summary["risk"]["after"]["total_pct"] == pytest.approx(
        result.summary["risk"]["after"]["total_pct"], rel=0.05)


# --- apply_change -----------------------------------------------------------------------------

def test_apply_change_returns_a_new_validated_config(book_dir, tmp_path):
    cfg = book_config(book_dir, constraints=[{"kind": "net_exposure", "target": 0.0,
                                              "band": 5.0}])
    cfg._base_dir = tmp_path
    new = apply_change(cfg, ConfigChange(ops=[
        SetSetting(path="optimization.risk_aversion", value=5),
        SetBound(constraint="net_exposure", field="upper", value=8.0)]))
    assert new is not cfg and new.base_dir == tmp_path
    assert new.optimization.risk_aversion == 5.0 and cfg.optimization.risk_aversion == 2.0
    net = new.constraints[0]
    assert (net.target, net.band, net.lower, net.upper) == (None, None, -5.0, 8.0)
    assert cfg.constraints[0].target == 0.0
    off = apply_change(cfg, ConfigChange(ops=[DisableConstraint(constraint="net_exposure")]))
    assert off.constraints[0].enabled is False


@pytest.mark.parametrize("op,text", [
    (SetSetting(path="optimization.risk_aversoin", value=1), "unknown setting"),
    (SetSetting(path="constraints", value=[]), "unknown setting"),
    (SetBound(constraint="gross", field="upper", value=210.0), "no constraint named 'gross'"),
    (DisableConstraint(constraint="nope"), "no constraint named 'nope'"),
    (SetSetting(path="optimization.risk_aversion", value=-1), "risk_aversion"),
    (SetBound(constraint="net_exposure", field="upper", value=-20.0), "contradictory bounds"),
])
def test_apply_change_rejects_bad_ops_with_a_fix(book_dir, op, text):
    cfg = book_config(book_dir, constraints=[{"kind": "net_exposure", "target": 0.0,
                                              "band": 5.0}])
    with pytest.raises(ConfigError, match=text) as err:
        apply_change(cfg, ConfigChange(ops=[op]))
    assert "Fix:" in str(err.value)


def test_config_change_round_trips_as_json():
    change = ConfigChange(ops=[SetSetting(path="optimization.synthetics.allow_efp", value=True),
                               SetBound(constraint="gross_exposure", field="upper", value=210),
                               DisableConstraint(constraint="turnover")])
    assert ConfigChange.model_validate_json(change.model_dump_json()) == change
    assert change.describe() == ("optimization.synthetics.allow_efp = true; constraint "
                                 "'gross_exposure' upper = 210; constraint 'turnover' "
                                 "enabled = false")


def test_a_disabled_namesake_is_not_the_limit_advice_moves(tmp_path):
    """Two `turnover` constraints, the live one at 30 and a disabled one at 10: a change to
    `turnover` moves the live one, and a disabled-only name is refused with the fix."""
    from core.advice import ConfigChange, SetBound, apply_change
    from core.constraints.spec import ConstraintSpec
    from core.errors import ConfigError
    from core.settings import RunConfig

    cfg = RunConfig(constraints=[
        ConstraintSpec(kind="turnover", name="turnover", upper=30.0),
        ConstraintSpec(kind="turnover", name="turnover", upper=10.0, enabled=False),
        ConstraintSpec(kind="gross_exposure", name="gross", upper=400.0, enabled=False)])
    new = apply_change(cfg, ConfigChange(ops=[SetBound(constraint="turnover", field="upper",
                                                       value=35.0)]))
    assert [(c.upper, c.enabled) for c in new.constraints if c.kind == "turnover"] == [
        (35.0, True), (10.0, False)]
    with pytest.raises(ConfigError, match="disabled"):
        apply_change(cfg, ConfigChange(ops=[SetBound(constraint="gross", field="upper",
                                                     value=150.0)]))


def test_non_finite_bounds_are_refused_where_they_are_written():
    from pydantic import ValidationError

    from core.constraints.spec import ConstraintSpec

    with pytest.raises(ValidationError, match="finite"):
        ConstraintSpec(kind="turnover", upper=float("inf"))


def test_a_limit_written_in_notional_is_still_priced(tmp_path):
    """Its shadow price is per unit of money (1e-7 bp), yet a step of 5% of NAV is worth
    basis points: the advice must not drop it for a small dual."""
    from books import write_sample_config
    from core.settings import RunConfig

    cfg = RunConfig.load(write_sample_config(tmp_path, """
        [[constraints]]
        kind = "net_exposure"
        unit = "notional"
        target = 30e6
        band = 1.5e6
        """))
    result, uni = solve(cfg)
    net = [s for s in advise(result, uni, cfg) if s.evidence.get("kind") == "net_exposure"]
    assert net and net[0].code == "TIGHT_EXPOSURE" and net[0].utility_gain_bp > 0.1
    relaxed = apply_change(cfg, net[0].change)
    again, _ = solve(relaxed, uni)
    gain = again.summary["utility_bp"] - result.summary["utility_bp"]
    assert 0 < gain <= net[0].utility_gain_bp * 1.05  # first order: an upper estimate


def test_a_negative_upper_on_a_size_limit_is_refused():
    from pydantic import ValidationError

    from core.constraints.spec import ConstraintSpec

    with pytest.raises(ValidationError, match="never negative"):
        ConstraintSpec(kind="max_trade", upper=-5.0, unit="%ADV")
    assert ConstraintSpec(kind="max_trade", upper=0.0, unit="%ADV").upper == 0.0
