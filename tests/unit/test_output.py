"""qstat's layouts (golden files) and the commands' messages and exit codes, in-process over a fake cluster.

Golden files live in tests/golden/; a difference fails with a diff. Regenerate them on purpose only:
GRIDSHIM_UPDATE_GOLDEN=1 pytest tests/unit/test_output.py
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gridshim.cli._common import Env, run
from gridshim.cli.job import job_main
from gridshim.cli.jstop import jstop_main
from gridshim.cli.qdel import qdel_main
from gridshim.cli.qmod import qmod_main
from gridshim.cli.qstat import parse_states, qstat_main
from gridshim.model import GridState, JobKind, JobRow
from gridshim.output.plain import HEADER, RULE, format_details, format_plain, format_row, not_found
from gridshim.output.xml import format_xml, format_xml_details, format_xml_unknown
from gridshim.render.labels import label_value
from gridshim.status import rows_from_objects
from kit import FakeApi, fixture, golden as check_golden
from kit.golden import local_time  # noqa: F401  (an autouse fixture: the layouts in local time)

NOW = datetime(2026, 11, 22, 19, 40, tzinfo=UTC).timestamp()
# One real object per state, as a tool would have them at one moment (restarter appears once).
NS = "tool-qsfix"
LISTING = ["running_oneoff", "running_continuous", "restarted_in_place", "deleting", "cron_run", "start_error",
           "quota_never_fits", "quota_wait", "unschedulable", "suspended", "not_before"]



def load(name: str) -> dict[str, Any]:
    return fixture(name)


def rows_for(names: list[str], *, now: float = NOW) -> list[JobRow]:
    fxs = [load(n) for n in names]
    return rows_from_objects([f["job"] for f in fxs], [p for f in fxs for p in f["pods"]],
                             [e for f in fxs for e in f["events"]], now=now)


# -- layouts --------------------------------------------------------------------------------------------

class TestPlain:
    def test_golden(self) -> None:
        check_golden("qstat_plain.txt", format_plain(rows_for(LISTING)))

    def test_nothing_at_all_without_jobs(self) -> None:
        assert format_plain([]) == ""

    def test_header_and_rule(self) -> None:
        assert HEADER.endswith(" \n") and len(HEADER) == 115  # 114 characters incl. the trailing space
        assert RULE == "-" * 113 + "\n"

    def test_reproduces_the_grid_rows_of_the_contract(self) -> None:
        """The example rows of grid-behaviour.md §5.2 (except the ranked priority we do not have)."""
        def t(s: str) -> float:
            return time.mktime(time.strptime(s, "%m/%d/%Y %H:%M:%S"))
        pending = JobRow(job_id=1234571, name="citationhunt", owner="tools.citationhunt", state=GridState.QUEUED,
                         queue="task", submit_time=t("03/04/2022 10:16:40"), start_time=None,
                         kind=JobKind.ONE_OFF, object_kind="Job", object_name="x", uid="1")
        assert format_row(pending) == ("1234571 0.00000 citationhu tools.citati qw    03/04/2022 10:16:40"
                                       "                                    1        \n")
        running = JobRow(job_id=1234570, name="cron-27", owner="tools.stashbot", state=GridState.RUNNING,
                         queue="task", node="tools-sgeexec-10-2.tools.eqiad.wmflabs",
                         submit_time=t("03/04/2022 10:15:00"), start_time=t("03/04/2022 10:15:00"),
                         kind=JobKind.ONE_OFF, object_kind="Job", object_name="y", uid="2")
        assert format_row(running) == ("1234570 0.25000 cron-27    tools.stashb r     03/04/2022 10:15:00 "
                                       "task@tools-sgeexec-10-2.tools.     1        \n")

    def test_running_before_pending_and_columns(self) -> None:
        lines = format_plain(rows_for(LISTING)).splitlines()[2:]
        states = [line.split()[4] for line in lines]
        first_pending = next(i for i, s in enumerate(states) if s not in {"r", "Rr", "dr"})
        assert set(states[:first_pending]) == {"r", "Rr", "dr"}
        assert set(states[first_pending:]) <= {"qw", "hqw", "Eqw"}
        # awk '{ print $3 }' is the name cut to 10 characters (the cluebot watchdog relies on it)
        assert all(len(line) == 110 for line in lines)

    def test_times_are_local(self) -> None:
        row = rows_for(["running_oneoff"])[0]
        shown = format_row(row)[46:65]
        assert shown == time.strftime("%m/%d/%Y %H:%M:%S", time.localtime(row.start_time or 0))
        assert shown.endswith("20:26:30")  # 19:26:30 UTC in Berlin (CET)

    def test_details_golden(self) -> None:
        check_golden("qstat_j.txt", format_details(rows_for(LISTING)))

    def test_not_found_text(self) -> None:
        assert not_found(["x", "12"]) == "Following jobs do not exist: \nx, 12\n"


class TestXml:
    def test_golden(self) -> None:
        check_golden("qstat_xml.xml", format_xml(rows_for(LISTING)))

    def test_empty_golden(self) -> None:
        check_golden("qstat_xml_empty.xml", format_xml([]))

    def test_details_golden(self) -> None:
        check_golden("qstat_xml_j.xml", format_xml_details(rows_for(["running_oneoff", "running_continuous",
                                                                      "quota_wait", "start_error"])))

    def test_unknown_golden(self) -> None:
        check_golden("qstat_xml_j_unknown.xml", format_xml_unknown(["nosuch", "1234567"]))

    def test_is_well_formed_and_has_the_grid_elements(self) -> None:
        import xml.etree.ElementTree as ET
        doc = ET.fromstring(format_xml(rows_for(LISTING)))
        running = doc.findall("./queue_info/job_list")
        pending = doc.findall("./job_info/job_list")
        assert {j.get("state") for j in running} == {"running"} and {j.get("state") for j in pending} == {"pending"}
        # what `job` (the grid's) read: JB_name, state, JB_job_number, JAT_start_time
        first = running[0]
        assert [c.tag for c in first] == ["JB_job_number", "JAT_prio", "JB_name", "JB_owner", "state",
                                          "JAT_start_time", "queue_name", "slots"]
        details = ET.fromstring(format_xml_details(rows_for(["running_oneoff"])))
        el = details.find("./djob_info/element")
        assert el is not None
        # what the Toolforge grid status tool parsed from `qstat -xml -j '*'`
        assert el.findtext("JB_job_name") == "sleepy" and el.findtext("JB_owner") == "tools.qsfix"
        assert el.findtext("JB_hard_queue_list/destin_ident_list/QR_name") == "task"
        req = el.find("JB_hard_resource_list/qstat_l_requests")
        assert req is not None and req.findtext("CE_name") == "h_vmem"
        assert float(req.findtext("CE_doubleval") or 0) == 512 * 1024 * 1024


# -- commands over a fake cluster ---------------------------------------------------------------------

def fake(*names: str) -> FakeApi:
    """The kit's fake API server holding the fixtures NAMES (tool qsfix)."""
    return FakeApi(NS).add_fixture(*names)


