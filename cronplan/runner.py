"""Run one occurrence of a job: its ``command``, its ``http`` request, or the configured runner.

Nothing here goes through a shell: a command is an argv list handed to ``exec`` as is, and the runner gets
the job as JSON on stdin, so no job field is ever parsed as shell syntax.

A command runs in its own session (a new process group) so that a timeout, or a cancel from ``serve``'s
shutdown, can stop it together with everything it spawned. Its stdout and stderr share one pipe (so the
tail keeps their interleaving) which is read as it is produced, keeping only the last ``tail_bytes``.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from cronplan.clock import Clock, Stopwatch
from cronplan.model import CommandAction, HttpAction, Job
from cronplan.timefmt import format_ts

#: How much of a job's output (stdout and stderr together) is kept, from its end.
TAIL_BYTES = 8 * 1024
#: Timeout for jobs run by the configured runner (they have no ``timeout_seconds`` of their own).
RUNNER_TIMEOUT_SECONDS = 3600.0
#: Between SIGTERM and SIGKILL of a timed-out (or cancelled) process group.
KILL_GRACE_SECONDS = 2.0
#: After the main process exits, how long to keep reading output that its leftover children still write.
LINGER_SECONDS = 1.0

RunStatusLiteral = Literal["succeeded", "failed"]


@dataclass(frozen=True)
class RunResult:
    """What became of one run. For an ``http`` action ``exit_code`` holds the HTTP status code."""

    status: RunStatusLiteral
    exit_code: int | None
    output_tail: str
    error: str | None
    started_at: datetime
    finished_at: datetime

    @property
    def duration_s(self) -> float:
        return round((self.finished_at - self.started_at).total_seconds(), 3)


class _Tail:
    """The last ``limit`` bytes written, in bounded memory however much is written."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.buf = bytearray()
        self.dropped = 0

    def add(self, data: bytes) -> None:
        self.buf += data
        # Trim only once the buffer is twice the limit, so trimming stays amortised O(1) per byte.
        if len(self.buf) > 2 * self.limit:
            cut = len(self.buf) - self.limit
            self.dropped += cut
            del self.buf[:cut]

    def text(self) -> str:
        data = bytes(self.buf[-self.limit :]) if self.limit else b""
        dropped = self.dropped + len(self.buf) - len(data)
        text = data.decode("utf-8", errors="replace")
        if dropped:
            # A cut can land inside a multi-byte character; the replacement char marks it honestly.
            text = f"[... {dropped} earlier bytes dropped ...]\n" + text
        return text


def run_job(
    job: Job,
    *,
    runner_argv: Sequence[str] | None,
    fire_at: datetime,
    clock: Clock,
    base_dir: str | Path | None = None,
    cancel: threading.Event | None = None,
    tail_bytes: int = TAIL_BYTES,
    environ: Mapping[str, str] | None = None,
) -> RunResult:
    """Run ``job`` for the occurrence ``fire_at`` and report the outcome; never raises for a job failure.

    ``base_dir`` resolves a relative ``cwd`` (and is the runner's working directory); ``cancel``, when set
    while the job runs, stops it like a timeout does (``serve`` uses it on shutdown). ``clock`` stamps the
    start; the end is the start plus the measured run time (docs/planning.md, "The clock"). ``environ`` is the
    environment the job starts from (``Project.job_environ()``); by default the process's, as the
    configuration's ``job_env`` says, without cronplan's secret variables (``cronplan.jobenv``).
    """
    started = Stopwatch(clock)
    action = job.action
    if isinstance(action, CommandAction):
        return _run_command(
            list(action.argv),
            env=_job_env(job, fire_at, action.env, environ),
            cwd=_resolve_cwd(action.cwd, base_dir),
            timeout=action.timeout_seconds,
            stdin=None,
            started=started,
            cancel=cancel,
            tail_bytes=tail_bytes,
        )
    if isinstance(action, HttpAction):
        return _run_http(action, started=started, tail_bytes=tail_bytes)
    if not runner_argv:
        return RunResult(
            "failed",
            None,
            "",
            f"job {job.id!r} has no command or http action and no runner is configured "
            "(set `runner:` in cronplan.yaml to an argv that reads the job JSON on stdin)",
            started.started,
            started.now(),
        )
    payload = dict(job.raw)
    payload["fire_at"] = format_ts(fire_at)
    return _run_command(
        list(runner_argv),
        env=_job_env(job, fire_at, {}, environ),
        cwd=str(base_dir) if base_dir is not None else None,
        timeout=RUNNER_TIMEOUT_SECONDS,
        stdin=json.dumps(payload, ensure_ascii=False, default=str).encode("utf-8"),
        started=started,
        cancel=cancel,
        tail_bytes=tail_bytes,
    )


