"""gridshim.kube against loopback fakes: every kubeconfig form, exec plugins (small scripts in tmp dirs),
proxies (a loopback CONNECT proxy that records each tunnel), tls-server-name, impersonation, Warning
headers, fieldValidation=Strict and discovery (issue 13). The same forms against the real sandbox, side by
side with kubectl, are tests/e2e/test_kubeconfig_forms.py."""

from __future__ import annotations

import base64
import datetime
import json
import os
import pty
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gridshim import cron_ops
from gridshim.errors import ClusterConfigError, ClusterError, GridshimError
from gridshim.kube import auth as A, client as K, transport as T
from gridshim.kube.config import load_credentials
from kubefake import ConnectProxy, FakeApiServer, Pki, free_port

CM = "/api/v1/namespaces/tool-x/configmaps/x"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.make(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def server(pki: Pki) -> Iterator[FakeApiServer]:
    srv = FakeApiServer(pki, tokens={"good"})
    yield srv
    srv.close()


@pytest.fixture(autouse=True)
def _fresh_process_state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    A._CACHE.clear()
    T._WARNED.clear()
    K._DISCOVERY.clear()
    for name in ("HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "GRIDSHIM_EXEC_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def kubeconfig(path: Path, server: str, *, user: dict[str, Any], cluster: dict[str, Any] | None = None,
               ca: Path | None = None) -> Path:
    cl: dict[str, Any] = {"server": server, **(cluster or {})}
    if ca is not None and "certificate-authority" not in cl and "certificate-authority-data" not in cl:
        cl["certificate-authority"] = str(ca)
    cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "c",
           "clusters": [{"name": "k", "cluster": cl}], "users": [{"name": "u", "user": user}],
           "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u", "namespace": "tool-x"}}]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg))
    return path


def cluster_for(path: Path, environ: dict[str, str] | None = None, budget: float = 0) -> K.KubeCluster:
    env = {**os.environ, **(environ or {})}
    return K.KubeCluster(load_credentials([str(path)]), retry_seconds=budget, environ=env)


def url(srv: FakeApiServer, host: str = "127.0.0.1") -> str:
    return f"https://{host}:{srv.port}"


def cert_user(pki: Pki) -> dict[str, str]:
    return {"client-certificate": str(pki.client_cert), "client-key": str(pki.client_key)}


# -- the plain forms ---------------------------------------------------------------------------------

def test_client_certificate_files(server: FakeApiServer, pki: Pki, tmp_path: Path) -> None:
    c = cluster_for(kubeconfig(tmp_path / "k", url(server), user=cert_user(pki), ca=pki.ca))
    assert c.request("GET", CM)["kind"] == "ConfigMap"
    assert server.seen[-1].client_cn == "tool-x" and not server.seen[-1].header("Authorization")


def test_inline_data_never_touches_disk(server: FakeApiServer, pki: Pki, tmp_path: Path) -> None:
    b64 = lambda p: base64.b64encode(p.read_bytes()).decode()  # noqa: E731
    p = kubeconfig(tmp_path / "k", url(server), cluster={"certificate-authority-data": b64(pki.ca)},
                   user={"client-certificate-data": b64(pki.client_cert), "client-key-data": b64(pki.client_key)})
    c = cluster_for(p)
    assert c.request("GET", CM)["kind"] == "ConfigMap" and server.seen[-1].client_cn == "tool-x"
    cert, key = c.auth.client_cert()  # type: ignore[misc]
    assert cert.startswith("/proc/self/fd/") and key and key.startswith("/proc/self/fd/")


