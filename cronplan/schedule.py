"""The schedule engine: when does a schedule fire, and how late may a firing be.

Every function takes and returns aware datetimes; results are always in UTC. No I/O.

Cron expressions are matched by ``cronsim`` on *local wall-clock* time (a naive datetime), and this module
turns wall-clock matches into instants itself, following Debian/Vixie cron (SPEC §4):

* A job is *fixed-time* when neither its minute nor its hour field starts with ``*`` (``30 2 * * *``,
  ``0 9-17 * * *``); otherwise it is *wildcard* (``*/5 * * * *``, ``30 * * * *``, ``* 2 * * *``). The
  seconds field of a 6-field expression plays no part in this.
* A wall time that does not exist (skipped by a forward shift): a fixed-time job fires at the first instant
  after the gap, i.e. at the transition itself; a wildcard job does not fire for it.
* A wall time that occurs twice (repeated by a backward shift): a fixed-time job fires once, at the first
  (earlier) instant; a wildcard job fires at both instants.
* Several fixed times inside one gap (``0,30 2 * * *``) are one occurrence: occurrences are instants and
  strictly increase. The first instant after a gap is the shift itself, with seconds zero even for a
  6-field expression (``15 30 2 * * *`` in a 02:00-03:00 gap fires at 03:00:00).

cronsim applies these rules itself only to 5-field expressions, and its own time-zone mode misses
occurrences right after a shift in some zones (for example ``*/15 3 * * *`` from 02:45 on Lord Howe's
spring day yields 03:30, not 03:00), which is why the mapping from wall time to instants lives here.
cronsim also reads a one-value range with a step (``5-5/10``) as ``5/10``; expressions are normalised to
the plain value first. A cron expression with no match within 50 years (cronsim's horizon) has no next
occurrence.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from cronplan.model import CronSchedule, IntervalSchedule, OnceSchedule, Schedule

__all__ = [
    "GRACE_MAX_SECONDS",
    "GRACE_MIN_SECONDS",
    "ONCE_GRACE_SECONDS",
    "check_cron",
    "grace_seconds",
    "is_occurrence",
    "next_after",
    "occurrences",
    "period_seconds",
    "previous_before",
    "zone",
]

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

GRACE_MIN_SECONDS = 120.0
GRACE_MAX_SECONDS = 7200.0
ONCE_GRACE_SECONDS = 120.0

_ONE_S = timedelta(seconds=1)
_ONE_US = timedelta(microseconds=1)
_US_PER_S = 1_000_000

# --------------------------------------------------------------------------- zones


@functools.lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; ``ValueError("unknown time zone 'X'")`` when there is no such zone."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"unknown time zone {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # ValueError/OSError: keys such as '../etc/passwd' or a directory name are refused by zoneinfo.
        raise ValueError(f"unknown time zone {name!r}") from None


# --------------------------------------------------------------------------- cron expressions

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_FIELDS_5 = ("minute", "hour", "day-of-month", "month", "day-of-week")
_FIELDS_6 = ("second", *_FIELDS_5)
_ALLOWED = {
    "second": "0-59",
    "minute": "0-59",
    "hour": "0-23",
    "day-of-month": "1-31, L or LW",
    "month": "1-12 or JAN-DEC",
    "day-of-week": "0-7 or SUN-SAT (0 and 7 are Sunday), with optional L (5L) or # (MON#2)",
}
# Any valid wall time works as the parse-time start; the real start is set per query.
_PARSE_START = datetime(2000, 1, 1)


# cronsim reads a one-value range with a step ("5-5/10") as "5/10", i.e. 5-59/10; cron means just 5.
_ONE_VALUE_RANGE = re.compile(r"(?<![\w-])(\w+)-\1/0*[1-9]\d*(?![\w-])", re.IGNORECASE)


def _normalize(expr: str) -> str:
    text = " ".join(expr.split())
    text = _MACROS.get(text.lower(), text)
    return _ONE_VALUE_RANGE.sub(r"\1", text)


_NAMES = re.compile(r"[A-Z]{3}")


def check_cron(expr: str) -> str | None:
    """A message saying what is wrong with the cron expression ``expr``, or None if it is valid.

    Valid: 5 fields (minute hour day-of-month month day-of-week), 6 fields with a seconds field first
    (``30 0 9 * * *`` is 09:00:30 daily), or one of @yearly @annually @monthly @weekly @daily @midnight
    @hourly.
    """
    if not isinstance(expr, str) or not expr.strip():
        return "cron expression is empty"
    text = _normalize(expr)
    if text.startswith("@"):
        known = " ".join(sorted(_MACROS))
        return f"unsupported cron macro {text!r} (supported: {known})"
    parts = text.split()
    if len(parts) not in (5, 6):
        return (
            f"cron expression {expr!r} has {len(parts)} fields; expected 5 "
            "(minute hour day-of-month month day-of-week) or 6 with seconds first"
        )
    names = _FIELDS_5 if len(parts) == 5 else _FIELDS_6
    for name, part in zip(names, parts, strict=True):
        for term in part.split(","):
            base, slash, step = term.partition("/")
            # Day names (WED, JUL) are not the L/W flags: drop three-letter words before looking.
            flags = _NAMES.sub("", base.upper()) if name.startswith("day") else ""
            if slash and any(c in flags for c in "LW#"):
                # cronsim reads L/2 as L and drops the step: a schedule other than the one written.
                return (
                    f"the step in {name} field {term!r} cannot apply: L, W and # name single days, "
                    f"so there is nothing to step through (remove '/{step}'; cron expression {expr!r})"
                )
    try:
        CronSim(text, _PARSE_START)
    except (CronSimError, ValueError, IndexError) as exc:
        for i, part in enumerate(parts):
            probe = ["*"] * len(parts)
            probe[i] = part
            try:
                CronSim(" ".join(probe), _PARSE_START)
            except (CronSimError, ValueError, IndexError):
                name = names[i]
                return (
                    f"bad {name} field {part!r} in cron expression {expr!r} "
                    f"(allowed: {_ALLOWED[name]})"
                )
        day, month = parts[-3], parts[-2]
        if "Bad day-of-month" in str(exc):
            return (
                f"day-of-month {day!r} never occurs in month {month!r} (cron expression {expr!r})"
            )
        return f"invalid cron expression {expr!r}: {exc}"
    return None


@dataclass(frozen=True)
class _Cron:
    """A parsed expression: a cronsim prototype to clone per query, and its Debian DST class."""

    text: str
    proto: CronSim
    fixed: bool  # Debian "fixed-time": neither minute nor hour starts with '*'
    clonable: bool


@functools.lru_cache(maxsize=4096)
def _compile(expr: str) -> _Cron:
    problem = check_cron(expr)
    if problem is not None:
        raise ValueError(problem)
    text = _normalize(expr)
    parts = text.split()
    minute, hour = (parts[0], parts[1]) if len(parts) == 5 else (parts[1], parts[2])
    proto = CronSim(text, _PARSE_START)
    clonable = hasattr(proto, "__dict__") and all(
        name in vars(proto) for name in ("dt", "tick_direction", "skip_initial_tick", "fixup_tz")
    )
    return _Cron(text, proto, not minute.startswith("*") and not hour.startswith("*"), clonable)


def _walls(cron: _Cron, start: datetime, *, reverse: bool) -> Iterator[datetime]:
    """Naive wall times matching ``cron``, strictly after (or before) the whole-second naive ``start``.

    Parsing costs about as much as one step, so a query clones the parsed prototype instead of
    re-parsing; the clone is set up exactly as ``CronSim(text, start, reverse)`` would be.
    """
    sim: CronSim
    if cron.clonable:
        sim = CronSim.__new__(CronSim)
        sim.__dict__.update(cron.proto.__dict__)
        sim.dt = start
        sim.tick_direction = -1 if reverse else 1
        sim.skip_initial_tick = False
        sim.fixup_tz = None
    else:  # a cronsim whose internals moved: parse per query, same results
        sim = CronSim(cron.text, start, reverse=reverse)
    while True:
        try:
            wall: datetime = next(sim)
        except (StopIteration, OverflowError):
            # cronsim gives up after 50 years without a match; Overflow: the end of the calendar.
            return
        yield wall


# --------------------------------------------------------------------------- wall time -> instants

_UNIQUE, _REPEATED, _SKIPPED = 0, 1, 2


def _resolve(wall: datetime, tz: tzinfo) -> tuple[int, datetime, datetime]:
    """Classify a naive wall time in ``tz`` and give its instants (UTC).

    Returns (kind, first, second): for a unique time both are its instant; for a repeated time the
    earlier and the later instant; for a skipped time (in a gap) both are the transition that ends the gap.
    """
    early = wall.replace(tzinfo=tz)
    off0 = early.utcoffset()
    off1 = early.replace(fold=1).utcoffset()
    assert off0 is not None and off1 is not None
    if off0 == off1:
        inst = (wall - off0).replace(tzinfo=UTC)
        return _UNIQUE, inst, inst
    if off0 > off1:  # clocks went back: fold=0 carries the offset from before the shift
        return _REPEATED, (wall - off0).replace(tzinfo=UTC), (wall - off1).replace(tzinfo=UTC)
    edge = _transition(tz, (wall - off1).replace(tzinfo=UTC), (wall - off0).replace(tzinfo=UTC))
    return _SKIPPED, edge, edge


def _transition(tz: tzinfo, lo: datetime, hi: datetime) -> datetime:
    """The first instant in (lo, hi] whose UTC offset differs from lo's (one shift lies in between)."""
    before = lo.astimezone(tz).utcoffset()
    lo_s, hi_s = (lo - EPOCH) // _ONE_S, (hi - EPOCH) // _ONE_S
    while hi_s - lo_s > 1:  # tzdb shifts happen on whole seconds
        mid = (lo_s + hi_s) // 2
        if (EPOCH + timedelta(seconds=mid)).astimezone(tz).utcoffset() == before:
            lo_s = mid
        else:
            hi_s = mid
    return EPOCH + timedelta(seconds=hi_s)


