"""gridshim migrate-check: every grid command found, named and classified as the code would treat it."""

from __future__ import annotations

import ast
import io
import re
from pathlib import Path

import pytest

from gridshim import migrate as M
from gridshim.cli._common import Env
from gridshim.cli.gridshim import main_with
from gridshim.config import Settings, from_dict
from gridshim.crontab import CronHost
from gridshim.errors import UsageError
from gridshim.gridflags import OPTIONS
from kit import FakeApi

REPO = Path(__file__).resolve().parents[2]
HOME = "/data/project/demo"
U, D, N = M.Verdict.UNCHANGED, M.Verdict.DIFFERENT, M.Verdict.UNSUPPORTED


def host(files: dict[str, str] | None = None) -> CronHost:
    files = files or {}
    return CronHost(tool="demo", home=HOME, uid=52000, user="tools.demo", exists=lambda p: p in files,
                    isdir=lambda p: False, executable=lambda p: True, read_text=files.get)


def check_crontab(text: str, *, settings: Settings | None = None, files: dict[str, str] | None = None,
                  scripts: list[M.Source] | None = None) -> list[M.Finding]:
    sources = [M.Source(name="crontab", text=text, crontab=True), *(scripts or [])]
    return list(M.check(sources, settings=settings or Settings(), host=host(files)).findings)


def check_script(text: str, *, name: str = "run.sh", files: dict[str, str] | None = None) -> list[M.Finding]:
    return list(M.check([M.Source(name=name, text=text, path=f"{HOME}/{name}")], settings=Settings(),
                        host=host(files)).findings)


def one(findings: list[M.Finding]) -> M.Finding:
    assert len(findings) == 1, findings
    return findings[0]


def notes(f: M.Finding) -> str:
    return "\n".join(n.text + (f" | instead: {n.instead}" if n.instead else "") for n in f.notes)


# -- the crontab -----------------------------------------------------------------------------------

MIXED = """\
# tool demo
MAILTO=demo@example.org

0 0 * * 0 /usr/bin/jsub -N taxonomy -mem 512m -once ~/py/bin/python ~/libera/taxonomy.py > /dev/null
*/5 * * * * jsub -t 1-5 -N arr ~/bin/task.sh
@reboot jstart -N bot ~/bot.sh
@reboot ~/bin/startup.sh
@daily ~/bin/cleanup.sh > /dev/null 2>&1
* * * * * jstart -N watch -mem 1g ~/watch.sh
45 */2 * * * /usr/bin/jsub -l release=trusty -N backup -once -quiet "$HOME/backup.sh" &> /dev/null
0 * * * * jsub -hold_jid 123 -N after ~/x.sh
61 * * * * jsub -N late ~/late.sh
15 3 * * * jsub -N plain ~/plain.sh
"""


def test_mixed_crontab_names_every_job_and_classifies_every_line() -> None:
    got = [(f.line, f.command, f.job, f.verdict) for f in check_crontab(MIXED)]
    assert got == [
        (4, "jsub", "taxonomy", U),
        (5, "jsub", "arr", N),
        (6, "jstart", "bot", N),
        (7, "cron entry", "cron-6", N),  # Toolforge's rule: cron-<0-based line index>
        (8, "cron entry", "cron-7", U),
        (9, "jstart", "watch", D),
        (10, "jsub", "backup", D),
        (11, "jsub", "after", N),
        (12, "jsub", "late", N),
        (13, "jsub", "plain", U),
    ]


def test_array_jobs_say_why_and_what_instead() -> None:
    f = [f for f in check_crontab(MIXED) if f.job == "arr"][0]
    text = notes(f)
    assert "-t 1-5: array jobs (-t) are qsub's, not jsub's" in text and "the grid's jsub refused it too" in text
    assert "instead: submit the array with qsub: qsub -t 1-5" in text
    assert "unrecognized arguments" not in text  # the explanation replaces jsub's bare error


