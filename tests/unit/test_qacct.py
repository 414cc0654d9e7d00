"""qacct and the accounting file: the record format, duplicates, SGE's layouts (golden files), options,
messages and exit codes, in-process over files written with accounting.format_line.

Golden files live in tests/golden/qacct_*.txt; a difference fails with a diff. Regenerate them on
purpose only: GRIDSHIM_UPDATE_GOLDEN=1 pytest tests/unit/test_qacct.py
"""

from __future__ import annotations

import ast
import io
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from gridshim import accounting as acct
from gridshim.accounting import Record
from gridshim.cli._common import Env
from gridshim.cli.qacct import USAGE, fnmatch, parse_date, qacct_main, scan_u
from gridshim.output.qacct import format_job, format_summary, memory
from kit import golden as check_golden
from kit.golden import local_time  # noqa: F401  (an autouse fixture: the layouts in local time)

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 22, 19, 40, tzinfo=UTC).timestamp()
T0 = int(datetime(2026, 11, 20, 8, 0, tzinfo=UTC).timestamp())  # first job's submission
DAY = 86400



def rec(**kw: object) -> Record:
    base: dict[str, object] = dict(qname="task", hostname="tools-k8s-worker-7", group="tools.demo",
                                   owner="tools.demo", category="-l h_vmem=536870912")
    base.update(kw)
    return Record(**base)  # type: ignore[arg-type]


# The golden set: a normal end, exit 3, a kill (failed 100 / 137), an array task, a `:` in the name.
OK = rec(job_name="report", job_number=4172830, submission_time=T0, start_time=T0 + 4, end_time=T0 + 64,
         ru_wallclock=60, ru_utime=0.012, ru_stime=0.02, ru_maxrss=2148, ru_minflt=812, ru_nvcsw=31, ru_nivcsw=2,
         cpu=0.032, mem=0.0003, io=0.0001, maxvmem=20447232.0, attempt="6c1e-uid/9a0f-pod")
EXIT3 = rec(job_name="check", job_number=2210457, submission_time=T0 + 100, start_time=T0 + 101,
            end_time=T0 + 103, exit_status=3, ru_wallclock=2, ru_utime=0.5, ru_stime=0.25, cpu=0.75,
            maxvmem=1048576.0, attempt="11aa/22bb")
KILLED = rec(qname="continuous", hostname="tools-k8s-worker-2", job_name="bot", job_number=9000123,
             submission_time=T0 + 200, start_time=T0 + 230, end_time=T0 + 3830, failed=100, exit_status=137,
             ru_wallclock=3600, ru_utime=1234.5, ru_stime=56.25, ru_maxrss=1048576, cpu=1290.75, mem=1.5,
             io=0.25, maxvmem=2147483648.0, category="-l h_vmem=2147483648,h_rt=3600", attempt="33cc/44dd")
ARRAY = rec(job_name="render", job_number=5550001, task_number=2, submission_time=T0 + 300,
            start_time=T0 + 310, end_time=T0 + 320, ru_wallclock=10, granted_pe="smp", slots=4, cpu=38.5,
            category="-l h_vmem=268435456 -pe smp 4", attempt="55ee/66ff")
COLON = rec(job_name="db:dump%1", job_number=1234567, submission_time=T0 + 400, start_time=T0 + 401,
            end_time=T0 + 402, ru_wallclock=1, attempt="77aa/88bb")
GOLDEN_SET = [OK, EXIT3, KILLED, ARRAY, COLON]


def text_of(records: list[Record], *extra: str) -> str:
    return "".join(acct.format_line(r) + "\n" for r in records) + "".join(extra)


def write(tmp_path: Path, records: list[Record], *extra: str) -> Path:
    path = tmp_path / "accounting"
    path.write_text(text_of(records, *extra))
    return path


class Result:
    def __init__(self, rc: int, out: str, err: str) -> None:
        self.rc, self.out, self.err = rc, out, err


def qacct(*args: str, stdin: str = "", environ: dict[str, str] | None = None, now: float = NOW) -> Result:
    env = Env(stdout=io.StringIO(), stderr=io.StringIO(), stdin=io.StringIO(stdin),
              environ=environ if environ is not None else {"HOME": "/nonexistent", "GRIDSHIM_CONFIG": os.devnull},
              clock=lambda: now)
    rc = qacct_main(env, list(args))
    return Result(rc, env.stdout.getvalue(), env.stderr.getvalue())  # type: ignore[attr-defined]


# -- the record format ---------------------------------------------------------------------------------

CONTRACT_FIELDS = ("qname hostname group owner job_name job_number account priority submission_time start_time "
                   "end_time failed exit_status ru_wallclock ru_utime ru_stime ru_maxrss ru_ixrss ru_ismrss "
                   "ru_idrss ru_isrss ru_minflt ru_majflt ru_nswap ru_inblock ru_oublock ru_msgsnd ru_msgrcv "
                   "ru_nsignals ru_nvcsw ru_nivcsw project department granted_pe slots task_number cpu mem io "
                   "category iow pe_taskid maxvmem arid ar_sub_time").split()