def _fold_size(local: datetime) -> timedelta:
    """How long the wall time of ``local`` repeats (zero when it does not repeat)."""
    off0 = local.replace(fold=0).utcoffset()
    off1 = local.replace(fold=1).utcoffset()
    assert off0 is not None and off1 is not None
    return max(off0 - off1, timedelta(0))


# Many jobs share an expression, a zone and the instant asked about (the planner's "now"): a result cache
# makes the second and later of them free. Keys compare instants, so any offset of ``t`` hits.
_RESULTS = 1 << 16


@functools.lru_cache(maxsize=_RESULTS)
def _cron_next(expr: str, tz_name: str, t: datetime, inclusive: bool) -> datetime | None:
    cron = _compile(expr)
    tz = zone(tz_name)
    local = t.astimezone(tz)
    wall = local.replace(tzinfo=None)
    start = wall
    if cron.fixed and inclusive:
        # t may be the very end of a gap, which is where that gap's fixed times fire.
        just_before = (t - _ONE_US).astimezone(tz).replace(tzinfo=None)
        if just_before + _ONE_US < wall:
            start = just_before
    if start == wall and (not inclusive or wall.microsecond):
        begin = wall.replace(microsecond=0)  # t's own wall time maps to t or earlier: skip it
    else:
        begin = start.replace(microsecond=0) - _ONE_S

    def ok(inst: datetime) -> bool:
        return inst > t or (inclusive and inst == t)

    found: datetime | None = None
    for w in _walls(cron, begin, reverse=False):
        kind, first, second = _resolve(w, tz)
        if cron.fixed or kind == _UNIQUE:
            if ok(first):
                found = first
                break
        elif kind == _REPEATED and (ok(first) or ok(second)):
            # Wall times are walked upwards, and within one repeated hour every first-pass instant
            # precedes every second-pass instant: the first acceptable instant is the answer.
            found = first if ok(first) else second
            break
    fold = _fold_size(local)
    if cron.fixed or not fold or local.fold == 1:
        return found
    # t is in the first pass of a repeated hour: wall times up to t's own fire again in the second pass,
    # which begins at `turn`, so the earliest of them may come before what was found above.
    turn = _transition(tz, t, t + fold)
    if found is not None and found < turn:
        return found
    pass2 = turn.astimezone(tz).replace(tzinfo=None)
    for w in _walls(cron, pass2 - _ONE_S, reverse=False):
        kind, _, second = _resolve(w, tz)
        if kind == _REPEATED and (found is None or second < found):
            found = second
        break
    return found


