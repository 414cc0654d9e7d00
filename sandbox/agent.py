#!/usr/bin/env python3
"""gridshim sandbox node agent: a tiny stand-in for the kubelet.

The sandbox control plane (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler on 127.0.0.1) has no kubelet and no container runtime. This agent
fills that gap for tests:

* it registers one Node (labels kubernetes.io/hostname|os|arch, no taints, Ready),
  keeps it Ready by renewing its Lease in kube-node-lease every 10 s and refreshing
  the Ready condition's heartbeat every minute;
* it list+watches the pods bound to that Node and runs each container's
  ``command`` + ``args`` as an ordinary local process: init containers one after the
  other, then all containers at once, with the container's env (plus PATH and
  HOSTNAME defaults, nothing inherited from the agent), workingDir, runAsUser /
  runAsGroup / fsGroup / supplementalGroups (when the agent is root; uid 0 is
  refused), ``resources.limits.memory`` as RLIMIT_AS, in a new session with stdin
  from /dev/null and stdout+stderr appended to
  ``STATE_DIR/logs/<ns>_<pod>_<uid>/<container>/<restartCount>.log``; as the
  kubelet does, ``$(VAR)`` in command/args/env values is expanded from the
  container's env and ``$$`` becomes ``$`` (so a shell's ``$$`` must be written
  ``$$$$``); when a container's main process exits, whatever is left in its
  session is killed;
* it writes real pod status (phase, conditions, container states, restart counts,
  exit codes, 128+N for a signal) through the status subresource, applies the
  pod's restartPolicy with the kubelet's crash-loop back-off, enforces
  activeDeadlineSeconds, honours graceful deletion (SIGTERM to the main process
  only, as a runtime sends it to PID 1; grace period; SIGKILL to the whole
  session; then the final DELETE with gracePeriodSeconds=0 and a uid
  precondition, as the kubelet does);
* on SIGTERM/SIGINT it kills every process it started (SIGTERM, 5 s, SIGKILL) and
  exits 0 without touching pod statuses; on its next start, pods left Running or
  Pending by an earlier life are marked Failed (reason NodeAgentRestarted) and any
  process an earlier life left behind (after a crash) is killed;
* when it runs as root, every container gets a private ``/tmp`` and ``/dev/shm``, as
  a real container has (see "Private /tmp" below), and its projected volumes (the
  ServiceAccount token a pod gets unless automountServiceAccountToken is false: a
  TokenRequest bound to the pod, refreshed as the kubelet refreshes it, the CA and the
  namespace) read-only at their mount paths; every container gets the ``kubernetes``
  Service's variables (KUBERNETES_SERVICE_HOST/PORT), naming the API server itself
  (see "projected volumes" below and docs/sandbox.md).

Private /tmp: per container, not per pod (a pod's containers each have their own
``/tmp`` in real Kubernetes too, unless they mount a shared volume there), and fresh at
every (re)start (a restarted container is a new container with a new writable
layer). Before each start the agent recreates
``STATE_DIR/podtmp/<pod-uid>/<container>/{tmp,shm}`` (root-owned, mode 1777, like a
container's /tmp; STATE_DIR/podtmp itself is 0700, so other host users cannot look
into a pod's /tmp from outside). The child process, still root, unshares its mount
namespace (``unshare(CLONE_NEWNS)`` through ctypes), makes every mount private
(``mount --make-rprivate /``: nothing propagates back to the host), bind-mounts the
two directories onto /tmp and /dev/shm, then binds each hostPath volume the container
mounts whose path lies under /tmp or /dev/shm back in at the same path (so "hostPath
is the same local path" still holds there; missing intermediate directories are
created with the host's owner and mode) — and likewise each ``--shared-path`` (the
sandbox passes its checkout: the venvs and tool homes stand for a node's image and
home mounts, which a container sees wherever they are; a checkout under /tmp, as
CI may make, must not vanish inside the pods) — and only then drops to the pod's groups,
gid and uid, changes to workingDir and sets the rlimits. (The agent does all of this
itself in ``preexec_fn``: CPython's ``user=``/``group=``/``cwd=`` are applied
*before* ``preexec_fn`` runs, when the child could no longer mount.) The directories
are removed when the pod's worker finishes (the pod is terminal or gone and its
processes are dead), at every full re-list (anything not belonging to a running pod),
at shutdown, and at start (leftovers of a crashed earlier life, after
``kill_leftovers``). A failure to set up one container's private /tmp is a
StartError (exit code 128; the reason is in the container's log and the agent's
log); it never silently runs the container with the host's /tmp. Whether the
machine allows it at all is probed once at start (a throwaway child binds a scratch
directory onto /tmp and checks it took effect); ``--private-tmp`` decides what
happens then: ``auto`` (default) logs an ERROR once and writes a warning line into
every container's log, and runs containers with the shared /tmp; ``require``
refuses to start any container (StartError); ``off`` never tries. An agent that is
not root cannot do any of this and runs containers with the shared /tmp, as before
(logged once at start).

What it is NOT: there are no images (``image`` is recorded, never pulled: the
command must exist on this machine), no isolation beyond the private /tmp and
/dev/shm (no pid/network/user namespaces, no cgroups, no chroot: the rest of the
file system is the host's, a hostPath volume is simply the same local path and its
``mountPath`` and ``readOnly`` are ignored, projected volumes are filled (above), other
volume types are ignored; the
private /tmp is no security boundary against the job's own uid either: a host
process of the same uid, e.g. the submitting ``jsub -sync y``, exposes the host's
/tmp at /proc/PID/root/tmp), a path under /tmp or /dev/shm that is not a hostPath
volume of the container is not visible inside it (so workingDir, HOME and
command must not be under the host's /tmp), no networking (podIP = hostIP =
127.0.0.1, no Services, no ports), no probes (a running container is ready), no
sidecar semantics for init containers with restartPolicy Always, no ``kubectl
logs``/``exec`` serving (read the log files instead), no resource accounting
beyond RLIMIT_AS, no eviction, no HOME default (set it in the env). A process
that leaves its container's session (setsid/daemonize) outlives its container
(with its container's private /tmp deleted under it once the pod is done); the
agent is a child subreaper, so such processes are still killed when the agent
shuts down, but not after the agent itself was SIGKILLed.

State dir layout: logs/ (container output, kept after the pod is gone), pods/
(pids of running containers, for cleanup after a crash), podtmp/ (the containers'
private /tmp and /dev/shm, see above), tmp/ (client certs from an inline
kubeconfig).

Usage:
  python sandbox/agent.py --kubeconfig PATH --node NAME --state-dir DIR
         [--restart-backoff 10] [--max-backoff 300]
         [--capacity-cpu 64] [--capacity-memory 64Gi] [--capacity-pods 250]
         [--private-tmp auto|require|off]
"""
from __future__ import annotations

import argparse
import dataclasses
import errno
import json
import logging
import math
import os
import platform
import queue
import re
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

from gridshim import quantity as _quantity

log = logging.getLogger("gridshim-agent")

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NODE_IP = "127.0.0.1"
KUBELET_VERSION = "v1.36.3"
RUNTIME_VERSION = "gridshim-agent://0.1"
LEASE_NAMESPACE = "kube-node-lease"
LEASE_RENEW_SECONDS = 10
LEASE_DURATION_SECONDS = 40
NODE_STATUS_SECONDS = 60
BACKOFF_RESET_SECONDS = 600       # a container that ran this long starts over at no back-off
SHUTDOWN_GRACE_SECONDS = 5
DEFAULT_TERMINATION_GRACE = 30
SMP = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
TERMINAL_PHASES = ("Succeeded", "Failed")
UNKNOWN_MESSAGE = "The container could not be located when the pod was terminated"


# --------------------------------------------------------------------------- pure helpers

# gridshim's own reading of quantities (the agent runs from the checkout's venv, which has gridshim)
QuantityError = _quantity.QuantityError


def parse_quantity(q: Any) -> Fraction:
    """Parse a Kubernetes resource quantity ("128Mi", "1.5G", "500m", "1e3") exactly."""
    return Fraction(*_quantity.ratio(q))


def quantity_bytes(q: Any) -> int:
    """A memory quantity as whole bytes, rounded up like Quantity.Value()."""
    v = parse_quantity(q)
    if v < 0:
        raise QuantityError(f"negative quantity {q!r}")
    return math.ceil(v)


def rfc3339(t: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if t is None else t))


