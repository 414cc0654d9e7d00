"""Issue 12: faults on the sandbox's real components, not through a proxy (sandbox/faults.py).

The sandbox's kube-apiserver is SIGKILLed and started again with the same argv (flags, ports) while
etcd keeps running, so the restarted server answers what a real one answers: connection refused while
it is down, then 403 for about a second while its RBAC cache loads (/readyz still 500), then normal
answers. etcd is paused with SIGSTOP/SIGCONT, and the node agent is SIGKILLed and started again.

Every test that kills a component starts it again in a `finally:` (faults.killed / Background.join)
and waits until it is healthy, so the rest of the suite, which shares the sandbox, keeps working.
Figures (faults injected, processes caught in them, outcomes) go to the pytest cache under
gridshim/faults_real for docs/reliability.md.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

from conftest import Tool, write
from sandbox import faults, up

CLEAN = re.compile(r"Traceback|internal error")
FIGURES: dict[str, Any] = {"faults": {}, "processes": 0, "outcomes": {}}


@pytest.fixture(scope="module", autouse=True)
def figures(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if getattr(request.config, "cache", None) is not None:
        request.config.cache.set("gridshim/faults_real", FIGURES)


def count(kind: str, n: int = 1) -> None:
    FIGURES["faults"][kind] = FIGURES["faults"].get(kind, 0) + n
    mark(f"fault: {kind}")


def outcome(what: str, n: int = 1) -> None:
    FIGURES["outcomes"][what] = FIGURES["outcomes"].get(what, 0) + n


_T0 = [0.0]


def mark(what: str) -> None:
    """A timeline on stdout (shown by pytest for a failing test, or with -s)."""
    print(f"[{time.monotonic() - _T0[0]:6.2f} s] {what}", flush=True)


@pytest.fixture(autouse=True)
def control_plane_back(sandbox: Any) -> Iterator[None]:
    """Whatever a test did, every component is running and healthy when it ends: a paused one gets
    SIGCONT, one that is down (a test interrupted half-way) is started as it ran when the test began."""
    _T0[0] = time.monotonic()
    launches = {name: faults.launch_of(name) for name in up.COMPONENTS}
    yield
    for name in up.COMPONENTS:
        pid = up.alive(name)
        if pid is not None:
            os.kill(pid, signal.SIGCONT)
    for name in up.COMPONENTS:
        faults.ensure_running(name, launches[name])


class Admin:
    """Direct GETs with the admin certificate (no kubectl: a poll every few milliseconds)."""

    def __init__(self) -> None:
        state = up.load_state()
        self.port = state["ports"]["api"]
        self.ctx = faults.admin_context()
        self.conn: http.client.HTTPSConnection | None = None

    def get(self, path: str) -> tuple[int, Any]:
        """(status, object); status 0 when there was no answer (the server is down, or was restarted)."""
        for _ in range(2):  # a kept-alive connection to a server that was restarted fails once
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=5)
                self.conn.request("GET", path)
                r = self.conn.getresponse()
                body = r.read()
                return r.status, (json.loads(body) if r.status == 200 else None)
            except (OSError, http.client.HTTPException, ValueError):
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
        return 0, None

    def items(self, tool: Tool, plural: str, group: str = "batch/v1") -> list[dict[str, Any]]:
        prefix = "/api/v1" if group == "v1" else f"/apis/{group}"
        path = f"{prefix}/namespaces/{tool.namespace}/{plural}"
        status, obj = wait_until(lambda: (lambda r: r if r[0] == 200 else None)(self.get(path)), 30,
                                 f"a list of {plural}", interval=0.2, quiet=True)
        return list(obj["items"])


def spawn(tool: Tool, *argv: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start an installed command as the tool (like Tool.run, without waiting)."""
    FIGURES["processes"] += 1
    return tool.start(*argv, env=env, stdin=subprocess.DEVNULL)


def stop(procs: list[subprocess.Popen[str]]) -> None:
    """Kill what is still running (a test that failed half-way leaves nothing behind)."""
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def finish(procs: list[subprocess.Popen[str]], timeout: float = 120) -> list[tuple[int, str, str]]:
    deadline = time.monotonic() + timeout
    out = []
    for p in procs:
        try:
            so, se = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            so, se = p.communicate()
            raise AssertionError(f"{p.args} still running after {timeout:.0f} s: {so!r} {se!r}") from None
        out.append((p.returncode, so, se))
    mark(f"{len(procs)} process(es) ended: exit codes {sorted(r[0] for r in out)}")
    return out


