"""The fire service behind ``cronplan serve``: fire requests and timer fires go through the same
claim -> run -> record -> re-arm pipeline (``cronplan/fire/``) on a pool of worker threads.

A fire request is answered on an answer thread: authenticate, decide, and claim through the group commit
(``cronplan/server/claims.py``); its run happens after the answer, on a worker, and waits while other fire
requests are being answered (docs/fire.md, "A burst of fires").

A timer fire that could not be handled (a transient error) is handed back to the timer loop, which
retries it with backoff until it is handled or its arm is gone: an arm is never dropped.

Shutdown: stop accepting, let running jobs finish within ``shutdown_timeout``, then stop the rest;
every claimed run ends with a record.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cronplan import fire as firing
from cronplan.errors import AuthError, BadRequest, CronplanError
from cronplan.model import Arm, FireCall, HttpRequest
from cronplan.server.claims import ClaimCommitter, group_claiming
from cronplan.server.guard import (
    LogLimiter,
)
from cronplan.timefmt import dedup_key

if TYPE_CHECKING:
    from cronplan.ledger import Ledger
    from cronplan.local.timer import TimerLoop
    from cronplan.project import Project
    from cronplan.provider import Provider

Log = Callable[[str], None]

DEFAULT_WORKERS = 16
#: Threads answering fire requests (authenticate, decide, wait for the shared claim commit): how many
#: claims one commit can carry. Waiting for a commit holds no CPU.
ANSWER_THREADS = 64
#: A run waits at most this long for the fire requests being answered to be done (answers first): in a
#: burst, job runs and re-arms would otherwise take the CPU (and the GIL) the answers need.
RUN_YIELD_S = 2.0


@dataclass
class _InFlight:
    claim: firing.Claim
    future: Future[None] | None = None
    started: bool = False
    #: A duplicate of this occurrence arrived while it ran: re-plan the job once the run is done.
    replan_after: bool = False


class FireService:
    """The fire pipeline shared by the HTTP endpoint and the timer loop, with its worker pool."""

    def __init__(
        self,
        rt: Project,
        *,
        verifier: Provider | None,
        arm_provider: Provider,
        log: Log,
        workers: int = DEFAULT_WORKERS,
        unavailable_reason: str | None = None,
    ) -> None:
        self.rt = rt
        self.verifier = verifier
        self.arm_provider = arm_provider
        self.log = log
        # Lines a client can cause again and again (a provider retrying during an outage) are limited.
        self.limiter = LogLimiter(log)
        self.unavailable_reason = unavailable_reason
        self.timer: TimerLoop | None = None
        # Set at the end of the shutdown grace: running commands are stopped.
        self.cancel = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cronplan-job")
        # Claims of concurrent fires share durable commits (group commit, cronplan/server/claims.py).
        self.committer = ClaimCommitter(_claims_ledger(rt))
        self.answers = ThreadPoolExecutor(
            max_workers=ANSWER_THREADS, thread_name_prefix="cronplan-answer"
        )
        self._claim_rt = group_claiming(rt, self.committer)
        self._lock = threading.Lock()
        self._inflight: dict[str, _InFlight] = {}
        self._accepting = True
        # Fire requests being answered now; runs yield to them (RUN_YIELD_S).
        self._answering = 0
        self._quiet = threading.Condition(self._lock)

    # ------------------------------------------------------------------ the HTTP fire

    def precheck(self, headers: Mapping[str, str]) -> tuple[int, dict[str, Any]] | None:
        """Turn a fire request away before its body is read: (status, JSON body), or None to go on.

        Cheap and local: shutting down, no verifier, or headers the provider says cannot be authentic
        (its optional ``verify_headers``: no bearer token, no signature headers). An unauthenticated
        client so never makes serve buffer a body.
        """
        if not self._accepting:
            return 503, {"error": "shutting down; retry later"}
        if self.verifier is None:
            reason = self.unavailable_reason or "unknown reason"
            error = (
                f"the configured provider is unavailable, so callbacks cannot be verified: {reason}"
            )
            return 503, {"error": error}
        check = getattr(self.verifier, "verify_headers", None)
        if check is None:
            return None
        try:
            check(headers)
        except AuthError as exc:
            return 401, {"error": exc.message}
        except CronplanError as exc:
            return 503, {"error": exc.message}
        return None

    def begin_answer(self) -> None:
        """A fire request is being answered: runs that start now wait for the answers (``RUN_YIELD_S``)."""
        with self._lock:
            self._answering += 1

    def end_answer(self) -> None:
        with self._lock:
            self._answering -= 1
            if not self._answering:
                self._quiet.notify_all()

    def handle_fire(self, request: HttpRequest) -> tuple[int, dict[str, Any], firing.Claim | None]:
        """Authenticate and claim one fire request: (status code, JSON body, the won claim or None).

        A won claim is durable (committed) when this returns: only then may the provider hear 202. The
        caller answers first and then passes the claim to ``submit`` so the job runs after the response.
        """
        if not self._accepting:
            return 503, {"error": "shutting down; retry later"}, None
        if self.verifier is None:
            reason = self.unavailable_reason or "unknown reason"
            error = (
                f"the configured provider is unavailable, so callbacks cannot be verified: {reason}"
            )
            return 503, {"error": error}, None
        try:
            call = firing.authenticate(self.verifier, request)
        except AuthError as exc:
            return 401, {"error": exc.message}, None
        except BadRequest as exc:
            return 400, {"error": exc.message}, None
        except CronplanError as exc:
            # The verifier could not decide (e.g. its key set is unreachable): let the provider retry.
            return 503, {"error": exc.message}, None
        try:
            claimed = firing.claim(self._claim_rt, call)
        except BadRequest as exc:
            # e.g. a fire_at too far ahead (FireRefused): retrying cannot help
            self.log(f"fire {dedup_key(call.job_id, call.fire_at)}: refused: {exc.message}")
            return 400, {"error": exc.message}, None
        except CronplanError as exc:
            key = dedup_key(call.job_id, call.fire_at)
            self.limiter.emit(
                f"http-claim:{type(exc).__name__}",
                f"fire {key}: cannot claim: {exc.message} (answered 503; the provider retries)",
            )
            return 503, {"error": exc.message}, None
        key = claimed.key
        if claimed.status != "claimed":
            self.log(f"{key}: {claimed.status} fire ignored: {claimed.reason}")
            if claimed.status == "duplicate" and claimed.job is not None and not self._defer(key):
                # An occurrence that already ran, delivered again: the arm it consumed may have replaced
                # the job's re-arm (an apply that armed a catch-up of this occurrence while its first
                # delivery was still in flight), leaving the job with no arm. Re-plan it: a no-op when
                # the job is armed where it should be. While the occurrence still runs here, the re-plan
                # waits for its end (``_defer``), so it cannot race the run's own re-arm.
                with contextlib.suppress(RuntimeError):  # the pool is shutting down
                    self._pool.submit(self._replan_after_duplicate, claimed)
            return 200, {"status": claimed.status, "dedup_key": key, "reason": claimed.reason}, None
        return 202, {"status": "accepted", "dedup_key": key}, claimed

    # ------------------------------------------------------------------ the timer's fire

    def fire_arm(self, arm: Arm) -> None:
        """Called by the timer loop for a due arm: claim on a worker, run there too."""
        if not self._accepting:
            return
        # A RuntimeError means the pool is shutting down: the arm stays and fires after a restart.
        with contextlib.suppress(RuntimeError):
            self._pool.submit(self._handle_arm, arm)

    def _handle_arm(self, arm: Arm) -> None:
        try:
            self._claim_and_run(arm)
        except Exception as exc:
            # A bug must not strand the arm on a worker: report it and try again later.
            self._retry(arm, f"internal error: {type(exc).__name__}: {exc}", kind="internal")

    def _claim_and_run(self, arm: Arm) -> None:
        """Handle one due arm; anything short of a verdict hands the arm back to the timer for a retry."""
        call = FireCall(arm.job_id, arm.fire_at)
        key = arm.dedup_key
        try:
            claimed = firing.claim(self._claim_rt, call)
        except Exception as exc:  # a transient error (ledger busy, jobs file unreadable) or a bug
            self._retry(arm, f"cannot claim: {_describe(exc)}", kind=type(exc).__name__)
            return
        if claimed.status == "claimed":
            with self._lock:
                accepting = self._accepting
                if accepting:
                    self._inflight[key] = _InFlight(claimed, started=True)
            if not accepting:
                # Claimed while shutdown began: record it rather than leave it half-done.
                self._record_not_started(claimed)
                return
            outcome = self._run(claimed)
            if outcome is None or outcome.rearm_error is not None:
                # The job has no next arm yet: the retry finds the claim taken and re-plans the job.
                self._retry(arm, "the job was not re-armed after its run", kind="rearm")
            else:
                self._handled(arm)
            return
        self.log(f"{key}: {claimed.status} fire ignored: {claimed.reason}")
        if claimed.status == "duplicate" and claimed.job is not None and not self._is_inflight(key):
            # Someone claimed this arm but never re-armed the job (a fire that died mid-way): move it on.
            _, _, error = firing.replan_job(
                self.rt, claimed.job, provider=self.arm_provider, list_arms=True
            )
            self._wake_timer()
            if error:
                self._retry(arm, f"re-arm after duplicate failed: {error}", kind="rearm")
                return
        self._handled(arm)

    def _replan_after_duplicate(self, claimed: firing.Claim) -> None:
        assert claimed.job is not None
        _, _, error = firing.replan_job(
            self.rt, claimed.job, provider=self.arm_provider, list_arms=True
        )
        if error:
            self.limiter.emit(
                "duplicate-rearm", f"{claimed.key}: re-arm after duplicate failed: {error}"
            )

    def _retry(self, arm: Arm, why: str, *, kind: str) -> None:
        """Hand ``arm`` back to the timer for another attempt; one log line per kind of failure a minute
        (an outage would otherwise log a line per arm per attempt)."""
        timer = self.timer
        if timer is None or not self._accepting:
            self.log(f"{arm.dedup_key}: {why}")
            return
        delay = timer.retry(arm)
        self.limiter.emit(f"timer-retry:{kind}", f"{arm.dedup_key}: {why}; retrying in {delay:g} s")

    def _handled(self, arm: Arm) -> None:
        if self.timer is not None:
            self.timer.handled(arm)

    # ------------------------------------------------------------------ running

    def submit(self, claimed: firing.Claim) -> None:
        """Run a won claim on a worker thread."""
        entry = _InFlight(claimed)
        with self._lock:
            self._inflight[claimed.key] = entry
            try:
                entry.future = self._pool.submit(self._run_submitted, claimed)
                return
            except RuntimeError:
                del self._inflight[claimed.key]
        # Shut down between the claim and here: record the run so it is not left dangling.
        self._record_not_started(claimed)

    def _run_submitted(self, claimed: firing.Claim) -> None:
        with self._lock:
            # Answers first: the claim is durable and answered; the run may wait a moment for the rest.
            self._quiet.wait_for(
                lambda: not self._answering or self.cancel.is_set(), timeout=RUN_YIELD_S
            )
            entry = self._inflight.get(claimed.key)
            if entry is not None:
                entry.started = True
        self._run(claimed)

    def _run(self, claimed: firing.Claim) -> firing.FireOutcome | None:
        key = claimed.key
        try:
            outcome = firing.run_claimed(
                self.rt,
                claimed,
                provider=self.arm_provider,
                cancel=self.cancel,
                on_rearmed=self._wake_timer,
            )
            self.log(outcome.describe())
            return outcome
        except Exception as exc:  # a worker must report, never die silently
            self.log(f"{key}: internal error while running: {type(exc).__name__}: {exc}")
            return None
        finally:
            with self._lock:
                entry = self._inflight.pop(key, None)
            if entry is not None and entry.replan_after:
                self._replan_after_duplicate(claimed)
            self._wake_timer()

    def _defer(self, key: str) -> bool:
        """True when ``key`` runs here now: its run re-plans the job when it ends (a duplicate came)."""
        with self._lock:
            entry = self._inflight.get(key)
            if entry is None:
                return False
            entry.replan_after = True
            return True

    def _is_inflight(self, key: str) -> bool:
        with self._lock:
            return key in self._inflight

    def _wake_timer(self) -> None:
        if self.timer is not None:
            self.timer.wake()

    def in_flight(self) -> int:
        with self._lock:
            return len(self._inflight)

    def _record_not_started(self, claimed: firing.Claim) -> None:
        from cronplan.runner import RunResult

        now = self.rt.clock.now()
        result = RunResult(
            "failed", None, "", "not run: cronplan serve was shutting down", now, now
        )
        try:
            firing.record_result(self.rt, claimed.call, result)
        except CronplanError as exc:
            self.log(f"{claimed.key}: could not record the unstarted run: {exc.message}")
            return
        if claimed.job is not None:
            firing.replan_job(self.rt, claimed.job, provider=self.arm_provider)
        self.log(f"{claimed.key}: not run (shutting down); recorded as failed")

    # ------------------------------------------------------------------ shutdown

    def stop_accepting(self) -> None:
        with self._lock:
            self._accepting = False

    def shutdown(self, timeout: float) -> None:
        """Let running jobs finish within ``timeout``; stop the rest; record whatever was claimed."""
        self.stop_accepting()
        with self._lock:
            entries = list(self._inflight.values())
        # Queued runs that have not started are not started now: each is recorded as failed.
        for entry in entries:
            if entry.future is not None and entry.future.cancel():
                with self._lock:
                    self._inflight.pop(entry.claim.key, None)
                self._record_not_started(entry.claim)
        if not self._wait_idle(timeout):
            running = self.in_flight()
            self.log(f"shutdown: stopping {running} job(s) still running after {timeout:g} s")
            self.cancel.set()
            from cronplan.runner import KILL_GRACE_SECONDS

            self._wait_idle(KILL_GRACE_SECONDS + 3.0)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.answers.shutdown(wait=True, cancel_futures=True)
        self.committer.close()
        if self.committer.ledger is not self.rt.ledger:
            self.committer.ledger.close()
        with self._lock:
            leftovers = list(self._inflight.values())
            self._inflight.clear()
        for entry in leftovers:
            # A run that would not stop (an HTTP job stuck past its timeout): its claim gets an end anyway.
            from cronplan.runner import RunResult

            now = self.rt.clock.now()
            result = RunResult(
                "failed",
                None,
                "",
                "interrupted: cronplan serve shut down before it finished",
                now,
                now,
            )
            try:
                firing.record_result(self.rt, entry.claim.call, result)
            except CronplanError as exc:
                self.log(f"{entry.claim.key}: could not record the interrupted run: {exc.message}")

    def _wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.in_flight():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True


def _claims_ledger(rt: Project) -> Ledger:
    """The ledger handle the claim writer commits through.

    SQLite: a connection of its own. One connection serves one transaction at a time, so on the shared one
    every read of the fire path and every write of a run would wait for each durable commit of a batch;
    WAL lets the readers go on while the claim writer syncs. PostgreSQL's pool already gives that.
    """
    from cronplan.ledger.sqlite import SqliteLedger

    ledger = rt.ledger
    if isinstance(ledger, SqliteLedger) and ledger.path != ":memory:":
        return SqliteLedger(ledger.path)
    return ledger


def _describe(exc: BaseException) -> str:
    if isinstance(exc, CronplanError):
        return exc.message
    return f"internal error: {type(exc).__name__}: {exc}"


__all__ = ["DEFAULT_WORKERS", "FireService", "Log"]
