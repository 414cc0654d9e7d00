"""Grid decisions: names, paths, memory, presets, env — pure, with the host's facts injected."""

from __future__ import annotations

import pytest

from gridshim import gridflags
from gridshim.config import Settings
from gridshim.errors import GridshimError, UsageError
from gridshim.model import JobKind, Preset
from gridshim.translate import SubmitHost, default_job_name, resolve_program, translate

MiB = 1024 * 1024
HOME = "/data/project/demo"
HOST = SubmitHost(tool="demo", home=HOME, cwd="/data/project/demo/sub", env={"BAR": "b", "USER": "tools.demo"},
                  uid=52001, now=1_800_000_000.0, token="abc", isdir=lambda p: p == "/data/project/demo/logs")


def tr(*argv: str, preset: Preset = Preset.JSUB, settings: Settings | None = None, **kw: object):  # type: ignore[no-untyped-def]
    opts = gridflags.parse(list(argv), default_mem=(settings or Settings()).default_mem)
    return translate(opts, preset=preset, settings=settings or Settings(), host=HOST,
                     program=opts.program or "", **kw).request  # type: ignore[arg-type]


@pytest.mark.parametrize("program,name", [("/usr/bin/python3", "python3"), ("run.sh", "run"),
                                          ("other.v2.sh", "other"), ("/x/.hidden", ".hidden")])
def test_default_job_name(program: str, name: str) -> None:
    assert default_job_name(program) == name


def test_defaults() -> None:
    r = tr("/usr/bin/env")
    assert r.name == "env" and r.kind is JobKind.ONE_OFF and not r.once
    assert (r.stdout, r.stderr) == (f"{HOME}/env.out", f"{HOME}/env.err")
    assert r.mem_bytes == 512 * MiB and r.workdir == HOME and r.queue == "task" and r.umask == 0o007
    assert dict(r.env)["HOME"] == HOME and dict(r.env)["JOB_NAME"] == "env"
    assert dict(r.env)["JOB_ID"] == str(r.job_id) and 1_000_000 <= r.job_id < 10_000_000


def test_presets() -> None:
    j = tr("/bin/prog", preset=Preset.JSTART)
    assert j.kind is JobKind.CONTINUOUS and j.once and j.queue == "continuous"
    q = tr("/bin/prog", preset=Preset.QCRONSUB)
    assert q.kind is JobKind.ONE_OFF and q.once
    assert tr("-continuous", "/bin/prog").once


def test_join_and_relative_paths_follow_sge() -> None:
    r = tr("-j", "y", "-o", "x.log", "/bin/p")
    assert r.stdout == r.stderr == f"{HOME}/x.log" and r.merge  # relative to $HOME without -cwd
    r = tr("-cwd", "-o", "x.log", "/bin/p")
    assert r.stdout == f"{HOME}/sub/x.log" and r.workdir == f"{HOME}/sub"
    r = tr("-wd", "../w", "/bin/p")
    assert r.workdir == f"{HOME}/w"
    r = tr("-o", "$HOME/logs/cron.out", "-e", "logs", "/bin/p")
    assert r.stdout == f"{HOME}/logs/cron.out" and r.stderr == f"{HOME}/logs/p.e{r.job_id}"


def test_env_values_from_flag_and_submit_host() -> None:
    env = dict(tr("-v", "FOO=1,BAR", "-v", 'PYTHONIOENCODING=utf8:backslashreplace', "/bin/p").env)
    assert env["FOO"] == "1" and env["BAR"] == "b" and env["PYTHONIOENCODING"] == "utf8:backslashreplace"


def test_umask_depends_on_uid_like_jsub() -> None:
    assert tr("/bin/p").umask == 0o007
    opts = gridflags.parse(["/bin/p"], default_mem=Settings().default_mem)
    low = SubmitHost(tool="demo", home=HOME, cwd=HOME, uid=1000, token="t")
    assert translate(opts, preset=Preset.JSUB, settings=Settings(), host=low, program="/bin/p").request.umask == 0o077
    assert tr("-umask", "002", "/bin/p").umask == 0o002


def test_release_selects_the_image() -> None:
    s = Settings(images={"default": "img:bookworm", "buster": "img:buster"})
    assert tr("-release", "buster", "/bin/p", settings=s).image == "img:buster"
    assert tr("-l", "release=trusty", "/bin/p", settings=s).image == "img:bookworm"


@pytest.mark.parametrize("name", ["a/b", "x:y", "1abc", "we@ird", "st*r", "q?", ""])
def test_invalid_job_names(name: str) -> None:
    with pytest.raises(UsageError):
        tr("-N", name, "/bin/p")


def test_names_kubernetes_forbids_are_fine_for_the_grid() -> None:
    assert tr("-N", "cron-tools.database_backup", "/bin/p").name == "cron-tools.database_backup"


def test_max_memory_from_site_config() -> None:
    with pytest.raises(GridshimError, match="more than this site's maximum of 4096M"):
        tr("-mem", "6g", "/bin/p", settings=Settings(max_mem=4096 * MiB))


