"""A seeded generator of jobs files that look like real ones, for the benchmarks.

    python benchmarks/jobsgen.py --jobs 100000 [--seed 17] > jobs.json

What a generated file holds (the same ``--jobs`` and ``--seed`` always give the same bytes):

- kinds: about 50% cron, 35% interval, 15% once;
- cron expressions drawn from a pool of 400 distinct ones (fixed times, wildcards with steps,
  weekday and month-day restrictions, lists, ranges, a few 6-field ones with seconds), weighted so that a
  handful of favourites (``0 * * * *``, ``*/5 * * * *``, ``0 9 * * 1-5``, ...) are very common and the
  rest form a long tail — as in real crontabs; with the zones, 100,000 jobs hold a few thousand distinct schedules;
- 20 IANA zones, most with daylight-saving shifts (among them ``Australia/Lord_Howe``, whose shift is
  30 minutes), and UTC;
- intervals from 30 seconds to a day, a quarter of them with a ``start_at``;
- once jobs at a whole working hour within the 30 days after 2026-12-01, in a zone;
- actions: about 60% ``command``, 30% ``http`` (with headers and a JSON body), 10% ``runner`` prompts with
  skills; some jobs carry ``env``, ``catch_up``, ``repeat``, ``timeout_seconds``; 3% are disabled.

The module is imported by benchmarks/plan.py, validate.py, apply_local.py and scale.py.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

SEED = 17

# 20 zones: UTC plus 19 with DST rules (north and south), Lord Howe's shift is 30 minutes.
ZONES = [
    "UTC",
    "Europe/Berlin",
    "Europe/London",
    "Europe/Paris",
    "Europe/Madrid",
    "Europe/Helsinki",
    "Europe/Athens",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "America/Santiago",
    "America/Halifax",
    "America/St_Johns",
    "Australia/Sydney",
    "Australia/Adelaide",
    "Australia/Lord_Howe",
    "Pacific/Auckland",
    "Asia/Jerusalem",
]
# Most jobs live in a few zones.
ZONE_WEIGHTS = [30, 14, 10, 6, 4, 3, 2, 12, 6, 2, 8, 2, 1, 1, 1, 4, 1, 1, 2, 1]

FAVOURITES = [
    "0 * * * *",
    "*/5 * * * *",
    "*/15 * * * *",
    "0 0 * * *",
    "0 9 * * 1-5",
    "30 2 * * *",
    "0 */6 * * *",
    "0 0 * * 0",
    "0 0 1 * *",
    "*/10 * * * *",
    "0 8 * * *",
    "0 12 * * *",
]
INTERVALS = [("seconds", 30)] + [
    ("minutes", m) for m in (1, 5, 10, 15, 30, 60, 120, 360, 720, 1440)
]
DOW = ["*", "*", "*", "1-5", "1-5", "0", "6", "1", "0,6", "1,3,5", "5"]
DOM = ["*", "*", "*", "*", "*", "1", "15", "1,15", "L", "28"]


def _tail_expr(rng: random.Random) -> str:
    """One expression of the long tail."""
    shape = rng.randrange(8)
    minute, hour = rng.randrange(60), rng.randrange(24)
    if shape == 0:  # fixed time, some days
        return f"{minute} {hour} {rng.choice(DOM)} * {rng.choice(DOW)}"
    if shape == 1:  # every n minutes
        return f"*/{rng.choice([2, 3, 5, 10, 15, 20, 30])} * * * {rng.choice(DOW)}"
    if shape == 2:  # at minute m of every hour, or of an hour range
        hours = rng.choice(["*", "8-18", "9-17", "0-6", f"*/{rng.choice([2, 3, 4, 6, 8, 12])}"])
        return f"{minute} {hours} * * {rng.choice(DOW)}"
    if shape == 3:  # a list of times
        return f"{minute} {hour},{(hour + 12) % 24} * * *"
    if shape == 4:  # monthly / yearly
        return f"{minute} {hour} {1 + rng.randrange(28)} {rng.choice(['*', '1', '*/3', '1,7'])} *"
    if shape == 5:  # a nth weekday
        return f"{minute} {hour} * * {rng.randrange(1, 6)}#{rng.randrange(1, 5)}"
    if shape == 6:  # seconds
        return f"{rng.randrange(60)} {minute} {hour} * * *"
    return f"{minute} {hour} * * *"


def expression_pool(rng: random.Random, size: int = 400) -> list[str]:
    pool = list(FAVOURITES)
    seen = set(pool)
    while len(pool) < size:
        expr = _tail_expr(rng)
        if expr not in seen:
            seen.add(expr)
            pool.append(expr)
    return pool


def _schedule(rng: random.Random, pool: list[str], weights: list[float]) -> dict[str, Any]:
    roll = rng.random()
    tz = rng.choices(ZONES, ZONE_WEIGHTS)[0]
    if roll < 0.50:
        sched: dict[str, Any] = {"kind": "cron", "expr": rng.choices(pool, weights)[0]}
        if tz != "UTC" or rng.random() < 0.5:
            sched["tz"] = tz
        return sched
    if roll < 0.85:
        unit, value = rng.choice([*INTERVALS, ("minutes", rng.randrange(2, 120))])
        sched = {"kind": "interval", unit: value}
        if rng.random() < 0.25:
            sched["start_at"] = f"2026-0{rng.randrange(1, 10)}-01T00:00:00Z"
        return sched
    # A whole hour of a working day within the 30 days after 2026-12-01 (real one-offs cluster).
    day, hour = rng.randrange(30), rng.randrange(9, 18)
    year, month, mday = (2026, 12, 1 + day) if day < 31 else (2027, 1, day - 30)
    return {"kind": "once", "run_at": f"{year}-{month:02d}-{mday:02d}T{hour:02d}:00:00", "tz": tz}


def _action(rng: random.Random, i: int) -> dict[str, Any]:
    roll = rng.random()
    if roll < 0.6:
        cmd = rng.choice(
            [
                ["/usr/local/bin/report", "--id", str(i)],
                ["backup", "--full", f"/srv/data/{i % 97}"],
                ["python3", "-m", "jobs.cleanup", "--older-than", "7d"],
                ["true"],
            ]
        )
        out: dict[str, Any] = {"command": cmd}
        if rng.random() < 0.3:
            out["env"] = {"MODE": rng.choice(["daily", "hourly", "full"]), "SHARD": str(i % 16)}
        return out
    if roll < 0.9:
        return {
            "http": {
                "url": f"http://127.0.0.1:8080/hooks/{i % 500}",
                "method": "POST",
                "headers": {"content-type": "application/json"},
                "body": {"job": i, "source": "cron"},
            }
        }
    return {
        "prompt": f"Summarise the inbox and post the digest (job {i}).",
        "skills": rng.sample(["email", "summarise", "calendar", "search"], 2),
    }


def generate_jobs(n: int, seed: int = SEED) -> dict[str, Any]:
    """The jobs document for ``n`` jobs (ids ``job-0000000`` ...), deterministic in ``(n, seed)``."""
    rng = random.Random(seed)
    pool = expression_pool(rng)
    # Zipf-like weights: a few favourites dominate, the tail is long.
    weights = [1.0 / (rank + 1) ** 1.1 for rank in range(len(pool))]
    jobs = []
    for i in range(n):
        job: dict[str, Any] = {"id": f"job-{i:07d}", "name": f"Job {i}"}
        job["schedule"] = _schedule(rng, pool, weights)
        job.update(_action(rng, i))
        extra = rng.random()
        if extra < 0.03:
            job["enabled"] = False
        elif extra < 0.10:
            job["catch_up"] = rng.choice(["skip", "once"])
        elif extra < 0.13 and job["schedule"]["kind"] != "once":
            job["repeat"] = {"times": rng.randrange(5, 500)}
        elif extra < 0.20 and "command" in job:
            job["timeout_seconds"] = rng.choice([60, 300, 3600])
        jobs.append(job)
    return {"jobs": jobs}


# The runner gives the prompt jobs something to run them (never started by the benchmarks).
CONFIG = "jobs: jobs.json\nprovider: local\ntimezone: UTC\nrunner: [python3, prompt_runner.py]\n"


def write_project(root: Path, n: int, seed: int = SEED) -> Path:
    """A throwaway project in ``root`` (jobs.json, cronplan.yaml with the local provider and SQLite)."""
    root.mkdir(parents=True, exist_ok=True)
    jobs = root / "jobs.json"
    jobs.write_text(json.dumps(generate_jobs(n, seed)))
    (root / "cronplan.yaml").write_text(CONFIG)
    return jobs


def describe(doc: dict[str, Any]) -> str:
    """One line on what a generated document holds (kinds, distinct schedules)."""
    jobs = doc["jobs"]
    kinds: dict[str, int] = {}
    for job in jobs:
        kinds[job["schedule"]["kind"]] = kinds.get(job["schedule"]["kind"], 0) + 1
    distinct = len({json.dumps(j["schedule"], sort_keys=True) for j in jobs})
    parts = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
    return f"{len(jobs)} jobs ({parts}); {distinct} distinct schedules"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--jobs", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args(argv)
    doc = generate_jobs(args.jobs, args.seed)
    json.dump(doc, sys.stdout)
    print(describe(doc), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
