"""Array tasks in qstat and qdel, and the hold letters (qsub-behaviour §4.2, §4.3, §5.3; the encoding of
docs/arrays-and-holds.md), from hand-written Job and Pod objects of the array shape, over a fake cluster.
"""

from __future__ import annotations

import copy
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gridshim.cli._common import Env, run
from gridshim.cli.job import job_main
from gridshim.cli.jstop import jstop_main
from gridshim.cli.qdel import qdel_main
from gridshim.cli.qstat import qstat_main
from gridshim.errors import ConflictError
from gridshim.output.plain import format_details, format_plain
from gridshim.output.xml import format_xml
from gridshim.status import rows_from_objects, task_views
from gridshim.tasks import parse_ranges, range_to_dstring
from kit import FakeApi, golden as assert_golden
from kit.golden import local_time  # noqa: F401  (an autouse fixture: the layouts in local time)
from test_output import NOW, load

TOOL = "qsfix"
NS = f"tool-{TOOL}"
SUBMITTED = "2026-11-22T19:20:00Z"
STARTED = "2026-11-22T19:30:00Z"


def array_job(job_id: int = 4242001, *, name: str = "arr", tasks: tuple[int, int, int] = (1, 10, 1),
              tc: int | None = None, completed: str = "", failed: str = "", deleted: str = "",
              suspend: bool = False, hold: str = "", old_hold: bool = False,
              predecessors: dict[str, str] | None = None, req: str = "", ids: str = "") -> dict[str, Any]:
    first, last, step = tasks
    count = (last - first) // step + 1
    options: dict[str, Any] = {"dialect": "qsub", "queue": "task", "tasks": list(tasks)}
    if tc is not None:
        options["tc"] = tc
    if old_hold:
        options["hold"] = True
    ann = {"gridshim.io/name": name, "gridshim.io/command": f"qsub -t {first}-{last}:{step} job.sh",
           "gridshim.io/options": json.dumps(options)}
    labels = {"app.kubernetes.io/managed-by": "gridshim", "app.kubernetes.io/created-by": TOOL,
              "app.kubernetes.io/component": "jobs", "gridshim.io/job-id": str(job_id), "gridshim.io/name": name,
              "gridshim.io/array": "true"}
    if hold:
        ann["gridshim.io/hold"] = hold
    if predecessors:
        ann["gridshim.io/predecessors"] = json.dumps(predecessors)
        labels["gridshim.io/waiting"] = "true"
    if req:
        ann["gridshim.io/predecessors-req"] = req
    if ids:
        ann["gridshim.io/predecessor-ids"] = ids
    if deleted:
        ann["gridshim.io/deleted-tasks"] = deleted
    status: dict[str, Any] = {}
    if completed:
        status["completedIndexes"] = completed
    if failed:
        status["failedIndexes"] = failed
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": f"{name}-{job_id}", "namespace": NS, "uid": f"uid-{job_id}", "labels": labels,
                         "annotations": ann, "creationTimestamp": SUBMITTED, "resourceVersion": "1"},
            "spec": {"completionMode": "Indexed", "completions": count, "parallelism": tc or min(count, 2000),
                     "backoffLimitPerIndex": 0, "suspend": suspend},
            "status": status}


def task_pod(job: dict[str, Any], index: int, *, running: bool = True, started: str = STARTED,
             deleting: bool = False) -> dict[str, Any]:
    meta = job["metadata"]
    labels = {**meta["labels"], "batch.kubernetes.io/controller-uid": meta["uid"],
              "batch.kubernetes.io/job-completion-index": str(index)}
    pod_meta: dict[str, Any] = {"name": f"{meta['name']}-{index}-x", "namespace": NS, "labels": labels,
                                "annotations": {"batch.kubernetes.io/job-completion-index": str(index)},
                                "creationTimestamp": started, "uid": f"pod-{meta['uid']}-{index}"}
    if deleting:
        pod_meta["deletionTimestamp"] = "2026-11-22T19:39:00Z"
    status: dict[str, Any] = {"phase": "Running" if running else "Pending", "startTime": started}
    if running:
        status["containerStatuses"] = [{"name": "job", "restartCount": 0,
                                        "state": {"running": {"startedAt": started}}}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": {"nodeName": "sandbox-node"},
            "status": status}


def views(jobs: list[dict[str, Any]], pods: list[dict[str, Any]]) -> list[Any]:
    return task_views(rows_from_objects(jobs, pods, now=NOW))


