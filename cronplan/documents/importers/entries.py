"""What every importer shares: notes, entries, stable ids, reading files, the final check of each job."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cronplan.errors import CronplanError

__all__ = [
    "Entry",
    "IdMaker",
    "Note",
    "dst_note",
    "read_text",
    "slug",
]

SCHEMA_URL = "https://cronplan.dev/schemas/v1/jobs.schema.json"

_MAX_SLUG = 64 - 1 - 6  # an id is slug + "-" + 6 hex digits, at most 64 characters
_NOT_ID = re.compile(r"[^A-Za-z0-9._-]+")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class Note:
    """Something that could not be carried over exactly: ``FILE:LINE: message`` on stderr."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        text = f"{self.file}:{self.line}: {self.message}"
        # A lone surrogate from a hostile source must not make the report itself fail to print.
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


@dataclass
class Entry:
    """One imported job and where it came from; ``job`` is None when the entry is skipped."""

    file: str
    line: int
    job: dict[str, Any] | None
    notes: list[str] = field(default_factory=list)

    def note(self, message: str) -> None:
        self.notes.append(message)


def read_text(path: Path) -> str:
    """The text of ``path``; a clear error (exit 1) when it cannot be read or is not UTF-8."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CronplanError(f"cannot import {path}: no such file") from None
    except IsADirectoryError:
        raise CronplanError(
            f"cannot import {path}: it is a directory; name the files in it"
        ) from None
    except OSError as exc:
        raise CronplanError(f"cannot import {path}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CronplanError(f"{path}:{line}: cannot import: the file is not valid UTF-8") from None


def slug(text: str) -> str:
    """``text`` as the readable part of a job id: letters, digits, '.', '_' and '-' only."""
    out = _NOT_ID.sub("-", text.lower()).strip("-._")[:_MAX_SLUG].rstrip("-._")
    return out or "job"


def is_valid_id(text: object) -> bool:
    return isinstance(text, str) and _ID.match(text) is not None


class IdMaker:
    """Stable, valid, unique ids: ``slug-hash6``, where the hash is over what identifies the entry.

    The same input gives the same ids on every run; two identical entries get ``-2``, ``-3`` suffixes in
    the order they appear.
    """

    def __init__(self) -> None:
        self.taken: set[str] = set()

    def make(self, readable: str, *identity: str) -> str:
        digest = hashlib.sha256("\0".join(identity).encode("utf-8", "surrogatepass")).hexdigest()
        return self.claim(f"{slug(readable)}-{digest[:6]}")

    def claim(self, wanted: str) -> str:
        candidate, n = wanted, 1
        while candidate in self.taken:
            n += 1
            suffix = f"-{n}"
            candidate = wanted[: 64 - len(suffix)] + suffix
        self.taken.add(candidate)
        return candidate


def dst_note(tz: str | None, source: str) -> str | None:
    """A note when ``tz`` shifts its clocks: cron, systemd and Kubernetes each treat DST their own way."""
    if not tz:
        return None
    from cronplan.schedule import zone

    try:
        z = zone(tz)
    except ValueError:
        return None
    year = 2030
    offsets = {datetime(year, month, 1, tzinfo=z).utcoffset() for month in (1, 4, 7, 10)}
    if len(offsets) < 2:
        return None
    return (
        f"{tz} shifts its clocks: around a DST change cronplan follows Debian cron (a skipped time "
        f"fires right after the gap, a repeated time fires once), which may differ from {source}"
    )
