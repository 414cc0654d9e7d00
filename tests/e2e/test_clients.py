"""Real Grid Engine client programs from PyPI driving gridshim's qsub/qstat/qdel on the sandbox.

The clients (pinned in tests/e2e/clients/requirements.txt) live in .venv-clients, made by
`make clients-venv` with the Makefile's system PYTHON so that the tool uids can run its
interpreter inside their jobs. Each client runs AS THE TOOL (`tool.run`), with gridshim's
.venv/bin first on PATH, exactly as a tool maintainer would start it; the jobs it submits run as
Kubernetes Jobs whose pods the sandbox agent runs as local processes of the tool's uid.

What the clients send (read from their source and checked again in the tests below):

- dask-jobqueue 0.9.0 `SGECluster` (`SGEJob`): per worker it writes a temporary file
  /tmp/tmpXXXXXXXX.sh (deleted again right after qsub returns, so qsub must spool it) and runs
  `qsub /tmp/tmpXXXXXXXX.sh` (argv exec, no shell, no -terse, stdin not a terminal); the job id is
  the first run of digits on qsub's stdout. The script is
      #!/usr/bin/env bash
      <blank>
      #$ -N dask-worker
      #$ -l h_vmem=1G                 (resource_spec)
      #$ -l h_rt=00:10:00             (walltime; 00:30:00 by default)
      #$ -e LOGDIR/
      #$ -o LOGDIR/
      #$ -cwd
      #$ -j y
      <blank>
      PYTHON -m distributed.cli.dask_worker tcp://127.0.0.1:PORT --name SGECluster-N --nthreads 1
             --memory-limit 1.00GiB --nanny --death-timeout 60 --local-directory DIR
  It never calls qstat. `close()` runs `qdel ID` once per job (its exit code is ignored).
- Snakemake 7.32.4 `--cluster CMD`: per job it writes WORKDIR/.snakemake/tmp.XXXXXXXX/
  snakejob.RULE.JOBID.sh and runs `CMD "SCRIPT"` through /bin/sh from WORKDIR, i.e.
  `qsub -cwd -V -j y "…/snakejob.greet.2.sh"`; the first line of stdout is kept as the "external
  jobid" (only printed). It learns that a job ended from marker files the job script touches
  (`touch …/2.jobfinished || (touch …/2.jobfailed; exit 1)`), never from qstat.
  `--cluster-sync CMD` runs `qsub -sync y -cwd -V -j y "…/snakejob.greet.2.sh"` the same way,
  with qsub's stdout and stderr going to snakemake's own, and takes qsub's exit code as the job's
  result (0 = success; the job script is the inner snakemake, which exits 1 when the rule fails);
  there are no marker files. Both modes: no qstat, no qdel (no --cluster-cancel).
  The job script has no `#$` lines:
      #!/bin/sh
      # properties = {"type": "single", "rule": "greet", …, "jobid": 2, "cluster": {}}
      cd WORKDIR && PYTHON -m snakemake --snakefile 'WORKDIR/Snakefile' --target-jobs 'greet:'
             --allowed-rules 'greet' --cores 'all' … --mode 2 [&& touch …jobfinished || …]
  The job's name is thus the script's basename with its extension (snakejob.greet.2.sh), and with
  -cwd -j y its output goes to WORKDIR/snakejob.greet.2.sh.oJOBID.

Snakemake 7 sleeps 10 s between its job polls unless CI=true (then 1 s; snakemake/executors/
__init__.py `sleep()`); the tests set CI=true for snakemake so a 2-rule workflow takes seconds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO, Tool

CLIENTS = Path(__file__).resolve().parent / "clients"
CLIENTS_VENV = REPO / ".venv-clients"
CLIENTS_PY = CLIENTS_VENV / "bin" / "python"
SNAKEMAKE = CLIENTS_VENV / "bin" / "snakemake"
PINNED = ("dask-jobqueue", "distributed", "dask", "snakemake", "pulp")
JOB_ID_LABEL = "gridshim.io/job-id"
SUBMIT_LINE = re.compile(r'Your job (\d{7}) \("([^"]*)"\) has been submitted')


# -- helpers -----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def clients() -> dict[str, str]:
    """The clients venv exists and holds the pinned versions; never skipped: a missing venv fails."""
    if not CLIENTS_PY.exists():
        pytest.fail(f"{CLIENTS_PY} is missing: run `make clients-venv` (make test and make test-e2e do)",
                    pytrace=False)
    want = {}
    for line in (CLIENTS / "requirements.txt").read_text().splitlines():
        name, _, version = line.partition("==")
        if version and name.lower() in PINNED:
            want[name.lower()] = version.strip()
    assert set(want) == set(PINNED)
    proc = subprocess.run([str(CLIENTS_PY), "-c", "import json, sys, importlib.metadata as m; "
                           "print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))", *PINNED],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    have = {k.lower(): v for k, v in json.loads(proc.stdout).items()}
    if have != want:
        pytest.fail(f"{CLIENTS_VENV} holds {have}, requirements.txt pins {want}: run `make clients-venv`",
                    pytrace=False)
    return have


def own(tool: Tool, *paths: Path) -> None:
    for path in paths:
        os.chown(path, tool.uid, tool.uid)


def tail(text: str, n: int = 60) -> str:
    return "\n".join(text.splitlines()[-n:])


def diagnosis(tool: Tool, proc: subprocess.CompletedProcess[str] | None, *dirs: Path) -> str:
    """What to look at when a client failed: its output, the jobs' output files, pods and Jobs."""
    parts = []
    if proc is not None:
        parts.append(f"exit {proc.returncode}\n--- stdout\n{tail(proc.stdout)}\n--- stderr\n{tail(proc.stderr)}")
    for d in dirs:
        for f in sorted(d.glob("*")) if d.is_dir() else []:
            if f.is_file():
                parts.append(f"--- {f}\n{tail(f.read_text(errors='replace'), 30)}")
    pods = tool.sandbox.kubectl("-n", tool.namespace, "get", "jobs,pods", "-o", "wide", check=False)
    parts.append(f"--- kubectl get jobs,pods\n{pods.stdout}{pods.stderr}")
    return "\n".join(parts)


