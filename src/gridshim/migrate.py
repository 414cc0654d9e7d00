"""`gridshim migrate-check`: find every grid command in a crontab and shell scripts and say, for each,
whether it works unchanged, works with a difference (which), or is not supported (why, and instead).

Layer: pure analysis, like translate.py. The crontab is judged by the crontab module itself (each
entry is planned on its own, so one bad line does not hide the others), jsub and qsub lines by the
one submission pipeline (submit.plan), so the verdicts are the code's own; the other commands by their
own option tables (each cli module's OPTIONS: data only, nothing of the edge runs). Files are read only
through `CronHost.read_text`, handed in by the CLI. Imports crontab, shellwords, submit, sgeflags,
gridflags, translate, config, model, errors, and the command modules for their tables.
"""

from __future__ import annotations

import ast
import posixpath
import re
from dataclasses import dataclass
from enum import Enum

from gridshim import crontab as C, gridflags, sgeflags, shellwords as S
from gridshim.cli import crontab as crontab_command, job, jstop, qacct, qalter, qdel, qmod, qstat
from gridshim.config import Settings
from gridshim.errors import GridshimError
from gridshim.model import JobRequest, Preset
from gridshim.record import replace
from gridshim.translate import SubmitHost, default_job_name

SUBMIT: dict[str, Preset] = C.GRID_COMMANDS  # the submitting commands, as a crontab line runs them
# gridshim's other commands: each one's own option table (the options its parser accepts and how many
# values each takes), read from the command itself. qalter, qhold and qrls are one module, as SGE's
# one binary chosen by argv[0].
CONTROL: dict[str, dict[str, int]] = {
    "qstat": qstat.OPTIONS, "qdel": qdel.OPTIONS, "qhold": qalter.QHOLD_OPTIONS, "qrls": qalter.QHOLD_OPTIONS,
    "qalter": qalter.QALTER_OPTIONS, "qacct": qacct.OPTIONS, "jstop": jstop.OPTIONS, "job": job.OPTIONS,
    "qmod": qmod.OPTIONS, "crontab": crontab_command.OPTIONS,
}
# Grid clients gridshim does not provide: why, and what to do instead.
ABSENT: dict[str, tuple[str, str]] = {
    "qresub": ("jobs cannot be copied", "run the jsub command again"),
    "qhost": ("there are no execution hosts to list", "qstat shows your jobs; gridshim doctor shows your quota"),
    "qquota": ("quota lives in the namespace's ResourceQuota", "gridshim doctor shows your quota use"),
    "qrsh": ("there are no interactive grid sessions", "run the command in your shell, or use jsub -sync y to wait "
             "for a batch job"),
    "qlogin": ("there are no interactive grid sessions", "work in your shell on the bastion"),
    "qsh": ("there are no interactive grid sessions", "work in your shell on the bastion"),
    "qmake": ("there is no distributed make", "run make inside one job: jsub -sync y make"),
    "qtcsh": ("there are no interactive grid sessions", "work in your shell on the bastion"),
    "qselect": ("there are no queues to select", "qstat lists your jobs"),
    "qping": ("there is no qmaster", "gridshim doctor checks the API server"),
    "qconf": ("there is no grid configuration", "site settings are in the site config (docs/site-config.md)"),
    "qrstat": ("there are no advance reservations", "leave it out"),
    "qrsub": ("there are no advance reservations", "leave it out"),
    "qrdel": ("there are no advance reservations", "leave it out"),
}
LOCAL = C.LOCAL_RUNNERS
GRID_NAMES = frozenset(SUBMIT) | frozenset(CONTROL) | frozenset(ABSENT) | frozenset(LOCAL)
# Where a script finds the grid's clients: the crontab's directories, and /bin (the same files on a
# merged /usr). A crontab line is read by the crontab module's own rule (crontab.command_name).
COMMAND_DIRS = C.COMMAND_DIRS + ("/bin",)

