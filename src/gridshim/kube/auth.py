"""Who a request says it is: the client certificate (for the TLS context), a bearer token, an exec
credential plugin's answer, and the Impersonate-* headers.

`Auth` is the seam: the transport asks it for headers and a client certificate before each attempt,
and calls `refresh()` once after a 401 (an exec plugin is run again; a tokenFile is read again). A token
file (a kubeconfig's tokenFile, a pod's ServiceAccount token) is also read again once the token in hand is
a minute old, as client-go does, so a rotated token is picked up before the old one expires.
Exec credentials live only in this process's memory, as client-go keeps them: reused until their
expirationTimestamp, run again when they expire or the server answers 401; never written to disk
(a client key from a plugin reaches `ssl` through memfd, like inline key data). Running a plugin pulls in
subprocess; a client-certificate or token user imports nothing here beyond the fast path."""

from __future__ import annotations

import os
import sys
import time

from gridshim.errors import ClusterConfigError
from gridshim.kube.config import Credentials

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up, docs/performance.md)
if TYPE_CHECKING:
    from typing import Any

# A token file (tokenFile, a pod's ServiceAccount token) is read again when the token in hand is this old,
# as client-go's cached file token source does: the kubelet replaces a projected token at 80 % of its life
# (at least 10 minutes), so a long -sync y wait or watch never holds a token past its expiry.
TOKEN_FILE_PERIOD = 60.0
EXEC_TIMEOUT = 60.0  # a plugin that answers nothing in this long is killed (GRIDSHIM_EXEC_TIMEOUT)
EXEC_OUTPUT_LIMIT = 1024 * 1024


def memfile(data: bytes) -> str:
    """A path to DATA that never touches disk (ssl.load_cert_chain wants paths)."""
    fd = os.memfd_create("gridshim-cred", 0)
    os.write(fd, data)
    return f"/proc/self/fd/{fd}"


class ExecCredential:
    """One answer of an exec plugin: a token and/or a client certificate, valid until `expires` (epoch s)."""

    def __init__(self, token: str | None, cert: bytes | None, key: bytes | None, expires: float | None) -> None:
        self.token, self.cert, self.key, self.expires = token, cert, key, expires
        self._paths: tuple[str, str] | None = None

    def expired(self, now: float | None = None) -> bool:
        return self.expires is not None and (time.time() if now is None else now) >= self.expires

    def cert_paths(self) -> tuple[str, str] | None:
        if self.cert is None or self.key is None:
            return None
        if self._paths is None:
            self._paths = (memfile(self.cert), memfile(self.key))
        return self._paths


# The process's exec credentials, by plugin configuration: two clients of one kubeconfig user (a list's
# prefetch connection, crontab's writers) run the plugin once, as client-go's cache does.
_CACHE: dict[str, ExecCredential] = {}


