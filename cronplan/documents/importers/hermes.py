"""Hermes Agent jobs.json -> jobs, normalised.

cronplan reads a Hermes file as it is, so importing it is about cleaning it up: the runtime fields the
Hermes scheduler writes (``next_run_at``, ``last_*``, claims, ``_*`` fields, ``repeat.completed``, ...)
are dropped, since cronplan keeps run state in its ledger; the definition and every runner field
(``prompt``, ``skills``, ``model``, ``deliver``, ...) are kept as they are, and so are the job ids (Hermes
uses them in paths). A schedule written as text (older Hermes files) becomes a schedule object where its
meaning is unambiguous. A field cronplan does not know is reported and kept under ``x-hermes-NAME``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from cronplan.documents.importers.entries import Entry, IdMaker, is_valid_id
from cronplan.errors import CronplanError

__all__ = ["RUNTIME_FIELDS", "read"]

RUNTIME_FIELDS = frozenset(
    {
        "next_run_at", "last_run_at", "last_status", "last_error", "last_delivery_error",
        "last_delivery_unverified", "last_delivery_at", "last_delivery_success", "last_fire_error",
        "failure_streak", "retry_count", "started_at", "runner_id", "fire_claim", "run_claim",
        "pending_slot", "execution_id", "latest_execution", "created_at", "updated_at",
        "completed_at", "paused_at", "schedule_display", "monitor_state",
    }
)  # fmt: skip
_EVERY = re.compile(r"^every\s+(\d+)\s*(s|sec|m|min|h|hr|d)$", re.IGNORECASE)
_FACTOR = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600, "d": 86400}


def _known_fields() -> frozenset[str]:
    from cronplan.documents.schemas import load_schema

    return frozenset(load_schema("jobs")["$defs"]["job"]["properties"])


def read(path: Path, text: str, ids: IdMaker, *, system: bool = False) -> list[Entry]:
    file = str(path)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CronplanError(
            f"{file}:{exc.lineno}:{exc.colno}: cannot import: invalid JSON: {exc.msg}"
        ) from None
    raw_jobs = doc.get("jobs") if isinstance(doc, dict) else doc
    if not isinstance(raw_jobs, list):
        raise CronplanError(f'{file}: cannot import: expected {{"jobs": [...]}} or a list of jobs')
    starts = _job_lines(text, len(raw_jobs))
    known = _known_fields()
    entries: list[Entry] = []
    for index, raw in enumerate(raw_jobs):
        entry = Entry(file, starts[index], None)
        entries.append(entry)
        if not isinstance(raw, dict):
            entry.note(f"not imported: job {index} is not an object")
            continue
        entry.job = _job(entry, raw, ids, known)
    return entries


def _job_lines(text: str, count: int) -> list[int]:
    """The line where each job object starts (the whole file's positions are indexed once)."""
    from cronplan.documents.positions import json_positions_of

    prefix = "/jobs" if text.lstrip().startswith("{") else ""
    index = json_positions_of(text, [f"{prefix}/{i}" for i in range(count)])
    return [index.locate(f"{prefix}/{i}")[0] for i in range(count)]


def _job(
    entry: Entry, raw: dict[str, Any], ids: IdMaker, known: frozenset[str]
) -> dict[str, Any] | None:
    job: dict[str, Any] = {}
    for key, value in raw.items():
        if key in RUNTIME_FIELDS or key.startswith("_"):
            continue
        if key not in known and not key.startswith("x-"):
            entry.note(f"unknown field {key!r} kept as 'x-hermes-{key}'")
            job[f"x-hermes-{key}"] = value
            continue
        job[key] = value
    raw_id = raw.get("id")
    if is_valid_id(raw_id) and str(raw_id) not in ids.taken:
        job["id"] = ids.claim(str(raw_id))
    else:
        new = ids.make(
            str(raw.get("name") or "hermes"), json.dumps(raw, sort_keys=True, default=str)
        )
        entry.note(f"id {raw_id!r} is not a valid or unique cronplan id: imported as {new!r}")
        job["id"] = new
    schedule = _schedule(entry, raw.get("schedule"))
    if schedule is None:
        return None
    job["schedule"] = schedule
    repeat = raw.get("repeat")
    if isinstance(repeat, dict):
        done = repeat.get("completed")
        job["repeat"] = {k: v for k, v in repeat.items() if k != "completed"}
        active = raw.get("state") != "completed"
        if active and isinstance(done, int) and done > 0 and isinstance(repeat.get("times"), int):
            entry.note(
                f"repeat.completed={done} is not carried over: cronplan counts runs in its ledger, "
                f"so the job may run repeat.times={repeat['times']} more times"
            )
    return job


def _schedule(entry: Entry, value: Any) -> dict[str, Any] | None:
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        text = value.strip()
        every = _EVERY.match(text)
        if every:
            seconds = int(every.group(1)) * _FACTOR[every.group(2).lower()]
            entry.note(f"schedule {value!r} read as an interval of {seconds} s")
            if seconds % 60 == 0:
                return {"kind": "interval", "minutes": seconds // 60, "display": value}
            return {"kind": "interval", "seconds": seconds, "display": value}
        if len(text.split()) in (5, 6) or text.startswith("@"):
            return {"kind": "cron", "expr": text, "display": value}
        entry.note(
            f"not imported: schedule {value!r} is ambiguous (Hermes versions read it as once or as "
            'every); write it as {"kind": "interval", ...} or {"kind": "once", ...}'
        )
        return None
    entry.note("not imported: no schedule")
    return None
