"""Benchmark: apply of 2,000 arms to the NAS test server at 20 ms simulated latency, --parallelism 32.

The ideal is 2,000 x 0.020 s / 32 = 1.25 s (latency alone, perfectly overlapped); the target is a measured
time within 1.3x of it. The NAS test server (tests/nas_server.py) runs in its own process so its work does
not share this process's GIL. Three figures, all from the same run:

- apply:      ``apply_plan`` (the applier: provider calls in a thread pool + ledger records) — the
              headline figure, compared with the ideal;
- provider:   the 2,000 ``arm`` calls alone through a pool of 32 threads (no ledger);
- cli:        ``cronplan apply --auto-approve --parallelism 32`` end to end (process start, imports, list,
              plan, lock, apply, ledger) on a second set of jobs, for information.

    python benchmarks/nas_apply.py [N] [--latency SECONDS] [--parallelism P]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NOW = (datetime.now(timezone.utc) + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
NOW_TS = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")


def start_server(latency: float) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests" / "nas_server.py"),
            "--latency",
            str(latency),
            "--no-fire",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    info = json.loads(proc.stdout.readline())
    return proc, info


@contextmanager
def nas_server(latency: float) -> Iterator[tuple[dict[str, Any], dict[str, str]]]:
    """A NAS test server process; yields its info and the environment for cronplan."""
    proc, info = start_server(latency)
    environ = dict(os.environ, CRONPLAN_NAS_TOKEN=info["token"])
    environ.pop("CRONPLAN_DISABLE_PLUGINS", None)
    try:
        yield info, environ
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(15)


def write_project(root: Path, info: dict[str, Any], n: int, prefix: str) -> None:
    root.mkdir(parents=True, exist_ok=True)
    jobs = [
        {
            "id": f"{prefix}-{i:05d}",
            "schedule": {"kind": "interval", "minutes": 5 + i % 55},
            "command": ["true"],
        }
        for i in range(n)
    ]
    (root / "jobs.json").write_text(json.dumps({"jobs": jobs}))
    options = {
        "portal_url": info["url"],
        "jwks_url": info["jwks_url"],
        "issuer": info["issuer"],
        "audience": info["audience"],
    }
    (root / "cronplan.yaml").write_text(
        "jobs: jobs.json\nprovider: nas\ntimezone: UTC\ncallback_url: http://127.0.0.1:8787\n"
        f"providers:\n  nas: {json.dumps(options)}\n"
    )


def time_apply_plan(
    root: Path, environ: dict[str, str], parallelism: int, n: int, prefix: str
) -> tuple[float, float]:
    """(apply_plan seconds, provider-only seconds) for a fresh set of ``n`` jobs."""
    from cronplan.applier import apply_plan
    from cronplan.clock import PinnedClock
    from cronplan.documents.config import load_config
    from cronplan.model import Arm
    from cronplan.planner import plan
    from cronplan.project import Project

    rt = Project(
        load_config(str(root / "cronplan.yaml"), environ), environ=environ, clock=PinnedClock(NOW)
    )
    try:
        jobs_file = rt.load_jobs()
        provider = rt.provider
        the_plan = plan(
            jobs_file.jobs,
            provider.list_arms(),
            rt.ledger.job_records(),
            NOW,
            provider=provider.name,
            callback_url=rt.callback_url_for_arms,
            lineage=rt.ledger.lineage(),
        )
        assert the_plan.summary.arm == n, the_plan.summary
        t0 = time.perf_counter()
        result = apply_plan(
            the_plan,
            provider,
            rt.ledger,
            jobs_file.by_id(),
            clock=rt.clock,
            parallelism=parallelism,
        )
        applied = time.perf_counter() - t0
        assert not result.failed, result.failed[:3]

        # The same number of provider calls alone (new job ids, so each is a real upsert).
        arms = [Arm(f"bare-{prefix}-{i:05d}", NOW, rt.config.callback_url) for i in range(n)]
        t0 = time.perf_counter()
        with ThreadPoolExecutor(parallelism) as pool:
            list(pool.map(provider.arm, arms))
        bare = time.perf_counter() - t0
        return applied, bare
    finally:
        rt.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", nargs="?", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.020)
    parser.add_argument("--parallelism", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3, help="best of this many fresh runs")
    args = parser.parse_args()
    n, latency, par = args.n, args.latency, args.parallelism

    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        # A fresh server for every measurement: arms left by an earlier one would otherwise be
        # orphans of the next project, and its plan would cancel them too.
        for r in range(args.repeat):
            with nas_server(latency) as (info, environ):
                project = Path(tmp) / f"a{r}"
                write_project(project, info, n, f"a{r}")
                runs.append(time_apply_plan(project, environ, par, n, f"a{r}"))
        applied = min(a for a, _ in runs)
        bare = min(b for _, b in runs)

        with nas_server(latency) as (info, environ):
            b = Path(tmp) / "b"
            write_project(b, info, n, "b")
            argv = [sys.executable, "-m", "cronplan", "--config", str(b / "cronplan.yaml"), "-q"]
            argv += ["apply", "--auto-approve", "--parallelism", str(par), "--now", NOW_TS]
            t0 = time.perf_counter()
            res = subprocess.run(
                argv, cwd=b, env=environ, capture_output=True, text=True, check=False
            )
            cli = time.perf_counter() - t0
            if res.returncode != 0:
                raise SystemExit(f"cronplan apply failed ({res.returncode}):\n{res.stderr[-2000:]}")

    ideal = n * latency / par
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"machine:         {os.cpu_count()} CPUs, load average {load:.1f} (other work skews this)"
    )
    print(f"arms:            {n} at {latency * 1000:.0f} ms latency, parallelism {par}")
    print(f"ideal:           {ideal:.3f} s  ({n} x {latency} s / {par})")
    print(
        f"measured apply:  {applied:.3f} s  ratio {applied / ideal:.2f}x  (target <= 1.3x; "
        f"best of {args.repeat}: {', '.join(f'{a:.2f}' for a, _ in runs)})"
    )
    print(
        f"provider only:   {bare:.3f} s  ratio {bare / ideal:.2f}x  "
        f"(best of {args.repeat}: {', '.join(f'{b:.2f}' for _, b in runs)})"
    )
    print(f"cli end to end:  {cli:.3f} s  (process start, list, plan, apply, ledger)")


if __name__ == "__main__":
    main()
