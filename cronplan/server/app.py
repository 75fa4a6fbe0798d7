"""The ASGI app of ``cronplan serve``: a minimal raw ASGI application served by uvicorn (see docs/fire.md
for why): ``POST /api/cron/fire`` and ``GET /healthz``, plus the observability routes ``GET /``,
``GET /api/status`` and ``GET /metrics`` (``cronplan/server/status_routes.py``, docs/observability.md).

A fire request is authenticated by the provider, claimed in the ledger (``cronplan/server/service.py``),
and answered ``202`` only once the claim is durable; the job then runs on a worker thread, after the
response. Duplicates and stale fires are ``200`` no-ops, bad authentication ``401``, a malformed body
``400``. Against hostile clients (``cronplan/server/guard.py``): a cap on connections, head and body
timeouts, byte caps, the provider's header check before any body is read, and rate-limited error lines.
``serve()`` (``cronplan/server/serve.py``) binds it and runs the local timer loop beside it.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from cronplan.errors import CronplanError
from cronplan.model import HttpRequest
from cronplan.server.guard import (
    BODY_TIMEOUT_S,
    MAX_BODY_BYTES,
    MAX_BUFFERED_BYTES,
)
from cronplan.server.service import FireService
from cronplan.server.status_routes import STATUS_PATHS, StatusRoutes

FIRE_PATH = "/api/cron/fire"
HEALTH_PATH = "/healthz"


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
        self.status = status  # GET /, /api/status, /metrics (cronplan/server/status_routes.py)
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
        self.service.begin_answer()
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
            self.service.end_answer()

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
                self.service.answers, self.service.handle_fire, request
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


__all__ = ["FIRE_PATH", "HEALTH_PATH", "FireApp"]
