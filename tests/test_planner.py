"""The planner: one test per row of the SPEC §6 table and per rule below it, then properties."""

from __future__ import annotations

import dataclasses
import random
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cronplan.applier import apply_plan
from cronplan.clock import PinnedClock
from cronplan.errors import EmptyJobsRefused
from cronplan.model import Arm, JobRecord, ReasonCode
from cronplan.planner import desired, plan
from cronplan.render.reasons import reason_text, reason_words
from tests.planning import NOW, MemoryLedger, MemoryProvider, make_job, ts

CB = "http://127.0.0.1:8787"


def run_plan(jobs, arms=(), records=None, now=NOW, **kw):
    return plan(
        list(jobs), list(arms), records or {}, now, provider="memory", callback_url=CB, **kw
    )


def only(p):
    assert len(p.actions) == 1, p.actions
    return p.actions[0]


def applied(job, **fields):
    """The ledger entry of ``job`` as apply leaves it: its definition recorded as applied."""
    return JobRecord(job.id, applied_spec=job.spec, applied_digest=job.digest, **fields)


# --------------------------------------------------------------------------- desired: none, live: none


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"state": "paused"}, "paused"),
        ({"enabled": False}, "disabled"),
        ({"state": "completed"}, "completed"),
    ],
)
def test_inactive_job_without_arm_is_skipped_with_reason(fields, reason):
    job = make_job("j", **fields)
    a = only(run_plan([job], records={"j": applied(job)}))
    assert (a.action, reason_text(a)) == ("skip", reason)


@pytest.mark.parametrize(
    ("fields", "reason"), [({"state": "paused"}, "paused"), ({"enabled": False}, "disabled")]
)
def test_inactive_job_never_applied_is_skipped_until_its_first_arm_records_it(fields, reason):
    a = only(run_plan([make_job("j", **fields)]))
    assert (a.action, reason_text(a)) == ("skip", reason)


def test_inactive_job_whose_definition_changed_is_an_update_with_the_diff():
    old = make_job("j", state="paused", command=["echo", "old"])
    new = make_job("j", state="paused", command=["echo", "new"])
    a = only(run_plan([new], records={"j": applied(old)}))
    assert (a.action, reason_text(a), a.before, a.after) == ("update", "job changed", None, None)
    assert [(c.path, c.before, c.after) for c in a.changes] == [("command[1]", "old", "new")]


def test_repeat_exhausted_job_is_skipped_with_count():
    job = make_job("j", repeat={"times": 5})
    a = only(
        run_plan(
            [job], records={"j": applied(job, runs=5, last_fired_at=ts("2026-11-26T09:00:00Z"))}
        )
    )
    assert (a.action, reason_text(a)) == ("skip", "repeat exhausted (5/5)")


def test_once_job_in_the_past_that_never_fired_has_no_future_occurrence():
    job = make_job("j", {"kind": "once", "run_at": "2026-11-01T09:00:00Z"})
    a = only(run_plan([job], records={"j": applied(job)}))
    assert (a.action, reason_text(a)) == ("skip", "no future occurrence")


# --------------------------------------------------------------------------- desired: none, live: arm


@pytest.mark.parametrize(
    ("fields", "reason"), [({"state": "paused"}, "paused"), ({"state": "completed"}, "completed")]
)
def test_inactive_job_with_arm_is_cancelled(fields, reason):
    arm = Arm("j", ts("2026-11-27T09:00:00Z"), CB)
    a = only(run_plan([make_job("j", **fields)], [arm]))
    assert (a.action, reason_text(a), a.before) == ("cancel", reason, arm)


def test_repeat_exhausted_job_with_arm_is_cancelled():
    job = make_job("j", repeat={"times": 2})
    arm = Arm("j", ts("2026-11-27T09:00:00Z"), CB)
    rec = {
        "j": JobRecord(
            "j", runs=2, last_fired_at=ts("2026-11-26T09:00:00Z"), applied_fire_at=arm.fire_at
        )
    }
    a = only(run_plan([job], [arm], rec))
    assert (a.action, reason_text(a)) == ("cancel", "repeat exhausted (2/2)")


def test_orphan_arm_is_cancelled():
    arm = Arm("gone", ts("2026-11-27T09:00:00Z"), CB)
    p = run_plan([make_job("j")], [arm])
    cancel = next(a for a in p.actions if a.job_id == "gone")
    assert (cancel.action, reason_text(cancel)) == ("cancel", "not in jobs.json (orphan)")
    assert cancel.job_digest is None