# qsub options that jsub does not accept (the grid's jsub refused them too, exit 2): why each cannot
# work, and what to do instead. How many values each takes is qsub's table's (sgeflags.OPTIONS).
UNSUPPORTED_OPTIONS: dict[str, tuple[str, str]] = {
    "-t": ("array jobs (-t) are qsub's, not jsub's",
           "submit the array with qsub: qsub -t 1-5 -b y PROGRAM (each task sees $SGE_TASK_ID)"),
    "-tc": ("array job throttling (-tc) is qsub's, not jsub's", "qsub -t 1-N -tc LIMIT -b y PROGRAM"),
    "-hold_jid": ("job dependencies (-hold_jid) are qsub's, not jsub's",
                  "submit the dependent step with qsub: qsub -hold_jid first -N second -b y PROGRAM"),
    "-hold_jid_ad": ("array job dependencies (-hold_jid_ad) are qsub's, not jsub's",
                     "submit both arrays with qsub: qsub -t 1-N -hold_jid_ad first -b y PROGRAM"),
    "-pe": ("parallel environments (-pe) are not supported: a job is one container",
            "submit one job per process; each job gets the site's CPU limit (cpu.limit)"),
    "-r": ("-r (re-run) is not supported", "use -continuous (or jstart) for a job that must be restarted "
           "when it fails"),
    "-notify": ("-notify is not supported", "handle SIGTERM: qdel and jstop send it, then SIGKILL after the "
                "grace period"),
    "-S": ("-S (the job's shell) is not supported",
           "start the script with a #! line, or make the shell the program: jsub /bin/bash script.sh"),
    "-V": ("-V (copy the whole environment) is not supported",
           "name the variables: -v VAR1,VAR2 takes their values from your environment"),
    "-terse": ("-terse is not supported: jsub prints 'Your job N (\"NAME\") has been submitted'",
               "cut the id out: jsub … | awk '{print $3}'"),
    "-h": ("held jobs (-h) are qsub's, not jsub's", "qsub -h -b y PROGRAM, and qrls the job when it should run"),
    "-P": ("projects (-P) are not supported", "leave it out"),
    "-A": ("accounts (-A) are not supported", "leave it out"),
    "-ckpt": ("checkpointing (-ckpt) is not supported", "use -continuous, which restarts the job when it "
              "fails or its node goes away"),
    "-c": ("checkpointing (-c) is not supported", "leave it out"),
    "-js": ("job share (-js) is not supported", "leave it out"),
    "-R": ("reservations (-R) are not supported", "leave it out"),
    "-w": ("-w (verification) is not supported", "leave it out; jsub --dry-run shows what would be created"),
    "-ac": ("job contexts (-ac) are not supported", "pass values with -v VAR=VALUE"),
    "-dc": ("job contexts (-dc) are not supported", "pass values with -v VAR=VALUE"),
    "-sc": ("job contexts (-sc) are not supported", "pass values with -v VAR=VALUE"),
    "-ar": ("advance reservations (-ar) are not supported", "leave it out"),
    "-dl": ("deadlines (-dl) are not supported", "leave it out"),
    "-masterq": ("-masterq is not supported (there are no queues)", "leave it out"),
    "-display": ("-display is not supported", "leave it out"),
    "-binding": ("core binding (-binding) is not supported", "leave it out"),
    "-jsv": ("job submission verifiers (-jsv) are not supported", "leave it out"),
    "-C": ("-C (directive prefix) is not supported: only #$ lines are read", "use #$ lines"),
    "-@": ("option files (-@) are not supported", "put the options in ~/.jsubrc or on the command line"),
    "-clear": ("-clear is not supported", "leave it out"),
    "-shell": ("-shell is not supported", "leave it out"),
    "-pty": ("-pty is not supported", "leave it out"),
}
# crontab's warnings that describe this machine rather than a difference in behaviour
_INFO_WARNINGS = ("was not found in PATH", "does not exist (yet)", "is not executable",
                  "becomes the command's standard input, as in cron")
_SHELLS = ("sh", "bash", "dash", "ksh", "zsh", "mksh", "ash")
# shell words after which the next word is again a command
_KEYWORDS = frozenset({"then", "do", "else", "elif", "if", "while", "until", "!", "{", "time", "exec", "nohup",
                       "command", "builtin", "nice", "xargs", "sudo", "env", "timeout"})
MAX_FOLLOW = 25  # scripts read through the crontab and jsub lines, at most


class Verdict(str, Enum):
    UNCHANGED = "works unchanged"
    DIFFERENT = "works with a difference"
    UNSUPPORTED = "not supported"


class Kind(str, Enum):
    INFO = "note"  # shown, does not change the verdict
    DIFFERENCE = "difference"
    UNSUPPORTED = "unsupported"


@dataclass(frozen=True, kw_only=True)
class Note:
    text: str
    kind: Kind = Kind.DIFFERENCE
    instead: str | None = None


@dataclass(frozen=True, kw_only=True)
class Finding:
    source: str
    line: int  # 1-based
    text: str  # the line as written
    command: str  # what was found: 'jsub', 'cron entry', '#$ lines', …
    job: str | None  # the job it is about
    notes: tuple[Note, ...] = ()
    via: str | None = None  # for a script read because a crontab or jsub line runs it

    @property
    def verdict(self) -> Verdict:
        kinds = {n.kind for n in self.notes}
        if Kind.UNSUPPORTED in kinds:
            return Verdict.UNSUPPORTED
        if Kind.DIFFERENCE in kinds:
            return Verdict.DIFFERENT
        return Verdict.UNCHANGED


@dataclass(frozen=True, kw_only=True)
class Source:
    name: str  # as given, for messages
    text: str
    crontab: bool = False
    path: str | None = None  # absolute, to recognise a script the crontab also runs
    in_job: str | None = None  # "crontab:3" when the script runs inside a job


@dataclass(frozen=True, kw_only=True)
class Result:
    findings: tuple[Finding, ...]
    sources: tuple[str, ...]
    warnings: tuple[str, ...] = ()

    def summary(self) -> dict[str, int]:
        out = {v.value: 0 for v in Verdict}
        for f in self.findings:
            out[f.verdict.value] += 1
        return out


# -- words -----------------------------------------------------------------------------------------

def grid_name(word: str) -> str | None:
    """'jsub' for jsub, /usr/bin/jsub, /usr/local/bin/jsub (likewise every grid client); else None."""
    d, base = posixpath.split(word)
    if d.rstrip("/") not in COMMAND_DIRS and d != "/":
        return None
    return base if base in GRID_NAMES else None


