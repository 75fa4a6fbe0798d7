"""Shared helpers for the benchmarks: a project of generated jobs (benchmarks/jobsgen.py), a json.load
baseline, and end-to-end `cronplan` runs in fresh processes timed with their CPU time and peak RSS."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from jobsgen import write_project

__all__ = ["Run", "best_of", "cronplan", "json_load", "measured", "median_of", "write_project"]

NOW = "2026-11-26T12:00:00Z"


def best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def median_of(fn: Callable[[], object], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


@dataclass
class Run:
    """One process: wall-clock and CPU seconds, peak RSS in MB, exit code."""

    wall: float
    cpu: float
    rss_mb: float
    code: int

    def best(self, other: Run | None) -> Run:
        """The faster of two runs (by CPU time; the peak RSS is the larger)."""
        if other is None:
            return self
        fast = self if self.cpu <= other.cpu else other
        return Run(fast.wall, fast.cpu, max(self.rss_mb, other.rss_mb), fast.code)


def measured(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> Run:
    """Run ``argv`` as a fresh child and measure it alone: ``os.wait4`` gives that child's own rusage
    (its ``ru_maxrss`` is the peak RSS of that process, not of every child so far). Output is discarded."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode not in (0, 2):
            err.seek(0)
            tail = err.read()[-2000:].decode(errors="replace")
            raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{tail}")
    # ru_maxrss is in kilobytes on Linux.
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode)


def cronplan_argv(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "cronplan", "--config", str(root / "cronplan.yaml"), *args]


def cronplan_env() -> dict[str, str]:
    return dict(os.environ, CRONPLAN_DISABLE_PLUGINS="1")


def cronplan_run(root: Path, *args: str) -> Run:
    """`cronplan ARGS` in the project ``root``, end to end in a fresh process, measured."""
    return measured(cronplan_argv(root, *args), root, cronplan_env())


def json_load(path: Path) -> Run:
    """The baseline: a fresh process that does a plain ``json.load`` of ``path``, measured the same way."""
    code = f"import json\nwith open({str(path)!r}, encoding='utf-8') as f: json.load(f)"
    return measured([sys.executable, "-c", code], path.parent)


def cronplan(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        cronplan_argv(root, *args), cwd=root, capture_output=True, text=True, env=cronplan_env()
    )
    if check and proc.returncode not in (0, 2):
        raise SystemExit(
            f"cronplan {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}"
        )
    return proc


def file_mb(path: Path) -> float:
    return path.stat().st_size / 1e6


def load_json(path: Path) -> object:
    with path.open(encoding="utf-8") as f:
        return json.load(f)


def json_load_inproc(path: Path, repeat: int = 3) -> tuple[float, float]:
    """The time baseline: best wall and CPU seconds of a plain ``json.load`` of ``path`` in this process."""
    wall = cpu = float("inf")
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        load_json(path)
        wall, cpu = min(wall, time.perf_counter() - w), min(cpu, time.process_time() - c)
    return wall, cpu
