"""``cronplan serve``: the HTTP callback endpoint, and the local provider's timer loop.

The HTTP side is a minimal raw ASGI application served by uvicorn (see docs/fire.md for why):
``POST /api/cron/fire`` and ``GET /healthz``, plus the observability routes ``GET /``, ``GET /api/status``
and ``GET /metrics`` (``cronplan/status_routes.py``, docs/observability.md). A fire request is authenticated by the provider, claimed in the
ledger, and answered ``202`` only once the claim is durable; the job then runs on a worker thread, after
the response. Duplicates and stale fires are ``200`` no-ops, bad authentication ``401``, a malformed body
``400``.

With the ``local`` provider (or when the configured provider is unavailable and serve falls back to it)
the timer loop fires arms through the same claim → run → record → re-arm pipeline.

A timer fire that could not be handled (a transient error) is handed back to the timer loop, which
retries it with backoff until it is handled or its arm is gone: an arm is never dropped.

Against hostile clients (``cronplan/serve_guard.py``): a cap on connections, head and body timeouts, byte
caps, the provider's header check before any body is read, and rate-limited error lines.

Shutdown (SIGTERM/SIGINT): stop accepting requests and stop the timer, let running jobs finish within
``shutdown_timeout``, then stop the rest; every claimed run ends with a record.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cronplan import fire as firing
from cronplan.errors import AuthError, BadRequest, CronplanError, ProviderUnavailable
from cronplan.model import Arm, FireCall, HttpRequest
from cronplan.serve_guard import (
    BACKLOG,
    BODY_TIMEOUT_S,
    KEEP_ALIVE_S,
    MAX_BODY_BYTES,
    MAX_BUFFERED_BYTES,
    MAX_HEAD_BYTES,
    ConnectionGuard,
    LimitedLogHandler,
    LogLimiter,
    connection_cap,
    guarded_h11,
    raise_nofile_limit,
)
from cronplan.status_routes import STATUS_PATHS, StatusRoutes
from cronplan.timefmt import dedup_key

if TYPE_CHECKING:
    from cronplan.provider import Provider
    from cronplan.runtime import Runtime
    from cronplan.timer import TimerLoop

Log = Callable[[str], None]

FIRE_PATH = "/api/cron/fire"
HEALTH_PATH = "/healthz"
DEFAULT_WORKERS = 16


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
        rt: Runtime,
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
        self._lock = threading.Lock()
        self._inflight: dict[str, _InFlight] = {}
        self._accepting = True

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
            claimed = firing.claim(self.rt, call)
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
            claimed = firing.claim(self.rt, call)
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


def _describe(exc: BaseException) -> str:
    if isinstance(exc, CronplanError):
        return exc.message
    return f"internal error: {type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------- ASGI


class FireApp:
    """The raw ASGI application: the fire and health routes (JSON answers) and the status routes; blocking
    work on threads."""

    def __init__(
        self,
        service: FireService,
        *,
        provider_name: str,
        timer: bool,
        status: StatusRoutes | None = None,
    ) -> None:
        self.service = service
        self.provider_name = provider_name
        self.timer = timer
        self.status = status  # GET /, /api/status, /metrics (cronplan/status_routes.py)
        self._buffered = 0  # request body bytes held right now, all requests together

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path, method = scope.get("path", ""), scope.get("method", "GET").upper()
        if path == HEALTH_PATH:
            if method not in ("GET", "HEAD"):
                await _json(send, 405, {"error": "use GET"}, allow="GET")
                return
            await _json(
                send,
                200,
                {
                    "status": "ok",
                    "provider": self.provider_name,
                    "timer": self.timer,
                    "fallback": self.service.unavailable_reason is not None,
                    "in_flight": self.service.in_flight(),
                },
            )
            return
        if self.status is not None and path in STATUS_PATHS:
            await self._status(scope, send, path, method)
            return
        if path != FIRE_PATH:
            await _json(send, 404, {"error": f"no such path; fires go to POST {FIRE_PATH}"})
            return
        if method != "POST":
            await _json(send, 405, {"error": "use POST"}, allow="POST", close=True)
            return
        headers = _headers(scope)
        # Everything that can turn the request away is decided before a byte of its body is read; the
        # connection is then closed, so an unread body is never buffered or drained.
        refusal = self.service.precheck(headers)
        if refusal is not None:
            await _json(send, *refusal, close=True)
            return
        length = headers.get("content-length", "0").strip()
        if not length.isdigit():
            await _json(send, 400, {"error": "bad Content-Length"}, close=True)
            return
        if int(length) > MAX_BODY_BYTES:
            await _json(
                send, 413, {"error": f"request body over {MAX_BODY_BYTES} bytes"}, close=True
            )
            return
        held = 0
        try:
            body = await self._read_body(receive)
            if isinstance(body, tuple):
                await _json(send, body[0], {"error": body[1]}, close=True)
                return
            held = len(body)
            await self._fire(
                send, HttpRequest(method=method, path=path, headers=headers, body=body)
            )
        finally:
            self._buffered -= held

    async def _read_body(self, receive: Any) -> bytes | tuple[int, str]:
        """The request body, or (status, error): read within BODY_TIMEOUT_S, within the byte caps.

        The bytes of a body returned count towards ``MAX_BUFFERED_BYTES`` (all requests at once) until
        the caller releases them after its answer.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BODY_TIMEOUT_S
        chunks: list[bytes] = []
        size = 0
        refusal: tuple[int, str] | None = None
        try:
            while True:
                remaining = deadline - loop.time()
                try:
                    if remaining <= 0:
                        raise asyncio.TimeoutError
                    message = await asyncio.wait_for(receive(), remaining)
                except asyncio.TimeoutError:
                    refusal = 408, f"request body not received within {BODY_TIMEOUT_S:g} s"
                    break
                if message["type"] == "http.disconnect":
                    break
                chunk = message.get("body", b"")
                if size + len(chunk) > MAX_BODY_BYTES:
                    refusal = 413, f"request body over {MAX_BODY_BYTES} bytes"
                    break
                if self._buffered + len(chunk) > MAX_BUFFERED_BYTES:
                    refusal = 503, "serve is reading too many request bodies at once; retry later"
                    break
                self._buffered += len(chunk)
                size += len(chunk)
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
        except BaseException:  # cancelled (the server stopping): give the bytes back
            self._buffered -= size
            raise
        if refusal is not None:
            self._buffered -= size
            return refusal
        return b"".join(chunks)

    async def _fire(self, send: Any, request: HttpRequest) -> None:
        loop = asyncio.get_running_loop()
        try:
            status, doc, claimed = await loop.run_in_executor(
                None, self.service.handle_fire, request
            )
        except (
            Exception
        ) as exc:  # a bug: answer 500 (the provider retries) and say so, no traceback
            self.service.limiter.emit(
                f"fire-internal:{type(exc).__name__}",
                f"fire request: internal error: {type(exc).__name__}: {exc}",
            )
            await _json(send, 500, {"error": "internal error; see the cronplan serve log"})
            return
        try:
            await _json(send, status, doc)
        finally:
            # The claim is taken whatever became of the response: the job must run (or be recorded).
            if claimed is not None:
                self.service.submit(claimed)

    async def _status(self, scope: dict[str, Any], send: Any, path: str, method: str) -> None:
        assert self.status is not None
        client = scope.get("client")
        refused = self.status.allowed(_headers(scope), client[0] if client else None)
        if refused == 401:
            await _json(send, 401, {"error": "a bearer token is required"}, auth=True)
            return
        if refused is not None:
            await _json(send, 404, {"error": f"no such path; fires go to POST {FIRE_PATH}"})
            return
        if method not in ("GET", "HEAD"):
            await _json(send, 405, {"error": "use GET"}, allow="GET")
            return
        loop = asyncio.get_running_loop()
        try:
            code, headers, body = await loop.run_in_executor(None, self.status.respond, path)
        except CronplanError as exc:
            await _json(send, 503, {"error": exc.message})
            return
        except Exception as exc:  # a bug: answer 500 and say so in the log, no traceback
            self.service.log(f"GET {path}: internal error: {type(exc).__name__}: {exc}")
            await _json(send, 500, {"error": "internal error; see the cronplan serve log"})
            return
        headers = [
            *headers,
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
        ]
        await send({"type": "http.response.start", "status": code, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})


