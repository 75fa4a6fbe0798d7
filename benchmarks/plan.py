"""Benchmark: `cronplan plan` of 100,000 jobs against 100,000 matching arms (local provider, SQLite ledger).

Target: within 10× a plain `json.load` of the same jobs file, measured in the same run.

    python benchmarks/plan.py [N]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import best_of, cronplan, write_project

NOW = "2026-11-26T12:00:00Z"


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        jobs = write_project(root, n)
        t0 = time.perf_counter()
        cronplan(root, "-q", "apply", "--auto-approve", "--parallelism", "16", "--now", NOW)
        setup = time.perf_counter() - t0

        def load() -> object:
            with jobs.open() as f:
                return json.load(f)

        baseline = best_of(load)
        plan_time = best_of(lambda: cronplan(root, "plan", "--now", NOW, "--detailed-exitcode"))
        proc = cronplan(root, "plan", "--now", NOW, "--detailed-exitcode")
        assert proc.returncode == 0, "plan after apply should show no changes"
        print(f"jobs:              {n}")
        print(f"apply (setup):     {setup:.2f} s")
        print(f"json.load:         {baseline:.3f} s")
        print(f"cronplan plan:     {plan_time:.3f} s  (end to end, a fresh process)")
        print(f"ratio:             {plan_time / baseline:.1f}x json.load  (target <= 10x)")


if __name__ == "__main__":
    main()
