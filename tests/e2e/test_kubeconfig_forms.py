"""Every kubeconfig form against the real sandbox, side by side with kubectl (issue 13).

Each row builds a kubeconfig (and environment) for one tool, then runs `kubectl get jobs`, `jsub` and
`qstat` with it as the tool's uid. gridshim must work exactly when kubectl works; where it does not, its
error is one line and names the fix. Proxied rows go through a loopback CONNECT proxy that records each
tunnel (tests/unit/kubefake.py) and resolves a made-up name to the sandbox's loopback API server, so
kubectl's rule that loopback addresses are never proxied does not hide the proxy.

Token rows use a ServiceAccount token from the TokenRequest API (`kubectl create token`), the SA bound to
the same ClusterRole as the tool. In-cluster rows run where in-cluster credentials exist, inside a job of
the tool (site setting `in_jobs`): its script runs the same three commands with no kubeconfig, as kubectl
and gridshim then look for the pod's ServiceAccount token.
"""

from __future__ import annotations

import base64
import os
import socket
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import Sandbox, Tool

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from kubefake import ConnectProxy, free_port
from sandbox.tenancy import TOOL_CLUSTERROLE
from test_jobs_in_jobs import KUBECTL_MEM, SYNC_BOUND, site_config

PROXIED_HOST = "kube.proxied.test"  # resolved by the test proxy only
SA = "forms-e2e"


def loopback_alias() -> str:
    """A name other than localhost that resolves to 127.0.0.1 here: the serving certificate has only
    localhost and 127.0.0.1, so this name needs tls-server-name (and is not a loopback *address* to Go's
    proxy rules). On the sandbox VM it is the host name, vm."""
    for name in (socket.gethostname(), "vm", "localhost.localdomain"):
        try:
            if name and name != "localhost" and socket.gethostbyname(name) == "127.0.0.1":
                return name
        except OSError:
            pass
    pytest.fail("no name but localhost resolves to 127.0.0.1 on this machine: add one to /etc/hosts", pytrace=False)


@dataclass
class World:
    """What the rows need: the tool, another tool to impersonate, the server, files and the proxy."""

    sandbox: Sandbox
    tool: Tool
    other: Tool
    port: int
    ca_data: str
    sa_token: str
    proxy: ConnectProxy
    dir: Path
    alias: str = "vm"
    files: dict[str, Path] = field(default_factory=dict)

    def put(self, name: str, text: str | bytes, mode: int = 0o600) -> Path:
        p = self.dir / name
        p.write_bytes(text.encode() if isinstance(text, str) else text)
        p.chmod(mode)
        os.chown(p, self.tool.uid, self.tool.uid)
        return p

    def cert(self) -> dict[str, str]:
        base = self.tool.home / ".toolskube"
        return {"client-certificate": str(base / "client.crt"), "client-key": str(base / "client.key")}

    def kubeconfig(self, name: str, *, server: str | None = None, user: dict[str, Any] | None = None,
                   cluster: dict[str, Any] | None = None, namespace: str | None = None) -> str:
        cl = {"server": server or f"https://127.0.0.1:{self.port}", "certificate-authority-data": self.ca_data,
              **(cluster or {})}
        cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "c",
               "clusters": [{"name": "s", "cluster": cl}], "users": [{"name": "u", "user": user or self.cert()}],
               "contexts": [{"name": "c", "context": {"cluster": "s", "user": "u",
                                                      "namespace": namespace or self.tool.namespace}}]}
        return str(self.put(name, yaml.safe_dump(cfg)))

    def plugin(self, name: str, body: str) -> str:
        script = f"#!{sys.executable}\nimport json, os, sys\n" + textwrap.dedent(body)
        return str(self.put(name, script, mode=0o700))


