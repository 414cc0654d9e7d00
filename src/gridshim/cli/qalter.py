"""qalter, qhold, qrls: one module, the command chosen by the name it was run under, as SGE's qalter.c
chose by argv[0] (qsub-behaviour §5.4, §5.5; the encoding is docs/arrays-and-holds.md).

Every answer is one line on stdout. qhold/qrls exit with the raw status of the first error (3: no such
job, 10: a hold type only operators or managers may use), qalter with 1. A change that changes nothing
prints nothing. Metadata (name, priority, hold, predecessors, h_rt) is patched in place with the Job's
uid and resourceVersion as preconditions; the pod template (memory, -o, -e) can only change on a held
job that never started, by creating the replacement first and deleting the old Job with a uid +
resourceVersion precondition (depends.py, docs/design.md "Dependencies and holds: who releases").
"""

from __future__ import annotations

import copy
import json
import os
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gridshim import config, control, depends, tasks
from gridshim.cli import finish
from gridshim.cli._common import Env, argv, load_cluster, run
from gridshim.errors import ConflictError, ExitCode, GridshimError, JobExistsError, JobNotFoundError, UsageError
from gridshim.model import RUNNING_STATES, Cluster, JobRow, Manifest
from gridshim.render import labels as L
from gridshim.status import job_started

# The options qalter, and qhold and qrls (one table), accept and how many values each takes: its parser refuses any other, and
# gridshim migrate-check reads scripts with it.
QALTER_OPTIONS: dict[str, int] = {"-N": 1, "-p": 1, "-h": 1, "-hold_jid": 1, "-l": 1, "-o": 1, "-e": 1, "-u": 1,
                                  "-help": 0, "--help": 0}
QHOLD_OPTIONS: dict[str, int] = {"-h": 1, "-u": 1, "-help": 0, "--help": 0}
QHOLD_USAGE = "usage: {prog} [-h {{u|o|s}},...] job_task_list\n       {prog} [-h {{u|o|s}},...] -u user_list\n"
QALTER_USAGE = """\
usage: qalter [options] job_task_list | -u user_list

   [-e path_list]                 specify standard error stream path(s)
   [-h hold_list]                 place (u) or remove (n) a user hold
   [-hold_jid job_identifier_list]  define jobnet interdependencies ('' clears)
   [-l resource_list]             request the given resources (replaces the whole list)
   [-N name]                      specify job name
   [-o path_list]                 specify standard output stream path(s)
   [-p priority]                  define job's relative priority
   [-help]                        print this help
"""
EEXIST, ENOOPR = 3, 10  # SGE answer statuses (qhold/qrls exit with them; qalter maps every error to 1)
MEMORY = ("h_vmem", "mem_free", "virtual_free", "h_rss", "s_vmem", "s_rss", "h_data", "s_data")


@dataclass
class Out:
    lines: list[str] = field(default_factory=list)
    status: int = 0

    def ok(self, text: str) -> None:
        self.lines.append(text)

    def error(self, text: str, status: int) -> None:
        self.lines.append(text)
        if not self.status:
            self.status = status


# -- finding the jobs --------------------------------------------------------------------------------

def _targets(env: Env, cluster: Any, specs: list[str], users: list[str], settings: Any, out: Out
             ) -> list[JobRow]:
    caller = control.caller_of(cluster, settings.user_prefix)
    own = [u for u in users if u in (caller, "*")]
    everything = "all" in specs or bool(own)
    specs = [s for s in specs if s != "all"]
    narrowing = control.narrow(specs) if not everything else {}
    rows = control.list_rows(cluster, now=env.clock(), user_prefix=settings.user_prefix, **narrowing).rows
    rows = [r for r in rows if not r.finished]  # finished jobs (zombies) are ignored
    found: list[JobRow] = []
    seen: set[str] = set()
    if everything:
        for r in control.ordered(rows):
            if r.uid not in seen:
                seen.add(r.uid)
                found.append(r)
        if not found:
            out.error(f"There is no job registered for the following users: {control.shown(','.join(users or [caller]))}",
                      EEXIST)
    others = [u for u in users if u not in own]
    if others:
        out.error(f"There is no job registered for the following users: {control.shown(','.join(others))}", EEXIST)
    for spec in specs:
        base = spec.split(".", 1)[0] if spec[:1].isdigit() else spec
        matched = [r for r in control.ordered(rows) if control.matches(r, base)]
        if not matched:
            out.error(f'denied: job "{control.shown(spec)}" does not exist', EEXIST)
        for r in matched:
            if r.uid not in seen:
                seen.add(r.uid)
                found.append(r)
    return found


