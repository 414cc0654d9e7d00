"""qdel [-f] [-u user,…] [job_id[.tasks]|job_name|pattern [-t tasks] …]: delete the tool's jobs, or tasks
of its array jobs, with the grid's messages.

Every answer goes to stdout, one line per job; exit 1 if any answer was an error (SGE qdel). A name
deletes every job of that name; running jobs die gracefully (SIGTERM, then SIGKILL after the site's
grace_seconds; -f: at once) and show `dr` meanwhile.
"""

from __future__ import annotations

from typing import Any

from gridshim import config, control
from gridshim.cli import finish
from gridshim.cli._common import Env, argv, load_cluster, run
from gridshim.errors import ExitCode
from gridshim.model import JobRow
from gridshim.tasks import Range, parse_ranges

# The options this command accepts and how many values each takes: its parser refuses any other, and
# gridshim migrate-check reads scripts with it.
OPTIONS: dict[str, int] = {"-f": 0, "-u": 1, "-t": 1, "-help": 0, "-h": 0, "--help": 0}
USAGE = "usage: qdel [-f] [-u user_list] [job_task_list [-t task_range] | -u user_list]\n"


def parse_task_ranges(text: str) -> list[Range] | None:
    """A task range of qdel (`3`, `2-5`, `1-9:2`, comma lists); None if it is not one (task ids start at 1)."""
    ranges = parse_ranges(text)
    if ranges is None or any(a < 1 for a, _, _ in ranges):
        return None
    return ranges


def qdel_main(env: Env, argv: list[str], cluster: Any = None) -> int:
    """CLUSTER: an already connected cluster (tests pass a fake); by default the tool's kubeconfig."""
    specs: list[str] = []
    tasks: dict[int, list[Range]] = {}  # index in specs → the task ranges asked for (N.T, N -t …)
    users: list[str] = []
    force = False
    args = list(argv)
    while args:
        a = args.pop(0)
        if a.startswith("-") and a != "-" and a not in OPTIONS:
            env.stderr.write(USAGE)
            env.stdout.write(f'ERROR! invalid option argument "{control.shown(a)}"\n')
            return int(ExitCode.ERROR)
        if a == "-t":
            if not args:
                env.stderr.write(USAGE)
                env.stdout.write("ERROR! -t option must have argument\n")
                return int(ExitCode.ERROR)
            value = args.pop(0)
            if not specs or len(specs) - 1 in tasks:
                env.stdout.write(f"found lonely '-t {control.shown(value)}' option (The -t option needs a leading "
                                 "job name).\n")
                return int(ExitCode.ERROR)
            ranges = parse_task_ranges(value)
            if ranges is None:
                env.stdout.write(f'ERROR! "{control.shown(value)}" is an invalid job-task identifier\n')
                return int(ExitCode.ERROR)
            tasks[len(specs) - 1] = ranges
        elif a == "-f":
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
        else:
            for element in (e for e in a.split(",") if e):
                job, dot, task = element.partition(".")
                if dot and control.is_job_id(element):
                    ranges = parse_task_ranges(task)
                    if ranges is None or not job.isdigit():
                        env.stdout.write(f'ERROR! "{control.shown(element)}" is an invalid job-task identifier\n')
                        return int(ExitCode.ERROR)
                    tasks[len(specs)] = ranges
                    specs.append(job)
                else:
                    specs.append(element)
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
        answer = control.delete_job(cluster, row, caller=caller, grace=settings.grace_seconds,
                                    force=force, on_kill=killed)
        answers.append(answer)
        if not answer.error:
            control.release_successors(cluster, row.job_id)  # their jobs wait for this one no more

    def killed(job: dict, pods: list) -> None:
        from gridshim import records  # noqa: PLC0415

        records.ensure_records(job, pods, settings=settings, home=env.home, now=env.clock(), killed=True)

    if specs:
        for i, (spec, rows) in enumerate(control.select(listing.rows, specs)):
            if not rows:
                answers.append(control.Answer(
                    text=f"The job {control.shown(spec)} of user(s) {control.shown(','.join(users))} does not exist"
                    if users else control.not_exist(spec).text, error=True))
            for row in rows:
                if i in tasks:
                    answers.extend(control.delete_tasks(cluster, row, tasks[i], caller=caller,
                                                        grace=settings.grace_seconds, home=env.home, force=force))
                else:
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
    for answer in answers:
        env.stdout.write(answer.text + "\n")
    return int(ExitCode.ERROR) if any(a.error for a in answers) else 0


def main() -> None:
    finish(run("qdel", lambda env: qdel_main(env, argv())))