def test_reboot_points_to_jstart() -> None:
    findings = {f.line: f for f in check_crontab(MIXED)}
    assert "no @reboot" in notes(findings[6]) and "jstart -N bot …" in notes(findings[6])
    assert "jstart -N NAME ~/bin/startup.sh" in notes(findings[7])


def test_reboot_is_refused_by_the_crontab_module_too() -> None:
    from gridshim import crontab

    _, problems = crontab.parse("@reboot jstart -N bot x\n")
    assert problems and "@reboot" in problems[0].message


def test_plain_line_runs_as_toolforge_wrapped_it() -> None:
    f = [f for f in check_crontab(MIXED) if f.line == 8][0]
    assert f.notes[0].kind is M.Kind.INFO
    assert "/usr/bin/jsub -N cron-7 -once -quiet ~/bin/cleanup.sh" in f.notes[0].text


def test_watchdog_and_release_differences() -> None:
    findings = {f.job: f for f in check_crontab(MIXED)}
    assert "jstart watchdog" in notes(findings["watch"]) and "both would run" in notes(findings["watch"])
    assert "release trusty: the site config has no image for it" in notes(findings["backup"])
    assert "-once: runs of this line never overlap" in notes(findings["taxonomy"])


def test_a_release_the_site_maps_is_no_difference() -> None:
    s = from_dict({"images": {"default": "img:bookworm", "trusty": "img:trusty"}})
    f = [f for f in check_crontab(MIXED, settings=s) if f.job == "backup"][0]
    assert f.verdict is U


def test_bad_schedule_names_the_field() -> None:
    f = [f for f in check_crontab(MIXED) if f.job == "late"][0]
    assert "bad minute field '61'" in notes(f)


def test_spread_macros_are_a_difference_when_the_site_turns_them_on() -> None:
    f = one(check_crontab("@daily jsub -N nightly ~/n.sh\n", settings=from_dict({"spread_macros": True})))
    assert f.verdict is D and "spread per tool and job" in notes(f)


def test_qsub_in_a_crontab_is_read_with_qsubs_rules() -> None:
    f = one(check_crontab("0 * * * * qsub -b y -N q /bin/true\n"))
    assert f.job == "q" and f.verdict is not N, notes(f)
    # without -b y qsub reads the file as a job script: the default name keeps the extension
    g = one(check_crontab("0 * * * * qsub ~/run.sh\n", files={f"{HOME}/run.sh": "#!/bin/sh\n# c\n\n#$ -N late\n"}))
    assert g.job == "late" and g.verdict is not N, notes(g)
    h = one(check_crontab("0 * * * * qsub ~/go.sh\n", files={f"{HOME}/go.sh": "echo\n"}))
    assert h.job == "go.sh"


def test_control_command_in_a_plain_line_would_run_inside_the_job() -> None:
    f = one(check_crontab("\n10 * * * * jstop bot\n"))
    assert (f.job, f.verdict) == ("cron-1", N)
    assert "jstop bot: it runs inside job cron-1, where jstop does not exist" in notes(f)


def test_grid_command_after_another_command_is_refused_as_the_crontab_does() -> None:
    f = one(check_crontab("0 * * * * cd x && echo hi && jsub -N y /bin/true\n"))
    assert f.verdict is N and "must be the first command" in notes(f)


def test_a_followed_script_with_directives_names_the_job_and_explains() -> None:
    task = "#!/bin/sh\n#$ -t 1-5\n#$ -N tasky\necho $SGE_TASK_ID\n"
    findings = check_crontab("@hourly jsub ~/bin/task.sh\n", files={f"{HOME}/bin/task.sh": task})
    cron = [f for f in findings if f.source == "crontab"][0]
    assert (cron.job, cron.verdict) == ("tasky", N)
    assert "#$ -t 1-5: array jobs" in notes(cron)
    directives = [f for f in findings if f.command == "#$ lines"][0]
    assert directives.source == f"{HOME}/bin/task.sh" and directives.line == 2 and directives.job == "tasky"
    assert directives.verdict is N


