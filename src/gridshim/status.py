"""Kubernetes objects → grid state (pure). Reads the JSON the API server stores; no I/O.

Imports render.labels, model and errors only.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import Any

from gridshim.model import Manifest


def condition(obj: Manifest, ctype: str) -> dict[str, Any] | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype and c.get("status") == "True":
            return c
    return None


def job_finished(job: Manifest) -> bool:
    """A Job is over once it has its terminal condition (Complete or Failed)."""
    return condition(job, "Complete") is not None or condition(job, "Failed") is not None


@dataclass(frozen=True)
class Outcome:
    """How a finished job ended, in the grid's terms (qsub -sync y)."""

    exit_code: int | None  # None: never ran
    signal_name: str | None = None
    reason: str = ""


def _terminated(pod: Manifest) -> dict[str, Any] | None:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        state = cs.get("state") or {}
        if "terminated" in state:
            return state["terminated"]
        last = cs.get("lastState") or {}
        if "terminated" in last:
            return last["terminated"]
    return None


def job_outcome(job: Manifest, pods: list[Manifest]) -> Outcome:
    """The exit of a finished Job: its newest pod's container exit code; deadline → SIGKILL (h_rt)."""
    failed = condition(job, "Failed")
    if failed and failed.get("reason") == "DeadlineExceeded":
        return Outcome(exit_code=137, signal_name="SIGKILL", reason="DeadlineExceeded")
    newest = sorted(pods, key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or "")
    for pod in reversed(newest):
        term = _terminated(pod)
        if term is not None and term.get("exitCode") is not None:
            code = int(term["exitCode"])
            sig = None
            if code > 128 and (term.get("signal") or code - 128 < 65):
                try:
                    sig = signal.Signals(code - 128).name
                except ValueError:
                    sig = None
            return Outcome(exit_code=code, signal_name=sig, reason=term.get("reason", ""))
    if condition(job, "Complete"):
        return Outcome(exit_code=0)
    return Outcome(exit_code=None, reason=(failed or {}).get("reason", ""))
