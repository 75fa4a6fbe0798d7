"""The one clock (docs/planning.md, "The clock").

Every instant cronplan decides with — the planner's ``now``, claim times, applied times, staleness and grace
checks, lock leases, a run's start — comes from one ``Clock`` that the command line builds once and passes
down: ``PinnedClock`` for ``--now``, ``SystemClock`` otherwise (and always for ``serve``). No other module
reads the wall clock for a decision.

Durations are measured, never pinned: a ``Stopwatch`` stamps its start from the clock and its end as that
start plus the real (monotonic) time elapsed, so with ``--now T`` a run that took 2 s reads T .. T + 2 s.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Protocol

__all__ = ["SYSTEM_CLOCK", "Clock", "PinnedClock", "Stopwatch", "SystemClock"]


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, aware and in UTC."""
        ...


class SystemClock:
    """The wall clock: the only place in cronplan that reads it for a decision."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def __repr__(self) -> str:
        return "SystemClock()"


@dataclass(frozen=True)
class PinnedClock:
    """A clock that always answers the same instant (``--now``): same inputs, same result, any date."""

    at: datetime

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("PinnedClock needs an aware datetime")
        object.__setattr__(self, "at", self.at.astimezone(timezone.utc))

    def now(self) -> datetime:
        return self.at


SYSTEM_CLOCK = SystemClock()


@dataclass
class Stopwatch:
    """A start stamped from ``clock`` and an end that is that start plus the measured elapsed time."""

    clock: Clock
    started: datetime = field(init=False)
    _t0: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.started = self.clock.now()
        self._t0 = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self._t0

    def now(self) -> datetime:
        """The start plus the real time elapsed since: the instant to stamp an end with."""
        return self.started + timedelta(seconds=self.elapsed())
