"""systemd calendar events (``OnCalendar=``, systemd.time(7)) and time spans -> cron and seconds.

A calendar event is ``[WEEKDAYS] [DATE] [TIME] [ZONE]``; a missing date is ``*-*-*``, a missing time
``00:00:00``. Each component may be a value, ``*``, a list (``,``), a range (``..``) or a repetition
(``a/b``: a, a+b, a+2b, ...), which map to cron's ``,``, ``-`` and ``a-MAX/b``. What cron cannot say is
refused with a reason: a specific year, the ``~`` last-days syntax, fractional seconds, a weekday range
that wraps, and weekdays together with restricted days of the month (systemd requires both to match,
cron matches either).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["CalendarError", "Cron", "parse_span", "to_cron"]

SHORTHANDS = {
    "minutely": "*-*-* *:*:00",
    "hourly": "*-*-* *:00:00",
    "daily": "*-*-* 00:00:00",
    "monthly": "*-*-01 00:00:00",
    "weekly": "Mon *-*-* 00:00:00",
    "yearly": "*-01-01 00:00:00",
    "annually": "*-01-01 00:00:00",
    "quarterly": "*-01,04,07,10-01 00:00:00",
    "semiannually": "*-01,07-01 00:00:00",
}
_DAYS = {
    "mon": 1, "monday": 1, "tue": 2, "tuesday": 2, "wed": 3, "wednesday": 3, "thu": 4,
    "thursday": 4, "fri": 5, "friday": 5, "sat": 6, "saturday": 6, "sun": 7, "sunday": 7,
}  # fmt: skip
_MAX = {"second": 59, "minute": 59, "hour": 23, "day": 31, "month": 12}
_ITEM = re.compile(r"^(\d+)(?:\.\.(\d+))?(?:/(\d+))?$")


class CalendarError(ValueError):
    """The calendar event cannot be carried over as a cron expression exactly (the message says why)."""


@dataclass(frozen=True)
class Cron:
    expr: str
    tz: str | None


def _is_zone(token: str) -> bool:
    if token.upper() == "UTC":
        return True
    if not re.match(r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$", token):
        return False
    from cronplan.schedule import zone

    try:
        zone(token)
    except ValueError:
        return False
    return True


def to_cron(spec: str) -> Cron:
    """The cron expression (5 fields, or 6 with seconds first) firing exactly when ``spec`` elapses."""
    tokens = spec.split()
    if not tokens:
        raise CalendarError("empty calendar event")
    tz = None
    if len(tokens) > 1 and _is_zone(tokens[-1]):
        tz = tokens.pop()
    if len(tokens) == 1 and tokens[0].lower() in SHORTHANDS:
        tokens = SHORTHANDS[tokens[0].lower()].split()
    if any(t.startswith("@") for t in tokens):
        raise CalendarError("a single point in time (@EPOCH) is a one-shot, not a calendar")
    weekdays = date = time = None
    for token in tokens:
        if ":" in token and time is None:
            time = token
        elif "-" in token and date is None and time is None and re.match(r"^[\d*]", token):
            date = token
        elif weekdays is None and date is None and time is None and re.match(r"^[A-Za-z]", token):
            weekdays = token
        else:
            raise CalendarError(f"cannot read {token!r} in calendar event {spec!r}")
    dom, month = _date(date or "*-*-*")
    second, minute, hour = _time(time or "00:00:00")
    dow = _weekdays(weekdays) if weekdays else "*"
    if dow != "*" and not dom.startswith("*"):
        raise CalendarError(
            "weekdays together with days of the month: systemd requires both to match, "
            "cron fires when either matches"
        )
    fields = [minute, hour, dom, month, dow]
    if second != "0":
        fields.insert(0, second)
    return Cron(" ".join(fields), "UTC" if tz and tz.upper() == "UTC" else tz)


def _date(text: str) -> tuple[str, str]:
    if "~" in text:
        raise CalendarError(
            "the '~' (days from the end of the month) syntax has no cron equivalent"
        )
    parts = text.split("-")
    if len(parts) == 2:
        parts.insert(0, "*")
    if len(parts) != 3:
        raise CalendarError(f"cannot read date {text!r}")
    year, month, day = parts
    if year != "*":
        raise CalendarError(f"a year ({year}) cannot be expressed in cron")
    return _component(day, "day"), _component(month, "month")


def _time(text: str) -> tuple[str, str, str]:
    parts = text.split(":")
    if len(parts) == 2:
        parts.append("00")
    if len(parts) != 3:
        raise CalendarError(f"cannot read time {text!r}")
    hour, minute, second = parts
    if "." in second:
        whole, _, frac = second.partition(".")
        if frac.strip("0"):
            raise CalendarError(f"fractional seconds ({second}) cannot be expressed in cron")
        second = whole
    return _component(second, "second"), _component(minute, "minute"), _component(hour, "hour")


def _component(text: str, field: str) -> str:
    top = _MAX[field]
    out: list[str] = []
    for item in text.split(","):
        if item == "*":
            out.append("*")
            continue
        if item.startswith("*/") and item[2:].isdigit():
            out.append(f"*/{int(item[2:])}")
            continue
        m = _ITEM.match(item)
        if not m:
            raise CalendarError(f"cannot read {field} {item!r}")
        start, end, step = m.group(1), m.group(2), m.group(3)
        first = int(start)
        if step is not None:
            last = int(end) if end is not None else top
            out.append(f"{first}-{last}/{int(step)}")
        elif end is not None:
            out.append(f"{first}-{int(end)}")
        else:
            out.append(str(first))
    if "*" in out and len(out) > 1:
        return "*"
    return ",".join(out)


def _weekdays(text: str) -> str:
    out: list[str] = []
    for item in text.split(","):
        lo, sep, hi = item.partition("..") if ".." in item else item.partition("-")
        try:
            start = _DAYS[lo.lower()]
            end = _DAYS[hi.lower()] if sep else start
        except KeyError:
            raise CalendarError(f"cannot read weekday {item!r}") from None
        if end < start:
            raise CalendarError(
                f"weekday range {item!r} wraps around the week; list it in two parts"
            )
        out.append(str(start) if start == end else f"{start}-{end}")
    return ",".join(out)


_SPAN_UNITS = {
    "us": 1e-6, "usec": 1e-6, "ms": 1e-3, "msec": 1e-3,
    "s": 1, "sec": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
    "M": 2629800, "month": 2629800, "months": 2629800,
    "y": 31557600, "year": 31557600, "years": 31557600,
}  # fmt: skip
_SPAN_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([A-Za-z]*)")


def parse_span(text: str) -> float:
    """A systemd time span (``1h 30min``, ``15min``, ``90``: seconds) in seconds."""
    rest = text.strip()
    if not rest:
        raise CalendarError("empty time span")
    total = 0.0
    pos = 0
    while pos < len(rest):
        m = _SPAN_PART.match(rest, pos)
        if not m:
            raise CalendarError(f"cannot read time span {text!r}")
        number, unit = m.group(1), m.group(2) or "s"
        factor = _SPAN_UNITS.get(unit) or _SPAN_UNITS.get(unit.lower())
        if factor is None:
            raise CalendarError(f"unknown unit {unit!r} in time span {text!r}")
        total += float(number) * factor
        pos = m.end()
        while pos < len(rest) and rest[pos] == " ":
            pos += 1
    return total
