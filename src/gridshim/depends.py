"""Dependencies (-hold_jid, -hold_jid_ad) and holds (qsub -h, qhold, qrls): resolution at submit, release,
the sweep and its backstop CronJob. The encoding is docs/arrays-and-holds.md; the reasons and the failure
cases are docs/design.md "Dependencies and holds: who releases".

Everything lives on the successor's Job object (mutable metadata and spec.suspend), and every change is a
merge patch that carries the object's uid and resourceVersion: the API server refuses it (409) when anyone
wrote in between, and the writer re-reads and decides again. So concurrent releasers (two predecessors'
wrappers, qdel, the sweep) never lose a removal, and nobody unsuspends a job that still has a predecessor.

Imports the cluster (duck-typed), status, tasks (the annotations and ranges), render (labels, manifests),
model and errors; never the CLI.
"""

from __future__ import annotations

import os
import re

from gridshim.errors import ConflictError, GridshimError, JobExistsError, JobNotFoundError, Rejected
from gridshim.model import Cluster, JobRequest, Manifest
from gridshim.record import record
from gridshim.render import labels as L
from gridshim.status import condition, controller_uid, job_finished
from gridshim.tasks import (
    A_HOLD,
    A_PREDECESSOR_IDS,
    A_PREDECESSORS,
    A_PREDECESSORS_AD_REQ,
    A_PREDECESSORS_REQ,
    RELEASED,
    SUCCESSORS,
    WAITING,
    append_marker,
    array_of,
    deleted_tasks,
    finished_tasks,
    id_set,
    ids,
    marker,
    pack,
    predecessors_of,
    predecessors_text,
    user_held,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up, docs/performance.md)
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

BACKSTOP = "gridshim-release"  # the CronJob that runs `release --sweep` every minute
BACKSTOP_LABEL = f"{L.DOMAIN}/release"  # "true" on the CronJob, its Jobs and pods (never managed-by=gridshim)
A_TOUCHED = f"{L.DOMAIN}/touched"  # qsub bumps the CronJob's resourceVersion so a racing sweep keeps it
ATTEMPTS = 20  # re-reads after a 409 before giving up (each is one concurrent writer winning)


# -- reading a Job ---------------------------------------------------------------------------------

def unfinished_tasks(job: Manifest) -> list[int]:
    """An array Job's task ids that have not finished: not in completedIndexes or failedIndexes (a task
    counts as finished whatever its exit, §5.2), and not deleted while pending (qdel: the wrapper of a
    deleted task exits at once)."""
    array = array_of(job)
    if array is None:
        return []
    over = finished_tasks(job, array) | deleted_tasks(job)
    return [t for t in ids(array) if t not in over]


def is_over(job: Manifest) -> bool:
    """A predecessor no longer blocks: Complete or Failed, or being deleted (qdel'ed: SGE counts a job
    removed by qdel as finished, and qdel releases its successors at once)."""
    return job_finished(job) or bool((job.get("metadata") or {}).get("deletionTimestamp"))


def _by_id(jobs: Iterable[Manifest]) -> dict[int, list[Manifest]]:
    out: dict[int, list[Manifest]] = {}
    for j in jobs:
        out.setdefault(L.job_id_of(j.get("metadata") or {}), []).append(j)
    return out


# -- resolution at submit (§5.1, §4.5) -------------------------------------------------------------

def requested(options: dict[str, Any], key: str) -> list[str]:
    value = options.get(key)
    if isinstance(value, str):
        return [v for v in value.split(",") if v]
    if isinstance(value, list):
        return [str(v) for v in value if v]
    return []


