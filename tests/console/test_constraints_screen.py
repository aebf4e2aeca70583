"""Constraints tab, driven from the keyboard: edit, add, delete, toggle, undo, refuse."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from textual import on
from textual.app import App, ComposeResult
from textual.coordinate import Coordinate

from books import book_config, write_book
from console.state import AppState
from core.constraints.spec import ConstraintSpec as C
from screens.constraints import AddModal, ConstraintsTab, EditModal
from screens.messages import ConfigChanged

STYLES = Path(__file__).resolve().parents[2] / "styles" / "spo.tcss"
SIZE = (100, 30)

SPECS = [
    C(kind="max_trade", unit="%ADV", upper=10.0),
    C(kind="holding", instrument="BBB", upper=-50.0),
    C(kind="group_net", group_by="sector", lower=-10.0, upper=10.0, soft=True, penalty=20.0),
    C(kind="factor_exposure", factor="kind:style", lower=-0.25, upper=0.25),
    C(kind="gross_exposure", upper=150.0),
    C(kind="net_exposure", target=0.0, band=5.0),
    C(kind="turnover", upper=5.0),
]


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    directory = write_book(tmp_path_factory.mktemp("book"))
    config = book_config(directory, constraints=SPECS)
    return config, AppState(config).load()


class Harness(App):
    """Just the tab, fed like the console feeds it; records what it posts and, like the
    console, shows the new config back to the tab."""

    CSS_PATH = str(STYLES)

    def __init__(self, config, universe) -> None:
        super().__init__()
        self.animation_level = "none"
        self.config, self.universe = config, universe
        self.changes: list[ConfigChanged] = []

    def compose(self) -> ComposeResult:
        yield ConstraintsTab(id="constraints")

    async def on_mount(self) -> None:
        tab = self.query_one(ConstraintsTab)
        await tab.show_config(self.config)
        await tab.show_universe(self.universe)
        tab.grid("instrument").focus()

    @on(ConfigChanged)
    async def _changed(self, message: ConfigChanged) -> None:
        self.changes.append(message)
        self.config = message.config
        await self.query_one(ConstraintsTab).show_config(message.config)


async def settle(pilot) -> ConstraintsTab:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    return pilot.app.query_one(ConstraintsTab)


def text(widget) -> str:
    return str(widget.render())


async def replace_input(pilot, value: str) -> None:
    await pilot.press("end", *["backspace"] * 12, *value)


async def test_three_grids_and_the_presolve_panel(book):
    app = Harness(*book)
    async with app.run_test(size=SIZE) as pilot:
        tab = await settle(pilot)
        assert [len(tab.rows(s)) for s in ("instrument", "group", "portfolio")] == [2, 2, 3]
        assert tab.grid("portfolio").row_count == 3
        codes = set(tab.findings.get_column("code"))
        # BBB is short 44.4% NAV under no-new-shorts: holding <= -50% NAV contradicts it;
        # net 0 +- 5 is 55% NAV away from the book with 5% NAV of turnover.
        assert {"contradictory_bounds", "turnover_too_small", "broken_now"} <= codes
        title = text(tab.query_one("#ct-presolve-title"))
        assert title.startswith("pre-solve: 3 errors, 4 warnings, 1 info")
        # Tab, ] and [ move between the grids and the diagnostics.
        await pilot.press("tab")
        assert app.focused.id == "ct-grid-group"
        await pilot.press("right_square_bracket", "tab")
        assert app.focused.id == "ct-grid-presolve"
        await pilot.press("tab")
        assert app.focused.id == "ct-grid-instrument"
        await pilot.press("left_square_bracket")
        assert app.focused.id == "ct-grid-presolve"
        # Enter on a diagnostic: its constraint's row; the whole message below.
        assert "holding[BBB]" in text(tab.query_one("#ct-message"))
        await pilot.press("enter")
        assert app.focused.id == "ct-grid-instrument"
        assert tab.grid("instrument").cursor_row == 1


async def test_edit_an_upper_bound(book):
    app = Harness(*book)
    async with app.run_test(size=SIZE) as pilot:
        tab = await settle(pilot)
        await pilot.press("tab", "tab")  # the portfolio grid: gross_exposure first
        await pilot.press(*["right"] * 4)  # on, name, kind, lower, upper
        await pilot.press("e")
        assert isinstance(app.screen, EditModal)
        assert app.screen.query_one("#ct-edit-input").value == "150"
        await replace_input(pilot, "210")
        await pilot.press("enter")
        await settle(pilot)
        assert not isinstance(app.screen, EditModal)
        assert [m.reason for m in app.changes] == ["gross_exposure upper 150 -> 210 %NAV"]
        new = app.changes[0].config
        assert new.constraint_files == []
        assert [s.upper for s in new.constraints if s.kind == "gross_exposure"] == [210.0]
        assert len(new.constraints) == len(SPECS)
        assert tab.grid("portfolio").get_cell_at(Coordinate(0, 4)) == "210"
        assert app.focused.id == "ct-grid-portfolio"
        assert (tab.grid("portfolio").cursor_row, tab.grid("portfolio").cursor_column) == (0, 4)
        # The pre-solve ran again: 210 %NAV is no longer out of the turnover's reach.
        assert not tab.findings.filter(pl.col("constraint") == "gross_exposure",
                                       pl.col("code") == "turnover_too_small").height
        # A target and band are edited as the bounds they mean.
        await pilot.press("down", "left", "enter")  # net_exposure lower (-5)
        assert app.screen.query_one("#ct-edit-input").value == "-5"
        await replace_input(pilot, "-8")
        await pilot.press("enter")
        await settle(pilot)
        assert app.changes[-1].reason == "net_exposure lower -5 -> -8 %NAV"
        net = next(s for s in app.changes[-1].config.constraints if s.kind == "net_exposure")
        assert (net.lower, net.upper, net.target, net.band) == (-8.0, 5.0, None, None)


async def test_an_invalid_edit_is_refused_with_the_reason(book):
    app = Harness(*book)
    async with app.run_test(size=SIZE) as pilot:
        tab = await settle(pilot)
        await pilot.press("tab", "tab", "down", *["right"] * 3, "enter")  # net lower
        assert isinstance(app.screen, EditModal)
        await replace_input(pilot, "abc")
        await pilot.press("enter")
        error = app.screen.query_one("#ct-edit-error")
        assert text(error) == "lower: 'abc' is not a number"
        await replace_input(pilot, "100")
        await pilot.press("enter")
        assert isinstance(app.screen, EditModal)  # still open: the message is inline
        assert "contradictory bounds: lower 100.0 > upper 5.0" in text(error)
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, EditModal)
        assert app.changes == [] and tab.specs == SPECS
        assert tab.grid("portfolio").get_cell_at(Coordinate(1, 3)) == "-5"
        # A penalty below zero: pydantic's own message, with the field.
        await pilot.press(*["right"] * 4, "enter")  # penalty
        await replace_input(pilot, "-1")
        await pilot.press("enter")
        assert text(app.screen.query_one("#ct-edit-error")) == \
            "penalty: Input should be greater than or equal to 0"
        await pilot.press("escape")


async def test_add_a_group_constraint(book):
    app = Harness(*book)
    async with app.run_test(size=SIZE) as pilot:
        tab = await settle(pilot)
        await pilot.press("tab", "a")
        assert isinstance(app.screen, AddModal)
        kinds = [o.id for o in app.screen.query_one("#ct-add-kinds").options]
        assert kinds[:3] == ["group_net", "group_gross", "group_turnover"]
        assert "holding" not in kinds and "gross_exposure" not in kinds
        await pilot.press("down", "enter")  # group_gross: focus on group_by
        assert app.focused.id == "ct-add-group-by"
        await pilot.press(*"sector", "tab", *"Tech", "enter")
        # No upper bound yet: refused inline.
        assert text(app.screen.query_one("#ct-add-error")) == \
            "group_gross needs lower, upper or target"
        await pilot.press("tab", "tab", *"30", "enter")  # group, lower, upper
        await settle(pilot)
        assert not isinstance(app.screen, AddModal)
        assert app.changes[-1].reason == "added group_gross[sector=Tech]"
        added = app.changes[-1].config.constraints[-1]
        assert (added.kind, added.group_by, added.group, added.upper, added.unit) == \
            ("group_gross", "sector", "Tech", 30.0, "%NAV")
        assert len(tab.rows("group")) == 3
        assert tab.grid("group").cursor_row == 2
        # A second one with the same automatic name is refused.
        await pilot.press("a", "down", "enter", *"sector", "tab", *"Tech", "tab", "tab",
                          *"40", "enter")
        assert "another constraint is named 'group_gross[sector=Tech]'" in text(
            app.screen.query_one("#ct-add-error"))
        await pilot.press("escape")
        await settle(pilot)
        assert len(app.changes) == 1


async def test_delete_toggle_and_undo_several_levels(book):
    app = Harness(*book)
    async with app.run_test(size=SIZE) as pilot:
        tab = await settle(pilot)
        await pilot.press("down", "d")  # holding[BBB]
        await settle(pilot)
        assert app.changes[-1].reason == "deleted holding[BBB]"
        assert "holding[BBB]" not in {s.name for s in tab.specs}
        assert "holding[BBB]" not in set(tab.findings.get_column("constraint"))
        await pilot.press("tab", "tab", "h")  # gross_exposure soft
        await settle(pilot)
        assert app.changes[-1].reason == "gross_exposure soft"
        gross = next(s for s in tab.specs if s.name == "gross_exposure")
        assert gross.soft
        assert tab.grid("portfolio").get_cell_at(Coordinate(0, 6)) == "soft"
        broken = tab.findings.filter(pl.col("constraint") == "gross_exposure",
                                     pl.col("code") == "broken_now")
        assert broken.get_column("severity").to_list() == ["info"]  # soft: information
        await pilot.press("space")  # disable it
        await settle(pilot)
        assert app.changes[-1].reason == "gross_exposure disabled"
        assert tab.grid("portfolio").get_cell_at(Coordinate(0, 0)) == "off"
        assert "gross_exposure" not in set(tab.findings.get_column("constraint"))
        await pilot.press("home", "enter")  # Enter on the `on` column toggles it back
        await settle(pilot)
        assert app.changes[-1].reason == "gross_exposure enabled"
        await pilot.press("u", "u")
        await settle(pilot)
        assert app.changes[-1].reason == "undo gross_exposure disabled"
        assert next(s for s in tab.specs if s.name == "gross_exposure").soft
        await pilot.press("u")
        await settle(pilot)
        assert app.changes[-1].reason == "undo gross_exposure soft"
        assert not next(s for s in tab.specs if s.name == "gross_exposure").soft
        await pilot.press("u")
        await settle(pilot)
        assert app.changes[-1].reason == "undo deleted holding[BBB]"
        assert tab.specs == SPECS
        assert app.changes[-1].config.constraints == SPECS
        await pilot.press("u")
        assert text(tab.query_one("#ct-message")) == "nothing to undo"


async def test_a_new_config_from_elsewhere_resets_the_undo_history(book):
    config, universe = book
    app = Harness(config, universe)
    async with app.run_test(size=SIZE) as pilot:
        tab = await settle(pilot)
        await pilot.press("d")
        await settle(pilot)
        assert tab.undo_stack
        other = config.model_copy(update={"constraints": [C(kind="turnover", upper=20.0)]})
        await tab.show_config(other)
        await settle(pilot)
        assert tab.undo_stack == [] and len(tab.rows("portfolio")) == 1
        assert text(tab.query_one("#ct-presolve-title")) == "pre-solve: no problems found"


async def test_fits_80_by_20(book):
    """The tab gets about 80x20 in an 80x24 terminal: every grid keeps a row in view."""
    app = Harness(*book)
    async with app.run_test(size=(80, 20)) as pilot:
        tab = await settle(pilot)
        for scope in ("instrument", "group", "portfolio"):
            assert tab.grid(scope).region.height >= 2  # header and a row
        presolve = tab.query_one("#ct-grid-presolve")
        assert presolve.region.height >= 3 and presolve.region.bottom <= 19
        await pilot.press("a")
        box = app.screen.query_one("#ct-add-box")
        assert box.region.height <= 20 and box.region.width <= 80


def test_snapshot_constraints_tab(book, snap_compare):
    async def run_before(pilot):
        await settle(pilot)

    assert snap_compare(Harness(*book), terminal_size=SIZE, run_before=run_before)
