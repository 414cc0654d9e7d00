"""The API client's retry and lost-answer pieces that need no network (issue 7).

The behaviour against a real API server, with faults injected, is tests/e2e/test_faults.py.
"""

from __future__ import annotations

import email.utils
import json
import ssl
import time
from typing import Any

import pytest

from gridshim import cluster as C
from gridshim.errors import ClusterConfigError, ClusterError, ForbiddenError, GridshimError, QuotaExceededError
from gridshim.kube import transport as T
from gridshim.render import labels as L
from kit import FakeApi


def test_the_token_key_is_the_one_render_writes() -> None:
    assert C.TOKEN_ANNOTATION == L.A_TOKEN


def test_client_name_is_deterministic_short_and_valid() -> None:
    a = C.client_name("bot-", "0123456789abcdef")
    assert a == C.client_name("bot-", "0123456789abcdef")
    assert a.startswith("bot-") and len(a) == len("bot-") + 5
    assert C.client_name("bot-", "fedcba9876543210") != a
    long = C.client_name("x" * 57 + "-", "t")
    assert len(long) == 63 and long[:58] == "x" * 57 + "-"
    assert all(c in C._SUFFIX_ALPHABET for c in a[-5:])
    assert len({C.client_name("j-", f"{i:016x}") for i in range(2000)}) == 2000


@pytest.mark.parametrize("value,expected", [
    (None, None), ("", None), ("3", 3.0), (" 7 ", 7.0), ("soon", None), ("-1", None), ("1.5", None)])
def test_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert C.parse_retry_after(value) == expected


def test_retry_after_http_date() -> None:
    now = time.time()
    assert C.parse_retry_after(email.utils.formatdate(now + 120, usegmt=True), now=now) == pytest.approx(120, abs=1)
    assert C.parse_retry_after(email.utils.formatdate(now - 60, usegmt=True), now=now) == 0.0


@pytest.mark.parametrize("raw,expected", [(None, 30.0), ("", 30.0), ("0", 0.0), ("4.5", 4.5), ("86400", 86400.0)])
def test_retry_seconds(raw: str | None, expected: float) -> None:
    env = {} if raw is None else {"GRIDSHIM_RETRY_SECONDS": raw}
    assert C.retry_seconds(env) == expected


@pytest.mark.parametrize("raw", ["abc", "-1", "nan", "inf", "1e9"])
def test_bad_retry_seconds_is_one_clear_error(raw: str) -> None:
    with pytest.raises(ClusterConfigError) as e:
        C.retry_seconds({"GRIDSHIM_RETRY_SECONDS": raw})
    assert f"GRIDSHIM_RETRY_SECONDS={raw!r}" in str(e.value) and "unset it" in str(e.value)


def test_no_budget_means_one_attempt_and_no_sleep() -> None:
    r = C._Retry(0)
    start = time.monotonic()
    assert r.pause() is False and r.pause(retry_after=0) is False
    assert time.monotonic() - start < 0.5
    assert r.attempt_timeout() == C.TIMEOUT


def test_back_off_stays_inside_the_budget() -> None:
    r = C._Retry(1.0)
    waits = 0
    while r.pause():
        waits += 1
    assert waits >= 2  # 0.1-0.2 s, 0.2-0.4 s, …
    assert r.elapsed() <= 1.0 + 0.05
    assert r.refused_wait is None


def test_a_retry_after_beyond_the_budget_is_refused_without_waiting() -> None:
    r = C._Retry(5.0)
    assert r.pause(retry_after=3600) is False
    assert r.refused_wait == 3600 and r.elapsed() < 0.5


def test_attempt_timeout_leaves_room_for_another_attempt() -> None:
    assert C._Retry(30).attempt_timeout() == pytest.approx(15, abs=0.1)
    assert C._Retry(100).attempt_timeout() == C.TIMEOUT
    assert C._Retry(1).attempt_timeout() == C.MIN_ATTEMPT_TIMEOUT


