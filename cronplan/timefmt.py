"""Instants on the wire: RFC 3339, UTC, ``Z``, second precision.

Every datetime inside cronplan is aware and in UTC; this module is where strings become instants and back.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

UTC = timezone.utc

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?$"
)


def parse_ts(text: str, *, default_tz: object | None = None) -> datetime:
    """Parse an RFC 3339 timestamp into an aware UTC datetime.

    A timestamp with no offset is *naive*: it is read in ``default_tz`` (a ``tzinfo``) when one is given,
    and rejected otherwise. Raises ``ValueError`` with a message fit for a user.
    """
    m = _RFC3339.match(text.strip()) if isinstance(text, str) else None
    if not m:
        raise ValueError(
            f"not an RFC 3339 timestamp: {text!r} (expected e.g. 2026-11-27T09:00:00Z)"
        )
    iso = text.strip().replace("z", "Z").replace("t", "T").replace(" ", "T", 1)
    if iso.endswith("Z"):
        iso = iso[:-1] + "+00:00"
    if m.group(7):
        # Python 3.10's fromisoformat takes only 3 or 6 fraction digits: pad or cut to microseconds.
        digits = m.group(7)[1:]
        iso = iso.replace(m.group(7), "." + (digits + "000000")[:6], 1)
    try:
        dt = datetime.fromisoformat(iso)
    except ValueError as exc:
        raise ValueError(f"not a valid date/time: {text!r} ({exc})") from None
    if dt.tzinfo is None:
        if default_tz is None:
            raise ValueError(f"timestamp has no UTC offset: {text!r} (add Z or +HH:MM)")
        dt = dt.replace(tzinfo=default_tz)  # type: ignore[arg-type]
    return dt.astimezone(UTC)


def format_ts(dt: datetime) -> str:
    """Format an aware datetime as RFC 3339 UTC with ``Z`` at second precision."""
    if dt.tzinfo is None:
        raise ValueError("naive datetime passed to format_ts")
    d = dt.astimezone(UTC)
    # f-string formatting: strftime was the main cost of rendering a 100,000-job plan.
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}Z"


def dedup_key(job_id: str, fire_at: datetime) -> str:
    return f"{job_id}:{format_ts(fire_at)}"
