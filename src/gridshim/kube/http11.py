"""The part of `http.client` the transport uses, without it: `import http.client` imports the `email`
package for header parsing, ~10 ms of every jsub's start-up (docs/performance.md).

HTTP/1.1 over one socket: requests with Content-Length, responses with Content-Length, chunked
bodies (read whole, or line by line for watches) or a body to the end of the connection;
keep-alive unless the server closes. The exceptions mirror http.client's (HTTPException,
RemoteDisconnected as a ConnectionResetError, IncompleteRead), and so do the names the transport
uses: HTTPSConnection (host, port, timeout, sock, connect, request, getresponse, close) and the
response's status, reason, headers.get_all, getheader, read, readline."""

from __future__ import annotations

import socket
import ssl

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up, docs/performance.md)
if TYPE_CHECKING:
    from typing import Any

_MAX_LINE = 65536
_MAX_HEADERS = 200


class HTTPException(Exception):
    pass


class RemoteDisconnected(ConnectionResetError, HTTPException):
    pass


class IncompleteRead(HTTPException):
    pass


class BadStatusLine(HTTPException):
    pass


def reason_phrase(status: int) -> str:
    """'Not Found' for 404, as http.client.responses gives it; '' when unknown."""
    from http import HTTPStatus  # noqa: PLC0415  (the `http` package itself is only an enum)

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


class Headers:
    """A response's header fields in order (names compared case-insensitively)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs

    def get(self, name: str, default: Any = None) -> Any:
        name = name.lower()
        for k, v in self._pairs:
            if k.lower() == name:
                return v
        return default

    def get_all(self, name: str, failobj: Any = None) -> Any:
        name = name.lower()
        found = [v for k, v in self._pairs if k.lower() == name]
        return found or failobj

    def items(self) -> list[tuple[str, str]]:
        return list(self._pairs)


def _line(fp: Any) -> bytes:
    line = fp.readline(_MAX_LINE + 1)
    if len(line) > _MAX_LINE:
        raise HTTPException("header line too long")
    return line  # type: ignore[no-any-return]


class Response:
    def __init__(self, fp: Any, method: str, owner: HTTPSConnection) -> None:
        self._fp = fp
        self._owner = owner
        line = _line(fp)
        while True:
            if not line:
                raise RemoteDisconnected("Remote end closed connection without response")
            parts = line.decode("iso-8859-1").rstrip("\r\n").split(None, 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit() or len(parts[1]) != 3:
                raise BadStatusLine(repr(line[:100]))
            version, status = parts[0], int(parts[1])
            self.reason = parts[2] if len(parts) > 2 else ""
            pairs = self._headers()
            if status != 100:
                break
            line = _line(fp)  # 100 Continue: the real answer follows
        self.status = status
        self.version = 11 if version == "HTTP/1.1" else 10
        self.headers = Headers(pairs)
        connection = (self.headers.get("Connection") or "").lower()
        self.will_close = "close" in connection or (self.version == 10 and "keep-alive" not in connection)
        self._chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
        self._chunk_left: int | None = None
        self._left: int | None = None
        self._done = False
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            self._left = 0
        elif not self._chunked:
            length = self.headers.get("Content-Length")
            if length is not None:
                try:
                    self._left = int(length)
                except ValueError:
                    self._left = None
                if self._left is not None and self._left < 0:
                    self._left = None
            if self._left is None:
                self.will_close = True  # the body ends with the connection
        if self._left == 0:
            self._finish()

    def _headers(self) -> list[tuple[str, str]]:
        pairs: list[tuple[str, str]] = []
        while True:
            line = _line(self._fp)
            if line in (b"\r\n", b"\n", b""):
                return pairs
            if len(pairs) >= _MAX_HEADERS:
                raise HTTPException(f"got more than {_MAX_HEADERS} headers")
            name, sep, value = line.decode("iso-8859-1").partition(":")
            if sep and name and name == name.strip():
                pairs.append((name, value.strip()))

    def getheader(self, name: str, default: Any = None) -> Any:
        return self.headers.get(name, default)

    def _finish(self) -> None:
        if not self._done:
            self._done = True
            self._owner._response_done(self)

    def _chunk(self) -> int:
        """Bytes left in the current chunk, reading the next chunk's size line when needed; 0 at the end."""
        if self._chunk_left:
            return self._chunk_left
        if self._chunk_left == 0:
            _line(self._fp)  # the CRLF after the previous chunk's data
        size_line = _line(self._fp)
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise IncompleteRead(f"bad chunk size {size_line[:40]!r}") from None
        if size == 0:
            while _line(self._fp) not in (b"\r\n", b"\n", b""):  # trailers
                pass
            self._chunk_left = None
            self._finish()
            return 0
        self._chunk_left = size
        return size

    def read(self) -> bytes:
        if self._done:
            return b""
        if self._chunked:
            # One growing buffer, returned as it is (callers decode it): joining a list of chunks held a
            # list page twice at its end, ~5 MB more at qstat's peak with 500 Jobs a page (performance.md)
            out = bytearray()
            while True:
                n = self._chunk()
                if n == 0:
                    return out  # type: ignore[return-value]  # bytes-like: json, decode, re take it
                data = self._fp.read(n)
                if len(data) < n:
                    raise IncompleteRead(f"{len(data)} of {n} bytes of a chunk")
                out += data
                del data
                self._chunk_left = 0
        if self._left is None:
            data = self._fp.read()
            self._finish()
            return data  # type: ignore[no-any-return]
        data = self._fp.read(self._left)
        if len(data) < self._left:
            self._owner.close()
            raise IncompleteRead(f"{len(data)} of {self._left} bytes")
        self._left = 0
        self._finish()
        return data  # type: ignore[no-any-return]

    def readline(self) -> bytes:
        """One line of the body (a watch event), b"" at its end."""
        if self._done:
            return b""
        if not self._chunked:
            if self._left is None:
                line = self._fp.readline()
                if not line:
                    self._finish()
                return line  # type: ignore[no-any-return]
            line = self._fp.readline(self._left)
            self._left -= len(line)
            if self._left == 0 or not line:
                self._finish()
            return line  # type: ignore[no-any-return]
        out = b""
        while not out.endswith(b"\n"):
            n = self._chunk()
            if n == 0:
                return out
            part = self._fp.readline(n)
            if not part:
                raise IncompleteRead("the connection ended inside a chunk")
            out += part
            self._chunk_left = n - len(part)
        return out

    def close(self) -> None:
        if not self._done:
            self._done = True
            self._owner.close()


