"""Retention (docs/fire.md, "Retention"): run records are pruned, per-job counts survive.

Through the real CLI on SQLite and PostgreSQL: a `repeat: 5` job whose runs were pruned still stops at 5,
`status` counts do not move when records go, and `max_age_days` is measured by the command's clock.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures_core import Project, Result
from tests.fixtures_serve import PY

UTC = timezone.utc


def ts(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_dsn"))
    return f"sqlite:///{tmp_path}/state.db"


def make_project(root: Path, state_url: str, retention: str, **job: Any) -> Project:
    root.mkdir(parents=True, exist_ok=True)
    p = Project(root)
    p.write_config(
        f"jobs: jobs.json\nprovider: local\ntimezone: UTC\nstate: '{state_url}'\n"
        f"providers:\n  local: {{path: '{root / 'local.db'}'}}\n{retention}"
    )
    spec: dict[str, Any] = {
        "id": "daily",
        "schedule": {"kind": "cron", "expr": "0 9 * * *", "tz": "UTC"},
        "command": [PY, "-c", "print('ran')"],
    }
    spec.update(job)
    p.write_jobs([spec])
    return p


def ok(res: Result) -> Result:
    assert res.exit_code == 0, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    return res


def fire(p: Project, at: datetime) -> Result:
    return ok(
        p.cli(
            "fire", "--job-id", "daily", "--fire-at", ts(at), "--now", ts(at + timedelta(seconds=1))
        )
    )


def status_row(p: Project, now: datetime) -> dict[str, Any]:
    (row,) = json.loads(ok(p.cli("status", "--format", "json", "--now", ts(now))).stdout)["jobs"]
    return dict(row)


def run_times(p: Project) -> list[str]:
    doc = json.loads(ok(p.cli("runs", "--format", "json", "--limit", "0")).stdout)
    return [r["fire_at"] for r in doc["runs"]]


def test_a_repeat_5_job_whose_runs_were_pruned_still_stops_at_5(
    tmp_path: Path, state_url: str
) -> None:
    p = make_project(
        tmp_path / "repo", state_url, "retention: {runs_per_job: 2}\n", repeat={"times": 5}
    )
    day0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    ok(p.cli("apply", "--auto-approve", "--now", ts(day0 - timedelta(seconds=30))))
    days = [day0 + timedelta(days=i) for i in range(5)]
    for i, day in enumerate(days):
        fire(p, day)
        if i == 2:  # prune midway too: the count towards repeat must carry on from the counters
            pruned = ok(p.cli("-v", "fire", "--overdue", "--now", ts(day + timedelta(seconds=2))))
            assert "Pruned 1 run record(s) by retention." in pruned.stderr
    before = status_row(p, days[-1] + timedelta(minutes=1))
    assert (before["runs_completed"], before["failures"]) == (5, 0)
    assert before["armed_fire_at"] is None  # five runs: done
    res = ok(p.cli("-v", "fire", "--overdue", "--now", ts(days[-1] + timedelta(minutes=1))))
    assert "Pruned 2 run record(s) by retention." in res.stderr
    assert run_times(p) == [ts(days[4]), ts(days[3])]
    after = status_row(p, days[-1] + timedelta(minutes=1))
    assert after == before
    # A sixth occurrence is refused as stale (repeat exhausted), though only two records are left.
    sixth = fire(p, day0 + timedelta(days=5))
    assert "repeat" in sixth.stderr
    assert run_times(p) == [ts(days[4]), ts(days[3])]
    # And `apply` (which prunes too) does not re-arm it.
    ok(p.cli("apply", "--auto-approve", "--now", ts(day0 + timedelta(days=5, hours=1))))
    assert status_row(p, day0 + timedelta(days=5, hours=1))["armed_fire_at"] is None


@pytest.mark.parametrize("year", [2019, 2041])
def test_max_age_is_measured_by_the_clock(tmp_path: Path, state_url: str, year: int) -> None:
    # Two runs and done, so the backstop has nothing overdue to fire meanwhile.
    p = make_project(
        tmp_path / "repo", state_url, "retention: {max_age_days: 30}\n", repeat={"times": 2}
    )
    day0 = datetime(year, 3, 1, 9, 0, tzinfo=UTC)
    ok(p.cli("apply", "--auto-approve", "--now", ts(day0 - timedelta(seconds=30))))
    fire(p, day0)
    fire(p, day0 + timedelta(days=1))
    counts = status_row(p, day0 + timedelta(days=2))
    assert (counts["runs_completed"], counts["last_run"]["fire_at"]) == (
        2,
        ts(day0 + timedelta(days=1)),
    )
    # 29 days after the older run: nothing is old enough.
    res = ok(p.cli("-v", "fire", "--overdue", "--now", ts(day0 + timedelta(days=29))))
    assert "Pruned" not in res.stderr
    assert len(run_times(p)) == 2
    # 30 days and a minute after it: only that one goes.
    ok(p.cli("fire", "--overdue", "--now", ts(day0 + timedelta(days=30, minutes=1))))
    assert run_times(p) == [ts(day0 + timedelta(days=1))]
    # Far in the future: every finished record goes; the counts stay.
    far = day0 + timedelta(days=3650)
    ok(p.cli("fire", "--overdue", "--now", ts(far)))
    assert run_times(p) == []
    row = status_row(p, far)
    assert (row["runs_completed"], row["failures"], row["last_run"]) == (2, 0, None)
