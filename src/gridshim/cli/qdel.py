"""qdel [-f] [-u user,…] [job_id|job_name|pattern …]: delete the tool's jobs with the grid's messages.

Every answer goes to stdout, one line per job; exit 1 if any answer was an error (SGE qdel). A name
deletes every job of that name; running jobs die gracefully (SIGTERM, then SIGKILL after the site's
grace_seconds; -f: at once) and show `dr` meanwhile.
"""

from __future__ import annotations

import sys
from typing import Any

from gridshim import config, control
from gridshim.cli._common import Env, argv, load_cluster, run
from gridshim.errors import ExitCode
from gridshim.model import JobRow

USAGE = "usage: qdel [-f] [-u user_list] [job_task_list | -u user_list]\n"


def qdel_main(env: Env, argv: list[str], cluster: Any = None) -> int:
    """CLUSTER: an already connected cluster (tests pass a fake); by default the tool's kubeconfig."""
    specs: list[str] = []
    users: list[str] = []
    force = False
    args = list(argv)
    while args:
        a = args.pop(0)
        if a == "-f":
            force = True
        elif a == "-u":
            if not args:
                env.stderr.write(USAGE)
                env.stdout.write("ERROR! -u option must have argument\n")
                return int(ExitCode.ERROR)
            users += [u for u in args.pop(0).split(",") if u]
        elif a in ("-help", "-h", "--help"):
            env.stdout.write(USAGE)
            return 0
        elif a.startswith("-") and a != "-":
            env.stderr.write(USAGE)
            env.stdout.write(f'ERROR! invalid option argument "{control.shown(a)}"\n')
            return int(ExitCode.ERROR)
        else:
            specs += [s for s in a.split(",") if s]
    if not specs and not users:
        env.stderr.write(USAGE)
        env.stdout.write("ERROR! no option argument\n")
        return int(ExitCode.ERROR)

    settings = config.load(env.environ)
    cluster = cluster or load_cluster(env)
    caller = control.caller_of(cluster, settings.user_prefix)
    scope = control.scope_for(cluster, users, user_prefix=settings.user_prefix)
    narrowing = control.narrow(specs) if not users else {}
    listing = control.list_rows(cluster, now=env.clock(), user_prefix=settings.user_prefix, scope=scope,
                                **narrowing)
    answers: list[control.Answer] = []
    done: set[str] = set()

    def delete(row: JobRow) -> None:
        if row.uid in done:
            return
        done.add(row.uid)
        answers.append(control.delete_job(cluster, row, caller=caller, grace=settings.grace_seconds,
                                          force=force, on_kill=killed))

    def killed(job: dict, pods: list) -> None:
        from gridshim import records  # noqa: PLC0415

        records.ensure_records(job, pods, settings=settings, home=env.home, now=env.clock(), killed=True)

    if specs:
        for spec, rows in control.select(listing.rows, specs):
            if not rows:
                answers.append(control.Answer(
                    text=f"The job {control.shown(spec)} of user(s) {control.shown(','.join(users))} does not exist"
                    if users else control.not_exist(spec).text, error=True))
            for row in rows:
                delete(row)
    else:
        for row in control.ordered(listing.rows):
            delete(row)
        forbidden_users = [u for u in users if u != "*" and control.tool_namespace(
            cluster, u[len(settings.user_prefix):]) in listing.forbidden]
        for u in forbidden_users:
            answers.append(control.Answer(
                text=f'{caller} - you do not have the necessary privileges to delete the jobs of user "{control.shown(u)}"',
                error=True))
        owners = {r.owner for r in listing.rows}
        empty = [u for u in users if u not in owners and u not in forbidden_users and u != "*"]
        if empty or (not listing.rows and "*" in users):
            answers.append(control.Answer(
                text=f"There is no job registered for the following users: {control.shown(','.join(empty or users))}",
                error=True))
    for a in answers:
        env.stdout.write(a.text + "\n")
    return int(ExitCode.ERROR) if any(a.error for a in answers) else 0


def main() -> None:
    sys.exit(run("qdel", lambda env: qdel_main(env, argv())))
