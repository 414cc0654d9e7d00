"""Issue 7: hostile text reaches the program byte-exact and is never run as shell text.

Arguments, -v values, inherited variables, job names and crontab jsub lines carry quotes, `;`,
`$()`, backticks, globs, newlines, control characters and non-ASCII. Each job writes what it got
(argv, environment, $JOB_NAME) to a file as the bytes it saw, and the test compares. A canary file
that any executed `$(...)` or backtick would create must never appear. (tests/e2e/test_jsub.py has
the first such test, for jsub's argv; this file covers the rest.)
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import Tool

PY = "/usr/bin/python3"
# Not in /tmp: each pod has a private /tmp (as a container does), where a canary would never be seen.
CANARY_DIR = Path(__file__).resolve().parents[2] / ".sandbox" / "data" / "canary"
CANARY = str(CANARY_DIR / "gridshim-injection-canary")
HOSTILE = ["a b", '"double"', "it's", "semi;colon", f"$(touch {CANARY})", f"`touch {CANARY}`", "*", "?", "[ab]",
           "~", "{a,b}", "new\nline", "tab\there", "cr\rhere", "\x01ctl\x1b[31m", "ünïcødé", "日本語", "🐍",
           "--",
           "-N", "x", "$HOME", "${PATH}", "back\\slash", "", " ", "%percent%", "!bang", "a=b", "'", '"', "\\",
           "&& true", "| cat", ">out", "<in", "#hash", "-l h_vmem=1G"]
DUMP = f"""#!{PY}
import json, os, sys
out = {{"argv": [a.hex() for a in map(os.fsencode, sys.argv[1:])],
        "env": {{k: os.fsencode(v).hex() for k, v in os.environ.items()
                if k.startswith("V_") or k in ("JOB_NAME", "PASS")}}}}
path = os.path.expanduser("~/dump-" + os.environ["JOB_NAME"].encode().hex() + ".json")
with open(path + ".tmp", "w") as f:
    json.dump(out, f)
