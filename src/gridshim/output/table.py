"""The opt-in live view (`qstat --watch` on a terminal): the only module that imports rich.table.

Plain output never changes on its own; this view exists only when asked for, on the console
cli._common.console makes (a terminal, not TERM=dumb; NO_COLOR honoured). Imports model, the output
package and rich.
"""

from __future__ import annotations

import time

from rich.live import Live
from rich.table import Table

from gridshim.model import GridState, JobRow, ordered
from gridshim.output import queue_instance, shown_time

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up, docs/performance.md)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

STYLE = {GridState.RUNNING: "green", GridState.RESTARTED: "yellow", GridState.DELETING: "magenta",
         GridState.ERROR: "bold red", GridState.HELD: "cyan", GridState.RESTARTED_QUEUED: "yellow"}


def table(rows: list[JobRow], *, title: str = "") -> Table:
    """The jobs as a rich Table (same columns as qstat, names not cut)."""
    t = Table(title=title or None, expand=False)
    for col in ("job-ID", "name", "user", "state", "submit/start at", "queue", "ja-task-ID", "note"):
        t.add_column(col, no_wrap=col != "note", overflow="fold")
    for r in ordered(rows):
        t.add_row(str(r.job_id), r.name, r.owner, str(getattr(r, "state_text", r.state.value)),
                  time.strftime("%m/%d/%Y %H:%M:%S", time.localtime(shown_time(r))), queue_instance(r),
                  str(getattr(r, "tasks", "") or ""), r.message[:80], style=STYLE.get(r.state, ""))
    if not rows:
        t.add_row("", "(no jobs)", "", "", "", "", "", "")
    return t


def watch(fetch: Callable[[], list[JobRow]], *, console: Any, interval: float = 2.0,
          title: Callable[[], str] = lambda: "", cycles: int | None = None) -> None:
    """Redraw the table on CONSOLE (the one cli._common.console makes) every INTERVAL seconds until
    interrupted (or CYCLES redraws, for tests)."""
    with Live(table(fetch(), title=title()), console=console, auto_refresh=False) as live:
        n = 1
        while cycles is None or n < cycles:
            time.sleep(interval)
            live.update(table(fetch(), title=title()), refresh=True)
            n += 1
