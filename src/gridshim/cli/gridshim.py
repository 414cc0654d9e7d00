"""`gridshim doctor`, `migrate-check` and `release`: the helper command (CLI edge), on click.

Parsing and printing only; the checks live in doctor.py, the analysis in migrate.py and the releases in
depends.py. Colour (rich, from _common.console) only when stdout is a terminal and NO_COLOR is unset;
plain text otherwise. The only module that imports click: the grid's own commands keep their SGE-exact
parsers (design.md).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from gridshim import __version__
from gridshim.cli import finish
from gridshim.cli._common import Env, argv, console, printable, run
from gridshim.errors import ExitCode, GridshimError, UsageError

DESCRIPTION = """\
Helpers for tools moving from Grid Engine to gridshim.

commands:
  doctor          check your kubeconfig, certificate, the API server, your permissions,
                  quota and the site config; exit 0 when all is well
  migrate-check   read a crontab and shell scripts and say, for every grid command in them,
                  whether it works unchanged, works with a difference, or is not supported
  release         release the jobs that wait for a finished job (qsub -hold_jid); run by the
                  finished job's wrapper and, with --sweep, by the gridshim-release CronJob
"""
DOCTOR_HELP = """\
Check everything gridshim's commands need, in order, and print one line per check:

  kubeconfig    $KUBECONFIG or ~/.kube/config: the context, its namespace and credentials
  certificate   the client certificate's expiry (a warning within 30 days)
  API server    GET /version answers
  permissions   a SelfSubjectAccessReview for every operation the commands perform
  quota         ResourceQuota use, and whether the namespace's limits admit a default job
  site config   $GRIDSHIM_CONFIG or /etc/gridshim/config.yaml, and the uid policy
  job mail      whether jobs send mail for -m b|e|a (the site config's 'mail'); informs only

Exit status: 0 when nothing failed (warnings are shown with their fix), 1 otherwise.
The environment is the commands' own: KUBECONFIG, GRIDSHIM_CONTEXT, GRIDSHIM_CONFIG, HOME.
"""
MIGRATE_HELP = """\
Find every grid command (jsub, jstart, qcronsub, qsub, qstat, qdel, jstop, job, qmod, qalter,
qhold, ...; with or without /usr/bin/) in a crontab and in shell scripts, and report each one:

  works unchanged           nothing to do
  works with a difference   it runs, but something you may notice differs (listed)
  not supported             it will fail or be ignored; why, and what to do instead

Every report names the job it is about: the -N name, the program's name (jsub's rule), or
cron-<i> for crontab lines that Toolforge wrapped in jsub. Scripts that the crontab or a jsub
line runs are read too when they are readable shell scripts, including their #$ lines.

The first FILE is read as the crontab unless it starts with #! (then every FILE is a script);
'-' or no FILE reads the crontab from stdin (e.g. `crontab -l | gridshim migrate-check`).
Exit status: 0 when everything is supported, 1 when something is not, 2 for usage errors.
"""
RELEASE_HELP = """\
Release the jobs that wait for another (qsub -hold_jid, -hold_jid_ad):

  --job ID [--task T]   job ID (or task T of array job ID) has finished: drop it from the
                        predecessors of every waiting job, and let a job with none left start
                        (unless it is held with qsub -h or qhold)
  --sweep               drop every predecessor whose job is gone or has finished (and array
                        tasks already finished); delete the gridshim-release CronJob when no
                        job waits any more; write the accounting records of failed jobs whose
                        pod could not (qacct)

