"""The applier against a fault-injecting provider and the real SQLite ledger."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from cronplan import applier
from cronplan.applier import apply_plan, executable_actions
from cronplan.clock import PinnedClock
from cronplan.errors import ProviderError
from cronplan.ledger.sqlite import SqliteLedger
from cronplan.local.provider import LocalProvider
from cronplan.model import Arm
from cronplan.planner import plan
from cronplan.provider import ProviderSettings
from tests.fakes import FakeProvider
from tests.planning import NOW, make_job

CB = "http://127.0.0.1:8787"
CLOCK = PinnedClock(NOW)


@pytest.fixture
def ledger(tmp_path: Path):
    led = SqliteLedger.from_url("sqlite:///state.db", base_dir=str(tmp_path))
    yield led
    led.close()


def replan(jobs, provider, ledger):
    return plan(
        jobs, provider.list_arms(), ledger.job_records(), NOW, provider="fake", callback_url=CB
    )


def test_partial_failure_is_reported_and_second_apply_converges(ledger):
    jobs = [make_job(f"j{i}", {"kind": "cron", "expr": f"{i} 9 * * *"}) for i in range(20)]
    provider = FakeProvider(fail_job_ids={"j3", "j7"})
    result = apply_plan(
        replan(jobs, provider, ledger), provider, ledger, {j.id: j for j in jobs}, clock=CLOCK
    )
    assert sorted(a.job_id for a, _ in result.failed) == ["j3", "j7"]
    assert all("injected" in err or "fail" in err.lower() for _, err in result.failed)
    assert len(result.done) == 18
    # The failed jobs were not recorded as applied; the others were.
    records = ledger.job_records()
    assert "j3" not in records and records["j0"].applied_fire_at is not None

    provider.fail_job_ids.clear()
    second = replan(jobs, provider, ledger)
    assert [a.job_id for a in second.actions if a.is_change] == ["j3", "j7"]
    assert apply_plan(second, provider, ledger, {j.id: j for j in jobs}, clock=CLOCK).ok
    assert not replan(jobs, provider, ledger).has_changes
    assert sorted(provider.arms) == sorted(j.id for j in jobs)  # one arm per job, none twice


def test_lost_responses_converge_without_duplicates(ledger):
    jobs = [make_job(f"j{i}") for i in range(10)]
    provider = FakeProvider(fail_rate=0.5, seed=3, fail_after_apply=True)
    first = apply_plan(
        replan(jobs, provider, ledger), provider, ledger, {j.id: j for j in jobs}, clock=CLOCK
    )
    assert first.failed  # some responses were "lost" although the arms were made
    provider.fail_rate = 0.0
    second = replan(jobs, provider, ledger)
    # Arms that were made despite the error are kept: no second provision, only the definition that the
    # failed response left unrecorded is recorded (an update).
    assert all(a.action in ("skip", "arm", "update") for a in second.actions)
    assert any(a.action == "update" for a in second.actions)
    assert apply_plan(second, provider, ledger, {j.id: j for j in jobs}, clock=CLOCK).ok
    assert len(provider.arms) == 10


def test_parallelism_is_bounded(ledger):
    jobs = [make_job(f"j{i:03d}") for i in range(60)]
    provider = FakeProvider(latency=0.01)
    result = apply_plan(
        replan(jobs, provider, ledger),
        provider,
        ledger,
        {j.id: j for j in jobs},
        parallelism=4,
        clock=CLOCK,
    )
    assert result.ok and len(result.done) == 60
    assert 1 < provider.max_in_flight <= 4


def test_progress_reaches_total(ledger):
    jobs = [make_job(f"j{i:03d}") for i in range(25)]
    seen: list[tuple[int, int]] = []
    provider = FakeProvider()
    apply_plan(
        replan(jobs, provider, ledger),
        provider,
        ledger,
        {j.id: j for j in jobs},
        progress=lambda d, t: seen.append((d, t)),
        clock=CLOCK,
    )
    assert seen[-1] == (25, 25)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_orphan_cancel_forgets_the_job(ledger):
    job = make_job("keep")
    gone = make_job("gone")
    provider = FakeProvider()
    assert apply_plan(
        replan([job, gone], provider, ledger),
        provider,
        ledger,
        {"keep": job, "gone": gone},
        clock=CLOCK,
    ).ok
    assert "gone" in ledger.job_records()
    p = replan([job], provider, ledger)
    assert [(a.job_id, a.action) for a in p.actions] == [("gone", "cancel"), ("keep", "skip")]
    assert apply_plan(p, provider, ledger, {"keep": job}, clock=CLOCK).ok
    assert "gone" not in provider.arms
    assert (
        ledger.job_records().get("gone") is None
        or ledger.job_records()["gone"].applied_spec is None
    )


def test_duplicate_cancels_are_subsumed_by_the_upsert():
    from cronplan.model import Action, Arm, Plan
    from tests.planning import ts

    keep = Arm("j", ts("2026-11-27T09:00:00Z"), CB)
    extra = Arm("j", ts("2026-11-28T09:00:00Z"), CB)
    p = Plan(
        "fake",
        NOW,
        (
            Action("rearm", "j", "duplicate arms", before=keep, after=keep),
            Action("cancel", "j", "duplicate arm", before=extra),
        ),
    )
    assert [a.action for a in executable_actions(p)] == ["rearm"]


class _BrokenStore(LocalProvider):
    """The real local provider whose bulk arm write fails once, for the given batch."""

    def __init__(self, settings: ProviderSettings, fail_call: int) -> None:
        super().__init__(settings)
        self.calls = 0
        self.fail_call = fail_call

    def arm(
        self, arm: Arm
    ) -> None:  # arm and arm_many from one class: the applier takes the bulk path
        self.arm_many([arm])

    def arm_many(self, arms: Iterable[Arm]) -> int:
        self.calls += 1
        if self.calls == self.fail_call:
            raise ProviderError("disk full (injected)")
        return super().arm_many(arms)


def test_a_bulk_provider_is_applied_in_batches_and_a_failed_batch_fails_its_actions(
    ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The local provider takes arms BULK_BATCH at a time (one transaction each): a failed batch fails
    exactly its own actions, nothing of it is recorded, and the next apply converges."""
    monkeypatch.setattr(applier, "BULK_BATCH", 4)
    settings = ProviderSettings("local", options={"path": str(tmp_path / "arms.db")})
    provider = _BrokenStore(settings, fail_call=2)
    jobs = [make_job(f"j{i:02d}", {"kind": "cron", "expr": f"{i} 9 * * *"}) for i in range(10)]
    seen: list[tuple[int, int]] = []
    result = apply_plan(
        replan(jobs, provider, ledger),
        provider,
        ledger,
        {j.id: j for j in jobs},
        clock=CLOCK,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert provider.calls == 3  # 10 arms in batches of 4
    assert sorted(a.job_id for a, _ in result.failed) == ["j04", "j05", "j06", "j07"]
    assert all(err == "disk full (injected)" for _, err in result.failed)
    assert len(result.done) == 6 and seen[-1] == (10, 10)
    assert sorted(a.job_id for a in provider.list_arms()) == [
        f"j{i:02d}" for i in (0, 1, 2, 3, 8, 9)
    ]
    assert "j05" not in ledger.job_records() and ledger.job_records()["j08"].applied_fire_at

    provider.fail_call = 0
    again = replan(jobs, provider, ledger)
    assert sorted(a.job_id for a in again.actions if a.is_change) == ["j04", "j05", "j06", "j07"]
    assert apply_plan(again, provider, ledger, {j.id: j for j in jobs}, clock=CLOCK).ok
    assert not replan(jobs, provider, ledger).has_changes
    # Orphans are cancelled in bulk too.
    kept = jobs[:3]
    assert apply_plan(
        replan(kept, provider, ledger), provider, ledger, {j.id: j for j in kept}, clock=CLOCK
    ).ok
    assert sorted(a.job_id for a in provider.list_arms()) == ["j00", "j01", "j02"]
    provider.close()


class _FiresAtOnce(FakeProvider):
    """A provider that fires each arm the moment it exists (a first occurrence due now, a catch-up), and
    notes what that fire finds in the ledger (through a connection of its own, as ``serve`` would)."""

    def __init__(self, fire_ledger: SqliteLedger, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.fire_ledger = fire_ledger
        self.seen: dict[str, object] = {}

    def arm(self, arm):  # type: ignore[no-untyped-def]
        super().arm(arm)
        record = self.fire_ledger.job_records([arm.job_id]).get(arm.job_id)
        self.seen[arm.job_id] = None if record is None else record.applied_spec


def test_a_new_job_is_applied_before_its_arm_can_fire(ledger, tmp_path):
    # Found by benchmarks/soak.py: a new job's first arm, fired at once by NAS while apply was still
    # running, met "job is not applied" (its definition was recorded only after the provider call), so the
    # fire was stale, the arm consumed and the job left without an arm.
    fire_ledger = SqliteLedger.from_url("sqlite:///state.db", base_dir=str(tmp_path))
    try:
        jobs = [make_job(f"n{i}", {"kind": "interval", "seconds": 1}) for i in range(3)]
        provider = _FiresAtOnce(fire_ledger, fail_job_ids={"n2"})
        result = apply_plan(
            replan(jobs, provider, ledger), provider, ledger, {j.id: j for j in jobs}, clock=CLOCK
        )
        assert [a.job_id for a, _ in result.failed] == ["n2"]
        by_id = {j.id: j for j in jobs}
        assert provider.seen["n0"] == by_id["n0"].spec
        assert provider.seen["n1"] == by_id["n1"].spec
        # The failed arm is undone: the ledger holds only what was carried out.
        records = ledger.job_records()
        assert records["n0"].applied_spec == by_id["n0"].spec
        assert "n2" not in records or records["n2"].applied_spec is None
    finally:
        fire_ledger.close()


def test_a_fire_rearm_keeps_a_definition_applied_meanwhile(ledger):
    # Found by benchmarks/soak.py: a fire read the job as applied (v1), an apply recorded v2 while the
    # fire was re-arming, and the re-arm then recorded v1 again: fires ran the old command until the next
    # apply. A re-arm (record_definitions=False) records only where the job is armed.
    v1 = make_job("j", {"kind": "interval", "seconds": 60}, command=["true", "v1"])
    v2 = make_job("j", {"kind": "interval", "seconds": 60}, command=["true", "v2"])
    provider = FakeProvider()
    assert apply_plan(replan([v1], provider, ledger), provider, ledger, {"j": v1}, clock=CLOCK).ok
    assert apply_plan(replan([v2], provider, ledger), provider, ledger, {"j": v2}, clock=CLOCK).ok
    provider.arms.clear()  # the arm fired (consumed); the fire re-arms with the v1 it read first
    rearm = replan([v1], provider, ledger)
    result = apply_plan(rearm, provider, ledger, {"j": v1}, clock=CLOCK, record_definitions=False)
    assert result.ok and provider.armed_at("j") is not None
    record = ledger.job_records()["j"]
    assert record.applied_digest == v2.digest and record.applied_spec == v2.spec
    assert record.applied_fire_at == provider.armed_at("j")