class HTTPSConnection:
    """One connection to HOST:PORT; connect() (TLS on a socket) is the subclass's or the default's."""

    default_port = 443

    def __init__(self, host: str, port: int | None = None, *, context: ssl.SSLContext | None = None,
                 timeout: float | None = None) -> None:
        self.host, self.port = host, port or self.default_port
        self.timeout = timeout
        self.sock: Any = None
        self._context = context
        self._fp: Any = None
        self._response: Response | None = None

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        ctx = self._context or ssl.create_default_context()
        self.sock = ctx.wrap_socket(sock, server_hostname=self.host)

    def _host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == self.default_port else f"{host}:{self.port}"

    def request(self, method: str, url: str, body: bytes | None = None, headers: Any = None) -> None:
        if self._response is not None:  # the previous answer was not read to its end: start afresh
            self.close()
        if self.sock is None:
            self.connect()
        if self._fp is None:
            self._fp = self.sock.makefile("rb")
        lines = [f"{method} {url} HTTP/1.1", f"Host: {self._host_header()}", "Accept-Encoding: identity"]
        for k, v in (headers.items() if headers is not None else []):
            if k.lower() != "content-length":
                lines.append(f"{k}: {v}")
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body or b'')}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            self.sock.sendall(head + body if body else head)
        except BaseException:
            self.close()
            raise
        self._method = method

    def getresponse(self) -> Response:
        try:
            resp = Response(self._fp, self._method, self)
        except BaseException:
            self.close()
            raise
        if not resp._done:
            self._response = resp
        return resp

    def _response_done(self, resp: Response) -> None:
        self._response = None
        if resp.will_close:
            self.close()

    def close(self) -> None:
        self._response = None
        fp, sock = self._fp, self.sock
        self._fp = self.sock = None
        for thing in (fp, sock):
            if thing is not None:
                try:
                    thing.close()
                except OSError:
                    pass