def micro_time(t: float | None = None) -> str:
    dt = datetime.fromtimestamp(time.time() if t is None else t, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def go_duration(seconds: float) -> str:
    """Format like Go's time.Duration.String() for whole seconds: 10s, 2m40s, 5m0s, 1h0m0s."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s}s"
    h, m = divmod(m, 60)
    return f"{h}h{m}m{s}s"


def expand_vars(s: str, mapping: dict[str, str]) -> str:
    """Kubernetes $(VAR) expansion: $(NAME) -> value when NAME is defined, else left as is;
    $$ -> $; an unterminated $( is kept literally."""
    out: list[str] = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c == "$" and i + 1 < n:
            nxt = s[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                j = s.find(")", i + 2)
                if j < 0:
                    out.append(s[i:])
                    break
                name = s[i + 2:j]
                out.append(mapping[name] if name in mapping else s[i:j + 1])
                i = j + 1
                continue
        out.append(c)
        i += 1
    return "".join(out)


_FIELD_LABEL_RE = re.compile(r"^metadata\.(labels|annotations)\['(.*)'\]$")


def field_ref_value(pod: dict, field_path: str) -> str | None:
    """Value of a downward-API fieldRef for this agent, or None when unsupported."""
    md = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    simple = {
        "metadata.name": md.get("name", ""),
        "metadata.namespace": md.get("namespace", ""),
        "metadata.uid": md.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": NODE_IP,
        "status.hostIP": NODE_IP,
        "status.podIPs": NODE_IP,
        "status.hostIPs": NODE_IP,
    }
    if field_path in simple:
        return simple[field_path]
    m = _FIELD_LABEL_RE.match(field_path)
    if m:
        return (md.get(m.group(1)) or {}).get(m.group(2), "")
    return None


def spec_env(container: dict, pod: dict) -> tuple[dict[str, str], list[str]]:
    """The container's own env list resolved to a dict (in order, with $(VAR) expansion of
    values against earlier entries), plus warnings for what could not be resolved."""
    env: dict[str, str] = {}
    warnings: list[str] = []
    if container.get("envFrom"):
        warnings.append(f"container {container.get('name')}: envFrom is not supported, ignored")
    for item in container.get("env") or []:
        name = item.get("name")
        if not name:
            continue
        if "valueFrom" in item and item["valueFrom"] is not None:
            vf = item["valueFrom"]
            value = None
            if vf.get("fieldRef"):
                value = field_ref_value(pod, vf["fieldRef"].get("fieldPath", ""))
                what = f"fieldRef {vf['fieldRef'].get('fieldPath')!r}"
            else:
                what = "valueFrom " + ",".join(sorted(k for k in vf if vf[k] is not None))
            if value is None:
                warnings.append(f"container {container.get('name')}: env {name}: {what} is not supported, using \"\"")
                value = ""
            env[name] = value
        else:
            env[name] = expand_vars(item.get("value") or "", env)
    return env, warnings


def with_env_defaults(env: dict[str, str], pod: dict) -> dict[str, str]:
    full = dict(env)
    full.setdefault("PATH", DEFAULT_PATH)
    full.setdefault("HOSTNAME", (pod.get("metadata") or {}).get("name", ""))
    return full


def build_env(container: dict, pod: dict) -> tuple[dict[str, str], list[str]]:
    """Complete process environment: the container's env plus PATH/HOSTNAME defaults
    (nothing from the agent's own environment)."""
    env, warnings = spec_env(container, pod)
    return with_env_defaults(env, pod), warnings


def container_argv(container: dict, mapping: dict[str, str]) -> list[str]:
    """argv = command + args (args alone when there is no command), $(VAR)-expanded."""
    argv = list(container.get("command") or []) + list(container.get("args") or [])
    return [expand_vars(str(a), mapping) for a in argv]


class ConfigError(Exception):
    """The container cannot be started as specified (CreateContainerConfigError)."""


@dataclasses.dataclass(frozen=True)
class Identity:
    uid: int
    gid: int
    groups: tuple[int, ...]


def resolve_identity(pod: dict, container: dict, agent_is_root: bool) -> Identity | None:
    """The uid/gid/groups a container runs as; None = as the agent itself (agent not root).
    Raises ConfigError when a root agent would have to run the container as uid 0."""
    psc = (pod.get("spec") or {}).get("securityContext") or {}
    csc = container.get("securityContext") or {}
    if not agent_is_root:
        return None
    uid = csc.get("runAsUser")
    if uid is None:
        uid = psc.get("runAsUser")
    if uid is None or int(uid) == 0:
        raise ConfigError("container would run as root")
    gid = csc.get("runAsGroup")
    if gid is None:
        gid = psc.get("runAsGroup")
    if gid is None:
        gid = uid
    groups: list[int] = []
    for g in [psc.get("fsGroup")] + list(psc.get("supplementalGroups") or []):
        if g is not None and int(g) not in groups:
            groups.append(int(g))
    return Identity(int(uid), int(gid), tuple(groups))


def memory_limit(container: dict) -> int | None:
    mem = ((container.get("resources") or {}).get("limits") or {}).get("memory")
    return None if mem is None else quantity_bytes(mem)


def restart_delay(crashes: int, base: float, cap: float) -> float:
    """Back-off before restarting after the crashes-th consecutive exit (kubelet style:
    the first restart is immediate, then base, 2*base, 4*base ... capped at cap)."""
    if crashes <= 1:
        return 0.0
    return float(min(cap, base * (2 ** (crashes - 2))))


def should_restart(policy: str, exit_code: int) -> bool:
    if policy == "Always":
        return True
    if policy == "OnFailure":
        return exit_code != 0
    return False


def exit_status(returncode: int) -> tuple[int, int | None]:
    """(exitCode, signal) from a Popen returncode; killed by signal N -> (128+N, N)."""
    if returncode < 0:
        return 128 - returncode, -returncode
    return returncode, None


def terminated_state(exit_code: int, started_at: str | None, finished_at: str,
                     container_id: str | None = None, signal_no: int | None = None,
                     reason: str | None = None, message: str | None = None) -> dict:
    t: dict[str, Any] = {"exitCode": exit_code,
                         "reason": reason or ("Completed" if exit_code == 0 else "Error"),
                         "finishedAt": finished_at}
    if started_at:
        t["startedAt"] = started_at
    if signal_no:
        t["signal"] = signal_no
    if message:
        t["message"] = message
    if container_id:
        t["containerID"] = container_id
    return t


def final_phase(exit_codes: list[int | None]) -> str:
    """Succeeded when every container exited 0, else Failed."""
    return "Succeeded" if exit_codes and all(c == 0 for c in exit_codes) else "Failed"


def start_error(exc: BaseException, argv: list[str], cwd: str) -> tuple[int, str]:
    """(exitCode, message) for a process that could not be started."""
    if isinstance(exc, OSError):
        fname = exc.filename if isinstance(exc.filename, str) else None
        if fname == cwd and exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.EACCES):
            return 128, f"chdir to cwd ({cwd!r}) set in the container spec failed: {exc.strerror}"
        if exc.errno == errno.ENOENT:
            return 127, f"exec: {argv[0]!r}: executable file not found in $PATH"
        if exc.errno in (errno.EACCES, errno.ENOEXEC):
            return 126, f"exec: {argv[0]!r}: {exc.strerror}"
        return 128, f"failed to start {argv[0]!r}: {exc.strerror or exc}"
    return 128, f"failed to start {argv[0]!r}: {exc}"


# --------------------------------------------------------------------------- private /tmp

PRIVATE_ROOTS = ("/tmp", "/dev/shm")   # what every container gets its own copy of
MS_RDONLY = 0x1
MS_REMOUNT = 0x20
PODTMP = "podtmp"                      # STATE_DIR/podtmp/<pod uid>/<container>/{tmp,shm}
PRIVATE_TMP_SETTINGS = ("auto", "require", "off")
CLONE_NEWNS = 0x00020000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
_DIR_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$")


@dataclasses.dataclass(frozen=True)
class PrivateDirs:
    """Where one container's private /tmp and /dev/shm live on the host."""
    root: str   # STATE_DIR/podtmp/<pod uid>/<container>: recreated at every start
    tmp: str    # bound onto /tmp
    shm: str    # bound onto /dev/shm

    def source_for(self, target: str) -> str:
        return {"/tmp": self.tmp, "/dev/shm": self.shm}[target]


def _dir_name(what: str, value: Any) -> str:
    if not isinstance(value, str) or not _DIR_NAME_RE.match(value):
        raise ValueError(f"unsafe {what} {value!r} for a directory name")
    return value


def pod_private_root(state_dir: str, pod_uid: str) -> str:
    """STATE_DIR/podtmp/<pod uid>: everything of one pod, removed as a whole."""
    return os.path.join(state_dir, PODTMP, _dir_name("pod uid", pod_uid))


def private_dirs(state_dir: str, pod_uid: str, container: str) -> PrivateDirs:
    root = os.path.join(pod_private_root(state_dir, pod_uid), _dir_name("container name", container))
    return PrivateDirs(root=root, tmp=os.path.join(root, "tmp"), shm=os.path.join(root, "shm"))


def is_under(path: str, root: str) -> bool:
    """path is root or lies below it (both normalized, absolute)."""
    return path == root or path.startswith(root.rstrip("/") + "/")


def hostpath_binds(pod: dict, container: dict, roots: tuple[str, ...] | list[str]) -> list[str]:
    """Paths of the hostPath volumes this container mounts that lie under a private root
    (/tmp, /dev/shm): they have to be bound back in at the same path. Normalized, parents
    before children, and a path below another one in the list is left out (the outer bind
    already shows it)."""
    volumes = {v.get("name"): v for v in (pod.get("spec") or {}).get("volumes") or []
               if isinstance(v, dict) and isinstance(v.get("hostPath"), dict)}
    paths = set()
    for m in container.get("volumeMounts") or []:
        v = volumes.get(m.get("name"))
        if v is None:
            continue
        p = v["hostPath"].get("path")
        if not isinstance(p, str) or not p.startswith("/"):
            continue
        p = os.path.normpath("/" + p.lstrip("/"))
        if any(is_under(p, r) for r in roots):
            paths.add(p)
    out: list[str] = []
    for p in sorted(paths, key=lambda q: (q.count("/"), q)):
        if not any(is_under(p, q) for q in out):
            out.append(p)
    return out


def outermost(paths: list[str]) -> list[str]:
    """PATHS normalized, parents before children, without those below another one in the list."""
    out: list[str] = []
    for p in sorted({os.path.normpath(q) for q in paths}, key=lambda q: (q.count("/"), q)):
        if not any(is_under(p, q) for q in out):
            out.append(p)
    return out


def root_of(path: str, roots: tuple[str, ...] | list[str]) -> str:
    """The private root (the longest) that path lies under."""
    return max((r for r in roots if is_under(path, r)), key=len)


def podtmp_leftovers(entries: list[str], live_pod_uids: set[str]) -> list[str]:
    """Entries of STATE_DIR/podtmp to remove: everything that is not the directory of a pod
    this agent is running now (at start and at shutdown that is everything)."""
    return sorted(e for e in entries if e not in live_pod_uids)


def private_tmp_decision(setting: str, is_root: bool, probe_error: str | None) -> tuple[str, str | None]:
    """What containers get: ("private", None), ("shared", why) or ("refused", why: no
    container may start)."""
    if setting == "off":
        return "shared", "--private-tmp off"
    if not is_root:
        return "shared", "the agent does not run as root"
    if probe_error is None:
        return "private", None
    if setting == "require":
        return "refused", probe_error
    return "shared", probe_error


def encode_child_report(stage: str, err: int, strerror: str, detail: str = "") -> bytes:
    return "\0".join((stage, str(err), strerror, detail)).encode("utf-8", "replace")


def decode_child_report(data: bytes) -> tuple[str, int, str, str] | None:
    parts = data.decode("utf-8", "replace").split("\0")
    if len(parts) != 4:
        return None
    try:
        return parts[0], int(parts[1]), parts[2], parts[3]
    except ValueError:
        return None


def child_failure(report: tuple[str, int, str, str], argv: list[str], cwd: str) -> tuple[int, str]:
    """(exitCode, message) for a child whose set-up in preexec_fn failed at report's stage."""
    stage, err, strerror, detail = report
    if stage == "chdir":
        return start_error(OSError(err, strerror, cwd), argv, cwd)
    if stage == "unshare":
        return 128, f"cannot give the container a private /tmp: unshare(CLONE_NEWNS): {strerror}"
    if stage == "mount":
        return 128, f"cannot give the container a private /tmp: {detail}: {strerror}"
    if stage == "ids":
        return 128, f"cannot switch to {detail}: {strerror}"
    return 128, f"container set-up failed ({stage}): {strerror}"


class _Libc:
    """unshare(2) and mount(2) through ctypes (Python 3.11 has no os.unshare), loaded in the
    parent so a child between fork and exec only makes the calls."""
    _instance: _Libc | None = None

    def __init__(self) -> None:
        import ctypes
        lib = ctypes.CDLL(None, use_errno=True)
        self.unshare = lib.unshare
        self.unshare.argtypes = [ctypes.c_int]
        self.unshare.restype = ctypes.c_int
        self.mount = lib.mount
        self.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
        self.mount.restype = ctypes.c_int
        self.get_errno = ctypes.get_errno

    @classmethod
    def get(cls) -> _Libc:
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance


@dataclasses.dataclass(frozen=True)
class Bind:
    source: str      # a host path; the child opens it before any mount covers it
    target: str
    recursive: bool
    what: str        # for error messages
    read_only: bool = False  # remounted read-only after the bind (projected volumes, as the kubelet mounts them)


# -- projected volumes: the ServiceAccount token, its CA and namespace, as the kubelet projects them
#
# The ServiceAccount admission plugin gives every pod that does not set automountServiceAccountToken: false
# a `kube-api-access-*` projected volume (a serviceAccountToken source, the namespace's kube-root-ca.crt
# ConfigMap, the downward API's metadata.namespace) mounted read-only at SERVICE_ACCOUNT_DIR. The agent
# fills such volumes as the kubelet does: a TokenRequest for the pod's ServiceAccount, bound to the pod
# (the API server refuses the token once the pod is gone), with the volume's audience and
# expirationSeconds; refreshed at 80 % of its life or after 24 h; files replaced atomically in a
# per-pod directory that is bind-mounted read-only into each container's own mount namespace.
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
# Mount points the agent may create on the host (empty, root-owned), as a runtime creates them in an image.
SECRETS_ROOTS = ("/run/secrets", "/var/run/secrets")
VOLUMES_DIR = "_volumes"                    # STATE_DIR/podtmp/<pod uid>/_volumes/<volume> (no container name starts with _)
TOKEN_DEFAULT_SECONDS = 3600                # a serviceAccountToken source without expirationSeconds
TOKEN_REFRESH_FRACTION = 0.8                # the kubelet's token manager: refresh at 80 % of the token's life
TOKEN_MAX_AGE = 24 * 3600                   # ... or when it is a day old
VOLUME_RETRY_SECONDS = 10.0                 # a failed refresh is tried again this soon (the old token still works)
PROJECTED_MODE = 0o644                      # a projected volume's defaultMode


class VolumeError(Exception):
    """A projected volume cannot be filled (TokenRequest refused, ConfigMap missing, unsupported source)."""


def projected_volumes(pod: dict) -> dict[str, dict]:
    """The pod's projected volumes by name."""
    return {v["name"]: v["projected"] for v in (pod.get("spec") or {}).get("volumes") or []
            if isinstance(v, dict) and isinstance(v.get("projected"), dict) and isinstance(v.get("name"), str)}


def projected_mounts(pod: dict, container: dict) -> list[tuple[str, str]]:
    """(volume name, mountPath) of each projected volume CONTAINER mounts, in its volumeMounts order."""
    volumes = projected_volumes(pod)
    return [(m["name"], os.path.normpath(m["mountPath"])) for m in container.get("volumeMounts") or []
            if m.get("name") in volumes and isinstance(m.get("mountPath"), str) and m["mountPath"].startswith("/")]


def token_refresh_at(issued: float, expires: float) -> float:
    """When the kubelet replaces a token issued at ISSUED that expires at EXPIRES (epoch seconds)."""
    return issued + min(TOKEN_REFRESH_FRACTION * max(0.0, expires - issued), TOKEN_MAX_AGE)


def projected_file_path(path: Any) -> str:
    """A source item's path inside the volume: relative, no '..', no empty parts."""
    if not isinstance(path, str) or not path or path.startswith("/") or \
            any(p in ("", ".", "..") for p in path.split("/")):
        raise VolumeError(f"invalid path {path!r} in a projected volume")
    return path


def file_owner(pod: dict) -> int | None:
    """The kubelet's fsUser: the runAsUser every container shares (the token file is then that user's,
    mode 0600), else None."""
    psc = (pod.get("spec") or {}).get("securityContext") or {}
    spec = pod.get("spec") or {}
    users = {(c.get("securityContext") or {}).get("runAsUser", psc.get("runAsUser"))
             for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])}
    return next(iter(users)) if len(users) == 1 and isinstance(next(iter(users)), int) else None