def column(text: str) -> list[tuple[str, str, str]]:
    """(job id, state, ja-task-ID) of each row of a plain listing."""
    out = []
    for line in text.splitlines()[2:]:
        parts = line.split()
        out.append((parts[0], parts[4], line[103:].strip()))
    return out


# -- range_to_dstring and task ranges ------------------------------------------------------------------

class TestRanges:
    @pytest.mark.parametrize("ids,step,want", [
        ([7], 1, "7"),
        ([9, 10], 1, "9,10"),  # two ids: not 9-10:1
        (list(range(1, 11)), 1, "1-10:1"),
        ([2, 4, 6, 8, 10], 2, "2-10:2"),
        ([1, 2, 3, 7, 8, 9, 10], 1, "1-3:1,7-10:1"),
        ([1, 2, 5], 1, "1,2,5"),
        ([1, 5, 9], 4, "1-9:4"),
        ([], 1, ""),
    ])
    def test_range_to_dstring(self, ids: list[int], step: int, want: str) -> None:
        assert range_to_dstring(ids, step) == want

    def test_parse_ranges(self) -> None:
        assert parse_ranges("7") == [(7, 7, 1)]
        assert parse_ranges("2-5") == [(2, 5, 1)]
        assert parse_ranges("1-9:2") == [(1, 9, 2)]
        assert parse_ranges("5-2") == [(2, 5, 1)]  # swapped, as SGE does
        assert parse_ranges("0-2,5") == [(0, 2, 1), (5, 5, 1)]  # Kubernetes' completedIndexes
        assert parse_ranges("9,10") == [(9, 9, 1), (10, 10, 1)]
        for bad in ("x", "1-", "1-5:0", "", "1.5"):
            assert parse_ranges(bad) is None, bad


# -- qstat's rows ----------------------------------------------------------------------------------------

class TestTaskRows:
    def test_pending_range_is_end_corrected(self) -> None:
        rows = views([array_job(tasks=(1, 10, 4))], [])
        assert [(r.state_text, r.tasks) for r in rows] == [("qw", "1-9:4")]

    def test_running_tasks_one_row_each_before_the_pending_range(self) -> None:
        job = array_job()
        rows = views([job], [task_pod(job, 0), task_pod(job, 1)])
        assert [(r.state_text, r.tasks) for r in rows] == [("r", "1"), ("r", "2"), ("qw", "3-10:1")]
        out = format_plain(rows)
        assert column(out) == [("4242001", "r", "1"), ("4242001", "r", "2"), ("4242001", "qw", "3-10:1")]
        assert out.splitlines()[2].endswith("task@sandbox-node                  1 1")

    def test_two_pending_ids(self) -> None:
        job = array_job(completed="0-7")
        assert [r.tasks for r in views([job], [])] == ["9,10"]

    def test_finished_and_deleted_tasks_are_not_shown(self) -> None:
        job = array_job(completed="0-2", failed="4", deleted="7-8:1")
        rows = views([job], [task_pod(job, 3)])
        assert [(r.state_text, r.tasks) for r in rows] == [("r", "4"), ("qw", "6,9,10")]

    def test_a_pod_that_has_not_started_is_still_pending(self) -> None:
        job = array_job(tasks=(1, 3, 1))
        rows = views([job], [task_pod(job, 0, running=False)])
        assert [(r.state_text, r.tasks) for r in rows] == [("qw", "1-3:1")]

    def test_all_tasks_over_shows_nothing(self) -> None:
        assert views([array_job(tasks=(1, 3, 1), completed="0-2")], []) == []

    def test_task_being_deleted_is_dr(self) -> None:
        job = array_job(tasks=(1, 2, 1))
        rows = views([job], [task_pod(job, 0, deleting=True), task_pod(job, 1)])
        assert [(r.state_text, r.tasks) for r in rows] == [("dr", "1"), ("r", "2")]

    def test_non_array_jobs_unchanged(self) -> None:
        fx = load("running_oneoff")
        rows = views([fx["job"]], fx["pods"])
        assert format_plain(rows).splitlines()[2].endswith(" 1        ")

    def test_one_job_row_per_array_for_job_and_qdel(self) -> None:
        job = array_job()
        (row,) = rows_from_objects([job], [task_pod(job, 0)], now=NOW)
        assert row.is_running and row.running_tasks == (1,) and row.pending_tasks == tuple(range(2, 11))

    def test_golden(self) -> None:
        a = array_job(4242001, name="arr", tc=2)
        b = array_job(4242002, name="held", tasks=(1, 10, 4), suspend=True, hold="u")
        c = array_job(4242003, name="dep", tasks=(5, 6, 1), suspend=True, predecessors={"4242001": "3-10:1"})
        fx = load("running_oneoff")
        rows = views([a, b, c, fx["job"]], [task_pod(a, 0), task_pod(a, 1, started="2026-11-22T19:31:00Z")]
                     + fx["pods"])
        assert_golden("qstat_tasks.txt", format_plain(rows))
        assert_golden("qstat_xml_tasks.xml", format_xml(rows))


