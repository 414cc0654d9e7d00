"""Pure-logic tests for the sandbox node agent (sandbox/agent.py); no cluster, no processes."""
from __future__ import annotations

import errno
import importlib.util
import os
import sys
import types
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

AGENT_PATH = Path(__file__).resolve().parents[2] / "sandbox" / "agent.py"
_spec = importlib.util.spec_from_file_location("gridshim_sandbox_agent", AGENT_PATH)
agent = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = agent  # dataclasses need the module registered
_spec.loader.exec_module(agent)


def pod(**spec):
    return {"metadata": {"name": "p1", "namespace": "tool-x", "uid": "u-1", "generation": 1,
                         "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c"}], **spec},
            "status": {}}


# ------------------------------------------------------------------ quantities

@pytest.mark.parametrize("q,expected", [
    ("128Mi", 128 * 2**20), ("1Gi", 2**30), ("1.5Gi", 3 * 2**29), ("2Ki", 2048), ("1Ei", 2**60),
    ("1k", 1000), ("1M", 10**6), ("1G", 10**9), ("2T", 2 * 10**12), ("1P", 10**15), ("1E", 10**18),
    ("12345", 12345), ("1e3", 1000), ("1E6", 10**6), ("5e-1", Fraction(1, 2)), ("1500m", Fraction(3, 2)),
    ("0.5", Fraction(1, 2)), (".5Ki", 512), ("+1Mi", 2**20), ("100u", Fraction(1, 10**4)), ("10n", Fraction(1, 10**8)),
    (4096, 4096),
])
def test_parse_quantity(q, expected):
    assert agent.parse_quantity(q) == expected


@pytest.mark.parametrize("q", ["", "Mi", "1 Mi", "1MiB", "1x", "abc", "1e", "--1", None, True, [1]])
def test_parse_quantity_rejects(q):
    with pytest.raises(agent.QuantityError):
        agent.parse_quantity(q)


def test_quantity_bytes_rounds_up_and_rejects_negative():
    assert agent.quantity_bytes("0.2Gi") == 214748365
    assert agent.quantity_bytes("1500m") == 2
    assert agent.quantity_bytes("1") == 1
    with pytest.raises(agent.QuantityError):
        agent.quantity_bytes("-1Mi")


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["Ki", "Mi", "Gi", "Ti"]))
def test_binary_suffixes_are_exact(n, suffix):
    mult = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}[suffix]
    assert agent.quantity_bytes(f"{n}{suffix}") == n * mult


def test_memory_limit():
    assert agent.memory_limit({"resources": {"limits": {"memory": "64Mi"}}}) == 64 * 2**20
    assert agent.memory_limit({"resources": {"requests": {"memory": "64Mi"}}}) is None
    assert agent.memory_limit({}) is None


# ------------------------------------------------------------------ env and argv

@pytest.mark.parametrize("s,expected", [
    ("$(A)", "1"), ("x$(A)y$(B)z", "x1y2z"), ("$(NOPE)", "$(NOPE)"), ("$$(A)", "$(A)"), ("$$", "$"),
    ("a$b", "a$b"), ("$(A", "$(A"), ("end$", "end$"), ("$$$(A)", "$1"), ("", ""), ("$()", "$()"),
    ("$(date +%s)", "$(date +%s)"),
])
def test_expand_vars(s, expected):
    assert agent.expand_vars(s, {"A": "1", "B": "2"}) == expected


