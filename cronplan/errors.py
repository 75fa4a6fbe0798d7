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
        text = f"{self.file}:{self.line}:{self.col}: {pointer}: {self.message}"
        # A lone surrogate quoted from the input must not make the error itself unprintable.
        return text if text.isascii() else text.encode("utf-8", "backslashreplace").decode()


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


# --------------------------------------------------------------------------- the secret scrubber
#
# Every message that leaves cronplan (the one error handler, stderr logs, serve's log lines) passes
# ``scrub``, which replaces every secret value cronplan has read in this process: provider tokens, the
# webhook secret, the notify URL, the state DSN and each way its password may be read (libpq stops the
# user part at the first '@', a person means the last one; percent-escaped or not). Values shorter than
# ``_MIN_SECRET`` are not scrubbed: replacing every "ab" would garble messages without hiding anything.

_SECRETS: set[str] = set()
_MIN_SECRET = 3
MASK = "***"


def remember_secret(value: str | None) -> None:
    """Scrub ``value`` (and it with surrounding whitespace dropped) from every message from now on."""
    if not value:
        return
    for text in (value, value.strip()):
        if len(text) >= _MIN_SECRET:
            _SECRETS.add(text)


def remember_dsn(dsn: str | None) -> None:
    """Scrub a database DSN and every reading of the password in it, however malformed it is."""
    if not dsn or dsn.startswith("sqlite:"):  # a path, no secret (and errors must show it)
        return
    passwords = dsn_passwords(dsn)
    # A PostgreSQL URL without a password is no secret, and its host is what an error needs to show;
    # any other value (a token, a notify URL, a DSN of unknown form) is masked whole.
    if passwords or not dsn.startswith(("postgresql://", "postgres://")):
        remember_secret(dsn)
    for password in passwords:
        remember_secret(password)


def dsn_passwords(dsn: str) -> set[str]:
    """Every string a reader may take for the password of ``dsn``, URL or key=value form."""
    import re
    from urllib.parse import unquote

    found: set[str] = set()
    _, sep, rest = dsn.partition("://")
    if sep:
        for at in (rest.find("@"), rest.rfind("@")):
            if at > 0:
                _, colon, password = rest[:at].partition(":")
                if colon and password:
                    found.add(password)
        for m in re.finditer(r"[?&]password=([^&#]*)", rest, flags=re.IGNORECASE):
            found.add(m.group(1))
    for m in re.finditer(r"password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", dsn, flags=re.IGNORECASE):
        value = m.group(1)
        found.add(value)
        if value.startswith("'") and value.endswith("'") and len(value) >= 2:
            found.add(value[1:-1].replace("\\'", "'").replace("\\\\", "\\"))
    found |= {unquote(p) for p in found}
    # A parser that splits the intended password at an '@' or ':' quotes the pieces in its errors.
    found |= {piece for p in found for piece in re.split(r"[@:]", p)}
    return {p for p in found if p}


def scrub(text: str) -> str:
    """``text`` with every remembered secret replaced by ``***`` (longest first)."""
    secrets = tuple(_SECRETS)
    if not secrets:
        return text
    for secret in sorted(secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text
