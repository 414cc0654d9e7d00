"""One builder per Kubernetes kind (Job, CronJob), sharing the pod template. Pure: dicts in, dicts out.

Imports model, config and the other render modules only.
"""

from __future__ import annotations

from gridshim.accounting import encode_text
from gridshim.config import Settings
from gridshim.errors import GridshimError
from gridshim.model import JobKind, JobRequest, Manifest
from gridshim.render import labels as L
from gridshim.render.command import escape_expansion, wrap_command

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up, docs/performance.md)
if TYPE_CHECKING:
    from typing import Any

CONTAINER = "job"
# The grid never retried a task: one pod, and a failure is final.
ONE_OFF_BACKOFF_LIMIT = 0
# Continuous jobs restart inside the pod (the respawn loop); the Job only replaces a lost pod
# (deleted, node gone, qmod -rj), so its failure budget is effectively unlimited.
CONTINUOUS_BACKOFF_LIMIT = 2_147_483_647
# CronJob runs: keep one finished run of each outcome for qstat -j / debugging (Toolforge T404176).
CRON_HISTORY = 1
# A run that could not start within this many seconds of its time is skipped, not run late.
CRON_STARTING_DEADLINE = 60
MiB = 1024 * 1024
# Grid Engine's max_aj_instances (sge_conf(5)): at most this many tasks of one array run at once.
MAX_AJ_INSTANCES = 2000


def quantity(nbytes: int) -> str:
    """Bytes → the shortest exact Kubernetes quantity ('512Mi', '2Gi', or plain bytes)."""
    for suffix, size in (("Gi", 1024 * MiB), ("Mi", MiB), ("Ki", 1024)):
        if nbytes % size == 0:
            return f"{nbytes // size}{suffix}"
    return str(nbytes)


def memory_request(req: JobRequest, settings: Settings) -> int:
    requested = req.options.get("mem_request")
    return request_for_limit(req.mem_bytes, settings, requested if isinstance(requested, int) else None)


def request_for_limit(limit: int, settings: Settings, requested: int | None = None) -> int:
    """The memory request that goes with LIMIT bytes: REQUESTED (mem_free) up to the limit, else the site's rule."""
    if requested is not None:
        return min(requested, limit)
    if settings.memory_request == "limit" or limit <= 512 * MiB:
        return limit
    return limit // 2  # Toolforge: big limits reserve half, so the node is not over-booked


def _resources(req: JobRequest, settings: Settings) -> dict[str, Any]:
    """Memory as decided; CPU the site's default, or one whole CPU per parallel slot (qsub -pe)."""
    limits = {"memory": quantity(req.mem_bytes)}
    cpu_request = str(req.cpus) if req.cpus else settings.cpu_request
    if settings.cpu_limit:
        limits["cpu"] = str(req.cpus) if req.cpus else settings.cpu_limit
    return {"limits": limits, "requests": {"memory": quantity(memory_request(req, settings)), "cpu": cpu_request}}


# Linux's limit on one environment string (MAX_ARG_STRLEN), which the copied script travels in.
SCRIPT_ENV_LIMIT = 128 * 1024


# A CronJob run's pod learns its Job's uid from this label (the wrapper derives $JOB_ID from it).
CONTROLLER_UID = "batch.kubernetes.io/controller-uid"


acct_text = encode_text  # a text field of an accounting line (accounting.py: the one record format)


def accounting_fields(req: JobRequest, settings: Settings) -> str | None:
    """GRIDSHIM_ACCT for the wrapper: the file, then the accounting(5) fields known at submission, one
    per line: qname; group:owner:job_name; account:priority; submission time; project:department:
    granted_pe:slots; category (render/command.py's acct_end writes the record)."""
    path = settings.accounting_path(req.home)
    if not path:
        return None
    o = req.options
    user = f"{settings.user_prefix}{req.tool}"
    pe = o.get("pe") if isinstance(o.get("pe"), list) else None
    slots = o.get("slots") if isinstance(o.get("slots"), int) else 1
    category = [f"-l h_vmem={req.mem_bytes}"] + ([f"h_rt={req.wall_seconds}"] if req.wall_seconds else [])
    category_text = ",".join(category) + (f" -pe {pe[0]} {pe[1]}" if pe else "")
    return "\n".join([
        path, acct_text(req.queue), ":".join(acct_text(x) for x in (user, user, req.name)),
        f"{acct_text(str(o.get('account') or 'sge'))}:{int(o.get('priority') or 0)}",
        str(req.submitted or ""),
        ":".join([acct_text(str(o.get("project") or "NONE")), "defaultdepartment",
                  acct_text(pe[0]) if pe else "NONE", str(slots)]),
        acct_text(category_text)])


# -m letters the wrapper acts on (qsub-behaviour §7): b at the start, e at the end, a (and e) when the
# program died through a signal. `s` sends nothing in SGE 8.1.9, nor here.
MAIL_LETTERS = "bea"