class TestRecordFormat:
    def test_fields_are_sges_45_in_order_then_the_attempt_key(self) -> None:
        assert list(acct.FIELDS[:45]) == CONTRACT_FIELDS and acct.FIELDS[45] == "attempt"
        assert Record._fields == acct.FIELDS
        assert [acct.FIELDS[i] for i in (acct.NUMBER, acct.NAME, acct.OWNER, acct.TASK, acct.START, acct.ATTEMPT)] \
            == ["job_number", "job_name", "owner", "task_number", "start_time", "attempt"]

    def test_a_line_is_colon_separated_with_doubles_as_percent_f(self) -> None:
        line = acct.format_line(OK)
        fields = line.split(":")
        assert len(fields) == 46 and "\n" not in line
        assert fields[:7] == ["task", "tools-k8s-worker-7", "tools.demo", "tools.demo", "report", "4172830", "sge"]
        assert fields[14:16] == ["0.012000", "0.020000"] and fields[36] == "0.032000"
        assert fields[42] == "20447232.000000"
        assert fields[13] == "60" and fields[45] == "6c1e-uid/9a0f-pod"
        # SGE's own reader (and Snakemake's status script: l[5], l[3], l[12]) still finds its fields
        assert (fields[5], fields[3], fields[12]) == ("4172830", "tools.demo", "0")

    @pytest.mark.parametrize("record", GOLDEN_SET, ids=lambda r: r.job_name)
    def test_round_trip(self, record: Record) -> None:
        assert acct.parse_line(acct.format_line(record)) == record
        assert acct.parse_line(acct.format_line(record) + "\n") == record

    def test_colon_percent_and_newline_in_a_name_are_percent_encoded(self) -> None:
        line = acct.format_line(rec(job_name="a:b%c\nd\re\\f", attempt="u/p"))
        assert "a%3Ab%25c%0Ad%0De%5Cf" in line and len(line.split(":")) == 46
        assert acct.parse_line(line).job_name == "a:b%c\nd\re\\f"  # type: ignore[union-attr]

    @given(st.text())
    def test_text_encoding_round_trips_and_never_leaves_a_separator(self, text: str) -> None:
        encoded = acct.encode_text(text)
        assert not set(":\n\r") & set(encoded)
        assert acct.decode_text(encoded) == text

    def test_decoding_takes_any_hex_pair_and_leaves_a_stray_percent(self) -> None:
        assert acct.decode_text("x%3ay%3Az") == "x:y:z"
        assert acct.decode_text("100%") == "100%" and acct.decode_text("%zz%4") == "%zz%4"
        assert acct.decode_text("%C3%A9") == "é"
        assert acct.decode_text("%FF") == "\udcff"  # not UTF-8: surrogate-escaped, never an error

    def test_sges_own_45_field_line_is_a_record_without_a_key(self) -> None:
        line = ":".join(acct.format_line(OK).split(":")[:45])
        assert acct.parse_line(line) == OK._replace(attempt="")

    def test_fields_after_the_46th_are_ignored(self) -> None:
        assert acct.parse_line(acct.format_line(OK) + ":future:fields") == OK

    def test_counters_written_as_doubles_are_read_as_sges_atol(self) -> None:
        fields = acct.format_line(OK).split(":")
        fields[13], fields[16] = "60.900000", "2148.000000"
        r = acct.from_fields(fields)
        assert r is not None and (r.ru_wallclock, r.ru_maxrss) == (60, 2148)

    @pytest.mark.parametrize("index,value", [(5, "abc"), (5, "-1"), (9, str(2 ** 32)), (12, ""), (36, "nan"),
                                             (36, "inf"), (42, "x"), (21, "1e400")],
                             ids=["id-text", "negative", "time-beyond-u32", "empty-number", "nan", "inf",
                                  "bad-double", "huge-counter"])
    def test_a_bad_number_makes_the_line_malformed(self, index: int, value: str) -> None:
        fields = acct.format_line(OK).split(":")
        fields[index] = value
        assert acct.from_fields(fields) is None

    def test_too_few_fields_is_malformed(self) -> None:
        assert acct.parse_line(":".join(acct.format_line(OK).split(":")[:44])) is None
        assert acct.parse_line("garbage") is None and acct.parse_line("") is None