def test_unknown_resources_warn_instead_of_silently_vanishing() -> None:
    opts = gridflags.parse(["-l", "arch=amd64,foo=1", "-m", "e", "/bin/p"], default_mem=512 * MiB)
    t = translate(opts, preset=Preset.JSUB, settings=Settings(), host=HOST, program="/bin/p")
    assert len(t.warnings) == 3


def test_start_time_is_local_epoch() -> None:
    r = tr("-a", "202701170304.05", "/bin/p")  # HOST's clock: 2027-01-15
    import time

    assert time.localtime(r.not_before)[:6] == (2027, 1, 17, 3, 4, 5)


def test_a_start_time_far_ahead_is_refused_clearly() -> None:
    """The job would wait in a pod (holding its memory) for years: refused with the fix named."""
    with pytest.raises(GridshimError, match="more than 7 days ahead.*crontab"):
        tr("-a", "203001020304", "/bin/p")
    with pytest.raises(UsageError, match="h_rt=99999999999999999999 is more than"):
        tr("-l", "h_rt=99999999999999999999", "/bin/p")


def test_resolve_program_like_argparse_whence() -> None:
    files = {"/usr/bin/python3", "/data/project/demo/sub/run.sh", "/data/project/demo/sub/.local"}
    ex = files.__contains__
    path = "/usr/local/bin:/usr/bin"
    assert resolve_program("python3", cwd="/data/project/demo/sub", path_env=path, exists=ex) == "/usr/bin/python3"
    assert resolve_program("run.sh", cwd="/data/project/demo/sub", path_env=path, exists=ex) == "/data/project/demo/sub/run.sh"
    assert resolve_program("./run.sh", cwd="/data/project/demo/sub", path_env=path, exists=ex) == "/data/project/demo/sub/run.sh"
    assert resolve_program("/usr/bin//python3", cwd="/", path_env=path, exists=lambda p: True) == "/usr/bin/python3"
    assert resolve_program("nope", cwd="/", path_env=path, exists=ex) is None


def test_bytes_that_are_not_utf8_are_refused_not_mangled() -> None:
    bad = b"caf\xe9".decode("utf-8", "surrogateescape")  # how Python hands such argv bytes to us
    with pytest.raises(GridshimError, match=r"argument 1 \(caf\\xe9\) is not valid UTF-8"):
        tr("/bin/p", bad)
    with pytest.raises(GridshimError, match="the job name"):
        tr("-N", bad, "/bin/p")


# -- the SGE job environment of a jsub job and of a CronJob run (issue 11, Deliver 4; qsub-behaviour §3) ----

def _jsub_plan(argv: list[str], *, cron: object = None, dirs: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    from gridshim import submit

    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "USER": "tools.demo", "LOGNAME": "tools.demo", "HOME": HOME,
           "SHELL": "/bin/bash", "MAIL": "/var/mail/tools.demo", "TZ": "UTC"}
    host = SubmitHost(tool="demo", home=HOME, cwd=f"{HOME}/sub", env=env, uid=52001, now=1_800_000_000.0,
                      token="0123456789abcdef", hostname="login01", exists=lambda p: p in ("/bin/sh", "/usr/bin/env"),
                      isdir=lambda p: p in dirs)
    return submit.plan("jsub", argv, settings=Settings(), host=host, cron=cron)  # type: ignore[arg-type]


def _run_wrapper(req, tmp_path, extra: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    """The pod's command under a real /bin/sh with the pod env the kubelet would give it."""
    import os
    import subprocess

    from gridshim.render.command import wrap_command

    env = {**dict(req.env), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), **extra}
    subprocess.run(wrap_command(req), env=env, cwd=tmp_path, check=True, timeout=30)