@pytest.fixture(scope="module")
def world(sandbox: Sandbox, make_tool: Callable[..., Tool], tmp_path_factory: pytest.TempPathFactory) -> Any:
    tool, other = make_tool("kf"), make_tool("ko")
    ns = tool.namespace
    sandbox.kubectl("-n", ns, "create", "serviceaccount", SA)
    sandbox.kubectl("-n", ns, "create", "rolebinding", SA, f"--clusterrole={TOOL_CLUSTERROLE}",
                    f"--serviceaccount={ns}:{SA}")
    token = sandbox.kubectl("-n", ns, "create", "token", SA, "--duration=2h").stdout.strip()
    # impersonation: the tool may act as the other tool's user (and its group), nothing more
    role = f"impersonate-{other.name}"
    sandbox.kubectl("create", "clusterrole", role, "--verb=impersonate", "--resource=users,groups",
                    f"--resource-name={other.name}", "--resource-name=toolforge")
    sandbox.kubectl("create", "clusterrolebinding", role, f"--clusterrole={role}", f"--user={tool.name}")
    admin = yaml.safe_load(Path(sandbox.admin_kubeconfig).read_text())
    d = tool.home / "forms"
    d.mkdir()
    os.chown(d, tool.uid, tool.uid)
    proxy = ConnectProxy(resolve={PROXIED_HOST: "127.0.0.1"})
    w = World(sandbox=sandbox, tool=tool, other=other, port=int(sandbox.state["server"].rsplit(":", 1)[1]),
              ca_data=admin["clusters"][0]["cluster"]["certificate-authority-data"], sa_token=token,
              proxy=proxy, dir=d, alias=loopback_alias())
    yield w
    proxy.close()
    sandbox.kubectl("delete", "clusterrolebinding,clusterrole", role, check=False)


def inline(w: World) -> tuple[str, dict[str, str]]:
    b64 = lambda p: base64.b64encode(Path(p).read_bytes()).decode()  # noqa: E731
    c = w.cert()
    return w.kubeconfig("inline", user={"client-certificate-data": b64(c["client-certificate"]),
                                        "client-key-data": b64(c["client-key"])}), {}


def merged(w: World) -> tuple[str, dict[str, str]]:
    """Context and user in the first file, the cluster in the second (and a decoy context there)."""
    first = {"apiVersion": "v1", "kind": "Config", "current-context": "c",
             "contexts": [{"name": "c", "context": {"cluster": "s", "user": "u", "namespace": w.tool.namespace}}],
             "users": [{"name": "u", "user": w.cert()}]}
    second = {"apiVersion": "v1", "kind": "Config", "current-context": "decoy",
              "clusters": [{"name": "s", "cluster": {"server": f"https://127.0.0.1:{w.port}",
                                                     "certificate-authority-data": w.ca_data}}],
              "users": [{"name": "u", "user": {"token": "not-this-one"}}],
              "contexts": [{"name": "c", "context": {"cluster": "nowhere", "user": "u"}}]}
    a, b = w.put("merge-a", yaml.safe_dump(first)), w.put("merge-b", yaml.safe_dump(second))
    return f"{a}:{b}", {}


def token(w: World) -> tuple[str, dict[str, str]]:
    return w.kubeconfig("token", user={"token": w.sa_token}), {}


def token_file(w: World) -> tuple[str, dict[str, str]]:
    w.put("sa.token", w.sa_token)
    return w.kubeconfig("token-file", user={"tokenFile": "sa.token"}), {}


def exec_token(w: World) -> tuple[str, dict[str, str]]:
    p = w.plugin("plugin-token", f'''
        info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
        assert info["spec"]["cluster"]["server"].startswith("https://127.0.0.1:"), info
        print(json.dumps({{"kind": "ExecCredential", "apiVersion": info["apiVersion"],
                          "status": {{"token": {w.sa_token!r}, "expirationTimestamp": "2099-01-01T00:00:00Z"}}}}))
        ''')
    return w.kubeconfig("exec-token", user={"exec": {
        "apiVersion": "client.authentication.k8s.io/v1", "command": p, "interactiveMode": "Never",
        "provideClusterInfo": True}}), {}


