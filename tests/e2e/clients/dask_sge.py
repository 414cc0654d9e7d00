"""dask-jobqueue's SGECluster against gridshim, as a tool would use it; run by tests/e2e/test_clients.py.

Run as the tool with .venv-clients/bin/python and gridshim's qsub/qstat/qdel first on PATH:

    python dask_sge.py '{"python": ..., "log_directory": ..., "local_directory": ...}'

SGECluster writes one job script per worker to a temporary file, runs `qsub FILE` (no -terse),
takes the first run of digits on qsub's stdout as the job id and deletes the file again; it never
polls: a worker counts when it connects back to the scheduler (127.0.0.1 here, the jobs run on this
machine). close() runs `qdel ID` for each job. The last stdout line is `RESULT <json>` for the test:
what the workers computed, and what qstat and `kubectl get jobs` showed while they were connected.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time


def run(*argv: str) -> dict[str, object]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    return {"rc": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}


def main() -> int:
    cfg = json.loads(sys.argv[1])
    import dask
    from dask.distributed import Client
    from dask_jobqueue import SGECluster

    # the scheduler's own scratch space, in the tool's home rather than a /tmp/dask-scratch-space*
    dask.config.set({"temporary-directory": cfg["local_directory"]})

    out: dict[str, object] = {}
    t0 = time.monotonic()
    cluster = SGECluster(
        cores=1, processes=1, memory="1GiB",
        resource_spec="h_vmem=1G",          # → #$ -l h_vmem=1G (what SGE sites ask their users to add)
        walltime="00:10:00",                # → #$ -l h_rt=00:10:00
        python=cfg["python"],               # the clients venv's interpreter, run by the job as the tool
        log_directory=cfg["log_directory"],  # → #$ -e DIR/ and #$ -o DIR/
        local_directory=cfg["local_directory"],  # not /tmp/dask-scratch-space, which another uid may own
        scheduler_options={"host": "127.0.0.1", "dashboard": False},
    )
    try:
        out["job_script"] = cluster.job_script()
        out["scheduler_address"] = cluster.scheduler_address
        cluster.scale(2)
        with Client(cluster) as client:
            client.wait_for_workers(2, timeout=cfg.get("timeout", 90))
            out["joined_after"] = round(time.monotonic() - t0, 1)
            out["workers"] = sorted(w["name"] for w in client.scheduler_info()["workers"].values())
            out["sum"] = client.submit(sum, range(1000)).result()
            out["squares"] = client.gather(client.map(lambda x: x * x, range(10)))
            out["worker_pids"] = sorted(client.run(os.getpid).values())
            out["worker_cwds"] = sorted(client.run(os.getcwd).values())
            out["job_ids"] = sorted(job.job_id for job in cluster.workers.values())
            out["qstat_running"] = run("qstat")
            # the tool's own view of its Jobs while the workers are connected (kubectl is on its PATH)
            out["kubectl_jobs_running"] = run("kubectl", "get", "jobs", "-o", "json")
    finally:
        cluster.close()
    out["closed_after"] = round(time.monotonic() - t0, 1)
    out["qstat_after_close"] = run("qstat")
    print("RESULT " + json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