def test_scripts_that_jobs_run_cannot_use_grid_commands() -> None:
    bigbrother = ("#!/bin/bash\nif ! /usr/bin/qstat | awk '{ print $3 }' | grep -q \"$1\"; then\n"
                  "  /usr/bin/jstart -N \"$1\" run.sh\nfi\n")
    path = f"{HOME}/bin/bigbrother.sh"
    findings = check_crontab("* * * * * /usr/bin/jsub -once -quiet ~/bin/bigbrother.sh cluebot3\n",
                             files={path: bigbrother})
    inner = [f for f in findings if f.source == path]
    assert [(f.line, f.command, f.verdict) for f in inner] == [(2, "qstat", N), (3, "jstart", N)]
    assert all(f.via == "crontab:1" for f in inner)
    assert "runs inside a job" in notes(inner[0])


def test_a_script_given_by_name_and_run_by_the_crontab_is_read_once_as_a_job_script() -> None:
    path = f"{HOME}/cleanup.sh"
    script = M.Source(name="cleanup.sh", text="#!/bin/sh\nqstat\n", path=path)
    findings = check_crontab("@daily ~/cleanup.sh\n", files={path: script.text}, scripts=[script])
    inner = [f for f in findings if f.command == "qstat"]
    assert len(inner) == 1 and inner[0].source == "cleanup.sh" and inner[0].verdict is N


def test_clean_crontab_has_nothing_unsupported() -> None:
    result = M.check([M.Source(name="c", text="*/5 * * * * jsub -N x -quiet ~/x.sh\n", crontab=True)],
                     settings=Settings(), host=host())
    assert result.summary() == {"works unchanged": 1, "works with a difference": 0, "not supported": 0}


# -- scripts ---------------------------------------------------------------------------------------

def test_only_command_positions_count() -> None:
    text = ("for job in a b; do echo job qstat; done\n"
            "id=$(job stashbot)\n"
            "qdel $(/usr/bin/job stashbot) && /usr/local/bin/qstat -j stashbot >/dev/null 2>&1\n"
            "/opt/bin/jsub -N nope x\n"
            "FOO=1 jstop bot\n"
            "cat <<EOF\njsub -N inside-heredoc x\nEOF\n"
            "jsub -N long \\\n   -mem 1g /bin/true\n")
    got = [(f.line, f.command, f.job) for f in check_script(text)]
    assert got == [(2, "job", "stashbot"), (3, "job", "stashbot"), (3, "qdel", "$(/usr/bin/job stashbot)"),
                   (3, "qstat", "stashbot"), (5, "jstop", "bot"), (9, "jsub", "long")]


def test_variables_set_in_the_script_are_used_for_names() -> None:
    f = one(check_script("JOB=stashbot\njsub -once -continuous -N $JOB run.sh\n"))
    assert f.job == "stashbot" and f.verdict is U


@pytest.mark.parametrize("line,verdict,text", [
    ("jsub -N x -pe smp 4 /bin/true", N, "-pe smp 4: parallel environments"),
    ("jsub -hold_jid 12 -N x /bin/true", N, "job dependencies (-hold_jid)"),
    ("jsub -V -N x /bin/true", N, "-V (copy the whole environment)"),
    ("jsub -frobnicate -N x /bin/true", N, "-frobnicate is not an option jsub accepts"),
    ("jsub -mem 1.5g /bin/true", N, "expected an integer followed by 'k', 'm' or 'g'. '1.5g' given."),
    ("jsub -N 9lives /bin/true", N, "invalid job name '9lives'"),
    ("jsub -mem 64g /bin/true", N, "more than this site's maximum"),
    ("jsub -q webgrid-lighttpd /bin/true", D, "there are no queues; the name is only shown in qstat's queue "
     "column | instead: use webservice"),
    ("jsub -p 5 -now y /bin/true", D, "-p 5: accepted but has no effect"),
    ("jsub -a 202701011200 /bin/true", D, "waits inside until the given time"),
    ("jsub -m bea /bin/true", D, "mail on job events is not sent"),
    ("jsub -l arch=amd64 /bin/true", D, "-l arch=amd64 has no meaning on Kubernetes"),
    ("jsub -l h_rt=1:00:00,h_vmem=2G -j y -sync y -cwd /bin/true", U, ""),
    ("jstart -N bot -mem 2G /bin/true", U, ""),
    ("qcronsub -N c /bin/true", U, ""),
], ids=lambda v: v if isinstance(v, str) and v.startswith(("jsub", "jstart", "qcron")) else "")
def test_jsub_lines(line: str, verdict: M.Verdict, text: str) -> None:
    settings = from_dict({"memory": {"max": "16G"}})
    result = M.check([M.Source(name="s.sh", text=line + "\n")], settings=settings,
                     host=host({"/bin/true": ""}))
    f = one(list(result.findings))
    assert f.verdict is verdict, notes(f)
    assert text in notes(f)


