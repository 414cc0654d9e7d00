"""Issue 7: tenant isolation — with tool B's certificate, nothing of tool A can be seen or touched.

Two ways in are tried: B's own kubeconfig (namespace tool-B; A's jobs are named by name and id),
and a copy of B's kubeconfig pointed at namespace tool-A (B's certificate, A's namespace). Every
command gets the grid's "no such job" answer or, against A's namespace, exit 1 with one clear line
naming the kubeconfig; afterwards every object in A's namespace is exactly as it was.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from conftest import Tool

CLEAN = re.compile(r"Traceback|internal error")


@pytest.fixture
def two_tools(make_tool: Callable[..., Tool]) -> tuple[Tool, Tool, str]:
    a, b = make_tool("ta"), make_tool("tb")
    proc = a.run("jsub", "-once", "-N", "secret", "/bin/sleep", "600")
    assert proc.returncode == 0, proc.stderr
    job_id = re.search(r"\d{7}", proc.stdout).group(0)  # type: ignore[union-attr]
    cron = a.run("crontab", "-", input="0 0 1 1 * jsub -once -N yearly /bin/true\n@yearly echo hi\n")
    assert cron.returncode == 0, cron.stderr
    mine = b.run("jsub", "-N", "mine", "/bin/sleep", "600")
    assert mine.returncode == 0, mine.stderr
    a.wait_for(lambda: running_pods(a), timeout=90, what="A's job running")
    return a, b, job_id


def running_pods(tool: Tool) -> list[dict[str, Any]]:
    return [p for p in tool.kubectl_json("get", "pods")["items"] if p["status"].get("phase") == "Running"]


def state_of(tool: Tool) -> dict[tuple[str, str], tuple[str, str | None, str | None]]:
    """Every object gridshim or the controllers keep for TOOL: (kind, name) → (uid, deletion, version).
    Jobs and pods change their status as they run, so only their identity and deletion are compared."""
    out: dict[tuple[str, str], tuple[str, str | None, str | None]] = {}
    for kind in ("jobs", "cronjobs", "configmaps", "pods"):
        for o in tool.kubectl_json("get", kind)["items"]:
            m = o["metadata"]
            version = m["resourceVersion"] if kind in ("cronjobs", "configmaps") else None
            out[(kind, m["name"])] = (m["uid"], m.get("deletionTimestamp"), version)
    return out


def one_line(text: str) -> str:
    assert not CLEAN.search(text), text
    lines = text.splitlines()
    assert len(lines) == 1, text
    return lines[0]


def test_b_cannot_see_or_touch_a_from_its_own_namespace(two_tools: tuple[Tool, Tool, str]) -> None:
    a, b, job_id = two_tools
    before = state_of(a)
    assert sum(k == "jobs" for k, _ in before) == 1 and sum(k == "cronjobs" for k, _ in before) == 2

    # qstat: only B's own job, whatever the user selection says
    for argv in (["qstat"], ["qstat", "-u", "*"], ["qstat", "-u", "*", "-xml"], ["qstat", "-s", "prsz"]):
        r = b.run(*argv)
        assert r.returncode == 0 and not CLEAN.search(r.stderr), (argv, r.stderr)
        assert "mine" in r.stdout and "secret" not in r.stdout and f"tools.{a.name}"[:12] not in r.stdout, argv
        assert job_id not in r.stdout
    r = b.run("qstat", "-u", f"tools.{a.name}")
    assert (r.returncode, r.stdout) == (0, "")  # SGE: another user's jobs the caller may not list → nothing
    for spec in (job_id, "secret"):
        r = b.run("qstat", "-j", spec)
        assert r.returncode == 1 and r.stdout == ""
        assert r.stderr == f"Following jobs do not exist: \n{spec}\n"

    r = b.run("job", "-v", "secret")
    assert (r.returncode, r.stdout, r.stderr) == (0, "No job 'secret' is currently queued or running.\n", "")
    r = b.run("jstop", "secret")
    assert (r.returncode, r.stdout, r.stderr) == (1, "", "No job 'secret' is currently queued or running\n")
    for spec in (job_id, "secret"):
        r = b.run("qdel", spec)
        assert (r.returncode, r.stdout) == (1, f'denied: job "{spec}" does not exist\n'), r.stderr
        r = b.run("qmod", "-rj", spec)
        assert (r.returncode, r.stdout) == (1, f'denied: job "{spec}" does not exist\n'), r.stderr
    r = b.run("qdel", "-u", f"tools.{a.name}")
    assert r.returncode == 1 and not CLEAN.search(r.stderr)
    assert r.stdout == (f"tools.{b.name} - you do not have the necessary privileges to delete the jobs of user "
                        f'"tools.{a.name}"\n')
    r = b.run("crontab", "-l")
    assert (r.returncode, r.stdout, r.stderr) == (1, "", f"no crontab for tools.{b.name}\n")
    for argv in (["crontab", "-u", f"tools.{a.name}", "-l"], ["crontab", "-u", a.name, "-r"]):
        r = b.run(*argv)
        assert r.returncode == 1 and one_line(r.stderr) == "crontab: must be privileged to use -u", argv
    # the same -once name in B is B's own job: A's is not "already active" for B, and stays untouched
    r = b.run("jsub", "-once", "-N", "secret", "/bin/true")
    assert r.returncode == 0, (b.home / "secret.err").read_text()

    assert state_of(a) == before


def kubeconfig_into(b: Tool, namespace: str) -> str:
    """A copy of B's kubeconfig (B's certificate) whose context names NAMESPACE."""
    cfg = yaml.safe_load(Path(b.kubeconfig).read_text())
    for c in cfg["contexts"]:
        c["context"]["namespace"] = namespace
    path = Path(b.kubeconfig).with_name("into-other")
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    os.chown(path, b.uid, b.uid)
    return str(path)


FORBIDDEN = [
    ["qstat"], ["qstat", "-u", "*"], ["qstat", "-xml"], ["qstat", "-j", "{id}"], ["qstat", "-j", "secret"],
    ["job", "secret"], ["job", "-v", "secret"], ["jstop", "secret"], ["qdel", "{id}"], ["qdel", "secret"],
    ["qdel", "-u", "*"], ["qmod", "-rj", "{id}"], ["crontab", "-l"], ["crontab", "-r"], ["crontab", "--previous"],
    ["crontab", "--sync"], ["jsub", "-stderr", "-N", "intruder", "/bin/true"],
    ["jsub", "-stderr", "-once", "-N", "secret", "/bin/true"],
    ["jstart", "-stderr", "-N", "intruder", "/bin/sleep", "60"],
    ["qcronsub", "-stderr", "-N", "intruder", "/bin/true"],
]


def test_b_pointed_at_a_namespace_is_refused_clearly(two_tools: tuple[Tool, Tool, str]) -> None:
    a, b, job_id = two_tools
    before = state_of(a)
    kc = kubeconfig_into(b, a.namespace)
    refused = 0
    for template in FORBIDDEN:
        argv = [t.replace("{id}", job_id) for t in template]
        r = b.run(*argv, env={"KUBECONFIG": kc})
        assert r.returncode == 1, (argv, r.returncode, r.stdout, r.stderr)
        line = one_line(r.stderr)
        assert re.search(r"not allowed: .* is forbidden: User \"" + re.escape(b.name) + '"', line), (argv, line)
        assert f"is {kc} the kubeconfig of the tool that owns this?" in line, (argv, line)
        assert "secret" not in r.stdout and job_id not in r.stdout, (argv, r.stdout)
        refused += 1
    # installing a crontab into A's namespace: refused whole, nothing written
    r = b.run("crontab", "-", input="* * * * * jsub -N intruder /bin/true\n", env={"KUBECONFIG": kc})
    assert r.returncode == 1 and "not allowed" in one_line(r.stderr), r.stderr
    # jsub's own errors go to the job's .err file (in B's home) unless -stderr: the same line lands there
    r = b.run("jsub", "-N", "intruder2", "/bin/true", env={"KUBECONFIG": kc})
    assert r.returncode == 1 and r.stderr == ""
    assert "not allowed" in one_line((b.home / "intruder2.err").read_text())
    assert refused == len(FORBIDDEN)
    assert state_of(a) == before
    assert not (a.home / "intruder.err").exists() and not (a.home / "intruder2.err").exists()
