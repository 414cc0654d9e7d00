"""Issue 8: `gridshim doctor` and `gridshim migrate-check` on the real sandbox, as a tool's own uid."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

from conftest import Sandbox, Tool, write


def lines_of(out: str) -> dict[str, str]:
    """doctor's check lines by check name: {'kubeconfig': 'ok ...', ...}."""
    found = {}
    for line in out.splitlines():
        m = re.match(r"^ (ok|warn|FAIL|skip)\s+(kubeconfig|certificate|API server|API groups|permissions|quota|site config|job mail)"
                     r"\s+(.*)$", line)
        if m:
            found[m.group(2)] = f"{m.group(1)} {m.group(3)}"
    return found


def test_doctor_passes_for_a_tool(tool: Tool) -> None:
    proc = tool.run("gridshim", "doctor")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    checks = lines_of(proc.stdout)
    assert list(checks) == ["kubeconfig", "certificate", "API server", "API groups", "permissions", "quota",
                            "site config", "job mail"]
    assert all(v.startswith("ok ") for v in checks.values()), proc.stdout
    assert f"namespace {tool.namespace}" in checks["kubeconfig"] and tool.kubeconfig in checks["kubeconfig"]
    assert re.search(r"valid for \d+ more days", checks["certificate"])
    assert "answers: Kubernetes v1." in checks["API server"]
    assert f"as user {tool.name} in {tool.namespace}" in checks["permissions"]
    assert "pods 0/40" in checks["quota"]
    assert "batch/v1 jobs and cronjobs are served" in checks["API groups"]
    assert proc.stdout.rstrip().endswith("All 8 checks passed.")
    assert "\x1b[" not in proc.stdout  # not a terminal: plain text


def test_doctor_names_the_missing_kubeconfig(tool: Tool) -> None:
    missing = tool.home / ".kube" / "not-there"
    proc = tool.run("gridshim", "doctor", env={"KUBECONFIG": str(missing)})
    assert proc.returncode == 1
    checks = lines_of(proc.stdout)
    assert checks["kubeconfig"].startswith("FAIL ") and str(missing) in checks["kubeconfig"]
    assert "fix: run 'become <tool>' first, or set KUBECONFIG" in proc.stdout
    assert all(checks[n].startswith("skip ") for n in ("certificate", "API server", "permissions", "quota"))
    assert checks["site config"].startswith("ok ")
    assert proc.stdout.rstrip().endswith("1 problem: kubeconfig.")


def test_doctor_without_home_kubeconfig_names_the_default_path(tool: Tool) -> None:
    proc = tool.run("/bin/sh", "-c", f"unset KUBECONFIG; HOME={tool.home}/elsewhere exec gridshim doctor",
                    env={"KUBECONFIG": ""})
    assert proc.returncode == 1
    assert f"no kubeconfig found (tried {tool.home}/elsewhere/.kube/config)" in proc.stdout


def test_doctor_in_another_tools_namespace_fails_on_permissions(make_tool: Callable[..., Tool]) -> None:
    me, other = make_tool("dr"), make_tool("dr")
    config = Path(me.kubeconfig).read_text().replace(f"namespace: {me.namespace}", f"namespace: {other.namespace}")
    wrong = write(me, ".kube/wrong-namespace", config, 0o600)
    proc = me.run("gridshim", "doctor", env={"KUBECONFIG": str(wrong)})
    assert proc.returncode == 1
    checks = lines_of(proc.stdout)
    assert checks["permissions"].startswith("FAIL ") and f"denied as user {me.name} in {other.namespace}" in \
        checks["permissions"]
    assert "create jobs (needed by jsub, jstart)" in proc.stdout
    assert "this is probably another tool's namespace" in proc.stdout


def test_doctor_catches_limits_that_no_default_job_fits(make_tool: Callable[..., Tool]) -> None:
    small = {"default": {"cpu": "100m", "memory": "128Mi"}, "defaultRequest": {"cpu": "50m", "memory": "64Mi"},
             "max": {"cpu": "1", "memory": "256Mi"}, "min": {"cpu": "10m", "memory": "4Mi"}}
    tool = make_tool("dl", limits=small)
    proc = tool.run("gridshim", "doctor")
    assert proc.returncode == 1
    checks = lines_of(proc.stdout)
    assert checks["quota"].startswith("FAIL ") and "(512M) is more than this namespace's per-container " \
        "maximum (256Mi)" in checks["quota"]
    # ... and it is true: a plain jsub is accepted, but the API server refuses its pod, so it never runs
    assert tool.run("jsub", "-N", "toobig", "/bin/true").returncode == 0
    job = tool.wait_for(lambda: tool.kubectl_json("get", "jobs")["items"], what="the Job")[0]
    refused = tool.sandbox.kubectl("-n", tool.namespace, "create", "--dry-run=server", "-f", "-", check=False,
                                   input=json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                                                     "spec": job["spec"]["template"]["spec"]}))
    assert refused.returncode != 0 and "maximum memory usage per Container is 256Mi" in refused.stderr
    time.sleep(5)
    assert tool.kubectl_json("get", "pods")["items"] == []
    assert re.search(r"toobig\s+tools\.\S+\s+E?qw ", tool.run("qstat").stdout)