@pytest.mark.parametrize("stored,sent,held", [
    ({"a": 1, "b": 2}, {"a": 1}, True),
    ({"a": 1}, {"a": 2}, False),
    ({"a": 1}, {"b": 1}, False),
    ({"spec": {"x": [{"n": 1, "default": True}]}}, {"spec": {"x": [{"n": 1}]}}, True),
    ({"spec": {"x": [{"n": 1}, {"n": 2}]}}, {"spec": {"x": [{"n": 1}]}}, False),
    ({"data": {"k": "v"}}, {"data": {"k": "v2"}}, False),
    ("x", {"a": 1}, False),
])
def test_holds_means_everything_sent_is_stored(stored: object, sent: object, held: bool) -> None:
    assert C._holds(stored, sent) is held


def test_tls_failures_are_sorted_into_transient_and_configuration() -> None:
    assert not C.KubeCluster._tls_config_problem(ssl.SSLEOFError(8, "EOF occurred in violation of protocol"))
    assert not C.KubeCluster._tls_config_problem(ssl.SSLZeroReturnError(6, "TLS/SSL connection has been closed"))
    bad = ssl.SSLError(1, "[SSL: SSLV3_ALERT_CERTIFICATE_EXPIRED] sslv3 alert certificate expired")
    bad.reason = "SSLV3_ALERT_CERTIFICATE_EXPIRED"  # type: ignore[misc]
    assert C.KubeCluster._tls_config_problem(bad)
    version = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    version.reason = "WRONG_VERSION_NUMBER"  # type: ignore[misc]
    assert C.KubeCluster._tls_config_problem(version)


def _cluster(tmp_path: object) -> C.KubeCluster:
    creds = C.Credentials(path="/k/config", context="c", server="https://127.0.0.1:6443", namespace="tool-x")
    return C.KubeCluster(creds, retry_seconds=0)


@pytest.mark.parametrize("raw", [b"", b"null", b"[]", b"<html>\n<b>bad\ngateway</b>\n</html>", b"\xff\xfe",
                                 json.dumps({"message": "line one\nline two", "reason": "X"}).encode()])
def test_error_messages_are_one_line_whatever_the_body(tmp_path: object, raw: bytes) -> None:
    c = _cluster(tmp_path)
    for status in (400, 401, 403, 404, 409, 422, 500, 503):
        err = c.error_for(status, raw, "GET", "/x")
        assert "\n" not in str(err), (status, str(err))


@pytest.mark.parametrize("server", ["http://127.0.0.1:1", "https://", "https://[::1", "https://h:99999", "x"])
def test_bad_server_urls_are_configuration_errors(server: str) -> None:
    creds = C.Credentials(path="/k/config", context="c", server=server, namespace="tool-x")
    with pytest.raises(ClusterConfigError, match="is not an https://HOST"):
        C.KubeCluster(creds)


# -- a just-restarted API server's 403s (issue 12) -------------------------------------------------------

