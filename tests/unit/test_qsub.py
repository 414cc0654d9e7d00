"""qsub: the SGE dialect end to end without a cluster (contract: ../shared/docs/qsub-behaviour.md).

Two ways in:
- the CLI function `gridshim.cli.qsub.qsub(env, argv)` with an injected `Env` (streams, environ,
  cwd in tmp_path), a tmp site config and a minimal kubeconfig. `--dry-run` contacts nothing;
  for the submit line, `-terse` and `-sync y` a tiny in-memory cluster replaces `cli.jsub.connect`;
- `submit.plan("qsub", …)` with a `translate.SubmitHost` whose files live in a dict, then
  `render.render`: what the manifest carries (names, paths, resources, environment, argv).

Goldens: tests/golden/qsub_*.yaml, for the script shapes real pipelines submit (§8);
GRIDSHIM_UPDATE_GOLDEN=1 rewrites them (same policy as test_render.py).
"""

from __future__ import annotations

import io
import os
import posixpath
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from gridshim import sgeflags, submit
from gridshim.cli._common import Env
from gridshim.cli.qsub import qsub
from gridshim.config import Settings, Volume
from gridshim.render import render, to_yaml
from gridshim.render.command import unwrap_command, wrap_command
from gridshim.render.labels import job_id_for
from gridshim.sgeflags import QsubError, Rejected
from gridshim.translate import SubmitHost, check_sge_name, parallel_environment
from kit import FakeApi, golden as assert_golden

HOME = "/data/project/demo"
TOKEN = "0123456789abcdef"
JOB_ID = job_id_for(TOKEN)
SITE_REQUEST = "/etc/gridshim/sge_request"
SETTINGS = Settings(images={"default": "registry/bookworm:latest"},
                    volumes=(Volume(name="home", mount="/data/project", host_path="/data/project"),),
                    sge_request=SITE_REQUEST)
ENVIRON = {"USER": "tools.demo", "LOGNAME": "tools.demo", "HOME": HOME, "PATH": "/usr/local/bin:/usr/bin:/bin",
           "SHELL": "/bin/bash"}
REPEAT = '"-N" option has already been set, overriding previous setting'
SCRIPT_PREFIX = "Unable to read script file because of error: "


# -- helpers: a submit host backed by a dict, plans, manifests ------------------------------------------

def _abs(path: str, base: str = HOME) -> str:
    return posixpath.normpath(path if path.startswith("/") else posixpath.join(base, path))


def submit_host(files: dict[str, str] | None = None, *, dirs: tuple[str, ...] = (), cwd: str = HOME,
                env: dict[str, str] | None = None) -> SubmitHost:
    """A submit host on which exactly FILES (path → text; relative = under HOME) and DIRS exist."""
    texts = {_abs(p): t for p, t in (files or {}).items()}
    directories = {_abs(d) for d in dirs} | {HOME, cwd}

    def isdir(p: str) -> bool:
        return posixpath.normpath(p) in directories

    return SubmitHost(tool="demo", home=HOME, cwd=cwd, uid=52001, now=1_800_000_000.0, token=TOKEN,
                      env=dict(ENVIRON if env is None else env), isdir=isdir,
                      exists=lambda p: posixpath.normpath(p) in texts or isdir(p),
                      read_text=lambda p: texts.get(posixpath.normpath(p)), hostname="login01",
                      user_home={"tools.demo": HOME}.get)


def qplan(argv: list[str], files: dict[str, str] | None = None, *, dirs: tuple[str, ...] = (), cwd: str = HOME,
          env: dict[str, str] | None = None, stdin: str | None = None,
          settings: Settings = SETTINGS) -> submit.Plan:
    host = submit_host(files, dirs=dirs, cwd=cwd, env=env)
    return submit.plan("qsub", argv, settings=settings, host=host, stdin_text=stdin)


def job_of(p: submit.Plan, settings: Settings = SETTINGS) -> dict[str, Any]:
    (job,) = render(p.request, settings)
    return job


def container(job: dict[str, Any]) -> dict[str, Any]:
    return job["spec"]["template"]["spec"]["containers"][0]


def env_of(job: dict[str, Any]) -> dict[str, str]:
    """The container env as the process sees it (after the kubelet turns `$$` back into `$`)."""
    return {e["name"]: e["value"].replace("$$", "$") for e in container(job)["env"] if "value" in e}


def argv_of(job: dict[str, Any]) -> list[str]:
    unwrapped = unwrap_command(container(job)["command"])
    assert unwrapped is not None
    return list(unwrapped["argv"])  # type: ignore[arg-type]


RUN = {"run.sh": "#!/bin/sh\necho hi\n"}


def with_script(text: str, name: str = "job.sh") -> dict[str, str]:
    return {name: text}


# -- helpers: the CLI with an injected Env, and the kit's fake API server ------------------------------------

def job_ids(api: FakeApi) -> list[int]:
    """The grid ids of the Jobs created, in order."""
    return [int(m["metadata"]["labels"]["gridshim.io/job-id"]) for m in api.created("Job")]


@dataclass
class Result:
    rc: int
    out: str
    err: str


class QsubCLI:
    """`qsub` run in-process: HOME and the cwd in tmp_path, a site config, a kubeconfig (never contacted)."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp = tmp_path
        self.monkeypatch = monkeypatch
        self.home = tmp_path / "home"
        self.work = tmp_path / "work"
        self.home.mkdir()
        self.work.mkdir()
        self.site_request = tmp_path / "sge_request"
        self.kubeconfig = tmp_path / "kubeconfig"
        self.kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: demo\n"
            "clusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:9'}\n"
            "users:\n- name: u\n  user: {}\n"
            "contexts:\n- name: demo\n  context: {cluster: c, user: u, namespace: tool-demo}\n")
        self.config(memory=None)
        self.environ = {"HOME": str(self.home), "USER": "tools.demo", "LOGNAME": "tools.demo",
                        "PATH": "/usr/bin:/bin", "KUBECONFIG": str(self.kubeconfig),
                        "GRIDSHIM_CONFIG": str(tmp_path / "config.yaml")}
        self.script("run.sh", "#!/bin/sh\necho hi\n")
        self.connects: list[bool] = []
        self.cluster: FakeApi | None = None

    def config(self, *, memory: str | None) -> None:
        text = (f"images: {{default: registry/bookworm:latest}}\nuid: 52001\n"
                f"qsub: {{request_file: '{self.site_request}'}}\n")
        if memory:
            text += f"memory: {{max: {memory}}}\n"
        (self.tmp / "config.yaml").write_text(text)

    def script(self, name: str, text: str) -> Path:
        path = self.work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def with_cluster(self, exit_code: int = 0) -> FakeApi:
        """Replace connect(): the kit's FakeApi for real submissions (each job runs and ends with EXIT_CODE
        while -sync y waits), None for --dry-run (as the real one)."""
        import gridshim.cli.jsub as jsub_cli

        fake = FakeApi("tool-demo").run_jobs(exit_code)
        self.cluster = fake

        def connect(env: Env, settings: Settings, *, dry_run: bool) -> tuple[object, str, int | None]:
            self.connects.append(dry_run)
            return (None if dry_run else fake), "demo", 52001

        self.monkeypatch.setattr(jsub_cli, "connect", connect)
        return fake

    def __call__(self, *argv: str, stdin: str = "", environ: dict[str, str] | None = None) -> Result:
        env = Env(stdout=io.StringIO(), stderr=io.StringIO(), stdin=io.StringIO(stdin),
                  environ={**self.environ, **(environ or {})}, cwd=str(self.work), clock=lambda: 1_800_000_000.0)
        rc = qsub(env, list(argv))
        return Result(rc, env.stdout.getvalue(), env.stderr.getvalue())


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> QsubCLI:
    return QsubCLI(tmp_path, monkeypatch)


def dry(cli: QsubCLI, *argv: str, **kw: Any) -> Result:
    return cli("--dry-run", *argv, **kw)


# == 1. messages and exit codes ===========================================================================

class TestCommandLineErrors:
    """§1.1, §1.6, §2.2: `qsub: <msg>` on stderr, exit = SGE's raw status; nothing on stdout."""

    @pytest.mark.parametrize("argv,message,status", [
        (["-foo", "run.sh"], 'invalid option argument "-foo"', 2),
        (["-N"], "-N option must have argument", 2),
        (["-o"], "-o option must have argument", 2),
        (["-wd"], "-wd option must have argument", 2),
        (["-pe"], "-pe option must have pe_name argument", 2),
        (["-pe", "smp"], "-pe option must have range as 2nd argument", 2),
        (["-v"], "-v option must have variable list argument", 2),
        (["-S"], "-S option must have path_name argument", 2),
        (["-@"], "-@ option must have file argument", 2),
        (["--"], "-- option must be followed by job arguments", 2),
        (["-b", "y"], "command required for a binary job", 2),
        (["-js", "x", "run.sh"], "invalid jobshare, must be an unsigned integer", 2),
    ])
    def test_semantic_errors(self, cli: QsubCLI, argv: list[str], message: str, status: int) -> None:
        r = dry(cli, *argv)
        assert (r.rc, r.err, r.out) == (status, f"qsub: {message}\n", "")

    def test_options_after_the_script_are_job_arguments(self, cli: QsubCLI) -> None:
        r = dry(cli, "run.sh", "-N", "-foo")
        assert (r.rc, r.err) == (0, "")
        (job,) = yaml.safe_load_all(r.out)
        assert argv_of(job) == ["/bin/sh", "-N", "-foo"]

    @pytest.mark.parametrize("flag", ["-j", "-b", "-now", "-r", "-R", "-shell", "-sync"])
    def test_bad_yes_no_value(self, cli: QsubCLI, flag: str) -> None:
        r = dry(cli, flag, "x", "run.sh")
        assert (r.rc, r.err, r.out) == (7, f'qsub: invalid option argument "{flag} x"\n', "")

    @pytest.mark.parametrize("value", ["y", "yes", "Y", "YES", "n", "no", "No"])
    def test_yes_no_spellings_are_accepted(self, cli: QsubCLI, value: str) -> None:
        assert dry(cli, "-j", value, "run.sh").rc == 0

    @pytest.mark.parametrize("argv,message", [
        (["-a", "2020"], 'Wrong date/time format "2020" specified to -a option'),
        (["-a", "tomorrow"], 'Wrong date/time format "tomorrow" specified to -a option'),
        (["-p", "2000"], 'invalid priority "2000".  Must be an integer from -1023 to 1024'),
        (["-p", "-1024"], 'invalid priority "-1024".  Must be an integer from -1023 to 1024'),
        (["-p", "high"], 'invalid priority "high".  Must be an integer from -1023 to 1024'),
        (["-m", "b,e"], 'Wrong mail options list format "b,e" specified to -m option'),
        (["-m", "x"], 'Wrong mail options list format "x" specified to -m option'),
        (["-M", "a@b@c"], 'Wrong mail list format "a@b@c" specified to -M option'),
        (["-l", "=3"], 'Wrong resource list format "=3" specified to -l option'),
        (["-l", "h_rt="], 'Wrong resource list format "h_rt=" specified to -l option'),
        (["-l", ""], 'Wrong resource list format "" specified to -l option'),
        (["-v", "GRIDSHIM_TEST_UNSET"],
         'Wrong variable list format -v "GRIDSHIM_TEST_UNSET" or environment variable not set'),
        (["-v", "A=1,GRIDSHIM_TEST_UNSET"],
         'Wrong variable list format -v "A=1,GRIDSHIM_TEST_UNSET" or environment variable not set'),
        (["-N", "a/b"], "argument to -N option must not contain / "),
        (["-N", ""], "empty string argument to -N option invalid"),
        (["-o", ","], 'Wrong stdout path list format "," specified to -o option'),
        (["-e", ","], 'Wrong path list format "," specified to -e option'),
        (["-q", ""], 'Wrong queue list format "" specified to -q option'),
    ])
    def test_syntax_errors(self, cli: QsubCLI, argv: list[str], message: str) -> None:
        r = dry(cli, *argv, "run.sh")
        assert (r.rc, r.err, r.out) == (7, f"qsub: {message}\n", "")

    def test_priority_bounds_are_inclusive(self, cli: QsubCLI) -> None:
        assert dry(cli, "-p", "-1023", "run.sh").rc == 0
        assert dry(cli, "-p", "0", "run.sh").rc == 0

    def test_a_takes_every_documented_date_form(self, cli: QsubCLI) -> None:
        for value in ("01021230", "2701021230", "202701021230", "202701021230.45"):
            assert dry(cli, "-a", value, "run.sh").rc == 0, value

    def test_h_takes_no_argument_so_the_next_word_is_the_script(self, cli: QsubCLI) -> None:
        r = dry(cli, "-h", "u", "run.sh")
        assert (r.rc, r.err) == (14, f"{SCRIPT_PREFIX}error opening u: No such file or directory\n")

    def test_a_missing_at_file(self, cli: QsubCLI) -> None:
        r = dry(cli, "-@", "nofile", "run.sh")
        assert r.rc != 0 and "error opening nofile: No such file or directory" in r.err