def test_qsub_and_absent_clients() -> None:
    findings = check_script("qsub -t 1-10 -hold_jid prep -N arr -b y /bin/true\nqalter -l h_vmem=2g 123\n"
                            "qhold 5\nqrls 5\nqdel 7 -t 2-3\nqacct -j 5\nqrsh\nqmod -sj bot\nqstat -f\n"
                            "crontab -u tools.demo -l\nqalter -q long 5\n", files={"/bin/true": ""})
    by: dict[str, list[M.Finding]] = {}
    for f in findings:
        by.setdefault(f.command, []).append(f)
    # arrays, dependencies and holds are qsub's, and gridshim's qsub has them (issue 15)
    assert by["qsub"][0].job == "arr" and by["qsub"][0].verdict is U, notes(by["qsub"][0])
    for cmd, job in (("qhold", "5"), ("qrls", "5"), ("qdel", "7"), ("qacct", None)):
        assert by[cmd][0].verdict is U and (job is None or by[cmd][0].job == job), (cmd, notes(by[cmd][0]))
    first, unknown = by["qalter"]
    assert first.verdict is D and "only while it is held" in notes(first) and first.job == "123"
    assert unknown.verdict is N and "qalter -q: not an option" in notes(unknown)
    by1 = {c: fs[0] for c, fs in by.items()}
    for cmd in ("qrsh",):
        assert by1[cmd].verdict is N and "instead:" in notes(by1[cmd]), cmd
    assert by1["qmod"].verdict is N and "only -rj" in notes(by1["qmod"])
    assert by1["qstat"].verdict is N and "qstat -f: not an option" in notes(by1["qstat"])
    assert by1["crontab"].verdict is U and "only your own tool" in notes(by1["crontab"])


def test_python_argv_lists_and_command_strings() -> None:
    text = ('#!/usr/bin/python3\nimport subprocess\n'
            'subprocess.check_call(["/usr/bin/jsub", "-N", job, "-mem", "1G", "-once", "-continuous", "/bin/true"])\n'
            'subprocess.call("qmod -rj %s" % job, shell=True)\n'
            'print("qstat is not a command here")\n'
            'os.system(f"/usr/bin/qdel {name}")\n')
    got = [(f.line, f.command, f.job, f.verdict) for f in check_script(text, name="manage.py",
                                                                        files={"/bin/true": ""})]
    assert got == [(3, "jsub", "{job}", U), (4, "qmod", "%s", U), (6, "qdel", "{name}", U)]


def test_directives_of_a_script_given_by_name() -> None:
    f = one(check_script("#!/bin/sh\n#$ -N embedded\n#$ -l h_vmem=1g\necho hi\n"))
    assert (f.command, f.job, f.verdict, f.line) == ("#$ lines", "embedded", U, 2)


def test_a_bad_jsubrc_breaks_every_jsub() -> None:
    result = M.check([], settings=Settings(), host=host({f"{HOME}/.jsubrc": "-t 1-5\n"}))
    f = one(list(result.findings))
    assert f.command == ".jsubrc" and f.verdict is N


# -- kept in step with the code --------------------------------------------------------------------

def test_unsupported_options_are_really_unknown_to_jsub() -> None:
    assert not set(M.UNSUPPORTED_OPTIONS) & set(OPTIONS)


