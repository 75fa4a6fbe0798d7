"""Authenticate a fire from NAS (SPEC §10): a short-lived JWT bound to the request body.

The token's algorithm is never trusted to pick how it is checked: only RS256 and EdDSA are accepted, the
key is looked up by the required ``kid`` and must be of the type that algorithm needs. Time claims are
checked here (not by pyjwt) against an injectable clock, with at most 30 s of leeway. Authentication
failures raise ``AuthError``; a well-authenticated request whose body is malformed raises ``BadRequest``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from cronplan.errors import AuthError, BadRequest
from cronplan.model import FireCall, HttpRequest
from cronplan.timefmt import parse_ts
from cronplan_nas.jwks import JwksCache
from cronplan_nas.options import MAX_LEEWAY_SECONDS, MAX_TOKEN_LIFETIME_SECONDS

ALLOWED_ALGORITHMS = ("RS256", "EdDSA")
PURPOSE = "cron_fire"
_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class VerifierConfig:
    issuer: str
    audience: str
    require_body_binding: bool = True
    leeway_seconds: float = MAX_LEEWAY_SECONDS


class FireVerifier:
    def __init__(
        self,
        config: VerifierConfig,
        keys: JwksCache,
        *,
        # The wall clock on purpose, not cronplan's --now clock (docs/planning.md, "The clock"):
        # a token's exp/iat/nbf are real-world instants.
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.keys = keys
        self._clock = clock

    def verify(self, request: HttpRequest) -> FireCall:
        claims = self._authenticate(request)
        job_id, fire_at = parse_body(request.body)
        if self.config.require_body_binding:
            _check_binding(claims, job_id, fire_at)
        return FireCall(job_id=job_id, fire_at=fire_at)

    def _authenticate(self, request: HttpRequest) -> dict[str, Any]:
        import jwt

        token = _bearer(request)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("fire rejected: the bearer token is not a well-formed JWT") from None
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise AuthError(
                f"fire rejected: token algorithm {alg!r} is not allowed (only RS256 and EdDSA)"
            )
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthError("fire rejected: the token header has no 'kid'")
        key_alg, key = self.keys.get(kid)
        if key_alg != alg:
            raise AuthError(f"fire rejected: key {kid!r} is for {key_alg}, the token says {alg}")
        cfg = self.config
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=cfg.audience,
                issuer=cfg.issuer,
                options={
                    "require": ["exp", "iat", "iss", "aud", "jti"],
                    # Times are checked below against our clock and our leeway cap.
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidAudienceError:
            raise AuthError("fire rejected: wrong token audience (aud)") from None
        except jwt.InvalidIssuerError:
            raise AuthError("fire rejected: wrong token issuer (iss)") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(f"fire rejected: the token has no {exc.claim!r} claim") from None
        except jwt.InvalidSignatureError:
            raise AuthError("fire rejected: bad token signature") from None
        except jwt.PyJWTError as exc:
            raise AuthError(f"fire rejected: invalid token ({type(exc).__name__})") from None
        self._check_claims(claims)
        return claims

    def _check_claims(self, claims: dict[str, Any]) -> None:
        if claims.get("purpose") != PURPOSE:
            raise AuthError(f"fire rejected: token purpose is not {PURPOSE!r}")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise AuthError("fire rejected: the token has no 'jti'")
        now = self._clock()
        leeway = min(self.config.leeway_seconds, MAX_LEEWAY_SECONDS)
        exp, iat = _number_claim(claims, "exp"), _number_claim(claims, "iat")
        if exp - iat > MAX_TOKEN_LIFETIME_SECONDS:
            raise AuthError(
                f"fire rejected: token lifetime {exp - iat:g}s exceeds {MAX_TOKEN_LIFETIME_SECONDS:g}s"
            )
        if now >= exp + leeway:
            raise AuthError("fire rejected: the token has expired")
        if iat > now + leeway:
            raise AuthError("fire rejected: the token is not valid yet (iat in the future)")
        if "nbf" in claims and _number_claim(claims, "nbf") > now + leeway:
            raise AuthError("fire rejected: the token is not valid yet (nbf)")


_JWT_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def check_headers(headers: Mapping[str, str]) -> None:
    """What can be checked before the body is read: a bearer token shaped like a JWT."""
    token = _bearer(HttpRequest(method="POST", path="", headers=dict(headers), body=b""))
    if not _JWT_SHAPE.fullmatch(token):
        raise AuthError("fire rejected: the bearer token is not a well-formed JWT")


def _bearer(request: HttpRequest) -> str:
    headers = {k.lower(): v for k, v in request.headers.items()}
    value = headers.get("authorization", "").strip()
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("fire rejected: no 'Authorization: Bearer' token")
    return token.strip()


def _number_claim(claims: dict[str, Any], name: str) -> float:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AuthError(f"fire rejected: token claim {name!r} is not a number")
    return float(value)


def parse_body(body: bytes) -> tuple[str, datetime]:
    """The fire body ``{job_id, fire_at}``; ``BadRequest`` when it is missing or malformed."""
    if len(body) > _MAX_BODY:
        raise BadRequest("fire body is too large")
    try:
        doc = json.loads(body.decode("utf-8")) if body else None
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("fire body is not JSON") from None
    if not isinstance(doc, dict):
        raise BadRequest('fire body must be a JSON object {"job_id": ..., "fire_at": ...}')
    job_id, fire_at = doc.get("job_id"), doc.get("fire_at")
    if not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id):
        raise BadRequest("fire body has a missing or malformed job_id")
    if not isinstance(fire_at, str):
        raise BadRequest("fire body has a missing or malformed fire_at")
    try:
        when = parse_ts(fire_at)
    except ValueError:
        raise BadRequest("fire body has a malformed fire_at (expected RFC 3339)") from None
    return job_id, when


def _check_binding(claims: dict[str, Any], job_id: str, fire_at: datetime) -> None:
    if claims.get("job_id") != job_id:
        raise AuthError("fire rejected: the token was issued for another job_id than the body's")
    raw = claims.get("fire_at")
    try:
        if isinstance(raw, str):
            token_at = parse_ts(raw)
        elif isinstance(raw, (int, float)) and not isinstance(raw, bool):
            token_at = datetime.fromtimestamp(raw, timezone.utc)
        else:
            raise ValueError
    except (ValueError, OverflowError, OSError):
        raise AuthError("fire rejected: the token has no valid fire_at claim") from None
    if token_at != fire_at:
        raise AuthError("fire rejected: the token was issued for another fire_at than the body's")
