"""Benchmark: `cronplan plan` of realistic jobs (benchmarks/jobsgen.py), end to end in fresh processes.

Two figures, each against a plain `json.load` of the same jobs file measured in the same run:

- the first plan (no arms yet, `--format json`): target <= 8x;
- the plan against matching arms (after an apply to the local provider, SQLite ledger): target <= 6x.

    python benchmarks/plan.py [--jobs N] [--repeat R]

CPU time is the ratio that counts (other processes on a busy machine inflate wall time unevenly); both are
printed, with each run's peak RSS (`ru_maxrss` of that process alone).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import NOW, Run, cronplan_run, file_mb, json_load, json_load_inproc, write_project

FIRST_TARGET = 8.0
MATCHING_TARGET = 6.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--jobs", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        jobs = write_project(root, args.jobs)
        first: Run | None = None
        for _ in range(args.repeat):
            first = cronplan_run(root, "plan", "--now", NOW, "--format", "json").best(first)
        apply = cronplan_run(root, "-q", "apply", "--auto-approve", "--now", NOW)
        matching: Run | None = None
        for _ in range(args.repeat):
            run = cronplan_run(root, "plan", "--now", NOW, "--detailed-exitcode")
            assert run.code == 0, "plan after apply should show no changes"
            matching = run.best(matching)
        load_wall, load_cpu = json_load_inproc(jobs, args.repeat)
        load_rss = json_load(jobs).rss_mb
        size = file_mb(jobs)
    assert first is not None and matching is not None
    print(f"jobs:                 {args.jobs} ({size:.1f} MB), best of {args.repeat}")
    print(f"json.load:            {load_wall:.3f} s wall, {load_cpu:.3f} s cpu, {load_rss:.0f} MB")
    ok = True
    for label, run, target in (
        ("first plan (json)", first, FIRST_TARGET),
        ("plan vs arms", matching, MATCHING_TARGET),
    ):
        ratio = run.cpu / load_cpu
        ok = ok and ratio <= target
        print(
            f"{label + ':':<21} {run.wall:.3f} s wall, {run.cpu:.3f} s cpu, {run.rss_mb:.0f} MB"
            f"  ratio {run.wall / load_wall:.1f}x wall, {ratio:.1f}x cpu (target <= {target:.0f}x)"
        )
    print(f"apply (setup):        {apply.wall:.2f} s wall, {apply.cpu:.2f} s cpu")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
