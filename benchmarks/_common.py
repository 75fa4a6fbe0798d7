"""Shared helpers for the benchmarks: generated job files, timing, a throwaway project dir."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

EXPRS = ["0 9 * * *", "*/15 * * * *", "30 2 * * 1-5", "0 0 1 * *", "15 */2 * * *", "0 9 * * 1#2"]
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"]


def generate_jobs(n: int) -> dict[str, object]:
    jobs = []
    for i in range(n):
        if i % 3 == 2:
            schedule: dict[str, object] = {"kind": "interval", "minutes": 5 + i % 55}
        else:
            schedule = {"kind": "cron", "expr": EXPRS[i % len(EXPRS)], "tz": ZONES[i % len(ZONES)]}
        jobs.append(
            {
                "id": f"job-{i:06d}",
                "name": f"Generated job {i}",
                "schedule": schedule,
                "command": ["true"],
            }
        )
    return {"jobs": jobs}


def write_project(root: Path, n: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    jobs = root / "jobs.json"
    jobs.write_text(json.dumps(generate_jobs(n)))
    (root / "cronplan.yaml").write_text("jobs: jobs.json\nprovider: local\ntimezone: UTC\n")
    return jobs


def best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def median_of(fn: Callable[[], object], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def cronplan(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, CRONPLAN_DISABLE_PLUGINS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "cronplan", "--config", str(root / "cronplan.yaml"), *args],
        cwd=root,
        capture_output=True,
        text=True,
        env=env,
    )
    if check and proc.returncode not in (0, 2):
        raise SystemExit(
            f"cronplan {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}"
        )
    return proc
