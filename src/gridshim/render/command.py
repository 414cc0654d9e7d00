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
    'acct_key=${{GRIDSHIM_JOB_UID:--}}/${{GRIDSHIM_POD_UID:--}}; acct=$GRIDSHIM_ACCT\n'
    'g_rel=$GRIDSHIM_RELEASE; t_tasks=$GRIDSHIM_TASKS; t_id=\n'
    'unset GRIDSHIM_JOB_UID GRIDSHIM_POD_UID GRIDSHIM_ACCT GRIDSHIM_RELEASE GRIDSHIM_TASKS\n'
    # an array task (GRIDSHIM_TASKS="first last step"): its id from the Job's completion index
    'if [ -n "$t_tasks" ]; then\n'
    '    t_first=${{t_tasks%% *}}; t_rest=${{t_tasks#* }}; t_last=${{t_rest%% *}}; t_step=${{t_rest#* }}\n'
    '    t_id=$(( t_first + ${{JOB_COMPLETION_INDEX:-0}} * t_step ))\n'
    '    SGE_TASK_ID=$t_id; SGE_TASK_FIRST=$t_first; SGE_TASK_LAST=$t_last; SGE_TASK_STEPSIZE=$t_step\n'
    '    SGE_JOB_TASK_ID=$JOB_ID.$t_id\n'
    '    export SGE_TASK_ID SGE_TASK_FIRST SGE_TASK_LAST SGE_TASK_STEPSIZE SGE_JOB_TASK_ID\n'
    # a pending task that qdel deleted: never runs (no output, no record, no mail)
    '    if [ -r "$HOME/.gridshim/deleted/$JOB_ID" ]; then\n'
    '        while IFS= read -r t_d || [ -n "$t_d" ]; do [ "$t_d" = "$t_id" ] && exit 0; t_d=; done \\\n'
    '            <"$HOME/.gridshim/deleted/$JOB_ID"\n'
    '    fi\n'
    'fi\n'
    # -o/-e/-i of a CronJob run hold the literal text $JOB_ID, an array task's $TASK_ID: replace them
    'sub() {{ s=$1; r=; while :; do case $s in *"$2"*) r=$r${{s%%"$2"*}}$3; '
    's=${{s#*"$2"}};; *) break;; esac; done; printf %s "$r$s"; }}\n'
    'o=$1; e=$2; i=$3\n'
    'case $o$e$i in *"\\$JOB_ID"*) o=$(sub "$o" "\\$JOB_ID" "$JOB_ID"); e=$(sub "$e" "\\$JOB_ID" "$JOB_ID")\n'
    '    i=$(sub "$i" "\\$JOB_ID" "$JOB_ID");; esac\n'
    'if [ -n "$t_id" ]; then case $o$e$i in *"\\$TASK_ID"*) o=$(sub "$o" "\\$TASK_ID" "$t_id")\n'
    '    e=$(sub "$e" "\\$TASK_ID" "$t_id"); i=$(sub "$i" "\\$TASK_ID" "$t_id");; esac; fi\n'
    # SGE's per-job TMPDIR (also first in PATH; task 1 for a non-array job) and the SGE_*_PATH variables
    'TMPDIR=/tmp/${{JOB_ID:-0}}.${{t_id:-1}}.default; TMP=$TMPDIR; PATH=$TMPDIR:$PATH\n'
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
    'stop=; child=; a_done=1\n'  # a_done: no attempt whose record is still to be written (acct_start)
    "trap '{on_term}' TERM INT HUP\n"
    '{soft_trap}'
    'pause() {{ sleep "$1" <&3 & child=$!; wait "$child"; child=; }}\n'
    'run() {{\n'
    '    "$@" 0<&3 3<&- & child=$!\n'
    '{soft_start}'
    '    while :; do wait "$child"; rc=$?; kill -0 "$child" 2>/dev/null || break; done\n'
    '{soft_end}'
    '    child=; return "$rc"\n'
    '}}\n'
    'if [ -n "$4" ]; then now=$(date +%s); if [ "$now" -lt "$4" ]; then pause $(( $4 - now )); fi; fi\n'
    'if [ -n "$stop" ]; then exit 143; fi\n'
    'shift {fixed}\n'
    'if [ -n "$JOB_SCRIPT" ] && [ "$JOB_SCRIPT" = "$TMPDIR/.job_script" ]; then\n'
    '    sh=$1; shift; set -- "$sh" "$JOB_SCRIPT" "$@"\n'
    'fi\n'
)
# The accounting record of one attempt (accounting.py reads it): GRIDSHIM_ACCT holds the file and the
# fields known at submission, one per line; the wrapper adds what only the run knows. Written under
# umask 077, so only the tool reads it; a failure to write never changes the job's exit status.
# The peak memory of the container (maxvmem, ru_maxrss, the mail's Max vmem): its cgroup v2 memory.peak,
# which a container sees at /sys/fs/cgroup in its own cgroup namespace (/proc/self/cgroup then says 0::/).
# Without one the path is the hierarchy's root, which has no memory.peak: 0, printed NA in mail.
_ACCOUNTING = (
    'mem_peak() { peak=0; [ -r /sys/fs/cgroup/memory.peak ] && peak=$(cat /sys/fs/cgroup/memory.peak 2>/dev/null); '
    'peak=${peak:-0}; }\n'
    'acct_start() { started=$(date +%s); a_done=; }\n'
    'acct_end() {\n'
    '    [ -n "$acct" ] && [ -z "$a_done" ] || return 0\n'
    '    a_done=1\n'
    '    ended=$(date +%s)\n'
    '    { IFS= read -r af; IFS= read -r a_q; IFS= read -r a_gon; IFS= read -r a_ap; IFS= read -r a_sub;\n'
    '      IFS= read -r a_pdps; IFS= read -r a_cat; } <<ACCT_EOF\n'
    '$acct\n'
    'ACCT_EOF\n'
    '    times >"$TMPDIR/.times" 2>/dev/null\n'
    '    ut=$(awk \'NR==2 { split($1, a, "m"); print a[1] * 60 + a[2] }\' "$TMPDIR/.times" 2>/dev/null)\n'
    '    st=$(awk \'NR==2 { split($2, a, "m"); print a[1] * 60 + a[2] }\' "$TMPDIR/.times" 2>/dev/null)\n'
    '    ut=${ut:-0}; st=${st:-0}; mem_peak\n'
    # killed (qdel, jstop, h_rt's activeDeadlineSeconds: the TERM trap set stop): SGE's SIGKILL, 137, failed
    # 100 (qsub-behaviour §6.4), whatever the program made of the TERM; the wrapper's own exit status stays
    '    a_rc=$rc; [ -n "$stop" ] && a_rc=137\n'
    '    failed=0; [ "$a_rc" -gt 128 ] && failed=100\n'
    '    line=$(printf \'%s:%s:%s:%s:%s:%s:%s:%s:%s:%s:%s:%s:%s:%s\' "$a_q" "${HOSTNAME:-$(hostname)}" "$a_gon" \\\n'
    '        "$JOB_ID" "$a_ap" "${a_sub:-$started}" "$started" "$ended" "$failed" "$a_rc" $(( ended - started )) \\\n'
    '        "$ut" "$st" $(( peak / 1024 )))\n'
    '    line=$line:0:0:0:0:0:0:0:0:0:0:0:0:0:0:$a_pdps:${t_id:-0}\n'
    '    cpu=$(awk -v u="$ut" -v s="$st" \'BEGIN { printf "%f", u + s }\')\n'
    '    line=$line:$cpu:0.000000:0.000000:$a_cat:0.000000:NONE:$peak:0:0:$acct_key\n'
    '    ( umask 077; mkdir -p "${af%/*}" && printf \'%s\\n\' "$line" >>"$af" ) 2>/dev/null\n'
    '    return 0\n'
    '}\n'
)
# The record of a stopped attempt is written at the TERM, before the program is told: the grace period's
# SIGKILL (a program that ignores TERM) can then no longer lose it, and the kill's time is its end, as SGE's.
# (Written first, it adds a few ms before the program's TERM; afterwards, a program that ends at once would
# be gone before run() looks again, and its status read as the wait's 143.)
_ON_TERM = 'stop=1; [ -n "$child" ] && { acct_end; kill -TERM "$child" 2>/dev/null; }'
# -notify: SIGUSR2 first, as SGE sends before a kill; the TERM follows after half the grace period.
_ON_TERM_NOTIFY = ('stop=1; [ -n "$child" ] && {{ acct_end; kill -USR2 "$child" 2>/dev/null; '
                   '( sleep {delay}; kill -TERM "$child" 2>/dev/null ) & }}')
