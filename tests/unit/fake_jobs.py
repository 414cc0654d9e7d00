"""An in-memory Cluster for depends/qalter tests: Jobs, Pods and CronJobs with uids, resourceVersions,
label selectors, merge patches with uid/resourceVersion preconditions (409 as ConflictError), and
deletes with preconditions. `interfere` lets a test run another writer just before a write lands."""

from __future__ import annotations

import copy
import itertools
import json
from typing import Any, Callable

from gridshim.errors import ConflictError, JobExistsError, JobNotFoundError
from gridshim.render import labels as L

TOOL = "demo"


def merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge(out.get(k), v)
    return out


def matches(obj: dict[str, Any], selector: str | None) -> bool:
    """Equality (`k=v`) and set-based (`k in (a,b)`) label selectors, as the API server reads them."""
    import re  # noqa: PLC0415

    labels = (obj.get("metadata") or {}).get("labels") or {}
    for part in re.findall(r"[^,(]+(?:\([^)]*\))?", selector or ""):
        part = part.strip()
        if not part:
            continue
        m = re.fullmatch(r"(\S+) in \(([^)]*)\)", part)
        if m:
            if labels.get(m.group(1)) not in m.group(2).split(","):
                return False
            continue
        k, _, v = part.partition("=")
        if labels.get(k) != v:
            return False
    return True


class Store:
    namespace = "tool-demo"
    tool = TOOL

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.rv = itertools.count(1)
        self.uids = itertools.count(1)
        self.calls: list[tuple[str, str, str]] = []
        self.interfere: Callable[[str, str, str], None] | None = None  # (verb, kind, name) before a write
        self.conflicts = 0

    # -- building objects
    def add_job(self, job_id: int, name: str, *, finished: str | None = None, tasks: list[int] | None = None,
                status: dict[str, Any] | None = None, annotations: dict[str, str] | None = None,
                labels: dict[str, str] | None = None, suspend: bool = False, options: dict[str, Any] | None = None,
                deleting: bool = False) -> dict[str, Any]:
        opts = dict(options or {})
        if tasks:
            opts["tasks"] = tasks
        meta: dict[str, Any] = {
            "name": f"{name.lower()}-{job_id}", "uid": f"u{next(self.uids)}", "resourceVersion": str(next(self.rv)),
            "labels": {**L.base_labels(TOOL), L.JOB_ID: str(job_id), L.NAME: L.label_value(name), **(labels or {})},
            "annotations": {L.A_NAME: name, L.A_OPTIONS: json.dumps(opts), **(annotations or {})},
            "creationTimestamp": "2026-12-01T10:00:00Z"}
        if deleting:
            meta["deletionTimestamp"] = "2026-12-01T10:05:00Z"
        st = dict(status or {})
        if finished:
            st["conditions"] = [{"type": finished, "status": "True"}]
        job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
               "spec": {"suspend": suspend, "template": {"metadata": {"labels": {}}, "spec": {
                   "securityContext": {"runAsUser": 5000},
                   "containers": [{"name": "job", "command": ["/bin/sh", "-c", "S", "gridshim-job", "/o", "/e", "", "",
                                                              "prog"],
                                   "resources": {"limits": {"memory": "512Mi"}, "requests": {"memory": "512Mi"}}}]}}},
               "status": st}
        self.objects[("Job", meta["name"])] = job
        return copy.deepcopy(job)

    def job(self, job_id: int) -> dict[str, Any]:
        found = [o for (k, _), o in self.objects.items() if k == "Job" and L.job_id_of(o["metadata"]) == job_id]
        assert len(found) == 1, found
        return copy.deepcopy(found[0])

    def finish(self, job_id: int, how: str = "Complete") -> None:
        for (k, _), o in self.objects.items():
            if k == "Job" and L.job_id_of(o["metadata"]) == job_id:
                o.setdefault("status", {})["conditions"] = [{"type": how, "status": "True"}]
                o["metadata"]["resourceVersion"] = str(next(self.rv))

    def remove(self, job_id: int) -> None:
        for key, o in list(self.objects.items()):
            if key[0] == "Job" and L.job_id_of(o["metadata"]) == job_id:
                del self.objects[key]

    # -- the Cluster port
    def list(self, kind: str, *, selector: str | None = None, field_selector: str | None = None,
             namespace: str | None = None, trim: Any = None) -> tuple[list[dict[str, Any]], str]:
        self.calls.append(("list", kind, selector or ""))
        items = [copy.deepcopy(o) for (k, _), o in self.objects.items() if k == kind and matches(o, selector)]
        return (items if trim is None else [trim(o) for o in items]), "9"

    def get(self, kind: str, name: str) -> dict[str, Any]:
        self.calls.append(("get", kind, name))
        if (kind, name) not in self.objects:
            raise JobNotFoundError(f"{kind} {name} not found")
        return copy.deepcopy(self.objects[(kind, name)])

    def _before(self, verb: str, kind: str, name: str) -> None:
        if self.interfere is not None:
            hook, self.interfere = self.interfere, None
            hook(verb, kind, name)

    def patch(self, kind: str, name: str, body: Any, *, patch_type: str = "merge") -> dict[str, Any]:
        self.calls.append(("patch", kind, name))
        self._before("patch", kind, name)
        if (kind, name) not in self.objects:
            raise JobNotFoundError(f"{kind} {name} not found")
        cur = self.objects[(kind, name)]
        pre = body.get("metadata") or {}
        if (pre.get("resourceVersion") and pre["resourceVersion"] != cur["metadata"]["resourceVersion"]) or (
                pre.get("uid") and pre["uid"] != cur["metadata"]["uid"]):
            self.conflicts += 1
            raise ConflictError("the object has been modified")
        new = merge(cur, body)
        new["metadata"]["uid"] = cur["metadata"]["uid"]
        new["metadata"]["resourceVersion"] = str(next(self.rv))
        self.objects[(kind, name)] = new
        return copy.deepcopy(new)

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        m = copy.deepcopy(manifest)
        name = m["metadata"].get("name") or m["metadata"].pop("generateName", "x-") + str(next(self.uids))
        self.calls.append(("create", m["kind"], name))
        self._before("create", m["kind"], name)
        if (m["kind"], name) in self.objects:
            raise JobExistsError(f"{name} exists")
        m["metadata"].update(name=name, uid=f"u{next(self.uids)}", resourceVersion=str(next(self.rv)))
        self.objects[(m["kind"], name)] = m
        return copy.deepcopy(m)

    def delete(self, kind: str, name: str, *, uid: str | None = None, resource_version: str | None = None,
               grace: int | None = None, propagation: str = "Background") -> None:
        self.calls.append(("delete", kind, name))
        self._before("delete", kind, name)
        if (kind, name) not in self.objects:
            raise JobNotFoundError(f"{kind} {name} not found")
        cur = self.objects[(kind, name)]["metadata"]
        if (uid and uid != cur["uid"]) or (resource_version and resource_version != cur["resourceVersion"]):
            raise ConflictError("Precondition failed")
        del self.objects[(kind, name)]
