"""GridApi: the kit's FakeApi with builders for the grid jobs gridshim makes (labels, annotations, ids as
render/labels.py writes them), for the tests of depends, qalter and the like."""

from __future__ import annotations

import json
from typing import Any

from gridshim.render import labels as L
from kit.api import FakeApi, Manifest

TOOL = "demo"


class GridApi(FakeApi):
    """tool-demo, with `add_job(job_id, name, …)` and lookups by grid job id."""

    def __init__(self, namespace: str = f"tool-{TOOL}", **kw: Any) -> None:
        super().__init__(namespace, **kw)

    def add_job(self, job_id: int, name: str, *, finished: str | None = None, tasks: list[int] | None = None,
                status: dict[str, Any] | None = None, annotations: dict[str, str] | None = None,
                labels: dict[str, str] | None = None, suspend: bool = False, options: dict[str, Any] | None = None,
                deleting: bool = False) -> Manifest:
        """A Job as jsub/qsub make it (FINISHED: "Complete" or "Failed"; TASKS: an array's first, last, step)."""
        opts = dict(options or {})
        if tasks:
            opts["tasks"] = tasks
        meta: dict[str, Any] = {
            "name": f"{name.lower()}-{job_id}",
            "labels": {**L.base_labels(self.tool), L.JOB_ID: str(job_id), L.NAME: L.label_value(name), **(labels or {})},
            "annotations": {L.A_NAME: name, L.A_OPTIONS: json.dumps(opts), **(annotations or {})},
            "creationTimestamp": "2026-12-01T10:00:00Z"}
        if deleting:
            meta["deletionTimestamp"] = "2026-12-01T10:05:00Z"
            meta["finalizers"] = ["foregroundDeletion"]
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
        self.seed(job)
        return self.stored("Job", meta["name"])

    def job(self, job_id: int) -> Manifest:
        """The one Job with grid id JOB_ID."""
        found = [o for o in self.objects("Job") if L.job_id_of(o["metadata"]) == job_id]
        assert len(found) == 1, found
        return found[0]

    def complete(self, job_id: int, how: str = "Complete") -> None:
        """Job JOB_ID ends (HOW: "Complete" or "Failed"), as the Job controller writes it."""
        j = self.job(job_id)
        self.set_status("Job", j["metadata"]["name"], conditions=[{"type": how, "status": "True"}])

    def has(self, kind: str, name: str) -> bool:
        return (self.namespace, kind, name) in self.store
