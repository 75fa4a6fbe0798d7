"""Time edge cases (docs/jobs.md, "Daylight saving time"): naive one-shots follow cron's DST rules, and a
cron step that cannot apply is a located error. Through the real CLI, with the clock pinned by --now,
in years before and after today."""

from __future__ import annotations

import pytest

BERLIN = "Europe/Berlin"
LORD_HOWE = "Australia/Lord_Howe"  # a 30-minute shift: +10:30 in winter, +11:00 in summer


def _utc_column(stdout: str) -> list[str]:
    return [line.split()[-1] for line in stdout.splitlines()]


@pytest.mark.parametrize(
    ("run_at", "tz", "now", "expected"),
    [
        # Inside the spring-forward gap: the first instant after it (03:00 CEST), not 03:30.
        ("2026-03-29T02:30:00", BERLIN, "2026-03-01T00:00:00Z", "2026-03-29T01:00:00Z"),
        ("2019-03-31T02:59:59", BERLIN, "2019-03-01T00:00:00Z", "2019-03-31T01:00:00Z"),
        ("2041-03-31T02:00:00", BERLIN, "2041-03-01T00:00:00Z", "2041-03-31T01:00:00Z"),
        # Occurs twice (autumn): its first instant, still in summer time.
        ("2026-10-25T02:30:00", BERLIN, "2026-10-01T00:00:00Z", "2026-10-25T00:30:00Z"),
        ("2039-10-30T02:30:00", BERLIN, "2039-10-01T00:00:00Z", "2039-10-30T00:30:00Z"),
        # Lord Howe: 02:00 -> 02:30 in October; 02:15 means 02:30 (+11:00).
        ("2026-10-04T02:15:00", LORD_HOWE, "2026-10-01T00:00:00Z", "2026-10-03T15:30:00Z"),
        ("2020-10-04T02:00:00", LORD_HOWE, "2020-10-01T00:00:00Z", "2020-10-03T15:30:00Z"),
        # ... and 02:00 -> 01:30 in April: 01:45 occurs twice, the first is at +11:00.
        ("2026-04-05T01:45:00", LORD_HOWE, "2026-04-01T00:00:00Z", "2026-04-04T14:45:00Z"),
        ("2035-04-01T01:45:00", LORD_HOWE, "2035-03-20T00:00:00Z", "2035-03-31T14:45:00Z"),
    ],
)
def test_naive_once_follows_the_cron_dst_rules(
    project, run_at: str, tz: str, now: str, expected: str
) -> None:
    project.write_jobs([{"id": "o", "schedule": {"kind": "once", "run_at": run_at, "tz": tz}}])
    res = project.cli("next", "o", "--now", now)
    assert res.exit_code == 0, res.stderr
    assert _utc_column(res.stdout) == [expected]


def test_naive_once_and_cron_agree_inside_a_gap(project) -> None:
    project.write_jobs(
        [
            {
                "id": "o",
                "schedule": {"kind": "once", "run_at": "2026-03-29T02:30:00", "tz": BERLIN},
            },
            {"id": "c", "schedule": {"kind": "cron", "expr": "30 2 29 3 *", "tz": BERLIN}},
        ]
    )
    now = "2026-03-01T00:00:00Z"
    once = project.cli("next", "o", "--now", now)
    cron = project.cli("next", "c", "-n", "1", "--now", now)
    assert _utc_column(once.stdout) == _utc_column(cron.stdout) == ["2026-03-29T01:00:00Z"]


def test_lord_howe_cron_across_both_half_hour_shifts(project) -> None:
    project.write_jobs(
        [
            {"id": "gap", "schedule": {"kind": "cron", "expr": "15 2 * * *", "tz": LORD_HOWE}},
            {"id": "twice", "schedule": {"kind": "cron", "expr": "45 1 * * *", "tz": LORD_HOWE}},
        ]
    )
    gap = project.cli("next", "gap", "-n", "3", "--now", "2026-10-02T00:00:00Z")
    assert _utc_column(gap.stdout) == [
        "2026-10-02T15:45:00Z",  # 02:15 +10:30
        "2026-10-03T15:30:00Z",  # 02:15 does not exist: 02:30 +11:00, the end of the gap
        "2026-10-04T15:15:00Z",  # 02:15 +11:00
    ]
    twice = project.cli("next", "twice", "-n", "3", "--now", "2027-04-02T00:00:00Z")
    assert _utc_column(twice.stdout) == [
        "2027-04-02T14:45:00Z",  # 01:45 +11:00
        "2027-04-03T14:45:00Z",  # 01:45 occurs twice: once, at the first (+11:00)
        "2027-04-04T15:15:00Z",  # 01:45 +10:30
    ]


@pytest.mark.parametrize(
    ("expr", "field"),
    [
        ("0 0 L/2 * *", "'L/2'"),
        ("0 0 LW/3 * *", "'LW/3'"),
        ("0 0 * * 5L/2", "'5L/2'"),
        ("0 0 1W/2 * *", "'1W/2'"),
        ("0 0 * * 5#2/2", "'5#2/2'"),
        ("0 0 1,L/2 * *", "'L/2'"),
    ],
)
def test_a_step_that_cannot_apply_is_a_located_error(project, expr: str, field: str) -> None:
    project.write_jobs([{"id": "x", "schedule": {"kind": "cron", "expr": expr}}])
    for args in (("validate",), ("plan", "--now", "2026-01-01T00:00:00Z")):
        res = project.cli(*args)
        assert res.exit_code == 1, res.stderr
        [line] = res.stderr.splitlines()
        assert line.startswith("jobs.json:7:17: /jobs/0/schedule/expr: the step in "), line
        assert f"field {field} cannot apply" in line


@pytest.mark.parametrize("expr", ["0 0 * * WED-FRI/2", "0 0 * JUL/2 *", "0 0 */2 * *"])
def test_steps_over_names_and_ranges_still_apply(project, expr: str) -> None:
    project.write_jobs([{"id": "x", "schedule": {"kind": "cron", "expr": expr}}])
    assert project.cli("validate").exit_code == 0