# -l s_rt (qsub-behaviour §1.7): SIGUSR1 to the program SECONDS after each start of it (SGE's execd measures
# from the start of the run). Only in a job with s_rt before h_rt; the deadline (activeDeadlineSeconds) is
# s_rt + the queue's notify time. A sleeper asks the wrapper ($$), which passes the USR1 on only while
# $child is the program, so a late one never reaches a reused pid. run() ends the sleeper when the program
# ends, with SIGALRM, which the wrapper never traps: a forked subshell keeps its parent's handlers until it
# resets them, and a TERM arriving then was lost (seen: the wrapper waited for the sleeper). Its trap kills
# its sleep with SIGKILL (a TERM that reaches the sleep before it has exec'd sleep is lost in the same way:
# seen, 16 of 300 sleeps left behind), also at an ALRM that came before $s_s was set (s_x), so no sleep
# outlives the program.
_SOFT_TRAP = """trap '[ -n "$child" ] && kill -USR1 "$child" 2>/dev/null' USR1\n"""
_SOFT_START = (
    """    ( s_s=; s_x=; trap 's_x=1; [ -z "$s_s" ] || {{ kill -KILL "$s_s"; exit 0; }}' ALRM\n"""
    """      sleep {seconds} </dev/null & s_s=$!\n"""
    """      [ -z "$s_x" ] || {{ kill -KILL "$s_s"; exit 0; }}\n"""
    """      wait "$s_s" && kill -USR1 $$ ) 2>/dev/null & s_w=$!\n""")