A finished job's wrapper runs `release --job` when the site sets release_command; the
gridshim-release CronJob runs `release --sweep` every minute as the backstop. Both use the
tool's kubeconfig ($KUBECONFIG or ~/.kube/config). Nothing is printed unless something fails.
Exit status: 0, or 1 when the API could not be reached or refused.
"""


# -- the command line (click: --help on every command, shell completion through _GRIDSHIM_COMPLETE) ----
# click is imported when the command tree is first needed (`command()`). `release --job N [--task T]`, the
# one form a finished job's wrapper runs (render/command.py _RELEASE), is read without it (`_wrapper_form`):
# every job with successors pays for this process's start-up (design.md, "Our own parsers ...").

class _Given:
    """What main_with hands the commands: the environment, and a cluster (unit tests pass a fake)."""

    def __init__(self, env: Env, cluster: Any) -> None:
        self.env, self.cluster = env, cluster


def _given(ctx: Any) -> _Given:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, _Given) else _Given(Env(), None)


def _env(ctx: Any) -> Env:
    return _given(ctx).env


_TREE: Any = None


def command() -> Any:
    """The click command tree (a click.Group), made once."""
    global _TREE
    if _TREE is None:
        _TREE = _build()
    return _TREE


def _build() -> Any:
    import click  # noqa: PLC0415  (see above: not on the wrapper's release path)

    class _Help:
        """What click's commands share here: argparse's lower-case `usage:` (kept from before click) and the
        help text printed as written (the tables in it are laid out by hand)."""

        def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
            formatter.write_usage(ctx.command_path, " ".join(self.collect_usage_pieces(ctx)),  # type: ignore[attr-defined]
                                  prefix="usage: ")

        def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
            text = self.help or ""  # type: ignore[attr-defined]
            if text:
                formatter.write("\n" + text.rstrip("\n") + "\n")

    class _Command(_Help, click.Command):
        pass

    class _Group(_Help, click.Group):
        command_class = _Command

    def _show_help(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        if value and not ctx.resilient_parsing:
            _env(ctx).stdout.write(ctx.get_help() + "\n")
            ctx.exit(0)

    def _show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        if value and not ctx.resilient_parsing:
            _env(ctx).stdout.write(f"gridshim {__version__}\n")
            ctx.exit(0)

    def _help_option() -> Callable[[Any], Any]:
        return click.option("-h", "--help", is_flag=True, expose_value=False, is_eager=True, callback=_show_help,
                            help="show this help and exit")

    @click.group(cls=_Group, help=DESCRIPTION, invoke_without_command=True, add_help_option=False,
                 context_settings={"max_content_width": 100})
    @_help_option()
    @click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_show_version,
                  help="show the version and exit")
    @click.pass_context
    def cli(ctx: click.Context) -> int | None:
        if ctx.invoked_subcommand is None:  # no command: the help, exit 2 (as before click, like git)
            _env(ctx).stdout.write(ctx.get_help() + "\n")
            return int(ExitCode.USAGE)
        return None

    @cli.command("doctor", help=DOCTOR_HELP, short_help="check the set-up and say how to fix what is wrong",
                 add_help_option=False)
    @_help_option()
    @click.pass_context
    def _doctor(ctx: click.Context) -> int:
        return doctor(_env(ctx))

    @cli.command("migrate-check", help=MIGRATE_HELP, short_help="classify every grid command in a crontab and scripts",
                 add_help_option=False)
    @_help_option()
    @click.option("--no-follow", is_flag=True, help="do not read the scripts that the crontab and jsub lines run")
    @click.argument("files", nargs=-1, metavar="[CRONTAB] [SCRIPT ...]", type=click.Path())
    @click.pass_context
    def _migrate_check(ctx: click.Context, no_follow: bool, files: tuple[str, ...]) -> int:
        return migrate_check(_env(ctx), list(files), follow=not no_follow)

    @cli.command("release", help=RELEASE_HELP, short_help="release the jobs that wait for a finished job (-hold_jid)",
                 add_help_option=False)
    @_help_option()
    @click.option("--job", type=int, metavar="ID", help="the job that finished")
    @click.option("--sweep", is_flag=True, help="settle every waiting job (the backstop)")
    @click.option("--task", type=int, multiple=True, metavar="T", help="only this task of an array job")
    @click.pass_context
    def _release(ctx: click.Context, job: int | None, sweep: bool, task: tuple[int, ...]) -> int:
        if (job is None) == (not sweep):
            raise click.UsageError("give one of --job ID and --sweep" if job is None else
                                   "--job and --sweep exclude each other", ctx)
        return release(_env(ctx), job=job, tasks=list(task) or None, sweep=sweep, cluster=_given(ctx).cluster)

    return cli


def _wrapper_form(argv: list[str]) -> tuple[int, list[int] | None] | None:
    """(job, tasks) when ARGV is exactly what a job's wrapper runs, `release --job N` or `release --job N
    --task T` with ASCII decimal numbers, which click reads the same way; None for anything else."""
    def number(s: str) -> bool:
        return s.isascii() and s.isdigit()

    if len(argv) in (3, 5) and argv[:2] == ["release", "--job"] and number(argv[2]) \
            and (len(argv) == 3 or (argv[3] == "--task" and number(argv[4]))):
        return int(argv[2]), ([int(argv[4])] if len(argv) == 5 else None)
    return None


class _Printer:
    """Plain text, or rich styles on a terminal (the only place this module touches rich)."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.console: Any = console(env, styles_only=True, highlight=False, soft_wrap=True, emoji=False)

    def line(self, *parts: tuple[str, str | None]) -> None:
        if self.console is None:
            self.env.stdout.write("".join(text for text, _ in parts) + "\n")
            return
        from rich.text import Text  # noqa: PLC0415

        out = Text()
        for text, style in parts:
            out.append(text, style=style or "")
        self.console.print(out)


# -- doctor ----------------------------------------------------------------------------------------

_STYLE = {"ok": "green", "warn": "yellow", "FAIL": "bold red", "skip": "dim"}


def doctor(env: Env) -> int:
    from gridshim import config, doctor as D  # noqa: PLC0415
    from gridshim.cli._common import tool_uid  # noqa: PLC0415
    from gridshim.cluster import KubeCluster, cert_dates, kubeconfig_paths  # noqa: PLC0415

    paths = kubeconfig_paths(env.environ)
    context = env.environ.get("GRIDSHIM_CONTEXT")

    def resolve_uid(settings: config.Settings, tool: str, cluster: Any) -> int | None:
        # jsub's rule: the submitter's $HOME; `uid: namespace` asks CLUSTER
        return tool_uid(settings.uid, tool=tool, home=env.home, cluster=cluster)

    report = D.diagnose(
        connect=lambda: KubeCluster.from_kubeconfig(context=context, environ=env.environ),
        load_settings=lambda: config.load(env.environ), cert_dates=cert_dates, paths=paths,
        from_env=bool(env.environ.get("KUBECONFIG")), resolve_uid=resolve_uid, now=env.clock())
    out = _Printer(env)
    who = f"tool {report.tool} (namespace {report.namespace})" if report.namespace else "no tool found"
    out.line((f"gridshim doctor: {who}", "bold"))
    width = max(len(c.name) for c in report.checks)
    for c in report.checks:
        out.line((" ", None), (f"{c.level.value:<4}", _STYLE[c.level.value]), ("  ", None),
                 (f"{c.name:<{width}}", "bold"), ("  ", None), (c.summary, None))
        pad = " " * (1 + 4 + 2 + width + 2)
        for d in c.details:
            out.line((pad + d, "dim"))
        if c.fix and c.level in (D.Level.FAIL, D.Level.WARN):
            out.line((pad, None), ("fix: ", _STYLE[c.level.value]), (c.fix, None))
    fails = [c.name for c in report.checks if c.level is D.Level.FAIL]
    warns = [c.name for c in report.checks if c.level is D.Level.WARN]
    if fails:
        out.line((f"{len(fails)} problem{'s' if len(fails) != 1 else ''}: {', '.join(fails)}"
                  + (f" (and {len(warns)} warning{'s' if len(warns) != 1 else ''})" if warns else "")
                  + ".", "bold red"))
        return int(ExitCode.ERROR)
    if warns:
        out.line((f"No problems; {len(warns)} warning{'s' if len(warns) != 1 else ''}: {', '.join(warns)}.",
                  "yellow"))
    else:
        out.line((f"All {len(report.checks)} checks passed.", "bold green"))
    return int(ExitCode.SUCCESS)


# -- migrate-check ---------------------------------------------------------------------------------

_VERDICT_STYLE = {"works unchanged": "green", "works with a difference": "yellow", "not supported": "bold red"}


def _cron_host(env: Env) -> Any:
    """What the crontab module may know about this machine: the tool, its home, and its files (text only)."""
    from gridshim.crontab import CronHost  # noqa: PLC0415

    home = env.home
    user = env.environ.get("LOGNAME") or env.environ.get("USER") or ""
    tool = user.split(".", 1)[1] if user.startswith("tools.") else (user or "tool")

    def read_text(path: str) -> str | None:
        try:
            if not os.path.isfile(path) or os.path.getsize(path) > 1_000_000:
                return None
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return None
        return None if b"\0" in data else data.decode("utf-8", "replace")

    return CronHost(tool=tool, home=home, uid=os.getuid(), user=user or f"tools.{tool}", exists=os.path.exists,
                    isdir=os.path.isdir, executable=lambda p: os.access(p, os.X_OK), read_text=read_text)


def migrate_check(env: Env, files: list[str], *, follow: bool) -> int:
    from gridshim import config, migrate  # noqa: PLC0415

    try:
        settings = config.load(env.environ)
    except GridshimError as e:
        env.stderr.write(f"gridshim: warning: {e.message}; using the built-in defaults\n")
        settings = config.Settings()
    if not files and env.stdin is not None and hasattr(env.stdin, "isatty") and env.stdin.isatty():
        raise UsageError("give a crontab file and scripts, or pipe a crontab in: crontab -l | gridshim "
                         "migrate-check")
    sources: list[migrate.Source] = []
    for i, name in enumerate(files or ["-"]):
        path = None
        if name == "-":
            if env.stdin is None:
                raise UsageError("standard input is closed: give a crontab file and scripts")
            raw = getattr(env.stdin, "buffer", None)
            text = raw.read().decode("utf-8", "replace") if raw is not None else env.stdin.read()
            label = "<stdin>"
        else:
            try:
                with open(name, encoding="utf-8", errors="replace") as fh:
                    text = fh.read()
            except OSError as e:
                raise UsageError(f"cannot read {name}: {e.strerror}") from None
            label = name
            path = os.path.normpath(os.path.join(env.cwd, name))
        is_crontab = i == 0 and not text.startswith("#!")
        sources.append(migrate.Source(name=label, text=text, crontab=is_crontab, path=path))
    result = migrate.check(sources, settings=settings, host=_cron_host(env), follow=follow)
    out = _Printer(env)
    p = printable  # file contents go to a terminal: control characters are shown escaped
    for f in result.findings:
        job = f", job '{p(f.job)}'" if f.job else ""
        out.line((f"{p(f.source)}:{f.line}: ", "bold"), (f.verdict.value, _VERDICT_STYLE[f.verdict.value]),
                 (f": {p(f.command)}{job}", None))
        out.line(("    " + p(f.text), "dim"))
        for note in f.notes:
            label = {"unsupported": "- ", "difference": "- ", "note": "  note: "}[note.kind.value]
            out.line(("    " + label + p(note.text), None))
            if note.instead:
                out.line(("      instead: " + p(note.instead), None))
    for w in result.warnings:
        env.stderr.write(f"gridshim: warning: {w}\n")
    s = result.summary()
    n, nf = len(result.findings), len(result.sources)
    out.line((f"{n} grid command{'s' if n != 1 else ''} in {nf} file{'s' if nf != 1 else ''}: "
              f"{s['works unchanged']} work unchanged, {s['works with a difference']} with a difference, "
              f"{s['not supported']} not supported.", "bold"))
    return int(ExitCode.ERROR) if s["not supported"] else int(ExitCode.SUCCESS)


# -- release ---------------------------------------------------------------------------------------

def release(env: Env, *, job: int | None, tasks: list[int] | None, sweep: bool, cluster: Any = None) -> int:
    """`gridshim release --job ID [--task T]` / `--sweep` (depends.py). Quiet unless it fails, because
    the wrapper appends its output to the finished job's own stderr file."""
    from gridshim import depends  # noqa: PLC0415
    from gridshim.cli._common import load_cluster  # noqa: PLC0415

    cluster = cluster or load_cluster(env)
    if sweep:
        from gridshim import config, records  # noqa: PLC0415

        try:
            settings = config.load(env.environ)
        except GridshimError:
            settings = None  # a bad site config must not stop the releases; qacct reports it
        account = None if settings is None else (lambda job, pods: records.ensure_records(
            job, pods, settings=settings, home=env.home, now=env.clock()))
        result = depends.sweep(cluster, home=env.home, account=account)
        changed = result.released
    else:
        changed = depends.release(cluster, job, tasks)  # type: ignore[arg-type]
        if not tasks:
            depends.note_released(env.home, job)  # type: ignore[arg-type]
    if env.debug:
        env.stderr.write(f"gridshim release: updated {' '.join(map(str, changed)) or 'nothing'}\n")
    return int(ExitCode.SUCCESS)


# -- entry point -----------------------------------------------------------------------------------

def main_with(env: Env, argv: list[str], cluster: Any = None) -> int:
    """Run `gridshim ARGV` with ENV's streams (and CLUSTER instead of the kubeconfig's, for release).
    Usage errors: the usage line, then the funnel's one line (`gridshim: error: …`, exit 2)."""
    fast = _wrapper_form(argv) if "_GRIDSHIM_COMPLETE" not in os.environ else None
    if fast is not None:
        return release(env, job=fast[0], tasks=fast[1], sweep=False, cluster=cluster)
    import click  # noqa: PLC0415

    try:
        code = command().main(args=argv, prog_name="gridshim", standalone_mode=False, obj=_Given(env, cluster))
    except click.UsageError as e:
        if e.ctx is not None:
            env.stderr.write(e.ctx.get_usage() + "\n")
        raise UsageError(e.format_message()) from None
    except click.exceptions.Exit as e:
        return int(e.exit_code)
    except click.Abort:
        raise KeyboardInterrupt from None
    return int(code or 0)


def main() -> None:
    finish(run("gridshim", lambda env: main_with(env, argv())))


if __name__ == "__main__":  # pragma: no cover
    main()