def deletes(api: FakeApi) -> list[tuple[str, str, str, Any, Any]]:
    """(verb, kind, name or selector, uid or grace, propagation) of each delete call."""
    return [(c.verb, c.kind, c.name or c.params.get("selector"), c.params.get("uid", c.params.get("grace")),
             c.params.get("propagation")) for c in api.calls if c.verb.startswith("delete")]


@dataclass
class Result:
    code: int
    out: str
    err: str


SITE_CONFIG: dict[str, Path] = {}


@pytest.fixture(autouse=True)
def site_config(tmp_path: Path) -> None:
    """A site config with the defaults that matter here, so the host's /etc/gridshim is never read."""
    path = tmp_path / "gridshim.yaml"
    path.write_text("grace_seconds: 20\nuser_prefix: tools.\n")
    SITE_CONFIG["path"] = path


def call(main: Any, prog: str, cluster: FakeApi, *argv: str) -> Result:
    env = Env(stdout=io.StringIO(), stderr=io.StringIO(), stdin=io.StringIO(), clock=lambda: NOW,
              environ={"GRIDSHIM_CONFIG": str(SITE_CONFIG["path"])}, cwd="/")
    code = run(prog, lambda e: main(e, list(argv), cluster=cluster), env)
    return Result(code, env.stdout.getvalue(), env.stderr.getvalue())  # type: ignore[attr-defined]


