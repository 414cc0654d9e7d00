"""Array jobs (`qsub -t`, `-tc`) and the -hold_jid syntax, without a cluster.

Contract: ../shared/docs/qsub-behaviour.md §1.5, §1.6 (-t, -tc, -hold_jid rows), §2.1, §2.4, §3, §4;
the shared encoding: docs/arrays-and-holds.md. The wrapper is run for real with /bin/sh, as
test_render.py does; the e2e evidence is tests/e2e/test_arrays_e2e.py.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gridshim import ops, tasks as T
from gridshim.config import Settings
from gridshim.record import replace
from gridshim.render import labels as L, render
from gridshim.sgeflags import QsubError, Rejected, parse_task_range
from kit import FakeApi
from test_qsub import JOB_ID, SETTINGS, QsubCLI, container, dry, env_of, job_ids, job_of, qplan

SCRIPT_PREFIX = "Unable to read script file because of error: "


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> QsubCLI:
    return QsubCLI(tmp_path, monkeypatch)


# == parsing: SGE's messages and statuses (§1.6) ===========================================================

class TestTaskRangeSyntax:
    @pytest.mark.parametrize("value,tasks", [
        ("1-10:3", (1, 10, 3)), ("1-10", (1, 10, 1)), ("5", (5, 5, 1)), ("10-1:3", (1, 10, 3)),
        ("2-2", (2, 2, 1)), ("1-75000", (1, 75000, 1)),
    ])
    def test_ranges(self, value: str, tasks: tuple[int, int, int]) -> None:
        assert parse_task_range(value) == tasks

    @pytest.mark.parametrize("argv,message,status", [
        (["-t"], "-t option must have a list of task id ranges", 2),
        (["-t", "1-3,5", "run.sh"], "-t option only allows one range specification", 7),
        (["-t", "x", "run.sh"], 'Numerical value invalid!\nThe initial portion of string "x" contains no decimal number', 7),
        (["-t", "1-y", "run.sh"], 'Numerical value invalid!\nThe initial portion of string "y" contains no decimal number', 7),
        (["-t", "1-5x", "run.sh"], 'Range specifier "1-5x" has unknown trailer "x"', 7),
        (["-t", "1x", "run.sh"], 'Range specifier "1x" has unknown trailer "x"', 7),
        (["-t", "1-5:2y", "run.sh"], 'Range specifier "1-5:2y" has unknown trailer "y"', 7),
        (["-t", "1-5:0", "run.sh"], "Negative or zero step in range is not allowed", 7),
        (["-t", "1-5:-2", "run.sh"], "Negative or zero step in range is not allowed", 7),
        (["-tc", "x", "-t", "1-3", "run.sh"], 'invalid task concurrency number "x". Must be an integer greater or equal to 0.', 7),
        (["-tc", "-1", "-t", "1-3", "run.sh"], 'invalid task concurrency number "-1". Must be an integer greater or equal to 0.', 7),
        (["-hold_jid", "1,,2", "run.sh"], 'Wrong jid_hold list format "1,,2" specified to -hold_jid option', 7),
        (["-hold_jid", ",", "run.sh"], 'Wrong jid_hold list format "," specified to -hold_jid option', 7),
        (["-hold_jid_ad", "a,", "-t", "1-2", "run.sh"],
         'Wrong jid_hold_ad list format "a," specified to -hold_jid_ad option', 7),
    ])
    def test_client_errors(self, cli: QsubCLI, argv: list[str], message: str, status: int) -> None:
        r = dry(cli, *argv)
        assert (r.rc, r.out, r.err) == (status, "", f"qsub: {message}\n")

    def test_a_bad_directive_has_the_script_prefix(self, cli: QsubCLI) -> None:
        cli.script("arr.sh", "#!/bin/sh\n#$ -t 1-5:0\necho $SGE_TASK_ID\n")
        r = dry(cli, "arr.sh")
        assert (r.rc, r.err) == (7, f"{SCRIPT_PREFIX}Negative or zero step in range is not allowed\n")

    @pytest.mark.parametrize("argv,text", [
        (["-t", "0-3"], "job rejected: 0 is an invalid task id"),
        (["-t", "0"], "job rejected: 0 is an invalid task id"),
        (["-t", "1-75001"], "job rejected: you tried to submit a job with more than 75000 tasks"),
        (["-tc", "2"], 'invalid "task concurrency" value in job request'),
        (["-hold_jid_ad", "5"], 'Can only specify "-hold_jid_ad" option with an array job (using "-t" option)'),
    ])
    def test_qmaster_rejections(self, cli: QsubCLI, argv: list[str], text: str) -> None:
        r = dry(cli, *argv, "run.sh")
        assert (r.rc, r.out, r.err) == (1, "", f"Unable to run job: {text}\nExiting.\n")

    def test_75000_tasks_and_tc_0_without_t_are_fine(self, cli: QsubCLI) -> None:
        assert dry(cli, "-t", "1-150000:2", "run.sh").rc == 0
        assert dry(cli, "-tc", "0", "run.sh").rc == 0

    def test_t_as_a_directive_nextflow_style(self) -> None:
        p = qplan(["job.sh"], {"job.sh": "#!/bin/bash\n#$ -N nf\n#$ -t 1-4\n#$ -tc 3\necho $SGE_TASK_ID\n"})
        assert p.request.tasks == (1, 4, 1) and p.request.task_concurrency == 3
        assert p.request.options["tasks"] == [1, 4, 1] and p.request.options["tc"] == 3

    def test_the_command_line_wins_over_the_directive(self) -> None:
        p = qplan(["-t", "2-8:2", "job.sh"], {"job.sh": "#$ -t 1-4\n"})
        assert p.request.tasks == (2, 8, 2)

    def test_hold_lists_are_kept_in_the_options(self) -> None:
        p = qplan(["-hold_jid", "12,prep*", "-hold_jid", "13,12", "-t", "1-3", "-hold_jid_ad", "arr", "run.sh"],
                  {"run.sh": "echo\n"})
        assert p.request.options["hold_jid"] == ["12", "prep*", "13"]
        assert p.request.options["hold_jid_ad"] == ["arr"]
        meta = job_of(p)["metadata"]
        assert L.options_of(meta)["hold_jid"] == ["12", "prep*", "13"]  # the annotation's decoder keeps them

    def test_jsub_still_refuses_t(self, tmp_path: Path) -> None:
        from gridshim import submit
        from gridshim.errors import UsageError
        from test_qsub import submit_host

        with pytest.raises(UsageError, match="Program '1-5' not found"):
            submit.plan("jsub", ["-t", "1-5", "env"], settings=SETTINGS, host=submit_host())


class TestOptionTypes:
    def test_array_options_round_trip_and_bad_shapes_are_dropped(self) -> None:
        import json

        good = {"tasks": [1, 10, 3], "tc": 2, "hold_jid": ["1"], "hold_jid_ad": ["a"]}
        meta = {"annotations": {L.A_OPTIONS: json.dumps(good)}}
        assert L.options_of(meta) == good
        bad = {"tasks": [1, 10], "tc": "2", "hold_jid": "1", "hold_jid_ad": [1]}
        assert L.options_of({"annotations": {L.A_OPTIONS: json.dumps(bad)}}) == {}


# == manifests (docs/arrays-and-holds.md "Arrays") ==========================================================

def array_job(*argv: str, settings: Settings = SETTINGS) -> dict[str, Any]:
    return job_of(qplan([*argv, "run.sh"], {"run.sh": "echo $SGE_TASK_ID\n"}, settings=settings), settings)


class TestManifest:
    def test_an_indexed_job_whose_failures_stay_in_their_index(self) -> None:
        job = array_job("-t", "1-10:3", "-tc", "2")
        spec = job["spec"]
        assert (spec["completionMode"], spec["completions"], spec["parallelism"], spec["backoffLimitPerIndex"]) == (
            "Indexed", 4, 2, 0)
        assert "backoffLimit" not in spec
        assert job["metadata"]["labels"][L.ARRAY] == "true" == spec["template"]["metadata"]["labels"][L.ARRAY]
        env = env_of(job)
        assert env["GRIDSHIM_TASKS"] == "1 10 3"
        assert not {"SGE_TASK_ID", "SGE_TASK_FIRST", "SGE_TASK_LAST", "SGE_TASK_STEPSIZE"} & set(env)  # the wrapper's

    @pytest.mark.parametrize("argv,parallelism", [
        (["-t", "1-10"], 10), (["-t", "1-5000"], 2000), (["-t", "1-10", "-tc", "0"], 10),
        (["-t", "1-10", "-tc", "20"], 10), (["-t", "1-9000", "-tc", "3000"], 2000),
    ])
    def test_parallelism_is_tc_else_every_task_at_most_max_aj_instances(self, argv: list[str], parallelism: int) -> None:
        assert array_job(*argv)["spec"]["parallelism"] == parallelism

    def test_a_plain_job_is_unchanged(self) -> None:
        job = array_job()
        spec = job["spec"]
        assert spec["backoffLimit"] == 0 and "completionMode" not in spec and "parallelism" not in spec
        assert L.ARRAY not in job["metadata"]["labels"] and "GRIDSHIM_TASKS" not in env_of(job)
        assert env_of(job)["SGE_TASK_ID"] == "undefined" == env_of(job)["SGE_TASK_STEPSIZE"]

    def test_h_rt_limits_each_task_and_rerun_keeps_its_pod_failure_policy(self) -> None:
        spec = array_job("-t", "1-3", "-l", "h_rt=60", "-r", "y")["spec"]
        assert "activeDeadlineSeconds" not in spec and spec["template"]["spec"]["activeDeadlineSeconds"] == 60
        assert spec["podFailurePolicy"]["rules"] == [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]

    def test_release_command_reaches_every_job(self) -> None:
        site = replace(SETTINGS, release_command="/usr/bin/gridshim")
        assert env_of(array_job("-t", "1-2", settings=site))["GRIDSHIM_RELEASE"] == "/usr/bin/gridshim"
        assert env_of(array_job(settings=site))["GRIDSHIM_RELEASE"] == "/usr/bin/gridshim"
        assert "GRIDSHIM_RELEASE" not in env_of(array_job("-t", "1-2"))

    def test_release_command_config(self) -> None:
        from gridshim.config import ConfigError, from_dict

        assert from_dict({}).release_command is None
        assert from_dict({"release_command": "/usr/bin/gridshim"}).release_command == "/usr/bin/gridshim"
        with pytest.raises(ConfigError, match="release_command"):
            from_dict({"release_command": "gridshim"})

    def test_default_output_names_get_the_task_id(self) -> None:
        p = qplan(["-t", "1-3", "run.sh"], {"run.sh": "echo\n"})
        assert p.request.stdout == f"/data/project/demo/run.sh.o{JOB_ID}.$TASK_ID"
        assert p.request.stderr == f"/data/project/demo/run.sh.e{JOB_ID}.$TASK_ID"
        p = qplan(["-t", "1-3", "-o", "logs/", "-e", "logs", "run.sh"], {"run.sh": "echo\n"}, dirs=("logs",))
        assert p.request.stdout == f"/data/project/demo/logs/run.sh.o{JOB_ID}.$TASK_ID"
        assert p.request.stderr == f"/data/project/demo/logs/run.sh.e{JOB_ID}.$TASK_ID"
        p = qplan(["-t", "1-3", "-o", "out.$TASK_ID.${TASK_ID}", "run.sh"], {"run.sh": "echo\n"})
        assert p.request.stdout == "/data/project/demo/out.$TASK_ID.$TASK_ID"

    def test_a_plain_jobs_task_id_in_a_path_is_0(self) -> None:
        p = qplan(["-o", "out.$TASK_ID", "run.sh"], {"run.sh": "echo\n"})
        assert p.request.stdout == "/data/project/demo/out.0" and p.request.stderr.endswith(f"run.sh.e{JOB_ID}")


# == the wrapper, run for real with /bin/sh (§3, §1.5) ===========================================================

REPORT = ('echo "ID=$SGE_TASK_ID F=$SGE_TASK_FIRST L=$SGE_TASK_LAST S=$SGE_TASK_STEPSIZE '
          'JT=${SGE_JOB_TASK_ID-unset} T=$TMPDIR O=$SGE_STDOUT_PATH G=$(env | grep -c ^GRIDSHIM_)"; exit 3')


def run_wrapper(tmp_path: Path, argv: list[str], *, index: int | None, release: str | None = None,
                edit: tuple[str, str] | None = None) -> tuple[int, Path]:
    """Render `qsub ARGV -b y /bin/sh -c REPORT` with the tool's home in tmp_path/home, and run its
    container's command and env as the kubelet would ($$ → $), with JOB_COMPLETION_INDEX=INDEX."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    settings = replace(SETTINGS, accounting_file=str(home / "acct"), release_command=release)
    req = qplan([*argv, "-b", "y", "-shell", "n", "/bin/sh", "-c", REPORT], settings=settings).request
    moved = {k: getattr(req, k).replace("/data/project/demo", str(home)) for k in ("home", "workdir", "stdout", "stderr")}
    (job,) = render(replace(req, **moved), settings)
    env = {**env_of(job), "PATH": os.environ["PATH"], "HOME": str(home), "JOB_ID": "4242", "HOSTNAME": "node1"}
    if index is not None:
        env["JOB_COMPLETION_INDEX"] = str(index)
    cmd = [c.replace("$$", "$") for c in container(job)["command"]]
    if edit:
        cmd[2] = cmd[2].replace(*edit)
    return subprocess.run(cmd, cwd=home, env=env, timeout=120).returncode, home


