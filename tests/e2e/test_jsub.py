"""Issue 3: jsub, jstart and qcronsub on the real sandbox, through the installed commands."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import Tool

PY = "/usr/bin/python3"


def write_exe(path: Path, text: str, uid: int) -> Path:
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    for p in (path, path.parent):
        os.chown(p, uid, uid)
    return path


def job_objects(tool: Tool, name: str) -> list[dict[str, Any]]:
    items = tool.kubectl_json("get", "jobs")["items"]
    return [j for j in items if j["metadata"].get("annotations", {}).get("gridshim.io/name") == name]


def pods_of(tool: Tool, job: dict[str, Any]) -> list[dict[str, Any]]:
    return tool.kubectl_json("get", "pods", "-l", f"batch.kubernetes.io/controller-uid={job['metadata']['uid']}")["items"]


def running(tool: Tool, name: str) -> bool:
    for job in job_objects(tool, name):
        for pod in pods_of(tool, job):
            if pod["status"].get("phase") == "Running":
                return True
    return False


@pytest.mark.needs_shared_home("reads the files the job writes in the tool's home")
def test_sync_returns_the_jobs_exit_code_and_output_is_appended(tool: Tool) -> None:
    for i in (1, 2):
        proc = tool.run("jsub", "-sync", "y", "-N", "twice", "/bin/sh", "-c", f"echo run{i}; echo oops{i} >&2; exit 7")
        assert proc.returncode == 7, proc.stderr
        assert re.fullmatch(r'Your job \d{7} \("twice"\) has been submitted\n', proc.stdout)
    assert (tool.home / "twice.out").read_text() == "run1\nrun2\n"
    err = (tool.home / "twice.err").read_text()
    assert re.fullmatch(r"oops1\nJob \d{7} exited with exit code 7\.\noops2\nJob \d{7} exited with exit code 7\.\n", err)
    ok = tool.run("jsub", "-sync", "y", "-quiet", "-N", "fine", "/bin/true")
    assert ok.returncode == 0 and ok.stdout == ""  # -quiet: nothing at all on success
    assert (tool.home / "fine.err").read_text() == ""


def test_once_refuses_a_live_duplicate(tool: Tool) -> None:
    first = tool.run("jsub", "-once", "-N", "dup", "/bin/sleep", "300")
    assert first.returncode == 0, first.stderr
    second = tool.run("jsub", "-once", "-N", "dup", "/bin/sleep", "300")
    assert second.returncode == 1
    assert second.stdout == ""
    assert re.fullmatch(r"\[\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\] there is a job named 'dup' already active\n",
                        (tool.home / "dup.err").read_text())
    # -stderr keeps the message on the terminal side instead
    third = tool.run("jsub", "-once", "-stderr", "-N", "dup", "/bin/sleep", "300")
    assert third.returncode == 1 and "there is a job named 'dup' already active" in third.stderr
    assert len(job_objects(tool, "dup")) == 1


@pytest.mark.needs_shared_home("reads the files the job writes in the tool's home")
def test_once_allows_a_new_run_after_the_old_one_finished(tool: Tool) -> None:
    assert tool.run("jsub", "-once", "-sync", "y", "-N", "again", "/bin/true").returncode == 0
    proc = tool.run("jsub", "-once", "-sync", "y", "-N", "again", "/bin/true")
    assert proc.returncode == 0, (tool.home / "again.err").read_text()


@pytest.mark.needs_shared_home("reads the files the job writes in the tool's home")
def test_jstart_restarts_until_exit_zero_and_not_after(tool: Tool) -> None:
    script = write_exe(tool.home / "flaky.sh", "#!/bin/sh\nn=$(cat $HOME/count 2>/dev/null || echo 0)\n"
                       "n=$((n+1)); echo $n > $HOME/count\necho attempt $n\n[ $n -ge 3 ]\n", tool.uid)
    proc = tool.run("jstart", "-N", "flaky", str(script))
    assert proc.returncode == 0, proc.stderr
    job = tool.wait_for(lambda: [j for j in job_objects(tool, "flaky")
                                 if any(c["type"] == "Complete" and c["status"] == "True"
                                        for c in j.get("status", {}).get("conditions", []))],
                        timeout=90, what="the continuous job to complete")[0]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"
    assert (tool.home / "count").read_text() == "3\n"
    assert (tool.home / "flaky.out").read_text() == "attempt 1\nattempt 2\nattempt 3\n"
    respawns = (tool.home / "flaky.err").read_text().splitlines()
    assert len(respawns) == 2
    assert all(re.fullmatch(rf"\[\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\] {script} exited with code 1\. Respawning\.\.\.", r)
               for r in respawns)
    time.sleep(6)
    assert (tool.home / "count").read_text() == "3\n"  # exit 0 ended it: no fourth run


def test_jstart_survives_losing_its_pod(tool: Tool) -> None:
    assert tool.run("jstart", "-N", "keeper", "/bin/sleep", "600").returncode == 0
    tool.wait_for(lambda: running(tool, "keeper"), timeout=60, what="keeper running")
    job = job_objects(tool, "keeper")[0]
    first = pods_of(tool, job)[0]["metadata"]["name"]
    tool.sandbox.kubectl("-n", tool.namespace, "delete", "pod", first, "--wait=false")
    tool.wait_for(lambda: any(p["metadata"]["name"] != first and p["status"].get("phase") == "Running"
                              for p in pods_of(tool, job)), timeout=90, what="a replacement pod")


@pytest.mark.needs_shared_home("reads the files the job writes in the tool's home")
def test_mem_is_enforced_as_address_space(tool: Tool) -> None:
    alloc = f"{PY} -c 'b = bytearray(400 * 1024 * 1024); print(len(b))'"
    small = tool.run("jsub", "-sync", "y", "-mem", "150m", "-N", "small", "/bin/sh", "-c", alloc)
    assert small.returncode == 1
    assert "MemoryError" in (tool.home / "small.err").read_text()
    big = tool.run("jsub", "-sync", "y", "-mem", "1g", "-N", "big", "/bin/sh", "-c", alloc)
    assert big.returncode == 0, (tool.home / "big.err").read_text()
    assert (tool.home / "big.out").read_text() == f"{400 * 1024 * 1024}\n"
    limits = job_objects(tool, "big")[0]["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["memory"] == "1Gi"


@pytest.mark.needs_shared_home("reads the files the job writes in the tool's home")
def test_h_rt_ends_a_job(tool: Tool) -> None:
    t0 = time.monotonic()
    proc = tool.run("jsub", "-sync", "y", "-l", "h_rt=0:0:4", "-N", "slow", "/bin/sleep", "120")
    assert time.monotonic() - t0 < 60
    assert proc.returncode == 1
    assert re.search(r"Job \d{7} exited because of signal SIGKILL", (tool.home / "slow.err").read_text())
    job = job_objects(tool, "slow")[0]
    assert job["spec"]["activeDeadlineSeconds"] == 4
    assert any(c["reason"] == "DeadlineExceeded" for c in job["status"]["conditions"])


@pytest.mark.needs_shared_home("reads the files the job writes in the tool's home")
def test_env_cwd_wd_join_and_paths(tool: Tool) -> None:
    work = tool.home / "work"
    work.mkdir()
    import os

    os.chown(work, tool.uid, tool.uid)
    show = 'echo "FOO=$FOO BAR=$BAR PWD=$(pwd)"; echo to-stderr >&2'
    proc = tool.run("jsub", "-sync", "y", "-v", "FOO=1,BAR", "-cwd", "-j", "y", "-N", "envy",
                    "/bin/sh", "-c", show, cwd=work, env={"BAR": "from-submit-host"})
    assert proc.returncode == 0, proc.stderr
    assert (tool.home / "envy.out").read_text() == f"FOO=1 BAR=from-submit-host PWD={work}\nto-stderr\n"
    assert not (tool.home / "envy.err").exists()
    proc = tool.run("jsub", "-sync", "y", "-wd", str(work), "-o", "rel.log", "-e", str(tool.home / "abs.err"),
                    "-N", "wd", "/bin/sh", "-c", show)
    assert proc.returncode == 0
    assert (work / "rel.log").read_text() == f"FOO= BAR= PWD={work}\n"
    assert (tool.home / "abs.err").read_text() == "to-stderr\n"
    proc = tool.run("jsub", "-sync", "y", "-N", "homedir", "/bin/sh", "-c", "pwd", cwd=work)
    assert (tool.home / "homedir.out").read_text() == f"{tool.home}\n"


@pytest.mark.needs_shared_home("reads the files the job writes in the tool's home")
def test_jsubrc_then_command_line_then_script_directives(tool: Tool) -> None:
    (tool.home / ".jsubrc").write_text("-mem 700m\n-N fromrc\n-quiet\n")
    script = write_exe(tool.home / "my.job.sh", "#!/bin/sh\n#$ -N embedded\n#$ -j y\necho $JOB_NAME\n", tool.uid)
    proc = tool.run("jsub", "-sync", "y", "-N", "cli", str(script))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""  # -quiet came from .jsubrc
    assert (tool.home / "embedded.out").read_text() == "embedded\n"
    job = job_objects(tool, "embedded")[0]
    assert job["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] == "700Mi"
    proc = tool.run("jsub", "-sync", "y", "-quiet", "/bin/true")  # .jsubrc's -N applies when nothing overrides
    assert proc.returncode == 0
    assert job_objects(tool, "fromrc")


HOSTILE = ["a b", '"double"', "it's", "semi;colon", "$(id)", "`id`", "*", "new\nline", "tab\there",
           "ünïcødé", "--", "-N", "x", "$HOME", "$(HOME)", "$$", "$$(HOME)", "back\\slash", ""]


@pytest.mark.needs_shared_home("reads the files the job writes in the tool's home")
def test_hostile_arguments_reach_the_program_byte_exact(tool: Tool) -> None:
    dump = write_exe(tool.home / "argv.py", f"#!{PY}\nimport json, os, sys\n"
                     "open(os.path.expanduser('~/argv.json'), 'w').write(json.dumps(sys.argv[1:]))\n", tool.uid)
    proc = tool.run("jsub", "-sync", "y", "-N", "argv", str(dump), *HOSTILE)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tool.home / "argv.json").read_text()) == HOSTILE


@pytest.fixture
def real_tree(tool: Tool) -> Tool:
    """The files the real Toolforge lines expect, under the sandbox tool's home."""
    h = tool.home
    loop = "#!/bin/sh\nwhile true; do echo alive; sleep 5; done\n"
    write_exe(h / "bin/oge.sh", loop, tool.uid)
    write_exe(h / "bin/categorize_images.sh", "#!/bin/sh\necho categorized\n", tool.uid)
    (h / "venv-py3/bin").mkdir(parents=True)
    (h / "venv-py3/bin/python3").symlink_to(PY)
    (h / "venv/bin").mkdir(parents=True)
    (h / "venv/bin/python").symlink_to(PY)
    (h / "StewardBot.py").write_text("import time\nprint('steward up', flush=True)\ntime.sleep(600)\n")
    (h / "wikibugs.py").write_text("import os, sys, time\nprint(os.environ['PYTHONIOENCODING'], sys.argv[1:], "
                                   "flush=True)\ntime.sleep(600)\n")
    write_exe(h / "ancientpages/run.sh", "#!/bin/sh\npwd\n", tool.uid)
    import os

    for p in [h / "bin", h / "venv-py3", h / "venv-py3/bin", h / "venv", h / "venv/bin", h / "StewardBot.py",
              h / "wikibugs.py", h / "ancientpages"]:
        os.chown(p, tool.uid, tool.uid, follow_symlinks=False)
    (h / "logs").mkdir()
    os.chown(h / "logs", tool.uid, tool.uid)
    return tool


