"""Rendering: golden manifests per scenario, labels/names/ids round trips, the command wrapper."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from gridshim import gridflags
from gridshim.config import Settings, Volume
from gridshim.model import Preset
from gridshim.render import labels as L, render, to_yaml
from gridshim.render.command import unwrap_command, wrap_command
from gridshim.translate import SubmitHost, translate
from kit import golden as assert_golden

HOST = SubmitHost(tool="demo", home="/data/project/demo", cwd="/data/project/demo", uid=52001,
                  now=1_800_000_000.0, token="0123456789abcdef", env={"USER": "tools.demo"})
SETTINGS = Settings(images={"default": "registry/bookworm:latest"},
                    volumes=(Volume(name="home", mount="/data/project", host_path="/data/project"),))


def request(*argv: str, preset: Preset = Preset.JSUB, **kw: object):  # type: ignore[no-untyped-def]
    opts = gridflags.parse(list(argv), default_mem=SETTINGS.default_mem)
    return translate(opts, preset=preset, settings=SETTINGS, host=HOST, program=opts.program or "",
                     command_line=" ".join(argv), **kw).request  # type: ignore[arg-type]


@pytest.mark.parametrize("golden,argv,preset,kw", [
    ("jsub_basic.yaml", ["/usr/bin/env"], Preset.JSUB, {}),
    ("jsub_once_mem_join.yaml", ["-once", "-mem", "1g", "-j", "y", "-o", "logs/x.log", "-l", "h_rt=1:00:00",
                                 "-N", "Bad_Name.x", "/bin/prog", "a b"], Preset.JSUB, {}),
    ("jstart_continuous.yaml", ["-N", "stewardbot", "-mem", "2G", "/usr/bin/python3", "-u", "bot.py"],
     Preset.JSTART, {}),
    ("cron_daily.yaml", ["-N", "taxonomy", "-once", "/usr/bin/python3", "t.py"], Preset.JSUB,
     {"schedule": "0 0 * * *", "schedule_text": "@daily", "timezone": "Europe/Berlin"}),
])
def test_golden_manifests(golden: str, argv: list[str], preset: Preset, kw: dict) -> None:
    assert_golden(golden, to_yaml(render(request(*argv, preset=preset, **kw), SETTINGS)))


def test_pod_is_restricted_compliant() -> None:
    (job,) = render(request("/bin/p"), SETTINGS)
    pod = job["spec"]["template"]["spec"]
    c = pod["containers"][0]["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == 52001
    assert c["allowPrivilegeEscalation"] is False and c["capabilities"] == {"drop": ["ALL"]}
    assert c["seccompProfile"] == {"type": "RuntimeDefault"}


def test_memory_request_policy() -> None:
    small = render(request("-mem", "256m", "/bin/p"), SETTINGS)[0]
    big = render(request("-mem", "2g", "/bin/p"), SETTINGS)[0]
    res = lambda j: j["spec"]["template"]["spec"]["containers"][0]["resources"]  # noqa: E731
    assert res(small)["requests"]["memory"] == "256Mi" == res(small)["limits"]["memory"]
    assert res(big)["requests"]["memory"] == "1Gi" and res(big)["limits"]["memory"] == "2Gi"
    mf = render(request("-l", "mem_free=100M", "/bin/p"), SETTINGS)[0]
    assert res(mf)["requests"]["memory"] == "100Mi"


@pytest.mark.parametrize("name", ["bot", "Bot", "bot_2", "bot.2", "cron-tools.database_backup", "ü", "a" * 80,
                                  "-lead", "x" * 57 + "Y"])
def test_object_names_are_valid_deterministic_and_distinct(name: str) -> None:
    import re

    n = L.object_name(name, limit=57)
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", n) and len(n) <= 57
    assert n == L.object_name(name, limit=57)
    v = L.label_value(name)
    assert re.fullmatch(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]", v) and len(v) <= 63


def test_distinct_names_never_collide() -> None:
    names = ["bot", "Bot", "bot_", "bot-", "bot.", "BOT", "b-o-t", "bot_2", "bot.2", "bot-2"]
    assert len({L.object_name(n) for n in names}) == len(names)
    assert len({L.label_value(n) for n in names}) == len(names)


def test_label_and_annotation_round_trip() -> None:
    req = request("-N", "cron-tools.database_backup", "-mem", "1g", "/bin/p")
    (job,) = render(req, SETTINGS)
    meta = {**job["metadata"], "uid": "u-1"}
    assert L.name_of(meta) == req.name
    assert L.job_id_of(meta) == req.job_id == L.job_id_for(req.token)
    assert L.options_of(meta)["mem"] == 1024 ** 3
    assert L.kind_of(meta).value == "one-off"


def test_wrap_unwrap_round_trip() -> None:
    req = request("-j", "y", "-i", "in.txt", "/bin/prog", "a b", "$(x)")
    (job,) = render(req, SETTINGS)
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert "$$(x)" in container["command"]  # survives the kubelet's $(VAR) expansion
    back = unwrap_command(container["command"])
    assert back is not None
    assert back["argv"] == ["/bin/prog", "a b", "$(x)"] and back["merge"] and back["stdin"] == "/data/project/demo/in.txt"
    assert unwrap_command(["/bin/true"]) is None


HOSTILE = ["a b", '"', "'", ";", "$(id)", "`id`", "*", "\n", "ü", "--", "$HOME", "\\", ""]


def test_wrapper_passes_arguments_byte_exact_through_a_real_shell(tmp_path: Path) -> None:
    req = request("-o", str(tmp_path / "o"), "-e", str(tmp_path / "e"), "/usr/bin/printf", "[%s]\\n", *HOSTILE)
    cmd = wrap_command(req)
    subprocess.run(cmd, check=True, cwd=tmp_path)
    assert (tmp_path / "o").read_text() == "".join(f"[{a}]\n" for a in HOSTILE)
    subprocess.run(cmd, check=True, cwd=tmp_path)  # appends, like the grid
    assert (tmp_path / "o").read_text().count("[a b]") == 2


def test_continuous_wrapper_respawns_with_jsubs_line(tmp_path: Path) -> None:
    counter = tmp_path / "n"
    script = tmp_path / "s.sh"
    script.write_text(f"#!/bin/sh\nn=$(cat {counter} 2>/dev/null || echo 0); echo $((n+1)) > {counter}; [ $n -ge 1 ]\n")
    script.chmod(0o755)
    req = request("-o", str(tmp_path / "o"), "-e", str(tmp_path / "e"), str(script), preset=Preset.JSTART)
    cmd = wrap_command(req)
    cmd[2] = cmd[2].replace("pause 5", "pause 0")
    assert subprocess.run(cmd).returncode == 0
    import re

    assert re.fullmatch(rf"\[[\dT:-]+\] {script} exited with code 1\. Respawning\.\.\.\n", (tmp_path / "e").read_text())


def test_dry_run_yaml_reads_back_to_the_same_manifests() -> None:
    import yaml

    manifests = render(request("-N", "x", "/bin/p", *HOSTILE), SETTINGS)
    assert list(yaml.safe_load_all(to_yaml(manifests))) == manifests


def _start_wrapper(tmp_path: Path, *argv: str, preset: Preset = Preset.JSUB, extra: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    req = request("-o", str(tmp_path / "o"), "-e", str(tmp_path / "e"), *extra, *argv, preset=preset)
    cmd = wrap_command(req)
    return subprocess.Popen(cmd, cwd=tmp_path, start_new_session=True)


TERM_AWARE = ("import signal, sys, time, pathlib\n"
              "def bye(*_): pathlib.Path(sys.argv[1]).write_text('got TERM'); sys.exit(3)\n"
              "signal.signal(signal.SIGTERM, bye)\n"
              "pathlib.Path(sys.argv[1] + '.ready').write_text('')\n"
              "time.sleep(60)\n")


@pytest.mark.parametrize("preset", [Preset.JSUB, Preset.JSTART])
def test_sigterm_to_the_wrapper_alone_reaches_the_program(tmp_path: Path, preset: Preset) -> None:
    """On a node only PID 1 (the wrapper) gets SIGTERM: it must forward it, and a continuous job stops."""
    import signal
    import sys
    import time

    marker = tmp_path / "m"
    proc = _start_wrapper(tmp_path, sys.executable, "-c", TERM_AWARE, str(marker), preset=preset)
    deadline = time.monotonic() + 20
    while not (tmp_path / "m.ready").exists():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)  # the wrapper only, not its process group
    assert proc.wait(timeout=20) == 3
    assert marker.read_text() == "got TERM"
    assert "Respawning" not in (tmp_path / "e").read_text()


def test_stdin_from_i_reaches_the_program(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("from stdin\n")
    proc = _start_wrapper(tmp_path, "/bin/cat", extra=("-i", str(tmp_path / "in.txt")))
    assert proc.wait(timeout=20) == 0
    assert (tmp_path / "o").read_text() == "from stdin\n"
    proc = _start_wrapper(tmp_path, "/bin/cat")
    assert proc.wait(timeout=20) == 0  # no -i: /dev/null, never the submitter's terminal


def test_exit_code_and_signal_death_are_passed_on(tmp_path: Path) -> None:
    assert _start_wrapper(tmp_path, "/bin/sh", "-c", "exit 42").wait(timeout=20) == 42
    assert _start_wrapper(tmp_path, "/bin/sh", "-c", "kill -KILL $$").wait(timeout=20) == 137


def test_the_wrapper_appends_one_accounting_record_per_attempt(tmp_path: Path) -> None:
    """The record the job's wrapper writes (46 fields: accounting(5)'s 45 and gridshim's key), only for
    the tool (0600), with the job's own exit status; the job never sees the GRIDSHIM_* variables."""
    import os

    from gridshim.render.manifests import accounting_fields

    req = request("-o", str(tmp_path / "o"), "-e", str(tmp_path / "e"), "-N", "a%b", "/bin/sh", "-c",
                  "env | grep -c ^GRIDSHIM_ ; exit 3")
    acct = accounting_fields(req, Settings(accounting_file=str(tmp_path / "acct" / "file")))
    env = {"PATH": os.environ["PATH"], "JOB_ID": "4242", "HOSTNAME": "node1", "GRIDSHIM_ACCT": acct or "",
           "GRIDSHIM_JOB_UID": "job-uid", "GRIDSHIM_POD_UID": "pod-uid"}
    for _ in range(2):
        assert subprocess.run(wrap_command(req), cwd=tmp_path, env=env).returncode == 3
    lines = (tmp_path / "acct" / "file").read_text().splitlines()
    assert len(lines) == 2 and oct((tmp_path / "acct" / "file").stat().st_mode & 0o777) == "0o600"
    f = lines[0].split(":")
    assert len(f) == 46
    assert (f[0], f[1], f[3], f[4], f[5], f[11], f[12], f[45]) == (
        "task", "node1", "tools.demo", "a%25b", "4242", "0", "3", "job-uid/pod-uid")
    assert f[8] == str(req.submitted) and int(f[9]) <= int(f[10]) and f[34] == "1" and f[35] == "0"  # slots, task 0
    assert (tmp_path / "o").read_text() == "0\n0\n"  # no GRIDSHIM_* variable reached the program


