"""qstat trims each listed Job as its page is decoded (status.slim_job, control passes it as the LIST's
trim): the rows, and so every qstat layout, must be exactly those of the full objects."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from gridshim.status import job_row, slim_job
from kit import fixture, fixture_names

NOW = 1795203600.0
NAMES = fixture_names()


def as_array(job: dict[str, Any]) -> dict[str, Any]:
    job = copy.deepcopy(job)
    ann = job["metadata"].setdefault("annotations", {})
    opts = json.loads(ann.get("gridshim.io/options") or "{}")
    opts.update(tasks=[1, 9, 2], tc=2)
    ann["gridshim.io/options"] = json.dumps(opts)
    job["spec"]["completions"] = 5
    return job


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("array", [False, True])
def test_rows_of_slim_jobs_are_those_of_full_jobs(name: str, array: bool) -> None:
    fx = fixture(name)
    job = as_array(fx["job"]) if array else fx["job"]
    full = job_row(job, fx["pods"], fx["events"], now=NOW)
    slim = slim_job(job)
    assert job_row(slim, fx["pods"], fx["events"], now=NOW) == full
    assert job_row(slim_job(slim), fx["pods"], fx["events"], now=NOW) == full  # trimming twice changes nothing


def test_slim_job_drops_the_pod_template() -> None:
    fx = fixture("running_oneoff")
    slim = slim_job(fx["job"])
    containers = slim["spec"]["template"]["spec"]["containers"]
    assert [set(c) for c in containers] == [{"securityContext"}]
    assert len(json.dumps(slim, default=str)) < len(json.dumps(fx["job"]))
