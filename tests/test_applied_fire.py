"""Fires run the job as applied (docs/fire.md): through the real CLI, on SQLite and PostgreSQL ledgers.

What runs is the definition `apply` recorded in the ledger, never an unapplied edit of jobs.json; a
stateless instance (config + ledger, no jobs.json) handles fires; a fire far ahead of now is refused;
`run` makes manual runs that consume no occurrence; `runs`, `logs` and `status` show the history.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures_core import Project, Result
from tests.fixtures_serve import PY

T = "2026-11-27T09:00:00Z"  # an occurrence of every schedule below
BEFORE = "2026-11-27T08:59:30Z"  # apply's clock: arms T
AFTER = "2026-11-27T09:00:01Z"  # the fire's clock: a moment after T

# A job that appends "LABEL FIRE_AT" to out.log; the label tells which definition ran.
_WRITE = (
    "import os, sys; open(sys.argv[1], 'a').write(sys.argv[2] + ' ' + os.environ['CRONPLAN_FIRE_AT']"
    " + chr(10)); print('said', sys.argv[2])"
)


def writer(job_id: str, root: Path, label: str, **fields: Any) -> dict[str, Any]:
    job: dict[str, Any] = {
        "id": job_id,
        "schedule": {"kind": "cron", "expr": "0 9 * * *", "tz": "UTC"},
        "command": [PY, "-c", _WRITE, str(root / "out.log"), label],
    }
    job.update(fields)
    return job


def lines(root: Path) -> list[str]:
    log = root / "out.log"
    return log.read_text().splitlines() if log.exists() else []


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The ledger URL, shared by every directory of one test (an absolute path for SQLite)."""
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_dsn"))
    return f"sqlite:///{tmp_path}/shared/state.db"


def make_project(root: Path, state_url: str, *, with_jobs: bool = True) -> Project:
    root.mkdir(parents=True, exist_ok=True)
    p = Project(root)
    arms = root.parent / "shared" / "local.db"  # one local provider store for every directory
    p.write_config(
        f"jobs: jobs.json\nprovider: local\ntimezone: UTC\nstate: '{state_url}'\n"
        f"providers:\n  local: {{path: '{arms}'}}\n"
    )
    if with_jobs:
        p.write_jobs([])
    return p


@pytest.fixture
def proj(tmp_path: Path, state_url: str) -> Project:
    return make_project(tmp_path / "repo", state_url)


def ok(res: Result) -> Result:
    assert res.exit_code == 0, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    return res


def apply(p: Project, now: str = BEFORE) -> Result:
    return ok(p.cli("apply", "--auto-approve", "--now", now))


def fire(p: Project, job_id: str, fire_at: str = T, now: str = AFTER) -> Result:
    return p.cli("fire", "--job-id", job_id, "--fire-at", fire_at, "--now", now)


def runs_json(p: Project, *args: str) -> list[dict[str, Any]]:
    res = ok(p.cli("runs", "--format", "json", *args))
    doc = json.loads(res.stdout)
    assert set(doc) == {"format_version", "runs"} and doc["format_version"] == "1"
    return list(doc["runs"])


def status_rows(p: Project) -> dict[str, dict[str, Any]]:
    res = ok(p.cli("status", "--format", "json"))
    return {r["job_id"]: r for r in json.loads(res.stdout)["jobs"]}


# --------------------------------------------------------------------------- fires run the applied job


def test_an_unapplied_edit_never_runs_until_it_is_applied(proj: Project) -> None:
    proj.write_jobs([writer("job", proj.root, "v1")])
    apply(proj)
    # Edited, not applied: another command, another schedule.
    ten = {"kind": "cron", "expr": "0 10 * * *", "tz": "UTC"}
    proj.write_jobs([writer("job", proj.root, "v2", schedule=ten)])
    ok(fire(proj, "job"))  # the applied 09:00 occurrence runs the applied command
    assert lines(proj.root) == [f"v1 {T}"]
    assert status_rows(proj)["job"]["unapplied"] == "changed"
    stale = ok(fire(proj, "job", "2026-11-27T10:00:00Z", "2026-11-27T10:00:01Z"))
    assert "not an occurrence of the job's applied schedule" in stale.stderr
    apply(proj, AFTER)  # re-arms to 10:00 and records the new definition
    assert status_rows(proj)["job"]["unapplied"] == "none"
    ok(fire(proj, "job", "2026-11-27T10:00:00Z", "2026-11-27T10:00:01Z"))
    assert lines(proj.root) == [f"v1 {T}", "v2 2026-11-27T10:00:00Z"]


