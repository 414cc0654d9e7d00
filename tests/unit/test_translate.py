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
