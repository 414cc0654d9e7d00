"""Transport: connections, TLS, proxies, retries and the one error funnel (every request goes out here).

`Transport` is one API server reached with one identity (`auth.Auth`). A request is attempted until it
succeeds, gets a definite answer, or its retry budget ends (`_call`); every answer that is not a success
becomes a gridshim error in `error_for`, and every transport failure one line in `_gave_up`. Proxies
follow kubectl: the cluster's proxy-url, else HTTPS_PROXY/https_proxy minus NO_PROXY/no_proxy (Go's
ProxyFromEnvironment rules), through an HTTP CONNECT tunnel. tls-server-name sets SNI and the name the
server's certificate must carry. The server's Warning headers go to stderr once each, as kubectl shows
them. Writes (POST, PUT, PATCH) ask for fieldValidation=Strict, so a field the server does not know is
an error rather than silently dropped.
"""

from __future__ import annotations

import json
import os
import random
import re
import socket
import ssl
import sys
import time

import gridshim.kube.http11 as http11
from gridshim.errors import (
    ClusterConfigError,
    ClusterError,
    ConflictError,
    ForbiddenError,
    GridshimError,
    JobExistsError,
    JobNotFoundError,
    QuotaExceededError,
)
from gridshim.kube.auth import Auth, memfile
from gridshim.kube.config import Credentials

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up, docs/performance.md)
if TYPE_CHECKING:
    from typing import Any

# Transient failures (connection reset or refused, timeouts, 429, 5xx) are retried with jittered
# exponential back-off for at most this long in total (GRIDSHIM_RETRY_SECONDS), then the user gets
# one clear line. Idempotent calls retry freely; creates only when the manifest carries a client
# token (see `KubeCluster.create`), because a POST whose answer was lost may have happened.
DEFAULT_RETRY_SECONDS = 30.0
RETRY_STATUSES = (429, 500, 502, 503, 504)
TIMEOUT = 30.0  # one attempt's socket timeout when nothing is retried
MIN_ATTEMPT_TIMEOUT = 2.0  # a retried call's attempts get half the budget left, but at least this long
FIRST_DELAY, MAX_DELAY = 0.1, 5.0  # back-off: 0.1 s doubling up to 5 s, each with up to +100 % jitter (capped)
# A kube-apiserver that has just started answers 403 to everyone for about a second, until its RBAC
# informers have synced (its /readyz is not 200 until then). A 403 is retried like a 5xx only when it
# can be that: it came on a connection opened for this attempt, or after a transport failure of the same
# call, or it names an RBAC object that was not found; and only while /readyz (asked on the same
# connection) is not 200, and for at most FORBIDDEN_WINDOW seconds after the first such 403 of the call.
# A ready server's 403 is final at once (one extra GET /readyz): a wrong kubeconfig is still told at once.
FORBIDDEN_WINDOW = 10.0
_RBAC_MISSING = r'RBAC: .*\brbac\.authorization\.k8s\.io "[^"]*" not found'  # compiled on first use
# TLS failures that are about certificates or configuration, not a dropped connection: never retried.
_TLS_CONFIG_REASONS = ("ALERT", "CERTIFICATE", "WRONG_VERSION_NUMBER", "UNKNOWN_PROTOCOL", "NO_PROTOCOLS",
                       "HTTP_REQUEST", "KEY_VALUES_MISMATCH", "UNSUPPORTED_PROTOCOL")


def retry_seconds(environ: dict[str, str] | os._Environ[str] | None = None) -> float:
    """The total retry budget from GRIDSHIM_RETRY_SECONDS (default 30 s); 0 disables retries."""
    raw = (os.environ if environ is None else environ).get("GRIDSHIM_RETRY_SECONDS", "").strip()
    if not raw:
        return DEFAULT_RETRY_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 86400:  # also false for nan
        raise ClusterConfigError(f"GRIDSHIM_RETRY_SECONDS={raw!r} is not a number of seconds between 0 and 86400",
                                 hint="unset it for the default of 30 s")
    return value


def _lenient_retry_seconds() -> float:
    try:
        return retry_seconds()
    except ClusterConfigError:
        return DEFAULT_RETRY_SECONDS


