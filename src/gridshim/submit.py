"""The one submission pipeline: argv → options → program or script → translate → JobRequest (pure).

`jsub`, `jstart`, `qcronsub`, `qsub`, crontab lines and `gridshim migrate-check` all call `plan()`.
Everything the pipeline needs from the machine comes through one host port, `translate.SubmitHost`
(files, environment, cwd, clock, token). The two dialects differ only in the `DIALECTS` table below:
which parser reads the flags, which defaults files are read and in what precedence, how `#$` lines
are read, the default job name, whether the program must be executable, and how errors are worded.

Layer: pure (no os, no network). Imports gridflags, sgeflags, translate, model, config, errors.
"""

from __future__ import annotations

import posixpath

from gridshim import gridflags, sgeflags
from gridshim.config import Settings
from gridshim.errors import GridshimError, UsageError
from gridshim.gridflags import GridOptions
from gridshim.model import JobRequest, Preset
from gridshim.record import record, replace
from gridshim.translate import SubmitHost, default_job_name, resolve_program, translate

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up, docs/performance.md)
if TYPE_CHECKING:
    from collections.abc import Callable

# jsub ran qsub with this PATH when the caller had none (cron's default)
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


@record(frozen=True, kw_only=True)
class Dialect:
    """How one family of commands reads a submission. Keep this the only place they differ."""

    name: str  # "jsub" | "qsub"
    defaults_files: Callable[[SubmitHost, Settings], list[str]]  # in the order they are read
    precedence: str  # "defaults<cmdline<script" (jsub: #$ lines win) | "defaults<script<cmdline" (SGE)
    directives: str  # "head": the comment block at the top (jsub) | "whole": every line (SGE)
    default_name: str  # "stem": basename up to the first dot (jsub) | "basename": with extension (SGE)
    program: str  # "resolved": jsub's PATH search, must exist and be executable | "script": read and copied
    errors: str  # "argparse": `PROG: error: …`, exit 2 | "sge": SGE's texts and raw status numbers


def _jsubrc(host: SubmitHost, _settings: Settings) -> list[str]:
    return [host.env.get("JOBUTILS_JSUBRC") or posixpath.join(host.home, ".jsubrc")]


def _sge_request(host: SubmitHost, settings: Settings) -> list[str]:
    files = [settings.sge_request] if settings.sge_request else []
    return files + [posixpath.join(host.home, ".sge_request"), posixpath.join(host.cwd, ".sge_request")]


JSUB = Dialect(name="jsub", defaults_files=_jsubrc, precedence="defaults<cmdline<script", directives="head",
               default_name="stem", program="resolved", errors="argparse")
QSUB = Dialect(name="qsub", defaults_files=_sge_request, precedence="defaults<script<cmdline", directives="whole",
               default_name="basename", program="script", errors="sge")
DIALECTS = {"jsub": JSUB, "jstart": JSUB, "qcronsub": JSUB, "qsub": QSUB}
PRESETS = {"jsub": Preset.JSUB, "jstart": Preset.JSTART, "qcronsub": Preset.QCRONSUB, "qsub": Preset.JSUB}


@record(frozen=True, kw_only=True)
class Plan:
    """A decided submission, with what the command prints around it."""

    request: JobRequest
    opts: GridOptions
    warnings: tuple[str, ...] = ()  # stderr (gridshim's notes: ignored resources, …)
    notices: tuple[str, ...] = ()  # stdout before the submit line (SGE's "option has already been set")
    program: str | None = None  # the resolved program (jsub) or script path (qsub); None: stdin / not found
    found: bool = True  # jsub: the program exists on this host
    late_error: GridshimError | None = None  # found after translate (jsub writes it to the job's .err)
    dialect: Dialect = JSUB
    watchdog: bool = False  # crontab: a continuous job, started once instead of scheduled
    sync_ignored: bool = False  # crontab: -sync y asked for, meaningless for a scheduled job

    @property
    def terse(self) -> bool:
        return bool(self.opts.sge.get("terse"))

    @property
    def verify_only(self) -> bool:
        return self.opts.sge.get("verify") in ("p", "v")


class HelpRequested(Exception):
    """-h / -help: the caller prints its help text."""


@record(frozen=True, kw_only=True)
class Cron:
    """What a crontab line adds: the schedule, and a shell test cron ran before the command."""

    schedule: str | None = None
    schedule_text: str | None = None
    timezone: str | None = None
    shell: Callable[[str, tuple[str, ...]], str] | None = None  # (program, args) → the command line to run


