"""A small GitHub REST client: bearer auth, pagination by ``Link`` header, bounded retries.

The transport is a constructor argument so tests drive it with ``httpx.MockTransport`` and recorded
responses; in a workflow it is the real network. The token never appears in a message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from cronplan.errors import CronplanError

DEFAULT_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
PER_PAGE = 100
# Pagination is bounded so a misbehaving server (or a Link loop) cannot keep a CI job busy forever.
MAX_PAGES = 200
_RETRY_STATUSES = frozenset({500, 502, 503, 504})


class GitHubError(CronplanError):
    """A GitHub API call failed, or the environment lacks what the call needs."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class GitHubClient:
    """JSON in, JSON out, for the handful of endpoints cronplan's CI glue uses."""

    def __init__(
        self,
        token: str,
        *,
        api_url: str = DEFAULT_API_URL,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        max_attempts: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not token:
            raise GitHubError(
                "No GitHub token: set GITHUB_TOKEN (in a workflow: ${{ github.token }})."
            )
        self.api_url = api_url.rstrip("/")
        self._origin = _origin(self.api_url)
        self._max_attempts = max(1, max_attempts)
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.api_url,
            transport=transport,
            timeout=timeout,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": "cronplan",
            },
        )

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str], *, transport: httpx.BaseTransport | None = None
    ) -> GitHubClient:
        """Token from ``GITHUB_TOKEN`` (or ``GH_TOKEN``), API base from ``GITHUB_API_URL`` (GHES)."""
        token = environ.get("GITHUB_TOKEN") or environ.get("GH_TOKEN") or ""
        api_url = environ.get("GITHUB_API_URL") or DEFAULT_API_URL
        return cls(token, api_url=api_url, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GitHubClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
    ) -> Any:
        """One call; the decoded JSON body (``None`` for 204)."""
        return _decode(self._send(method, path, json=json, params=params), method, path)

    def paginate(
        self, path: str, *, params: Mapping[str, str | int] | None = None
    ) -> Iterator[Any]:
        """Every item of a list endpoint, following ``rel="next"`` links page after page."""
        query: dict[str, str | int] = {"per_page": PER_PAGE, **(params or {})}
        response = self._send("GET", path, params=query)
        for _ in range(MAX_PAGES):
            items = _decode(response, "GET", path)
            if not isinstance(items, list):
                raise GitHubError(
                    f"GitHub API GET {path}: expected a list, got {type(items).__name__}"
                )
            yield from items
            next_url = response.links.get("next", {}).get("url")
            if not next_url:
                return
            # The token goes only to the API host we were configured with.
            if _origin(next_url) != self._origin:
                raise GitHubError(
                    f"GitHub API GET {path}: refusing a next-page link to another host"
                )
            response = self._send("GET", next_url)
        raise GitHubError(f"GitHub API GET {path}: more than {MAX_PAGES} pages, giving up")

    def _send(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
    ) -> httpx.Response:
        label = f"{method} {urlsplit(url).path or url}"
        for attempt in range(1, self._max_attempts + 1):
            try:
                response = self._http.request(method, url, json=json, params=params)
            except httpx.TransportError as exc:
                if attempt == self._max_attempts:
                    raise GitHubError(f"GitHub API {label}: {type(exc).__name__}: {exc}") from None
                self._sleep(_backoff(attempt, None))
                continue
            if response.status_code < 400:
                return response
            if attempt < self._max_attempts and _retryable(response):
                self._sleep(_backoff(attempt, response.headers.get("retry-after")))
                continue
            raise GitHubError(
                f"GitHub API {label} failed: {response.status_code} {_message(response)}",
                status=response.status_code,
            )
        raise AssertionError("unreachable")  # pragma: no cover - the loop always returns or raises


def _retryable(response: httpx.Response) -> bool:
    if response.status_code in _RETRY_STATUSES:
        return True
    # Secondary rate limits answer 403/429 with Retry-After; a plain 403 is a permission problem.
    return response.status_code in (403, 429) and "retry-after" in response.headers


def _backoff(attempt: int, retry_after: str | None) -> float:
    if retry_after is not None:
        try:
            return min(60.0, max(0.0, float(retry_after)))
        except ValueError:
            pass
    return float(min(8, 2 ** (attempt - 1)))


def _decode(response: httpx.Response, method: str, path: str) -> Any:
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        raise GitHubError(f"GitHub API {method} {path}: the response is not JSON") from None


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        hint = {
            401: " (is GITHUB_TOKEN valid?)",
            403: " (does the job grant the permission, e.g. pull-requests: write or issues: write?)",
            404: " (wrong repository or number, or the token cannot see it)",
        }.get(response.status_code, "")
        return f"{body['message']}{hint}"
    return response.reason_phrase


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc
