"""What keeps ``cronplan serve`` standing against hostile or broken clients (docs/fire.md, "Limits").

- **Open files**: at start, the process's soft ``RLIMIT_NOFILE`` is raised to its hard limit, and the number
  of open connections is capped below it (``connection_cap``), so ``accept()`` never fails with "Too many
  open files" (which asyncio would report, with a traceback, on every retry).
- **Connections** (``ConnectionGuard``, through ``guarded_h11``): a request head must arrive complete within
  ``HEADER_TIMEOUT_S`` of the connection (or of its first byte on a kept-alive connection); at the cap, a
  new connection closes the oldest one still waiting for its head, so a flood of half-sent heads can never
  lock out ``/healthz`` or a real callback; with no such connection to close, the new one gets 503.
- **Bodies** are read only after the request is known to be plausible (``FireApp``), within
  ``BODY_TIMEOUT_S``, at most ``MAX_BODY_BYTES`` each and ``MAX_BUFFERED_BYTES`` for all requests at once.
- **Logs** (``LogLimiter``): one line per distinct error per ``LOG_INTERVAL_S``; the next line of that kind
  says how many repeats were not shown.

This module is imported by ``cronplan serve`` only (it pulls in uvicorn and h11).
"""

from __future__ import annotations

import asyncio
import logging
import resource
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

HEADER_TIMEOUT_S = 10.0
BODY_TIMEOUT_S = 10.0
KEEP_ALIVE_S = 5
MAX_HEAD_BYTES = 16 * 1024
MAX_BODY_BYTES = 64 * 1024
MAX_BUFFERED_BYTES = 16 * 1024 * 1024
MAX_CONNECTIONS = 10000
# File descriptors kept free for everything that is not a client connection: the ledger, the local store,
# jobs.json, the pipes of running jobs (16 workers), the JWKS cache, logs.
FD_RESERVE = 128
BACKLOG = 4096
LOG_INTERVAL_S = 60.0

Log = Callable[[str], None]


def raise_nofile_limit() -> int:
    """Raise the soft open-file limit to the hard one; return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass  # some platforms refuse RLIM_INFINITY as a soft limit: keep what we have
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def connection_cap(nofile: int, wanted: int = MAX_CONNECTIONS) -> int:
    """How many client connections may be open at once with ``nofile`` file descriptors."""
    return max(16, min(wanted, nofile - FD_RESERVE))


class LogLimiter:
    """One line per distinct error per interval; the next line of a kind counts the repeats not shown."""

    def __init__(
        self,
        log: Log,
        *,
        interval_s: float = LOG_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        max_kinds: int = 1000,
    ) -> None:
        self.log = log
        self.interval_s = interval_s
        self.clock = clock
        self.max_kinds = max_kinds
        self._lock = threading.Lock()
        # kind -> (when its last line was shown, repeats not shown since)
        self._seen: dict[str, tuple[float, int]] = {}

    def emit(self, kind: str, line: str) -> bool:
        """Show ``line`` unless a line of the same ``kind`` was shown within the interval."""
        with self._lock:
            now = self.clock()
            last = self._seen.get(kind)
            if last is not None and now - last[0] < self.interval_s:
                self._seen[kind] = (last[0], last[1] + 1)
                return False
            hidden = last[1] if last is not None else 0
            self._seen.pop(kind, None)
            self._seen[kind] = (now, 0)
            while len(self._seen) > self.max_kinds:  # memory stays bounded: forget the oldest kind
                del self._seen[next(iter(self._seen))]
        if hidden:
            line += f" ({hidden} more like this in the last {self.interval_s:g} s not shown)"
        self.log(line)
        return True


class LimitedLogHandler(logging.Handler):
    """Routes a library's log records (uvicorn, asyncio) through a ``LogLimiter``, one line each."""

    def __init__(self, limiter: LogLimiter, *, tracebacks: bool = False) -> None:
        super().__init__()
        self.limiter = limiter
        self.tracebacks = tracebacks

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            first = message.strip().splitlines()[0] if message.strip() else ""
            template = record.msg if isinstance(record.msg, str) else first
            kind = f"{record.name}:{template.strip().splitlines()[0] if template.strip() else ''}"
            line = f"serve: {record.name}: {first}"
            exc = record.exc_info[1] if record.exc_info else None
            if exc is not None:
                kind += f":{type(exc).__name__}"
                line += f": {type(exc).__name__}: {exc}"
                if self.tracebacks and record.exc_info is not None:
                    line += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
            self.limiter.emit(kind, line)
        except Exception:
            self.handleError(record)


