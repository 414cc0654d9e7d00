"""qacct's layouts, byte for byte: the `-j` block of one record and the summary table.

Formats follow SGE 8.1.9 (qacct.c showjob and main, sge_ulong.c double_print_memory_to_string,
execution_states.c get_sstate_description); ../shared/docs/qsub-behaviour.md §6. Pure: records in,
text out; imports accounting (the record type) and text only. Times are local (the process's TZ).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from gridshim.accounting import Record
from gridshim.text import shown

RULE = "=" * 62 + "\n"
G = 1024.0 ** 3
DBL_MAX = 1.7976931348623157e308  # SGE prints this value as "infinity"

# get_sstate_description: the text qacct prints after a non-zero `failed` code
FAILED_TEXT = {
    0: "", 1: "assumedly before job", 2: "on executing shepherd", 3: "before writing config",
    4: "before writing pid", 5: "on reading config file", 6: "setting processor set", 7: "before prolog",
    8: "in prolog", 9: "before pestart", 10: "in pestart", 11: "before job", 12: "before pestop",
    13: "in pestop", 14: "before epilog", 15: "in epilog", 16: "releasing processor set",
    17: "through signal", 18: "shepherd returned error", 19: "before writing exit_status",
    20: "found unexpected error file", 21: "in recognizing job", 22: "removed manually", 24: "migrating",
    25: "rescheduling", 26: "opening input/output file", 27: "searching requested shell",
    28: "changing into working directory", 29: "AFS setup", 30: "application error returned",
    31: "accessing sgepasswd file", 32: "entry is missing in sgepasswd file", 33: "wrong password",
    34: "communicating with Grid Engine Helper Service", 35: "before job in Grid Engine Helper Service",
    36: "checking configured daemons", 37: "qmaster enforced h_rt, h_cpu, or h_vmem limit",
    38: "adding supplementary group", 100: "assumedly after job"}
UNKNOWN_FAILED = "invalid execution state"


def label(name: str) -> str:
    """`%-13.12s`: cut to 12 characters, padded to 13 (so `exit_status` is followed by two blanks)."""
    return f"{name[:12]:<13}"


def _width(text: str) -> int:
    """How many columns C's strlen sees: bytes."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogateescape"))


def _ljust(text: str, width: int) -> str:
    """qacct.c print_full: TEXT, then blanks up to WIDTH bytes (never cut)."""
    return text + " " * (width - _width(text))


def pad20(value: str) -> str:
    """`%-20s`: padded to 20 bytes (C counts bytes, not characters), never cut; trailing blanks kept."""
    return _ljust(value, 20)


def ctime(epoch: int) -> str:
    """ctime(3) without its newline, in local time: `Thu Jan  2 03:04:05 2020`."""
    return time.ctime(epoch)


def memory(value: float) -> str:
    """SGE's memory printer with its `B`: `%.3f` then K, M, G or T (powers of 1024); below 1 KiB the
    absolute value alone (`0.000B`)."""
    if value == DBL_MAX:
        return "infinityB"
    size = abs(value)
    for unit, scale in (("T", 1024.0 ** 4), ("G", G), ("M", 1024.0 ** 2), ("K", 1024.0)):
        if size >= scale:
            return "%.3f%sB" % (value / scale, unit)
    return "%.3fB" % size


def signal_text(number: int) -> str:
    """strsignal(3) as glibc words it (`Killed` for 9); `Unknown signal N` for a number it has no name for."""
    import signal  # noqa: PLC0415  (only for exit codes above 127)

    try:
        text = signal.strsignal(number)
    except (ValueError, OverflowError):
        text = None
    return text or f"Unknown signal {number}"


def failed_text(code: int) -> str:
    """`%-3u %s %s`: `0` and four blanks, or `100 : assumedly after job`."""
    return "%-3d %s %s" % (code, ":" if code else "", FAILED_TEXT.get(code, UNKNOWN_FAILED))


def exit_text(status: int) -> str:
    """`%-20u`, and ` (Killed)` for a status above 127 (128 + the signal)."""
    text = "%-20d" % status
    return f"{text} ({signal_text(status - 128)})" if status > 127 else text


