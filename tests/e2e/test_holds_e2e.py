"""Issue 15 parts 3 and 4 on the real sandbox: -hold_jid and its release (the wrapper, qdel, the backstop
CronJob), qhold/qrls, qalter, and their refusals byte for byte. Installed commands, as the tool's uid."""

from __future__ import annotations

import json
import re
import statistics
import time
from typing import Any

import pytest

from conftest import STATE, VENV_BIN, Tool, write
from kit import golden


def with_release(tool: Tool) -> Tool:
    """The sandbox's site config plus release_command: the installed gridshim (the 'image' is the host)."""
    base = (STATE / "gridshim.yaml").read_text()
    path = tool.home / ".gridshim-site.yaml"
    path.write_text(base + f"release_command: {VENV_BIN / 'gridshim'}\n")
    path.chmod(0o644)
    tool.extra_env["GRIDSHIM_CONFIG"] = str(path)
    return tool


def submit(tool: Tool, *args: str) -> str:
    proc = tool.run("qsub", "-terse", *args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def job_of(tool: Tool, job_id: str) -> dict[str, Any]:
    items = tool.kubectl_json("get", "jobs", "-l", f"gridshim.io/job-id={job_id}")["items"]
    assert len(items) == 1, [i["metadata"]["name"] for i in items]
    return items[0]


def pods_of(tool: Tool, job: dict[str, Any]) -> list[dict[str, Any]]:
    uid = job["metadata"]["uid"]
    return tool.kubectl_json("get", "pods", "-l", f"batch.kubernetes.io/controller-uid={uid}")["items"]


def finished(job: dict[str, Any]) -> bool:
    return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
               for c in (job.get("status") or {}).get("conditions") or [])


@pytest.mark.needs_shared_home("finished jobs release their successors with the checkout's gridshim (site release_command) and the test reads the files the jobs write")
def test_hold_jid_waits_for_every_job_of_that_name_and_starts_right_after(make_tool: Any) -> None:
    tool = with_release(make_tool("hj"))
    pairs = []
    for i in range(5):
        write(tool, f"a1_{i}.sh", "sleep 10\n")
        write(tool, f"a2_{i}.sh", f"sleep 12; date +%s.%N > $HOME/a_end_{i}\n")
        write(tool, f"b_{i}.sh", f"date +%s.%N > $HOME/b_start_{i}\n")
        a1 = submit(tool, "-N", f"a{i}", f"a1_{i}.sh")
        a2 = submit(tool, "-N", f"a{i}", f"a2_{i}.sh")
        b = submit(tool, "-hold_jid", f"a{i}", "-N", f"b{i}", f"b_{i}.sh")
        pairs.append((a1, a2, b))
    for a1, a2, b in pairs:
        job = job_of(tool, b)
        assert job["spec"]["suspend"] is True
        ann = job["metadata"]["annotations"]
        assert json.loads(ann["gridshim.io/predecessors"]) == {a1: "", a2: ""}
        assert ann["gridshim.io/predecessor-ids"] == ",".join(sorted([a1, a2]))
        assert job["metadata"]["labels"]["gridshim.io/waiting"] == "true"
        assert (tool.home / ".gridshim" / "successors" / a1).read_text().split() == [b]
    # b has no pod while an a runs: a2's last line (a_end) comes after a1's end; the wrapper releases right
    # after the program's end, before the Job controller marks the predecessor Complete
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        waiting = [(i, b) for i, (_, _, b) in enumerate(pairs) if not (tool.home / f"a_end_{i}").exists()]
        for i, b in waiting:
            pods = pods_of(tool, job_of(tool, b))
            assert not pods or (tool.home / f"a_end_{i}").exists(), f"b{i} got a pod before a{i} finished"
        if not waiting:
            break
        time.sleep(0.2)
    latencies = []
    for i, (_, _, b) in enumerate(pairs):
        start = tool.wait_for(lambda: (tool.home / f"b_start_{i}").exists(), timeout=60, what=f"b{i} to run")
        assert start
        time.sleep(0.1)
        a_end = float((tool.home / f"a_end_{i}").read_text())
        b_start = float((tool.home / f"b_start_{i}").read_text())
        assert b_start > a_end
        latencies.append(b_start - a_end)
        job = job_of(tool, b)
        a1_end = pods_of(tool, job_of(tool, pairs[i][0]))[0]["status"]["containerStatuses"][0]["state"][
            "terminated"]["finishedAt"]
        assert pods_of(tool, job)[0]["metadata"]["creationTimestamp"] >= a1_end
        assert "gridshim.io/waiting" not in job["metadata"].get("labels", {})
        assert job["metadata"]["annotations"]["gridshim.io/predecessor-ids"]  # kept for qstat -j
    print(f"\n-hold_jid release latency (predecessor's last line → successor's first), n={len(latencies)}: "
          f"median {statistics.median(latencies):.3f} s, min {min(latencies):.3f} s, max {max(latencies):.3f} s")


