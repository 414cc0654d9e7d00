"""Loopback fakes for the kube client's tests: a CA and certificates, an HTTPS API server that records
every request (headers, SNI, client certificate), and an HTTP CONNECT proxy that records every tunnel.

The e2e suite uses the proxy against the real sandbox (tests/e2e/test_kubeconfig_forms.py)."""

from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class Pki:
    """A CA, a server certificate (SANS) and a client certificate (CN=tool), as PEM files in DIR."""

    dir: Path
    ca: Path = field(init=False)
    server_cert: Path = field(init=False)
    server_key: Path = field(init=False)
    client_cert: Path = field(init=False)
    client_key: Path = field(init=False)

    @classmethod
    def make(cls, dir: Path, *, sans: tuple[str, ...] = ("localhost", "127.0.0.1"), cn: str = "tool-x") -> Pki:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        dir.mkdir(parents=True, exist_ok=True)
        now = datetime.datetime.now(datetime.UTC)

        def pem_key(k: Any) -> bytes:
            return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption())

        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubefake-ca")])
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
              .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
              .not_valid_after(now + datetime.timedelta(days=2))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .sign(ca_key, hashes.SHA256()))

        def leaf(name: str, server: bool) -> tuple[bytes, bytes]:
            key = ec.generate_private_key(ec.SECP256R1())
            b = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                 .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                 .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
                 .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server
                                                       else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
            if server:
                alt: list[Any] = []
                for s in sans:
                    try:
                        alt.append(x509.IPAddress(ipaddress.ip_address(s)))
                    except ValueError:
                        alt.append(x509.DNSName(s))
                b = b.add_extension(x509.SubjectAlternativeName(alt), critical=False)
            return b.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM), pem_key(key)

        p = cls(dir)
        p.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        sc, sk = leaf("kubefake-apiserver", True)
        p.server_cert.write_bytes(sc)
        p.server_key.write_bytes(sk)
        cc, ck = leaf(cn, False)
        p.client_cert.write_bytes(cc)
        p.client_key.write_bytes(ck)
        return p

    def __post_init__(self) -> None:
        self.ca, self.server_cert, self.server_key = self.dir / "ca.crt", self.dir / "srv.crt", self.dir / "srv.key"
        self.client_cert, self.client_key = self.dir / "client.crt", self.dir / "client.key"


@dataclass
class Seen:
    method: str
    path: str
    headers: list[tuple[str, str]]
    client_cn: str | None
    sni: str | None
    body: Any = None

    def header(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


class FakeApiServer:
    """An HTTPS server on 127.0.0.1 that answers like a small kube-apiserver.

    A request is authenticated by a bearer token in `tokens` or a client certificate whose CN is in
    `users`; anything else gets 401. `routes[(method, path-without-query)]` may override the answer:
    (status, body dict, extra headers)."""

    def __init__(self, pki: Pki, *, tokens: set[str] | None = None, users: set[str] | None = None) -> None:
        self.pki, self.tokens, self.users = pki, set(tokens or ()), set(users or {"tool-x"})
        self.seen: list[Seen] = []
        self.routes: dict[tuple[str, str], tuple[int, Any, dict[str, str]]] = {}
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(pki.server_cert), str(pki.server_key))
        ctx.load_verify_locations(str(pki.ca))
        ctx.verify_mode = ssl.CERT_OPTIONAL
        sni: dict[int, str | None] = {}

        def on_sni(sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
            sni[id(sock)] = name

        ctx.sni_callback = on_sni  # type: ignore[assignment]
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: Any) -> None:
                pass

            def _any(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                cert = self.connection.getpeercert()  # type: ignore[attr-defined]
                cn = None
                for rdn in (cert or {}).get("subject", ()):
                    for k, v in rdn:
                        if k == "commonName":
                            cn = v
                seen = Seen(self.command, self.path, list(self.headers.items()), cn, sni.get(id(self.connection)),
                            json.loads(raw) if raw else None)
                server.seen.append(seen)
                status, body, extra = server.answer(seen)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in extra.items():
                    for one in (v if isinstance(v, list) else [v]):
                        self.send_header(k, one)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, seen: Seen) -> tuple[int, Any, dict[str, str]]:
        auth = seen.header("Authorization")
        ok = (auth and auth[0].startswith("Bearer ") and auth[0][7:] in self.tokens) or seen.client_cn in self.users
        if not ok:
            return 401, {"kind": "Status", "code": 401, "reason": "Unauthorized", "message": "Unauthorized"}, {}
        route = self.routes.get((seen.method, seen.path.split("?")[0]))
        if route is not None:
            return route
        if seen.method in ("POST", "PUT", "PATCH"):
            return 201, seen.body or {}, {}
        return 200, {"kind": "ConfigMap", "metadata": {"name": "x"}}, {}

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class ConnectProxy:
    """An HTTP CONNECT proxy on 127.0.0.1 that records each tunnel's target ("host:port") and relays it.

    RESOLVE maps a target host to the address actually dialled (so a made-up name can reach a loopback
    server, the way a real proxy resolves names itself); REFUSE answers every CONNECT with that status."""

    def __init__(self, *, resolve: dict[str, str] | None = None, refuse: int | None = None) -> None:
        self.tunnels: list[str] = []
        self.resolve, self.refuse = dict(resolve or {}), refuse
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(client,), daemon=True).start()

    def _one(self, client: socket.socket) -> None:
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(4096)
                if not chunk:
                    client.close()
                    return
                head += chunk
            line = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            if len(line) < 2 or line[0] != "CONNECT":
                client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                client.close()
                return
            target = line[1]
            self.tunnels.append(target)
            if self.refuse:
                client.sendall(f"HTTP/1.1 {self.refuse} Refused\r\nContent-Length: 0\r\n\r\n".encode())
                client.close()
                return
            host, _, port = target.rpartition(":")
            host = host.strip("[]")
            upstream = socket.create_connection((self.resolve.get(host, host), int(port)), timeout=10)
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        client.settimeout(None)

        def pump(a: socket.socket, b: socket.socket) -> None:
            try:
                while True:
                    data = a.recv(65536)
                    if not data:
                        break
                    b.sendall(data)
            except OSError:
                pass
            finally:
                for s in (a, b):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        threading.Thread(target=pump, args=(client, upstream), daemon=True).start()
        pump(upstream, client)

    def close(self) -> None:
        self._stop = True
        self.sock.close()


def free_port() -> int:
    """A loopback port with nothing listening on it (for a proxy that is down)."""
    s = socket.create_server(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return int(port)


def with_server(fn: Callable[[FakeApiServer], Any], pki: Pki, **kw: Any) -> Any:
    srv = FakeApiServer(pki, **kw)
    try:
        return fn(srv)
    finally:
        srv.close()
