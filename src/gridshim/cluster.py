"""The only module that talks to the Kubernetes API: kubeconfig, TLS client certs, REST, watch, errors.

It speaks plain dicts (the JSON the API server stores) and raises only gridshim errors. It is a
thin stdlib HTTPS client rather than the official `kubernetes` package because importing that
package alone costs ~0.3 s, more than a whole `kubectl create job` (see docs/design.md). Imports
errors and model only.
"""

from __future__ import annotations

import base64
import email.utils
import gc
import hashlib
import http.client
import json
import os
import random
import re
import socket
import ssl
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from gridshim.errors import (ClusterConfigError, ClusterError, ConflictError, ForbiddenError, GridshimError,
                             JobExistsError, JobNotFoundError, QuotaExceededError)
from gridshim.model import Manifest, tool_of

# kind → (API prefix, plural). Everything gridshim touches is namespaced except the access review.
KINDS: dict[str, tuple[str, str]] = {
    "Job": ("/apis/batch/v1", "jobs"),
    "CronJob": ("/apis/batch/v1", "cronjobs"),
    "Pod": ("/api/v1", "pods"),
    "ConfigMap": ("/api/v1", "configmaps"),
    "Event": ("/api/v1", "events"),
    "ResourceQuota": ("/api/v1", "resourcequotas"),
    "LimitRange": ("/api/v1", "limitranges"),
    "Deployment": ("/apis/apps/v1", "deployments"),
}
PAGE = 500  # list page size: big enough for few round trips, small enough to keep memory flat
# Transient failures (connection reset or refused, timeouts, 429, 5xx) are retried with jittered
# exponential back-off for at most this long in total (GRIDSHIM_RETRY_SECONDS), then the user gets
# one clear line. Idempotent calls retry freely; creates only when the manifest carries a client
# token (see `create`), because a POST whose answer was lost may have happened.
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
_RBAC_MISSING = re.compile(r'RBAC: .*\brbac\.authorization\.k8s\.io "[^"]*" not found')
# The annotation in which gridshim puts a random per-submission token. A manifest that carries one
# is created at most once, even when an answer is lost (render/labels.py A_TOKEN is the same key).
TOKEN_ANNOTATION = "gridshim.io/token"
# generateName is resolved here from the token (base + 5 characters, like the API server's own
# suffix) so that a retried POST meets 409 instead of creating a second object.
_SUFFIX_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_GENERATED_BASE_MAX = 58  # the API server truncates generateName to this before adding 5 characters
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


def client_name(generate_name: str, token: str) -> str:
    """The object name for generateName BASE chosen from TOKEN: deterministic, so a retry is idempotent."""
    n = int.from_bytes(hashlib.sha256(token.encode()).digest()[:8], "big")
    suffix = ""
    for _ in range(5):
        n, i = divmod(n, len(_SUFFIX_ALPHABET))
        suffix += _SUFFIX_ALPHABET[i]
    return generate_name[:_GENERATED_BASE_MAX] + suffix


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
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


@dataclass(frozen=True)
class Credentials:
    """What a kubeconfig context resolves to."""

    path: str  # the kubeconfig file(s) tried, for messages
    context: str
    server: str
    namespace: str | None
    ca_file: str | None = None
    ca_data: str | None = None
    insecure: bool = False
    cert_file: str | None = None
    key_file: str | None = None
    cert_data: bytes | None = None
    key_data: bytes | None = None
    token: str | None = None


def kubeconfig_paths(environ: dict[str, str] | os._Environ[str] | None = None) -> list[str]:
    env = os.environ if environ is None else environ
    if env.get("KUBECONFIG"):
        return [p for p in env["KUBECONFIG"].split(os.pathsep) if p]
    return [os.path.join(env.get("HOME") or os.path.expanduser("~"), ".kube", "config")]


# A kubeconfig is a few KiB; one that is not a regular file (a FIFO, /dev/zero) or is huge is refused
# rather than read forever or into all memory.
KUBECONFIG_LIMIT = 4 * 1024 * 1024


def _read_kubeconfig(path: str) -> str:
    import stat  # noqa: PLC0415

    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ClusterConfigError(f"kubeconfig {path} is not a regular file", hint="point KUBECONFIG at a file")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(KUBECONFIG_LIMIT + 1)
    finally:
        os.close(fd)
    if len(data) > KUBECONFIG_LIMIT:
        raise ClusterConfigError(f"kubeconfig {path} is larger than {KUBECONFIG_LIMIT // (1024 * 1024)} MiB",
                                 hint="point KUBECONFIG at your kubeconfig file")
    return data.decode("utf-8")