# --------------------------------------------------------------------------- desired: T, live: none


def test_missing_arm_is_armed_at_next_occurrence():
    a = only(run_plan([make_job("j")]))
    assert (a.action, reason_text(a)) == ("arm", "missing")
    assert a.after == Arm("j", ts("2026-11-27T09:00:00Z"), CB)
    assert a.after.dedup_key == "j:2026-11-27T09:00:00Z"


def test_missed_occurrence_within_grace_is_caught_up_at_its_own_time():
    job = make_job("j", {"kind": "interval", "minutes": 60})
    # Fired at 10:00, the 11:00 fire never came; now is 12:00:30 → 12:00 missed 30 s ago, within grace.
    rec = {
        "j": JobRecord(
            "j",
            last_fired_at=ts("2026-11-26T10:00:00Z"),
            applied_fire_at=ts("2026-11-26T11:00:00Z"),
            runs=1,
        )
    }
    now = ts("2026-11-26T12:00:30Z")
    a = only(run_plan([job], records=rec, now=now))
    assert a.action == "arm"
    assert a.after.fire_at == ts("2026-11-26T12:00:00Z")
    assert reason_text(a) == "catch-up of missed 12:00"


# --------------------------------------------------------------------------- desired: T, live: T


def test_arm_at_desired_time_is_skipped():
    job = make_job("j")
    arm = Arm("j", ts("2026-11-27T09:00:00Z"), CB)
    a = only(run_plan([job], [arm], {"j": applied(job, applied_fire_at=arm.fire_at)}))
    assert (a.action, reason_text(a)) == ("skip", "already armed")


def test_arm_at_desired_time_of_a_job_never_applied_is_an_update():
    # An arm made by another tool or before the ledger was reset: it stays, apply records the job.
    arm = Arm("j", ts("2026-11-27T09:00:00Z"), CB)
    a = only(run_plan([make_job("j")], [arm]))
    assert (a.action, reason_text(a), a.changes) == ("update", "not yet recorded as applied", ())
    assert (a.before, a.after) == (arm, Arm("j", arm.fire_at, CB))


def test_instants_compare_as_instants_not_strings():
    from datetime import timezone as tzmod

    berlin_offset = tzmod(timedelta(hours=1))
    arm = Arm("j", ts("2026-11-27T09:00:00Z").astimezone(berlin_offset), CB)
    job = make_job("j")
    a = only(run_plan([job], [arm], {"j": applied(job)}))
    assert a.action == "skip"


# --------------------------------------------------------------------------- desired: T, live: T' != T


def test_schedule_change_rearms_with_field_diff():
    old = make_job("j", {"kind": "cron", "expr": "0 9 * * *"})
    new = make_job("j", {"kind": "cron", "expr": "30 9 * * *"})
    arm = Arm("j", ts("2026-11-27T09:00:00Z"), CB)
    rec = {
        "j": JobRecord(
            "j",
            applied_spec=old.spec,
            applied_digest=old.digest,
            applied_fire_at=arm.fire_at,
            applied_callback_url=CB,
        )
    }
    a = only(run_plan([new], [arm], rec))
    assert (a.action, reason_text(a)) == ("rearm", "schedule changed")
    assert a.before == arm and a.after.fire_at == ts("2026-11-27T09:30:00Z")
    assert [(c.path, c.before, c.after) for c in a.changes] == [
        ("schedule.expr", "0 9 * * *", "30 9 * * *")
    ]


def test_callback_change_rearms():
    arm = Arm("j", ts("2026-11-27T09:00:00Z"), "http://127.0.0.1:9999")
    a = only(run_plan([make_job("j")], [arm]))
    assert (a.action, reason_text(a)) == ("rearm", "callback changed")
    assert a.changes[0].path == "callback_url"
    assert a.after.callback_url == CB


def test_arm_moved_outside_cronplan_is_drift():
    job = make_job("j")
    applied = ts("2026-11-27T09:00:00Z")
    arm = Arm("j", ts("2026-11-27T15:00:00Z"), CB)
    rec = {
        "j": JobRecord(
            "j",
            applied_spec=job.spec,
            applied_digest=job.digest,
            applied_fire_at=applied,
            applied_callback_url=CB,
        )
    }
    a = only(run_plan([job], [arm], rec))
    assert (a.action, reason_text(a)) == ("rearm", "drift: arm changed outside cronplan")
    assert a.after.fire_at == applied


