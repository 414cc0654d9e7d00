"""Arrays and dependencies on the sandbox (issue 15), as figures for bench/run.py.

- `fig_array_submit`: `qsub -t 1-N` (one Indexed Job) against N × `kubectl create job` (what a loop
  of submissions costs), both as fresh processes of the bench tool; N = 1,000 by default.
- `fig_array_finish`: time from `qsub -t 1-N` to the last task's end, the tasks being `/bin/true`
  run at the node's pace (the sandbox's agent and the tool's pods quota), read from the tasks' own
  end times in their per-task output files.
- `fig_hold_chain`: a chain of jobs, each `-hold_jid` its predecessor; per link the time from the
  predecessor program's end to the successor program's start, both written by the jobs themselves
  (`date +%s.%N`), so it is what a pipeline sees: the release, the Job controller, the scheduler
  and the agent together.

Nothing asserts on time; the figures are reported beside the goals of issue 15.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any

GOALS = {"array1000_vs_kubectl_loop": 0.01, "hold_release_median_s": 1.0}


def _wait_for(pred: Any, timeout: float, what: str, poll: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise RuntimeError(f"bench: {what} not within {timeout:.0f} s")
        time.sleep(poll)


def fig_array_submit(b: Any, tasks: int = 1000, runs: int = 5) -> dict[str, Any]:
    """Median of RUNS `qsub -t 1-TASKS` submissions (suspended by -h, so nothing runs) vs one loop of
    TASKS `kubectl create job` (measured once: each create is a fresh kubectl, as a shell loop is)."""
    script = b.workdir / "arr.sh"
    script.write_text("#!/bin/sh\n/bin/true\n")
    script.chmod(0o644)
    b.delete_all("Job")
    q = []
    for i in range(runs):
        q.append(b.gridshim("qsub", "-h", "-terse", "-t", f"1-{tasks}", "-N", f"arr{i}", str(script)).seconds)
    b.delete_all("Job")
    t0 = time.perf_counter()
    for i in range(tasks):
        b.kctl("create", "job", f"loop-{i}", f"--image={b.image}", "--", "/bin/true")
    loop = time.perf_counter() - t0
    b.delete_all("Job")
    qm = statistics.median(q)
    return {"tasks": tasks, "qsub_median_s": round(qm, 4), "qsub_s": [round(x, 4) for x in q],
            "kubectl_loop_s": round(loop, 2), "ratio": round(qm / loop, 5),
            "command": f"qsub -h -terse -t 1-{tasks} arr.sh", "peer": f"{tasks} × kubectl create job"}


def _scratch(b: Any, name: str) -> Path:
    """An empty directory in the bench tool's home that its jobs can write (the bench may run as root)."""
    out = b.home / name
    out.mkdir(exist_ok=True)
    for p in out.iterdir():
        p.unlink()
    if os.geteuid() == 0:
        os.chown(out, b.uid, b.uid)
    return out


def _stamps(path: Path) -> list[float]:
    try:
        return [float(x) for x in path.read_text().split()]
    except (OSError, ValueError):
        return []


def fig_array_finish(b: Any, tasks: int = 1000, timeout: float = 1800) -> dict[str, Any]:
    """`qsub -t 1-TASKS` of a task that records its end; submit → the last task's end."""
    out = _scratch(b, "bench-arr")
    script = b.workdir / "fin.sh"
    script.write_text("#!/bin/sh\ndate +%s.%N\n")
    script.chmod(0o644)
    b.delete_all("Job")
    t_submit = time.time()
    b.gridshim("qsub", "-terse", "-t", f"1-{tasks}", "-N", "fin", "-j", "y", "-o", f"{out}/", str(script))

    def ends() -> list[float]:
        return [s[-1] for s in (_stamps(p) for p in out.iterdir()) if s]

    _wait_for(lambda: len(ends()) >= tasks, timeout, f"{tasks} array tasks", poll=1.0)
    last = max(ends())
    b.delete_all("Job")
    return {"tasks": tasks, "submit_to_last_end_s": round(last - t_submit, 1),
            "tasks_per_s": round(tasks / max(last - t_submit, 1e-9), 1)}


def fig_hold_chain(b: Any, links: int = 10, timeout: float = 600) -> dict[str, Any]:
    """A chain of LINKS+1 jobs, job k holding on job k-1 by name; the release latency of each link."""
    out = _scratch(b, "bench-chain")
    b.delete_all("Job")
    script = b.workdir / "link.sh"
    script.write_text(f'#!/bin/sh\ndate +%s.%N >"{out}/$1.t"\nsleep 0.2\ndate +%s.%N >>"{out}/$1.t"\n')
    script.chmod(0o644)
    # every job holds from the start: the first waits on a user hold, released once the chain is in place
    for k in range(links + 1):
        args = ["qsub", "-terse", "-N", f"c{k}", "-j", "y", "-o", f"{out}/c{k}.log"]
        args += ["-h"] if k == 0 else ["-hold_jid", f"c{k - 1}"]
        b.gridshim(*args, str(script), f"c{k}")
    b.gridshim("qrls", "c0")
    last = out / f"c{links}.t"
    _wait_for(lambda: len(_stamps(last)) == 2, timeout, f"the chain of {links + 1} jobs")
    stamps = [_stamps(out / f"c{k}.t") for k in range(links + 1)]
    lat = [stamps[k][0] - stamps[k - 1][1] for k in range(1, links + 1)]
    b.delete_all("Job")
    return {"links": links, "median_s": round(statistics.median(lat), 3), "max_s": round(max(lat), 3),
            "latencies_s": [round(x, 3) for x in lat]}
