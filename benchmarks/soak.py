"""Soak: ``cronplan serve`` + the NAS provider under faults, edits and SIGKILL; every occurrence runs once.

For ``--minutes N`` (default 3) of real time, on 127.0.0.1 only:

- the NAS test server (tests/nas_server.py, in this process) fails 30 % of provision/list/cancel calls
  (500, 503, 429, a connection dropped before or after the call took effect) and 30 % of fire attempts
  (sent twice, sent late, or its answer lost so NAS retries);
- ``cronplan serve`` takes the fires; a handful of jobs on 1-3 s schedules (intervals and a cron with a
  seconds field) each append one line ``job_id fire_at version wall_time`` per run to a file of their own;
- every 3-6 s jobs.json is rewritten (a job's command changes, or a job is removed or added back) and
  ``cronplan apply --auto-approve`` is run;
- every 5-20 s ``serve`` gets SIGKILL and, 0-6 s later (NAS gives up on a fire after about 4.5 s), is
  started again; then ``cronplan fire --overdue`` runs, as an operator's backstop cron would: at once, and
  again 6 s after the restart, when NAS has delivered or given up every fire that met the dead serve.

At the end everything is stopped and every occurrence that should have fired is checked against the lines
the jobs wrote. An occurrence of a job is *due* when it lies after the apply that added the job finished,
before the apply that removed it started, and more than ``TAIL`` seconds before the end. A due occurrence
may be absent only when it was skipped by the catch-up rule (docs/planning.md: after missed occurrences
only the most recent one runs, once): either a late fire of an earlier occurrence was claimed after it
came due (that run covers it), or the re-arm after the previous run was planned after it came due (a
slow provider; serve's log says ``next arm:`` past it), or an apply planned after it came due armed a
later missed occurrence as the catch-up (the apply's JSON plan says so), or it lies in a disruption (from
``IN_FLIGHT`` seconds before a SIGKILL of serve until the second ``fire --overdue`` after the restart
finished) and a later occurrence of the same job ran (the catch-up that closed the gap). Occurrences
during an apply that adds or removes the job may run or not (for a removal, from ``IN_FLIGHT`` seconds
before it: a fire in flight when it lands is stale). A run of an occurrence that was not due counts as a
catch-up only when it is the catch-up a re-added job gets for what it missed while removed; any other is
reported. Every run must also run the command as last applied
when it started (an apply in progress may go either way).

Figures: occurrences due, run once, duplicates, lost, catch-ups, kills, faults injected, fires delivered.
Exit 0 when there is no duplicate, no lost occurrence and no unexpected run; 1 otherwise.

    python benchmarks/soak.py [--minutes N] [--seed S] [--keep DIR]
    ./scripts/bench soak
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.nas_server import NasTestServer  # noqa: E402

TAIL = 6.0  # seconds before the end whose occurrences may still be in flight
# Seconds before a SIGKILL whose occurrences may be in flight in the killed serve (delivered but not yet
# claimed, or claimed and not yet started): on a loaded machine a fire waits that long for a worker.
IN_FLIGHT = 3.0
BACKSTOP_AGAIN = 6.0  # after a restart: fire --overdue at once and again this much later
FAULT_RATE = 0.3
# One line per run, appended with a single write(2) on an O_APPEND file (atomic between processes).
APPEND = (
    "import os,sys,time\n"
    "fd=os.open(sys.argv[1],os.O_WRONLY|os.O_APPEND|os.O_CREAT,0o644)\n"
    "e=os.environ\n"
    "os.write(fd,('%s %s %s %.3f\\n'%(e['CRONPLAN_JOB_ID'],e['CRONPLAN_FIRE_AT'],sys.argv[2],"
    "time.time())).encode())\n"
)


def ts(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()


@dataclass
class JobSpec:
    job_id: str
    period: int  # seconds between occurrences
    cron: bool  # a 6-field cron ("*/N * * * * *") instead of an interval
    anchor: int  # an occurrence (interval start_at)
    version: int = 1

    def doc(self, log: Path) -> dict[str, Any]:
        if self.cron:
            schedule: dict[str, Any] = {"kind": "cron", "expr": f"*/{self.period} * * * * *"}
        else:
            schedule = {"kind": "interval", "seconds": self.period, "start_at": ts(self.anchor)}
        return {
            "id": self.job_id,
            "schedule": schedule,
            "command": [sys.executable, "-S", "-c", APPEND, str(log), f"v{self.version}"],
            "timeout_seconds": 30,
        }

    def occurrences(self, start: float, end: float) -> list[int]:
        """Occurrences T with start < T < end."""
        first = self.anchor + math.floor((start - self.anchor) / self.period + 1) * self.period
        return list(range(int(first), math.ceil(end), self.period))


@dataclass
class Apply:
    started: float
    finished: float
    versions: dict[str, int]  # job_id -> command version, of the jobs in jobs.json
    attempts: int
    # job_id -> the missed occurrence the apply armed as a catch-up (its plan's reason_code catch_up)
    catch_ups: dict[str, int] = field(default_factory=dict)


@dataclass
class Disruption:
    killed: float
    healthy: float
    backstop_done: float


@dataclass
class Soak:
    root: Path
    minutes: float
    seed: int
    rng: random.Random = field(init=False)
    server: NasTestServer = field(init=False)
    port: int = 0
    env: dict[str, str] = field(default_factory=dict)
    serve: subprocess.Popen[bytes] | None = None
    children: list[subprocess.Popen[bytes]] = field(default_factory=list)
    jobs: dict[str, JobSpec] = field(default_factory=dict)
    present: set[str] = field(default_factory=set)
    applies: list[Apply] = field(default_factory=list)
    disruptions: list[Disruption] = field(default_factory=list)
    backstop_failures: int = 0
    serve_starts: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    @property
    def log(self) -> Path:
        return self.root / "runs.log"

    # ------------------------------------------------------------------ processes

    def cronplan(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cronplan", "--config", str(self.root / "cronplan.yaml"), *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start_serve(self) -> float:
        import httpx

        self.serve_starts += 1
        err = open(self.root / f"serve-{self.serve_starts}.stderr", "wb")  # noqa: SIM115
        self.serve = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cronplan",
                "--config",
                str(self.root / "cronplan.yaml"),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            cwd=self.root,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        err.close()
        self.children.append(self.serve)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.serve.poll() is not None:
                raise RuntimeError(f"serve exited with {self.serve.returncode}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    return time.time()
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("serve did not become healthy within 30 s")

    def backstop(self) -> None:
        res = self.cronplan("fire", "--overdue")
        if res.returncode != 0:
            self.backstop_failures += 1

    def kill_serve(self) -> float:
        assert self.serve is not None
        killed = time.time()
        self.serve.send_signal(signal.SIGKILL)
        self.serve.wait(10)
        return killed

    def stop_all(self) -> None:
        for proc in self.children:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)

    # ------------------------------------------------------------------ the project

    def write_config(self) -> None:
        import yaml

        doc = {
            "jobs": "jobs.json",
            "provider": "nas",
            "timezone": "UTC",
            "callback_url": f"http://127.0.0.1:{self.port}",
            "providers": {
                "nas": {
                    "portal_url": self.server.url,
                    "jwks_url": self.server.jwks_url,
                    "issuer": self.server.issuer,
                    "audience": self.server.audience,
                    "retry_base_seconds": 0.05,
                    "retry_max_backoff_seconds": 0.5,
                    "retry_total_seconds": 20,
                }
            },
        }
        (self.root / "cronplan.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))

    def apply(self) -> None:
        """Write jobs.json from the present jobs and apply it (retried until it succeeds)."""
        jobs = [self.jobs[j].doc(self.log) for j in sorted(self.present)]
        (self.root / "jobs.json").write_text(json.dumps({"jobs": jobs}, indent=2))
        started = time.time()
        for attempt in range(1, 6):
            res = self.cronplan("apply", "--auto-approve", "--format", "json")
            if res.returncode == 0:
                versions = {j: self.jobs[j].version for j in self.present}
                catch_ups = {
                    a["job_id"]: int(epoch(a["after"]["fire_at"]))
                    for a in json.loads(res.stdout)["plan"]["actions"]
                    if a["reason_code"] == "catch_up" and a["after"] is not None
                }
                self.applies.append(Apply(started, time.time(), versions, attempt, catch_ups))
                return
            if "Traceback" in res.stderr:
                raise RuntimeError(f"apply crashed:\n{res.stderr}")
        raise RuntimeError(f"apply failed 5 times; last:\n{res.stderr}")

    def edit(self) -> None:
        """One change to jobs.json: a new command for a job, or the flapping job removed or added."""
        if self.rng.random() < 0.3:
            self.present ^= {"flap"}
        else:
            job = self.jobs[self.rng.choice(sorted(self.present))]
            job.version += 1
        self.apply()

    # ------------------------------------------------------------------ the run

    def run(self) -> dict[str, Any]:
        from tests.fixtures_nas import free_port

        self.server = NasTestServer(
            seed=self.seed,
            error_rate=FAULT_RATE,
            fire_fault_rate=FAULT_RATE,
            fire_retries=5,
            fire_retry_delay=0.3,
        )
        self.server.start()
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if k != "CRONPLAN_DISABLE_PLUGINS"}
        self.env["CRONPLAN_NAS_TOKEN"] = self.server.token
        self.write_config()
        anchor = int(time.time()) // 60 * 60 - 60
        for spec in (
            JobSpec("tick1", 1, False, anchor),
            JobSpec("tick2", 2, False, anchor),
            JobSpec("tick2b", 2, False, anchor + 1),
            JobSpec("cron3", 3, True, anchor),
            JobSpec("flap", 1, False, anchor),
        ):
            self.jobs[spec.job_id] = spec
        self.present = set(self.jobs)
        try:
            self.start_serve()
            self.apply()
            began = time.time()
            end = began + self.minutes * 60
            next_edit = began + self.rng.uniform(3, 6)
            next_kill = began + self.rng.uniform(5, 20)
            while True:
                now = time.time()
                if now >= end:
                    break
                if now >= next_kill:
                    killed = self.kill_serve()
                    # Down for a while: long enough, at times, for NAS to give up on a fire.
                    time.sleep(self.rng.uniform(0, 6))
                    healthy = self.start_serve()
                    self.backstop()
                    # NAS may still be retrying a fire that met the dead serve (its retries last about
                    # 4.5 s) and give up on it now: the backstop runs again once that is settled.
                    time.sleep(max(0.0, healthy + BACKSTOP_AGAIN - time.time()))
                    self.backstop()
                    self.disruptions.append(Disruption(killed, healthy, time.time()))
                    next_kill = time.time() + self.rng.uniform(5, 20)
                elif now >= next_edit:
                    self.edit()
                    next_edit = time.time() + self.rng.uniform(3, 6)
                else:
                    time.sleep(min(0.1, end - now))
            ended = time.time()
            self.server.fire_enabled = False  # no new deliveries; those in flight finish
            time.sleep(4)
            self.stop_all()
            time.sleep(0.5)  # a job started just before serve stopped writes its line
        finally:
            self.stop_all()
            self.server.stop()
        return self.check(began, ended)

    # ------------------------------------------------------------------ the check

    def windows(self, job_id: str) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        """(active, optional): when the job's occurrences are due, and when they may run or not."""
        active: list[tuple[float, float]] = []
        optional: list[tuple[float, float]] = []
        since: float | None = None
        was = False
        for a in self.applies:
            now = job_id in a.versions
            if now and not was:
                since = a.finished
                optional.append((a.started - 1, a.finished))
            elif was and not now:
                assert since is not None
                active.append((since, a.started))
                # A fire due shortly before the removal may still be in flight when it lands: stale then.
                optional.append((a.started - IN_FLIGHT, a.finished + 1))
            was = now
        if was:
            assert since is not None
            active.append((since, math.inf))
        return active, optional

    def versions_at(self, job_id: str, claimed: float) -> set[int]:
        """The command versions a fire claimed at ``claimed`` may run: the one last applied, or, during an
        apply (and half a second either side: a fire reads the job just before it claims), either."""
        current: int | None = None
        for a in self.applies:
            if a.finished <= claimed - 0.5:
                current = a.versions.get(job_id, current)
            elif a.started - 0.5 <= claimed:
                return {v for v in (current, a.versions.get(job_id)) if v is not None}
        return {current} if current is not None else set()

    def rearm_skips(self) -> dict[str, list[tuple[int, int]]]:
        """Per job, (fired, next arm) pairs from serve's log where the re-arm skipped occurrences."""
        import re

        line = re.compile(r"^(\S+):(\S+Z): (?:succeeded|failed) in .*; next arm: (\S+Z)$")
        out: dict[str, list[tuple[int, int]]] = {}
        for path in self.root.glob("serve-*.stderr"):
            for text in path.read_text(errors="replace").splitlines():
                m = line.match(text)
                if m and m.group(1) in self.jobs:
                    fired, nxt = int(epoch(m.group(2))), int(epoch(m.group(3)))
                    if nxt - fired > self.jobs[m.group(1)].period:
                        out.setdefault(m.group(1), []).append((fired, nxt))
        return out

    def claims(self) -> dict[tuple[str, int], float]:
        """(job_id, fire_at) -> claimed_at of every scheduled run in the SQLite ledger, read at the end.

        The jobs write when they ran; the ledger says when each occurrence was claimed, which decides
        whether a late fire covered the occurrences after it (docs/planning.md, rule 3 of the planner)."""
        import sqlite3

        db = self.root / ".cronplan" / "state.db"
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            rows = conn.execute(
                "SELECT job_id, fire_at, claimed_at FROM runs WHERE kind = 'scheduled'"
            ).fetchall()
        return {(job, fire // 1_000_000): claimed / 1e6 for job, fire, claimed in rows}

    def check(self, began: float, ended: float) -> dict[str, Any]:
        cutoff = ended - TAIL
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        runs: dict[str, Counter[int]] = {j: Counter() for j in self.jobs}
        problems: list[str] = []
        claims = self.claims()
        rearm_skips = self.rearm_skips()
        for line in lines:
            job_id, fire_at, version, _wall = line.split(" ")
            at = int(epoch(fire_at))
            runs[job_id][at] += 1
            allowed = self.versions_at(job_id, claims[job_id, at])
            if int(version[1:]) not in allowed:
                problems.append(f"{job_id} {fire_at} ran command {version}, applied: {allowed}")
        figures = Counter[str]()
        disrupted = [(d.killed - IN_FLIGHT, d.backstop_done) for d in self.disruptions]
        for job_id, spec in self.jobs.items():
            active, optional = self.windows(job_id)
            due: set[int] = set()
            for lo, hi in active:
                due.update(spec.occurrences(lo, min(hi, cutoff)))
            due -= {t for t in due if any(lo <= t <= hi for lo, hi in optional)}
            counts = runs[job_id]
            for t, n in counts.items():
                if n > 1:
                    figures["duplicates"] += n - 1
                    problems.append(f"{job_id} {ts(t)} ran {n} times")
            for t in sorted(due):
                if counts[t] == 1:
                    figures["run_once"] += 1
                if counts[t] >= 1:
                    continue
                earlier = [u for u in counts if u < t]
                if earlier and claims.get((job_id, max(earlier)), 0) >= t:
                    # The fire before it was claimed after t came due: that late run covered t.
                    figures["covered_by_late_fire"] += 1
                    continue
                if any(a < t < b for a, b in rearm_skips.get(job_id, ())):
                    # The re-arm after an earlier run was planned after t came due (a slow provider:
                    # faults, Retry-After): it armed the most recent missed occurrence, once.
                    figures["skipped_at_rearm"] += 1
                    continue
                if any(
                    a.started > t and t < u and not any(t < r < u for r in counts)
                    for a in self.applies
                    if (u := a.catch_ups.get(job_id)) is not None
                ):
                    # An apply planned after t came due, while the re-arm after the run before it was
                    # still on its way (a slow provider): the apply armed the most recent missed
                    # occurrence as the catch-up, once (docs/planning.md), and t was skipped.
                    figures["skipped_at_apply"] += 1
                    continue
                later = [u for u in counts if u > t]
                if later and any(lo <= t <= hi for lo, hi in disrupted):
                    figures["skipped_by_catch_up"] += 1
                    continue
                figures["lost"] += 1
                if (job_id, t) in claims:
                    problems.append(f"{job_id} {ts(t)} was claimed but never ran")
                else:
                    problems.append(f"{job_id} {ts(t)} never ran")
            # Catch-ups: the first run after a gap of skipped occurrences, and runs of a re-added job
            # for what it missed while removed.
            ran = sorted(counts)
            for prev, t in itertools.pairwise(ran):
                if any(u in due and not counts[u] for u in range(prev + 1, t)):
                    figures["catch_ups"] += 1
            for t in ran:
                if t in due or t >= cutoff or any(lo <= t <= hi for lo, hi in optional):
                    continue
                on_schedule = (t - spec.anchor) % spec.period == 0
                readd = any(
                    hi != math.inf and hi <= t and any(lo2 >= t for lo2, _ in active)
                    for _, hi in active
                )
                if on_schedule and readd:
                    figures["catch_ups"] += 1
                else:
                    problems.append(f"{job_id} {ts(t)} ran but was not due")
            figures["occurrences_due"] += len(due)
        history = {
            "applies": [a.__dict__ for a in self.applies],
            "disruptions": [d.__dict__ for d in self.disruptions],
            "nas_fires": [f.__dict__ for f in self.server.fires],
            "nas_provisions": self.server.provisions,
        }
        (self.root / "history.json").write_text(json.dumps(history, indent=1))
        counters = self.server.counters
        result = {
            "minutes": round((ended - began) / 60, 2),
            "occurrences_due": figures["occurrences_due"],
            "run_once": figures["run_once"],
            "duplicates": figures["duplicates"],
            "lost": figures["lost"],
            "covered_by_late_fire": figures["covered_by_late_fire"],
            "skipped_at_rearm": figures["skipped_at_rearm"],
            "skipped_at_apply": figures["skipped_at_apply"],
            "skipped_by_catch_up": figures["skipped_by_catch_up"],
            "catch_ups": figures["catch_ups"],
            "runs": len(lines),
            "kills": len(self.disruptions),
            "applies": len(self.applies),
            "apply_retries": sum(a.attempts - 1 for a in self.applies),
            "backstop_failures": self.backstop_failures,
            "faults_injected": sum(
                v for k, v in counters.items() if k.startswith(("fault_", "fire_fault_"))
            ),
            "faults": {k: v for k, v in sorted(counters.items()) if "fault_" in k},
            "fires_delivered": counters["fires_delivered"],
            "fires_dead": counters["fires_dead"],
            "fire_attempts": counters["fire_attempts"],
            "problems": problems,
        }
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=20261204)
    parser.add_argument("--keep", type=Path, default=None, help="work in DIR and keep it")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    args = parser.parse_args(argv)
    # SIGTERM (a CI timeout, pytest-timeout in a parent) unwinds through the finally that stops children.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        result = Soak(args.keep, args.minutes, args.seed).run()
    else:
        with tempfile.TemporaryDirectory(prefix="cronplan-soak-") as tmp:
            result = Soak(Path(tmp), args.minutes, args.seed).run()
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            if key != "problems":
                print(f"{key:22} {value}")
        for problem in result["problems"]:
            print(f"PROBLEM: {problem}")
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
