"""qsub: Grid Engine's own submission command, on the one pipeline (submit.py) that jsub uses.

Output and exit codes as SGE 8.1.9's qsub (../shared/docs/qsub-behaviour.md §2): the submit line
(or the bare id with -terse) on stdout, client errors as `qsub: <text>` with SGE's raw status,
refusals as `Unable to run job: <text>` + `Exiting.` (exit 1; 25 for the job limit), -sync y's
closing line and the job's own exit code.
"""

from __future__ import annotations

import os

from gridshim import config
from gridshim.cli import finish
from gridshim.cli._common import Env, argv, local_host, make_room, printable, read_text_file, run
from gridshim.errors import ExitCode, GridshimError, QuotaExceededError

USAGE = """\
usage: qsub [options] [script [script_args] | -- [script_args]]
       qsub -b y [options] command [command_args]

   [-a date_time]                 request a start time
   [-A account_string]            account string in accounting record
   [-b y[es]|n[o]]                handle command as binary
   [-C directive_prefix]          define command prefix for job script
   [-clear]                       skip previous definitions for job
   [-cwd]                         use current working directory
   [-e path_list]                 specify standard error stream path(s)
   [-h]                           place user hold on job
   [-help]                        print this help
   [-hold_jid job_identifier_list]  define jobnet interdependencies
   [-hold_jid_ad job_identifier_list]  define jobnet array interdependencies
   [-i file_list]                 specify standard input stream file(s)
   [-j y[es]|n[o]]                merge stdout and stderr stream of job
   [-js job_share]                share tree or functional job share
   [-l resource_list]             request the given resources
   [-m mail_options]              define mail notification events
   [-M mail_list]                 notify these e-mail addresses
   [-notify]                      notify job before killing/suspending it
   [-now y[es]|n[o]]              start job immediately or not at all
   [-N name]                      specify job name
   [-o path_list]                 specify standard output stream path(s)
   [-p priority]                  define job's relative priority
   [-P project_name]              set job's project
   [-pe pe-name slot_range]       request slot range for parallel jobs
   [-q wc_queue_list]             bind job to queue(s)
   [-r y[es]|n[o]]                define job as (not) restartable
   [-R y[es]|n[o]]                reservation desired
   [-S path_list]                 command interpreter to be used
   [-shell y[es]|n[o]]            start command with or without wrapping <loginshell> -c
   [-sync y[es]|n[o]]             wait for job to end and return exit code
   [-t task_id_range]             create a job-array with these tasks
   [-tc max_running_tasks]        throttle the number of concurrent tasks (job-array only)
   [-terse]                       tersed output, print only the job-id
   [-v variable_list]             export these environment variables
   [-V]                           export all environment variables
   [-w e|w|n|p|v]                 verify mode (error|warning|none|poke|just verify) for jobs
   [-wd working_directory]
   [-@ file]                      read commandline input from file
   [--dry-run]                    gridshim: print the Kubernetes manifests, contact nothing
"""


def qsub(env: Env, argv: list[str]) -> int:
    from gridshim.cli._common import unreached  # noqa: PLC0415
    from gridshim.cli.jsub import connect, stale_uid, uid_cached  # noqa: PLC0415
    from gridshim.sgeflags import QsubError  # noqa: PLC0415
    from gridshim.submit import HelpRequested, plan  # noqa: PLC0415

    settings = config.load(env.environ)
    try:
        from gridshim.sgeflags import split_cmdline  # noqa: PLC0415

        # client-side errors need no cluster; --dry-run counts only before the script (after it, it is
        # the job's argument)
        at_file = lambda path: read_text_file(os.path.join(env.cwd, path))  # noqa: E731  (-@ FILE)
        cmd = split_cmdline(argv, read_file=at_file)
        if cmd.help:
            raise HelpRequested()
        dry_run = any(e.flag == "--dry-run" for e in cmd.events)
        try:
            cluster, tool, uid = connect(env, settings, dry_run=dry_run)
        except GridshimError as e:
            env.stderr.write(f"Unable to initialize environment because of error: {printable(e.message)}\nExiting.\n")
            return int(ExitCode.ERROR)
        token = os.urandom(8).hex()
        stdin_once: list[str | None] = []  # a retry (stale_uid) submits what was read the first time

        def stdin_text() -> str | None:
            if not stdin_once:
                stdin_once.append(_read_stdin(env))
            return stdin_once[0]

        p = plan("qsub", argv, settings=settings, host=local_host(env, tool=tool, uid=uid, token=token),
                 stdin_text=stdin_text)
    except HelpRequested:
        env.stdout.write(USAGE)
        return 0
    except QsubError as e:
        env.stderr.write(printable(e.shown(), keep_newlines=e.multiline) + "\n")
        return e.status
    except GridshimError as e:
        return _refused(env, e)

    req, opts = p.request, p.opts
    for line in p.notices:
        env.stdout.write(line + "\n")
    for w in p.warnings:
        env.stderr.write(f"qsub: warning: {printable(w)}\n")
    try:
        from gridshim.render import render  # noqa: PLC0415

        manifests = render(req, settings)
        from gridshim import depends  # noqa: PLC0415  (-h, -hold_jid: docs/arrays-and-holds.md)

        live = None if opts.dry_run or p.verify_only else cluster
        manifests[0] = depends.apply(live, req, manifests[0])
        if opts.dry_run or cluster is None:  # --dry-run on the command line contacts nothing, even after -clear
            from gridshim.render import to_yaml  # noqa: PLC0415

            env.stdout.write(to_yaml(manifests))
            return 0
        if p.verify_only:
            env.stdout.write("verification: found suitable queue(s)\n")
            return 0
        from gridshim import ops  # noqa: PLC0415

        try:
            created = ops.submit(cluster, manifests[0], req, make_room=make_room(env, cluster, settings))
        except GridshimError as e:
            fresh = stale_uid(env, settings, cluster, tool, uid, e)
            if fresh is None:
                raise
            # the same submission (same token and job id, stdin as first read) with the Namespace's uid
            p = plan("qsub", argv, settings=settings, host=local_host(env, tool=tool, uid=fresh, token=token),
                     stdin_text=stdin_text)
            req, opts = p.request, p.opts
            manifests = render(req, settings)
            manifests[0] = depends.apply(cluster, req, manifests[0])
            created = ops.submit(cluster, manifests[0], req, make_room=make_room(env, cluster, settings))
        for w in depends.submitted(cluster, created, backstop=depends.backstop_manifest(
                settings, tool=req.tool, uid=req.uid, home=req.home), home=req.home):
            env.stderr.write(f"qsub: warning: {printable(w)}\n")
    except GridshimError as e:
        if unreached(e) and uid_cached(env, settings, cluster, uid):  # where connect() reported it before
            env.stderr.write(f"Unable to initialize environment because of error: {printable(e.message)}\nExiting.\n")
            return int(ExitCode.ERROR)
        return _refused(env, e)
    env.stdout.write(submit_line(req.job_id, req.name, req.tasks, terse=p.terse) + "\n")
    env.stdout.flush()
    if not opts.sync:
        return 0
    return _sync(env, cluster, req, manifests[0], terse=p.terse)


