"""Site configuration (/etc/gridshim/config.yaml, or $GRIDSHIM_CONFIG): images, volumes, homes, limits.

Layer: read by cli/ and passed down as a frozen `Settings`; imports only errors. Every key is
documented in docs/site-config.md.
"""

from __future__ import annotations

import os
import re

from gridshim import quantity
from gridshim.errors import GridshimError
from gridshim.record import field, record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up, docs/performance.md)
if TYPE_CHECKING:
    from typing import Any

DEFAULT_PATH = "/etc/gridshim/config.yaml"
MiB = 1024 * 1024


class ConfigError(GridshimError):
    """The site config is unreadable or holds a bad value."""


@record(frozen=True, kw_only=True)
class Volume:
    name: str
    mount: str
    host_path: str | None = None
    nfs_server: str | None = None
    nfs_path: str | None = None
    claim: str | None = None
    read_only: bool = False


@record(frozen=True, kw_only=True)
class Settings:
    """Everything site-specific; defaults are Toolforge's where it had one."""

    images: dict[str, str] = field(default_factory=lambda: {"default": "docker-registry.tools.wmflabs.org/toolforge-bookworm-sssd:latest"})
    volumes: tuple[Volume, ...] = ()
    home: str = "/data/project/{tool}"
    # whose uid the pods run as: "self" (the submitting user), "namespace" (the tool namespace's
    # gridshim.io/uid annotation, which the cluster enforces), "home-owner", "passwd:tools.{tool}", a number
    uid: str = "self"
    default_mem: int = 512 * MiB  # jsub's 524288k
    max_mem: int | None = None  # None: only the namespace LimitRange decides
    memory_request: str = "toolforge"  # "toolforge": request = limit up to 512Mi, else limit/2; "limit": = limit
    cpu_request: str = "100m"
    cpu_limit: str | None = "500m"
    ttl_seconds: int = 120  # how long finished Jobs stay visible before the TTL controller removes them
    grace_seconds: int = 20  # qdel: SIGTERM, then SIGKILL after this (the grid's jobkill took ~20 s)
    spread_macros: bool = False  # @daily etc. spread per tool and job (Toolforge) instead of cron's times
    mail_domain: str = "toolforge.org"
    # job mail (-m b|e|a, -M): a sendmail-compatible command line that the job's wrapper runs with an RFC 822
    # message on stdin (SGE's `mailer`), and the From address ({tool} = the tool's name). None: no mail.
    mail_command: str | None = None
    mail_from: str | None = None  # None: the tool's own address, USER_PREFIX+TOOL@MAIL_DOMAIN
    # the path of `gridshim` inside job images: a finished job runs `release_command release --job N` to
    # release the jobs that wait for it (-hold_jid). None: only the `gridshim release --sweep` backstop does.
    release_command: str | None = None
    user_prefix: str = "tools."  # qstat's user column: tools.NAME
    # qsub: parallel environments (name → most slots on one node, None = no cap of the site's own),
    # extra -l names the site accepts without meaning (Toolforge's release, user_slot …), and the
    # site default request file (SGE's $SGE_ROOT/$SGE_CELL/common/sge_request).
    parallel_environments: dict[str, int | None] = field(default_factory=lambda: {
        "smp": None, "shm": None, "threads": None, "make": None, "mpi": None})
    qsub_resources: tuple[str, ...] = ("user_slot", "sql", "tmpfs", "release")
    sge_request: str | None = "/etc/gridshim/sge_request"
    # where each job's accounting record is appended (qacct reads it); {home} is the tool's home, which
    # the pods mount at the same path. None: no records.
    accounting_file: str | None = "{home}/.gridshim/accounting"
    # gridshim inside jobs (`in_jobs`): the identity a job's own jsub/qstat/qdel use — "service-account"
    # (the pods run as ServiceAccount in_jobs_service_account of the tool's namespace, its token mounted),
    # "kubeconfig" (the tool's kubeconfig in its home, as on Toolforge) — or None (off: no token in pods);
    # the jobs' PATH and GRIDSHIM_CONFIG (None: the image's own).
    in_jobs: str | None = None
    in_jobs_service_account: str = "gridshim"
    in_jobs_path: str | None = None
    in_jobs_config: str | None = None
    path: str | None = None  # where this config was read from

    def image_for(self, release: str | None) -> str:
        if release and release in self.images:
            return self.images[release]
        return self.images.get("default") or next(iter(self.images.values()))

    def home_for(self, tool: str) -> str:
        return self.home.replace("{tool}", tool)

    def accounting_path(self, home: str) -> str | None:
        """The accounting file of the tool whose home is HOME (None: accounting is off)."""
        return self.accounting_file.replace("{home}", home.rstrip("/")) if self.accounting_file else None