def load_credentials(paths: list[str], context: str | None = None) -> Credentials:
    """Merge the kubeconfig files (first wins, as kubectl does) and resolve one context.

    Anything malformed is a ClusterConfigError naming the file and the entry, never a crash."""
    import yaml  # noqa: PLC0415  (a cheap import with libyaml; only commands that need the API pay it)

    shown = os.pathsep.join(paths)
    merged: dict[str, dict[str, Any]] = {"clusters": {}, "users": {}, "contexts": {}}
    current: str | None = None
    bases: dict[tuple[str, str], str] = {}
    found = False
    for p in paths:
        try:
            text = _read_kubeconfig(p)
        except FileNotFoundError:
            continue
        except OSError as e:
            raise ClusterConfigError(f"cannot read kubeconfig {p}: {e.strerror}",
                                     hint="check its permissions, or set KUBECONFIG") from None
        except UnicodeDecodeError:
            raise ClusterConfigError(f"kubeconfig {p} is not text (UTF-8)", hint="fix or regenerate it") from None
        found = True
        try:
            data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
        except (yaml.YAMLError, ValueError, RecursionError):
            raise ClusterConfigError(f"kubeconfig {p} is not valid YAML",
                                     hint="fix or regenerate it") from None
        if not isinstance(data, dict):
            raise ClusterConfigError(f"kubeconfig {p} is not a kubeconfig (expected a mapping)",
                                     hint="fix or regenerate it")
        cur = data.get("current-context")
        if cur is not None and not isinstance(cur, str):
            raise ClusterConfigError(f"kubeconfig {p}: current-context is not a name", hint="fix or regenerate it")
        current = current or cur
        for section in ("clusters", "users", "contexts"):
            entries = data.get(section) or []
            if not isinstance(entries, list):
                raise ClusterConfigError(f"kubeconfig {p}: {section} is not a list", hint="fix or regenerate it")
            for entry in entries:
                if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                    raise ClusterConfigError(f"kubeconfig {p}: an entry in {section} has no name",
                                             hint="fix or regenerate it")
                body = entry.get(section[:-1]) or {}
                if not isinstance(body, dict):
                    raise ClusterConfigError(f"kubeconfig {p}: {section[:-1]} {entry['name']!r} is not a mapping",
                                             hint="fix or regenerate it")
                if entry["name"] not in merged[section]:
                    merged[section][entry["name"]] = body
                    bases[(section, entry["name"])] = os.path.dirname(os.path.abspath(p))
    if not found:
        raise ClusterConfigError(f"no kubeconfig found (tried {shown})",
                                 hint="run 'become <tool>' first, or set KUBECONFIG to your tool's kubeconfig")
    name = context or current
    if not name or name not in merged["contexts"]:
        raise ClusterConfigError(f"kubeconfig {shown} has no context {name!r}" if name else
                                 f"kubeconfig {shown} sets no current-context",
                                 hint="run 'kubectl config use-context NAME'")
    ctx = merged["contexts"][name]

    def text_of(where: dict[str, Any], key: str, what: str) -> str | None:
        value = where.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise ClusterConfigError(f"kubeconfig {shown}: {what} {key} is not a string", hint="fix or regenerate it")
        return value

    cluster_name = text_of(ctx, "cluster", f"context {name!r}") or ""
    user_name = text_of(ctx, "user", f"context {name!r}") or ""
    namespace = text_of(ctx, "namespace", f"context {name!r}")
    cluster = merged["clusters"].get(cluster_name)
    user = merged["users"].get(user_name, {})
    if cluster is None or not text_of(cluster, "server", f"cluster {cluster_name!r}"):
        raise ClusterConfigError(f"kubeconfig {shown}: context {name!r} names no cluster with a server",
                                 hint="fix or regenerate it")
    if user.get("exec") or user.get("auth-provider"):
        raise ClusterConfigError(f"kubeconfig {shown}: user {user_name!r} uses an exec/auth-provider "
                                 "plugin, which gridshim does not run", hint="use a client-certificate kubeconfig")

    def rel(section: str, key: str, value: str | None) -> str | None:
        if not value:
            return None
        return value if os.path.isabs(value) else os.path.join(bases[(section, key)], value)

    def b64(where: dict[str, Any], key: str, what: str) -> bytes | None:
        value = text_of(where, key, what)
        if not value:
            return None
        try:
            return base64.b64decode(value, validate=False)
        except ValueError:
            raise ClusterConfigError(f"kubeconfig {shown}: {what} {key} is not base64",
                                     hint="fix or regenerate it") from None

    cw, uw = f"cluster {cluster_name!r}", f"user {user_name!r}"
    token = text_of(user, "token", uw)
    token_file = text_of(user, "tokenFile", uw)
    if not token and token_file:
        path = rel("users", user_name, token_file) or ""
        try:
            token = Path(path).read_text().strip()
        except (OSError, UnicodeDecodeError) as e:
            raise ClusterConfigError(f"kubeconfig {shown}: cannot read tokenFile {path}: "
                                     f"{getattr(e, 'strerror', None) or 'not text'}",
                                     hint="check the user's tokenFile entry") from None
    try:
        ca_data = (b64(cluster, "certificate-authority-data", cw) or b"").decode() or None
    except UnicodeDecodeError:
        raise ClusterConfigError(f"kubeconfig {shown}: {cw} certificate-authority-data is not a PEM certificate",
                                 hint="fix or regenerate it") from None
    return Credentials(
        path=shown, context=name, server=str(cluster["server"]).rstrip("/"), namespace=namespace,
        ca_file=rel("clusters", cluster_name, text_of(cluster, "certificate-authority", cw)),
        ca_data=ca_data,
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        cert_file=rel("users", user_name, text_of(user, "client-certificate", uw)),
        key_file=rel("users", user_name, text_of(user, "client-key", uw)),
        cert_data=b64(user, "client-certificate-data", uw), key_data=b64(user, "client-key-data", uw),
        token=token,
    )


