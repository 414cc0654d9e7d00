"""What every command shares: the injectable environment, the error funnel, cluster and host setup.

Layer: CLI edge. The only place that turns GridshimError into stderr text and an exit code.
"""

from __future__ import annotations

import os
import sys
import time

from gridshim.errors import ExitCode, GridshimError, QuotaExceededError, UsageError
from gridshim.record import field, record
from gridshim.text import printable

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up, docs/performance.md)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TextIO


@record
class Env:
    """Streams, environment, clock and cwd, injectable for tests (HTTPie's Environment)."""

    # A stream the caller closed (`jsub … >&-`) is None in Python: writes then go nowhere, as a C
    # program's would, instead of failing after the job was created; a closed stdin reads as closed.
    stdout: TextIO = field(default_factory=lambda: sys.stdout or _devnull())
    stderr: TextIO = field(default_factory=lambda: sys.stderr or _devnull())
    stdin: TextIO | None = field(default_factory=lambda: sys.stdin)
    environ: dict[str, str] = field(default_factory=lambda: {as_utf8(k): as_utf8(v) for k, v in os.environ.items()})
    cwd: str = field(default_factory=lambda: os.environ.get("PWD") if _pwd_ok() else os.getcwd())
    clock: Callable[[], float] = time.time

    @property
    def debug(self) -> bool:
        return self.environ.get("GRIDSHIM_DEBUG", "") not in ("", "0")

    def stderr_isatty(self) -> bool:
        return hasattr(self.stderr, "isatty") and self.stderr.isatty()

    def stdout_isatty(self) -> bool:
        return hasattr(self.stdout, "isatty") and self.stdout.isatty()

    def terminal(self, stream: TextIO) -> bool:
        """STREAM can be drawn on: a tty, and TERM is not 'dumb'."""
        return hasattr(stream, "isatty") and stream.isatty() and self.environ.get("TERM") != "dumb"

    @property
    def no_color(self) -> bool:
        """NO_COLOR set and not empty (no-color.org): no colour, whatever the terminal can do."""
        return self.environ.get("NO_COLOR", "") != ""

    @property
    def home(self) -> str:
        from gridshim.accounting import home_of  # noqa: PLC0415  ($HOME, else the passwd entry's)

        return home_of(self.environ)


def as_utf8(text: str) -> str:
    """Command-line and environment text as the bytes the user typed, read as UTF-8.

    Python decodes argv and the environment with the locale's encoding: in a Latin-1 locale the byte
    0xE9 becomes 'é', which Kubernetes would then carry as UTF-8 (two other bytes). Re-reading the
    original bytes as UTF-8 (undecodable ones surrogate-escaped) makes such text fail the UTF-8 check
    in every locale instead of reaching the job changed."""
    if _FS_UTF8:
        return text
    return os.fsencode(text).decode("utf-8", "surrogateescape")


_FS_UTF8 = sys.getfilesystemencoding().lower().replace("-", "") == "utf8"


def argv() -> list[str]:
    """sys.argv[1:] as as_utf8 reads it."""
    return [as_utf8(a) for a in sys.argv[1:]]


def _devnull() -> TextIO:
    return open(os.devnull, "w")  # lives as long as the process


def _pwd_ok() -> bool:
    """$PWD keeps symlinked paths as the user typed them (like jsub); trust it only if it is right."""
    pwd = os.environ.get("PWD")
    try:
        return bool(pwd and os.path.samefile(pwd, "."))
    except OSError:
        return False


def ctime(now: float) -> str:
    return time.ctime(now)


def report(env: Env, prog: str, err: BaseException) -> int:
    """The error funnel: one line (or argparse's two) on stderr, and the exit code."""
    if isinstance(err, UsageError):
        env.stderr.write(f"{prog}: error: {printable(err.message)}\n")
        return int(ExitCode.USAGE)
    if isinstance(err, GridshimError):
        text = printable(str(err), keep_newlines=isinstance(err, QuotaExceededError))  # qsub's "\nExiting."
        env.stderr.write(text if text.startswith(prog) else f"{prog}: {text}")
        env.stderr.write("\n")
        if env.debug and err.detail:
            env.stderr.write(f"{prog}: detail: {err.detail}\n")
        return int(err.exit_code)
    if isinstance(err, KeyboardInterrupt):
        return int(ExitCode.INTERRUPTED)
    env.stderr.write(f"{prog}: internal error: {type(err).__name__}: {err} "
                     "(please report this; set GRIDSHIM_DEBUG=1 for details)\n")
    if env.debug:
        import traceback  # noqa: PLC0415  (only with GRIDSHIM_DEBUG: it imports textwrap, linecache, …)

        traceback.print_exception(err, file=env.stderr)
    return int(ExitCode.ERROR)