def _job(cluster: Any, row: JobRow) -> Manifest | None:
    try:
        job = cluster.get("Job", row.object_name)
    except JobNotFoundError:
        return None
    return job if job["metadata"].get("uid") == row.uid else None


def _running(row: JobRow, job: Manifest) -> bool:
    return row.state in RUNNING_STATES or job_started(job)


def _hold_lines(job: Manifest, row: JobRow) -> list[str]:
    if tasks.array_of(job) is None:
        return [f"modified hold of job {row.job_id}"]
    return [f"modified hold of job-array task {row.job_id}.{t}" for t in depends.unfinished_tasks(job)]


def _options(meta: dict[str, Any]) -> dict[str, Any]:
    """The options annotation as written, every key kept (qalter writes it back); {} when it is not a
    JSON object (anyone who may edit the namespace can write it)."""
    raw = (meta.get("annotations") or {}).get(L.A_OPTIONS) or ""
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _dump(options: dict[str, Any]) -> str:
    return json.dumps(options, sort_keys=True, separators=(",", ":"))  # as render/labels writes it


def _options_without_hold(job: Manifest) -> str | None:
    """The options annotation with an old `"hold": true` turned off (None: nothing to change)."""
    value = _options(job["metadata"])
    if not value.get("hold"):
        return None
    value["hold"] = False
    return _dump(value)


def hold_decision(*, hold: bool, running: bool) -> Callable[[Manifest], Manifest | None]:
    """qhold: the annotation, and suspend when nothing of it started (a started job keeps running: hr).
    qrls: drop the annotation; unsuspend only when no predecessor is left."""
    def decide(job: Manifest) -> Manifest | None:
        held = tasks.user_held(job)
        if hold:
            if held:
                return None
            patch: Manifest = {"metadata": {"annotations": {tasks.A_HOLD: "u"}}}
            if not running and not job_started(job) and not (job.get("spec") or {}).get("suspend"):
                patch["spec"] = {"suspend": True}
            return patch
        if not held:
            return None
        ann: dict[str, Any] = {tasks.A_HOLD: None}
        opts = _options_without_hold(job)
        if opts is not None:
            ann[L.A_OPTIONS] = opts
        patch = {"metadata": {"annotations": ann}}
        if not tasks.predecessors_of(job) and (job.get("spec") or {}).get("suspend"):
            patch["spec"] = {"suspend": False}
        return patch
    return decide


def _parse_hold_letters(value: str) -> str | None:
    letters = value.replace(",", "")
    return letters if letters and all(c in "uosn" for c in letters) else None


def _privilege_error(caller: str, letters: str, *, remove: bool) -> str | None:
    if "s" in letters:
        return f'denied: "{caller}" must be manager to {"remove" if remove else "set"} manager hold'
    if "o" in letters:
        return f'denied: "{caller}" must be operator to {"remove" if remove else "set"} operator hold'
    return None


def _no_job(env: Env, usage: str) -> int:
    """SGE's answer to qalter/qhold/qrls without a job: the usage, `ERROR! no option argument`, exit 1."""
    env.stderr.write(usage)
    env.stdout.write("ERROR! no option argument\n")
    return int(ExitCode.ERROR)


