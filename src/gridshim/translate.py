"""Every Grid Engine decision: GridOptions + the submit host's facts → JobRequest (pure).

Defaults (job name, log paths, memory, queue, umask), presets (jstart, qcronsub), path resolution
and release → image all live here. No clock, environment, filesystem or network: the caller passes
a `SubmitHost` with what it observed. Imports gridflags, model, config, errors and render.labels.
"""

from __future__ import annotations

import os.path
import posixpath
import re
import shlex
import time

from gridshim.config import Settings
from gridshim.errors import GridshimError, UsageError
from gridshim.gridflags import GridOptions
from gridshim.model import JobKind, JobRequest, Preset
from gridshim.record import field, record
from gridshim.render.labels import job_id_for
from gridshim.sgeflags import MAX_AJ_TASKS, QUEUE_NOTIFY_DEFAULT, Rejected
from gridshim.tasks import ids as task_ids
from gridshim.text import shown

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up, docs/performance.md)
if TYPE_CHECKING:
    from collections.abc import Callable

# SGE job names may not contain these, nor start with a digit (sge_types(5) "job_name").
_BAD_NAME = re.compile(r"[/:@\\*?\s]")
# -l resources the grid knew that mean nothing here; accepted with a warning rather than refused.
_IGNORED_RESOURCES = ("s_vmem", "h_cpu", "s_cpu", "h_fsize", "s_fsize", "h_data", "s_data", "h_stack",
                      "s_stack", "h_core", "s_core", "h_rss", "s_rss", "arch", "hostname", "user_slot",
                      "sql", "tmpfs")


@record(frozen=True, kw_only=True)
class SubmitHost:
    """What the submitting machine knows: tool, home, cwd, environment, time, and a directory test."""

    tool: str
    home: str
    cwd: str
    env: dict[str, str] = field(default_factory=dict)
    uid: int | None = None
    now: float = 0.0
    token: str = ""
    isdir: Callable[[str], bool] = lambda _p: False
    # The rest of the one host port (submit.py): files as the submitting user sees them, and names.
    exists: Callable[[str], bool] = lambda _p: False
    executable: Callable[[str], bool] = lambda _p: True
    readable: Callable[[str], bool] = lambda _p: True
    writable: Callable[[str], bool] = lambda _p: True  # by the job's user (the CLI knows only when it is the caller)
    read_text: Callable[[str], str | None] = lambda _p: None  # whole file; None if absent or binary
    user_home: Callable[[str], str | None] = lambda _u: None  # ~user: that account's home, if known
    hostname: str = ""  # the submit host's short name (SGE_O_HOST)


@record(frozen=True, kw_only=True)
class Translation:
    request: JobRequest
    warnings: tuple[str, ...] = ()


def default_job_name(program: str) -> str:
    """jsub: basename(program) up to the first dot ('run.sh' → 'run', 'other.v2.sh' → 'other')."""
    base = posixpath.basename(program.rstrip("/"))
    return base.split(".")[0] or base


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def check_job_name(name: str) -> None:
    if not name:
        raise UsageError("argument -N: the job name must not be empty")
    if _CONTROL.search(name):
        raise UsageError(f"argument -N: invalid job name '{shown(name)}': it must not contain control characters")
    if _BAD_NAME.search(name) or name[0].isdigit():
        raise UsageError(f"argument -N: invalid job name '{name}': it must not start with a digit "
                         "or contain / : @ \\ * ? or whitespace")


def expand_path(path: str, *, host: SubmitHost, name: str, job_id: int | str, task_id: str = "undefined",
                sge: bool = False) -> str:
    """SGE expands these in -o/-e/-i paths; gridshim does it at submit time (CronJob runs: the
    wrapper expands $JOB_ID when the run starts). SGE (qsub) also turns `$$` into `$`; any other `$`
    stays as it is."""
    values = {"HOME": host.home, "USER": host.env.get("USER", ""), "JOB_NAME": name,
              "JOB_ID": str(job_id), "TASK_ID": task_id, "HOSTNAME": host.env.get("HOSTNAME", "")}
    pattern = r"\$(\{)?(HOME|USER|JOB_NAME|JOB_ID|TASK_ID|HOSTNAME)(?(1)\})"
    if sge:
        pattern = r"\$\$|" + pattern
    return re.sub(pattern, lambda m: "$" if m.group(0) == "$$" else values[m.group(2)], path)