class TestHolds:
    def test_hqw_for_a_suspended_job_held_by_annotation(self) -> None:
        assert [r.state_text for r in views([array_job(suspend=True, hold="u")], [])] == ["hqw"]

    def test_hqw_for_the_older_options_hold(self) -> None:
        assert [r.state_text for r in views([array_job(suspend=True, old_hold=True)], [])] == ["hqw"]

    def test_hqw_for_a_dependency(self) -> None:
        rows = views([array_job(suspend=True, predecessors={"1234567": ""})], [])
        assert [(r.state_text, r.holds) for r in rows] == [("hqw", frozenset("j"))]

    def test_suspended_without_hold_stays_qw(self) -> None:
        assert [r.state_text for r in views([array_job(suspend=True)], [])] == ["qw"]

    def test_hr_for_a_running_job_with_the_hold(self) -> None:
        job = array_job(tasks=(1, 2, 1), hold="u")
        rows = views([job], [task_pod(job, 0)])
        assert [(r.state_text, r.tasks) for r in rows] == [("hr", "1"), ("hqw", "2")]

    def test_hr_non_array(self) -> None:
        fx = copy.deepcopy(load("running_oneoff"))
        fx["job"]["metadata"]["annotations"]["gridshim.io/hold"] = "u"
        (row,) = views([fx["job"]], fx["pods"])
        assert row.state_text == "hr" and row.is_running
        assert " hr    " in format_plain([row])


# -- commands ----------------------------------------------------------------------------------------------

def with_objects(jobs: list[dict[str, Any]], pods: list[dict[str, Any]] = ()) -> FakeApi:
    """The kit's fake API server holding JOBS and PODS as a real cluster showed them."""
    return FakeApi(NS).seed(*jobs, *pods)


def annotation(api: FakeApi, key: str) -> str:
    return api.objects("Job")[0]["metadata"]["annotations"].get(key, "")


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    (tmp_path / "gridshim.yaml").write_text("grace_seconds: 20\nuser_prefix: tools.\n")
    return tmp_path


@pytest.fixture()
def released(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, Any]]:
    calls: list[tuple[int, Any]] = []
    from gridshim import depends

    monkeypatch.setattr(depends, "release", lambda cluster, job_id, tasks=None: calls.append(
        (job_id, None if tasks is None else list(tasks))) or [])
    return calls


def call(main: Any, prog: str, cluster: Any, home: Path, *argv: str) -> Result:
    env = Env(stdout=io.StringIO(), stderr=io.StringIO(), stdin=io.StringIO(), clock=lambda: NOW,
              environ={"GRIDSHIM_CONFIG": str(home / "gridshim.yaml"), "HOME": str(home)}, cwd="/")
    code = run(prog, lambda e: main(e, list(argv), cluster=cluster), env)
    return Result(code, env.stdout.getvalue(), env.stderr.getvalue())  # type: ignore[attr-defined]


