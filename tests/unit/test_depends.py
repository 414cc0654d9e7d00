"""depends.py: -hold_jid resolution (§5.1), release arithmetic, the sweep, concurrent releasers (409s) and
the backstop CronJob (docs/arrays-and-holds.md)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from gridshim import depends as D, tasks as T
from gridshim.config import Settings
from gridshim.model import JobKind, JobRequest
from gridshim.render import labels as L
from kit import GridApi


def req(**kw: Any) -> JobRequest:
    base = dict(name="b", kind=JobKind.ONE_OFF, tool="demo", argv=("/bin/true",), mem_bytes=1, once=False,
                stdout="/o", stderr="/e", workdir="/h", home="/h", image="img", job_id=7777777, uid=5000)
    base.update(kw)
    return JobRequest(**base)  # type: ignore[arg-type]


def manifest() -> dict[str, Any]:
    return {"kind": "Job", "metadata": {"labels": {}, "annotations": {}}, "spec": {}}


# -- ranges ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("ids,text", [([1, 2, 3, 4], "1-4:1"), ([9, 10], "9,10"), ([1, 3, 5, 7, 12], "1-7:2,12"),
                                      ([5], "5"), ([], ""), ([3, 4, 5, 6, 7, 8, 9, 10], "3-10:1")])
def test_task_ranges_round_trip(ids: list[int], text: str) -> None:
    assert T.pack(ids) == text
    assert T.id_set(text) == set(ids)


def test_kubernetes_index_lists_parse_as_ranges() -> None:
    assert T.id_set("0-3,7") == {0, 1, 2, 3, 7}
    assert T.id_set("x,1-,2") == {2}


# -- resolution ---------------------------------------------------------------------------------------

def test_ids_names_and_patterns_resolve_to_unfinished_jobs() -> None:
    s = GridApi()
    s.add_job(1111111, "a")
    s.add_job(2222222, "a")
    s.add_job(3333333, "a", finished="Complete")  # finished: never a predecessor
    s.add_job(4444444, "prep_x")
    s.add_job(5555555, "other", deleting=True)  # qdel'ed: counts as finished
    jobs, _ = s.list("Job")
    assert D.resolve(jobs, ["a"]) == {"1111111": "", "2222222": ""}
    assert D.resolve(jobs, ["prep_*"]) == {"4444444": ""}
    assert D.resolve(jobs, ["pr?p_[xy]"]) == {"4444444": ""}
    assert D.resolve(jobs, ["1111111", "3333333", "9999999", "5555555"]) == {"1111111": ""}
    assert D.resolve(jobs, ["nomatch*"]) == {}
    assert D.resolve(jobs, ["A"]) == {}  # case matters


def test_a_task_id_is_refused_as_sge_does() -> None:
    with pytest.raises(D.Rejected) as e:
        D.resolve([], ["12.3"])
    assert str(e.value) == 'Unable to run job: denied: job "12.3" not found\nExiting.'


def test_an_array_predecessor_contributes_its_unfinished_tasks() -> None:
    s = GridApi()
    # tasks 1..10; indexes 0-1 completed, 3 failed, task 9 deleted while pending
    s.add_job(1111111, "arr", tasks=[1, 10, 1], status={"completedIndexes": "0-1", "failedIndexes": "3"},
              annotations={T.A_DELETED_TASKS: "9"})
    s.add_job(2222222, "stepped", tasks=[1, 9, 4])  # tasks 1, 5, 9
    jobs, _ = s.list("Job")
    assert D.resolve(jobs, ["arr", "stepped"]) == {"1111111": "3,5-8:1,10", "2222222": "1-9:4"}


def test_apply_marks_the_job_writes_markers_and_holds(tmp_path: Path) -> None:
    s = GridApi()
    s.add_job(1111111, "a")
    m = D.apply(s, req(home=str(tmp_path), options={"hold_jid": ["a", "nothing*"]}), manifest())
    ann = m["metadata"]["annotations"]
    assert json.loads(ann[D.A_PREDECESSORS]) == {"1111111": ""}
    assert ann[D.A_PREDECESSORS_REQ] == "a,nothing*" and ann[D.A_PREDECESSOR_IDS] == "1111111"
    assert m["metadata"]["labels"][D.WAITING] == "true" and m["spec"]["suspend"] is True
    marker = tmp_path / ".gridshim" / "successors" / "1111111"
    assert marker.read_text() == "7777777\n"
    assert os.stat(marker.parent).st_mode & 0o777 == 0o700


def test_nothing_to_wait_for_leaves_the_job_runnable(tmp_path: Path) -> None:
    s = GridApi()
    m = D.apply(s, req(home=str(tmp_path), options={"hold_jid": ["9999999", "gone"]}), manifest())
    assert "suspend" not in m["spec"] and D.WAITING not in m["metadata"]["labels"]
    assert m["metadata"]["annotations"][D.A_PREDECESSORS_REQ] == "9999999,gone"
    assert not (tmp_path / ".gridshim").exists()


def test_qsub_h_sets_the_user_hold_annotation_without_contacting_anything() -> None:
    m = D.apply(None, req(held=True), manifest())
    assert m["metadata"]["annotations"][D.A_HOLD] == "u" and m["spec"]["suspend"] is True


def test_hold_jid_ad_checks_both_arrays_and_their_range() -> None:
    s = GridApi()
    s.add_job(1111111, "same", tasks=[1, 50, 1])
    s.add_job(2222222, "short", tasks=[1, 40, 1])
    s.add_job(3333333, "plain")
    with pytest.raises(D.Rejected, match='Can only specify "-hold_jid_ad" option with an array job'):
        D.apply(s, req(options={"hold_jid_ad": ["same"]}), manifest())
    with pytest.raises(D.Rejected, match="must have the same range of sub-tasks"):
        D.apply(s, req(options={"hold_jid_ad": ["short"], "tasks": [1, 50, 2]}), manifest())
    with pytest.raises(D.Rejected, match='Can only specify "-hold_jid_ad" option with an array job'):
        D.apply(s, req(options={"hold_jid_ad": ["plain"], "tasks": [1, 50, 2]}), manifest())
    m = D.apply(s, req(home="/nonexistent/x", options={"hold_jid_ad": ["same"], "tasks": [1, 50, 2]}), manifest())
    ann = m["metadata"]["annotations"]
    assert json.loads(ann[D.A_PREDECESSORS]) == {"1111111": "1-50:1"}  # the whole successor waits (design.md)
    assert ann[D.A_PREDECESSORS_AD_REQ] == "same" and D.A_PREDECESSORS_REQ not in ann


# -- release ------------------------------------------------------------------------------------------

def waiting(s: GridApi, job_id: int, preds: dict[str, str], *, held: bool = False) -> None:
    ann = {D.A_PREDECESSORS: json.dumps(preds), D.A_PREDECESSOR_IDS: ",".join(preds)}
    if held:
        ann[D.A_HOLD] = "u"
    s.add_job(job_id, f"w{job_id}", annotations=ann, labels={D.WAITING: "true"}, suspend=True)


def test_release_drops_the_predecessor_and_unsuspends_when_none_is_left() -> None:
    s = GridApi()
    waiting(s, 7000001, {"1111111": "", "2222222": ""})
    assert D.release(s, 1111111) == [7000001]
    j = s.job(7000001)
    assert D.predecessors_of(j) == {"2222222": ""} and j["spec"]["suspend"] is True
    assert D.release(s, 1111111) == []  # a second release changes nothing
    D.release(s, 2222222)
    j = s.job(7000001)
    assert j["spec"]["suspend"] is False and D.WAITING not in j["metadata"]["labels"]
    assert D.A_PREDECESSORS not in j["metadata"]["annotations"]
    assert j["metadata"]["annotations"][D.A_PREDECESSOR_IDS] == "1111111,2222222"  # never shrinks


def test_a_user_held_job_stays_suspended_after_its_release() -> None:
    s = GridApi()
    waiting(s, 7000001, {"1111111": ""}, held=True)
    D.release(s, 1111111)
    j = s.job(7000001)
    assert j["spec"]["suspend"] is True and not D.predecessors_of(j)


def test_array_tasks_are_released_one_by_one() -> None:
    s = GridApi()
    waiting(s, 7000001, {"1111111": "1-4:1"})
    D.release(s, 1111111, [2])
    assert D.predecessors_of(s.job(7000001)) == {"1111111": "1,3,4"}
    D.release(s, 1111111, [1, 3])
    assert D.predecessors_of(s.job(7000001)) == {"1111111": "4"}
    D.release(s, 1111111, [4])
    assert s.job(7000001)["spec"]["suspend"] is False


def test_a_conflicting_writer_makes_release_re_read_and_never_lose_a_removal() -> None:
    s = GridApi()
    waiting(s, 7000001, {"1111111": "", "2222222": ""})

    def other_releaser(verb: str, kind: str, name: str) -> None:
        D.release(s, 2222222)  # lands between our read and our write: our write gets 409

    s.interfere(other_releaser)
    D.release(s, 1111111)
    assert s.conflicts == 1
    j = s.job(7000001)
    assert not D.predecessors_of(j) and j["spec"]["suspend"] is False


def test_concurrent_releasers_in_threads_release_exactly_once_and_at_the_end() -> None:
    s = GridApi()
    preds = {str(1000000 + i): "" for i in range(12)}
    waiting(s, 7000001, preds)
    lock = threading.Lock()
    real_patch = s.patch

    def slow_patch(*a: Any, **kw: Any) -> Any:
        with lock:
            return real_patch(*a, **kw)

    s.patch = slow_patch  # type: ignore[method-assign]
    barrier = threading.Barrier(len(preds))

    def run(jid: str) -> None:
        barrier.wait()
        D.release(s, jid)

    threads = [threading.Thread(target=run, args=(p,)) for p in preds]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    j = s.job(7000001)
    assert not D.predecessors_of(j) and j["spec"]["suspend"] is False


def test_a_job_replaced_under_the_same_name_is_left_alone() -> None:
    s = GridApi()
    waiting(s, 7000001, {"1111111": ""})

    def replace(verb: str, kind: str, name: str) -> None:  # another Job of that name now: new uid and version
        old = s.stored(kind, name)
        s.delete(kind, name)
        s.create({**old, "metadata": {k: v for k, v in old["metadata"].items() if k not in ("uid", "resourceVersion")}})

    s.interfere(replace)
    assert D.release(s, 1111111) == []


# -- sweep and backstop --------------------------------------------------------------------------------

def test_sweep_drops_gone_and_finished_predecessors_and_finished_tasks() -> None:
    s = GridApi()
    s.add_job(1111111, "done", finished="Failed")  # any exit counts
    s.add_job(2222222, "running")
    s.add_job(3333333, "arr", tasks=[1, 4, 1], status={"completedIndexes": "0,1", "failedIndexes": "2"})
    waiting(s, 7000001, {"1111111": "", "9999999": ""})  # finished + gone → released
    waiting(s, 7000002, {"2222222": "", "3333333": "1-4:1"})  # still blocked, tasks shrink to 4
    s.create({"kind": "CronJob", "metadata": {"name": D.BACKSTOP}})
    result = D.sweep(s)
    assert sorted(result.released) == [7000001, 7000002] and not result.backstop_deleted
    assert s.job(7000001)["spec"]["suspend"] is False
    assert D.predecessors_of(s.job(7000002)) == {"2222222": "", "3333333": "4"}
    s.complete(2222222)
    s.complete(3333333)
    result = D.sweep(s)
    assert result.released == [7000002] and result.backstop_deleted
    assert not s.has("CronJob", D.BACKSTOP)


def test_sweep_keeps_a_backstop_that_a_qsub_touched_meanwhile() -> None:
    s = GridApi()
    s.create({"kind": "CronJob", "metadata": {"name": D.BACKSTOP}})
    backstop = D.backstop_manifest(Settings(release_command="/usr/bin/gridshim"), tool="demo", uid=5000, home="/h")
    assert backstop is not None
    real_list = s.list

    def list_then_touch(kind: str, **kw: Any) -> Any:
        out = real_list(kind, **kw)
        if kind == "Job" and "waiting" in (kw.get("selector") or ""):
            D.ensure_backstop(s, backstop)  # a qsub that just created a dependent job
        return out

    s.list = list_then_touch  # type: ignore[method-assign]
    assert D.sweep(s).backstop_deleted is False
    assert s.has("CronJob", D.BACKSTOP)


def test_the_backstop_runs_the_sweep_as_the_tool_and_is_not_a_grid_job() -> None:
    settings = Settings(release_command="/opt/gridshim/bin/gridshim")
    cj = D.backstop_manifest(settings, tool="demo", uid=5000, home="/data/project/demo")
    assert cj is not None and cj["metadata"]["name"] == "gridshim-release"
    assert cj["spec"]["schedule"] == "* * * * *" and cj["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["command"] == ["/opt/gridshim/bin/gridshim", "release", "--sweep"]
    assert {"name": "HOME", "value": "/data/project/demo"} in c["env"]
    assert pod["securityContext"]["runAsUser"] == 5000 and c["securityContext"]["runAsUser"] == 5000
    assert c["securityContext"]["allowPrivilegeEscalation"] is False and pod["securityContext"]["runAsNonRoot"]
    labels = cj["spec"]["jobTemplate"]["metadata"]["labels"]
    assert "app.kubernetes.io/managed-by" not in labels  # qstat and crontab never see it
    assert D.backstop_manifest(Settings(), tool="demo", uid=5000, home="/h") is None


def test_submitted_creates_the_backstop_and_releases_what_ended_before_the_create(tmp_path: Path) -> None:
    s = GridApi()
    s.add_job(1111111, "a")
    m = D.apply(s, req(home=str(tmp_path), options={"hold_jid": ["a"]}), manifest())
    m["metadata"]["labels"].update({"app.kubernetes.io/managed-by": "gridshim", "app.kubernetes.io/created-by": "demo",
                                    "gridshim.io/job-id": "7777777"})
    m["metadata"]["name"] = "b-x"
    created = s.create(m)
    D.note_released(str(tmp_path), 1111111)  # its wrapper ran release before the job existed
    backstop = D.backstop_manifest(Settings(release_command="/g"), tool="demo", uid=5000, home=str(tmp_path))
    assert D.submitted(s, created, backstop=backstop, home=str(tmp_path), sleep=lambda _: None) == []
    assert s.has("CronJob", D.BACKSTOP)
    assert s.job(7777777)["spec"]["suspend"] is False


def test_the_sweep_removes_old_markers_of_jobs_no_longer_live(tmp_path: Path) -> None:
    s = GridApi()
    s.add_job(1111111, "live")
    s.add_job(2222222, "done", finished="Complete")
    D.write_markers(str(tmp_path), 7000001, ["1111111", "2222222", "3333333"])
    D.note_released(str(tmp_path), 2222222)
    old = 1796120000.0
    for p in (tmp_path / ".gridshim").rglob("*"):
        if p.is_file():
            os.utime(p, (old, old))
    D.sweep(s, home=str(tmp_path), now=old + 60)  # young: all kept
    assert len(list((tmp_path / ".gridshim").rglob("*"))) == 6
    D.sweep(s, home=str(tmp_path), now=old + D.MARKER_AGE + 1)
    left = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / ".gridshim").rglob("*") if p.is_file())
    assert left == [".gridshim/successors/1111111"]


def test_the_fake_reads_set_based_selectors() -> None:
    s = GridApi()
    s.add_job(1111111, "a")
    s.add_job(2222222, "b")
    s.add_job(3333333, "c")
    items, _ = s.list("Job", selector="app.kubernetes.io/managed-by=gridshim,gridshim.io/job-id in (1111111,3333333)")
    assert sorted(L.job_id_of(i["metadata"]) for i in items) == [1111111, 3333333]


def test_submitted_waits_for_a_predecessor_whose_pods_ended_and_lists_only_the_predecessors(tmp_path: Path) -> None:
    s = GridApi()
    s.add_job(1111111, "a")
    s.add_job(5555555, "unrelated")
    uid = s.job(1111111)["metadata"]["uid"]
    s.create({"kind": "Pod", "metadata": {"name": "a-pod", "labels": {"batch.kubernetes.io/controller-uid": uid}},
              "status": {"phase": "Succeeded"}})
    m = D.apply(s, req(home=str(tmp_path), options={"hold_jid": ["a"]}), manifest())
    m["metadata"]["labels"].update({"app.kubernetes.io/managed-by": "gridshim", "app.kubernetes.io/created-by": "demo",
                                    "gridshim.io/job-id": "7777777"})
    m["metadata"]["name"] = "b-x"
    created = s.create(m)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 2:
            s.complete(1111111)  # the Job controller marks it Complete a second later

    s.calls.clear()
    assert D.submitted(s, created, backstop=None, home=str(tmp_path), sleep=sleep) == []
    assert slept == [D.SETTLE_WAIT] * 2 and s.job(7777777)["spec"]["suspend"] is False
    job_lists = [c.params["selector"] or "" for c in s.calls if (c.verb, c.kind) == ("list", "Job")]
    assert job_lists and all("job-id in (1111111)" in sel for sel in job_lists)
