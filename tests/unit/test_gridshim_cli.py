"""The `gridshim` helper command on click: --help on every command, shell completion, usage errors through
the funnel (exit 2), `release` on the kit's fake API server, and click kept out of the grid's commands.

The behaviour of doctor and migrate-check is tested in test_doctor.py and test_migrate.py, and end to end in
tests/e2e/test_doctor_migrate.py and test_holds_e2e.py (release, run by the jobs' wrappers)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gridshim import depends as D
from gridshim.cli._common import Env, run
from gridshim.cli.gridshim import DOCTOR_HELP, MIGRATE_HELP, RELEASE_HELP, _wrapper_form, command, main_with
from kit import GridApi

REPO = Path(__file__).resolve().parents[2]


def gridshim(*argv: str, cluster: object = None, home: Path | None = None) -> tuple[int, str, str]:
    env = Env(stdout=io.StringIO(), stderr=io.StringIO(), stdin=io.StringIO(""),
              environ={"HOME": str(home or "/nonexistent"), "KUBECONFIG": "/nonexistent"}, cwd="/", clock=lambda: 0.0)
    code = run("gridshim", lambda e: main_with(e, list(argv), cluster=cluster), env)
    return code, env.stdout.getvalue(), env.stderr.getvalue()  # type: ignore[attr-defined]


@pytest.mark.parametrize("argv", [["--help"], ["-h"]])
def test_help_lists_the_commands(argv: list[str]) -> None:
    code, out, err = gridshim(*argv)
    assert (code, err) == (0, "")
    assert out.startswith("usage: gridshim [OPTIONS] [COMMAND] [ARGS]...\n")
    assert "Helpers for tools moving from Grid Engine to gridshim." in out
    for name in ("doctor", "migrate-check", "release"):
        assert f"\n  {name} " in out


@pytest.mark.parametrize("command,text", [("doctor", DOCTOR_HELP), ("migrate-check", MIGRATE_HELP),
                                          ("release", RELEASE_HELP)])
def test_every_command_has_help_with_its_text_as_written(command: str, text: str) -> None:
    for flag in ("--help", "-h"):
        code, out, err = gridshim(command, flag)
        assert (code, err) == (0, ""), err
        assert out.startswith(f"usage: gridshim {command} [OPTIONS]")
        assert text in out  # the hand-made tables are not re-wrapped


def test_version_and_no_command() -> None:
    assert gridshim("--version")[:2] == (0, "gridshim 0.1.0\n")
    code, out, err = gridshim()
    assert code == 2 and out.startswith("usage: gridshim") and err == ""  # the help, exit 2 (as before)


@pytest.mark.parametrize("argv,message", [
    (["bogus"], "No such command 'bogus'."),
    (["doctor", "extra"], "Got unexpected extra argument (extra)"),
    (["migrate-check", "--bogus"], "No such option '--bogus'."),
    (["release"], "give one of --job ID and --sweep"),
    (["release", "--task", "3"], "give one of --job ID and --sweep"),
    (["release", "--job", "1", "--sweep"], "--job and --sweep exclude each other"),
    (["release", "--job", "x"], "Invalid value for '--job': 'x' is not a valid integer."),
])
def test_usage_errors_are_one_line_after_the_usage_and_exit_2(argv: list[str], message: str) -> None:
    code, out, err = gridshim(*argv)
    assert code == 2 and out == ""
    *usage, last = err.splitlines()
    assert last == f"gridshim: error: {message}"
    assert len(usage) == 1 and usage[0].startswith(f"usage: gridshim {argv[0] if argv[0] != 'bogus' else ''}".rstrip())


def waiting(s: GridApi, job_id: int, preds: dict[str, str]) -> None:
    s.add_job(job_id, f"w{job_id}", annotations={D.A_PREDECESSORS: json.dumps(preds),
                                                 D.A_PREDECESSOR_IDS: ",".join(preds)},
              labels={D.WAITING: "true"}, suspend=True)


def test_release_job_releases_its_successors_quietly(tmp_path: Path) -> None:
    s = GridApi()
    waiting(s, 7000001, {"1111111": ""})
    waiting(s, 7000002, {"1111111": "", "2222222": ""})
    assert gridshim("release", "--job", "1111111", cluster=s, home=tmp_path) == (0, "", "")
    assert s.job(7000001)["spec"]["suspend"] is False
    assert s.job(7000002)["spec"]["suspend"] is True and D.predecessors_of(s.job(7000002)) == {"2222222": ""}
    assert gridshim("release", "--job=2222222", cluster=s, home=tmp_path) == (0, "", "")
    assert s.job(7000002)["spec"]["suspend"] is False


def test_release_task_and_sweep(tmp_path: Path) -> None:
    s = GridApi()
    waiting(s, 7000001, {"1111111": "1-3:1"})
    assert gridshim("release", "--job", "1111111", "--task", "1", "--task", "2", cluster=s, home=tmp_path)[0] == 0
    assert D.predecessors_of(s.job(7000001)) == {"1111111": "3"}
    s.add_job(1111111, "done", finished="Complete")
    assert gridshim("release", "--sweep", cluster=s, home=tmp_path)[0] == 0
    assert s.job(7000001)["spec"]["suspend"] is False


def test_release_that_cannot_reach_the_api_is_one_line_and_exit_1(tmp_path: Path) -> None:
    from gridshim.errors import ClusterError

    s = GridApi().fail("list", ClusterError("cannot reach the Kubernetes API at https://x: Connection refused"))
    code, out, err = gridshim("release", "--job", "1111111", cluster=s, home=tmp_path)
    assert (code, out) == (1, "") and err == "gridshim: cannot reach the Kubernetes API at https://x: Connection refused\n"


def _gridshim_process(**environ: str) -> subprocess.CompletedProcess[str]:
    """`gridshim` as its own process (completion exits the process), from this checkout's source."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), **environ}
    return subprocess.run([sys.executable, "-m", "gridshim.cli.gridshim"], env=env, capture_output=True, text=True,
                          timeout=60)


