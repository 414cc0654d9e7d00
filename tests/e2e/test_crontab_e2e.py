"""crontab end to end: the installed `crontab` command, as the tool's uid, against the sandbox control plane.

The CronJob controller of the real kube-controller-manager starts the runs; the sandbox node agent
executes them, so the output files are real files in the tool's home.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from conftest import lines_of, mkdir

pytestmark = pytest.mark.e2e

# The CronJob controller starts a `* * * * *` run at the next minute; on a busy shared sandbox the pod
# may take a few minutes more to start, so wait generously (this bounds the wait; nothing is timed).
TICK_WAIT = 420


@pytest.fixture
def tools() -> Iterator[list[Any]]:
    """Tools whose crontab and jobs are removed after the test, so no schedule keeps firing in the sandbox."""
    made: list[Any] = []
    yield made
    for t in made:
        t.run("crontab", "-r")
        t.sandbox.kubectl("-n", t.namespace, "delete", "jobs", "--all", "--wait=false", check=False)


@pytest.fixture
def tool(make_tool: Callable[..., Any], tools: list[Any]) -> Any:
    t = make_tool()
    tools.append(t)
    return t


def write(tool: Any, rel: str, content: str | bytes, mode: int = 0o644) -> Path:
    """A file in the tool's home, owned by the tool (the pods run as its uid)."""
    path = tool.home / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    for d in [p for p in path.relative_to(tool.home).parents if str(p) != "."]:
        _chown(tool, tool.home / d)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    path.chmod(mode)
    _chown(tool, path)
    return path


def _chown(tool: Any, path: Path) -> None:
    if os.geteuid() == 0:
        os.chown(path, tool.uid, tool.uid)


def crontab_l(tool: Any) -> bytes:
    proc = tool.run("crontab", "-l", input=b"")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def cronjobs(tool: Any) -> dict[str, Any]:
    return {o["metadata"]["name"]: o for o in tool.kubectl_json("get", "cronjobs")["items"]}


def container(cj: dict[str, Any]) -> dict[str, Any]:
    return cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]


def program_of(cj: dict[str, Any]) -> list[str]:
    return container(cj)["command"][8:]  # sh -c SCRIPT gridshim-job OUT ERR STDIN NOT_BEFORE, then the program


CRONTAB = (
    b"# gridshim e2e crontab: comments, blank lines and odd spacing are kept byte for byte\n"
    b"\n"
    b"MAILTO=\"\"\n"
    b"   # an indented comment\t\n"
    b"*/5 * * * *   jsub -once -N poller -mem 256m /bin/true\n"
    b"@daily\t\tjsub -once -N nightly /bin/echo nightly\n"
    b"CRON_TZ=Europe/Berlin\n"
    b"30 4 * * 1-5 echo weekday >> ~/weekday.log\n"
    b"@weekly cd /tmp && ls > /dev/null\n"
    b"# no newline at the end of this file"
)


def test_install_then_list_is_byte_identical_with_one_cronjob_per_entry(tool: Any) -> None:
    write(tool, "my.cron", CRONTAB)
    proc = tool.run("crontab", "my.cron")
    assert proc.returncode == 0, proc.stderr
    assert "NOTE: some crontab entries have been modified to grid submissions." in proc.stderr
    assert crontab_l(tool) == CRONTAB

    cjs = cronjobs(tool)
    by_job = {cj["metadata"]["annotations"]["gridshim.io/name"]: cj for cj in cjs.values()}
    assert set(by_job) == {"poller", "nightly", "cron-7", "cron-8"} and len(cjs) == 4
    spec = {name: (cj["spec"]["schedule"], cj["spec"].get("timeZone"), cj["spec"]["concurrencyPolicy"])
            for name, cj in by_job.items()}
    assert spec == {"poller": ("*/5 * * * *", None, "Forbid"), "nightly": ("0 0 * * *", None, "Forbid"),
                    "cron-7": ("30 4 * * 1-5", "Europe/Berlin", "Forbid"),
                    "cron-8": ("0 0 * * 0", "Europe/Berlin", "Forbid")}
    assert by_job["poller"]["metadata"]["name"] == "poller"
    assert container(by_job["poller"])["resources"]["limits"]["memory"] == "256Mi"
    assert program_of(by_job["cron-7"]) == ["/bin/sh", "-c", "echo weekday >> ~/weekday.log"]
    assert container(by_job["cron-8"])["workingDir"] == "/tmp"
    assert all(cj["metadata"]["labels"]["gridshim.io/crontab"] == tool.name for cj in cjs.values())

    # Installing the same text again writes no CronJob.
    before = {n: cj["metadata"]["resourceVersion"] for n, cj in cjs.items()}
    assert tool.run("crontab", "my.cron").returncode == 0
    assert {n: cj["metadata"]["resourceVersion"] for n, cj in cronjobs(tool).items()} == before


