"""The resource client: `KubeCluster`, one namespace's objects as plain dicts (create, get, list, replace,
patch, delete, watch, access reviews, discovery) over the transport. Raises only gridshim errors."""

from __future__ import annotations

import gc
import json
import os
import re
import ssl
import time

import gridshim.kube.http11 as http11
from gridshim.digest import sha256
from gridshim.errors import ClusterConfigError, ClusterError, ConflictError, GridshimError, JobExistsError, JobNotFoundError
from gridshim.kube.auth import Auth
from gridshim.kube.config import Credentials, kubeconfig_paths, load_credentials
from gridshim.kube.transport import Transport, _one_line, _Retry, query, quote, retry_seconds
from gridshim.model import Manifest, tool_of

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up, docs/performance.md)
if TYPE_CHECKING:
    import builtins  # `list` in the class body below is KubeCluster.list
    from collections.abc import Callable, Iterator
    from pathlib import Path
    from typing import Any

# kind → (API prefix, plural). Everything gridshim touches is namespaced except the access review.
KINDS: dict[str, tuple[str, str]] = {
    "Job": ("/apis/batch/v1", "jobs"),
    "CronJob": ("/apis/batch/v1", "cronjobs"),
    "Pod": ("/api/v1", "pods"),
    "ConfigMap": ("/api/v1", "configmaps"),
    "Event": ("/api/v1", "events"),
    "ResourceQuota": ("/api/v1", "resourcequotas"),
    "LimitRange": ("/api/v1", "limitranges"),
}
# What gridshim needs the API server to serve, checked by discovery (crontab, gridshim doctor).
NEEDED_APIS: tuple[tuple[str, str, str], ...] = (("batch/v1", "jobs", "jsub, qsub, qstat and qdel"),
                                                 ("batch/v1", "cronjobs", "crontab"))
DISCOVERY_TTL = 300.0  # seconds a discovery answer is reused (in this process and in ~/.cache/gridshim)
_DISCOVERY: dict[tuple[str, str], tuple[float, frozenset[str] | None]] = {}
PAGE = 500  # list page size: big enough for few round trips, small enough to keep memory flat
# The annotation in which gridshim puts a random per-submission token. A manifest that carries one
# is created at most once, even when an answer is lost (render/labels.py A_TOKEN is the same key).
TOKEN_ANNOTATION = "gridshim.io/token"
# generateName is resolved here from the token (base + 5 characters, like the API server's own
# suffix) so that a retried POST meets 409 instead of creating a second object.
_SUFFIX_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_GENERATED_BASE_MAX = 58  # the API server truncates generateName to this before adding 5 characters


def client_name(generate_name: str, token: str) -> str:
    """The object name for generateName BASE chosen from TOKEN: deterministic, so a retry is idempotent."""
    n = int.from_bytes(sha256(token.encode()).digest()[:8], "big")
    suffix = ""
    for _ in range(5):
        n, i = divmod(n, len(_SUFFIX_ALPHABET))
        suffix += _SUFFIX_ALPHABET[i]
    return generate_name[:_GENERATED_BASE_MAX] + suffix


def _holds(stored: Any, sent: Any) -> bool:
    """Whether STORED already holds everything in SENT: the API server adds defaults and status, but
    changes nothing that was sent (lists must match element by element)."""
    if isinstance(sent, dict):
        return isinstance(stored, dict) and all(k in stored and _holds(stored[k], v) for k, v in sent.items())
    if isinstance(sent, list):
        return isinstance(stored, list) and len(stored) == len(sent) and all(map(_holds, stored, sent))
    return bool(stored == sent)


_LIST_META = rb'^\{[^{]*?"metadata":\s*(\{[^{}]*\})'  # patterns compiled on first use (re's cache)


def _continue_token(raw: bytes) -> str | None:
    """The continue token of a list page, read from its head (the API server writes metadata before
    items); None when the head does not show it, "" when the page is the last."""
    m = re.match(_LIST_META, raw[:4096])
    if not m:
        return None
    try:
        meta = json.loads(m.group(1))
    except ValueError:
        return None
    return str(meta.get("continue") or "")


_LIST_HEAD = r'\{[^{]*?"metadata":(\{[^{}]*\}),"items":\['
_ITEM_END = r"\s*([,\]])\s*"
_DECODER = json.JSONDecoder()


