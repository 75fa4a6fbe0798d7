"""An in-memory provider with fault injection and call counters, for planner/applier/fire tests.

    fake = FakeProvider()                       # works; nothing fails
    fake = FakeProvider(fail_calls={3})         # the 3rd faultable call (arm/cancel by default) fails
    fake = FakeProvider(fail_job_ids={"b"})     # every arm/cancel of job "b" fails
    fake = FakeProvider(fail_rate=0.2, seed=1)  # a reproducible 20 % of calls fail
    fake.calls["arm"], fake.log, fake.arms      # what happened

Failures raise ``ProviderError`` (or ``error=``) *before* the state changes, like a request that never
reached the server. ``fail_after_apply=True`` instead changes the state and then raises, like a response
that got lost — the case that makes idempotence matter. It also accepts ``ProviderSettings`` as its first
argument, so it can be registered as an entry point in registry tests.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from datetime import datetime, timedelta

from cronplan.errors import AuthError, BadRequest, ProviderError
from cronplan.model import Arm, FireCall, HttpRequest
from cronplan.provider import Availability, ProviderSettings
from cronplan.timefmt import parse_ts


class FakeProvider:
    """A Provider held in a dict: one arm per job id, upsert by job id, no-op for the same dedup key."""

    calls_back = True
    token = "fake-token"

    def __init__(
        self,
        settings: ProviderSettings | None = None,
        *,
        name: str = "fake",
        calls_back: bool = True,
        arms: Iterable[Arm] = (),
        fail_calls: Collection[int] = (),
        fail_job_ids: Collection[str] = (),
        fail_rate: float = 0.0,
        seed: int = 0,
        fail_methods: Collection[str] = ("arm", "cancel"),
        fail_after_apply: bool = False,
        error: type[Exception] = ProviderError,
        latency: float = 0.0,
        availability: Availability | None = None,
    ) -> None:
        self.settings = settings
        self.name = settings.name if settings is not None else name
        self.calls_back = calls_back
        self.arms: dict[str, Arm] = {a.job_id: a for a in arms}
        self.fail_calls = set(fail_calls)
        self.fail_job_ids = set(fail_job_ids)
        self.fail_rate = fail_rate
        self.fail_methods = set(fail_methods)
        self.fail_after_apply = fail_after_apply
        self.error = error
        self.latency = latency
        self.availability = availability or Availability(True, "in memory")
        self.calls: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        self.log: list[tuple[str, str | None]] = []  # (method, job_id) of every call, in order
        self.writes = 0  # arm/cancel calls that changed the state
        self.closed = False
        self._faultable = 0
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._in_flight = 0
        self.max_in_flight = 0  # the highest number of concurrent calls seen (parallelism checks)

    # ------------------------------------------------------------------ fault injection

    def _enter(self, method: str, job_id: str | None) -> bool:
        """Count the call; True when it must fail."""
        with self._lock:
            self.calls[method] += 1
            self.log.append((method, job_id))
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            if method not in self.fail_methods:
                return False
            self._faultable += 1
            fail = (
                self._faultable in self.fail_calls
                or (job_id is not None and job_id in self.fail_job_ids)
                or (self.fail_rate > 0 and self._random.random() < self.fail_rate)
            )
            if fail:
                self.failures[method] += 1
            return fail

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _raise(self, method: str, job_id: str | None) -> None:
        raise self.error(f"fake provider: injected failure of {method}({job_id or ''})")

    def _call(self, method: str, job_id: str | None, change: Callable[[], bool]) -> None:
        fail = self._enter(method, job_id)
        try:
            if self.latency:
                time.sleep(self.latency)
            if fail and not self.fail_after_apply:
                self._raise(method, job_id)
            with self._lock:
                if change():
                    self.writes += 1
            if fail:
                self._raise(method, job_id)
        finally:
            self._leave()

    # ------------------------------------------------------------------ protocol

    def check(self) -> Availability:
        self._enter("check", None)
        self._leave()
        return self.availability

    def list_arms(self) -> list[Arm]:
        fail = self._enter("list_arms", None)
        try:
            if self.latency:
                time.sleep(self.latency)
            if fail:
                self._raise("list_arms", None)
            with self._lock:
                return sorted(self.arms.values(), key=lambda a: a.job_id)
        finally:
            self._leave()

    def arm(self, arm: Arm) -> None:
        def change() -> bool:
            old = self.arms.get(arm.job_id)
            if old is not None and old.dedup_key == arm.dedup_key:
                return False
            self.arms[arm.job_id] = Arm(
                arm.job_id, arm.fire_at, arm.callback_url, f"fake-{arm.dedup_key}"
            )
            return True

        self._call("arm", arm.job_id, change)

    def cancel(self, job_id: str) -> None:
        def change() -> bool:
            return self.arms.pop(job_id, None) is not None

        self._call("cancel", job_id, change)

    def verify(self, request: HttpRequest) -> FireCall:
        """Accepts ``Authorization: Bearer fake-token`` and a JSON body ``{job_id, fire_at}``."""
        self._enter("verify", None)
        self._leave()
        if request.headers.get("authorization") != f"Bearer {self.token}":
            raise AuthError("fake provider: missing or wrong bearer token")
        try:
            body = json.loads(request.body)
            return FireCall(job_id=str(body["job_id"]), fire_at=parse_ts(body["fire_at"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise BadRequest(f"fake provider: malformed fire body: {exc}") from None

    def close(self) -> None:
        self.closed = True

    # ------------------------------------------------------------------ helpers for tests

    def armed_at(self, job_id: str) -> datetime | None:
        arm = self.arms.get(job_id)
        return None if arm is None else arm.fire_at

    def reset_counters(self) -> None:
        with self._lock:
            self.calls.clear()
            self.failures.clear()
            self.log.clear()
            self.writes = 0
            self._faultable = 0
            self.max_in_flight = 0


class ManualClock:
    """A ``cronplan.clock.Clock`` the test sets or moves by hand (leases and grace without sleeping)."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)
