"""What every grid command does as a process (gridshim.cli): the collector off while it starts, and the
quiet exit that skips the interpreter's teardown only when nothing else wants the exit."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gridshim.cli import PROGRAMS

ROOT = Path(__file__).resolve().parents[2]


def test_programs_are_the_console_scripts() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    scripts = {line.split("=")[0].strip() for line in cfg["options.entry_points"]["console_scripts"].splitlines()
               if line.strip()}
    assert PROGRAMS == scripts
    assert {p.name for p in (ROOT / "bin").iterdir()} == scripts  # the drop-ins an admin puts on PATH


def _run_as(tmp_path: Path, name: str, body: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / name
    script.write_text("import sys, gc\nimport gridshim.cli as cli\n" + body)
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src")})


def test_a_command_starts_without_the_collector_and_exits_with_its_code_and_all_its_output(tmp_path: Path) -> None:
    body = ("print('gc', gc.isenabled(), cli.AS_COMMAND)\nsys.stdout.write('x' * 100000)\n"
            "sys.stderr.write('to stderr')\ncli.finish(7)\nprint('not reached')\n")
    out = _run_as(tmp_path, "jsub", body)
    assert out.returncode == 7
    assert out.stdout.startswith("gc False True\n") and out.stdout.endswith("x" * 100000)
    assert out.stderr == "to stderr"


def test_a_script_that_is_not_a_command_is_untouched(tmp_path: Path) -> None:
    out = _run_as(tmp_path, "notacommand.py", "print('gc', gc.isenabled(), cli.AS_COMMAND)\ncli.finish(3)\n")
    assert (out.returncode, out.stdout) == (3, "gc True False\n")


@pytest.mark.parametrize("setup", [
    "import atexit\natexit.register(lambda: print('atexit ran'))\n",
    "import threading, time\nt = threading.Thread(target=lambda: (time.sleep(0.3), print('atexit ran')))\nt.start()\n",
])
def test_the_quiet_exit_never_skips_a_cleanup_or_a_live_thread(tmp_path: Path, setup: str) -> None:
    out = _run_as(tmp_path, "qstat", setup + "cli.finish(4)\n")
    assert (out.returncode, out.stdout) == (4, "atexit ran\n")


def _ending(tmp_path: Path, name: str, body: str, how: str) -> tuple[int, str]:
    script = tmp_path / name
    script.write_text("import sys, time\nimport gridshim.cli as cli\nprint('x' * 4000)\n" + body)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    if how == "closed":
        out = subprocess.run(["sh", "-c", f'exec 1>&-; exec "{sys.executable}" "{script}"'], stderr=subprocess.PIPE,
                             text=True, env=env)
        return out.returncode, out.stderr
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the child even starts: its flush meets EPIPE, always
    try:
        out = subprocess.run([sys.executable, str(script)], stdout=write_end, stderr=subprocess.PIPE, text=True,
                             env=env)
    finally:
        os.close(write_end)
    return out.returncode, out.stderr


@pytest.mark.parametrize("how", ["closed", "reader gone"])
def test_a_stdout_that_cannot_be_flushed_ends_as_an_ordinary_exit_would(tmp_path: Path, how: str) -> None:
    """Closed (sys.stdout is None) or a reader gone (EPIPE on the flush): the ordinary exit path, with the
    same exit status and message as a plain sys.exit in the same place."""
    ours = _ending(tmp_path, "qsub", "cli.finish(5)\n", how)
    plain = _ending(tmp_path, "plain.py", "sys.exit(5)\n", how)
    assert (ours[0], ours[1].replace('qsub', 'plain.py')) == plain
    if how == "closed":
        assert ours[0] == 5  # nothing to flush: the command's own status
    else:
        assert ours[0] not in (0, 5) and "BrokenPipeError" in ours[1]  # output lost: never a silent success
