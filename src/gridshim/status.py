"""Kubernetes objects → grid state (pure). Reads the JSON the API server stores; no I/O, no clock
(the caller passes `now`). Imports render.labels and render.command (decoders), model and errors only.
"""

from __future__ import annotations

import re
import signal
from datetime import datetime
from enum import Enum

from gridshim import quantity
from gridshim.model import RUNNING_STATES, GridState, JobRow, Manifest, tool_of
from gridshim.record import field, record, replace
from gridshim.render import labels as L
from gridshim.render.command import unwrap_command
from gridshim.tasks import (
    A_DELETED_TASKS,
    A_PREDECESSOR_IDS,
    A_PREDECESSORS_REQ,
    PARSED_OPTIONS,
    Range,
    annotation,
    array_of,
    id_list,
    in_ranges,
    job_options,
    parse_ranges,
    pod_index,
    predecessors_of,
    range_to_dstring,
    task_concurrency,
    task_ids,
    user_held,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up, docs/performance.md)
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from typing import Any


def condition(obj: Manifest, ctype: str) -> dict[str, Any] | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype and c.get("status") == "True":
            return c  # type: ignore[no-any-return]  # a condition is an object (the API's schema)
    return None


def job_finished(job: Manifest) -> bool:
    """A Job is over once it has its terminal condition (Complete or Failed)."""
    return condition(job, "Complete") is not None or condition(job, "Failed") is not None


def job_started(job: Manifest, pods: Iterable[Manifest] = ()) -> bool:
    """A pod of it has run or runs: the Job counts a ready, succeeded or failed pod (also one ended but not
    yet counted; `active` counts pending pods too), or one of PODS is Running or over."""
    st = job.get("status") or {}
    uncounted = st.get("uncountedTerminatedPods") or {}
    if st.get("ready") or st.get("succeeded") or st.get("failed") or uncounted.get("failed") \
            or uncounted.get("succeeded"):
        return True
    return any((p.get("status") or {}).get("phase") in ("Running", "Succeeded", "Failed") for p in pods)


@record(frozen=True)
class Outcome:
    """How a finished job ended, in the grid's terms (qsub -sync y)."""

    exit_code: int | None  # None: never ran
    signal_name: str | None = None
    reason: str = ""


def terminated_state(pod: Manifest) -> dict[str, Any] | None:
    """The container's terminated state (current, else the last one), if it has one."""
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        state = cs.get("state") or {}
        if "terminated" in state:
            return state["terminated"]  # type: ignore[no-any-return]  # an object (the API's schema)
        last = cs.get("lastState") or {}
        if "terminated" in last:
            return last["terminated"]  # type: ignore[no-any-return]  # as above
    return None


def signal_name(code: int) -> str | None:
    """The signal an exit status above 128 stands for (137 → SIGKILL); None for other statuses and for
    numbers that are no signal here."""
    if code <= 128:
        return None
    try:
        return signal.Signals(code - 128).name
    except ValueError:
        return None


def job_outcome(job: Manifest, pods: list[Manifest]) -> Outcome:
    """The exit of a finished Job: its newest pod's container exit code; deadline → SIGKILL (h_rt)."""
    failed = condition(job, "Failed")
    if failed and failed.get("reason") == "DeadlineExceeded":
        return Outcome(exit_code=137, signal_name="SIGKILL", reason="DeadlineExceeded")
    newest = sorted(pods, key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or "")
    for pod in reversed(newest):
        term = terminated_state(pod)
        if term is not None and term.get("exitCode") is not None:
            code = int(term["exitCode"])
            return Outcome(exit_code=code, signal_name=signal_name(code), reason=term.get("reason", ""))
    if condition(job, "Complete"):
        return Outcome(exit_code=0)
    return Outcome(exit_code=None, reason=(failed or {}).get("reason", ""))


# -- grid states for qstat, job, jstop, qdel, qmod -----------------------------------------------------
#
# A Job and its pods are first reduced to one `Observation` (what Kubernetes shows), by the detector
# table `DETECTORS` (first match wins); `K8S_TO_GRID` then maps the observation to the grid's state
# letters. Both are tables, so adding a case is one row, not another branch.