def test_a_jsub_job_gets_sges_environment(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """§3's variables for a jsub job: what the pod env carries (values known at submission) and what the
    wrapper adds when the job starts (TMPDIR, TMP, PATH's prefix, SGE_STDOUT/STDERR/STDIN_PATH)."""
    out, err = tmp_path / "o", tmp_path / "e"
    p = _jsub_plan(["-N", "envjob", "-o", str(out), "-e", str(err), "/usr/bin/env"])
    req = p.request
    env = dict(req.env)
    job_id = str(req.job_id)
    assert {k: env.get(k) for k in (
        "JOB_ID", "JOB_NAME", "REQUEST", "REQNAME", "JOB_SCRIPT", "SGE_TASK_ID", "SGE_TASK_FIRST", "SGE_TASK_LAST",
        "SGE_TASK_STEPSIZE", "NSLOTS", "NHOSTS", "NQUEUES", "QUEUE", "HOME", "USER", "LOGNAME", "SGE_O_HOME",
        "SGE_O_LOGNAME", "SGE_O_PATH", "SGE_O_SHELL", "SGE_O_MAIL", "SGE_O_TZ", "SGE_O_HOST", "SGE_O_WORKDIR",
        "SGE_CWD_PATH", "SGE_CELL", "SGE_ACCOUNT", "ENVIRONMENT", "RESTARTED", "TERM")} == {
        "JOB_ID": job_id, "JOB_NAME": "envjob", "REQUEST": "envjob", "REQNAME": "envjob", "JOB_SCRIPT": "/usr/bin/env",
        "SGE_TASK_ID": "undefined", "SGE_TASK_FIRST": "undefined", "SGE_TASK_LAST": "undefined",
        "SGE_TASK_STEPSIZE": "undefined", "NSLOTS": "1", "NHOSTS": "1", "NQUEUES": "1", "QUEUE": "task",
        "HOME": HOME, "USER": "tools.demo", "LOGNAME": "tools.demo", "SGE_O_HOME": HOME, "SGE_O_LOGNAME": "tools.demo",
        "SGE_O_PATH": "/usr/local/bin:/usr/bin:/bin", "SGE_O_SHELL": "/bin/bash", "SGE_O_MAIL": "/var/mail/tools.demo",
        "SGE_O_TZ": "UTC", "SGE_O_HOST": "login01", "SGE_O_WORKDIR": f"{HOME}/sub", "SGE_CWD_PATH": HOME,
        "SGE_CELL": "default", "SGE_ACCOUNT": "sge", "ENVIRONMENT": "BATCH", "RESTARTED": "0", "TERM": ""}
    assert "SGE_JOB_TASK_ID" not in env and "PE" not in env and "PWD" not in env  # not set without -t, -pe, -cwd
    assert dict(_jsub_plan(["-cwd", "/usr/bin/env"]).request.env)["PWD"] == f"{HOME}/sub"
    _run_wrapper(req, tmp_path, {})
    seen = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
    tmpdir = f"/tmp/{job_id}.1.default"
    assert (seen["TMPDIR"], seen["TMP"], seen["JOB_ID"], seen["ENVIRONMENT"]) == (tmpdir, tmpdir, job_id, "BATCH")
    assert seen["PATH"].startswith(tmpdir + ":")
    assert (seen["SGE_STDOUT_PATH"], seen["SGE_STDERR_PATH"], seen["SGE_STDIN_PATH"]) == (str(out), str(err),
                                                                                         "/dev/null")
    assert not any(k.startswith("GRIDSHIM_") for k in seen)


@pytest.mark.parametrize("uid", ["3f2b1c9e-1111-4222-8333-444455556666", "00000000-0000-4000-8000-000000000000",
                                 "ffffffff-ffff-4fff-bfff-ffffffffffff", "9d1c6a52-5d7e-4a39-9c1b-0b6f2e7d8a10"])
def test_the_wrappers_job_id_formula_is_labels_job_id_from_uid(tmp_path, uid: str) -> None:  # type: ignore[no-untyped-def]
    """A CronJob run has no JOB_ID in its pod env: the wrapper derives it from the run's Job uid (downward
    API) with sha256 in shell arithmetic; it must be the id qstat shows (labels.job_id_from_uid)."""
    from gridshim import submit
    from gridshim.render.labels import job_id_from_uid

    p = _jsub_plan(["-N", "tick", "-o", str(tmp_path), "-j", "y", "/bin/sh", "-c", 'echo "JOB_ID=$JOB_ID"'],
                   cron=submit.Cron(schedule="0 0 1 1 *"), dirs=(str(tmp_path),))
    assert "JOB_ID" not in dict(p.request.env) and p.request.stdout == f"{tmp_path}/tick.o$JOB_ID"
    _run_wrapper(p.request, tmp_path, {"GRIDSHIM_JOB_UID": uid})
    expected = job_id_from_uid(uid)
    assert (tmp_path / f"tick.o{expected}").read_text() == f"JOB_ID={expected}\n"


def test_cronjob_runs_of_a_jsub_line_get_distinct_ids_and_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`-o DIR` of a scheduled jsub job: each run its own DIR/NAME.oJOB_ID (before issue 11: every run
    appended to DIR/NAME.o0)."""
    from gridshim import submit
    from gridshim.render.labels import job_id_from_uid

    p = _jsub_plan(["-N", "tick", "-o", str(tmp_path), "-e", str(tmp_path), "/bin/sh", "-c", 'echo "$JOB_ID"'],
                   cron=submit.Cron(schedule="*/5 * * * *"), dirs=(str(tmp_path),))
    uids = ("11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222")
    for uid in uids:
        _run_wrapper(p.request, tmp_path, {"GRIDSHIM_JOB_UID": uid})
    ids = [job_id_from_uid(u) for u in uids]
    assert ids[0] != ids[1]
    assert sorted(f.name for f in tmp_path.glob("tick.o*")) == sorted(f"tick.o{i}" for i in ids)
    assert [(tmp_path / f"tick.o{i}").read_text() for i in ids] == [f"{i}\n" for i in ids]
    assert not (tmp_path / "tick.o0").exists() and not (tmp_path / "tick.o").exists()
