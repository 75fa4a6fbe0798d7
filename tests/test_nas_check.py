"""NasProvider.check(): configuration problems found without touching the network."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cronplan_nas import NasProvider

from cronplan.provider import Provider, ProviderSettings

GOOD: dict[str, Any] = {
    "portal_url": "https://portal.example",
    "jwks_url": "https://portal.example/.well-known/jwks.json",
    "issuer": "https://portal.example",
    "audience": "agent:my-instance",
}
TOKEN = {"CRONPLAN_NAS_TOKEN": "s3cret-token-value"}


def make(
    options: dict[str, Any] | None = None,
    *,
    environ: dict[str, str] | None = None,
    callback_url: str | None = "https://agent.example",
    base_dir: Path = Path("/tmp"),
) -> NasProvider:
    return NasProvider(
        ProviderSettings(
            name="nas",
            options=GOOD if options is None else options,
            callback_url=callback_url,
            base_dir=base_dir,
            environ=TOKEN if environ is None else environ,
        )
    )


class _NoNetwork:
    """A transport that fails the test if anything tries to send a request."""

    def handle_request(self, request: Any) -> Any:
        raise AssertionError(f"check() touched the network: {request.url}")


def test_identity_and_protocol() -> None:
    p = make()
    assert p.name == "nas" and p.calls_back is True
    assert isinstance(p, Provider)


def test_good_config_is_available_without_network() -> None:
    p = NasProvider(
        ProviderSettings("nas", GOOD, "https://agent.example", Path("/tmp"), TOKEN),
        transport=_NoNetwork(),  # type: ignore[arg-type]
    )
    result = p.check()
    assert result.ok, result.detail
    assert "portal.example" in result.detail


@pytest.mark.parametrize("key", ["portal_url", "jwks_url", "issuer", "audience"])
def test_each_missing_key_is_named(key: str) -> None:
    options = {k: v for k, v in GOOD.items() if k != key}
    result = make(options).check()
    assert not result.ok
    assert f"providers.nas.{key} is not set" in result.detail
    # Only the missing key is reported.
    assert result.detail.count("not set") == 1


def test_empty_section_lists_every_problem_at_once() -> None:
    result = make({}, environ={}, callback_url=None).check()
    assert not result.ok
    for key in ("portal_url", "jwks_url", "issuer", "audience"):
        assert f"providers.nas.{key} is not set" in result.detail
    assert "callback_url is not set" in result.detail
    assert "CRONPLAN_NAS_TOKEN is not set" in result.detail


def test_missing_token_names_the_variable() -> None:
    result = make(environ={}).check()
    assert not result.ok
    assert result.detail == "environment variable CRONPLAN_NAS_TOKEN is not set (the NAS token)"


def test_custom_token_env_is_the_one_named() -> None:
    options = {**GOOD, "token_env": "ACME_NAS_TOKEN"}
    result = make(options, environ=TOKEN).check()
    assert not result.ok
    assert "ACME_NAS_TOKEN is not set" in result.detail
    assert make(options, environ={"ACME_NAS_TOKEN": "x"}).check().ok


def test_token_value_never_in_detail() -> None:
    result = make({**GOOD, "portal_url": "ftp://nope"}).check()
    assert not result.ok
    assert TOKEN["CRONPLAN_NAS_TOKEN"] not in result.detail
    assert TOKEN["CRONPLAN_NAS_TOKEN"] not in repr(make())


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("portal_url", "portal.example", "not an http(s) URL"),
        ("portal_url", "ftp://portal.example", "not an http(s) URL"),
        ("portal_url", "http://portal.example", "must use https"),
        ("portal_url", "https://user:pw@portal.example", "must not carry credentials"),
        ("jwks_url", "http://portal.example/jwks", "must use https"),
        ("jwks_url", "https:///jwks", "not an http(s) URL"),
        ("audience", "agent: spaced", "must not contain whitespace"),
        ("token_env", "NOT-A-NAME", "must be an environment variable name"),
        ("require_body_binding", "yes", "must be true or false"),
        ("timeout", "soon", "must be a number"),
        ("timeout", 0, "must be between"),
        ("leeway_seconds", 60, "must be between 0 and 30"),
        ("jwks_refetch_floor_seconds", 5, "must be between 60"),
        ("max_connections", 0, "positive integer"),
        ("portal_url", 42, "must be a string"),
        ("portal_url", "https://portal.example:99999", "not a valid URL"),
        ("jwks_url", "https://[::1/jwks", "not a valid URL"),
    ],
)
def test_malformed_values(key: str, value: Any, expected: str) -> None:
    result = make({**GOOD, key: value}).check()
    assert not result.ok
    assert expected in result.detail
    assert key in result.detail


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9000", "http://localhost:9000", "http://[::1]:9000/"]
)
def test_plain_http_allowed_on_loopback(url: str) -> None:
    result = make({**GOOD, "portal_url": url, "jwks_url": url + "/jwks"}).check()
    assert result.ok, result.detail


@pytest.mark.parametrize(
    ("callback", "expected"),
    [
        (None, "callback_url is not set"),
        ("", "callback_url is not set"),
        ("agent.example", "callback_url is not an http(s) URL"),
    ],
)
def test_callback_url_checked(callback: str | None, expected: str) -> None:
    result = make(callback_url=callback).check()
    assert not result.ok
    assert expected in result.detail


def test_callback_may_be_plain_http() -> None:
    # NAS, not cronplan, calls it; the fire token is short-lived and body-bound.
    assert make(callback_url="http://agent.internal:8787").check().ok


def test_jwks_cache_path_is_relative_to_base_dir(tmp_path: Path) -> None:
    p = make(base_dir=tmp_path)
    assert p.options.jwks_cache == tmp_path / ".cronplan" / "nas-jwks.json"
    q = make({**GOOD, "jwks_cache": "keys/jwks.json"}, base_dir=tmp_path)
    assert q.options.jwks_cache == tmp_path / "keys" / "jwks.json"


def test_calls_without_token_raise_provider_unavailable() -> None:
    from cronplan.errors import ProviderUnavailable

    with pytest.raises(ProviderUnavailable, match="CRONPLAN_NAS_TOKEN is not set"):
        make(environ={}).list_arms()
