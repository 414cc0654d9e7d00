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
from dataclasses import dataclass, field
from typing import Callable

from gridshim.config import Settings
from gridshim.errors import GridshimError, UsageError
from gridshim.gridflags import GridOptions
from gridshim.model import JobKind, JobRequest, Preset
from gridshim.render.labels import job_id_for

# SGE job names may not contain these, nor start with a digit (sge_types(5) "job_name").
_BAD_NAME = re.compile(r"[/:@\\*?\s]")
# -l resources the grid knew that mean nothing here; accepted with a warning rather than refused.
_IGNORED_RESOURCES = ("s_vmem", "h_cpu", "s_cpu", "h_fsize", "s_fsize", "h_data", "s_data", "h_stack",
                      "s_stack", "h_core", "s_core", "h_rss", "s_rss", "arch", "hostname", "user_slot",
                      "sql", "tmpfs")


@dataclass(frozen=True, kw_only=True)
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


@dataclass(frozen=True, kw_only=True)
class Translation:
    request: JobRequest
    warnings: tuple[str, ...] = ()


def default_job_name(program: str) -> str:
    """jsub: basename(program) up to the first dot ('run.sh' → 'run', 'other.v2.sh' → 'other')."""
    base = posixpath.basename(program.rstrip("/"))
    return base.split(".")[0] or base


def check_job_name(name: str) -> None:
    if not name:
        raise UsageError("argument -N: the job name must not be empty")
    if _BAD_NAME.search(name) or name[0].isdigit():
        raise UsageError(f"argument -N: invalid job name '{name}': it must not start with a digit "
                         "or contain / : @ \\ * ? or whitespace")


