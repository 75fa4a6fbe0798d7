"""Benchmark: `cronplan apply` of realistic jobs (benchmarks/jobsgen.py) to the local provider (SQLite arms,
SQLite ledger), end to end in a fresh process, against a plain `json.load` of the same jobs file measured in
the same run. Target: <= 15x (CPU time; wall time and peak RSS printed too).

    python benchmarks/apply_local.py [--jobs N]

After the apply, a plan must show no changes (the apply converged).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import NOW, cronplan_run, file_mb, json_load_inproc, write_project

TARGET = 15.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--jobs", type=int, default=100_000)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        jobs = write_project(root, args.jobs)
        size = file_mb(jobs)
        apply = cronplan_run(root, "-q", "apply", "--auto-approve", "--now", NOW)
        again = cronplan_run(root, "plan", "--now", NOW, "--detailed-exitcode")
        assert again.code == 0, "apply did not converge"
        load_wall, load_cpu = json_load_inproc(jobs)
    ratio = apply.cpu / load_cpu
    print(f"jobs:              {args.jobs} ({size:.1f} MB)")
    print(f"json.load:         {load_wall:.3f} s wall, {load_cpu:.3f} s cpu")
    print(
        f"cronplan apply:    {apply.wall:.2f} s wall, {apply.cpu:.2f} s cpu, {apply.rss_mb:.0f} MB"
        f"  ratio {apply.wall / load_wall:.1f}x wall, {ratio:.1f}x cpu (target <= {TARGET:.0f}x)"
    )
    print(f"per job:           {1000 * apply.wall / args.jobs:.3f} ms wall")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