# The wrapper replaces these texts in -o/-e/-i paths with the run's $JOB_ID and an array task's id
# (render/command.py).
RUNTIME_JOB_ID = "$JOB_ID"
RUNTIME_TASK_ID = "$TASK_ID"
# Stock SGE complex attributes that mean nothing on Kubernetes: accepted, with a warning (complex(5)).
SGE_COMPLEXES = ("arch", "calendar", "cpu", "display_win_gui", "h_core", "h_cpu", "h_fsize", "h_stack",
                 "hostname", "load_avg", "load_long", "load_medium", "load_short", "m_core", "m_socket",
                 "m_thread", "m_topology", "mem_total", "mem_used", "min_cpu_interval", "np_load_avg",
                 "num_proc", "qname", "rerun", "s_core", "s_cpu", "s_fsize", "s_stack", "seq_no",
                 "swap_free", "swap_rate", "swap_rsvd", "swap_total", "swap_used", "tmpdir", "virtual_total",
                 "virtual_used", "exclusive")
_SGE_NAME_CHARS = {"\n": "New line", "\t": "Tab", "\r": "Carriage return", "/": "Slash", ":": "Colon",
                   "@": "At", "\\": "Backslash", "*": "Asterisk", "?": "Question mark"}


def _tilde(path: str, host: SubmitHost) -> str:
    """`~` and `~user` as SGE expands them in -o/-e/-i/-wd."""
    if path == "~" or path.startswith("~/"):
        return host.home + path[1:]
    if path.startswith("~"):
        user, _, rest = path[1:].partition("/")
        home = host.user_home(user)
        if home:
            return home + ("/" + rest if rest else "")
    return path


def check_sge_name(name: str) -> None:
    """The qmaster's object-name rules for job names (sge_job_verify.c, verify_str_key)."""
    if name[:1].isdigit():
        raise Rejected(f'denied: "{name}" is not a valid object name (cannot start with a digit)')
    for ch, what in _SGE_NAME_CHARS.items():
        if ch in name:
            raise Rejected(f"{what} ('{shown(ch)}') not allowed in objectname")
    bad = _CONTROL.search(name)
    if bad:  # SGE let other control characters through; they would reach terminals and qstat -xml
        raise Rejected(f"Control character ('{shown(bad.group(0))}') not allowed in objectname")
    if name.upper() in ("NONE", "ALL", "TEMPLATE"):
        raise Rejected(f'Keyword ("{name}") not allowed as objectname')
    if len(name) > 512:
        raise Rejected("string is longer than 512, this is not allowed for objectnames")


def parallel_environment(sge: dict, resources: tuple[tuple[str, str], ...],
                         settings: Settings) -> tuple[tuple[str, int] | None, int]:
    """-pe NAME RANGE → (granted pe, slots): one node, the largest count the site allows (SGE tries
    the largest first); `-l slots=N` without -pe gives N slots too (Nextflow sends it)."""
    import fnmatch  # noqa: PLC0415

    if "pe" not in sge:
        for res, val in resources:
            if res == "slots":
                if not val.isdigit() or int(val) < 1:
                    raise Rejected(f'wrong type in "slots={val}" - int expected')
                return None, int(val)
        return None, 1
    pattern, low, high = sge["pe"]
    names = [n for n in settings.parallel_environments if fnmatch.fnmatchcase(n, pattern)]
    if not names:
        raise Rejected(f'job rejected: the requested parallel environment "{pattern}" does not exist')
    name = names[0]
    cap = settings.parallel_environments[name]
    slots = high if high is not None else max(low, cap or low)
    if cap is not None:
        slots = min(slots, cap)
    if slots < low:
        raise Rejected(f'job rejected: parallel environment "{name}" has at most {cap} slots; {low} requested')
    return (name, slots), slots


