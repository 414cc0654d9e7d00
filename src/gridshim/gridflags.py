"""Grid Engine submission flags: jsub's argv, ~/.jsubrc and `#$` lines → `GridOptions` (pure).

Layer: parsing only; no decisions (those live in translate.py). Imports model and errors.
The parser follows the final Toolforge jsub (argparse, single-dash words, no abbreviation,
everything after the program belongs to the program) and reproduces its error messages, exit 2.
"""

from __future__ import annotations

import re

from gridshim import quantity
from gridshim.errors import GridshimError, UsageError
from gridshim.record import field, record, replace

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up, docs/performance.md)
if TYPE_CHECKING:
    from collections.abc import Iterable

# jsub's own flags and the qsub flags it passes through. FLAG: no value; VALUE: one value.
FLAG, VALUE = 0, 1
OPTIONS: dict[str, int] = {
    # jsub's own
    "-continuous": FLAG, "-once": FLAG, "-mem": VALUE, "-quiet": FLAG, "-stderr": FLAG,
    "-umask": VALUE, "-release": VALUE, "-N": VALUE,
    # qsub's, as jsub accepted them
    "-a": VALUE, "-cwd": FLAG, "-hard": FLAG, "-soft": FLAG, "-i": VALUE, "-m": VALUE, "-now": VALUE,
    "-p": VALUE, "-sync": VALUE, "-v": VALUE, "-wd": VALUE, "-l": VALUE, "-e": VALUE, "-o": VALUE,
    "-j": VALUE, "-M": VALUE, "-q": VALUE, "-b": VALUE,
    # gridshim's additions (double dash, so they never clash with a grid flag)
    "--dry-run": FLAG, "-debug": FLAG, "--debug": FLAG,
}
HELP = ("-h", "--help")
USAGE = ("usage: {prog} [-h] [-continuous] [-once] [-mem MEM] [-quiet] [-stderr] [-umask UMASK]\n"
         "       [-release RELEASE] [-N NAME] [-a DATE] [-cwd] [-i PATH] [-l RES=VAL[,...]] [-e PATH]\n"
         "       [-o PATH] [-j y|n] [-v VAR[=VAL][,...]] [-wd DIR] [-sync y|n] [-q QUEUE] [-M ADDR] [-m bea]\n"
         "       [--dry-run] program [args ...]")

_YES = {"y": True, "yes": True, "n": False, "no": False}
_JSUBRC_LINE = re.compile(r"^(-[a-zA-Z]+)(\s+([^#\s]+))?")
# One `#$` line after the prefix: an option and at most one whitespace-free value (jsub's own pattern).
DIRECTIVE = re.compile(r"\s*(-[a-zA-Z]+)(?:\s+([^#\s]+))?")
# -l resources jsub folded or that gridshim maps; others are accepted with a warning (see translate).
MEMORY_RESOURCES = ("h_vmem", "virtual_free", "mem_free")


@record(frozen=True, kw_only=True)
class GridOptions:
    """Typed but uninterpreted grid flags, after the .jsubrc → argv → #$ merge."""

    continuous: bool = False
    once: bool = False
    quiet: bool = False
    keep_stderr: bool = False  # -stderr
    mem: int | None = None  # bytes; None = the site default
    mem_request: int | None = None  # -l mem_free
    umask: int | None = None
    release: str | None = None
    name: str | None = None
    start_at: str | None = None  # -a
    cwd: bool = False
    wd: str | None = None
    stdin: str | None = None
    out: str | None = None
    err: str | None = None
    join: bool = False
    env: tuple[tuple[str, str | None], ...] = ()
    wall_seconds: int | None = None  # -l h_rt
    resources: tuple[tuple[str, str], ...] = ()  # other -l pairs, in order
    sync: bool = False
    mail_events: str | None = None  # -m
    mail_to: tuple[str, ...] = ()  # -M
    queue: str | None = None
    binary: bool | None = None  # -b
    ignored: tuple[str, ...] = ()  # accepted no-ops (-hard, -soft, -now, -p), kept for qstat -j
    program: str | None = None
    args: tuple[str, ...] = ()
    dry_run: bool = False
    debug: bool = False
    help: bool = False
    unrecognized: tuple[str, ...] = ()
    sge: dict = field(default_factory=dict)  # qsub dialect only: -pe, -S, -terse, -notify, -A, -P, -h, ...


def parse_mem(value: str) -> int:
    """jsub's -mem: an integer followed by k, m or g (binary units)."""
    try:
        return quantity.parse_memory(value, quantity.JSUB_MEM)
    except quantity.QuantityError:
        raise UsageError(f"argument -mem: expected an integer followed by 'k', 'm' or 'g'. '{value}' given.") from None


def parse_sge_mem(value: str, resource: str) -> int:
    """A memory value of jsub's -l (h_vmem, virtual_free, mem_free): binary k, m or g, or bytes."""
    try:
        return quantity.parse_memory(value, quantity.JSUB_RESOURCE)
    except quantity.QuantityError:
        raise UsageError(f"argument -l: invalid {resource} value: '{value}' (expected a number with k, m or g)") from None