def parse_size(value: Any, *, key: str, path: str) -> int:
    """'512M', '2G', '1536Mi', 1048576 → bytes (binary units, like jsub's -mem: quantity.SITE)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value <= 0:
            raise ConfigError(f"{path}: {key}: expected a positive size, got {value}")
        return value
    try:
        return quantity.parse_memory(str(value), quantity.SITE)
    except quantity.QuantityError:
        raise ConfigError(f"{path}: {key}: expected a size like 512M or 2G, got {value!r}") from None


class _YAMLError(Exception):
    def __init__(self, cause: Exception) -> None:
        self.cause = cause


def _read_open(fd: int, _st: os.stat_result) -> str:
    with open(fd, closefd=False) as f:  # as Path.read_text(): the locale's encoding
        return f.read()


def _parse_yaml(text: str) -> Any:
    import yaml  # noqa: PLC0415  (only when the parsed-file cache does not hold the config)

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise _YAMLError(e) from None


def load(environ: dict[str, str] | None = None) -> Settings:
    """Read the site config named by $GRIDSHIM_CONFIG, else /etc/gridshim/config.yaml; defaults if absent."""
    env = os.environ if environ is None else environ
    explicit = env.get("GRIDSHIM_CONFIG")
    path = explicit or DEFAULT_PATH
    import gridshim.usercache as yamlcache  # noqa: PLC0415

    try:
        data = yamlcache.load(path, _read_open, _parse_yaml, env) or {}
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"site config {path} (from GRIDSHIM_CONFIG) does not exist") from None
        return Settings()
    except OSError as e:
        raise ConfigError(f"cannot read site config {path}: {e.strerror}") from None
    except _YAMLError as e:
        raise ConfigError(f"site config {path} is not valid YAML: {e.cause}".splitlines()[0]) from None
    if not isinstance(data, dict):
        raise ConfigError(f"site config {path}: expected a mapping at the top level")
    return from_dict(data, path=path)


def _mapping(data: dict[str, Any], key: str, keys: set[str], path: str) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"site config {path}: {key}: expected a mapping with {', '.join(sorted(keys))}")
    unknown = sorted(set(value) - keys)
    if unknown:
        raise ConfigError(f"site config {path}: {key}: unknown key(s) {', '.join(unknown)}; "
                          f"valid: {', '.join(sorted(keys))}")
    return value


def _bool(value: Any, key: str, path: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"site config {path}: {key}: expected true or false, got {value!r}")
    return value


def _text(value: Any, key: str, path: str) -> str:
    if not isinstance(value, (str, int)) or isinstance(value, bool) or str(value) == "":
        raise ConfigError(f"site config {path}: {key}: expected a non-empty string, got {value!r}")
    return str(value)


UID_POLICIES = ("namespace", "self", "home-owner", "passwd:PATTERN", "a number")
# The annotation on a tool's Namespace that names the uid its pods must run as. The admins set it when
# they create the tool; the cluster's admission policy enforces it (docs/site-config.md, "uid").
UID_ANNOTATION = "gridshim.io/uid"


def check_uid_policy(policy: str, path: str) -> str:
    if policy in ("namespace", "self", "home-owner") or policy.isdigit() or \
            (policy.startswith("passwd:") and len(policy) > 7):
        return policy
    raise ConfigError(f"site config {path}: uid: unknown policy {policy!r}; use {', '.join(UID_POLICIES)}")


def namespace_uid(namespace: dict[str, Any]) -> int:
    """The uid a tool Namespace's UID_ANNOTATION names (what `uid: namespace` runs the pods as)."""
    meta = namespace.get("metadata") or {}
    name = meta.get("name") or "?"
    value = (meta.get("annotations") or {}).get(UID_ANNOTATION)
    if value is None:
        raise GridshimError(f"namespace {name} has no {UID_ANNOTATION} annotation, so the tool's uid is unknown",
                            hint="ask your site's admins to set it (docs/site-config.md), or use another 'uid' "
                                 "policy in the site config")
    if not re.fullmatch(r"[1-9][0-9]{0,9}", str(value)) or int(value) > 2**31 - 1:
        raise GridshimError(f"namespace {name}: annotation {UID_ANNOTATION}={value!r} is not a uid above 0",
                            hint="ask your site's admins to fix it (docs/site-config.md)")
    return int(value)


