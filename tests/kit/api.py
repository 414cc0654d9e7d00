"""FakeApi: one tool's namespace as kube-apiserver keeps it, behind the Cluster port (gridshim.model.Cluster).

What it does as the API server does, so that a unit test's answer means something:
- every write gives the object a new resourceVersion (one counter for the whole store, as etcd's revision);
  create gives a uid, creationTimestamp, namespace and generation; replace and patch keep the uid;
- create of a taken name is 409 AlreadyExists (JobExistsError); a replace or patch with a stale
  resourceVersion, and a delete whose uid or resourceVersion precondition fails, are 409 Conflict
  (ConflictError); a patch naming another uid (with a current resourceVersion) is 422 (ClusterError);
  a missing object is 404 (JobNotFoundError); another namespace is 403 (ForbiddenError) unless readable;
- label selectors (`k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`) and field selectors
  (dotted paths, `=`, `==`, `!=`) filter lists, watches and collection deletes; lists are in name order;
- merge patches (RFC 7386) with `metadata.resourceVersion`/`metadata.uid` as preconditions;
- deletion: Background removes the object and the pods it owns; Foreground keeps a Job that still has
  pods, with a deletionTimestamp and the foregroundDeletion finalizer, until its last pod is gone; Orphan
  answers the object with a deletionTimestamp and the orphan finalizer, and the garbage collector then
  takes its ownerReferences off the dependents and removes it, at once or (`gc_lists = N`) after N more
  LISTs, so that a client polling meanwhile sees it terminating, its name still taken; every removal is a
  DELETED event carrying the object's last state;
- ResourceQuota admission for object counts (`count/<resource>`, e.g. `count/cronjobs.batch`): a create
  (also a dry-run one) that would pass a quota's hard count is 403 `exceeded quota`
  (QuotaExceededError), in kube-apiserver's words and order (after the other admission, before the
  409); used is what the store holds (the quota controller in step), terminating objects included;
- watches deliver ADDED/MODIFIED/DELETED after the resourceVersion asked for, BOOKMARK events
  (`bookmark()`), ERROR events (`expire()`: 410 Expired) and 410 at once for a version older than the
  last `compact()`. The store is synchronous: a watch that has delivered everything runs the next step queued
  with `then(...)` (what happens meanwhile in the cluster), and ends like a watch's timeout when there is
  none; a wait that keeps watching with nothing left to happen fails the test instead of hanging.

The Job controller and the kubelet are `start(name)`, `finish(name, exit_code)` and `dying(name)`;
`seed(...)` and `add_fixture(...)` put objects there as they were read from a real cluster.
Faults: `fail(verb, error)` (the next such call raises), `lose_answer("create")` (the object is made,
the answer lost, the retried POST meets 409), `interfere(hook)` (another writer just before a write).
`calls` records every call (verb, kind, name, params).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from gridshim import quantity
from gridshim.errors import ClusterError, ConflictError, ForbiddenError, JobExistsError, JobNotFoundError, QuotaExceededError
from gridshim.model import tool_of

Manifest = dict[str, Any]

PLURAL = {"Job": "jobs.batch", "CronJob": "cronjobs.batch", "Pod": "pods", "ConfigMap": "configmaps",
          "Event": "events", "ResourceQuota": "resourcequotas", "LimitRange": "limitranges"}
CONTROLLER_UID = "batch.kubernetes.io/controller-uid"
NOW = "2026-12-01T10:00:00Z"
IDLE_WATCHES = 20  # watches in a row with nothing left to happen: the code under test would wait forever


class Call(NamedTuple):
    verb: str
    kind: str
    name: str
    params: dict[str, Any]


# -- selectors, as the API server reads them -----------------------------------------------------------

_TERM = re.compile(r"\s*([^,()]+?(?:\s*\([^)]*\))?)\s*(?:,|$)")


def _terms(selector: str | None) -> list[str]:
    return [t for t in (m.group(1).strip() for m in _TERM.finditer(selector or "")) if t]


def label_match(labels: dict[str, str], selector: str | None) -> bool:
    """Whether LABELS satisfy SELECTOR (every term must hold)."""
    for term in _terms(selector):
        m = re.fullmatch(r"(\S+)\s+(in|notin)\s*\(([^)]*)\)", term)
        if m:
            values = {v.strip() for v in m.group(3).split(",")}
            has = m.group(1) in labels and labels[m.group(1)] in values
            if has != (m.group(2) == "in"):
                return False
            continue
        m = re.fullmatch(r"([^=!]+?)\s*(==|=|!=)\s*(.*)", term)
        if m:
            key, op, value = m.group(1), m.group(2), m.group(3)
            if (labels.get(key) == value) != (op != "!="):
                return False
            continue
        if term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _path(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def field_match(obj: Manifest, selector: str | None) -> bool:
    for term in _terms(selector):
        m = re.fullmatch(r"([^=!]+?)\s*(==|=|!=)\s*(.*)", term)
        if m is None:
            raise AssertionError(f"not a field selector term: {term!r}")
        value = _path(obj, m.group(1))
        if (("" if value is None else str(value)) == m.group(3)) != (m.group(2) != "!="):
            return False
    return True


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: null removes a key, objects merge, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def status_410(message: str = "too old resource version") -> Manifest:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "reason": "Expired",
            "code": 410}


class FakeApi:
    """The one fake API server of the unit tests (see the module docstring)."""

    def __init__(self, namespace: str = "tool-demo", *, readable: tuple[str, ...] = (),
                 namespace_annotations: dict[str, str] | None = None) -> None:
        self.namespace = namespace
        self.readable = {namespace, *readable}  # namespaces a LIST may read (RBAC)
        self.namespace_annotations = dict(namespace_annotations or {})
        self.store: dict[tuple[str, str, str], Manifest] = {}  # (namespace, kind, name)
        self.events: list[tuple[int, str, str, Manifest]] = []  # (resourceVersion, type, kind, object)
        self.calls: list[Call] = []
        self.now = NOW
        self._rv = 100
        self._uids = 0
        self._compacted = 0
        self._steps: list[Callable[[], None]] = []
        self._faults: list[tuple[str, str | None, BaseException]] = []
        self._lost: list[str] = []
        self._interfere: Callable[[str, str, str], None] | None = None
        self._idle = 0
        self._controller: Callable[[], None] | None = None
        self._admission: list[Callable[[Manifest], None]] = []
        # beyond the port (gridshim doctor): GET /version, SelfSubjectReview, SelfSubjectAccessReview, creds
        self.version: Manifest = {"gitVersion": "v1.36.3"}
        self.user: str | None = self.tool  # None: the API server serves no SelfSubjectReview (404)
        self.denied: set[tuple[str, str]] = set()  # (verb, resource) an access review answers no to
        self.creds: Any = None
        self.conflicts = 0  # 409 Conflicts answered (a stale resourceVersion or uid)
        self.gc_lists = 0  # LISTs an Orphan delete's object stays terminating before the GC removes it
        self._collecting: dict[tuple[str, str, str], int] = {}  # Orphan deletes the GC has not finished
        self.retry_seconds = 0.0  # the client's retry budget (KubeCluster's), which cron_ops reads

    @property
    def tool(self) -> str:
        return tool_of(self.namespace)

    # -- the Cluster port ------------------------------------------------------------------------------

    def create(self, manifest: Manifest) -> Manifest:
        obj = copy.deepcopy(manifest)
        kind, meta = obj["kind"], obj.setdefault("metadata", {})
        if not meta.get("name"):
            meta["name"] = meta.pop("generateName", "") + f"{self._uids + 1:05d}"[-5:]
        name = meta["name"]
        self._call("create", kind, name)
        self._before("create", kind, name)
        ns = meta.setdefault("namespace", self.namespace)
        for policy in self._admission:  # validating admission comes before storage (and its 409)
            policy(obj)
        self._quota(obj)  # the ResourceQuota plugin: the last of the validating admission
        if (ns, kind, name) in self.store:
            raise JobExistsError(f'{PLURAL.get(kind, kind)} "{name}" already exists')
        meta.update(uid=self._uid(), resourceVersion=self._next_rv(), creationTimestamp=self.now, generation=1)
        for k in ("deletionTimestamp", "finalizers"):
            meta.pop(k, None)
        self.store[(ns, kind, name)] = obj
        self._emit("ADDED", obj)
        if "create" in self._lost:  # made, the answer lost; the retried POST meets the object it made
            self._lost.remove("create")
            raise JobExistsError(f'{PLURAL.get(kind, kind)} "{name}" already exists')
        return copy.deepcopy(obj)

    def get(self, kind: str, name: str) -> Manifest:
        self._call("get", kind, name)
        return copy.deepcopy(self._stored(kind, name))

    def namespace_object(self) -> Manifest:
        self._call("get", "Namespace", self.namespace)
        return {"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": self.namespace, "annotations": dict(self.namespace_annotations)}}

    def replace(self, manifest: Manifest) -> Manifest:
        kind, meta = manifest["kind"], manifest["metadata"]
        self._call("replace", kind, meta["name"])
        self._before("replace", kind, meta["name"])
        cur = self._stored(kind, meta["name"])
        if meta.get("resourceVersion") and meta["resourceVersion"] != cur["metadata"]["resourceVersion"]:
            self.conflicts += 1
            raise ConflictError(f'Operation cannot be fulfilled on {PLURAL.get(kind, kind)} "{meta["name"]}": the '
                                "object has been modified; please apply your changes to the latest version and "
                                "try again")
        new = copy.deepcopy(manifest)
        for policy in self._admission:
            policy(new)
        if "status" in cur:  # the main resource does not write status (a subresource)
            new["status"] = copy.deepcopy(cur["status"])
        self._keep_identity(cur, new)
        return self._write(new)

    def patch(self, kind: str, name: str, body: Any, *, patch_type: str = "merge") -> Manifest:
        self._call("patch", kind, name, patch_type=patch_type)
        self._before("patch", kind, name)
        assert patch_type == "merge", f"FakeApi speaks merge patches only, not {patch_type}"
        cur = self._stored(kind, name)
        pre = (body.get("metadata") or {}) if isinstance(body, dict) else {}
        # as kube-apiserver checks them (tests/e2e/test_kit_conformance.py): a stale resourceVersion is 409
        # Conflict first; a uid that differs with a current resourceVersion is 422, uid being immutable
        if pre.get("resourceVersion") and pre["resourceVersion"] != cur["metadata"]["resourceVersion"]:
            self.conflicts += 1
            raise ConflictError(f'Operation cannot be fulfilled on {PLURAL.get(kind, kind)} "{name}": the object '
                                "has been modified; please apply your changes to the latest version and try again")
        if pre.get("uid") and pre["uid"] != cur["metadata"]["uid"]:
            raise ClusterError(f'the API server refused it: {kind} "{name}" is invalid: metadata.uid: Invalid value: '
                               f'"{pre["uid"]}": field is immutable', status=422)
        new = merge_patch(cur, body)
        self._keep_identity(cur, new)
        return self._write(new)

    def list(self, kind: str, *, selector: str | None = None, field_selector: str | None = None,
             namespace: str | None = None, trim: Callable[[Manifest], Any] | None = None) -> tuple[list[Any], str]:
        ns = namespace or self.namespace
        self._call("list", kind, "", selector=selector, field_selector=field_selector, namespace=namespace)
        self._garbage_collector()
        if ns not in self.readable:
            raise ForbiddenError(f'{PLURAL.get(kind, kind)} is forbidden: User "{self.tool}" cannot list resource '
                                 f'"{PLURAL.get(kind, kind).split(".")[0]}" in the namespace "{ns}"')
        items = [copy.deepcopy(o) for o in self._select(kind, selector, field_selector, ns)]
        return (items if trim is None else [trim(o) for o in items]), str(self._rv)

    def delete(self, kind: str, name: str, *, uid: str | None = None, resource_version: str | None = None,
               grace: int | None = None, propagation: str = "Background") -> Manifest | None:
        self._call("delete", kind, name, uid=uid, resource_version=resource_version, grace=grace,
                   propagation=propagation)
        self._before("delete", kind, name)
        cur = self._stored(kind, name)
        meta = cur["metadata"]
        if uid and uid != meta["uid"]:
            self.conflicts += 1
            raise ConflictError(f"Precondition failed: UID in precondition: {uid}, UID in object meta: {meta['uid']}")
        if resource_version and resource_version != meta["resourceVersion"]:
            self.conflicts += 1
            raise ConflictError(f"Precondition failed: ResourceVersion in precondition: {resource_version}, "
                                f"ResourceVersion in object meta: {meta['resourceVersion']}")
        key = (meta.get("namespace", self.namespace), kind, name)
        if "orphan" in (meta.get("finalizers") or []):  # an Orphan delete the GC has not finished
            if propagation == "Orphan":
                return copy.deepcopy(cur)  # asked again: the same answer, nothing changes
            # another policy takes the orphan finalizer off (kube-apiserver's deletionFinalizersForGarbage-
            # Collection): Background has nothing left to wait for, Foreground waits for the dependents instead
            self._collecting.pop(key, None)
            if propagation == "Foreground":
                swapped = copy.deepcopy(cur)
                swapped["metadata"]["finalizers"] = [*(f for f in meta["finalizers"] if f != "orphan"),
                                                     "foregroundDeletion"]
                self._write(swapped)
                cur = self._stored(kind, name)
            return self._remove(cur, propagation)
        if propagation == "Orphan":
            dying = copy.deepcopy(cur)
            dying["metadata"]["deletionTimestamp"] = self.now
            dying["metadata"]["finalizers"] = [*(meta.get("finalizers") or []), "orphan"]
            out = self._write(dying)
            self._collecting[key] = self.gc_lists
            if not self.gc_lists:
                self._garbage_collector()
            return out
        return self._remove(cur, propagation)

    def delete_collection(self, kind: str, *, selector: str, grace: int | None = None) -> None:
        self._call("delete_collection", kind, "", selector=selector, grace=grace)
        for obj in list(self._select(kind, selector, None, self.namespace)):
            self._remove(obj, "Background")

    def watch(self, kind: str, *, resource_version: str, selector: str | None = None,
              field_selector: str | None = None, timeout: float = 300) -> Iterator[tuple[str, Manifest]]:
        self._call("watch", kind, "", resource_version=resource_version, selector=selector,
                   field_selector=field_selector)
        since = int(resource_version or 0)
        if since < self._compacted:
            self._idle += 1
            if self._idle > IDLE_WATCHES:
                raise AssertionError("the code under test keeps watching from a compacted resourceVersion")
            yield "ERROR", status_410(f"too old resource version: {since} ({self._compacted})")
            return
        delivered = False
        while True:
            pending = [(rv, t, o) for rv, t, k, o in self.events if rv > since and k in (kind, "*")
                       and (t in ("BOOKMARK", "ERROR")
                            or (label_match((o.get("metadata") or {}).get("labels") or {}, selector)
                                and field_match(o, field_selector)))]
            if pending:
                rv, etype, obj = pending[0]
                if etype in ("BOOKMARK", "ERROR"):  # said to the watch that was open, not stored history
                    self.events = [e for e in self.events if e[0] != rv]
                since = rv
                delivered = True
                self._idle = 0
                yield etype, copy.deepcopy(obj)
                if etype == "ERROR":
                    return
                continue
            if self._steps:
                self._steps.pop(0)()
                continue
            if self._controller is not None:
                before = len(self.events)
                self._controller()
                if len(self.events) != before:
                    continue
            if not delivered:
                self._idle += 1
                if self._idle > IDLE_WATCHES:
                    raise AssertionError("the code under test keeps watching, but nothing is left to happen")
            return  # the watch's timeout

    # -- what happens in the cluster meanwhile ---------------------------------------------------------

    def then(self, *steps: Callable[[], None]) -> FakeApi:
        """Run STEPS one at a time, each when a watch has delivered everything before it."""
        self._steps.extend(steps)
        return self

    def controller(self, fn: Callable[[], None]) -> FakeApi:
        """FN runs whenever a watch has delivered everything and no step is queued (what the cluster's
        controllers do while a client waits); a watch ends when FN changed nothing."""
        self._controller = fn
        return self

    def run_jobs(self, exit_code: int = 0) -> FakeApi:
        """A controller that runs every Job not finished yet to its end with EXIT_CODE."""
        def run() -> None:
            for job in self.objects("Job"):
                if not any(c.get("type") in ("Complete", "Failed") for c in (job.get("status") or {}).get("conditions") or []):
                    self.start(job["metadata"]["name"])
                    self.finish(job["metadata"]["name"], exit_code)
        return self.controller(run)

    def bookmark(self, kind: str = "Job") -> None:
        rv = int(self._next_rv())
        self.events.append((rv, "BOOKMARK", kind, {"kind": kind, "metadata": {"resourceVersion": str(rv)}}))

    def expire(self, kind: str = "Job") -> None:
        """An open watch fell behind the API server's window: an ERROR event (410 Expired) ends it."""
        rv = int(self._next_rv())
        self.events.append((rv, "ERROR", kind, status_410()))

    def compact(self) -> None:
        """Versions before now are gone: a watch from one of them gets 410 at once."""
        self._compacted = self._rv

    # -- the Job controller and the kubelet ------------------------------------------------------------

    def start(self, name: str, *, node: str = "node1", index: int | None = None) -> Manifest:
        """A pod of Job NAME runs: the pod Running, the Job active and ready."""
        job = self._stored("Job", name)
        pod = self._pod(job, index)
        pod["spec"]["nodeName"] = node
        pod["status"] = {"phase": "Running", "startTime": self.now, "containerStatuses": [
            {"name": "job", "ready": True, "restartCount": 0, "state": {"running": {"startedAt": self.now}}}]}
        self._write_new(pod)
        self.set_status("Job", name, active=1, ready=1, startTime=self.now)
        return pod

    def finish(self, name: str, exit_code: int = 0) -> None:
        """Job NAME's pod ends with EXIT_CODE: the pod Succeeded or Failed, then the Job controller's two
        steps: SuccessCriteriaMet/FailureTarget, then Complete/Failed."""
        self.end_pods(name, exit_code)
        ok = exit_code == 0
        counts = {"active": 0, "ready": 0, ("succeeded" if ok else "failed"): 1}
        ending = {"type": "SuccessCriteriaMet" if ok else "FailureTarget", "status": "True",
                  **({} if ok else {"reason": "BackoffLimitExceeded"})}
        final = {"type": "Complete" if ok else "Failed", "status": "True",
                 **({} if ok else {"reason": "BackoffLimitExceeded"})}
        self.set_status("Job", name, **counts, conditions=[ending])
        self.set_status("Job", name, conditions=[ending, final], completionTime=self.now)

    def end_pods(self, name: str, exit_code: int) -> None:
        """The kubelet's part: Job NAME's pods (one made if none ran) terminated with EXIT_CODE."""
        job = self._stored("Job", name)
        pods = self._select("Pod", f"{CONTROLLER_UID}={job['metadata']['uid']}", None, self.namespace)
        if not pods:
            pods = [self._write_new(self._pod(job, None))]
        ok = exit_code == 0
        for pod in pods:
            done = copy.deepcopy(pod)
            done["status"] = {"phase": "Succeeded" if ok else "Failed", "containerStatuses": [
                {"name": "job", "ready": False, "restartCount": 0, "state": {"terminated": {
                    "exitCode": exit_code, "reason": "Completed" if ok else "Error", "startedAt": self.now,
                    "finishedAt": self.now}}}]}
            self._write(done)

    def dying(self, name: str, kind: str = "Job") -> None:
        """KIND NAME is being deleted (foreground): a deletionTimestamp and the finalizer, still readable."""
        obj = copy.deepcopy(self._stored(kind, name))
        obj["metadata"]["deletionTimestamp"] = self.now
        obj["metadata"]["finalizers"] = ["foregroundDeletion"]
        self._write(obj)

    def unseen(self, obj: Manifest | None = None, *, gone: tuple[str, str] | None = None) -> None:
        """A change no watch will show (it fell in a window the API server compacted): OBJ stored as it is,
        or the object GONE (kind, name) removed, without an event."""
        if obj is not None:
            obj = copy.deepcopy(obj)
            meta = obj["metadata"]
            meta["resourceVersion"] = self._next_rv()
            self.store[(meta.get("namespace", self.namespace), obj["kind"], meta["name"])] = obj
        if gone is not None:
            del self.store[(self.namespace, *gone)]

    def set_status(self, kind: str, name: str, **status: Any) -> Manifest:
        obj = copy.deepcopy(self._stored(kind, name))
        obj.setdefault("status", {}).update(status)
        return self._write(obj)

    def seed(self, *objects: Manifest) -> FakeApi:
        """Objects as a real cluster showed them (uid, resourceVersion kept; given where missing)."""
        for o in objects:
            obj = copy.deepcopy(o)
            meta = obj.setdefault("metadata", {})
            meta.setdefault("namespace", self.namespace)
            meta.setdefault("name", f"{obj['kind'].lower()}-{self._uids + 1}")  # trimmed fixtures (events)
            meta.setdefault("uid", self._uid())
            meta.setdefault("creationTimestamp", self.now)
            rv = meta.get("resourceVersion")
            if rv and str(rv).isdigit():
                self._rv = max(self._rv, int(rv))
            else:
                meta["resourceVersion"] = self._next_rv()
            self.store[(meta["namespace"], obj["kind"], meta["name"])] = obj
        return self

    def add_fixture(self, *names: str) -> FakeApi:
        """Each tests/fixtures/k8s/NAME.json's job, pods and events."""
        from kit.fixtures import fixture

        for n in names:
            fx = fixture(n)
            self.seed(*[{"kind": "Job", "apiVersion": "batch/v1", **fx["job"]}],
                      *[{"kind": "Pod", "apiVersion": "v1", **p} for p in fx["pods"]],
                      *[{"kind": "Event", "apiVersion": "v1", **e} for e in fx["events"]])
        return self

    # -- faults ----------------------------------------------------------------------------------------

    def fail(self, verb: str, error: BaseException, *, kind: str | None = None, times: int = 1) -> FakeApi:
        """The next TIMES calls of VERB ("*": any call) on KIND raise ERROR, before anything is done."""
        self._faults += [(verb, kind, error)] * times
        return self

    def before(self, verb: str, action: Callable[[], None], *, kind: str | None = None) -> FakeApi:
        """ACTION runs just before the next call of VERB on KIND is answered (what changed unseen)."""
        self._faults.append((verb, kind, action))  # type: ignore[arg-type]
        return self

    def admit(self, policy: Callable[[Manifest], None], *, first: bool = False) -> FakeApi:
        """POLICY(object) runs on every create, dry-run create and replace before it is stored, and refuses
        by raising (a ValidatingAdmissionPolicy: gridshim's errors for the API server's 422, as the client maps
        it); FIRST puts it before the others (an earlier admission step)."""
        if first:
            self._admission.insert(0, policy)
        else:
            self._admission.append(policy)
        return self

    # -- beyond the Cluster port: what gridshim doctor asks ----------------------------------------------

    def path(self, kind: str, name: str | None = None, *, namespace: str | None = None,
             params: dict[str, Any] | None = None) -> str:
        """The request path KubeCluster.path makes (its KINDS table, this namespace)."""
        import urllib.parse

        from gridshim.kube.client import KINDS

        prefix, plural = KINDS[kind]
        out = f"{prefix}/namespaces/{namespace or self.namespace}/{plural}"
        if name:
            out += "/" + urllib.parse.quote(name, safe="")
        if params:
            out += "?" + urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        return out

    def request(self, method: str, path: str, body: Any = None, *, idempotent: bool | None = None,
                **_: Any) -> Any:
        """The raw requests gridshim doctor sends: GET /version, a SelfSubjectReview, dry-run creates."""
        self._call("request", method, path)
        if (method, path) == ("GET", "/version"):
            return copy.deepcopy(self.version)
        if (method, path) == ("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews"):
            if self.user is None:
                raise ClusterError("the Kubernetes API answered 404 NotFound", status=404)
            return {"status": {"userInfo": {"username": self.user}}}
        if method == "POST" and body is not None and path.split("?")[0] == self.path(body["kind"]):
            if "dryRun=All" in path.split("?", 1)[-1]:
                obj = copy.deepcopy(body)
                for policy in self._admission:
                    policy(obj)
                self._quota(obj)
                return obj  # admitted, nothing stored
            return self.create(body)
        raise AssertionError(f"FakeApi does not answer {method} {path}")

    def access_review(self, verb: str, resource: str, group: str = "") -> bool:
        """A SelfSubjectAccessReview's answer: no for what `denied` holds."""
        self._call("access_review", resource, verb)
        return (verb, resource) not in self.denied

    def lose_answer(self, verb: str = "create") -> FakeApi:
        """The next VERB is done, but its answer is lost (see create)."""
        self._lost.append(verb)
        return self

    def interfere(self, hook: Callable[[str, str, str], None]) -> FakeApi:
        """HOOK(verb, kind, name) runs once, just before the next write lands (another writer's moment)."""
        self._interfere = hook
        return self

    # -- reading back ----------------------------------------------------------------------------------

    def created(self, kind: str) -> list[Manifest]:
        """Every object of KIND as it was created, in the order of creation (also those deleted since)."""
        return [copy.deepcopy(o) for _, t, k, o in self.events if t == "ADDED" and k == kind]

    def objects(self, kind: str) -> list[Manifest]:
        return [copy.deepcopy(o) for o in self._select(kind, None, None, self.namespace)]

    def stored(self, kind: str, name: str) -> Manifest:
        return copy.deepcopy(self._stored(kind, name))

    def lists(self) -> list[str]:
        """The kinds listed, in order (one LIST per kind is the budget of a listing)."""
        return [c.kind for c in self.calls if c.verb == "list"]

    def verbs(self) -> list[tuple[str, str]]:
        return [(c.verb, c.kind) for c in self.calls]

    def writes(self) -> list[tuple[str, str, str]]:
        return [(c.verb, c.kind, c.name) for c in self.calls if c.verb not in ("get", "list", "watch")]

    # -- inside ----------------------------------------------------------------------------------------

    def _call(self, verb: str, kind: str, name: str, **params: Any) -> None:
        self.calls.append(Call(verb, kind, name, params))
        for i, (v, k, err) in enumerate(self._faults):
            if v in (verb, "*") and k in (None, kind):
                del self._faults[i]
                if isinstance(err, BaseException):
                    raise err
                err()  # before(): an action, not a fault
                return

    def _before(self, verb: str, kind: str, name: str) -> None:
        if self._interfere is not None:
            hook, self._interfere = self._interfere, None
            hook(verb, kind, name)

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _uid(self) -> str:
        self._uids += 1
        return f"00000000-0000-4000-8000-{self._uids:012d}"

    def _stored(self, kind: str, name: str) -> Manifest:
        try:
            return self.store[(self.namespace, kind, name)]
        except KeyError:
            raise JobNotFoundError(f'{PLURAL.get(kind, kind)} "{name}" not found') from None

    def _select(self, kind: str, selector: str | None, field_selector: str | None, ns: str) -> list[Manifest]:
        return [o for (n, k, _), o in sorted(self.store.items(), key=lambda kv: kv[0])
                if n == ns and k == kind and label_match(o["metadata"].get("labels") or {}, selector)
                and field_match(o, field_selector)]

    @staticmethod
    def _keep_identity(cur: Manifest, new: Manifest) -> None:
        for k in ("uid", "creationTimestamp", "namespace", "name", "deletionTimestamp"):
            if k in cur["metadata"]:
                new["metadata"][k] = cur["metadata"][k]
        new["metadata"]["generation"] = cur["metadata"].get("generation", 1) + (new.get("spec") != cur.get("spec"))

    def _write(self, obj: Manifest) -> Manifest:
        obj["metadata"]["resourceVersion"] = self._next_rv()
        meta = obj["metadata"]
        self.store[(meta.get("namespace", self.namespace), obj["kind"], meta["name"])] = obj
        self._emit("MODIFIED", obj)
        return copy.deepcopy(obj)

    def _write_new(self, obj: Manifest) -> Manifest:
        meta = obj["metadata"]
        meta.update(namespace=self.namespace, uid=self._uid(), resourceVersion=self._next_rv(),
                    creationTimestamp=self.now)
        self.store[(self.namespace, obj["kind"], meta["name"])] = obj
        self._emit("ADDED", obj)
        return obj

    def _pod(self, job: Manifest, index: int | None) -> Manifest:
        uid = job["metadata"]["uid"]
        template = (job.get("spec") or {}).get("template") or {}
        labels = {**((template.get("metadata") or {}).get("labels") or {}), CONTROLLER_UID: uid,
                  "batch.kubernetes.io/job-name": job["metadata"]["name"]}
        annotations = dict((template.get("metadata") or {}).get("annotations") or {})
        n = len(self._select("Pod", f"{CONTROLLER_UID}={uid}", None, self.namespace))
        if index is not None:
            labels["batch.kubernetes.io/job-completion-index"] = str(index)
            annotations["batch.kubernetes.io/job-completion-index"] = str(index)
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": f"{job['metadata']['name']}-{n}", "labels": labels, "annotations": annotations,
                             "ownerReferences": [{"kind": "Job", "name": job["metadata"]["name"], "uid": uid}]},
                "spec": copy.deepcopy(template.get("spec") or {}), "status": {"phase": "Pending"}}

    def _remove(self, obj: Manifest, propagation: str) -> Manifest:
        meta = obj["metadata"]
        owned = self._select("Pod", f"{CONTROLLER_UID}={meta['uid']}", None, self.namespace) \
            if obj["kind"] == "Job" else []
        if propagation == "Foreground" and owned:
            if not meta.get("deletionTimestamp"):
                dying = copy.deepcopy(obj)
                dying["metadata"]["deletionTimestamp"] = self.now
                dying["metadata"]["finalizers"] = ["foregroundDeletion"]
                return self._write(dying)
            return copy.deepcopy(obj)
        for pod in owned:
            self._remove(pod, "Background")
        key = (meta.get("namespace", self.namespace), obj["kind"], meta["name"])
        if key not in self.store:  # a Job in foreground deletion that just went with its last pod
            return copy.deepcopy(obj)
        del self.store[key]
        gone = copy.deepcopy(obj)
        gone["metadata"]["resourceVersion"] = self._next_rv()
        self._emit("DELETED", gone)
        if obj["kind"] == "Pod":  # the garbage collector: a Job in foreground deletion goes with its last pod
            owner = (meta.get("labels") or {}).get(CONTROLLER_UID)
            for job in self._select("Job", None, None, self.namespace):
                if job["metadata"]["uid"] == owner and "foregroundDeletion" in (job["metadata"].get("finalizers") or []) \
                        and not self._select("Pod", f"{CONTROLLER_UID}={owner}", None, self.namespace):
                    self._remove(job, "Background")
        return gone

    def _quota(self, obj: Manifest) -> None:
        """ResourceQuota admission of a create, object counts only (compute resources are not counted)."""
        kind, meta = obj["kind"], obj["metadata"]
        ns = meta.get("namespace", self.namespace)
        resource = f"count/{PLURAL.get(kind, kind)}"
        for q in self._select("ResourceQuota", None, None, ns):
            hard = (q.get("status") or {}).get("hard") or (q.get("spec") or {}).get("hard") or {}
            if resource not in hard:
                continue
            limit = int(quantity.parse(hard[resource]))
            used = len(self._select(kind, None, None, ns))
            if used + 1 > limit:
                raise QuotaExceededError(
                    f'{PLURAL.get(kind, kind)} "{meta["name"]}" is forbidden: exceeded quota: {q["metadata"]["name"]}, '
                    f"requested: {resource}=1, used: {resource}={used}, limited: {resource}={hard[resource]}")

    def _garbage_collector(self) -> None:
        """The GC's part of an Orphan delete, counted in LISTs: the dependents lose their ownerReference to
        the object, the orphan finalizer comes off, and the object goes (if no other finalizer holds it)."""
        for key in list(self._collecting):
            self._collecting[key] -= 1
            if self._collecting[key] >= 0:
                continue
            del self._collecting[key]
            obj = self.store.get(key)
            if obj is None:
                continue
            uid = obj["metadata"]["uid"]
            for dep in [o for (n, _, _), o in sorted(self.store.items()) if n == key[0]]:
                refs = (dep.get("metadata") or {}).get("ownerReferences") or []
                if any(r.get("uid") == uid for r in refs):
                    freed = copy.deepcopy(dep)
                    freed["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != uid]
                    if not freed["metadata"]["ownerReferences"]:
                        del freed["metadata"]["ownerReferences"]
                    self._write(freed)
            rest = [f for f in obj["metadata"].get("finalizers") or [] if f != "orphan"]
            if rest:
                kept = copy.deepcopy(obj)
                kept["metadata"]["finalizers"] = rest
                self._write(kept)
                continue
            del self.store[key]
            gone = copy.deepcopy(obj)  # the last stored state, as etcd's delete event has it
            gone["metadata"]["resourceVersion"] = self._next_rv()
            self._emit("DELETED", gone)

    def _emit(self, etype: str, obj: Manifest) -> None:
        self.events.append((int(obj["metadata"]["resourceVersion"]), etype, obj["kind"], copy.deepcopy(obj)))
