"""Issue 15 part 1: array jobs (`qsub -t`, `-tc`) on the real sandbox, through the installed commands, as
the tool's uid (contract: ../shared/docs/qsub-behaviour.md §2.1, §2.4, §3, §4; docs/arrays-and-holds.md)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from conftest import Tool, lines_of, mkdir, write

# Each task writes what it saw, and its program's own start and end times, to $HOME/arr/t.<task id>.
TASK = """#!/bin/sh
#$ -t 1-10:3
start=$(date +%s.%N)
sleep 3
end=$(date +%s.%N)
{ echo "TASK=$SGE_TASK_ID"; echo "FIRST=$SGE_TASK_FIRST"; echo "LAST=$SGE_TASK_LAST"
  echo "STEP=$SGE_TASK_STEPSIZE"; echo "JOBTASK=$SGE_JOB_TASK_ID"; echo "JOB=$JOB_ID"; echo "TMPDIR=$TMPDIR"
  echo "OUT=$SGE_STDOUT_PATH"; echo "START=$start"; echo "END=$end"; } > "$HOME/arr/t.$SGE_TASK_ID"
echo "out of $SGE_TASK_ID"
echo "err of $SGE_TASK_ID" >&2
if [ "$SGE_TASK_ID" = 4 ]; then exit 3; fi
"""


def max_overlap(spans: list[tuple[float, float]]) -> int:
    """The most intervals open at one moment (an end at the same instant as a start does not overlap)."""
    points = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans], key=lambda p: (p[0], p[1]))
    now = most = 0
    for _, d in points:
        now += d
        most = max(most, now)
    return most


@pytest.mark.needs_shared_home("reads the files the job writes in the tool's home")
def test_an_array_runs_every_task_with_its_own_env_files_and_limit(make_tool: Any) -> None:
    tool = make_tool("ar")
    mkdir(tool, "arr")
    write(tool, "arr.sh", TASK)
    proc = tool.run("qsub", "-tc", "2", "-sync", "y", "arr.sh", timeout=300)
    m = re.match(r'Your job-array (\d+)\.1-10:3 \("arr\.sh"\) has been submitted\n', proc.stdout)
    assert m, (proc.stdout, proc.stderr)
    job_id = m.group(1)
    # -sync y: one line per task; the failing one on stderr, its code is qsub's
    assert proc.returncode == 3, (proc.stdout, proc.stderr)
    assert f"Job {job_id}.4 exited with exit code 3.\n" in proc.stderr
    ok = re.findall(rf"^Job {job_id}\.(\d+) exited with exit code 0\.$", proc.stdout, re.M)
    assert sorted(ok, key=int) == ["1", "7", "10"], proc.stdout
    spans: dict[int, tuple[float, float]] = {}
    for task in (1, 4, 7, 10):
        got = lines_of(tool.home / "arr" / f"t.{task}")
        assert (got["TASK"], got["FIRST"], got["LAST"], got["STEP"]) == (str(task), "1", "10", "3")
        assert got["JOBTASK"] == f"{job_id}.{task}" and got["JOB"] == job_id
        assert got["TMPDIR"] == f"/tmp/{job_id}.{task}.default"
        out = tool.home / f"arr.sh.o{job_id}.{task}"  # SGE's default names: NAME.oJOB.TASK
        assert got["OUT"] == str(out) and out.read_text() == f"out of {task}\n"
        assert (tool.home / f"arr.sh.e{job_id}.{task}").read_text() == f"err of {task}\n"
        spans[task] = (float(got["START"]), float(got["END"]))
    assert sorted(p.name for p in (tool.home / "arr").iterdir()) == ["t.1", "t.10", "t.4", "t.7"]
    # -tc 2, from the tasks' own clocks: never more than 2 at once (and 2 did run together: 3 s each)
    assert max_overlap(list(spans.values())) == 2, spans
    # the failing task 4 (index 1) stopped nothing: tasks 7 and 10 started after it had failed
    assert min(spans[7][0], spans[10][0]) >= spans[4][1], spans
    job = next(j for j in tool.kubectl_json("get", "jobs")["items"]
               if j["metadata"]["labels"].get("gridshim.io/job-id") == job_id)
    spec = job["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"], spec["backoffLimitPerIndex"]) == (
        "Indexed", 4, 2, 0)
    assert job["metadata"]["labels"]["gridshim.io/array"] == "true"
    # each task's accounting record carries its task id
    records = [line.split(":") for line in (tool.home / ".gridshim" / "accounting").read_text().splitlines()]
    mine = sorted((int(f[35]), int(f[12])) for f in records if f[5] == job_id)
    assert mine == [(1, 0), (4, 3), (7, 0), (10, 0)]


def test_terse_submit_lines_and_rejections(tool: Tool) -> None:
    proc = tool.run("qsub", "-terse", "-t", "6-2:2", "-b", "y", "/bin/true")  # n>m: swapped
    assert proc.returncode == 0, proc.stderr
    assert re.fullmatch(r"\d+\.2-6:2\n", proc.stdout), proc.stdout
    proc = tool.run("qsub", "-t", "5", "-N", "one", "-b", "y", "/bin/true")
    assert re.fullmatch(r'Your job-array \d+\.5-5:1 \("one"\) has been submitted\n', proc.stdout), proc.stdout
    r = tool.run("qsub", "-t", "0-3", "-b", "y", "/bin/true")
    assert (r.returncode, r.stderr) == (1, "Unable to run job: job rejected: 0 is an invalid task id\nExiting.\n")
    r = tool.run("qsub", "-tc", "2", "-b", "y", "/bin/true")
    assert (r.returncode, r.stderr) == (1, 'Unable to run job: invalid "task concurrency" value in job request\n'
                                           "Exiting.\n")
    r = tool.run("qsub", "-t", "1-3,5", "-b", "y", "/bin/true")
    assert (r.returncode, r.stderr) == (7, "qsub: -t option only allows one range specification\n")
    r = tool.run("qsub", "-t", "1-80000", "-b", "y", "/bin/true")
    assert r.returncode == 1 and "more than 75000 tasks" in r.stderr
    ids = [j["metadata"]["labels"]["gridshim.io/job-id"] for j in tool.kubectl_json("get", "jobs")["items"]]
    assert len(ids) == 2  # the refused ones created nothing


@pytest.mark.needs_shared_home("reads the files the job writes in the tool's home")
def test_rerun_array_with_task_id_paths_is_accepted_and_runs(tool: Tool) -> None:
    """-r y's podFailurePolicy with backoffLimitPerIndex: the API server accepts it; `$TASK_ID` in -o."""
    mkdir(tool, "logs")
    proc = tool.run("qsub", "-r", "y", "-t", "1-3", "-j", "y", "-o", "logs/out.$TASK_ID", "-sync", "y", "-b", "y",
                    "/bin/sh", "-c", "'echo task $SGE_TASK_ID'", timeout=300)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    for task in (1, 2, 3):
        assert (tool.home / "logs" / f"out.{task}").read_text() == f"task {task}\n"
    job = tool.kubectl_json("get", "jobs")["items"][0]
    assert job["spec"]["podFailurePolicy"]["rules"][0]["action"] == "Ignore"
    assert job["spec"]["completionMode"] == "Indexed"


