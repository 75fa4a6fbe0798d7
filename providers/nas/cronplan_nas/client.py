"""The NAS portal API (SPEC §10): provision, cancel and list, over one pooled, thread-safe httpx transport.

Transient failures (429, 5xx, connection errors, timeouts) are retried with exponential backoff and full
jitter inside a bounded total time, honouring ``Retry-After``; 401/403 and other 4xx are not retried.
Every failure leaves as a ``cronplan.errors.ProviderError`` whose text never holds the token: httpx
exceptions (whose request carries the Authorization header) are reduced to their class name outside the
``except`` block, so no chained exception keeps them either.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from cronplan.errors import ProviderError, ProviderUnavailable
from cronplan_nas.options import NasOptions

PROVISION_PATH = "/api/agent-cron/provision"
CANCEL_PATH = "/api/agent-cron/cancel"
LIST_PATH = "/api/agent-cron/list"

_EXCERPT_CHARS = 200
_USER_AGENT = "cronplan-nas/0.1"


@dataclass(frozen=True)
class _Attempt:
    """How one attempt ended when it did not succeed."""

    transient: bool
    detail: str
    retry_after: float | None = None


def scrub(text: str, secret: str) -> str:
    """``text`` with every occurrence of ``secret`` replaced, for anything echoed back by a server."""
    if len(secret) >= 4:
        text = text.replace(secret, "***")
    return text


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP-date), or None."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        # The wall clock on purpose, not cronplan's --now clock (docs/planning.md, "The clock"):
        # a Retry-After date is a real-world wait.
        seconds = (when - (now or datetime.now(timezone.utc))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def keep_alive_transport(*, max_connections: int, keepalive_expiry: float) -> httpx.HTTPTransport:
    """httpx's stock transport, every connection kept alive. (A hand-made pool was measured against it
    with benchmarks/nas_apply.py and was no faster, so it went: docs/providers/nas.md.)"""
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=keepalive_expiry,
    )
    return httpx.HTTPTransport(limits=limits)


class NasClient:
    """The three portal calls. Safe to share between threads (the applier calls it in parallel)."""

    def __init__(
        self,
        options: NasOptions,
        token: str,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._options = options
        self._token = token
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        # The one connection pool, shared by every thread. Calls go straight to the transport: a bearer
        # API needs no cookie jar, auth flow or redirect handling, and skipping them per call cuts the
        # client's CPU per request by about a third, which is what bounds a 2,000-arm apply.
        self._transport = transport or keep_alive_transport(
            max_connections=options.max_connections, keepalive_expiry=30.0
        )
        base = options.portal_url.rstrip("/")
        # Parsed once: URL parsing is a sizeable share of httpx's per-request CPU.
        try:
            self._urls = {p: httpx.URL(base + p) for p in (PROVISION_PATH, CANCEL_PATH, LIST_PATH)}
        except httpx.InvalidURL:
            self._urls = {}
        if not self._urls:
            raise ProviderUnavailable(f"providers.nas.portal_url is not a valid URL: {base!r}")
        self._headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "User-Agent": _USER_AGENT,
        }
        self._default_timeout = httpx.Timeout(options.timeout, connect=options.connect_timeout)

    def __repr__(self) -> str:
        return f"NasClient(portal_url={self._options.portal_url!r})"

    # ------------------------------------------------------------------ the contract's calls

    def provision(
        self, *, job_id: str, fire_at: str, agent_callback_url: str, dedup_key: str
    ) -> str:
        """Upsert the arm of ``job_id``; returns NAS's ``schedule_id``."""
        body = {
            "job_id": job_id,
            "fire_at": fire_at,
            "agent_callback_url": agent_callback_url,
            "dedup_key": dedup_key,
        }
        doc = self._call("POST", PROVISION_PATH, f"provision of {job_id}", body)
        schedule_id = doc.get("schedule_id")
        if schedule_id is None:
            raise ProviderError(f"NAS provision of {job_id} answered without a schedule_id")
        return str(schedule_id)

    def cancel(self, job_id: str) -> None:
        self._call("POST", CANCEL_PATH, f"cancel of {job_id}", {"job_id": job_id})

    def list(self) -> list[Mapping[str, Any]]:
        doc = self._call("GET", LIST_PATH, "list of arms", None)
        armed = doc.get("armed")
        if not isinstance(armed, list) or not all(isinstance(a, dict) for a in armed):
            raise ProviderError("NAS list of arms answered without an 'armed' list of objects")
        return armed

    def close(self) -> None:
        self._transport.close()

    # ------------------------------------------------------------------ retries

    def _call(self, method: str, path: str, what: str, body: Any) -> dict[str, Any]:
        opts = self._options
        start = self._clock()
        deadline = start + opts.retry_total_seconds
        attempt = 0
        while True:
            attempt += 1
            timeout: float | None = None
            if attempt > 1:
                timeout = max(0.1, min(opts.timeout, deadline - self._clock()))
            result = self._attempt(method, path, what, body, timeout)
            if isinstance(result, dict):
                return result
            if not result.transient:
                raise ProviderError(result.detail)
            delay = result.retry_after
            if delay is None:
                cap = min(
                    opts.retry_max_backoff_seconds, opts.retry_base_seconds * 2 ** (attempt - 1)
                )
                with self._rng_lock:
                    delay = self._rng.uniform(0.0, cap)
            elapsed = self._clock() - start
            if self._clock() + delay > deadline:
                hint = ""
                if result.retry_after is not None and result.retry_after > opts.retry_total_seconds:
                    hint = f"; NAS asked to retry after {result.retry_after:g}s"
                raise ProviderError(
                    f"NAS {what} failed after {attempt} attempt(s) in {elapsed:.1f}s: {result.detail}"
                    f" (retry budget retry_total_seconds={opts.retry_total_seconds:g}{hint})"
                )
            self._sleep(delay)

    def _attempt(
        self, method: str, path: str, what: str, body: Any, timeout: float | None
    ) -> dict[str, Any] | _Attempt:
        headers = dict(self._headers)
        content = b""
        if body is not None:
            content = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        limit = self._default_timeout
        if timeout is not None:
            limit = httpx.Timeout(timeout, connect=min(timeout, self._options.connect_timeout))
        failure: _Attempt | None = None
        response: httpx.Response | None = None
        try:
            request = httpx.Request(
                method,
                self._urls[path],
                headers=headers,
                content=content if body is not None else None,
                extensions={"timeout": limit.as_dict()},
            )
            response = self._transport.handle_request(request)
            try:
                response.read()
            finally:
                response.close()
        except httpx.TimeoutException as exc:
            failure = _Attempt(True, f"timed out ({type(exc).__name__})")
        except httpx.UnsupportedProtocol as exc:
            failure = _Attempt(False, f"NAS {what} failed: unsupported URL ({type(exc).__name__})")
        except httpx.TransportError as exc:
            failure = _Attempt(True, f"connection error ({type(exc).__name__})")
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            failure = _Attempt(False, f"NAS {what} failed: {type(exc).__name__}")
        # Built outside the except blocks on purpose: nothing chains the httpx exception (and its request).
        if failure is not None:
            return failure
        assert response is not None
        return self._interpret(response, what)

    def _interpret(self, response: httpx.Response, what: str) -> dict[str, Any] | _Attempt:
        status = response.status_code
        if 200 <= status < 300:
            try:
                doc = json.loads(response.content or b"{}")
            except ValueError:
                doc = None
            if not isinstance(doc, dict):
                return _Attempt(
                    False,
                    f"NAS {what} answered HTTP {status} with a body that is not a JSON object",
                )
            return doc
        if status in (401, 403):
            return _Attempt(
                False, f"NAS rejected the token ({status}): check {self._options.token_env}"
            )
        if status == 429 or status >= 500:
            return _Attempt(
                True,
                f"HTTP {status}",
                parse_retry_after(response.headers.get("retry-after")),
            )
        return _Attempt(False, f"NAS {what} failed: HTTP {status}: {self._excerpt(response)}")

    def _excerpt(self, response: httpx.Response) -> str:
        # Scrub before cutting, so no prefix of an echoed token survives the cut.
        text = scrub(response.content[:65536].decode("utf-8", "replace"), self._token)
        text = " ".join(text.split())
        if len(text) > _EXCERPT_CHARS:
            text = text[:_EXCERPT_CHARS] + "..."
        return text or "(empty body)"
