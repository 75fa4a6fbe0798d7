"""The PostgreSQL ledger beyond the shared contract (which runs on it through ``tests/fixtures_ledger.py``):
migrations under concurrency, connection failures, secrets in messages, a server restart, lean imports.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from cronplan.errors import ConfigError, LedgerError
from cronplan.ledger import open_ledger
from cronplan.ledger.postgres import SCHEMA_VERSION, PostgresLedger
from tests.fixtures_pg import PgCluster

UTC = timezone.utc
T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- schema


@pytest.mark.postgres
@pytest.mark.timeout(120)
def test_many_processes_migrating_one_fresh_database_agree(pg_dsn: str, tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import os, sys, time
        from cronplan.ledger import open_ledger
        dsn, go = sys.argv[1], sys.argv[2]
        while not os.path.exists(go):
            time.sleep(0.001)
        ledger = open_ledger(dsn)
        print(ledger.lineage())
        ledger.close()
        """
    )
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, pg_dsn, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(12)
    ]
    time.sleep(0.5)  # let them all reach the start line
    go.touch()
    lineages = []
    for p in procs:
        out, err = p.communicate(timeout=90)
        assert p.returncode == 0, err
        lineages.append(out.strip())
    assert len(set(lineages)) == 1 and len(lineages[0]) == 32

    import psycopg

    with psycopg.connect(pg_dsn) as conn:
        versions = conn.execute(
            "SELECT version FROM cronplan_schema_migrations ORDER BY version"
        ).fetchall()
    assert [v for (v,) in versions] == list(range(1, SCHEMA_VERSION + 1))


@pytest.mark.postgres
def test_a_newer_schema_is_refused(pg_dsn: str) -> None:
    ledger = PostgresLedger(pg_dsn)
    ledger.serial()
    ledger.close()
    import psycopg

    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO cronplan_schema_migrations (version, description) VALUES (99, 'future')"
        )
    with pytest.raises(LedgerError, match="schema version 99, newer than this cronplan"):
        PostgresLedger(pg_dsn).serial()


@pytest.mark.postgres
def test_tables_live_in_the_databases_search_path_with_prefixed_names(pg_dsn: str) -> None:
    ledger = PostgresLedger(pg_dsn)
    ledger.claim("a", T0, "me", at=T0)
    ledger.close()
    import psycopg

    with psycopg.connect(pg_dsn) as conn:
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            )
        }
    assert {"cronplan_jobs", "cronplan_runs", "cronplan_locks", "cronplan_meta"} <= tables
    assert all(t.startswith("cronplan_") for t in tables)


def test_applied_at_is_the_callers_instant_not_the_database_clock(pg_dsn: str) -> None:
    # docs/planning.md, "The clock": --now pins applied_at too; a far-future instant proves it.
    far = datetime(2035, 3, 14, 15, 9, 26, 535897, tzinfo=UTC)
    ledger = PostgresLedger(pg_dsn)
    try:
        ledger.record_applied(
            "at", spec={"id": "at"}, digest="d", fire_at=T0, callback_url=None, at=far
        )
    finally:
        ledger.close()
    import psycopg

    with psycopg.connect(pg_dsn) as conn:
        row = conn.execute("SELECT applied_at FROM cronplan_jobs WHERE job_id = 'at'").fetchone()
    assert row is not None and row[0] == far


# --------------------------------------------------------------------------- connections and secrets


@pytest.mark.timeout(60)
@pytest.mark.slow
def test_unreachable_server_is_one_clear_error_without_the_password() -> None:
    dsn = f"postgresql://cron:s3cret-pw@127.0.0.1:{closed_port()}/state"
    ledger = open_ledger(dsn)
    started = time.monotonic()
    with pytest.raises(LedgerError) as exc:
        ledger.serial()
    message = str(exc.value)
    assert time.monotonic() - started < 15
    assert "s3cret-pw" not in message and "s3cret-pw" not in repr(exc.value)
    assert "cron:***@127.0.0.1" in message
    assert "could not connect" in message and "refused" in message.lower()
    assert "s3cret-pw" not in repr(ledger)
    ledger.close()


