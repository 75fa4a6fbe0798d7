"""How validate, plan and apply (local provider) scale with the number of jobs: 10k, 100k and, optionally, 1M.

    python benchmarks/scale.py [--max N] [--jobs N ...] [--json FILE]

Each step runs end to end in a fresh process (`cronplan ...` on a project from benchmarks/jobsgen.py) and
prints its wall and CPU seconds and its peak RSS (`ru_maxrss` of that process alone, via `os.wait4`),
next to a fresh process doing a plain `json.load` of the same file. The last column compares a size with
the one before it (10x the jobs should cost about 10x the time; target at 1M: <= 11x the 100k figure).
Sizes above ``--max`` (default 100,000) are skipped: 1M jobs take minutes and several GB of disk cache.
Peak RSS target for plan at 1M: <= 2 GB. ``--json FILE`` also writes the validate, plan and apply rows for
``benchmarks/plot.py`` (``./scripts/bench --plot``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import NOW, Run, cronplan_run, file_mb, json_load, write_project

SIZES = [10_000, 100_000, 1_000_000]
STEPS = ["json.load", "validate", "first plan (json)", "apply", "plan vs arms"]


def measure(n: int) -> dict[str, Run]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        jobs = write_project(root, n)
        print(f"  {n} jobs: {file_mb(jobs):.1f} MB", flush=True)
        out = {"json.load": json_load(jobs)}
        out["validate"] = cronplan_run(root, "validate")
        out["first plan (json)"] = cronplan_run(root, "plan", "--now", NOW, "--format", "json")
        out["apply"] = cronplan_run(root, "-q", "apply", "--auto-approve", "--now", NOW)
        out["plan vs arms"] = cronplan_run(root, "plan", "--now", NOW, "--detailed-exitcode")
        assert out["plan vs arms"].code == 0, "apply did not converge"
        return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--max", type=int, default=100_000, help="largest size to run (1000000 for 1M)")
    ap.add_argument("--jobs", type=int, action="append", help="run these sizes instead")
    ap.add_argument(
        "--json", type=Path, default=None, help="also write the figures here, for plot.py"
    )
    args = ap.parse_args(argv)
    sizes = sorted(args.jobs) if args.jobs else [n for n in SIZES if n <= args.max]
    results: dict[int, dict[str, Run]] = {}
    for n in sizes:
        results[n] = measure(n)
    print(
        f"{'step':<19} {'jobs':>9} {'wall s':>8} {'cpu s':>8} {'peak MB':>8} {'x json':>7} {'x prev':>7}"
    )
    prev: int | None = None
    for n in sizes:
        base = results[n]["json.load"]
        for step in STEPS:
            run = results[n][step]
            growth = "" if prev is None else f"{run.cpu / results[prev][step].cpu:.1f}x"
            print(
                f"{step:<19} {n:>9} {run.wall:>8.2f} {run.cpu:>8.2f} {run.rss_mb:>8.0f}"
                f" {run.cpu / base.cpu:>6.1f}x {growth:>7}"
            )
        prev = n
    if args.json is not None:
        plotted = {"validate": "validate", "first plan (json)": "plan", "apply": "apply"}
        rows = [
            {
                "command": name,
                "jobs": n,
                "seconds": results[n][step].cpu,
                "peak_mb": results[n][step].rss_mb,
            }
            for n in sizes
            for step, name in plotted.items()
        ]
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
