"""RunConfig: strict TOML, round trip, paths relative to the config file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import ConfigError
from core.settings import RunConfig


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(text)
    return path


def test_defaults_point_at_the_embedded_sample():
    from sample_data import SAMPLE_DIR

    cfg = RunConfig()
    assert cfg.numeraire == "USD" and cfg.solver == "auto" and cfg.data_dir() == SAMPLE_DIR


def test_load_save_load_gives_the_same_object(tmp_path):
    src = write(tmp_path, """
account = "ARB-1"
run_date = 2026-11-20
as_of = 2026-11-20T15:30:00
numeraire = "EUR"
solver = "clarabel"

[data]
dir = "book"
files = { positions = "intraday/pos.parquet" }

[validation]
stale_price_hours = 6
""")
    first = RunConfig.load(src)
    saved = first.save(tmp_path / "copy.toml")
    second = RunConfig.load(saved)
    assert first == second
    assert second.as_of == dt.datetime(2026, 11, 20, 15, 30)
    assert second.validation.stale_price_hours == 6
    assert second.data_dir() == tmp_path / "book"
    assert second.file_overrides()["positions"] == tmp_path / "intraday" / "pos.parquet"


@given(account=st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)),
                       min_size=1, max_size=20),
       numeraire=st.sampled_from(["USD", "EUR", "JPY", "GBP"]),
       solver=st.sampled_from(["auto", "clarabel", "mosek"]),
       hours=st.floats(0.01, 1e4), days=st.integers(0, 30))
@settings(max_examples=50, deadline=None)
def test_round_trip_property(tmp_path_factory, account, numeraire, solver, hours, days):
    cfg = RunConfig(account=account, numeraire=numeraire, solver=solver,
                    validation={"stale_price_hours": hours, "expiry_warning_days": days})
    path = cfg.save(tmp_path_factory.mktemp("cfg") / "c.toml")
    assert RunConfig.load(path).model_dump() == cfg.model_dump()


@pytest.mark.parametrize("text, key", [
    ('numerarie = "EUR"', "numerarie"),
    ('[data]\ndirr = "x"', "data.dirr"),
    ('[validation]\nstale_hours = 2', "validation.stale_hours"),
])
def test_unknown_keys_are_rejected_by_name(tmp_path, text, key):
    with pytest.raises(ConfigError) as err:
        RunConfig.load(write(tmp_path, text))
    assert f"unknown key '{key}'" in str(err.value) and "run.toml" in str(err.value)
    assert err.value.field == key


def test_unknown_table_override(tmp_path):
    with pytest.raises(ConfigError, match="unknown table.*position"):
        RunConfig.load(write(tmp_path, '[data.files]\nposition = "p.parquet"'))


@pytest.mark.parametrize("text, key", [
    ('numeraire = "euro"', "numeraire"),
    ('solver = "gurobi"', "solver"),
    ('[validation]\nstale_price_hours = -1', "validation.stale_price_hours"),
    ('as_of = "yesterday"', "as_of"),
])
def test_invalid_values_name_the_key_and_value(tmp_path, text, key):
    with pytest.raises(ConfigError) as err:
        RunConfig.load(write(tmp_path, text))
    assert f"invalid value for '{key}'" in str(err.value) and "Fix:" in str(err.value)


def test_corrupt_toml(tmp_path):
    with pytest.raises(ConfigError, match=r"not valid TOML.*line 2"):
        RunConfig.load(write(tmp_path, 'account = "A"\nnumeraire = \n'))


def test_missing_and_binary_config(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        RunConfig.load(tmp_path / "nope.toml")
    bad = tmp_path / "bin.toml"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="UTF-8"):
        RunConfig.load(bad)


def test_save_is_atomic(tmp_path, monkeypatch):
    cfg = RunConfig(account="A")
    target = tmp_path / "c.toml"
    cfg.save(target)
    import core.atomic as atomic_mod

    def boom(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr(atomic_mod.os, "replace", boom)
    with pytest.raises(OSError):
        RunConfig(account="B").save(target)
    assert RunConfig.load(target).account == "A"
    assert [p.name for p in tmp_path.iterdir()] == ["c.toml"]