def from_dict(data: dict[str, Any], *, path: str = "<config>") -> Settings:
    known = {"images", "volumes", "home", "uid", "memory", "cpu", "ttl_seconds", "grace_seconds",
             "spread_macros", "mail_domain", "user_prefix", "qsub", "accounting_file", "mail", "release_command",
             "in_jobs"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"site config {path}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
    kw: dict[str, Any] = {"path": path}
    if "images" in data:
        images = data["images"]
        if not isinstance(images, dict) or not images:
            raise ConfigError(f"site config {path}: images: expected a mapping of release → image")
        kw["images"] = {str(k): _text(v, f"images.{k}", path) for k, v in images.items()}
    if "volumes" in data:
        vols = data["volumes"] or []
        if not isinstance(vols, list):
            raise ConfigError(f"site config {path}: volumes: expected a list")
        kw["volumes"] = tuple(_volume(v, i, path) for i, v in enumerate(vols))
        names = [v.name for v in kw["volumes"]]
        if len(set(names)) != len(names):
            raise ConfigError(f"site config {path}: volumes: names must be unique")
    for key in ("home", "mail_domain", "user_prefix"):
        if key in data:
            kw[key] = _text(data[key], key, path)
    if "uid" in data:
        kw["uid"] = check_uid_policy(_text(data["uid"], "uid", path), path)
    mem = _mapping(data, "memory", {"default", "max", "request"}, path)
    if "default" in mem:
        kw["default_mem"] = parse_size(mem["default"], key="memory.default", path=path)
    if "max" in mem:
        kw["max_mem"] = parse_size(mem["max"], key="memory.max", path=path)
    default_mem = kw.get("default_mem", Settings.default_mem)
    if kw.get("max_mem") is not None and default_mem > kw["max_mem"]:
        raise ConfigError(f"site config {path}: memory.default ({default_mem // MiB}M) is larger than "
                          f"memory.max ({kw['max_mem'] // MiB}M)")
    if "request" in mem:
        if mem["request"] not in ("toolforge", "limit"):
            raise ConfigError(f"site config {path}: memory.request: expected 'toolforge' or 'limit'")
        kw["memory_request"] = mem["request"]
    cpu = _mapping(data, "cpu", {"request", "limit"}, path)
    if "request" in cpu:
        kw["cpu_request"] = _text(cpu["request"], "cpu.request", path)
    if "limit" in cpu:
        kw["cpu_limit"] = None if cpu["limit"] is None else _text(cpu["limit"], "cpu.limit", path)
    for key in ("ttl_seconds", "grace_seconds"):
        if key in data:
            value = data[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"site config {path}: {key}: expected a whole number of seconds")
            kw[key] = value
    if "spread_macros" in data:
        kw["spread_macros"] = _bool(data["spread_macros"], "spread_macros", path)
    kw.update(_qsub(data, path))
    if "accounting_file" in data:
        value = data["accounting_file"]
        kw["accounting_file"] = None if value is None else _text(value, "accounting_file", path)
        if value is not None and not str(value).startswith(("/", "{home}")):
            raise ConfigError(f"site config {path}: accounting_file: expected an absolute path or one starting "
                              f"with {{home}}, got {value!r}")
    kw.update(_mail(data, path))
    if "release_command" in data:
        value = data["release_command"]
        kw["release_command"] = None if value is None else _text(value, "release_command", path)
        if value is not None and (not str(value).startswith("/") or any(c in str(value) for c in "\n\r")):
            raise ConfigError(f"site config {path}: release_command: expected the absolute path of gridshim "
                              f"inside job images, got {value!r}")
    kw.update(_in_jobs(data, path))
    return Settings(**kw)


IN_JOBS_IDENTITIES = ("service-account", "kubeconfig")


def _in_jobs(data: dict[str, Any], path: str) -> dict[str, Any]:
    """`in_jobs: {identity: service-account | kubeconfig, service_account: NAME, path: PATH, config: FILE}`:
    what gridshim run inside a job (a master job's jsub, qstat, qdel) needs; absent or null: off."""
    m = _mapping(data, "in_jobs", {"identity", "service_account", "path", "config"}, path)
    if not m:
        return {}
    identity = m.get("identity")
    if identity not in IN_JOBS_IDENTITIES:
        raise ConfigError(f"site config {path}: in_jobs.identity: expected {' or '.join(IN_JOBS_IDENTITIES)}, "
                          f"got {identity!r}")
    kw: dict[str, Any] = {"in_jobs": identity}
    if "service_account" in m:
        name = _text(m["service_account"], "in_jobs.service_account", path)
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name) or len(name) > 253:
            raise ConfigError(f"site config {path}: in_jobs.service_account: {name!r} is not a ServiceAccount name")
        kw["in_jobs_service_account"] = name
    if m.get("path") is not None:
        value = _text(m["path"], "in_jobs.path", path)
        if any(c in value for c in "\n\r") or not all(p.startswith("/") for p in value.split(":")):
            raise ConfigError(f"site config {path}: in_jobs.path: expected the jobs' PATH, absolute directories "
                              f"separated by ':', got {value!r}")
        kw["in_jobs_path"] = value
    if m.get("config") is not None:
        value = _text(m["config"], "in_jobs.config", path)
        if not value.startswith("/") or any(c in value for c in "\n\r"):
            raise ConfigError(f"site config {path}: in_jobs.config: expected the absolute path of the site config "
                              f"inside job images, got {value!r}")
        kw["in_jobs_config"] = value
    return kw