def _job_env(
    job: Job, fire_at: datetime, extra: Mapping[str, str], base: Mapping[str, str] | None
) -> dict[str, str]:
    """cronplan's environment as ``job_env`` says, never with its secret variables (cronplan.jobenv)."""
    from cronplan.jobenv import base_environ

    env = base_environ() if base is None else dict(base)
    env["CRONPLAN_JOB_ID"] = job.id
    env["CRONPLAN_FIRE_AT"] = format_ts(fire_at)
    env.update({str(k): str(v) for k, v in extra.items()})
    return env


def _resolve_cwd(cwd: str | None, base_dir: str | Path | None) -> str | None:
    if cwd is None:
        return None
    path = Path(cwd).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return str(path)


# --------------------------------------------------------------------------- command


def _run_command(
    argv: list[str],
    *,
    env: dict[str, str],
    cwd: str | None,
    timeout: float,
    stdin: bytes | None,
    started: Stopwatch,
    cancel: threading.Event | None,
    tail_bytes: int,
) -> RunResult:
    tail = _Tail(tail_bytes)
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )
    except (OSError, ValueError) as exc:
        return RunResult(
            "failed", None, "", _spawn_error(argv, cwd, exc), started.started, started.now()
        )

    if stdin is not None:
        # A separate writer so a runner that never reads stdin cannot block us (or we it).
        threading.Thread(
            target=_feed, args=(proc, stdin), daemon=True, name="cronplan-stdin"
        ).start()

    stopped_why = _pump(proc, tail, timeout=timeout, cancel=cancel)
    code = proc.returncode
    finished = started.now()
    if stopped_why is not None:
        return RunResult("failed", code, tail.text(), stopped_why, started.started, finished)
    if code == 0:
        return RunResult("succeeded", 0, tail.text(), None, started.started, finished)
    if code is not None and code < 0:
        error = f"killed by signal {_signame(-code)}"
    else:
        error = f"exited with status {code}"
    return RunResult("failed", code, tail.text(), error, started.started, finished)


def _feed(proc: subprocess.Popen[bytes], data: bytes) -> None:
    assert proc.stdin is not None
    try:
        proc.stdin.write(data)
    except (BrokenPipeError, OSError):
        pass  # the runner exited or closed stdin without reading it all; its exit status tells the story
    finally:
        with contextlib.suppress(OSError):
            proc.stdin.close()