@pytest.mark.needs_shared_home("finished jobs release their successors with the checkout's gridshim (site release_command) and the test reads the files the jobs write")
def test_a_finished_task_runs_the_sites_release_command(tool: Tool) -> None:
    """The wrapper's release hook in a real pod: with release_command set and the successors marker
    present, each task runs `release_command release --job N --task T` (stdin /dev/null, output in the
    task's stderr file), and its failure leaves the exit status alone. A fake command stands in for
    `gridshim release` (the holds work's), so this checks only the hook."""
    import yaml

    from conftest import STATE

    fake = write(tool, "bin/fake-gridshim", '#!/bin/sh\nprintf "%s\\n" "$*" >> "$HOME/release.args"\n'
                 'cat; echo "released $*"; exit 9\n', mode=0o755)
    site = yaml.safe_load((STATE / "gridshim.yaml").read_text())
    site["release_command"] = str(fake)
    config = write(tool, "site.yaml", yaml.safe_dump(site))
    # each task waits for the marker qsub leaves when it submits a successor (written here by hand)
    wait = 'while [ ! -e "$HOME/.gridshim/successors/$JOB_ID" ]; do sleep 0.2; done; exit 5'
    proc = tool.run("qsub", "-terse", "-t", "1-2", "-b", "y", "-shell", "n", "/bin/sh", "-c", wait,
                    env={"GRIDSHIM_CONFIG": str(config)})
    assert proc.returncode == 0, proc.stderr
    job_id = proc.stdout.split(".")[0]
    mkdir(tool, ".gridshim")  # as qsub, running as the tool, would leave it
    write(tool, f".gridshim/successors/{job_id}", "")
    args = tool.home / "release.args"
    tool.wait_for(lambda: args.exists() and len(args.read_text().splitlines()) == 2, timeout=60,
                  what="both tasks to run the release command")
    assert sorted(args.read_text().splitlines()) == [f"release --job {job_id} --task 1",
                                                     f"release --job {job_id} --task 2"]
    err = tool.home / f"sh.e{job_id}.1"
    tool.wait_for(lambda: err.exists() and err.read_text(), timeout=30, what="the release output")
    assert err.read_text() == f"released release --job {job_id} --task 1\n"  # stdin was /dev/null: `cat` read nothing

    def exit_codes() -> list[int]:
        pods = tool.kubectl_json("get", "pods")["items"]
        return sorted(cs["state"]["terminated"]["exitCode"] for p in pods
                      for cs in p.get("status", {}).get("containerStatuses", []) if "terminated" in cs["state"])

    assert tool.wait_for(lambda: exit_codes() if len(exit_codes()) == 2 else None, timeout=60,
                         what="both pods to end") == [5, 5]  # the tasks' own code, not the command's 9


