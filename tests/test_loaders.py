"""Loaders: every table with a good file and with the bad files a desk actually sees."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from books import book_tables, write_book
from core.data.loaders import load_all, read_table, resolve_paths
from core.data.schemas import TABLES
from core.errors import DataError

ALL = list(TABLES)


@pytest.mark.parametrize("name", ALL)
def test_every_table_loads_clean(tmp_path, name):
    frame = book_tables()[name]
    frame.write_parquet(tmp_path / f"{name}.parquet")
    table, diags = read_table(TABLES[name], tmp_path / f"{name}.parquet")
    assert len(diags) == 0
    assert table.frame.schema == pl.Schema(TABLES[name].polars_schema)
    assert table.frame.equals(frame)
    assert table.rows_read == frame.height and table.rows_dropped == 0


@pytest.mark.parametrize("name", [n for n in ALL if TABLES[n].required])
def test_missing_required_file_names_the_file_and_fix(tmp_path, name):
    with pytest.raises(DataError) as err:
        read_table(TABLES[name], tmp_path / f"{name}.parquet")
    msg = str(err.value)
    assert f"{name}.parquet" in msg and "missing" in msg and "Fix:" in msg


@pytest.mark.parametrize("name", [n for n in ALL if not TABLES[n].required])
def test_missing_optional_file_is_an_empty_table(tmp_path, name):
    table, diags = read_table(TABLES[name], tmp_path / f"{name}.parquet")
    assert table.frame.is_empty() and table.path is None and len(diags) == 0
    assert table.frame.schema == pl.Schema(TABLES[name].polars_schema)


@pytest.mark.parametrize("name", ALL)
def test_missing_required_column(tmp_path, name):
    spec = TABLES[name]
    col = next(c.name for c in spec.columns if c.required and c.name not in spec.key)
    book_tables()[name].drop(col).write_parquet(tmp_path / "t.parquet")
    with pytest.raises(DataError) as err:
        read_table(spec, tmp_path / "t.parquet")
    assert err.value.field == col
    assert f"add {col}" in str(err.value)


def test_wrong_column_type_names_rows_and_values(tmp_path):
    frame = book_tables()["positions"].with_columns(pl.col("price").cast(pl.String))
    frame = frame.with_columns(price=pl.when(pl.col("instrument_id") == "BBB")
                               .then(pl.lit("n/a")).otherwise(pl.col("price")))
    frame.write_parquet(tmp_path / "positions.parquet")
    with pytest.raises(DataError) as err:
        read_table(TABLES["positions"], tmp_path / "positions.parquet")
    e = err.value
    assert e.field == "price" and e.ids == ["BBB"] and "'n/a'" in str(e)
    assert "positions.parquet" in str(e) and "Fix: write 'price' as Float64" in str(e)


def test_numbers_stored_as_text_are_accepted(tmp_path):
    frame = book_tables()["liquidity"].with_columns(pl.col("adv_value").cast(pl.String))
    frame.write_parquet(tmp_path / "liquidity.parquet")
    table, _ = read_table(TABLES["liquidity"], tmp_path / "liquidity.parquet")
    assert table.frame.get_column("adv_value").dtype == pl.Float64
    assert table.frame.get_column("adv_value").to_list() == book_tables()["liquidity"][
        "adv_value"].to_list()


def test_fractional_lot_size_is_rejected(tmp_path):
    frame = book_tables()["instruments"].with_columns(
        lot_size=pl.when(pl.col("instrument_id") == "CCC").then(2.5).otherwise(1.0))
    frame.write_parquet(tmp_path / "instruments.parquet")
    with pytest.raises(DataError, match="whole numbers") as err:
        read_table(TABLES["instruments"], tmp_path / "instruments.parquet")
    assert err.value.ids == ["CCC"]


def test_null_key_is_fatal_with_row_number(tmp_path):
    frame = book_tables()["alpha"].with_columns(
        instrument_id=pl.when(pl.col("alpha") < 0).then(None).otherwise(pl.col("instrument_id")))
    frame.write_parquet(tmp_path / "alpha.parquet")
    with pytest.raises(DataError, match=r"1 row\(s\) have no instrument_id.*row 2"):
        read_table(TABLES["alpha"], tmp_path / "alpha.parquet")


def test_out_of_range_and_null_values_drop_the_row_loudly(tmp_path):
    frame = book_tables()["liquidity"].with_columns(
        adv_value=pl.when(pl.col("instrument_id") == "AAA").then(-5.0)
        .otherwise(pl.col("adv_value")),
        volatility=pl.when(pl.col("instrument_id") == "BBB").then(None)
        .otherwise(pl.col("volatility")))
    frame.write_parquet(tmp_path / "liquidity.parquet")
    table, diags = read_table(TABLES["liquidity"], tmp_path / "liquidity.parquet")
    d = diags.frame()
    assert sorted(d.get_column("instrument_id").to_list()) == ["AAA", "BBB"]
    assert set(d.get_column("code").to_list()) == {"out_of_range", "missing_value"}
    assert "adv_value out of range (must be >= 0.0" in d.filter(
        pl.col("instrument_id") == "AAA").item(0, "message")
    assert table.rows_dropped == 2 and table.frame.height == 3


def test_infinite_value_is_invalid(tmp_path):
    frame = book_tables()["cost_model"].with_columns(
        impact_coeff=pl.when(pl.col("instrument_id") == "CCC").then(float("inf"))
        .otherwise(pl.col("impact_coeff")))
    frame.write_parquet(tmp_path / "cost_model.parquet")
    table, diags = read_table(TABLES["cost_model"], tmp_path / "cost_model.parquet")
    assert "invalid_value" in diags.frame().get_column("code").to_list()
    assert "CCC" not in table.frame.get_column("instrument_id").to_list()


def test_fatal_range_problem_in_a_non_instrument_table(tmp_path):
    frame = book_tables()["fx_rates"].with_columns(
        rate=pl.when(pl.col("currency") == "JPY").then(0.0).otherwise(pl.col("rate")))
    frame.write_parquet(tmp_path / "fx_rates.parquet")
    with pytest.raises(DataError) as err:
        read_table(TABLES["fx_rates"], tmp_path / "fx_rates.parquet")
    assert err.value.ids == ["JPY"] and err.value.field == "rate"


def test_duplicate_currency_is_fatal(tmp_path):
    frame = book_tables()["cash"]
    pl.concat([frame, frame.head(1)]).write_parquet(tmp_path / "cash.parquet")
    with pytest.raises(DataError, match="duplicate currency") as err:
        read_table(TABLES["cash"], tmp_path / "cash.parquet")
    assert err.value.ids == ["USD"]


def test_corrupt_and_truncated_parquet(tmp_path):
    good = tmp_path / "good.parquet"
    book_tables()["instruments"].write_parquet(good)
    bad = tmp_path / "instruments.parquet"
    bad.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(DataError) as err:
        read_table(TABLES["instruments"], bad)
    assert "cannot read the instruments table" in str(err.value)
    assert "re-export instruments.parquet" in str(err.value)
    bad.write_text("this is not parquet")
    with pytest.raises(DataError):
        read_table(TABLES["instruments"], bad)


def test_csv_fallback(tmp_path):
    book_tables()["cash"].write_csv(tmp_path / "cash.csv")
    paths = resolve_paths(tmp_path)
    assert paths["cash"].name == "cash.csv"
    table, _ = read_table(TABLES["cash"], paths["cash"])
    assert table.frame.equals(book_tables()["cash"])


def test_load_all_drops_unknown_references(tmp_path):
    t = book_tables()
    t["alpha"] = pl.concat([t["alpha"], pl.DataFrame(
        {"instrument_id": ["NOPE"], "alpha": [0.1], "horizon_days": [20]},
        schema=t["alpha"].schema)])
    t["baskets"] = pl.concat([t["baskets"], pl.DataFrame(
        {"basket_id": ["ETF1"], "constituent_id": ["ZZZ"], "shares_per_unit": [1.0],
         "creation_unit_size": [50_000.0]}, schema=t["baskets"].schema)])
    ds = load_all(resolve_paths(write_book(tmp_path, t)))
    d = ds.diagnostics.frame()
    assert set(d.get_column("instrument_id").to_list()) == {"NOPE", "ZZZ"}
    assert set(d.get_column("severity").to_list()) == {"warning"}
    assert ds.tables["alpha"].rows_dropped == 1 and ds.tables["baskets"].rows_dropped == 1


# --- hypothesis: corruptions of a valid table never end in an unhandled exception --------

CORRUPTIONS = ["null", "nan", "text", "duplicate", "truncate", "drop_column", "negative",
               "huge", "empty"]


def _corrupt(frame: pl.DataFrame, kind: str, col: str, row: int) -> pl.DataFrame | bytes:
    n = frame.height
    row = row % n
    mask = pl.int_range(pl.len()) == row
    dtype = frame.schema[col]
    if kind == "null":
        return frame.with_columns(pl.when(mask).then(None).otherwise(pl.col(col)).alias(col))
    if kind == "nan" and dtype == pl.Float64:
        return frame.with_columns(pl.when(mask).then(float("nan")).otherwise(pl.col(col))
                                  .alias(col))
    if kind == "text":
        as_text = pl.col(col).cast(pl.String) if dtype != pl.List(pl.Float64) else pl.lit("x")
        return frame.with_columns(pl.when(mask).then(pl.lit("garbage")).otherwise(as_text)
                                  .alias(col))
    if kind == "duplicate":
        return pl.concat([frame, frame.slice(row, 1)])
    if kind == "drop_column":
        return frame.drop(col)
    if kind in ("negative", "huge") and dtype.is_numeric():
        value = -1e9 if kind == "negative" else 1e300
        return frame.with_columns(pl.when(mask).then(pl.lit(value, dtype=dtype) if dtype.is_float()
                                                     else pl.lit(-1 if kind == "negative" else
                                                                 2**62, dtype=dtype))
                                  .otherwise(pl.col(col)).alias(col))
    if kind == "empty":
        return frame.clear()
    if kind == "truncate":
        return b"truncate"
    return frame


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(ALL), kind=st.sampled_from(CORRUPTIONS), col_pick=st.integers(0, 50),
       row=st.integers(0, 50), cut=st.floats(0.0, 1.0))
def test_corrupted_tables_load_cleanly_or_fail_clearly(tmp_path_factory, name, kind, col_pick,
                                                       row, cut):
    from console.state import AppState
    from books import book_config

    tables = book_tables()
    frame = tables[name]
    col = frame.columns[col_pick % frame.width]
    corrupted = _corrupt(frame, kind, col, row)
    data = write_book(tmp_path_factory.mktemp("book"), tables)
    target = data / f"{name}.parquet"
    if isinstance(corrupted, bytes):
        raw = target.read_bytes()
        target.write_bytes(raw[: int(len(raw) * cut)])
    else:
        corrupted.write_parquet(target)
    state = AppState(book_config(data))
    try:
        uni = state.load()
    except DataError as exc:
        msg = str(exc)
        assert "Fix:" in msg and (name in msg or exc.file is not None)
        return
    # A clean load: every instrument is still present or its absence is explained.
    ids = set(uni.frame.get_column("instrument_id").to_list())
    explained = set(uni.diagnostics.get_column("instrument_id").drop_nulls().to_list())
    for iid in book_tables()["instruments"].get_column("instrument_id"):
        assert iid in ids or iid in explained
    # Tradable rows have everything the optimizer needs.
    tradable = uni.frame.filter(pl.col("tradable"))
    for c in ("price", "fx", "unit_value", "adv_value", "idio_variance", "linear_cost_bps"):
        assert tradable.get_column(c).null_count() == 0, c