def parse_time(value: str) -> int:
    """SGE time_specifier: seconds, or [[hh:]mm:]ss."""
    parts = value.strip().split(":")
    if not parts or len(parts) > 3 or not all(p.isdigit() for p in parts):
        raise UsageError(f"argument -l: invalid h_rt value: '{value}' (expected seconds or hh:mm:ss)")
    seconds = 0
    for p in parts:
        seconds = seconds * 60 + int(p)
    return seconds


def parse_yes(flag: str, value: str) -> bool:
    try:
        return _YES[value.lower()]
    except KeyError:
        raise UsageError(f"argument {flag}: invalid choice: '{value}' (choose from 'y', 'yes', 'n', 'no')") from None


def parse_umask(value: str) -> int:
    if not re.fullmatch(r"[0-7]{1,4}", value):
        raise UsageError(f"argument -umask: invalid octal value: '{value}'")
    return int(value, 8)


def parse_env(value: str) -> tuple[tuple[str, str | None], ...]:
    out: list[tuple[str, str | None]] = []
    for item in value.split(","):
        if not item:
            continue
        var, eq, val = item.partition("=")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", var):
            raise UsageError(f"argument -v: invalid variable name: '{var}'")
        out.append((var, val if eq else None))
    return tuple(out)


def _apply(opts: GridOptions, flag: str, value: str | None, *, default_mem: int) -> GridOptions:
    """Fold one option into OPTS. Order matters exactly as in jsub (e.g. -mem vs -l h_vmem)."""
    v = value or ""
    simple_flags = {"-continuous": "continuous", "-once": "once", "-quiet": "quiet", "-stderr": "keep_stderr",
                    "-cwd": "cwd", "--dry-run": "dry_run", "-debug": "debug", "--debug": "debug"}
    if flag in simple_flags:
        return replace(opts, **{simple_flags[flag]: True})
    if flag in ("-hard", "-soft"):
        return replace(opts, ignored=opts.ignored + (flag,))
    if flag in ("-now", "-p"):
        if flag == "-now":
            parse_yes(flag, v)
        elif not re.fullmatch(r"-?\d+", v):
            raise UsageError(f"argument -p: invalid int value: '{v}'")
        return replace(opts, ignored=opts.ignored + (f"{flag} {v}",))
    if flag == "-mem":
        return replace(opts, mem=parse_mem(v))
    if flag == "-umask":
        return replace(opts, umask=parse_umask(v))
    if flag == "-release":
        return replace(opts, release=v)
    if flag == "-N":
        return replace(opts, name=v)
    if flag == "-a":
        if not re.fullmatch(r"(\d{2}){0,2}\d{8}(\.\d{2})?", v):
            raise UsageError(f"argument -a: invalid date: '{v}' (expected [[CC]YY]MMDDhhmm[.SS])")
        return replace(opts, start_at=v)
    if flag == "-wd":
        return replace(opts, wd=v)
    if flag == "-i":
        return replace(opts, stdin=v)
    if flag == "-o":
        return replace(opts, out=v)
    if flag == "-e":
        return replace(opts, err=v)
    if flag == "-j":
        return replace(opts, join=parse_yes(flag, v))
    if flag == "-sync":
        return replace(opts, sync=parse_yes(flag, v))
    if flag == "-b":
        return replace(opts, binary=parse_yes(flag, v))
    if flag == "-v":
        return replace(opts, env=opts.env + parse_env(v))
    if flag == "-m":
        if not re.fullmatch(r"[beasn]+", v):
            raise UsageError(f"argument -m: invalid mail options: '{v}' (use a combination of b, e, a, s or n)")
        return replace(opts, mail_events=v)
    if flag == "-M":
        addrs = tuple(a for a in v.split(",") if a)
        bad = [a for a in addrs if not re.fullmatch(r"[^@\s]+(@[^@\s]+)?", a)]
        if bad or not addrs:
            raise UsageError(f"argument -M: invalid e-mail address: '{bad[0] if bad else v}'")
        return replace(opts, mail_to=opts.mail_to + addrs)
    if flag == "-q":
        return replace(opts, queue=v)
    if flag == "-l":
        return _apply_resources(opts, v, default_mem=default_mem)
    raise AssertionError(flag)  # OPTIONS and this function are kept in step by tests


def _apply_resources(opts: GridOptions, value: str, *, default_mem: int) -> GridOptions:
    for pair in value.split(","):
        if "=" not in pair:
            raise UsageError(f"argument -l: invalid argparse_resource value: '{pair}'")
        res, _, val = pair.partition("=")
        res = res.strip()
        current = opts.mem if opts.mem is not None else default_mem
        if res == "h_vmem":
            opts = replace(opts, mem=max(current, parse_sge_mem(val, res)))
        elif res == "virtual_free":
            opts = replace(opts, mem=max(current, int(parse_sge_mem(val, res) * 1.1)))
        elif res == "mem_free":
            opts = replace(opts, mem_request=parse_sge_mem(val, res))
        elif res == "release":
            opts = replace(opts, release=val)
        elif res in ("h_rt", "s_rt"):
            opts = replace(opts, wall_seconds=parse_time(val))
        else:
            opts = replace(opts, resources=opts.resources + ((res, val),))
    return opts


