"""crontab: parsing, validation, mapping of real entries, names, golden CronJobs, and the store/reconcile
use cases against the kit's fake API server (the sandbox e2e tests are the evidence that it runs)."""

from __future__ import annotations

import copy
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from gridshim import cron_ops, crontab
from gridshim.cli import crontab as cli
from gridshim.cli._common import Env
from gridshim.config import Settings
from gridshim.errors import ForbiddenError, GridshimError, UsageError
from gridshim.model import JobKind
from gridshim.render import labels as L, to_yaml
from gridshim.render.command import unwrap_command
from kit import FakeApi

HOME = "/data/project/wikibugs"


def host(*files: str, home: str = HOME, tool: str = "wikibugs", rc: str | None = None,
         scripts: dict[str, str] | None = None, not_exec: tuple[str, ...] = ()) -> crontab.CronHost:
    """A submit host on which exactly FILES exist (paths relative to HOME or absolute)."""
    present = {f if f.startswith("/") else f"{home}/{f}" for f in files} | {"/usr/bin/python3", "/bin/true"}
    texts = dict(scripts or {})
    if rc is not None:
        texts[f"{home}/.jsubrc"] = rc
    return crontab.CronHost(tool=tool, home=home, uid=52001, user=f"tools.{tool}", exists=present.__contains__,
                            isdir=lambda p: False, executable=lambda p: p not in not_exec,
                            read_text=texts.get)


def plan(text: str, *, settings: Settings | None = None, h: crontab.CronHost | None = None) -> crontab.Plan:
    return crontab.plan(text, settings=settings or Settings(), host=h or host())


def one(line: str, **kw: Any) -> crontab.PlannedJob:
    p = plan(line + "\n", **kw)
    assert len(p.jobs) == 1
    return p.jobs[0]


def problems(text: str, **kw: Any) -> list[tuple[int, str]]:
    with pytest.raises(crontab.CrontabInvalid) as e:
        plan(text, **kw)
    return [(p.line, p.message) for p in e.value.problems]


def program(j: crontab.PlannedJob) -> list[str]:
    return list(j.request.argv) if j.request.shell is None else ["/bin/sh", "-c", j.request.shell]


# -- the four real entries from the issue (grid-behaviour §10, C6, C8, C10, C13) ---------------------

REAL = {
    "taxonomy": "0   0   *   *   0   /usr/bin/jsub -N taxonomy -mem 512m -once ~/py35-stretch/bin/python "
                "~/libera/taxonomy.py > /dev/null",
    "ancientpages": "49 3 * * * cd ancientpages && jsub -once -j y -cwd -N ancientpages -mem 368m "
                    "-o ancientpages.log run.sh",
    "backup": "45 */2 * * * /usr/bin/jsub -l release=trusty -N cron-tools.database_backup -e $HOME/logs/cron.err "
              "-o $HOME/logs/cron.out -once -quiet \"$HOME/apps/utils/database_backup.sh\" &> /dev/null",
    "cluebot": "* * * * * /usr/bin/jsub -once -quiet ~/apps/cluebot3/bigbrother.sh cluebot3 -e /dev/null "
               "-o /dev/null ~/apps/cluebot3/run_bot.sh",
}
REAL_FILES = ("py35-stretch/bin/python", "libera/taxonomy.py", "ancientpages/run.sh",
              "apps/utils/database_backup.sh", "apps/cluebot3/bigbrother.sh", "apps/cluebot3/run_bot.sh")


class TestRealEntries:
    def test_taxonomy(self) -> None:
        j = one(REAL["taxonomy"], h=host(*REAL_FILES))
        r = j.request
        assert (j.name, r.name, r.schedule, r.schedule_text) == ("taxonomy", "taxonomy", "0 0 * * 0", "0 0 * * 0")
        assert r.mem_bytes == 512 * 1024 * 1024 and r.once and r.kind is JobKind.SCHEDULED
        assert r.argv == (f"{HOME}/py35-stretch/bin/python", f"{HOME}/libera/taxonomy.py")  # `> /dev/null` was jsub's
        assert (r.stdout, r.stderr, r.workdir) == (f"{HOME}/taxonomy.out", f"{HOME}/taxonomy.err", HOME)
        assert j.rewritten is None and not j.warnings

    def test_ancientpages_cd_cwd_relative_log(self) -> None:
        r = one(REAL["ancientpages"], h=host(*REAL_FILES)).request
        assert r.argv == (f"{HOME}/ancientpages/run.sh",)  # found through $PWD after cron's `cd`
        assert r.workdir == f"{HOME}/ancientpages"  # -cwd
        assert r.stdout == r.stderr == f"{HOME}/ancientpages/ancientpages.log" and r.merge  # -j y, relative -o
        assert r.mem_bytes == 368 * 1024 * 1024 and r.schedule == "49 3 * * *"

    def test_database_backup_home_quotes_release_and_bash_redirect(self) -> None:
        j = one(REAL["backup"], h=host(*REAL_FILES))
        r = j.request
        assert r.name == "cron-tools.database_backup"
        assert j.name == L.object_name("cron-tools.database_backup", limit=52)  # dots are not DNS-safe
        assert r.argv == (f"{HOME}/apps/utils/database_backup.sh",)
        assert (r.stdout, r.stderr) == (f"{HOME}/logs/cron.out", f"{HOME}/logs/cron.err")
        assert r.release == "trusty" and r.image == Settings().image_for(None)  # any release is accepted
        assert r.schedule == "45 */2 * * *" and r.once

    def test_cluebot_options_after_program_belong_to_it(self) -> None:
        r = one(REAL["cluebot"], h=host(*REAL_FILES)).request
        assert r.name == "bigbrother"
        assert r.argv == (f"{HOME}/apps/cluebot3/bigbrother.sh", "cluebot3", "-e", "/dev/null", "-o", "/dev/null",
                          f"{HOME}/apps/cluebot3/run_bot.sh")
        assert (r.stdout, r.stderr) == (f"{HOME}/bigbrother.out", f"{HOME}/bigbrother.err")

    def test_all_four_together_and_missing_files_only_warn(self) -> None:
        p = plan("\n".join(REAL.values()) + "\n")  # none of the files exist on this host
        assert [j.name for j in p.jobs] == ["taxonomy", "ancientpages", j_backup(), "bigbrother"]
        assert {w.line for w in p.warnings} == {1, 2, 3, 4}
        assert p.jobs[1].request.argv == ("run.sh",)  # not found anywhere: unchanged, like jsub's fallback


