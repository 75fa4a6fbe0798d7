"""``KeepAlivePool``: the NAS client's one httpx transport, a keep-alive pool with constant work per call.

httpcore's ``ConnectionPool`` re-examines every connection each time a request starts or ends, and for each
idle one counts all of them again, all under one lock and with a readability poll per idle socket. With 32
threads on 32 keep-alive connections that bookkeeping was about half of the client's 1.0 ms of CPU per call,
and the GIL serializes it: a 2,000-arm apply at parallelism 32 took 2.5 times what the portal's
latency allows. Here a call takes the most recently used idle connection of its origin (checked
once, outside the lock) or opens one, and gives it back when its response is closed.

The HTTP work itself stays with httpcore's ``HTTPConnection`` (so TCP_NODELAY, timeouts, TLS and HTTP/1.1
keep-alive behave as in ``httpx.HTTPTransport``), and its errors leave as the matching httpx exceptions.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
from collections.abc import Iterable, Iterator

import httpcore
import httpx

# Most specific first: the first match names the error.
_ERRORS: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
)


_Key = tuple[bytes, bytes, int]


def _key(origin: httpcore.Origin) -> _Key:
    # httpcore.Origin compares by value but is not hashable.
    return (origin.scheme, origin.host, origin.port)


@contextlib.contextmanager
def _as_httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for core, mapped in _ERRORS:
            if isinstance(exc, core):
                raise mapped(str(exc)) from exc
        raise


class KeepAlivePool(httpx.BaseTransport):
    """At most ``max_connections`` connections, idle ones kept for ``keepalive_expiry`` seconds; thread-safe."""

    def __init__(self, *, max_connections: int, keepalive_expiry: float) -> None:
        self._keepalive_expiry = keepalive_expiry
        self._slots = threading.BoundedSemaphore(max_connections)
        self._lock = threading.Lock()
        self._idle: dict[_Key, list[httpcore.HTTPConnection]] = {}
        self._closed = False
        self._ssl_context: ssl.SSLContext | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {url.scheme!r}")
        port = url.port or (443 if url.scheme == "https" else 80)
        origin = httpcore.Origin(url.raw_scheme, url.raw_host, port)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        timeouts = request.extensions.get("timeout", {})
        if not self._slots.acquire(timeout=timeouts.get("pool")):
            raise httpx.PoolTimeout("no connection became free within the pool timeout")
        connection: httpcore.HTTPConnection | None = None
        try:
            connection = self._checkout(origin)
            try:
                with _as_httpx_errors():
                    response = connection.handle_request(core_request)
            except httpcore.ConnectionNotAvailable:
                # The idle connection was taken away under us (e.g. closed by the server): one fresh try.
                connection.close()
                connection = self._connect(origin)
                with _as_httpx_errors():
                    response = connection.handle_request(core_request)
        except BaseException:
            if connection is not None:
                connection.close()
            self._slots.release()
            raise
        assert isinstance(response.stream, Iterable)  # the sync API streams an iterable body
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_PooledStream(self, origin, connection, response.stream),
            extensions=response.extensions,
        )

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle = [c for conns in self._idle.values() for c in conns]
            self._idle.clear()
        for connection in idle:
            connection.close()

    # ------------------------------------------------------------------ connections

    def _checkout(self, origin: httpcore.Origin) -> httpcore.HTTPConnection:
        while True:
            with self._lock:
                stack = self._idle.get(_key(origin))
                connection = stack.pop() if stack else None
            if connection is None:
                return self._connect(origin)
            # Outside the lock: has_expired() polls the socket to see whether the server hung up.
            if connection.is_available() and not connection.has_expired():
                return connection
            connection.close()

    def _connect(self, origin: httpcore.Origin) -> httpcore.HTTPConnection:
        context = None
        if origin.scheme == b"https":
            with self._lock:
                if self._ssl_context is None:
                    self._ssl_context = httpx.create_ssl_context()
                context = self._ssl_context
        return httpcore.HTTPConnection(
            origin, ssl_context=context, keepalive_expiry=self._keepalive_expiry
        )

    def _release(self, origin: httpcore.Origin, connection: httpcore.HTTPConnection) -> None:
        try:
            with self._lock:
                keep = not self._closed and connection.is_idle()
                if keep:
                    self._idle.setdefault(_key(origin), []).append(connection)
            if not keep:
                connection.close()
        finally:
            self._slots.release()


class _PooledStream(httpx.SyncByteStream):
    """A response body that gives its connection back to the pool once closed."""

    def __init__(
        self,
        pool: KeepAlivePool,
        origin: httpcore.Origin,
        connection: httpcore.HTTPConnection,
        stream: Iterable[bytes],
    ) -> None:
        self._pool = pool
        self._origin = origin
        self._connection: httpcore.HTTPConnection | None = connection
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with _as_httpx_errors():
            yield from self._stream

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            close = getattr(self._stream, "close", None)
            if close is not None:
                with _as_httpx_errors():
                    close()
        finally:
            self._pool._release(self._origin, connection)