def started(cmd: list[str], *, cwd: Path, env: dict[str, str], ready: Path) -> subprocess.Popen[bytes]:
    """CMD (a rendered wrapper) started in a session of its own, once READY exists (the program runs)."""
    import time

    proc = subprocess.Popen(cmd, cwd=cwd, env=env, start_new_session=True)
    deadline = time.monotonic() + 20
    while not ready.exists():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    return proc


@pytest.mark.parametrize("preset", [Preset.JSUB, Preset.JSTART])
def test_a_job_stopped_by_term_is_recorded_as_sges_kill(tmp_path: Path, preset: Preset) -> None:
    """qdel, jstop and h_rt (activeDeadlineSeconds) all reach the wrapper as a TERM: the grid killed such a
    job with SIGKILL, so its record says exit_status 137, failed 100 (qsub-behaviour §6.4), even when the
    program caught the TERM and exited 3 (which stays the wrapper's own exit status)."""
    import os
    import signal
    import sys

    from gridshim.render.manifests import accounting_fields

    marker = tmp_path / "m"
    req = request("-o", str(tmp_path / "o"), "-e", str(tmp_path / "e"), sys.executable, "-c", TERM_AWARE,
                  str(marker), preset=preset)
    acct = accounting_fields(req, Settings(accounting_file=str(tmp_path / "acct")))
    env = {"PATH": os.environ["PATH"], "JOB_ID": "4242", "HOSTNAME": "node1", "GRIDSHIM_ACCT": acct or "",
           "GRIDSHIM_JOB_UID": "job-uid", "GRIDSHIM_POD_UID": "pod-uid"}
    proc = started(wrap_command(req), cwd=tmp_path, env=env, ready=tmp_path / "m.ready")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 3 and marker.read_text() == "got TERM"
    (line,) = (tmp_path / "acct").read_text().splitlines()
    f = line.split(":")
    assert (f[11], f[12], f[45]) == ("100", "137", "job-uid/pod-uid")


