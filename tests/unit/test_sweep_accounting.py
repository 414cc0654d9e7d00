"""The release sweep's accounting backstop (depends.account_ended): a Job whose whole container was
SIGKILLed (an OOM kill, a lost node) ended Failed with no record from its wrapper; the sweep, which runs
every minute while it exists, writes it before the TTL removes the Job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gridshim import depends, records
from gridshim.accounting import load
from gridshim.config import Settings
from gridshim.model import JobKind, JobRequest
from gridshim.render import labels as L
from kit import FakeApi


def manifest(name: str) -> dict[str, Any]:
    req = JobRequest(name=name, kind=JobKind.ONE_OFF, tool="demo", argv=("/bin/true",), mem_bytes=1, once=False,
                     stdout="/o", stderr="/e", workdir="/", home="/", image="i", token=f"tok-{name}")
    labels = L.labels_for(req)
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "labels": labels, "annotations": L.annotations_for(req)},
            "spec": {"template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "job", "image": "i"}]}}}}


def namespace() -> FakeApi:
    api = FakeApi()
    for name, code in (("ok", 0), ("oom", 137), ("three", 3)):
        api.create(manifest(name))
        api.start(name)
        api.finish(name, code)
    return api


def test_the_sweep_writes_the_record_of_a_job_whose_container_was_killed_and_only_once(tmp_path: Path) -> None:
    api = namespace()
    settings = Settings(accounting_file=str(tmp_path / "acct"))
    def pods_of(job: dict[str, Any]) -> list[dict[str, Any]]:
        return [p for p in api.objects("Pod") if p["metadata"]["ownerReferences"][0]["uid"] == job["metadata"]["uid"]]

    for job in api.objects("Job"):  # ok's and three's records are there already; oom's wrapper died with it
        if job["metadata"]["name"] != "oom":
            assert records.ensure_records(job, pods_of(job), settings=settings, home="/h", now=2e9) == 1
    seen: list[str] = []

    def account(job: dict[str, Any], pods: list[dict[str, Any]]) -> int:
        seen.append(job["metadata"]["name"])
        return records.ensure_records(job, pods, settings=settings, home="/h", now=2e9)

    result = depends.sweep(api, account=account)
    assert result.accounted == 1 and sorted(seen) == ["oom", "three"]  # Failed Jobs only; ok ended Complete
    recs = load((tmp_path / "acct").read_text())
    assert sorted((r.job_name, r.failed, r.exit_status) for r in recs) == [("ok", 0, 0), ("oom", 100, 137),
                                                                          ("three", 0, 3)]
    assert depends.sweep(api, account=account).accounted == 0  # the next minute's sweep: nothing more
    assert len((tmp_path / "acct").read_text().splitlines()) == 3


def test_without_an_ended_job_the_sweep_lists_no_pods() -> None:
    api = FakeApi()
    api.create(manifest("live"))
    api.start("live")
    api.calls.clear()
    assert depends.sweep(api, account=lambda job, pods: 1).accounted == 0
    assert "Pod" not in [c.kind for c in api.calls if c.verb == "list"]
