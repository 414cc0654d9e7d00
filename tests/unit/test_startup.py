"""Start-up (issue 17): what jsub/qsub import, the parsed-file cache, and the cached Namespace uid.

The uid cache can never run a pod as another uid: the cluster (here a fake with the sandbox policy's
rule) refuses every uid but the Namespace's, and a stale cached value is re-read and retried once."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest

from gridshim import config, usercache
from gridshim.cli._common import Env, cached_namespace_uid, remember_namespace_uid
from gridshim.errors import ClusterError
from kit import FakeApi

SRC = Path(__file__).resolve().parents[2] / "src"

# Measured with -X importtime (docs/performance.md): none of these is needed by `jsub --version` or a
# plain submission once the site config and kubeconfig are in the parsed-file cache. (`datetime` is
# not listed yet: gridshim.status imports it at the top, and ops imports status. http.client is replaced
# by gridshim.kube.http11: it imports the email package; dataclasses (and inspect) by gridshim.record,
# typing by the TYPE_CHECKING constant, hashlib by gridshim.digest, urllib.parse by kube.transport's
# split_server and quote.)
HEAVY = ("yaml", "_yaml", "http.client", "email", "email.parser", "email.utils", "tempfile", "subprocess", "threading",
         "rich", "secrets", "traceback", "textwrap", "shutil", "pathlib", "kubernetes", "click", "dataclasses",
         "inspect", "typing", "hashlib", "_hashlib", "urllib.parse", "ipaddress")


def _imported(tmp_path: Path, code: str, environ: dict[str, str]) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print(' '.join(sorted(sys.modules)))"],
                         env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(SRC), **environ},
                         capture_output=True, text=True, check=True, cwd=tmp_path)
    return set(out.stdout.split())


def _world(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    (home / ".kube" / "config").write_text(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n"
        "users:\n- name: u\n  user:\n    client-certificate: /nonexistent.crt\n    client-key: /nonexistent.key\n"
        "contexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n    namespace: tool-x\ncurrent-context: x\n")
    site = tmp_path / "site.yaml"
    site.write_text("uid: namespace\nimages:\n  default: img:1\nmemory:\n  default: 512M\n")
    return {"HOME": str(home), "GRIDSHIM_CONFIG": str(site), "KUBECONFIG": str(home / ".kube" / "config")}


def test_jsub_version_imports_nothing_heavy(tmp_path: Path) -> None:
    environ = _world(tmp_path)
    code = "import sys; sys.argv = ['jsub', '--version']\nfrom gridshim.cli.jsub import jsub_main\n" \
           "try:\n    jsub_main()\nexcept SystemExit:\n    pass"
    assert "yaml" in _imported(tmp_path, code, environ)  # the site config, parsed once
    mods = _imported(tmp_path, code, environ)
    assert not [m for m in HEAVY if m in mods], sorted(m for m in HEAVY if m in mods)


def test_a_plain_submissions_import_set_has_nothing_heavy_once_cached(tmp_path: Path) -> None:
    """Everything a plain `jsub -N x /bin/true` imports up to the POST: the site config and kubeconfig
    read (the second process takes them from the cache), plan, render, the client and ops."""
    environ = _world(tmp_path)
    code = ("import os\nfrom gridshim import config, submit, ops, render\nfrom gridshim.cli import jsub\n"
            "from gridshim.cli._common import load_cluster, Env\n"
            "s = config.load(os.environ)\nc = load_cluster(Env())\nassert c.namespace == 'tool-x'\n")
    first = _imported(tmp_path, code, environ)
    assert "yaml" in first  # nothing cached yet: PyYAML reads both files
    mods = _imported(tmp_path, code, environ)
    assert not [m for m in HEAVY if m in mods], sorted(m for m in HEAVY if m in mods)


def test_qsubs_and_qstats_import_sets_have_nothing_heavy_once_cached(tmp_path: Path) -> None:
    """qsub's plain submission (it always passes through depends, for -h and -hold_jid) and qstat on a
    namespace: what they import beyond jsub's modules."""
    environ = _world(tmp_path)
    code = ("import os\nfrom gridshim import config, submit, ops, render, depends, control, status\n"
            "from gridshim.cli import qsub, qstat\nfrom gridshim.output import plain, xml\n"
            "from gridshim.cli._common import load_cluster, Env\n"
            "s = config.load(os.environ)\nc = load_cluster(Env())\n")
    _imported(tmp_path, code, environ)
    mods = _imported(tmp_path, code, environ)
    assert not [m for m in HEAVY + ("fnmatch",) if m in mods], sorted(m for m in HEAVY + ("fnmatch",) if m in mods)


