"""status.py: Kubernetes objects (real ones, captured from the sandbox) → grid states, one case per state."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from gridshim.model import GridState, JobKind
from gridshim.render import labels as L
from gridshim.status import DETECTORS, K8S_TO_GRID, Facts, Observation, looks_stuck, observe, quota_never_fits, rows_from_objects
from kit import fixture

# All fixtures were captured between 19:26 and 19:38 UTC on 2026-11-22; "now" is a little later.
NOW = datetime(2026, 11, 22, 19, 40, tzinfo=UTC).timestamp()


def load(name: str) -> dict[str, Any]:
    return fixture(name)


def row_of(name: str, *, now: float = NOW) -> Any:
    fx = load(name)
    rows = rows_from_objects([fx["job"]], fx["pods"], fx["events"], now=now, user_prefix="tools.")
    assert len(rows) == 1
    return rows[0]


def ts(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


# fixture → (grid state, Kubernetes observation, substring of the message or None)
CASES = {
    "running_oneoff": (GridState.RUNNING, Observation.RUNNING, None),
    "running_continuous": (GridState.RUNNING, Observation.RUNNING, None),
    "restarted_pod_replaced": (GridState.RESTARTED, Observation.RUNNING_RESTARTED, None),
    "restarted_in_place": (GridState.RESTARTED, Observation.RUNNING_RESTARTED, None),
    "restart_pending": (GridState.RESTARTED_QUEUED, Observation.WAITING_RESTARTED, None),
    "deleting": (GridState.DELETING, Observation.DELETING, None),
    "start_error": (GridState.ERROR, Observation.CANNOT_START, "StartError: chdir to cwd"),
    "quota_never_fits": (GridState.ERROR, Observation.CANNOT_START, "limited: pods=0"),
    "quota_wait": (GridState.QUEUED, Observation.WAITING, "exceeded quota"),
    "unschedulable": (GridState.QUEUED, Observation.WAITING, "didn't match Pod's node affinity/selector"),
    "suspended": (GridState.QUEUED, Observation.SUSPENDED, None),
    "held": (GridState.HELD, Observation.HELD, None),  # qsub -h
    "not_before": (GridState.QUEUED, Observation.NOT_BEFORE, None),
    "finished_failed": (GridState.DONE, Observation.FINISHED, None),
    "finished_complete": (GridState.DONE, Observation.FINISHED, None),
    "cron_run": (GridState.RUNNING, Observation.RUNNING, None),
    "cron_waiting": (GridState.QUEUED, Observation.WAITING, "exceeded quota"),
}


@pytest.mark.parametrize("fixture", sorted(CASES), ids=sorted(CASES))
def test_state_from_real_objects(fixture: str) -> None:
    state, observation, message = CASES[fixture]
    row = row_of(fixture)
    assert (row.state, row.observation) == (state, observation.value)
    if message is None:
        assert row.message == ""
    else:
        assert message in row.message


def test_every_state_has_a_fixture() -> None:
    """Each row of the observation table is exercised by at least one real object."""
    assert {obs for _, obs, _ in CASES.values()} == set(Observation)


def test_the_mapping_is_a_total_table() -> None:
    assert set(K8S_TO_GRID) == set(Observation)
    assert [obs for obs, _ in DETECTORS][-1] is Observation.WAITING  # the catch-all comes last
    assert {obs for obs, _ in DETECTORS} == set(Observation)


class TestRunning:
    def test_queue_node_and_start_time_come_from_the_pod(self) -> None:
        fx = load("running_oneoff")
        row = row_of("running_oneoff")
        pod = fx["pods"][0]
        assert row.node == pod["spec"]["nodeName"] == "sandbox-node"
        assert row.queue == "task"
        started = pod["status"]["containerStatuses"][0]["state"]["running"]["startedAt"]
        assert row.start_time == ts(started)
        assert row.submit_time == ts(fx["job"]["metadata"]["creationTimestamp"])

    def test_continuous_job_is_on_the_continuous_queue(self) -> None:
        row = row_of("running_continuous")
        assert (row.kind, row.queue) == (JobKind.CONTINUOUS, "continuous")

    def test_identity_and_command_are_decoded(self) -> None:
        row = row_of("running_oneoff")
        assert (row.job_id, row.name, row.owner) == (8981583, "sleepy", "tools.qsfix")
        assert row.argv == ("/bin/sleep", "300")
        assert row.run_uid == row.run_gid == 52102
        assert row.mem_bytes == 512 * 1024 * 1024

    def test_in_place_restart_counts_and_new_start_time(self) -> None:
        fx = load("restarted_in_place")
        row = row_of("restarted_in_place")
        cs = fx["pods"][0]["status"]["containerStatuses"][0]
        assert row.restarts == cs["restartCount"] == 1
        assert row.start_time == ts(cs["state"]["running"]["startedAt"])

    def test_cron_runs_get_an_id_from_their_uid(self) -> None:
        fx = load("cron_run")
        row = row_of("cron_run")
        assert L.JOB_ID not in fx["job"]["metadata"]["labels"]
        assert row.job_id == L.job_id_from_uid(fx["job"]["metadata"]["uid"])
        assert (row.name, row.state) == ("cron-0", GridState.RUNNING)


class TestDeleting:
    def test_dying_job_is_dr_and_keeps_its_queue(self) -> None:
        row = row_of("deleting")
        assert row.state is GridState.DELETING and row.node == "sandbox-node"

    def test_dr_until_the_job_object_is_gone(self) -> None:
        """Foreground deletion keeps the Job a moment after its pods went; it stays `dr` until it is gone,
        as jsub -once refuses the name until then."""
        fx = load("deleting")
        rows = rows_from_objects([fx["job"]], [], [], now=NOW)
        assert rows[0].state is GridState.DELETING and rows[0].node == ""

    def test_dying_beats_failed(self) -> None:
        """A one-off Job can be marked Failed while its pod is still being killed: still dr."""
        fx = load("deleting")
        fx["job"]["status"]["conditions"] = [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]
        rows = rows_from_objects([fx["job"]], fx["pods"], [], now=NOW)
        assert rows[0].state is GridState.DELETING


class TestNotBefore:
    def test_waiting_until_its_start_time_with_hold_kind_a(self) -> None:
        row = row_of("not_before")
        assert row.not_before is not None and row.not_before > NOW
        assert (row.state, row.start_time, row.node) == (GridState.QUEUED, None, "")
        assert row.state_text == "qw" and "a" in row.holds  # SGE's qw; qstat -s ha selects it

    def test_running_after_its_start_time_which_is_the_start(self) -> None:
        nb = row_of("not_before").not_before
        assert nb is not None
        row = row_of("not_before", now=nb + 60)
        assert row.state is GridState.RUNNING
        assert row.start_time == nb  # the program started at -a, not when the wrapper began to wait


class TestFinished:
    def test_exit_codes(self) -> None:
        assert row_of("finished_failed").exit_code == 1
        assert row_of("finished_complete").exit_code == 0
        assert row_of("finished_complete").finished


class TestQuotaMessages:
    @pytest.mark.parametrize(("message", "verdict"), [
        ('pods "a" is forbidden: exceeded quota: tool-x, requested: pods=1, used: pods=0, limited: pods=0', True),
        ('pods "a" is forbidden: exceeded quota: tool-x, requested: limits.cpu=500m, used: limits.cpu=2, '
         'limited: limits.cpu=2', False),
        ('exceeded quota: q, requested: limits.memory=16Gi,pods=1, used: limits.memory=0,pods=0, '
         'limited: limits.memory=8Gi,pods=10', True),
        ('exceeded quota: q, requested: requests.memory=512Mi, used: requests.memory=7936Mi, '
         'limited: requests.memory=8Gi', False),
        ("pods \"a\" is forbidden: violates PodSecurity \"restricted:latest\"", None),
    ], ids=["pods-zero", "cpu-slot", "memory-too-big", "memory-slot", "not-quota"])
    def test_never_fits(self, message: str, verdict: bool | None) -> None:
        assert quota_never_fits(message) is verdict

    def test_admission_refusal_other_than_quota_is_eqw(self) -> None:
        fx = load("quota_wait")
        for ev in fx["events"]:
            ev["message"] = 'Error creating: pods "x" is forbidden: violates PodSecurity "restricted:latest"'
        rows = rows_from_objects([fx["job"]], [], fx["events"], now=NOW)
        assert rows[0].state is GridState.ERROR and "PodSecurity" in rows[0].message


class TestStuck:
    @pytest.mark.parametrize(("fixture", "stuck"), [
        ("quota_wait", True), ("quota_never_fits", True), ("restart_pending", True), ("running_oneoff", False),
        ("suspended", False), ("finished_failed", False), ("deleting", False), ("unschedulable", False),
    ])
    def test_events_are_only_needed_for_jobs_without_a_live_pod(self, fixture: str, stuck: bool) -> None:
        fx = load(fixture)
        assert looks_stuck(fx["job"], fx["pods"]) is stuck

    def test_events_are_ignored_for_jobs_with_a_pod(self) -> None:
        fx = load("running_oneoff")
        event = {"involvedObject": {"uid": fx["job"]["metadata"]["uid"]}, "reason": "FailedCreate",
                 "message": "exceeded quota: q, requested: pods=1, used: pods=0, limited: pods=0"}
        rows = rows_from_objects([fx["job"]], fx["pods"], [event], now=NOW)
        assert rows[0].state is GridState.RUNNING


def test_rows_from_objects_groups_pods_and_events_by_job() -> None:
    names = ["running_oneoff", "running_continuous", "quota_never_fits", "start_error"]
    fxs = [load(n) for n in names]
    jobs = [f["job"] for f in fxs]
    pods = [p for f in fxs for p in f["pods"]]
    events = [e for f in fxs for e in f["events"]]
    rows = rows_from_objects(jobs, pods, events, now=NOW)
    assert [r.state for r in rows] == [GridState.RUNNING, GridState.RUNNING, GridState.ERROR, GridState.ERROR]


def test_observe_precedence() -> None:
    base = dict(finished=False, deleting=False, suspended=False, waiting_for_start=False, start_error=None,
                running_since=None, restarted=False, message="")
    assert observe(Facts(**base)) is Observation.WAITING
    assert observe(Facts(**{**base, "deleting": True, "finished": True})) is Observation.DELETING
    assert observe(Facts(**{**base, "start_error": "x", "waiting_for_start": True})) is Observation.CANNOT_START
    assert observe(Facts(**{**base, "running_since": 1.0, "restarted": True})) is Observation.RUNNING_RESTARTED
    assert observe(Facts(**{**base, "suspended": True, "start_error": "x"})) is Observation.SUSPENDED


def test_job_started_counts_ran_pods_only() -> None:
    from gridshim.status import job_started

    assert not job_started({"status": {"active": 1}})  # a pending pod is active too
    for status in ({"ready": 1}, {"succeeded": 1}, {"failed": 1}, {"uncountedTerminatedPods": {"failed": ["u"]}}):
        assert job_started({"status": status}), status
    assert job_started({"status": {"active": 1}}, [{"status": {"phase": "Running"}}])
    assert not job_started({"status": {}}, [{"status": {"phase": "Pending"}}])
