"""Accounting records written from the cluster's view: the backstop for attempts whose wrapper could not
write its own (killed with SIGKILL by `qdel -f` or at the end of the grace period, lost with its node).

The job's wrapper (render/command.py) writes the record of every attempt that ends while it runs. When a
finished Job is about to be deleted (to make room under the job quota), when `qdel -f` kills a running
job, and when `qacct` misses a job, the attempts of that Job without a record get one from what the Job
and its pods show: exit code and times from the container's terminated state, `failed 100` and exit
137 when it was killed without one. A backstop's records are keyed `JOBUID/PODUID/backstop` (the 46th
field; the wrapper's are `JOBUID/PODUID`): a backstop writes nothing for an attempt already recorded, and
a reader keeps whichever record of an attempt came first (accounting.scan), so a wrapper that still
writes after a `qdel -f` backstop never makes a second one.

Layer: pure decisions plus one append to the tool's accounting file. Imports accounting (the one record
format), model, render.labels, status, tasks, config.
"""

from __future__ import annotations

import os
import time
from typing import Any

from gridshim.accounting import BACKSTOP, BACKSTOP_POD, Record, attempt_of, format_line
from gridshim.config import Settings
from gridshim.model import Manifest
from gridshim.render import labels as L
from gridshim.status import condition, epoch, terminated_state
from gridshim.tasks import array_of, pod_index, task_of_index


def _epoch(stamp: Any) -> int:
    """Epoch seconds of an API timestamp; 0 (accounting's "unset") when absent or unreadable."""
    return int(epoch(stamp) or 0) if isinstance(stamp, str) else 0


def _started(pod: Manifest) -> bool:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        state = cs.get("state") or {}
        if "running" in state or "terminated" in state or (cs.get("lastState") or {}).get("terminated"):
            return True
    return False


def record_lines(job: Manifest, pods: list[Manifest], *, settings: Settings, now: float,
                 killed: bool = False) -> list[tuple[str, str]]:
    """(key, line) for each attempt (pod) of JOB that ran. KILLED: the pods are being killed now."""
    meta = job.get("metadata") or {}
    opts = L.options_of(meta)
    tool = (meta.get("labels") or {}).get(L.CREATED_BY, "")
    user = f"{settings.user_prefix}{tool}"
    name = L.name_of(meta)
    job_id = L.job_id_of(meta)
    submitted = _epoch(meta.get("creationTimestamp"))
    pe = opts.get("pe") if isinstance(opts.get("pe"), list) else None
    slots = opts.get("slots")
    if not isinstance(slots, int):
        slots = 1
    deadline = (condition(job, "Failed") or {}).get("reason") == "DeadlineExceeded"
    array = array_of(job)
    out = []
    for pod in pods:
        if not _started(pod):
            continue  # it never ran: SGE writes no record for a job deleted while pending
        term = terminated_state(pod)
        start = _epoch((term or {}).get("startedAt")) or _epoch((pod.get("status") or {}).get("startTime"))
        if term is not None and term.get("exitCode") is not None and not killed:
            end, code = _epoch(term.get("finishedAt")) or int(now), int(term["exitCode"])
        else:
            end, code = int(now), 137  # killed (qdel -f, the grace period's SIGKILL, h_rt) or lost
        if deadline:
            code = 137  # h_rt: SGE kills with SIGKILL
        pod_uid = (pod.get("metadata") or {}).get("uid")
        key = f"{meta.get('uid', '-')}/{pod_uid}/{BACKSTOP}" if pod_uid else f"{meta.get('uid', '-')}/{BACKSTOP_POD}"
        index = pod_index(pod) if array else None
        task = task_of_index(array, index) if array and index is not None else 0  # an array task's own id
        # the pod's name, as the wrapper's $HOSTNAME (the node's when the pod has none)
        host = (pod.get("metadata") or {}).get("name") or (pod.get("spec") or {}).get("nodeName") or ""
        rec = Record(qname=str(opts.get("queue") or "task"), hostname=str(host),
                     group=user, owner=user, job_name=name, job_number=job_id,
                     account=str(opts.get("account") or "sge"), priority=int(opts.get("priority") or 0),
                     task_number=task, submission_time=submitted, start_time=start, end_time=end,
                     failed=100 if code > 128 or killed or term is None else 0, exit_status=code,
                     ru_wallclock=max(0, end - start) if start else 0, project=str(opts.get("project") or "NONE"),
                     granted_pe=pe[0] if pe else "NONE", slots=slots, category=f"-l h_vmem={opts.get('mem') or 0}",
                     attempt=key)
        out.append((key, format_line(rec)))
    return out


def recorded_keys(path: str) -> set[str]:
    """The attempts (`JOBUID/PODUID` of the 46th field, accounting.attempt_of) already in the accounting file."""
    keys: set[str] = set()
    try:
        with open(path, "rb") as f:
            for raw in f:
                head, sep, key = raw.rstrip(b"\n").rpartition(b":")
                if sep and b"/" in key:
                    keys.add(attempt_of(key.decode("utf-8", "replace")))
    except OSError:
        pass
    return keys


def ensure_records(job: Manifest, pods: list[Manifest], *, settings: Settings, home: str, now: float | None = None,
                   killed: bool = False) -> int:
    """Append the records of JOB's attempts that have none; returns how many were written."""
    path = settings.accounting_path(home)
    if not path:
        return 0
    return _append_missing(path, record_lines(job, pods, settings=settings, now=time.time() if now is None else now,
                                              killed=killed))


def _append_missing(path: str, lines: list[tuple[str, str]]) -> int:
    """Append those of LINES ((attempt key, record line)) whose attempt the file at PATH lacks; how many."""
    if not lines:
        return 0
    have = recorded_keys(path)
    new = [line for key, line in lines if attempt_of(key) not in have]
    if not new:
        return 0
    old = os.umask(0o077)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "a", encoding="utf-8", errors="surrogateescape") as f:
            f.write("".join(line + "\n" for line in new))
    except OSError:
        return 0  # a record that cannot be written must not stop the command that found it missing
    finally:
        os.umask(old)
    return len(new)


def make_safe(job: Manifest, pods: list[Manifest], *, settings: Settings, home: str, now: float | None = None) -> bool:
    """Is every attempt of the finished JOB that ran recorded in the accounting file, after writing the
    missing ones (as ensure_records does)? True as well when the site keeps no accounting. make_room deletes a
    finished Job only then: a record that could not be written (home full, unwritable) keeps the Job."""
    path = settings.accounting_path(home)
    if not path:
        return True
    lines = record_lines(job, pods, settings=settings, now=time.time() if now is None else now)
    if not lines:
        return True
    _append_missing(path, lines)
    have = recorded_keys(path)
    return all(attempt_of(key) in have for key, _ in lines)
