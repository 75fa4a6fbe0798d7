"""Killing the PostgreSQL server in the middle of a fire.

The fire reports the error and exits non-zero; once the server is back, the same occurrence never runs
again, and the next plan shows what really happened (the occurrence was claimed, its re-arm never came).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.fixtures_core import Project
from tests.fixtures_pg import PgCluster

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(240)]
UTC = timezone.utc

# One line per run in runs.log; with slow.flag present it first leaves started.flag and takes 3 s.
_JOB = (
    "import os, sys, time\n"
    "root = sys.argv[1]\n"
    "if os.path.exists(os.path.join(root, 'slow.flag')):\n"
    "    open(os.path.join(root, 'started.flag'), 'w').close()\n"
    "    time.sleep(3)\n"
    "with open(os.path.join(root, 'runs.log'), 'a') as fh:\n"
    "    fh.write(os.environ.get('CRONPLAN_FIRE_AT', '?') + '\\n')\n"
)


def ts(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def runs(root: Path) -> list[str]:
    log = root / "runs.log"
    return log.read_text().splitlines() if log.exists() else []


def test_killing_postgres_mid_fire(project: Project, private_pg: PgCluster) -> None:
    root = project.root
    project.write_config(f"jobs: jobs.json\nprovider: local\nstate: {private_pg.dsn}\n")
    project.write_jobs(
        [
            {
                "id": "slow",
                "schedule": {"kind": "interval", "seconds": 3600},
                "command": [sys.executable, "-c", _JOB, str(root)],
            }
        ]
    )
    hour = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    project.apply(
        ts(hour - timedelta(hours=1, minutes=1))
    )  # fires run the job as applied (PostgreSQL)
    previous, current = hour - timedelta(hours=1), hour
    now = ts(hour + timedelta(minutes=5))  # every command pins the clock

    first = project.run("fire", "--now", now, "--job-id", "slow", "--fire-at", ts(previous))
    assert first.exit_code == 0, first.stderr
    assert runs(root) == [ts(previous)]

    (root / "slow.flag").touch()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cronplan",
            "--config",
            str(project.config),
            "fire",
            "--now",
            now,
            "--job-id",
            "slow",
            "--fire-at",
            ts(current),
        ],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (root / "started.flag").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.02)
        private_pg.kill()  # the claim is durable; recording the run's end will fail
        _out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, err
    assert "PostgreSQL ledger" in err and "could not" in err
    assert "Traceback" not in err
    assert runs(root) == [ts(previous), ts(current)]  # it ran exactly once

    private_pg.restart()
    (root / "slow.flag").unlink()
    again = project.run("fire", "--now", now, "--job-id", "slow", "--fire-at", ts(current))
    assert again.exit_code == 0, again.stderr
    assert "duplicate" in again.stderr
    assert runs(root) == [ts(previous), ts(current)]  # nothing ran twice

    # The truth: the occurrence was claimed, so what the plan wants armed for the job is the occurrence
    # after it. (Had the claim been lost, the plan would arm the current occurrence again as a catch-up.)
    plan = project.run("plan", "--now", now, "--format", "json")
    assert plan.exit_code == 0, plan.stderr
    doc = json.loads(plan.stdout)
    (action,) = [a for a in doc["actions"] if a["job_id"] == "slow"]
    wanted = (action["after"] or action["before"])["fire_at"]
    assert wanted == ts(current + timedelta(hours=1)), action

    status = project.run("status", "--format", "json")
    assert status.exit_code == 0, status.stderr
    (job,) = json.loads(status.stdout)["jobs"]
    assert job["last_run"]["fire_at"] == ts(current)
    # Its end was never recorded and its process is gone: shown as abandoned, never as running forever.
    assert job["last_run"]["status"] == "abandoned"
    # Both runs ended (one succeeded, one abandoned), and the abandoned one is the one failure.
    assert (job["runs_completed"], job["failures"]) == (2, 1)
