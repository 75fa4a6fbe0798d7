"""`cronplan serve` against hostile clients, on 127.0.0.1, bounded in time (docs/fire.md, "Limits").

Three loads, one after the other so the test never holds more than ~1,150 sockets:

- 1,100 connections that send a partial request head and trickle a byte now and then (and reconnect
  when the server drops them), against a `serve` whose open-file limit starts at 1,024;
- 400 connections that each send 1 MB of a request body that never ends, without any Authorization;
- 400 connections with a forged signature header (it passes the header check) and a chunked 1 MB body.

Throughout, `/healthz` must answer within 2 s, the server's RSS stay under 150 MB and its stderr under
100 KB; the unauthenticated senders are turned away with 401 before their bodies are read, the forged
ones at the body cap.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures_core import Project
from tests.fixtures_serve import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

SLOW_HEADERS = 1100
BODY_SENDERS = 400
BODY_BYTES = 1024 * 1024
SERVE_NOFILE = (1024, 2048)  # the serve process starts with a soft limit too low for the load
CLIENT_SOCKETS = 1200
HOLD_S = 12.0


@dataclass
class Probe:
    """Samples /healthz latency and the server's RSS while a load runs."""

    url: str
    pid: int
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    max_rss_mb: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self._stop.is_set():
            self.max_rss_mb = max(self.max_rss_mb, rss_mb(self.pid))
            started = time.monotonic()
            try:
                resp = httpx.get(f"{self.url}/healthz", timeout=2.0)
                took = time.monotonic() - started
                if resp.status_code == 200:
                    self.latencies.append(took)
                else:
                    self.failures.append(f"status {resp.status_code} after {took:.2f} s")
            except httpx.HTTPError as exc:
                self.failures.append(
                    f"{type(exc).__name__} after {time.monotonic() - started:.2f} s"
                )
            self._stop.wait(0.5)

    @contextlib.contextmanager
    def running(self) -> Iterator[Probe]:
        thread = threading.Thread(target=self.run, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(10)
            self._stop.clear()


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def soft_nofile(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no open-files line in /proc/PID/limits")


def connect(port: int, first: bytes) -> socket.socket | None:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(2.0)
    try:
        s.connect(("127.0.0.1", port))
        s.sendall(first)
    except OSError:
        s.close()
        return None
    s.setblocking(False)
    return s


def slow_headers(port: int, seconds: float) -> int:
    """Hold SLOW_HEADERS connections with unfinished request heads; return how many reconnects it took."""
    head = b"POST /api/cron/fire HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
    socks: list[socket.socket | None] = [connect(port, head) for _ in range(SLOW_HEADERS)]
    reconnects = 0
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            time.sleep(1.0)
            for i, s in enumerate(socks):
                try:
                    if s is None:
                        raise OSError("not connected")
                    s.send(b"a")
                except BlockingIOError:
                    pass
                except OSError:
                    if s is not None:
                        s.close()
                    socks[i] = connect(port, head)
                    reconnects += 1
    finally:
        for s in socks:
            if s is not None:
                s.close()
    return reconnects


def endless_bodies(
    port: int, seconds: float, *, forged: bool = False
) -> tuple[dict[bytes, int], int]:
    """BODY_SENDERS requests each pushing BODY_BYTES of a longer body; return (answers by status line
    prefix, bytes sent).

    Without ``forged`` the requests carry no credentials at all and announce their length; with it they
    carry a signature header that passes the header check (only the body could disprove it) and send
    their body chunked, so no Content-Length gives them away.
    """
    head = b"POST /api/cron/fire HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    if forged:
        head += b"x-test-signature: " + b"f" * 64 + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
        chunk = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"
    else:
        head += f"Content-Length: {2 * BODY_BYTES}\r\n\r\n".encode()
        chunk = b"x" * 65536
    socks = [connect(port, head) for _ in range(BODY_SENDERS)]
    sent = [0] * len(socks)
    deadline = time.monotonic() + seconds
    answers: dict[int, bytes] = {}
    try:
        while time.monotonic() < deadline:
            progress = False
            for i, s in enumerate(socks):
                if s is None:
                    continue
                with contextlib.suppress(BlockingIOError, OSError):
                    data = s.recv(4096)
                    answers[i] = answers.get(i, b"") + data
                if sent[i] >= BODY_BYTES:
                    continue
                try:
                    n = s.send(chunk[: BODY_BYTES - sent[i]])
                    sent[i] += n
                    progress = progress or n > 0
                except BlockingIOError:
                    pass
                except OSError:
                    sent[i] = BODY_BYTES  # the server closed it: done with this one
            if not progress:
                time.sleep(0.05)
    finally:
        for s in socks:
            if s is not None:
                s.close()
    statuses: dict[bytes, int] = {b"connected": sum(1 for s in socks if s is not None)}
    for answer in answers.values():
        statuses[answer[:12]] = statuses.get(answer[:12], 0) + 1
    return statuses, sum(sent)


@pytest.fixture
def client_sockets() -> Iterator[None]:
    """Raise this process's soft open-file limit for the load; skip when the hard limit is too low."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit_hard = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if limit_hard < CLIENT_SOCKETS + 100 or limit_hard < SERVE_NOFILE[1]:
        pytest.skip(f"the hard open-file limit ({hard}) is too low for this load test")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, CLIENT_SOCKETS + 100), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def start_serve(
    project: Project, tmp_path: Path, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = free_port()
    stderr_path = tmp_path / "serve.stderr"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, SERVE_NOFILE)

    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cronplan",
                "--config",
                str(project.config),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=project.root,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=err,
            preexec_fn=limit,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, stderr_path.read_text()
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc, port, stderr_path
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"serve did not start: {stderr_path.read_text()}")


def test_serve_stays_up_under_slow_heads_and_endless_bodies(
    project: Project, tmp_path: Path, client_sockets: None, hmac_provider_env: dict[str, str]
) -> None:
    project.write_config("jobs: jobs.json\nprovider: testhmac\ncallback_url: http://127.0.0.1:1\n")
    project.write_jobs([])
    proc, port, stderr_path = start_serve(project, tmp_path, hmac_provider_env)
    url = f"http://127.0.0.1:{port}"
    try:
        nofile = soft_nofile(proc.pid)
        probe = Probe(url, proc.pid)
        with probe.running():
            reconnects = slow_headers(port, HOLD_S)
        heads = (list(probe.latencies), list(probe.failures), probe.max_rss_mb)
        probe.latencies.clear()
        probe.failures.clear()

        with probe.running():
            statuses, sent = endless_bodies(port, HOLD_S)
        bodies = (list(probe.latencies), list(probe.failures), probe.max_rss_mb)
        refused = statuses.get(b"HTTP/1.1 401", 0)
        probe.latencies.clear()
        probe.failures.clear()

        with probe.running():
            forged_statuses, forged_sent = endless_bodies(port, HOLD_S / 2, forged=True)
        forged = (list(probe.latencies), list(probe.failures), probe.max_rss_mb)
        stderr_size = stderr_path.stat().st_size
        report = (
            f"slow heads: healthz {len(heads[0])} ok (slowest {max(heads[0], default=0):.2f} s), "
            f"failures {heads[1][:5]}, max RSS {heads[2]:.0f} MB, {reconnects} reconnects; "
            f"bodies: healthz {len(bodies[0])} ok (slowest {max(bodies[0], default=0):.2f} s), "
            f"failures {bodies[1][:5]}, max RSS {bodies[2]:.0f} MB, answers {statuses}, "
            f"{sent / 1e6:.0f} MB sent; forged signatures, chunked: healthz {len(forged[0])} ok "
            f"(slowest {max(forged[0], default=0):.2f} s), failures {forged[1][:5]}, max RSS "
            f"{forged[2]:.0f} MB, answers {forged_statuses}, {forged_sent / 1e6:.0f} MB sent; "
            f"stderr {stderr_size} bytes"
        )
        print(report)
        for latencies, failures, max_rss in (heads, bodies, forged):
            assert not failures, report
            assert len(latencies) >= 5 and max(latencies) < 2.0, report
            assert max_rss < 150, report
        # Every connection that got through is answered (a busy machine may fail a few connects).
        assert statuses[b"connected"] >= BODY_SENDERS * 0.9, report
        assert refused >= statuses[b"connected"] * 0.9, report
        # Each forged request is cut off at the body cap (413) or the cap on all bodies at once (503).
        connected = forged_statuses.pop(b"connected")
        assert sum(forged_statuses.values()) >= connected * 0.9, report
        assert set(forged_statuses) <= {b"HTTP/1.1 413", b"HTTP/1.1 503"}, report
        assert stderr_size < 100_000, report
        assert "Traceback" not in stderr_path.read_text()
        assert proc.poll() is None
        assert nofile == SERVE_NOFILE[1]  # serve raised its soft open-file limit to the hard one
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# --------------------------------------------------------------------------- smaller, faster checks


def _raw_exchange(port: int, head: bytes, body_bytes: int, *, wait_s: float = 5.0) -> bytes:
    """Send ``head`` and then up to ``body_bytes`` of body while reading; return what the server said."""
    s = socket.create_connection(("127.0.0.1", port), timeout=wait_s)
    answer = b""
    try:
        s.sendall(head)
        s.setblocking(False)
        chunk = b"x" * 65536
        sent = 0
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            with contextlib.suppress(BlockingIOError):
                data = s.recv(65536)
                if not data:
                    break  # closed by the server
                answer += data
            if sent < body_bytes:
                with contextlib.suppress(BlockingIOError):
                    sent += s.send(chunk[: body_bytes - sent])
            time.sleep(0.01)
    except OSError:
        pass  # reset by the server after its answer
    finally:
        s.close()
    return answer


def test_fire_requests_are_turned_away_before_their_bodies_are_read(
    project: Project, serve_process: Any, hmac_provider_env: dict[str, str]
) -> None:
    project.write_config("jobs: jobs.json\nprovider: testhmac\ncallback_url: http://127.0.0.1:1\n")
    project.write_jobs([])
    sp = serve_process(project.root, env=hmac_provider_env)
    fire = b"POST /api/cron/fire HTTP/1.1\r\nHost: 127.0.0.1\r\n"

    # No signature header: 401 while the body is still coming, and the connection is closed.
    started = time.monotonic()
    answer = _raw_exchange(sp.port, fire + b"Content-Length: 50000000\r\n\r\n", 4 * 1024 * 1024)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert b"connection: close" in answer.lower()
    assert time.monotonic() - started < 5  # ended by the server, not by our deadline

    # A plausible signature, but a body announced over the cap: 413 at once.
    signed = fire + b"x-test-signature: " + b"0" * 64 + b"\r\n"
    answer = _raw_exchange(sp.port, signed + b"Content-Length: 70000\r\n\r\n", 0)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]

    # The same without a Content-Length (chunked): counted as it comes, refused past the cap.
    chunked = (
        signed + b"Transfer-Encoding: chunked\r\n\r\n" + b"10000\r\n" + b"y" * 0x10000 + b"\r\n"
    )
    chunked += b"10\r\n" + b"y" * 16 + b"\r\n"
    answer = _raw_exchange(sp.port, chunked, 0)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]

    # A request head over 16 KiB: 400, without waiting for the rest of it.
    answer = _raw_exchange(sp.port, fire + b"X-Big: " + b"b" * 20000, 0)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]

    # A real fire still works: 200 stale (the job is unknown), through the whole pipeline.
    from tests.fixtures_serve import fire_body, sign

    body = fire_body("nope", "2026-11-27T09:00:00Z")
    resp = httpx.post(
        f"{sp.url}/api/cron/fire", content=body, headers={"x-test-signature": sign(body)}
    )
    assert resp.status_code == 200 and resp.json()["status"] == "stale", resp.text
    assert "Traceback" not in sp.stderr()


@pytest.mark.slow
def test_a_body_that_stops_coming_gets_408(
    project: Project, serve_process: Any, hmac_provider_env: dict[str, str]
) -> None:
    from cronplan.server.guard import BODY_TIMEOUT_S

    project.write_config("jobs: jobs.json\nprovider: testhmac\ncallback_url: http://127.0.0.1:1\n")
    project.write_jobs([])
    sp = serve_process(project.root, env=hmac_provider_env)
    head = (
        b"POST /api/cron/fire HTTP/1.1\r\nHost: 127.0.0.1\r\nx-test-signature: "
        + b"0" * 64
        + b'\r\nContent-Length: 100\r\n\r\n{"job_id": '
    )
    started = time.monotonic()
    answer = _raw_exchange(sp.port, head, 0, wait_s=BODY_TIMEOUT_S + 5)
    took = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert BODY_TIMEOUT_S - 1 <= took <= BODY_TIMEOUT_S + 3


def test_log_limiter_shows_one_line_per_kind_per_interval_and_counts_the_rest() -> None:
    from cronplan.server.guard import LogLimiter

    now = [0.0]
    lines: list[str] = []
    limiter = LogLimiter(lines.append, interval_s=60, clock=lambda: now[0])
    for _ in range(1000):
        limiter.emit("accept", "serve: asyncio: socket.accept() out of system resource")
    limiter.emit("timeout", "serve: closed a connection")
    assert lines == [
        "serve: asyncio: socket.accept() out of system resource",
        "serve: closed a connection",
    ]
    now[0] = 61.0
    limiter.emit("accept", "serve: asyncio: socket.accept() out of system resource")
    assert lines[-1] == (
        "serve: asyncio: socket.accept() out of system resource "
        "(999 more like this in the last 60 s not shown)"
    )


def test_connection_cap_leaves_room_for_everything_else() -> None:
    from cronplan.server.guard import FD_RESERVE, MAX_CONNECTIONS, connection_cap

    assert connection_cap(1 << 20) == MAX_CONNECTIONS
    assert connection_cap(1024) == 1024 - FD_RESERVE
    assert connection_cap(100) == 16


def test_bundled_providers_check_headers_before_any_body() -> None:
    """`verify_headers` of each bundled provider: what serve checks before it reads a body."""
    from cronplan_nas.verify import check_headers as nas_check
    from cronplan_temporal import TemporalProvider

    from cronplan.errors import AuthError
    from cronplan.local.provider import LocalProvider
    from cronplan.provider import ProviderSettings

    token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
    nas_check({"authorization": f"Bearer {token}"})
    for bad in ({}, {"authorization": "Basic dTpw"}, {"authorization": "Bearer not-a-jwt"}):
        with pytest.raises(AuthError):
            nas_check(bad)

    temporal = TemporalProvider(
        ProviderSettings("temporal", {}, "http://127.0.0.1:8787", environ={})
    )
    now = str(int(time.time()))
    temporal.verify_headers(
        {"webhook-id": "msg_1", "webhook-timestamp": now, "webhook-signature": "v1,abc"}
    )
    with pytest.raises(AuthError, match="missing header"):
        temporal.verify_headers({"webhook-id": "msg_1"})
    with pytest.raises(AuthError, match="old"):
        temporal.verify_headers(
            {"webhook-id": "m", "webhook-timestamp": "1000", "webhook-signature": "v1,abc"}
        )

    with pytest.raises(AuthError, match="no HTTP callbacks"):
        LocalProvider(ProviderSettings("local", base_dir=Path("/nonexistent"))).verify_headers({})


class _FakeTransport:
    def __init__(self) -> None:
        self.written = b""
        self.aborted = False
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def abort(self) -> None:
        self.aborted = True

    def close(self) -> None:
        self.closed = True


def test_connection_guard_evicts_the_oldest_half_sent_head_then_refuses_when_all_are_busy() -> None:
    import asyncio

    from cronplan.server.guard import ConnectionGuard, LogLimiter

    lines: list[str] = []

    async def scenario() -> None:
        guard = ConnectionGuard(
            max_connections=2, limiter=LogLimiter(lines.append), header_timeout_s=0.2
        )
        a, b, c, d, e = (object() for _ in range(5))
        ta, tb, tc, td, te = (_FakeTransport() for _ in range(5))
        assert guard.opened(a, ta) and guard.opened(b, tb)
        assert guard.opened(c, tc)
        assert ta.aborted and not tb.aborted  # the oldest connection still waiting for its head
        guard.head_done(b)
        guard.head_done(c)
        assert not guard.opened(d, td)
        assert td.written.startswith(b"HTTP/1.1 503") and td.closed
        guard.closed(b)
        assert guard.opened(e, te)
        await asyncio.sleep(0.4)
        assert te.aborted  # no complete head within the timeout
        assert guard.open_connections == 1  # c, busy with its request

    asyncio.run(scenario())
    assert any("closed the oldest one" in line for line in lines)
    assert any("got 503" in line for line in lines)
    assert any("no complete request head within 0.2 s" in line for line in lines)