@pytest.mark.needs_shared_home("reads the files the job writes in the tool's home")
def test_every_minute_entries_really_run_and_append_to_their_out_files(tool: Any) -> None:
    out = write(tool, "cron-1.out", "before\n", mode=0o660)
    write(tool, "minutely.out", "earlier\n", mode=0o660)
    text = ("# line 0\n"
            "* * * * * echo \"tick $HOME $(date +\\%Y)\"\n"
            "* * * * * jsub -once -quiet -N minutely /bin/echo from jsub\n")
    proc = tool.run("crontab", "-", input=text)
    assert proc.returncode == 0, proc.stderr

    def ran() -> bool:
        return "tick" in out.read_text() and "from jsub" in (tool.home / "minutely.out").read_text()

    tool.wait_for(ran, timeout=TICK_WAIT, interval=2, what="the * * * * * entries to run")
    lines = out.read_text().splitlines()
    assert lines[0] == "before" and lines[1].startswith(f"tick {tool.home} 2")  # appended; ~ and $HOME are the home
    assert (tool.home / "minutely.out").read_text().splitlines()[:2] == ["earlier", "from jsub"]


def test_invalid_file_is_refused_whole_and_the_installed_crontab_stays(tool: Any) -> None:
    good = "@hourly jsub -once -N keep /bin/true\n"
    assert tool.run("crontab", "-", input=good).returncode == 0
    before = {n: cj["metadata"]["resourceVersion"] for n, cj in cronjobs(tool).items()}
    bad = ("@daily jsub -once -N new1 /bin/true\n"
           "# fine\n"
           "61 * * * * jsub -once -N new2 /bin/true\n"
           "@reboot ~/start.sh\n"
           "@hourly jsub -once -N new3 -mem 1.5g /bin/true\n")
    write(tool, "bad.cron", bad)
    proc = tool.run("crontab", "bad.cron")
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "\"bad.cron\":3: bad minute field '61': 61 is out of range (0-59)",
        f"\"bad.cron\":4: {_reboot()}",
        "\"bad.cron\":5: jsub: argument -mem: expected an integer followed by 'k', 'm' or 'g'. '1.5g' given.",
        "errors in crontab file, can't install.",
    ]
    assert crontab_l(tool) == good.encode()
    assert {n: cj["metadata"]["resourceVersion"] for n, cj in cronjobs(tool).items()} == before


def _reboot() -> str:
    from gridshim.crontab import REBOOT_HELP

    return REBOOT_HELP


