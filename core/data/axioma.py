"""Reader for Axioma-style flat risk-model files into spo's risk tables.

An Axioma flat-file model is a set of pipe-delimited text files sharing one stem:

- ``<name>.exp``  exposures: asset id, then one column per factor (empty field = 0.0);
- ``<name>.cov``  factor covariance in ANNUAL PERCENT SQUARED, either a square matrix
  (factor name, then one column per factor) or long form (factor1|factor2|covariance);
- ``<name>.rsk``  asset risk: asset id and ``Specific Risk`` in ANNUAL PERCENT volatility
  (other columns such as Total Risk or betas are ignored);
- ``<name>.att``  optional factor attributes: factor name and factor type.

Header lines start with '#'. ``#Columns: a|b|c`` names the columns; every other header line
(``#DataDate:``, ``#Type:``, ``#Unit:`` ...) is metadata; the .exp, .cov and .rsk files
must not carry different ``#DataDate`` values.

``read_axioma`` converts them to the spo tables (schemas.RISK_MODEL, FACTORS,
FACTOR_COVARIANCE) in decimal units: covariance / 10,000 and idio_variance = (risk / 100)^2.
Every problem with the files is a DataError that names the file, the field, the offending
ids and the fix; assets that cannot be used are returned (never silently dropped) as
one-column ``vendor_id`` frames under "unmapped", "missing_specific_risk" and
"missing_exposures".
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from core.data import schemas
from core.errors import DataError, sample_ids

MODEL_TYPE = "axioma"
SEPARATOR = "|"
PERCENT_SQUARED = 10_000.0  # covariance: annual %^2 -> annual decimal return squared
PERCENT = 100.0  # specific risk: annual % volatility -> annual decimal volatility
SYMMETRY_RTOL = 1e-8
PSD_TOL = 1e-10  # smallest eigenvalue may be down to -PSD_TOL * trace

VENDOR_ID_SCHEMA = {"vendor_id": pl.String()}

_BOM = b"\xef\xbb\xbf"
_LONG_FACTOR = re.compile(r"^factor(name)?(1|2|i|j|a|b)$")
_LONG_VALUE = {"covariance", "cov", "covar", "factorcovariance"}
_ID_NAMES = ("axiomaid", "assetid", "id", "asset", "vendorid")
_ATT_NAME = ("factorname", "factor", "name")
_ATT_TYPE = ("factortype", "type", "kind")
_KIND_ALIASES = {
    "style": "style",
    "industry": "industry",
    "country": "country",
    "currency": "currency",
    "market": "market",
    "local": "market",
    "marketintercept": "market",
    "intercept": "market",
}
_MARKET_NAMES = {"market", "marketintercept", "local", "intercept"}
# ISO 4217 active codes (plus CNH, the offshore renminbi quoted by risk vendors).
_ISO_CURRENCIES = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN
    BWP BYN BZD CAD CDF CHF CLP CNH CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR
    FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD
    JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT
    MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG
    QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB
    TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XOF XPF YER
    ZAR ZMW ZWL
    """.split()
)


# --------------------------------------------------------------------------- flat files


@dataclass
class FlatFile:
    """One parsed flat file: column names, string data (stripped, empty -> null), metadata."""

    path: Path
    columns: list[str]
    data: pl.DataFrame
    metadata: dict[str, str]
    line_numbers: list[int] = field(default_factory=list)  # file line of each data row


def parse_flat_file(path: str | Path) -> tuple[list[str], pl.DataFrame, dict[str, str]]:
    """Parse one Axioma flat file.

    Returns (columns, data, metadata): the names from the ``#Columns:`` header, a frame of
    String columns (whitespace stripped, empty fields null) and the other ``#Key: value``
    header lines (``#Type``, ``#Unit``, ``#DataDate`` ...). Raises DataError for a missing
    or empty file, non-UTF-8 bytes, no ``#Columns:`` header, or a row with the wrong
    number of fields.
    """
    flat = _read_flat(Path(path))
    return flat.columns, flat.data, flat.metadata


def _read_flat(path: Path) -> FlatFile:
    raw = _read_bytes(path)
    try:
        text = raw.decode("utf-8")  # validates the whole file once
    except UnicodeDecodeError as exc:
        raise _encoding_error(path, raw, exc) from None
    if not raw or raw.isspace():
        raise DataError(
            "file is empty", file=path, field="#Columns",
            fix="re-export the file from Axioma; it needs a '#Columns:' header and data rows",
        )
    flat = _read_flat_fast(path, raw)
    if flat is None:
        flat = _read_flat_lines(path, text)
    # strip, then empty -> null (two passes are faster than stripping inside the when)
    columns = flat.columns
    flat.data = flat.data.select(pl.col(c).str.strip_chars() for c in columns).select(
        pl.when(pl.col(c).str.len_bytes() > 0).then(pl.col(c)).alias(c) for c in columns
    )
    return flat


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(
            "file not found", file=path,
            fix="check the path, or export this file with the rest of the Axioma model",
        ) from None
    except OSError as exc:
        raise DataError(
            f"cannot be read ({exc.strerror or exc})", file=path,
            fix="check that the file exists, is a regular file and is readable",
        ) from None
    return raw[len(_BOM):] if raw.startswith(_BOM) else raw


