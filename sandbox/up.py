"""Start, stop and inspect the sandbox: a real Kubernetes control plane on loopback plus our node agent.

    python -m sandbox.up up        # idempotent; prints what it started; writes .sandbox/env
    python -m sandbox.up down      # stops only the processes it started (by pid)
    python -m sandbox.up status
    python -m sandbox.up add-tool NAME [--uid N]

Everything lives under .sandbox/ in the repository (ignored by git); binaries come from sandbox/build.sh.
`--dir DIR` (before or after the command; or $SANDBOX_DIR) runs a second, independent instance there:
its own etcd, ports, CA and certificates, node name and tool uids, sharing only the built binaries.
`up --no-cronjobs` starts its kube-apiserver without batch/v1 CronJobs; `up --api-only` starts etcd,
kube-apiserver and the controller manager only (no scheduler, no node: nothing runs).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sandbox import pki, tenancy  # noqa: E402

DEFAULT_STATE = REPO / ".sandbox"
STATE = Path(os.environ.get("SANDBOX_DIR", DEFAULT_STATE)).resolve()
NODE = "sandbox-node"
# Tool uids like Toolforge's tool accounts (> 50000, so jsub's default umask is 007).
DEMO_UID, OTHER_UID = 52001, 52002
# A second instance's tools get uids from here on (the uid is a tool's tenancy on this machine, where
# both instances' pods run: the two must never hand one uid to two tools).
SECOND_UID_BASE = 53000
# Order matters: start in this order, stop in reverse (the agent first, so pods die before the API).
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "agent")
# --api-only: what the API needs to admit pods (the controller manager makes each namespace's
# ServiceAccount), without a scheduler or node.
API_ONLY = COMPONENTS[:3]
# kube-apiserver's resource-level switch for the API that `up --no-cronjobs` leaves out.
NO_CRONJOBS = "--runtime-config=batch/v1/cronjobs=false"


def use_dir(path: str | Path) -> None:
    """Point every command of this module at the instance in PATH (a second sandbox)."""
    global STATE
    STATE = Path(path).resolve()


def is_default() -> bool:
    return STATE == DEFAULT_STATE.resolve()


def node_name() -> str:
    """The default instance's node is sandbox-node; another's carries its directory's name."""
    if is_default():
        return NODE
    tail = "".join(ch if ch.isalnum() else "-" for ch in STATE.name.lower()).strip("-")[:40] or "x"
    return f"{NODE}-{tail}"


def log(msg: str) -> None:
    print(f"[sandbox {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build() -> Path:
    out = subprocess.run(["bash", str(REPO / "sandbox/build.sh")], stdout=subprocess.PIPE, text=True, check=True)
    return Path(out.stdout.strip().splitlines()[-1])


def tool_uid_default(name: str) -> int:
    """Sandbox tools get fixed uids; when not root, every tool runs as the invoking user."""
    if os.geteuid() != 0:
        return os.geteuid()
    shift = 0 if is_default() else SECOND_UID_BASE - 52000
    return {"demo": DEMO_UID + shift, "other": OTHER_UID + shift}.get(name, 0)


# -- processes -----------------------------------------------------------------------------------

def pidfile(name: str) -> Path:
    return STATE / "pids" / f"{name}.pid"


def alive(name: str) -> int | None:
    """PID of component NAME if it is running and really ours (cmdline check guards pid reuse)."""
    try:
        pid = int(pidfile(name).read_text())
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    marker = b"agent.py" if name == "agent" else name.encode()
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    if marker not in cmd or stat[0] == "Z":
        return None
    return pid


def spawn(name: str, argv: list[str]) -> int:
    (STATE / "logs").mkdir(parents=True, exist_ok=True)
    (STATE / "pids").mkdir(parents=True, exist_ok=True)
    with open(STATE / "logs" / f"{name}.log", "ab") as logf:
        p = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True, cwd=STATE)
    pidfile(name).write_text(str(p.pid))
    return p.pid


def wait_http(url: str, *, ctx: ssl.SSLContext | None = None, timeout: float = 120, what: str) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | str = "no answer"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, context=ctx, timeout=5) as r:  # loopback only
                if r.status == 200:
                    return
        except Exception as e:  # noqa: BLE001  (any failure means "not ready yet")
            last = e
        time.sleep(0.2)
    raise SystemExit(f"sandbox: {what} did not become ready in {timeout:.0f}s ({last}); see {STATE}/logs/")


def stop(name: str, grace: float = 15) -> bool:
    pid = alive(name)
    if pid is None:
        pidfile(name).unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while alive(name) and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive(name):
        os.kill(pid, signal.SIGKILL)
        while alive(name):
            time.sleep(0.05)
    pidfile(name).unlink(missing_ok=True)
    return True


