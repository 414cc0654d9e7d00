"""User text shown back to people and scripts (leaf: imports nothing from gridshim).

Names, paths and arguments come from users, and from objects anyone with access to the namespace can
edit with kubectl. Wherever they are printed they are kept on one line and made harmless: control
characters and undecodable bytes are written as escapes, so a job name can neither drive the terminal
nor split a line that scripts parse, and qstat -xml stays well-formed XML. `printable` is the one rule
for every message, listing and error line; `shown` is its name where a value is echoed.
"""

from __future__ import annotations


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """TEXT on one line: every character that is not printable (controls, tab, line and paragraph
    separators, format characters) written as its Python escape, an undecodable argv byte (a lone
    surrogate of surrogateescape) as `\\xNN`. KEEP_NEWLINES keeps the line breaks a message means
    (qsub's two-line answers)."""
    if text.isprintable():
        return text
    if keep_newlines and "\n" in text:
        return "\n".join(printable(line) for line in text.split("\n"))
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def _escape(c: str) -> str:
    code = ord(c)
    if 0xDC80 <= code <= 0xDCFF:  # the byte surrogateescape stood for
        return f"\\x{code - 0xDC00:02x}"
    return c.encode("unicode_escape").decode("ascii")


shown = printable
