"""The unit tests' fake API server (tests/kit) against the real one: the same steps through the Cluster port,
on the e2e suite's kube-apiserver (the sandbox's, or another in external mode; KubeCluster with a tool's
kubeconfig) and on kit.FakeApi, must give the
same answers — the error class of each refusal (409 AlreadyExists vs Conflict, preconditions, 404), what
a label or field selector selects, that every write moves resourceVersion on and keeps the uid, what a
merge patch with null does, and the watch's event types in order, DELETED with the last state.

ConfigMaps: every verb, no pods to schedule (cheap on the shared sandbox). And one suspended CronJob in a
tool whose quota holds one: the quota admission's refusal (its words, before a taken name's 409) and an
Orphan delete's answer (terminating, the orphan finalizer)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conftest import Tool
from gridshim.cluster import KubeCluster
from gridshim.errors import GridshimError
from kit import FakeApi

Step = Callable[[Any], Any]


def cm(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels},
            "data": {"k": "v"}}


def outcome(fn: Step, cluster: Any) -> Any:
    try:
        return ("ok", fn(cluster))
    except GridshimError as e:
        return ("error", type(e).__name__)


def scenario(c: Any) -> list[Any]:
    """Each step's outcome, reduced to what must agree (names, classes, orders; not the values of uids)."""
    out: list[Any] = []
    a = c.create(cm("kit-a", app="x", tier="db"))
    out.append(("create", sorted(k for k in ("uid", "resourceVersion", "creationTimestamp") if a["metadata"].get(k))))
    out.append(("create again", outcome(lambda c: c.create(cm("kit-a")), c)))
    b = c.create(cm("kit-b", app="x"))
    c.create(cm("kit-c", app="y"))
    out.append(("rv grows", int(b["metadata"]["resourceVersion"]) > int(a["metadata"]["resourceVersion"])))
    patched = c.patch("ConfigMap", "kit-a", {"metadata": {"labels": {"tier": None}}, "data": {"k2": "w"}})
    out.append(("patch", patched["metadata"]["labels"], patched["data"], patched["metadata"]["uid"] == a["metadata"]["uid"]))
    out.append(("stale replace", outcome(lambda c: c.replace(a), c)))
    out.append(("stale patch", outcome(lambda c: c.patch("ConfigMap", "kit-a", {"metadata": {
        "resourceVersion": a["metadata"]["resourceVersion"]}, "data": {"k": "x"}}), c)))
    out.append(("uid patch", outcome(lambda c: c.patch("ConfigMap", "kit-a", {"metadata": {
        "uid": "00000000-0000-0000-0000-000000000000"}}), c)))
    out.append(("uid delete", outcome(lambda c: c.delete("ConfigMap", "kit-a", uid="00000000-0000-0000-0000-000000000000"), c)))
    out.append(("rv delete", outcome(lambda c: c.delete("ConfigMap", "kit-a",
                                                         resource_version=a["metadata"]["resourceVersion"]), c)))
    out.append(("missing", outcome(lambda c: c.get("ConfigMap", "kit-nothing"), c)))
    out.append(("missing delete", outcome(lambda c: c.delete("ConfigMap", "kit-nothing"), c)))
    fresh = c.get("ConfigMap", "kit-a")
    fresh["data"] = {"k": "put"}
    put = c.replace(fresh)
    out.append(("replace", put["data"], int(put["metadata"]["resourceVersion"]) > int(fresh["metadata"]["resourceVersion"])))

    def names(**kw: Any) -> list[str]:
        return [o["metadata"]["name"] for o in c.list("ConfigMap", **kw)[0] if o["metadata"]["name"].startswith("kit-")]
    for sel in ("app=x", "app!=x", "app in (x,y)", "app notin (x)", "app", "!app", "app=x,tier"):
        out.append(("labels", sel, names(selector=sel)))
    out.append(("fields", names(field_selector="metadata.name=kit-b"), names(field_selector="metadata.name!=kit-b")))
    _, rv = c.list("ConfigMap", selector="app")
    c.patch("ConfigMap", "kit-b", {"data": {"k": "changed"}})
    c.delete("ConfigMap", "kit-b", uid=b["metadata"]["uid"])
    c.create(cm("kit-d", app="x"))
    events = []
    for etype, obj in c.watch("ConfigMap", resource_version=rv, selector="app=x", timeout=3):
        if etype == "BOOKMARK":
            continue
        events.append((etype, obj["metadata"]["name"], (obj.get("data") or {}).get("k")))
        if len(events) == 3:
            break
    out.append(("watch", events))
    return out


