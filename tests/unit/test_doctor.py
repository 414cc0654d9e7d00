"""gridshim doctor: every check against a fake cluster, and the CLI's plain and coloured output."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gridshim import doctor as D
from gridshim.cli._common import Env
from gridshim.cli.gridshim import main_with
from gridshim.config import ConfigError, Settings, from_dict
from gridshim.errors import ClusterConfigError, ClusterError, ForbiddenError, GridshimError, QuotaExceededError
from kit import FakeApi

NOW = 1_800_000_000.0
DAY = 86400.0


@dataclass
class Creds:
    path: str = "/home/tool/.kube/config"
    context: str = "toolforge"
    server: str = "https://k8s.example:6443"
    namespace: str | None = "tool-demo"
    cert_file: str | None = "/home/tool/.toolskube/client.crt"
    cert_data: bytes | None = None
    token: str | None = None


def FakeCluster(*, creds: Creds | None = None, namespace: str = "tool-demo",  # capitalised: it stands for the cluster class below
                denied: set[tuple[str, str]] | None = None, quotas: list[dict[str, Any]] = (),
                ranges: list[dict[str, Any]] = (), version_error: GridshimError | None = None,
                quota_error: GridshimError | None = None, user: str | None = "demo", ns_uid: str | None = "52000",
                namespace_error: GridshimError | None = None, enforced: tuple[str, ...] = ("Pod", "Job"),
                refuse_own: GridshimError | None = None) -> FakeApi:
    """The kit's fake API server as the doctor meets it: the ResourceQuotas and LimitRanges, what access
    reviews deny, the Namespace's gridshim.io/uid annotation (NS_UID) and the uid admission policy for the
    kinds in ENFORCED as the sandbox deploys it (REFUSE_OWN: a refusal even of the tool's own uid)."""
    api = FakeApi(namespace, namespace_annotations={} if ns_uid is None else {"gridshim.io/uid": ns_uid})
    api.creds, api.user, api.denied = creds or Creds(), user, set(denied or ())
    api.seed(*[{"apiVersion": "v1", "kind": "ResourceQuota", **q} for q in quotas],
             *[{"apiVersion": "v1", "kind": "LimitRange", **r} for r in ranges])
    if version_error:
        api.fail("request", version_error)  # the doctor's first request is GET /version
    if quota_error:
        api.fail("list", quota_error, kind="ResourceQuota")
    if namespace_error:
        api.fail("get", namespace_error, kind="Namespace")

    def policy(body: dict[str, Any]) -> None:
        if refuse_own:
            raise refuse_own
        spec = body["spec"] if body["kind"] == "Pod" else body["spec"]["template"]["spec"]
        uid = spec["securityContext"]["runAsUser"]
        if body["kind"] in enforced and ns_uid is not None and str(uid) != ns_uid:
            raise ClusterError(f"refused by the cluster's admission policy gridshim-tool-uid: pods in namespace "
                               f"{namespace} run only as the tool's uid {ns_uid} (…); this "
                               f"{body['kind']} asks for runAsUser {uid}", status=422)
    return api.admit(policy)


def said(api: FakeApi) -> list[str]:
    """The doctor's requests in short: `GET /version`, `review VERB RESOURCE`, `GET namespace`, `POST PATH`."""
    out = []
    for c in api.calls:
        if c.verb == "request":
            out.append(f"{c.kind} {c.name}")
        elif c.verb == "access_review":
            out.append(f"review {c.name} {c.kind}")
        elif (c.verb, c.kind) == ("get", "Namespace"):
            out.append("GET namespace")
    return out


def stored(api: FakeApi) -> list[dict[str, Any]]:
    return api.created("Pod") + api.created("Job")


def quota(hard: dict[str, str], used: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"name": "tool-demo"}, "status": {"hard": hard, "used": used}}


def limit_range(max_: dict[str, str], min_: dict[str, str] | None = None) -> dict[str, Any]:
    return {"spec": {"limits": [{"type": "Container", "max": max_, "min": min_ or {}}]}}