def test_key_value_dsn_is_masked_too() -> None:
    dsn = f"host=127.0.0.1 port={closed_port()} dbname=x user=u password=hunter2 connect_timeout=3"
    with pytest.raises(LedgerError) as exc:
        PostgresLedger(dsn).serial()
    assert "hunter2" not in str(exc.value) and "password=***" in str(exc.value)


@pytest.mark.postgres
def test_dsn_from_an_environment_variable(pg_dsn: str) -> None:
    ledger = open_ledger("env:CRONPLAN_STATE_DSN", environ={"CRONPLAN_STATE_DSN": pg_dsn})
    try:
        assert isinstance(ledger, PostgresLedger)
        assert ledger.claim("a", T0, "me", at=T0)
    finally:
        ledger.close()
    with pytest.raises(ConfigError, match="CRONPLAN_STATE_DSN"):
        open_ledger("env:CRONPLAN_STATE_DSN", environ={})


@pytest.mark.postgres
@pytest.mark.timeout(120)
@pytest.mark.slow
def test_one_handle_survives_a_server_restart(private_pg: PgCluster) -> None:
    ledger = open_ledger(private_pg.dsn)
    try:
        assert ledger.claim("a", T0, "before", at=T0)
        private_pg.kill()
        started = time.monotonic()
        with pytest.raises(LedgerError, match="could not"):
            ledger.claim("a", T0 + timedelta(minutes=1), "during", at=T0)
        assert time.monotonic() - started < 30
        private_pg.restart()
        # The pool drops its dead connections and reconnects; what was claimed before is still claimed.
        assert not ledger.claim("a", T0, "after", at=T0)
        assert ledger.claim("a", T0 + timedelta(minutes=1), "after", at=T0)
        assert [r.claimed_by for r in ledger.runs("a")] == ["after", "before"]
    finally:
        ledger.close()


@pytest.mark.postgres
def test_closed_ledger_refuses_use(pg_dsn: str) -> None:
    ledger = PostgresLedger(pg_dsn)
    ledger.serial()
    ledger.close()
    with pytest.raises(LedgerError, match="closed"):
        ledger.serial()


# --------------------------------------------------------------------------- lean imports


def test_psycopg_is_not_imported_until_a_postgres_ledger_is_used() -> None:
    code = textwrap.dedent(
        """
        import json, sys
        import cronplan.ledger, cronplan.ledger.postgres
        from cronplan.ledger.postgres import PostgresLedger
        before = sorted(m for m in sys.modules if m.split(".")[0] in ("psycopg", "psycopg_pool"))
        print(json.dumps(before))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []


@pytest.mark.postgres
@pytest.mark.timeout(120)
def test_password_from_libpq_sources_never_shown(
    private_pg: PgCluster, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import psycopg

    with psycopg.connect(private_pg.dsn, autocommit=True) as conn:
        conn.execute("CREATE ROLE cron LOGIN PASSWORD 'pw-from-libpq'")
        conn.execute("GRANT ALL ON SCHEMA public TO cron")
    hba = Path(private_pg.state["data"]) / "pg_hba.conf"
    hba.write_text("host all cron 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
    with psycopg.connect(private_pg.dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_reload_conf()")
    port = private_pg.state["port"]
    url = f"postgresql://cron@127.0.0.1:{port}/postgres"

    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "none"))
    with pytest.raises(LedgerError, match="password") as exc:
        open_ledger(url).serial()
    assert "pw-from-libpq" not in str(exc.value)

    monkeypatch.setenv("PGPASSWORD", "pw-from-libpq")
    ledger = open_ledger(url)
    try:
        assert ledger.claim("a", T0, "me", at=T0)
    finally:
        ledger.close()

    monkeypatch.delenv("PGPASSWORD")
    wrong = f"postgresql://cron:not-the-pw@127.0.0.1:{port}/postgres"
    with pytest.raises(LedgerError) as exc:
        open_ledger("env:STATE_DSN", environ={"STATE_DSN": wrong}).serial()
    assert "not-the-pw" not in str(exc.value) and "cron:***@" in str(exc.value)