class TestQstatCommand:
    def test_no_jobs_prints_nothing(self) -> None:
        r = call(qstat_main, "qstat", fake())
        assert (r.code, r.out, r.err) == (0, "", "")

    def test_one_list_per_kind(self) -> None:
        cluster = fake(*LISTING)
        r = call(qstat_main, "qstat", cluster)
        assert r.code == 0 and r.out.startswith(HEADER)
        assert cluster.lists() == ["Job", "Pod", "Event"]  # Events only because some jobs look stuck
        selectors = {c.params["selector"] for c in cluster.calls if c.verb == "list" and c.kind in ("Job", "Pod")}
        assert selectors == {"app.kubernetes.io/managed-by=gridshim,app.kubernetes.io/created-by=qsfix"}

    def test_no_events_when_nothing_is_stuck(self) -> None:
        cluster = fake("running_oneoff", "start_error", "suspended")
        call(qstat_main, "qstat", cluster)
        assert cluster.lists() == ["Job", "Pod"]

    @pytest.mark.parametrize(("states", "want"), [
        # the listing's only held job waits for its -a time: qw, as SGE shows it, and selected by -s h/ha
        ("r", {"r", "Rr", "dr"}), ("p", {"qw", "Eqw"}), ("ha", {"qw"}), ("h", {"qw"}),
        ("z", set()), ("a", {"r", "Rr", "dr", "qw", "Eqw"}),
    ])
    def test_state_filter(self, states: str, want: set[str]) -> None:
        r = call(qstat_main, "qstat", fake(*LISTING), "-s", states)
        assert {line.split()[4] for line in r.out.splitlines()[2:]} == want

    def test_finished_jobs_only_with_s_z(self) -> None:
        cluster = fake("running_oneoff", "finished_failed")
        assert "failer" not in call(qstat_main, "qstat", cluster).out
        out = call(qstat_main, "qstat", cluster, "-s", "z").out
        assert "failer" in out and "sleepy" not in out

    def test_queue_filter(self) -> None:
        out = call(qstat_main, "qstat", fake(*LISTING), "-q", "continuous").out
        assert {line.split()[2] for line in out.splitlines()[2:]} == {"cont", "restarter", "badwd"}

    def test_j_by_name_is_narrowed_to_that_name(self) -> None:
        cluster = fake(*LISTING)
        r = call(qstat_main, "qstat", cluster, "-j", "stubborn")
        assert r.code == 0 and "job_name:                   stubborn\n" in r.out
        assert all("gridshim.io/name=stubborn" in (c.params["selector"] or "") for c in cluster.calls if c.verb == "list")

    def test_j_pattern_and_ids(self) -> None:
        r = call(qstat_main, "qstat", fake(*LISTING), "-j", "s*,8752625")
        assert [line.split()[1] for line in r.out.splitlines() if line.startswith("job_name:")] == \
            ["sleepy", "stubborn", "badwd"]

    def test_j_unknown(self) -> None:
        r = call(qstat_main, "qstat", fake(*LISTING), "-j", "nosuch,42")
        assert (r.code, r.out, r.err) == (1, "", "Following jobs do not exist: \nnosuch, 42\n")
        r = call(qstat_main, "qstat", fake(*LISTING), "-xml", "-j", "nosuch")
        assert r.code == 0 and "<unknown_jobs" in r.out

    def test_j_finds_a_dying_job_until_it_is_gone(self) -> None:
        cluster = fake("deleting")
        assert call(qstat_main, "qstat", cluster, "-j", "stubborn").code == 0
        for pod in cluster.objects("Pod"):  # its pods are gone; the garbage collector has not acted yet
            cluster.unseen(gone=("Pod", pod["metadata"]["name"]))
        assert call(qstat_main, "qstat", cluster, "-j", "stubborn").code == 0  # the Job still exists
        (job,) = cluster.objects("Job")
        cluster.delete("Job", job["metadata"]["name"])
        assert call(qstat_main, "qstat", cluster, "-j", "stubborn").code == 1

    def test_forbidden_own_namespace_is_one_clear_line(self) -> None:
        api = fake()
        api.readable.clear()  # RBAC: not even the tool's own namespace
        r = call(qstat_main, "qstat", api)
        assert r.code == 1 and r.out == "" and r.err.count("\n") == 1 and "forbidden" in r.err

    def test_other_users_namespace_is_skipped_when_forbidden(self) -> None:
        cluster = fake("running_oneoff")
        r = call(qstat_main, "qstat", cluster, "-u", "tools.qsfix,tools.other")
        assert r.code == 0 and "sleepy" in r.out
        assert [(c.params["selector"], c.params["namespace"]) for c in cluster.calls if c.verb == "list"
                and c.kind == "Job" and c.params["namespace"] == "tool-other"] == [
            ("app.kubernetes.io/managed-by=gridshim,app.kubernetes.io/created-by=other", "tool-other")]

    def test_u_nosuchuser_prints_nothing(self) -> None:
        r = call(qstat_main, "qstat", fake(*LISTING), "-u", "root")
        assert (r.code, r.out) == (0, "")

    def test_bad_option(self) -> None:
        r = call(qstat_main, "qstat", fake(), "-frobnicate")
        assert r.code == 1 and r.err.startswith('error: ERROR! invalid option argument "-frobnicate"')

    def test_parse_states(self) -> None:
        assert parse_states("hu") == (frozenset(), frozenset("u"))
        assert parse_states("pr") == (frozenset("pr"), frozenset())
        assert parse_states("a")[0] == frozenset("psr")


