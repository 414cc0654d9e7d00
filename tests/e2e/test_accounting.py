"""Issue 16: every finished job gets one accounting record, and finished jobs never block new ones.
On the real sandbox, under Toolforge's default quota, through the installed commands, as the tool's uid.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from conftest import Tool

QACCT_WAIT = 120  # a record is written as the job's wrapper's last act, or by a backstop after it


def qacct_blocks(tool: Tool, spec: str) -> list[dict[str, str]]:
    """`qacct -j SPEC` as run by the tool, one dict per block (label → value, trailing blanks kept); []
    when qacct says the job is not (yet) accounted."""
    r = tool.run("qacct", "-j", spec)
    if r.returncode == 1 and ("not found" in r.stderr or r.stdout == "no jobs running since startup\n"):
        return []  # not yet accounted, or no job of the tool has ended yet (no file)
    assert r.returncode == 0, (r.stdout, r.stderr)
    blocks = []
    for chunk in r.stdout.split("=" * 62 + "\n")[1:]:
        blocks.append({line[:13].rstrip(): line[13:] for line in chunk.splitlines()})
    return blocks


def accounted(tool: Tool, spec: str, *, count: int = 1) -> list[dict[str, str]]:
    """The blocks of SPEC once it has COUNT of them; a few seconds more show that no other one comes."""
    blocks = tool.wait_for(lambda: [b for b in [qacct_blocks(tool, spec)] if len(b) >= count],
                           timeout=QACCT_WAIT, interval=1, what=f"{count} qacct record(s) of {spec}")[0]
    time.sleep(3)
    again = qacct_blocks(tool, spec)
    assert again == blocks and len(blocks) == count, (blocks, again)
    return blocks


def status_of(block: dict[str, str]) -> tuple[str, str]:
    return block["failed"].rstrip(), block["exit_status"].rstrip()


KILLED = ("100 : assumedly after job", "137                  (Killed)")


def job_id_of(out: str) -> str:
    m = re.search(r"^Your job (\d+) \(", out, re.M) or re.search(r"^(\d+)", out)
    assert m, out
    return m.group(1)


def wait_running(tool: Tool, job_id: str) -> None:
    def running() -> bool:
        return bool(re.search(rf"^\s*{job_id} .* r ", tool.run("qstat").stdout, re.M))

    tool.wait_for(running, timeout=90, what=f"job {job_id} to run")


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
    for i, job_id in enumerate(codes):  # each through qacct, as a client reads it: one block, its own status
        (block,) = qacct_blocks(tool, str(job_id))
        assert (block["jobname"].rstrip(), block["jobnumber"].rstrip()) == (f"quick{i}", str(job_id)), block
        assert (block["failed"].rstrip(), block["exit_status"].rstrip()) == ("0", str(i % 4)), block
    mode = (tool.home / ".gridshim" / "accounting").stat().st_mode & 0o777
    assert mode == 0o600  # readable by the tool only


def test_qdel_f_of_a_running_job_is_recorded_as_killed(tool: Tool) -> None:
    r = tool.run("qsub", "-terse", "-N", "victim", "-b", "y", "/bin/sleep", "300")
    assert r.returncode == 0, r.stderr
    job_id = r.stdout.strip()
    wait_running(tool, job_id)
    assert tool.run("qdel", "-f", job_id).returncode == 0
    tool.wait_for(lambda: tool.run("qstat", "-j", job_id).returncode == 1, timeout=60, what="the job to go")
    (block,) = accounted(tool, job_id)  # the backstop's, and no second one from the wrapper
    assert status_of(block) == KILLED, block


@pytest.mark.needs_shared_home("qacct reads the accounting records the jobs' wrapper appends in the tool's home")
@pytest.mark.parametrize("how", ["h_rt", "qdel"])
def test_a_job_past_its_h_rt_or_qdeld_while_running_is_recorded_as_killed(tool: Tool, how: str) -> None:
    """Both reach the wrapper as a TERM (activeDeadlineSeconds, the graceful delete); SGE killed such a
    job with SIGKILL: `failed 100`, `exit_status 137 (Killed)`, as `-sync y` reports it."""
    limit = ("-l", "h_rt=0:0:5") if how == "h_rt" else ()
    r = tool.run("qsub", "-terse", "-N", f"long-{how}", *limit, "-b", "y", "/bin/sleep", "300")
    assert r.returncode == 0, r.stderr
    job_id = r.stdout.strip()
    wait_running(tool, job_id)
    if how == "qdel":
        assert tool.run("qdel", job_id).returncode == 0
    tool.wait_for(lambda: tool.run("qstat", "-j", job_id).returncode == 1, timeout=120, what="the job to go")
    (block,) = accounted(tool, job_id)
    assert status_of(block) == KILLED, block
    grep = tool.run(f"qacct -j {job_id} | grep -E 'failed|exit_status'", shell=True)
    assert grep.stdout == "failed       100 : assumedly after job\nexit_status  137                  (Killed)\n", grep


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


# -- qacct -j of a real job against a golden file; one record per end for jsub, crontab and jstart ---------

CTIME = re.compile(r"[A-Z][a-z]{2} [A-Z][a-z]{2} [ 1-3]\d \d\d:\d\d:\d\d \d{4}")


def normalised(out: str, *, tool: Tool, job_id: str) -> str:
    """qacct's output with what differs from run to run (times, the pod's name, the tool, the id, the
    measured usage) replaced by a placeholder padded to the width of what it replaces, so every line keeps
    SGE's layout, trailing blanks included, byte for byte."""
    def same_width(value: str, placeholder: str) -> str:
        return placeholder + " " * max(0, len(value) - len(placeholder))

    lines = []
    for line in out.splitlines(keepends=True):
        label, value = line[:13], line[13:]
        body, nl = value.rstrip("\n"), value[len(value.rstrip("\n")):]
        key = label.rstrip()
        if key in ("qsub_time", "start_time", "end_time"):
            assert CTIME.fullmatch(body), line
            body = "Ddd Mmm DD HH:MM:SS YYYY"
        elif key == "hostname":
            assert body.rstrip().startswith("golden-"), line  # the pod's name
            body = same_width(body, "<pod name>")
        elif key in ("group", "owner"):
            assert body.rstrip() == f"tools.{tool.name}", line
            body = same_width(body, "tools.<tool>")
        elif key == "jobnumber":
            assert body.rstrip() == job_id, line
            body = same_width(body, "<id>")
        elif key == "ru_wallclock":
            assert re.fullmatch(r"\d+s", body), line
            body = "<N>s"
        elif key in ("ru_utime", "ru_stime", "cpu"):
            assert re.fullmatch(r"\d+\.\d{3}s", body), line
            body = "<N.NNN>s"
        elif key in ("ru_maxrss", "maxvmem"):
            assert re.fullmatch(r"\d+\.\d{3}(|K|M|G|T)B", body), line
            body = "<N.NNN>B"
        lines.append(label + body + nl if len(line) > 13 else line)
    return "".join(lines)