TOOLFORGE_QUOTA = quota({"pods": "10", "count/jobs.batch": "15", "limits.memory": "8Gi", "limits.cpu": "2"},
                        {"pods": "3", "count/jobs.batch": "3", "limits.memory": "1536Mi", "limits.cpu": "1500m"})


def run(cluster: FakeApi | None = None, *, connect_error: GridshimError | None = None,
        settings: Settings | None = None, settings_error: GridshimError | None = None,
        dates: tuple[float, float] | None = (NOW - 10 * DAY, NOW + 355 * DAY),
        uid_error: GridshimError | None = None) -> D.Report:
    fake = cluster or FakeCluster(quotas=[TOOLFORGE_QUOTA], ranges=[limit_range({"memory": "4Gi", "cpu": "1"})])

    def connect() -> FakeApi:
        if connect_error:
            raise connect_error
        return fake

    def load() -> Settings:
        if settings_error:
            raise settings_error
        return settings or Settings(path="/etc/gridshim/config.yaml")

    def resolve_uid(s: Settings, tool: str, cluster: Any) -> int:
        if uid_error:
            raise uid_error
        return 52000

    return D.diagnose(connect=connect, load_settings=load, cert_dates=lambda path, data: dates,
                      paths=["/home/tool/.kube/config"], resolve_uid=resolve_uid, now=NOW, timer=iter([0.0, 0.012]).__next__)


def by_name(report: D.Report) -> dict[str, D.Check]:
    return {c.name: c for c in report.checks}


# A site that reads the uid from the cluster (the default 'self' gets a warning: test_uid_not_from_the_namespace_…).
NS_SITE = Settings(path="/etc/gridshim/config.yaml", uid="namespace")


def test_a_healthy_tool_passes_every_check_in_order() -> None:
    report = run(settings=NS_SITE)
    assert [c.name for c in report.checks] == ["kubeconfig", "certificate", "API server", "permissions", "quota",
                                               "site config", "job mail"]
    assert all(c.level is D.Level.OK for c in report.checks), report.checks
    assert report.ok and report.tool == "demo" and report.namespace == "tool-demo"
    checks = by_name(report)
    assert "context toolforge, namespace tool-demo" in checks["kubeconfig"].summary
    assert "355 more days" in checks["certificate"].summary
    assert "v1.36.3 (12 ms)" in checks["API server"].summary
    assert f"all {len(D.REQUIRED_ACCESS) + 1} operations" in checks["permissions"].summary  # + get namespaces
    assert "as user demo" in checks["permissions"].summary
    assert "pods 3/10" in checks["quota"].summary and "limits.memory 1.5G/8G" in checks["quota"].summary


def test_missing_kubeconfig_names_the_path_and_skips_what_needs_it() -> None:
    err = ClusterConfigError("no kubeconfig found (tried /home/tool/.kube/config)",
                             hint="run 'become <tool>' first, or set KUBECONFIG to your tool's kubeconfig")
    report = run(connect_error=err, settings=NS_SITE)
    checks = by_name(report)
    assert checks["kubeconfig"].level is D.Level.FAIL
    assert "/home/tool/.kube/config" in checks["kubeconfig"].summary and "become" in (checks["kubeconfig"].fix or "")
    for name in ("certificate", "API server", "permissions", "quota"):
        assert checks[name].level is D.Level.SKIP
    assert checks["site config"].level is D.Level.OK  # still checked
    assert not report.ok


def test_a_message_without_the_path_gets_it_added() -> None:
    check = D.check_kubeconfig(None, ClusterConfigError("kubeconfig sets no current-context"),
                               paths=["/a", "/b"], from_env=True)
    assert "(tried /a, /b (from $KUBECONFIG))" in check.summary