def _word(tok: S.Token, env: dict[str, str]) -> list[str]:
    """A word's value as the shell would give it, when that can be known; otherwise as written."""
    try:
        return S.expand(tok, env)
    except S.Unstatic:
        return [tok.text]


@dataclass
class _Cmd:
    name: str  # the grid command
    argv: list[str]  # its arguments (after the command word)
    text: str  # the simple command as written


def find_commands(line: str, env: dict[str, str]) -> list[_Cmd]:
    """Every grid command in command position in one shell line, including inside $(…) and `…`."""
    tokens = S.tokenize(line)
    found: list[_Cmd] = []
    expect = True  # the next word is a command name
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t.kind == "op":
            if t.is_redirect():
                i += 2  # the operator and its file
                continue
            expect = t.is_op("&&", "||", ";", "|", "&", "(", ";;")
            i += 1
            continue
        for inner in S.substitutions(t):
            try:
                found += find_commands(inner, env)
            except ValueError:
                pass
        lit = t.literal()
        if expect and lit is not None and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", t.text):
            i += 1  # VAR=value before a command
            continue
        if expect and lit in _KEYWORDS:
            i += 1
            continue
        name = grid_name(lit) if (expect and lit is not None) else None
        if name:
            j = i + 1
            argv: list[str] = []
            while j < len(tokens) and not tokens[j].is_op(*S.CONTROLS):
                if tokens[j].kind == "op":  # a redirection: skip it and its target
                    j += 2
                    continue
                for inner in S.substitutions(tokens[j]):
                    try:
                        found += find_commands(inner, env)
                    except ValueError:
                        pass
                argv += _word(tokens[j], env)
                j += 1
            end = tokens[min(j, len(tokens)) - 1].end
            found.append(_Cmd(name=name, argv=argv, text=line[t.start:end].strip()))
            i = j
            expect = False
            continue
        expect = False
        i += 1
    return found


# -- submissions (jsub, jstart, qcronsub, qsub) ----------------------------------------------------

@dataclass
class _Submit:
    job: str | None
    notes: list[Note]
    program: str | None  # resolved path, to follow
    request: JobRequest | None = None


def _strip_unsupported(argv: list[str], *, cmd: str) -> tuple[list[str], list[Note]]:
    """Take the options jsub does not know out of ARGV (with their values), each with its explanation."""
    clean: list[str] = []
    notes: list[Note] = []
    i = 0
    while i < len(argv):
        tok = argv[i]
        if tok == "--" or not tok.startswith("-") or tok == "-":
            clean += argv[i:]
            break
        if tok in gridflags.OPTIONS or (tok in gridflags.HELP and cmd != "qsub"):
            n = 1 + gridflags.OPTIONS.get(tok, 0)
            clean += argv[i:i + n]
            i += n
            continue
        why, instead = UNSUPPORTED_OPTIONS.get(tok, (f"{tok} is not an option jsub accepts", "leave it out"))
        arity = sgeflags.OPTIONS.get(tok, 0) if tok in UNSUPPORTED_OPTIONS else 0
        value = argv[i + 1:i + 1 + arity]
        shown = " ".join([tok, *value])
        grid = "" if cmd == "qsub" else " (the grid's jsub refused it too)"
        notes.append(Note(text=f"{shown}: {why}{grid}", kind=Kind.UNSUPPORTED, instead=instead))
        i += 1 + arity
    return clean, notes


def _option_word(line: str) -> str | None:
    """The option a `#$` line names, whole (`-hold_jid`, `-@`: jsub's own pattern, gridflags.DIRECTIVE, would
    stop at `-hold` and skip `-@`), for the note that explains it."""
    words = line[2:].split(None, 1)
    return words[0] if words and words[0].startswith("-") else None


def _filter_directives(text: str, *, where: str) -> tuple[str, list[Note]]:
    """The script with the `#$` lines gridshim cannot use blanked out, and a note for each."""
    lines = text.splitlines()
    notes: list[Note] = []
    for n, line in gridflags.directive_block(text):
        flag = _option_word(line)
        if flag is None:
            continue
        if flag in gridflags.OPTIONS:
            continue
        why, instead = UNSUPPORTED_OPTIONS.get(flag, (f"{flag} is not an option jsub accepts", "remove it"))
        shown = line.strip()
        notes.append(Note(text=f"{where}:{n}: {shown}: {why} (jsub reads #$ lines; the grid's jsub refused it too)",
                          kind=Kind.UNSUPPORTED, instead=instead))
        lines[n - 1] = "#$"  # keeps the block contiguous, carries no option
    return "\n".join(lines) + "\n", notes


