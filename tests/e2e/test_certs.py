"""Issue 7: bad credentials get one line that names the kubeconfig and says what to do.

Certificates are minted with sandbox/pki.py for the tool's own name and group, so the only thing
wrong with each is what the test says: expired, not yet valid, issued by an unknown CA, or not
matching its key. The same for a kubeconfig without a namespace and one whose CA does not match
the API server. Every gridshim command is tried with each, against the real API server.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import REPO, Tool

CLEAN = re.compile(r"Traceback|internal error")
COMMANDS = [["jsub", "-stderr", "-N", "c", "/bin/true"], ["jstart", "-stderr", "-N", "c", "/bin/true"], ["qstat"],
            ["qstat", "-j", "c"], ["job", "c"], ["jstop", "c"], ["qdel", "c"], ["qmod", "-rj", "c"], ["crontab", "-l"],
            ["crontab", "-r"]]


def sandbox_ca() -> Any:
    from sandbox import pki

    return pki.load(REPO / ".sandbox" / "pki" / "ca")


def variant(tool: Tool, tag: str, *, cert: tuple[bytes, bytes] | None = None,
            edit: Callable[[dict[str, Any]], None] | None = None) -> str:
    """A copy of TOOL's kubeconfig, with another client certificate and/or an EDIT; returns its path."""
    kdir = Path(tool.kubeconfig).parent
    cfg = yaml.safe_load(Path(tool.kubeconfig).read_text())
    user = cfg["users"][0]["user"]
    if cert is not None:
        crt, key = kdir / f"{tag}.crt", kdir / f"{tag}.key"
        crt.write_bytes(cert[0])
        key.write_bytes(cert[1])
        key.chmod(0o600)
        for p in (crt, key):
            os.chown(p, tool.uid, tool.uid)
        user["client-certificate"], user["client-key"] = crt.name, key.name
    if edit is not None:
        edit(cfg)
    path = kdir / f"config-{tag}"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    os.chown(path, tool.uid, tool.uid)
    return str(path)


def refused_everywhere(tool: Tool, kubeconfig: str, *expected: str) -> list[str]:
    """Run every command with KUBECONFIG; each must exit 1 with one line naming it and EXPECTED."""
    lines = []
    for argv in COMMANDS:
        r = tool.run(*argv, env={"KUBECONFIG": kubeconfig})
        assert not CLEAN.search(r.stdout + r.stderr), (argv, r.stderr)
        assert r.returncode == 1 and r.stdout == "", (argv, r.returncode, r.stdout, r.stderr)
        out = r.stderr.splitlines()
        assert len(out) == 1, (argv, r.stderr)
        assert kubeconfig in out[0], (argv, out[0])
        for phrase in expected:
            assert re.search(phrase, out[0]), (argv, phrase, out[0])
        lines.append(out[0])
    assert tool.kubectl_json("get", "jobs")["items"] == []  # nothing was created on the way
    return lines


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@pytest.mark.needs_sandbox("mints certificates with the sandbox's CA key")
def test_expired_certificate(tool: Tool) -> None:
    from sandbox import pki

    cert = pki.issue(sandbox_ca(), cn=tool.name, orgs=("toolforge",), not_before=now() - dt.timedelta(days=30),
                     not_after=now() - dt.timedelta(days=2))
    kc = variant(tool, "expired", cert=cert)
    expiry = (now() - dt.timedelta(days=2)).strftime("%Y-%m-%d")
    refused_everywhere(tool, kc, r"did not accept your credentials",
                       rf"the client certificate in {re.escape(kc)} expired {expiry} \d\d:\d\d UTC; renew it")


@pytest.mark.needs_sandbox("mints certificates with the sandbox's CA key")
def test_not_yet_valid_certificate(tool: Tool) -> None:
    from sandbox import pki

    start = now() + dt.timedelta(days=3)
    cert = pki.issue(sandbox_ca(), cn=tool.name, orgs=("toolforge",), not_before=start,
                     not_after=start + dt.timedelta(days=30))
    kc = variant(tool, "future", cert=cert)
    refused_everywhere(tool, kc, r"did not accept your credentials",
                       rf"is not valid before {start:%Y-%m-%d} \d\d:\d\d UTC; check this machine's clock")


