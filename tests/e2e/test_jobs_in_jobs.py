"""gridshim inside jobs (issue 13 item 3), on the real sandbox: a job's script runs jsub -sync y, qstat,
qdel and crontab's jobs submit jobs, with the tool's in-cluster identity and nothing more.

Tool A's site config says `in_jobs: {identity: service-account}`: its pods run as the ServiceAccount
`gridshim` of tool-A (bound to the tool's role by sandbox/tenancy.py), and the node agent projects that
ServiceAccount's token as a kubelet does. A's kubeconfig is moved out of ~/.kube (the outer commands name
it with KUBECONFIG), so inside the pods no kubeconfig is found and gridshim must use the in-cluster
credentials, as kubectl would. Everything a job's script saw and said is in files in A's home.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import STATE, VENV_BIN, Tool, lines_of, write

pytestmark = [pytest.mark.e2e, pytest.mark.needs_shared_home(
    "the jobs' scripts, site config and results are files in the tool's home, and gridshim on the pods' PATH is "
    "this checkout's")]

SERVICE_ACCOUNT = "gridshim"  # sandbox/tenancy.py TOOL_SERVICE_ACCOUNT, the setting's default
# kubectl (Go) reserves more address space at start than a 512 MiB RLIMIT_AS allows: scripts that run it
# inside a job ask for more
KUBECTL_MEM = "4g"
SYNC_BOUND = 900  # seconds an outer jsub -sync y may wait for jobs that submit and wait for jobs


@dataclass
class InJobs:
    """Tool A (its jobs may run gridshim, with A's ServiceAccount), tool B (a neighbour), their files."""

    a: Tool
    b: Tool
    config: Path  # A's site config: the sandbox's plus in_jobs
    kubeconfig: Path  # A's kubeconfig, outside ~/.kube

    def run(self, *argv: str, input: str | None = None, **env: str) -> Any:
        """A command as tool A on the host (the outer submission). The bound is generous: on a shared,
        loaded sandbox the Job controller may take minutes to start a pod (nothing here is timed)."""
        return self.a.run(*argv, input=input, timeout=SYNC_BOUND,
                          env={"GRIDSHIM_CONFIG": str(self.config), "KUBECONFIG": str(self.kubeconfig), **env})

    def script(self, name: str, body: str) -> Path:
        return write(self.a, name, "#!/bin/sh\n" + body, mode=0o755)


def site_config(tool: Tool, sandbox_bin: Path, *, identity: str, name: str = "in-jobs.yaml",
                **extra: Any) -> Path:
    """The sandbox's site config with `in_jobs`, in the tool's home (a pod's /tmp is its own)."""
    cfg = yaml.safe_load((STATE / "gridshim.yaml").read_text())
    path = tool.home / name
    cfg["in_jobs"] = {"identity": identity, "path": f"{VENV_BIN}:{sandbox_bin}:/usr/local/bin:/usr/bin:/bin",
                      "config": str(path)}
    cfg.update(extra)
    return write(tool, name, yaml.safe_dump(cfg, sort_keys=False))


@pytest.fixture(scope="module")
def world(make_tool: Callable[..., Tool]) -> Iterator[InJobs]:
    a, b = make_tool("ja"), make_tool("jb")
    outside = a.home / "outside"
    outside.mkdir()
    os.chown(outside, a.uid, a.uid)
    kubeconfig = outside / "config"
    shutil.move(a.home / ".kube" / "config", kubeconfig)  # its ../.toolskube paths still resolve
    w = InJobs(a=a, b=b, config=site_config(a, a.sandbox.bin, identity="service-account"), kubeconfig=kubeconfig)
    yield w
    for t in (a, b):
        t.sandbox.kubectl("-n", t.namespace, "delete", "jobs,cronjobs", "--all", "--wait=false", check=False)


def job_id(out: str) -> str:
    m = re.search(r"Your job (\d+) ", out)
    assert m, out
    return m.group(1)


def test_the_pods_identity_is_the_tools_service_account_and_its_token_is_read_only(world: InJobs) -> None:
    world.script("who.sh", '''
        kubectl auth whoami -o jsonpath='{.status.userInfo.username}' >"$HOME/who.name"
        echo "rc=$?"
        echo "host=$KUBERNETES_SERVICE_HOST"
        d=/var/run/secrets/kubernetes.io/serviceaccount
        echo "namespace=$(cat $d/namespace)"
        echo "token_mode=$(stat -c %a:%u $d/token)"
        if echo forged >$d/token 2>/dev/null; then echo "token_written=yes"; else echo "token_written=no"; fi
        '''.replace("\n        ", "\n"))
    r = world.run("jsub", "-sync", "y", "-mem", KUBECTL_MEM, "-N", "who", "./who.sh")
    assert r.returncode == 0, (r.stdout, r.stderr, (world.a.home / "who.err").read_text())
    seen = lines_of(world.a.home / "who.out")
    assert seen["rc"] == "0" and seen["host"] == "127.0.0.1" and seen["namespace"] == world.a.namespace
    assert seen["token_mode"] == f"600:{world.a.uid}" and seen["token_written"] == "no"
    assert (world.a.home / "who.name").read_text() == f"system:serviceaccount:{world.a.namespace}:{SERVICE_ACCOUNT}"


def test_a_master_job_submits_a_worker_with_sync_y_and_gets_its_exit_code(world: InJobs) -> None:
    """jsub -sync y inside a job: the worker runs, the master waits for it and exits with its code, and so
    does the outer jsub -sync y waiting for the master."""
    world.script("master.sh", '''jsub -sync y -N worker /bin/sh -c 'echo "worker ran as $(id -u)"; exit 7'
rc=$?
echo "sync_rc=$rc"
exit $rc
''')
    r = world.run("jsub", "-sync", "y", "-N", "master", "./master.sh")
    err = (world.a.home / "master.err").read_text()
    assert r.returncode == 7, (r.stdout, r.stderr, err)
    assert lines_of(world.a.home / "master.out")["sync_rc"] == "7", err
    assert (world.a.home / "worker.out").read_text() == f"worker ran as {world.a.uid}\n"
    assert re.search(r'Your job \d+ \("worker"\) has been submitted', (world.a.home / "master.out").read_text())


def test_qstat_sees_the_workers_and_qdel_deletes_one(world: InJobs) -> None:
    world.script("control.sh", '''one=$(jsub -N sleeper1 /bin/sleep 300 | sed -n 's/^Your job \\([0-9]*\\) .*/\\1/p')
two=$(jsub -N sleeper2 /bin/sleep 300 | sed -n 's/^Your job \\([0-9]*\\) .*/\\1/p')
echo "one=$one"; echo "two=$two"
qstat >"$HOME/control.qstat"; echo "qstat_rc=$?"
qdel "$one" >"$HOME/control.qdel"; echo "qdel_rc=$?"
''')
    r = world.run("jsub", "-sync", "y", "-N", "control", "./control.sh")
    err = (world.a.home / "control.err").read_text()
    assert r.returncode == 0, (r.stdout, r.stderr, err)
    seen = lines_of(world.a.home / "control.out")
    one, two = seen["one"], seen["two"]
    assert one.isdigit() and two.isdigit() and seen["qstat_rc"] == "0" and seen["qdel_rc"] == "0", (seen, err)
    listed = (world.a.home / "control.qstat").read_text()
    for jid, name in ((one, "sleeper1"), (two, "sleeper2")):
        assert re.search(rf"^ *{jid} .* {name} ", listed, re.M), listed
    assert one in (world.a.home / "control.qdel").read_text()
    # seen from outside: the deleted one is gone (or dying), the other still queued or running
    after = world.run("qstat").stdout
    assert not re.search(rf"^ *{one} .* (r|qw|t) ", after, re.M), after
    assert re.search(rf"^ *{two} .* sleeper2 ", after, re.M), after
    assert world.run("qdel", two).returncode == 0


def test_a_crontab_line_whose_script_submits_several_jobs(world: InJobs) -> None:
    """A crontab entry (a CronJob with the tool's identity) runs a script that submits three jobs; the run
    is started at once from the CronJob, as its controller would start it at the scheduled minute."""
    script = world.script("several.sh", '''for n in 1 2 3; do jsub -once -N "part$n" /bin/sh -c "echo part $n"; done
''')
    r = world.run("crontab", "-", input=f"17 3 * * * {script}\n")
    assert r.returncode == 0, r.stderr
    (cron,) = [c["metadata"]["name"] for c in world.a.kubectl_json("get", "cronjobs")["items"]
               if c["metadata"]["name"] != "gridshim-release"]
    pod = world.a.kubectl_json("get", "cronjob", cron)["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == SERVICE_ACCOUNT and pod["automountServiceAccountToken"] is True
    world.a.sandbox.kubectl("-n", world.a.namespace, "create", "job", "several-now", f"--from=cronjob/{cron}")
    try:
        outs = [world.a.home / f"part{n}.out" for n in (1, 2, 3)]
        world.a.wait_for(lambda: all(p.exists() and p.read_text() for p in outs), timeout=SYNC_BOUND,
                         what="the three jobs the cron run submitted")
        assert [p.read_text() for p in outs] == ["part 1\n", "part 2\n", "part 3\n"]
    finally:
        assert world.run("crontab", "-r").returncode == 0


def test_the_same_job_cannot_touch_another_tool(world: InJobs) -> None:
    """With its in-cluster identity, A's job is refused by RBAC in B's namespace (list, create, delete; a
    one-line error each, B's job untouched) and by the uid policy for a pod of B's uid, in A's namespace
    too."""
    b_job = job_id(world.b.run("jsub", "-N", "bjob", "/bin/sleep", "300").stdout)
    other_uid = site_config(world.a, world.a.sandbox.bin, identity="service-account", name="as-b.yaml",
                            uid=str(world.b.uid))
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "as-b-"},
           "spec": {"restartPolicy": "Never", "automountServiceAccountToken": False,
                    "securityContext": {"runAsUser": world.b.uid, "runAsGroup": world.b.uid, "runAsNonRoot": True,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{"name": "c", "image": "sandbox.local/base", "command": ["/bin/true"],
                                    "securityContext": {"allowPrivilegeEscalation": False,
                                                        "capabilities": {"drop": ["ALL"]}}}]}}
    write(world.a, "as-b.pod.yaml", yaml.safe_dump(pod))
    world.script("intrude.sh", f'''t() {{ name=$1; shift; "$@" >"$HOME/intrude.$name.out" 2>"$HOME/intrude.$name.err"; echo "$name=$?"; }}
POD_NAMESPACE={world.b.namespace} t qstat qstat
POD_NAMESPACE={world.b.namespace} t jsub jsub -stderr -N intruder /bin/true
POD_NAMESPACE={world.b.namespace} t qdel qdel {b_job}
GRIDSHIM_CONFIG={other_uid} t uid jsub -stderr -N as-b /bin/true
t pod kubectl create -f "$HOME/as-b.pod.yaml"
''')
    r = world.run("jsub", "-sync", "y", "-mem", KUBECTL_MEM, "-N", "intrude", "./intrude.sh")
    assert r.returncode == 0, (r.stdout, r.stderr, (world.a.home / "intrude.err").read_text())
    seen = lines_of(world.a.home / "intrude.out")
    assert all(seen[k] != "0" for k in ("qstat", "jsub", "qdel", "uid", "pod")), seen

    def said(name: str) -> str:
        text = (world.a.home / f"intrude.{name}.err").read_text() + (world.a.home / f"intrude.{name}.out").read_text()
        return text.strip()

    me = f"system:serviceaccount:{world.a.namespace}:{SERVICE_ACCOUNT}"
    for name in ("qstat", "jsub"):  # jsub's first request reads B's Namespace (its uid): refused already
        text = said(name)
        assert len(text.splitlines()) == 1 and "not allowed" in text and me in text and world.b.namespace in text \
            and "is forbidden" in text, (name, text)
    assert me in said("qdel") and world.b.namespace in said("qdel"), said("qdel")
    assert "gridshim-tool-uid" in said("uid") and str(world.a.uid) in said("uid"), said("uid")
    assert "gridshim-tool-uid" in said("pod"), said("pod")
    # B's job is untouched, and nothing of A's appeared in B's namespace
    jobs = world.b.kubectl_json("get", "jobs")["items"]
    assert [j["metadata"]["labels"].get("gridshim.io/name") for j in jobs] == ["bjob"], jobs
    assert not any(j["metadata"].get("deletionTimestamp") for j in jobs)
    assert world.b.run("qdel", b_job).returncode == 0


