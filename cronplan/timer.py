"""The local provider's timer loop: sleep until the earliest arm, fire it, repeat.

There is no polling floor: the loop sleeps exactly until the next arm is due, so a 1-second interval job
fires every second. What it does poll, at most every ``poll_s`` (0.5 s), is the local store's
``generation()``, one indexed read that changes whenever any process changes the arms; so arms applied by
another process are seen within ``poll_s``. In-process changes (a fire re-arming its job) call ``wake()``.

An arm stays in the store after it fires until the fire's re-plan replaces or cancels it; the loop
remembers which arms it has already handed out (by dedup key) so it never hands out one twice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from cronplan.clock import SYSTEM_CLOCK
from cronplan.model import Arm

POLL_S = 0.5


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
                    self._handed_out &= live  # forget arms that are gone, so memory stays bounded
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
        """Hand out every due arm; return how long to sleep (until the next arm, at most ``poll_s``)."""
        now = self.clock()
        upcoming: datetime | None = None
        for arm in sorted(arms, key=lambda a: (a.fire_at, a.job_id)):
            key = arm.dedup_key
            if key in self._handed_out:
                continue
            if arm.fire_at <= now:
                self._handed_out.add(key)
                self.dispatch(arm)
            elif upcoming is None or arm.fire_at < upcoming:
                upcoming = arm.fire_at
        if upcoming is None:
            return self.poll_s
        return max(0.0, min(self.poll_s, (upcoming - self.clock()).total_seconds()))


__all__ = ["POLL_S", "ArmStore", "TimerLoop"]
