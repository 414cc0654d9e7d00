"""gridshim inside jobs (issue 13 item 3): the site setting `in_jobs`, what it puts in the pod template,
and the sandbox agent's pure helpers for the ServiceAccount token it projects into pods. The e2e proof on
the real sandbox is tests/e2e/test_jobs_in_jobs.py."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from gridshim import config, gridflags
from gridshim.config import ConfigError, Settings
from gridshim.model import Preset
from gridshim.render import render
from gridshim.translate import SubmitHost, translate

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sandbox import agent as G, tenancy

HOST = SubmitHost(tool="demo", home="/data/project/demo", cwd="/data/project/demo", uid=52001,
                  now=1_800_000_000.0, token="0123456789abcdef", env={"USER": "tools.demo", "PATH": "/home/bin"})


def pod(settings: Settings, *argv: str) -> dict[str, Any]:
    opts = gridflags.parse(list(argv) or ["/bin/true"], default_mem=settings.default_mem)
    req = translate(opts, preset=Preset.JSUB, settings=settings, host=HOST, program=opts.program or "",
                    command_line=" ".join(argv)).request
    (job,) = render(req, settings)
    return job["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def env_of(spec: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in spec["containers"][0]["env"]}


def test_off_by_default_no_token_and_nothing_added() -> None:
    spec = pod(Settings())
    assert spec["automountServiceAccountToken"] is False and "serviceAccountName" not in spec
    assert "PATH" not in env_of(spec) and "GRIDSHIM_CONFIG" not in env_of(spec)


def test_service_account_identity_with_path_and_config() -> None:
    s = config.from_dict({"in_jobs": {"identity": "service-account", "service_account": "jobs",
                                      "path": "/opt/gridshim/bin:/usr/bin:/bin", "config": "/etc/gridshim/jobs.yaml"}})
    spec = pod(s)
    assert spec["serviceAccountName"] == "jobs" and spec["automountServiceAccountToken"] is True
    env = env_of(spec)
    assert env["PATH"] == "/opt/gridshim/bin:/usr/bin:/bin" and env["GRIDSHIM_CONFIG"] == "/etc/gridshim/jobs.yaml"


def test_the_default_service_account_name_is_the_sandboxes() -> None:
    assert pod(config.from_dict({"in_jobs": {"identity": "service-account"}}))["serviceAccountName"] == "gridshim"
    assert tenancy.TOOL_SERVICE_ACCOUNT == "gridshim"  # what the sandbox's tool set-up binds


def test_kubeconfig_identity_mounts_no_token() -> None:
    spec = pod(config.from_dict({"in_jobs": {"identity": "kubeconfig", "path": "/opt/g/bin:/bin"}}))
    assert spec["automountServiceAccountToken"] is False and "serviceAccountName" not in spec
    assert env_of(spec)["PATH"] == "/opt/g/bin:/bin"


def test_a_jobs_own_path_wins() -> None:
    s = config.from_dict({"in_jobs": {"identity": "kubeconfig", "path": "/opt/g/bin:/bin"}})
    env = [(e["name"], e.get("value")) for e in pod(s, "-v", "PATH=/mine", "/bin/true")["containers"][0]["env"]]
    assert [v for k, v in env if k == "PATH"] == ["/mine"]


def test_dollars_in_the_path_survive_the_kubelet() -> None:
    s = config.from_dict({"in_jobs": {"identity": "kubeconfig", "path": "/opt/$(x)/bin"}})
    assert env_of(pod(s))["PATH"] == "/opt/$$(x)/bin"


@pytest.mark.parametrize("value,says", [
    ("yes", "in_jobs: expected a mapping"),
    ({}, None),
    ({"identity": "token"}, "in_jobs.identity: expected service-account or kubeconfig, got 'token'"),
    ({"path": "/bin"}, "in_jobs.identity: expected"),
    ({"identity": "kubeconfig", "colour": 1}, "in_jobs: unknown key(s) colour"),
    ({"identity": "service-account", "service_account": "Bad_Name"}, "is not a ServiceAccount name"),
    ({"identity": "kubeconfig", "path": "bin:/usr/bin"}, "in_jobs.path: expected the jobs' PATH"),
    ({"identity": "kubeconfig", "config": "etc/x.yaml"}, "in_jobs.config: expected the absolute path"),
])
def test_bad_settings_are_one_line(value: Any, says: str | None) -> None:
    if says is None:
        assert config.from_dict({"in_jobs": value}).in_jobs is None
        return
    with pytest.raises(ConfigError) as e:
        config.from_dict({"in_jobs": value}, path="/etc/gridshim/config.yaml")
    assert says in str(e.value) and "\n" not in str(e.value), str(e.value)


# -- the sandbox agent's ServiceAccount token volume --------------------------------------------------------

def api_access_pod(**spec: Any) -> dict[str, Any]:
    """A pod as the ServiceAccount admission plugin leaves it: the kube-api-access projected volume."""
    volume = {"name": "kube-api-access-x1", "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1",
                                                                      "fieldPath": "metadata.namespace"}}]}}]}}
    mount = {"name": "kube-api-access-x1", "mountPath": G.SERVICE_ACCOUNT_DIR, "readOnly": True}
    return {"metadata": {"name": "p", "namespace": "tool-a", "uid": "0f0e-uid"},
            "spec": {"serviceAccountName": "gridshim", "securityContext": {"runAsUser": 52001, "fsGroup": 52001},
                     "containers": [{"name": "job", "volumeMounts": [mount]}], "volumes": [volume], **spec}}


class FakeAgent:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir, self.is_root, self.tokens, self.asked = str(state_dir), False, iter(["t1", "t2"]), []

    def request_token(self, pod: dict[str, Any], audience: str | None, seconds: int) -> tuple[str, float]:
        self.asked.append((pod["spec"]["serviceAccountName"], pod["metadata"]["uid"], audience, seconds))
        return next(self.tokens), 1_000_000.0 + seconds

    def configmap_data(self, ns: str, name: str, optional: bool) -> dict[str, str] | None:
        return {"ca.crt": "PEM"} if name == "kube-root-ca.crt" else None


def test_the_token_is_refreshed_at_80_percent_of_its_life_or_after_a_day() -> None:
    assert G.token_refresh_at(1000.0, 1000.0 + 3607) == pytest.approx(1000.0 + 0.8 * 3607)
    assert G.token_refresh_at(0.0, 365 * 86400.0) == 86400.0  # an extended (one-year) token: after a day
    assert G.token_refresh_at(50.0, 10.0) == 50.0  # already expired: at once


def test_the_api_access_volume_is_filled_as_the_kubelet_fills_it(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    agent = FakeAgent(tmp_path)
    pod = api_access_pod()
    assert G.projected_mounts(pod, pod["spec"]["containers"][0]) == [("kube-api-access-x1", G.SERVICE_ACCOUNT_DIR)]
    w = G.PodWorker(agent, pod)  # type: ignore[arg-type]
    monkeypatch.setattr(G.time, "time", lambda: 1_000_000.0)
    at = w.project("kube-api-access-x1")
    d = Path(w.volume_dir("kube-api-access-x1"))
    assert {p.name: p.read_text() for p in d.iterdir()} == {"token": "t1", "ca.crt": "PEM", "namespace": "tool-a"}
    assert agent.asked == [("gridshim", "0f0e-uid", None, 3607)]  # bound to this pod, the volume's lifetime
    assert at == pytest.approx(1_000_000.0 + 0.8 * 3607)
    w.volume_refresh["kube-api-access-x1"] = at
    monkeypatch.setattr(G.time, "time", lambda: at + 1)
    w.refresh_volumes()
    assert (d / "token").read_text() == "t2" and w.volume_refresh["kube-api-access-x1"] > at
    assert sorted(p.name for p in d.iterdir()) == ["ca.crt", "namespace", "token"]  # nothing left aside


def test_the_token_file_is_the_pods_users_alone() -> None:
    assert G.file_owner(api_access_pod()) == 52001
    two = api_access_pod(containers=[{"name": "a"}, {"name": "b", "securityContext": {"runAsUser": 7}}])
    assert G.file_owner(two) is None


@pytest.mark.parametrize("path", ["/etc/x", "../x", "a//b", "", None, "a/./b"])
def test_projected_paths_stay_inside_the_volume(path: Any) -> None:
    with pytest.raises(G.VolumeError):
        G.projected_file_path(path)


def test_an_unsupported_source_is_a_volume_error(tmp_path: Path) -> None:
    pod = api_access_pod()
    pod["spec"]["volumes"][0]["projected"]["sources"].append({"secret": {"name": "s"}})
    with pytest.raises(G.VolumeError, match="source secret is not supported"):
        G.PodWorker(FakeAgent(tmp_path), pod).project("kube-api-access-x1")  # type: ignore[arg-type]


def test_the_kubernetes_service_variables_name_the_api_server() -> None:
    env = G.service_env("https://127.0.0.1:37363")
    assert env["KUBERNETES_SERVICE_HOST"] == "127.0.0.1" and env["KUBERNETES_SERVICE_PORT"] == "37363"
    assert env["KUBERNETES_PORT"] == "tcp://127.0.0.1:37363" and env["KUBERNETES_PORT_37363_TCP_PROTO"] == "tcp"


def test_a_token_that_cannot_be_had_yet_keeps_the_container_creating(tmp_path: Path) -> None:
    """As the kubelet: a failed TokenRequest (API down, ServiceAccount missing) is no StartError; the
    container waits in ContainerCreating with the reason and is tried again."""
    class Down(FakeAgent):
        tmp_mode = "private"

        def request_token(self, pod: dict[str, Any], audience: str | None, seconds: int) -> tuple[str, float]:
            raise G.ApiError(503, "the API server is shutting down")

    pod = api_access_pod()
    w = G.PodWorker(Down(tmp_path), pod)  # type: ignore[arg-type]
    (c,) = w.mains
    assert w.fill_volumes(c, 100.0) is False
    assert c.restart_at == 100.0 + G.VOLUME_RETRY_SECONDS and c.state["waiting"]["reason"] == "ContainerCreating"
    assert "the API server is shutting down" in c.state["waiting"]["message"] and c.starts == 0


def test_a_refusal_with_the_jobs_own_identity_names_it_not_a_kubeconfig() -> None:
    """A 403 answered to a job's ServiceAccount: the hint says what that identity may do; with a kubeconfig
    it asks, as before, whether the kubeconfig is the tool's."""
    import json

    from gridshim.kube.config import Credentials
    from gridshim.kube.transport import Transport

    body = json.dumps({"kind": "Status", "reason": "Forbidden", "message": 'jobs.batch is forbidden: User '
                       '"system:serviceaccount:tool-a:gridshim" cannot list resource "jobs" in the namespace "tool-b"'})
    for in_cluster, hint in ((True, "a job acts as its own tool's ServiceAccount, which may touch that tool's jobs only"),
                             (False, "is /k/config the kubeconfig of the tool that owns this?")):
        t = Transport(Credentials(path="/k/config", context="c", server="https://10.0.0.1:443", namespace="tool-b",
                                  token="t", in_cluster=in_cluster))
        err = t.error_for(403, body.encode(), "GET", "/apis/batch/v1/namespaces/tool-b/jobs")
        assert err.hint == hint and "system:serviceaccount:tool-a:gridshim" in err.message
