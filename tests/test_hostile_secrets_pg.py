"""The PostgreSQL password never leaves cronplan (docs/security.md): a real server refuses a wrong
password holding '@', ':' and a bad '%' escape, and neither stdout nor stderr shows any of it."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest


@pytest.fixture
def password_role(pg_server: str) -> Iterator[tuple[str, str]]:
    """A role that must give its password (the test cluster trusts everyone else): (role, host:port)."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    role = f"hostile_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server, autocommit=True, connect_timeout=10) as conn:
        hba = Path(str(conn.execute("SHOW hba_file").fetchone()[0]))  # type: ignore[index]
        if not hba.is_file() or not hba.stat().st_mode & 0o200 or not _writable(hba):
            pytest.skip("cannot edit pg_hba.conf of this server")
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'the-right-one'")
        original = hba.read_text()
        hba.write_text(f"host all {role} 127.0.0.1/32 scram-sha-256\n{original}")
        conn.execute("SELECT pg_reload_conf()")
    params = conninfo_to_dict(pg_server)
    try:
        yield role, f"{params.get('host', '127.0.0.1')}:{params.get('port', 5432)}"
    finally:
        with psycopg.connect(pg_server, autocommit=True, connect_timeout=10) as conn:
            hba.write_text(original)
            conn.execute("SELECT pg_reload_conf()")
            conn.execute(f"DROP ROLE IF EXISTS {role}")


def _writable(path: Path) -> bool:
    import os

    return os.access(path, os.W_OK)


PASSWORDS = ["wr0ng@pa%zzss", "s3cret@and:c0lon", "p@ss%zz%41end"]


def _pieces(password: str) -> list[str]:
    """The password and every piece of it a parser may quote (3 characters or more)."""
    return [password] + [p for p in re.split(r"[@:]", password) if len(p) >= 3]


@pytest.mark.parametrize("password", PASSWORDS)
@pytest.mark.parametrize("encoded", [False, True], ids=["raw", "percent-encoded"])
def test_wrong_password_is_refused_and_never_shown(
    project, password_role: tuple[str, str], password: str, encoded: bool
) -> None:
    role, where = password_role
    secret = quote(password, safe="") if encoded else password
    dsn = f"postgresql://{role}:{secret}@{where}/postgres"
    project.write_config("jobs: jobs.json\nstate: env:CRONPLAN_STATE_DSN\n")
    for args in (("status",), ("plan", "--now", "2026-01-01T00:00:00Z"), ("-v", "status")):
        res = project.run(*args, env={"CRONPLAN_STATE_DSN": dsn})
        assert res.exit_code == 1, res.stderr
        out = res.stdout + res.stderr
        assert "PostgreSQL ledger" in out and "Traceback" not in out
        for piece in _pieces(password) + _pieces(secret):
            assert piece not in out, (piece, out)


def test_malformed_host_does_not_show_the_password(project, pg_server: str) -> None:
    dsn = "postgresql://someone:n0t-sh0wn@[127.0.0.1:5432/postgres"
    project.write_config("jobs: jobs.json\nstate: env:CRONPLAN_STATE_DSN\n")
    res = project.run("status", env={"CRONPLAN_STATE_DSN": dsn})
    assert res.exit_code == 1
    assert "n0t-sh0wn" not in res.stdout + res.stderr


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        ("postgresql://u:p@ss@host/db", "postgresql://u:***@host/db"),
        ("postgresql://u:a:b@c@host:5/db", "postgresql://u:***@host:5/db"),
        ("postgresql://u:pa%zz@host/db", "postgresql://u:***@host/db"),
        ("host=h password='a b' user=u", "host=h password=*** user=u"),
    ],
)
def test_mask_dsn_hides_passwords_with_at_signs_and_quotes(dsn: str, shown: str) -> None:
    from cronplan.ledger import mask_dsn

    assert mask_dsn(dsn) == shown


def test_every_reading_of_a_password_is_known() -> None:
    from cronplan.errors import dsn_passwords

    found = dsn_passwords("postgresql://u:wr0ng@pa%zzss@host/db")
    assert {"wr0ng@pa%zzss", "wr0ng", "pa%zzss"} <= found


def test_a_secret_variable_is_scrubbed_from_errors_that_quote_it(project) -> None:
    """The state variable holds a DSN no parser understands; the error quotes it, the scrubber masks it."""
    project.write_config("jobs: jobs.json\nstate: env:MY_DSN\n")
    value = "redis://cache.internal/0?token=tok-4e1f-secret"
    res = project.run("status", env={"MY_DSN": value})
    assert res.exit_code == 1
    assert "unsupported ledger URL" in res.stderr
    assert "tok-4e1f-secret" not in res.stdout + res.stderr


def test_a_dsn_without_password_stays_readable_in_errors(project) -> None:
    project.write_config("jobs: jobs.json\nstate: env:CRONPLAN_STATE_DSN\n")
    dsn = "postgresql://nobody@127.0.0.1:1/db?connect_timeout=2"
    res = project.run("status", env={"CRONPLAN_STATE_DSN": dsn})
    assert res.exit_code == 1
    assert "PostgreSQL ledger postgresql://nobody@127.0.0.1:1/db" in res.stderr


def test_a_dsn_read_from_a_secret_file_loses_its_newline(project, pg_dsn: str) -> None:
    project.write_config("jobs: jobs.json\nstate: env:CRONPLAN_STATE_DSN\n")
    res = project.run("status", env={"CRONPLAN_STATE_DSN": pg_dsn + "\n"})
    assert res.exit_code == 0, res.stderr


def test_a_sqlite_state_url_is_no_secret(project) -> None:
    project.write_config("jobs: jobs.json\nstate: env:CRONPLAN_STATE_DSN\n")
    res = project.run("status", env={"CRONPLAN_STATE_DSN": "sqlite:///"})
    assert res.exit_code == 1
    assert "'sqlite:///' (expected sqlite:///PATH)" in res.stderr