class TestJobCommand:
    @pytest.mark.parametrize(("name", "code", "out"), [
        ("sleepy", 1, "8981583\n"), ("stubborn", 1, "8502943\n"), ("restarter", 1, "2879321\n"),
        ("quick", 2, "2178357\n"), ("badwd", 2, "8752625\n"), ("later", 2, "6506604\n"),
        ("held", 2, "6998045\n"), ("nosuch", 0, ""), ("sleep", 0, ""), ("sleep*", 0, ""),
    ])
    def test_id_and_exit_code(self, name: str, code: int, out: str) -> None:
        cluster = fake(*LISTING)
        r = call(job_main, "job", cluster, name)
        assert (r.code, r.out, r.err) == (code, out, "")
        assert cluster.lists()[0] == "Job"
        assert f"gridshim.io/name={label_value(name)}" in (cluster.calls[0].params["selector"] or "")

    def test_verbose(self) -> None:
        cluster = fake(*LISTING)
        r = call(job_main, "job", cluster, "-v", "sleepy")
        assert r.out == "Job 'sleepy' has been running since 2026-11-22T20:26:30 as id 8981583\n"
        assert call(job_main, "job", cluster, "-v", "quick").out == "Job 'quick' is pending as id 2178357\n"
        assert call(job_main, "job", cluster, "-v", "x").out == "No job 'x' is currently queued or running.\n"
        assert (call(job_main, "job", cluster, "-q", "sleepy").out, call(job_main, "job", cluster, "-q", "x").code) \
            == ("", 0)

    def test_first_match_is_the_running_one(self) -> None:
        cluster = fake("quota_wait", "running_oneoff")
        for kind in ("Job", "Pod"):
            for o in cluster.objects(kind):
                patch: dict[str, Any] = {"labels": {"gridshim.io/name": "same"}}
                if kind == "Job":
                    patch["annotations"] = {"gridshim.io/name": "same"}
                cluster.patch(kind, o["metadata"]["name"], {"metadata": patch})
        assert call(job_main, "job", cluster, "same").out == "8981583\n"

    @pytest.mark.parametrize("argv", [[], ["-v", "-q", "x"]])
    def test_usage_errors_exit_2(self, argv: list[str]) -> None:
        r = call(job_main, "job", fake(), *argv)
        assert r.code == 2 and r.err.startswith("usage: job") and "job: error: " in r.err


