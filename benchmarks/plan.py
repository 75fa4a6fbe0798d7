"""Benchmark: `cronplan plan` of 100,000 jobs against 100,000 matching arms (local provider, SQLite ledger).

Target: within 10× a plain `json.load` of the same jobs file, measured in the same run.

    python benchmarks/plan.py [N] [REPEAT]

`plan` runs end to end in a fresh process, as CI runs it. Both wall-clock and CPU time are reported (best of
REPEAT, interleaved with the baseline): on a busy machine other processes inflate wall time unevenly, on an
idle one the two agree.
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cronplan, write_project

NOW = "2026-11-26T12:00:00Z"
TARGET = 10.0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        jobs = write_project(root, n)
        t0 = time.perf_counter()
        cronplan(root, "-q", "apply", "--auto-approve", "--parallelism", "16", "--now", NOW)
        setup = time.perf_counter() - t0

        load_wall = load_cpu = plan_wall = plan_cpu = float("inf")
        for _ in range(repeat):
            w, c = time.perf_counter(), time.process_time()
            with jobs.open() as f:
                json.load(f)
            load_wall = min(load_wall, time.perf_counter() - w)
            load_cpu = min(load_cpu, time.process_time() - c)

            w, c = time.perf_counter(), _children_cpu()
            proc = cronplan(root, "plan", "--now", NOW, "--detailed-exitcode")
            plan_wall = min(plan_wall, time.perf_counter() - w)
            plan_cpu = min(plan_cpu, _children_cpu() - c)
            assert proc.returncode == 0, "plan after apply should show no changes"

        print(f"jobs:              {n}  (best of {repeat})")
        print(f"apply (setup):     {setup:.2f} s")
        print(f"json.load:         {load_wall:.3f} s wall, {load_cpu:.3f} s cpu")
        print(f"cronplan plan:     {plan_wall:.3f} s wall, {plan_cpu:.3f} s cpu  (a fresh process)")
        print(
            f"ratio:             {plan_wall / load_wall:.1f}x wall, {plan_cpu / load_cpu:.1f}x cpu"
            f"  (target <= {TARGET:.0f}x)"
        )


if __name__ == "__main__":
    main()