RETRY_BUDGET = _lenient_retry_seconds()  # the process default; KubeCluster.from_kubeconfig reads its environ


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    import email.utils  # noqa: PLC0415  (only for an HTTP-date Retry-After: it imports datetime and more)

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class _Retry:
    """One logical call's attempts: jittered exponential back-off inside a total time budget."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.start = time.monotonic()
        self.deadline = self.start + seconds
        self.delay = FIRST_DELAY
        self.attempts = 0
        self.ambiguous = False  # an earlier attempt may have reached the server (its answer was lost)
        self.last = ""  # what the last failure was, for the final message
        self.refused_wait: float | None = None  # a Retry-After longer than the budget left
        self.transport_failed = False  # an earlier attempt of this call failed before any answer
        self.forbidden_since: float | None = None  # when the first possibly transient 403 came
        self.not_ready = False  # the last 403 came from an API server whose /readyz was not 200
        self.reauthenticated = False  # a 401 made the credentials be fetched again

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def attempt_timeout(self) -> float:
        """Half the budget left (so a hung attempt still leaves time for another), within [2 s, 30 s]."""
        if self.seconds <= 0:
            return TIMEOUT
        return min(TIMEOUT, max(MIN_ATTEMPT_TIMEOUT, (self.deadline - time.monotonic()) / 2))

    def pause(self, retry_after: float | None = None) -> bool:
        """Sleep before the next attempt; False (without sleeping) when the budget does not allow one."""
        wait = min(self.delay * (1 + random.random()), MAX_DELAY)
        if retry_after is not None:
            wait = max(wait, retry_after)
        if time.monotonic() + wait > self.deadline:
            self.refused_wait = retry_after
            return False
        time.sleep(wait)
        self.delay = min(self.delay * 2, MAX_DELAY)
        return True


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"



def _decode_cert(path: str | None, data: bytes | None) -> dict[str, Any] | None:
    try:
        p = path or (memfile(data) if data else None)
        if not p:
            return None
        return ssl._ssl._test_decode_cert(p)  # type: ignore[attr-defined,no-any-return]  # stdlib's own decoder
    except (OSError, ValueError, ssl.SSLError):
        return None


def cert_dates(path: str | None, data: bytes | None) -> tuple[float, float] | None:
    """(notBefore, notAfter) of the client certificate, for expiry messages (stdlib only)."""
    info = _decode_cert(path, data)
    try:
        return (ssl.cert_time_to_seconds(info["notBefore"]), ssl.cert_time_to_seconds(info["notAfter"])) \
            if info else None
    except (ValueError, KeyError):
        return None


def _dn(name: Any) -> str:
    """ssl's decoded subject/issuer (tuples of RDNs) → 'CN=x,O=y'."""
    try:
        return ",".join(f"{k}={v}" for rdn in name for k, v in rdn).replace("commonName", "CN") \
            .replace("organizationName", "O")
    except (TypeError, ValueError):
        return ""



# -- proxies -----------------------------------------------------------------------------------------

class ProxyError(OSError):
    """The proxy could not be reached or cut the tunnel: transient, retried, and named in the last line."""

    def __init__(self, proxy: str, what: str) -> None:
        super().__init__(what)
        self.proxy, self.what = proxy, what

    def __str__(self) -> str:
        return f"through the proxy {self.proxy}: {self.what}"


def _proxy_env(environ: Any, *names: str) -> str:
    for n in names:
        value = environ.get(n)
        if value:
            return str(value)
    return ""


def proxy_for(host: str, port: int, environ: Any = None) -> str | None:
    """The proxy kubectl would use for https://HOST:PORT from the environment (Go's ProxyFromEnvironment):
    HTTPS_PROXY or https_proxy, unless NO_PROXY or no_proxy excludes the host. localhost and loopback
    addresses never go through one; a NO_PROXY entry is '*', a CIDR, an IP or host with an optional port,
    or a domain ('foo.com' and '.foo.com' match its subdomains, the first also foo.com itself)."""
    env = os.environ if environ is None else environ
    proxy = _proxy_env(env, "HTTPS_PROXY", "https_proxy")
    if not proxy:
        return None
    host = host.lower().strip("[]")
    if host == "localhost":
        return None
    ip = _ip(host)
    if ip is not None and ip.is_loopback:
        return None
    no_proxy = _proxy_env(env, "NO_PROXY", "no_proxy")
    if no_proxy and _excluded(host, str(port), ip, no_proxy):
        return None
    if "://" not in proxy:
        proxy = "http://" + proxy  # Go reads a bare host:port as an http:// proxy
    return proxy