def exec_cert(w: World) -> tuple[str, dict[str, str]]:
    c = w.cert()
    p = w.plugin("plugin-cert", f'''
        info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
        print(json.dumps({{"kind": "ExecCredential", "apiVersion": info["apiVersion"], "status": {{
            "clientCertificateData": open({c["client-certificate"]!r}).read(),
            "clientKeyData": open({c["client-key"]!r}).read()}}}}))
        ''')
    return w.kubeconfig("exec-cert", user={"exec": {
        "apiVersion": "client.authentication.k8s.io/v1beta1", "command": p, "args": ["--cluster", "sandbox"]}}), {}


def exec_failing(w: World) -> tuple[str, dict[str, str]]:
    return w.kubeconfig("exec-failing", user={"exec": {
        "apiVersion": "client.authentication.k8s.io/v1", "command": "/bin/false", "interactiveMode": "Never"}}), {}


def exec_garbage(w: World) -> tuple[str, dict[str, str]]:
    p = w.plugin("plugin-garbage", 'print("<html>login here</html>")\n')
    return w.kubeconfig("exec-garbage", user={"exec": {
        "apiVersion": "client.authentication.k8s.io/v1", "command": p, "interactiveMode": "Never"}}), {}


def tls_name(w: World) -> tuple[str, dict[str, str]]:
    return w.kubeconfig("tls-name", server=f"https://{w.alias}:{w.port}", cluster={"tls-server-name": "localhost"}), {}


def tls_name_missing(w: World) -> tuple[str, dict[str, str]]:
    return w.kubeconfig("tls-name-missing", server=f"https://{w.alias}:{w.port}"), {}


def tls_name_wrong(w: World) -> tuple[str, dict[str, str]]:
    return w.kubeconfig("tls-name-wrong", cluster={"tls-server-name": "kubernetes.invalid"}), {}


def proxy_url(w: World) -> tuple[str, dict[str, str]]:
    return w.kubeconfig("proxy-url", server=f"https://{PROXIED_HOST}:{w.port}",
                        cluster={"tls-server-name": "localhost", "proxy-url": w.proxy.url}), {}


def https_proxy(w: World) -> tuple[str, dict[str, str]]:
    return (w.kubeconfig("https-proxy", server=f"https://{PROXIED_HOST}:{w.port}",
                         cluster={"tls-server-name": "localhost"}), {"HTTPS_PROXY": w.proxy.url})


def https_proxy_loopback(w: World) -> tuple[str, dict[str, str]]:
    # kubectl never proxies a loopback server: the proxy named here is down and never asked
    return w.kubeconfig("https-proxy-loopback"), {"https_proxy": f"http://127.0.0.1:{free_port()}"}


def no_proxy(w: World) -> tuple[str, dict[str, str]]:
    return (w.kubeconfig("no-proxy", server=f"https://{w.alias}:{w.port}", cluster={"tls-server-name": "localhost"}),
            {"HTTPS_PROXY": f"http://127.0.0.1:{free_port()}", "NO_PROXY": f"example.org,{w.alias}:{w.port}"})


def no_proxy_other_port(w: World) -> tuple[str, dict[str, str]]:
    return (w.kubeconfig("no-proxy-port", server=f"https://{w.alias}:{w.port}", cluster={"tls-server-name": "localhost"}),
            {"HTTPS_PROXY": f"http://127.0.0.1:{free_port()}", "NO_PROXY": f"{w.alias}:1"})


def impersonate(w: World) -> tuple[str, dict[str, str]]:
    user = {**w.cert(), "as": w.other.name, "as-groups": ["toolforge"]}
    return w.kubeconfig("impersonate", user=user, namespace=w.other.namespace), {}


def impersonate_denied(w: World) -> tuple[str, dict[str, str]]:
    user = {**w.cert(), "as": "system:admin"}
    return w.kubeconfig("impersonate-denied", user=user), {}


def auth_provider(w: World) -> tuple[str, dict[str, str]]:
    return w.kubeconfig("auth-provider", user={"auth-provider": {"name": "gcp", "config": {}}}), {}


