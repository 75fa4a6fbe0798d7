"""What keeps a cold `cronplan fire` lean (docs/performance.md, "Cold fire"), and that it changes no outcome:

- the validated config cached by the digest of its bytes: a hit skips the YAML parser and the schema
  validator; any change to the file misses, so a changed or invalid config is read and refused exactly as
  without the cache;
- the one-shot process leaves its SQLite connections to its exit (no close-time checkpoint): every run it
  recorded is in the ledger, readable by any other process, and the next fire goes on from it.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cronplan.documents.config import CACHE_FILE, load_config
from cronplan.timefmt import format_ts
from tests.fixtures_core import Project
from tests.fixtures_serve import append_job, read_runs

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)
NOW = format_ts(T0)
EARLY = format_ts(T0 - timedelta(seconds=30))

RICH_CONFIG = """\
jobs: jobs.json
provider: local
timezone: Europe/Berlin
callback_url: https://cron.example.com/hook
runner: [python3, run.py]
notify: {url_env: MY_HOOK}
serve: {status_token_env: MY_STATUS_TOKEN}
retention: {runs_per_job: 10, max_age_days: 2.5}
job_env: clean
providers:
  nas: {base_url: "http://127.0.0.1:9", token_env: NAS_TOKEN}
"""


def cold(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cronplan", "--config", str(project.config), *args],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _load_in_fresh_process(config: Path) -> dict[str, object]:
    """load_config(cached=True) in a new interpreter: the Config's repr and which parsers it imported."""
    code = (
        "import sys, json\n"
        "from cronplan.documents.config import load_config\n"
        f"c = load_config({str(config)!r}, {{}}, cached=True)\n"
        "print(json.dumps({'config': repr(c), 'yaml': 'yaml' in sys.modules,"
        " 'jsonschema_rs': 'jsonschema_rs' in sys.modules}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    loaded: dict[str, object] = json.loads(out.stdout)
    return loaded


def test_cached_config_is_the_config_and_skips_the_parsers(project: Project) -> None:
    project.write_config(RICH_CONFIG)
    full = load_config(str(project.config), {})
    assert not (project.root / CACHE_FILE).exists()  # only the cold fire asks for the cache

    miss = _load_in_fresh_process(project.config)
    assert (project.root / CACHE_FILE).is_file()
    hit = _load_in_fresh_process(project.config)
    assert miss["config"] == hit["config"] == repr(full)
    assert miss["yaml"] and miss["jsonschema_rs"]
    assert not hit["yaml"] and not hit["jsonschema_rs"]
    # In process too: the hit builds an equal Config (paths resolved against the config's directory).
    assert load_config(str(project.config), {}, cached=True) == full


def test_a_changed_or_invalid_config_is_read_and_refused_as_without_the_cache(
    project: Project,
) -> None:
    log = project.root / "runs.log"
    project.write_jobs([append_job("ok", log)])
    project.apply(EARLY)
    first = cold(project, "fire", "--now", NOW, "--job-id", "ok", "--fire-at", NOW)
    assert first.returncode == 0, first.stderr
    assert (project.root / CACHE_FILE).is_file()

    # An invalid edit: refused with the very message of a fire that never had a cache.
    project.write_config("jobs: jobs.json\nprovider: local\ntimezone: Mars/Olympus\n")
    later = format_ts(T0 + timedelta(minutes=1))
    with_cache = cold(project, "fire", "--now", later, "--job-id", "ok", "--fire-at", later)
    (project.root / CACHE_FILE).unlink()
    without = cold(project, "fire", "--now", later, "--job-id", "ok", "--fire-at", later)
    assert with_cache.returncode == without.returncode == 1
    assert with_cache.stderr == without.stderr
    assert "Mars/Olympus" in with_cache.stderr and "Traceback" not in with_cache.stderr
    assert not (project.root / CACHE_FILE).exists()  # an invalid config is never cached

    # A valid edit is read: another ledger, where the job was never applied.
    project.write_config("jobs: jobs.json\nprovider: local\ntimezone: UTC\n")
    assert (
        cold(project, "fire", "--now", later, "--job-id", "ok", "--fire-at", later).returncode == 0
    )
    project.write_config(
        "jobs: jobs.json\nprovider: local\ntimezone: UTC\nstate: sqlite:///other/state.db\n"
    )
    elsewhere = format_ts(T0 + timedelta(minutes=2))
    moved = cold(project, "fire", "--now", elsewhere, "--job-id", "ok", "--fire-at", elsewhere)
    assert moved.returncode == 0 and "is not applied" in moved.stderr, moved.stderr
    assert len(read_runs(log)) == 2


def test_a_foreign_or_broken_cache_entry_is_ignored(project: Project) -> None:
    log = project.root / "runs.log"
    project.write_jobs([append_job("ok", log)])
    project.apply(EARLY)
    cache = project.root / CACHE_FILE
    # An entry for other bytes (its key does not match) must not stand in for this config.
    cache.write_text(json.dumps({"key": "0" * 64, "doc": {"state": "sqlite:///other/state.db"}}))
    out = cold(project, "fire", "--now", NOW, "--job-id", "ok", "--fire-at", NOW)
    assert out.returncode == 0 and ": succeeded in" in out.stderr, out.stderr
    assert json.loads(cache.read_text())["doc"] == {
        "jobs": "jobs.json",
        "provider": "local",
        "timezone": "UTC",
    }
    cache.write_bytes(b"\x00not json")
    later = format_ts(T0 + timedelta(minutes=1))
    out = cold(project, "fire", "--now", later, "--job-id", "ok", "--fire-at", later)
    assert out.returncode == 0 and ": succeeded in" in out.stderr, out.stderr
    assert len(read_runs(log)) == 2


def test_fires_left_to_exit_keep_every_record(project: Project) -> None:
    """No close-time checkpoint: each run and re-arm is in the ledger for every other reader."""
    log = project.root / "runs.log"
    project.write_jobs([append_job("ok", log)])
    project.apply(EARLY)
    fires = [T0 + timedelta(minutes=i) for i in range(4)]
    for at in fires:
        ts = format_ts(at)
        out = cold(project, "fire", "--now", ts, "--job-id", "ok", "--fire-at", ts)
        assert out.returncode == 0 and "next arm: " in out.stderr, out.stderr
    state = project.root / ".cronplan" / "state.db"
    assert state.with_name("state.db-wal").exists()  # left for the next process, not checkpointed
    conn = sqlite3.connect(state)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        statuses = conn.execute(
            "SELECT status FROM runs WHERE job_id = 'ok' ORDER BY fire_at"
        ).fetchall()
    finally:
        conn.close()
    assert statuses == [("succeeded",)] * len(fires)
    assert len(read_runs(log)) == len(fires)
    # The full CLI, in another process, reads the same ledger and the arm the last fire made.
    plan = project.run("plan", "--now", format_ts(fires[-1] + timedelta(seconds=1)))
    assert plan.exit_code == 0, plan.stdout + plan.stderr
    assert plan.stdout.startswith("No changes."), plan.stdout
