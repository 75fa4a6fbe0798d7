"""Properties of the schedule engine, checked against an independent brute force.

The brute force walks UTC instants one step at a time, turns each into local wall time and matches the
cron fields itself (its own parser, not cronsim), applying Debian cron's DST rules: a fixed-time job whose
wall time was skipped fires at the first instant after the gap, a fixed-time job fires only in the first
pass of a repeated hour, a wildcard job fires whenever the wall time matches.
"""

from __future__ import annotations

import calendar
import functools
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from itertools import islice, pairwise, takewhile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cronplan.model import CronSchedule, IntervalSchedule
from cronplan.schedule import is_occurrence, next_after, occurrences, previous_before, zone

UTC = timezone.utc
PROPS = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# --------------------------------------------------------------------------- an independent matcher


def _values(term: str, lo: int, hi: int) -> set[int]:
    if "/" in term:
        base, step_text = term.split("/")
        step = int(step_text)
        if base == "*":
            first, last = lo, hi
        elif "-" in base:
            first, last = (int(x) for x in base.split("-"))
        else:
            first, last = int(base), hi
        return set(range(first, last + 1, step))
    if term == "*":
        return set(range(lo, hi + 1))
    if "-" in term:
        a, b = (int(x) for x in term.split("-"))
        return set(range(a, b + 1))
    return {int(term)}


def _field(text: str, lo: int, hi: int) -> set[int]:
    out: set[int] = set()
    for term in text.split(","):
        out |= _values(term, lo, hi)
    return out


@dataclass(frozen=True)
class Matcher:
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    dom_text: str
    months: frozenset[int]
    dow_text: str
    fixed: bool

    @classmethod
    def parse(cls, expr: str) -> Matcher:
        parts = expr.split()
        if len(parts) == 5:
            parts = ["0", *parts]
        sec, minute, hour, dom, month, dow = parts
        return cls(
            frozenset(_field(sec, 0, 59)),
            frozenset(_field(minute, 0, 59)),
            frozenset(_field(hour, 0, 23)),
            dom,
            frozenset(_field(month, 1, 12)),
            dow,
            fixed=not minute.startswith("*") and not hour.startswith("*"),
        )

    def _dom(self, d: date) -> bool:
        last = calendar.monthrange(d.year, d.month)[1]
        for term in self.dom_text.split(","):
            if term == "L":
                if d.day == last:
                    return True
            elif d.day in _values(term, 1, 31):
                return True
        return False

    def _dow(self, d: date) -> bool:
        wd = (d.weekday() + 1) % 7  # cron: Sunday = 0 (and 7)
        last = calendar.monthrange(d.year, d.month)[1]
        for term in self.dow_text.split(","):
            if term.endswith("L"):
                if int(term[:-1]) % 7 == wd and d.day + 7 > last:
                    return True
            elif "#" in term:
                day, nth = (int(x) for x in term.split("#"))
                if day % 7 == wd and (d.day - 1) // 7 + 1 == nth:
                    return True
            elif wd in {v % 7 for v in _values(term, 0, 7)}:
                return True
        return False

    def day(self, d: date) -> bool:
        return _day_cached(self, d)

    def _day(self, d: date) -> bool:
        if self.dom_text.startswith("*") or self.dow_text.startswith("*"):
            return self._dom(d) and self._dow(d)
        return self._dom(d) or self._dow(d)

    def wall(self, w: datetime) -> bool:
        return (
            w.second in self.seconds
            and w.minute in self.minutes
            and w.hour in self.hours
            and w.month in self.months
            and self.day(w.date())
        )


@functools.lru_cache(maxsize=100_000)
def _day_cached(m: Matcher, d: date) -> bool:
    return m._day(d)


def brute_force(
    expr: str, tz_name: str, start: datetime, end: datetime, step: timedelta
) -> list[datetime]:
    """Occurrences in (start, end), walking UTC instants ``step`` apart (shifts fall on step boundaries)."""
    m = Matcher.parse(expr)
    tz = zone(tz_name)
    out: list[datetime] = []
    prev_wall = (start).astimezone(tz).replace(tzinfo=None)
    u = start + step
    while u < end:
        loc = u.astimezone(tz)
        wall = loc.replace(tzinfo=None)
        fire = False
        if m.fixed and wall - prev_wall > step:
            # Wall times skipped by a forward shift: a fixed-time job fires for them now.
            skipped = prev_wall + step
            while skipped < wall:
                if m.wall(skipped):
                    fire = True
                    break
                skipped += step
        if m.wall(wall) and (not m.fixed or loc.fold == 0):
            fire = True
        if fire:
            out.append(u)
        prev_wall = wall
        u += step
    return out