def j_backup() -> str:
    return L.object_name("cron-tools.database_backup", limit=52)


# -- parsing ---------------------------------------------------------------------------------------

class TestParse:
    def test_comments_blank_env_and_indices(self) -> None:
        text = "# c\n\n  # indented comment\nFOO = 'a b' \nBAR=\"x\"\nEMPTY=\n*/5 * * * * echo $FOO\n"
        entries, probs = crontab.parse(text)
        assert not probs
        (e,) = entries
        assert (e.line, e.index, e.schedule, e.command) == (7, 6, "*/5 * * * *", "echo $FOO")
        assert e.env == (("FOO", "a b"), ("BAR", "x"), ("EMPTY", ""))

    def test_env_applies_only_to_later_lines(self) -> None:
        entries, _ = crontab.parse("@hourly a\nX=1\n@hourly b\nX=2\n@hourly c\n")
        assert [dict(e.env).get("X") for e in entries] == [None, "1", "2"]

    @pytest.mark.parametrize("macro,expr", [("@yearly", "0 0 1 1 *"), ("@annually", "0 0 1 1 *"),
                                            ("@monthly", "0 0 1 * *"), ("@weekly", "0 0 * * 0"),
                                            ("@daily", "0 0 * * *"), ("@midnight", "0 0 * * *"),
                                            ("@hourly", "0 * * * *"), ("@DAILY", "0 0 * * *")])
    def test_macros_keep_crons_exact_times(self, macro: str, expr: str) -> None:
        j = one(f"{macro}\tjsub -once /bin/true")
        assert j.request.schedule == expr and j.request.schedule_text == macro.lower()

    @pytest.mark.parametrize("fields,expr", [
        ("0 0 * * 7", "0 0 * * 0"), ("0 0 * * 5-7", "0 0 * * 0,5,6"), ("0 0 * * mon-fri", "0 0 * * mon-fri"),
        ("*/15 9-17 * jan,jul *", "*/15 9-17 * jan,jul *"), ("0 0 1-31/2 * *", "0 0 1-31/2 * *"),
        ("0 0 * * 0-7/7", "0 0 * * 0"),
    ])
    def test_fields(self, fields: str, expr: str) -> None:
        assert one(f"{fields} jsub -once /bin/true").request.schedule == expr

    @pytest.mark.parametrize("line,needle", [
        ("61 * * * * x", "bad minute field '61': 61 is out of range (0-59)"),
        ("* 24 * * * x", "bad hour field '24'"),
        ("* * 0 * * x", "bad day-of-month field '0'"),
        ("* * * 13 * x", "bad month field '13'"),
        ("* * * foo * x", "'foo' is not a number or a name (jan…dec)"),
        ("* * * * 8 x", "bad day-of-week field '8'"),
        ("5-1 * * * * x", "range '5-1' goes backwards"),
        ("*/0 * * * * x", "bad step '0'"),
        ("5/2 * * * * x", "a step needs a range or '*'"),
        ("1,,2 * * * * x", "empty list element"),
        ("* * * *", "expected five time fields"),
        ("* * * * x", "bad day-of-week field 'x'"),
        ("* * * * *", "no command after the five time fields"),
        ("@daily", "no command after '@daily'"),
        ("@every 5m x", "bad time specifier '@every'"),
        ("@reboot jstart -N bot ~/bot.sh", "@reboot cannot be used: on Kubernetes there is no machine that boots"),
        ("TZ=Mars/Olympus", "TZ: unknown time zone 'Mars/Olympus'"),
        ("my var=1", "expected five time fields"),
        ("'my var'=1", "bad variable name 'my var'"),
    ])
    def test_bad_lines_name_the_line_and_the_problem(self, line: str, needle: str) -> None:
        probs = problems(f"# ok\n{line}\n")
        assert len(probs) == 1 and probs[0][0] == 2 and needle in probs[0][1], probs

    def test_reboot_explains_what_to_use(self) -> None:
        (_, msg), = problems("@reboot ~/start.sh\n")
        assert "jstart" in msg and "* * * * *" in msg

    def test_every_problem_is_reported_at_once(self) -> None:
        text = "61 * * * * a\n@hourly jsub -mem 1.5g x\nok=1\n@reboot x\n@hourly /bin/true\n"
        assert [n for n, _ in problems(text)] == [1, 2, 4]

    def test_crlf_and_missing_final_newline(self) -> None:
        p = plan("X=1\r\n@hourly jsub -once /bin/true\r\n* * * * * echo hi")
        assert [j.request.schedule for j in p.jobs] == ["0 * * * *", "* * * * *"]
        assert p.jobs[1].request.shell == "echo hi"

    def test_non_utf8_entry_is_refused_but_comment_is_fine(self) -> None:
        text = b"# caf\xe9\n@daily echo caf\xe9\n".decode("utf-8", "surrogateescape")
        assert problems(text) == [(2, "the line is not valid UTF-8")]

    def test_timezone(self) -> None:
        p = plan("@daily a\nCRON_TZ=Europe/Berlin\n@daily b\nCRON_TZ=\nTZ=UTC\n@daily c\n")
        assert [j.request.timezone for j in p.jobs] == [None, "Europe/Berlin", "UTC"]

    def test_percent(self) -> None:
        assert crontab.percent_split(r"date +\%Y-\%m") == ("date +%Y-%m", None)
        assert crontab.percent_split("mail -s hi x%line 1%line 2") == ("mail -s hi x", "line 1\nline 2\n")