def test_sync_reports_a_killed_task_at_once_and_waits_for_the_rest(tool: Tool) -> None:
    """Deleting a running task's pod (what qdel of a task does) fails only that index: -sync y prints its
    SIGKILL line while the other task still runs, then the other's line; the exit code is 1 (signal)."""
    import threading
    import time

    cmd = ["qsub", "-sync", "y", "-t", "1-2", "-b", "y", "-shell", "n", "/bin/sh", "-c",
           'if [ "$SGE_TASK_ID" = 1 ]; then sleep 120; else sleep 15; fi']
    proc = tool.start(*cmd)
    err_lines: list[tuple[float, str]] = []
    reader = threading.Thread(target=lambda: err_lines.extend((time.monotonic(), line) for line in proc.stderr or ()))
    reader.start()
    try:
        def both_running() -> bool:
            pods = tool.kubectl_json("get", "pods")["items"]
            return sum(p["status"].get("phase") == "Running" for p in pods) == 2

        tool.wait_for(both_running, timeout=60, what="both tasks to run")
        killed_at = time.monotonic()
        tool.sandbox.kubectl("-n", tool.namespace, "delete", "pod", "-l",
                             "batch.kubernetes.io/job-completion-index=0", "--wait=false")
        out = proc.stdout.read() if proc.stdout else ""  # until qsub exits (stderr is the reader's)
        proc.wait(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
        reader.join(timeout=10)
    job_id = re.match(r"Your job-array (\d+)\.1-2:1", out).group(1)  # type: ignore[union-attr]
    assert [line for _, line in err_lines] == [f"Job {job_id}.1 exited because of signal SIGKILL\n"], err_lines
    assert err_lines[0][0] - killed_at < 12, "the killed task's line came only at the end"  # task 2 runs 15 s
    assert out.endswith(f"Job {job_id}.2 exited with exit code 0.\n") and proc.returncode == 1, (out, err_lines)


@pytest.mark.needs_shared_home("the job's wrapper reads the deleted-tasks list qdel writes in the tool's home")
def test_a_pending_task_on_the_deleted_list_never_runs(tool: Tool) -> None:
    """What qdel of a pending task leaves (docs/arrays-and-holds.md "qdel of array tasks"): the marker
    file lists the task, the Job's annotation names it. Its pod's wrapper exits 0 at once, with no output
    file and no accounting record, and -sync y says `Unable to run job N.T` (contributing 0)."""

    cmd = ["qsub", "-sync", "y", "-terse", "-t", "1-3", "-tc", "1", "-b", "y", "-shell", "n", "/bin/sh", "-c",
           'sleep 3; echo "ran $SGE_TASK_ID"']
    proc = tool.start(*cmd)
    try:
        first = proc.stdout.readline() if proc.stdout else ""  # -terse: N.1-3:1, flushed before the wait
        job_id = first.split(".")[0]
        assert re.fullmatch(rf"{job_id}\.1-3:1\n", first), first
        mkdir(tool, ".gridshim")  # as qdel, running as the tool, would leave it
        write(tool, f".gridshim/deleted/{job_id}", "3\n")
        job = next(j for j in tool.kubectl_json("get", "jobs")["items"]
                   if j["metadata"]["labels"].get("gridshim.io/job-id") == job_id)
        tool.sandbox.kubectl("-n", tool.namespace, "annotate", "job", job["metadata"]["name"],
                             "gridshim.io/deleted-tasks=3")
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (proc.returncode, out, err) == (0, "", f"Unable to run job {job_id}.3\n")
    assert (tool.home / f"sh.o{job_id}.2").read_text() == "ran 2\n"
    assert not (tool.home / f"sh.o{job_id}.3").exists() and not (tool.home / f"sh.e{job_id}.3").exists()
    records = [line.split(":") for line in (tool.home / ".gridshim" / "accounting").read_text().splitlines()]
    assert sorted(int(f[35]) for f in records if f[5] == job_id) == [1, 2]


def test_sync_when_qdel_deletes_the_whole_array(tool: Tool) -> None:
    """qdel N of a running array under -sync y: the running task exited because of SIGKILL, the pending
    ones never ran (`Unable to run job N.T`); qsub exits 1, the first non-zero contribution."""

    cmd = ["qsub", "-sync", "y", "-terse", "-t", "1-3", "-tc", "1", "-b", "y", "/bin/sleep", "120"]
    proc = tool.start(*cmd)
    try:
        job_id = (proc.stdout.readline() if proc.stdout else "").split(".")[0]
        tool.wait_for(lambda: any(p["status"].get("phase") == "Running"
                                  for p in tool.kubectl_json("get", "pods")["items"]), timeout=60, what="task 1 to run")
        assert tool.run("qdel", job_id).returncode == 0
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (proc.returncode, out) == (1, "")
    assert err == (f"Job {job_id}.1 exited because of signal SIGKILL\n"
                   f"Unable to run job {job_id}.2\nUnable to run job {job_id}.3\n")