# The USR1 also interrupts the wrapper's own wait (138): when the program ends at once on it, run()'s
# kill -0 can find it gone, so the status is asked for again (the shell keeps it; 127: already read).
# Seen on the sandbox: a job that exited 4 on the SIGUSR1 was reported as killed by it.
_SOFT_END = ('    wait "$child"; s_rc=$?; [ "$s_rc" -eq 127 ] || rc=$s_rc\n'
             '    kill -ALRM "$s_w" 2>/dev/null; wait "$s_w" 2>/dev/null\n')
# Releasing the jobs that wait for this one (-hold_jid; docs/arrays-and-holds.md "Release"): after the
# record, only when the site names its gridshim command and qsub left the successors marker; its output
# goes to the job's stderr file, it gets at most RELEASE_TIMEOUT seconds and never changes the exit status.
RELEASE_TIMEOUT = 30
_RELEASE = (
    'g_release() {\n'
    '    [ -n "$g_rel" ] && [ -e "$HOME/.gridshim/successors/$JOB_ID" ] || return 0\n'
    '    if [ -n "$t_id" ]; then set -- --task "$t_id"; else set --; fi\n'
    # in a subshell whose own stderr is dropped, so the shell's "Terminated" never reaches the job's file
    '    ( "$g_rel" release --job "$JOB_ID" "$@" </dev/null >>"$e" 2>&1 & g_p=$!\n'
    "      ( trap 'kill \"$g_s\"; exit 0' TERM; sleep @TIMEOUT@ & g_s=$!; wait \"$g_s\"; kill \"$g_p\" ) & g_w=$!\n"
    '      while kill -0 "$g_p"; do wait "$g_p"; done\n'
    '      kill "$g_w"; wait "$g_w" ) 2>/dev/null\n'
    '    return 0\n'
    '}\n'
).replace("@TIMEOUT@", str(RELEASE_TIMEOUT))
_ONE_OFF = 'acct_start\nrun "$@"\nacct_end\ng_release\nrm -rf "$TMPDIR" 2>/dev/null\nexit "$rc"\n'
_CONTINUOUS = (
    'until acct_start; run "$@"; acct_end; [ "$rc" -eq 0 ]; do\n'
    '    if [ -n "$stop" ]; then exit "$rc"; fi\n'
    '    echo "[$(date +%Y-%m-%dT%H:%M:%S)] $1 exited with code $rc. Respawning..." >&2\n'
    '    pause {delay}\n'
    '    if [ -n "$stop" ]; then exit "$rc"; fi\n'
    'done\n'
)