def _template(*rows: tuple[str, str]) -> str:
    return "".join(label(name) + fmt + "\n" for name, fmt in rows)


# The block as one %-template (labels, counters and fixed formats); format_job fills in the rest.
_BLOCK = RULE + _template(
    ("qname", "%s"), ("hostname", "%s"), ("group", "%s"), ("owner", "%s"), ("project", "%s"),
    ("department", "%s"), ("jobname", "%s"), ("jobnumber", "%-20d"), ("taskid", "%s"), ("account", "%s"),
    ("priority", "%-20d"), ("qsub_time", "%s"), ("start_time", "%s"), ("end_time", "%s"), ("granted_pe", "%s"),
    ("slots", "%-20d"), ("failed", "%s"), ("exit_status", "%s"), ("ru_wallclock", "%.0fs"),
    ("ru_utime", "%.3fs"), ("ru_stime", "%.3fs"),
    # ru_maxrss: the raw getrusage number (KiB on Linux) printed as if it were bytes, as SGE does
    ("ru_maxrss", "%s"), ("ru_ixrss", "%s"), ("ru_ismrss", "%s"), ("ru_idrss", "%s"), ("ru_isrss", "%s"),
    *((name, "%-20d") for name in ("ru_minflt", "ru_majflt", "ru_nswap", "ru_inblock", "ru_oublock",
                                   "ru_msgsnd", "ru_msgrcv", "ru_nsignals", "ru_nvcsw", "ru_nivcsw")),
    ("cpu", "%ss"), ("mem", "%ss"), ("io", "%s"), ("iow", "%ss"), ("maxvmem", "%s"), ("arid", "%s"),
    ("ar_sub_time", "%s"), ("category", "%s"))


def format_job(r: Record) -> str:
    """One `qacct -j` block: a line of 62 `=`, then each field in SGE's order and format."""
    return _BLOCK % (
        pad20(shown(r.qname)), pad20(shown(r.hostname)), pad20(shown(r.group)), pad20(shown(r.owner)),
        pad20(shown(r.project)), pad20(shown(r.department)), pad20(shown(r.job_name)), r.job_number,
        "%-20d" % r.task_number if r.task_number else "undefined",
        pad20(shown(r.account)), r.priority, ctime(r.submission_time),
        ctime(r.start_time) if r.start_time else "-/-", ctime(r.end_time) if r.end_time else "-/-",
        pad20(shown(r.granted_pe)), r.slots, failed_text(r.failed), exit_text(r.exit_status),
        r.ru_wallclock, r.ru_utime, r.ru_stime,
        memory(r.ru_maxrss), memory(r.ru_ixrss), memory(r.ru_ismrss), memory(r.ru_idrss), memory(r.ru_isrss),
        r.ru_minflt, r.ru_majflt, r.ru_nswap, r.ru_inblock, r.ru_oublock, r.ru_msgsnd, r.ru_msgrcv,
        r.ru_nsignals, r.ru_nvcsw, r.ru_nivcsw,
        ("%-13.3f" % r.cpu).rstrip(),
        memory(r.mem * G),  # GB·s in the file, printed as bytes·s
        memory(r.io * G), ("%-18.3f" % r.iow).rstrip(), memory(r.maxvmem),
        "%-20d" % r.arid if r.arid else "undefined",
        ctime(r.ar_sub_time) if r.ar_sub_time else "undefined",
        shown(r.category))


def format_jobs(records: Iterable[Record]) -> str:
    return "".join(format_job(r) for r in records)


# -- summary mode --------------------------------------------------------------------------------------

