"""Labels and annotations: how a grid job is written onto Kubernetes objects and read back.

Every encoder here has its decoder beside it (names, ids, options); tests check the round trips.
Imports model only.
"""

from __future__ import annotations

import json
import re

from gridshim.digest import sha256_hex
from gridshim.model import JobKind, JobRequest

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up, docs/performance.md)
if TYPE_CHECKING:
    from typing import Any

DOMAIN = "gridshim.io"
MANAGED_BY = "app.kubernetes.io/managed-by"
CREATED_BY = "app.kubernetes.io/created-by"
COMPONENT = "app.kubernetes.io/component"
VERSION = "app.kubernetes.io/version"
NAME = f"{DOMAIN}/name"  # label-safe form of the grid name (see label_value)
JOB_ID = f"{DOMAIN}/job-id"
QUEUE = f"{DOMAIN}/queue"
ONCE = f"{DOMAIN}/once"
CRONTAB = f"{DOMAIN}/crontab"  # CronJobs made by the crontab wrapper: the crontab's owner
ARRAY = f"{DOMAIN}/array"  # "true" on an array job (qsub -t) and its pods (docs/arrays-and-holds.md)
# Annotations (free text): the original name, command line, options and the submit token.
A_NAME = f"{DOMAIN}/name"
A_COMMAND = f"{DOMAIN}/command"
A_OPTIONS = f"{DOMAIN}/options"
A_TOKEN = f"{DOMAIN}/token"
A_SCHEDULE = f"{DOMAIN}/schedule"  # the schedule as the user typed it (@daily)

MANAGER = "gridshim"
LAYOUT_VERSION = "1"  # bump when the encoding changes; decoders keep reading older layouts
COMPONENTS = {JobKind.ONE_OFF: "jobs", JobKind.CONTINUOUS: "continuous", JobKind.SCHEDULED: "cronjobs"}
KIND_OF_COMPONENT = {v: k for k, v in COMPONENTS.items()}

_LABEL_OK = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")
_DNS_BAD = re.compile(r"[^a-z0-9-]+")
# Job ids: 7 digits like the grid's. Derived from a random client token, so jsub knows the id before
# the object exists (one round trip) and the pod gets it as $JOB_ID.
ID_BASE, ID_SPAN = 1_000_000, 9_000_000


def _digest(text: str, n: int = 6) -> str:
    return sha256_hex(text)[:n]


def label_value(name: str) -> str:
    """Grid name → a valid label value, deterministically; names that are already valid stay as they are."""
    if _LABEL_OK.match(name):
        return name
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-_.")[:50].strip("-_.")
    return f"{safe or 'x'}-{_digest(name, 10)}"


def object_name(name: str, *, limit: int = 63) -> str:
    """Grid name → a valid object name (DNS-1123 label) of at most LIMIT characters, deterministically.

    Lower-case names made of [a-z0-9-] keep their name; anything else gets a hash of the original
    appended, so 'Bot', 'bot_2' and 'bot.2' never collide with 'bot' or with each other.
    """
    base = _DNS_BAD.sub("-", name.lower()).strip("-")
    if base == name and base and len(base) <= limit:
        return base
    digest = _digest(name)
    base = base[: limit - len(digest) - 1].rstrip("-") or "job"
    if not base[0].isalnum():
        base = "j" + base
    return f"{base}-{digest}"


def job_id_for(token: str) -> int:
    return ID_BASE + int(_digest(token, 12), 16) % ID_SPAN


def job_id_from_uid(uid: str) -> int:
    """Ids for Jobs gridshim did not create itself (CronJob runs): derived from the object's uid."""
    return job_id_for(uid)


def base_labels(tool: str) -> dict[str, str]:
    return {MANAGED_BY: MANAGER, CREATED_BY: tool}


def selector(tool: str, **extra: str) -> str:
    """The label selector for this tool's gridshim objects (plus EXTRA label=value pairs)."""
    parts = [f"{MANAGED_BY}={MANAGER}", f"{CREATED_BY}={tool}"]
    parts += [f"{k}={v}" for k, v in extra.items()]
    return ",".join(parts)


