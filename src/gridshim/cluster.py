"""The only module that talks to the Kubernetes API: kubeconfig, TLS client certs, REST, watch, errors.

It speaks plain dicts (the JSON the API server stores) and raises only gridshim errors. It is a
thin stdlib HTTPS client rather than the official `kubernetes` package because importing that
package alone costs ~0.3 s, more than a whole `kubectl create job` (see docs/design.md). Imports
errors and model only.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import random
import socket
import ssl
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from gridshim.errors import (ClusterConfigError, ClusterError, ConflictError, ForbiddenError, GridshimError,
                             JobExistsError, JobNotFoundError, QuotaExceededError)
from gridshim.model import Manifest

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
# Transient failures (connection reset, 429, 5xx) are retried for idempotent requests, with jittered
# exponential back-off, for at most this long in total before the user gets a clear error.
RETRY_BUDGET = float(os.environ.get("GRIDSHIM_RETRY_SECONDS", "30"))
RETRY_STATUSES = (429, 500, 502, 503, 504)
TIMEOUT = 30.0


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


def load_credentials(paths: list[str], context: str | None = None) -> Credentials:
    """Merge the kubeconfig files (first wins, as kubectl does) and resolve one context."""
    import yaml  # noqa: PLC0415  (a cheap import with libyaml; only commands that need the API pay it)

    shown = os.pathsep.join(paths)
    merged: dict[str, dict[str, Any]] = {"clusters": {}, "users": {}, "contexts": {}}
    current: str | None = None
    bases: dict[tuple[str, str], str] = {}
    found = False
    for p in paths:
        try:
            text = Path(p).read_text()
        except FileNotFoundError:
            continue
        except OSError as e:
            raise ClusterConfigError(f"cannot read kubeconfig {p}: {e.strerror}",
                                     hint="check its permissions, or set KUBECONFIG") from None
        found = True
        try:
            data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
        except yaml.YAMLError:
            raise ClusterConfigError(f"kubeconfig {p} is not valid YAML",
                                     hint="fix or regenerate it") from None
        if not isinstance(data, dict):
            raise ClusterConfigError(f"kubeconfig {p} is not a kubeconfig (expected a mapping)")
        current = current or data.get("current-context")
        for section in ("clusters", "users", "contexts"):
            for entry in data.get(section) or []:
                if isinstance(entry, dict) and entry.get("name") not in merged[section]:
                    merged[section][entry["name"]] = entry.get(section[:-1]) or {}
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
    cluster = merged["clusters"].get(ctx.get("cluster", ""))
    user = merged["users"].get(ctx.get("user", ""), {})
    if cluster is None or not cluster.get("server"):
        raise ClusterConfigError(f"kubeconfig {shown}: context {name!r} names no cluster with a server")
    if user.get("exec") or user.get("auth-provider"):
        raise ClusterConfigError(f"kubeconfig {shown}: user {ctx.get('user')!r} uses an exec/auth-provider "
                                 "plugin, which gridshim does not run", hint="use a client-certificate kubeconfig")

    def rel(section: str, key: str, value: str | None) -> str | None:
        if not value:
            return None
        return value if os.path.isabs(value) else os.path.join(bases[(section, key)], value)

    def b64(value: str | None) -> bytes | None:
        return base64.b64decode(value) if value else None

    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = Path(rel("users", ctx["user"], user["tokenFile"]) or "").read_text().strip()
    return Credentials(
        path=shown, context=name, server=str(cluster["server"]).rstrip("/"), namespace=ctx.get("namespace"),
        ca_file=rel("clusters", ctx["cluster"], cluster.get("certificate-authority")),
        ca_data=(b64(cluster.get("certificate-authority-data")) or b"").decode() or None,
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        cert_file=rel("users", ctx.get("user", ""), user.get("client-certificate")),
        key_file=rel("users", ctx.get("user", ""), user.get("client-key")),
        cert_data=b64(user.get("client-certificate-data")), key_data=b64(user.get("client-key-data")),
        token=token,
    )


def _memfile(data: bytes) -> str:
    """A path to DATA that never touches disk (ssl.load_cert_chain wants paths)."""
    fd = os.memfd_create("gridshim-cred", 0)
    os.write(fd, data)
    return f"/proc/self/fd/{fd}"


def cert_dates(path: str | None, data: bytes | None) -> tuple[float, float] | None:
    """(notBefore, notAfter) of the client certificate, for expiry messages (stdlib only)."""
    try:
        p = path or (_memfile(data) if data else None)
        if not p:
            return None
        info = ssl._ssl._test_decode_cert(p)  # type: ignore[attr-defined]  # stdlib's own decoder
        return ssl.cert_time_to_seconds(info["notBefore"]), ssl.cert_time_to_seconds(info["notAfter"])
    except (OSError, ValueError, KeyError, ssl.SSLError):
        return None


class KubeCluster:
    """A namespace on an API server, reached with the user's own kubeconfig credentials."""

    def __init__(self, creds: Credentials, namespace: str | None = None) -> None:
        self.creds = creds
        ns = namespace or creds.namespace
        if not ns:
            raise ClusterConfigError(
                f"kubeconfig {creds.path}: context {creds.context!r} sets no namespace",
                hint="add one with 'kubectl config set-context --current --namespace=tool-NAME'")
        self.namespace: str = ns
        url = urllib.parse.urlsplit(creds.server)
        if url.scheme != "https" or not url.hostname:
            raise ClusterConfigError(f"kubeconfig {creds.path}: server {creds.server!r} is not an https:// URL")
        self._host, self._port = url.hostname, url.port or 443
        self._prefix = url.path.rstrip("/")
        self._conn: http.client.HTTPSConnection | None = None
        self._ctx: ssl.SSLContext | None = None
        self.round_trips = 0

    @classmethod
    def from_kubeconfig(cls, path: str | None = None, context: str | None = None,
                        environ: dict[str, str] | None = None) -> "KubeCluster":
        paths = [path] if path else kubeconfig_paths(environ)
        return cls(load_credentials(paths, context))

    @property
    def tool(self) -> str:
        """Toolforge's rule: the tool is the namespace without its `tool-` prefix."""
        return self.namespace[5:] if self.namespace.startswith("tool-") else self.namespace

    # -- transport ---------------------------------------------------------------------------------

    def _context(self) -> ssl.SSLContext:
        if self._ctx is None:
            c = self.creds
            ctx = ssl.create_default_context()
            if c.insecure:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            elif c.ca_file or c.ca_data:
                ctx = ssl.create_default_context(cafile=c.ca_file, cadata=c.ca_data)
            try:
                if c.cert_file or c.cert_data:
                    cert = c.cert_file or _memfile(c.cert_data or b"")
                    key = c.key_file or (_memfile(c.key_data) if c.key_data else None)
                    ctx.load_cert_chain(cert, key)
            except (OSError, ssl.SSLError) as e:
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

    def _send(self, method: str, path: str, body: Any = None, *, content_type: str = "application/json",
              timeout: float = TIMEOUT) -> http.client.HTTPResponse:
        headers = {"Accept": "application/json", "User-Agent": "gridshim/0.1"}
        data = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = content_type
        if self.creds.token:
            headers["Authorization"] = f"Bearer {self.creds.token}"
        conn = self._connection(timeout)
        self.round_trips += 1
        try:
            conn.request(method, self._prefix + path, body=data, headers=headers)
            return conn.getresponse()
        except ssl.SSLCertVerificationError as e:
            self.close()
            raise ClusterConfigError(f"cannot verify the API server {self.creds.server}: {e.verify_message}",
                                     hint=f"check certificate-authority in {self.creds.path}") from None
        except ssl.SSLError as e:
            self.close()
            raise self._tls_error(e) from None
        except (OSError, http.client.HTTPException):
            self.close()
            raise

    def _tls_error(self, e: ssl.SSLError) -> GridshimError:
        reason = getattr(e, "reason", None) or str(e)
        hint = self._cert_hint() or f"check the certificates in {self.creds.path}"
        return ClusterConfigError(f"TLS handshake with {self.creds.server} failed ({reason})", hint=hint)

    def _cert_hint(self) -> str | None:
        dates = cert_dates(self.creds.cert_file, self.creds.cert_data)
        if dates is None:
            return None
        now = time.time()
        if now > dates[1]:
            return (f"the client certificate in {self.creds.path} expired "
                    f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(dates[1]))}; renew it")
        if now < dates[0]:
            return (f"the client certificate in {self.creds.path} is not valid before "
                    f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(dates[0]))}; check the clock")
        return None

    def request(self, method: str, path: str, body: Any = None, *, content_type: str = "application/json",
                idempotent: bool | None = None) -> Any:
        """One API call with the error funnel; idempotent calls retry transient failures."""
        retry = method in ("GET", "PUT", "DELETE") if idempotent is None else idempotent
        deadline = time.monotonic() + RETRY_BUDGET
        delay = 0.1
        while True:
            try:
                resp = self._send(method, path, body, content_type=content_type)
                raw = resp.read()
                status = resp.status
                retry_after = resp.getheader("Retry-After")
            except (OSError, http.client.HTTPException) as e:
                if not retry or time.monotonic() + delay > deadline:
                    raise self._unreachable(e) from None
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 5)
                continue
            if status < 300:
                return json.loads(raw) if raw else None
            if retry and status in RETRY_STATUSES and time.monotonic() + delay < deadline:
                wait = float(retry_after) if retry_after and retry_after.isdigit() else delay * (1 + random.random())
                time.sleep(min(wait, max(0.0, deadline - time.monotonic())))
                delay = min(delay * 2, 5)
                continue
            raise self.error_for(status, raw, method, path)

    def _unreachable(self, e: BaseException) -> ClusterError:
        what = e.strerror if isinstance(e, OSError) and e.strerror else (str(e) or type(e).__name__)
        if isinstance(e, socket.timeout):
            what = "timed out"
        return ClusterError(f"cannot reach the Kubernetes API at {self.creds.server}: {what}",
                            hint=f"kubeconfig {self.creds.path}; try again later")

    def error_for(self, status: int, raw: bytes, method: str, path: str) -> GridshimError:
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {"message": raw.decode(errors="replace")[:200]}
        msg = str(body.get("message") or http.client.responses.get(status, "error"))
        reason = body.get("reason", "")
        detail = f"{method} {path} → {status} {reason}: {msg}"
        if status == 401:
            hint = self._cert_hint() or f"check the client certificate in {self.creds.path}"
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
        """POST; not retried here (a lost answer is resolved by the caller, who knows the token)."""
        return self.request("POST", self.path(manifest["kind"]), manifest, idempotent=False)

    def get(self, kind: str, name: str) -> Manifest:
        return self.request("GET", self.path(kind, name))

    def list(self, kind: str, *, selector: str | None = None, field_selector: str | None = None,
             namespace: str | None = None) -> tuple[list[Manifest], str]:
        """All objects of KIND (paginated); returns (items, list resourceVersion for a watch)."""
        items: list[Manifest] = []
        token: str | None = None
        while True:
            page = self.request("GET", self.path(kind, namespace=namespace, params={
                "labelSelector": selector, "fieldSelector": field_selector, "limit": PAGE, "continue": token}))
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items, (page.get("metadata") or {}).get("resourceVersion", "")

    def delete(self, kind: str, name: str, *, uid: str | None = None, resource_version: str | None = None,
               grace: int | None = None, propagation: str = "Background") -> Manifest | None:
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
        pre = {k: v for k, v in (("uid", uid), ("resourceVersion", resource_version)) if v}
        if pre:
            body["preconditions"] = pre
        if grace is not None:
            body["gracePeriodSeconds"] = grace
        return self.request("DELETE", self.path(kind, name), body)

    def delete_collection(self, kind: str, *, selector: str, grace: int | None = None) -> None:
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        if grace is not None:
            body["gracePeriodSeconds"] = grace
        self.request("DELETE", self.path(kind, params={"labelSelector": selector}), body)

    def replace(self, manifest: Manifest) -> Manifest:
        """PUT with the manifest's resourceVersion: fails with ConflictError if someone else wrote first."""
        return self.request("PUT", self.path(manifest["kind"], manifest["metadata"]["name"]), manifest)

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
