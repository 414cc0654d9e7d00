#!/usr/bin/env python3
"""gridshim side by side with kubectl on the sandbox control plane (issue 6).

    .venv/bin/python bench/run.py                 # every figure; writes bench/results.json (`make bench`)
    .venv/bin/python bench/run.py --scaling       # qstat vs kubectl get jobs at 500, 5,000 and 20,000 Jobs
    .venv/bin/python bench/run.py --only jsub,sync --pairs 20

Each figure interleaves the two sides (A B A B …) as fresh processes of the same tool uid, with the
same client certificate (the bench tool's kubeconfig) and namespace. A process is timed from spawn
to reaped exit; its peak RSS comes from wait4(2), so it is that one child's own figure. Ratios are
gridshim's median / kubectl's median. Nothing here asserts on time: the figures are reported, with
the goals of issue 6 beside them.

The bench owns one tool (default `bench`) and deletes what it created in that namespace at the end.
"""

from __future__ import annotations

import argparse
import compileall
import concurrent.futures
import datetime
import importlib.util
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))
VENV_BIN = REPO / ".venv" / "bin"
STATE = REPO / ".sandbox"

from gridshim.cluster import KubeCluster, load_credentials  # noqa: E402
from gridshim.errors import GridshimError  # noqa: E402

# The tool's quota must hold 20,000 Jobs (scaling) plus what the figures create on top.
QUOTA = {"count/jobs.batch": "30000", "count/cronjobs.batch": "1000", "pods": "100", "limits.cpu": "100",
         "limits.memory": "200Gi", "requests.cpu": "100", "requests.memory": "200Gi", "configmaps": "50"}
LIMITS = {"default": {"cpu": "500m", "memory": "512Mi"}, "defaultRequest": {"cpu": "50m", "memory": "64Mi"},
          "max": {"cpu": "2", "memory": "16Gi"}, "min": {"cpu": "10m", "memory": "4Mi"}}
# issue 17: qstat at half of kubectl's time in 80 MB, -sync y back within 10 ms (issue 6 had 1.0, 150 MB, 0.5 s)
GOALS = {"qacct_j_name_10000_s": 0.2, "jsub_vs_kubectl": 1.0, "qstat5000_vs_kubectl": 0.5, "qstat5000_peak_rss_mb": 80.0,
         "crontab200_vs_kubectl_apply": 1.0, "sync_latency_s": 0.010}
POPULATED = "bench.gridshim.io/populated"  # label on the suspended Jobs made for qstat
FIGURES = ("jsub", "qsub", "exec", "sync", "crontab", "qstat", "qacct", "arrays", "holds")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def median(xs: Iterable[float]) -> float:
    return float(statistics.median(list(xs)))


class BenchError(RuntimeError):
    pass


@dataclass
class Run:
    seconds: float
    maxrss_kb: int
    rc: int
    stdout: Path
    stderr: Path

    def text(self, which: str = "stdout") -> str:
        return (self.stdout if which == "stdout" else self.stderr).read_text(errors="replace")


@dataclass
class Pairs:
    gridshim: list[Run] = field(default_factory=list)
    kubectl: list[Run] = field(default_factory=list)

    def summary(self, **extra: Any) -> dict[str, Any]:
        g = [r.seconds for r in self.gridshim]
        k = [r.seconds for r in self.kubectl]
        return {"pairs": min(len(g), len(k)), "gridshim_median_s": round(median(g), 4),
                "kubectl_median_s": round(median(k), 4), "ratio": round(median(g) / median(k), 3),
                "gridshim_s": [round(x, 4) for x in g], "kubectl_s": [round(x, 4) for x in k],
                "gridshim_peak_rss_mb": round(max(r.maxrss_kb for r in self.gridshim) / 1024, 1),
                "kubectl_peak_rss_mb": round(max(r.maxrss_kb for r in self.kubectl) / 1024, 1), **extra}


# The spawner: a small helper process that forks, execs and reaps every measured command. Peak RSS
# (ru_maxrss) counts the memory a child had before exec too, i.e. a copy of whoever forked it; forked
# from this bench (50+ MB) every command would show the bench's size. Forked from a bare `python -I -S`
# (~7 MB, recorded as spawner_floor_mb) each child's figure is its own.
SPAWNER = r"""
import json, os, sys, time
for line in sys.stdin:
    req = json.loads(line)
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            new = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
            for fd, path, flags in ((0, req["stdin"], os.O_RDONLY), (1, req["stdout"], new), (2, req["stderr"], new)):
                f = os.open(path, flags, 0o644)
                os.dup2(f, fd)
                os.close(f)
            if req["uid"] is not None:
                os.setgroups([])
                os.setgid(req["uid"])
                os.setuid(req["uid"])
            os.chdir(req["cwd"])
            os.execve(req["argv"][0], req["argv"], req["env"])
        except BaseException as e:
            os.write(2, f"spawner: {req['argv'][0]}: {e}\n".encode())
        os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - t0
    sys.stdout.write(json.dumps({"seconds": seconds, "maxrss_kb": usage.ru_maxrss,
                                 "rc": os.waitstatus_to_exitcode(status)}) + "\n")
    sys.stdout.flush()
"""