def service_env(server: str) -> dict[str, str]:
    """The kubelet's variables for the `kubernetes` Service (set whatever enableServiceLinks says). There
    is no kube-proxy here, so they name the API server's own address instead of the Service's ClusterIP."""
    from urllib.parse import urlsplit
    u = urlsplit(server)
    host, port = u.hostname or NODE_IP, str(u.port or 443)
    addr = f"tcp://[{host}]:{port}" if ":" in host else f"tcp://{host}:{port}"
    return {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port,
            "KUBERNETES_SERVICE_PORT_HTTPS": port, "KUBERNETES_PORT": addr,
            f"KUBERNETES_PORT_{port}_TCP": addr, f"KUBERNETES_PORT_{port}_TCP_PROTO": "tcp",
            f"KUBERNETES_PORT_{port}_TCP_PORT": port, f"KUBERNETES_PORT_{port}_TCP_ADDR": host}


def child_setup(limits: Callable[[], None], ident: Identity | None, cwd: str | None,
                binds: list[Bind] | None, report_fd: int) -> Callable[[], None]:
    """preexec_fn for a root agent: [private mount namespace + binds], then groups, gid,
    uid, then chdir(cwd), then the rlimits (last: RLIMIT_AS may leave no room for Python).
    On failure it writes encode_child_report(...) to report_fd and raises, which makes
    Popen raise SubprocessError; the parent reads the report to say what went wrong.

    Every bind source is opened (O_PATH) after unshare and before the first bind, and
    bound from /proc/self/fd/N: a source under /tmp (a state dir or a hostPath there) is
    still reachable once /tmp is covered. (An fd opened by the parent would not do: the
    kernel refuses, EINVAL, to bind from a mount of another namespace.)"""
    lc = _Libc.get() if binds is not None else None
    mounts = [(b.source, b.target.encode(), MS_BIND | (MS_REC if b.recursive else 0), b.what)
              for b in binds or []]
    read_only = {b.target.encode() for b in binds or [] if b.read_only}
    o_path = os.O_PATH | os.O_CLOEXEC
    ids = None if ident is None else (ident.uid, ident.gid, list(ident.groups))
    who = "" if ident is None else f"uid {ident.uid} gid {ident.gid} groups {list(ident.groups)}"

    def fail(stage: str, err: int, detail: str = "") -> None:
        try:
            os.write(report_fd, encode_child_report(stage, err, os.strerror(err), detail))
        except OSError:
            pass
        raise OSError(err, os.strerror(err))

    def preexec() -> None:
        if lc is not None:
            if lc.unshare(CLONE_NEWNS) != 0:
                fail("unshare", lc.get_errno())
            if lc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
                fail("mount", lc.get_errno(), "making all mounts private (mount --make-rprivate /)")
            opened = []
            for src, _, _, what in mounts:
                try:
                    opened.append(os.open(src, o_path))
                except OSError as e:
                    fail("mount", e.errno or errno.ENOENT, what)
            for fd, (_, tgt, flags, what) in zip(opened, mounts):
                if lc.mount(b"/proc/self/fd/%d" % fd, tgt, None, flags, None) != 0:
                    fail("mount", lc.get_errno(), what)
                if tgt in read_only and lc.mount(None, tgt, None, MS_BIND | MS_REMOUNT | MS_RDONLY, None) != 0:
                    fail("mount", lc.get_errno(), what + " (read-only)")
                os.close(fd)
        if ids is not None:
            try:
                os.setgroups(ids[2])
                os.setresgid(ids[1], ids[1], ids[1])
                os.setresuid(ids[0], ids[0], ids[0])
            except OSError as e:
                fail("ids", e.errno or errno.EPERM, who)
        if cwd is not None:
            try:
                os.chdir(cwd)
            except OSError as e:
                fail("chdir", e.errno or errno.ENOENT)
        limits()
    return preexec


def read_child_report(fd: int) -> tuple[str, int, str, str] | None:
    try:
        os.set_blocking(fd, False)
        return decode_child_report(os.read(fd, 65536))
    except OSError:
        return None


def remove_tree(path: str) -> bool:
    """rm -rf path (never following symlinks); False (and a warning) when it failed."""
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        log.warning("cannot remove %s: %s", path, e)
        return False
    return True


