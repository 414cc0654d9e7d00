"""qalter, qhold, qrls (cli/qalter.py): parsing, SGE's messages and exit statuses (qsub-behaviour §5.4,
§5.5), and what each change writes on the Job, against the kit's fake API server (tests/kit)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from gridshim import depends as D
from gridshim.cli._common import Env
from gridshim.cli.qalter import qalter_main, qhold_main, replacement_manifest
from gridshim.config import Settings
from gridshim.render import labels as L
from kit import GridApi

REPO = Path(__file__).resolve().parents[2]


def env(tmp_path: Path) -> Env:
    (tmp_path / "none.yaml").write_text("{}\n")
    return Env(stdout=io.StringIO(), stderr=io.StringIO(), stdin=None,
               environ={"HOME": str(tmp_path), "GRIDSHIM_CONFIG": str(tmp_path / "none.yaml")}, cwd=str(tmp_path),
               clock=lambda: 1796120000.0)


def run(fn: Any, tmp_path: Path, argv: list[str], s: GridApi, **kw: Any) -> tuple[int, str, str]:
    e = env(tmp_path)
    code = fn(e, argv, cluster=s, **kw)
    return code, e.stdout.getvalue(), e.stderr.getvalue()  # type: ignore[attr-defined]


def qhold(tmp_path: Path, argv: list[str], s: GridApi) -> tuple[int, str, str]:
    return run(qhold_main, tmp_path, argv, s, release=False)


def qrls(tmp_path: Path, argv: list[str], s: GridApi) -> tuple[int, str, str]:
    return run(qhold_main, tmp_path, argv, s, release=True)


def qalter(tmp_path: Path, argv: list[str], s: GridApi) -> tuple[int, str, str]:
    return run(qalter_main, tmp_path, argv, s)


# -- qhold / qrls --------------------------------------------------------------------------------------

def test_qhold_then_qrls_of_a_pending_job(tmp_path: Path) -> None:
    s = GridApi()
    s.add_job(1111111, "p")
    assert qhold(tmp_path, ["1111111"], s) == (0, "modified hold of job 1111111\n", "")
    j = s.job(1111111)
    assert j["metadata"]["annotations"][D.A_HOLD] == "u" and j["spec"]["suspend"] is True
    assert qhold(tmp_path, ["p"], s) == (0, "", "")  # already held: nothing printed
    assert qrls(tmp_path, ["p"], s) == (0, "modified hold of job 1111111\n", "")
    j = s.job(1111111)
    assert D.A_HOLD not in j["metadata"]["annotations"] and j["spec"]["suspend"] is False
    assert qrls(tmp_path, ["1111111"], s) == (0, "", "")  # nothing to release


def test_qhold_of_a_running_job_only_marks_it(tmp_path: Path) -> None:
    s = GridApi()
    s.add_job(1111111, "r", status={"ready": 1, "active": 1})
    assert qhold(tmp_path, ["1111111"], s)[1] == "modified hold of job 1111111\n"
    j = s.job(1111111)
    assert j["metadata"]["annotations"][D.A_HOLD] == "u" and j["spec"]["suspend"] is False  # hr


def test_qrls_keeps_a_job_with_predecessors_suspended(tmp_path: Path) -> None:
    s = GridApi()
    s.add_job(1111111, "w", suspend=True, labels={D.WAITING: "true"},
              annotations={D.A_HOLD: "u", D.A_PREDECESSORS: json.dumps({"2222222": ""})})
    assert qrls(tmp_path, ["w"], s)[1] == "modified hold of job 1111111\n"
    assert s.job(1111111)["spec"]["suspend"] is True


def test_qrls_releases_an_old_qsub_h_job_held_in_its_options(tmp_path: Path) -> None:
    s = GridApi()
    s.add_job(1111111, "old", suspend=True, options={"hold": True})
    assert qrls(tmp_path, ["1111111"], s)[1] == "modified hold of job 1111111\n"
    j = s.job(1111111)
    assert j["spec"]["suspend"] is False and L.options_of(j["metadata"])["hold"] is False


def test_qhold_of_an_array_prints_one_line_per_unfinished_task(tmp_path: Path) -> None:
    s = GridApi()
    s.add_job(1111111, "arr", tasks=[1, 4, 1], status={"completedIndexes": "0"})
    out = qhold(tmp_path, ["1111111"], s)[1]
    assert out == "".join(f"modified hold of job-array task 1111111.{t}\n" for t in (2, 3, 4))


def test_qhold_refusals_and_statuses(tmp_path: Path) -> None:
    s = GridApi()
    s.add_job(1111111, "p")
    assert qhold(tmp_path, ["999"], s) == (3, 'denied: job "999" does not exist\n', "")
    assert qhold(tmp_path, ["-h", "o", "1111111"], s) == (
        10, 'denied: "tools.demo" must be operator to set operator hold\n', "")
    assert qrls(tmp_path, ["-h", "s", "1111111"], s) == (
        10, 'denied: "tools.demo" must be manager to remove manager hold\n', "")
    code, out, err = qhold(tmp_path, [], s)
    assert (code, out) == (1, "ERROR! no option argument\n") and err.startswith("usage: qhold")
    code, out, _ = qhold(tmp_path, ["-x"], s)
    assert (code, out) == (1, 'ERROR! invalid option argument "-x"\n')
    # a finished job is a zombie: ignored, so it does not exist
    s.add_job(2222222, "z", finished="Complete")
    assert qhold(tmp_path, ["2222222"], s)[0] == 3
    # the first error's status, and every answer printed
    code, out, _ = qhold(tmp_path, ["999,1111111"], s)
    assert code == 3 and out == 'denied: job "999" does not exist\nmodified hold of job 1111111\n'


# -- qalter --------------------------------------------------------------------------------------------

def test_qalter_renames_and_reprioritises_in_place(tmp_path: Path) -> None:
    s = GridApi()
    s.add_job(1111111, "old", options={"priority": 0})
    uid = s.job(1111111)["metadata"]["uid"]
    code, out, _ = qalter(tmp_path, ["-N", "New_name", "-p", "-5", "1111111"], s)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "modified job name of job 1111111"
    assert re.fullmatch(r"tools\.demo@\S+ sets scheduling priority of job 1111111 to -5", lines[1])
    j = s.job(1111111)
    assert j["metadata"]["uid"] == uid  # patched, not replaced
    assert L.name_of(j["metadata"]) == "New_name" and j["metadata"]["labels"][L.NAME] == "New_name"
    assert L.options_of(j["metadata"])["priority"] == -5


def test_qalter_refusals(tmp_path: Path) -> None:
    s = GridApi()
    s.add_job(1111111, "r", status={"ready": 1}, options={"mem": 536870912})
    assert qalter(tmp_path, ["-l", "h_vmem=2G", "1111111"], s) == (
        1, 'denied: can\'t change consumable resource request "h_vmem" of running job\n', "")
    assert qalter(tmp_path, ["-N", "x", "999"], s) == (1, 'denied: job "999" does not exist\n', "")
    assert qalter(tmp_path, ["-p", "5", "1111111"], s) == (
        1, 'denied: "tools.demo" must be operator to increase job priority\n', "")
    assert qalter(tmp_path, ["-h", "o", "1111111"], s) == (
        1, 'denied: "tools.demo" must be operator to set operator hold\n', "")
    code, out, _ = qalter(tmp_path, ["-p", "2000", "1111111"], s)
    assert (code, out) == (1, 'ERROR! invalid priority "2000".  Must be an integer from -1023 to 1024\n')
    code, out, err = qalter(tmp_path, ["-N", "x"], s)
    assert (code, out) == (1, "ERROR! no option argument\n") and err.startswith("usage: qalter")
    code, out, _ = qalter(tmp_path, ["-N", "1bad", "1111111"], s)
    assert code == 1 and out.startswith("ERROR! invalid job name '1bad'")
    code, out, _ = qalter(tmp_path, ["-o", "/x", "1111111"], s)  # the pod template of a running job
    assert code == 1 and "only while it is held" in out


def test_qalter_hold_jid_replaces_and_clears_the_list(tmp_path: Path) -> None:
    s = GridApi()
    s.add_job(1111111, "a")
    s.add_job(2222222, "a")
    s.add_job(3333333, "b")
    code, out, _ = qalter(tmp_path, ["-hold_jid", "a", "b"], s)
    assert code == 0 and out == ("modified job id hold list of job 3333333\n"
                                 "   blocking jobs: 1111111,2222222\n   exited jobs:   NONE\n")
    j = s.job(3333333)
    assert D.predecessors_of(j) == {"1111111": "", "2222222": ""} and j["spec"]["suspend"] is True
    assert j["metadata"]["labels"][D.WAITING] == "true"
    assert (tmp_path / ".gridshim" / "successors" / "1111111").read_text() == "3333333\n"
    code, out, _ = qalter(tmp_path, ["-hold_jid", "", "b"], s)
    assert out == "modified job id hold list of job 3333333\n   blocking jobs: NONE\n   exited jobs:   NONE\n"
    j = s.job(3333333)
    assert not D.predecessors_of(j) and j["spec"]["suspend"] is False and D.WAITING not in j["metadata"]["labels"]


def test_qalter_hold_jid_refuses_itself_and_cycles(tmp_path: Path) -> None:
    s = GridApi()
    s.add_job(1111111, "a", suspend=True, labels={D.WAITING: "true"},
              annotations={D.A_PREDECESSORS: json.dumps({"2222222": ""})})
    s.add_job(2222222, "b")
    assert qalter(tmp_path, ["-hold_jid", "2222222", "2222222"], s) == (
        1, 'denied: job "2222222" may not be it\'s own jobnet predecessor\n', "")
    assert qalter(tmp_path, ["-hold_jid", "a", "b"], s) == (
        1, "job 2222222 dependency change would generate a dependency cycle with job 1111111\n", "")
    assert qalter(tmp_path, ["-hold_jid", "b*", "b"], s)[1].startswith("modified job id hold list")  # itself: skipped


def test_qalter_h_rt_is_the_deadline_in_place_and_memory_replaces_a_held_job(tmp_path: Path) -> None:
    s = GridApi()
    s.add_job(1111111, "h", suspend=True, annotations={D.A_HOLD: "u"}, options={"mem": 536870912})
    old_uid = s.job(1111111)["metadata"]["uid"]
    code, out, _ = qalter(tmp_path, ["-l", "h_rt=600,h_vmem=2G", "-o", "/logs/out", "1111111"], s)
    assert code == 0, out
    assert out == "modified hard resource list of job 1111111\nmodified stdout path list of job 1111111\n"
    j = s.job(1111111)  # exactly one job with that id: the replacement
    assert j["metadata"]["uid"] != old_uid and j["spec"]["suspend"] is True
    assert j["spec"]["activeDeadlineSeconds"] == 600
    c = j["spec"]["template"]["spec"]["containers"][0]
    assert c["resources"]["limits"]["memory"] == "2Gi" and c["command"][4] == "/logs/out"
    assert L.options_of(j["metadata"])["mem"] == 2 * 1024 ** 3
    assert j["metadata"]["annotations"][D.A_HOLD] == "u"


def test_qalter_h_rt_and_s_rt_give_qsubs_deadline_but_cannot_add_or_move_the_sigusr1(tmp_path: Path) -> None:
    """The deadline is qsub's (sgeflags.wall_clock_limit: h_rt, or s_rt + the queue's notify time); s_rt's
    SIGUSR1 is sent by the job's pod, which cannot change: an -l that would add, move or drop it is refused."""
    s = GridApi()
    s.add_job(1111111, "h", options={"mem": 536870912})  # the default memory: only the deadline changes
    for spec, deadline in (("h_rt=0:2:0", 120), ("h_rt=600,s_rt=900", 600), ("s_rt=100,h_rt=60", 60)):
        code, out, _ = qalter(tmp_path, ["-l", spec, "1111111"], s)
        assert (code, out) == (0, "modified hard resource list of job 1111111\n"), spec
        assert s.job(1111111)["spec"]["activeDeadlineSeconds"] == deadline, spec
    for spec in ("s_rt=100,h_rt=600", "h_rt=INFINITY,s_rt=90"):  # would need a SIGUSR1 the pod does not send
        code, out, _ = qalter(tmp_path, ["-l", spec, "1111111"], s)
        assert (code, out) == (1, "denied: gridshim cannot change when job 1111111 gets s_rt's SIGUSR1 (its pod "
                                  "sends it, and Kubernetes does not let a Job's pod change): qdel it and qsub it "
                                  "again\n"), spec
        assert s.job(1111111)["spec"]["activeDeadlineSeconds"] == 60, spec  # unchanged
    s.add_job(2222222, "s", options={"mem": 536870912, "dialect": "qsub", "wall_seconds": 600, "s_rt": 100})
    code, out, _ = qalter(tmp_path, ["-l", "s_rt=100,h_rt=1200", "2222222"], s)
    assert (code, out) == (0, "modified hard resource list of job 2222222\n")
    j = s.job(2222222)
    assert j["spec"]["activeDeadlineSeconds"] == 160  # s_rt's SIGUSR1 at 100 s, the kill 60 s later
    assert (L.options_of(j["metadata"])["wall_seconds"], L.options_of(j["metadata"])["s_rt"]) == (1200, 100)
    for spec in ("h_rt=1200", "s_rt=50,h_rt=1200"):  # drops or moves the SIGUSR1 its pod sends at 100 s
        assert qalter(tmp_path, ["-l", spec, "2222222"], s)[0] == 1, spec
    assert s.job(2222222)["spec"]["activeDeadlineSeconds"] == 160


