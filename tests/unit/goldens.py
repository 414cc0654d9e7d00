"""The one golden-file check of the unit tests: TEXT must equal tests/golden/NAME byte for byte.

GRIDSHIM_UPDATE_GOLDEN=1 writes the file instead (review the diff before committing it). A missing file
is a failure, never created on the fly, so CI cannot pass by writing the answer it then checks.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


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
