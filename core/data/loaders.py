"""Parquet readers: one per table spec, each checking types, nulls, ranges and duplicates.

A problem that makes the whole file unusable (missing, corrupt, a required column absent or
of the wrong type, a null key) raises `DataError` naming the file, column, ids and fix.
A problem confined to some rows drops those rows *and says so* as an error diagnostic, so
the rest of the book still loads and the trader sees every problem in one pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from core.data.schemas import (
    INSTRUMENTS, INTRADAY_TABLES, STATIC_TABLES, TABLES, Column, TableSpec,
)
from core.diagnostics import Code, Diagnostics, Severity
from core.errors import DataError, sample_ids

_NUMERIC = (pl.Float64, pl.Float32, pl.Int64, pl.Int32, pl.Int16, pl.Int8,
            pl.UInt64, pl.UInt32, pl.UInt16, pl.UInt8)


@dataclass
class LoadedTable:
    name: str
    path: Path | None  # None when an optional file is absent
    frame: pl.DataFrame
    rows_read: int
    rows_dropped: int = 0


@dataclass
class DataSet:
    """The tables of one load, with the diagnostics the load produced."""

    tables: dict[str, LoadedTable] = field(default_factory=dict)
    diagnostics: Diagnostics = field(default_factory=Diagnostics)

    def frame(self, name: str) -> pl.DataFrame:
        return self.tables[name].frame

    def frames(self) -> dict[str, pl.DataFrame]:
        return {n: t.frame for n, t in self.tables.items()}


def _type_fix(col: Column) -> str:
    unit = f" in {col.unit}" if col.unit else ""
    return f"write '{col.name}' as {col.dtype}{unit}"


def _cast_column(frame: pl.DataFrame, col: Column, spec: TableSpec, path: Path) -> pl.Series:
    """Cast one column to its spec dtype, or raise naming the rows that do not convert."""
    s = frame.get_column(col.name)
    target = col.dtype
    if s.dtype == target:
        return s
    key = spec.key[0]
    try:
        if isinstance(target, pl.List):
            if not isinstance(s.dtype, pl.List | pl.Array) or not s.dtype.inner.is_numeric():
                raise TypeError
            out = s.cast(target)
        elif target == pl.Date:
            out = s.str.to_date(strict=False) if s.dtype == pl.String else s.cast(pl.Date)
        elif isinstance(target, pl.Datetime):
            out = (s.str.to_datetime(time_unit="us", strict=False) if s.dtype == pl.String
                   else s.cast(target))
        elif target == pl.Boolean:
            if s.dtype.is_integer() and s.drop_nulls().is_in([0, 1]).all():
                out = s.cast(pl.Boolean)
            elif s.dtype == pl.String:
                low = s.str.strip_chars().str.to_lowercase()
                out = low.replace_strict({"true": True, "false": False, "1": True, "0": False},
                                         default=None, return_dtype=pl.Boolean)
            else:
                raise TypeError
        elif target == pl.String:
            if s.dtype.is_numeric() or s.dtype == pl.Categorical or s.dtype == pl.Enum:
                out = s.cast(pl.String)
            else:
                raise TypeError
        elif target.is_numeric():
            if not (s.dtype.is_numeric() or s.dtype == pl.String or s.dtype == pl.Boolean):
                raise TypeError
            src = s.str.strip_chars() if s.dtype == pl.String else s
            out = src.cast(target, strict=False)
            if target.is_integer() and s.dtype.is_float():
                whole = s.drop_nulls().drop_nans()
                if not (whole == whole.round(0)).all():
                    bad = frame.filter(pl.col(col.name).is_not_null()
                                       & (pl.col(col.name) != pl.col(col.name).round(0)))
                    raise DataError(
                        f"column '{col.name}' must hold whole numbers", file=path,
                        field=col.name, ids=bad.get_column(key).to_list()
                        if key in bad.columns else [], fix=_type_fix(col))
        else:
            out = s.cast(target, strict=False)
    except DataError:
        raise
    except Exception:  # noqa: BLE001 - any cast failure becomes one message
        raise DataError(
            f"column '{col.name}' has type {s.dtype}, expected {target}",
            file=path, field=col.name, fix=_type_fix(col)) from None
    failed = s.is_not_null() & out.is_null()
    if failed.any():
        rows = frame.filter(failed)
        ids = rows.get_column(key).cast(pl.String).to_list() if key in rows.columns else []
        examples = sample_ids([repr(v) for v in rows.get_column(col.name).to_list()], 3)
        raise DataError(
            f"column '{col.name}' has values that are not {target} (e.g. {examples})",
            file=path, field=col.name, ids=ids, fix=_type_fix(col))
    return out.alias(col.name)


def _falses(n: int) -> pl.Series:
    return pl.Series("mask", [False] * n, dtype=pl.Boolean)


def _read_file(spec: TableSpec, path: Path) -> pl.DataFrame:
    try:
        if path.suffix.lower() == ".csv":
            return pl.read_csv(path, infer_schema=False)
        return pl.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - the file is corrupt in some way
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"cannot read the {spec.name} table ({detail})", file=path,
            fix=f"re-export {spec.file_name} as a complete parquet file") from None


def _row_ids(frame: pl.DataFrame, spec: TableSpec) -> list[str]:
    if len(spec.key) == 1:
        return frame.get_column(spec.key[0]).cast(pl.String).to_list()
    return frame.select(
        pl.concat_str([pl.col(k).cast(pl.String) for k in spec.key], separator="/")
    ).to_series().to_list()


def read_table(spec: TableSpec, path: Path | None) -> tuple[LoadedTable, Diagnostics]:
    """Read and check one table. `path=None` or a missing optional file gives an empty table."""
    diags = Diagnostics()
    if path is None or not path.exists():
        if spec.required:
            shown = path if path is not None else spec.file_name
            raise DataError(f"the {spec.name} table is missing", file=shown,
                            fix=f"provide {spec.file_name} ({spec.doc.rstrip('.')}) or point "
                                f"[data.files] {spec.name} at it in the config")
        empty = pl.DataFrame(schema=spec.polars_schema)
        return LoadedTable(spec.name, None, empty, 0), diags
    if path.is_dir():
        raise DataError("expected a file, found a folder", file=path,
                        fix=f"point the {spec.name} path at {spec.file_name}")

    raw = _read_file(spec, path)
    missing = [c.name for c in spec.columns if c.required and c.name not in raw.columns]
    if missing:
        col = spec.column(missing[0])
        raise DataError(
            f"required column(s) {', '.join(missing)} missing (found: "
            f"{', '.join(raw.columns) or 'no columns'})",
            file=path, field=missing[0], fix=f"add {', '.join(missing)}; {_type_fix(col)}")

    columns = []
    for col in spec.columns:
        if col.name in raw.columns:
            columns.append(_cast_column(raw, col, spec, path))
        else:
            columns.append(pl.Series(col.name, [None] * raw.height, dtype=col.dtype))
    frame = pl.DataFrame(columns)
    # NaN is how a missing price usually arrives from upstream; treat it as null.
    frame = frame.with_columns(
        pl.col(c.name).fill_nan(None) for c in spec.columns if c.dtype == pl.Float64)
    rows_read = frame.height

    for k in spec.key:
        nulls = frame.get_column(k).is_null()
        if nulls.any():
            rows = [i + 1 for i, v in enumerate(nulls.to_list()) if v]
            raise DataError(f"{nulls.sum()} row(s) have no {k}", file=path, field=k,
                            ids=[f"row {r}" for r in rows],
                            fix=f"fill '{k}' on every row or remove those rows")

    if frame.is_empty() and not spec.allow_empty:
        raise DataError(f"the {spec.name} table has no rows", file=path,
                        fix=f"re-export {spec.file_name}; it cannot be empty")

    bad = _falses(frame.height)
    for col in spec.columns:
        if col.name in spec.key:
            continue
        s = frame.get_column(col.name)
        problems: list[tuple[pl.Series, Code, str]] = []
        if not col.nullable:
            problems.append((s.is_null(), Code.MISSING_VALUE, f"{col.name} is missing"))
        if s.dtype == pl.Float64:
            problems.append((s.is_infinite().fill_null(False), Code.INVALID_VALUE,
                             f"{col.name} is infinite"))
        if col.dtype.is_numeric():
            lo_bad = _falses(frame.height)
            if col.min is not None:
                lo_bad = lo_bad | (s < col.min).fill_null(False)
            if col.strictly_positive:
                lo_bad = lo_bad | (s <= 0).fill_null(False)
            hi_bad = (s > col.max).fill_null(False) if col.max is not None else lo_bad & False
            rng = (f">= {col.min}" if col.min is not None else "> 0" if col.strictly_positive
                   else "")
            if col.max is not None:
                rng = f"{rng} and <= {col.max}" if rng else f"<= {col.max}"
            problems.append((lo_bad | hi_bad, Code.OUT_OF_RANGE,
                             f"{col.name} out of range (must be {rng}{' ' + col.unit if col.unit else ''})"))
        for mask, code, what in problems:
            if not mask.any():
                continue
            rows = frame.filter(mask)
            ids = _row_ids(rows, spec)
            if spec.instrument_column is None:
                raise DataError(what, file=path, field=col.name, ids=ids,
                                fix=f"correct '{col.name}' in {path.name}")
            values = rows.get_column(col.name).cast(pl.String).fill_null("null").to_list()
            diags.add_many(
                Severity.ERROR, code, spec.name,
                rows.get_column(spec.instrument_column).to_list(),
                [f"{path.name}: {what} (value {v}); row ignored" for v in values])
            bad = bad | mask
    if bad.any():
        frame = frame.filter(~bad)

    dup_mask = frame.select(pl.struct(list(spec.key)).is_duplicated()).to_series()
    if dup_mask.any():
        dups = frame.filter(dup_mask)
        ids = sorted(set(_row_ids(dups, spec)))
        if spec.instrument_column is None:
            raise DataError(f"duplicate {'/'.join(spec.key)}", file=path, field=spec.key[0],
                            ids=ids, fix="keep one row per key")
        # Which of two conflicting rows is right cannot be known: drop both, loudly.
        counts = dups.group_by(spec.key, maintain_order=True).len()
        diags.add_many(
            Severity.ERROR, Code.DUPLICATE_ID, spec.name,
            counts.get_column(spec.instrument_column).to_list(),
            [f"{path.name}: {n} rows share this {'/'.join(spec.key)}; all ignored until one "
             f"remains" for n in counts.get_column("len").to_list()])
        frame = frame.filter(~dup_mask)
    return LoadedTable(spec.name, path, frame, rows_read, rows_read - frame.height), diags


def resolve_paths(data_dir: Path, overrides: dict[str, Path] | None = None,
                  names: tuple[str, ...] = tuple(TABLES)) -> dict[str, Path]:
    """Where each table lives: `<dir>/<name>.parquet`, or `<name>.csv`, unless overridden."""
    out = {}
    for name in names:
        if overrides and name in overrides:
            out[name] = Path(overrides[name])
            continue
        parquet = data_dir / TABLES[name].file_name
        csv = data_dir / f"{name}.csv"
        out[name] = csv if (not parquet.exists() and csv.exists()) else parquet
    return out


def check_references(ds: DataSet) -> None:
    """Rows that name an instrument not in instruments are dropped and reported.

    An unknown id on a held position is an error (the book cannot be valued); elsewhere it is
    a warning, since a reference row for an instrument we do not trade harms nothing.
    """
    known = ds.frame("instruments").get_column("instrument_id")
    for name, table in ds.tables.items():
        spec = TABLES[name]
        if name == "instruments" or spec.instrument_column is None or table.frame.is_empty():
            continue
        refs = [spec.instrument_column] + (["constituent_id"] if name == "baskets" else [])
        keep = pl.Series([True] * table.frame.height)
        source = table.path.name if table.path else spec.file_name
        for ref in refs:
            ok = table.frame.get_column(ref).is_in(known.implode())
            if ok.all():
                continue
            unknown = table.frame.filter(~ok)
            held = name == "positions" and (unknown.get_column("position_shares") != 0).any()
            ds.diagnostics.add_many(
                Severity.ERROR if held else Severity.WARNING, Code.UNKNOWN_INSTRUMENT, name,
                unknown.get_column(ref).unique(maintain_order=True).to_list(),
                f"{source}: {ref} not in instruments; row ignored")
            keep = keep & ok
        table.frame = table.frame.filter(keep)
        table.rows_dropped += int((~keep).sum())


def load_tables(paths: dict[str, Path], names: tuple[str, ...]) -> DataSet:
    ds = DataSet()
    for name in names:
        table, diags = read_table(TABLES[name], paths.get(name))
        ds.tables[name] = table
        ds.diagnostics.extend(diags)
    return ds


def load_static(paths: dict[str, Path]) -> DataSet:
    """Start-of-day tables: reference data, risk, liquidity, costs, margin, alpha, fx."""
    return load_tables(paths, STATIC_TABLES)


def load_intraday(paths: dict[str, Path]) -> DataSet:
    """Positions and cash: reloaded intraday without touching the start-of-day data."""
    return load_tables(paths, INTRADAY_TABLES)


def load_all(paths: dict[str, Path]) -> DataSet:
    ds = load_static(paths)
    intraday = load_intraday(paths)
    ds.tables.update(intraday.tables)
    ds.diagnostics.extend(intraday.diagnostics)
    check_references(ds)
    return ds


__all__ = [
    "DataSet", "LoadedTable", "read_table", "resolve_paths", "check_references",
    "load_static", "load_intraday", "load_all", "INSTRUMENTS",
]