class TestQstatCommand:
    def test_same_round_trips_with_arrays(self, home: Path) -> None:
        job = array_job()
        cluster = with_objects([job], [task_pod(job, 0)])
        r = call(qstat_main, "qstat", cluster, home)
        assert column(r.out) == [("4242001", "r", "1"), ("4242001", "qw", "2-10:1")]
        assert cluster.lists() == ["Job", "Pod"]

    @pytest.mark.parametrize("states,want", [
        ("h", {"4242002", "4242003"}), ("hu", {"4242002"}), ("hj", {"4242003"}), ("hd", set()),
        ("r", {"4242001"}), ("p", {"4242001", "4242002", "4242003"}),
    ])
    def test_s_by_hold_kind(self, home: Path, states: str, want: set[str]) -> None:
        a = array_job(4242001)
        cluster = with_objects(
            [a, array_job(4242002, suspend=True, hold="u"),
             array_job(4242003, suspend=True, predecessors={"4242001": ""})], [task_pod(a, 0)])
        r = call(qstat_main, "qstat", cluster, home, "-s", states)
        assert {row[0] for row in column(r.out)} == want

    def test_j_array_and_dependency_lines(self, home: Path) -> None:
        a = array_job(4242001, tc=3)
        b = array_job(4242002, tasks=(1, 10, 4), suspend=True, predecessors={"4242001": "2-10:1"},
                      req="arr,4242009", ids="4242001")
        (home / ".gridshim" / "successors").mkdir(parents=True)
        (home / ".gridshim" / "successors" / "4242001").write_text("4242002\n")
        cluster = with_objects([a, b], [task_pod(a, 0)])
        r = call(qstat_main, "qstat", cluster, home, "-j", "4242001,4242002")
        assert r.code == 0
        assert_golden("qstat_j_tasks.txt", r.out)
        assert "jid_successor_list:         4242002\n" in r.out
        assert "job-array tasks:            1-10:4\n" in r.out  # as submitted, not end-corrected
        assert "maximum concurrency:        3\n" in r.out

    def test_j_successors_only_with_the_marker(self, home: Path) -> None:
        a = array_job(4242001)
        cluster = with_objects([a, array_job(4242002, suspend=True, predecessors={"4242001": ""},
                                                            ids="4242001")])
        r = call(qstat_main, "qstat", cluster, home, "-j", "4242001")
        assert "jid_successor_list" not in r.out
        assert not [c for c in cluster.calls if "gridshim.io/waiting=true" in str(c.params.get("selector"))]


