"""jsub, jstart and qcronsub: submit a grid job as a Kubernetes Job (edge: submit.plan → render → ops.submit).

jsub's own errors after option parsing go to the job's .err file (unless -stderr), prefixed with
the time as jsub printed them; on a terminal they are shown too.
"""

from __future__ import annotations

import os

from gridshim import config, gridflags
from gridshim.cli import finish
from gridshim.cli._common import (
    Env,
    LiveStatus,
    argv,
    cached_namespace_uid,
    ctime,
    load_cluster,
    local_host,
    make_room,
    offline_namespace,
    printable,
    remember_namespace_uid,
    report,
    run,
    tool_uid,
    uid_refused,
    unreached,
)
from gridshim.errors import ExitCode, GridshimError, QuotaExceededError, UsageError
from gridshim.model import Cluster, JobRequest, Preset, tool_of

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up, docs/performance.md)
if TYPE_CHECKING:
    from collections.abc import Callable

    from gridshim.status import Outcome

HELP_TEXT = """\
{usage}

Submit a program to the grid (here: as a Kubernetes Job in your tool's namespace).

jsub options:
  -h, --help         show this help message and exit
  -continuous        keep the job running: restart it 5 s after a non-zero exit (implies -once)
  -once              refuse to start if a job with the same name is queued or running
  -mem MEM           memory limit, an integer followed by k, m or g (default 512m)
  -quiet             print nothing on success
  -stderr            do not send jsub's own errors to the job's .err file
  -umask UMASK       umask for the job's output files (default 007 for tools)
  -release RELEASE   any value; selects the image through the site config
  -N NAME            job name (default: the program's name up to the first dot)

qsub options:
  -a DATE            do not start before [[CC]YY]MMDDhhmm[.SS]
  -cwd               run in the current directory (default: $HOME)
  -wd DIR            run in DIR
  -i PATH            read stdin from PATH
  -o PATH, -e PATH   append stdout / stderr to PATH (default ~/NAME.out, ~/NAME.err)
  -j y|n             merge stderr into stdout
  -l RES=VAL,...     h_vmem / virtual_free (memory), mem_free (memory request),
                     h_rt (wall-clock limit, seconds or hh:mm:ss), release
  -v VAR[=VAL],...   set environment variables in the job
  -sync y|n          wait for the job and exit with its exit code
  -q QUEUE           queue name shown by qstat (default task, or continuous)
  -m bea, -M ADDR    mail at begin / end / abort to ADDR, where the site configures mail
  -b, -hard, -soft, -now, -p   accepted for compatibility; no effect

gridshim:
  --dry-run          print the Kubernetes manifests as YAML and contact nothing

Everything after the program is passed to it unchanged.
"""




def submit_main(env: Env, argv: list[str], preset: Preset, cluster: Cluster | None = None) -> int:
    """CLUSTER: an already connected cluster (unit tests pass a fake); by default the tool's kubeconfig."""
    prog = preset.value
    settings = config.load(env.environ)
    from gridshim.submit import HelpRequested, plan  # noqa: PLC0415

    try:
        cli = gridflags.split_argv(argv)  # before the kubeconfig: usage errors need no cluster
        if any(flag == "-h" for flag, _ in cli.events):
            raise HelpRequested()
        if cli.program is None:
            raise UsageError("the following arguments are required: program, args...")
        dry_run = any(flag == "--dry-run" for flag, _ in cli.events)
        cluster, tool, uid = connect(env, settings, dry_run=dry_run, cluster=cluster)
        token = os.urandom(8).hex()  # = secrets.token_hex(8)
        p = plan(prog, argv, settings=settings, host=local_host(env, tool=tool, uid=uid, token=token))
    except HelpRequested:
        env.stdout.write(HELP_TEXT.format(usage=gridflags.USAGE.format(prog=prog)))
        return 0
    except UsageError as e:
        env.stderr.write(gridflags.USAGE.format(prog=prog) + "\n")
        return report(env, prog, e)
    except GridshimError as e:
        return _die(env, prog, e, err_path=None, keep_stderr=True)

    req, opts = p.request, p.opts
    err_path = req.stderr
    keep_stderr = opts.keep_stderr
    try:
        if p.late_error:
            raise p.late_error
        from gridshim.render import render  # noqa: PLC0415

        manifests = render(req, settings)
        if opts.dry_run:
            from gridshim.render import to_yaml  # noqa: PLC0415

            env.stdout.write(to_yaml(manifests))
            return 0
        if not opts.quiet:
            if not p.found:
                env.stderr.write(f"{prog}: warning: program '{cli.program}' was not found on this host; "
                                 "passing it unchanged (the image may have it)\n")
            for w in p.warnings:
                env.stderr.write(f"{prog}: warning: {w}\n")
        from gridshim import ops  # noqa: PLC0415

        try:
            ops.submit(cluster, manifests[0], req,  # type: ignore[arg-type]  # not None: only --dry-run has none
                       make_room=make_room(env, cluster, settings))
        except GridshimError as e:
            fresh = stale_uid(env, settings, cluster, tool, uid, e)
            if fresh is None:
                raise
            # the same submission (same token, so the same job id) as the Namespace's uid now says
            p = plan(prog, argv, settings=settings, host=local_host(env, tool=tool, uid=fresh, token=token))
            if p.late_error:
                raise p.late_error from None
            req, opts = p.request, p.opts
            manifests = render(req, settings)
            ops.submit(cluster, manifests[0], req,  # type: ignore[arg-type]  # not None: only --dry-run has none
                       make_room=make_room(env, cluster, settings))
    except GridshimError as e:
        if unreached(e) and uid_cached(env, settings, cluster, uid):
            return _die(env, prog, e, err_path=None, keep_stderr=True)  # where connect() reported it before
        return _die(env, prog, e, err_path=err_path, keep_stderr=keep_stderr)
    if not opts.quiet:
        env.stdout.write(f'Your job {req.job_id} ("{req.name}") has been submitted\n')
        env.stdout.flush()
    if not opts.sync:
        return 0
    return _sync(env, prog, cluster, req, manifests[0], err_path=err_path, keep_stderr=keep_stderr,
                 quiet=opts.quiet)


