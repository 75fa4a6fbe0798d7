"""Helpers for planner/applier tests: build Jobs directly, and small in-memory stand-ins for the
provider and ledger *around* the thing under test (the planner is pure; these only feed it)."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from cronplan.documents.jobsfile import spec_digest
from cronplan.model import (
    Arm,
    CronSchedule,
    IntervalSchedule,
    Job,
    JobRecord,
    OnceSchedule,
)

UTC = timezone.utc
NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def make_job(
    job_id: str,
    schedule: dict[str, Any] | None = None,
    **fields: Any,
) -> Job:
    """A Job as jobsfile would build it, from a jobs.json-shaped dict."""
    sched_doc = dict(schedule or {"kind": "cron", "expr": "0 9 * * *"})
    sched_doc.setdefault("tz", "UTC")
    raw: dict[str, Any] = {"id": job_id, "schedule": sched_doc, **fields}
    spec = json.loads(json.dumps(raw))
    digest = spec_digest(spec)
    kind = sched_doc["kind"]
    tz = sched_doc["tz"]
    if kind == "cron":
        sched: Any = CronSchedule(sched_doc["expr"], tz)
    elif kind == "interval":
        seconds = sched_doc.get("seconds") or sched_doc["minutes"] * 60
        start = ts(sched_doc["start_at"]) if "start_at" in sched_doc else None
        sched = IntervalSchedule(seconds, start, tz)
    else:
        sched = OnceSchedule(ts(sched_doc["run_at"]), tz)
    repeat = fields.get("repeat") or {}
    return Job(
        id=job_id,
        schedule=sched,
        spec=spec,
        digest=digest,
        raw=raw,
        enabled=fields.get("enabled", True),
        state=fields.get("state", "scheduled"),
        repeat_times=repeat.get("times"),
        catch_up=fields.get("catch_up", "once"),
    )


class MemoryLedger:
    """Just the parts of the Ledger the applier writes and the planner reads, kept in dicts."""

    def __init__(self) -> None:
        self.records: dict[str, JobRecord] = {}
        self._lock = threading.Lock()

    def job_records(self, job_ids: Iterable[str] | None = None) -> dict[str, JobRecord]:
        with self._lock:
            if job_ids is None:
                return dict(self.records)
            return {i: self.records[i] for i in job_ids if i in self.records}

    def record_applied(
        self,
        job_id: str,
        *,
        spec: Mapping[str, Any] | None,
        digest: str | None,
        fire_at: datetime | None,
        callback_url: str | None,
        at: datetime,
    ) -> None:
        with self._lock:
            old = self.records.get(job_id, JobRecord(job_id))
            self.records[job_id] = JobRecord(
                job_id,
                applied_spec=spec,
                applied_digest=digest,
                applied_fire_at=fire_at,
                applied_callback_url=callback_url,
                last_fired_at=old.last_fired_at,
                runs=old.runs,
                failures=old.failures,
            )

    def record_applied_many(
        self,
        entries: Iterable[
            tuple[str, Mapping[str, Any] | None, str | None, datetime | None, str | None]
        ],
        *,
        at: datetime,
    ) -> None:
        for job_id, spec, digest, fire_at, callback_url in entries:
            self.record_applied(
                job_id, spec=spec, digest=digest, fire_at=fire_at, callback_url=callback_url, at=at
            )

    def record_armed_many(
        self, entries: Iterable[tuple[str, datetime | None, str | None]], *, at: datetime
    ) -> None:
        with self._lock:
            for job_id, fire_at, callback_url in entries:
                old = self.records.get(job_id)
                if old is not None and old.applied_spec is not None:
                    self.records[job_id] = dataclasses.replace(
                        old, applied_fire_at=fire_at, applied_callback_url=callback_url
                    )

    def fired(self, job_id: str, fire_at: datetime) -> None:
        with self._lock:
            old = self.records.get(job_id, JobRecord(job_id))
            last = old.last_fired_at
            self.records[job_id] = JobRecord(
                job_id,
                applied_spec=old.applied_spec,
                applied_digest=old.applied_digest,
                applied_fire_at=old.applied_fire_at,
                applied_callback_url=old.applied_callback_url,
                last_fired_at=fire_at if last is None or fire_at > last else last,
                runs=old.runs + 1,
                failures=old.failures,
            )


class MemoryProvider:
    """One arm per job id, like every real provider; can hold extra arms to model a broken backend."""

    name = "memory"
    calls_back = True

    def __init__(self, arms: Iterable[Arm] = ()) -> None:
        self.arms: list[Arm] = list(arms)
        self.calls: list[tuple[str, str]] = []
        self.fail_jobs: set[str] = set()
        self._lock = threading.Lock()

    def list_arms(self) -> list[Arm]:
        with self._lock:
            return sorted(self.arms, key=lambda a: (a.job_id, a.fire_at))

    def arm(self, arm: Arm) -> None:
        from cronplan.errors import ProviderError

        with self._lock:
            self.calls.append(("arm", arm.dedup_key))
            if arm.job_id in self.fail_jobs:
                raise ProviderError(f"injected failure for {arm.job_id}")
            self.arms = [a for a in self.arms if a.job_id != arm.job_id] + [arm]

    def cancel(self, job_id: str) -> None:
        from cronplan.errors import ProviderError

        with self._lock:
            self.calls.append(("cancel", job_id))
            if job_id in self.fail_jobs:
                raise ProviderError(f"injected failure for {job_id}")
            self.arms = [a for a in self.arms if a.job_id != job_id]

    def close(self) -> None:
        pass


def hours(n: float) -> timedelta:
    return timedelta(hours=n)
