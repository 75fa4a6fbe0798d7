"""``cronplan-temporal worker`` as a real process against a real Temporal dev server.

Fires land on a small HTTP receiver in the test that authenticates them with the provider's own verify().
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cronplan.model import Arm, FireCall, HttpRequest
from cronplan.provider import ProviderSettings
from tests.fixtures_temporal import WorkerProcess, terminate_task_queue

pytestmark = [pytest.mark.temporal, pytest.mark.timeout(120)]
UTC = timezone.utc


class Receiver:
    """An HTTP endpoint at ``url`` recording every request; ``statuses`` are answered in turn (then 202)."""

    def __init__(self) -> None:
        self.requests: list[HttpRequest] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.requests.append(HttpRequest("POST", self.path, headers, body))
                status = receiver.statuses.pop(0) if receiver.statuses else 202
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, count: int, timeout: float) -> list[HttpRequest]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.requests)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def setup(
    tmp_path: Path, temporal_address: str, task_queue: str, webhook_secret: str, receiver: Receiver
) -> Iterator[tuple[Path, dict[str, str], Callable[[], object]]]:
    """(config path, worker env, provider factory) for one test's own task queue."""
    from cronplan_temporal import TemporalProvider

    config = tmp_path / "cronplan.yaml"
    config.write_text(
        "provider: temporal\n"
        f"callback_url: {receiver.url}\n"
        "providers:\n"
        "  temporal:\n"
        f"    address: '{temporal_address}'\n"
        f"    task_queue: {task_queue}\n"
        "    secret_env: TEST_HOOK_SECRET\n"
    )
    env = {"TEST_HOOK_SECRET": webhook_secret}
    opened: list[TemporalProvider] = []

    def make() -> TemporalProvider:
        p = TemporalProvider(
            ProviderSettings(
                "temporal",
                {
                    "address": temporal_address,
                    "task_queue": task_queue,
                    "secret_env": "TEST_HOOK_SECRET",
                },
                receiver.url,
                environ=env,
            )
        )
        opened.append(p)
        return p

    yield config, env, make
    for p in opened:
        p.close()
    terminate_task_queue(temporal_address, task_queue)


def wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def soon(seconds: float) -> datetime:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).replace(microsecond=0) + timedelta(
        seconds=1
    )


def test_a_due_arm_is_delivered_signed_once_and_the_workflow_closes(
    setup: tuple[Path, dict[str, str], Callable[[], object]],
    start_worker: Callable[..., WorkerProcess],
    receiver: Receiver,
) -> None:
    config, env, make = setup
    provider = make()
    start_worker(config, env=env)
    fire_at = soon(2)
    provider.arm(Arm("report", fire_at, receiver.url))  # type: ignore[attr-defined]
    assert [a.job_id for a in provider.list_arms()] == ["report"]  # type: ignore[attr-defined]
    assert receiver.requests == []  # not before its time
    got = receiver.wait_for(1, timeout=20)
    assert len(got) == 1
    arrived = datetime.now(UTC)
    assert arrived >= fire_at
    request = got[0]
    assert request.path == "/api/cron/fire"
    assert provider.verify(request) == FireCall("report", fire_at)  # type: ignore[attr-defined]
    assert wait_until(lambda: provider.list_arms() == [], 10)  # type: ignore[attr-defined]
    time.sleep(1.5)
    assert len(receiver.requests) == 1  # a 202 ends it: no redelivery


def test_transient_failures_are_retried_with_the_same_webhook_id(
    setup: tuple[Path, dict[str, str], Callable[[], object]],
    start_worker: Callable[..., WorkerProcess],
    receiver: Receiver,
) -> None:
    config, env, make = setup
    provider = make()
    receiver.statuses = [503, 429]
    start_worker(config, env=env)
    provider.arm(Arm("flaky", soon(0), receiver.url))  # type: ignore[attr-defined]
    got = receiver.wait_for(3, timeout=30)
    assert len(got) == 3
    assert len({r.headers["webhook-id"] for r in got}) == 1
    assert wait_until(lambda: provider.list_arms() == [], 10)  # type: ignore[attr-defined]