def test_the_record_of_a_stopped_job_survives_the_grace_periods_sigkill(tmp_path: Path) -> None:
    """A program that ignores TERM runs until the grace period ends and the container is SIGKILLed: the
    wrapper wrote the record at the TERM, so it is not lost (137, failed 100)."""
    import os
    import signal
    import time

    from gridshim.render.manifests import accounting_fields

    req = request("-o", str(tmp_path / "o"), "-e", str(tmp_path / "e"), "/bin/sh", "-c",
                  f"trap '' TERM; : >{tmp_path}/ready; while :; do sleep 0.1; done")
    acct = accounting_fields(req, Settings(accounting_file=str(tmp_path / "acct")))
    env = {"PATH": os.environ["PATH"], "JOB_ID": "4242", "GRIDSHIM_ACCT": acct or "",
           "GRIDSHIM_JOB_UID": "job-uid", "GRIDSHIM_POD_UID": "pod-uid"}
    proc = started(wrap_command(req), cwd=tmp_path, env=env, ready=tmp_path / "ready")
    proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    while not (tmp_path / "acct").exists():
        assert time.monotonic() < deadline and proc.poll() is None  # the program still runs: no exit yet
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the end of the grace period: everything in the container
    assert proc.wait(timeout=20) == -signal.SIGKILL
    (line,) = (tmp_path / "acct").read_text().splitlines()
    assert line.split(":")[11:13] == ["100", "137"]


