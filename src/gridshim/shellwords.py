"""POSIX sh words of one command line, read the way /bin/sh reads them, never run (pure leaf).

Layer: parsing only; imports nothing of gridshim. Used by crontab.py (cron runs each command with
/bin/sh) and migrate.py (grid commands in crontabs and shell scripts):

- `tokenize(line)`: words and operators (`&&`, `;`, `|`, `2>&1`, `>>`, …), each word with its parts
  (literal, quoted or not, `$VAR`, `~`, and the `$(…)`/`` `…` ``/`$1` only a running shell can know);
- `expand(word, env)`: the fields the shell would make of a word with ENV, or `Unstatic`;
- `prefixes(tokens, …)`: Toolforge's leading `cd DIR &&|;` and `[ test ] &&|;` steps and the directory
  they leave the command in;
- `posix_redirections(line)`: bash's `&>`/`&>>` as POSIX redirections;
- `substitutions(word)`: the command lines inside a word's `$(…)` and `` `…` ``.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

REDIRECTS = (">>", ">&", ">|", "<<-", "<<", "<&", "<>", "&>>", "&>", "<", ">")
CONTROLS = ("&&", "||", ";;", ";", "&", "|", "(", ")")
_OPERATOR = re.compile(r"(\d*)(" + "|".join(re.escape(o) for o in sorted(REDIRECTS + CONTROLS, key=len,
                                                                          reverse=True)) + ")")


class Unstatic(ValueError):
    """A word whose value only the shell can know at run time."""


@dataclass
class Token:
    kind: str  # "word" or "op"
    start: int
    end: int
    text: str  # the operator (with its io-number), or the word as typed
    parts: list[tuple[str, str, bool]] = field(default_factory=list)  # (lit|var|tilde|bad, value, quoted)
    glob: bool = False

    @property
    def operator(self) -> str:
        """The operator without its io-number (`2>&1` → `>&`); "" for a word."""
        return self.text.lstrip("0123456789") if self.kind == "op" else ""

    def is_op(self, *ops: str) -> bool:
        return self.operator in ops

    def is_redirect(self) -> bool:
        return self.operator in REDIRECTS

    def literal(self) -> str | None:
        """The word's value if it has no expansions at all (`cd`, `[`, `jsub`), else None."""
        if self.kind != "word" or any(k != "lit" for k, _, _ in self.parts):
            return None
        return "".join(v for _, v, _ in self.parts)


def _matching(s: str, i: int, open_: str, close: str) -> int:
    """Index after the bracket closing the one at s[i] (nesting counted, quotes skipped)."""
    depth = 0
    quote = ""
    while i < len(s):
        c = s[i]
        if quote:
            if c == quote:
                quote = ""
            elif c == "\\" and quote == '"':
                i += 1
        elif c in "'\"":
            quote = c
        elif c == "\\":
            i += 1
        elif c == open_:
            depth += 1
        elif c == close:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError(f"unterminated '{open_}'")


def _dollar(s: str, i: int, quoted: bool) -> tuple[tuple[str, str, bool], int]:
    """The expansion starting at s[i] == '$' → (part, index after it)."""
    nxt = s[i + 1] if i + 1 < len(s) else ""
    if nxt == "{":
        end = _matching(s, i + 1, "{", "}")
        inner = s[i + 2:end - 1]
        if VAR_NAME.match(inner):
            return ("var", inner, quoted), end
        return ("bad", f"${{{inner}}}", quoted), end
    if nxt == "(":
        end = _matching(s, i + 1, "(", ")")
        return ("bad", s[i:end], quoted), end
    m = re.match(r"[A-Za-z_][A-Za-z0-9_]*", s[i + 1:])
    if m:
        return ("var", m.group(0), quoted), i + 1 + m.end()
    if nxt and nxt in "0123456789@*#?$!-":
        return ("bad", f"${nxt}", quoted), i + 2
    return ("lit", "$", quoted), i + 1


def _backquote(s: str, i: int, quoted: bool) -> tuple[tuple[str, str, bool], int]:
    """A `…` command substitution starting at s[i]: only known at run time, so kept as 'bad'."""
    j = s.find("`", i + 1)
    if j < 0:
        raise ValueError("unterminated backquote")
    return ("bad", s[i:j + 1], quoted), j + 1


def _expansion(s: str, i: int, quoted: bool) -> tuple[tuple[str, str, bool], int]:
    """The `$…` or `` `…` `` starting at s[i] → (part, index after it)."""
    return _dollar(s, i, quoted) if s[i] == "$" else _backquote(s, i, quoted)


