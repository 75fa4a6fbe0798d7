"""Behaviour every provider has (SPEC §9), whatever it runs on.

Subclass ``ProviderContract`` in a test module and define a ``provider`` fixture returning a fresh, empty,
available provider (and closing it afterwards). When the state outlives a handle, also mix in
``SharedStateContract`` and define ``provider_factory`` (another handle on the same backend, as another
process would open it). Fire times are at whole seconds: ``fire_at`` travels at second precision.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest

from cronplan.model import Arm
from cronplan.provider import Availability, Provider

UTC = timezone.utc
T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
CALLBACK = "http://127.0.0.1:8787"


def make_arm(provider: Provider, job_id: str, fire_at: datetime) -> Arm:
    return Arm(
        job_id=job_id, fire_at=fire_at, callback_url=CALLBACK if provider.calls_back else None
    )


def live(provider: Provider) -> dict[str, datetime]:
    arms = provider.list_arms()
    ids = [a.job_id for a in arms]
    assert len(ids) == len(set(ids)), f"more than one arm per job: {ids}"
    for a in arms:
        assert a.fire_at.utcoffset() == timedelta(0), "fire_at must be aware UTC"
    return {a.job_id: a.fire_at for a in arms}


class ProviderContract:
    def test_identity(self, provider: Provider) -> None:
        assert isinstance(provider.name, str) and provider.name
        assert isinstance(provider.calls_back, bool)
        assert isinstance(provider, Provider)

    def test_check_is_available(self, provider: Provider) -> None:
        result = provider.check()
        assert isinstance(result, Availability)
        assert result.ok, result.detail

    def test_starts_empty(self, provider: Provider) -> None:
        assert provider.list_arms() == []

    def test_arm_then_list(self, provider: Provider) -> None:
        provider.arm(make_arm(provider, "a", T0))
        provider.arm(make_arm(provider, "b", T0 + timedelta(hours=1)))
        assert live(provider) == {"a": T0, "b": T0 + timedelta(hours=1)}
        by_id = {a.job_id: a for a in provider.list_arms()}
        if provider.calls_back:
            assert by_id["a"].callback_url == CALLBACK

    def test_arm_upserts_by_job_id(self, provider: Provider) -> None:
        provider.arm(make_arm(provider, "a", T0))
        provider.arm(make_arm(provider, "a", T0 + timedelta(minutes=5)))
        assert live(provider) == {"a": T0 + timedelta(minutes=5)}
        # Back to an earlier time is allowed too (a reverted schedule change).
        provider.arm(make_arm(provider, "a", T0))
        assert live(provider) == {"a": T0}

    def test_same_dedup_key_is_idempotent(self, provider: Provider) -> None:
        arm = make_arm(provider, "a", T0)
        provider.arm(arm)
        first = provider.list_arms()
        provider.arm(arm)
        provider.arm(make_arm(provider, "a", T0))
        assert provider.list_arms() == first

    def test_cancel(self, provider: Provider) -> None:
        provider.arm(make_arm(provider, "a", T0))
        provider.arm(make_arm(provider, "b", T0))
        provider.cancel("a")
        assert live(provider) == {"b": T0}

    def test_cancel_is_idempotent_and_unknown_is_a_no_op(self, provider: Provider) -> None:
        provider.arm(make_arm(provider, "b", T0))
        provider.cancel("a")
        provider.cancel("never-armed")
        provider.cancel("b")
        provider.cancel("b")
        assert live(provider) == {}

    def test_rearm_after_cancel(self, provider: Provider) -> None:
        provider.arm(make_arm(provider, "a", T0))
        provider.cancel("a")
        provider.arm(make_arm(provider, "a", T0))
        assert live(provider) == {"a": T0}

    def test_past_fire_at_is_accepted(self, provider: Provider) -> None:
        # A catch-up arm is at its own (past) time so it fires at once.
        past = T0 - timedelta(days=400)
        provider.arm(make_arm(provider, "late", past))
        assert live(provider) == {"late": past}

    def test_job_ids_of_every_allowed_shape(self, provider: Provider) -> None:
        ids = ["A", "0", "a.b-c_d", "x" * 64, "Job.2026-11_27"]
        for job_id in ids:
            provider.arm(make_arm(provider, job_id, T0))
        assert sorted(live(provider)) == sorted(ids)

    @pytest.mark.timeout(120)
    def test_many_arms_from_parallel_callers(self, provider: Provider) -> None:
        wanted = {f"job-{i:04d}": T0 + timedelta(seconds=i) for i in range(300)}
        with ThreadPoolExecutor(max_workers=10) as pool:
            list(pool.map(lambda item: provider.arm(make_arm(provider, *item)), wanted.items()))
        assert live(provider) == wanted
        with ThreadPoolExecutor(max_workers=10) as pool:
            list(pool.map(provider.cancel, [j for i, j in enumerate(wanted) if i % 2]))
        assert live(provider) == {j: t for i, (j, t) in enumerate(wanted.items()) if not i % 2}


class SharedStateContract:
    """For a provider whose state outlives the handle: needs a ``provider_factory`` fixture too."""

    def test_state_is_shared_between_handles(
        self, provider: Provider, provider_factory: Callable[[], Provider]
    ) -> None:
        provider.arm(make_arm(provider, "a", T0))
        other = provider_factory()
        assert live(other) == {"a": T0}
        other.cancel("a")
        other.arm(make_arm(other, "b", T0))
        assert live(provider) == {"b": T0}