@dataclass
class QstatRow:
    id: str
    name: str
    state: str


def qstat_rows(stdout: str) -> list[QstatRow]:
    """The plain layout as SGE scripts parse it: 2 header lines, then id, name, state in columns 1, 3, 5."""
    lines = stdout.splitlines()
    if not lines:
        return []
    assert lines[0].startswith("job-ID") and set(lines[1]) == {"-"}, stdout
    return [QstatRow(c[0], c[2], c[4]) for c in (line.split() for line in lines[2:])]


def processes_of(uid: int, needle: str) -> dict[int, str]:
    """pid → command line of the live processes of UID whose command line contains NEEDLE."""
    found = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            status = (d / "status").read_text()
            cmdline = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        uids = next((line.split()[1:] for line in status.splitlines() if line.startswith("Uid:")), [])
        state = next((line.split()[1] for line in status.splitlines() if line.startswith("State:")), "")
        if uids and int(uids[0]) == uid and needle in cmdline and state != "Z":
            found[int(d.name)] = cmdline
    return found


def memory_bytes(q: str) -> int:
    """A Kubernetes memory quantity ('1Gi', '1024Mi', '1073741824', '1G') as bytes."""
    m = re.fullmatch(r"(\d+)(?:([KMGT])(i?))?", str(q))
    assert m, q
    if not m.group(2):
        return int(m.group(1))
    return int(m.group(1)) * (1024 if m.group(3) else 1000) ** ("KMGT".index(m.group(2)) + 1)


def jobs_by_id(tool: Tool) -> dict[str, dict[str, Any]]:
    items = tool.kubectl_json("get", "jobs")["items"]
    return {j["metadata"].get("labels", {}).get(JOB_ID_LABEL, "?" + j["metadata"]["name"]): j for j in items}


# -- dask-jobqueue -----------------------------------------------------------------------------------------

