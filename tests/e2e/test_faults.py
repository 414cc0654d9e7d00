"""Issue 7: API faults between gridshim and the real API server, injected by tests/e2e/faultproxy.py.

Every scenario counts the objects on the API server afterwards (through the admin kubeconfig, not
through the proxy): no duplicate job and no lost one, whatever was injected. The totals of faults
injected and duplicates found are kept in the pytest cache (gridshim/faults) for docs/reliability.md.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import Tool
from faultproxy import Fault, FaultProxy, start_for

JOBS = r"/apis/batch/v1/namespaces/[^/]+/jobs"
TOTALS: dict[str, Any] = {"faults_injected": 0, "by_kind": {}, "requests_seen": 0, "scenarios": 0,
                          "duplicates_found": 0, "lost_found": 0}


@pytest.fixture(scope="module", autouse=True)
def figures(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if getattr(request.config, "cache", None) is not None:  # absent with -p no:cacheprovider
        request.config.cache.set("gridshim/faults", TOTALS)


@pytest.fixture
def proxied(tool: Tool, sandbox: Any, tmp_path: Path) -> Iterator[tuple[Tool, FaultProxy, dict[str, str]]]:
    proxy = start_for(tool, sandbox, tmp_path / "proxy")
    kc = proxy.kubeconfig_for(tool.kubeconfig, tool.home / ".kube" / "via-proxy")
    os.chown(kc, tool.uid, tool.uid)
    yield tool, proxy, {"KUBECONFIG": str(kc)}
    proxy.stop()
    TOTALS["faults_injected"] += proxy.injected()
    for f in proxy.all_faults():
        TOTALS["by_kind"][f.kind] = TOTALS["by_kind"].get(f.kind, 0) + f.applied
    TOTALS["requests_seen"] += len(proxy.entries())
    TOTALS["scenarios"] += 1


def jobs_named(tool: Tool, name: str) -> list[dict[str, Any]]:
    items = tool.kubectl_json("get", "jobs")["items"]
    return [j for j in items if (j["metadata"].get("annotations") or {}).get("gridshim.io/name") == name]


def exactly_one(tool: Tool, name: str) -> dict[str, Any]:
    found = jobs_named(tool, name)
    if len(found) > 1:
        TOTALS["duplicates_found"] += len(found) - 1
    if not found:
        TOTALS["lost_found"] += 1
    assert len(found) == 1, [j["metadata"]["name"] for j in found]
    return found[0]


def submitted_id(stdout: str, name: str) -> int:
    m = re.fullmatch(rf'Your job (\d{{7}}) \("{re.escape(name)}"\) has been submitted\n', stdout)
    assert m, stdout
    return int(m.group(1))


def one_clean_line(stderr: str) -> str:
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


# -- idempotent reads retry ------------------------------------------------------------------------

@pytest.mark.needs_sandbox("the fault proxy serves and verifies with the sandbox's CA (tests/e2e/faultproxy.py)")
def test_reads_retry_through_resets_5xx_429_and_cut_handshakes(proxied: tuple[Tool, FaultProxy, dict]) -> None:
    tool, proxy, env = proxied
    proxy.add(Fault("reset_handshake"),
              Fault("reset", "GET", JOBS), Fault("status", "GET", JOBS, status=500),
              Fault("status", "GET", JOBS, status=502), Fault("status", "GET", JOBS, status=503, retry_after="1"),
              Fault("status", "GET", JOBS, status=504), Fault("status", "GET", JOBS, status=429, retry_after="1"))
    proc = tool.run("jsub", "-once", "-N", "steady", "/bin/true", env=env)  # -once LISTs before it creates
    assert proc.returncode == 0, proc.stderr + (tool.home / "steady.err").read_text()
    job = exactly_one(tool, "steady")
    assert job["metadata"]["labels"]["gridshim.io/job-id"] == str(submitted_id(proc.stdout, "steady"))
    assert proxy.injected() == 7
    gets = proxy.entries("GET", JOBS)
    assert [e.fault for e in gets] == ["reset", "status", "status", "status", "status", "status", None]
    assert len(proxy.entries("POST")) == 1


@pytest.mark.needs_sandbox("the fault proxy serves and verifies with the sandbox's CA (tests/e2e/faultproxy.py)")
def test_retry_after_is_honoured(proxied: tuple[Tool, FaultProxy, dict]) -> None:
    tool, proxy, env = proxied
    proxy.add(Fault("status", "GET", JOBS, status=429, retry_after="3"))
    proc = tool.run("jsub", "-once", "-N", "patient", "/bin/true", env=env)
    assert proc.returncode == 0, proc.stderr
    first, second = proxy.entries("GET", JOBS)
    assert first.fault == "status" and second.fault is None
    assert second.at - first.at >= 3.0  # a lower bound the client guarantees by sleeping, never flaky
    exactly_one(tool, "patient")


# -- a create whose answer is lost is recognised, never duplicated -----------------------------------

LOST = {
    "reset-after-create": [Fault("drop_answer", "POST", JOBS)],
    "500-after-create": [Fault("forward_then", "POST", JOBS, status=500)],
    "504-after-create": [Fault("forward_then", "POST", JOBS, status=504)],
    "twice-lost": [Fault("drop_answer", "POST", JOBS), Fault("forward_then", "POST", JOBS, status=503)],
}


@pytest.mark.needs_sandbox("the fault proxy serves and verifies with the sandbox's CA (tests/e2e/faultproxy.py)")
@pytest.mark.parametrize("once", [False, True], ids=["plain", "once"])
@pytest.mark.parametrize("scenario", list(LOST))
def test_lost_create_answer_is_recognised(proxied: tuple[Tool, FaultProxy, dict], scenario: str, once: bool) -> None:
    tool, proxy, env = proxied
    proxy.add(*[dataclasses.replace(f) for f in LOST[scenario]])
    name = f"lost{'once' if once else ''}"
    proc = tool.run("jsub", *(["-once"] if once else []), "-N", name, "/bin/sleep", "120", env=env)
    assert proc.returncode == 0, proc.stderr + (tool.home / f"{name}.err").read_text()
    job = exactly_one(tool, name)
    assert job["metadata"]["labels"]["gridshim.io/job-id"] == str(submitted_id(proc.stdout, name))
    posts = proxy.entries("POST", JOBS)
    # the first POST made the Job; the retry met 409 and recognised it by its token
    assert posts[0].upstream_status == 201 and posts[-1].upstream_status == 409
    assert len(posts) == len(LOST[scenario]) + 1
    tokens = {json.loads(p.body)["metadata"]["annotations"]["gridshim.io/token"] for p in posts}
    assert tokens == {job["metadata"]["annotations"]["gridshim.io/token"]}


@pytest.mark.needs_sandbox("the fault proxy serves and verifies with the sandbox's CA (tests/e2e/faultproxy.py)")
def test_create_delayed_past_the_timeout_is_not_duplicated(proxied: tuple[Tool, FaultProxy, dict]) -> None:
    """The first POST reaches the API server only after the client gave up on it and retried: the
    retry creates the Job, the late one meets 409. (With generateName, this made two Jobs.)"""
    tool, proxy, env = proxied
    proxy.add(Fault("delay", "POST", JOBS, seconds=14))
    # a 20 s budget gives each attempt 10 s, so the client times out before the delayed POST goes out
    proc = tool.run("jsub", "-N", "late", "/bin/sleep", "120", env={**env, "GRIDSHIM_RETRY_SECONDS": "20"})
    assert proc.returncode == 0, proc.stderr + (tool.home / "late.err").read_text()
    submitted_id(proc.stdout, "late")
    tool.wait_for(lambda: len(proxy.entries("POST", JOBS)) == 2
                  and all(e.upstream_status for e in proxy.entries("POST", JOBS)), timeout=60,
                  what="the delayed POST to reach the API server")
    assert sorted(e.upstream_status or 0 for e in proxy.entries("POST", JOBS)) == [201, 409]
    exactly_one(tool, "late")


@pytest.mark.needs_sandbox("the fault proxy serves and verifies with the sandbox's CA (tests/e2e/faultproxy.py)")
def test_every_answer_lost_still_finds_its_own_job(proxied: tuple[Tool, FaultProxy, dict]) -> None:
    tool, proxy, env = proxied
    proxy.add(Fault("drop_answer", "POST", JOBS, times=-1))
    proc = tool.run("jsub", "-N", "deaf", "/bin/sleep", "120", env={**env, "GRIDSHIM_RETRY_SECONDS": "4"})
    assert proc.returncode == 0, proc.stderr + (tool.home / "deaf.err").read_text()
    job = exactly_one(tool, "deaf")
    assert job["metadata"]["labels"]["gridshim.io/job-id"] == str(submitted_id(proc.stdout, "deaf"))
    assert len(proxy.entries("POST", JOBS)) >= 2


# -- when the budget runs out, one clear line --------------------------------------------------------

GIVE_UP = {
    "503": (Fault("status", status=503, times=-1), r"is failing \(503 Service Unavailable: injected by faultproxy"),
    "500": (Fault("status", status=500, times=-1), r"is failing \(500 Internal Server Error: injected by"),
    "429": (Fault("status", status=429, retry_after="1", times=-1), r"is overloaded \(429 Too Many Requests: inj"),
    "reset": (Fault("reset", times=-1), r"cannot reach the Kubernetes API at https://127\.0\.0\.1:\d+: "),
    "handshake": (Fault("reset_handshake", times=-1), r"cannot reach the Kubernetes API at https://127\.0\.0\.1:\d+: "),
}


@pytest.mark.needs_sandbox("the fault proxy serves and verifies with the sandbox's CA (tests/e2e/faultproxy.py)")
@pytest.mark.parametrize("scenario", list(GIVE_UP))
def test_budget_exhausted_gives_one_clear_line(proxied: tuple[Tool, FaultProxy, dict], scenario: str) -> None:
    tool, proxy, env = proxied
    fault, pattern = GIVE_UP[scenario]
    proxy.add(dataclasses.replace(fault))
    proc = tool.run("jsub", "-stderr", "-N", "down", "/bin/true", env={**env, "GRIDSHIM_RETRY_SECONDS": "3"})
    assert proc.returncode == 1 and proc.stdout == ""
    line = one_clean_line(proc.stderr)
    assert re.search(rf"^\[[^]]*\] (the Kubernetes API at https://127\.0\.0\.1:\d+ )?{pattern}", line), line
    assert re.search(r"gave up after \d+ attempts in \d+ s(, the server asked to retry after \d+ s)?; "
                     r"GRIDSHIM_RETRY_SECONDS=3 sets how long to retry", line)
    assert env["KUBECONFIG"] in line and "try again later" in line
    assert proxy.injected() >= 2  # it did retry
    assert jobs_named(tool, "down") == []


def post_only(tool: Tool, env: dict[str, str]) -> dict[str, str]:
    """These scenarios are about the create (POST): the site's `uid: namespace` would read the Namespace
    first and meet the fault there. `uid: self` is the same uid for the tool (the cluster enforces it)."""
    from conftest import STATE

    config = tool.home / "self-uid.yaml"  # where the tool's uid can read it (pytest's tmp_path is root's)
    config.write_text((STATE / "gridshim.yaml").read_text().replace("uid: namespace", "uid: self"))
    config.chmod(0o644)
    return {**env, "GRIDSHIM_CONFIG": str(config)}


@pytest.mark.needs_sandbox("the fault proxy serves and verifies with the sandbox's CA (tests/e2e/faultproxy.py)")
def test_retry_after_beyond_the_budget_gives_up_at_once(proxied: tuple[Tool, FaultProxy, dict]) -> None:
    tool, proxy, env = proxied
    env = post_only(tool, env)
    proxy.add(Fault("status", status=503, retry_after="3600", times=-1))
    proc = tool.run("jsub", "-N", "later", "/bin/true", env={**env, "GRIDSHIM_RETRY_SECONDS": "10"})
    assert proc.returncode == 1
    err = (tool.home / "later.err").read_text()  # jsub's own errors go to the job's .err file
    line = one_clean_line(err)
    assert "gave up after 1 attempt in 0 s, the server asked to retry after 3600 s" in line, line
    assert proxy.injected() == 1


@pytest.mark.needs_sandbox("the fault proxy serves and verifies with the sandbox's CA (tests/e2e/faultproxy.py)")
def test_lost_answer_then_outage_says_the_job_may_exist(proxied: tuple[Tool, FaultProxy, dict]) -> None:
    tool, proxy, env = proxied
    env = post_only(tool, env)
    proxy.add(Fault("drop_answer", "POST", JOBS), Fault("reset", times=-1))
    proc = tool.run("jsub", "-stderr", "-N", "maybe", "/bin/sleep", "120",
                    env={**env, "GRIDSHIM_RETRY_SECONDS": "3"})
    assert proc.returncode == 1
    line = one_clean_line(proc.stderr)
    assert "cannot reach the Kubernetes API" in line, line
    assert "an answer was lost, so the Job may exist: check with qstat before trying again" in line, line
    exactly_one(tool, "maybe")  # it was created once, by the attempt whose answer was lost


@pytest.mark.needs_sandbox("the fault proxy serves and verifies with the sandbox's CA (tests/e2e/faultproxy.py)")
def test_sync_survives_a_cut_watch(proxied: tuple[Tool, FaultProxy, dict]) -> None:
    tool, proxy, env = proxied
    proxy.add(Fault("reset", "GET", r"watch=", times=2))
    proc = tool.run("jsub", "-sync", "y", "-N", "watched", "/bin/sh", "-c", "sleep 3; exit 3", env=env)
    assert proc.returncode == 3, proc.stderr
    assert re.search(r"Job \d{7} exited with exit code 3\.", (tool.home / "watched.err").read_text())
    exactly_one(tool, "watched")


# -- the other commands: reads retry, deletes whose answer was lost count as done --------------------

@pytest.mark.needs_sandbox("the fault proxy serves and verifies with the sandbox's CA (tests/e2e/faultproxy.py)")
def test_qstat_job_and_jstop_through_faults(proxied: tuple[Tool, FaultProxy, dict]) -> None:
    tool, proxy, env = proxied
    proc = tool.run("jsub", "-N", "busy", "/bin/sleep", "300")
    assert proc.returncode == 0, proc.stderr
    job_id = str(submitted_id(proc.stdout, "busy"))
    proxy.add(Fault("reset_handshake"), Fault("reset", "GET", JOBS), Fault("status", "GET", JOBS, status=503),
              Fault("status", "GET", r"/pods", status=429, retry_after="1"))
    r = tool.run("qstat", env=env)
    assert r.returncode == 0 and re.search(rf"^{job_id} .* busy ", r.stdout, re.M), r.stdout + r.stderr
    proxy.add(Fault("status", "GET", JOBS, status=500), Fault("reset", "GET", JOBS))
    r = tool.run("job", "busy", env=env)
    assert (r.returncode, r.stdout) in ((1, f"{job_id}\n"), (2, f"{job_id}\n")), r.stderr
    # the DELETE reaches the API server but its answer is lost: the retry meets 404, which is success here
    proxy.add(Fault("drop_answer", "DELETE", JOBS + "/busy"))
    r = tool.run("jstop", "busy", env=env)
    assert r.returncode == 0 and re.fullmatch(rf"tools\.\S+ has registered the job {job_id} for deletion\n",
                                              r.stdout), r.stdout + r.stderr
    deletes = proxy.entries("DELETE", JOBS + "/busy")
    assert deletes[0].fault == "drop_answer" and deletes[0].upstream_status in (200, 202)
    assert [e.upstream_status for e in deletes[1:]] in ([404], [200], [202])  # gone, or still finishing
    tool.wait_for(lambda: not jobs_named(tool, "busy"), timeout=90, what="busy deleted")
    assert proxy.injected() == 7


@pytest.mark.needs_sandbox("the fault proxy serves and verifies with the sandbox's CA (tests/e2e/faultproxy.py)")
def test_qdel_through_faults(proxied: tuple[Tool, FaultProxy, dict]) -> None:
    tool, proxy, env = proxied
    ids = []
    for _ in range(3):
        proc = tool.run("jsub", "-N", "many", "/bin/sleep", "300")
        assert proc.returncode == 0, proc.stderr
        ids.append(str(submitted_id(proc.stdout, "many")))
    proxy.add(Fault("forward_then", "DELETE", JOBS, status=500), Fault("status", "DELETE", r"/pods", status=503),
              Fault("drop_answer", "DELETE", JOBS))
    r = tool.run("qdel", "many", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(re.findall(r"\d{7}", r.stdout)) == sorted(ids) and len(r.stdout.splitlines()) == 3
    tool.wait_for(lambda: not jobs_named(tool, "many"), timeout=90, what="all three deleted")
    assert proxy.injected() == 3


# -- crontab: no line lost, no CronJob twice --------------------------------------------------------

CMS = r"/api/v1/namespaces/[^/]+/configmaps"
CJS = r"/apis/batch/v1/namespaces/[^/]+/cronjobs"


def crontab_state(tool: Tool) -> tuple[str, list[str]]:
    """(crontab -l as stored, the names of the crontab's CronJobs), read through the admin kubeconfig."""
    cjs = tool.kubectl_json("get", "cronjobs")["items"]
    names = sorted(c["metadata"]["annotations"]["gridshim.io/name"] for c in cjs)
    if len(names) != len(set(names)):
        TOTALS["duplicates_found"] += len(names) - len(set(names))
    listed = tool.run("crontab", "-l")
    return listed.stdout, names


def cron_text(tag: str, n: int) -> str:
    return "".join(f"{(7 * i) % 60} 3 * * * jsub -once -N {tag}{i} /bin/true\n" for i in range(n)) + \
        f"@weekly echo plain-{tag}\n"


def expected_names(tag: str, n: int) -> list[str]:
    return sorted([f"{tag}{i}" for i in range(n)] + [f"cron-{n}"])


@pytest.mark.needs_sandbox("the fault proxy serves and verifies with the sandbox's CA (tests/e2e/faultproxy.py)")
def test_crontab_install_through_transient_faults(proxied: tuple[Tool, FaultProxy, dict]) -> None:
    tool, proxy, env = proxied
    text = cron_text("a", 6)
    proxy.add(Fault("status", "GET", CMS, status=503), Fault("reset", "POST", CMS),
              Fault("status", "GET", CJS, status=429, retry_after="1"),
              Fault("status", "POST", CJS, status=500, times=2),
              Fault("reset", "POST", CJS), Fault("status", "POST", CJS, status=503))
    r = tool.run("crontab", "-", input=text, env=env)
    assert r.returncode == 0, r.stderr
    assert crontab_state(tool) == (text, expected_names("a", 6))
    assert proxy.injected() == 7


@pytest.mark.needs_sandbox("the fault proxy serves and verifies with the sandbox's CA (tests/e2e/faultproxy.py)")
@pytest.mark.parametrize("kind", ["drop_answer", "forward_then"])
def test_crontab_writes_whose_answer_was_lost(proxied: tuple[Tool, FaultProxy, dict], kind: str) -> None:
    """The commit (ConfigMap create, then PUT) and CronJob creates and deletes reach the API server
    but their answers are lost; every retry recognises its own write."""
    tool, proxy, env = proxied
    first, second = cron_text("b", 4), cron_text("c", 3)
    proxy.add(Fault(kind, "POST", CMS, status=500), Fault(kind, "POST", CJS, status=500, times=2))
    r = tool.run("crontab", "-", input=first, env=env)
    assert r.returncode == 0, r.stderr
    assert crontab_state(tool) == (first, expected_names("b", 4))
    proxy.add(Fault(kind, "PUT", CMS, status=500), Fault(kind, "DELETE", CJS, status=500, times=2),
              Fault(kind, "POST", CJS, status=500))
    r = tool.run("crontab", "-", input=second, env=env)
    assert r.returncode == 0, r.stderr
    assert crontab_state(tool) == (second, expected_names("c", 3))
    assert tool.run("crontab", "--previous").stdout == first
    assert proxy.injected() == 7
    lost = [e for e in proxy.entries() if e.fault == kind]
    assert all(e.upstream_status and e.upstream_status < 300 for e in lost)  # each lost write had happened


@pytest.mark.needs_sandbox("the fault proxy serves and verifies with the sandbox's CA (tests/e2e/faultproxy.py)")
def test_crontab_outage_keeps_the_text_and_sync_finishes(proxied: tuple[Tool, FaultProxy, dict]) -> None:
    """The API server stops accepting CronJobs mid-install: the user is told, the crontab text is kept,
    and `crontab --sync` afterwards creates exactly the missing entries."""
    tool, proxy, env = proxied
    text = cron_text("d", 5)
    proxy.add(Fault("status", "POST", CJS, status=503, times=-1))
    r = tool.run("crontab", "-", input=text, env={**env, "GRIDSHIM_RETRY_SECONDS": "2"})
    assert r.returncode == 1
    assert not re.search(r"Traceback|internal error", r.stderr), r.stderr
    assert re.search(r"is failing \(503 Service Unavailable", r.stderr), r.stderr
    stored, names = crontab_state(tool)
    assert stored == text and names == []
    proxy.clear()
    r = tool.run("crontab", "--sync", env=env)
    assert r.returncode == 0, r.stderr
    assert crontab_state(tool) == (text, expected_names("d", 5))
