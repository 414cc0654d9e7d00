"""ops.wait and ops.sync_lines: how a -sync y wait ends, from the Job events a real API server sends.

The events are scripted; the e2e tests (tests/e2e/test_qsub.py, test_jsub.py) are the evidence on the
real sandbox. These pin the decisions: killed while running, deleted before it ran, pods gone.
"""

from __future__ import annotations

from typing import Any, Iterator

from gridshim import ops
from gridshim.errors import JobNotFoundError


def job(rv: str, *, active: int = 0, ready: int = 0, succeeded: int = 0, failed: int = 0,
        conditions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"active": active, "ready": ready}
    if succeeded:
        status["succeeded"] = succeeded
    if failed:
        status["failed"] = failed
    if conditions:
        status["conditions"] = conditions
    return {"metadata": {"name": "j", "uid": "u1", "resourceVersion": rv}, "status": status}


def pod(code: int) -> dict[str, Any]:
    return {"metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"},
            "status": {"containerStatuses": [{"state": {"terminated": {"exitCode": code, "reason": "Error"}}}]}}


class Scripted:
    """A Cluster whose watch yields EVENTS once, then whose Job is gone (or FINAL)."""

    namespace = "tool-demo"

    def __init__(self, events: list[tuple[str, dict[str, Any]]], pods: list[dict[str, Any]] | None = None,
                 final: dict[str, Any] | None = None) -> None:
        self.events, self.pods, self.final = events, pods or [], final

    def watch(self, kind: str, **_: Any) -> Iterator[tuple[str, dict[str, Any]]]:
        events, self.events = self.events, []
        yield from events

    def get(self, kind: str, name: str) -> dict[str, Any]:
        if self.final is None:
            raise JobNotFoundError("gone")
        return self.final

    def list(self, kind: str, **_: Any) -> tuple[list[dict[str, Any]], str]:
        return self.pods, "1"


DONE = [{"type": "Complete", "status": "True"}]
FAILED = [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]


def lines(outcome: ops.Outcome) -> tuple[str | None, str | None, int]:
    return ops.sync_lines(4242, outcome)


def test_exit_code_of_the_pod() -> None:
    c = Scripted([("MODIFIED", job("2", active=1, ready=1)), ("MODIFIED", job("3", failed=1, conditions=FAILED))],
                 pods=[pod(7)])
    assert lines(ops.wait(c, job("1"))) == (None, "Job 4242 exited with exit code 7.", 7)


def test_deleted_while_running_is_killed_not_never_ran() -> None:
    """qdel of a running job: SGE's signal line and exit 1, never 'Unable to run job' exit 0."""
    c = Scripted([("MODIFIED", job("2", active=1, ready=1)), ("DELETED", job("3", active=1))])
    assert lines(ops.wait(c, job("1", active=1))) == (None, "Job 4242 exited because of signal SIGKILL", 1)


def test_deleted_before_a_pod_ran_never_ran() -> None:
    c = Scripted([("MODIFIED", job("2", active=1)), ("DELETED", job("3", active=1))])  # pending pod only
    assert lines(ops.wait(c, job("1"))) == (None, "Unable to run job 4242", 0)


def test_gone_after_a_dropped_watch_while_it_ran_is_killed() -> None:
    c = Scripted([("MODIFIED", job("2", active=1, ready=1))])  # the watch ends, then the Job is gone
    assert lines(ops.wait(c, job("1")))[2] == 1


def test_failed_with_its_pods_gone_is_no_information() -> None:
    c = Scripted([("MODIFIED", job("2", failed=1, conditions=FAILED))], pods=[])
    assert lines(ops.wait(c, job("1"))) == (None, "No information available on job 4242's exit status.", 1)


def test_complete_without_pods_is_exit_zero() -> None:
    c = Scripted([("MODIFIED", job("2", succeeded=1, conditions=DONE))], pods=[])
    assert lines(ops.wait(c, job("1"))) == ("Job 4242 exited with exit code 0.", None, 0)


def test_finished_and_removed_by_its_ttl_while_the_waiter_was_paused() -> None:
    """The DELETED event carries the Job's last state: a failure stays a failure (never 'Unable to run')."""
    c = Scripted([("DELETED", job("5", failed=1, conditions=FAILED))], pods=[])
    assert lines(ops.wait(c, job("1", active=1, ready=1))) == (
        None, "No information available on job 4242's exit status.", 1)
    c = Scripted([("DELETED", job("5", succeeded=1, conditions=DONE))], pods=[])
    assert lines(ops.wait(c, job("1")))[2] == 0