# (name, builder, kubectl and gridshim work?, what gridshim's one line says when not, tunnels expected)
FORMS: list[tuple[str, Callable[[World], tuple[str, dict[str, str]]], bool, str, bool]] = [
    ("cert-files", lambda w: (w.tool.kubeconfig, {}), True, "", False),
    ("inline-data", inline, True, "", False),
    ("two-file-merge", merged, True, "", False),
    ("token", token, True, "", False),
    ("token-file", token_file, True, "", False),
    ("exec-token", exec_token, True, "", False),
    ("exec-cert", exec_cert, True, "", False),
    ("exec-failing", exec_failing, False, "the exec plugin false (user 'u' in", False),
    ("exec-garbage", exec_garbage, False, "printed no usable credential (not JSON)", False),
    ("tls-server-name", tls_name, True, "", False),
    ("tls-server-name-missing", tls_name_missing, False, "set tls-server-name", False),
    ("tls-server-name-wrong", tls_name_wrong, False, "is not for 'kubernetes.invalid'", False),
    ("proxy-url", proxy_url, True, "", True),
    ("HTTPS_PROXY", https_proxy, True, "", True),
    ("HTTPS_PROXY-loopback", https_proxy_loopback, True, "", False),
    ("NO_PROXY", no_proxy, True, "", False),
    ("NO_PROXY-other-port", no_proxy_other_port, False, "through the proxy http://127.0.0.1:", False),
    ("impersonation", impersonate, True, "", False),
    ("impersonation-denied", impersonate_denied, False, "impersonates 'system:admin' (as:)", False),
    ("auth-provider", auth_provider, False, "gke-gcloud-auth-plugin", False),
]


@pytest.mark.needs_sandbox("builds kubeconfig forms from the sandbox's CA and its server's loopback port (tls-server-name, proxies, exec plugins)")
@pytest.mark.parametrize("name,build,works,says,tunnels", FORMS, ids=[f[0] for f in FORMS])
def test_each_form_works_with_jsub_and_qstat_exactly_when_kubectl_works(
        world: World, name: str, build: Callable[[World], tuple[str, dict[str, str]]], works: bool, says: str,
        tunnels: bool) -> None:
    kubeconfig, extra = build(world)
    env = {"KUBECONFIG": kubeconfig, "GRIDSHIM_RETRY_SECONDS": "0", "GRIDSHIM_EXEC_TIMEOUT": "20", **extra}
    before = len(world.proxy.tunnels)
    kubectl = world.tool.run("kubectl", "get", "jobs", env=env, timeout=60)
    assert (kubectl.returncode == 0) is works, (name, kubectl.stderr)
    after_kubectl = len(world.proxy.tunnels)
    job = f"f-{name.lower().replace('_', '-')}"[:40]
    jsub = world.tool.run("jsub", "-N", job, "true", env=env, timeout=120)
    qstat = world.tool.run("qstat", env=env, timeout=120)
    for proc, what in ((jsub, "jsub"), (qstat, "qstat")):
        assert (proc.returncode == 0) is works, (name, what, proc.stdout, proc.stderr)
        if not works:
            lines = proc.stderr.strip().splitlines()
            assert len(lines) == 1 and says in lines[0], (name, what, proc.stderr)
            print(f"{name}: {what}: {lines[0]}")  # shown with -rP
    if works:
        assert "has been submitted" in jsub.stdout and job[:10] in qstat.stdout, (name, jsub.stdout, qstat.stdout)
    if tunnels:
        assert after_kubectl > before, "kubectl did not go through the proxy"
        assert len(world.proxy.tunnels) > after_kubectl, "gridshim did not go through the proxy"
        assert all(t == f"{PROXIED_HOST}:{world.port}" for t in world.proxy.tunnels[before:])
    else:
        assert len(world.proxy.tunnels) == before, world.proxy.tunnels[before:]