def _qsub_memory(opts: GridOptions, slots: int, settings: Settings) -> int:
    """SGE: h_vmem and the other per-job memory limits are per slot; a request above the limit raises it."""
    limit = opts.mem * slots if opts.mem is not None else settings.default_mem
    if opts.mem_request is not None and opts.mem_request > limit:
        limit = opts.mem_request
    return limit


def array_tasks(sge: dict) -> tuple[int, int, int] | None:
    """-t and -tc as the qmaster checks them (sge_job_verify.c): task ids from 1, at most max_aj_tasks,
    and -tc only with -t. None: not an array job."""
    tasks = sge.get("tasks")
    if tasks is None:
        if sge.get("tc"):
            raise Rejected('invalid "task concurrency" value in job request')
        if sge.get("hold_jid_ad"):
            raise Rejected('Can only specify "-hold_jid_ad" option with an array job (using "-t" option)')
        return None
    first, last, step = tasks
    if first <= 0:
        raise Rejected("job rejected: 0 is an invalid task id")
    if len(task_ids(tasks)) > MAX_AJ_TASKS:
        raise Rejected(f"job rejected: you tried to submit a job with more than {MAX_AJ_TASKS} tasks")
    return first, last, step


def _qsub_checks(sge: dict) -> list[str]:
    warnings = []
    if sge.get("now"):
        warnings.append("-now y: there are no interactive queues; the job was queued as a batch job")
    if sge.get("priority", 0) > 0:
        raise Rejected("job rejected: positive submission priority requires operator privileges")
    return warnings


_ENV_NAME = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"  # compiled on first use; what Kubernetes accepts as an env var name


def job_environment(opts: GridOptions, *, host: SubmitHost, user: str, name: str, queue: str, job_id: int,
                    kind: JobKind, workdir: str, slots: int, pe: tuple[str, int] | None, sge: dict, qsub: bool,
                    shell_path: str, program: str, script: bool, warnings: list[str],
                    array: bool = False) -> dict[str, str]:
    """The job's environment as SGE's execd builds it: -v/-V first, then the execd's own variables,
    which win (qsub-behaviour §3). TMPDIR, PATH's TMPDIR prefix, JOB_SCRIPT of a script job, the
    SGE_*_PATH variables and a CronJob run's JOB_ID are set by the wrapper when the job starts."""
    env: dict[str, str] = {}
    skipped = []
    for var, val in opts.env:
        value = host.env.get(var, "") if val is None else val
        if not re.match(_ENV_NAME, var) or not _utf8(value):
            skipped.append(var)
            continue
        env[var] = value
    if skipped:
        warnings.append(f"not passed to the job (not valid as Kubernetes env): {', '.join(sorted(skipped))}")
    for var in ("HOME", "LOGNAME", "PATH", "SHELL", "MAIL", "TZ"):
        if var in host.env and _utf8(host.env[var]):
            env[f"SGE_O_{var}"] = host.env[var]
    env.update({
        "HOME": host.home, "USER": user, "LOGNAME": user, "TOOL_DATA_DIR": host.home,
        "JOB_NAME": name, "REQUEST": name, "REQNAME": name, "QUEUE": queue,
        "SGE_TASK_ID": "undefined", "SGE_TASK_FIRST": "undefined", "SGE_TASK_LAST": "undefined",
        "SGE_TASK_STEPSIZE": "undefined", "NSLOTS": str(slots), "NHOSTS": "1", "NQUEUES": "1",
        "SGE_O_HOST": host.env.get("HOST") or host.hostname or "localhost", "SGE_O_WORKDIR": host.cwd,
        "SGE_CWD_PATH": workdir, "SGE_CELL": "default", "SGE_ACCOUNT": str(sge.get("account") or "sge"),
        "ENVIRONMENT": "BATCH", "RESTARTED": "0", "TERM": "",
    })
    if array:  # an array task's SGE_TASK_* are set by the wrapper, from its completion index
        for var in ("SGE_TASK_ID", "SGE_TASK_FIRST", "SGE_TASK_LAST", "SGE_TASK_STEPSIZE"):
            del env[var]
    if job_id and kind is not JobKind.SCHEDULED:
        env["JOB_ID"] = str(job_id)
    if pe:
        env["PE"] = pe[0]
    if opts.cwd or opts.wd:
        env["PWD"] = workdir
    if qsub:
        env["SHELL"] = shell_path
    if not script:
        env["JOB_SCRIPT"] = program
    return env


