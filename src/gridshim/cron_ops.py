"""Crontab use cases over the cluster: the stored crontab (one ConfigMap) and the CronJobs made from it.

Layer: ops. Imports render, model and errors; the cluster is duck-typed (`KubeCluster` or a fake).
The ConfigMap is the source of truth. It holds the crontab text byte for byte, the previous text, and
the CronJobs rendered from the text when it was installed. Writing it (create, or PUT with the
resourceVersion that was read) is the single commit point of an install. Reconciling then makes the
tool's crontab CronJobs equal to what the ConfigMap holds, writing only what differs. Every CronJob is
stamped with the ConfigMap's uid and serial, so a slow reconciler never overwrites the work of a newer
install, and each reconciler reads the ConfigMap again at the end and starts over if it changed.
See docs/crontab.md for the argument.
"""

from __future__ import annotations

import base64
import copy
import gzip
import hashlib
import json
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from gridshim.config import Settings
from gridshim.errors import ClusterError, ConflictError, ForbiddenError, GridshimError, JobExistsError, JobNotFoundError
from gridshim.model import Cluster, JobKind, Manifest
from gridshim.record import replace
from gridshim.render import labels as L
from gridshim.render.manifests import cronjob, job

if TYPE_CHECKING:  # types only: ops does not depend on the crontab parser
    from gridshim.crontab import Plan, PlannedJob

STORE = "gridshim-crontab"  # the ConfigMap holding the crontab
K_TEXT, K_PREVIOUS, K_RENDERED = "crontab", "previous", "rendered"
A_SERIAL = f"{L.DOMAIN}/crontab-serial"  # ConfigMap: "N"; CronJob: "<ConfigMap uid>/N" of the install
A_HASH = f"{L.DOMAIN}/spec-hash"  # CronJob: digest of its desired manifest (without these two stamps)
A_INSTALLED = f"{L.DOMAIN}/installed-at"
# A ConfigMap may hold 1 MiB in total; stay below it with room for metadata.
MAX_STORE_BYTES = 1_000_000
# Parallel writes: a 200-entry install is ~200 POSTs; a few connections cut the wait ~6x on the sandbox.
WORKERS = 8
# Reconcile passes before giving up (each pass: one LIST, the writes, one GET of the ConfigMap). A pass
# that finds a newer crontab stored meanwhile follows it, so N installs racing can take up to N passes:
# 8 ran out with 20 concurrent installs on a loaded 2-core machine (tests/e2e/test_crontab_e2e.py).
PASSES = 32
# A CronJob being deleted (Orphan propagation: until the garbage collector drops its finalizer) blocks
# re-creating its name; wait this long for it, polling with back-off, before giving up.
TERMINATING_WAIT = 60.0
# After the commit, an API server that stops answering (transport failures, 5xx, 429, each after the call's
# own retry budget) or answers RBAC's 403 (a server whose RBAC cache is not loaded yet) does not end the
# reconcile: it looks again with back-off for OUTAGE_BUDGETS call budgets (90 s by default), at least
# OUTAGE_PATIENCE seconds, from the first such failure, since giving up would leave removed entries
# scheduled and new ones missing. With GRIDSHIM_RETRY_SECONDS=0 (no retries wanted) it does not wait.
OUTAGE_BUDGETS, OUTAGE_PATIENCE = 3, 10.0



class NoCrontab(GridshimError):
    """There is no crontab (cron's `no crontab for USER`, exit 1)."""


class ConcurrentChange(GridshimError):
    """The ConfigMap changed between our read and our write: someone else installed first."""


# -- the stored crontab ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Stored:
    """The ConfigMap as read: text and previous text (bytes, exact), serial, and the rendered CronJobs."""

    obj: Manifest | None = None
    text: bytes | None = None
    previous: bytes | None = None
    serial: int = 0
    uid: str = ""
    rv: str = ""
    rendered: list[dict[str, Any]] | None = None  # [{"line": N, "manifest": CronJob}], None if absent

    @property
    def stamp(self) -> str:
        return f"{self.uid}/{self.serial}"


