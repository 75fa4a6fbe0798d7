"""`cronplan import --from systemd`: timers (with their services) in; next fires as systemd computes them.

The round trip compares with `systemd-analyze calendar --base-time` where that binary exists, and always
with instants written by hand from systemd.time(7).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from cronplan.documents.importers.systemd_calendar import CalendarError, parse_span, to_cron
from tests.fixtures_core import Project
from tests.import_helpers import DATA, by_name, import_into, next_utc

SYSTEMD = DATA / "systemd"
TIMERS = sorted(SYSTEMD.glob("*.timer"))

# (job name in the import, the OnCalendar= it came from)
CALENDARS = [
    ("backup", "*-*-* 03:15:00"),
    ("reports (Mon..Fri 09:00)", "Mon..Fri 09:00"),
    ("reports (Mon,Wed *-*-* 10:00 Europe/Berlin)", "Mon,Wed *-*-* 10:00 Europe/Berlin"),
    ("reports (*-*-01 00:00:00)", "*-*-01 00:00:00"),
    ("shorthand (weekly)", "weekly"),
    ("shorthand (hourly)", "hourly"),
    ("shorthand (*-*-* *:0/15:30 UTC)", "*-*-* *:0/15:30 UTC"),
    ("shorthand (quarterly)", "quarterly"),
]
# Past and future of any test run, and both DST shifts in Europe.
BASES = [
    "2021-03-27T12:00:07Z",
    "2026-10-24T23:59:59Z",
    "2033-10-29T12:00:07Z",
    "2041-12-31T23:50:07Z",
]


def _systemd_next(spec: str, base: str, n: int) -> list[str]:
    stamp = base.replace("T", " ").replace("Z", " UTC")
    out = subprocess.run(
        ["systemd-analyze", "calendar", f"--iterations={n}", f"--base-time={stamp}", spec],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TZ": "UTC", "LC_ALL": "C"},
        timeout=30,
    ).stdout
    found = re.findall(r"(?:Next elapse|Iter\. #\d+): \w+ (\S+) (\S+) UTC", out)
    return [f"{day}T{time}Z" for day, time in found]


def _has_base_time() -> bool:
    if shutil.which("systemd-analyze") is None:
        return False
    probe = subprocess.run(
        ["systemd-analyze", "calendar", "--base-time=2030-01-01 00:00:00 UTC", "daily"],
        capture_output=True,
        timeout=30,
    )
    return probe.returncode == 0


@pytest.mark.skipif(
    not _has_base_time(), reason="systemd-analyze with --base-time is not installed"
)
@pytest.mark.parametrize("base", BASES)
def test_round_trip_matches_systemd_analyze(project: Project, base: str) -> None:
    _, doc = import_into(project, "systemd", *TIMERS)
    jobs = by_name(doc)
    for name, spec in CALENDARS:
        assert next_utc(project, jobs[name]["id"], base, 6) == _systemd_next(spec, base, 6), (
            name,
            base,
        )


# Calendars checked through the schedule engine alone (no timer files needed).
MORE_CALENDARS = [
    "Mon-Fri 09:00",
    "Sat,Sun *-*-* 08:30:15",
    "*-*-* 8,12,18:00",
    "*:0/15",
    "*-*-* 9..17:00:00",
    "*-*-1/2 06:00",
    "*-02-29 12:00",
    "semiannually",
    "minutely",
    "Tue *-*-* 02:30 Europe/Berlin",
    "*-*-* 02:30 America/New_York",
    "*-*-* 03:00:00 Australia/Lord_Howe",
]


@pytest.mark.skipif(
    not _has_base_time(), reason="systemd-analyze with --base-time is not installed"
)
@pytest.mark.parametrize("base", BASES)
def test_more_calendars_match_systemd_analyze(project: Project, base: str) -> None:
    jobs = []
    for i, spec in enumerate(MORE_CALENDARS):
        cron = to_cron(spec)
        schedule = {"kind": "cron", "expr": cron.expr, **({"tz": cron.tz} if cron.tz else {})}
        jobs.append({"id": f"c{i}", "schedule": schedule})
    project.write_jobs(jobs)
    mismatches = {
        spec: (ours, theirs)
        for i, spec in enumerate(MORE_CALENDARS)
        if (ours := next_utc(project, f"c{i}", base, 6)) != (theirs := _systemd_next(spec, base, 6))
    }
    assert mismatches == {}


def test_round_trip_by_hand(project: Project) -> None:
    """The same comparison from systemd.time(7)'s rules, so it runs without systemd too."""
    _, doc = import_into(project, "systemd", *TIMERS)
    jobs = by_name(doc)
    # Mon..Fri 09:00 from Saturday 27 March 2021.
    assert next_utc(project, jobs["reports (Mon..Fri 09:00)"]["id"], "2021-03-27T12:00:07Z", 2) == [
        "2021-03-29T09:00:00Z",
        "2021-03-30T09:00:00Z",
    ]
    # Mon,Wed 10:00 in Berlin across the autumn shift of 2033 (Sunday 30 October).
    berlin = jobs["reports (Mon,Wed *-*-* 10:00 Europe/Berlin)"]["id"]
    assert next_utc(project, berlin, "2033-10-25T12:00:07Z", 2) == [
        "2033-10-26T08:00:00Z",  # Wed, CEST
        "2033-10-31T09:00:00Z",  # Mon, CET
    ]
    # *:0/15:30: at second 30 of every quarter hour.
    quarter = jobs["shorthand (*-*-* *:0/15:30 UTC)"]["id"]
    assert next_utc(project, quarter, "2041-12-31T23:50:07Z", 2) == [
        "2042-01-01T00:00:30Z",
        "2042-01-01T00:15:30Z",
    ]
    # quarterly: 1 January, April, July, October.
    quarterly = jobs["shorthand (quarterly)"]["id"]
    assert next_utc(project, quarterly, "2026-10-24T23:59:59Z", 2) == [
        "2027-01-01T00:00:00Z",
        "2027-04-01T00:00:00Z",
    ]


