"""Array tasks, holds and dependencies as they are written on a Job: the one reading of them.

Every command that meets an array, a hold or a predecessor list (qsub, qstat, qdel, qhold/qrls/qalter,
`-sync y`, the release) reads it here: the annotation names (docs/arrays-and-holds.md), SGE's task-range
strings (`1-10:1`, `9,10`, `7`) and Kubernetes' index lists (`0-3,7`), an array's ids, the index of a
pod, the user hold and the still-blocking predecessors. Imports render.labels (and model) only.
"""

from __future__ import annotations

import json
import os
import re

from gridshim.model import Manifest
from gridshim.render import labels as L

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up, docs/performance.md)
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any, TypeGuard

A_HOLD = f"{L.DOMAIN}/hold"  # "u": a user hold (qsub -h, qhold); absent: none
A_PREDECESSORS = f"{L.DOMAIN}/predecessors"  # JSON {"<id>": "<unfinished tasks>" | ""}, still blocking
A_PREDECESSORS_REQ = f"{L.DOMAIN}/predecessors-req"  # -hold_jid as requested, comma-joined (qstat -j)
A_PREDECESSORS_AD_REQ = f"{L.DOMAIN}/predecessors-ad-req"  # -hold_jid_ad as requested
A_PREDECESSOR_IDS = f"{L.DOMAIN}/predecessor-ids"  # every id resolved at submit, comma list, never shrinks
A_DELETED_TASKS = f"{L.DOMAIN}/deleted-tasks"  # pending array tasks qdel removed (range string)
WAITING = f"{L.DOMAIN}/waiting"  # label "true" while predecessors is non-empty
# Kubernetes' label and annotation with an Indexed Job's pod's completion index (1.28 and later).
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
MAX_TASKS = 75000  # max_aj_tasks: no array of gridshim's has more ids; more in a string is not ours
# Marker files in the tool's home, $HOME/.gridshim/<kind>/<job id> (the job's wrapper reads the first two):
SUCCESSORS = os.path.join(".gridshim", "successors")  # a successor waits: the wrapper runs the release
DELETED = os.path.join(".gridshim", "deleted")  # task ids qdel removed while pending: they exit at once
RELEASED = os.path.join(".gridshim", "released")  # the predecessor's `release --job` has run

Range = tuple[int, int, int]  # first, last, step (inclusive)


def range_to_dstring(ids: Iterable[int], step: int = 1) -> str:
    """A task set as SGE prints it (sge_range.c range_to_dstring): runs of STEP joined by ',', a run
    `a-b:s`, two ids `a,b` (not `a-b:s`), one id `a`."""
    step = max(int(step), 1)
    runs: list[list[int]] = []
    for i in sorted(set(ids)):
        if runs and i - runs[-1][1] == step:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    parts = []
    for a, b in runs:
        if a == b:
            parts.append(str(a))
        elif a + step == b:
            parts.append(f"{a},{b}")
        else:
            parts.append(f"{a}-{b}:{step}")
    return ",".join(parts)


_RANGE = r"^(\d+)(?:-(\d+)(?::(\d+))?)?$"  # compiled on first use (re's cache)


def parse_ranges(text: str) -> list[Range] | None:
    """`7`, `2-5`, `1-9:2`, `9,10`, `0-2,5` (SGE task ranges, Kubernetes index intervals) → ranges;
    None if TEXT is not one. `n-m` with n > m is swapped, as SGE does."""
    out: list[Range] = []
    for part in str(text).split(","):
        m = re.match(_RANGE, part.strip())
        if not m:
            return None
        a = int(m.group(1))
        b = int(m.group(2)) if m.group(2) is not None else a
        s = int(m.group(3)) if m.group(3) is not None else 1
        if s < 1:
            return None
        out.append((min(a, b), max(a, b), s))
    return out


def id_set(text: str | None) -> set[int]:
    """The ids of a range string or index list (status.completedIndexes, deleted-tasks, a predecessor's
    tasks); parts that are not ranges, and ranges wider than MAX_TASKS ids, are ignored (anyone who may
    edit the namespace can write these annotations)."""
    out: set[int] = set()
    for part in (text or "").split(","):
        r = parse_ranges(part) if part.strip() else None
        if r:
            a, b, s = r[0]
            if (b - a) // s < MAX_TASKS:
                out.update(range(a, b + 1, s))
    return out


def pack(ids: Iterable[int]) -> str:
    """Task ids → a range string for storage (a predecessor's unfinished tasks), as short as the ids
    allow: runs of three or more with one step as `a-b:s`, whatever the step, the rest single
    (`1-10:1`, `9,10`, `1-9:2,12`); id_set reads it back. (Display uses range_to_dstring.)"""
    t = sorted(set(ids))
    parts: list[str] = []
    i = 0
    while i < len(t):
        if i + 2 < len(t) and t[i + 1] - t[i] == t[i + 2] - t[i + 1]:
            step = t[i + 1] - t[i]
            j = i + 2
            while j + 1 < len(t) and t[j + 1] - t[j] == step:
                j += 1
            parts.append(f"{t[i]}-{t[j]}:{step}")
            i = j + 1
        else:
            parts.append(str(t[i]))
            i += 1
    return ",".join(parts)


