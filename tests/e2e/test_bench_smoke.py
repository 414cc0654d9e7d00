"""Issue 6: a small run of the benchmark (bench/run.py) against the sandbox.

It checks that the bench runs end to end and writes every figure with a sane value. It never asserts
on time: the figures go to docs/performance.md. (`make bench` is the real run.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO, Sandbox

FIGURES = ("jsub_vs_kubectl", "qstat5000_vs_kubectl", "qstat5000_peak_rss_mb", "crontab200_vs_kubectl_apply",
           "sync_latency_s", "array1000_vs_kubectl_loop", "array1000_finish_s", "hold_release_median_s",
           "qsub_vs_kubectl", "qacct_j_name_10000_s", "exec_plugin_jsub_vs_kubectl")


@pytest.mark.needs_sandbox("bench/run.py makes its tool with sandbox.up")
def test_bench_writes_every_figure(sandbox: Sandbox, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "results.json"
    tool = f"bsmoke{os.getpid() % 1000}"
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--pairs", "2", "--sync-runs", "2", "--qstat-jobs", "40",
         "--crontab-entries", "5", "--array-tasks", "6", "--chain-links", "2", "--qstat-large-pairs", "2", "--tool", tool,
         "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
    results = json.loads(out.read_text())

    for key in FIGURES:
        value = results[key]
        assert isinstance(value, (int, float)) and not isinstance(value, bool), (key, value)
        assert 0 < value < 10_000 or (key == "sync_latency_s" and 0 <= value < 60), (key, value)
        assert key in proc.stdout  # one line per figure
    for key in ("exec_plugin_jsub_overhead_s", "exec_plugin_kubectl_overhead_s"):  # differences of medians
        assert isinstance(results[key], float) and -1 < results[key] < 10, (key, results[key])
    assert results["goals"]["jsub_vs_kubectl"] == 1.0
    assert results["machine"]["cpu_count"] >= 1 and results["machine"]["python"]

    d = results["details"]
    for fig in ("jsub", "crontab", "qstat"):
        assert d[fig]["pairs"] == 2
        assert len(d[fig]["gridshim_s"]) == len(d[fig]["kubectl_s"]) == 2
        assert d[fig]["gridshim_median_s"] > 0 and d[fig]["kubectl_median_s"] > 0
        assert d[fig]["round_trips"] >= 1 and d[fig]["kubectl_requests"] >= 1
    # the id is known before the object exists: one POST; the sandbox's `uid: namespace` reads the tool's uid
    # from its Namespace once and then from the user's cache (the cluster enforces it: docs/design.md)
    assert d["jsub"]["round_trips"] == 1 and d["qsub"]["round_trips"] == 1
    assert d["qstat"]["jobs"] >= 40 and d["qstat"]["qstat_lines"] >= 40
    assert 5 < results["qstat5000_peak_rss_mb"] < 1000  # a child's own peak, not the bench's
    assert d["sync"]["runs"] == 2 and len(d["sync"]["latencies_s"]) == 2
    assert d["crontab"]["entries"] == 5
    assert d["array_submit"]["tasks"] == 6 and len(d["array_submit"]["qsub_s"]) == 5
    assert d["array_finish"]["tasks"] == 6 and d["array_finish"]["submit_to_last_end_s"] > 0
    # the chain ran in order: every successor started after its predecessor ended
    assert d["hold_chain"]["links"] == 2 and all(x > 0 for x in d["hold_chain"]["latencies_s"])

    # the bench cleaned up after itself
    ns = f"tool-{tool}"
    for kind in ("jobs", "cronjobs"):
        left = sandbox.kubectl_json("-n", ns, "get", kind)["items"]
        assert left == [], (kind, [o["metadata"]["name"] for o in left])