class Spawner:
    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", SPAWNER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1)
        self.lock = threading.Lock()

    def run(self, argv: list[str], **req: Any) -> dict[str, Any]:
        with self.lock:
            assert self.proc.stdin and self.proc.stdout
            self.proc.stdin.write(json.dumps({"argv": argv, **req}) + "\n")
            self.proc.stdin.flush()
            reply = self.proc.stdout.readline()
        if not reply:
            raise BenchError("the spawner died")
        return json.loads(reply)

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=10)


class Bench:
    """The bench tool: its processes (run as its uid), its API client, its objects."""

    def __init__(self, tool: str, workdir: Path) -> None:
        from sandbox import up

        self.state = up.load_state()
        self.tool = tool
        self.home, self.uid = up.add_tool(tool, quota=QUOTA, limits=LIMITS)
        self.kubeconfig = str(self.home / ".kube" / "config")
        # The sandbox's binaries may live under root's home, out of the tool uid's reach: use a copy.
        self.kubectl = str(workdir / "kubectl")
        shutil.copy2(Path(self.state["bin"]) / "kubectl", self.kubectl)
        os.chmod(self.kubectl, 0o755)
        self.namespace = f"tool-{tool}"
        self.workdir = workdir
        self.spawner = Spawner()
        self.creds = load_credentials([self.kubeconfig])
        self.cluster = self.new_cluster()
        self._local = threading.local()
        self.round_trips: dict[str, Any] = {}
        # kubectl keeps a discovery cache in ~/.kube/cache: it must belong to the tool, as in real use.
        cache = self.home / ".kube" / "cache"
        if cache.exists() and os.geteuid() == 0:
            for p in [cache, *cache.rglob("*")]:
                os.lchown(p, self.uid, self.uid)
        from gridshim import config

        self.settings = config.load({"GRIDSHIM_CONFIG": str(STATE / "gridshim.yaml")})
        self.image = self.settings.image_for(None)

    def new_cluster(self) -> KubeCluster:
        return KubeCluster(self.creds, namespace=self.namespace)

    def thread_cluster(self) -> KubeCluster:
        c = getattr(self._local, "cluster", None)
        if c is None:
            c = self._local.cluster = self.new_cluster()
        return c

    # -- processes ---------------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        return {"HOME": str(self.home), "KUBECONFIG": self.kubeconfig, "PWD": str(self.home),
                "GRIDSHIM_CONFIG": str(STATE / "gridshim.yaml"),
                "PATH": f"{VENV_BIN}:{self.workdir}:/usr/local/bin:/usr/bin:/bin",
                "USER": f"tools.{self.tool}", "LOGNAME": f"tools.{self.tool}", "LANG": "C.UTF-8"}

    def run(self, argv: list[str], *, stdin: Path | None = None, check: bool = True,
            extra_env: dict[str, str] | None = None) -> Run:
        """One fresh process as the tool's uid: wall time from fork to reaped exit, and its own peak RSS."""
        out = self.workdir / "last.out"
        err = self.workdir / "last.err"
        uid = self.uid if os.geteuid() == 0 and self.uid != 0 else None
        r = self.spawner.run(argv, env=self.env() | (extra_env or {}), cwd=str(self.home), uid=uid,
                             stdin=str(stdin or os.devnull), stdout=str(out), stderr=str(err))
        run = Run(r["seconds"], r["maxrss_kb"], r["rc"], out, err)
        if check and run.rc != 0:
            raise BenchError(f"{' '.join(argv)} exited {run.rc}:\n{run.text('stderr')[-2000:]}")
        return run

    def gridshim(self, cmd: str, *args: str, **kw: Any) -> Run:
        return self.run([str(VENV_BIN / cmd), *args], **kw)

    def kctl(self, *args: str, **kw: Any) -> Run:
        return self.run([self.kubectl, *args], **kw)

    def count_round_trips(self, label: str, cmd: str, *args: str, stdin: Path | None = None) -> int:
        """Run a gridshim command once with KubeCluster instrumented; its API round trips."""
        rt = self.workdir / "round_trips"
        rt.unlink(missing_ok=True)
        script = VENV_BIN / cmd
        code = ("import atexit, runpy, sys, gridshim.cluster as c\n"
                "made = []\n"
                "init = c.KubeCluster.__init__\n"
                "def counting(self, *a, **k):\n"
                "    init(self, *a, **k); made.append(self)\n"
                "c.KubeCluster.__init__ = counting\n"
                "out = sys.argv[2]\n"
                "atexit.register(lambda: open(out, 'w').write(str(sum(m.round_trips for m in made))))\n"
                "sys.argv = [sys.argv[1], *sys.argv[3:]]\n"
                "runpy.run_path(sys.argv[0], run_name='__main__')\n")
        open(rt, "w").close()
        os.chmod(rt, 0o666)
        self.run([str(VENV_BIN / "python"), "-c", code, str(script), str(rt), *args], stdin=stdin, check=False)
        n = int(rt.read_text() or 0)
        self.round_trips[label] = n
        return n

    def kubectl_requests(self, label: str, *args: str, stdin: Path | None = None) -> int:
        """kubectl's API requests for the same work (its -v=6 log has one 'Response' line per request)."""
        run = self.kctl("-v=6", *args, stdin=stdin, check=False)
        n = len(re.findall(r'round_trippers\.go:\d+\] "Response"', run.text("stderr")))
        self.round_trips[label] = n
        return n

    def import_ms(self, cmd: str, *args: str, runs: int = 3) -> float:
        """Time spent importing modules in a run of CMD (python -X importtime, top level summed), the
        least of RUNS runs, in ms."""
        best = float("inf")
        for _ in range(runs):
            run = self.run([str(VENV_BIN / "python"), "-X", "importtime", str(VENV_BIN / cmd), *args], check=False)
            total = 0
            for line in run.text("stderr").splitlines():
                m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S.*)$", line)  # depth 0: no extra indent
                if m:
                    total += int(m.group(1))
            best = min(best, total / 1000)
        return round(best, 1)

    def interleave(self, n: int, a: Callable[[int], Run], b: Callable[[int], Run],
                   between: Callable[[], None] | None = None, warmup: bool = True) -> Pairs:
        """A B A B …; one untimed run of each side first (page cache, kubectl's discovery cache)."""
        pairs = Pairs()
        if warmup:
            for fn in (a, b):
                fn(-1)
                if between:
                    between()
        for i in range(n):
            pairs.gridshim.append(a(i))
            if between:
                between()
            pairs.kubectl.append(b(i))
            if between:
                between()
        return pairs

    # -- objects -----------------------------------------------------------------------------------

    def count(self, kind: str, selector: str | None = None) -> int:
        if selector:  # the API server gives no remainingItemCount for a selected list: count them
            return len(self.cluster.list(kind, selector=selector)[0])
        page = self.cluster.request("GET", self.cluster.path(kind, params={"limit": 1}))
        meta = page.get("metadata") or {}
        return len(page.get("items") or []) + int(meta.get("remainingItemCount") or 0)

    def delete_all(self, kind: str, selector: str | None = None, *, wait: float = 900) -> None:
        """deletecollection until none is left. One request deletes them all server-side, but the API
        server stops when the client's request times out (20,000 Jobs take minutes): then again."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        once = KubeCluster(self.creds, namespace=self.namespace, retry_seconds=0)  # one attempt, 30 s
        deadline = time.monotonic() + wait
        try:
            while self.count(kind, selector):
                if time.monotonic() > deadline:
                    raise BenchError(f"{kind}s in {self.namespace} not gone after {wait:.0f}s")
                try:
                    once.request("DELETE", once.path(kind, params={"labelSelector": selector}), body)
                except GridshimError as e:
                    log(f"deletecollection {kind}: {str(e).splitlines()[0][:100]}; again")
                    time.sleep(0.5)
        finally:
            once.close()

    def clear_jobs(self) -> None:
        """Between two timed submissions: every Job deleted, and the controllers let settle, the same for
        both sides."""
        self.delete_all("Job")
        time.sleep(0.2)

    def template_job(self) -> dict[str, Any]:
        """What jsub itself would create (its --dry-run output), to copy for bulk objects."""
        import yaml

        run = self.gridshim("jsub", "--dry-run", "-N", "bench", "/bin/true")
        return next(d for d in yaml.safe_load_all(run.text()) if d and d.get("kind") == "Job")

    def create_many(self, manifests: list[dict[str, Any]], workers: int = 16) -> float:
        """Create MANIFESTS concurrently (a connection per thread); returns objects per second."""
        t0 = time.perf_counter()

        def one(m: dict[str, Any]) -> None:
            c = self.thread_cluster()
            for attempt in range(5):
                try:
                    c.create(m)
                    return
                except GridshimError as e:
                    if "AlreadyExists" in str(getattr(e, "detail", "")) or "already exists" in str(e):
                        return
                    if attempt == 4:
                        raise
                    time.sleep(0.5 * (attempt + 1))

        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            for f in concurrent.futures.as_completed([pool.submit(one, m) for m in manifests]):
                f.result()
        return len(manifests) / max(time.perf_counter() - t0, 1e-9)

    def populate(self, total: int) -> None:
        """Make the namespace hold TOTAL suspended gridshim Jobs (suspended: the node is not flooded)."""
        have = self.count("Job")  # the namespace holds only the bench's Jobs (cleared before qstat)
        if have >= total:
            return
        tpl = self.template_job()
        new = []
        for i in range(have, total):
            m = json.loads(json.dumps(tpl))
            md = m["metadata"]
            md.pop("generateName", None)
            md["name"] = f"bq-{i:05d}"
            name = f"bq{i}"
            job_id = str(1_000_000 + i)
            for labels in (md["labels"], m["spec"]["template"]["metadata"]["labels"]):
                labels.update({"gridshim.io/name": name, "gridshim.io/job-id": job_id, POPULATED: "1"})
            md["annotations"]["gridshim.io/name"] = name
            md["annotations"]["gridshim.io/token"] = f"bench{i:012d}"
            m["spec"]["suspend"] = True
            new.append(m)
        log(f"creating {len(new)} suspended Jobs ({have} there already)")
        rate = self.create_many(new)
        log(f"  {rate:.0f} Jobs/s; namespace now holds {self.count('Job')} Jobs")

    def cleanup(self) -> None:
        for kind in ("CronJob", "Job"):
            self.delete_all(kind)
        try:
            self.delete_all("ConfigMap", "app.kubernetes.io/managed-by=gridshim", wait=60)
        except GridshimError as e:
            log(f"configmaps: {e}")


# -- figures ---------------------------------------------------------------------------------------

def have_command(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def fig_submit(b: Bench, pairs: int, cmd: str, *args: str) -> dict[str, Any]:
    """CMD ARGS (jsub, qsub) vs kubectl create job; every Job deleted before the next run."""
    b.clear_jobs()
    p = b.interleave(pairs,
                     lambda i: b.gridshim(cmd, *args),
                     lambda i: b.kctl("create", "job", f"x-kc-{i + 1}", f"--image={b.image}", "--", "/bin/true"),
                     between=b.clear_jobs)
    rt = b.count_round_trips(cmd, cmd, *args)
    krt = b.kubectl_requests("kubectl_create_job", "create", "job", "x-kc-rt", f"--image={b.image}", "--", "/bin/true")
    b.clear_jobs()
    return p.summary(command=" ".join([cmd, *args]),
                     kubectl_command=f"kubectl create job x-kc-N --image={b.image} -- /bin/true",
                     round_trips=rt, kubectl_requests=krt,
                     import_ms=b.import_ms(cmd, "--dry-run", *[a for a in args if a != "-quiet"]))


def exec_kubeconfig(b: Bench) -> Path:
    """The bench tool's kubeconfig with its client certificate handed out by an exec credential plugin
    (client.authentication.k8s.io/v1beta1, as EKS, GKE and OIDC users have one); the same plugin serves
    both sides. The plugin is a small Python script: a site's real plugin (a Go binary, a cloud CLI) costs
    what it costs, the same for kubectl and gridshim."""
    import yaml

    cfg = yaml.safe_load(Path(b.kubeconfig).read_text())
    base = Path(b.kubeconfig).parent
    user = cfg["users"][0]
    cert, key = (str((base / user["user"][k]).resolve()) for k in ("client-certificate", "client-key"))
    plugin = b.workdir / "exec-plugin"
    plugin.write_text(f"#!{sys.executable} -IS\nimport json, os\n"
                      "info = json.loads(os.environ.get('KUBERNETES_EXEC_INFO') or '{}')\n"
                      "print(json.dumps({'kind': 'ExecCredential', 'apiVersion': info.get('apiVersion', "
                      "'client.authentication.k8s.io/v1beta1'), 'status': {"
                      f"'clientCertificateData': open({cert!r}).read(), 'clientKeyData': open({key!r}).read()}}}}))\n")
    plugin.chmod(0o755)
    user["user"] = {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": str(plugin),
                             "interactiveMode": "Never"}}
    for c in cfg["clusters"]:  # the CA by absolute path: this file lives in the bench's scratch directory
        ca = c["cluster"].get("certificate-authority")
        if ca:
            c["cluster"]["certificate-authority"] = str((base / ca).resolve())
    out = b.workdir / "exec.kubeconfig"
    out.write_text(yaml.safe_dump(cfg))
    out.chmod(0o644)
    return out


def fig_exec(b: Bench, pairs: int) -> dict[str, Any]:
    """What an exec credential plugin adds to jsub and to kubectl create job: each side with the plugin
    and without it, interleaved, every Job deleted between runs (issue 13: the overhead next to kubectl's)."""
    kubeconfig = str(exec_kubeconfig(b))
    with_exec = {"KUBECONFIG": kubeconfig}

    def kc(i: int, env: dict[str, str] | None = None) -> Run:
        return b.kctl("create", "job", f"x-ke-{i + 1}", f"--image={b.image}", "--", "/bin/true", extra_env=env)

    b.clear_jobs()
    g = b.interleave(pairs, lambda i: b.gridshim("jsub", "-quiet", "-N", "x", "/bin/true"),
                     lambda i: b.gridshim("jsub", "-quiet", "-N", "x", "/bin/true", extra_env=with_exec), between=b.clear_jobs)
    k = b.interleave(pairs, lambda i: kc(i), lambda i: kc(i, with_exec), between=b.clear_jobs)
    b.clear_jobs()
    med = {name: median(r.seconds for r in runs) for name, runs in
           (("jsub", g.gridshim), ("jsub_exec", g.kubectl), ("kubectl", k.gridshim), ("kubectl_exec", k.kubectl))}
    return {"pairs": pairs, **{f"{n}_median_s": round(v, 4) for n, v in med.items()},
            "jsub_exec_overhead_s": round(med["jsub_exec"] - med["jsub"], 4),
            "kubectl_exec_overhead_s": round(med["kubectl_exec"] - med["kubectl"], 4),
            "ratio": round(med["jsub_exec"] / med["kubectl_exec"], 3)}


def fig_jsub(b: Bench, pairs: int) -> dict[str, Any]:
    return fig_submit(b, pairs, "jsub", "-quiet", "-N", "x", "/bin/true")


def fig_qsub(b: Bench, pairs: int) -> dict[str, Any]:
    """qsub of a small job script (read, parsed for #$ lines and copied into the Job) vs kubectl create job."""
    script = b.workdir / "job.sh"
    script.write_text("#!/bin/sh\n#$ -N x\n#$ -j y\n/bin/true\n")
    script.chmod(0o644)
    return fig_submit(b, pairs, "qsub", "-terse", str(script))


class JobWatcher:
    """The bench's own watch on the namespace's Jobs: when each one was first seen Complete/Failed."""

    def __init__(self, b: Bench) -> None:
        self.cluster = b.new_cluster()
        self.seen: dict[str, float] = {}
        self.cond_time: dict[str, str] = {}
        self.cv = threading.Condition()
        self.stop = False
        _, self.rv = self.cluster.list("Job", selector="app.kubernetes.io/managed-by=gridshim")
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stop:
            try:
                for etype, obj in self.cluster.watch("Job", resource_version=self.rv, timeout=60):
                    now = time.perf_counter()
                    if etype == "ERROR":
                        _, self.rv = self.cluster.list("Job")
                        break
                    self.rv = obj["metadata"].get("resourceVersion", self.rv)
                    if etype == "BOOKMARK":
                        continue
                    name = (obj["metadata"].get("annotations") or {}).get("gridshim.io/name") \
                        or obj["metadata"]["name"]
                    for c in (obj.get("status") or {}).get("conditions") or []:
                        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
                            with self.cv:
                                if name not in self.seen:
                                    self.seen[name] = now
                                    self.cond_time[name] = c.get("lastTransitionTime", "")
                                    self.cv.notify_all()
                    if self.stop:
                        return
            except GridshimError:
                time.sleep(0.2)

    def wait_for(self, name: str, timeout: float = 10) -> float:
        with self.cv:
            if not self.cv.wait_for(lambda: name in self.seen, timeout):
                raise BenchError(f"the bench's watch never saw job {name} finish")
            return self.seen[name]


def fig_sync(b: Bench, runs: int) -> dict[str, Any]:
    """Median time from the Job's terminal condition (seen by our own watch) to `jsub -sync y` exiting;
    `kubectl wait --for=condition=complete` on an equivalent Job beside it, for reference."""
    b.delete_all("Job")
    watcher = JobWatcher(b)
    tpl = b.template_job()
    lat, klat, coarse, total = [], [], [], []
    try:
        for i in range(-1, runs):  # -1: warm-up
            name = f"sync{i + 1}"
            run = b.gridshim("jsub", "-sync", "y", "-quiet", "-N", name, "/bin/true")
            exited = time.perf_counter()
            exited_wall = time.time()
            seen = watcher.wait_for(name)
            if i >= 0:
                lat.append(exited - seen)
                total.append(run.seconds)
                ct = watcher.cond_time.get(name)
                if ct:  # the condition's own timestamp: 1 s resolution, for reference only
                    t = datetime.datetime.strptime(ct, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
                    coarse.append(exited_wall - t.timestamp())
            assert run.rc == 0
            # kubectl: the same Job created through the API, then `kubectl wait` on it
            m = json.loads(json.dumps(tpl))
            md = m["metadata"]
            md.pop("generateName", None)
            md["name"] = kname = f"kwait-{i + 1}"
            md["annotations"]["gridshim.io/name"] = kname
            md["labels"]["gridshim.io/name"] = kname
            b.cluster.create(m)
            b.kctl("wait", "--for=condition=complete", "--timeout=120s", f"job/{kname}")
            kexited = time.perf_counter()
            kseen = watcher.wait_for(kname)
            if i >= 0:
                klat.append(kexited - kseen)
        rt = b.count_round_trips("jsub_sync", "jsub", "-sync", "y", "-quiet", "-N", "syncrt", "/bin/true")
    finally:
        watcher.stop = True
    b.delete_all("Job")
    return {"runs": len(lat), "median_s": round(median(lat), 4), "latencies_s": [round(x, 4) for x in lat],
            "kubectl_wait_median_s": round(median(klat), 4), "kubectl_wait_latencies_s": [round(x, 4) for x in klat],
            "condition_timestamp_median_s": round(median(coarse), 3) if coarse else None,
            "jsub_sync_total_median_s": round(median(total), 3),
            "round_trips": rt,
            "method": "the bench watches the namespace's Jobs itself and records (monotonic clock) when each "
                      "was first seen Complete; latency = that command's reaped exit - that moment. "
                      "condition_timestamp_median_s uses the condition's lastTransitionTime (1 s resolution) "
                      "and is shown only for reference."}


def crontab_text(n: int) -> str:
    lines = ["# bench crontab: %d entries" % n, "MAILTO=\"\""]
    for i in range(n):
        lines.append(f"{i % 60} {i % 24} * * * jsub -once -quiet -N cron{i:03d} /bin/true")
    return "\n".join(lines) + "\n"


def fig_crontab(b: Bench, pairs: int, entries: int) -> dict[str, Any]:
    """Installing an N-entry crontab from empty vs kubectl apply -f of the same CronJobs (crontab --dry-run)."""
    src = b.workdir / "crontab.txt"
    src.write_text(crontab_text(entries))
    os.chmod(src, 0o644)
    manifests = b.workdir / "cronjobs.yaml"
    dry = b.gridshim("crontab", "--dry-run", str(src))
    manifests.write_text(dry.text())
    os.chmod(manifests, 0o644)
    docs = len(re.findall(r"^kind: CronJob$", dry.text(), re.M))
    if docs != entries:
        raise BenchError(f"crontab --dry-run printed {docs} CronJobs for {entries} entries")

    def clear() -> None:
        b.delete_all("CronJob")
        try:
            b.delete_all("ConfigMap", "app.kubernetes.io/managed-by=gridshim", wait=60)
        except GridshimError:
            pass
        time.sleep(0.2)

    def gs(i: int) -> Run:
        run = b.gridshim("crontab", str(src))
        if b.count("CronJob") != entries:
            raise BenchError(f"crontab installed {b.count('CronJob')} CronJobs, expected {entries}")
        return run

    def kc(i: int) -> Run:
        run = b.kctl("apply", "-f", str(manifests))
        if b.count("CronJob") != entries:
            raise BenchError(f"kubectl apply made {b.count('CronJob')} CronJobs, expected {entries}")
        return run

    clear()
    p = b.interleave(pairs, gs, kc, between=clear)
    rt = b.count_round_trips("crontab", "crontab", str(src))
    clear()
    krt = b.kubectl_requests("kubectl_apply", "apply", "-f", str(manifests))
    clear()
    return p.summary(entries=entries, command=f"crontab FILE ({entries} entries)",
                     kubectl_command="kubectl apply -f (crontab --dry-run FILE)", round_trips=rt, kubectl_requests=krt,
                     import_ms=b.import_ms("crontab", "--dry-run", str(src)))


def fig_qstat(b: Bench, pairs: int, jobs: int, *, details: bool = True) -> dict[str, Any]:
    """qstat vs kubectl get jobs with JOBS suspended Jobs in the namespace."""
    b.populate(jobs)
    total = b.count("Job")
    check = b.gridshim("qstat")
    lines = len(check.text().splitlines())
    if lines < jobs:
        raise BenchError(f"qstat printed {lines} lines with {total} Jobs in the namespace")
    p = b.interleave(pairs, lambda i: b.gridshim("qstat"), lambda i: b.kctl("get", "jobs"))
    extra: dict[str, Any] = {"jobs": total, "qstat_lines": lines,
                             "peak_rss_mb": round(max(r.maxrss_kb for r in p.gridshim) / 1024, 1),
                             "peak_rss_median_mb": round(median(r.maxrss_kb for r in p.gridshim) / 1024, 1)}
    if details:
        extra["round_trips"] = b.count_round_trips(f"qstat{jobs}", "qstat")
        extra["kubectl_requests"] = b.kubectl_requests(f"kubectl_get_jobs{jobs}", "get", "jobs")
        extra["import_ms"] = b.import_ms("qstat")
    return p.summary(**extra)


# -- reporting -------------------------------------------------------------------------------------

def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"cpu_count": os.cpu_count(), "python": platform.python_version(),
                            "python_executable": sys.executable, "platform": platform.platform(),
                            "loadavg_start": list(os.getloadavg())}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
        mem = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()
        info["mem_total_gb"] = round(int(mem[1]) / 1024 / 1024, 1)
    except (OSError, IndexError, ValueError):
        pass
    return info


def line(key: str, value: float | None, goal: float | None, detail: str) -> str:
    if value is None:
        return f"{key:30} {'n/a':>8}   {detail}"
    mark = "" if goal is None else ("  goal ≤ %g  %s" % (goal, "met" if value <= goal else "MISSED"))
    return f"{key:30} {value:8.3f}{mark}   {detail}"


def write_results(path: Path, results: dict[str, Any], merge: bool) -> None:
    old: dict[str, Any] = {}
    if merge and path.exists():
        try:
            old = json.loads(path.read_text())
        except ValueError:
            old = {}
    old.update(results)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(old, indent=2, ensure_ascii=False) + "\n")