class TestScan:
    def lines(self, *records: Record) -> str:
        return text_of(list(records))

    def test_comments_and_short_lines_are_ignored_and_bad_lines_reported(self) -> None:
        text = "# Version: 8.1.9\n\nx\n" + acct.format_line(OK) + "\nnot:a:record\n" + acct.format_line(EXIT3) + "\n"
        invalid: list[int] = []
        records = acct.load(text, invalid=invalid)
        assert records == [OK, EXIT3] and invalid == [5]

    def test_an_unterminated_short_last_line_is_a_record_being_written(self) -> None:
        invalid: list[int] = []
        assert acct.load(self.lines(OK) + "task:host:tools.demo", invalid=invalid) == [OK] and invalid == []

    def test_a_line_with_a_bad_number_is_reported_by_load(self) -> None:
        fields = acct.format_line(EXIT3).split(":")
        fields[12] = "three"
        invalid: list[int] = []
        assert acct.load(self.lines(OK) + ":".join(fields) + "\n", invalid=invalid) == [OK] and invalid == [2]

    def test_crlf_lines_read_the_same(self) -> None:
        assert acct.load(self.lines(OK, EXIT3).replace("\n", "\r\n")) == [OK, EXIT3]

    def test_the_same_attempt_twice_keeps_the_first(self) -> None:
        again = OK._replace(hostname="elsewhere")
        assert acct.load(self.lines(OK, EXIT3, again)) == [OK, EXIT3]

    def test_another_task_or_job_with_the_same_key_is_not_a_duplicate(self) -> None:
        other_task = ARRAY._replace(task_number=3)
        other_job = OK._replace(job_number=OK.job_number + 1)
        assert acct.load(self.lines(ARRAY, other_task, OK, other_job)) == [ARRAY, other_task, OK, other_job]

    def test_a_continuous_jobs_respawns_in_one_pod_are_all_kept(self) -> None:
        runs = [KILLED._replace(start_time=KILLED.start_time + 10 * i, exit_status=1, failed=0) for i in range(3)]
        assert acct.load(self.lines(*runs)) == runs

    @pytest.mark.parametrize("order", ["backstop-after", "backstop-before"])
    def test_a_backstop_record_is_dropped_when_the_pod_wrote_one(self, order: str) -> None:
        job_uid = OK.attempt.split("/")[0]
        backstop = OK._replace(attempt=f"{job_uid}/-", start_time=0, failed=100, exit_status=137)
        records = [OK, backstop] if order == "backstop-after" else [backstop, OK]
        assert acct.load(self.lines(EXIT3, *records)) == [EXIT3, OK]

    def test_a_backstop_record_alone_is_kept_and_only_once(self) -> None:
        backstop = KILLED._replace(attempt="33cc/-")
        assert acct.load(self.lines(OK, backstop, backstop)) == [OK, backstop]

    def test_a_backstop_of_another_job_uid_or_task_is_kept(self) -> None:
        other_uid = OK._replace(attempt="ffff/-")
        other_task = ARRAY._replace(task_number=5, attempt="55ee/-")
        assert acct.load(self.lines(OK, other_uid, ARRAY, other_task)) == [OK, other_uid, ARRAY, other_task]

    def test_duplicates_are_dropped_before_any_filter(self) -> None:
        """A backstop's record can pass a time filter its pod's record fails; it must not show then."""
        backstop = OK._replace(attempt="6c1e-uid/-", start_time=T0 + 10 * DAY)
        kept = acct.scan(self.lines(OK, backstop), keep=lambda f: int(f[acct.START]) > T0 + DAY)
        assert kept == []

    def test_keep_selects_without_converting(self) -> None:
        kept = acct.scan(self.lines(OK, EXIT3, KILLED), keep=lambda f: f[acct.NAME] == "check")
        assert [(n, acct.from_fields(f)) for n, f in kept] == [(2, EXIT3)]


# -- qacct -j: the block layout ------------------------------------------------------------------------

# ../shared/docs/qsub-behaviour.md §6.1's example, `|` marking the ends of lines
CONTRACT_EXAMPLE = """\
==============================================================|
qname        all.q               |
hostname     node01.example.org  |
group        users               |
owner        alice               |
project      NONE                |
department   defaultdepartment   |
jobname      sleep.sh            |
jobnumber    1234                |
taskid       undefined|
account      sge                 |
priority     0                   |
qsub_time    Thu Jan  2 03:04:05 2020|
start_time   Thu Jan  2 03:04:10 2020|
end_time     Thu Jan  2 03:05:10 2020|
granted_pe   NONE                |
slots        1                   |
failed       0    |
exit_status  0                   |
ru_wallclock 60s|
ru_utime     0.012s|
ru_stime     0.020s|
ru_maxrss    2.098KB|
ru_ixrss     0.000B|
cpu          0.032s|
mem          314.573KBs|
io           104.858KB|
iow          0.000s|
maxvmem      19.500MB|
arid         undefined|
ar_sub_time  undefined|
category     -l h_rt=3600,h_vmem=1G|
"""


