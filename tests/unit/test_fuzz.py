"""Issue 7: fuzzing — every command's argv, .jsubrc and #$ lines, crontab texts and kubeconfigs.

Each command's main function runs in-process through the same error funnel as its console entry
(`cli._common.run`) with an injected `Env`: KUBECONFIG names a file that does not exist (or a
fuzzed one whose server refuses connections at once), so nothing reaches a cluster and every run
ends fast. The invariants, for every input:

- no traceback and no "internal error", ever (the funnel would print one for any unexpected exception);
- only the command's documented exit codes;
- a usage error (exit 2) is argparse's shape: usage lines, then exactly one `PROG: error: ...` line;
- any other failure says so in exactly one line (on stderr, or in the job's .err file for jsub's
  own errors after option parsing, as jsub did; qdel and qmod answer on stdout, as the grid did).

Fuzzed paths never contain '/', and the working directory sits three levels below the scratch
directory, so no input can make jsub append its error line to a file outside that scratch area.
The number of examples run is kept in the pytest cache (gridshim/fuzz) for docs/reliability.md.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import example, given, strategies as st

from gridshim import gridflags
from gridshim.cli._common import Env, run
from gridshim.model import Preset

COUNTS: dict[str, int] = {}
CLOCK = 1_800_000_000.0


# -- the scratch world ------------------------------------------------------------------------------

@dataclass
class World:
    base: Path
    home: Path
    cwd: Path
    config: Path
    missing_kubeconfig: Path

    def environ(self, **extra: str) -> dict[str, str]:
        env = {"HOME": str(self.home), "KUBECONFIG": str(self.missing_kubeconfig),
               "GRIDSHIM_CONFIG": str(self.config), "PATH": "/usr/bin:/bin", "USER": "tools.fuzz",
               "LOGNAME": "tools.fuzz", "LANG": "C.UTF-8", "EDITOR": "/bin/false", "VISUAL": "/bin/false",
               "GRIDSHIM_RETRY_SECONDS": "0"}
        env.update(extra)
        return env


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    base = tmp_path_factory.mktemp("fuzz")
    home = base / "l1" / "l2" / "home"
    cwd = home / "w1" / "w2"
    cwd.mkdir(parents=True)
    (base / "project").mkdir()
    config = base / "gridshim.yaml"
    config.write_text(yaml.safe_dump({"home": str(base / "project" / "{tool}"), "uid": "self",
                                      "images": {"default": "fuzz.local/base:latest"}}))
    script = cwd / "script.sh"
    script.write_text("#!/bin/sh\n#$ -N fromscript\n#$ -mem 1g\ntrue\n")
    script.chmod(0o755)
    plain = cwd / "notexec.sh"
    plain.write_text("#!/bin/sh\ntrue\n")
    plain.chmod(0o644)
    return World(base=base, home=home, cwd=cwd, config=config, missing_kubeconfig=base / "no-such-kubeconfig")


@pytest.fixture(scope="module", autouse=True)
def figures(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if getattr(request.config, "cache", None) is not None:  # absent with -p no:cacheprovider
        request.config.cache.set("gridshim/fuzz", {"examples": COUNTS, "total": sum(COUNTS.values())})


def snapshot(root: Path) -> dict[Path, int]:
    out: dict[Path, int] = {}
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            try:
                out[p] = p.stat().st_size
            except OSError:
                pass
    return out


@dataclass
class Result:
    code: int
    out: str
    err: str
    written: dict[Path, str]  # files that grew during the run → what was appended


def call(world: World, prog: str, fn: Callable[[Env, list[str]], int], argv: list[str], *,
         stdin: bytes = b"", environ: dict[str, str] | None = None) -> Result:
    """Run FN(env, ARGV) through the funnel, as the console entry does, and capture everything."""
    before = snapshot(world.base)
    out, err = io.StringIO(), io.StringIO()
    env = Env(stdout=out, stderr=err,
              stdin=io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8", errors="surrogateescape"),
              environ=environ or world.environ(), cwd=str(world.cwd), clock=lambda: CLOCK)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = run(prog, lambda e: fn(e, list(argv)), env)
        except SystemExit as e:  # argparse inside a command: its console entry would exit the same way
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    written: dict[Path, str] = {}
    for p, size in snapshot(world.base).items():
        if size != before.get(p, 0):
            with open(p, "rb") as f:
                f.seek(before.get(p, 0))
                written[p] = f.read().decode("utf-8", "replace")
    COUNTS[prog] = COUNTS.get(prog, 0) + 1
    return Result(code=code, out=out.getvalue(), err=err.getvalue(), written=written)


def lines_of(text: str) -> list[str]:
    """Lines as a terminal shows them (str.splitlines would also split on \\x1c-\\x1e, \\x85, \\u2028)."""
    return text[:-1].split("\n") if text.endswith("\n") else (text.split("\n") if text else [])


USAGE_LINE = re.compile(r"^(usage: |       |\s{2,}\S)")


def check(r: Result, prog: str, codes: set[int], *, errors_on_stdout: bool = False,
          multiline_ok: Callable[[Result], bool] = lambda r: False) -> None:
    everything = r.out + r.err + "".join(r.written.values())
    assert "Traceback" not in everything, everything
    assert "internal error" not in everything, everything
    assert r.code in codes, (r.code, r.out, r.err)
    if r.code != 0 and multiline_ok(r):
        return
    if r.code == 2:
        lines = lines_of(r.err)
        assert lines and re.match(rf"^{re.escape(prog)}: error: \S", lines[-1]), r.err
        assert all(USAGE_LINE.match(l) for l in lines[:-1]), r.err
        assert sum(": error: " in l for l in lines) == 1, r.err
        return
    if r.code == 0:
        return
    # A failure: one line, wherever the command reports it.
    messages = [l for l in lines_of(r.err) if not USAGE_LINE.match(l)]
    appended = [t for t in r.written.values() if t]
    if errors_on_stdout and not messages and r.out.strip():
        # one answer per line, each a whole grid sentence (a raw newline from the input would split one)
        assert all(re.match(r"^(ERROR! |denied: |tools\.|The job |There is no job |qmod: )", l)
                   for l in lines_of(r.out)), r.out
        return
    if not messages and r.err.startswith("usage: ") and not appended:
        return  # the usage line alone is the error (qmod with nothing to do)
    if appended and not messages:
        for text in appended:
            assert text.endswith("\n") and len(lines_of(text)) == 1, text
        return
    assert len(messages) == 1, r.err
    assert messages[0].strip(), r.err


# -- strategies -------------------------------------------------------------------------------------

# No '/' anywhere a path could be taken from; lone surrogates stand for undecodable argv bytes.
SURROGATES = st.sampled_from(["\udcff", "\udce9", "\udc80"])
SAFE_CHAR = st.one_of(st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)), SURROGATES)
WORD = st.text(SAFE_CHAR, max_size=10)
NASTY = st.sampled_from(["", " ", "-", "--", "---", ".", "..", "~", "$HOME", "${HOME}", "$JOB_ID", "*", "?", "'",
                         '"', "`id`", "$(id)", ";", "&&", "|", "\n", "\t", "\\", "%", "=", ",", ",,", "a=b=c",
                         "é", "日本", "\u202e", "\x7f", "-1", "0", "99999999999999999999", "1e9", "nan"])
FLAGS = sorted(gridflags.OPTIONS) + ["-h", "--help", "-t", "-V", "-hold_jid", "-pe", "-terse", "-S", "-x",
                                     "-cwdx", "--once", "-Once"]
VALUES = ["512m", "1g", "1G", "0k", "1.5g", "2Gi", "99999999999g", "-1m", "m", "h_vmem=1G", "h_vmem=1.5G",
          "virtual_free=300M", "mem_free=100m", "release=trusty", "release=buster", "h_rt=1:00:00", "h_rt=90",
          "h_rt=99:99:99:99", "h_rt=", "foo", "a=b,c", "h_vmem=abc,release=x", "s_vmem=1G", "arch=*",
          "202601011200", "2601011200", "01011200", "01011200.30", "13321212", "0230250099", "y", "n", "yes",
          "no", "maybe", "Y", "007", "0777", "8", "77777", "A=b", "A", "A=b,C=d", "1BAD=x", "=x", "A=,B",
          "bea", "n", "x", "a@b", "a@b@c", "task", "continuous", "name", "Name_With.dots", "cron-0", "5start",
          "-neg", "-5", "..", "$HOME", "out.log", "$JOB_NAME.$JOB_ID"]
OPTION_TOKENS = st.one_of(st.sampled_from(FLAGS), st.sampled_from(VALUES), NASTY, WORD)
PROGRAMS = st.one_of(st.sampled_from(["/bin/true", "/bin/sh", "true", "sh", "./script.sh", "script.sh",
                                      "notexec.sh", "./notexec.sh", "no-such-program", "/no/such/program",
                                      "-", ".", "..", "~", ""]), WORD)
ARGS = st.lists(st.one_of(NASTY, WORD, st.sampled_from(FLAGS), st.sampled_from(VALUES)), max_size=5)


@st.composite
def jsub_argv(draw: st.DrawFn) -> list[str]:
    opts = draw(st.lists(OPTION_TOKENS, max_size=10))
    if opts and gridflags.OPTIONS.get(opts[-1]) == gridflags.VALUE:
        opts.append(draw(st.one_of(st.sampled_from(VALUES), WORD)))  # never let a path flag take PROGRAMS
    if draw(st.booleans()):
        opts += ["--dry-run"]
    if not draw(st.integers(0, 9)):
        return opts  # sometimes no program at all
    return opts + [draw(PROGRAMS)] + draw(ARGS)


def rc_lines(draw: st.DrawFn) -> str:
    lines = draw(st.lists(st.one_of(
        st.builds(lambda f, v: f"{f} {v}", st.sampled_from(FLAGS), st.one_of(st.sampled_from(VALUES), WORD)),
        st.sampled_from(FLAGS), NASTY, WORD, st.just("# comment"), st.just("-mem 1g # trailing")), max_size=5))
    return "\n".join(lines)


RC_TEXT = st.composite(rc_lines)
JSUB_CODES = {0, 1, 2, 25}


@pytest.mark.parametrize("preset", list(Preset), ids=[p.value for p in Preset])
@given(data=st.data())
def test_jsub_family_argv(world: World, preset: Preset, data: st.DataObject) -> None:
    from gridshim.cli.jsub import submit_main

    argv = data.draw(jsub_argv())
    r = call(world, preset.value, lambda env, a: submit_main(env, a, preset), argv)
    check(r, preset.value, JSUB_CODES)
    if r.code == 0 and "--dry-run" in argv and "-h" not in argv and "--help" not in argv:
        docs = list(yaml.safe_load_all(r.out))
        assert docs and all(d["apiVersion"] == "batch/v1" for d in docs), r.out


@given(data=st.data())
def test_jsubrc_and_script_directives(world: World, data: st.DataObject) -> None:
    """~/.jsubrc and #$ lines are parsed after argv's shape is known; their errors name the file."""
    from gridshim.cli.jsub import submit_main

    rc = data.draw(RC_TEXT())
    directives = data.draw(RC_TEXT())
    rcfile = world.home / ".jsubrc"
    rcfile.write_text(rc, errors="surrogateescape")
    script = world.cwd / "fuzzed.sh"
    script.write_text("#!/bin/sh\n" + "".join(f"#$ {l}\n" for l in directives.splitlines()) + "true\n",
                      errors="surrogateescape")
    script.chmod(0o755)
    argv = data.draw(st.lists(st.sampled_from(["-once", "-quiet", "-stderr", "--dry-run", "-N", "x", "-mem", "1g"]),
                              max_size=4))
    if argv and gridflags.OPTIONS.get(argv[-1]) == gridflags.VALUE:
        argv.append("v")
    try:
        r = call(world, "jsub", lambda env, a: submit_main(env, a, Preset.JSUB), argv + ["./fuzzed.sh", "arg"])
    finally:
        rcfile.unlink()
    check(r, "jsub", JSUB_CODES)