def _each_item(text: str, keep: Callable[[Any], Any]) -> tuple[list[Any], dict[str, Any]] | None:
    """A list page as the API server writes it (`{"kind":…,"metadata":{…},"items":[{…},…]}`): (KEEP of each
    item, the list's metadata), the items decoded one at a time, each handed to KEEP before the next is
    decoded, so the page's full objects never exist all at once. None when the page is not laid out like
    that (what KEEP returned so far is then dropped, and the caller decodes the page whole)."""
    head = re.match(_LIST_HEAD, text)
    if head is None:
        return None
    kept: list[Any] = []
    at = head.end()
    decode = _DECODER.raw_decode
    item_end = re.compile(_ITEM_END).match  # once per page (re's cache after the first)
    try:
        meta = json.loads(head.group(1))
        if text.startswith("]", at):
            at += 1
        else:
            while True:
                item, at = decode(text, at)
                kept.append(keep(item))
                del item
                sep = item_end(text, at)
                if sep is None:
                    return None
                at = sep.end()
                if sep.group(1) == "]":
                    break
    except ValueError as e:
        if isinstance(e, json.JSONDecodeError):
            return None
        raise
    if text[at:].strip() != "}" or not isinstance(meta, dict):
        return None
    return kept, meta


class _Prefetch:
    """One page asked for in the background, on a connection of its own (the same credentials)."""

    def __init__(self, owner: KubeCluster) -> None:
        import threading  # noqa: PLC0415  (only lists of more than one page pay for it)

        self.owner = owner
        self.sibling = owner._sibling()
        self._threading = threading
        self._thread: Any = None
        self._out: tuple[bytes | None, BaseException | None] = (None, None)

    def start(self, path: str) -> None:
        def run() -> None:
            try:
                self._out = (self.sibling._call("GET", path, attempts=_Retry(self.sibling.retry_seconds),
                                                decode=False), None)
            except BaseException as e:  # noqa: BLE001  (re-raised in the caller's thread)
                self._out = (None, e)

        self._thread = self._threading.Thread(target=run, daemon=True)
        self._thread.start()

    def result(self) -> bytes:
        self._thread.join()
        raw, err = self._out
        self._out = (None, None)
        if err is not None:
            raise err
        return raw or b""

    def close(self) -> None:
        if self._thread is not None:
            self._thread.join()
        if self.sibling is not self.owner:
            self.owner.round_trips += self.sibling.round_trips
            self.sibling.round_trips = 0
            self.sibling.close()