class Auth:
    """The credentials of one kubeconfig user, for every attempt of every connection made with them."""

    def __init__(self, creds: Credentials, *, environ: Any = None, stdin: Any = None) -> None:
        self.creds = creds
        self.environ = os.environ if environ is None else environ
        self.stdin = sys.stdin if stdin is None else stdin
        self.generation = 0  # bumped whenever the client certificate changes (the TLS context is rebuilt)
        self._token = creds.token
        self._token_read = time.monotonic()  # when the token file was last read
        self._exec: ExecCredential | None = None

    @property
    def uses_exec(self) -> bool:
        return self.creds.exec_spec is not None

    def _current_exec(self) -> ExecCredential:
        """The plugin's credential: this process's until it expires, else the plugin is run (again)."""
        cred = self._exec
        if cred is None or cred.expired():
            key = self._cache_key()
            fresh = _CACHE.get(key)
            if fresh is None or fresh.expired():
                fresh = run_exec(self.creds, environ=self.environ, stdin=self.stdin)
                _CACHE[key] = fresh
            if cred is None or fresh.cert != cred.cert:
                self.generation += 1
            self._exec = cred = fresh
        return cred

    def _cache_key(self) -> str:
        import json  # noqa: PLC0415

        return json.dumps([self.creds.exec_spec, self.creds.exec_cluster], sort_keys=True, default=str)

    def client_cert(self) -> tuple[str, str | None] | None:
        """(certificate path, key path) for ssl.load_cert_chain, or None."""
        c = self.creds
        if self.uses_exec:
            paths = (self._exec or self._current_exec()).cert_paths()
            if paths is not None:
                return paths
        if c.cert_file or c.cert_data:
            cert = c.cert_file or memfile(c.cert_data or b"")
            key = c.key_file or (memfile(c.key_data) if c.key_data else None)
            return cert, key
        return None

    def headers(self) -> list[tuple[str, str]]:
        """Authorization (if any) and the Impersonate-* headers, for one attempt. The attempt's exec
        credential is settled here (the plugin runs if it has none or it has expired), so the TLS context
        built next for the same attempt uses the same answer."""
        if self.creds.token_file and time.monotonic() - self._token_read >= TOKEN_FILE_PERIOD:
            self._read_token_file()
        token = self._token
        if self.uses_exec:
            cred = self._current_exec()
            token = cred.token or token
        out = [("Authorization", f"Bearer {token}")] if token else []
        out.extend(self.creds.impersonate)
        return out

    def needs_new_context(self, built: int) -> bool:
        """Whether the TLS context built at generation BUILT holds an old client certificate."""
        return built != self.generation

    def refresh(self) -> bool:
        """After a 401: get fresh credentials once (run the plugin again, re-read the tokenFile). True if
        there is something new to try."""
        if self.uses_exec:
            old = self._exec
            _CACHE.pop(self._cache_key(), None)
            self._exec = None
            cred = self._current_exec()
            return old is None or (cred.token, cred.cert) != (old.token, old.cert)
        if self.creds.token_file:
            return self._read_token_file()
        return False

    def _read_token_file(self) -> bool:
        """Read the token file again (a rotated token); True if it holds a new token. A file that cannot
        be read (or is empty) keeps the token in hand: the server's answer will tell."""
        self._token_read = time.monotonic()
        try:
            with open(str(self.creds.token_file)) as f:
                token = f.read().strip()
        except (OSError, UnicodeDecodeError):
            return False
        if not token:
            return False
        changed, self._token = token != self._token, token
        return changed

    def describe(self) -> str:
        """How this user authenticates, for a 401's hint."""
        c = self.creds
        if self.uses_exec:
            return f"the exec plugin {plugin_name(c)}'s credentials"
        if c.in_cluster:
            return f"the pod's ServiceAccount token ({c.token_file})"
        if c.token_file:
            return f"the token in {c.token_file}"
        if c.token:
            return "the token"
        return "the client certificate"


def plugin_name(creds: Credentials) -> str:
    return os.path.basename(str(creds.exec_spec["command"])) if creds.exec_spec else "?"


def _stdin_is_terminal(stdin: Any) -> bool:
    try:
        return bool(stdin is not None and os.isatty(stdin.fileno()))
    except (AttributeError, OSError, ValueError):
        return False


def _exec_timeout(environ: Any) -> float:
    raw = str(environ.get("GRIDSHIM_EXEC_TIMEOUT") or "").strip()
    try:
        value = float(raw) if raw else EXEC_TIMEOUT
    except ValueError:
        value = EXEC_TIMEOUT
    return value if 0 < value <= 86400 else EXEC_TIMEOUT


def _rfc3339(text: str) -> float:
    import datetime  # noqa: PLC0415

    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def exec_info(creds: Credentials, interactive: bool) -> dict[str, Any]:
    """KUBERNETES_EXEC_INFO as client-go sets it: the ExecCredential request, with the cluster if asked."""
    spec_in = creds.exec_spec
    spec: dict[str, Any] = {"interactive": interactive}
    cl = creds.exec_cluster
    if spec_in.get("provideClusterInfo") and cl is not None:
        import base64  # noqa: PLC0415

        ca = cl.get("ca_data")
        if not ca and cl.get("ca_file"):
            try:
                with open(cl["ca_file"]) as f:
                    ca = f.read()
            except OSError:
                ca = None
        cluster: dict[str, Any] = {"server": cl["server"]}
        if cl.get("tls-server-name"):
            cluster["tls-server-name"] = cl["tls-server-name"]
        if cl.get("insecure-skip-tls-verify"):
            cluster["insecure-skip-tls-verify"] = True
        if ca:
            cluster["certificate-authority-data"] = base64.b64encode(ca.encode()).decode()
        if cl.get("proxy-url"):
            cluster["proxy-url"] = cl["proxy-url"]
        if cl.get("config") is not None:
            cluster["config"] = cl["config"]
        spec["cluster"] = cluster
    return {"kind": "ExecCredential", "apiVersion": spec_in["apiVersion"], "spec": spec}


