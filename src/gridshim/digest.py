"""SHA-256 hex digests of names (leaf): Job-name suffixes and the private cache's file names.

`hashlib` loads its OpenSSL binding when imported (~1-2 ms of a jsub, docs/performance.md); the
interpreter's built-in SHA-256 module gives the same digest without it. These digests name things;
they guard nothing, so which implementation computes them does not matter.
"""

from __future__ import annotations

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (start-up, docs/performance.md)
if TYPE_CHECKING:
    from hashlib import sha256  # what the checker sees: the built-in modules have no stubs, and behave the same
else:
    try:
        from _sha2 import sha256  # Python 3.12 and later
    except ImportError:
        try:
            from _sha256 import sha256  # Python 3.11
        except ImportError:  # an interpreter built without them
            from hashlib import sha256


__all__ = ["sha256", "sha256_hex"]  # sha256(data) as hashlib.sha256(data)


def sha256_hex(text: str) -> str:
    """hashlib.sha256(TEXT as UTF-8, undecodable bytes kept).hexdigest()."""
    return sha256(text.encode("utf-8", "surrogateescape")).hexdigest()