@pytest.mark.needs_shared_home("reads the files the job writes in the tool's home")
def test_real_toolforge_lines_work_unchanged(real_tree: Tool) -> None:
    tool = real_tree
    lines = [
        "jsub -once -continuous -stderr -mem 512m -l release=trusty -N stashbot ~/bin/oge.sh run",
        "jstart -N stewardbot -mem 2G ~/venv-py3/bin/python3 -u ~/StewardBot.py",
        "jsub -release buster -mem 1000m -once -j y -o ~/logs/categorize_images.log -N categorize "
        "~/bin/categorize_images.sh",
        'jsub -N libera-phab -mem 1G -once -v PYTHONIOENCODING="utf8:backslashreplace" -continuous '
        "~/venv/bin/python ~/wikibugs.py --logfile x",
        "cd ancientpages && jsub -once -j y -cwd -N ancientpages -mem 368m -o ancientpages.log run.sh",
    ]
    for line in lines:
        proc = tool.run(line, shell=True)
        assert proc.returncode == 0, (line, proc.stderr)
        assert re.fullmatch(r'Your job \d{7} \("[\w-]+"\) has been submitted\n', proc.stdout), proc.stdout
    for name in ("stashbot", "stewardbot", "libera-phab"):
        tool.wait_for(lambda n=name: running(tool, n), timeout=90, what=f"{name} running")
    tool.wait_for(lambda: (tool.home / "ancientpages/ancientpages.log").exists()
                  and (tool.home / "ancientpages/ancientpages.log").read_text(), timeout=60, what="ancientpages")
    assert (tool.home / "ancientpages/ancientpages.log").read_text() == f"{tool.home}/ancientpages\n"
    tool.wait_for(lambda: (tool.home / "logs/categorize_images.log").exists()
                  and (tool.home / "logs/categorize_images.log").read_text(), timeout=60, what="categorize")
    assert (tool.home / "logs/categorize_images.log").read_text() == "categorized\n"
    tool.wait_for(lambda: (tool.home / "libera-phab.out").exists() and (tool.home / "libera-phab.out").read_text(),
                  timeout=60, what="wikibugs output")
    assert (tool.home / "libera-phab.out").read_text() == "utf8:backslashreplace ['--logfile', 'x']\n"
    stash = job_objects(tool, "stashbot")[0]
    limits = stash["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["memory"] == "512Mi"
    steward = job_objects(tool, "stewardbot")[0]
    res = steward["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert res["limits"]["memory"] == "2Gi" and res["requests"]["memory"] == "1Gi"
    # jstart is -once: the watchdog pattern is a no-op while it runs
    again = tool.run("jstart -N stewardbot -mem 2G ~/venv-py3/bin/python3 -u ~/StewardBot.py", shell=True)
    assert again.returncode == 1


def test_ctrl_c_during_sync_deletes_the_job(tool: Tool) -> None:
    import signal

    # A terminal's Ctrl-C: the test runner itself may have been started with SIGINT ignored (a background
    # job of a non-interactive shell), which the child would inherit, so give jsub the default disposition.
    proc = tool.start("jsub", "-sync", "y", "-N", "interrupted", "/bin/sleep", "300",
                      preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    tool.wait_for(lambda: running(tool, "interrupted"), timeout=60, what="the job to run")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "deleted" in err and "Traceback" not in err
    tool.wait_for(lambda: not job_objects(tool, "interrupted"), timeout=60, what="the job to be deleted")


# -- issue 12, item 3: `-sync y` exit codes when the job is killed or its end is read late ------------------


def running_id(tool: Tool, name: str) -> str:
    """The job id of NAME once qstat shows it running (state r), else ''."""
    rows = [line.split() for line in tool.run("qstat").stdout.splitlines()[2:]]
    return next((r[0] for r in rows if len(r) > 4 and r[2] == name and r[4] == "r"), "")


@pytest.mark.parametrize(("qdel", "own_stderr"), [(("qdel",), False), (("qdel", "-f"), True)],
                         ids=["qdel", "qdel-f"])
def test_qdel_during_jsub_sync_is_the_signal_line_and_exit_1(tool: Tool, qdel: tuple[str, ...],
                                                              own_stderr: bool) -> None:
    """grid-behaviour §1.9: killed by a signal → `Job N exited because of signal SIGKILL`, exit 1 (not the
    "Unable to run job N" + exit 0 of a job that never ran). Without -stderr the line goes to ~/NAME.err."""
    flags = ("-stderr",) if own_stderr else ()
    waiter = tool.start("jsub", "-sync", "y", *flags, "-N", "victim", "/bin/sleep", "300")
    try:
        job_id = tool.wait_for(lambda: running_id(tool, "victim"), timeout=90, what="the job to run")
        assert tool.run(*qdel, job_id).returncode == 0
        out, err = waiter.communicate(timeout=90)
    finally:
        waiter.kill()
    line = f"Job {job_id} exited because of signal SIGKILL\n"
    assert waiter.returncode == 1, (waiter.returncode, out, err)
    assert out == f'Your job {job_id} ("victim") has been submitted\n'
    if own_stderr:
        assert err == line
    else:
        # the job's own stderr shares the file (`Terminated` from the shell of a job stopped by qdel's SIGTERM)
        assert err == "" and (tool.home / "victim.err").read_text().endswith(line)
        assert (tool.home / "victim.err").read_text().count(line) == 1


@pytest.mark.needs_shared_home("the exit code of a job whose pods are gone is read from the tool's accounting file")
@pytest.mark.parametrize(("code", "seen_running"), [(3, True), (3, False), (0, False)],
                         ids=["exit3-paused-while-running", "exit3-paused-before-start", "exit0-paused-before-start"])
def test_a_waiter_paused_past_the_ttl_never_says_unable_to_run(tool: Tool, code: int, seen_running: bool) -> None:
    """Ctrl-Z (or a loaded host) stops `jsub -sync y` while its job runs, ends, and is removed by its TTL with
    its pods. On SIGCONT the watch still delivers the Job's end, but its pods (the exit code) are gone: the
    job's own accounting record gives it (before: `No information available on job N's exit status.`, exit
    1) — never `Unable to run job N` + exit 0 for a job that ran, nor SIGKILL for one nobody killed."""
    import signal

    import yaml

    from conftest import STATE

    cfg = yaml.safe_load((STATE / "gridshim.yaml").read_text())
    cfg["ttl_seconds"] = 2
    site = tool.home / ".site-ttl.yaml"
    site.write_text(yaml.safe_dump(cfg))
    site.chmod(0o644)
    env = {"GRIDSHIM_CONFIG": str(site)}
    # the job waits for a go file so that the waiter is stopped while it runs (or before it starts)
    go = tool.home / "go"
    script = write_exe(tool.home / "ends.sh", f'#!/bin/sh\nwhile [ ! -e {go} ]; do sleep 0.2; done\nexit {code}\n',
                       tool.uid)
    waiter = tool.start("jsub", "-sync", "y", "-stderr", "-N", "paused", str(script), env=env)
    try:
        if seen_running:
            job_id = tool.wait_for(lambda: running_id(tool, "paused"), timeout=90, what="the job to run")
            time.sleep(1.0)  # the waiter has seen the pod start (its watch event)
        else:
            tool.wait_for(lambda: job_objects(tool, "paused"), timeout=60, what="the Job")
        waiter.send_signal(signal.SIGSTOP)
        if not seen_running:
            job_id = tool.wait_for(lambda: running_id(tool, "paused"), timeout=90, what="the job to run")
        go.touch()
        tool.wait_for(lambda: not job_objects(tool, "paused"), timeout=90, what="the TTL to remove the Job")
        # the tool is new: its only pods are this job's
        tool.wait_for(lambda: not tool.kubectl_json("get", "pods")["items"], timeout=90,
                      what="the job's pods to be gone")
        time.sleep(2.0)
        waiter.send_signal(signal.SIGCONT)
        out, err = waiter.communicate(timeout=120)
    finally:
        waiter.send_signal(signal.SIGCONT)
        waiter.kill()
    submitted = f'Your job {job_id} ("paused") has been submitted\n'
    assert "Unable to run job" not in err and "SIGKILL" not in err, err
    if code == 0:
        assert (waiter.returncode, out, err) == (0, submitted + f"Job {job_id} exited with exit code 0.\n", "")
    else:  # the pods are gone; the job's accounting record has its exit code
        assert (waiter.returncode, out, err) == (code, submitted, f"Job {job_id} exited with exit code {code}.\n")


class AdminApi:
    """The sandbox's API server through its admin kubeconfig, one kept-alive connection (http.client):
    what kubectl does not show (a LIST's own resourceVersion; the first event of a watch) or does slowly."""

    def __init__(self, sandbox: Any) -> None:
        import base64
        import http.client
        import ssl

        import yaml

        kc = yaml.safe_load(Path(sandbox.admin_kubeconfig).read_text())
        cl, user = kc["clusters"][0]["cluster"], kc["users"][0]["user"]
        ctx = ssl.create_default_context(cadata=base64.b64decode(cl["certificate-authority-data"]).decode())
        ctx.load_cert_chain(user["client-certificate"], user["client-key"])
        host, _, port = cl["server"].removeprefix("https://").partition(":")
        self.conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=30)

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/merge-patch+json"} if body is not None else {}
        self.conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        resp = self.conn.getresponse()
        return resp.status, resp.read()

    def close(self) -> None:
        self.conn.close()


def watch_history_gone(api: AdminApi, namespace: str, rv: str) -> bool:
    """Whether a watch of NAMESPACE's Jobs from resourceVersion RV is refused as too old (410): the API
    server's watch cache no longer holds the history since RV."""
    status, data = api.call("GET", f"/apis/batch/v1/namespaces/{namespace}/jobs?watch=1&resourceVersion={rv}"
                                   "&timeoutSeconds=1")
    first = data.split(b"\n")[0]
    return status == 200 and first.startswith(b'{"type":"ERROR"') and b"too old resource version" in first


@pytest.mark.needs_sandbox("patches a Job many times through the admin kubeconfig to age the API server's watch cache")
@pytest.mark.needs_shared_home("the exit code is read from the tool's accounting file, which the job writes")
@pytest.mark.parametrize("seen_running", [True, False], ids=["paused-while-running", "paused-before-start"])
def test_a_waiter_paused_until_the_watch_history_is_gone_gets_the_exit_code(tool: Tool, seen_running: bool) -> None:
    """Ctrl-Z for minutes, as the default ttl_seconds (120 s) takes: by SIGCONT the Job and its pods are gone
    and so is the API server's watch history from where the waiter stopped (its watch is refused 410 and its
    re-list finds nothing). That is neither "never ran" (exit 0) nor a kill: the job's own accounting record
    says how it ended, exit 3. (The cache drops old events only when it needs room: other Jobs' updates
    are made here until it has, as a busy cluster's would.)"""
    import signal

    import yaml

    from conftest import STATE

    cfg = yaml.safe_load((STATE / "gridshim.yaml").read_text())
    cfg["ttl_seconds"] = 2
    site = tool.home / ".site-ttl.yaml"
    site.write_text(yaml.safe_dump(cfg))
    site.chmod(0o644)
    assert tool.run("qsub", "-h", "-N", "churn", "-b", "y", "/bin/true").returncode == 0  # held: never runs
    churn = next(j["metadata"]["name"] for j in tool.kubectl_json("get", "jobs")["items"])
    go = tool.home / "go"
    script = write_exe(tool.home / "ends.sh", f'#!/bin/sh\nwhile [ ! -e {go} ]; do sleep 0.2; done\nexit 3\n', tool.uid)
    api = AdminApi(tool.sandbox)
    jobs = f"/apis/batch/v1/namespaces/{tool.namespace}/jobs"
    waiter = tool.start("jsub", "-sync", "y", "-stderr", "-N", "paused", str(script),
                       env={"GRIDSHIM_CONFIG": str(site)})
    try:
        if seen_running:
            job_id = tool.wait_for(lambda: running_id(tool, "paused"), timeout=90, what="the job to run")
            time.sleep(1.0)
        else:
            tool.wait_for(lambda: job_objects(tool, "paused"), timeout=60, what="the Job")
        waiter.send_signal(signal.SIGSTOP)
        rv = json.loads(api.call("GET", jobs)[1])["metadata"]["resourceVersion"]  # the waiter's is not newer
        assert rv, "a LIST's resourceVersion"
        if not seen_running:
            job_id = tool.wait_for(lambda: running_id(tool, "paused"), timeout=90, what="the job to run")
        go.touch()
        tool.wait_for(lambda: not job_objects(tool, "paused") and not tool.kubectl_json("get", "pods")["items"],
                      timeout=90, what="the TTL to remove the Job and its pods")
        deadline = time.monotonic() + 900
        n = 0
        while not watch_history_gone(api, tool.namespace, rv):
            assert time.monotonic() < deadline, f"the watch history since {rv} is still there after {n} updates"
            for _ in range(200):
                n += 1
                assert api.call("PATCH", f"{jobs}/{churn}", {"metadata": {"annotations": {"churn": str(n)}}})[0] == 200
            time.sleep(5)
        waiter.send_signal(signal.SIGCONT)
        out, err = waiter.communicate(timeout=120)
    finally:
        api.close()
        waiter.send_signal(signal.SIGCONT)
        waiter.kill()
    assert (waiter.returncode, out, err) == (3, f'Your job {job_id} ("paused") has been submitted\n',
                                             f"Job {job_id} exited with exit code 3.\n")
