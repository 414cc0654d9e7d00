"""qstat: the tool's grid jobs in the grid's layouts (plain, -j, -xml, -xml -j) and an opt-in live view.

Edge only: parse the grid's options, call control.list_rows once, filter, hand the rows to output.
Exit 0 normally (also with no jobs, -u nosuchuser and -xml -j unknown); 1 for -j with no matching
job and for option errors, as SGE's qstat.
"""

from __future__ import annotations

from gridshim import config, control
from gridshim.cli import finish
from gridshim.cli._common import Env, argv, console, load_cluster, run
from gridshim.errors import ExitCode
from gridshim.model import GridState, JobRow
from gridshim.record import field, record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up, docs/performance.md)
if TYPE_CHECKING:
    from typing import Any

USAGE = ("usage: qstat [-u user_list] [-s {p|r|s|z|hu|ho|hs|hd|hj|ha|h|a}[+]] [-q wc_queue_list] "
         "[-j job_list] [-r] [-xml] [--watch]\n")
# The options this command accepts and how many values each takes: its parser refuses any other, and
# gridshim migrate-check reads scripts with it.
OPTIONS: dict[str, int] = {"-u": 1, "-s": 1, "-q": 1, "-j": 1, "-r": 0, "-xml": 0, "--watch": 0, "-watch": 0,
                           "-help": 0, "-h": 0, "--help": 0}  # -j's value is optional
# qstat -s: letters, 'h' with an optional hold kind; 'a' is psr, 'h' every hold. Default: prs.
HOLD_KINDS = frozenset("uosdja")
DEFAULT_STATES = frozenset("prs")
# gridshim's holds: a -a start time in the future ('ha', "jobs with a start time in future"), qsub -h
# and qhold ('hu', a user hold), -hold_jid ('hj', a job dependency); status.Row.holds has them.
HOLDS_OF_STATE = {GridState.HELD: frozenset("a")}
USER_HOLD = frozenset("u")


class OptionError(Exception):
    """A bad qstat option: SGE prints it and the usage on stderr and exits 1."""


@record
class Options:
    users: list[str] = field(default_factory=list)
    states: frozenset[str] = DEFAULT_STATES
    holds: frozenset[str] = frozenset()
    queues: list[str] = field(default_factory=list)
    jobs: list[str] | None = None
    xml: bool = False
    resources: bool = False
    watch: bool = False
    help: bool = False


def parse_states(text: str) -> tuple[frozenset[str], frozenset[str]]:
    """-s STATES → (state letters, hold kinds)."""
    states: set[str] = set()
    holds: set[str] = set()
    i = 0
    while i < len(text):
        c = text[i]
        if c == "h":
            if i + 1 < len(text) and text[i + 1] in HOLD_KINDS:
                holds.add(text[i + 1])
                i += 2
                continue
            holds |= HOLD_KINDS
        elif c == "a":
            states |= set("psr")
        elif c in "prsz":
            states.add(c)
        elif c != "+":
            raise OptionError(f'ERROR! invalid state "{control.shown(text)}" for -s option')
        i += 1
    return frozenset(states), frozenset(holds)


def parse(argv: list[str]) -> Options:
    opts = Options()
    args = list(argv)
    while args:
        a = args.pop(0)

        def value() -> str:
            if not args:
                raise OptionError(f'ERROR! {control.shown(a)} option must have argument')  # noqa: B023  (called in this iteration)
            return args.pop(0)

        if a not in OPTIONS:
            raise OptionError(f'ERROR! invalid option argument "{control.shown(a)}"')
        if a == "-u":
            opts.users += [u for u in value().split(",") if u]
        elif a == "-s":
            opts.states, opts.holds = parse_states(value())
        elif a == "-q":
            opts.queues += [q for q in value().split(",") if q]
        elif a == "-j":
            opts.jobs = []
            if args and not args[0].startswith("-"):
                opts.jobs = [j for j in args.pop(0).split(",") if j]
        elif a == "-xml":
            opts.xml = True
        elif a == "-r":
            opts.resources = True
        elif a in ("--watch", "-watch"):
            opts.watch = True
        else:  # -help, -h, --help
            opts.help = True
    return opts