def connect(env: Env, settings: config.Settings, *, dry_run: bool,
            cluster: Cluster | None = None) -> tuple[Cluster | None, str, int | None]:
    """The cluster (None for --dry-run, which contacts nothing), the tool and the uid its pods run as.

    With the site config's `uid: namespace` the uid is the cluster's answer: the one cached for the
    namespace (see stale_uid), else one GET of the tool's Namespace before
    the POST, on the same connection; --dry-run then shows the caller's own uid. CLUSTER, when given,
    is used instead of the kubeconfig's (unit tests)."""
    if dry_run:
        cluster, namespace = None, offline_namespace(env)
    else:
        cluster = cluster or load_cluster(env)
        namespace = cluster.namespace
    tool = tool_of(namespace)
    home = env.home
    uid = tool_uid(settings.uid, tool=tool, home=home, cluster=cluster, offline=dry_run,
                   environ=None if dry_run else env.environ) \
        if not dry_run or settings.uid != "home-owner" else _safe_uid(settings.uid, tool, home)
    return cluster, tool, uid


def uid_cached(env: Env, settings: config.Settings, cluster: object, uid: int | None) -> bool:
    """Whether connect() took UID from the cache (so the POST was the first request)."""
    return settings.uid == "namespace" and cluster is not None and cached_namespace_uid(cluster, env.environ) == uid


def stale_uid(env: Env, settings: config.Settings, cluster: object, tool: str, uid: int | None,
              err: GridshimError) -> int | None:
    """After ERR from the POST: the Namespace's uid read afresh, when ERR is the admission refusal a
    stale cached uid causes, the uid sent is the one cached, and the Namespace now names another (the
    caller then submits once more with it); else None, and ERR stands. The cluster enforces the uid,
    so a wrong cached value is refused, never run."""
    if settings.uid != "namespace" or not uid_refused(err) or cached_namespace_uid(cluster, env.environ) != uid:
        return None
    remember_namespace_uid(cluster, env.environ, None)
    fresh = tool_uid(settings.uid, tool=tool, home=env.home, cluster=cluster, environ=env.environ)
    return fresh if fresh != uid else None


def _safe_uid(policy: str, tool: str, home: str) -> int | None:
    try:
        return tool_uid(policy, tool=tool, home=home)
    except GridshimError:
        return None


def wait_for_job(env: Env, cluster: object, req: JobRequest, manifest: dict,
                 interrupted: Callable[[], object], on_task: Callable[[int, object], None] | None = None) -> object | None:
    """Watch the job until it ends (a live line on a terminal); None after Ctrl-C, which deletes it.

    The job exists (it was just created), so an unreachable or failing API never ends the wait:
    finding the job and watching it go on with capped back-off (see ops.wait), and on a terminal
    the live line says what is wrong and when the next try is."""
    import time  # noqa: PLC0415

    from gridshim import ops  # noqa: PLC0415
    from gridshim.errors import ClusterError, ForbiddenError, JobNotFoundError  # noqa: PLC0415

    name = manifest["metadata"].get("name")
    job = None
    t0 = env.clock()
    label = f'job {req.job_id} ("{req.name}")'

    def show(obj: dict) -> None:
        st = obj.get("status") or {}
        state = "r" if st.get("active") else ("done" if st.get("succeeded") or st.get("failed") else "qw")
        live.update(f"{label}: {state}, {env.clock() - t0:.0f}s — Ctrl-C deletes the job")

    def trouble(e: GridshimError, delay: float) -> None:
        live.update(f"{label}: {printable(e.message)[:100]} — trying again in {delay:.0f}s; the job runs on "
                    "(Ctrl-C deletes it)")

    def find() -> dict:
        delay = 1.0
        while True:
            try:
                if name:
                    return cluster.get("Job", name)  # type: ignore[attr-defined,no-any-return]
                items, _ = cluster.list("Job", selector=f"gridshim.io/job-id={req.job_id}")  # type: ignore[attr-defined]
                if not items:
                    raise JobNotFoundError(f"job {req.job_id} no longer exists")
                return items[0]  # type: ignore[no-any-return]
            except (ClusterError, ForbiddenError) as e:
                trouble(e, delay)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)

    try:
        with LiveStatus(env, f"{label}: qw — waiting for it to finish (Ctrl-C deletes the job)") as live:
            job = find()
            show(job)
            return ops.wait(cluster, job, on_change=show, on_trouble=trouble, on_task=on_task,  # type: ignore[arg-type]
                            recorded=lambda uid: recorded_outcome(env.environ, uid))
    except KeyboardInterrupt:
        try:
            cluster.delete("Job", (job or {}).get("metadata", {}).get("name") or name,  # type: ignore[attr-defined]
                           propagation="Background")
        except (GridshimError, TypeError):
            pass
        interrupted()
        return None


