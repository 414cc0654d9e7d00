"""The server URL and the paths' quoting without urllib.parse (kube/transport.py) read as urllib.parse does."""

from __future__ import annotations

import urllib.parse

from hypothesis import given, strategies as st

from gridshim.kube.transport import query, quote, split_server


def _urllib(url: str) -> tuple[str | None, int | None, str]:
    """The oracle: urlsplit's hostname (https only), port (-1 when it is not a port) and path."""
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:  # not a number, or out of range
        return None, -1, ""
    return parts.hostname if parts.scheme == "https" else None, port, parts.path


HOSTS = st.one_of(st.sampled_from(["127.0.0.1", "api.example.org", "API.Example.ORG", "[::1]", "[fd00::5]", "k8s", ""]),
                  st.from_regex(r"[A-Za-z0-9][A-Za-z0-9.-]{0,20}", fullmatch=True))
PORTS = st.one_of(st.just(""), st.integers(0, 70000).map(lambda p: f":{p}"), st.sampled_from([":", ":x", ":-1"]))
PATHS = st.one_of(st.just(""), st.sampled_from(["/", "/k8s/clusters/c-abc", "/a/b/", "/x?y=1", "/%41", "#f"]))
SCHEMES = st.sampled_from(["https://", "HTTPS://", "http://", "", "https:/", "https://user:pw@"])


@given(SCHEMES, HOSTS, PORTS, PATHS)
def test_the_server_url_is_read_as_urllib_reads_it(scheme: str, host: str, port: str, path: str) -> None:
    url = scheme + host + port + path
    assert split_server(url) == _urllib(url), url


@given(st.text())
def test_quote_is_urllibs_with_nothing_safe(text: str) -> None:
    assert quote(text) == urllib.parse.quote(text, safe="")


@given(st.dictionaries(st.sampled_from(["labelSelector", "fieldSelector", "limit", "continue"]),
                       st.one_of(st.text(), st.integers())))
def test_a_query_decodes_to_its_parameters(params: dict[str, object]) -> None:
    decoded = urllib.parse.parse_qs(query(params), keep_blank_values=True)
    assert decoded == {k: [str(v)] for k, v in params.items()}
