"""`cronplan fire` as real processes: exactly once under concurrency, exit codes, --request, the trap."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from cronplan.timefmt import format_ts
from tests.fixtures_core import Project
from tests.fixtures_serve import append_job, fire_body, read_runs, sign

# Every fire/plan/apply here pins the clock: nothing depends on today's date (docs/planning.md, "The clock").
T0 = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)
NOW = format_ts(T0)
EARLY = format_ts(T0 - timedelta(seconds=30))  # apply's clock: fires run the job as applied


def minute_floor(dt: datetime | None = None) -> datetime:
    dt = dt or T0
    return dt.replace(second=0, microsecond=0)


def ledger_runs(project: Project, job_id: str) -> list[Any]:
    from cronplan.ledger.sqlite import SqliteLedger

    led = SqliteLedger(project.root / ".cronplan" / "state.db")
    try:
        return led.runs(job_id)
    finally:
        led.close()


@pytest.mark.slow
def test_twenty_concurrent_fire_processes_run_once(project: Project) -> None:
    log = project.root / "runs.log"
    project.write_jobs([append_job("c", log)])
    project.apply(EARLY)
    fire_at = format_ts(minute_floor())
    argv = [
        sys.executable,
        "-m",
        "cronplan",
        "--config",
        str(project.config),
        "fire",
        "--now",
        NOW,
        "--job-id",
        "c",
        "--fire-at",
        fire_at,
    ]
    procs = [
        subprocess.Popen(
            argv, cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(20)
    ]
    results = []
    for p in procs:
        _out, err = p.communicate(timeout=120)
        results.append((p.returncode, err))
    assert [rc for rc, _ in results] == [0] * 20, results
    assert len(read_runs(log)) == 1
    assert sum(": succeeded in" in err for _, err in results) == 1
    assert sum("duplicate fire ignored" in err for _, err in results) == 19
    runs = ledger_runs(project, "c")
    assert [(r.status, format_ts(r.fire_at)) for r in runs] == [("succeeded", fire_at)]


def test_exit_codes_success_duplicate_failure(project: Project) -> None:
    log = project.root / "runs.log"
    project.write_jobs(
        [
            append_job("ok", log),
            {
                "id": "bad",
                "schedule": {"kind": "interval", "seconds": 60},
                "command": [sys.executable, "-c", "import sys; print('boom'); sys.exit(7)"],
            },
        ]
    )
    project.apply(EARLY)
    t = format_ts(minute_floor())
    res = project.run("fire", "--now", NOW, "--job-id", "ok", "--fire-at", t)
    assert res.exit_code == 0, res.stderr
    assert "succeeded" in res.stderr and res.stdout == ""
    res = project.run("fire", "--now", NOW, "--job-id", "ok", "--fire-at", t)
    assert res.exit_code == 0 and "duplicate fire ignored" in res.stderr
    assert len(read_runs(log)) == 1
    res = project.run("-v", "fire", "--now", NOW, "--job-id", "bad", "--fire-at", t)
    assert res.exit_code == 1
    assert "exited with status 7" in res.stderr
    assert "boom" in res.stderr  # -v shows the output tail
    assert "Traceback" not in res.stderr
    [run] = ledger_runs(project, "bad")
    assert run.status == "failed" and run.exit_code == 7 and "boom" in run.output_tail


@pytest.mark.parametrize(
    ("job", "fire_at_offset", "needle"),
    [
        ({"state": "paused"}, 0, "job is paused"),
        ({"enabled": False}, 0, "job is disabled"),
        (None, 0, "job 's' is not applied"),
        ({}, 30, "not an occurrence"),
    ],
)
def test_stale_fires_exit_zero_and_do_not_run(
    project: Project, job: dict[str, Any] | None, fire_at_offset: int, needle: str
) -> None:
    log = project.root / "runs.log"
    if job:  # applied active first, then applied paused/disabled (the cancel records it)
        project.write_jobs([append_job("s", log)])
        project.apply(EARLY)
    project.write_jobs(
        [append_job("s", log, **job)] if job is not None else [append_job("other", log)]
    )
    project.apply(EARLY)
    t = format_ts(minute_floor() + timedelta(seconds=fire_at_offset))
    res = project.run("fire", "--now", NOW, "--job-id", "s", "--fire-at", t)
    assert res.exit_code == 0, res.stderr
    assert "stale fire ignored" in res.stderr and needle in res.stderr
    assert read_runs(log) == []


def test_usage_errors(project: Project) -> None:
    assert project.run("fire").exit_code == 64
    assert project.run("fire", "--job-id", "x").exit_code == 64
    assert project.run("fire", "--job-id", "x", "--fire-at", "yesterday").exit_code == 64
    assert project.run("fire", "--overdue", "--request", "-").exit_code == 64


def test_request_with_local_provider_is_refused_before_anything_runs(project: Project) -> None:
    log = project.root / "runs.log"
    project.write_jobs([append_job("c", log)])
    body = fire_body("c", format_ts(minute_floor()))
    raw = b"POST /api/cron/fire HTTP/1.1\r\nContent-Type: application/json\r\n\r\n" + body
    req = project.root / "req.http"
    req.write_bytes(raw)
    res = project.run("fire", "--now", NOW, "--request", str(req))
    assert res.exit_code == 1
    assert "local provider sends no HTTP callbacks" in res.stderr
    assert read_runs(log) == []
    assert not (project.root / ".cronplan" / "state.db").exists()  # nothing touched the ledger


def test_request_verified_by_provider_plugin(
    project: Project, hmac_provider_env: dict[str, str]
) -> None:
    log = project.root / "runs.log"
    project.write_config("jobs: jobs.json\nprovider: testhmac\ncallback_url: http://127.0.0.1:1\n")
    project.write_jobs([append_job("c", log)])
    project.apply(EARLY, env=hmac_provider_env)
    body = fire_body("c", format_ts(minute_floor()))
    head = "POST /api/cron/fire HTTP/1.1\r\nContent-Type: application/json\r\n"
    good = (
        head + f"X-Test-Signature: {sign(body)}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    bad = (head + f"X-Test-Signature: {sign(body, 'wrong')}\r\n\r\n").encode() + body
    res = project.run(
        "fire", "--now", NOW, "--request", "-", input=bad.decode(), env=hmac_provider_env
    )
    assert res.exit_code == 1 and "bad signature" in res.stderr
    assert read_runs(log) == []
    res = project.run(
        "fire", "--now", NOW, "--request", "-", input=good.decode(), env=hmac_provider_env
    )
    assert res.exit_code == 0, res.stderr
    assert len(read_runs(log)) == 1
    res = project.run(
        "fire", "--now", NOW, "--request", "-", input=good.decode(), env=hmac_provider_env
    )
    assert res.exit_code == 0 and "duplicate" in res.stderr
    assert len(read_runs(log)) == 1
    malformed_body = b'{"job_id": "c"}'
    malformed = (
        head + f"X-Test-Signature: {sign(malformed_body)}\r\n\r\n"
    ).encode() + malformed_body
    res = project.run(
        "fire", "--now", NOW, "--request", "-", input=malformed.decode(), env=hmac_provider_env
    )
    assert res.exit_code == 1 and "malformed" in res.stderr


def test_direct_run_trap_plan_shows_no_changes(project: Project) -> None:
    """ANCHORS: a direct run took the claim and left a stale remote arm. Here the arm moves on."""
    log = project.root / "runs.log"
    early = format_ts(T0 - timedelta(minutes=30))  # the hourly arm is then half an hour ahead
    project.write_jobs([append_job("m", log, schedule={"kind": "interval", "seconds": 3600})])
    res = project.run("apply", "--now", early, "--auto-approve")
    assert res.exit_code == 0, res.stderr
    from cronplan.local.provider import LocalProvider
    from cronplan.provider import ProviderSettings

    local = LocalProvider(ProviderSettings("local", base_dir=project.root))
    try:
        [arm] = local.list_arms()
        armed = arm.fire_at
        assert armed == T0
        # Run the armed occurrence by hand, ahead of its time.
        res = project.run("fire", "--now", early, "--job-id", "m", "--fire-at", format_ts(armed))
        assert res.exit_code == 0, res.stderr
        assert len(read_runs(log)) == 1
        [arm] = local.list_arms()
        assert arm.fire_at == armed + timedelta(hours=1)
    finally:
        local.close()
    res = project.run("plan", "--now", early, "--detailed-exitcode")
    assert res.exit_code == 0, res.stdout + res.stderr
    # The provider's own fire of that occurrence is a duplicate.
    res = project.run("fire", "--now", early, "--job-id", "m", "--fire-at", format_ts(armed))
    assert res.exit_code == 0 and "duplicate" in res.stderr
    assert len(read_runs(log)) == 1


def test_overdue_backstop_and_no_replan(project: Project) -> None:
    log = project.root / "runs.log"
    project.write_jobs([append_job("o", log)])
    base = minute_floor()
    past = base - timedelta(minutes=10)
    # Arm the job 10 minutes in the past by pinning the clock, then let the clock move on.
    res = project.run("apply", "--auto-approve", "--now", format_ts(past - timedelta(seconds=5)))
    assert res.exit_code == 0, res.stderr
    res = project.run("fire", "--now", NOW, "--overdue")
    assert res.exit_code == 0, res.stderr
    assert len(read_runs(log)) == 1 and read_runs(log)[0][2] == format_ts(past)
    res = project.run("fire", "--now", NOW, "--job-id", "o", "--fire-at", format_ts(past))
    assert res.exit_code == 0 and "duplicate" in res.stderr
    # --no-replan: the run happens, the arm is left where it was.
    t = format_ts(base + timedelta(minutes=5))
    res = project.run("fire", "--now", NOW, "--job-id", "o", "--fire-at", t, "--no-replan")
    assert res.exit_code == 0, res.stderr
    assert "next arm" not in res.stderr
    assert len(read_runs(log)) == 2


def test_shell_metacharacters_in_job_fields_are_inert(project: Project, tmp_path: Path) -> None:
    marker = project.root / "pwned"
    project.write_jobs(
        [
            {
                "id": "inj",
                "name": f"$(touch {marker})",
                "schedule": {"kind": "interval", "seconds": 60},
                "command": [
                    sys.executable,
                    "-c",
                    "import sys; print(sys.argv[1:])",
                    f"; touch {marker}",
                    f"`touch {marker}`",
                ],
                "env": {"EVIL": f"$(touch {marker})"},
            }
        ]
    )
    project.apply(EARLY)
    res = project.run(
        "-v", "fire", "--now", NOW, "--job-id", "inj", "--fire-at", format_ts(minute_floor())
    )
    assert res.exit_code == 0, res.stderr
    assert f"'; touch {marker}'" in res.stderr
    time.sleep(0.2)
    assert not marker.exists()
    assert os.listdir(project.root).count("pwned") == 0


def test_cold_fire_path_stays_lean(project: Project) -> None:
    """A scale-to-zero callback pays for every import: none of the heavy optional ones on this path.

    The fire reads the job as applied from the ledger: jobs.json is not even there.
    """
    log = project.root / "runs.log"
    project.write_jobs([append_job("lean", log)])
    project.apply(EARLY)
    (project.root / "jobs.json").unlink()
    res = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "cronplan",
            "--config",
            str(project.config),
            "fire",
            "--now",
            NOW,
            "--job-id",
            "lean",
            "--fire-at",
            format_ts(minute_floor()),
        ],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert len(read_runs(log)) == 1
    imported = {
        line.rsplit("|", 1)[-1].strip()
        for line in res.stderr.splitlines()
        if line.startswith("import time:")
    }
    # click too: a plain --job-id/--fire-at fire takes the fast path (cronplan/_fastfire.py).
    heavy = {"deepdiff", "jsonschema", "httpx", "uvicorn", "anyio", "h11", "click"}
    assert not (imported & heavy), sorted(imported & heavy)


def test_in_process_cli_request_from_stdin_and_stale(project: Project) -> None:
    log = project.root / "runs.log"
    project.write_jobs([append_job("c", log)])
    project.apply(EARLY)
    project.write_jobs([append_job("c", log, state="paused")])
    project.apply(EARLY)
    t = format_ts(minute_floor())
    res = project.cli("fire", "--now", NOW, "--job-id", "c", "--fire-at", t)
    assert res.exit_code == 0 and "job is paused" in res.stderr
    raw = "POST /api/cron/fire HTTP/1.1\r\n\r\n" + fire_body("c", t).decode()
    res = project.cli("fire", "--now", NOW, "--request", "-", input=raw)
    assert res.exit_code == 1 and "local provider sends no HTTP callbacks" in res.stderr
    assert read_runs(log) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.slow
def test_stopping_fire_mid_run_records_and_kills_the_job(project: Project, sig: int) -> None:
    pidfile = project.root / "job.pid"
    script = f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    project.write_jobs(
        [
            {
                "id": "long",
                "schedule": {"kind": "interval", "seconds": 60},
                "command": [sys.executable, "-c", script],
            }
        ]
    )
    project.apply(EARLY)
    t = minute_floor()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cronplan",
            "--config",
            str(project.config),
            "fire",
            "--now",
            NOW,
            "--job-id",
            "long",
            "--fire-at",
            format_ts(t),
        ],
        cwd=project.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not pidfile.exists():
            assert time.monotonic() < deadline and proc.poll() is None, "the job never started"
            time.sleep(0.05)
        time.sleep(0.2)
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    [run] = ledger_runs(project, "long")
    assert run.status == "failed" and run.finished_at is not None
    assert "interrupted" in (run.error or "")
    from tests.test_runner import _alive

    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid), "the job outlived the interrupted fire"