def run(prog: str, fn: Callable[[Env], int], env: Env | None = None) -> int:
    """Run FN through the funnel. Never lets a traceback reach the user unless GRIDSHIM_DEBUG is set."""
    env = env or Env()
    try:
        return fn(env)
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (silence the interpreter's flush at exit)
        except OSError:
            pass
        return int(ExitCode.ERROR)
    except (GridshimError, KeyboardInterrupt, Exception) as e:  # noqa: BLE001  (the one funnel)
        return report(env, prog, e)


def load_cluster(env: Env) -> Any:
    from gridshim.cluster import KubeCluster  # noqa: PLC0415  (commands that never reach the API skip it)

    return KubeCluster.from_kubeconfig(environ=env.environ, context=env.environ.get("GRIDSHIM_CONTEXT"))


# `uid: namespace` keeps the Namespace's uid in the user's private cache (gridshim.usercache, keyed by
# API server and namespace), so a plain jsub makes one request, the POST. A stale value cannot run a pod
# as another uid: the cluster's admission policy refuses any uid but the namespace's, and on that
# refusal the Namespace is read again and the submission retried once (uid_refused, docs/design.md).
_UID_CACHE = "ns-uid"


def _uid_key(cluster: Any) -> str:
    creds = getattr(cluster, "creds", None)
    return f"{getattr(creds, 'server', '')}\0{cluster.namespace}"


def cached_namespace_uid(cluster: Any, environ: Any) -> int | None:
    """The uid cached for CLUSTER's namespace, or None."""
    import gridshim.usercache as usercache  # noqa: PLC0415

    value = usercache.read_private(_UID_CACHE, _uid_key(cluster), environ)
    if isinstance(value, dict) and value.get("key") == _uid_key(cluster) and type(value.get("uid")) is int \
            and 0 < value["uid"] <= 2**31 - 1:
        return int(value["uid"])
    return None


def remember_namespace_uid(cluster: Any, environ: Any, uid: int | None) -> None:
    import gridshim.usercache as usercache  # noqa: PLC0415

    if uid is None:
        usercache.forget_private(_UID_CACHE, _uid_key(cluster), environ)
    else:
        usercache.write_private(_UID_CACHE, _uid_key(cluster), {"key": _uid_key(cluster), "uid": uid}, environ)


def uid_refused(err: BaseException) -> bool:
    """Whether ERR is an admission policy's refusal, which a stale cached uid would cause (422)."""
    from gridshim.errors import ClusterError  # noqa: PLC0415

    return isinstance(err, ClusterError) and err.status == 422 and "admission policy" in err.message


def unreached(err: BaseException) -> bool:
    """Whether ERR says the cluster was not reached, did not take the credentials or refused them
    (configuration, TLS, exec plugin, transport, 401, 403): what the Namespace GET of `uid: namespace`
    met first before its uid was cached, so the commands report it where they did then (stderr, not
    the job's .err file)."""
    from gridshim.errors import ClusterConfigError, ClusterError, ForbiddenError  # noqa: PLC0415

    return isinstance(err, (ClusterConfigError, ForbiddenError)) or (isinstance(err, ClusterError) and err.status is None)


def tool_uid(policy: str, *, tool: str, home: str, cluster: Any = None, offline: bool = False,
             environ: Any = None) -> int:
    """The uid a tool's pods run as: 'namespace' (the cluster's answer), 'self' (whoever submits),
    'home-owner', 'passwd:PATTERN' or a number. Whatever the policy says, the cluster refuses pods of
    any uid but the namespace's (docs/site-config.md); 'namespace' is the one that asks it.

    'namespace' reads the tool Namespace's annotation with CLUSTER (one GET); OFFLINE (--dry-run, which
    contacts nothing) falls back to 'self'. With ENVIRON it first takes the uid cached for the namespace
    (and caches what the GET answers); cli.jsub.stale_uid re-reads it on the refusal a stale one causes."""
    if policy == "namespace":
        if cluster is None:
            if offline:
                return os.getuid()
            raise GridshimError("site config 'uid: namespace' needs the cluster, which was not contacted")
        from gridshim.config import namespace_uid  # noqa: PLC0415
        from gridshim.errors import ForbiddenError  # noqa: PLC0415

        if environ is not None:
            uid = cached_namespace_uid(cluster, environ)
            if uid is not None:
                return uid
        try:
            namespace = cluster.namespace_object()
        except ForbiddenError as e:
            e.hint = (f"{e.hint}; " if e.hint else "") + (
                f"site config 'uid: namespace' also needs 'get' on namespace {cluster.namespace}, "
                "see docs/site-config.md")
            raise
        uid = namespace_uid(namespace)
        if environ is not None:
            remember_namespace_uid(cluster, environ, uid)
        return uid
    if policy.isdigit():
        return int(policy)
    if policy == "self":
        return os.getuid()
    if policy == "home-owner":
        try:
            return os.stat(home).st_uid
        except OSError as e:
            raise GridshimError(f"cannot find the tool's uid: {home}: {e.strerror}",
                                hint="site config 'uid: home-owner' needs the home directory") from None
    if policy.startswith("passwd:"):
        import pwd  # noqa: PLC0415

        account = policy[len("passwd:"):].replace("{tool}", tool)
        try:
            return pwd.getpwnam(account).pw_uid
        except KeyError:
            raise GridshimError(f"cannot find the uid of account {account!r}",
                                hint="check the site config's 'uid' setting") from None
    raise GridshimError(f"site config: uid: unknown policy {policy!r} "
                        "(namespace, self, home-owner, passwd:PATTERN or a number)")


def console(env: Env, stream: TextIO | None = None, *, styles_only: bool = False, **options: Any) -> Any:
    """The one maker of rich Consoles: for STREAM (stdout by default) when it is a terminal that is not
    TERM=dumb, else None. NO_COLOR makes it colourless; a console that would only add styles (STYLES_ONLY)
    is then not made at all, so that output is plain text. rich is imported here, and only when a
    console is made: a command whose streams are files or pipes (every plain submission) never imports it.
    OPTIONS go to rich.console.Console."""
    stream = env.stdout if stream is None else stream
    if not env.terminal(stream) or (styles_only and env.no_color):
        return None
    from rich.console import Console  # noqa: PLC0415  (only on a terminal)

    return Console(file=stream, force_terminal=True, no_color=env.no_color, **options)


class LiveStatus:
    """A one-line live status on stderr when it is a terminal (rich); does nothing otherwise.

    Scripts never see it: it is drawn only on a tty and erased when the command ends.
    """

    def __init__(self, env: Env, text: str) -> None:
        self._status: Any = None
        con = console(env, env.stderr, highlight=False)
        if con is not None:
            self._status = con.status(text)

    def __enter__(self) -> LiveStatus:
        if self._status is not None:
            self._status.__enter__()
        return self

    def update(self, text: str) -> None:
        if self._status is not None:
            self._status.update(text)

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.__exit__(*exc)


def read_script_head(path: str, limit: int = 65536) -> str | None:
    """The start of a program file as text, for its `#$` lines; None for binaries and unreadable files."""
    try:
        with open(path, "rb") as f:
            data = f.read(limit)
    except OSError:
        return None
    if b"\0" in data:
        return None
    return data.decode("utf-8", "replace")


# qsub copies the whole script into the job; beyond this it is refused (render says why).
SCRIPT_LIMIT = 4 * 1024 * 1024


def read_text_file(path: str) -> str | None:
    """A whole regular text file (up to SCRIPT_LIMIT), surrogate-escaped; None if unreadable or binary.
    A FIFO or device (`.jsubrc` → /dev/zero) is never read: it could block or never end."""
    import stat  # noqa: PLC0415

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(fd, "rb", closefd=False) as f:
            head = f.read(65536)
            if b"\0" in head:
                return None
            data = head + f.read(SCRIPT_LIMIT)
    except OSError:
        return None
    finally:
        os.close(fd)
    return data.decode("utf-8", "surrogateescape")


def local_host(env: Env, *, tool: str, uid: int | None, token: str = "") -> Any:
    """The submit host port (translate.SubmitHost) for this machine, as the caller sees it."""
    import socket  # noqa: PLC0415

    from gridshim.translate import SubmitHost  # noqa: PLC0415

    return SubmitHost(tool=tool, home=env.home, cwd=env.cwd, env=env.environ, uid=uid, now=env.clock(),
                      token=token, isdir=os.path.isdir, exists=os.path.exists,
                      executable=lambda p: os.access(p, os.X_OK), readable=lambda p: os.access(p, os.R_OK),
                      read_text=read_text_file,
                      hostname=socket.gethostname().split(".")[0], user_home=_user_home,
                      writable=(lambda p: os.access(p, os.W_OK)) if uid == os.getuid() else (lambda _p: True))


def _user_home(user: str) -> str | None:
    import pwd  # noqa: PLC0415

    try:
        return pwd.getpwnam(user).pw_dir
    except KeyError:
        return None


def offline_namespace(env: Env) -> str:
    """--dry-run contacts nothing: the kubeconfig's namespace if it can be read, else 'default'."""
    from gridshim.cluster import kubeconfig_paths, load_credentials  # noqa: PLC0415

    try:
        creds = load_credentials(kubeconfig_paths(env.environ), env.environ.get("GRIDSHIM_CONTEXT"))
    except GridshimError:
        return "default"
    return creds.namespace or "default"


def make_room(env: Env, cluster: Any, settings: Any) -> Callable[[int], int]:
    """For ops.submit: delete up to N of the tool's oldest finished Jobs (each only once its accounting
    record is safe) when the job quota refuses a submission, so finished jobs never block new ones."""
    def run_(needed: int) -> int:
        from gridshim import control, records  # noqa: PLC0415

        return control.remove_finished(
            cluster, now=env.clock(), user_prefix=settings.user_prefix, limit=needed,
            before_delete=lambda job, pods: records.make_safe(job, pods, settings=settings, home=env.home,
                                                              now=env.clock()))
    return run_