def labels_for(req: JobRequest, *, with_id: bool = True) -> dict[str, str]:
    labels = {
        "toolforge": "tool",  # Toolforge's admission webhooks select pods by this label
        **base_labels(req.tool),
        COMPONENT: COMPONENTS[req.kind],
        VERSION: LAYOUT_VERSION,
        NAME: label_value(req.name),
        QUEUE: label_value(req.queue),
    }
    if req.once:
        labels[ONCE] = "true"
    if req.tasks:
        labels[ARRAY] = "true"
    if with_id:
        labels[JOB_ID] = str(req.job_id)
    return labels


# Kubernetes allows 256 KiB of annotations per object. The program and its arguments travel in the
# container's command (whole); the annotations are for display, so long values are cut there.
COMMAND_LIMIT = 8 * 1024
OPTIONS_LIMIT = 64 * 1024
CUT = " …"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - len(CUT)] + CUT


def annotations_for(req: JobRequest) -> dict[str, str]:
    options = json.dumps(req.options, sort_keys=True, separators=(",", ":"))
    if len(options) > OPTIONS_LIMIT:  # -v values or arguments far beyond what qstat -j shows
        slim = {k: v for k, v in req.options.items() if k not in ("env", "args")}
        options = json.dumps({**slim, "truncated": True}, sort_keys=True, separators=(",", ":"))
    ann = {
        A_NAME: req.name,
        A_COMMAND: _cut(req.command_line, COMMAND_LIMIT),
        A_OPTIONS: options,
    }
    if req.token:
        ann[A_TOKEN] = req.token
    if req.schedule_text:
        ann[A_SCHEDULE] = req.schedule_text
    return ann


def name_of(meta: dict[str, Any]) -> str:
    """Decode the grid name from object metadata (annotation first; the label for older layouts)."""
    ann = meta.get("annotations") or {}
    labels = meta.get("labels") or {}
    return ann.get(A_NAME) or labels.get(NAME) or meta.get("name", "")  # type: ignore[no-any-return]  # strings (the API's schema)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _pairs(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p)
                                       for p in v)


def _strings(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


# What each option kept for read-back must look like. Anyone who may edit the namespace's objects can
# write this annotation (kubectl annotate), so a value of another shape is dropped, never trusted.
OPTION_TYPES: dict[str, Any] = {
    **{k: _is_int for k in ("mem", "mem_request", "wall_seconds", "s_rt", "slots", "priority", "jobshare", "tc")},
    **{k: lambda v: isinstance(v, bool) for k in ("once", "continuous", "cwd", "join", "notify", "hold",
                                                  "binary", "rerun", "truncated")},
    **{k: lambda v: isinstance(v, str) for k in ("stdout", "stderr", "stdin", "workdir", "queue", "release",
                                                 "umask", "preset", "mail", "mail_events", "dialect",
                                                 "script_file", "shell", "account", "project", "home")},
    **{k: _pairs for k in ("env", "resources")},
    **{k: _strings for k in ("args", "mail_to", "ignored", "queues", "hold_jid", "hold_jid_ad")},
    "tasks": lambda v: isinstance(v, list) and len(v) == 3 and all(_is_int(x) for x in v),
    "pe": lambda v: isinstance(v, list) and len(v) == 2 and isinstance(v[0], str) and _is_int(v[1]),
}


def options_of(meta: dict[str, Any]) -> dict[str, Any]:
    """The grid options a job was submitted with (annotation), each of the shape gridshim wrote."""
    raw = (meta.get("annotations") or {}).get(A_OPTIONS)
    if not raw or not isinstance(raw, str):
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if v is None or (k in OPTION_TYPES and OPTION_TYPES[k](v))}


def job_id_of(meta: dict[str, Any]) -> int:
    raw = (meta.get("labels") or {}).get(JOB_ID, "")
    if isinstance(raw, str) and raw.isdigit() and ID_BASE <= int(raw) < ID_BASE + ID_SPAN:
        return int(raw)
    return job_id_from_uid(meta.get("uid", ""))  # CronJob runs, and labels someone else wrote


def kind_of(meta: dict[str, Any]) -> JobKind:
    return KIND_OF_COMPONENT.get((meta.get("labels") or {}).get(COMPONENT, ""), JobKind.ONE_OFF)