# -- the other commands -----------------------------------------------------------------------------

def _main(module: str, attr: str) -> Callable[[Env, list[str]], int]:
    import importlib

    try:
        fn = getattr(importlib.import_module(f"gridshim.cli.{module}"), attr)
    except (ImportError, AttributeError) as e:
        pytest.fail(f"gridshim.cli.{module}.{attr} is missing: {e}", pytrace=False)
    return lambda env, argv: fn(env, argv)


COMMAND_TOKENS = {
    "qstat": ["-u", "*", "tools.fuzz", "-s", "prs", "z", "hu", "a", "x", "-q", "task", "continuous*", "-j", "1234567",
              "bot*", "a,b", "-xml", "--watch", "-watch", "-help", "-f", "-r", "-ext"],
    "job": ["-v", "-q", "--verbose", "--quiet", "-h", "--help", "-x", "--", "bot", "1234567"],
    "jstop": ["bot", "1234567", "-h", "*", "--"],
    "qdel": ["-f", "-u", "*", "tools.fuzz", "-help", "1234567", "bot*", "a,b", "-x", ","],
    "qmod": ["-rj", "-r", "-cj", "-help", "1234567", "bot", "*", "-"],
    "crontab": ["-l", "-e", "-r", "-i", "-ri", "-il", "-u", "tools.fuzz", "-ufuzz", "--previous", "--sync", "--dry-run",
                "-", "--", "-h", "--help", "-x", "--bogus", "crontab.txt", "missing.txt"],
    "gridshim": ["doctor", "migrate-check", "--no-follow", "--version", "-h", "--help", "-", "bogus", "crontab.txt"],
}
COMMANDS: dict[str, tuple[str, str, set[int], dict[str, Any]]] = {
    # prog: (module, main function, exit codes, check options)
    "qstat": ("qstat", "qstat_main", {0, 1}, {}),
    "job": ("job", "job_main", {0, 1, 2}, {}),
    "jstop": ("jstop", "jstop_main", {0, 1}, {}),
    "qdel": ("qdel", "qdel_main", {0, 1}, {"errors_on_stdout": True}),
    "qmod": ("qmod", "qmod_main", {0, 1}, {"errors_on_stdout": True}),
    "crontab": ("crontab", "crontab_main", {0, 1, 2}, {}),
    "gridshim": ("gridshim", "main_with", {0, 1, 2}, {}),
}