def _session(env: Env, cluster: Any) -> tuple[Any, Any, Out, str]:
    """The site settings, the cluster, the answer collector and the caller's grid user name."""
    settings = config.load(env.environ)
    cluster = cluster or load_cluster(env)
    return settings, cluster, Out(), control.caller_of(cluster, settings.user_prefix)


# -- qhold / qrls ------------------------------------------------------------------------------------

def qhold_main(env: Env, argv: list[str], *, release: bool, cluster: Any = None) -> int:
    prog = "qrls" if release else "qhold"
    usage = QHOLD_USAGE.format(prog=prog)
    letters = "u"
    specs: list[str] = []
    users: list[str] = []
    args = list(argv)
    while args:
        a = args.pop(0)
        if a.startswith("-") and a != "-" and a not in QHOLD_OPTIONS:
            env.stderr.write(usage)
            env.stdout.write(f'ERROR! invalid option argument "{control.shown(a)}"\n')
            return int(ExitCode.ERROR)
        if a in ("-help", "--help"):
            env.stdout.write(usage)
            return 0
        if a in ("-h", "-u"):
            if not args:
                env.stderr.write(usage)
                env.stdout.write(f"ERROR! {a} option must have argument\n")
                return int(ExitCode.ERROR)
            v = args.pop(0)
            if a == "-u":
                users += [u for u in v.split(",") if u]
                continue
            parsed = _parse_hold_letters(v)
            if parsed is None or "n" in parsed:
                env.stderr.write(usage)
                env.stdout.write(f'ERROR! invalid option argument "-h {control.shown(v)}"\n')
                return int(ExitCode.ERROR)
            letters = parsed
        else:
            specs += [s for s in a.split(",") if s]
    if not specs and not users:
        return _no_job(env, usage)
    settings, cluster, out, caller = _session(env, cluster)
    for row in _targets(env, cluster, specs, users, settings, out):
        denied = _privilege_error(caller, letters, remove=release)
        if denied:
            out.error(denied, ENOOPR)
            continue
        job = _job(cluster, row)
        if job is None:
            out.error(f'denied: job "{row.job_id}" does not exist', EEXIST)
            continue
        changed = depends.update(cluster, job, hold_decision(hold=not release, running=_running(row, job)))
        if changed is not None:
            for line in _hold_lines(changed, row):
                out.ok(line)
    for line in out.lines:
        env.stdout.write(line + "\n")
    return out.status


# -- qalter ------------------------------------------------------------------------------------------

@dataclass
class Alter:
    name: str | None = None
    priority: int | None = None
    hold: str | None = None  # "u" set, "n" clear
    hold_jid: list[str] | None = None
    resources: list[tuple[str, str]] | None = None
    stdout: str | None = None
    stderr: str | None = None

    def empty(self) -> bool:
        return all(v is None for v in vars(self).values())


class AlterRefused(GridshimError):
    pass


