"""The run ledger in one SQLite file (``state: sqlite:///PATH``), safe for many processes and threads.

``SqliteLedger`` is ``cronplan.ledger.Ledger`` put together from one module per concern:

- ``schema``: the tables, the schema version and the migration of older files;
- ``runs``: the run records — claims, scheduled and manual runs, heartbeats, abandoned runs;
- ``applied``: the applied state — each job as last applied (with its run counts) and the apply lock;
- ``retention``: pruning finished runs, their counts kept.

Instants are integer microseconds since the epoch, and one guarded connection serves the process (both in
``cronplan.ledger._sqlite``, shared with the local provider). A row reads back as a ``Run`` or a
``LockInfo`` the way the PostgreSQL ledger reads it (``cronplan.ledger.rows``).
"""

from __future__ import annotations

from pathlib import Path

from cronplan.errors import ConfigError, LedgerError
from cronplan.ledger import Ledger
from cronplan.ledger._sqlite import Database, sqlite_path_from_url
from cronplan.ledger.sqlite.applied import LazyJson, SqliteAppliedState
from cronplan.ledger.sqlite.retention import SqliteRetention
from cronplan.ledger.sqlite.runs import SqliteRunRecords
from cronplan.ledger.sqlite.schema import SCHEMA_VERSION, init_schema


class SqliteLedger(SqliteAppliedState, SqliteRunRecords, SqliteRetention, Ledger):
    """``cronplan.ledger.Ledger`` on one SQLite file. Thread-safe; safe for concurrent processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._db = Database(self.path, what="ledger", error=LedgerError, init=init_schema)

    @classmethod
    def from_url(cls, url: str, *, base_dir: str | Path | None = None) -> SqliteLedger:
        """``sqlite:///REL`` (against ``base_dir``, default the current directory) or ``sqlite:////ABS``."""
        try:
            return cls(sqlite_path_from_url(url, base_dir=base_dir))
        except ValueError as exc:
            raise ConfigError(f"state: {exc}") from None

    def __repr__(self) -> str:
        return f"SqliteLedger({self.path!r})"

    # ------------------------------------------------------------------ identity

    def lineage(self) -> str:
        with self._db.read() as conn:
            (value,) = conn.execute("SELECT lineage FROM meta WHERE id = 1").fetchone()
        return str(value)

    def serial(self) -> int:
        with self._db.read() as conn:
            (value,) = conn.execute("SELECT serial FROM meta WHERE id = 1").fetchone()
        return int(value)

    def close(self) -> None:
        self._db.close()


__all__ = ["SCHEMA_VERSION", "LazyJson", "SqliteLedger"]
