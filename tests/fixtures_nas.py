"""Fixtures: nas (plugin module listed in tests/conftest.py).

``nas_server`` is a real NAS test server (tests/nas_server.py) on 127.0.0.1, stopped by a bounded
finalizer. ``nas_project`` is the core ``project`` configured for ``provider: nas`` against it, with the
token in the environment and installed provider plugins enabled.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.nas_server import NasTestServer

# Fast retries keep fault tests short; the budget still covers several Retry-After: 1 rounds.
TEST_RETRY_OPTIONS = {
    "retry_base_seconds": 0.05,
    "retry_max_backoff_seconds": 0.5,
    "retry_total_seconds": 20,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def nas_options(server: NasTestServer, **overrides: Any) -> dict[str, Any]:
    """The ``providers.nas`` section for ``server``."""
    opts: dict[str, Any] = {
        "portal_url": server.url,
        "jwks_url": server.jwks_url,
        "issuer": server.issuer,
        "audience": server.audience,
        **TEST_RETRY_OPTIONS,
    }
    opts.update(overrides)
    return opts


def nas_settings(
    server: NasTestServer,
    base_dir: Path,
    *,
    callback_url: str = "http://127.0.0.1:8787",
    token: str | None = None,
    **overrides: Any,
) -> Any:
    from cronplan.provider import ProviderSettings

    return ProviderSettings(
        name="nas",
        options=nas_options(server, **overrides),
        callback_url=callback_url,
        base_dir=base_dir,
        environ={"CRONPLAN_NAS_TOKEN": server.token if token is None else token},
    )


@pytest.fixture
def nas_server() -> Iterator[NasTestServer]:
    server = NasTestServer(seed=20261126)
    server.start()
    try:
        yield server
    finally:
        server.stop(timeout=5)


@dataclass
class NasProject:
    """A ``project`` whose cronplan.yaml uses provider nas against ``server``."""

    project: Any
    server: NasTestServer
    callback_url: str

    @property
    def root(self) -> Path:
        return Path(self.project.root)

    def configure(self, **overrides: Any) -> None:
        import yaml

        doc = {
            "jobs": "jobs.json",
            "provider": "nas",
            "timezone": "UTC",
            "callback_url": self.callback_url,
            "providers": {"nas": nas_options(self.server, **overrides)},
        }
        self.project.write_config(yaml.safe_dump(doc, sort_keys=False))

    def write_jobs(self, jobs: list[dict[str, Any]]) -> Path:
        return Path(self.project.write_jobs(jobs))

    def run(self, *args: str, **kwargs: Any) -> Any:
        return self.project.run(*args, **kwargs)


@pytest.fixture
def nas_project(
    project: Any, nas_server: NasTestServer, monkeypatch: pytest.MonkeyPatch
) -> NasProject:
    monkeypatch.delenv("CRONPLAN_DISABLE_PLUGINS", raising=False)
    monkeypatch.setenv("CRONPLAN_NAS_TOKEN", nas_server.token)
    np = NasProject(
        project=project, server=nas_server, callback_url=f"http://127.0.0.1:{free_port()}"
    )
    np.configure()
    return np


@dataclass
class NasServe:
    """A ``cronplan serve`` process listening on the project's callback port."""

    proc: Any
    url: str
    stderr_path: Path

    def stderr(self) -> str:
        return self.stderr_path.read_text() if self.stderr_path.exists() else ""


@pytest.fixture
def nas_serve(tmp_path: Path) -> Iterator[Any]:
    """Start ``cronplan serve`` for a NasProject on its callback port; stopped (bounded) at teardown."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import httpx

    started: list[NasServe] = []

    def start(np: NasProject, *, timeout: float = 20.0) -> NasServe:
        port = int(np.callback_url.rsplit(":", 1)[1])
        err_path = tmp_path / f"serve-{port}.stderr"
        with open(err_path, "w") as err:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "cronplan",
                    "--config",
                    str(np.project.config),
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ],
                cwd=np.root,
                env=dict(os.environ),
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        sp = NasServe(proc, np.callback_url, err_path)
        started.append(sp)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"serve exited with {proc.returncode}:\n{sp.stderr()}")
            try:
                if httpx.get(sp.url + "/healthz", timeout=1.0).status_code == 200:
                    return sp
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"serve did not become healthy:\n{sp.stderr()}")

    yield start
    for sp in started:
        if sp.proc.poll() is None:
            sp.proc.send_signal(signal.SIGTERM)
            try:
                sp.proc.wait(15)
            except subprocess.TimeoutExpired:
                sp.proc.kill()
                sp.proc.wait(10)
