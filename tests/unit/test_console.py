"""cli._common.console: the one place rich Consoles are made, and its rule (a terminal, not TERM=dumb;
NO_COLOR set and not empty turns colour off, and a styles-only console is then not made)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from gridshim.cli._common import Env, LiveStatus, console
from gridshim.model import GridState, JobKind, JobRow

SRC = Path(__file__).resolve().parents[2] / "src"


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def env(environ: dict[str, str], stream: io.StringIO | None = None) -> Env:
    stream = stream if stream is not None else Tty()
    return Env(stdout=stream, stderr=stream, stdin=None, environ=environ, cwd="/")


@pytest.mark.parametrize("environ,stream,made,no_color", [
    ({"TERM": "xterm"}, Tty(), True, False),
    ({"TERM": "xterm", "NO_COLOR": "1"}, Tty(), True, True),
    ({"TERM": "xterm", "NO_COLOR": ""}, Tty(), True, False),  # no-color.org: an empty NO_COLOR is unset
    ({"TERM": "dumb"}, Tty(), False, None),
    ({"TERM": "xterm"}, io.StringIO(), False, None),  # a file or a pipe
])
def test_the_rule(environ: dict[str, str], stream: io.StringIO, made: bool, no_color: bool | None) -> None:
    con = console(env(environ, stream))
    assert (con is not None) is made
    if made:
        assert con.no_color is no_color and con.is_terminal and con.file is stream


def test_a_styles_only_console_is_not_made_without_colour() -> None:
    assert console(env({"NO_COLOR": "yes"}), styles_only=True) is None
    assert console(env({}), styles_only=True) is not None


def test_the_stream_may_be_stderr_while_stdout_is_a_pipe() -> None:
    out, err = io.StringIO(), Tty()
    e = Env(stdout=out, stderr=err, stdin=None, environ={}, cwd="/")
    assert console(e) is None and console(e, e.stderr).file is err


def test_qstat_watch_draws_the_table_on_that_console() -> None:
    from gridshim.output.table import watch

    stream = Tty()
    row = JobRow(job_id=7, name="bot", owner="tools.demo", state=GridState.RUNNING, queue="task", submit_time=0.0,
                 start_time=0.0, kind=JobKind.ONE_OFF, object_kind="Job", object_name="bot", uid="u1")
    watch(lambda: [row], console=console(env({"TERM": "xterm"}, stream)), cycles=1, title=lambda: "demo")
    assert "bot" in stream.getvalue() and "job-ID" in stream.getvalue()


def test_a_live_status_off_a_terminal_does_nothing_and_imports_no_rich() -> None:
    code = ("import io, sys\nfrom gridshim.cli._common import Env, LiveStatus\n"
            "e = Env(stdout=io.StringIO(), stderr=io.StringIO(), stdin=None, environ={}, cwd='/')\n"
            "with LiveStatus(e, 'x') as s:\n    s.update('y')\n"
            "assert e.stderr.getvalue() == ''\nprint('rich' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(SRC)}, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_a_live_status_on_a_terminal_draws_and_erases() -> None:
    stream = Tty()
    with LiveStatus(env({"TERM": "xterm", "NO_COLOR": "1"}, stream), "waiting") as s:
        s.update("still waiting")
    assert "waiting" in stream.getvalue()