# The grouping columns in SGE's print order: option kind → (header, record field). SGE sorts the
# groups by host, queue, group, owner, project, department, PE, slots, AR (and account last).
COLUMNS = {
    "host": ("HOST", "hostname"), "queue": ("CLUSTER QUEUE", "qname"), "group": ("GROUP", "group"),
    "owner": ("OWNER", "owner"), "project": ("PROJECT", "project"), "department": ("DEPARTMENT", "department"),
    "pe": ("PE", "granted_pe"), "slots": ("SLOTS", "slots"), "ar": ("AR", "arid"), "account": ("ACCOUNT", "account"),
}
NUMERIC = ("slots", "ar")
TITLE = "%13.13s %13.13s %13.13s %13.13s %18.18s %18.18s %18.18s" % (
    "WALLCLOCK", "UTIME", "STIME", "CPU", "MEMORY", "IO", "IOW")
ROW = "%13.0f %13.3f %13.3f %13.3f %18.3f %18.3f %18.3f\n"


def _usage(records: Iterable[Record]) -> list[float]:
    sums = [0.0] * 7
    for r in records:
        sums[0] += r.ru_wallclock
        sums[1] += r.ru_utime
        sums[2] += r.ru_stime
        sums[3] += r.cpu
        sums[4] += r.mem
        sums[5] += r.io
        sums[6] += r.iow
    return sums


def _cell(kind: str, value: object) -> str:
    """A leading column's text: slots and AR as `%5u`, names as they are (control characters escaped)."""
    return "%5d" % value if kind in NUMERIC else shown(str(value))  # type: ignore[str-format]


def format_summary(records: Sequence[Record], columns: Sequence[tuple[str, object]]) -> str:
    """qacct without -j: `Total System Usage` (no COLUMNS), or one leading column per (kind, value).

    A kind whose value is None groups the records by it, one row per group, sorted; a kind with a value
    (`-o alice`) was a filter and its column shows that value. No data rows when the total wallclock
    is 0. Column widths: max(header + 1, longest value + 1), as qacct.c calc_column_sizes."""
    order = [k for k in COLUMNS if any(c == k for c, _ in columns)]
    fixed = dict(columns)
    grouped = [k for k in order if fixed[k] is None]
    groups: dict[tuple[object, ...], list[Record]] = {}
    if grouped:
        fields = [COLUMNS[k][1] for k in grouped]
        for r in records:
            groups.setdefault(tuple(getattr(r, f) for f in fields), []).append(r)
    sort_order = [k for k in ("host", "queue", "group", "owner", "project", "department", "pe", "slots", "ar",
                              "account") if k in grouped]
    keyed = sorted(groups.items(), key=lambda kv: tuple(kv[0][grouped.index(k)] for k in sort_order))

    # qacct.c calc_column_sizes: header + 1, or a filter value + 1, at least the header + 1; slots and AR
    # at least 5, and once there are groups at least 6 (each group's "%5u" is 5 wide and must fit + 1)
    widths: dict[str, int] = {}
    for kind in order:
        value = fixed[kind]
        if kind in NUMERIC:
            widths[kind] = 6 if keyed else 5
        else:
            widths[kind] = max(len(COLUMNS[kind][0]), _width(_cell(kind, value)) if value is not None else 0) + 1
    for key, _ in keyed:
        for kind, value in zip(grouped, key):
            widths[kind] = max(widths[kind], _width(_cell(kind, value)) + 1)
    # the AR header is padded to the SLOTS column's width (which is 5 or 6 when there is no SLOTS column)
    header_widths = {k: (widths.get("slots", 6 if keyed else 5) if k == "ar" else widths[k]) for k in order}

    out = []
    if not order:
        out.append("Total System Usage\n")
    out.append("".join(_ljust(COLUMNS[k][0], header_widths[k]) for k in order) + TITLE + "\n")
    out.append("=" * (sum(header_widths.values()) + len(TITLE)) + "\n")
    totals = _usage(records)
    if totals[0]:
        if grouped:
            for key, members in keyed:
                values = dict(zip(grouped, key))
                lead = "".join(_ljust(_cell(k, values[k] if fixed[k] is None else fixed[k]), widths[k])
                               for k in order)
                out.append(lead + ROW % tuple(_usage(members)))
        else:
            lead = "".join(_ljust(_cell(k, fixed[k]), widths[k]) for k in order)
            out.append(lead + ROW % tuple(totals))
    return "".join(out)
