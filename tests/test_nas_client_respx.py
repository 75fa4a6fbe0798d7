"""Narrow client cases with respx: exact retry timing (Retry-After, backoff with jitter) and headers.

Everything else about the client runs against the real test server (test_nas_client.py).
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from cronplan_nas import NasProvider
from cronplan_nas.client import parse_retry_after

from cronplan.errors import ProviderError
from cronplan.model import Arm
from cronplan.provider import ProviderSettings

PORTAL = "https://portal.example"
TOKEN = "tok-3f9a77c1d2e4b5a6978899aabbccddee"
T0 = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)


class FakeTime:
    """A monotonic clock that only moves when the client sleeps; records every sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make(fake: FakeTime, **options: Any) -> NasProvider:
    opts = {
        "portal_url": PORTAL,
        "jwks_url": PORTAL + "/jwks",
        "issuer": PORTAL,
        "audience": "agent:x",
        "retry_base_seconds": 0.5,
        "retry_max_backoff_seconds": 4.0,
        "retry_total_seconds": 30.0,
        **options,
    }
    return NasProvider(
        ProviderSettings(
            "nas", opts, "https://agent.example", Path("/tmp"), {"CRONPLAN_NAS_TOKEN": TOKEN}
        ),
        sleep=fake.sleep,
        monotonic=fake.monotonic,
        rng=random.Random(42),
    )


