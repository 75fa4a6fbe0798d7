"""Plans built by hand for the planfile and renderer tests (the planner is not involved)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

from cronplan.model import Action, Arm, Change, JobRecord, Plan
from cronplan.planfile import basis_entry

UTC = timezone.utc
NOW = datetime(2026, 11, 26, 14, 0, 0, tzinfo=UTC)
CALLBACK = "http://127.0.0.1:8787"


def t(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def digest(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def record(job_id: str, **kw: object) -> JobRecord:
    return JobRecord(job_id=job_id, applied_digest=digest(job_id), **kw)  # type: ignore[arg-type]


def sample_actions(now: datetime = NOW, shift: timedelta = timedelta(0)) -> list[Action]:
    """Every kind of action, a re-arm and an update with field changes, a catch-up, duplicate arms, zones."""

    def at(text: str) -> datetime:
        return t(text) + shift

    def arm(job_id: str, when: datetime, ref: str | None = None, cb: str | None = CALLBACK) -> Arm:
        return Arm(job_id, when, cb, ref)

    return [
        Action(
            "arm",
            "backup-db",
            "missing",
            after=arm("backup-db", at("2026-11-27T02:00:00Z")),
            job_digest=digest("backup-db"),
            tz="UTC",
        ),
        Action(
            "arm",
            "daily-report",
            "missing",
            after=arm("daily-report", at("2026-11-27T08:00:00Z")),
            job_digest=digest("daily-report"),
            tz="Europe/Berlin",
        ),
        Action(
            "arm",
            "catchup-job",
            f"catch-up of missed {at('2026-11-26T13:30:00Z'):%H:%M}",
            after=arm("catchup-job", at("2026-11-26T13:30:00Z")),
            job_digest=digest("catchup-job"),
            tz="UTC",
        ),
        Action(
            "rearm",
            "newsletter",
            "schedule changed",
            before=arm("newsletter", at("2026-11-27T14:00:00Z"), "ref-nl"),
            after=arm("newsletter", at("2026-11-27T15:00:00Z")),
            changes=(
                Change("schedule.expr", "0 9 * * *", "0 10 * * *"),
                Change("x-owner", None, "team-mail"),
            ),
            job_digest=digest("newsletter"),
            tz="America/New_York",
        ),
        Action(
            "rearm",
            "webhook-ping",
            "callback changed",
            before=arm("webhook-ping", at("2026-11-26T23:30:00Z"), "ref-wp", "http://old.invalid"),
            after=arm("webhook-ping", at("2026-11-26T23:30:00Z")),
            changes=(Change("callback_url", "http://old.invalid", CALLBACK),),
            job_digest=digest("webhook-ping"),
            tz="Asia/Tokyo",
        ),
        Action(
            "rearm",
            "dup-job",
            "duplicate arms: keeping dup-job:2026-11-27T06:00:00Z",
            before=arm("dup-job", at("2026-11-27T06:00:00Z"), "ref-d1"),
            after=arm("dup-job", at("2026-11-27T06:00:00Z")),
            job_digest=digest("dup-job"),
            tz="UTC",
        ),
        Action(
            "update",
            "prompt-job",
            "job changed",
            before=arm("prompt-job", at("2026-11-27T07:00:00Z"), "ref-pd"),
            after=arm("prompt-job", at("2026-11-27T07:00:00Z")),
            changes=(
                Change("command[1]", "digest.py", "digest_v2.py"),
                Change("timeout_seconds", 600, None),
            ),
            job_digest=digest("prompt-job"),
            tz="UTC",
        ),
        Action(
            "cancel",
            "dup-job",
            "duplicate arm",
            before=arm("dup-job", at("2026-11-28T06:00:00Z"), "ref-d2"),
            job_digest=digest("dup-job"),
            tz="UTC",
        ),
        Action(
            "cancel",
            "old-cleanup",
            "not in jobs.json (orphan)",
            before=arm("old-cleanup", at("2026-11-27T03:00:00Z"), "ref-oc"),
        ),
        Action(
            "cancel",
            "paused-job",
            "paused",
            before=arm("paused-job", at("2026-11-27T12:00:00Z"), "ref-pj"),
            job_digest=digest("paused-job"),
            tz="UTC",
        ),
        Action(
            "skip",
            "hourly-sync",
            "already armed",
            before=arm("hourly-sync", at("2026-11-26T15:00:00Z"), "ref-hs"),
            job_digest=digest("hourly-sync"),
            tz="UTC",
        ),
        Action("skip", "disabled-job", "disabled", job_digest=digest("disabled-job"), tz="UTC"),
    ]


def plan_of(
    actions: list[Action],
    now: datetime = NOW,
    *,
    provider: str = "nas",
    callback_url: str | None = CALLBACK,
    records: dict[str, JobRecord] | None = None,
    lineage: str | None = "lineage-1",
) -> Plan:
    """A plan with a basis for every job with a change, as the planner fills it."""
    records = records or {}
    live: dict[str, list[Arm]] = {}
    for a in actions:
        if a.before is not None:
            live.setdefault(a.job_id, []).append(a.before)
    basis = {
        a.job_id: basis_entry(live.get(a.job_id, []), records.get(a.job_id))
        for a in actions
        if a.is_change
    }
    ordered = sorted(actions, key=lambda a: a.job_id)
    return Plan(
        provider=provider,
        now=now,
        actions=tuple(ordered),
        callback_url=callback_url,
        basis=basis,
        lineage=lineage,
    )


def sample_plan() -> Plan:
    return plan_of(sample_actions(), records={"newsletter": record("newsletter", runs=3)})


def big_plan(n: int, *, cancel_every: int = 10, rearm_every: int = 3, skip_every: int = 7) -> Plan:
    """``n`` jobs: a mix of arms, re-arms with a change, cancels (orphans) and skips."""
    actions: list[Action] = []
    for i in range(n):
        job_id = f"job-{i:06d}"
        when = NOW + timedelta(minutes=5 + i % 600)
        live = Arm(job_id, when - timedelta(minutes=1), CALLBACK, f"ref-{i}")
        if cancel_every and i % cancel_every == 0:
            actions.append(Action("cancel", job_id, "not in jobs.json (orphan)", before=live))
        elif rearm_every and i % rearm_every == 0:
            actions.append(
                Action(
                    "rearm",
                    job_id,
                    "schedule changed",
                    before=live,
                    after=Arm(job_id, when, CALLBACK),
                    changes=(Change("schedule.expr", "*/5 * * * *", "*/7 * * * *"),),
                    job_digest=digest(job_id),
                    tz="Europe/Berlin",
                )
            )
        elif skip_every and i % skip_every == 0:
            actions.append(
                Action(
                    "skip",
                    job_id,
                    "already armed",
                    before=live,
                    job_digest=digest(job_id),
                    tz="UTC",
                )
            )
        else:
            actions.append(
                Action(
                    "arm",
                    job_id,
                    "missing",
                    after=Arm(job_id, when, CALLBACK),
                    job_digest=digest(job_id),
                    tz="UTC",
                )
            )
    return plan_of(actions)