def _get_bytes(obj: Manifest, key: str) -> bytes | None:
    data = obj.get("data") or {}
    if key in data:
        return str(data[key]).encode("utf-8")
    binary = obj.get("binaryData") or {}
    if key in binary:
        return base64.b64decode(binary[key])
    return None


def stored_from(obj: Manifest | None) -> Stored:
    if obj is None:
        return Stored()
    meta = obj.get("metadata") or {}
    raw = (meta.get("annotations") or {}).get(A_SERIAL, "0")
    rendered_raw = (obj.get("binaryData") or {}).get(K_RENDERED)
    rendered = None
    if rendered_raw:
        try:
            rendered = _rendered(_gunzip(base64.b64decode(rendered_raw), MAX_RENDERED_BYTES))
        except (ValueError, OSError, EOFError, zlib.error):
            rendered = None  # unreadable (or edited by hand with kubectl): re-rendered from the text
    return Stored(obj=obj, text=_get_bytes(obj, K_TEXT), previous=_get_bytes(obj, K_PREVIOUS),
                  serial=int(raw) if raw.isdigit() else 0, uid=meta.get("uid", ""),
                  rv=meta.get("resourceVersion", ""), rendered=rendered)


# The rendered CronJobs of a crontab as big as the store allows fit in far less; a ConfigMap written
# with kubectl could hold a gzip bomb, so decompression stops here.
MAX_RENDERED_BYTES = 16 * 1024 * 1024


def _gunzip(data: bytes, limit: int) -> bytes:
    d = zlib.decompressobj(wbits=31)  # gzip container
    out = d.decompress(data, limit)
    if d.unconsumed_tail:
        raise ValueError(f"rendered CronJobs larger than {limit} bytes")
    return out


def _rendered(data: bytes) -> list[dict[str, Any]] | None:
    """[{"line": N, "manifest": {...}}], or None when it has another shape."""
    value = json.loads(data)
    ok = isinstance(value, list) and all(
        isinstance(e, dict) and isinstance(e.get("line"), int) and isinstance(e.get("manifest"), dict)
        and isinstance((e["manifest"].get("metadata") or {}).get("name"), str) for e in value)
    return value if ok else None


def read_store(cluster: Cluster) -> Stored:
    try:
        return stored_from(cluster.get("ConfigMap", STORE))
    except JobNotFoundError:
        return Stored()


def _put(data: dict[str, str], binary: dict[str, str], key: str, value: bytes | None) -> None:
    if value is None:
        return
    try:
        data[key] = value.decode("utf-8")
    except UnicodeDecodeError:
        binary[key] = base64.b64encode(value).decode()  # not UTF-8: kept as bytes, still exact


def store_manifest(*, tool: str, text: bytes | None, previous: bytes | None, serial: int,
                   rendered: list[dict[str, Any]], base: Stored, now: float) -> Manifest:
    """The ConfigMap for a new state; carries BASE's resourceVersion so a concurrent write fails."""
    meta: Manifest = {
        "name": STORE,
        "labels": {**L.base_labels(tool), L.CRONTAB: L.label_value(tool)},
        "annotations": {A_SERIAL: str(serial),
                        A_INSTALLED: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))},
    }
    if base.obj is not None:
        meta["resourceVersion"] = base.rv
    data: dict[str, str] = {}
    binary: dict[str, str] = {}
    _put(data, binary, K_TEXT, text)
    _put(data, binary, K_PREVIOUS, previous)
    if text is not None:
        packed = gzip.compress(json.dumps(rendered, sort_keys=True, separators=(",", ":")).encode(), mtime=0)
        binary[K_RENDERED] = base64.b64encode(packed).decode()
    cm: Manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}
    if data:
        cm["data"] = data
    if binary:
        cm["binaryData"] = binary
    size = sum(len(v.encode()) for v in data.values()) + sum(len(v) for v in binary.values())
    if size > MAX_STORE_BYTES and previous is not None:
        # the previous crontab (for --previous) must not stop a new one from being stored: drop it
        return store_manifest(tool=tool, text=text, previous=None, serial=serial, rendered=rendered, base=base,
                              now=now)
    if size > MAX_STORE_BYTES:
        raise GridshimError(f"the crontab is too large to store ({size} bytes with its rendered jobs; "
                            f"the limit is about {MAX_STORE_BYTES} bytes)",
                            hint="split it, or move long command lines into scripts")
    return cm