@respx.mock(base_url=PORTAL, assert_all_called=True)
def test_request_headers_and_body(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post("/api/agent-cron/provision").respond(200, json={"schedule_id": "s1"})
    make(FakeTime()).arm(Arm("a", T0))
    req = route.calls.last.request
    assert req.headers["authorization"] == f"Bearer {TOKEN}"
    assert req.headers["content-type"] == "application/json"
    assert req.headers["accept"] == "application/json"
    assert json.loads(req.content) == {
        "job_id": "a",
        "fire_at": "2026-11-27T09:00:00Z",
        "agent_callback_url": "https://agent.example",
        "dedup_key": "a:2026-11-27T09:00:00Z",
    }


@respx.mock(base_url=PORTAL)
def test_list_and_cancel_requests(respx_mock: respx.MockRouter) -> None:
    listing = respx_mock.get("/api/agent-cron/list").respond(
        200, json={"armed": [{"job_id": "a", "fire_at": "2026-11-27T09:00:00Z", "schedule_id": 7}]}
    )
    cancel = respx_mock.post("/api/agent-cron/cancel").respond(200, json={"ok": True})
    p = make(FakeTime())
    (arm,) = p.list_arms()
    assert (arm.job_id, arm.fire_at, arm.provider_ref, arm.callback_url) == ("a", T0, "7", None)
    p.cancel("a")
    assert json.loads(cancel.calls.last.request.content) == {"job_id": "a"}
    assert listing.calls.last.request.headers["authorization"] == f"Bearer {TOKEN}"


@respx.mock(base_url=PORTAL)
def test_retry_after_seconds_is_honoured_exactly(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post("/api/agent-cron/cancel")
    route.side_effect = [
        httpx.Response(429, headers={"Retry-After": "3"}),
        httpx.Response(503, headers={"Retry-After": "7"}),
        httpx.Response(200, json={"ok": True}),
    ]
    fake = FakeTime()
    make(fake).cancel("a")
    assert fake.sleeps == [3.0, 7.0]
    assert route.call_count == 3


@respx.mock(base_url=PORTAL)
def test_retry_after_http_date_is_honoured(respx_mock: respx.MockRouter) -> None:
    when = datetime.now(timezone.utc) + timedelta(seconds=12)
    respx_mock.post("/api/agent-cron/cancel").side_effect = [
        httpx.Response(429, headers={"Retry-After": format_datetime(when, usegmt=True)}),
        httpx.Response(200, json={"ok": True}),
    ]
    fake = FakeTime()
    make(fake).cancel("a")
    (slept,) = fake.sleeps
    assert 10.0 <= slept <= 12.0


def test_parse_retry_after() -> None:
    now = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after(" 0 ") == 0.0
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("Fri, 27 Nov 2026 09:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Fri, 27 Nov 2026 08:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


@respx.mock(base_url=PORTAL)
def test_backoff_is_exponential_with_full_jitter(respx_mock: respx.MockRouter) -> None:
    respx_mock.get("/api/agent-cron/list").side_effect = [httpx.Response(500)] * 6 + [
        httpx.Response(200, json={"armed": []})
    ]
    fake = FakeTime()
    make(fake).list_arms()
    rng = random.Random(42)
    expected = [rng.uniform(0.0, min(4.0, 0.5 * 2**n)) for n in range(6)]
    assert fake.sleeps == pytest.approx(expected)
    caps = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert all(0 <= s <= c for s, c in zip(fake.sleeps, caps, strict=True))


@respx.mock(base_url=PORTAL)
def test_connection_errors_and_timeouts_are_retried(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post("/api/agent-cron/cancel")
    route.side_effect = [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("dropped"),
        httpx.Response(200, json={"ok": True}),
    ]
    fake = FakeTime()
    make(fake).cancel("a")
    assert route.call_count == 4 and len(fake.sleeps) == 3


@respx.mock(base_url=PORTAL)
def test_total_retry_time_is_bounded(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post("/api/agent-cron/cancel").respond(503)
    fake = FakeTime()
    with pytest.raises(ProviderError, match=r"failed after \d+ attempt\(s\)") as info:
        make(fake, retry_total_seconds=10.0).cancel("a")
    assert sum(fake.sleeps) <= 10.0
    assert route.call_count == len(fake.sleeps) + 1
    assert "HTTP 503" in str(info.value)


@respx.mock(base_url=PORTAL)
def test_retry_after_beyond_the_budget_gives_up_at_once(respx_mock: respx.MockRouter) -> None:
    respx_mock.post("/api/agent-cron/cancel").respond(429, headers={"Retry-After": "3600"})
    fake = FakeTime()
    with pytest.raises(ProviderError, match="NAS asked to retry after 3600s"):
        make(fake).cancel("a")
    assert fake.sleeps == []


@pytest.mark.parametrize("status", [401, 403])
@respx.mock(base_url=PORTAL)
def test_auth_failures_are_not_retried(respx_mock: respx.MockRouter, status: int) -> None:
    route = respx_mock.get("/api/agent-cron/list").respond(status, text=f"bad token {TOKEN}")
    fake = FakeTime()
    with pytest.raises(ProviderError) as info:
        make(fake).list_arms()
    assert str(info.value) == f"NAS rejected the token ({status}): check CRONPLAN_NAS_TOKEN"
    assert route.call_count == 1 and fake.sleeps == []


@respx.mock(base_url=PORTAL)
def test_other_4xx_shows_a_scrubbed_excerpt(respx_mock: respx.MockRouter) -> None:
    body = "invalid request from Bearer " + TOKEN + "\n" + "x" * 1000
    respx_mock.post("/api/agent-cron/provision").respond(422, text=body)
    fake = FakeTime()
    with pytest.raises(ProviderError) as info:
        make(fake).arm(Arm("a", T0))
    msg = str(info.value)
    assert msg.startswith("NAS provision of a failed: HTTP 422: invalid request from Bearer ***")
    assert TOKEN not in msg and TOKEN[:8] not in msg
    assert len(msg) < 300 and msg.endswith("...")
    assert fake.sleeps == []


@respx.mock(base_url=PORTAL)
def test_httpx_exceptions_never_reach_the_caller(respx_mock: respx.MockRouter) -> None:
    def boom(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"failed with {request.headers['authorization']}", request=request)

    respx_mock.post("/api/agent-cron/cancel").mock(side_effect=boom)
    fake = FakeTime()
    with pytest.raises(ProviderError) as info:
        make(fake, retry_total_seconds=1.0).cancel("a")
    exc = info.value
    assert TOKEN not in str(exc) and TOKEN not in repr(exc)
    assert exc.__cause__ is None and exc.__context__ is None
    assert "connection error (ConnectError)" in str(exc)


@pytest.mark.parametrize(
    "body", [b"not json", b"[1, 2]", b'{"armed": "nope"}', b'{"armed": [{"job_id": "a"}]}']
)
@respx.mock(base_url=PORTAL)
def test_malformed_list_answers_are_provider_errors(
    respx_mock: respx.MockRouter, body: bytes
) -> None:
    respx_mock.get("/api/agent-cron/list").respond(200, content=body)
    with pytest.raises(ProviderError, match="NAS"):
        make(FakeTime()).list_arms()


@respx.mock(base_url=PORTAL)
def test_provision_without_schedule_id_is_an_error(respx_mock: respx.MockRouter) -> None:
    respx_mock.post("/api/agent-cron/provision").respond(200, json={})
    with pytest.raises(ProviderError, match="without a schedule_id"):
        make(FakeTime()).arm(Arm("a", T0))