def test_remove_removes_exactly_this_crontabs_cronjobs(tool: Any, make_tool: Any, tools: list[Any]) -> None:
    other = make_tool("o")
    tools.append(other)
    assert other.run("crontab", "-", input="@daily jsub -once -N theirs /bin/true\n").returncode == 0
    tool.sandbox.kubectl("-n", tool.namespace, "create", "cronjob", "handmade", "--image=sandbox.local/base",
                         "--schedule=0 0 * * *", "--", "/bin/true")
    text = "@daily jsub -once -N mine /bin/true\n*/10 * * * * echo hi\n"
    assert tool.run("crontab", "-", input=text).returncode == 0
    assert len(cronjobs(tool)) == 3

    proc = tool.run("crontab", "-r", "-i", input="maybe\nn\n")
    assert proc.returncode == 0
    assert proc.stdout == (f"crontab: really delete tools.{tool.name}'s crontab? (y/n) Please enter Y or N: ")
    assert len(cronjobs(tool)) == 3

    proc = tool.run("crontab", "-r")
    assert proc.returncode == 0, proc.stderr
    assert list(cronjobs(tool)) == ["handmade"]
    assert list(cronjobs(other)) == ["theirs"]
    proc = tool.run("crontab", "-l")
    assert (proc.returncode, proc.stderr) == (1, f"no crontab for tools.{tool.name}\n")
    assert tool.run("crontab", "-r").stderr == f"no crontab for tools.{tool.name}\n"

    # The removed crontab is kept as the previous version: this is the undo.
    assert tool.run("crontab", "--previous", input=b"").stdout == text.encode()
    assert tool.run("/bin/sh", "-c", "crontab --previous | crontab -", shell=False).returncode == 0
    assert crontab_l(tool) == text.encode() and len(cronjobs(tool)) == 3


REAL = (
    "0   0   *   *   0   /usr/bin/jsub -N taxonomy -mem 512m -once ~/py35-stretch/bin/python ~/libera/taxonomy.py > /dev/null\n"
    "49 3 * * * cd ancientpages && jsub -once -j y -cwd -N ancientpages -mem 368m -o ancientpages.log run.sh\n"
    "45 */2 * * * /usr/bin/jsub -l release=trusty -N cron-tools.database_backup -e $HOME/logs/cron.err "
    "-o $HOME/logs/cron.out -once -quiet \"$HOME/apps/utils/database_backup.sh\" &> /dev/null\n"
    "* * * * * /usr/bin/jsub -once -quiet ~/apps/cluebot3/bigbrother.sh cluebot3 -e /dev/null -o /dev/null "
    "~/apps/cluebot3/run_bot.sh\n"
)


@pytest.mark.needs_shared_home("the job runs scripts written into the tool's home and the test reads what they write")
def test_the_four_real_entries_install_map_and_run(tool: Any) -> None:
    h = str(tool.home)
    write(tool, "py35-stretch/bin/python", "#!/bin/sh\nexec python3 \"$@\"\n", mode=0o755)
    write(tool, "libera/taxonomy.py", "print('taxonomy')\n")
    write(tool, "ancientpages/run.sh", "#!/bin/sh\necho ancient\n", mode=0o755)
    write(tool, "apps/utils/database_backup.sh", "#!/bin/sh\necho backup\n", mode=0o755)
    write(tool, "apps/cluebot3/bigbrother.sh", "#!/bin/sh\necho \"bigbrother args: $*\"\n", mode=0o755)
    write(tool, "apps/cluebot3/run_bot.sh", "#!/bin/sh\necho bot\n", mode=0o755)
    proc = tool.run("crontab", "-", input=REAL)
    assert proc.returncode == 0, proc.stderr
    assert "NOTE" not in proc.stderr and "warning" not in proc.stderr  # all grid lines; all programs found
    assert crontab_l(tool) == REAL.encode()

    by_job = {cj["metadata"]["annotations"]["gridshim.io/name"]: cj for cj in cronjobs(tool).values()}
    assert set(by_job) == {"taxonomy", "ancientpages", "cron-tools.database_backup", "bigbrother"}

    t = by_job["taxonomy"]
    assert (t["spec"]["schedule"], t["spec"]["concurrencyPolicy"]) == ("0 0 * * 0", "Forbid")
    assert program_of(t) == [f"{h}/py35-stretch/bin/python", f"{h}/libera/taxonomy.py"]
    assert container(t)["command"][4:6] == [f"{h}/taxonomy.out", f"{h}/taxonomy.err"]
    assert container(t)["resources"]["limits"]["memory"] == "512Mi"

    a = by_job["ancientpages"]
    assert a["spec"]["schedule"] == "49 3 * * *" and program_of(a) == [f"{h}/ancientpages/run.sh"]
    assert container(a)["workingDir"] == f"{h}/ancientpages"
    assert container(a)["command"][4:6] == [f"{h}/ancientpages/ancientpages.log"] * 2  # -j y, relative to -cwd
    assert container(a)["resources"]["limits"]["memory"] == "368Mi"

    b = by_job["cron-tools.database_backup"]
    assert b["spec"]["schedule"] == "45 */2 * * *" and b["metadata"]["name"].startswith("cron-tools-database-backup-")
    assert program_of(b) == [f"{h}/apps/utils/database_backup.sh"]
    assert container(b)["command"][4:6] == [f"{h}/logs/cron.out", f"{h}/logs/cron.err"]

    c = by_job["bigbrother"]
    args = ["cluebot3", "-e", "/dev/null", "-o", "/dev/null", f"{h}/apps/cluebot3/run_bot.sh"]
    assert c["spec"]["schedule"] == "* * * * *" and program_of(c) == [f"{h}/apps/cluebot3/bigbrother.sh", *args]
    assert container(c)["command"][4:6] == [f"{h}/bigbrother.out", f"{h}/bigbrother.err"]

    # The every-minute one runs: -e/-o after the program reached the program, not jsub.
    out = tool.home / "bigbrother.out"
    tool.wait_for(lambda: out.exists() and "bigbrother args" in out.read_text(), timeout=TICK_WAIT, interval=2,
                  what="bigbrother to run")
    assert out.read_text().splitlines()[0] == "bigbrother args: " + " ".join(args)