def _headers(scope: dict[str, Any]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _json(
    send: Any,
    status: int,
    doc: dict[str, Any],
    *,
    allow: str | None = None,
    auth: bool = False,
    close: bool = False,
) -> None:
    payload = json.dumps(doc, sort_keys=True).encode("utf-8") + b"\n"
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    if allow:
        headers.append((b"allow", allow.encode()))
    if auth:
        headers.append((b"www-authenticate", b"Bearer"))
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


# --------------------------------------------------------------------------- serve


def _bind(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise CronplanError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    family, socktype, proto, _, addr = infos[0]
    sock = socket.socket(family, socktype, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise CronplanError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def _arm_locally(rt: Runtime, local: Provider, log: Log) -> None:
    """The fallback: plan the jobs as applied (ledger) against the local provider and apply, so every
    applied job has a trigger. jobs.json is not read: apply stays the only door to production."""
    from cronplan.applier import apply_plan
    from cronplan.fire import applied_job
    from cronplan.planner import plan

    records = rt.ledger.job_records()
    jobs = [
        job
        for record in records.values()
        if (job := applied_job(record, default_tz=rt.config.timezone)) is not None
    ]
    the_plan = plan(
        jobs,
        local.list_arms(),
        records,
        rt.clock.now(),
        provider=local.name,
        callback_url=None,
        allow_empty=True,
    )
    result = apply_plan(
        the_plan,
        local,
        rt.ledger,
        {j.id: j for j in jobs},
        clock=rt.clock,
        record_definitions=False,
    )
    s = the_plan.summary
    log(
        f"fallback: armed the applied jobs on the local provider ({s.arm} to arm, {s.rearm} re-armed, "
        f"{s.cancel} cancelled, {s.skip} unchanged)"
    )
    for action, why in result.failed:
        log(f"fallback: {action.action} {action.job_id} FAILED: {why}")


class _AppliedWatcher:
    """In fallback mode an apply made elsewhere (another machine on a shared ledger) changes the applied
    jobs without touching the local store: re-arm them locally when the ledger changed.

    The ledger's serial is one cheap read, checked at most every ``every_s``; it also moves with every
    fire, so a busy fallback re-plans about once a second (the fallback is a stop-gap, not the normal mode).
    """

    def __init__(self, rt: Runtime, local: Provider, log: Log, *, every_s: float = 1.0) -> None:
        self.rt = rt
        self.local = local
        self.log = log
        self.every_s = every_s
        self.stamp = self._stamp()
        self.next_check = time.monotonic() + every_s

    def _stamp(self) -> int | None:
        try:
            return self.rt.ledger.serial()
        except CronplanError:
            return None

    def __call__(self) -> None:
        now = time.monotonic()
        if now < self.next_check:
            return
        self.next_check = now + self.every_s
        stamp = self._stamp()
        if stamp == self.stamp:
            return
        try:
            _arm_locally(self.rt, self.local, self.log)
        except CronplanError as exc:
            self.log(f"fallback: the applied jobs changed but could not be armed: {exc.message}")
        self.stamp = self._stamp()  # our own apply moved it too


def _route_library_logs(limiter: LogLimiter, *, verbose: int, log: Log) -> Callable[[], None]:
    """Send uvicorn's and asyncio's log records through ``limiter``, one line each; return an undo."""
    limited = LimitedLogHandler(limiter, tracebacks=verbose >= 2)
    saved: list[tuple[logging.Logger, list[logging.Handler], bool, int]] = []
    levels = {
        "uvicorn": logging.INFO if verbose else logging.WARNING,
        "uvicorn.error": logging.INFO if verbose else logging.WARNING,
        "uvicorn.access": logging.INFO,
        "asyncio": logging.WARNING,
    }
    for name, level in levels.items():
        logger = logging.getLogger(name)
        saved.append((logger, list(logger.handlers), logger.propagate, logger.level))
        logger.setLevel(level)
    for name in ("uvicorn", "asyncio"):
        logger = logging.getLogger(name)
        logger.handlers = [limited]
        logger.propagate = False
    access = logging.getLogger("uvicorn.access")
    access.propagate = False
    # Access lines are wanted only with -v, and then every one of them (they are not errors).
    access.handlers = [_LineHandler(log)] if verbose else []

    def undo() -> None:
        for logger, handlers, propagate, level in saved:
            logger.handlers = handlers
            logger.propagate = propagate
            logger.setLevel(level)

    return undo


class _LineHandler(logging.Handler):
    """A library's log records as plain lines on serve's log (uvicorn's access log with -v)."""

    def __init__(self, log: Log) -> None:
        super().__init__()
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.log(f"serve: {record.getMessage()}")
        except Exception:
            self.handleError(record)


def serve(
    rt: Runtime,
    *,
    host: str = "127.0.0.1",
    port: int = 8787,
    shutdown_timeout: float = 30.0,
    log: Log,
    warn: Log | None = None,
    verbose: int = 0,
    workers: int = DEFAULT_WORKERS,
) -> int:
    """Run until SIGTERM/SIGINT; return the exit code (0 after SIGTERM, 130 after SIGINT).

    Raises ``CronplanError`` when it cannot start (port in use, bad config).
    """
    import uvicorn

    from cronplan.timer import TimerLoop

    # Fires run the jobs as applied (from the ledger): serving needs no jobs.json, only the config and
    # the ledger (a stateless instance); so does the fallback below.
    rt.ledger.lineage()  # open (and create) the ledger before serving: claims must not fail on first use
    verifier: Provider | None
    unavailable: str | None = None
    try:
        verifier = rt.provider
        arm_provider = verifier
    except ProviderUnavailable as exc:
        unavailable = exc.message
        verifier = None
        arm_provider = rt.local_provider()
        loud = warn or log  # the fallback warning is shown even with -q
        banner = "!" * 78
        loud(banner)
        loud(
            f"WARNING: the configured provider {rt.config.provider!r} is unavailable: {exc.message}"
        )
        loud("WARNING: falling back to the LOCAL provider and its timer loop so jobs keep firing.")
        loud("WARNING: fire requests over HTTP are refused (503) until the provider is fixed.")
        loud(banner)
    use_timer = arm_provider.name == "local"

    service = FireService(
        rt,
        verifier=verifier,
        arm_provider=arm_provider,
        log=log,
        workers=workers,
        unavailable_reason=unavailable,
    )
    if unavailable is not None:
        try:
            _arm_locally(rt, arm_provider, log)
        except CronplanError as exc:
            log(f"fallback: could not arm the applied jobs locally: {exc.message}")

    sock = _bind(host, port)
    bound_port = sock.getsockname()[1]
    status = StatusRoutes(
        rt,
        bind_host=host,
        provider_name=arm_provider.name,
        token_env=rt.config.status_token_env,
        environ=rt.environ,
    )
    if status.problem():
        (warn or log)(f"WARNING: {status.problem()}")
    app = FireApp(service, provider_name=arm_provider.name, timer=use_timer, status=status)
    # Hostile clients (docs/fire.md, "Limits"): file descriptors to spare, a cap on connections below
    # them, timeouts on heads and bodies, and library log lines limited like our own.
    nofile = raise_nofile_limit()
    cap = connection_cap(nofile)
    guard = ConnectionGuard(max_connections=cap, limiter=service.limiter)
    restore_logging = _route_library_logs(service.limiter, verbose=verbose, log=log)
    config = uvicorn.Config(
        app,
        http=guarded_h11(guard),
        log_config=None,
        log_level=None,
        access_log=bool(verbose),
        lifespan="off",
        timeout_graceful_shutdown=5,
        timeout_keep_alive=KEEP_ALIVE_S,
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        # A backstop behind the guard's cap (which closes idle connections first): requests beyond it
        # get uvicorn's own 503.
        limit_concurrency=cap + 64,
        backlog=BACKLOG,
        server_header=False,
    )
    server = uvicorn.Server(config)
    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, _frame: Any) -> None:
        received.append(signum)
        if len(received) > 1:
            service.cancel.set()  # a second signal: stop running jobs now
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    http_thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="cronplan-http", daemon=True
    )
    timer: TimerLoop | None = None
    try:
        http_thread.start()
        deadline = time.monotonic() + 30
        while not server.started and http_thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not server.started:
            raise CronplanError(f"the HTTP server did not start on {host}:{bound_port}")
        if use_timer:
            local = arm_provider
            watcher = _AppliedWatcher(rt, local, log) if unavailable is not None else None
            timer = TimerLoop(
                local,  # type: ignore[arg-type]
                service.fire_arm,
                on_error=log,
                on_idle=watcher,
                clock=rt.clock.now,
            )
            service.timer = timer
            timer.start()
        mode = "with the local timer loop" if use_timer else f"for provider {arm_provider.name!r}"
        log(f"cronplan serve: listening on http://{host}:{bound_port} {mode} (POST {FIRE_PATH})")
        while not stop.wait(0.5):
            if not http_thread.is_alive():
                log("cronplan serve: the HTTP server stopped unexpectedly; shutting down")
                break
    finally:
        log("cronplan serve: shutting down")
        service.stop_accepting()
        if timer is not None:
            timer.stop()
        server.should_exit = True
        http_thread.join(10)
        service.shutdown(shutdown_timeout)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
        restore_logging()
        log("cronplan serve: stopped")
    return 130 if received and received[0] == signal.SIGINT else 0


__all__ = ["FIRE_PATH", "HEALTH_PATH", "FireApp", "FireService", "serve"]
