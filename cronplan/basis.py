"""A planned action's basis: what it depended on (the job's live arms and a fingerprint of its ledger
entry), and the instant and value forms the plan document is written in. A leaf under the planner and the
plan file (docs/architecture.md), so that neither imports the other for it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from cronplan.model import Arm, JobRecord
from cronplan.timefmt import format_ts

__all__ = ["basis_entry", "instant_text", "jsonable", "record_fingerprint"]


@lru_cache(maxsize=65536)
def instant_text(dt: datetime) -> str:
    """``format_ts`` without ``strftime`` (the hot spot of a 100,000-job plan); cached: times repeat."""
    if dt.tzinfo is None:
        return format_ts(dt)  # raises the usual error
    d = dt.astimezone(timezone.utc)
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}Z"


def jsonable(value: Any) -> Any:
    """Field values of a change as plain JSON (a spec read from JSON already is; tuples become lists)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, datetime):
        return instant_text(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return str(value)


_NO_RECORD = "none"


def record_fingerprint(record: JobRecord | None) -> str:
    """A stable hash of a job's ledger entry (``"none"`` when the ledger holds nothing for the job)."""
    if record is None:
        return _NO_RECORD
    fields = {
        "job_id": record.job_id,
        "applied_spec": jsonable(record.applied_spec),
        "applied_digest": record.applied_digest,
        "applied_fire_at": _ts_or_none(record.applied_fire_at),
        "applied_callback_url": record.applied_callback_url,
        "last_fired_at": _ts_or_none(record.last_fired_at),
        "runs": record.runs,
        "failures": record.failures,
    }
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _ts_or_none(t: datetime | None) -> str | None:
    return None if t is None else instant_text(t)


def _arm_basis(arm: Arm) -> dict[str, Any]:
    return {
        "fire_at": instant_text(arm.fire_at),
        "callback_url": arm.callback_url,
        "provider_ref": arm.provider_ref,
    }


def basis_entry(arms_of_job: Iterable[Arm], record: JobRecord | None) -> dict[str, Any]:
    """What a job's planned action depended on: its live arms (sorted) and its ledger fingerprint."""
    arms = sorted(
        (_arm_basis(a) for a in arms_of_job),
        key=lambda d: (d["fire_at"], d["callback_url"] or "", d["provider_ref"] or ""),
    )
    return {"arms": arms, "record": record_fingerprint(record)}