# -- grid lines --------------------------------------------------------------------------------------

class TestGridLines:
    def test_expansion_of_home_tilde_and_crontab_variables(self) -> None:
        j = one('LOGS=/srv/logs\nOPTS=-mem 1g -once\n@hourly jsub $OPTS -o "$LOGS/a b.out" -N x ${HOME}/bin/run ~',
                h=host("bin/run"))
        r = j.request
        assert r.mem_bytes == 1024 ** 3 and r.once and r.stdout == "/srv/logs/a b.out"
        assert r.argv == (f"{HOME}/bin/run", HOME)

    @pytest.mark.parametrize("word,what", [(r"$(date +\%F)", "'$(date +%F)'"), ("`date`", "'`date`'"),
                                           ("${X:-y}", "'${X:-y}'"), ("$1", "'$1'"), ("~other/x", "'~other'"),
                                           ("$NOPE", "'$NOPE' is not set in this crontab")])
    def test_what_only_the_shell_could_know_is_refused(self, word: str, what: str) -> None:
        (n, msg), = problems(f"@daily jsub -N a /bin/true {word}\n")
        assert n == 1 and msg.startswith("jsub: cannot know " + what), msg

    @pytest.mark.parametrize("tail", ["> /dev/null", ">/dev/null 2>&1", "&> /dev/null", ">> ~/jsub.log 2>&1",
                                      "2>/dev/null", "</dev/null", "&>>x"])
    def test_redirections_of_jsubs_own_output_are_dropped(self, tail: str) -> None:
        assert one(f"@daily jsub -once /bin/true a {tail}").request.argv == ("/bin/true", "a")

    @pytest.mark.parametrize("tail,op", [("| mail x", "|"), ("&& echo done", "&&"), ("; echo", ";"), ("&", "&")])
    def test_anything_else_after_jsub_is_refused(self, tail: str, op: str) -> None:
        (_, msg), = problems(f"@daily jsub -once /bin/true {tail}\n")
        assert f"not '{op}'" in msg

    @pytest.mark.parametrize("cmd", ["jsub", "/usr/bin/jsub", "/usr/local/bin/jsub", "qcronsub"])
    def test_grid_command_spellings(self, cmd: str) -> None:
        j = one(f"@daily {cmd} -N x -once /bin/true")
        assert j.rewritten is None and j.request.argv == ("/bin/true",)

    def test_qsub_lines_are_read_with_qsubs_rules(self) -> None:
        j = one("@daily qsub -b y -N x /bin/true a")
        assert j.request.argv == ("/bin/sh", "-c", "/bin/true a ") and j.request.name == "x"
        h = host("run.sh", scripts={f"{HOME}/run.sh": "#!/bin/sh\n# note\n\n#$ -N late -j y\necho\n"})
        j = one("@daily qsub ~/run.sh", h=h)
        r = j.request
        assert r.name == "late" and r.merge
        # cron ran qsub at each run: the CronJob runs the script from its path, not a copy made now
        assert r.script_text is None and r.argv == ("/bin/sh", f"{HOME}/run.sh")
        assert any("were read now" in w for w in j.warnings)
        # SGE's default output name, with the run's id filled in by the wrapper when it starts
        assert r.stdout == f"{HOME}/late.o$JOB_ID"
        assert "-once" in problems("@daily qsub -once /bin/true\n")[0][1]

    def test_qsubs_two_line_answers_are_one_problem_line(self) -> None:
        """A qsub line refused with one of SGE's two-line texts (an unsupported option; -t's number error)
        is one line of the crontab's report."""
        h = host("job.sh", scripts={f"{HOME}/job.sh": "echo\n"})
        assert problems("@daily qsub -ckpt c ~/job.sh\n", h=h) == [
            (1, "qsub: Unknown option -ckpt c (gridshim does not support checkpointing yet)")]
        assert problems("@daily qsub -t x ~/job.sh\n", h=h) == [
            (1, 'qsub: Numerical value invalid! The initial portion of string "x" contains no decimal number')]

    def test_qcronsub_forces_once(self) -> None:
        assert one("@daily qcronsub /bin/true").request.once
        assert not one("@daily jsub /bin/true").request.once

    def test_jsub_errors_are_jsubs_words(self) -> None:
        assert problems("@daily jsub -mem 2Gi x\n") == [
            (1, "jsub: argument -mem: expected an integer followed by 'k', 'm' or 'g'. '2Gi' given.")]
        assert problems("@daily jsub -once\n") == [(1, "jsub: the following arguments are required: program, args...")]
        assert problems("@daily jsub -N 9lives /bin/true\n")[0][1].startswith("jsub: argument -N: invalid job name")
        # jsub (argparse) took -t's value for the program, as the CLI does
        assert problems("@daily jsub -t 1-5 /bin/true\n") == [(1, "jsub: argument program: Program '1-5' not found.")]

    def test_jsubrc_and_script_directives_apply(self) -> None:
        h = host("run.sh", rc="-mem 2g\n", scripts={f"{HOME}/run.sh": "#!/bin/sh\n#$ -N fromscript\necho\n"})
        r = one("@daily jsub -once ~/run.sh", h=h).request
        assert r.mem_bytes == 2 * 1024 ** 3 and r.name == "fromscript"

    def test_path_from_the_crontab_is_used_for_resolution(self) -> None:
        h = host("/opt/tools/bin/mybot")
        assert one("PATH=/opt/tools/bin:/usr/bin\n@daily jsub -once mybot", h=h).request.argv == ("/opt/tools/bin/mybot",)
        assert one("@daily jsub -once mybot", h=h).request.argv == ("mybot",)

    def test_not_executable_warns(self) -> None:
        j = one("@daily jsub -once ~/x.sh", h=host("x.sh", not_exec=(f"{HOME}/x.sh",)))
        assert any("not executable" in w for w in j.warnings)

    def test_test_prefix_runs_in_the_job_and_skips_quietly(self) -> None:
        j = one("@daily cd sub && [ -f stop ] && jsub -once -N x /bin/true a")
        assert j.request.shell == (f"if ! ( cd {HOME}/sub && [ -f stop ] ); then exit 0; fi; exec /bin/true a")
        assert j.request.workdir == HOME  # no -cwd: the job runs in HOME, the test ran in the cd directory

    def test_jstart_watchdog_is_a_forbid_cronjob_of_continuous_runs(self) -> None:
        p = plan("* * * * * jstart -N bot -mem 1g /bin/true --flag\n")
        (j,) = p.jobs
        assert j.watchdog and j.request.kind is JobKind.CONTINUOUS and j.schedule == "* * * * *"
        cj = cron_ops.cronjob_for(j, Settings())
        assert cj["kind"] == "CronJob" and cj["spec"]["concurrencyPolicy"] == "Forbid"
        tmpl = cj["spec"]["jobTemplate"]["spec"]
        assert tmpl["template"]["spec"]["restartPolicy"] == "OnFailure"
        cmd = unwrap_command(tmpl["template"]["spec"]["containers"][0]["command"])
        assert cmd and cmd["continuous"] and cmd["argv"] == ["/bin/true", "--flag"]
        assert L.JOB_ID not in tmpl["template"]["metadata"]["labels"]
        assert one("*/10 * * * * jsub -continuous -N bot /bin/true").watchdog

    def test_sync_is_ignored_with_a_warning(self) -> None:
        assert any("-sync" in w for w in one("@daily jsub -sync y -once /bin/true").warnings)