def _header_line(path: Path, line: str, number: int, columns: list[str] | None,
                 metadata: dict[str, str]) -> list[str] | None:
    """Record one stripped '#' line; returns the columns (new or unchanged)."""
    key, colon, value = line[1:].partition(":")
    key = key.strip()
    if colon and key.lower() == "columns":
        if columns is not None:
            raise DataError(
                f"line {number} is a second '#Columns:' header", file=path, field="#Columns",
                fix="keep exactly one '#Columns:' line naming the columns",
            )
        columns = [c.strip() for c in value.split(SEPARATOR)]
        _check_column_names(path, columns)
    elif colon and key:  # '#Key: value'; a free-text '#' comment is ignored
        metadata[key] = value.strip()
    return columns


def _csv(data: bytes, columns: list[str], skip_lines: int = 0) -> pl.DataFrame:
    return pl.read_csv(
        io.BytesIO(data),
        skip_lines=skip_lines,
        separator=SEPARATOR,
        comment_prefix="#",
        has_header=False,
        new_columns=columns,
        infer_schema=False,  # all String; numbers are cast (and checked) afterwards
        quote_char=None,
        truncate_ragged_lines=False,  # a row with too many fields raises
    )


def _read_flat_fast(path: Path, raw: bytes) -> FlatFile | None:
    """The common case in one Polars call: '#' header lines on top, then data rows only.

    Returns None (use the line-by-line reader, which reports exact lines) for anything
    unusual: no header, blank or '#' lines among the rows, or a row with the wrong number
    of fields. Proof that a frame returned here has every row right: Polars raises on a row
    with too many fields, makes one row per line unless it skips a '#' line (then the row
    count differs), and the separators add up to exactly (columns - 1) per line.
    """
    columns: list[str] | None = None
    metadata: dict[str, str] = {}
    pos, number = 0, 0
    while pos < len(raw):
        nl = raw.find(b"\n", pos)
        nl = len(raw) if nl < 0 else nl
        line = raw[pos:nl].strip()
        if line and not line.startswith(b"#"):
            break
        number += 1
        if line:
            columns = _header_line(path, line.decode("utf-8"), number, columns, metadata)
        pos = nl + 1
    if columns is None or len(columns) < 2 or pos >= len(raw):
        return None
    rows = raw.count(b"\n", pos) + (0 if raw.endswith(b"\n") else 1)
    if raw.count(SEPARATOR.encode(), pos) != rows * (len(columns) - 1):
        return None  # includes trailing blank lines: the line reader skips them
    try:
        frame = _csv(raw, columns, skip_lines=number)  # no copy of the data
    except pl.exceptions.PolarsError:
        return None
    if frame.shape != (rows, len(columns)):
        return None
    return FlatFile(path, columns, frame, metadata, list(range(number + 1, number + 1 + rows)))


def _read_flat_lines(path: Path, text: str) -> FlatFile:
    """Line-by-line reader: slower, but names the exact line of every problem."""
    columns: list[str] | None = None
    metadata: dict[str, str] = {}
    data_lines: list[str] = []
    line_numbers: list[int] = []
    for number, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            key, colon, _ = stripped[1:].partition(":")
            if data_lines and colon and key.strip().lower() == "columns":
                raise DataError(
                    f"the '#Columns:' header on line {number} comes after data rows "
                    f"(first on line {line_numbers[0]})",
                    file=path, field="#Columns",
                    fix="put the '#Columns:' header above the data rows",
                )
            columns = _header_line(path, stripped, number, columns, metadata)
            continue
        data_lines.append(line.rstrip("\r"))
        line_numbers.append(number)

    if columns is None:
        raise DataError(
            "no '#Columns:' header line", file=path, field="#Columns",
            fix="add a header line such as '#Columns: AxiomaID|Factor1|Factor2' above the data",
        )
    if not data_lines:
        raise DataError(
            "file has a header but no data rows", file=path, field=columns[0],
            fix="re-export the file from Axioma; it has no rows",
        )

    expected = len(columns) - 1
    bad = [i for i, line in enumerate(data_lines) if line.count(SEPARATOR) != expected]
    if bad:
        shown = bad[:5]
        detail = "; ".join(
            f"line {line_numbers[i]} has {data_lines[i].count(SEPARATOR) + 1}" for i in shown
        )
        more = f" and {len(bad) - len(shown)} more" if len(bad) > len(shown) else ""
        raise DataError(
            f"{len(bad)} row(s) with the wrong number of '|'-separated fields: the "
            f"'#Columns:' header names {len(columns)} ({detail}{more})",
            file=path, field="#Columns",
            ids=[data_lines[i].split(SEPARATOR, 1)[0].strip() for i in shown],
            fix=f"give every row exactly {len(columns)} fields, one per '#Columns:' name "
                "(leave a field empty, not missing)",
        )

    try:
        frame = _csv("\n".join(data_lines).encode("utf-8"), columns)
    except pl.exceptions.PolarsError as exc:
        raise DataError(
            f"could not be parsed ({type(exc).__name__}: {exc})", file=path,
            field="#Columns", fix="check that the file is a '|'-delimited Axioma flat file",
        ) from None
    if frame.shape != (len(data_lines), len(columns)):
        raise DataError(
            f"parsed {frame.height} rows x {frame.width} columns, expected "
            f"{len(data_lines)} x {len(columns)}",
            file=path, field="#Columns",
            fix="check that the file is a '|'-delimited Axioma flat file",
        )
    return FlatFile(path, columns, frame, metadata, line_numbers)