def tokenize(s: str) -> list[Token]:
    """POSIX sh words and operators of one command line (enough to read it, not to run it)."""
    tokens: list[Token] = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c in " \t":
            i += 1
            continue
        if c == "#":
            break  # a comment to the end of the line
        m = _OPERATOR.match(s, i)
        if m and (not m.group(1) or m.group(2) in REDIRECTS):  # an io-number only before a redirection
            tokens.append(Token("op", i, m.end(), m.group(0)))
            i = m.end()
            continue
        tok = Token("word", i, i, "")
        while i < n:
            c = s[i]
            if c in " \t" or c in ";&|()<>":
                break
            if c == "\\":
                if i + 1 < n:
                    tok.parts.append(("lit", s[i + 1], True))
                    i += 2
                else:
                    tok.parts.append(("lit", "\\", False))
                    i += 1
            elif c == "'":
                j = s.find("'", i + 1)
                if j < 0:
                    raise ValueError("unterminated single quote")
                tok.parts.append(("lit", s[i + 1:j], True))
                i = j + 1
            elif c == '"':
                i += 1
                tok.parts.append(("lit", "", True))  # "" is a word of its own, as in sh
                while True:
                    if i >= n:
                        raise ValueError("unterminated double quote")
                    c = s[i]
                    if c == '"':
                        i += 1
                        break
                    if c == "\\" and i + 1 < n and s[i + 1] in '$`"\\':
                        tok.parts.append(("lit", s[i + 1], True))
                        i += 2
                    elif c in "$`":
                        part, i = _expansion(s, i, True)
                        tok.parts.append(part)
                    else:
                        tok.parts.append(("lit", c, True))
                        i += 1
            elif c in "$`":
                part, i = _expansion(s, i, False)
                tok.parts.append(part)
            elif c == "~" and not tok.parts:
                m2 = re.match(r"~([A-Za-z0-9._-]*)", s[i:])
                assert m2 is not None
                after = s[i + m2.end():i + m2.end() + 1]
                if after in ("", "/", " ", "\t") or after in ";&|()<>":
                    tok.parts.append(("tilde", m2.group(1), False))
                    i += m2.end()
                else:
                    tok.parts.append(("lit", "~", False))
                    i += 1
            else:
                if c in "*?[":
                    tok.glob = True
                tok.parts.append(("lit", c, False))
                i += 1
        tok.end = i
        tok.text = s[tok.start:i]
        tokens.append(tok)
    return tokens


def expand(tok: Token, env: dict[str, str]) -> list[str]:
    """A word as cron's /bin/sh expands it: ~ and $VAR from the crontab's environment, field splitting of
    unquoted expansions. Raises Unstatic for anything only known at run time ($(…), `…`, $1, ${x:-y})."""
    fields: list[str] = []
    cur: list[str] = []
    have = False  # the current field exists (quoted empty strings count)
    for kind, value, quoted in tok.parts:
        if kind == "lit":
            cur.append(value)
            have = True
        elif kind == "tilde":
            if value:
                raise Unstatic(f"'~{value}' (another user's home)")
            cur.append(env.get("HOME", ""))
            have = True
        elif kind == "bad":
            raise Unstatic(f"'{value}'")
        else:  # var
            if value not in env:
                raise Unstatic(f"'${value}' is not set in this crontab (cron would make it empty)")
            val = env[value]
            if quoted:
                cur.append(val)
                have = True
                continue
            pieces = re.split(r"[ \t\n]+", val)
            for k, piece in enumerate(pieces):
                if k > 0:
                    if have or cur:
                        fields.append("".join(cur))
                    cur, have = [], False
                if piece:
                    cur.append(piece)
                    have = True
    if have or cur:
        fields.append("".join(cur))
    return fields


@dataclass
class Prefix:
    """What the leading `cd`/`[ … ]` steps of a line leave: the directory, the tests, where the command starts."""

    cwd: str
    cd_end: int = 0  # index of the first token after the `cd DIR &&|;` prefixes
    tests: list[str] = field(default_factory=list)  # `[ … ]` prefixes followed by && (they decide)
    head: int = 0  # index of the command's first token


def prefixes(tokens: list[Token], s: str, env: dict[str, str], home: str) -> Prefix:
    """Toolforge's `cd DIR &&|;` and `[ test ] &&|;` prefixes: any number of `cd`s, then any number of tests."""
    p = Prefix(cwd=home)
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if (t.literal() == "cd" and i == p.cd_end and i + 2 < len(tokens) and tokens[i + 1].kind == "word"
                and tokens[i + 2].is_op("&&", ";")):
            try:
                words = expand(tokens[i + 1], env)
            except Unstatic:
                break
            if len(words) != 1:
                break
            p.cwd = posixpath.normpath(posixpath.join(p.cwd, words[0]))
            i += 3
            p.cd_end = i
            continue
        if t.literal() == "[":
            j = next((k for k in range(i + 1, len(tokens)) if tokens[k].literal() == "]"), None)
            if j is None or j + 1 >= len(tokens) or not tokens[j + 1].is_op("&&", ";"):
                break
            if tokens[j + 1].is_op("&&"):
                p.tests.append(s[t.start:tokens[j].end])
            i = j + 2
            continue
        break
    p.head = i
    return p


def posix_redirections(s: str) -> str:
    """bash's `&>F` / `&>>F` as POSIX `>F 2>&1` / `>>F 2>&1`: under /bin/sh `&>` would put the command in
    the background and leave its output alone, which no crontab author means."""
    tokens = tokenize(s)
    out = s
    for k in range(len(tokens) - 1, -1, -1):
        t = tokens[k]
        if t.kind == "op" and t.text in ("&>", "&>>") and k + 1 < len(tokens) and tokens[k + 1].kind == "word":
            target = tokens[k + 1]
            op = ">>" if t.text == "&>>" else ">"
            out = out[:t.start] + op + out[target.start:target.end] + " 2>&1" + out[target.end:]
    return out


def substitutions(tok: Token) -> list[str]:
    """The command lines inside the word's $(…) and `…` (each may hold commands of its own)."""
    out = []
    for kind, value, _ in tok.parts:
        if kind == "bad" and value.startswith("$(") and value.endswith(")"):
            out.append(value[2:-1])
        elif kind == "bad" and value.startswith("`") and value.endswith("`"):
            out.append(value[1:-1])
    return out
