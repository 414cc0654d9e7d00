"""Issue 13: a second, independent API server that serves no batch/v1 CronJobs (`sandbox.up up --dir DIR
--api-only --no-cronjobs`: etcd, kube-apiserver with --runtime-config=batch/v1/cronjobs=false, the
controller manager; no scheduler, no node), and the suite's external mode pointed at it.

Started once for this module (about 5 s) and stopped at its end; the shared sandbox is not touched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import REPO, Sandbox, Tool, write
from test_doctor_migrate import lines_of

CRONTAB = "*/5 * * * * jsub -once -N tick /bin/true\n@daily jsub -N nightly /bin/echo hi\n"


@pytest.fixture(scope="module")
def no_cronjobs() -> Iterator[Sandbox]:
    """A second sandbox instance whose kube-apiserver runs without batch/v1 CronJobs."""
    # Not under pytest's tmp_path: that is 0700 root's, and the tool's uid must reach its home and the
    # site config. The instance owns the directory whole; it is removed at the end.
    top = Path(tempfile.mkdtemp(prefix="gridshim-nocron-"))
    top.chmod(0o755)
    where = top / "sb"
    cmd = [sys.executable, "-m", "sandbox.up", "--dir", str(where)]
    proc = subprocess.run([*cmd, "up", "--api-only", "--no-cronjobs"], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    if proc.returncode != 0:
        subprocess.run([*cmd, "down"], cwd=REPO, capture_output=True, timeout=120)
        pytest.fail(f"the second API server did not start (exit {proc.returncode}):\n{proc.stderr}", pytrace=False)
    try:
        state = json.loads((where / "state.json").read_text())
        yield Sandbox(state=state, started_here=True, state_dir=where)
    finally:
        down = subprocess.run([*cmd, "down"], cwd=REPO, capture_output=True, text=True, timeout=120)
        assert down.returncode == 0, down.stderr
        shutil.rmtree(top)


def demo_of(sb: Sandbox) -> Tool:
    return Tool(name="demo", home=Path(sb.state["home_root"]) / "demo", uid=sb.state["tools"]["demo"], sandbox=sb)


def stored(sb: Sandbox, namespace: str) -> list[str]:
    """Every object the namespace holds that a crontab install could have written (ConfigMaps, CronJobs
    under any served batch version, Jobs), as kubectl's kind/name."""
    names = [n for n in sb.kubectl("get", "configmaps", "-n", namespace, "-o", "name").stdout.split()
             if n != "configmap/kube-root-ca.crt"]  # the controller manager's, in every namespace
    names += sb.kubectl("get", "jobs.batch", "-n", namespace, "-o", "name").stdout.split()
    groups = json.loads(sb.kubectl("get", "--raw", "/apis/batch").stdout)
    for version in groups["versions"]:
        served = json.loads(sb.kubectl("get", "--raw", f"/apis/{version['groupVersion']}").stdout)
        if any(r["name"] == "cronjobs" for r in served["resources"]):
            names.append(f"cronjobs served in {version['groupVersion']}")
    return names


@pytest.mark.needs_sandbox("starts a kube-apiserver of its own on this machine")
def test_the_second_api_server_serves_jobs_but_no_cronjobs(no_cronjobs: Sandbox, sandbox: Sandbox) -> None:
    batch = json.loads(no_cronjobs.kubectl("get", "--raw", "/apis/batch/v1").stdout)
    assert {r["name"] for r in batch["resources"]} == {"jobs", "jobs/status"}
    assert no_cronjobs.state["server"] != sandbox.state["server"]
    assert no_cronjobs.state["apiserver_args"] == ["--runtime-config=batch/v1/cronjobs=false"]
    # its own CA: the shared sandbox's CA does not vouch for its serving certificate
    wrong = subprocess.run([str(sandbox.bin / "kubectl"), f"--kubeconfig={sandbox.admin_kubeconfig}",
                            f"--server={no_cronjobs.state['server']}", "get", "namespaces"],
                           capture_output=True, text=True, timeout=60)
    assert wrong.returncode != 0 and "certificate" in wrong.stderr