def gridshim_jobs(admin: Admin, tool: Tool, name: str | None = None) -> list[dict[str, Any]]:
    jobs = admin.items(tool, "jobs")
    return [j for j in jobs if name is None or (j["metadata"].get("annotations") or {}).get("gridshim.io/name") == name]


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1,
               quiet: bool = False) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            if not quiet:
                mark(what)
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def all_started(admin: Admin, tool: Tool, n: int) -> bool:
    """N jobs, each with a pod that runs or ran (a short one may have ended already)."""
    jobs = gridshim_jobs(admin, tool)
    return len(jobs) == n and all(any((j.get("status") or {}).get(k) for k in ("ready", "succeeded", "failed"))
                                  for j in jobs)


def crontab_serial(admin: Admin, tool: Tool) -> tuple[str | None, str]:
    """The stored crontab's serial (None: no crontab), and the ConfigMap's path."""
    path = f"/api/v1/namespaces/{tool.namespace}/configmaps/gridshim-crontab"
    status, cm = admin.get(path)
    return (cm["metadata"]["annotations"]["gridshim.io/crontab-serial"] if status == 200 else None), path


# -- -sync y waiters across an API-server kill -------------------------------------------------------

def start_waiters(tool: Tool, n: int, *, sleep: Callable[[int], float], env: dict[str, str] | None = None,
                  ) -> list[subprocess.Popen[str]]:
    procs = [spawn(tool, "jsub", "-sync", "y", "-N", f"w{i}", "/bin/sh", "-c", f"sleep {sleep(i)}; exit {10 + i}",
                   env=env) for i in range(n)]
    return procs


def check_waiters(tool: Tool, results: list[tuple[int, str, str]]) -> None:
    wrong = []
    for i, (code, so, se) in enumerate(results):
        assert not CLEAN.search(so + se), se
        err = (tool.home / f"w{i}.err").read_text() if (tool.home / f"w{i}.err").exists() else ""
        if code != 10 + i or not re.search(rf"Job \d{{7}} exited with exit code {10 + i}\.", err):
            wrong.append((i, code, (se + err).strip().splitlines()[-1:]))
    outcome("sync waiter: the job's own exit code", len(results) - len(wrong))
    assert not wrong, f"{len(wrong)} of {len(results)} waiters did not exit with their job's code: {wrong}"


def waiters_across_a_kill(tool: Tool, n: int, *, sleep: Callable[[int], float], down: float, what: str,
                          env: dict[str, str] | None = None) -> None:
    """N `jsub -sync y` waiters whose jobs sleep SLEEP(i) s; the kube-apiserver is SIGKILLed once all run
    and started again after DOWN s; every waiter must exit with its own job's code."""
    admin = Admin()
    procs = start_waiters(tool, n, sleep=sleep, env=env)
    try:
        wait_until(lambda: all_started(admin, tool, n), 60, f"{n} jobs running")
        with faults.killed("kube-apiserver", down=down):
            count(what)
        results = finish(procs)
    finally:
        stop(procs)
    check_waiters(tool, results)


@pytest.mark.needs_sandbox("stops and restarts the sandbox's own processes (kube-apiserver, etcd, node agent)")
def test_sync_waiters_across_an_api_server_kill_and_restart(make_tool: Callable[..., Tool], sandbox: Any) -> None:
    """20 `jsub -sync y` waiters; the kube-apiserver is SIGKILLed while their jobs run and started again
    after 2 s. Some jobs end while it is down, the rest after; every waiter exits with its job's code."""
    waiters_across_a_kill(make_tool("fw"), 20, sleep=lambda i: 2 + (i % 4) * 1.5, down=2.0,  # most end while down
                          what="kube-apiserver SIGKILL + restart after 2 s")


@pytest.mark.needs_sandbox("stops and restarts the sandbox's own processes (kube-apiserver, etcd, node agent)")
def test_sync_waiters_outlast_the_retry_budget(make_tool: Callable[..., Tool], sandbox: Any) -> None:
    """The API server is down longer than the waiters' whole retry budget (2 s here, 30 s by default):
    they keep waiting with capped back-off and report the job's real exit code when it is back."""
    waiters_across_a_kill(make_tool("fb"), 5, sleep=lambda i: 3 + i, down=5.0, env={"GRIDSHIM_RETRY_SECONDS": "2"},
                          what="kube-apiserver SIGKILL + restart after 5 s (budget 2 s)")