def _memfile(data: bytes) -> str:
    """A path to DATA that never touches disk (ssl.load_cert_chain wants paths)."""
    fd = os.memfd_create("gridshim-cred", 0)
    os.write(fd, data)
    return f"/proc/self/fd/{fd}"


def _decode_cert(path: str | None, data: bytes | None) -> dict[str, Any] | None:
    try:
        p = path or (_memfile(data) if data else None)
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


def _holds(stored: Any, sent: Any) -> bool:
    """Whether STORED already holds everything in SENT: the API server adds defaults and status, but
    changes nothing that was sent (lists must match element by element)."""
    if isinstance(sent, dict):
        return isinstance(stored, dict) and all(k in stored and _holds(stored[k], v) for k, v in sent.items())
    if isinstance(sent, list):
        return isinstance(stored, list) and len(stored) == len(sent) and all(map(_holds, stored, sent))
    return bool(stored == sent)


_LIST_META = re.compile(rb'^\{[^{]*?"metadata":\s*(\{[^{}]*\})')


def _continue_token(raw: bytes) -> str | None:
    """The continue token of a list page, read from its head (the API server writes metadata before
    items); None when the head does not show it, "" when the page is the last."""
    m = _LIST_META.match(raw[:4096])
    if not m:
        return None
    try:
        meta = json.loads(m.group(1))
    except ValueError:
        return None
    return str(meta.get("continue") or "")


class _Prefetch:
    """One page asked for in the background, on a connection of its own (the same credentials)."""

    def __init__(self, owner: "KubeCluster") -> None:
        import threading  # noqa: PLC0415  (only lists of more than one page pay for it)

        self.owner = owner
        self.sibling = owner._sibling()
        self._threading = threading
        self._thread: Any = None
        self._out: tuple[bytes | None, BaseException | None] = (None, None)

    def start(self, path: str) -> None:
        def run() -> None:
            try:
                self._out = (self.sibling._call("GET", path, attempts=_Retry(self.sibling.retry_seconds),
                                                decode=False), None)
            except BaseException as e:  # noqa: BLE001  (re-raised in the caller's thread)
                self._out = (None, e)

        self._thread = self._threading.Thread(target=run, daemon=True)
        self._thread.start()

    def result(self) -> bytes:
        self._thread.join()
        raw, err = self._out
        self._out = (None, None)
        if err is not None:
            raise err
        return raw or b""

    def close(self) -> None:
        if self._thread is not None:
            self._thread.join()
        if self.sibling is not self.owner:
            self.owner.round_trips += self.sibling.round_trips
            self.sibling.round_trips = 0
            self.sibling.close()