@pytest.mark.needs_shared_home("qacct reads the accounting records the jobs' wrapper appends in the tool's home")
def test_qacct_j_of_a_real_job_matches_its_golden_file(tool: Tool) -> None:
    from kit.golden import golden

    r = tool.run("qsub", "-terse", "-N", "golden", "-l", "h_vmem=256M", input="exit 3\n")
    assert r.returncode == 0, r.stderr
    job_id = r.stdout.strip()
    accounted(tool, job_id)
    out = tool.run("qacct", "-j", job_id)
    assert out.returncode == 0 and out.stderr == "", out
    golden("qacct_e2e.txt", normalised(out.stdout, tool=tool, job_id=job_id))


@pytest.mark.needs_shared_home("qacct reads the accounting records the jobs' wrapper appends in the tool's home")
def test_a_jsub_job_gets_one_record(tool: Tool) -> None:
    r = tool.run("jsub", "-N", "jsubacct", "/bin/sh", "-c", "exit 4")
    assert r.returncode == 0, r.stderr
    job_id = job_id_of(r.stdout)
    (block,) = accounted(tool, job_id)
    assert (block["jobname"].rstrip(), block["qname"].rstrip(), *status_of(block)) == ("jsubacct", "task", "0", "4")
    assert [b["jobnumber"].rstrip() for b in accounted(tool, "jsubacct")] == [job_id]  # by name, too