def _check_column_names(path: Path, columns: list[str]) -> None:
    empty = [str(i + 1) for i, c in enumerate(columns) if not c]
    if empty:
        raise DataError(
            f"the '#Columns:' header has unnamed column(s) at position(s) {', '.join(empty)}",
            file=path, field="#Columns",
            fix="name every column in the '#Columns:' header and remove stray '|' separators",
        )
    seen: set[str] = set()
    dupes = [c for c in columns if c in seen or seen.add(c)]
    if dupes:
        raise DataError(
            "the '#Columns:' header names a column more than once", file=path,
            field="#Columns", ids=sorted(set(dupes)),
            fix="give every column a distinct name",
        )


def _encoding_error(path: Path, raw: bytes, exc: UnicodeDecodeError) -> DataError:
    pos = exc.start
    line_start = raw.rfind(b"\n", 0, pos) + 1
    line_no = raw.count(b"\n", 0, pos) + 1
    column_index = raw.count(SEPARATOR.encode(), line_start, pos)
    field_name: str | None = None
    for header in raw[:line_start].decode("utf-8").split("\n"):
        key, _, value = header.strip().lstrip("#").partition(":")
        if header.strip().startswith("#") and key.strip().lower() == "columns":
            names = [c.strip() for c in value.split(SEPARATOR)]
            if column_index < len(names):
                field_name = names[column_index]
    first = raw[line_start:].split(b"\n", 1)[0].split(SEPARATOR.encode(), 1)[0]
    row_id = first.decode("utf-8", errors="replace").strip()
    return DataError(
        f"is not valid UTF-8: byte 0x{raw[pos]:02x} on line {line_no}",
        file=path, field=field_name, ids=[row_id] if row_id else None,
        fix="re-export the file as UTF-8 (or convert it, e.g. iconv -f latin1 -t utf-8)",
    )


# --------------------------------------------------------------------------- helpers


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name).lower()


def _find_column(columns: Sequence[str], candidates: Sequence[str]) -> str | None:
    normalized = {_norm(c): c for c in reversed(columns)}
    for cand in candidates:
        if cand in normalized:
            return normalized[cand]
    return None


@contextmanager
def _guard(path: Path, field_name: str | None = None) -> Iterator[None]:
    """Turn any library error on bad content into a DataError naming the file."""
    try:
        yield
    except DataError:
        raise
    except (pl.exceptions.PolarsError, np.linalg.LinAlgError, ValueError, TypeError,
            ArithmeticError, UnicodeError, OSError) as exc:
        raise DataError(
            f"could not be read ({type(exc).__name__}: {exc})", file=path, field=field_name,
            fix="check the file against the Axioma flat-file format",
        ) from None