def resolve(jobs: Iterable[Manifest], wanted: list[str]) -> dict[str, str]:
    """The predecessors of a -hold_jid list among the tool's Jobs: {id: unfinished tasks ("" non-array)}.

    An element that starts with a digit is a job id (atoi, as SGE's job_verify_predecessors; `N.T` is
    refused); an id of a job that does not exist or has finished is dropped without a word. Anything else
    is a name or a wildcard pattern (sge_types(5): * ? [...]) matched against the submitter's own
    unfinished jobs; every match is a predecessor, and a pattern that matches nothing is ignored.
    """
    import fnmatch  # noqa: PLC0415  (only a submission with -hold_jid reads patterns)

    live = [j for j in jobs if not is_over(j)]
    found: dict[int, Manifest] = {}
    for item in wanted:
        if item[:1].isdigit():
            if "." in item:
                raise Rejected(f'denied: job "{item}" not found')
            jid = int(re.match(r"\d+", item).group(0))  # type: ignore[union-attr]
            for j in live:
                if L.job_id_of(j["metadata"]) == jid:
                    found.setdefault(jid, j)
        else:
            for j in live:
                if fnmatch.fnmatchcase(L.name_of(j["metadata"]), item):
                    found.setdefault(L.job_id_of(j["metadata"]), j)
    out: dict[str, str] = {}
    for jid, j in found.items():
        if array_of(j) is None:
            out[str(jid)] = ""
        else:
            left = unfinished_tasks(j)
            if left:
                out[str(jid)] = pack(left)
    return out


def check_ad(jobs: Iterable[Manifest], preds: dict[str, str], tasks: tuple[int, int, int] | list[int] | None) -> None:
    """-hold_jid_ad (§4.5): both jobs arrays with the same first and last task id (the step may differ)."""
    if tasks is None:
        raise Rejected('Can only specify "-hold_jid_ad" option with an array job (using "-t" option)')
    by_id = _by_id(jobs)
    for jid in preds:
        for j in by_id.get(int(jid), []):
            t = array_of(j)
            if t is None:  # SGE gives the same message for a predecessor that is not an array
                raise Rejected('Can only specify "-hold_jid_ad" option with an array job (using "-t" option)')
            if (t[0], t[1]) != (tasks[0], tasks[1]):
                raise Rejected("This array job must have the same range of sub-tasks as the dependent array "
                               "job specified with -hold_jid_ad")


def cycle_with(job_id: int, preds: Iterable[str], jobs: Iterable[Manifest]) -> int | None:
    """qalter -hold_jid: the job in whose predecessors JOB_ID would appear again through PREDS (SGE's
    contains_dependency_cycles), or None."""
    graph = {L.job_id_of(j["metadata"]): [int(p) for p in predecessors_of(j)] for j in jobs}
    seen: set[int] = set()

    def walk(node: int) -> int | None:
        for p in graph.get(node, []) if node != job_id else [int(x) for x in preds]:
            if p == job_id:
                return node
            if p not in seen:
                seen.add(p)
                found = walk(p)
                if found is not None:
                    return found
        return None

    return walk(job_id)


def hold_manifest(manifest: Manifest, held: bool) -> Manifest:
    """qsub -h: the user-hold annotation (the spec's encoding) on a Job created suspended."""
    if held and manifest.get("kind") == "Job":
        manifest["metadata"].setdefault("annotations", {})[A_HOLD] = "u"
        manifest["spec"]["suspend"] = True
    return manifest


def write_markers(home: str, successor: int, preds: Iterable[str]) -> None:
    """$HOME/.gridshim/successors/<predecessor id> (directory 0700): the predecessor's wrapper runs the
    release command only when it exists. One successor id per line, for whoever looks. Failures are
    ignored: the sweep releases such successors (within a minute)."""
    try:
        for p in preds:
            append_marker(home, SUCCESSORS, p, [str(successor)])
    except OSError:
        pass


