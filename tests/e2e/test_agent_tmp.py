"""The node agent gives every container a private /tmp and /dev/shm, as a container runtime does.

A job must not see what the submit host left in /tmp or /dev/shm, two jobs running at the same time
must not see each other's, a pod's init container and main container each get their own, the job
can write there (mode 1777), nothing it writes reaches the host's /tmp, a hostPath volume under /tmp
is still "the same local path" inside, and the agent removes the per-container directories once the
pod is done. Every job also proves it runs on this machine's file system (it sees a file the host
put in $HOME), so "not visible" means isolated, not elsewhere.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from conftest import STATE, Sandbox, Tool

PODTMP = STATE / "agent" / "podtmp"



REPO = Path(__file__).resolve().parents[2]
# The first path element under /tmp of the checkout, if the checkout lies there (else a name never seen).
CHECKOUT_TOP = REPO.relative_to("/tmp").parts[0] if REPO.is_relative_to("/tmp") else "-no-checkout-in-tmp-"

def rand() -> str:
    return uuid.uuid4().hex[:12]


def sh(tool: Tool, line: str) -> None:
    """A shell line on the submit host, as the tool."""
    proc = tool.run(line, shell=True)
    assert proc.returncode == 0, proc.stderr


def jsub_sync(tool: Tool, name: str, script: str) -> subprocess.CompletedProcess[str]:
    return tool.run("jsub", "-sync", "y", "-N", name, "/bin/sh", "-c", script)


def outputs(tool: Tool, name: str) -> str:
    return (f"--- {name}.out:\n{(tool.home / f'{name}.out').read_text(errors='replace')}"
            f"--- {name}.err:\n{(tool.home / f'{name}.err').read_text(errors='replace')}")


def pod_uids(tool: Tool) -> list[str]:
    return [p["metadata"]["uid"] for p in tool.kubectl_json("get", "pods")["items"]]


def no_private_dirs_left(uids: list[str]) -> bool:
    return not any((PODTMP / u).exists() for u in uids)


@pytest.mark.needs_sandbox("checks the sandbox node agent's private /tmp and /dev/shm")
def test_job_sees_neither_the_hosts_tmp_nor_dev_shm_and_can_write_its_own(tool: Tool) -> None:
    r = rand()
    host_tmp, host_shm = f"/tmp/gridshim-e2e-{r}", f"/dev/shm/gridshim-e2e-{r}"
    job_file = f"gridshim-e2e-job-{r}"
    try:
        sh(tool, f"echo host > {host_tmp} && echo host > {host_shm} && chmod 644 {host_tmp} {host_shm} "
                 f"&& echo home > $HOME/seen-{r}")
        assert Path(host_tmp).read_text() == "host\n" and Path(host_shm).read_text() == "host\n"
        script = (f"test -e $HOME/seen-{r} || exit 9; "          # same machine: the home is there
                  f"test ! -e {host_tmp} || exit 10; "
                  f"test ! -e {host_shm} || exit 11; "
                  "test \"$(stat -c %a:%u /tmp)\" = 1777:0 || exit 12; "
                  "test \"$(stat -c %a:%u /dev/shm)\" = 1777:0 || exit 13; "
                  f"echo job > /tmp/{job_file} || exit 14; "
                  f"echo job > /dev/shm/{job_file} || exit 15; "
                  f"test \"$(cat /tmp/{job_file})\" = job || exit 16; "
                  # jsub's wrapper may make the job's own $TMPDIR in /tmp (as SGE does): not counted; nor is
                  # the checkout when it lies under /tmp (CI's clone), which the agent shows as a node's mounts
                  f"echo tmp: $(ls -A /tmp | grep -vxF \"${{TMPDIR#/tmp/}}\" | grep -vxF -e '{CHECKOUT_TOP}'); "
                  "echo shm: $(ls -A /dev/shm)")
        proc = jsub_sync(tool, "privtmp", script)
        assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stderr}\n{outputs(tool, 'privtmp')}"
        # a fresh /tmp and /dev/shm: nothing in them but what the job itself wrote
        assert (tool.home / "privtmp.out").read_text() == f"tmp: {job_file}\nshm: {job_file}\n"
        # and nothing of it reached the host
        assert not Path(f"/tmp/{job_file}").exists() and not Path(f"/dev/shm/{job_file}").exists()
        assert Path(host_tmp).read_text() == "host\n" and Path(host_shm).read_text() == "host\n"
        uids = pod_uids(tool)
        assert len(uids) == 1
        tool.wait_for(lambda: no_private_dirs_left(uids), timeout=30,
                      what="the agent to remove the finished pod's private /tmp")
    finally:
        for p in (host_tmp, host_shm, f"/tmp/{job_file}", f"/dev/shm/{job_file}"):
            Path(p).unlink(missing_ok=True)


@pytest.mark.needs_sandbox("checks the sandbox node agent's private /tmp and /dev/shm")
def test_two_running_jobs_do_not_share_tmp_or_dev_shm(tool: Tool) -> None:
    r = rand()
    mine = f"gridshim-e2e-first-{r}"
    first = (f"echo first > /tmp/{mine} && echo first > /dev/shm/{mine} || exit 20; "
             "touch $HOME/first-ready; n=0; "
             "while [ ! -e $HOME/second-done ]; do n=$((n+1)); [ $n -lt 600 ] || exit 21; sleep 0.1; done; "
             f"test \"$(cat /tmp/{mine})\" = first || exit 22; "    # the second job did not clobber it
             f"test \"$(cat /dev/shm/{mine})\" = first || exit 23; "
             "echo first ok")
    proc = tool.run("jsub", "-N", "first", "/bin/sh", "-c", first)
    assert proc.returncode == 0, proc.stderr
    tool.wait_for((tool.home / "first-ready").exists, timeout=90, what="the first job to write its /tmp file")
    assert (PODTMP.exists() and any(PODTMP.glob(f"*/*/tmp/{mine}"))), \
        "the running job's /tmp file is not in the agent's per-container directory"
    second = (f"test ! -e /tmp/{mine} || exit 30; test ! -e /dev/shm/{mine} || exit 31; "
              f"echo second > /tmp/{mine} || exit 32; "           # the same name, its own file
              "touch $HOME/second-done; echo second ok")
    proc = jsub_sync(tool, "second", second)
    (tool.home / "second-done").touch()  # let the first job finish whatever happened
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stderr}\n{outputs(tool, 'second')}"
    assert (tool.home / "second.out").read_text() == "second ok\n"
    tool.wait_for(lambda: (tool.home / "first.out").exists() and (tool.home / "first.out").read_text() == "first ok\n",
                  timeout=90, what="the first job to finish")
    assert "exited with exit code" not in (tool.home / "first.err").read_text(), outputs(tool, "first")
    assert not Path(f"/tmp/{mine}").exists() and not Path(f"/dev/shm/{mine}").exists()
    uids = pod_uids(tool)
    assert len(uids) == 2
    tool.wait_for(lambda: no_private_dirs_left(uids), timeout=30,
                  what="the agent to remove the finished pods' private /tmp")


def finished_pod(sandbox: Sandbox, ns: str, *selector: str, timeout: float = 90) -> dict[str, Any]:
    """The one pod `kubectl get pods SELECTOR` finds, once it is Succeeded or Failed."""
    deadline = time.monotonic() + timeout
    while True:
        items = sandbox.kubectl_json("-n", ns, "get", "pods", *selector)["items"]
        if len(items) == 1 and items[0]["status"].get("phase") in ("Succeeded", "Failed"):
            return items[0]
        assert time.monotonic() < deadline, f"no finished pod {selector} in {ns}: {json.dumps(items)[:3000]}"
        time.sleep(0.3)


def _job(name: str, uid: int, home: str, init: str, main: str) -> dict[str, Any]:
    """A Job that passes PodSecurity restricted, with one init container and one container."""
    sec = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}

    def container(cname: str, script: str) -> dict[str, Any]:
        return {"name": cname, "image": "sandbox.local/base", "command": ["/bin/sh", "-c", script],
                "env": [{"name": "HOME", "value": home}], "securityContext": sec}
    return {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
        "spec": {"backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never",
            "securityContext": {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "initContainers": [container("init", init)],
            "containers": [container("main", main)]}}},
    }


@pytest.mark.needs_sandbox("checks the sandbox node agent's private /tmp and /dev/shm")
def test_init_and_main_container_each_get_their_own_tmp(sandbox: Sandbox, tool: Tool) -> None:
    """Per container, not per pod: what the init container leaves in /tmp is gone for the main one."""
    r = rand()
    job = _job("percontainer", tool.uid, str(tool.home),
               init=f"echo init > /tmp/init-{r} && echo init > /dev/shm/init-{r} && test -e /tmp/init-{r}",
               main=(f"test -e $$HOME/.kube/config || exit 40; "
                     f"test ! -e /tmp/init-{r} || exit 41; test ! -e /dev/shm/init-{r} || exit 42; "
                     f"echo main > /tmp/main-{r} || exit 43; echo main ok > $$HOME/percontainer-{r}"))
    sandbox.kubectl("-n", tool.namespace, "apply", "-f", "-", kubeconfig=tool.kubeconfig, input=json.dumps(job))
    pod = finished_pod(sandbox, tool.namespace, "-l", "job-name=percontainer")
    status = pod["status"]
    init_code = status["initContainerStatuses"][0]["state"].get("terminated", {}).get("exitCode")
    main_code = status["containerStatuses"][0]["state"].get("terminated", {}).get("exitCode")
    assert (init_code, main_code) == (0, 0), json.dumps(status, indent=1)
    assert status["phase"] == "Succeeded"
    assert (tool.home / f"percontainer-{r}").read_text() == "main ok\n"
    assert not Path(f"/tmp/init-{r}").exists() and not Path(f"/tmp/main-{r}").exists()
    tool.wait_for(lambda: no_private_dirs_left([pod["metadata"]["uid"]]), timeout=30,
                  what="the agent to remove the pod's private /tmp")


@pytest.mark.needs_sandbox("checks the sandbox node agent's private /tmp and /dev/shm")
def test_hostpath_volume_under_tmp_is_still_the_same_local_path(sandbox: Sandbox, tool: Tool) -> None:
    """PodSecurity keeps hostPath out of tool namespaces, so this pod goes into a namespace of its own."""
    r = rand()
    ns = f"e2e-tmp-{r}"
    base = Path(f"/tmp/gridshim-e2e-hp-{r}")
    data = base / "data"
    try:
        data.mkdir(parents=True)
        (data / "hello").write_text("from the host\n")
        (base / "sibling").write_text("not mounted\n")
        for p in (base, data):
            os.chown(p, tool.uid, tool.uid)
            p.chmod(0o755)
        sandbox.kubectl("create", "namespace", ns)
        deadline = time.monotonic() + 60
        while sandbox.kubectl("-n", ns, "get", "serviceaccount", "default", check=False).returncode != 0:
            assert time.monotonic() < deadline, "no default service account in the new namespace"
            time.sleep(0.3)
        script = (f"test \"$(cat {data}/hello)\" = 'from the host' || exit 50; "
                  f"test ! -e {base}/sibling || exit 51; "        # only the volume is bound in, not its parent
                  f"echo from the pod > {data}/from-pod || exit 52; "
                  "test \"$(stat -c %a /tmp)\" = 1777 || exit 53")
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "hp"},
               "spec": {"restartPolicy": "Never", "automountServiceAccountToken": False,
                        "securityContext": {"runAsUser": tool.uid, "runAsGroup": tool.uid},
                        "volumes": [{"name": "data", "hostPath": {"path": str(data), "type": "Directory"}}],
                        "containers": [{"name": "c", "image": "sandbox.local/base",
                                        "command": ["/bin/sh", "-c", script],
                                        "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}}
        sandbox.kubectl("-n", ns, "create", "-f", "-", input=json.dumps(pod))
        got = finished_pod(sandbox, ns, "--field-selector=metadata.name=hp")
        term = got["status"]["containerStatuses"][0]["state"]["terminated"]
        assert (got["status"]["phase"], term["exitCode"]) == ("Succeeded", 0), json.dumps(term)
        assert (data / "from-pod").read_text() == "from the pod\n"
        assert (data / "from-pod").stat().st_uid == tool.uid
        tool.wait_for(lambda: no_private_dirs_left([got["metadata"]["uid"]]), timeout=30,
                      what="the agent to remove the pod's private /tmp")
        assert (data / "hello").read_text() == "from the host\n"  # cleaning up never touches a hostPath
    finally:
        sandbox.kubectl("delete", "namespace", ns, "--wait=false", check=False)
        shutil.rmtree(base, ignore_errors=True)
