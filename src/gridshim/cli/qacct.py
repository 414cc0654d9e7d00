"""qacct: the tool's finished jobs from its accounting file, in SGE 8.1.9's layouts and with its exit codes.

Edge only: parse SGE's options, find the file, let accounting.scan pick the records, hand them to
output/qacct. Kept light on purpose (docs/qacct.md, "Speed"): it imports neither the site config
module nor cli/_common on its normal path, since `qacct -j ID` runs in loops in pipeline clients.
Exit 0; 1 for a job that is not (yet) accounted, a missing file and option errors, as SGE's qacct.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

from gridshim import accounting as acct
from gridshim.cli import finish
from gridshim.text import shown

USAGE = """\
SGE 8.1.9
usage: qacct [options]
 [-ar [ar_id]]                     list [matching] advance reservations
 [-A [account_string]]             list [matching] account
 [-b begin_time]                   jobs started after
 [-d days]                         jobs started during the last d days
 [-D [department]]                 list [matching] department
 [-e end_time]                     jobs started before
 [-E]                              select job end time, not start
 [[-f] acctfile]                   use alternate accounting file
 [-g [groupid|groupname]]          list [matching] group
 [-h [host]]                       list [matching] host
 [-help]                           display this message
 [-j [job_id|job_name|pattern]]    list all [matching] jobs
 [-l attr=val,...]                 request given complex attributes
 [-m]                              list only master tasks
 [-o [owner]]                      list [matching] owner
 [-u [owner]]                      list [matching] owner
 [-pe [pe_name]]                   list [matching] parallel environment
 [-P [project]]                    list [matching] project
 [-q [queue]]                      list [matching] queue
 [-slots [slots]]                  list [matching] job slots
 [-t taskid[-taskid[:step]]]       list all [matching] tasks (requires -j option)

 begin_time, end_time              [[CC]YYMMDDhhmm[.SS]
 queue                             [cluster_queue|queue_instance|queue_domain|pattern]
"""
NO_JOBS = "no jobs running since startup\n"  # MSG_HISTORY_NOJOBSRUNNINGSINCESTARTUP
DAY = 24 * 3600
U32 = 0xFFFFFFFF


# The options this command accepts and how many values each takes: its parser refuses any other, and
# gridshim migrate-check reads scripts with it.
# The value after -j/-o/-u/-g/-h/-q/-pe/-slots/-ar/-P/-D/-A is optional (counted as one here).
OPTIONS: dict[str, int] = {**dict.fromkeys(("-j", "-o", "-u", "-g", "-h", "-q", "-pe", "-slots", "-ar", "-b", "-e", "-d",
                                            "-f", "-t", "-l", "-P", "-D", "-A"), 1), "-E": 0, "-m": 0, "-help": 0}


class Usage(Exception):
    """Stop: print MESSAGE (if any) and the usage on stderr, exit 1; -help prints it on stdout, exit 0."""

    def __init__(self, message: str = "", *, help: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.help = help


class Options:
    """What the command line asked for, as qacct.c's sge_qacct_options (a value, or the bare flag)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}  # kind → filter value: host, group, owner, project, department, pe, account
        self.flags: set[str] = set()  # kinds given without a value: group by them
        self.queues: list[str] = []
        self.slots = 0
        self.ar = 0
        self.job_flag = False
        self.job_number = 0
        self.job_name: str | None = None
        self.tasks: tuple[int, int, int] | None = None
        self.begin: int | None = None
        self.end: int | None = None
        self.days: int | None = None
        self.by_end = False
        self.master_only = False
        self.file: str | None = None
        self.complexes: str | None = None


def scan_u(text: str) -> int | None:
    """sscanf("%u"): blanks, a sign, digits, anything after; None without digits (`123abc` is 123)."""
    s = text.lstrip(" \t\n\r\f\v")
    sign = 1
    if s[:1] in ("+", "-"):
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    n = 0
    while n < len(s) and "0" <= s[n] <= "9":
        n += 1
    if not n:
        return None
    return (sign * min(int(s[:n]), 2 ** 64 - 1)) & U32


def atol(text: str) -> int:
    """atol(3): the leading number, 0 without one."""
    s = text.lstrip(" \t\n\r\f\v")
    sign = -1 if s[:1] == "-" else 1
    s = s[1:] if s[:1] in ("+", "-") else s
    n = 0
    while n < len(s) and "0" <= s[n] <= "9":
        n += 1
    return sign * int(s[:n]) if n else 0


def _atoi2(text: str) -> int:
    return atol(text[:2])


def parse_date(text: str, *, now: float) -> int:
    """`[[CC]YY]MMDDhhmm[.SS]` in local time → epoch seconds (sge_ulong.c ulong_parse_date_time_from_string);
    Usage with SGE's message when it is not a date."""
    def bad(message: str) -> Usage:
        return Usage(f"\n{message}")

    if not text:
        raise bad("no date specified")
    if len(text) > 2048:  # sizeof(stringT)
        raise bad("Starttime specifier field length exceeds maximum")
    tokens = [t for t in text.split(".") if t]  # strtok(3) at "."
    stamp = tokens[0] if tokens else ""
    seconds = tokens[1] if len(tokens) > 1 else ""
    if len(seconds) not in (0, 2):
        raise bad("Invalid format of seconds field.")
    if len(stamp) not in (8, 10, 12):
        raise bad("Invalid format of date/hour-minute field.")
    if len(stamp) >= 10:
        digits = 4 if len(stamp) == 12 else 2
        year = atol(stamp[:digits])
        if digits == 2:
            year += 2000 if year < 70 else 1900
        stamp = stamp[digits:]
    else:
        year = time.localtime(now).tm_year
    month = _atoi2(stamp[0:2])
    if not 1 <= month <= 12:
        raise bad("Invalid month specification.")
    day = _atoi2(stamp[2:4])
    if not 1 <= day <= 31:
        raise bad("Invalid day specification.")
    hour = _atoi2(stamp[4:6])
    if not 0 <= hour <= 23:
        raise bad("Invalid hour specification.")
    minute = _atoi2(stamp[6:8])
    if not 0 <= minute <= 59:
        raise bad("Invalid minute specification.")
    second = atol(seconds) if seconds else 0
    if second > 59:
        raise bad("Invalid seconds specification.")
    try:
        epoch = int(time.mktime((year, month, day, hour, minute, second, 0, 0, -1)))
    except (OverflowError, ValueError):
        epoch = -1
    if epoch < 0:
        raise bad("Couldn't generate date from input. Perhaps a date before 1970 was specified.")
    return epoch


def parse_tasks(text: str) -> tuple[int, int, int]:
    """-t `n[-m[:s]]` (the first range of a list) → (start, end, step), end corrected to the last id."""
    first = text.split(",", 1)[0]
    lo, dash, rest = first.partition("-")
    hi, colon, step_text = rest.partition(":")
    try:
        start = int(lo)
        end = int(hi) if dash else start
        step = int(step_text) if colon else 1
    except ValueError:
        raise Usage(f"invalid list of task id ranges: {shown(text)}") from None
    if start < 0 or end < start or step < 0 or (colon and not dash):
        raise Usage(f"invalid list of task id ranges: {shown(text)}")
    step = step or 1
    return start, start + (end - start) // step * step, step


def parse(argv: list[str], *, now: float) -> Options:
    """SGE's qacct option loop: options are read in order, and the first bad one (or -help) stops."""
    o = Options()
    i = 0

    def optional() -> str | None:
        """The option's argument if the next word is not an option (qacct.c's `*(argv[ii+1]) == '-'`)."""
        nonlocal i
        if i + 1 < len(argv) and not argv[i + 1].startswith("-"):
            i += 1
            return argv[i]
        return None

    def required() -> str:
        nonlocal i
        if i + 1 >= len(argv):
            raise Usage()
        i += 1
        return argv[i]

    def value_or_flag(kind: str) -> None:
        value = optional()
        if value is None:
            o.flags.add(kind)
        else:
            o.values[kind] = value

    while i < len(argv):
        a = argv[i]
        if a not in OPTIONS:
            raise Usage(f'error: invalid option argument "{shown(a)}"')
        if a in ("-o", "-u"):
            value_or_flag("owner")
        elif a == "-g":
            value = optional()
            if value is None:
                o.flags.add("group")
            else:
                o.values["group"] = _group_name(value)
        elif a == "-q":
            o.flags.add("queue")
            value = optional()
            if value is not None:
                o.flags.add("host")  # qacct.c sets the host flag with a queue: both columns show
                o.queues.append(value)
        elif a == "-h":
            value_or_flag("host")
        elif a == "-j":
            value = optional()
            if value is None:
                o.job_flag = True
            else:
                number = scan_u(value)
                if number is None:
                    o.job_number, o.job_name = 0, value
                else:
                    o.job_number = number
        elif a == "-t":
            if i + 1 >= len(argv) or argv[i + 1].startswith("-"):
                raise Usage("-t option must have a list of task id ranges")
            o.tasks = parse_tasks(required())
        elif a == "-b":
            o.begin = parse_date(required(), now=now)
        elif a == "-e":
            o.end = parse_date(required(), now=now)
        elif a == "-d":
            days = scan_u(required())
            if days is None:
                raise Usage()
            o.days = days
        elif a == "-P":
            value_or_flag("project")
        elif a == "-D":
            value_or_flag("department")
        elif a == "-pe":
            value_or_flag("pe")
        elif a == "-slots":
            value = optional()
            if value is None:
                o.flags.add("slots")
            else:
                o.slots = atol(value) & U32
        elif a == "-ar":
            value = optional()
            if value is None:
                o.flags.add("ar")
            else:
                ar = scan_u(value)
                if ar is None:
                    raise Usage("ERROR! invalid advance reservation id, must be an unsigned integer")
                o.ar = ar
        elif a == "-l":
            o.complexes = required()
        elif a == "-f":
            o.file = required()
        elif a == "-A":
            value_or_flag("account")
        elif a == "-E":
            o.by_end = True
        elif a == "-m":
            o.master_only = True
        else:  # -help
            raise Usage(help=True)
        i += 1
    return o


def _group_name(value: str) -> str:
    """-g GID is the group's name when the system knows it, else the text as given."""
    gid = scan_u(value)
    if gid is None:
        return value
    import grp  # noqa: PLC0415

    try:
        return grp.getgrgid(gid).gr_name
    except (KeyError, OverflowError):
        return value


def window(o: Options, now: float) -> tuple[int, int]:
    """(begin, end) of -b/-e/-d as qacct.c computes them; -1 is open. -d counts back from now, or from
    -e, or forward from -b; with both -b and -e it is ignored."""
    begin = o.begin if o.begin is not None else -1
    end = o.end if o.end is not None else -1
    days = o.days
    if o.end is None:
        end = begin + days * DAY if days is not None and o.begin is not None else -1
    if o.begin is None:
        if o.end is not None and days is not None:
            begin = end - days * DAY
        elif days is not None:
            begin = int(now) - days * DAY
    return begin, end


def _number(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def selector(o: Options, now: float) -> Callable[[list[str]], bool] | None:
    """The filter of every option that selects records, over a line's raw fields (accounting.scan).
    A field it cannot read keeps the line, so that converting it reports it as invalid."""
    checks: list[Callable[[list[str]], bool]] = []
    dec = acct.decode_text
    v = o.values
    if "host" in v:
        host = v["host"].lower()
        checks.append(lambda f: dec(f[acct.HOST]).lower() == host)
    if o.queues:
        patterns = [q + "@*" if "@" not in q else q + "*" if q.endswith("@") else q for q in o.queues]
        checks.append(lambda f: any(fnmatch(f"{dec(f[acct.QNAME])}@{dec(f[acct.HOST])}", p) for p in patterns))
    for kind, index in (("group", acct.GROUP), ("owner", acct.OWNER), ("account", acct.ACCOUNT),
                        ("project", acct.PROJECT), ("department", acct.DEPARTMENT), ("pe", acct.PE)):
        if kind in v:
            def field_is(f: list[str], want: str = v[kind], index: int = index) -> bool:
                return dec(f[index]) == want

            checks.append(field_is)
    if not o.job_flag and (o.job_number or o.job_name is not None):
        number, name = o.job_number, o.job_name

        def job(f: list[str]) -> bool:
            n = _number(f[acct.NUMBER])
            if n is None or n == number:
                return True
            return name is not None and fnmatch(dec(f[acct.NAME]), name)
        checks.append(job)
    begin, end = window(o, now)
    if begin != -1 or end != -1:
        at = acct.END if o.by_end else acct.START

        def when(f: list[str]) -> bool:
            t = _number(f[at])
            return t is None or ((begin == -1 or t >= begin) and (end == -1 or t <= end))
        checks.append(when)
    if o.slots:
        checks.append(lambda f: _number(f[acct.SLOTS]) in (None, o.slots))
    if not o.job_flag and o.tasks and o.tasks[0] and o.tasks[1]:
        start, last, step = o.tasks

        def task(f: list[str]) -> bool:
            t = _number(f[acct.TASK])
            return t is None or (start <= t <= last and (t - start) % step == 0)
        checks.append(task)
    if o.master_only:
        checks.append(lambda f: f[acct.PE_TASKID] == "NONE")
    if o.ar:
        checks.append(lambda f: _number(f[acct.ARID]) in (None, o.ar))
    if not checks:
        return None
    if len(checks) == 1:
        return checks[0]
    return lambda f: all(check(f) for check in checks)


_GLOB = frozenset("*?[\\")


def fnmatch(name: str, pattern: str) -> bool:
    """fnmatch(3) with no flags: `*`, `?`, `[...]` (`!` or `^` negates), backslash escapes."""
    if not _GLOB.intersection(pattern):
        return name == pattern
    return _compiled(pattern).fullmatch(name) is not None


_PATTERNS: dict[str, Any] = {}


def _compiled(pattern: str) -> Any:
    import re  # noqa: PLC0415  (patterns only)

    if pattern in _PATTERNS:
        return _PATTERNS[pattern]
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "\\" and i < n:
            out.append(re.escape(pattern[i]))
            i += 1
        elif c == "[":
            j = i
            if j < n and pattern[j] in "!^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                out.append("\\[")  # no closing bracket: a literal '['
                continue
            body = pattern[i:j]
            i = j + 1
            negate = body[:1] in ("!", "^")
            body = body[1:] if negate else body
            body = body.replace("\\", "\\\\").replace("^", "\\^").replace("[", "\\[")
            out.append(f"[{'^' if negate else ''}{body}]")
        else:
            out.append(re.escape(c))
    compiled = re.compile("".join(out), re.S)
    _PATTERNS[pattern] = compiled
    return compiled


class _Streams:
    """The slice of cli._common.Env that qacct uses, without that module's import cost; tests may pass
    a real Env instead."""

    def __init__(self) -> None:
        self.stdout = sys.stdout or open(os.devnull, "w")  # noqa: SIM115  (a closed stdout: writes go nowhere)
        self.stderr = sys.stderr or open(os.devnull, "w")  # noqa: SIM115
        self.stdin = sys.stdin
        self.environ = dict(os.environ)
        self.clock = time.time


def _read_input(env: Any, path: str) -> str | None:
    """The file's text; None after printing SGE's message (perror, or `unable to open`) when it cannot."""
    if path == "-":
        stream = env.stdin
        if stream is None:
            return ""
        data = getattr(stream, "buffer", stream).read()
        return acct.read_text(data)
    try:
        os.stat(path)
    except OSError as e:
        env.stderr.write(f"{shown(path)}: {os.strerror(e.errno or 0)}\n")
        return None
    try:
        with open(path, "rb") as fh:
            return acct.read_text(fh.read())
    except OSError:
        env.stderr.write(f"error: unable to open {shown(path)}\n")
        return None


def qacct_main(env: Any, argv: list[str]) -> int:
    """ENV: stdout, stderr, stdin, environ and clock (a cli._common.Env or the light _Streams)."""
    now = env.clock()
    try:
        o = parse(argv, now=now)
    except Usage as u:
        if u.help:
            env.stdout.write(USAGE)
            return 0
        env.stderr.write((u.message + "\n" if u.message else "") + USAGE)
        return 1
    if o.complexes is not None:
        env.stderr.write("error: -l is not supported: gridshim keeps no queue or host configuration to match "
                         "complex attributes against; select with -o, -h, -q, -P, -pe or -slots instead\n")
        return 1
    path = o.file
    if path is None:
        setting = acct.site_setting(env.environ)
        path = acct.path_for(setting, acct.home_of(env.environ))
        if path is None:
            env.stderr.write("error: accounting is off at this site (site config: accounting_file: null)\n")
            env.stdout.write(NO_JOBS)
            return 1
    text = _read_input(env, path)
    named = bool(o.job_number) or o.job_name is not None
    if o.file is None and named and not _has_match(text, o, now):
        # not (yet) recorded: a job killed before its wrapper could write the record, or lost with its
        # node, still has its Job for a while; write its record from what the cluster shows (records.py)
        if _backfill(env, o):
            text = _read_input(env, path)
    if text is None:
        env.stdout.write(NO_JOBS)
        return 1

    invalid: list[int] = []
    records = []
    for lineno, fields in acct.scan(text, keep=selector(o, now), invalid=invalid):
        rec = acct.from_fields(fields)
        if rec is None:
            invalid.append(lineno)
        else:
            records.append(rec)
    if invalid:
        env.stderr.write("".join(f"error: ignoring invalid entry in line {n}\n" for n in sorted(invalid)))

    from gridshim.output import qacct as out  # noqa: PLC0415  (after the file: a missing one costs nothing)

    if o.job_flag or named:
        env.stdout.write(out.format_jobs(records))
    if named:
        if records:
            return 0
        env.stderr.write(not_found(o) + "\n")
        return 1
    if o.tasks and o.tasks[0] and o.tasks[1]:
        env.stderr.write("error: -t option requires -j option with an argument\n" + USAGE)
        return 1
    columns: list[tuple[str, object]] = []
    for kind in out.COLUMNS:
        if kind in o.flags:
            columns.append((kind, None))
        elif kind in o.values:
            columns.append((kind, o.values[kind]))
        elif kind == "slots" and o.slots:
            columns.append((kind, o.slots))
        elif kind == "ar" and o.ar:
            columns.append((kind, o.ar))
    env.stdout.write(out.format_summary(records, columns))
    return 0


def _has_match(text: str | None, o: Options, now: float) -> bool:
    if text is None:
        return False
    return any(True for _ in acct.scan(text, keep=selector(o, now)))


def _backfill(env: Any, o: Options) -> bool:
    """Write the missing records of this tool's finished or dying Jobs that match -j; True if any."""
    try:
        from gridshim import config, records  # noqa: PLC0415
        from gridshim.cli._common import Env, load_cluster  # noqa: PLC0415
        from gridshim.render import labels as L  # noqa: PLC0415
        from gridshim.status import job_finished  # noqa: PLC0415

        real = env if isinstance(env, Env) else Env(environ=dict(env.environ))
        settings = config.load(real.environ)
        cluster = load_cluster(real)
        selector_ = L.selector(cluster.tool) + (f",{L.JOB_ID}={o.job_number}" if o.job_number else "")
        jobs, _ = cluster.list("Job", selector=selector_)
        wrote = 0
        for job in jobs:
            meta = job.get("metadata") or {}
            if o.job_name is not None and not fnmatch(L.name_of(meta), o.job_name):
                continue
            if not (job_finished(job) or meta.get("deletionTimestamp")):
                continue
            pods, _ = cluster.list("Pod", selector=f"batch.kubernetes.io/controller-uid={meta.get('uid', '')}")
            wrote += records.ensure_records(job, pods, settings=settings, home=real.home, now=env.clock())
        return wrote > 0
    except Exception:  # noqa: BLE001  (no kubeconfig, no API: qacct answers from the file alone)
        return False


def not_found(o: Options) -> str:
    """SGE's messages for -j ID/NAME that matched nothing (names cut at 100 characters, as SFN)."""
    tasks = f".{o.tasks[0]}-{o.tasks[1]}:{o.tasks[2]}" if o.tasks and o.tasks[0] and o.tasks[1] else ""
    if o.job_number:
        return f"error: Job-array tasks {o.job_number}{tasks} not found" if tasks else \
            f"error: job id {o.job_number} not found"
    name = shown(o.job_name or "")[:100]
    return f'error: Job-array tasks "{name}"{tasks} not found' if tasks else f"error: job name {name} not found"


def _argv() -> list[str]:
    if sys.getfilesystemencoding().lower().replace("-", "") == "utf8":
        return sys.argv[1:]
    from gridshim.cli._common import argv  # noqa: PLC0415  (argv bytes re-read as UTF-8, as every command)

    return argv()


def main() -> None:
    env = _Streams()
    try:
        rc = qacct_main(env, _argv())
        env.stdout.flush()
    except BaseException as err:  # the one funnel is cli._common's, imported only here
        if isinstance(err, SystemExit):
            raise
        from gridshim.cli._common import run  # noqa: PLC0415

        caught = err

        def again(_env: Any) -> int:
            raise caught

        rc = run("qacct", again)
    finish(rc)