def test_timer_and_service_become_one_job(project: Project) -> None:
    res, doc = import_into(project, "systemd", SYSTEMD / "backup.timer")
    (job,) = doc["jobs"]
    assert job["schedule"] == {"kind": "cron", "expr": "15 3 * * *"}
    # ExecStart= is an argv (no shell); ${VAR} from the service's Environment= expanded as systemd does.
    assert job["command"] == [
        "/usr/local/bin/backup",
        "--target",
        "/mnt/backup",
        "--label",
        "nightly run",
    ]
    assert job["env"] == {"BACKUP_TARGET": "/mnt/backup", "RETENTION": "14", "LANG": "C.UTF-8"}
    assert job["cwd"] == "/srv"
    timer, service = SYSTEMD / "backup.timer", SYSTEMD / "backup.service"
    assert f"{timer}:7: Persistent= is not carried over" in res.stderr
    assert f"{timer}:8: RandomizedDelaySec= is not carried over" in res.stderr
    assert f"{service}:10: User=backup is not carried over" in res.stderr


def test_interval_and_inexact_calendars_are_reported(project: Project) -> None:
    res, doc = import_into(project, "systemd", *TIMERS)
    poll = by_name(doc)["poll"]
    assert poll["schedule"] == {"kind": "interval", "minutes": 15}
    assert next_utc(project, poll["id"], "2030-01-01T00:07:00Z", 2) == [
        "2030-01-01T00:15:00Z",
        "2030-01-01T00:30:00Z",
    ]
    reports = SYSTEMD / "reports.timer"
    for expected in (
        f"{SYSTEMD / 'poll.timer'}:2: OnBootSec= is not carried over",
        f"{SYSTEMD / 'poll.timer'}:3: OnUnitActiveSec=15min: every 900 s counted from the epoch",
        f"{reports}:5: 5 triggers in this timer: each is imported as a job of its own",
        f"{reports}:9: not imported: OnCalendar=2027-*-* 00:00:00: a year (2027) cannot be expressed",
        f"{reports}:10: not imported: OnCalendar=Sat *-*-1..7 18:00: weekdays together with days",
        f"{SYSTEMD / 'report-runner.service'}:3: ExecStart=- (failure ignored)",
    ):
        assert expected in res.stderr, expected