def wait_file(tool: Tool, rel: str, timeout: float) -> float:
    """Seconds until the job wrote $HOME/REL."""
    t0 = time.monotonic()
    tool.wait_for(lambda: (tool.home / rel).exists(), timeout=timeout, interval=0.2, what=rel)
    return time.monotonic() - t0


@pytest.mark.needs_shared_home("finished jobs release their successors with the checkout's gridshim (site release_command) and the test reads the files the jobs write")
def test_a_predecessor_killed_with_qdel_f_still_releases_its_successor(tool: Tool) -> None:
    write(tool, "long.sh", "sleep 300\n")
    write(tool, "after.sh", "echo ran > $HOME/after_qdel\n")
    a = submit(tool, "-N", "long", "long.sh")
    tool.wait_for(lambda: (job_of(tool, a).get("status") or {}).get("ready"), timeout=60, what="a running")
    b = submit(tool, "-hold_jid", a, "after.sh")
    assert job_of(tool, b)["spec"]["suspend"] is True
    proc = tool.run("qdel", "-f", a)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    took = wait_file(tool, "after_qdel", timeout=90)
    print(f"\nqdel -f of the predecessor → successor ran after {took:.2f} s")


@pytest.mark.needs_shared_home("finished jobs release their successors with the checkout's gridshim (site release_command) and the test reads the files the jobs write")
def test_a_sigkilled_predecessor_is_released_by_the_backstop_within_a_minute(make_tool: Any) -> None:
    tool = with_release(make_tool("bk"))
    write(tool, "long.sh", "sleep 300\n")
    write(tool, "after.sh", "echo ran > $HOME/after_kill\n")
    a = submit(tool, "-N", "victim", "long.sh")
    tool.wait_for(lambda: pods_of(tool, job_of(tool, a)) and (job_of(tool, a).get("status") or {}).get("ready"),
                  timeout=60, what="a running")
    b = submit(tool, "-hold_jid", "victim", "after.sh")
    cron = tool.kubectl_json("get", "cronjob", "gridshim-release")
    assert cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"][1:] == [
        "release", "--sweep"]
    pod = pods_of(tool, job_of(tool, a))[0]["metadata"]["name"]
    tool.sandbox.kubectl("-n", tool.namespace, "delete", "pod", pod, "--grace-period=0", "--force")
    t0 = time.monotonic()
    tool.wait_for(lambda: finished(job_of(tool, a)), timeout=60, what="the predecessor's Job to fail")
    assert job_of(tool, b)["spec"]["suspend"] is True  # nobody ran the wrapper's release
    wait_file(tool, "after_kill", timeout=150)
    print(f"\nSIGKILLed predecessor → successor ran after {time.monotonic() - t0:.1f} s (backstop, every minute)")
    # nothing waits any more: the next sweep deletes the CronJob
    tool.wait_for(lambda: tool.sandbox.kubectl("-n", tool.namespace, "get", "cronjob", "gridshim-release",
                                               check=False).returncode != 0, timeout=150, interval=2,
                  what="the backstop CronJob to go")