def test_qalter_never_loses_a_job_released_while_it_was_being_replaced(tmp_path: Path) -> None:
    s = GridApi()
    s.add_job(1111111, "w", suspend=True, labels={D.WAITING: "true"}, options={"mem": 536870912},
              annotations={D.A_PREDECESSORS: json.dumps({"2222222": ""})})

    def released(verb: str, kind: str, name: str) -> None:
        if verb == "delete":
            D.release(s, 2222222)  # the predecessor ended just before our delete

    original = s.create

    def create(m: dict[str, Any]) -> dict[str, Any]:
        out = original(m)
        s.interfere(released)
        return out

    s.create = create  # type: ignore[method-assign]
    code, out, _ = qalter(tmp_path, ["-l", "h_vmem=1G", "1111111"], s)
    assert code == 1 and "changed while it was being altered" in out
    jobs = [o for o in s.objects("Job") if L.job_id_of(o["metadata"]) == 1111111]
    assert len(jobs) == 1 and jobs[0]["spec"]["suspend"] is False  # the old one, released


def test_the_replacement_drops_what_the_api_server_owns() -> None:
    job = GridApi().add_job(1111111, "x", suspend=True)
    job["spec"]["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}}
    job["spec"]["template"]["metadata"]["labels"].update({"batch.kubernetes.io/controller-uid": "u1",
                                                          "controller-uid": "u1", "job-name": "x"})
    new = replacement_manifest(job, {"mem": 1024 ** 3}, Settings())
    assert "selector" not in new["spec"] and "uid" not in new["metadata"] and "resourceVersion" not in new["metadata"]
    assert new["spec"]["template"]["metadata"]["labels"] == {}
    assert new["metadata"]["name"] != job["metadata"]["name"] and new["metadata"]["labels"][L.JOB_ID] == "1111111"
    assert "status" not in new


# -- entry points and pages ------------------------------------------------------------------------

def test_one_module_three_commands() -> None:
    setup = (REPO / "setup.cfg").read_text()
    for cmd in ("qalter", "qhold", "qrls"):
        assert re.search(rf"^\s+{cmd} = gridshim\.cli\.qalter:main$", setup, re.M), cmd
        assert "from gridshim.cli.qalter import main" in (REPO / "bin" / cmd).read_text()


@pytest.mark.parametrize("page,options", [("qalter", ["-N", "-l", "-hold_jid", "-h", "-p", "-o", "-e", "-u", "-help"]),
                                          ("qhold", ["-h", "-u", "-help"]), ("qrls", ["-h", "-u", "-help"])])
def test_pages_document_the_options(page: str, options: list[str]) -> None:
    text = (REPO / "docs" / "man" / f"{page}.1").read_text().replace("\\-", "-")
    missing = [o for o in options if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", text)]
    assert not missing, missing