# -- plain commands ----------------------------------------------------------------------------------

class TestPlainCommands:
    def test_toolforge_wrap(self) -> None:
        j = one("# line 0\n\n*/5 * * * * php ~/x.php > ~/x.log 2>&1".split("\n", 2)[2], h=host())
        assert j.request.name == "cron-0"
        p = plan("# line 0\n\n*/5 * * * * php ~/x.php > ~/x.log 2>&1\n")
        (j,) = p.jobs
        r = j.request
        assert (r.name, r.once, r.workdir) == ("cron-2", True, HOME)
        assert (r.stdout, r.stderr) == (f"{HOME}/cron-2.out", f"{HOME}/cron-2.err")
        assert program(j) == ["/bin/sh", "-c", "php ~/x.php > ~/x.log 2>&1"]  # the shell expands ~ with HOME
        assert dict(r.env)["HOME"] == HOME
        assert j.rewritten == "/usr/bin/jsub -N cron-2 -once -quiet php ~/x.php > ~/x.log 2>&1"

    def test_toolforge_doctests(self) -> None:
        assert one("* * * * * true").rewritten == "/usr/bin/jsub -N cron-0 -once -quiet true"
        j = one("@weekly cd /bin/; ./true")
        assert j.rewritten == "cd /bin/; /usr/bin/jsub -N cron-0 -once -quiet -cwd ./true"
        assert j.request.workdir == "/bin" and j.request.shell == "./true"
        j = one("@daily [ -x /bin/ls ] && /bin/ls")
        assert j.rewritten == "[ -x /bin/ls ] && /usr/bin/jsub -N cron-0 -once -quiet /bin/ls"
        assert j.request.shell == "[ -x /bin/ls ] && /bin/ls"

    def test_cd_relative_to_home_and_tilde(self) -> None:
        assert one("@daily cd logs && ./rotate").request.workdir == f"{HOME}/logs"
        assert one("@daily cd ~/a/b && ./x").request.workdir == f"{HOME}/a/b"
        assert one("@daily cd $HOME/c; ./x").request.workdir == f"{HOME}/c"
        j = one("@daily cd $(mktemp -d) && ./x")  # not static: the cd stays in the shell command
        assert j.request.workdir == HOME and j.request.shell == "cd $(mktemp -d) && ./x"

    @pytest.mark.parametrize("cmd,shell", [
        ("x &> /dev/null", "x >/dev/null 2>&1"),
        ("x &>>~/log", "x >>~/log 2>&1"),
        ("x 'a &> b' &>/dev/null", "x 'a &> b' >/dev/null 2>&1"),
        ("a && b &> f; c", "a && b >f 2>&1; c"),
    ])
    def test_bash_both_streams_redirect_is_read_as_bash_reads_it(self, cmd: str, shell: str) -> None:
        assert one(f"@daily {cmd}").request.shell == shell

    def test_bash_shell_keeps_the_line_as_is(self) -> None:
        j = one("SHELL=/bin/bash\n@daily x &> /dev/null")
        assert j.request.shell == "exec /bin/bash -c 'x &> /dev/null'"

    def test_crontab_variables_reach_the_job(self) -> None:
        env = dict(one("MAILTO=me\nLANG=C.UTF-8\nPATH=/opt/bin:/usr/bin\n@daily x").request.env)
        assert (env["LANG"], env["PATH"], env["MAILTO"], env["HOME"]) == ("C.UTF-8", "/opt/bin:/usr/bin", "me", HOME)
        assert "LANG" not in dict(one("LANG=C.UTF-8\n@daily jsub -once /bin/true").request.env)  # jsub's rules

    def test_percent_becomes_standard_input(self) -> None:
        j = one("@daily mail -s report me%hello%bye")
        assert j.request.shell == "printf '%s' 'hello\nbye\n' | {\nmail -s report me\n}"
        assert one(r"@daily date +\%F > ~/d").request.shell == "date +%F > ~/d"

    def test_jlocal_runs_the_command_as_a_job(self) -> None:
        j = one("@daily jlocal ~/bin/cleanup.sh")
        assert j.request.shell == "~/bin/cleanup.sh" and any("cron host" in w for w in j.warnings)

    def test_grid_command_later_in_a_line_is_refused(self) -> None:
        (_, msg), = problems("@daily ./prepare && jsub -once ./run\n")
        assert msg.startswith("'jsub' must be the first command")

    def test_commands_starting_with_an_operator(self) -> None:
        assert one("@daily (cd /srv && ./x) > ~/x.log").request.shell == "(cd /srv && ./x) > ~/x.log"
        assert one("@daily >~/stamp date").request.shell == ">~/stamp date"
        (_, msg), = problems("@daily (jsub -once /bin/true)\n")
        assert msg.startswith("'jsub' must be the first command")

    def test_unterminated_quote(self) -> None:
        assert problems("@daily echo 'oops\n") == [(1, "cannot read the command: unterminated single quote")]


