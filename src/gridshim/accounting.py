"""The accounting file: one line per finished task attempt, SGE's accounting(5) fields plus gridshim's key.

Layer: a leaf. Parses and formats one line (pure), reads a file's records in file order without
duplicates, and finds the file from the site config. Imports nothing of ours at import time (the
site config module only when a config names the file in a form the quick scan cannot read), so
`qacct` starts fast. Written by the job wrapper (render/command.py) and the backstops; read by qacct.
The format is specified in docs/qacct.md ("The accounting file").
"""

from __future__ import annotations

import os
from math import isfinite
from operator import itemgetter

from gridshim.record import tuple_record

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (start-up, docs/performance.md)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import NamedTuple
else:
    NamedTuple = object  # tuple_record makes the class a collections.namedtuple

# SGE's 45 fields in accounting(5) order, then gridshim's attempt key: "<job uid>/<pod uid>" from the pod's
# wrapper, "<job uid>/<pod uid>/backstop" from a backstop (records.py), "<job uid>/-" from a backstop that
# knew no pod (docs/qacct.md, "The attempt key").
FIELDS = (
    "qname", "hostname", "group", "owner", "job_name", "job_number", "account", "priority",
    "submission_time", "start_time", "end_time", "failed", "exit_status", "ru_wallclock",
    "ru_utime", "ru_stime", "ru_maxrss", "ru_ixrss", "ru_ismrss", "ru_idrss", "ru_isrss",
    "ru_minflt", "ru_majflt", "ru_nswap", "ru_inblock", "ru_oublock", "ru_msgsnd", "ru_msgrcv",
    "ru_nsignals", "ru_nvcsw", "ru_nivcsw", "project", "department", "granted_pe", "slots",
    "task_number", "cpu", "mem", "io", "category", "iow", "pe_taskid", "maxvmem", "arid",
    "ar_sub_time", "attempt")
SGE_FIELDS = 45  # a line with fewer fields is not a record; SGE's own files have exactly these
# 0-based positions the reader needs before it converts a whole line
QNAME, HOST, GROUP, OWNER, NAME, NUMBER, ACCOUNT = 0, 1, 2, 3, 4, 5, 6
START, END = 9, 10
PROJECT, DEPARTMENT, PE, SLOTS, TASK = 31, 32, 33, 34, 35
PE_TASKID, ARID, ATTEMPT = 41, 43, 45
BACKSTOP_POD = "-"  # the pod part of the attempt key of a backstop's record that names no pod
BACKSTOP = "backstop"  # the third part of the key of a backstop's record of a pod
U32 = 2 ** 32 - 1  # SGE keeps times and ids as u_long32; ctime() of a larger time fails


@tuple_record
class Record(NamedTuple):
    """One finished task attempt. Defaults are what SGE writes for a field nobody set."""

    qname: str = ""
    hostname: str = ""
    group: str = ""
    owner: str = ""
    job_name: str = ""
    job_number: int = 0
    account: str = "sge"
    priority: int = 0
    submission_time: int = 0
    start_time: int = 0
    end_time: int = 0
    failed: int = 0
    exit_status: int = 0
    ru_wallclock: int = 0
    ru_utime: float = 0.0
    ru_stime: float = 0.0
    ru_maxrss: int = 0
    ru_ixrss: int = 0
    ru_ismrss: int = 0
    ru_idrss: int = 0
    ru_isrss: int = 0
    ru_minflt: int = 0
    ru_majflt: int = 0
    ru_nswap: int = 0
    ru_inblock: int = 0
    ru_oublock: int = 0
    ru_msgsnd: int = 0
    ru_msgrcv: int = 0
    ru_nsignals: int = 0
    ru_nvcsw: int = 0
    ru_nivcsw: int = 0
    project: str = "NONE"
    department: str = "defaultdepartment"
    granted_pe: str = "NONE"
    slots: int = 1
    task_number: int = 0
    cpu: float = 0.0
    mem: float = 0.0
    io: float = 0.0
    category: str = "NONE"
    iow: float = 0.0
    pe_taskid: str = "NONE"
    maxvmem: float = 0.0
    arid: int = 0
    ar_sub_time: int = 0
    attempt: str = ""