os.rename(path + ".tmp", path)
"""


def hexed(values: list[str]) -> list[str]:
    return [os.fsencode(v).hex() for v in values]


def install_dump(tool: Tool) -> Path:
    path = tool.home / "dump.py"
    path.write_text(DUMP)
    path.chmod(0o755)
    os.chown(path, tool.uid, tool.uid)
    return path


def dump_of(tool: Tool, name: str) -> dict:
    path = tool.home / f"dump-{name.encode().hex()}.json"
    tool.wait_for(path.exists, timeout=90, what=f"the job {name!r} to write its dump")
    return json.loads(path.read_text())


@pytest.fixture(autouse=True)
def no_canary(sandbox: object) -> object:
    CANARY_DIR.mkdir(parents=True, exist_ok=True)
    CANARY_DIR.chmod(0o1777)  # any tool's job could create it
    Path(CANARY).unlink(missing_ok=True)
    yield
    assert not Path(CANARY).exists(), "something ran a $(...) or `...` from the input"


@pytest.mark.needs_shared_home("reads the files the job writes in the tool's home")
def test_jstart_passes_hostile_arguments_byte_exact(tool: Tool) -> None:
    dump = install_dump(tool)
    proc = tool.run("jstart", "-N", "cont", str(dump), *HOSTILE)  # continuous: through jsub's respawn loop
    assert proc.returncode == 0, proc.stderr + (tool.home / "cont.err").read_text()
    assert dump_of(tool, "cont")["argv"] == hexed(HOSTILE)


@pytest.mark.needs_shared_home("reads the files the job writes in the tool's home")
def test_sync_job_argv_with_globs_in_a_populated_directory(tool: Tool) -> None:
    """Globs stay literal even where they would match: -cwd in a directory full of files."""
    dump = install_dump(tool)
    work = tool.home / "globs"
    work.mkdir()
    for f in ("a", "b", "ab", "x.txt"):
        (work / f).write_text("")
    os.chown(work, tool.uid, tool.uid)
    args = ["*", "*.txt", "?", "[ab]", "{a,b}", "~", "~root"]
    proc = tool.run("jsub", "-sync", "y", "-cwd", "-N", "globs", str(dump), *args, cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert dump_of(tool, "globs")["argv"] == hexed(args)


def test_v_values_and_inherited_variables_are_byte_exact(tool: Tool) -> None:
    dump = install_dump(tool)
    values = [v for v in HOSTILE if "," not in v]  # -v splits its list on ',' (as qsub did)
    argv: list[str] = []
    for i, v in enumerate(values):
        argv += ["-v", f"V_{i}={v}"]
    passed = "multi\nline $(touch " + CANARY + ") 'q' \"d\" `x` ünï"
    proc = tool.run("jsub", "-sync", "y", "-N", "vals", *argv, "-v", "PASS", str(dump), env={"PASS": passed})
    assert proc.returncode == 0, proc.stderr
    got = dump_of(tool, "vals")["env"]
    assert got == {**{f"V_{i}": os.fsencode(v).hex() for i, v in enumerate(values)},
                   "PASS": passed.encode().hex(), "JOB_NAME": b"vals".hex()}


NAMES = ["Bot_2.x", "ünïcødé-名前", "q'uote\"d", "$(id)", "`id`", "semi;colon",
         "a|b&c", "<lt>gt", "x=y,z", "[br]{ce}", "%pct!", ".dot", "UPPER", "a" * 80]


@pytest.mark.needs_shared_home("reads the files the job writes in the tool's home")
@pytest.mark.parametrize("name", NAMES, ids=range(len(NAMES)))
def test_odd_job_names_are_kept_exactly(tool: Tool, name: str) -> None:
    """-N with characters Kubernetes forbids in names: the job sees its exact $JOB_NAME, writes
    ~/NAME.out, and `job`/`jstop` find it by the exact name."""
    dump = install_dump(tool)
    runner = tool.home / "run-then-wait.sh"
    runner.write_text(f'#!/bin/sh\n"{dump}" "$@"\necho out\nexec sleep 300\n')
    runner.chmod(0o755)
    os.chown(runner, tool.uid, tool.uid)
    proc = tool.run("jsub", "-N", name, str(runner), name)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Your job ") and f'("{name}") has been submitted' in proc.stdout
    got = dump_of(tool, name)
    assert got["env"]["JOB_NAME"] == name.encode().hex() and got["argv"] == [name.encode().hex()]
    tool.wait_for(lambda: (tool.home / f"{name}.out").exists() and (tool.home / f"{name}.out").read_text(),
                  timeout=30, what="the .out file")
    assert (tool.home / f"{name}.out").read_text() == "out\n"
    job = tool.run("job", "-v", name)
    assert job.returncode == 1 and re.fullmatch(rf"Job '{re.escape(name)}' has been running since \S+ as id \d{{7}}\n",
                                                job.stdout), job.stdout + job.stderr
    jobs = tool.kubectl_json("get", "jobs")["items"]
    assert [j["metadata"]["annotations"]["gridshim.io/name"] for j in jobs] == [name]
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", jobs[0]["metadata"]["name"])
    stop = tool.run("jstop", name)
    assert stop.returncode == 0 and "registered the job" in stop.stdout, stop.stdout + stop.stderr


def sh_words(text: str) -> list[str]:
    """What /bin/sh makes of TEXT's words (the reference for a crontab line's arguments)."""
    out = subprocess.run(["/bin/sh", "-c", f"set -- {text}; for a; do printf '%s\\0' \"$a\"; done"],
                         capture_output=True, check=True, env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"})
    return [w.decode() for w in out.stdout.split(b"\0")[:-1]]


def test_crontab_jsub_line_arguments_are_what_the_shell_would_pass(tool: Tool) -> None:
    dump = install_dump(tool)
    words = (f"'a b' \"dq\\\"x\" 'it'\\''s' '$(touch {CANARY})' '`id`' '*' \\* 'semi;colon' \\; "
             "'ünïcödé' x\\ y \"\" '' \"\\$HOME\" 'tab\there' '#not-a-comment' \\\\")
    expected = sh_words(words)
    assert len(expected) == 17 and "*" in expected and "$HOME" in expected
    line = f"* * * * * jsub -once -N cinj {dump} {words}\n"
    proc = tool.run("crontab", "-", input=line)
    assert proc.returncode == 0, proc.stderr
    try:
        check_crontab_entry(tool, dump, expected, line)
    finally:
        tool.run("crontab", "-r")  # an every-minute entry must not outlive the test


def check_crontab_entry(tool: Tool, dump: Path, expected: list[str], line: str) -> None:
    cj = tool.kubectl_json("get", "cronjobs")["items"]
    assert len(cj) == 1
    command = cj[0]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"]
    # sh -c SCRIPT gridshim-job OUT ERR STDIN NOT_BEFORE PROGRAM ARGS…, with "$" written "$$" so that
    # Kubernetes does not expand $(…) in a container command
    assert [w.replace("$$", "$") for w in command[8:]] == [str(dump), *expected]
    assert dump_of(tool, "cinj")["argv"] == hexed(expected)  # the CronJob ran it (within a minute)
    assert tool.run("crontab", "-l").stdout == line  # and the crontab is kept as written


def test_non_utf8_arguments_are_exact_or_refused(tool: Tool) -> None:
    """Bytes that are not UTF-8 (a Latin-1 file name) cannot travel in Kubernetes' JSON as they are:
    jsub must then either deliver them exactly or refuse clearly; never change them silently."""
    dump = install_dump(tool)
    raw = b"caf\xe9-\xff"
    proc = subprocess.run(tool.command([str(Path(tool.env()["PATH"].split(":")[0]) / "jsub"), "-sync", "y",
                                        "-stderr", "-N", "bytes", str(dump), raw]),
                          env={**tool.env(), "PWD": str(tool.home)}, cwd=tool.home, capture_output=True)
    if proc.returncode == 0:
        assert dump_of(tool, "bytes")["argv"] == [raw.hex()]
    else:
        assert proc.returncode in (1, 2) and b"UTF-8" in proc.stderr and proc.stderr.count(b"\n") <= 5
        assert tool.kubectl_json("get", "jobs")["items"] == []