def _ip(text: str) -> Any:
    if not text or not (text[0].isdigit() or ":" in text):
        return None
    import ipaddress  # noqa: PLC0415  (only when a proxy is set and the host looks like an address)

    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _excluded(host: str, port: str, ip: Any, no_proxy: str) -> bool:
    for entry in no_proxy.split(","):
        p = entry.strip().lower()
        if not p:
            continue
        if p == "*":
            return True
        if "/" in p:
            import ipaddress  # noqa: PLC0415

            try:
                net = ipaddress.ip_network(p, strict=False)
            except ValueError:
                net = None
            if net is not None:
                if ip is not None and ip in net:
                    return True
                continue
        phost, pport = p, ""
        if p.startswith("["):
            close = p.find("]")
            phost, rest = p[1:close], p[close + 1:]
            pport = rest[1:] if rest.startswith(":") else ""
        elif p.count(":") == 1:
            phost, pport = p.split(":")
        if not phost:
            continue
        pip = _ip(phost)
        if pip is not None:
            if ip is not None and pip == ip and pport in ("", port):
                return True
            continue
        if phost.startswith("*."):
            phost = phost[1:]
        match_host = not phost.startswith(".")
        if match_host:
            phost = "." + phost
        if (host.endswith(phost) or (match_host and host == phost[1:])) and pport in ("", port):
            return True
    return False


# The usual server URL, read without urllib.parse (it imports ipaddress: ~1.4 ms of every command,
# docs/performance.md): https://, a host name or [IPv6] address, an optional port and path. Anything else
# (user info, a query, odd characters) is read by urllib.parse, as before.
_SERVER = re.compile(r"https://([A-Za-z0-9][A-Za-z0-9.-]*|\[[0-9A-Fa-f:.]+\])(?::([0-9]{1,5}))?(/[A-Za-z0-9._~/-]*)?")
# RFC 3986's unreserved characters: what urllib.parse.quote(text, safe="") leaves as it is
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


def split_server(url: str) -> tuple[str | None, int | None, str]:
    """(host, port or None, path) of an https:// server URL, as urllib.parse.urlsplit's hostname, port and
    path; host None when it is not https:// or has no host, port -1 when the port is not a port."""
    m = _SERVER.fullmatch(url)
    if m and (m.group(2) is None or int(m.group(2)) <= 65535):
        host = m.group(1).lower()
        return host[1:-1] if host.startswith("[") else host, int(m.group(2)) if m.group(2) else None, m.group(3) or ""
    import urllib.parse  # noqa: PLC0415  (an unusual URL: the standard reading)

    try:
        u = urllib.parse.urlsplit(url)
        port = u.port
    except ValueError:
        return None, -1, ""
    return (u.hostname if u.scheme == "https" else None), port, u.path


def quote(text: str) -> str:
    """urllib.parse.quote(TEXT, safe=""): UTF-8 bytes other than the unreserved ones as %XX."""
    data = text.encode("utf-8", "surrogateescape")
    if all(b in _UNRESERVED for b in data):
        return text
    return "".join(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in data)


def query(params: dict[str, Any]) -> str:
    """A query string of PARAMS (values as str), each part quoted as `quote` does (a space is %20)."""
    return "&".join(f"{quote(str(k))}={quote(str(v))}" for k, v in params.items())


