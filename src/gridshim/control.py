"""Use cases for qstat, job, jstop, qdel and qmod -rj: list a tool's grid jobs, find them, delete and
restart them with the grid's messages.

Listing costs one LIST per object kind (Jobs, then Pods, and Events only when a job looks stuck),
each with a label selector and paginated by the cluster; never a call per job. Lookups by exact name
or id narrow the selectors to that name or id. Imports the cluster (by duck type), status, render.labels,
model and errors; never click, argparse or rich.
"""

from __future__ import annotations

import gc
import os
import re

from gridshim import text
from gridshim.errors import ConflictError, ForbiddenError, GridshimError, JobNotFoundError
from gridshim.model import RUNNING_STATES, Cluster, GridState, JobKind, JobRow, Manifest, ordered, tool_of
from gridshim.record import record, replace
from gridshim.render import labels as L
from gridshim.status import Row, condition, controller_uid, epoch, job_finished, looks_stuck, rows_from_objects, slim_job, task_views
from gridshim.tasks import (
    A_DELETED_TASKS,
    A_PREDECESSOR_IDS,
    COMPLETION_INDEX,
    DELETED,
    SUCCESSORS,
    WAITING,
    Range,
    append_marker,
    id_list,
    in_ranges,
    marker,
    parse_ranges,
    range_to_dstring,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up, docs/performance.md)
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

# The Job controller's event when it cannot create a pod (quota, admission): the only reason we read
# Events, and only for jobs without a live pod.
FAILED_CREATE = "involvedObject.kind=Job,reason=FailedCreate"
# qdel of a waiting job: nothing of the program runs yet (at most the -a wrapper's sleep), so its pod
# goes at once, as the grid removed pending jobs at once.
PENDING_GRACE = 0



@record(frozen=True, kw_only=True)
class Listing:
    """The rows found, and the namespaces RBAC did not let us read (qstat -u other: shown as nothing)."""

    rows: list[JobRow]
    forbidden: tuple[str, ...] = ()


@record(frozen=True, kw_only=True)
class Answer:
    """One line of qdel/qmod output (all on stdout, like the grid) and whether it was an error."""

    text: str
    error: bool = False


@record(frozen=True, kw_only=True)
class Scope:
    """Which namespaces to read, from qstat/qdel -u (default: the kubeconfig's own)."""

    namespaces: tuple[str, ...]
    users: tuple[str, ...] = ()


_TOOL_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?$")


shown = text.shown  # user input echoed in a message, kept on one line (a newline in a job name must
#                    not split qdel's one-line answers)


def tool_namespace(cluster: Cluster, tool: str) -> str:
    """Toolforge's naming (tool-NAME), following the kubeconfig's own namespace's form."""
    return f"tool-{tool}" if cluster.namespace.startswith("tool-") else tool


def scope_for(cluster: Cluster, users: Iterable[str], *, user_prefix: str) -> Scope:
    """-u USER,… → namespaces. '*' means every namespace this certificate may list, which for a tool
    is its own (RBAC); other users' namespaces are tried and skipped when forbidden."""
    users = [u for u in users if u]
    if not users:
        return Scope(namespaces=(cluster.namespace,))
    if "*" in users:
        return Scope(namespaces=(cluster.namespace,), users=tuple(users))
    namespaces: list[str] = []
    for u in users:
        if not u.startswith(user_prefix) or not _TOOL_NAME.match(u[len(user_prefix):]):
            continue  # not a tool account: it has no jobs here (qstat -u nosuchuser → nothing)
        ns = tool_namespace(cluster, u[len(user_prefix):])
        if ns not in namespaces:
            namespaces.append(ns)
    return Scope(namespaces=tuple(namespaces), users=tuple(users))


def _tool_of(cluster: Cluster, namespace: str) -> str:
    if namespace == cluster.namespace:
        return cluster.tool
    return tool_of(namespace)


def _list(cluster: Cluster, kind: str, namespace: str, *, trim: Callable[[Manifest], Manifest] | None = None,
          **kw: Any) -> list[Manifest]:
    if trim is not None:
        kw["trim"] = trim
    if namespace == cluster.namespace:
        items, _ = cluster.list(kind, **kw)  # the common case: no namespace argument at all
    else:
        items, _ = cluster.list(kind, namespace=namespace, **kw)
    return items