@pytest.mark.parametrize("dates,level,text", [
    ((NOW - 400 * DAY, NOW - 2 * DAY), D.Level.FAIL, "expired on"),
    ((NOW - 300 * DAY, NOW + 10 * DAY), D.Level.WARN, "valid for 10 more days"),
    ((NOW - 300 * DAY, NOW + 1.5 * DAY), D.Level.WARN, "valid for 1 more day "),
    ((NOW + DAY, NOW + 300 * DAY), D.Level.FAIL, "not valid before"),
    (None, D.Level.FAIL, "cannot read the client certificate"),
], ids=["expired", "expires-soon", "one-day", "not-yet-valid", "unreadable"])
def test_certificate_expiry(dates: tuple[float, float] | None, level: D.Level, text: str) -> None:
    check = by_name(run(dates=dates))["certificate"]
    assert check.level is level and text in check.summary
    assert check.fix


def test_a_certificate_warning_does_not_fail_the_run() -> None:
    report = run(dates=(NOW - 300 * DAY, NOW + 5 * DAY), settings=NS_SITE)
    assert report.ok and [c.name for c in report.problems] == ["certificate"]


def test_token_auth_has_no_certificate_to_check() -> None:
    fake = FakeCluster(creds=Creds(cert_file=None, token="t"), quotas=[TOOLFORGE_QUOTA])
    assert by_name(run(fake))["certificate"].level is D.Level.OK


def test_no_credentials_at_all_is_a_kubeconfig_problem() -> None:
    fake = FakeCluster(creds=Creds(cert_file=None))
    check = by_name(run(fake))["kubeconfig"]
    assert check.level is D.Level.FAIL and "client-certificate" in (check.fix or "")


def test_unreachable_server_fails_and_skips_the_api_checks() -> None:
    fake = FakeCluster(version_error=ClusterError("cannot reach the Kubernetes API at https://k8s.example:6443: "
                                                  "Connection refused"))
    checks = by_name(run(fake))
    assert checks["API server"].level is D.Level.FAIL and "Connection refused" in checks["API server"].summary
    assert "/home/tool/.kube/config" in (checks["API server"].fix or "")
    assert checks["permissions"].level is D.Level.SKIP and checks["quota"].level is D.Level.SKIP
    assert not any(c.startswith("review") for c in said(fake))


def test_tls_failure_keeps_the_clients_hint() -> None:
    fake = FakeCluster(version_error=ClusterConfigError("TLS handshake failed", hint="the client certificate "
                                                        "expired 2026-01-01; renew it"))
    assert "renew it" in (by_name(run(fake))["API server"].fix or "")


def test_every_operation_is_asked_once_and_denials_name_the_commands() -> None:
    fake = FakeCluster(denied={("create", "cronjobs"), ("deletecollection", "pods")}, quotas=[TOOLFORGE_QUOTA])
    check = by_name(run(fake))["permissions"]
    asked = [c for c in said(fake) if c.startswith("review")]
    assert len(asked) == len(D.REQUIRED_ACCESS) == len(set(asked))
    assert check.level is D.Level.FAIL and "2 of" in check.summary
    assert "create cronjobs (needed by crontab)" in check.details
    assert any(d.startswith("deletecollection pods") and "qdel" in d for d in check.details)
    assert "tool-demo" in (check.fix or "")


def test_nothing_allowed_means_the_wrong_tool() -> None:
    fake = FakeCluster(denied={(v, r) for v, r, _, _ in D.REQUIRED_ACCESS}, namespace="tool-other")
    check = by_name(run(fake))["permissions"]
    assert "as user demo in namespace tool-other" in (check.fix or "") and "become" in (check.fix or "")


def test_without_selfsubjectreview_the_user_is_left_out() -> None:
    fake = FakeCluster(user=None, quotas=[TOOLFORGE_QUOTA])
    check = by_name(run(fake))["permissions"]
    assert check.level is D.Level.OK and "as user" not in check.summary