def _multiline_ok(prog: str) -> Callable[[Result], bool]:
    if prog == "qstat":  # SGE: "error: ERROR! ..." then the usage line, exit 1
        return lambda r: bool(re.fullmatch(r"error: ERROR! [^\n]+\nusage: qstat [^\n]+\n", r.err))
    if prog == "crontab":  # cron lists every bad line, then one summary line (nothing is installed)
        # (and Toolforge's two lines for an empty crontab)
        return lambda r: r.code == 1 and (bool(re.fullmatch(
            r'("[^"\n]*":\d+: [^\n]+\n)+errors in crontab file, can\'t install\.\n', r.err)) or r.err == (
            "crontab: cowardly refusing to install empty crontab\n"
            "crontab: use `crontab -r` if you want to remove the crontab\n"))
    if prog == "gridshim":
        # no command: the help on stdout, exit 2 (like git); doctor prints one line per check and
        # migrate-check one per finding, on stdout
        return lambda r: (r.code == 2 and not r.err and r.out.startswith("usage: gridshim")) or (
            r.code == 1 and r.out.strip() != "" and all(USAGE_LINE.match(l) or "error" not in l
                                                         for l in lines_of(r.err)))
    return lambda r: False


@pytest.mark.parametrize("prog", list(COMMANDS))
@given(data=st.data())
def test_command_argv(world: World, prog: str, data: st.DataObject) -> None:
    module, attr, codes, opts = COMMANDS[prog]
    fn = _main(module, attr)
    tokens = st.one_of(st.sampled_from(COMMAND_TOKENS[prog]), NASTY, WORD)
    argv = data.draw(st.lists(tokens, max_size=6))
    stdin = data.draw(st.binary(max_size=200)) if prog in ("crontab", "gridshim") else b""
    (world.cwd / "crontab.txt").write_bytes(data.draw(st.binary(max_size=200)))
    r = call(world, prog, fn, argv, stdin=stdin)
    check(r, prog, codes, multiline_ok=_multiline_ok(prog), **opts)


