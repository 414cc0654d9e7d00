"""The kit's fake API server keeps the API server's rules (tests/kit/api.py); the same steps against the
real sandbox are tests/e2e/test_kit_conformance.py."""

from __future__ import annotations

import os

import pytest

from gridshim.errors import ClusterError, ConflictError, ForbiddenError, JobExistsError, JobNotFoundError
from kit import FakeApi, fixture, fixture_names, golden, label_match
from kit.golden import GOLDEN


def job(name: str, **labels: str) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "labels": labels},
            "spec": {"template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "job"}]}}}}


def test_create_gives_uid_and_a_growing_resource_version_and_a_taken_name_is_already_exists() -> None:
    api = FakeApi()
    a = api.create(job("a"))
    b = api.create(job("b"))
    assert a["metadata"]["uid"] != b["metadata"]["uid"]
    assert int(b["metadata"]["resourceVersion"]) > int(a["metadata"]["resourceVersion"])
    assert a["metadata"]["namespace"] == "tool-demo" and a["metadata"]["creationTimestamp"]
    with pytest.raises(JobExistsError, match='jobs.batch "a" already exists'):
        api.create(job("a"))


def test_stale_resource_version_and_wrong_uid_are_conflicts_not_already_exists() -> None:
    api = FakeApi()
    a = api.create(job("a"))
    api.patch("Job", "a", {"metadata": {"annotations": {"x": "1"}}})
    with pytest.raises(ConflictError, match="has been modified"):
        api.replace(a)  # the resourceVersion read before the patch
    with pytest.raises(ClusterError, match="field is immutable"):
        api.patch("Job", "a", {"metadata": {"uid": "someone-else"}, "spec": {"suspend": True}})
    with pytest.raises(ConflictError, match="has been modified"):  # the stale resourceVersion is found first
        api.patch("Job", "a", {"metadata": {"uid": "someone-else", "resourceVersion": a["metadata"]["resourceVersion"]}})
    with pytest.raises(ConflictError, match="Precondition failed: ResourceVersion"):
        api.delete("Job", "a", resource_version=a["metadata"]["resourceVersion"])
    with pytest.raises(ConflictError, match="Precondition failed: UID"):
        api.delete("Job", "a", uid="someone-else")
    assert api.stored("Job", "a")["metadata"]["annotations"] == {"x": "1"}
    fresh = api.get("Job", "a")
    fresh["metadata"]["labels"] = {"y": "2"}
    put = api.replace(fresh)
    assert put["metadata"]["uid"] == a["metadata"]["uid"] and put["metadata"]["labels"] == {"y": "2"}


def test_merge_patch_removes_with_null_and_keeps_status_out_of_replace() -> None:
    api = FakeApi()
    api.create({**job("a"), "metadata": {"name": "a", "annotations": {"k": "v", "gone": "x"}}})
    api.set_status("Job", "a", active=1)
    out = api.patch("Job", "a", {"metadata": {"annotations": {"gone": None}}})
    assert out["metadata"]["annotations"] == {"k": "v"}
    mine = api.get("Job", "a")
    mine["status"] = {"active": 99}
    assert api.replace(mine)["status"] == {"active": 1}


def test_label_and_field_selectors() -> None:
    labels = {"app": "x", "tier": "db"}
    assert label_match(labels, "app=x,tier in (db,web)") and label_match(labels, "app==x,!gone,tier")
    assert not label_match(labels, "app!=x") and not label_match(labels, "tier notin (db)")
    assert not label_match(labels, "gone") and not label_match(labels, "app=y")
    api = FakeApi()
    api.create(job("b", app="x"))
    api.create(job("a", app="x"))
    api.create(job("c", app="y"))
    items, rv = api.list("Job", selector="app=x")
    assert [i["metadata"]["name"] for i in items] == ["a", "b"] and rv == str(api._rv)  # name order
    assert [i["metadata"]["name"] for i in api.list("Job", field_selector="metadata.name=c")[0]] == ["c"]
    assert len(api.list("Job", field_selector="metadata.name!=c")[0]) == 2
    with pytest.raises(ForbiddenError):
        api.list("Job", namespace="tool-other")
    assert api.list("Job", trim=lambda o: o["metadata"]["name"])[0] == ["a", "b", "c"]


def test_foreground_deletion_keeps_the_job_until_its_pods_are_gone() -> None:
    api = FakeApi()
    api.create(job("a"))
    api.start("a")
    api.delete("Job", "a", propagation="Foreground")
    dying = api.get("Job", "a")
    assert dying["metadata"]["deletionTimestamp"] and dying["metadata"]["finalizers"] == ["foregroundDeletion"]
    uid = dying["metadata"]["uid"]
    api.delete_collection("Pod", selector=f"batch.kubernetes.io/controller-uid={uid}")
    with pytest.raises(JobNotFoundError):
        api.get("Job", "a")
    api.create(job("b"))
    api.start("b")
    api.delete("Job", "b")  # background: the pods go with it
    assert api.objects("Pod") == []


def test_watch_events_after_the_version_asked_for_with_bookmark_error_and_deleted() -> None:
    api = FakeApi()
    made = api.create(job("a"))
    rv = made["metadata"]["resourceVersion"]
    api.create(job("other"))
    api.then(lambda: api.start("a"), api.bookmark, lambda: api.delete("Job", "a"))
    seen = [(t, o["metadata"].get("resourceVersion")) for t, o in
            api.watch("Job", resource_version=rv, field_selector="metadata.name=a")]
    types = [t for t, _ in seen]
    assert types == ["MODIFIED", "BOOKMARK", "DELETED"]
    assert [int(v) for _, v in seen] == sorted(int(v) for _, v in seen)
    api.create(job("z"))
    api.expire()
    assert [t for t, _ in api.watch("Job", resource_version=rv)][-2:] == ["ADDED", "ERROR"]
    api.compact()
    (t, status), = list(api.watch("Job", resource_version=rv))
    assert t == "ERROR" and status["code"] == 410  # compacted: too old at once


def test_deleted_carries_the_last_state() -> None:
    api = FakeApi()
    rv = api.create(job("a"))["metadata"]["resourceVersion"]
    api.finish("a", 3)
    api.delete("Job", "a")
    events = list(api.watch("Job", resource_version=rv))
    assert [t for t, _ in events] == ["MODIFIED", "MODIFIED", "DELETED"]
    conditions = [c["type"] for c in events[-1][1]["status"]["conditions"]]
    assert conditions == ["FailureTarget", "Failed"]


def test_a_wait_with_nothing_left_to_happen_fails_instead_of_hanging() -> None:
    api = FakeApi()
    rv = api.create(job("a"))["metadata"]["resourceVersion"]
    with pytest.raises(AssertionError, match="nothing is left to happen"):
        for _ in range(100):
            list(api.watch("Job", resource_version=rv))


def test_faults_lost_answers_and_interference() -> None:
    api = FakeApi()
    api.fail("get", JobNotFoundError("x"))
    with pytest.raises(JobNotFoundError):
        api.get("Job", "nothing-there-anyway")
    api.lose_answer("create")
    with pytest.raises(JobExistsError):
        api.create(job("a"))
    assert [o["metadata"]["name"] for o in api.objects("Job")] == ["a"]  # made once, the answer lost
    api.interfere(lambda verb, kind, name: api.patch(kind, name, {"metadata": {"labels": {"by": "other"}}}))
    stale = api.get("Job", "a")
    api.fail("list", ForbiddenError("no"), kind="Pod")
    with pytest.raises(ForbiddenError):
        api.list("Pod")
    with pytest.raises(ConflictError):
        api.replace(stale)  # someone else wrote just before
    assert api.writes()[-2:] == [("replace", "Job", "a"), ("patch", "Job", "a")]


def test_fixtures_and_seeding_keep_what_the_real_cluster_showed() -> None:
    assert "running_oneoff" in fixture_names()
    fx = fixture("running_oneoff")
    api = FakeApi(namespace=fx["job"]["metadata"]["namespace"]).add_fixture("running_oneoff")
    (stored,) = api.objects("Job")
    assert stored["metadata"]["uid"] == fx["job"]["metadata"]["uid"]
    assert stored["metadata"]["resourceVersion"]  # the fixtures are trimmed of it: given one
    later = api.patch("Job", stored["metadata"]["name"], {"metadata": {"labels": {"x": "1"}}})
    assert int(later["metadata"]["resourceVersion"]) > int(stored["metadata"]["resourceVersion"])
    with pytest.raises(FileNotFoundError, match="no fixture"):
        fixture("no-such-state")


def test_golden_refuses_a_missing_file_and_never_writes_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"kit-test-{os.getpid()}.txt"
    monkeypatch.delenv("GRIDSHIM_UPDATE_GOLDEN", raising=False)
    with pytest.raises(pytest.fail.Exception, match="is missing"):
        golden(name, "x\n")
    monkeypatch.setenv("GRIDSHIM_UPDATE_GOLDEN", "1")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="in CI"):
        golden(name, "x\n")
    assert not (GOLDEN / name).exists()
    monkeypatch.delenv("CI")
    try:
        golden(name, "x\n")
        monkeypatch.delenv("GRIDSHIM_UPDATE_GOLDEN")
        golden(name, "x\n")
        with pytest.raises(pytest.fail.Exception, match=r"(?s)differs from its golden file:.*\n-x\n\+y\n"):
            golden(name, "y\n")
    finally:
        (GOLDEN / name).unlink(missing_ok=True)