class KubeCluster:
    """A namespace on an API server, reached with the user's own kubeconfig credentials."""

    def __init__(self, creds: Credentials, namespace: str | None = None, *,
                 retry_seconds: float | None = None) -> None:
        self.creds = creds
        ns = namespace or creds.namespace
        if not ns:
            raise ClusterConfigError(
                f"kubeconfig {creds.path}: context {creds.context!r} sets no namespace",
                hint="add one with 'kubectl config set-context --current --namespace=tool-NAME', "
                     "or regenerate the tool's kubeconfig")
        self.namespace: str = ns
        try:
            url = urllib.parse.urlsplit(creds.server)
            port = url.port
        except ValueError:
            url, port = urllib.parse.urlsplit(""), -1
        if url.scheme != "https" or not url.hostname or port == -1:
            raise ClusterConfigError(f"kubeconfig {creds.path}: server {creds.server!r} is not an "
                                     "https://HOST[:PORT] URL",
                                     hint="fix the cluster's server entry")
        self._host, self._port = url.hostname, port or 443
        self._prefix = url.path.rstrip("/")
        self._conn: http.client.HTTPSConnection | None = None
        self._fresh = True  # the last attempt went out on a connection opened for it
        self._ctx: ssl.SSLContext | None = None
        self.round_trips = 0
        self.retry_seconds = RETRY_BUDGET if retry_seconds is None else retry_seconds

    @classmethod
    def from_kubeconfig(cls, path: str | None = None, context: str | None = None,
                        environ: dict[str, str] | None = None) -> "KubeCluster":
        paths = [path] if path else kubeconfig_paths(environ)
        budget = retry_seconds(environ) if environ is not None else None
        return cls(load_credentials(paths, context), retry_seconds=budget)

    @property
    def tool(self) -> str:
        """Toolforge's rule: the tool is the namespace without its `tool-` prefix."""
        return tool_of(self.namespace)

    # -- transport ---------------------------------------------------------------------------------

    def _context(self) -> ssl.SSLContext:
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
            try:
                if c.cert_file or c.cert_data:
                    cert = c.cert_file or _memfile(c.cert_data or b"")
                    key = c.key_file or (_memfile(c.key_data) if c.key_data else None)
                    ctx.load_cert_chain(cert, key)
            except (OSError, ssl.SSLError, ValueError) as e:
                raise ClusterConfigError(f"kubeconfig {c.path}: cannot load the client certificate/key "
                                         f"({getattr(e, 'strerror', None) or e})",
                                         hint="check the client-certificate and client-key entries") from None
            self._ctx = ctx
        return self._ctx

    def _connection(self, timeout: float) -> http.client.HTTPSConnection:
        if self._conn is None:
            self._conn = http.client.HTTPSConnection(self._host, self._port, context=self._context(),
                                                     timeout=timeout)
        else:
            self._conn.timeout = timeout
            if self._conn.sock is not None:
                self._conn.sock.settimeout(timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "gridshim/0.1"}
        if self.creds.token:
            headers["Authorization"] = f"Bearer {self.creds.token}"
        return headers

    def _send(self, method: str, path: str, body: Any = None, *, content_type: str = "application/json",
              timeout: float = TIMEOUT) -> http.client.HTTPResponse:
        """One attempt. Certificate and TLS-configuration failures become ClusterConfigError at once;
        transport failures (reset, refused, timeout, a TLS stream cut short) propagate as OSError or
        HTTPException, with the connection closed, for the caller to retry."""
        headers = self._headers()
        data = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = content_type
        # a connection opened for this attempt (the first of the process, or after a failure) may meet a
        # server that has just started; a kept-alive one that answered before cannot (see FORBIDDEN_WINDOW)
        self._fresh = self._conn is None or self._conn.sock is None
        conn = self._connection(timeout)
        self.round_trips += 1
        try:
            conn.request(method, self._prefix + path, body=data, headers=headers)
            return conn.getresponse()
        except ssl.SSLCertVerificationError as e:
            self.close()
            if e.verify_code in (9, 10):  # X509_V_ERR_CERT_NOT_YET_VALID / CERT_HAS_EXPIRED
                raise ClusterConfigError(f"cannot verify the API server {self.creds.server}: {e.verify_message}",
                                         hint="check this machine's clock (date); if it is right, the server's "
                                              "certificate is outside its validity") from None
            raise ClusterConfigError(f"cannot verify the API server {self.creds.server}: {e.verify_message}",
                                     hint=f"check certificate-authority in {self.creds.path}; it must be the CA "
                                          "of the cluster named by server") from None
        except ssl.SSLError as e:
            self.close()
            if self._tls_config_problem(e):
                raise self._tls_error(e) from None
            raise
        except (OSError, http.client.HTTPException):
            self.close()
            raise

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
            except (OSError, http.client.HTTPException) as e:
                self.close()
                r.ambiguous = r.ambiguous or not isinstance(e, ConnectionRefusedError)
                r.transport_failed = True
                r.last = self._describe(e)
                if r.pause():
                    continue
                raise self._gave_up(r) from None
            status = resp.status
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
                r.last = f"{status} {http.client.responses.get(status, '')}".strip()
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
        if not (self._fresh or r.transport_failed or r.forbidden_since is not None or _RBAC_MISSING.search(text)):
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
        except (OSError, http.client.HTTPException):
            self.close()
            return False
        except GridshimError:
            return False
        return resp.status == 200

    @staticmethod
    def _describe(e: BaseException) -> str:
        if isinstance(e, (socket.timeout, TimeoutError)):
            return "timed out"
        if isinstance(e, http.client.RemoteDisconnected):
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
        hint = "; ".join(p for p in (tried, f"kubeconfig {self.creds.path}", "try again later") if p)
        if err is None:
            return ClusterError(f"cannot reach the Kubernetes API at {self.creds.server}: {r.last}", hint=hint)
        msg = err.message
        status = err.status if isinstance(err, ClusterError) else None
        if status:
            body = err.body if isinstance(err, ClusterError) else {}
            said = _one_line(str(body.get("message") or ""), 120)
            what = f"{status} {http.client.responses.get(status, '')}".strip() + (f": {said}" if said else "")
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
        msg = _one_line(str(body.get("message") or http.client.responses.get(status, "error")))
        reason = str(body.get("reason") or "")
        detail = f"{method} {path} → {status} {reason}: {msg}"
        if status == 401:
            hint = self._cert_hint() or (f"the API server does not accept the client certificate in {self.creds.path}; "
                                         "it may be revoked or issued by another cluster's CA: get a new kubeconfig "
                                         "for this cluster")
            return ClusterConfigError(f"the API server {self.creds.server} did not accept your credentials",
                                      hint=hint, detail=detail)
        if status == 403 and "exceeded quota" in msg:
            return QuotaExceededError(msg, detail=detail)
        if status == 403:
            return ForbiddenError(f"not allowed: {msg}",
                                  hint=f"is {self.creds.path} the kubeconfig of the tool that owns this?",
                                  detail=detail)
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

    # -- resources -----------------------------------------------------------------------------------

    def path(self, kind: str, name: str | None = None, *, namespace: str | None = None,
             params: dict[str, Any] | None = None) -> str:
        prefix, plural = KINDS[kind]
        p = f"{prefix}/namespaces/{namespace or self.namespace}/{plural}"
        if name:
            p += "/" + urllib.parse.quote(name, safe="")
        if params:
            p += "?" + urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        return p

    def create(self, manifest: Manifest) -> Manifest:
        """POST, retried within the budget, never making a second object.

        A POST whose answer was lost (reset, timeout, 5xx) may have made the object, so a retry is
        only safe when the API server's name check stops a duplicate, and a 409 (or any refusal)
        after such an attempt is checked against the stored object: if it is ours, it is returned as
        if the first answer had arrived. "Ours": it carries the manifest's client token
        (TOKEN_ANNOTATION), or, without one, it already holds everything that was sent.

        - fixed name: retried; the 409 of a retry is resolved as above.
        - generateName with a token: the name is chosen here from the token (`client_name`), so it
          is a fixed name; a real collision of that name (1 in 36**5) falls back to generateName.
        - generateName without a token: one plain POST (a retry could make a second object).
        """
        meta = manifest.get("metadata") or {}
        token = (meta.get("annotations") or {}).get(TOKEN_ANNOTATION)
        path = self.path(manifest["kind"])
        named = manifest
        if not meta.get("name") and meta.get("generateName"):
            if not token:
                return self.request("POST", path, manifest, idempotent=False)  # type: ignore[no-any-return]
            named = {**manifest, "metadata": {**{k: v for k, v in meta.items() if k != "generateName"},
                                              "name": client_name(meta["generateName"], token)}}
        r = _Retry(self.retry_seconds)
        try:
            return self._call("POST", path, named, attempts=r)  # type: ignore[no-any-return]
        except ClusterConfigError:
            raise
        except GridshimError as e:
            if r.attempts > 1:  # an earlier attempt may have made it (even a 503 may hide a success)
                own = self._own(named, token)
                if own is not None:
                    return own
            if isinstance(e, JobExistsError) and named is not manifest and r.attempts == 1:
                # the client-chosen name is held by another object: let the server choose
                return self.request("POST", path, manifest, idempotent=False)  # type: ignore[no-any-return]
            if r.ambiguous and isinstance(e, ClusterError):
                look = "crontab -l" if manifest["kind"] in ("CronJob", "ConfigMap") else "qstat"
                e.hint = (f"{e.hint}; " if e.hint else "") + (
                    f"an answer was lost, so the {manifest['kind']} may exist: check with {look} before trying again")
            raise

    def _own(self, sent: Manifest, token: str | None) -> Manifest | None:
        """The stored object of SENT's kind and name if it is the result of our write, else None."""
        meta = sent["metadata"]
        try:
            obj = self._call("GET", self.path(sent["kind"], meta["name"]),
                             attempts=_Retry(min(self.retry_seconds, 5.0)))
        except GridshimError:
            return None
        if not isinstance(obj, dict):
            return None
        if token:
            ann = (obj.get("metadata") or {}).get("annotations") or {}
            return obj if ann.get(TOKEN_ANNOTATION) == token else None
        body = {k: v for k, v in sent.items() if k != "metadata"}
        body["metadata"] = {k: v for k, v in meta.items() if k not in ("resourceVersion", "generateName")}
        return obj if _holds(obj, body) else None

    def get(self, kind: str, name: str) -> Manifest:
        return self.request("GET", self.path(kind, name))

    def namespace_object(self) -> Manifest:
        """The tool's own Namespace (cluster-scoped: a RoleBinding in it may grant `get` on it)."""
        return self.request("GET", "/api/v1/namespaces/" + urllib.parse.quote(self.namespace, safe=""))

    def list(self, kind: str, *, selector: str | None = None, field_selector: str | None = None,
             namespace: str | None = None, trim: Callable[[Manifest], Any] | None = None) -> tuple[list[Any], str]:
        """All objects of KIND (paginated); returns (items, list resourceVersion for a watch).

        The next page is asked for, on a second connection, as soon as this page's continue token is
        read (the list's metadata comes before its items), so the server reads page n+1 from etcd while
        we decode page n. TRIM, when given, turns each object into what the caller keeps (a smaller
        dict, a row), so a page's full objects are garbage as soon as the page is decoded."""
        items: list[Any] = []

        def path(token: str | None) -> str:
            return self.path(kind, namespace=namespace, params={
                "labelSelector": selector, "fieldSelector": field_selector, "limit": PAGE, "continue": token})

        # The parsed pages hold no reference cycles, but the cyclic GC would walk them again and again
        # as they pile up: off while reading, 5,000 Jobs parse in half the time (docs/performance.md).
        gc_was_on = gc.isenabled()
        gc.disable()
        ahead: _Prefetch | None = None
        try:
            raw = self._call("GET", path(None), attempts=_Retry(self.retry_seconds), decode=False)
            while True:
                token = _continue_token(raw)
                if token:
                    ahead = ahead or _Prefetch(self)
                    ahead.start(path(token))
                page = self._decode(raw, "GET")
                raw = b""
                for item in page.get("items") or []:
                    # gridshim never reads managedFields, ~40 % of a Job's JSON: dropped, qstat with
                    # 5,000 Jobs peaks at ~55 MB less (docs/performance.md). A PUT without them keeps them.
                    (item.get("metadata") or {}).pop("managedFields", None)
                    items.append(item if trim is None else trim(item))
                meta = page.get("metadata") or {}
                del page
                if token is None:
                    token = meta.get("continue")  # not found in the head: no overlap for this page
                    if token:
                        ahead = ahead or _Prefetch(self)
                        ahead.start(path(token))
                if not token:
                    return items, meta.get("resourceVersion", "")
                assert ahead is not None
                raw = ahead.result()
        finally:
            if ahead is not None:
                ahead.close()
            if gc_was_on:
                gc.enable()

    def _sibling(self) -> "KubeCluster":
        """Another connection to the same server with the same credentials (and the same TLS context)."""
        other = KubeCluster(self.creds, self.namespace, retry_seconds=self.retry_seconds)
        other._ctx = self._context()
        return other

    def _decode(self, raw: bytes, method: str) -> Any:
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            raise ClusterError(f"the API server {self.creds.server} answered {method} with something "
                               "that is not JSON", hint=f"is server in {self.creds.path} a Kubernetes API?",
                               detail=_one_line(raw.decode(errors="replace"))) from None

    def delete(self, kind: str, name: str, *, uid: str | None = None, resource_version: str | None = None,
               grace: int | None = None, propagation: str = "Background") -> Manifest | None:
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
        pre = {k: v for k, v in (("uid", uid), ("resourceVersion", resource_version)) if v}
        if pre:
            body["preconditions"] = pre
        if grace is not None:
            body["gracePeriodSeconds"] = grace
        r = _Retry(self.retry_seconds)
        try:
            return self._call("DELETE", self.path(kind, name), body, attempts=r)  # type: ignore[no-any-return]
        except JobNotFoundError:
            if r.ambiguous:
                return None  # an attempt whose answer was lost deleted it: gone is what was asked
            raise

    def delete_collection(self, kind: str, *, selector: str, grace: int | None = None) -> None:
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        if grace is not None:
            body["gracePeriodSeconds"] = grace
        self.request("DELETE", self.path(kind, params={"labelSelector": selector}), body)

    def replace(self, manifest: Manifest) -> Manifest:
        """PUT with the manifest's resourceVersion: fails with ConflictError if someone else wrote first.

        A PUT whose answer was lost and whose retry meets 409 Conflict was ours if the stored object
        has moved on from that resourceVersion and is ours (`_own`: our token, or all we sent)."""
        meta = manifest["metadata"]
        token = (meta.get("annotations") or {}).get(TOKEN_ANNOTATION)
        r = _Retry(self.retry_seconds)
        try:
            return self._call("PUT", self.path(manifest["kind"], meta["name"]), manifest,  # type: ignore[no-any-return]
                              attempts=r)
        except ConflictError:
            if r.ambiguous:
                own = self._own(manifest, token)
                if own is not None and own["metadata"].get("resourceVersion") != meta.get("resourceVersion"):
                    return own
            raise

    def patch(self, kind: str, name: str, body: Any, *, patch_type: str = "merge") -> Manifest:
        ctype = {"merge": "application/merge-patch+json", "json": "application/json-patch+json",
                 "strategic": "application/strategic-merge-patch+json"}[patch_type]
        return self.request("PATCH", self.path(kind, name), body, content_type=ctype, idempotent=True)

    def access_review(self, verb: str, resource: str, group: str = "") -> bool:
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                  "spec": {"resourceAttributes": {"namespace": self.namespace, "verb": verb,
                                                  "group": group, "resource": resource}}}
        out = self.request("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", review,
                           idempotent=True)
        return bool((out.get("status") or {}).get("allowed"))

    def watch(self, kind: str, *, resource_version: str, selector: str | None = None,
              field_selector: str | None = None, timeout: float = 300) -> Iterator[tuple[str, Manifest]]:
        """Yield (type, object) events until TIMEOUT; the caller re-lists on ERROR (410 Gone)."""
        path = self.path(kind, params={"watch": "1", "resourceVersion": resource_version,
                                       "labelSelector": selector, "fieldSelector": field_selector,
                                       "timeoutSeconds": int(timeout), "allowWatchBookmarks": "true"})
        conn = http.client.HTTPSConnection(self._host, self._port, context=self._context(), timeout=timeout + 10)
        headers = {"Accept": "application/json", "User-Agent": "gridshim/0.1"}
        if self.creds.token:
            headers["Authorization"] = f"Bearer {self.creds.token}"
        self.round_trips += 1
        try:
            try:
                conn.request("GET", self._prefix + path, headers=headers)
                resp = conn.getresponse()
            except (OSError, http.client.HTTPException) as e:
                raise self._unreachable(e) from None
            if resp.status >= 300:
                raise self.error_for(resp.status, resp.read(), "GET", path)
            while True:
                try:
                    line = resp.readline()
                except (OSError, http.client.HTTPException):
                    return
                if not line:
                    return
                event = json.loads(line)
                yield event.get("type", ""), event.get("object") or {}
        finally:
            conn.close()
