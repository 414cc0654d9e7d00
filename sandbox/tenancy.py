"""Tool tenancy in the sandbox, shaped like Toolforge's maintain-kubeusers.

For a tool NAME: namespace `tool-NAME` (PodSecurity `restricted` enforced, label `tenancy: tool`,
annotation `gridshim.io/uid: "UID"`), a RoleBinding that lets user NAME (client cert CN=NAME,
O=toolforge) and the ServiceAccount `gridshim` of that namespace (the identity of the tool's own jobs
when the site config says `in_jobs: {identity: service-account}`) manage its jobs, read its own
Namespace and nothing else, a ResourceQuota and a
LimitRange, a home directory owned by the tool's uid, and `$HOME/.kube/config` with the client cert
in `$HOME/.toolskube/` (relative paths, mode 0600/0400, as Toolforge writes them).

Cluster-wide, once (`ensure_uid_policy`): the ValidatingAdmissionPolicy `gridshim-tool-uid` and its
binding, which refuse in every `tenancy: tool` namespace any Pod, and any Job, CronJob, Deployment,
ReplicaSet, StatefulSet or DaemonSet pod template, that would not run as that namespace's uid. This
is the same policy docs/site-config.md gives admins (tests/unit/test_config.py keeps them equal).
"""

from __future__ import annotations

import base64
import os
import shutil
import time
from pathlib import Path
from typing import Any

import yaml

from sandbox import pki

TOOL_CLUSTERROLE = "gridshim-tool"
# The ServiceAccount a tool's jobs run as when gridshim runs inside them (site config in_jobs.service_account,
# whose default is the same name): bound to the tool's role in the tool's namespace only, like the tool's user.
TOOL_SERVICE_ACCOUNT = "gridshim"
# The uid a tool's pods must run as, on its Namespace (gridshim's config.UID_ANNOTATION), and the label
# that makes a namespace a tool's (Toolforge's maintain-kubeusers sets the same one).
UID_ANNOTATION = "gridshim.io/uid"
TOOL_NAMESPACE_LABELS = {"tenancy": "tool"}
UID_POLICY_NAME = "gridshim-tool-uid"

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
    # Namespaces are cluster-scoped, but GET /api/v1/namespaces/N is authorized as a request in N: bound
    # by a RoleBinding in the tool's namespace this lets it read its own Namespace (the uid annotation,
    # for `uid: namespace`) and no other; it can neither list namespaces nor change its own.
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]},
]

# -- the uid policy --------------------------------------------------------------------------------------
# Where each kind keeps its pod spec; OBJ is `object` or `oldObject`.
_POD_SPEC = ("{o}.kind == 'Pod' ? {o}.spec : {o}.kind == 'CronJob' ? {o}.spec.jobTemplate.spec.template.spec : "
             "{o}.spec.template.spec")