@pytest.mark.needs_shared_home("the job runs scripts written into the tool's home and the test reads what they write")
def test_jstart_watchdog_line_keeps_one_continuous_job(tool: Any) -> None:
    write(tool, "bot.sh", "#!/bin/sh\necho started >> \"$HOME/bot.log\"\nexec sleep 3600\n", mode=0o755)
    proc = tool.run("crontab", "-", input="* * * * * jstart -N bot -mem 256m ~/bot.sh\n")
    assert proc.returncode == 0, proc.stderr
    (cj,) = cronjobs(tool).values()
    assert cj["spec"]["concurrencyPolicy"] == "Forbid"
    assert cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"
    log = tool.home / "bot.log"
    tool.wait_for(log.exists, timeout=TICK_WAIT, interval=2, what="the watchdog to start the bot")

    def active_jobs() -> list[dict[str, Any]]:
        return [j for j in tool.kubectl_json("get", "jobs")["items"] if not (j.get("status") or {}).get("conditions")]

    jobs = active_jobs()
    assert len(jobs) == 1 and jobs[0]["metadata"]["labels"]["gridshim.io/queue"] == "continuous"
    assert tool.run("crontab", "-r").returncode == 0
    # Removing the line leaves the running bot alone (the grid never killed a running job either).
    assert [j["metadata"]["name"] for j in active_jobs()] == [jobs[0]["metadata"]["name"]]
    tool.sandbox.kubectl("-n", tool.namespace, "delete", "job", jobs[0]["metadata"]["name"], "--wait=false")


def test_edit(tool: Any) -> None:
    assert tool.run("crontab", "-", input="@daily jsub -once -N before /bin/true\n").returncode == 0
    proc = tool.run("crontab", "-e", env={"EDITOR": "true", "VISUAL": ""})
    assert (proc.returncode, proc.stderr) == (0, "No modification made\n")
    proc = tool.run("crontab", "-e", env={"VISUAL": "sed -i s/before/after/"})
    assert proc.returncode == 0, proc.stderr
    assert crontab_l(tool) == b"@daily jsub -once -N after /bin/true\n" and list(cronjobs(tool)) == ["after"]
    proc = tool.run("crontab", "-e", env={"VISUAL": "truncate -s 0"})
    assert proc.returncode == 1 and "cowardly refusing to install empty crontab" in proc.stderr
    assert list(cronjobs(tool)) == ["after"]
    # A bad edit: cron asks whether to retry; "n" keeps the edit in a file and installs nothing.
    proc = tool.run("crontab", "-e", env={"VISUAL": "sed -i s/@daily/@dialy/"}, input="n\n")
    assert proc.returncode == 1 and "bad time specifier '@dialy'" in proc.stderr
    assert "Do you want to retry the same edit? (y/n) " in proc.stderr and "your edit is kept in" in proc.stderr
    assert list(cronjobs(tool)) == ["after"]