def _read_namespace(cluster: Cluster, namespace: str, *, now: float, user_prefix: str,
                    extra: dict[str, str]) -> list[Row]:
    """One LIST of Jobs, one of their Pods, and one of FailedCreate Events only if a job looks stuck."""
    selector = L.selector(_tool_of(cluster, namespace), **extra)
    # each Job is trimmed to what its row reads as its page is decoded: the pages' full objects (the
    # wrapper script in every pod template) never pile up (docs/performance.md)
    jobs = _list(cluster, "Job", namespace, selector=selector, trim=slim_job)
    if not jobs:
        return []
    pods = _list(cluster, "Pod", namespace, selector=selector)
    by_uid: dict[str, list[Manifest]] = {}
    for p in pods:
        by_uid.setdefault(controller_uid(p), []).append(p)
    stuck = [j for j in jobs if looks_stuck(j, by_uid.get(j["metadata"].get("uid", ""), []))]
    events: list[Manifest] = []
    if stuck:
        fields = FAILED_CREATE
        if len(stuck) == 1:
            fields += f",involvedObject.uid={stuck[0]['metadata'].get('uid', '')}"
        try:
            events = _list(cluster, "Event", namespace, field_selector=fields)
        except ForbiddenError:
            events = []  # only the reasons are lost: such jobs show qw instead of Eqw
    # The rows make no reference cycles either: without the cyclic GC walking the listed objects again and
    # again, 5,000 rows take half the time (as in cluster.list; docs/performance.md)
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        return rows_from_objects(jobs, pods, events, now=now, user_prefix=user_prefix)
    finally:
        if gc_was_on:
            gc.enable()


def list_rows(cluster: Cluster, *, now: float, user_prefix: str, scope: Scope | None = None,
              name: str | None = None, job_id: int | None = None, include_finished: bool = False) -> Listing:
    """The grid jobs in SCOPE (default: the tool's own namespace), optionally narrowed to one exact
    NAME or JOB_ID by label selector. Finished jobs (Complete/Failed, kept until their TTL) are left
    out unless INCLUDE_FINISHED (qstat -s z).

    A 403 on the tool's own namespace is an error (wrong kubeconfig); on another namespace it only
    means RBAC hides it, and the listing goes on without it.
    """
    scope = scope or Scope(namespaces=(cluster.namespace,))
    extra: dict[str, str] = {}
    if name is not None:
        extra[L.NAME] = L.label_value(name)
    rows: list[JobRow] = []
    forbidden: list[str] = []
    for ns in scope.namespaces:
        try:
            if job_id is not None:
                found = _read_namespace(cluster, ns, now=now, user_prefix=user_prefix,
                                        extra={**extra, L.JOB_ID: str(job_id)})
                if not found:
                    # CronJob runs carry no id label (their id comes from their uid): look among them.
                    found = _read_namespace(cluster, ns, now=now, user_prefix=user_prefix,
                                            extra={**extra, L.COMPONENT: L.COMPONENTS[JobKind.SCHEDULED]})
                found = [r for r in found if r.job_id == job_id]
            else:
                found = _read_namespace(cluster, ns, now=now, user_prefix=user_prefix, extra=extra)
        except ForbiddenError:
            if ns == cluster.namespace:
                raise
            forbidden.append(ns)
            continue
        rows.extend(found)
    if name is not None:
        rows = [r for r in rows if r.name == name]
    if not include_finished:
        rows = [r for r in rows if r.state is not GridState.DONE]
    return Listing(rows=rows, forbidden=tuple(forbidden))


# -- finding -----------------------------------------------------------------------------------------

def is_job_id(spec: str) -> bool:
    """qstat -j / qdel: an element that starts with a digit is a job number, anything else a name pattern."""
    return bool(spec) and spec[0].isdigit()


def matches(row: JobRow, spec: str) -> bool:
    if is_job_id(spec):
        return spec.isdigit() and row.job_id == int(spec)
    import fnmatch  # noqa: PLC0415  (only a pattern reads it)

    return fnmatch.fnmatchcase(row.name, spec)


