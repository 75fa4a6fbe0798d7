"""The click-free fast path of `cronplan fire --job-id --fire-at`: same outcomes, codes and messages as the
full command, and everything else handed to the full CLI (docs/performance.md)."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone

from cronplan._fastfire import parse
from cronplan.timefmt import format_ts
from tests.fixtures_core import Project
from tests.fixtures_serve import append_job, read_runs

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)
NOW = format_ts(T0)
EARLY = format_ts(T0 - timedelta(seconds=30))


def cold(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cronplan", "--config", str(project.config), *args],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_parse_takes_only_the_plain_invocation() -> None:
    assert parse(["fire", "--job-id", "a", "--fire-at", "T"]) == {"--job-id": "a", "--fire-at": "T"}
    assert parse(
        ["--config=c.yaml", "-q", "fire", "--fire-at=T", "--job-id", "a", "--no-replan"]
    ) == {
        "--config": "c.yaml",
        "-q": "",
        "--fire-at": "T",
        "--job-id": "a",
        "--no-replan": "",
    }
    for argv in (
        ["fire", "--job-id", "a"],  # half of the pair: the full CLI's usage error
        ["-v", "fire", "--job-id", "a", "--fire-at", "T"],  # -v shows output tails and tracebacks
        ["fire", "--job-id", "a", "--fire-at", "T", "--help"],
        ["fire", "--job-id", "a", "--job-id", "b", "--fire-at", "T"],
        ["fire", "--request", "-"],
        ["fire", "--overdue"],
        ["plan"],
        ["fire", "--job-id", "a", "--fire-at"],
    ):
        assert parse(argv) is None, argv


def test_fast_path_outcomes_match_the_command(project: Project) -> None:
    log = project.root / "runs.log"
    project.write_jobs(
        [
            append_job("ok", log),
            {
                "id": "bad",
                "schedule": {"kind": "interval", "seconds": 60},
                "command": [sys.executable, "-c", "import sys; sys.exit(7)"],
            },
        ]
    )
    project.apply(EARLY)
    t = format_ts(T0)
    first = cold(project, "fire", "--now", NOW, "--job-id", "ok", "--fire-at", t)
    assert first.returncode == 0 and ": succeeded in" in first.stderr, first.stderr
    assert first.stdout == ""
    again = cold(project, "fire", "--now", NOW, "--job-id", "ok", "--fire-at", t)
    assert again.returncode == 0 and "duplicate fire ignored" in again.stderr
    assert len(read_runs(log)) == 1
    quiet = cold(project, "-q", "fire", "--now", NOW, "--job-id", "ok", "--fire-at", t)
    assert quiet.returncode == 0 and quiet.stderr == ""
    failed = cold(project, "fire", "--now", NOW, "--job-id", "bad", "--fire-at", t)
    assert failed.returncode == 1 and "exited with status 7" in failed.stderr
    assert failed.stderr.startswith("Error: ") and "Traceback" not in failed.stderr
    # The same failing fire through the full CLI (in process) says the same thing.
    later = format_ts(T0 + timedelta(seconds=60))
    full = project.run("fire", "--now", later, "--job-id", "bad", "--fire-at", later)
    fast = cold(project, "fire", "--now", later, "--job-id", "bad", "--fire-at", later)
    assert full.exit_code == 1 and fast.returncode == 0
    assert "duplicate fire ignored" in fast.stderr


def test_bad_values_and_configs_get_the_commands_errors(project: Project) -> None:
    project.write_jobs([append_job("ok", project.root / "runs.log")])
    project.apply(EARLY)
    bad_ts = cold(project, "fire", "--job-id", "ok", "--fire-at", "yesterday")
    assert bad_ts.returncode == 64 and "--fire-at" in bad_ts.stderr
    project.config.write_text("jobs: jobs.json\nprovider: [\n")
    broken = cold(project, "fire", "--now", NOW, "--job-id", "ok", "--fire-at", format_ts(T0))
    assert broken.returncode == 1, broken.stderr
    assert "cronplan.yaml" in broken.stderr and "Traceback" not in broken.stderr
