"""qstat's plain layouts, byte for byte: the default ("reduced") listing and `qstat -j`.

Formats follow SGE 8.1.9 (qstat.c job_stdout_job, show_job.c cull_show_job). Pure; imports model,
the leaves text and quantity, and the output package only.
"""

from __future__ import annotations

import time

from gridshim.model import GridState, JobKind, JobRow, ordered
from gridshim.output import PRIORITY, is_running, queue_instance, shown_time
from gridshim.quantity import format_binary
from gridshim.text import shown

HEADER = ("job-ID  prior   name       user         state submit/start at     "
          "queue                          slots ja-task-ID \n")
RULE = "-" * 113 + "\n"
DETAIL_RULE = "=" * 62 + "\n"
KEY_WIDTH = 28  # show_job.c pads every "key:" to column 28
SLOTS = 1  # a serial job: one pod, one slot (qsub -pe gives more)


def slots_of(row: JobRow) -> int:
    slots = row.options.get("slots")
    return slots if isinstance(slots, int) and slots > 0 else SLOTS


def grid_time(epoch: float) -> str:
    """MM/DD/YYYY HH:MM:SS in local time (SGE sge_time.c, the qstat column)."""
    return time.strftime("%m/%d/%Y %H:%M:%S", time.localtime(epoch))


def state_text(row: JobRow) -> str:
    """The state letters (status.Row adds `h` for holds and dependencies: hqw, hr)."""
    return str(getattr(row, "state_text", row.state.value))


def tasks_text(row: JobRow) -> str:
    """The ja-task-ID column: an array job's task or pending task set; '' for other jobs."""
    return str(getattr(row, "tasks", "") or "")


def format_row(row: JobRow) -> str:
    prio = PRIORITY[is_running(row)]
    return (f"{row.job_id:7d} {prio:7.5f} {shown(row.name):<10.10} {shown(row.owner):<12.12} {state_text(row):<5.5} "
            f"{grid_time(shown_time(row))} {shown(queue_instance(row)):<30.30} {slots_of(row):5d} "
            + (tasks_text(row) or " " * 7) + "\n")


def format_plain(rows: list[JobRow], *, resources: bool = False) -> str:
    """The default qstat listing; nothing at all (not even the header) when there are no jobs.
    RESOURCES (-r) adds each job's requested resources under its row."""
    if not rows:
        return ""
    return HEADER + RULE + "".join(format_row(r) + (format_requests(r) if resources else "") for r in ordered(rows))


_R = " " * 7  # qstat -r's indent (sge_qstat.c)


def requested(row: JobRow) -> list[str]:
    """The hard resource requests as `name=value` (SGE's -r and -j lists). jsub jobs show memory as jsub
    passed it to qsub (h_vmem in k, 1024-byte units); qsub jobs as SGE prints a memory value, per slot."""
    opts = row.options
    qsub = opts.get("dialect") == "qsub"

    def memory(n: int) -> str:
        return _sge_memory(n) if qsub else f"{n // 1024}k"

    out = []
    if row.mem_bytes:
        out.append(f"h_vmem={memory(row.mem_bytes // max(slots_of(row), 1) if qsub else row.mem_bytes)}")
    if opts.get("mem_request"):
        out.append(f"mem_free={memory(int(opts['mem_request']))}")
    if opts.get("wall_seconds"):  # qsub: h_rt as asked (the deadline can be s_rt's, docs/qsub.md "Resources")
        out.append(f"h_rt={opts['wall_seconds']}")
    if opts.get("s_rt"):
        out.append(f"s_rt={opts['s_rt']}")
    if qsub:
        out += [f"{k}={v}" for k, v in opts.get("resources") or []]
    elif opts.get("release"):
        out.append(f"release={opts['release']}")
    return out


def _sge_memory(n: int) -> str:
    return format_binary(n, ("K", "M", "G"))


def format_requests(row: JobRow) -> str:
    """`qstat -r`'s lines under a job: full name, master queue, PE, hard and soft resources, queues."""
    out = [f"{_R}Full jobname:     {shown(row.name)}\n"]
    if row.is_running and row.node:
        out.append(f"{_R}Master Queue:     {queue_instance(row)}\n")
    pe = row.options.get("pe")
    if isinstance(pe, list) and len(pe) == 2:
        out.append(f"{_R}Requested PE:     {pe[0]} {pe[1]}\n")
        if row.is_running:
            out.append(f"{_R}Granted PE:       {pe[0]} {pe[1]}\n")
    hard = requested(row)
    first = f"{hard[0]} (0.000000)" if hard else ""
    out.append(f"{_R}Hard Resources:   {first}\n")
    out.extend(f"{' ' * 25}{h} (0.000000)\n" for h in hard[1:])
    out.append(f"{_R}Soft Resources:   \n")
    out.append(f"{_R}Hard requested queues: {shown(row.queue)}\n")
    return "".join(out)


def _kv(key: str, value: object) -> str:
    return f"{key + ':':<{KEY_WIDTH}}{shown(str(value))}\n"


