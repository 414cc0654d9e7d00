"""Tool tenancy in the sandbox, shaped like Toolforge's maintain-kubeusers.

For a tool NAME: namespace `tool-NAME` (PodSecurity `restricted` enforced), a RoleBinding that lets
user NAME (client cert CN=NAME, O=toolforge) manage its jobs and nothing else, a ResourceQuota and a
LimitRange, a home directory owned by the tool's uid, and `$HOME/.kube/config` with the client cert
in `$HOME/.toolskube/` (relative paths, mode 0600/0400, as Toolforge writes them).
"""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path
from typing import Any

import yaml

from sandbox import pki

TOOL_CLUSTERROLE = "gridshim-tool"

# Toolforge's per-namespace defaults (maintain-kubeusers), used unless a caller passes its own.
TOOLFORGE_QUOTA: dict[str, str] = {
    "requests.cpu": "2",
    "requests.memory": "6Gi",
    "limits.cpu": "2",
    "limits.memory": "8Gi",
    "pods": "10",
    "services": "1",
    "services.nodeports": "0",
    "replicationcontrollers": "1",
    "secrets": "10",
    "configmaps": "10",
    "persistentvolumeclaims": "3",
    "count/cronjobs.batch": "50",
    "count/jobs.batch": "15",
    "count/deployments.apps": "3",
}
TOOLFORGE_LIMITS: dict[str, Any] = {
    "default": {"cpu": "500m", "memory": "512Mi"},
    "defaultRequest": {"cpu": "150m", "memory": "256Mi"},
    "max": {"cpu": "1", "memory": "4Gi"},
    "min": {"cpu": "50m", "memory": "100Mi"},
}
# What a tool may do in its own namespace: its workloads, their pods and logs, its crontab store,
# and read its quota. Nothing cluster-wide, nothing in other namespaces.
TOOL_RULES: list[dict[str, Any]] = [
    {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": ["*"]},
    {"apiGroups": ["apps"], "resources": ["deployments", "replicasets"], "verbs": ["*"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "create", "delete", "deletecollection"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["*"]},
    {"apiGroups": [""], "resources": ["events", "resourcequotas", "limitranges"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["get", "list", "watch"]},
]


def kubeconfig_dict(*, server: str, ca_pem: bytes, cert: str, key: str, user: str, namespace: str,
                    context: str = "toolforge", inline: bool = False) -> dict[str, Any]:
    """A kubeconfig; CERT/KEY are file paths, or PEM text when INLINE."""
    if inline:
        creds = {"client-certificate-data": base64.b64encode(cert.encode()).decode(),
                 "client-key-data": base64.b64encode(key.encode()).decode()}
    else:
        creds = {"client-certificate": cert, "client-key": key}
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "sandbox", "cluster": {
            "server": server, "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
        "users": [{"name": user, "user": creds}],
        "contexts": [{"name": context, "context": {"cluster": "sandbox", "user": user, "namespace": namespace}}],
        "current-context": context,
    }


def apply(api: Any, obj: dict[str, Any]) -> None:
    """Server-side apply through the dynamic client (idempotent)."""
    from kubernetes.dynamic import DynamicClient  # noqa: PLC0415  (heavy import, only when needed)

    client = DynamicClient(api) if not hasattr(api, "resources") else api
    res = client.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    client.server_side_apply(res, body=obj, namespace=obj["metadata"].get("namespace"),
                             field_manager="gridshim-sandbox", force_conflicts=True)


def ensure_clusterrole(dyn: Any) -> None:
    apply(dyn, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": TOOL_CLUSTERROLE}, "rules": TOOL_RULES})


def ensure_tool(
    dyn: Any,
    *,
    state: Path,
    server: str,
    name: str,
    uid: int,
    quota: dict[str, str] | None = None,
    limits: dict[str, Any] | None = None,
    home_root: Path,
) -> Path:
    """Create tool NAME's namespace, RBAC, quota, home and kubeconfig. Returns the home directory."""
    ns = f"tool-{name}"
    apply(dyn, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {
        "name": ns, "tenancy": "tool",
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/warn": "restricted",
    }}})
    apply(dyn, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": name, "namespace": ns},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": TOOL_CLUSTERROLE},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name}]})
    apply(dyn, {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": ns, "namespace": ns},
                "spec": {"hard": dict(TOOLFORGE_QUOTA if quota is None else quota)}})
    apply(dyn, {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": ns, "namespace": ns},
                "spec": {"limits": [{"type": "Container", **(TOOLFORGE_LIMITS if limits is None else limits)}]}})

    pkidir = state / "pki"
    ca = pki.ensure_ca(pkidir)
    stem = pki.ensure_leaf(pkidir, ca, f"tool-{name}", cn=name, orgs=("toolforge",))
    home = home_root / name
    kube = home / ".kube"
    certs = home / ".toolskube"
    for d in (home, kube, certs):
        d.mkdir(parents=True, exist_ok=True)
    (certs / "client.crt").write_bytes(stem.with_suffix(".crt").read_bytes())
    (certs / "client.key").write_bytes(stem.with_suffix(".key").read_bytes())
    cfg = kubeconfig_dict(server=server, ca_pem=(pkidir / "ca.crt").read_bytes(),
                          cert="../.toolskube/client.crt", key="../.toolskube/client.key",
                          user=f"tf-{name}", namespace=ns)
    (kube / "config").write_text(yaml.safe_dump(cfg, sort_keys=False))
    (kube / "config").chmod(0o600)
    (certs / "client.crt").chmod(0o400)
    (certs / "client.key").chmod(0o400)
    if os.geteuid() == 0:
        for p in (home, kube, certs, kube / "config", certs / "client.crt", certs / "client.key"):
            os.chown(p, uid, uid)
    home.chmod(0o775)
    return home


def wait_service_account(core: Any, namespace: str, timeout: float = 60) -> None:
    """Pods are admitted only once the controller-manager has made ServiceAccount `default`."""
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

    deadline = time.monotonic() + timeout
    while True:
        try:
            core.read_namespaced_service_account("default", namespace)
            return
        except ApiException as e:
            if e.status != 404 or time.monotonic() > deadline:
                raise
        time.sleep(0.2)
