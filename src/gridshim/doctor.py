"""`gridshim doctor`: check a tool's set-up one item at a time and say how to fix what is wrong.

Layer: use case, like ops.py. It talks to the cluster only through a duck-typed object (a
`KubeCluster`) handed in by the CLI, and receives the clock and the kubeconfig/site-config loaders
as arguments, so every check can be run against fakes. Imports config, errors and model; never
cluster, click or rich.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from gridshim import quantity
from gridshim.config import Settings, namespace_uid
from gridshim.errors import ClusterConfigError, ClusterError, GridshimError, QuotaExceededError
from gridshim.model import Manifest

DAY = 86400.0
# A certificate that runs out within this many days is a warning: there is time to renew it, but
# cron jobs will start failing silently the day it expires.
CERT_WARN_DAYS = 30

# Every API operation gridshim's commands perform, with the commands that need it. Checked with a
# SelfSubjectAccessReview each, so the answer is the API server's own RBAC decision.
REQUIRED_ACCESS: tuple[tuple[str, str, str, str], ...] = (
    ("create", "jobs", "batch", "jsub, jstart"),
    ("get", "jobs", "batch", "jsub -once, jsub -sync y"),
    ("list", "jobs", "batch", "qstat, job, jstop, qdel"),
    ("watch", "jobs", "batch", "jsub -sync y"),
    ("delete", "jobs", "batch", "jstop, qdel, jsub -once"),
    ("create", "cronjobs", "batch", "crontab"),
    ("get", "cronjobs", "batch", "crontab"),
    ("list", "cronjobs", "batch", "qstat, crontab"),
    ("update", "cronjobs", "batch", "crontab"),
    ("delete", "cronjobs", "batch", "crontab, crontab -r"),
    ("list", "pods", "", "qstat, job, jsub -sync y"),
    ("deletecollection", "pods", "", "qdel, jstop, qmod -rj"),
    ("list", "events", "", "qstat (why a job cannot start)"),
    ("get", "configmaps", "", "crontab -l"),
    ("create", "configmaps", "", "crontab"),
    ("update", "configmaps", "", "crontab"),
)
# Asked too when the site config says `uid: namespace` (a RoleBinding in the namespace grants it).
NAMESPACE_ACCESS = ("get", "namespaces", "", "jsub, qsub, crontab (site config 'uid: namespace')")
# Quota items that stop new jobs when they are used up; the others are shown for information.
BLOCKING_QUOTA = ("pods", "count/jobs.batch", "count/cronjobs.batch", "limits.memory", "requests.memory",
                  "limits.cpu", "requests.cpu")
_SHORT = {"count/jobs.batch": "jobs", "count/cronjobs.batch": "cronjobs"}


class Level(str, Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"
    SKIP = "skip"  # could not be checked because an earlier check failed


@dataclass(frozen=True, kw_only=True)
class Check:
    """One line of the doctor's report; a WARN or FAIL carries the fix."""

    name: str
    level: Level
    summary: str
    fix: str | None = None
    details: tuple[str, ...] = ()


class DoctorCluster(Protocol):
    """What the doctor needs from `cluster.KubeCluster`."""

    creds: Any
    namespace: str

    @property
    def tool(self) -> str: ...
    def request(self, method: str, path: str, body: Any = None, *, idempotent: bool | None = None) -> Any: ...
    def access_review(self, verb: str, resource: str, group: str = "") -> bool: ...
    def list(self, kind: str, *, selector: str | None = None) -> tuple[list[Manifest], str]: ...
    def path(self, kind: str, name: str | None = None, *, params: dict[str, Any] | None = None) -> str: ...
    def namespace_object(self) -> Manifest: ...


@dataclass(frozen=True, kw_only=True)
class Report:
    checks: tuple[Check, ...]
    tool: str | None = None
    namespace: str | None = None

    @property
    def ok(self) -> bool:
        return not any(c.level is Level.FAIL for c in self.checks)

    @property
    def problems(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.level in (Level.FAIL, Level.WARN))


# -- the checks ------------------------------------------------------------------------------------