def plan(command: str, argv: list[str], *, settings: Settings, host: SubmitHost,
         stdin_text: str | Callable[[], str | None] | None = None, cron: Cron | None = None,
         command_line: str = "") -> Plan:
    """Decide one submission of COMMAND (jsub, jstart, qcronsub, qsub) with ARGV on HOST.

    STDIN_TEXT is qsub's script when none is named: the text, or a function that reads it (called
    only when qsub really reads stdin). Raises UsageError (jsub's argparse errors), sgeflags.QsubError
    / Rejected (qsub's), other GridshimErrors, or HelpRequested.
    """
    dialect = DIALECTS[command]
    preset = PRESETS[command]
    cron = cron or Cron()
    if dialect is QSUB:
        return _plan_qsub(argv, settings=settings, host=host, stdin_text=stdin_text, cron=cron,
                          command_line=command_line or " ".join(["qsub", *argv]))
    return _plan_jsub(command, argv, preset=preset, settings=settings, host=host, cron=cron,
                      command_line=command_line or " ".join([command, *argv]))


def _plan_jsub(command: str, argv: list[str], *, preset: Preset, settings: Settings, host: SubmitHost, cron: Cron,
               command_line: str) -> Plan:
    cli = gridflags.split_argv(argv)
    if any(flag == "-h" for flag, _ in cli.events):
        raise HelpRequested()
    if cli.program is None:
        raise UsageError("the following arguments are required: program, args...")
    path_env = host.env.get("PATH", DEFAULT_PATH)
    resolved = resolve_program(cli.program, cwd=host.cwd, path_env=path_env, exists=host.exists)
    if resolved is None and " " in cli.program:
        # jsub's argparse_whence refused it; a word with blanks can never be a command the job finds
        raise UsageError(f"argument program: Program '{cli.program}' not found.")
    rc_path = JSUB.defaults_files(host, settings)[0]
    rc_text = host.read_text(rc_path)
    script = host.read_text(resolved) if resolved and not host.isdir(resolved) else None
    opts = gridflags.parse(argv, default_mem=settings.default_mem,
                           jsubrc=(rc_text, rc_path) if rc_text is not None else None,
                           script=(script, resolved or cli.program) if script is not None else None)
    if opts.unrecognized:
        # argparse took the unknown option's value for the program (jsub -t 1-5 env)
        if resolved is None:
            raise UsageError(f"argument program: Program '{cli.program}' not found.")
        raise UsageError(f"unrecognized arguments: {' '.join(opts.unrecognized)}")
    program = resolved or cli.program
    if resolved is None and ("/" in program or program.startswith(".")):
        program = posixpath.normpath(posixpath.join(host.cwd, program))  # the job runs it from there
    shell = cron.shell(program, opts.args) if cron.shell else None
    # a continuous job in a crontab is a watchdog: started once, kept running, not scheduled
    watchdog = bool(cron.schedule) and (opts.continuous or preset is Preset.JSTART)
    schedule = None if watchdog else cron.schedule
    if cron.schedule:
        opts = replace(opts, sync=False, dry_run=False, debug=False)
    result = translate(opts, preset=preset, settings=settings, host=host, program=program,
                       schedule=schedule, schedule_text=cron.schedule_text if schedule else None,
                       timezone=cron.timezone if schedule else None, shell=shell, command_line=command_line)
    late = None
    if resolved and not host.isdir(resolved) and not host.executable(resolved):
        late = GridshimError(f"{resolved}: not an executable file")
    return Plan(request=result.request, opts=opts, warnings=result.warnings, program=resolved,
                found=resolved is not None, late_error=late, dialect=JSUB, watchdog=watchdog,
                sync_ignored=bool(cron.schedule) and any(f == "-sync" and v in ("y", "yes") for f, v in cli.events))