def test_an_array_task_sees_its_own_id_tmpdir_and_output_file(tmp_path: Path) -> None:
    rc, home = run_wrapper(tmp_path, ["-t", "1-10:3", "-tc", "2"], index=2)
    assert rc == 3
    out = home / f"sh.o{JOB_ID}.7"  # the job is named `sh` (-b y /bin/sh)
    text = out.read_text()
    assert text == f"ID=7 F=1 L=10 S=3 JT=4242.7 T=/tmp/4242.7.default O={out} G=0\n"
    assert (home / f"sh.e{JOB_ID}.7").exists()
    f = (home / "acct").read_text().splitlines()[0].split(":")
    assert (f[5], f[12], f[35]) == ("4242", "3", "7")  # task_number = the task id


def test_last_is_as_typed_and_index_0_is_the_first_task(tmp_path: Path) -> None:
    rc, home = run_wrapper(tmp_path, ["-t", "1-10:4"], index=0)
    assert (home / f"sh.o{JOB_ID}.1").read_text().startswith("ID=1 F=1 L=10 S=4 JT=4242.1 ")


def test_a_plain_job_keeps_undefined_and_task_1_in_tmpdir(tmp_path: Path) -> None:
    rc, home = run_wrapper(tmp_path, [], index=None)
    out = home / f"sh.o{JOB_ID}"
    assert rc == 3
    assert out.read_text() == f"ID=undefined F=undefined L=undefined S=undefined JT=unset T=/tmp/4242.1.default O={out} G=0\n"
    f = (home / "acct").read_text().splitlines()[0].split(":")
    assert f[35] == "0"