def check_kubeconfig(cluster: DoctorCluster | None, error: GridshimError | None, *,
                     paths: list[str], from_env: bool) -> Check:
    tried = ", ".join(paths) + (" (from $KUBECONFIG)" if from_env else "")
    if error is not None or cluster is None:
        msg = error.message if error is not None else "no kubeconfig"
        if tried and not any(p in msg for p in paths):
            msg += f" (tried {tried})"
        fix = (error.hint if error is not None and error.hint else None) or \
            "run 'become <tool>' first, or set KUBECONFIG to your tool's kubeconfig"
        return Check(name="kubeconfig", level=Level.FAIL, summary=msg, fix=fix)
    c = cluster.creds
    auth = ("client certificate " + (c.cert_file or "(inline data)")) if (c.cert_file or c.cert_data) else \
        ("bearer token" if c.token else "no credentials")
    origin = " (from $KUBECONFIG)" if from_env else ""
    check = Check(name="kubeconfig", level=Level.OK,
                  summary=f"{c.path}{origin}: context {c.context}, namespace {cluster.namespace}",
                  details=(f"server {c.server}", f"auth: {auth}"))
    if not (c.cert_file or c.cert_data or c.token):
        return Check(name="kubeconfig", level=Level.FAIL, summary=check.summary + ", but no credentials",
                     fix=f"the user entry of context {c.context!r} in {c.path} needs client-certificate "
                         "and client-key (or -data)", details=check.details)
    return check


def check_certificate(cluster: DoctorCluster, *, now: float,
                      cert_dates: Callable[[str | None, bytes | None], tuple[float, float] | None]) -> Check:
    c = cluster.creds
    if not (c.cert_file or c.cert_data):
        return Check(name="certificate", level=Level.OK, summary="no client certificate (token authentication)")
    where = c.cert_file or f"inline client-certificate-data in {c.path}"
    dates = cert_dates(c.cert_file, c.cert_data)
    if dates is None:
        return Check(name="certificate", level=Level.FAIL, summary=f"cannot read the client certificate {where}",
                     fix=f"check the client-certificate entry in {c.path} and the file's permissions")
    not_before, not_after = dates
    until = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(not_after))
    if now < not_before:
        since = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(not_before))
        return Check(name="certificate", level=Level.FAIL, summary=f"{where} is not valid before {since}",
                     fix="check this machine's clock (date -u)")
    days = (not_after - now) / DAY
    if days < 0:
        return Check(name="certificate", level=Level.FAIL, summary=f"{where} expired on {until}",
                     fix="ask your site's admins for a new certificate (on Toolforge, maintain-kubeusers "
                         "renews ~/.toolskube/client.crt; file a task if it did not)")
    summary = f"valid for {int(days)} more day{'s' if int(days) != 1 else ''} (until {until})"
    if days < CERT_WARN_DAYS:
        return Check(name="certificate", level=Level.WARN, summary=summary + f": {where}",
                     fix="it must be renewed before then, or every command and cron job will fail; "
                         "ask your site's admins if it is not renewed automatically")
    return Check(name="certificate", level=Level.OK, summary=summary)


def check_reachable(cluster: DoctorCluster, *, timer: Callable[[], float]) -> Check:
    server = cluster.creds.server
    start = timer()
    try:
        # not idempotent=True: one attempt, so an unreachable server is reported at once, not after
        # the retry budget the other commands use
        version = cluster.request("GET", "/version", idempotent=False) or {}
    except ClusterConfigError as e:  # TLS: the CA or the client certificate
        return Check(name="API server", level=Level.FAIL, summary=e.message,
                     fix=e.hint or f"check the certificates in {cluster.creds.path}")
    except GridshimError as e:
        return Check(name="API server", level=Level.FAIL, summary=e.message,
                     fix=f"check the server entry in {cluster.creds.path}, your network, and try again later "
                         "(your site's status page may say whether the cluster is down)")
    ms = (timer() - start) * 1000
    return Check(name="API server", level=Level.OK,
                 summary=f"{server} answers: Kubernetes {version.get('gitVersion', '?')} ({ms:.0f} ms)")