# -- -once racing across a restart ---------------------------------------------------------------------

@pytest.mark.needs_sandbox("stops and restarts the sandbox's own processes (kube-apiserver, etcd, node agent)")
def test_thirty_once_submissions_across_a_restart(make_tool: Callable[..., Tool], sandbox: Any) -> None:
    """30 `jsub -once -N same` start while the API server is down and meet it as it comes back (its
    403 window): exactly one Job, and every other submission is told "already active"."""
    tool, admin = make_tool("fo"), Admin()
    with faults.killed("kube-apiserver", down=2.0):
        count("kube-apiserver SIGKILL + restart after 2 s")
        procs = [spawn(tool, "jsub", "-once", "-N", "same", "/bin/sleep", "120") for _ in range(30)]
        results = finish(procs)
    for _code, so, se in results:
        assert not CLEAN.search(so + se), se
    winners = [r for r in results if r[0] == 0]
    assert len(winners) == 1, [r for r in results if r[0] != 1]
    assert re.fullmatch(r'Your job \d{7} \("same"\) has been submitted\n', winners[0][1]), winners[0]
    losers = [r for r in results if r[0] != 0]
    assert {r[0] for r in losers} == {1} and all(r[1] == "" and r[2] == "" for r in losers), losers
    refusals = (tool.home / "same.err").read_text().splitlines()
    assert len(refusals) == 29 and all(line.endswith("] there is a job named 'same' already active")
                                       for line in refusals), refusals
    assert len(gridshim_jobs(admin, tool, "same")) == 1
    outcome("-once racer: one job / 'already active'", 30)


# -- crontab FILE interrupted by a restart ---------------------------------------------------------------

def cron_text(tag: str, n: int) -> str:
    return "".join(f"{(7 * i) % 60} 4 * * * jsub -once -N {tag}{i} /bin/true\n" for i in range(n))


def crontab_names(admin: Admin, tool: Tool) -> list[str]:
    return sorted(c["metadata"]["annotations"]["gridshim.io/name"] for c in admin.items(tool, "cronjobs"))


N_CRON = 100


@pytest.mark.needs_sandbox("stops and restarts the sandbox's own processes (kube-apiserver, etcd, node agent)")
@pytest.mark.parametrize("down,budget", [(2.0, None), (5.0, "2")], ids=["down-2s", "down-5s-budget-2s"])
def test_crontab_install_interrupted_by_a_restart(make_tool: Callable[..., Tool], sandbox: Any,
                                                  down: float, budget: str | None) -> None:
    """`crontab FILE` replaces a 100-entry crontab by another; the API server is SIGKILLed in the middle
    of the reconcile (after the new text was committed, once its first CronJob write is seen), while 8
    connections delete and create CronJobs. Without `crontab --sync`, the CronJobs are then exactly the
    stored crontab's: none of the replaced entries stays scheduled, none of the new ones is missing."""
    tool, admin = make_tool("fc"), Admin()
    old, new = cron_text("a", N_CRON), cron_text("b", N_CRON)
    r = tool.run("crontab", "-", input=old)
    assert r.returncode == 0, r.stderr
    write(tool, "new.cron", new)
    serial, _ = crontab_serial(admin, tool)
    before = crontab_names(admin, tool)
    proc = spawn(tool, "crontab", "new.cron", env={"GRIDSHIM_RETRY_SECONDS": budget} if budget else None)
    try:
        wait_until(lambda: crontab_serial(admin, tool)[0] not in (serial, None), 60, "the new crontab to be committed",
                   interval=0.002)
        wait_until(lambda: crontab_names(admin, tool) != before, 60, "the reconcile's first write", interval=0.002)
        assert proc.poll() is None, "the install ended before the fault: nothing was interrupted"
        with faults.killed("kube-apiserver", down=down):
            count(f"kube-apiserver SIGKILL + restart after {down:g} s" + (f" (budget {budget} s)" if budget else ""))
        (code, so, se), = finish([proc])
    finally:
        stop([proc])
    assert not CLEAN.search(so + se), se
    stored = tool.run("crontab", "-l")
    assert stored.stdout == new, (code, se)
    names = crontab_names(admin, tool)
    left = [n for n in names if n.startswith("a")]
    assert names == sorted(f"b{i}" for i in range(N_CRON)), (
        code, se, f"{len(left)} replaced entries still scheduled, {N_CRON - len(names) + len(left)} new ones missing")
    assert code == 0, se
    outcome("interrupted crontab FILE: exactly the stored crontab's CronJobs")


