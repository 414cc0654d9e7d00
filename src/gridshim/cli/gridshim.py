"""`gridshim doctor` and `gridshim migrate-check`: helpers for moving a tool from the grid (CLI edge).

Parsing and printing only; the checks live in doctor.py and the analysis in migrate.py. Colour
(rich) only when stdout is a terminal and NO_COLOR is unset; plain text otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, NoReturn

from gridshim import __version__
from gridshim.cli._common import Env, argv, printable, run
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
                        job waits any more

A finished job's wrapper runs `release --job` when the site sets release_command; the
gridshim-release CronJob runs `release --sweep` every minute as the backstop. Both use the
tool's kubeconfig ($KUBECONFIG or ~/.kube/config). Nothing is printed unless something fails.
Exit status: 0, or 1 when the API could not be reached or refused.
"""


class _Parser(argparse.ArgumentParser):
    """argparse, with its output on the injected streams and its errors through the funnel (exit 2)."""

    env: Env | None = None

    def error(self, message: str) -> NoReturn:
        if self.env is not None:
            self.print_usage(self.env.stderr)
        raise UsageError(message)

    def _print_message(self, message: str, file: Any = None) -> None:
        if message and self.env is not None:
            (self.env.stderr if file in (sys.stderr, self.env.stderr) else self.env.stdout).write(message)
        elif message:
            super()._print_message(message, file)


def _parser(env: Env | None = None) -> argparse.ArgumentParser:
    _Parser.env = env
    p = _Parser(prog="gridshim", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"gridshim {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("doctor", help="check the set-up and say how to fix what is wrong", description=DOCTOR_HELP,
                   formatter_class=argparse.RawDescriptionHelpFormatter)
    m = sub.add_parser("migrate-check", help="classify every grid command in a crontab and scripts",
                       description=MIGRATE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    m.add_argument("files", nargs="*", metavar="FILE", help="[CRONTAB] [SCRIPT ...]")
    m.add_argument("--no-follow", action="store_true",
                   help="do not read the scripts that the crontab and jsub lines run")
    r = sub.add_parser("release", help="release the jobs that wait for a finished job (-hold_jid)",
                       description=RELEASE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    which = r.add_mutually_exclusive_group(required=True)
    which.add_argument("--job", type=int, metavar="ID", help="the job that finished")
    which.add_argument("--sweep", action="store_true", help="settle every waiting job (the backstop)")
    r.add_argument("--task", type=int, action="append", metavar="T", help="only this task of an array job")
    return p


def _colour(env: Env) -> bool:
    return env.stdout_isatty() and "NO_COLOR" not in env.environ and env.environ.get("TERM") != "dumb"


class _Printer:
    """Plain text, or rich styles on a terminal (the only place this module touches rich)."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.console: Any = None
        if _colour(env):
            from rich.console import Console  # noqa: PLC0415

            self.console = Console(file=env.stdout, force_terminal=True, highlight=False, soft_wrap=True,
                                   emoji=False)

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
    if not files and hasattr(env.stdin, "isatty") and env.stdin.isatty():
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
                with open(name, encoding="utf-8", errors="replace") as f:
                    text = f.read()
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
        result = depends.sweep(cluster, home=env.home)
        changed = result.released
    else:
        changed = depends.release(cluster, job, tasks)  # type: ignore[arg-type]
        if not tasks:
            depends.note_released(env.home, job)  # type: ignore[arg-type]
    if env.debug:
        env.stderr.write(f"gridshim release: updated {' '.join(map(str, changed)) or 'nothing'}\n")
    return int(ExitCode.SUCCESS)


# -- entry point -----------------------------------------------------------------------------------

def main_with(env: Env, argv: list[str]) -> int:
    parser = _parser(env)
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version: already printed
        return int(e.code or 0)
    if args.command == "doctor":
        return doctor(env)
    if args.command == "migrate-check":
        return migrate_check(env, args.files, follow=not args.no_follow)
    if args.command == "release":
        return release(env, job=args.job, tasks=args.task, sweep=args.sweep)
    parser.print_help(env.stdout)
    return int(ExitCode.USAGE)


def main() -> int:
    return run("gridshim", lambda env: main_with(env, argv()))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