def test_unsupported_options_are_qsubs_so_their_values_are_counted_by_its_table() -> None:
    from gridshim import sgeflags

    assert set(M.UNSUPPORTED_OPTIONS) <= set(sgeflags.OPTIONS)
    f = one(check_script("jsub -pe smp 4 -N pe /bin/true\n"))
    assert f.job == "pe" and "-pe smp 4: parallel environments" in notes(f)


class _Reached(Exception):
    """The command accepted its command line and went on to ask the cluster."""


def _cluster() -> FakeApi:
    """The kit's fake API server, whose first answer (to any request) is _Reached."""
    return FakeApi("tool-demo").fail("*", _Reached())


def _answer(cmd: str, argv: list[str], tmp_path: Path) -> str:
    """What CMD's own parser says to ARGV: its refusal, or "" when it accepted the line."""
    from gridshim.cli import crontab as crontab_cli, job, jstop, qacct, qalter, qdel, qmod, qstat

    out, err = io.StringIO(), io.StringIO()
    (tmp_path / "site.yaml").write_text("images:\n  default: img:1\n")
    env = Env(stdout=out, stderr=err, stdin=io.StringIO(), cwd=str(tmp_path),
              environ={"HOME": str(tmp_path), "GRIDSHIM_CONFIG": str(tmp_path / "site.yaml")})
    mains = {"qdel": qdel.qdel_main, "qmod": qmod.qmod_main, "job": job.job_main, "jstop": jstop.jstop_main,
             "qhold": lambda e, a, cluster: qalter.qhold_main(e, a, release=False, cluster=cluster),
             "qrls": lambda e, a, cluster: qalter.qhold_main(e, a, release=True, cluster=cluster)}
    parsers = {"qstat": qstat.parse, "qalter": qalter.parse_alter, "crontab": crontab_cli.parse_args,
               "qacct": lambda a: qacct.parse(a, now=0.0)}
    try:
        if cmd in parsers:
            parsers[cmd](argv)
        else:
            mains[cmd](env, argv, cluster=_cluster())
    except _Reached:
        pass
    except (qstat.OptionError, qacct.Usage, UsageError, qalter.HelpRequested) as e:
        return str(e)
    return out.getvalue() + err.getvalue()


def _refused_as_unknown(text: str, option: str) -> bool:
    return any(p in text for p in (f'invalid option argument "{option}"', f'option "{option}" is not supported',
                                   f"unrecognized arguments: {option}"))


# a value each command takes for the option (default "1": an id, a number, a user, a name, a task range)
VALUES = {("qstat", "-s"): "r", ("qalter", "-N"): "x", ("qalter", "-h"): "u", ("qhold", "-h"): "u", ("qrls", "-h"): "u",
          ("qalter", "-l"): "h_vmem=1G", ("qacct", "-b"): "202601010000", ("qacct", "-e"): "202601010000"}
HELP = ("-h", "-help", "--help")


def _line(cmd: str, option: str, arity: int, then: str | None = None) -> list[str]:
    line = [option, *[VALUES.get((cmd, option), "1")] * arity, *([then] if then else [])]
    # qstat and qacct refuse a job name where an option should be; the others want a job first
    return line if cmd in ("qstat", "qacct", "crontab") else ["1", *line]


@pytest.mark.parametrize("cmd", sorted(M.CONTROL))
def test_each_commands_table_is_what_its_parser_takes(cmd: str, tmp_path: Path) -> None:
    """migrate-check reads each command's own table; the command's parser takes exactly those options,
    each with that many values: an option after them is read as an option again, and one the table does
    not have is refused."""
    for option, arity in M.CONTROL[cmd].items():
        answer = _answer(cmd, _line(cmd, option, arity), tmp_path)
        assert not _refused_as_unknown(answer, option), (cmd, option, answer)
        if not (arity == 0 and option in HELP):  # help ends the parse
            answer = _answer(cmd, _line(cmd, option, arity, then="-zz"), tmp_path)
            assert _refused_as_unknown(answer, "-zz"), (cmd, option, answer)
    if cmd == "jstop":  # jstop takes no options: its one argument is the name, whatever it looks like
        assert M.CONTROL[cmd] == {} and _answer(cmd, ["-zz"], tmp_path) == ""
    else:
        assert _refused_as_unknown(_answer(cmd, _line(cmd, "-zz", 0), tmp_path), "-zz"), cmd