def mail_events(events: str | None) -> str:
    """The -m letters in effect, of b, e, a: those after the last `n` ("no mail" from that point on)."""
    text = (events or "").rsplit("n", 1)[-1]
    return "".join(ch for ch in MAIL_LETTERS if ch in text)


def mail_recipients(req: JobRequest, settings: Settings) -> list[str]:
    """One address per -M entry, else the recorded default (LOGNAME@mail_domain); a bare name is the
    site's (NAME@mail_domain), as the grid's MTA qualified a local name with its domain."""
    recorded = str(req.options.get("mail") or f"{settings.user_prefix}{req.tool}@{settings.mail_domain}")
    return [a if "@" in a else f"{a}@{settings.mail_domain}" for a in recorded.split(",") if a]


def mail_fields(req: JobRequest, settings: Settings) -> str | None:
    """GRIDSHIM_MAIL for the wrapper (render/command.py's _MAIL): the letters, the site's mail command,
    From, the owner, the queue, the job name and the recipients, one per line. None when the site sends
    no mail or the job asks for none."""
    events = mail_events(req.options.get("mail_events"))
    to = mail_recipients(req, settings)
    if not settings.mail_command or not events or not to:
        return None
    user = f"{settings.user_prefix}{req.tool}"
    sender = (settings.mail_from or f"{user}@{settings.mail_domain}").replace("{tool}", req.tool)
    one_line = lambda text: " ".join(text.splitlines())  # noqa: E731  (a header holds one line)
    return "\n".join([events, settings.mail_command, sender, user, one_line(req.queue), one_line(req.name),
                      ",".join(to)])


def _env(req: JobRequest, settings: Settings) -> list[Manifest]:
    env: list[Manifest] = [{"name": k, "value": escape_expansion(v)} for k, v in req.env]
    # the wrapper derives a CronJob run's $JOB_ID from its Job's uid, and keys accounting records by it
    env.append({"name": "GRIDSHIM_JOB_UID",
                "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{CONTROLLER_UID}']"}}})
    acct = accounting_fields(req, settings)
    if acct is not None:
        env.append({"name": "GRIDSHIM_POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}})
        env.append({"name": "GRIDSHIM_ACCT", "value": escape_expansion(acct)})
    mail = mail_fields(req, settings)
    if mail is not None:
        env.append({"name": "GRIDSHIM_MAIL", "value": escape_expansion(mail)})
    if req.tasks:
        # the wrapper's SGE_TASK_* (task id = first + JOB_COMPLETION_INDEX * step)
        env.append({"name": "GRIDSHIM_TASKS", "value": " ".join(str(n) for n in req.tasks)})
    if settings.release_command:
        # after its accounting record the job releases its successors (-hold_jid), if any wait
        env.append({"name": "GRIDSHIM_RELEASE", "value": escape_expansion(settings.release_command)})
    if settings.in_jobs:
        # gridshim inside the job (a master job's jsub, qstat, qdel): the commands on PATH, the site config;
        # a -v/-V value of the job's own wins
        given = {k for k, _ in req.env}
        for name, value in (("PATH", settings.in_jobs_path), ("GRIDSHIM_CONFIG", settings.in_jobs_config)):
            if value and name not in given:
                env.append({"name": name, "value": escape_expansion(value)})
    if req.script_text is not None:
        # the kubelet turns the doubled `$$` back into `$`: the process gets the script as written
        size = len(f"GRIDSHIM_SCRIPT={req.script_text}".encode("utf-8", "surrogateescape")) + 1
        if size > SCRIPT_ENV_LIMIT:
            raise GridshimError(f"Unable to run job: the job script is more than {SCRIPT_ENV_LIMIT // 1024 - 1} KiB, "
                                "the most gridshim carries in a job; run a script of that size from a file in "
                                "your home with qsub -b y /bin/sh PATH\nExiting.")
        env.append({"name": "GRIDSHIM_SCRIPT", "value": escape_expansion(req.script_text)})
    return env


def _volumes(settings: Settings) -> tuple[list[Manifest], list[Manifest]]:
    volumes, mounts = [], []
    for v in settings.volumes:
        if v.host_path:
            src: Manifest = {"hostPath": {"path": v.host_path, "type": "Directory"}}
        elif v.claim:
            src = {"persistentVolumeClaim": {"claimName": v.claim}}
        else:
            src = {"nfs": {"server": v.nfs_server, "path": v.nfs_path}}
        volumes.append({"name": v.name, **src})
        mounts.append({"name": v.name, "mountPath": v.mount, "readOnly": v.read_only})
    return volumes, mounts


def _security(uid: int | None) -> tuple[Manifest, Manifest]:
    """PodSecurity `restricted`: non-root, no privilege escalation, no capabilities, RuntimeDefault seccomp."""
    ids = {} if uid is None else {"runAsUser": uid, "runAsGroup": uid}
    pod = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}, **ids}
    if uid is not None:
        pod["fsGroup"] = uid
    container = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "privileged": False,
                 "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}, **ids}
    return pod, container


