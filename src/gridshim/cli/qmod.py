"""qmod -rj job_id|job_name|pattern …: restart ("reschedule") running continuous jobs.

The pod is deleted with the site's grace period and the Job controller starts a new one; the job
shows `Rq`, then `Rr`. Jobs on the task queue are refused as the grid refused them (its task queue
had rerun FALSE). Answers on stdout; exit 1 if any was an error.
"""

from __future__ import annotations

from typing import Any

from gridshim import config, control
from gridshim.cli import finish
from gridshim.cli._common import Env, argv, load_cluster, run
from gridshim.errors import ExitCode

# The options this command accepts and how many values each takes: its parser refuses any other, and
# gridshim migrate-check reads scripts with it.
OPTIONS: dict[str, int] = {"-rj": 0, "-r": 0, "-help": 0, "-h": 0, "--help": 0}
USAGE = "usage: qmod -rj job_list\n"


def qmod_main(env: Env, argv: list[str], cluster: Any = None) -> int:
    """CLUSTER: an already connected cluster (tests pass a fake); by default the tool's kubeconfig."""
    args = list(argv)
    specs: list[str] = []
    restart = False
    while args:
        a = args.pop(0)
        if a.startswith("-") and a not in OPTIONS:
            env.stderr.write(USAGE)
            env.stderr.write(f'qmod: option "{control.shown(a)}" is not supported here; only -rj (restart a job) is\n')
            return int(ExitCode.ERROR)
        if a in ("-rj", "-r"):
            restart = True
        elif a in ("-help", "-h", "--help"):
            env.stdout.write(USAGE)
            return 0
        else:
            specs += [s for s in a.split(",") if s]
    if not restart or not specs:
        env.stderr.write(USAGE)
        return int(ExitCode.ERROR)
    settings = config.load(env.environ)
    cluster = cluster or load_cluster(env)
    listing = control.list_rows(cluster, now=env.clock(), user_prefix=settings.user_prefix,
                                **control.narrow(specs))
    answers: list[control.Answer] = []
    done: set[str] = set()
    for spec, rows in control.select(listing.rows, specs):
        if not rows:
            answers.append(control.not_exist(spec))
        for row in rows:
            if row.uid not in done:
                done.add(row.uid)
                answers.append(control.restart_job(cluster, row, grace=settings.grace_seconds))
    for answer in answers:
        env.stdout.write(answer.text + "\n")
    return int(ExitCode.ERROR) if any(a.error for a in answers) else 0


def main() -> None:
    finish(run("qmod", lambda env: qmod_main(env, argv())))