class TestBlock:
    def test_the_contracts_example_line_for_line(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("TZ", "UTC")
        time.tzset()
        start = int(datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp())
        r = Record(qname="all.q", hostname="node01.example.org", group="users", owner="alice", job_name="sleep.sh",
                   job_number=1234, submission_time=start, start_time=start + 5, end_time=start + 65,
                   ru_wallclock=60, ru_utime=0.012, ru_stime=0.020, ru_maxrss=2148, cpu=0.032, mem=0.0003,
                   io=0.0001, maxvmem=19.5 * 1024 * 1024, category="-l h_rt=3600,h_vmem=1G")
        shown = [ln + "|" for ln in format_job(r).splitlines()]
        for line in CONTRACT_EXAMPLE.splitlines():
            assert line in shown, line
        assert len(shown) == 45  # the rule and 44 fields
        assert shown[0] == "=" * 62 + "|"

    def test_a_kill_is_failed_100_and_137_killed(self) -> None:
        block = format_job(KILLED)
        assert "\nfailed       100 : assumedly after job\n" in block
        assert "\nexit_status  137                  (Killed)\n" in block
        # the regex Snakemake's SGE profile uses, and Toil's parse
        assert re.search(r"exit_status  ([0-9]+)", block).group(1) == "137"  # type: ignore[union-attr]
        failed = next(ln for ln in block.splitlines() if ln.startswith("failed"))
        assert failed.split()[1] == "100"

    @pytest.mark.parametrize("status,text", [(128, "Unknown signal 0"), (143, "Terminated"), (152,
                             "CPU time limit exceeded"), (162, "Real-time signal 0"), (255, "Unknown signal 127")])
    def test_exit_status_above_127_names_the_signal_as_strsignal(self, status: int, text: str) -> None:
        assert f"\nexit_status  {status:<20} ({text})\n" in format_job(rec(exit_status=status))

    @pytest.mark.parametrize("code,text", [(0, "0    "), (1, "1   : assumedly before job"),
                                           (25, "25  : rescheduling"), (26, "26  : opening input/output file"),
                                           (37, "37  : qmaster enforced h_rt, h_cpu, or h_vmem limit"),
                                           (23, "23  : invalid execution state"),
                                           (999, "999 : invalid execution state")])
    def test_failed_codes_and_their_texts(self, code: int, text: str) -> None:
        assert f"\nfailed       {text}\n" in format_job(rec(failed=code))

    def test_zero_times_task_and_reservation(self) -> None:
        block = format_job(rec(start_time=0, end_time=0, arid=0, ar_sub_time=0, task_number=0))
        assert "\nstart_time   -/-\n" in block and "\nend_time     -/-\n" in block
        assert "\ntaskid       undefined\n" in block and "\narid         undefined\n" in block
        assert "\nar_sub_time  undefined\n" in block
        block = format_job(rec(arid=17, ar_sub_time=T0, task_number=12))
        assert "\narid         17                  \n" in block and "\ntaskid       12                  \n" in block
        assert f"\nar_sub_time  {time.ctime(T0)}\n" in block

    @pytest.mark.parametrize("value,text", [(0, "0.000B"), (1023, "1023.000B"), (1024, "1.000KB"),
                                            (2148, "2.098KB"), (19.5 * 2 ** 20, "19.500MB"), (2 ** 30, "1.000GB"),
                                            (3 * 2 ** 40, "3.000TB"), (-5, "5.000B"), (-2048, "-2.000KB")])
    def test_the_memory_printer(self, value: float, text: str) -> None:
        assert memory(value) == text

    def test_long_values_are_never_cut_and_labels_are(self) -> None:
        block = format_job(rec(job_name="x" * 30, hostname="h"))
        assert "\njobname      " + "x" * 30 + "\n" in block and "\nhostname     h" + " " * 19 + "\n" in block

    def test_padding_counts_bytes_as_c_does(self) -> None:
        assert "\njobname      café" + " " * 15 + "\n" in format_job(rec(job_name="café"))

    def test_control_characters_in_names_stay_on_one_line(self) -> None:
        block = format_job(rec(job_name="evil\nexit_status  0", category="a\x1b[2Jb"))
        assert [ln for ln in block.split("\n") if ln.startswith("exit_status")] == ["exit_status  0" + " " * 19]
        assert "\njobname      evil\\nexit_status  0\n" in block and "\x1b" not in block

    def test_golden(self, tmp_path: Path) -> None:
        res = qacct("-f", str(write(tmp_path, GOLDEN_SET)), "-j", "*")
        assert res.rc == 0 and res.err == ""
        assert res.out.count("=" * 62) == 5
        check_golden("qacct_j.txt", res.out)

    def test_j_alone_lists_every_record_then_the_total(self, tmp_path: Path) -> None:
        res = qacct("-f", str(write(tmp_path, GOLDEN_SET)), "-j")
        assert res.rc == 0 and res.out.split("\n").count("=" * 62) == 5 and "Total System Usage\n" in res.out
        check_golden("qacct_j_all.txt", res.out)


# -- qacct -j: selection, messages, exit codes ---------------------------------------------------------

class TestSelect:
    @pytest.fixture
    def path(self, tmp_path: Path) -> str:
        return str(write(tmp_path, GOLDEN_SET))

    def test_by_id(self, path: str) -> None:
        res = qacct("-f", path, "-j", "2210457")
        assert res.rc == 0 and res.err == "" and res.out == format_job(EXIT3)

    def test_an_id_is_read_as_sscanf_u(self, path: str) -> None:
        assert qacct("-f", path, "-j", "2210457abc").out == format_job(EXIT3)
        assert qacct("-f", path, "-j", "+2210457").out == format_job(EXIT3)
        assert [scan_u(s) for s in ("12", " 12", "12x", "x12", "", "+7", str(2 ** 32 + 5))] == \
            [12, 12, 12, None, None, 7, 5]

    def test_by_name_and_pattern_in_file_order(self, path: str) -> None:
        assert qacct("-f", path, "-j", "db:dump%1").out == format_job(COLON)
        res = qacct("-f", path, "-j", "*e*")
        assert res.out == "".join(format_job(r) for r in (OK, EXIT3, ARRAY))

    def test_every_attempt_of_a_job_is_a_block(self, tmp_path: Path) -> None:
        again = EXIT3._replace(attempt="11aa/other-pod", start_time=EXIT3.start_time + 60, exit_status=0)
        res = qacct("-f", str(write(tmp_path, [EXIT3, OK, again])), "-j", str(EXIT3.job_number))
        assert res.out == format_job(EXIT3) + format_job(again)

    def test_not_found_by_id(self, path: str) -> None:
        res = qacct("-f", path, "-j", "999")
        assert (res.rc, res.out, res.err) == (1, "", "error: job id 999 not found\n")

    def test_not_found_by_name(self, path: str) -> None:
        res = qacct("-f", path, "-j", "nosuch*")
        assert (res.rc, res.out, res.err) == (1, "", "error: job name nosuch* not found\n")
        long = "n" * 150
        assert qacct("-f", path, "-j", long).err == f"error: job name {'n' * 100} not found\n"

    def test_tasks(self, path: str) -> None:
        assert qacct("-f", path, "-j", "5550001", "-t", "1-3").out == format_job(ARRAY)
        assert qacct("-f", path, "-j", "render", "-t", "2").out == format_job(ARRAY)
        res = qacct("-f", path, "-j", "5550001", "-t", "3-10:2")
        assert (res.rc, res.err) == (1, "error: Job-array tasks 5550001.3-9:2 not found\n")
        res = qacct("-f", path, "-j", "render", "-t", "5")
        assert (res.rc, res.err) == (1, 'error: Job-array tasks "render".5-5:1 not found\n')

    def test_t_needs_j_with_an_argument(self, path: str) -> None:
        res = qacct("-f", path, "-t", "1-2")
        assert res.rc == 1 and res.err == "error: -t option requires -j option with an argument\n" + USAGE
        res = qacct("-f", path, "-t")
        assert res.rc == 1 and res.err == "-t option must have a list of task id ranges\n" + USAGE
        res = qacct("-f", path, "-j", "1", "-t", "x")
        assert res.rc == 1 and res.err == "invalid list of task id ranges: x\n" + USAGE

    def test_snakemake_and_toil_read_the_exit_status(self, tmp_path: Path) -> None:
        path = str(write(tmp_path, GOLDEN_SET))
        for r in (OK, EXIT3, KILLED):
            out = qacct("-f", path, "-j", str(r.job_number)).out
            assert int(re.search(r"exit_status  ([0-9]+)", out).group(1)) == r.exit_status  # type: ignore[union-attr]
            exit_line = next(ln for ln in out.split("\n") if ln.startswith("exit_status"))
            assert int(exit_line.split()[1]) == r.exit_status

    def test_malformed_lines_are_skipped_with_sges_message(self, tmp_path: Path) -> None:
        bad = acct.format_line(EXIT3).split(":")
        bad[12] = "x"
        path = write(tmp_path, [OK], "garbage line\n", ":".join(bad) + "\n", acct.format_line(KILLED) + "\n")
        res = qacct("-f", str(path), "-j", "*")
        assert res.rc == 0 and res.out == format_job(OK) + format_job(KILLED)
        assert res.err == "error: ignoring invalid entry in line 2\nerror: ignoring invalid entry in line 3\n"

    def test_duplicates_are_not_shown(self, tmp_path: Path) -> None:
        backstop = OK._replace(attempt="6c1e-uid/-", failed=100, exit_status=137)
        path = write(tmp_path, [OK, OK, backstop])
        assert qacct("-f", str(path), "-j", str(OK.job_number)).out == format_job(OK)

    def test_j_zero_is_no_job_at_all_as_in_sge(self, path: str) -> None:
        assert qacct("-f", path, "-j", "0").out.startswith("Total System Usage\n")

    def test_fnmatch_is_fnmatch3(self) -> None:
        cases = [("bot", "bot", True), ("bot1", "bot?", True), ("bot", "b*", True), ("a.b", "a?b", True),
                 ("bot", "[ab]ot", True), ("cot", "[!ab]ot", True), ("bot", "[^ab]ot", False),
                 ("b*t", "b\\*t", True), ("bat", "b\\*t", False), ("[x", "[x", True), ("a]", "[]a]]", True),
                 ("a/b", "a*", True), ("x.y", "x.y", True), ("xzy", "x.y", False)]
        assert [(n, p, fnmatch(n, p)) for n, p, _ in cases] == cases


# -- the file --------------------------------------------------------------------------------------------

class TestFile:
    def test_no_file(self, tmp_path: Path) -> None:
        res = qacct("-f", str(tmp_path / "none"), "-j", "1")
        assert res.rc == 1 and res.out == "no jobs running since startup\n"
        assert res.err == f"{tmp_path / 'none'}: No such file or directory\n"

    def test_a_file_that_exists_but_cannot_be_read(self, tmp_path: Path) -> None:
        res = qacct("-f", str(tmp_path), "-j", "1")  # a directory: stat works, reading does not (also as root)
        assert (res.rc, res.out, res.err) == (1, "no jobs running since startup\n",
                                              f"error: unable to open {tmp_path}\n")

    def test_stdin(self) -> None:
        res = qacct("-f", "-", "-j", "check", stdin=text_of(GOLDEN_SET))
        assert res.rc == 0 and res.out == format_job(EXIT3)

    def test_default_file_is_in_the_home(self, tmp_path: Path) -> None:
        (tmp_path / ".gridshim").mkdir()
        write(tmp_path / ".gridshim", [OK])
        res = qacct("-j", "report", environ={"HOME": str(tmp_path) + "/", "GRIDSHIM_CONFIG": os.devnull})
        assert res.rc == 0 and res.out == format_job(OK)
        res = qacct("-j", "report", environ={"HOME": str(tmp_path / "x"), "GRIDSHIM_CONFIG": os.devnull})
        assert res.err == f"{tmp_path}/x/.gridshim/accounting: No such file or directory\n"

    @pytest.mark.parametrize("line,expected", [
        ("accounting_file: /srv/acct/{home}/x", "/srv/acct/{home}/x"),
        ("accounting_file: '/srv/it''s'   ", "/srv/it's"),
        ('accounting_file: "{home}/acct"', "{home}/acct"),
        ("accounting_file: /srv/a # the shared disk", "/srv/a"),
        ("accounting_file: null", None),
        ("accounting_file: ~", None),
    ], ids=["plain", "single-quoted", "double-quoted", "comment", "null", "tilde"])
    def test_site_setting_read_without_loading_the_config(self, tmp_path: Path, line: str,
                                                          expected: str | None) -> None:
        path = tmp_path / "config.yaml"
        path.write_text(f"ttl_seconds: 300\n{line}\nmail_domain: example.org\n")
        assert acct.site_setting({"GRIDSHIM_CONFIG": str(path)}) == expected
        from gridshim import config
        assert config.load({"GRIDSHIM_CONFIG": str(path)}).accounting_file == expected

    @pytest.mark.parametrize("text,expected", [
        ("ttl_seconds: 300\n", acct.DEFAULT_FILE),
        ("# accounting_file: /x\nttl_seconds: 300\n", acct.DEFAULT_FILE),
        ('"accounting_file": /srv/q\n', "/srv/q"),
        ("{accounting_file: /srv/flow}\n", "/srv/flow"),
        ("accounting_file:\n  /srv/next-line\n", "/srv/next-line"),
        ('accounting_file: "/srv/\\x41"\n', "/srv/A"),
    ], ids=["absent", "in-a-comment", "quoted-key", "flow", "next-line", "escape"])
    def test_site_setting_in_other_forms_goes_through_config_load(self, tmp_path: Path, text: str,
                                                                  expected: str) -> None:
        path = tmp_path / "config.yaml"
        path.write_text(text)
        assert acct.site_setting({"GRIDSHIM_CONFIG": str(path)}) == expected

    def test_site_setting_errors_are_the_configs(self, tmp_path: Path) -> None:
        from gridshim.config import ConfigError
        with pytest.raises(ConfigError, match="does not exist"):
            acct.site_setting({"GRIDSHIM_CONFIG": str(tmp_path / "missing.yaml")})
        (tmp_path / "c.yaml").write_text("accounting_file: relative/path\n")
        with pytest.raises(ConfigError, match="absolute path"):
            acct.site_setting({"GRIDSHIM_CONFIG": str(tmp_path / "c.yaml")})

    def test_accounting_off(self, tmp_path: Path) -> None:
        (tmp_path / "c.yaml").write_text("accounting_file: null\n")
        res = qacct("-j", "1", environ={"HOME": str(tmp_path), "GRIDSHIM_CONFIG": str(tmp_path / "c.yaml")})
        assert res.rc == 1 and res.out == "no jobs running since startup\n"
        assert "accounting is off" in res.err

    def test_the_lookup_path_imports_nothing_heavy(self, tmp_path: Path) -> None:
        """docs/qacct.md "Speed": no site config module, YAML or cli._common on `qacct -j ID`."""
        path = write(tmp_path, GOLDEN_SET)
        code = ("import sys; sys.argv = ['qacct', '-f', sys.argv[1], '-j', 'check']\n"
                "from gridshim.cli import qacct\n"
                "try:\n    qacct.main()\nexcept SystemExit as e:\n    rc = e.code\n"
                "heavy = {'yaml', 'gridshim.config', 'gridshim.cli._common', 'gridshim.cluster', 'click', 'rich'}\n"
                "print(rc, sorted(heavy & set(sys.modules)), file=sys.stderr)\n")
        proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                              env={**os.environ, "GRIDSHIM_CONFIG": os.devnull, "PYTHONPATH": str(REPO / "src")})
        assert proc.stderr.strip() == "0 []" and "exit_status  3" in proc.stdout