def check_apis(cluster: DoctorCluster) -> Check:
    """Discovery: the API groups/versions and resources gridshim needs (batch/v1 Jobs and CronJobs)."""
    missing_apis = getattr(cluster, "missing_apis", None)
    if missing_apis is None:
        return Check(name="API groups", level=Level.SKIP, summary="discovery not available")
    try:
        missing = missing_apis()
    except GridshimError as e:
        return Check(name="API groups", level=Level.WARN, summary=f"discovery failed: {e.message}",
                     fix=e.hint or "try again later")
    if not missing:
        return Check(name="API groups", level=Level.OK, summary="batch/v1 jobs and cronjobs are served")
    return Check(name="API groups", level=Level.FAIL,
                 summary="not served: " + ", ".join(f"{gv} {res} (needed by {what})" for gv, res, what in missing),
                 fix="ask the site's admins to enable them (kube-apiserver --runtime-config)")


def whoami(cluster: DoctorCluster) -> str | None:
    """The user name the API server sees (SelfSubjectReview, Kubernetes ≥ 1.28); None if it cannot say."""
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    try:
        out = cluster.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", review,
                              idempotent=True) or {}
    except GridshimError:
        return None
    name = ((out.get("status") or {}).get("userInfo") or {}).get("username")
    return str(name) if name else None


def check_access(cluster: DoctorCluster, *, extra: tuple[tuple[str, str, str, str], ...] = ()) -> Check:
    required = REQUIRED_ACCESS + extra
    missing: list[str] = []
    for verb, resource, group, used_by in required:
        try:
            allowed = cluster.access_review(verb, resource, group)
        except GridshimError as e:
            return Check(name="permissions", level=Level.FAIL,
                         summary=f"cannot ask the API server what you may do: {e.message}",
                         fix=e.hint or "check the kubeconfig's credentials")
        if not allowed:
            missing.append(f"{verb} {resource} (needed by {used_by})")
    user = whoami(cluster)
    as_user = f" as user {user}" if user else ""
    if missing:
        fix = (f"ask your site's admins to grant them to your tool in namespace {cluster.namespace}, or check "
               "that the kubeconfig is your tool's")
        if len(missing) == len(required):
            fix = (f"nothing is allowed{as_user} in namespace {cluster.namespace}: this is probably another tool's "
                   "namespace or another tool's certificate; use your tool's kubeconfig (become <tool>), or set "
                   "the context's namespace to your tool's (kubectl config set-context --current "
                   "--namespace=tool-NAME)")
        return Check(name="permissions", level=Level.FAIL,
                     summary=f"{len(missing)} of {len(required)} operations gridshim needs are denied"
                             f"{as_user} in {cluster.namespace}",
                     fix=fix, details=tuple(missing))
    return Check(name="permissions", level=Level.OK,
                 summary=f"all {len(required)} operations gridshim needs are allowed{as_user} in "
                         f"{cluster.namespace}")


# -- tenancy: the cluster must refuse every uid but the tool's ---------------------------------------

def probe(kind: str, uid: int, settings: Settings) -> Manifest:
    """A Pod or Job running as UID that this namespace would otherwise admit (PodSecurity `restricted`,
    the site's image and default resources); created only with dryRun=All, so nothing is stored."""
    ids = {"runAsUser": uid, "runAsGroup": uid, "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    limits: dict[str, str] = {"memory": str(settings.default_mem)}
    if settings.cpu_limit:
        limits["cpu"] = settings.cpu_limit
    requests = {"memory": str(min(settings.default_mem, 512 * 2**20)), "cpu": settings.cpu_request}
    spec: Manifest = {
        "restartPolicy": "Never", "automountServiceAccountToken": False, "enableServiceLinks": False,
        "securityContext": {**ids, "fsGroup": uid},
        "containers": [{"name": "probe", "image": settings.image_for(None), "command": ["/bin/true"],
                        "resources": {"limits": limits, "requests": requests},
                        "securityContext": {**ids, "allowPrivilegeEscalation": False, "privileged": False,
                                            "capabilities": {"drop": ["ALL"]}}}],
    }
    meta = {"generateName": "gridshim-doctor-uid-"}
    if kind == "Pod":
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
            "spec": {"backoffLimit": 0, "template": {"spec": spec}}}