def test_a_stateless_instance_fires_with_only_the_config_and_the_ledger(
    proj: Project, tmp_path: Path, state_url: str
) -> None:
    proj.write_jobs([writer("job", proj.root, "applied")])
    apply(proj)
    # Another machine: the same config (ledger, provider) and no jobs.json at all.
    worker = make_project(tmp_path / "worker", state_url, with_jobs=False)
    assert not (worker.root / "jobs.json").exists()
    res = ok(fire(worker, "job"))
    assert "succeeded" in res.stderr and "next arm: 2026-11-28T09:00:00Z" in res.stderr
    assert lines(proj.root) == [f"applied {T}"]
    # The repository sees the run and the re-arm it made.
    [run] = runs_json(proj, "job")
    assert (run["fire_at"], run["kind"], run["status"]) == (T, "scheduled", "succeeded")
    assert status_rows(proj)["job"]["armed_fire_at"] == "2026-11-28T09:00:00Z"
    # A duplicate and a job that was never applied are no-ops there too.
    assert "duplicate fire ignored" in ok(fire(worker, "job")).stderr
    stale = ok(fire(worker, "ghost"))
    assert "stale fire ignored" in stale.stderr and "not applied" in stale.stderr
    # status still works without jobs.json, and says that it cannot compare.
    st = worker.cli("status", "--format", "json")
    assert st.exit_code == 0 and "jobs file unreadable" in st.stderr
    assert [r["unapplied"] for r in json.loads(st.stdout)["jobs"]] == ["unknown"]


def test_a_job_removed_and_applied_is_not_applied_any_more(proj: Project) -> None:
    proj.write_jobs([writer("gone", proj.root, "x"), writer("kept", proj.root, "k")])
    apply(proj)
    proj.write_jobs([writer("kept", proj.root, "k")])
    assert status_rows(proj)["gone"]["unapplied"] == "removed"
    apply(proj)  # cancels the orphan and forgets its definition
    res = ok(fire(proj, "gone"))
    assert "stale fire ignored" in res.stderr and "not applied" in res.stderr
    assert lines(proj.root) == []
    assert "gone" not in status_rows(proj)


def test_status_marks_new_changed_and_removed_jobs(proj: Project) -> None:
    proj.write_jobs([writer("same", proj.root, "s"), writer("edit", proj.root, "e")])
    apply(proj)
    proj.write_jobs(
        [
            writer("same", proj.root, "s"),
            writer("edit", proj.root, "E"),
            writer("new", proj.root, "n"),
        ]
    )
    rows = status_rows(proj)
    assert {k: r["unapplied"] for k, r in rows.items()} == {
        "same": "none",
        "edit": "changed",
        "new": "new",
    }
    text = ok(proj.cli("status")).stdout.splitlines()
    assert text[0].split()[-1] == "UNAPPLIED"
    by_job = {line.split()[0]: line.split()[-1] for line in text[1:]}
    assert by_job == {"edit": "changed", "new": "new", "same": "-"}
    (proj.root / "jobs.json").write_text("{not json")
    res = proj.cli("status", "--format", "json")
    assert res.exit_code == 0 and "jobs file unreadable" in res.stderr
    assert {r["job_id"]: r["unapplied"] for r in json.loads(res.stdout)["jobs"]} == {
        "edit": "unknown",
        "same": "unknown",
    }


# --------------------------------------------------------------------------- fire --fire-at horizon


@pytest.mark.parametrize("year", [2019, 2035])
def test_fire_at_beyond_one_period_ahead_is_refused(project: Project, year: int) -> None:
    """A typo in the year must not run the job, record a far-future occurrence and silence it."""
    project.write_jobs([writer("daily", project.root, "d")])
    now = f"{year}-03-10T08:00:00Z"
    apply(project, now)
    typo = f"{year + 36}-03-10T09:00:00Z"
    res = fire(project, "daily", typo, now)
    assert res.exit_code == 1 and "Traceback" not in res.stderr
    assert "refusing to fire daily:" in res.stderr and "check the year" in res.stderr
    two_days = f"{year}-03-12T09:00:00Z"  # more than one period (a day) ahead
    assert fire(project, "daily", two_days, now).exit_code == 1
    assert lines(project.root) == [] and runs_json(project) == []
    # One period ahead is allowed (running the armed occurrence early by hand), and moves the arm on.
    ok(fire(project, "daily", f"{year}-03-10T09:00:00Z", now))
    assert lines(project.root) == [f"d {year}-03-10T09:00:00Z"]
    assert status_rows(project)["daily"]["armed_fire_at"] == f"{year}-03-11T09:00:00Z"


