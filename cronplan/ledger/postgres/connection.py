"""The PostgreSQL ledger's connections: a psycopg pool that fails fast and recovers when the server is back.

psycopg is imported lazily: ``cronplan fire`` on a SQLite ledger never pays for it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from cronplan.errors import LedgerError
from cronplan.ledger.dsn import mask_dsn
from cronplan.ledger.postgres.schema import migrate

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

UTC = timezone.utc

# Fail fast while the server is down (SPEC §12: a few seconds, never a long hang): libpq gives up on a
# connection after CONNECT_TIMEOUT_S, a call waits at most POOL_TIMEOUT_S for a pooled connection, and after
# a connection attempt that failed slowly (a host that does not answer) the calls of the next DOWN_RECHECK_S
# fail at once with the same reason instead of queueing for the same timeout. A refused connection is cheap,
# so it is simply tried again: the first call after the server is back succeeds.
CONNECT_TIMEOUT_S = 3
POOL_TIMEOUT_S = 3.0
DOWN_RECHECK_S = 1.0
POOL_MAX_SIZE = 10

# Without a handler of its own, the pool's reconnect warnings reach logging's last-resort handler and
# land on stderr; cronplan reports connection problems once, as a LedgerError.
logging.getLogger("psycopg.pool").addHandler(logging.NullHandler())


def instant(value: datetime) -> datetime:
    """A ``timestamptz`` read back, in UTC."""
    return value.astimezone(UTC)


def opt_instant(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def aware(value: datetime, name: str) -> datetime:
    """An instant to write: aware (``ValueError`` naming ``name`` otherwise), in UTC."""
    if value.tzinfo is None:
        raise ValueError(f"{name} must be an aware datetime")
    return value.astimezone(UTC)


def opt_aware(value: datetime | None, name: str) -> datetime | None:
    return None if value is None else aware(value, name)


class PostgresConnections:
    """The pool of autocommit connections a ``PostgresLedger`` works through; the parts of the ledger
    reach the database only by ``_conn``, which turns any failure into one ``LedgerError``."""

    def __init__(self, dsn: str, *, max_size: int = POOL_MAX_SIZE, timeout: float = POOL_TIMEOUT_S):
        self._dsn = dsn
        self._where = mask_dsn(dsn)
        self._secrets = _dsn_secrets(dsn)
        self._max_size = max_size
        self._timeout = timeout
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        self._open_lock = threading.Lock()
        self._closed = False
        # (monotonic time until which to fail at once, the message) after a failed connection.
        self._down: tuple[float, str] | None = None

    def _connect_kwargs(self) -> dict[str, Any]:
        from psycopg.conninfo import conninfo_to_dict

        given = conninfo_to_dict(self._dsn)
        extra: dict[str, Any] = {"autocommit": True}
        if "connect_timeout" not in given:
            extra["connect_timeout"] = CONNECT_TIMEOUT_S
        if "application_name" not in given:
            extra["application_name"] = "cronplan"
        return extra

    def _connect(self) -> psycopg.Connection[Any]:
        import psycopg

        return psycopg.connect(self._dsn, **self._connect_kwargs())

    def _get_pool(self) -> ConnectionPool[psycopg.Connection[Any]]:
        pool = self._pool
        if pool is not None:
            return pool
        with self._open_lock:
            if self._closed:
                raise LedgerError(f"PostgreSQL ledger {self._where} is closed")
            if self._pool is None:
                down = self._down
                if down is not None and time.monotonic() < down[0]:
                    raise LedgerError(down[1])
                started = time.monotonic()
                try:
                    self._pool = self._open_pool()
                except LedgerError as exc:
                    self._note_down(started, exc.message)
                    raise
                self._down = None
            return self._pool

    def _note_down(self, started: float, message: str) -> None:
        now = time.monotonic()
        if now - started >= 1.0:
            self._down = (now + DOWN_RECHECK_S, message)

    def _drop_pool(self, pool: ConnectionPool[psycopg.Connection[Any]]) -> None:
        """The server went away: forget the pool, so the next call reconnects directly.

        A pool left to itself retries in the background with a backoff that grows towards minutes, so a
        ledger whose server came back would keep failing; a fresh pool after a direct connection recovers
        as soon as the server answers, and fails at once with the server's own reason while it does not.
        """
        with self._open_lock:
            if self._pool is not pool:
                return
            self._pool = None
        threading.Thread(target=pool.close, kwargs={"timeout": 1.0}, daemon=True).start()

    def _open_pool(self) -> ConnectionPool[psycopg.Connection[Any]]:
        import psycopg
        from psycopg_pool import ConnectionPool, PoolTimeout

        # A direct first connection gives a clear reason when the server is unreachable (the pool would
        # only say it timed out), and carries the migration.
        try:
            with self._connect() as conn:
                migrate(conn, self._where)
        except psycopg.Error as exc:
            raise self._error("connect", exc) from None
        kwargs = self._connect_kwargs()
        pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            self._dsn,
            kwargs=kwargs,
            min_size=1,
            max_size=self._max_size,
            open=False,
            # Dead connections (a restarted server) are replaced on checkout instead of failing a call.
            check=ConnectionPool.check_connection,
            timeout=self._timeout,
            name="cronplan-ledger",
        )
        try:
            pool.open(wait=True, timeout=self._timeout)
        except PoolTimeout:
            pool.close()
            raise LedgerError(
                f"PostgreSQL ledger {self._where}: no connection within {self._timeout:g} s"
            ) from None
        return pool

    @contextmanager
    def _conn(self, what: str) -> Iterator[psycopg.Connection[Any]]:
        """A pooled autocommit connection; any database failure becomes one ``LedgerError``."""
        import psycopg
        from psycopg_pool import PoolTimeout

        pool = self._get_pool()
        broken = False
        try:
            with pool.connection() as conn:
                try:
                    yield conn
                except psycopg.Error:
                    broken = conn.broken
                    raise
        except PoolTimeout:
            raise self._unreachable(what, pool) from None
        except psycopg.Error as exc:
            if broken:
                self._drop_pool(pool)
            raise self._error(what, exc) from None

    def _unreachable(self, what: str, pool: ConnectionPool[psycopg.Connection[Any]]) -> LedgerError:
        """Why no pooled connection came: ask the server directly for the real reason."""
        import psycopg

        started = time.monotonic()
        try:
            with self._connect():
                pass
        except psycopg.Error as exc:
            # Down, not busy: start afresh once it answers again.
            self._drop_pool(pool)
            error = self._error(what, exc)
            self._note_down(started, error.message)
            return error
        return LedgerError(
            f"PostgreSQL ledger {self._where}: could not {what}: no free connection within "
            f"{self._timeout:g} s"
        )

    def _error(self, what: str, exc: BaseException) -> LedgerError:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        for secret in self._secrets:
            reason = reason.replace(secret, "***")
        return LedgerError(f"PostgreSQL ledger {self._where}: could not {what}: {reason}")

    def close(self) -> None:
        with self._open_lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()


def _dsn_secrets(dsn: str) -> tuple[str, ...]:
    """The password in a DSN, so it can be scrubbed from server messages (which quote the DSN rarely)."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        password = conninfo_to_dict(dsn).get("password")
    except Exception:  # a malformed DSN is reported by connect, not here
        return ()
    return (str(password),) if password else ()