@pytest.mark.needs_shared_home("qacct reads the accounting records the jobs' wrapper appends in the tool's home")
def test_a_continuous_job_gets_one_record_per_run(tool: Tool) -> None:
    """jstart respawns the program in its pod: each end of it is an attempt with its own record."""
    from conftest import write

    write(tool, "twice.sh", "#!/bin/sh\n[ -e \"$HOME/ran-once\" ] && exit 0\n: >\"$HOME/ran-once\"; exit 7\n", 0o755)
    r = tool.run("jstart", "-N", "keepacct", str(tool.home / "twice.sh"))
    assert r.returncode == 0, r.stderr
    blocks = accounted(tool, "keepacct", count=2)
    assert [status_of(b) for b in blocks] == [("0", "7"), ("0", "0")], blocks
    assert {b["qname"].rstrip() for b in blocks} == {"continuous"} and len({b["jobnumber"] for b in blocks}) == 1
    assert blocks[0]["start_time"] != blocks[1]["start_time"]  # two runs, 5 s apart, not one run twice


@pytest.mark.needs_shared_home("qacct reads the accounting records the jobs' wrapper appends in the tool's home")
def test_a_crontab_run_gets_one_record(tool: Tool) -> None:
    """A CronJob's run learns its id from its Job's uid; its record is found by name and by that id."""
    r = tool.run("crontab", "-", input="* * * * * jsub -once -quiet -N cronacct /bin/sh -c 'exit 5'\n")
    assert r.returncode == 0, r.stderr
    try:
        (block,) = tool.wait_for(lambda: qacct_blocks(tool, "cronacct")[:1], timeout=420, interval=3,
                                 what="the crontab entry's first run to be accounted")
    finally:
        tool.run("crontab", "-r")
    assert status_of(block) == ("0", "5"), block
    job_id = block["jobnumber"].rstrip()
    assert re.fullmatch(r"[1-9]\d{6}", job_id), block
    assert [status_of(b) for b in qacct_blocks(tool, job_id)] == [("0", "5")]  # one record of that run


# -- memory: the program's own failure under h_vmem, and a container SIGKILLed whole ----------------------

ALLOC = "import sys\nb = bytearray(400 * 1024 * 1024)\nprint(len(b))\n"


@pytest.mark.needs_shared_home("qacct reads the accounting records the jobs' wrapper appends in the tool's home")
def test_a_job_over_its_h_vmem_gets_one_record(tool: Tool) -> None:
    """The sandbox enforces h_vmem as the address-space limit, as SGE's setrlimit did: the allocation
    fails, the program exits 1 (MemoryError), and its wrapper records that (failed 0: it ended itself)."""
    from conftest import write

    write(tool, "alloc.py", ALLOC)
    r = tool.run("qsub", "-terse", "-N", "hog", "-l", "h_vmem=150M", "-b", "y", "/usr/bin/python3",
                 str(tool.home / "alloc.py"))
    assert r.returncode == 0, r.stderr
    job_id = r.stdout.strip()
    (block,) = accounted(tool, job_id)
    assert status_of(block) == ("0", "1"), block
    assert "MemoryError" in (tool.home / f"hog.e{job_id}").read_text()
    assert block["category"].strip() == "-l h_vmem=157286400", block


@pytest.mark.needs_shared_home("qacct reads the accounting records the jobs' wrapper appends in the tool's home")
def test_a_container_killed_whole_is_recorded_by_the_sweep_before_anyone_runs_qacct(tool: Tool) -> None:
    """What an OOM kill of the whole container (cgroup v2's memory.oom.group) or a lost node does: the
    wrapper dies with the program and writes nothing. A dependent job keeps the gridshim-release CronJob
    running; its sweep writes the record (failed 100, 137: SGE's words for a job killed by a signal)
    from the Failed Job, with nobody running qacct, long before the Job's TTL."""
    from conftest import write

    write(tool, "killall.sh", "#!/bin/sh\nsleep 2\nkill -KILL 0\n", 0o755)
    r = tool.run("qsub", "-terse", "-N", "wiped", str(tool.home / "killall.sh"))
    assert r.returncode == 0, r.stderr
    job_id = r.stdout.strip()
    after = tool.run("qsub", "-terse", "-N", "after", "-hold_jid", job_id, "-b", "y", "/bin/true")
    assert after.returncode == 0, after.stderr
    path = tool.home / ".gridshim" / "accounting"

    def lines() -> list[list[str]]:
        return [f for f in (line.split(":") for line in path.read_text().splitlines()) if f[5] == job_id] \
            if path.exists() else []

    recorded = tool.wait_for(lines, timeout=300, interval=2, what="the sweep to write the killed job's record")
    assert len(recorded) == 1 and recorded[0][45].endswith("/backstop"), recorded  # no wrapper wrote one
    (block,) = accounted(tool, job_id)
    assert status_of(block) == KILLED, block
