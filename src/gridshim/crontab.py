"""Crontab text → validated entries → one JobRequest per entry (pure).

Layer: like translate.py. Parses a crontab the way cron does (line by line, `VAR=value` lines in
order, five time fields or an @macro, cron's `%` rule), reads each command the way cron's /bin/sh
would, and maps it through gridflags + translate with exactly jsub's semantics. No clock,
environment, filesystem or network: what the submit host knows arrives as a `CronHost`.
Imports submit (grid lines), translate, config, model, errors and render.labels (names only).
"""

from __future__ import annotations

import hashlib
import posixpath
import random
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from gridshim.config import Settings
from gridshim.errors import GridshimError
from gridshim.gridflags import GridOptions
from gridshim.model import JobRequest, Preset
from gridshim.record import replace
from gridshim.render.labels import object_name
from gridshim.shellwords import VAR_NAME, Prefix, Token, Unstatic, expand, posix_redirections, prefixes, tokenize
from gridshim.text import printable
from gridshim.translate import SubmitHost, translate

# cron(8): the environment every command starts with, before the crontab's own VAR= lines.
CRON_PATH = "/usr/bin:/bin"
CRON_SHELL = "/bin/sh"
# Kubernetes CronJob names are limited to 52 characters, so the Jobs they start (+11) fit in 63.
NAME_LIMIT = 52
# The grid commands Toolforge's wrapper left alone (grid-behaviour §8.2), with their jsub preset.
GRID_COMMANDS: dict[str, Preset] = {"jsub": Preset.JSUB, "qsub": Preset.JSUB, "jstart": Preset.JSTART,
                                    "qcronsub": Preset.QCRONSUB}
# Toolforge helpers that ran a command on the cron host itself; here the command runs as a job.
LOCAL_RUNNERS = ("jlocal", "jmail")
COMMAND_DIRS = ("", "/usr/bin", "/usr/local/bin")
MACROS: dict[str, str] = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}
REBOOT_HELP = ("@reboot cannot be used: on Kubernetes there is no machine that boots. To keep a program "
               "running, start it once with 'jstart -N NAME PROGRAM' (it is restarted when it fails), or "
               "use '* * * * * jstart -N NAME PROGRAM' here, which starts it again within a minute "
               "whenever it is not running")
# How many rewritten entries the NOTE lists before summarising.
NOTE_LIMIT = 10


# -- data ------------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class CronHost:
    """What the machine running `crontab` knows: the tool, its home and uid, and a view of its files."""

    tool: str
    home: str
    uid: int | None = None
    user: str = ""  # tools.NAME (cron's USER/LOGNAME)
    exists: Callable[[str], bool] = lambda _p: False
    isdir: Callable[[str], bool] = lambda _p: False
    executable: Callable[[str], bool] = lambda _p: True
    read_text: Callable[[str], str | None] = lambda _p: None  # ~/.jsubrc and `#$` lines of scripts


@dataclass(frozen=True)
class Problem:
    line: int  # 1-based
    message: str


