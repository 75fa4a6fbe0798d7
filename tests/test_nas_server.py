"""The NAS test server itself: what other NAS tests rely on it to do."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import Any, ClassVar

import httpx
import pytest

from tests.fixtures_nas import free_port
from tests.nas_server import NasTestServer


def _fire_at(seconds: float) -> str:
    when = datetime.now(timezone.utc) + timedelta(seconds=seconds)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _provision(server: NasTestServer, job_id: str, fire_at: str, callback: str) -> None:
    status, _ = server.provision(
        {
            "job_id": job_id,
            "fire_at": fire_at,
            "agent_callback_url": callback,
            "dedup_key": f"{job_id}:{fire_at}",
        }
    )
    assert status == 200


def test_calls_need_the_bearer_token() -> None:
    with NasTestServer(fire_enabled=False) as server:
        list_url = server.url + "/api/agent-cron/list"
        assert httpx.get(list_url).status_code == 401
        assert httpx.get(list_url, headers={"authorization": "Bearer nope"}).status_code == 401
        ok = httpx.get(list_url, headers={"authorization": f"Bearer {server.token}"})
        assert ok.status_code == 200 and ok.json() == {"armed": []}
        # The JWKS is public.
        keys = httpx.get(server.jwks_url).json()["keys"]
        assert {k["alg"] for k in keys} == {"RS256", "EdDSA"}
        assert server.count("jwks_fetches") == 1 and server.count("unauthorized") == 2


def test_contract_violations_are_refused_and_counted() -> None:
    with NasTestServer(fire_enabled=False) as server:
        headers = {"authorization": f"Bearer {server.token}"}
        bad = {
            "job_id": "a",
            "fire_at": "2026-11-27T09:00:00+00:00",
            "agent_callback_url": "http://x",
            "dedup_key": "a:2026-11-27T09:00:00+00:00",
        }
        resp = httpx.post(server.url + "/api/agent-cron/provision", json=bad, headers=headers)
        assert resp.status_code == 400
        assert server.count("contract_violations") == 1 and server.arms == {}


def test_fault_decisions_are_deterministic_per_seed() -> None:
    def decisions(seed: int) -> list[str | None]:
        server = NasTestServer(error_rate=0.3, seed=seed)
        try:
            return [server.fault_for("POST", "/p", str(i % 7).encode()) for i in range(200)]
        finally:
            server.stop()

    first = decisions(11)
    assert first == decisions(11)
    assert first != decisions(12)
    rate = sum(d is not None for d in first) / len(first)
    assert 0.15 < rate < 0.45
    assert {d for d in first if d} == {"500", "503", "429", "drop", "drop_after"}


class _Flaky(BaseHTTPRequestHandler):
    """A callback receiver answering 503 to the first two fires, then 202."""

    calls: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.calls.append(body)
        status = 503 if len(self.calls) <= 2 else 202
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.mark.timeout(30)
def test_fires_at_fire_at_and_retries_non_2xx() -> None:
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    _Flaky.calls = []
    Thread(target=receiver.serve_forever, daemon=True).start()
    callback = f"http://127.0.0.1:{receiver.server_address[1]}"
    try:
        with NasTestServer(fire_retry_delay=0.1) as server:
            at = _fire_at(1.5)
            _provision(server, "j", at, callback)
            assert server.wait_for(lambda: server.count("fires_delivered") == 1, timeout=15)
            statuses = [f.status for f in server.fires]
            assert statuses == [503, 503, 202]
            first = server.fires[0].at
            due = datetime.strptime(at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
            assert due.timestamp() <= first < due.timestamp() + 1.0
            assert _Flaky.calls == [{"job_id": "j", "fire_at": at}] * 3
            assert server.armed() == {}  # a delivered arm is gone
            # Each attempt carries its own token.
            assert len({f.jti for f in server.fires}) == 3
    finally:
        receiver.shutdown()
        receiver.server_close()


@pytest.mark.timeout(30)
def test_fire_retries_are_bounded() -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with NasTestServer(fire_retries=3, fire_retry_delay=0.05) as server:
        _provision(server, "j", _fire_at(-1), dead)
        assert server.wait_for(lambda: server.count("fires_dead") == 1, timeout=10)
        time.sleep(0.3)
        assert [f.status for f in server.fires] == [0, 0, 0]
        assert server.armed() == {}


def test_provision_upserts_and_dedups() -> None:
    with NasTestServer(fire_enabled=False) as server:
        _provision(server, "a", "2030-01-01T00:00:00Z", "http://x")
        first = server.arms["a"].schedule_id
        _provision(server, "a", "2030-01-01T00:00:00Z", "http://x")
        assert server.arms["a"].schedule_id == first
        _provision(server, "a", "2030-01-02T00:00:00Z", "http://x")
        assert server.arms["a"].schedule_id != first
        assert server.armed() == {"a": "2030-01-02T00:00:00Z"}
        counters = server.snapshot()["counters"]
        assert counters["provision_created"] == 1
        assert counters["provision_noop"] == 1
        assert counters["provision_replaced"] == 1
