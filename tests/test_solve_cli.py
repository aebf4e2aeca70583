"""`spo solve` end to end on the sample book: files, exit codes, explanations."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from console.cli import main
from core.oms import SIDES
from books import INFEASIBLE_CONSTRAINTS, write_sample_config
from sample_data import SAMPLE_DIR


@pytest.fixture(scope="module")
def solved(tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    code = main(["solve", "--out", str(out), "--json"])
    return code, out


def test_default_run_is_optimal_and_writes_every_file(solved, capsys):
    code, out = solved
    assert code == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["diagnostics.parquet", "optimal.parquet", "orders.csv", "run.json",
                     "trades.parquet"]  # and no temporary files left behind


def test_orders_file_is_what_the_oms_expects(solved):
    _, out = solved
    orders = pl.read_csv(out / "orders.csv")
    assert orders.columns == ["symbol", "side", "shares"]
    assert orders.height > 0
    assert set(orders.get_column("side")) <= set(SIDES)
    assert (orders.get_column("shares") > 0).all()
    trades = pl.read_parquet(out / "trades.parquet")
    inst = pl.read_parquet(SAMPLE_DIR / "instruments.parquet").select("ticker", "lot_size")
    lots = trades.join(inst, on="ticker")
    assert ((lots.get_column("shares") % lots.get_column("lot_size")) == 0).all()
    # Orders add up to the trades, share for share.
    assert orders.get_column("shares").sum() == int(trades.get_column("shares").sum())


def test_run_json_summary(solved):
    _, out = solved
    doc = json.loads((out / "run.json").read_text())
    s = doc["summary"]
    assert doc["status"] == "optimal" and doc["solver"] == "clarabel"
    assert "no MOSEK license" in doc["solver_reason"] or "MOSEK" in doc["solver_reason"]
    assert s["turnover_pct"] <= 40.0 + 0.5  # the scenario's turnover limit (after lot rounding)
    assert abs(s["book"]["after"]["net_pct"]) <= 5.0 + 0.5
    assert s["risk"]["after"]["total_pct"] <= 8.0 + 0.1
    assert set(s["costs_bp"]) == {"linear", "impact", "impact_curve", "borrow", "financing",
                                  "dividends"}
    assert len(s["factors"]) == 72


def test_diagnostics_parquet_columns(solved):
    _, out = solved
    diag = pl.read_parquet(out / "diagnostics.parquet")
    for col in ("name", "kind", "value", "lower", "upper", "slack", "dual", "binding"):
        assert col in diag.columns
    turnover = diag.filter(pl.col("name") == "turnover").row(0, named=True)
    assert turnover["binding"] and turnover["dual"] > 0
    # Recomputed from holdings: interior-point slack in u summed over 2,000 names.
    assert turnover["value"] == pytest.approx(40.0, abs=0.01)


def write_config(tmp_path: Path, constraints: str) -> Path:
    return write_sample_config(tmp_path, constraints)


def test_infeasible_run_exits_2_with_relaxations(tmp_path, capsys):
    cfg = write_config(tmp_path, INFEASIBLE_CONSTRAINTS)
    code = main(["solve", "--config", str(cfg), "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 2
    assert "relax" in out and ("net_exposure" in out or "turnover" in out)
    doc = json.loads((tmp_path / "out" / "run.json").read_text())
    assert doc["status"] == "infeasible" and doc["relaxation"]
    assert not (tmp_path / "out" / "orders.csv").exists()


def test_bad_constraint_exit_1_one_line(tmp_path, capsys):
    cfg = write_config(tmp_path, """
        [[constraints]]
        kind = "max_trade"
        unit = "%ADV"
        lower = 5.0
    """)
    code = main(["solve", "--config", str(cfg), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert "max_trade needs an upper bound" in err and "run.toml" in err


def test_unknown_group_value_exit_1(tmp_path, capsys):
    cfg = write_config(tmp_path, """
        [[constraints]]
        kind = "group_net"
        group_by = "sector"
        group = "Crypto"
        upper = 5.0
    """)
    code = main(["solve", "--config", str(cfg), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1 and "no instrument has sector = 'Crypto'" in err and "Fix:" in err


@pytest.mark.parametrize("scenario", sorted(p.stem for p in (SAMPLE_DIR / "scenarios").glob(
    "*.toml")))
def test_every_shipped_scenario_solves(scenario, tmp_path, capsys):
    code = main(["solve", "--config", str(SAMPLE_DIR / "scenarios" / f"{scenario}.toml"),
                 "--out", str(tmp_path), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["status"] == "optimal", doc.get("relaxation")
    if scenario == "index_arb":
        m = doc["summary"]["margin"]
        assert m["budget"] == pytest.approx(0.85 * doc["summary"]["nav"])
        # The summary describes the lot-rounded book: rounding may move margin a hair.
        assert m["used"] <= m["budget"] * (1 + 1e-4) < m["used_without_hedge_credit"]


def test_time_limit_says_so_and_exits_3(tmp_path, capsys):
    cfg = write_sample_config(tmp_path, optimization="time_limit_s = 0.001")
    code = main(["solve", "--config", str(cfg), "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 3
    assert "reached the time limit" in out and "time_limit_s" in out
    doc = json.loads((tmp_path / "out" / "run.json").read_text())
    assert doc["status"] == "time_limit"
    assert not (tmp_path / "out" / "orders.csv").exists()