# --------------------------------------------------------------------------- the rules below the table


def test_never_fired_job_arms_first_occurrence_at_or_after_now():
    job = make_job("j", {"kind": "cron", "expr": "0 12 * * *"})
    a = only(run_plan([job]))  # NOW is exactly 12:00: that occurrence is not in the past
    assert a.after.fire_at == NOW


def test_next_occurrence_after_last_fired():
    job = make_job("j", {"kind": "interval", "minutes": 15})
    rec = {
        "j": JobRecord(
            "j",
            last_fired_at=ts("2026-11-26T11:45:00Z"),
            applied_fire_at=ts("2026-11-26T11:45:00Z"),
            runs=3,
        )
    }
    a = only(run_plan([job], records=rec, now=ts("2026-11-26T11:50:00Z")))
    assert a.after.fire_at == ts("2026-11-26T12:00:00Z")


def test_missed_beyond_grace_with_catch_up_once_arms_most_recent_missed_only():
    job = make_job("j", {"kind": "interval", "minutes": 10}, catch_up="once")
    rec = {
        "j": JobRecord(
            "j",
            last_fired_at=ts("2026-11-26T08:00:00Z"),
            applied_fire_at=ts("2026-11-26T08:10:00Z"),
            runs=1,
        )
    }
    # The latest missed occurrence is 12:00, 6 minutes ago: beyond the 300 s grace of a 10-minute job.
    now = ts("2026-11-26T12:06:00Z")
    a = only(run_plan([job], records=rec, now=now))
    assert a.after.fire_at == ts("2026-11-26T12:00:00Z")
    assert reason_text(a) == "catch-up of missed 12:00"


def test_missed_beyond_grace_with_catch_up_skip_arms_next_future():
    job = make_job("j", {"kind": "interval", "minutes": 10}, catch_up="skip")
    rec = {
        "j": JobRecord(
            "j",
            last_fired_at=ts("2026-11-26T08:00:00Z"),
            applied_fire_at=ts("2026-11-26T08:10:00Z"),
            runs=1,
        )
    }
    a = only(run_plan([job], records=rec, now=ts("2026-11-26T12:06:00Z")))
    assert a.after.fire_at == ts("2026-11-26T12:10:00Z")
    assert "beyond grace" in reason_text(a)


@pytest.mark.parametrize("catch_up", ["once", "skip"])
def test_catch_up_plan_is_stable_when_run_twice(catch_up):
    job = make_job("j", {"kind": "interval", "minutes": 10}, catch_up=catch_up)
    ledger = MemoryLedger()
    ledger.records["j"] = JobRecord(
        "j",
        last_fired_at=ts("2026-11-26T08:00:00Z"),
        applied_fire_at=ts("2026-11-26T08:10:00Z"),
        runs=1,
    )
    provider = MemoryProvider()
    now = ts("2026-11-26T12:05:00Z")
    first = run_plan([job], provider.list_arms(), ledger.job_records(), now)
    assert apply_plan(first, provider, ledger, {"j": job}, clock=PinnedClock(now)).ok
    second = run_plan([job], provider.list_arms(), ledger.job_records(), now)
    assert not second.has_changes, second.actions


def test_due_arm_is_left_alone():
    job = make_job("j", {"kind": "cron", "expr": "0 12 * * *"})
    arm = Arm("j", NOW, CB)
    a = only(run_plan([job], [arm], {"j": applied(job)}, now=NOW + timedelta(seconds=30)))
    assert (a.action, reason_text(a)) == ("skip", "due, awaiting fire")


def test_due_arm_not_replaced_even_when_ledger_never_saw_it():
    job = make_job("j", {"kind": "interval", "minutes": 60})
    arm = Arm("j", ts("2026-11-26T12:00:00Z"), CB)  # due 90 s ago; grace is 30 min
    a = only(run_plan([job], [arm], {"j": applied(job)}, now=ts("2026-11-26T12:01:30Z")))
    assert (a.action, reason_text(a)) == ("skip", "due, awaiting fire")
    # Not even when the ledger holds no definition either: the arm stays, apply records the job.
    a = only(run_plan([job], [arm], now=ts("2026-11-26T12:01:30Z")))
    assert (a.action, a.before, a.after.fire_at) == ("update", arm, arm.fire_at)