def in_ranges(i: int, ranges: Iterable[Range]) -> bool:
    return any(a <= i <= b and (i - a) % s == 0 for a, b, s in ranges)


def annotation(job: Manifest, key: str) -> str:
    """The text of annotation KEY on JOB, "" when it is absent or not a string."""
    value = ((job.get("metadata") or {}).get("annotations") or {}).get(key)
    return value if isinstance(value, str) else ""


def _int(v: Any) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)


# A listed Job trimmed for qstat (status.slim_job) carries its options parsed once, under this key: it is
# no field of a Kubernetes object, so it cannot come from the API server.
PARSED_OPTIONS = "gridshim:options"


def job_options(job: Manifest) -> dict[str, Any]:
    """The Job's grid options (render.labels.options_of), parsed once for a trimmed Job."""
    parsed = job.get(PARSED_OPTIONS)
    if parsed is not None:
        return parsed  # type: ignore[no-any-return]
    return L.options_of(job.get("metadata") or {})


def array_of(job: Manifest) -> Range | None:
    """-t first-last:step of an array Job (last as typed), from its options annotation; None otherwise."""
    tasks = job_options(job).get("tasks")
    if (isinstance(tasks, list) and len(tasks) == 3 and all(_int(t) for t in tasks)
            and 1 <= tasks[0] and tasks[2] >= 1):
        return (tasks[0], max(tasks[0], tasks[1]), tasks[2])
    return None


def ids(array: Range) -> range:
    """The task ids of -t first-last:step: first, first+step, … up to last."""
    first, last, step = array
    return range(first, last + 1, step)


def task_ids(job: Manifest, array: Range | None = None) -> list[int]:
    """The array Job's task ids in index order (index i is task first + i*step), at most completions."""
    array = array or array_of(job)
    if array is None:
        return []
    every = ids(array)
    completions = (job.get("spec") or {}).get("completions")
    count = completions if _int(completions) and 0 < completions < len(every) else len(every)
    return list(every[:min(count, MAX_TASKS)])


def task_of_index(array: Range, index: int) -> int:
    return array[0] + index * array[2]


def task_concurrency(job: Manifest) -> int | None:
    tc = job_options(job).get("tc")
    return tc if _int(tc) and tc >= 0 else None


def pod_index(pod: Manifest) -> int | None:
    """An Indexed Job's pod's completion index (label or annotation); None for any other pod."""
    meta = pod.get("metadata") or {}
    for where in (meta.get("labels") or {}, meta.get("annotations") or {}):
        raw = where.get(COMPLETION_INDEX)
        if isinstance(raw, str) and raw.isdigit():
            return int(raw)
    return None


def finished_tasks(job: Manifest, array: Range | None = None) -> set[int]:
    """Task ids that ran to an end, whatever their exit (completedIndexes and failedIndexes)."""
    array = array or array_of(job)
    if array is None:
        return set()
    status = job.get("status") or {}
    done = id_set(status.get("completedIndexes")) | id_set(status.get("failedIndexes"))
    return {task_of_index(array, i) for i in done}


def deleted_tasks(job: Manifest) -> set[int]:
    """Pending tasks qdel removed (they never run)."""
    return id_set(annotation(job, A_DELETED_TASKS))


def user_held(job: Manifest) -> bool:
    """A user hold: the annotation (qsub -h, qhold), or older objects' options `"hold": true`."""
    return "u" in annotation(job, A_HOLD) or bool(job_options(job).get("hold"))


def predecessors_of(job: Manifest) -> dict[str, str]:
    """The still-blocking predecessors: job id → its unfinished tasks ("" for a non-array one)."""
    try:
        value = json.loads(annotation(job, A_PREDECESSORS) or "{}")
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {str(k): v if isinstance(v, str) else "" for k, v in value.items() if str(k).isdigit()}


def marker(home: str, kind: str, job_id: int | str) -> str:
    """The path of job JOB_ID's marker of KIND (SUCCESSORS, DELETED, RELEASED) in HOME."""
    return os.path.join(home, kind, str(job_id))


def append_marker(home: str, kind: str, job_id: int | str, lines: Iterable[str] = ()) -> None:
    """Create or extend a marker, one line per item of LINES: the directory 0700, the file 0600, so
    only the tool reads them. Raises OSError."""
    directory = os.path.join(home, kind)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    os.chmod(directory, 0o700)
    fd = os.open(marker(home, kind, job_id), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        text = "".join(f"{line}\n" for line in lines)
        if text:
            os.write(fd, text.encode("utf-8", "surrogateescape"))
    finally:
        os.close(fd)


def predecessors_text(preds: dict[str, str]) -> str:
    """The predecessors annotation for PREDS (predecessors_of reads it back)."""
    return json.dumps(preds, sort_keys=True, separators=(",", ":"))


def id_list(text: str) -> tuple[int, ...]:
    """A comma list of job ids (predecessor-ids) → the ids; anything else in it is ignored."""
    return tuple(int(x) for x in (p.strip() for p in text.split(",")) if x.isdigit())