def run_exec(creds: Credentials, *, environ: Any = None, stdin: Any = None) -> ExecCredential:
    """Run the user's exec plugin as client-go does; its answer, or one ClusterConfigError naming it."""
    import json  # noqa: PLC0415
    import subprocess  # noqa: PLC0415

    env_in = os.environ if environ is None else environ
    spec = creds.exec_spec
    name = plugin_name(creds)
    where = f"user {creds.user!r} in {creds.path}"

    def fail(why: str, hint: str) -> ClusterConfigError:
        return ClusterConfigError(f"the exec plugin {name} ({where}) {why}", hint=hint)

    mode = spec["interactiveMode"]
    stdin = sys.stdin if stdin is None else stdin
    tty = _stdin_is_terminal(stdin)
    if mode == "Always" and not tty:
        raise fail("needs a terminal (interactiveMode: Always) but standard input is not one",
                   hint="run the command from a terminal, or log in with the plugin first")
    interactive = mode == "Always" or (mode == "IfAvailable" and tty)
    env = dict(env_in)
    env.update(spec["env"])
    env["KUBERNETES_EXEC_INFO"] = json.dumps(exec_info(creds, interactive), separators=(",", ":"))
    timeout = _exec_timeout(env_in)
    try:
        proc = subprocess.run([spec["command"], *spec["args"]], env=env, stdout=subprocess.PIPE,
                              stdin=stdin if interactive else subprocess.DEVNULL, timeout=timeout, check=False)
    except FileNotFoundError:
        raise fail(f"was not found ({spec['command']})",
                   hint=spec["installHint"].strip().replace("\n", " ") or "install it, or fix the exec entry's "
                                                                           "command") from None
    except PermissionError:
        raise fail(f"cannot be run ({spec['command']}: permission denied)", hint="check its path and mode") from None
    except OSError as e:
        raise fail(f"cannot be run ({e.strerror or e})", hint="check the exec entry's command") from None
    except subprocess.TimeoutExpired:
        raise fail(f"did not answer within {timeout:g} s and was stopped",
                   hint="check the plugin on its own; GRIDSHIM_EXEC_TIMEOUT sets the limit") from None
    if proc.returncode != 0:
        raise fail(f"failed (exit status {proc.returncode})",
                   hint="its own message, if any, is above; run it on its own to see why")
    out = proc.stdout[:EXEC_OUTPUT_LIMIT + 1]

    def garbage(why: str) -> ClusterConfigError:
        return fail(f"printed no usable credential ({why})",
                    hint="it must print an ExecCredential as JSON on stdout; run it on its own to see what it prints")

    if len(out) > EXEC_OUTPUT_LIMIT:
        raise garbage("more than 1 MiB on stdout")
    try:
        doc = json.loads(out)
    except (ValueError, UnicodeDecodeError):
        raise garbage("not JSON") from None
    if not isinstance(doc, dict) or doc.get("kind") != "ExecCredential":
        raise garbage("not an ExecCredential")
    if doc.get("apiVersion") != spec["apiVersion"]:
        raise garbage(f"apiVersion {doc.get('apiVersion')!r}, but the kubeconfig asks for {spec['apiVersion']}")
    status = doc.get("status")
    if not isinstance(status, dict):
        raise garbage("no status")
    token = status.get("token") or None
    cert, key = status.get("clientCertificateData") or None, status.get("clientKeyData") or None
    if not all(v is None or isinstance(v, str) for v in (token, cert, key)):
        raise garbage("status fields are not strings")
    if (cert is None) != (key is None):
        raise garbage("clientCertificateData and clientKeyData must come together")
    if token is None and cert is None:
        raise garbage("neither a token nor a client certificate")
    expires = None
    stamp = status.get("expirationTimestamp")
    if stamp:
        try:
            expires = _rfc3339(str(stamp))
        except ValueError:
            raise garbage(f"expirationTimestamp {stamp!r} is not an RFC 3339 time") from None
    return ExecCredential(token, cert.encode() if cert else None, key.encode() if key else None, expires)