def select(rows: list[JobRow], specs: Iterable[str]) -> list[tuple[str, list[JobRow]]]:
    """Each requested id/name/pattern with the rows it matches, in the grid's running-first order."""
    ordered_rows = ordered(rows)
    return [(spec, [r for r in ordered_rows if matches(r, spec)]) for spec in specs]


def find_by_name(rows: list[JobRow], name: str) -> JobRow | None:
    """`job NAME`: the first job with exactly this name, running before pending (as job read qstat -xml)."""
    exact = ordered([r for r in rows if r.name == name])
    return exact[0] if exact else None


def narrow(specs: list[str]) -> dict[str, Any]:
    """When a lookup is a single exact name or id, list only that (label selector) instead of everything."""
    if len(specs) != 1:
        return {}
    spec = specs[0]
    if is_job_id(spec):
        return {"job_id": int(spec)} if spec.isdigit() else {}
    if any(c in spec for c in "*?["):
        return {}
    return {"name": spec}


# -- deleting and restarting ---------------------------------------------------------------------------

def _pods_of(row: JobRow) -> str:
    return f"batch.kubernetes.io/controller-uid={row.uid}"


def delete_job(cluster: Cluster, row: JobRow, *, caller: str, grace: int, force: bool = False,
               on_kill: Callable[[Manifest, list[Manifest]], None] | None = None) -> Answer:
    """qdel one job with the grid's message.

    Running (r, Rr, dr): the Job is deleted with propagationPolicy=Foreground, so it stays visible with a
    deletionTimestamp (qstat shows `dr`, `qstat -j` and `job` still find it) until its pods are gone;
    then its pods are deleted with GRACE seconds (SIGTERM, then SIGKILL), or 0 with -f. The Job goes
    first so that the Job controller cannot start a replacement pod for a continuous job.
    Waiting (qw, hqw, Eqw, Rq): removed at once (Background), like the grid's pending jobs.
    Both deletes carry the Job's uid as a precondition, so a newer job with the same object name is
    never touched.
    """
    running = row.state in RUNNING_STATES
    if force and running and on_kill is not None and row.object_kind == "Job":
        # -f kills at once (SIGKILL): the job's wrapper cannot write its accounting record, so it is
        # written now, from what the Job and its pods show (records.py)
        try:
            job = cluster.get("Job", row.object_name)
            on_kill(job, _list(cluster, "Pod", cluster.namespace, selector=_pods_of(row)))
        except (JobNotFoundError, ForbiddenError):
            pass
    try:
        if force and running:
            # -f: the pods go first, with grace 0. Deleted after the Job, the garbage collector's own delete of
            # them (Foreground, the pods' full grace period: SIGTERM) can reach the node first, and the wrapper
            # would write a record of its own beside the one just written. The second pass below catches a
            # replacement pod the Job controller made in between.
            cluster.delete_collection("Pod", selector=_pods_of(row), grace=0)
        try:
            cluster.delete(row.object_kind, row.object_name, uid=row.uid,
                           propagation="Foreground" if running else "Background")
        except (JobNotFoundError, ConflictError):
            pass  # it is already gone (or replaced by another object of that name): nothing left to stop
        cluster.delete_collection("Pod", selector=_pods_of(row),
                                  grace=0 if force else (grace if running else PENDING_GRACE))
    except ForbiddenError:
        return Answer(text=f'{caller} - you do not have the necessary privileges to delete the job "{row.job_id}"',
                      error=True)
    if running:
        return Answer(text=f"{caller} has registered the job {row.job_id} for deletion")
    return Answer(text=f"{caller} has deleted job {row.job_id}")


def restart_job(cluster: Cluster, row: JobRow, *, grace: int) -> Answer:
    """qmod -rj one job: a continuous job's pod is deleted (with the grace period) and the Job controller
    starts a new one; a task-queue job is refused as the grid refused it (rerun FALSE)."""
    task = f"{row.job_id}.1"
    if row.state is GridState.DELETING:
        return Answer(text=f"The job {task} is already in deleted state. No rescheduling!", error=True)
    if row.state not in RUNNING_STATES:
        return Answer(text=f"The job {task} is not running; there is nothing to reschedule.", error=True)
    if row.kind is not JobKind.CONTINUOUS:
        return Answer(text=f"The job {task} is running in queue {row.queue}@{row.node} where jobs are not "
                           "rerunable.", error=True)
    cluster.delete_collection("Pod", selector=_pods_of(row), grace=grace)
    return Answer(text=f"Pushed rescheduling of job {task}")