class TestQdelTasks:
    def running(self, *indexes: int, **kw: Any) -> FakeApi:
        job = array_job(**kw)
        return with_objects([job], [task_pod(job, i) for i in indexes])

    def test_running_task_deletes_its_pod(self, home: Path, released: list[Any]) -> None:
        cluster = self.running(0, 1)
        r = call(qdel_main, "qdel", cluster, home, "4242001.2")
        assert (r.code, r.out) == (0, "tools.qsfix has registered the job-array task 4242001.2 for deletion\n")
        assert [(c.kind, c.params["selector"], c.params["grace"]) for c in cluster.calls
                if c.verb == "delete_collection"] == [("Pod", "batch.kubernetes.io/controller-uid=uid-4242001,"
                                                       "batch.kubernetes.io/job-completion-index=1", 20)]
        assert not [c for c in cluster.calls if c.verb in ("delete", "replace")] and released == []

    def test_pending_tasks_with_t(self, home: Path, released: list[Any]) -> None:
        cluster = self.running(0)
        r = call(qdel_main, "qdel", cluster, home, "4242001", "-t", "2-5")
        assert (r.code, r.out) == (0, "tools.qsfix has deleted job-array tasks 2-5:1 of job 4242001\n")
        assert annotation(cluster, "gridshim.io/deleted-tasks") == "2-5:1"
        marker = home / ".gridshim" / "deleted" / "4242001"
        assert marker.read_text() == "2\n3\n4\n5\n"
        assert (marker.parent.stat().st_mode & 0o777) == 0o700
        assert released == [(4242001, [2, 3, 4, 5])]
        r = call(qstat_main, "qstat", cluster, home)
        assert column(r.out) == [("4242001", "r", "1"), ("4242001", "qw", "6-10:1")]

    def test_two_and_one(self, home: Path, released: list[Any]) -> None:
        cluster = self.running(0)
        assert call(qdel_main, "qdel", cluster, home, "4242001.2-3").out == \
            "tools.qsfix has deleted job-array tasks 2,3 of job 4242001\n"
        assert call(qdel_main, "qdel", cluster, home, "4242001.5").out == \
            "tools.qsfix has deleted job-array task 4242001.5\n"
        assert annotation(cluster, "gridshim.io/deleted-tasks") == "2,3,5"

    def test_step_range_and_ids_outside_ignored(self, home: Path, released: list[Any]) -> None:
        cluster = self.running(0)
        r = call(qdel_main, "qdel", cluster, home, "4242001.1-99:2")
        assert r.out == ("tools.qsfix has registered the job-array task 4242001.1 for deletion\n"
                         "tools.qsfix has deleted job-array tasks 3,5,7,9 of job 4242001\n")
        r = call(qdel_main, "qdel", cluster, home, "4242001.50-60")
        assert (r.code, r.out) == (0, "")

    def test_last_pending_tasks_delete_the_job(self, home: Path, released: list[Any]) -> None:
        cluster = with_objects([array_job(tasks=(1, 3, 1), completed="0")])
        r = call(qdel_main, "qdel", cluster, home, "4242001", "-t", "1-3")
        assert r.out == ("tools.qsfix has deleted job-array tasks 2,3 of job 4242001\n"
                         "tools.qsfix has deleted job 4242001\n")
        assert cluster.objects("Job") == [] and released == [(4242001, None)]

    def test_update_retries_on_conflict(self, home: Path, released: list[Any]) -> None:
        cluster = self.running(0)
        cluster.fail("replace", ConflictError("the object has been modified"), times=2)  # another writer, twice
        r = call(qdel_main, "qdel", cluster, home, "4242001.7")
        assert r.out == "tools.qsfix has deleted job-array task 4242001.7\n"
        assert [c.verb for c in cluster.calls].count("replace") == 3
        assert annotation(cluster, "gridshim.io/deleted-tasks") == "7"

    def test_whole_array_job(self, home: Path, released: list[Any]) -> None:
        cluster = self.running(0)
        r = call(qdel_main, "qdel", cluster, home, "4242001")
        assert r.out == "tools.qsfix has registered the job 4242001 for deletion\n"
        assert released == [(4242001, None)]

    def test_already_in_deletion(self, home: Path, released: list[Any]) -> None:
        job = array_job()
        cluster = with_objects([job], [task_pod(job, 0, deleting=True)])
        assert call(qdel_main, "qdel", cluster, home, "4242001.1").out == "job 4242001 is already in deletion\n"

    def test_non_array_job_has_task_1(self, home: Path, released: list[Any]) -> None:
        cluster = FakeApi(NS).add_fixture("running_oneoff")
        assert call(qdel_main, "qdel", cluster, home, "8981583.2").out == ""
        assert call(qdel_main, "qdel", cluster, home, "8981583.1").out == \
            "tools.qsfix has registered the job 8981583 for deletion\n"

    @pytest.mark.parametrize("argv,out", [
        (["-t", "2-5"], "found lonely '-t 2-5' option (The -t option needs a leading job name).\n"),
        (["4242001.x"], 'ERROR! "4242001.x" is an invalid job-task identifier\n'),
        (["4242001.0"], 'ERROR! "4242001.0" is an invalid job-task identifier\n'),
        (["4242001", "-t", "a-b"], 'ERROR! "a-b" is an invalid job-task identifier\n'),
    ])
    def test_argument_errors(self, home: Path, argv: list[str], out: str) -> None:
        cluster = self.running(0)
        r = call(qdel_main, "qdel", cluster, home, *argv)
        assert (r.code, r.out) == (1, out) and cluster.calls == []

    def test_t_applies_to_the_job_just_before_it(self, home: Path, released: list[Any]) -> None:
        a, b = array_job(4242001), array_job(4242002)
        cluster = with_objects([a, b])
        r = call(qdel_main, "qdel", cluster, home, "4242001", "4242002", "-t", "3")
        assert r.out == ("tools.qsfix has deleted job 4242001\n"
                         "tools.qsfix has deleted job-array task 4242002.3\n")


class TestJobAndJstop:
    def test_an_array_job_counts_as_one_job(self, home: Path) -> None:
        job = array_job(name="arr")
        cluster = with_objects([job], [task_pod(job, 0), task_pod(job, 1)])
        r = call(job_main, "job", cluster, home, "arr")
        assert (r.code, r.out) == (1, "4242001\n")
        r = call(job_main, "job", with_objects([array_job(name="arr", suspend=True, hold="u")]),
                 home, "-v", "arr")
        assert (r.code, r.out) == (2, "Job 'arr' is pending as id 4242001\n")
        r = call(jstop_main, "jstop", cluster, home, "arr")
        assert (r.code, r.out) == (0, "tools.qsfix has registered the job 4242001 for deletion\n")


def test_format_details_of_a_plain_array() -> None:
    (row,) = rows_from_objects([array_job(tasks=(2, 11, 3))], [], now=NOW)
    text = format_details([row])
    assert "job-array tasks:            2-11:3\n" in text and "maximum concurrency" not in text