class Observation(str, Enum):
    """What the Kubernetes objects of one grid job show, before translation into grid letters."""

    FINISHED = "finished"  # Complete/Failed condition: only `qstat -s z` shows it
    DELETING = "deleting"  # deletionTimestamp on the Job: qdel'ed, its process is still dying
    HELD = "held"  # qsub -h: created suspended with a user hold
    SUSPENDED = "suspended"  # spec.suspend: created but held back (benchmarks, admins)
    NOT_BEFORE = "not-before"  # -a: the wrapper waits for the start time
    CANNOT_START = "cannot-start"  # image/config/start errors, or a quota the job can never fit in
    RUNNING_RESTARTED = "running-restarted"  # running again after its pod or container was replaced
    RUNNING = "running"
    WAITING_RESTARTED = "waiting-restarted"  # qmod -rj: the old pod is gone, the new one not started
    WAITING = "waiting"  # not scheduled yet, waiting for a quota slot, container being created


K8S_TO_GRID: dict[Observation, GridState] = {
    Observation.FINISHED: GridState.DONE,
    Observation.DELETING: GridState.DELETING,
    Observation.HELD: GridState.HELD,
    Observation.SUSPENDED: GridState.QUEUED,
    Observation.NOT_BEFORE: GridState.QUEUED,  # qw, as SGE shows it; its hold kind `a` (qstat -s ha)
    Observation.CANNOT_START: GridState.ERROR,
    Observation.RUNNING_RESTARTED: GridState.RESTARTED,
    Observation.RUNNING: GridState.RUNNING,
    Observation.WAITING_RESTARTED: GridState.RESTARTED_QUEUED,
    Observation.WAITING: GridState.QUEUED,
}

# Container waiting/terminated reasons after which the job cannot start without someone fixing it
# (the grid's Eqw): the kubelet keeps retrying, but the result will not change on its own.
START_ERRORS = frozenset({
    "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull", "RegistryUnavailable",
    "CreateContainerConfigError", "CreateContainerError", "RunContainerError", "StartError",
    "ContainerCannotRun",
})

_QUOTA = r"exceeded quota: [^,]+, requested: (?P<req>.+?), used: (?P<used>.+?), limited: (?P<lim>[^\n]+)"  # compiled on 1st use


def epoch(stamp: str | None) -> float | None:
    """RFC 3339 (the API server's 'Z' form) → epoch seconds."""
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _pairs(text: str) -> dict[str, float]:
    out = {}
    for part in text.split(","):
        key, _, value = part.strip().partition("=")
        q = quantity.parse_or_none(value)
        if key and q is not None:
            out[key] = q
    return out


def quota_never_fits(message: str) -> bool | None:
    """A FailedCreate 'exceeded quota' message: True if the pod alone is larger than the quota (it can
    never start: Eqw), False if it only waits for others to finish (qw), None if it is not a quota message."""
    m = re.search(_QUOTA, message)
    if not m:
        return None
    requested, limited = _pairs(m.group("req")), _pairs(m.group("lim"))
    return any(requested[k] > limited[k] for k in requested if k in limited)


def _container_statuses(pod: Manifest) -> list[dict[str, Any]]:
    status = pod.get("status") or {}
    return list(status.get("initContainerStatuses") or []) + list(status.get("containerStatuses") or [])


def _pod_terminal(pod: Manifest) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def _start_error(pod: Manifest) -> str | None:
    """The message of a container that cannot start, or None."""
    for cs in _container_statuses(pod):
        waiting = (cs.get("state") or {}).get("waiting") or {}
        last = (cs.get("lastState") or {}).get("terminated") or {}
        if waiting.get("reason") in START_ERRORS:
            return f"{waiting['reason']}: {waiting.get('message') or ''}".rstrip(": ")
        if waiting.get("reason") == "CrashLoopBackOff" and last.get("reason") in START_ERRORS:
            return f"{last['reason']}: {last.get('message') or ''}".rstrip(": ")
    return None


def _running_since(pod: Manifest) -> float | None:
    """When the pod's current run started, if a container of it is running (or restarting in place)."""
    status = pod.get("status") or {}
    if status.get("phase") != "Running":
        return None
    for cs in status.get("containerStatuses") or []:
        running = (cs.get("state") or {}).get("running")
        if running:
            return epoch(running.get("startedAt")) or epoch(status.get("startTime"))
    if any((cs.get("lastState") or {}).get("terminated") for cs in status.get("containerStatuses") or []):
        return epoch(status.get("startTime"))  # restarting in place (OnFailure): still this job's run
    return None