def apply(cluster: Cluster | None, req: JobRequest, manifest: Manifest, *, home: str | None = None) -> Manifest:
    """qsub's hook between rendering and the create: the user hold, and -hold_jid / -hold_jid_ad resolved
    against one LIST of the tool's Jobs (after a sweep of the same list). With predecessors the Job is
    created suspended, labelled waiting, with the spec's annotations, and each predecessor gets its
    marker file. CLUSTER None (--dry-run, -verify): the hold only, nothing contacted or written."""
    hold_manifest(manifest, req.held)
    plain = requested(req.options, "hold_jid")
    ad = requested(req.options, "hold_jid_ad")
    if (not plain and not ad) or manifest.get("kind") != "Job":
        return manifest
    if ad and not isinstance(req.options.get("tasks"), list):
        raise Rejected('Can only specify "-hold_jid_ad" option with an array job (using "-t" option)')
    if cluster is None:
        return manifest
    jobs, _ = cluster.list("Job", selector=L.selector(req.tool))
    sweep_jobs(cluster, jobs)
    preds = resolve(jobs, plain)
    if ad:
        # -hold_jid_ad holds the whole successor until the paired predecessor tasks (with the same first
        # and last task id: all of them) have finished; docs/design.md says why not task by task yet
        ad_preds = resolve(jobs, ad)
        check_ad(jobs, ad_preds, req.options.get("tasks"))
        for k, v in ad_preds.items():
            both = preds.get(k, v)
            preds[k] = pack(id_set(both) | id_set(v)) if both and v else ""
    meta = manifest["metadata"]
    ann = meta.setdefault("annotations", {})
    if plain:
        ann[A_PREDECESSORS_REQ] = ",".join(plain)
    if ad:
        ann[A_PREDECESSORS_AD_REQ] = ",".join(ad)
    if not preds:
        return manifest
    ann[A_PREDECESSORS] = predecessors_text(preds)
    ann[A_PREDECESSOR_IDS] = ",".join(sorted(preds))
    meta.setdefault("labels", {})[WAITING] = "true"
    manifest["spec"]["suspend"] = True
    write_markers(home or req.home, req.job_id, preds)
    return manifest


SETTLE_WAIT, SETTLE_TRIES = 0.5, 8  # a predecessor whose pods ended gets its Complete/Failed within ~1 s


def note_released(home: str, job_id: int | str) -> None:
    """`release --job ID` ran (the predecessor's wrapper): a qsub whose new successor was not yet created
    when it ran finds this and releases its job itself. Failures are ignored (the sweep is the backstop)."""
    try:
        append_marker(home, RELEASED, job_id)
    except OSError:
        pass


def _ending(job: Manifest, pods: list[Manifest]) -> bool:
    """Its pods have all ended, so the Job controller is about to mark it Complete or Failed."""
    uid = (job.get("metadata") or {}).get("uid")
    mine = [p for p in pods if ((p.get("metadata") or {}).get("labels") or {}).get(
        "batch.kubernetes.io/controller-uid") == uid]
    return bool(mine) and all((p.get("status") or {}).get("phase") in ("Succeeded", "Failed") for p in mine)


def submitted(cluster: Cluster, created: Manifest, *, backstop: Manifest | None, home: str | None = None,
              sleep: Callable[[float], None] | None = None) -> list[str]:
    """qsub's hook after the create of a dependent job: make sure the backstop CronJob exists (created, or
    touched so a sweep that is deciding to delete it keeps it), then settle the new Job once more. A
    predecessor that ended between the resolution and the create released nothing (its wrapper ran before
    the successor existed): its `released` note, or its Complete/Failed condition, releases the new Job
    now; one whose pods ended but whose Job the controller has not marked yet is waited for (a few
    seconds at most). The job exists whatever happens here: failures come back as warnings."""
    import time  # noqa: PLC0415

    if not predecessors_of(created):
        return []
    warnings = []
    if backstop is not None:
        try:
            ensure_backstop(cluster, backstop)
        except GridshimError as e:
            warnings.append(f"the release backstop (CronJob {BACKSTOP}) could not be made: {e}; the job is "
                            "released when its predecessors end normally or by qdel")
    sleep = sleep or time.sleep
    job = created
    try:
        tool = ((created.get("metadata") or {}).get("labels") or {}).get(L.CREATED_BY) or cluster.tool
        preds = predecessors_of(created)
        # only the predecessors (set-based selector), so a tool with thousands of Jobs pays one small LIST
        selector = L.selector(tool) + (f",{L.JOB_ID} in ({','.join(sorted(preds))})" if len(preds) <= 100 else "")
        for _ in range(SETTLE_TRIES):
            jobs, _ = cluster.list("Job", selector=selector)
            by_id = _by_id(jobs)
            noted = set()
            if home:
                noted = {p for p, tasks in predecessors_of(job).items()
                         if not tasks and os.path.exists(marker(home, RELEASED, p))}
            job = update(cluster, job, lambda j: settle(j, by_id, over=noted)) or job  # noqa: B023  (update calls it now)
            left = predecessors_of(job)
            if not left:
                break
            uids = [p["metadata"].get("uid", "") for jid in left for p in by_id.get(int(jid), []) if not is_over(p)]
            if not uids:
                break
            pods, _ = cluster.list("Pod", selector=f"batch.kubernetes.io/controller-uid in ({','.join(uids)})")
            if not any(_ending(p, pods) for jid in left for p in by_id.get(int(jid), []) if not is_over(p)):
                break
            sleep(SETTLE_WAIT)
    except GridshimError as e:
        warnings.append(f"could not check the predecessors again after the submission: {e}")
    return warnings