# -- summary mode ----------------------------------------------------------------------------------------

class TestSummary:
    @pytest.fixture
    def path(self, tmp_path: Path) -> str:
        return str(write(tmp_path, GOLDEN_SET + [rec(owner="tools.other", group="tools.other", job_name="o",
                                                     job_number=7000001, start_time=T0 + 500, end_time=T0 + 520,
                                                     ru_wallclock=20, cpu=1.0, attempt="o/p")]))

    def test_total_system_usage(self, path: str) -> None:
        res = qacct("-f", path)
        assert res.rc == 0 and res.out.startswith("Total System Usage\n    WALLCLOCK")
        check_golden("qacct_summary.txt", res.out)

    def test_by_owner(self, path: str) -> None:
        check_golden("qacct_summary_owner.txt", qacct("-f", path, "-o").out)

    def test_the_contracts_owner_example(self, tmp_path: Path) -> None:
        path = write(tmp_path, [rec(owner="alice", ru_wallclock=60, ru_utime=0.012, ru_stime=0.020, cpu=0.032)])
        assert qacct("-f", str(path), "-o").out == (
            "OWNER     WALLCLOCK         UTIME         STIME           CPU             MEMORY                 IO"
            "                IOW\n" + "=" * 118 + "\n"
            "alice            60         0.012         0.020         0.032              0.000              0.000"
            "              0.000\n")

    def test_every_grouping_column(self, path: str) -> None:
        res = qacct("-f", path, "-A", "-slots", "-pe", "-D", "-P", "-o", "-g", "-q", "-h", "-ar")
        head = res.out.split("\n")[0]
        assert head.split()[:11] == ["HOST", "CLUSTER", "QUEUE", "GROUP", "OWNER", "PROJECT", "DEPARTMENT", "PE",
                                     "SLOTS", "AR", "ACCOUNT"]
        check_golden("qacct_summary_groups.txt", res.out)

    def test_a_value_filters_and_shows_in_its_column(self, path: str) -> None:
        res = qacct("-f", path, "-o", "tools.other")
        assert res.out.split("\n")[2].split() == ["tools.other", "20", "0.000", "0.000", "1.000", "0.000",
                                                  "0.000", "0.000"]
        res = qacct("-f", path, "-o", "tools.demo", "-h")
        check_golden("qacct_summary_fixed.txt", res.out)

    def test_queue_pattern_adds_the_host_column(self, path: str) -> None:
        res = qacct("-f", path, "-q", "contin*")
        assert res.out.split("\n")[0].startswith("HOST               CLUSTER QUEUE ")
        assert [ln.split()[:2] for ln in res.out.split("\n")[2:-1]] == [["tools-k8s-worker-2", "continuous"]]
        assert qacct("-f", path, "-q", "task@tools-k8s-worker-7").out.count("\n") == 3

    def test_slots_and_master_filters(self, path: str) -> None:
        assert qacct("-f", path, "-slots", "4", "-j", "*").out == format_job(ARRAY)
        assert qacct("-f", path, "-pe", "smp", "-j", "*").out == format_job(ARRAY)
        assert qacct("-f", path, "-m", "-j", "*").out.count("=" * 62) == 6

    def test_no_rows_when_the_total_wallclock_is_zero(self, tmp_path: Path) -> None:
        path = write(tmp_path, [rec(cpu=5.0, ru_wallclock=0)])
        assert qacct("-f", str(path), "-o").out.count("\n") == 2
        assert qacct("-f", str(path)).out == format_summary([], []) == (
            "Total System Usage\n    WALLCLOCK         UTIME         STIME           CPU             MEMORY      "
            "           IO                IOW\n" + "=" * 112 + "\n")