def _unschedulable(pod: Manifest) -> str | None:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "PodScheduled" and c.get("status") == "False":
            return c.get("message") or c.get("reason") or "not scheduled yet"
    return None


@record(frozen=True, kw_only=True)
class Facts:
    """Everything the detectors look at, computed once per job."""

    finished: bool
    deleting: bool
    suspended: bool
    waiting_for_start: bool
    user_hold: bool = False
    dependent: bool = False  # -hold_jid: predecessors still blocking (gridshim.io/predecessors)
    start_error: str | None
    running_since: float | None
    restarted: bool
    message: str


# The detector table: (observation, test). First match wins; the order is the grid's precedence
# (d before E before h before R before r/q, as in SGE's state string).
DETECTORS: tuple[tuple[Observation, Callable[[Facts], bool]], ...] = (
    (Observation.DELETING, lambda f: f.deleting),  # before FINISHED: a dying job may already be Failed
    (Observation.FINISHED, lambda f: f.finished),
    (Observation.HELD, lambda f: f.suspended and (f.user_hold or f.dependent)),
    (Observation.SUSPENDED, lambda f: f.suspended),
    (Observation.CANNOT_START, lambda f: f.start_error is not None),
    (Observation.NOT_BEFORE, lambda f: f.waiting_for_start),
    (Observation.RUNNING_RESTARTED, lambda f: f.running_since is not None and f.restarted),
    (Observation.RUNNING, lambda f: f.running_since is not None),
    (Observation.WAITING_RESTARTED, lambda f: f.restarted),
    (Observation.WAITING, lambda f: True),
)


def observe(facts: Facts) -> Observation:
    return next(obs for obs, test in DETECTORS if test(facts))


def looks_stuck(job: Manifest, pods: Sequence[Manifest]) -> bool:
    """A live, unsuspended Job without a live pod: only its Events (FailedCreate) can say why."""
    spec = job.get("spec") or {}
    return (not job_finished(job) and not (job.get("metadata") or {}).get("deletionTimestamp")
            and not spec.get("suspend") and not any(not _pod_terminal(p) for p in pods))


