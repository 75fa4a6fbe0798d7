"""plan/apply through the real CLI (``python -m cronplan``) against the real NAS test server."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures_nas import NasProject

UTC = timezone.utc
RFC3339_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
# Pinned a day ahead so no arm comes due while a test runs; the servers here never fire anyway.
NOW = (datetime.now(UTC) + timedelta(days=1)).replace(hour=6, minute=0, second=0, microsecond=0)
NOW_TS = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")


def jobs(n: int = 0) -> list[dict[str, Any]]:
    base: list[dict[str, Any]] = [
        {"id": "every-5m", "schedule": {"kind": "interval", "minutes": 5}},
        {
            "id": "daily-berlin",
            "schedule": {"kind": "cron", "expr": "30 9 * * *", "tz": "Europe/Berlin"},
        },
        {
            "id": "one-shot",
            "schedule": {"kind": "once", "run_at": (NOW + timedelta(days=2)).isoformat()},
        },
    ]
    base += [
        {"id": f"job-{i:03d}", "schedule": {"kind": "interval", "seconds": 60 + i}}
        for i in range(n)
    ]
    # Every job needs something to run it (no runner is configured here): a command.
    return [{**job, "command": ["true"]} for job in base]


def planned(np: NasProject) -> dict[str, str]:
    """{job_id: fire_at} of the arm/re-arm actions of a JSON plan at NOW."""
    res = np.run("plan", "--format", "json", "--now", NOW_TS)
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    return {
        a["job_id"]: a["after"]["fire_at"]
        for a in doc["actions"]
        if a["action"] in ("arm", "rearm", "skip") and a.get("after")
    }


@pytest.fixture
def np(nas_project: NasProject) -> NasProject:
    nas_project.server.fire_enabled = False
    return nas_project


@pytest.mark.timeout(120)
def test_apply_provisions_contract_arms_and_second_apply_sends_nothing(np: NasProject) -> None:
    np.write_jobs(jobs())
    want = planned(np)
    assert set(want) == {"every-5m", "daily-berlin", "one-shot"}

    res = np.run("apply", "--auto-approve", "--now", NOW_TS)
    assert res.exit_code == 0, res.stderr
    server = np.server
    assert server.violations == []
    assert len(server.provisions) == 3
    for body in server.provisions:
        assert RFC3339_Z.match(body["fire_at"]), body
        assert body["dedup_key"] == f"{body['job_id']}:{body['fire_at']}"
        assert body["agent_callback_url"] == np.callback_url
    assert server.armed() == want
    assert want["daily-berlin"].endswith(("08:30:00Z", "07:30:00Z"))  # 09:30 Berlin in UTC

    before = server.count("POST /api/agent-cron/provision")
    res = np.run("apply", "--auto-approve", "--now", NOW_TS)
    assert res.exit_code == 0, res.stderr
    assert "No changes" in res.stdout
    assert server.count("POST /api/agent-cron/provision") == before
    assert server.count("POST /api/agent-cron/cancel") == 0


@pytest.mark.timeout(120)
def test_orphans_and_paused_jobs_are_cancelled(np: NasProject) -> None:
    np.write_jobs(jobs())
    assert np.run("apply", "--auto-approve", "--now", NOW_TS).exit_code == 0
    # An arm cronplan never made (another agent, a deleted job) and a job that gets paused.
    np.server.provision(
        {
            "job_id": "ghost",
            "fire_at": "2030-01-01T00:00:00Z",
            "agent_callback_url": np.callback_url,
            "dedup_key": "ghost:2030-01-01T00:00:00Z",
        }
    )
    changed = jobs()
    changed[0]["state"] = "paused"
    np.write_jobs(changed)

    res = np.run("plan", "--now", NOW_TS)
    assert res.exit_code == 0, res.stderr
    assert re.search(r"-\s+every-5m\b.*paused", res.stdout), res.stdout
    assert re.search(r"-\s+ghost\b.*orphan", res.stdout), res.stdout

    res = np.run("apply", "--auto-approve", "--now", NOW_TS)
    assert res.exit_code == 0, res.stderr
    assert set(np.server.armed()) == {"daily-berlin", "one-shot"}
    assert np.server.count("cancel_removed") == 2
    assert "No changes" in np.run("plan", "--now", NOW_TS).stdout


@pytest.mark.timeout(240)
def test_apply_converges_under_30_percent_faults(np: NasProject) -> None:
    all_jobs = jobs(40)
    np.write_jobs(all_jobs)
    want = planned(np)
    assert len(want) == len(all_jobs)
    # A tight retry budget so that some calls do fail in a run; later runs must pick them up.
    np.configure(retry_total_seconds=1.0, retry_base_seconds=0.05, retry_max_backoff_seconds=0.4)
    np.server.set_faults(error_rate=0.3, retry_after="1", seed=5)

    exits = []
    for _ in range(3):
        res = np.run("apply", "--auto-approve", "--now", NOW_TS, "--parallelism", "8")
        exits.append(res.exit_code)
        assert res.exit_code in (0, 1), res.stderr
        assert "Traceback" not in res.stderr
        armed = np.server.armed()
        # Never an arm at a wrong time (nor one for a job that should have none).
        for job_id, fire_at in armed.items():
            assert want.get(job_id) == fire_at, (job_id, fire_at)
        assert np.server.violations == []
        if res.exit_code == 0:
            break
        assert "failed" in res.stderr.lower()
    assert exits[-1] == 0, exits
    assert np.server.armed() == want
    counters = np.server.snapshot()["counters"]
    assert sum(v for k, v in counters.items() if k.startswith("fault_")) > 0, counters
    # The server keeps one arm per job, and every provision of a job carried its one right time.
    for body in np.server.provisions:
        assert body["fire_at"] == want[body["job_id"]]

    np.server.set_faults(error_rate=0.0)
    res = np.run("plan", "--now", NOW_TS, "--detailed-exitcode")
    assert res.exit_code == 0, res.stdout + res.stderr


@pytest.mark.timeout(120)
def test_wrong_token_fails_clearly_and_never_leaks(
    np: NasProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    np.server.echo_token_in_errors = (
        True  # a NAS that echoes the header back must not make us leak it
    )
    np.write_jobs(jobs())
    wrong = "wr0ng-t0ken-" + "q" * 24
    monkeypatch.setenv("CRONPLAN_NAS_TOKEN", wrong)
    outputs = []
    for args in (
        ("plan", "--now", NOW_TS),
        ("plan", "--now", NOW_TS, "--out", "plan.json"),
        ("apply", "--auto-approve", "--now", NOW_TS),
        ("-v", "apply", "--auto-approve", "--now", NOW_TS),
    ):
        res = np.run(*args)
        assert res.exit_code == 1, (args, res.stdout, res.stderr)
        assert "NAS rejected the token (401): check CRONPLAN_NAS_TOKEN" in res.stderr
        assert "Traceback" not in res.stderr
        outputs += [res.stdout, res.stderr]
    for text in outputs:
        assert wrong not in text and np.server.token not in text
    _assert_absent_from_files(np.root, [wrong, np.server.token])
    assert np.server.count("unauthorized") >= 4
    assert np.server.count("POST /api/agent-cron/provision") == 0


@pytest.mark.timeout(120)
def test_token_never_in_plan_files_or_state(np: NasProject) -> None:
    np.write_jobs(jobs())
    res = np.run("plan", "--now", NOW_TS, "--out", "plan.json")
    assert res.exit_code in (0, 2), res.stderr
    res = np.run("apply", "plan.json", "--now", NOW_TS)
    assert res.exit_code == 0, res.stderr
    res = np.run("-v", "status")
    assert np.server.token not in res.stdout + res.stderr
    _assert_absent_from_files(np.root, [np.server.token])


@pytest.mark.timeout(60)
def test_missing_token_names_the_variable(np: NasProject, monkeypatch: pytest.MonkeyPatch) -> None:
    np.write_jobs(jobs())
    monkeypatch.delenv("CRONPLAN_NAS_TOKEN")
    res = np.run("plan", "--now", NOW_TS)
    assert res.exit_code == 1
    assert "CRONPLAN_NAS_TOKEN is not set" in res.stderr
    res = np.run("providers")
    assert res.exit_code == 0
    assert "CRONPLAN_NAS_TOKEN is not set" in res.stdout
    assert np.server.count("GET /api/agent-cron/list") == 0


@pytest.mark.timeout(60)
def test_providers_lists_nas_as_available(np: NasProject) -> None:
    res = np.run("providers", "--format", "json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    entries = doc["providers"] if isinstance(doc, dict) else doc
    nas = next(e for e in entries if e["name"] == "nas")
    assert nas["available"] is True, nas
    assert np.server.token not in res.stdout


def _assert_absent_from_files(root: Path, secrets: list[str]) -> None:
    checked = 0
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            checked += 1
            for secret in secrets:
                assert secret.encode() not in data, f"{secret[:4]}... found in {path}"
    assert checked >= 2  # at least cronplan.yaml and jobs.json were looked at