# -- names ---------------------------------------------------------------------------------------------

class TestNames:
    BASE = "@hourly jsub -once -N alpha /bin/true\n*/5 * * * * ~/bin/poll.sh\n@daily ~/bin/report.sh > ~/r.log\n"

    def names(self, text: str) -> list[str]:
        return [j.name for j in plan(text).jobs]

    def test_stable_when_unrelated_lines_are_added_or_removed(self) -> None:
        before = self.names(self.BASE)
        after = self.names("# new comment\nX=1\n0 3 * * * ~/bin/new.sh\n" + self.BASE)
        assert before == after[1:]
        lines = self.BASE.splitlines()
        assert self.names(lines[0] + "\n" + lines[2] + "\n") == [before[0], before[2]]

    def test_grid_job_name_keeps_toolforges_line_index(self) -> None:
        p = plan("# new\n" + self.BASE)
        assert [j.request.name for j in p.jobs] == ["alpha", "cron-2", "cron-3"]

    def test_schedule_change_keeps_the_name(self) -> None:
        a = self.names("*/5 * * * * ~/bin/poll.sh\n")
        b = self.names("*/10 * * * * ~/bin/poll.sh\n")
        assert a == b

    def test_duplicates_are_told_apart_deterministically(self) -> None:
        text = "0 * * * * jsub -once -N x /bin/true\n30 * * * * jsub -once -N x /bin/true\n@daily echo\n@daily echo\n"
        names = self.names(text)
        assert len(set(names)) == 4 and all(len(n) <= 52 for n in names)
        assert names == self.names(text)

    def test_long_and_odd_names_are_valid(self) -> None:
        (n,) = self.names("@daily jsub -once -N " + "Very_Long.Name" * 6 + " /bin/true\n")
        assert len(n) <= 52 and n == n.lower()


class TestSpread:
    def test_default_keeps_exact_times(self) -> None:
        assert one("@daily jsub -once -N a /bin/true").request.schedule == "0 0 * * *"

    def test_spread_is_deterministic_per_tool_and_job(self) -> None:
        s = Settings(spread_macros=True)
        text = "@daily jsub -once -N a /bin/true\n@daily jsub -once -N b /bin/true\n@weekly jsub -once -N c /bin/true\n"
        first = [j.request.schedule for j in plan(text, settings=s).jobs]
        assert first == [j.request.schedule for j in plan(text, settings=s).jobs]
        other_tool = [j.request.schedule for j in plan(text, settings=s, h=host(tool="other")).jobs]
        assert first != other_tool
        m, h, dom, mon, dow = first[2].split()
        assert dom == mon == "*" and 0 <= int(dow) <= 6 and 0 <= int(h) <= 23 and 0 <= int(m) <= 59
        assert plan(text, settings=s).jobs[0].request.schedule_text == "@daily"

    def test_five_field_schedules_are_never_spread(self) -> None:
        assert one("0 0 * * * jsub -once -N a /bin/true", settings=Settings(spread_macros=True)).request.schedule == "0 0 * * *"

    @pytest.mark.parametrize("macro", list(crontab.MACROS))
    def test_spread_values_are_valid(self, macro: str) -> None:
        for job in ("a", "b", "c", "d"):
            expr = crontab.spread_schedule(macro, tool="t", job=job)
            assert crontab.parse_schedule(expr.split()) == expr


class TestNote:
    def test_note_lists_rewritten_entries(self) -> None:
        text = "@daily jsub -once /bin/true\n* * * * * echo hi\n"
        note = crontab.note(plan(text))
        assert note is not None
        assert note.splitlines()[0] == "NOTE: some crontab entries have been modified to grid submissions."
        assert "line 2: * * * * * /usr/bin/jsub -N cron-1 -once -quiet echo hi" in note
        assert crontab.note(plan("@daily jsub -once /bin/true\n")) is None


# -- golden CronJobs ---------------------------------------------------------------------------------

def golden(name: str, manifests: list[dict[str, Any]]) -> None:
    from kit import golden as assert_golden

    assert_golden(name, to_yaml(manifests))


GOLDEN_SETTINGS = Settings(images={"default": "sandbox.local/base:latest"}, ttl_seconds=300)