def facts_of(job: Manifest, pods: Sequence[Manifest], events: Sequence[Manifest], *, now: float) -> Facts:
    meta = job.get("metadata") or {}
    spec = job.get("spec") or {}
    status = job.get("status") or {}
    live = sorted((p for p in pods if not _pod_terminal(p)),
                  key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or "")
    restarts = sum(int(cs.get("restartCount") or 0) for p in live for cs in _container_statuses(p))
    running = [t for t in (_running_since(p) for p in live if not (p.get("metadata") or {}).get("deletionTimestamp"))
               if t is not None]
    if not running:  # a pod that is being killed (qmod -rj) still runs until it is gone
        running = [t for t in (_running_since(p) for p in live) if t is not None]
    start_error = next((e for e in (_start_error(p) for p in live) if e), None)
    message = ""
    if start_error is None and not live and looks_stuck(job, pods):
        newest = sorted(events, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
        for ev in reversed(newest):
            text = str(ev.get("message") or "")
            verdict = quota_never_fits(text)
            message = text
            if verdict or (verdict is None and ev.get("reason") == "FailedCreate"):
                start_error = text  # refused by admission (quota it can never fit, policy): Eqw
            break
    if not message:
        message = next((u for u in (_unschedulable(p) for p in live) if u), "")
    not_before = options_not_before(job)
    array = array_of(job) is not None
    # qdel'ed: the Job stays (foreground deletion) until its pods are gone, and it is `dr` for as long
    # as it exists: that is also exactly as long as jsub -once refuses the name (ops.submit treats a
    # Job with a deletionTimestamp as active), so `while qstat -j x; do sleep 1; done; jstart -N x`
    # never races.
    return Facts(
        finished=job_finished(job),
        deleting=bool(meta.get("deletionTimestamp")),
        suspended=bool(spec.get("suspend")),
        user_hold=user_held(job),
        dependent=bool(predecessors_of(job)),
        waiting_for_start=not_before is not None and not_before > now,
        start_error=start_error,
        running_since=min(running) if running else None,
        # an array's failed pods are failed tasks (backoffLimitPerIndex 0), not restarts
        restarted=restarts > 0 or (not array and int(status.get("failed") or 0) > 0),
        message=start_error or message,
    )



# -- arrays, holds and dependencies (docs/arrays-and-holds.md) ------------------------------------------

ARRAY = "gridshim.io/array"  # label on an array Job and its pods


@record(frozen=True, kw_only=True, slots=True)
class Row(JobRow):
    """A JobRow with what arrays, holds and dependencies add. One Row per grid job (job, jstop, qdel,
    qstat -j); `views` are qstat's rows of an array job: one per running task, one per pending group."""

    holds: frozenset[str] = frozenset()  # u: user hold, j: -hold_jid dependency, a: -a start time
    tasks: str = ""  # the ja-task-ID column ('' for a non-array job: 7 spaces)
    array: Range | None = None  # -t first, last (as typed), step
    tc: int | None = None  # -tc
    task_ids: tuple[int, ...] = ()  # every task of the array, index order
    running_tasks: tuple[int, ...] = ()  # with a running pod (qdel N.T deletes that pod)
    dying_tasks: tuple[int, ...] = ()  # their pod is being deleted
    pending_tasks: tuple[int, ...] = ()  # neither started, finished nor deleted
    predecessors_req: str = ""
    predecessor_ids: tuple[int, ...] = ()
    successors: tuple[int, ...] = ()  # waiting jobs that name this one (qstat -j fills it in)
    views: tuple[Row, ...] = field(default=(), repr=False)

    @property
    def state_text(self) -> str:
        """The state letters: the state's, plus `h` when held or dependent, in SGE's fixed order."""
        letters = self.state.value
        if self.holds & {"u", "j"} and "h" not in letters:
            letters = "".join(sorted(set(letters) | {"h"}, key=STATE_ORDER.index))
        return letters

    def index_of(self, task: int) -> int:
        assert self.array is not None
        return (task - self.array[0]) // self.array[2]


STATE_ORDER = "dESThRqrstwz"  # sge_job.c job_get_state_string ('z' for -s z)


def options_not_before(job: Manifest) -> int | None:
    """-a: the not-before time the wrapper got (its 4th fixed argument), from the pod template."""
    parsed = job.get(_PARSED_COMMAND)
    if parsed is not None:
        return parsed[1]  # type: ignore[no-any-return]
    for c in ((((job.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []):
        unwrapped = unwrap_command(list(c.get("command") or []))
        if unwrapped:
            nb = unwrapped.get("not_before")
            return int(nb) if isinstance(nb, int) else None
    return None


def _template(job: Manifest) -> Manifest:
    return (((job.get("spec") or {}).get("template") or {}).get("spec") or {})


def _first_command(job: Manifest) -> dict[str, Any]:
    """The first container's unwrapped command (argv, not-before), {} when it is not gridshim's wrapper."""
    parsed = job.get(_PARSED_COMMAND)
    if parsed is not None:
        return parsed[0]  # type: ignore[no-any-return]
    containers = _template(job).get("containers") or [{}]
    return unwrap_command(list(containers[0].get("command") or [])) or {}


# A Job trimmed by slim_job carries its unwrapped command under this key (no field of a Kubernetes object):
# (the first container's unwrap_command or {}, options_not_before).
_PARSED_COMMAND = "gridshim:command"
_JOB_SPEC_READ = ("suspend", "completions")
A_OPTIONS = L.A_OPTIONS  # all of a Job's spec that rows read, besides its template


def slim_job(job: Manifest) -> Manifest:
    """What job_row, looks_stuck and qstat read of a listed Job, with its options and command parsed once
    (control passes it as the LIST's trim). The pod template, the wrapper script in the container's
    command above all, is ~80 % of a gridshim Job's JSON: without it, a page's full objects are garbage
    as soon as the page is decoded, and qstat's memory is its rows. job_row(slim_job(j)) == job_row(j)."""
    spec = job.get("spec") or {}
    template = _template(job)
    containers = template.get("containers") or [{}]
    slim: dict[str, Any] = {k: job[k] for k in ("kind", "metadata", "status") if k in job}
    slim["spec"] = {k: spec[k] for k in _JOB_SPEC_READ if k in spec}
    # _base_row's uid and gid: the container's securityContext, else the pod's
    sec = containers[0].get("securityContext") or template.get("securityContext") or {}
    slim["spec"]["template"] = {"spec": {"containers": [{"securityContext": {
        k: sec[k] for k in ("runAsUser", "runAsGroup") if k in sec}}]}}
    first = _first_command(job)
    if first:  # the first container is gridshim's wrapper: options_not_before reads the same one
        nb = first.get("not_before")
        parsed = (first, int(nb) if isinstance(nb, int) else None)
    else:
        parsed = (first, options_not_before(job))
    slim[_PARSED_COMMAND] = (_share({k: parsed[0][k] for k in ("argv", "not_before") if k in parsed[0]}), parsed[1])
    slim[PARSED_OPTIONS] = _share(job_options(job))
    meta = slim.get("metadata")
    if isinstance(meta, dict) and A_OPTIONS in (meta.get("annotations") or {}):  # parsed: read from PARSED_OPTIONS
        meta = {**meta, "annotations": {k: v for k, v in meta["annotations"].items() if k != A_OPTIONS}}
    for key, value in (("metadata", meta), ("status", slim.get("status"))):
        if value is not None:
            slim[key] = _share(value)
    return slim


# Strings seen in trimmed Jobs: each Job's keys and short values (labels, conditions, option names) are
# decoded as new objects (list pages are decoded one Job at a time); thousands of equal copies become one.
_SHARED: dict[str, str] = {}
_SHARED_MAX_LEN = 64


def _share(value: Any) -> Any:
    """An equal copy of VALUE whose dict keys and short strings are the ones kept in _SHARED."""
    if isinstance(value, dict):
        return {_SHARED.setdefault(k, k) if isinstance(k, str) else k: _share(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_share(v) for v in value]
    if isinstance(value, str) and len(value) <= _SHARED_MAX_LEN:
        return _SHARED.setdefault(value, value)
    return value


def job_row(job: Manifest, pods: Sequence[Manifest], events: Sequence[Manifest] = (), *,
            now: float, user_prefix: str = "tools.") -> Row:
    """One grid job (a Row) from its Job, the Job's pods and (only if it looks stuck) its Events; an
    array job's Row also has its qstat rows (`views`) and its tasks by state."""
    row = _base_row(job, pods, events, now=now, user_prefix=user_prefix)
    array = array_of(job)
    if array is None:
        return row
    return _array_row(row, job, pods, array, now=now, user_prefix=user_prefix)


def _array_row(row: Row, job: Manifest, pods: Sequence[Manifest], array: Range, *, now: float,
               user_prefix: str) -> Row:
    ids = task_ids(job, array)
    status = job.get("status") or {}
    first, _, step = array
    done: set[int] = set()
    for key in ("completedIndexes", "failedIndexes"):
        text = status.get(key)
        for a, b, s in (parse_ranges(text) or []) if isinstance(text, str) and text else []:
            done.update(first + i * step for i in range(a, min(b, len(ids) - 1) + 1, s))
    deleted_ranges = parse_ranges(annotation(job, A_DELETED_TASKS)) or []
    deleted = {t for t in ids if in_ranges(t, deleted_ranges)}
    running: dict[int, Manifest] = {}
    for pod in pods:
        index = pod_index(pod)
        if index is None or index >= len(ids) or _pod_terminal(pod) or _running_since(pod) is None:
            continue
        running.setdefault(ids[index], pod)
    for t in list(running):
        if t in deleted or t in done:
            del running[t]
    dying = {t for t, p in running.items() if (p.get("metadata") or {}).get("deletionTimestamp")}
    pending = [t for t in ids if t not in done and t not in deleted and t not in running]
    views: list[Row] = []
    for t in sorted(running):
        one = _base_row(job, [running[t]], (), now=now, user_prefix=user_prefix)
        state = GridState.DELETING if t in dying and one.state in RUNNING_STATES else one.state
        views.append(replace(one, state=state, tasks=str(t)))
    if pending and not (row.state is GridState.DELETING and views):
        state = row.state  # nothing runs: the job's own state (qw, hqw, Eqw, dr)
        if running or (state in RUNNING_STATES and state is not GridState.DELETING):
            state = GridState.QUEUED  # the others wait (`h` is added when the job is held)
        views.append(replace(row, state=state, start_time=None, node="", tasks=range_to_dstring(pending, step)))
    return replace(row, array=array, tc=task_concurrency(job), task_ids=tuple(ids),
                   running_tasks=tuple(sorted(running)), dying_tasks=tuple(sorted(dying)),
                   pending_tasks=tuple(pending), views=tuple(views))


def _base_row(job: Manifest, pods: Sequence[Manifest], events: Sequence[Manifest] = (), *,
              now: float, user_prefix: str = "tools.") -> Row:
    meta = job.get("metadata") or {}
    labels = meta.get("labels") or {}
    facts = facts_of(job, pods, events, now=now)
    obs = observe(facts)
    state = K8S_TO_GRID.get(obs, GridState.QUEUED)
    options = job_options(job)
    namespace = meta.get("namespace", "")
    tool = labels.get(L.CREATED_BY) or tool_of(namespace)
    node = ""
    for p in sorted(pods, key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or ""):
        if not _pod_terminal(p) and (p.get("spec") or {}).get("nodeName"):
            node = p["spec"]["nodeName"]
    template = _template(job)
    containers = template.get("containers") or [{}]
    unwrapped = _first_command(job)
    sec = containers[0].get("securityContext") or template.get("securityContext") or {}
    not_before = unwrapped.get("not_before")
    start = facts.running_since
    if start is not None and isinstance(not_before, int):
        start = max(start, float(not_before))
    outcome = job_outcome(job, list(pods)) if facts.finished else None
    queue = str(options.get("queue") or labels.get(L.QUEUE) or "task")
    holds = frozenset(("u",) if facts.user_hold else ()) | frozenset(("j",) if facts.dependent else ()) \
        | frozenset(("a",) if obs is Observation.NOT_BEFORE else ())
    return Row(
        holds=holds,
        predecessors_req=annotation(job, A_PREDECESSORS_REQ),
        predecessor_ids=id_list(annotation(job, A_PREDECESSOR_IDS)),
        job_id=L.job_id_of(meta),
        name=L.name_of(meta),
        owner=f"{user_prefix}{tool}",
        state=state,
        queue=queue,
        submit_time=epoch(meta.get("creationTimestamp")) or 0.0,
        start_time=start if state in RUNNING_STATES else None,
        kind=L.kind_of(meta),
        object_kind=job.get("kind", "Job"),
        object_name=meta.get("name", ""),
        uid=meta.get("uid", ""),
        command_line=(meta.get("annotations") or {}).get(L.A_COMMAND, ""),
        options=options,
        mem_bytes=options.get("mem") if isinstance(options.get("mem"), int) else None,
        exit_code=outcome.exit_code if outcome else None,
        restarts=sum(int(cs.get("restartCount") or 0) for p in pods for cs in _container_statuses(p)),
        message=facts.message,
        finished=facts.finished,
        node=node if state in RUNNING_STATES else "",
        namespace=namespace,
        argv=tuple(str(a) for a in unwrapped.get("argv") or ()),
        run_uid=sec.get("runAsUser"),
        run_gid=sec.get("runAsGroup"),
        not_before=not_before if isinstance(not_before, int) else None,
        observation=obs.value,
    )


def controller_uid(pod: Manifest) -> str:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    if labels.get("batch.kubernetes.io/controller-uid"):
        return str(labels["batch.kubernetes.io/controller-uid"])
    for ref in (pod.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == "Job":
            return str(ref.get("uid", ""))
    return ""


def rows_from_objects(jobs: Sequence[Manifest], pods: Sequence[Manifest], events: Sequence[Manifest] = (),
                      *, now: float, user_prefix: str = "tools.") -> list[Row]:
    """All grid jobs from one LIST of Jobs, one of Pods and (optionally) one of FailedCreate Events."""
    by_job: dict[str, list[Manifest]] = {}
    for p in pods:
        by_job.setdefault(controller_uid(p), []).append(p)
    ev_by_job: dict[str, list[Manifest]] = {}
    for e in events:
        ev_by_job.setdefault(str((e.get("involvedObject") or {}).get("uid", "")), []).append(e)
    rows = []
    for j in jobs:
        uid = (j.get("metadata") or {}).get("uid", "")
        rows.append(job_row(j, by_job.get(uid, []), ev_by_job.get(uid, []), now=now, user_prefix=user_prefix))
    return rows


def task_views(rows: Iterable[JobRow]) -> list[JobRow]:
    """qstat's rows: an array job's running tasks one each and its pending tasks grouped; other jobs as
    they are. An array job whose tasks are all finished or deleted has none."""
    out: list[JobRow] = []
    for r in rows:
        if isinstance(r, Row) and r.array is not None:
            out.extend(r.views)
        else:
            out.append(r)
    return out
