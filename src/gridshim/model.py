"""Domain types shared by every layer (leaf: imports nothing from gridshim).

Neutral words only: no Grid Engine flags and no Kubernetes fields here.
"""

from __future__ import annotations

from enum import Enum

from gridshim.record import field, record  # a leaf: dataclasses without the code generation

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (start-up, docs/performance.md)
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any, Protocol

    Manifest = dict[str, Any]
else:
    Protocol = object  # Cluster is a port described for type checkers; nothing checks it at run time
    Manifest = dict


def tool_of(namespace: str) -> str:
    """Toolforge's rule: the tool is its namespace without the `tool-` prefix."""
    return namespace[5:] if namespace.startswith("tool-") else namespace


class JobKind(str, Enum):
    """How a job runs: once, kept running until it exits 0, or on a schedule."""

    ONE_OFF = "one-off"
    CONTINUOUS = "continuous"
    SCHEDULED = "scheduled"


class Preset(str, Enum):
    """Which command name was used: jstart and qcronsub are jsub with options forced on."""

    JSUB = "jsub"
    JSTART = "jstart"  # -continuous -once
    QCRONSUB = "qcronsub"  # -once


@record(frozen=True, kw_only=True)
class JobRequest:
    """A fully decided job: what translate() produces and render() turns into manifests."""

    name: str  # the grid job name, as the user gave it (may hold characters Kubernetes forbids)
    kind: JobKind
    tool: str
    argv: tuple[str, ...]  # program (resolved) + its arguments, byte-exact; empty when `shell` is set
    shell: str | None = None  # a shell command line (crontab entries that are not jsub lines)
    command_line: str = ""  # what the user typed, for display (qstat -j job_args, annotations)
    mem_bytes: int
    once: bool
    stdout: str  # absolute paths, resolved against the tool's home at submit time
    stderr: str
    merge: bool = False
    stdin: str | None = None
    workdir: str
    home: str
    env: tuple[tuple[str, str], ...] = ()
    umask: int = 0o007
    image: str
    release: str | None = None
    queue: str = "task"
    wall_seconds: int | None = None  # -l h_rt (qsub: the earlier of h_rt and s_rt + the queue's notify time)
    soft_seconds: int | None = None  # -l s_rt before h_rt: the wrapper sends SIGUSR1 this long after the start
    schedule: str | None = None  # SCHEDULED only: the cron line Kubernetes runs
    schedule_text: str | None = None  # the schedule as the user typed it (@daily …)
    timezone: str | None = None
    uid: int | None = None
    token: str = ""  # client-generated, lets a retried create recognise its own object
    options: dict[str, Any] = field(default_factory=dict)  # grid options kept for read-back (qstat -j)
    not_before: int | None = None  # -a: epoch seconds before which the program must not start
    job_id: int = 0  # the grid job number shown by qstat (derived from token)
    cpus: int | None = None  # whole CPUs (parallel slots); None = the site's default request
    script_text: str | None = None  # a job script copied at submission; the wrapper writes it out and runs it
    notify: bool = False  # warn the program with SIGUSR2 before it is killed
    held: bool = False  # created on hold: no pod until released
    rerun: bool | None = None  # None = the default; True: run again after its node is lost
    submitted: int = 0  # epoch seconds of the submission (0: unknown, e.g. a CronJob run)
    tasks: tuple[int, int, int] | None = None  # an array job (qsub -t): first, last as typed, step
    task_concurrency: int = 0  # qsub -tc: at most this many tasks at once (0: no limit of its own)


class GridState(str, Enum):
    """Grid Engine state codes as qstat prints them."""

    QUEUED = "qw"
    HELD = "hqw"
    ERROR = "Eqw"
    RUNNING = "r"
    RESTARTED = "Rr"
    RESTARTED_QUEUED = "Rq"  # qmod -rj: the old run is gone, the new one has not started yet
    DELETING = "dr"
    DONE = "z"  # finished, only with qstat -s z


@record(frozen=True, kw_only=True, slots=True)
class JobRow:
    """One job as qstat, job, jstop and qdel see it (decoded from Kubernetes objects)."""

    job_id: int
    name: str
    owner: str  # tools.NAME
    state: GridState
    queue: str
    submit_time: float  # epoch seconds
    start_time: float | None
    kind: JobKind
    object_kind: str  # Job | CronJob
    object_name: str
    uid: str
    command_line: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    mem_bytes: int | None = None
    exit_code: int | None = None
    restarts: int = 0
    message: str = ""  # why it is Eqw / pending, for qstat -j "error reason" / "scheduling info"
    finished: bool = False
    node: str = ""  # where it runs (qstat's queue@host); empty unless running
    namespace: str = ""
    argv: tuple[str, ...] = ()  # program and arguments as the wrapper runs them
    run_uid: int | None = None
    run_gid: int | None = None
    not_before: int | None = None  # -a, epoch seconds
    observation: str = ""  # what Kubernetes showed (status.Observation value), for -debug and tests

    @property
    def is_running(self) -> bool:
        """r, Rr, dr count as running (job's exit 1, qstat's running section), the rest as queued."""
        return self.state in RUNNING_STATES

    @property
    def shown_time(self) -> float:
        """Start time if running, else submit time (qstat's 'submit/start at', JAT_start_time)."""
        return self.start_time if self.is_running and self.start_time is not None else self.submit_time

    @property
    def listing_key(self) -> tuple[int, float, int]:
        """qstat's order: running, then pending, then finished (-s z); oldest first within each. Ids are
        not sequential like the grid's, so time keeps the grid's oldest-first order."""
        section = 2 if self.state is GridState.DONE else (0 if self.is_running else 1)
        return (section, self.shown_time, self.job_id)


RUNNING_STATES = frozenset({GridState.RUNNING, GridState.RESTARTED, GridState.DELETING})


def ordered(rows: list[JobRow]) -> list[JobRow]:
    """qstat's order (JobRow.listing_key): running, then pending, then finished; oldest first within each."""
    return sorted(rows, key=lambda r: r.listing_key)


class Cluster(Protocol):
    """The port every use case talks to: one tool's namespace on an API server, speaking dicts.

    `cluster.KubeCluster` implements it; unit tests use fakes. Errors are gridshim's (errors.py).
    """

    namespace: str

    @property
    def tool(self) -> str: ...
    def create(self, manifest: Manifest) -> Manifest: ...
    def get(self, kind: str, name: str) -> Manifest: ...
    def replace(self, manifest: Manifest) -> Manifest: ...
    def list(self, kind: str, *, selector: str | None = None, field_selector: str | None = None,
             namespace: str | None = None, trim: Callable[[Manifest], Any] | None = None,
             ) -> tuple[list[Any], str]: ...  # TRIM: what the caller keeps of each object, applied as read
    def delete(self, kind: str, name: str, *, uid: str | None = None, resource_version: str | None = None,
               grace: int | None = None, propagation: str = "Background") -> Manifest | None: ...
    def delete_collection(self, kind: str, *, selector: str, grace: int | None = None) -> None: ...
    def watch(self, kind: str, *, resource_version: str, selector: str | None = None,
              field_selector: str | None = None, timeout: float = 300) -> Iterator[tuple[str, Manifest]]: ...
