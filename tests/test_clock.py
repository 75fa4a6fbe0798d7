"""The one clock (docs/planning.md, "The clock"): pinned and system clocks, the stopwatch, and the rule that
no other module reads the wall clock for a decision."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from cronplan.clock import SYSTEM_CLOCK, PinnedClock, Stopwatch

ROOT = Path(__file__).resolve().parents[1]
T = datetime(2019, 3, 10, 8, 0, tzinfo=timezone.utc)


def test_pinned_clock_answers_its_instant_in_utc() -> None:
    berlin = timezone(timedelta(hours=1))
    clock = PinnedClock(datetime(2035, 6, 1, 10, 0, tzinfo=berlin))
    assert clock.now() == datetime(2035, 6, 1, 9, 0, tzinfo=timezone.utc)
    assert clock.now().utcoffset() == timedelta(0)
    time.sleep(0.01)
    assert clock.now() == clock.now() == datetime(2035, 6, 1, 9, 0, tzinfo=timezone.utc)


def test_pinned_clock_refuses_a_naive_instant() -> None:
    with pytest.raises(ValueError, match="aware"):
        PinnedClock(datetime(2035, 6, 1, 9, 0))


def test_system_clock_is_the_wall_clock_in_utc() -> None:
    before = datetime.now(timezone.utc)
    now = SYSTEM_CLOCK.now()
    assert now.utcoffset() == timedelta(0)
    assert before <= now <= datetime.now(timezone.utc)


def test_stopwatch_starts_at_the_pinned_instant_and_measures_real_time() -> None:
    watch = Stopwatch(PinnedClock(T))
    assert watch.started == T
    time.sleep(0.2)
    end = watch.now()
    assert timedelta(seconds=0.2) <= end - T < timedelta(seconds=10)
    assert watch.now() >= end  # the end keeps moving with real time, the start does not
    assert watch.started == T


# Reading the wall clock: only cronplan/clock.py may, and the provider checks of real-world lifetimes,
# each with a comment saying so.
_WALL_CLOCK = re.compile(
    r"datetime\.now\(|datetime\.utcnow\(|time\.time\(|time\.time_ns\(|\btime\.time\b|utcnow\(|"
    r"clock_timestamp\(\)|\bnow\(\)|workflow\.now\("
)


def _wall_clock_reads(path: Path) -> list[tuple[int, str]]:
    hits = []
    lines = path.read_text().splitlines()
    for number, line in enumerate(lines, 1):
        code = line.split("#", 1)[0]
        if _WALL_CLOCK.search(code) and not re.search(r"\.clock\.now\(|\bclock\.now\(", code):
            hits.append((number, line))
    return hits


def test_no_core_module_reads_the_wall_clock_on_its_own() -> None:
    offenders = []
    for path in sorted((ROOT / "cronplan").rglob("*.py")):
        if path.name == "clock.py":
            continue
        for number, line in _wall_clock_reads(path):
            # The PostgreSQL schema's column default is never used: every write passes its instant.
            if "DEFAULT clock_timestamp()" in line:
                continue
            # A watch's end (start + measured time) and a Stopwatch are the clock's own.
            if re.search(r"\b(watch|started)\.now\(\)", line):
                continue
            offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_provider_wall_clock_reads_are_each_explained() -> None:
    unexplained = []
    for path in sorted((ROOT / "providers").rglob("*.py")):
        lines = path.read_text().splitlines()
        for number, line in _wall_clock_reads(path):
            before = " ".join(lines[max(0, number - 4) : number - 1])
            if "wall clock on purpose" not in before and "Temporal's own" not in before:
                unexplained.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert unexplained == []
