"""How long `cronplan validate` takes on a 100,000-job file, against a plain json.load of that file.

Usage: python benchmarks/validate.py [--jobs N] [--repeat R]
Generates the file in a temp directory, times both in the same run (best of R, interleaved), prints
both (wall-clock and CPU) and the ratios; exits 1 when the CPU-time ratio is above the budget (5x).
"""

from __future__ import annotations

import argparse
import gc
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
        job["schedule"] = {
            "kind": "cron",
            "expr": f"{i % 60} {i % 24} * * 1-5",
            "tz": "Europe/Berlin",
        }
        job["command"] = ["/usr/local/bin/report", "--id", str(i)]
        job["env"] = {"REPORT_MODE": "daily"}
    elif kind == 1:
        job["schedule"] = {"kind": "cron", "expr": f"30 {i % 60} */2 * * *", "display": "every 2h"}
        job["http"] = {
            "url": f"http://127.0.0.1:8080/hooks/{i}",
            "method": "POST",
            "headers": {"content-type": "application/json"},
            "body": {"job": i},
        }
    elif kind == 2:
        job["schedule"] = {"kind": "interval", "minutes": 5 + i % 55}
        job["prompt"] = f"Summarise the inbox and post the digest (run {i})."
        job["skills"] = ["email", "summarise"]
        job["deliver"] = "origin"
    elif kind == 3:
        job["schedule"] = {"kind": "interval", "seconds": 30, "start_at": "2026-01-01T00:00:00Z"}
        job["command"] = ["echo", "tick"]
    elif kind == 4:
        job["schedule"] = {
            "kind": "once",
            "run_at": f"2027-03-{1 + i % 28:02d}T09:00:00",
            "tz": "America/New_York",
        }
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


def best_of(repeat: int, *fns: Any) -> tuple[list[float], list[float]]:
    """Best wall-clock and best CPU time of each function over ``repeat`` rounds, interleaved so that a
    change in machine load during the run affects both alike."""
    wall = [float("inf")] * len(fns)
    cpu = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall[i] = min(wall[i], time.perf_counter() - w0)
            cpu[i] = min(cpu[i], time.process_time() - c0)
    return wall, cpu


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--jobs", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)

    import contextlib
    import io

    from cronplan.cli.root import run
    from cronplan.documents.jobsfile import load_jobs
    from cronplan.documents.schemas import fast_validator

    fast_validator("jobs")  # compiling the schema is a one-off per process, not per file
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "jobs.json"
        doc = {
            "jobs": [make_job(i) for i in range(args.jobs)],
            "updated_at": "2026-11-26T12:00:00Z",
        }
        path.write_text(json.dumps(doc, indent=2))
        doc["jobs"][len(doc["jobs"]) * 3 // 4]["nmae"] = "typo"
        bad_path = Path(tmp) / "bad.json"
        bad_path.write_text(json.dumps(doc, indent=2))
        del doc  # time everything with the same (small) heap
        gc.collect()
        size_mb = path.stat().st_size / 1e6
        config = Path(tmp) / "cronplan.yaml"
        config.write_text("jobs: jobs.json\n")

        def plain() -> None:
            with path.open(encoding="utf-8") as fh:
                json.load(fh)

        def validate() -> None:
            """`cronplan validate`, in-process through the real CLI and its error handler."""
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                code = run(["--config", str(config), "validate"])
            assert code == 0 and f"{args.jobs} jobs valid" in out.getvalue(), out.getvalue()

        def build() -> None:
            """What plan/apply/fire pay: the same checks plus Job objects with specs and digests."""
            assert len(load_jobs(path).jobs) == args.jobs

        def invalid() -> None:
            """The error path: the detailed report and positions for one bad job among all."""
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                code = run(["--config", str(config), "validate", "-f", str(bad_path)])
            assert code == 1 and "unknown field 'nmae'" in err.getvalue(), err.getvalue()

        (w_json, w_validate, w_build), (c_json, c_validate, c_build) = best_of(
            args.repeat, plain, validate, build
        )
        (w_invalid,), (c_invalid,) = best_of(1, invalid)
    wall_ratio, cpu_ratio = w_validate / w_json, c_validate / c_json
    print(f"file: {args.jobs} jobs, {size_mb:.1f} MB, best of {args.repeat}")
    print(f"json.load:          {w_json:.3f} s wall, {c_json:.3f} s cpu")
    print(f"cronplan validate:  {w_validate:.3f} s wall, {c_validate:.3f} s cpu")
    print(
        f"ratio:              {wall_ratio:.2f}x wall, {cpu_ratio:.2f}x cpu (budget {BUDGET:.0f}x)"
    )
    print(
        f"load_jobs (build):  {w_build:.3f} s wall, {c_build:.3f} s cpu "
        f"({w_build / w_json:.2f}x wall, {c_build / c_json:.2f}x cpu; plan/fire path, not budgeted)"
    )
    print(
        f"one invalid job:    {w_invalid:.3f} s wall, {c_invalid:.3f} s cpu "
        f"({w_invalid / w_json:.2f}x wall, {c_invalid / c_json:.2f}x cpu; error path, not budgeted)"
    )
    # CPU time is the fair measure on a busy machine (other processes inflate wall time unevenly);
    # on an idle one the two agree.
    return 0 if cpu_ratio <= BUDGET else 1


if __name__ == "__main__":
    sys.exit(main())