def test_fire_at_horizon_is_one_period_for_long_periods(project: Project) -> None:
    weekly = writer("weekly", project.root, "w", schedule={"kind": "cron", "expr": "0 9 * * 5"})
    project.write_jobs([weekly])
    now = "2026-11-21T10:00:00Z"  # a Saturday: the next Friday is 6 days ahead, within one period
    apply(project, now)
    ok(fire(project, "weekly", T, now))
    assert lines(project.root) == [f"w {T}"]
    res = fire(project, "weekly", "2026-12-11T09:00:00Z", now)  # three weeks ahead
    assert res.exit_code == 1 and "more than one period" in res.stderr


# --------------------------------------------------------------------------- run (manual runs)


def test_run_wait_is_a_manual_run_that_consumes_no_occurrence(proj: Project) -> None:
    proj.write_jobs([writer("once", proj.root, "m", repeat={"times": 1})])
    apply(proj)
    before = status_rows(proj)["once"]
    res = ok(proj.cli("run", "once", "--wait"))
    assert "once (manual run " in res.stderr and "succeeded in" in res.stderr
    [line] = lines(proj.root)
    assert line.startswith("m ")  # the job saw its start time as CRONPLAN_FIRE_AT
    # No occurrence consumed: the arm and the counts are as before, and the repeat-1 job still fires.
    after = status_rows(proj)["once"]
    assert after == before and after["armed_fire_at"] == T
    ok(fire(proj, "once"))
    assert lines(proj.root)[1] == f"m {T}"
    runs = runs_json(proj, "once")  # a manual run sorts by its (real) start time
    assert sorted((r["kind"], r["fire_at"] or "") for r in runs) == [
        ("manual", ""),
        ("scheduled", T),
    ]
    assert {r["status"] for r in runs} == {"succeeded"}


def test_run_wait_of_a_failing_job_exits_1_and_logs_show_it(proj: Project) -> None:
    failing = {
        "id": "bad",
        "schedule": {"kind": "cron", "expr": "0 9 * * *"},
        "command": [PY, "-c", "import sys; print('to stdout'); sys.exit('went wrong')"],
    }
    proj.write_jobs([failing])
    apply(proj)
    res = proj.cli("run", "bad", "--wait")
    assert res.exit_code == 1 and "failed in" in res.stderr and "Traceback" not in res.stderr
    [run] = runs_json(proj, "bad")
    assert (run["kind"], run["fire_at"], run["status"], run["exit_code"]) == (
        "manual",
        None,
        "failed",
        1,
    )
    logs = ok(proj.cli("logs", "bad", "--last"))
    assert "to stdout" in logs.stdout and "went wrong" in logs.stdout
    assert "manual run" in logs.stderr and "exited with status 1" in logs.stderr


def test_run_of_a_job_that_is_not_applied_is_refused(proj: Project) -> None:
    proj.write_jobs([writer("draft", proj.root, "x")])
    for args in (("run", "draft", "--wait"), ("run", "draft")):
        res = proj.cli(*args)
        assert res.exit_code == 1 and "Traceback" not in res.stderr
        assert "'draft' is not applied" in res.stderr and "cronplan apply" in res.stderr
    assert lines(proj.root) == [] and runs_json(proj) == []


def test_run_without_wait_runs_in_the_background(project: Project) -> None:
    project.write_jobs([writer("bg", project.root, "bg")])
    apply(project)
    res = project.run("run", "bg")
    assert res.exit_code == 0, res.stderr
    assert "in the background" in res.stderr and "cronplan logs bg --last" in res.stderr
    deadline = time.monotonic() + 30
    while not [r for r in runs_json(project, "bg") if r["status"] == "succeeded"]:
        assert time.monotonic() < deadline, "the background run never finished"
        time.sleep(0.2)
    [run] = runs_json(project, "bg")
    assert (run["kind"], run["fire_at"]) == ("manual", None)
    assert [line.split()[0] for line in lines(project.root)] == ["bg"]


# --------------------------------------------------------------------------- runs and logs