def test_task_id_in_o_is_replaced_at_run_time(tmp_path: Path) -> None:
    rc, home = run_wrapper(tmp_path, ["-t", "2-6:2", "-o", "out.$TASK_ID", "-j", "y"], index=1)
    assert (home / "out.4").read_text().startswith("ID=4 ")


def test_a_deleted_pending_task_exits_0_without_running(tmp_path: Path) -> None:
    deleted = tmp_path / "home" / ".gridshim" / "deleted"
    deleted.mkdir(parents=True)
    (deleted / "4242").write_text("1\n7")  # one id a line; the last line without its newline
    rc, home = run_wrapper(tmp_path, ["-t", "1-10:3"], index=2)
    assert rc == 0
    assert sorted(p.name for p in home.iterdir()) == [".gridshim"]  # no output, no record
    rc, home = run_wrapper(tmp_path, ["-t", "1-10:3"], index=1)  # task 4 is not listed: it runs
    assert rc == 3 and (home / f"sh.o{JOB_ID}.4").exists()


FAKE_RELEASE = """#!/bin/sh
printf '%s\\n' "$*" >> "$HOME/release.args"
read -r line && echo "stdin was not /dev/null"
echo "release says hi"
exit 9
"""


def test_release_runs_after_the_record_with_the_task_and_never_changes_the_status(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".gridshim" / "successors").mkdir(parents=True)
    (home / ".gridshim" / "successors" / "4242").write_text("")
    fake = tmp_path / "fake-gridshim"
    fake.write_text(FAKE_RELEASE)
    fake.chmod(0o755)
    rc, home = run_wrapper(tmp_path, ["-t", "1-10:3"], index=3, release=str(fake))
    assert rc == 3  # the program's, not the release command's 9
    assert (home / "release.args").read_text() == "release --job 4242 --task 10\n"
    assert (home / f"sh.e{JOB_ID}.10").read_text() == "release says hi\n"
    rc, home = run_wrapper(tmp_path, [], index=None, release=str(fake))
    assert rc == 3 and (home / "release.args").read_text().splitlines()[-1] == "release --job 4242"