# -- a wrong kubeconfig is still refused at once, even across a restart -----------------------------------

@pytest.mark.needs_sandbox("stops and restarts the sandbox's own processes (kube-apiserver, etcd, node agent)")
def test_a_real_403_is_reported_promptly_even_right_after_a_restart(make_tool: Callable[..., Tool],
                                                                     sandbox: Any, tmp_path: Any) -> None:
    """The transient-403 rule must not hide a wrong kubeconfig: tool B's certificate pointed at tool A's
    namespace gets the "wrong kubeconfig" line within a second when the server is up, and as soon as
    the restarted server is ready when it was started during a restart."""
    a, b = make_tool("fa"), make_tool("fz")
    cfg = yaml.safe_load(open(b.kubeconfig))
    cfg["contexts"][0]["context"]["namespace"] = a.namespace
    wrong = b.home / ".kube" / "wrong"
    wrong.write_text(yaml.safe_dump(cfg))
    os.chown(wrong, b.uid, b.uid)
    env = {"KUBECONFIG": str(wrong)}

    def refused(proc: tuple[int, str, str]) -> None:
        code, so, se = proc
        assert code == 1 and so == "", (code, so, se)
        assert re.fullmatch(r"\[[^]]*\] not allowed: .*forbidden: User \"" + b.name + r"\" .*\(is " + re.escape(str(wrong))
                            + r" the kubeconfig of the tool that owns this\?[^\n]*\)\n", se), se

    t0 = time.monotonic()
    refused(finish([spawn(b, "jsub", "-stderr", "-N", "x", "/bin/true", env=env)])[0])
    assert time.monotonic() - t0 < 3.0
    bg = faults.restart_later("kube-apiserver", after=0.0, down=1.0)
    try:
        wait_until(lambda: bg.result.killed_at, 10, "the kill", interval=0.005)
        procs = [spawn(b, "jsub", "-stderr", "-N", "x", "/bin/true", env=env) for _ in range(5)]
        results = finish(procs)
        ended = time.monotonic()
    finally:
        r = bg.join()
    count("kube-apiserver SIGKILL + restart after 1 s")
    for res in results:
        refused(res)
    # They were refused by the ready server, not by the starting one: a few seconds after it was ready.
    assert ended - r.ready_at < 5.0, ended - r.ready_at
    assert gridshim_jobs(Admin(), a) == []
    outcome("wrong kubeconfig across a restart: refused", len(results) + 1)


# -- etcd paused -------------------------------------------------------------------------------------------

@pytest.mark.needs_sandbox("stops and restarts the sandbox's own processes (kube-apiserver, etcd, node agent)")
def test_etcd_paused_under_waiters_a_crontab_install_and_a_submission(make_tool: Callable[..., Tool],
                                                                      sandbox: Any) -> None:
    """etcd is stopped (SIGSTOP) for 6 s the moment a `crontab FILE` has committed its new text, while
    -sync waiters wait and a job is submitted. The API server keeps running and keeps its connections,
    but every quorum read and every write hangs; the crontab's and the waiters' retry budget is 2 s.
    After SIGCONT: the CronJobs are exactly the stored crontab's, every waiter reports its job's code,
    and the submission made exactly one job."""
    tool, admin = make_tool("fe"), Admin()
    r = tool.run("crontab", "-", input=cron_text("a", 40))
    assert r.returncode == 0, r.stderr
    write(tool, "new.cron", cron_text("b", 40))
    procs = start_waiters(tool, 5, sleep=lambda i: 3 + i, env={"GRIDSHIM_RETRY_SECONDS": "2"})
    try:
        wait_until(lambda: all_started(admin, tool, 5), 60, "5 jobs running")
        serial, path = crontab_serial(admin, tool)
        cron = spawn(tool, "crontab", "new.cron", env={"GRIDSHIM_RETRY_SECONDS": "2"})
        wait_until(lambda: crontab_serial(admin, tool)[0] not in (serial, None), 60, "the new crontab to be committed",
                   interval=0.002)
        with faults.paused("etcd"):
            count("etcd SIGSTOP for 6 s")
            late = spawn(tool, "jsub", "-sync", "y", "-N", "late", "/bin/sh", "-c", "exit 4")
            time.sleep(6.0)
        mark("etcd SIGCONT")
        results = finish(procs)
        (ccode, cout, cerr), (lcode, lout, lerr) = finish([cron, late])
    finally:
        stop(procs)
    assert not CLEAN.search(cerr + lerr), cerr + lerr
    names = crontab_names(admin, tool)
    assert names == sorted(f"b{i}" for i in range(40)), (
        ccode, cerr, f"{len([n for n in names if n.startswith('a')])} replaced entries still scheduled")
    assert ccode == 0, cerr
    outcome("crontab FILE under an etcd pause: exactly the stored crontab's CronJobs")
    check_waiters(tool, results)
    assert lcode == 4, (lout, lerr)
    assert len(gridshim_jobs(admin, tool, "late")) == 1


