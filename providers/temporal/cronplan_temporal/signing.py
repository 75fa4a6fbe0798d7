"""Standard Webhooks signing (the worker) and verification (``serve`` / ``fire --request``).

The signed content is ``{webhook-id}.{webhook-timestamp}.{body}`` (HMAC-SHA256, ``v1,`` + base64). The id is
the same on every retry of one fire, so a replay within the tolerance window is a duplicate fire that the
ledger's claim absorbs; outside the window it is refused here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

TOLERANCE_SECONDS = 300


class SignatureError(Exception):
    """The request is not authentic (bad, missing, expired or future-dated signature)."""


class BodyError(Exception):
    """The request is authentic but its body is not ``{job_id, fire_at}``."""


@dataclass(frozen=True)
class SignedHeaders:
    webhook_id: str
    webhook_timestamp: str
    webhook_signature: str

    def as_dict(self) -> dict[str, str]:
        return {
            "webhook-id": self.webhook_id,
            "webhook-timestamp": self.webhook_timestamp,
            "webhook-signature": self.webhook_signature,
        }


def fire_body(job_id: str, fire_at: str) -> bytes:
    return json.dumps({"job_id": job_id, "fire_at": fire_at}, separators=(",", ":")).encode()


def sign(secret: str, webhook_id: str, body: bytes, *, at: float | None = None) -> SignedHeaders:
    from standardwebhooks.webhooks import Webhook

    # The wall clock on purpose, not cronplan's --now clock (docs/planning.md, "The clock"):
    # a signature's timestamp is checked by the receiver against real time.
    moment = int(time.time() if at is None else at)
    when = datetime.fromtimestamp(moment, tz=timezone.utc)
    signature = Webhook(secret).sign(webhook_id, when, body.decode())
    return SignedHeaders(webhook_id, str(moment), signature)


def check_headers(
    headers: Mapping[str, str], *, now: float | None = None
) -> tuple[dict[str, str], str]:
    """The checks that need no body: the three headers present, the timestamp within ±300 s.

    ``cronplan serve`` runs them before it reads a body. Returns the lower-cased headers and the stamp.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    missing = [
        h for h in ("webhook-id", "webhook-timestamp", "webhook-signature") if not lower.get(h)
    ]
    if missing:
        raise SignatureError(f"missing header(s) {', '.join(missing)}")
    stamp = lower["webhook-timestamp"].strip()
    if not stamp.isdigit():
        raise SignatureError("webhook-timestamp is not a Unix time in seconds")
    # The wall clock on purpose, not cronplan's --now clock (docs/planning.md, "The clock"):
    # the ±300 s window is real-world time.
    skew = int(stamp) - (time.time() if now is None else now)
    if abs(skew) > TOLERANCE_SECONDS:
        direction = "old" if skew < 0 else "far in the future"
        raise SignatureError(
            f"webhook-timestamp is {abs(int(skew))} s {direction} (tolerance ±{TOLERANCE_SECONDS} s)"
        )
    return lower, stamp


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
) -> tuple[str, str]:
    """Check the signature and the ±300 s window; return the body's ``(job_id, fire_at)`` strings.

    Raises ``SignatureError`` for anything inauthentic (before the body is even read), ``BodyError`` for
    an authentic request with a malformed body.
    """
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    lower, stamp = check_headers(headers, now=now)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise SignatureError("body is not UTF-8") from None
    try:
        Webhook(secret).verify(
            text,
            {
                "webhook-id": lower["webhook-id"],
                "webhook-timestamp": stamp,
                "webhook-signature": lower["webhook-signature"],
            },
            json_parse=False,
        )
    except WebhookVerificationError as exc:
        raise SignatureError(f"signature check failed: {exc}") from None
    except (ValueError, TypeError):
        # The library trips over a malformed signature list (no "v1," prefix, bad base64).
        raise SignatureError("webhook-signature is malformed (expected 'v1,<base64>')") from None
    return parse_body(text)


def parse_body(text: str) -> tuple[str, str]:
    try:
        doc = json.loads(text)
    except ValueError:
        raise BodyError("body is not JSON") from None
    if not isinstance(doc, dict):
        raise BodyError("body must be a JSON object {job_id, fire_at}")
    job_id, fire_at = doc.get("job_id"), doc.get("fire_at")
    if not isinstance(job_id, str) or not job_id:
        raise BodyError("body.job_id is missing or not a string")
    if not isinstance(fire_at, str) or not fire_at:
        raise BodyError("body.fire_at is missing or not a string")
    return job_id, fire_at