def test_twenty_concurrent_installs_end_in_exactly_one(tool: Any) -> None:
    texts = []
    for i in range(20):
        lines = [f"# crontab {i}"]
        lines += [f"{(i + j) % 60} * * * * jsub -once -N c{i}-{j} /bin/true" for j in range(5)]
        lines += [f"0 0 * * * jsub -once -N shared /bin/echo {i}", f"*/7 * * * * echo plain {i}"]
        texts.append("\n".join(lines) + "\n")
    with ThreadPoolExecutor(max_workers=20) as pool:
        procs = list(pool.map(lambda t: tool.run("crontab", "-", input=t), texts))
    winners = [p for p in procs if p.returncode == 0]
    losers = [p for p in procs if p.returncode != 0]
    assert winners, [p.stderr for p in procs]
    for p in losers:
        assert "was changed by another crontab command at the same time; yours was not installed" in p.stderr, p.stderr

    installed = crontab_l(tool).decode()
    assert installed in texts
    i = texts.index(installed)
    cjs = cronjobs(tool)
    names = {cj["metadata"]["annotations"]["gridshim.io/name"] for cj in cjs.values()}
    assert names == {f"c{i}-{j}" for j in range(5)} | {"shared", "cron-7"}
    assert len(cjs) == 7
    assert program_of(next(cj for cj in cjs.values() if cj["metadata"]["annotations"]["gridshim.io/name"] == "shared")) \
        == ["/bin/echo", str(i)]
    assert {cj["metadata"]["annotations"]["gridshim.io/command"] for cj in cjs.values()
            if cj["metadata"]["annotations"]["gridshim.io/name"] == "cron-7"} == {f"echo plain {i}"}
    assert len({cj["metadata"]["annotations"]["gridshim.io/crontab-serial"] for cj in cjs.values()}) == 1


def test_dry_run_contacts_nothing(tool: Any) -> None:
    proc = tool.run("crontab", "--dry-run", "-", input="@daily jsub -once -N a /bin/true\n",
                    env={"KUBECONFIG": "/nonexistent"})
    assert proc.returncode == 0, proc.stderr
    assert "kind: CronJob" in proc.stdout and "name: a\n" in proc.stdout
    assert cronjobs(tool) == {}


@pytest.mark.needs_shared_home("the job runs a script written into the tool's home and the test reads what it writes")
def test_jsub_line_runs_get_their_own_job_id_and_output_file(tool: Any) -> None:
    """Issue 11 Deliver 4 for a *jsub* crontab line (test_qsub_e2e.py::test_cronjob_runs_get_their_own_job_id
    is the qsub one): each CronJob run has its own JOB_ID, the one qstat shows, and `-o DIR` gives each run
    its own DIR/NAME.oJOB_ID (before: every run appended to DIR/NAME.o0)."""
    mkdir(tool, "jcron")
    write(tool, "jtick.sh", '#!/bin/sh\necho "JOB_ID=$JOB_ID"\n', mode=0o755)
    proc = tool.run("crontab", "-", input="0 0 1 1 * jsub -N jtick -o jcron -j y jtick.sh\n")
    assert proc.returncode == 0, proc.stderr
    cron = cronjobs(tool)
    assert len(cron) == 1
    name = next(iter(cron))
    for n in (1, 2):  # two runs, started now instead of waiting for the schedule
        tool.sandbox.kubectl("-n", tool.namespace, "create", "job", f"jrun{n}", f"--from=cronjob/{name}")
    logs = tool.home / "jcron"
    tool.wait_for(lambda: len([p for p in logs.glob("jtick.o*") if p.read_text()]) == 2, timeout=120,
                  what="two runs' output files")
    ids = {p.name.rsplit(".o", 1)[1]: lines_of(p)["JOB_ID"] for p in logs.glob("jtick.o*")}
    assert len(ids) == 2 and all(k == v and v.isdigit() and v != "0" for k, v in ids.items()), ids
    shown = tool.run("qstat", "-s", "z").stdout + tool.run("qstat").stdout
    assert all(i in shown for i in ids), shown
