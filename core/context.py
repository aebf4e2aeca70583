"""RunContext: who ran what, for which account, as of when (platform spec section 3).

It lives in core so the run log, the CLI, the console and the MCP server share one
definition without core importing the console.
"""

from __future__ import annotations

import datetime as dt
import getpass
import socket
import uuid
from dataclasses import dataclass
from typing import Callable

from core.settings import RunConfig


@dataclass(frozen=True)
class RunContext:
    run_id: str
    account: str
    run_date: dt.date
    as_of: dt.datetime
    user: str
    host: str
    started_at: dt.datetime


def new_run_context(config: RunConfig, clock: Callable[[], dt.datetime] = dt.datetime.now,
                    token: Callable[[], str] = lambda: uuid.uuid4().hex[:6]) -> RunContext:
    now = clock()
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        user = "unknown"
    return RunContext(
        run_id=f"{config.account}-{now:%Y%m%d-%H%M%S}-{token()}",
        account=config.account, run_date=config.effective_run_date(),
        as_of=config.effective_as_of(), user=user, host=socket.gethostname(), started_at=now)