# -- the parsed-file cache ----------------------------------------------------------------------------

def _read(fd: int, _st: os.stat_result) -> str:
    with open(fd, closefd=False) as f:
        return f.read()


def test_the_cache_gives_what_pyyaml_gave_and_follows_every_change(tmp_path: Path) -> None:
    import yaml

    env = {"HOME": str(tmp_path)}
    f = tmp_path / "c.yaml"
    f.write_text("a: 1\nb: [x, 2.5, null, true]\n")
    parses: list[str] = []

    def parse(text: str) -> Any:
        parses.append(text)
        return yaml.safe_load(text)

    assert usercache.load(str(f), _read, parse, env) == {"a": 1, "b": ["x", 2.5, None, True]}
    assert usercache.load(str(f), _read, parse, env) == {"a": 1, "b": ["x", 2.5, None, True]}
    assert len(parses) == 1
    f.write_text("a: 2\nb: [x, 2.5, null, true]\n")  # same size, new mtime
    assert usercache.load(str(f), _read, parse, env)["a"] == 2 and len(parses) == 2
    os.utime(f, ns=(0, 0))  # an old mtime is still a different key
    assert usercache.load(str(f), _read, parse, env)["a"] == 2 and len(parses) == 3
    f2 = tmp_path / "c2.yaml"
    f2.write_text("a: 3\nb: [x, 2.5, null, true]\n")
    os.utime(f2, ns=(0, 0))
    os.replace(f2, f)  # same path, size and mtime, another inode
    assert usercache.load(str(f), _read, parse, env)["a"] == 3 and len(parses) == 4
    # values JSON cannot hold as they are (dates, non-string keys) are never cached
    f.write_text("when: 2026-12-01\n1: x\n")
    usercache.load(str(f), _read, parse, env)
    usercache.load(str(f), _read, parse, env)
    assert len(parses) == 6


