"""ops.wait and ops.sync_lines: how a -sync y wait ends, from the Job events a real API server sends.

The events are scripted; the e2e tests (tests/e2e/test_qsub.py, test_jsub.py) are the evidence on the
real sandbox. These pin the decisions: killed while running, deleted before it ran, pods gone.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from gridshim import ops
from gridshim.errors import ClusterConfigError, ClusterError, ForbiddenError, JobNotFoundError


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


# -- the API down or refusing while the job runs (issue 12) -----------------------------------------------

class Flaky(Scripted):
    """Scripted, but the watch and the GETs first fail with FAILURES (one per call, in order)."""

    def __init__(self, failures: list[Exception], **kw: Any) -> None:
        super().__init__(**kw)
        self.failures = list(failures)
        self.calls: list[str] = []

    def _maybe_fail(self, what: str) -> None:
        self.calls.append(what)
        if self.failures:
            raise self.failures.pop(0)

    def watch(self, kind: str, **kw: Any) -> Iterator[tuple[str, dict[str, Any]]]:
        self._maybe_fail("watch")
        yield from super().watch(kind, **kw)

    def get(self, kind: str, name: str) -> dict[str, Any]:
        self._maybe_fail("get")
        return super().get(kind, name)

    def list(self, kind: str, **kw: Any) -> tuple[list[dict[str, Any]], str]:
        self._maybe_fail("list")
        return super().list(kind, **kw)


def down(n: int) -> list[Exception]:
    return [ClusterError("cannot reach the Kubernetes API at https://x: Connection refused (gave up after 9 attempts "
                         "in 30 s; …)") for _ in range(n)]


def test_the_wait_outlasts_any_number_of_failed_budgets_and_reports_the_real_code() -> None:
    """Item 4: the API is down longer than the 30 s retry budget; the job runs on and exits 7."""
    slept: list[float] = []
    troubles: list[tuple[str, float]] = []
    c = Flaky(down(12), events=[], pods=[pod(7)], final=job("9", failed=1, conditions=FAILED))
    out = ops.wait(c, job("1", active=1, ready=1), sleep=slept.append,
                   on_trouble=lambda e, d: troubles.append((e.message, d)))
    assert lines(out) == (None, "Job 4242 exited with exit code 7.", 7)
    assert slept == [1.0, 2.0, 4.0, 8.0] + [10.0] * 8  # capped back-off
    assert [d for _, d in troubles] == slept and "Connection refused" in troubles[0][0]


def test_a_403_while_waiting_does_not_end_the_wait() -> None:
    """A restarted API server's 403 (RBAC not loaded) says nothing about the Job, which we just created."""
    refused = [ForbiddenError('not allowed: jobs.batch "j" is forbidden: User "x" cannot get resource "jobs"')] * 3
    c = Flaky(refused, events=[], pods=[pod(0)], final=job("9", succeeded=1, conditions=DONE))
    assert lines(ops.wait(c, job("1", active=1, ready=1), sleep=lambda s: None))[2] == 0


def test_the_pod_list_at_the_end_is_retried_too() -> None:
    c = Flaky([], events=[("MODIFIED", job("2", failed=1, conditions=FAILED))], pods=[pod(3)])
    c.failures = []
    real_list = c.list
    fails = down(2)

    def list_(kind: str, **kw: Any) -> tuple[list[dict[str, Any]], str]:
        if fails:
            raise fails.pop(0)
        return real_list(kind, **kw)
    c.list = list_  # type: ignore[method-assign]
    assert lines(ops.wait(c, job("1", active=1, ready=1), sleep=lambda s: None))[2] == 3


def test_after_trouble_the_live_line_shows_the_job_again() -> None:
    seen: list[str] = []
    c = Flaky(down(1), events=[], pods=[pod(0)], final=job("9", succeeded=1, conditions=DONE))
    ops.wait(c, job("1", active=1, ready=1), sleep=lambda s: None, on_change=lambda o: seen.append(o["metadata"]["resourceVersion"]))
    assert seen == ["9"]


def test_refused_credentials_still_end_the_wait() -> None:
    c = Flaky([ClusterConfigError("the API server did not accept your credentials")], events=[])
    with pytest.raises(ClusterConfigError):
        ops.wait(c, job("1", active=1, ready=1), sleep=lambda s: None)


def test_deleted_while_the_api_was_away_is_still_judged_by_whether_it_ran() -> None:
    c = Flaky(down(3), events=[], final=None)  # back again: the Job is gone
    assert lines(ops.wait(c, job("1", active=1, ready=1), sleep=lambda s: None)) == (
        None, "Job 4242 exited because of signal SIGKILL", 1)


class Counting(Scripted):
    """Scripted, with its pods changing after each LIST (as a terminating pod's would)."""

    def __init__(self, *a: Any, later: list[list[dict[str, Any]]], **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.later, self.lists = later, 0

    def list(self, kind: str, **_: Any) -> tuple[list[dict[str, Any]], str]:
        self.lists += 1
        out = self.pods
        if self.later:
            self.pods = self.later.pop(0)
        return out, "1"


def terminal(code: int) -> dict[str, Any]:
    p = pod(code)
    p["status"]["phase"] = "Succeeded" if code == 0 else "Failed"
    return p


MET = [{"type": "SuccessCriteriaMet", "status": "True"}]
TARGET = [{"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded"}]


def test_pods_are_listed_once_when_the_end_is_decided() -> None:
    """SuccessCriteriaMet/FailureTarget come before Complete/Failed: the one LIST of pods is made then,
    so the exit code is there when the terminal condition arrives."""
    for decided, final, code in ((MET, DONE, 0), (TARGET, FAILED, 3)):
        c = Counting([("MODIFIED", job("2", active=1)), ("MODIFIED", job("3", conditions=decided)),
                      ("MODIFIED", job("4", conditions=decided + final))], pods=[terminal(code)], later=[[]])
        assert ops.wait(c, job("1")).exit_code == code
        assert c.lists == 1


def test_pods_still_running_when_the_end_is_decided_are_listed_again_at_the_end() -> None:
    running = pod(0)
    running["status"] = {"phase": "Running", "containerStatuses": [{"state": {"running": {}}}]}
    deadline = [{"type": "FailureTarget", "status": "True", "reason": "DeadlineExceeded"}]
    c = Counting([("MODIFIED", job("2", active=1)), ("MODIFIED", job("3", active=1, conditions=deadline)),
                  ("MODIFIED", job("4", failed=1, conditions=deadline + FAILED))], pods=[running],
                 later=[[terminal(143)]])
    assert ops.wait(c, job("1")).exit_code == 143
    assert c.lists == 2