# -a: how far ahead a start time may be (the pod waits for it); -l h_rt: activeDeadlineSeconds' range.
MAX_WAIT_SECONDS = 7 * 86400
MAX_WALL_SECONDS = 2**31 - 1


def _check_writable(path: str, host: SubmitHost, *, qsub: bool) -> None:
    """An output file the job could not open would end it at once, with the reason only in the pod's
    log: refuse now when this host can tell (the directory exists and the job's user cannot write)."""
    directory = posixpath.dirname(path) or "/"
    if not host.isdir(directory) or host.writable(path if host.exists(path) else directory):
        return
    text = f"the job could not write its output file {path}: permission denied"
    if qsub:
        raise Rejected(text)
    raise GridshimError(text, hint="choose another -o/-e, or fix the directory's permissions")


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _job_argv(opts: GridOptions, *, program: str, shell: str | None, qsub: bool, shell_path: str,
              script: bool) -> tuple[str, ...]:
    """What the wrapper runs. jsub: the program and its arguments byte-exact. qsub script jobs:
    `<shell> <copied script> ARGS` (the wrapper inserts the copy's path; posix_compliant start,
    the #! line is not used); `-b y`: `<shell> -c "CMD ARG…"` with the words joined by blanks and
    re-read by the shell, as SGE's starter does (`-shell n`: exec'd directly, argv intact)."""
    if shell is not None:
        return ()
    if qsub and script:
        return (shell_path, *opts.args)
    if qsub and opts.binary and opts.sge.get("shell_mode", True):
        words = [a if a else '""' for a in (program, *opts.args)]
        return (shell_path, "-c", " ".join(words) + " ")
    return (program, *opts.args)


def _resolve(path: str, base: str) -> str:
    return posixpath.normpath(path if path.startswith("/") else posixpath.join(base, path))


def parse_start_time(value: str, now: float) -> int:
    """-a [[CC]YY]MMDDhhmm[.SS] in local time → epoch seconds."""
    secs = 0
    if "." in value:
        value, s = value.split(".")
        secs = int(s)
    t = time.localtime(now)
    year = t.tm_year
    if len(value) == 12:
        year, value = int(value[:4]), value[4:]
    elif len(value) == 10:
        yy = int(value[:2])
        year, value = (1900 + yy if yy >= 70 else 2000 + yy), value[2:]  # SGE: YY below 70 is 20YY
    month, day, hour, minute = (int(value[i:i + 2]) for i in range(0, 8, 2))
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour <= 23 and minute <= 59 and secs <= 61):
        raise UsageError(f"argument -a: invalid date: '{value}'")
    try:
        return int(time.mktime((year, month, day, hour, minute, secs, 0, 0, -1)))
    except (OverflowError, ValueError):
        raise UsageError(f"argument -a: invalid date: '{value}'") from None


