#!/usr/bin/env python3
"""A sendmail-compatible command for the sandbox: relays the message on stdin to one SMTP server.

gridshim's jobs send their -m/-M mail through the site's `mail.command`, a `sendmail -t` command line
(docs/site-config.md). A real node has an MTA for that; the sandbox has none, so its e2e tests point
`mail.command` at this program, which hands each message to an SMTP server on loopback (the test's own):

    sendmail.py --smtp 127.0.0.1:2525 -t -i          # recipients from To/Cc/Bcc, Bcc removed
    sendmail.py --smtp 127.0.0.1:2525 -f me@x a@y    # recipients as arguments

Only the options gridshim's wrapper and ordinary scripts use: -t, -i/-oi (accepted: a lone `.` line
never ends the message here), -f FROM. Exit status as sendmail's: 0 sent, 64 usage, 65 bad message,
69 no server, 75 the server refused for now. Standard library only.
"""

from __future__ import annotations

import argparse
import email.parser
import email.policy
import email.utils
import getpass
import smtplib
import socket
import sys

EX_USAGE, EX_DATAERR, EX_UNAVAILABLE, EX_TEMPFAIL = 64, 65, 69, 75


def recipients_of(headers: email.message.Message) -> list[str]:
    found = email.utils.getaddresses([str(v) for k in ("To", "Cc", "Bcc") for v in headers.get_all(k, [])])
    return [addr for _, addr in found if addr]


def without_bcc(raw: bytes) -> bytes:
    """The message with its Bcc header (and that header's continuation lines) left out."""
    head, sep, body = raw.partition(b"\n\n")
    out, skipping = [], False
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t") and skipping:
            continue
        skipping = line.lower().startswith(b"bcc:")
        if not skipping:
            out.append(line)
    return b"\n".join(out) + sep + body


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="sendmail.py", description="relay stdin to an SMTP server")
    p.add_argument("--smtp", required=True, metavar="HOST:PORT")
    p.add_argument("-t", action="store_true", help="take the recipients from To, Cc and Bcc")
    p.add_argument("-i", "-oi", action="store_true", help="accepted for compatibility")
    p.add_argument("-f", dest="sender", metavar="FROM")
    p.add_argument("recipients", nargs="*")
    try:
        args = p.parse_args(argv)
    except SystemExit:
        return EX_USAGE
    host, _, port = args.smtp.rpartition(":")
    if not host or not port.isdigit():
        print(f"sendmail.py: --smtp: expected HOST:PORT, got {args.smtp!r}", file=sys.stderr)
        return EX_USAGE
    raw = sys.stdin.buffer.read().replace(b"\r\n", b"\n")
    headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
    to = list(args.recipients) + (recipients_of(headers) if args.t else [])
    if not to:
        print("sendmail.py: no recipients", file=sys.stderr)
        return EX_DATAERR
    sender = args.sender or email.utils.parseaddr(str(headers.get("From", "")))[1] or \
        f"{getpass.getuser()}@{socket.gethostname()}"
    try:
        with smtplib.SMTP(host, int(port), timeout=30) as smtp:
            smtp.sendmail(sender, to, (without_bcc(raw) if args.t else raw).replace(b"\n", b"\r\n"))  # SMTP's CRLF
    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as e:
        print(f"sendmail.py: refused: {e}", file=sys.stderr)
        return EX_TEMPFAIL
    except (OSError, smtplib.SMTPException) as e:
        print(f"sendmail.py: cannot reach {args.smtp}: {e}", file=sys.stderr)
        return EX_UNAVAILABLE
    return 0


if __name__ == "__main__":
    sys.exit(main())