@pytest.mark.needs_sandbox("mints certificates with the sandbox's CA key")
def test_certificate_from_an_unknown_ca(tool: Tool, tmp_path: Path) -> None:
    from sandbox import pki

    rogue = pki.ensure_ca(tmp_path / "rogue-ca")  # same subject as the sandbox CA, another key
    kc = variant(tool, "rogue", cert=pki.issue(rogue, cn=tool.name, orgs=("toolforge",)))
    refused_everywhere(tool, kc, r"did not accept your credentials",
                       r"revoked or issued by another cluster's CA: get a new kubeconfig for this cluster")


@pytest.mark.needs_sandbox("mints certificates with the sandbox's CA key")
def test_certificate_from_a_differently_named_ca_says_which(tool: Tool, tmp_path: Path) -> None:
    """When the issuer's name differs from the kubeconfig's CA, the message names both."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    from sandbox import pki

    rogue_cert, rogue_key = pki.ensure_ca(tmp_path / "other-ca")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "some-other-cluster-ca")])
    renamed = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(rogue_key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(rogue_cert.not_valid_before_utc)
               .not_valid_after(rogue_cert.not_valid_after_utc)
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .sign(rogue_key, hashes.SHA256()))
    kc = variant(tool, "othername", cert=pki.issue((renamed, rogue_key), cn=tool.name, orgs=("toolforge",)))
    refused_everywhere(tool, kc, r"was issued by 'CN=some-other-cluster-ca', not by this cluster's CA "
                                 r"'CN=gridshim-sandbox-ca'; get a kubeconfig issued for this cluster")


@pytest.mark.needs_sandbox("mints certificates with the sandbox's CA key")
def test_certificate_that_does_not_match_its_key(tool: Tool) -> None:
    from sandbox import pki

    one = pki.issue(sandbox_ca(), cn=tool.name, orgs=("toolforge",))
    other = pki.issue(sandbox_ca(), cn=tool.name, orgs=("toolforge",))
    kc = variant(tool, "mismatch", cert=(one[0], other[1]))
    refused_everywhere(tool, kc, r"cannot load the client certificate/key",
                       r"check the client-certificate and client-key entries")


def test_kubeconfig_without_a_namespace(tool: Tool) -> None:
    def drop_namespace(cfg: dict[str, Any]) -> None:
        for c in cfg["contexts"]:
            c["context"].pop("namespace", None)

    kc = variant(tool, "nonamespace", edit=drop_namespace)
    refused_everywhere(tool, kc, r"context 'toolforge' sets no namespace",
                       r"add one with 'kubectl config set-context --current --namespace=tool-NAME'")


@pytest.mark.needs_sandbox("expects the sandbox's loopback server address in the message")
def test_kubeconfig_whose_ca_is_not_the_servers(tool: Tool, tmp_path: Path) -> None:
    import base64

    from cryptography.hazmat.primitives import serialization

    from sandbox import pki

    stranger, _ = pki.ensure_ca(tmp_path / "stranger")

    def other_ca(cfg: dict[str, Any]) -> None:
        cfg["clusters"][0]["cluster"]["certificate-authority-data"] = base64.b64encode(
            stranger.public_bytes(serialization.Encoding.PEM)).decode()

    kc = variant(tool, "strangerca", edit=other_ca)
    refused_everywhere(tool, kc,
                       r"cannot verify the API server https://127\.0\.0\.1:\d+: unable to get local issuer certificate",
                       r"check certificate-authority in")


@pytest.mark.parametrize("what", ["missing", "garbage"])
def test_unreadable_certificate_files(tool: Tool, what: str) -> None:
    kdir = Path(tool.kubeconfig).parent

    def point_at(cfg: dict[str, Any]) -> None:
        target = kdir / f"{what}.crt"
        if what == "garbage":
            target.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
            os.chown(target, tool.uid, tool.uid)
        cfg["users"][0]["user"]["client-certificate"] = target.name

    kc = variant(tool, what, edit=point_at)
    refused_everywhere(tool, kc, r"cannot load the client certificate/key")
