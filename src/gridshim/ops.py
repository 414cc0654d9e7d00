"""Use cases: submit a job, wait for it. They take a `KubeCluster`-like object and plain data.

Imports cluster (by duck type), render, status, model and errors; never click or rich.
"""

from __future__ import annotations

import gc
import time

from gridshim.errors import ClusterError, GridshimError, JobExistsError, JobNotFoundError, QuotaExceededError
from gridshim.model import Cluster, JobRequest, Manifest
from gridshim.render import labels as L
from gridshim.status import Outcome, condition, job_finished, job_outcome, job_started, terminated_state
from gridshim.tasks import COMPLETION_INDEX, array_of, deleted_tasks, id_set, pod_index, task_ids

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up, docs/performance.md)
if TYPE_CHECKING:
    from collections.abc import Callable

# A -once submission meets a finished job of the same name at most this often before giving up
# (each time it deletes the finished one with a uid precondition and tries again).
ONCE_ATTEMPTS = 5



class AlreadyActiveError(GridshimError):
    """-once: a queued or running job with this name exists (jsub's message, exit 1)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"there is a job named '{name}' already active")


def quota_message(err: QuotaExceededError) -> QuotaExceededError:
    """The API server's quota refusal in qsub's words (exit 25)."""
    import re  # noqa: PLC0415

    m = re.search(r"used: [^,]*count/jobs\.batch=(\d+), limited: [^,]*count/jobs\.batch=(\d+)", err.message)
    if m:
        text = (f"Unable to run job: job rejected: only {m.group(2)} jobs are allowed per user "
                f"(current job count: {m.group(1)})")
    else:
        detail = err.message.split("exceeded quota: ", 1)[-1]
        text = f"Unable to run job: job rejected: exceeded quota: {detail}"
    return QuotaExceededError(text + "\nExiting.", detail=err.detail)


def _live_same_name(cluster: Cluster, req: JobRequest, skip: str) -> bool:
    items, _ = cluster.list("Job", selector=L.selector(req.tool, **{L.NAME: L.label_value(req.name)}))
    return any(not job_finished(j) and j["metadata"]["name"] != skip
               and L.name_of(j["metadata"]) == req.name for j in items)


def submit(cluster: Cluster, manifest: Manifest, req: JobRequest,
           make_room: Callable[[int], int] | None = None, *,
           sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> Manifest:
    """Create the job. With -once the API server decides: the object is named after the job, so a
    second live one is refused with 409; a finished one in the way is removed first.

    Finished jobs never block new ones: when the namespace's job quota refuses the create,
    MAKE_ROOM(N) removes up to N finished Jobs (oldest first, each once its accounting record is safe)
    and returns how many it removed, and the create is tried again. The quota's used count falls only
    when the quota controller has seen the deletes (asynchronously, usually well under a second): a
    refusal that still shows the old count is retried after 0.1, 0.2, 0.4 … (at most 1) seconds, within
    the cluster's retry budget (GRIDSHIM_RETRY_SECONDS); room is made again when the count fell and the
    quota is still full (another submitter took the place), or when it has not fallen for 5 s."""
    import re  # noqa: PLC0415  (only a refusal reads it)

    try:
        return _submit(cluster, manifest, req)
    except QuotaExceededError as e:
        refusal = e
    counts = re.compile(r"only (\d+) jobs are allowed per user \(current job count: (\d+)\)")
    if make_room is None or not counts.search(refusal.message):
        raise refusal
    budget = getattr(cluster, "retry_seconds", None)
    deadline = clock() + (30.0 if budget is None else float(budget))
    delay, target, settle_by = 0.1, None, 0.0
    while True:
        m = counts.search(refusal.message)
        if m is None:
            raise refusal
        limit, used = int(m.group(1)), int(m.group(2))
        if target is not None and clock() > deadline:
            raise refusal
        if target is None or used <= target or clock() >= settle_by:
            removed = make_room(max(1, used - limit + 1))
            if not removed:
                raise refusal
            target, settle_by, delay = used - removed, clock() + 5.0, 0.1
        elif clock() + delay > deadline:
            raise refusal
        else:
            sleep(delay)
            delay = min(delay * 2, 1.0)
        try:
            return _submit(cluster, manifest, req)
        except QuotaExceededError as e:
            refusal = e


def _submit(cluster: Cluster, manifest: Manifest, req: JobRequest) -> Manifest:
    try:
        if not req.once:
            return cluster.create(manifest)
        name = manifest["metadata"]["name"]
        # Jobs submitted without -once do not hold the name, so look for a live one of them first.
        if _live_same_name(cluster, req, skip=name):
            raise AlreadyActiveError(req.name)
        for _ in range(ONCE_ATTEMPTS):
            try:
                return cluster.create(manifest)
            except JobExistsError:
                pass
            try:
                existing = cluster.get("Job", name)
            except JobNotFoundError:
                continue  # it finished and was cleaned up meanwhile: try again
            meta = existing["metadata"]
            if (meta.get("annotations") or {}).get(L.A_TOKEN) == req.token and req.token:
                return existing  # our own create, whose answer was lost
            if not job_finished(existing) or meta.get("deletionTimestamp"):
                raise AlreadyActiveError(req.name)
            if (meta.get("labels") or {}).get(L.MANAGED_BY) != L.MANAGER:
                raise GridshimError(f"a finished Job named {name} that gridshim did not create is in the way of "
                                    f"'{req.name}'; it was left alone",
                                    hint=f"delete it with: kubectl delete job {name}")
            try:
                cluster.delete("Job", name, uid=meta["uid"], propagation="Background")
            except (JobNotFoundError, ClusterError, GridshimError):
                pass  # someone else removed or replaced it: the next create decides
        raise AlreadyActiveError(req.name)
    except QuotaExceededError as e:
        # -once under a full quota: the quota is checked before the name, so a loser of a race for the
        # name would be told "try later" (25); it must hear what it would hear on a roomy quota
        if req.once and _once_taken(cluster, req, manifest["metadata"].get("name", "")):
            raise AlreadyActiveError(req.name) from None
        raise quota_message(e) from None


def _once_taken(cluster: Cluster, req: JobRequest, name: str) -> bool:
    """Is a live job holding this -once name (ours under its object name, or a plain one)?"""
    try:
        existing = cluster.get("Job", name) if name else None
    except (JobNotFoundError, GridshimError):
        existing = None
    if existing is not None and not job_finished(existing):
        return True
    try:
        return _live_same_name(cluster, req, skip=name)
    except GridshimError:
        return False


# A job deleted while it ran (qdel, jstop) ended by a signal, as SGE reports it for qdel.
KILLED = Outcome(exit_code=137, signal_name="SIGKILL", reason="deleted")
# A job that ran but whose end can no longer be read (pods gone): SGE's "No information available".
UNKNOWN = Outcome(exit_code=None, reason="unknown")


def _finished_at(pods: list[Manifest]) -> str:
    ends = [(terminated_state(p) or {}).get("finishedAt") or "" for p in pods]
    return max(ends, default="")


# How many completion indexes one pod LIST names in its label selector (`… in (0,1,…)`), to keep the URL short.
INDEX_SELECTOR_CHUNK = 100


def new_indexes(job: Manifest, done: set[int]) -> list[int]:
    """The completion indexes of an array job that finished (completedIndexes, failedIndexes) and whose
    task ids are not in DONE."""
    tasks = array_of(job)
    if tasks is None:
        return []
    st = job.get("status") or {}
    ended = id_set(st.get("completedIndexes")) | id_set(st.get("failedIndexes"))
    return sorted(i for i in ended if tasks[0] + i * tasks[2] not in done)


def finished_tasks(job: Manifest, pods: list[Manifest], done: set[int]) -> list[tuple[int, Outcome]]:
    """An array job's tasks that finished and are not in DONE (task ids), in the order they finished:
    each index in status.completedIndexes/failedIndexes, its outcome from its pods as job_outcome reads
    a plain job's. A task qdel deleted while pending never ran; a failed index without pods is unclear."""
    tasks = array_of(job)
    if tasks is None:
        return []
    first, _last, step = tasks
    st = job.get("status") or {}
    completed = id_set(st.get("completedIndexes"))
    failed = id_set(st.get("failedIndexes"))
    deleted = deleted_tasks(job)
    by_index: dict[int, list[Manifest]] = {}
    for pod in pods:
        index = pod_index(pod)
        if index is not None:
            by_index.setdefault(index, []).append(pod)
    found = []
    for index in sorted(completed | failed):
        task = first + index * step
        if task in done:
            continue
        mine = sorted(by_index.get(index, []), key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or "")
        state = "Complete" if index in completed else "Failed"
        outcome = job_outcome({"status": {"conditions": [{"type": state, "status": "True"}]}}, mine)
        if task in deleted and index in completed:
            outcome = Outcome(exit_code=None, reason="deleted")  # its wrapper exited at once: it never ran
        elif index in failed and (not mine or (mine[-1].get("metadata") or {}).get("deletionTimestamp")):
            # its pod was deleted (qdel of a running task): killed, as SGE reports a qdel'd job. The pods of
            # tasks that failed on their own stay until the Job's TTL removes the Job with them.
            outcome = KILLED
        elif outcome.exit_code is None:
            outcome = UNKNOWN
        found.append((_finished_at(mine), task, outcome))
    return [(task, outcome) for _, task, outcome in sorted(found, key=lambda f: (f[0], f[1]))]