class _Resp:
    def __init__(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.status, self._body, self._headers = status, body, headers or {}

    def read(self) -> bytes:
        return self._body

    def getheader(self, name: str) -> str | None:
        return self._headers.get(name)


def forbidden(text: str = 'jobs.batch is forbidden: User "x" cannot list resource "jobs" in API group "batch" '
                          'in the namespace "tool-x"') -> bytes:
    return json.dumps({"kind": "Status", "status": "Failure", "reason": "Forbidden", "code": 403,
                       "message": text}).encode()


RBAC_MISSING = ('jobs.batch is forbidden: User "x" cannot list resource "jobs" in API group "batch" in the '
                'namespace "tool-x": RBAC: clusterrole.rbac.authorization.k8s.io "gridshim-tool" not found')


class Scripted(C.KubeCluster):
    """A KubeCluster whose wire is a script: each item answers one request (a _Resp or an exception to
    raise); `fresh` says whether the request went out on a new connection (default: the first one did)."""

    def __init__(self, script: list[Any], *, budget: float = 5.0, warm: bool = False) -> None:
        creds = C.Credentials(path="/k/config", context="c", server="https://127.0.0.1:6443", namespace="tool-x")
        super().__init__(creds, retry_seconds=budget)
        self.script, self.sent, self.warm = list(script), [], warm

    def _send(self, method: str, path: str, body: Any = None, **_: Any) -> Any:  # type: ignore[override]
        self._fresh = not self.warm and (not self.sent or isinstance(self._last, BaseException))
        self.sent.append((method, path))
        self._last = item = self.script.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item

    _last: Any = None


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(C.time, "sleep", slept.append)
    return slept


def test_a_403_on_a_fresh_connection_from_a_server_that_is_not_ready_is_retried(no_sleep: list[float]) -> None:
    c = Scripted([_Resp(403, forbidden()), _Resp(403, b"forbidden: User \"x\" cannot get path \"/readyz\""),
                  _Resp(403, forbidden(RBAC_MISSING)), _Resp(500, b"[-]poststarthook/rbac/bootstrap-roles failed"),
                  _Resp(200, b'{"items": []}')])
    assert c.request("GET", "/apis/batch/v1/namespaces/tool-x/jobs") == {"items": []}
    assert [p for _, p in c.sent] == ["/apis/batch/v1/namespaces/tool-x/jobs", "/readyz"] * 2 + [
        "/apis/batch/v1/namespaces/tool-x/jobs"]
    assert len(no_sleep) == 2


def test_a_403_of_a_ready_server_is_final_at_once_with_the_wrong_kubeconfig_line(no_sleep: list[float]) -> None:
    """A wrong kubeconfig costs one GET /readyz more, not a wait: the cannot-mask guarantee."""
    c = Scripted([_Resp(403, forbidden()), _Resp(200, b"ok")])
    with pytest.raises(ForbiddenError) as e:
        c.request("GET", "/apis/batch/v1/namespaces/tool-x/jobs")
    assert str(e.value).startswith('not allowed: jobs.batch is forbidden: User "x" cannot list')
    assert e.value.hint == "is /k/config the kubeconfig of the tool that owns this?"
    assert [p for _, p in c.sent] == ["/apis/batch/v1/namespaces/tool-x/jobs", "/readyz"] and no_sleep == []


def test_a_403_on_a_kept_alive_connection_is_final_without_a_probe(no_sleep: list[float]) -> None:
    """The connection already had answers: the server cannot have restarted under it."""
    c = Scripted([_Resp(403, forbidden())], warm=True)
    with pytest.raises(ForbiddenError):
        c.request("GET", "/apis/batch/v1/namespaces/tool-x/jobs")
    assert len(c.sent) == 1 and no_sleep == []


def test_a_403_naming_a_missing_rbac_object_is_checked_even_on_a_kept_alive_connection(no_sleep: list[float]) -> None:
    c = Scripted([_Resp(403, forbidden(RBAC_MISSING)), _Resp(500, b"not ready"), _Resp(200, b"{}")], warm=True)
    assert c.request("GET", "/x") == {}
    assert [p for _, p in c.sent] == ["/x", "/readyz", "/x"]


def test_a_403_after_a_transport_failure_is_retried(no_sleep: list[float]) -> None:
    c = Scripted([ConnectionRefusedError(111, "Connection refused"), _Resp(403, forbidden()),
                  ConnectionResetError(104, "reset"), _Resp(200, b"{}")], warm=True)
    assert c.request("GET", "/x") == {}  # the /readyz probe itself was cut: not ready, so retried
    assert [p for _, p in c.sent] == ["/x", "/x", "/readyz", "/x"]


def test_a_quota_403_is_never_retried(no_sleep: list[float]) -> None:
    c = Scripted([_Resp(403, forbidden('jobs.batch "x" is forbidden: exceeded quota: q, requested: '
                                       'count/jobs.batch=1, used: count/jobs.batch=15, limited: count/jobs.batch=15'))])
    with pytest.raises(QuotaExceededError):
        c.request("POST", "/apis/batch/v1/namespaces/tool-x/jobs", {}, idempotent=True)
    assert len(c.sent) == 1


def test_no_budget_no_retry_of_a_403(no_sleep: list[float]) -> None:
    c = Scripted([_Resp(403, forbidden())], budget=0)
    with pytest.raises(ForbiddenError):
        c.request("GET", "/x")
    assert len(c.sent) == 1


def test_403s_of_a_server_that_never_gets_ready_end_after_the_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bounded even where /readyz is not readable: FORBIDDEN_WINDOW after the first 403, the wrong
    kubeconfig line, which also says that the server was not ready."""
    monkeypatch.setattr(T, "FORBIDDEN_WINDOW", 0.3)  # where the transport reads it
    c = Scripted([_Resp(403, forbidden()), _Resp(403, b"")] * 200, budget=30)
    t0 = time.monotonic()
    with pytest.raises(ForbiddenError) as e:
        c.request("GET", "/x")
    assert time.monotonic() - t0 < 2.0
    assert "was still starting (its /readyz did not answer 200)" in e.value.hint  # type: ignore[operator]
    assert e.value.hint.endswith("if it persists, is /k/config the kubeconfig of the tool that owns this?")  # type: ignore[union-attr]


def test_the_window_is_also_bounded_by_the_call_budget(no_sleep: list[float]) -> None:
    c = Scripted([_Resp(403, forbidden()), _Resp(500, b"")] * 50, budget=0.5)
    t0 = time.monotonic()
    with pytest.raises(ForbiddenError):
        c.request("GET", "/x")
    assert time.monotonic() - t0 < 1.0


def test_a_create_refused_by_a_starting_server_is_made_once(no_sleep: list[float]) -> None:
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "annotations": {C.TOKEN_ANNOTATION: "t"}}}
    made = {**job, "metadata": {**job["metadata"], "uid": "u"}}
    c = Scripted([_Resp(403, forbidden()), _Resp(500, b""), _Resp(201, json.dumps(made).encode())])
    assert c.create(job) == made
    assert [m for m, _ in c.sent] == ["POST", "GET", "POST"]


# -- crontab reconcile: 403s and outages are retried like 5xx, removed entries never stay ------------------

def _fake_cron(budget: float) -> FakeApi:
    """The crontab tests' cluster (the kit's fake API server), with the client's retry budget BUDGET."""
    from test_crontab import cluster

    c = cluster()
    c.retry_seconds = budget
    return c


