"""The ``providers.nas`` section of cronplan.yaml, read into typed options plus a list of problems.

Parsing never raises: a provider must be constructible from a broken section so that ``check()`` (and
``cronplan providers``) can say exactly what is wrong. Nothing here touches the network.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULT_TOKEN_ENV = "CRONPLAN_NAS_TOKEN"
DEFAULT_JWKS_CACHE = ".cronplan/nas-jwks.json"
MAX_LEEWAY_SECONDS = 30.0
MAX_TOKEN_LIFETIME_SECONDS = 120.0

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class NasOptions:
    portal_url: str = ""
    jwks_url: str = ""
    issuer: str = ""
    audience: str = ""
    token_env: str = DEFAULT_TOKEN_ENV
    require_body_binding: bool = True
    # Per attempt; an attempt never outlives the remaining retry budget either.
    timeout: float = 10.0
    connect_timeout: float = 5.0
    # Total time one call may spend on retries of transient failures (429, 5xx, connection errors).
    retry_total_seconds: float = 30.0
    retry_base_seconds: float = 0.2
    retry_max_backoff_seconds: float = 5.0
    # Sized for the applier's thread pool (--parallelism up to 64) sharing one client.
    max_connections: int = 64
    jwks_cache: Path = Path(DEFAULT_JWKS_CACHE)
    jwks_ttl_seconds: float = 3600.0
    jwks_refetch_floor_seconds: float = 60.0
    leeway_seconds: float = MAX_LEEWAY_SECONDS
    problems: tuple[str, ...] = field(default=())


def _url_problem(key: str, value: str, *, tls: bool = True) -> str | None:
    """Why ``value`` is not a usable http(s) URL, or None.

    With ``tls``, plain http is allowed only for loopback hosts: the bearer token and the JWKS (which
    decides what a valid fire is) must not cross a network unencrypted.
    """
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        return f"{key} is not a valid URL: {value!r}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{key} is not an http(s) URL: {value!r}"
    if parts.username or parts.password:
        return f"{key} must not carry credentials in the URL"
    if tls and parts.scheme == "http" and not _is_loopback(parts.hostname):
        return f"{key} must use https (plain http is allowed only for localhost): {value!r}"
    return None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _number(
    raw: Mapping[str, Any],
    key: str,
    default: float,
    problems: list[str],
    *,
    low: float,
    high: float,
) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        problems.append(f"providers.nas.{key} must be a number, got {value!r}")
        return default
    if not low <= float(value) <= high:
        problems.append(f"providers.nas.{key} must be between {low:g} and {high:g}, got {value!r}")
        return default
    return float(value)


def _text(raw: Mapping[str, Any], key: str, problems: list[str]) -> str:
    value = raw.get(key)
    if value is None or value == "":
        problems.append(f"providers.nas.{key} is not set")
        return ""
    if not isinstance(value, str):
        problems.append(f"providers.nas.{key} must be a string, got {type(value).__name__}")
        return ""
    return value.strip()


def parse_options(raw: Mapping[str, Any], *, base_dir: Path) -> NasOptions:
    """Read the section; every problem found is listed in ``.problems`` (empty when usable)."""
    problems: list[str] = []
    portal_url = _text(raw, "portal_url", problems)
    jwks_url = _text(raw, "jwks_url", problems)
    issuer = _text(raw, "issuer", problems)
    audience = _text(raw, "audience", problems)
    for key, url in (("portal_url", portal_url), ("jwks_url", jwks_url)):
        if url and (p := _url_problem(f"providers.nas.{key}", url)):
            problems.append(p)
    for key, value in (("issuer", issuer), ("audience", audience)):
        if value and any(c.isspace() for c in value):
            problems.append(f"providers.nas.{key} must not contain whitespace: {value!r}")

    token_env = raw.get("token_env", DEFAULT_TOKEN_ENV)
    if not isinstance(token_env, str) or not _ENV_NAME.fullmatch(token_env):
        problems.append(
            f"providers.nas.token_env must be an environment variable name, got {token_env!r}"
        )
        token_env = DEFAULT_TOKEN_ENV

    binding = raw.get("require_body_binding", True)
    if not isinstance(binding, bool):
        problems.append(
            f"providers.nas.require_body_binding must be true or false, got {binding!r}"
        )
        binding = True

    max_connections = raw.get("max_connections", 64)
    if (
        isinstance(max_connections, bool)
        or not isinstance(max_connections, int)
        or max_connections < 1
    ):
        problems.append(
            f"providers.nas.max_connections must be a positive integer, got {max_connections!r}"
        )
        max_connections = 64

    cache_raw = raw.get("jwks_cache", DEFAULT_JWKS_CACHE)
    if not isinstance(cache_raw, str) or not cache_raw:
        problems.append(f"providers.nas.jwks_cache must be a path, got {cache_raw!r}")
        cache_raw = DEFAULT_JWKS_CACHE
    cache = Path(cache_raw).expanduser()
    if not cache.is_absolute():
        cache = Path(base_dir) / cache

    return NasOptions(
        portal_url=portal_url.rstrip("/"),
        jwks_url=jwks_url,
        issuer=issuer,
        audience=audience,
        token_env=token_env,
        require_body_binding=binding,
        timeout=_number(raw, "timeout", 10.0, problems, low=0.1, high=600),
        connect_timeout=_number(raw, "connect_timeout", 5.0, problems, low=0.1, high=600),
        retry_total_seconds=_number(raw, "retry_total_seconds", 30.0, problems, low=0, high=3600),
        retry_base_seconds=_number(raw, "retry_base_seconds", 0.2, problems, low=0, high=60),
        retry_max_backoff_seconds=_number(
            raw, "retry_max_backoff_seconds", 5.0, problems, low=0, high=600
        ),
        max_connections=max_connections,
        jwks_cache=cache,
        jwks_ttl_seconds=_number(raw, "jwks_ttl_seconds", 3600.0, problems, low=1, high=7 * 86400),
        jwks_refetch_floor_seconds=_number(
            raw, "jwks_refetch_floor_seconds", 60.0, problems, low=60, high=86400
        ),
        leeway_seconds=_number(
            raw, "leeway_seconds", MAX_LEEWAY_SECONDS, problems, low=0, high=MAX_LEEWAY_SECONDS
        ),
        problems=tuple(problems),
    )


def read_token(environ: Mapping[str, str], name: str) -> tuple[str, str | None]:
    """The token held by ``$name``, and why it cannot be used (None when it can).

    Whitespace around it is dropped (a secret file mounted as a variable ends in a newline); anything
    else that is not printable ASCII (inner whitespace, control or non-ASCII characters) cannot travel
    in an Authorization header and is refused here, once, rather than retried as a connection error.
    The problem names the variable, never the value."""
    token = environ.get(name, "").strip(" \t\r\n")
    if not token:
        return "", f"environment variable {name} is not set (the NAS token)"
    if not all("!" <= c <= "~" for c in token):
        return "", (
            f"environment variable {name} holds a token with inner whitespace, control or "
            "non-ASCII characters; a token is printable ASCII (check the secret it was read from)"
        )
    return token, None


def callback_problem(callback_url: str | None) -> str | None:
    """Why the project's callback_url cannot be given to NAS, or None."""
    if not callback_url:
        return "callback_url is not set (NAS needs a base URL to call back)"
    # NAS, not cronplan, talks to this URL, and what it sends is short-lived and bound to the body.
    return _url_problem("callback_url", callback_url, tls=False)
