"""Site config: every key read, and a clear one-line error for every bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridshim import config
from gridshim.config import ConfigError, from_dict

MiB = 1024 * 1024


def test_defaults_when_no_file() -> None:
    s = config.load({})  # /etc/gridshim/config.yaml absent on test machines
    assert s.default_mem == 512 * MiB and s.uid == "self"


def test_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        config.load({"GRIDSHIM_CONFIG": str(tmp_path / "nope.yaml")})


def test_full_file(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(
        "images: {default: img:bookworm, buster: img:buster}\n"
        "volumes:\n- {name: home, mount: /data/project, hostPath: /data/project}\n"
        "- {name: dumps, mount: /public/dumps, nfs: {server: nfs.example, path: /dumps}, readOnly: true}\n"
        "- {name: data, mount: /data, claim: tool-data}\n"
        "home: /data/project/{tool}\nuid: passwd:tools.{tool}\n"
        "memory: {default: 256M, max: 8G, request: limit}\ncpu: {request: 50m, limit: null}\n"
        "ttl_seconds: 30\ngrace_seconds: 15\nspread_macros: true\nmail_domain: example.org\nuser_prefix: ''x''\n"
        .replace("''x''", "tools."))
    s = config.load({"GRIDSHIM_CONFIG": str(tmp_path / "c.yaml")})
    assert s.image_for("buster") == "img:buster" and s.image_for("trusty") == "img:bookworm"
    assert [v.name for v in s.volumes] == ["home", "dumps", "data"] and s.volumes[1].read_only
    assert s.default_mem == 256 * MiB and s.max_mem == 8192 * MiB and s.memory_request == "limit"
    assert s.cpu_limit is None and s.ttl_seconds == 30 and s.spread_macros and s.home_for("x") == "/data/project/x"


@pytest.mark.parametrize("data,message", [
    ({"bogus": 1}, "unknown key(s) bogus"),
    ({"memory": "1G"}, "memory: expected a mapping"),
    ({"memory": {"defualt": "1G"}}, "memory: unknown key(s) defualt"),
    ({"memory": {"default": "lots"}}, "memory.default: expected a size"),
    ({"memory": {"default": -5}}, "expected a positive size"),
    ({"memory": {"default": "8G", "max": "1G"}}, "memory.default (8192M) is larger than memory.max (1024M)"),
    ({"memory": {"max": "256M"}}, "memory.default (512M) is larger than memory.max (256M)"),
    ({"uid": "owner"}, "uid: unknown policy 'owner'"),
    ({"images": {"default": None}}, "images.default: expected a non-empty string"),
    ({"spread_macros": "no"}, "spread_macros: expected true or false"),
    ({"ttl_seconds": True}, "ttl_seconds: expected a whole number"),
    ({"volumes": [{"mount": "/x", "hostPath": "/x", "readOnly": "false"}]}, "readOnly: expected true or false"),
    ({"volumes": [{"mount": "rel", "hostPath": "/x"}]}, "mount: expected an absolute path"),
    ({"volumes": [{"name": "Bad_Name", "mount": "/x", "hostPath": "/x"}]}, "is not a valid volume name"),
    ({"volumes": [{"mount": "/x", "hostPath": "/x", "claim": "c"}]}, "exactly one of hostPath, nfs, claim"),
    ({"cpu": {"limit": ""}}, "cpu.limit: expected a non-empty string"),
])
def test_bad_values_name_the_key(data: dict, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        from_dict(data, path="/etc/gridshim/config.yaml")
    assert message in str(e.value) and "/etc/gridshim/config.yaml" in str(e.value)
    assert "\n" not in str(e.value)
