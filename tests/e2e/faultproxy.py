"""A loopback HTTPS proxy between gridshim and the sandbox API server that injects faults.

It terminates TLS with a serving certificate from the sandbox CA (so a kubeconfig whose server is
rewritten to the proxy verifies it unchanged), requires a client certificate, and forwards each
request to the real API server with the tool's own client certificate and key, so RBAC and
quotas apply exactly as without it. Faults are rules matched against each request in order:

- ``reset``          close the connection with a TCP RST instead of answering (request not forwarded)
- ``reset_handshake`` RST right after accepting, before TLS (a connection cut during the handshake)
- ``delay``          wait SECONDS, then forward and answer normally
- ``status``         answer STATUS (429, 500, 503 …) with a Kubernetes Status body and an optional
                     Retry-After, without forwarding
- ``drop_answer``    forward the request, read the API server's answer, then RST the client: the
                     write happened but the client never hears of it (the lost answer)
- ``forward_then``   forward, then answer STATUS instead of the real answer (a 5xx that hides success)

Every request is logged with the fault applied (if any) and the API server's status, so tests can
count what reached the server. Used by tests/e2e/test_faults.py.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

KINDS = ("reset", "reset_handshake", "delay", "status", "drop_answer", "forward_then")
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection",
               "content-length"}


@dataclass
class Fault:
    """One rule: KIND applied to the next TIMES requests matching METHOD and the PATH regex (-1 = forever)."""

    kind: str
    method: str | None = None
    path: str | None = None
    times: int = 1
    status: int = 503
    retry_after: str | None = None
    seconds: float = 0.0
    applied: int = 0

    def __post_init__(self) -> None:
        assert self.kind in KINDS, self.kind

    def matches(self, method: str, path: str) -> bool:
        if self.times != -1 and self.applied >= self.times:
            return False
        if self.method and self.method != method:
            return False
        return not self.path or re.search(self.path, path) is not None


@dataclass
class Entry:
    """One request seen by the proxy."""

    method: str
    path: str
    fault: str | None
    upstream_status: int | None  # None when the request was not forwarded
    at: float
    body: bytes = b""


@dataclass
class FaultProxy:
    upstream: str  # https://host:port of the real API server
    ca_pem: bytes  # the sandbox CA (verifies the upstream and the client certificates)
    serving: tuple[bytes, bytes]  # (cert PEM, key PEM) for 127.0.0.1, from the sandbox CA
    client: tuple[str, str]  # the tool's client cert and key files, used upstream
    workdir: Path
    faults: list[Fault] = field(default_factory=list)
    log: list[Entry] = field(default_factory=list)
    retired: list[Fault] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._socks: set[socket.socket] = set()
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "serving.crt").write_bytes(self.serving[0])
        (self.workdir / "serving.key").write_bytes(self.serving[1])
        (self.workdir / "ca.crt").write_bytes(self.ca_pem)
        self._server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._server_ctx.load_cert_chain(self.workdir / "serving.crt", self.workdir / "serving.key")
        self._server_ctx.verify_mode = ssl.CERT_REQUIRED  # the client must present a certificate
        self._server_ctx.load_verify_locations(self.workdir / "ca.crt")
        self._client_ctx = ssl.create_default_context(cafile=str(self.workdir / "ca.crt"))
        self._client_ctx.load_cert_chain(*self.client)
        u = re.fullmatch(r"https://([^:/]+):(\d+)/?", self.upstream)
        assert u, self.upstream
        self._up_host, self._up_port = u.group(1), int(u.group(2))

    # -- control ------------------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        t = threading.Thread(target=self._accept_loop, name="faultproxy", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.close()
            except OSError:
                pass
        for t in self._threads:
            t.join(timeout=5)
        self._listener.close()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def add(self, *faults: Fault) -> None:
        with self._lock:
            self.faults.extend(faults)

    def clear(self) -> None:
        """Stop injecting; the faults applied so far still count (`injected`, `all_faults`)."""
        with self._lock:
            self.retired.extend(self.faults)
            self.faults.clear()

    def all_faults(self) -> list[Fault]:
        with self._lock:
            return [*self.retired, *self.faults]

    def entries(self, method: str | None = None, path: str | None = None) -> list[Entry]:
        with self._lock:
            return [e for e in self.log if (method is None or e.method == method)
                    and (path is None or re.search(path, e.path))]

    def injected(self) -> int:
        """How many faults were applied so far."""
        with self._lock:
            return sum(f.applied for f in (*self.retired, *self.faults))

    def kubeconfig_for(self, kubeconfig: str, dest: Path) -> Path:
        """A copy of KUBECONFIG whose server is this proxy (relative cert paths still resolve: same dir)."""
        cfg = yaml.safe_load(Path(kubeconfig).read_text())
        for c in cfg["clusters"]:
            c["cluster"]["server"] = self.url
        dest.write_text(yaml.safe_dump(cfg, sort_keys=False))
        return dest

    # -- serving ------------------------------------------------------------------------------------

    def _pick(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for f in self.faults:
                if f.kind != "reset_handshake" and f.matches(method, path):
                    f.applied += 1
                    return f
        return None

    def _pick_handshake(self) -> Fault | None:
        with self._lock:
            for f in self.faults:
                if f.kind == "reset_handshake" and (f.times == -1 or f.applied < f.times):
                    f.applied += 1
                    return f
        return None

    def _record(self, entry: Entry) -> None:
        with self._lock:
            self.log.append(entry)

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                raw, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(raw,), daemon=True)
            t.start()
            self._threads.append(t)

    @staticmethod
    def _rst(sock: socket.socket) -> None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            sock.close()
        except OSError:
            pass

    def _serve(self, raw: socket.socket) -> None:
        with self._lock:
            self._socks.add(raw)
        if self._pick_handshake() is not None:
            self._record(Entry("-", "(handshake)", "reset_handshake", None, time.monotonic()))
            self._rst(raw)
            return
        try:
            raw.settimeout(120)
            conn = self._server_ctx.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            self._rst(raw)
            return
        upstream = http.client.HTTPSConnection(self._up_host, self._up_port, context=self._client_ctx, timeout=120)
        rfile = conn.makefile("rb")
        try:
            while not self._stop.is_set():
                if not self._one(conn, rfile, upstream):
                    break
        except (OSError, ssl.SSLError, http.client.HTTPException, ValueError):
            pass
        finally:
            upstream.close()
            try:
                rfile.close()
                conn.close()
            except OSError:
                pass
            with self._lock:
                self._socks.discard(raw)

    def _one(self, conn: ssl.SSLSocket, rfile: Any, upstream: http.client.HTTPSConnection) -> bool:
        """Serve one request; False when the connection is finished."""
        line = rfile.readline(65537)
        if not line:
            return False
        method, target, _version = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        headers: list[tuple[str, str]] = []
        while True:
            h = rfile.readline(65537).decode("latin-1").rstrip("\r\n")
            if not h:
                break
            k, _, v = h.partition(":")
            headers.append((k.strip(), v.strip()))
        length = int(next((v for k, v in headers if k.lower() == "content-length"), "0"))
        body = rfile.read(length) if length else b""
        path = target.split("?", 1)[0]
        fault = self._pick(method, target)
        kind = fault.kind if fault else None
        entry = Entry(method, target, kind, None, time.monotonic(), body)
        if fault and fault.kind == "reset":
            self._record(entry)
            self._rst(conn)
            return False
        if fault and fault.kind == "status":
            self._record(entry)
            self._answer(conn, fault.status, _status_body(fault.status, path), retry_after=fault.retry_after)
            return True
        if fault and fault.kind == "delay":
            time.sleep(fault.seconds)
        fwd = {k: v for k, v in headers if k.lower() not in HOP_HEADERS and k.lower() != "host"}
        try:
            upstream.request(method, target, body=body or None, headers=fwd)
            resp = upstream.getresponse()
        except (OSError, http.client.HTTPException):
            upstream.close()
            self._record(entry)
            self._rst(conn)
            return False
        entry.upstream_status = resp.status
        self._record(entry)
        if "watch=" in target and resp.status < 300:
            self._stream(conn, resp)
            return False
        data = resp.read()
        if fault and fault.kind == "drop_answer":
            self._rst(conn)
            return False
        if fault and fault.kind == "forward_then":
            self._answer(conn, fault.status, _status_body(fault.status, path), retry_after=fault.retry_after)
            return True
        self._answer(conn, resp.status, data, content_type=resp.getheader("Content-Type") or "application/json",
                     reason=resp.reason)
        return True

    @staticmethod
    def _answer(conn: ssl.SSLSocket, status: int, body: bytes, *, retry_after: str | None = None,
                content_type: str = "application/json", reason: str | None = None) -> None:
        head = [f"HTTP/1.1 {status} {reason or http.client.responses.get(status, 'Status')}",
                f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
        if retry_after is not None:
            head.append(f"Retry-After: {retry_after}")
        conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)

    @staticmethod
    def _stream(conn: ssl.SSLSocket, resp: http.client.HTTPResponse) -> None:
        conn.sendall(f"HTTP/1.1 {resp.status} {resp.reason}\r\nContent-Type: application/json\r\n"
                     "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n".encode("latin-1"))
        while True:
            chunk = resp.readline()
            if not chunk:
                break
            conn.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        conn.sendall(b"0\r\n\r\n")


def _status_body(status: int, path: str) -> bytes:
    reason = {429: "TooManyRequests", 500: "InternalError", 502: "BadGateway", 503: "ServiceUnavailable",
              504: "Timeout"}.get(status, "Unknown")
    return json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": status, "reason": reason,
                       "message": f"injected by faultproxy for {path}"}).encode()


def start_for(tool: Any, sandbox: Any, workdir: Path) -> FaultProxy:
    """A running proxy for TOOL (its client certificate upstream) with a serving cert from the sandbox CA."""
    from sandbox import pki

    repo = Path(__file__).resolve().parents[2]
    ca = pki.load(repo / ".sandbox" / "pki" / "ca")
    serving = pki.issue(ca, cn="127.0.0.1", server=True)
    cfg = yaml.safe_load(Path(tool.kubeconfig).read_text())
    user = cfg["users"][0]["user"]
    base = Path(tool.kubeconfig).parent
    client = (str((base / user["client-certificate"]).resolve()), str((base / user["client-key"]).resolve()))
    return FaultProxy(upstream=sandbox.state["server"], ca_pem=(repo / ".sandbox" / "pki" / "ca.crt").read_bytes(),
                      serving=serving, client=client, workdir=workdir).start()