@pytest.mark.needs_sandbox("starts a kube-apiserver of its own on this machine")
def test_crontab_is_refused_in_one_line_and_stores_nothing(no_cronjobs: Sandbox) -> None:
    demo = demo_of(no_cronjobs)
    path = write(demo, "crontab.txt", CRONTAB)
    proc = demo.run("crontab", str(path))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    [line] = proc.stderr.splitlines()  # one line, the hint included
    assert line.startswith("crontab: this cluster's API server does not serve batch/v1 CronJobs, so a crontab "
                           "cannot run; nothing was stored"), line
    assert "'gridshim doctor' checks it" in line, line
    assert proc.stdout == ""
    assert stored(no_cronjobs, demo.namespace) == []
    # the store is really reachable: crontab -l reads it (and finds nothing), so the refusal above is
    # the discovery check's, not a connection failure
    listing = demo.run("crontab", "-l")
    assert listing.returncode == 1 and "no crontab for" in listing.stderr, listing.stderr


@pytest.mark.needs_sandbox("starts a kube-apiserver of its own on this machine")
def test_doctor_reports_the_missing_api_and_fails(no_cronjobs: Sandbox) -> None:
    demo = demo_of(no_cronjobs)
    proc = demo.run("gridshim", "doctor")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    checks = lines_of(proc.stdout)
    assert checks["API groups"] == "FAIL not served: batch/v1 cronjobs (needed by crontab)", proc.stdout
    assert checks["API server"].startswith(f"ok {no_cronjobs.state['server']} answers: Kubernetes v1."), proc.stdout
    others = {k: v for k, v in checks.items() if k != "API groups"}
    assert all(v.startswith("ok ") for v in others.values()), proc.stdout
    assert proc.stdout.rstrip().endswith("1 problem: API groups.")


@pytest.mark.needs_sandbox("starts a kube-apiserver of its own on this machine")
def test_external_mode_sets_a_tool_up_through_the_api_and_skips_with_reasons(no_cronjobs: Sandbox) -> None:
    """The suite's external mode against the second API server: tools made through its admin kubeconfig
    (certificates from the cluster's CSR signer) run qstat, may not change their namespace's uid nor read
    another tool's namespace; a test marked needs_sandbox is skipped with its reason under -ra."""
    work = no_cronjobs.state_dir / "external-work"  # reachable by the tools' uids, unlike tmp_path
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDSHIM_E2E_")}
    env.update({"GRIDSHIM_E2E_KUBECONFIG": str(no_cronjobs.state_dir / "admin.kubeconfig"),
                "GRIDSHIM_E2E_WORKDIR": str(work), "GRIDSHIM_E2E_UID_BASE": "55000"})
    tests = ["tests/e2e/test_qstat.py::test_qstat_prints_nothing_for_a_tool_without_jobs",
             "tests/e2e/test_other_cluster.py::test_the_second_api_server_serves_jobs_but_no_cronjobs",
             "tests/e2e/test_tenancy.py::test_b_cannot_change_its_namespaces_uid_and_reads_only_its_own"]
    proc = subprocess.run([sys.executable, "-m", "pytest", "-ra", "-p", "no:cacheprovider", *tests], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "2 passed, 1 skipped" in out, out
    assert ("SKIPPED [1] tests/e2e/test_other_cluster.py:" in out
            and "external cluster: needs the sandbox: starts a kube-apiserver of its own on this machine" in out), out
    # the tools it made are gone again (their namespaces are being deleted), their homes are here
    left = no_cronjobs.kubectl_json("get", "namespaces", "-l", "gridshim.io/e2e-run")
    assert all(ns["status"]["phase"] == "Terminating" for ns in left["items"]), left
    assert len(left["items"]) == 3
    homes = sorted(p.name for p in (work / "homes").iterdir())
    assert len(homes) == 3 and all((work / "homes" / h / ".kube/config").exists() for h in homes)