def state_filter(row: JobRow, opts: Options) -> bool:
    """-s: running rows with r, pending with p (holds included), finished with z, holds by kind."""
    if row.state is GridState.DONE:
        return "z" in opts.states
    if row.is_running:
        return "r" in opts.states
    if "p" in opts.states:
        return True
    kinds = frozenset(getattr(row, "holds", frozenset())) | HOLDS_OF_STATE.get(row.state, frozenset())
    if row.options.get("hold"):
        kinds |= USER_HOLD
    return bool(kinds & opts.holds)


def queue_filter(row: JobRow, patterns: list[str]) -> bool:
    """-q wc_queue_list: a queue name (task, continuous) or queue@host, wildcards allowed."""
    if not patterns:
        return True
    import fnmatch  # noqa: PLC0415  (only -q reads patterns)

    names = [row.queue] + ([f"{row.queue}@{row.node}"] if row.node else [])
    return any(fnmatch.fnmatchcase(n, p) for n in names for p in patterns)


def qstat_main(env: Env, argv: list[str], cluster: Any = None) -> int:
    """CLUSTER: an already connected cluster (tests pass a fake); by default the tool's kubeconfig."""
    try:
        opts = parse(argv)
    except OptionError as e:
        env.stderr.write(f"error: {e}\n{USAGE}")
        return int(ExitCode.ERROR)
    if opts.help:
        env.stdout.write(USAGE)
        return 0
    settings = config.load(env.environ)
    cluster = cluster or load_cluster(env)
    if opts.jobs is not None:
        return _show_jobs(env, cluster, opts, settings.user_prefix)

    from gridshim.output.plain import format_plain  # noqa: PLC0415
    from gridshim.output.xml import format_xml  # noqa: PLC0415

    scope = control.scope_for(cluster, opts.users, user_prefix=settings.user_prefix)

    def fetch() -> list[JobRow]:
        listing = control.list_rows(cluster, now=env.clock(), user_prefix=settings.user_prefix, scope=scope,
                                    include_finished="z" in opts.states)
        if listing.forbidden and env.stderr_isatty():
            env.stderr.write(f"qstat: note: not allowed to list jobs in {', '.join(listing.forbidden)}\n")
        return [r for r in control.task_views(listing.rows) if state_filter(r, opts) and queue_filter(r, opts.queues)]

    live = console(env) if opts.watch and not opts.xml else None  # on a terminal that can redraw; else plain
    if live is not None:
        from gridshim.output.table import watch  # noqa: PLC0415

        try:
            watch(fetch, console=live, title=lambda: f"{cluster.namespace} — qstat --watch (Ctrl-C ends)")
        except KeyboardInterrupt:
            pass
        return 0
    rows = fetch()
    env.stdout.write(format_xml(rows) if opts.xml else format_plain(rows, resources=opts.resources))
    return 0


def _show_jobs(env: Env, cluster: object, opts: Options, user_prefix: str) -> int:
    """qstat -j id|name|pattern[,…]: the detailed layout; 'Following jobs do not exist' + exit 1 if none."""
    from gridshim.output.plain import format_details, not_found  # noqa: PLC0415
    from gridshim.output.xml import format_xml_details, format_xml_unknown  # noqa: PLC0415

    specs = opts.jobs or []
    if not specs:
        return 0  # `qstat -j` alone: the grid printed global scheduler messages; there are none here
    listing = control.list_rows(cluster, now=env.clock(), user_prefix=user_prefix,  # type: ignore[arg-type]
                                include_finished="z" in opts.states, **control.narrow(specs))
    seen: set[str] = set()
    found: list[JobRow] = []
    for _spec, rows in control.select(listing.rows, specs):
        for r in rows:
            if r.uid not in seen:
                seen.add(r.uid)
                found.append(r)
    if not found:
        if opts.xml:
            env.stdout.write(format_xml_unknown([control.shown(s) for s in specs]))
            return 0
        env.stderr.write(not_found([control.shown(s) for s in specs]))
        return int(ExitCode.ERROR)
    if not opts.xml:
        found = control.with_successors(cluster, found, home=env.home)  # type: ignore[arg-type]
    env.stdout.write(format_xml_details(found) if opts.xml else format_details(found))
    return 0


def main() -> None:
    finish(run("qstat", lambda env: qstat_main(env, argv())))
