"""crontab: a tool's crontab, kept in its namespace and run as CronJobs (edge: argv → crontab.plan → cron_ops).

    crontab [-u USER] [FILE | -]          replace the crontab (every line is checked first)
    crontab [-u USER] -l | -e | -r [-i]   list, edit, remove (cron's and Toolforge's messages)
    crontab --dry-run [FILE | -]          print the CronJobs as YAML; contacts nothing
    crontab --previous                    print the crontab as it was before the last change
    crontab --sync                        bring the CronJobs in line with the stored crontab
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gridshim import config
from gridshim.cli import finish
from gridshim.cli._common import Env, argv, load_cluster, offline_namespace, read_script_head, report, run, tool_uid
from gridshim.errors import GridshimError, UsageError
from gridshim.model import tool_of

PROG = "crontab"
USAGE = "usage: crontab [-h] [-u USER] [-i] [-e | -l | -r | --previous | --sync] [--dry-run] [file]"
HELP = f"""{USAGE}

Install, list, edit or remove your tool's crontab. Every entry runs as a Kubernetes CronJob in your
tool's namespace; the crontab text itself is kept there too, exactly as you wrote it.

positional arguments:
  file          replace the crontab with FILE ('-' or nothing: standard input)

options:
  -h, --help    show this help message and exit
  -u USER       only your own tool's name is accepted
  -e            edit the crontab with $VISUAL, $EDITOR, sensible-editor or vi
  -l            print the crontab
  -r            remove the crontab and its CronJobs
  -i            with -r: ask before removing
  --previous    print the crontab as it was before the last change
                (undo the last change: crontab --previous | crontab -)
  --sync        bring the CronJobs in line with the stored crontab (after an interrupted install)
  --dry-run     check FILE and print its CronJobs as YAML; contacts nothing

