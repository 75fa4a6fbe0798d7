"""The temporal provider against a real Temporal dev server: the shared provider contract and more."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from cronplan.provider import Provider, ProviderSettings
from tests.fixtures_temporal import terminate_task_queue
from tests.provider_contract import CALLBACK, ProviderContract

pytestmark = pytest.mark.temporal


def make_provider(address: str, task_queue: str, secret: str, **options: object) -> Provider:
    from cronplan_temporal import TemporalProvider

    settings = ProviderSettings(
        name="temporal",
        options={"address": address, "task_queue": task_queue, **options},
        callback_url=CALLBACK,
        environ={"CRONPLAN_WEBHOOK_SECRET": secret},
    )
    provider: Provider = TemporalProvider(settings)
    return provider


@pytest.fixture
def provider_factory(
    temporal_address: str, task_queue: str, webhook_secret: str
) -> Iterator[Callable[[], Provider]]:
    opened: list[Provider] = []

    def factory() -> Provider:
        # No worker serves this task queue: cancellations are terminated at once instead of waited for.
        p = make_provider(temporal_address, task_queue, webhook_secret, cancel_wait_seconds=0)
        opened.append(p)
        return p

    yield factory
    for p in opened:
        p.close()
    terminate_task_queue(temporal_address, task_queue)


@pytest.fixture
def provider(provider_factory: Callable[[], Provider]) -> Provider:
    return provider_factory()


class TestTemporalProviderContract(ProviderContract):
    pass
