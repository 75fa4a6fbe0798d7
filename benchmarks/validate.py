"""How long `cronplan validate` takes on a 100,000-job file, against a plain json.load of that file.

The jobs come from benchmarks/jobsgen.py (seeded, realistic: mixed kinds, 20 zones, repeated schedules).

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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from jobsgen import CONFIG, generate_jobs

BUDGET = 5.0


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
        doc = generate_jobs(args.jobs)
        doc["updated_at"] = "2026-11-26T12:00:00Z"
        path.write_text(json.dumps(doc, indent=2))
        doc["jobs"][len(doc["jobs"]) * 3 // 4]["nmae"] = "typo"
        bad_path = Path(tmp) / "bad.json"
        bad_path.write_text(json.dumps(doc, indent=2))
        del doc  # time everything with the same (small) heap
        gc.collect()
        size_mb = path.stat().st_size / 1e6
        config = Path(tmp) / "cronplan.yaml"
        config.write_text(CONFIG)

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
