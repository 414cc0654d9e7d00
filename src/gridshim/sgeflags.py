"""The qsub dialect: Grid Engine's own option syntax → `GridOptions` (pure; no decisions).

Layer: parsing only, like gridflags.py (the jsub dialect). Imports gridflags (for GridOptions),
errors. Follows Son of Grid Engine 8.1.9 (`parse_qsub.c`, `parse_job_cull.c`, `read_defaults.c`)
as ../shared/docs/qsub-behaviour.md §1–§2 gives it:

- sources are joined defaults files → `#$` lines of the script → command line, then folded: scalar
  options last-wins, `-l`/`-v` keyed (a later entry for the same key replaces the earlier), `-M`
  accumulates, `-m` letters OR-ed (`n` resets), `-q` from a later source replaces the earlier ones,
  `-clear` drops everything before it, `-C` only from the command line;
- `#$` lines anywhere in the file (column 1, prefix `-C`), cut at the first `#`, split on blanks
  keeping quoted sections, then every quote character deleted;
- errors carry SGE's text and its raw answer status as the exit code (2, 4, 5, 7, 14).
"""

from __future__ import annotations

import re

from gridshim import quantity
from gridshim.errors import GridshimError, Rejected
from gridshim.gridflags import GridOptions
from gridshim.record import field, record, replace

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up, docs/performance.md)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

# SGE answer status numbers used as exit codes (sge_answer.h)
ESEMANTIC, EUNKNOWN, ENOIMP, ESYNTAX, EDISK = 2, 4, 5, 7, 14