def test_claimed_arm_in_the_past_is_not_due():
    job = make_job("j", {"kind": "interval", "minutes": 60})
    arm = Arm("j", ts("2026-11-26T12:00:00Z"), CB)
    rec = {
        "j": JobRecord(
            "j",
            last_fired_at=arm.fire_at,
            applied_fire_at=arm.fire_at,
            runs=1,
            applied_spec=job.spec,
            applied_digest=job.digest,
            applied_callback_url=CB,
        )
    }
    a = only(run_plan([job], [arm], rec, now=ts("2026-11-26T12:00:05Z")))
    assert a.action == "rearm"
    assert a.after.fire_at == ts("2026-11-26T13:00:00Z")


def test_several_arms_keep_the_right_one_cancel_the_rest():
    job = make_job("j")
    right = Arm("j", ts("2026-11-27T09:00:00Z"), CB)
    extra1 = Arm("j", ts("2026-11-28T09:00:00Z"), CB, provider_ref="b")
    extra2 = Arm("j", ts("2026-11-29T09:00:00Z"), CB, provider_ref="c")
    p = run_plan([job], [extra2, right, extra1])
    kinds = [(a.action, a.before) for a in p.actions]
    assert kinds[0][0] == "rearm" and p.actions[0].after.fire_at == right.fire_at
    assert [a.before for a in p.actions if a.action == "cancel"] == [extra1, extra2]
    provider = MemoryProvider([extra2, right, extra1])
    assert apply_plan(p, provider, MemoryLedger(), {"j": job}, clock=PinnedClock(NOW)).ok
    assert provider.list_arms() == [Arm("j", right.fire_at, CB)]


def test_empty_jobs_with_live_arms_is_refused_unless_allowed():
    arm = Arm("j", ts("2026-11-27T09:00:00Z"), CB)
    with pytest.raises(EmptyJobsRefused, match="--allow-empty"):
        run_plan([], [arm])
    a = only(run_plan([], [arm], allow_empty=True))
    assert a.action == "cancel"


def test_empty_jobs_without_arms_is_fine():
    assert run_plan([], []).actions == ()


def test_spec_change_without_time_change_is_update():
    old = make_job("j", prompt="hello")
    new = make_job("j", prompt="hello world")
    arm = Arm("j", ts("2026-11-27T09:00:00Z"), CB)
    rec = {
        "j": JobRecord(
            "j",
            applied_spec=old.spec,
            applied_digest=old.digest,
            applied_fire_at=arm.fire_at,
            applied_callback_url=CB,
        )
    }
    a = only(run_plan([new], [arm], rec))
    assert (a.action, reason_text(a), a.before, a.after) == ("update", "job changed", arm, arm)
    assert [(c.path, c.before, c.after) for c in a.changes] == [("prompt", "hello", "hello world")]


@pytest.mark.parametrize(
    "field",
    [
        {"command": ["echo", "new"]},
        {"env": {"A": "2"}},
        {"timeout_seconds": 60},
        {"name": "renamed"},
        {"repeat": {"times": 9}},
        {"catch_up": "skip"},
        {"skills": ["b"]},
        {"model": "other"},
        {"x-team": "ops"},
    ],
)
def test_any_field_of_a_job_counts_as_a_change(field):
    base = {"command": ["echo", "old"], "env": {"A": "1"}, "skills": ["a"], "model": "m"}
    old = make_job("j", **base)
    new = make_job("j", **{**base, **field})
    arm = Arm("j", ts("2026-11-27T09:00:00Z"), CB)
    a = only(run_plan([new], [arm], {"j": applied(old, applied_fire_at=arm.fire_at)}))
    assert (a.action, reason_text(a)) == ("update", "job changed")
    assert a.changes and all(c.path.split(".")[0].split("[")[0] in field for c in a.changes)


def test_schedule_and_definition_change_together_is_a_rearm_with_the_diff():
    old = make_job("j", command=["echo", "old"])
    new = make_job("j", {"kind": "cron", "expr": "15 9 * * *"}, command=["echo", "new"])
    arm = Arm("j", ts("2026-11-27T09:00:00Z"), CB)
    a = only(run_plan([new], [arm], {"j": applied(old, applied_fire_at=arm.fire_at)}))
    assert (a.action, reason_text(a)) == ("rearm", "schedule changed")
    assert [c.path for c in a.changes] == ["command[1]", "schedule.expr"]