def test_the_cache_is_never_trusted_when_someone_else_could_have_written_it(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    f = tmp_path / "c.yaml"
    f.write_text("a: 1\n")
    n = [0]

    def parse(text: str) -> Any:
        n[0] += 1
        return {"a": 1}

    usercache.load(str(f), _read, parse, env)
    directory = Path(usercache.cache_dir(env) or "")
    entry = next(directory.iterdir())
    assert oct(entry.stat().st_mode & 0o777) == "0o600" and oct(directory.stat().st_mode & 0o777) == "0o700"
    # a forged entry another user could write: group/other-writable entry, or in a writable directory
    entry.write_text(entry.read_text().replace('"a":1', '"a":666'))
    os.chmod(entry, 0o666)
    assert usercache.load(str(f), _read, parse, env) == {"a": 1} and n[0] == 2
    entry.write_text(entry.read_text().replace('"a":1', '"a":666'))
    os.chmod(directory, 0o777)
    assert usercache.load(str(f), _read, parse, env) == {"a": 1} and n[0] == 3
    os.chmod(directory, 0o700)
    # GRIDSHIM_NO_CACHE turns it off
    assert usercache.load(str(f), _read, parse, {**env, "GRIDSHIM_NO_CACHE": "1"}) == {"a": 1} and n[0] == 4


def test_an_unreadable_file_is_the_same_error_with_the_cache(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "GRIDSHIM_CONFIG": str(tmp_path / "site.yaml")}
    (tmp_path / "site.yaml").write_text("uid: self\n")
    assert config.load(env).uid == "self"  # now cached
    # a file that can no longer be read (root reads any mode, so: a directory in its place, whose open fails)
    (tmp_path / "site.yaml").unlink()
    (tmp_path / "site.yaml").mkdir()
    with pytest.raises(config.ConfigError, match="cannot read site config"):
        config.load(env)


def test_site_config_errors_are_unchanged_by_the_cache(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "GRIDSHIM_CONFIG": str(tmp_path / "site.yaml")}
    (tmp_path / "site.yaml").write_text("uid: [\n")
    for _ in range(2):
        with pytest.raises(config.ConfigError, match="is not valid YAML"):
            config.load(env)
    (tmp_path / "site.yaml").write_text("bogus: 1\n")
    for _ in range(2):
        with pytest.raises(config.ConfigError, match="unknown key"):
            config.load(env)


def test_a_kubeconfig_with_secrets_is_never_copied_to_the_cache(tmp_path: Path) -> None:
    from gridshim.kube.config import load_credentials

    kc = tmp_path / "kc"
    kc.write_text("clusters:\n- name: c\n  cluster:\n    server: https://h:1\nusers:\n- name: u\n  user:\n"
                  "    token: s3cr3t\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n"
                  "current-context: x\n")
    env = {"HOME": str(tmp_path)}
    old = dict(os.environ)
    os.environ["HOME"] = str(tmp_path)
    os.environ.pop("XDG_CACHE_HOME", None)
    try:
        assert load_credentials([str(kc)]).server == "https://h:1"
    finally:
        os.environ.clear()
        os.environ.update(old)
    directory = usercache.cache_dir(env)
    assert not directory or not os.path.isdir(directory) or not any(
        "s3cr3t" in p.read_text() for p in Path(directory).iterdir())


# -- the cached Namespace uid ---------------------------------------------------------------------------

def PolicyCluster(uid: int) -> FakeApi:  # capitalised: it stands for the cluster of the tests below
    """The kit's tool-x, whose admission policy (the sandbox's gridshim-tool-uid) admits only the uid in the
    Namespace's annotation (tests change it to play the admins)."""
    api = FakeApi("tool-x", namespace_annotations={"gridshim.io/uid": str(uid)})

    def policy(manifest: dict[str, Any]) -> None:
        want = int(api.namespace_annotations["gridshim.io/uid"])
        asked = ((manifest["spec"]["template"]["spec"].get("securityContext")) or {}).get("runAsUser")
        if asked != want:
            raise ClusterError(f"refused by the cluster's admission policy gridshim-tool-uid: pods in namespace "
                               f"tool-x run only as its tool's uid {want}: this Job asks for runAsUser {asked}",
                               status=422)
    return api.admit(policy)


def requests(api: FakeApi) -> list[str]:
    """The requests jsub made, as the API server saw them."""
    return ["GET namespace" if c.kind == "Namespace" else "POST" for c in api.calls if c.verb in ("get", "create")]


def admitted_uids(api: FakeApi) -> list[int]:
    return [m["spec"]["template"]["spec"]["securityContext"]["runAsUser"] for m in api.created("Job")]


def _jsub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cluster: FakeApi, *argv: str) -> tuple[int, str]:
    import gridshim.cli.jsub as J

    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    site = tmp_path / "site.yaml"
    site.write_text("uid: namespace\nimages:\n  default: img:1\n")
    monkeypatch.setattr(J, "load_cluster", lambda env: cluster)
    env = Env(stdout=io.StringIO(), stderr=io.StringIO(), stdin=io.StringIO(""),
              environ={"HOME": str(home), "GRIDSHIM_CONFIG": str(site), "PATH": "/usr/bin:/bin"},
              cwd=str(home), clock=lambda: 1_800_000_000.0)
    rc = J.submit_main(env, ["-stderr", *argv], J.Preset.JSUB)
    return rc, env.stdout.getvalue() + env.stderr.getvalue()