@pytest.mark.needs_sandbox("dask workers in the jobs run the checkout's .venv-clients and connect back to this machine's loopback")
def test_dask_jobqueue_sgecluster_two_workers_compute_and_are_gone_after_close(
        tool: Tool, clients: dict[str, str]) -> None:
    work = tool.home / "dask"
    work.mkdir()
    own(tool, work)
    logs, scratch = work / "logs", work / "scratch"
    cfg = {"python": str(CLIENTS_PY), "log_directory": str(logs), "local_directory": str(scratch), "timeout": 90}
    proc = tool.run(str(CLIENTS_PY), str(CLIENTS / "dask_sge.py"), json.dumps(cfg), cwd=work, timeout=150)
    assert proc.returncode == 0, diagnosis(tool, proc, logs)
    result_lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(result_lines) == 1, diagnosis(tool, proc, logs)
    res = json.loads(result_lines[0][len("RESULT "):])

    # what the client submitted (documents the pinned client; a new version must update the docstring)
    header = [line for line in res["job_script"].splitlines() if line.startswith("#$")]
    assert header == ["#$ -N dask-worker", "#$ -l h_vmem=1G", "#$ -l h_rt=00:10:00",
                      f"#$ -e {logs}/", f"#$ -o {logs}/", "#$ -cwd", "#$ -j y"], res["job_script"]
    assert res["job_script"].startswith("#!/usr/bin/env bash\n")

    # two workers joined and computed
    assert res["workers"] == ["SGECluster-0", "SGECluster-1"]
    assert res["sum"] == 499500
    assert res["squares"] == [x * x for x in range(10)]

    # the job ids dask parsed from qsub's output are gridshim's, and qstat showed both running
    ids = res["job_ids"]
    assert len(set(ids)) == 2 and all(re.fullmatch(r"\d{7}", i) for i in ids), ids
    running = res["qstat_running"]
    assert running["rc"] == 0, running
    rows = qstat_rows(running["stdout"])
    assert sorted((r.id, r.name, r.state) for r in rows) == [(i, "dask-worke", "r") for i in ids], running["stdout"]

    # the Jobs (as the tool saw them meanwhile): one per worker, active, with the directives' memory
    # limit (-l h_vmem=1G) and run-time limit (-l h_rt=00:10:00)
    assert res["kubectl_jobs_running"]["rc"] == 0, res["kubectl_jobs_running"]
    seen = {j["metadata"].get("labels", {}).get(JOB_ID_LABEL): j
            for j in json.loads(res["kubectl_jobs_running"]["stdout"])["items"]}
    assert sorted(seen) == ids, sorted(seen, key=str)
    for i, job in seen.items():
        assert (job.get("status") or {}).get("active") == 1, (i, job.get("status"))
        spec = job["spec"]
        (container,) = spec["template"]["spec"]["containers"]
        assert memory_bytes(container["resources"]["limits"]["memory"]) == 1 << 30, container["resources"]
        assert spec.get("activeDeadlineSeconds") == 600, spec

    # after close() (one `qdel ID` per job): no job in qstat, no active Job, no live pod, and no process
    # of the tool's uid left (the fresh tool has nothing else; the nanny's worker child is included)
    state: dict[str, Any] = {}

    def gone() -> bool:
        q = tool.run("qstat")
        jobs = jobs_by_id(tool)
        state.update(qstat=(q.returncode, q.stdout, q.stderr),
                     active_jobs=[i for i in ids if (jobs.get(i, {}).get("status") or {}).get("active")],
                     live_pods=[p["metadata"]["name"] for p in tool.kubectl_json("get", "pods")["items"]
                                if p["status"].get("phase") in ("Pending", "Running")],
                     processes=processes_of(tool.uid, ""))
        return (state["qstat"] == (0, "", "") and not state["active_jobs"] and not state["live_pods"]
                and not state["processes"])

    try:
        tool.wait_for(gone, timeout=60, interval=1, what="the worker jobs to be gone after close()")
    except AssertionError as e:
        raise AssertionError(f"{e}: {state}\n{diagnosis(tool, None, logs)}") from None
    assert set(res["worker_pids"]) and not set(res["worker_pids"]) & set(state["processes"])
    assert set(res["worker_cwds"]) == {str(work)}, res["worker_cwds"]  # #$ -cwd: qsub's cwd

    # -o/-e DIR/ with -j y: one output file per job, DIR/dask-worker.oJOBID, holding the worker's log
    assert sorted(p.name for p in logs.iterdir()) == sorted(f"dask-worker.o{i}" for i in ids), \
        diagnosis(tool, None, logs)
    for i in ids:
        text = (logs / f"dask-worker.o{i}").read_text()
        assert "Registered to:" in text and res["scheduler_address"] in text, text


# -- Snakemake ---------------------------------------------------------------------------------------------

SNAKEMAKE_MODES = {
    "cluster": ["--cluster", "qsub -cwd -V -j y"],
    "cluster-sync": ["--cluster-sync", "qsub -sync y -cwd -V -j y"],
}


def workflow(tool: Tool, name: str) -> Path:
    wf = tool.home / name
    wf.mkdir()
    shutil.copy(CLIENTS / "Snakefile", wf / "Snakefile")
    own(tool, wf, wf / "Snakefile")
    return wf


def snakemake(tool: Tool, wf: Path, *args: str, mark: str = "") -> subprocess.CompletedProcess[str]:
    return tool.run(str(SNAKEMAKE), *args, "--jobs", "2", "--latency-wait", "15", "--nocolor", cwd=wf,
                    env={"CI": "true", "GRIDSHIM_E2E_MARK": mark}, timeout=110)