# -- time windows ----------------------------------------------------------------------------------------

class TestWindow:
    @pytest.fixture
    def path(self, tmp_path: Path) -> str:
        days = [rec(job_name=f"d{d}", job_number=100 + d, start_time=int(NOW) - d * DAY + 60,
                    end_time=int(NOW) - d * DAY + 3600 * 5, ru_wallclock=1, attempt=f"u{d}/p") for d in (9, 5, 2, 1)]
        return str(write(tmp_path, days))

    def names(self, res: Result) -> list[str]:
        return re.findall(r"^jobname      (\S+)", res.out, re.M)

    def test_d_is_the_last_n_days(self, path: str) -> None:
        assert self.names(qacct("-f", path, "-j", "*", "-d", "3")) == ["d2", "d1"]

    def test_b_and_e_compare_the_start_time(self, path: str) -> None:
        def stamp(epoch: float) -> str:
            return time.strftime("%Y%m%d%H%M.%S", time.localtime(epoch))
        begin, end = stamp(NOW - 5 * DAY), stamp(NOW - DAY - 3600)
        assert self.names(qacct("-f", path, "-j", "*", "-b", begin)) == ["d5", "d2", "d1"]
        assert self.names(qacct("-f", path, "-j", "*", "-e", end)) == ["d9", "d5", "d2"]
        assert self.names(qacct("-f", path, "-j", "*", "-b", begin, "-e", end)) == ["d5", "d2"]
        assert self.names(qacct("-f", path, "-j", "*", "-b", begin, "-d", "1")) == ["d5"]
        assert self.names(qacct("-f", path, "-j", "*", "-e", end, "-d", "4")) == ["d5", "d2"]

    def test_E_compares_the_end_time(self, path: str) -> None:
        edge = time.strftime("%Y%m%d%H%M", time.localtime(NOW - 2 * DAY + 3600))
        assert self.names(qacct("-f", path, "-j", "*", "-b", edge)) == ["d1"]
        assert self.names(qacct("-f", path, "-j", "*", "-b", edge, "-E")) == ["d2", "d1"]

    def test_a_window_with_no_records_is_not_found(self, path: str) -> None:
        res = qacct("-f", path, "-j", "d9", "-d", "1")
        assert (res.rc, res.err) == (1, "error: job name d9 not found\n")

    @pytest.mark.parametrize("text,expected", [
        ("202611221940", (2026, 11, 22, 19, 40, 0)), ("2611221940.30", (2026, 11, 22, 19, 40, 30)),
        ("11221940", (2026, 11, 22, 19, 40, 0)), ("6911221940", (2069, 11, 22, 19, 40, 0)),
        ("7011221940", (1970, 11, 22, 19, 40, 0))])
    def test_dates(self, text: str, expected: tuple[int, ...]) -> None:
        assert time.localtime(parse_date(text, now=NOW))[:6] == expected

    @pytest.mark.parametrize("text,message", [
        ("2611", "Invalid format of date/hour-minute field."), ("13221940", "Invalid month specification."),
        ("11321940", "Invalid day specification."), ("11222540", "Invalid hour specification."),
        ("11221960", "Invalid minute specification."), ("11221940.99", "Invalid seconds specification."),
        ("11221940.5", "Invalid format of seconds field."), ("", "no date specified")])
    def test_bad_dates_print_sges_message_and_the_usage(self, text: str, message: str) -> None:
        res = qacct("-f", os.devnull, "-b", text)
        assert (res.rc, res.out, res.err) == (1, "", f"\n{message}\n" + USAGE)


