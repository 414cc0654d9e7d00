"""Issue 15 part 2 on the real sandbox: qstat's task rows of an array job, qdel of running and pending
tasks with the grid's messages, and hqw for a held job, through the installed commands.

The array Jobs are written here in the shape of docs/arrays-and-holds.md (Indexed, completions,
parallelism, the array label, options "tasks"), from jsub's own --dry-run manifest, so these tests do
not depend on `qsub -t`.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
import yaml

from conftest import Tool

HEADER = "job-ID  prior   name       user         state submit/start at     queue                          slots ja-task-ID "


def create_array(tool: Tool, job_id: int, *, name: str, tasks: tuple[int, int, int], parallelism: int,
                 suspend: bool = False, hold: str = "") -> dict[str, Any]:
    from gridshim.cluster import KubeCluster
    from gridshim.render import labels as L

    proc = tool.run("jsub", "--dry-run", "-N", name, "/bin/sleep", "600")
    assert proc.returncode == 0, proc.stderr
    m = yaml.safe_load(proc.stdout)
    first, last, step = tasks
    meta, spec = m["metadata"], m["spec"]
    meta["annotations"].pop(L.A_TOKEN, None)
    options = json.loads(meta["annotations"][L.A_OPTIONS])
    options["tasks"] = [first, last, step]
    meta["annotations"][L.A_OPTIONS] = json.dumps(options)
    if hold:
        meta["annotations"]["gridshim.io/hold"] = hold
    for labels in (meta["labels"], spec["template"]["metadata"]["labels"]):
        labels[L.JOB_ID] = str(job_id)
        labels["gridshim.io/array"] = "true"
    spec.pop("backoffLimit", None)
    spec.update({"completionMode": "Indexed", "completions": (last - first) // step + 1,
                 "parallelism": parallelism, "backoffLimitPerIndex": 0, "podReplacementPolicy": "Failed",
                 "suspend": suspend})
    cluster = KubeCluster.from_kubeconfig(tool.sandbox.admin_kubeconfig)
    cluster.namespace = tool.namespace
    return cluster.create(copy.deepcopy(m))


def rows(tool: Tool, job_id: int) -> list[tuple[str, str]]:
    """(state, ja-task-ID) of the job's rows in plain qstat."""
    proc = tool.run("qstat")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    if lines:
        assert lines[0] == HEADER
    return [(line.split()[4], line[103:].strip()) for line in lines[2:] if line.startswith(str(job_id))]