# -- crontab texts ----------------------------------------------------------------------------------

FIELD = st.one_of(st.sampled_from(["*", "*/5", "0", "59", "60", "1-5", "5-1", "1,2,3", "*/0", "mon", "MON-FRI",
                                   "jan", "7", "0-7", "L", "?", "1-", "-1", ",", "**", "1/2", "*/", "99999999999"]),
                  WORD.filter(lambda w: " " not in w and "\n" not in w))
SCHEDULE = st.one_of(st.builds(lambda fs: " ".join(fs), st.lists(FIELD, min_size=5, max_size=5)),
                     st.sampled_from(["@daily", "@hourly", "@weekly", "@monthly", "@yearly", "@annually",
                                      "@midnight", "@reboot", "@every", "@", "@daily  "]),
                     st.builds(lambda fs: " ".join(fs), st.lists(FIELD, max_size=7)))
CRON_COMMANDS = st.one_of(
    st.sampled_from(["jsub -once -N bot /bin/true", "jstart -N watchdog /bin/sleep 60", "/usr/bin/jsub true",
                     "qsub -N q /bin/true", "qcronsub -N c /bin/true", "jlocal /bin/true", "jmail x",
                     "cd ancient && jsub -once -cwd -N a run.sh", "[ -x /bin/ls ] && /bin/ls", "true > /dev/null 2>&1",
                     "echo %s%%", "echo 'a%b'", 'echo "$HOME" $(date) `id`', "python3 -c 'print(1)'",
                     "jsub -mem 1.5g x", "jsub -N", "jsub", "jsub -l h_vmem=1G,release=trusty /bin/true",
                     "a && b || c ; d | e &", "if true; then true; fi", "for i in 1; do :; done", "cat <<EOF",
                     "'unterminated", '"unterminated', "$(unclosed", "`unclosed", "\\", "x\\\ny"]),
    st.text(st.characters(blacklist_characters="\x00\n", blacklist_categories=("Cs",)), max_size=40))