# -- array tasks and dependencies -------------------------------------------------------------------

__all__ = ["task_views"]  # qstat's rows (status.task_views), for the edge
CONFLICT_RETRIES = 10


def with_successors(cluster: Cluster, rows: list[JobRow], *, home: str) -> list[JobRow]:
    """qstat -j: each row with the waiting jobs whose predecessor-ids name it (`jid_successor_list`).
    Only a job that has the control marker qsub writes when it submits a successor
    ($HOME/.gridshim/successors/$JOB_ID) can have one: then one LIST of the tool's waiting Jobs; none
    is shown if RBAC hides them."""
    if not any(os.path.exists(marker(home, SUCCESSORS, r.job_id)) for r in rows):
        return rows
    try:
        waiting = _list(cluster, "Job", cluster.namespace, selector=L.selector(cluster.tool, **{WAITING: "true"}))
    except ForbiddenError:
        return rows
    named: dict[int, list[int]] = {}
    for j in waiting:
        meta = j.get("metadata") or {}
        for pred in id_list((meta.get("annotations") or {}).get(A_PREDECESSOR_IDS) or ""):
            named.setdefault(pred, []).append(L.job_id_of(meta))
    return [replace(r, successors=tuple(sorted(set(named[r.job_id])))) if isinstance(r, Row) and named.get(r.job_id)
            else r for r in rows]


def release_successors(cluster: Cluster, job_id: int, tasks: list[int] | None = None) -> None:
    """Let the jobs waiting for what qdel removed go on (gridshim.depends.release). A failure here never
    fails qdel: `gridshim release --sweep` (the CronJob) drops predecessors that are gone."""
    from gridshim import depends  # noqa: PLC0415  (only qdel releases; qstat does not pay for the import)

    try:
        depends.release(cluster, job_id, tasks)
    except GridshimError:
        pass


def _add_deleted_tasks(cluster: Cluster, row: Row, tasks: list[int]) -> None:
    """Add TASKS to the Job's deleted-tasks annotation: an update with its resourceVersion, re-read and
    retried on 409 Conflict, so concurrent qdels never lose each other's tasks."""
    assert row.array is not None
    for _ in range(CONFLICT_RETRIES):
        job = cluster.get("Job", row.object_name)
        meta = job.setdefault("metadata", {})
        if meta.get("uid") != row.uid:
            return  # replaced by another Job of that name
        ann = meta.setdefault("annotations", {})
        old = parse_ranges(ann.get(A_DELETED_TASKS) or "") or []
        ids = {t for t in row.task_ids if in_ranges(t, old)} | set(tasks)
        ann[A_DELETED_TASKS] = range_to_dstring(ids, row.array[2])
        try:
            cluster.replace(job)
            return
        except ConflictError:
            continue
    raise ConflictError(f"job {row.job_id} kept changing while qdel updated it; try again")