# -- configuration files ---------------------------------------------------------------------------

def admin_clients() -> tuple[Any, Any]:
    from kubernetes import client, config
    from kubernetes.dynamic import DynamicClient

    api = config.new_client_from_config(str(STATE / "admin.kubeconfig"))
    return client.CoreV1Api(api), DynamicClient(api)


def write_site_config(home_root: Path, path: Path | None = None) -> Path:
    """The sandbox's site config, in STATE/gridshim.yaml unless PATH says where (the e2e suite's
    external mode writes the same one for a cluster that runs pods on this machine)."""
    cfg = {
        # The node agent runs pods on this machine, so the tool's home is simply the local path.
        "home": str(home_root / "{tool}"),
        # The cluster's own answer (the namespace's gridshim.io/uid annotation), never $HOME's owner or
        # anything else the caller controls; the uid policy refuses every other uid anyway.
        "uid": "namespace",
        "images": {"default": "sandbox.local/base:latest"},
        "volumes": [],
        "memory": {"default": "512M", "max": "16G"},
        "ttl_seconds": 300,
        # pods run on this machine, so the venv's gridshim is the one "inside the job image": a finished
        # job releases its -hold_jid successors itself (docs/site-config.md, release_command)
        "release_command": str(REPO / ".venv" / "bin" / "gridshim"),
    }
    path = path or STATE / "gridshim.yaml"
    path.write_text("# gridshim site config for the sandbox (written by sandbox/up.py)\n"
                    + yaml.safe_dump(cfg, sort_keys=False))
    return path


def write_env(state: dict[str, Any], bindir: Path) -> Path:
    homes = Path(state["home_root"])
    lines = {
        "KUBECONFIG": homes / "demo/.kube/config",
        "HOME": homes / "demo",
        "SANDBOX_TOOL_UID": state["tools"]["demo"],
        "SANDBOX_ADMIN_KUBECONFIG": STATE / "admin.kubeconfig",
        "SANDBOX_OTHER_KUBECONFIG": homes / "other/.kube/config",
        "SANDBOX_BIN": bindir,
        "SANDBOX_HOME_ROOT": homes,
        "GRIDSHIM_CONFIG": STATE / "gridshim.yaml",
    }
    text = "# source me: the sandbox as tool 'demo' (written by sandbox/up.py)\n"
    text += "".join(f"export {k}='{v}'\n" for k, v in lines.items())
    text += f"export PATH='{REPO / '.venv/bin'}:{bindir}':\"$PATH\"\n"
    path = STATE / "env"
    path.write_text(text)
    return path


# -- commands ----------------------------------------------------------------------------------------

def load_state() -> dict[str, Any]:
    try:
        return json.loads((STATE / "state.json").read_text())
    except (OSError, ValueError):
        return {}


def save_state(state: dict[str, Any]) -> None:
    (STATE / "state.json").write_text(json.dumps(state, indent=2))


def components(state: dict[str, Any]) -> tuple[str, ...]:
    """The components this instance runs (all five unless it was started with --api-only)."""
    return tuple(state.get("components") or COMPONENTS)