@pytest.mark.parametrize("name,text", [
    ("cron_real.yaml", "\n".join(REAL.values()) + "\n"),
    ("cron_plain.yaml", "MAILTO=\"\"\nCRON_TZ=Europe/Berlin\n@daily cd logs && [ -d old ] && "
                        "find old -mtime +7 -delete &> /dev/null\n*/5 * * * * ~/bin/poll.sh >> ~/poll.log 2>&1\n"),
    ("cron_watchdog.yaml", "* * * * * jstart -N bot -mem 1g ~/bot/run.sh --irc\n"),
])
def test_golden(name: str, text: str) -> None:
    p = crontab.plan(text, settings=GOLDEN_SETTINGS, host=host(*REAL_FILES, "bot/run.sh", "bin/poll.sh"))
    golden(name, [e["manifest"] for e in cron_ops.render_plan(p, GOLDEN_SETTINGS)])


# -- the store and reconcile, against the kit's fake API server ----------------------------------------

def cluster() -> FakeApi:
    """Tool wikibugs's namespace on the kit's fake API server."""
    return FakeApi("tool-wikibugs")


def cronjobs(api: FakeApi) -> dict[str, dict[str, Any]]:
    """The CronJobs stored now (also those being deleted), by name."""
    return {o["metadata"]["name"]: o for o in api.objects("CronJob")}


def at_each_write(api: FakeApi, hook: Callable[[str, str, str], bool | None]) -> None:
    """HOOK(verb, kind, name) runs just before every write (another client's moment) until it returns
    True or raises: the kit's one-shot interfere(), armed again after each write HOOK let pass."""
    def once(verb: str, kind: str, name: str) -> None:
        if not hook(verb, kind, name):
            api.interfere(once)
    api.interfere(once)


def rendered(text: str) -> list[dict[str, Any]]:
    return cron_ops.render_plan(crontab.plan(text, settings=Settings(), host=host()), Settings())


def install(c: FakeApi, text: str, **kw: Any) -> cron_ops.Result:
    return cron_ops.install(c, text=text.encode(), rendered=rendered(text), now=0, who="tools.wikibugs", **kw)


A = "@hourly jsub -once -N a /bin/true\n@daily jsub -once -N b /bin/true\n* * * * * echo c\n"
# RBAC's answer to a tool that may not read its namespace's quota (cron_ops.check_quota then leaves the
# refusal to the API server's quota admission, at each create)
QUOTA_UNREADABLE = ForbiddenError('not allowed: resourcequotas is forbidden: User "wikibugs" cannot list resource '
                                  '"resourcequotas" in API group "" in the namespace "tool-wikibugs"')


def cronjob_quota(n: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "tool-wikibugs"},
            "spec": {"hard": {"count/cronjobs.batch": str(n)}}}


