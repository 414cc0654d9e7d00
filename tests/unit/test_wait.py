"""ops.wait and ops.sync_lines: how a -sync y wait ends, on the kit's fake API server, whose watch delivers
what the cluster does meanwhile (kit: `then(...)` steps, the Job controller's start/finish).

The e2e tests (tests/e2e/test_qsub_e2e.py, test_jsub.py) are the evidence on the real sandbox. These pin the
decisions: the pod's exit code, killed while running, deleted before it ran, pods gone, the watch's
BOOKMARK/ERROR events, and an API that is down or refusing for longer than any retry budget.
"""

from __future__ import annotations

from typing import Any

import pytest

from gridshim import ops
from gridshim.errors import ClusterConfigError, ClusterError, ForbiddenError
from kit import FakeApi

DONE = [{"type": "Complete", "status": "True"}]
FAILED = [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]
DEADLINE = [{"type": "FailureTarget", "status": "True", "reason": "DeadlineExceeded"}]


def submitted(api: FakeApi, name: str = "j") -> dict[str, Any]:
    """A Job as jsub has just created it (what ops.wait is given)."""
    return api.create({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
                       "spec": {"template": {"spec": {"containers": [{"name": "job"}]}}}})


def lines(outcome: ops.Outcome) -> tuple[str | None, str | None, int]:
    return ops.sync_lines(4242, outcome)


def pod_lists(api: FakeApi) -> int:
    return len([c for c in api.calls if (c.verb, c.kind) == ("list", "Pod")])


def test_exit_code_of_the_pod() -> None:
    api = FakeApi()
    job = submitted(api)
    api.then(lambda: api.start("j"), lambda: api.finish("j", 7))
    assert lines(ops.wait(api, job)) == (None, "Job 4242 exited with exit code 7.", 7)
    assert pod_lists(api) == 1  # listed once, when the controller decided the end (FailureTarget)


def test_exit_zero() -> None:
    api = FakeApi()
    job = submitted(api)
    api.then(lambda: api.start("j"), lambda: api.finish("j", 0))
    assert lines(ops.wait(api, job)) == ("Job 4242 exited with exit code 0.", None, 0)


def test_deleted_while_running_is_killed_not_never_ran() -> None:
    """qdel of a running job: SGE's signal line and exit 1, never 'Unable to run job' exit 0."""
    api = FakeApi()
    job = submitted(api)
    api.then(lambda: api.start("j"), lambda: api.delete("Job", "j", propagation="Foreground"),
             lambda: api.delete_collection("Pod", selector=f"batch.kubernetes.io/controller-uid={job['metadata']['uid']}"))
    assert lines(ops.wait(api, job)) == (None, "Job 4242 exited because of signal SIGKILL", 1)


def test_deleted_before_a_pod_ran_never_ran() -> None:
    api = FakeApi()
    job = submitted(api)
    api.then(lambda: api.set_status("Job", "j", active=1), lambda: api.delete("Job", "j"))  # a pending pod only
    assert lines(ops.wait(api, job)) == (None, "Unable to run job 4242", 0)


def test_gone_after_a_dropped_watch_while_it_ran_is_killed() -> None:
    """The watch ends (its ERROR event: 410) after the job started; when the waiter looks again the Job
    is gone, and no DELETED event was ever seen."""
    api = FakeApi()
    job = submitted(api)
    api.then(lambda: api.start("j"), api.expire)
    api.before("list", lambda: api.unseen(gone=("Job", "j")), kind="Job")
    assert lines(ops.wait(api, job))[2] == 1


def test_bookmarks_move_the_watch_on_and_an_expired_watch_is_followed_by_a_list() -> None:
    api = FakeApi()
    job = submitted(api)
    api.then(api.bookmark, lambda: api.start("j"), api.expire, lambda: api.finish("j", 3))
    assert lines(ops.wait(api, job))[2] == 3
    watches = [c.params["resource_version"] for c in api.calls if c.verb == "watch"]
    lists = [c for c in api.calls if c.verb == "list" and c.kind == "Job"]
    assert len(watches) == 2 and len(lists) == 1  # re-listed after the 410, then watched from the list's version
    assert lists[0].params["field_selector"] == "metadata.name=j"
    assert int(watches[1]) > int(watches[0])


def test_failed_with_its_pods_gone_is_no_information() -> None:
    api = FakeApi()
    job = submitted(api)
    api.then(lambda: api.set_status("Job", "j", failed=1, conditions=FAILED))  # no pod left to read
    assert lines(ops.wait(api, job)) == (None, "No information available on job 4242's exit status.", 1)


def test_complete_without_pods_is_exit_zero() -> None:
    api = FakeApi()
    job = submitted(api)
    api.then(lambda: api.set_status("Job", "j", succeeded=1, conditions=DONE))
    assert lines(ops.wait(api, job)) == ("Job 4242 exited with exit code 0.", None, 0)