def _complete(words: str, cword: int) -> list[str]:
    out = _gridshim_process(_GRIDSHIM_COMPLETE="bash_complete", COMP_WORDS=words, COMP_CWORD=str(cword))
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_shell_completion_of_commands_and_options() -> None:
    assert _complete("gridshim ", 1) == ["plain,doctor", "plain,migrate-check", "plain,release"]
    assert _complete("gridshim rel", 1) == ["plain,release"]
    assert set(_complete("gridshim release --", 2)) >= {"plain,--job", "plain,--sweep", "plain,--task"}
    script = _gridshim_process(_GRIDSHIM_COMPLETE="bash_source").stdout
    assert "_gridshim_completion" in script and "complete " in script


def test_click_is_imported_by_the_helper_command_only() -> None:
    """jsub/qsub/qstat and the other grid commands keep their SGE-exact parsers and never pay for click."""
    mods = ["jsub", "qsub", "qstat", "qdel", "qmod", "qalter", "qacct", "job", "jstop", "crontab"]
    code = "import sys\n" + "".join(f"import gridshim.cli.{m}\n" for m in mods) + \
        "print('click' in sys.modules)\nimport gridshim.cli.gridshim as g\ng.command()\nprint('click' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(REPO / "src")}, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["False", "True"]


@pytest.mark.parametrize("argv", [["release", "--job", "1111111"], ["release", "--job", "1111111", "--task", "3"]])
def test_the_wrappers_release_form_is_read_as_click_reads_it(argv: list[str]) -> None:
    """A job's wrapper runs `release --job N [--task T]` (render/command.py): read without importing click,
    with the same meaning click's parser gives it."""
    cli = command()
    ctx = cli.make_context("gridshim", list(argv), resilient_parsing=True)
    sub = cli.get_command(ctx, "release")
    params = sub.make_context("release", argv[1:], parent=ctx).params
    assert _wrapper_form(argv) == (params["job"], list(params["task"]) or None) and not params["sweep"]


@pytest.mark.parametrize("argv", [["release", "--job", "x"], ["release", "--job", "1", "--sweep"], ["release"],
                                  ["release", "--job=1"], ["release", "--task", "1", "--job", "1"],
                                  ["release", "--job", "1", "--task"], ["release", "--job", "1", "-h"],
                                  ["release", "--job", "-1"], ["release", "--job", "١"]])
def test_anything_else_goes_through_click(argv: list[str]) -> None:
    assert _wrapper_form(argv) is None


def test_the_wrappers_release_does_not_import_click(tmp_path: Path) -> None:
    code = ("import sys, io\nfrom kit import GridApi\nfrom gridshim.cli._common import Env\n"
            "from gridshim.cli.gridshim import main_with\n"
            "env = Env(stdout=io.StringIO(), stderr=io.StringIO(), environ={'HOME': sys.argv[1]}, cwd='/')\n"
            "print(main_with(env, ['release', '--job', '1111111'], cluster=GridApi()), 'click' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                         env={"PYTHONPATH": f"{REPO / 'src'}:{REPO / 'tests'}"}, check=True).stdout.split()
    assert out == ["0", "False"]
