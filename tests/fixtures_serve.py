"""Fixtures for the fire/serve area: jobs that leave evidence, a runtime, and `cronplan serve` processes.

Every server a test starts is bound to 127.0.0.1 on a free port and stopped by the fixture's finalizer.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

PY = sys.executable
# Appends "<label> <wall clock> <CRONPLAN_FIRE_AT>" to a file: one line per run, with when it ran.
_APPEND = (
    "import os, sys, time\n"
    "with open(sys.argv[1], 'a') as fh:\n"
    "    fh.write(f\"{sys.argv[2]} {time.time():.6f} {os.environ.get('CRONPLAN_FIRE_AT', '')}\\n\")\n"
)


def real_now() -> str:
    """``--now`` for tests that run ``serve`` (which has no --now): the real clock, to the microsecond."""
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def append_job(job_id: str, log: Path, *, label: str = "run", **fields: Any) -> dict[str, Any]:
    """A command job that appends one line to ``log`` per run (how tests count runs)."""
    job: dict[str, Any] = {
        "id": job_id,
        "schedule": {"kind": "interval", "seconds": 60},
        "command": [PY, "-c", _APPEND, str(log), label],
    }
    job.update(fields)
    return job


def read_runs(log: Path) -> list[tuple[str, float, str]]:
    """The lines written by ``append_job`` runs: (label, wall-clock time, fire_at)."""
    if not log.exists():
        return []
    out = []
    for line in log.read_text().splitlines():
        label, at, fire_at = ([*line.split(" "), "", ""])[:3]
        out.append((label, float(at), fire_at))
    return out


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServeProcess:
    proc: subprocess.Popen[str]
    port: int
    stderr_path: Path
    _stopped: bool = field(default=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stderr(self) -> str:
        return self.stderr_path.read_text() if self.stderr_path.exists() else ""

    def wait_healthy(self, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited with {self.proc.returncode}:\n{self.stderr()}")
            try:
                resp = httpx.get(f"{self.url}/healthz", timeout=1.0)
                if resp.status_code == 200:
                    doc: dict[str, Any] = resp.json()
                    return doc
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(0.05)
        raise AssertionError(f"serve did not become healthy ({last}):\n{self.stderr()}")

    def terminate(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Signal serve and wait for it to exit; returns its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self._stopped = True

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


ServeFactory = Callable[..., ServeProcess]


@pytest.fixture
def serve_process(tmp_path: Path) -> Iterator[ServeFactory]:
    """Start `cronplan serve` for a project directory; every process is stopped at teardown."""
    started: list[ServeProcess] = []

    def start(
        root: Path,
        *,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
        healthy: bool = True,
    ) -> ServeProcess:
        port = free_port()
        full_env = dict(os.environ)
        full_env.update(env or {})
        stderr_path = tmp_path / f"serve-{port}.stderr"
        errf = open(stderr_path, "w")  # noqa: SIM115 - the child writes it for its whole life
        proc = subprocess.Popen(
            [
                PY,
                "-m",
                "cronplan",
                "--config",
                str(root / "cronplan.yaml"),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                *args,
            ],
            cwd=root,
            env=full_env,
            stdout=subprocess.DEVNULL,
            stderr=errf,
            text=True,
        )
        errf.close()
        sp = ServeProcess(proc, port, stderr_path)
        started.append(sp)
        if healthy:
            sp.wait_healthy()
        return sp

    yield start
    for sp in started:
        if sp.proc.poll() is None:
            sp.proc.send_signal(signal.SIGTERM)
            try:
                sp.proc.wait(15)
            except subprocess.TimeoutExpired:
                sp.kill()


# --------------------------------------------------------------------------- a test provider plugin

#: The shared secret the test provider checks, in the header ``x-test-signature`` as HMAC-SHA256(body).
TEST_SECRET = "test-secret-not-a-real-one"

_PLUGIN_SOURCE = '''
"""A provider for tests only: arms kept like the local provider's, callbacks verified by a shared-secret
HMAC over the body (header ``x-test-signature``). It exists so that `serve`'s HTTP path can be exercised
end to end with a verifier that accepts something."""

from __future__ import annotations

import hashlib
import hmac
import json

from cronplan.errors import AuthError, BadRequest
from cronplan.local.provider import LocalProvider
from cronplan.model import FireCall
from cronplan.timefmt import parse_ts


class HmacTestProvider(LocalProvider):
    name = "testhmac"
    calls_back = True

    def __init__(self, settings):
        super().__init__(settings)
        self.secret = settings.environ.get("CRONPLAN_TEST_HMAC_SECRET", "")

    def verify_headers(self, headers):
        given = headers.get("x-test-signature", "")
        if len(given) != 64:
            raise AuthError("no x-test-signature header")

    def verify(self, request):
        if not self.secret:
            raise AuthError("no CRONPLAN_TEST_HMAC_SECRET configured")
        given = request.headers.get("x-test-signature", "")
        want = hmac.new(self.secret.encode(), request.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(given, want):
            raise AuthError("bad signature")
        try:
            doc = json.loads(request.body)
            return FireCall(str(doc["job_id"]), parse_ts(doc["fire_at"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise BadRequest(f"malformed fire body: {exc}") from None
'''


def sign(body: bytes, secret: str = TEST_SECRET) -> str:
    import hashlib
    import hmac

    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture
def hmac_provider_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Install the test provider ``testhmac`` as a throwaway distribution (a dist-info dir on PYTHONPATH).

    Returns the environment a subprocess needs to see it; plugins are enabled for this test.
    """
    site = tmp_path / "plugin-site"
    dist = site / "cronplan_testhmac-0.0.1.dist-info"
    dist.mkdir(parents=True)
    (site / "cronplan_testhmac.py").write_text(textwrap.dedent(_PLUGIN_SOURCE))
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: cronplan-testhmac\nVersion: 0.0.1\n"
    )
    (dist / "entry_points.txt").write_text(
        "[cronplan.providers]\ntesthmac = cronplan_testhmac:HmacTestProvider\n"
    )
    monkeypatch.delenv("CRONPLAN_DISABLE_PLUGINS", raising=False)
    pythonpath = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    return {
        "PYTHONPATH": pythonpath,
        "CRONPLAN_TEST_HMAC_SECRET": TEST_SECRET,
        "CRONPLAN_DISABLE_PLUGINS": "",
    }


def fire_body(job_id: str, fire_at: str) -> bytes:
    return json.dumps({"job_id": job_id, "fire_at": fire_at}).encode()
