"""Site config: every key read, and a clear one-line error for every bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridshim import config
from gridshim.config import ConfigError, from_dict
from kit import FakeApi

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


# -- uid: namespace — the cluster's answer, not the caller's ---------------------------------------------

def test_uid_namespace_is_a_policy() -> None:
    assert from_dict({"uid": "namespace"}).uid == "namespace"
    with pytest.raises(ConfigError, match="use namespace, self, home-owner"):
        from_dict({"uid": "namespaces"})


def ns(annotations: dict[str, str] | None) -> dict:
    return {"metadata": {"name": "tool-x", **({} if annotations is None else {"annotations": annotations})}}


@pytest.mark.parametrize("annotations,error", [
    ({"gridshim.io/uid": "52001"}, None),
    (None, "namespace tool-x has no gridshim.io/uid annotation"),
    ({"other": "1"}, "namespace tool-x has no gridshim.io/uid annotation"),
    ({"gridshim.io/uid": "0"}, "is not a uid above 0"),
    ({"gridshim.io/uid": "-5"}, "is not a uid above 0"),
    ({"gridshim.io/uid": " 52001"}, "is not a uid above 0"),
    ({"gridshim.io/uid": "99999999999"}, "is not a uid above 0"),
])
def test_namespace_uid(annotations: dict[str, str] | None, error: str | None) -> None:
    if error is None:
        assert config.namespace_uid(ns(annotations)) == 52001
        return
    with pytest.raises(config.GridshimError) as e:
        config.namespace_uid(ns(annotations))
    assert error in e.value.message and "docs/site-config.md" in (e.value.hint or "")


def test_tool_uid_namespace_asks_the_cluster_once_and_ignores_home(tmp_path: Path) -> None:
    from gridshim.cli._common import tool_uid

    cluster = FakeApi("tool-x", namespace_annotations={"gridshim.io/uid": "52001"})
    assert tool_uid("namespace", tool="x", home=str(tmp_path / "someone-elses"), cluster=cluster) == 52001
    assert cluster.verbs() == [("get", "Namespace")]
    # --dry-run contacts nothing: the caller's own uid, as 'self'
    import os

    assert tool_uid("namespace", tool="x", home="/nowhere", offline=True) == os.getuid()
    with pytest.raises(config.GridshimError, match="needs the cluster"):
        tool_uid("namespace", tool="x", home="/nowhere")


def test_tool_uid_namespace_forbidden_names_the_rbac_it_needs() -> None:
    from gridshim.cli._common import tool_uid
    from gridshim.errors import ForbiddenError

    refused = ForbiddenError('not allowed: namespaces "tool-x" is forbidden: User "x" cannot get resource '
                             '"namespaces"', hint="is /k the kubeconfig of the tool that owns this?")
    with pytest.raises(ForbiddenError) as e:
        tool_uid("namespace", tool="x", home="/", cluster=FakeApi("tool-x").fail("get", refused, kind="Namespace"))
    text = str(e.value)
    assert "is /k the kubeconfig of the tool that owns this?" in text
    assert "'uid: namespace' also needs 'get' on namespace tool-x" in text and "\n" not in text


def test_the_uid_policys_refusal_reaches_the_user_as_its_own_one_line() -> None:
    """What the API server answers when the admission policy refuses a Job (recorded on the sandbox)."""
    import json

    from gridshim.cluster import Credentials, KubeCluster
    from gridshim.errors import ClusterError

    said = ("pods in namespace tool-b run only as the tool's uid 52003 (runAsUser, runAsGroup and fsGroup 52003, "
            "no other supplementalGroups); this Job asks for runAsUser 52002, runAsGroup 52002, fsGroup 52002")
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Invalid", "code": 422,
            "message": f"jobs \"x-1\" is invalid: : ValidatingAdmissionPolicy 'gridshim-tool-uid' with binding "
                       f"'gridshim-tool-uid' denied request: {said}"}
    k = KubeCluster(Credentials(path="/k", context="c", server="https://127.0.0.1:6443", namespace="tool-b"))
    err = k.error_for(422, json.dumps(body).encode(), "POST", "/apis/batch/v1/namespaces/tool-b/jobs")
    assert isinstance(err, ClusterError) and err.status == 422
    assert str(err) == f"refused by the cluster's admission policy gridshim-tool-uid: {said}"
    other = k.error_for(422, json.dumps({"message": "Job.batch \"x\" is invalid: spec.template: Required value",
                                         "reason": "Invalid"}).encode(), "POST", "/x")
    assert str(other).startswith("the API server refused it: ")


def test_the_policy_admins_are_given_is_the_one_the_sandbox_installs() -> None:
    """docs/site-config.md's YAML (policy, binding, namespace rule) is sandbox/tenancy.py's, modulo line folding."""
    import re
    import sys

    import yaml

    repo = Path(__file__).resolve().parents[2]
    sys.path.insert(0, str(repo))
    from sandbox import tenancy

    text = (repo / "docs" / "site-config.md").read_text()
    blocks = re.findall(r"^ *```yaml\n(.*?)^ *```", text, re.S | re.M)
    policy = next(b for b in blocks if "kind: ValidatingAdmissionPolicy\n" in b)

    def norm(o: object) -> object:
        if isinstance(o, dict):
            return {k: norm(v) for k, v in o.items()}
        if isinstance(o, list):
            return [norm(v) for v in o]
        if isinstance(o, str):  # a folded line break is a space; none is meant after "("
            return re.sub(r"\( ", "(", " ".join(o.split()))
        return o

    assert [norm(d) for d in yaml.safe_load_all(policy)] == \
        [norm(tenancy.UID_POLICY), norm(tenancy.UID_POLICY_BINDING)]
    rule = next(yaml.safe_load(b) for b in blocks if "resources: [namespaces]" in b)
    assert rule == [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]}]
    assert rule[0] in tenancy.TOOL_RULES
    assert tenancy.UID_ANNOTATION == config.UID_ANNOTATION


def test_mail_is_off_by_default_and_needs_a_one_line_command() -> None:
    import re

    assert config.Settings().mail_command is None and from_dict({"mail": None}).mail_command is None
    s = from_dict({"mail": {"command": "/usr/sbin/sendmail -t -i", "from": "grid+{tool}@example.org"}})
    assert (s.mail_command, s.mail_from) == ("/usr/sbin/sendmail -t -i", "grid+{tool}@example.org")
    assert from_dict({"mail": {"command": "msmtp -t"}}).mail_from is None  # the tool's own address
    for data, message in [({"mail": "sendmail"}, "mail: expected a mapping with command, from"),
                          ({"mail": {"from": "x@y"}}, "mail: 'command' is required"),
                          ({"mail": {"command": "sendmail", "to": "x"}}, "mail: unknown key(s) to"),
                          ({"mail": {"command": ""}}, "mail.command: expected a non-empty string"),
                          ({"mail": {"command": "a\nb"}}, "mail.command: expected one line")]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            from_dict(data)