def test_callback_change_shows_the_definition_diff_too():
    old = make_job("j", command=["echo", "old"])
    new = make_job("j", command=["echo", "new"])
    arm = Arm("j", ts("2026-11-27T09:00:00Z"), "http://127.0.0.1:9999")
    rec = {"j": applied(old, applied_fire_at=arm.fire_at)}
    a = only(run_plan([new], [arm], rec))
    assert (a.action, reason_text(a)) == ("rearm", "callback changed")
    assert [c.path for c in a.changes] == ["callback_url", "command[1]"]


def test_update_is_a_change_and_apply_records_it_without_a_provider_call():
    old = make_job("j", command=["echo", "old"])
    new = make_job("j", command=["echo", "new"])
    arm = Arm("j", ts("2026-11-27T09:00:00Z"), CB)
    ledger = MemoryLedger()
    ledger.records["j"] = applied(old, applied_fire_at=arm.fire_at, applied_callback_url=CB)
    provider = MemoryProvider([arm])
    p = run_plan([new], provider.list_arms(), ledger.job_records())
    assert p.has_changes and p.summary.update == 1 and p.summary.changes == 1
    assert set(p.basis) == {"j"} and p.definitions == {"j": new.spec}
    result = apply_plan(p, provider, ledger, {"j": new}, clock=PinnedClock(p.now))
    assert result.ok and [a.action for a in result.done] == ["update"]
    assert provider.calls == [] and provider.arms == [arm]
    rec = ledger.records["j"]
    assert (rec.applied_digest, rec.applied_fire_at) == (new.digest, arm.fire_at)
    assert not run_plan([new], provider.list_arms(), ledger.job_records()).has_changes


def test_job_change_reason_when_schedule_same():
    old = make_job("j", {"kind": "interval", "minutes": 60}, repeat={"times": 10})
    new = make_job("j", {"kind": "interval", "minutes": 60}, repeat={"times": 10}, catch_up="skip")
    arm = Arm("j", ts("2026-11-26T10:00:00Z"), CB)  # stale: long past and not due
    rec = {
        "j": JobRecord(
            "j",
            applied_spec=old.spec,
            applied_digest=old.digest,
            applied_fire_at=arm.fire_at,
            applied_callback_url=CB,
        )
    }
    a = only(run_plan([new], [arm], rec))
    assert (a.action, reason_text(a)) == ("rearm", "job changed")
    assert [c.path for c in a.changes] == ["catch_up"]


def test_resumed_job_does_not_catch_up_what_was_missed_while_paused():
    job = make_job("j", {"kind": "interval", "minutes": 10})
    rec = {
        "j": JobRecord(
            "j",
            applied_spec=job.spec,
            applied_digest=job.digest,
            applied_fire_at=None,
            last_fired_at=ts("2026-11-20T00:00:00Z"),
            runs=4,
        )
    }
    a = only(run_plan([job], records=rec))
    assert (a.action, reason_text(a)) == ("arm", "missing")
    assert a.after.fire_at == NOW


def test_targets_and_excludes():
    jobs = [make_job(i) for i in ("a", "b", "c")]
    assert [a.job_id for a in run_plan(jobs, targets=["b"]).actions] == ["b"]
    assert [a.job_id for a in run_plan(jobs, excludes=["b"]).actions] == ["a", "c"]


def test_basis_covers_only_jobs_with_changes():
    jobs = [make_job("a"), make_job("b")]
    arm = Arm("b", ts("2026-11-27T09:00:00Z"), CB)
    p = run_plan(jobs, [arm], {"b": applied(jobs[1])})
    assert set(p.basis) == {"a"}


def test_local_provider_plans_null_callback():
    p = plan([make_job("j")], [], {}, NOW, provider="local", callback_url=None)
    assert p.actions[0].after.callback_url is None
    assert p.callback_url is None


def test_desired_once_job_completed_after_its_run():
    job = make_job("j", {"kind": "once", "run_at": "2026-11-26T09:00:00Z"})
    rec = JobRecord(
        "j",
        last_fired_at=ts("2026-11-26T09:00:00Z"),
        applied_fire_at=ts("2026-11-26T09:00:00Z"),
        runs=1,
    )
    target, code, detail = desired(job, rec, NOW)
    assert (target, code) == (None, ReasonCode.REPEAT_EXHAUSTED)
    assert reason_words(code, detail) == "repeat exhausted (1/1)"