@pytest.mark.needs_shared_home("finished jobs release their successors with the checkout's gridshim (site release_command) and the test reads the files the jobs write")
def test_qhold_and_qrls_round_trip_with_a_dependency(tool: Tool) -> None:
    write(tool, "long.sh", "sleep 300\n")
    write(tool, "held.sh", "echo ran > $HOME/held_ran\n")
    a = submit(tool, "-N", "first", "long.sh")
    b = submit(tool, "-hold_jid", "first", "-N", "second", "held.sh")
    proc = tool.run("qhold", "second")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"modified hold of job {b}\n", "")
    assert tool.run("qhold", b).stdout == ""  # already held: nothing
    assert tool.run("qdel", a).returncode == 0
    tool.wait_for(lambda: not D_preds(job_of(tool, b)), timeout=30, what="the predecessor released")
    time.sleep(1)
    job = job_of(tool, b)
    assert job["spec"]["suspend"] is True and not pods_of(tool, job)  # still user-held
    proc = tool.run("qrls", b)
    assert (proc.returncode, proc.stdout) == (0, f"modified hold of job {b}\n")
    wait_file(tool, "held_ran", timeout=60)
    # qsub -h: the spec's annotation, then qrls starts it
    write(tool, "h.sh", "echo ran > $HOME/h_ran\n")
    h = submit(tool, "-h", "h.sh")
    job = job_of(tool, h)
    assert job["metadata"]["annotations"]["gridshim.io/hold"] == "u" and job["spec"]["suspend"] is True
    assert tool.run("qrls", h).stdout == f"modified hold of job {h}\n"
    wait_file(tool, "h_ran", timeout=60)


def D_preds(job: dict[str, Any]) -> dict[str, str]:
    raw = (job["metadata"].get("annotations") or {}).get("gridshim.io/predecessors")
    return json.loads(raw) if raw else {}