_RULE_OPS = ["CREATE", "UPDATE"]
UID_POLICY: dict[str, Any] = {
    "apiVersion": "admissionregistration.k8s.io/v1",
    "kind": "ValidatingAdmissionPolicy",
    "metadata": {"name": UID_POLICY_NAME},
    "spec": {
        "failurePolicy": "Fail",
        "matchConstraints": {"resourceRules": [
            # a Pod's security context cannot change after creation; ephemeral containers are added by UPDATE
            {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]},
            {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["UPDATE"],
             "resources": ["pods/ephemeralcontainers"]},
            # the kinds that carry a pod template: refused at submit time, with the reason, rather than
            # accepted and then unable to make a pod (qstat: Eqw)
            {"apiGroups": ["batch"], "apiVersions": ["v1"], "operations": _RULE_OPS, "resources": ["jobs", "cronjobs"]},
            {"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": _RULE_OPS,
             "resources": ["deployments", "replicasets", "statefulsets", "daemonsets"]},
        ]},
        "variables": [
            {"name": "uidText",
             "expression": f"namespaceObject.metadata.?annotations[?'{UID_ANNOTATION}'].orValue('')"},
            {"name": "uid", "expression": "variables.uidText.matches('^[1-9][0-9]{0,9}$') ? int(variables.uidText) : -1"},
            {"name": "spec", "expression": _POD_SPEC.format(o="object")},
            {"name": "containers",
             "expression": "variables.spec.containers + variables.spec.?initContainers.orValue([]) + "
                           "variables.spec.?ephemeralContainers.orValue([])"},
            # what each container runs as: its own setting, else the pod's; -1 when neither is set
            {"name": "users",
             "expression": "variables.containers.map(c, c.?securityContext.?runAsUser.orValue("
                           "variables.spec.?securityContext.?runAsUser.orValue(-1)))"},
            {"name": "groups",
             "expression": "variables.containers.map(c, c.?securityContext.?runAsGroup.orValue("
                           "variables.spec.?securityContext.?runAsGroup.orValue(-1)))"},
            {"name": "fsGroup", "expression": "variables.spec.?securityContext.?fsGroup.orValue(-1)"},
            {"name": "extraGroups",
             "expression": "variables.spec.?securityContext.?supplementalGroups.orValue([])"
                           ".filter(g, g != variables.uid)"},
            # Every Pod is judged. A template is judged when it names a uid or gid anywhere: one that names
            # none (`kubectl create job X --image=I`) cannot run either, since its pods are refused, as
            # PodSecurity only warns on templates and refuses their pods. An UPDATE that leaves the pod
            # spec alone (labels, finalizers, scale) is not judged again, so an object made before the
            # policy never blocks the garbage collector or a controller.
            {"name": "checked",
             "expression": "(object.kind == 'Pod' || variables.users.exists(u, u >= 0) || "
                           "variables.groups.exists(g, g >= 0) || variables.fsGroup >= 0 || "
                           "size(variables.spec.?securityContext.?supplementalGroups.orValue([])) > 0) && "
                           "(request.operation != 'UPDATE' || variables.spec != ("
                           + _POD_SPEC.format(o="oldObject") + "))"},
        ],
        "validations": [
            {"expression": "!variables.checked || variables.uid > 0",
             "messageExpression": f"'namespace ' + namespaceObject.metadata.name + ' has no valid {UID_ANNOTATION} "
                                  "annotation (the uid its tool\\'s pods run as), so no pod may run in it: ask the "
                                  "cluster admins to set it'"},
            {"expression": "!variables.checked || variables.uid <= 0 || ("
                           "variables.users.all(u, u == variables.uid) && variables.groups.all(g, g == variables.uid) && "
                           "variables.spec.?securityContext.?runAsUser.orValue(variables.uid) == variables.uid && "
                           "variables.spec.?securityContext.?runAsGroup.orValue(variables.uid) == variables.uid && "
                           "(variables.fsGroup == variables.uid || variables.fsGroup == -1) && size(variables.extraGroups) == 0)",
             "messageExpression": "'pods in namespace ' + namespaceObject.metadata.name + ' run only as its tool\\'s "
                                  "uid ' + string(variables.uid) + ': runAsUser and runAsGroup ' + "
                                  "string(variables.uid) + ', fsGroup and supplementalGroups ' + "
                                  "string(variables.uid) + ' or unset; this ' + object.kind + ' asks for runAsUser ' + "
                                  "variables.users.map(u, u < 0 ? 'unset' : string(u)).join('/') + ', runAsGroup ' + "
                                  "variables.groups.map(g, g < 0 ? 'unset' : string(g)).join('/') + ', fsGroup ' + "
                                  "(variables.fsGroup < 0 ? 'unset' : string(variables.fsGroup)) + (size(variables.extraGroups) > 0 ? "
                                  "', supplementalGroups ' + variables.extraGroups.map(g, string(g)).join('/') : '')"},
            {"expression": "!variables.checked || variables.containers.all(c, c.?securityContext.?runAsNonRoot"
                           ".orValue(variables.spec.?securityContext.?runAsNonRoot.orValue(false)))",
             "messageExpression": "'pods in namespace ' + namespaceObject.metadata.name + ' must set runAsNonRoot: "
                                  "true (for every container of this ' + object.kind + ')'"},
        ],
    },
}
UID_POLICY_BINDING: dict[str, Any] = {
    "apiVersion": "admissionregistration.k8s.io/v1",
    "kind": "ValidatingAdmissionPolicyBinding",
    "metadata": {"name": UID_POLICY_NAME},
    "spec": {"policyName": UID_POLICY_NAME, "validationActions": ["Deny"],
             "matchResources": {"namespaceSelector": {"matchLabels": dict(TOOL_NAMESPACE_LABELS)}}},
}


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
    from kubernetes.dynamic import DynamicClient  # heavy import, only when needed

    client = DynamicClient(api) if not hasattr(api, "resources") else api
    res = client.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    client.server_side_apply(res, body=obj, namespace=obj["metadata"].get("namespace"),
                             field_manager="gridshim-sandbox", force_conflicts=True)