def request_notes(req: JobRequest, settings: Settings) -> list[Note]:
    """What a decided job does differently from the grid, read from the request the submission pipeline made."""
    notes: list[Note] = []
    if req.release and req.release not in settings.images:
        notes.append(Note(text=f"release {req.release}: the site config has no image for it, so the job runs in "
                               f"the default image ({settings.image_for(None)}), not on a {req.release} host",
                          instead="check that the program works there; the site's images are listed in its config"))
    queue = req.queue
    if queue not in ("task", "continuous"):
        instead = "use webservice for web servers" if queue.startswith("webgrid") else None
        notes.append(Note(text=f"-q {queue}: there are no queues; the name is only shown in qstat's queue column",
                          instead=instead))
    for item in req.options.get("ignored") or []:
        flag = str(item).split()[0]
        if flag == "-p":
            notes.append(Note(text=f"{item}: accepted but has no effect (no job priorities)"))
        elif flag == "-now":
            notes.append(Note(text=f"{item}: accepted but has no effect (a job that cannot start yet waits as qw)"))
    if req.not_before is not None:
        notes.append(Note(text="-a: the job's pod starts at once and waits inside until the given time (qstat shows "
                               "qw, as the grid did); its memory is reserved meanwhile"))
    return notes


def _translation_notes(warnings: tuple[str, ...] | list[str]) -> list[Note]:
    out = []
    for w in warnings:
        info = any(s in w for s in _INFO_WARNINGS)
        out.append(Note(text=w, kind=Kind.INFO if info else Kind.DIFFERENCE))
    return out


def analyse_submit(cmd: str, argv: list[str], *, settings: Settings, host: C.CronHost, cwd: str | None = None,
                   env: dict[str, str] | None = None) -> _Submit:
    """A jsub/jstart/qcronsub/qsub command line (outside a crontab): its job name and every note.

    The verdict comes from the one submission pipeline (submit.plan), as the command would run."""
    from gridshim import sgeflags, submit  # noqa: PLC0415

    qsub = cmd == "qsub"
    clean, notes = (_strip_qsub_unsupported(argv) if qsub else _strip_unsupported(argv, cmd=cmd))
    cwd = cwd or host.home
    filtered: dict[str, str] = {}

    def read_text(path: str) -> str | None:
        text = host.read_text(path)
        if text is not None and not qsub and path not in filtered:
            # jsub's #$ lines that gridshim cannot use are blanked (each gets its own note)
            filtered[path], dnotes = _filter_directives(text, where=path)
            notes.extend(dnotes)
        return filtered.get(path, text)

    port = SubmitHost(tool=host.tool, home=host.home, cwd=cwd, env={"PATH": submit.DEFAULT_PATH, **(env or {})},
                      uid=host.uid, isdir=host.isdir, exists=host.exists, executable=host.executable,
                      read_text=read_text)
    name_guess = submit.guess_name(cmd, clean, host=port)
    try:
        p = submit.plan(cmd, clean, settings=settings, host=port, stdin_text="# (stdin)\n")
    except submit.HelpRequested:
        return _Submit(job=None, notes=[Note(text=f"{cmd} -h prints the help text", kind=Kind.INFO)], program=None)
    except sgeflags.QsubError as e:
        text = e.message.replace("\n", " ")  # SGE's two-line answers, on one line of the report
        return _Submit(job=name_guess, program=None,
                       notes=notes + [Note(text=f"qsub: {text} (exit {e.status})", kind=Kind.UNSUPPORTED)])
    except GridshimError as e:
        text = e.message.replace("\nExiting.", "")
        if cmd != "qsub" and text.startswith("the following arguments are required"):
            text = f"no program (jsub: error: {text})"
        return _Submit(job=name_guess, program=None,
                       notes=notes + [Note(text=f"{cmd}: {text}", kind=Kind.UNSUPPORTED)])
    req = p.request
    notes += _translation_notes(p.warnings)
    notes += request_notes(req, settings)
    if p.late_error is not None:
        notes.append(Note(text=f"{cmd}: {p.late_error.message}", kind=Kind.UNSUPPORTED, instead="chmod +x it"))
    program_word = req.argv[0] if req.argv and not qsub else ""
    if not qsub and not p.found and "$" not in program_word and "{" not in program_word:
        notes.append(Note(text=f"program '{program_word}' is not on this machine; it must exist where the job runs "
                               "(the image, or your home)", kind=Kind.INFO))
    return _Submit(job=req.name, notes=notes, program=p.program, request=req)


def _strip_qsub_unsupported(argv: list[str]) -> tuple[list[str], list[Note]]:
    """qsub options gridshim refuses (sgeflags.UNSUPPORTED), taken out with their values, each with its note."""
    from gridshim import sgeflags  # noqa: PLC0415

    clean: list[str] = []
    notes: list[Note] = []
    i = 0
    while i < len(argv):
        tok = argv[i]
        if tok in ("-", "--") or not tok.startswith("-"):
            clean += argv[i:]
            break
        arity = sgeflags.OPTIONS.get(tok, 0)
        if tok in sgeflags.UNSUPPORTED:
            why, instead = UNSUPPORTED_OPTIONS.get(tok, (sgeflags.UNSUPPORTED[tok], "leave it out"))
            shown = " ".join(argv[i:i + 1 + arity])
            notes.append(Note(text=f"{shown}: {why}", kind=Kind.UNSUPPORTED, instead=instead))
        else:
            clean += argv[i:i + 1 + arity]
        i += 1 + arity
    return clean, notes


# -- other commands --------------------------------------------------------------------------------

