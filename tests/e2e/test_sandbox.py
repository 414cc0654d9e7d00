"""Issue 2: the sandbox is a real, secured Kubernetes whose node really runs pods."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from conftest import REPO, STATE, Sandbox, Tool


def _restricted_job(name: str, uid: int, home: str, command: str) -> dict:
    return {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
        "spec": {"backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never",
            "securityContext": {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "c", "image": "sandbox.local/base", "command": ["/bin/sh", "-c", command],
                            "env": [{"name": "HOME", "value": home}],
                            "securityContext": {"allowPrivilegeEscalation": False,
                                                "capabilities": {"drop": ["ALL"]}}}]}}},
    }


@pytest.mark.needs_sandbox("expects the sandbox's one node, sandbox-node")
def test_node_is_ready(sandbox: Sandbox) -> None:
    nodes = sandbox.kubectl_json("get", "nodes")["items"]
    assert [n["metadata"]["name"] for n in nodes] == ["sandbox-node"]
    ready = {c["type"]: c["status"] for c in nodes[0]["status"]["conditions"]}
    assert ready["Ready"] == "True"


@pytest.mark.needs_shared_home("a hand-made Job writes into the tool's home and the test reads it")
def test_restricted_job_fails_with_real_exit_code_and_writes_home(sandbox: Sandbox, tool: Tool) -> None:
    job = _restricted_job("exit3", tool.uid, str(tool.home), "echo hi > $HOME/x.txt; exit 3")
    sandbox.kubectl("-n", tool.namespace, "apply", "-f", "-", kubeconfig=tool.kubeconfig, input=json.dumps(job))
    sandbox.kubectl("-n", tool.namespace, "wait", "--for=condition=Failed", "job/exit3", "--timeout=90s")
    pods = tool.kubectl_json("get", "pods", "-l", "job-name=exit3")["items"]
    assert len(pods) == 1
    assert pods[0]["status"]["phase"] == "Failed"
    assert pods[0]["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 3
    assert (tool.home / "x.txt").read_text() == "hi\n"
    assert (tool.home / "x.txt").stat().st_uid == tool.uid


@pytest.mark.needs_sandbox("uses the sandbox's own tool 'other'")
def test_other_tool_cannot_list_jobs(sandbox: Sandbox) -> None:
    other = str(STATE / "data/project/other/.kube/config")
    proc = sandbox.kubectl("-n", "tool-demo", "get", "jobs", kubeconfig=other, check=False)
    assert proc.returncode != 0
    assert "Forbidden" in proc.stderr and 'User "other" cannot list resource "jobs"' in proc.stderr


def test_root_pod_is_refused_by_podsecurity(sandbox: Sandbox, tool: Tool) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "root"},
           "spec": {"securityContext": {"runAsUser": 0},
                    "containers": [{"name": "c", "image": "x", "command": ["/bin/true"]}]}}
    proc = sandbox.kubectl("-n", tool.namespace, "create", "-f", "-", kubeconfig=tool.kubeconfig,
                           input=json.dumps(pod), check=False)
    assert proc.returncode != 0
    assert 'violates PodSecurity "restricted:latest"' in proc.stderr
    assert "runAsUser=0" in proc.stderr


@pytest.mark.needs_sandbox("reads the sandbox's state files (.sandbox/env, state.json)")
def test_env_file_exports_what_tests_and_people_need(sandbox: Sandbox) -> None:
    text = (STATE / "env").read_text()
    for var in ("KUBECONFIG", "HOME", "PATH", "SANDBOX_TOOL_UID", "SANDBOX_ADMIN_KUBECONFIG",
                "SANDBOX_OTHER_KUBECONFIG", "GRIDSHIM_CONFIG"):
        assert f"export {var}=" in text
    out = subprocess.run(["bash", "-c", f"source {STATE / 'env'} && kubectl config view --minify -o json"],
                         capture_output=True, text=True, check=True).stdout
    assert json.loads(out)["contexts"][0]["context"]["namespace"] == "tool-demo"


@pytest.mark.needs_sandbox("reads the sandbox's state files (.sandbox/env, state.json)")
def test_sandbox_up_is_idempotent(sandbox: Sandbox) -> None:
    before = json.loads((STATE / "state.json").read_text())
    proc = subprocess.run([sys.executable, "-m", "sandbox.up", "up"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "already running" in proc.stderr
    assert json.loads((STATE / "state.json").read_text())["server"] == before["server"]


@pytest.mark.needs_sandbox("starts and stops a private sandbox with sandbox.up")
def test_down_then_up_leaves_no_process_behind(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A second, private sandbox (own state dir): down must leave none of its processes running."""
    env = {**os.environ, "SANDBOX_DIR": str(tmp_path / "sb")}
    up = subprocess.run([sys.executable, "-m", "sandbox.up", "up"], cwd=REPO, env=env, capture_output=True,
                        text=True, timeout=300)
    assert up.returncode == 0, up.stderr
    pids = [int(p.read_text()) for p in (tmp_path / "sb/pids").glob("*.pid")]
    assert len(pids) == 5
    down = subprocess.run([sys.executable, "-m", "sandbox.up", "down"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)
    assert down.returncode == 0, down.stderr
    time.sleep(0.5)
    survivors = [p for p in pids if os.path.exists(f"/proc/{p}") and
                 open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"]
    assert survivors == []
    assert not list((tmp_path / "sb/pids").glob("*.pid"))
