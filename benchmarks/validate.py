"""How long `cronplan validate` takes on a 100,000-job file, against a plain json.load of that file.

Usage: python benchmarks/validate.py [--jobs N] [--repeat R]
Generates the file in a temp directory, times both in the same run (best of R), prints both and the
ratio; exits 1 when the ratio is above the budget (5x).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BUDGET = 5.0


def make_job(i: int) -> dict[str, Any]:
    """A realistic mix: cron with zones and seconds, intervals, one-shots, command/http/prompt jobs."""
    kind = i % 6
    job: dict[str, Any] = {"id": f"job-{i:06d}", "name": f"Job number {i}"}
    if kind == 0:
        job["schedule"] = {"kind": "cron", "expr": f"{i % 60} {i % 24} * * 1-5", "tz": "Europe/Berlin"}
        job["command"] = ["/usr/local/bin/report", "--id", str(i)]
        job["env"] = {"REPORT_MODE": "daily"}
    elif kind == 1:
        job["schedule"] = {"kind": "cron", "expr": f"30 {i % 60} */2 * * *", "display": "every 2h"}
        job["http"] = {"url": f"http://127.0.0.1:8080/hooks/{i}", "method": "POST",
                       "headers": {"content-type": "application/json"}, "body": {"job": i}}
    elif kind == 2:
        job["schedule"] = {"kind": "interval", "minutes": 5 + i % 55}
        job["prompt"] = f"Summarise the inbox and post the digest (run {i})."
        job["skills"] = ["email", "summarise"]
        job["deliver"] = "origin"
    elif kind == 3:
        job["schedule"] = {"kind": "interval", "seconds": 30, "start_at": "2026-01-01T00:00:00Z"}
        job["command"] = ["echo", "tick"]
    elif kind == 4:
        job["schedule"] = {"kind": "once", "run_at": f"2027-03-{1 + i % 28:02d}T09:00:00",
                           "tz": "America/New_York"}
        job["command"] = ["backup", "--full"]
        job["repeat"] = {"times": 1}
    else:
        job["schedule"] = {"kind": "cron", "expr": "0 9 * * *", "display": "0 9 * * *"}
        job["prompt"] = "Good morning briefing"
        job["enabled"] = i % 2 == 0
        job["state"] = "scheduled"
        job["catch_up"] = "skip"
        job["repeat"] = {"times": None, "completed": i % 7}
        job["next_run_at"] = "2026-11-27T09:00:00+00:00"
        job["last_run_at"] = None
        job["last_status"] = None
    return job


def best_of(repeat: int, fn: Any) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--jobs", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)

    from cronplan.jobsfile import load_jobs
    from cronplan.schemas import fast_validator

    fast_validator("jobs")  # compiling the schema is a one-off per process, not per file
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "jobs.json"
        doc = {"jobs": [make_job(i) for i in range(args.jobs)], "updated_at": "2026-11-26T12:00:00Z"}
        path.write_text(json.dumps(doc, indent=2))
        size_mb = path.stat().st_size / 1e6

        def plain() -> None:
            with path.open(encoding="utf-8") as fh:
                json.load(fh)

        def validate() -> None:
            jf = load_jobs(path, default_tz="UTC")
            assert len(jf.jobs) == args.jobs

        t_json = best_of(args.repeat, plain)
        t_validate = best_of(args.repeat, validate)
    ratio = t_validate / t_json
    print(f"file: {args.jobs} jobs, {size_mb:.1f} MB")
    print(f"json.load:        {t_json:.3f} s")
    print(f"cronplan validate: {t_validate:.3f} s")
    print(f"ratio:            {ratio:.2f}x (budget {BUDGET:.0f}x)")
    return 0 if ratio <= BUDGET else 1


if __name__ == "__main__":
    sys.exit(main())
