"""Constraints as Polars tables and files: round trip and clear errors."""

from __future__ import annotations

import polars as pl
import pytest

from core.constraints.spec import ConstraintSpec as C
from core.constraints.tables import from_tables, read_constraint_file, to_tables
from core.errors import ConfigError, DataError
from core.settings import RunConfig

SPECS = [
    C(kind="holding", instrument="AAA", lower=-1, upper=2),
    C(kind="max_trade", unit="%ADV", upper=10, soft=True, penalty=5),
    C(kind="group_net", group_by="sector", lower=-5, upper=5),
    C(kind="factor_exposure", factor="kind:style", lower=-0.2, upper=0.2),
    C(kind="net_exposure", target=0, band=3),
    C(kind="total_risk", upper=8, priority=10),
]


def test_tables_round_trip():
    tables = to_tables(SPECS)
    assert tables["instrument"].height == 2 and tables["group"].height == 2
    assert tables["portfolio"].height == 2
    assert tables["instrument"].get_column("instrument").to_list() == ["AAA", "*"]
    back = from_tables(tables)
    assert sorted(s.model_dump_json() for s in back) == sorted(s.model_dump_json() for s in SPECS)


def test_row_in_the_wrong_table():
    tables = to_tables(SPECS)
    wrong = {"instrument": tables["portfolio"].with_columns(instrument=pl.lit("*"))}
    with pytest.raises(ConfigError, match="net_exposure is a portfolio constraint"):
        from_tables(wrong)


def test_invalid_row_names_table_and_row():
    bad = to_tables(SPECS)["instrument"].with_columns(
        upper=pl.when(pl.col("kind") == "max_trade").then(None).otherwise(pl.col("upper")))
    with pytest.raises(ConfigError, match="instrument constraint row 2: max_trade needs lower, upper or target"):
        from_tables({"instrument": bad})


def test_constraint_file_of_per_security_bounds(tmp_path):
    frame = pl.DataFrame({"kind": ["holding"] * 3, "instrument": ["A", "B", "C"],
                          "lower": [-1.0, 0.0, -2.0], "upper": [1.0, 3.0, 0.0],
                          "unit": ["%NAV"] * 3})
    path = tmp_path / "bounds.csv"
    frame.write_csv(path)
    specs = read_constraint_file(path)
    assert [(s.instrument, s.lo, s.hi) for s in specs] == [("A", -1, 1), ("B", 0, 3),
                                                           ("C", -2, 0)]
    cfg = RunConfig(constraints=SPECS[:1], constraint_files=[path])
    assert len(cfg.all_constraints()) == 4


def test_constraint_file_with_a_mistyped_bound(tmp_path):
    path = tmp_path / "bounds.csv"
    path.write_text("kind,instrument,upper\nholding,A,1\nholding,B,one\n")
    with pytest.raises(DataError) as err:
        read_constraint_file(path)
    assert err.value.field == "upper" and err.value.ids == ["row 2"]


def test_constraint_file_with_an_unknown_kind(tmp_path):
    path = tmp_path / "bounds.csv"
    path.write_text("kind,instrument,upper\nmax_holdings,A,1\n")
    with pytest.raises(DataError, match="unknown constraint kind.*max_holdings"):
        read_constraint_file(path)