def test_no_release_without_the_marker_or_the_setting(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    fake = tmp_path / "fake-gridshim"
    fake.write_text(FAKE_RELEASE)
    fake.chmod(0o755)
    run_wrapper(tmp_path, ["-t", "1-2"], index=0, release=str(fake))  # no successors marker
    (home / ".gridshim" / "successors").mkdir(parents=True)
    (home / ".gridshim" / "successors" / "4242").write_text("")
    run_wrapper(tmp_path, ["-t", "1-2"], index=0, release=None)  # no release_command
    assert not (home / "release.args").exists()


def test_a_hanging_release_is_cut_off(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".gridshim" / "successors").mkdir(parents=True)
    (home / ".gridshim" / "successors" / "4242").write_text("")
    fake = tmp_path / "fake-gridshim"
    fake.write_text("#!/bin/sh\necho started\nexec sleep 60\n")
    fake.chmod(0o755)
    t0 = time.monotonic()
    rc, _ = run_wrapper(tmp_path, ["-t", "1-2"], index=0, release=str(fake), edit=("sleep 30 &", "sleep 1 &"))
    assert rc == 3 and time.monotonic() - t0 < 20
    assert (home / f"sh.e{JOB_ID}.1").read_text() == "started\n"


# == the submit line and -sync y (§2.1, §2.4) ======================================================================

def test_submit_line_and_terse_show_the_range_as_given(cli: QsubCLI) -> None:
    cli.with_cluster()
    r = cli("-t", "1-10:3", "run.sh")
    assert (r.rc, r.out) == (0, f'Your job-array {job_ids(cli.cluster)[0]}.1-10:3 ("run.sh") has been submitted\n')
    r = cli("-terse", "-t", "10-1:4", "run.sh")
    assert (r.rc, r.out) == (0, f"{job_ids(cli.cluster)[1]}.1-10:4\n")
    r = cli("-terse", "-t", "5", "run.sh")
    assert r.out == f"{job_ids(cli.cluster)[2]}.5-5:1\n"


def indexed_pod(index: int, code: int, finished: str, *, uid: str = "u1") -> dict[str, Any]:
    """The pod of completion index INDEX of the Job with uid UID, ended with CODE at FINISHED."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"arr-{index}", "creationTimestamp": "2026-01-01T00:00:00Z",
                         "labels": {"batch.kubernetes.io/controller-uid": uid, T.COMPLETION_INDEX: str(index)},
                         "annotations": {T.COMPLETION_INDEX: str(index)}},
            "status": {"phase": "Succeeded" if code == 0 else "Failed",
                       "containerStatuses": [{"state": {"terminated": {"exitCode": code, "finishedAt": finished}}}]}}


def array_api(steps: list[tuple[dict[str, Any], list[int]]], final: dict[str, Any],
              pods: dict[int, tuple[int, str]], annotations: dict[str, str] | None = None) -> FakeApi:
    """The kit's fake API server, where the array Job qsub creates shows its indexes finishing in STEPS
    (its status, the indexes whose pods ended), then FINAL; PODS: index -> (exit code, finishedAt)."""
    api = FakeApi("tool-demo")

    def job() -> dict[str, Any]:
        (j,) = api.objects("Job")
        return j

    def step(status: dict[str, Any], ended: list[int]) -> Callable[[], None]:
        def run() -> None:
            j = job()
            api.seed(*[indexed_pod(i, *pods[i], uid=j["metadata"]["uid"]) for i in ended])
            api.set_status("Job", j["metadata"]["name"], **status)
        return run
    first = []
    if annotations:  # on the Job before the waiter's first look (a task qdel'd while pending)
        first = [lambda: api.patch("Job", job()["metadata"]["name"], {"metadata": {"annotations": annotations}})]
    api.then(*first, *[step(s, e) for s, e in steps], step(final, sorted(pods)))
    return api


def pod_selectors(api: FakeApi) -> list[str]:
    return [c.params["selector"] for c in api.calls if c.verb == "list" and c.kind == "Pod"]


def sync_cli(cli: QsubCLI, cluster: FakeApi) -> None:
    import gridshim.cli.jsub as jsub_cli

    cli.monkeypatch.setattr(jsub_cli, "connect", lambda env, settings, *, dry_run: (cluster, "demo", 52001))


def test_sync_prints_each_task_as_it_finishes_and_exits_with_the_first_failure(cli: QsubCLI) -> None:
    t = "2026-01-01T00:00:%02dZ"
    steps = [
        ({"active": 2, "completedIndexes": "1"}, [1]),                                   # task 4
        ({"active": 2, "completedIndexes": "1", "failedIndexes": "3"}, [3]),             # task 10: 5
        ({"active": 1, "completedIndexes": "0-1", "failedIndexes": "3"}, [0]),           # task 1
    ]
    final = {"completedIndexes": "0-1", "failedIndexes": "2-3",
             "conditions": [{"type": "Failed", "status": "True", "reason": "FailedIndexes"}]}
    pods = {1: (0, t % 5), 3: (5, t % 7), 0: (0, t % 8), 2: (137, t % 9)}
    cluster = array_api(steps, final, pods)
    sync_cli(cli, cluster)
    r = cli("-sync", "y", "-t", "1-10:3", "run.sh")
    (made,) = cluster.created("Job")
    job_id = made["metadata"]["labels"][L.JOB_ID]
    assert r.out == (f'Your job-array {job_id}.1-10:3 ("run.sh") has been submitted\n'
                     f"Job {job_id}.4 exited with exit code 0.\nJob {job_id}.1 exited with exit code 0.\n")
    assert r.err == (f"Job {job_id}.10 exited with exit code 5.\n"
                     f"Job {job_id}.7 exited because of signal SIGKILL\n")
    assert r.rc == 5  # the first non-zero contribution in finishing order
    # while it runs, each look reads only the pods of the tasks that just ended; at the end, one LIST
    by_uid = f"batch.kubernetes.io/controller-uid={made['metadata']['uid']}"
    assert pod_selectors(cluster) == [f"{by_uid},{T.COMPLETION_INDEX} in (1)", f"{by_uid},{T.COMPLETION_INDEX} in (3)",
                                 f"{by_uid},{T.COMPLETION_INDEX} in (0)", by_uid]


def test_sync_all_at_once_is_ordered_by_finish_time_and_deleted_tasks_never_ran(cli: QsubCLI) -> None:
    t = "2026-01-01T00:00:%02dZ"
    final = {"completedIndexes": "0-2", "conditions": [{"type": "Complete", "status": "True"}]}
    pods = {0: (0, t % 9), 1: (0, t % 3), 2: (0, t % 4)}
    cluster = array_api([], final, pods, annotations={T.A_DELETED_TASKS: "3"})  # task 3 qdel'd while pending
    sync_cli(cli, cluster)
    r = cli("-sync", "y", "-terse", "-t", "1-3", "run.sh")
    job_id = cluster.created("Job")[0]["metadata"]["labels"][L.JOB_ID]
    assert r.out == f"{job_id}.1-3:1\n"  # -terse: no success lines
    assert r.err == f"Unable to run job {job_id}.3\n"
    assert r.rc == 0  # "never ran" contributes 0


def test_a_failed_task_whose_pod_was_deleted_was_killed() -> None:
    """qdel of a running task deletes its pod: the index fails, and -sync says SIGKILL as for a qdel'd job,
    whether the pod is still terminating (exit 143 from the TERM) or already gone."""
    job = {"metadata": {"annotations": {L.A_OPTIONS: '{"tasks": [1, 3, 1]}'}},
           "status": {"failedIndexes": "1-2", "completedIndexes": "0"}}
    deleting = indexed_pod(1, 143, "2026-01-01T00:00:05Z")
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:05Z"
    got = ops.finished_tasks(job, [deleting], set())
    assert [(t, ops.sync_lines(f"9.{t}", o)) for t, o in got] == [
        (1, ("Job 9.1 exited with exit code 0.", None, 0)),
        (3, (None, "Job 9.3 exited because of signal SIGKILL", 1)),
        (2, (None, "Job 9.2 exited because of signal SIGKILL", 1))]
    assert ops.finished_tasks(job, [], {1, 2, 3}) == []


@pytest.mark.parametrize("text,ids", [("1,3-5", {1, 3, 4, 5}), ("1-10:3", {1, 4, 7, 10}), ("", set()), (None, set()),
                                      ("x,2", {2})])
def test_index_lists(text: str | None, ids: set[int]) -> None:
    assert T.id_set(text) == ids


def test_parse_errors_are_qsub_errors() -> None:
    with pytest.raises(QsubError):
        parse_task_range("a")
    assert issubclass(Rejected, Exception)


def test_a_crontab_array_is_an_indexed_job_template() -> None:
    """`qsub -t` in a crontab line: each run is an Indexed Job; its paths keep $JOB_ID and $TASK_ID for the
    wrapper to fill in when the run's task starts."""
    from gridshim import submit
    from test_qsub import submit_host

    p = submit.plan("qsub", ["-t", "1-3", "-tc", "1", "run.sh"], settings=SETTINGS,
                    host=submit_host({"run.sh": "echo\n"}), cron=submit.Cron(schedule="0 0 * * *"))
    (cronjob,) = render(p.request, SETTINGS)
    spec = cronjob["spec"]["jobTemplate"]["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"], spec["backoffLimitPerIndex"]) == (
        "Indexed", 3, 1, 0)
    assert p.request.stdout == "/data/project/demo/run.sh.o$JOB_ID.$TASK_ID"