# -- release ---------------------------------------------------------------------------------------

def _deps_patch(job: Manifest, remaining: dict[str, str]) -> Manifest | None:
    """The patch that leaves JOB with REMAINING predecessors (None: nothing changes)."""
    if remaining == predecessors_of(job):
        return None
    if remaining:
        return {"metadata": {"annotations": {A_PREDECESSORS: predecessors_text(remaining)}}}
    patch: Manifest = {"metadata": {"annotations": {A_PREDECESSORS: None}, "labels": {WAITING: None}}}
    if not user_held(job):
        patch["spec"] = {"suspend": False}
    return patch


def update(cluster: Cluster, job: Manifest, decide: Callable[[Manifest], Manifest | None]) -> Manifest | None:
    """Apply DECIDE(job)'s merge patch with the Job's uid and resourceVersion as preconditions; on 409
    re-read and decide again. Returns the updated Job, or None when nothing changed (or it is gone)."""
    for _ in range(ATTEMPTS):
        patch = decide(job)
        if patch is None:
            return None
        meta = job["metadata"]
        body = {**patch, "metadata": {**patch.get("metadata", {}), "uid": meta.get("uid"),
                                      "resourceVersion": meta.get("resourceVersion")}}
        try:
            return cluster.patch("Job", meta["name"], body)  # type: ignore[attr-defined,no-any-return]
        except ConflictError:
            pass
        except JobNotFoundError:
            return None
        try:
            fresh = cluster.get("Job", meta["name"])
        except JobNotFoundError:
            return None
        if fresh["metadata"].get("uid") != meta.get("uid"):
            return None  # replaced by another job of that name: not ours to change
        job = fresh
    raise GridshimError(f"job {L.job_id_of(job['metadata'])} kept changing while gridshim updated it; "
                        "try again")


def release(cluster: Cluster, job_id: int | str, tasks: Iterable[int] | None = None) -> list[int]:
    """Job JOB_ID (or those TASKS of it) finished: drop it from every waiting Job's predecessors and
    unsuspend those left with none (unless user-held). Returns the ids of the Jobs changed."""
    jid = str(job_id)
    done = None if tasks is None else set(tasks)
    waiting, _ = cluster.list("Job", selector=L.selector(cluster.tool, **{WAITING: "true"}))

    def decide(job: Manifest) -> Manifest | None:
        preds = predecessors_of(job)
        if jid not in preds:
            return None
        left = dict(preds)
        if done is None or not preds[jid]:
            del left[jid]
        else:
            rest = id_set(preds[jid]) - done
            if rest:
                left[jid] = pack(rest)
            else:
                del left[jid]
        return _deps_patch(job, left)

    changed = []
    for job in waiting:
        if jid in predecessors_of(job) and update(cluster, job, decide) is not None:
            changed.append(L.job_id_of(job["metadata"]))
    return changed


