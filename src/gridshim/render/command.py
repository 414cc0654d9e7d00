"""The command wrapper: how a job's program runs inside the pod, and how it is read back.

The program and its arguments are passed to /bin/sh as positional parameters and run as "$@",
so they reach the program byte-exact: nothing is ever spliced into shell text. The wrapper
appends stdout/stderr to the grid's files, applies -umask, -i and -a, and for continuous jobs
runs jsub's respawn loop. Imports model only.
"""

from __future__ import annotations

from gridshim.model import JobKind, JobRequest

SHELL = "/bin/sh"
ARGV0 = "gridshim-job"  # $0 of the wrapper; marks the layout so unwrap() can recognise it
# Continuous jobs: restart 5 s after a non-zero exit, with jsub's respawn line on stderr (grid 1.8).
RESPAWN_DELAY = 5
# Positional parameters before the program: out, err, stdin, not-before.
FIXED = 4

# The wrapper stays PID 1 of the container and runs the program as its child: on a real node
# SIGTERM (qdel, jstop) reaches only PID 1, and a program exec'd into PID 1 without a handler of its
# own would ignore it until the SIGKILL. So the wrapper traps TERM/INT/HUP, forwards TERM to the
# program and stops respawning. Background jobs get /dev/null as stdin unless redirected, hence fd 3.
_PRELUDE = (
    'umask {umask:03o}\n'
    'if [ "$1" = "$2" ]; then exec >>"$1" 2>&1; else exec >>"$1" 2>>"$2"; fi\n'
    'if [ -n "$3" ]; then exec 3<"$3"; else exec 3</dev/null; fi\n'
    'stop=; child=\n'
    'trap \'stop=1; [ -n "$child" ] && kill -TERM "$child" 2>/dev/null\' TERM INT HUP\n'
    'pause() {{ sleep "$1" <&3 & child=$!; wait "$child"; child=; }}\n'
    'run() {{\n'
    '    "$@" 0<&3 3<&- & child=$!\n'
    '    while :; do wait "$child"; rc=$?; kill -0 "$child" 2>/dev/null || break; done\n'
    '    child=; return "$rc"\n'
    '}}\n'
    'if [ -n "$4" ]; then now=$(date +%s); if [ "$now" -lt "$4" ]; then pause $(( $4 - now )); fi; fi\n'
    'if [ -n "$stop" ]; then exit 143; fi\n'
    'shift {fixed}\n'
)
_ONE_OFF = 'run "$@"\nexit "$rc"\n'
_CONTINUOUS = (
    'until run "$@"; do\n'
    '    if [ -n "$stop" ]; then exit "$rc"; fi\n'
    '    echo "[$(date +%Y-%m-%dT%H:%M:%S)] $1 exited with code $rc. Respawning..." >&2\n'
    '    pause {delay}\n'
    '    if [ -n "$stop" ]; then exit "$rc"; fi\n'
    'done\n'
)


def script_for(req: JobRequest) -> str:
    body = _CONTINUOUS.format(delay=RESPAWN_DELAY) if req.kind is JobKind.CONTINUOUS else _ONE_OFF
    return _PRELUDE.format(umask=req.umask, fixed=FIXED) + body


def program_argv(req: JobRequest) -> list[str]:
    if req.shell is not None:
        return [SHELL, "-c", req.shell]
    return list(req.argv)


def wrap_command(req: JobRequest) -> list[str]:
    """The container's `command`: sh -c SCRIPT gridshim-job OUT ERR STDIN NOT_BEFORE PROGRAM ARGS..."""
    err = req.stdout if req.merge else req.stderr
    fixed = [req.stdout, err, req.stdin or "", str(req.not_before or "")]
    return [SHELL, "-c", script_for(req), ARGV0, *fixed, *program_argv(req)]


def escape_expansion(text: str) -> str:
    """The kubelet expands `$(VAR)` in command, args and env values and turns `$$` into `$`;
    doubling every `$` makes it hand our text to the process unchanged."""
    return text.replace("$", "$$")


def unescape_expansion(text: str) -> str:
    return text.replace("$$", "$")


def unwrap_command(command: list[str]) -> dict[str, object] | None:
    """Mirror of wrap_command (after escape_expansion): the paths and program argv of a container."""
    command = [unescape_expansion(c) for c in command]
    if len(command) < 4 + FIXED or command[:2] != [SHELL, "-c"] or command[3] != ARGV0:
        return None
    out, err, stdin, not_before = command[4:4 + FIXED]
    return {"stdout": out, "stderr": err, "merge": out == err, "stdin": stdin or None,
            "not_before": int(not_before) if not_before else None, "argv": command[4 + FIXED:],
            "continuous": "until " in command[2]}
