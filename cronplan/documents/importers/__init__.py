"""Importers: bring existing cron jobs over from crontab, Kubernetes, systemd timers and Hermes Agent.

Each source has its own module with one function, ``read(file, text, ids, system=...) -> [Entry]``.
``import_files`` runs it over every file, checks each imported job exactly as ``cronplan validate``
would (a job that would not validate is reported and left out, never printed), and returns the jobs
document and the notes: whatever could not be carried over exactly, one ``FILE:LINE: message`` each.
See docs/import.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cronplan.documents.importers.entries import SCHEMA_URL, Entry, IdMaker, Note, read_text
from cronplan.errors import CronplanError

__all__ = ["SOURCES", "ImportResult", "Note", "import_files"]

SOURCES = ("crontab", "k8s", "systemd", "hermes")

Reader = Callable[..., list[Entry]]


@dataclass(frozen=True)
class ImportResult:
    document: dict[str, Any]
    notes: tuple[Note, ...]

    @property
    def count(self) -> int:
        return len(self.document["jobs"])


def _reader(source: str) -> Reader:
    if source == "crontab":
        from cronplan.documents.importers import crontab

        return crontab.read
    if source == "k8s":
        from cronplan.documents.importers import k8s

        return k8s.read
    if source == "systemd":
        from cronplan.documents.importers import systemd

        return systemd.read
    if source == "hermes":
        from cronplan.documents.importers import hermes

        return hermes.read
    raise CronplanError(f"unknown import source {source!r} (use one of: {', '.join(SOURCES)})")


def import_files(source: str, paths: Sequence[str | Path], *, system: bool = False) -> ImportResult:
    """Import every file of ``paths`` from ``source``; raise ``CronplanError`` for an unreadable file."""
    read = _reader(source)
    ids = IdMaker()
    jobs: list[dict[str, Any]] = []
    notes: list[Note] = []
    for raw in paths:
        path = Path(raw)
        text = read_text(path)
        if "\x00" in text:
            line = text.count("\n", 0, text.index("\x00")) + 1
            raise CronplanError(f"{path}:{line}: cannot import: the file contains a NUL byte")
        for entry in read(path, text, ids, system=system):
            problems = _problems(entry.job) if entry.job is not None else []
            if problems:
                entry.note("not imported: the result would not validate: " + "; ".join(problems))
                entry.job = None
            notes.extend(Note(entry.file, entry.line, message) for message in entry.notes)
            if entry.job is not None:
                jobs.append(_ordered(entry.job))
    notes.sort(key=lambda n: (n.file, n.line))  # stable: the notes of one line keep their order
    return ImportResult({"$schema": SCHEMA_URL, "jobs": jobs}, tuple(notes))


_ORDER = ("id", "name", "schedule", "enabled", "state", "command", "env", "cwd", "timeout_seconds")


def _ordered(job: dict[str, Any]) -> dict[str, Any]:
    """The job's keys in the order a person reads them (id, name, schedule, ..., extensions last)."""
    rank = {key: i for i, key in enumerate(_ORDER)}
    return dict(sorted(job.items(), key=lambda kv: rank.get(kv[0], len(rank))))


def _problems(job: dict[str, Any]) -> list[str]:
    """What ``cronplan validate`` would say about ``job`` (a cron expression cronplan cannot read, a zone
    it does not know, ...), as messages; empty when it is valid."""
    import json

    from cronplan.documents.jobsfile import check_jobs_text
    from cronplan.errors import ValidationError

    # ASCII JSON: a lone surrogate from the source stays an escape, which validation then refuses.
    try:
        json.dumps(job, ensure_ascii=False, default=str).encode("utf-8")
        text = json.dumps({"jobs": [job]}, ensure_ascii=True, allow_nan=False, default=str)
    except UnicodeEncodeError:
        return ["a string holds a lone surrogate (not valid Unicode)"]
    except ValueError:
        return ["a number is out of range (JSON has no infinity or NaN)"]
    try:
        check_jobs_text(text, file="import")
    except ValidationError as exc:
        return [f"{p.pointer.removeprefix('/jobs/0') or '/'}: {p.message}" for p in exc.problems]
    return []