@functools.lru_cache(maxsize=_RESULTS)
def _cron_previous(expr: str, tz_name: str, t: datetime, inclusive: bool) -> datetime | None:
    cron = _compile(expr)
    tz = zone(tz_name)
    local = t.astimezone(tz)
    wall = local.replace(tzinfo=None)
    fold = _fold_size(local)
    fixed_in_pass2 = cron.fixed and bool(fold) and local.fold == 1
    if not inclusive and not wall.microsecond and not fixed_in_pass2:
        begin = wall
    else:
        begin = wall.replace(microsecond=0) + _ONE_S

    def ok(inst: datetime) -> bool:
        return inst < t or (inclusive and inst == t)

    found: datetime | None = None
    if fixed_in_pass2:
        # A fixed-time job fired for the whole repeated hour in its first pass, which reached later wall
        # times than t's: walk down from the end of that pass.
        begin = (wall + fold).replace(microsecond=0) + _ONE_S
    for w in _walls(cron, begin, reverse=True):
        kind, first, second = _resolve(w, tz)
        if cron.fixed or kind == _UNIQUE:
            if ok(first):
                found = first
                break
        elif kind == _REPEATED and (ok(second) or ok(first)):
            found = second if ok(second) else first
            break
    if cron.fixed or not fold or local.fold == 0:
        return found
    # t is in the second pass of a repeated hour: the first pass reached wall times after t's own, and
    # those fired (first pass) before t; the latest of them may come after what was found above.
    turn = _transition(tz, t - fold, t)
    if found is not None and found >= turn:
        return found
    pass1_end = turn.astimezone(tz).replace(tzinfo=None) + fold
    for w in _walls(cron, pass1_end, reverse=True):
        kind, first, _ = _resolve(w, tz)
        if kind == _REPEATED and (found is None or first > found):
            found = first
        break
    return found