class TestStopAndDelete:
    def test_jstop_running_is_graceful_and_keeps_the_job_visible(self) -> None:
        cluster = fake(*LISTING)
        r = call(jstop_main, "jstop", cluster, "sleepy")
        assert (r.code, r.out) == (0, "tools.qsfix has registered the job 8981583 for deletion\n")
        uid = load("running_oneoff")["job"]["metadata"]["uid"]
        # the Job goes first, so the Job controller cannot replace the pod
        assert deletes(cluster) == [("delete", "Job", "sleepy-nl5w8", uid, "Foreground"),
                                    ("delete_collection", "Pod", f"batch.kubernetes.io/controller-uid={uid}", 20, None)]

    def test_jstop_pending(self) -> None:
        r = call(jstop_main, "jstop", fake(*LISTING), "quick")
        assert (r.code, r.out) == (0, "tools.qsfix has deleted job 2178357\n")

    def test_jstop_none(self) -> None:
        r = call(jstop_main, "jstop", fake(*LISTING), "nosuch")
        assert (r.code, r.out, r.err) == (1, "", "No job 'nosuch' is currently queued or running\n")

    def test_qdel_messages_on_stdout(self) -> None:
        cluster = fake(*LISTING)
        r = call(qdel_main, "qdel", cluster, "8981583", "quick", "nosuch", "12345")
        assert r.out == ("tools.qsfix has registered the job 8981583 for deletion\n"
                         "tools.qsfix has deleted job 2178357\n"
                         'denied: job "nosuch" does not exist\n'
                         'denied: job "12345" does not exist\n')
        assert (r.code, r.err) == (1, "")

    def test_qdel_pattern_hits_every_match(self) -> None:
        r = call(qdel_main, "qdel", fake(*LISTING), "s*")
        assert r.code == 0 and r.out.count("\n") == 2 and "8981583" in r.out and "8502943" in r.out

    def test_qdel_force_kills_at_once(self) -> None:
        cluster = fake("running_oneoff")
        call(qdel_main, "qdel", cluster, "-f", "sleepy")
        # the pods go with grace 0 before the Job (so the garbage collector's graceful delete of them cannot
        # come first), and once more after it (a replacement made in between)
        assert [c[0] if c[0] == "delete" else c[3] for c in deletes(cluster)] == [0, "delete", 0]

    def test_qdel_force_writes_the_killed_jobs_accounting_record(self, tmp_path: Any) -> None:
        """SIGKILL leaves the wrapper no time to write it: qdel -f does, from the Job and its pods."""
        from gridshim import records
        from gridshim.config import Settings

        cluster = fake("running_oneoff")
        job, pods = cluster.objects("Job")[0], cluster.objects("Pod")
        settings = Settings(accounting_file=str(tmp_path / "acct"))
        assert records.ensure_records(job, pods, settings=settings, home="/h", now=2e9, killed=True) == 1
        assert records.ensure_records(job, pods, settings=settings, home="/h", now=2e9, killed=True) == 0  # once
        f = (tmp_path / "acct").read_text().splitlines()[0].split(":")
        assert len(f) == 46 and (f[4], f[11], f[12]) == ("sleepy", "100", "137")

    def test_qdel_user(self) -> None:
        cluster = fake("running_oneoff", "quota_wait")
        r = call(qdel_main, "qdel", cluster, "-u", "tools.qsfix")
        assert r.code == 0 and r.out.count("\n") == 2
        r = call(qdel_main, "qdel", fake(), "-u", "tools.qsfix")
        assert (r.code, r.out) == (1, "There is no job registered for the following users: tools.qsfix\n")
        r = call(qdel_main, "qdel", fake(), "-u", "tools.qsfix", "x")
        assert (r.code, r.out) == (1, "The job x of user(s) tools.qsfix does not exist\n")

    def test_qdel_no_arguments(self) -> None:
        r = call(qdel_main, "qdel", fake())
        assert (r.code, r.out) == (1, "ERROR! no option argument\n") and r.err.startswith("usage: qdel")


class TestQmod:
    def test_restart_continuous(self) -> None:
        cluster = fake(*LISTING)
        r = call(qmod_main, "qmod", cluster, "-rj", "cont")
        assert (r.code, r.out) == (0, "Pushed rescheduling of job 8240272.1\n")
        uid = load("running_continuous")["job"]["metadata"]["uid"]
        assert deletes(cluster) == [("delete_collection", "Pod", f"batch.kubernetes.io/controller-uid={uid}", 20, None)]
        assert cluster.objects("Job")  # the Job stays: its controller starts a new pod

    def test_task_queue_is_refused(self) -> None:
        r = call(qmod_main, "qmod", fake(*LISTING), "-rj", "8981583")
        assert (r.code, r.out) == (1, "The job 8981583.1 is running in queue task@sandbox-node where jobs are "
                                      "not rerunable.\n")

    def test_unknown(self) -> None:
        r = call(qmod_main, "qmod", fake(*LISTING), "-rj", "nosuch")
        assert (r.code, r.out) == (1, 'denied: job "nosuch" does not exist\n')
