"""Issue 7: races on the real API server — parallel -once submissions and jstop against a finishing job.

The crontab race (20 parallel installs, one wins whole) is tests/e2e/test_crontab_e2e.py
`test_twenty_concurrent_installs_end_in_exactly_one`, written with the crontab feature; it is not repeated here.
"""

from __future__ import annotations

import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from conftest import Tool

CLEAN = re.compile(r"Traceback|internal error")


def gridshim_jobs(tool: Tool, name: str) -> list[dict[str, Any]]:
    items = tool.kubectl_json("get", "jobs")["items"]
    return [j for j in items if (j["metadata"].get("annotations") or {}).get("gridshim.io/name") == name]


def pods_of(tool: Tool, job: dict[str, Any]) -> list[dict[str, Any]]:
    selector = f"batch.kubernetes.io/controller-uid={job['metadata']['uid']}"
    return tool.kubectl_json("get", "pods", "-l", selector)["items"]


def in_parallel(n: int, fn: Any) -> list[subprocess.CompletedProcess[str]]:
    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(fn, range(n)))


def test_fifty_parallel_once_submissions_make_exactly_one_job(tool: Tool) -> None:
    results = in_parallel(50, lambda _i: tool.run("jsub", "-once", "-N", "same", "/bin/sleep", "300", timeout=300))
    for r in results:
        assert not CLEAN.search(r.stderr + r.stdout), r.stderr
    winners = [r for r in results if r.returncode == 0]
    losers = [r for r in results if r.returncode != 0]
    assert len(winners) == 1, [(r.returncode, r.stdout, r.stderr) for r in results if r.returncode != 1]
    assert {r.returncode for r in losers} == {1} and len(losers) == 49
    m = re.fullmatch(r'Your job (\d{7}) \("same"\) has been submitted\n', winners[0].stdout)
    assert m, winners[0].stdout
    assert all(r.stdout == "" and r.stderr == "" for r in losers)  # jsub's refusal goes to ~/same.err
    refusals = (tool.home / "same.err").read_text().splitlines()
    assert len(refusals) == 49
    assert all(re.fullmatch(r"\[\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\] there is a job named 'same' already active",
                            line) for line in refusals), refusals
    jobs = gridshim_jobs(tool, "same")
    assert len(jobs) == 1
    assert jobs[0]["metadata"]["labels"]["gridshim.io/job-id"] == m.group(1)


def test_parallel_once_submissions_after_the_old_run_finished(tool: Tool) -> None:
    """A finished job of the name is in the way (kept until its TTL): 20 racers remove it with a uid
    precondition and race to create; still exactly one new job."""
    first = tool.run("jsub", "-once", "-sync", "y", "-N", "again", "/bin/true")
    assert first.returncode == 0, first.stderr
    old = gridshim_jobs(tool, "again")
    assert len(old) == 1
    results = in_parallel(20, lambda _i: tool.run("jsub", "-once", "-N", "again", "/bin/sleep", "300", timeout=300))
    assert all(not CLEAN.search(r.stderr + r.stdout) for r in results)
    assert sorted(r.returncode for r in results) == [0] + [1] * 19, [(r.returncode, r.stderr) for r in results]
    jobs = gridshim_jobs(tool, "again")
    assert len(jobs) == 1 and jobs[0]["metadata"]["uid"] != old[0]["metadata"]["uid"]


JSTOP_OK = re.compile(r"tools\.\S+ has (registered the job \d{7} for deletion|deleted job \d{7})\n")
JSTOP_GONE = "No job 'racer' is currently queued or running\n"


def test_jstop_racing_job_completion_is_clean(tool: Tool) -> None:
    """jstop calls spread across the moment the job exits by itself: whichever way each one lands
    (before the exit, during it, after it), it answers with the grid's words and exit code."""
    outcomes: list[tuple[int, str, str]] = []
    for _round in range(3):
        proc = tool.run("jsub", "-N", "racer", "/bin/sh", "-c", "sleep 1")
        assert proc.returncode == 0, proc.stderr
        tool.wait_for(lambda: any(p["status"].get("phase") == "Running"
                                  for j in gridshim_jobs(tool, "racer") for p in pods_of(tool, j)),
                      timeout=60, what="racer running")

        def stop(i: int) -> subprocess.CompletedProcess[str]:
            time.sleep(0.2 * i)  # 0 to 3 s: the job exits about 1 s in
            return tool.run("jstop", "racer")

        outcomes += [(r.returncode, r.stdout, r.stderr) for r in in_parallel(16, stop)]
        # this round's job must be out of `job`'s view before the next one starts
        tool.wait_for(lambda: tool.run("job", "racer").returncode == 0, timeout=90, what="racer gone")
    for code, out, err in outcomes:
        assert not CLEAN.search(out + err), err
        if code == 0:
            assert JSTOP_OK.fullmatch(out) and err == "", (out, err)
        else:
            assert code == 1 and out == "" and err == JSTOP_GONE, (code, out, err)
    # and the end of the race, deterministically: a job that has finished is not stopped
    proc = tool.run("jsub", "-sync", "y", "-N", "racer", "/bin/true")
    assert proc.returncode == 0, proc.stderr
    late = tool.run("jstop", "racer")
    assert (late.returncode, late.stdout, late.stderr) == (1, "", JSTOP_GONE)
    done = [j for j in gridshim_jobs(tool, "racer") if not j["metadata"].get("deletionTimestamp")]
    assert any(c.get("type") == "Complete" for j in done for c in j["status"].get("conditions") or [])


def test_parallel_jstop_and_qdel_on_one_job(tool: Tool) -> None:
    """Ten deleters at once: all see the job, one removes it, the others meet 404/409 mid-way; every
    answer is a grid sentence and the job ends up gone."""
    proc = tool.run("jsub", "-N", "target", "/bin/sleep", "300")
    assert proc.returncode == 0, proc.stderr
    job_id = re.search(r"\d{7}", proc.stdout).group(0)  # type: ignore[union-attr]
    results = in_parallel(10, lambda i: tool.run(*(["jstop", "target"] if i % 2 else ["qdel", job_id])))
    for r in results:
        assert not CLEAN.search(r.stdout + r.stderr), r.stderr
        assert r.returncode in (0, 1)
        if r.returncode == 0:
            assert re.fullmatch(r"tools\.\S+ has (registered the job|deleted job) \d{7}( for deletion)?\n", r.stdout)
        else:
            assert (r.stderr == "No job 'target' is currently queued or running\n"
                    or r.stdout == f'denied: job "{job_id}" does not exist\n'), (r.stdout, r.stderr)
    assert any(r.returncode == 0 for r in results)
    tool.wait_for(lambda: not gridshim_jobs(tool, "target"), timeout=90, what="target deleted")
