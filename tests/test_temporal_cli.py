"""plan / apply / serve / fire with ``provider: temporal``, end to end against a real Temporal dev server.

Every test has its own task queue and project directory; workflows left running are terminated at the end.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures_core import Project
from tests.fixtures_serve import append_job, read_runs, real_now
from tests.fixtures_temporal import ServeProcess, WorkerProcess, free_port, terminate_task_queue

pytestmark = [pytest.mark.temporal, pytest.mark.timeout(180)]
UTC = timezone.utc
SECRET_ENV = "CRONPLAN_TEST_HOOK_SECRET"


def workflows(address: str, task_queue: str) -> list[tuple[str, str]]:
    """Every workflow ever started on the task queue: (workflow id, status name), oldest first."""
    from temporalio.client import Client

    async def fetch() -> list[tuple[str, str]]:
        client = await Client.connect(address)
        found = [
            (e.id, e.status.name if e.status else "?", e.start_time)
            async for e in client.list_workflows(f"TaskQueue = '{task_queue}'")
        ]
        return [(wid, status) for wid, status, _ in sorted(found, key=lambda f: f[2])]

    return asyncio.run(fetch())


def running(address: str, task_queue: str) -> set[str]:
    return {wid for wid, status in workflows(address, task_queue) if status == "RUNNING"}


def wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


class TemporalProject:
    def __init__(self, project: Project, address: str, task_queue: str, secret: str, port: int):
        self.project = project
        self.address = address
        self.task_queue = task_queue
        self.secret = secret
        self.port = port
        self.env = {SECRET_ENV: secret, "CRONPLAN_DISABLE_PLUGINS": ""}
        project.write_config(
            "jobs: jobs.json\n"
            "provider: temporal\n"
            f"callback_url: http://127.0.0.1:{port}\n"
            "providers:\n"
            "  temporal:\n"
            f"    address: '{address}'\n"
            f"    task_queue: {task_queue}\n"
            f"    secret_env: {SECRET_ENV}\n"
        )

    @property
    def root(self) -> Path:
        return self.project.root

    def run(self, *args: str) -> Any:
        return self.project.run(*args, env=self.env)

    def running(self) -> set[str]:
        return running(self.address, self.task_queue)

    def status(self) -> dict[str, Any]:
        result = self.run("status", "--format", "json")
        assert result.exit_code == 0, result.stderr
        doc: dict[str, Any] = json.loads(result.stdout)
        return {j["job_id"]: j for j in doc["jobs"]}


@pytest.fixture
def tproject(
    project: Project,
    temporal_address: str,
    task_queue: str,
    webhook_secret: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[TemporalProject]:
    monkeypatch.delenv("CRONPLAN_DISABLE_PLUGINS", raising=False)
    tp = TemporalProject(project, temporal_address, task_queue, webhook_secret, free_port())
    yield tp
    terminate_task_queue(temporal_address, task_queue)


def daily(job_id: str, expr: str = "0 9 * * *") -> dict[str, Any]:
    return {"id": job_id, "schedule": {"kind": "cron", "expr": expr}, "command": ["true"]}


def arm_id(job_id: str, fire_at: str) -> str:
    return f"cronplan-arm:{job_id}:{fire_at}"


def next_nine(after: datetime, minute: int = 0) -> str:
    t = after.replace(hour=9, minute=minute, second=0, microsecond=0)
    if t <= after:
        t += timedelta(days=1)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_apply_provisions_workflows_and_reapply_starts_none(
    tproject: TemporalProject,
) -> None:
    tproject.project.write_jobs([daily("alpha"), daily("beta", "30 9 * * *")])
    plan = tproject.run("plan", "--now", real_now(), "--detailed-exitcode")
    assert plan.exit_code == 2, plan.stderr
    assert "Plan: 2 to arm" in plan.stdout
    assert tproject.running() == set()  # plan changes nothing

    applied = tproject.run("apply", "--now", real_now(), "--auto-approve")
    assert applied.exit_code == 0, applied.stderr
    now = datetime.now(UTC)
    expected = {arm_id("alpha", next_nine(now)), arm_id("beta", next_nine(now, 30))}
    assert tproject.running() == expected

    again = tproject.run("plan", "--now", real_now(), "--detailed-exitcode")
    assert again.exit_code == 0, again.stdout + again.stderr
    assert "No changes." in again.stdout
    before = workflows(tproject.address, tproject.task_queue)
    reapplied = tproject.run("apply", "--now", real_now(), "--auto-approve")
    assert reapplied.exit_code == 0, reapplied.stderr
    # Nothing started, nothing closed: the very same two executions.
    assert workflows(tproject.address, tproject.task_queue) == before
    assert len(before) == 2


def test_rearm_replaces_the_timer_and_cancel_stops_it(
    tproject: TemporalProject, start_worker: Callable[..., WorkerProcess]
) -> None:
    start_worker(tproject.project.config, env=tproject.env)
    tproject.project.write_jobs([daily("alpha"), daily("beta")])
    assert tproject.run("apply", "--now", real_now(), "--auto-approve").exit_code == 0
    now = datetime.now(UTC)
    old_alpha = arm_id("alpha", next_nine(now))

    tproject.project.write_jobs([daily("alpha", "15 9 * * *"), daily("beta")])
    plan = tproject.run("plan", "--now", real_now())
    assert "~ alpha" in plan.stdout and "1 to re-arm" in plan.stdout, plan.stdout
    assert tproject.run("apply", "--now", real_now(), "--auto-approve").exit_code == 0
    new_alpha = arm_id("alpha", next_nine(now, 15))
    assert tproject.running() == {new_alpha, arm_id("beta", next_nine(now))}
    statuses = dict(workflows(tproject.address, tproject.task_queue))
    assert statuses[old_alpha] == "CANCELED"  # cancelled through the worker, not terminated

    tproject.project.write_jobs([daily("alpha", "15 9 * * *")])
    plan = tproject.run("plan", "--now", real_now())
    assert "- beta" in plan.stdout and "1 to cancel" in plan.stdout, plan.stdout
    assert tproject.run("apply", "--now", real_now(), "--auto-approve").exit_code == 0
    assert tproject.running() == {new_alpha}
    assert (
        dict(workflows(tproject.address, tproject.task_queue))[arm_id("beta", next_nine(now))]
        == "CANCELED"
    )
    final = tproject.run("plan", "--now", real_now(), "--detailed-exitcode")
    assert final.exit_code == 0, final.stdout


def test_a_job_due_in_2s_fires_through_the_worker_to_serve_and_rearms(
    tproject: TemporalProject,
    start_worker: Callable[..., WorkerProcess],
    serve_on: Callable[..., ServeProcess],
) -> None:
    log = tproject.root / "runs.log"
    serve = serve_on(tproject.root, tproject.port, env=tproject.env)
    start_worker(tproject.project.config, env=tproject.env)
    start_at = (datetime.now(UTC) + timedelta(seconds=3)).replace(microsecond=0)  # due in 2-3 s
    job = append_job(
        "tick",
        log,
        schedule={
            "kind": "interval",
            "seconds": 3,
            "start_at": start_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    )
    tproject.project.write_jobs([job])
    applied = tproject.run("apply", "--now", real_now(), "--auto-approve")
    assert applied.exit_code == 0, applied.stderr
    first = start_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert tproject.running() == {arm_id("tick", first)}

    assert wait_until(lambda: len(read_runs(log)) >= 2, 30), serve.stderr()
    runs = read_runs(log)
    assert runs[0][2] == first
    assert runs[0][1] >= start_at.timestamp()  # not before its time
    # Each fire re-armed the next occurrence: the second run is the occurrence after the first.
    assert runs[1][2] == (start_at + timedelta(seconds=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    status = tproject.status()["tick"]
    assert status["armed_fire_at"] is not None
    assert status["armed_fire_at"] > status["last_run"]["fire_at"]
    assert len({r[2] for r in read_runs(log)}) == len(read_runs(log))  # never one occurrence twice


def _signed(
    secret: str, body: bytes, *, at: float | None = None, msg_id: str = "msg-1"
) -> dict[str, str]:
    from standardwebhooks.webhooks import Webhook

    moment = int(time.time() if at is None else at)
    signature = Webhook(secret).sign(msg_id, datetime.fromtimestamp(moment, tz=UTC), body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(moment),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


def test_forged_or_replayed_signatures_are_rejected_with_nothing_run(
    tproject: TemporalProject, serve_on: Callable[..., ServeProcess]
) -> None:
    from tests.fixtures_temporal import new_webhook_secret

    log = tproject.root / "runs.log"
    tproject.project.write_jobs(
        [append_job("guarded", log, schedule={"kind": "interval", "seconds": 3600})]
    )
    assert tproject.run("apply", "--auto-approve").exit_code == 0  # fires run the applied job
    serve = serve_on(tproject.root, tproject.port, env=tproject.env)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    fire_at = hour.strftime("%Y-%m-%dT%H:%M:%SZ")
    body = json.dumps({"job_id": "guarded", "fire_at": fire_at}).encode()
    url = f"{serve.url}/api/cron/fire"

    forged = httpx.post(url, content=body, headers=_signed(new_webhook_secret(), body))
    too_old = httpx.post(
        url, content=body, headers=_signed(tproject.secret, body, at=time.time() - 400)
    )
    unsigned = httpx.post(url, content=body, headers={"content-type": "application/json"})
    genuine_headers = _signed(tproject.secret, body)
    other = json.dumps(
        {"job_id": "guarded", "fire_at": (hour - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    )
    moved = httpx.post(url, content=other.encode(), headers=genuine_headers)
    assert [r.status_code for r in (forged, too_old, unsigned, moved)] == [401, 401, 401, 401]
    time.sleep(1)
    assert read_runs(log) == []
    assert tproject.status()["guarded"]["last_run"] is None

    # The genuine request runs once; replaying it within the window is absorbed by the claim.
    genuine = httpx.post(url, content=body, headers=genuine_headers)
    assert genuine.status_code == 202, genuine.text
    replayed = [httpx.post(url, content=body, headers=genuine_headers) for _ in range(3)]
    assert [r.status_code for r in replayed] == [200, 200, 200]
    assert wait_until(lambda: len(read_runs(log)) == 1, 10)
    time.sleep(1)
    assert [r[2] for r in read_runs(log)] == [fire_at]

    # `cronplan fire --request` authenticates the same way.
    raw = (
        b"POST /api/cron/fire HTTP/1.1\r\n"
        + b"".join(f"{k}: {v}\r\n".encode() for k, v in _signed(new_webhook_secret(), body).items())
        + b"\r\n"
        + body
    )
    (tproject.root / "forged.http").write_bytes(raw)
    result = tproject.run(
        "fire", "--now", real_now(), "--request", str(tproject.root / "forged.http")
    )
    assert result.exit_code == 1
    assert "signature" in result.stderr and "Traceback" not in result.stderr
    assert len(read_runs(log)) == 1