def test_jsub_with_uid_namespace_makes_one_request_once_the_uid_is_cached(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = PolicyCluster(52001)
    assert _jsub(tmp_path, monkeypatch, cluster, "-N", "a", "/bin/true")[0] == 0
    assert requests(cluster) == ["GET namespace", "POST"]
    cluster.calls.clear()
    assert _jsub(tmp_path, monkeypatch, cluster, "-N", "b", "/bin/true")[0] == 0
    assert requests(cluster) == ["POST"]
    assert admitted_uids(cluster) == [52001, 52001]


def test_a_stale_cached_uid_is_refused_by_the_cluster_then_read_again_and_retried_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = PolicyCluster(52001)
    assert _jsub(tmp_path, monkeypatch, cluster, "-N", "a", "/bin/true")[0] == 0
    cluster.namespace_annotations["gridshim.io/uid"] = "52002"  # the admins changed it: the cache is stale
    cluster.calls.clear()
    rc, out = _jsub(tmp_path, monkeypatch, cluster, "-N", "b", "/bin/true")
    assert rc == 0, out
    assert requests(cluster) == ["POST", "GET namespace", "POST"]
    # no pod template with the stale uid was ever admitted; the one made runs as the namespace's uid
    assert admitted_uids(cluster) == [52001, 52002]
    environ = {"HOME": str(tmp_path / "home")}
    assert cached_namespace_uid(cluster, environ) == 52002
    cluster.calls.clear()
    assert _jsub(tmp_path, monkeypatch, cluster, "-N", "c", "/bin/true")[0] == 0
    assert requests(cluster) == ["POST"]


def test_a_refusal_that_a_fresh_read_does_not_explain_is_not_retried(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The policy refuses the namespace's own uid (e.g. an admin's mistake): one GET, no second POST,
    the refusal is what the user sees."""
    cluster = PolicyCluster(52001)
    environ = {"HOME": str(tmp_path / "home")}
    (tmp_path / "home").mkdir()
    remember_namespace_uid(cluster, environ, 52001)
    cluster.fail("create", ClusterError("refused by the cluster's admission policy p: no", status=422))
    rc, out = _jsub(tmp_path, monkeypatch, cluster, "-N", "a", "/bin/true")
    assert rc != 0 and "refused by the cluster's admission policy p: no" in out
    assert requests(cluster) == ["POST", "GET namespace"]


def test_the_uid_cache_is_per_server_and_namespace_and_never_another_users(tmp_path: Path) -> None:
    environ = {"HOME": str(tmp_path)}
    a, b = PolicyCluster(1), PolicyCluster(2)
    b.namespace = "tool-y"
    remember_namespace_uid(a, environ, 52001)
    assert cached_namespace_uid(a, environ) == 52001 and cached_namespace_uid(b, environ) is None
    entry = next(Path(usercache.cache_dir(environ, "ns-uid") or "").iterdir())
    assert json.loads(entry.read_text())["uid"] == 52001
    os.chmod(entry, 0o644)  # readable by others: not ours alone, not trusted
    assert cached_namespace_uid(a, environ) is None


# -- gridshim.record: dataclasses' behaviour without its code generation ---------------------------------

def test_a_record_behaves_as_the_dataclass_it_replaces() -> None:
    import dataclasses

    from gridshim import record as rec

    def make(deco: Any, field: Any) -> Any:
        @deco(frozen=True, kw_only=True)
        class A:
            a: int
            b: str = "x"
            c: tuple[int, ...] = ()
            d: list[int] = field(default_factory=list)
            e: int = field(default=5, repr=False, compare=False)
        return A

    for kind in (dataclasses, rec):
        deco = dataclasses.dataclass if kind is dataclasses else rec.record
        frozen_cls = make(deco, kind.field)
        x = frozen_cls(a=1, c=(2,))
        assert repr(x).split("(", 1)[1] == "a=1, b='x', c=(2,), d=[])"
        assert x == frozen_cls(a=1, c=(2,), e=9) and x != frozen_cls(a=2, c=(2,))
        assert kind.replace(x, b="y").b == "y" and [f.name for f in kind.fields(x)] == list("abcde")
        assert kind.asdict(x) == {"a": 1, "b": "x", "c": (2,), "d": [], "e": 5}
        with pytest.raises(kind.FrozenInstanceError):
            x.a = 2  # type: ignore[misc]
        with pytest.raises(AttributeError):  # both are AttributeErrors
            del x.b
        with pytest.raises(TypeError):
            frozen_cls(1)  # keyword only
        with pytest.raises(TypeError):
            frozen_cls()  # a is required
        with pytest.raises(TypeError):
            frozen_cls(a=1, z=2)
        with pytest.raises(ValueError):
            kind.field(default=1, default_factory=list)
        assert frozen_cls(a=1).d is not frozen_cls(a=1).d
        y = frozen_cls(a=1, d=None)  # type: ignore[arg-type]  (hashable when its fields are)
        assert hash(y) == hash(frozen_cls(a=1, d=None))  # type: ignore[arg-type]

        @deco(frozen=True, kw_only=True)
        class Sub(frozen_cls):  # type: ignore[misc, valid-type]
            f: int = 0
            b: str = "z"  # a redefined field keeps its place
        assert Sub(a=1, f=2).f == 2 and Sub(a=1).b == "z"
        assert [f.name for f in kind.fields(Sub)] == list("abcdef")
        with pytest.raises(TypeError):  # a frozen base needs a frozen subclass
            @deco
            class Thawed(frozen_cls):  # type: ignore[misc, valid-type]
                g: int = 0
        with pytest.raises(ValueError):  # a shared mutable default, refused as dataclasses refuses it
            @deco
            class Shared:
                v: list[int] = []

        @deco(frozen=True, slots=True)
        class Slotted:
            a: int
            b: int = 2
        sl = Slotted(1)
        assert not hasattr(sl, "__dict__") and (sl.a, sl.b) == (1, 2) and kind.replace(sl, b=3) == Slotted(1, 3)
        with pytest.raises(kind.FrozenInstanceError):
            sl.a = 5  # type: ignore[misc]

        @deco(frozen=True, slots=True)
        class SlottedSub(Slotted):
            c: int = 0
        assert not hasattr(SlottedSub(1), "__dict__") and SlottedSub(1, 2, 3).c == 3 and SlottedSub(1).b == 2
        assert repr(SlottedSub(1)).endswith("SlottedSub(a=1, b=2, c=0)")

        @deco
        class Plain:
            a: int
            b: int = 2
            n: ClassVar[int] = 7  # not a field
        p = Plain(1)
        p.a = 3
        assert (p.a, p.b) == (3, 2) and Plain(1, b=4) == Plain(1, 4) and Plain.__hash__ is None
        assert [f.name for f in kind.fields(Plain)] == ["a", "b"] and Plain.n == 7
        assert Plain.__match_args__ == ("a", "b")
        with pytest.raises(TypeError):  # a required positional field after a default one
            @deco
            class Bad:
                a: int = 1
                b: int  # type: ignore[misc]
    # rec.replace also takes a real dataclass (callers need not know which kind they hold)
    assert rec.replace(make(dataclasses.dataclass, dataclasses.field)(a=1), b="q").b == "q"


def test_with_a_cached_uid_a_refused_credential_is_still_reported_on_stderr(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Before the uid was cached, the Namespace GET met such errors first (stderr, not the .err file)."""
    from gridshim.errors import ForbiddenError

    cluster = PolicyCluster(52001)
    assert _jsub(tmp_path, monkeypatch, cluster, "-N", "a", "/bin/true")[0] == 0

    cluster.fail("create", ForbiddenError('not allowed: jobs.batch is forbidden: User "x" cannot create resource "jobs"'))
    import gridshim.cli.jsub as J

    home = tmp_path / "home"
    env = Env(stdout=io.StringIO(), stderr=io.StringIO(), stdin=io.StringIO(""),
              environ={"HOME": str(home), "GRIDSHIM_CONFIG": str(tmp_path / "site.yaml"), "PATH": "/usr/bin:/bin"},
              cwd=str(home), clock=lambda: 1_800_000_000.0)
    monkeypatch.setattr(J, "load_cluster", lambda env: cluster)
    assert J.submit_main(env, ["-N", "b", "/bin/true"], J.Preset.JSUB) == 1
    assert "cannot create resource" in env.stderr.getvalue() and not (home / "b.err").exists()


# -- kube/http11: what the transport used from http.client --------------------------------------------

class _Owner:
    def __init__(self) -> None:
        self.closed = 0
        self.done = 0

    def _response_done(self, resp: Any) -> None:
        self.done += 1
        if resp.will_close:
            self.close()

    def close(self) -> None:
        self.closed += 1


def test_http11_reads_lengths_chunks_and_lines_as_http_client_did() -> None:
    from gridshim.kube import http11

    def answer(raw: bytes, method: str = "GET") -> tuple[Any, _Owner]:
        owner = _Owner()
        return http11.Response(io.BytesIO(raw), method, owner), owner  # type: ignore[arg-type]

    r, o = answer(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nWarning: 299 - \"a\"\r\nWarning: 299 - \"b\"\r\n\r\nhello")
    assert (r.status, r.read(), o.closed) == (200, b"hello", 0)
    assert r.headers.get_all("warning") == ['299 - "a"', '299 - "b"'] and r.getheader("Retry-After") is None
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n5\r\n:1}\n{\r\n4\r\n}\n{}\r\n0\r\n\r\n"
    r, o = answer(chunked)
    assert r.read() == b'{"a":1}\n{}\n{}' and o.done == 1
    r, o = answer(chunked)
    assert [r.readline(), r.readline(), r.readline(), r.readline()] == [b'{"a":1}\n', b"{}\n", b"{}", b""]
    r, o = answer(b"HTTP/1.0 404 Not Found\r\n\r\nno")  # HTTP/1.0, no length: to the end, then closed
    assert (r.status, r.read(), o.closed) == (404, b"no", 1)
    r, o = answer(b"HTTP/1.1 204 No Content\r\n\r\n")
    assert r.read() == b"" and o.done == 1
    r, _ = answer(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")
    with pytest.raises(http11.IncompleteRead):
        r.read()
    with pytest.raises(http11.RemoteDisconnected) as e:
        answer(b"")
    assert isinstance(e.value, ConnectionResetError) and isinstance(e.value, http11.HTTPException)
    with pytest.raises(http11.BadStatusLine):
        answer(b"SSH-2.0-OpenSSH\r\n\r\n")
    assert http11.reason_phrase(404) == "Not Found" and http11.reason_phrase(299) == ""
