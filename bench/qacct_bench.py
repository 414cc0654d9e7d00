#!/usr/bin/env python3
"""qacct over a large accounting file (issue 16's goal: `qacct -j NAME` over 10,000 records ≤ 0.2 s).

    .venv/bin/python bench/qacct_bench.py                    # 10,000 records, 20 runs per case
    .venv/bin/python bench/qacct_bench.py --records 100000 --runs 10 --json out.json

Needs no sandbox: it writes a file of generated records (accounting.format_line, the writers' format,
with a backstop duplicate every 50 records) and times fresh `python bin/qacct -f FILE …` processes
from spawn to exit, as a pipeline client's `qacct -j ID` loop runs them. Nothing asserts on time;
the figures are printed beside the goal. `fig_qacct()` is the same as a function for bench/run.py.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from gridshim import accounting  # noqa: E402

GOAL_S = 0.2
PYTHON = str(REPO / ".venv" / "bin" / "python") if (REPO / ".venv" / "bin" / "python").exists() else sys.executable
QACCT = str(REPO / "bin" / "qacct")


def write_file(path: Path, records: int, *, seed: int = 16) -> dict[str, Any]:
    """RECORDS lines of 300 job names over three days; returns a name, an id and their record counts."""
    rng = random.Random(seed)
    t0 = 1_790_000_000
    lines = []
    names = [f"job{i:03d}" for i in range(300)]
    for i in range(records):
        name = names[i % len(names)]
        start = t0 + i * 25
        rc = rng.choice((0, 0, 0, 0, 1, 3, 137))
        rec = accounting.Record(
            qname="task", hostname=f"tools-k8s-worker-{i % 40}", group="tools.bench", owner="tools.bench",
            job_name=name, job_number=1_000_000 + rng.randrange(9_000_000), submission_time=start - 2,
            start_time=start, end_time=start + 20, failed=100 if rc == 137 else 0, exit_status=rc,
            ru_wallclock=20, ru_utime=0.5, ru_stime=0.1, ru_maxrss=20480, cpu=0.6,
            category="-l h_vmem=536870912", maxvmem=20971520.0, attempt=f"uid-{i}/pod-{i}")
        lines.append(accounting.format_line(rec))
        if i % 50 == 0:  # a backstop's record of the same attempt (its key as records.py writes it), which readers drop
            lines.append(accounting.format_line(rec._replace(attempt=f"uid-{i}/pod-{i}/{accounting.BACKSTOP}")))
    path.write_text("\n".join(lines) + "\n")
    probe = accounting.parse_line(lines[len(lines) // 2])
    assert probe is not None
    return {"name": probe.job_name, "id": probe.job_number, "lines": len(lines),
            "bytes": path.stat().st_size}


def run_once(args: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    t = time.perf_counter()
    proc = subprocess.run([PYTHON, QACCT, *args], capture_output=True, text=True, env=env)
    return time.perf_counter() - t, proc.returncode, proc.stdout


def fig_qacct(records: int = 10_000, runs: int = 20) -> dict[str, Any]:
    """Median and best wall time of each qacct case over a generated file of RECORDS records."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "accounting"
        info = write_file(path, records)
        # the machine's site config (or none), as on a real host; HOME holds a copy for default_file
        env = {**os.environ, "HOME": tmp, "PYTHONPATH": str(REPO / "src")}
        cases = {
            "j_name": ["-f", str(path), "-j", info["name"]],
            "j_id": ["-f", str(path), "-j", str(info["id"])],
            "j_missing": ["-f", str(path), "-j", "9999999"],
            "j_pattern": ["-f", str(path), "-j", "job1*"],
            "summary": ["-f", str(path)],
            "summary_o": ["-f", str(path), "-o"],
            "default_file": ["-j", info["name"]],
        }
        (Path(tmp) / ".gridshim").mkdir()
        (Path(tmp) / ".gridshim" / "accounting").write_bytes(path.read_bytes())
        out: dict[str, Any] = {"records": records, **info, "runs": runs, "goal_s": GOAL_S, "cases": {}}
        for case, args in cases.items():
            run_once(args, env)  # warm the page cache and the bytecode
            times = []
            for _ in range(runs):
                seconds, rc, stdout = run_once(args, env)
                times.append(seconds)
            out["cases"][case] = {"median_s": round(statistics.median(times), 4), "best_s": round(min(times), 4),
                                  "rc": rc, "stdout_lines": stdout.count("\n")}
        baseline = [run_once(["-help"], env)[0] for _ in range(runs)]
        out["cases"]["help_baseline"] = {"median_s": round(statistics.median(baseline), 4),
                                         "best_s": round(min(baseline), 4)}
        python_only = []
        for _ in range(runs):
            t = time.perf_counter()
            subprocess.run([PYTHON, "-c", "pass"], env=env)
            python_only.append(time.perf_counter() - t)
        out["python_startup_s"] = round(statistics.median(python_only), 4)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv)
    res = fig_qacct(args.records, args.runs)
    print(f"{res['records']} records ({res['lines']} lines, {res['bytes'] / 1e6:.1f} MB), {res['runs']} runs each; "
          f"python -c pass: {res['python_startup_s'] * 1000:.0f} ms")
    for case, fig in res["cases"].items():
        goal = f"  (goal ≤ {GOAL_S} s)" if case == "j_name" else ""
        print(f"  {case:<14} median {fig['median_s'] * 1000:7.1f} ms   best {fig['best_s'] * 1000:7.1f} ms{goal}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