def test_a_rejected_fire_is_not_retried(
    setup: tuple[Path, dict[str, str], Callable[[], object]],
    start_worker: Callable[..., WorkerProcess],
    receiver: Receiver,
) -> None:
    config, env, make = setup
    provider = make()
    receiver.statuses = [401]
    start_worker(config, env=env)
    provider.arm(Arm("denied", soon(0), receiver.url))  # type: ignore[attr-defined]
    assert len(receiver.wait_for(1, timeout=20)) == 1
    assert wait_until(lambda: provider.list_arms() == [], 10)  # type: ignore[attr-defined]
    time.sleep(3)  # longer than the first retry interval
    assert len(receiver.requests) == 1


def test_the_timer_is_durable_across_a_worker_restart(
    setup: tuple[Path, dict[str, str], Callable[[], object]],
    start_worker: Callable[..., WorkerProcess],
    receiver: Receiver,
) -> None:
    config, env, make = setup
    provider = make()
    first = start_worker(config, env=env)
    fire_at = soon(2)
    provider.arm(Arm("durable", fire_at, receiver.url))  # type: ignore[attr-defined]
    time.sleep(0.5)  # the worker has picked the workflow up and is sleeping on its timer
    assert first.stop() == 0
    time.sleep(max(0.0, (fire_at - datetime.now(UTC)).total_seconds()) + 1)
    assert receiver.requests == []  # nobody to deliver while no worker runs
    start_worker(config, env=env)
    got = receiver.wait_for(1, timeout=20)
    assert len(got) == 1
    assert provider.verify(got[0]).fire_at == fire_at  # type: ignore[attr-defined]


@pytest.mark.slow
def test_cancel_stops_the_timer(
    setup: tuple[Path, dict[str, str], Callable[[], object]],
    start_worker: Callable[..., WorkerProcess],
    receiver: Receiver,
) -> None:
    config, env, make = setup
    provider = make()
    start_worker(config, env=env)
    provider.arm(Arm("doomed", soon(2), receiver.url))  # type: ignore[attr-defined]
    started = time.monotonic()
    provider.cancel("doomed")  # type: ignore[attr-defined]
    assert (
        time.monotonic() - started < 1.5
    )  # the worker closed it: no wait for the terminate fallback
    assert provider.list_arms() == []  # type: ignore[attr-defined]
    time.sleep(4)
    assert receiver.requests == []


def test_rearm_replaces_the_timer(
    setup: tuple[Path, dict[str, str], Callable[[], object]],
    start_worker: Callable[..., WorkerProcess],
    receiver: Receiver,
) -> None:
    config, env, make = setup
    provider = make()
    start_worker(config, env=env)
    early, late = soon(2), soon(4)
    provider.arm(Arm("moved", early, receiver.url))  # type: ignore[attr-defined]
    provider.arm(Arm("moved", late, receiver.url))  # type: ignore[attr-defined]
    assert [(a.job_id, a.fire_at) for a in provider.list_arms()] == [("moved", late)]  # type: ignore[attr-defined]
    got = receiver.wait_for(1, timeout=20)
    time.sleep(1)
    assert len(receiver.requests) == 1
    assert provider.verify(got[0]).fire_at == late  # type: ignore[attr-defined]


@pytest.mark.slow
def test_sigterm_stops_the_worker_cleanly(
    setup: tuple[Path, dict[str, str], Callable[[], object]],
    start_worker: Callable[..., WorkerProcess],
) -> None:
    config, env, _make = setup
    worker = start_worker(config, env=env)
    started = time.monotonic()
    assert worker.stop(timeout=30) == 0
    assert time.monotonic() - started < 15
    out = worker.output()
    assert "stopped" in out and "Traceback" not in out


def test_the_worker_refuses_to_start_without_its_secret(
    tmp_path: Path, temporal_address: str
) -> None:
    config = tmp_path / "cronplan.yaml"
    config.write_text(
        f"provider: temporal\nproviders:\n  temporal:\n    address: '{temporal_address}'\n"
        "    secret_env: TEST_HOOK_SECRET_UNSET\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "cronplan_temporal.cli", "worker", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in __import__("os").environ.items() if k != "TEST_HOOK_SECRET_UNSET"},
    )
    assert done.returncode == 1
    assert "$TEST_HOOK_SECRET_UNSET" in done.stderr and "Traceback" not in done.stderr


def test_worker_usage_errors_exit_64() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cronplan_temporal.cli", "bogus"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 64