def test_the_kits_fake_answers_as_the_real_api_server(tool: Tool) -> None:
    real = KubeCluster.from_kubeconfig(tool.kubeconfig)
    try:
        want = scenario(real)
    finally:
        for name in ("kit-a", "kit-b", "kit-c", "kit-d"):
            try:
                real.delete("ConfigMap", name)
            except GridshimError:
                pass
    fake = FakeApi(tool.namespace)
    got = scenario(fake)
    assert got == want
    # and what the scenario pins is what the unit tests rely on
    answers = dict((o[0], o[1]) for o in want if len(o) == 2)
    assert answers["create again"] == ("error", "JobExistsError")
    assert answers["stale replace"] == ("error", "ConflictError") and answers["uid delete"] == ("error", "ConflictError")
    assert answers["missing"] == ("error", "JobNotFoundError")


def cronjob(name: str) -> dict[str, Any]:
    """A CronJob that never runs (suspended, a yearly schedule) and names no uid (the sandbox's policy)."""
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name, "labels": {"kit": "q"}},
            "spec": {"schedule": "0 0 1 1 *", "suspend": True, "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "Never", "containers": [{"name": "c", "image": "kit.invalid/none", "command": ["true"]}]}}}}}}


def said(fn: Step, cluster: Any) -> Any:
    """outcome() with the refusal's words."""
    try:
        fn(cluster)
        return ("ok",)
    except GridshimError as e:
        return ("error", type(e).__name__, e.message)


def quota_scenario(c: Any) -> list[Any]:
    out: list[Any] = [("first", said(lambda c: c.create(cronjob("kit-q1")), c))]
    out.append(("over the quota", said(lambda c: c.create(cronjob("kit-q2")), c)))
    out.append(("taken name, quota full", outcome(lambda c: c.create(cronjob("kit-q1")), c)))
    gone = c.delete("CronJob", "kit-q1", propagation="Orphan")
    out.append(("orphan delete", bool(gone["metadata"].get("deletionTimestamp")), gone["metadata"].get("finalizers")))
    return out


def test_the_kits_quota_and_orphan_delete_answer_as_the_real_api_server(make_tool: Callable[..., Tool]) -> None:
    tool = make_tool("kq", quota={"count/cronjobs.batch": "1"})
    # the quota is enforced once its controller has filled in its status (a fresh namespace: within seconds)
    quota = tool.wait_for(lambda: next((q for q in tool.kubectl_json("get", "resourcequota")["items"]
                                        if "count/cronjobs.batch" in ((q.get("status") or {}).get("used") or {})), None),
                          what="the quota's status")
    real = KubeCluster.from_kubeconfig(tool.kubeconfig)
    try:
        want = quota_scenario(real)
        # the garbage collector finishes the Orphan delete: the CronJob goes
        tool.wait_for(lambda: outcome(lambda c: c.get("CronJob", "kit-q1"), real) == ("error", "JobNotFoundError"),
                      what="the garbage collector to remove kit-q1")
    finally:
        for name in ("kit-q1", "kit-q2"):
            try:
                real.delete("CronJob", name)
            except GridshimError:
                pass
    fake = FakeApi(tool.namespace).seed(quota)
    assert quota_scenario(fake) == want
    assert outcome(lambda c: c.get("CronJob", "kit-q1"), fake) == ("error", "JobNotFoundError")
    assert want[1][1][1] == "QuotaExceededError" and want[2][1] == ("error", "QuotaExceededError")
    assert want[3] == ("orphan delete", True, ["orphan"])