def test_a_job_that_ends_itself_through_a_signal_keeps_its_own_status(tmp_path: Path) -> None:
    """No TERM from outside: a program that kills itself with TERM is recorded as 143 (Terminated)."""
    import os

    from gridshim.render.manifests import accounting_fields

    req = request("-o", str(tmp_path / "o"), "-e", str(tmp_path / "e"), "/bin/sh", "-c", "kill -TERM $$")
    acct = accounting_fields(req, Settings(accounting_file=str(tmp_path / "acct")))
    env = {"PATH": os.environ["PATH"], "JOB_ID": "4242", "GRIDSHIM_ACCT": acct or ""}
    assert subprocess.run(wrap_command(req), cwd=tmp_path, env=env).returncode == 143
    (line,) = (tmp_path / "acct").read_text().splitlines()
    assert line.split(":")[11:13] == ["100", "143"]


# -- mail on job events (-m/-M, qsub-behaviour §7) ---------------------------------------------------------

TIME = r"\d\d/\d\d/\d{4} \d\d:\d\d:\d\d"
DURATION = r"(Wallclock Time  |User Time       |System Time     |CPU             ) = 00:00:0\d"
STARTED = """To: {to}
From: tools.demo@toolforge.org
Subject: Job 4242 (run.sh) Started

Job 4242 (run.sh) Started
 User       = tools.demo
 Queue      = task
 Host       = node01.example.org
 Start Time = <T>
"""
COMPLETE = """To: {to}
From: tools.demo@toolforge.org
Subject: Job 4242 (run.sh) Complete

Job 4242 (run.sh) Complete
 User             = tools.demo
 Queue            = task@node01
 Host             = node01.example.org
 Start Time       = <T>
 End Time         = <T>
 User Time        = 00:00:0x
 System Time      = 00:00:0x
 Wallclock Time   = 00:00:0x
 CPU              = 00:00:0x
 Max vmem         = NA
 Exit Status      = {rc}
"""
ABORTED = """To: {to}
From: tools.demo@toolforge.org
Subject: Job 4242 (run.sh) Aborted

Job 4242 (run.sh) Aborted
 Exit Status      = {rc}
 Signal           = {sig}
 User             = tools.demo
 Queue            = task@node01
 Host             = node01.example.org
 Start Time       = <T>
 End Time         = <T>
 CPU              = 00:00:0x
 Max vmem         = NA
failed assumedly after job because:
job 4242.1 died through signal {sig} ({num})
"""


