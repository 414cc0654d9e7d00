"""jsub's option parser: every option, precedence, and argparse's exact error sentences."""

from __future__ import annotations

import pytest

from gridshim import gridflags as G
from gridshim.errors import GridshimError, UsageError

MiB = 1024 * 1024
DEFAULT = 512 * MiB


def parse(*argv: str, **kw: object) -> G.GridOptions:
    return G.parse(list(argv), default_mem=DEFAULT, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("value,expected", [("1k", 1024), ("512m", 512 * MiB), ("2G", 2048 * MiB), ("368m", 368 * MiB),
                                            ("1000M", 1000 * MiB)])
def test_mem_values(value: str, expected: int) -> None:
    assert parse("-mem", value, "prog").mem == expected


@pytest.mark.parametrize("value", ["512", "1.5g", "2Gi", "g", "-1m", ""])
def test_mem_rejects_what_jsub_rejected(value: str) -> None:
    with pytest.raises(UsageError) as e:
        G.parse_mem(value)
    assert e.value.message == f"argument -mem: expected an integer followed by 'k', 'm' or 'g'. '{value}' given."


def test_h_vmem_raises_mem_only_if_larger_and_order_matters() -> None:
    assert parse("-mem", "256m", "-l", "h_vmem=1G", "p").mem == 1024 * MiB
    assert parse("-l", "h_vmem=256M", "p").mem == DEFAULT  # the default wins ("largest wins")
    assert parse("-l", "h_vmem=1G", "-mem", "256m", "p").mem == 256 * MiB  # a later -mem overrides
    assert parse("-l", "virtual_free=1G", "p").mem == int(1024 * MiB * 1.1)


def test_l_pairs_split_and_fold() -> None:
    o = parse("-l", "release=trusty,h_rt=1:00:00,mem_free=100M,arch=amd64", "p")
    assert o.release == "trusty"
    assert o.wall_seconds == 3600
    assert o.mem_request == 100 * MiB
    assert o.resources == (("arch", "amd64"),)
    assert parse("-l", "h_rt=90", "p").wall_seconds == 90


def test_l_pair_without_equals_is_jsubs_error() -> None:
    with pytest.raises(UsageError, match=r"^argument -l: invalid argparse_resource value: 'foo'$"):
        parse("-l", "foo", "p")


def test_release_accepts_any_value() -> None:
    assert parse("-release", "trusty", "p").release == "trusty"
    assert parse("-l", "release=precise", "p").release == "precise"


def test_everything_after_the_program_belongs_to_it() -> None:
    o = parse("-once", "-quiet", "bigbrother.sh", "cluebot3", "-e", "/dev/null", "-o", "/dev/null", "run_bot.sh")
    assert o.program == "bigbrother.sh"
    assert o.args == ("cluebot3", "-e", "/dev/null", "-o", "/dev/null", "run_bot.sh")
    assert o.out is None and o.err is None and o.once and o.quiet


def test_double_dash_before_the_program() -> None:
    o = parse("-N", "x", "--", "-weird-prog", "-N", "y")
    assert (o.name, o.program, o.args) == ("x", "-weird-prog", ("-N", "y"))


def test_no_abbreviation_and_unknown_options_are_unrecognized() -> None:
    assert parse("-con", "p").unrecognized == ("-con",)
    assert parse("-V", "env").unrecognized == ("-V",)
    o = parse("-t", "1-5", "env")  # argparse takes '1-5' for the program
    assert o.unrecognized == ("-t",) and o.program == "1-5"


def test_missing_value() -> None:
    with pytest.raises(UsageError, match="^argument -N: expected one argument$"):
        parse("-N")
    with pytest.raises(UsageError, match="^argument -mem: expected one argument$"):
        parse("-mem", "-once", "p")


@pytest.mark.parametrize("flag", ["-j", "-sync", "-b", "-now"])
def test_yes_no_values(flag: str) -> None:
    attr = {"-j": "join", "-sync": "sync", "-b": "binary"}.get(flag)  # -now is accepted and ignored
    for word, value in (("y", True), ("yes", True), ("n", False), ("NO", False)):
        opts = parse(flag, word, "p")
        if attr is None:
            assert opts.ignored == (f"{flag} {word}",)
        else:
            assert getattr(opts, attr) is value
    with pytest.raises(UsageError, match=rf"^argument {flag}: invalid choice: 'maybe'"):
        parse(flag, "maybe", "p")


def test_all_value_options() -> None:
    o = parse("-a", "202612312359", "-cwd", "-hard", "-soft", "-i", "in.txt", "-m", "bea", "-now", "y",
              "-p", "-5", "-sync", "y", "-v", "A=1,B", "-v", "C=x=y", "-wd", "/tmp", "-e", "e.log", "-o", "o.log",
              "-j", "y", "-M", "a@b.org,c@d.org", "-q", "continuous", "-b", "n", "-umask", "022", "-N", "n",
              "-continuous", "-stderr", "prog")
    assert o.start_at == "202612312359" and o.cwd and o.stdin == "in.txt" and o.mail_events == "bea"
    assert o.sync and o.env == (("A", "1"), ("B", None), ("C", "x=y")) and o.wd == "/tmp"
    assert (o.err, o.out, o.join) == ("e.log", "o.log", True)
    assert o.mail_to == ("a@b.org", "c@d.org") and o.queue == "continuous" and o.binary is False
    assert o.umask == 0o22 and o.name == "n" and o.continuous and o.keep_stderr
    assert o.ignored == ("-hard", "-soft", "-now y", "-p -5")


@pytest.mark.parametrize("argv,message", [
    (["-umask", "9", "p"], "argument -umask: invalid octal value: '9'"),
    (["-v", "1X=2", "p"], "argument -v: invalid variable name: '1X'"),
    (["-m", "x", "p"], "argument -m: invalid mail options: 'x' (use a combination of b, e, a, s or n)"),
    (["-a", "tomorrow", "p"], "argument -a: invalid date: 'tomorrow' (expected [[CC]YY]MMDDhhmm[.SS])"),
    (["-l", "h_rt=soon", "p"], "argument -l: invalid h_rt value: 'soon' (expected seconds or hh:mm:ss)"),
    (["-p", "high", "p"], "argument -p: invalid int value: 'high'"),
])
def test_bad_values(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError) as e:
        parse(*argv)
    assert e.value.message == message


def test_precedence_jsubrc_then_argv_then_script() -> None:
    rc = ("-mem 700m\n-N fromrc   # comment\n-quiet\nnot an option line\n", "/h/.jsubrc")
    script = ("#!/bin/sh\n#$ -N embedded\n#$ -j y\necho\n#$ -N ignored-after-code\n", "/h/job.sh")
    o = parse("-N", "cli", "-mem", "1g", "job.sh", jsubrc=rc, script=script)
    assert o.name == "embedded"  # #$ lines are parsed last
    assert o.mem == 1024 * MiB  # the command line overrides .jsubrc
    assert o.quiet and o.join
    assert parse("job.sh", jsubrc=rc).name == "fromrc"


def test_list_options_accumulate_across_sources() -> None:
    o = parse("-v", "B=2", "p", jsubrc=("-v A=1\n", "rc"), script=("#$ -v C=3\n", "s"))
    assert o.env == (("A", "1"), ("B", "2"), ("C", "3"))


def test_errors_in_files_name_the_file_and_exit_1() -> None:
    with pytest.raises(GridshimError) as e:
        parse("p", jsubrc=("-mem lots\n", "/h/.jsubrc"))
    assert not isinstance(e.value, UsageError)
    assert e.value.message == ("Error parsing /h/.jsubrc: argument -mem: expected an integer followed by "
                               "'k', 'm' or 'g'. 'lots' given.")
    with pytest.raises(GridshimError, match="^Error parsing /h/s.sh: unrecognized arguments: -t$"):
        parse("p", script=("#$ -t 1-5\n", "/h/s.sh"))


def test_every_option_in_the_table_is_handled() -> None:
    for flag, kind in G.OPTIONS.items():
        value = {"-mem": "1m", "-umask": "7", "-a": "12312359", "-j": "y", "-sync": "n", "-b": "y", "-now": "n",
                 "-p": "0", "-v": "A=1", "-l": "h_rt=1", "-m": "n", "-M": "x@y"}.get(flag, "v")
        argv = [flag] if kind == G.FLAG else [flag, value]
        parse(*argv, "p")