def parse_alter(argv: list[str]) -> tuple[Alter, list[str], list[str]]:
    """qalter's options → (changes, job specs, users). UsageError carries SGE's `ERROR! …` text."""
    from gridshim.sgeflags import QsubError, _resource_pairs  # noqa: PLC0415

    alter = Alter()
    specs: list[str] = []
    users: list[str] = []
    args = list(argv)
    takes = {o for o, n in QALTER_OPTIONS.items() if n}
    while args:
        a = args.pop(0)
        if a in ("-help", "--help"):
            raise HelpRequested()
        if a in takes:
            if not args:
                raise UsageError(f"ERROR! {a} option must have argument")
            v = args.pop(0)
            if a == "-N":
                from gridshim.translate import check_job_name  # noqa: PLC0415

                try:
                    check_job_name(v)
                except UsageError as e:
                    raise UsageError("ERROR! " + e.message.removeprefix("argument -N: ")) from None
                alter.name = v
            elif a == "-p":
                try:
                    p = int(v)
                except ValueError:
                    p = None
                if p is None or not -1023 <= p <= 1024:
                    raise UsageError(f'ERROR! invalid priority "{control.shown(v)}".  Must be an integer from '
                                     "-1023 to 1024")
                alter.priority = p
            elif a == "-h":
                parsed = _parse_hold_letters(v)
                if parsed is None:
                    raise UsageError(f'ERROR! invalid option argument "-h {control.shown(v)}"')
                alter.hold = parsed
            elif a == "-hold_jid":
                alter.hold_jid = [j for j in v.split(",") if j]
            elif a == "-l":
                try:
                    alter.resources = _resource_pairs(v)
                except QsubError as e:
                    raise UsageError("ERROR! " + str(e.args[0] if e.args else e)) from None
            elif a == "-o":
                alter.stdout = v
            elif a == "-e":
                alter.stderr = v
            elif a == "-u":
                users += [u for u in v.split(",") if u]
        elif a.startswith("-") and a != "-" and a not in QALTER_OPTIONS:
            raise UsageError(f'ERROR! option "{control.shown(a)}" is not supported by gridshim\'s qalter '
                             "(it changes -N, -l, -hold_jid, -h, -p, -o and -e)")
        else:
            specs += [s for s in a.split(",") if s]
    return alter, specs, users


class HelpRequested(Exception):
    pass


@dataclass
class _Limits:
    """What qalter's -l asks for: memory and the wall-clock limits, as qsub reads them."""

    mem: int  # bytes
    named: bool  # whether a memory resource was named
    h_rt: int | None  # as asked (None: not given, or INFINITY)
    s_rt: int | None
    deadline: int | None  # activeDeadlineSeconds (sgeflags.wall_clock_limit)
    soft: int | None  # when the wrapper sends SIGUSR1 (sgeflags.soft_warning)


def _memory_and_wall(pairs: list[tuple[str, str]], *, slots: int, default_mem: int) -> _Limits:
    """-l pairs → the memory limit in bytes and the wall-clock limits."""
    from gridshim.sgeflags import SHORTCUTS, parse_memory, parse_time, soft_warning, wall_clock_limit  # noqa: PLC0415

    mem, named = None, False
    limits: dict[str, int | None] = {}
    for name, value in pairs:
        name = SHORTCUTS.get(name, name)
        if name in MEMORY:
            try:
                v = parse_memory(value) * max(slots, 1)
            except ValueError:
                raise UsageError(f'ERROR! wrong type in "{name}={control.shown(value)}" - memory expected') from None
            mem = v if mem is None else max(mem, v)
            named = True
        elif name in ("h_rt", "s_rt"):
            try:
                limits[name] = parse_time(value)
            except ValueError:
                raise UsageError(f'ERROR! wrong type in "{name}={control.shown(value)}" - time expected') from None
    h_rt, s_rt = limits.get("h_rt"), limits.get("s_rt")
    return _Limits(mem=mem if mem is not None else default_mem, named=named, h_rt=h_rt, s_rt=s_rt,
                   deadline=wall_clock_limit(h_rt, s_rt), soft=soft_warning(h_rt, s_rt))


def _check_soft_limit(jid: int, limits: _Limits, options: dict[str, Any]) -> None:
    """s_rt's SIGUSR1 is sent by the job's wrapper, part of the pod template, which Kubernetes does not let
    change: qalter may change h_rt and the deadline, but not when (or whether) the SIGUSR1 comes."""
    from gridshim.sgeflags import soft_warning  # noqa: PLC0415

    if limits.soft != soft_warning(options.get("wall_seconds"), options.get("s_rt")):
        raise AlterRefused(f"denied: gridshim cannot change when job {jid} gets s_rt's SIGUSR1 (its pod sends "
                           "it, and Kubernetes does not let a Job's pod change): qdel it and qsub it again")