def test_two_files_merge_as_kubectl_merges_them(server: FakeApiServer, pki: Pki, tmp_path: Path) -> None:
    """First file wins per entry and for current-context; relative paths are relative to their own file."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b" / "certs").mkdir(parents=True)
    for f in (pki.client_cert, pki.client_key):
        (tmp_path / "b" / "certs" / f.name).write_bytes(f.read_bytes())
    first = {"apiVersion": "v1", "kind": "Config", "current-context": "mine",
             "contexts": [{"name": "mine", "context": {"cluster": "k", "user": "u", "namespace": "tool-x"}}],
             "users": [{"name": "u", "user": {"client-certificate": "../b/certs/client.crt",
                                              "client-key": "../b/certs/client.key"}}]}
    second = {"apiVersion": "v1", "kind": "Config", "current-context": "other",
              "clusters": [{"name": "k", "cluster": {"server": url(server), "certificate-authority": str(pki.ca)}}],
              "users": [{"name": "u", "user": {"token": "bad"}}],
              "contexts": [{"name": "mine", "context": {"cluster": "nope", "user": "u"}}]}
    (tmp_path / "a" / "config").write_text(yaml.safe_dump(first))
    (tmp_path / "b" / "config").write_text(yaml.safe_dump(second))
    creds = load_credentials([str(tmp_path / "a" / "config"), str(tmp_path / "missing"), str(tmp_path / "b" / "config")])
    assert creds.context == "mine" and creds.token is None and creds.namespace == "tool-x"
    c = K.KubeCluster(creds, retry_seconds=0)
    assert c.request("GET", CM) and server.seen[-1].client_cn == "tool-x"


def test_token_and_token_file(server: FakeApiServer, pki: Pki, tmp_path: Path) -> None:
    c = cluster_for(kubeconfig(tmp_path / "k1", url(server), user={"token": "good"}, ca=pki.ca))
    assert c.request("GET", CM) and server.seen[-1].header("Authorization") == ["Bearer good"]
    (tmp_path / "tok").write_text("good\n")
    c = cluster_for(kubeconfig(tmp_path / "k2", url(server), user={"tokenFile": "tok"}, ca=pki.ca))
    assert c.request("GET", CM) and server.seen[-1].header("Authorization") == ["Bearer good"]


def test_a_rotated_token_file_is_read_again_on_401(server: FakeApiServer, pki: Pki, tmp_path: Path) -> None:
    (tmp_path / "tok").write_text("old")
    c = cluster_for(kubeconfig(tmp_path / "k", url(server), user={"tokenFile": str(tmp_path / "tok")}, ca=pki.ca))
    (tmp_path / "tok").write_text("good")  # rotated after it was read
    assert c.request("GET", CM)
    assert [s.header("Authorization") for s in server.seen] == [["Bearer old"], ["Bearer good"]]


def test_a_refused_token_is_one_line_naming_how_we_authenticated(server: FakeApiServer, pki: Pki,
                                                                  tmp_path: Path) -> None:
    c = cluster_for(kubeconfig(tmp_path / "k", url(server), user={"token": "wrong"}, ca=pki.ca))
    with pytest.raises(ClusterConfigError) as e:
        c.request("GET", CM)
    assert "did not accept your credentials" in str(e.value) and "the token" in str(e.value)
    assert "\n" not in str(e.value) and len(server.seen) == 1


# -- in-cluster credentials ---------------------------------------------------------------------------

def service_account(tmp_path: Path, pki: Pki | None, *, token: str | None = "good", namespace: str | None = "tool-x",
                    ) -> Path:
    """A ServiceAccount directory as the kubelet projects it: token, ca.crt, namespace (None: left out)."""
    d = tmp_path / "serviceaccount"
    d.mkdir(exist_ok=True)
    if token is not None:
        (d / "token").write_text(token)
    if pki is not None:
        (d / "ca.crt").write_bytes(pki.ca.read_bytes())
    if namespace is not None:
        (d / "namespace").write_text(namespace)
    return d


def in_cluster_env(srv: FakeApiServer | None, tmp_path: Path, **extra: str) -> dict[str, str]:
    """No kubeconfig (KUBECONFIG names a file that does not exist) and the kubelet's service variables."""
    env = {"KUBECONFIG": str(tmp_path / "no-such-kubeconfig"), "HOME": str(tmp_path)}
    if srv is not None:
        env.update(KUBERNETES_SERVICE_HOST="127.0.0.1", KUBERNETES_SERVICE_PORT=str(srv.port))
    env.update(extra)
    return env


def in_cluster(env: dict[str, str], sa: Path, context: str | None = None) -> K.KubeCluster:
    creds = load_credentials(env["KUBECONFIG"].split(":"), context, environ=env, sa_dir=str(sa))
    return K.KubeCluster(creds, retry_seconds=0, environ={**os.environ, **env})


def test_in_cluster_credentials_when_no_kubeconfig_is_found(server: FakeApiServer, pki: Pki, tmp_path: Path) -> None:
    sa = service_account(tmp_path, pki)
    c = in_cluster(in_cluster_env(server, tmp_path), sa)
    assert c.creds.in_cluster and c.namespace == "tool-x" and c.creds.server == f"https://127.0.0.1:{server.port}"
    assert c.request("GET", CM)["kind"] == "ConfigMap"
    assert server.seen[-1].header("Authorization") == ["Bearer good"] and server.seen[-1].client_cn is None


def test_pod_namespace_wins_over_the_namespace_file_and_default_is_the_last_resort(
        server: FakeApiServer, pki: Pki, tmp_path: Path) -> None:
    """kubectl's order for the in-cluster namespace: $POD_NAMESPACE, the namespace file, then "default"."""
    sa = service_account(tmp_path, pki)
    assert in_cluster(in_cluster_env(server, tmp_path, POD_NAMESPACE="tool-y"), sa).namespace == "tool-y"
    (sa / "namespace").unlink()
    assert in_cluster(in_cluster_env(server, tmp_path), sa).namespace == "default"


def test_a_kubeconfig_wins_over_in_cluster_credentials(server: FakeApiServer, pki: Pki, tmp_path: Path) -> None:
    sa = service_account(tmp_path, pki, token="not-this-one")
    env = in_cluster_env(server, tmp_path)
    env["KUBECONFIG"] = str(kubeconfig(tmp_path / "k", url(server), user=cert_user(pki), ca=pki.ca))
    c = in_cluster(env, sa)
    assert not c.creds.in_cluster and c.request("GET", CM)
    assert server.seen[-1].client_cn == "tool-x" and not server.seen[-1].header("Authorization")


def test_an_empty_kubeconfig_counts_as_none(server: FakeApiServer, pki: Pki, tmp_path: Path) -> None:
    """kubectl's "empty config" (the file exists but holds nothing) also falls back to in-cluster."""
    (tmp_path / "empty").write_text("")
    env = in_cluster_env(server, tmp_path, KUBECONFIG=str(tmp_path / "empty"))
    assert in_cluster(env, service_account(tmp_path, pki)).creds.in_cluster


