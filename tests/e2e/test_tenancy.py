"""Issues 7 and 12: tenant isolation — with tool B's certificate, nothing of tool A can be seen or
touched, and nothing can run as A's uid.

Two ways in are tried: B's own kubeconfig (namespace tool-B; A's jobs are named by name and id),
and a copy of B's kubeconfig pointed at namespace tool-A (B's certificate, A's namespace). Every
command gets the grid's "no such job" answer or, against A's namespace, exit 1 with one clear line
naming the kubeconfig; afterwards every object in A's namespace is exactly as it was.

Then the uid (issue 12, item 1): B's jsub and qsub with HOME set to A's home (site config `uid:
home-owner`), with a GRIDSHIM_CONFIG of B's own naming A's uid or uid 1, a crontab installed that way,
and pods, Jobs, CronJobs and Deployments written with kubectl and B's kubeconfig: each is refused by
the cluster's admission policy (gridshim-tool-uid) at creation, with one line naming B's uid, and
nothing runs — no object, no pod, no file written in A's home. B cannot change its namespace's uid
annotation or label, and `gridshim doctor` fails once the policy no longer covers B's namespace.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import STATE, Tool, write

CLEAN = re.compile(r"Traceback|internal error")


@pytest.fixture
def two_tools(make_tool: Callable[..., Tool]) -> tuple[Tool, Tool, str]:
    a, b = make_tool("ta"), make_tool("tb")
    proc = a.run("jsub", "-once", "-N", "secret", "/bin/sleep", "600")
    assert proc.returncode == 0, proc.stderr
    job_id = re.search(r"\d{7}", proc.stdout).group(0)  # type: ignore[union-attr]
    cron = a.run("crontab", "-", input="0 0 1 1 * jsub -once -N yearly /bin/true\n@yearly echo hi\n")
    assert cron.returncode == 0, cron.stderr
    mine = b.run("jsub", "-N", "mine", "/bin/sleep", "600")
    assert mine.returncode == 0, mine.stderr
    a.wait_for(lambda: running_pods(a), timeout=90, what="A's job running")
    return a, b, job_id


def running_pods(tool: Tool) -> list[dict[str, Any]]:
    return [p for p in tool.kubectl_json("get", "pods")["items"] if p["status"].get("phase") == "Running"]


def state_of(tool: Tool) -> dict[tuple[str, str], tuple[str, str | None, str | None]]:
    """Every object gridshim or the controllers keep for TOOL: (kind, name) → (uid, deletion, version).
    Jobs and pods change their status as they run, so only their identity and deletion are compared."""
    out: dict[tuple[str, str], tuple[str, str | None, str | None]] = {}
    for kind in ("jobs", "cronjobs", "configmaps", "pods"):
        for o in tool.kubectl_json("get", kind)["items"]:
            m = o["metadata"]
            version = m["resourceVersion"] if kind in ("cronjobs", "configmaps") else None
            out[(kind, m["name"])] = (m["uid"], m.get("deletionTimestamp"), version)
    return out


def one_line(text: str) -> str:
    assert not CLEAN.search(text), text
    lines = text.splitlines()
    assert len(lines) == 1, text
    return lines[0]


def test_b_cannot_see_or_touch_a_from_its_own_namespace(two_tools: tuple[Tool, Tool, str]) -> None:
    a, b, job_id = two_tools
    before = state_of(a)
    assert sum(k == "jobs" for k, _ in before) == 1 and sum(k == "cronjobs" for k, _ in before) == 2

    # qstat: only B's own job, whatever the user selection says
    for argv in (["qstat"], ["qstat", "-u", "*"], ["qstat", "-u", "*", "-xml"], ["qstat", "-s", "prsz"]):
        r = b.run(*argv)
        assert r.returncode == 0 and not CLEAN.search(r.stderr), (argv, r.stderr)
        assert "mine" in r.stdout and "secret" not in r.stdout and f"tools.{a.name}"[:12] not in r.stdout, argv
        assert job_id not in r.stdout
    r = b.run("qstat", "-u", f"tools.{a.name}")
    assert (r.returncode, r.stdout) == (0, "")  # SGE: another user's jobs the caller may not list → nothing
    for spec in (job_id, "secret"):
        r = b.run("qstat", "-j", spec)
        assert r.returncode == 1 and r.stdout == ""
        assert r.stderr == f"Following jobs do not exist: \n{spec}\n"

    r = b.run("job", "-v", "secret")
    assert (r.returncode, r.stdout, r.stderr) == (0, "No job 'secret' is currently queued or running.\n", "")
    r = b.run("jstop", "secret")
    assert (r.returncode, r.stdout, r.stderr) == (1, "", "No job 'secret' is currently queued or running\n")
    for spec in (job_id, "secret"):
        r = b.run("qdel", spec)
        assert (r.returncode, r.stdout) == (1, f'denied: job "{spec}" does not exist\n'), r.stderr
        r = b.run("qmod", "-rj", spec)
        assert (r.returncode, r.stdout) == (1, f'denied: job "{spec}" does not exist\n'), r.stderr
    r = b.run("qdel", "-u", f"tools.{a.name}")
    assert r.returncode == 1 and not CLEAN.search(r.stderr)
    assert r.stdout == (f"tools.{b.name} - you do not have the necessary privileges to delete the jobs of user "
                        f'"tools.{a.name}"\n')
    r = b.run("crontab", "-l")
    assert (r.returncode, r.stdout, r.stderr) == (1, "", f"no crontab for tools.{b.name}\n")
    for argv in (["crontab", "-u", f"tools.{a.name}", "-l"], ["crontab", "-u", a.name, "-r"]):
        r = b.run(*argv)
        assert r.returncode == 1 and one_line(r.stderr) == "crontab: must be privileged to use -u", argv
    # the same -once name in B is B's own job: A's is not "already active" for B, and stays untouched
    r = b.run("jsub", "-once", "-N", "secret", "/bin/true")
    assert r.returncode == 0, (b.home / "secret.err").read_text()

    assert state_of(a) == before


def kubeconfig_into(b: Tool, namespace: str) -> str:
    """A copy of B's kubeconfig (B's certificate) whose context names NAMESPACE."""
    cfg = yaml.safe_load(Path(b.kubeconfig).read_text())
    for c in cfg["contexts"]:
        c["context"]["namespace"] = namespace
    path = Path(b.kubeconfig).with_name("into-other")
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    os.chown(path, b.uid, b.uid)
    return str(path)


FORBIDDEN = [
    ["qstat"], ["qstat", "-u", "*"], ["qstat", "-xml"], ["qstat", "-j", "{id}"], ["qstat", "-j", "secret"],
    ["job", "secret"], ["job", "-v", "secret"], ["jstop", "secret"], ["qdel", "{id}"], ["qdel", "secret"],
    ["qdel", "-u", "*"], ["qmod", "-rj", "{id}"], ["crontab", "-l"], ["crontab", "-r"], ["crontab", "--previous"],
    ["crontab", "--sync"], ["jsub", "-stderr", "-N", "intruder", "/bin/true"],
    ["jsub", "-stderr", "-once", "-N", "secret", "/bin/true"],
    ["jstart", "-stderr", "-N", "intruder", "/bin/sleep", "60"],
    ["qcronsub", "-stderr", "-N", "intruder", "/bin/true"],
]


@pytest.mark.needs_shared_home("proves that another tool's jobs wrote nothing into this tool's home, which only a shared disk shows")
def test_b_pointed_at_a_namespace_is_refused_clearly(two_tools: tuple[Tool, Tool, str]) -> None:
    a, b, job_id = two_tools
    before = state_of(a)
    kc = kubeconfig_into(b, a.namespace)
    refused = 0
    for template in FORBIDDEN:
        argv = [t.replace("{id}", job_id) for t in template]
        r = b.run(*argv, env={"KUBECONFIG": kc})
        assert r.returncode == 1, (argv, r.returncode, r.stdout, r.stderr)
        line = one_line(r.stderr)
        assert re.search(r"not allowed: .* is forbidden: User \"" + re.escape(b.name) + '"', line), (argv, line)
        assert f"is {kc} the kubeconfig of the tool that owns this?" in line, (argv, line)
        assert "secret" not in r.stdout and job_id not in r.stdout, (argv, r.stdout)
        refused += 1
    # installing a crontab into A's namespace: refused whole, nothing written
    r = b.run("crontab", "-", input="* * * * * jsub -N intruder /bin/true\n", env={"KUBECONFIG": kc})
    assert r.returncode == 1 and "not allowed" in one_line(r.stderr), r.stderr
    # with the sandbox's `uid: namespace` jsub first reads its namespace (for the uid), before the job's
    # name and .err file are known: like any other failure to find the uid, the line goes to stderr
    r = b.run("jsub", "-N", "intruder2", "/bin/true", env={"KUBECONFIG": kc})
    assert r.returncode == 1 and "not allowed" in one_line(r.stderr), r.stderr
    assert "'uid: namespace' also needs 'get' on namespace" in r.stderr
    assert not (b.home / "intruder2.err").exists()
    assert refused == len(FORBIDDEN)
    assert state_of(a) == before
    assert not (a.home / "intruder.err").exists() and not (a.home / "intruder2.err").exists()


# -- issue 12: the cluster, not the client, decides the uid ---------------------------------------------

POLICY_LINE = "refused by the cluster's admission policy gridshim-tool-uid: pods in namespace {ns} run only as " \
              "its tool's uid {uid}: "


@pytest.fixture
def pair(make_tool: Callable[..., Tool]) -> tuple[Tool, Tool]:
    a, b = make_tool("ua"), make_tool("ub")
    assert a.uid != b.uid, "the sandbox gives each tool a uid of its own only when run as root"
    return a, b


def own_config(tool: Tool, name: str, uid: str) -> str:
    """A site config file of the tool's own (GRIDSHIM_CONFIG): the sandbox's, with another uid policy."""
    cfg = yaml.safe_load((STATE / "gridshim.yaml").read_text())
    cfg["uid"] = uid
    return str(write(tool, name, yaml.safe_dump(cfg)))


def untouched(a: Tool, b: Tool, names: list[str]) -> None:
    """Nothing of the attempts NAMES exists in B's namespace, and nothing was written in A's home."""
    for kind in ("jobs", "cronjobs", "pods", "deployments", "replicasets"):
        items = b.kubectl_json("get", kind)["items"]
        assert not [o["metadata"]["name"] for o in items
                    if any(n in o["metadata"]["name"] for n in names)], (kind, items)
    planted = [p for p in a.home.iterdir() if p.name.startswith(("pwned", "stolen"))]
    assert planted == [], planted


@pytest.mark.needs_shared_home("proves that another tool's jobs wrote nothing into this tool's home, which only a shared disk shows")
def test_b_cannot_submit_as_a_whatever_its_client_side_says(pair: tuple[Tool, Tool]) -> None:
    a, b = pair
    home_owner = own_config(b, "home-owner.yaml", "home-owner")
    naming_a = own_config(b, "uid-a.yaml", str(a.uid))
    daemon = own_config(b, "uid-1.yaml", "1")
    grab = f"touch {a.home}/pwned-$JOB_NAME; cp {a.home}/.toolskube/client.key {a.home}/stolen-$JOB_NAME"
    attempts = [
        # (what, argv, env, uid it asks for)
        ("home", ["jsub", "-sync", "y", "-stderr", "-N", "h1", "/bin/sh", "-c", grab],
         {"HOME": str(a.home), "GRIDSHIM_CONFIG": home_owner}, a.uid),
        ("home, no -stderr", ["jsub", "-N", "h2", "/bin/sh", "-c", grab],
         {"HOME": str(a.home), "GRIDSHIM_CONFIG": home_owner}, a.uid),
        ("home, jstart", ["jstart", "-stderr", "-N", "h3", "/bin/sh", "-c", grab],
         {"HOME": str(a.home), "GRIDSHIM_CONFIG": home_owner}, a.uid),
        ("config naming A", ["jsub", "-sync", "y", "-stderr", "-once", "-N", "c1", "/bin/sh", "-c", grab],
         {"GRIDSHIM_CONFIG": naming_a}, a.uid),
        ("uid 1", ["jsub", "-sync", "y", "-stderr", "-N", "d1", "/bin/sh", "-c", grab],
         {"GRIDSHIM_CONFIG": daemon}, 1),
    ]
    for what, argv, env, asked in attempts:
        r = b.run(*argv, env=env)
        assert r.returncode == 1 and r.stdout == "", (what, r.stdout, r.stderr)
        line = one_line(r.stderr)
        assert POLICY_LINE.format(ns=b.namespace, uid=b.uid) in line, (what, line)
        assert f"this Job asks for runAsUser {asked}, runAsGroup {asked}, fsGroup {asked}" in line, (what, line)
    # qsub: SGE's two-line refusal, exit 1
    for what, argv, env, asked in [
        ("qsub, home", ["qsub", "-sync", "y", "-b", "y", "-N", "q1", "/bin/sh", "-c", grab],
         {"HOME": str(a.home), "GRIDSHIM_CONFIG": home_owner}, a.uid),
        ("qsub, config naming A", ["qsub", "-b", "y", "-N", "q2", "/bin/sh", "-c", grab],
         {"GRIDSHIM_CONFIG": naming_a}, a.uid),
        ("qsub, uid 1", ["qsub", "-b", "y", "-N", "q3", "/bin/sh", "-c", grab], {"GRIDSHIM_CONFIG": daemon}, 1),
    ]:
        r = b.run(*argv, env=env)
        assert r.returncode == 1 and r.stdout == "" and not CLEAN.search(r.stderr), (what, r.stderr)
        first, last = r.stderr.splitlines()
        assert first.startswith("Unable to run job: " + POLICY_LINE.format(ns=b.namespace, uid=b.uid)), (what, first)
        assert f"asks for runAsUser {asked}," in first and last == "Exiting.", (what, r.stderr)
    # a crontab written that way: every CronJob refused, none scheduled
    r = b.run("crontab", "-", input="* * * * * jsub -N cr1 /bin/touch " + f"{a.home}/pwned-cr1\n",
              env={"GRIDSHIM_CONFIG": naming_a})
    assert r.returncode == 1 and POLICY_LINE.format(ns=b.namespace, uid=b.uid) in r.stderr, r.stderr
    assert "this CronJob asks for runAsUser " + str(a.uid) in r.stderr
    assert b.kubectl_json("get", "cronjobs")["items"] == []
    untouched(a, b, ["h1", "h2", "h3", "c1", "d1", "q1", "q2", "q3", "cr1"])
    assert not (a.home / "h2.err").exists()

    # HOME pointing at A's home under the sandbox's own `uid: namespace`: the job runs, as B
    r = b.run("jsub", "-sync", "y", "-stderr", "-o", f"{b.home}/who.out", "-e", f"{b.home}/who.err", "-N", "who",
              "/bin/sh", "-c", f"id -u; cat {a.home}/.toolskube/client.key", env={"HOME": str(a.home)})
    assert r.returncode == 1, r.stderr  # cat: Permission denied
    assert (b.home / "who.out").read_text().split() == [str(b.uid)]
    assert "Permission denied" in (b.home / "who.err").read_text()
    untouched(a, b, [])


def _pod_spec(uid: int | None, *, gid: int | None = None, container: dict[str, Any] | None = None,
              **pod: Any) -> dict[str, Any]:
    """A pod spec PodSecurity `restricted` admits, running as UID (pod level) unless told otherwise."""
    ids = {} if uid is None else {"runAsUser": uid, "runAsGroup": uid if gid is None else gid}
    return {"restartPolicy": "Never", "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}, **ids, **pod},
            "containers": [{"name": "c", "image": "sandbox.local/base", "command": ["/bin/sh", "-c", "{cmd}"],
                            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                                **(container or {})}}]}


def _wrap(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    meta = {"name": name}
    if kind == "Pod":
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
    job = {"backoffLimit": 0, "template": {"spec": spec}}
    if kind == "Job":
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": job}
    if kind == "CronJob":
        return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta,
                "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": job}}}
    spec = {**spec, "restartPolicy": "Always"}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}}


@pytest.mark.needs_shared_home("proves that another tool's jobs wrote nothing into this tool's home, which only a shared disk shows")
def test_kubectl_with_bs_kubeconfig_cannot_run_anything_as_a(pair: tuple[Tool, Tool]) -> None:
    a, b = pair
    sb = b.sandbox
    cases: list[tuple[str, str, dict[str, Any], str]] = [
        # (name, kind, pod spec, what the refusal says it asked for)
        ("k-pod", "Pod", _pod_spec(a.uid), f"runAsUser {a.uid}, runAsGroup {a.uid}"),
        ("k-group", "Pod", _pod_spec(b.uid, gid=a.uid), f"runAsUser {b.uid}, runAsGroup {a.uid}"),
        ("k-fsgroup", "Pod", _pod_spec(b.uid, fsGroup=a.uid), f"fsGroup {a.uid}"),
        ("k-supp", "Pod", _pod_spec(b.uid, supplementalGroups=[b.uid, a.uid]), f"supplementalGroups {a.uid}"),
        ("k-unset", "Pod", _pod_spec(None), "runAsUser unset, runAsGroup unset"),
        ("k-container", "Pod", _pod_spec(b.uid, container={"runAsUser": a.uid}), f"runAsUser {a.uid},"),
        ("k-job", "Job", _pod_spec(a.uid), f"this Job asks for runAsUser {a.uid}"),
        ("k-cron", "CronJob", _pod_spec(a.uid), f"this CronJob asks for runAsUser {a.uid}"),
        ("k-deploy", "Deployment", _pod_spec(a.uid), f"this Deployment asks for runAsUser {a.uid}"),
    ]
    for name, kind, spec, asked in cases:
        manifest = _wrap(kind, name, json.loads(json.dumps(spec).replace("{cmd}", f"touch {a.home}/pwned-{name}")))
        r = sb.kubectl("-n", b.namespace, "create", "-f", "-", kubeconfig=b.kubeconfig, check=False,
                       input=json.dumps(manifest))
        assert r.returncode == 1, (name, r.stdout, r.stderr)
        assert "ValidatingAdmissionPolicy 'gridshim-tool-uid'" in r.stderr, (name, r.stderr)
        assert f"run only as its tool's uid {b.uid}: " in r.stderr and asked in r.stderr, (name, r.stderr)
    # an init container with A's uid is refused too (containers first, then init containers)
    init = _pod_spec(b.uid)
    init["initContainers"] = [{**init["containers"][0], "name": "i", "securityContext": {
        **init["containers"][0]["securityContext"], "runAsUser": a.uid}}]
    r = sb.kubectl("-n", b.namespace, "create", "-f", "-", kubeconfig=b.kubeconfig, check=False,
                   input=json.dumps(_wrap("Pod", "k-init", init)).replace("{cmd}", "true"))
    assert r.returncode == 1 and f"runAsUser {b.uid}/{a.uid}" in r.stderr, r.stderr
    # a Job whose template names no uid at all is admitted (kubectl create job writes such), but it can
    # never run: each of its pods is refused, by the same policy
    noid = _wrap("Job", "k-noid", json.loads(json.dumps(_pod_spec(None)).replace("{cmd}", "true")))
    sb.kubectl("-n", b.namespace, "create", "-f", "-", kubeconfig=b.kubeconfig, input=json.dumps(noid))

    def refused_pod() -> list[str]:
        events = b.kubectl_json("get", "events", "--field-selector", "involvedObject.name=k-noid")["items"]
        return [e["message"] for e in events if e.get("reason") == "FailedCreate"]

    said = b.wait_for(refused_pod, timeout=60, what="the Job controller's refused pod")
    assert "ValidatingAdmissionPolicy 'gridshim-tool-uid'" in said[0] and "runAsUser unset" in said[0], said
    assert b.kubectl_json("get", "pods", "-l", "job-name=k-noid")["items"] == []
    sb.kubectl("-n", b.namespace, "delete", "job", "k-noid", "--wait=false")
    # the same pod as B's own uid runs (so the refusals above are about the uid alone)
    ok = _wrap("Pod", "k-own", json.loads(json.dumps(_pod_spec(b.uid)).replace("{cmd}", "id -u")))
    sb.kubectl("-n", b.namespace, "create", "-f", "-", kubeconfig=b.kubeconfig, input=json.dumps(ok))
    done = b.wait_for(lambda: [p for p in b.kubectl_json("get", "pods")["items"]
                               if p["status"].get("phase") in ("Succeeded", "Failed")], timeout=60, what="k-own")
    assert [p["metadata"]["name"] for p in done] == ["k-own"] and done[0]["status"]["phase"] == "Succeeded"
    untouched(a, b, [c[0] for c in cases] + ["k-init"])


def test_b_cannot_change_its_namespaces_uid_and_reads_only_its_own(pair: tuple[Tool, Tool]) -> None:
    a, b = pair
    sb = b.sandbox
    for argv in (["annotate", "namespace", b.namespace, f"gridshim.io/uid={a.uid}", "--overwrite"],
                 ["label", "namespace", b.namespace, "tenancy-"],
                 ["label", "namespace", b.namespace, "tenancy=other", "--overwrite"],
                 ["annotate", "namespace", a.namespace, f"gridshim.io/uid={b.uid}", "--overwrite"],
                 ["delete", "validatingadmissionpolicybinding", "gridshim-tool-uid"],
                 ["delete", "validatingadmissionpolicy", "gridshim-tool-uid"]):
        r = sb.kubectl(*argv, kubeconfig=b.kubeconfig, check=False)
        assert r.returncode == 1 and "Forbidden" in r.stderr and f'User "{b.name}"' in r.stderr, (argv, r.stderr)
    mine = sb.kubectl_json("get", "namespace", b.namespace, kubeconfig=b.kubeconfig)
    assert mine["metadata"]["annotations"]["gridshim.io/uid"] == str(b.uid)
    assert mine["metadata"]["labels"]["tenancy"] == "tool"
    r = sb.kubectl("get", "namespace", a.namespace, kubeconfig=b.kubeconfig, check=False)
    assert r.returncode == 1 and "Forbidden" in r.stderr
    r = sb.kubectl("get", "namespaces", kubeconfig=b.kubeconfig, check=False)
    assert r.returncode == 1 and "cannot list" in r.stderr


def test_doctor_proves_the_enforcement_and_fails_without_it(pair: tuple[Tool, Tool]) -> None:
    _, b = pair
    sb = b.sandbox
    r = b.run("gridshim", "doctor")
    assert r.returncode == 0, r.stdout
    line = next(x for x in r.stdout.splitlines() if " permissions " in x)
    assert f"pods and jobs of any uid but {b.uid} are refused (uid {b.uid + 1} tried, dry run)" in line
    assert b.kubectl_json("get", "pods")["items"] == [] and b.kubectl_json("get", "jobs")["items"] == []
    # the admins' side undone for B's namespace (not a tool namespace any more): doctor must fail
    sb.kubectl("label", "namespace", b.namespace, "tenancy-")
    try:
        def failing() -> Any:
            out = b.run("gridshim", "doctor")
            return out if out.returncode == 1 else None

        out = b.wait_for(failing, timeout=30, interval=1, what="doctor to notice the missing enforcement")
        assert re.search(rf"^ FAIL  permissions  the cluster accepts a Pod as uid {b.uid + 1} in {b.namespace} "
                         rf"\(this tool's uid is {b.uid}\): any tool can run jobs as another tool's uid",
                         out.stdout, re.M), out.stdout
        assert "fix: site admins: deploy the ValidatingAdmissionPolicy gridshim-tool-uid" in out.stdout
        assert out.stdout.rstrip().endswith("1 problem: permissions.")
    finally:
        sb.kubectl("label", "namespace", b.namespace, "tenancy=tool")
    assert b.kubectl_json("get", "pods")["items"] == []  # only dry runs


def test_doctor_warns_when_the_uid_is_not_read_from_the_namespace(tool: Tool) -> None:
    """The default `uid: self` (and home-owner, passwd:…, a number) choose the uid on the client: doctor
    says so with the fix, and still passes (the admission policy refuses any other uid anyway)."""
    r = tool.run("gridshim", "doctor")  # the sandbox's own config: uid: namespace
    assert r.returncode == 0 and "All " in r.stdout and "uid comes from" not in r.stdout, r.stdout
    site = own_config(tool, "self-site.yaml", "self")
    r = tool.run("gridshim", "doctor", env={"GRIDSHIM_CONFIG": site})
    assert r.returncode == 0, r.stdout
    assert re.search(rf"^ warn  site config  {re.escape(site)}: .*, uid self \({tool.uid}\): the uid comes from the "
                     r"submitting process \(whoever runs the command\), not from the cluster \(the namespace's "
                     r"gridshim.io/uid annotation\)$", r.stdout, re.M), r.stdout
    assert "fix: set 'uid: namespace' in the site config" in r.stdout
    assert r.stdout.rstrip().endswith("No problems; 1 warning: site config."), r.stdout