def test_runs_json_shape_order_and_filters(proj: Project) -> None:
    good = writer("good", proj.root, "g")
    bad = {
        "id": "bad",
        "schedule": {"kind": "cron", "expr": "0 9 * * *"},
        "command": [PY, "-c", "import sys; sys.exit(3)"],
    }
    proj.write_jobs([good, bad])
    apply(proj)
    days = ["2026-11-27", "2026-11-28", "2026-11-29"]
    for day in days:
        at = f"{day}T09:00:00Z"
        ok(fire(proj, "good", at, f"{day}T09:00:01Z"))
        assert fire(proj, "bad", at, f"{day}T09:00:01Z").exit_code == 1
    runs = runs_json(proj)
    keys = {
        "job_id",
        "fire_at",
        "kind",
        "status",
        "started_at",
        "finished_at",
        "duration_s",
        "exit_code",
    }
    assert all(set(r) == keys for r in runs)
    assert [(r["fire_at"][:10], r["job_id"]) for r in runs] == [
        (d, j) for d in reversed(days) for j in ("bad", "good")
    ]  # newest first
    assert {(r["job_id"], r["status"], r["exit_code"]) for r in runs} == {
        ("good", "succeeded", 0),
        ("bad", "failed", 3),
    }
    assert all(isinstance(r["duration_s"], float) for r in runs)
    failed = runs_json(proj, "--failed")
    assert [r["job_id"] for r in failed] == ["bad"] * 3
    since = runs_json(proj, "good", "--since", "2026-11-28T09:00:00Z")
    assert [r["fire_at"] for r in since] == ["2026-11-29T09:00:00Z", "2026-11-28T09:00:00Z"]
    assert len(runs_json(proj, "--limit", "2")) == 2
    text = ok(proj.cli("runs", "bad", "--limit", "1")).stdout.splitlines()
    assert text[0].split() == ["JOB", "KIND", "AT", "(UTC)", "STATUS", "TOOK", "EXIT"]
    assert text[1].split()[:4] == ["bad", "scheduled", "2026-11-29T09:00:00Z", "failed"]
    assert text[1].split()[-1] == "3"
    assert ok(proj.cli("runs", "nobody")).stdout.strip() == "No runs."
    assert proj.cli("runs", "--since", "yesterday").exit_code == 64


def test_logs_by_occurrence_and_last(proj: Project) -> None:
    proj.write_jobs([writer("job", proj.root, "hello")])
    apply(proj)
    ok(fire(proj, "job"))
    ok(fire(proj, "job", "2026-11-28T09:00:00Z", "2026-11-28T09:00:01Z"))
    res = ok(proj.cli("logs", "job", "--fire-at", T))
    assert res.stdout == "said hello\n"
    assert f"job: occurrence {T} (succeeded, exit 0" in res.stderr
    last = ok(proj.cli("logs", "job"))
    assert "occurrence 2026-11-28T09:00:00Z" in last.stderr
    missing = proj.cli("logs", "job", "--fire-at", "2026-11-20T09:00:00Z")
    assert missing.exit_code == 1 and "no recorded run of job 'job'" in missing.stderr
    assert proj.cli("logs", "nobody").exit_code == 1
    assert proj.cli("logs", "job", "--last", "--fire-at", T).exit_code == 64


# --------------------------------------------------------------------------- fire --overdue


def test_overdue_arms_applied_jobs_that_lost_their_arm(proj: Project, tmp_path: Path) -> None:
    from cronplan.local.provider import LocalProvider
    from cronplan.provider import ProviderSettings

    paused = writer("paused", proj.root, "p")
    proj.write_jobs([writer("lost", proj.root, "l"), writer("kept", proj.root, "k"), paused])
    apply(proj)
    proj.write_jobs(
        [
            writer("lost", proj.root, "l"),
            writer("kept", proj.root, "k"),
            {**paused, "enabled": False},
        ]
    )
    apply(proj)  # "paused" is applied as disabled: it must stay without an arm
    store = tmp_path / "shared" / "local.db"
    local = LocalProvider(ProviderSettings("local", options={"path": str(store)}))
    try:
        local.cancel("lost")  # the provider dropped the arm
    finally:
        local.close()
    (proj.root / "jobs.json").unlink()  # the backstop needs only the ledger too
    assert {k: r["armed_fire_at"] for k, r in status_rows(proj).items()} == {
        "kept": T,
        "lost": None,
        "paused": None,
    }
    res = ok(proj.cli("fire", "--overdue", "--now", BEFORE))
    assert f"lost: had no live arm; armed at {T}" in res.stderr
    assert "kept" not in res.stderr and "paused" not in res.stderr
    assert {k: r["armed_fire_at"] for k, r in status_rows(proj).items()} == {
        "kept": T,
        "lost": T,
        "paused": None,
    }
    again = ok(proj.cli("-v", "fire", "--overdue", "--now", BEFORE))
    assert "No overdue arms and no missing ones." in again.stderr
