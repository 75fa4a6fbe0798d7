"""The in-memory FakeProvider (tests/fakes.py): the provider contract, and its fault injection."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from cronplan.errors import AuthError, BadRequest, ProviderError
from cronplan.model import Arm, HttpRequest
from cronplan.provider import ProviderSettings
from tests.fakes import FakeProvider
from tests.provider_contract import ProviderContract

UTC = timezone.utc
T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


class TestFakeProviderContract(ProviderContract):
    @pytest.fixture
    def provider(self) -> FakeProvider:
        return FakeProvider()


def test_counts_calls_and_writes() -> None:
    fake = FakeProvider()
    fake.arm(Arm("a", T0))
    fake.arm(Arm("a", T0))  # same dedup key: counted, but no write
    fake.cancel("a")
    fake.cancel("a")
    fake.list_arms()
    assert fake.calls == {"arm": 2, "cancel": 2, "list_arms": 1}
    assert fake.writes == 2
    assert fake.log == [
        ("arm", "a"),
        ("arm", "a"),
        ("cancel", "a"),
        ("cancel", "a"),
        ("list_arms", None),
    ]


def test_fail_the_nth_call() -> None:
    fake = FakeProvider(fail_calls={2})
    fake.arm(Arm("a", T0))
    with pytest.raises(ProviderError, match="injected failure of cancel"):
        fake.cancel("a")
    assert fake.armed_at("a") == T0  # a failed call changed nothing
    fake.cancel("a")
    assert fake.arms == {}
    assert fake.failures == {"cancel": 1}


def test_fail_a_set_of_job_ids() -> None:
    fake = FakeProvider(fail_job_ids={"b"})
    fake.arm(Arm("a", T0))
    for _ in range(3):
        with pytest.raises(ProviderError):
            fake.arm(Arm("b", T0))
    assert set(fake.arms) == {"a"}


def test_fail_rate_is_reproducible() -> None:
    def outcomes(seed: int) -> list[bool]:
        fake = FakeProvider(fail_rate=0.3, seed=seed)
        result = []
        for i in range(200):
            try:
                fake.arm(Arm(f"j{i}", T0))
                result.append(True)
            except ProviderError:
                result.append(False)
        return result

    first = outcomes(7)
    assert first == outcomes(7)
    assert 30 <= first.count(False) <= 90


def test_fail_after_apply_changes_state_then_raises() -> None:
    fake = FakeProvider(fail_calls={1}, fail_after_apply=True, error=TimeoutError)
    with pytest.raises(TimeoutError):
        fake.arm(Arm("a", T0))
    assert fake.armed_at("a") == T0


def test_list_arms_can_fail_too() -> None:
    fake = FakeProvider(fail_calls={1}, fail_methods={"list_arms"})
    with pytest.raises(ProviderError):
        fake.list_arms()
    assert fake.list_arms() == []


def test_constructible_from_settings_like_a_plugin() -> None:
    fake = FakeProvider(ProviderSettings(name="fake2"))
    assert fake.name == "fake2" and fake.check().ok


def test_verify() -> None:
    fake = FakeProvider()
    body = json.dumps({"job_id": "a", "fire_at": "2026-11-27T09:00:00Z"}).encode()
    call = fake.verify(
        HttpRequest("POST", "/api/cron/fire", {"authorization": "Bearer fake-token"}, body)
    )
    assert (call.job_id, call.fire_at) == ("a", T0)
    with pytest.raises(AuthError):
        fake.verify(HttpRequest("POST", "/api/cron/fire", {}, body))
    with pytest.raises(BadRequest):
        fake.verify(
            HttpRequest("POST", "/api/cron/fire", {"authorization": "Bearer fake-token"}, b"{}")
        )
