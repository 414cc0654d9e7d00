"""The e2e suite against a cluster that is not the local sandbox ("external mode", docs/testing.md).

    GRIDSHIM_E2E_KUBECONFIG=PATH          the cluster to test: its current context's cluster entry
                                           (server, CA, tls-server-name, proxy-url) goes into every tool's
                                           kubeconfig; setting it turns external mode on
    GRIDSHIM_E2E_ADMIN_KUBECONFIG=PATH    credentials that set the tools up (default: the one above)
    GRIDSHIM_E2E_SITE_CONFIG=PATH         the site config jobs are submitted with (default: the sandbox's)
    GRIDSHIM_E2E_SHARED_HOME=1            the pods see the tool homes made here at the same paths
                                           (same machine, hostPath or NFS): the tests that read or write
                                           the jobs' files run too
    GRIDSHIM_E2E_WORKDIR=DIR              where tool homes and the site config go (default build/e2e-external;
                                           one run at a time: its homes/ is emptied when a run starts)
    GRIDSHIM_E2E_KUBECTL=PATH             kubectl (default: on PATH, else the sandbox's build)
    GRIDSHIM_E2E_UID_BASE=N               tool uids start above N when the suite runs as root (default 54000)

Tools are made only through the API, as a site's admins would: the ClusterRole gridshim-tool and the
uid policy (sandbox/tenancy.py, the same objects docs/site-config.md gives admins), per tool its
Namespace, RoleBinding, ResourceQuota and LimitRange (tenancy.tool_manifests), and a client certificate
CN=TOOL, O=toolforge issued by the cluster's own signer through a CertificateSigningRequest that the
admin approves. Nothing is read from or written to the cluster's nodes. The tool namespaces made here
are deleted at the end of the session.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
ENV_KUBECONFIG = "GRIDSHIM_E2E_KUBECONFIG"
ENV_ADMIN = "GRIDSHIM_E2E_ADMIN_KUBECONFIG"
ENV_SITE = "GRIDSHIM_E2E_SITE_CONFIG"
ENV_SHARED = "GRIDSHIM_E2E_SHARED_HOME"
ENV_WORK = "GRIDSHIM_E2E_WORKDIR"
ENV_KUBECTL = "GRIDSHIM_E2E_KUBECTL"
ENV_UID_BASE = "GRIDSHIM_E2E_UID_BASE"
# Above the sandbox's tool uids (52xxx) and a second sandbox's own (53xxx): both may run pods on this machine.
DEFAULT_UID_BASE = 54000
# The label on every namespace made here, so the end of the session deletes exactly those.
E2E_LABEL = "gridshim.io/e2e-run"
CSR_SIGNER = "kubernetes.io/kube-apiserver-client"
# Beyond doctor's warning window (doctor.CERT_WARN_DAYS, 30), so doctor's all-ok tests hold; a signer that
# caps durations lower (kube-controller-manager --cluster-signing-duration) makes doctor warn.
CSR_SECONDS = 90 * 86400


def configured() -> bool:
    return bool(os.environ.get(ENV_KUBECONFIG))


def shared_home() -> bool:
    return os.environ.get(ENV_SHARED, "") not in ("", "0", "no", "false")


def workdir() -> Path:
    return Path(os.environ.get(ENV_WORK) or REPO / "build" / "e2e-external").resolve()


def current_cluster(path: str) -> dict[str, Any]:
    """The cluster entry of PATH's current context, with a CA file turned into inline data."""
    cfg = yaml.safe_load(Path(path).read_text()) or {}
    ctx_name = cfg.get("current-context")
    ctx = next((c["context"] for c in cfg.get("contexts") or [] if c.get("name") == ctx_name), None)
    if ctx is None:
        raise RuntimeError(f"{path}: no current context")
    cluster = next((c["cluster"] for c in cfg.get("clusters") or [] if c.get("name") == ctx.get("cluster")), None)
    if cluster is None:
        raise RuntimeError(f"{path}: context {ctx_name} names no cluster entry")
    cluster = dict(cluster)
    ca = cluster.pop("certificate-authority", None)
    if ca and "certificate-authority-data" not in cluster:
        ca_path = Path(ca) if os.path.isabs(ca) else Path(path).parent / ca
        cluster["certificate-authority-data"] = base64.b64encode(ca_path.read_bytes()).decode()
    return cluster


def find_kubectl() -> Path:
    explicit = os.environ.get(ENV_KUBECTL) or shutil.which("kubectl")
    if explicit:
        return Path(explicit).resolve()
    out = subprocess.run(["bash", str(REPO / "sandbox/build.sh")], stdout=subprocess.PIPE, text=True, check=True)
    return Path(out.stdout.strip().splitlines()[-1]) / "kubectl"