class CrontabInvalid(GridshimError):
    """Some lines are wrong; nothing is installed. Every problem names its line."""

    def __init__(self, problems: list[Problem], *, source: str = "-") -> None:
        self.problems = sorted(problems, key=lambda p: p.line)
        self.source = source
        super().__init__("errors in crontab file, can't install.")

    def lines(self) -> list[str]:
        return [f'"{printable(self.source)}":{p.line}: {p.message}' for p in self.problems]


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One schedule line as cron reads it, before it is mapped to a job."""

    line: int  # 1-based, for messages
    index: int  # 0-based line index: Toolforge's `cron-<index>` job name
    text: str  # the whole line
    schedule_text: str  # as typed: '@daily' or the five fields
    schedule: str  # five fields Kubernetes accepts (macro expanded, day-of-week 7 → 0)
    macro: str | None
    command: str  # everything after the schedule, as typed
    env: tuple[tuple[str, str], ...]  # the crontab's VAR=value settings in force, in order
    timezone: str | None


@dataclass(frozen=True, kw_only=True)
class PlannedJob:
    """A crontab entry decided: its CronJob name, its job, and what to tell the user."""

    entry: Entry
    name: str  # the CronJob object name (stable: see docs/crontab.md "Names")
    request: JobRequest  # SCHEDULED; CONTINUOUS for a jstart watchdog line
    watchdog: bool = False
    rewritten: str | None = None  # Toolforge's rewrite of a plain command, for the NOTE
    warnings: tuple[str, ...] = ()

    @property
    def schedule(self) -> str:
        return self.request.schedule or ""


@dataclass(frozen=True, kw_only=True)
class Plan:
    jobs: tuple[PlannedJob, ...] = ()
    warnings: tuple[Problem, ...] = ()  # line-numbered notes that do not stop the install

    @property
    def rewritten(self) -> list[PlannedJob]:
        return [j for j in self.jobs if j.rewritten]


# -- time fields -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # index + low = value


_FIELDS = (
    _Field("minute", 0, 59), _Field("hour", 0, 23), _Field("day-of-month", 1, 31),
    _Field("month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")),
    _Field("day-of-week", 0, 7, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)


def _number(text: str, f: _Field) -> int:
    if text.isdigit():
        value = int(text)
    elif text.lower() in f.names:
        value = f.names.index(text.lower()) + f.low
    else:
        hint = f" or a name ({f.names[0]}…{f.names[-1]})" if f.names else ""
        raise ValueError(f"'{text}' is not a number{hint}")
    if not f.low <= value <= f.high:
        raise ValueError(f"{value} is out of range ({f.low}-{f.high})")
    return value


def check_field(text: str, f: _Field) -> set[int]:
    """One time field in cron(5) syntax (lists, ranges, */step, a-b/step, names) → the values it selects."""
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise ValueError("empty list element")
        rng, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"bad step '{step_text}' (a positive number)")
            step = int(step_text)
        if rng == "*":
            lo, hi = f.low, f.high
        elif "-" in rng:
            a, _, b = rng.partition("-")
            lo, hi = _number(a, f), _number(b, f)
            if lo > hi:
                raise ValueError(f"range '{rng}' goes backwards")
        else:
            if slash:
                raise ValueError(f"'{item}': a step needs a range or '*' (e.g. '*/{step_text}')")
            lo = hi = _number(rng, f)
        values.update(range(lo, hi + 1, step))
    return values


def _k8s_dow(text: str) -> str:
    """cron allows 7 for Sunday; Kubernetes (robfig/cron) only 0-6. Rewrite only fields that use 7."""
    if not re.search(r"(?<![0-9])7(?![0-9])", text):
        return text
    days = sorted({d % 7 for d in check_field(text, _FIELDS[4])})
    return ",".join(str(d) for d in days)


def parse_schedule(fields: list[str]) -> str:
    """Five cron fields → the expression Kubernetes gets; ValueError names the bad field."""
    for value, f in zip(fields, _FIELDS):
        try:
            check_field(value, f)
        except ValueError as e:
            raise ValueError(f"bad {f.name} field '{value}': {e}") from None
    expr = " ".join(fields[:4] + [_k8s_dow(fields[4])])
    from croniter import croniter  # noqa: PLC0415  (second opinion; a few ms, only when installing)

    if not croniter.is_valid(expr):
        raise ValueError(f"'{' '.join(fields)}' is not a valid schedule")
    return expr


def spread_schedule(macro: str, *, tool: str, job: str) -> str:
    """Toolforge's spread (prior-art §1.3): the macro's fixed fields get random values seeded by 'tool job'."""
    rnd = random.Random(f"{tool} {job}")
    minute, hour = rnd.randint(0, 59), rnd.randint(0, 23)
    if macro == "@hourly":
        return f"{minute} * * * *"
    if macro in ("@daily", "@midnight"):
        return f"{minute} {hour} * * *"
    if macro == "@weekly":
        return f"{minute} {hour} * * {rnd.randint(0, 6)}"
    if macro == "@monthly":
        return f"{minute} {hour} {rnd.randint(1, 28)} * *"
    return f"{minute} {hour} {rnd.randint(1, 28)} {rnd.randint(1, 12)} *"  # @yearly, @annually


# -- lines -----------------------------------------------------------------------------------------

def _split_first(body: str) -> tuple[str, str]:
    """First word and the rest, split on blanks (space, tab) the way cron splits fields."""
    m = re.match(r"([^ \t]*)[ \t]*(.*)$", body, re.DOTALL)
    assert m is not None  # the pattern matches every string
    return m.group(1), m.group(2)


_ENV = re.compile(r"""^[ \t]*(?:"([^"]*)"|'([^']*)'|([^\s="']+))[ \t]*=[ \t]*(.*)$""")
_FIVE = re.compile(r"^[ \t]*([^ \t]+)[ \t]+([^ \t]+)[ \t]+([^ \t]+)[ \t]+([^ \t]+)[ \t]+([^ \t]+)(?:[ \t]+(.*))?$",
                   re.DOTALL)