def test_used_up_quota_is_a_warning_with_the_fix() -> None:
    full = quota({"pods": "10", "count/jobs.batch": "15"}, {"pods": "10", "count/jobs.batch": "7"})
    check = by_name(run(FakeCluster(quotas=[full])))["quota"]
    assert check.level is D.Level.WARN and "pods is used up (10 of 10)" in check.summary
    assert "qdel" in (check.fix or "")


def test_no_quota_and_unreadable_quota() -> None:
    assert by_name(run(FakeCluster()))["quota"].level is D.Level.OK
    fake = FakeCluster(quota_error=ForbiddenError("not allowed: resourcequotas is forbidden"))
    check = by_name(run(fake))["quota"]
    assert check.level is D.Level.WARN and "forbidden" in check.summary


@pytest.mark.parametrize("ranges,quotas,settings,text", [
    ([limit_range({"memory": "256Mi"})], [], Settings(), "default job memory (512M) is more than this namespace's "
                                                         "per-container maximum (256Mi)"),
    ([limit_range({"cpu": "250m"})], [], Settings(), "cpu.limit (500m) is more than"),
    ([limit_range({}, {"cpu": "200m"})], [], Settings(), "cpu.request (100m) is less than"),
    ([], [quota({"limits.memory": "256Mi"}, {})], Settings(), "whole limits.memory quota (256Mi)"),
], ids=["memory-max", "cpu-max", "cpu-min", "memory-quota"])
def test_limits_that_refuse_every_default_job_fail(ranges: list[Any], quotas: list[Any], settings: Settings,
                                                   text: str) -> None:
    check = by_name(run(FakeCluster(ranges=ranges, quotas=quotas), settings=settings))["quota"]
    assert check.level is D.Level.FAIL and text in " ".join((check.summary, *check.details))
    assert "memory.default" in (check.fix or "")


def test_site_config_problems() -> None:
    checks = by_name(run(settings_error=ConfigError("site config /etc/gridshim/config.yaml: unknown key(s) mem")))
    assert checks["site config"].level is D.Level.FAIL and "unknown key(s) mem" in checks["site config"].summary
    assert "docs/site-config.md" in (checks["site config"].fix or "")

    # from_dict refuses this combination; doctor still explains it for Settings made any other way
    bad = Settings(default_mem=2 * 2**30, max_mem=2**30, path="/etc/gridshim/config.yaml")
    check = by_name(run(settings=bad))["site config"]
    assert check.level is D.Level.FAIL and "memory.default (2G) is more than memory.max (1G)" in (check.fix or "")

    check = by_name(run(uid_error=GridshimError("cannot find the uid of account 'tools.demo'",
                                                 hint="check the site config's 'uid' setting")))["site config"]
    assert check.level is D.Level.FAIL and "tools.demo" in check.summary


def test_site_config_summary_and_volume_note() -> None:
    s = from_dict({"volumes": [{"name": "data", "mount": "/data/project", "hostPath": "/srv/project"},
                               {"name": "pvc", "mount": "/scratch", "claim": "scratch"}]}, path="/etc/g.yaml")
    check = by_name(run(settings=s))["site config"]
    assert check.level is D.Level.WARN and "2 volumes" in check.summary and "uid self" in check.summary
    assert len(check.details) == 1 and "restricted" in check.details[0]
    assert "built-in defaults" in by_name(run(settings=Settings()))["site config"].summary
    ns = from_dict({"uid": "namespace", "volumes": [{"name": "pvc", "mount": "/scratch", "claim": "scratch"}]},
                   path="/etc/g.yaml")
    check = by_name(run(settings=ns))["site config"]
    assert check.level is D.Level.OK and "uid namespace (52000)" in check.summary and check.details == ()


