"""The NAS client against the real test server: the wire contract, faults, bounded retries, secrecy."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cronplan_nas import NasProvider

from cronplan.errors import ProviderError
from cronplan.model import Arm
from tests.fixtures_nas import free_port, nas_settings
from tests.nas_server import NasTestServer
from tests.provider_contract import ProviderContract

UTC = timezone.utc
T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
CALLBACK = "http://127.0.0.1:8787"


@pytest.fixture
def quiet_server() -> Iterator[NasTestServer]:
    """A server that never fires (arms in the past stay put)."""
    server = NasTestServer(fire_enabled=False, seed=7)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def provider(quiet_server: NasTestServer, tmp_path: Path) -> Iterator[NasProvider]:
    p = NasProvider(nas_settings(quiet_server, tmp_path, callback_url=CALLBACK))
    try:
        yield p
    finally:
        p.close()


class TestNasProviderContract(ProviderContract):
    """The behaviour every provider shares (tests/provider_contract.py), on the real test server."""

    @pytest.fixture
    def provider_factory(self, quiet_server: NasTestServer, tmp_path: Path) -> Iterator[object]:
        made: list[NasProvider] = []

        def factory() -> NasProvider:
            p = NasProvider(nas_settings(quiet_server, tmp_path, callback_url=CALLBACK))
            made.append(p)
            return p

        yield factory
        for p in made:
            p.close()


# --------------------------------------------------------------------------- the wire contract


def test_provision_body_matches_the_contract(
    provider: NasProvider, quiet_server: NasTestServer
) -> None:
    at = datetime(2026, 11, 27, 10, 0, 0, 999_000, tzinfo=timezone(timedelta(hours=1)))
    provider.arm(Arm("job.1", at, CALLBACK + "/"))
    assert quiet_server.provisions == [
        {
            "job_id": "job.1",
            "fire_at": "2026-11-27T09:00:00Z",
            "agent_callback_url": CALLBACK,
            "dedup_key": "job.1:2026-11-27T09:00:00Z",
        }
    ]
    assert quiet_server.violations == []


def test_arm_without_callback_uses_the_configured_one(
    provider: NasProvider, quiet_server: NasTestServer
) -> None:
    provider.arm(Arm("a", T0))
    assert quiet_server.provisions[0]["agent_callback_url"] == CALLBACK


def test_list_maps_schedule_id_and_callback(
    provider: NasProvider, quiet_server: NasTestServer
) -> None:
    provider.arm(Arm("a", T0, CALLBACK))
    (arm,) = provider.list_arms()
    assert arm.job_id == "a" and arm.fire_at == T0
    assert arm.provider_ref == quiet_server.arms["a"].schedule_id
    assert arm.callback_url == CALLBACK


def test_list_without_callback_field_gives_none(tmp_path: Path) -> None:
    with NasTestServer(fire_enabled=False, list_callback=False) as server:
        p = NasProvider(nas_settings(server, tmp_path))
        p.arm(Arm("a", T0, CALLBACK))
        (arm,) = p.list_arms()
        assert arm.callback_url is None and arm.provider_ref is not None
        p.close()


def test_same_dedup_key_sends_but_changes_nothing(
    provider: NasProvider, quiet_server: NasTestServer
) -> None:
    provider.arm(Arm("a", T0, CALLBACK))
    ref = quiet_server.arms["a"].schedule_id
    provider.arm(Arm("a", T0, CALLBACK))
    assert quiet_server.arms["a"].schedule_id == ref
    assert quiet_server.count("provision_noop") == 1
    assert quiet_server.count("provision_created") == 1


# --------------------------------------------------------------------------- the token


def test_wrong_token_is_not_retried_and_not_leaked(
    quiet_server: NasTestServer, tmp_path: Path
) -> None:
    quiet_server.echo_token_in_errors = True
    wrong = "wrong-token-value-12345"
    p = NasProvider(nas_settings(quiet_server, tmp_path, token=wrong))
    with pytest.raises(ProviderError) as info:
        p.list_arms()
    assert str(info.value) == "NAS rejected the token (401): check CRONPLAN_NAS_TOKEN"
    assert wrong not in repr(info.value) and wrong not in str(info.value)
    assert info.value.__cause__ is None
    assert quiet_server.count("GET /api/agent-cron/list") == 1  # no retry
    assert quiet_server.count("unauthorized") == 1
    with pytest.raises(ProviderError, match=r"rejected the token \(401\)"):
        p.arm(Arm("a", T0, CALLBACK))
    assert quiet_server.count("POST /api/agent-cron/provision") == 1
    p.close()


def test_token_env_name_follows_the_config(quiet_server: NasTestServer, tmp_path: Path) -> None:
    settings = nas_settings(quiet_server, tmp_path, token_env="ACME_TOKEN")
    from dataclasses import replace

    p = NasProvider(replace(settings, environ={"ACME_TOKEN": "nope-nope"}))
    with pytest.raises(ProviderError, match=r"check ACME_TOKEN$"):
        p.cancel("a")
    p.close()


# --------------------------------------------------------------------------- faults and retries


@pytest.mark.timeout(60)
def test_mixed_faults_are_retried_to_success(quiet_server: NasTestServer, tmp_path: Path) -> None:
    quiet_server.set_faults(error_rate=0.5, retry_after="1")
    p = NasProvider(nas_settings(quiet_server, tmp_path))
    wanted = {f"job-{i:03d}": T0 + timedelta(minutes=i) for i in range(60)}
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda kv: p.arm(Arm(kv[0], kv[1], CALLBACK)), wanted.items()))
    assert {a.job_id: a.fire_at for a in p.list_arms()} == wanted
    counters = quiet_server.snapshot()["counters"]
    for kind in ("500", "503", "429", "drop", "drop_after"):
        assert counters.get(f"fault_{kind}", 0) > 0, (kind, counters)
    # A provision that took effect but whose answer was dropped is a no-op when retried.
    assert counters["provision_created"] == 60
    assert counters.get("provision_replaced", 0) == 0
    p.close()


@pytest.mark.timeout(30)
@pytest.mark.slow
def test_retries_stop_within_the_budget(quiet_server: NasTestServer, tmp_path: Path) -> None:
    quiet_server.set_faults(error_rate=1.0, kinds=("503",))
    p = NasProvider(
        nas_settings(quiet_server, tmp_path, retry_total_seconds=1.5, retry_base_seconds=0.05)
    )
    start = time.monotonic()
    with pytest.raises(ProviderError) as info:
        p.arm(Arm("a", T0, CALLBACK))
    elapsed = time.monotonic() - start
    assert elapsed < 1.5 + 3.0  # the budget plus slack for a loaded machine
    msg = str(info.value)
    assert msg.startswith("NAS provision of a failed after ")
    assert "HTTP 503" in msg and "retry_total_seconds=1.5" in msg
    assert quiet_server.count("POST /api/agent-cron/provision") >= 3
    assert quiet_server.token not in msg
    p.close()


@pytest.mark.timeout(30)
@pytest.mark.slow
def test_connection_refused_is_retried_then_reported(tmp_path: Path) -> None:
    port = free_port()
    server = NasTestServer()  # not started: only used for its settings shape
    settings = nas_settings(server, tmp_path, retry_total_seconds=0.8)
    from dataclasses import replace

    options = dict(settings.options)
    options["portal_url"] = f"http://127.0.0.1:{port}"
    p = NasProvider(replace(settings, options=options))
    start = time.monotonic()
    with pytest.raises(ProviderError, match=r"connection error \(ConnectError\)") as info:
        p.list_arms()
    assert time.monotonic() - start < 5
    assert "attempt(s)" in str(info.value)
    assert server.token not in str(info.value)
    assert info.value.__context__ is None and info.value.__cause__ is None
    p.close()
    server.stop()


@pytest.mark.timeout(30)
@pytest.mark.slow
def test_every_call_has_a_timeout(quiet_server: NasTestServer, tmp_path: Path) -> None:
    quiet_server.set_faults(latency=5.0)
    p = NasProvider(nas_settings(quiet_server, tmp_path, timeout=0.2, retry_total_seconds=0.5))
    start = time.monotonic()
    with pytest.raises(ProviderError, match=r"timed out \(ReadTimeout\)"):
        p.cancel("a")
    assert time.monotonic() - start < 3.0  # far below the server's 5 s: the timeout cut it short
    p.close()


@pytest.mark.timeout(60)
@pytest.mark.slow
def test_one_pooled_client_serves_parallel_callers(
    quiet_server: NasTestServer, tmp_path: Path
) -> None:
    quiet_server.set_faults(latency=0.05)
    p = NasProvider(nas_settings(quiet_server, tmp_path))
    arms = [Arm(f"j{i}", T0, CALLBACK) for i in range(256)]
    start = time.monotonic()
    with ThreadPoolExecutor(64) as pool:
        list(pool.map(p.arm, arms))
    elapsed = time.monotonic() - start
    assert len(p.list_arms()) == 256
    # Serial would take 256 * 0.05 = 12.8 s; 64 connections in parallel take a fraction of it.
    assert elapsed < 6.0, elapsed
    client = p._client
    assert client is not None and client is p._get_client()
    p.close()