class KubeCluster(Transport):
    """A namespace on an API server, reached with the user's own kubeconfig credentials."""

    def __init__(self, creds: Credentials, namespace: str | None = None, *,
                 retry_seconds: float | None = None, auth: Auth | None = None, environ: Any = None) -> None:
        ns = namespace or creds.namespace
        if not ns:
            raise ClusterConfigError(
                f"kubeconfig {creds.path}: context {creds.context!r} sets no namespace",
                hint="add one with 'kubectl config set-context --current --namespace=tool-NAME', "
                     "or regenerate the tool's kubeconfig")
        self.namespace: str = ns
        super().__init__(creds, retry_seconds=retry_seconds, auth=auth, environ=environ)

    @classmethod
    def from_kubeconfig(cls, path: str | None = None, context: str | None = None,
                        environ: dict[str, str] | None = None) -> KubeCluster:
        paths = [path] if path else kubeconfig_paths(environ)
        budget = retry_seconds(environ) if environ is not None else None
        return cls(load_credentials(paths, context), retry_seconds=budget, environ=environ)

    @property
    def tool(self) -> str:
        """Toolforge's rule: the tool is the namespace without its `tool-` prefix."""
        return tool_of(self.namespace)

    # -- resources -----------------------------------------------------------------------------------

    def path(self, kind: str, name: str | None = None, *, namespace: str | None = None,
             params: dict[str, Any] | None = None) -> str:
        prefix, plural = KINDS[kind]
        p = f"{prefix}/namespaces/{namespace or self.namespace}/{plural}"
        if name:
            p += "/" + quote(name)
        if params:
            p += "?" + query({k: v for k, v in params.items() if v is not None})
        return p

    def create(self, manifest: Manifest) -> Manifest:
        """POST, retried within the budget, never making a second object.

        A POST whose answer was lost (reset, timeout, 5xx) may have made the object, so a retry is
        only safe when the API server's name check stops a duplicate, and a 409 (or any refusal)
        after such an attempt is checked against the stored object: if it is ours, it is returned as
        if the first answer had arrived. "Ours": it carries the manifest's client token
        (TOKEN_ANNOTATION), or, without one, it already holds everything that was sent.

        - fixed name: retried; the 409 of a retry is resolved as above.
        - generateName with a token: the name is chosen here from the token (`client_name`), so it
          is a fixed name; a real collision of that name (1 in 36**5) falls back to generateName.
        - generateName without a token: one plain POST (a retry could make a second object).
        """
        meta = manifest.get("metadata") or {}
        token = (meta.get("annotations") or {}).get(TOKEN_ANNOTATION)
        path = self.path(manifest["kind"])
        named = manifest
        if not meta.get("name") and meta.get("generateName"):
            if not token:
                return self.request("POST", path, manifest, idempotent=False)  # type: ignore[no-any-return]
            named = {**manifest, "metadata": {**{k: v for k, v in meta.items() if k != "generateName"},
                                              "name": client_name(meta["generateName"], token)}}
        r = _Retry(self.retry_seconds)
        try:
            return self._call("POST", path, named, attempts=r)  # type: ignore[no-any-return]
        except ClusterConfigError:
            raise
        except GridshimError as e:
            if r.attempts > 1:  # an earlier attempt may have made it (even a 503 may hide a success)
                own = self._own(named, token)
                if own is not None:
                    return own
            if isinstance(e, JobExistsError) and named is not manifest and r.attempts == 1:
                # the client-chosen name is held by another object: let the server choose
                return self.request("POST", path, manifest, idempotent=False)  # type: ignore[no-any-return]
            if r.ambiguous and isinstance(e, ClusterError):
                look = "crontab -l" if manifest["kind"] in ("CronJob", "ConfigMap") else "qstat"
                e.hint = (f"{e.hint}; " if e.hint else "") + (
                    f"an answer was lost, so the {manifest['kind']} may exist: check with {look} before trying again")
            raise

    def _own(self, sent: Manifest, token: str | None) -> Manifest | None:
        """The stored object of SENT's kind and name if it is the result of our write, else None."""
        meta = sent["metadata"]
        try:
            obj = self._call("GET", self.path(sent["kind"], meta["name"]),
                             attempts=_Retry(min(self.retry_seconds, 5.0)))
        except GridshimError:
            return None
        if not isinstance(obj, dict):
            return None
        if token:
            ann = (obj.get("metadata") or {}).get("annotations") or {}
            return obj if ann.get(TOKEN_ANNOTATION) == token else None
        body = {k: v for k, v in sent.items() if k != "metadata"}
        body["metadata"] = {k: v for k, v in meta.items() if k not in ("resourceVersion", "generateName")}
        return obj if _holds(obj, body) else None

    def get(self, kind: str, name: str) -> Manifest:
        return self.request("GET", self.path(kind, name))  # type: ignore[no-any-return]  # a JSON object

    def namespace_object(self) -> Manifest:
        """The tool's own Namespace (cluster-scoped: a RoleBinding in it may grant `get` on it)."""
        return self.request("GET", "/api/v1/namespaces/" + quote(self.namespace))  # type: ignore[no-any-return]  # a JSON object

    def list(self, kind: str, *, selector: str | None = None, field_selector: str | None = None,
             namespace: str | None = None, trim: Callable[[Manifest], Any] | None = None) -> tuple[list[Any], str]:
        """All objects of KIND (paginated); returns (items, list resourceVersion for a watch).

        The next page is asked for, on a second connection, as soon as this page's continue token is
        read (the list's metadata comes before its items), so the server reads page n+1 from etcd while
        we decode page n. TRIM, when given, turns each object into what the caller keeps (a smaller
        dict, a row), so a page's full objects are garbage as soon as the page is decoded."""
        items: list[Any] = []

        def kept(item: Any) -> Any:
            """What the list keeps of one object. gridshim never reads managedFields, ~40 % of a Job's JSON:
            dropped, qstat with 5,000 Jobs peaks at ~55 MB less (docs/performance.md); a PUT without them
            keeps them. Then TRIM, if given."""
            if isinstance(item, dict):
                (item.get("metadata") or {}).pop("managedFields", None)
            return item if trim is None else trim(item)

        def path(token: str | None) -> str:
            return self.path(kind, namespace=namespace, params={
                "labelSelector": selector, "fieldSelector": field_selector, "limit": PAGE, "continue": token})

        # The parsed pages hold no reference cycles, but the cyclic GC would walk them again and again
        # as they pile up: off while reading, 5,000 Jobs parse in half the time (docs/performance.md).
        gc_was_on = gc.isenabled()
        gc.disable()
        ahead: _Prefetch | None = None
        try:
            raw = self._call("GET", path(None), attempts=_Retry(self.retry_seconds), decode=False)
            while True:
                token = _continue_token(raw)
                if token:
                    ahead = ahead or _Prefetch(self)
                    ahead.start(path(token))
                # With TRIM, the items are decoded one at a time and each is trimmed before the next: a
                # page's full objects never exist all at once (qstat: ~35 MB less at 500 Jobs a page).
                one_by_one = None
                if trim is not None and raw.startswith(b"{"):
                    try:
                        text = raw.decode("utf-8")
                    except UnicodeDecodeError:
                        text = ""
                    if text:
                        raw = b""  # the text is the page now: one copy of it at a time
                        one_by_one = _each_item(text, kept)
                        if one_by_one is None:
                            raw = text.encode()
                        del text
                if one_by_one is not None:
                    items += one_by_one[0]
                    meta = one_by_one[1]
                else:
                    page = self._decode(raw, "GET")
                    raw = b""
                    items.extend(kept(item) for item in page.get("items") or [])
                    meta = page.get("metadata") or {}
                    del page
                if token is None:
                    token = meta.get("continue")  # not found in the head: no overlap for this page
                    if token:
                        ahead = ahead or _Prefetch(self)
                        ahead.start(path(token))
                if not token:
                    return items, meta.get("resourceVersion", "")
                assert ahead is not None
                raw = ahead.result()
        finally:
            if ahead is not None:
                ahead.close()
            if gc_was_on:
                gc.enable()

    def _sibling(self) -> KubeCluster:
        """Another connection to the same server with the same credentials (and the same TLS context)."""
        other = KubeCluster(self.creds, self.namespace, retry_seconds=self.retry_seconds, auth=self.auth,
                            environ=self._environ)
        other._ctx, other._ctx_generation, other._proxy = self._context(), self._ctx_generation, self._proxy
        return other

    def api_resources(self, group_version: str) -> frozenset[str] | None:
        """The resources the API server serves in GROUP_VERSION ("batch/v1"), None when it serves no such
        group/version. Cached for DISCOVERY_TTL seconds, in memory and in the user's cache directory (as
        kubectl caches discovery), so only the first command in a while pays the GET."""
        key = (self.creds.server, group_version)
        now = time.time()
        hit = _DISCOVERY.get(key)
        if hit is not None and now - hit[0] < DISCOVERY_TTL:
            return hit[1]
        cache = self._discovery_file(group_version)
        try:
            with open(cache) as f:
                doc = json.load(f)
            if isinstance(doc, dict) and 0 <= now - float(doc["at"]) < DISCOVERY_TTL:
                found = None if doc["resources"] is None else frozenset(doc["resources"])
                _DISCOVERY[key] = (float(doc["at"]), found)
                return found
        except (OSError, ValueError, KeyError, TypeError):
            pass
        prefix = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
        try:
            out = self.request("GET", prefix) or {}
            found = frozenset(str(r.get("name")) for r in out.get("resources") or [] if isinstance(r, dict))
        except JobNotFoundError:
            found = None
        _DISCOVERY[key] = (now, found)
        try:
            import tempfile  # noqa: PLC0415

            cache.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=cache.parent, prefix=".discovery-")
            with os.fdopen(fd, "w") as f:
                json.dump({"at": now, "server": self.creds.server, "groupVersion": group_version,
                           "resources": None if found is None else sorted(found)}, f)
            os.replace(tmp, cache)
        except OSError:
            pass
        return found

    def _discovery_file(self, group_version: str) -> Path:
        from pathlib import Path  # noqa: PLC0415  (discovery is for crontab and doctor, not the submit path)

        env = self._environ
        base = env.get("XDG_CACHE_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".cache")
        digest = sha256(self.creds.server.encode()).hexdigest()[:16]
        return Path(base) / "gridshim" / "discovery" / f"{digest}-{group_version.replace('/', '_')}.json"

    def missing_apis(self, needed: tuple[tuple[str, str, str], ...] = NEEDED_APIS) -> builtins.list[tuple[str, str, str]]:
        """The (group/version, resource, what needs it) of NEEDED that the API server does not serve."""
        out = []
        for gv, resource, what in needed:
            served = self.api_resources(gv)
            if served is None or resource not in served:
                out.append((gv, resource, what))
        return out

    def _decode(self, raw: bytes, method: str) -> Any:
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            raise ClusterError(f"the API server {self.creds.server} answered {method} with something "
                               "that is not JSON", hint=f"is server in {self.creds.path} a Kubernetes API?",
                               detail=_one_line(raw.decode(errors="replace"))) from None

    def delete(self, kind: str, name: str, *, uid: str | None = None, resource_version: str | None = None,
               grace: int | None = None, propagation: str = "Background") -> Manifest | None:
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
        pre = {k: v for k, v in (("uid", uid), ("resourceVersion", resource_version)) if v}
        if pre:
            body["preconditions"] = pre
        if grace is not None:
            body["gracePeriodSeconds"] = grace
        r = _Retry(self.retry_seconds)
        try:
            return self._call("DELETE", self.path(kind, name), body, attempts=r)  # type: ignore[no-any-return]
        except JobNotFoundError:
            if r.ambiguous:
                return None  # an attempt whose answer was lost deleted it: gone is what was asked
            raise

    def delete_collection(self, kind: str, *, selector: str, grace: int | None = None) -> None:
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        if grace is not None:
            body["gracePeriodSeconds"] = grace
        self.request("DELETE", self.path(kind, params={"labelSelector": selector}), body)

    def replace(self, manifest: Manifest) -> Manifest:
        """PUT with the manifest's resourceVersion: fails with ConflictError if someone else wrote first.

        A PUT whose answer was lost and whose retry meets 409 Conflict was ours if the stored object
        has moved on from that resourceVersion and is ours (`_own`: our token, or all we sent)."""
        meta = manifest["metadata"]
        token = (meta.get("annotations") or {}).get(TOKEN_ANNOTATION)
        r = _Retry(self.retry_seconds)
        try:
            return self._call("PUT", self.path(manifest["kind"], meta["name"]), manifest,  # type: ignore[no-any-return]
                              attempts=r)
        except ConflictError:
            if r.ambiguous:
                own = self._own(manifest, token)
                if own is not None and own["metadata"].get("resourceVersion") != meta.get("resourceVersion"):
                    return own
            raise

    def patch(self, kind: str, name: str, body: Any, *, patch_type: str = "merge") -> Manifest:
        ctype = {"merge": "application/merge-patch+json", "json": "application/json-patch+json",
                 "strategic": "application/strategic-merge-patch+json"}[patch_type]
        return self.request("PATCH", self.path(kind, name), body,  # type: ignore[no-any-return]  # a JSON object
                            content_type=ctype, idempotent=True)

    def access_review(self, verb: str, resource: str, group: str = "") -> bool:
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                  "spec": {"resourceAttributes": {"namespace": self.namespace, "verb": verb,
                                                  "group": group, "resource": resource}}}
        out = self.request("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", review,
                           idempotent=True)
        return bool((out.get("status") or {}).get("allowed"))

    def watch(self, kind: str, *, resource_version: str, selector: str | None = None,
              field_selector: str | None = None, timeout: float = 300) -> Iterator[tuple[str, Manifest]]:
        """Yield (type, object) events until TIMEOUT; the caller re-lists on ERROR (410 Gone)."""
        path = self.path(kind, params={"watch": "1", "resourceVersion": resource_version,
                                       "labelSelector": selector, "fieldSelector": field_selector,
                                       "timeoutSeconds": int(timeout), "allowWatchBookmarks": "true"})
        conn = self._new_connection(timeout + 10)
        headers = self._headers()
        self.round_trips += 1
        try:
            try:
                conn.request("GET", self._url("GET", path), headers=headers)
                resp = conn.getresponse()
            except ssl.SSLCertVerificationError as e:
                raise self._verify_error(e) from None
            except (OSError, http11.HTTPException) as e:
                raise self._unreachable(e) from None
            self._warn(resp)
            if resp.status >= 300:
                raise self.error_for(resp.status, resp.read(), "GET", path)
            while True:
                try:
                    line = resp.readline()
                except (OSError, http11.HTTPException):
                    return
                if not line:
                    return
                event = json.loads(line)
                yield event.get("type", ""), event.get("object") or {}
        finally:
            conn.close()