class TestScriptErrors:
    """§2.2: the script stage prefixes `Unable to read script file because of error: `."""

    def test_missing_script(self, cli: QsubCLI) -> None:
        r = dry(cli, "x.sh")
        assert (r.rc, r.err, r.out) == (14, f"{SCRIPT_PREFIX}error opening x.sh: No such file or directory\n", "")

    @pytest.mark.parametrize("argv", [[], ["-"], ["-N", "x"]])
    def test_empty_stdin(self, cli: QsubCLI, argv: list[str]) -> None:
        r = dry(cli, *argv, stdin="")
        assert (r.rc, r.err, r.out) == (4, f"{SCRIPT_PREFIX}no input read from stdin\n", "")

    @pytest.mark.parametrize("directive,message,status", [
        ("#$ -foo", 'invalid option argument "-foo"', 2),
        ("#$ -N", "-N option must have argument", 2),
        ("#$ -pe smp", "-pe option must have range as 2nd argument", 2),
        ("#$ -l h_rt=60 #$ -foo", None, 0),  # everything from the first '#' is cut: no error
    ])
    def test_bad_directive_arity(self, cli: QsubCLI, directive: str, message: str | None, status: int) -> None:
        cli.script("bad.sh", f"#!/bin/sh\necho start\n{directive}\necho end\n")
        r = dry(cli, "bad.sh")
        expected = (0, "") if message is None else (status, f"{SCRIPT_PREFIX}{message}\n")
        assert (r.rc, r.err) == expected

    @pytest.mark.parametrize("directive,message", [
        ("#$ -j x", 'invalid option argument "-j x"'),
        ("#$ -N a/b", "argument to -N option must not contain / "),
        ("#$ -m b,e", 'Wrong mail options list format "b,e" specified to -m option'),
    ])
    def test_bad_directive_value_has_the_script_prefix(self, cli: QsubCLI, directive: str, message: str) -> None:
        """§2.2 'bad #$ directive → Unable to read script file because of error: <msg>, the status'."""
        cli.script("bad.sh", f"#!/bin/sh\n{directive}\n")
        r = dry(cli, "bad.sh")
        assert (r.rc, r.err) == (7, f"{SCRIPT_PREFIX}{message}\n")

    def test_stdin_script_directive_error(self, cli: QsubCLI) -> None:
        r = dry(cli, stdin="#$ -foo\necho hi\n")
        assert (r.rc, r.err) == (2, f'{SCRIPT_PREFIX}invalid option argument "-foo"\n')


class TestDefaultsFileErrors:
    """§1.2/§2.2: an error in a defaults file is printed without any prefix, exit = its status."""

    @pytest.mark.parametrize("where", ["home", "cwd", "site"])
    def test_unknown_option(self, cli: QsubCLI, where: str) -> None:
        path = {"home": cli.home / ".sge_request", "cwd": cli.work / ".sge_request", "site": cli.site_request}[where]
        path.write_text("# defaults\n-foo\n")
        r = dry(cli, "run.sh")
        assert (r.rc, r.err, r.out) == (2, 'invalid option argument "-foo"\n', "")

    def test_missing_value(self, cli: QsubCLI) -> None:
        (cli.home / ".sge_request").write_text("-N\n")
        r = dry(cli, "run.sh")
        assert (r.rc, r.err) == (2, "-N option must have argument\n")

    def test_bad_value_has_no_prefix(self, cli: QsubCLI) -> None:
        """A bad value in a defaults file is printed without a prefix (§2.2)."""
        (cli.home / ".sge_request").write_text("-j maybe\n")
        r = dry(cli, "run.sh")
        assert (r.rc, r.err) == (7, 'invalid option argument "-j maybe"\n')

    def test_comments_and_blank_lines_are_skipped(self, cli: QsubCLI) -> None:
        (cli.home / ".sge_request").write_text("# -foo would be an error\n\n-j y # merge\n")
        r = dry(cli, "run.sh")
        assert (r.rc, r.err) == (0, "")


class TestUnsupportedOptions:
    """Options SGE knows that gridshim cannot honour yet: ENOIMP (5). The first line is SGE's answer
    exactly (§2.2: `qsub: Unknown option -display host:0`, the option and its value); a second line
    says why gridshim refuses it."""

    @pytest.mark.parametrize("argv,why", [
        (["-ckpt", "c"], "checkpointing"), (["-c", "n"], "checkpointing"),
        (["-dl", "202701010000"], "deadline scheduling"), (["-masterq", "a.q"], "parallel queues"),
        (["-ac", "a=1"], "job contexts"), (["-dc", "a"], "job contexts"), (["-sc", "a=1"], "job contexts"),
        (["-ar", "1"], "advance reservations"), (["-binding", "linear:1"], "core binding"),
        (["-jsv", "/x"], "job submission verifiers"), (["-verify"], "-verify"),
        (["-display", "h:0"], "interactive jobs"), (["-pty", "y"], "interactive jobs"), (["-U", "x"], "access lists"),
    ])
    def test_status_5(self, cli: QsubCLI, argv: list[str], why: str) -> None:
        r = dry(cli, *argv, "run.sh")
        assert (r.rc, r.out) == (5, "")
        assert r.err.splitlines() == [f"qsub: Unknown option {' '.join(argv)}", f"(gridshim does not support {why} yet)"]

    def test_the_contracts_example_line(self, cli: QsubCLI) -> None:
        """§2.2 gives `qsub: Unknown option -display host:0` word for word."""
        assert dry(cli, "-display", "host:0", "run.sh").err.splitlines()[0] == "qsub: Unknown option -display host:0"

    def test_in_a_directive(self, cli: QsubCLI) -> None:
        cli.script("ck.sh", "#!/bin/sh\n#$ -ckpt c\necho hi\n")
        r = dry(cli, "ck.sh")
        assert (r.rc, r.err) == (5, f"{SCRIPT_PREFIX}Unknown option -ckpt c\n(gridshim does not support checkpointing yet)\n")

    def test_in_a_defaults_file(self, cli: QsubCLI) -> None:
        (cli.home / ".sge_request").write_text("-dl 202701010000\n")
        r = dry(cli, "run.sh")
        assert (r.rc, r.err) == (5, "Unknown option -dl 202701010000\n(gridshim does not support deadline scheduling yet)\n")

    def test_without_its_value(self, cli: QsubCLI) -> None:
        """The value's absence is found first, as for every option (§1.1)."""
        r = dry(cli, "-ckpt")
        assert (r.rc, r.err) == (2, "qsub: -ckpt option must have argument\n")