def cmd_up(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    state = load_state()
    extra = [NO_CRONJOBS] if getattr(args, "no_cronjobs", False) else []
    extra += list(getattr(args, "apiserver_arg", None) or [])
    wanted = API_ONLY if getattr(args, "api_only", False) else COMPONENTS
    if state and all(alive(c) for c in components(state)):
        if (tuple(state.get("apiserver_args") or ()), components(state)) != (tuple(extra), wanted):
            raise SystemExit(f"sandbox: {STATE} is running with other options (apiserver flags "
                             f"{state.get('apiserver_args') or 'none'}, components {', '.join(components(state))}); "
                             f"stop it first: python -m sandbox.up --dir {STATE} down")
        log(f"already running: apiserver {state['server']}")
        print(f"sandbox up: {STATE}/env")
        return 0
    for c in reversed(COMPONENTS):  # a half-running sandbox is restarted cleanly
        if stop(c):
            log(f"stopped stale {c}")
    bindir = build()
    STATE.mkdir(parents=True, exist_ok=True)
    pkidir = STATE / "pki"
    ca = pki.ensure_ca(pkidir)
    pki.ensure_leaf(pkidir, ca, "apiserver", cn="kube-apiserver", server=True)
    pki.ensure_leaf(pkidir, ca, "admin", cn="sandbox-admin", orgs=("system:masters",))

    ports = {k: free_port() for k in ("etcd", "peer", "api", "kcm", "sched")}
    server = f"https://127.0.0.1:{ports['api']}"
    admin = tenancy.kubeconfig_dict(server=server, ca_pem=(pkidir / "ca.crt").read_bytes(),
                                    cert=str(pkidir / "admin.crt"), key=str(pkidir / "admin.key"),
                                    user="sandbox-admin", namespace="default", context="sandbox-admin")
    (STATE / "admin.kubeconfig").write_text(yaml.safe_dump(admin, sort_keys=False))
    (STATE / "admin.kubeconfig").chmod(0o600)

    etcd_dir = STATE / "etcd"
    subprocess.run(["rm", "-rf", str(etcd_dir)], check=True)  # a fresh cluster on every start
    spawn("etcd", [str(bindir / "etcd"), "--name=sandbox", f"--data-dir={etcd_dir}",
                   f"--listen-client-urls=http://127.0.0.1:{ports['etcd']}",
                   f"--advertise-client-urls=http://127.0.0.1:{ports['etcd']}",
                   f"--listen-peer-urls=http://127.0.0.1:{ports['peer']}",
                   f"--initial-advertise-peer-urls=http://127.0.0.1:{ports['peer']}",
                   f"--initial-cluster=sandbox=http://127.0.0.1:{ports['peer']}",
                   "--unsafe-no-fsync", "--log-level=warn", "--quota-backend-bytes=4294967296"])
    wait_http(f"http://127.0.0.1:{ports['etcd']}/health", what="etcd", timeout=60)
    log(f"etcd ready on 127.0.0.1:{ports['etcd']}")

    spawn("kube-apiserver", [
        str(bindir / "kube-apiserver"), f"--etcd-servers=http://127.0.0.1:{ports['etcd']}",
        "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={ports['api']}",
        f"--tls-cert-file={pkidir / 'apiserver.crt'}", f"--tls-private-key-file={pkidir / 'apiserver.key'}",
        f"--client-ca-file={pkidir / 'ca.crt'}", "--authorization-mode=RBAC",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={pkidir / 'sa.pub'}", f"--service-account-signing-key-file={pkidir / 'sa.key'}",
        "--service-cluster-ip-range=10.0.0.0/24", "--endpoint-reconciler-type=none",
        "--allow-privileged=false", "--profiling=false", "--v=1", *extra])
    ctx = ssl.create_default_context(cafile=str(pkidir / "ca.crt"))
    wait_http(f"{server}/readyz", ctx=ctx, what="kube-apiserver", timeout=120)
    log(f"kube-apiserver ready on {server}")

    kubeconfig = str(STATE / "admin.kubeconfig")
    spawn("kube-controller-manager", [
        str(bindir / "kube-controller-manager"), f"--kubeconfig={kubeconfig}", "--leader-elect=false",
        "--bind-address=127.0.0.1", f"--secure-port={ports['kcm']}",
        f"--root-ca-file={pkidir / 'ca.crt'}", f"--service-account-private-key-file={pkidir / 'sa.key'}",
        f"--cluster-signing-cert-file={pkidir / 'ca.crt'}", f"--cluster-signing-key-file={pkidir / 'ca.key'}",
        "--use-service-account-credentials=false", "--profiling=false", "--v=1"])
    node = node_name()
    if "kube-scheduler" in wanted:
        spawn("kube-scheduler", [
            str(bindir / "kube-scheduler"), f"--kubeconfig={kubeconfig}", "--leader-elect=false",
            "--bind-address=127.0.0.1", f"--secure-port={ports['sched']}", "--profiling=false", "--v=1"])
    if "agent" in wanted:
        # the checkout (venvs, tool homes) is the nodes' image and home mount: seen by every pod even
        # when it lies under /tmp, which is private to each container; so is a second instance's own
        # directory (its tool homes), wherever it is
        shared = [REPO] + ([] if STATE.is_relative_to(REPO) else [STATE])
        spawn("agent", [str(REPO / ".venv/bin/python"), str(REPO / "sandbox/agent.py"),
                        f"--kubeconfig={kubeconfig}", f"--node={node}", f"--state-dir={STATE / 'agent'}",
                        *(f"--shared-path={p}" for p in shared), "--restart-backoff=2"])

    home_root = STATE / "data/project"
    home_root.mkdir(parents=True, exist_ok=True)
    for d in (STATE, STATE / "data", home_root):
        d.chmod(0o755)
    state = {"server": server, "ports": ports, "bin": str(bindir), "home_root": str(home_root),
             "node": node, "components": list(wanted), "apiserver_args": extra,
             "uid_base": 52100 if is_default() else SECOND_UID_BASE + 100,
             "tools": {"demo": tool_uid_default("demo"), "other": tool_uid_default("other")}}
    save_state(state)
    core, dyn = admin_clients()
    tenancy.ensure_clusterrole(dyn)
    tenancy.ensure_uid_policy(dyn)
    for name, uid in state["tools"].items():
        tenancy.ensure_tool(dyn, state=STATE, server=server, name=name, uid=uid, home_root=home_root)
    write_site_config(home_root)
    env = write_env(state, bindir)
    if "agent" in wanted:
        wait_node_ready(core, node)
    for name in state["tools"]:
        tenancy.wait_service_account(core, f"tool-{name}")
    tenancy.wait_uid_policy(core, "tool-demo", state["tools"]["demo"])
    log(f"node {node} Ready; tools: {', '.join(state['tools'])}" if "agent" in wanted
        else f"API only (no scheduler, no node); tools: {', '.join(state['tools'])}")
    log(f"up in {time.monotonic() - t0:.1f}s; pids: "
        + ", ".join(f"{c}={alive(c)}" for c in wanted)
        + (f"; kube-apiserver {' '.join(extra)}" if extra else ""))
    print(f"sandbox up: source {env}")
    return 0


def wait_node_ready(core: Any, name: str = NODE, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive("agent") is None:
            raise SystemExit(f"sandbox: the node agent exited; see {STATE}/logs/agent.log")
        try:
            node = core.read_node(name)
            if any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or []):
                return
        except Exception:  # noqa: BLE001  (not registered yet)
            pass
        time.sleep(0.3)
    raise SystemExit(f"sandbox: node {name} not Ready after {timeout:.0f}s; see {STATE}/logs/agent.log")


def cmd_down(_: argparse.Namespace) -> int:
    stopped = [c for c in reversed(COMPONENTS) if stop(c)]
    log("stopped " + (", ".join(stopped) if stopped else "nothing (not running)"))
    return 0


def cmd_status(_: argparse.Namespace) -> int:
    state = load_state()
    for c in components(state):
        print(f"{c:26} {'running, pid %d' % alive(c) if alive(c) else 'stopped'}")
    if state:
        print(f"{'apiserver':26} {state['server']}")
        if state.get("apiserver_args"):
            print(f"{'apiserver flags':26} {' '.join(state['apiserver_args'])}")
    return 0 if state and all(alive(c) for c in components(state)) else 1


def add_tool(name: str, *, uid: int | None = None, quota: dict[str, str] | None = None,
             limits: dict[str, Any] | None = None) -> tuple[Path, int]:
    """Provision tool NAME in the running sandbox (used by tests); returns (home, uid).

    Each tool gets a uid of its own: the uid is its tenancy (the uid policy lets a namespace's pods run
    only as its annotation's uid), so two test runs adding tools at once must never share one. The uid is
    chosen and recorded under a lock, then the tool is provisioned."""
    import fcntl

    with open(STATE / "state.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = load_state()
        if uid is None:
            uid = state["tools"].get(name) or (
                os.geteuid() if os.geteuid() != 0
                else max([state.get("uid_base", 52100), *state["tools"].values()]) + 1)
        state["tools"][name] = uid
        save_state(state)
    core, dyn = admin_clients()
    home = tenancy.ensure_tool(dyn, state=STATE, server=state["server"], name=name, uid=uid,
                               quota=quota, limits=limits, home_root=Path(state["home_root"]))
    tenancy.wait_service_account(core, f"tool-{name}")
    return home, uid


def main(argv: list[str] | None = None) -> int:
    where = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a --dir given before the command is not reset by the subcommand's own default
    where.add_argument("--dir", default=argparse.SUPPRESS,
                       help=f"the instance's state directory (default $SANDBOX_DIR or {DEFAULT_STATE})")
    p = argparse.ArgumentParser(prog="sandbox", parents=[where])
    sub = p.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("up", parents=[where])
    u.add_argument("--no-cronjobs", action="store_true",
                   help=f"start kube-apiserver without batch/v1 CronJobs ({NO_CRONJOBS})")
    u.add_argument("--api-only", action="store_true",
                   help="etcd, kube-apiserver and the controller manager only: no scheduler, no node")
    u.add_argument("--apiserver-arg", action="append", metavar="FLAG", help="one more kube-apiserver flag")
    u.set_defaults(fn=cmd_up)
    sub.add_parser("down", parents=[where]).set_defaults(fn=cmd_down)
    sub.add_parser("status", parents=[where]).set_defaults(fn=cmd_status)
    t = sub.add_parser("add-tool", parents=[where])
    t.add_argument("name")
    t.add_argument("--uid", type=int)
    t.set_defaults(fn=lambda a: print(add_tool(a.name, uid=a.uid)[0]) or 0)
    args = p.parse_args(argv)
    if getattr(args, "dir", None):
        use_dir(args.dir)
    return int(args.fn(args))


if __name__ == "__main__":
    sys.exit(main())
