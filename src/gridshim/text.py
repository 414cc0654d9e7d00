"""User text shown back to people and scripts (leaf: imports nothing from gridshim).

Names, paths and arguments come from users, and from objects anyone with access to the namespace can
edit with kubectl. Wherever they are printed they are kept on one line and made harmless: control
characters and undecodable bytes are written as escapes, so a job name can neither drive the terminal
nor split a line that scripts parse, and qstat -xml stays well-formed XML.
"""

from __future__ import annotations


def shown(text: str) -> str:
    """TEXT on one line: control characters and undecodable argv bytes written as escapes."""
    raw = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if raw.isprintable():
        return raw
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in raw)