class TestCLIFailures:
    """§2.2–§2.4 messages of the CLI itself, each through `qsub(env, argv)` with the kit's fake API server."""

    def test_no_usable_cluster(self, cli: QsubCLI, monkeypatch: pytest.MonkeyPatch) -> None:
        """§2.2 'cannot reach the qmaster': `Unable to initialize environment because of error: <msg>`,
        `Exiting.`, exit 1; nothing on stdout."""
        import gridshim.cli.jsub as jsub_cli
        from gridshim.errors import GridshimError

        def connect(env: Env, settings: Settings, *, dry_run: bool) -> tuple[object, str, int | None]:
            raise GridshimError("no kubeconfig at /nowhere/config")

        monkeypatch.setattr(jsub_cli, "connect", connect)
        r = cli("run.sh")
        assert (r.rc, r.out, r.err) == (1, "", "Unable to initialize environment because of error: no kubeconfig at "
                                               "/nowhere/config\nExiting.\n")

    def test_job_limit_is_exit_25(self, cli: QsubCLI) -> None:
        """§2.3: the qmaster's 'try later' (max_u_jobs) → exit 25; here the namespace's count/jobs.batch quota."""
        fake = cli.with_cluster()
        fake.seed({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "tool-demo"},
                   "spec": {"hard": {"count/jobs.batch": "1"}}, "status": {"hard": {"count/jobs.batch": "1"}}})
        assert cli("run.sh").rc == 0
        r = cli("run.sh")
        assert (r.rc, r.out, r.err) == (25, "", "Unable to run job: job rejected: only 1 jobs are allowed per user "
                                                "(current job count: 1)\nExiting.\n")
        assert len(fake.created("Job")) == 1

    def test_interrupted_sync_deletes_the_job(self, cli: QsubCLI) -> None:
        """§2.4: Ctrl-C during -sync y prints `Interrupted!` and `Please wait while qsub shuts down.`."""
        fake = cli.with_cluster()

        def ctrl_c() -> None:
            raise KeyboardInterrupt

        fake.controller(ctrl_c)  # the job never ends; the user presses Ctrl-C while qsub waits
        r = cli("-sync", "y", "run.sh")
        n = job_ids(fake)[0]
        assert (r.rc, r.out) == (130, f'Your job {n} ("run.sh") has been submitted\n')
        assert r.err == "Interrupted!\nPlease wait while qsub shuts down.\n"
        assert fake.objects("Job") == []

    def test_script_size_limit(self, cli: QsubCLI) -> None:
        """docs/qsub.md 'Size': the copy travels in one env string (render.manifests.SCRIPT_ENV_LIMIT, the
        variable's `NAME=value` and its NUL); one byte more is refused with SGE's two-line form, exit 1."""
        from gridshim.render.manifests import SCRIPT_ENV_LIMIT

        most = SCRIPT_ENV_LIMIT - len("GRIDSHIM_SCRIPT=") - 1
        cli.script("big.sh", "#" * (most - 1) + "\n")
        assert dry(cli, "big.sh").rc == 0
        cli.script("big.sh", "#" * most + "\n")
        r = dry(cli, "big.sh")
        assert (r.rc, r.out) == (1, "")
        assert r.err == ("Unable to run job: the job script is more than 127 KiB, the most gridshim carries in a job; "
                         "run a script of that size from a file in your home with qsub -b y /bin/sh PATH\nExiting.\n")

    def test_script_size_counts_bytes(self, cli: QsubCLI) -> None:
        most = 128 * 1024 - len("GRIDSHIM_SCRIPT=") - 1
        cli.script("big.sh", "é" * (most // 2 + 1))  # two bytes each in UTF-8
        assert dry(cli, "big.sh").rc == 1


class TestAcceptedWithoutEffect:
    """migration.md 'Accepted, no effect': each submits (exit 0) and changes nothing of the Job."""

    def test_now_y_warns_and_queues(self, cli: QsubCLI) -> None:
        fake = cli.with_cluster()
        r = cli("-now", "y", "run.sh")
        assert r.rc == 0 and r.out == f'Your job {job_ids(fake)[0]} ("run.sh") has been submitted\n'
        assert r.err == "qsub: warning: -now y: there are no interactive queues; the job was queued as a batch job\n"
        assert cli("-now", "n", "run.sh").err == ""

    @pytest.mark.parametrize("argv", [["-js", "5"], ["-R", "y"], ["-P", "x"], ["-R", "n"], ["-js", "0"]])
    def test_submits(self, cli: QsubCLI, argv: list[str]) -> None:
        fake = cli.with_cluster()
        r = cli(*argv, "run.sh")
        assert (r.rc, r.err, r.out) == (0, "", f'Your job {job_ids(fake)[0]} ("run.sh") has been submitted\n')
        baseline = job_of(qplan(["run.sh"], RUN))
        job = job_of(qplan([*argv, "run.sh"], RUN))
        def env(j: dict[str, Any]) -> dict[str, str]:  # -P is written into the accounting record only
            return {k: v for k, v in env_of(j).items() if k != "GRIDSHIM_ACCT"}

        assert (container(job)["resources"], env(job), job["spec"].get("activeDeadlineSeconds")) == \
            (container(baseline)["resources"], env(baseline), None)
        assert {k: v for k, v in job["spec"]["template"]["spec"].items() if k != "containers"} == \
            {k: v for k, v in baseline["spec"]["template"]["spec"].items() if k != "containers"}

    def test_project_is_recorded(self) -> None:
        """-P: accounting's project field (qacct), nothing else."""
        p = qplan(["-P", "x", "run.sh"], RUN)
        assert p.request.options["project"] == "x"
        assert "\nx:defaultdepartment:" in env_of(job_of(p))["GRIDSHIM_ACCT"]
        assert "\nNONE:defaultdepartment:" in env_of(job_of(qplan(["run.sh"], RUN)))["GRIDSHIM_ACCT"]


class TestRejections:
    """§1.4, §2.3: what the qmaster refuses: `Unable to run job: <text>` + `Exiting.`, exit 1."""

    @pytest.mark.parametrize("argv,text", [
        (["1run.sh"], 'denied: "1run.sh" is not a valid object name (cannot start with a digit)'),
        (["-N", "9lives", "run.sh"], 'denied: "9lives" is not a valid object name (cannot start with a digit)'),
        (["-N", "a:b", "run.sh"], "Colon (':') not allowed in objectname"),
        (["-N", "a@b", "run.sh"], "At ('@') not allowed in objectname"),
        (["-N", "a*", "run.sh"], "Asterisk ('*') not allowed in objectname"),
        (["-N", "a?", "run.sh"], "Question mark ('?') not allowed in objectname"),
        (["-N", "a\\b", "run.sh"], "Backslash ('\\') not allowed in objectname"),
        (["-N", "ALL", "run.sh"], 'Keyword ("ALL") not allowed as objectname'),
        (["-N", "none", "run.sh"], 'Keyword ("none") not allowed as objectname'),
        (["-N", "Template", "run.sh"], 'Keyword ("Template") not allowed as objectname'),
        (["-N", "x" * 513, "run.sh"], "string is longer than 512, this is not allowed for objectnames"),
        (["-l", "foo=1", "run.sh"], 'unknown resource "foo"'),
        (["-l", "foo", "run.sh"], 'unknown resource "foo"'),
        (["-pe", "nope", "2", "run.sh"], 'job rejected: the requested parallel environment "nope" does not exist'),
        (["-p", "1", "run.sh"], "job rejected: positive submission priority requires operator privileges"),
        (["-p", "1024", "run.sh"], "job rejected: positive submission priority requires operator privileges"),
        (["-l", "h_rt=abc", "run.sh"], 'wrong type in "h_rt=abc" - time expected'),
        (["-l", "h_vmem=lots", "run.sh"], 'wrong type in "h_vmem=lots" - memory expected'),
    ])
    def test_refused(self, cli: QsubCLI, argv: list[str], text: str) -> None:
        if argv[0] == "1run.sh":
            cli.script("1run.sh", "echo\n")
        r = dry(cli, *argv)
        assert (r.rc, r.err, r.out) == (1, f"Unable to run job: {text}\nExiting.\n", "")

    def test_a_name_of_512_characters_is_fine(self, cli: QsubCLI) -> None:
        assert dry(cli, "-N", "x" * 512, "run.sh").rc == 0

    def test_site_memory_cap_uses_the_two_line_form(self, cli: QsubCLI) -> None:
        """§2.3: every refusal is `Unable to run job: …` + newline + `Exiting.`."""
        cli.config(memory="1G")
        r = dry(cli, "-l", "h_vmem=2G", "run.sh")
        assert r.rc == 1 and r.out == ""
        assert r.err.startswith("Unable to run job: ") and r.err.endswith("\nExiting.\n")


class TestSuccessOutput:
    """§2.1: the submit line or the bare id on stdout; SGE's warnings before it; -sync y."""

    def test_dry_run_prints_the_manifest_and_contacts_nothing(self, cli: QsubCLI) -> None:
        r = dry(cli, "run.sh")  # the kubeconfig's server (127.0.0.1:9) is never dialled
        assert (r.rc, r.err) == (0, "")
        (job,) = yaml.safe_load_all(r.out)
        assert job["kind"] == "Job" and job["metadata"]["labels"]["app.kubernetes.io/created-by"] == "demo"
        assert env_of(job)["JOB_NAME"] == "run.sh"
        assert job["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 52001

    def test_submit_line(self, cli: QsubCLI) -> None:
        fake = cli.with_cluster()
        r = cli("run.sh")
        assert (r.rc, r.err) == (0, "")
        assert r.out == f'Your job {job_ids(fake)[0]} ("run.sh") has been submitted\n'
        assert cli.connects == [False]

    def test_submit_line_id_is_the_first_digits_for_dask(self, cli: QsubCLI) -> None:
        fake = cli.with_cluster()
        out = cli("-N", "dask-worker", "run.sh").out
        assert int(re.search(r"(?P<job_id>\d+)", out).group("job_id")) == job_ids(fake)[0]  # type: ignore[union-attr]

    def test_terse(self, cli: QsubCLI) -> None:
        fake = cli.with_cluster()
        r = cli("-terse", "run.sh")
        assert (r.rc, r.out, r.err) == (0, f"{job_ids(fake)[0]}\n", "")

    def test_terse_from_a_directive(self, cli: QsubCLI) -> None:
        fake = cli.with_cluster()
        r = cli(stdin="#!/bin/bash\n#$ -terse\n#$ -N nf-x\necho hi\n")
        assert (r.rc, r.out) == (0, f"{job_ids(fake)[0]}\n")

    def test_terse_keeps_gridshims_own_warnings_off_stdout(self, cli: QsubCLI) -> None:
        fake = cli.with_cluster()
        r = cli("-terse", "-l", "arch=lx-amd64", "-m", "be", "run.sh")
        assert r.out == f"{job_ids(fake)[0]}\n"
        assert r.err.startswith("qsub: warning: -l arch=lx-amd64") and r.err.count("qsub: warning:") == 2

    def test_repeat_warning_comes_before_the_submit_line(self, cli: QsubCLI) -> None:
        fake = cli.with_cluster()
        cli.script("rep.sh", "#$ -N a\n#$ -N b\necho\n")
        r = cli("-N", "c", "-N", "d", "rep.sh")
        assert r.out.splitlines() == [f"warning: {REPEAT}", f"qsub: warning: {REPEAT}",
                                      f'Your job {job_ids(fake)[0]} ("d") has been submitted']

    def test_repeat_warning_comes_before_the_terse_id(self, cli: QsubCLI) -> None:
        fake = cli.with_cluster()
        r = cli("-terse", "-N", "a", "-N", "b", "run.sh")
        assert r.out == f"qsub: warning: {REPEAT}\n{job_ids(fake)[0]}\n"

    def test_sync_returns_the_jobs_exit_code(self, cli: QsubCLI) -> None:
        fake = cli.with_cluster(exit_code=3)
        r = cli("-sync", "y", "run.sh")
        n = job_ids(fake)[0]
        assert (r.rc, r.out, r.err) == (3, f'Your job {n} ("run.sh") has been submitted\n',
                                        f"Job {n} exited with exit code 3.\n")

    def test_sync_success_line_is_not_printed_with_terse(self, cli: QsubCLI) -> None:
        fake = cli.with_cluster(exit_code=0)
        r = cli("-sync", "y", "run.sh")
        n = job_ids(fake)[0]
        assert (r.rc, r.out) == (0, f'Your job {n} ("run.sh") has been submitted\nJob {n} exited with exit code 0.\n')
        r = cli("-sync", "y", "-terse", "run.sh")
        assert (r.rc, r.out, r.err) == (0, f"{job_ids(fake)[1]}\n", "")

    def test_help(self, cli: QsubCLI) -> None:
        r = cli("-help")
        assert r.rc == 0 and r.out.startswith("usage: qsub [options]") and r.err == ""

    def test_w_v_verifies_and_submits_nothing(self, cli: QsubCLI) -> None:
        fake = cli.with_cluster()
        r = cli("-w", "v", "run.sh")
        assert (r.rc, r.out, r.err) == (0, "verification: found suitable queue(s)\n", "")
        assert fake.created("Job") == []

    def test_script_from_stdin(self, cli: QsubCLI) -> None:
        fake = cli.with_cluster()
        r = cli("--", "a", "b", stdin="echo $1 $2\n")
        assert r.out == f'Your job {job_ids(fake)[0]} ("STDIN") has been submitted\n'
        assert argv_of(fake.created("Job")[0]) == ["/bin/sh", "a", "b"]

    def test_dry_run_after_the_script_is_a_job_argument(self, cli: QsubCLI) -> None:
        """§1.1: every token after the script is a job argument, so this is a real submission."""
        fake = cli.with_cluster()
        r = cli("run.sh", "--dry-run")
        assert (r.rc, r.err) == (0, "")
        assert cli.connects == [False] and len(fake.created("Job")) == 1
        assert argv_of(fake.created("Job")[0]) == ["/bin/sh", "--dry-run"]

    def test_at_file_with_the_script_on_stdin(self, cli: QsubCLI) -> None:
        """§1.2 `-@ file` + §1.1 script from stdin (stdin is read only once plan() knows it needs it)."""
        (cli.work / "opts").write_text("-N fromfile\n")
        r = dry(cli, "-@", "opts", stdin="echo hi\n")
        assert (r.rc, r.err) == (0, "")
        (job,) = yaml.safe_load_all(r.out)
        assert env_of(job)["JOB_NAME"] == "fromfile"


# == 2. directives and precedence ==========================================================================

class TestDirectives:
    """§1.3: `#$` lines anywhere in the file, column 1, cut at '#', quotes deleted; -C."""

    def test_the_whole_file_is_scanned(self) -> None:
        script = ("#!/bin/bash\n# a comment\n\necho start\nif true; then\n  cat <<EOF\n#$ -l h_rt=77\nEOF\nfi\n"
                  "sleep 1\n#$ -N late\n")
        p = qplan(["job.sh"], with_script(script))
        assert (p.request.name, p.request.wall_seconds) == ("late", 77)

    @pytest.mark.parametrize("line", [" #$ -N x", "\t#$ -N x", "echo #$ -N x", "# $ -N x", "#!$ -N x"])
    def test_column_one_only(self, line: str) -> None:
        assert qplan(["job.sh"], with_script(f"{line}\n")).request.name == "job.sh"

    def test_no_space_after_the_prefix(self) -> None:
        assert qplan(["job.sh"], with_script("#$-N nospace\n")).request.name == "nospace"

    @pytest.mark.parametrize("line,name", [
        ("#$ -N a#b", "a"),
        ('#$ -N "a#b"', "a"),  # cut even inside quotes
        ("#$ -N a # trailing comment", "a"),
        ('#$ -N "my job"', "my job"),
        ("#$ -N 'my job'", "my job"),
        ('#$ -N a"b"c', "abc"),
        ("#$ -N it''s", "its"),
        ("#$   -N   spaced   ", "spaced"),
    ])
    def test_cut_split_and_quote_deletion(self, line: str, name: str) -> None:
        assert qplan(["job.sh"], with_script(f"{line}\n")).request.name == name

    def test_one_line_may_hold_several_options(self) -> None:
        p = qplan(["job.sh"], with_script("#$ -N multi -j y -l h_rt=5\n"))
        assert (p.request.name, p.request.merge, p.request.wall_seconds) == ("multi", True, 5)

    def test_quoted_path_with_blanks(self) -> None:
        p = qplan(["job.sh"], with_script('#$ -o "/data/project/demo/my logs/out.log"\n'))
        assert p.request.stdout == "/data/project/demo/my logs/out.log"

    def test_C_sets_another_prefix(self) -> None:
        files = with_script("#$ -N dollar\n#PBS -N pbs\n")
        assert qplan(["-C", "#PBS", "job.sh"], files).request.name == "pbs"
        assert qplan(["job.sh"], files).request.name == "dollar"

    def test_C_empty_turns_directives_off(self) -> None:
        p = qplan(["-C", "", "job.sh"], with_script("#$ -N dollar\n#$ -l h_rt=5\n"))
        assert (p.request.name, p.request.wall_seconds) == ("job.sh", None)

    def test_C_in_a_script_is_ignored(self) -> None:
        p = qplan(["job.sh"], with_script("#$ -C XX\nXX -N other\n#$ -N mine\n"))
        assert p.request.name == "mine"

    def test_C_in_a_defaults_file_is_ignored(self) -> None:
        files = {".sge_request": "-C XX\n", **with_script("XX -N other\n#$ -N mine\n")}
        assert qplan(["job.sh"], files).request.name == "mine"

    def test_binary_on_the_command_line_does_not_read_the_script(self) -> None:
        p = qplan(["-b", "y", "job.sh"], with_script("#$ -N fromscript\n#$ -l h_rt=5\n"))
        assert (p.request.name, p.request.wall_seconds, p.request.script_text) == ("job.sh", None, None)

    def test_binary_in_a_defaults_file_does_not_read_the_script(self) -> None:
        p = qplan(["job.sh"], {".sge_request": "-b y\n", **with_script("#$ -N fromscript\n")})
        assert p.request.name == "job.sh" and p.request.script_text is None

    def test_binary_command_need_not_exist_on_the_submit_host(self) -> None:
        p = qplan(["-b", "y", "/opt/tool/bin/run", "x"])
        assert p.request.argv == ("/bin/sh", "-c", "/opt/tool/bin/run x ")

    def test_directives_of_a_stdin_script(self) -> None:
        p = qplan([], stdin="#$ -N piped\n#$ -j y\necho\n")
        assert (p.request.name, p.request.merge) == ("piped", True)

    def test_terse_and_notify_directives(self) -> None:
        p = qplan(["job.sh"], with_script("#$ -terse\n#$ -notify\n"))
        assert p.terse and p.request.notify
        assert "kill -USR2" in container(job_of(p))["command"][2]
        assert not qplan(["job.sh"], with_script("echo\n")).terse

    def test_crlf_script(self) -> None:
        p = qplan(["job.sh"], with_script("#$ -N dos\r\n#$ -l h_rt=9\r\necho\r\n"))
        assert (p.request.name, p.request.wall_seconds) == ("dos", 9)


class TestPrecedence:
    """§1.2: cmdline > script > ./.sge_request > ~/.sge_request > site file, with the merge rules."""

    LAYERS = {SITE_REQUEST: "-N site\n", ".sge_request": "-N home\n", "/w/.sge_request": "-N cwd\n",
              "/w/job.sh": "#$ -N script\n"}

    @pytest.mark.parametrize("drop,argv,name", [
        ((), ["-N", "cmd", "job.sh"], "cmd"),
        ((), ["job.sh"], "script"),
        (("/w/job.sh",), ["job.sh"], "cwd"),
        (("/w/job.sh", "/w/.sge_request"), ["job.sh"], "home"),
        (("/w/job.sh", "/w/.sge_request", ".sge_request"), ["job.sh"], "site"),
    ])
    def test_order(self, drop: tuple[str, ...], argv: list[str], name: str) -> None:
        files = {k: (v if k not in drop else "echo\n" if k.endswith(".sh") else "") for k, v in self.LAYERS.items()}
        assert qplan(argv, files, cwd="/w").request.name == name

    def test_site_file_can_be_switched_off(self) -> None:
        settings = Settings(images=SETTINGS.images, sge_request=None)
        p = qplan(["run.sh"], {SITE_REQUEST: "-N site\n", **RUN}, settings=settings)
        assert p.request.name == "run.sh"

    def test_the_same_file_is_read_once(self) -> None:
        p = qplan(["run.sh"], {".sge_request": "-N home -l h_rt=5\n", **RUN})  # cwd = HOME
        assert (p.request.name, p.notices) == ("home", ())

    def test_l_is_merged_by_resource_name(self) -> None:
        files = {SITE_REQUEST: "-l h_rt=100,h_vmem=1G\n", "job.sh": "#$ -l h_rt=60\n"}
        p = qplan(["-l", "mem_free=300M", "job.sh"], files)
        assert (p.request.wall_seconds, p.request.mem_bytes, p.opts.mem_request) == (60, 1 << 30, 300 << 20)

    def test_l_later_entry_in_one_source_wins(self) -> None:
        assert qplan(["-l", "h_rt=5,h_rt=6", "-l", "h_rt=7", "run.sh"], RUN).request.wall_seconds == 7

    def test_q_from_a_later_source_replaces(self) -> None:
        files = {".sge_request": "-q d.q\n", "job.sh": "#$ -q a.q\n#$ -q b.q\n"}
        assert qplan(["job.sh"], files).request.options["queues"] == ["a.q", "b.q"]  # accumulate in one source
        assert qplan(["-q", "z.q", "job.sh"], files).request.options["queues"] == ["z.q"]
        p = qplan(["run.sh"], {".sge_request": "-q d.q\n", **RUN})
        assert (p.request.queue, env_of(job_of(p))["QUEUE"]) == ("d.q", "d.q")

    def test_m_letters_are_or_ed_across_sources(self) -> None:
        files = {".sge_request": "-m b\n", "job.sh": "#$ -m e\n"}
        assert set(qplan(["-m", "a", "job.sh"], files).opts.mail_events or "") == set("bea")

    def test_m_n_resets(self) -> None:
        assert qplan(["-m", "n", "job.sh"], {".sge_request": "-m be\n", "job.sh": ""}).opts.mail_events == "n"

    def test_m_letters_after_a_reset(self) -> None:
        """'n anywhere resets to no mail at that point': later letters start afresh."""
        files = {"job.sh": "#$ -m n\n"}
        assert qplan(["-m", "a", "job.sh"], files).opts.mail_events == "a"

    def test_M_accumulates(self) -> None:
        p = qplan(["-M", "b@y.org", "run.sh"], {".sge_request": "-M a@x.org\n", **RUN})
        assert p.opts.mail_to == ("a@x.org", "b@y.org") and p.request.options["mail"] == "a@x.org,b@y.org"

    def test_v_is_merged_by_variable(self) -> None:
        p = qplan(["-v", "A=3", "run.sh"], {".sge_request": "-v A=1,B=2\n", **RUN})
        env = env_of(job_of(p))
        assert (env["A"], env["B"]) == ("3", "2")

    def test_clear_drops_everything_before_it(self) -> None:
        files = {".sge_request": "-l h_rt=100\n", "job.sh": "#$ -N s\n#$ -j y\n"}
        p = qplan(["-clear", "-o", "x.log", "job.sh"], files)
        assert (p.request.name, p.request.merge, p.request.wall_seconds, p.request.stdout) == \
            ("job.sh", False, None, f"{HOME}/x.log")
        p = qplan(["job.sh"], {".sge_request": "-l h_rt=100\n", "job.sh": "#$ -clear\n#$ -N s\n"})
        assert (p.request.name, p.request.wall_seconds) == ("s", None)

    def test_at_file_is_inserted_in_place(self) -> None:
        files = {"opts": "-N fromfile -j y\n", **RUN}
        assert qplan(["-N", "before", "-@", "opts", "run.sh"], files).request.name == "fromfile"
        assert qplan(["-@", "opts", "-N", "after", "run.sh"], files).request.name == "after"
        assert qplan(["-@", "opts", "run.sh"], files).request.merge

    def test_at_file_nests_and_works_in_scripts(self) -> None:
        files = {"outer": "-@ inner -l h_rt=9\n", "inner": "-N nested\n", "job.sh": "#$ -@ outer\n"}
        p = qplan(["job.sh"], files)
        assert (p.request.name, p.request.wall_seconds) == ("nested", 9)

    def test_at_file_missing(self) -> None:
        with pytest.raises(QsubError) as e:
            qplan(["-@", "nofile", "run.sh"], RUN)
        assert "error opening nofile: No such file or directory" in e.value.message

    def test_repeat_warning_on_the_command_line(self) -> None:
        p = qplan(["-N", "a", "-N", "b", "run.sh"], RUN)
        assert (p.request.name, p.notices) == ("b", (f"qsub: warning: {REPEAT}",))

    def test_repeat_warning_in_a_script(self) -> None:
        p = qplan(["job.sh"], with_script("#$ -N a\n#$ -N b\n"))
        assert (p.request.name, p.notices) == ("b", (f"warning: {REPEAT}",))

    @pytest.mark.parametrize("flag,v1,v2", [("-j", "y", "n"), ("-pe", "smp", None), ("-a", "01011200", "01011300"),
                                            ("-sync", "n", "n"), ("-shell", "y", "n")])
    def test_warned_options(self, flag: str, v1: str, v2: str | None) -> None:
        argv = [flag, "smp", "1", flag, "smp", "2"] if flag == "-pe" else [flag, v1, flag, v2]
        notices = qplan([*argv, "run.sh"], RUN).notices
        assert notices == (f'qsub: warning: "{flag}" option has already been set, overriding previous setting',)

    @pytest.mark.parametrize("argv", [["-l", "h_rt=1", "-l", "h_rt=2"], ["-o", "a", "-o", "b"], ["-q", "a", "-q", "b"],
                                      ["-v", "A=1", "-v", "A=2"], ["-cwd", "-cwd"]])
    def test_other_options_are_overridden_silently(self, argv: list[str]) -> None:
        assert qplan([*argv, "run.sh"], RUN).notices == ()

    def test_no_warning_across_sources(self) -> None:
        p = qplan(["-N", "cmd", "job.sh"], {".sge_request": "-N home\n", "job.sh": "#$ -N script\n"})
        assert (p.request.name, p.notices) == ("cmd", ())

    def test_defaults_files_read_by_the_cli(self, cli: QsubCLI) -> None:
        cli.site_request.write_text("-l h_rt=100 -N site\n")
        (cli.home / ".sge_request").write_text("-j y -l h_rt=70\n")
        (cli.work / ".sge_request").write_text("-l h_rt=50\n")
        (job,) = yaml.safe_load_all(dry(cli, "run.sh").out)
        assert job["spec"]["activeDeadlineSeconds"] == 50
        assert env_of(job)["JOB_NAME"] == "site"
        unwrapped = unwrap_command(container(job)["command"])
        assert unwrapped is not None and unwrapped["merge"] is True


# == 3. names and paths ===================================================================================

class TestNamesAndPaths:
    """§1.4 (names) and §1.5 (working directory and output files)."""

    @pytest.mark.parametrize("script,name", [("run.sh", "run.sh"), ("sub/job.v2.sh", "job.v2.sh"),
                                             ("/data/project/demo/bin/etl.py", "etl.py"), ("noext", "noext")])
    def test_default_name_is_the_basename_with_extension(self, script: str, name: str) -> None:
        assert qplan([script], {script: "echo\n"}).request.name == name

    def test_stdin_is_named_STDIN(self) -> None:
        p = qplan([], stdin="echo\n")
        assert (p.request.name, p.request.stdout) == ("STDIN", f"{HOME}/STDIN.o{JOB_ID}")
        assert p.request.options["script_file"] == "STDIN"

    def test_binary_name(self) -> None:
        assert qplan(["-b", "y", "/bin/sleep", "10"]).request.name == "sleep"

    def test_output_defaults(self) -> None:
        r = qplan(["run.sh"], RUN).request
        assert (r.workdir, r.stdout, r.stderr, r.stdin) == (HOME, f"{HOME}/run.sh.o{JOB_ID}",
                                                             f"{HOME}/run.sh.e{JOB_ID}", None)
        assert r.job_id == JOB_ID

    def test_output_defaults_follow_the_working_directory(self) -> None:
        r = qplan(["-cwd", "run.sh"], {"/w/run.sh": "echo\n"}, cwd="/w").request
        assert (r.workdir, r.stdout, r.stderr) == ("/w", f"/w/run.sh.o{JOB_ID}", f"/w/run.sh.e{JOB_ID}")
        r = qplan(["-wd", "/x/y", "-N", "n", "run.sh"], RUN).request
        assert (r.workdir, r.stdout) == ("/x/y", f"/x/y/n.o{JOB_ID}")

    def test_cwd_and_wd_last_wins(self) -> None:
        assert qplan(["-wd", "/x", "-cwd", "run.sh"], {"/w/run.sh": ""}, cwd="/w").request.workdir == "/w"
        assert qplan(["-cwd", "-wd", "/x", "run.sh"], {"/w/run.sh": ""}, cwd="/w").request.workdir == "/x"

    def test_j_y_sends_stderr_to_stdout(self) -> None:
        r = qplan(["-j", "y", "-e", "ignored.err", "run.sh"], RUN).request
        assert r.merge and r.stderr == r.stdout == f"{HOME}/run.sh.o{JOB_ID}"
        unwrapped = unwrap_command(container(job_of(qplan(["-j", "y", "run.sh"], RUN)))["command"])
        assert unwrapped is not None and unwrapped["merge"] is True

    @pytest.mark.parametrize("given", ["logs/", "logs", f"{HOME}/logs/"])
    def test_existing_directory_gets_the_default_name_inside(self, given: str) -> None:
        r = qplan(["-o", given, "-e", given, "run.sh"], RUN, dirs=("logs",)).request
        assert (r.stdout, r.stderr) == (f"{HOME}/logs/run.sh.o{JOB_ID}", f"{HOME}/logs/run.sh.e{JOB_ID}")

    def test_a_trailing_slash_means_a_directory_even_before_it_exists(self) -> None:
        """docs/qsub.md 'A directory': `-o logs/` is always logs/NAME.oJOB_ID (SGE could not open `logs/` as a
        file either); `-o logs` without the directory is a file called logs."""
        r = qplan(["-o", "nologs/", "-e", "nologs/", "run.sh"], RUN).request
        assert (r.stdout, r.stderr) == (f"{HOME}/nologs/run.sh.o{JOB_ID}", f"{HOME}/nologs/run.sh.e{JOB_ID}")
        assert qplan(["-o", "nologs", "run.sh"], RUN).request.stdout == f"{HOME}/nologs"

    def test_relative_paths(self) -> None:
        r = qplan(["-o", "out.txt", "-e", "err/e.txt", "-i", "in.txt", "run.sh"], RUN).request
        assert (r.stdout, r.stderr, r.stdin) == (f"{HOME}/out.txt", f"{HOME}/err/e.txt", f"{HOME}/in.txt")
        r = qplan(["-cwd", "-o", "out.txt", "run.sh"], {"/w/run.sh": ""}, cwd="/w").request
        assert r.stdout == "/w/out.txt"
        r = qplan(["-wd", "rel", "-o", "out.txt", "run.sh"], {"/w/run.sh": ""}, cwd="/w").request
        assert (r.workdir, r.stdout) == ("/w/rel", "/w/rel/out.txt")

    def test_tilde(self) -> None:
        r = qplan(["-o", "~/logs/o.txt", "-e", "~", "run.sh"], RUN).request
        assert (r.stdout, r.stderr) == (f"{HOME}/logs/o.txt", f"{HOME}/run.sh.e{JOB_ID}")

    def test_tilde_user(self) -> None:
        assert qplan(["-o", "~tools.demo/o.txt", "run.sh"], RUN).request.stdout == f"{HOME}/o.txt"
        # an account the host does not know stays as written, relative to the working directory
        assert qplan(["-o", "~nobody9/o.txt", "run.sh"], RUN).request.stdout == f"{HOME}/~nobody9/o.txt"

    def test_pseudo_variables(self) -> None:
        r = qplan(["-o", "/l/$JOB_ID.$JOB_NAME.$USER.out", "-e", "$HOME/e.$JOB_ID", "run.sh"], RUN).request
        assert (r.stdout, r.stderr) == (f"/l/{JOB_ID}.run.sh.tools.demo.out", f"{HOME}/e.{JOB_ID}")

    def test_task_id_of_a_non_array_job(self) -> None:
        """§1.5: 'For a non-array job, $TASK_ID expands to 0 in 8.1.9'."""
        assert qplan(["-o", "/l/x.$TASK_ID", "run.sh"], RUN).request.stdout == "/l/x.0"

    def test_double_dollar_gives_one_dollar(self) -> None:
        """§1.5: '`$$` gives `$`, and any other `$` stays literal'."""
        assert qplan(["-o", "/l/a$$b", "run.sh"], RUN).request.stdout == "/l/a$b"

    def test_other_dollars_stay_literal(self) -> None:
        r = qplan(["-o", "/l/$OTHER.$PID.$", "run.sh"], RUN).request
        assert r.stdout == "/l/$OTHER.$PID.$"

    def test_host_prefixes(self) -> None:
        assert qplan(["-o", ":/a:b/x", "run.sh"], RUN).request.stdout == "/a:b/x"
        assert qplan(["-o", "/def,node1:/n1", "run.sh"], RUN).request.stdout == "/def"

    def test_args_after_the_script_are_not_options(self) -> None:
        p = qplan(["run.sh", "-N", "x", "-l", "h_rt=1"], RUN)
        assert (p.request.name, p.request.wall_seconds, p.request.argv) == \
            ("run.sh", None, ("/bin/sh", "-N", "x", "-l", "h_rt=1"))


# == 4. resources ==========================================================================================

class TestResources:
    """§1.7: SGE memory units, memory limits and requests, slots, -pe, h_rt."""

    @staticmethod
    def resources(*argv: str, settings: Settings = SETTINGS) -> tuple[dict[str, Any], dict[str, Any]]:
        job = job_of(qplan([*argv, "run.sh"], RUN, settings=settings), settings)
        return container(job)["resources"], job

    @pytest.mark.parametrize("value,nbytes", [
        ("1000k", 1_000_000), ("1024K", 1024 ** 2), ("1m", 1_000_000), ("1M", 1024 ** 2), ("1g", 10 ** 9),
        ("2G", 2 * 1024 ** 3), ("1.5G", 3 * 1024 ** 3 // 2), ("1048576K", 1024 ** 3), ("123456789", 123456789),
    ])
    def test_memory_units(self, value: str, nbytes: int) -> None:
        assert sgeflags.parse_memory(value) == nbytes
        assert qplan(["-l", f"h_vmem={value}", "run.sh"], RUN).request.mem_bytes == nbytes

    @pytest.mark.parametrize("resource", ["h_vmem", "h_rss"])
    def test_memory_limits(self, resource: str) -> None:
        res, _ = self.resources("-l", f"{resource}=300M")
        assert res["limits"]["memory"] == "300Mi" == res["requests"]["memory"]

    @pytest.mark.parametrize("resource", ["mem_free", "mf", "virtual_free", "vf"])
    def test_memory_requests(self, resource: str) -> None:
        res, _ = self.resources("-l", f"h_vmem=2G,{resource}=700M")
        assert (res["limits"]["memory"], res["requests"]["memory"]) == ("2Gi", "700Mi")
        res, _ = self.resources("-l", f"{resource}=1G")  # above the default limit: the limit follows
        assert res["limits"]["memory"] == "1Gi" == res["requests"]["memory"]

    def test_default_memory(self) -> None:
        res, _ = self.resources()
        assert res["limits"] == {"memory": "512Mi", "cpu": "500m"}
        assert res["requests"] == {"memory": "512Mi", "cpu": "100m"}

    def test_pe_multiplies_per_slot_limits(self) -> None:
        res, job = self.resources("-pe", "smp", "4", "-l", "h_vmem=2G")
        assert res["limits"] == {"memory": "8Gi", "cpu": "4"} and res["requests"]["cpu"] == "4"
        env = env_of(job)
        assert (env["NSLOTS"], env["PE"], env["NHOSTS"]) == ("4", "smp", "1")

    def test_pe_without_memory(self) -> None:
        res, job = self.resources("-pe", "smp", "4")
        assert res["limits"] == {"memory": "512Mi", "cpu": "4"} and res["requests"]["cpu"] == "4"
        assert env_of(job)["NSLOTS"] == "4"

    def test_slots_without_pe(self) -> None:
        res, job = self.resources("-l", "slots=3")
        assert res["requests"]["cpu"] == "3" == res["limits"]["cpu"]
        env = env_of(job)
        assert env["NSLOTS"] == "3" and "PE" not in env
        res, _ = self.resources("-l", "s=2")  # the stock shortcut
        assert res["requests"]["cpu"] == "2"

    def test_serial_job_keeps_the_site_cpu(self) -> None:
        res, job = self.resources("-pe", "smp", "1")
        assert res["requests"]["cpu"] == "100m" and env_of(job)["NSLOTS"] == "1"

    @pytest.mark.parametrize("value,seconds", [("INFINITY", None), ("infinity", None), ("1::1", 3601),
                                               ("01:00:00", 3600), ("90", 90), ("::5", 5), ("0:30:00", 1800)])
    def test_h_rt(self, value: str, seconds: int | None) -> None:
        _, job = self.resources("-l", f"h_rt={value}")
        assert job["spec"].get("activeDeadlineSeconds") == seconds

    @pytest.mark.parametrize("resources,deadline,usr1", [
        ("s_rt=100", 160, 100),  # s_rt alone: SIGUSR1 at 100 s, the kill once the queue's notify time (60 s) passed
        ("s_rt=INFINITY", None, None),
        ("h_rt=60", 60, None),  # h_rt alone
        ("h_rt=INFINITY", None, None),
        ("h_rt=INFINITY,s_rt=100", 160, 100),  # INFINITY is no limit of its own: s_rt still applies
        ("s_rt=100,h_rt=INFINITY", 160, 100),
        ("h_rt=60,s_rt=100", 60, None),  # h_rt first: it kills before any SIGUSR1, in either order
        ("s_rt=100,h_rt=60", 60, None),
        ("h_rt=100,s_rt=100", 100, None),
        ("h_rt=200,s_rt=100", 160, 100),
        ("s_rt=100,h_rt=200", 160, 100),
        ("h_rt=120,s_rt=100", 120, 100),  # the kill at h_rt, before s_rt's notify time is over
        ("h_rt=INFINITY,s_rt=INFINITY", None, None),
    ])
    def test_h_rt_and_s_rt(self, resources: str, deadline: int | None, usr1: int | None) -> None:
        """qsub-behaviour §1.7: SIGKILL past h_rt; SIGUSR1 past s_rt (the wrapper sends it, usr1 seconds after
        the program starts) and the kill once the notify time has passed (docs/qsub.md "Resources")."""
        p = qplan(["-l", resources, "run.sh"], RUN)
        job = job_of(p)
        assert job["spec"].get("activeDeadlineSeconds") == deadline
        assert p.request.soft_seconds == usr1
        script = container(job)["command"][2]
        assert ("kill -USR1 $$$$" in script) is (usr1 is not None)  # $$: escape_expansion's doubling
        if usr1 is not None:
            assert f"sleep {usr1} " in script

    @pytest.mark.parametrize("resources,shown", [
        ("h_rt=200,s_rt=100", ["h_rt=200", "s_rt=100"]),  # h_rt as asked, not the deadline (160)
        ("s_rt=100", ["s_rt=100"]),
        ("h_rt=60", ["h_rt=60"]),
        ("h_rt=INFINITY,s_rt=100", ["s_rt=100"]),
        ("h_rt=0:1:0,s_rt=0:2:0", ["h_rt=60", "s_rt=120"]),
    ])
    def test_qstat_shows_h_rt_and_s_rt_as_asked(self, resources: str, shown: list[str]) -> None:
        from gridshim.output import plain, xml
        from gridshim.status import rows_from_objects

        (row,) = rows_from_objects([job_of(qplan(["-l", resources, "run.sh"], RUN))], [], [], now=1_800_000_000.0)
        assert [r for r in plain.requested(row) if r.startswith(("h_rt=", "s_rt="))] == shown
        assert [f"{n}={v}" for n, v, _ in xml._requests(row) if n in ("h_rt", "s_rt")] == shown

    def test_h_rt_and_s_rt_from_different_sources(self) -> None:
        p = qplan(["-l", "h_rt=INFINITY", "job.sh"], with_script("#$ -l s_rt=30\n"))
        assert (p.request.wall_seconds, p.request.soft_seconds) == (90, 30)
        p = qplan(["-l", "s_rt=INFINITY", "job.sh"], with_script("#$ -l s_rt=30,h_rt=90\n"))
        assert (p.request.wall_seconds, p.request.soft_seconds) == (90, None)  # the command line's s_rt won

    def test_bad_s_rt(self, cli: QsubCLI) -> None:
        r = dry(cli, "-l", "s_rt=soon", "run.sh")
        assert (r.rc, r.err) == (1, 'Unable to run job: wrong type in "s_rt=soon" - time expected\nExiting.\n')

    def test_a_deadline_kubernetes_cannot_enforce_names_the_limit_it_came_from(self, cli: QsubCLI) -> None:
        r = dry(cli, "-l", "s_rt=2147483600", "run.sh")  # + the 60 s notify time: past 2**31 - 1
        assert (r.rc, r.err) == (1, "Unable to run job: job rejected: s_rt=2147483600 and the 60 seconds before its "
                                    "kill are more than the 2147483647 seconds Kubernetes can enforce; use "
                                    "s_rt=INFINITY for no limit\nExiting.\n")
        r = dry(cli, "-l", "s_rt=100,h_rt=2147483648", "run.sh")
        assert r.rc == 0, r.err  # the deadline is s_rt's 160 s
        r = dry(cli, "-l", "h_rt=2147483648", "run.sh")
        assert "job rejected: h_rt=2147483648 is more than" in r.err

    @pytest.mark.parametrize("short,long", [("mf", "mem_free"), ("vf", "virtual_free"), ("s", "slots")])
    def test_shortcuts_of_the_stock_complexes(self, short: str, long: str) -> None:
        value = "2" if long == "slots" else "700M"
        assert job_of(qplan(["-l", f"{short}={value}", "run.sh"], RUN))["spec"] == \
            job_of(qplan(["-l", f"{long}={value}", "run.sh"], RUN))["spec"]

    def test_rt_is_not_a_shortcut(self, cli: QsubCLI) -> None:
        """The stock h_rt complex's shortcut is `h_rt` itself (SGE's centry/h_rt): `rt` is an unknown resource."""
        assert sgeflags.SHORTCUTS == {"mf": "mem_free", "vf": "virtual_free", "s": "slots"}
        r = dry(cli, "-l", "rt=60", "run.sh")
        assert (r.rc, r.err) == (1, 'Unable to run job: unknown resource "rt"\nExiting.\n')

    def test_h_rt_is_not_multiplied_by_slots(self) -> None:
        _, job = self.resources("-pe", "smp", "4", "-l", "h_rt=60")
        assert job["spec"]["activeDeadlineSeconds"] == 60

    def test_stock_complexes_are_accepted_with_a_warning(self) -> None:
        p = qplan(["-l", "arch=lx-amd64,h_cpu=100", "run.sh"], RUN)
        assert p.warnings == ("-l arch=lx-amd64 has no meaning on Kubernetes and was ignored",
                              "-l h_cpu=100 has no meaning on Kubernetes and was ignored")

    def test_site_resources_are_accepted(self) -> None:
        p = qplan(["-l", "release=bookworm,user_slot", "run.sh"], RUN)
        assert p.request.release == "bookworm"
        assert p.warnings == ("-l user_slot=TRUE has no meaning on Kubernetes and was ignored",)


class TestParallelEnvironment:
    """`-pe NAME RANGE` → (granted pe, slots), against the site's list (translate.parallel_environment)."""

    @pytest.mark.parametrize("name,rng,granted", [("smp", "4", ("smp", 4)), ("smp", "2-4", ("smp", 4)),
                                                  ("smp", "-3", ("smp", 3)), ("sm*", "3", ("smp", 3)),
                                                  ("mpi", "2-", ("mpi", 2))])
    def test_ranges_and_wildcards(self, name: str, rng: str, granted: tuple[str, int]) -> None:
        pe, slots = parallel_environment({"pe": (name, *sgeflags.parse_pe_range(rng))}, (), SETTINGS)
        assert (pe, slots) == (granted, granted[1])

    def test_site_cap(self) -> None:
        settings = Settings(parallel_environments={"smp": 2})
        assert parallel_environment({"pe": ("smp", 1, 8)}, (), settings) == (("smp", 2), 2)
        with pytest.raises(Rejected):
            parallel_environment({"pe": ("smp", 4, 4)}, (), settings)

    @pytest.mark.parametrize("rng", ["x", "0", "", "1-x"])
    def test_bad_ranges(self, rng: str) -> None:
        with pytest.raises(QsubError) as e:
            sgeflags.parse_pe_range(rng)
        assert e.value.status == 7

    def test_unknown(self) -> None:
        with pytest.raises(Rejected) as e:
            parallel_environment({"pe": ("orte", 1, 1)}, (), SETTINGS)
        assert e.value.text == 'job rejected: the requested parallel environment "orte" does not exist'


# == 5. the job environment ================================================================================

class TestJobEnvironment:
    """§3: -v/-V first, then the execd's variables, which win."""

    def test_stock_variables(self) -> None:
        env = env_of(job_of(qplan(["run.sh"], RUN)))
        assert {k: env[k] for k in ("SGE_TASK_ID", "SGE_TASK_FIRST", "SGE_TASK_LAST", "SGE_TASK_STEPSIZE")} == \
            dict.fromkeys(("SGE_TASK_ID", "SGE_TASK_FIRST", "SGE_TASK_LAST", "SGE_TASK_STEPSIZE"), "undefined")
        assert {k: env[k] for k in ("NSLOTS", "NHOSTS", "NQUEUES", "QUEUE", "ENVIRONMENT", "RESTARTED", "TERM",
                                    "JOB_ID", "JOB_NAME", "REQUEST", "HOME", "USER", "LOGNAME")} == {
            "NSLOTS": "1", "NHOSTS": "1", "NQUEUES": "1", "QUEUE": "task", "ENVIRONMENT": "BATCH", "RESTARTED": "0",
            "TERM": "", "JOB_ID": str(JOB_ID), "JOB_NAME": "run.sh", "REQUEST": "run.sh", "HOME": HOME,
            "USER": "tools.demo", "LOGNAME": "tools.demo"}
        assert "SGE_JOB_TASK_ID" not in env and "PE" not in env

    def test_submit_side_variables(self) -> None:
        env = env_of(job_of(qplan(["run.sh"], RUN)))
        assert {k: v for k, v in env.items() if k.startswith("SGE_O_")} == {
            "SGE_O_HOME": HOME, "SGE_O_LOGNAME": "tools.demo", "SGE_O_PATH": "/usr/local/bin:/usr/bin:/bin",
            "SGE_O_SHELL": "/bin/bash", "SGE_O_HOST": "login01", "SGE_O_WORKDIR": HOME}
        env = env_of(job_of(qplan(["run.sh"], RUN, env={**ENVIRON, "MAIL": "/var/mail/t", "TZ": "UTC",
                                                          "HOST": "login02.example"})))
        assert (env["SGE_O_MAIL"], env["SGE_O_TZ"], env["SGE_O_HOST"]) == ("/var/mail/t", "UTC", "login02.example")

    def test_workdir_variables(self) -> None:
        env = env_of(job_of(qplan(["run.sh"], {"/w/run.sh": ""}, cwd="/w")))
        assert (env["SGE_O_WORKDIR"], env["SGE_CWD_PATH"]) == ("/w", HOME) and "PWD" not in env
        env = env_of(job_of(qplan(["-cwd", "run.sh"], {"/w/run.sh": ""}, cwd="/w")))
        assert (env["SGE_O_WORKDIR"], env["SGE_CWD_PATH"], env["PWD"]) == ("/w", "/w", "/w")
        env = env_of(job_of(qplan(["-wd", "/x", "run.sh"], {"/w/run.sh": ""}, cwd="/w")))
        assert (env["SGE_CWD_PATH"], env["PWD"]) == ("/x", "/x")

    def test_shell(self) -> None:
        assert env_of(job_of(qplan(["run.sh"], RUN)))["SHELL"] == "/bin/sh"
        job = job_of(qplan(["-S", "/bin/bash", "run.sh"], RUN))
        assert env_of(job)["SHELL"] == "/bin/bash" and argv_of(job)[0] == "/bin/bash"
        job = job_of(qplan(["-V", "-S", "/bin/zsh", "run.sh"], RUN))  # the submit env's SHELL is /bin/bash
        assert env_of(job)["SHELL"] == "/bin/zsh"
        assert env_of(job_of(qplan(["-V", "run.sh"], RUN)))["SHELL"] == "/bin/sh"

    def test_V_passes_the_submit_environment(self) -> None:
        environ = {**ENVIRON, "ONLY_HERE": "yes", "CONDA_PREFIX": "/opt/conda"}
        env = env_of(job_of(qplan(["-V", "run.sh"], RUN, env=environ)))
        assert (env["ONLY_HERE"], env["CONDA_PREFIX"], env["PATH"]) == ("yes", "/opt/conda", ENVIRON["PATH"])
        assert "ONLY_HERE" not in env_of(job_of(qplan(["run.sh"], RUN, env=environ)))

    def test_v_list(self) -> None:
        env = env_of(job_of(qplan(["-v", "A=1,B", "run.sh"], RUN, env={**ENVIRON, "B": "from-env"})))
        assert (env["A"], env["B"]) == ("1", "from-env")

    def test_v_value_may_be_empty_and_keeps_quotes_on_the_command_line(self) -> None:
        env = env_of(job_of(qplan(["-v", "E=,Q='x y'", "run.sh"], RUN)))
        assert (env["E"], env["Q"]) == ("", "'x y'")

    def test_v_quotes_are_deleted_in_a_directive(self) -> None:
        env = env_of(job_of(qplan(["job.sh"], with_script("#$ -v Q='x y'\n"))))
        assert env["Q"] == "x y"

    def test_sge_variables_overwrite_v(self) -> None:
        argv = ["-v", "JOB_NAME=x,NSLOTS=9,SGE_TASK_ID=5,ENVIRONMENT=INTERACTIVE,QUEUE=q,OTHER=kept", "run.sh"]
        env = env_of(job_of(qplan(argv, RUN)))
        assert {k: env[k] for k in ("JOB_NAME", "NSLOTS", "SGE_TASK_ID", "ENVIRONMENT", "QUEUE", "OTHER")} == {
            "JOB_NAME": "run.sh", "NSLOTS": "1", "SGE_TASK_ID": "undefined", "ENVIRONMENT": "BATCH",
            "QUEUE": "task", "OTHER": "kept"}

    def test_account_queue_and_pe(self) -> None:
        env = env_of(job_of(qplan(["-A", "proj42", "-q", "all.q", "-pe", "smp", "2", "run.sh"], RUN)))
        assert (env["SGE_ACCOUNT"], env["QUEUE"], env["PE"], env["NSLOTS"]) == ("proj42", "all.q", "smp", "2")
        assert env_of(job_of(qplan(["run.sh"], RUN)))["SGE_ACCOUNT"] == "sge"


# == 6. the script copy and the job's argv =================================================================

class TestScriptCopy:
    """§1.1 (spooled at submit), §1.4 (posix_compliant start; -b y through `sh -c`; -shell n)."""

    SCRIPT = "#!/bin/bash\n#$ -N copy\necho \"$HOME\" $(date) '$(x)' ${Y}\n"

    def test_the_script_text_travels_in_the_manifest(self) -> None:
        p = qplan(["job.sh"], with_script(self.SCRIPT))
        assert p.request.script_text == self.SCRIPT
        raw = {e["name"]: e["value"] for e in container(job_of(p))["env"] if "value" in e}
        assert raw["GRIDSHIM_SCRIPT"] == self.SCRIPT.replace("$", "$$")  # the kubelet's $(VAR) cannot touch it

    def test_script_job_argv_is_the_shell_then_the_arguments(self) -> None:
        job = job_of(qplan(["job.sh", "a", "b c", ""], with_script(self.SCRIPT)))
        assert argv_of(job) == ["/bin/sh", "a", "b c", ""]  # the #! line is not used (posix_compliant)
        assert "JOB_SCRIPT" not in env_of(job)  # the wrapper sets it to the copy's path

    def test_stdin_script_is_copied_too(self) -> None:
        p = qplan([], stdin="echo from stdin\n")
        assert p.request.script_text == "echo from stdin\n" and p.request.argv == ("/bin/sh",)

    def test_binary_job_goes_through_sh_c_joined_with_blanks(self) -> None:
        job = job_of(qplan(["-b", "y", "/bin/echo", "a b", "", "$HOME", "x;y"]))
        assert argv_of(job) == ["/bin/sh", "-c", '/bin/echo a b "" $HOME x;y ']
        assert "$$HOME" in container(job)["command"][-1]
        env = env_of(job)
        assert env["JOB_SCRIPT"] == "/bin/echo" and "GRIDSHIM_SCRIPT" not in env

    def test_binary_job_with_S(self) -> None:
        assert argv_of(job_of(qplan(["-b", "y", "-S", "/bin/bash", "prog", "x"]))) == ["/bin/bash", "-c", "prog x "]

    def test_binary_shell_n_is_execd_directly(self) -> None:
        job = job_of(qplan(["-b", "y", "-shell", "n", "/bin/echo", "a b", "", "$HOME"]))
        assert argv_of(job) == ["/bin/echo", "a b", "", "$HOME"]

    def test_shell_n_only_matters_for_binary_jobs(self) -> None:
        assert argv_of(job_of(qplan(["-shell", "n", "run.sh", "x"], RUN))) == ["/bin/sh", "x"]

    def test_the_wrapper_runs_the_copy_with_the_shell(self, tmp_path: Path) -> None:
        """The pod's command run by a real /bin/sh: the copy is written out, run by /bin/sh (not the #!
        line), gets its arguments, and sees `$` characters untouched."""
        script = "#!/bin/false\necho \"n=$# 1=[$1] 2=[$2]\"\necho 'literal $HOME $(x)'\necho \"$ENVIRONMENT\"\n"
        p = qplan(["-o", str(tmp_path / "o"), "-e", str(tmp_path / "e"), "job.sh", "a b", "c"],
                  with_script(script))
        process_env = {**dict(p.request.env), "GRIDSHIM_SCRIPT": p.request.script_text or "",
                       "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "JOB_ID": f"t{os.getpid()}"}
        subprocess.run(wrap_command(p.request), env=process_env, cwd=tmp_path, check=True, timeout=30)
        assert (tmp_path / "o").read_text() == "n=2 1=[a b] 2=[c]\nliteral $HOME $(x)\nBATCH\n"

    def test_the_wrapper_runs_a_binary_job_through_the_shell(self, tmp_path: Path) -> None:
        p = qplan(["-b", "y", "-o", str(tmp_path / "o"), "-e", str(tmp_path / "e"),
                   "/bin/echo", "a   b", "$ENVIRONMENT"])
        process_env = {**dict(p.request.env), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                       "JOB_ID": f"t{os.getpid()}"}
        subprocess.run(wrap_command(p.request), env=process_env, cwd=tmp_path, check=True, timeout=30)
        assert (tmp_path / "o").read_text() == "a b BATCH\n"  # re-parsed by the shell, as SGE's starter does


# == 7. small pieces of the pipeline =======================================================================

class TestPipelinePieces:
    def test_dialect_table(self) -> None:
        q = submit.DIALECTS["qsub"]
        assert (q.precedence, q.directives, q.default_name, q.program, q.errors) == \
            ("defaults<script<cmdline", "whole", "basename", "script", "sge")
        assert q.defaults_files(submit_host(cwd="/w"), SETTINGS) == [SITE_REQUEST, f"{HOME}/.sge_request",
                                                                   "/w/.sge_request"]

    @pytest.mark.parametrize("argv,name", [(["-N", "x", "run.sh"], "x"), (["run.sh"], "run.sh"), ([], "STDIN"),
                                           (["-b", "y", "/bin/sleep", "1"], "sleep"), (["-N", "a", "-N", "b"], "b"),
                                           (["-foo"], None)])
    def test_guess_name(self, argv: list[str], name: str | None) -> None:
        assert submit.guess_name("qsub", argv, host=submit_host()) == name

    @pytest.mark.parametrize("name", ["run.sh", "a-b_c.d", "my job", "x" * 512, "Alles", "nonempty"])
    def test_valid_names(self, name: str) -> None:
        check_sge_name(name)

    def test_rejected_carries_the_two_line_text(self) -> None:
        with pytest.raises(Rejected) as e:
            check_sge_name("1x")
        assert str(e.value) == ('Unable to run job: denied: "1x" is not a valid object name (cannot start with a '
                                'digit)\nExiting.') and e.value.exit_code == 1

    @pytest.mark.parametrize("value,seconds", [("0", 0), ("1:2:3", 3723), ("::", None)])
    def test_parse_time(self, value: str, seconds: int | None) -> None:
        if seconds is None:
            with pytest.raises(ValueError):
                sgeflags.parse_time(value)
        else:
            assert sgeflags.parse_time(value) == seconds

    def test_hold_and_rerun(self) -> None:
        job = job_of(qplan(["-h", "-r", "y", "run.sh"], RUN))
        assert job["spec"]["suspend"] is True and "podFailurePolicy" in job["spec"]

    def test_options_annotation_records_the_dialect(self) -> None:
        opts = qplan(["-P", "p1", "-p", "-5", "run.sh"], RUN).request.options
        assert (opts["dialect"], opts["project"], opts["priority"], opts["slots"], opts["script_file"]) == \
            ("qsub", "p1", -5, 1, f"{HOME}/run.sh")


# == 8. golden manifests of the script shapes pipelines use ================================================

DASK_SCRIPT = """\
#!/usr/bin/env bash

#$ -N dask-worker
#$ -l h_rt=00:30:00
#$ -e logs/
#$ -o logs/
#$ -cwd
#$ -j y

/usr/bin/python3 -m distributed.cli.dask_worker tcp://10.64.0.5:8786 --nthreads 1 --memory-limit 1.00GiB \
--name dummy-name --nanny --death-timeout 60
"""

SNAKEMAKE_SCRIPT = """\
#!/bin/bash
# properties = {"type": "single", "rule": "align", "local": false, "input": ["reads/a.fq"], \
"output": ["mapped/a.bam"], "wildcards": {"sample": "a"}, "params": {}, "log": [], "threads": 1, \
"resources": {"mem_gb": 4}, "jobid": 7, "cluster": {}}
set -o errexit
cd /data/project/demo/pipeline && /usr/bin/python3 -m snakemake mapped/a.bam --snakefile \
/data/project/demo/pipeline/Snakefile --force --cores all --nolock --mode 2 && \
touch .snakemake/tmp.k2v8q1/7.jobfinished || (touch .snakemake/tmp.k2v8q1/7.jobfailed; exit 1)
"""
SNAKEMAKE_ENV = {"USER": "tools.demo", "LOGNAME": "tools.demo", "HOME": HOME, "PATH": "/opt/conda/bin:/usr/bin:/bin",
                 "SHELL": "/bin/bash", "LANG": "C.UTF-8", "CONDA_PREFIX": "/opt/conda"}

NEXTFLOW_SCRIPT = """\
#!/bin/bash
#$ -N nf-hello_1
#$ -o /work/.command.log
#$ -j y
#$ -terse
#$ -notify
#$ -pe smp 2
#$ -l h_rt=01:00:00
#$ -l h_rss=512M,mem_free=512M
NXF_CHDIR=/work
# NEXTFLOW TASK: hello (1)
set -e
set -u
NXF_DEBUG=${NXF_DEBUG:=0}; [[ $NXF_DEBUG > 1 ]] && set -x
nxf_main() {
    trap on_exit EXIT
    echo "Hello world!" > .command.out
}
$NXF_ENTRY
"""

TOIL_ENV = {"USER": "tools.demo", "LOGNAME": "tools.demo", "HOME": HOME, "PATH": "/usr/bin:/bin",
            "TOIL_WORKDIR": "/data/project/demo/toil/tmp"}
TOIL_ARGV = ["-V", "-b", "y", "-terse", "-j", "y", "-cwd", "-N", "toil_job_1", "-l", "vf=1048576K,h_vmem=1048576K",
             "-o", "/data/project/demo/toil/logs/toil_4a5b.1.$JOB_ID.out.log",
             "-e", "/data/project/demo/toil/logs/toil_4a5b.1.$JOB_ID.err.log",
             "_toil_worker", "CWLJob", "file:/data/project/demo/toil/jobstore", "kind-CWLJob/instance-8t3x1b0q"]


# the e2e suite's pipeline-shaped script (tests/e2e/test_qsub_e2e.py::test_a_pipeline_shaped_script_runs_with_every_directive)
PIPELINE_SCRIPT = """\
#!/bin/bash
# properties = {}

set -e
#$ -N "pipe job"
#$ -S /bin/bash -cwd
#$ -wd /data/project/demo/work
#$ -j y -o logs/ -l h_rt=INFINITY
#$ -pe smp 4
echo "BASH=$BASH_VERSION"; echo "ONLY=$ONLY_AT_SUBMIT"
echo "JOB_ID=$JOB_ID"; echo "NSLOTS=$NSLOTS"
"""
PIPELINE_ENV = {**ENVIRON, "ONLY_AT_SUBMIT": "seen"}


class TestGoldens:
    def test_pipeline_shaped_script(self) -> None:
        """Every directive of the done-when list: `#$` after comments and blank lines, `-N "quoted"`, -S,
        -cwd then -wd (the last wins), -j y, -o DIR/, -pe smp 4, h_rt=INFINITY; -V on the command line."""
        cwd = f"{HOME}/work"
        p = qplan(["-V", "job.sh", "a b", "c"], {f"{cwd}/job.sh": PIPELINE_SCRIPT}, cwd=cwd, dirs=("work/logs",),
                  env=PIPELINE_ENV)
        r = p.request
        assert (r.name, r.workdir, r.merge, r.wall_seconds, r.cpus) == ("pipe job", cwd, True, None, 4)
        assert r.stdout == r.stderr == f"{cwd}/logs/pipe job.o{JOB_ID}"
        assert r.argv == ("/bin/bash", "a b", "c") and r.script_text == PIPELINE_SCRIPT
        job = job_of(p)
        env = env_of(job)
        assert (env["ONLY_AT_SUBMIT"], env["NSLOTS"], env["PE"], env["SHELL"]) == ("seen", "4", "smp", "/bin/bash")
        assert "activeDeadlineSeconds" not in job["spec"] and container(job)["resources"]["requests"]["cpu"] == "4"
        assert_golden("qsub_pipeline.yaml", to_yaml(render(r, SETTINGS)))

    def test_dask(self) -> None:
        p = qplan(["/tmp/tmp5x3k0a9q.sh"], {"/tmp/tmp5x3k0a9q.sh": DASK_SCRIPT}, cwd=f"{HOME}/dask",
                  dirs=("dask/logs",))
        r = p.request
        assert (r.name, r.wall_seconds, r.workdir, r.merge) == ("dask-worker", 1800, f"{HOME}/dask", True)
        assert r.stdout == r.stderr == f"{HOME}/dask/logs/dask-worker.o{JOB_ID}"
        assert_golden("qsub_dask.yaml", to_yaml(render(r, SETTINGS)))

    def test_snakemake(self) -> None:
        log = "logs/sge/snakejob.align.7.log"
        argv = ["-terse", "-cwd", "-V", "-j", "yes", "-o", log, "-e", log, "-l", "h_vmem=4G",
                ".snakemake/tmp.k2v8q1/snakejob.align.7.sh"]
        cwd = f"{HOME}/pipeline"
        p = qplan(argv, {f"{cwd}/.snakemake/tmp.k2v8q1/snakejob.align.7.sh": SNAKEMAKE_SCRIPT}, cwd=cwd,
                  dirs=("pipeline/logs/sge",), env=SNAKEMAKE_ENV)
        r = p.request
        assert p.terse and (r.name, r.stdout, r.mem_bytes) == ("snakejob.align.7.sh", f"{cwd}/{log}", 4 << 30)
        assert env_of(job_of(p))["CONDA_PREFIX"] == "/opt/conda"
        assert_golden("qsub_snakemake.yaml", to_yaml(render(r, SETTINGS)))

    def test_nextflow(self) -> None:
        p = qplan(["-"], stdin=NEXTFLOW_SCRIPT, cwd="/work")
        r = p.request
        assert p.terse and r.notify and p.notices == ()
        assert (r.name, r.stdout, r.stderr, r.wall_seconds, r.cpus, r.mem_bytes) == \
            ("nf-hello_1", "/work/.command.log", "/work/.command.log", 3600, 2, 1 << 30)
        assert_golden("qsub_nextflow.yaml", to_yaml(render(r, SETTINGS)))

    def test_toil_binary(self) -> None:
        p = qplan(TOIL_ARGV, cwd=f"{HOME}/toil", env=TOIL_ENV)
        r = p.request
        assert p.terse and p.notices == () and r.script_text is None
        assert (r.name, r.mem_bytes, r.stdout) == \
            ("toil_job_1", 1 << 30, f"/data/project/demo/toil/logs/toil_4a5b.1.{JOB_ID}.out.log")
        assert r.argv == ("/bin/sh", "-c", "_toil_worker CWLJob file:/data/project/demo/toil/jobstore "
                                           "kind-CWLJob/instance-8t3x1b0q ")
        assert_golden("qsub_binary.yaml", to_yaml(render(r, SETTINGS)))