def test_a_context_asked_for_is_never_in_cluster(server: FakeApiServer, pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(ClusterConfigError, match="no kubeconfig found"):
        in_cluster(in_cluster_env(server, tmp_path), service_account(tmp_path, pki), context="prod")


def test_a_rotated_service_account_token_is_read_again_before_it_is_refused(
        server: FakeApiServer, pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As client-go's cached file token source: the file is read again once the token in hand is
    TOKEN_FILE_PERIOD old, so the kubelet's replacement is used before the old token expires."""
    sa = service_account(tmp_path, pki, token="good")
    c = in_cluster(in_cluster_env(server, tmp_path), sa)
    assert c.request("GET", CM)
    server.tokens = {"newer"}  # the old token has expired; the kubelet wrote a new one
    (sa / "token.tmp").write_text("newer\n")
    os.replace(sa / "token.tmp", sa / "token")
    assert c.request("GET", CM)  # within the period: the old token, refused, then the file is read again
    assert [s.header("Authorization") for s in server.seen[-2:]] == [["Bearer good"], ["Bearer newer"]]
    server.tokens = {"newest"}
    (sa / "token").write_text("newest")
    monkeypatch.setattr(A, "TOKEN_FILE_PERIOD", 0.0)  # the period has passed: read before sending
    n = len(server.seen)
    assert c.request("GET", CM)
    assert [s.header("Authorization") for s in server.seen[n:]] == [["Bearer newest"]]


def test_a_token_file_that_vanishes_keeps_the_token_in_hand(server: FakeApiServer, pki: Pki, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    sa = service_account(tmp_path, pki)
    c = in_cluster(in_cluster_env(server, tmp_path), sa)
    (sa / "token").unlink()
    monkeypatch.setattr(A, "TOKEN_FILE_PERIOD", 0.0)
    assert c.request("GET", CM) and server.seen[-1].header("Authorization") == ["Bearer good"]


@pytest.mark.parametrize("env,token,says", [
    ({}, None, "no kubeconfig found (tried"),
    ({"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}, None,
     "in-cluster credentials are incomplete: {sa}/token does not exist"),
    ({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, "t", "incomplete: KUBERNETES_SERVICE_PORT is not set"),
    ({}, "t", "incomplete: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set"),
    ({"KUBERNETES_SERVICE_HOST": "kube api", "KUBERNETES_SERVICE_PORT": "443"}, "t",
     "KUBERNETES_SERVICE_HOST='kube api' is not a host name or address"),
    ({"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "https"}, "t",
     "KUBERNETES_SERVICE_PORT='https' is not a port"),
    ({"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "70000"}, "t", "is not a port"),
    ({"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}, "", "{sa}/token is empty"),
], ids=["nothing", "no-token", "no-port", "token-only", "bad-host", "port-name", "port-range", "empty-token"])
def test_in_cluster_credentials_partly_there_are_one_line_naming_what_is_missing(
        tmp_path: Path, env: dict[str, str], token: str | None, says: str) -> None:
    sa = service_account(tmp_path, None, token=token)
    with pytest.raises(ClusterConfigError) as e:
        load_credentials([str(tmp_path / "none")], environ={"HOME": str(tmp_path), **env}, sa_dir=str(sa))
    assert says.format(sa=sa) in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_a_namespace_that_is_not_a_name_is_one_line(tmp_path: Path) -> None:
    sa = service_account(tmp_path, None, namespace="tool-x")
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443", "POD_NAMESPACE": "a/../b"}
    with pytest.raises(ClusterConfigError, match=r"the namespace 'a/\.\./b' \(POD_NAMESPACE\) is not a namespace name"):
        load_credentials([str(tmp_path / "none")], environ=env, sa_dir=str(sa))


def test_an_ipv6_service_host_is_bracketed(tmp_path: Path) -> None:
    sa = service_account(tmp_path, None)
    creds = load_credentials([str(tmp_path / "none")], sa_dir=str(sa),
                             environ={"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"})
    assert creds.server == "https://[fd00::1]:443" and creds.ca_file is None  # no ca.crt: the system's store


def test_an_unreadable_token_file_is_one_line(tmp_path: Path) -> None:
    sa = service_account(tmp_path, None)
    (sa / "token").unlink()
    (sa / "token").mkdir()
    with pytest.raises(ClusterConfigError, match="token is a directory"):
        load_credentials([str(tmp_path / "none")], sa_dir=str(sa),
                         environ={"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"})


def test_without_the_ca_file_the_server_is_checked_against_the_system_store(server: FakeApiServer, pki: Pki,
                                                                           tmp_path: Path) -> None:
    """client-go goes on without a CA it cannot load: the system's trust store, which refuses the fake CA."""
    sa = service_account(tmp_path, None)
    c = in_cluster(in_cluster_env(server, tmp_path, SSL_CERT_FILE=str(tmp_path / "none.pem")), sa)
    with pytest.raises(GridshimError) as e:
        c.request("GET", CM)
    assert "certificate" in str(e.value) and "\n" not in str(e.value)


def test_a_refused_service_account_token_says_so(server: FakeApiServer, pki: Pki, tmp_path: Path) -> None:
    c = in_cluster(in_cluster_env(server, tmp_path), service_account(tmp_path, pki, token="revoked"))
    with pytest.raises(ClusterConfigError) as e:
        c.request("GET", CM)
    assert "the pod's ServiceAccount token" in str(e.value) and "\n" not in str(e.value)


# -- exec plugins ------------------------------------------------------------------------------------

def plugin(tmp_path: Path, body: str, name: str = "kube-login") -> Path:
    """A plugin script: BODY is Python with `info` (KUBERNETES_EXEC_INFO), `runs` (this run's number,
    also counted in NAME.runs) and `emit(status, version=...)` in scope."""
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent('''\
        import json, os, sys
        info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
        counter = __file__ + ".runs"
        runs = int(open(counter).read()) + 1 if os.path.exists(counter) else 1
        open(counter, "w").write(str(runs))
        with open(__file__ + ".seen", "a") as f:
            f.write(json.dumps({"info": info, "argv": sys.argv[1:], "env": {k: v for k, v in os.environ.items()
                                if k.startswith("PLUGIN_")}, "stdin_tty": os.isatty(0)}) + "\\n")
        def emit(status, version=None):
            print(json.dumps({"kind": "ExecCredential", "apiVersion": version or info["apiVersion"],
                              "status": status}))
        ''') + textwrap.dedent(body))
    path.chmod(0o755)
    return path


def runs(p: Path) -> int:
    counter = Path(str(p) + ".runs")
    return int(counter.read_text()) if counter.exists() else 0


def seen(p: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(str(p) + ".seen").read_text().splitlines()]


def exec_user(p: Path, version: str = "client.authentication.k8s.io/v1", **extra: Any) -> dict[str, Any]:
    spec = {"apiVersion": version, "command": str(p), "interactiveMode": "Never", **extra}
    return {"exec": spec}


def in_an_hour() -> str:
    return (datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_exec_plugin_token_v1_with_args_env_and_cluster_info(server: FakeApiServer, pki: Pki, tmp_path: Path) -> None:
    p = plugin(tmp_path, 'emit({"token": "good", "expirationTimestamp": "%s"})' % in_an_hour())
    user = exec_user(p, args=["--flag", "x y"], env=[{"name": "PLUGIN_A", "value": "1"}], provideClusterInfo=True)
    cfg = kubeconfig(tmp_path / "k", url(server), user=user, ca=pki.ca,
                     cluster={"tls-server-name": "localhost", "extensions": [
                         {"name": "client.authentication.k8s.io/exec", "extension": {"audience": "a"}}]})
    c = cluster_for(cfg)
    assert c.request("GET", CM) and c.request("GET", CM)
    assert server.seen[-1].header("Authorization") == ["Bearer good"] and runs(p) == 1  # cached until it expires
    one = seen(p)[0]
    assert one["argv"] == ["--flag", "x y"] and one["env"] == {"PLUGIN_A": "1"} and one["stdin_tty"] is False
    assert one["info"]["apiVersion"] == "client.authentication.k8s.io/v1" and one["info"]["kind"] == "ExecCredential"
    cl = one["info"]["spec"]["cluster"]
    assert one["info"]["spec"]["interactive"] is False and cl["server"] == url(server)
    assert cl["tls-server-name"] == "localhost" and cl["config"] == {"audience": "a"}
    assert base64.b64decode(cl["certificate-authority-data"]) == pki.ca.read_bytes()


def test_exec_plugin_client_certificate_v1beta1_key_only_in_memory(server: FakeApiServer, pki: Pki,
                                                                     tmp_path: Path) -> None:
    body = f'emit({{"clientCertificateData": open({str(pki.client_cert)!r}).read(), ' \
           f'"clientKeyData": open({str(pki.client_key)!r}).read()}})'
    p = plugin(tmp_path, body)
    spec = {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": str(p)}  # interactiveMode defaults
    c = cluster_for(kubeconfig(tmp_path / "k", url(server), user={"exec": spec}, ca=pki.ca))
    assert c.request("GET", CM) and server.seen[-1].client_cn == "tool-x"
    assert "cluster" not in seen(p)[0]["info"]["spec"]  # provideClusterInfo not set
    cert, key = c.auth.client_cert()  # type: ignore[misc]
    assert cert.startswith("/proc/self/fd/") and key and key.startswith("/proc/self/fd/")


def test_an_expired_credential_runs_the_plugin_again(server: FakeApiServer, pki: Pki, tmp_path: Path) -> None:
    p = plugin(tmp_path, 'emit({"token": "good", "expirationTimestamp": "2000-01-01T00:00:00Z"})')
    c = cluster_for(kubeconfig(tmp_path / "k", url(server), user=exec_user(p), ca=pki.ca))
    c.request("GET", CM)
    c.request("GET", CM)
    assert runs(p) == 2


def test_a_credential_without_expiry_is_kept_for_the_process_and_shared(server: FakeApiServer, pki: Pki,
                                                                         tmp_path: Path) -> None:
    p = plugin(tmp_path, 'emit({"token": "good"})')
    cfg = kubeconfig(tmp_path / "k", url(server), user=exec_user(p), ca=pki.ca)
    cluster_for(cfg).request("GET", CM)
    cluster_for(cfg).request("GET", CM)  # another client of the same user in this process
    assert runs(p) == 1


def test_a_401_runs_the_plugin_once_more_and_retries(server: FakeApiServer, pki: Pki, tmp_path: Path) -> None:
    p = plugin(tmp_path, 'emit({"token": "stale" if runs == 1 else "good"})')
    c = cluster_for(kubeconfig(tmp_path / "k", url(server), user=exec_user(p), ca=pki.ca))
    assert c.request("POST", "/api/v1/namespaces/tool-x/configmaps", {"kind": "ConfigMap"}) is not None
    assert runs(p) == 2 and [s.header("Authorization")[0] for s in server.seen] == ["Bearer stale", "Bearer good"]


def test_a_plugin_whose_token_is_refused_is_run_only_twice(server: FakeApiServer, pki: Pki, tmp_path: Path) -> None:
    p = plugin(tmp_path, 'emit({"token": "nope-%d" % runs})')
    c = cluster_for(kubeconfig(tmp_path / "k", url(server), user=exec_user(p), ca=pki.ca))
    with pytest.raises(ClusterConfigError) as e:
        c.request("GET", CM)
    assert runs(p) == 2 and len(server.seen) == 2 and "exec plugin kube-login" in str(e.value)


@pytest.mark.parametrize("body,expect", [
    ("sys.exit(3)", "failed (exit status 3)"),
    ("import time; time.sleep(30)", "did not answer within 0.5 s"),
    ("print('hello, I am not JSON')", "printed no usable credential (not JSON)"),
    ("print('[]')", "not an ExecCredential"),
    ('emit({"token": "good"}, version="client.authentication.k8s.io/v1beta1")', "apiVersion"),
    ('emit({})', "neither a token nor a client certificate"),
    ('emit({"clientCertificateData": "x"})', "must come together"),
    ('emit({"token": "good", "expirationTimestamp": "tomorrow"})', "RFC 3339"),
    ('print(json.dumps({"kind": "ExecCredential", "apiVersion": info["apiVersion"]}))', "no status"),
])
def test_a_broken_plugin_is_one_line_naming_it_and_nothing_is_sent(server: FakeApiServer, pki: Pki, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch, body: str,
                                                                   expect: str) -> None:
    monkeypatch.setenv("GRIDSHIM_EXEC_TIMEOUT", "0.5")
    p = plugin(tmp_path, body)
    c = cluster_for(kubeconfig(tmp_path / "k", url(server), user=exec_user(p), ca=pki.ca))
    with pytest.raises(ClusterConfigError) as e:
        c.request("GET", CM)
    text = str(e.value)
    assert "the exec plugin kube-login (user 'u' in" in text and expect in text and "\n" not in text, text
    assert server.seen == []  # never an anonymous request


def test_a_missing_plugin_shows_its_install_hint(server: FakeApiServer, pki: Pki, tmp_path: Path) -> None:
    user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "gke-gcloud-auth-plugin-nope",
                     "interactiveMode": "Never", "installHint": "Install it with\ngcloud components install x"}}
    c = cluster_for(kubeconfig(tmp_path / "k", url(server), user=user, ca=pki.ca))
    with pytest.raises(ClusterConfigError) as e:
        c.request("GET", CM)
    assert "was not found" in str(e.value) and "Install it with gcloud components install x" in str(e.value)


def test_a_relative_plugin_command_with_a_slash_is_relative_to_its_kubeconfig(tmp_path: Path) -> None:
    user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "./bin/p", "interactiveMode": "Never"}}
    creds = load_credentials([str(kubeconfig(tmp_path / "d" / "k", "https://h", user=user))])
    assert creds.exec_spec["command"] == str(tmp_path / "d" / "./bin/p")
    user["exec"]["command"] = "on-path"
    assert load_credentials([str(kubeconfig(tmp_path / "k", "https://h", user=user))]).exec_spec["command"] == "on-path"


@pytest.mark.parametrize("spec,expect", [
    ({"apiVersion": "client.authentication.k8s.io/v1", "command": "p"}, "interactiveMode must be specified"),
    ({"apiVersion": "client.authentication.k8s.io/v1alpha1", "command": "p"}, "v1alpha1 was removed"),
    ({"apiVersion": "client.authentication.k8s.io/v1", "command": "p", "interactiveMode": "Sometimes"}, "Sometimes"),
    ({"apiVersion": "client.authentication.k8s.io/v1", "interactiveMode": "Never"}, "no command"),
])
def test_malformed_exec_entries_are_refused_before_running_anything(tmp_path: Path, spec: dict[str, Any],
                                                                    expect: str) -> None:
    with pytest.raises(ClusterConfigError, match=expect):
        load_credentials([str(kubeconfig(tmp_path / "k", "https://h", user={"exec": spec}))])


def test_interactive_modes(server: FakeApiServer, pki: Pki, tmp_path: Path) -> None:
    p = plugin(tmp_path, 'emit({"token": "good"})')
    creds = lambda mode: load_credentials([str(kubeconfig(tmp_path / mode, url(server), ca=pki.ca,  # noqa: E731
                                                          user=exec_user(p, interactiveMode=mode)))])
    with pytest.raises(ClusterConfigError, match="needs a terminal .interactiveMode: Always. but standard input"):
        A.run_exec(creds("Always"), stdin=open(os.devnull))
    leader, follower = pty.openpty()
    try:
        with open(follower, closefd=False) as tty:
            A.run_exec(creds("Always"), stdin=tty)
            A.run_exec(creds("IfAvailable"), stdin=tty)
            A.run_exec(creds("Never"), stdin=tty)
        A.run_exec(creds("IfAvailable"), stdin=open(os.devnull))
    finally:
        os.close(leader)
        os.close(follower)
    got = [(s["info"]["spec"]["interactive"], s["stdin_tty"]) for s in seen(p)]
    assert got == [(True, True), (True, True), (False, False), (False, False)]


# -- proxies -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("host,port,no_proxy,proxied", [
    ("api.example.com", 6443, "", True),
    ("localhost", 6443, "", False),  # Go never proxies localhost or loopback addresses
    ("127.0.0.1", 6443, "", False),
    ("::1", 6443, "", False),
    ("api.example.com", 6443, "*", False),
    ("api.example.com", 6443, "example.com", False),
    ("example.com", 6443, "example.com", False),
    ("example.com", 6443, ".example.com", True),  # a leading dot matches subdomains only
    ("api.example.com", 6443, ".example.com", False),
    ("api.example.com", 6443, "*.example.com", False),
    ("api.example.com", 6443, "example.com:443", True),  # the port must match
    ("api.example.com", 6443, "example.com:6443", False),
    ("10.1.2.3", 6443, "10.0.0.0/8", False),
    ("10.1.2.3", 6443, "192.168.0.0/16, 10.1.2.3:1", True),
    ("10.1.2.3", 6443, "10.1.2.3", False),
    ("10.1.2.3", 6443, " foo.com , 10.1.2.3:6443 ", False),
    ("2001:db8::1", 6443, "2001:db8::/32", False),
    ("2001:db8::1", 6443, "[2001:db8::1]:6443", False),
    ("api.example.com", 6443, "10.0.0.0/8", True),  # a CIDR matches addresses only, never names
    ("API.Example.COM", 6443, "example.com", False),
])
def test_no_proxy_follows_go(host: str, port: int, no_proxy: str, proxied: bool) -> None:
    env = {"HTTPS_PROXY": "proxy.corp:3128", "NO_PROXY": no_proxy}
    assert (T.proxy_for(host, port, env) == "http://proxy.corp:3128") is proxied


def test_proxy_variables_upper_case_first_and_lower_case_too() -> None:
    assert T.proxy_for("h.example", 443, {"HTTPS_PROXY": "http://a:1", "https_proxy": "http://b:1"}) == "http://a:1"
    assert T.proxy_for("h.example", 443, {"https_proxy": "http://b:1", "no_proxy": "h.example"}) is None
    assert T.proxy_for("h.example", 443, {"HTTP_PROXY": "http://c:1"}) is None  # https only reads HTTPS_PROXY


def test_proxy_url_tunnels_to_the_server(server: FakeApiServer, pki: Pki, tmp_path: Path) -> None:
    proxy = ConnectProxy(resolve={"api.corp.example": "127.0.0.1"})
    try:
        cfg = kubeconfig(tmp_path / "k", url(server, "api.corp.example"), user=cert_user(pki), ca=pki.ca,
                         cluster={"proxy-url": proxy.url, "tls-server-name": "localhost"})
        c = cluster_for(cfg, {"HTTPS_PROXY": "http://127.0.0.1:1", "NO_PROXY": "api.corp.example"})  # proxy-url wins
        assert c.request("GET", CM) and c.request("GET", CM)
        assert proxy.tunnels == [f"api.corp.example:{server.port}"]  # one tunnel, kept alive
    finally:
        proxy.close()


def test_https_proxy_tunnels_unless_no_proxy(server: FakeApiServer, pki: Pki, tmp_path: Path) -> None:
    proxy = ConnectProxy(resolve={"api.corp.example": "127.0.0.1"})
    try:
        cfg = kubeconfig(tmp_path / "k", url(server, "api.corp.example"), user=cert_user(pki), ca=pki.ca,
                         cluster={"tls-server-name": "localhost"})
        assert cluster_for(cfg, {"HTTPS_PROXY": proxy.url}).request("GET", CM)
        assert proxy.tunnels == [f"api.corp.example:{server.port}"]
        direct = kubeconfig(tmp_path / "k2", url(server), user=cert_user(pki), ca=pki.ca)
        assert cluster_for(direct, {"HTTPS_PROXY": proxy.url}).request("GET", CM)  # loopback: never proxied
        assert cluster_for(cfg.parent / "k2", {"https_proxy": proxy.url, "NO_PROXY": "127.0.0.0/8"}).request("GET", CM)
        assert len(proxy.tunnels) == 1
    finally:
        proxy.close()


def test_a_proxy_that_is_down_is_named(pki: Pki, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    cfg = kubeconfig(tmp_path / "k", "https://api.corp.example:6443", user=cert_user(pki), ca=pki.ca)
    with pytest.raises(ClusterError) as e:
        cluster_for(cfg, {"HTTPS_PROXY": dead}).request("GET", CM)
    text = str(e.value)
    assert f"through the proxy {dead}: Connection refused" in text and "HTTPS_PROXY" in text and "\n" not in text


def test_a_proxy_that_refuses_the_tunnel_is_named_at_once(pki: Pki, tmp_path: Path) -> None:
    proxy = ConnectProxy(refuse=403)
    try:
        cfg = kubeconfig(tmp_path / "k", "https://api.corp.example:6443", user=cert_user(pki), ca=pki.ca,
                         cluster={"proxy-url": proxy.url})
        with pytest.raises(ClusterConfigError) as e:
            cluster_for(cfg, budget=5).request("GET", CM)
        assert f"the proxy {proxy.url} refused the tunnel to api.corp.example:6443: HTTP/1.1 403" in str(e.value)
        assert len(proxy.tunnels) == 1  # an answer, not a fault: not retried
    finally:
        proxy.close()


@pytest.mark.parametrize("proxy,expect", [("socks5://127.0.0.1:1080", "SOCKS proxy"),
                                          ("https://proxy:443", "https:// proxy"), ("ftp://x", "not an http://")])
def test_proxies_gridshim_does_not_speak_are_refused_clearly(pki: Pki, tmp_path: Path, proxy: str,
                                                             expect: str) -> None:
    cfg = kubeconfig(tmp_path / "k", "https://api.corp.example:6443", user=cert_user(pki), ca=pki.ca,
                     cluster={"proxy-url": proxy})
    with pytest.raises(ClusterConfigError, match=expect):
        cluster_for(cfg).request("GET", CM)


def test_proxy_credentials_come_from_its_url() -> None:
    p = T.Proxy("http://me:s%40cret@127.0.0.1:3128", "x")
    assert p.auth == "Basic " + base64.b64encode(b"me:s@cret").decode() and p.shown == "http://127.0.0.1:3128"


# -- tls-server-name, impersonation, warnings, strict writes ------------------------------------------

def test_tls_server_name_is_sni_and_verification(pki: Pki, tmp_path: Path) -> None:
    only_name = Pki.make(tmp_path / "pki2", sans=("api.internal.example",))
    srv = FakeApiServer(only_name, users={"tool-x"})
    try:
        user = {"client-certificate": str(only_name.client_cert), "client-key": str(only_name.client_key)}
        plain = kubeconfig(tmp_path / "k1", url(srv), user=user, ca=only_name.ca)
        with pytest.raises(ClusterConfigError) as e:
            cluster_for(plain).request("GET", CM)
        assert "set tls-server-name" in str(e.value)
        named = kubeconfig(tmp_path / "k2", url(srv), user=user, ca=only_name.ca,
                           cluster={"tls-server-name": "api.internal.example"})
        assert cluster_for(named).request("GET", CM) and srv.seen[-1].sni == "api.internal.example"
        assert srv.seen[-1].header("Host") == [f"127.0.0.1:{srv.port}"]
        wrong = kubeconfig(tmp_path / "k3", url(srv), user=user, ca=only_name.ca, cluster={"tls-server-name": "x.example"})
        with pytest.raises(ClusterConfigError, match="is not for 'x.example'"):
            cluster_for(wrong).request("GET", CM)
    finally:
        srv.close()


def test_impersonation_headers_as_kubectl_sends_them(server: FakeApiServer, pki: Pki, tmp_path: Path) -> None:
    user = {**cert_user(pki), "as": "tools.other", "as-uid": "1234", "as-groups": ["toolforge", "admins"],
            "as-user-extra": {"scopes": ["view", "edit"], "example.com/Key w%": ["v"]}}
    c = cluster_for(kubeconfig(tmp_path / "k", url(server), user=user, ca=pki.ca))
    c.request("GET", CM)
    got = [(k, v) for k, v in server.seen[-1].headers if k.lower().startswith("impersonate-")]
    assert got[:4] == [("Impersonate-User", "tools.other"), ("Impersonate-Uid", "1234"),
                       ("Impersonate-Group", "toolforge"), ("Impersonate-Group", "admins")]
    assert sorted(got[4:]) == [("Impersonate-Extra-example.com%2FKey%20w%25", "v"),  # client-go's headerKeyEscape
                               ("Impersonate-Extra-scopes", "edit"), ("Impersonate-Extra-scopes", "view")]
    assert [v for k, v in got if k == "Impersonate-Extra-scopes"] == ["view", "edit"]  # values keep their order


def test_a_refused_impersonation_names_the_as_entry(server: FakeApiServer, pki: Pki, tmp_path: Path) -> None:
    server.routes[("GET", CM)] = (403, {"kind": "Status", "code": 403, "reason": "Forbidden", "message":
                                        'users "root" is forbidden: User "tool-x" cannot impersonate resource "users"'}, {})
    c = cluster_for(kubeconfig(tmp_path / "k", url(server), user={**cert_user(pki), "as": "root"}, ca=pki.ca),
                    budget=30)
    with pytest.raises(GridshimError) as e:
        c.request("GET", CM)
    assert len(server.seen) == 1  # final at once, not taken for a server that is still starting
    assert "impersonates 'root' (as:)" in str(e.value) and "\n" not in str(e.value)


def test_groups_without_a_user_to_impersonate_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ClusterConfigError, match="without as"):
        load_credentials([str(kubeconfig(tmp_path / "k", "https://h", user={"token": "t", "as-groups": ["g"]}))])


def test_warning_headers_go_to_stderr_once_each(server: FakeApiServer, pki: Pki, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    server.routes[("GET", CM)] = (200, {"kind": "ConfigMap"}, {"Warning": [
        '299 - "batch/v1beta1 CronJob is deprecated"', '299 - "a \\"quoted\\" word"', '199 - "not shown"']})
    c = cluster_for(kubeconfig(tmp_path / "k", url(server), user=cert_user(pki), ca=pki.ca))
    c.request("GET", CM)
    c.request("GET", CM)
    assert capsys.readouterr().err == 'Warning: batch/v1beta1 CronJob is deprecated\nWarning: a "quoted" word\n'


def test_writes_ask_for_strict_field_validation(server: FakeApiServer, pki: Pki, tmp_path: Path) -> None:
    c = cluster_for(kubeconfig(tmp_path / "k", url(server), user=cert_user(pki), ca=pki.ca))
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
    c.create(cm)
    c.replace({**cm, "metadata": {"name": "x", "resourceVersion": "1"}})
    c.patch("ConfigMap", "x", {"data": {}})
    c.request("POST", c.path("Job", params={"dryRun": "All"}), {"kind": "Job"})
    c.get("ConfigMap", "x")
    c.delete("ConfigMap", "x")
    paths = [(s.method, s.path) for s in server.seen]
    assert [p for m, p in paths if m in ("POST", "PUT", "PATCH")] == [
        "/api/v1/namespaces/tool-x/configmaps?fieldValidation=Strict",
        "/api/v1/namespaces/tool-x/configmaps/x?fieldValidation=Strict",
        "/api/v1/namespaces/tool-x/configmaps/x?fieldValidation=Strict",
        "/apis/batch/v1/namespaces/tool-x/jobs?dryRun=All&fieldValidation=Strict"]
    assert [p for m, p in paths if m in ("GET", "DELETE")] == [CM, CM]


def test_a_put_that_meets_a_conflict_is_a_conflict_error(server: FakeApiServer, pki: Pki, tmp_path: Path) -> None:
    from gridshim.errors import ConflictError

    server.routes[("PUT", CM)] = (409, {"kind": "Status", "code": 409, "reason": "Conflict",
                                        "message": "the object has been modified"}, {})
    c = cluster_for(kubeconfig(tmp_path / "k", url(server), user=cert_user(pki), ca=pki.ca), budget=5)
    with pytest.raises(ConflictError):
        c.replace({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "resourceVersion": "1"}})


def test_a_strict_refusal_is_the_servers_one_line(server: FakeApiServer, pki: Pki, tmp_path: Path) -> None:
    server.routes[("POST", "/api/v1/namespaces/tool-x/configmaps")] = (400, {
        "kind": "Status", "code": 400, "reason": "BadRequest",
        "message": 'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: unknown field '
                   '"spec"'}, {})
    c = cluster_for(kubeconfig(tmp_path / "k", url(server), user=cert_user(pki), ca=pki.ca))
    with pytest.raises(ClusterError, match='unknown field "spec"'):
        c.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "spec": {}})


# -- discovery -----------------------------------------------------------------------------------------

def test_discovery_is_cached_and_a_server_without_cronjobs_stops_crontab_before_it_stores(
        server: FakeApiServer, pki: Pki, tmp_path: Path) -> None:
    server.routes[("GET", "/apis/batch/v1")] = (200, {"kind": "APIResourceList", "groupVersion": "batch/v1",
                                                      "resources": [{"name": "jobs"}, {"name": "jobs/status"}]}, {})
    cfg = kubeconfig(tmp_path / "k", url(server), user=cert_user(pki), ca=pki.ca)
    c = cluster_for(cfg)
    assert c.missing_apis() == [("batch/v1", "cronjobs", "crontab")]
    assert c.missing_apis() and len(server.seen) == 1  # cached in the process
    K._DISCOVERY.clear()
    assert cluster_for(cfg).missing_apis() and len(server.seen) == 1  # and in the cache directory
    with pytest.raises(GridshimError) as e:
        cron_ops.install(c, text=b"* * * * * true\n", rendered=[], now=0.0)
    assert "does not serve batch/v1 CronJobs" in str(e.value) and "nothing was stored" in str(e.value)
    assert [s.method for s in server.seen] == ["GET"]  # no ConfigMap read or written


def test_a_server_without_the_batch_group_at_all(server: FakeApiServer, pki: Pki, tmp_path: Path) -> None:
    server.routes[("GET", "/apis/batch/v1")] = (404, {"kind": "Status", "code": 404, "reason": "NotFound"}, {})
    c = cluster_for(kubeconfig(tmp_path / "k", url(server), user=cert_user(pki), ca=pki.ca))
    assert [r for _, r, _ in c.missing_apis()] == ["jobs", "cronjobs"]


def test_a_full_server_misses_nothing(server: FakeApiServer, pki: Pki, tmp_path: Path) -> None:
    server.routes[("GET", "/apis/batch/v1")] = (200, {"resources": [{"name": "jobs"}, {"name": "cronjobs"}]}, {})
    assert cluster_for(kubeconfig(tmp_path / "k", url(server), user=cert_user(pki), ca=pki.ca)).missing_apis() == []


# -- the fast path -----------------------------------------------------------------------------------

# What a plain client-certificate request imported before the split, beyond the modules the script loads
# first (measured with the single-module cluster.py of 5f123af): typing, __future__, and the IDNA codec a
# connection by host name uses.
FAST_PATH_EXTRA = {"__future__", "_sha256", "_sha2", "typing", "typing.io", "typing.re", "_typing", "encodings.idna", "stringprep",
                   "unicodedata"}

def test_a_client_certificate_request_imports_nothing_new(server: FakeApiServer, pki: Pki, tmp_path: Path) -> None:
    """Exec plugins, proxies and discovery cost their users only: a plain request pulls in none of it."""
    cfg = kubeconfig(tmp_path / "k", url(server), user=cert_user(pki), ca=pki.ca)
    code = ("import sys, ssl, http.client, json, yaml, email.utils, urllib.parse, hashlib, socket, random, gc, re\n"
            "import base64, dataclasses, pathlib, stat\n"
            "before = set(sys.modules)\n"
            "from gridshim.cluster import KubeCluster\n"
            f"c = KubeCluster.from_kubeconfig({str(cfg)!r}); c.request('GET', {CM!r})\n"
            "print(' '.join(sorted(set(sys.modules) - before)))")
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    loaded = set(out.split())
    assert "gridshim.kube.transport" in loaded
    # what the old single-module client also imported beyond its stdlib: nothing but gridshim's own modules
    assert {m for m in loaded if not m.startswith("gridshim")} <= FAST_PATH_EXTRA, loaded - FAST_PATH_EXTRA
