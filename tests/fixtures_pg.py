"""Fixtures: PostgreSQL for the ledger tests (plugin module listed in tests/conftest.py).

- ``pg_server`` (session): the DSN of a server's admin database — ``$CRONPLAN_TEST_PG_DSN`` when set
  (``.ci/run`` provides it), else a throwaway cluster started with ``scripts/pg-cluster`` when initdb is
  installed, else the test is skipped (failed when ``CRONPLAN_TEST_REQUIRE_SERVICES=1``).
- ``pg_dsn``: a fresh, empty database on that server for one test, dropped afterwards.
- ``private_pg``: a cluster of the test's own, which it may kill and restart (fault tests).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "pg-cluster"
REQUIRE_ENV = "CRONPLAN_TEST_REQUIRE_SERVICES"


def services_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0")


def skip_or_fail(reason: str) -> None:
    """Skip when a service is truly absent; under ``.ci/run`` (services required) that is a failure."""
    if services_required():
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1 forbids skipping)")
    pytest.skip(reason)


def _initdb_available() -> bool:
    if shutil.which("initdb"):
        return True
    root = Path("/usr/lib/postgresql")
    return root.is_dir() and any((p / "bin" / "initdb").exists() for p in root.iterdir())


class PgCluster:
    """A throwaway cluster started by ``scripts/pg-cluster``; can be killed and brought back."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.state: dict[str, Any] = {}

    def start(self) -> str:
        done = subprocess.run(
            [sys.executable, str(SCRIPT), "start", str(self.run_dir), "--no-install"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"scripts/pg-cluster start failed: {done.stderr.strip()}")
        self.state = json.loads((self.run_dir / "pg-cluster.json").read_text())
        return str(self.state["dsn"])

    @property
    def dsn(self) -> str:
        return str(self.state["dsn"])

    @property
    def pid(self) -> int:
        return int(self.state["pid"])

    def kill(self) -> None:
        """Kill the server the hard way (SIGKILL to the postmaster), as a crash or a lost machine."""
        os.kill(self.pid, signal.SIGKILL)
        _wait_gone(self.pid)
        # Orphaned backends notice their postmaster is gone and exit; wait so the port is free again.
        deadline = time.monotonic() + 15
        while _port_busy(int(self.state["port"])) and time.monotonic() < deadline:
            time.sleep(0.05)

    def restart(self) -> None:
        """Start the killed server again on the same data directory and port."""
        user = self.state.get("user")
        argv = [
            str(Path(self.state["bindir"]) / "pg_ctl"),
            "-D",
            self.state["data"],
            "-l",
            self.state["log"],
            "-w",
            "-t",
            "60",
            "-o",
            self.state["options"],
            "start",
        ]
        if user:
            argv = ["runuser", "-u", user, "--", *argv]
        subprocess.run(argv, check=True, capture_output=True, timeout=90)
        pid_file = Path(self.state["data"]) / "postmaster.pid"
        self.state["pid"] = int(pid_file.read_text().split()[0])
        (self.run_dir / "pg-cluster.json").write_text(json.dumps(self.state))

    def stop(self) -> None:
        subprocess.run(
            [sys.executable, str(SCRIPT), "stop", str(self.run_dir)],
            capture_output=True,
            timeout=60,
        )


def _wait_gone(pid: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)


def _port_busy(port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def start_private_cluster() -> PgCluster:
    if not _initdb_available():
        skip_or_fail("PostgreSQL binaries (initdb) are not installed; run scripts/pg-cluster once")
    cluster = PgCluster(Path(tempfile.mkdtemp(prefix="cronplan-pgrun-")))
    cluster.start()
    return cluster


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    dsn = os.environ.get("CRONPLAN_TEST_PG_DSN")
    if dsn:
        yield dsn
        return
    cluster = start_private_cluster()
    try:
        yield cluster.dsn
    finally:
        cluster.stop()
        shutil.rmtree(cluster.run_dir, ignore_errors=True)


def with_database(server_dsn: str, dbname: str) -> str:
    """The server DSN pointed at another database, as a ``postgresql://`` URL (what ``state:`` takes)."""
    from urllib.parse import quote, urlencode

    from psycopg.conninfo import conninfo_to_dict

    params = {k: str(v) for k, v in conninfo_to_dict(server_dsn).items()}
    user = params.pop("user", "")
    password = params.pop("password", "")
    host = params.pop("host", "127.0.0.1")
    port = params.pop("port", "5432")
    params.pop("dbname", None)
    auth = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
    query = ("?" + urlencode(params)) if params else ""
    return f"postgresql://{auth}{'@' if auth else ''}{host}:{port}/{quote(dbname)}{query}"


def create_database(server_dsn: str) -> tuple[str, str]:
    import psycopg

    name = f"cronplan_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_dsn, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, with_database(server_dsn, name)


def drop_database(server_dsn: str, name: str) -> None:
    import psycopg

    try:
        with psycopg.connect(server_dsn, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except psycopg.Error:
        pass  # the server may be gone at the end of a fault test; the cluster goes with it


@pytest.fixture
def pg_dsn(pg_server: str) -> Iterator[str]:
    """A fresh database for this test only (so tests never see each other's rows)."""
    name, dsn = create_database(pg_server)
    try:
        yield dsn
    finally:
        drop_database(pg_server, name)


@pytest.fixture
def private_pg() -> Iterator[PgCluster]:
    """A cluster of this test's own: it may be killed and restarted without disturbing other tests."""
    cluster = start_private_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(cluster.run_dir, ignore_errors=True)