def _tokens_to_events(tokens: list[str], *, allow_program: bool) -> tuple[list[tuple[str, str | None]], int]:
    """Split TOKENS into (flag, value) events; return them and the index where the program starts."""
    events: list[tuple[str, str | None]] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok == "--" and allow_program:
            return events, i + 1
        if tok in HELP:
            events.append(("-h", None))
            i += 1
            continue
        if not tok.startswith("-") or tok == "-":
            if allow_program:
                return events, i
            raise UsageError(f"unrecognized arguments: {tok}")
        kind = OPTIONS.get(tok)
        if kind is None:
            if allow_program:
                events.append(("?", tok))  # argparse keeps unknown options as "unrecognized arguments"
                i += 1
                continue
            raise UsageError(f"unrecognized arguments: {tok}")
        if kind == FLAG:
            events.append((tok, None))
            i += 1
            continue
        if i + 1 >= len(tokens) or (tokens[i + 1].startswith("-") and not re.fullmatch(r"-\d+", tokens[i + 1])):
            raise UsageError(f"argument {tok}: expected one argument")
        events.append((tok, tokens[i + 1]))
        i += 2
    return events, len(tokens)


def fold(events: Iterable[tuple[str, str | None]], *, default_mem: int, opts: GridOptions | None = None) -> GridOptions:
    opts = opts or GridOptions()
    for flag, value in events:
        if flag == "-h":
            opts = replace(opts, help=True)
        elif flag == "?":
            opts = replace(opts, unrecognized=opts.unrecognized + (value or "",))
        else:
            opts = _apply(opts, flag, value, default_mem=default_mem)
    return opts


@record(frozen=True, kw_only=True)
class ParsedArgv:
    events: list[tuple[str, str | None]] = field(default_factory=list)
    program: str | None = None
    args: tuple[str, ...] = ()


def split_argv(argv: list[str]) -> ParsedArgv:
    """Command line → option events + program + its arguments (REMAINDER semantics)."""
    events, start = _tokens_to_events(list(argv), allow_program=True)
    if start >= len(argv):
        return ParsedArgv(events=events)
    return ParsedArgv(events=events, program=argv[start], args=tuple(argv[start + 1:]))


def jsubrc_events(text: str, *, source: str) -> list[tuple[str, str | None]]:
    """~/.jsubrc: each line `-opt [value]` (one whitespace-free value at most); errors name the file."""
    tokens: list[str] = []
    for line in text.splitlines():
        m = _JSUBRC_LINE.match(line)
        if m:
            tokens.append(m.group(1))
            if m.group(3):
                tokens.append(m.group(3))
    return _events_or_error(tokens, source)


def directive_block(script: str) -> list[tuple[int, str]]:
    """The `#$` lines jsub reads, with their 1-based numbers: the contiguous block at the top (after #!)."""
    out: list[tuple[int, str]] = []
    for n, line in enumerate(script.splitlines(), 1):
        if line.startswith("#!"):
            continue
        if not line.startswith("#$"):
            break
        out.append((n, line))
    return out


def directive_events(script: str, *, source: str) -> list[tuple[str, str | None]]:
    """`#$` lines in the contiguous comment block at the top of a script (after #!)."""
    tokens: list[str] = []
    for _, line in directive_block(script):
        m = DIRECTIVE.match(line[2:])
        if m:
            tokens.append(m.group(1))
            if m.group(2):
                tokens.append(m.group(2))
    return _events_or_error(tokens, source)


def _events_or_error(tokens: list[str], source: str) -> list[tuple[str, str | None]]:
    try:
        events, _ = _tokens_to_events(tokens, allow_program=False)
        fold(events, default_mem=0)  # validate values now, so the error names this file
    except UsageError as e:
        raise GridshimError(f"Error parsing {source}: {e.message}") from None
    return events


def parse(
    argv: list[str],
    *,
    default_mem: int,
    jsubrc: tuple[str, str] | None = None,
    script: tuple[str, str] | None = None,
) -> GridOptions:
    """All three sources, in jsub's precedence: .jsubrc, then the command line, then `#$` lines.

    JSUBRC and SCRIPT are (text, name-for-errors). The program and its arguments come only from ARGV.
    """
    cli = split_argv(argv)
    events: list[tuple[str, str | None]] = []
    if jsubrc is not None:
        events += jsubrc_events(jsubrc[0], source=jsubrc[1])
    events += cli.events
    if script is not None:
        events += directive_events(script[0], source=script[1])
    opts = fold(events, default_mem=default_mem)
    return replace(opts, program=cli.program, args=cli.args)
