"""Kubeconfig loading: which files, kubectl's merge of several, one context resolved to `Credentials`;
in-cluster credentials (a pod's ServiceAccount token) when no kubeconfig is found, as kubectl does.

Nothing here touches the network. PyYAML is imported only when a kubeconfig is read. Anything
malformed is a ClusterConfigError naming the file and the entry, never a crash."""

from __future__ import annotations

import base64
import os

from gridshim.errors import ClusterConfigError
from gridshim.record import record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up, docs/performance.md)
if TYPE_CHECKING:
    from typing import Any

# A kubeconfig is a few KiB; one that is not a regular file (a FIFO, /dev/zero) or is huge is refused
# rather than read forever or into all memory.
KUBECONFIG_LIMIT = 4 * 1024 * 1024

# auth-provider plugins were removed from kubectl (1.26: gcp, azure); each has an exec replacement.
AUTH_PROVIDER_FIX = {
    "gcp": "the exec plugin gke-gcloud-auth-plugin (gcloud components install gke-gcloud-auth-plugin, then "
           "gcloud container clusters get-credentials)",
    "azure": "the exec plugin kubelogin (github.com/Azure/kubelogin: kubelogin convert-kubeconfig)",
    "oidc": "an exec plugin such as kubelogin (github.com/int128/kubelogin: kubectl oidc-login setup)",
}
EXEC_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
# Where a pod's ServiceAccount credentials are mounted (client-go's rest.InClusterConfig and kubectl read
# exactly this path; the kubelet projects token, ca.crt and namespace there).
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
IN_CLUSTER = "in-cluster"  # Credentials.context of in-cluster credentials


@record(frozen=True)
class Credentials:
    """What a kubeconfig context resolves to: the server, how to trust it, how to reach it, who we are."""

    path: str  # the kubeconfig file(s) tried, for messages
    context: str
    server: str
    namespace: str | None
    ca_file: str | None = None
    ca_data: str | None = None
    insecure: bool = False
    cert_file: str | None = None
    key_file: str | None = None
    cert_data: bytes | None = None
    key_data: bytes | None = None
    token: str | None = None
    token_file: str | None = None  # where token came from (kept for a re-read; token holds its text)
    tls_server_name: str | None = None  # SNI and the name the server's certificate is checked against
    proxy_url: str | None = None  # the cluster's proxy-url; None: HTTPS_PROXY/NO_PROXY as kubectl reads them
    user: str = ""  # the kubeconfig user entry's name, for messages
    exec_spec: Any = None  # the user's exec block (a dict, command resolved), or None
    exec_cluster: Any = None  # the cluster as an exec plugin sees it (provideClusterInfo), or None
    impersonate: tuple[tuple[str, str], ...] = ()  # Impersonate-* headers, in kubectl's order
    in_cluster: bool = False  # the pod's ServiceAccount (token_file re-read as it rotates), not a kubeconfig


def kubeconfig_paths(environ: dict[str, str] | os._Environ[str] | None = None) -> list[str]:
    env = os.environ if environ is None else environ
    if env.get("KUBECONFIG"):
        return [p for p in env["KUBECONFIG"].split(os.pathsep) if p]
    return [os.path.join(env.get("HOME") or os.path.expanduser("~"), ".kube", "config")]


def _read_kubeconfig(path: str) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        return _read_open_kubeconfig(path, fd, os.fstat(fd))
    finally:
        os.close(fd)


def _read_open_kubeconfig(path: str, fd: int, st: os.stat_result) -> str:
    import stat  # noqa: PLC0415

    if not stat.S_ISREG(st.st_mode):
        raise ClusterConfigError(f"kubeconfig {path} is not a regular file", hint="point KUBECONFIG at a file")
    with os.fdopen(fd, "rb", closefd=False) as f:
        data = f.read(KUBECONFIG_LIMIT + 1)
    if len(data) > KUBECONFIG_LIMIT:
        raise ClusterConfigError(f"kubeconfig {path} is larger than {KUBECONFIG_LIMIT // (1024 * 1024)} MiB",
                                 hint="point KUBECONFIG at your kubeconfig file")
    return data.decode("utf-8")


# A kubeconfig holding any of these in a user entry is never kept in the parsed-file cache
# (gridshim.usercache): no private key, token or password is copied to disk.
_SECRET_KEYS = frozenset({"client-key-data", "token", "password", "auth-provider", "env"})


