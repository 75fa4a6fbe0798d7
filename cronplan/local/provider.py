"""The built-in ``local`` provider: arms in a SQLite file, fired by ``cronplan serve``'s timer loop.

It lives in the core so the fallback can never be uninstalled. It calls no URL (``calls_back`` is False):
nothing ever arrives over HTTP for it, which is why ``verify`` refuses every request.

Besides the Provider protocol it offers what the timer loop needs: ``earliest()`` (the next arm to fire),
``due(now)``, ``generation()`` (changes whenever the arms change, in any process; cheap to poll), and
``cancel_at(job_id, fire_at)`` (remove a fired arm unless it was re-armed meanwhile). ``arm_many`` and
``cancel_many`` are bulk fast paths (one transaction).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from cronplan._gc import gc_paused
from cronplan.documents.config import DEFAULT_LOCAL_PATH
from cronplan.errors import AuthError, ProviderError
from cronplan.ledger._sqlite import Database, from_us, instant_reader, to_us
from cronplan.model import Arm, FireCall, HttpRequest, build_frozen
from cronplan.provider import Availability, ProviderSettings

_SQLITE_MAGIC = b"SQLite format 3\x00"

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS arms (
        job_id TEXT PRIMARY KEY,
        fire_at INTEGER NOT NULL,
        dedup_key TEXT NOT NULL,
        callback_url TEXT,
        updated_at INTEGER NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS arms_by_fire_at ON arms (fire_at, job_id)",
    # One row; ``generation`` is bumped in the same transaction as any change to ``arms``. It starts at a
    # random value so that a deleted and re-created file (almost surely) never repeats an earlier generation.
    """CREATE TABLE IF NOT EXISTS state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        generation INTEGER NOT NULL
    )""",
)

_UPSERT = (
    "INSERT INTO arms (job_id, fire_at, dedup_key, callback_url, updated_at) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (job_id) DO UPDATE SET fire_at = excluded.fire_at, dedup_key = excluded.dedup_key,"
    " callback_url = excluded.callback_url, updated_at = excluded.updated_at"
    # The same arm again is a no-op: not even updated_at moves.
    " WHERE arms.dedup_key IS NOT excluded.dedup_key OR arms.callback_url IS NOT excluded.callback_url"
)


def _init_schema(conn: sqlite3.Connection) -> None:
    for statement in _SCHEMA:
        conn.execute(statement)
    conn.execute(
        "INSERT INTO state (id, generation) VALUES (1, ?) ON CONFLICT (id) DO NOTHING",
        # 62 random bits, from os.urandom as secrets.randbits would (without importing secrets and
        # random: this runs on every cold fire's open).
        (int.from_bytes(os.urandom(8), "big") >> 2,),
    )


def _bump(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE state SET generation = generation + 1 WHERE id = 1")


def _arm_row(row: tuple[Any, ...]) -> Arm:
    job_id, fire_at, callback_url = row
    return Arm(job_id=job_id, fire_at=from_us(fire_at), callback_url=callback_url)


class LocalProvider:
    """Arms in SQLite at ``providers.local.path`` (default ``.cronplan/local.db`` under the project)."""

    name = "local"
    calls_back = False

    def __init__(self, settings: ProviderSettings | None = None) -> None:
        settings = settings or ProviderSettings(name="local")
        self.settings = settings
        raw = settings.options.get("path", DEFAULT_LOCAL_PATH)
        self._option_problem: str | None = None
        if not isinstance(raw, str) or not raw.strip():
            self._option_problem = f"providers.local.path must be a non-empty string, got {raw!r}"
            raw = DEFAULT_LOCAL_PATH
        path = Path(os.path.expanduser(raw))
        self.path = path if path.is_absolute() else Path(settings.base_dir) / path
        # Nothing is opened here: constructing and checking a provider never creates files.
        self._db = Database(
            self.path, what="local provider store", error=ProviderError, init=_init_schema
        )

    def __repr__(self) -> str:
        return f"LocalProvider({str(self.path)!r})"

    # ------------------------------------------------------------------ protocol

    def check(self) -> Availability:
        if self._option_problem:
            return Availability(False, self._option_problem)
        problem = _path_problem(self.path)
        if problem:
            return Availability(False, problem)
        return Availability(True, f"arms in {self.path}")

    def list_arms(self) -> list[Arm]:
        """A loader of state: the collector is paused meanwhile (docs/architecture.md)."""
        with gc_paused(freeze_survivors=True):
            return self._list_arms()

    def _list_arms(self) -> list[Arm]:
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT job_id, fire_at, callback_url FROM arms ORDER BY job_id"
            ).fetchall()
        instant = instant_reader()
        return [
            build_frozen(Arm, job_id=j, fire_at=instant(f), callback_url=c, provider_ref=None)
            for j, f, c in rows
        ]

    def arm(self, arm: Arm) -> None:
        self.arm_many([arm])

    def arm_many(self, arms: Iterable[Arm]) -> int:
        """Upsert many arms in one transaction; returns how many changed."""
        at = to_us(self.settings.clock.now())
        rows = [(a.job_id, to_us(a.fire_at), a.dedup_key, a.callback_url, at) for a in arms]
        if not rows:
            return 0
        with self._db.write() as conn:
            before = conn.total_changes
            conn.executemany(_UPSERT, rows)
            changed = conn.total_changes - before
            if changed:
                _bump(conn)
        return changed

    def cancel(self, job_id: str) -> None:
        self.cancel_many([job_id])

    def cancel_many(self, job_ids: Iterable[str]) -> int:
        """Cancel many arms in one transaction (unknown ids are no-ops); returns how many were removed."""
        rows = [(j,) for j in job_ids]
        if not rows:
            return 0
        with self._db.write() as conn:
            before = conn.total_changes
            conn.executemany("DELETE FROM arms WHERE job_id = ?", rows)
            changed = conn.total_changes - before
            if changed:
                _bump(conn)
        return changed

    def verify_headers(self, headers: Mapping[str, str]) -> None:
        """Refused before any body is read: the local provider calls no URL."""
        self.verify(HttpRequest(method="POST", path="", headers=dict(headers), body=b""))

    def verify(self, request: HttpRequest) -> FireCall:
        raise AuthError(
            "the local provider sends no HTTP callbacks; its arms fire through the timer loop of "
            "`cronplan serve`. Configure a provider that calls back to accept fire requests over HTTP."
        )

    def close(self) -> None:
        self._db.close()

    # ------------------------------------------------------------------ for the timer loop

    def generation(self) -> int:
        """A number that changes whenever any process changes the arms."""
        with self._db.read() as conn:
            (value,) = conn.execute("SELECT generation FROM state WHERE id = 1").fetchone()
        return int(value)

    def earliest(self) -> Arm | None:
        """The arm that fires first (ties broken by job id), or None when nothing is armed."""
        with self._db.read() as conn:
            row = conn.execute(
                "SELECT job_id, fire_at, callback_url FROM arms ORDER BY fire_at, job_id LIMIT 1"
            ).fetchone()
        return None if row is None else _arm_row(row)

    def due(self, now: datetime) -> list[Arm]:
        """Every arm whose fire_at is at or before ``now``, earliest first."""
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT job_id, fire_at, callback_url FROM arms WHERE fire_at <= ?"
                " ORDER BY fire_at, job_id",
                (to_us(now),),
            ).fetchall()
        return [_arm_row(r) for r in rows]

    def cancel_at(self, job_id: str, fire_at: datetime) -> bool:
        """Remove the arm of ``job_id`` only if it is still at ``fire_at``; True when it was removed.

        After firing an arm, the timer loop uses this so that a re-arm written meanwhile survives.
        """
        with self._db.write() as conn:
            cur = conn.execute(
                "DELETE FROM arms WHERE job_id = ? AND fire_at = ?", (job_id, to_us(fire_at))
            )
            removed = cur.rowcount == 1
            if removed:
                _bump(conn)
        return removed


def _path_problem(path: Path) -> str | None:
    """Why ``path`` cannot hold the local arms store, or None. Looks, never creates."""
    if path.exists():
        if path.is_dir():
            return f"providers.local.path {path} is a directory, not a file"
        if not os.access(path, os.R_OK | os.W_OK):
            return f"providers.local.path {path} is not readable and writable by this user"
        try:
            with open(path, "rb") as fh:
                head = fh.read(len(_SQLITE_MAGIC))
        except OSError as exc:
            return f"providers.local.path {path} cannot be read: {exc.strerror or exc}"
        if head and head != _SQLITE_MAGIC:
            return f"providers.local.path {path} exists but is not a SQLite database"
        return None
    parent = path.parent
    while not parent.exists():
        if parent.parent == parent:
            break
        parent = parent.parent
    if not parent.is_dir():
        return f"providers.local.path {path} cannot be created: {parent} is not a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"providers.local.path {path} cannot be created: {parent} is not writable"
    return None