# --------------------------------------------------------------------------- interval & once


def _us(t: datetime) -> int:
    return (t - EPOCH) // _ONE_US


def _from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def _interval_parts(sched: IntervalSchedule) -> tuple[int, int]:
    """(period, anchor) in integer microseconds: integer arithmetic keeps long runs free of drift."""
    period = round(sched.seconds * _US_PER_S)
    if period < _US_PER_S:
        raise ValueError(f"interval must be at least 1 second, got {sched.seconds!r}")
    anchor = 0 if sched.start_at is None else _us(_aware(sched.start_at, "start_at"))
    return period, anchor


def _interval_next(sched: IntervalSchedule, t: datetime, inclusive: bool) -> datetime:
    period, anchor = _interval_parts(sched)
    delta = _us(t) - anchor
    k = -(-delta // period) if inclusive else delta // period + 1
    if sched.start_at is not None and k < 0:
        k = 0
    return _from_us(anchor + k * period)


def _interval_previous(sched: IntervalSchedule, t: datetime, inclusive: bool) -> datetime | None:
    period, anchor = _interval_parts(sched)
    delta = _us(t) - anchor
    k = delta // period if inclusive else -(-delta // period) - 1
    if sched.start_at is not None and k < 0:
        return None
    return _from_us(anchor + k * period)


# --------------------------------------------------------------------------- public API


def _aware(t: datetime, what: str = "time") -> datetime:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"naive datetime passed as {what}: {t.isoformat()} (give it a zone)")
    return t


def next_after(schedule: Schedule, t: datetime, *, inclusive: bool = False) -> datetime | None:
    """The first occurrence strictly after ``t`` (at or after with ``inclusive``), in UTC.

    None when there is none: a ``once`` schedule whose time has passed, or a cron expression with no
    match within 50 years.
    """
    # In UTC before it becomes a cache key: equal wall times in one zone compare equal whatever their fold.
    if t.tzinfo is not UTC:  # most callers pass UTC already (every datetime of the model is)
        t = _aware(t).astimezone(UTC)
    try:
        if isinstance(schedule, CronSchedule):
            return _cron_next(schedule.expr, schedule.tz, t, inclusive)
        if isinstance(schedule, IntervalSchedule):
            return _interval_next(schedule, t, inclusive)
    except OverflowError:  # the answer would lie beyond year 9999
        return None
    run_at = _aware(schedule.run_at, "run_at").astimezone(UTC)
    return run_at if run_at > t or (inclusive and run_at == t) else None


