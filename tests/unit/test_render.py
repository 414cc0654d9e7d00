"""Rendering: golden manifests per scenario, labels/names/ids round trips, the command wrapper."""

from __future__ import annotations

import difflib
import os
import subprocess
from pathlib import Path

import pytest

from gridshim import gridflags
from gridshim.config import Settings, Volume
from gridshim.model import Preset
from gridshim.render import labels as L
from gridshim.render import render, to_yaml
from gridshim.render.command import unwrap_command, wrap_command
from gridshim.translate import SubmitHost, translate

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
HOST = SubmitHost(tool="demo", home="/data/project/demo", cwd="/data/project/demo", uid=52001,
                  now=1_800_000_000.0, token="0123456789abcdef", env={"USER": "tools.demo"})
SETTINGS = Settings(images={"default": "registry/bookworm:latest"},
                    volumes=(Volume(name="home", mount="/data/project", host_path="/data/project"),))


def assert_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("GRIDSHIM_UPDATE_GOLDEN") == "1" or not path.exists():
        if os.environ.get("CI") == "true" and not path.exists():
            pytest.fail(f"golden file {path} is missing; generate it locally with GRIDSHIM_UPDATE_GOLDEN=1")
        path.write_text(text)
    expected = path.read_text()
    if text != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), text.splitlines(True), str(path), "actual"))
        pytest.fail(f"{name} differs from its golden file (GRIDSHIM_UPDATE_GOLDEN=1 to accept):\n{diff}")


def request(*argv: str, preset: Preset = Preset.JSUB, **kw: object):  # type: ignore[no-untyped-def]
    opts = gridflags.parse(list(argv), default_mem=SETTINGS.default_mem)
    return translate(opts, preset=preset, settings=SETTINGS, host=HOST, program=opts.program or "",
                     command_line=" ".join(argv), **kw).request  # type: ignore[arg-type]


@pytest.mark.parametrize("golden,argv,preset,kw", [
    ("jsub_basic.yaml", ["/usr/bin/env"], Preset.JSUB, {}),
    ("jsub_once_mem_join.yaml", ["-once", "-mem", "1g", "-j", "y", "-o", "logs/x.log", "-l", "h_rt=1:00:00",
                                 "-N", "Bad_Name.x", "/bin/prog", "a b"], Preset.JSUB, {}),
    ("jstart_continuous.yaml", ["-N", "stewardbot", "-mem", "2G", "/usr/bin/python3", "-u", "bot.py"],
     Preset.JSTART, {}),
    ("cron_daily.yaml", ["-N", "taxonomy", "-once", "/usr/bin/python3", "t.py"], Preset.JSUB,
     {"schedule": "0 0 * * *", "schedule_text": "@daily", "timezone": "Europe/Berlin"}),
])
def test_golden_manifests(golden: str, argv: list[str], preset: Preset, kw: dict) -> None:
    assert_golden(golden, to_yaml(render(request(*argv, preset=preset, **kw), SETTINGS)))


