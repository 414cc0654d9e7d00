"""gridshim.digest gives hashlib's SHA-256 without importing hashlib."""

from __future__ import annotations

import hashlib

from hypothesis import given, strategies as st

from gridshim.digest import sha256_hex


@given(st.text())
def test_the_digest_is_hashlibs(text: str) -> None:
    assert sha256_hex(text) == hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def test_undecodable_argv_bytes_are_digested_as_the_bytes_they_were() -> None:
    name = b"caf\xe9".decode("utf-8", "surrogateescape")
    assert sha256_hex(name) == hashlib.sha256(b"caf\xe9").hexdigest()