@pytest.mark.parametrize(
    ("spec", "expr", "tz"),
    [
        ("daily", "0 0 * * *", None),
        ("minutely", "* * * * *", None),
        ("Mon..Fri 09:00", "0 9 * * 1-5", None),
        ("Sat,Sun *-*-* 08:30:15", "15 30 8 * * 6,7", None),
        ("*-*-* 8..17:00", "0 8-17 * * *", None),
        ("*-*-1/2 00:00 Asia/Tokyo", "0 0 1-31/2 * *", "Asia/Tokyo"),
        ("monthly UTC", "0 0 1 * *", "UTC"),
        ("03-15 12:00", "0 12 15 3 *", None),
    ],
)
def test_calendar_forms(spec: str, expr: str, tz: str | None) -> None:
    cron = to_cron(spec)
    assert (cron.expr, cron.tz) == (expr, tz)


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("*-02~1 00:00", "'~'"),
        ("*-*-* 00:00:00.5", "fractional seconds"),
        ("Fri..Mon 10:00", "wraps around the week"),
        ("Mon 2030-*-* 10:00", "a year (2030)"),
        ("@1700000000", "one-shot"),
        ("Fri *-*-13 00:00", "weekdays together with days of the month"),
    ],
)
def test_calendar_forms_cron_cannot_say(spec: str, why: str) -> None:
    with pytest.raises(CalendarError, match=re.escape(why)):
        to_cron(spec)


def test_time_spans() -> None:
    assert parse_span("15min") == 900
    assert parse_span("1h 30min") == 5400
    assert parse_span("90") == 90
    assert parse_span("2d") == 172800
    with pytest.raises(CalendarError):
        parse_span("5 parsecs")


def test_a_file_that_is_not_a_timer_is_an_error(project: Project, tmp_path: Path) -> None:
    bad = tmp_path / "x.timer"
    bad.write_text("this is not a unit file\n")
    res = project.cli("import", "--from", "systemd", str(bad))
    assert res.exit_code == 1
    assert f"{bad}:1: cannot import: expected Key=value or [Section]" in res.stderr


def test_the_reported_dst_difference_is_real(project: Project, tmp_path: Path) -> None:
    """systemd skips a local time that does not exist; cronplan (Debian cron) runs it after the gap.

    The import says so, and this is the one place the next fires differ."""
    (tmp_path / "ny.timer").write_text("[Timer]\nOnCalendar=*-*-* 02:30 America/New_York\n")
    (tmp_path / "ny.service").write_text("[Service]\nExecStart=/usr/bin/true\n")
    res, doc = import_into(project, "systemd", tmp_path / "ny.timer")
    assert f"{tmp_path / 'ny.timer'}:2: America/New_York shifts its clocks" in res.stderr
    ours = next_utc(project, doc["jobs"][0]["id"], "2031-03-08T12:00:00Z", 2)
    assert ours == ["2031-03-09T07:00:00Z", "2031-03-10T06:30:00Z"]  # 03:00 EDT on the spring day
    systemd = ["2031-03-10T06:30:00Z", "2031-03-11T06:30:00Z"]  # 9 March skipped
    if _has_base_time():
        assert _systemd_next("*-*-* 02:30 America/New_York", "2031-03-08T12:00:00Z", 2) == systemd


def test_missing_service_is_reported(project: Project, tmp_path: Path) -> None:
    timer = tmp_path / "lonely.timer"
    timer.write_text("[Timer]\nOnCalendar=daily\nUnit=elsewhere.service\n")
    res = project.cli("import", "--from", "systemd", str(timer))
    assert res.exit_code == 1
    assert f"{timer}:3: not imported: cannot read the service Unit=elsewhere.service" in res.stderr
    assert f"{timer}:2: not imported: its service has no usable ExecStart=" in res.stderr