def settle(job: Manifest, by_id: dict[int, list[Manifest]], over: Iterable[str] = ()) -> Manifest | None:
    """The patch that drops JOB's predecessors that are gone or over (and array tasks finished); OVER:
    ids known to have ended whatever the LIST says."""
    preds = predecessors_of(job)
    over = set(over)
    left: dict[str, str] = {}
    for jid, entry in preds.items():
        live = [p for p in by_id.get(int(jid), []) if not is_over(p)] if jid not in over else []
        if not live:
            continue
        p = live[0]
        if array_of(p) is None or not entry:
            left[jid] = entry
            continue
        rest = id_set(entry) & set(unfinished_tasks(p))
        if rest:
            left[jid] = pack(rest)
    return _deps_patch(job, left)


def sweep_jobs(cluster: Cluster, jobs: list[Manifest]) -> list[int]:
    """Settle every waiting Job among JOBS (one LIST of the tool's Jobs) against the others."""
    by_id = _by_id(jobs)
    changed = []
    seen: set[str] = set()
    for job in jobs:
        uid = job["metadata"].get("uid", "")
        if uid in seen or not predecessors_of(job) or is_over(job):
            continue
        seen.add(uid)
        if update(cluster, job, lambda j: settle(j, by_id)) is not None:
            changed.append(L.job_id_of(job["metadata"]))
    return changed


@record(frozen=True)
class SweepResult:
    released: list[int]
    backstop_deleted: bool
    accounted: int = 0  # accounting records the sweep wrote (account_ended)


MARKER_AGE = 3600  # marker files of jobs no longer live are removed by the sweep after this many seconds


def clean_markers(home: str, jobs: Iterable[Manifest], *, now: float) -> int:
    """Remove successors/<id> and released/<id> files of ids with no live Job, older than MARKER_AGE (so
    an id drawn again one day is not taken for released). Returns how many went."""
    live = {str(L.job_id_of(j["metadata"])) for j in jobs if not is_over(j)}
    gone = 0
    for sub in (SUCCESSORS, RELEASED):
        d = os.path.join(home, sub)
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for name in names:
            path = os.path.join(d, name)
            try:
                if name not in live and now - os.lstat(path).st_mtime > MARKER_AGE:
                    os.unlink(path)
                    gone += 1
            except OSError:
                pass
    return gone


def account_ended(cluster: Cluster, jobs: list[Manifest],
                  account: Callable[[Manifest, list[Manifest]], int]) -> int:
    """The sweep's accounting backstop: ACCOUNT(job, pods) (records.ensure_records) for each Job of JOBS
    that ended Failed or is being deleted: the ones whose wrapper may have been SIGKILLed with its
    container (an OOM kill of the whole container, a lost node, the grace period's end) before it wrote
    its record, and whose Job the TTL would otherwise remove before anyone ran qacct. Complete Jobs ended
    through their wrapper, which wrote the record. One LIST of the tool's pods, only when there is such a
    Job; returns how many records were written. Never fails the sweep."""
    ended = [j for j in jobs if (j.get("metadata") or {}).get("deletionTimestamp") or condition(j, "Failed")]
    if not ended:
        return 0
    try:
        pods, _ = cluster.list("Pod", selector=L.selector(cluster.tool))
    except GridshimError:
        return 0
    by_uid: dict[str, list[Manifest]] = {}
    for p in pods:
        by_uid.setdefault(controller_uid(p), []).append(p)
    wrote = 0
    for job in ended:
        try:
            wrote += account(job, by_uid.get((job.get("metadata") or {}).get("uid", ""), []))
        except (OSError, GridshimError):
            continue
    return wrote


