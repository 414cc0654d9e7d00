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
    assert [key for key, _ in lines] == ["ju/p0/backstop", "ju/p2/backstop"]
    assert [r.hostname for r in recs] == ["node1", "node1"]  # pods without a name: their node's


def test_a_backstop_records_the_pods_name_as_hostname_as_the_wrapper_does() -> None:
    named = pod("p", None, 0)
    named["metadata"]["name"] = "arr-7x2kq"
    ((_, line),) = record_lines(job({}), [named], settings=Settings(), now=0)
    assert fields(line).hostname == "arr-7x2kq"


def test_a_plain_jobs_record_has_task_number_0_and_killed_attempts_137() -> None:
    (_, line), = record_lines(job({}), [pod("p", None, 0)], settings=Settings(), now=1_796_000_000, killed=True)
    rec = fields(line)
    assert (rec.task_number, rec.exit_status, rec.failed) == (0, 137, 100)


# -- one record per attempt, whichever writer wrote it first (accounting.scan, ensure_records) -----------

def running_pod(uid: str) -> dict[str, Any]:
    return {"metadata": {"uid": uid, "annotations": {}}, "spec": {"nodeName": "node1"},
            "status": {"startTime": "2026-12-01T10:00:05Z",
                       "containerStatuses": [{"state": {"running": {"startedAt": "2026-12-01T10:00:05Z"}}}]}}


def wrapper_line(start: int, *, pod_uid: str = "p", code: int = 137) -> str:
    """What the pod's wrapper writes: its own start time (a second or more after the pod's startedAt)."""
    return accounting.format_line(accounting.Record(
        qname="task", hostname="pod-name", owner="tools.demo", job_name="arr", job_number=1234567,
        start_time=start, end_time=start + 60, failed=100 if code > 128 else 0, exit_status=code,
        attempt=f"ju/{pod_uid}"))


def kept(text: str) -> list[accounting.Record]:
    return accounting.load(text)


def test_qdel_f_backstop_then_the_wrapper_that_still_wrote_is_one_record(tmp_path: Any) -> None:
    """qdel -f writes the backstop before the kill; on a real node the wrapper still gets a TERM (the
    kubelet's minimum grace) and may write its own, with its own start time: qacct shows one block."""
    from gridshim.records import ensure_records

    settings = Settings(accounting_file=str(tmp_path / "acct"))
    started = int(accounting.parse_line(record_lines(job({}), [running_pod("p")], settings=settings, now=1e9,
                                                     killed=True)[0][1]).start_time)  # type: ignore[union-attr]
    assert ensure_records(job({}), [running_pod("p")], settings=settings, home="/h", now=1_796_000_000, killed=True) == 1
    with open(tmp_path / "acct", "a") as f:
        f.write(wrapper_line(started + 2) + "\n")
    text = (tmp_path / "acct").read_text()
    assert len(text.splitlines()) == 2  # both writers wrote
    (rec,) = kept(text)
    assert (rec.attempt, rec.start_time, rec.exit_status, rec.failed) == ("ju/p/backstop", started, 137, 100)
    # a backstop run again (qacct's, make_room's) writes nothing more for that attempt
    assert ensure_records(job({}), [running_pod("p")], settings=settings, home="/h", now=1_796_000_100, killed=True) == 0


def test_the_wrappers_record_first_wins_over_a_late_backstop_and_blocks_a_new_one(tmp_path: Any) -> None:
    from gridshim.records import ensure_records

    settings = Settings(accounting_file=str(tmp_path / "acct"))
    (tmp_path / "acct").write_text(wrapper_line(1_796_000_007, code=0) + "\n")
    assert ensure_records(job({}), [pod("p", None, 0)], settings=settings, home="/h", now=1_796_000_100) == 0
    ((_, backstop),) = record_lines(job({}), [pod("p", None, 0)], settings=settings, now=1_796_000_100)
    with open(tmp_path / "acct", "a") as f:  # a backstop that raced the wrapper's append
        f.write(backstop + "\n")
    (rec,) = kept((tmp_path / "acct").read_text())
    assert (rec.attempt, rec.start_time, rec.exit_status) == ("ju/p", 1_796_000_007, 0)


def test_other_attempts_are_never_taken_for_duplicates() -> None:
    """A continuous job's respawns in one pod (same key, other start), another pod of the same job, and
    another task all stay; a wrapper line written twice is one record."""
    respawns = [wrapper_line(1_796_000_000 + 10 * n, code=1) for n in range(3)]
    other_pod = wrapper_line(1_796_000_000, pod_uid="q")
    lines = [*respawns, respawns[0], other_pod]
    ((_, backstop_q),) = record_lines(job({}), [running_pod("q")], settings=Settings(), now=1_796_000_100, killed=True)
    recs = kept("\n".join([*lines, backstop_q]) + "\n")
    assert [(r.attempt, r.start_time) for r in recs] == [("ju/p", 1_796_000_000 + 10 * n) for n in range(3)] + \
        [("ju/q", 1_796_000_000)]