class TestStore:
    def test_install_stores_text_exactly_and_creates_one_cronjob_per_entry(self) -> None:
        c = cluster()
        res = install(c, "# keep me\n\n" + A)
        assert sorted(res.created) == sorted(cronjobs(c)) and len(cronjobs(c)) == 3
        stored = cron_ops.read_store(c)
        assert stored.text == ("# keep me\n\n" + A).encode() and stored.previous is None and stored.serial == 1
        for cj in cronjobs(c).values():
            assert cj["metadata"]["labels"][L.CRONTAB] == "wikibugs"
            assert cj["metadata"]["annotations"][cron_ops.A_SERIAL] == f"{stored.uid}/1"

    @pytest.mark.parametrize("raw", [b"@daily echo x", b"@daily echo x\r\n# dos\r\n", b"# caf\xe9 latin-1\n",
                                     b"\n\n# only comments\n\n"])
    def test_bytes_round_trip(self, raw: bytes) -> None:
        c = cluster()
        cron_ops.install(c, text=raw, rendered=[], now=0)
        assert cron_ops.read_store(c).text == raw

    def test_reinstalling_the_same_text_writes_no_cronjob(self) -> None:
        c = cluster()
        install(c, A)
        c.calls.clear()
        res = install(c, A)
        assert [w for w in c.writes() if w[1] == "CronJob"] == [] and res.unchanged == 3

    def test_only_changed_entries_are_written(self) -> None:
        c = cluster()
        install(c, A)
        c.calls.clear()
        res = install(c, A.replace("@daily", "@weekly").replace("echo c\n", "echo c\n@monthly echo d\n"))
        assert (len(res.created), len(res.updated), len(res.deleted), res.unchanged) == (1, 1, 0, 2)
        # A line added above: names stay, but a plain command's grid name is Toolforge's cron-<line>
        # (its log file is ~/cron-<line>.out), so that CronJob is updated in place, not renamed.
        names = sorted(cronjobs(c))
        res = install(c, "# a comment\n" + A.replace("@daily", "@weekly").replace("echo c\n", "echo c\n@monthly echo d\n"))
        assert sorted(cronjobs(c)) == names
        assert (len(res.created), len(res.deleted), res.unchanged) == (0, 0, 2) and len(res.updated) == 2
        res = install(c, A.splitlines(True)[0])
        assert len(res.deleted) == 3 and list(cronjobs(c)) == ["a"]

    def test_previous_is_kept_and_remove_keeps_it(self) -> None:
        c = cluster()
        install(c, A)
        install(c, "@daily echo new\n")
        assert cron_ops.read_store(c).previous == A.encode()
        cron_ops.remove(c, now=0, who="tools.wikibugs")
        s = cron_ops.read_store(c)
        assert s.text is None and s.previous == b"@daily echo new\n" and cronjobs(c) == {}
        with pytest.raises(cron_ops.NoCrontab, match="no crontab for tools.wikibugs"):
            cron_ops.remove(c, now=0, who="tools.wikibugs")
        install(c, A)  # after a removal the removed text stays the previous one
        assert cron_ops.read_store(c).previous == b"@daily echo new\n"

    def test_remove_leaves_other_cronjobs_alone(self) -> None:
        c = cluster()
        foreign = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "handmade", "labels": {
            L.MANAGED_BY: "gridshim", L.CREATED_BY: "wikibugs"}}}
        c.create(foreign)
        install(c, A)
        cron_ops.remove(c, now=0, who="tools.wikibugs")
        assert list(cronjobs(c)) == ["handmade"]

    def test_reinstall_right_after_remove_waits_for_cronjobs_still_being_deleted(self) -> None:
        c = cluster()
        c.gc_lists = 3  # the garbage collector finishes an Orphan delete after 3 more LISTs
        install(c, A)
        for name in cronjobs(c):  # every entry has a run in progress: they are orphaned, not killed
            c.set_status("CronJob", name, active=[{"kind": "Job", "name": "x"}])
        cron_ops.remove(c, now=0, who="tools.wikibugs")
        assert all(o["metadata"].get("deletionTimestamp") for o in cronjobs(c).values()) and len(cronjobs(c)) == 3
        assert [w for w in c.writes() if w[0] == "delete"] and all(
            call.params["propagation"] == "Orphan" for call in c.calls if call.verb == "delete")
        c.calls.clear()
        res = install(c, A)  # same names, same specs: they must be created again, not taken as unchanged
        assert c.lists().count("CronJob") > 1  # it saw them still terminating, and looked again
        assert sorted(res.created) == ["a", "b", next(n for n in res.created if n.startswith("cron-"))]
        assert not any(o["metadata"].get("deletionTimestamp") for o in cronjobs(c).values())
        assert len(cronjobs(c)) == 3

    def test_name_clash_with_a_foreign_cronjob_is_reported(self) -> None:
        c = cluster()
        c.create({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "a", "labels": {}}})
        res = install(c, A)
        assert len(res.errors) == 1 and "not part of the crontab" in res.errors[0] and "(line 1)" in res.errors[0]

    def test_stale_base_is_refused_and_touches_no_cronjob(self) -> None:
        c = cluster()
        install(c, A)
        base = cron_ops.read_store(c)
        install(c, "@daily echo other\n")
        before = copy.deepcopy(cronjobs(c))
        c.calls.clear()
        with pytest.raises(cron_ops.ConcurrentChange, match="yours was not installed"):
            install(c, A, base=base)
        assert cronjobs(c) == before and all(w[1] == "ConfigMap" for w in c.writes())

    def test_interrupted_install_converges_on_the_next_command(self) -> None:
        c = cluster()
        install(c, A)

        class Crash(Exception):
            pass

        def crash(verb: str, kind: str, name: str) -> None:
            if kind == "CronJob":
                raise Crash()
        at_each_write(c, crash)
        with pytest.raises(Crash):
            install(c, "@daily echo only\n")  # the ConfigMap is written, the CronJobs are not
        assert len(cronjobs(c)) == 3
        res = cron_ops.reconcile(c, cron_ops.read_store(c))  # what any later crontab command does
        assert [o["metadata"]["annotations"][L.A_COMMAND] for o in cronjobs(c).values()] == ["echo only"]
        assert len(res.deleted) == 3 and len(res.created) == 1

    def test_slow_winner_never_overwrites_a_newer_install(self) -> None:
        c = cluster()
        install(c, A)
        first = cron_ops.read_store(c)
        # A newer install lands while an older reconcile (serial 1) is between its LIST and its writes.
        old_target = cron_ops.read_store(c)
        install(c, "@daily jsub -once -N z /bin/true\n")
        res = cron_ops.reconcile(c, old_target)
        assert sorted(cronjobs(c)) == ["z"] and res.superseded and first.serial == 1

    # the first install's CronJob writes over A: two deletes (b, the plain entry), a create (x1), an update (a)
    FIRST_WRITES = [("delete", "b"), ("delete", rendered(A)[2]["manifest"]["metadata"]["name"]), ("create", "x1"),
                    ("replace", "a")]

    @pytest.mark.parametrize("at", range(len(FIRST_WRITES)), ids=[f"{v}-{n[:4]}" for v, n in FIRST_WRITES])
    def test_concurrent_reconcile_interleaved_at_every_write(self, at: int) -> None:
        """Two installs whose reconciles interleave at each CronJob write end in the newer one exactly."""
        c = cluster()
        install(c, A)
        texts = ["@daily jsub -once -N x1 /bin/true\n@hourly jsub -once -N a /bin/false\n",
                 "@daily jsub -once -N x2 /bin/true\n@weekly jsub -once -N b /bin/true\n"]
        seen: list[tuple[str, str]] = []

        def interleave(verb: str, kind: str, name: str) -> bool:
            if kind != "CronJob":
                return False
            seen.append((verb, name))
            if len(seen) <= at:
                return False
            install(c, texts[1])  # the second install runs completely in the middle of the first
            return True
        at_each_write(c, interleave)
        res = install(c, texts[0])
        assert seen == self.FIRST_WRITES[:at + 1]  # it came in just before that write
        assert sorted(cronjobs(c)) == ["b", "x2"]
        stamp = cron_ops.read_store(c).stamp
        assert {o["metadata"]["annotations"][cron_ops.A_SERIAL] for o in cronjobs(c).values()} == {stamp}
        assert res.superseded

    def test_errors_of_the_settling_pass_are_reported(self) -> None:
        c = cluster().seed(cronjob_quota(2))
        c.fail("list", QUOTA_UNREADABLE, kind="ResourceQuota")
        res = install(c, A)
        assert len(cronjobs(c)) == 2 and len(res.errors) == 1 and "exceeded quota" in res.errors[0]
        assert res.errors[0].endswith('is forbidden: exceeded quota: tool-wikibugs, requested: count/cronjobs.batch=1, '
                                      'used: count/cronjobs.batch=2, limited: count/cronjobs.batch=2')

    def test_a_quota_filled_by_other_cronjobs_refuses_the_entries_that_do_not_fit(self) -> None:
        c = cluster().seed(cronjob_quota(3))
        c.create({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "handmade", "labels": {}}})
        res = install(c, A)  # 3 entries pass the check against the quota's 3, the handmade one takes a place
        assert sorted(res.created) == ["a", "b"] and len(cronjobs(c)) == 3
        assert len(res.errors) == 1 and "(line 3)" in res.errors[0] and "exceeded quota" in res.errors[0]

    def test_quota_is_checked_before_anything_is_written(self) -> None:
        c = cluster().seed(cronjob_quota(2))
        with pytest.raises(GridshimError, match="at most 2 CronJobs"):
            install(c, A)
        assert c.writes() == []

    def test_too_large(self) -> None:
        with pytest.raises(GridshimError, match="too large"):
            cron_ops.store_manifest(tool="t", text=os.urandom(1_200_000), previous=None, serial=1, rendered=[],
                                    base=cron_ops.Stored(), now=0)

    def test_missing_rendered_jobs_are_rendered_again(self) -> None:
        c = cluster()
        install(c, A)
        c.patch("ConfigMap", cron_ops.STORE, {"binaryData": {cron_ops.K_RENDERED: None}})
        assert cron_ops.K_RENDERED not in c.stored("ConfigMap", cron_ops.STORE)["binaryData"]
        for name in cronjobs(c):
            c.delete("CronJob", name)
        res = cron_ops.reconcile(c, cron_ops.read_store(c), render=lambda t: rendered(t.decode()))
        assert len(res.created) == 3