@pytest.mark.needs_shared_home("Snakemake's jobs run the checkout's .venv-clients and write their outputs in the tool's home")
@pytest.mark.parametrize("mode", SNAKEMAKE_MODES)
def test_snakemake_runs_a_two_rule_workflow_through_qsub(tool: Tool, clients: dict[str, str], mode: str) -> None:
    wf = workflow(tool, f"wf-{mode}")
    mark = f"exported-by-v-{tool.name}"
    proc = snakemake(tool, wf, *SNAKEMAKE_MODES[mode], mark=mark)
    assert proc.returncode == 0, diagnosis(tool, proc, wf)

    # the right result, computed by the two jobs in order; the mark only reaches the jobs through -V
    assert (wf / "result.txt").read_text() == f"HELLO FROM THE GRID, {mark.upper()}\n"
    assert "3 of 3 steps (100%) done" in proc.stderr, diagnosis(tool, proc, wf)

    # both rules went through qsub: snakemake logs the submit line (--cluster) or passes qsub's
    # stdout on (--cluster-sync); the job name is the job script's basename
    subs = {}
    for job_id, name in SUBMIT_LINE.findall(proc.stdout + proc.stderr):
        m = re.fullmatch(r"snakejob\.(\w+)\.(\d+)\.sh", name)
        assert m, name
        subs[m.group(1)] = (job_id, name)
    assert sorted(subs) == ["greet", "shout"], diagnosis(tool, proc, wf)
    if mode == "cluster-sync":  # qsub -sync y's closing line for an exit 0, on stdout
        for job_id, _ in subs.values():
            assert f"Job {job_id} exited with exit code 0.\n" in proc.stdout, proc.stdout

    # on Kubernetes: exactly these two Jobs, both succeeded (with --cluster, snakemake goes on as soon
    # as the job script touched its marker file, so the Job may need a moment to be marked succeeded)
    ids = sorted(job_id for job_id, _ in subs.values())
    tool.wait_for(lambda: sorted(jobs_by_id(tool)) == ids and all(
        (j.get("status") or {}).get("succeeded") == 1 for j in jobs_by_id(tool).values()),
        timeout=30, interval=0.5, what=f"Jobs {ids} (and no other) to have succeeded")

    # -cwd -j y: each job's output is WORKDIR/NAME.oJOBID (the snakemake run inside the job), no .e file
    for rule, (job_id, name) in subs.items():
        out = wf / f"{name}.o{job_id}"
        assert out.exists(), diagnosis(tool, proc, wf)
        text = out.read_text()
        assert f"rule {rule}:" in text and "1 of 1 steps (100%) done" in text, text
        assert not (wf / f"{name}.e{job_id}").exists()


@pytest.mark.needs_shared_home("Snakemake's jobs run the checkout's .venv-clients and write their outputs in the tool's home")
def test_snakemake_cluster_sync_fails_the_workflow_when_the_job_fails(tool: Tool, clients: dict[str, str]) -> None:
    """`boom` writes its output and exits 3: only qsub -sync y's exit code can tell snakemake it failed."""
    wf = workflow(tool, "wf-boom")
    proc = snakemake(tool, wf, *SNAKEMAKE_MODES["cluster-sync"], "boom.txt")
    assert proc.returncode == 1, diagnosis(tool, proc, wf)
    assert "Error in rule boom:" in proc.stderr, diagnosis(tool, proc, wf)
    assert "Exiting because a job execution failed" in proc.stderr
    assert not (wf / "boom.txt").exists()  # snakemake removes the output of a failed job
    ((job_id, name),) = SUBMIT_LINE.findall(proc.stdout)
    assert re.fullmatch(r"snakejob\.boom\.\d+\.sh", name)
    # the job script is snakemake itself, which exits 1 for the failed rule; qsub -sync y says so on
    # stderr (SGE's report_exit_status: a non-zero exit is reported on stderr, exit 0 on stdout)
    assert f"Job {job_id} exited with exit code 1.\n" in proc.stderr, proc.stderr
    assert "exited with exit code" not in proc.stdout, proc.stdout
    assert list(jobs_by_id(tool)) == [job_id]
    tool.wait_for(lambda: (jobs_by_id(tool)[job_id].get("status") or {}).get("failed"), timeout=30,
                  interval=0.5, what=f"Job {job_id} to be marked failed")