# Mail on job events (-m b|e|a, -M; qsub-behaviour §7), only in a job that asked for it at a site with a
# mailer: GRIDSHIM_MAIL holds the letters, the site's sendmail-compatible command (run as `sh -c`, message
# on stdin), From, the owner, the queue, the job name and the comma-separated recipients. The Begin mail
# leaves in the background as the program starts; the Complete or Aborted mail when the wrapper exits
# (an EXIT trap, so a continuous job's stop and a one-off's end are both seen). The container's other
# processes die with the wrapper, so it waits for its mails, but at most MAIL_TIMEOUT seconds, and a
# mailer that fails only leaves a line in the job's stderr file: the exit status is always the job's.
MAIL_TIMEOUT = 10
_MAIL = r"""{ IFS= read -r m_ev; IFS= read -r m_cmd; IFS= read -r m_from; IFS= read -r m_user; IFS= read -r m_q
  IFS= read -r m_name; IFS= read -r m_to; } <<MAIL_EOF
$GRIDSHIM_MAIL
MAIL_EOF
unset GRIDSHIM_MAIL
m_host=${HOSTNAME:-$(hostname)}; m_job="Job ${JOB_ID:-0} ($m_name)"; m_pids=
[ -n "$t_id" ] && m_job="Job-array task ${JOB_ID:-0}.$t_id ($m_name)"  # qsub-behaviour §7
m_note() { echo "[$(date '+%a %b %e %H:%M:%S %Y')] gridshim: $*" >&2; }
m_send() {  # $1 the subject (also the body's first line), $2 the rest: one mail per address, in the background
    m_r=$m_to,
    while [ -n "$m_r" ]; do
        m_a=${m_r%%,*}; m_r=${m_r#*,}
        [ -n "$m_a" ] || continue
        ( m_p=; trap 'kill "$m_p" 2>/dev/null; exit 143' TERM
          /bin/sh -c "$m_cmd" >/dev/null 2>&1 <<MAIL_EOF &
To: $m_a
From: $m_from
Subject: $1

$1
$2
MAIL_EOF
          m_p=$!; wait "$m_p" || m_note "the mail \"$1\" to $m_a was not sent: the mail command exited $?" ) &
        m_pids="$m_pids $!"
    done
}
m_wait() {  # for the mails in flight, at most @TIMEOUT@ s
    [ -n "$m_pids" ] || return 0
    ( trap 'kill "$m_s" 2>/dev/null; exit 0' TERM; sleep @TIMEOUT@ & m_s=$!; wait "$m_s"
      for m_p in $m_pids; do kill "$m_p" 2>/dev/null && m_note "a mail was not sent within @TIMEOUT@ seconds"; done ) &
    m_w=$!
    for m_p in $m_pids; do while kill -0 "$m_p" 2>/dev/null; do wait "$m_p"; done; done
    kill "$m_w" 2>/dev/null; wait "$m_w" 2>/dev/null; m_pids=
}
m_hms() { printf '%02d:%02d:%02d' $(( $1 / 3600 )) $(( $1 % 3600 / 60 )) $(( $1 % 60 )); }
# bytes in SGE's memory printer without the B (19.500M; below 1 KiB the number alone), NA for 0 (§7)
m_mem() { awk -v b="$1" 'BEGIN { if (b + 0 <= 0) { print "NA"; exit }
                                 u = ""; n = split("K M G T", s, " ")
                                 for (i = 1; i <= n && b >= 1024; i++) { b /= 1024; u = s[i] }
                                 printf "%.3f%s\n", b, u }'; }
m_end() {  # $1 the wrapper's exit status: Complete (e) unless the program died through a signal: Aborted (a or e)
    m_rc=$1; [ -n "$stop" ] && m_rc=137  # stopped from outside (qdel, jstop, h_rt): SGE's SIGKILL, as the record
    m_now=$(date '+%s %m/%d/%Y %H:%M:%S'); m_t1=${m_now%% *}; m_now=${m_now#* }
    times >"$TMPDIR.times" 2>/dev/null  # line 2: the children's user and system time, as 1m2.50s
    m_c=$(awk 'NR == 2 { split($1, a, "m"); split($2, b, "m"); u = a[1] * 60 + a[2]; s = b[1] * 60 + b[2]
                         printf "%d %d %d", u, s, u + s }' "$TMPDIR.times" 2>/dev/null)
    rm -f "$TMPDIR.times" 2>/dev/null
    read -r m_ut m_st m_cpu <<MAIL_EOF
$m_c
MAIL_EOF
    m_ut=${m_ut:-0}; m_st=${m_st:-0}; m_cpu=${m_cpu:-0}
    mem_peak; m_vmem=$(m_mem "$peak")
    m_wait  # the Begin mail leaves first: a short job's End mail never overtakes it
    m_at=" User             = $m_user
 Queue            = $m_q@${m_host%%.*}
 Host             = $m_host
 Start Time       = $m_start
 End Time         = $m_now"
    if [ "$m_rc" -gt 128 ]; then
        case $m_ev in *[ae]*) ;; *) return 0;; esac
        m_sig=$(( m_rc - 128 )); m_sn=$(kill -l "$m_sig" 2>/dev/null) || m_sn=$m_sig
        m_send "$m_job Aborted" " Exit Status      = $m_rc
 Signal           = $m_sn
$m_at
 CPU              = $(m_hms "$m_cpu")
 Max vmem         = $m_vmem
failed assumedly after job because:
job ${JOB_ID:-0}.${t_id:-1} died through signal $m_sn ($m_sig)"
    else
        case $m_ev in *e*) ;; *) return 0;; esac
        m_send "$m_job Complete" "$m_at
 User Time        = $(m_hms "$m_ut")
 System Time      = $(m_hms "$m_st")
 Wallclock Time   = $(m_hms $(( m_t1 - m_t0 )))
 CPU              = $(m_hms "$m_cpu")
 Max vmem         = $m_vmem
 Exit Status      = $m_rc"
    fi
    m_wait
}
m_start=$(date '+%s %m/%d/%Y %H:%M:%S'); m_t0=${m_start%% *}; m_start=${m_start#* }
case $m_ev in *b*) m_send "$m_job Started" " User       = $m_user
 Queue      = $m_q
 Host       = $m_host
 Start Time = $m_start";; esac
trap 'm_end $?' EXIT
""".replace("@TIMEOUT@", str(MAIL_TIMEOUT))


