"""``notify``: POST a JSON notice to a webhook on a failed or abandoned run and on an overdue arm.

The URL comes from the environment variable named by ``notify.url_env`` (a chat webhook URL is a
credential): it is never printed; messages name it as ``notify webhook (VARNAME)``. A notice is retried
with backoff within a bounded time, and a notify failure never fails the run (docs/observability.md).

The body carries ``text``, a one-line summary, so a Slack-compatible incoming webhook shows it as is.
Standard library only: this runs on the cold path of ``cronplan fire``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime

from cronplan.timefmt import format_ts

Log = Callable[[str], None]

#: Attempts per notice, and the most time all of them may take together (seconds).
ATTEMPTS = 4
TOTAL_SECONDS = 15.0
TIMEOUT_SECONDS = 5.0
FIRST_BACKOFF_SECONDS = 0.5
TEXT_LIMIT = 300


@dataclass(frozen=True)
class Notice:
    event: str  # "run_failed" | "run_abandoned" | "arm_overdue"
    job_id: str
    fire_at: str
    status: str
    exit_code: int | None
    error: str | None
    text: str


def run_notice(
    job_id: str, fire_at: datetime, status: str, exit_code: int | None, error: str | None
) -> Notice:
    """The notice for a run that ended badly (``failed`` or ``abandoned``)."""
    at = format_ts(fire_at)
    why = error or (f"exit status {exit_code}" if exit_code is not None else "")
    text = f"cronplan: job {job_id} {status} (occurrence {at})" + (f": {why}" if why else "")
    return Notice(f"run_{status}", job_id, at, status, exit_code, error, _one_line(text))


def overdue_notice(job_id: str, fire_at: datetime, late_seconds: float) -> Notice:
    """The notice for a live arm overdue beyond its grace window (found by ``fire --overdue``)."""
    at = format_ts(fire_at)
    text = (
        f"cronplan: arm of job {job_id} is overdue: it should have fired at {at} "
        f"({_ago(late_seconds)} ago); firing it now"
    )
    return Notice("arm_overdue", job_id, at, "overdue", None, None, _one_line(text))


def send(
    url_env: str | None,
    environ: Mapping[str, str],
    notice: Notice,
    *,
    log: Log | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Deliver ``notice`` (True when the webhook answered 2xx); never raises.

    Nothing is sent when notify is not configured. Retries connection errors, timeouts, 429 and 5xx with
    exponential backoff (honouring a short ``Retry-After``), within ``TOTAL_SECONDS``.
    """
    import urllib.error
    import urllib.request

    if not url_env:
        return False
    say = log or _stderr
    where = f"notify webhook ({url_env})"
    url = (environ.get(url_env) or "").strip()
    if not url:
        say(f"{where}: the variable is not set; {notice.event} for {notice.job_id} not sent")
        return False
    if not url.lower().startswith(("http://", "https://")):
        say(f"{where}: not an http:// or https:// URL; {notice.event} for {notice.job_id} not sent")
        return False
    body = json.dumps(asdict(notice), sort_keys=True).encode("utf-8")
    deadline = time.monotonic() + TOTAL_SECONDS
    backoff = FIRST_BACKOFF_SECONDS
    problem = "no attempt made"
    for attempt in range(1, ATTEMPTS + 1):
        wait: float | None = None
        try:
            request = urllib.request.Request(
                url,
                data=body,
                method="POST",
                headers={"content-type": "application/json", "user-agent": "cronplan-notify"},
            )
            left = max(0.5, deadline - time.monotonic())
            with urllib.request.urlopen(request, timeout=min(TIMEOUT_SECONDS, left)) as resp:
                resp.read(4096)
            return True
        except urllib.error.HTTPError as exc:
            problem = f"HTTP {exc.code}"
            if exc.code != 429 and exc.code < 500:
                break  # the webhook refuses this notice: retrying will not help
            wait = _retry_after(exc.headers.get("retry-after") if exc.headers else None)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            problem = _describe(exc, url)
        if attempt == ATTEMPTS:
            break
        pause = backoff if wait is None else max(backoff, wait)
        if time.monotonic() + pause >= deadline:
            break
        sleep(pause)
        backoff *= 2
    say(
        f"{where}: {notice.event} for {notice.job_id} not delivered: {problem} (after {attempt} attempt(s))"
    )
    return False


def _describe(exc: BaseException, url: str) -> str:
    import urllib.error

    reason: object = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    text = str(reason) or type(reason).__name__
    # Some errors quote the URL (a malformed one, a bad port): it holds a token, so it never shows.
    return _one_line(text.replace(url, "<url>"))


def _retry_after(value: str | None) -> float | None:
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return None if seconds is None or seconds < 0 else min(seconds, TOTAL_SECONDS)


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= TEXT_LIMIT else line[: TEXT_LIMIT - 1] + "\u2026"


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


__all__ = ["Notice", "overdue_notice", "run_notice", "send"]
