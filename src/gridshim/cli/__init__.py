"""The grid commands (one module each) and what every one of them does as a process.

A grid command is a short process run from cron and from shell loops of thousands, so its start and
its end are part of every job's cost (docs/performance.md, measured on `jsub -N x /bin/true`):

- while it starts, the cyclic garbage collector is off: imports allocate tens of thousands of objects
  and none of them is garbage, yet each allocation burst triggered a collection (~7 ms of a jsub).
  Reference counting still frees everything; a wait that may last hours (`-sync y`, ops.wait) turns
  the collector back on.
- at its end, `finish` flushes stdout and stderr and leaves with `os._exit`, skipping the interpreter's
  teardown of every imported module (~8 ms), but only when nothing else wants the exit: no atexit
  callback, no live non-daemon thread, and the process is the command itself (not a test that imports
  it). A flush that fails (closed or broken stdout) takes the ordinary path, which reports it as before.

Both apply only when the process is one of the commands (`PROGRAMS`, kept equal to setup.cfg's
console_scripts by a unit test); a library or test importing gridshim is untouched.
"""

import gc
import os
import sys

PROGRAMS = frozenset({
    "jsub", "qsub", "jstart", "qcronsub", "qstat", "qacct", "job", "jstop", "qdel", "qmod", "qalter",
    "qhold", "qrls", "crontab", "gridshim"})


def _is_command() -> bool:
    main = sys.modules.get("__main__")
    script = getattr(main, "__file__", None)
    return bool(script) and os.path.basename(sys.argv[0] if sys.argv else "") in PROGRAMS \
        and os.path.basename(str(script)) in PROGRAMS


AS_COMMAND = _is_command()
if AS_COMMAND:
    gc.disable()


def finish(code: int) -> None:
    """Leave the process with CODE (see the module's opening)."""
    if AS_COMMAND and _quiet_exit_is_safe():
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError, AttributeError):
            sys.exit(code)
        os._exit(code)
    sys.exit(code)


def _quiet_exit_is_safe() -> bool:
    import atexit  # noqa: PLC0415  (only as the process ends)

    if atexit._ncallbacks():  # CPython's; someone registered a cleanup
        return False
    threading = sys.modules.get("threading")
    if threading is not None:
        main = threading.main_thread()
        if any(t is not main and not t.daemon and t.is_alive() for t in threading.enumerate()):
            return False
    return True