def make_mountpoint(base: str, rel: str, host_root: str, host_is_dir: bool) -> None:
    """Create base/rel (inside a freshly made private /tmp, so nobody else writes there yet)
    as a mount point for host_root/rel: intermediate directories get the owner and mode of
    the host's, the last component is a directory or an empty file like the host path."""
    parts = [p for p in rel.split("/") if p]
    cur, host = base, host_root
    for i, part in enumerate(parts):
        cur, host = os.path.join(cur, part), os.path.join(host, part)
        last = i == len(parts) - 1
        if last and not host_is_dir:
            if not os.path.lexists(cur):
                os.close(os.open(cur, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
            return
        if not os.path.lexists(cur):
            os.mkdir(cur, 0o755)
            if not last:
                try:
                    st = os.stat(host)
                    os.chown(cur, st.st_uid, st.st_gid)
                    os.chmod(cur, st.st_mode & 0o7777)
                except OSError:
                    pass


@dataclasses.dataclass
class ContainerRun:
    """What the agent knows about one container of a pod (one record across restarts)."""
    name: str
    image: str
    init: bool
    spec: dict
    restart_count: int = 0
    starts: int = 0
    state: dict = dataclasses.field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: dict = dataclasses.field(default_factory=dict)
    prev_last_state: dict = dataclasses.field(default_factory=dict)
    container_id: str | None = None
    crashes: int = 0
    restart_at: float | None = None
    done: bool = False          # exited for good (no restart coming)
    blocked: bool = False       # config error under restartPolicy Always: never started
    proc: Any = None
    started_at: str | None = None
    started_mono: float = 0.0

    @classmethod
    def from_spec(cls, spec: dict, init: bool, waiting_reason: str = "ContainerCreating") -> ContainerRun:
        return cls(name=spec["name"], image=spec.get("image") or "", init=init, spec=spec,
                   state={"waiting": {"reason": waiting_reason}})


def container_status(c: ContainerRun, terminating: bool = False) -> dict:
    running = "running" in c.state
    if c.init:
        ready = "terminated" in c.state and c.state["terminated"].get("exitCode") == 0
    else:
        ready = running and not terminating
    st: dict[str, Any] = {
        "name": c.name, "image": c.image, "imageID": "",
        "ready": ready, "started": running, "restartCount": c.restart_count,
        "state": c.state, "lastState": c.last_state or {},
    }
    if c.container_id:
        st["containerID"] = c.container_id
    return st


def _names(names: list[str]) -> str:
    return "[" + " ".join(names) + "]"


def desired_conditions(phase: str, incomplete_inits: list[str], unready: list[str]) -> dict[str, tuple]:
    """Pod conditions the agent owns: type -> (status, reason, message)."""
    terminal = phase in TERMINAL_PHASES
    out: dict[str, tuple] = {}
    out["PodReadyToStartContainers"] = ("False", None, None) if terminal else ("True", None, None)
    if incomplete_inits:
        out["Initialized"] = ("False", "ContainersNotInitialized",
                              f"containers with incomplete status: {_names(incomplete_inits)}")
    else:
        out["Initialized"] = ("True", None, None)
    if terminal:
        ready = ("False", "PodCompleted" if phase == "Succeeded" else "PodFailed", None)
    elif unready:
        ready = ("False", "ContainersNotReady", f"containers with unready status: {_names(unready)}")
    else:
        ready = ("True", None, None)
    out["Ready"] = ready
    out["ContainersReady"] = ready
    return out


def make_conditions(desired: dict[str, tuple], previous: dict[str, dict], now: str,
                    generation: int | None = None) -> list[dict]:
    """Condition dicts for a strategic-merge patch; lastTransitionTime only moves when the
    status changes; absent reason/message are sent as null so stale ones are removed."""
    out = []
    for ctype, (status, reason, message) in desired.items():
        prev = previous.get(ctype)
        ltt = (prev.get("lastTransitionTime") or now) if prev and prev.get("status") == status else now
        c: dict[str, Any] = {"type": ctype, "status": status, "lastProbeTime": None,
                             "lastTransitionTime": ltt, "reason": reason, "message": message}
        if generation is not None:
            c["observedGeneration"] = generation
        out.append(c)
    return out


def pod_ip_fields() -> dict:
    return {"hostIP": NODE_IP, "hostIPs": [{"ip": NODE_IP}],
            "podIP": NODE_IP, "podIPs": [{"ip": NODE_IP}]}


def is_terminal(pod: dict) -> bool:
    return ((pod.get("status") or {}).get("phase")) in TERMINAL_PHASES


def is_deleting(pod: dict) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def touched_by_agent(pod: dict) -> bool:
    """True when some agent already started this pod (it has a startTime or is Running)."""
    st = pod.get("status") or {}
    return bool(st.get("startTime")) or st.get("phase") == "Running"


def grace_seconds(pod: dict) -> int:
    md = pod.get("metadata") or {}
    g = md.get("deletionGracePeriodSeconds")
    if g is None:
        g = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
    return DEFAULT_TERMINATION_GRACE if g is None else max(0, int(g))


def orphan_status(pod: dict, now: str, node: str) -> dict:
    """Status marking a pod left over from an earlier agent life as Failed."""
    st = pod.get("status") or {}
    conds = {c.get("type"): c for c in st.get("conditions") or []}
    initialized = conds.get("Initialized", {}).get("status") == "True" or not (pod.get("spec") or {}).get("initContainers")
    lost = {"exitCode": 137, "reason": "NodeAgentRestarted",
            "message": "The node agent restarted; the container's process was killed", "finishedAt": now}

    def convert(statuses: list[dict], specs: list[dict], convert_waiting: bool) -> list[dict]:
        by_name = {s.get("name"): s for s in statuses or []}
        out = []
        for spec in specs:
            s = dict(by_name.get(spec["name"]) or {"name": spec["name"], "image": spec.get("image") or "",
                                                  "imageID": "", "restartCount": 0,
                                                  "state": {"waiting": {"reason": "ContainerCreating"}}})
            state = s.get("state") or {}
            if "running" in state:
                t = dict(lost)
                if state["running"].get("startedAt"):
                    t["startedAt"] = state["running"]["startedAt"]
                if s.get("containerID"):
                    t["containerID"] = s["containerID"]
                s["state"] = {"terminated": t}
            elif "terminated" not in state and (convert_waiting or (s.get("lastState") or {}).get("terminated")):
                s["state"] = {"terminated": dict(lost)}
            s["ready"] = False
            s["started"] = False
            s.setdefault("imageID", "")
            s.setdefault("image", spec.get("image") or "")
            s.setdefault("restartCount", 0)
            out.append(s)
        return out

    spec = pod.get("spec") or {}
    status: dict[str, Any] = {
        "phase": "Failed",
        "reason": "NodeAgentRestarted",
        "message": f"The node agent on {node} restarted while the pod was active; its processes were lost",
        "containerStatuses": convert(st.get("containerStatuses"), spec.get("containers") or [], initialized),
    }
    if spec.get("initContainers"):
        status["initContainerStatuses"] = convert(st.get("initContainerStatuses"), spec["initContainers"], False)
    prev = {c["type"]: c for c in st.get("conditions") or [] if c.get("type")}
    desired = desired_conditions("Failed", [], [])
    if not initialized:
        old = prev.get("Initialized") or {}
        desired["Initialized"] = ("False", old.get("reason") or "ContainersNotInitialized", old.get("message"))
    status["conditions"] = make_conditions(desired, prev, now)
    if not st.get("startTime"):
        status["startTime"] = now
    status.update(pod_ip_fields())
    return status


def node_conditions(now: str, since: str) -> list[dict]:
    def cond(ctype: str, status: str, reason: str, message: str) -> dict:
        return {"type": ctype, "status": status, "reason": reason, "message": message,
                "lastHeartbeatTime": now, "lastTransitionTime": since}
    return [
        cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        cond("Ready", "True", "KubeletReady", "gridshim node agent is posting ready status"),
    ]


def node_labels(name: str) -> dict:
    return {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64"}


def node_status(name: str, capacity: dict[str, str], now: str, since: str, info: dict[str, str]) -> dict:
    node_info = {"machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": "", "osImage": "",
                 "containerRuntimeVersion": RUNTIME_VERSION, "kubeletVersion": KUBELET_VERSION,
                 "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64"}
    node_info.update(info)
    return {
        "capacity": dict(capacity),
        "allocatable": dict(capacity),
        "conditions": node_conditions(now, since),
        "addresses": [{"type": "InternalIP", "address": NODE_IP}, {"type": "Hostname", "address": name}],
        "nodeInfo": node_info,
    }


def without_agent_taints(taints: list[dict] | None, unschedulable: bool = False) -> list[dict]:
    """Drop the node.kubernetes.io/* taints the node-lifecycle controller puts on a node
    whose agent is away (not-ready, unreachable, *-pressure ...), keeping the ones that
    reflect an admin's decision: out-of-service, and unschedulable on a cordoned node."""
    keep = {"node.kubernetes.io/out-of-service"}
    if unschedulable:
        keep.add("node.kubernetes.io/unschedulable")
    return [t for t in taints or [] if not str(t.get("key", "")).startswith("node.kubernetes.io/")
            or t.get("key") in keep]


# --------------------------------------------------------------------------- /proc helpers

def proc_info(pid: int) -> tuple[str, int, int, int, int] | None:
    """(state, ppid, process group, session id, start time in clock ticks), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return None
    rest = data[data.rfind(")") + 2:].split()
    try:
        return rest[0], int(rest[1]), int(rest[2]), int(rest[3]), int(rest[19])
    except (IndexError, ValueError):
        return None


def proc_start(pid: int) -> int | None:
    info = proc_info(pid)
    return None if info is None else info[4]


def _reap(pid: int) -> None:
    """Collect a zombie child without blocking (it may already have been collected)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def children_of(parent: int) -> list[tuple[int, str]]:
    """(pid, state) of the direct children of parent."""
    out = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for e in entries:
        if e.isdigit():
            info = proc_info(int(e))
            if info and info[1] == parent:
                out.append((int(e), info[0]))
    return out


def set_child_subreaper() -> bool:
    """Make orphaned descendants (e.g. a container's `setsid daemon &`) our children, so the
    agent can still find and kill them at shutdown."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def session_members(sids: set[int], started_after: dict[int, int] | None = None,
                    outside_groups: bool = False) -> list[int]:
    """Live (non-zombie) processes whose session id is in sids (optionally only those that
    moved to another process group; optionally only those started no earlier than
    started_after[sid])."""
    if not sids:
        return []
    out = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    me = os.getpid()
    for e in entries:
        if not e.isdigit():
            continue
        pid = int(e)
        if pid == me:
            continue
        info = proc_info(pid)
        if not info or info[0] == "Z" or info[3] not in sids:
            continue
        if outside_groups and info[2] in sids:
            continue
        if started_after and info[3] in started_after and info[4] < started_after[info[3]]:
            continue
        out.append(pid)
    return out


def signal_sessions(sids: set[int], sig: int) -> int:
    """Send sig once to every process of the sessions sids: to each session's process group
    (pgid = sid, as the container was started with setsid) and to members that moved to
    another group. Returns how many live members the sessions had."""
    for sid in sids:
        try:
            os.killpg(sid, sig)
        except (ProcessLookupError, PermissionError):
            pass
    members = session_members(sids)
    for pid in session_members(sids, outside_groups=True):
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
    return len(members)


# --------------------------------------------------------------------------- API access

class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class Api:
    """Thin JSON layer over the official client's ApiClient (auth, TLS, pooling)."""

    def __init__(self, kubeconfig: str, temp_dir: str):
        from kubernetes import client as kclient, config as kconfig
        cfg = kclient.Configuration()
        kconfig.load_kube_config(config_file=kubeconfig, client_configuration=cfg,
                                 persist_config=False, temp_file_path=temp_dir)
        cfg.connection_pool_maxsize = 32
        self.client = kclient.ApiClient(cfg)
        self.client.user_agent = "gridshim-agent/0.1"

    def _send(self, method: str, path: str, query: dict | None, body: Any, content_type: str | None,
              timeout: Any):
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        ser = self.client.param_serialize(
            method=method, resource_path=path,
            query_params=[(k, v) for k, v in (query or {}).items() if v is not None],
            header_params=headers, body=body, auth_settings=["BearerToken"])
        return self.client.call_api(*ser, _request_timeout=timeout)

    @staticmethod
    def _error(status: int, data: bytes | None) -> ApiError:
        msg = ""
        try:
            msg = json.loads(data or b"{}").get("message", "")
        except (ValueError, AttributeError):
            msg = (data or b"")[:300].decode("utf-8", "replace")
        return ApiError(status, msg)

    def request(self, method: str, path: str, query: dict | None = None, body: Any = None,
                content_type: str | None = None, timeout: Any = (10, 60)) -> Any:
        resp = self._send(method, path, query, body, content_type, timeout)
        data = resp.read()
        if not 200 <= resp.status < 300:
            raise self._error(resp.status, data)
        return json.loads(data) if data else None

    def stream(self, path: str, query: dict, timeout: Any):
        resp = self._send("GET", path, query, None, None, timeout)
        if resp.status != 200:
            raise self._error(resp.status, resp.read())
        return resp.response


# --------------------------------------------------------------------------- process reaping

class Reaper:
    """One thread that waits for child exits through pidfds and calls a callback."""

    def __init__(self, periodic: Callable[[], None] | None = None, period: float = 10.0):
        self.periodic, self.period = periodic, period
        self.lock = threading.Lock()
        self.pending: list[tuple[int, Callable[[], None]]] = []
        self.use_pidfd = hasattr(os, "pidfd_open")
        self.sel = selectors.DefaultSelector()
        self.rfd, self.wfd = os.pipe()
        os.set_blocking(self.rfd, False)
        os.set_blocking(self.wfd, False)
        self.sel.register(self.rfd, selectors.EVENT_READ, None)
        threading.Thread(target=self._run, name="reaper", daemon=True).start()

    def watch(self, proc: subprocess.Popen, callback: Callable[[], None]) -> None:
        if self.use_pidfd:
            try:
                fd = os.pidfd_open(proc.pid)
            except OSError as e:
                if e.errno == errno.ESRCH:
                    callback()
                    return
                self.use_pidfd = False
            else:
                with self.lock:
                    self.pending.append((fd, callback))
                try:
                    os.write(self.wfd, b"x")
                except BlockingIOError:
                    pass
                return

        def wait_then_call():
            try:
                proc.wait()
            except Exception:  # noqa: BLE001 - the worker polls anyway
                pass
            callback()
        threading.Thread(target=wait_then_call, name=f"wait-{proc.pid}", daemon=True).start()

    def _run(self) -> None:
        next_periodic = time.monotonic() + self.period
        while True:
            events = self.sel.select(max(0.0, next_periodic - time.monotonic()))
            if time.monotonic() >= next_periodic:
                next_periodic = time.monotonic() + self.period
                if self.periodic is not None:
                    try:
                        self.periodic()
                    except Exception:
                        log.exception("periodic reaping failed")
            for key, _ in events:
                if key.fd == self.rfd:
                    try:
                        while os.read(self.rfd, 4096):
                            pass
                    except BlockingIOError:
                        pass
                    with self.lock:
                        pending, self.pending = self.pending, []
                    for fd, cb in pending:
                        self.sel.register(fd, selectors.EVENT_READ, cb)
                    continue
                self.sel.unregister(key.fd)
                os.close(key.fd)
                try:
                    key.data()
                except Exception:
                    log.exception("reaper callback failed")


class TaskRunner:
    """A few daemon threads for one-shot API chores (finalizing deleted pods, orphans)."""

    def __init__(self, n: int):
        self.q: queue.Queue = queue.Queue()
        for i in range(n):
            threading.Thread(target=self._run, name=f"task-{i}", daemon=True).start()

    def submit(self, fn: Callable, *args) -> None:
        self.q.put((fn, args))

    def _run(self) -> None:
        while True:
            fn, args = self.q.get()
            try:
                fn(*args)
            except Exception:
                log.exception("task %s failed", getattr(fn, "__name__", fn))


# --------------------------------------------------------------------------- pod worker

class PodGone(Exception):
    pass


class StartFailure(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class PodWorker:
    """Runs one pod from start to its terminal status (and final DELETE when deleted)."""

    def __init__(self, agent: Agent, pod: dict):
        self.agent = agent
        self.pod = pod
        md = pod["metadata"]
        self.uid, self.ns, self.name = md["uid"], md["namespace"], md["name"]
        self.key = f"{self.ns}/{self.name}"
        spec = pod.get("spec") or {}
        self.policy = spec.get("restartPolicy") or "Always"
        init_specs = spec.get("initContainers") or []
        self.inits = [ContainerRun.from_spec(c, True, "ContainerCreating" if i == 0 else "PodInitializing")
                      for i, c in enumerate(init_specs)]
        self.mains = [ContainerRun.from_spec(c, False, "PodInitializing" if init_specs else "ContainerCreating")
                      for c in spec.get("containers") or []]
        self.cond = threading.Condition()
        self.kicked = False
        self.gone = False
        self.stage = "init"          # init -> main -> terminating -> final
        self.init_idx = 0
        self.phase = "Pending"
        self.reason: str | None = None
        self.message: str | None = None
        self.start_time = ""
        self.start_mono = 0.0
        self.conditions: dict[str, dict] = {}
        self.dirty = True
        self.retry_at: float | None = None
        self.retry_delay = 1.0
        self.term_kind: str | None = None
        self.term_started = 0.0
        self.term_grace = 0
        self.kill_deadline = 0.0
        self.sigkilled = False
        self.finalized = False
        self.volume_refresh: dict[str, float] = {}  # projected volume -> when (epoch s) to fill it again
        self.thread = threading.Thread(target=self.run, name=f"pod:{self.key}", daemon=True)

    # -- called from other threads
    def kick(self) -> None:
        with self.cond:
            self.kicked = True
            self.cond.notify()

    def update(self, pod: dict) -> None:
        with self.cond:
            self.pod = pod
            self.kicked = True
            self.cond.notify()

    def mark_gone(self) -> None:
        with self.cond:
            self.gone = True
            self.kicked = True
            self.cond.notify()

    # -- helpers
    def log(self, msg: str, *args) -> None:
        log.info("pod %s: " + msg, self.key, *args)

    def all_containers(self) -> list[ContainerRun]:
        return self.inits + self.mains

    def live(self) -> list[ContainerRun]:
        return [c for c in self.all_containers() if c.proc is not None]

    # -- main loop
    def run(self) -> None:
        try:
            self.main()
        except PodGone:
            self.log("gone from the API; killing its processes")
            self.kill_now()
        except Exception:
            log.exception("pod %s: worker failed; killing its processes", self.key)
            self.kill_now()
        finally:
            self.save_state()
            try:
                self.remove_private_dirs()
            except Exception:  # never keep the worker from being accounted for
                log.exception("pod %s: cannot remove its private /tmp", self.key)
            self.agent.worker_exited(self)

    def main(self) -> None:
        self.start_time = rfc3339()
        self.start_mono = time.monotonic()
        ignored = [v.get("name") for v in (self.pod.get("spec") or {}).get("volumes") or []
                   if "hostPath" not in v and "projected" not in v]
        self.log("starting (restartPolicy %s, %d init, %d containers)%s", self.policy, len(self.inits),
                 len(self.mains), f"; ignoring volumes {ignored}" if ignored else "")
        while True:
            if self.agent.stopping:
                return
            with self.cond:
                if self.gone:
                    raise PodGone()
                pod = self.pod
                self.kicked = False
            self.step(pod)
            if self.stage == "final":
                if self.flush():
                    if is_deleting(pod):
                        self.finalize_delete()
                    return
            else:
                self.flush()
            timeout = self.next_timeout()
            with self.cond:
                if not self.kicked and not self.gone and not self.agent.stopping:
                    self.cond.wait(timeout)

    def next_timeout(self) -> float:
        now = time.monotonic()
        cands = [30.0]
        if self.stage in ("init", "main"):
            for c in self.all_containers():
                if c.restart_at is not None and c.proc is None and not c.done:
                    cands.append(c.restart_at - now)
            ads = (self.pod.get("spec") or {}).get("activeDeadlineSeconds")
            if ads is not None:
                cands.append(self.start_mono + int(ads) - now)
            if self.volume_refresh:
                cands.append(min(self.volume_refresh.values()) - time.time())
        if self.stage == "terminating":
            cands.append((self.kill_deadline - now) if not self.sigkilled else 1.0)
        if self.dirty and self.retry_at is not None:
            cands.append(self.retry_at - now)
        return max(0.0, min(cands))

    def step(self, pod: dict) -> None:
        now = time.monotonic()
        self.reap(now)
        if self.stage in ("init", "main") and self.volume_refresh:
            self.refresh_volumes()
        if self.stage in ("init", "main"):
            ads = (pod.get("spec") or {}).get("activeDeadlineSeconds")
            if is_deleting(pod):
                self.begin_terminate("deleted", grace_seconds(pod), now)
            elif ads is not None and now - self.start_mono >= int(ads):
                self.log("active deadline of %ss exceeded", ads)
                self.begin_terminate("deadline", grace_seconds({"spec": pod.get("spec")}), now)
        if self.stage == "terminating":
            if self.term_kind == "deleted" and grace_seconds(pod) != self.term_grace:
                # a second delete with a shorter grace period (e.g. --force) counts from now
                self.term_grace = grace_seconds(pod)
                self.kill_deadline = min(self.kill_deadline, now + self.term_grace)
            live = self.live()
            if live and not self.sigkilled and now >= self.kill_deadline:
                self.log("grace period over; SIGKILL %s", [c.name for c in live])
                self.sigkilled = True
                signal_sessions({c.proc.pid for c in live}, signal.SIGKILL)
            if not live:
                self.finish_terminated()
        if self.stage == "init":
            self.advance_init(now)
        if self.stage == "main":
            self.advance_main(now)

    def advance_init(self, now: float) -> None:
        while self.stage == "init":
            if self.init_idx >= len(self.inits):
                self.stage = "main"
                for c in self.mains:
                    if c.state.get("waiting", {}).get("reason") == "PodInitializing":
                        c.state = {"waiting": {"reason": "ContainerCreating"}}
                self.dirty = True
                return
            c = self.inits[self.init_idx]
            if c.proc is not None:
                return
            if c.done:
                if "terminated" in c.state and c.state["terminated"].get("exitCode") == 0:
                    self.init_idx += 1
                    continue
                return
            if c.blocked or (c.restart_at is not None and now < c.restart_at):
                return
            self.start(c, now)
            if c.proc is None and c.restart_at is None and not c.done:
                return  # not started (shutting down or blocked)

    def advance_main(self, now: float) -> None:
        for c in self.mains:
            if c.proc is not None or c.done or c.blocked:
                continue
            if c.restart_at is None or now >= c.restart_at:
                self.start(c, now)
        if self.stage == "main" and self.mains and all(c.done for c in self.mains):
            codes = [c.state.get("terminated", {}).get("exitCode") for c in self.mains]
            self.finish(final_phase(codes))

    # -- starting and exits
    def start(self, c: ContainerRun, now: float) -> None:
        pod = self.pod
        c.restart_at = None
        if self.agent.stopping:
            return
        try:
            env_map, warnings = spec_env(c.spec, pod)
            # the kubelet's variables for the `kubernetes` Service come first; the container's own env wins
            env_map = {**self.agent.service_env, **env_map}
            env = with_env_defaults(env_map, pod)
            argv = container_argv(c.spec, env_map)
            ident = resolve_identity(pod, c.spec, self.agent.is_root)
            mem = memory_limit(c.spec)
        except ConfigError as e:
            self.config_error(c, str(e))
            return
        except QuantityError as e:
            self.config_error(c, f"invalid memory limit: {e}")
            return
        for w in warnings:
            self.log("%s", w)
        if not self.fill_volumes(c, now):
            return
        if c.starts > 0:
            c.restart_count += 1
        c.starts += 1
        started_at = rfc3339()
        cwd = c.spec.get("workingDir") or "/"
        logf = None
        proc = None
        fds: list[int] = []
        tmp_mode, tmp_why = getattr(self.agent, "tmp_mode", "shared"), getattr(self.agent, "tmp_why", None)
        try:
            logdir = os.path.join(self.agent.state_dir, "logs", f"{self.ns}_{self.name}_{self.uid}", c.name)
            os.makedirs(logdir, exist_ok=True)
            logf = open(os.path.join(logdir, f"{c.restart_count}.log"), "ab", buffering=0)  # noqa: SIM115  (closed in finally)
            if not argv:
                raise StartFailure(128, "no command or args in the container spec (images are not run)")
            if tmp_mode == "refused":
                raise StartFailure(128, f"no private /tmp on this node ({tmp_why}) and --private-tmp require")
            if tmp_mode == "shared" and getattr(self.agent, "tmp_warn_containers", False):
                logf.write(f"gridshim-agent: warning: this container shares the node's /tmp and /dev/shm "
                           f"({tmp_why})\n".encode())
            limits = child_limits(mem)
            binds = None
            if tmp_mode == "private":
                try:
                    binds = self.private_mounts(c)
                except (OSError, ValueError) as e:
                    raise StartFailure(128, f"cannot give the container a private /tmp: {e}") from e
                try:
                    binds += self.volume_mounts(c)
                except Exception as e:  # API, file system or spec: the container cannot start
                    raise StartFailure(128, f"cannot mount a projected volume: {e}") from e
            elif projected_mounts(pod, c.spec):
                logf.write(f"gridshim-agent: warning: projected volumes "
                           f"{', '.join(v for v, _ in projected_mounts(pod, c.spec))} are not mounted: "
                           f"no mount namespace for containers here ({tmp_why})\n".encode())
            report_r = report_w = -1
            if ident is not None or binds is not None:
                # a root agent: mounts, ids and chdir are done by our own preexec_fn, in that order
                report_r, report_w = os.pipe2(os.O_CLOEXEC)
                fds += [report_r, report_w]
                preexec = child_setup(limits, ident, cwd, binds, report_w)
                popen_cwd = None
            else:
                preexec, popen_cwd = limits, cwd
            with self.agent.spawn_lock:
                if self.agent.stopping:
                    return
                try:
                    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf,
                                            stderr=subprocess.STDOUT, cwd=popen_cwd, env=env, close_fds=True,
                                            start_new_session=True, preexec_fn=preexec)
                except (OSError, subprocess.SubprocessError) as e:
                    report = read_child_report(report_r) if report_r >= 0 else None
                    if report is not None:
                        raise StartFailure(*child_failure(report, argv, cwd)) from e
                    raise StartFailure(*start_error(e, argv, cwd)) from e
                self.agent.procs[proc.pid] = proc
        except (StartFailure, OSError) as e:
            code, msg = (e.code, e.message) if isinstance(e, StartFailure) else (128, f"cannot set up the container: {e}")
            if logf is not None:
                try:
                    logf.write(f"gridshim-agent: {msg}\n".encode())
                except OSError:
                    pass
            self.log("container %s failed to start: %s", c.name, msg)
            self.on_exit(c, code, None, started_at, reason="StartError", message=msg)
            return
        finally:
            for fd in fds:
                try:
                    os.close(fd)
                except OSError:
                    pass
            if logf is not None:
                logf.close()
        c.proc = proc
        c.container_id = f"gridshim://{proc.pid}"
        c.started_at = started_at
        c.started_mono = time.monotonic()
        c.state = {"running": {"startedAt": started_at}}
        if not c.init:
            self.phase = "Running"
        self.dirty = True
        self.log("container %s started: pid %d%s%s, argv %s", c.name, proc.pid,
                 f" uid {ident.uid} gid {ident.gid} groups {list(ident.groups)}" if ident else "",
                 " (private /tmp)" if tmp_mode == "private" else "", argv)
        self.agent.reaper.watch(proc, self.kick)
        self.save_state()

    def private_mounts(self, c: ContainerRun) -> list[Bind]:
        """Recreate the container's private /tmp and /dev/shm (fresh at every start), make
        mount points for its hostPath volumes there, and say what the child binds where."""
        roots = self.agent.private_roots
        dirs = private_dirs(self.agent.state_dir, self.uid, c.name)
        if not remove_tree(dirs.root):
            raise OSError(errno.EBUSY, f"cannot remove the previous {dirs.root}")
        for d in (dirs.tmp, dirs.shm):
            os.makedirs(d, mode=0o700)
            os.chmod(d, 0o1777)
        binds: list[Bind] = []
        for target in roots:
            src = dirs.source_for(target)
            binds.append(Bind(src, target, False, f"mount --bind {src} {target}"))
        shared = [p for p in self.agent.shared_paths if any(is_under(p, r) for r in roots)]
        for path in outermost(hostpath_binds(self.pod, c.spec, roots) + shared):
            root = root_of(path, roots)
            if not os.path.exists(path):
                self.log("container %s: hostPath %s does not exist; not bound into its private %s",
                         c.name, path, root)
                continue
            rel = os.path.relpath(path, root)
            if rel != ".":
                make_mountpoint(dirs.source_for(root), rel, root, os.path.isdir(path))
            binds.append(Bind(path, path, True, f"mount --rbind {path} {path} (hostPath volume)"))
        return binds

    # -- projected volumes (the ServiceAccount token): see "projected volumes" above
    def volume_dir(self, name: str) -> str:
        return os.path.join(pod_private_root(self.agent.state_dir, self.uid), VOLUMES_DIR,
                            _dir_name("volume name", name))

    def volume_mounts(self, c: ContainerRun) -> list[Bind]:
        """Fill the projected volumes this container mounts (once per pod; refresh_volumes keeps them
        fresh), make their mount points, and say what the child binds where (read-only)."""
        binds: list[Bind] = []
        roots = self.agent.private_roots
        for name, target in projected_mounts(self.pod, c.spec):
            if name not in self.volume_refresh:  # fill_volumes left it: this raises why it cannot be filled
                self.volume_refresh[name] = self.project(name)
            real = os.path.realpath(target)
            if any(is_under(real, r) for r in roots):
                root = root_of(real, roots)
                make_mountpoint(private_dirs(self.agent.state_dir, self.uid, c.name).source_for(root),
                                os.path.relpath(real, root), root, True)
            elif not os.path.isdir(real):
                if not any(is_under(target, r) or is_under(real, r) for r in SECRETS_ROOTS):
                    raise VolumeError(f"mountPath {target} of volume {name} does not exist on this node "
                                      f"(only paths under {' or '.join(SECRETS_ROOTS)} are created)")
                os.makedirs(real, mode=0o755, exist_ok=True)  # an empty mount point, as in an image
            src = self.volume_dir(name)
            binds.append(Bind(src, real, False, f"mount --bind {src} {target} (projected volume {name})",
                              read_only=True))
        return binds

    def fill_volumes(self, c: ContainerRun, now: float) -> bool:
        """Fill the projected volumes C mounts that are not filled yet. False when one cannot be filled
        for now (the TokenRequest failed: API down, ServiceAccount missing): as the kubelet, the container
        stays ContainerCreating with the reason and is tried again in VOLUME_RETRY_SECONDS. A volume this
        agent cannot fill at all (an unsupported source, a bad path) is left to volume_mounts' StartError."""
        if getattr(self.agent, "tmp_mode", "shared") != "private":
            return True
        for name, _ in projected_mounts(self.pod, c.spec):
            if name in self.volume_refresh:
                continue
            try:
                self.volume_refresh[name] = self.project(name)
            except VolumeError:
                return True
            except Exception as e:  # noqa: BLE001 - the API's answer or a transport failure: try again
                msg = f"MountVolume.SetUp failed for volume {name!r}: {e}"
                self.log("container %s: %s; again in %.0f s", c.name, msg, VOLUME_RETRY_SECONDS)
                c.restart_at = now + VOLUME_RETRY_SECONDS
                c.state = {"waiting": {"reason": "ContainerCreating", "message": msg}}
                self.dirty = True
                return False
            self.log("projected volume %s filled", name)
        return True

    def project(self, name: str) -> float:
        """Write projected volume NAME's files (each replaced atomically); returns when to do it again."""
        spec = projected_volumes(self.pod).get(name)
        if spec is None:
            raise VolumeError(f"{name} is not a projected volume")
        files: list[tuple[str, bytes, bool]] = []  # (path, content, is the token)
        refresh = math.inf
        for src in spec.get("sources") or []:
            if src.get("serviceAccountToken") is not None:
                t = src["serviceAccountToken"]
                issued = time.time()
                token, expires = self.agent.request_token(self.pod, t.get("audience") or None,
                                                          int(t.get("expirationSeconds") or TOKEN_DEFAULT_SECONDS))
                files.append((projected_file_path(t.get("path")), token.encode(), True))
                refresh = min(refresh, token_refresh_at(issued, expires))
            elif src.get("configMap") is not None:
                cm = src["configMap"]
                optional = bool(cm.get("optional"))
                data = self.agent.configmap_data(self.ns, str(cm.get("name") or ""), optional)
                if data is None:
                    continue
                for item in cm.get("items") or [{"key": k, "path": k} for k in sorted(data)]:
                    if item.get("key") not in data:
                        if optional:
                            continue
                        raise VolumeError(f"ConfigMap {cm.get('name')} has no key {item.get('key')!r}")
                    files.append((projected_file_path(item.get("path")), str(data[item["key"]]).encode(), False))
            elif src.get("downwardAPI") is not None:
                for item in src["downwardAPI"].get("items") or []:
                    field = (item.get("fieldRef") or {}).get("fieldPath")
                    value = field_ref_value(self.pod, field) if field else None
                    if value is None:
                        raise VolumeError(f"downwardAPI item {item.get('path')!r}: only fieldRef metadata and spec "
                                          "fields are supported here")
                    files.append((projected_file_path(item.get("path")), value.encode(), False))
            else:
                raise VolumeError(f"projected volume {name}: source {', '.join(sorted(src)) or '?'} is not "
                                  "supported by this agent (serviceAccountToken, configMap, downwardAPI are)")
        self.write_volume(name, files, int(spec.get("defaultMode") or PROJECTED_MODE) & 0o777)
        return refresh

    def write_volume(self, name: str, files: list[tuple[str, bytes, bool]], mode: int) -> None:
        """Files owned by root (the token by the pod's user, 0600, as the kubelet does when every container
        runs as one uid), group fsGroup when set; each written aside and renamed into place."""
        d = self.volume_dir(name)
        os.makedirs(d, mode=0o755, exist_ok=True)
        os.chmod(os.path.dirname(d), 0o755)
        os.chmod(d, 0o755)
        owner = file_owner(self.pod) if self.agent.is_root else None
        fs_group = ((self.pod.get("spec") or {}).get("securityContext") or {}).get("fsGroup")
        for rel, data, is_token in files:
            path = os.path.join(d, rel)
            os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
            tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{uuid.uuid4().hex}")
            file_mode = 0o600 if is_token and owner is not None else mode
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, file_mode)
            try:
                os.write(fd, data)
                if self.agent.is_root:
                    os.fchown(fd, owner if is_token and owner is not None else 0,
                              fs_group if isinstance(fs_group, int) else 0)
                os.fchmod(fd, file_mode)
            finally:
                os.close(fd)
            os.replace(tmp, path)

    def refresh_volumes(self) -> None:
        """Fill again the projected volumes whose token is due (a failure is retried soon: the old token
        is still valid for a fifth of its life)."""
        now = time.time()
        for name, at in list(self.volume_refresh.items()):
            if now < at:
                continue
            try:
                self.volume_refresh[name] = self.project(name)
                self.log("projected volume %s: token refreshed", name)
            except Exception as e:  # noqa: BLE001 - never let a refresh kill the pod's worker
                self.log("projected volume %s: refresh failed (%s); again in %.0f s", name, e, VOLUME_RETRY_SECONDS)
                self.volume_refresh[name] = now + VOLUME_RETRY_SECONDS

    def remove_private_dirs(self) -> None:
        """The pod's worker is done (terminal or gone, nothing left running): its private
        /tmp and /dev/shm go. (At shutdown the agent does this after killing everything.)"""
        if self.agent.stopping or self.live() or getattr(self.agent, "tmp_mode", None) != "private":
            return
        try:
            path = pod_private_root(self.agent.state_dir, self.uid)
        except ValueError:
            return
        if os.path.lexists(path) and remove_tree(path):
            self.log("removed its private /tmp and /dev/shm")

    def config_error(self, c: ContainerRun, msg: str) -> None:
        self.log("container %s: CreateContainerConfigError: %s", c.name, msg)
        self.dirty = True
        if self.policy == "Always":
            c.blocked = True
            c.state = {"waiting": {"reason": "CreateContainerConfigError", "message": msg}}
            return
        c.done = True
        c.state = {"terminated": terminated_state(126, None, rfc3339(), reason="CreateContainerConfigError",
                                                  message=msg)}
        if c.init:
            self.finish("Failed")

    def reap(self, now: float) -> None:
        for c in self.all_containers():
            if c.proc is None:
                continue
            rc = c.proc.poll()
            if rc is None:
                continue
            pid = c.proc.pid
            stragglers = signal_sessions({pid}, signal.SIGKILL)
            if stragglers:
                self.log("container %s: killed %d leftover process(es) of its session", c.name, stragglers)
            self.agent.procs.pop(pid, None)
            code, sig = exit_status(rc)
            self.log("container %s (pid %d) exited with code %d%s", c.name, pid, code,
                     f" (signal {sig})" if sig else "")
            c.proc = None
            self.on_exit(c, code, sig, c.started_at, ran=now - c.started_mono)
            self.save_state()

    def on_exit(self, c: ContainerRun, code: int, sig: int | None, started_at: str | None,
                reason: str | None = None, message: str | None = None, ran: float = 0.0) -> None:
        self.dirty = True
        # a StartError has no process, hence no containerID of its own
        term = terminated_state(code, started_at, rfc3339(), None if reason else c.container_id,
                                sig, reason, message)
        if ran >= BACKOFF_RESET_SECONDS:
            c.crashes = 0
        if self.stage in ("terminating", "final") or self.agent.stopping:
            c.state = {"terminated": term}
            c.done = True
            return
        if c.init and code == 0:
            c.state = {"terminated": term}
            c.done = True
            return
        restart = (self.policy != "Never") if c.init else should_restart(self.policy, code)
        if not restart:
            c.state = {"terminated": term}
            c.done = True
            if c.init:
                self.log("init container %s failed; pod fails (restartPolicy %s)", c.name, self.policy)
                self.finish("Failed")
            return
        c.crashes += 1
        delay = restart_delay(c.crashes, self.agent.restart_backoff, self.agent.max_backoff)
        c.prev_last_state = c.last_state
        c.last_state = {"terminated": term}
        c.restart_at = time.monotonic() + delay
        c.state = {"waiting": {"reason": "CrashLoopBackOff",
                               "message": f"back-off {go_duration(delay)} restarting failed container={c.name} "
                                          f"pod={self.name}_{self.ns}({self.uid})"}}
        self.log("container %s will restart in %s (restartPolicy %s)", c.name, go_duration(delay), self.policy)

    # -- termination
    def begin_terminate(self, kind: str, grace: int, now: float) -> None:
        self.stage = "terminating"
        self.term_kind = kind
        self.term_started = now
        self.term_grace = grace
        self.kill_deadline = now + grace
        self.dirty = True
        for c in self.all_containers():
            c.restart_at = None
        live = self.live()
        self.log("%s: stopping %s with grace %ds", "deleted" if kind == "deleted" else "deadline exceeded",
                 [c.name for c in live] or "nothing", grace)
        if live:
            self.sigkilled = grace <= 0
            if grace <= 0:
                signal_sessions({c.proc.pid for c in live}, signal.SIGKILL)
            else:
                # as a container runtime does: SIGTERM to the container's main process (its PID 1) only;
                # what it started gets the SIGKILL when the grace period ends
                for c in live:
                    try:
                        os.kill(c.proc.pid, signal.SIGTERM)
                    except (ProcessLookupError, PermissionError):
                        pass

    def finish_terminated(self) -> None:
        if self.term_kind == "deadline":
            self.finish("Failed", "DeadlineExceeded", "Pod was active on the node longer than the specified deadline")
            return
        if self.init_idx < len(self.inits):
            self.finish("Failed")
            return
        self.finish(None)

    def finish(self, phase: str | None, reason: str | None = None, message: str | None = None) -> None:
        initialized = self.init_idx >= len(self.inits)
        for c in self.all_containers():
            if "terminated" in c.state:
                continue
            if (c.last_state or {}).get("terminated"):
                c.state, c.last_state = c.last_state, c.prev_last_state
            elif (c.init and c.starts > 0) or (not c.init and initialized):
                c.state = {"terminated": {"exitCode": 137, "reason": "ContainerStatusUnknown",
                                          "message": UNKNOWN_MESSAGE, "finishedAt": rfc3339()}}
        if phase is None:
            phase = final_phase([c.state.get("terminated", {}).get("exitCode") for c in self.mains])
        self.stage = "final"
        self.phase, self.reason, self.message = phase, reason, message
        self.dirty = True
        self.retry_at = None
        self.log("phase %s%s", phase, f" ({reason})" if reason else "")

    def kill_now(self) -> None:
        live = self.live()
        if not live:
            return
        sids = {c.proc.pid for c in live}
        signal_sessions(sids, signal.SIGKILL)
        for c in live:
            try:
                c.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.log("pid %d did not die after SIGKILL", c.proc.pid)
            self.agent.procs.pop(c.proc.pid, None)
            c.proc = None

    # -- status
    def render_status(self) -> dict:
        now = rfc3339()
        terminating = self.stage in ("terminating", "final")
        incomplete = [c.name for c in self.inits
                      if not ("terminated" in c.state and c.state["terminated"].get("exitCode") == 0)]
        if self.init_idx >= len(self.inits):
            incomplete = []
        unready = [c.name for c in self.mains if not ("running" in c.state and not terminating)]
        gen = (self.pod.get("metadata") or {}).get("generation")
        conds = make_conditions(desired_conditions(self.phase, incomplete, unready), self.conditions, now, gen)
        self.conditions = {c["type"]: c for c in conds}
        status: dict[str, Any] = {
            "phase": self.phase, "reason": self.reason, "message": self.message,
            "startTime": self.start_time, "conditions": conds,
            "containerStatuses": [container_status(c, terminating) for c in self.mains],
        }
        if self.inits:
            status["initContainerStatuses"] = [container_status(c, terminating) for c in self.inits]
        if gen is not None:
            status["observedGeneration"] = gen
        status.update(pod_ip_fields())
        return status

    def flush(self) -> bool:
        """Write the status when it changed. True when nothing is left to write."""
        if not self.dirty or self.agent.stopping:
            return True
        now = time.monotonic()
        if self.retry_at is not None and now < self.retry_at:
            return False
        status = self.render_status()
        try:
            self.agent.patch_pod_status(self.ns, self.name, self.uid, status)
        except ApiError as e:
            if e.status in (404, 409):
                raise PodGone() from e
            if e.status in (400, 403, 422):
                log.error("pod %s: status rejected (%s); not retrying", self.key, e)
                self.dirty = False
                return True
            self._retry_later(e)
            return False
        except Exception as e:  # noqa: BLE001
            self._retry_later(e)
            return False
        self.dirty = False
        self.retry_at = None
        self.retry_delay = 1.0
        return True

    def _retry_later(self, e: Exception) -> None:
        log.warning("pod %s: status write failed (%s); retrying in %.0fs", self.key, e, self.retry_delay)
        self.retry_at = time.monotonic() + self.retry_delay
        self.retry_delay = min(self.retry_delay * 2, 10.0)

    def finalize_delete(self) -> None:
        delay = 1.0
        while not self.agent.stopping:
            with self.cond:
                if self.gone:
                    return
            try:
                self.agent.delete_pod(self.ns, self.name, self.uid)
                self.finalized = True
                return
            except ApiError as e:
                if e.status in (404, 409):
                    self.finalized = True
                    return
                log.warning("pod %s: final delete failed (%s); retrying", self.key, e)
            except Exception as e:  # noqa: BLE001
                log.warning("pod %s: final delete failed (%s); retrying", self.key, e)
            with self.cond:
                self.cond.wait(delay)
            delay = min(delay * 2, 30.0)

    def save_state(self) -> None:
        """Record live pids in STATE_DIR/pods/<uid>.json so a later agent can kill them
        after a crash; the file goes away once nothing runs."""
        if self.agent.stopping:
            return
        path = os.path.join(self.agent.state_dir, "pods", f"{self.uid}.json")
        procs = []
        for c in self.live():
            start = proc_start(c.proc.pid)
            if start is not None:
                procs.append({"container": c.name, "pid": c.proc.pid, "start": start})
        try:
            if not procs:
                if os.path.exists(path):
                    os.unlink(path)
                return
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
                json.dump({"namespace": self.ns, "name": self.name, "uid": self.uid, "procs": procs}, f)
            os.replace(tmp, path)
        except OSError as e:
            log.warning("pod %s: cannot write state file: %s", self.key, e)


def child_limits(mem: int | None) -> Callable[[], None]:
    """preexec_fn: RLIMIT_CORE 0 and RLIMIT_AS = memory limit. Values are computed here in
    the parent so the child only makes two setrlimit calls."""
    as_limit = None
    if mem is not None:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        as_limit = mem if hard == resource.RLIM_INFINITY else min(mem, hard)
    setrlimit, r_as, r_core = resource.setrlimit, resource.RLIMIT_AS, resource.RLIMIT_CORE

    def preexec() -> None:
        setrlimit(r_core, (0, 0))
        if as_limit is not None:
            setrlimit(r_as, (as_limit, as_limit))
    return preexec


# --------------------------------------------------------------------------- agent

class Agent:
    def __init__(self, args: argparse.Namespace):
        self.node = args.node
        self.state_dir = os.path.abspath(args.state_dir)
        self.restart_backoff = float(args.restart_backoff)
        self.max_backoff = float(args.max_backoff)
        for q in (args.capacity_cpu, args.capacity_memory, args.capacity_pods):
            parse_quantity(q)
        self.capacity = {"cpu": str(args.capacity_cpu), "memory": str(args.capacity_memory),
                         "pods": str(args.capacity_pods)}
        for sub in ("logs", "pods", "tmp"):
            os.makedirs(os.path.join(self.state_dir, sub), exist_ok=True)
        try:
            sv = os.statvfs(self.state_dir)
            self.capacity["ephemeral-storage"] = str(sv.f_blocks * sv.f_frsize)
        except OSError:
            self.capacity["ephemeral-storage"] = "100Gi"
        self.api = Api(args.kubeconfig, os.path.join(self.state_dir, "tmp"))
        self.server = str(self.api.client.configuration.host)
        self.service_env = service_env(self.server)
        self.is_root = os.geteuid() == 0
        self.lock = threading.RLock()
        self.spawn_lock = threading.Lock()
        self.stopping = False
        self.stop_event = threading.Event()
        self.workers: dict[str, PodWorker] = {}
        self.done: dict[str, str] = {}       # uid -> "terminal" | "finalizing" (no thread kept)
        self.procs: dict[int, subprocess.Popen] = {}
        self.subreaper = set_child_subreaper()
        self.reaper = Reaper(self.reap_adopted)
        self.tasks = TaskRunner(4)
        self.node_uid: str | None = None
        self.ready_since = rfc3339()
        self.field_selector = f"spec.nodeName={self.node}"
        self.private_tmp_setting = getattr(args, "private_tmp", "auto")
        self.private_roots = tuple(r for r in PRIVATE_ROOTS if os.path.isdir(r))
        self.shared_paths = [os.path.realpath(p) for p in getattr(args, "shared_path", []) or []]
        self.podtmp_dir = os.path.join(self.state_dir, PODTMP)
        # set by setup_private_tmp() before any pod is started
        self.tmp_mode, self.tmp_why = "shared", "not set up yet"
        self.tmp_warn_containers = False

    # -- API calls
    def patch_pod_status(self, ns: str, name: str, uid: str, status: dict) -> None:
        self.api.request("PATCH", f"/api/v1/namespaces/{ns}/pods/{name}/status",
                         body={"metadata": {"uid": uid}, "status": status}, content_type=SMP)

    def delete_pod(self, ns: str, name: str, uid: str) -> None:
        self.api.request("DELETE", f"/api/v1/namespaces/{ns}/pods/{name}",
                         body={"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                               "preconditions": {"uid": uid}})
        log.info("pod %s/%s: finalized (deleted with grace 0)", ns, name)

    def request_token(self, pod: dict, audience: str | None, seconds: int) -> tuple[str, float]:
        """A TokenRequest for the pod's ServiceAccount, bound to the pod, as the kubelet makes it:
        (token, expiry in epoch seconds)."""
        md, spec = pod["metadata"], pod.get("spec") or {}
        sa = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
        req: dict = {"expirationSeconds": seconds,
                     "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": md["name"], "uid": md["uid"]}}
        if audience:
            req["audiences"] = [audience]
        out = self.api.request("POST", f"/api/v1/namespaces/{md['namespace']}/serviceaccounts/{sa}/token",
                               body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": req})
        status = (out or {}).get("status") or {}
        token, stamp = status.get("token"), str(status.get("expirationTimestamp") or "")
        if not token:
            raise VolumeError(f"the TokenRequest for ServiceAccount {sa} returned no token")
        try:
            expires = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
        except ValueError:
            expires = time.time() + seconds
        return str(token), expires

    def configmap_data(self, ns: str, name: str, optional: bool) -> dict[str, str] | None:
        try:
            return (self.api.request("GET", f"/api/v1/namespaces/{ns}/configmaps/{name}") or {}).get("data") or {}
        except ApiError as e:
            if e.status == 404 and optional:
                return None
            raise

    # -- node
    def node_info(self) -> dict[str, str]:
        def read(path: str) -> str:
            try:
                with open(path) as f:
                    return f.read().strip()
            except OSError:
                return ""
        os_image = "Linux"
        for line in read("/etc/os-release").splitlines():
            if line.startswith("PRETTY_NAME="):
                os_image = line.split("=", 1)[1].strip().strip('"')
        machine_id = read("/etc/machine-id") or uuid.uuid5(uuid.NAMESPACE_DNS, self.node).hex
        return {"machineID": machine_id, "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_DNS, self.node)),
                "bootID": read("/proc/sys/kernel/random/boot_id"), "kernelVersion": platform.release(),
                "osImage": os_image}

    def register_node(self) -> None:
        body = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.node, "labels": node_labels(self.node)}, "spec": {}}
        try:
            node = self.api.request("POST", "/api/v1/nodes", body=body)
            log.info("node %s registered", self.node)
        except ApiError as e:
            if e.status != 409:
                raise
            node = self.api.request("PATCH", f"/api/v1/nodes/{self.node}",
                                    body={"metadata": {"labels": node_labels(self.node)}}, content_type=MERGE)
            log.info("node %s exists; adopted", self.node)
        self.node_uid = node["metadata"]["uid"]
        for c in (node.get("status") or {}).get("conditions") or []:
            if c.get("type") == "Ready" and c.get("status") == "True" and c.get("lastTransitionTime"):
                self.ready_since = c["lastTransitionTime"]  # adopted while still Ready: no transition
        self.patch_node_status(full=True)
        self.remove_agent_taints()

    def patch_node_status(self, full: bool) -> None:
        now = rfc3339()
        if full:
            status = node_status(self.node, self.capacity, now, self.ready_since, self.node_info())
            self.api.request("PATCH", f"/api/v1/nodes/{self.node}/status", body={"status": status},
                             content_type=MERGE)
        else:
            self.api.request("PATCH", f"/api/v1/nodes/{self.node}/status",
                             body={"status": {"conditions": node_conditions(now, self.ready_since)}},
                             content_type=SMP)

    def remove_agent_taints(self) -> None:
        for _ in range(5):
            node = self.api.request("GET", f"/api/v1/nodes/{self.node}")
            taints = (node.get("spec") or {}).get("taints") or []
            keep = without_agent_taints(taints, bool((node.get("spec") or {}).get("unschedulable")))
            if len(keep) == len(taints):
                return
            try:
                self.api.request("PATCH", f"/api/v1/nodes/{self.node}",
                                 body={"metadata": {"resourceVersion": node["metadata"]["resourceVersion"]},
                                       "spec": {"taints": keep or None}}, content_type=MERGE)
                log.info("node %s: removed taints %s", self.node,
                         [t.get("key") for t in taints if t not in keep])
                return
            except ApiError as e:
                if e.status != 409:
                    raise

    def renew_lease(self) -> None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases"
        spec = {"holderIdentity": self.node, "leaseDurationSeconds": LEASE_DURATION_SECONDS,
                "renewTime": micro_time()}
        owner = [{"apiVersion": "v1", "kind": "Node", "name": self.node, "uid": self.node_uid}]
        try:
            self.api.request("PATCH", f"{path}/{self.node}",
                             body={"metadata": {"ownerReferences": owner}, "spec": spec}, content_type=MERGE)
        except ApiError as e:
            if e.status != 404:
                raise
            self.api.request("POST", path, body={
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.node, "namespace": LEASE_NAMESPACE, "ownerReferences": owner},
                "spec": dict(spec, acquireTime=spec["renewTime"])})
            log.info("lease %s/%s created", LEASE_NAMESPACE, self.node)

    def node_needs_status(self) -> bool:
        """True when the API shows our Node not Ready (e.g. the node-lifecycle controller set
        Ready=Unknown during an apiserver outage) or gone: then the status is re-posted now
        rather than at the next minutely heartbeat."""
        try:
            node = self.api.request("GET", f"/api/v1/nodes/{self.node}")
        except ApiError as e:
            return e.status == 404
        ready = [c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"]
        return not ready or ready[0].get("status") != "True"

    def heartbeat_loop(self) -> None:
        next_lease = 0.0
        next_status = time.monotonic() + NODE_STATUS_SECONDS
        while not self.stop_event.is_set():
            now = time.monotonic()
            if now >= next_lease:
                next_lease = now + LEASE_RENEW_SECONDS
                try:
                    self.renew_lease()
                    if self.node_needs_status():
                        next_status = now
                except Exception as e:  # noqa: BLE001
                    log.warning("lease renewal failed: %s", e)
            if now >= next_status:
                next_status = now + NODE_STATUS_SECONDS
                try:
                    self.patch_node_status(full=False)
                except ApiError as e:
                    if e.status == 404:
                        log.warning("node %s disappeared; registering again", self.node)
                        try:
                            self.register_node()
                        except Exception as e2:  # noqa: BLE001
                            log.warning("node registration failed: %s", e2)
                            next_status = now + LEASE_RENEW_SECONDS
                    else:
                        log.warning("node status update failed: %s", e)
                        next_status = now + LEASE_RENEW_SECONDS
                except Exception as e:  # noqa: BLE001
                    log.warning("node status update failed: %s", e)
                    next_status = now + LEASE_RENEW_SECONDS
            self.stop_event.wait(max(0.1, min(next_lease, next_status) - time.monotonic()))

    # -- pods: list/watch
    def list_pods(self) -> tuple[list[dict], str]:
        items: list[dict] = []
        cont = None
        while True:
            data = self.api.request("GET", "/api/v1/pods", query={
                "fieldSelector": self.field_selector, "limit": "500", "continue": cont}, timeout=(10, 120))
            items.extend(data.get("items") or [])
            cont = (data.get("metadata") or {}).get("continue")
            if not cont:
                return items, data["metadata"]["resourceVersion"]

    def watch_loop(self) -> None:
        rv: str | None = None
        delay = 1.0
        last_list = 0.0
        while not self.stop_event.is_set():
            try:
                if rv is None or time.monotonic() - last_list > 900:
                    items, rv = self.list_pods()
                    last_list = time.monotonic()
                    self.reconcile(items)
                rv = self.watch_once(rv)
                delay = 1.0
            except ApiError as e:
                if e.status == 410:
                    log.info("watch: resourceVersion too old; listing again")
                    rv = None
                    continue
                log.warning("watch: %s; retrying in %.0fs", e, delay)
                self.stop_event.wait(delay)
                delay = min(delay * 2, 10.0)
            except Exception as e:  # noqa: BLE001
                if self.stop_event.is_set():
                    return
                log.warning("watch: %s: %s; retrying in %.0fs", type(e).__name__, e, delay)
                self.stop_event.wait(delay)
                delay = min(delay * 2, 10.0)

    def watch_once(self, rv: str) -> str:
        resp = self.api.stream("/api/v1/pods", {
            "fieldSelector": self.field_selector, "watch": "true", "resourceVersion": rv,
            "allowWatchBookmarks": "true", "timeoutSeconds": "300"}, timeout=(10, 330))
        try:
            buf = b""
            for chunk in resp.stream(amt=None, decode_content=True):
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if not line.strip():
                        continue
                    ev = json.loads(line)
                    etype, obj = ev.get("type"), ev.get("object") or {}
                    if etype == "ERROR":
                        raise ApiError(int(obj.get("code") or 500), obj.get("message", "watch error"))
                    rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
                    if etype != "BOOKMARK":
                        self.handle(etype, obj)
                if self.stop_event.is_set():
                    break
        finally:
            resp.release_conn()
        return rv

    def reconcile(self, items: list[dict]) -> None:
        seen = set()
        for pod in items:
            seen.add(pod["metadata"]["uid"])
            self.handle("SYNC", pod)
        with self.lock:
            for uid, w in list(self.workers.items()):
                if uid not in seen:
                    w.mark_gone()
            for uid in list(self.done):
                if uid not in seen:
                    del self.done[uid]
            live = set(self.workers)
        self.sweep_private_dirs(live)

    def handle(self, etype: str, pod: dict) -> None:
        md = pod.get("metadata") or {}
        uid = md.get("uid")
        if not uid:
            return
        with self.lock:
            if self.stopping:
                return
            if etype == "DELETED":
                w = self.workers.get(uid)
                if w:
                    w.mark_gone()
                self.done.pop(uid, None)
                return
            w = self.workers.get(uid)
            if w:
                w.update(pod)
                return
            known = self.done.get(uid)
            if known is not None:
                if known == "terminal" and is_deleting(pod):
                    self.done[uid] = "finalizing"
                    self.tasks.submit(self.finalize_task, md["namespace"], md["name"], uid)
                return
            if is_terminal(pod):
                if is_deleting(pod):
                    self.done[uid] = "finalizing"
                    self.tasks.submit(self.finalize_task, md["namespace"], md["name"], uid)
                else:
                    self.done[uid] = "terminal"
                return
            if touched_by_agent(pod):
                self.done[uid] = "finalizing" if is_deleting(pod) else "terminal"
                self.tasks.submit(self.orphan_task, pod)
                return
            try:
                w = PodWorker(self, pod)
            except Exception:  # a malformed pod must not stop the watch
                log.exception("pod %s/%s: cannot be run", md.get("namespace"), md.get("name"))
                self.done[uid] = "terminal"
                return
            self.workers[uid] = w
            w.thread.start()

    def worker_exited(self, w: PodWorker) -> None:
        with self.lock:
            self.workers.pop(w.uid, None)
            if self.stopping or w.gone:
                return
            if w.finalized:
                self.done[w.uid] = "finalizing"
                return
            with w.cond:
                pod = w.pod
            if is_deleting(pod):
                self.done[w.uid] = "finalizing"
                self.tasks.submit(self.finalize_task, w.ns, w.name, w.uid)
            else:
                self.done[w.uid] = "terminal"

    def _retrying(self, what: str, fn: Callable[[], None], attempts: int = 12) -> bool:
        delay = 1.0
        for _ in range(attempts):
            if self.stopping:
                return False
            try:
                fn()
                return True
            except ApiError as e:
                if e.status in (404, 409):
                    return True
                log.warning("%s failed: %s; retrying", what, e)
            except Exception as e:  # noqa: BLE001
                log.warning("%s failed: %s; retrying", what, e)
            self.stop_event.wait(delay)
            delay = min(delay * 2, 30.0)
        log.error("%s: giving up", what)
        return False

    def finalize_task(self, ns: str, name: str, uid: str) -> None:
        if not self._retrying(f"final delete of pod {ns}/{name}", lambda: self.delete_pod(ns, name, uid)):
            with self.lock:
                if self.done.get(uid) == "finalizing":
                    self.done[uid] = "terminal"

    def orphan_task(self, pod: dict) -> None:
        md = pod["metadata"]
        ns, name, uid = md["namespace"], md["name"], md["uid"]
        log.info("pod %s/%s: left %s by an earlier agent life; marking it Failed (NodeAgentRestarted)",
                 ns, name, (pod.get("status") or {}).get("phase"))
        status = orphan_status(pod, rfc3339(), self.node)
        self._retrying(f"marking pod {ns}/{name} failed", lambda: self.patch_pod_status(ns, name, uid, status))
        if is_deleting(pod):
            self.finalize_task(ns, name, uid)

    # -- leftovers, lifecycle
    def adopted(self) -> list[tuple[int, str]]:
        """Children of the agent that are not container main processes: descendants of
        containers that left their session and were re-parented to us (subreaper)."""
        me = os.getpid()
        return [(pid, st) for pid, st in children_of(me) if pid not in self.procs]

    def reap_adopted(self) -> None:
        """Collect zombies of adopted processes (Popen reaps its own children)."""
        with self.spawn_lock:
            for pid, st in self.adopted():
                if st == "Z":
                    _reap(pid)

    def kill_leftovers(self) -> None:
        """Kill processes a crashed earlier life left behind (recorded in STATE_DIR/pods)."""
        d = os.path.join(self.state_dir, "pods")
        for fname in os.listdir(d):
            path = os.path.join(d, fname)
            if not fname.endswith(".json"):
                if fname.endswith(".tmp"):
                    try:
                        os.unlink(path)
                    except OSError:
                        pass
                continue
            try:
                with open(path) as f:
                    data = json.load(f)
            except (OSError, ValueError):
                data = {}
            for p in data.get("procs") or [] if isinstance(data, dict) else []:
                try:
                    pid, start = int(p["pid"]), int(p["start"])
                except (KeyError, TypeError, ValueError):
                    continue
                leader_ok = proc_start(pid) == start
                if leader_ok:
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
                # members of that session started no earlier than its leader are ours
                others = session_members({pid}, {pid: start})
                for o in others:
                    try:
                        os.kill(o, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
                if leader_ok or others:
                    log.info("killed leftover processes of pod %s/%s container %s (session %d)",
                             data.get("namespace"), data.get("name"), p.get("container"), pid)
            try:
                os.unlink(path)
            except OSError:
                pass

    def sweep_private_dirs(self, live_pod_uids: set[str]) -> int:
        """Remove the private /tmp and /dev/shm of every pod not in live_pod_uids (all of them
        at start, after kill_leftovers, and at shutdown, after everything was killed)."""
        try:
            entries = os.listdir(self.podtmp_dir)
        except FileNotFoundError:
            return 0
        except OSError as e:
            log.warning("cannot list %s: %s", self.podtmp_dir, e)
            return 0
        n = 0
        for e in podtmp_leftovers(entries, live_pod_uids):
            if remove_tree(os.path.join(self.podtmp_dir, e)):
                n += 1
        return n

    def probe_private_tmp(self) -> str | None:
        """None when a child of ours can get a private /tmp on this machine, else why not: a
        throwaway child binds a scratch directory holding a marker onto /tmp and checks that
        it sees the marker."""
        if "/tmp" not in self.private_roots:
            return "there is no /tmp directory"
        scratch = os.path.join(self.podtmp_dir, ".probe")
        fds: list[int] = []
        try:
            remove_tree(scratch)
            os.makedirs(scratch, mode=0o700)
            with open(os.path.join(scratch, ".gridshim-probe"), "w"):
                pass
            r, w = os.pipe2(os.O_CLOEXEC)
            fds += [r, w]
            preexec = child_setup(lambda: None, None, None,
                                  [Bind(scratch, "/tmp", False, f"mount --bind {scratch} /tmp")], w)
            try:
                proc = subprocess.run(["/bin/sh", "-c", "test -e /tmp/.gridshim-probe"], stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=True,
                                      preexec_fn=preexec, timeout=30)
            except subprocess.SubprocessError as e:
                report = read_child_report(r)
                return child_failure(report, ["/bin/sh"], "/")[1] if report else f"probe failed: {e}"
            if proc.returncode != 0:
                return "a bind mount onto /tmp in a new mount namespace had no effect"
            return None
        except (OSError, ValueError) as e:
            return f"probe failed: {e}"
        finally:
            for fd in fds:
                os.close(fd)
            remove_tree(scratch)

    def setup_private_tmp(self) -> None:
        """Decide (once, at start) whether containers get a private /tmp, and say so."""
        if self.is_root and self.private_tmp_setting != "off":
            os.makedirs(self.podtmp_dir, exist_ok=True)
            os.chmod(self.podtmp_dir, 0o700)
            probe = self.probe_private_tmp()
        else:
            probe = None
        self.tmp_mode, self.tmp_why = private_tmp_decision(self.private_tmp_setting, self.is_root, probe)
        self.tmp_warn_containers = self.tmp_mode == "shared" and probe is not None
        roots = " and ".join(self.private_roots)
        if self.tmp_mode == "private":
            log.info("containers get a private %s (one per container, under %s)", roots, self.podtmp_dir)
        elif self.tmp_mode == "refused":
            log.error("cannot give containers a private /tmp (%s); with --private-tmp require no container "
                      "will start", self.tmp_why)
        elif probe is not None:
            log.error("cannot give containers a private /tmp (%s); they SHARE this machine's %s "
                      "(a warning goes into every container's log; --private-tmp require refuses instead)",
                      self.tmp_why, roots)
        else:
            log.warning("containers share this machine's %s (%s)", roots, self.tmp_why)

    def kill_adopted(self, sig: int) -> int:
        n = 0
        for pid, st in self.adopted():
            if st == "Z":
                _reap(pid)
                continue
            try:
                os.kill(pid, sig)
                n += 1
            except (ProcessLookupError, PermissionError):
                pass
        if n and sig == signal.SIGKILL:
            log.info("shutting down: killed %d escaped process(es)", n)
        return n

    def request_stop(self, signum: int, _frame: Any) -> None:
        log.info("received %s", signal.Signals(signum).name)
        self.stop_event.set()

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        log.info("gridshim node agent starting: node %s, state dir %s, running as %s", self.node,
                 self.state_dir, "root (containers run as their runAsUser)" if self.is_root
                 else f"uid {os.geteuid()} (containers run as this uid)")
        self.kill_leftovers()
        n = self.sweep_private_dirs(set())
        if n:
            log.info("removed the private /tmp of %d pod(s) left by an earlier life", n)
        self.setup_private_tmp()
        delay = 1.0
        while not self.stop_event.is_set():
            try:
                self.register_node()
                break
            except Exception as e:  # noqa: BLE001
                log.warning("node registration failed: %s; retrying in %.0fs", e, delay)
                self.stop_event.wait(delay)
                delay = min(delay * 2, 10.0)
        if not self.stop_event.is_set():
            threading.Thread(target=self.heartbeat_loop, name="heartbeat", daemon=True).start()
            threading.Thread(target=self.watch_loop, name="watch", daemon=True).start()
        while not self.stop_event.wait(1.0):
            pass
        self.shutdown()
        return 0

    def shutdown(self) -> None:
        with self.spawn_lock:
            with self.lock:
                self.stopping = True
                workers = list(self.workers.values())
            procs = dict(self.procs)
        for w in workers:
            w.kick()
        sids = set(procs)
        log.info("shutting down: stopping %d process(es) of %d pod(s)", len(sids), len(workers))
        self.kill_adopted(signal.SIGTERM)
        if sids:
            signal_sessions(sids, signal.SIGTERM)
            deadline = time.monotonic() + SHUTDOWN_GRACE_SECONDS
            while time.monotonic() < deadline:
                for p in procs.values():
                    p.poll()
                if all(p.returncode is not None for p in procs.values()) and not session_members(sids):
                    break
                time.sleep(0.1)
            left = [pid for pid, p in procs.items() if p.returncode is None] + session_members(sids)
            if left:
                log.info("shutting down: SIGKILL %d process(es)", len(set(left)))
                signal_sessions(sids, signal.SIGKILL)
            for p in procs.values():
                try:
                    p.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    log.error("pid %d survived SIGKILL", p.pid)
        # escaped descendants are re-parented to us once their parents die: a few passes
        for _ in range(10):
            if not self.kill_adopted(signal.SIGKILL):
                break
            time.sleep(0.1)
        d = os.path.join(self.state_dir, "pods")
        try:
            for fname in os.listdir(d):
                os.unlink(os.path.join(d, fname))
        except OSError as e:
            log.warning("cannot clean %s: %s", d, e)
        self.sweep_private_dirs(set())
        log.info("node agent stopped")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="gridshim sandbox node agent (runs pods as local processes)")
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--node", required=True)
    p.add_argument("--state-dir", required=True)
    p.add_argument("--restart-backoff", type=float, default=10.0, metavar="SECONDS")
    p.add_argument("--max-backoff", type=float, default=300.0, metavar="SECONDS")
    p.add_argument("--capacity-cpu", default="64")
    p.add_argument("--capacity-memory", default="64Gi")
    p.add_argument("--capacity-pods", default="250")
    p.add_argument("--shared-path", action="append", default=[], metavar="PATH",
                   help="a host path every container sees as it is even under /tmp or /dev/shm, as the "
                        "image and the home mounts are on a real node (repeatable)")
    p.add_argument("--private-tmp", choices=PRIVATE_TMP_SETTINGS, default="auto",
                   help="per-container private /tmp and /dev/shm (root only): auto = when this machine "
                        "allows it, else shared with a loud warning; require = else no container starts; "
                        "off = always shared")
    return p.parse_args(argv)


class _UTCFormatter(logging.Formatter):
    converter = time.gmtime

    def formatTime(self, record, datefmt=None):
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_UTCFormatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    return Agent(args).run()


if __name__ == "__main__":
    sys.exit(main())