PEAK = "/sys/fs/cgroup/memory.peak"  # the container's peak memory, as the wrapper reads it


def run_with_mail(tmp_path: Path, *argv: str, preset: Preset = Preset.JSUB, mailer: str | None = None,
                  edit: tuple[str, str] | None = None, peak: int | None = None,
                  stop_when: Path | None = None) -> tuple[int, list[str], dict[str, str]]:
    """Render the job at a site whose mail command is a fake sendmail that keeps each message in a file,
    run its container's command and env as the kubelet would ($$ → $), and return the exit status, the
    messages (times replaced by <T>, in the order sent) and the env. PEAK: the container's memory.peak
    (None: the machine has none, as a node without cgroup v2). STOP_WHEN: once this file exists, the wrapper
    gets a TERM, as qdel, jstop and h_rt send it."""
    import re
    import time

    from gridshim.render.command import unescape_expansion

    box = tmp_path / "mails"
    box.mkdir(exist_ok=True)
    settings = Settings(images=SETTINGS.images, accounting_file=None,
                        mail_command=mailer or f"cat >{box}/$(date +%s%N).$$")
    req = request("-o", str(tmp_path / "o"), "-e", str(tmp_path / "e"), "-N", "run.sh", *argv, preset=preset)
    (job,) = render(req, settings)
    c = job["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: unescape_expansion(e["value"]) for e in c["env"] if "value" in e}
    cmd = [unescape_expansion(part) for part in c["command"]]
    if edit:
        cmd[2] = cmd[2].replace(*edit)
    if peak is not None:
        (tmp_path / "memory.peak").write_text(f"{peak}\n")
    assert PEAK in cmd[2]
    cmd[2] = cmd[2].replace(PEAK, str(tmp_path / "memory.peak"))
    run_env = {**env, "PATH": os.environ["PATH"], "JOB_ID": "4242", "HOSTNAME": "node01.example.org"}
    if stop_when is None:
        rc = subprocess.run(cmd, cwd=tmp_path, env=run_env, timeout=60).returncode
    else:
        proc = started(cmd, cwd=tmp_path, env=run_env, ready=stop_when)
        proc.terminate()
        rc = proc.wait(timeout=60)
    time.sleep(0.2)  # a Started mail of a job that never asked to wait for it
    # dates, and the durations a loaded machine can stretch past a second, are not what is checked here
    mails = [re.sub(DURATION, r"\1 = 00:00:0x", re.sub(TIME, "<T>", p.read_text()))
             for p in sorted(box.iterdir(), key=lambda p: p.name)]
    return rc, mails, env


def test_mail_begin_and_end_to_every_address_exactly_as_sge(tmp_path: Path) -> None:
    rc, mails, env = run_with_mail(tmp_path, "-m", "be", "-M", "someone@example.org,local", "/bin/sh", "-c",
                                   "env | grep -c ^GRIDSHIM_; exit 3")
    assert rc == 3  # the job's own status, whatever mail did
    to = ("someone@example.org", "local@toolforge.org")  # a bare -M name is the site's mail domain's
    assert sorted(mails[:2]) == sorted(STARTED.format(to=t) for t in to)
    assert sorted(mails[2:]) == sorted(COMPLETE.format(to=t, rc=3) for t in to)  # exit 3 is still "Complete"
    assert (tmp_path / "o").read_text() == "0\n"  # the job never sees GRIDSHIM_MAIL
    assert env["GRIDSHIM_MAIL"].splitlines() == ["be", f"cat >{tmp_path}/mails/$(date +%s%N).$$",
                                                 "tools.demo@toolforge.org", "tools.demo", "task", "run.sh",
                                                 "someone@example.org,local@toolforge.org"]


@pytest.mark.parametrize("peak,shown", [(20447232, "19.500M"), (1073741824, "1.000G"), (512, "512.000"),
                                        (0, "NA")])
def test_mail_max_vmem_is_the_containers_peak_memory_in_sges_printer(tmp_path: Path, peak: int, shown: str) -> None:
    """qsub-behaviour §7: `Max vmem` in the Complete and the Aborted mail is the peak memory (the container
    cgroup's memory.peak, as maxvmem in the accounting record), SGE's printer without the B, NA for 0."""
    import re

    _, mails, _ = run_with_mail(tmp_path, "-m", "e", "-M", "a@example.org", "/bin/true", peak=peak)
    (tmp_path / "killed").mkdir()
    _, aborted, _ = run_with_mail(tmp_path / "killed", "-m", "a", "-M", "a@example.org", "/bin/sh", "-c",
                                  "kill -KILL $$", peak=peak)
    assert [re.findall(r"^ Max vmem         = (.*)$", m, re.M) for m in mails + aborted] == [[shown], [shown]]


@pytest.mark.parametrize("events,program,expected", [
    ("a", "kill -KILL $$", [("Aborted", 137, "KILL", 9)]),
    ("e", "kill -TERM $$", [("Aborted", 143, "TERM", 15)]),  # e: an end through a signal is an abort
    ("a", "exit 3", []),  # a: only an abort sends
    ("b", "exit 0", [("Started",)]),
    ("e", "exit 0", [("Complete", 0)]),
])
def test_mail_letters_choose_the_mails(tmp_path: Path, events: str, program: str, expected: list) -> None:
    rc, mails, _ = run_with_mail(tmp_path, "-m", events, "/bin/sh", "-c", program)
    to = "tools.demo@toolforge.org"  # the default recipient: the submitter's LOGNAME@mail_domain
    want = {"Started": lambda: STARTED.format(to=to), "Complete": lambda rc: COMPLETE.format(to=to, rc=rc),
            "Aborted": lambda rc, sig, num: ABORTED.format(to=to, rc=rc, sig=sig, num=num)}
    assert mails == [want[e[0]](*e[1:]) for e in expected]
    assert rc == (expected[0][1] if expected and expected[0][0] == "Aborted" else int(program.split()[-1]))


@pytest.mark.parametrize("program,rc", [("sleep 30", 143), ("trap 'exit 0' TERM; sleep 30 & wait", 0)])
def test_a_job_stopped_from_outside_mails_sges_kill_as_its_record_says(tmp_path: Path, program: str,
                                                                       rc: int) -> None:
    """qdel, jstop and h_rt reach the wrapper as a TERM; SGE killed such a job with SIGKILL, and its
    accounting record says 137 (qacct.md): the Aborted mail says the same, whatever the program made of
    the TERM (the wrapper's own exit status stays the program's)."""
    ready = tmp_path / "ready"
    got, mails, _ = run_with_mail(tmp_path, "-m", "ae", "/bin/sh", "-c", f": >{ready}; {program}",
                                  stop_when=ready)
    assert got == rc
    assert mails == [ABORTED.format(to="tools.demo@toolforge.org", rc=137, sig="KILL", num=9)]


@pytest.mark.parametrize("argv", [["-m", "n"], ["-m", "s"], ["-m", "ben"], [], ["-M", "x@example.org"]])
def test_no_mail_letters_no_mail_code_in_the_job(tmp_path: Path, argv: list[str]) -> None:
    rc, mails, env = run_with_mail(tmp_path, *argv, "/bin/true")
    assert (rc, mails) == (0, []) and "GRIDSHIM_MAIL" not in env
    assert "m_send" not in render(request(*argv, "/bin/true"), SETTINGS)[0]["spec"]["template"]["spec"][
        "containers"][0]["command"][2]


def test_without_a_site_mail_command_nothing_is_sent_and_jsub_says_so() -> None:
    opts = gridflags.parse(["-m", "be", "/bin/true"], default_mem=SETTINGS.default_mem)
    t = translate(opts, preset=Preset.JSUB, settings=SETTINGS, host=HOST, program="/bin/true")
    (job,) = render(t.request, SETTINGS)
    c = job["spec"]["template"]["spec"]["containers"][0]
    assert "GRIDSHIM_MAIL" not in [e["name"] for e in c["env"]] and "m_send" not in c["command"][2]
    assert any("mail on job events is not sent at this site" in w for w in t.warnings)
    mailing = Settings(images=SETTINGS.images, mail_command="/usr/sbin/sendmail -t -i")
    assert not any("mail" in w for w in translate(opts, preset=Preset.JSUB, settings=mailing, host=HOST,
                                                  program="/bin/true").warnings)


def test_a_failing_or_stuck_mailer_never_changes_the_exit_status(tmp_path: Path) -> None:
    import time

    rc, mails, _ = run_with_mail(tmp_path, "-m", "be", "/bin/sh", "-c", "exit 5", mailer="exit 75")
    assert (rc, mails) == (5, [])
    err = (tmp_path / "e").read_text()
    assert 'gridshim: the mail "Job 4242 (run.sh) Started" to tools.demo@toolforge.org was not sent: the mail ' \
           "command exited 75" in err and '"Job 4242 (run.sh) Complete"' in err
    t0 = time.monotonic()
    rc, mails, _ = run_with_mail(tmp_path, "-m", "e", "/bin/true", mailer="exec sleep 30",
                                 edit=("sleep 10 &", "sleep 1 &"))  # MAIL_TIMEOUT, shortened for the test
    assert (rc, mails) == (0, []) and time.monotonic() - t0 < 10
    assert "gridshim: a mail was not sent within 10 seconds" in (tmp_path / "e").read_text()


def test_continuous_job_mails_once_for_its_whole_run(tmp_path: Path) -> None:
    counter = tmp_path / "n"
    script = tmp_path / "s.sh"
    script.write_text(f"#!/bin/sh\nn=$(cat {counter} 2>/dev/null || echo 0); echo $((n+1)) > {counter}; [ $n -ge 1 ]\n")
    script.chmod(0o755)
    rc, mails, _ = run_with_mail(tmp_path, "-m", "be", "-N", "run.sh", str(script), preset=Preset.JSTART,
                                 edit=("pause 5", "pause 0"))
    to = "tools.demo@toolforge.org"
    assert rc == 0 and "Respawning" in (tmp_path / "e").read_text()
    assert mails == [STARTED.format(to=to).replace("Queue      = task", "Queue      = continuous"),
                     COMPLETE.format(to=to, rc=0).replace("task@", "continuous@")]


def test_mail_header_fields_stay_one_line_and_dollars_survive_the_kubelet() -> None:
    from gridshim.record import replace
    from gridshim.render.manifests import mail_fields

    req = request("-m", "b", "/bin/true")  # jsub and qsub refuse control characters in -N; mail_fields too
    evil = replace(req, name="evil\nBcc: x@y")
    fields = mail_fields(evil, Settings(mail_command="sendmail -t -i -f $ADMIN"))
    assert fields is not None and fields.splitlines()[5] == "evil Bcc: x@y"
    (job,) = render(req, Settings(images=SETTINGS.images, mail_command="sendmail -t -i -f $ADMIN"))
    env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["GRIDSHIM_MAIL"].splitlines()[1] == "sendmail -t -i -f $$ADMIN"


USR1_AWARE = ("import signal, sys, time, pathlib\n"
              "out = pathlib.Path(sys.argv[1])\n"
              "def usr1(*_):\n"
              "    with out.open('a') as f: f.write(f'USR1 {time.time() - start:.3f}\\n')\n"
              "    sys.exit(5)\n"
              "signal.signal(signal.SIGUSR1, usr1)\n"
              "start = time.time()\n"
              "time.sleep(30)\n"
              "sys.exit(9)\n")


def _soft(req, seconds: int):  # type: ignore[no-untyped-def]
    from gridshim.record import replace

    return replace(req, soft_seconds=seconds)  # as translate sets it from qsub's -l s_rt (test_qsub.py)


def test_s_rt_sends_sigusr1_to_the_program_and_keeps_its_exit_status(tmp_path: Path) -> None:
    """-l s_rt (qsub-behaviour §1.7): SIGUSR1 s_rt seconds after the program starts; what the program makes
    of it is its own: here it exits 5, the wrapper's exit status."""
    import sys
    import time

    marker = tmp_path / "m"
    req = _soft(request("-o", str(tmp_path / "o"), "-e", str(tmp_path / "e"), sys.executable, "-c", USR1_AWARE,
                        str(marker)), 1)
    t0 = time.monotonic()
    assert subprocess.run(wrap_command(req), cwd=tmp_path, timeout=20).returncode == 5
    took = time.monotonic() - t0
    (line,) = marker.read_text().splitlines()
    after = float(line.split()[1])
    assert 0.8 <= after <= 3 and took < 5, (after, took)  # ~1 s after the start, not at the program's 30 s
    assert (tmp_path / "e").read_text() == ""


def test_s_rt_sleeper_never_outlives_the_program(tmp_path: Path) -> None:
    """A program that ends before s_rt: the wrapper exits with its status at once and leaves no sleeper
    behind (nor a SIGUSR1 for a pid that may be reused)."""
    import time

    req = _soft(request("-o", str(tmp_path / "o"), "-e", str(tmp_path / "e"), "/bin/sh", "-c", "exit 7"), 4243)
    for _ in range(20):  # the program ends at once: the sleeper is ended while it is still starting
        t0 = time.monotonic()
        assert subprocess.run(wrap_command(req), cwd=tmp_path, timeout=20).returncode == 7
        assert time.monotonic() - t0 < 3
    left = subprocess.run(["pgrep", "-f", "-x", "sleep 4243"], capture_output=True, text=True)
    assert left.stdout == "", left.stdout
    assert (tmp_path / "e").read_text() == ""


def test_s_rt_clock_starts_again_with_each_attempt_of_a_continuous_job(tmp_path: Path) -> None:
    """The wrapper's SIGUSR1 comes s_rt after each start of the program (SGE's execd counts from the start of
    the run); a continuous job's respawn is a new start."""
    import signal
    import sys
    import time

    from gridshim.render.command import RESPAWN_DELAY

    marker = tmp_path / "m"
    req = _soft(request("-o", str(tmp_path / "o"), "-e", str(tmp_path / "e"), sys.executable, "-c", USR1_AWARE,
                        str(marker), preset=Preset.JSTART), 1)
    proc = subprocess.Popen(wrap_command(req), cwd=tmp_path, start_new_session=True)
    try:
        deadline = time.monotonic() + 2 * (RESPAWN_DELAY + 1) + 10
        while not marker.exists() or len(marker.read_text().splitlines()) < 2:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    for line in marker.read_text().splitlines()[:2]:
        assert 0.8 <= float(line.split()[1]) <= 3, line
    assert "exited with code 5. Respawning..." in (tmp_path / "e").read_text()