def delete_tasks(cluster: Cluster, row: JobRow, ranges: list[Range], *, caller: str, grace: int,
                 home: str, force: bool = False) -> list[Answer]:
    """qdel N.T / N.a-b:s / N -t …: the grid's answers (qsub-behaviour §4.3).

    Running tasks: their pod is deleted (selected by the completion index; the index fails, as the
    grid's killed task). Pending tasks: listed in the Job's deleted-tasks annotation and the wrapper's
    marker file, so they never run. When nothing is left pending or running, the whole Job goes.
    Task ids outside the job are ignored; a non-array job has the one task 1.
    """
    if not isinstance(row, Row) or row.array is None:
        if in_ranges(1, ranges):
            answer = delete_job(cluster, row, caller=caller, grace=grace, force=force)
            if not answer.error:
                release_successors(cluster, row.job_id)
            return [answer]
        return []
    wanted = [t for t in row.task_ids if in_ranges(t, ranges)]
    dying = [t for t in wanted if t in row.dying_tasks]
    running = [t for t in wanted if t in row.running_tasks and t not in row.dying_tasks]
    pending = [t for t in wanted if t in row.pending_tasks]
    answers: list[Answer] = []
    try:
        for t in running:
            cluster.delete_collection("Pod", selector=f"{_pods_of(row)},{COMPLETION_INDEX}={row.index_of(t)}",
                                      grace=0 if force else grace)
            answers.append(Answer(text=f"{caller} has registered the job-array task {row.job_id}.{t} for deletion"))
        answers += [Answer(text=f"job {row.job_id} is already in deletion") for _ in dying[:1]]
        left = (set(row.pending_tasks) - set(pending)) | set(row.running_tasks)
        if pending and left:
            append_marker(home, DELETED, row.job_id, map(str, pending))  # the wrapper reads it
            _add_deleted_tasks(cluster, row, pending)
        if pending:
            answers.append(Answer(text=f"{caller} has deleted job-array task {row.job_id}.{pending[0]}"
                                  if len(pending) == 1 else
                                  f"{caller} has deleted job-array tasks {range_to_dstring(pending, row.array[2])} "
                                  f"of job {row.job_id}"))
            if not left:
                try:
                    cluster.delete(row.object_kind, row.object_name, uid=row.uid, propagation="Background")
                except (JobNotFoundError, ConflictError):
                    pass
                answers.append(Answer(text=f"{caller} has deleted job {row.job_id}"))
                release_successors(cluster, row.job_id)
            else:
                release_successors(cluster, row.job_id, pending)
    except ForbiddenError:
        answers.append(Answer(text=f'{caller} - you do not have the necessary privileges to delete the job '
                                   f'"{row.job_id}"', error=True))
    except OSError as e:
        answers.append(Answer(text=f"cannot mark the tasks of job {row.job_id} as deleted: {e.strerror}", error=True))
    return answers


def not_exist(spec: str) -> Answer:
    return Answer(text=f'denied: job "{shown(spec)}" does not exist', error=True)


def caller_of(cluster: Cluster, user_prefix: str) -> str:
    return f"{user_prefix}{cluster.tool}"


def remove_finished(cluster: Cluster, *, now: float, user_prefix: str, keep_seconds: float = 0.0,
                    limit: int | None = None,
                    before_delete: Callable[[Manifest, list[Manifest]], bool] | None = None) -> int:
    """Make room under the namespace's job quota: delete up to LIMIT (None: all) of this tool's finished
    Jobs (Complete or Failed, kept only for their TTL), the longest finished first, so that `qstat -s z`
    keeps the recent ones. Each is deleted only when BEFORE_DELETE(job, pods) says its accounting records
    are safe (records.make_safe: written and found in the file; a Job whose record cannot be written
    stays), and with a uid precondition (a Job replaced meanwhile is left alone). Jobs that finished
    less than KEEP_SECONDS ago stay. Returns how many were deleted."""
    jobs = _list(cluster, "Job", cluster.namespace, selector=L.selector(cluster.tool))
    finished = [j for j in jobs if job_finished(j) and not (j.get("metadata") or {}).get("deletionTimestamp")]

    def ended(j: Manifest) -> str:
        cond = condition(j, "Complete") or condition(j, "Failed") or {}
        return str(cond.get("lastTransitionTime") or (j.get("metadata") or {}).get("creationTimestamp") or "")

    removed = 0
    for job in sorted(finished, key=ended):
        if limit is not None and removed >= limit:
            break
        meta = job["metadata"]
        if keep_seconds and _age(ended(job), now) < keep_seconds:
            continue
        if before_delete is not None:
            pods = _list(cluster, "Pod", cluster.namespace, selector=f"batch.kubernetes.io/controller-uid={meta['uid']}")
            if not before_delete(job, pods):
                continue
        try:
            cluster.delete("Job", meta["name"], uid=meta["uid"], propagation="Background")
            removed += 1
        except (JobNotFoundError, ConflictError):
            pass
    return removed


def _age(stamp: str, now: float) -> float:
    when = epoch(stamp)
    return float("inf") if when is None else now - when