def qalter_main(env: Env, argv: list[str], *, cluster: Any = None) -> int:
    try:
        alter, specs, users = parse_alter(argv)
    except HelpRequested:
        env.stdout.write(QALTER_USAGE)
        return 0
    except UsageError as e:
        env.stderr.write(QALTER_USAGE)
        env.stdout.write(e.message + "\n")
        return int(ExitCode.ERROR)
    if not specs and not users:
        return _no_job(env, QALTER_USAGE)
    settings, cluster, out, caller = _session(env, cluster)
    for row in _targets(env, cluster, specs, users, settings, out):
        job = _job(cluster, row)
        if job is None:
            out.error(f'denied: job "{row.job_id}" does not exist', EEXIST)
            continue
        try:
            _alter_one(env, cluster, settings, caller, row, job, alter, out)
        except AlterRefused as e:
            out.error(e.message, 1)
    for line in out.lines:
        env.stdout.write(line + "\n")
    return int(ExitCode.ERROR) if out.status else 0


def _alter_one(env: Env, cluster: Any, settings: Any, caller: str, row: JobRow, job: Manifest, alter: Alter,
               out: Out) -> None:
    jid = row.job_id
    running = _running(row, job)
    options = L.options_of(job["metadata"])
    # -- checks first: a refused qalter changes nothing of that job
    if alter.hold is not None:
        denied = _privilege_error(caller, alter.hold, remove="n" in alter.hold)
        if denied:
            raise AlterRefused(denied)
    if alter.priority is not None and alter.priority > int(options.get("priority") or 0):
        raise AlterRefused(f'denied: "{caller}" must be operator to increase job priority')
    template_change: dict[str, Any] = {}
    limits: _Limits | None = None
    if alter.resources is not None:
        slots = int(options.get("slots") or 1)
        limits = _memory_and_wall(alter.resources, slots=slots, default_mem=settings.default_mem)
        mem = limits.mem
        _check_soft_limit(jid, limits, options)
        if settings.max_mem is not None and mem > settings.max_mem:
            raise AlterRefused(f"denied: h_vmem={mem} is more than the site's maximum of "
                               f"{settings.max_mem // (1024 * 1024)}M")
        if mem != options.get("mem"):
            if running:
                name = next((n for n, _ in alter.resources if n in MEMORY), "h_vmem")
                raise AlterRefused(f'denied: can\'t change consumable resource request "{name}" of running job')
            template_change["mem"] = mem
    for key, value in (("stdout", alter.stdout), ("stderr", alter.stderr)):
        if value is not None:
            template_change[key] = _path(value, row, options, key)
    if template_change and (running or not (job.get("spec") or {}).get("suspend")):
        raise AlterRefused(f"denied: gridshim can change the memory and the -o/-e paths of job {jid} only while "
                           "it is held and has never started (qhold it first)")
    if template_change and options.get("once"):
        raise AlterRefused(f"denied: job {jid} was submitted with -once; gridshim cannot replace it")
    # -- the in-place metadata changes, one preconditioned patch
    new_preds: dict[str, str] | None = None
    if alter.hold_jid is not None:
        import re  # noqa: PLC0415

        jobs, _ = cluster.list("Job", selector=L.selector(cluster.tool))
        for item in alter.hold_jid:  # SGE's order: a task id, then the job itself (atoi), per element
            if item[:1].isdigit() and "." not in item and int(re.match(r"\d+", item).group(0)) == jid:  # type: ignore[union-attr]
                raise AlterRefused(f'denied: job "{jid}" may not be it\'s own jobnet predecessor')
        try:
            new_preds = depends.resolve([j for j in jobs if j["metadata"].get("uid") != row.uid], alter.hold_jid)
        except depends.Rejected as e:
            raise AlterRefused(e.text) from None
        other = depends.cycle_with(jid, new_preds, [j for j in jobs if j["metadata"].get("uid") != row.uid])
        if other is not None:
            raise AlterRefused(f"job {jid} dependency change would generate a dependency cycle with job {other}")

    def decide(j: Manifest) -> Manifest | None:
        meta: dict[str, Any] = {"annotations": {}, "labels": {}}
        spec: dict[str, Any] = {}
        submitted = _options(j["metadata"])
        opts = copy.deepcopy(submitted)
        if alter.name is not None:
            meta["annotations"][L.A_NAME] = alter.name
            meta["labels"][L.NAME] = L.label_value(alter.name)
        if alter.priority is not None:
            opts["priority"] = alter.priority
        if limits is not None:
            assert alter.resources is not None
            opts["resources"] = [list(p) for p in alter.resources]
            opts["wall_seconds"] = limits.h_rt  # as asked, as qsub records it; the deadline can be s_rt's
            opts["s_rt"] = limits.s_rt
            spec["activeDeadlineSeconds"] = limits.deadline
        held = tasks.user_held(j)
        if alter.hold is not None:
            held = "u" in alter.hold
            meta["annotations"][tasks.A_HOLD] = "u" if held else None
            if not held and opts.get("hold"):
                opts["hold"] = False
        preds = tasks.predecessors_of(j)
        if new_preds is not None:
            preds = new_preds
            meta["annotations"][tasks.A_PREDECESSORS] = tasks.predecessors_text(preds) if preds else None
            meta["annotations"][tasks.A_PREDECESSORS_REQ] = ",".join(alter.hold_jid or []) or None
            meta["annotations"][tasks.A_PREDECESSOR_IDS] = ",".join(sorted(preds)) or None
            meta["labels"][tasks.WAITING] = "true" if preds else None
        if (alter.hold is not None or new_preds is not None) and not running and not job_started(j):
            spec["suspend"] = bool(held or preds or template_change)
        if opts != submitted:
            meta["annotations"][L.A_OPTIONS] = _dump(opts)
        patch: Manifest = {"metadata": {k: v for k, v in meta.items() if v}}
        if spec:
            patch["spec"] = spec
        return patch if patch["metadata"] or spec else None

    lines: list[str] = []
    if alter.name is not None:
        lines.append(f"modified job name of job {jid}")
    if alter.priority is not None:
        lines.append(f"{caller}@{socket.gethostname()} sets scheduling priority of job {jid} to {alter.priority}")
    if alter.resources is not None:
        lines.append(f"modified hard resource list of job {jid}")
    if alter.hold is not None:
        lines.append(f"modified hold of job {jid}")
    if new_preds is not None:
        lines += [f"modified job id hold list of job {jid}",
                  f"   blocking jobs: {','.join(sorted(new_preds)) or 'NONE'}", "   exited jobs:   NONE"]
    if template_change:
        job = _replace(cluster, settings, job, template_change)
    updated = depends.update(cluster, job, decide)
    if new_preds:
        depends.write_markers(env.home, jid, new_preds)
        backstop = depends.backstop_manifest(settings, tool=cluster.tool, uid=_uid_of(job), home=env.home)
        depends.submitted(cluster, updated or job, backstop=backstop)
    if alter.stdout is not None:
        lines.append(f"modified stdout path list of job {jid}")
    if alter.stderr is not None:
        lines.append(f"modified stderr path list of job {jid}")
    for line in lines:
        out.ok(line)


