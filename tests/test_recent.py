"""The recent-configs list: most recent first, no duplicates, at most ten, missing files gone."""

from __future__ import annotations

import json

import pytest

from console import recent


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("SPO_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def configs(tmp_path, n):
    out = []
    for i in range(n):
        p = tmp_path / f"c{i}.toml"
        p.write_text("")
        out.append(p)
    return out


def test_empty_when_nothing_stored(state):
    assert recent.read_recent() == []
    assert recent.recent_file() == state / "recent.json"


def test_most_recent_first_without_duplicates(state, tmp_path):
    a, b, c = configs(tmp_path, 3)
    recent.add_recent(a)
    recent.add_recent(b)
    recent.add_recent(c)
    recent.add_recent(a)  # again: moves to the top, not listed twice
    assert recent.read_recent() == [a, c, b]
    stored = json.loads((state / "recent.json").read_text())
    assert stored == [str(a), str(c), str(b)]


def test_same_file_by_another_spelling_is_one_entry(state, tmp_path, monkeypatch):
    (a,) = configs(tmp_path, 1)
    monkeypatch.chdir(tmp_path)
    recent.add_recent("c0.toml")
    recent.add_recent(tmp_path / "." / "c0.toml")
    assert recent.read_recent() == [a]


def test_keeps_ten(state, tmp_path):
    paths = configs(tmp_path, 12)
    for p in paths:
        recent.add_recent(p)
    got = recent.read_recent()
    assert len(got) == recent.MAX_RECENT == 10
    assert got == list(reversed(paths))[:10]


def test_missing_files_are_dropped_when_read(state, tmp_path):
    a, b = configs(tmp_path, 2)
    recent.add_recent(a)
    recent.add_recent(b)
    b.unlink()
    assert recent.read_recent() == [a]
    recent.add_recent(a)
    assert json.loads((state / "recent.json").read_text()) == [str(a)]


def test_corrupt_store_reads_as_empty(state, tmp_path):
    state.mkdir()
    (state / "recent.json").write_text("{not json")
    assert recent.read_recent() == []
    (state / "recent.json").write_text('{"a": 1}')
    assert recent.read_recent() == []
    (a,) = configs(tmp_path, 1)
    assert recent.add_recent(a) == [a]  # a corrupt store is replaced, not an error


def test_xdg_state_home_and_default(tmp_path, monkeypatch):
    monkeypatch.delenv("SPO_STATE_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert recent.recent_file() == tmp_path / "xdg" / "spo" / "recent.json"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert recent.recent_file() == tmp_path / "home" / ".local" / "state" / "spo" / "recent.json"


def test_written_atomically_with_no_temp_files_left(state, tmp_path):
    (a,) = configs(tmp_path, 1)
    recent.add_recent(a)
    assert [p.name for p in state.iterdir()] == ["recent.json"]