def test_finished_and_removed_by_its_ttl_while_the_waiter_was_paused() -> None:
    """The DELETED event carries the Job's last state: a failure stays a failure (never 'Unable to run')."""
    for conditions, code in ((FAILED, 1), (DONE, 0)):
        api = FakeApi()
        submitted(api)
        api.start("j")

        def finished_unseen_then_removed(conditions: list[dict[str, Any]] = conditions) -> None:
            last = api.stored("Job", "j")
            last["status"] = {"conditions": conditions, **({"failed": 1} if conditions is FAILED else {"succeeded": 1})}
            api.unseen(last)
            for pod in api.objects("Pod"):
                api.unseen(gone=("Pod", pod["metadata"]["name"]))
            api.delete("Job", "j")
        api.then(finished_unseen_then_removed)
        started = api.stored("Job", "j")
        out = lines(ops.wait(api, started))
        assert out[2] == code, out
        if code:
            assert out == (None, "No information available on job 4242's exit status.", 1)


def test_pods_still_running_when_the_end_is_decided_are_listed_again_at_the_end() -> None:
    api = FakeApi()
    job = submitted(api)
    api.then(lambda: api.start("j"), lambda: api.set_status("Job", "j", conditions=DEADLINE),
             lambda: (api.end_pods("j", 143), api.set_status("Job", "j", active=0, failed=1,
                                                             conditions=DEADLINE + FAILED)))
    assert ops.wait(api, job).exit_code == 143
    assert pod_lists(api) == 2


# -- the API down or refusing while the job runs (issue 12) -----------------------------------------------

def down() -> ClusterError:
    return ClusterError("cannot reach the Kubernetes API at https://x: Connection refused (gave up after 9 attempts "
                        "in 30 s; …)")


def running_then_failed_unseen(api: FakeApi, code: int) -> dict[str, Any]:
    """A running job (what the waiter holds) that then ends with CODE while the waiter cannot look."""
    submitted(api)
    api.start("j")
    running = api.stored("Job", "j")
    api.end_pods("j", code)
    last = api.stored("Job", "j")
    last["status"] = {"failed": 1, "conditions": FAILED} if code else {"succeeded": 1, "conditions": DONE}
    api.unseen(last)
    api.compact()
    return running


def test_the_wait_outlasts_any_number_of_failed_budgets_and_reports_the_real_code() -> None:
    """Item 4: the API is down longer than the 30 s retry budget; the job runs on and exits 7."""
    api = FakeApi()
    running = running_then_failed_unseen(api, 7)
    api.fail("*", down(), times=12)
    slept: list[float] = []
    troubles: list[tuple[str, float]] = []
    out = ops.wait(api, running, sleep=slept.append, on_trouble=lambda e, d: troubles.append((e.message, d)))
    assert lines(out) == (None, "Job 4242 exited with exit code 7.", 7)
    assert slept == [1.0, 2.0, 4.0, 8.0] + [10.0] * 8  # capped back-off
    assert [d for _, d in troubles] == slept and "Connection refused" in troubles[0][0]


def test_a_403_while_waiting_does_not_end_the_wait() -> None:
    """A restarted API server's 403 (RBAC not loaded) says nothing about the Job, which we just created."""
    api = FakeApi()
    running = running_then_failed_unseen(api, 0)
    api.fail("*", ForbiddenError('not allowed: jobs.batch "j" is forbidden: User "x" cannot get resource "jobs"'),
             times=3)
    assert lines(ops.wait(api, running, sleep=lambda s: None))[2] == 0


def test_the_pod_list_at_the_end_is_retried_too() -> None:
    api = FakeApi()
    job = submitted(api)
    api.then(lambda: api.start("j"), lambda: (api.end_pods("j", 3),
                                             api.set_status("Job", "j", failed=1, conditions=FAILED)))
    api.fail("list", down(), kind="Pod", times=2)
    assert lines(ops.wait(api, job, sleep=lambda s: None))[2] == 3


def test_after_trouble_the_live_line_shows_the_job_again() -> None:
    api = FakeApi()
    running = running_then_failed_unseen(api, 0)
    api.fail("*", down())
    seen: list[str] = []
    ops.wait(api, running, sleep=lambda s: None, on_change=lambda o: seen.append(o["metadata"]["resourceVersion"]))
    assert seen == [api.stored("Job", "j")["metadata"]["resourceVersion"]]


def test_refused_credentials_still_end_the_wait() -> None:
    api = FakeApi()
    job = submitted(api)
    api.fail("watch", ClusterConfigError("the API server did not accept your credentials"))
    with pytest.raises(ClusterConfigError):
        ops.wait(api, job, sleep=lambda s: None)