RBAC_DELETE = 'cronjobs.batch "a" is forbidden: User "wikibugs" cannot delete resource "cronjobs" in API group "batch"'


def _failing(c: FakeApi, verb: str, errors: list[Exception]) -> None:
    """The next len(ERRORS) VERB calls of C on CronJobs raise them, in order."""
    for e in errors:
        c.fail(verb, e, kind="CronJob")


def test_reconcile_retries_rbac_403s_and_outages_until_the_crontab_is_exact(no_sleep: list[float],
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from gridshim import cron_ops
    from test_crontab import A, cronjobs, install, rendered

    monkeypatch.setattr(cron_ops.time, "sleep", no_sleep.append)
    c = _fake_cron(30)
    install(c, A)
    _failing(c, "delete", [ForbiddenError(f"not allowed: {RBAC_DELETE}"), ClusterError("cannot reach the API")])
    _failing(c, "create", [ClusterError("the Kubernetes API is failing (503)", status=503)])
    _failing(c, "list", [ClusterError("cannot reach the Kubernetes API: Connection refused")])
    res = install(c, "@weekly echo new\n")
    assert sorted(cronjobs(c)) == [e["manifest"]["metadata"]["name"] for e in rendered("@weekly echo new\n")]
    assert res.errors == [] and len(res.deleted) == 3
    assert no_sleep  # it paused between passes


def test_reconcile_reports_an_admission_403_at_once(no_sleep: list[float], monkeypatch: pytest.MonkeyPatch) -> None:
    from gridshim import cron_ops
    from test_crontab import install

    monkeypatch.setattr(cron_ops.time, "sleep", no_sleep.append)
    c = _fake_cron(30)
    _failing(c, "create", [ForbiddenError('not allowed: cronjobs.batch "cron-1" is forbidden: ValidatingAdmissionPolicy '
                                          "'uid' denied request")])
    res = install(c, "@weekly echo new\n")
    assert len(res.errors) == 1 and "ValidatingAdmissionPolicy" in res.errors[0] and no_sleep == []


def test_an_outage_beyond_the_patience_is_one_clear_error(no_sleep: list[float], monkeypatch: pytest.MonkeyPatch) -> None:
    from gridshim import cron_ops
    from test_crontab import A, install

    clock = [0.0]
    monkeypatch.setattr(cron_ops.time, "sleep", lambda s: clock.__setitem__(0, clock[0] + s))
    monkeypatch.setattr(cron_ops.time, "monotonic", lambda: clock[0])
    c = _fake_cron(2)
    install(c, A)
    _failing(c, "list", [ClusterError("cannot reach the Kubernetes API: Connection refused")] * 1000)
    with pytest.raises(GridshimError) as e:
        install(c, "@weekly echo new\n")
    assert cron_ops.OUTAGE_PATIENCE <= clock[0] < cron_ops.OUTAGE_PATIENCE + 6  # budget 2 s: the 10 s floor
    assert "the crontab is stored, but the Kubernetes API did not let its CronJobs be written for 10 s" in str(e.value)
    assert "CronJobs of removed entries may still be scheduled and new ones missing; run 'crontab --sync'" in str(e.value)


def test_without_a_retry_budget_reconcile_does_not_wait_either(no_sleep: list[float], monkeypatch: pytest.MonkeyPatch) -> None:
    from gridshim import cron_ops
    from test_crontab import A, install

    monkeypatch.setattr(cron_ops.time, "sleep", no_sleep.append)
    c = _fake_cron(0)
    install(c, A)
    _failing(c, "list", [ClusterError("cannot reach the Kubernetes API: Connection refused")])
    with pytest.raises(GridshimError, match="did not let its CronJobs be written: cannot reach"):
        install(c, "@weekly echo new\n")
    assert no_sleep == []


# -- list: the next page is asked for while this one is decoded -------------------------------------

def _page(names: list[str], token: str = "", rv: str = "7") -> bytes:
    meta: dict[str, Any] = {"resourceVersion": rv, **({"continue": token} if token else {})}
    return json.dumps({"kind": "JobList", "apiVersion": "batch/v1", "metadata": meta,
                       "items": [{"metadata": {"name": n, "managedFields": [{"x": 1}]}} for n in names]}).encode()


def test_continue_token_is_read_from_the_head_of_a_page() -> None:
    assert C._continue_token(_page(["a"], token="abc")) == "abc"
    assert C._continue_token(_page(["a"])) == ""
    assert C._continue_token(b'{"items":[{"a":1}],"metadata":{"continue":"x"}}') is None  # not in the head
    assert C._continue_token(b"not json") is None


class Paged(Scripted):
    def _sibling(self) -> Paged:  # the prefetch connection answers from the same script
        return self


@pytest.mark.parametrize("head_first", [True, False])
def test_list_reads_every_page_in_order_with_the_next_asked_for_ahead(head_first: bool) -> None:
    pages = [_page(["a", "b"], token="t1"), _page(["c"], token="t2"), _page(["d"], rv="9")]
    if not head_first:  # a server that writes items before metadata: the token comes from the decoded page
        pages = [json.dumps({k: v for k, v in reversed(list(json.loads(p).items()))}).encode() for p in pages]
    c = Paged([_Resp(200, p) for p in pages])
    items, rv = c.list("Job", trim=lambda o: o["metadata"])
    assert [i["name"] for i in items] == ["a", "b", "c", "d"] and rv == "9"
    assert all("managedFields" not in i for i in items)
    assert [p for _, p in c.sent][1:] == [c.path("Job", params={"limit": C.PAGE, "continue": t}) for t in ("t1", "t2")]
    assert len(c.sent) == 3


def test_a_failed_prefetch_is_the_lists_error(no_sleep: list[float]) -> None:
    c = Paged([_Resp(200, _page(["a"], token="t1")), _Resp(404, b'{"kind":"Status","code":404}')], budget=0)
    with pytest.raises(GridshimError):
        c.list("Job")
