"""The local provider's timer loop: sleep until the earliest arm, fire it, repeat.

There is no polling floor: the loop sleeps exactly until the next arm is due, so a 1-second interval job
fires every second. What it does poll, at most every ``poll_s`` (0.5 s), is the local store's
``generation()``, one indexed read that changes whenever any process changes the arms; so arms applied by
another process are seen within ``poll_s``. In-process changes (a fire re-arming its job) call ``wake()``.

An arm stays in the store after it fires until the fire's re-plan replaces or cancels it; the loop
remembers which arms it has already handed out (by dedup key) so it never hands out one twice while it is
being handled.

A fire that could not be handled (the ledger busy or unreachable, jobs.json unreadable for a moment) is
handed back with ``retry(arm)``: the loop hands the same arm out again after a backoff (1 s, doubling up to
60 s) for as long as the arm is live. Only the arm going away or moving (re-armed, cancelled) ends the
retries, so an arm is never silently dropped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from cronplan.clock import SYSTEM_CLOCK
from cronplan.model import Arm

POLL_S = 0.5
RETRY_FIRST_S = 1.0
RETRY_MAX_S = 60.0


class ArmStore(Protocol):
    """What the loop needs from the local provider."""

    def generation(self) -> int: ...

    def list_arms(self) -> list[Arm]: ...


class TimerLoop:
    """Call ``dispatch(arm)`` once for every arm when it falls due, until ``stop()``."""

    def __init__(
        self,
        store: ArmStore,
        dispatch: Callable[[Arm], None],
        *,
        poll_s: float = POLL_S,
        clock: Callable[[], datetime] = SYSTEM_CLOCK.now,
        on_error: Callable[[str], None] | None = None,
        on_idle: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.dispatch = dispatch
        self.poll_s = poll_s
        self.clock = clock
        self.on_error = on_error
        self.on_idle = on_idle
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._handed_out: set[str] = set()
        # dedup key -> (failed attempts, monotonic time before which the arm is not handed out again)
        self._retry: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ control

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="cronplan-timer", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Re-read the arms now (something in this process changed them)."""
        self._wake.set()

    def stop(self, timeout: float | None = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def retry(self, arm: Arm) -> float:
        """The fire of ``arm`` could not be handled: hand it out again after a backoff; return the delay.

        The delay starts at ``RETRY_FIRST_S`` and doubles with every failure of the same arm, up to
        ``RETRY_MAX_S``. Retries stop when the arm leaves the store or moves (a new dedup key).
        """
        key = arm.dedup_key
        with self._lock:
            attempts = self._retry.get(key, (0, 0.0))[0] + 1
            delay: float = min(RETRY_MAX_S, RETRY_FIRST_S * 2.0 ** min(attempts - 1, 16))
            self._retry[key] = (attempts, time.monotonic() + delay)
            self._handed_out.discard(key)
        self._wake.set()
        return delay

    def handled(self, arm: Arm) -> None:
        """The fire of ``arm`` was handled (claimed, duplicate or stale): forget its retry count."""
        with self._lock:
            self._retry.pop(arm.dedup_key, None)

    def pending_retries(self) -> int:
        """How many arms are waiting for another attempt (for /healthz)."""
        with self._lock:
            return len(self._retry)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    # ------------------------------------------------------------------ the loop

    def run(self) -> None:
        generation: int | None = None
        arms: list[Arm] = []
        errors_in_a_row = 0
        while not self._stop.is_set():
            try:
                woken = self._wake.is_set()
                self._wake.clear()
                current = self.store.generation()
                if woken or current != generation:
                    # Read the generation first: a change racing with list_arms() is then seen next turn.
                    arms = self.store.list_arms()
                    generation = current
                    live = {a.dedup_key for a in arms}
                    with self._lock:
                        # Forget arms that are gone or moved (memory stays bounded; their retries end).
                        self._handed_out &= live
                        for key in self._retry.keys() - live:
                            del self._retry[key]
                timeout = self._fire_due(arms)
                if self.on_idle is not None:
                    self.on_idle()
                errors_in_a_row = 0
            except Exception as exc:  # the loop must outlive a locked or broken store
                errors_in_a_row += 1
                if self.on_error is not None and errors_in_a_row in (1, 10, 100):
                    self.on_error(f"timer loop: {type(exc).__name__}: {exc}")
                generation = None
                timeout = self.poll_s
            self._wake.wait(timeout)

    def _fire_due(self, arms: list[Arm]) -> float:
        """Hand out every due arm; return how long to sleep (until the next arm or retry, at most ``poll_s``)."""
        now = self.clock()
        mono = time.monotonic()
        upcoming: datetime | None = None
        wait = self.poll_s
        due: list[Arm] = []
        with self._lock:
            for arm in sorted(arms, key=lambda a: (a.fire_at, a.job_id)):
                key = arm.dedup_key
                if key in self._handed_out:
                    continue
                if arm.fire_at > now:
                    if upcoming is None or arm.fire_at < upcoming:
                        upcoming = arm.fire_at
                    continue
                retry = self._retry.get(key)
                if retry is not None and retry[1] > mono:
                    wait = min(wait, retry[1] - mono)  # backing off after a failed attempt
                    continue
                self._handed_out.add(key)
                due.append(arm)
        for arm in due:
            self.dispatch(arm)
        if upcoming is not None:
            wait = min(wait, (upcoming - self.clock()).total_seconds())
        return max(0.0, wait)


__all__ = ["POLL_S", "RETRY_FIRST_S", "RETRY_MAX_S", "ArmStore", "TimerLoop"]