def _plan_qsub(argv: list[str], *, settings: Settings, host: SubmitHost,
               stdin_text: str | Callable[[], str | None] | None, cron: Cron, command_line: str) -> Plan:
    def read(path: str) -> str | None:
        return host.read_text(_abs(path, host.cwd))

    cmd = sgeflags.split_cmdline(argv, read_file=read)
    if cmd.help:
        raise HelpRequested()
    defaults: list[sgeflags.Event] = []
    seen: set[str] = set()
    for path in QSUB.defaults_files(host, settings):
        norm = posixpath.normpath(path)
        if norm in seen:
            continue  # the same file as one already read (e.g. cwd = home)
        seen.add(norm)
        text = host.read_text(norm)
        if text is not None:
            defaults += sgeflags.defaults_events(text, read_file=read)
    binary = sgeflags.is_binary(defaults + cmd.events)
    script_text: str | None = None
    script_path: str | None = None
    if binary:
        if cmd.script is None:
            raise sgeflags.QsubError("command required for a binary job", sgeflags.ESEMANTIC)
        directives: list[sgeflags.Event] = []
    else:
        if cmd.script is None:
            if callable(stdin_text):
                stdin_text = stdin_text()
            if not stdin_text:
                raise sgeflags.QsubError("no input read from stdin", sgeflags.EUNKNOWN,
                                         prefix="Unable to read script file because of error: ")
            script_text = stdin_text
        else:
            script_path = _abs(cmd.script, host.cwd)
            script_text = host.read_text(script_path)
            if script_text is None:
                if host.isdir(script_path):
                    why = f"error opening {cmd.script}: Is a directory"
                elif not host.exists(script_path):
                    why = f"error opening {cmd.script}: No such file or directory"
                elif host.executable(script_path) or host.readable(script_path):
                    why = f"{cmd.script} is a binary file, not a job script (submit a binary with qsub -b y)"
                else:
                    why = f"error opening {cmd.script}: Permission denied"
                raise sgeflags.QsubError(why, sgeflags.EDISK, prefix="Unable to read script file because of error: ")
        directives = sgeflags.script_events(script_text, prefix=sgeflags.directive_prefix(cmd.events),
                                            read_file=read)
    events = defaults + directives + cmd.events
    notices = sgeflags.repeat_warnings(events)
    opts = sgeflags.fold(events, environ=host.env, default_mem=settings.default_mem)
    if opts.binary and not binary:
        # `#$ -b y` in the script: SGE 8.1.9 makes the job binary after all (qsub-behaviour §1.3)
        script_text = None
    program = cmd.script or "STDIN"
    opts = replace(opts, args=cmd.args, sge={**opts.sge, "script_file": script_path or (
        cmd.script if opts.binary else "STDIN")})
    sync_ignored = bool(cron.schedule) and opts.sync
    if cron.schedule:
        opts = replace(opts, sync=False, dry_run=False, debug=False)
    name = posixpath.basename(program.rstrip("/")) if cmd.script else "STDIN"
    warnings: list[str] = []
    if cron.schedule and script_path and script_text is not None:
        # cron ran qsub at each run, which read the script then: the CronJob runs it from its path
        script_text = None
        warnings.append(f"the #$ lines of {script_path} were read now; after changing them, install the "
                        "crontab again (the rest of the script is read at each run)")
    result = translate(opts, preset=Preset.JSUB, settings=settings, host=host, program=program,
                       schedule=cron.schedule, schedule_text=cron.schedule_text, timezone=cron.timezone,
                       command_line=command_line, dialect="qsub", script_text=script_text, default_name=name)
    return Plan(request=result.request, opts=opts, warnings=result.warnings + tuple(warnings),
                notices=tuple(notices), program=script_path, dialect=QSUB, sync_ignored=sync_ignored)


def _abs(path: str, cwd: str) -> str:
    return posixpath.normpath(path if path.startswith("/") else posixpath.join(cwd, path))


def guess_name(command: str, argv: list[str], *, host: SubmitHost) -> str | None:
    """The job name a submission would get, for reports about a line that is refused."""
    try:
        if DIALECTS.get(command) is QSUB:
            cmd = sgeflags.split_cmdline(argv)
            named = [e.value for e in cmd.events if e.flag == "-N"]
            return named[-1] if named else (posixpath.basename(cmd.script) if cmd.script else "STDIN")
        cli = gridflags.split_argv(argv)
    except GridshimError:
        return None
    named = [v for f, v in cli.events if f == "-N" and v]
    if named:
        return named[-1]
    if cli.program is None:
        return None
    resolved = resolve_program(cli.program, cwd=host.cwd, path_env=host.env.get("PATH", DEFAULT_PATH),
                               exists=host.exists)
    return default_job_name(resolved or cli.program)


__all__ = ["Cron", "DIALECTS", "Dialect", "HelpRequested", "JSUB", "Plan", "QSUB", "guess_name", "plan"]
