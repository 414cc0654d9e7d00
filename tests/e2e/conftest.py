"""End-to-end fixtures: the real sandbox control plane, per-test tools, and running installed commands.

The session fixture starts the sandbox (`python -m sandbox.up up`) unless one is already running,
and stops it at the end only if it started it. These tests never skip: if the control plane cannot
start, they fail (and tests/conftest.py fails any test that skips).

External mode (GRIDSHIM_E2E_KUBECONFIG, tests/e2e/external.py, docs/testing.md): the same tests run
against an existing cluster, its tools set up through an admin kubeconfig. A test that needs what
only the sandbox gives says so with a marker, and is skipped there with that reason (`-ra` lists it):
`needs_sandbox(REASON)` (its processes, its CA key, its node agent, its state files) and
`needs_shared_home(REASON)` (the job's files in the tool's home, seen from here: skipped unless
GRIDSHIM_E2E_SHARED_HOME=1).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import external  # noqa: E402

EXTERNAL = external.configured()
# The sandbox's state directory; in external mode the work directory, which holds the site config
# (gridshim.yaml) the tests read as they read the sandbox's.
STATE = external.workdir() if EXTERNAL else REPO / ".sandbox"
VENV_BIN = REPO / ".venv" / "bin"

pytestmark = pytest.mark.e2e

MARKERS = {
    "needs_sandbox": "needs the local sandbox itself (its processes, CA key, node agent or state files); "
                     "skipped in external mode",
    "needs_shared_home": "reads or writes the job's files in the tool's home from here; skipped in external "
                         "mode unless GRIDSHIM_E2E_SHARED_HOME=1",
}


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}(reason): {text}")


def external_skip(item: pytest.Item) -> str | None:
    """Why ITEM cannot run against the external cluster, or None."""
    if not EXTERNAL:
        return None
    mark = item.get_closest_marker("needs_sandbox")
    if mark is not None:
        return f"external cluster: needs the sandbox: {mark.args[0] if mark.args else mark.name}"
    mark = item.get_closest_marker("needs_shared_home")
    if mark is not None and not external.shared_home():
        return (f"external cluster: needs the jobs' files seen from here (GRIDSHIM_E2E_SHARED_HOME=1): "
                f"{mark.args[0] if mark.args else mark.name}")
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for name in MARKERS:
            mark = item.get_closest_marker(name)
            if mark is not None and not (mark.args and isinstance(mark.args[0], str) and mark.args[0]):
                raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.{name} needs a reason (a non-empty string)")
        reason = external_skip(item)
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))


@dataclass
class Sandbox:
    """The cluster under test: the sandbox, or (external mode) an existing cluster in EXTERNAL."""

    state: dict[str, Any]
    started_here: bool
    external: external.External | None = None
    state_dir: Path = STATE  # another sandbox instance's (sandbox.up --dir) for tests that start one

    @property
    def bin(self) -> Path:
        return Path(self.state["bin"])

    @property
    def admin_kubeconfig(self) -> str:
        return self.external.admin_kubeconfig if self.external else str(self.state_dir / "admin.kubeconfig")

    @property
    def site_config(self) -> Path:
        return self.state_dir / "gridshim.yaml"

    def kubectl(self, *args: str, kubeconfig: str | None = None, check: bool = True,
                input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.bin / "kubectl"), f"--kubeconfig={kubeconfig or self.admin_kubeconfig}",
                               *args], capture_output=True, text=True, check=check, input=input, timeout=120)

    def kubectl_json(self, *args: str, kubeconfig: str | None = None) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json", kubeconfig=kubeconfig).stdout)


@pytest.fixture(scope="session")
def sandbox() -> Any:
    if EXTERNAL:
        ext = external.External.from_environ()
        ext.setup()
        yield Sandbox(state={"server": ext.server, "bin": str(ext.kubectl.parent), "home_root": str(ext.work / "homes")},
                      started_here=False, external=ext)
        if os.environ.get("GRIDSHIM_KEEP_SANDBOX") != "1":
            ext.cleanup()
        return
    from sandbox import up

    running = subprocess.run([sys.executable, "-m", "sandbox.up", "status"], cwd=REPO,
                             capture_output=True, text=True).returncode == 0
    if not running:
        proc = subprocess.run([sys.executable, "-m", "sandbox.up", "up"], cwd=REPO, capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.fail(f"the sandbox control plane did not start (exit {proc.returncode}):\n"
                        f"{proc.stdout}\n{proc.stderr}", pytrace=False)
    sb = Sandbox(state=up.load_state(), started_here=not running)
    yield sb
    if sb.started_here and os.environ.get("GRIDSHIM_KEEP_SANDBOX") != "1":
        subprocess.run([sys.executable, "-m", "sandbox.up", "down"], cwd=REPO, capture_output=True)


_counter = itertools.count()


@dataclass
class Tool:
    """A tool account in the sandbox: its namespace, home, uid and kubeconfig."""

    name: str
    home: Path
    uid: int
    sandbox: Sandbox
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        return f"tool-{self.name}"

    @property
    def kubeconfig(self) -> str:
        return str(self.home / ".kube" / "config")

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            "HOME": str(self.home),
            "KUBECONFIG": self.kubeconfig,
            "GRIDSHIM_CONFIG": str(self.sandbox.site_config),
            "PATH": f"{VENV_BIN}:{self.sandbox.bin}:/usr/local/bin:/usr/bin:/bin",
            "USER": f"tools.{self.name}",
            "LOGNAME": f"tools.{self.name}",
            "LANG": "C.UTF-8",
            **self.extra_env,
        }
        env.update(extra)
        return env

    def command(self, argv: Iterable[str | bytes]) -> list[str | bytes]:
        """ARGV as run by this tool's uid: through setpriv when the tests run as root, like `become NAME`."""
        cmd = list(argv)
        if os.geteuid() == 0 and self.uid != 0:
            cmd = ["setpriv", f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups", *cmd]
        return cmd

    def run(self, *argv: str, input: str | bytes | None = None, cwd: str | Path | None = None,
            env: dict[str, str] | None = None, timeout: float = 180, shell: bool = False,
            ) -> subprocess.CompletedProcess[str]:
        """Run an installed command (or a shell line) as this tool's uid, like `become NAME`."""
        env_all = self.env(**(env or {}))
        env_all["PWD"] = str(cwd or self.home)
        return subprocess.run(self.command(["/bin/sh", "-c", argv[0]] if shell else argv), input=input,
                              cwd=cwd or self.home, env=env_all, capture_output=True,
                              text=not isinstance(input, bytes), timeout=timeout)

    def start(self, *argv: str, env: dict[str, str] | None = None, **popen: Any) -> subprocess.Popen[str]:
        """ARGV started in the background as this tool's uid, like a shell's `&` (Tool.run without
        waiting): in its home, stdout and stderr piped, as text; POPEN adds to subprocess.Popen's."""
        env_all = self.env(**(env or {}))
        env_all["PWD"] = str(self.home)
        return subprocess.Popen(self.command(argv), cwd=self.home, env=env_all, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, **popen)

    def kubectl_json(self, *args: str) -> Any:
        return self.sandbox.kubectl_json("-n", self.namespace, *args)

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 60, interval: float = 0.3,
                 what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            time.sleep(interval)


def write(tool: Tool, rel: str, text: str, mode: int = 0o644) -> Path:
    """A file in the tool's home, owned by the tool (as if the tool had written it)."""
    path = tool.home / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    for p in (path, path.parent):
        os.chown(p, tool.uid, tool.uid)
    return path


def mkdir(tool: Tool, rel: str) -> Path:
    """A directory in the tool's home, owned by the tool."""
    path = tool.home / rel
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, tool.uid, tool.uid)
    return path


