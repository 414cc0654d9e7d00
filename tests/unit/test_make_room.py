"""Finished jobs never block new ones (issue 16): ops.submit's retries under a full job quota, and
control.remove_finished deleting only as many finished Jobs as needed, oldest first, each once its
accounting record is safe (records.make_safe)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gridshim import control, ops, records
from gridshim.accounting import load
from gridshim.config import Settings
from gridshim.errors import QuotaExceededError
from gridshim.model import JobKind, JobRequest
from gridshim.render import labels as L
from kit import FakeApi

LIMIT = 3


def request(name: str) -> JobRequest:
    return JobRequest(name=name, kind=JobKind.ONE_OFF, tool="demo", argv=("/bin/true",), mem_bytes=1, once=False,
                      stdout="/o", stderr="/e", workdir="/", home="/", image="i", token=f"tok-{name}")


def manifest(req: JobRequest) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": L.object_name(req.name), "labels": L.labels_for(req),
                         "annotations": L.annotations_for(req)},
            "spec": {"template": {"spec": {"containers": [{"name": "job", "image": "i"}]}}}}


def refusal(used: int) -> QuotaExceededError:
    """kube-apiserver's answer while the quota's status still counts USED jobs."""
    return QuotaExceededError('jobs.batch "new" is forbidden: exceeded quota: q, requested: count/jobs.batch=1, '
                              f"used: count/jobs.batch={used}, limited: count/jobs.batch={LIMIT}")


def full_namespace(finished: int = LIMIT) -> FakeApi:
    """A tool whose quota of LIMIT jobs is taken by FINISHED finished Jobs (old0 finished first) and
    live ones for the rest."""
    api = FakeApi()
    api.seed({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"},
              "spec": {"hard": {"count/jobs.batch": str(LIMIT)}}})
    for n in range(LIMIT):
        api.now = f"2026-12-01T10:0{n}:00Z"
        name = f"old{n}" if n < finished else f"live{n}"
        api.create(manifest(request(name)))
        api.start(name)
        if n < finished:
            api.finish(name, n)
    api.retry_seconds = 30.0
    return api


class Clock:
    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


def room(api: FakeApi, calls: list[int], tmp_path: Path) -> Any:
    settings = Settings(accounting_file=str(tmp_path / "acct"))

    def make_room(needed: int) -> int:
        calls.append(needed)
        return control.remove_finished(api, now=2e9, user_prefix="tools.", limit=needed,
                                       before_delete=lambda job, pods: records.make_safe(
                                           job, pods, settings=settings, home="/h", now=2e9))
    return make_room


def names(api: FakeApi) -> list[str]:
    return sorted(j["metadata"]["name"] for j in api.objects("Job"))


@pytest.mark.parametrize("stale", [0, 1, 4])
def test_a_quota_that_still_counts_the_deleted_job_is_retried_with_a_capped_back_off(tmp_path: Path, stale: int) -> None:
    """The quota controller sees the delete later: the first STALE retries still get the refusal with the
    old count. One finished Job (the oldest) is deleted, never more, and the create goes through."""
    api = full_namespace()
    clock, calls = Clock(), []
    api.fail("create", refusal(LIMIT))  # the first try, before any room was made
    api.fail("create", refusal(LIMIT), times=stale)
    made = ops.submit(api, manifest(request("new")), request("new"), make_room=room(api, calls, tmp_path),
                      sleep=clock.sleep, clock=clock)
    assert made["metadata"]["name"] == "new"
    assert calls == [1]  # one place was needed; the stale count never made it delete another
    assert names(api) == ["new", "old1", "old2"]  # the oldest went; qstat -s z keeps the others
    assert clock.sleeps == [0.1, 0.2, 0.4, 0.8][:stale]
    (rec,) = load((tmp_path / "acct").read_text())  # its record was made safe before it went
    assert (rec.job_name, rec.exit_status) == ("old0", 0)


def test_the_back_off_is_capped_and_ends_with_the_budget(tmp_path: Path) -> None:
    api = full_namespace()
    api.retry_seconds = 5.0
    clock, calls = Clock(), []
    api.fail("create", refusal(LIMIT), times=100)  # the count never falls
    with pytest.raises(QuotaExceededError, match="only 3 jobs are allowed per user"):
        ops.submit(api, manifest(request("new")), request("new"), make_room=room(api, calls, tmp_path),
                   sleep=clock.sleep, clock=clock)
    assert max(clock.sleeps) == 1.0 and clock.t <= 5.0 and sum(clock.sleeps) > 3.0
    assert calls == [1] and names(api) == ["old1", "old2"]


def test_room_is_made_again_when_the_count_fell_and_another_submitter_took_the_place(tmp_path: Path) -> None:
    api = full_namespace()
    clock, calls = Clock(), []
    api.fail("create", refusal(LIMIT))
    # the count fell (the delete was seen) and someone else's job took the place: still full
    api.fail("create", refusal(LIMIT - 1))
    ops.submit(api, manifest(request("new")), request("new"), make_room=room(api, calls, tmp_path),
               sleep=clock.sleep, clock=clock)
    assert calls == [1, 1] and names(api) == ["new", "old2"]  # the two oldest, one at a time


def test_only_finished_jobs_whose_record_is_safe_are_deleted(tmp_path: Path) -> None:
    """A record that cannot be written (the accounting file's directory is a file) keeps the Job: nothing
    is deleted and the quota's refusal stands."""
    api = full_namespace(finished=2)
    (tmp_path / "acct").mkdir()  # appending to it fails
    settings = Settings(accounting_file=str(tmp_path / "acct"))
    removed = control.remove_finished(api, now=2e9, user_prefix="tools.", limit=1,
                                      before_delete=lambda job, pods: records.make_safe(
                                          job, pods, settings=settings, home="/h", now=2e9))
    assert removed == 0 and names(api) == ["live2", "old0", "old1"]
    # accounting off at the site: nothing to keep, the oldest goes
    off = Settings(accounting_file=None)
    assert control.remove_finished(api, now=2e9, user_prefix="tools.", limit=1,
                                   before_delete=lambda job, pods: records.make_safe(
                                       job, pods, settings=off, home="/h", now=2e9)) == 1
    assert names(api) == ["live2", "old1"]


def test_without_finished_jobs_the_refusal_stands_at_once(tmp_path: Path) -> None:
    api = full_namespace(finished=0)
    clock, calls = Clock(), []
    with pytest.raises(QuotaExceededError):
        ops.submit(api, manifest(request("new")), request("new"), make_room=room(api, calls, tmp_path),
                   sleep=clock.sleep, clock=clock)
    assert calls == [1] and clock.sleeps == []