class Proxy:
    """An http:// proxy that opens a CONNECT tunnel to the API server (credentials from its URL, if any)."""

    def __init__(self, url: str, where: str) -> None:
        import urllib.parse  # noqa: PLC0415  (only a configured proxy is read with it)

        try:
            u = urllib.parse.urlsplit(url)
            port = u.port
        except ValueError:
            u, port = urllib.parse.urlsplit(""), None
        shown = url.split("@")[-1] if "@" in url else url
        if u.scheme in ("socks5", "socks5h", "socks4", "socks"):
            raise ClusterConfigError(f"{where}: the proxy {shown} is a SOCKS proxy, which gridshim does not speak",
                                     hint="use an http:// proxy (HTTP CONNECT), or unset it")
        if u.scheme == "https":
            raise ClusterConfigError(f"{where}: the proxy {shown} is an https:// proxy, which gridshim does not "
                                     "speak", hint="use its http:// address (the tunnel to the API server is "
                                                   "TLS already)")
        if u.scheme != "http" or not u.hostname:
            raise ClusterConfigError(f"{where}: the proxy {shown!r} is not an http://HOST[:PORT] URL",
                                     hint="fix it (kubectl's rules: proxy-url, else HTTPS_PROXY and NO_PROXY)")
        self.host, self.port = u.hostname, port or 80
        self.shown = f"http://{self.host}:{self.port}"
        self.auth = None
        if u.username is not None:
            import base64  # noqa: PLC0415

            pair = f"{urllib.parse.unquote(u.username)}:{urllib.parse.unquote(u.password or '')}"
            self.auth = "Basic " + base64.b64encode(pair.encode()).decode()

    def tunnel(self, host: str, port: int, timeout: float | None) -> socket.socket:
        """A socket to HOST:PORT through the proxy; ProxyError when it is down or cuts us off,
        ClusterConfigError when it refuses the tunnel (an answer, not a fault)."""
        try:
            sock = socket.create_connection((self.host, self.port), timeout)
        except OSError as e:
            raise ProxyError(self.shown, e.strerror or str(e) or type(e).__name__) from None
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}", "User-Agent: gridshim/0.1"]
        if self.auth:
            lines.append(f"Proxy-Authorization: {self.auth}")
        try:
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(4096)
                if not chunk:
                    raise ProxyError(self.shown, "the proxy closed the connection without an answer")
                head += chunk
                if len(head) > 65536:
                    raise ProxyError(self.shown, "the proxy's answer has no end")
        except ProxyError:
            sock.close()
            raise
        except OSError as e:
            sock.close()
            raise ProxyError(self.shown, e.strerror or str(e) or type(e).__name__) from None
        status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit() or not 200 <= int(parts[1]) < 300:
            sock.close()
            hint = ("the proxy wants credentials: put them in its URL (http://USER:PASSWORD@HOST:PORT)"
                    if len(parts) > 1 and parts[1] == "407" else
                    "check the proxy (proxy-url, or HTTPS_PROXY and NO_PROXY)")
            raise ClusterConfigError(f"the proxy {self.shown} refused the tunnel to {target}: "
                                     f"{_one_line(status_line, 120)}", hint=hint)
        return sock