@pytest.mark.parametrize(("policy", "source"), [
    ("self", "the submitting process (whoever runs the command)"),
    ("home-owner", "the owner of $HOME, which the caller sets"),
    ("52000", "the site config (one fixed number)"),
    ("passwd:tools.{tool}", "this host's passwd database"),
])
def test_uid_not_from_the_namespace_is_a_warning_naming_its_source(policy: str, source: str) -> None:
    """Issue 12: the uid should be the cluster's answer. The admission policy refuses any other uid whatever
    the site config says, so another policy is a warning (the run still passes), never silence."""
    report = run(settings=from_dict({"uid": policy}, path="/etc/g.yaml"))
    check = by_name(report)["site config"]
    assert check.level is D.Level.WARN, check
    resolved = "" if policy.isdigit() else " (52000)"  # a number is shown as it is
    assert check.summary.endswith(f"uid {policy}{resolved}: the uid comes from {source}, not from the cluster "
                                  "(the namespace's gridshim.io/uid annotation)"), check.summary
    assert "set 'uid: namespace'" in (check.fix or "") and "docs/site-config.md" in (check.fix or "")
    assert report.ok and [c.name for c in report.problems] == ["site config"]



def test_job_mail_is_reported_and_never_fails() -> None:
    off = by_name(run())["job mail"]
    assert off.level is D.Level.OK and off.summary.startswith("not configured: jobs send no mail")
    assert "site config 'mail'" in off.summary
    on = by_name(run(settings=from_dict({"mail": {"command": "/usr/sbin/sendmail -t -i"}})))["job mail"]
    assert on.level is D.Level.OK and on.summary == (
        "jobs send -m b|e|a mail with '/usr/sbin/sendmail -t -i' in their container, from tools.demo@toolforge.org; "
        "default recipient tools.demo@toolforge.org")
    own = by_name(run(settings=from_dict({"mail": {"command": "msmtp -t", "from": "grid+{tool}@example.org"}})))
    assert "from grid+demo@example.org" in own["job mail"].summary
    broken = by_name(run(settings_error=ConfigError("site config x: mail: 'command' is required")))["job mail"]
    assert broken.level is D.Level.SKIP  # the site config check is the one that fails

# -- tenancy: the cluster must refuse another uid -------------------------------------------------------

def probes(fake: FakeApi) -> list[str]:
    return [c for c in said(fake) if "dryRun=All" in c]


