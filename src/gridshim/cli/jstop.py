"""jstop NAME: delete the tool's first job with that name (as `job` finds it) and print qdel's message.

No such job: "No job 'NAME' is currently queued or running" on stderr, exit 1 (no final period, as
jstop printed it). Returns as soon as the deletion is registered; the job shows `dr` until it died.
"""

from __future__ import annotations

from typing import Any

from gridshim import config, control
from gridshim.cli import finish
from gridshim.cli._common import Env, argv, load_cluster, run
from gridshim.errors import ExitCode

# jstop takes no options: it passed its first argument, whatever it looks like, to job as the name
# (migrate-check reads scripts with this table).
OPTIONS: dict[str, int] = {}


def jstop_main(env: Env, argv: list[str], cluster: Any = None) -> int:
    """CLUSTER: an already connected cluster (tests pass a fake); by default the tool's kubeconfig."""
    name = argv[0] if argv else ""  # jstop passed "$1" to job, so a missing name is the empty name
    settings = config.load(env.environ)
    cluster = cluster or load_cluster(env)
    listing = control.list_rows(cluster, now=env.clock(), user_prefix=settings.user_prefix, name=name)
    row = control.find_by_name(listing.rows, name)
    if row is None:
        env.stderr.write(f"No job '{control.shown(name)}' is currently queued or running\n")
        return int(ExitCode.ERROR)
    answer = control.delete_job(cluster, row, caller=control.caller_of(cluster, settings.user_prefix),
                                grace=settings.grace_seconds)
    env.stdout.write(answer.text + "\n")
    return int(ExitCode.ERROR) if answer.error else 0


def main() -> None:
    finish(run("jstop", lambda env: jstop_main(env, argv())))