CRON_LINE = st.one_of(
    st.builds(lambda s, c: f"{s} {c}", SCHEDULE, CRON_COMMANDS),
    st.sampled_from(["", "# comment", "   ", "MAILTO=x", "PATH=/usr/bin", "CRON_TZ=Europe/Berlin",
                     "CRON_TZ=Nowhere/Land",
                     "TZ=UTC", "SHELL=/bin/bash", "A = b", "A='quoted'", 'A="x', "=x", "HOME=", "\t* * * * * true"]),
    st.text(st.characters(blacklist_characters="\x00\n", blacklist_categories=("Cs",)), max_size=60))
CRONTAB = st.builds(lambda ls, end: "\n".join(ls) + end, st.lists(CRON_LINE, max_size=8),
                    st.sampled_from(["", "\n", "\r\n"]))


@given(text=st.one_of(CRONTAB, st.text(max_size=300)))
def test_crontab_parser_never_crashes(world: World, text: str) -> None:
    """The parser alone: a plan or CrontabInvalid listing numbered problems, nothing else."""
    try:
        from gridshim import config, crontab
    except ImportError as e:
        pytest.fail(f"gridshim.crontab is missing: {e}", pytrace=False)
    settings = config.load(world.environ())
    host = crontab.CronHost(tool="fuzz", home=str(world.home), uid=52000, user="tools.fuzz",
                            exists=os.path.exists, isdir=os.path.isdir, executable=lambda p: os.access(p, os.X_OK),
                            read_text=lambda p: None)
    COUNTS["crontab.plan"] = COUNTS.get("crontab.plan", 0) + 1
    try:
        plan = crontab.plan(text, settings=settings, host=host, source="fuzz")
    except crontab.CrontabInvalid as e:
        assert e.problems and all(p.line >= 0 and p.message and "\n" not in p.message for p in e.problems)
        return
    names = [j.name for j in plan.jobs]
    assert len(names) == len(set(names))  # every entry gets its own CronJob
    assert all(re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", n) and len(n) <= crontab.NAME_LIMIT for n in names)


def _single(a: str) -> str:
    return shlex.quote(a) if a else "''"


def _double(a: str) -> str:
    return '"' + re.sub(r'([\\"$`])', r"\\\1", a) + '"'


def _backslashed(a: str) -> str:
    return "".join(c if c.isalnum() else "\\" + c for c in a) if a else '""'


ARG_CHARS = st.characters(blacklist_characters="\x00\n\r%", blacklist_categories=("Cs",))
QUOTERS = st.sampled_from([_single, _double, _backslashed])


@given(args=st.lists(st.tuples(st.text(ARG_CHARS, max_size=8), QUOTERS), max_size=6))
def test_crontab_jsub_line_arguments_round_trip(world: World, args: list[tuple[str, Callable[[str], str]]]) -> None:
    """A jsub line's arguments, quoted any way sh accepts, reach the job exactly as sh would pass them."""
    from gridshim import config, crontab

    words = " ".join(q(a) for a, q in args)
    host = crontab.CronHost(tool="fuzz", home=str(world.home), uid=52000, user="tools.fuzz", exists=os.path.exists,
                            isdir=os.path.isdir, executable=lambda p: True, read_text=lambda p: None)
    COUNTS["crontab.args"] = COUNTS.get("crontab.args", 0) + 1
    plan = crontab.plan(f"0 3 * * * jsub -once -N rt /bin/echo {words}\n", settings=config.load(world.environ()),
                        host=host)
    assert list(plan.jobs[0].request.argv) == ["/bin/echo", *(a for a, _ in args)], words


@example(text="@daily jsub -once -N bot /bin/true\n@\x0c")  # found by this test: an assertion in the parser
@example(text=" @\r * * * jsub -once -N bot /bin/true")
@given(text=st.one_of(CRONTAB, st.binary(max_size=300).map(lambda b: b.decode("utf-8", "surrogateescape"))))
def test_crontab_dry_run_texts(world: World, text: str) -> None:
    """`crontab --dry-run -` with any text on stdin: YAML CronJobs, or cron's numbered problems."""
    fn = _main("crontab", "crontab_main")
    r = call(world, "crontab", fn, ["--dry-run", "-"], stdin=text.encode("utf-8", "surrogateescape"))
    check(r, "crontab", {0, 1}, multiline_ok=_multiline_ok("crontab"))
    if r.code == 0:
        docs = [d for d in yaml.safe_load_all(r.out) if d]
        assert all(d["kind"] == "CronJob" and len(d["metadata"]["name"]) <= 52 for d in docs), r.out


# -- kubeconfigs ------------------------------------------------------------------------------------

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.text(max_size=8),
                    st.sampled_from(["https://127.0.0.1:9", "http://127.0.0.1:9", "https://127.0.0.1:99999",
                                     "https://[::1", "https://", "not a url", "tool-fuzz", "toolforge", "c", "u",
                                     "@@@", "LS0tLS1CRUdJTg==", "bm90IGEgY2VydA==", "!!", "ca.crt", "missing.key"]))
