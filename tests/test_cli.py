"""`spo data validate`, `spo sample-data`, `spo config show`: exit codes and messages."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from console.cli import main
from sample_data import SAMPLE_DIR


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def copy_sample(tmp_path: Path) -> Path:
    dst = tmp_path / "data"
    shutil.copytree(SAMPLE_DIR, dst, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return dst


def test_validate_sample_json(capsys):
    code, out, err = run(capsys, "data", "validate", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["universe_rows"] == 2004  # 2,000 instruments and cash in 4 currencies
    assert report["tables"]["instruments"]["rows"] == 2000
    assert report["errors"] == 0
    assert report["summary"]["nav"] == pytest.approx(150e6, rel=1e-6)
    assert report["factor_model"]["factors"] == 72
    # The deliberately stale marks in the sample are reported.
    stale = [d for d in report["diagnostics"] if d["code"] == "stale_price"]
    assert len(stale) == 3 and all(d["severity"] == "warning" for d in stale)


def test_validate_sample_text(capsys):
    code, out, _ = run(capsys, "data", "validate")
    assert code == 0
    assert "universe" in out and "2,004" in out and "OK" in out and "stale_price" in out


def test_validate_numeraire_switch(capsys):
    code, out, _ = run(capsys, "data", "validate", "--json", "--numeraire", "eur")
    report = json.loads(out)
    assert code == 0 and report["numeraire"] == "EUR"
    fx = pl.read_parquet(SAMPLE_DIR / "fx_rates.parquet")
    eur = fx.filter(pl.col("currency") == "EUR").item(0, "rate")
    assert report["summary"]["nav"] == pytest.approx(150e6 / eur, rel=1e-6)


def test_validate_row_problems_exit_1_with_diagnostics(tmp_path, capsys):
    data = copy_sample(tmp_path)
    pos = pl.read_parquet(data / "positions.parquet")
    held = pos.filter(pl.col("position_shares") != 0).item(0, "instrument_id")
    pos.with_columns(price=pl.when(pl.col("instrument_id") == held).then(float("nan"))
                     .otherwise(pl.col("price"))).write_parquet(data / "positions.parquet")
    code, out, err = run(capsys, "data", "validate", "--data", str(data), "--json")
    assert code == 1
    report = json.loads(out)
    errors = [d for d in report["diagnostics"] if d["severity"] == "error"]
    assert [(d["code"], d["instrument_id"]) for d in errors] == [("missing_price", held)]
    assert "cannot be valued" in errors[0]["message"]


def test_validate_corrupt_file_exit_1_one_line(tmp_path, capsys):
    data = copy_sample(tmp_path)
    (data / "risk_model.parquet").write_bytes(b"PAR1 truncated")
    code, out, err = run(capsys, "data", "validate", "--data", str(data))
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "risk_model.parquet" in err and "Fix:" in err


def test_validate_wrong_column_type(tmp_path, capsys):
    data = copy_sample(tmp_path)
    inst = pl.read_parquet(data / "instruments.parquet")
    inst.with_columns(pl.col("lot_size").cast(pl.String).str.replace("^1$", "one")) \
        .write_parquet(data / "instruments.parquet")
    code, _, err = run(capsys, "data", "validate", "--data", str(data))
    assert code == 1
    assert "instruments.parquet" in err and "field 'lot_size'" in err and "'one'" in err


def test_validate_missing_folder(tmp_path, capsys):
    code, _, err = run(capsys, "data", "validate", "--data", str(tmp_path / "nowhere"))
    assert code == 1 and "instruments" in err and "missing" in err


def test_validate_bad_config(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('numeraire = "USD"\nsolvr = "mosek"\n')
    code, _, err = run(capsys, "data", "validate", "--config", str(cfg))
    assert code == 1 and "unknown key 'solvr'" in err and "c.toml" in err


def test_sample_data_command_is_deterministic(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert run(capsys, "sample-data", "--size", "400", "--seed", "3", "--out", str(a))[0] == 0
    assert run(capsys, "sample-data", "--size", "400", "--seed", "3", "--out", str(b))[0] == 0
    for f in sorted(a.glob("*.parquet")):
        assert pl.read_parquet(f).equals(pl.read_parquet(b / f.name)), f.name
    code, out, _ = run(capsys, "data", "validate", "--data", str(a), "--json")
    assert code == 0 and json.loads(out)["tables"]["instruments"]["rows"] == 400


def test_sample_data_rejects_tiny_size(tmp_path, capsys):
    code, _, err = run(capsys, "sample-data", "--size", "3", "--out", str(tmp_path))
    assert code == 1 and "--size" in err


def test_config_show_round_trips(tmp_path, capsys):
    code, out, _ = run(capsys, "config", "show", "--numeraire", "GBP")
    assert code == 0
    (tmp_path / "c.toml").write_text(out)
    from core.settings import RunConfig

    assert RunConfig.load(tmp_path / "c.toml").numeraire == "GBP"


def test_installed_entry_point_never_prints_a_traceback(tmp_path):
    spo = Path(sys.executable).parent / "spo"
    bad = tmp_path / "bad.toml"
    bad.write_text("[data\n")
    res = subprocess.run([str(spo), "data", "validate", "--config", str(bad)],
                         capture_output=True, text=True)
    assert res.returncode == 1
    assert "Traceback" not in res.stderr and "not valid TOML" in res.stderr