def _control(cmd: str, argv: list[str]) -> tuple[str | None, list[Note]]:
    """qstat, qdel, jstop, job, qmod, crontab: the job(s) named, and the options gridshim does not take."""
    known = CONTROL[cmd]
    notes: list[Note] = []
    targets: list[str] = []
    if cmd == "jstop":  # jstop passes "$1" to job: one name, whatever it looks like
        return (argv[0] if argv else None), notes
    i = 0
    while i < len(argv):
        a = argv[i]
        if cmd == "crontab" and re.fullmatch(r"-[lrei]{2,}", a):
            i += 1  # combined short flags (-ri), as cron takes them
            continue
        if cmd == "crontab" and a.startswith("-u") and len(a) > 2:
            notes.append(Note(text=f"{a}: only your own tool's name is accepted", kind=Kind.INFO))
            i += 1
            continue
        if a.startswith("-") and a != "-":
            if a in known:
                arity = known[a]
                value = argv[i + 1] if arity and i + 1 < len(argv) else None
                if cmd == "qstat" and a == "-j":
                    if value is None or value.startswith("-"):
                        arity = 0  # qstat -j alone: every job in detail
                    else:
                        targets.append(value)
                if cmd == "qstat" and a == "-u" and value not in (None, "$USER", "$LOGNAME", "${USER}"):
                    notes.append(Note(text=f"-u {value}: qstat shows only what your tool's certificate may list "
                                           "(normally your own tool's jobs)", kind=Kind.INFO))
                if cmd == "qdel" and a == "-u":
                    notes.append(Note(text=f"-u {value}: only your own tool's jobs can be deleted", kind=Kind.INFO))
                if cmd == "qmod" and a in ("-rj", "-r"):
                    notes.append(Note(text="qmod -rj restarts continuous jobs (jstart, -continuous) only; it "
                                           "refuses others, as the grid's task queue did", kind=Kind.INFO))
                if cmd == "qalter" and a in ("-l", "-o", "-e"):
                    notes.append(Note(text=f"qalter {a}: changes a job only while it is held (hqw) and has not "
                                           "started (the grid changed any pending job); a running job's request "
                                           "is refused, as the grid refused it", kind=Kind.DIFFERENCE,
                                      instead="qhold the job first, qalter it, then qrls it"))
                if cmd == "crontab" and a == "-u":
                    notes.append(Note(text=f"-u {value}: only your own tool's name is accepted", kind=Kind.INFO))
                i += 1 + arity
                continue
            if cmd == "qmod":
                notes.append(Note(text=f"qmod {a}: only -rj (restart a continuous job) is supported",
                                  kind=Kind.UNSUPPORTED,
                                  instead="jstop the job, and jstart it again when it should run"))
                i += 1
                continue
            notes.append(Note(text=f"{cmd} {a}: not an option gridshim's {cmd} accepts", kind=Kind.UNSUPPORTED,
                              instead=f"see {cmd} --help or man {cmd}"))
            i += 1
            continue
        if cmd in ("qdel", "job", "qmod", "qhold", "qrls", "qalter"):
            targets += [t for t in a.split(",") if t] if cmd != "job" else [a]
        i += 1
    return (", ".join(targets) or None), notes


# -- sources ---------------------------------------------------------------------------------------

def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Shell lines with backslash-newline joined, here-documents skipped, and multi-line quotes joined."""
    raw = text.split("\n")
    out: list[tuple[int, str]] = []
    i = 0
    while i < len(raw):
        start = i
        line = raw[i]
        while line.endswith("\\") and i + 1 < len(raw):
            i += 1
            line = line[:-1] + raw[i]
        for _ in range(20):  # a quote left open: the string goes on on the next line
            try:
                S.tokenize(line)
                break
            except ValueError:
                if i + 1 >= len(raw):
                    break
                i += 1
                line = line + "\n" + raw[i]
        out.append((start + 1, line))
        here = re.search(r"<<-?\s*['\"]?([A-Za-z_][A-Za-z0-9_]*)['\"]?", line)
        i += 1
        if here:
            word = here.group(1)
            while i < len(raw) and raw[i].strip() != word:
                i += 1
            i += 1
    return out


def _is_python(text: str, name: str) -> bool:
    first = text.split("\n", 1)[0]
    return name.endswith(".py") or (first.startswith("#!") and "python" in first)


def _python_commands(text: str) -> list[tuple[int, list[str], str]]:
    """Grid commands in a Python file: argv lists (["/usr/bin/jsub", "-N", x, …]) and command strings."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    lines = text.split("\n")
    found: list[tuple[int, list[str], str]] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.List, ast.Tuple)) and node.elts:
            first = node.elts[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str) and grid_name(first.value):
                argv = [e.value if isinstance(e, ast.Constant) and isinstance(e.value, str)
                        else f"{{{ast.get_source_segment(text, e) or 'value'}}}" for e in node.elts]
                found.append((node.lineno, argv, lines[node.lineno - 1].strip()))
        elif isinstance(node, ast.Call) and _call_name(node) in _RUNNERS:
            # os.system("qstat -j x"), subprocess.call("jsub …" % x, shell=True)
            for arg in node.args[:1]:
                line = _python_string(arg, text)
                head = line.split(None, 1)[0] if line and line.strip() else ""
                if line is None or not grid_name(head):
                    continue
                try:
                    cmds = find_commands(line, {})
                except ValueError:
                    continue
                for c in cmds:
                    found.append((node.lineno, [c.name, *c.argv], lines[node.lineno - 1].strip()))
    found.sort(key=lambda f: f[0])
    return found


