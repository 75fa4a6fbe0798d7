"""Benchmark: `cronplan apply` of 10,000 arms to the local provider. Target: under 10 s on this machine.

The same run also times a plain `json.load` of the jobs file, as a figure of how fast this machine is now.

    python benchmarks/apply_local.py [N]
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
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        jobs = write_project(root, n)
        baseline = best_of(lambda: json.loads(jobs.read_text()))
        t0 = time.perf_counter()
        cronplan(root, "-q", "apply", "--auto-approve", "--now", NOW)
        elapsed = time.perf_counter() - t0
        again = cronplan(root, "plan", "--now", NOW, "--detailed-exitcode")
        assert again.returncode == 0, "apply did not converge"
        print(f"arms applied:      {n}")
        print(f"cronplan apply:    {elapsed:.2f} s  (end to end, target < 10 s)")
        print(f"json.load:         {baseline:.4f} s  (machine speed reference)")
        print(f"per arm:           {1000 * elapsed / n:.3f} ms")


if __name__ == "__main__":
    main()
