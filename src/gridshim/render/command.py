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
    # a CronJob run learns its grid id from its Job's uid (the downward API), as labels.job_id_from_uid
    'if [ -z "$JOB_ID" ] && [ -n "$GRIDSHIM_JOB_UID" ]; then\n'
    '    JOB_ID=$(( 1000000 + 0x$(printf %s "$GRIDSHIM_JOB_UID" | sha256sum | cut -c1-12) % 9000000 ))\n'
    '    export JOB_ID\n'
    'fi\n'
    'unset GRIDSHIM_JOB_UID\n'
    # -o/-e/-i of a CronJob run hold the literal text $JOB_ID: replace it with this run's id
    'sub() {{ s=$1; r=; while :; do case $s in *"\\$JOB_ID"*) r=$r${{s%%"\\$JOB_ID"*}}$JOB_ID; '
    's=${{s#*"\\$JOB_ID"}};; *) break;; esac; done; printf %s "$r$s"; }}\n'
    'o=$1; e=$2; i=$3\n'
    'case $o$e$i in *"\\$JOB_ID"*) o=$(sub "$o"); e=$(sub "$e"); i=$(sub "$i");; esac\n'
    # SGE's per-job TMPDIR (also first in PATH) and the SGE_*_PATH variables
    'TMPDIR=/tmp/${{JOB_ID:-0}}.1.default; TMP=$TMPDIR; PATH=$TMPDIR:$PATH\n'
    'mkdir -p "$TMPDIR" 2>/dev/null; export TMPDIR TMP PATH\n'
    'SGE_STDOUT_PATH=$o; SGE_STDERR_PATH=$e; SGE_STDIN_PATH=${{i:-/dev/null}}\n'
    'export SGE_STDOUT_PATH SGE_STDERR_PATH SGE_STDIN_PATH\n'
    'if [ "$o" = "$e" ]; then exec >>"$o" 2>&1; else exec >>"$o" 2>>"$e"; fi\n'
    'if [ -n "$i" ]; then exec 3<"$i"; else exec 3</dev/null; fi\n'
    # a qsub job script, copied at submission: written out here, run by the shell named before it
    'if [ -n "${{GRIDSHIM_SCRIPT+x}}" ]; then\n'
    '    JOB_SCRIPT=$TMPDIR/.job_script; export JOB_SCRIPT\n'
    '    printf %s "$GRIDSHIM_SCRIPT" >"$JOB_SCRIPT" || exit 1\n'
    '    unset GRIDSHIM_SCRIPT\n'
    'fi\n'
    'stop=; child=\n'
    "trap '{on_term}' TERM INT HUP\n"
    'pause() {{ sleep "$1" <&3 & child=$!; wait "$child"; child=; }}\n'
    'run() {{\n'
    '    "$@" 0<&3 3<&- & child=$!\n'
    '    while :; do wait "$child"; rc=$?; kill -0 "$child" 2>/dev/null || break; done\n'
    '    child=; return "$rc"\n'
    '}}\n'
    'if [ -n "$4" ]; then now=$(date +%s); if [ "$now" -lt "$4" ]; then pause $(( $4 - now )); fi; fi\n'
    'if [ -n "$stop" ]; then exit 143; fi\n'
    'shift {fixed}\n'
    'if [ -n "$JOB_SCRIPT" ] && [ "$JOB_SCRIPT" = "$TMPDIR/.job_script" ]; then\n'
    '    sh=$1; shift; set -- "$sh" "$JOB_SCRIPT" "$@"\n'
    'fi\n'
)
_ON_TERM = 'stop=1; [ -n "$child" ] && kill -TERM "$child" 2>/dev/null'
# -notify: SIGUSR2 first, as SGE sends before a kill; the TERM follows after half the grace period.
_ON_TERM_NOTIFY = ('stop=1; [ -n "$child" ] && {{ kill -USR2 "$child" 2>/dev/null; '
                   '( sleep {delay}; kill -TERM "$child" 2>/dev/null ) & }}')
_ONE_OFF = 'run "$@"\nrm -rf "$TMPDIR" 2>/dev/null\nexit "$rc"\n'
_CONTINUOUS = (
    'until run "$@"; do\n'
    '    if [ -n "$stop" ]; then exit "$rc"; fi\n'
    '    echo "[$(date +%Y-%m-%dT%H:%M:%S)] $1 exited with code $rc. Respawning..." >&2\n'
    '    pause {delay}\n'
    '    if [ -n "$stop" ]; then exit "$rc"; fi\n'
    'done\n'
)


def script_for(req: JobRequest, *, notify_delay: int = 10) -> str:
    body = _CONTINUOUS.format(delay=RESPAWN_DELAY) if req.kind is JobKind.CONTINUOUS else _ONE_OFF
    on_term = _ON_TERM_NOTIFY.format(delay=notify_delay) if req.notify else _ON_TERM
    return _PRELUDE.format(umask=req.umask, fixed=FIXED, on_term=on_term) + body


def program_argv(req: JobRequest) -> list[str]:
    if req.shell is not None:
        return [SHELL, "-c", req.shell]
    return list(req.argv)


def wrap_command(req: JobRequest, *, notify_delay: int = 10) -> list[str]:
    """The container's `command`: sh -c SCRIPT gridshim-job OUT ERR STDIN NOT_BEFORE PROGRAM ARGS..."""
    err = req.stdout if req.merge else req.stderr
    fixed = [req.stdout, err, req.stdin or "", str(req.not_before or "")]
    return [SHELL, "-c", script_for(req, notify_delay=notify_delay), ARGV0, *fixed, *program_argv(req)]


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
            "not_before": int(not_before) if not_before.isdigit() else None, "argv": command[4 + FIXED:],
            "continuous": "until " in command[2]}