def test_sync_when_the_whole_array_is_deleted_the_running_task_was_killed_the_rest_never_ran(cli: QsubCLI) -> None:
    """The first task runs (active 1, -tc 1) when qdel deletes the whole Job and its pods."""
    cluster = FakeApi("tool-demo")

    def name() -> str:
        return cluster.objects("Job")[0]["metadata"]["name"]
    cluster.then(lambda: cluster.set_status("Job", name(), active=1, ready=1), lambda: cluster.delete("Job", name()))
    sync_cli(cli, cluster)
    r = cli("-sync", "y", "-terse", "-t", "1-3", "-tc", "1", "run.sh")
    job_id = cluster.created("Job")[0]["metadata"]["labels"][L.JOB_ID]
    assert r.err == (f"Job {job_id}.1 exited because of signal SIGKILL\n"
                     f"Unable to run job {job_id}.2\nUnable to run job {job_id}.3\n")
    assert r.rc == 1


def test_an_array_tasks_mail_names_the_task(tmp_path: Path) -> None:
    """§7: array tasks use `Job-array task N.T (name)` wherever plain jobs use `Job N (name)`."""
    home = tmp_path / "home"
    home.mkdir()
    mailer = f"cat >> {tmp_path}/mails"
    settings = replace(SETTINGS, accounting_file=None, mail_command=mailer)
    req = qplan(["-t", "1-10:3", "-m", "e", "-M", "a@example.org", "-b", "y", "/bin/true"], settings=settings).request
    moved = {k: getattr(req, k).replace("/data/project/demo", str(home)) for k in ("home", "workdir", "stdout", "stderr")}
    (job,) = render(replace(req, **moved), settings)
    env = {**env_of(job), "PATH": os.environ["PATH"], "HOME": str(home), "JOB_ID": "4242", "HOSTNAME": "node1",
           "JOB_COMPLETION_INDEX": "1"}
    cmd = [c.replace("$$", "$") for c in container(job)["command"]]
    assert subprocess.run(cmd, cwd=home, env=env, timeout=60).returncode == 0
    mail = (tmp_path / "mails").read_text()
    assert "Subject: Job-array task 4242.4 (true) Complete\n" in mail and "\nJob-array task 4242.4 (true) Complete\n" in mail