# The Job controller decides a Job's end (SuccessCriteriaMet, FailureTarget) before it writes the terminal
# condition (Complete, Failed), which waits until no pod of it is terminating: ~10 ms here.
_ENDING = ("SuccessCriteriaMet", "FailureTarget")


def _ending(job: Manifest) -> bool:
    return any(condition(job, c) is not None for c in _ENDING)


def _terminal_pods(cluster: Cluster, job: Manifest,
                   transient: tuple[type[BaseException], ...]) -> tuple[str, list[Manifest]] | None:
    """The pods of a Job whose end is decided, listed while the controller finishes it, so that the exit code
    is known when the terminal condition arrives: the one LIST of pods a wait makes, made ~10 ms sooner.
    None (list again at the end) when a pod of it still runs or terminates: its state is not final yet."""
    uid = job["metadata"].get("uid", "")
    try:
        pods, _ = cluster.list("Pod", selector=f"batch.kubernetes.io/controller-uid={uid}")
    except transient:
        return None
    if not all((p.get("status") or {}).get("phase") in ("Succeeded", "Failed") for p in pods):
        return None
    return uid, pods


def wait(cluster: Cluster, job: Manifest, *, on_change: Callable[[Manifest], None] | None = None,
         on_trouble: Callable[[GridshimError, float], None] | None = None,
         on_task: Callable[[int, Outcome], None] | None = None,
         sleep: Callable[[float], None] = time.sleep, max_delay: float = 10.0,
         recorded: Callable[[str], Outcome | None] | None = None) -> Outcome:
    """Watch (not poll) the Job until it finishes; return how it ended.

    A Job deleted before any pod of it ran never ran ("Unable to run job"); one deleted while or
    after it ran was killed. A Job whose end cannot be read from its pods (gone with their Job, its TTL
    passed), or that vanished while it was not watched (the watch's history since the last look
    expired: a waiter paused for minutes), ended as RECORDED (its uid → the job's own accounting record)
    says; without a record such a Job that was never seen running has an unknown end (UNKNOWN), never
    "never ran".

    While the API cannot be reached or answers errors that say nothing about the Job (transport
    failures, 5xx and 429 after the call's retry budget, a 403 of a server that is starting), the Job
    may still exist and run, so the wait never ends on them: it tries again with back-off (1 s,
    doubling, at most MAX_DELAY), telling ON_TROUBLE (the error, the seconds until the next try),
    for as long as it takes. Only the Job's end, its deletion, or refused credentials end it."""
    from gridshim.errors import ForbiddenError  # noqa: PLC0415  (local: only wait() is edited here)

    gc.enable()  # a wait may last hours: the collector a command starts without is on again (gridshim.cli)
    transient = (ClusterError, ForbiddenError)
    name, uid = job["metadata"]["name"], job["metadata"].get("uid")
    rv = job["metadata"].get("resourceVersion", "")
    current = job
    started = job_started(job)
    delay = 1.0
    troubled = False

    array = on_task is not None and array_of(job) is not None
    reported: set[int] = set()
    early: tuple[str, list[Manifest]] | None = None  # (Job uid, its pods), listed when its end was decided

    def report(obj: Manifest, pods: list[Manifest] | None = None) -> None:
        """ON_TASK for an array job's tasks that finished since the last look: each once, in finishing order.
        Only the pods of those tasks are read (by their completion-index label), so a long array costs one
        small LIST per change, not one of all its pods."""
        if not array:
            return
        new = new_indexes(obj, reported)
        if not new:
            return
        if pods is None:
            pods = []
            try:
                for at in range(0, len(new), INDEX_SELECTOR_CHUNK):
                    values = ",".join(str(i) for i in new[at:at + INDEX_SELECTOR_CHUNK])
                    got, _ = cluster.list("Pod", selector=f"batch.kubernetes.io/controller-uid={obj['metadata']['uid']},"
                                                          f"{COMPLETION_INDEX} in ({values})")
                    pods += got
            except transient:
                return  # the next change of the Job, or its end, reports them
        for task, outcome in finished_tasks(obj, pods, reported):
            reported.add(task)
            on_task(task, outcome)  # type: ignore[misc]

    def deleted(last: Manifest | None = None) -> Outcome:
        outcome = KILLED if started else Outcome(exit_code=None, reason="deleted")
        if array:  # the whole array was deleted (qdel N): its running tasks were killed, the rest never ran
            never = Outcome(exit_code=None, reason="deleted")
            rest = [t for t in task_ids(job) if t not in reported]
            # the Job controller runs the lowest unfinished indexes first: the last `active` count of them ran
            active = max(int(((o or {}).get("status") or {}).get("active") or 0) for o in (current, last))
            ran = set(rest[:active])
            try:  # and any task whose pod is still there
                pods, _ = cluster.list("Pod", selector=f"batch.kubernetes.io/controller-uid={job['metadata']['uid']}")
                first, _last, step = array_of(job)  # type: ignore[misc]
                ran |= {first + i * step for i in map(pod_index, pods) if i is not None}
            except transient:
                pass
            for task in [t for t in rest if t in ran] + [t for t in rest if t not in ran]:
                reported.add(task)
                on_task(task, KILLED if task in ran else never)  # type: ignore[misc]
        return outcome

    def pause(e: GridshimError) -> None:
        nonlocal delay, troubled
        troubled = True
        if on_trouble:
            on_trouble(e, delay)
        sleep(delay)
        delay = min(delay * 2, max_delay)

    while not job_finished(current):
        if rv:  # without a resourceVersion (an ERROR event, a failed re-sync) a GET comes first
            try:
                for etype, obj in cluster.watch("Job", resource_version=rv, field_selector=f"metadata.name={name}",
                                                timeout=240):
                    if etype == "BOOKMARK":
                        rv = obj["metadata"]["resourceVersion"]
                        continue
                    if etype == "ERROR":
                        rv = ""
                        break
                    if etype == "DELETED":
                        if job_finished(obj):  # it ended and its TTL removed it while we were not looking
                            current = obj
                            break
                        return deleted(obj)
                    current = obj
                    started = started or job_started(obj)
                    rv = obj["metadata"].get("resourceVersion", rv)
                    if on_change:
                        on_change(obj)
                    if job_finished(obj):
                        break
                    if early is None and not array and _ending(obj):
                        early = _terminal_pods(cluster, obj, transient)
                    report(obj)
            except transient as e:
                pause(e)
        if not job_finished(current):
            # Re-sync after a dropped or expired watch with a LIST, as an informer does: its resourceVersion
            # is the collection's, current, so the next watch starts inside the server's window. The Job's
            # own resourceVersion (a GET's) may be older than the window when the Job has not changed for
            # a while (a long run): every watch from it would be 410 at once, a loop without a pause.
            try:
                found, list_rv = cluster.list("Job", field_selector=f"metadata.name={name}")
            except transient as e:
                pause(e)
                continue
            mine = [j for j in found if not uid or (j.get("metadata") or {}).get("uid") == uid]
            if not mine:  # gone (or replaced by another Job of the same name) while not watched
                ended = recorded(uid) if recorded and uid and not array else None
                if ended is not None:
                    return ended
                # seen running: judged killed, as before; never seen running, it may have run since: unknown
                return deleted() if started or array else UNKNOWN
            current = mine[0]
            started = started or job_started(current)
            rv = list_rv or current["metadata"].get("resourceVersion", "")
            report(current)
            if troubled and on_change:
                on_change(current)  # the API answers again: the live line shows the job, not the trouble
            delay, troubled = 1.0, False
    # The process ends after the wait (jsub/qsub -sync y): the interpreter's collections at exit would walk
    # every object of it again, ~5-10 ms after the job's end (docs/performance.md). Frozen, they are not.
    gc.freeze()
    pods = early[1] if early is not None and early[0] == current["metadata"].get("uid") else None
    while pods is None:
        try:
            pods, _ = cluster.list("Pod", selector=f"batch.kubernetes.io/controller-uid={current['metadata']['uid']}")
        except transient as e:
            pause(e)
    if array:
        report(current, pods)  # every task not reported yet
        return job_outcome(current, pods)
    outcome = job_outcome(current, pods)
    if outcome.exit_code is None and (started or condition(current, "Failed")):
        # it ran (or failed), but its pods are gone: its accounting record, if any, has the exit code
        return (recorded(current["metadata"].get("uid", "")) if recorded else None) or UNKNOWN
    return outcome


def sync_lines(job_id: int | str, outcome: Outcome) -> tuple[str | None, str | None, int]:
    """qsub -sync y's line for one job or one array task (JOB_ID `N` or `N.T`, qsub-behaviour §2.4):
    (stdout line, stderr line, its contribution to the exit code)."""
    if outcome is UNKNOWN or outcome.reason == "unknown":
        return None, f"No information available on job {job_id}'s exit status.", 1
    if outcome.exit_code is None:
        return None, f"Unable to run job {job_id}", 0  # SGE 8.1.9 returns 0 here, despite its man page
    if outcome.signal_name:
        return None, f"Job {job_id} exited because of signal {outcome.signal_name}", 1
    if outcome.exit_code == 0:
        return f"Job {job_id} exited with exit code 0.", None, 0
    return None, f"Job {job_id} exited with exit code {outcome.exit_code}.", outcome.exit_code
