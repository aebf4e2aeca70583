"""Tests for the Axioma flat-file reader (core/data/axioma.py).

Every test writes its own small Axioma-style model into a temporary folder with
`write_model`, then reads it back with `read_axioma`.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.data import schemas
from core.data.axioma import parse_flat_file, read_axioma
from core.errors import DataError

FACTORS = ["Value", "Size", "Momentum", "Banks", "Software", "US", "USD", "Market Intercept"]
KINDS = ["Style", "Style", "Style", "Industry", "Industry", "Country", "Currency",
         "Market Intercept"]
DATE = "2026-11-20"


def _fmt(x: float) -> str:
    """A float as written by the vendor; NaN means an empty field."""
    return "" if isinstance(x, float) and math.isnan(x) else repr(float(x))


def _header(columns: list[str], types: list[str], units: list[str], date: str) -> list[str]:
    return [
        f"#DataDate: {date}",
        "#CreationTimestamp: 2026-11-21 02:49:12",
        "#ModelName: AXWW4-MH",
        "#ModelNumeraire: USD",
        "#FlatFileVersion: 3.3",
        "#Columns: " + "|".join(columns),
        "#Type: " + "|".join(types),
        "#Unit: " + "|".join(units),
    ]


def write_model(
    directory: Path,
    name: str = "AXWW4-MH.20261120",
    *,
    ids: list[str],
    factors: list[str],
    exposures: np.ndarray,  # N x K, NaN -> empty field
    cov_pct: np.ndarray,  # K x K, annual %^2
    spec_pct: np.ndarray,  # N, annual %, NaN -> empty field
    kinds: list[str] | None = None,  # .att FactorType per factor; None -> no .att file
    cov_form: str = "square",  # "square", "long" (both triangles) or "upper" (one triangle)
    rsk_ids: list[str] | None = None,  # defaults to ids
    date: str = DATE,
    cov_date: str | None = None,
) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    k = len(factors)
    paths = {ext: directory / f"{name}.{ext}" for ext in ("exp", "cov", "rsk", "att")}

    lines = _header(["AxiomaID", *factors], ["ID", *(kinds or ["Style"] * k)],
                    ["ID", *["Number"] * k], date)
    lines += ["|".join([i, *(_fmt(x) for x in row)]) for i, row in zip(ids, exposures)]
    paths["exp"].write_text("\n".join(lines) + "\n", encoding="utf-8")

    if cov_form == "square":
        lines = _header(["FactorName", *factors], ["ID", *["Number"] * k],
                        ["ID", *["Percent^2"] * k], cov_date or date)
        lines += ["|".join([f, *(_fmt(x) for x in row)]) for f, row in zip(factors, cov_pct)]
    else:
        lines = _header(["FactorName1", "FactorName2", "Covariance"], ["ID", "ID", "Number"],
                        ["ID", "ID", "Percent^2"], cov_date or date)
        for a in range(k):
            for b in range(k):
                if cov_form == "long" or a <= b:
                    lines.append(f"{factors[a]}|{factors[b]}|{_fmt(cov_pct[a, b])}")
    paths["cov"].write_text("\n".join(lines) + "\n", encoding="utf-8")

    rsk_ids = ids if rsk_ids is None else rsk_ids
    lines = _header(["AxiomaID", "Specific Risk", "Total Risk", "Historical Beta",
                     "Predicted Beta"], ["ID", "Number", "Number", "Number", "Number"],
                    ["ID", "Percent", "Percent", "Number", "Number"], date)
    total = np.where(np.isnan(spec_pct), 30.0, spec_pct * 1.5)  # Total Risk is not used
    lines += [f"{i}|{_fmt(s)}|{_fmt(t)}|1.0|0.95" for i, s, t in zip(rsk_ids, spec_pct, total)]
    paths["rsk"].write_text("\n".join(lines) + "\n", encoding="utf-8")

    if kinds is not None:
        lines = _header(["FactorName", "FactorType"], ["ID", "Text"], ["ID", "Text"], date)
        lines += [f"{f}|{t}" for f, t in zip(factors, kinds)]
        paths["att"].write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        del paths["att"]
    return paths


def basic_model(directory: Path, **overrides) -> tuple[dict[str, Path], dict]:
    """A 5-asset, 8-factor model with dummies left empty; returns (paths, inputs)."""
    rng = np.random.default_rng(7)
    k = len(FACTORS)
    ids = ["AX001", "AX002", "AX003", "AX004", "AX005"]
    exposures = np.full((len(ids), k), np.nan)
    exposures[:, :3] = rng.normal(size=(len(ids), 3)).round(6)
    exposures[[0, 2, 4], 3] = 1.0  # Banks
    exposures[[1, 3], 4] = 1.0  # Software
    exposures[:, 5] = 1.0  # US
    exposures[:, 6] = 1.0  # USD
    exposures[:, 7] = 1.0  # market intercept
    a = rng.normal(size=(k, k + 2))
    cov = (a @ a.T).round(4) * 10.0
    cov = (cov + cov.T) / 2.0
    cov[0, 0] = 400.0  # 20% vol -> 0.04
    cov[0, 1] = cov[1, 0] = 120.0
    spec = np.array([25.0, 30.0, 18.5, 42.0, 60.0])
    inputs = dict(ids=ids, factors=list(FACTORS), exposures=exposures, cov_pct=cov,
                  spec_pct=spec, kinds=list(KINDS))
    inputs.update(overrides)
    return write_model(directory, **inputs), inputs


def assert_schema(frame: pl.DataFrame, spec: schemas.TableSpec) -> None:
    assert frame.columns == [c.name for c in spec.columns]
    assert frame.dtypes == [c.dtype for c in spec.columns]


def cov_matrix(out: dict[str, pl.DataFrame], factors: list[str]) -> np.ndarray:
    index = {f: i for i, f in enumerate(factors)}
    m = np.full((len(factors), len(factors)), np.nan)
    for fi, fj, v in out["factor_covariance"].select(
            "factor_i", "factor_j", "covariance").iter_rows():
        m[index[fi], index[fj]] = v
    return m


# --------------------------------------------------------------------------- reading


def test_tables_match_schemas_and_loadings_round_trip(tmp_path):
    _, inp = basic_model(tmp_path)
    out = read_axioma(tmp_path)
    assert_schema(out["risk_model"], schemas.RISK_MODEL)
    assert_schema(out["factors"], schemas.FACTORS)
    assert_schema(out["factor_covariance"], schemas.FACTOR_COVARIANCE)
    for key in ("unmapped", "missing_specific_risk", "missing_exposures"):
        assert out[key].schema == pl.Schema({"vendor_id": pl.String()})
        assert out[key].height == 0

    rm = out["risk_model"]
    assert rm["instrument_id"].to_list() == inp["ids"]
    loadings = np.array(rm["factor_loadings"].to_list())
    expected = np.nan_to_num(inp["exposures"], nan=0.0)
    np.testing.assert_array_equal(loadings, expected)
    assert set(rm["model_type"]) == {"axioma"}
    assert set(rm["factor_set_name"]) == {"AXWW4-MH.20261120"}

    f = out["factors"]
    assert f["name"].to_list() == FACTORS
    assert f["position"].to_list() == list(range(len(FACTORS)))
    assert set(f["factor_set_name"]) == {"AXWW4-MH.20261120"}


def test_covariance_converted_from_percent_squared_both_triangles(tmp_path):
    _, inp = basic_model(tmp_path)
    out = read_axioma(tmp_path)
    cov = out["factor_covariance"]
    k = len(FACTORS)
    assert cov.height == k * k
    assert cov.select("factor_i", "factor_j").n_unique() == k * k
    m = cov_matrix(out, FACTORS)
    assert m[0, 0] == 0.04  # 400 %^2, exactly
    assert m[0, 1] == m[1, 0] == 0.012  # 120 %^2
    np.testing.assert_array_equal(m, m.T)
    np.testing.assert_allclose(m, inp["cov_pct"] / 10_000.0, rtol=0, atol=1e-15)


def test_specific_risk_percent_to_idio_variance(tmp_path):
    basic_model(tmp_path)
    rm = read_axioma(tmp_path)["risk_model"]
    assert rm["idio_variance"][0] == 0.0625  # 25 %
    assert rm["idio_variance"][1] == 0.09  # 30 %
    np.testing.assert_allclose(
        rm["idio_variance"].to_numpy(), (np.array([25.0, 30.0, 18.5, 42.0, 60.0]) / 100) ** 2,
        rtol=1e-15)


def test_factor_kinds_from_att_case_insensitive(tmp_path):
    kinds = ["STYLE", "style", "Style", "industry", "Industry", "Country", "CURRENCY", "Local"]
    basic_model(tmp_path, kinds=kinds)
    f = read_axioma(tmp_path)["factors"]
    assert f["kind"].to_list() == ["style", "style", "style", "industry", "industry",
                                   "country", "currency", "market"]
    basic_model(tmp_path / "b")  # the default 'Market Intercept' type
    assert read_axioma(tmp_path / "b")["factors"]["kind"].to_list()[-1] == "market"


def test_factor_kinds_inferred_without_att(tmp_path):
    basic_model(tmp_path, kinds=None)
    assert not list(tmp_path.glob("*.att"))
    kinds = dict(read_axioma(tmp_path)["factors"].select("name", "kind").iter_rows())
    assert kinds["USD"] == "currency"
    assert kinds["Value"] == kinds["Size"] == kinds["Banks"] == "style"
    assert kinds["Market Intercept"] == "market"


@pytest.mark.parametrize("form", ["long", "upper"])
def test_long_form_covariance_matches_square(tmp_path, form):
    basic_model(tmp_path / "square")
    basic_model(tmp_path / "long", cov_form=form)
    assert "FactorName1|FactorName2|Covariance" in next(
        (tmp_path / "long").glob("*.cov")).read_text()
    square = read_axioma(tmp_path / "square")
    long = read_axioma(tmp_path / "long")
    assert long["factor_covariance"].equals(square["factor_covariance"])
    assert long["risk_model"].equals(square["risk_model"])


def test_two_factor_square_cov_is_not_mistaken_for_long_form(tmp_path):
    # 3 columns, but named FactorName|Size|Value: a square 2x2 matrix
    write_model(tmp_path, ids=["A"], factors=["Size", "Value"],
                exposures=np.array([[0.5, -1.0]]), cov_pct=np.array([[4.0, 1.0], [1.0, 9.0]]),
                spec_pct=np.array([20.0]))
    m = cov_matrix(read_axioma(tmp_path), ["Size", "Value"])
    np.testing.assert_array_equal(m, [[4e-4, 1e-4], [1e-4, 9e-4]])


def test_empty_exposure_fields_read_as_zero(tmp_path):
    _, inp = basic_model(tmp_path)
    text = next(tmp_path.glob("*.exp")).read_text()
    assert "\nAX002|" in text and "||" in text  # dummies really written as empty fields
    loadings = np.array(read_axioma(tmp_path)["risk_model"]["factor_loadings"].to_list())
    assert loadings[1, 3] == 0.0 and loadings[0, 4] == 0.0
    assert not np.isnan(loadings).any()


def test_whitespace_crlf_and_bom_are_tolerated(tmp_path):
    paths, _ = basic_model(tmp_path / "clean")
    ref = read_axioma(tmp_path / "clean")
    messy = tmp_path / "messy"
    messy.mkdir()
    for ext, p in paths.items():
        lines = p.read_text().splitlines()
        lines = [" | ".join(f" {x} " for x in line.split("|")) if not line.startswith("#")
                 else line for line in lines]
        body = "\r\n".join(lines[:3] + [""] + lines[3:]) + "\r\n"
        (messy / p.name).write_bytes(b"\xef\xbb\xbf" + body.encode())
    out = read_axioma(messy)
    for key in ("risk_model", "factors", "factor_covariance"):
        assert out[key].equals(ref[key]), key


def test_blank_lines_comments_between_rows_and_no_final_newline(tmp_path):
    paths, _ = basic_model(tmp_path / "clean")
    ref = read_axioma(tmp_path / "clean")
    odd = tmp_path / "odd"
    odd.mkdir()
    for p in paths.values():
        lines = p.read_text().rstrip("\n").split("\n")
        lines.insert(10, "")  # between data rows
        lines.insert(11, "# a free-text comment")
        (odd / p.name).write_text("\n".join(lines) + "\n\n\n" if p.suffix == ".exp"
                                  else "\n".join(lines))
    out = read_axioma(odd)
    for key in ("risk_model", "factors", "factor_covariance"):
        assert out[key].equals(ref[key]), key
    _, data, meta = parse_flat_file(odd / paths["exp"].name)
    assert data.height == 5 and "a free-text comment" not in meta


def test_id_map_maps_and_reports_unmapped(tmp_path):
    basic_model(tmp_path)
    id_map = pl.DataFrame({"vendor_id": ["AX001", "AX002", "AX004", "AX999"],
                           "instrument_id": ["AAPL", "MSFT", "JPM", "XXX"]})
    out = read_axioma(tmp_path, id_map=id_map)
    assert out["risk_model"]["instrument_id"].to_list() == ["AAPL", "MSFT", "JPM"]
    assert out["unmapped"]["vendor_id"].to_list() == ["AX003", "AX005"]
    # the loadings follow their asset through the mapping
    full = read_axioma(tmp_path)["risk_model"]
    assert out["risk_model"]["factor_loadings"][2].to_list() == \
        full["factor_loadings"][3].to_list()


def test_missing_specific_risk_is_reported_not_fatal(tmp_path):
    spec = np.array([25.0, np.nan, 18.5, 42.0])  # AX002: empty field
    basic_model(tmp_path, rsk_ids=["AX001", "AX002", "AX003", "AX777"], spec_pct=spec)
    out = read_axioma(tmp_path)
    assert out["risk_model"]["instrument_id"].to_list() == ["AX001", "AX003"]
    assert out["missing_specific_risk"]["vendor_id"].to_list() == ["AX002", "AX004", "AX005"]
    assert out["missing_exposures"]["vendor_id"].to_list() == ["AX777"]


def test_name_selects_model_and_factor_set_name(tmp_path):
    basic_model(tmp_path, name="AXUS4-MH")
    basic_model(tmp_path, name="AXWW4-SH", ids=["Z1", "Z2", "Z3", "Z4", "Z5"])
    with pytest.raises(DataError) as err:
        read_axioma(tmp_path)
    assert "AXUS4-MH" in str(err.value) and "name=" in str(err.value)
    out = read_axioma(tmp_path, name="AXWW4-SH")
    assert out["risk_model"]["instrument_id"][0] == "Z1"
    assert set(out["factors"]["factor_set_name"]) == {"AXWW4-SH"}
    out = read_axioma(tmp_path, name="AXUS4-MH.exp", factor_set_name="global")
    assert set(out["risk_model"]["factor_set_name"]) == {"global"}
    assert set(out["factor_covariance"]["factor_set_name"]) == {"global"}


def test_parse_flat_file(tmp_path):
    paths, _ = basic_model(tmp_path)
    columns, data, meta = parse_flat_file(paths["rsk"])
    assert columns == ["AxiomaID", "Specific Risk", "Total Risk", "Historical Beta",
                       "Predicted Beta"]
    assert data.columns == columns and data.height == 5
    assert data["Specific Risk"][0] == "25.0"
    assert meta["DataDate"] == DATE and meta["Unit"].startswith("ID|Percent")


def test_reads_a_full_size_model(tmp_path):
    # Speed is measured by the bench harness, not here; this checks the fast path is exact.
    rng = np.random.default_rng(0)
    n, k = 15_000, 80
    factors = [f"F{j}" for j in range(k)]
    ids = [f"AX{i:07d}" for i in range(n)]
    body = pl.DataFrame({"AxiomaID": ids, **{f: rng.normal(size=n) for f in factors}})
    buf = body.write_csv(separator="|", include_header=False, quote_style="never")
    (tmp_path / "big.exp").write_text(f"#Columns: AxiomaID|{'|'.join(factors)}\n{buf}")
    a = rng.normal(size=(k, k + 5))
    write_model(tmp_path / "cov", name="big", ids=["x"], factors=factors,
                exposures=np.zeros((1, k)), cov_pct=(a @ a.T + (a @ a.T).T) / 2,
                spec_pct=np.array([20.0]))
    (tmp_path / "cov" / "big.cov").rename(tmp_path / "big.cov")
    rsk = pl.DataFrame({"AxiomaID": ids, "Specific Risk": rng.uniform(10, 60, n)})
    (tmp_path / "big.rsk").write_text(
        "#Columns: AxiomaID|Specific Risk\n"
        + rsk.write_csv(separator="|", include_header=False, quote_style="never"))
    out = read_axioma(tmp_path)
    assert out["risk_model"].height == n and out["factors"].height == k
    loadings = np.array(out["risk_model"].get_column("factor_loadings").to_list())
    expected = body.select(factors).to_numpy()
    assert np.allclose(loadings, expected, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- bad files


def _edit(path: Path, fn) -> None:
    path.write_text(fn(path.read_text()), encoding="utf-8")


def _replace_line(path: Path, startswith: str, new: str | None) -> None:
    lines = path.read_text().split("\n")
    out = [new if ln.startswith(startswith) else ln for ln in lines]
    path.write_text("\n".join(x for x in out if x is not None))


def _set_cov(paths, inp, cov):
    write_model(paths["exp"].parent, **{**inp, "cov_pct": cov})


def _bad_cases():
    """(id, corrupt(paths, inputs), file ext, field text, extra texts)."""
    return [
        ("missing_cov", lambda p, i: p["cov"].unlink(), "cov", None, ["not found"]),
        ("missing_rsk", lambda p, i: p["rsk"].unlink(), "rsk", None, ["not found"]),
        ("no_columns_header",
         lambda p, i: _replace_line(p["exp"], "#Columns", None), "exp", "#Columns", []),
        ("wrong_field_count",
         lambda p, i: _replace_line(p["exp"], "AX003", "AX003|1.0|2.0"), "exp", "#Columns",
         ["line 11", "AX003"]),
        ("non_numeric_exposure",
         lambda p, i: _replace_line(p["exp"], "AX002", "AX002|abc|1|1||1|1|1|1"),
         "exp", "Value", ["AX002", "'abc'", "line 10"]),
        ("nan_exposure",
         lambda p, i: _replace_line(p["exp"], "AX004",
                                    "AX004|nan|1|1|1||1|1|1"), "exp", "Value", ["AX004"]),
        ("non_numeric_specific_risk",
         lambda p, i: _replace_line(p["rsk"], "AX005", "AX005|n/a|30|1|1"),
         "rsk", "Specific Risk", ["AX005"]),
        ("negative_specific_risk",
         lambda p, i: _replace_line(p["rsk"], "AX005", "AX005|-3|30|1|1"),
         "rsk", "Specific Risk", ["AX005", "negative"]),
        ("no_specific_risk_column",
         lambda p, i: _edit(p["rsk"], lambda t: t.replace("Specific Risk", "Spec")),
         "rsk", "Specific Risk", []),
        ("cov_missing_factor", _cov_drop_factor, "cov", "FactorName", ["Momentum"]),
        ("cov_not_symmetric",
         lambda p, i: _set_cov(p, i, _asym(i["cov_pct"])), "cov", "Size",
         ["not symmetric", "Value/Size"]),
        ("cov_not_psd",
         lambda p, i: _set_cov(p, i, _not_psd(i["cov_pct"])), "cov", "Momentum",
         ["positive semidefinite"]),
        ("long_cov_not_psd",
         lambda p, i: write_model(p["exp"].parent, **{
             **i, "cov_pct": _not_psd(i["cov_pct"]), "cov_form": "upper"}),
         "cov", "Covariance", ["positive semidefinite", "Momentum"]),
        ("cov_empty_entry",
         lambda p, i: _set_cov(p, i, _with_nan(i["cov_pct"])), "cov", "Size", ["Value/Size"]),
        ("long_cov_missing_pair",
         lambda p, i: (write_model(p["exp"].parent, **{**i, "cov_form": "upper"}),
                       _replace_line(p["cov"], "Value|Size|", None)), "cov", "Covariance",
         ["Value/Size"]),
        ("duplicate_exp_ids",
         lambda p, i: _edit(p["exp"], lambda t: t.replace("AX004|", "AX002|")), "exp",
         "AxiomaID", ["AX002", "more than one row"]),
        ("duplicate_rsk_ids",
         lambda p, i: _edit(p["rsk"], lambda t: t.replace("AX004|", "AX001|")), "rsk",
         "AxiomaID", ["AX001"]),
        ("columns_after_data",
         lambda p, i: _edit(p["exp"], lambda t: _move_columns_below_first_row(t)), "exp",
         "#Columns", ["comes after data rows"]),
        ("empty_asset_id",
         lambda p, i: _edit(p["rsk"], lambda t: t.replace("AX003|", " |")), "rsk",
         "AxiomaID", ["line 11"]),
        ("empty_file", lambda p, i: p["exp"].write_text(""), "exp", "#Columns", ["empty"]),
        ("header_only",
         lambda p, i: _edit(p["rsk"], lambda t: "\n".join(
             ln for ln in t.split("\n") if ln.startswith("#"))), "rsk", "AxiomaID",
         ["no data rows"]),
        ("non_utf8",
         lambda p, i: p["exp"].write_bytes(p["exp"].read_bytes().replace(
             b"AX003|", b"AX003|\xe9", 1)), "exp", "Value", ["UTF-8", "AX003"]),
        ("unknown_factor_type",
         lambda p, i: _edit(p["att"], lambda t: t.replace("Banks|Industry", "Banks|Sector")),
         "att", "FactorType", ["Banks=Sector"]),
        ("att_missing_factor",
         lambda p, i: _replace_line(p["att"], "Software|", None), "att", "FactorName",
         ["Software"]),
        ("different_dates",
         lambda p, i: write_model(p["exp"].parent, **{**i, "cov_date": "2026-11-19"}),
         "cov", "#DataDate", ["2026-11-19"]),
    ]


def _move_columns_below_first_row(text: str) -> str:
    lines = text.split("\n")
    header = next(ln for ln in lines if ln.startswith("#Columns"))
    lines.remove(header)
    first = next(n for n, ln in enumerate(lines) if ln and not ln.startswith("#"))
    lines.insert(first + 1, header)
    return "\n".join(lines)


def _cov_drop_factor(paths, inp):
    keep = [j for j, f in enumerate(inp["factors"]) if f != "Momentum"]
    factors = [inp["factors"][j] for j in keep]
    cov = inp["cov_pct"][np.ix_(keep, keep)]
    lines = ["#Columns: FactorName|" + "|".join(factors)]
    lines += ["|".join([f, *(repr(float(x)) for x in row)]) for f, row in zip(factors, cov)]
    paths["cov"].write_text("\n".join(lines) + "\n")


def _asym(cov):
    c = cov.copy()
    c[0, 1] += 1.0
    return c


def _not_psd(cov):
    c = cov.copy()
    c[2, 2] = -50.0
    return c


def _with_nan(cov):
    c = cov.copy()
    c[0, 1] = np.nan
    return c


@pytest.mark.parametrize("case", _bad_cases(), ids=[c[0] for c in _bad_cases()])
def test_bad_files_raise_data_error_naming_file_field_and_fix(tmp_path, case):
    _, corrupt, ext, field, texts = case
    paths, inp = basic_model(tmp_path)
    corrupt(paths, inp)
    with pytest.raises(DataError) as err:
        read_axioma(tmp_path)
    msg = str(err.value)
    assert type(err.value) is DataError
    assert f"AXWW4-MH.20261120.{ext}" in msg, msg
    if field is not None:
        assert f"field '{field}'" in msg, msg
    assert ". Fix: " in msg and err.value.fix, msg
    for text in texts:
        assert text in msg, (text, msg)


def test_id_map_collision_is_a_data_error(tmp_path):
    basic_model(tmp_path)
    id_map = pl.DataFrame({"vendor_id": ["AX001", "AX002"], "instrument_id": ["SAME", "SAME"]})
    with pytest.raises(DataError) as err:
        read_axioma(tmp_path, id_map=id_map)
    msg = str(err.value)
    assert ".exp" in msg and "AxiomaID" in msg and "SAME" in msg and "Fix:" in msg


def test_id_map_without_columns_is_a_data_error(tmp_path):
    basic_model(tmp_path)
    with pytest.raises(DataError) as err:
        read_axioma(tmp_path, id_map=pl.DataFrame({"id": ["AX001"]}))
    assert "vendor_id" in str(err.value) and "Fix:" in str(err.value)


def test_missing_directory_and_no_model(tmp_path):
    with pytest.raises(DataError, match="directory not found"):
        read_axioma(tmp_path / "nope")
    with pytest.raises(DataError, match=r"no Axioma exposure file"):
        read_axioma(tmp_path)


# --------------------------------------------------------------------------- properties


@st.composite
def models(draw):
    k = draw(st.integers(2, 6))
    n = draw(st.integers(1, 20))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    rank = draw(st.integers(1, k + 2))  # rank-deficient covariances too
    a = rng.normal(scale=rng.uniform(0.5, 30.0), size=(k, rank))
    cov = a @ a.T
    cov = (cov + cov.T) / 2.0
    exposures = rng.normal(size=(n, k))
    exposures[rng.random((n, k)) < 0.2] = np.nan  # empty fields
    spec = rng.uniform(0.0, 120.0, size=n)
    form = draw(st.sampled_from(["square", "long", "upper"]))
    return dict(ids=[f"A{i}" for i in range(n)], factors=[f"F{j}" for j in range(k)],
                exposures=exposures, cov_pct=cov, spec_pct=spec, cov_form=form)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(models())
def test_round_trip_property(model):
    with tempfile.TemporaryDirectory() as tmp:
        write_model(Path(tmp), "m", **model)
        out = read_axioma(Path(tmp))
    loadings = np.array(out["risk_model"]["factor_loadings"].to_list())
    np.testing.assert_allclose(loadings, np.nan_to_num(model["exposures"], nan=0.0),
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(out["risk_model"]["idio_variance"].to_numpy(),
                               (model["spec_pct"] / 100.0) ** 2, rtol=1e-12, atol=1e-12)
    m = cov_matrix(out, model["factors"])
    np.testing.assert_allclose(m, model["cov_pct"] / 10_000.0, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(m, m.T)


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_corrupted_exposure_file_only_raises_data_error(data):
    """Random byte edits of the .exp file: the reader succeeds or raises DataError."""
    with tempfile.TemporaryDirectory() as tmp:
        paths, _ = basic_model(Path(tmp))
        raw = bytearray(paths["exp"].read_bytes())
        for _ in range(data.draw(st.integers(1, 4))):
            pos = data.draw(st.integers(0, len(raw) - 1))
            new = data.draw(st.sampled_from([b"", b"|", b"\n", b"#", b"x", b"\xff", b" ",
                                             b"-", b"e", b"nan", b"AX001|"]))
            raw[pos:pos + data.draw(st.integers(0, 3))] = new
        paths["exp"].write_bytes(bytes(raw))
        try:
            read_axioma(Path(tmp))
        except DataError as err:
            assert "Fix:" in str(err)
