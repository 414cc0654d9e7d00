"""The one exception tree and the exit codes (leaf: imports nothing from gridshim).

Only `cli/_common.handle_errors` turns these into stderr text and an exit code.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes kept compatible with the grid tools (jsub's die() = 1, argparse = 2, qsub's cap = 25)."""

    SUCCESS = 0
    ERROR = 1
    USAGE = 2
    TRY_LATER = 25  # SGE STATUS_NOTOK_DOAGAIN: "job rejected: only N jobs are allowed per user"
    INTERRUPTED = 130


class GridshimError(Exception):
    """A user-facing failure: one line on stderr, exit 1 unless a subclass says otherwise."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, *, hint: str | None = None, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(GridshimError):
    """Bad flags or values, reported like argparse did: `PROG: error: ...`, exit 2."""

    exit_code = ExitCode.USAGE


class JobExistsError(GridshimError):
    """An object with this name exists (HTTP 409)."""


class JobNotFoundError(GridshimError):
    """No such object (HTTP 404)."""


class QuotaExceededError(GridshimError):
    """The namespace's ResourceQuota refused the object (HTTP 403 'exceeded quota'); qsub's exit 25."""

    exit_code = ExitCode.TRY_LATER


class ForbiddenError(GridshimError):
    """RBAC refused the request (HTTP 403): usually another tool's namespace or a wrong kubeconfig."""


class ConflictError(GridshimError):
    """An optimistic-concurrency precondition failed (HTTP 409 on update/delete)."""


class Rejected(GridshimError):
    """What SGE's qmaster refuses: `Unable to run job: <text>` + `Exiting.`, exit 1 (qsub.c). Raised by
    qsub's dialect (sgeflags, translate) and by the dependency resolution at submit (depends)."""

    def __init__(self, text: str) -> None:
        super().__init__(f"Unable to run job: {text}\nExiting.")
        self.text = text


class ClusterConfigError(GridshimError):
    """The kubeconfig is missing, unreadable or incomplete; the message names the path tried."""


class ClusterError(GridshimError):
    """Transport or API failure; `detail` keeps the status and body for -debug."""

    def __init__(self, message: str, *, status: int | None = None, hint: str | None = None,
                 detail: str | None = None, body: dict | None = None) -> None:
        super().__init__(message, hint=hint, detail=detail)
        self.status = status
        self.body = body or {}