def _dry_run(cluster: DoctorCluster, manifest: Manifest) -> GridshimError | None:
    """None if the API server would admit MANIFEST, else its refusal (or why it could not say)."""
    try:
        cluster.request("POST", cluster.path(manifest["kind"], params={"dryRun": "All"}), manifest, idempotent=True)
    except GridshimError as e:
        return e
    return None


def _refusal(e: GridshimError | None) -> bool:
    """A definite no from admission or RBAC (4xx), not a failure to answer."""
    if e is None or isinstance(e, QuotaExceededError):
        return False
    return not isinstance(e, ClusterError) or (e.status is not None and 400 <= e.status < 500)


def check_tenancy(cluster: DoctorCluster, settings: Settings | None, uid: int) -> Check:
    """Prove with server-side dry runs that the cluster refuses another uid: a Pod and a Job as UID must be
    admitted and the same as UID+1 (a neighbouring tool's) refused; only the uid differs between them."""
    settings = settings or Settings()
    other = uid + 1
    seen: dict[str, str] = {}
    details: list[str] = []
    for kind in ("Pod", "Job"):
        own = _dry_run(cluster, probe(kind, uid, settings))
        if own is not None:
            seen[kind] = "untested"
            details.append(f"{kind} as uid {uid} (this tool's) is refused too, so nothing is proven: {own.message}")
            continue
        wrong = _dry_run(cluster, probe(kind, other, settings))
        if _refusal(wrong):
            said = "refused" if "refused" in seen.values() else wrong.message  # type: ignore[union-attr]
            seen[kind] = "refused"
            details.append(f"{kind} as uid {other}: {said}")
        elif wrong is None:
            seen[kind] = "accepted"
            details.append(f"{kind} as uid {other}: accepted (dry run, nothing was created)")
        else:
            seen[kind] = "untested"
            details.append(f"{kind} as uid {other}: no answer ({wrong.message})")
    ns = cluster.namespace
    admins = ("site admins: deploy the ValidatingAdmissionPolicy gridshim-tool-uid and its binding, and annotate "
              "each tool namespace with gridshim.io/uid (docs/site-config.md)")
    if "accepted" in (seen["Pod"], seen["Job"]) and seen["Pod"] != "refused":
        return Check(name="permissions", level=Level.FAIL,
                     summary=f"the cluster accepts a {'Pod' if seen['Pod'] == 'accepted' else 'Job'} as uid {other} "
                             f"in {ns} (this tool's uid is {uid}): any tool can run jobs as another tool's uid",
                     fix=admins, details=tuple(details))
    if seen["Pod"] == "refused" and seen["Job"] == "accepted":
        return Check(name="permissions", level=Level.WARN,
                     summary=f"pods of another uid ({other}) are refused, but Jobs of it are accepted: such a jsub "
                             "is 'submitted' and never starts (qstat: Eqw)",
                     fix="site admins: add jobs and cronjobs to the policy's resourceRules (docs/site-config.md)",
                     details=tuple(details))
    if "refused" not in seen.values():
        return Check(name="permissions", level=Level.WARN,
                     summary=f"cannot prove now that the cluster refuses other uids than {uid} in {ns}",
                     fix="run gridshim doctor again later; if a pod of the tool's own uid stays refused, ask your "
                         "site's admins", details=tuple(details))
    kinds = " and ".join(k.lower() + "s" for k, v in seen.items() if v == "refused")
    return Check(name="permissions", level=Level.OK,
                 summary=f"{kinds} of any uid but {uid} are refused (uid {other} tried, dry run)",
                 details=tuple(details))