Lines that call jsub, jstart, qsub or qcronsub run with exactly jsub's options. Other commands run
as Toolforge's wrapper ran them: 'jsub -N cron-<line> -once -quiet COMMAND', through /bin/sh with
your HOME. See docs/crontab.md.
"""
TEMPLATE = b"""\
# Edit this file to introduce tasks to be run by cron.
#
# Each task to run has to be defined through a single line
# indicating with different fields when the task will be run
# and what command to run for the task
#
# To define the time you can provide concrete values for
# minute (m), hour (h), day of month (dom), month (mon),
# and day of week (dow) or use '*' in these fields (for 'any').
#
# Times are UTC unless a CRON_TZ=Area/City line comes before the entry.
#
# Output goes to ~/NAME.out and ~/NAME.err (NAME is the job name,
# cron-<line> for commands that are not jsub or jstart).
#
# For example, you can run a backup of your tool's database
# at 5 a.m every week with:
# 0 5 * * 1 jsub -once -N backup ~/bin/backup.sh
#
# gridshim note:
#   jsub, jstart, qsub and qcronsub entries run as those commands would.
#   Any other command is run as 'jsub -N cron-<line> -once -quiet COMMAND'.
#   @reboot is not available; use '* * * * * jstart -N NAME PROGRAM'.
#
# m\th\tdom\tmon\tdow\tcommand
"""
EMPTY = ("cowardly refusing to install empty crontab", "use `crontab -r` if you want to remove the crontab")


@dataclass
class Args:
    op: str = "replace"  # replace | l | e | r | previous | sync
    file: str | None = None
    interactive: bool = False
    dry_run: bool = False
    user: str | None = None
    help: bool = False
    text: bytes = b""  # replace: the new crontab, read before the cluster is contacted
    source: str = "-"


_OPS = {"-l": "l", "-e": "e", "-r": "r", "--previous": "previous", "--sync": "sync"}
# The options this command accepts and how many values each takes: parse_args reads these (-u also as -uNAME; -l, -r, -e, -i combined as -ri), and
# gridshim migrate-check reads scripts with it.
OPTIONS: dict[str, int] = {**dict.fromkeys(_OPS, 0), "-i": 0, "-u": 1, "--dry-run": 0, "-h": 0, "--help": 0}


def parse_args(argv: list[str]) -> Args:
    """cron's options (short flags may be combined: -ri), Toolforge's argparse messages, exit 2."""
    args = Args()
    ops: list[str] = []
    files: list[str] = []
    i = 0
    only_files = False
    while i < len(argv):
        a = argv[i]
        i += 1
        if only_files or a == "-" or not a.startswith("-"):
            files.append(a)
            continue
        if a == "--":
            only_files = True
        elif a in ("-h", "--help"):
            args.help = True
        elif a == "--dry-run":
            args.dry_run = True
        elif a in _OPS:
            ops.append(a)
        elif a == "-i":
            args.interactive = True
        elif a.startswith("-u"):
            if len(a) > 2:
                args.user = a[2:]
            elif i < len(argv):
                args.user = argv[i]
                i += 1
            else:
                raise UsageError("argument -u: expected one argument")
        elif not a.startswith("--") and len(a) > 2 and all(c in "lrei" for c in a[1:]):
            for c in a[1:]:
                if c == "i":
                    args.interactive = True
                else:
                    ops.append(f"-{c}")
        else:
            raise UsageError(f"unrecognized arguments: {a}")
    if len(set(ops)) > 1:
        first, second = sorted(set(ops), key=ops.index)[:2]
        raise UsageError(f"argument {second}: not allowed with argument {first}")
    if ops and files:
        raise UsageError(f"argument {ops[0]}: not allowed with argument file")
    if len(files) > 1:
        raise UsageError(f"unrecognized arguments: {' '.join(files[1:])}")
    if ops:
        args.op = _OPS[ops[0]]
    args.file = files[0] if files else None
    if args.interactive and args.op != "r":
        raise UsageError("argument -i: only applicable with -r")
    if args.dry_run and ops:
        raise UsageError(f"argument --dry-run: not allowed with argument {ops[0]}")
    return args


# -- host facts ----------------------------------------------------------------------------------------


def _host(env: Env, settings: config.Settings, tool: str, *, strict_uid: bool, cluster: Any = None) -> Any:
    """What the crontab module may know of this machine; the uid with CLUSTER (None: --dry-run, offline)."""
    from gridshim.crontab import CronHost  # noqa: PLC0415

    home = env.home
    try:
        uid: int | None = tool_uid(settings.uid, tool=tool, home=home, cluster=cluster, offline=cluster is None)
    except GridshimError:
        if strict_uid:
            raise
        uid = None
    return CronHost(tool=tool, home=home, uid=uid, user=f"{settings.user_prefix}{tool}", exists=os.path.exists,
                    isdir=os.path.isdir, executable=lambda p: os.access(p, os.X_OK), read_text=read_script_head)



def _workers(cluster: Any) -> Callable[[], Any] | None:
    """Extra connections for parallel writes (a KubeCluster's connection is not shared across threads)."""
    creds = getattr(cluster, "creds", None)
    if creds is None:
        return None
    cls = type(cluster)
    return lambda: cls(creds, cluster.namespace)


# -- input and output --------------------------------------------------------------------------------

def _read_input(env: Env, path: str | None) -> tuple[bytes, str]:
    if path is None or path == "-":
        if env.stdin is None:
            raise GridshimError("standard input is closed: there is no crontab to read (nothing was changed)")
        buf = getattr(env.stdin, "buffer", None)
        data = buf.read() if buf is not None else env.stdin.read().encode("utf-8", "surrogateescape")
        return data, "-"
    full = path if os.path.isabs(path) else os.path.join(env.cwd, path)
    try:
        with open(full, "rb") as f:
            return f.read(), path
    except OSError as e:
        from gridshim.text import printable  # noqa: PLC0415

        raise GridshimError(f"{printable(path)}: {e.strerror}") from None


def _write_bytes(env: Env, data: bytes) -> None:
    buf = getattr(env.stdout, "buffer", None)
    if buf is not None:
        env.stdout.flush()
        buf.write(data)
        buf.flush()
    else:
        env.stdout.write(data.decode("utf-8", "surrogateescape"))


def _ask(env: Env, prompt: str, *, to: Any) -> bool | None:
    """y/n with Toolforge's re-prompt; None on end of input (treated as no)."""
    while True:
        to.write(prompt)
        to.flush()
        line = env.stdin.readline() if env.stdin is not None else ""
        if not line:
            to.write("\n")
            return None
        answer = line.strip().lower()
        if answer == "y":
            return True
        if answer == "n":
            return False
        prompt = "Please enter Y or N: "


def _plan(env: Env, text: bytes, settings: config.Settings, host: Any, source: str) -> Any:
    """Validate everything; on errors print cron's lines and raise _Refused (nothing is written)."""
    from gridshim import crontab  # noqa: PLC0415

    try:
        plan = crontab.plan(text.decode("utf-8", "surrogateescape"), settings=settings, host=host, source=source)
    except crontab.CrontabInvalid as e:
        for line in e.lines():
            env.stderr.write(line + "\n")
        env.stderr.write(f"{e.message}\n")
        raise _Refused() from None
    for w in plan.warnings:
        env.stderr.write(f"{PROG}: warning: line {w.line}: {w.message}\n")
    return plan


class _Refused(Exception):
    pass


def _finish(env: Env, result: Any) -> int:
    for err in result.errors:
        env.stderr.write(f"{PROG}: {err}\n")
    if result.superseded:
        env.stderr.write(f"{PROG}: note: another crontab was installed right after this one; "
                         "the CronJobs follow that one ('crontab -l' shows it)\n")
    if env.debug:
        env.stderr.write(f"{PROG}: created {len(result.created)}, updated {len(result.updated)}, deleted "
                         f"{len(result.deleted)}, unchanged {result.unchanged} CronJobs in {result.passes} pass(es)\n")
    return 1 if result.errors else 0


# -- operations ----------------------------------------------------------------------------------------

def crontab_main(env: Env, argv: list[str], cluster: Any = None) -> int:
    """CLUSTER: an already connected cluster (unit tests pass a fake); by default the tool's kubeconfig."""
    try:
        args = parse_args(argv)
    except UsageError as e:
        env.stderr.write(USAGE + "\n")
        return report(env, PROG, e)
    if args.help:
        env.stdout.write(HELP)
        return 0
    settings = config.load(env.environ)
    try:
        if args.dry_run:
            return _dry_run(env, args, settings)
        if args.op == "replace":
            # Read and refuse an empty install before anything else (cron's stdin may be a mistake).
            args.text, args.source = _read_input(env, args.file)
            if not args.text.strip():
                for line in EMPTY:
                    env.stderr.write(f"{PROG}: {line}\n")
                return 1
        cluster = cluster or load_cluster(env)  # reads the kubeconfig only; the API is contacted after validation
        who = f"{settings.user_prefix}{cluster.tool}"
        if args.user is not None and args.user not in (who, cluster.tool):
            raise GridshimError("must be privileged to use -u")
        return _OPERATIONS[args.op](env, args, settings, cluster, who)
    except _Refused:
        return 1


def _dry_run(env: Env, args: Args, settings: config.Settings) -> int:
    from gridshim import cron_ops  # noqa: PLC0415
    from gridshim.render import to_yaml  # noqa: PLC0415

    text, source = _read_input(env, args.file)
    tool = tool_of(offline_namespace(env))
    plan = _plan(env, text, settings, _host(env, settings, tool, strict_uid=False), source)
    env.stdout.write(to_yaml([e["manifest"] for e in cron_ops.render_plan(plan, settings)]))
    return 0


def _list(env: Env, args: Args, settings: config.Settings, cluster: Any, who: str) -> int:
    from gridshim import cron_ops  # noqa: PLC0415

    stored = cron_ops.read_store(cluster)
    data = stored.previous if args.op == "previous" else stored.text
    if data is None:
        env.stderr.write(f"no previous crontab for {who}\n" if args.op == "previous" else f"no crontab for {who}\n")
        return 1
    _write_bytes(env, data)
    return 0


def _install(env: Env, text: bytes, source: str, settings: config.Settings, cluster: Any, who: str,
             base: Any = None) -> int:
    from gridshim import cron_ops, crontab  # noqa: PLC0415

    plan = _plan(env, text, settings, _host(env, settings, cluster.tool, strict_uid=True, cluster=cluster), source)
    rendered = cron_ops.render_plan(plan, settings)
    result = cron_ops.install(cluster, text=text, rendered=rendered, now=env.clock(), base=base,
                              workers=_workers(cluster), who=who)
    note = crontab.note(plan)
    if note:
        env.stderr.write("\n" + note + "\n")
    return _finish(env, result)


def _replace(env: Env, args: Args, settings: config.Settings, cluster: Any, who: str) -> int:
    return _install(env, args.text, args.source, settings, cluster, who)


def _remove(env: Env, args: Args, settings: config.Settings, cluster: Any, who: str) -> int:
    from gridshim import cron_ops  # noqa: PLC0415

    stored = cron_ops.read_store(cluster)
    if stored.text is None:
        # Nothing to remove; still finish whatever an interrupted install or removal left behind.
        cron_ops.reconcile(cluster, stored, workers=_workers(cluster))
        env.stderr.write(f"no crontab for {who}\n")
        return 1
    if args.interactive:
        answer = _ask(env, f"{PROG}: really delete {who}'s crontab? (y/n) ", to=env.stdout)
        if answer is None:
            return 1
        if not answer:
            return 0
    result = cron_ops.remove(cluster, now=env.clock(), base=stored, workers=_workers(cluster), who=who)
    return _finish(env, result)


def _sync(env: Env, args: Args, settings: config.Settings, cluster: Any, who: str) -> int:
    from gridshim import cron_ops, crontab  # noqa: PLC0415

    def render(text: bytes) -> list[dict[str, Any]]:
        plan = crontab.plan(text.decode("utf-8", "surrogateescape"), settings=settings,
                            host=_host(env, settings, cluster.tool, strict_uid=True, cluster=cluster))
        return cron_ops.render_plan(plan, settings)

    stored = cron_ops.read_store(cluster)
    return _finish(env, cron_ops.reconcile(cluster, stored, workers=_workers(cluster), render=render))


def _editor(env: Env) -> str:
    for var in ("VISUAL", "EDITOR"):
        if env.environ.get(var):
            return env.environ[var]
    return "sensible-editor" if shutil.which("sensible-editor", path=env.environ.get("PATH")) else "vi"


def _edit(env: Env, args: Args, settings: config.Settings, cluster: Any, who: str) -> int:
    from gridshim import cron_ops  # noqa: PLC0415

    stored = cron_ops.read_store(cluster)
    original = stored.text if stored.text is not None else TEMPLATE
    tmpdir = tempfile.mkdtemp(prefix="crontab.")
    path = os.path.join(tmpdir, "crontab")
    with open(path, "wb") as f:
        f.write(original)
    keep = False
    try:
        while True:
            editor = _editor(env)
            rc = subprocess.call(["/bin/sh", "-c", f'{editor} "$1"', editor, path], env=env.environ, cwd=env.cwd)
            if rc != 0:
                env.stderr.write(f'{PROG}: "{editor}" exited with status {rc}\n')
                return 1
            try:
                with open(path, "rb") as f:
                    new = f.read()
            except OSError as e:  # the editor removed or replaced the file unreadably
                env.stderr.write(f"{PROG}: cannot read the edited crontab ({e.strerror}); no changes made\n")
                return 1
            if new == original:
                env.stderr.write("No modification made\n")
                return 0
            if not new.strip():
                for line in EMPTY:
                    env.stderr.write(f"{PROG}: {line}\n")
                return 1
            try:
                return _install(env, new, path, settings, cluster, who, base=stored)
            except _Refused:
                answer = _ask(env, "Do you want to retry the same edit? (y/n) ", to=env.stderr)
                if answer:
                    continue
                keep = True
                env.stderr.write(f"{PROG}: your edit is kept in {path}\n")
                return 1
            except cron_ops.ConcurrentChange as e:
                keep = True
                env.stderr.write(f"{PROG}: {e}\n{PROG}: your edit is kept in {path}; merge it with "
                                 f"'crontab -e' or install it with 'crontab {path}'\n")
                return 1
            except GridshimError:
                keep = True
                env.stderr.write(f"{PROG}: your edit is kept in {path}\n")
                raise
    finally:
        if not keep:
            shutil.rmtree(tmpdir, ignore_errors=True)


_OPERATIONS: dict[str, Callable[[Env, Args, config.Settings, Any, str], int]] = {
    "replace": _replace, "l": _list, "previous": _list, "e": _edit, "r": _remove, "sync": _sync,
}


def main() -> None:
    finish(run(PROG, lambda env: crontab_main(env, argv())))
