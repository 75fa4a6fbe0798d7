"""Exactly once across machines, simulated: three ``cronplan serve`` instances share one PostgreSQL ledger and
each fire is delivered to all three at the same instant (as a provider retrying on every replica would).

Fires are signed per Standard Webhooks and verified by the temporal provider in each instance.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from tests.fixtures_core import Project
from tests.fixtures_serve import append_job, read_runs
from tests.fixtures_temporal import ServeProcess, free_port, terminate_task_queue

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.temporal,
    pytest.mark.slow,
    pytest.mark.timeout(300),
]
UTC = timezone.utc
SECRET_ENV = "CRONPLAN_TEST_HOOK_SECRET"
ROUNDS = 50


@pytest.fixture
def shared_project(
    project: Project,
    pg_dsn: str,
    temporal_address: str,
    task_queue: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Project]:
    monkeypatch.delenv("CRONPLAN_DISABLE_PLUGINS", raising=False)
    project.write_config(
        "jobs: jobs.json\n"
        "provider: temporal\n"
        f"callback_url: http://127.0.0.1:{free_port()}\n"
        "state: env:CRONPLAN_TEST_STATE_DSN\n"
        "providers:\n"
        "  temporal:\n"
        f"    address: '{temporal_address}'\n"
        f"    task_queue: {task_queue}\n"
        f"    secret_env: {SECRET_ENV}\n"
    )
    yield project
    terminate_task_queue(temporal_address, task_queue)


def signed_headers(secret: str, body: bytes, msg_id: str) -> dict[str, str]:
    from standardwebhooks.webhooks import Webhook

    moment = int(time.time())
    signature = Webhook(secret).sign(msg_id, datetime.fromtimestamp(moment, tz=UTC), body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(moment),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


def deliver_to_all(urls: list[str], body: bytes, headers: dict[str, str]) -> list[int]:
    """POST the same request to every URL at the same instant; their status codes, in URL order."""
    statuses: list[int] = [0] * len(urls)
    start = threading.Barrier(len(urls))

    def send(i: int) -> None:
        with httpx.Client(timeout=30) as client:
            start.wait(timeout=10)
            statuses[i] = client.post(urls[i], content=body, headers=headers).status_code

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(urls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return statuses


def test_three_instances_one_ledger_50_fires_50_runs(
    shared_project: Project,
    pg_dsn: str,
    webhook_secret: str,
    serve_on: Callable[..., ServeProcess],
) -> None:
    root = shared_project.root
    log = root / "runs.log"
    shared_project.write_jobs(
        [append_job("shared", log, schedule={"kind": "interval", "seconds": 3600})]
    )
    env = {SECRET_ENV: webhook_secret, "CRONPLAN_TEST_STATE_DSN": pg_dsn}
    applied = shared_project.run("apply", "--auto-approve", env=env)  # fires run the applied job
    assert applied.exit_code == 0, applied.stdout + applied.stderr
    servers = [serve_on(root, free_port(), env=env) for _ in range(3)]
    urls = [f"{s.url}/api/cron/fire" for s in servers]

    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    fire_times = [hour - timedelta(hours=ROUNDS - i) for i in range(ROUNDS)]  # oldest first
    winners: list[int] = []
    for fire_at in fire_times:
        stamp = fire_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        body = json.dumps({"job_id": "shared", "fire_at": stamp}).encode()
        statuses = deliver_to_all(urls, body, signed_headers(webhook_secret, body, f"fire-{stamp}"))
        # One instance wins the claim (202 once it is durable); the others answer 200: a duplicate.
        assert sorted(statuses) == [200, 200, 202], (stamp, statuses, [s.stderr() for s in servers])
        winners.append(statuses.index(202))

    def all_recorded() -> bool:
        from cronplan.ledger import open_ledger

        ledger = open_ledger(pg_dsn)
        try:
            runs = ledger.runs("shared")
        finally:
            ledger.close()
        return len(runs) == ROUNDS and all(r.status == "succeeded" for r in runs)

    deadline = time.monotonic() + 60
    while not all_recorded():
        assert time.monotonic() < deadline, [s.stderr() for s in servers]
        time.sleep(0.2)
    time.sleep(1)  # a straggling duplicate run would land now
    runs = read_runs(log)
    assert len(runs) == ROUNDS
    assert sorted(r[2] for r in runs) == [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in fire_times]
    assert len(set(winners)) > 1, "the claim should not always fall to the same instance"
    for server in servers:
        assert "Traceback" not in server.stderr()