@dataclass
class External:
    """An existing cluster the suite sets tools up in through its admin kubeconfig."""

    kubeconfig: str
    admin_kubeconfig: str
    work: Path
    cluster: dict[str, Any]
    kubectl: Path
    run_id: str
    uid_base: int
    _uids: set[int] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _policy_checked: bool = False
    _api: Any = None

    @classmethod
    def from_environ(cls) -> External:
        kubeconfig = str(Path(os.environ[ENV_KUBECONFIG]).resolve())
        admin = str(Path(os.environ.get(ENV_ADMIN) or kubeconfig).resolve())
        work = workdir()
        # a fresh homes directory per run: a tool name of an earlier run (pid-based) must not find its files
        shutil.rmtree(work / "homes", ignore_errors=True)
        (work / "homes").mkdir(parents=True, exist_ok=True)
        for d in (work, work / "homes"):
            d.chmod(0o755)
        return cls(kubeconfig=kubeconfig, admin_kubeconfig=admin, work=work, cluster=current_cluster(kubeconfig),
                   kubectl=find_kubectl(), run_id=f"{os.getpid()}-{int(time.time())}",
                   uid_base=int(os.environ.get(ENV_UID_BASE) or DEFAULT_UID_BASE))

    @property
    def server(self) -> str:
        return str(self.cluster["server"])

    @property
    def site_config(self) -> Path:
        return self.work / "gridshim.yaml"

    def clients(self) -> tuple[Any, Any, Any]:
        from kubernetes import client, config
        from kubernetes.dynamic import DynamicClient

        if self._api is None:
            self._api = config.new_client_from_config(self.admin_kubeconfig)
        return client.CoreV1Api(self._api), DynamicClient(self._api), client.CertificatesV1Api(self._api)

    def setup(self) -> None:
        """Cluster-wide objects (the tools' ClusterRole and the uid policy) and the site config."""
        from sandbox import tenancy, up

        _, dyn, _ = self.clients()
        tenancy.ensure_clusterrole(dyn)
        tenancy.ensure_uid_policy(dyn)
        site = os.environ.get(ENV_SITE)
        if site:
            shutil.copyfile(site, self.site_config)
        else:
            up.write_site_config(self.work / "homes", path=self.site_config)
        self.site_config.chmod(0o644)

    def next_uid(self) -> int:
        """The invoking user's uid when not root (the tool runs as that user anyway); as root, a uid above
        every tool namespace's in the cluster and every one handed out in this session."""
        if os.geteuid() != 0:
            return os.geteuid()
        from sandbox import tenancy

        core, _, _ = self.clients()
        taken = [self.uid_base]
        for ns in core.list_namespace(label_selector="tenancy=tool").items:
            value = (ns.metadata.annotations or {}).get(tenancy.UID_ANNOTATION, "")
            if value.isdigit():
                taken.append(int(value))
        with self._lock:
            uid = max(taken + list(self._uids)) + 1
            self._uids.add(uid)
        return uid

    def add_tool(self, name: str, *, quota: dict[str, str] | None = None,
                 limits: dict[str, Any] | None = None) -> tuple[Path, int]:
        """Tool NAME in the cluster (namespace, RBAC, quota, limits), a certificate from the cluster's
        signer, and its home here with ~/.kube/config as Toolforge writes it. Returns (home, uid)."""
        from sandbox import tenancy

        core, dyn, _ = self.clients()
        uid = self.next_uid()
        for obj in tenancy.tool_manifests(name=name, uid=uid, quota=quota, limits=limits):
            if obj["kind"] == "Namespace":
                obj["metadata"]["labels"][E2E_LABEL] = self.run_id
            tenancy.apply(dyn, obj)
        crt, key = self.issue(name)
        home = self.work / "homes" / name
        cfg = {"apiVersion": "v1", "kind": "Config",
               "clusters": [{"name": "e2e", "cluster": self.cluster}],
               "users": [{"name": f"tf-{name}", "user": {"client-certificate": "../.toolskube/client.crt",
                                                         "client-key": "../.toolskube/client.key"}}],
               "contexts": [{"name": "toolforge", "context": {"cluster": "e2e", "user": f"tf-{name}",
                                                              "namespace": f"tool-{name}"}}],
               "current-context": "toolforge"}
        tenancy.write_home(home, uid=uid, cert=crt, key=key, kubeconfig=cfg)
        tenancy.wait_service_account(core, f"tool-{name}")
        if not self._policy_checked:
            tenancy.wait_uid_policy(core, f"tool-{name}", uid)
            self._policy_checked = True
        return home, uid

    def issue(self, name: str, timeout: float = 60) -> tuple[bytes, bytes]:
        """(certificate PEM, key PEM) for CN=NAME, O=toolforge, signed by the cluster's client signer."""
        from kubernetes import client

        from sandbox import pki

        _, _, certs = self.clients()
        csr_pem, key_pem = pki.request(cn=name, orgs=("toolforge",))
        csr_name = f"gridshim-e2e-{name}"
        certs.create_certificate_signing_request({
            "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {"name": csr_name, "labels": {E2E_LABEL: self.run_id}},
            "spec": {"request": base64.b64encode(csr_pem).decode(), "signerName": CSR_SIGNER,
                     "usages": ["client auth"], "expirationSeconds": CSR_SECONDS}})
        try:
            csr = certs.read_certificate_signing_request(csr_name)
            csr.status.conditions = [client.V1CertificateSigningRequestCondition(
                type="Approved", status="True", reason="GridshimE2E",
                message="a tool of gridshim's e2e suite (tests/e2e/external.py)")]
            certs.replace_certificate_signing_request_approval(csr_name, csr)
            deadline = time.monotonic() + timeout
            while True:
                got = certs.read_certificate_signing_request(csr_name)
                if got.status and got.status.certificate:
                    return base64.b64decode(got.status.certificate), key_pem
                failed = [c for c in (got.status.conditions or []) if c.type in ("Denied", "Failed")]
                if failed:
                    raise RuntimeError(f"CSR {csr_name}: {failed[0].type}: {failed[0].message}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"CSR {csr_name} approved but not signed after {timeout:.0f}s: does the "
                                       f"cluster's controller manager run the {CSR_SIGNER} signer?")
                time.sleep(0.2)
        finally:
            certs.delete_certificate_signing_request(csr_name)

    def cleanup(self) -> None:
        """Delete the namespaces this session made (the API server finishes it in the background)."""
        core, _, _ = self.clients()
        for ns in core.list_namespace(label_selector=f"{E2E_LABEL}={self.run_id}").items:
            core.delete_namespace(ns.metadata.name)