NAMES = st.sampled_from(["toolforge", "c", "u", "other"])


def _entry(section: str) -> st.SearchStrategy[Any]:
    body = {
        "clusters": st.fixed_dictionaries({}, optional={
            "server": SCALARS, "certificate-authority-data": SCALARS, "certificate-authority": SCALARS,
            "insecure-skip-tls-verify": SCALARS}),
        "users": st.fixed_dictionaries({}, optional={
            "client-certificate-data": SCALARS, "client-key-data": SCALARS, "client-certificate": SCALARS,
            "client-key": SCALARS, "token": SCALARS, "tokenFile": SCALARS, "exec": SCALARS}),
        "contexts": st.fixed_dictionaries({}, optional={"cluster": st.one_of(NAMES, SCALARS),
                                                        "user": st.one_of(NAMES, SCALARS),
                                                        "namespace": SCALARS}),
    }[section]
    return st.one_of(st.fixed_dictionaries({"name": st.one_of(NAMES, SCALARS)},
                                           optional={section[:-1]: st.one_of(body, SCALARS)}), SCALARS)


KUBECONFIG = st.fixed_dictionaries({}, optional={
    "apiVersion": st.just("v1"), "kind": st.just("Config"), "current-context": st.one_of(NAMES, SCALARS),
    "clusters": st.one_of(st.lists(_entry("clusters"), max_size=3), SCALARS),
    "users": st.one_of(st.lists(_entry("users"), max_size=3), SCALARS),
    "contexts": st.one_of(st.lists(_entry("contexts"), max_size=3), SCALARS)})


@given(cfg=st.one_of(KUBECONFIG, SCALARS, st.lists(SCALARS, max_size=2)),
       raw=st.one_of(st.none(), st.binary(max_size=60)))
def test_any_kubeconfig_gives_one_clean_line(world: World, cfg: Any, raw: bytes | None) -> None:
    from gridshim.cli.jsub import submit_main

    path = world.base / "kubeconfig"
    if raw is not None:
        path.write_bytes(raw)
    else:
        path.write_text(yaml.safe_dump(cfg))
    r = call(world, "jsub", lambda env, a: submit_main(env, a, Preset.JSUB), ["-stderr", "-N", "k", "/bin/true"],
             environ=world.environ(KUBECONFIG=str(path)))
    check(r, "jsub", {1})
    assert str(path) in r.err or "cannot reach the Kubernetes API at" in r.err, r.err


def test_the_ci_profile_runs_at_least_ten_thousand_examples() -> None:
    """Runs last in this file. The ci profile is big enough for ≥ 10,000 examples over the fuzz tests
    above, and when they all ran in this session under it, they did run that many."""
    from hypothesis import settings as hs

    fuzz_tests = 3 + 1 + len(COMMANDS) + 4  # jsub presets, .jsubrc/#$, other commands, crontab ×3, kubeconfig
    assert hs.get_profile("ci").max_examples * fuzz_tests >= 10_000
    ran_all = {"jsub", "jstart", "qcronsub", *COMMANDS, "crontab.plan", "crontab.args"} <= set(COUNTS)
    if os.environ.get("HYPOTHESIS_PROFILE") == "ci" and ran_all:
        assert sum(COUNTS.values()) >= 10_000, COUNTS