def test_pod_is_restricted_compliant() -> None:
    (job,) = render(request("/bin/p"), SETTINGS)
    pod = job["spec"]["template"]["spec"]
    c = pod["containers"][0]["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == 52001
    assert c["allowPrivilegeEscalation"] is False and c["capabilities"] == {"drop": ["ALL"]}
    assert c["seccompProfile"] == {"type": "RuntimeDefault"}


def test_memory_request_policy() -> None:
    small = render(request("-mem", "256m", "/bin/p"), SETTINGS)[0]
    big = render(request("-mem", "2g", "/bin/p"), SETTINGS)[0]
    res = lambda j: j["spec"]["template"]["spec"]["containers"][0]["resources"]  # noqa: E731
    assert res(small)["requests"]["memory"] == "256Mi" == res(small)["limits"]["memory"]
    assert res(big)["requests"]["memory"] == "1Gi" and res(big)["limits"]["memory"] == "2Gi"
    mf = render(request("-l", "mem_free=100M", "/bin/p"), SETTINGS)[0]
    assert res(mf)["requests"]["memory"] == "100Mi"


@pytest.mark.parametrize("name", ["bot", "Bot", "bot_2", "bot.2", "cron-tools.database_backup", "ü", "a" * 80,
                                  "-lead", "x" * 57 + "Y"])
def test_object_names_are_valid_deterministic_and_distinct(name: str) -> None:
    import re

    n = L.object_name(name, limit=57)
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", n) and len(n) <= 57
    assert n == L.object_name(name, limit=57)
    v = L.label_value(name)
    assert re.fullmatch(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]", v) and len(v) <= 63


def test_distinct_names_never_collide() -> None:
    names = ["bot", "Bot", "bot_", "bot-", "bot.", "BOT", "b-o-t", "bot_2", "bot.2", "bot-2"]
    assert len({L.object_name(n) for n in names}) == len(names)
    assert len({L.label_value(n) for n in names}) == len(names)


def test_label_and_annotation_round_trip() -> None:
    req = request("-N", "cron-tools.database_backup", "-mem", "1g", "/bin/p")
    (job,) = render(req, SETTINGS)
    meta = {**job["metadata"], "uid": "u-1"}
    assert L.name_of(meta) == req.name
    assert L.job_id_of(meta) == req.job_id == L.job_id_for(req.token)
    assert L.options_of(meta)["mem"] == 1024 ** 3
    assert L.kind_of(meta).value == "one-off"


def test_wrap_unwrap_round_trip() -> None:
    req = request("-j", "y", "-i", "in.txt", "/bin/prog", "a b", "$(x)")
    (job,) = render(req, SETTINGS)
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert "$$(x)" in container["command"]  # survives the kubelet's $(VAR) expansion
    back = unwrap_command(container["command"])
    assert back is not None
    assert back["argv"] == ["/bin/prog", "a b", "$(x)"] and back["merge"] and back["stdin"] == "/data/project/demo/in.txt"
    assert unwrap_command(["/bin/true"]) is None


HOSTILE = ["a b", '"', "'", ";", "$(id)", "`id`", "*", "\n", "ü", "--", "$HOME", "\\", ""]


def test_wrapper_passes_arguments_byte_exact_through_a_real_shell(tmp_path: Path) -> None:
    req = request("-o", str(tmp_path / "o"), "-e", str(tmp_path / "e"), "/usr/bin/printf", "[%s]\\n", *HOSTILE)
    cmd = wrap_command(req)
    subprocess.run(cmd, check=True, cwd=tmp_path)
    assert (tmp_path / "o").read_text() == "".join(f"[{a}]\n" for a in HOSTILE)
    subprocess.run(cmd, check=True, cwd=tmp_path)  # appends, like the grid
    assert (tmp_path / "o").read_text().count("[a b]") == 2


def test_continuous_wrapper_respawns_with_jsubs_line(tmp_path: Path) -> None:
    counter = tmp_path / "n"
    script = tmp_path / "s.sh"
    script.write_text(f"#!/bin/sh\nn=$(cat {counter} 2>/dev/null || echo 0); echo $((n+1)) > {counter}; [ $n -ge 1 ]\n")
    script.chmod(0o755)
    req = request("-o", str(tmp_path / "o"), "-e", str(tmp_path / "e"), str(script), preset=Preset.JSTART)
    cmd = wrap_command(req)
    cmd[2] = cmd[2].replace("pause 5", "pause 0")
    assert subprocess.run(cmd).returncode == 0
    import re

    assert re.fullmatch(rf"\[[\dT:-]+\] {script} exited with code 1\. Respawning\.\.\.\n", (tmp_path / "e").read_text())


def test_dry_run_yaml_reads_back_to_the_same_manifests() -> None:
    import yaml

    manifests = render(request("-N", "x", "/bin/p", *HOSTILE), SETTINGS)
    assert list(yaml.safe_load_all(to_yaml(manifests))) == manifests


def _start_wrapper(tmp_path: Path, *argv: str, preset: Preset = Preset.JSUB, extra: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    req = request("-o", str(tmp_path / "o"), "-e", str(tmp_path / "e"), *extra, *argv, preset=preset)
    cmd = wrap_command(req)
    return subprocess.Popen(cmd, cwd=tmp_path, start_new_session=True)


TERM_AWARE = ("import signal, sys, time, pathlib\n"
              "def bye(*_): pathlib.Path(sys.argv[1]).write_text('got TERM'); sys.exit(3)\n"
              "signal.signal(signal.SIGTERM, bye)\n"
              "pathlib.Path(sys.argv[1] + '.ready').write_text('')\n"
              "time.sleep(60)\n")


@pytest.mark.parametrize("preset", [Preset.JSUB, Preset.JSTART])
def test_sigterm_to_the_wrapper_alone_reaches_the_program(tmp_path: Path, preset: Preset) -> None:
    """On a node only PID 1 (the wrapper) gets SIGTERM: it must forward it, and a continuous job stops."""
    import signal
    import sys
    import time

    marker = tmp_path / "m"
    proc = _start_wrapper(tmp_path, sys.executable, "-c", TERM_AWARE, str(marker), preset=preset)
    deadline = time.monotonic() + 20
    while not (tmp_path / "m.ready").exists():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)  # the wrapper only, not its process group
    assert proc.wait(timeout=20) == 3
    assert marker.read_text() == "got TERM"
    assert "Respawning" not in (tmp_path / "e").read_text()


def test_stdin_from_i_reaches_the_program(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("from stdin\n")
    proc = _start_wrapper(tmp_path, "/bin/cat", extra=("-i", str(tmp_path / "in.txt")))
    assert proc.wait(timeout=20) == 0
    assert (tmp_path / "o").read_text() == "from stdin\n"
    proc = _start_wrapper(tmp_path, "/bin/cat")
    assert proc.wait(timeout=20) == 0  # no -i: /dev/null, never the submitter's terminal


def test_exit_code_and_signal_death_are_passed_on(tmp_path: Path) -> None:
    assert _start_wrapper(tmp_path, "/bin/sh", "-c", "exit 42").wait(timeout=20) == 42
    assert _start_wrapper(tmp_path, "/bin/sh", "-c", "kill -KILL $$").wait(timeout=20) == 137
