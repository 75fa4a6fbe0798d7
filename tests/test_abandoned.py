"""Abandoned runs (docs/fire.md, "Abandoned runs"): a run left claimed/running by a dead process.

A real `cronplan fire` of a long job is SIGKILLed; `status`, `runs` and `logs` then show its run as
`abandoned` (a failure), `fire --overdue` records it once, notifies once and the job stays armed. A run held
by a process on another machine is abandoned once its heartbeat is older than the bound, by the clock.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cronplan.abandoned import abandoned_reason, holder_gone, stale_after
from cronplan.ledger import open_ledger
from cronplan.model import Run
from tests.fixtures_core import Project, Result
from tests.fixtures_serve import PY, free_port

UTC = timezone.utc
T = "2026-11-27T09:00:00Z"
T_DT = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
BEFORE = "2026-11-27T08:59:30Z"
AFTER = "2026-11-27T09:00:01Z"
NEXT = "2026-11-28T09:00:00Z"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_dsn"))
    return f"sqlite:///{tmp_path}/state.db"


@pytest.fixture
def hook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A webhook receiver on 127.0.0.1: its URL and the notices it received."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            received.append(json.loads(body))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/hook", received
    finally:
        server.shutdown()
        server.server_close()


def make_project(root: Path, state_url: str) -> Project:
    root.mkdir(parents=True, exist_ok=True)
    p = Project(root)
    p.write_config(
        f"jobs: jobs.json\nprovider: local\ntimezone: UTC\nstate: '{state_url}'\n"
        f"providers:\n  local: {{path: '{root / 'local.db'}'}}\n"
        "notify:\n  url_env: CRONPLAN_NOTIFY_URL\n"
    )
    return p


def ok(res: Result) -> Result:
    assert res.exit_code == 0, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    return res


def status_of(p: Project, now: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    doc = json.loads(ok(p.cli("status", "--format", "json", "--now", now, env=env)).stdout)
    (row,) = doc["jobs"]
    return dict(row)


def runs_of(p: Project, *args: str, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    return list(json.loads(ok(p.cli("runs", "--format", "json", *args, env=env)).stdout)["runs"])


def test_a_killed_fire_is_abandoned_recorded_once_notified_once_and_rearmed(
    tmp_path: Path, state_url: str, hook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = hook
    p = make_project(tmp_path / "repo", state_url)
    pidfile = tmp_path / "job.pid"
    sleeper = (
        f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    )
    p.write_jobs(
        [
            {
                "id": "long",
                "schedule": {"kind": "cron", "expr": "0 9 * * *", "tz": "UTC"},
                "command": [PY, "-c", sleeper],
            }
        ]
    )
    ok(p.cli("apply", "--auto-approve", "--now", BEFORE))
    env = dict(os.environ, CRONPLAN_NOTIFY_URL=url, CRONPLAN_ABANDON_AFTER_SECONDS="2")
    fire = ("fire", "--job-id", "long", "--fire-at", T, "--now", AFTER)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cronplan", "--config", str(p.config), *fire],
        cwd=p.root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ledger = open_ledger(state_url)
    try:
        deadline = time.monotonic() + 60
        run = ledger.get_run("long", T_DT)
        # Running, with its pid on file and at least one heartbeat (every 0.5 s under a 2 s bound).
        while not (run is not None and run.heartbeat_at is not None and pidfile.exists()):
            assert proc.poll() is None and time.monotonic() < deadline, "the fire never got going"
            time.sleep(0.1)
            run = ledger.get_run("long", T_DT)
        assert run.status == "running" and run.started_at is not None
        assert run.heartbeat_at > run.started_at  # stamped from the fire's pinned clock, moving on
        # Alive: shown as running, whatever the bound.
        assert status_of(p, AFTER)["last_run"]["status"] == "running"

        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        os.kill(int(pidfile.read_text()), signal.SIGKILL)  # the orphaned job itself

        # Its holder's pid is gone on this host: abandoned at once, in every view, not yet recorded.
        row = status_of(p, AFTER)
        assert row["last_run"]["status"] == "abandoned"
        assert (row["runs_completed"], row["failures"]) == (1, 1)
        (listed,) = runs_of(p)
        assert listed["status"] == "abandoned"
        (failed,) = runs_of(p, "--failed")
        assert failed["status"] == "abandoned"
        logs = ok(p.cli("logs", "long"))
        assert "(abandoned" in logs.stderr and "is gone" in logs.stderr
        stored = ledger.get_run("long", T_DT)
        assert stored is not None and stored.status == "running"

        # The backstop records it, notifies once, and the job is armed at its next occurrence.
        first = ok(p.cli("fire", "--overdue", "--now", AFTER, env={"CRONPLAN_NOTIFY_URL": url}))
        assert f"long: occurrence {T} recorded as abandoned" in first.stderr
        stored = ledger.get_run("long", T_DT)
        assert stored is not None and stored.status == "abandoned"
        assert stored.error is not None and "is gone" in stored.error
        assert stored.finished_at == stored.heartbeat_at
        again = ok(p.cli("fire", "--overdue", "--now", AFTER, env={"CRONPLAN_NOTIFY_URL": url}))
        assert "abandoned" not in again.stderr
        assert [(n["event"], n["job_id"], n["fire_at"]) for n in received] == [
            ("run_abandoned", "long", T)
        ]
        row = status_of(p, AFTER)
        assert row["last_run"]["status"] == "abandoned" and row["armed_fire_at"] == NEXT
        assert (row["runs_completed"], row["failures"]) == (1, 1)
    finally:
        ledger.close()
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("year", [2019, 2041])
def test_a_run_held_elsewhere_is_abandoned_when_its_heartbeat_is_stale(
    tmp_path: Path, state_url: str, year: int
) -> None:
    """Another machine's run: no pid to probe, so the heartbeat's age by the clock decides."""
    p = make_project(tmp_path / "repo", state_url)
    p.write_jobs([])
    fire = datetime(year, 3, 1, 9, 0, tzinfo=UTC)
    ledger = open_ledger(state_url)
    try:
        assert ledger.claim("far", fire, "some-other-host:4242:1", at=fire)
        ledger.update_run("far", fire, status="running", started_at=fire)
        assert ledger.heartbeat("far", fire, at=fire + timedelta(seconds=45))
    finally:
        ledger.close()

    def at(seconds: int) -> str:
        return (fire + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def shown(now: str, env: dict[str, str] | None = None) -> str:
        (run,) = runs_of(p, "--now", now, env=env)
        return str(run["status"])

    assert shown(at(100)) == "running"  # 55 s since the last beat: within the 60 s bound
    assert shown(at(106)) == "abandoned"
    assert shown(at(60), env={"CRONPLAN_ABANDON_AFTER_SECONDS": "10"}) == "abandoned"
    assert shown(at(50), env={"CRONPLAN_ABANDON_AFTER_SECONDS": "10"}) == "running"
    res = ok(p.cli("fire", "--overdue", "--now", at(106)))
    assert (
        "far: occurrence" in res.stderr and "no heartbeat from some-other-host:4242:1" in res.stderr
    )
    (run,) = runs_of(p, "--now", at(10))  # recorded: no longer depends on the clock
    assert run["status"] == "abandoned"


# --------------------------------------------------------------------------- the rule itself


def _run(**fields: Any) -> Run:
    base: dict[str, Any] = {
        "job_id": "j",
        "fire_at": T_DT,
        "status": "running",
        "claimed_at": T_DT,
        "claimed_by": "elsewhere:1:2",
    }
    base.update(fields)
    return Run(**base)


def test_the_rule() -> None:
    at = T_DT + timedelta(seconds=61)
    assert abandoned_reason(_run(), at, stale_seconds=60, hostname="here") is not None
    assert abandoned_reason(_run(), at, stale_seconds=120, hostname="here") is None
    fresh = _run(heartbeat_at=T_DT + timedelta(seconds=30))
    assert abandoned_reason(fresh, at, stale_seconds=60, hostname="here") is None
    done = _run(status="failed")
    assert abandoned_reason(done, at + timedelta(days=9), stale_seconds=60, hostname="x") is None
    # A pid that is gone on this host: at once, whatever the clock says.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    mine = _run(claimed_by=f"here:{dead.pid}:7")
    assert holder_gone(mine.claimed_by, "here")
    assert abandoned_reason(mine, T_DT, stale_seconds=60, hostname="here") is not None
    assert not holder_gone(f"here:{os.getpid()}", "here")
    assert not holder_gone(f"there:{dead.pid}", "here")
    assert stale_after({}) == 60 and stale_after({"CRONPLAN_ABANDON_AFTER_SECONDS": "5"}) == 5
    assert stale_after({"CRONPLAN_ABANDON_AFTER_SECONDS": "nonsense"}) == 60
