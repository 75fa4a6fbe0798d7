"""The fire pipeline in-process: claim, stale rejection, run, record, re-arm (SPEC §11)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cronplan import fire as firing
from cronplan.applier import apply_plan
from cronplan.documents.config import Config
from cronplan.errors import BadRequest, ProviderError
from cronplan.model import Arm, FireCall
from cronplan.planner import plan
from cronplan.project import Project
from cronplan.timefmt import parse_ts
from tests.fakes import ManualClock
from tests.fixtures_serve import append_job, read_runs

T0 = parse_ts("2026-11-27T09:00:00Z")


class Proj:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.log = root / "runs.log"
        self.clock = ManualClock(T0)
        self.rt = Project(Config(base_dir=root), environ={}, clock=self.clock)

    def jobs(self, *jobs: dict[str, Any]) -> None:
        (self.root / "jobs.json").write_text(json.dumps({"jobs": list(jobs)}))

    def apply(self, now: datetime) -> None:
        """What `cronplan apply` does: plan every job against the live arms and carry it out."""
        jf = self.rt.load_jobs()
        prov = self.rt.provider
        p = plan(
            list(jf.jobs),
            prov.list_arms(),
            self.rt.ledger.job_records(),
            now,
            provider=prov.name,
            callback_url=None,
            allow_empty=True,
        )
        self.clock.at = now
        res = apply_plan(p, prov, self.rt.ledger, jf.by_id(), clock=self.clock)
        assert not res.failed

    def has_changes(self, now: datetime) -> bool:
        jf = self.rt.load_jobs()
        prov = self.rt.provider
        p = plan(
            list(jf.jobs),
            prov.list_arms(),
            self.rt.ledger.job_records(),
            now,
            provider=prov.name,
            callback_url=None,
            allow_empty=True,
        )
        return p.has_changes

    def overdue(self, now: datetime) -> list[firing.FireOutcome]:
        self.clock.at = now
        return firing.fire_overdue(self.rt)

    def arms(self) -> dict[str, datetime]:
        return {a.job_id: a.fire_at for a in self.rt.provider.list_arms()}

    def runs(self) -> list[tuple[str, float, str]]:
        return read_runs(self.log)

    def fire(
        self, job_id: str, fire_at: datetime, now: datetime | None = None, **kw: Any
    ) -> firing.FireOutcome:
        # By default the fire arrives a moment after its time, as a provider's does.
        self.clock.at = now or fire_at + timedelta(seconds=1)
        return firing.fire(self.rt, FireCall(job_id, fire_at), **kw)


@pytest.fixture
def proj(tmp_path: Path) -> Iterator[Proj]:
    p = Proj(tmp_path)
    yield p
    p.rt.close()


def test_fire_runs_records_and_rearms(proj: Proj) -> None:
    proj.jobs(append_job("a", proj.log))
    proj.apply(T0 - timedelta(seconds=30))
    assert proj.arms() == {"a": T0}
    out = proj.fire("a", T0, now=T0 + timedelta(seconds=1))
    assert out.status == "succeeded" and out.ok
    assert [r[2] for r in proj.runs()] == ["2026-11-27T09:00:00Z"]
    run = proj.rt.ledger.get_run("a", T0)
    assert run is not None and run.status == "succeeded" and run.exit_code == 0
    assert run.started_at is not None and run.finished_at is not None and run.duration_s is not None
    assert proj.arms() == {"a": T0 + timedelta(seconds=60)}
    assert out.next_fire_at == T0 + timedelta(seconds=60)
    assert "next arm: 2026-11-27T09:01:00Z" in out.describe()
    assert not proj.has_changes(T0 + timedelta(seconds=2))


def test_duplicate_after_run_is_a_noop(proj: Proj) -> None:
    proj.jobs(append_job("a", proj.log))
    proj.apply(T0 - timedelta(seconds=30))
    assert proj.fire("a", T0).status == "succeeded"
    again = proj.fire("a", T0)
    assert again.status == "duplicate" and again.ok
    assert len(proj.runs()) == 1
    assert proj.arms() == {"a": T0 + timedelta(seconds=60)}


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"state": "paused"}, "paused"),
        ({"enabled": False}, "disabled"),
        ({"state": "completed"}, "completed"),
    ],
)
def test_inactive_job_is_stale_and_writes_nothing(
    proj: Proj, fields: dict[str, Any], reason: str
) -> None:
    proj.jobs(append_job("a", proj.log))
    proj.apply(T0 - timedelta(seconds=30))
    proj.jobs(append_job("a", proj.log, **fields))
    proj.apply(T0 - timedelta(seconds=20))  # cancels the arm and records the job as applied
    assert proj.arms() == {}
    out = proj.fire("a", T0)
    assert out.status == "stale" and out.ok
    assert reason in out.reason
    assert proj.runs() == []
    assert proj.rt.ledger.get_run("a", T0) is None


def test_unknown_job_and_non_occurrence_are_stale(proj: Proj) -> None:
    proj.jobs(append_job("a", proj.log))
    proj.apply(T0 - timedelta(seconds=30))
    out = proj.fire("nope", T0)
    assert out.status == "stale" and "not applied" in out.reason
    out = proj.fire("a", T0 + timedelta(seconds=30))  # the schedule is every 60 s on the minute
    assert out.status == "stale" and "not an occurrence" in out.reason
    assert proj.runs() == []
    assert proj.rt.ledger.runs() == []


def test_unapplied_schedule_change_does_not_count_applied_one_does(proj: Proj) -> None:
    """The stale check uses the applied schedule: an edit of jobs.json changes nothing until applied."""
    proj.jobs(append_job("a", proj.log, schedule={"kind": "cron", "expr": "0 9 * * *"}))
    proj.apply(T0 - timedelta(hours=1))
    assert proj.arms() == {"a": T0}
    proj.jobs(append_job("a", proj.log, schedule={"kind": "cron", "expr": "30 9 * * *"}))
    assert proj.fire("a", T0).status == "succeeded"  # still the applied 09:00 schedule
    assert proj.arms() == {"a": T0 + timedelta(days=1)}
    proj.apply(T0 + timedelta(minutes=1))  # now the 09:30 schedule is applied: the arm moves
    assert proj.arms() == {"a": T0 + timedelta(minutes=30)}
    out = proj.fire("a", T0 + timedelta(days=1))
    assert out.status == "stale" and "not an occurrence of the job's applied schedule" in out.reason
    assert len(proj.runs()) == 1


def test_once_job_fires_then_is_never_rearmed(proj: Proj) -> None:
    proj.jobs(
        append_job("o", proj.log, schedule={"kind": "once", "run_at": "2026-11-27T09:00:00Z"})
    )
    proj.apply(T0 - timedelta(minutes=5))
    assert proj.arms() == {"o": T0}
    out = proj.fire("o", T0)
    assert out.status == "succeeded"
    assert out.next_fire_at is None and "none (job is done)" in out.describe()
    assert proj.arms() == {}
    assert proj.fire("o", T0).status == "duplicate"
    assert len(proj.runs()) == 1
    assert not proj.has_changes(T0 + timedelta(days=1))


def test_repeat_times_two_runs_twice_then_no_arm(proj: Proj) -> None:
    proj.jobs(append_job("r", proj.log, repeat={"times": 2}))
    proj.apply(T0 - timedelta(seconds=30))
    assert proj.fire("r", T0).status == "succeeded"
    assert proj.arms() == {"r": T0 + timedelta(minutes=1)}
    assert proj.fire("r", T0 + timedelta(minutes=1)).status == "succeeded"
    assert proj.arms() == {}
    third = proj.fire("r", T0 + timedelta(minutes=2))
    assert third.status == "stale" and "repeat exhausted (2/2)" in third.reason
    assert len(proj.runs()) == 2


def test_failed_job_is_recorded_and_schedule_goes_on(proj: Proj) -> None:
    proj.jobs({"id": "f", "schedule": {"kind": "interval", "seconds": 60}, "command": ["false"]})
    proj.apply(T0 - timedelta(seconds=30))
    out = proj.fire("f", T0)
    assert out.status == "failed" and not out.ok
    run = proj.rt.ledger.get_run("f", T0)
    assert run is not None and run.status == "failed" and run.exit_code == 1
    assert proj.arms() == {"f": T0 + timedelta(minutes=1)}
    assert proj.rt.ledger.job_records(["f"])["f"].failures == 1


def test_direct_run_trap_manual_fire_leaves_arm_consistent(proj: Proj) -> None:
    """A manual fire of the armed (future) occurrence must move the arm on, not leave it stale."""
    proj.jobs(append_job("m", proj.log))
    now = T0 - timedelta(seconds=20)
    proj.apply(now)
    assert proj.arms() == {"m": T0}
    out = proj.fire("m", T0, now=now)  # run it by hand, 20 s early
    assert out.status == "succeeded"
    assert proj.arms() == {"m": T0 + timedelta(minutes=1)}
    assert not proj.has_changes(now)
    # The provider's own fire of the occurrence that already ran is absorbed by the claim.
    assert proj.fire("m", T0, now=T0).status == "duplicate"
    assert len(proj.runs()) == 1


def test_fire_of_a_never_applied_job_is_stale_and_arms_nothing(proj: Proj) -> None:
    """Apply is the only door: a job only in jobs.json does not run, and its fire writes nothing."""
    proj.jobs(append_job("n", proj.log))
    now = T0 - timedelta(seconds=20)
    out = proj.fire("n", T0, now=now)
    assert out.status == "stale" and "not applied" in out.reason and out.ok
    assert proj.runs() == [] and proj.arms() == {}
    assert proj.rt.ledger.runs() == []
    assert proj.has_changes(now)  # `plan` still offers to arm it


def test_fire_at_exactly_its_time_moves_the_arm_on(proj: Proj) -> None:
    """`fire --now T --fire-at T`: the occurrence at `now` was just claimed, so it is not armed again."""
    proj.jobs(append_job("a", proj.log))
    proj.apply(T0 - timedelta(seconds=30))
    assert proj.fire("a", T0, now=T0).status == "succeeded"
    assert proj.arms() == {"a": T0 + timedelta(minutes=1)}
    assert not proj.has_changes(T0)


def test_no_replan_leaves_the_arm(proj: Proj) -> None:
    proj.jobs(append_job("a", proj.log))
    proj.apply(T0 - timedelta(seconds=30))
    out = proj.fire("a", T0, replan=False)
    assert out.status == "succeeded" and not out.replanned
    assert proj.arms() == {"a": T0}


def test_superseded_and_missed_with_catch_up_skip(proj: Proj) -> None:
    proj.jobs(append_job("a", proj.log), append_job("s", proj.log, catch_up="skip"))
    proj.apply(T0 - timedelta(seconds=30))
    assert proj.fire("a", T0 + timedelta(minutes=5)).status == "succeeded"
    old = proj.fire("a", T0)
    assert old.status == "stale" and "superseded" in old.reason
    late = proj.fire("s", T0, now=T0 + timedelta(minutes=10))  # grace for 60 s is 120 s
    assert late.status == "stale" and "catch_up: skip" in late.reason
    assert len(proj.runs()) == 1


class _FailingArms:
    """Wraps the local provider; ``arm`` fails like an unreachable managed scheduler."""

    name = "local"
    calls_back = False

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def list_arms(self) -> list[Arm]:
        return list(self.inner.list_arms())

    def arm(self, arm: Arm) -> None:
        raise ProviderError("scheduler unreachable (test)")

    def cancel(self, job_id: str) -> None:
        self.inner.cancel(job_id)


def test_rearm_failure_is_recorded_and_reported(proj: Proj) -> None:
    proj.jobs(append_job("a", proj.log))
    proj.apply(T0 - timedelta(seconds=30))
    out = proj.fire("a", T0, provider=_FailingArms(proj.rt.provider))  # type: ignore[arg-type]
    assert out.status == "succeeded" and not out.ok
    assert "scheduler unreachable" in (out.rearm_error or "")
    assert "re-arm FAILED" in out.describe()
    run = proj.rt.ledger.get_run("a", T0)
    assert run is not None and run.status == "succeeded"
    assert "re-arm failed: " in (run.error or "")


def test_fire_overdue_fires_then_provider_fire_is_duplicate(proj: Proj) -> None:
    proj.jobs(append_job("a", proj.log), append_job("b", proj.log))
    proj.apply(T0 - timedelta(seconds=30))
    # Both arms at T0. At T0+100 s they are late but within grace (120 s): not overdue yet.
    assert proj.overdue(T0 + timedelta(seconds=100)) == []
    outs = proj.overdue(T0 + timedelta(seconds=130))
    assert sorted((o.call.job_id, o.status) for o in outs) == [
        ("a", "succeeded"),
        ("b", "succeeded"),
    ]
    assert len(proj.runs()) == 2
    # The provider delivers the dropped fire after all: a duplicate, nothing runs twice.
    assert proj.fire("a", T0, now=T0 + timedelta(seconds=140)).status == "duplicate"
    assert len(proj.runs()) == 2
    # Both jobs moved on to an occurrence after the missed one.
    assert all(t > T0 for t in proj.arms().values())


def test_fire_overdue_moves_on_a_claimed_but_stuck_arm(proj: Proj) -> None:
    proj.jobs(append_job("a", proj.log))
    proj.apply(T0 - timedelta(seconds=30))
    # A fire that claimed and then died before re-arming: the claim exists, the arm is stuck at T0.
    assert proj.rt.ledger.claim("a", T0, "crashed", at=T0)
    outs = proj.overdue(T0 + timedelta(minutes=10))
    assert [(o.status, o.replanned) for o in outs] == [("duplicate", True)]
    assert proj.runs() == []
    assert proj.arms()["a"] > T0


# --------------------------------------------------------------------------- raw requests


def test_parse_raw_request_crlf_and_lf() -> None:
    raw = (
        b"POST /api/cron/fire?x=1 HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2\r\nX-A: 1\r\nx-a: 2\r\n\r\n{}trailing"
    )
    req = firing.parse_http_request(raw)
    assert req.method == "POST" and req.path == "/api/cron/fire"
    assert req.headers["content-type"] == "application/json"
    assert req.headers["x-a"] == "1, 2"
    assert req.body == b"{}"
    req = firing.parse_http_request(b'post /api/cron/fire HTTP/1.1\nA: b\n\n{"x": 1}\n')
    assert req.method == "POST" and req.body == b'{"x": 1}\n'


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"garbage",
        b"POST /x HTTP/1.1\r\nno-colon-header\r\n\r\n",
        b"POST /x\r\n\r\n",
        b"POST /x HTTP/1.1\r\nContent-Length: 10\r\n\r\nshort",
        b"POST /x HTTP/1.1\r\nContent-Length: ten\r\n\r\n",
    ],
)
def test_parse_raw_request_rejects_malformed(raw: bytes) -> None:
    with pytest.raises(BadRequest):
        firing.parse_http_request(raw)