def test_build_env_values_fieldrefs_and_defaults(monkeypatch):
    monkeypatch.setenv("AGENT_SECRET", "leak")
    c = {"name": "c", "env": [
        {"name": "A", "value": "x"},
        {"name": "B", "value": "$(A)-y"},
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "PODIP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "HOSTIP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
        {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
        {"name": "SEC", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        {"name": "WEIRD", "valueFrom": {"fieldRef": {"fieldPath": "spec.weird"}}},
        {"name": "EMPTY"},
    ]}
    env, warnings = agent.build_env(c, pod())
    assert env == {"A": "x", "B": "x-y", "POD": "p1", "NS": "tool-x", "UID": "u-1", "NODE": "n1",
                   "PODIP": "127.0.0.1", "HOSTIP": "127.0.0.1", "APP": "web", "SEC": "", "WEIRD": "",
                   "EMPTY": "", "PATH": agent.DEFAULT_PATH, "HOSTNAME": "p1"}
    assert "AGENT_SECRET" not in env
    assert len(warnings) == 2 and any("SEC" in w for w in warnings) and any("WEIRD" in w for w in warnings)


def test_build_env_keeps_explicit_path_and_hostname():
    env, _ = agent.build_env({"name": "c", "env": [{"name": "PATH", "value": "/opt/bin"},
                                                   {"name": "HOSTNAME", "value": "h"}]}, pod())
    assert env == {"PATH": "/opt/bin", "HOSTNAME": "h"}


def test_env_from_is_reported():
    _, warnings = agent.spec_env({"name": "c", "envFrom": [{"configMapRef": {"name": "x"}}]}, pod())
    assert warnings and "envFrom" in warnings[0]


@pytest.mark.parametrize("container,expected", [
    ({"command": ["/bin/sh", "-c"], "args": ["echo $(X) $HOME"]}, ["/bin/sh", "-c", "echo 1 $HOME"]),
    ({"args": ["/bin/echo", "hi"]}, ["/bin/echo", "hi"]),
    ({"command": ["/bin/true"]}, ["/bin/true"]),
    ({}, []),
])
def test_container_argv(container, expected):
    assert agent.container_argv(container, {"X": "1"}) == expected


# ------------------------------------------------------------------ identity

def test_identity_not_root_runs_as_agent():
    assert agent.resolve_identity(pod(securityContext={"runAsUser": 0}), {}, agent_is_root=False) is None


def test_identity_container_overrides_pod():
    p = pod(securityContext={"runAsUser": 1000, "runAsGroup": 1001, "fsGroup": 2000,
                             "supplementalGroups": [3000, 2000]})
    assert agent.resolve_identity(p, {}, True) == agent.Identity(1000, 1001, (2000, 3000))
    c = {"securityContext": {"runAsUser": 5000}}
    assert agent.resolve_identity(p, c, True) == agent.Identity(5000, 1001, (2000, 3000))
    c = {"securityContext": {"runAsUser": 5000, "runAsGroup": 5001}}
    assert agent.resolve_identity(p, c, True).gid == 5001


def test_identity_gid_defaults_to_uid():
    assert agent.resolve_identity(pod(securityContext={"runAsUser": 52001}), {}, True) == \
        agent.Identity(52001, 52001, ())


@pytest.mark.parametrize("psc,csc", [({}, {}), ({"runAsUser": 0}, {}), ({"runAsUser": 1000}, {"runAsUser": 0})])
def test_identity_refuses_root(psc, csc):
    with pytest.raises(agent.ConfigError, match="container would run as root"):
        agent.resolve_identity(pod(securityContext=psc), {"securityContext": csc}, True)


# ------------------------------------------------------------------ restarts and exits

def test_restart_delay_is_kubelet_like():
    delays = [agent.restart_delay(n, 10, 300) for n in range(1, 9)]
    assert delays == [0, 10, 20, 40, 80, 160, 300, 300]
    assert agent.restart_delay(3, 2, 5) == 4 and agent.restart_delay(4, 2, 5) == 5


@given(st.integers(min_value=1, max_value=200))
def test_restart_delay_bounded_and_monotonic(n):
    assert 0 <= agent.restart_delay(n, 10, 300) <= agent.restart_delay(n + 1, 10, 300) <= 300


@pytest.mark.parametrize("policy,code,expected", [
    ("Always", 0, True), ("Always", 1, True), ("OnFailure", 0, False), ("OnFailure", 3, True),
    ("Never", 0, False), ("Never", 137, False),
])
def test_should_restart(policy, code, expected):
    assert agent.should_restart(policy, code) is expected


def test_exit_status():
    assert agent.exit_status(0) == (0, None)
    assert agent.exit_status(3) == (3, None)
    assert agent.exit_status(-15) == (143, 15)
    assert agent.exit_status(-9) == (137, 9)


def test_terminated_state():
    t = agent.terminated_state(0, "2024-01-01T00:00:00Z", "2024-01-01T00:00:01Z", "gridshim://5")
    assert t == {"exitCode": 0, "reason": "Completed", "startedAt": "2024-01-01T00:00:00Z",
                 "finishedAt": "2024-01-01T00:00:01Z", "containerID": "gridshim://5"}
    t = agent.terminated_state(143, None, "f", signal_no=15)
    assert t["reason"] == "Error" and t["signal"] == 15 and "startedAt" not in t
    t = agent.terminated_state(127, "s", "f", reason="StartError", message="m")
    assert t["reason"] == "StartError" and t["message"] == "m"


def test_final_phase():
    assert agent.final_phase([0, 0]) == "Succeeded"
    assert agent.final_phase([0, 1]) == "Failed"
    assert agent.final_phase([None]) == "Failed"
    assert agent.final_phase([]) == "Failed"


def test_start_error_classification():
    e = FileNotFoundError(errno.ENOENT, "No such file or directory", "prog")
    assert agent.start_error(e, ["prog"], "/")[0] == 127
    assert "executable file not found" in agent.start_error(e, ["prog"], "/")[1]
    e = FileNotFoundError(errno.ENOENT, "No such file or directory", "/nope")
    code, msg = agent.start_error(e, ["/bin/true"], "/nope")
    assert code == 128 and "chdir" in msg
    assert agent.start_error(PermissionError(errno.EACCES, "Permission denied", "x"), ["x"], "/")[0] == 126
    assert agent.start_error(OSError(errno.ENOMEM, "Cannot allocate memory"), ["x"], "/")[0] == 128


def test_go_duration():
    assert [agent.go_duration(s) for s in (0, 10, 59, 60, 160, 300, 3600)] == \
        ["0s", "10s", "59s", "1m0s", "2m40s", "5m0s", "1h0m0s"]


def test_timestamps_are_utc_z():
    assert agent.rfc3339(0) == "1970-01-01T00:00:00Z"
    assert agent.micro_time(1.5) == "1970-01-01T00:00:01.500000Z"


# ------------------------------------------------------------------ status building

def test_container_status_shapes():
    c = agent.ContainerRun.from_spec({"name": "c", "image": "img"}, init=False)
    s = agent.container_status(c)
    assert s == {"name": "c", "image": "img", "imageID": "", "ready": False, "started": False,
                 "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}, "lastState": {}}
    c.state = {"running": {"startedAt": "t"}}
    c.container_id = "gridshim://42"
    s = agent.container_status(c)
    assert s["ready"] and s["started"] and s["containerID"] == "gridshim://42"
    assert not agent.container_status(c, terminating=True)["ready"]
    i = agent.ContainerRun.from_spec({"name": "i"}, init=True)
    i.state = {"terminated": {"exitCode": 0}}
    assert agent.container_status(i)["ready"] is True
    i.state = {"terminated": {"exitCode": 1}}
    assert agent.container_status(i)["ready"] is False


def test_desired_conditions():
    d = agent.desired_conditions("Running", [], [])
    assert d == {"PodReadyToStartContainers": ("True", None, None), "Initialized": ("True", None, None),
                 "Ready": ("True", None, None), "ContainersReady": ("True", None, None)}
    d = agent.desired_conditions("Pending", ["i1", "i2"], ["a", "b"])
    assert d["Initialized"] == ("False", "ContainersNotInitialized", "containers with incomplete status: [i1 i2]")
    assert d["Ready"] == ("False", "ContainersNotReady", "containers with unready status: [a b]")
    d = agent.desired_conditions("Succeeded", [], ["a"])
    assert d["Ready"][:2] == ("False", "PodCompleted") and d["PodReadyToStartContainers"][0] == "False"
    assert agent.desired_conditions("Failed", [], [])["ContainersReady"][1] == "PodFailed"


def test_make_conditions_keeps_transition_time_until_status_changes():
    first = agent.make_conditions({"Ready": ("False", "ContainersNotReady", "m")}, {}, "t1", generation=3)
    assert first == [{"type": "Ready", "status": "False", "lastProbeTime": None, "lastTransitionTime": "t1",
                      "reason": "ContainersNotReady", "message": "m", "observedGeneration": 3}]
    prev = {c["type"]: c for c in first}
    same = agent.make_conditions({"Ready": ("False", "Other", None)}, prev, "t2")
    assert same[0]["lastTransitionTime"] == "t1" and same[0]["reason"] == "Other" and same[0]["message"] is None
    changed = agent.make_conditions({"Ready": ("True", None, None)}, prev, "t3")
    assert changed[0]["lastTransitionTime"] == "t3"


def test_orphan_status_marks_everything_failed():
    p = pod(containers=[{"name": "a", "image": "i"}, {"name": "b"}, {"name": "c"}])
    p["status"] = {"phase": "Running", "startTime": "t0", "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": "t0"}],
        "containerStatuses": [
            {"name": "a", "image": "i", "imageID": "", "restartCount": 2, "ready": True, "started": True,
             "containerID": "gridshim://9", "state": {"running": {"startedAt": "t1"}}},
            {"name": "b", "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}
    s = agent.orphan_status(p, "now", "n1")
    assert s["phase"] == "Failed" and s["reason"] == "NodeAgentRestarted"
    a, b, c = s["containerStatuses"]
    assert a["state"]["terminated"]["exitCode"] == 137 and a["state"]["terminated"]["startedAt"] == "t1"
    assert a["state"]["terminated"]["containerID"] == "gridshim://9" and a["restartCount"] == 2
    assert not a["ready"] and not a["started"]
    assert b["state"] == {"terminated": {"exitCode": 0, "reason": "Completed"}}
    assert c["state"]["terminated"]["exitCode"] == 137
    ready = next(x for x in s["conditions"] if x["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "PodFailed" and ready["lastTransitionTime"] == "now"
    assert s["podIP"] == "127.0.0.1" and "startTime" not in s


def test_orphan_status_before_initialization_keeps_main_containers_waiting():
    p = pod(initContainers=[{"name": "i"}], containers=[{"name": "a"}])
    p["status"] = {"phase": "Pending", "startTime": "t0",
                   "conditions": [{"type": "Initialized", "status": "False", "reason": "ContainersNotInitialized"}],
                   "initContainerStatuses": [{"name": "i", "state": {"running": {"startedAt": "t1"}}}],
                   "containerStatuses": [{"name": "a", "state": {"waiting": {"reason": "PodInitializing"}}}]}
    s = agent.orphan_status(p, "now", "n1")
    assert s["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 137
    assert s["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}
    init = next(x for x in s["conditions"] if x["type"] == "Initialized")
    assert init["status"] == "False"


def test_pod_predicates():
    p = pod()
    assert not agent.is_terminal(p) and not agent.is_deleting(p) and not agent.touched_by_agent(p)
    p["status"] = {"phase": "Pending", "startTime": "t"}
    assert agent.touched_by_agent(p)
    p["status"] = {"phase": "Failed"}
    assert agent.is_terminal(p)
    p["metadata"]["deletionTimestamp"] = "t"
    assert agent.is_deleting(p)


def test_grace_seconds():
    assert agent.grace_seconds(pod()) == 30
    assert agent.grace_seconds(pod(terminationGracePeriodSeconds=5)) == 5
    p = pod(terminationGracePeriodSeconds=5)
    p["metadata"]["deletionGracePeriodSeconds"] = 0
    assert agent.grace_seconds(p) == 0


def test_node_status_and_taints():
    s = agent.node_status("n1", {"cpu": "64", "memory": "64Gi", "pods": "250", "ephemeral-storage": "1Gi"},
                          "now", "since", {"kernelVersion": "6.1"})
    assert s["capacity"] == s["allocatable"] and s["capacity"]["pods"] == "250"
    conds = {c["type"]: c for c in s["conditions"]}
    assert conds["Ready"]["status"] == "True" and conds["Ready"]["reason"] == "KubeletReady"
    assert conds["Ready"]["lastHeartbeatTime"] == "now" and conds["Ready"]["lastTransitionTime"] == "since"
    assert all(conds[t]["status"] == "False" for t in ("MemoryPressure", "DiskPressure", "PIDPressure"))
    assert {"type": "InternalIP", "address": "127.0.0.1"} in s["addresses"]
    assert {"type": "Hostname", "address": "n1"} in s["addresses"]
    info = s["nodeInfo"]
    assert info["kubeletVersion"] == "v1.36.3" and info["containerRuntimeVersion"] == "gridshim-agent://0.1"
    assert info["operatingSystem"] == "linux" and info["architecture"] == "amd64" and info["kernelVersion"] == "6.1"
    labels = agent.node_labels("n1")
    assert labels["kubernetes.io/hostname"] == "n1" and labels["kubernetes.io/os"] == "linux"
    taints = [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"},
              {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"},
              {"key": "example.com/keep", "effect": "NoSchedule"}]
    assert agent.without_agent_taints(taints) == [{"key": "example.com/keep", "effect": "NoSchedule"}]
    assert agent.without_agent_taints(None) == []
    admin = [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
             {"key": "node.kubernetes.io/out-of-service", "effect": "NoExecute"}]
    assert agent.without_agent_taints(admin, unschedulable=True) == admin
    assert agent.without_agent_taints(admin, unschedulable=False) == admin[1:]


# ------------------------------------------------------------------ pod worker decisions (no processes)

def make_worker(policy="Never", containers=("c",), inits=()):
    fake_agent = types.SimpleNamespace(restart_backoff=10.0, max_backoff=300.0, stopping=False)
    p = pod(restartPolicy=policy, containers=[{"name": n, "image": "img"} for n in containers],
            initContainers=[{"name": n} for n in inits])
    return agent.PodWorker(fake_agent, p)


def test_worker_never_policy_fails_pod_on_nonzero_exit():
    w = make_worker("Never", ("a", "b"))
    w.stage = "main"
    a, b = w.mains
    w.on_exit(a, 0, None, "t")
    w.on_exit(b, 3, None, "t")
    assert a.done and b.done and b.state["terminated"]["exitCode"] == 3
    w.advance_main(0.0)
    assert w.stage == "final" and w.phase == "Failed"
    status = w.render_status()
    assert status["phase"] == "Failed" and status["reason"] is None
    assert [c["state"]["terminated"]["exitCode"] for c in status["containerStatuses"]] == [0, 3]
    assert status["podIPs"] == [{"ip": "127.0.0.1"}] and status["observedGeneration"] == 1


def test_worker_onfailure_backs_off_then_succeeds():
    w = make_worker("OnFailure")
    w.stage = "main"
    c = w.mains[0]
    c.container_id = "gridshim://1"
    w.on_exit(c, 1, None, "t")
    assert not c.done and c.crashes == 1 and c.last_state["terminated"]["exitCode"] == 1
    assert c.state["waiting"]["reason"] == "CrashLoopBackOff" and "back-off 0s" in c.state["waiting"]["message"]
    w.on_exit(c, 1, None, "t")
    assert c.crashes == 2 and "back-off 10s" in c.state["waiting"]["message"]
    w.on_exit(c, 0, None, "t")
    assert c.done and c.state["terminated"]["reason"] == "Completed"
    w.advance_main(0.0)
    assert w.phase == "Succeeded"


def test_worker_long_run_resets_backoff():
    w = make_worker("Always")
    w.stage = "main"
    c = w.mains[0]
    for _ in range(4):
        w.on_exit(c, 0, None, "t")
    assert c.crashes == 4
    w.on_exit(c, 0, None, "t", ran=agent.BACKOFF_RESET_SECONDS + 1)
    assert c.crashes == 1 and "back-off 0s" in c.state["waiting"]["message"]


def test_worker_signal_exit_records_signal():
    w = make_worker("Never")
    w.stage = "main"
    w.on_exit(w.mains[0], 137, 9, "t")
    t = w.mains[0].state["terminated"]
    assert t["exitCode"] == 137 and t["signal"] == 9 and t["reason"] == "Error"


def test_worker_init_failure_under_never_fails_pod():
    w = make_worker("Never", ("a",), ("i1", "i2"))
    w.on_exit(w.inits[0], 2, None, "t")
    assert w.stage == "final" and w.phase == "Failed"
    status = w.render_status()
    assert status["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert status["initContainerStatuses"][1]["state"] == {"waiting": {"reason": "PodInitializing"}}
    init = next(c for c in status["conditions"] if c["type"] == "Initialized")
    assert init["status"] == "False" and "[i1 i2]" in init["message"]


def test_worker_init_failure_under_onfailure_restarts_init():
    w = make_worker("OnFailure", ("a",), ("i1",))
    w.on_exit(w.inits[0], 2, None, "t")
    assert w.stage == "init" and w.inits[0].state["waiting"]["reason"] == "CrashLoopBackOff"


def test_worker_deadline_and_backoff_conversion_on_finish():
    w = make_worker("Always", ("a",))
    w.stage = "main"
    a = w.mains[0]
    w.on_exit(a, 5, None, "t")         # now waiting in back-off with lastState terminated(5)
    w.begin_terminate("deadline", 30, 0.0)
    assert a.restart_at is None
    w.finish_terminated()
    assert w.phase == "Failed" and w.reason == "DeadlineExceeded"
    assert a.state["terminated"]["exitCode"] == 5 and a.last_state == {}


def test_worker_deleted_before_start_fails_with_unknown_containers():
    w = make_worker("Always", ("a",))
    w.begin_terminate("deleted", 30, 0.0)
    w.finish_terminated()
    assert w.phase == "Failed"
    t = w.mains[0].state["terminated"]
    assert t["exitCode"] == 137 and t["reason"] == "ContainerStatusUnknown"


def test_worker_deleted_pod_whose_containers_exit_zero_succeeds():
    w = make_worker("Always", ("a",))
    w.stage = "main"
    w.begin_terminate("deleted", 30, 0.0)
    w.on_exit(w.mains[0], 0, None, "t")
    w.finish_terminated()
    assert w.phase == "Succeeded"


def test_worker_config_error():
    w = make_worker("Always", ("a",))
    w.config_error(w.mains[0], "container would run as root")
    assert w.mains[0].blocked and w.mains[0].state["waiting"]["reason"] == "CreateContainerConfigError"
    w = make_worker("Never", ("a",))
    w.stage = "main"
    w.config_error(w.mains[0], "container would run as root")
    w.advance_main(0.0)
    assert w.phase == "Failed"
    assert w.mains[0].state["terminated"]["reason"] == "CreateContainerConfigError"


def test_child_limits_is_a_callable_built_in_the_parent():
    assert callable(agent.child_limits(None)) and callable(agent.child_limits(2**30))


def test_parse_args_defaults():
    a = agent.parse_args(["--kubeconfig", "k", "--node", "n", "--state-dir", "d"])
    assert (a.restart_backoff, a.max_backoff, a.capacity_cpu, a.capacity_memory, a.capacity_pods) == \
        (10.0, 300.0, "64", "64Gi", "250")


def test_parse_args_private_tmp():
    base = ["--kubeconfig", "k", "--node", "n", "--state-dir", "d"]
    assert agent.parse_args(base).private_tmp == "auto"
    assert agent.parse_args(base + ["--private-tmp", "require"]).private_tmp == "require"
    with pytest.raises(SystemExit):
        agent.parse_args(base + ["--private-tmp", "maybe"])


# ------------------------------------------------------------------ private /tmp and /dev/shm

def test_private_dirs_are_per_pod_and_container_under_the_state_dir():
    d = agent.private_dirs("/st", "0a1b-2c", "main")
    assert d == agent.PrivateDirs(root="/st/podtmp/0a1b-2c/main", tmp="/st/podtmp/0a1b-2c/main/tmp",
                                  shm="/st/podtmp/0a1b-2c/main/shm")
    assert d.source_for("/tmp") == d.tmp and d.source_for("/dev/shm") == d.shm
    assert agent.pod_private_root("/st", "0a1b-2c") == "/st/podtmp/0a1b-2c"
    assert agent.private_dirs("/st", "0a1b-2c", "init-1").root != d.root


@pytest.mark.parametrize("uid,name", [("..", "c"), ("u", ".."), ("a/b", "c"), ("u", "x/../../etc"), ("", "c"),
                                      ("u", ""), (".hidden", "c"), (None, "c"), ("u", 5)])
def test_private_dirs_refuse_unsafe_names(uid, name):
    with pytest.raises(ValueError):
        agent.private_dirs("/st", uid, name)


def test_is_under_and_root_of():
    assert agent.is_under("/tmp", "/tmp") and agent.is_under("/tmp/a/b", "/tmp")
    assert not agent.is_under("/tmpfoo", "/tmp") and not agent.is_under("/", "/tmp")
    assert agent.root_of("/dev/shm/x", agent.PRIVATE_ROOTS) == "/dev/shm"
    assert agent.root_of("/tmp", agent.PRIVATE_ROOTS) == "/tmp"


def _hp_pod(*paths, other=()):
    vols = [{"name": f"v{i}", "hostPath": {"path": p}} for i, p in enumerate(paths)]
    vols += [{"name": n, "emptyDir": {}} for n in other]
    return pod(volumes=vols)


def test_hostpath_binds_only_mounted_paths_under_private_roots():
    p = _hp_pod("/tmp/a", "/data/project", "/dev/shm/s", "/tmp/unmounted", other=("scratch",))
    c = {"name": "c", "volumeMounts": [{"name": "v0", "mountPath": "/elsewhere"}, {"name": "v1", "mountPath": "/d"},
                                       {"name": "v2", "mountPath": "/s"}, {"name": "scratch", "mountPath": "/tmp/x"},
                                       {"name": "nope", "mountPath": "/n"}]}
    assert agent.hostpath_binds(p, c, agent.PRIVATE_ROOTS) == ["/tmp/a", "/dev/shm/s"]
    assert agent.hostpath_binds(p, {"name": "c"}, agent.PRIVATE_ROOTS) == []
    assert agent.hostpath_binds(pod(), c, agent.PRIVATE_ROOTS) == []


def test_hostpath_binds_normalizes_orders_parents_first_and_drops_nested():
    p = _hp_pod("/tmp/a/b/c", "//tmp/./a/", "/tmp/z/../b", "relative/tmp", "/tmpfoo/x", "/tmp/a/b")
    c = {"name": "c", "volumeMounts": [{"name": f"v{i}", "mountPath": f"/m{i}"} for i in range(6)]}
    assert agent.hostpath_binds(p, c, agent.PRIVATE_ROOTS) == ["/tmp/a", "/tmp/b"]
    whole = _hp_pod("/tmp/a", "/tmp")
    c2 = {"name": "c", "volumeMounts": [{"name": "v0", "mountPath": "/a"}, {"name": "v1", "mountPath": "/t"}]}
    assert agent.hostpath_binds(whole, c2, agent.PRIVATE_ROOTS) == ["/tmp"]  # the host's /tmp itself, on purpose


def test_podtmp_leftovers_keeps_only_running_pods():
    entries = ["u-1", "u-2", ".probe", "stray-file"]
    assert agent.podtmp_leftovers(entries, {"u-2"}) == [".probe", "stray-file", "u-1"]
    assert agent.podtmp_leftovers(entries, set()) == sorted(entries)  # at start and at shutdown: all
    assert agent.podtmp_leftovers([], {"u-1"}) == []


@pytest.mark.parametrize("setting,root,probe,expected", [
    ("auto", True, None, ("private", None)),
    ("require", True, None, ("private", None)),
    ("auto", True, "EPERM", ("shared", "EPERM")),
    ("require", True, "EPERM", ("refused", "EPERM")),
    ("off", True, None, ("shared", "--private-tmp off")),
    ("auto", False, None, ("shared", "the agent does not run as root")),
    ("require", False, None, ("shared", "the agent does not run as root")),
])
def test_private_tmp_decision(setting, root, probe, expected):
    assert agent.private_tmp_decision(setting, root, probe) == expected


def test_child_report_round_trip_and_garbage():
    data = agent.encode_child_report("mount", errno.EPERM, "Operation not permitted", "mount --bind a /tmp")
    assert agent.decode_child_report(data) == ("mount", errno.EPERM, "Operation not permitted", "mount --bind a /tmp")
    assert agent.decode_child_report(b"") is None
    assert agent.decode_child_report(b"a\0b\0c\0d") is None
    assert agent.decode_child_report(b"only\0three\0parts") is None


def test_child_failure_messages():
    argv, cwd = ["/bin/x"], "/tmp/work"
    assert agent.child_failure(("chdir", errno.ENOENT, "No such file or directory", ""), argv, cwd) == \
        agent.start_error(OSError(errno.ENOENT, "No such file or directory", cwd), argv, cwd)
    code, msg = agent.child_failure(("chdir", errno.EACCES, "Permission denied", ""), argv, cwd)
    assert code == 128 and msg.startswith("chdir to cwd ('/tmp/work')")
    code, msg = agent.child_failure(("unshare", errno.EPERM, "Operation not permitted", ""), argv, cwd)
    assert code == 128 and "private /tmp" in msg and "unshare(CLONE_NEWNS): Operation not permitted" in msg
    code, msg = agent.child_failure(("mount", errno.EINVAL, "Invalid argument", "mount --bind s /tmp"), argv, cwd)
    assert code == 128 and msg.endswith("mount --bind s /tmp: Invalid argument")
    code, msg = agent.child_failure(("ids", errno.EPERM, "Operation not permitted", "uid 5 gid 5 groups []"), argv, cwd)
    assert code == 128 and msg == "cannot switch to uid 5 gid 5 groups []: Operation not permitted"


def test_child_setup_is_a_callable_built_in_the_parent():
    ident = agent.Identity(1000, 1000, (1000,))
    assert callable(agent.child_setup(agent.child_limits(None), ident, "/", None, -1))
    binds = [agent.Bind("/st/podtmp/u/c/tmp", "/tmp", False, "mount --bind ...")]
    assert callable(agent.child_setup(agent.child_limits(2**30), ident, "/", binds, -1))


def test_make_mountpoint_copies_owner_and_mode_of_intermediate_dirs(tmp_path):
    host = tmp_path / "host"
    (host / "a" / "b").mkdir(parents=True)
    (host / "a").chmod(0o1777)
    (host / "a" / "f").write_text("x")
    base = tmp_path / "private"
    base.mkdir()
    agent.make_mountpoint(str(base), "a/b", str(host), True)
    assert (base / "a" / "b").is_dir()
    assert (base / "a").stat().st_mode & 0o7777 == 0o1777
    agent.make_mountpoint(str(base), "a/f", str(host), False)
    assert (base / "a" / "f").is_file() and (base / "a" / "f").read_text() == ""
    agent.make_mountpoint(str(base), "a/b", str(host), True)  # again: nothing to do, no error


def test_remove_tree_does_not_follow_symlinks(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("k")
    tree = tmp_path / "podtmp" / "u-1" / "c" / "tmp"
    tree.mkdir(parents=True)
    (tree / "link").symlink_to(outside)
    (tree / "sub").mkdir()
    (tree / "sub" / "f").write_text("f")
    assert agent.remove_tree(str(tmp_path / "podtmp" / "u-1"))
    assert not (tmp_path / "podtmp" / "u-1").exists() and (outside / "keep").read_text() == "k"
    assert agent.remove_tree(str(tmp_path / "never-was"))


def _agent_ns(tmp_path, **kw):
    ns = types.SimpleNamespace(state_dir=str(tmp_path), podtmp_dir=str(tmp_path / "podtmp"), stopping=False,
                               tmp_mode="private", restart_backoff=10.0, max_backoff=300.0, shared_paths=[])
    ns.__dict__.update(kw)
    return ns


def test_sweep_private_dirs_removes_all_but_running_pods(tmp_path):
    for uid in ("u-1", "u-2", "u-3"):
        (tmp_path / "podtmp" / uid / "c" / "tmp").mkdir(parents=True)
    fake = _agent_ns(tmp_path)
    assert agent.Agent.sweep_private_dirs(fake, {"u-2"}) == 2
    assert sorted(p.name for p in (tmp_path / "podtmp").iterdir()) == ["u-2"]
    assert agent.Agent.sweep_private_dirs(fake, set()) == 1
    assert list((tmp_path / "podtmp").iterdir()) == []
    assert agent.Agent.sweep_private_dirs(_agent_ns(tmp_path / "none"), set()) == 0  # no podtmp at all


def _worker_with_dirs(tmp_path, **agent_kw):
    w = agent.PodWorker(_agent_ns(tmp_path, **agent_kw), pod())
    d = agent.private_dirs(str(tmp_path), w.uid, "c")
    for sub in (d.tmp, d.shm):
        Path(sub).mkdir(parents=True)
    (Path(d.tmp) / "job-file").write_text("x")
    return w, Path(agent.pod_private_root(str(tmp_path), w.uid))


def test_worker_removes_its_private_dirs_when_done(tmp_path):
    w, root = _worker_with_dirs(tmp_path)
    w.remove_private_dirs()
    assert not root.exists()


@pytest.mark.parametrize("why", ["stopping", "live", "shared"])
def test_worker_keeps_private_dirs_while_something_may_use_them(tmp_path, why):
    w, root = _worker_with_dirs(tmp_path, stopping=why == "stopping", tmp_mode="shared" if why == "shared" else "private")
    if why == "live":
        w.mains[0].proc = types.SimpleNamespace(pid=1)
    w.remove_private_dirs()
    assert root.exists()  # at shutdown the agent sweeps after killing; a live process still uses it


def test_private_mounts_recreates_fresh_dirs_and_mount_points(tmp_path, monkeypatch):
    import shutil
    import tempfile
    host = Path(tempfile.mkdtemp(prefix="gridshim-unit-", dir="/tmp"))  # a real hostPath under the real /tmp
    try:
        (host / "shared" / "data").mkdir(parents=True)
        host.chmod(0o1777)
        hp = str(host / "shared" / "data")
        p = pod(volumes=[{"name": "hp", "hostPath": {"path": hp}},
                         {"name": "gone", "hostPath": {"path": str(host / "missing")}}],
                containers=[{"name": "c", "volumeMounts": [{"name": "hp", "mountPath": "/x"},
                                                           {"name": "gone", "mountPath": "/y"}]}])
        w = agent.PodWorker(_agent_ns(tmp_path, private_roots=agent.PRIVATE_ROOTS), p)
        d = agent.private_dirs(str(tmp_path), w.uid, "c")
        Path(d.tmp).mkdir(parents=True)
        (Path(d.tmp) / "from-last-run").write_text("old")
        logged = []
        monkeypatch.setattr(agent.PodWorker, "log", lambda self, *a: logged.append(a))
        binds = w.private_mounts(w.mains[0])
        assert not (Path(d.tmp) / "from-last-run").exists()  # a restarted container gets a new /tmp
        for sub in (d.tmp, d.shm):
            assert Path(sub).stat().st_mode & 0o7777 == 0o1777
        inside = Path(d.tmp) / host.name
        assert inside.stat().st_mode & 0o7777 == 0o1777       # intermediate dir: the host's mode
        assert (inside / "shared" / "data").is_dir()          # the mount point for the hostPath
        assert [(b.source, b.target, b.recursive) for b in binds] == [
            (d.tmp, "/tmp", False), (d.shm, "/dev/shm", False), (hp, hp, True)]
        assert any("does not exist" in a[0] for a in logged)  # the missing hostPath is only logged
    finally:
        shutil.rmtree(host)


def test_outermost_keeps_parents_only() -> None:
    assert agent.outermost(["/tmp/a/b", "/tmp/a", "/tmp/c/", "/tmp/c"]) == ["/tmp/a", "/tmp/c"]


def test_a_shared_path_under_tmp_is_bound_back_into_the_private_tmp(tmp_path):
    """A checkout under /tmp (as CI may make) stays visible in the pods: --shared-path."""
    shared = Path("/tmp") / f"gridshim-shared-{os.getpid()}"
    shared.mkdir(exist_ok=True)
    try:
        w = agent.PodWorker(_agent_ns(tmp_path, private_roots=("/tmp",), shared_paths=[str(shared)]), pod())
        c = w.mains[0]
        binds = w.private_mounts(c)
        assert [b.target for b in binds] == ["/tmp", str(shared)]
        d = agent.private_dirs(str(tmp_path), w.uid, c.name)
        assert (Path(d.tmp) / shared.name).is_dir()  # the mount point inside the private /tmp
    finally:
        shared.rmdir()