class ConnectionGuard:
    """Caps open connections and times out request heads; lives on the server's event loop thread."""

    def __init__(
        self,
        *,
        max_connections: int,
        limiter: LogLimiter,
        header_timeout_s: float = HEADER_TIMEOUT_S,
    ) -> None:
        self.max_connections = max_connections
        self.header_timeout_s = header_timeout_s
        self.limiter = limiter
        self._open: set[object] = set()
        # Connections waiting for a complete request head, oldest first, with their timers and transports.
        self._waiting: dict[object, tuple[asyncio.TimerHandle, asyncio.BaseTransport]] = {}

    @property
    def open_connections(self) -> int:
        return len(self._open)

    def opened(self, conn: object, transport: asyncio.BaseTransport) -> bool:
        """A new connection: make room for it, or refuse it (False: it was answered 503 and closed)."""
        if len(self._open) >= self.max_connections:
            if self._waiting:
                oldest = next(iter(self._waiting))
                timer, old_transport = self._waiting.pop(oldest)
                timer.cancel()
                self._open.discard(oldest)
                old_transport.abort()  # type: ignore[attr-defined]
                self.limiter.emit(
                    "guard:evict",
                    f"serve: {self.max_connections} connections open: closed the oldest one still "
                    "waiting for its request head",
                )
            else:
                self.limiter.emit(
                    "guard:refuse",
                    f"serve: {self.max_connections} connections open, all busy: a new one got 503",
                )
                _refuse(transport)
                return False
        self._open.add(conn)
        self.head_pending(conn, transport)
        return True

    def head_pending(self, conn: object, transport: asyncio.BaseTransport) -> None:
        """The connection waits for (the rest of) a request head: start its clock if not running."""
        if conn in self._waiting or conn not in self._open:
            return
        loop = asyncio.get_running_loop()
        timer = loop.call_later(self.header_timeout_s, self._head_timed_out, conn)
        self._waiting[conn] = (timer, transport)

    def head_done(self, conn: object) -> None:
        self._forget_timer(conn)

    def closed(self, conn: object) -> None:
        self._forget_timer(conn)
        self._open.discard(conn)

    def _forget_timer(self, conn: object) -> None:
        entry = self._waiting.pop(conn, None)
        if entry is not None:
            entry[0].cancel()

    def _head_timed_out(self, conn: object) -> None:
        entry = self._waiting.pop(conn, None)
        if entry is None:
            return
        self._open.discard(conn)
        entry[1].abort()  # type: ignore[attr-defined]
        self.limiter.emit(
            "guard:head-timeout",
            f"serve: closed a connection that sent no complete request head within "
            f"{self.header_timeout_s:g} s",
        )


_REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
    b"connection: close\r\ncontent-length: 47\r\n\r\n"
    b'{"error": "too many connections; retry later"}\n'
)


def _refuse(transport: asyncio.BaseTransport) -> None:
    write = getattr(transport, "write", None)
    if write is not None:
        write(_REFUSAL)
    transport.close()


def guarded_h11(guard: ConnectionGuard) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol, with ``guard`` told when connections open, finish their heads and close.

    It overrides only the ``asyncio.Protocol`` callbacks and reads the h11 connection's public state, so it
    holds across uvicorn releases.
    """
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedH11Protocol(H11Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            guard.opened(self, transport)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            state: Any = self.conn.their_state
            if state is h11.IDLE:
                guard.head_pending(self, self.transport)  # a head begun but not finished
            else:
                guard.head_done(self)

        def connection_lost(self, exc: Exception | None) -> None:
            guard.closed(self)
            super().connection_lost(exc)

    return GuardedH11Protocol


__all__ = [
    "BODY_TIMEOUT_S",
    "HEADER_TIMEOUT_S",
    "MAX_BODY_BYTES",
    "MAX_BUFFERED_BYTES",
    "ConnectionGuard",
    "LimitedLogHandler",
    "LogLimiter",
    "connection_cap",
    "guarded_h11",
    "raise_nofile_limit",
]
