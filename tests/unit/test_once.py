"""ops.submit's -once decisions on the kit's fake API server (the e2e races in tests/e2e are the evidence).

Pinned here: a live job holds the name; a dying one too; a finished one of ours is replaced (deleted with
its uid as precondition); a finished Job gridshim did not create is left alone; our own create whose answer
was lost (the retried POST met 409) is recognised by its token; a finished job replaced by a live one
between the look and the delete is not deleted; and under a full quota a loser of the race for the name
hears "already active", as on a roomy quota.
"""

from __future__ import annotations

from typing import Any

import pytest

from gridshim import ops
from gridshim.errors import GridshimError, QuotaExceededError
from gridshim.model import JobKind, JobRequest
from gridshim.render import labels as L
from kit import FakeApi

QUOTA = QuotaExceededError('jobs.batch "bot" is forbidden: exceeded quota: q, requested: count/jobs.batch=1, '
                           "used: count/jobs.batch=15, limited: count/jobs.batch=15")


def request(**kw: Any) -> JobRequest:
    base = dict(name="bot", kind=JobKind.ONE_OFF, tool="demo", argv=("/bin/true",), mem_bytes=1, once=True,
                stdout="/o", stderr="/e", workdir="/", home="/", image="i", token="tok1")
    return JobRequest(**{**base, **kw})


def manifest(req: JobRequest, name: str = "bot") -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "labels": L.labels_for(req), "annotations": L.annotations_for(req)},
            "spec": {"template": {"spec": {"containers": [{"name": "job", "image": "i"}]}}}}


def api_with(*, state: str | None, ours: bool = True, token: str = "other", name: str = "bot",
             once: bool = True) -> FakeApi:
    """A namespace holding one job named bot in STATE: live, finished, dying or None (no job)."""
    api = FakeApi()
    if state is None:
        return api
    m = manifest(request(token=token, once=once), name)
    if not ours:
        m["metadata"]["labels"] = {"app": "theirs"}
    api.create(m)
    api.start(name)
    if state in ("finished", "dying"):
        api.finish(name, 0)
    if state == "dying":
        api.dying(name)
    api.calls.clear()
    return api


def submit(api: FakeApi, **kw: Any) -> dict[str, Any]:
    return ops.submit(api, manifest(request(**kw)), request(**kw))


def test_a_live_job_holds_the_name() -> None:
    api = api_with(state="live")
    with pytest.raises(ops.AlreadyActiveError, match="there is a job named 'bot' already active"):
        submit(api)
    assert api.writes() == [("create", "Job", "bot")]  # the API server's 409 decided; nothing deleted
    assert api.stored("Job", "bot")["metadata"]["annotations"][L.A_TOKEN] == "other"


def test_a_dying_job_holds_the_name_even_when_it_has_finished() -> None:
    """jsub refuses a name while a Job of that name has a deletionTimestamp (qstat shows it dr)."""
    api = api_with(state="dying")
    with pytest.raises(ops.AlreadyActiveError):
        submit(api)
    assert [w[0] for w in api.writes()] == ["create"]  # tried, refused with 409; nothing deleted
    assert api.stored("Job", "bot")["metadata"]["deletionTimestamp"]


def test_a_finished_job_of_ours_is_replaced_with_its_uid_as_precondition() -> None:
    api = api_with(state="finished")
    old = api.stored("Job", "bot")["metadata"]["uid"]
    made = submit(api)
    deletes = [c for c in api.calls if c.verb == "delete"]
    assert [(c.name, c.params["uid"]) for c in deletes] == [("bot", old)]
    assert made["metadata"]["uid"] != old and made["metadata"]["annotations"][L.A_TOKEN] == "tok1"
    (job,) = api.objects("Job")
    assert job["metadata"]["uid"] == made["metadata"]["uid"] and api.objects("Pod") == []


def test_a_finished_job_gridshim_did_not_create_is_left_alone() -> None:
    api = api_with(state="finished", ours=False)
    with pytest.raises(GridshimError, match="that gridshim did not create is in the way"):
        submit(api)
    assert [c.verb for c in api.calls if c.verb == "delete"] == []


def test_our_own_create_whose_answer_was_lost_is_recognised() -> None:
    """The POST made the Job, its answer was lost, the retried POST met 409: the Job is ours (our token)."""
    api = api_with(state=None)
    api.lose_answer("create")
    made = submit(api)
    (job,) = api.objects("Job")
    assert made["metadata"]["uid"] == job["metadata"]["uid"]
    assert job["metadata"]["annotations"][L.A_TOKEN] == "tok1"
    assert [w[0] for w in api.writes()] == ["create"]  # one object, nothing deleted, no second create


def test_our_own_live_job_is_recognised_after_a_lost_answer() -> None:
    api = api_with(state="live", token="tok1")
    assert submit(api)["metadata"]["uid"] == api.stored("Job", "bot")["metadata"]["uid"]


def test_a_finished_job_replaced_by_a_live_one_before_the_delete_is_not_deleted() -> None:
    """Between the GET and the DELETE another -once submission replaced the finished Job: the uid
    precondition refuses the delete, the next create meets the live one, and it keeps running."""
    api = api_with(state="finished")

    def other_submitter(verb: str, kind: str, name: str) -> None:
        assert verb == "delete"
        api.delete("Job", "bot")
        api.create(manifest(request(token="tok2")))
        api.start("bot")
    api.before("get", lambda: api.interfere(other_submitter))
    with pytest.raises(ops.AlreadyActiveError):
        submit(api)
    (job,) = api.objects("Job")
    assert job["metadata"]["annotations"][L.A_TOKEN] == "tok2" and job["status"]["active"] == 1


def test_a_live_job_without_once_of_the_same_name_holds_the_name() -> None:
    """Plain jobs get unique object names, so -once lists live jobs by their name label first."""
    api = api_with(state="live", name="bot-x7k2q", once=False)
    with pytest.raises(ops.AlreadyActiveError):
        submit(api)
    assert api.writes() == []


def test_under_a_full_quota_a_loser_hears_already_active_not_try_later() -> None:
    api = api_with(state="live").fail("create", QUOTA)
    with pytest.raises(ops.AlreadyActiveError):
        submit(api)


def test_under_a_full_quota_with_the_name_free_it_is_the_quota_message() -> None:
    api = api_with(state=None).fail("create", QUOTA)
    with pytest.raises(QuotaExceededError, match="only 15 jobs are allowed per user") as e:
        submit(api)
    assert e.value.exit_code == 25


def test_finished_jobs_make_room_under_a_full_quota_and_the_create_is_tried_once_more() -> None:
    api = api_with(state=None).fail("create", QUOTA)
    rooms: list[int] = []

    def make_room(needed: int) -> int:
        rooms.append(needed)
        return 1  # one finished Job removed
    made = ops.submit(api, manifest(request()), request(), make_room=make_room)
    assert rooms == [1] and [j["metadata"]["uid"] for j in api.objects("Job")] == [made["metadata"]["uid"]]
    api = api_with(state=None).fail("create", QUOTA)
    with pytest.raises(QuotaExceededError):  # nothing could be removed: the quota's answer stands
        ops.submit(api, manifest(request()), request(), make_room=lambda needed: 0)