def submit_line(job_id: int, name: str, tasks: tuple[int, int, int] | None, *, terse: bool) -> str:
    """SGE's submit message (qsub-behaviour §2.1); an array's range is first-last:step as given to -t."""
    if tasks is None:
        return str(job_id) if terse else f'Your job {job_id} ("{name}") has been submitted'
    first, last, step = tasks
    if terse:
        return f"{job_id}.{first}-{last}:{step}"
    return f'Your job-array {job_id}.{first}-{last}:{step} ("{name}") has been submitted'


def _read_stdin(env: Env) -> str | None:
    stream = env.stdin
    if stream is None:
        return None
    try:
        data = stream.buffer.read() if hasattr(stream, "buffer") else stream.read().encode("utf-8", "surrogateescape")
    except (OSError, ValueError):
        return None
    return data.decode("utf-8", "surrogateescape") if isinstance(data, bytes) else data


def _refused(env: Env, e: GridshimError) -> int:
    """What the qmaster (here: the API server or gridshim's checks) refused: SGE's two-line form."""
    text = printable(str(e), keep_newlines=True)
    if not text.startswith("Unable to run job"):
        text = f"Unable to run job: {text}\nExiting."
    env.stderr.write(text + "\n")
    if env.debug and e.detail:
        env.stderr.write(f"qsub: detail: {e.detail}\n")
    return int(ExitCode.TRY_LATER) if isinstance(e, QuotaExceededError) else int(e.exit_code)


def _sync(env: Env, cluster: object, req: object, manifest: dict, *, terse: bool) -> int:
    from gridshim import ops  # noqa: PLC0415
    from gridshim.cli.jsub import wait_for_job  # noqa: PLC0415

    def interrupted() -> None:
        env.stderr.write("Interrupted!\nPlease wait while qsub shuts down.\n")

    def on_term(_sig: int, _frame: object) -> None:
        raise KeyboardInterrupt  # SGE: SIGTERM during -sync y is handled like Ctrl-C

    import signal  # noqa: PLC0415

    try:
        signal.signal(signal.SIGTERM, on_term)
    except ValueError:
        pass  # not the main thread (tests)
    first_code: list[int] = []

    def line(job_id: int | str, outcome: object) -> int:
        out, err, code = ops.sync_lines(job_id, outcome)  # type: ignore[arg-type]
        if out and not terse:
            env.stdout.write(out + "\n")
        if err:
            env.stderr.write(err + "\n")
        return code

    def on_task(task: int, outcome: object) -> None:
        """An array task finished: its line now; the exit code is the first non-zero one, in that order."""
        code = line(f"{req.job_id}.{task}", outcome)  # type: ignore[attr-defined]
        if code and not first_code:
            first_code.append(code)
        env.stdout.flush()

    array = req.tasks is not None  # type: ignore[attr-defined]
    try:
        outcome = wait_for_job(env, cluster, req, manifest, interrupted,  # type: ignore[arg-type]
                               on_task=on_task if array else None)
    except GridshimError as e:
        env.stderr.write(f"No information available on job {req.job_id}'s exit status.\n")  # type: ignore[attr-defined]
        if env.debug:
            env.stderr.write(f"qsub: detail: {e}\n")
        return int(ExitCode.ERROR)
    if outcome is None:
        return int(ExitCode.INTERRUPTED)
    if array:
        return first_code[0] if first_code else 0
    return line(req.job_id, outcome)  # type: ignore[attr-defined]


def main() -> None:
    finish(run("qsub", lambda env: qsub(env, argv())))