# -- the command line ----------------------------------------------------------------------------------

class TestArgs:
    @pytest.mark.parametrize("argv,op,file,inter", [
        ([], "replace", None, False), (["-"], "replace", "-", False), (["f"], "replace", "f", False),
        (["-l"], "l", None, False), (["-e"], "e", None, False), (["-r", "-i"], "r", None, True),
        (["-ri"], "r", None, True), (["-ir"], "r", None, True), (["-u", "tools.x", "-l"], "l", None, False),
        (["--previous"], "previous", None, False), (["--sync"], "sync", None, False),
        (["--", "-l"], "replace", "-l", False),
    ])
    def test_ok(self, argv: list[str], op: str, file: str | None, inter: bool) -> None:
        a = cli.parse_args(argv)
        assert (a.op, a.file, a.interactive) == (op, file, inter)

    @pytest.mark.parametrize("argv,msg", [
        (["-i"], "argument -i: only applicable with -r"),
        (["-l", "-e"], "argument -e: not allowed with argument -l"),
        (["-l", "f"], "argument -l: not allowed with argument file"),
        (["a", "b"], "unrecognized arguments: b"),
        (["-x"], "unrecognized arguments: -x"),
        (["--dry-run", "-l"], "argument --dry-run: not allowed with argument -l"),
    ])
    def test_bad(self, argv: list[str], msg: str) -> None:
        with pytest.raises(UsageError, match=msg):
            cli.parse_args(argv)


def run_cli(argv: list[str], *, stdin: str = "", tmp_path: Path) -> tuple[int, str, str]:
    env = Env(stdout=io.StringIO(), stderr=io.StringIO(), stdin=io.StringIO(stdin),
              environ={"HOME": HOME, "KUBECONFIG": str(tmp_path / "none"), "GRIDSHIM_CONFIG": str(tmp_path / "c.yaml")},
              cwd=str(tmp_path))
    (tmp_path / "c.yaml").write_text("uid: '52001'\n")
    rc = cli.crontab_main(env, argv)
    return rc, env.stdout.getvalue(), env.stderr.getvalue()  # type: ignore[attr-defined]


class TestCli:
    def test_dry_run_prints_cronjobs_and_contacts_nothing(self, tmp_path: Path) -> None:
        (tmp_path / "f").write_text("@daily jsub -once -N a /bin/true\n* * * * * echo hi\n")
        rc, out, err = run_cli(["--dry-run", "f"], tmp_path=tmp_path)
        docs = list(yaml.safe_load_all(out))
        assert rc == 0 and [d["kind"] for d in docs] == ["CronJob", "CronJob"]
        assert docs[0]["metadata"]["name"] == "a" and docs[1]["metadata"]["labels"][L.NAME] == "cron-1"

    def test_invalid_file_is_refused_with_crons_words(self, tmp_path: Path) -> None:
        rc, out, err = run_cli(["--dry-run", "-"], stdin="@daily ok\n61 * * * * x\n", tmp_path=tmp_path)
        assert rc == 1 and out == ""
        assert err.splitlines() == ['"-":2: bad minute field \'61\': 61 is out of range (0-59)',
                                    "errors in crontab file, can't install."]

    def test_usage_error(self, tmp_path: Path) -> None:
        rc, _, err = run_cli(["-i"], tmp_path=tmp_path)
        assert rc == 2 and err.splitlines() == [cli.USAGE, "crontab: error: argument -i: only applicable with -r"]

    def test_empty_install_is_refused_before_anything_else(self, tmp_path: Path) -> None:
        # There is no kubeconfig here: reaching for the cluster would fail with another message.
        rc, _, err = run_cli(["-"], stdin=" \n\n", tmp_path=tmp_path)
        assert rc == 1 and err.splitlines() == ["crontab: cowardly refusing to install empty crontab",
                                                "crontab: use `crontab -r` if you want to remove the crontab"]