def merge(access: Check, tenancy: Check | None) -> Check:
    """The permissions line: what the tool may do (RBAC) and what it may not (another uid)."""
    if tenancy is None:
        return access
    order = {Level.OK: 0, Level.SKIP: 0, Level.WARN: 1, Level.FAIL: 2}
    level = max(access.level, tenancy.level, key=order.__getitem__)
    parts = sorted((access, tenancy), key=lambda c: -order[c.level])
    fixes = [c.fix for c in parts if c.fix and c.level in (Level.WARN, Level.FAIL)]
    return Check(name="permissions", level=level, summary="; ".join(c.summary for c in parts),
                 fix="; ".join(fixes) or None, details=access.details + tenancy.details)


def _fmt_amount(resource: str, value: float) -> str:
    return quantity.human(value) if "memory" in resource or "storage" in resource else f"{value:g}"


def check_quota(cluster: DoctorCluster, settings: Settings | None) -> Check:
    """ResourceQuota use, and whether the namespace's limits admit the site's default job at all."""
    try:
        quotas, _ = cluster.list("ResourceQuota")
    except GridshimError as e:
        return Check(name="quota", level=Level.WARN, summary=f"cannot read the namespace's quota: {e.message}",
                     fix="gridshim does not need this to run jobs; ask your admins for 'list resourcequotas' "
                         "if you want to see your quota here")
    try:
        ranges, _ = cluster.list("LimitRange")
    except GridshimError:
        ranges = []
    shown: list[str] = []
    full: list[str] = []
    fails: list[str] = []
    for q in quotas:
        status = q.get("status") or {}
        hard, used = status.get("hard") or {}, status.get("used") or {}
        for res in BLOCKING_QUOTA:
            if res not in hard:
                continue
            h, u = quantity.parse_or_none(hard[res]), quantity.parse_or_none(used.get(res, "0")) or 0.0
            if h is None:
                continue
            shown.append(f"{_SHORT.get(res, res)} {_fmt_amount(res, u)}/{_fmt_amount(res, h)}")
            if u >= h:
                full.append(f"{res} is used up ({used.get(res, '0')} of {hard[res]})")
        mem_quota = quantity.parse_or_none(hard.get("limits.memory"))
        if settings is not None and mem_quota is not None and settings.default_mem > mem_quota:
            fails.append(f"the site's default job memory ({quantity.human(settings.default_mem)}) is more "
                         f"than this namespace's whole limits.memory quota ({hard['limits.memory']})")
    if settings is not None:
        fails += _limit_range_problems(ranges, settings)
    if fails:
        return Check(name="quota", level=Level.FAIL, summary=fails[0], details=tuple(fails[1:]) + tuple(shown),
                     fix="jsub without -mem cannot start here: ask your site's admins to align the site config "
                         "(memory.default, cpu.request, cpu.limit) with the namespace's LimitRange and quota")
    if not quotas:
        return Check(name="quota", level=Level.OK, summary="no ResourceQuota in this namespace (no quota limits)")
    if full:
        return Check(name="quota", level=Level.WARN, summary="; ".join(full), details=tuple(shown),
                     fix="new jobs wait or are refused until some finish: qstat, then qdel what you do not "
                         "need, or ask your site's admins for more quota")
    return Check(name="quota", level=Level.OK, summary=", ".join(shown) or "no job-related quota")


def _limit_range_problems(ranges: list[Manifest], settings: Settings) -> list[str]:
    out: list[str] = []
    for lr in ranges:
        for item in (lr.get("spec") or {}).get("limits") or []:
            if item.get("type") not in ("Container", "Pod"):
                continue
            mx, mn = item.get("max") or {}, item.get("min") or {}
            mem_max = quantity.parse_or_none(mx.get("memory"))
            if mem_max is not None and settings.default_mem > mem_max:
                out.append(f"the site's default job memory ({quantity.human(settings.default_mem)}) is more than "
                           f"this namespace's per-{item['type'].lower()} maximum ({mx['memory']})")
            cpu_max, cpu_min = quantity.parse_or_none(mx.get("cpu")), quantity.parse_or_none(mn.get("cpu"))
            lim = quantity.parse_or_none(settings.cpu_limit) if settings.cpu_limit else None
            req = quantity.parse_or_none(settings.cpu_request)
            if cpu_max is not None and lim is not None and lim > cpu_max:
                out.append(f"the site's cpu.limit ({settings.cpu_limit}) is more than this namespace's "
                           f"per-{item['type'].lower()} maximum ({mx['cpu']})")
            if cpu_min is not None and req is not None and req < cpu_min:
                out.append(f"the site's cpu.request ({settings.cpu_request}) is less than this namespace's "
                           f"per-{item['type'].lower()} minimum ({mn['cpu']})")
    return out