def test_without_the_setting_a_job_has_no_token_and_says_what_is_missing(world: InJobs) -> None:
    """identity: kubeconfig (Toolforge's way) mounts no token: with no kubeconfig in the pod either,
    gridshim says in one line which part of the in-cluster credentials is missing."""
    cfg = site_config(world.a, world.a.sandbox.bin, identity="kubeconfig", name="kubeconfig-way.yaml")
    world.script("none.sh", 'qstat; echo "rc=$?" >"$HOME/none.rc"\n')
    r = world.a.run("jsub", "-sync", "y", "-N", "none", "./none.sh", timeout=SYNC_BOUND,
                    env={"GRIDSHIM_CONFIG": str(cfg), "KUBECONFIG": str(world.kubeconfig)})
    assert r.returncode == 0, (r.stdout, r.stderr)
    said = [line for line in (world.a.home / "none.err").read_text().splitlines() if line.startswith("qstat")]
    assert (world.a.home / "none.rc").read_text() == "rc=1\n"
    assert len(said) == 1 and "in-cluster credentials are incomplete" in said[0] and \
        "/var/run/secrets/kubernetes.io/serviceaccount/token does not exist" in said[0], said


def test_the_toolforge_way_the_kubeconfig_in_the_home_mount(world: InJobs) -> None:
    """identity: kubeconfig: no token in the pod, and tool B's own ~/.kube/config (its client certificate,
    in the home the pods mount at the same path) is what gridshim and kubectl use inside the job."""
    cfg = site_config(world.b, world.b.sandbox.bin, identity="kubeconfig", name="toolforge-way.yaml")
    write(world.b, "tf.sh", '''#!/bin/sh
test -e /var/run/secrets/kubernetes.io/serviceaccount/token && echo "token=yes" || echo "token=no"
kubectl auth whoami -o jsonpath='{.status.userInfo.username}' >"$HOME/tf.name"
jsub -sync y -N tf-worker /bin/sh -c 'exit 5'
echo "sync_rc=$?"
''', mode=0o755)
    r = world.b.run("jsub", "-sync", "y", "-mem", KUBECTL_MEM, "-N", "tf", "./tf.sh", timeout=SYNC_BOUND,
                    env={"GRIDSHIM_CONFIG": str(cfg)})
    assert r.returncode == 0, (r.stdout, r.stderr, (world.b.home / "tf.err").read_text())
    seen = lines_of(world.b.home / "tf.out")
    assert seen == {"token": "no", "sync_rc": "5"}, (seen, (world.b.home / "tf.err").read_text())
    assert (world.b.home / "tf.name").read_text() == world.b.name  # the tool's certificate, CN=NAME