def ensure_sandbox() -> None:
    status = subprocess.run([sys.executable, "-m", "sandbox.up", "status"], cwd=REPO, capture_output=True)
    if status.returncode != 0:
        log("the sandbox is not running: starting it (python -m sandbox.up up)")
        subprocess.run([sys.executable, "-m", "sandbox.up", "up"], cwd=REPO, check=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=15, help="A/B pairs per figure (default 15; ≥ 10 for real figures)")
    ap.add_argument("--sync-runs", type=int, default=15, help="jsub -sync y runs (default 15)")
    ap.add_argument("--qstat-jobs", type=int, default=5000, help="Jobs in the namespace for qstat (default 5000)")
    ap.add_argument("--qstat-large", type=int, default=None,
                    help="then with this many Jobs (default 4 × --qstat-jobs: 20,000; 0: not)")
    ap.add_argument("--qstat-large-pairs", type=int, default=15, help="pairs with --qstat-large Jobs (default 15)")
    ap.add_argument("--crontab-entries", type=int, default=200, help="entries in the crontab (default 200)")
    ap.add_argument("--array-tasks", type=int, default=1000, help="tasks in the array figures (default 1000)")
    ap.add_argument("--chain-links", type=int, default=10, help="links in the -hold_jid chain (default 10)")
    ap.add_argument("--only", default=",".join(FIGURES), help=f"comma-separated subset of {','.join(FIGURES)}")
    ap.add_argument("--scaling", action="store_true", help="only: qstat vs kubectl get jobs at --scaling-sizes")
    ap.add_argument("--scaling-sizes", default="500,5000,20000")
    ap.add_argument("--scaling-pairs", type=int, default=5)
    ap.add_argument("--tool", default="bench", help="the sandbox tool the bench uses (provisioned if needed)")
    ap.add_argument("--out", default=str(REPO / "bench" / "results.json"))
    ap.add_argument("--keep", action="store_true", help="leave the bench's Jobs and CronJobs in place")
    args = ap.parse_args(argv)
    only = [f.strip() for f in args.only.split(",") if f.strip()]
    unknown = set(only) - set(FIGURES)
    if unknown:
        ap.error(f"--only: unknown figure(s) {', '.join(sorted(unknown))}")

    ensure_sandbox()
    # What an installed package has: bytecode. The tool uid cannot write src/__pycache__, so without
    # this every gridshim process would compile its modules from source (tens of ms).
    compileall.compile_dir(str(REPO / "src" / "gridshim"), quiet=1)
    workdir = Path(tempfile.mkdtemp(prefix="gridshim-bench-"))
    os.chmod(workdir, 0o755)
    b = Bench(args.tool, workdir)
    log(f"tool {b.tool} (uid {b.uid}), namespace {b.namespace}, image {b.image}; scratch {workdir}")
    results: dict[str, Any] = {}
    floor_mb = round(b.run(["/bin/true"]).maxrss_kb / 1024, 1)
    out = Path(args.out)
    try:
        if args.scaling:
            sizes = [int(s) for s in args.scaling_sizes.split(",")]
            b.delete_all("Job")
            rows = []
            for n in sorted(sizes):
                r = fig_qstat(b, args.scaling_pairs, n, details=True)
                r.pop("gridshim_s")
                r.pop("kubectl_s")
                rows.append(r)
                print(line(f"qstat{n}_vs_kubectl", r["ratio"], None,
                           f"qstat {r['gridshim_median_s'] * 1000:.0f} ms / kubectl get jobs "
                           f"{r['kubectl_median_s'] * 1000:.0f} ms; qstat peak RSS {r['peak_rss_mb']:.0f} MB, "
                           f"kubectl {r['kubectl_peak_rss_mb']:.0f} MB; {r['round_trips']} round trips"), flush=True)
            results["qstat_scaling"] = {"when": datetime.datetime.now().isoformat(timespec="seconds"),
                                        "machine": machine(), "pairs": args.scaling_pairs, "rows": rows}
        else:
            details: dict[str, Any] = {}
            missing: dict[str, str] = {}
            results = {"when": datetime.datetime.now().isoformat(timespec="seconds"), "machine": machine(),
                       "goals": GOALS, "params": {"pairs": args.pairs, "sync_runs": args.sync_runs,
                                                  "qstat_jobs": args.qstat_jobs, "qstat_large": args.qstat_large,
                                                  "crontab_entries": args.crontab_entries}}
            def figure(key: str, value: float | None, goal: float | None, detail: str) -> None:
                """One figure: kept in the results and printed as one line beside its goal."""
                results[key] = value
                print(line(key, value, goal, detail), flush=True)

            def qstat_figures(n: int, d: dict[str, Any], goals: tuple[float | None, float | None]) -> None:
                figure(f"qstat{n}_vs_kubectl", d["ratio"], goals[0],
                       f"qstat {d['gridshim_median_s'] * 1000:.0f} ms / kubectl get jobs "
                       f"{d['kubectl_median_s'] * 1000:.0f} ms ({d['jobs']} Jobs, {d['pairs']} pairs; "
                       f"{d['round_trips']} vs {d['kubectl_requests']} requests)")
                figure(f"qstat{n}_peak_rss_mb", d["peak_rss_mb"], goals[1],
                       f"max over {d['pairs']} runs (wait4 ru_maxrss); kubectl get jobs: "
                       f"{d['kubectl_peak_rss_mb']:.0f} MB")

            for fig, maker in (("jsub", fig_jsub), ("qsub", fig_qsub)):
                if fig not in only:
                    continue
                log(f"{fig} vs kubectl create job")
                d = details[fig] = maker(b, args.pairs)
                figure(f"{fig}_vs_kubectl", d["ratio"], GOALS["jsub_vs_kubectl"],
                       f"{d['command']}: {d['gridshim_median_s'] * 1000:.0f} ms / kubectl create job "
                       f"{d['kubectl_median_s'] * 1000:.0f} ms ({d['pairs']} pairs; "
                       f"{d['round_trips']} round trip(s), imports {d['import_ms']:.0f} ms)")
            if "exec" in only:
                log("an exec credential plugin: jsub and kubectl create job, each with it and without")
                d = details["exec"] = fig_exec(b, args.pairs)
                figure("exec_plugin_jsub_vs_kubectl", d["ratio"], None,
                       f"with the plugin: jsub {d['jsub_exec_median_s'] * 1000:.0f} ms / kubectl "
                       f"{d['kubectl_exec_median_s'] * 1000:.0f} ms; the plugin adds "
                       f"{d['jsub_exec_overhead_s'] * 1000:.0f} ms to jsub, "
                       f"{d['kubectl_exec_overhead_s'] * 1000:.0f} ms to kubectl ({d['pairs']} pairs each)")
                results["exec_plugin_jsub_overhead_s"] = d["jsub_exec_overhead_s"]
                results["exec_plugin_kubectl_overhead_s"] = d["kubectl_exec_overhead_s"]
            if "qacct" in only:
                from qacct_bench import fig_qacct  # bench/ is on sys.path: run as a script

                log("qacct -j NAME over 10,000 records")
                d = details["qacct"] = fig_qacct(records=10_000, runs=args.pairs)
                figure("qacct_j_name_10000_s", d["cases"]["j_name"]["median_s"], GOALS["qacct_j_name_10000_s"],
                       f"qacct -j NAME, fresh process, {args.pairs} runs")
            if "arrays" in only:
                from arrays_bench import GOALS as AGOALS, fig_array_finish, fig_array_submit

                log(f"qsub -t 1-{args.array_tasks} vs {args.array_tasks} × kubectl create job")
                d = details["array_submit"] = fig_array_submit(b, args.array_tasks)
                figure("array1000_vs_kubectl_loop", d["ratio"], AGOALS["array1000_vs_kubectl_loop"],
                       f"{d['command']}: {d['qsub_median_s'] * 1000:.0f} ms / {d['peer']} {d['kubectl_loop_s']:.1f} s")
                log(f"{args.array_tasks} array tasks to the end")
                d = details["array_finish"] = fig_array_finish(b, args.array_tasks)
                figure("array1000_finish_s", d["submit_to_last_end_s"], None,
                       f"qsub -t 1-{d['tasks']} of /bin/true: submit → last task's end "
                       f"({d['tasks_per_s']:.1f} tasks/s at the node's pace)")
            if "holds" in only:
                from arrays_bench import GOALS as AGOALS, fig_hold_chain

                log(f"-hold_jid chain of {args.chain_links} links")
                d = details["hold_chain"] = fig_hold_chain(b, args.chain_links)
                figure("hold_release_median_s", d["median_s"], AGOALS["hold_release_median_s"],
                       f"predecessor's end → successor's start, median of {d['links']} links (max {d['max_s']:.2f} s)")
            if "sync" in only:
                log("jsub -sync y latency")
                d = details["sync"] = fig_sync(b, args.sync_runs)
                figure("sync_latency_s", d["median_s"], GOALS["sync_latency_s"],
                       f"Complete seen → jsub -sync y exit ({d['runs']} runs); kubectl wait: "
                       f"{d['kubectl_wait_median_s']:.3f} s")
            if "crontab" in only:
                if not have_command("gridshim.cli.crontab"):
                    missing["crontab"] = "gridshim.cli.crontab does not exist yet: no crontab figure"
                    figure("crontab200_vs_kubectl_apply", None, None, missing["crontab"])
                else:
                    log(f"crontab ({args.crontab_entries} entries) vs kubectl apply -f")
                    d = details["crontab"] = fig_crontab(b, args.pairs, args.crontab_entries)
                    figure("crontab200_vs_kubectl_apply", d["ratio"], GOALS["crontab200_vs_kubectl_apply"],
                           f"crontab {d['gridshim_median_s'] * 1000:.0f} ms / kubectl apply "
                           f"{d['kubectl_median_s'] * 1000:.0f} ms ({d['entries']} CronJobs; "
                           f"{d['round_trips']} vs {d['kubectl_requests']} requests)")
            if "qstat" in only:
                if not have_command("gridshim.cli.qstat"):
                    missing["qstat"] = "gridshim.cli.qstat does not exist yet: no qstat figures"
                    results["qstat5000_peak_rss_mb"] = None
                    figure("qstat5000_vs_kubectl", None, None, missing["qstat"])
                else:
                    log(f"qstat vs kubectl get jobs with {args.qstat_jobs} Jobs")
                    b.delete_all("Job")
                    d = details["qstat"] = fig_qstat(b, args.pairs, args.qstat_jobs)
                    # the keys name the goal's 5,000 whatever --qstat-jobs is (the smoke test runs 40)
                    qstat_figures(5000, d, (GOALS["qstat5000_vs_kubectl"], GOALS["qstat5000_peak_rss_mb"]))
                    large = 4 * args.qstat_jobs if args.qstat_large is None else args.qstat_large
                    if large > args.qstat_jobs:
                        log(f"qstat vs kubectl get jobs with {large} Jobs")
                        d = details[f"qstat{large}"] = fig_qstat(b, args.qstat_large_pairs, large)
                        qstat_figures(large, d, (None, None))
            results["details"] = details
            results["round_trips"] = b.round_trips
            if missing:
                results["missing"] = missing
            results["machine"]["loadavg_end"] = list(os.getloadavg())
            results["machine"]["spawner_floor_mb"] = floor_mb
    finally:
        if not args.keep:
            log("cleaning up the bench's Jobs and CronJobs")
            try:
                b.cleanup()
            except (GridshimError, BenchError) as e:
                log(f"cleanup: {e}")
        b.spawner.close()
        shutil.rmtree(workdir, ignore_errors=True)
    write_results(out, results, merge=args.scaling or only != list(FIGURES))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        sys.exit(1)
