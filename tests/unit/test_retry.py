"""The API client's retry and lost-answer pieces that need no network (issue 7).

The behaviour against a real API server, with faults injected, is tests/e2e/test_faults.py.
"""

from __future__ import annotations

import email.utils
import json
import ssl
import time

import pytest

from gridshim import cluster as C
from gridshim.errors import ClusterConfigError
from gridshim.render import labels as L


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