def lines_of(path: Path) -> dict[str, str]:
    """KEY=VALUE lines a job printed."""
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


@pytest.fixture(scope="session")
def make_tool(sandbox: Sandbox) -> Callable[..., Tool]:
    """Factory: a fresh tool (namespace, RBAC, quota, home, kubeconfig) for a test."""
    from sandbox import up

    def factory(prefix: str = "t", *, quota: dict[str, str] | None = None,
                limits: dict[str, Any] | None = None) -> Tool:
        name = f"{prefix}{os.getpid() % 1000}x{next(_counter)}"
        generous = {"pods": "40", "limits.cpu": "40", "limits.memory": "80Gi", "requests.cpu": "40",
                    "requests.memory": "80Gi", "count/jobs.batch": "200", "count/cronjobs.batch": "300",
                    "configmaps": "20"}
        limit_range = {"default": {"cpu": "500m", "memory": "512Mi"},
                       "defaultRequest": {"cpu": "50m", "memory": "64Mi"},
                       "max": {"cpu": "2", "memory": "16Gi"}, "min": {"cpu": "10m", "memory": "4Mi"}}
        if sandbox.external is not None:
            home, uid = sandbox.external.add_tool(name, quota=quota or generous, limits=limits or limit_range)
        else:
            home, uid = up.add_tool(name, quota=quota or generous, limits=limits or limit_range)
        return Tool(name=name, home=home, uid=uid, sandbox=sandbox)

    return factory


@pytest.fixture
def tool(make_tool: Callable[..., Tool]) -> Tool:
    return make_tool()
