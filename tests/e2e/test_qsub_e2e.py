"""Issue 11: qsub and job scripts on the real sandbox, through the installed commands, as the tool's uid."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import Tool, lines_of, mkdir, write

CPU4 = {"default": {"cpu": "500m", "memory": "512Mi"}, "defaultRequest": {"cpu": "50m", "memory": "64Mi"},
        "max": {"cpu": "4", "memory": "16Gi"}, "min": {"cpu": "10m", "memory": "4Mi"}}


def jobs_named(tool: Tool, name: str) -> list[dict[str, Any]]:
    items = tool.kubectl_json("get", "jobs")["items"]
    return [j for j in items if j["metadata"].get("annotations", {}).get("gridshim.io/name") == name]


REPORT = ('echo "JOB_ID=$JOB_ID"; echo "JOB_NAME=$JOB_NAME"; echo "NSLOTS=$NSLOTS"; echo "NHOSTS=$NHOSTS"\n'
          'echo "TASK=$SGE_TASK_ID"; echo "ENVIRONMENT=$ENVIRONMENT"; echo "PWD=$(pwd)"; echo "SHELLV=$SHELL"\n'
          'echo "OUT=$SGE_STDOUT_PATH"; echo "ERR=$SGE_STDERR_PATH"; echo "TMPDIR=$TMPDIR"; echo "PATH=$PATH"\n'
          'echo "WORKDIR=$SGE_O_WORKDIR"; echo "CWDPATH=$SGE_CWD_PATH"; echo "SCRIPT=$JOB_SCRIPT"\n'
          'echo "ARGS=$*"; echo "QUEUE=$QUEUE"; echo "RESTARTED=$RESTARTED"\n')


@pytest.mark.needs_shared_home("reads the files the job writes in the tool's home")
def test_a_pipeline_shaped_script_runs_with_every_directive(make_tool: Any) -> None:
    tool = make_tool("qs", limits=CPU4)
    mkdir(tool, "work/logs")
    write(tool, "work/job.sh", "#!/bin/bash\n# properties = {}\n\nset -e\n"
          '#$ -N "pipe job"\n'
          "#$ -S /bin/bash -cwd\n"
          "#$ -j y -o logs/ -l h_rt=INFINITY\n"
          "#$ -pe smp 4\n"
          'echo "BASH=$BASH_VERSION"; echo "ONLY=$ONLY_AT_SUBMIT"\n' + REPORT, mode=0o644)  # not executable
    proc = tool.run("qsub", "-V", "-sync", "y", "job.sh", "a b", "c", cwd=tool.home / "work",
                    env={"ONLY_AT_SUBMIT": "seen"})
    assert proc.returncode == 0, proc.stderr
    m = re.fullmatch(r'Your job (\d+) \("pipe job"\) has been submitted\nJob \1 exited with exit code 0\.\n', proc.stdout)
    assert m, proc.stdout
    job_id = m.group(1)
    out = tool.home / "work" / "logs" / f"pipe job.o{job_id}"  # -o DIR/: SGE's default name inside it
    got = lines_of(out)
    assert got["BASH"] and got["ONLY"] == "seen"  # -S /bin/bash ran it; -V carried the submit-time variable
    assert got["JOB_ID"] == job_id and got["JOB_NAME"] == "pipe job" and got["NSLOTS"] == "4"
    assert got["NHOSTS"] == "1" and got["TASK"] == "undefined" and got["ENVIRONMENT"] == "BATCH"
    assert got["PWD"] == str(tool.home / "work") == got["WORKDIR"] == got["CWDPATH"]
    assert got["SHELLV"] == "/bin/bash" and got["ARGS"] == "a b c" and got["RESTARTED"] == "0"
    assert got["OUT"] == got["ERR"] == str(out)
    assert got["TMPDIR"] == f"/tmp/{job_id}.1.default" and got["PATH"].startswith(got["TMPDIR"] + ":")
    assert got["SCRIPT"].startswith(got["TMPDIR"])
    job = jobs_named(tool, "pipe job")[0]
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["requests"]["cpu"] == "4"
    assert "activeDeadlineSeconds" not in job["spec"]  # h_rt=INFINITY


@pytest.mark.needs_shared_home("reads the files the job writes in the tool's home")
def test_terse_stdin_and_binary_jobs(tool: Tool) -> None:
    proc = tool.run("qsub", "-terse", "-sync", "y", "-j", "y", input="echo from-stdin $0 >&2\nexit 4\n")
    assert proc.returncode == 4, proc.stderr
    job_id = proc.stdout.strip()
    assert re.fullmatch(r"\d+\n", proc.stdout), proc.stdout  # -terse: exactly the id and a newline
    assert f"Job {job_id} exited with exit code 4." in proc.stderr
    out = (tool.home / f"STDIN.o{job_id}").read_text()
    assert "from-stdin" in out and not (tool.home / f"STDIN.e{job_id}").exists()
    # -b y: the words are joined with blanks and re-read by the shell, as SGE's starter does
    proc = tool.run("qsub", "-b", "y", "-terse", "-sync", "y", "/bin/echo", "x  y", "$HOME")
    assert proc.returncode == 0, proc.stderr
    bid = proc.stdout.strip()
    assert (tool.home / f"echo.o{bid}").read_text() == f"x y {tool.home}\n"
    assert (tool.home / f"echo.e{bid}").read_text() == ""


@pytest.mark.needs_shared_home("reads the files the job writes in the tool's home")
def test_the_script_is_copied_when_qsub_returns(tool: Tool) -> None:
    script = write(tool, "gone.sh", "sleep 2\necho original text\n")
    # -wd, and the file is rewritten and then deleted as soon as qsub returns (as dask-jobqueue does)
    mkdir(tool, "wd")
    proc = tool.run("/bin/sh", "-c", f"qsub -terse -wd {tool.home}/wd {script} && "
                    f"echo 'echo changed' > {script} && rm -f {script}")
    assert proc.returncode == 0, proc.stderr
    job_id = proc.stdout.strip()
    out = tool.home / "wd" / f"gone.sh.o{job_id}"
    tool.wait_for(lambda: out.exists() and "original" in out.read_text(), timeout=60, what="the copied script")
    assert out.read_text() == "original text\n"
    assert not script.exists()


@pytest.mark.needs_sandbox("compares the job's /tmp with this machine's")
def test_a_job_does_not_see_the_submit_hosts_tmp(tool: Tool) -> None:
    marker = f"/tmp/gridshim-e2e-{os.getpid()}-{time.time_ns()}"
    Path(marker).write_text("host\n")
    try:
        proc = tool.run("qsub", "-sync", "y", "-terse", "-b", "y", "test", "!", "-e", marker)
        assert proc.returncode == 0, proc.stderr  # the pod's /tmp is its own, as a container's is
    finally:
        os.unlink(marker)


def test_qstat_r_j_and_qdel_treat_qsub_jobs_like_jsub_jobs(make_tool: Any) -> None:
    tool = make_tool("qr", limits=CPU4)
    proc = tool.run("qsub", "-N", "longrun", "-pe", "smp", "2", "-l", "h_vmem=1G,h_rt=600", "-b", "y",
                    "/bin/sleep", "300")
    assert proc.returncode == 0, proc.stderr
    job_id = re.search(r"Your job (\d+)", proc.stdout).group(1)  # type: ignore[union-attr]

    def running() -> str:
        out = tool.run("qstat", "-r").stdout
        return out if re.search(rf"^\s*{job_id} .* r  ", out, re.M) else ""

    out = tool.wait_for(running, timeout=60, what="the job to run")
    row = next(line for line in out.splitlines() if line.strip().startswith(job_id))
    assert row.split()[4] == "r" and row.split()[-1] == "2"  # state column, slots column
    assert "       Full jobname:     longrun\n" in out and "       Requested PE:     smp 2\n" in out
    assert "       Hard Resources:   h_vmem=1G (0.000000)\n" in out and "h_rt=600 (0.000000)" in out
    detail = tool.run("qstat", "-j", job_id)
    assert detail.returncode == 0 and "job_name:                   longrun" in detail.stdout
    assert "parallel environment:       smp range: 2" in detail.stdout
    gone = tool.run("qdel", job_id)
    assert gone.returncode == 0 and f"registered the job {job_id} for deletion" in gone.stdout, gone.stdout

    def vanished() -> bool:
        return tool.run("qstat", "-j", job_id).returncode == 1

    tool.wait_for(vanished, timeout=60, what="the job to disappear")
    assert "Following jobs do not exist" in tool.run("qstat", "-j", job_id).stderr


@pytest.mark.needs_shared_home("reads the files the job writes in the tool's home")
def test_notify_sends_sigusr2_before_the_kill(tool: Tool) -> None:
    write(tool, "trap.sh", "#$ -notify\ntrap 'echo got-usr2; exit 0' USR2\necho started\n"
          "while :; do sleep 1; done\n")
    proc = tool.run("qsub", "-terse", "-j", "y", "trap.sh")
    assert proc.returncode == 0, proc.stderr
    job_id = proc.stdout.strip()
    out = tool.home / f"trap.sh.o{job_id}"
    tool.wait_for(lambda: out.exists() and "started" in out.read_text(), timeout=60, what="the job to start")
    assert tool.run("qdel", job_id).returncode == 0
    tool.wait_for(lambda: "got-usr2" in out.read_text(), timeout=30, what="SIGUSR2 to reach the job")


@pytest.mark.needs_shared_home("reads the files the job writes in the tool's home")
def test_s_rt_sends_sigusr1_before_h_rt(tool: Tool) -> None:
    """qsub-behaviour §1.7: past s_rt the job gets SIGUSR1 (here it exits 4 on it), the kill only once the
    queue's notify time (60 s) has passed: the Job's deadline is s_rt + 60, before h_rt."""
    write(tool, "srt.sh", "trap 'echo got USR1; exit 4' USR1\necho started\nsleep 100 & wait\n")
    proc = tool.run("qsub", "-terse", "-sync", "y", "-j", "y", "-l", "s_rt=2,h_rt=120", "srt.sh")
    assert proc.returncode == 4, (proc.stdout, proc.stderr)
    job_id = proc.stdout.strip()
    assert f"Job {job_id} exited with exit code 4." in proc.stderr
    out = (tool.home / f"srt.sh.o{job_id}").read_text()
    assert out == "started\ngot USR1\n", out
    (job,) = jobs_named(tool, "srt.sh")
    assert job["spec"]["activeDeadlineSeconds"] == 62


def test_hold_shows_hqw_and_never_starts_a_pod(tool: Tool) -> None:
    proc = tool.run("qsub", "-h", "-terse", "-b", "y", "/bin/true")
    assert proc.returncode == 0, proc.stderr
    job_id = proc.stdout.strip()
    row = next(line for line in tool.run("qstat").stdout.splitlines() if line.strip().startswith(job_id))
    assert row.split()[4] == "hqw"
    assert job_id in tool.run("qstat", "-s", "hu").stdout and job_id not in tool.run("qstat", "-s", "r").stdout
    assert tool.kubectl_json("get", "pods")["items"] == []


def test_errors_have_sges_words_and_exit_codes(tool: Tool) -> None:
    r = tool.run("qsub", "missing.sh")
    assert (r.returncode, r.stderr) == (14, "Unable to read script file because of error: error opening missing.sh: "
                                            "No such file or directory\n")
    r = tool.run("qsub", "-foo", "x.sh")
    assert (r.returncode, r.stderr) == (2, 'qsub: invalid option argument "-foo"\n')
    r = tool.run("qsub", "-N", "1run", "-b", "y", "/bin/true")
    assert r.returncode == 1 and r.stderr == ('Unable to run job: denied: "1run" is not a valid object name '
                                              "(cannot start with a digit)\nExiting.\n")
    r = tool.run("qsub", "-pe", "nosuch", "2", "-b", "y", "/bin/true")
    assert r.returncode == 1 and 'parallel environment "nosuch" does not exist' in r.stderr
    r = tool.run("qsub", input="")
    assert (r.returncode, r.stderr) == (4, "Unable to read script file because of error: no input read from stdin\n")
    assert tool.kubectl_json("get", "jobs")["items"] == []  # nothing was submitted by any of them


@pytest.mark.needs_shared_home("reads the files the job writes in the tool's home")
def test_cronjob_runs_get_their_own_job_id(tool: Tool) -> None:
    mkdir(tool, "cronlogs")
    write(tool, "tick.sh", '#$ -o cronlogs/ -j y\necho "JOB_ID=$JOB_ID"\n')
    proc = tool.run("crontab", "-", input="0 0 1 1 * qsub tick.sh\n")
    assert proc.returncode == 0, proc.stderr
    cron = tool.kubectl_json("get", "cronjobs")["items"][0]["metadata"]["name"]
    for n in (1, 2):  # two runs, started now instead of waiting for the schedule
        tool.sandbox.kubectl("-n", tool.namespace, "create", "job", f"run{n}", f"--from=cronjob/{cron}")
    logs = tool.home / "cronlogs"
    tool.wait_for(lambda: len(list(logs.glob("tick.sh.o*"))) == 2, timeout=60, what="two runs' output files")
    ids = {p.name.rsplit(".o", 1)[1]: lines_of(p)["JOB_ID"] for p in logs.glob("tick.sh.o*")}
    assert len(ids) == 2 and all(k == v and v.isdigit() for k, v in ids.items()), ids


def test_jsub_refuses_a_program_word_with_spaces_it_cannot_find(tool: Tool) -> None:
    r = tool.run("jsub", "-N", "x", "no such program")
    assert r.returncode == 2 and r.stderr.endswith("jsub: error: argument program: Program 'no such program' "
                                                   "not found.\n"), r.stderr
    assert tool.kubectl_json("get", "jobs")["items"] == []


def test_qdel_during_sync_is_the_signal_line_and_exit_1(tool: Tool) -> None:

    waiter = tool.start("qsub", "-sync", "y", "-N", "victim", "-b", "y", "/bin/sleep", "300")
    try:
        def running() -> str:
            rows = [line.split() for line in tool.run("qstat").stdout.splitlines()[2:]]
            return next((r[0] for r in rows if r[2] == "victim" and r[4] == "r"), "")

        job_id = tool.wait_for(running, timeout=60, what="the job to run")
        assert tool.run("qdel", job_id).returncode == 0
        out, err = waiter.communicate(timeout=90)
    finally:
        waiter.kill()
    assert waiter.returncode == 1, (out, err)
    assert out == f'Your job {job_id} ("victim") has been submitted\n'
    assert err == f"Job {job_id} exited because of signal SIGKILL\n"


@pytest.mark.needs_shared_home("the job runs scripts written into the tool's home and the test reads what they write")
def test_a_crontab_qsub_line_reads_the_script_at_each_run(tool: Tool) -> None:
    mkdir(tool, "cl")
    script = write(tool, "each.sh", '#$ -o cl/ -j y\necho "first version"\n')
    proc = tool.run("crontab", "-", input="0 0 1 1 * qsub each.sh\n")
    assert proc.returncode == 0, proc.stderr
    assert "install the crontab again" in proc.stderr  # the #$ lines were read now, the body is not
    script.write_text('#$ -o cl/ -j y\necho "second version"\n')
    cron = tool.kubectl_json("get", "cronjobs")["items"][0]["metadata"]["name"]
    tool.sandbox.kubectl("-n", tool.namespace, "create", "job", "now1", f"--from=cronjob/{cron}")
    logs = tool.home / "cl"
    tool.wait_for(lambda: any(p.read_text() for p in logs.glob("each.sh.o*")), timeout=60, what="the run's output")
    assert [p.read_text() for p in logs.glob("each.sh.o*")] == ["second version\n"]
