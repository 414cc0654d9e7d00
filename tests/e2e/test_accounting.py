"""Issue 16: every finished job gets one accounting record, and finished jobs never block new ones.
On the real sandbox, under Toolforge's default quota, through the installed commands, as the tool's uid.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from conftest import Tool


def records(tool: Tool) -> list[list[str]]:
    path = tool.home / ".gridshim" / "accounting"
    return [line.split(":") for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.needs_shared_home("qacct reads the accounting records the jobs' wrapper appends in the tool's home")
def test_sequential_short_jobs_under_the_default_quota_are_all_accepted_and_recorded(make_tool: Any) -> None:
    from sandbox.tenancy import TOOLFORGE_QUOTA

    tool = make_tool("aq", quota=dict(TOOLFORGE_QUOTA))  # count/jobs.batch: 15; finished Jobs stay 300 s
    n = 100  # the figure: far more than the quota's 15 Jobs, one after another
    codes = []
    for i in range(n):
        r = tool.run("qsub", "-sync", "y", "-terse", "-N", f"quick{i}", input=f"exit {i % 4}\n")
        assert r.returncode == i % 4, (i, r.stdout, r.stderr)  # never refused with exit 25
        codes.append(int(r.stdout.split()[0]))
    recs = records(tool)
    by_id = {int(f[5]): f for f in recs}
    assert sorted(by_id) == sorted(codes) and len(recs) == n  # exactly one record each
    for i, job_id in enumerate(codes):
        f = by_id[job_id]
        assert (f[4], f[11], f[12]) == (f"quick{i}", "0", str(i % 4)), f
    mode = (tool.home / ".gridshim" / "accounting").stat().st_mode & 0o777
    assert mode == 0o600  # readable by the tool only


def test_qdel_f_of_a_running_job_is_recorded_as_killed(tool: Tool) -> None:
    r = tool.run("qsub", "-terse", "-N", "victim", "-b", "y", "/bin/sleep", "300")
    assert r.returncode == 0, r.stderr
    job_id = r.stdout.strip()

    def running() -> bool:
        return bool(re.search(rf"^\s*{job_id} .* r ", tool.run("qstat").stdout, re.M))

    tool.wait_for(running, timeout=60, what="the job to run")
    assert tool.run("qdel", "-f", job_id).returncode == 0
    tool.wait_for(lambda: tool.run("qstat", "-j", job_id).returncode == 1, timeout=60, what="the job to go")
    mine = [f for f in records(tool) if f[5] == job_id]
    assert len(mine) == 1 and (mine[0][11], mine[0][12]) == ("100", "137"), mine


@pytest.mark.needs_shared_home("qacct reads the accounting records the jobs' wrapper appends in the tool's home")
def test_clients_read_the_exit_status_from_qacct_once_qstat_lets_go(tool: Tool) -> None:
    """Toil's and Snakemake's pattern: wait while `qstat -j ID` succeeds, then `qacct -j ID | grep
    exit_status` (two spaces, as SMK's regex wants), for exit codes 0, 3 and 137."""
    for code, script in ((0, "exit 0\n"), (3, "exit 3\n"), (137, "kill -9 $$\n")):
        r = tool.run("qsub", "-terse", "-N", f"c{code}", input=script)
        assert r.returncode == 0, r.stderr
        job_id = r.stdout.strip()
        loop = (f"while qstat -j {job_id} >/dev/null 2>&1; do sleep 0.5; done; "
                f"qacct -j {job_id} | grep exit_status")
        out = tool.run(loop, shell=True, timeout=120)
        assert re.fullmatch(rf"exit_status  {code} +.*\n", out.stdout), (code, out.stdout, out.stderr)
        if code == 137:
            failed = tool.run(f"qacct -j {job_id} | grep failed", shell=True).stdout
            assert failed.startswith("failed       100 : assumedly after job"), failed
    gone = tool.run("qacct", "-j", "9999999")
    assert (gone.returncode, gone.stderr) == (1, "error: job id 9999999 not found\n")


def test_qstat_s_z_j_shows_a_recently_finished_job(tool: Tool) -> None:
    r = tool.run("qsub", "-sync", "y", "-terse", "-N", "donejob", input="exit 0\n")
    assert r.returncode == 0
    job_id = r.stdout.split()[0]
    assert tool.run("qstat", "-j", job_id).returncode == 1  # finished: gone for qstat -j, as on the grid
    z = tool.run("qstat", "-s", "z", "-j", "donejob")
    assert z.returncode == 0 and f"job_number:                 {job_id}" in z.stdout, z.stdout + z.stderr
