"""The PostgreSQL ledger: one run ledger shared by many machines (``state: postgresql://...``).

``PostgresLedger`` is ``cronplan.ledger.Ledger`` put together from one module per concern:

- ``connection``: the psycopg pool, failing fast while the server is down and recovering when it is back;
- ``schema``: the migrations, run once under an advisory lock by whichever process comes first;
- ``runs``: the run records — claims (exactly once across machines), scheduled and manual runs,
  heartbeats, abandoned runs;
- ``applied``: the applied state — each job as last applied (with its run counts) and the apply lock;
- ``retention``: pruning finished runs, their counts kept.

A row reads back as a ``Run`` or a ``LockInfo`` the way the SQLite ledger reads it (``cronplan.ledger.rows``).
psycopg is imported lazily: ``cronplan fire`` on a SQLite ledger never pays for it.
"""

from __future__ import annotations

from cronplan.errors import LedgerError
from cronplan.ledger import Ledger
from cronplan.ledger.postgres.applied import PostgresAppliedState
from cronplan.ledger.postgres.connection import POOL_MAX_SIZE, POOL_TIMEOUT_S
from cronplan.ledger.postgres.retention import PostgresRetention
from cronplan.ledger.postgres.runs import PostgresRunRecords
from cronplan.ledger.postgres.schema import MIGRATIONS, SCHEMA_VERSION


class PostgresLedger(PostgresAppliedState, PostgresRunRecords, PostgresRetention, Ledger):
    """``cronplan.ledger.Ledger`` on PostgreSQL, through a psycopg connection pool. Thread-safe."""

    def __init__(
        self, dsn: str, *, max_size: int = POOL_MAX_SIZE, timeout: float = POOL_TIMEOUT_S
    ) -> None:
        super().__init__(dsn, max_size=max_size, timeout=timeout)
        self._lineage: str | None = None

    def __repr__(self) -> str:
        return f"PostgresLedger({self._where!r})"

    # ------------------------------------------------------------------ identity

    def lineage(self) -> str:
        if self._lineage is None:
            with self._conn("read the lineage") as conn:
                row = conn.execute(
                    "SELECT value FROM cronplan_meta WHERE key = 'lineage'"
                ).fetchone()
            if row is None:
                raise LedgerError(f"PostgreSQL ledger {self._where} has no lineage row")
            self._lineage = str(row[0])
        return self._lineage

    def serial(self) -> int:
        with self._conn("read the serial") as conn:
            row = conn.execute("SELECT last_value, is_called FROM cronplan_serial").fetchone()
        if row is None or not row[1]:
            return 0
        return int(row[0])


__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "PostgresLedger"]
