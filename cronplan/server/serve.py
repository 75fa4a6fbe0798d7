"""``serve()``: bind, start uvicorn with the guards, the local timer loop when the provider is local
(or unavailable: the fallback), and stop cleanly on SIGTERM/SIGINT (docs/fire.md)."""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cronplan.errors import CronplanError, ProviderUnavailable
from cronplan.server.app import FIRE_PATH, FireApp
from cronplan.server.guard import (
    BACKLOG,
    KEEP_ALIVE_S,
    MAX_HEAD_BYTES,
    ConnectionGuard,
    LimitedLogHandler,
    LogLimiter,
    connection_cap,
    guarded_h11,
    raise_nofile_limit,
)
from cronplan.server.service import DEFAULT_WORKERS, FireService, Log
from cronplan.server.status_routes import StatusRoutes

if TYPE_CHECKING:
    from cronplan.local.timer import TimerLoop
    from cronplan.project import Project
    from cronplan.provider import Provider

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


def _arm_locally(rt: Project, local: Provider, log: Log) -> None:
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

    def __init__(self, rt: Project, local: Provider, log: Log, *, every_s: float = 1.0) -> None:
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
    rt: Project,
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

    # Fires run the jobs as applied (from the ledger): serving needs no jobs.json, only the config and
    # the ledger (a stateless instance); so does the fallback below.
    rt.ledger.lineage()  # open (and create) the ledger before serving: claims must not fail on first use
    verifier, arm_provider, unavailable = _providers(rt, warn or log)
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
    server = uvicorn.Server(_uvicorn_config(app, guard, cap, verbose=verbose))
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
            timer = _start_timer(rt, service, arm_provider, log, fallback=unavailable is not None)
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


def _providers(rt: Project, loud: Log) -> tuple[Provider | None, Provider, str | None]:
    """The provider that verifies callbacks (None when unavailable), the one that arms, and why not."""
    try:
        provider = rt.provider
        return provider, provider, None
    except ProviderUnavailable as exc:
        banner = "!" * 78  # the fallback warning is shown even with -q
        loud(banner)
        loud(
            f"WARNING: the configured provider {rt.config.provider!r} is unavailable: {exc.message}"
        )
        loud("WARNING: falling back to the LOCAL provider and its timer loop so jobs keep firing.")
        loud("WARNING: fire requests over HTTP are refused (503) until the provider is fixed.")
        loud(banner)
        return None, rt.local_provider(), exc.message


def _uvicorn_config(app: FireApp, guard: ConnectionGuard, cap: int, *, verbose: int) -> Any:
    import uvicorn

    return uvicorn.Config(
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
        # get uvicorn's own 503. uvicorn counts a connection the guard has just closed until its
        # connection_lost runs on a later turn of the loop, and one turn may accept a whole backlog of new
        # connections, so the backstop sits a backlog above the cap: a burst of reconnects must not turn
        # /healthz or a callback away while the guard still has room.
        limit_concurrency=cap + BACKLOG,
        backlog=BACKLOG,
        server_header=False,
    )


def _start_timer(
    rt: Project, service: FireService, local: Provider, log: Log, *, fallback: bool
) -> TimerLoop:
    from cronplan.local.timer import TimerLoop

    watcher = _AppliedWatcher(rt, local, log) if fallback else None
    timer = TimerLoop(
        local,  # type: ignore[arg-type]
        service.fire_arm,
        on_error=log,
        on_idle=watcher,
        clock=rt.clock.now,
    )
    service.timer = timer
    timer.start()
    return timer


__all__ = ["serve"]