def recorded_outcome(environ: dict[str, str], job_uid: str) -> Outcome | None:
    """How the Job of uid JOB_UID ended according to the tool's accounting file (its wrapper appends a
    record when the program ends: docs/qacct.md), for a -sync wait whose Job and pods are gone (ops.wait's
    RECORDED): the last attempt's exit status, a signal for 129-192. None without a file, a record of that
    Job, or accounting (site `accounting_file: null`)."""
    from gridshim import accounting  # noqa: PLC0415
    from gridshim.status import Outcome, signal_name  # noqa: PLC0415

    try:
        path = accounting.path_for(accounting.site_setting(environ), accounting.home_of(environ))
        if not path or not job_uid:
            return None
        with open(path, "rb") as f:
            text = accounting.read_text(f.read())
    except (OSError, GridshimError):
        return None
    ours = [accounting.from_fields(fields) for _, fields in accounting.scan(
        text, keep=lambda f: len(f) > 45 and accounting.attempt_parts(f[45])[0] == job_uid)]
    records = [r for r in ours if r is not None]
    if not records:
        return None
    code = max(records, key=lambda r: r.end_time).exit_status
    return Outcome(exit_code=code, signal_name=signal_name(code), reason="accounting")


def _sync(env: Env, prog: str, cluster: object, req: JobRequest, manifest: dict, *, err_path: str,
          keep_stderr: bool, quiet: bool) -> int:
    from gridshim import ops  # noqa: PLC0415

    try:
        outcome = wait_for_job(env, cluster, req, manifest, lambda: env.stderr.write(
            f"{prog}: interrupted; job {req.job_id} deleted\n"))
    except GridshimError as e:
        from gridshim.errors import JobNotFoundError  # noqa: PLC0415

        if not isinstance(e, JobNotFoundError):  # e.g. credentials refused mid-wait: the job itself runs on
            e.hint = (f"{e.hint}; " if e.hint else "") + f"job {req.job_id} may still be running: see qstat -j {req.job_id}"
        return _die(env, prog, e, err_path=err_path, keep_stderr=keep_stderr)
    if outcome is None:
        return int(ExitCode.INTERRUPTED)
    out, err, code = ops.sync_lines(req.job_id, outcome)  # type: ignore[arg-type]
    if quiet and code != 0:
        # jsub -quiet hides qsub's output only on success; on failure all of it is shown
        env.stdout.write(f'Your job {req.job_id} ("{req.name}") has been submitted\n')
    if out and not quiet:
        env.stdout.write(out + "\n")
    if err:
        _to_err(env, err, err_path=err_path, keep_stderr=keep_stderr)
    return code


def _to_err(env: Env, text: str, *, err_path: str | None, keep_stderr: bool) -> None:
    """jsub re-opened its stderr onto the job's .err file; gridshim appends there, and shows it on a tty."""
    if keep_stderr or not err_path:
        env.stderr.write(text + "\n")
        return
    try:
        with open(err_path, "a", errors="surrogateescape") as f:  # undecodable argv bytes go back as bytes
            f.write(text + "\n")
    except OSError:
        env.stderr.write(text + "\n")
        return
    if env.stderr_isatty():
        env.stderr.write(text + "\n")


def _die(env: Env, prog: str, e: GridshimError, *, err_path: str | None, keep_stderr: bool) -> int:
    text = printable(str(e), keep_newlines=isinstance(e, QuotaExceededError))  # qsub's "\nExiting."
    if not text.startswith("Unable to run job"):
        text = f"[{ctime(env.clock())}] {text}"
    if env.debug and e.detail:
        text += f"\n{prog}: detail: {e.detail}"
    _to_err(env, text, err_path=err_path, keep_stderr=keep_stderr)
    return int(e.exit_code)


def _main(preset: Preset) -> None:
    finish(run(preset.value, lambda env: submit_main(env, argv(), preset)))


def jsub_main() -> None:
    _main(Preset.JSUB)


def jstart_main() -> None:
    _main(Preset.JSTART)


def qcronsub_main() -> None:
    _main(Preset.QCRONSUB)