def is_setting(line: str) -> bool:
    """A `VAR=value` line (cron(5)), whether or not its name is valid."""
    return _ENV.match(line) is not None


def command_of(line: str) -> str:
    """The command of a schedule line as cron splits it (after the @macro or the five fields); "" if none."""
    body = line.lstrip(" \t")
    if body.startswith("@"):
        return _split_first(body)[1]
    f = _FIVE.match(line)
    return (f.group(6) or "") if f else ""


def split_lines(text: str) -> list[str]:
    """Lines as cron reads them: split on LF; a trailing CR (a DOS file) is dropped for parsing only."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def env_value(raw: str) -> str:
    """cron(5): surrounding blanks are dropped; matching quotes keep blanks inside."""
    value = raw.strip(" \t")
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def check_timezone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ValueError, OSError, LookupError):
        raise ValueError(f"unknown time zone '{name}' (use an IANA name such as Europe/Berlin or UTC)") from None


def parse(text: str) -> tuple[list[Entry], list[Problem]]:
    """Every line of TEXT: entries with the environment in force at their line, and all problems."""
    entries: list[Entry] = []
    problems: list[Problem] = []
    env: dict[str, str] = {}
    for index, line in enumerate(split_lines(text)):
        number = index + 1
        body = line.lstrip(" \t")
        if not body or body.startswith("#"):
            continue
        try:
            line.encode("utf-8")
        except UnicodeEncodeError:
            problems.append(Problem(number, "the line is not valid UTF-8"))
            continue
        m = _ENV.match(line)
        if m:
            name = next(g for g in m.groups()[:3] if g is not None)
            value = env_value(m.group(4))
            if not VAR_NAME.match(name):
                problems.append(Problem(number, f"bad variable name '{name}' (letters, digits and _ only)"))
                continue
            if name in ("CRON_TZ", "TZ") and value:
                try:
                    check_timezone(value)
                except ValueError as e:
                    problems.append(Problem(number, f"{name}: {e}"))
                    continue
            env[name] = value
            continue
        tz = env.get("CRON_TZ") or env.get("TZ") or None
        if body.startswith("@"):
            macro, command = _split_first(body)
            macro = macro.lower()
            if macro == "@reboot":
                problems.append(Problem(number, REBOOT_HELP))
                continue
            if macro not in MACROS:
                problems.append(Problem(number, f"bad time specifier '{macro}' (use five fields or one of "
                                                f"{', '.join(MACROS)})"))
                continue
            if not command.strip():
                problems.append(Problem(number, f"no command after '{macro}'"))
                continue
            entries.append(Entry(line=number, index=index, text=line, schedule_text=macro,
                                 schedule=MACROS[macro], macro=macro, command=command,
                                 env=tuple(env.items()), timezone=tz))
            continue
        f = _FIVE.match(line)
        if not f:
            problems.append(Problem(number, "expected five time fields (minute hour day-of-month month "
                                            "day-of-week) or an @macro, then a command"))
            continue
        fields = list(f.groups()[:5])
        command = f.group(6) or ""
        try:
            schedule = parse_schedule(fields)
        except ValueError as e:
            problems.append(Problem(number, str(e)))
            continue
        if not command.strip():
            problems.append(Problem(number, "no command after the five time fields"))
            continue
        entries.append(Entry(line=number, index=index, text=line, schedule_text=" ".join(fields),
                             schedule=schedule, macro=None, command=command, env=tuple(env.items()),
                             timezone=tz))
    return entries, problems


def percent_split(command: str) -> tuple[str, str | None]:
    """cron(5) `%`: `\\%` is a literal %; the first bare % ends the command and the rest, with % → newline,
    is its standard input (cron adds a final newline)."""
    out: list[str] = []
    i = 0
    while i < len(command):
        c = command[i]
        if c == "\\" and i + 1 < len(command) and command[i + 1] == "%":
            out.append("%")
            i += 2
            continue
        if c == "%":
            rest = command[i + 1:]
            data: list[str] = []
            j = 0
            while j < len(rest):
                if rest[j] == "\\" and j + 1 < len(rest) and rest[j + 1] == "%":
                    data.append("%")
                    j += 2
                    continue
                data.append("\n" if rest[j] == "%" else rest[j])
                j += 1
            stdin = "".join(data)
            if not stdin.endswith("\n"):
                stdin += "\n"
            return "".join(out), stdin
        out.append(c)
        i += 1
    return "".join(out), None


# -- mapping ---------------------------------------------------------------------------------------


def command_name(tok: Token) -> str | None:
    """'jsub' for `jsub`, `/usr/bin/jsub`, `/usr/local/bin/jsub` (likewise the others); else None."""
    word = tok.literal()
    if word is None:
        return None
    d, base = posixpath.split(word)
    if d != "" and d.rstrip("/") not in COMMAND_DIRS:
        return None
    return base if base in GRID_COMMANDS or base in LOCAL_RUNNERS else None


def _nested_grid_command(tokens: list[Token], start: int) -> str | None:
    """A grid command in a later command position (`x && jsub …`): it would not exist inside the job."""
    expect = False
    for t in tokens[start:]:
        if t.kind == "op":
            expect = t.is_op("&&", "||", ";", "|", "&", "(")
            continue
        if expect and command_name(t) in GRID_COMMANDS:
            return command_name(t)
        expect = False
    return None


def cron_env(entry: Entry, host: CronHost) -> dict[str, str]:
    """The environment cron starts a command with: HOME, LOGNAME, USER, SHELL, PATH, then the VAR= lines."""
    env = {"HOME": host.home, "LOGNAME": host.user, "USER": host.user, "SHELL": CRON_SHELL, "PATH": CRON_PATH}
    env.update(entry.env)
    return env


class _LineError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class _Mapped:
    request: JobRequest
    key: str  # the preferred CronJob name, before duplicates are told apart
    watchdog: bool
    rewritten: str | None
    warnings: list[str]


def _map_entry(entry: Entry, *, settings: Settings, host: CronHost) -> _Mapped:
    env = cron_env(entry, host)
    home = env["HOME"] or host.home
    command, stdin = percent_split(entry.command)
    warnings: list[str] = []
    try:
        tokens = tokenize(command)
    except ValueError as e:
        raise _LineError(f"cannot read the command: {e}") from None
    if not tokens:
        raise _LineError("no command (only a comment)")
    pre = prefixes(tokens, command, env, home)
    if pre.head >= len(tokens):
        raise _LineError("no command after the 'cd DIR' / '[ test ]' prefix")
    head = tokens[pre.head]  # may be an operator: `(cd x && y) > log` is a plain command
    name = command_name(head) if head.kind == "word" else None
    nested = _nested_grid_command(tokens, pre.head if head.kind == "op" else pre.head + 1)
    if nested:
        raise _LineError(f"'{nested}' must be the first command of an entry (after an optional 'cd DIR &&' "
                         f"or '[ test ] &&'): inside a job it does not exist. Give it its own line, or put "
                         f"the commands in a script")
    if name in GRID_COMMANDS:
        if stdin is not None:
            warnings.append(f"the text after the unescaped '%' was {name}'s standard input; it is ignored "
                            "(write \\% for a literal %)")
        return _map_grid_line(entry, name, tokens[pre.head + 1:], pre, env=env, home=home, settings=settings,
                              host=host, warnings=warnings)
    if stdin is not None:
        warnings.append("the text after the unescaped '%' becomes the command's standard input, as in cron "
                        "(write \\% for a literal %)")
    rest = command[tokens[pre.cd_end].start:]
    if name in LOCAL_RUNNERS:
        if pre.head + 1 >= len(tokens) or tokens[pre.head + 1].kind != "word":
            raise _LineError(f"no command after '{name}'")
        rest = command[tokens[pre.cd_end].start:head.start] + command[tokens[pre.head + 1].start:]
        warnings.append(f"'{name}' ran its command on the cron host; here it runs as a job like any other "
                        "command" + (" and no mail is sent" if name == "jmail" else ""))
    return _map_plain_line(entry, command, rest, head, pre, stdin=stdin, env=env, home=home, settings=settings,
                           host=host, warnings=warnings)


def _map_grid_line(entry: Entry, cmd: str, rest: list[Token], pre: Prefix, *, env: dict[str, str], home: str,
                   settings: Settings, host: CronHost, warnings: list[str]) -> _Mapped:
    """`jsub …` (or jstart/qsub/qcronsub): cron's shell expands the words, then jsub parses them."""
    argv: list[str] = []
    k = 0
    while k < len(rest):
        t = rest[k]
        if t.kind == "op":
            bare = t.operator
            if t.is_redirect():
                if bare in ("<<", "<<-"):
                    raise _LineError("a here-document cannot be used in a crontab line")
                if k + 1 >= len(rest) or rest[k + 1].kind != "word":
                    raise _LineError(f"'{t.text}' needs a file name")
                k += 2  # it redirected jsub's own output (or input), not the job's: dropped
                continue
            raise _LineError(f"only redirections may follow a {cmd} command, not '{t.text}'; put the rest "
                             "in a script or on its own line")
        try:
            argv.extend(expand(t, env))
        except Unstatic as e:
            raise _LineError(f"{cmd}: cannot know {e} before the job runs (cron's shell expanded it on the "
                             f"cron host at each run). Use a literal value, a variable set in this crontab, "
                             f"or a script") from None
        if t.glob:
            warnings.append(f"the unquoted wildcard in '{t.text}' is passed literally (quote it to be sure)")
        k += 1

    from gridshim import submit  # noqa: PLC0415  (imports translate; crontab's own grammar does not need it)

    cron_env = {"PATH": CRON_PATH, **env}
    port = SubmitHost(tool=host.tool, home=home, cwd=pre.cwd, env=cron_env, uid=host.uid, isdir=host.isdir,
                      exists=host.exists, executable=host.executable, read_text=host.read_text)
    shell: Callable[[str, tuple[str, ...]], str] | None = None
    if pre.tests:
        if cmd == "qsub":
            raise _LineError("qsub: a test before qsub ran on the cron host; put it at the top of the job script")
        # cron ran the test on the cron host, in its working directory, before jsub; the job runs it
        # first, there, and ends successfully without running the program when it fails.
        test = " && ".join(pre.tests)

        def guarded(program: str, args: tuple[str, ...]) -> str:
            return (f"if ! ( cd {shlex.quote(pre.cwd)} && {test} ); then exit 0; fi; "
                    f"exec {shlex.join([program, *args])}")
        shell = guarded
    try:
        p = submit.plan(cmd, argv, settings=settings, host=port, command_line=entry.command.strip(),
                        cron=submit.Cron(schedule=entry.schedule, schedule_text=entry.schedule_text,
                                         timezone=entry.timezone, shell=shell))
    except submit.HelpRequested:
        raise _LineError(f"{cmd}: -h asks for help; it is not a job") from None
    except GridshimError as e:  # UsageError included: jsub's own words; QsubError: qsub's (one line here)
        text = e.message.replace("\n", " ") if getattr(e, "multiline", False) else e.message
        raise _LineError(f"{cmd}: {text}") from None
    watchdog = p.watchdog
    if p.late_error is not None:
        warnings.append(f"{p.program} is not executable (chmod +x it, or the job will fail)")
    elif not p.found:
        program = p.request.argv[0] if p.request.argv else argv[-1]
        if program.startswith("/"):
            warnings.append(f"program {program} does not exist (yet); the job will run it from there")
        else:
            warnings.append(f"program '{program}' was not found in PATH ({cron_env['PATH']}) "
                            f"nor in {pre.cwd}; it is passed unchanged (the image may have it)")
    if p.sync_ignored:
        warnings.append("-sync y has no meaning for a scheduled job; ignored")
    result = p
    warnings.extend(result.warnings)
    return _Mapped(request=result.request, key=object_name(result.request.name, limit=NAME_LIMIT),
                   watchdog=watchdog, rewritten=None, warnings=warnings)