def test_output_order_is_by_job_id():
    jobs = [make_job(i) for i in ("zeta", "alpha", "mid")]
    assert [a.job_id for a in run_plan(jobs).actions] == ["alpha", "mid", "zeta"]


# --------------------------------------------------------------------------- properties

EXPRS = ["0 9 * * *", "*/5 * * * *", "30 2 * * 1-5", "0 0 1 * *", "15 */2 * * *", "0 9 * * 1#2"]


@st.composite
def scenarios(draw):
    n = draw(st.integers(0, 8))
    jobs = []
    for i in range(n):
        kind = draw(st.sampled_from(["cron", "interval", "once"]))
        if kind == "cron":
            sched = {
                "kind": "cron",
                "expr": draw(st.sampled_from(EXPRS)),
                "tz": draw(st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"])),
            }
        elif kind == "interval":
            sched = {
                "kind": "interval",
                "seconds": draw(st.sampled_from([1, 30, 60, 900, 3600, 86400])),
            }
        else:
            offset = draw(st.integers(-3 * 86400, 3 * 86400))
            sched = {"kind": "once", "run_at": (NOW + timedelta(seconds=offset)).isoformat()}
        fields = {}
        if draw(st.booleans()):
            fields["state"] = draw(st.sampled_from(["scheduled", "paused", "completed", "error"]))
        if draw(st.integers(0, 4)) == 0:
            fields["enabled"] = False
        if draw(st.booleans()):
            fields["catch_up"] = draw(st.sampled_from(["once", "skip"]))
        if draw(st.integers(0, 3)) == 0:
            fields["repeat"] = {"times": draw(st.integers(1, 4))}
        jobs.append(make_job(f"job{i}", sched, **fields))
    records = {}
    for job in jobs:
        if draw(st.booleans()):
            fired = NOW - timedelta(seconds=draw(st.integers(1, 5 * 86400)))
            records[job.id] = JobRecord(
                job.id, last_fired_at=fired, applied_fire_at=fired, runs=draw(st.integers(1, 3))
            )
    orphans = [
        Arm(f"orphan{i}", NOW + timedelta(hours=i + 1), CB) for i in range(draw(st.integers(0, 3)))
    ]
    now = NOW + timedelta(seconds=draw(st.integers(0, 86400)))
    return jobs, records, orphans, now


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_property_apply_then_replan_gives_no_changes(scenario):
    jobs, records, orphans, now = scenario
    ledger = MemoryLedger()
    ledger.records.update(records)
    provider = MemoryProvider(orphans)
    first = run_plan(jobs, provider.list_arms(), ledger.job_records(), now, allow_empty=True)
    result = apply_plan(first, provider, ledger, {j.id: j for j in jobs}, clock=PinnedClock(now))
    assert result.ok
    second = run_plan(jobs, provider.list_arms(), ledger.job_records(), now, allow_empty=True)
    assert not second.has_changes, [a for a in second.actions if a.is_change]


@settings(max_examples=100, deadline=None)
@given(scenarios(), st.randoms(use_true_random=False))
def test_property_input_order_never_changes_the_plan(scenario, rnd: random.Random):
    jobs, records, orphans, now = scenario
    arms = orphans + [Arm(j.id, now + timedelta(minutes=7), CB) for j in jobs[::2]]
    base = run_plan(jobs, arms, records, now, allow_empty=True)
    jobs2, arms2 = list(jobs), list(arms)
    rnd.shuffle(jobs2)
    rnd.shuffle(arms2)
    assert run_plan(jobs2, arms2, records, now, allow_empty=True) == base


@settings(max_examples=100, deadline=None)
@given(scenarios())
def test_property_matching_arms_mean_no_changes_and_no_wrong_cancels(scenario):
    jobs, records, orphans, now = scenario
    # Every job's definition is the applied one (as after an apply); only the arms are in question.
    records = {
        j.id: dataclasses.replace(
            records.get(j.id, JobRecord(j.id)), applied_spec=j.spec, applied_digest=j.digest
        )
        for j in jobs
    }
    matching = []
    for job in jobs:
        target, _, _ = desired(job, records.get(job.id), now)
        if target is not None:
            matching.append(Arm(job.id, target, CB))
    p = run_plan(jobs, matching, records, now, allow_empty=True)
    assert not p.has_changes
    # And with orphans + duplicates added: ids appear once (besides duplicate-arm cancels), and no arm of
    # a job that is in jobs.json, enabled and not done is cancelled except as a duplicate.
    dupes = [
        Arm(a.job_id, a.fire_at + timedelta(hours=1), CB, provider_ref="dup") for a in matching[:2]
    ]
    p = run_plan(jobs, matching + dupes + orphans, records, now, allow_empty=True)
    main_ids = [a.job_id for a in p.actions if a.reason_code is not ReasonCode.DUPLICATE_ARM]
    assert len(main_ids) == len(set(main_ids))
    by_id = {j.id: j for j in jobs}
    for a in p.actions:
        job = by_id.get(a.job_id)
        if (
            a.action == "cancel"
            and job is not None
            and desired(job, records.get(job.id), now)[0] is not None
        ):
            assert reason_text(a) == "duplicate arm"


@settings(max_examples=60, deadline=None)
@given(scenarios())
def test_property_actions_are_whole_actions(scenario):
    """The planner builds Actions without the dataclass __init__ (a bulk path): each must be whole."""
    import dataclasses

    from cronplan.model import Action

    jobs, records, orphans, now = scenario
    arms = orphans + [Arm(j.id, now + timedelta(minutes=7), CB) for j in jobs[::2]]
    names = {f.name for f in dataclasses.fields(Action)}
    by_id = {j.id: j for j in jobs}
    for a in run_plan(jobs, arms, records, now, allow_empty=True).actions:
        assert set(vars(a)) == names
        assert a == Action(**vars(a))
        job = by_id.get(a.job_id)
        assert a.job_digest == (job.digest if job else None)
        assert a.tz == (job.tz if job else None)


def test_occurrence_claimed_at_exactly_now_is_not_armed_again():
    job = make_job("j", {"kind": "interval", "minutes": 60})
    rec = {"j": JobRecord("j", last_fired_at=NOW, applied_fire_at=NOW, runs=1)}
    a = only(run_plan([job], records=rec, now=NOW))
    assert a.after.fire_at == NOW + timedelta(hours=1)


def test_late_run_covers_missed_occurrences_run_once_then_fast_forward():
    job = make_job("j", {"kind": "interval", "minutes": 10})
    # The 08:00 arm fired four hours late (claimed at 12:00); 08:10 … 11:50 were missed meanwhile.
    rec = {
        "j": JobRecord(
            "j",
            last_fired_at=ts("2026-11-26T08:00:00Z"),
            applied_fire_at=ts("2026-11-26T08:00:00Z"),
            runs=1,
            last_claimed_at=ts("2026-11-26T12:00:01Z"),
        )
    }
    a = only(run_plan([job], records=rec, now=ts("2026-11-26T12:00:02Z")))
    assert (a.action, a.after.fire_at) == ("arm", ts("2026-11-26T12:10:00Z"))


def test_manual_run_ahead_of_time_of_never_applied_job_is_not_armed_again():
    job = make_job("j", {"kind": "cron", "expr": "0 9 * * *"})
    rec = {"j": JobRecord("j", last_fired_at=ts("2026-11-27T09:00:00Z"), runs=1)}
    a = only(run_plan([job], records=rec))
    assert a.after.fire_at == ts("2026-11-28T09:00:00Z")


def test_due_arm_of_a_once_job_is_left_alone():
    job = make_job("j", {"kind": "once", "run_at": "2026-11-26T12:00:00Z"})
    arm = Arm("j", NOW, CB)
    rec = {"j": applied(job)}
    a = only(run_plan([job], [arm], rec, now=NOW + timedelta(seconds=60)))  # once grace: 120 s
    assert (a.action, reason_text(a)) == ("skip", "due, awaiting fire")
    late = only(run_plan([job], [arm], rec, now=NOW + timedelta(seconds=121)))
    assert (late.action, reason_text(late)) == ("cancel", "no future occurrence")


def test_due_once_arm_with_a_duplicate_keeps_the_due_one():
    job = make_job("j", {"kind": "once", "run_at": "2026-11-26T12:00:00Z"})
    due = Arm("j", NOW, CB)
    stray = Arm("j", NOW + timedelta(days=1), CB, provider_ref="x")
    p = run_plan([job], [stray, due], now=NOW + timedelta(seconds=60))
    assert [(a.action, a.before) for a in p.actions] == [("rearm", due), ("cancel", stray)]
    assert p.actions[0].after.fire_at == NOW