# -- text fields: percent-encoding ---------------------------------------------------------------------

_ENCODE = {ord("%"): "%25", ord(":"): "%3A", ord("\n"): "%0A", ord("\r"): "%0D", ord("\\"): "%5C"}
_HEX = frozenset(b"0123456789abcdefABCDEF")


def encode_text(text: str) -> str:
    """A text field as written: `%`, `:`, LF, CR and `\\` percent-encoded (`%25 %3A %0A %0D %5C`)."""
    return text.translate(_ENCODE)


def decode_text(text: str) -> str:
    """The mirror of encode_text: every `%XX` (two hex digits, either case) is the byte XX; a `%` not
    followed by two hex digits stays as it is. Bytes that are not UTF-8 stay surrogate-escaped."""
    if "%" not in text:
        return text
    raw = text.encode("utf-8", "surrogateescape")
    parts = raw.split(b"%")
    out = bytearray(parts[0])
    for part in parts[1:]:
        if len(part) >= 2 and part[0] in _HEX and part[1] in _HEX:
            out.append(int(part[:2], 16))
            out += part[2:]
        else:
            out += b"%" + part
    return out.decode("utf-8", "surrogateescape")


# -- one line ------------------------------------------------------------------------------------------

def _uint(text: str) -> int:
    """An unsigned integer field; `12.000000` (SGE writes some counters as doubles) is 12."""
    try:
        value = int(text)
    except ValueError:
        value = int(float(text))  # ValueError for junk and nan, OverflowError for inf: the caller skips
    if value < 0:
        raise ValueError(text)
    return value


def _time(text: str) -> int:
    value = _uint(text)
    if value > U32:
        raise ValueError(text)
    return value