_RUNNERS = frozenset({"system", "popen", "call", "run", "check_call", "check_output", "Popen", "getoutput",
                      "getstatusoutput"})


def _call_name(node: ast.Call) -> str | None:
    f = node.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None


def _python_string(node: ast.expr, text: str) -> str | None:
    """A command string in Python: a literal, "…" % x, or an f-string (expressions shown as {expr})."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        return _python_string(node.left, text)
    if isinstance(node, ast.JoinedStr):
        # the parts that are not string constants are FormattedValues (mypy sees only ast.expr)
        return "".join(v.value if isinstance(v, ast.Constant) and isinstance(v.value, str)
                       else f"{{{ast.get_source_segment(text, v.value) or 'value'}}}"  # type: ignore[attr-defined]
                       for v in node.values)
    return None


class _Checker:
    def __init__(self, *, settings: Settings, host: C.CronHost, follow: bool) -> None:
        self.settings = settings
        self.host = host
        self.follow = follow
        self.findings: list[Finding] = []
        self.warnings: list[str] = []
        self.to_follow: dict[str, str] = {}  # absolute path → "crontab:3"

    def _follow(self, path: str | None, via: str) -> None:
        if self.follow and path and path.startswith("/") and path not in self.to_follow:
            self.to_follow[posixpath.normpath(path)] = via

    def add(self, **kw: object) -> None:
        self.findings.append(Finding(**kw))  # type: ignore[arg-type]

    def command_notes(self, cmd: str, argv: list[str], *, env: dict[str, str], where: str,
                      in_job: str | None) -> tuple[str | None, list[Note]]:
        """The job one grid command is about, and its notes. IN_JOB says which job it would run inside."""
        notes: list[Note] = []
        if in_job and self.settings.in_jobs:  # the site gives jobs the commands and the tool's identity
            notes.append(Note(text=f"it runs inside {in_job}, as the tool: the site runs gridshim inside jobs "
                                   f"(in_jobs: {self.settings.in_jobs})", kind=Kind.INFO))
        elif in_job:
            notes.append(Note(text=f"it runs inside {in_job}, where {cmd} does not exist unless the site's image "
                                   "has gridshim and the job can read your kubeconfig",
                              kind=Kind.UNSUPPORTED,
                              instead="run it from your shell on the bastion; to keep a job running use jstart, or "
                                      "a '* * * * * jstart -N NAME PROGRAM' crontab line"))
        if cmd in SUBMIT:
            sub = analyse_submit(cmd, argv, settings=self.settings, host=self.host, env=env)
            self._follow(sub.program, where)
            return sub.job, notes + sub.notes
        if cmd in ABSENT:
            reason, instead = ABSENT[cmd]
            return None, notes + [Note(text=f"{cmd}: {reason}", kind=Kind.UNSUPPORTED, instead=instead)]
        if cmd in LOCAL:
            return None, [Note(text=f"{cmd} ran a command on the grid's cron host; gridshim has no {cmd}",
                               kind=Kind.UNSUPPORTED, instead="run the command directly")]
        job, more = _control(cmd, argv)
        return job, notes + more

    def command(self, src: Source, line: int, text: str, cmd: str, argv: list[str], *, env: dict[str, str]) -> None:
        """A grid command found in a script (or a Python file)."""
        in_job = f"a job (this script is run by {src.in_job})" if src.in_job else None
        job, notes = self.command_notes(cmd, argv, env=env, where=f"{src.name}:{line}", in_job=in_job)
        self.add(source=src.name, line=line, text=text, command=cmd, job=job, notes=tuple(notes), via=src.in_job)

    def script(self, src: Source) -> None:
        env = {"HOME": self.host.home}
        if gridflags.directive_block(src.text):
            self.directives(src)
        if _is_python(src.text, src.name):
            for line, argv, text in _python_commands(src.text):
                name = grid_name(argv[0]) or argv[0]
                self.command(src, line, text, name, argv[1:], env=env)
            return
        for line, text in _logical_lines(src.text):
            stripped = text.strip()
            if not stripped or stripped.startswith("#"):
                continue
            m = re.match(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(\S*)\s*$", text)
            if m and not m.group(2).startswith(("$(", "`")):
                try:
                    words = S.expand(S.tokenize(m.group(2))[0], env) if m.group(2) else [""]
                    env[m.group(1)] = " ".join(words)
                except (S.Unstatic, ValueError, IndexError):
                    env.pop(m.group(1), None)
            try:
                cmds = find_commands(text, env)
            except ValueError:
                continue
            for c in cmds:
                self.command(src, line, c.text, c.name, c.argv, env=env)

    def directives(self, src: Source) -> None:
        lines = gridflags.directive_block(src.text)
        _, notes = _filter_directives(src.text, where=src.name)
        notes = [replace(n, text=n.text.split(": ", 1)[1]) for n in notes]  # the line is shown already
        name = None
        for _, line in lines:
            m = gridflags.DIRECTIVE.match(line[2:])
            if m and m.group(1) == "-N" and m.group(2):
                name = m.group(2)
        filtered, _ = _filter_directives(src.text, where=src.name)
        try:
            gridflags.directive_events(filtered, source=src.name)
        except GridshimError as e:
            notes.append(Note(text=e.message, kind=Kind.UNSUPPORTED))
        first = lines[0][0]
        self.add(source=src.name, line=first, text=" | ".join(raw.strip() for _, raw in lines), command="#$ lines",
                 job=name or f"{default_job_name(src.name)} (unless jsub -N names it)", notes=tuple(notes),
                 via=src.in_job)

    def crontab(self, src: Source) -> None:
        entries, problems = C.parse(src.text)
        lines = C.split_lines(src.text)
        by_line = {p.line: p for p in problems}
        env_lines = set()
        for idx, line in enumerate(lines):
            body = line.lstrip(" \t")
            if body and not body.startswith("#") and C.is_setting(line) and (idx + 1) not in by_line:
                env_lines.add(idx)
        for p in problems:
            self._cron_problem(src, lines, p)
        for entry in entries:
            self._cron_entry(src, lines, entry, env_lines)

    def _job_of_line(self, command: str, index: int) -> tuple[str, str | None, list[Note], str | None]:
        """(what, job, notes, program) of a cron command, read the way the crontab module reads it."""
        plain: tuple[str, str | None, list[Note], str | None] = ("cron entry", f"cron-{index}", [], None)
        try:
            tokens = S.tokenize(command)
        except ValueError:
            return plain
        env = {"HOME": self.host.home}
        pre = S.prefixes(tokens, command, env, self.host.home)
        if pre.head >= len(tokens) or tokens[pre.head].kind != "word":
            return plain
        name = C.command_name(tokens[pre.head])
        if name not in C.GRID_COMMANDS:
            return plain
        argv: list[str] = []
        k = pre.head + 1
        while k < len(tokens):
            t = tokens[k]
            if t.kind == "op":
                if t.is_op(*S.CONTROLS):
                    break
                k += 2  # a redirection and its file
                continue
            argv += _word(t, env)
            k += 1
        sub = analyse_submit(name, argv, settings=self.settings, host=self.host, cwd=pre.cwd,
                             env={"PATH": C.CRON_PATH, **env})
        notes = [n for n in sub.notes if n.kind is Kind.UNSUPPORTED and n.instead is not None
                 or "(jsub reads #$ lines" in n.text]
        job, program = sub.job, sub.program
        return name, job, notes, program

    def _cron_problem(self, src: Source, lines: list[str], p: C.Problem) -> None:
        text = lines[p.line - 1]
        body = text.lstrip(" \t")
        command = C.command_of(text)
        what, job, _, _ = self._job_of_line(command, p.line - 1) if command else ("cron line", None, [], None)
        if body.lower().startswith("@reboot"):
            start = f"jstart -N {job} …" if what in C.GRID_COMMANDS else f"jstart -N NAME {command.strip()}"
            note = Note(text="@reboot: a Kubernetes CronJob has no @reboot (there is no machine that boots)",
                        kind=Kind.UNSUPPORTED,
                        instead=f"start it once by hand with '{start}', which restarts it when it fails; or "
                                "make the line '* * * * * jstart -N NAME …', which starts it again within a "
                                "minute whenever it is not running")
        else:
            note = Note(text=p.message, kind=Kind.UNSUPPORTED)
        self.add(source=src.name, line=p.line, text=text.strip(), command=what, job=job, notes=(note,))

    def _cron_entry(self, src: Source, lines: list[str], entry: C.Entry, env_lines: set[int]) -> None:
        # Plan this entry alone, with the crontab's VAR= lines and every line's position kept, so the
        # crontab module's own verdict is per line and cron-<i> names stay right.
        masked = "\n".join(line if (i == entry.index or i in env_lines) else "" for i, line in enumerate(lines))
        what, job, notes, program = self._job_of_line(C.percent_split(entry.command)[0], entry.index)
        where = f"{src.name}:{entry.line}"
        self._follow(program, where)
        try:
            plan = C.plan(masked + "\n", settings=self.settings, host=self.host, source=src.name)
        except C.CrontabInvalid as e:
            problems = [Note(text=p.message, kind=Kind.UNSUPPORTED) for p in e.problems]
            if any(n.kind is Kind.UNSUPPORTED for n in notes):
                # the -t / -hold_jid / #$ explanation says it better than jsub's own error
                problems = [n for n in problems if "unrecognized arguments" not in n.text
                            and "not found" not in n.text]
            self.add(source=src.name, line=entry.line, text=entry.text.strip(), command=what, job=job,
                     notes=tuple(notes + problems))
            return
        planned = plan.jobs[0]
        req = planned.request
        out: list[Note] = list(notes)
        if planned.rewritten:
            out.append(Note(text=f"runs as job {req.name}: {planned.rewritten}, as Toolforge's wrapper ran it",
                            kind=Kind.INFO))
            head = self._plain_head(entry)
            if head:
                self._follow(head, where)
        out += _translation_notes(planned.warnings)
        out += request_notes(req, self.settings)
        if entry.macro and self.settings.spread_macros:
            out.append(Note(text=f"{entry.macro} runs at '{req.schedule}', a time spread per tool and job (site "
                                 "config spread_macros), not at cron's fixed time"))
        if planned.watchdog:
            out.append(Note(text=f"jstart watchdog: a CronJob whose runs are the continuous job '{req.name}'; while "
                                 "one runs the line does nothing, as on the grid. A job of that name started by "
                                 "hand (jstart -N …) is not seen by this line, so both would run",
                            instead=f"start '{req.name}' only from this line (or only by hand)"))
        elif req.once and not planned.rewritten:
            out.append(Note(text=f"-once: runs of this line never overlap (the CronJob's concurrencyPolicy is "
                                 f"Forbid); a skipped run is not written to {posixpath.basename(req.stderr)}",
                            kind=Kind.INFO))
        if req.argv:
            self._follow(req.argv[0], where)
        if planned.rewritten:  # grid commands that a plain line runs inside its job
            try:
                cmds = find_commands(C.percent_split(entry.command)[0], {"HOME": self.host.home})
            except ValueError:
                cmds = []
            for c in cmds:
                if c.name not in C.GRID_COMMANDS and c.name not in LOCAL:
                    _, more = self.command_notes(c.name, c.argv, env={"HOME": self.host.home}, where=where,
                                                 in_job=f"job {req.name}")
                    out += [replace(n, text=f"{c.text}: {n.text}") for n in more]
        self.add(source=src.name, line=entry.line, text=entry.text.strip(), command=what, job=req.name,
                 notes=tuple(out))
    def _plain_head(self, entry: C.Entry) -> str | None:
        """The script a plain cron command runs, if its first word is a path."""
        try:
            tokens = S.tokenize(C.percent_split(entry.command)[0])
        except ValueError:
            return None
        env = {"HOME": self.host.home, **dict(entry.env)}
        pre = S.prefixes(tokens, entry.command, env, self.host.home)
        if pre.head >= len(tokens) or tokens[pre.head].kind != "word":
            return None
        words = _word(tokens[pre.head], env)
        if len(words) != 1 or "/" not in words[0]:
            return None
        word = words[0]
        if grid_name(word) or posixpath.basename(word) in _SHELLS:
            nxt = pre.head + 1
            if nxt < len(tokens) and tokens[nxt].kind == "word":
                word = _word(tokens[nxt], env)[0]
            else:
                return None
        return posixpath.normpath(posixpath.join(pre.cwd, word))


def _looks_like_script(text: str) -> bool:
    first = text.split("\n", 1)[0]
    if first.startswith("#!"):
        return any(posixpath.basename(first[2:].split()[0] if first[2:].split() else "") == s or
                   f" {s}" in first for s in _SHELLS + ("python", "python3"))
    return True


def check(sources: list[Source], *, settings: Settings, host: C.CronHost | None = None,
          follow: bool = True) -> Result:
    """Every grid command in SOURCES (a crontab first, if any), then in the scripts they run."""
    host = host or C.CronHost(tool="tool", home="/home/tool")
    ck = _Checker(settings=settings, host=host, follow=follow)
    crontabs = [s for s in sources if s.crontab]
    scripts = [s for s in sources if not s.crontab]
    for s in crontabs:
        ck.crontab(s)
    rc_path = posixpath.join(host.home, ".jsubrc")
    rc = host.read_text(rc_path)
    # jsub lines in scripts add to the list as they are read; a script given by name that a crontab
    # line also runs is read once, as a script that runs inside a job.
    queue = list(scripts)
    done: set[str] = set()
    while True:
        if not queue:
            for path, via in list(ck.to_follow.items()):
                if path in done or len(done) >= MAX_FOLLOW or any(q.path == path for q in scripts):
                    continue
                done.add(path)
                text = host.read_text(path)
                if text is not None and _looks_like_script(text):
                    queue.append(Source(name=path, text=text, path=path, in_job=via))
            if not queue:
                break
        s = queue.pop(0)
        key = s.path or s.name
        if key in done and s.in_job is None:
            continue
        done.add(key)
        if s.path and s.path in ck.to_follow and not s.in_job:
            s = replace(s, in_job=ck.to_follow[s.path])
        ck.script(s)
    if rc is not None:
        try:
            gridflags.jsubrc_events(rc, source=rc_path)
        except GridshimError as e:
            ck.add(source=rc_path, line=1, text=rc.split("\n", 1)[0], command=".jsubrc", job=None,
                   notes=(Note(text=f"{e.message}: every jsub would fail", kind=Kind.UNSUPPORTED,
                               instead="remove the option from ~/.jsubrc"),))
    order = {s.name: i for i, s in enumerate(sources)}
    findings = sorted(ck.findings, key=lambda f: (order.get(f.source, len(order)), f.source, f.line))
    names = [s.name for s in sources]
    names += [f.source for f in findings if f.source not in names]
    return Result(findings=tuple(findings), sources=tuple(dict.fromkeys(names)), warnings=tuple(ck.warnings))
