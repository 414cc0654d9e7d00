"""The one fixture loader: tests/fixtures/k8s/NAME.json, real objects read from the sandbox, one per state
(a Job with its pods and events: {"job": …, "pods": […], "events": […]})."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "k8s"


@cache
def _read(name: str) -> str:
    path = FIXTURES / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no fixture {path} (the fixtures: {', '.join(fixture_names())})")
    return path.read_text()


def fixture(name: str) -> dict[str, Any]:
    """A fresh copy of fixture NAME (tests may change it)."""
    return copy.deepcopy(json.loads(_read(name)))


def fixture_names() -> list[str]:
    return sorted(p.stem for p in FIXTURES.glob("*.json"))