CRONTAB = """\
# a tool's grid crontab
*/5 * * * * /usr/bin/jsub -N checker -once -quiet ~/bin/check.sh
*/10 * * * * jsub -t 1-5 -N arr ~/bin/task.sh
@reboot jstart -N bot ~/bin/bot.sh
@daily ~/bin/cleanup.sh > /dev/null 2>&1
* * * * * jstart -N watch ~/bin/bot.sh
"""


def test_migrate_check_names_each_job_and_classifies_each_line(tool: Tool) -> None:
    for name in ("check.sh", "task.sh", "bot.sh"):
        write(tool, f"bin/{name}", "#!/bin/sh\necho hi\n", 0o755)
    write(tool, "bin/cleanup.sh", "#!/bin/sh\nqstat -j checker >/dev/null || jstart -N bot ~/bin/bot.sh\n", 0o755)
    crontab = write(tool, "crontab.txt", CRONTAB)
    proc = tool.run("gridshim", "migrate-check", str(crontab))
    assert proc.returncode == 1, proc.stdout + proc.stderr  # something is not supported
    out = proc.stdout
    expected = [
        (2, "works unchanged: jsub, job 'checker'"),
        (3, "not supported: jsub, job 'arr'"),
        (4, "not supported: jstart, job 'bot'"),
        (5, "works unchanged: cron entry, job 'cron-4'"),
        (6, "works with a difference: jstart, job 'watch'"),
    ]
    for line, text in expected:
        assert f"{crontab}:{line}: {text}" in out, out
    assert "-t 1-5: array jobs (-t) are qsub's, not jsub's" in out and "instead: submit the array with qsub" in out
    assert "@reboot: a Kubernetes CronJob has no @reboot" in out and "jstart -N bot" in out
    # the script the @daily line runs is read too: inside a job, qstat and jstart are not there
    script = tool.home / "bin" / "cleanup.sh"
    assert f"{script}:2: not supported: qstat, job 'checker'" in out
    assert f"{script}:2: not supported: jstart, job 'bot'" in out
    assert out.rstrip().endswith("7 grid commands in 2 files: 2 work unchanged, 1 with a difference, "
                                 "4 not supported.")


def test_migrate_check_on_a_site_that_runs_gridshim_inside_jobs(tool: Tool, sandbox: Sandbox) -> None:
    """A script the crontab's job runs may call qstat and jstart where the site sets in_jobs (issue 13
    item 3): migrate-check says why instead of calling them unsupported."""
    import yaml

    write(tool, "bin/bot.sh", "#!/bin/sh\necho hi\n", 0o755)
    write(tool, "bin/cleanup.sh", "#!/bin/sh\nqstat -j checker >/dev/null || jstart -N bot ~/bin/bot.sh\n", 0o755)
    crontab = write(tool, "injobs.txt", "@daily ~/bin/cleanup.sh\n")
    cfg = yaml.safe_load(sandbox.site_config.read_text())
    cfg["in_jobs"] = {"identity": "service-account"}
    site = write(tool, "in-jobs.yaml", yaml.safe_dump(cfg, sort_keys=False))
    plain = tool.run("gridshim", "migrate-check", str(crontab))
    assert plain.returncode == 1 and "not supported: qstat" in plain.stdout, plain.stdout + plain.stderr
    proc = tool.run("gridshim", "migrate-check", str(crontab), env={"GRIDSHIM_CONFIG": str(site)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    script = tool.home / "bin" / "cleanup.sh"
    assert f"{script}:2: works unchanged: qstat, job 'checker'" in proc.stdout, proc.stdout
    assert "the site runs gridshim inside jobs (in_jobs: service-account)" in proc.stdout, proc.stdout


def test_migrate_check_agrees_with_the_crontab_command(tool: Tool) -> None:
    """What migrate-check calls supported installs; what it calls unsupported, crontab refuses."""
    write(tool, "bin/check.sh", "#!/bin/sh\necho hi\n", 0o755)
    good = write(tool, "good.txt", "*/5 * * * * jsub -N checker -once -quiet ~/bin/check.sh\n@daily date\n")
    bad = write(tool, "bad.txt", "*/5 * * * * jsub -N checker ~/bin/check.sh\n@reboot date\n"
                                 "0 * * * * jsub -t 1-5 -N arr ~/bin/check.sh\n")
    assert tool.run("gridshim", "migrate-check", str(good)).returncode == 0
    assert tool.run("crontab", "--dry-run", str(good)).returncode == 0
    report = tool.run("gridshim", "migrate-check", str(bad)).stdout
    unsupported = sorted(int(m) for m in re.findall(rf"{re.escape(str(bad))}:(\d+): not supported", report))
    refused = tool.run("crontab", "--dry-run", str(bad))
    assert refused.returncode != 0
    assert unsupported == [2, 3]
    assert sorted(int(m) for m in re.findall(r'":(\d+): ', refused.stderr)) == unsupported, refused.stderr


def test_migrate_check_reads_a_crontab_on_stdin(tool: Tool) -> None:
    proc = tool.run("gridshim", "migrate-check", input="0 3 * * * jsub -N nightly -mem 1g /bin/true\n")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "<stdin>:1: works unchanged: jsub, job 'nightly'" in proc.stdout