def running_pods(tool: Tool, uid: str) -> dict[int, str]:
    pods = tool.kubectl_json("get", "pods", "-l", f"batch.kubernetes.io/controller-uid={uid}")["items"]
    return {int(p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"]): p["metadata"]["name"]
            for p in pods if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")}


@pytest.mark.needs_shared_home("the job's wrapper reads the deleted-tasks list qdel writes in the tool's home")
def test_array_rows_and_qdel_of_running_and_pending_tasks(tool: Tool) -> None:
    job_id = 4_242_001
    job = create_array(tool, job_id, name="arr", tasks=(1, 6, 1), parallelism=2)
    uid = job["metadata"]["uid"]
    tool.wait_for(lambda: len(running_pods(tool, uid)) == 2, timeout=90, what="two tasks running")
    got = tool.wait_for(lambda: (r := rows(tool, job_id)) == [("r", "1"), ("r", "2"), ("qw", "3-6:1")] and r,
                        timeout=30, what="qstat's task rows")
    assert got

    proc = tool.run("qstat", "-xml")
    assert proc.returncode == 0 and "<tasks>1</tasks>" in proc.stdout and "<tasks>3-6:1</tasks>" in proc.stdout

    proc = tool.run("qstat", "-j", str(job_id))
    assert proc.returncode == 0 and "job-array tasks:            1-6:1\n" in proc.stdout

    proc = tool.run("qdel", f"{job_id}.1")
    assert (proc.returncode, proc.stdout) == (
        0, f"tools.{tool.name} has registered the job-array task {job_id}.1 for deletion\n"), proc.stderr
    tool.wait_for(lambda: 0 not in running_pods(tool, uid), timeout=60, what="task 1's pod to go")

    proc = tool.run("qdel", str(job_id), "-t", "5-6")
    assert (proc.returncode, proc.stdout) == (
        0, f"tools.{tool.name} has deleted job-array tasks 5,6 of job {job_id}\n"), proc.stderr
    ann = tool.kubectl_json("get", "job", job["metadata"]["name"])["metadata"]["annotations"]
    assert ann["gridshim.io/deleted-tasks"] == "5,6"
    assert (tool.home / ".gridshim" / "deleted" / str(job_id)).read_text() == "5\n6\n"
    # task 1 failed (killed), 3 took its place: 2 and 3 run, 4 waits; 5 and 6 are never shown again
    tool.wait_for(lambda: rows(tool, job_id) == [("r", "2"), ("r", "3"), ("qw", "4")], timeout=60,
                  what="rows after the deletions")

    proc = tool.run("qdel", f"{job_id}.4")
    assert proc.stdout == f"tools.{tool.name} has deleted job-array task {job_id}.4\n"
    proc = tool.run("qdel", f"{job_id}.2-3")
    assert proc.stdout == (f"tools.{tool.name} has registered the job-array task {job_id}.2 for deletion\n"
                           f"tools.{tool.name} has registered the job-array task {job_id}.3 for deletion\n")
    proc = tool.run("qdel", "-t", "2")
    assert (proc.returncode, proc.stdout) == (1, "found lonely '-t 2' option (The -t option needs a leading "
                                                 "job name).\n")
    proc = tool.run("qdel", f"{job_id}.x")
    assert (proc.returncode, proc.stdout) == (1, f'ERROR! "{job_id}.x" is an invalid job-task identifier\n')
    tool.wait_for(lambda: rows(tool, job_id) == [], timeout=90, what="the array to be over")


def test_held_job_is_hqw_and_its_pending_tasks_can_go(tool: Tool) -> None:
    job_id = 4_242_002
    create_array(tool, job_id, name="heldarr", tasks=(1, 10, 4), parallelism=3, suspend=True, hold="u")
    assert rows(tool, job_id) == [("hqw", "1-9:4")]
    proc = tool.run("qstat", "-s", "hu")
    assert re.search(rf"^{job_id} .* hqw ", proc.stdout, re.M)
    assert tool.run("qstat", "-s", "hj").stdout == ""
    proc = tool.run("job", "-v", "heldarr")
    assert (proc.returncode, proc.stdout) == (2, f"Job 'heldarr' is pending as id {job_id}\n")
    proc = tool.run("qdel", f"{job_id}.1-9:4")
    assert proc.stdout == (f"tools.{tool.name} has deleted job-array tasks 1-9:4 of job {job_id}\n"
                           f"tools.{tool.name} has deleted job {job_id}\n")
    assert rows(tool, job_id) == []


def test_qsub_t_array_in_qstat_and_qdel(tool: Tool) -> None:
    """The same views for an array submitted with `qsub -t` (the submission side of issue 15)."""
    proc = tool.run("qsub", "-t", "1-10:4", "-tc", "1", "-N", "qarr", "-b", "y", "/bin/sleep", "600")
    assert proc.returncode == 0, proc.stderr
    m = re.fullmatch(r'Your job-array (\d{7})\.1-10:4 \("qarr"\) has been submitted\n', proc.stdout)
    assert m, proc.stdout
    job_id = int(m.group(1))
    tool.wait_for(lambda: rows(tool, job_id) == [("r", "1"), ("qw", "5,9")], timeout=90, what="qsub -t rows")
    proc = tool.run("qstat", "-j", str(job_id))
    assert "job-array tasks:            1-10:4\n" in proc.stdout and "maximum concurrency:        1\n" in proc.stdout
    proc = tool.run("qdel", f"{job_id}.9")
    assert proc.stdout == f"tools.{tool.name} has deleted job-array task {job_id}.9\n"
    assert rows(tool, job_id) == [("r", "1"), ("qw", "5")]
    proc = tool.run("qdel", str(job_id))
    assert proc.stdout == f"tools.{tool.name} has registered the job {job_id} for deletion\n"