def previous_before(schedule: Schedule, t: datetime, *, inclusive: bool = False) -> datetime | None:
    """The last occurrence strictly before ``t`` (at or before with ``inclusive``), in UTC, or None."""
    if t.tzinfo is not UTC:
        t = _aware(t).astimezone(UTC)
    try:
        if isinstance(schedule, CronSchedule):
            return _cron_previous(schedule.expr, schedule.tz, t, inclusive)
        if isinstance(schedule, IntervalSchedule):
            return _interval_previous(schedule, t, inclusive)
    except OverflowError:  # the answer would lie before year 1
        return None
    run_at = _aware(schedule.run_at, "run_at").astimezone(UTC)
    return run_at if run_at < t or (inclusive and run_at == t) else None


def occurrences(
    schedule: Schedule, after: datetime, *, inclusive: bool = False
) -> Iterator[datetime]:
    """The occurrences after ``after`` (at or after with ``inclusive``), strictly increasing, in UTC.

    Endless for cron and interval schedules: take what you need (``itertools.islice``).
    """
    t, inc = after, inclusive
    while True:
        nxt = next_after(schedule, t, inclusive=inc)
        if nxt is None:
            return
        yield nxt
        t, inc = nxt, False


def is_occurrence(schedule: Schedule, t: datetime) -> bool:
    """Whether the instant ``t`` is an occurrence of ``schedule`` (compared as instants)."""
    return next_after(schedule, t, inclusive=True) == t


# A fixed reference so that the period of a cron schedule asked for without an occurrence is reproducible.
_PERIOD_REFERENCE = datetime(2001, 1, 1, tzinfo=UTC)


def period_seconds(schedule: Schedule, occurrence: datetime | None = None) -> float | None:
    """The job's period in seconds; None for a ``once`` job (or a cron job that fires at most once).

    Interval: its period. Cron: the gap that ends at ``occurrence`` — from the previous occurrence to the
    first occurrence at or after ``occurrence`` (so an instant that is not an occurrence gets the gap it
    falls in). Without a previous occurrence, the gap from it to the next one. Without ``occurrence``: the
    gap between the first two occurrences after 2001-01-01T00:00Z (a fixed reference, so the answer is
    reproducible). Cron periods vary (weekdays only, DST days), which is why the occurrence matters.
    """
    if isinstance(schedule, OnceSchedule):
        return None
    if isinstance(schedule, IntervalSchedule):
        return float(schedule.seconds)
    if occurrence is None:
        first = next_after(schedule, _PERIOD_REFERENCE)
        following = None if first is None else next_after(schedule, first)
        if first is None or following is None:
            return None
        return (following - first).total_seconds()
    anchor = next_after(schedule, occurrence, inclusive=True)
    if anchor is None:
        anchor = previous_before(schedule, occurrence, inclusive=True)
        if anchor is None:
            return None
    before = previous_before(schedule, anchor)
    if before is not None:
        return (anchor - before).total_seconds()
    after = next_after(schedule, anchor)
    return None if after is None else (after - anchor).total_seconds()


def grace_seconds(schedule: Schedule, occurrence: datetime | None = None) -> float:
    """How late an occurrence may still fire (SPEC §5): half the period, clamped to [120 s, 2 h].

    A ``once`` job (or a schedule without a period) gets 120 s. See ``period_seconds`` for what period
    a cron job has around ``occurrence``.
    """
    if isinstance(schedule, OnceSchedule):
        return ONCE_GRACE_SECONDS
    period = period_seconds(schedule, occurrence)
    if period is None:
        return ONCE_GRACE_SECONDS
    return min(max(period / 2.0, GRACE_MIN_SECONDS), GRACE_MAX_SECONDS)