def script_for(req: JobRequest, *, notify_delay: int = 10, mail: bool = False) -> str:
    """The wrapper script; MAIL adds the -m/-M mail part (the pod's env then carries GRIDSHIM_MAIL)."""
    body = _CONTINUOUS.format(delay=RESPAWN_DELAY) if req.kind is JobKind.CONTINUOUS else _ONE_OFF
    on_term = _ON_TERM_NOTIFY.format(delay=notify_delay) if req.notify else _ON_TERM
    soft = req.soft_seconds
    prelude = _PRELUDE.format(umask=req.umask, fixed=FIXED, on_term=on_term, soft_trap=_SOFT_TRAP if soft else "",
                              soft_start=_SOFT_START.format(seconds=soft) if soft else "",
                              soft_end=_SOFT_END if soft else "")
    return prelude + _ACCOUNTING + _RELEASE + (_MAIL if mail else "") + body


def program_argv(req: JobRequest) -> list[str]:
    if req.shell is not None:
        return [SHELL, "-c", req.shell]
    return list(req.argv)


def wrap_command(req: JobRequest, *, notify_delay: int = 10, mail: bool = False) -> list[str]:
    """The container's `command`: sh -c SCRIPT gridshim-job OUT ERR STDIN NOT_BEFORE PROGRAM ARGS..."""
    err = req.stdout if req.merge else req.stderr
    fixed = [req.stdout, err, req.stdin or "", str(req.not_before or "")]
    return [SHELL, "-c", script_for(req, notify_delay=notify_delay, mail=mail), ARGV0, *fixed, *program_argv(req)]


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