@pytest.mark.needs_shared_home("finished jobs release their successors with the checkout's gridshim (site release_command) and the test reads the files the jobs write")
def test_qalter_changes_a_held_job_in_place_and_by_replacement(tool: Tool) -> None:
    write(tool, "alt.sh", "echo out-of-alt\n")
    j = submit(tool, "-h", "-N", "before", "alt.sh")
    uid = job_of(tool, j)["metadata"]["uid"]
    proc = tool.run("qalter", "-N", "after", "-p", "-3", j)
    assert proc.returncode == 0 and proc.stdout.splitlines()[0] == f"modified job name of job {j}"
    assert re.fullmatch(rf"tools\.{tool.name}@\S+ sets scheduling priority of job {j} to -3",
                        proc.stdout.splitlines()[1])
    job = job_of(tool, j)
    assert job["metadata"]["uid"] == uid and job["metadata"]["annotations"]["gridshim.io/name"] == "after"
    proc = tool.run("qalter", "-l", "h_vmem=1G,h_rt=120", "-o", "alt.out", j)
    assert (proc.returncode, proc.stdout) == (0, f"modified hard resource list of job {j}\n"
                                                 f"modified stdout path list of job {j}\n"), proc.stderr
    job = job_of(tool, j)  # one Job with that id: the replacement (the admission policy accepted it)
    assert job["metadata"]["uid"] != uid and job["spec"]["activeDeadlineSeconds"] == 120
    assert job["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] == "1Gi"
    assert tool.run("qrls", j).returncode == 0
    tool.wait_for(lambda: (tool.home / "alt.out").exists() and (tool.home / "alt.out").read_text(), timeout=60,
                  what="the job to write to its new -o path")
    assert (tool.home / "alt.out").read_text() == "out-of-alt\n"
    # -hold_jid: replace, then clear
    write(tool, "long.sh", "sleep 300\n")
    a = submit(tool, "-N", "blocker", "long.sh")
    c = submit(tool, "-h", "alt.sh")
    proc = tool.run("qalter", "-hold_jid", "blocker", c)
    assert proc.stdout == (f"modified job id hold list of job {c}\n   blocking jobs: {a}\n"
                           "   exited jobs:   NONE\n")
    assert D_preds(job_of(tool, c)) == {a: ""}
    proc = tool.run("qalter", "-hold_jid", "", c)
    assert proc.stdout == f"modified job id hold list of job {c}\n   blocking jobs: NONE\n   exited jobs:   NONE\n"
    assert not D_preds(job_of(tool, c)) and job_of(tool, c)["spec"]["suspend"] is True  # still -h
    tool.run("qdel", a, c)


def test_refusals_byte_for_byte(tool: Tool) -> None:
    write(tool, "long.sh", "sleep 300\n")
    running = submit(tool, "-N", "busy", "long.sh")
    tool.wait_for(lambda: (job_of(tool, running).get("status") or {}).get("ready"), timeout=60, what="running")
    transcript = []
    for argv in (["qalter", "-l", "h_vmem=2G", running], ["qalter", "-N", "x", "999"], ["qhold", "999"],
                 ["qrls", "999"], ["qhold", "-h", "o", running], ["qrls", "-h", "s", running],
                 ["qalter", "-p", "10", running], ["qhold"], ["qsub", "-hold_jid", "12.3", "long.sh"]):
        proc = tool.run(*argv)
        shown = " ".join(a if a not in (running,) else "RUNNING" for a in argv)
        transcript.append(f"$ {shown}\n[exit {proc.returncode}]\n--- stdout\n{proc.stdout}--- stderr\n{proc.stderr}")
    text = "".join(transcript).replace(running, "RUNNING").replace(f"tools.{tool.name}", "tools.TOOL")
    golden("holds_refusals.txt", text)
    # the running job was left as it was
    job = job_of(tool, running)
    assert "gridshim.io/hold" not in job["metadata"].get("annotations", {})
    tool.run("qdel", "-f", running)


@pytest.mark.needs_shared_home("finished jobs release their successors with the checkout's gridshim (site release_command) and the test reads the files the jobs write")
def test_array_predecessors_release_task_by_task_and_hold_jid_ad_holds_the_whole_successor(make_tool: Any) -> None:
    tool = with_release(make_tool("ad"))
    write(tool, "pa.sh", "sleep $((SGE_TASK_ID * 3)); date +%s.%N > $HOME/pa_$SGE_TASK_ID\n")
    write(tool, "sa.sh", "date +%s.%N > $HOME/sa_$SGE_TASK_ID\n")
    pa = submit(tool, "-t", "1-3", "-N", "pa", "pa.sh").split(".")[0]
    sa = submit(tool, "-t", "1-3", "-hold_jid_ad", "pa", "-N", "sa", "sa.sh").split(".")[0]
    job = job_of(tool, sa)
    assert job["spec"]["suspend"] is True and D_preds(job) == {pa: "1-3:1"}
    assert job["metadata"]["annotations"]["gridshim.io/predecessors-ad-req"] == "pa"
    # each predecessor task's wrapper releases its own task
    tool.wait_for(lambda: D_preds(job_of(tool, sa)) == {pa: "2,3"}, timeout=30, what="task 1 released")
    assert not pods_of(tool, job_of(tool, sa))
    for t in (1, 2, 3):
        wait_file(tool, f"sa_{t}", timeout=60)
    last = max(float((tool.home / f"pa_{t}").read_text()) for t in (1, 2, 3))
    assert all(float((tool.home / f"sa_{t}").read_text()) > last for t in (1, 2, 3))
    # the same range is required
    tool.wait_for(lambda: finished(job_of(tool, pa)), timeout=30, what="pa's Job to be Complete")
    proc = tool.run("qsub", "-t", "1-4", "-hold_jid_ad", pa, "sa.sh")
    assert proc.returncode == 0  # pa has finished: no predecessor left to compare with, as SGE drops it
    submit(tool, "-t", "1-3", "-N", "pb", "pa.sh")
    proc = tool.run("qsub", "-t", "1-4", "-hold_jid_ad", "pb", "sa.sh")
    assert (proc.returncode, proc.stderr) == (1, "Unable to run job: This array job must have the same range of "
                                                 "sub-tasks as the dependent array job specified with -hold_jid_ad\n"
                                                 "Exiting.\n")


@pytest.mark.needs_shared_home("finished jobs release their successors with the checkout's gridshim (site release_command) and the test reads the files the jobs write")
def test_a_predecessor_ending_while_qsub_resolves_does_not_wait_for_the_backstop(make_tool: Any) -> None:
    tool = with_release(make_tool("wn"))
    write(tool, "quick.sh", "true\n")
    took = []
    for i in range(6):
        write(tool, f"after_{i}.sh", f"echo ran > $HOME/win_{i}\n")
        submit(tool, "-N", f"q{i}", "quick.sh")
        time.sleep(0.15 * i)  # move the predecessor's end across qsub's LIST, create and re-check
        t0 = time.monotonic()
        submit(tool, "-hold_jid", f"q{i}", f"after_{i}.sh")
        wait_file(tool, f"win_{i}", timeout=150)
        took.append(time.monotonic() - t0)
    print(f"\npredecessor ending around the submission → successor ran after "
          f"{', '.join(f'{t:.1f}' for t in took)} s")
    assert max(took) < 30, took  # never left to the once-a-minute backstop