def test_deleted_while_the_api_was_away_is_still_judged_by_whether_it_ran() -> None:
    api = FakeApi()
    submitted(api)
    api.start("j")
    running = api.stored("Job", "j")
    api.fail("*", down(), times=3)
    api.before("list", lambda: api.unseen(gone=("Job", "j")), kind="Job")  # back again: the Job is gone
    api.compact()
    assert lines(ops.wait(api, running, sleep=lambda s: None)) == (None, "Job 4242 exited because of signal SIGKILL", 1)


def test_a_job_unchanged_for_longer_than_the_watch_window_is_still_waited_for() -> None:
    """Found with the kit: after a 410 the wait re-synced with a GET and watched from the Job's own
    resourceVersion, older than the window, so every watch was 410 at once (a loop without a pause). It
    re-syncs with a LIST now, whose resourceVersion is the collection's."""
    api = FakeApi()
    job = submitted(api)
    api.start("j")
    api.create({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "other"}, "spec": {}})
    api.compact()  # the window has moved past the Job's last change
    api.then(lambda: api.finish("j", 0))
    assert lines(ops.wait(api, job, sleep=lambda s: None))[2] == 0


# -- issue 12 item 3: a Job gone while the waiter did not look; its accounting record ---------------------


def vanished_unseen(api: FakeApi, *, ran: bool) -> dict[str, Any]:
    """The wait's view when a paused waiter comes back: the watch history is gone (410) and the re-list
    finds no Job (it ran or not, ended and its TTL removed it). Returns the Job as the waiter last saw it."""
    submitted(api)
    seen = api.stored("Job", "j")
    if ran:
        api.start("j")
        seen = api.stored("Job", "j")
    api.before("list", lambda: api.unseen(gone=("Job", "j")), kind="Job")
    api.compact()
    return seen


def test_a_job_gone_unseen_that_was_never_seen_running_is_unknown_not_never_ran() -> None:
    """Before: `Unable to run job N`, exit 0, for a job that had run and failed while its waiter was paused."""
    api = FakeApi()
    job = vanished_unseen(api, ran=False)
    assert lines(ops.wait(api, job, sleep=lambda s: None)) == (
        None, "No information available on job 4242's exit status.", 1)


@pytest.mark.parametrize("ran", [True, False])
def test_a_job_gone_unseen_ended_as_its_accounting_record_says(ran: bool) -> None:
    api = FakeApi()
    job = vanished_unseen(api, ran=ran)
    asked: list[str] = []

    def recorded(uid: str) -> ops.Outcome | None:
        asked.append(uid)
        return ops.Outcome(exit_code=3)

    assert lines(ops.wait(api, job, sleep=lambda s: None, recorded=recorded)) == (
        None, "Job 4242 exited with exit code 3.", 3)
    assert asked == [job["metadata"]["uid"]]


def test_pods_gone_and_a_record_gives_the_exit_code_and_no_record_stays_no_information() -> None:
    for record, want in ((ops.Outcome(exit_code=5), (None, "Job 4242 exited with exit code 5.", 5)),
                         (None, (None, "No information available on job 4242's exit status.", 1))):
        api = FakeApi()
        job = submitted(api)
        api.then(lambda: api.set_status("Job", "j", failed=1, conditions=FAILED))  # no pod left to read
        assert lines(ops.wait(api, job, recorded=lambda uid, r=record: r)) == want


def test_recorded_outcome_reads_the_last_attempt_of_that_job_from_the_accounting_file(tmp_path: Any) -> None:
    from gridshim import accounting
    from gridshim.cli.jsub import recorded_outcome

    def rec(job_uid: str, end: int, code: int) -> str:
        return accounting.format_line(accounting.Record(job_name="x", job_number=4242, end_time=end,
                                                        exit_status=code, attempt=f"{job_uid}/pod{end}")) + "\n"

    (tmp_path / ".gridshim").mkdir()
    (tmp_path / ".gridshim" / "accounting").write_text(rec("u1", 10, 2) + rec("u2", 11, 4) + rec("u1", 12, 137))
    environ = {"HOME": str(tmp_path), "GRIDSHIM_CONFIG": str(tmp_path / "none.yaml")}
    (tmp_path / "none.yaml").write_text("images: {default: x}\n")
    assert recorded_outcome(environ, "u1") == ops.Outcome(exit_code=137, signal_name="SIGKILL", reason="accounting")
    assert recorded_outcome(environ, "u2") == ops.Outcome(exit_code=4, reason="accounting")
    assert recorded_outcome(environ, "u3") is None and recorded_outcome(environ, "") is None
    (tmp_path / "none.yaml").write_text("images: {default: x}\naccounting_file: null\n")  # accounting off
    assert recorded_outcome(environ, "u1") is None