def resource_list(row: JobRow) -> str:
    """The `-l` list of `qstat -j`'s `hard resource_list`."""
    return ",".join(requested(row))


def format_detail(row: JobRow) -> str:
    """One job as `qstat -j` shows it (without the leading rule)."""
    o = row.options
    user = row.owner
    out = [_kv("job_number", row.job_id)]
    if row.kind is JobKind.CONTINUOUS:
        out.append(_kv("exec_file", f"job_scripts/{row.job_id}"))  # jstart sent its wrapper on stdin
    out.append(_kv("submission_time", time.ctime(row.submit_time)))
    out.append(_kv("owner", user))
    if row.run_uid is not None:
        out.append(_kv("uid", row.run_uid))
    out.append(_kv("group", user))
    if row.run_gid is not None:
        out.append(_kv("gid", row.run_gid))
    home = o.get("home") or ""
    if home:
        out.append(_kv("sge_o_home", home))
    out.append(_kv("sge_o_log_name", user))
    if o.get("workdir"):
        out.append(_kv("sge_o_workdir", o["workdir"]))
    if row.not_before:
        out.append(_kv("execution_time", time.ctime(row.not_before)))
    out.append(_kv("account", "sge"))
    if o.get("cwd") and o.get("workdir"):
        out.append(_kv("cwd", o["workdir"]))
    if o.get("stderr"):
        out.append(_kv("stderr_path_list", f"NONE:NONE:{o['stderr']}"))
    if o.get("join"):
        out.append(_kv("merge", "y"))
    resources = resource_list(row)
    if resources:
        out.append(_kv("hard resource_list", resources))
    if o.get("mail"):
        out.append(_kv("mail_list", o["mail"]))
    out.append(_kv("notify", "TRUE" if o.get("notify") else "FALSE"))
    out.append(_kv("job_name", row.name))
    if o.get("stdout"):
        out.append(_kv("stdout_path_list", f"NONE:NONE:{o['stdout']}"))
    if o.get("stdin"):
        out.append(_kv("stdin_path_list", f"NONE:NONE:{o['stdin']}"))
    out.append(_kv("jobshare", 0))
    out.append(_kv("hard_queue_list", row.queue))
    env = ",".join(f"{k}={v}" for k, v in (o.get("env") or []))
    out.append(_kv("env_list", env))
    qsub_script = o.get("dialect") == "qsub" and not o.get("binary")
    if row.kind is JobKind.CONTINUOUS:
        out.append(_kv("script_file", "STDIN"))
    elif o.get("dialect") == "qsub":
        args = o.get("args") or []
        if args:
            out.append(_kv("job_args", ",".join(args)))
        out.append(_kv("script_file", o.get("script_file") or "STDIN"))
    else:
        if len(row.argv) > 1:
            out.append(_kv("job_args", ",".join(row.argv[1:])))
        if row.argv:
            out.append(_kv("script_file", row.argv[0]))
    if o.get("pe"):
        out.append(_kv("parallel environment", f"{o['pe'][0]} range: {o['pe'][1]}"))
    out.extend(_dependencies(row))
    array = getattr(row, "array", None)
    if array:
        out.append(_kv("job-array tasks", f"{array[0]}-{array[1]}:{array[2]}"))  # as submitted
        tc = getattr(row, "tc", None)
        if tc:
            out.append(_kv("maximum concurrency", tc))
    out.append(_kv("binding", "NONE"))
    if row.kind is not JobKind.CONTINUOUS and not qsub_script:
        out.append(_kv("job_type", "binary"))  # jsub submits with -b y; jstart's wrapper is a script
    if row.state is GridState.ERROR and row.message:
        out.append(f"{'error reason':s} {1:10d}:      {shown(row.message)}\n")
    elif not is_running(row) and row.message:
        lines = row.message.splitlines() or [""]
        out.append(_kv("scheduling info", lines[0]))
        out.extend(" " * KEY_WIDTH + shown(line) + "\n" for line in lines[1:])
    return "".join(out)


def _dependencies(row: JobRow) -> list[str]:
    """-hold_jid as requested, the predecessors resolved at submit, the waiting jobs naming this one
    (show_job.c: after the parallel environment, before the job-array line)."""
    out = []
    req = getattr(row, "predecessors_req", "")
    if req:
        out.append(_kv("jid_predecessor_list (req)", req))
    ids = getattr(row, "predecessor_ids", ())
    if ids:
        out.append(_kv("jid_predecessor_list", ",".join(str(i) for i in ids)))
    successors = getattr(row, "successors", ())
    if successors:
        out.append(_kv("jid_successor_list", ",".join(str(i) for i in successors)))
    return out


def format_details(rows: list[JobRow]) -> str:
    """`qstat -j …`: each job preceded by a rule of 62 '='."""
    return "".join(DETAIL_RULE + format_detail(r) for r in ordered(rows))


def not_found(requested: list[str]) -> str:
    """stderr when no requested job exists (SGE MSG_QSTAT_FOLLOWINGDONOTEXIST, note the trailing space)."""
    return "Following jobs do not exist: \n" + ", ".join(requested) + "\n"