def sweep(cluster: Cluster, *, home: str | None = None, now: float | None = None,
          account: Callable[[Manifest, list[Manifest]], int] | None = None) -> SweepResult:
    """`gridshim release --sweep`: drop every predecessor whose Job is gone or over (and array tasks in
    completedIndexes/failedIndexes); delete the backstop CronJob when no waiting Job is left. The CronJob
    is read before the Jobs and deleted with its resourceVersion as precondition, so a qsub that touched
    it after creating a new dependent job keeps it. With ACCOUNT, the records of ended Jobs that lack one
    are written too (account_ended), from the same LIST of Jobs."""
    try:
        cron: Manifest | None = cluster.get("CronJob", BACKSTOP)
    except JobNotFoundError:
        cron = None
    jobs, _ = cluster.list("Job", selector=L.selector(cluster.tool))
    changed = sweep_jobs(cluster, jobs)
    accounted = account_ended(cluster, jobs, account) if account is not None else 0
    if home:
        import time  # noqa: PLC0415

        clean_markers(home, jobs, now=time.time() if now is None else now)
    still: list[Manifest] = []
    if cron is not None:
        waiting, _ = cluster.list("Job", selector=L.selector(cluster.tool, **{WAITING: "true"}))
        still = [j for j in waiting if predecessors_of(j) and not is_over(j)]
    deleted = False
    if cron is not None and not still:
        try:
            cluster.delete("CronJob", BACKSTOP, uid=cron["metadata"].get("uid"),
                           resource_version=cron["metadata"].get("resourceVersion"))
            deleted = True
        except (ConflictError, JobNotFoundError):
            pass  # touched by a qsub meanwhile (keep it), or already gone
    return SweepResult(released=changed, backstop_deleted=deleted, accounted=accounted)


# -- the backstop CronJob --------------------------------------------------------------------------

def backstop_manifest(settings: Any, *, tool: str, uid: int | None, home: str) -> Manifest | None:
    """The `gridshim-release` CronJob: every minute, `<release_command> release --sweep` as the tool (its
    uid, its home, so $HOME/.kube/config is the tool's kubeconfig). None when the site has no
    release_command (then nothing runs the sweep but qsub itself: see docs/design.md)."""
    command = getattr(settings, "release_command", None)
    if not command:
        return None
    from gridshim.render.manifests import _security, _volumes  # noqa: PLC0415  (the jobs' own pod shape)

    pod_sec, container_sec = _security(uid)
    volumes, mounts = _volumes(settings)
    labels = {"toolforge": "tool", BACKSTOP_LABEL: "true", L.COMPONENT: "release"}
    limits = {"memory": "256Mi"}
    if settings.cpu_limit:
        limits["cpu"] = settings.cpu_limit
    container: Manifest = {
        "name": "release", "image": settings.image_for(None), "command": [command, "release", "--sweep"],
        "workingDir": home,
        "env": [{"name": "HOME", "value": home.replace("$", "$$")}, {"name": "LANG", "value": "C.UTF-8"}],
        "resources": {"limits": limits, "requests": {"memory": "64Mi", "cpu": settings.cpu_request}},
        "securityContext": container_sec,
    }
    if mounts:
        container["volumeMounts"] = mounts
    pod: Manifest = {"restartPolicy": "Never", "automountServiceAccountToken": False, "enableServiceLinks": False,
                     "terminationGracePeriodSeconds": 5, "securityContext": pod_sec, "containers": [container]}
    if volumes:
        pod["volumes"] = volumes
    job_spec = {"backoffLimit": 0, "activeDeadlineSeconds": 50, "ttlSecondsAfterFinished": 60,
                "template": {"metadata": {"labels": labels}, "spec": pod}}
    return {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": BACKSTOP, "labels": {BACKSTOP_LABEL: "true", L.CREATED_BY: tool}},
            "spec": {"schedule": "* * * * *", "concurrencyPolicy": "Forbid", "startingDeadlineSeconds": 50,
                     "successfulJobsHistoryLimit": 0, "failedJobsHistoryLimit": 1,
                     "jobTemplate": {"metadata": {"labels": labels}, "spec": job_spec}}}


def ensure_backstop(cluster: Cluster, manifest: Manifest) -> None:
    """Create the backstop CronJob, or touch it (a new resourceVersion) when it exists."""
    try:
        cluster.create(manifest)
        return
    except JobExistsError:
        pass
    import time  # noqa: PLC0415

    try:
        cluster.patch("CronJob", BACKSTOP,  # type: ignore[attr-defined]
                      {"metadata": {"annotations": {A_TOUCHED: str(time.time())}}})
    except JobNotFoundError:
        cluster.create(manifest)  # deleted by a sweep in between
