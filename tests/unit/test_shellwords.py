"""gridshim.shellwords: one command line read as /bin/sh reads it (never run)."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given, strategies as st

from gridshim import shellwords as S

WORD = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=12)


def words_of(line: str, env: dict[str, str] | None = None) -> list[str]:
    return [w for t in S.tokenize(line) if t.kind == "word" for w in S.expand(t, env or {})]


@given(st.lists(WORD, max_size=6))
def test_quoted_words_read_back_exactly(words: list[str]) -> None:
    """Whatever shlex.quote makes of a word (quotes, blanks, $, `, ;, newlines, #) is that one word again."""
    assert words_of(" ".join(shlex.quote(w) for w in words)) == words


@given(st.lists(WORD, max_size=6), st.sampled_from(['"', "\\"]))
def test_double_quotes_and_backslashes_read_back_exactly(words: list[str], style: str) -> None:
    def quote(w: str) -> str:
        if style == '"':
            return '"' + "".join("\\" + c if c in '$`"\\' else c for c in w) + '"'
        return "".join("\\" + c for c in w) if w and "\n" not in w else shlex.quote(w)
    assert words_of(" ".join(quote(w) for w in words)) == words


@given(st.text(max_size=40))
def test_every_token_is_the_text_it_stands_for(line: str) -> None:
    try:
        tokens = S.tokenize(line)
    except ValueError:
        return  # an unterminated quote or substitution: refused, never misread
    assert all(line[t.start:t.end] == t.text for t in tokens)
    assert [t.start for t in tokens] == sorted(t.start for t in tokens)


@given(st.text(st.characters(whitelist_categories=("Ll", "Lu", "Nd"), whitelist_characters=" \t_"), max_size=20))
def test_an_unquoted_variable_is_split_on_blanks_a_quoted_one_is_not(value: str) -> None:
    env = {"V": value}
    assert words_of("$V", env) == value.split()
    assert words_of('"$V"', env) == [value]


@pytest.mark.parametrize("line,known", [("echo $(date)", "'$(date)'"), ("echo `date`", "'`date`'"),
                                        ("echo $1", "'$1'"), ("echo ${x:-y}", "'${x:-y}'"),
                                        ("echo $UNSET", "'$UNSET' is not set")])
def test_what_only_a_running_shell_knows_is_unstatic(line: str, known: str) -> None:
    with pytest.raises(S.Unstatic, match=known.replace("$", r"\$").replace("{", r"\{").replace("}", r"\}")
                       .replace("(", r"\(").replace(")", r"\)")):
        words_of(line)


def test_operators_and_their_io_numbers() -> None:
    tokens = S.tokenize("a 2>&1 >>log && b; c | d &")
    assert [(t.kind, t.text) for t in tokens if t.kind == "op"] == [
        ("op", "2>&"), ("op", ">>"), ("op", "&&"), ("op", ";"), ("op", "|"), ("op", "&")]
    redirect = tokens[1]
    assert redirect.operator == ">&" and redirect.is_redirect() and not tokens[5].is_redirect()


def test_prefixes_follow_cd_and_keep_the_tests() -> None:
    line = "cd bot && cd ../tool && [ -f x ] && jsub -N a x"
    tokens = S.tokenize(line)
    p = S.prefixes(tokens, line, {"HOME": "/h"}, "/h")
    assert p.cwd == "/h/tool" and p.tests == ["[ -f x ]"] and tokens[p.head].literal() == "jsub"


@given(st.text(st.characters(blacklist_characters="&\x00", blacklist_categories=("Cs",)), max_size=30))
def test_posix_redirections_leave_a_line_without_ampersand_redirections_alone(line: str) -> None:
    try:
        assert S.posix_redirections(line) == line
    except ValueError:
        pass


def test_posix_redirections_rewrite_bash_forms() -> None:
    assert S.posix_redirections("run &>log") == "run >log 2>&1"
    assert S.posix_redirections("run &>> 'my log' ; x") == "run >>'my log' 2>&1 ; x"


def test_substitutions_are_the_lines_inside() -> None:
    (tok,) = [t for t in S.tokenize('x"$(qstat -j a)"`jsub b`') if t.kind == "word"]
    assert S.substitutions(tok) == ["qstat -j a", "jsub b"]