def _no_secrets(data: Any) -> bool:
    users = data.get("users") if isinstance(data, dict) else None
    if not isinstance(users, list):
        return users is None and isinstance(data, dict)
    for entry in users:
        user = entry.get("user") if isinstance(entry, dict) else None
        if not isinstance(user, dict):
            return False
        plugin = user.get("exec")
        if _SECRET_KEYS & set(user) or (plugin is not None and (not isinstance(plugin, dict) or _SECRET_KEYS & set(plugin))):
            return False
    return True


def _yaml_error(e: BaseException) -> bool:
    import sys  # noqa: PLC0415

    yaml = sys.modules.get("yaml")
    return isinstance(e, (ValueError, RecursionError)) or (yaml is not None and isinstance(e, yaml.YAMLError))


def _parse_yaml(text: str) -> Any:
    import yaml  # noqa: PLC0415  (only when the parsed-file cache does not hold the file)

    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _header_key(key: str) -> str:
    """client-go's headerKeyEscape: bytes that are not legal in a header name (and '%') as %XX."""
    legal = set(b"!#$&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
    return "".join(chr(b) if b in legal else f"%{b:02X}" for b in key.encode())


class NoKubeconfig(ClusterConfigError):
    """None of the kubeconfig files exists, or all that exist are empty: the case where kubectl uses
    in-cluster credentials if it can."""


def merge(paths: list[str], environ: Any = None) -> tuple[dict[str, dict[str, Any]], str | None, dict[tuple[str, str], str]]:
    """kubectl's merge of the kubeconfig files in PATHS: a missing file is skipped; for each section the
    first file naming an entry wins, and so does the first current-context; relative paths in an entry
    are relative to the file it came from (the returned bases)."""
    import gridshim.usercache as yamlcache  # noqa: PLC0415

    shown = os.pathsep.join(paths)
    merged: dict[str, dict[str, Any]] = {"clusters": {}, "users": {}, "contexts": {}}
    current: str | None = None
    bases: dict[tuple[str, str], str] = {}
    found = False
    for p in paths:
        try:
            data = yamlcache.load(p, lambda fd, st, p=p: _read_open_kubeconfig(p, fd, st), _parse_yaml,  # type: ignore[misc]
                                  os.environ if environ is None else environ, cacheable=_no_secrets,
                                  flags=os.O_NONBLOCK) or {}
        except FileNotFoundError:
            continue
        except OSError as e:
            raise ClusterConfigError(f"cannot read kubeconfig {p}: {e.strerror}",
                                     hint="check its permissions, or set KUBECONFIG") from None
        except UnicodeDecodeError:
            raise ClusterConfigError(f"kubeconfig {p} is not text (UTF-8)", hint="fix or regenerate it") from None
        except ClusterConfigError:
            raise
        except Exception as e:  # yaml.YAMLError, ValueError, RecursionError: PyYAML may not be imported
            if not _yaml_error(e):
                raise
            raise ClusterConfigError(f"kubeconfig {p} is not valid YAML",
                                     hint="fix or regenerate it") from None
        found = True
        if not isinstance(data, dict):
            raise ClusterConfigError(f"kubeconfig {p} is not a kubeconfig (expected a mapping)",
                                     hint="fix or regenerate it")
        cur = data.get("current-context")
        if cur is not None and not isinstance(cur, str):
            raise ClusterConfigError(f"kubeconfig {p}: current-context is not a name", hint="fix or regenerate it")
        current = current or cur
        for section in ("clusters", "users", "contexts"):
            entries = data.get(section) or []
            if not isinstance(entries, list):
                raise ClusterConfigError(f"kubeconfig {p}: {section} is not a list", hint="fix or regenerate it")
            for entry in entries:
                if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                    raise ClusterConfigError(f"kubeconfig {p}: an entry in {section} has no name",
                                             hint="fix or regenerate it")
                body = entry.get(section[:-1]) or {}
                if not isinstance(body, dict):
                    raise ClusterConfigError(f"kubeconfig {p}: {section[:-1]} {entry['name']!r} is not a mapping",
                                             hint="fix or regenerate it")
                if entry["name"] not in merged[section]:
                    merged[section][entry["name"]] = body
                    bases[(section, entry["name"])] = os.path.dirname(os.path.abspath(p))
    if not found:
        raise NoKubeconfig(f"no kubeconfig found (tried {shown})",
                           hint="run 'become <tool>' first, or set KUBECONFIG to your tool's kubeconfig")
    if current is None and not any(merged.values()):
        # kubectl's "empty config": files that hold nothing are as good as none (in-cluster is tried)
        raise NoKubeconfig(f"kubeconfig {shown} is empty", hint="regenerate it, or set KUBECONFIG to your "
                                                                "tool's kubeconfig")
    return merged, current, bases


def load_credentials(paths: list[str], context: str | None = None, *, environ: Any = None,
                     sa_dir: str = SERVICE_ACCOUNT_DIR) -> Credentials:
    """Merge the kubeconfig files (first wins, as kubectl does) and resolve one context; when there is no
    kubeconfig at all and no context was asked for, the pod's in-cluster credentials (kubectl's order).

    Anything malformed is a ClusterConfigError naming the file and the entry, never a crash."""
    shown = os.pathsep.join(paths)
    try:
        merged, current, bases = merge(paths, environ)
    except NoKubeconfig as e:
        if context:  # kubectl --context without a kubeconfig: that context is not found, in-cluster or not
            raise
        return in_cluster_credentials(os.environ if environ is None else environ, sa_dir=sa_dir, instead_of=e)
    name = context or current
    if not name or name not in merged["contexts"]:
        raise ClusterConfigError(f"kubeconfig {shown} has no context {name!r}" if name else
                                 f"kubeconfig {shown} sets no current-context",
                                 hint="run 'kubectl config use-context NAME'")
    ctx = merged["contexts"][name]

    def bad(what: str, key: str, is_not: str) -> ClusterConfigError:
        return ClusterConfigError(f"kubeconfig {shown}: {what} {key} is not {is_not}", hint="fix or regenerate it")

    def text_of(where: dict[str, Any], key: str, what: str) -> str | None:
        value = where.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise bad(what, key, "a string")
        return value

    cluster_name = text_of(ctx, "cluster", f"context {name!r}") or ""
    user_name = text_of(ctx, "user", f"context {name!r}") or ""
    namespace = text_of(ctx, "namespace", f"context {name!r}")
    cluster = merged["clusters"].get(cluster_name)
    user = merged["users"].get(user_name, {})
    if cluster is None or not text_of(cluster, "server", f"cluster {cluster_name!r}"):
        raise ClusterConfigError(f"kubeconfig {shown}: context {name!r} names no cluster with a server",
                                 hint="fix or regenerate it")
    cw, uw = f"cluster {cluster_name!r}", f"user {user_name!r}"
    provider = user.get("auth-provider")
    if provider:
        pname = str(provider.get("name") or "") if isinstance(provider, dict) else ""
        fix = AUTH_PROVIDER_FIX.get(pname, "the exec credential plugin your cluster's provider documents")
        raise ClusterConfigError(f"kubeconfig {shown}: {uw} uses the auth-provider {pname or '?'!r}, which kubectl "
                                 "and gridshim no longer run", hint=f"use {fix} instead")

    def rel(section: str, key: str, value: str | None) -> str | None:
        if not value:
            return None
        value = os.path.expanduser(value)
        return value if os.path.isabs(value) else os.path.join(bases[(section, key)], value)

    def b64(where: dict[str, Any], key: str, what: str) -> bytes | None:
        value = text_of(where, key, what)
        if not value:
            return None
        try:
            return base64.b64decode(value, validate=False)
        except ValueError:
            raise bad(what, key, "base64") from None

    token = text_of(user, "token", uw)
    token_file = rel("users", user_name, text_of(user, "tokenFile", uw))
    if not token and token_file:
        token = read_token(token_file, f"kubeconfig {shown}: cannot read tokenFile", hint="check the user's tokenFile entry")
    try:
        ca_data = (b64(cluster, "certificate-authority-data", cw) or b"").decode() or None
    except UnicodeDecodeError:
        raise ClusterConfigError(f"kubeconfig {shown}: {cw} certificate-authority-data is not a PEM certificate",
                                 hint="fix or regenerate it") from None
    ca_file = rel("clusters", cluster_name, text_of(cluster, "certificate-authority", cw))
    server = str(cluster["server"]).rstrip("/")
    tls_server_name = text_of(cluster, "tls-server-name", cw)
    proxy_url = text_of(cluster, "proxy-url", cw)
    insecure = bool(cluster.get("insecure-skip-tls-verify"))

    exec_spec = user.get("exec") or None
    exec_cluster = None
    if exec_spec is not None:
        exec_spec = _exec_spec(exec_spec, shown, uw, bases[("users", user_name)])
        if exec_spec.get("provideClusterInfo"):
            exec_cluster = {"server": server, "tls-server-name": tls_server_name, "insecure-skip-tls-verify": insecure,
                            "proxy-url": proxy_url, "ca_file": ca_file, "ca_data": ca_data,
                            "config": _exec_extension(cluster)}

    return Credentials(
        path=shown, context=name, server=server, namespace=namespace, ca_file=ca_file, ca_data=ca_data,
        insecure=insecure,
        cert_file=rel("users", user_name, text_of(user, "client-certificate", uw)),
        key_file=rel("users", user_name, text_of(user, "client-key", uw)),
        cert_data=b64(user, "client-certificate-data", uw), key_data=b64(user, "client-key-data", uw),
        token=token, token_file=token_file, tls_server_name=tls_server_name, proxy_url=proxy_url,
        user=user_name, exec_spec=exec_spec, exec_cluster=exec_cluster,
        impersonate=_impersonation(user, shown, uw),
    )


def _exec_extension(cluster: dict[str, Any]) -> Any:
    """The cluster's extension named client.authentication.k8s.io/exec: what provideClusterInfo passes as config."""
    for ext in cluster.get("extensions") or []:
        if isinstance(ext, dict) and ext.get("name") == "client.authentication.k8s.io/exec":
            return ext.get("extension")
    return None


def _exec_spec(spec: Any, shown: str, uw: str, base: str) -> dict[str, Any]:
    """The exec block checked as client-go checks it; a command with a slash is relative to its kubeconfig."""
    def refuse(why: str, hint: str = "fix the user's exec entry") -> ClusterConfigError:
        return ClusterConfigError(f"kubeconfig {shown}: {uw} exec plugin: {why}", hint=hint)

    if not isinstance(spec, dict):
        raise refuse("exec is not a mapping")
    command = spec.get("command")
    if not isinstance(command, str) or not command:
        raise refuse("no command")
    version = spec.get("apiVersion")
    if version not in EXEC_VERSIONS:
        raise refuse(f"apiVersion {version!r} is not one of {', '.join(EXEC_VERSIONS)}",
                     hint="update the plugin's entry (v1alpha1 was removed in Kubernetes 1.24)")
    mode = spec.get("interactiveMode")
    if mode in (None, "") and version.endswith("/v1beta1"):
        mode = "IfAvailable"  # client-go's default for v1beta1; v1 must say
    if mode not in ("Never", "IfAvailable", "Always"):
        raise refuse(f"interactiveMode {mode!r} is not Never, IfAvailable or Always" if mode else
                     "interactiveMode must be specified for client.authentication.k8s.io/v1")
    args = spec.get("args") or []
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise refuse("args is not a list of strings")
    env = spec.get("env") or []
    if not isinstance(env, list) or not all(isinstance(e, dict) and isinstance(e.get("name"), str)
                                            and isinstance(e.get("value", ""), str) for e in env):
        raise refuse("env is not a list of name/value pairs")
    if os.sep in command and not os.path.isabs(command):
        command = os.path.normpath(os.path.join(base, command))  # Go's filepath.Join cleans the path
    return {"command": command, "args": list(args), "env": [(e["name"], e.get("value", "")) for e in env],
            "apiVersion": version, "interactiveMode": mode, "provideClusterInfo": bool(spec.get("provideClusterInfo")),
            "installHint": str(spec.get("installHint") or "")}


def _impersonation(user: dict[str, Any], shown: str, uw: str) -> tuple[tuple[str, str], ...]:
    """The Impersonate-* headers kubectl sends for the user entry's as, as-uid, as-groups and as-user-extra."""
    def bad(key: str, is_not: str) -> ClusterConfigError:
        return ClusterConfigError(f"kubeconfig {shown}: {uw} {key} is not {is_not}", hint="fix or regenerate it")

    who, uid = user.get("as"), user.get("as-uid")
    groups, extra = user.get("as-groups") or [], user.get("as-user-extra") or {}
    if not (who or uid or groups or extra):
        return ()
    if who is not None and not isinstance(who, str):
        raise bad("as", "a string")
    if uid is not None and not isinstance(uid, str):
        raise bad("as-uid", "a string")
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise bad("as-groups", "a list of strings")
    if not isinstance(extra, dict) or not all(isinstance(v, list) and all(isinstance(x, str) for x in v)
                                              for v in extra.values()):
        raise bad("as-user-extra", "a mapping of lists of strings")
    if not who and (groups or extra or uid):
        raise ClusterConfigError(f"kubeconfig {shown}: {uw} sets as-groups, as-uid or as-user-extra without as",
                                 hint="impersonating groups or extras requires a user: add as: NAME")
    out = [("Impersonate-User", who)] if who else []
    out += [("Impersonate-Uid", uid)] if uid else []
    out += [("Impersonate-Group", g) for g in groups]
    out += [(f"Impersonate-Extra-{_header_key(str(k))}", v) for k, vs in extra.items() for v in vs]
    return tuple(out)


def read_token(path: str, cannot_read: str, *, hint: str) -> str:
    """The token in file PATH, stripped (as Path.read_text().strip()); a file that cannot be read or is not
    text is one line: CANNOT_READ, the path, the reason."""
    try:
        with open(path) as f:
            return f.read().strip()
    except (OSError, UnicodeDecodeError) as e:
        raise ClusterConfigError(f"{cannot_read} {path}: {getattr(e, 'strerror', None) or 'not text'}",
                                 hint=hint) from None


def in_cluster_credentials(environ: Any, *, sa_dir: str = SERVICE_ACCOUNT_DIR,
                           instead_of: ClusterConfigError | None = None) -> Credentials:
    """The pod's ServiceAccount as client-go's InClusterConfig reads it: https://KUBERNETES_SERVICE_HOST:
    KUBERNETES_SERVICE_PORT, the token file (re-read as the kubelet rotates it: auth.Auth), ca.crt (absent:
    the system's trust store, as client-go), and kubectl's namespace: $POD_NAMESPACE, else the namespace
    file, else "default". Used when kubectl would (`clientcmd`'s inClusterClientConfig.Possible: both
    variables set and the token a file); when only part of it is there, one line says which part is missing.
    INSTEAD_OF is the no-kubeconfig error, raised as it is when nothing in-cluster is there at all."""
    host = str(environ.get("KUBERNETES_SERVICE_HOST") or "")
    port = str(environ.get("KUBERNETES_SERVICE_PORT") or "")
    token_path = os.path.join(sa_dir, "token")
    import stat  # noqa: PLC0415

    try:
        token_kind = "dir" if stat.S_ISDIR(os.stat(token_path).st_mode) else "file"
    except OSError:
        token_kind = ""
    base = instead_of or NoKubeconfig("no kubeconfig found", hint="set KUBECONFIG to your tool's kubeconfig")
    if not host and not port and token_kind != "file":
        raise base
    missing = [n for n, v in (("KUBERNETES_SERVICE_HOST", host), ("KUBERNETES_SERVICE_PORT", port)) if not v]
    if missing or token_kind != "file":
        why = (f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set" if missing else
               f"{token_path} {'is a directory' if token_kind == 'dir' else 'does not exist'}")
        raise ClusterConfigError(f"{base.message}, and in-cluster credentials are incomplete: {why}",
                                 hint="in a job, the site config's in_jobs setting gives the pod its "
                                      "ServiceAccount token; or set KUBECONFIG to the tool's kubeconfig")
    import re  # noqa: PLC0415

    if not re.fullmatch(_HOST, host):
        raise ClusterConfigError(f"in-cluster credentials: KUBERNETES_SERVICE_HOST={host!r} is not a host name "
                                 "or address", hint="it is set by the kubelet; check the pod's env")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ClusterConfigError(f"in-cluster credentials: KUBERNETES_SERVICE_PORT={port!r} is not a port",
                                 hint="it is set by the kubelet; check the pod's env")
    token = read_token(token_path, "in-cluster credentials: cannot read", hint="the token must be readable by the pod's user")
    if not token:
        raise ClusterConfigError(f"in-cluster credentials: {token_path} is empty",
                                 hint="the kubelet writes the ServiceAccount token there; check the pod's volumes")
    ca = os.path.join(sa_dir, "ca.crt")
    namespace = str(environ.get("POD_NAMESPACE") or "")
    if not namespace:
        try:
            with open(os.path.join(sa_dir, "namespace")) as f:
                namespace = f.read().strip()
        except (OSError, UnicodeDecodeError):
            namespace = ""
    if namespace and (len(namespace) > 63 or not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", namespace)):
        where = "POD_NAMESPACE" if environ.get("POD_NAMESPACE") else os.path.join(sa_dir, "namespace")
        raise ClusterConfigError(f"in-cluster credentials: the namespace {namespace!r} ({where}) is not a "
                                 "namespace name", hint="check the pod's env and volumes")
    server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    return Credentials(path=f"{sa_dir} (in-cluster)", context=IN_CLUSTER, server=server,
                       namespace=namespace or "default", ca_file=ca if os.path.isfile(ca) else None,
                       token=token, token_file=token_path, user="serviceaccount", in_cluster=True)


# What Go's URL parser takes as a host: a name, an IPv4 address, or an IPv6 address (bracketed when joined).
_HOST = r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.%A-Za-z]*"
