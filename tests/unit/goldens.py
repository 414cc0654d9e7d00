"""The one golden-file check of the unit tests: TEXT must equal tests/golden/NAME byte for byte, and the
local time zone the golden layouts are written in (`local_time`, an autouse fixture where imported).

GRIDSHIM_UPDATE_GOLDEN=1 writes the file instead (review the diff before committing it). A missing file
is a failure, never created on the fly, so CI cannot pass by writing the answer it then checks.
"""

from __future__ import annotations

import difflib
import os
import time
from pathlib import Path
from typing import Iterator

import pytest

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
TZ = "Europe/Berlin"  # a zone that is not UTC, so the local-time conversion shows in the layouts


@pytest.fixture(autouse=True)
def local_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", TZ)
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def assert_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("GRIDSHIM_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return
    if not path.exists():
        pytest.fail(f"golden file {path} is missing; create it with GRIDSHIM_UPDATE_GOLDEN=1 and review it",
                    pytrace=False)
    want = path.read_text()
    if text != want:
        diff = "".join(difflib.unified_diff(want.splitlines(True), text.splitlines(True),
                                            f"{name} (golden)", f"{name} (now)"))
        pytest.fail(f"{name} differs from its golden file:\n{diff}\n"
                    "(if the change is intended: GRIDSHIM_UPDATE_GOLDEN=1, then review the diff)", pytrace=False)
