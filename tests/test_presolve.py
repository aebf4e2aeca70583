"""Pre-solve diagnostics on the hand-built book, where every number can be checked by hand.

The book (tests/books.py), in %NAV of NAV 225,006: AAA +44.44, BBB -44.44 (no new shorts),
CCC +4.89, ETF1 +1.34 (0.1 AAA + 0.4 BBB), FUT1 -66.66 (500 AAA + 500 BBB per contract).
Gross 161.78, net -60.44, long 50.67, short 111.11.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from books import NAV, book_config, book_tables, write_book
from console.state import AppState
from core.constraints.normalize import normalize_all
from core.constraints.presolve import SCHEMA, fmt, presolve
from core.constraints.spec import ConstraintSpec as C
from core.errors import SpoInputError
from core.model.data import problem_data
from core.optimize import solve_problem
from core.solvers.base import Status

AAA = 100_000 / NAV * 100  # 44.44 %NAV


def load(directory, tables=None, **settings):
    config = book_config(write_book(directory, tables))
    if settings:
        config = config.model_copy(
            update={"optimization": config.optimization.model_copy(update=settings)})
    return config, AppState(config).load()


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    return load(tmp_path_factory.mktemp("book"))


@pytest.fixture(scope="module")
def flat_book(tmp_path_factory):
    """The book without look-through: a sector is only its own members."""
    return load(tmp_path_factory.mktemp("flat"), look_through=False)


def findings(specs, book, code=None) -> pl.DataFrame:
    config, universe = book
    frame = presolve(specs, universe, config.optimization)
    return frame.filter(pl.col("code") == code) if code else frame


def only(specs, book, code) -> dict:
    frame = findings(specs, book, code)
    assert frame.height == 1, frame
    return frame.row(0, named=True)


def test_a_book_within_its_limits_has_nothing_to_report(book):
    specs = [C(kind="gross_exposure", upper=200.0), C(kind="net_exposure", lower=-100.0,
                                                      upper=100.0),
             C(kind="max_trade", unit="%ADV", upper=10.0),
             C(kind="group_net", group_by="sector", lower=-100.0, upper=100.0),
             C(kind="factor_exposure", factor="*", lower=-2.0, upper=2.0),
             C(kind="turnover", upper=30.0)]
    frame = findings(specs, book)
    assert frame.schema == pl.Schema(SCHEMA) and frame.is_empty()
    # Without a universe only the list itself can be checked.
    assert presolve(specs, None, book[0]).is_empty()


def test_duplicate_names_and_disabled_constraints(book):
    specs = [C(kind="turnover", upper=5.0, name="limit"),
             C(kind="gross_exposure", upper=300.0, name="limit"),
             C(kind="gross_exposure", upper=1.0, enabled=False)]  # broken now, but off
    frame = findings(specs, book)
    assert frame.rows() == [("error", "duplicate_name", "limit",
                             "two enabled constraints are named 'limit'; the solve stops on "
                             "the second", "give each constraint a unique name")]


@pytest.mark.parametrize("spec, code, message", [
    (C(kind="holding", instrument="ZZZ", upper=5.0), "unknown_instrument",
     "no instrument 'ZZZ' in the universe"),
    (C(kind="holding", instrument="FUTZ6", upper=5.0), "unknown_instrument",
     "no instrument 'FUTZ6' in the universe (ticker FUTZ6 is instrument_id FUT1)"),
    (C(kind="group_net", group_by="colour", upper=5.0), "unknown_group_by",
     "cannot group by 'colour': no column 'colour' in the universe; the model groups by "
     "country, currency, industry, sector, type"),
    (C(kind="group_net", group_by="primary_listing", upper=5.0), "unknown_group_by",
     "cannot group by 'primary_listing': the model groups by country, currency, industry, "
     "sector, type"),
    (C(kind="group_net", group_by="sector", group="Mining", upper=5.0), "unknown_group",
     "no instrument has sector = 'Mining'"),
    (C(kind="factor_exposure", factor="Momentum", upper=1.0), "unknown_factor",
     "the risk model has no factor 'Momentum'"),
    (C(kind="factor_exposure", factor="kind:industry", upper=1.0), "unknown_factor",
     "the risk model has no factor of kind 'industry'"),
    (C(kind="currency_cash", group="GBP", lower=0.0), "unknown_currency",
     "no cash or instrument in currency 'GBP'"),
])
def test_unknown_references_are_errors_the_solve_would_stop_on(book, spec, code, message):
    row = only([spec], book, code)
    assert (row["severity"], row["constraint"], row["message"]) == ("error", spec.name, message)
    assert row["fix"]
    config, universe = book
    with pytest.raises(SpoInputError):
        normalize_all([spec], problem_data(universe, config.optimization), False)


def test_untradable_instruments_and_groups_with_nothing_tradable(tmp_path):
    # AAA, CCC and ETF1 restricted; ETF1 flat and alone in its sector "Funds".
    t = book_tables()
    t["restrictions"] = pl.DataFrame(
        {"instrument_id": ["BBB", "AAA", "CCC", "ETF1"], "restricted": [False, True, True, True],
         "no_new_shorts": [True, False, False, False], "no_new_longs": [False] * 4},
        schema=t["restrictions"].schema)
    t["instruments"] = t["instruments"].with_columns(
        sector=pl.when(pl.col("instrument_id") == "ETF1").then(pl.lit("Funds"))
        .otherwise(pl.col("sector")))
    t["positions"] = t["positions"].with_columns(
        position_shares=pl.when(pl.col("instrument_id") == "ETF1").then(0.0)
        .otherwise(pl.col("position_shares")))
    book = load(tmp_path, t)
    nav = NAV - 3_006
    specs = [C(kind="holding", instrument="CCC", upper=1.0),
             C(kind="holding", instrument="ETF1", upper=1.0),
             C(kind="group_net", group_by="sector", group="Tech", upper=1.0),
             C(kind="group_net", group_by="sector", lower=-100.0, upper=100.0),
             C(kind="group_net", group_by="sector", group="Funds", upper=1.0)]
    frame = findings(specs, book)
    assert frame.select("severity", "code", "constraint", "message").rows() == [
        ("error", "instrument_not_tradable", "holding[ETF1]",
         "ETF1 is not tradable (restricted) and not held: the solve stops on this constraint"),
        ("error", "group_nothing_tradable", "group_net[sector=Funds]",
         "sector = Funds has 1 member(s), none tradable or held (ETF1: restricted): the solve "
         "stops on this constraint"),
        ("warning", "instrument_not_tradable", "holding[CCC]",
         f"CCC is not tradable (restricted): its position stays at "
         f"{fmt(11_000 / nav * 100, '%NAV')}, above its upper 1 %NAV; this limit is checked, "
         "not imposed"),
        ("warning", "group_nothing_tradable", "group_net[sector=Tech]",
         "sector = Tech has nothing tradable (AAA: restricted, CCC: restricted): the "
         "constraint is skipped"),
        ("info", "group_nothing_tradable", "group_net[sector=*]",
         "skipped for sector = Tech: nothing tradable there"),
    ]
    assert fmt(11_000 / nav * 100, "%NAV") == "4.95 %NAV"
    config, universe = book
    data = problem_data(universe, config.optimization)
    for spec in specs:  # errors stop the solve; warnings and info do not
        stops = spec.name in ("holding[ETF1]", "group_net[sector=Funds]")
        if stops:
            with pytest.raises(SpoInputError):
                normalize_all([spec], data, False)
        else:
            normalize_all([spec], data, False)


def test_two_constraints_on_the_same_exposure(book):
    gross_floor = C(kind="gross_exposure", name="gross floor", lower=170.0)
    row = only([C(kind="gross_exposure", upper=150.0), gross_floor], book,
               "contradictory_bounds")
    assert (row["severity"], row["constraint"], row["message"]) == (
        "error", "gross floor", "gross floor lower 170 %NAV is above gross_exposure upper "
                                "150 %NAV")
    # Leverage is gross in another unit.
    row = only([C(kind="leverage", upper=1.5), gross_floor], book, "contradictory_bounds")
    assert row["message"] == "gross floor lower 170 %NAV is above leverage upper 1.5x"
    # A band for every sector against one sector's own.
    tech = C(kind="group_net", group_by="sector", group="Tech", name="tech floor", lower=20.0)
    row = only([C(kind="group_net", group_by="sector", upper=10.0), tech], book,
               "contradictory_bounds")
    assert row["message"] == \
        "tech floor lower 20 %NAV is above group_net[sector=*] upper 10 %NAV for Tech"
    # Soft: a warning, the solve pays the penalty.
    row = only([C(kind="gross_exposure", upper=150.0, soft=True), gross_floor], book,
               "contradictory_bounds")
    assert row["severity"] == "warning"


def test_one_instruments_bounds_contradict(book):
    # BBB is short 44.44% NAV and may not short more (restrictions table).
    row = only([C(kind="holding", instrument="BBB", upper=-50.0)], book,
               "contradictory_bounds")
    assert (row["severity"], row["constraint"], row["message"]) == (
        "error", "holding[BBB]",
        "BBB: restriction:no_new_shorts (at least -44.44 %NAV) contradicts holding[BBB] "
        "(at most -50 %NAV)")
    row = only([C(kind="no_new_longs", instrument="AAA"),
                C(kind="holding", instrument="AAA", lower=50.0)], book, "contradictory_bounds")
    assert row["message"] == ("AAA: holding[AAA] (at least 50 %NAV) contradicts "
                              "no_new_longs[AAA] (at most 44.44 %NAV)")
    # |trade| <= 1% NAV keeps AAA within 1% NAV of where it is.
    row = only([C(kind="max_trade", upper=1.0), C(kind="holding", instrument="AAA",
                                                  upper=40.0)], book, "contradictory_bounds")
    assert row["message"] == (
        f"AAA: max_trade[*] (at least {fmt(AAA - 1, '%NAV')}: |trade| <= 1 %NAV from the "
        f"current {fmt(AAA, '%NAV')}) contradicts holding[AAA] (at most 40 %NAV)")
    # Long only against a required short, for every name at once.
    row = only([C(kind="holding", lower=0.0), C(kind="holding", name="all short", upper=-1.0)],
               book, "contradictory_bounds")
    assert row["message"] == ("AAA: holding[*] (at least 0 %NAV) contradicts all short "
                              "(at most -1 %NAV) (and 4 more instrument(s))")
    row = only([C(kind="holding", instrument="BBB", upper=-50.0, soft=True)], book,
               "contradictory_bounds")
    assert row["severity"] == "warning"


def test_identities_between_portfolio_measures(book):
    row = only([C(kind="net_exposure", lower=160.0), C(kind="gross_exposure", upper=150.0)],
               book, "conflicting_limits")
    assert (row["severity"], row["constraint"], row["message"]) == (
        "error", "net_exposure", "net lower 160 %NAV (net_exposure) is above gross upper "
                                 "150 %NAV (gross_exposure): |net| can never exceed gross")
    row = only([C(kind="long_market_value", lower=100.0),
                C(kind="short_market_value", lower=80.0),
                C(kind="gross_exposure", upper=170.0)], book, "conflicting_limits")
    assert row["message"] == (
        "long_market_value lower 100 %NAV + short_market_value lower 80 %NAV is above gross "
        "upper 170 %NAV (gross_exposure): gross = long + short")
    row = only([C(kind="long_market_value", lower=100.0),
                C(kind="short_market_value", upper=20.0),
                C(kind="net_exposure", upper=50.0)], book, "conflicting_limits")
    assert row["message"] == (
        "long lower 100 %NAV less short upper 20 %NAV is above net upper 50 %NAV "
        "(net_exposure): net = long - short")


def test_turnover_too_small_to_reach_a_band(book, tmp_path):
    specs = [C(kind="net_exposure", target=0.0, band=1.0), C(kind="turnover", upper=5.0)]
    row = only(specs, book, "turnover_too_small")
    net = -135_994 / NAV * 100
    assert (row["severity"], row["constraint"], row["message"]) == (
        "error", "net_exposure",
        f"net lower -1 %NAV (net_exposure) is {fmt(-1 - net, '%NAV')} from the current "
        f"{fmt(net, '%NAV')}, but turnover upper 5 %NAV (turnover) allows a move of 5 %NAV "
        "at most")
    assert fmt(-1 - net, "%NAV") == "59.44 %NAV"
    # Gross can fall by the turnover at most; it can always rise (both legs of a name).
    gross = [C(kind="gross_exposure", upper=150.0), C(kind="turnover", upper=5.0)]
    assert "11.78 %NAV from the current 161.8 %NAV" in only(gross, book,
                                                             "turnover_too_small")["message"]
    assert findings([C(kind="gross_exposure", lower=170.0), C(kind="turnover", upper=5.0)],
                    book, "turnover_too_small").is_empty()
    # ETF creation moves positions without a market trade: no conclusion then.
    config, universe = book
    synthetics = config.optimization.synthetics.model_copy(update={"allow_create_redeem": True})
    settings = config.optimization.model_copy(update={"synthetics": synthetics})
    assert problem_data(universe, settings).flows is not None
    frame = presolve(specs, universe, settings)
    assert frame.filter(pl.col("code") == "turnover_too_small").is_empty()


def test_group_and_portfolio_bands_out_of_reach(book, flat_book):
    # Without look-through, Tech is AAA + CCC: 49.33% NAV, +1% NAV each at most.
    tech_now = (100_000 + 11_000) / NAV * 100
    specs = [C(kind="max_trade", upper=1.0),
             C(kind="group_net", group_by="sector", group="Tech", lower=60.0)]
    row = only(specs, flat_book, "out_of_reach")
    assert (row["severity"], row["constraint"], row["message"]) == (
        "error", "group_net[sector=Tech]",
        f"lower 60 %NAV for Tech is out of reach: the hard instrument bounds (max_trade[*]) "
        f"keep it at or below {fmt(tech_now + 2, '%NAV')}")
    # With look-through, ETF1 and FUT1 carry AAA too: Tech moves by 1% NAV x (1 + 1 +
    # 0.1 x 100 / 30.06 + 500 x 100 / 75,000) and starts from 5.33% NAV.
    tech_now = tech_now + 3_006 / NAV * 100 * (10 / 30.06) - 150_000 / NAV * 100 * (2 / 3)
    reach = tech_now + 1.0 * (2 + 10 / 30.06 + 2 / 3)
    specs[1] = C(kind="group_net", group_by="sector", group="Tech", lower=30.0)
    row = only(specs, book, "out_of_reach")
    assert row["message"].endswith(f"keep it at or below {fmt(reach, '%NAV')}")
    assert fmt(reach, "%NAV") == "8.33 %NAV"
    # No new shorts anywhere: net cannot go below BBB + FUT1 = -111.1% NAV.
    row = only([C(kind="no_new_shorts"), C(kind="net_exposure", upper=-120.0)], book,
               "out_of_reach")
    assert row["message"] == ("upper -120 %NAV is out of reach: the hard instrument bounds "
                              "(no_new_shorts[*]) keep it at or above -111.1 %NAV")
    # Holding floors force 60% NAV of gross.
    row = only([C(kind="holding", instrument="AAA", lower=30.0),
                C(kind="holding", instrument="BBB", upper=-30.0),
                C(kind="gross_exposure", upper=50.0)], book, "out_of_reach")
    assert row["message"] == ("upper 50 %NAV is out of reach: the hard instrument bounds "
                              "(holding[AAA], holding[BBB]) keep it at or above 60 %NAV")
    # A factor: Market exposure moves by 1% NAV x the sum of loadings at most.
    config, universe = flat_book
    data = problem_data(universe, config.optimization)
    loadings = data.tradable.loadings.toarray()[:, 0]  # AAA 1.1, BBB 0.9, the rest 1.0
    market = float(loadings @ data.tradable.h0)
    most = market + 0.01 * float(np.abs(loadings).sum())
    row = only([C(kind="max_trade", upper=1.0),
                C(kind="factor_exposure", factor="Market", lower=0.0)], flat_book,
               "out_of_reach")
    assert row["message"] == ("lower 0 for Market is out of reach: the hard instrument "
                              f"bounds (max_trade[*]) keep it at or below {fmt(most)}")
    # Soft: the solve will violate it and pay; a warning.
    specs[1] = C(kind="group_net", group_by="sector", group="Tech", lower=30.0, soft=True)
    row = only(specs, book, "out_of_reach")
    assert row["severity"] == "warning" and row["message"].endswith("it will be violated")


def test_what_the_current_book_already_breaks(book):
    def message(spec):
        return only([spec], book, "broken_now")

    row = message(C(kind="gross_exposure", upper=150.0))
    assert (row["severity"], row["message"]) == (
        "warning", "the current book breaks it: 161.8 %NAV now, upper 150 %NAV; the solve "
                   "must trade to restore it")
    row = message(C(kind="gross_exposure", upper=150.0, soft=True))
    assert (row["severity"], row["message"]) == (
        "info", "the current book breaks it: 161.8 %NAV now, upper 150 %NAV; as a soft "
                "constraint it costs its penalty until fixed")
    assert message(C(kind="leverage", upper=1.5))["message"].startswith(
        "the current book breaks it: 1.62x now, upper 1.5x")
    assert message(C(kind="holding", upper=40.0))["message"].startswith(
        "the current book breaks it for AAA: 44.44 %NAV now, upper 40 %NAV")
    assert message(C(kind="holding", upper=1.0))["message"].startswith(
        "the current book breaks it in 3 of 5 rows; worst AAA: 44.44 %NAV now, upper 1 %NAV")
    assert message(C(kind="holding", instrument="AAA", unit="notional", upper=90_000.0)
                   )["message"].startswith(
        "the current book breaks it for AAA: 100,000 USD now, upper 90,000 USD")
    assert message(C(kind="holding", instrument="AAA", unit="shares", upper=900.0)
                   )["message"].startswith(
        "the current book breaks it for AAA: 1,000 shares now, upper 900 shares")
    assert message(C(kind="currency_cash", group="EUR", upper=1.0))["message"].startswith(
        f"the current book breaks it for EUR: {fmt(11_000 / NAV * 100, '%NAV')} now")
    assert " %vol now, upper 1 %vol" in message(C(kind="total_risk", upper=1.0))["message"]


@pytest.mark.parametrize("specs, settings", [
    ([C(kind="gross_exposure", upper=150.0), C(kind="gross_exposure", name="g", lower=170.0)],
     {}),
    ([C(kind="holding", instrument="BBB", upper=-50.0)], {}),
    ([C(kind="net_exposure", lower=160.0), C(kind="gross_exposure", upper=150.0)], {}),
    ([C(kind="long_market_value", lower=100.0), C(kind="short_market_value", upper=20.0),
      C(kind="net_exposure", upper=50.0)], {}),
    ([C(kind="net_exposure", target=0.0, band=1.0), C(kind="turnover", upper=5.0)], {}),
    ([C(kind="max_trade", upper=1.0),
      C(kind="group_net", group_by="sector", group="Tech", lower=60.0)], {"look_through": False}),
    ([C(kind="no_new_shorts"), C(kind="net_exposure", upper=-120.0)], {}),
])
def test_every_error_is_an_infeasible_solve(book, specs, settings):
    config, universe = book
    st = config.optimization.model_copy(update=settings)
    frame = presolve(specs, universe, st)
    assert "error" in frame.get_column("severity").to_list()
    result = solve_problem(problem_data(universe, st), specs, st)
    assert result.status == Status.INFEASIBLE
    # The same constraints made soft: warnings only, and the solve goes through.
    soft = [s.model_copy(update={"soft": True}) for s in specs]
    frame = presolve(soft, universe, st)
    assert "error" not in frame.get_column("severity").to_list()
    assert solve_problem(problem_data(universe, st), soft, st).status == Status.OPTIMAL