# -- options and usage ---------------------------------------------------------------------------------

class TestOptions:
    def test_help(self) -> None:
        res = qacct("-help")
        assert (res.rc, res.out, res.err) == (0, USAGE, "")
        check_golden("qacct_usage.txt", res.out)

    def test_unknown_option(self) -> None:
        res = qacct("-x")
        assert (res.rc, res.out, res.err) == (1, "", 'error: invalid option argument "-x"\n' + USAGE)
        assert qacct("stray").err.startswith('error: invalid option argument "stray"\n')

    def test_options_are_read_in_order(self) -> None:
        assert qacct("-help", "-x").rc == 0 and qacct("-x", "-help").rc == 1

    @pytest.mark.parametrize("args", [["-f"], ["-b"], ["-e"], ["-d"], ["-d", "x"], ["-l"]])
    def test_a_missing_or_bad_value_prints_the_usage(self, args: list[str]) -> None:
        res = qacct(*args)
        assert (res.rc, res.err) == (1, USAGE)

    def test_ar_needs_a_number(self) -> None:
        res = qacct("-ar", "x")
        assert res.rc == 1
        assert res.err.startswith("ERROR! invalid advance reservation id, must be an unsigned integer\n")

    def test_l_is_refused_with_what_to_do(self) -> None:
        res = qacct("-f", os.devnull, "-l", "h_vmem=1G")
        assert res.rc == 1 and "-l is not supported" in res.err and res.out == ""

    def test_an_optional_value_is_taken_unless_it_is_an_option(self, tmp_path: Path) -> None:
        path = str(write(tmp_path, GOLDEN_SET))
        assert qacct("-f", path, "-o", "-j", "check").out == format_job(EXIT3)
        assert qacct("-o", "-f", path).out.startswith("OWNER ")


# -- the man page ----------------------------------------------------------------------------------------

def test_man_page_documents_every_option_the_parser_accepts() -> None:
    groff = shutil.which("groff")
    if groff is None:
        pytest.fail("groff is not installed: the man page tests need it (apt-get install groff-base)", pytrace=False)
    text = subprocess.run([groff, "-man", "-Tascii", "-P-cbou", "-rLL=78n", "-rHY=0", str(REPO / "docs/man/qacct.1")],
                          capture_output=True, text=True, check=True).stdout
    src = (REPO / "src/gridshim/cli/qacct.py").read_text()
    options = {n.value for n in ast.walk(ast.parse(src)) if isinstance(n, ast.Constant)
               and isinstance(n.value, str) and re.fullmatch(r"-[a-zA-Z]+", n.value)}
    assert {"-j", "-t", "-o", "-u", "-b", "-e", "-E", "-d", "-f", "-help", "-A", "-slots", "-pe", "-ar"} <= options
    missing = sorted(o for o in options if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", text))
    assert not missing, f"qacct.1 does not document {missing}"
    for phrase in ("no jobs running since startup", "job id", "not found", "exit_status", "accounting_file"):
        assert phrase in " ".join(text.split()), phrase
