"""job [-v|-q] JOBNAME: the id of the tool's first job with exactly that name, and its state as the exit
code: 0 none, 1 running (r, Rr, dr, s), 2 queued (qw, hqw, Eqw, Rq). Usage errors exit 2 (argparse).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, NoReturn

from gridshim import config, control
from gridshim.cli import finish
from gridshim.cli._common import Env, argv, load_cluster, run
from gridshim.errors import UsageError

NONE, RUNNING, QUEUED = 0, 1, 2
VERBOSE, QUIET, HELP = ("-v", "--verbose"), ("-q", "--quiet"), ("-h", "--help")  # HELP: argparse's own
# The options this command accepts and how many values each takes: the parser is built from it, and
# gridshim migrate-check reads scripts with it.
OPTIONS: dict[str, int] = dict.fromkeys((*VERBOSE, *QUIET, *HELP), 0)


def _parser(env: Env) -> argparse.ArgumentParser:
    class Parser(argparse.ArgumentParser):
        def error(self, message: str) -> NoReturn:
            self.print_usage(env.stderr)
            raise UsageError(message)

        def _print_message(self, message: str, file: object = None) -> None:
            if message:  # argparse's own streams are sys.*; route them to the injected ones
                (env.stderr if file in (sys.stderr, env.stderr) else env.stdout).write(message)

    p = Parser(prog="job", allow_abbrev=False,
               description="Return the id of the job with the given name; exit 0 if there is none, "
                           "1 if it is running, 2 if it is queued.")
    g = p.add_mutually_exclusive_group()
    g.add_argument(*VERBOSE, action="store_true", help="say what the state is")
    g.add_argument(*QUIET, action="store_true", help="print nothing; only the exit code")
    p.add_argument("JOBNAME")
    return p


def job_main(env: Env, argv: list[str], cluster: Any = None) -> int:
    """CLUSTER: an already connected cluster (tests pass a fake); by default the tool's kubeconfig."""
    try:
        args = _parser(env).parse_args(argv)
    except SystemExit as e:  # -h
        return int(e.code or 0)
    settings = config.load(env.environ)
    cluster = cluster or load_cluster(env)
    name = args.JOBNAME
    listing = control.list_rows(cluster, now=env.clock(), user_prefix=settings.user_prefix, name=name)
    row = control.find_by_name(listing.rows, name)
    if row is None:
        if args.verbose:
            env.stdout.write(f"No job '{control.shown(name)}' is currently queued or running.\n")
        return NONE
    if args.verbose:
        if row.is_running:
            since = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(row.shown_time))
            env.stdout.write(f"Job '{row.name}' has been running since {since} as id {row.job_id}\n")
        else:
            env.stdout.write(f"Job '{row.name}' is pending as id {row.job_id}\n")
    elif not args.quiet:
        env.stdout.write(f"{row.job_id}\n")
    return RUNNING if row.is_running else QUEUED


def main() -> None:
    finish(run("job", lambda env: job_main(env, argv())))