def _float(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(text)
    return value


# one converter per field, by the type of Record's default for it
_KIND: dict[type, Callable[[str], object]] = {str: decode_text, int: _uint, float: _float}
_CONVERT = tuple(_time if name in ("submission_time", "start_time", "end_time", "ar_sub_time")
                 else _KIND[type(Record._field_defaults[name])] for name in FIELDS)


# from_fields' quick path: every integer and double field converted at once by C-level map(), the
# result put back in field order by one itemgetter; a line it cannot take (SGE's own files write some
# counters as `12.000000`) goes through the per-field converters.
_TEXT_AT = tuple(i for i, c in enumerate(_CONVERT) if c is decode_text)
_INT_AT = tuple(i for i, c in enumerate(_CONVERT) if c in (_uint, _time))
_FLOAT_AT = tuple(i for i, c in enumerate(_CONVERT) if c is _float)
_TIME_AT = tuple(i for i, c in enumerate(_CONVERT) if c is _time)
_texts, _ints, _floats = itemgetter(*_TEXT_AT), itemgetter(*_INT_AT), itemgetter(*_FLOAT_AT)
_times = itemgetter(*(_INT_AT.index(i) for i in _TIME_AT))
_in_order = itemgetter(*(sorted(range(len(FIELDS)), key=(_TEXT_AT + _INT_AT + _FLOAT_AT).__getitem__)))


def from_fields(fields: list[str]) -> Record | None:
    """The record of a line already split at `:` (SGE_FIELDS or more fields), or None if a value is bad."""
    if len(fields) < SGE_FIELDS:
        return None
    values = fields[:len(FIELDS)]
    if len(values) == SGE_FIELDS:
        values = values + [""]
    try:
        ints = list(map(int, _ints(values)))
        floats = list(map(float, _floats(values)))
        if min(ints) >= 0 and max(_times(ints)) <= U32 and all(map(isfinite, floats)):
            texts = [decode_text(t) if "%" in t else t for t in _texts(values)]
            return Record._make(_in_order(texts + ints + floats))
    except ValueError:
        pass
    try:
        return Record._make([conv(v) for conv, v in zip(_CONVERT, values)])
    except (ValueError, OverflowError):
        return None


def parse_line(line: str) -> Record | None:
    """One line of the file → its Record; None for a malformed line (too few fields, a bad number).

    Fields after the 46th are ignored, so a later format can add some; a line of SGE's own 45 fields
    is a record with an empty attempt key."""
    return from_fields(line.rstrip("\r\n").split(":"))


def format_line(rec: Record) -> str:
    """The line of REC, without its newline: text percent-encoded, integers as %d, doubles as %f."""
    out = []
    for value in rec:
        if isinstance(value, str):
            out.append(encode_text(value))
        elif isinstance(value, float):
            out.append("%f" % value)
        else:
            out.append("%d" % value)
    return ":".join(out)


# -- a file --------------------------------------------------------------------------------------------

def attempt_parts(key: str) -> tuple[str, str]:
    """(job uid, pod uid) of an attempt key; the pod is "-" for a backstop's record that names none."""
    job, _, pod = key.partition("/")
    return job, pod.partition("/")[0]


def attempt_of(key: str) -> str:
    """The attempt a key names, whoever wrote it: "<job uid>/<pod uid>" (a backstop's mark dropped)."""
    job, pod = attempt_parts(key)
    return f"{job}/{pod}"


def scan(text: str, *, keep: Callable[[list[str]], bool] | None = None,
         invalid: list[int] | None = None) -> list[tuple[int, list[str]]]:
    """The records of an accounting file's TEXT as (line number, raw fields), in file order, one per
    attempt, for which KEEP (if given) is true. Fields are not decoded or converted (from_fields does
    that), so a lookup over many records only pays for the few it shows.

    Lines of one character or less and lines starting with `#` (SGE's header) are ignored. The
    numbers of lines with fewer than 45 fields go to INVALID; an unterminated last line that short is
    a record still being written and is ignored. One record per attempt (docs/qacct.md, "The attempt
    key"); an attempt is a job number, task number, job uid and pod uid:
    - a wrapper's record (`J/P`) of an attempt already recorded with the same start time is dropped.
      A continuous job's respawns in one pod differ in their start time and are all kept.
    - whichever writer recorded a pod's attempt first wins over the other: a backstop's record
      (`J/P/backstop`) after a wrapper's of that pod is dropped, and so is every record of that pod
      after a backstop's (the wrapper of a `qdel -f`-killed pod that still had time to write; its
      start time is its own, not the pod's).
    - a backstop's record that names no pod (`J/-`) of a job number and task number for which a
      pod's record of the same job uid exists, before or after it, is dropped."""
    lines = text.split("\n")
    last = len(lines) - 1
    seen: set[tuple[str, ...]] = set()  # wrapper runs (number, task, key, start) and pod-less backstops
    wrapped: set[tuple[str, str, str]] = set()  # (number, task, "J/P") a wrapper recorded
    closed: set[tuple[str, str, str]] = set()  # (number, task, "J/P") a backstop recorded
    kept: list[tuple[int, list[str]]] = []
    backstops: list[tuple[int, tuple[str, str, str]]] = []  # pod-less backstops: (index into kept, identity)
    for i, line in enumerate(lines):
        if len(line) <= 1 or line[0] == "#":
            continue
        if line[-1] == "\r":
            line = line[:-1]
        f = line.split(":")
        if len(f) < SGE_FIELDS:
            if invalid is not None and i != last:
                invalid.append(i + 1)
            continue
        if len(f) > ATTEMPT and f[ATTEMPT]:
            key = f[ATTEMPT]
            parts = key.split("/")
            if len(parts) < 2 or parts[1] in ("", BACKSTOP_POD):  # a backstop's record that names no pod
                ident = (f[NUMBER], f[TASK], key)
                if ident in seen:
                    continue
                seen.add(ident)
                if parts[0] not in ("", "-"):
                    if keep is None or keep(f):
                        backstops.append((len(kept), (f[NUMBER], f[TASK], parts[0])))
                        kept.append((i + 1, f))
                    continue
            elif len(parts) == 2:  # the pod's wrapper's: the common case, kept cheap
                if closed and (f[NUMBER], f[TASK], key) in closed:
                    continue
                run = (f[NUMBER], f[TASK], key, f[START])
                if run in seen:
                    continue
                seen.add(run)
                wrapped.add((f[NUMBER], f[TASK], key))
            else:  # a backstop's record of a pod
                attempt = (f[NUMBER], f[TASK], f"{parts[0]}/{parts[1]}")
                if attempt in wrapped or attempt in closed:
                    continue
                closed.add(attempt)
        if keep is None or keep(f):
            kept.append((i + 1, f))
    if backstops:
        with_pod = {(n, t, a.partition("/")[0]) for n, t, a in wrapped | closed}
        drop = {k for k, ident in backstops if ident in with_pod}
        if drop:
            kept = [r for k, r in enumerate(kept) if k not in drop]
    return kept


def load(text: str, *, invalid: list[int] | None = None) -> list[Record]:
    """Every record of TEXT (scan, then from_fields); malformed lines' numbers go to INVALID."""
    out = []
    for lineno, fields in scan(text, invalid=invalid):
        rec = from_fields(fields)
        if rec is None:
            if invalid is not None:
                invalid.append(lineno)
        else:
            out.append(rec)
    if invalid is not None:
        invalid.sort()
    return out


def read_text(data: bytes | str) -> str:
    """File contents as text: UTF-8, with bytes that are not surrogate-escaped (never an error)."""
    return data if isinstance(data, str) else data.decode("utf-8", "surrogateescape")


# -- where the file is ---------------------------------------------------------------------------------

DEFAULT_FILE = "{home}/.gridshim/accounting"  # config.Settings.accounting_file's default
SITE_CONFIG = "/etc/gridshim/config.yaml"  # config.DEFAULT_PATH
_UNSURE = object()


def path_for(pattern: str | None, home: str) -> str | None:
    """The file a setting names for the tool whose home is HOME (as config.Settings.accounting_path)."""
    return pattern.replace("{home}", home.rstrip("/")) if pattern else None


def site_setting(environ: dict[str, str]) -> str | None:
    """The site config's `accounting_file` (None: accounting is off; DEFAULT_FILE when not set).

    Loading the whole config costs more than the rest of a `qacct -j` (PyYAML and the config module's
    imports), so the setting is read from the file's text when it is a plain top-level line; any other
    form, and any problem reading the file, goes through config.load, which also gives its errors."""
    explicit = environ.get("GRIDSHIM_CONFIG")
    try:
        with open(explicit or SITE_CONFIG, encoding="utf-8", errors="surrogateescape") as fh:
            text = fh.read()
    except FileNotFoundError:
        if not explicit:
            return DEFAULT_FILE
        return _from_config(environ)
    except OSError:
        return _from_config(environ)
    if "accounting_file" not in text:
        return DEFAULT_FILE
    value = _scan_setting(text)
    if value is _UNSURE:
        return _from_config(environ)
    return value  # type: ignore[return-value]


def _from_config(environ: dict[str, str]) -> str | None:
    from gridshim import config  # noqa: PLC0415  (only when the quick scan is not sure)

    return getattr(config.load(environ), "accounting_file", DEFAULT_FILE)


def _scan_setting(text: str) -> object:
    """`accounting_file: VALUE` as the one top-level line naming it, plain or quoted; _UNSURE otherwise."""
    found = [ln for ln in text.split("\n") if ln.startswith("accounting_file:")]
    if len(found) != 1:
        return _UNSURE
    value = found[0][len("accounting_file:"):].strip()
    if value[:1] == '"':
        if len(value) < 2 or not value.endswith('"') or "\\" in value or '"' in value[1:-1]:
            return _UNSURE
        value = value[1:-1]
    elif value[:1] == "'":
        inner = value[1:-1]
        if len(value) < 2 or not value.endswith("'") or "'" in inner.replace("''", ""):
            return _UNSURE
        value = inner.replace("''", "'")
    else:
        value = value.split(" #", 1)[0].rstrip()
        if value in ("~", "null", "Null", "NULL"):
            return None
        if not value or value[0] in "[{|>&*!%@`#" or ": " in value:
            return _UNSURE
    if not value.startswith(("/", "{home}")):
        return _UNSURE  # config.load refuses it with the right message
    return value


def home_of(environ: dict[str, str]) -> str:
    """$HOME, else the passwd entry's directory (the tool's home as the other commands find it)."""
    home = environ.get("HOME")
    if home:
        return home
    import pwd  # noqa: PLC0415

    try:
        return pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:
        from gridshim.errors import GridshimError  # noqa: PLC0415

        raise GridshimError(f"$HOME is not set and uid {os.getuid()} has no passwd entry",
                            hint="set HOME to the tool's home directory") from None
