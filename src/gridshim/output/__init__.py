"""Output layer: JobRow lists → the text people and scripts read (qstat plain, -j, -xml; rich live view).

Pure formatters: rows in, text out; they import model only (and `table.py` alone imports rich).
Times are shown in local time (the process's TZ), as the grid printed them.
"""

from __future__ import annotations

from gridshim.model import JobRow

# qstat's priority column: what the grid showed for a dispatched job with default share settings,
# and 0.00000 for a job the scheduler has not ranked yet. gridshim has no ranking, so these are fixed.
PRIORITY = {True: 0.25, False: 0.0}


def is_running(row: JobRow) -> bool:
    return row.is_running


def section(row: JobRow) -> int:
    """0 running, 1 pending, 2 finished: the grid's listing order."""
    return row.listing_key[0]


def shown_time(row: JobRow) -> float:
    return row.shown_time


def queue_instance(row: JobRow) -> str:
    """`queue@host` for a running job, empty when pending (the grid's queue column)."""
    return f"{row.queue}@{row.node}" if row.is_running and row.node else ""
