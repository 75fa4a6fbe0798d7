"""The one exception hierarchy of cronplan and the exit codes it maps to.

Core modules raise these with a message a user can act on; only the CLI turns them into exit codes
(see ``cronplan.cli``). Nothing here imports click.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_INTERNAL = 3
EXIT_USAGE = 64
EXIT_INTERRUPTED = 130


class CronplanError(Exception):
    """An expected error: bad input, a provider refusing, a stale plan. Exit code 1."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(CronplanError):
    """The command line itself is wrong (unknown flag combination, missing argument)."""

    exit_code = EXIT_USAGE


class ConfigError(CronplanError):
    """cronplan.yaml (or an environment variable it names) is missing, unreadable or invalid."""


@dataclass(frozen=True)
class Problem:
    """One validation problem, located in a file: ``FILE:LINE:COL: POINTER: message``."""

    file: str
    line: int
    col: int
    pointer: str
    message: str

    def __str__(self) -> str:
        pointer = self.pointer or "/"
        return f"{self.file}:{self.line}:{self.col}: {pointer}: {self.message}"


class ValidationError(CronplanError):
    """One or more problems in a jobs file or config file, all reported at once."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        count = len(self.problems)
        head = "\n".join(str(p) for p in self.problems)
        super().__init__(head if count else "validation failed")


class JobNotFound(CronplanError):
    """A command named a job id that is not in jobs.json."""


class ProviderError(CronplanError):
    """A provider call failed (after any retries it does itself)."""


class ProviderUnavailable(ProviderError):
    """The configured provider is unknown, not installed, or misconfigured."""


class AuthError(CronplanError):
    """A callback failed authentication. Nothing may run."""


class BadRequest(CronplanError):
    """A callback was authenticated (or needs none) but its body is malformed."""


class FireRefused(BadRequest):
    """A fire for an occurrence too far ahead of now (a typo in a year must not silence a job)."""


class StalePlanError(CronplanError):
    """A saved plan no longer matches what it was computed from."""


class IntentMismatch(CronplanError):
    """``--expect-intent`` was given and the re-planned intent differs."""


class EmptyJobsRefused(CronplanError):
    """jobs.json has no jobs while arms exist, and ``--allow-empty`` was not given."""


class LockError(CronplanError):
    """The apply lock is held by someone else (after waiting ``--lock-timeout``)."""


class LedgerError(CronplanError):
    """The run ledger could not be read or written (database down, schema too new)."""


class ApplyFailed(CronplanError):
    """Some actions of an apply failed; the others were carried out."""


class JobFailed(CronplanError):
    """A fired job ran and failed (non-zero exit, timeout, HTTP error)."""