@pytest.mark.needs_sandbox("builds kubeconfig forms from the sandbox's CA and its server's loopback port (tls-server-name, proxies, exec plugins)")
def test_impersonation_acts_with_the_other_tools_rights_only(world: World) -> None:
    """The Job made through `as:` is the other tool's (its namespace); the tool's own has none of that name."""
    kubeconfig, _ = impersonate(world)
    env = {"KUBECONFIG": kubeconfig, "GRIDSHIM_RETRY_SECONDS": "0"}
    assert world.tool.run("jsub", "-N", "as-other", "true", env=env).returncode == 0
    theirs = world.sandbox.kubectl_json("-n", world.other.namespace, "get", "jobs")["items"]
    ours = world.sandbox.kubectl_json("-n", world.tool.namespace, "get", "jobs")["items"]
    assert any(j["metadata"].get("labels", {}).get("gridshim.io/name", j["metadata"]["name"]).startswith("as-other")
               or "as-other" in j["metadata"]["name"] for j in theirs), [j["metadata"]["name"] for j in theirs]
    assert not any("as-other" in j["metadata"]["name"] for j in ours)


@pytest.mark.needs_sandbox("builds kubeconfig forms from the sandbox's CA and its server's loopback port (tls-server-name, proxies, exec plugins)")
def test_doctor_reports_the_api_groups_with_an_exec_plugin(world: World) -> None:
    kubeconfig, _ = exec_token(world)
    out = world.tool.run("gridshim", "doctor", env={"KUBECONFIG": kubeconfig})
    assert "API groups" in out.stdout and "batch/v1 jobs and cronjobs are served" in out.stdout, out.stdout


# In-cluster rows (name, the site's in_jobs identity, kubectl and gridshim work?, what gridshim's line says):
# with service-account the pod has its ServiceAccount token; with kubeconfig (Toolforge's way) it has none,
# but the kubelet's KUBERNETES_SERVICE_HOST/PORT are set all the same.
IN_CLUSTER_FORMS: list[tuple[str, str, bool, str]] = [
    ("in-cluster", "service-account", True, ""),
    ("in-cluster-without-token", "kubeconfig", False,
     "in-cluster credentials are incomplete: /var/run/secrets/kubernetes.io/serviceaccount/token does not exist"),
]


@pytest.mark.needs_shared_home("the row runs inside a job whose script, site config and results are files in the "
                               "tool's home, and gridshim on the pods' PATH is this checkout's")
@pytest.mark.parametrize("name,identity,works,says", IN_CLUSTER_FORMS, ids=[f[0] for f in IN_CLUSTER_FORMS])
def test_in_cluster_credentials_work_with_jsub_and_qstat_exactly_when_kubectl_works(
        world: World, name: str, identity: str, works: bool, says: str) -> None:
    cfg = site_config(world.tool, world.sandbox.bin, identity=identity, name=f"forms/{name}.yaml")
    job = f"f-{name}"[:40]
    script = world.put(f"{name}.sh", textwrap.dedent(f"""\
        #!/bin/sh
        export KUBECONFIG="$HOME/forms/no-such-kubeconfig"
        cd "$HOME/forms" || exit 1
        kubectl get jobs >{name}.kubectl.out 2>{name}.kubectl.err; echo $? >{name}.kubectl.rc
        jsub -N {job}-in true >{name}.jsub.out 2>{name}.jsub.err; echo $? >{name}.jsub.rc
        qstat >{name}.qstat.out 2>{name}.qstat.err; echo $? >{name}.qstat.rc
        """), mode=0o755)
    outer = world.tool.run("jsub", "-sync", "y", "-mem", KUBECTL_MEM, "-N", job, str(script),
                           env={"GRIDSHIM_CONFIG": str(cfg)}, timeout=SYNC_BOUND)
    assert outer.returncode == 0, (outer.stdout, outer.stderr)

    def result(what: str) -> tuple[int, str, str]:
        read = lambda ext: (world.dir / f"{name}.{what}.{ext}").read_text()  # noqa: E731
        return int(read("rc")), read("out"), read("err")

    kubectl = result("kubectl")
    assert (kubectl[0] == 0) is works, (name, kubectl)
    for what in ("jsub", "qstat"):
        rc, out, err = result(what)
        assert (rc == 0) is works, (name, what, out, err)
        if not works:
            lines = err.strip().splitlines()
            assert len(lines) == 1 and says in lines[0], (name, what, err)
            print(f"{name}: {what}: {lines[0]}")  # shown with -rP
    if works:
        assert "has been submitted" in result("jsub")[1] and job[:10] in result("qstat")[1], (name, result("qstat"))
