"""migrate-check and grid commands that a job's own script runs (issue 13 item 3): unsupported on a site
without `in_jobs`, working (with a note) on a site that runs gridshim inside jobs."""

from __future__ import annotations

from gridshim import migrate as M
from gridshim.config import Settings
from gridshim.crontab import CronHost

HOME = "/data/project/demo"
BIGBROTHER = ("#!/bin/bash\nif ! /usr/bin/qstat | awk '{ print $3 }' | grep -q \"$1\"; then\n"
              "  /usr/bin/jstart -N \"$1\" run.sh\nfi\n")
CRONTAB = "* * * * * /usr/bin/jsub -once -quiet ~/bin/bigbrother.sh cluebot3\n"


def _inner(settings: Settings) -> list[M.Finding]:
    path = f"{HOME}/bin/bigbrother.sh"
    files = {path: BIGBROTHER}
    host = CronHost(tool="demo", home=HOME, uid=52000, user="tools.demo", exists=lambda p: p in files,
                    isdir=lambda p: False, executable=lambda p: True, read_text=files.get)
    result = M.check([M.Source(name="crontab", text=CRONTAB, crontab=True)], settings=settings, host=host)
    return [f for f in result.findings if f.source == path]


def test_without_in_jobs_a_jobs_grid_commands_are_unsupported() -> None:
    inner = _inner(Settings())
    assert [(f.command, f.verdict) for f in inner] == [("qstat", M.Verdict.UNSUPPORTED), ("jstart", M.Verdict.UNSUPPORTED)]


def test_with_in_jobs_they_work_and_say_why() -> None:
    inner = _inner(Settings(in_jobs="service-account"))
    assert [f.command for f in inner] == ["qstat", "jstart"]
    assert all(f.verdict is not M.Verdict.UNSUPPORTED for f in inner), [(f.command, f.verdict, f.notes) for f in inner]
    texts = [n.text for f in inner for n in f.notes]
    assert any("the site runs gridshim inside jobs (in_jobs: service-account)" in t for t in texts), texts