def test_absent_clients_are_really_absent() -> None:
    setup = (REPO / "setup.cfg").read_text()
    scripts = set(re.findall(r"^\s+(\w+) = gridshim", setup, re.M))
    assert not scripts & set(M.ABSENT)
    assert set(M.SUBMIT) | set(M.CONTROL) <= scripts


# -- the CLI ---------------------------------------------------------------------------------------

def test_cli_reports_and_exits_1_when_something_is_unsupported(tmp_path: Path) -> None:
    (tmp_path / "crontab").write_text(MIXED)
    out, err = io.StringIO(), io.StringIO()
    env = Env(stdout=out, stderr=err, stdin=io.StringIO(), cwd=str(tmp_path),
              environ={"HOME": str(tmp_path), "USER": "tools.demo", "GRIDSHIM_CONFIG": str(tmp_path / "none")})
    code = main_with(env, ["migrate-check", str(tmp_path / "crontab")])
    text = out.getvalue()
    assert code == 1 and "\x1b[" not in text
    assert f"{tmp_path}/crontab:5: not supported: jsub, job 'arr'" in text
    assert f"{tmp_path}/crontab:8: works unchanged: cron entry, job 'cron-7'" in text
    assert "instead: submit the array with qsub: qsub -t 1-5" in text
    assert text.rstrip().endswith("10 grid commands in 1 file: 3 work unchanged, 2 with a difference, "
                                  "5 not supported.")
    assert "does not exist" in err.getvalue()  # the missing site config is a warning, not a stop


def test_cli_reads_the_crontab_from_stdin_and_exits_0_when_all_is_supported(tmp_path: Path) -> None:
    out = io.StringIO()
    env = Env(stdout=out, stderr=io.StringIO(), stdin=io.StringIO("*/5 * * * * jsub -N x -quiet /bin/true\n"),
              cwd=str(tmp_path), environ={"HOME": str(tmp_path)})
    assert main_with(env, ["migrate-check"]) == 0
    assert "<stdin>:1: works unchanged: jsub, job 'x'" in out.getvalue()


def test_cli_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    env = Env(stdout=io.StringIO(), stderr=io.StringIO(), stdin=io.StringIO(), cwd=str(tmp_path),
              environ={"HOME": str(tmp_path)})
    with pytest.raises(UsageError, match="cannot read"):
        main_with(env, ["migrate-check", str(tmp_path / "nope")])


COMMAND_MODULES = {"crontab", "job", "jstop", "qacct", "qalter", "qdel", "qmod", "qstat"}


def test_the_logic_stays_out_of_the_edge() -> None:
    """doctor.py and migrate.py are pure: no CLI, no click or rich, and the cluster only by duck type."""
    for mod in ("doctor.py", "migrate.py"):
        tree = ast.parse((REPO / "src" / "gridshim" / mod).read_text())
        # migrate reads the other commands' option tables from the command modules (data only): exactly those
        tables = {n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "gridshim.cli"
                  and mod == "migrate.py" and {a.name for a in n.names} <= COMMAND_MODULES}
        names = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and n not in tables}
        names |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        bad = [n for n in names if n.startswith(("gridshim.cli", "gridshim.cluster", "click", "rich", "kubernetes"))]
        assert not bad, f"{mod} imports {bad}"


# -- one pipeline: jsub, the crontab wrapper and migrate-check agree (issue 11 Deliver 1 and 6) ----------

def _jsub(argv: list[str], *, files: dict[str, str] | None = None, env: dict[str, str] | None = None,
          settings: Settings | None = None):  # type: ignore[no-untyped-def]
    """jsub's own path: submit.plan with the submit host's environment (no PATH unless given)."""
    from gridshim import submit
    from gridshim.translate import SubmitHost

    files = files or {}
    port = SubmitHost(tool="demo", home=HOME, cwd=HOME, env={"USER": "tools.demo", **(env or {})}, uid=52000,
                      token="0123456789abcdef", exists=lambda p: p in files, read_text=files.get)
    return submit.plan("jsub", argv, settings=settings or Settings(), host=port)