def expand_path(path: str, *, host: SubmitHost, name: str, job_id: int) -> str:
    """SGE expands these in -o/-e/-i paths; gridshim does it at submit time."""
    values = {"HOME": host.home, "USER": host.env.get("USER", ""), "JOB_NAME": name,
              "JOB_ID": str(job_id), "TASK_ID": "undefined", "HOSTNAME": host.env.get("HOSTNAME", "")}
    return re.sub(r"\$(\{)?(HOME|USER|JOB_NAME|JOB_ID|TASK_ID|HOSTNAME)(?(1)\})",
                  lambda m: values[m.group(2)], path)


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
        year, value = 2000 + int(value[:2]), value[2:]
    month, day, hour, minute = (int(value[i:i + 2]) for i in range(0, 8, 2))
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
) -> Translation:
    """Decide everything about one submission. PROGRAM is already resolved by the caller."""
    warnings: list[str] = []
    if opts.unrecognized:
        raise UsageError(f"unrecognized arguments: {' '.join(opts.unrecognized)}")
    continuous = opts.continuous or preset is Preset.JSTART
    once = opts.once or continuous or preset in (Preset.JSTART, Preset.QCRONSUB)
    kind = JobKind.SCHEDULED if schedule else (JobKind.CONTINUOUS if continuous else JobKind.ONE_OFF)
    name = opts.name if opts.name is not None else default_job_name(program)
    check_job_name(name)

    mem = opts.mem if opts.mem is not None else settings.default_mem
    if settings.max_mem is not None and mem > settings.max_mem:
        raise GridshimError(f"Unable to run job: -mem {mem // (1024 * 1024)}M is more than this site's "
                            f"maximum of {settings.max_mem // (1024 * 1024)}M")

    job_id = job_id_for(host.token) if host.token else 0
    workdir = host.home
    if opts.cwd:
        workdir = host.cwd
    if opts.wd:
        workdir = _resolve(expand_path(opts.wd, host=host, name=name, job_id=job_id), host.cwd)
    # SGE resolves relative -o/-e/-i against $HOME unless the job runs in another directory.
    rel_base = workdir

    def out_path(given: str | None, suffix: str, letter: str) -> str:
        if given is None:
            return posixpath.join(host.home, f"{name}.{suffix}")
        path = _resolve(expand_path(given, host=host, name=name, job_id=job_id), rel_base)
        if host.isdir(path):
            return posixpath.join(path, f"{name}.{letter}{job_id}")
        return path

    stdout = out_path(opts.out, "out", "o")
    stderr = stdout if opts.join else out_path(opts.err, "err", "e")
    stdin = _resolve(expand_path(opts.stdin, host=host, name=name, job_id=job_id), rel_base) if opts.stdin else None

    user = f"{settings.user_prefix}{host.tool}"
    env: dict[str, str] = {"HOME": host.home, "USER": user, "LOGNAME": user, "TOOL_DATA_DIR": host.home,
                           "JOB_NAME": name, "QUEUE": opts.queue or ("continuous" if continuous else "task")}
    if job_id and kind is not JobKind.SCHEDULED:
        env["JOB_ID"] = str(job_id)
    for var, val in opts.env:
        env[var] = host.env.get(var, "") if val is None else val

    for res, val in opts.resources:
        if res in _IGNORED_RESOURCES:
            warnings.append(f"-l {res}={val} has no meaning on Kubernetes and was ignored")
        else:
            warnings.append(f"-l {res}={val} is not a resource gridshim knows; it was ignored")
    if opts.mail_events and opts.mail_events != "n":
        warnings.append("-m: mail on job events is not sent by gridshim; the option was recorded only")

    umask = opts.umask if opts.umask is not None else (0o007 if (host.uid or 0) > 50000 else 0o077)
    not_before = parse_start_time(opts.start_at, host.now) if opts.start_at else None
    queue = opts.queue or ("continuous" if continuous else "task")
    options = {
        "mem": mem, "once": once, "continuous": continuous, "stdout": stdout, "stderr": stderr,
        "join": opts.join, "queue": queue, "release": opts.release, "cwd": opts.cwd, "workdir": workdir,
        "umask": f"{umask:03o}", "wall_seconds": opts.wall_seconds, "mail_to": list(opts.mail_to),
        "mail_events": opts.mail_events, "resources": [list(p) for p in opts.resources],
        "ignored": list(opts.ignored), "env": [list(p) for p in opts.env], "preset": preset.value,
        "mail": ",".join(opts.mail_to) or f"{host.env.get('LOGNAME') or host.env.get('USER') or user}@{settings.mail_domain}",
    }
    if opts.mem_request is not None:
        options["mem_request"] = opts.mem_request
    argv: tuple[str, ...] = () if shell is not None else (program, *opts.args)
    req = JobRequest(
        name=name, kind=kind, tool=host.tool, argv=argv, shell=shell,
        command_line=command_line or shlex.join(argv), mem_bytes=mem, once=once,
        stdout=stdout, stderr=stderr, merge=opts.join, stdin=stdin, workdir=workdir, home=host.home,
        env=tuple(env.items()), umask=umask, image=settings.image_for(opts.release), release=opts.release,
        queue=queue, wall_seconds=opts.wall_seconds, schedule=schedule, schedule_text=schedule_text,
        timezone=timezone, uid=host.uid, token=host.token, options=options, not_before=not_before,
        job_id=job_id,
    )
    _check_text(req)
    return Translation(request=req, warnings=tuple(warnings))


def _check_text(req: JobRequest) -> None:
    """Kubernetes objects are JSON text: bytes that are not UTF-8 (surrogate-escaped by Python's
    argv decoding) would arrive as U+FFFD. Refuse them rather than change them silently."""
    fields = [("the job name", req.name), ("-o", req.stdout), ("-e", req.stderr), ("-i", req.stdin or ""),
              ("the working directory", req.workdir), ("the command", req.shell or "")]
    fields += [(f"argument {i}" if i else "the program", a) for i, a in enumerate(req.argv)]
    fields += [(f"-v {k}", f"{k}={v}") for k, v in req.env]
    for what, text in fields:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            shown = text.encode("utf-8", "surrogateescape").decode("ascii", "backslashreplace")
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