# -- rendering ---------------------------------------------------------------------------------------

def spec_hash(manifest: Manifest) -> str:
    m = copy.deepcopy(manifest)
    ann = m.get("metadata", {}).get("annotations") or {}
    ann.pop(A_HASH, None)
    ann.pop(A_SERIAL, None)
    return hashlib.sha256(json.dumps(m, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:20]


def cronjob_for(planned: PlannedJob, settings: Settings) -> Manifest:
    """The CronJob of one crontab entry, labelled as the crontab's and carrying its spec hash.

    A jstart watchdog line (`* * * * * jstart -N bot …`) becomes a CronJob with concurrencyPolicy
    Forbid whose runs are continuous jobs (jstart's respawn loop, restarted on failure): while one runs,
    the schedule does nothing, exactly like the grid's `-once`; once it has ended (exit 0, jstop/qdel),
    the next tick starts it again, which is what the watchdog line was for.
    """
    req = planned.request
    if planned.watchdog:
        sched = replace(req, kind=JobKind.SCHEDULED, once=True)
        cj = cronjob(sched, settings, name=planned.name)
        cont = job(replace(req, kind=JobKind.CONTINUOUS, once=True), settings)
        labels = {k: v for k, v in cont["metadata"]["labels"].items() if k != L.JOB_ID}
        spec = cont["spec"]
        spec["template"]["metadata"]["labels"] = dict(labels)
        cj["spec"]["jobTemplate"] = {"metadata": {"labels": labels,
                                                  "annotations": cont["metadata"]["annotations"]},
                                     "spec": spec}
        cj["spec"]["concurrencyPolicy"] = "Forbid"
    else:
        cj = cronjob(req, settings, name=planned.name)
    # Only the CronJob is the crontab's (the jobs it starts are ordinary grid jobs); copy, since the
    # builder shares one labels dict between the CronJob, its job template and the pod template.
    cj["metadata"]["labels"] = {**cj["metadata"]["labels"], L.CRONTAB: L.label_value(req.tool)}
    cj["metadata"]["annotations"][A_HASH] = spec_hash(cj)
    return cj


def render_plan(plan: Plan, settings: Settings) -> list[dict[str, Any]]:
    """[{"line": N, "manifest": CronJob}] for every entry, in file order."""
    return [{"line": j.entry.line, "manifest": cronjob_for(j, settings)} for j in plan.jobs]


def crontab_selector(tool: str) -> str:
    return L.selector(tool, **{L.CRONTAB: L.label_value(tool)})


# -- writes ----------------------------------------------------------------------------------------

@dataclass
class Result:
    """What a reconcile did (names of CronJobs), and what it could not do."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)
    superseded: bool = False  # a newer install came in meanwhile; the CronJobs follow that one
    passes: int = 0
    round_trips: int = 0


def _serial_of(obj: Manifest, uid: str) -> int | None:
    """The serial an existing CronJob was written for, if it comes from this ConfigMap (same uid)."""
    raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(A_SERIAL, "")
    owner, _, serial = raw.rpartition("/")
    if owner != uid or not serial.isdigit():
        return None
    return int(serial)


def _lines(stored: Stored) -> dict[str, int]:
    return {e["manifest"]["metadata"]["name"]: e.get("line", 0) for e in stored.rendered or []}


class _Stale(Exception):
    """An object was written for a newer install than the one being reconciled."""


def _transient(e: BaseException) -> bool:
    """A failure that says nothing about the object: the API unreachable or failing, or RBAC's 403 of a
    server that is (re)starting. Admission refusals, quota, 422 and credentials are answers, not these."""
    if isinstance(e, ForbiddenError):
        return " cannot " in e.message and 'User "' in e.message  # RBAC's wording, not an admission's
    return isinstance(e, ClusterError) and (e.status is None or e.status in (429, 500, 502, 503, 504))


@dataclass
class _Pass:
    result: Result
    retry: bool = False  # a write met a concurrent change: look again at once
    waiting: bool = False  # a wanted name is held by a CronJob still being deleted: look again soon
    troubles: list[str] = field(default_factory=list)  # transient failures (see _transient): look again later


def _write_pass(cluster: Cluster, stored: Stored, *, workers: Callable[[], Cluster] | None) -> _Pass:
    """One LIST, a check that STORED is still current, then deletes, then creates and updates."""
    tool = cluster.tool
    entries = (stored.rendered or []) if stored.text is not None else []
    want: dict[str, Manifest] = {}
    for e in entries:
        m = copy.deepcopy(e["manifest"])
        m["metadata"].setdefault("annotations", {})[A_SERIAL] = stored.stamp
        want[m["metadata"]["name"]] = m
    listed, _ = cluster.list("CronJob", selector=crontab_selector(tool))
    # Objects already being deleted count as absent; one that is in the way of a wanted name is waited for.
    terminating = {o["metadata"]["name"] for o in listed if o["metadata"].get("deletionTimestamp")}
    existing = [o for o in listed if o["metadata"]["name"] not in terminating]
    have = {o["metadata"]["name"]: o for o in existing}
    for obj in existing:
        serial = _serial_of(obj, stored.uid)
        if serial is not None and serial > stored.serial:
            raise _Stale()
    result = Result()
    deletes: list[Callable[[Cluster], tuple[str, str, str | None]]] = []
    writes: list[Callable[[Cluster], tuple[str, str, str | None]]] = []
    waiting = False
    for name, m in want.items():
        cur = have.get(name)
        if name in terminating:
            waiting = True
        elif cur is None:
            writes.append(partial(_create, m=m))
        elif (cur["metadata"].get("annotations") or {}).get(A_HASH) != m["metadata"]["annotations"].get(A_HASH):
            writes.append(partial(_update, m=m, cur=cur))
        else:
            result.unchanged += 1
    for name, cur in have.items():
        if name not in want:
            deletes.append(partial(_delete, cur=cur))
    if deletes or writes:
        latest = read_store(cluster)
        if (latest.uid, latest.serial) != (stored.uid, stored.serial):
            raise _Stale()  # superseded before we wrote anything: follow the newer install instead
    retry = False
    troubles: list[str] = []
    lines = _lines(stored)
    # Deletes first, so that a crontab that swaps entries never needs more room than the quota.
    for batch in (deletes, writes):
        for action, name, err in _run(cluster, batch, workers):
            if action == "wait":
                waiting = True
            elif action == "retry":
                retry = True
            elif action == "transient":
                troubles.append(f"CronJob {name}: {err}")
            elif action == "error":
                where = f" (line {lines[name]})" if lines.get(name) else ""
                result.errors.append(f"CronJob {name}{where}: {err}")
            else:
                getattr(result, action).append(name)
    return _Pass(result=result, retry=retry, waiting=waiting, troubles=troubles)


def _run(cluster: Cluster, ops: list[Callable[[Cluster], tuple[str, str, str | None]]],
         workers: Callable[[], Cluster] | None) -> list[tuple[str, str, str | None]]:
    if workers is None or len(ops) < 4:
        return [op(cluster) for op in ops]
    local = threading.local()
    made: list[Cluster] = []
    lock = threading.Lock()

    def client() -> Cluster:
        c = getattr(local, "client", None)
        if c is None:
            c = workers()
            local.client = c
            with lock:
                made.append(c)
        return c

    try:
        with ThreadPoolExecutor(max_workers=min(WORKERS, len(ops))) as pool:
            return list(pool.map(lambda op: op(client()), ops))
    finally:
        for c in made:
            close = getattr(c, "close", None)
            if close:
                close()


def _create(c: Cluster, m: Manifest) -> tuple[str, str, str | None]:
    name = m["metadata"]["name"]
    try:
        c.create(m)
        return "created", name, None
    except JobExistsError:
        try:
            cur = c.get("CronJob", name)
        except JobNotFoundError:
            return "retry", name, None
        if (cur.get("metadata") or {}).get("deletionTimestamp"):
            return "wait", name, None
        if ((cur.get("metadata") or {}).get("labels") or {}).get(L.CRONTAB) is None:
            return ("error", name, f"a CronJob named {name} already exists and is not part of the crontab "
                                   f"(delete it with 'kubectl delete cronjob {name}', or rename the job)")
        return "retry", name, None  # another reconciler made it: decide again on a fresh LIST
    except GridshimError as e:
        return "transient" if _transient(e) else "error", name, str(e)


def _update(c: Cluster, m: Manifest, cur: Manifest) -> tuple[str, str, str | None]:
    name = m["metadata"]["name"]
    body = copy.deepcopy(m)
    body["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
    try:
        c.replace(body)
        return "updated", name, None
    except (ConflictError, JobNotFoundError):
        return "retry", name, None
    except GridshimError as e:
        return "transient" if _transient(e) else "error", name, str(e)


def _delete(c: Cluster, cur: Manifest) -> tuple[str, str, str | None]:
    meta = cur["metadata"]
    # A run in progress is orphaned and finishes (removing a grid cron line never killed its running job).
    # Otherwise Background: the object goes at once (Orphan would hold the name until the garbage
    # collector drops its finalizer, ~10 s for 200 CronJobs) and the finished runs kept as history go too.
    propagation = "Orphan" if (cur.get("status") or {}).get("active") else "Background"
    try:
        c.delete("CronJob", meta["name"], uid=meta.get("uid"), resource_version=meta.get("resourceVersion"),
                 propagation=propagation)
        return "deleted", meta["name"], None
    except JobNotFoundError:
        return "deleted", meta["name"], None
    except ConflictError:
        return "retry", meta["name"], None
    except GridshimError as e:
        return "transient" if _transient(e) else "error", meta["name"], str(e)


def reconcile(cluster: Cluster, stored: Stored, *, workers: Callable[[], Cluster] | None = None,
              render: Callable[[bytes], list[dict[str, Any]]] | None = None) -> Result:
    """Make the crontab's CronJobs what STORED holds; re-read the ConfigMap at the end and follow it if it
    changed. RENDER re-renders a text whose rendered CronJobs are missing from the ConfigMap."""
    total = Result()
    first = stored
    n = 0
    deadline = time.monotonic() + TERMINATING_WAIT
    delay = 0.1
    budget = float(getattr(cluster, "retry_seconds", 0) or 0)
    patience = max(OUTAGE_PATIENCE, OUTAGE_BUDGETS * budget) if budget > 0 else 0.0
    outage: float | None = None  # when the current run of transient failures began
    pause = 0.5
    while n < PASSES:
        n += 1
        if stored.text is not None and stored.rendered is None:
            if render is None:
                raise GridshimError("the stored crontab has no rendered jobs; reinstall it with "
                                    "'crontab -l | crontab -'")
            stored = replace(stored, rendered=render(stored.text))
        latest: Stored | None = None
        try:
            try:
                p = _write_pass(cluster, stored, workers=workers)
            except _Stale:
                p = _Pass(result=Result(), retry=True)
            for attr in ("created", "updated", "deleted"):
                getattr(total, attr).extend(getattr(p.result, attr))
            # Only the pass that settles counts for errors: a failure while following an older state (e.g.
            # the quota filled by a concurrent install's objects) no longer matters.
            total.errors = list(p.result.errors)
            total.unchanged = max(0, p.result.unchanged - len(total.created) + len(p.result.created))
            total.passes = n
            if not p.troubles:
                latest = read_store(cluster)
        except GridshimError as e:
            if not _transient(e):
                raise
            p = _Pass(result=Result(), troubles=[str(e)])
        if p.troubles:  # the API did not answer: nothing is decided, look again (removed entries still go)
            now = time.monotonic()
            outage = now if outage is None else outage
            if now - outage < patience:
                n -= 1
                time.sleep(min(pause, max(0.0, outage + patience - now)))
                pause = min(pause * 2, 5.0)
                continue
            how_long = f" for {now - outage:.0f} s" if patience else ""
            raise GridshimError(f"the crontab is stored, but the Kubernetes API did not let its CronJobs be "
                                f"written{how_long}: {p.troubles[0]}",
                                hint="CronJobs of removed entries may still be scheduled and new ones missing; "
                                     "run 'crontab --sync' when the API answers again")
        outage, pause = None, 0.5
        assert latest is not None
        if (latest.uid, latest.serial) != (stored.uid, stored.serial):
            stored = latest  # a newer install (or a removal): converge to it instead
            continue
        if p.waiting and time.monotonic() < deadline:
            n -= 1  # waiting for the garbage collector is not a failed attempt
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
            continue
        if not p.retry and not p.waiting:
            total.superseded = (stored.uid, stored.serial) != (first.uid, first.serial)
            return total
    if p.waiting:
        raise GridshimError("CronJobs of an earlier crontab are still being deleted, so some entries could "
                            "not be created yet", hint="run 'crontab --sync' in a minute")
    raise GridshimError(f"the CronJobs did not settle after {PASSES} attempts (other crontab commands are "
                        "changing them at the same time)", hint="run 'crontab --sync' to try again")


# -- use cases ---------------------------------------------------------------------------------------

def check_quota(cluster: Cluster, wanted: int) -> None:
    """Refuse before anything is written when the namespace can never hold this many CronJobs."""
    try:
        quotas, _ = cluster.list("ResourceQuota")
    except GridshimError:
        return  # not allowed to read it: the API server will refuse the creates instead
    for q in quotas:
        hard = ((q.get("status") or {}).get("hard") or (q.get("spec") or {}).get("hard") or {})
        limit = hard.get("count/cronjobs.batch")
        if limit is not None and str(limit).isdigit() and wanted > int(limit):
            raise GridshimError(f"the crontab has {wanted} entries, but this tool may have at most {limit} "
                                f"CronJobs (quota {q['metadata']['name']})",
                                hint="merge entries into scripts, or ask for a larger quota")


def require_cronjobs(cluster: Cluster) -> None:
    """Refuse (before anything is stored) when the API server serves no batch/v1 CronJobs (discovery,
    cached briefly). A cluster object without discovery (a test fake) is taken at its word."""
    missing = getattr(cluster, "missing_apis", None)
    if missing is None:
        return
    if missing((("batch/v1", "cronjobs", "crontab"),)):
        raise GridshimError("this cluster's API server does not serve batch/v1 CronJobs, so a crontab cannot run; "
                            "nothing was stored",
                            hint="ask the site's admins to enable batch/v1 CronJobs (kube-apiserver --runtime-config); "
                                 "'gridshim doctor' checks it")


def install(cluster: Cluster, *, text: bytes, rendered: list[dict[str, Any]], now: float, base: Stored | None = None,
            workers: Callable[[], Cluster] | None = None, who: str = "") -> Result:
    """Store TEXT as the crontab (the current one becomes `previous`), then reconcile.

    BASE is the state the user started from (crontab -e reads it before the editor opens); if the
    ConfigMap changed since, nothing is written and ConcurrentChange says so. A loser never touches
    CronJobs.
    """
    require_cronjobs(cluster)
    check_quota(cluster, len(rendered))
    cur = base if base is not None else read_store(cluster)
    previous = cur.text if cur.text is not None else cur.previous
    cm = store_manifest(tool=cluster.tool, text=text, previous=previous, serial=cur.serial + 1,
                        rendered=rendered, base=cur, now=now)
    written = _commit(cluster, cm, cur, who=who)
    return reconcile(cluster, stored_from(written), workers=workers)


def remove(cluster: Cluster, *, now: float, base: Stored | None = None, workers: Callable[[], Cluster] | None = None,
           who: str = "") -> Result:
    """crontab -r: the text moves to `previous` (so it can be restored), and every crontab CronJob goes."""
    cur = base if base is not None else read_store(cluster)
    if cur.text is None:
        raise NoCrontab(f"no crontab for {who}")
    cm = store_manifest(tool=cluster.tool, text=None, previous=cur.text, serial=cur.serial + 1, rendered=[],
                        base=cur, now=now)
    written = _commit(cluster, cm, cur, who=who)
    return reconcile(cluster, stored_from(written), workers=workers)


def _commit(cluster: Cluster, cm: Manifest, cur: Stored, *, who: str) -> Manifest:
    try:
        return cluster.create(cm) if cur.obj is None else cluster.replace(cm)
    except (ConflictError, JobExistsError, JobNotFoundError):
        raise ConcurrentChange(f"the crontab of {who} was changed by another crontab command at the same "
                               "time; yours was not installed",
                               hint="see the current one with 'crontab -l', then try again") from None