# --------------------------------------------------------------------------- random expressions


def _num_field(lo: int, hi: int) -> st.SearchStrategy[str]:
    value = st.integers(lo, hi)
    step = st.integers(1, max(2, (hi - lo) // 2))

    @st.composite
    def ranged(draw: st.DrawFn) -> str:
        a = draw(value)
        b = draw(st.integers(a, hi))
        return f"{a}-{b}"

    @st.composite
    def ranged_step(draw: st.DrawFn) -> str:
        return f"{draw(ranged())}/{draw(step)}"

    return st.one_of(
        st.just("*"),
        step.map(lambda s: f"*/{s}"),
        value.map(str),
        ranged(),
        ranged_step(),
        st.lists(value, min_size=2, max_size=4, unique=True).map(lambda xs: ",".join(map(str, xs))),
    )


_DOM = st.one_of(
    st.just("*"),
    st.just("*"),
    st.just("L"),
    st.integers(1, 31).map(str),
    st.integers(1, 28).flatmap(lambda a: st.integers(a, 31).map(lambda b: f"{a}-{b}")),
    st.integers(2, 5).map(lambda s: f"*/{s}"),
)
_DOW = st.one_of(
    st.just("*"),
    st.just("*"),
    st.integers(0, 7).map(str),
    st.integers(0, 5).flatmap(lambda a: st.integers(a, 6).map(lambda b: f"{a}-{b}")),
    st.tuples(st.integers(0, 6), st.integers(1, 5)).map(lambda t: f"{t[0]}#{t[1]}"),
    st.integers(0, 6).map(lambda d: f"{d}L"),
)


@st.composite
def five_field(draw: st.DrawFn) -> str:
    minute = draw(_num_field(0, 59))
    # Hours are biased towards the small hours, where the DST shifts happen.
    hour = draw(st.one_of(_num_field(0, 23), _num_field(0, 4)))
    dom = draw(_DOM)
    dow = draw(_DOW)
    return f"{minute} {hour} {dom} * {dow}"


# Windows start near the DST shifts of 2026 (and anywhere in the year), so both rules get exercised.
_SHIFTS = {
    "Europe/Berlin": ["2026-03-29T01:00:00", "2026-10-25T01:00:00"],
    "America/New_York": ["2026-03-08T07:00:00", "2026-11-01T06:00:00"],
    "Australia/Lord_Howe": ["2026-04-04T15:00:00", "2026-10-03T15:30:00"],
}


@st.composite
def window_start(draw: st.DrawFn, tz_name: str) -> datetime:
    if tz_name != "UTC" and draw(st.integers(0, 3)) > 0:
        shift = datetime.fromisoformat(draw(st.sampled_from(_SHIFTS[tz_name]))).replace(tzinfo=UTC)
        return shift - timedelta(minutes=30 * draw(st.integers(0, 96)))
    day = draw(st.integers(0, 364))
    minute = draw(st.integers(0, 1439))
    return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=day, minutes=minute)


def _check_against_brute_force(expr: str, tz_name: str, start: datetime, span: timedelta) -> None:
    end = start + span
    sched = CronSchedule(expr=expr, tz=tz_name)
    got = list(takewhile(lambda d: d < end, occurrences(sched, start)))
    want = brute_force(expr, tz_name, start, end, timedelta(minutes=1))
    assert got == want, f"{expr!r} in {tz_name} from {start.isoformat()}"
    # Strictly increasing, each an occurrence, and the neighbours agree in both directions.
    assert all(a < b for a, b in pairwise(got))
    # The engine's other entry points must agree around every irregular gap (DST, day and hour
    # boundaries), where mistakes live; checking every pair of a dense schedule would only cost time.
    pairs = list(pairwise(got))
    irregular = [
        (a, b)
        for i, (a, b) in enumerate(pairs)
        if i < 5 or b - a != pairs[i - 1][1] - pairs[i - 1][0]
    ]
    for a, b in irregular[:60]:
        assert is_occurrence(sched, a)
        assert not is_occurrence(sched, a + timedelta(seconds=30))
        assert previous_before(sched, b) == a
        assert next_after(sched, a) == b
        mid = a + (b - a) / 2
        assert next_after(sched, mid, inclusive=True) == b
        assert previous_before(sched, mid, inclusive=True) == a
    if got:
        assert previous_before(sched, got[0]) is None or previous_before(sched, got[0]) <= start  # type: ignore[operator]
        assert next_after(sched, start) == got[0]


@PROPS
@given(expr=five_field(), start=window_start("UTC"))
def test_cron_matches_brute_force_in_utc(expr: str, start: datetime) -> None:
    _check_against_brute_force(expr, "UTC", start, timedelta(days=2))


@PROPS
@given(
    data=st.data(),
    expr=five_field(),
    tz_name=st.sampled_from(sorted(_SHIFTS)),
)
def test_cron_matches_brute_force_across_dst(data: st.DataObject, expr: str, tz_name: str) -> None:
    start = data.draw(window_start(tz_name))
    _check_against_brute_force(expr, tz_name, start, timedelta(days=2))


@settings(max_examples=40, deadline=None, database=None)
@given(
    data=st.data(),
    second=_num_field(0, 59),
    expr=five_field(),
    tz_name=st.sampled_from(sorted(_SHIFTS)),
)
def test_six_field_matches_brute_force_near_dst(
    data: st.DataObject, second: str, expr: str, tz_name: str
) -> None:
    shift = datetime.fromisoformat(data.draw(st.sampled_from(_SHIFTS[tz_name]))).replace(tzinfo=UTC)
    start = shift - timedelta(minutes=data.draw(st.integers(0, 90)))
    end = start + timedelta(hours=2)
    full = f"{second} {expr}"
    sched = CronSchedule(expr=full, tz=tz_name)
    got = list(takewhile(lambda d: d < end, occurrences(sched, start)))
    assert got == brute_force(full, tz_name, start, end, timedelta(seconds=1)), full


@PROPS
@given(
    expr=five_field(),
    tz_name=st.sampled_from(["UTC", *sorted(_SHIFTS)]),
    t=st.integers(0, 365 * 24 * 3600 * 10**6),
)
def test_next_and_previous_bracket_any_instant(expr: str, tz_name: str, t: int) -> None:
    sched = CronSchedule(expr=expr, tz=tz_name)
    when = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(microseconds=t)
    nxt = next_after(sched, when)
    prev = previous_before(sched, when)
    if nxt is not None:
        assert nxt > when and is_occurrence(sched, nxt)
        assert previous_before(sched, nxt) == (prev if not is_occurrence(sched, when) else when)
    if prev is not None:
        assert prev < when and is_occurrence(sched, prev)
        assert next_after(sched, prev) == (nxt if not is_occurrence(sched, when) else when)


# --------------------------------------------------------------------------- intervals


@PROPS
@given(
    seconds=st.one_of(st.integers(1, 120), st.integers(1, 10**7)),
    start_offset=st.one_of(st.none(), st.integers(-(10**15), 10**15)),
    t_offset=st.integers(-(10**15), 10**15),
    inclusive=st.booleans(),
)
def test_interval_properties(
    seconds: int, start_offset: int | None, t_offset: int, inclusive: bool
) -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    start_at = None if start_offset is None else base + timedelta(microseconds=start_offset)
    sched = IntervalSchedule(seconds=seconds, start_at=start_at)
    t = base + timedelta(microseconds=t_offset)
    period = timedelta(seconds=seconds)
    anchor = start_at or datetime(1970, 1, 1, tzinfo=UTC)

    nxt = next_after(sched, t, inclusive=inclusive)
    assert nxt is not None
    assert nxt > t or (inclusive and nxt == t)
    assert (nxt - anchor) % period == timedelta(0)
    assert is_occurrence(sched, nxt)
    before = nxt - period
    assert (
        before < t
        or (not inclusive and before == t)
        or (start_at is not None and before < start_at)
    )

    prev = previous_before(sched, t, inclusive=inclusive)
    if prev is None:
        assert start_at is not None and t <= start_at
    else:
        assert prev < t or (inclusive and prev == t)
        assert is_occurrence(sched, prev)
        assert prev + period > t or (not inclusive and prev + period == t)

    run = list(islice(occurrences(sched, t), 5))
    assert all(b - a == period for a, b in pairwise(run))