def translate(
    opts: GridOptions,
    *,
    preset: Preset,
    settings: Settings,
    host: SubmitHost,
    program: str,
    schedule: str | None = None,
    schedule_text: str | None = None,
    timezone: str | None = None,
    shell: str | None = None,
    command_line: str = "",
    dialect: str = "jsub",
    script_text: str | None = None,
    default_name: str | None = None,
) -> Translation:
    """Decide everything about one submission. PROGRAM is already resolved by the caller.

    DIALECT "qsub" applies Grid Engine's own defaults where jsub had its own (output file names,
    memory units, slots, the job environment); SCRIPT_TEXT is a qsub job script, copied into the job.
    """
    qsub = dialect == "qsub"
    sge = opts.sge
    warnings: list[str] = []
    if opts.unrecognized:
        raise UsageError(f"unrecognized arguments: {' '.join(opts.unrecognized)}")
    continuous = opts.continuous or preset is Preset.JSTART
    once = opts.once or continuous or preset in (Preset.JSTART, Preset.QCRONSUB)
    kind = JobKind.SCHEDULED if schedule else (JobKind.CONTINUOUS if continuous else JobKind.ONE_OFF)
    if opts.name is not None:
        name = opts.name
    else:
        name = default_name if default_name is not None else default_job_name(program)
    (check_sge_name if qsub else check_job_name)(name)

    slots, pe = 1, None
    if qsub:
        pe, slots = parallel_environment(sge, opts.resources, settings)
        mem = _qsub_memory(opts, slots, settings)
    else:
        mem = opts.mem if opts.mem is not None else settings.default_mem
    if settings.max_mem is not None and mem > settings.max_mem:
        if qsub:
            raise Rejected(f"job rejected: the requested memory ({mem // (1024 * 1024)}M) is more than this "
                           f"site's maximum of {settings.max_mem // (1024 * 1024)}M")
        raise GridshimError(f"Unable to run job: -mem {mem // (1024 * 1024)}M is more than this site's "
                            f"maximum of {settings.max_mem // (1024 * 1024)}M")

    tasks = array_tasks(sge) if qsub else None
    job_id = job_id_for(host.token) if host.token else 0
    # CronJob runs get their id when they start; their paths keep $JOB_ID for the wrapper to expand.
    path_id = RUNTIME_JOB_ID if kind is JobKind.SCHEDULED else str(job_id)
    # SGE: $TASK_ID of a non-array job is 0 in paths (8.1.9); an array task's is replaced by the wrapper
    task_id = RUNTIME_TASK_ID if tasks else ("0" if qsub else "undefined")

    def expand(path: str) -> str:
        return expand_path(path, host=host, name=name, job_id=path_id, task_id=task_id, sge=qsub)

    workdir = host.home
    if opts.cwd:
        workdir = host.cwd
    if opts.wd:
        workdir = _resolve(expand(_tilde(opts.wd, host)), host.cwd)
    # SGE resolves relative -o/-e/-i against the job's working directory ($HOME unless -cwd/-wd).
    rel_base = workdir

    # SGE's default names: <JOB_NAME>.o<JOB_ID>, and .<TASK_ID> after it for an array task
    task_suffix = f".{RUNTIME_TASK_ID}" if tasks else ""

    def out_path(given: str | None, suffix: str, letter: str) -> str:
        if given is None:
            if qsub:  # SGE: <workdir>/<JOB_NAME>.o<JOB_ID>
                return posixpath.join(workdir, f"{name}.{letter}{path_id}{task_suffix}")
            return posixpath.join(host.home, f"{name}.{suffix}")
        path = _resolve(expand(_tilde(given, host)), rel_base)
        # a directory gets the default name inside it; `DIR/` means one even before it exists (the job
        # then fails to open its output, as SGE's did, instead of writing to a file named DIR)
        if host.isdir(path) or (qsub and given.endswith("/")):
            return posixpath.join(path, f"{name}.{letter}{path_id}{task_suffix}")
        return path

    stdout = out_path(opts.out, "out", "o")
    stderr = stdout if opts.join else out_path(opts.err, "err", "e")
    stdin = _resolve(expand(_tilde(opts.stdin, host)), rel_base) if opts.stdin else None

    user = f"{settings.user_prefix}{host.tool}"
    queue = opts.queue or ("continuous" if continuous else "task")
    shell_path = sge.get("shell") or "/bin/sh"
    env = job_environment(opts, host=host, user=user, name=name, queue=queue, job_id=job_id, kind=kind,
                          workdir=workdir, slots=slots, pe=pe, sge=sge, qsub=qsub, shell_path=shell_path,
                          program=program, script=script_text is not None, warnings=warnings,
                          array=tasks is not None)

    for res, val in opts.resources:
        if res == "slots" and qsub:
            continue
        if res in _IGNORED_RESOURCES or (qsub and res in SGE_COMPLEXES):
            warnings.append(f"-l {res}={val} has no meaning on Kubernetes and was ignored")
        elif qsub and res not in settings.qsub_resources:
            raise Rejected(f'unknown resource "{res}"')
        else:
            warnings.append(f"-l {res}={val} is not a resource gridshim knows; it was ignored")
    if opts.mail_events and opts.mail_events != "n" and not settings.mail_command:
        warnings.append("-m: mail on job events is not sent at this site (its gridshim config sets no mail "
                        "command); the option was recorded only")
    if qsub:
        warnings += _qsub_checks(sge)

    if opts.umask is not None:
        umask = opts.umask
    elif qsub:
        umask = 0o022  # SGE: the execd's umask; output files 0644 (qsub-behaviour §1.5)
    else:
        umask = 0o007 if (host.uid or 0) > 50000 else 0o077  # jsub's default for tools
    if qsub and script_text is None and not opts.binary and sge.get("script_file") not in (None, "STDIN"):
        script_path = sge["script_file"]  # a CronJob: the script is read from its path at each run
        env["JOB_SCRIPT"] = script_path
    else:
        script_path = None
    not_before = parse_start_time(opts.start_at, host.now) if opts.start_at else None
    if not_before is not None and host.now and not_before - host.now > MAX_WAIT_SECONDS:  # now 0: no clock given
        # the pod waits inside its wrapper, holding its memory and a quota slot until then
        text = (f"-a {opts.start_at} is more than {MAX_WAIT_SECONDS // 86400} days ahead; a job waits for its "
                "start time in a pod that holds its memory until then")
        if qsub:
            raise Rejected(f"job rejected: {text}; use a crontab line for far-off starts")
        raise GridshimError(text, hint="use a crontab line (crontab -e) for far-off starts")
    if opts.wall_seconds is not None and opts.wall_seconds > MAX_WALL_SECONDS:
        text = f"h_rt={opts.wall_seconds} is more than the {MAX_WALL_SECONDS} seconds Kubernetes can enforce"
        limit = "h_rt"
        if qsub and sge.get("s_rt") is not None and sge.get("h_rt") != opts.wall_seconds:  # s_rt's deadline
            text = (f"s_rt={sge['s_rt']} and the {QUEUE_NOTIFY_DEFAULT} seconds before its kill are more than the "
                    f"{MAX_WALL_SECONDS} seconds Kubernetes can enforce")
            limit = "s_rt"
        if qsub:
            raise Rejected(f"job rejected: {text}; use {limit}=INFINITY for no limit")
        raise UsageError(f"argument -l: {text}; leave h_rt out for no limit")
    for path in {stdout, stderr}:
        if RUNTIME_JOB_ID not in path:
            _check_writable(path.replace(RUNTIME_TASK_ID, str(tasks[0])) if tasks else path, host, qsub=qsub)
    options = {
        "mem": mem, "once": once, "continuous": continuous, "stdout": stdout, "stderr": stderr,
        "join": opts.join, "queue": queue, "release": opts.release, "cwd": opts.cwd, "workdir": workdir,
        "umask": f"{umask:03o}", "wall_seconds": opts.wall_seconds, "mail_to": list(opts.mail_to),
        "mail_events": opts.mail_events, "resources": [list(p) for p in opts.resources],
        "ignored": list(opts.ignored),
        "env": [list(p) for p in opts.env if not sge.get("export_all") or p[0] in sge.get("v_vars", ())],
        "preset": preset.value,
        "mail": ",".join(opts.mail_to) or f"{host.env.get('LOGNAME') or host.env.get('USER') or user}@{settings.mail_domain}",
    }
    if opts.mem_request is not None:
        options["mem_request"] = opts.mem_request
    if qsub:
        options.update(dialect="qsub", slots=slots, pe=list(pe) if pe else None, shell=sge.get("shell"),
                       args=list(opts.args),
                       binary=bool(opts.binary), script_file=sge.get("script_file"),
                       wall_seconds=sge.get("h_rt", opts.wall_seconds),  # h_rt as asked, not the deadline
                       **{k: sge[k] for k in ("account", "project", "priority", "notify", "rerun", "hold",
                                              "jobshare", "queues", "tc", "hold_jid", "hold_jid_ad") if k in sge})
        if sge.get("s_rt") is not None:
            options["s_rt"] = sge["s_rt"]
        if tasks:
            options["tasks"] = list(tasks)
    argv = _job_argv(opts, program=program, shell=shell, qsub=qsub, shell_path=shell_path,
                     script=script_text is not None)
    if script_path:
        argv = (shell_path, script_path, *opts.args)
    req = JobRequest(
        name=name, kind=kind, tool=host.tool, argv=argv, shell=shell,
        command_line=command_line or shlex.join(argv), mem_bytes=mem, once=once,
        stdout=stdout, stderr=stderr, merge=opts.join, stdin=stdin, workdir=workdir, home=host.home,
        env=tuple(env.items()), umask=umask, image=settings.image_for(opts.release), release=opts.release,
        queue=queue, wall_seconds=opts.wall_seconds, soft_seconds=sge.get("soft_seconds"), schedule=schedule, schedule_text=schedule_text,
        timezone=timezone, uid=host.uid, token=host.token, options=options, not_before=not_before,
        job_id=job_id, cpus=slots if qsub and slots > 1 else None, script_text=script_text,
        notify=bool(sge.get("notify")), held=bool(sge.get("hold")),
        rerun=sge.get("rerun"), submitted=int(host.now) if kind is not JobKind.SCHEDULED else 0,
        tasks=tasks, task_concurrency=int(sge.get("tc") or 0) if tasks else 0,
    )
    _check_text(req)
    return Translation(request=req, warnings=tuple(warnings))


