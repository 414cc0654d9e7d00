"""ops.submit's -once decisions on a small in-memory API (the e2e races in tests/e2e are the evidence).

Pinned here: a live job holds the name; a finished one of ours is replaced; a finished Job gridshim
did not create is left alone; our own create whose answer was lost is recognised; and under a full
quota a loser of the race for the name hears "already active", as on a roomy quota.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gridshim import ops
from gridshim.errors import GridshimError, JobExistsError, JobNotFoundError, QuotaExceededError
from gridshim.model import JobKind, JobRequest
from gridshim.render import labels as L

QUOTA = QuotaExceededError('jobs.batch "x" is forbidden: exceeded quota: q, requested: count/jobs.batch=1, '
                           "used: count/jobs.batch=15, limited: count/jobs.batch=15")


def request(**kw: Any) -> JobRequest:
    base = dict(name="bot", kind=JobKind.ONE_OFF, tool="demo", argv=("/bin/true",), mem_bytes=1, once=True,
                stdout="/o", stderr="/e", workdir="/", home="/", image="i", token="tok1")
    return JobRequest(**{**base, **kw})


def manifest(req: JobRequest) -> dict[str, Any]:
    return {"metadata": {"name": "bot", "labels": L.labels_for(req), "annotations": L.annotations_for(req)}}


def existing(*, finished: bool, ours: bool = True, token: str = "other") -> dict[str, Any]:
    req = request(token=token)
    m = manifest(req)
    if not ours:
        m["metadata"]["labels"] = {"app": "theirs"}
    m["metadata"]["uid"] = "u-old"
    m["status"] = {"conditions": [{"type": "Complete", "status": "True"}]} if finished else {"active": 1}
    return m


class Api:
    """Jobs by name; create refuses a taken name (409) or, with FULL, every create (quota)."""

    namespace = "tool-demo"

    def __init__(self, *jobs: dict[str, Any], full: bool = False) -> None:
        self.jobs = {j["metadata"]["name"]: j for j in jobs}
        self.full = full
        self.deleted: list[str] = []

    def create(self, m: dict[str, Any]) -> dict[str, Any]:
        if self.full:
            raise QUOTA
        if m["metadata"]["name"] in self.jobs:
            raise JobExistsError("exists")
        self.jobs[m["metadata"]["name"]] = copy.deepcopy(m)
        return m

    def get(self, kind: str, name: str) -> dict[str, Any]:
        if name not in self.jobs:
            raise JobNotFoundError(name)
        return self.jobs[name]

    def list(self, kind: str, **_: Any) -> tuple[list[dict[str, Any]], str]:
        return list(self.jobs.values()), "1"

    def delete(self, kind: str, name: str, **_: Any) -> None:
        self.deleted.append(name)
        self.jobs.pop(name, None)


def test_a_live_job_holds_the_name() -> None:
    with pytest.raises(ops.AlreadyActiveError, match="there is a job named 'bot' already active"):
        ops.submit(Api(existing(finished=False)), manifest(request()), request())


def test_a_finished_job_of_ours_is_replaced() -> None:
    api = Api(existing(finished=True))
    ops.submit(api, manifest(request()), request())
    assert api.deleted == ["bot"] and api.jobs["bot"]["metadata"]["annotations"][L.A_TOKEN] == "tok1"


def test_a_finished_job_gridshim_did_not_create_is_left_alone() -> None:
    api = Api(existing(finished=True, ours=False))
    with pytest.raises(GridshimError, match="that gridshim did not create is in the way"):
        ops.submit(api, manifest(request()), request())
    assert api.deleted == []


def test_our_own_create_whose_answer_was_lost_is_recognised() -> None:
    api = Api(existing(finished=False, token="tok1"))
    assert ops.submit(api, manifest(request()), request())["metadata"]["uid"] == "u-old"


def test_under_a_full_quota_a_loser_hears_already_active_not_try_later() -> None:
    with pytest.raises(ops.AlreadyActiveError):
        ops.submit(Api(existing(finished=False), full=True), manifest(request()), request())


def test_under_a_full_quota_with_the_name_free_it_is_the_quota_message() -> None:
    with pytest.raises(QuotaExceededError, match="only 15 jobs are allowed per user") as e:
        ops.submit(Api(full=True), manifest(request()), request())
    assert e.value.exit_code == 25