def _numeric(
    flat: FlatFile, value_cols: Sequence[str], id_col: str, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Cast string columns to a float matrix; returns (values with nan for empty, present mask).

    A non-empty field that is not a finite number is a DataError naming the row id(s) and
    column.
    """
    data = flat.data
    values = data.select(
        pl.col(c).cast(pl.Float64, strict=False) for c in value_cols
    ).to_numpy().astype(np.float64, copy=False)
    present = data.select(pl.col(c).is_not_null() for c in value_cols).to_numpy()
    values = values.reshape(data.height, len(value_cols))
    present = present.reshape(data.height, len(value_cols))
    bad = present & ~np.isfinite(values)
    if bad.any():
        rows, cols = np.nonzero(bad)
        ids = data.get_column(id_col).to_list()
        raw_cols = {c: data.get_column(value_cols[c]) for c in set(cols[:5].tolist())}
        examples = "; ".join(
            f"{ids[r]!s} / {value_cols[c]} = {raw_cols[c][int(r)]!r} (line "
            f"{flat.line_numbers[r]})"
            for r, c in zip(rows[:5], cols[:5])
        )
        bad_cols = sorted({value_cols[c] for c in cols}, key=list(value_cols).index)
        raise DataError(
            f"{int(bad.sum())} {what} value(s) are not finite numbers ({examples})",
            file=flat.path, field=bad_cols[0] if len(bad_cols) == 1 else ", ".join(bad_cols[:5]),
            ids=list(dict.fromkeys(str(ids[r]) for r in rows)),
            fix=f"write every {what} as a plain decimal number (e.g. 0.25), or leave the "
                "field empty",
        )
    return values, present


def _lines(numbers: Sequence[int]) -> str:
    return f"line {numbers[0]}" if len(numbers) == 1 else f"lines {sample_ids(numbers)}"


def _check_ids(flat: FlatFile, id_col: str, what: str) -> None:
    ids = flat.data.get_column(id_col)
    if ids.null_count():
        lines = [flat.line_numbers[i] for i in ids.is_null().arg_true().to_list()]
        raise DataError(
            f"{len(lines)} row(s) have an empty {what} ({_lines(lines)})",
            file=flat.path, field=id_col,
            fix=f"fill in the {what} on every row or delete those rows",
        )
    dupes = ids.filter(ids.is_duplicated()).unique(maintain_order=True)
    if dupes.len():
        raise DataError(
            f"{dupes.len()} {what}(s) appear on more than one row", file=flat.path,
            field=id_col, ids=dupes.to_list(),
            fix=f"keep one row per {what} (the file may be two exports concatenated)",
        )


def _model_file(directory: Path, name: str, ext: str, *, required: bool = True) -> Path | None:
    path = directory / f"{name}.{ext}"
    if path.is_file():
        return path
    target = f"{name}.{ext}".lower()
    for candidate in sorted(directory.iterdir()):
        if candidate.name.lower() == target and candidate.is_file():
            return candidate
    if not required:
        return None
    raise DataError(
        "file not found", file=path, field=None,
        fix=f"export {name}.{ext} with the other files of the Axioma model into {directory}",
    )


def _resolve_name(directory: Path, name: str | None) -> str:
    if not directory.is_dir():
        raise DataError(
            "directory not found", file=directory,
            fix="pass the folder that holds the Axioma .exp/.cov/.rsk files",
        )
    if name is not None:
        for ext in (".exp", ".cov", ".rsk", ".att"):
            if name.lower().endswith(ext):
                return name[: -len(ext)]
        return name
    stems = sorted(p.stem for p in directory.iterdir()
                   if p.is_file() and p.suffix.lower() == ".exp")
    if len(stems) == 1:
        return stems[0]
    if not stems:
        raise DataError(
            "no Axioma exposure file (*.exp) in the directory", file=directory,
            fix="export the model's .exp, .cov and .rsk files into this folder",
        )
    raise DataError(
        f"holds {len(stems)} Axioma models; cannot tell which to read", file=directory,
        ids=stems, fix="pass name=<file stem> to choose one model",
    )


# --------------------------------------------------------------------------- the files


def _read_exposures(path: Path) -> tuple[str, list[str], pl.DataFrame, dict[str, str]]:
    """Returns (id column, factor names, frame of vendor_id + factor_loadings, metadata)."""
    flat = _read_flat(path)
    with _guard(path):
        if len(flat.columns) < 2:
            raise DataError(
                "the '#Columns:' header names no factor columns", file=path,
                field=flat.columns[0],
                fix="the exposure file needs the asset id column followed by one column "
                    "per factor",
            )
        id_col, factors = flat.columns[0], flat.columns[1:]
        _check_ids(flat, id_col, "asset id")
        values, present = _numeric(flat, factors, id_col, "exposure")
        values[~present] = 0.0  # empty = no exposure (industry/country dummies)
        loadings = pl.Series(
            "factor_loadings", values, dtype=pl.Array(pl.Float64, len(factors))
        ).cast(pl.List(pl.Float64))
        frame = pl.DataFrame(
            {"vendor_id": flat.data.get_column(id_col), "factor_loadings": loadings}
        )
    return id_col, factors, frame, flat.metadata


def _is_long_cov(columns: Sequence[str]) -> bool:
    if len(columns) != 3:
        return False
    a, b, c = (_norm(x) for x in columns)
    return bool(_LONG_FACTOR.match(a) and _LONG_FACTOR.match(b)) and c in _LONG_VALUE


def _read_covariance(path: Path, factors: list[str]) -> tuple[np.ndarray, dict[str, str]]:
    """The factor covariance in decimal units, ordered as `factors` (the .exp columns)."""
    flat = _read_flat(path)
    with _guard(path):
        if _is_long_cov(flat.columns):
            matrix, cov_factors = _long_cov(flat)
        else:
            matrix, cov_factors = _square_cov(flat)
        _match_factors(path, flat.columns[0], cov_factors, factors)
        index = {f: i for i, f in enumerate(cov_factors)}
        order = np.array([index[f] for f in factors], dtype=np.int64)
        matrix = matrix[np.ix_(order, order)] / PERCENT_SQUARED
        value_col = flat.columns[2] if _is_long_cov(flat.columns) else None
        _check_symmetric_psd(path, value_col, matrix, factors)
        matrix = (matrix + matrix.T) / 2.0  # exact when the file is symmetric
    return matrix, flat.metadata


def _square_cov(flat: FlatFile) -> tuple[np.ndarray, list[str]]:
    name_col, col_factors = flat.columns[0], flat.columns[1:]
    if not col_factors:
        raise DataError(
            "the '#Columns:' header names no factor columns", file=flat.path, field=name_col,
            fix="the covariance file needs the factor-name column followed by one column per "
                "factor (or long form: FactorName1|FactorName2|Covariance)",
        )
    _check_ids(flat, name_col, "factor name")
    row_factors = flat.data.get_column(name_col).to_list()
    row_set, col_set = set(row_factors), set(col_factors)
    missing_rows = [f for f in col_factors if f not in row_set]
    extra_rows = [f for f in row_factors if f not in col_set]
    if missing_rows or extra_rows:
        parts = []
        if missing_rows:
            parts.append(f"no row for column(s) {sample_ids(missing_rows)}")
        if extra_rows:
            parts.append(f"row(s) {sample_ids(extra_rows)} have no column")
        raise DataError(
            "the covariance matrix is not square: " + "; ".join(parts), file=flat.path,
            field=name_col, ids=missing_rows + extra_rows,
            fix="give the covariance file one row and one column for every factor",
        )
    values, present = _numeric(flat, col_factors, name_col, "covariance")
    if not present.all():
        rows, cols = np.nonzero(~present)
        pairs = [f"{row_factors[r]}/{col_factors[c]}" for r, c in zip(rows, cols)]
        raise DataError(
            f"{len(pairs)} covariance value(s) are empty", file=flat.path,
            field=col_factors[int(cols[0])], ids=pairs,
            fix="fill in every entry of the factor covariance matrix",
        )
    col_index = {f: j for j, f in enumerate(col_factors)}
    order = np.array([col_index[f] for f in row_factors], dtype=np.int64)
    # rows re-ordered to the column order, so matrix[i, j] = cov(col_factors[i], col_factors[j])
    matrix = np.empty_like(values)
    matrix[order, :] = values
    return matrix, list(col_factors)


def _long_cov(flat: FlatFile) -> tuple[np.ndarray, list[str]]:
    col_i, col_j, col_v = flat.columns
    data = flat.data
    for col in (col_i, col_j):
        if data.get_column(col).null_count():
            lines = [flat.line_numbers[i] for i in data.get_column(col).is_null().arg_true()]
            raise DataError(
                f"{len(lines)} row(s) have an empty factor name ({_lines(lines)})",
                file=flat.path, field=col, fix="fill in both factor names on every row",
            )
    labels = pl.concat_str([pl.col(col_i), pl.lit("/"), pl.col(col_j)])
    flat_pairs = FlatFile(flat.path, flat.columns, data.with_columns(labels.alias("__pair")),
                          flat.metadata, flat.line_numbers)
    values, present = _numeric(flat_pairs, [col_v], "__pair", "covariance")
    if not present.all():
        pairs = flat_pairs.data.get_column("__pair").filter(~pl.Series(present[:, 0]))
        raise DataError(
            f"{pairs.len()} covariance value(s) are empty", file=flat.path, field=col_v,
            ids=pairs.to_list(), fix="fill in the covariance on every row",
        )
    fi = data.get_column(col_i).to_list()
    fj = data.get_column(col_j).to_list()
    cov_factors = list(dict.fromkeys(fi + fj))
    index = {f: k for k, f in enumerate(cov_factors)}
    k = len(cov_factors)
    ii = np.fromiter((index[f] for f in fi), dtype=np.int64, count=len(fi))
    jj = np.fromiter((index[f] for f in fj), dtype=np.int64, count=len(fj))
    seen = np.zeros((k, k), dtype=np.int64)
    np.add.at(seen, (ii, jj), 1)
    if (seen > 1).any():
        dup = [f"{cov_factors[a]}/{cov_factors[b]}" for a, b in zip(*np.nonzero(seen > 1))]
        raise DataError(
            f"{len(dup)} factor pair(s) appear on more than one row", file=flat.path,
            field=col_v, ids=dup, fix="keep one row per factor pair",
        )
    matrix = np.full((k, k), np.nan)
    matrix[ii, jj] = values[:, 0]
    # one triangle is enough: fill each missing entry from its transpose
    from_transpose = np.isnan(matrix) & ~np.isnan(matrix.T)
    matrix[from_transpose] = matrix.T[from_transpose]
    if np.isnan(matrix).any():
        gaps = [f"{cov_factors[a]}/{cov_factors[b]}"
                for a, b in zip(*np.nonzero(np.isnan(matrix))) if a <= b]
        raise DataError(
            f"{len(gaps)} factor pair(s) have no covariance row", file=flat.path, field=col_v,
            ids=gaps, fix="give a row for every pair of factors (one triangle, diagonal "
                          "included, is enough)",
        )
    return matrix, cov_factors


def _match_factors(path: Path, field_name: str, cov_factors: list[str],
                   factors: list[str]) -> None:
    cov_set, exp_set = set(cov_factors), set(factors)
    missing = [f for f in factors if f not in cov_set]
    extra = [f for f in cov_factors if f not in exp_set]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} factor(s) of the exposure file: "
                         f"{sample_ids(missing)}")
        if extra:
            parts.append(f"{len(extra)} factor(s) not in the exposure file: "
                         f"{sample_ids(extra)}")
        raise DataError(
            "factors do not match the exposure file: " + "; ".join(parts), file=path,
            field=field_name, ids=missing + extra,
            fix="use the .cov and .exp files of the same model and date; they must list "
                "the same factors",
        )


def _check_symmetric_psd(path: Path, value_col: str | None, matrix: np.ndarray,
                         factors: list[str]) -> None:
    """value_col names the field in long form; in square form the offending factor column."""
    diff = np.abs(matrix - matrix.T)
    scale = np.maximum(np.abs(matrix), np.abs(matrix.T))
    floor = 1e-300 + 1e-15 * float(np.max(np.abs(matrix), initial=0.0))
    asym = diff > SYMMETRY_RTOL * scale + floor
    if asym.any():
        pairs = [(a, b) for a, b in zip(*np.nonzero(asym)) if a < b]
        shown = "; ".join(
            f"{factors[a]}/{factors[b]} = {matrix[a, b] * PERCENT_SQUARED:.10g} but "
            f"{factors[b]}/{factors[a]} = {matrix[b, a] * PERCENT_SQUARED:.10g}"
            for a, b in pairs[:3]
        )
        raise DataError(
            f"the factor covariance is not symmetric ({len(pairs)} pair(s): {shown})",
            file=path, field=value_col or factors[pairs[0][1]],
            ids=[f"{factors[a]}/{factors[b]}" for a, b in pairs],
            fix="re-export the covariance; cov(i, j) must equal cov(j, i)",
        )
    sym = (matrix + matrix.T) / 2.0
    trace = float(np.trace(sym))
    smallest = float(np.linalg.eigvalsh(sym)[0])
    if smallest < -PSD_TOL * abs(trace):
        vec = np.linalg.eigh(sym)[1][:, 0]
        top = np.argsort(-np.abs(vec))[:5]
        raise DataError(
            f"the factor covariance is not positive semidefinite (smallest eigenvalue "
            f"{smallest:.6g} vs trace {trace:.6g}, decimal units); the factors weighing "
            "most in that direction are listed",
            file=path, field=value_col or factors[int(top[0])],
            ids=[factors[i] for i in top],
            fix="re-export the covariance from Axioma unedited (check for a negative variance "
                "or a wrongly scaled row/column)",
        )


def _read_specific_risk(path: Path, exp_id_col: str) -> tuple[pl.DataFrame, dict[str, str]]:
    """vendor_id, idio_variance (null when the Specific Risk field is empty)."""
    flat = _read_flat(path)
    with _guard(path):
        id_col = _find_column(flat.columns, [_norm(exp_id_col), *_ID_NAMES]) or flat.columns[0]
        spec_col = _find_column(flat.columns, ["specificrisk"])
        if spec_col is None:
            raise DataError(
                f"no 'Specific Risk' column (columns are {', '.join(flat.columns)})",
                file=path, field="Specific Risk",
                fix="export the asset-risk file with its 'Specific Risk' column",
            )
        _check_ids(flat, id_col, "asset id")
        values, present = _numeric(flat, [spec_col], id_col, "specific risk")
        vol = values[:, 0]
        negative = present[:, 0] & (vol < 0)
        if negative.any():
            ids = flat.data.get_column(id_col).filter(pl.Series(negative))
            raise DataError(
                f"{int(negative.sum())} specific risk value(s) are negative", file=path,
                field=spec_col, ids=ids.to_list(),
                fix="specific risk is an annual volatility in percent and cannot be negative",
            )
        idio = vol * vol / (PERCENT * PERCENT)  # exact for whole percents: 10 -> 0.01
        idio[~present[:, 0]] = np.nan
        frame = pl.DataFrame({
            "vendor_id": flat.data.get_column(id_col),
            "idio_variance": pl.Series(idio, dtype=pl.Float64).fill_nan(None),
        })
    return frame, flat.metadata


def _read_kinds(path: Path | None, factors: list[str]) -> list[str]:
    if path is None:
        return [_infer_kind(f) for f in factors]
    flat = _read_flat(path)
    with _guard(path):
        name_col = _find_column(flat.columns, _ATT_NAME)
        type_col = _find_column(flat.columns, _ATT_TYPE)
        if (name_col is None or type_col is None) and len(flat.columns) == 2:
            name_col, type_col = flat.columns
        if name_col is None or type_col is None:
            raise DataError(
                f"cannot find the factor name and type columns (columns are "
                f"{', '.join(flat.columns)})",
                file=path, field="FactorType" if name_col else "FactorName",
                fix="name the columns '#Columns: FactorName|FactorType'",
            )
        _check_ids(flat, name_col, "factor name")
        names = flat.data.get_column(name_col).to_list()
        types = flat.data.get_column(type_col).to_list()
        kinds: dict[str, str] = {}
        unknown: list[str] = []
        for n, t in zip(names, types):
            kind = _KIND_ALIASES.get(_norm(t or ""))
            if kind is None:
                unknown.append(f"{n}={t or '(empty)'}")
            kinds[n] = kind or ""
        if unknown:
            raise DataError(
                f"{len(unknown)} factor type(s) are not recognised", file=path,
                field=type_col, ids=unknown,
                fix="use one of Style, Industry, Country, Currency, Market, Local or "
                    "Market Intercept",
            )
        missing = [f for f in factors if f not in kinds]
        if missing:
            raise DataError(
                f"{len(missing)} factor(s) of the exposure file have no attribute row",
                file=path, field=name_col, ids=missing,
                fix="add a FactorName|FactorType row for every factor, or delete the .att "
                    "file to infer kinds from the names",
            )
    return [kinds[f] for f in factors]


def _infer_kind(factor: str) -> str:
    if factor.strip() in _ISO_CURRENCIES:
        return "currency"
    if _norm(factor) in _MARKET_NAMES:
        return "market"
    return "style"


def _apply_id_map(
    frame: pl.DataFrame, id_map: pl.DataFrame | None, exp_path: Path
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(frame with instrument_id, unmapped vendor ids)."""
    vendor = frame.get_column("vendor_id")
    if id_map is None:
        return frame.with_columns(vendor.alias("instrument_id")), pl.DataFrame(
            schema=VENDOR_ID_SCHEMA)
    for col in ("vendor_id", "instrument_id"):
        if col not in id_map.columns:
            raise DataError(
                f"id_map has no '{col}' column (columns are {', '.join(id_map.columns)})",
                field=col, fix="pass id_map with columns vendor_id and instrument_id",
            )
    with _guard(exp_path, "vendor_id"):
        mapping = (
            id_map.select(
                pl.col("vendor_id").cast(pl.String).str.strip_chars(),
                pl.col("instrument_id").cast(pl.String),
            )
            .filter(pl.col("vendor_id").is_not_null() & pl.col("instrument_id").is_not_null())
            .unique(maintain_order=True)
        )
    dupes = mapping.filter(pl.col("vendor_id").is_duplicated())
    if dupes.height:
        raise DataError(
            "id_map maps a vendor_id to more than one instrument_id", field="vendor_id",
            ids=dupes.get_column("vendor_id").unique(maintain_order=True).to_list(),
            fix="keep one instrument_id per vendor_id in id_map",
        )
    mapped = frame.with_columns(
        vendor.replace_strict(mapping.get_column("vendor_id"),
                              mapping.get_column("instrument_id"),
                              default=None, return_dtype=pl.String).alias("instrument_id")
    )
    unmapped = mapped.filter(pl.col("instrument_id").is_null()).select("vendor_id")
    return mapped.filter(pl.col("instrument_id").is_not_null()), unmapped


# --------------------------------------------------------------------------- public API


def read_axioma(
    directory: Path,
    *,
    name: str | None = None,
    factor_set_name: str | None = None,
    id_map: pl.DataFrame | None = None,
) -> dict[str, pl.DataFrame]:
    """Read one Axioma flat-file model from `directory` into spo's risk tables.

    Returns a dict of frames:

    - "risk_model", "factors", "factor_covariance": exactly schemas.RISK_MODEL / FACTORS /
      FACTOR_COVARIANCE (covariance in long form, both triangles and the diagonal);
    - "unmapped": vendor_id of .exp assets with no row in `id_map` (empty without id_map);
    - "missing_specific_risk": vendor_id of .exp assets with no .rsk row or an empty
      Specific Risk; they are left out of risk_model;
    - "missing_exposures": vendor_id of .rsk assets with no .exp row (not in risk_model).

    `name` is the file stem (needed only when the directory holds several models);
    `factor_set_name` defaults to it. `id_map` has columns vendor_id, instrument_id.
    Raises DataError for any file that cannot be used.
    """
    directory = Path(directory)
    stem = _resolve_name(directory, name)
    set_name = factor_set_name if factor_set_name is not None else stem
    exp_path = _model_file(directory, stem, "exp")
    cov_path = _model_file(directory, stem, "cov")
    rsk_path = _model_file(directory, stem, "rsk")
    att_path = _model_file(directory, stem, "att", required=False)

    id_col, factors, exposures, exp_meta = _read_exposures(exp_path)
    matrix, cov_meta = _read_covariance(cov_path, factors)
    specific, rsk_meta = _read_specific_risk(rsk_path, id_col)
    kinds = _read_kinds(att_path, factors)
    _check_dates({exp_path: exp_meta, cov_path: cov_meta, rsk_path: rsk_meta})

    with _guard(rsk_path, "vendor_id"):
        joined = exposures.join(specific, on="vendor_id", how="left", maintain_order="left")
        missing_specific = joined.filter(pl.col("idio_variance").is_null()).select("vendor_id")
        missing_exposures = specific.join(
            exposures.select("vendor_id"), on="vendor_id", how="anti", maintain_order="left"
        ).select("vendor_id")
    mapped, unmapped = _apply_id_map(joined, id_map, exp_path)
    usable = mapped.filter(pl.col("idio_variance").is_not_null())
    dup_instruments = usable.filter(pl.col("instrument_id").is_duplicated())
    if dup_instruments.height:
        raise DataError(
            "id_map maps several vendor ids of the exposure file to the same instrument_id",
            file=exp_path, field=id_col,
            ids=[f"{v}->{i}" for v, i in dup_instruments.select("vendor_id", "instrument_id")
                 .iter_rows()],
            fix="map each instrument_id from exactly one vendor_id",
        )

    risk_model = usable.select(
        pl.col("instrument_id"),
        pl.col("factor_loadings"),
        pl.col("idio_variance"),
        pl.lit(MODEL_TYPE).alias("model_type"),
        pl.lit(set_name).alias("factor_set_name"),
    )
    k = len(factors)
    factor_frame = pl.DataFrame({
        "factor_set_name": [set_name] * k,
        "name": factors,
        "kind": kinds,
        "position": np.arange(k, dtype=np.int64),
    })
    covariance = pl.DataFrame({
        "factor_set_name": [set_name] * (k * k),
        "factor_i": np.repeat(np.array(factors, dtype=object), k).tolist(),
        "factor_j": np.tile(np.array(factors, dtype=object), k).tolist(),
        "covariance": matrix.ravel(),
    })
    return {
        "risk_model": _conform(risk_model, schemas.RISK_MODEL),
        "factors": _conform(factor_frame, schemas.FACTORS),
        "factor_covariance": _conform(covariance, schemas.FACTOR_COVARIANCE),
        "unmapped": _conform_ids(unmapped),
        "missing_specific_risk": _conform_ids(missing_specific),
        "missing_exposures": _conform_ids(missing_exposures),
    }


def _check_dates(metas: dict[Path, dict[str, str]]) -> None:
    dates = {}
    for path, meta in metas.items():
        for key, value in meta.items():
            if _norm(key) == "datadate" and value:
                dates[path] = value
    if len(set(dates.values())) > 1:
        reference = next(iter(dates.values()))  # the .exp date when it has one
        odd = [p for p, d in dates.items() if d != reference]
        shown = ", ".join(f"{p.name}={d}" for p, d in dates.items())
        raise DataError(
            f"the files are for different dates ({shown})", file=odd[0], field="#DataDate",
            ids=[p.name for p in odd],
            fix="use the .exp, .cov and .rsk files exported for the same date",
        )


def _conform(frame: pl.DataFrame, spec: schemas.TableSpec) -> pl.DataFrame:
    return frame.select(pl.col(c.name).cast(c.dtype) for c in spec.columns)


def _conform_ids(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(pl.col("vendor_id").cast(pl.String))