class _Connection(http11.HTTPSConnection):
    """An HTTPS connection whose TCP leg may go through a proxy, and whose TLS names the tls-server-name."""

    def __init__(self, host: str, port: int, *, context: ssl.SSLContext, timeout: float,
                 server_name: str | None, proxy: Proxy | None) -> None:
        super().__init__(host, port, context=context, timeout=timeout)
        self._server_name, self._proxy, self._tls_context = server_name, proxy, context

    def connect(self) -> None:
        if self._proxy is None:
            sock = socket.create_connection((self.host, self.port), self.timeout)
        else:
            sock = self._proxy.tunnel(self.host, self.port, self.timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        try:
            self.sock = self._tls_context.wrap_socket(sock, server_hostname=self._server_name or self.host)
        except BaseException:
            sock.close()
            raise


class _Headers(dict):
    """Request headers where a name may repeat (Impersonate-Group), for http.client's request()."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        super().__init__(pairs)
        self.pairs = pairs

    def items(self) -> Any:
        return list(self.pairs)


# Warning headers already shown by this process (kubectl shows each once).
_WARNED: set[str] = set()
_WARNING = r'^\s*(\d{3})\s+\S+\s+"((?:[^"\\]|\\.)*)"'  # compiled on first use
WRITES = ("POST", "PUT", "PATCH")


def warnings_of(values: list[str]) -> list[str]:
    """The texts of RFC 7234 Warning header values with code 299, as kubectl shows them."""
    out = []
    for value in values:
        m = re.match(_WARNING, value)
        if m and m.group(1) == "299":
            out.append(re.sub(r"\\(.)", r"\1", m.group(2)))
    return out


def show_warning(text: str) -> None:
    if text in _WARNED:
        return
    _WARNED.add(text)
    try:
        print(f"Warning: {text}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


class Transport:
    """One API server reached with one identity: connections, TLS, proxy, retries, the error funnel."""

    def __init__(self, creds: Credentials, *, retry_seconds: float | None = None, auth: Auth | None = None,
                 environ: Any = None) -> None:
        self.creds = creds
        host, port, path = split_server(creds.server)
        if not host or port == -1:
            raise ClusterConfigError(f"kubeconfig {creds.path}: server {creds.server!r} is not an "
                                     "https://HOST[:PORT] URL",
                                     hint="fix the cluster's server entry")
        self._host, self._port = host, port or 443
        self._prefix = path.rstrip("/")
        self._environ = os.environ if environ is None else environ
        self.auth = auth or Auth(creds, environ=self._environ)
        self._proxy: Proxy | None | bool = False  # False: not worked out yet
        self._conn: http11.HTTPSConnection | None = None
        self._fresh = True  # the last attempt went out on a connection opened for it
        self._ctx: ssl.SSLContext | None = None
        self._ctx_generation = 0
        self.round_trips = 0
        self.retry_seconds = RETRY_BUDGET if retry_seconds is None else retry_seconds
        self.on_warning = show_warning

    # -- connections ---------------------------------------------------------------------------------

    def proxy(self) -> Proxy | None:
        """The proxy to the API server: the cluster's proxy-url, else the environment's (kubectl's rules)."""
        if self._proxy is False:
            c = self.creds
            if c.proxy_url:
                self._proxy = Proxy(c.proxy_url, f"kubeconfig {c.path}: proxy-url")
            else:
                url = proxy_for(self._host, self._port, self._environ)
                self._proxy = Proxy(url, "HTTPS_PROXY") if url else None
        return self._proxy  # type: ignore[return-value]

    def _context(self) -> ssl.SSLContext:
        if self._ctx is not None and self.auth.needs_new_context(self._ctx_generation):
            self.close()
            self._ctx = None
        if self._ctx is None:
            c = self.creds
            try:
                # Only the CA the kubeconfig names: loading the system trust store as well (a second
                # create_default_context()) cost 28-42 ms per command (docs/performance.md).
                if c.insecure:
                    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
                else:
                    ctx = ssl.create_default_context(cafile=c.ca_file, cadata=c.ca_data)
            except (OSError, ssl.SSLError, ValueError) as e:
                raise ClusterConfigError(f"kubeconfig {c.path}: cannot load the certificate-authority "
                                         f"({getattr(e, 'strerror', None) or e})",
                                         hint="check the cluster's certificate-authority entry") from None
            pair = self.auth.client_cert()
            try:
                if pair is not None:
                    ctx.load_cert_chain(*pair)
            except (OSError, ssl.SSLError, ValueError) as e:
                what = "the exec plugin's" if self.auth.uses_exec and c.exec_spec else "the"
                raise ClusterConfigError(f"kubeconfig {c.path}: cannot load {what} client certificate/key "
                                         f"({getattr(e, 'strerror', None) or e})",
                                         hint="check the client-certificate and client-key entries") from None
            self._ctx = ctx
            self._ctx_generation = self.auth.generation
        return self._ctx

    def _new_connection(self, timeout: float) -> http11.HTTPSConnection:
        ctx = self._context()
        return _Connection(self._host, self._port, context=ctx, timeout=timeout,
                           server_name=self.creds.tls_server_name, proxy=self.proxy())

    def _connection(self, timeout: float) -> http11.HTTPSConnection:
        if self._conn is not None and self.auth.needs_new_context(self._ctx_generation):
            self.close()
        if self._conn is None:
            self._conn = self._new_connection(timeout)
        else:
            self._conn.timeout = timeout
            if self._conn.sock is not None:
                self._conn.sock.settimeout(timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _headers(self) -> _Headers:
        return _Headers([("Accept", "application/json"), ("User-Agent", "gridshim/0.1"), *self.auth.headers()])

    def _url(self, method: str, path: str) -> str:
        if method in WRITES and path.startswith(("/api/", "/apis/")):
            path += ("&" if "?" in path else "?") + "fieldValidation=Strict"
        return self._prefix + path

    def _warn(self, resp: Any) -> None:
        headers = getattr(resp, "headers", None)
        values = headers.get_all("Warning") if headers is not None and hasattr(headers, "get_all") else None
        for text in warnings_of(values or []):
            self.on_warning(text)

    def _send(self, method: str, path: str, body: Any = None, *, content_type: str = "application/json",
              timeout: float = TIMEOUT) -> http11.Response:
        """One attempt. Certificate and TLS-configuration failures become ClusterConfigError at once;
        transport failures (reset, refused, timeout, a TLS stream cut short) propagate as OSError or
        HTTPException, with the connection closed, for the caller to retry."""
        headers = self._headers()
        data = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = content_type
            headers.pairs.append(("Content-Type", content_type))
        # a connection opened for this attempt (the first of the process, or after a failure) may meet a
        # server that has just started; a kept-alive one that answered before cannot (see FORBIDDEN_WINDOW)
        self._fresh = self._conn is None or self._conn.sock is None
        conn = self._connection(timeout)
        self.round_trips += 1
        try:
            conn.request(method, self._url(method, path), body=data, headers=headers)
            resp = conn.getresponse()
        except ssl.SSLCertVerificationError as e:
            self.close()
            raise self._verify_error(e) from None
        except ssl.SSLError as e:
            self.close()
            if self._tls_config_problem(e):
                raise self._tls_error(e) from None
            raise
        except (OSError, http11.HTTPException):
            self.close()
            raise
        self._warn(resp)
        return resp

    def _verify_error(self, e: ssl.SSLCertVerificationError) -> ClusterConfigError:
        if e.verify_code in (9, 10):  # X509_V_ERR_CERT_NOT_YET_VALID / CERT_HAS_EXPIRED
            return ClusterConfigError(f"cannot verify the API server {self.creds.server}: {e.verify_message}",
                                      hint="check this machine's clock (date); if it is right, the server's "
                                           "certificate is outside its validity")
        name = self.creds.tls_server_name
        if e.verify_code == 62 or "mismatch" in str(e.verify_message).lower():  # X509_V_ERR_HOSTNAME_MISMATCH
            hint = (f"the server's certificate is not for {name!r} (tls-server-name in {self.creds.path})" if name else
                    f"the server's certificate is not for {self._host!r}: if it is known by another name, set "
                    f"tls-server-name in {self.creds.path}'s cluster entry")
            return ClusterConfigError(f"cannot verify the API server {self.creds.server}: {e.verify_message}",
                                      hint=hint)
        return ClusterConfigError(f"cannot verify the API server {self.creds.server}: {e.verify_message}",
                                  hint=f"check certificate-authority in {self.creds.path}; it must be the CA "
                                       "of the cluster named by server")

    @staticmethod
    def _tls_config_problem(e: ssl.SSLError) -> bool:
        if isinstance(e, (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError, ssl.SSLWantReadError,
                          ssl.SSLWantWriteError)):
            return False  # the connection was cut: transient
        reason = str(getattr(e, "reason", None) or e).upper()
        return any(r in reason for r in _TLS_CONFIG_REASONS)

    def _tls_error(self, e: ssl.SSLError) -> GridshimError:
        reason = getattr(e, "reason", None) or str(e)
        hint = self._cert_hint() or (f"the API server refused the client certificate in {self.creds.path}; "
                                     "it may be revoked or issued by another cluster's CA: get a new kubeconfig "
                                     "for this cluster")
        return ClusterConfigError(f"TLS handshake with {self.creds.server} failed ({reason})", hint=hint)

    def _cert_hint(self) -> str | None:
        """Why the client certificate is probably refused, from the certificate itself (None if no reason found)."""
        c = self.creds
        info = _decode_cert(c.cert_file, c.cert_data)
        if info is None:
            return None
        dates = cert_dates(c.cert_file, c.cert_data)
        now = time.time()
        if dates and now > dates[1]:
            return (f"the client certificate in {c.path} expired "
                    f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(dates[1]))}; renew it (Toolforge renews "
                    "tool certificates itself; if it stays expired, ask the admins) and try again")
        if dates and now < dates[0]:
            return (f"the client certificate in {c.path} is not valid before "
                    f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(dates[0]))}; check this machine's clock "
                    "(date -u) or wait until then")
        ca = _decode_cert(c.ca_file, c.ca_data.encode() if c.ca_data else None)
        issuer = _dn(info.get("issuer"))
        if ca and issuer and issuer != _dn(ca.get("subject")):
            return (f"the client certificate in {c.path} was issued by '{issuer}', not by this cluster's CA "
                    f"'{_dn(ca.get('subject'))}'; get a kubeconfig issued for this cluster")
        return None

    def request(self, method: str, path: str, body: Any = None, *, content_type: str = "application/json",
                idempotent: bool | None = None) -> Any:
        """One API call with the error funnel; idempotent calls retry transient failures within the budget."""
        retry = method in ("GET", "PUT", "DELETE") if idempotent is None else idempotent
        return self._call(method, path, body, content_type=content_type,
                          attempts=_Retry(self.retry_seconds if retry else 0))

    def _call(self, method: str, path: str, body: Any = None, *, content_type: str = "application/json",
              attempts: _Retry, decode: bool = True) -> Any:
        """Attempt until success, a definite answer, or the end of ATTEMPTS' budget (0: one attempt).

        ATTEMPTS records whether an earlier attempt may have reached the server, so callers that
        write can recognise their own write after a lost answer."""
        r = attempts
        while True:
            r.attempts += 1
            try:
                resp = self._send(method, path, body, content_type=content_type, timeout=r.attempt_timeout())
                raw = resp.read()
            except (OSError, http11.HTTPException) as e:
                self.close()
                r.ambiguous = r.ambiguous or not isinstance(e, ConnectionRefusedError)
                r.transport_failed = True
                r.last = self._describe(e)
                if r.pause():
                    continue
                raise self._gave_up(r) from None
            status = resp.status
            if status == 401 and not r.reauthenticated and self.auth.refresh():
                r.reauthenticated = True  # new credentials (the plugin run again): once per call
                self.close()
                r.attempts -= 1
                continue
            if status < 300:
                if not decode:
                    return raw
                try:
                    return json.loads(raw) if raw else None
                except ValueError:
                    raise ClusterError(f"the API server {self.creds.server} answered {method} with something "
                                       "that is not JSON", hint=f"is server in {self.creds.path} a Kubernetes API?",
                                       status=status, detail=_one_line(raw.decode(errors="replace"))) from None
            if status in RETRY_STATUSES and r.seconds > 0:
                r.ambiguous = r.ambiguous or status not in (429, 503)  # refused before anything was done
                r.last = f"{status} {http11.reason_phrase(status)}".strip()
                if r.pause(parse_retry_after(resp.getheader("Retry-After"))):
                    continue
                err = self.error_for(status, raw, method, path)
                raise self._gave_up(r, err) from None
            if status == 403 and r.seconds > 0 and self._starting(r, raw):
                r.last = "403 Forbidden from an API server that is not ready yet"
                if r.pause():
                    continue
            err = self.error_for(status, raw, method, path)
            if status == 403 and r.not_ready and isinstance(err, ForbiddenError):
                err.hint = (f"the API server at {self.creds.server} was still starting (its /readyz did not answer "
                            f"200) for {r.elapsed():.0f} s: try again; if it persists, {err.hint}")
            raise err

    def _starting(self, r: _Retry, raw: bytes) -> bool:
        """Whether a 403 may be a just-started API server's, whose RBAC cache is not loaded yet (retried).

        Only a 403 on a connection opened for this attempt, after a transport failure of this call, in a
        run of such 403s, or naming an RBAC object that was not found; then only while the server's
        /readyz is not 200, and for at most FORBIDDEN_WINDOW seconds from the first. A ready server's
        403 is final: a wrong kubeconfig costs one GET /readyz more, not a retry budget."""
        try:
            text = str((json.loads(raw) or {}).get("message") or "")
        except (ValueError, AttributeError):
            text = raw.decode(errors="replace")
        if "exceeded quota" in text:
            return False  # the quota's answer, final (QuotaExceededError)
        if self.creds.impersonate and "cannot impersonate" in text:
            return False  # RBAC's answer to as: (every request of ours, /readyz too, would get it): final
        if not (self._fresh or r.transport_failed or r.forbidden_since is not None or re.search(_RBAC_MISSING, text)):
            return False
        now = time.monotonic()
        if r.forbidden_since is None:
            r.forbidden_since = now
        if now - r.forbidden_since > FORBIDDEN_WINDOW:
            return False
        r.not_ready = not self._ready()
        return r.not_ready

    def _ready(self) -> bool:
        """GET /readyz on the same connection: True only for 200 (a starting server answers 500, or 403)."""
        try:
            resp = self._send("GET", "/readyz", timeout=MIN_ATTEMPT_TIMEOUT)
            resp.read()
        except (OSError, http11.HTTPException):
            self.close()
            return False
        except GridshimError:
            return False
        return resp.status == 200

    @staticmethod
    def _describe(e: BaseException) -> str:
        if isinstance(e, ProxyError):
            return str(e)
        if isinstance(e, (socket.timeout, TimeoutError)):
            return "timed out"
        if isinstance(e, http11.RemoteDisconnected):
            return "the connection was closed without an answer"
        if isinstance(e, ssl.SSLError):
            return f"the TLS connection was cut ({getattr(e, 'reason', None) or type(e).__name__})"
        if isinstance(e, OSError) and e.strerror:
            return e.strerror
        return _one_line(str(e)) or type(e).__name__

    def _gave_up(self, r: _Retry, err: GridshimError | None = None) -> GridshimError:
        """The one line a user sees when the API stays unreachable or failing."""
        tried = ""
        if r.seconds > 0:
            tried = f"gave up after {r.attempts} attempt{'s' if r.attempts > 1 else ''} in {r.elapsed():.0f} s"
            if r.refused_wait is not None:
                tried += f", the server asked to retry after {r.refused_wait:.0f} s"
            tried += f"; GRIDSHIM_RETRY_SECONDS={r.seconds:g} sets how long to retry"
        proxy = self.proxy()
        via = f"proxy {proxy.shown} ({'proxy-url' if self.creds.proxy_url else 'HTTPS_PROXY'})" if proxy else ""
        hint = "; ".join(p for p in (tried, f"kubeconfig {self.creds.path}", via, "try again later") if p)
        if err is None:
            return ClusterError(f"cannot reach the Kubernetes API at {self.creds.server}: {r.last}", hint=hint)
        msg = err.message
        status = err.status if isinstance(err, ClusterError) else None
        if status:
            body = err.body if isinstance(err, ClusterError) else {}
            said = _one_line(str(body.get("message") or ""), 120)
            what = f"{status} {http11.reason_phrase(status)}".strip() + (f": {said}" if said else "")
            state = "overloaded" if status == 429 else "failing"
            msg = f"the Kubernetes API at {self.creds.server} is {state} ({what})"
        return ClusterError(msg, hint=hint, detail=err.detail,
                            status=err.status if isinstance(err, ClusterError) else None,
                            body=err.body if isinstance(err, ClusterError) else None)

    def _unreachable(self, e: BaseException) -> ClusterError:
        return ClusterError(f"cannot reach the Kubernetes API at {self.creds.server}: {self._describe(e)}",
                            hint=f"kubeconfig {self.creds.path}; try again later")

    def error_for(self, status: int, raw: bytes, method: str, path: str) -> GridshimError:
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        if not body and raw:
            body = {"message": raw.decode(errors="replace")[:200]}
        msg = _one_line(str(body.get("message") or (http11.reason_phrase(status) or "error")))
        reason = str(body.get("reason") or "")
        detail = f"{method} {path} → {status} {reason}: {msg}"
        if status == 401:
            how = self.auth.describe()
            if how != "the client certificate":
                hint = (f"the API server does not accept {how} (kubeconfig {self.creds.path}): it may have expired "
                        "or be for another cluster")
            else:
                hint = self._cert_hint() or (
                    f"the API server does not accept the client certificate in {self.creds.path}; it may be revoked "
                    "or issued by another cluster's CA: get a new kubeconfig for this cluster")
            return ClusterConfigError(f"the API server {self.creds.server} did not accept your credentials",
                                      hint=hint, detail=detail)
        if status == 403 and "exceeded quota" in msg:
            return QuotaExceededError(msg, detail=detail)
        if status == 403 and self.creds.impersonate and "cannot impersonate" in msg:
            who = dict(self.creds.impersonate).get("Impersonate-User", "?")
            return ForbiddenError(f"not allowed: {msg}",
                                  hint=f"user {self.creds.user!r} in {self.creds.path} impersonates {who!r} (as:), "
                                       "which RBAC does not allow it: ask for the impersonate permission, or remove "
                                       "as: and its as-* entries", detail=detail)
        if status == 403:
            if self.creds.in_cluster:  # a job's own ServiceAccount: its rights are its tool's, in its namespace
                hint = "a job acts as its own tool's ServiceAccount, which may touch that tool's jobs only"
            else:
                hint = f"is {self.creds.path} the kubeconfig of the tool that owns this?"
            return ForbiddenError(f"not allowed: {msg}", hint=hint, detail=detail)
        if status == 404:
            return JobNotFoundError(msg, detail=detail)
        if status == 409 and reason == "AlreadyExists":
            return JobExistsError(msg, detail=detail)
        if status == 409:
            return ConflictError(msg, detail=detail)
        if status == 422:
            # An admission policy's refusal ('jobs "x" is invalid: : ValidatingAdmissionPolicy 'P' with binding
            # 'B' denied request: TEXT'): TEXT is the part a user needs (the uid policy names the uid allowed)
            head, denied, said = str(body.get("message") or "").partition("denied request: ")
            if denied and "ValidatingAdmissionPolicy '" in head:
                policy = head.split("ValidatingAdmissionPolicy '", 1)[1].split("'", 1)[0]
                return ClusterError(f"refused by the cluster's admission policy {policy}: {_one_line(said, 1000)}",
                                    status=status, detail=detail, body=body)
            return ClusterError(f"the API server refused it: {msg}", status=status, detail=detail, body=body)
        return ClusterError(f"the Kubernetes API answered {status} {reason or ''}: {msg}".replace("  ", " "),
                            status=status, detail=detail, body=body)