def check_settings(settings: Settings | None, error: GridshimError | None, *,
                   resolve_uid: Callable[[Settings], int | None] | None = None,
                   namespace_uid: int | None = None, namespace: str | None = None) -> Check:
    if error is not None or settings is None:
        return Check(name="site config", level=Level.FAIL, summary=error.message if error else "not loaded",
                     fix="fix the file (every key is described in docs/site-config.md), or ask your site's admins")
    where = settings.path or "built-in defaults (no /etc/gridshim/config.yaml)"
    vols = len(settings.volumes)
    mem = f"memory {quantity.human(settings.default_mem)} default" + \
        (f" / {quantity.human(settings.max_mem)} max" if settings.max_mem is not None else "")
    summary = (f"{where}: {len(settings.images)} image{'s' if len(settings.images) != 1 else ''}, "
               f"{vols} volume{'s' if vols != 1 else ''}, {mem}, uid {settings.uid}")
    if settings.max_mem is not None and settings.default_mem > settings.max_mem:
        return Check(name="site config", level=Level.FAIL, summary=summary,
                     fix=f"memory.default ({quantity.human(settings.default_mem)}) is more than memory.max "
                         f"({quantity.human(settings.max_mem)}): every jsub without -mem would be refused")
    if resolve_uid is not None:
        try:
            uid = resolve_uid(settings)
        except GridshimError as e:
            return Check(name="site config", level=Level.FAIL, summary=f"{summary}; {e.message}",
                         fix=e.hint or "check the site config's 'uid' setting (docs/site-config.md)")
        if uid is not None and not settings.uid.isdigit():
            summary += f" ({uid})"
        if uid is not None and namespace_uid is not None and uid != namespace_uid:
            return Check(name="site config", level=Level.FAIL,
                         summary=f"{summary}, but {namespace} runs pods only as uid {namespace_uid} (its "
                                 "gridshim.io/uid annotation): every job would be refused",
                         fix="set 'uid: namespace' in the site config (docs/site-config.md), or run the command as "
                             "the tool's own account (become <tool>)")
    details = tuple(f"volume {v.name}: {'hostPath' if v.host_path else 'nfs' if v.nfs_server else 'claim'} "
                    f"at {v.mount} (a PodSecurity 'restricted' namespace admits only claims)"
                    for v in settings.volumes if v.host_path or v.nfs_server)
    if settings.uid != "namespace":
        return Check(name="site config", level=Level.WARN, details=details,
                     summary=f"{summary}: the uid comes from {uid_source(settings.uid)}, "
                             "not from the cluster (the namespace's gridshim.io/uid annotation)",
                     fix="set 'uid: namespace' in the site config, where the admission policy gridshim-tool-uid is "
                         "deployed (docs/site-config.md, 'uid'); a job of another uid is then never submitted")
    return Check(name="site config", level=Level.OK, summary=summary, details=details)


def uid_source(policy: str) -> str:
    """Where a `uid` policy other than `namespace` takes the pods' uid from (the site config check's warning)."""
    if policy == "self":
        return "the submitting process (whoever runs the command)"
    if policy == "home-owner":
        return "the owner of $HOME, which the caller sets"
    if policy.isdigit():
        return "the site config (one fixed number)"
    return "this host's passwd database"


