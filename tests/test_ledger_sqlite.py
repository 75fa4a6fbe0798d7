"""The SQLite ledger: what only a file-backed store has (the shared contract is in test_ledger_contract)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from cronplan.errors import ConfigError, LedgerError
from cronplan.ledger import open_ledger
from cronplan.ledger.sqlite import SqliteLedger

UTC = timezone.utc
T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def test_relative_url_is_resolved_against_base_dir_and_parents_created(tmp_path: Path) -> None:
    ledger = SqliteLedger.from_url("sqlite:///.cronplan/deep/state.db", base_dir=tmp_path)
    try:
        assert not (tmp_path / ".cronplan").exists()  # nothing happens until first use
        ledger.serial()
        assert (tmp_path / ".cronplan" / "deep" / "state.db").is_file()
    finally:
        ledger.close()


def test_absolute_url(tmp_path: Path) -> None:
    target = tmp_path / "abs" / "state.db"
    ledger = open_ledger(f"sqlite:///{target}", base_dir="/nonexistent")
    try:
        ledger.record_applied(
            "a", spec={"id": "a"}, digest="d", fire_at=T0, callback_url=None, at=T0
        )
        assert target.is_file()
    finally:
        ledger.close()


def test_applied_at_is_the_callers_instant(tmp_path: Path) -> None:
    # docs/planning.md, "The clock": --now pins applied_at too; a far-past instant proves it.
    from cronplan.ledger._sqlite import to_us

    far = datetime(2019, 3, 14, 15, 9, 26, 535897, tzinfo=UTC)
    ledger = SqliteLedger(tmp_path / "state.db")
    try:
        ledger.record_applied(
            "a", spec={"id": "a"}, digest="d", fire_at=T0, callback_url=None, at=far
        )
    finally:
        ledger.close()
    with sqlite3.connect(tmp_path / "state.db") as conn:
        (applied_at,) = conn.execute("SELECT applied_at FROM jobs WHERE job_id = 'a'").fetchone()
    assert applied_at == to_us(far)


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "sqlite://relative.db"])
def test_malformed_url_is_a_config_error(url: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="state:"):
        SqliteLedger.from_url(url, base_dir=tmp_path)


def test_job_records_equal_constructed_ones_and_have_every_field(tmp_path: Path) -> None:
    """job_records builds records without the dataclass __init__ (a bulk path): they must be whole."""
    import dataclasses

    from cronplan.model import JobRecord

    ledger = SqliteLedger(tmp_path / "s.db")
    try:
        ledger.record_applied(
            "a", spec={"id": "a"}, digest="d", fire_at=T0, callback_url="cb", at=T0
        )
        ledger.record_applied(
            "b", spec={"id": "b"}, digest="e", fire_at=T0, callback_url=None, at=T0
        )
        assert ledger.claim("b", T0, "t", at=T0)
        assert ledger.claim("c", T0 - timedelta(hours=1), "t", at=T0)  # runs, never applied
        records = ledger.job_records()
        assert sorted(records) == ["a", "b", "c"]
        names = {f.name for f in dataclasses.fields(JobRecord)}
        for record in records.values():
            assert set(vars(record)) == names
            assert record == JobRecord(**vars(record))
        a, b, c = records["a"], records["b"], records["c"]
        assert (a.applied_spec, a.applied_digest, a.applied_fire_at) == ({"id": "a"}, "d", T0)
        assert (a.applied_callback_url, a.runs, a.last_fired_at) == ("cb", 0, None)
        assert (b.runs, b.failures, b.last_fired_at) == (1, 0, T0)
        assert b.last_claimed_at is not None
        assert (c.applied_digest, c.runs, c.last_fired_at) == (None, 1, T0 - timedelta(hours=1))
        assert ledger.job_records(["a", "zz"]).keys() == {"a"}
    finally:
        ledger.close()


def test_store_uses_wal_and_the_agreed_schema(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "s.db")
    ledger.serial()
    ledger.close()
    conn = sqlite3.connect(tmp_path / "s.db")
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"meta", "jobs", "runs", "lock"} <= tables
        assert conn.execute("SELECT schema_version FROM meta").fetchone()[0] == 2
    finally:
        conn.close()


def test_times_are_stored_as_epoch_microseconds(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "s.db")
    fire = T0 + timedelta(microseconds=7)
    assert ledger.claim("a", fire, "me", at=T0)
    ledger.close()
    conn = sqlite3.connect(tmp_path / "s.db")
    try:
        (stored,) = conn.execute("SELECT fire_at FROM runs").fetchone()
    finally:
        conn.close()
    assert stored == int(T0.timestamp()) * 1_000_000 + 7


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    SqliteLedger(tmp_path / "s.db").close()
    ledger = SqliteLedger(tmp_path / "s.db")
    ledger.serial()
    ledger.close()
    conn = sqlite3.connect(tmp_path / "s.db")
    conn.execute("UPDATE meta SET schema_version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(LedgerError, match="newer cronplan"):
        SqliteLedger(tmp_path / "s.db").serial()


def test_unusable_path_is_a_ledger_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(LedgerError, match="cannot open ledger"):
        SqliteLedger(tmp_path / "file" / "state.db").serial()
    (tmp_path / "junk.db").write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(LedgerError, match=r"junk\.db"):
        SqliteLedger(tmp_path / "junk.db").serial()


def test_closed_ledger_refuses_use(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "s.db")
    ledger.serial()
    ledger.close()
    with pytest.raises(LedgerError, match="closed"):
        ledger.serial()


@pytest.mark.timeout(120)
def test_many_processes_creating_one_fresh_store_agree_on_its_lineage(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys
        from cronplan.ledger.sqlite import SqliteLedger
        ledger = SqliteLedger(sys.argv[1])
        print(ledger.lineage())
        ledger.close()
        """
    )
    target = tmp_path / "fresh" / "state.db"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(target)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(10)
    ]
    outputs = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        outputs.append(out.strip())
    assert len(set(outputs)) == 1 and len(outputs[0]) == 32


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_job_records_of_100k_jobs_is_fast(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "s.db")
    try:
        spec = {
            "schedule": {"kind": "cron", "expr": "*/5 * * * *", "tz": "UTC"},
            "command": ["true"],
        }
        ledger.record_applied_many(
            (
                (f"job-{i:06d}", {**spec, "id": f"job-{i:06d}"}, f"d{i}", T0, None)
                for i in range(100_000)
            ),
            at=T0,
        )
        for i in range(0, 100_000, 100):
            assert ledger.claim(f"job-{i:06d}", T0, "me", at=T0)
        started = time.perf_counter()
        every = ledger.job_records()
        all_time = time.perf_counter() - started
        started = time.perf_counter()
        named = ledger.job_records(f"job-{i:06d}" for i in range(100_000))
        named_time = time.perf_counter() - started
    finally:
        ledger.close()
    assert len(every) == len(named) == 100_000
    assert every["job-000100"].runs == 1 and every["job-000101"].runs == 0
    assert every["job-000101"].applied_spec == {**spec, "id": "job-000101"}
    assert all_time < 5 and named_time < 5, (all_time, named_time)


def test_applied_spec_behaves_as_a_read_only_mapping(tmp_path: Path) -> None:
    import json

    spec = {
        "id": "a",
        "schedule": {"kind": "once", "run_at": "2026-12-01T09:00:00Z"},
        "x-n": [1, 2],
    }
    ledger = SqliteLedger(tmp_path / "s.db")
    try:
        ledger.record_applied("a", spec=spec, digest="d", fire_at=None, callback_url=None, at=T0)
        got = ledger.job_records()["a"].applied_spec
    finally:
        ledger.close()
    assert got == spec and spec == got
    assert got != {**spec, "id": "b"}
    assert dict(got) == spec and got["x-n"] == [1, 2] and len(got) == 3
    assert json.loads(json.dumps(dict(got))) == spec
