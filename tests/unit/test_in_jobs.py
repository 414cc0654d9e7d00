"""gridshim inside jobs (issue 13 item 3): the site setting `in_jobs`, what it puts in the pod template,
and the sandbox agent's pure helpers for the ServiceAccount token it projects into pods. The e2e proof on
the real sandbox is tests/e2e/test_jobs_in_jobs.py."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from gridshim import config, gridflags
from gridshim.config import ConfigError, Settings
from gridshim.model import Preset
from gridshim.render import render
from gridshim.translate import SubmitHost, translate

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sandbox import tenancy  # noqa: E402

HOST = SubmitHost(tool="demo", home="/data/project/demo", cwd="/data/project/demo", uid=52001,
                  now=1_800_000_000.0, token="0123456789abcdef", env={"USER": "tools.demo", "PATH": "/home/bin"})


def pod(settings: Settings, *argv: str) -> dict[str, Any]:
    opts = gridflags.parse(list(argv) or ["/bin/true"], default_mem=settings.default_mem)
    req = translate(opts, preset=Preset.JSUB, settings=settings, host=HOST, program=opts.program or "",
                    command_line=" ".join(argv)).request
    (job,) = render(req, settings)
    return job["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def env_of(spec: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in spec["containers"][0]["env"]}


def test_off_by_default_no_token_and_nothing_added() -> None:
    spec = pod(Settings())
    assert spec["automountServiceAccountToken"] is False and "serviceAccountName" not in spec
    assert "PATH" not in env_of(spec) and "GRIDSHIM_CONFIG" not in env_of(spec)


def test_service_account_identity_with_path_and_config() -> None:
    s = config.from_dict({"in_jobs": {"identity": "service-account", "service_account": "jobs",
                                      "path": "/opt/gridshim/bin:/usr/bin:/bin", "config": "/etc/gridshim/jobs.yaml"}})
    spec = pod(s)
    assert spec["serviceAccountName"] == "jobs" and spec["automountServiceAccountToken"] is True
    env = env_of(spec)
    assert env["PATH"] == "/opt/gridshim/bin:/usr/bin:/bin" and env["GRIDSHIM_CONFIG"] == "/etc/gridshim/jobs.yaml"


def test_the_default_service_account_name_is_the_sandboxes() -> None:
    assert pod(config.from_dict({"in_jobs": {"identity": "service-account"}}))["serviceAccountName"] == "gridshim"
    assert tenancy.TOOL_SERVICE_ACCOUNT == "gridshim"  # what the sandbox's tool set-up binds


def test_kubeconfig_identity_mounts_no_token() -> None:
    spec = pod(config.from_dict({"in_jobs": {"identity": "kubeconfig", "path": "/opt/g/bin:/bin"}}))
    assert spec["automountServiceAccountToken"] is False and "serviceAccountName" not in spec
    assert env_of(spec)["PATH"] == "/opt/g/bin:/bin"


def test_a_jobs_own_path_wins() -> None:
    s = config.from_dict({"in_jobs": {"identity": "kubeconfig", "path": "/opt/g/bin:/bin"}})
    env = [(e["name"], e.get("value")) for e in pod(s, "-v", "PATH=/mine", "/bin/true")["containers"][0]["env"]]
    assert [v for k, v in env if k == "PATH"] == ["/mine"]


def test_dollars_in_the_path_survive_the_kubelet() -> None:
    s = config.from_dict({"in_jobs": {"identity": "kubeconfig", "path": "/opt/$(x)/bin"}})
    assert env_of(pod(s))["PATH"] == "/opt/$$(x)/bin"


@pytest.mark.parametrize("value,says", [
    ("yes", "in_jobs: expected a mapping"),
    ({}, None),
    ({"identity": "token"}, "in_jobs.identity: expected service-account or kubeconfig, got 'token'"),
    ({"path": "/bin"}, "in_jobs.identity: expected"),
    ({"identity": "kubeconfig", "colour": 1}, "in_jobs: unknown key(s) colour"),
    ({"identity": "service-account", "service_account": "Bad_Name"}, "is not a ServiceAccount name"),
    ({"identity": "kubeconfig", "path": "bin:/usr/bin"}, "in_jobs.path: expected the jobs' PATH"),
    ({"identity": "kubeconfig", "config": "etc/x.yaml"}, "in_jobs.config: expected the absolute path"),
])
def test_bad_settings_are_one_line(value: Any, says: str | None) -> None:
    if says is None:
        assert config.from_dict({"in_jobs": value}).in_jobs is None
        return
    with pytest.raises(ConfigError) as e:
        config.from_dict({"in_jobs": value}, path="/etc/gridshim/config.yaml")
    assert says in str(e.value) and "\n" not in str(e.value), str(e.value)