def pod_identity(settings: Settings) -> Manifest:
    """Who the pod is to the API server. By default nobody: jobs act on files, not on the API, so no token
    is mounted. With `in_jobs: {identity: service-account}` the tool's ServiceAccount (bound by the site to
    the tool's own role, nothing more) and its token, for gridshim run inside the job; with `kubeconfig`
    the job reads the tool's kubeconfig from the home mount (Toolforge's way) and still gets no token."""
    if settings.in_jobs == "service-account":
        return {"serviceAccountName": settings.in_jobs_service_account, "automountServiceAccountToken": True}
    return {"automountServiceAccountToken": False}


def _pod_template(req: JobRequest, settings: Settings, labels: dict[str, str]) -> Manifest:
    pod_sec, container_sec = _security(req.uid)
    volumes, mounts = _volumes(settings)
    container: Manifest = {
        "name": CONTAINER,
        "image": req.image,
        "command": [escape_expansion(part) for part in wrap_command(
            req, notify_delay=settings.grace_seconds // 2, mail=mail_fields(req, settings) is not None)],
        "workingDir": req.workdir,
        "env": _env(req, settings),
        "resources": _resources(req, settings),
        "securityContext": container_sec,
    }
    if mounts:
        container["volumeMounts"] = mounts
    spec: Manifest = {
        "restartPolicy": "OnFailure" if req.kind is JobKind.CONTINUOUS else "Never",
        "terminationGracePeriodSeconds": settings.grace_seconds,
        **pod_identity(settings),
        "enableServiceLinks": False,
        "securityContext": pod_sec,
        "containers": [container],
    }
    if volumes:
        spec["volumes"] = volumes
    if req.tasks and req.wall_seconds:
        spec["activeDeadlineSeconds"] = req.wall_seconds  # -l h_rt limits each task, not the whole array
    return {"metadata": {"labels": labels}, "spec": spec}


def array_parallelism(req: JobRequest) -> int:
    """How many tasks of an array run at once: -tc if given, never more than max_aj_instances."""
    assert req.tasks is not None
    first, last, step = req.tasks
    count = len(range(first, last + 1, step))
    return min(req.task_concurrency or count, count, MAX_AJ_INSTANCES)


def _job_spec(req: JobRequest, settings: Settings, labels: dict[str, str]) -> Manifest:
    spec: Manifest = {
        "backoffLimit": CONTINUOUS_BACKOFF_LIMIT if req.kind is JobKind.CONTINUOUS else ONE_OFF_BACKOFF_LIMIT,
        "ttlSecondsAfterFinished": settings.ttl_seconds,
        "template": _pod_template(req, settings, labels),
    }
    if req.tasks:
        # an array job: one Indexed Job, index i = task first + i*step; a failing task fails only its index
        first, last, step = req.tasks
        del spec["backoffLimit"]
        spec.update(completionMode="Indexed", completions=len(range(first, last + 1, step)),
                    parallelism=array_parallelism(req), backoffLimitPerIndex=0)
    elif req.wall_seconds:
        spec["activeDeadlineSeconds"] = req.wall_seconds
    if req.held:
        spec["suspend"] = True
    if req.rerun and req.kind is not JobKind.CONTINUOUS:
        # -r y: a pod lost with its node (evicted, preempted, node gone) runs again instead of failing
        spec["podFailurePolicy"] = {"rules": [{"action": "Ignore",
                                               "onPodConditions": [{"type": "DisruptionTarget"}]}]}
    return spec


def job(req: JobRequest, settings: Settings) -> Manifest:
    """A one-off or continuous grid job as a batch/v1 Job.

    -once jobs are named after the job so the API server refuses a second one (409); other jobs
    use generateName, because the grid allowed any number of jobs with one name.
    """
    labels = L.labels_for(req)
    base = L.object_name(req.name, limit=57)
    meta: Manifest = {"labels": labels, "annotations": L.annotations_for(req)}
    if req.once:
        meta["name"] = base
    else:
        meta["generateName"] = f"{base}-"
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": _job_spec(req, settings, labels)}


def cronjob(req: JobRequest, settings: Settings, *, name: str | None = None) -> Manifest:
    """A crontab entry as a batch/v1 CronJob; -once entries never overlap (concurrencyPolicy Forbid)."""
    labels = L.labels_for(req, with_id=False)
    spec: Manifest = {
        "schedule": req.schedule,
        "concurrencyPolicy": "Forbid" if req.once else "Allow",
        "startingDeadlineSeconds": CRON_STARTING_DEADLINE,
        "successfulJobsHistoryLimit": CRON_HISTORY,
        "failedJobsHistoryLimit": CRON_HISTORY,
        "jobTemplate": {"metadata": {"labels": labels, "annotations": L.annotations_for(req)},
                        "spec": _job_spec(req, settings, labels)},
    }
    if req.timezone:
        spec["timeZone"] = req.timezone
    meta = {"name": name or L.object_name(req.name, limit=52), "labels": labels,
            "annotations": L.annotations_for(req)}
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta, "spec": spec}
