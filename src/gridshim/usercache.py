"""The user's private cache: YAML files read without PyYAML when they have not changed, and small
facts about the cluster (a Namespace's uid) kept between commands (leaf).

The site config and the kubeconfig are read by every jsub, qsub and qstat, and `import yaml` plus the
parse cost more than the rest of the submission's own work. PyYAML's result for a file is stored in
`$XDG_CACHE_HOME/gridshim/parsed/` (else `~/.cache/gridshim/parsed/`; `ns-uid/` for the uids), keyed by the file's path,
device, inode, size and mtime (ns); a later read whose `stat` matches takes the JSON instead.

Trust (docs/design.md, "The parsed-file cache"):
- an entry is used only if it is a regular file owned by the effective uid with no group/other bits,
  in a directory owned by the effective uid that no one else can write: never across users, so a
  `HOME` pointing at someone else's directory (sudo, `become`) only loses the cache;
- entries are written atomically (a private temporary file, then `os.replace`), and only if the
  file's `stat` was the same before and after it was read, so a file edited while being read is
  never cached under its new key;
- only plain JSON values are stored (str-keyed mappings, lists, str, int, finite float, bool, None):
  anything else PyYAML may produce (dates, binary, non-string keys) is parsed again every time;
- a caller may refuse to cache a value (`cacheable=`): the kubeconfig is not cached when it carries
  secrets (keys, tokens, passwords, an exec plugin's environment), so no secret is copied to disk;
- any failure of the cache (unreadable, corrupt, full disk) falls back to PyYAML silently: the cache
  can make a read faster, never different.
"""

from __future__ import annotations

import json
import os

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up, docs/performance.md)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

VERSION = 1


def _key(st: os.stat_result) -> list[int]:
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]


def cache_dir(environ: Any, sub: str = "parsed") -> str | None:
    """The directory for SUB's entries, or None when there is none (no HOME; GRIDSHIM_NO_CACHE set)."""
    base = environ.get("XDG_CACHE_HOME")
    if not base:
        home = environ.get("HOME")
        if not home:
            return None
        base = os.path.join(home, ".cache")
    if environ.get("GRIDSHIM_NO_CACHE", "") not in ("", "0"):
        return None
    return os.path.join(base, "gridshim", sub)


def _ours(st: os.stat_result, *, mode_mask: int) -> bool:
    return st.st_uid == os.geteuid() and not st.st_mode & mode_mask


def _entry(directory: str, name: str) -> str:
    from gridshim.digest import sha256_hex  # noqa: PLC0415  (already imported on the submission path by render.labels)

    return os.path.join(directory, sha256_hex(name)[:32] + ".json")


def read_private(sub: str, name: str, environ: Any) -> Any:
    """The JSON value stored under NAME, or None: only an entry of ours that no one else can read or
    write, in a directory no one else can write."""
    directory = cache_dir(environ, sub)
    if directory is None:
        return None
    try:
        if not _ours(os.stat(directory), mode_mask=0o022):
            return None
        fd = os.open(_entry(directory, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            est = os.fstat(fd)
            if not _ours(est, mode_mask=0o077) or (est.st_mode & 0o170000) != 0o100000 or est.st_size > 8 << 20:
                return None
            with os.fdopen(fd, "rb", closefd=False) as f:
                raw = f.read()
        finally:
            os.close(fd)
        return json.loads(raw)
    except (OSError, ValueError, RecursionError):
        return None


def write_private(sub: str, name: str, value: Any, environ: Any) -> None:
    """Store VALUE (JSON) under NAME atomically, readable by us only; never raises."""
    directory = cache_dir(environ, sub)
    if directory is None:
        return
    try:
        try:
            dst = os.stat(directory)
        except FileNotFoundError:
            # Created only below a directory of ours: root with a user's HOME must not leave root's
            # directories in it (the user could then never cache).
            existing = os.path.dirname(directory)
            while not os.path.exists(existing) and os.path.dirname(existing) != existing:
                existing = os.path.dirname(existing)
            if os.stat(existing).st_uid != os.geteuid():
                return
            os.makedirs(directory, mode=0o700, exist_ok=True)
            dst = os.stat(directory)
        if not _ours(dst, mode_mask=0o022):
            return
        data = json.dumps(value, separators=(",", ":")).encode()
        tmp = os.path.join(directory, f".tmp-{os.getpid()}-{os.urandom(6).hex()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            with os.fdopen(fd, "wb", closefd=False) as f:
                f.write(data)
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.close(fd)
        os.replace(tmp, _entry(directory, name))
    except (OSError, ValueError, TypeError, RecursionError):
        return


def forget_private(sub: str, name: str, environ: Any) -> None:
    directory = cache_dir(environ, sub)
    if directory is not None:
        try:
            os.unlink(_entry(directory, name))
        except OSError:
            pass


def _plain(value: Any, depth: int = 0) -> bool:
    """Whether VALUE survives a JSON round trip unchanged."""
    if depth > 100:
        return False
    if value is None or isinstance(value, (str, bool, int)):
        return True
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    if isinstance(value, list):
        return all(_plain(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v, depth + 1) for k, v in value.items())
    return False


def lookup(path: str, st: os.stat_result, environ: Any) -> tuple[bool, Any]:
    """(True, value) if the cache holds PATH as it is now (ST), else (False, None)."""
    entry = read_private("parsed", os.path.abspath(path), environ)
    if (not isinstance(entry, dict) or entry.get("v") != VERSION or entry.get("path") != os.path.abspath(path)
            or entry.get("key") != _key(st) or "data" not in entry):
        return False, None
    return True, entry["data"]


def store(path: str, before: os.stat_result, value: Any, environ: Any) -> None:
    """Keep VALUE as PATH's parse if PATH is still as it was when read (BEFORE); never raises."""
    if cache_dir(environ) is None or not _plain(value):
        return
    try:
        if _key(os.stat(path)) != _key(before):
            return
    except OSError:
        return
    write_private("parsed", os.path.abspath(path),
                  {"v": VERSION, "path": os.path.abspath(path), "key": _key(before), "data": value}, environ)


def load(path: str, read: Callable[[int, os.stat_result], str], parse: Callable[[str], Any], environ: Any, *,
         cacheable: Callable[[Any], bool] = lambda _v: True, flags: int = 0) -> Any:
    """PARSE(READ(fd, stat)) of the file PATH, or the cached value when PATH has not changed since.

    The file is opened (and READ may refuse it) whether or not the cache holds it, so a file that cannot
    be read is the same error as without the cache; os.open's OSError reaches the caller."""
    fd = os.open(path, os.O_RDONLY | flags)
    try:
        st = os.fstat(fd)
        hit, value = lookup(path, st, environ) if (st.st_mode & 0o170000) == 0o100000 else (False, None)
        if hit:
            return value
        text = read(fd, st)
    finally:
        os.close(fd)
    value = parse(text)
    if cacheable(value):
        store(path, st, value, environ)
    return value