def _map_plain_line(entry: Entry, command: str, rest: str, head: Token, pre: Prefix, *, stdin: str | None,
                    env: dict[str, str], home: str, settings: Settings, host: CronHost,
                    warnings: list[str]) -> _Mapped:
    """Any other command: Toolforge's `jsub -N cron-<i> -once -quiet [-cwd] CMD`, where CMD is run by the
    crontab's SHELL (/bin/sh) in the job, with HOME and the crontab's variables, so that ~, $HOME, >, 2>&1
    (and &>, read as bash reads it) do what they do in cron."""
    job = f"cron-{entry.index}"
    shell_path = env.get("SHELL") or CRON_SHELL
    sh_like = posixpath.basename(shell_path) in ("sh", "dash")
    try:
        shell = posix_redirections(rest) if sh_like else rest
    except ValueError as e:
        raise _LineError(f"cannot read the command: {e}") from None
    if stdin is not None:
        shell = f"printf '%s' {shlex.quote(stdin)} | {{\n{shell}\n}}"
    if not sh_like:
        shell = f"exec {shlex.quote(shell_path)} -c {shlex.quote(shell)}"
    job_env = tuple((k, v) for k, v in entry.env if k != "HOME")
    opts = GridOptions(name=job, once=True, quiet=True, cwd=pre.cwd != home, env=job_env)
    try:
        result = translate(opts, preset=Preset.JSUB, settings=settings,
                           host=SubmitHost(tool=host.tool, home=home, cwd=pre.cwd, env=dict(env), uid=host.uid,
                                           isdir=host.isdir),
                           program=shell_path, schedule=entry.schedule, schedule_text=entry.schedule_text,
                           timezone=entry.timezone, shell=shell, command_line=entry.command.strip())
    except GridshimError as e:
        raise _LineError(e.message) from None
    warnings.extend(result.warnings)
    prefix = command[:head.start]
    rewritten = (f"{prefix}/usr/bin/jsub -N {job} -once -quiet {'-cwd ' if pre.cd_end else ''}"
                 f"{command[head.start:].strip()}")
    key = "cron-" + hashlib.sha256(entry.command.strip().encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return _Mapped(request=result.request, key=key, watchdog=False, rewritten=rewritten, warnings=warnings)


def _suffixed(base: str, suffix: str) -> str:
    return f"{base[:NAME_LIMIT - len(suffix) - 1].rstrip('-')}-{suffix}"


def plan(text: str, *, settings: Settings, host: CronHost, source: str = "-") -> Plan:
    """Validate every line of TEXT and decide every entry's job. Raises CrontabInvalid listing every
    problem (with its line number) if any line is wrong: then nothing may be installed."""
    entries, problems = parse(text)
    mapped: list[tuple[Entry, _Mapped]] = []
    for entry in entries:
        try:
            mapped.append((entry, _map_entry(entry, settings=settings, host=host)))
        except _LineError as e:
            problems.append(Problem(entry.line, e.message))
    if problems:
        raise CrontabInvalid([Problem(p.line, printable(p.message)) for p in problems], source=source)

    # CronJob names: the job name (-N, or the program's) for grid lines, a digest of the command for
    # plain ones, so adding or removing other lines never renames an entry. Entries that would share a
    # name get a digest of their own line; identical lines are then numbered.
    counts: dict[str, int] = {}
    for _, m in mapped:
        counts[m.key] = counts.get(m.key, 0) + 1
    used: set[str] = set()
    jobs: list[PlannedJob] = []
    warnings: list[Problem] = []
    for entry, m in mapped:
        name = m.key
        if counts[name] > 1:
            digest = hashlib.sha256(f"{entry.schedule_text}\0{entry.command.strip()}".encode(
                "utf-8", "surrogateescape")).hexdigest()[:6]
            name = _suffixed(m.key, digest)
        n = 1
        candidate = name
        while candidate in used:
            n += 1
            candidate = _suffixed(name, str(n))
        name = candidate
        used.add(name)
        schedule = entry.schedule
        if entry.macro and settings.spread_macros:
            schedule = spread_schedule(entry.macro, tool=host.tool, job=name)
        req = replace(m.request, schedule=schedule, schedule_text=entry.schedule_text, timezone=entry.timezone)
        jobs.append(PlannedJob(entry=entry, name=name, request=req, watchdog=m.watchdog, rewritten=m.rewritten,
                               warnings=tuple(m.warnings)))
        warnings.extend(Problem(entry.line, printable(w)) for w in m.warnings)
    return Plan(jobs=tuple(jobs), warnings=tuple(warnings))


def note(plan_: Plan) -> str | None:
    """Toolforge's NOTE when plain commands were turned into grid submissions (the text itself is kept)."""
    rewritten = plan_.rewritten
    if not rewritten:
        return None
    lines = ["NOTE: some crontab entries have been modified to grid submissions.",
             "      They run as (the crontab itself is kept as you wrote it):"]
    for j in rewritten[:NOTE_LIMIT]:
        lines.append(f"      line {j.entry.line}: {j.entry.schedule_text} {j.rewritten}")
    if len(rewritten) > NOTE_LIMIT:
        lines.append(f"      … and {len(rewritten) - NOTE_LIMIT} more ('crontab --dry-run FILE' shows them all)")
    return "\n".join(lines) + "\n"

