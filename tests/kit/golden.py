"""The one golden-file check: TEXT must equal tests/golden/NAME byte for byte.

GRIDSHIM_UPDATE_GOLDEN=1 writes the file instead (review the diff before committing it), except in CI
(`CI` set, as .ci/run sets it), where a golden file is never written. A missing file is a failure, never
created on the fly, so no run can pass by writing the answer it then checks.
"""

from __future__ import annotations

import difflib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


def golden(name: str, text: str) -> None:
    """Fail with a diff unless TEXT is tests/golden/NAME (or write it, on purpose, outside CI)."""
    path = GOLDEN / name
    ci = os.environ.get("CI", "") not in ("", "0", "false")
    if os.environ.get("GRIDSHIM_UPDATE_GOLDEN") == "1":
        if ci:
            pytest.fail("GRIDSHIM_UPDATE_GOLDEN=1 in CI: golden files are regenerated and reviewed locally, "
                        "never written by the run that checks them", pytrace=False)
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


def golden_text(name: str, **subst: str) -> str:
    """Golden file NAME with each KEY replaced by its value (for transcripts whose ids vary per run)."""
    text = (GOLDEN / name).read_text()
    for k, v in subst.items():
        text = text.replace(k, v)
    return text


TZ = "Europe/Berlin"  # a zone that is not UTC, so the local-time conversion shows in the layouts


@pytest.fixture(autouse=True)
def local_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The time zone the golden layouts are written in (an autouse fixture where a test module imports it)."""
    monkeypatch.setenv("TZ", TZ)
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()