class QsubError(GridshimError):
    """A qsub client-side error: SGE's message and its raw status as the exit code.

    `prefix` is how qsub prints it: `qsub: ` for the command line, nothing for a defaults file,
    `Unable to read script file because of error: ` for the script.
    """

    def __init__(self, message: str, status: int, *, prefix: str = "qsub: ", multiline: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.prefix = prefix
        self.multiline = multiline  # SGE's text has a line break of its own (shown as one)
        self.exit_code = status  # type: ignore[assignment]

    def shown(self) -> str:
        return f"{self.prefix}{self.message}"


# Option arities. Anything not listed is "invalid option argument" (2), except the UNSUPPORTED ones,
# which SGE knows and gridshim cannot honour (ENOIMP, as SGE's "Unknown option").
FLAG, VALUE, PAIR = 0, 1, 2
OPTIONS: dict[str, int] = {
    "-a": VALUE, "-A": VALUE, "-b": VALUE, "-C": VALUE, "-clear": FLAG, "-cwd": FLAG, "-e": VALUE,
    "-h": FLAG, "-hard": FLAG, "-help": FLAG, "-i": VALUE, "-j": VALUE, "-js": VALUE, "-l": VALUE,
    "-m": VALUE, "-M": VALUE, "-N": VALUE, "-notify": FLAG, "-now": VALUE, "-o": VALUE, "-p": VALUE,
    "-P": VALUE, "-pe": PAIR, "-q": VALUE, "-r": VALUE, "-R": VALUE, "-S": VALUE, "-shell": VALUE,
    "-soft": FLAG, "-sync": VALUE, "-terse": FLAG, "-v": VALUE, "-V": FLAG, "-w": VALUE, "-wd": VALUE,
    "-@": VALUE, "-t": VALUE, "-tc": VALUE, "-hold_jid": VALUE, "-hold_jid_ad": VALUE,
    # cannot be honoured on Kubernetes (or not yet): refused with status 5
    "-ckpt": VALUE, "-c": VALUE,
    "-dl": VALUE, "-masterq": VALUE, "-ac": VALUE, "-dc": VALUE, "-sc": VALUE, "-ar": VALUE,
    "-binding": VALUE, "-jsv": VALUE, "-verify": FLAG, "-display": VALUE, "-pty": VALUE, "-U": VALUE,
    # gridshim's own (double dash never clashes with SGE)
    "--dry-run": FLAG, "--debug": FLAG,
}
UNSUPPORTED: dict[str, str] = {
    "-ckpt": "checkpointing", "-c": "checkpointing", "-dl": "deadline scheduling", "-masterq": "parallel queues",
    "-ac": "job contexts", "-dc": "job contexts", "-sc": "job contexts", "-ar": "advance reservations",
    "-binding": "core binding", "-jsv": "job submission verifiers", "-verify": "-verify",
    "-display": "interactive jobs", "-pty": "interactive jobs", "-U": "access lists",
}
# Repeating these within one source prints SGE's warning (MSG_PARSE_XOPTIONALREADYSETOVERWRITINGSETING_S).
WARN_REPEAT = ("-a", "-A", "-b", "-C", "-dl", "-h", "-j", "-N", "-now", "-P", "-pe", "-r", "-R", "-shell",
               "-sync", "-w")
_MUST_HAVE = {"-pe": "-pe option must have pe_name argument", "-v": "-v option must have variable list argument",
              "-S": "-S option must have path_name argument", "-@": "-@ option must have file argument",
              "-t": "-t option must have a list of task id ranges"}
_YES = {"y": True, "yes": True, "n": False, "no": False}
# -l shortcuts of the stock complexes gridshim maps (complex(5) "shortcut" column; the centry files of
# SGE's source/dist/util/resources: h_rt, s_rt and h_vmem are their own shortcuts, there is no `rt`)
SHORTCUTS = {"mf": "mem_free", "vf": "virtual_free", "s": "slots"}


@record(frozen=True)
class Event:
    """One option as read from one source (0 = defaults files, 1 = script, 2 = command line)."""

    flag: str
    value: str | None
    source: int
    value2: str | None = None  # -pe's range


@record(frozen=True, kw_only=True)
class Cmdline:
    events: list[Event] = field(default_factory=list)
    script: str | None = None  # None: read the script from stdin
    args: tuple[str, ...] = ()
    help: bool = False


def _yes(flag: str, value: str) -> bool:
    try:
        return _YES[value.lower()]
    except KeyError:
        raise QsubError(f'invalid option argument "{flag} {value}"', ESYNTAX) from None


def tokens_to_events(tokens: list[str], source: int, *, allow_script: bool,
                     read_file: Callable[[str], str | None] | None = None, depth: int = 0,
                     ) -> tuple[list[Event], int]:
    """TOKENS → events, and the index where the script (or `-`/`--`) starts (len(tokens) if none)."""
    events: list[Event] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if allow_script and (tok in ("-", "--") or not tok.startswith("-")):
            return events, i
        if not tok.startswith("-") or tok in ("-", "--"):
            raise QsubError(f'invalid option argument "{tok}"', ESEMANTIC)
        arity = OPTIONS.get(tok)
        if arity is None:
            raise QsubError(f'invalid option argument "{tok}"', ESEMANTIC)
        if arity != FLAG and i + 1 >= len(tokens):
            raise QsubError(_MUST_HAVE.get(tok, f"{tok} option must have argument"), ESEMANTIC)
        if tok in UNSUPPORTED:
            raise unsupported(tok, None if arity == FLAG else tokens[i + 1])
        if arity == FLAG:
            events.append(Event(tok, None, source))
            i += 1
            continue
        if arity == PAIR:
            if i + 2 >= len(tokens):
                raise QsubError("-pe option must have range as 2nd argument", ESEMANTIC)
            events.append(Event(tok, tokens[i + 1], source, tokens[i + 2]))
            i += 3
            continue
        if tok == "-@":
            events += _include(tokens[i + 1], source, read_file, depth)
            i += 2
            continue
        events.append(Event(tok, tokens[i + 1], source))
        i += 2
    return events, len(tokens)


def unsupported(flag: str, value: str | None) -> QsubError:
    """SGE's answer for an option its parser knows and qsub does not honour (MSG_ANSWER_UNKOWNOPTIONX_S,
    `Unknown option -display host:0`, status 5), then a line of gridshim's saying why."""
    shown = flag if value is None else f"{flag} {value}"
    return QsubError(f"Unknown option {shown}\n(gridshim does not support {UNSUPPORTED[flag]} yet)", ENOIMP,
                     multiline=True)


def _include(path: str, source: int, read_file: Callable[[str], str | None] | None, depth: int) -> list[Event]:
    if read_file is None or depth > 8:
        raise QsubError(f"error opening {path}: Too many levels of -@", EDISK)
    text = read_file(path)
    if text is None:
        raise QsubError(f"error opening {path}: No such file or directory", EDISK)
    events, _ = tokens_to_events(defaults_tokens(text), source, allow_script=False, read_file=read_file,
                                 depth=depth + 1)
    return events


def split_cmdline(argv: list[str], *, read_file: Callable[[str], str | None] | None = None) -> Cmdline:
    """`qsub [opts] [script|-|--] [args...]`: every token after the script is a job argument."""
    if any(a in ("-help",) for a in argv[:1]):
        return Cmdline(help=True)
    events, start = tokens_to_events(list(argv), 2, allow_script=True, read_file=read_file)
    if any(e.flag == "-help" for e in events):
        return Cmdline(events=events, help=True)
    if start >= len(argv):
        return Cmdline(events=events)
    first = argv[start]
    if first == "--":
        if start + 1 >= len(argv):
            raise QsubError("-- option must be followed by job arguments", ESEMANTIC)
        return Cmdline(events=events, args=tuple(argv[start + 1:]))
    if first == "-":
        return Cmdline(events=events, args=tuple(argv[start + 1:]))
    return Cmdline(events=events, script=first, args=tuple(argv[start + 1:]))


def _split_quoted(text: str) -> list[str]:
    """SGE's split on blanks keeping "…"/'…' sections whole; then every quote character is deleted."""
    out: list[str] = []
    cur: list[str] = []
    quote = ""
    have = False
    for ch in text:
        if quote:
            if ch == quote:
                quote = ""
            else:
                cur.append(ch)
            continue
        if ch in "\"'":
            quote, have = ch, True
        elif ch in " \t\n\r":
            if cur or have:
                out.append("".join(cur))
            cur, have = [], False
        else:
            cur.append(ch)
    if cur or have:
        out.append("".join(cur))
    return [t.replace('"', "").replace("'", "") for t in out]


def directive_tokens(script: str, prefix: str = "#$") -> list[str]:
    """Every line of the whole file that starts with PREFIX (column 1), cut at the next '#'."""
    if not prefix:
        return []
    tokens: list[str] = []
    for line in script.splitlines():
        if not line.startswith(prefix):
            continue
        body = line[len(prefix):].split("#", 1)[0].rstrip()
        tokens += _split_quoted(body)
    return tokens


def defaults_tokens(text: str) -> list[str]:
    """sge_request(5): blank lines and lines with '#' in column 1 are skipped; text after '#' is cut."""
    tokens: list[str] = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        tokens += _split_quoted(line.split("#", 1)[0])
    return tokens


def script_events(script: str, *, prefix: str, read_file: Callable[[str], str | None] | None = None) -> list[Event]:
    try:
        events, _ = tokens_to_events(directive_tokens(script, prefix), 1, allow_script=False, read_file=read_file)
    except QsubError as e:
        raise QsubError(e.message, e.status, prefix="Unable to read script file because of error: ",
                        multiline=e.multiline) from None
    return [e for e in events if e.flag != "-C"]  # -C in a script is silently ignored


def defaults_events(text: str, *, read_file: Callable[[str], str | None] | None = None) -> list[Event]:
    try:
        events, _ = tokens_to_events(defaults_tokens(text), 0, allow_script=False, read_file=read_file)
    except QsubError as e:
        raise QsubError(e.message, e.status, prefix="", multiline=e.multiline) from None
    return events


def directive_prefix(cmdline: list[Event]) -> str:
    prefix = "#$"
    for e in cmdline:
        if e.flag == "-C":
            prefix = e.value or ""
    return prefix


def is_binary(events: list[Event]) -> bool:
    """-b y on the command line or in a defaults file: the script is not read for directives."""
    binary = False
    for e in events:
        if e.flag == "-b":
            binary = _yes("-b", e.value or "")
    return binary


def repeat_warnings(events: list[Event]) -> list[str]:
    """SGE's 'option has already been set' warnings (stdout, before the submit line)."""
    seen: set[tuple[int, str]] = set()
    out: list[str] = []
    for e in events:
        if e.flag in WARN_REPEAT:
            key = (e.source, e.flag)
            if key in seen:
                head = "qsub: warning: " if e.source == 2 else "warning: "
                out.append(f'{head}"{e.flag}" option has already been set, overriding previous setting')
            seen.add(key)
    return out


# -- values ------------------------------------------------------------------------------------------

def _date_ok(value: str) -> bool:
    """[[CC]YY]MMDDhhmm[.SS] with every field in range (SGE's -a and -dl date_time)."""
    m = re.fullmatch(r"((?:\d{2}){0,2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d{2}))?", value)
    if not m:
        return False
    month, day, hour, minute = (int(g) for g in m.groups()[1:5])
    secs = int(m.group(6) or 0)
    return 1 <= month <= 12 and 1 <= day <= 31 and hour <= 23 and minute <= 59 and secs <= 61


def parse_memory(value: str) -> int:
    """SGE memory_specifier: lower-case multipliers are decimal (k = 1000), upper-case binary (K = 1024);
    ValueError (quantity.QuantityError) if VALUE is not one."""
    return quantity.parse_memory(value, quantity.SGE)


def parse_time(value: str) -> int | None:
    """SGE time_specifier: seconds or h:m:s (empty parts count 0); INFINITY → None (no limit)."""
    v = value.strip()
    if v.upper() == "INFINITY":
        return None
    parts = v.split(":")
    if len(parts) > 3 or not all(p.isdigit() or p == "" for p in parts) or not any(parts):
        raise ValueError(value)
    seconds = 0
    for p in parts:
        seconds = seconds * 60 + int(p or 0)
    return seconds


def parse_pe_range(value: str) -> tuple[int, int | None]:
    """`n`, `n-m`, `n-` (to infinity), `-m` (= 1-m) → (low, high or None)."""
    m = re.fullmatch(r"(\d*)(-?)(\d*)", value.strip())
    if not m or not (m.group(1) or m.group(3)) or (not m.group(2) and not m.group(1)):
        raise QsubError(f'Wrong pe range "{value}"', ESYNTAX)
    low = int(m.group(1)) if m.group(1) else 1
    high = (int(m.group(3)) if m.group(3) else None) if m.group(2) else low
    if high is not None and high < low:
        low, high = high, low
    if low == 0 and high == 0:
        raise QsubError(f'Wrong pe range "{value}"', ESYNTAX)
    return low, high


MAX_AJ_TASKS = 75000  # sge_conf(5) max_aj_tasks


def _strtol(text: str) -> tuple[int | None, str]:
    """C's strtol(…, 10) as SGE's range parser uses it: leading blanks, a sign, digits; the rest."""
    m = re.match(r"\s*([-+]?\d+)", text)
    if not m:
        return None, text
    return int(m.group(1)), text[m.end():]


def parse_task_range(value: str) -> tuple[int, int, int]:
    """`-t n[-m[:s]]` → (first, last, step) as SGE's range_parse_from_string reads it: one range only,
    n>m swapped, a step of 1 when none is given, `-t 5` = the one task 5. Task id 0 and the task
    limit are the qmaster's to refuse (translate)."""
    if "," in value:
        raise QsubError("-t option only allows one range specification", ESYNTAX)

    def number(text: str) -> tuple[int, str]:
        n, rest = _strtol(text)
        if n is None:
            shown = text.replace("\n", "\\n")  # the one line break is SGE's
            raise QsubError("Numerical value invalid!\nThe initial portion of string "
                            f'"{shown}" contains no decimal number', ESYNTAX, multiline=True)
        return n, rest

    first, rest = number(value)
    last, step = first, 1
    if rest:
        if not rest.startswith("-"):
            raise QsubError(f'Range specifier "{value}" has unknown trailer "{rest}"', ESYNTAX)
        last, rest = number(rest[1:])
        if rest:
            if not rest.startswith(":"):
                raise QsubError(f'Range specifier "{value}" has unknown trailer "{rest}"', ESYNTAX)
            step, rest = number(rest[1:])
            if rest:
                raise QsubError(f'Range specifier "{value}" has unknown trailer "{rest}"', ESYNTAX)
    if step <= 0:
        raise QsubError("Negative or zero step in range is not allowed", ESYNTAX)
    if first > last:
        first, last = last, first
    return first, last, step


_JOB_LIST_ITEM = re.compile(r"[^\s,]+")


def parse_job_list(flag: str, value: str) -> list[str]:
    """`-hold_jid` / `-hold_jid_ad` wc_job_list: job ids, names or patterns, comma-separated."""
    items = value.split(",")
    if not value or not all(_JOB_LIST_ITEM.fullmatch(i) for i in items):
        what = "jid_hold" if flag == "-hold_jid" else "jid_hold_ad"
        raise QsubError(f'Wrong {what} list format "{value}" specified to {flag} option', ESYNTAX)
    return items


def _resource_pairs(value: str) -> list[tuple[str, str]]:
    pairs = []
    for item in re.split(r"[,\s]+", value.strip()):
        if not item:
            continue
        name, eq, val = item.partition("=")
        if not name or (eq and not val):
            raise QsubError(f'Wrong resource list format "{value}" specified to -l option', ESYNTAX)
        pairs.append((name, val if eq else "TRUE"))
    if not pairs:
        raise QsubError(f'Wrong resource list format "{value}" specified to -l option', ESYNTAX)
    return pairs


def _env_pairs(value: str, environ: dict[str, str]) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for item in value.split(","):
        var, eq, val = item.partition("=")
        if not var or (not eq and var not in environ):
            raise QsubError(f'Wrong variable list format -v "{value}" or environment variable not set', ESYNTAX)
        out.append((var, val if eq else None))
    return out


def _path(flag: str, value: str) -> str | None:
    """`[[host]:]path,…` → the path for every host (the entry without a host); host entries are kept
    only when no default exists (they name this submit host's paths, as SGE would use them on one)."""
    what = {"-o": "stdout path list", "-e": "path list", "-i": "stdin path list", "-S": "shell path list"}[flag]
    default = None
    other = None
    for item in value.split(","):
        if not item:
            raise QsubError(f'Wrong {what} format "{value}" specified to {flag} option', ESYNTAX)
        if item.startswith(":"):
            default = item[1:]
        elif ":" in item and not item.startswith("/"):
            other = other or item.split(":", 1)[1]
        else:
            default = item
    path = default if default is not None else other
    if not path:
        raise QsubError(f'Wrong {what} format "{value}" specified to {flag} option', ESYNTAX)
    return path


# -- folding -------------------------------------------------------------------------------------------

def fold(events: list[Event], *, environ: dict[str, str], default_mem: int) -> GridOptions:
    """Merge the events of every source by SGE's rules into GridOptions. An error is worded for the
    source its option came from (qsub-behaviour §2.2)."""
    cleared = max((i for i, e in enumerate(events) if e.flag == "-clear"), default=-1)
    m = _Merge(opts=GridOptions(mem=None), environ=environ)
    for e in events[cleared + 1:]:
        try:
            _fold_one(m, e)
        except QsubError as err:
            raise QsubError(err.message, err.status, prefix=SOURCE_PREFIX[e.source], multiline=err.multiline) from None
    opts = m.opts
    if m.queues:
        opts = replace(opts, queue=m.queues[0])
        m.extra["queues"] = m.queues
    if m.mail:
        opts = replace(opts, mail_events=m.mail)
    opts = _memory(opts, m.resources, default_mem=default_mem)
    return replace(opts, env=tuple(m.env.items()), sge={**m.extra, **opts.sge})  # opts.sge: _memory's h_rt, s_rt


# How qsub prints an error, by where the option came from (qsub-behaviour §2.2).
SOURCE_PREFIX = {0: "", 1: "Unable to read script file because of error: ", 2: "qsub: "}


@record
class _Merge:
    """The merge so far: scalars in opts, keyed lists in dicts, the -q and -m special cases."""

    opts: GridOptions
    environ: dict[str, str]
    resources: dict[str, str] = field(default_factory=dict)
    env: dict[str, str | None] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # becomes GridOptions.sge
    queue_source: int = -1
    queues: list[str] = field(default_factory=list)
    mail: str = ""


def _fold_one(m: _Merge, e: Event) -> None:
    """One option into the merge, by the rule for its kind (qsub-behaviour §1.2)."""
    f, v = e.flag, e.value or ""
    if f == "-N":
        if not v:
            raise QsubError("empty string argument to -N option invalid", ESYNTAX)
        if "/" in v:
            raise QsubError("argument to -N option must not contain / ", ESYNTAX)
        m.opts = replace(m.opts, name=v)
    elif f == "-a":
        if not _date_ok(v):
            raise QsubError(f'Wrong date/time format "{v}" specified to -a option', ESYNTAX)
        m.opts = replace(m.opts, start_at=v)
    elif f == "-A":
        m.extra["account"] = v
    elif f == "-b":
        m.opts = replace(m.opts, binary=_yes(f, v))
    elif f in ("-cwd",):
        m.opts = replace(m.opts, cwd=True, wd=None)
    elif f == "-wd":
        m.opts = replace(m.opts, wd=v, cwd=False)
    elif f in ("-o", "-e", "-i"):
        p = _path(f, v)
        m.opts = replace(m.opts, **{{"-o": "out", "-e": "err", "-i": "stdin"}[f]: p})
    elif f == "-S":
        m.extra["shell"] = _path(f, v)
    elif f == "-j":
        m.opts = replace(m.opts, join=_yes(f, v))
    elif f == "-js":
        if not v.isdigit():
            raise QsubError("invalid jobshare, must be an unsigned integer", ESEMANTIC)
        m.extra["jobshare"] = int(v)
    elif f == "-l":
        for name, val in _resource_pairs(v):
            m.resources[SHORTCUTS.get(name, name)] = val
    elif f == "-m":
        if not re.fullmatch(r"[beasn]+", v):
            raise QsubError(f'Wrong mail options list format "{v}" specified to -m option', ESYNTAX)
        for ch in v:  # letters OR-ed across sources; n resets to "no mail" at that point
            letters = m.mail.replace("n", "")
            m.mail = "" if ch == "n" else letters + (ch if ch not in letters else "")
        m.mail = m.mail or "n"
    elif f == "-M":
        addrs = v.split(",")
        if not all(re.fullmatch(r"[^@\s,]+(@[^@\s,]+)?", a) for a in addrs):
            raise QsubError(f'Wrong mail list format "{v}" specified to -M option', ESYNTAX)
        m.opts = replace(m.opts, mail_to=m.opts.mail_to + tuple(a for a in addrs if a not in m.opts.mail_to))
    elif f == "-notify":
        m.extra["notify"] = True
    elif f == "-now":
        m.extra["now"] = _yes(f, v)
    elif f == "-p":
        if not re.fullmatch(r"-?\d+", v) or not -1023 <= int(v) <= 1024:
            raise QsubError(f'invalid priority "{v}".  Must be an integer from -1023 to 1024', ESYNTAX)
        m.extra["priority"] = int(v)
    elif f == "-P":
        m.extra["project"] = v
    elif f == "-pe":
        m.extra["pe"] = (v, *parse_pe_range(e.value2 or ""))
    elif f == "-q":
        if not v:
            raise QsubError(f'Wrong queue list format "{v}" specified to -q option', ESYNTAX)
        if e.source != m.queue_source:
            m.queues, m.queue_source = [], e.source  # a later source replaces the earlier -q
        m.queues += [q for q in v.split(",") if q]
    elif f == "-r":
        m.extra["rerun"] = _yes(f, v)
    elif f == "-R":
        m.extra["reservation"] = _yes(f, v)
    elif f == "-shell":
        m.extra["shell_mode"] = _yes(f, v)
    elif f == "-sync":
        m.opts = replace(m.opts, sync=_yes(f, v))
    elif f == "-terse":
        m.extra["terse"] = True
    elif f == "-t":
        m.extra["tasks"] = list(parse_task_range(v))
    elif f == "-tc":
        if not v.isdigit():
            raise QsubError(f'invalid task concurrency number "{v}". Must be an integer greater or equal to 0.',
                            ESYNTAX)
        m.extra["tc"] = int(v)
    elif f in ("-hold_jid", "-hold_jid_ad"):
        key = f[1:]
        held = m.extra.setdefault(key, [])
        held += [j for j in parse_job_list(f, v) if j not in held]
    elif f == "-h":
        m.extra["hold"] = True
    elif f == "-v":
        for var, given in _env_pairs(v, m.environ):
            m.env.pop(var, None)
            m.env[var] = m.environ.get(var) if given is None else given
            m.extra.setdefault("v_vars", []).append(var)
    elif f == "-V":
        m.extra["export_all"] = True
        for var, val in m.environ.items():
            m.env.pop(var, None)
            m.env[var] = val
    elif f == "-w":
        if v not in ("e", "w", "n", "p", "v"):
            raise QsubError(f'invalid option argument "-w {v}"', ESYNTAX)
        m.extra["verify"] = v
    elif f in ("-hard", "-soft"):
        m.opts = replace(m.opts, ignored=m.opts.ignored + (f,))
    elif f == "--dry-run":
        m.opts = replace(m.opts, dry_run=True)
    elif f == "--debug":
        m.opts = replace(m.opts, debug=True)
    elif f in ("-C", "-clear", "-help"):
        pass
    else:  # pragma: no cover  (OPTIONS and this function are kept in step by tests)
        raise AssertionError(f)


MEMORY_LIMITS = ("h_vmem", "h_rss", "s_vmem", "s_rss", "h_data", "s_data")
MEMORY_REQUESTS = ("mem_free", "virtual_free")


def _memory(opts: GridOptions, resources: dict[str, str], *, default_mem: int) -> GridOptions:
    """-l values that gridshim maps (memory, h_rt, slots, release); the rest stay in `resources`."""
    limit: int | None = None
    request: int | None = None
    limits: dict[str, int | None] = {}  # h_rt, s_rt: seconds, None for INFINITY
    rest: list[tuple[str, str]] = []
    for name, val in resources.items():
        if name in MEMORY_LIMITS or name in MEMORY_REQUESTS:
            try:
                n = parse_memory(val)
            except ValueError:
                raise Rejected(f'wrong type in "{name}={val}" - memory expected') from None
            if name in MEMORY_LIMITS:
                limit = n if limit is None else min(limit, n)  # the tightest hard limit is what binds
            else:
                request = n if request is None else max(request, n)
        elif name in ("h_rt", "s_rt"):
            try:
                limits[name] = parse_time(val)
            except ValueError:
                raise Rejected(f'wrong type in "{name}={val}" - time expected') from None
        elif name == "release":
            opts = replace(opts, release=val)
        else:
            rest.append((name, val))
    if limits:
        h_rt, s_rt = limits.get("h_rt"), limits.get("s_rt")
        # h_rt and s_rt as asked (None: not given or INFINITY), for the record qstat -j and -r show
        opts = replace(opts, wall_seconds=wall_clock_limit(h_rt, s_rt),
                       sge={**opts.sge, "h_rt": h_rt, "s_rt": s_rt, "soft_seconds": soft_warning(h_rt, s_rt)})
    return replace(opts, mem=limit, mem_request=request, resources=tuple(rest))


# queue_conf(5)'s `notify` of SGE's queue template (00:00:60, sge_cqueue.c): how long after s_rt's
# SIGUSR1 the kill follows.
QUEUE_NOTIFY_DEFAULT = 60


def wall_clock_limit(h_rt: int | None, s_rt: int | None) -> int | None:
    """When the job is stopped (activeDeadlineSeconds), from -l h_rt and -l s_rt (None: not given, or
    INFINITY, which is no limit of its own).

    qsub-behaviour §1.7: past h_rt the job is killed; past s_rt it gets SIGUSR1 (the wrapper sends it,
    soft_warning) and is killed once the queue's notify time has passed. So the deadline is the earlier
    of h_rt and s_rt + QUEUE_NOTIFY_DEFAULT. docs/qsub.md "Resources"."""
    given = [t for t in (h_rt, None if s_rt is None else s_rt + QUEUE_NOTIFY_DEFAULT) if t is not None]
    return min(given) if given else None


def soft_warning(h_rt: int | None, s_rt: int | None) -> int | None:
    """Seconds after the program starts at which the wrapper sends it SIGUSR1 (s_rt), or None: no s_rt,
    or h_rt kills the job first (s_rt not earlier than h_rt)."""
    if s_rt is None or (h_rt is not None and s_rt >= h_rt):
        return None
    return s_rt