def test_enforcement_is_proven_with_dry_runs_that_differ_only_in_the_uid() -> None:
    fake = FakeCluster(quotas=[TOOLFORGE_QUOTA])
    report = run(fake)
    check = by_name(report)["permissions"]
    assert report.ok and check.level is D.Level.OK, check
    assert "pods and jobs of any uid but 52000 are refused (uid 52001 tried, dry run)" in check.summary
    assert f"all {len(D.REQUIRED_ACCESS)} operations" in check.summary  # the RBAC half is still there
    assert any("Pod as uid 52001: refused by the cluster's admission policy gridshim-tool-uid" in d
               for d in check.details)
    # own uid, other uid; Pod, then Job; nothing stored
    assert probes(fake) == ["POST /api/v1/namespaces/tool-demo/pods?dryRun=All"] * 2 + [
        "POST /apis/batch/v1/namespaces/tool-demo/jobs?dryRun=All"] * 2
    assert stored(fake) == []
    own, other = D.probe("Pod", 52000, Settings()), D.probe("Pod", 52001, Settings())
    flat = repr(own).replace("52000", "52001")
    assert flat == repr(other)  # the uid is the only difference
    sc = own["spec"]["securityContext"]
    assert sc["runAsUser"] == sc["runAsGroup"] == sc["fsGroup"] == 52000 and sc["runAsNonRoot"] is True
    assert own["spec"]["containers"][0]["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    job = D.probe("Job", 52000, Settings())
    assert job["spec"]["template"]["spec"] == own["spec"]


def test_a_cluster_that_does_not_enforce_the_uid_fails() -> None:
    fake = FakeCluster(enforced=(), quotas=[TOOLFORGE_QUOTA])
    report = run(fake)
    check = by_name(report)["permissions"]
    assert not report.ok and check.level is D.Level.FAIL
    assert check.summary.startswith("the cluster accepts a Pod as uid 52001 in tool-demo (this tool's uid is 52000): "
                                    "any tool can run jobs as another tool's uid")
    assert "ValidatingAdmissionPolicy gridshim-tool-uid" in (check.fix or "")
    assert "Pod as uid 52001: accepted (dry run, nothing was created)" in check.details
    assert report.problems[0].name == "permissions" and stored(fake) == []


def test_a_site_without_the_annotation_is_probed_with_the_site_configs_uid() -> None:
    fake = FakeCluster(ns_uid=None, quotas=[TOOLFORGE_QUOTA])  # no annotation, so nothing is enforced either
    check = by_name(run(fake))["permissions"]
    assert check.level is D.Level.FAIL and "this tool's uid is 52000" in check.summary


def test_pods_refused_but_jobs_accepted_is_a_warning() -> None:
    check = by_name(run(FakeCluster(enforced=("Pod",), quotas=[TOOLFORGE_QUOTA])))["permissions"]
    assert check.level is D.Level.WARN and "Jobs of it are accepted" in check.summary
    assert "resourceRules" in (check.fix or "")


def test_jobs_alone_are_enough_when_pods_cannot_be_tried() -> None:
    fake = FakeCluster(enforced=("Job",), quotas=[TOOLFORGE_QUOTA])

    def no_pods(body: dict[str, Any]) -> None:  # RBAC refuses pods before any admission policy sees them
        if body["kind"] == "Pod":
            raise ForbiddenError('not allowed: pods is forbidden: User "demo" cannot create resource "pods"')
    fake.admit(no_pods, first=True)
    check = by_name(run(fake))["permissions"]
    assert check.level is D.Level.OK and "jobs of any uid but 52000 are refused" in check.summary
    assert any(d.startswith("Pod as uid 52000 (this tool's) is refused too") for d in check.details)


def test_when_even_the_own_uid_is_refused_nothing_is_proven() -> None:
    full = QuotaExceededError('pods "x" is forbidden: exceeded quota: tool-demo, requested: pods=1, used: pods=10')
    check = by_name(run(FakeCluster(refuse_own=full, quotas=[TOOLFORGE_QUOTA])))["permissions"]
    assert check.level is D.Level.WARN and "cannot prove now" in check.summary
    assert all("exceeded quota" in d for d in check.details)


def test_another_tools_namespace_sends_no_probe() -> None:
    fake = FakeCluster(denied={(v, r) for v, r, _, _ in D.REQUIRED_ACCESS}, namespace="tool-other")
    check = by_name(run(fake))["permissions"]
    assert check.level is D.Level.FAIL and probes(fake) == []
    assert "uid" not in check.summary


def test_uid_namespace_asks_for_get_namespaces_and_compares_nothing_else() -> None:
    fake = FakeCluster(quotas=[TOOLFORGE_QUOTA])
    report = run(fake, settings=Settings(uid="namespace", path="/etc/gridshim/config.yaml"))
    assert report.ok, report.problems
    assert "review get namespaces" in said(fake)
    assert f"all {len(D.REQUIRED_ACCESS) + 1} operations" in by_name(report)["permissions"].summary
    assert "uid namespace (52000)" in by_name(report)["site config"].summary

    fake = FakeCluster(denied={("get", "namespaces")}, quotas=[TOOLFORGE_QUOTA])
    check = by_name(run(fake, settings=Settings(uid="namespace")))["permissions"]
    assert check.level is D.Level.FAIL
    assert "get namespaces (needed by jsub, qsub, crontab (site config 'uid: namespace'))" in check.details


def test_a_site_uid_that_the_cluster_would_refuse_fails_the_site_config() -> None:
    fake = FakeCluster(ns_uid="52007", quotas=[TOOLFORGE_QUOTA])  # resolve_uid says 52000
    report = run(fake)
    checks = by_name(report)
    assert checks["permissions"].level is D.Level.OK and "any uid but 52007" in checks["permissions"].summary
    site = checks["site config"]
    assert site.level is D.Level.FAIL
    assert "uid self (52000), but tool-demo runs pods only as uid 52007" in site.summary
    assert "every job would be refused" in site.summary and "uid: namespace" in (site.fix or "")


def test_uid_namespace_without_the_api_server_is_not_a_second_failure() -> None:
    fake = FakeCluster(version_error=ClusterError("cannot reach the Kubernetes API at https://k8s.example:6443"))
    calls: list[Any] = []

    def connect() -> FakeApi:
        return fake

    report = D.diagnose(connect=connect, load_settings=lambda: Settings(uid="namespace"),
                        cert_dates=lambda p, d: (NOW - DAY, NOW + 100 * DAY), paths=["/k"],
                        resolve_uid=lambda s, t, c: calls.append(c) or 1, now=NOW, timer=iter([0.0, 0.1]).__next__)
    checks = by_name(report)
    assert checks["API server"].level is D.Level.FAIL and checks["site config"].level is D.Level.OK
    assert calls == [] and probes(fake) == [] and "GET namespace" not in said(fake)


# -- the CLI ---------------------------------------------------------------------------------------

class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def cli(argv: list[str], environ: dict[str, str], stdout: io.StringIO | None = None) -> tuple[int, str, str]:
    out, err = stdout or io.StringIO(), io.StringIO()
    env = Env(stdout=out, stderr=err, stdin=io.StringIO(), environ=environ, cwd="/", clock=lambda: NOW)
    code = main_with(env, argv)
    return code, out.getvalue(), err.getvalue()


def test_cli_missing_kubeconfig_is_plain_text_and_exit_1(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "config"
    code, out, _ = cli(["doctor"], {"KUBECONFIG": str(missing), "HOME": str(tmp_path),
                                    "GRIDSHIM_CONFIG": str(tmp_path / "none.yaml")})
    assert code == 1
    assert "\x1b[" not in out
    assert "FAIL  kubeconfig" in out and str(missing) in out and "fix: run 'become <tool>'" in out
    assert "FAIL  site config  site config" in out and "does not exist" in out
    assert out.rstrip().endswith("2 problems: kubeconfig, site config.")


def test_cli_colour_only_on_a_terminal_without_no_color(tmp_path: Path) -> None:
    environ = {"KUBECONFIG": str(tmp_path / "nope"), "HOME": str(tmp_path), "TERM": "xterm"}
    _, out, _ = cli(["doctor"], environ, stdout=Tty())
    assert "\x1b[" in out
    _, out, _ = cli(["doctor"], {**environ, "NO_COLOR": "1"}, stdout=Tty())
    assert "\x1b[" not in out
    _, out, _ = cli(["doctor"], {**environ, "TERM": "dumb"}, stdout=Tty())
    assert "\x1b[" not in out


def DiscoveringCluster() -> FakeApi:
    """A FakeCluster with discovery: its `missing` lists what its API server does not serve."""
    api = FakeCluster()
    api.missing = []  # type: ignore[attr-defined]
    api.missing_apis = lambda: list(api.missing)  # type: ignore[attr-defined]
    return api


def test_the_api_groups_gridshim_needs_are_checked_after_the_server_answers() -> None:
    report = run(DiscoveringCluster())
    names = [c.name for c in report.checks]
    assert names[:4] == ["kubeconfig", "certificate", "API server", "API groups"] and report.ok
    assert by_name(report)["API groups"].summary == "batch/v1 jobs and cronjobs are served"


def test_a_server_without_cronjobs_fails_the_doctor_naming_crontab() -> None:
    c = DiscoveringCluster()
    c.missing = [("batch/v1", "cronjobs", "crontab")]
    report = run(c)
    check = by_name(report)["API groups"]
    assert check.level is D.Level.FAIL and not report.ok
    assert "batch/v1 cronjobs (needed by crontab)" in check.summary and "--runtime-config" in (check.fix or "")