def _uid_of(job: Manifest) -> int | None:
    sec = ((((job.get("spec") or {}).get("template") or {}).get("spec") or {}).get("securityContext") or {})
    uid = sec.get("runAsUser")
    return uid if isinstance(uid, int) else None


def _path(value: str, row: JobRow, options: dict[str, Any], key: str) -> str:
    """-o/-e for a job that exists: [host:]path; relative to the job's working directory; a directory
    gets qsub's default file name NAME.oJOBID / NAME.eJOBID."""
    path = value.split(":", 1)[1] if ":" in value and not value.startswith("/") else value
    workdir = str(options.get("workdir") or options.get("home") or "/")
    path = os.path.normpath(os.path.join(workdir, os.path.expanduser(path)))
    if value.endswith("/") or os.path.isdir(path):
        path = os.path.join(path, f"{row.name}.{'o' if key == 'stdout' else 'e'}{row.job_id}")
    return path


# Labels the API server adds to a Job's pod template and selector; a new Job must not carry them.
_SERVER_LABELS = ("batch.kubernetes.io/controller-uid", "controller-uid", "batch.kubernetes.io/job-name", "job-name")


def replacement_manifest(job: Manifest, change: dict[str, Any], settings: Any) -> Manifest:
    """A copy of JOB (suspended, same job-id label, same annotations) with CHANGE applied to its pod
    template, under a new object name."""
    import copy  # noqa: PLC0415

    from gridshim.render.command import escape_expansion  # noqa: PLC0415
    from gridshim.render.manifests import quantity, request_for_limit  # noqa: PLC0415

    new = copy.deepcopy({k: job[k] for k in ("apiVersion", "kind", "metadata", "spec")})
    meta = new["metadata"]
    old_name = meta["name"]
    for k in ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields", "selfLink",
              "deletionTimestamp", "deletionGracePeriodSeconds", "finalizers", "ownerReferences", "namespace"):
        meta.pop(k, None)
    suffix = os.urandom(3).hex()
    meta["name"] = f"{old_name[:55].rstrip('-')}-{suffix}"
    spec = new["spec"]
    spec.pop("selector", None)
    spec.pop("manualSelector", None)
    spec["suspend"] = True
    tmeta = spec["template"].setdefault("metadata", {})
    tlabels = tmeta.get("labels") or {}
    for k in _SERVER_LABELS:
        tlabels.pop(k, None)
    container = spec["template"]["spec"]["containers"][0]
    opts = _options(meta)
    if "mem" in change:
        mem = change["mem"]
        res = container.setdefault("resources", {})
        res.setdefault("limits", {})["memory"] = quantity(mem)
        res.setdefault("requests", {})["memory"] = quantity(request_for_limit(mem, settings))
        opts["mem"] = mem
    command = container.get("command") or []
    merged = len(command) > 5 and command[4] == command[5]
    if "stdout" in change and len(command) > 5:
        command[4] = escape_expansion(change["stdout"])
        if merged:
            command[5] = command[4]
        opts["stdout"] = change["stdout"]
    if "stderr" in change and len(command) > 5 and not merged:
        command[5] = escape_expansion(change["stderr"])
        opts["stderr"] = change["stderr"]
    meta.setdefault("annotations", {})[L.A_OPTIONS] = _dump(opts)
    return new


