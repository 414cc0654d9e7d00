"""sandbox.tenancy.write_home: a tool's home from an earlier life of the sandbox is not inherited."""
from __future__ import annotations

import os
from pathlib import Path

from sandbox import tenancy


def _write(home: Path, uid: int) -> None:
    tenancy.write_home(home, uid=uid, cert=b"C", key=b"K", kubeconfig={"apiVersion": "v1"})


def test_a_home_left_with_another_uid_is_made_afresh_and_ones_own_is_kept(tmp_path: Path) -> None:
    home = tmp_path / "t1x1"
    me = os.geteuid()
    if me == 0:
        # an earlier sandbox life gave this name uid 60001; its ~/.gridshim was left behind
        (home / ".gridshim").mkdir(parents=True)
        (home / ".gridshim" / "accounting").write_text("old\n")
        for p in (home, home / ".gridshim", home / ".gridshim" / "accounting"):
            os.chown(p, 60001, 60001)
        _write(home, 60002)
        assert not (home / ".gridshim").exists()
        assert home.stat().st_uid == 60002 and (home / ".kube" / "config").stat().st_uid == 60002
        new_uid = 60002
    else:
        new_uid = me
    # the same uid again (a tool provisioned twice): its files stay
    (home / "keep").mkdir(parents=True, exist_ok=True)
    if me == 0:
        os.chown(home / "keep", new_uid, new_uid)
    _write(home, new_uid)
    assert (home / "keep").is_dir() and (home / ".toolskube" / "client.key").read_bytes() == b"K"