def _check_text(req: JobRequest) -> None:
    """Kubernetes objects are JSON text: bytes that are not UTF-8 (surrogate-escaped by Python's
    argv decoding) would arrive as U+FFFD. Refuse them rather than change them silently."""
    fields = [("the job name", req.name), ("-o", req.stdout), ("-e", req.stderr), ("-i", req.stdin or ""),
              ("the working directory", req.workdir), ("the command", req.shell or ""),
              ("the job script", req.script_text or "")]
    fields += [(f"argument {i}" if i else "the program", a) for i, a in enumerate(req.argv)]
    fields += [(f"-v {k}", f"{k}={v}") for k, v in req.env]
    for what, text in fields:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            part = text[max(0, e.start - 20):e.start + 20] if len(text) > 80 else text
            shown = part.encode("utf-8", "surrogateescape").decode("ascii", "backslashreplace")
            if what == "the job script":
                line = text.count("\n", 0, e.start) + 1
                raise GridshimError(f"Unable to run job: the job script is not valid UTF-8 (line {line}: "
                                    f"{shown}), and Kubernetes stores only text\nExiting.") from None
            raise GridshimError(f"{what} ({shown}) is not valid UTF-8, and Kubernetes stores only text",
                                hint="rename the file or pass the value in UTF-8") from None


def resolve_program(program: str, *, cwd: str, path_env: str, exists: Callable[[str], bool]) -> str | None:
    """jsub's argparse_whence: an existing absolute path; else (unless it starts with '.') the first
    match in $PATH; else $PWD/PROGRAM. None when nothing matches. Symlinks are not resolved."""
    if program.startswith("/"):
        return posixpath.normpath(program) if exists(program) else None
    if not program.startswith(".") and "/" not in program:
        for d in path_env.split(os.pathsep):
            if d and exists(posixpath.join(d, program)):
                return posixpath.join(d, program)
    candidate = posixpath.normpath(posixpath.join(cwd, program))
    return candidate if exists(candidate) else None
