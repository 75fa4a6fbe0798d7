"""The applier: carry out a Plan through a provider, in parallel, idempotently.

Every arm/re-arm is an upsert by job id at the provider (the same dedup key twice changes nothing), so an
apply that was interrupted or partly failed converges when run again. Each action that succeeded is recorded
in the ledger as the job "as last applied"; failures are collected, never raised mid-way. A job that has no
applied definition yet is recorded just before its arm is made (and forgotten again if the arm fails), so a
fire the provider sends at once finds it applied. An ``update`` calls no provider: its job's new definition
is recorded, and its arm stays where it is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from cronplan.clock import Clock
from cronplan.errors import CronplanError
from cronplan.ledger import Ledger
from cronplan.model import Action, AppliedEntry, Arm, Job, Plan
from cronplan.provider import Provider

if TYPE_CHECKING:
    from concurrent.futures import Future

#: progress(done, total) — called from the applying thread after each action completes.
Progress = Callable[[int, int], None]

RECORD_BATCH = 256
RECORD_EVERY_SECONDS = 0.5
# Actions per transaction on a provider with bulk writes (the local provider). 100,000 arms one transaction
# each took 14 s, in batches of 5,000 about 2 s (benchmarks/apply_local.py).
BULK_BATCH = 5000


@runtime_checkable
class BulkProvider(Protocol):
    """A provider that writes many arms (or cancels) in one call, all or none (one transaction)."""

    def arm_many(self, arms: Iterable[Arm]) -> int: ...

    def cancel_many(self, job_ids: Iterable[str]) -> int: ...


@dataclass
class ApplyResult:
    done: list[Action] = field(default_factory=list)
    failed: list[tuple[Action, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def failed_actions(self) -> list[Action]:
        return [a for a, _ in self.failed]


def executable_actions(plan: Plan) -> list[Action]:
    """The actions that call the provider.

    A cancel of a duplicate arm is left out when the same job also has an arm/re-arm: the provider keeps one
    arm per job id, so that upsert already replaces the duplicates (and cancelling by job id afterwards
    would remove the arm just made).
    """
    upserted = {a.job_id for a in plan.actions if a.action in ("arm", "rearm")}
    return [
        a
        for a in plan.actions
        if a.action in ("arm", "rearm") or (a.action == "cancel" and a.job_id not in upserted)
    ]


def apply_plan(
    plan: Plan,
    provider: Provider,
    ledger: Ledger,
    jobs_by_id: Mapping[str, Job],
    *,
    clock: Clock,
    parallelism: int = 10,
    progress: Progress | None = None,
    record_definitions: bool = True,
) -> ApplyResult:
    """Execute ``plan``; return what was done and what failed (with a one-line reason each).

    ``clock`` stamps the ledger's ``applied_at`` (``--now`` pins it). ``record_definitions=False`` (a
    fire's re-arm, the ``fire --overdue`` backstop: they plan with the jobs *as applied*, read from the
    ledger) records only where jobs are armed, so an apply that recorded a new definition meanwhile stands.
    """
    todo = executable_actions(plan)
    updates = [a for a in plan.actions if a.action == "update"]
    result = ApplyResult()
    total = len(todo) + len(updates)
    if not total:
        return result
    workers = max(1, min(parallelism, len(todo) or 1))
    recorder = _Recorder(ledger, jobs_by_id, result, clock, record_definitions)
    fresh = _write_ahead(ledger, todo, jobs_by_id, result, clock) if record_definitions else set()
    todo = [a for a in todo if a not in result.failed_actions]
    for action in updates:  # nothing to call: the definition is recorded, the arm stays
        recorder.add(action)
    if progress is not None and updates:
        progress(recorder.buffered + len(result.done), total)
    outcomes = _Outcomes(recorder, result, progress, total, fresh)
    try:
        bulk = _bulk_of(provider)
        if bulk is not None:
            _apply_bulk(todo, bulk, outcomes)
        elif workers == 1:
            _apply_serial(todo, provider, outcomes)
        else:
            _apply_pooled(todo, provider, outcomes, workers)
    finally:
        recorder.flush()
    result.done.sort(key=lambda a: a.job_id)
    result.failed.sort(key=lambda f: f[0].job_id)
    return result


class _Outcomes:
    """What the three apply paths share: each action counted once as done or failed, progress reported.

    A cancel is by job id and idempotent, so one per job id is enough: a second one is done without a call.
    A failed arm of a job recorded ahead (``fresh``, see ``_write_ahead``) is undone in the ledger.
    """

    def __init__(
        self,
        recorder: _Recorder,
        result: ApplyResult,
        progress: Progress | None,
        total: int,
        fresh: set[str],
    ) -> None:
        self.recorder = recorder
        self.result = result
        self.progress = progress
        self.total = total
        self.fresh = fresh
        self.cancelled: set[str] = set()

    def needs_call(self, action: Action) -> bool:
        """False for a cancel of a job id already cancelled in this apply (counted done at once)."""
        if action.action != "cancel":
            return True
        if action.job_id in self.cancelled:
            self.result.done.append(action)
            return False
        self.cancelled.add(action.job_id)
        return True

    def succeeded(self, action: Action) -> None:
        self.recorder.add(action)

    def failed(self, action: Action, error: str) -> None:
        self.result.failed.append((action, error))
        if action.job_id in self.fresh:  # undo the write-ahead: the job stays not applied
            self.recorder.forget(action.job_id)

    def report(self) -> None:
        if self.progress is not None:
            result = self.result
            self.progress(
                len(result.done) + len(result.failed) + self.recorder.buffered, self.total
            )


def _apply_serial(todo: list[Action], provider: Provider, outcomes: _Outcomes) -> None:
    """One call at a time (a fire re-arming its job): no pool, no thread, no import to pay for."""
    for action in todo:
        if not outcomes.needs_call(action):
            continue
        try:
            _execute(provider, action)
        except Exception as exc:
            outcomes.failed(action, _describe(exc))
        else:
            outcomes.succeeded(action)
        outcomes.report()
        outcomes.recorder.maybe_flush()


def _apply_pooled(
    todo: list[Action], provider: Provider, outcomes: _Outcomes, workers: int
) -> None:
    """``workers`` provider calls at a time on a thread pool."""
    import queue  # lazy, like the pool: a fire's one re-arm never needs them
    from concurrent.futures import ThreadPoolExecutor

    recorder = outcomes.recorder
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cronplan-apply") as pool:
        pending: dict[Future[None], Action] = {}
        # Futures arrive here as they finish. concurrent.futures.wait() would register a waiter on every
        # pending future for each completion, and that main-thread work competes for the GIL with the
        # provider calls it is waiting on.
        finished: queue.SimpleQueue[Future[None]] = queue.SimpleQueue()
        todo_iter = iter(todo)

        def submit_next() -> bool:
            for action in todo_iter:
                if not outcomes.needs_call(action):
                    continue
                fut = pool.submit(_execute, provider, action)
                pending[fut] = action
                fut.add_done_callback(finished.put)
                return True
            return False

        for _ in range(workers * 2):
            if not submit_next():
                break
        while pending:
            try:
                fut = finished.get(timeout=RECORD_EVERY_SECONDS)
            except queue.Empty:
                recorder.maybe_flush()
                continue
            action = pending.pop(fut)
            error = _error_of(fut)
            if error is None:
                outcomes.succeeded(action)
            else:
                outcomes.failed(action, error)
            outcomes.report()
            submit_next()
            recorder.maybe_flush()


def _bulk_of(provider: Provider) -> BulkProvider | None:
    """``provider`` when its bulk writes do what its single ones do: ``arm_many`` and ``arm`` (and
    ``cancel_many`` and ``cancel``) come from the same class. A subclass that overrides only ``arm`` (to
    wrap or log each call) is applied one call per arm, as it expects."""
    if not isinstance(provider, BulkProvider):
        return None
    mro = type(provider).__mro__
    for one, many in (("arm", "arm_many"), ("cancel", "cancel_many")):
        owner_one = next((k for k in mro if one in vars(k)), None)
        owner_many = next((k for k in mro if many in vars(k)), None)
        if owner_one is not owner_many:
            return None
    return provider


def _apply_bulk(todo: list[Action], provider: BulkProvider, outcomes: _Outcomes) -> None:
    """Carry out ``todo`` BULK_BATCH actions at a time: one provider call for the arms of a batch and one
    for its cancels; a failed call fails the actions it carried (and undoes the write-ahead of ``fresh``
    jobs among them). The ledger records each batch at once."""
    outcomes.recorder.batch = BULK_BATCH
    for start in range(0, len(todo), BULK_BATCH):
        batch = todo[start : start + BULK_BATCH]
        upserts = [a for a in batch if a.action != "cancel"]
        cancels = [a for a in batch if a.action == "cancel" and outcomes.needs_call(a)]
        for actions in (upserts, cancels):
            if not actions:
                continue
            try:
                if actions is upserts:
                    provider.arm_many([a.after for a in actions if a.after is not None])
                else:
                    provider.cancel_many([a.job_id for a in actions])
            except Exception as exc:  # reported per action, like the other paths
                error = _describe(exc)
                for action in actions:
                    outcomes.failed(action, error)
                continue
            for action in actions:
                outcomes.succeeded(action)
        outcomes.report()


def _write_ahead(
    ledger: Ledger,
    todo: list[Action],
    jobs_by_id: Mapping[str, Job],
    result: ApplyResult,
    clock: Clock,
) -> set[str]:
    """Record jobs that have no applied definition yet *before* arming them; return their ids.

    The provider may fire an arm the moment it exists (a first occurrence due now, a catch-up armed at its
    past time). A fire reads the job as applied from the ledger; were the definition recorded only after
    the provider call, such a fire would be stale (``not applied``) and the arm consumed, leaving the job
    with no arm. Jobs already applied need no write-ahead: their previous definition answers the fire.
    A failed arm of such a job is undone (the job is forgotten again), so the ledger still only holds
    what was carried out.
    """
    arms = {
        a.job_id: a
        for a in todo
        if a.action in ("arm", "rearm") and a.after is not None and a.job_id in jobs_by_id
    }
    if not arms:
        return set()
    try:
        records = ledger.job_records(arms)
        fresh = [
            a
            for job_id, a in arms.items()
            if job_id not in records or records[job_id].applied_spec is None
        ]
        entries = [e for a in fresh if (e := _entry(a, jobs_by_id[a.job_id])) is not None]
        if entries:
            ledger.record_applied_many(entries, at=clock.now())
    except CronplanError as exc:
        error = f"recording the job in the ledger before arming it failed: {exc}"
        result.failed.extend((a, error) for a in arms.values())
        return set()
    return {a.job_id for a in fresh}


def _execute(provider: Provider, action: Action) -> None:
    if action.action in ("arm", "rearm"):
        assert action.after is not None
        provider.arm(action.after)
    elif action.action == "cancel":
        provider.cancel(action.job_id)


def _error_of(fut: Future[None]) -> str | None:
    exc = fut.exception()
    return None if exc is None else _describe(exc)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, CronplanError):
        return exc.message
    # A provider bug, not an expected failure: name its type so it can be reported.
    return f"{type(exc).__name__}: {exc}"


def _entry(action: Action, job: Job | None) -> AppliedEntry | None:
    """What the ledger records for a carried-out action: the job as applied, with its armed time."""
    if action.action in ("arm", "rearm") and job is not None and action.after is not None:
        return AppliedEntry(
            job.id, job.spec, job.digest, action.after.fire_at, action.after.callback_url
        )
    if action.action == "update" and job is not None:
        after = action.after  # the arm that stays (None: the job has none)
        if after is None:
            return AppliedEntry(job.id, job.spec, job.digest, None, None)
        return AppliedEntry(job.id, job.spec, job.digest, after.fire_at, after.callback_url)
    if action.action == "cancel":
        if job is None:
            return AppliedEntry(action.job_id, None, None, None, None)  # an orphan: forget it
        return AppliedEntry(job.id, job.spec, job.digest, None, None)
    return None


class _Recorder:
    """Records carried-out actions in the ledger in batches (one transaction per batch, not per arm).

    A batch is written every RECORD_BATCH actions or RECORD_EVERY_SECONDS, and always before apply returns;
    an action only counts as done once its record is written.
    """

    def __init__(
        self,
        ledger: Ledger,
        jobs_by_id: Mapping[str, Job],
        result: ApplyResult,
        clock: Clock,
        record_definitions: bool = True,
    ) -> None:
        self.ledger = ledger
        self.record_definitions = record_definitions
        self.clock = clock
        self.jobs_by_id = jobs_by_id
        self.result = result
        self.actions: list[Action] = []
        self.entries: list[AppliedEntry] = []
        self.last_flush = time.monotonic()
        self.batch = RECORD_BATCH

    @property
    def buffered(self) -> int:
        return len(self.actions)

    def add(self, action: Action) -> None:
        entry = _entry(action, self.jobs_by_id.get(action.job_id))
        self.actions.append(action)
        if entry is not None:
            self.entries.append(entry)
        self.maybe_flush()

    def forget(self, job_id: str) -> None:
        """Record ``job_id`` as not applied (undoing a write-ahead whose arm failed)."""
        self.entries.append(AppliedEntry(job_id, None, None, None, None))
        self.maybe_flush()

    def maybe_flush(self) -> None:
        due = time.monotonic() - self.last_flush >= RECORD_EVERY_SECONDS
        if len(self.actions) >= self.batch or due:
            self.flush()

    def flush(self) -> None:
        actions, entries = self.actions, self.entries
        self.actions, self.entries = [], []
        self.last_flush = time.monotonic()
        if not actions and not entries:
            return
        try:
            if entries and self.record_definitions:
                self.ledger.record_applied_many(entries, at=self.clock.now())
            elif entries:
                armed = [(e[0], e[3], e[4]) for e in entries if e[1] is not None]
                self.ledger.record_armed_many(armed, at=self.clock.now())
        except CronplanError as exc:
            error = f"applied at the provider, but recording in the ledger failed: {exc}"
            self.result.failed.extend((a, error) for a in actions)
            return
        self.result.done.extend(actions)