# -- the node agent killed --------------------------------------------------------------------------------

@pytest.mark.needs_sandbox("stops and restarts the sandbox's own processes (kube-apiserver, etcd, node agent)")
@pytest.mark.parametrize("with_api", [False, True], ids=["agent", "agent-and-api-server"])
def test_node_agent_killed_and_restarted(make_tool: Callable[..., Tool], sandbox: Any, with_api: bool) -> None:
    """The node agent (our kubelet) is SIGKILLed while jobs run under `-sync y` waiters, and a job
    is submitted while it is down; in the second variant the kube-apiserver dies in the same moment (the
    host of a one-node cluster going down). Both come back after 2 s. The agent marks the lost pod
    Failed: each waiter gets the signal line and exit 1 (never "Unable to run job", exit 0); the job
    submitted meanwhile runs and reports its own code; a continuous job gets a new pod and runs on."""
    tool, admin = make_tool("fn"), Admin()
    waiters = [spawn(tool, "jsub", "-sync", "y", "-N", f"lost{i}", "/bin/sleep", "60") for i in range(4)]
    cont = tool.run("jstart", "-N", "bot", "/bin/sleep", "600")
    assert cont.returncode == 0, cont.stderr
    try:
        wait_until(lambda: all_started(admin, tool, 5), 60, "the jobs running")
        with contextlib.ExitStack() as faulted:
            faulted.enter_context(faults.killed("agent", down=2.0))
            if with_api:
                faulted.enter_context(faults.killed("kube-apiserver", down=2.0))
            count("node agent SIGKILL + restart after 2 s" + (", with the kube-apiserver" if with_api else ""))
            meanwhile = spawn(tool, "jsub", "-sync", "y", "-N", "meanwhile", "/bin/sh", "-c", "exit 6")
        *lost, (mcode, mout, merr) = finish([*waiters, meanwhile])
    finally:
        stop(waiters)
    wrong = []
    for i, (wcode, _wout, werr) in enumerate(lost):
        assert not CLEAN.search(werr), werr
        err = (tool.home / f"lost{i}.err").read_text()
        if wcode != 1 or not re.search(r"Job \d{7} exited because of signal SIGKILL", err):
            wrong.append((i, wcode, err.strip().splitlines()[-1:]))
    assert not wrong, wrong
    assert mcode == 6, (mout, merr, (tool.home / "meanwhile.err").read_text())
    outcome("node agent restart: a waiter got the signal line, the queued job its own code", len(lost) + 1)

    def bot_running_again() -> bool:
        bots = gridshim_jobs(admin, tool, "bot")
        pods = admin.items(tool, "pods", group="v1")
        live = [p for p in pods if p["metadata"]["labels"].get("batch.kubernetes.io/controller-uid")
                == bots[0]["metadata"]["uid"] and p["status"].get("phase") == "Running"]
        return len(bots) == 1 and bool(live)
    if not with_api:  # the Job controller's back-off for a failed pod (10 s) is the wait here
        wait_until(bot_running_again, 60, "the continuous job running on a new pod")
        outcome("node agent restart: the continuous job respawned")
