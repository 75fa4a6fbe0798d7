"""The observability routes of ``cronplan serve``: ``GET /``, ``GET /api/status``, ``GET /metrics``.

They carry job output, so they are never open by accident (docs/observability.md):
- with ``serve.status_token_env`` set, a request needs ``Authorization: Bearer <token>`` (compared in
  constant time), else ``401``;
- without it, only a loopback client of a ``serve`` bound to a loopback address is answered, and never a
  request carrying ``Forwarded`` or ``X-Forwarded-For`` (a reverse proxy's request is not local); anything
  else gets ``404``, as if the routes did not exist.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cronplan.errors import CronplanError

if TYPE_CHECKING:
    from cronplan.project import Project

STATUS_PATHS = frozenset({"/", "/api/status", "/metrics"})
#: Failed runs shown on the page, and how many recent runs are searched for them.
FAILURES_SHOWN = 10
RUNS_SEARCHED = 2000

Response = tuple[int, list[tuple[bytes, bytes]], bytes]
Log = Callable[[str], None]


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class StatusRoutes:
    def __init__(
        self,
        rt: Project,
        *,
        bind_host: str,
        provider_name: str,
        token_env: str | None,
        environ: Mapping[str, str],
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.rt = rt
        self.provider_name = provider_name
        self.token_env = token_env
        token = (environ.get(token_env) or "").strip() if token_env else ""
        self._token = token.encode("utf-8")
        self.loopback_bind = is_loopback(bind_host)
        # The page's clock: serve's (the system clock) unless a test passes its own.
        self.clock = clock if clock is not None else rt.clock.now

    def problem(self) -> str | None:
        """A configuration problem to report at start-up (never the token itself)."""
        if self.token_env and not self._token:
            return (
                f"serve.status_token_env names {self.token_env}, which is not set: "
                "/, /api/status and /metrics answer 401 to every request"
            )
        return None

    def allowed(self, headers: Mapping[str, str], client_host: str | None) -> int | None:
        """None when the request may see the status routes, else the status code to answer."""
        if self.token_env:
            given = headers.get("authorization", "")
            scheme, _, value = given.partition(" ")
            if not self._token or scheme.lower() != "bearer":
                return 401
            if not hmac.compare_digest(value.strip().encode("utf-8", "replace"), self._token):
                return 401
            return None
        if "forwarded" in headers or "x-forwarded-for" in headers:
            return 404
        if not self.loopback_bind or client_host is None or not is_loopback(client_host):
            return 404
        return None

    def respond(self, path: str) -> Response:
        """The answer to an allowed GET (blocking: call it on a worker thread)."""
        import json

        if path == "/metrics":
            from cronplan.metrics import render_metrics

            body, content_type = render_metrics(self.rt, clock=self.clock)
            return 200, [(b"content-type", content_type.encode())], body
        snapshot, failures = self._read()
        if path == "/api/status":
            payload = json.dumps(snapshot.document(), indent=2).encode("utf-8") + b"\n"
            return 200, [(b"content-type", b"application/json")], payload
        from cronplan.render.html import PageInput, render_status_page

        html = render_status_page(
            PageInput(snapshot, failures, self.clock(), provider=self.provider_name)
        )
        return 200, [(b"content-type", b"text/html; charset=utf-8")], html.encode("utf-8")

    def _read(self) -> tuple[Any, list[Any]]:
        from cronplan.status import StatusSnapshot, collect

        try:
            jobs_file = self.rt.load_jobs()
            note = None
        except CronplanError as exc:
            jobs_file = None
            note = f"jobs.json could not be read, showing the applied jobs: {exc.message}"
        snapshot = collect(self.rt, jobs_file)
        if note is not None:
            snapshot = StatusSnapshot(snapshot.jobs, (*snapshot.notes, note))
        from cronplan.status import run_view

        view = run_view(self.rt)
        failures = [
            r
            for r in map(view, self.rt.ledger.runs(limit=RUNS_SEARCHED))
            if r.status not in ("succeeded", "claimed", "running")
        ][:FAILURES_SHOWN]
        return snapshot, failures


__all__ = ["STATUS_PATHS", "StatusRoutes", "is_loopback"]
