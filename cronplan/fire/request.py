"""Step 1 of a fire (docs/fire.md, "The pipeline"): a raw callback request, and the provider's verdict on it.

``cronplan fire --request FILE`` reads a saved HTTP request; ``serve`` builds the same ``HttpRequest`` from
ASGI. Either way the configured provider's ``verify`` turns it into ``(job_id, fire_at)`` or refuses it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cronplan.errors import BadRequest
from cronplan.model import FireCall, HttpRequest

if TYPE_CHECKING:
    from cronplan.provider import Provider

FIRE_PATH = "/api/cron/fire"


def parse_http_request(data: bytes) -> HttpRequest:
    """A raw HTTP/1.x request (request line, headers, blank line, body) as ``HttpRequest``.

    Accepts CRLF or bare LF line ends (a request saved by hand); honours ``Content-Length`` when present.
    Raises ``BadRequest`` for anything that is not a request.
    """
    head, sep, body = _split_head(data)
    if not sep:
        raise BadRequest("raw request has no blank line after its headers")
    lines = head.decode("latin-1").splitlines()
    if not lines or len(lines[0].split()) != 3:
        raise BadRequest(
            "raw request does not start with a request line like 'POST /api/cron/fire HTTP/1.1'"
        )
    method, target, version = lines[0].split()
    if not version.upper().startswith("HTTP/"):
        raise BadRequest(f"raw request line has no HTTP version: {lines[0][:80]!r}")
    headers = _headers(lines[1:])
    length = headers.get("content-length")
    if length is not None:
        if not (length.isascii() and length.isdigit()):  # isdigit alone takes '²' and '٣'
            raise BadRequest(f"bad Content-Length in raw request: {length[:20]!r}")
        if int(length) > len(body):
            raise BadRequest(
                f"raw request body is shorter ({len(body)} bytes) than its Content-Length ({length})"
            )
        body = body[: int(length)]
    path = target.split("?", 1)[0]
    # A signature covers the body, not the request line: a signed body replayed as GET or to another
    # path is not a fire (serve answers those 405/404 before reading a body).
    if method.upper() != "POST":
        raise BadRequest(f"raw request method is {method[:20]!r}; fires are POST {FIRE_PATH}")
    if path != FIRE_PATH:
        raise BadRequest(f"raw request path is {path[:80]!r}; fires go to POST {FIRE_PATH}")
    return HttpRequest(method="POST", path=path, headers=headers, body=body)


def _headers(lines: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in lines:
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip() or name != name.strip():
            raise BadRequest(f"malformed header line in raw request: {line[:80]!r}")
        key = name.lower()
        # Repeated headers are folded the way HTTP allows (comma-joined).
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return headers


def _split_head(data: bytes) -> tuple[bytes, bool, bytes]:
    crlf = data.find(b"\r\n\r\n")
    lf = data.find(b"\n\n")
    if crlf >= 0 and (lf < 0 or crlf < lf):
        return data[:crlf], True, data[crlf + 4 :]
    if lf >= 0:
        return data[:lf], True, data[lf + 2 :]
    return data, False, b""


def authenticate(provider: Provider, request: HttpRequest) -> FireCall:
    """The provider's verdict on a callback; ``AuthError``/``BadRequest`` from it pass through."""
    return provider.verify(request)