def _qsub(data: dict[str, Any], path: str) -> dict[str, Any]:
    q = _mapping(data, "qsub", {"parallel_environments", "resources", "request_file"}, path)
    kw: dict[str, Any] = {}
    if "parallel_environments" in q:
        pes = q["parallel_environments"]
        if not isinstance(pes, dict) or not pes:
            raise ConfigError(f"site config {path}: qsub.parallel_environments: expected a mapping of "
                              "PE name → most slots (or null)")
        for name, cap in pes.items():
            if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or cap < 1):
                raise ConfigError(f"site config {path}: qsub.parallel_environments.{name}: expected a "
                                  f"positive number of slots or null, got {cap!r}")
        kw["parallel_environments"] = {str(k): v for k, v in pes.items()}
    if "resources" in q:
        res = q["resources"]
        if not isinstance(res, list) or not all(isinstance(r, str) and r for r in res):
            raise ConfigError(f"site config {path}: qsub.resources: expected a list of resource names")
        kw["qsub_resources"] = tuple(res)
    if "request_file" in q:
        kw["sge_request"] = None if q["request_file"] is None else _text(q["request_file"], "qsub.request_file", path)
    return kw


def _mail(data: dict[str, Any], path: str) -> dict[str, Any]:
    """`mail: {command: "/usr/sbin/sendmail -t -i", from: ADDRESS}`; absent or null: jobs send no mail."""
    m = _mapping(data, "mail", {"command", "from"}, path)
    if not m:
        return {}
    if "command" not in m:
        raise ConfigError(f"site config {path}: mail: 'command' is required (e.g. \"/usr/sbin/sendmail -t -i\"); "
                          "leave 'mail' out for no mail")
    kw: dict[str, Any] = {}
    for key, attr in (("command", "mail_command"), ("from", "mail_from")):
        if key in m:
            value = _text(m[key], f"mail.{key}", path)
            if "\n" in value or "\r" in value:
                raise ConfigError(f"site config {path}: mail.{key}: expected one line, got {value!r}")
            kw[attr] = value
    return kw


def _volume(v: Any, i: int, path: str) -> Volume:
    if not isinstance(v, dict) or "mount" not in v:
        raise ConfigError(f"site config {path}: volumes[{i}]: expected a mapping with 'mount'")
    kinds = [k for k in ("hostPath", "nfs", "claim") if k in v]
    if len(kinds) != 1:
        raise ConfigError(f"site config {path}: volumes[{i}]: give exactly one of hostPath, nfs, claim")
    name = str(v.get("name") or f"vol-{i}")
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name) or len(name) > 63:
        raise ConfigError(f"site config {path}: volumes[{i}].name: {name!r} is not a valid volume name")
    mount = str(v["mount"])
    if not mount.startswith("/"):
        raise ConfigError(f"site config {path}: volumes[{i}].mount: expected an absolute path, got {mount!r}")
    read_only = _bool(v.get("readOnly", False), f"volumes[{i}].readOnly", path)
    if "hostPath" in v:
        return Volume(name=name, mount=mount, host_path=str(v["hostPath"]), read_only=read_only)
    if "claim" in v:
        return Volume(name=name, mount=mount, claim=str(v["claim"]), read_only=read_only)
    nfs = v["nfs"]
    if not isinstance(nfs, dict) or "server" not in nfs or "path" not in nfs:
        raise ConfigError(f"site config {path}: volumes[{i}].nfs: expected server and path")
    return Volume(name=name, mount=mount, nfs_server=str(nfs["server"]), nfs_path=str(nfs["path"]), read_only=read_only)
