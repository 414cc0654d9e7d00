"""Faults on the sandbox's real components: kill one and start it again exactly as it ran, pause one.

    python -m sandbox.faults restart kube-apiserver [--down 2] [--signal KILL]
    python -m sandbox.faults pause etcd --seconds 5
    python -m sandbox.faults show kube-apiserver      # the argv, cwd and environment it runs with

A component is restarted with the argv, environment and working directory of the process that
ran it, read from /proc/PID/{cmdline,environ,cwd} before it is killed, so it comes back with the
same flags and ports (etcd keeps its data: only the process that is named goes). Its output is
appended to the same .sandbox/logs/NAME.log and its pid file is rewritten, so `sandbox.up status`
and `sandbox.up down` keep working. Used by tests/e2e/test_faults_real.py:

    with faults.killed("kube-apiserver", down=2.0):      # SIGKILL now; started again after 2 s,
        ...                                              # always, even if the body fails
    r = faults.restart_later("kube-apiserver", after=1.0, down=2.0)   # in a thread
    ...; r.join()                                        # started again and ready
    with faults.paused("etcd"):                          # SIGSTOP, SIGCONT on the way out
        ...

Only processes recorded in this sandbox's pid files are touched (up.alive checks the command
line too), never anything found by name.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sandbox import up  # noqa: E402

# The API server's own clients in the sandbox. After it was killed, client-go's reflectors in these wait
# out an exponential back-off (up to 30 s, growing with each failure in two minutes) before they list
# again, so for a while Jobs get no pods and finished pods no Job status. `restart` therefore starts them
# afresh (SIGTERM, the same argv) once the API server is ready again, unless told not to: what gridshim
# meets (refused connections, the 403 window, /readyz 500) is unchanged, and the suite stays fast.
API_CLIENTS = ("kube-controller-manager", "kube-scheduler")


class FaultError(RuntimeError):
    """A component is not running, did not die, or did not come back."""


@dataclass(frozen=True)
class Launch:
    """How a component's process was started: enough to start it again the same way."""

    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: str


@dataclass
class Restart:
    """Times (time.monotonic) of one kill + start; `ready_at` once it answers its health check."""

    name: str
    down: float
    killed_at: float = 0.0
    started_at: float = 0.0
    ready_at: float = 0.0
    old_pid: int = 0
    pid: int = 0
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def ready_after(self) -> float:
        """Seconds from the start of the new process to its first healthy answer."""
        return self.ready_at - self.started_at


def _pid(name: str) -> int:
    if name not in up.COMPONENTS:
        raise FaultError(f"unknown component {name!r} (one of {', '.join(up.COMPONENTS)})")
    pid = up.alive(name)
    if pid is None:
        raise FaultError(f"{name} is not running in {up.STATE}")
    return pid


def launch_of(name: str) -> Launch:
    """The argv, environment and cwd of the running component NAME."""
    pid = _pid(name)
    proc = Path(f"/proc/{pid}")
    argv = [a.decode() for a in proc.joinpath("cmdline").read_bytes().split(b"\0") if a]
    env: dict[str, str] = {}
    for item in proc.joinpath("environ").read_bytes().split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            env[key.decode(errors="surrogateescape")] = value.decode(errors="surrogateescape")
    return Launch(name=name, argv=argv, env=env, cwd=os.readlink(proc / "cwd"))


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return True
    return stat[0] in ("Z", "X")


def kill(name: str, sig: int = signal.SIGKILL, *, timeout: float = 20.0) -> tuple[Launch, int]:
    """Send SIG to component NAME and wait until its process is gone; returns (its Launch, its pid)."""
    launch = launch_of(name)
    pid = _pid(name)
    os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while not _gone(pid):
        if time.monotonic() > deadline:
            raise FaultError(f"{name} (pid {pid}) did not exit within {timeout:.0f} s of signal {sig}")
        time.sleep(0.01)
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)  # reap it if this process started it (an earlier restart)
    return launch, pid


