"""Constraints as Polars tables (instrument, group, portfolio) and back.

The console edits these tables; a desk can also keep per-security bounds for 15,000 names in
a parquet or CSV file with the instrument table's columns and list it under
`constraint_files` in the config.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from pydantic import ValidationError

from core.constraints.catalogue import KINDS
from core.constraints.spec import ConstraintSpec
from core.errors import ConfigError, DataError

COMMON = {
    "name": pl.String, "kind": pl.String, "lower": pl.Float64, "upper": pl.Float64,
    "target": pl.Float64, "band": pl.Float64, "unit": pl.String, "soft": pl.Boolean,
    "penalty": pl.Float64, "priority": pl.Float64, "enabled": pl.Boolean,
}
SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "instrument": {**COMMON, "instrument": pl.String},
    "group": {**COMMON, "group_by": pl.String, "group": pl.String, "factor": pl.String},
    "portfolio": dict(COMMON),
}


def to_tables(specs: list[ConstraintSpec]) -> dict[str, pl.DataFrame]:
    rows: dict[str, list[dict]] = {scope: [] for scope in SCHEMAS}
    for spec in specs:
        scope = KINDS[spec.kind].scope
        data = spec.model_dump()
        rows[scope].append({c: data.get(c) for c in SCHEMAS[scope]})
    return {scope: pl.DataFrame(rows[scope], schema=SCHEMAS[scope], orient="row")
            for scope in SCHEMAS}


def from_tables(tables: dict[str, pl.DataFrame], source: str = "constraints"
                ) -> list[ConstraintSpec]:
    """Validate every row; the first bad one raises naming its table, row and problem."""
    specs: list[ConstraintSpec] = []
    for scope, frame in tables.items():
        if scope not in SCHEMAS:
            raise ConfigError(f"unknown constraint table '{scope}'", file=source,
                              fix="use instrument, group or portfolio")
        for i, row in enumerate(frame.iter_rows(named=True)):
            data = {k: v for k, v in row.items() if v is not None and k in SCHEMAS[scope]}
            try:
                spec = ConstraintSpec.model_validate(data)
            except ValidationError as exc:
                err = exc.errors()[0]
                msg = err["msg"].removeprefix("Value error, ")
                raise ConfigError(f"{scope} constraint row {i + 1}: {msg}", file=source,
                                  field=".".join(str(p) for p in err["loc"]) or "kind",
                                  fix="correct that row in the constraints table") from None
            if KINDS[spec.kind].scope != scope:
                raise ConfigError(
                    f"{scope} constraint row {i + 1}: {spec.kind} is a "
                    f"{KINDS[spec.kind].scope} constraint", file=source, field="kind",
                    fix=f"move it to the {KINDS[spec.kind].scope} table")
            specs.append(spec)
    return specs


def read_constraint_file(path: str | Path) -> list[ConstraintSpec]:
    """A parquet or CSV file of constraints; the scope is taken from each row's kind."""
    path = Path(path)
    if not path.exists():
        raise DataError("constraint file not found", file=path,
                        fix="check constraint_files in the config")
    try:
        frame = (pl.read_csv(path, infer_schema_length=10_000) if path.suffix.lower() == ".csv"
                 else pl.read_parquet(path))
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets one message
        raise DataError(f"cannot read the constraint file ({str(exc).splitlines()[0]})",
                        file=path, fix="write it as parquet or CSV with a header row") from None
    if "kind" not in frame.columns:
        raise DataError("no 'kind' column", file=path, field="kind",
                        fix="add a kind column (e.g. holding, max_trade)")
    unknown = sorted(set(frame.get_column("kind").drop_nulls()) - set(KINDS))
    if unknown:
        raise DataError(f"unknown constraint kind(s) {', '.join(unknown)}", file=path,
                        field="kind", fix=f"use one of {', '.join(KINDS)}")
    tables = {}
    for scope, schema in SCHEMAS.items():
        kinds = [k for k, v in KINDS.items() if v.scope == scope]
        part = frame.filter(pl.col("kind").is_in(kinds))
        if not part.height:
            continue
        for c in schema:
            if c in part.columns:
                cast = part.get_column(c).cast(schema[c], strict=False)
                bad = part.get_column(c).is_not_null() & cast.is_null()
                if bad.any():
                    rows = [i + 1 for i, b in enumerate(bad.to_list()) if b]
                    raise DataError(f"column '{c}' has values that are not {schema[c]}",
                                    file=path, field=c, ids=[f"row {r}" for r in rows],
                                    fix=f"write '{c}' as {schema[c]}")
        tables[scope] = part.select(
            pl.col(c).cast(schema[c], strict=False) if c in part.columns
            else pl.lit(None, dtype=schema[c]).alias(c) for c in schema)
    return from_tables(tables, source=str(path))
