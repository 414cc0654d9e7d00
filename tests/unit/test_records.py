"""records.record_lines: the backstop record of an attempt the wrapper could not record (qdel -f, a lost node)."""

from __future__ import annotations

import json
from typing import Any

from gridshim import accounting
from gridshim.config import Settings
from gridshim.records import record_lines
from gridshim.render import labels as L
from gridshim.tasks import COMPLETION_INDEX


def job(options: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"uid": "ju", "creationTimestamp": "2026-12-01T10:00:00Z",
                         "labels": {L.CREATED_BY: "demo", L.JOB_ID: "1234567"},
                         "annotations": {L.A_NAME: "arr", L.A_OPTIONS: json.dumps(options)}}}


def pod(uid: str, index: int | None, exit_code: int) -> dict[str, Any]:
    ann = {} if index is None else {COMPLETION_INDEX: str(index)}
    term = {"exitCode": exit_code, "startedAt": "2026-12-01T10:00:05Z", "finishedAt": "2026-12-01T10:00:09Z"}
    return {"metadata": {"uid": uid, "annotations": ann}, "spec": {"nodeName": "node1"},
            "status": {"containerStatuses": [{"state": {"terminated": term}}]}}


def fields(line: str) -> accounting.Record:
    rec = accounting.parse_line(line)
    assert rec is not None, line
    return rec


def test_an_array_tasks_backstop_record_carries_its_task_id() -> None:
    lines = record_lines(job({"tasks": [1, 10, 3]}), [pod("p0", 0, 0), pod("p2", 2, 3)], settings=Settings(), now=0)
    recs = [fields(line) for _, line in lines]
    assert [(r.task_number, r.exit_status, r.job_number) for r in recs] == [(1, 0, 1234567), (7, 3, 1234567)]
    assert [key for key, _ in lines] == ["ju/p0", "ju/p2"]


def test_a_plain_jobs_record_has_task_number_0_and_killed_attempts_137() -> None:
    (_, line), = record_lines(job({}), [pod("p", None, 0)], settings=Settings(), now=1_796_000_000, killed=True)
    rec = fields(line)
    assert (rec.task_number, rec.exit_status, rec.failed) == (0, 137, 100)