def start(launch: Launch) -> int:
    """Start LAUNCH again (same argv, env, cwd), output appended to its log; returns the new pid."""
    if up.alive(launch.name):
        raise FaultError(f"{launch.name} is already running")
    (up.STATE / "logs").mkdir(parents=True, exist_ok=True)
    with open(up.STATE / "logs" / f"{launch.name}.log", "ab") as logf:
        logf.write(f"\n[sandbox.faults {time.strftime('%H:%M:%S')}] started again\n".encode())
        logf.flush()
        p = subprocess.Popen(launch.argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True, cwd=launch.cwd, env=launch.env)
    up.pidfile(launch.name).write_text(str(p.pid))
    return p.pid


def admin_context() -> ssl.SSLContext:
    pki = up.STATE / "pki"
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    return ctx


def _status(url: str, ctx: ssl.SSLContext | None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=3) as r:  # loopback only
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""
    except OSError:
        return 0, b""


def healthy(name: str, *, since: float | None = None) -> bool:
    """Whether component NAME answers its health check (the agent: renewed its Lease after SINCE, wall clock)."""
    state = up.load_state()
    ports = state["ports"]
    if name == "etcd":
        return _status(f"http://127.0.0.1:{ports['etcd']}/health", None)[0] == 200
    if name == "kube-apiserver":
        return _status(f"{state['server']}/readyz", admin_context())[0] == 200
    if name in ("kube-controller-manager", "kube-scheduler"):
        insecure = ssl._create_unverified_context()  # their self-signed serving certs, loopback
        port = ports["kcm" if name == "kube-controller-manager" else "sched"]
        return _status(f"https://127.0.0.1:{port}/healthz", insecure)[0] == 200
    if name == "agent":
        code, body = _status(f"{state['server']}/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/"
                             f"leases/{up.NODE}", admin_context())
        if code != 200:
            return False
        renew = (json.loads(body).get("spec") or {}).get("renewTime") or ""
        try:
            at = time.mktime(time.strptime(renew[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
        except ValueError:
            return False
        return since is None or at + 1 >= since  # renewTime has microseconds; the second is enough
    raise FaultError(f"unknown component {name!r}")


def wait_ready(name: str, *, timeout: float = 90.0, since: float | None = None) -> float:
    """Wait until NAME is healthy; returns the seconds waited."""
    t0 = time.monotonic()
    while not healthy(name, since=since):
        if up.alive(name) is None:
            raise FaultError(f"{name} exited after its restart; see {up.STATE}/logs/{name}.log")
        if time.monotonic() - t0 > timeout:
            raise FaultError(f"{name} not healthy {timeout:.0f} s after its restart; see {up.STATE}/logs/{name}.log")
        time.sleep(0.05)
    return time.monotonic() - t0


def restart(name: str, down: float = 2.0, *, sig: int = signal.SIGKILL, ready: bool = True,
            result: Restart | None = None, refresh_clients: bool = True) -> Restart:
    """Kill NAME with SIG, leave it down for DOWN seconds, start it again exactly as it ran.

    Started again even when the wait is interrupted; with READY, returns once it is healthy. For the
    kube-apiserver with REFRESH_CLIENTS, the controller manager and scheduler are then restarted too
    (see API_CLIENTS)."""
    r = result or Restart(name=name, down=down)
    launch, r.old_pid = kill(name, sig)
    r.killed_at = time.monotonic()
    wall = time.time()
    try:
        time.sleep(down)
    finally:
        r.pid = start(launch)
        r.started_at = time.monotonic()
    if ready:
        wait_ready(name, since=wall)
        r.ready_at = time.monotonic()
        if name == "kube-apiserver" and refresh_clients:
            refresh(API_CLIENTS)
    return r


def refresh(names: tuple[str, ...] | list[str]) -> None:
    """Restart each of NAMES gracefully (SIGTERM, then the same argv at once) and wait until healthy."""
    for n in names:
        if up.alive(n) is not None:
            launch, _ = kill(n, signal.SIGTERM)
            start(launch)
    for n in names:
        wait_ready(n)


class Background:
    """restart() in a thread, AFTER seconds from now; join() waits until NAME is back and healthy."""

    def __init__(self, name: str, *, after: float, down: float, sig: int = signal.SIGKILL) -> None:
        self.result = Restart(name=name, down=down)
        self._thread = threading.Thread(target=self._run, args=(after, sig), daemon=True,
                                        name=f"restart-{name}")
        self._thread.start()

    def _run(self, after: float, sig: int) -> None:
        try:
            time.sleep(after)
            restart(self.result.name, self.result.down, sig=sig, result=self.result)
        except BaseException as e:  # noqa: BLE001  (reported by join)
            self.result.error = e
        finally:
            self.result.done.set()

    def join(self, timeout: float = 120.0) -> Restart:
        self._thread.join(timeout)
        ensure_running(self.result.name)
        if self.result.error is not None:
            raise FaultError(f"restarting {self.result.name} failed: {self.result.error}") from self.result.error
        return self.result


def restart_later(name: str, *, after: float = 0.0, down: float = 2.0, sig: int = signal.SIGKILL) -> Background:
    return Background(name, after=after, down=down, sig=sig)


def ensure_running(name: str, launch: Launch | None = None) -> None:
    """The safety net for `finally:`: NAME is running and healthy again (started from LAUNCH if it is down)."""
    if up.alive(name) is None:
        if launch is None:
            raise FaultError(f"{name} is down and there is no recorded launch to start it from")
        start(launch)
    wait_ready(name)


@contextlib.contextmanager
def killed(name: str, *, down: float = 2.0, sig: int = signal.SIGKILL) -> Iterator[Restart]:
    """Kill NAME on entry; it is started again DOWN seconds later by a thread, and on exit at the latest.

    The body runs while it is down and while it comes back; on exit NAME is running and healthy."""
    launch = launch_of(name)
    bg = Background(name, after=0.0, down=down, sig=sig)
    try:
        while not bg.result.killed_at and not bg.result.done.is_set():
            time.sleep(0.005)
        yield bg.result
    finally:
        bg._thread.join(down + 120)
        ensure_running(name, launch)
    if bg.result.error is not None:
        raise FaultError(f"restarting {name} failed: {bg.result.error}") from bg.result.error


def pause(name: str) -> int:
    """SIGSTOP the component NAME (it keeps its sockets; clients hang); returns its pid."""
    pid = _pid(name)
    os.kill(pid, signal.SIGSTOP)
    return pid


def resume(name: str, pid: int | None = None) -> None:
    """SIGCONT the component NAME (or PID, the one pause returned)."""
    os.kill(pid if pid is not None else _pid(name), signal.SIGCONT)


@contextlib.contextmanager
def paused(name: str) -> Iterator[int]:
    """NAME stopped with SIGSTOP for the body, continued with SIGCONT on the way out, whatever happens."""
    pid = pause(name)
    try:
        yield pid
    finally:
        resume(name, pid)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="sandbox.faults")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("restart", help="kill a component and start it again exactly as it ran")
    r.add_argument("name", choices=up.COMPONENTS)
    r.add_argument("--down", type=float, default=2.0, help="seconds it stays down (default 2)")
    r.add_argument("--signal", default="KILL", help="KILL (default) or TERM")
    s = sub.add_parser("pause", help="SIGSTOP a component for some seconds, then SIGCONT")
    s.add_argument("name", choices=up.COMPONENTS)
    s.add_argument("--seconds", type=float, default=5.0)
    w = sub.add_parser("show", help="print how a component runs (argv, cwd)")
    w.add_argument("name", choices=up.COMPONENTS)
    args = p.parse_args(argv)
    if args.cmd == "restart":
        res = restart(args.name, args.down, sig=getattr(signal, f"SIG{args.signal.upper()}"))
        print(f"{args.name}: pid {res.old_pid} killed, down {res.down:g} s, pid {res.pid} ready "
              f"{res.ready_after:.2f} s after its start")
    elif args.cmd == "pause":
        with paused(args.name) as pid:
            time.sleep(args.seconds)
        print(f"{args.name}: pid {pid} paused for {args.seconds:g} s")
    else:
        launch = launch_of(args.name)
        print(json.dumps({"argv": launch.argv, "cwd": launch.cwd}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
