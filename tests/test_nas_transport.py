"""The NAS client's keep-alive transport (httpx's stock one, as the client builds it) against the real test server."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from cronplan_nas.client import keep_alive_transport

from tests.fixtures_nas import free_port
from tests.nas_server import NasTestServer

TIMEOUT = httpx.Timeout(5.0).as_dict()


@pytest.fixture
def server() -> Iterator[NasTestServer]:
    s = NasTestServer(fire_enabled=False)
    s.start()
    try:
        yield s
    finally:
        s.stop()


def get_list(
    pool: httpx.BaseTransport, server: NasTestServer, *, timeout: dict[str, float | None] = TIMEOUT
) -> httpx.Response:
    request = httpx.Request(
        "GET",
        server.url + "/api/agent-cron/list",
        headers={"Authorization": f"Bearer {server.token}"},
        extensions={"timeout": timeout},
    )
    response = pool.handle_request(request)
    try:
        response.read()
    finally:
        response.close()
    return response


@pytest.mark.timeout(30)
def test_sequential_calls_reuse_one_connection(server: NasTestServer) -> None:
    pool = keep_alive_transport(max_connections=8, keepalive_expiry=30.0)
    for _ in range(10):
        response = get_list(pool, server)
        assert response.status_code == 200
        assert response.json() == {"armed": []}
    assert server.count("GET /api/agent-cron/list") == 10
    assert server.count("connections_accepted") == 1
    pool.close()


@pytest.mark.timeout(30)
@pytest.mark.slow
def test_parallel_calls_never_exceed_max_connections(server: NasTestServer) -> None:
    server.set_faults(latency=0.1)
    pool = keep_alive_transport(max_connections=2, keepalive_expiry=30.0)
    start = time.monotonic()
    with ThreadPoolExecutor(8) as workers:
        statuses = list(workers.map(lambda _: get_list(pool, server).status_code, range(8)))
    elapsed = time.monotonic() - start
    assert statuses == [200] * 8
    assert server.count("connections_accepted") <= 2
    assert elapsed >= 4 * 0.1  # 8 calls of 0.1 s, two at a time
    pool.close()


@pytest.mark.timeout(30)
def test_pool_timeout_when_every_connection_is_taken(server: NasTestServer) -> None:
    pool = keep_alive_transport(max_connections=1, keepalive_expiry=30.0)
    request = httpx.Request(
        "GET",
        server.url + "/api/agent-cron/list",
        headers={"Authorization": f"Bearer {server.token}"},
        extensions={"timeout": TIMEOUT},
    )
    held = pool.handle_request(request)  # not closed yet: its connection stays taken
    with pytest.raises(httpx.PoolTimeout):
        get_list(pool, server, timeout=httpx.Timeout(5.0, pool=0.1).as_dict())
    held.read()
    held.close()
    assert get_list(pool, server).status_code == 200  # given back on close
    assert server.count("connections_accepted") == 1
    pool.close()


@pytest.mark.timeout(30)
def test_connection_closed_by_the_server_while_idle_is_replaced(server: NasTestServer) -> None:
    pool = keep_alive_transport(max_connections=4, keepalive_expiry=30.0)
    assert get_list(pool, server).status_code == 200
    with server.lock:
        conns = list(server._conns)
    assert len(conns) == 1
    for conn in conns:
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_RDWR)
    assert server.wait_for(lambda: not server._conns, timeout=5)
    # No error for the caller: the stale connection is noticed before it is used.
    assert get_list(pool, server).status_code == 200
    assert server.count("connections_accepted") == 2
    pool.close()


@pytest.mark.timeout(30)
def test_errors_leave_as_httpx_exceptions(server: NasTestServer) -> None:
    pool = keep_alive_transport(max_connections=4, keepalive_expiry=30.0)
    dead = httpx.Request("GET", f"http://127.0.0.1:{free_port()}/", extensions={"timeout": TIMEOUT})
    with pytest.raises(httpx.ConnectError):
        pool.handle_request(dead)
    server.set_faults(latency=2.0)
    with pytest.raises(httpx.ReadTimeout):
        get_list(pool, server, timeout=httpx.Timeout(0.2).as_dict())
    with pytest.raises(httpx.UnsupportedProtocol):
        pool.handle_request(httpx.Request("GET", "ftp://127.0.0.1/"))
    # Failed calls gave their slots back: all four are still there.
    server.set_faults(latency=0.0)
    with ThreadPoolExecutor(4) as workers:
        statuses = list(
            workers.map(
                lambda _: get_list(pool, server, timeout=httpx.Timeout(5.0, pool=1.0).as_dict()),
                range(4),
            )
        )
    assert [r.status_code for r in statuses] == [200] * 4
    pool.close()


@pytest.mark.timeout(30)
def test_close_closes_idle_connections_and_late_releases(server: NasTestServer) -> None:
    pool = keep_alive_transport(max_connections=4, keepalive_expiry=30.0)
    assert get_list(pool, server).status_code == 200
    request = httpx.Request(
        "GET",
        server.url + "/api/agent-cron/list",
        headers={"Authorization": f"Bearer {server.token}"},
        extensions={"timeout": TIMEOUT},
    )
    held = pool.handle_request(request)
    pool.close()
    held.read()
    held.close()  # released after close: closed, not kept
    assert server.wait_for(lambda: not server._conns, timeout=5)


@pytest.mark.timeout(30)
def test_threads_share_connections_without_loss(server: NasTestServer) -> None:
    pool = keep_alive_transport(max_connections=16, keepalive_expiry=30.0)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(25):
                assert get_list(pool, server).status_code == 200
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not errors
    assert server.count("GET /api/agent-cron/list") == 16 * 25
    assert server.count("connections_accepted") <= 16
    pool.close()