def _cron(text: str, *, files: dict[str, str] | None = None, settings: Settings | None = None):  # type: ignore[no-untyped-def]
    """The crontab wrapper's path (crontab.plan, as `crontab FILE` runs it)."""
    from gridshim import crontab

    return crontab.plan(text, settings=settings or Settings(), host=host(files))


NOT_FOUND = "argument program: Program 'no such program' not found."


@pytest.mark.parametrize("argv", [["-N", "x", "no such program"], ["no such program"], ["-once", "no such program", "a"]])
def test_a_program_word_with_spaces_not_found_is_refused_by_submit_plan(argv: list[str]) -> None:
    with pytest.raises(UsageError) as e:
        _jsub(argv)
    assert e.value.message == NOT_FOUND
    assert _jsub(["no-such-program"]).found is False  # without blanks: passed on, the image may have it


@pytest.mark.parametrize("cmd", ["jsub", "jstart", "qcronsub"])
def test_a_program_word_with_spaces_not_found_is_refused_by_the_crontab_wrapper(cmd: str) -> None:
    from gridshim import crontab

    with pytest.raises(crontab.CrontabInvalid) as e:
        _cron(f'0 * * * * {cmd} -N y "no such program"\n')
    assert [(p.line, p.message) for p in e.value.problems] == [(1, f"{cmd}: {NOT_FOUND}")]


def test_a_program_word_with_spaces_that_exists_is_fine_everywhere() -> None:
    files = {f"{HOME}/my prog": "#!/bin/sh\n"}
    assert _jsub(["-N", "x", f"{HOME}/my prog"], files=files).program == f"{HOME}/my prog"
    assert _cron(f'0 * * * * jsub -N x "{HOME}/my prog"\n', files=files).jobs[0].request.argv[0] == f"{HOME}/my prog"
    assert one(check_crontab(f'0 * * * * jsub -N x "{HOME}/my prog"\n', files=files)).verdict is not N


@pytest.mark.parametrize("where", ["crontab", "script"])
def test_a_program_word_with_spaces_not_found_is_refused_by_migrate_check(where: str) -> None:
    if where == "crontab":
        f = one(check_crontab('0 * * * * jsub -N y "no such program"\n'))
    else:
        f = one(check_script('#!/bin/sh\njsub -N y "no such program"\n'))
    assert (f.command, f.verdict, f.job) == ("jsub", N, "y")
    assert notes(f) == f"jsub: {NOT_FOUND}"


RC = {f"{HOME}/custom.rc": "-N from-custom-rc\n", f"{HOME}/.jsubrc": "-N from-home-rc\n"}


def test_jobutils_jsubrc_is_read_by_jsub_crontab_lines_and_migrate_check() -> None:
    """The drift issue 11 names: JOBUTILS_JSUBRC was read by jsub only."""
    custom = {"JOBUTILS_JSUBRC": f"{HOME}/custom.rc"}
    assert _jsub(["/bin/true"], files=RC, env=custom).request.name == "from-custom-rc"
    assert _jsub(["/bin/true"], files=RC).request.name == "from-home-rc"
    line = "0 * * * * jsub /bin/true\n"
    text = f"JOBUTILS_JSUBRC={HOME}/custom.rc\n{line}"
    assert _cron(text, files=RC).jobs[0].request.name == "from-custom-rc"
    assert _cron(line, files=RC).jobs[0].request.name == "from-home-rc"
    assert [f.job for f in check_crontab(text, files=RC) if f.command == "jsub"] == ["from-custom-rc"]
    assert [f.job for f in check_crontab(line, files=RC) if f.command == "jsub"] == ["from-home-rc"]
    sub = M.analyse_submit("jsub", ["/bin/true"], settings=Settings(), host=host(RC), env=custom)
    assert sub.job == "from-custom-rc"


