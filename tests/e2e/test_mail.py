"""Issue 16, item 4: mail on job events (-m b|e|a, -M) on the real sandbox, through the installed commands,
as the tool's uid. A real SMTP server (aiosmtpd) listens on loopback in this test process; the tool's site
config points `mail.command` at sandbox/sendmail.py, a sendmail -t that relays to it, as a node's MTA
would. Subjects and bodies are the contract's (qsub-behaviour §7).
"""

from __future__ import annotations

import email
import email.policy
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml

from conftest import REPO, STATE, VENV_BIN, Tool, write


@dataclass
class Inbox:
    """What the SMTP server accepted: (envelope recipients, parsed message), in arrival order."""

    port: int
    received: list[tuple[list[str], Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        with self.lock:
            self.received.append((list(envelope.rcpt_tos), msg))
        return "250 Message accepted for delivery"

    def of_job(self, job_id: str) -> list[tuple[list[str], Any]]:
        with self.lock:
            return [(to, m) for to, m in self.received if re.search(rf"\b{job_id}\b", str(m["Subject"]))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def inbox() -> Iterator[Inbox]:
    from aiosmtpd.controller import Controller

    box = Inbox(port=free_port())
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


def mail_config(tool: Tool, inbox: Inbox) -> str:
    """The sandbox's site config with a mail command that relays to the test's SMTP server."""
    cfg = yaml.safe_load((STATE / "gridshim.yaml").read_text())
    cfg["mail"] = {"command": f"{VENV_BIN}/python {REPO}/sandbox/sendmail.py --smtp 127.0.0.1:{inbox.port} -t -i"}
    return str(write(tool, "mail-site.yaml", yaml.safe_dump(cfg)))


def submitted_id(out: str) -> str:
    m = re.search(r"^Your job (\d+) \(", out, re.M) or re.search(r"^(\d+)$", out, re.M)
    assert m, out
    return m.group(1)


def body_lines(msg: Any) -> list[str]:
    return msg.get_content().splitlines()


@pytest.mark.needs_sandbox("the job's mail relays to an SMTP server on this machine's loopback")
@pytest.mark.parametrize("command", ["jsub", "qsub"])
def test_m_be_sends_started_and_complete_to_the_M_address(tool: Tool, inbox: Inbox, command: str) -> None:
    env = {"GRIDSHIM_CONFIG": mail_config(tool, inbox)}
    argv = [command, "-sync", "y", "-m", "be", "-M", "someone@example.org", "-N", "mailed"]
    if command == "qsub":
        argv += ["-b", "y"]
    r = tool.run(*argv, "/bin/sh", "-c", "echo hi; exit 3", env=env)
    assert r.returncode == 3, r.stdout + r.stderr  # the job's own status
    assert "mail" not in r.stderr  # no "not sent" warning where the site sends mail
    job_id = submitted_id(r.stdout)
    mails = tool.wait_for(lambda: len(inbox.of_job(job_id)) >= 2 and inbox.of_job(job_id), timeout=30,
                          what="two mails")
    assert len(inbox.of_job(job_id)) == 2  # exactly two: Begin and End, nothing for -m's absent letters
    assert [to for to, _ in mails] == [["someone@example.org"]] * 2
    started, complete = (m for _, m in mails)
    assert (started["Subject"], complete["Subject"]) == (f"Job {job_id} (mailed) Started",
                                                         f"Job {job_id} (mailed) Complete")
    assert started["To"] == "someone@example.org" and started["From"] == f"tools.{tool.name}@toolforge.org"
    lines = body_lines(started)
    assert lines[0] == f"Job {job_id} (mailed) Started" and lines[1] == f" User       = tools.{tool.name}"
    assert lines[2] == " Queue      = task" and re.fullmatch(r" Start Time = \d\d/\d\d/\d{4} \d\d:\d\d:\d\d", lines[4])
    lines = body_lines(complete)
    assert lines[0] == f"Job {job_id} (mailed) Complete" and lines[-1] == " Exit Status      = 3"
    assert re.fullmatch(r" Queue            = task@\S+", lines[2])
    # the container's memory.peak in SGE's printer; NA where there is none (the sandbox's agent: no cgroups)
    assert re.fullmatch(r" Max vmem         = (NA|\d+\.\d{3}[KMGT]?)", lines[10]), lines
    assert re.fullmatch(r" Wallclock Time   = \d\d:\d\d:\d\d", lines[8]), lines


@pytest.mark.needs_sandbox("the job's mail relays to an SMTP server on this machine's loopback")
def test_m_n_sends_nothing(tool: Tool, inbox: Inbox) -> None:
    env = {"GRIDSHIM_CONFIG": mail_config(tool, inbox)}
    ids = []
    for argv in (["jsub", "-m", "n", "-M", "someone@example.org"], ["qsub", "-m", "n", "-b", "y"],
                 ["jsub", "-M", "someone@example.org"]):  # -M alone asks for no mail either
        r = tool.run(*argv, "-sync", "y", "-N", "quiet", "/bin/true", env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        ids.append(submitted_id(r.stdout))
    # each job's wrapper has exited (-sync y), and it waits for its mails before it exits; a moment more
    time.sleep(1)
    assert [inbox.of_job(i) for i in ids] == [[], [], []]


@pytest.mark.needs_sandbox("the job's mail relays to an SMTP server on this machine's loopback")
def test_m_a_of_a_job_killed_by_a_signal_sends_aborted(tool: Tool, inbox: Inbox) -> None:
    env = {"GRIDSHIM_CONFIG": mail_config(tool, inbox)}
    r = tool.run("jsub", "-sync", "y", "-m", "a", "-M", "ops@example.org", "-N", "killed", "/bin/sh", "-c",
                 "kill -KILL $$", env=env)
    assert r.returncode == 1, r.stdout + r.stderr  # jsub -sync y: "Job N exited because of signal SIGKILL"
    job_id = submitted_id(r.stdout)
    (to, msg), = tool.wait_for(lambda: inbox.of_job(job_id), timeout=30, what="the Aborted mail")
    assert to == ["ops@example.org"] and msg["Subject"] == f"Job {job_id} (killed) Aborted"
    lines = body_lines(msg)
    assert lines[:3] == [f"Job {job_id} (killed) Aborted", " Exit Status      = 137", " Signal           = KILL"]
    assert lines[-2:] == ["failed assumedly after job because:", f"job {job_id}.1 died through signal KILL (9)"]

    # a plain failure is no abort: -m a stays silent
    r = tool.run("jsub", "-sync", "y", "-m", "a", "-N", "failed", "/bin/sh", "-c", "exit 3", env=env)
    assert r.returncode == 3
    assert inbox.of_job(submitted_id(r.stdout)) == []


@pytest.mark.needs_sandbox("the job's mail relays to an SMTP server on this machine's loopback")
def test_qdel_of_a_running_job_with_m_a_sends_aborted_as_sges_kill(tool: Tool, inbox: Inbox) -> None:
    env = {"GRIDSHIM_CONFIG": mail_config(tool, inbox)}
    r = tool.run("qsub", "-terse", "-m", "a", "-N", "victim", "-b", "y", "/bin/sleep", "300", env=env)
    assert r.returncode == 0, r.stderr
    job_id = r.stdout.strip()
    tool.wait_for(lambda: re.search(rf"^\s*{job_id} .* r ", tool.run("qstat").stdout, re.M), timeout=60,
                  what="the job to run")
    assert tool.run("qdel", job_id).returncode == 0
    (to, msg), = tool.wait_for(lambda: inbox.of_job(job_id), timeout=60, what="the Aborted mail")
    assert to == [f"tools.{tool.name}@toolforge.org"]  # no -M: the submitter's LOGNAME@mail_domain
    lines = body_lines(msg)
    # the wrapper got qdel's TERM; SGE SIGKILLed such a job, and its accounting record says 137 (qacct.md)
    assert msg["Subject"] == f"Job {job_id} (victim) Aborted"
    assert lines[:3] == [f"Job {job_id} (victim) Aborted", " Exit Status      = 137", " Signal           = KILL"]
    assert lines[-1] == f"job {job_id}.1 died through signal KILL (9)"