# One select loop over stdout, stderr, the timeout and the cancel event: its states belong together.
def _pump(  # noqa: C901, PLR0912
    proc: subprocess.Popen[bytes],
    tail: _Tail,
    *,
    timeout: float,
    cancel: threading.Event | None,
) -> str | None:
    """Read output until the process exits (and its pipe drains); enforce timeout and cancel.

    Returns why the job was stopped (timeout/cancel), or None when it ended by itself.
    """
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    sel = selectors.DefaultSelector()
    sel.register(fd, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    stopped_why: str | None = None
    kill_at: float | None = None  # when to escalate SIGTERM to SIGKILL
    # Leftover children may hold the pipe open after the main process exits.
    linger_until: float | None = None
    eof = False
    try:
        while True:
            now = time.monotonic()
            if proc.poll() is not None:
                if eof:
                    break
                if linger_until is None:
                    linger_until = now + LINGER_SECONDS
                elif now >= linger_until:
                    break
            if stopped_why is None:
                if now >= deadline:
                    stopped_why = f"timed out after {timeout:g} s; process group killed"
                elif cancel is not None and cancel.is_set():
                    stopped_why = "cancelled (cronplan is shutting down); process group killed"
                if stopped_why is not None:
                    _killpg(proc, signal.SIGTERM)
                    kill_at = now + KILL_GRACE_SECONDS
            if kill_at is not None and now >= kill_at:
                _killpg(proc, signal.SIGKILL)
                kill_at = None
            if eof:
                # The pipe is closed; wait for the process itself (it may have closed its stdout early).
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=0.05)
                continue
            for _key, _ev in sel.select(timeout=0.05):
                try:
                    chunk = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    eof = True
                    sel.unregister(fd)
                    break
                tail.add(chunk)
    except BaseException:
        # cronplan itself is being stopped (Ctrl-C, SIGTERM): the job lives in its own session and would
        # not get the signal, so take its whole process group down rather than leave it orphaned.
        _killpg(proc, signal.SIGKILL)
        raise
    finally:
        sel.close()
        proc.stdout.close()
    if stopped_why is not None:
        # Whatever survived SIGTERM in the group goes now, so nothing outlives a timed-out job.
        _killpg(proc, signal.SIGKILL)
    proc.wait()
    return stopped_why


def _killpg(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _signame(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return str(num)


def _spawn_error(argv: list[str], cwd: str | None, exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError) and cwd is not None and not Path(cwd).is_dir():
        return f"working directory {cwd!r} does not exist"
    if isinstance(exc, FileNotFoundError):
        return f"cannot run {argv[0]!r}: command not found"
    if isinstance(exc, PermissionError):
        return f"cannot run {argv[0]!r}: permission denied"
    if isinstance(exc, OSError):
        return f"cannot run {argv[0]!r}: {exc.strerror or exc}"
    return f"cannot run {argv[0] if argv else '(empty command)'!r}: {exc}"


# --------------------------------------------------------------------------- http


def _run_http(action: HttpAction, *, started: Stopwatch, tail_bytes: int) -> RunResult:
    import httpx  # lazy: only http jobs pay for it

    kwargs: dict[str, Any] = {"headers": dict(action.headers)}
    if isinstance(action.body, str):
        kwargs["content"] = action.body.encode("utf-8")
    elif action.body is not None:
        kwargs["json"] = action.body
    target = _safe_url(action.url)
    tail = _Tail(tail_bytes)
    try:
        with (
            httpx.Client(timeout=action.timeout_seconds, follow_redirects=False) as client,
            client.stream(action.method.upper(), action.url, **kwargs) as resp,
        ):
            for chunk in resp.iter_bytes():
                tail.add(chunk)
            status = resp.status_code
    except httpx.TimeoutException:
        return RunResult(
            "failed",
            None,
            "",
            f"{action.method} {target} timed out after {action.timeout_seconds:g} s",
            started.started,
            started.now(),
        )
    except (httpx.HTTPError, httpx.InvalidURL, ValueError, UnicodeError) as exc:
        # InvalidURL and ValueError: a URL applied before cronplan checked URLs (bad port, bad host).
        return RunResult(
            "failed",
            None,
            "",
            f"{action.method} {target} failed: {type(exc).__name__}: {exc}",
            started.started,
            started.now(),
        )
    finished = started.now()
    if status >= 400:
        return RunResult(
            "failed",
            status,
            tail.text(),
            f"{action.method} {target} answered HTTP {status}",
            started.started,
            finished,
        )
    return RunResult("succeeded", status, tail.text(), None, started.started, finished)


def _safe_url(url: str) -> str:
    """The URL without credentials in it, for messages."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "(invalid URL)"
    netloc = parts.hostname or ""
    if port:
        netloc = f"{netloc}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM acts like Ctrl-C while a job runs: the run is recorded as interrupted, its group killed."""

    def on_term(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield  # signals can only be handled on the main thread (an embedding caller's business)
        return
    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


__all__ = ["TAIL_BYTES", "RunResult", "run_job", "sigterm_interrupts"]