def ensure_clusterrole(dyn: Any) -> None:
    apply(dyn, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": TOOL_CLUSTERROLE}, "rules": TOOL_RULES})


def ensure_uid_policy(dyn: Any) -> None:
    """The cluster-wide uid policy and its binding (before any tool namespace exists)."""
    apply(dyn, UID_POLICY)
    apply(dyn, UID_POLICY_BINDING)


def wait_uid_policy(core: Any, namespace: str, uid: int, timeout: float = 60) -> None:
    """Until the API server refuses a pod of another uid in NAMESPACE (a new policy takes a moment)."""
    from kubernetes.client.exceptions import ApiException

    other = uid + 1
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "uid-policy-probe-"},
           "spec": {"securityContext": {"runAsUser": other, "runAsGroup": other, "runAsNonRoot": True,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{"name": "c", "image": "sandbox.local/base", "command": ["/bin/true"],
                                    "securityContext": {"allowPrivilegeEscalation": False,
                                                        "capabilities": {"drop": ["ALL"]}}}]}}
    deadline = time.monotonic() + timeout
    while True:
        try:
            core.create_namespaced_pod(namespace, pod, dry_run="All")
        except ApiException as e:
            if e.status == 422 and UID_POLICY_NAME in str(e.body):
                return
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise RuntimeError(f"the uid policy {UID_POLICY_NAME} does not refuse uid {other} in {namespace} "
                               f"after {timeout:.0f}s")
        time.sleep(0.2)


def tool_manifests(*, name: str, uid: int, quota: dict[str, str] | None = None,
                   limits: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Tool NAME's Namespace, ServiceAccount, RoleBinding, ResourceQuota and LimitRange (also made through
    the API of a cluster that is not the sandbox, by the e2e suite's external mode: tests/e2e/external.py)."""
    ns = f"tool-{name}"
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {
            "name": ns, **TOOL_NAMESPACE_LABELS,
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
            "pod-security.kubernetes.io/warn": "restricted",
        }, "annotations": {UID_ANNOTATION: str(uid)}}},
        # the identity of the tool's own jobs (in_jobs: service-account): no token of its own (the kubelet's
        # tokens are bound to one pod and die with it), the same role as the tool's user, in its namespace only
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": TOOL_SERVICE_ACCOUNT, "namespace": ns}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": name, "namespace": ns},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": TOOL_CLUSTERROLE},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name},
                      {"kind": "ServiceAccount", "name": TOOL_SERVICE_ACCOUNT, "namespace": ns}]},
        {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": ns, "namespace": ns},
         "spec": {"hard": dict(TOOLFORGE_QUOTA if quota is None else quota)}},
        {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": ns, "namespace": ns},
         "spec": {"limits": [{"type": "Container", **(TOOLFORGE_LIMITS if limits is None else limits)}]}},
    ]


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
    for obj in tool_manifests(name=name, uid=uid, quota=quota, limits=limits):
        apply(dyn, obj)

    pkidir = state / "pki"
    ca = pki.ensure_ca(pkidir)
    stem = pki.ensure_leaf(pkidir, ca, f"tool-{name}", cn=name, orgs=("toolforge",))
    cfg = kubeconfig_dict(server=server, ca_pem=(pkidir / "ca.crt").read_bytes(),
                          cert="../.toolskube/client.crt", key="../.toolskube/client.key",
                          user=f"tf-{name}", namespace=ns)
    home = home_root / name
    write_home(home, uid=uid, cert=stem.with_suffix(".crt").read_bytes(), key=stem.with_suffix(".key").read_bytes(),
               kubeconfig=cfg)
    return home


def write_home(home: Path, *, uid: int, cert: bytes, key: bytes, kubeconfig: dict[str, Any]) -> None:
    """A tool's home as Toolforge makes it: ~/.toolskube/client.{crt,key} (0400) and ~/.kube/config
    (0600) naming them as ../.toolskube/…, all owned by the tool's uid; the home itself 0775."""
    kube, certs = home / ".kube", home / ".toolskube"
    if os.geteuid() == 0 and home.exists() and home.stat().st_uid != uid:
        # a home left by an earlier life of the sandbox, when this name had another uid: the new tool
        # must not inherit files it cannot write (its ~/.gridshim, its output files)
        shutil.rmtree(home)
    for d in (home, kube, certs):
        d.mkdir(parents=True, exist_ok=True)
    (certs / "client.crt").write_bytes(cert)
    (certs / "client.key").write_bytes(key)
    (kube / "config").write_text(yaml.safe_dump(kubeconfig, sort_keys=False))
    (kube / "config").chmod(0o600)
    (certs / "client.crt").chmod(0o400)
    (certs / "client.key").chmod(0o400)
    if os.geteuid() == 0:
        for p in (home, kube, certs, kube / "config", certs / "client.crt", certs / "client.key"):
            os.chown(p, uid, uid)
    home.chmod(0o775)


def wait_service_account(core: Any, namespace: str, timeout: float = 60) -> None:
    """Pods are admitted only once the controller-manager has made ServiceAccount `default`."""
    from kubernetes.client.exceptions import ApiException

    deadline = time.monotonic() + timeout
    while True:
        try:
            core.read_namespaced_service_account("default", namespace)
            return
        except ApiException as e:
            if e.status != 404 or time.monotonic() > deadline:
                raise
        time.sleep(0.2)
