"""One error type for bad input: it always names the file, the field and the fix."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

MAX_IDS_SHOWN = 5


def sample_ids(ids: Iterable[object], limit: int = MAX_IDS_SHOWN) -> str:
    """A short, readable list of offending ids: 'A, B, C and 12 more'."""
    ids = [str(i) for i in ids]
    shown = ", ".join(ids[:limit])
    rest = len(ids) - limit
    return f"{shown} and {rest} more" if rest > 0 else shown


class SpoInputError(Exception):
    """Bad input the user can fix. The CLI prints `str(err)` and exits 1; never a traceback."""

    def __init__(
        self,
        problem: str,
        *,
        file: str | Path | None = None,
        field: str | None = None,
        ids: Iterable[object] | None = None,
        fix: str | None = None,
    ) -> None:
        self.problem = problem
        self.file = str(file) if file is not None else None
        self.field = field
        self.ids = [str(i) for i in ids] if ids is not None else []
        self.fix = fix
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.file:
            where.append(self.file)
        if self.field:
            where.append(f"field '{self.field}'")
        head = ": ".join([", ".join(where), self.problem]) if where else self.problem
        if self.ids:
            head += f" (ids: {sample_ids(self.ids)})"
        if self.fix:
            head += f". Fix: {self.fix}"
        return head


class DataError(SpoInputError):
    """A data file that cannot be used at all (missing, corrupt, wrong column type)."""


class ConfigError(SpoInputError):
    """A config file or setting that is invalid."""