def check_mail(settings: Settings | None, tool: str | None) -> Check:
    """Whether jobs send -m/-M mail, and how. Only informs: no mail is a site's choice, never a failure."""
    if settings is None:
        return Check(name="job mail", level=Level.SKIP, summary="needs the site config")
    if not settings.mail_command:
        return Check(name="job mail", level=Level.OK,
                     summary="not configured: jobs send no mail for -m b|e|a (the option is recorded only; site "
                             "config 'mail', docs/site-config.md)")
    user = f"{settings.user_prefix}{tool or '{tool}'}"
    sender = (settings.mail_from or f"{user}@{settings.mail_domain}").replace("{tool}", tool or "{tool}")
    return Check(name="job mail", level=Level.OK,
                 summary=f"jobs send -m b|e|a mail with '{settings.mail_command}' in their container, from {sender}; "
                         f"default recipient {user}@{settings.mail_domain}")


def diagnose(
    *,
    connect: Callable[[], DoctorCluster],
    load_settings: Callable[[], Settings],
    cert_dates: Callable[[str | None, bytes | None], tuple[float, float] | None],
    paths: list[str],
    from_env: bool = False,
    resolve_uid: Callable[[Settings, str, DoctorCluster | None], int | None] | None = None,
    now: float,
    timer: Callable[[], float] = time.monotonic,
) -> Report:
    """Run every check in order; a check that depends on a failed one is reported as skipped."""
    cluster: DoctorCluster | None = None
    error: GridshimError | None = None
    try:
        cluster = connect()
    except GridshimError as e:
        error = e
    settings: Settings | None = None
    settings_error: GridshimError | None = None
    try:
        settings = load_settings()
    except GridshimError as e:
        settings_error = e

    checks = [check_kubeconfig(cluster, error, paths=paths, from_env=from_env)]
    reachable = False
    ns_uid: int | None = None
    uid_fn: Callable[[Settings], int | None] | None = None
    tool = cluster.tool if cluster is not None else None
    if cluster is None:
        checks += [Check(name=n, level=Level.SKIP, summary="needs a kubeconfig")
                   for n in ("certificate", "API server", "permissions", "quota")]
    else:
        checks.append(check_certificate(cluster, now=now, cert_dates=cert_dates))
        checks.append(check_reachable(cluster, timer=timer))
        reachable = checks[-1].level is Level.OK
        if reachable and hasattr(cluster, "missing_apis"):
            checks.append(check_apis(cluster))
        namespace_policy = settings is not None and settings.uid == "namespace"
        if resolve_uid is not None and tool is not None and (reachable or not namespace_policy):
            known = cluster if reachable else None
            uid_fn = lambda s: resolve_uid(s, tool, known)  # noqa: E731
        if reachable:
            # The uid the cluster binds this namespace to (absent where the site has no such annotation).
            try:
                ns_uid = namespace_uid(cluster.namespace_object())
            except GridshimError:
                ns_uid = None
            extra = (NAMESPACE_ACCESS,) if namespace_policy else ()
            access = check_access(cluster, extra=extra)
            probe_uid = ns_uid
            if probe_uid is None and uid_fn is not None and settings is not None:
                try:
                    probe_uid = uid_fn(settings)
                except GridshimError:
                    probe_uid = None  # the site config check says why
            tenancy = None
            if len(access.details) < len(REQUIRED_ACCESS) + len(extra):  # not another tool's namespace
                tenancy = check_tenancy(cluster, settings, probe_uid) if probe_uid is not None else Check(
                    name="permissions", level=Level.OK, summary="uid enforcement not tested: the tool's uid is unknown")
            checks.append(merge(access, tenancy))
            checks.append(check_quota(cluster, settings))
        else:
            checks += [Check(name=n, level=Level.SKIP, summary="needs the API server")
                       for n in ("permissions", "quota")]
    checks.append(check_settings(settings, settings_error, resolve_uid=uid_fn, namespace_uid=ns_uid,
                                 namespace=cluster.namespace if cluster else None))
    checks.append(check_mail(settings, tool))
    return Report(checks=tuple(checks), tool=tool, namespace=cluster.namespace if cluster else None)
