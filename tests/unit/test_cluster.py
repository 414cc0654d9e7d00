"""The API adapter's pure parts: kubeconfig resolution and the HTTP error mapping (no network)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import yaml

from gridshim import errors as E
from gridshim.cluster import KubeCluster, kubeconfig_paths, load_credentials


def write_kubeconfig(path: Path, *, namespace: str | None = "tool-demo", **user: str) -> Path:
    ctx = {"cluster": "c", "user": "u"}
    if namespace:
        ctx["namespace"] = namespace
    cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "toolforge",
           "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443",
                                                  "certificate-authority-data": base64.b64encode(b"CA").decode()}}],
           "users": [{"name": "u", "user": user or {"client-certificate": "../.toolskube/client.crt",
                                                    "client-key": "../.toolskube/client.key"}}],
           "contexts": [{"name": "toolforge", "context": ctx}]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_relative_cert_paths_resolve_against_the_kubeconfig(tmp_path: Path) -> None:
    p = write_kubeconfig(tmp_path / "home/.kube/config")
    c = load_credentials([str(p)])
    assert c.cert_file == str(tmp_path / "home/.kube/../.toolskube/client.crt")
    assert c.namespace == "tool-demo" and c.ca_data == "CA" and c.server == "https://127.0.0.1:6443"
    assert KubeCluster(c).tool == "demo"


def test_default_path_and_kubeconfig_list() -> None:
    assert kubeconfig_paths({"HOME": "/h"}) == ["/h/.kube/config"]
    assert kubeconfig_paths({"KUBECONFIG": "/a:/b", "HOME": "/h"}) == ["/a", "/b"]


def test_missing_kubeconfig_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(E.ClusterConfigError) as e:
        load_credentials([str(tmp_path / "nope")])
    assert str(tmp_path / "nope") in str(e.value) and "become" in str(e.value)


def test_no_namespace_is_an_error_with_the_fix(tmp_path: Path) -> None:
    p = write_kubeconfig(tmp_path / "k", namespace=None)
    with pytest.raises(E.ClusterConfigError) as e:
        KubeCluster(load_credentials([str(p)]))
    assert str(p) in str(e.value) and "set-context --current --namespace" in str(e.value)


def test_a_malformed_exec_entry_is_refused_clearly(tmp_path: Path) -> None:
    p = write_kubeconfig(tmp_path / "k", exec="x")  # type: ignore[arg-type]
    with pytest.raises(E.ClusterConfigError, match="user 'u' exec plugin: exec is not a mapping"):
        load_credentials([str(p)])


@pytest.mark.parametrize("name,fix", [("gcp", "gke-gcloud-auth-plugin"), ("azure", "kubelogin"),
                                      ("oidc", "kubelogin"), ("other", "exec credential plugin")])
def test_auth_providers_are_refused_naming_the_exec_replacement(tmp_path: Path, name: str, fix: str) -> None:
    p = write_kubeconfig(tmp_path / "k", **{"auth-provider": {"name": name, "config": {}}})  # type: ignore[arg-type]
    with pytest.raises(E.ClusterConfigError) as e:
        load_credentials([str(p)])
    assert f"auth-provider {name!r}" in str(e.value) and fix in str(e.value) and "\n" not in str(e.value)


def test_broken_yaml(tmp_path: Path) -> None:
    (tmp_path / "k").write_text("{{{")
    with pytest.raises(E.ClusterConfigError, match="not valid YAML"):
        load_credentials([str(tmp_path / "k")])


@pytest.mark.parametrize("status,body,cls", [
    (403, {"reason": "Forbidden", "message": 'jobs.batch "x" is forbidden: exceeded quota: q, requested: '
                                             "count/jobs.batch=1, used: count/jobs.batch=15, limited: count/jobs.batch=15"},
     E.QuotaExceededError),
    (403, {"reason": "Forbidden", "message": 'jobs.batch is forbidden: User "other" cannot list'}, E.ForbiddenError),
    (404, {"reason": "NotFound", "message": "not found"}, E.JobNotFoundError),
    (409, {"reason": "AlreadyExists", "message": "exists"}, E.JobExistsError),
    (409, {"reason": "Conflict", "message": "modified"}, E.ConflictError),
    (422, {"reason": "Invalid", "message": "bad"}, E.ClusterError),
    (401, {"reason": "Unauthorized", "message": "Unauthorized"}, E.ClusterConfigError),
    (500, {"message": "boom"}, E.ClusterError),
])
def test_error_mapping(tmp_path: Path, status: int, body: dict, cls: type) -> None:
    c = KubeCluster(load_credentials([str(write_kubeconfig(tmp_path / "k"))]))
    err = c.error_for(status, json.dumps(body).encode(), "GET", "/x")
    assert type(err) is cls
    assert str(tmp_path / "k") in str(err) or status not in (401, 403) or cls is E.QuotaExceededError


def test_quota_message_in_qsubs_words() -> None:
    from gridshim.ops import quota_message

    e = E.QuotaExceededError('jobs.batch "x" is forbidden: exceeded quota: tool-demo, requested: count/jobs.batch=1, '
                             "used: count/jobs.batch=15, limited: count/jobs.batch=15")
    m = quota_message(e)
    assert m.message == ("Unable to run job: job rejected: only 15 jobs are allowed per user (current job count: 15)"
                         "\nExiting.")
    assert m.exit_code == 25


def test_a_server_certificate_outside_its_validity_names_the_clock(tmp_path: Path) -> None:
    """A client clock a year off sees the API server's certificate as expired (or not yet valid): the
    one line says to check this machine's clock, not the CA (a real TLS server on loopback)."""
    import datetime as dt
    import socket
    import ssl
    import sys
    import threading

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from sandbox import pki

    ca = pki.ensure_ca(tmp_path / "pki")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    cert, key = pki.issue(ca, cn="127.0.0.1", server=True, not_before=past, not_after=past + dt.timedelta(days=30))
    (tmp_path / "srv.crt").write_bytes(cert)
    (tmp_path / "srv.key").write_bytes(key)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "srv.crt", tmp_path / "srv.key")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    port = sock.getsockname()[1]

    def serve() -> None:
        for _ in range(4):
            try:
                conn, _ = sock.accept()
                ctx.wrap_socket(conn, server_side=True).close()
            except OSError:
                pass

    threading.Thread(target=serve, daemon=True).start()
    kc = tmp_path / "config"
    ca_pem = (tmp_path / "pki" / "ca.crt").read_text()
    kc.write_text(f"""apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {{server: "https://127.0.0.1:{port}", certificate-authority-data: "{base64.b64encode(ca_pem.encode()).decode()}"}}
users:
- name: u
  user: {{token: abc}}
contexts:
- name: x
  context: {{cluster: c, user: u, namespace: tool-demo}}
current-context: x
""")
    cluster = KubeCluster.from_kubeconfig(environ={"KUBECONFIG": str(kc), "GRIDSHIM_RETRY_SECONDS": "0"})
    with pytest.raises(E.ClusterConfigError) as err:
        cluster.list("Job")
    assert "certificate has expired" in str(err.value) and "check this machine's clock" in str(err.value)
    sock.close()