def test_the_default_path_is_the_same_for_jsub_and_migrate_check() -> None:
    """Without a PATH of the caller's, jsub and migrate-check's reading of a script use submit.DEFAULT_PATH;
    a crontab line is read with cron's PATH by the wrapper and migrate-check alike (the other drift)."""
    from gridshim import crontab, submit

    assert submit.DEFAULT_PATH == "/usr/local/bin:/usr/bin:/bin"
    files = {"/usr/local/bin/tool9": "#!/bin/sh\n"}
    assert _jsub(["tool9"], files=files).program == "/usr/local/bin/tool9"
    sub = M.analyse_submit("jsub", ["tool9"], settings=Settings(), host=host(files))
    assert (sub.job, sub.program) == ("tool9", "/usr/local/bin/tool9")
    assert "is not on this machine" not in notes(one(check_script("#!/bin/sh\njsub tool9\n", files=files)))
    assert "is not on this machine" in notes(one(check_script("#!/bin/sh\njsub tool9\n")))  # the control
    # cron's PATH (/usr/bin:/bin) for a crontab line, in the wrapper and in migrate-check
    assert crontab.CRON_PATH == "/usr/bin:/bin"
    warned = [w.message for w in _cron("0 * * * * jsub tool9\n", files=files).warnings]
    assert any("not found in PATH (/usr/bin:/bin)" in w for w in warned), warned
    assert "not found in PATH (/usr/bin:/bin)" in notes(one(check_crontab("0 * * * * jsub tool9\n", files=files)))
    cron_line = "PATH=/usr/local/bin:/usr/bin:/bin\n0 * * * * jsub tool9\n"
    assert _cron(cron_line, files=files).jobs[0].request.argv[0] == "/usr/local/bin/tool9"
    assert _cron("0 * * * * jsub tool9\n", files=files).jobs[0].request.argv[0] == "tool9"


@pytest.mark.parametrize("argv,name", [
    (["-mem", "9g", f"{HOME}/bin/task.v2.sh"], "task"),  # jsub's default: the basename up to the first dot
    (["-N", "mine", "-mem", "9g", f"{HOME}/bin/task.v2.sh"], "mine"),
    (["-mem", "9g", "/usr/bin/python3.11", "x.py"], "python3"),
])
def test_the_name_migrate_check_reports_for_a_refused_line_is_jsubs(argv: list[str], name: str) -> None:
    """The third drift: a line jsub refuses (here: memory above the site's maximum) is reported under the
    name jsub would have given the job (submit.guess_name: -N, else translate.default_job_name)."""
    from gridshim import submit
    from gridshim.translate import SubmitHost

    settings = from_dict({"images": {"default": "img"}, "memory": {"max": "4Gi"}})
    files = {f"{HOME}/bin/task.v2.sh": "#!/bin/sh\n", "/usr/bin/python3.11": ""}
    with pytest.raises(Exception) as refused:
        _jsub(argv, files=files, settings=settings)
    assert "more than this site's maximum" in str(refused.value)
    port = SubmitHost(tool="demo", home=HOME, cwd=HOME, env={}, exists=files.__contains__)
    assert submit.guess_name("jsub", argv, host=port) == name
    script = M.Source(name="run.sh", text=f"#!/bin/sh\njsub {' '.join(argv)}\n", path=f"{HOME}/run.sh")
    (f,) = M.check([script], settings=settings, host=host(files)).findings
    assert (f.verdict, f.job) == (N, name)
    assert "more than this site's maximum" in notes(f)
    assert M.analyse_submit("jsub", argv, settings=settings, host=host(files)).job == name


def test_qsubs_two_line_answers_are_one_note() -> None:
    files = {f"{HOME}/job.sh": "echo\n"}
    f = one(check_script("#!/bin/sh\nqsub -t x job.sh\n", files=files))
    assert (f.verdict, notes(f)) == (N, 'qsub: Numerical value invalid! The initial portion of string "x" contains no '
                                        "decimal number (exit 7)")
