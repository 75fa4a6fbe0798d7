"""What the SQLite ledger and the local provider share: one guarded connection, WAL, instants as integers.

Both stores are used by several processes at once (``apply``, ``fire``, ``serve``) and by several threads of
one process (the applier's workers, serve's request threads). Each process keeps one connection and lets one
thread use it at a time; between processes, WAL lets readers and one writer work at once and the busy
timeout makes a second writer wait instead of failing.

Instants are stored as integer microseconds since the Unix epoch (UTC): they compare and sort as instants
in SQL, and no offset or string format can ever make two equal instants compare unequal.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cronplan.errors import CronplanError

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# How long a writer waits for another process's write transaction before giving up.
BUSY_TIMEOUT_S = 30.0

# Connections closed by a one-shot process that ends with ``os._exit`` (see ``leave_to_exit``).
_LEFT_TO_EXIT: list[sqlite3.Connection] | None = None


def leave_to_exit() -> None:
    """From now on ``Database.close`` leaves its connection for the process's exit to close.

    For a one-shot process that ends with ``os._exit`` (the cold ``cronplan fire``, docs/performance.md):
    SQLite's last connection to a file checkpoints the WAL into the database on close, syncing both files
    to disk and deleting the WAL, which the next process must then create (and sync its directory) again:
    most of a fire's disk syncs. Ending without that close is what a killed process does, which WAL mode is
    built for: every commit already made keeps its durability (a claim was synced at its commit), the WAL
    stays for the next process, and the automatic checkpoint of a later commit keeps it bounded.
    """
    global _LEFT_TO_EXIT
    if _LEFT_TO_EXIT is None:
        _LEFT_TO_EXIT = []


def new_id() -> str:
    """A random id (a lineage, a lock, a manual run); ``uuid`` is imported only when one is made, as a
    cold fire makes none (docs/performance.md)."""
    import uuid

    return uuid.uuid4().hex


def to_us(dt: datetime) -> int:
    """An aware datetime as integer microseconds since the epoch."""
    if dt.tzinfo is None:
        raise ValueError("naive datetime given where an instant is required")
    delta = dt - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


def opt_from_us(value: int | None) -> datetime | None:
    return None if value is None else from_us(value)


def instant_reader() -> Callable[[int], datetime]:
    """``from_us`` remembering its results: bulk reads see the same fire times many times over."""
    seen: dict[int, datetime] = {}

    def read(value: int) -> datetime:
        found = seen.get(value)
        if found is None:
            found = seen[value] = from_us(value)
        return found

    return read


class Database:
    """One SQLite file, one connection per process, one transaction at a time.

    The connection is opened on first use (so constructing a store touches no file), with the parent
    directory created. ``init`` runs once per connection inside a write transaction to create the schema;
    it must be idempotent because every process runs it. ``sqlite3.Error`` is turned into ``error``
    (a ``CronplanError`` kind) with ``what`` and the path in the message.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        what: str,
        error: type[CronplanError],
        init: Callable[[sqlite3.Connection], None],
    ) -> None:
        self.path = str(path)
        self.what = what
        self.error = error
        self._init = init
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._closed = False

    @property
    def in_memory(self) -> bool:
        return self.path == ":memory:"

    def _connect(self) -> sqlite3.Connection:
        if self._closed:
            raise self.error(f"{self.what} at {self.path} was already closed")
        if self._conn is not None:
            return self._conn
        try:
            if not self.in_memory:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_S,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                check_same_thread=False,  # guarded by self._lock
            )
        except (OSError, sqlite3.Error) as exc:
            raise self.error(f"cannot open {self.what} at {self.path}: {exc}") from None
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            if not self.in_memory:
                self._enable_wal(conn)
            # NORMAL in WAL mode: a commit survives a crash of any process; only an OS crash or power
            # loss can drop the last commits. Writes that must survive that (claims) ask for FULL.
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._init(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise self.error(f"cannot use {self.what} at {self.path}: {exc}") from None
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    @staticmethod
    def _enable_wal(conn: sqlite3.Connection) -> None:
        # Switching a fresh file to WAL needs a brief exclusive lock; when many processes open the same
        # new file at once that can report "locked" without consulting the busy handler, so retry.
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL").fetchone()
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    @contextmanager
    def write(self, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``: waits for other writers, never deadlocks on upgrade).

        ``durable`` syncs the WAL to disk at commit, so the write survives power loss too.
        """
        with self._lock:
            conn = self._connect()
            try:
                if durable:
                    conn.execute("PRAGMA synchronous = FULL")
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    try:
                        yield conn
                        conn.execute("COMMIT")
                    except BaseException:
                        if conn.in_transaction:
                            conn.execute("ROLLBACK")
                        raise
                finally:
                    if durable:
                        conn.execute("PRAGMA synchronous = NORMAL")
            except sqlite3.Error as exc:
                raise self.error(f"{self.what} at {self.path}: {exc}") from None

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent read: several statements see one snapshot."""
        with self._lock:
            conn = self._connect()
            try:
                conn.execute("BEGIN")
                try:
                    yield conn
                finally:
                    if conn.in_transaction:
                        conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise self.error(f"{self.what} at {self.path}: {exc}") from None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._conn is not None:
                conn, self._conn = self._conn, None
                if _LEFT_TO_EXIT is not None and not self.in_memory:
                    _LEFT_TO_EXIT.append(conn)  # the OS closes it at os._exit
                else:
                    conn.close()


def sqlite_path_from_url(url: str, *, base_dir: str | Path | None) -> str:
    """The file named by ``sqlite:///REL`` (against ``base_dir``), ``sqlite:////ABS`` or ``sqlite:///:memory:``."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        raise ValueError(
            f"not a sqlite URL: {url!r} (expected sqlite:///PATH or sqlite:////ABSOLUTE/PATH)"
        )
    rest = url[len(prefix) :]
    if not rest:
        raise ValueError(f"sqlite URL names no file: {url!r} (expected sqlite:///PATH)")
    if rest == ":memory:":
        return rest
    path = Path(rest)
    if not path.is_absolute():
        path = Path(base_dir if base_dir is not None else ".") / path
    return str(path)


#: Bound on the number of ids in one ``IN (...)`` list (SQLite allows 32,766 host parameters).
CHUNK = 5000


def chunks(ids: list[Any]) -> Iterator[list[Any]]:
    """``ids`` in lists of at most ``CHUNK``, each small enough for one ``IN (...)``."""
    for i in range(0, len(ids), CHUNK):
        yield ids[i : i + CHUNK]


def later(a: int | None, b: int | None) -> int | None:
    """The later of two optional instants (microseconds)."""
    if a is None:
        return b
    return a if b is None else max(a, b)


def opt_to_us(value: datetime | None) -> int | None:
    return None if value is None else to_us(value)