def _replace(cluster: Cluster, settings: Any, job: Manifest, change: dict[str, Any]) -> Manifest:
    """Create the replacement first, then delete the old Job only if it is exactly as read (uid +
    resourceVersion). If the old one changed meanwhile (released, started, altered), the replacement is
    deleted and the change refused: the job is never lost, and never doubled."""
    new = cluster.create(replacement_manifest(job, change, settings))
    meta = job["metadata"]
    try:
        cluster.delete("Job", meta["name"], uid=meta.get("uid"), resource_version=meta.get("resourceVersion"),
                       propagation="Background")
    except (ConflictError, JobNotFoundError, JobExistsError):
        try:
            cluster.delete("Job", new["metadata"]["name"], uid=new["metadata"].get("uid"), propagation="Background")
        except JobNotFoundError:
            pass
        raise AlterRefused(f"denied: job {L.job_id_of(meta)} changed while it was being altered (released or "
                           "started); nothing was changed") from None
    return new


def main() -> None:
    """qalter, qhold and qrls are this one entry point; the name it runs under chooses (SGE's argv[0])."""
    prog = os.path.basename(sys.argv[0]) or "qalter"
    if prog == "qhold":
        finish(run("qhold", lambda env: qhold_main(env, argv(), release=False)))
    if prog == "qrls":
        finish(run("qrls", lambda env: qhold_main(env, argv(), release=True)))
    finish(run("qalter", lambda env: qalter_main(env, argv())))

