"""The temporal provider without a server: check() reads config only, verify() checks Standard Webhooks."""

from __future__ import annotations

import json
import socket
import time

import pytest

pytest.importorskip(
    "cronplan_temporal",
    reason="cronplan-temporal is not installed (pip install -e providers/temporal)",
)

from cronplan_temporal import TemporalProvider
from cronplan_temporal.signing import fire_body, sign

from cronplan.errors import AuthError, BadRequest, ProviderError
from cronplan.model import Arm, FireCall, HttpRequest
from cronplan.provider import ProviderSettings
from cronplan.timefmt import parse_ts
from tests.fixtures_temporal import new_webhook_secret

SECRET = new_webhook_secret()
CALLBACK = "http://127.0.0.1:8787"


def provider(
    options: dict[str, object] | None = None,
    environ: dict[str, str] | None = None,
    callback: str | None = CALLBACK,
) -> TemporalProvider:
    env = {"CRONPLAN_WEBHOOK_SECRET": SECRET} if environ is None else environ
    return TemporalProvider(ProviderSettings("temporal", options or {}, callback, environ=env))


def signed_request(
    body: bytes,
    *,
    secret: str = SECRET,
    at: float | None = None,
    webhook_id: str = "cronplan-fire:a:2026-11-27T09:00:00Z",
) -> HttpRequest:
    headers = sign(secret, webhook_id, body, at=at).as_dict()
    headers["content-type"] = "application/json"
    return HttpRequest("POST", "/api/cron/fire", headers, body)


BODY = fire_body("a", "2026-11-27T09:00:00Z")

# --------------------------------------------------------------------------- check()


def test_defaults_are_available_without_any_network() -> None:
    p = provider()
    result = p.check()
    assert result.ok, result.detail
    assert "127.0.0.1:7233" in result.detail and "cronplan" in result.detail


def test_missing_secret_names_the_variable_and_never_a_value() -> None:
    result = provider(environ={}).check()
    assert not result.ok
    assert "$CRONPLAN_WEBHOOK_SECRET" in result.detail and "not set" in result.detail
    custom = provider({"secret_env": "MY_HOOK_SECRET"}, environ={}).check()
    assert not custom.ok and "$MY_HOOK_SECRET" in custom.detail


def test_weak_secret_is_refused_without_echoing_it() -> None:
    result = provider(environ={"CRONPLAN_WEBHOOK_SECRET": "whsec_YWJj"}).check()
    assert not result.ok and "too short" in result.detail and "YWJj" not in result.detail


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"address": "nohostport"}, "providers.temporal.address"),
        ({"address": "127.0.0.1:notaport"}, "no valid port"),
        ({"namespace": ""}, "namespace is empty"),
        ({"task_queue": " "}, "task_queue is empty"),
        ({"taskqueue": "x"}, "unknown key(s) taskqueue"),
        ({"delivery_seconds": "soon"}, "delivery_seconds"),
    ],
)
def test_bad_config_is_reported(options: dict[str, object], expected: str) -> None:
    result = provider(options).check()
    assert not result.ok and expected in result.detail


def test_a_callback_url_is_required() -> None:
    result = provider(callback=None).check()
    assert not result.ok and "callback_url" in result.detail


@pytest.mark.timeout(60)
@pytest.mark.slow
def test_unreachable_server_is_a_provider_error_not_a_hang() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = provider({"address": f"127.0.0.1:{port}"})
    assert p.check().ok  # check() never connects
    started = time.monotonic()
    try:
        with pytest.raises(ProviderError, match=f"cannot connect to 127.0.0.1:{port}"):
            p.list_arms()
        with pytest.raises(ProviderError):
            p.arm(Arm("a", parse_ts("2026-11-27T09:00:00Z"), CALLBACK))
    finally:
        p.close()
    assert time.monotonic() - started < 45


# --------------------------------------------------------------------------- verify()


def test_a_correctly_signed_fire_verifies() -> None:
    call = provider().verify(signed_request(BODY))
    assert call == FireCall("a", parse_ts("2026-11-27T09:00:00Z"))


def test_a_signature_made_with_another_secret_is_rejected() -> None:
    with pytest.raises(AuthError, match="signature"):
        provider().verify(signed_request(BODY, secret=new_webhook_secret()))


def test_a_body_changed_after_signing_is_rejected() -> None:
    request = signed_request(BODY)
    forged = HttpRequest(
        "POST", request.path, request.headers, fire_body("b", "2026-11-27T09:00:00Z")
    )
    with pytest.raises(AuthError):
        provider().verify(forged)


def test_a_signature_moved_to_another_id_is_rejected() -> None:
    request = signed_request(BODY)
    headers = dict(request.headers, **{"webhook-id": "cronplan-fire:other"})
    with pytest.raises(AuthError):
        provider().verify(HttpRequest("POST", request.path, headers, BODY))


@pytest.mark.parametrize(("offset", "ok"), [(-290, True), (290, True), (-310, False), (310, False)])
def test_the_timestamp_window_is_300_seconds(offset: int, ok: bool) -> None:
    request = signed_request(BODY, at=time.time() + offset)
    if ok:
        assert provider().verify(request).job_id == "a"
    else:
        with pytest.raises(AuthError, match="tolerance"):
            provider().verify(request)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_each_header_is_required(missing: str) -> None:
    request = signed_request(BODY)
    headers = {k: v for k, v in request.headers.items() if k != missing}
    with pytest.raises(AuthError, match=missing):
        provider().verify(HttpRequest("POST", request.path, headers, BODY))


@pytest.mark.parametrize("signature", ["garbage", "v1,not-base64!!", "v2,abc=", ""])
def test_malformed_signatures_are_rejected(signature: str) -> None:
    request = signed_request(BODY)
    headers = dict(request.headers, **{"webhook-signature": signature})
    with pytest.raises(AuthError):
        provider().verify(HttpRequest("POST", request.path, headers, BODY))


def test_verification_needs_the_secret() -> None:
    with pytest.raises(AuthError, match=r"\$CRONPLAN_WEBHOOK_SECRET"):
        provider(environ={}).verify(signed_request(BODY))


def test_only_post_is_a_fire() -> None:
    request = signed_request(BODY)
    with pytest.raises(AuthError, match="POST"):
        provider().verify(HttpRequest("GET", request.path, request.headers, BODY))


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        json.dumps({"fire_at": "2026-11-27T09:00:00Z"}).encode(),
        json.dumps({"job_id": "a", "fire_at": "yesterday"}).encode(),
    ],
)
def test_an_authentic_but_malformed_body_is_a_bad_request(body: bytes) -> None:
    with pytest.raises(BadRequest):
        provider().verify(signed_request(body))


def test_signing_interoperates_with_the_reference_library() -> None:
    from standardwebhooks.webhooks import Webhook

    request = signed_request(BODY)
    assert Webhook(SECRET).verify(BODY.decode(), dict(request.headers)) == json.loads(BODY)
