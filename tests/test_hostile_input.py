"""Hostile input (docs/security.md): every such file is a located error and exit 1, through the real CLI.

Never exit 3, never a traceback, never a job silently missing from the plan (apply would cancel its arm).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOW = "2026-01-01T00:00:00Z"
LOCATED = re.compile(r"^jobs\.(json|yaml):\d+:\d+: /jobs/\d+/\S*: .+$")


def _job(job_id: str = "a", **extra: object) -> str:
    """A job's JSON text with ``extra`` members spliced in as raw JSON text (so hostile text survives)."""
    members = [f'"id": "{job_id}"', '"schedule": {"kind": "interval", "seconds": 60}']
    members += [f'"{k}": {v}' for k, v in extra.items()]
    if not any(k in extra for k in ("command", "http")):
        members.append('"command": ["true"]')
    return "{" + ", ".join(members) + "}"


def _write(project, *jobs: str) -> None:
    (project.root / "jobs.json").write_text('{"jobs": [\n' + ",\n".join(jobs) + "\n]}\n")


HOSTILE_JOBS = {
    "lone surrogate in a name": (_job(name='"half \\ud83d"'), "/jobs/1/name", "lone surrogate"),
    "lone surrogate in argv": (
        _job(command='["echo", "\\udc00"]'),
        "/jobs/1/command/1",
        "surrogate",
    ),
    "lone surrogate in an x- key": (_job(**{"x-\\ud83d": "1"}), "/jobs/1/x-", "surrogate"),
    "1e400 seconds": (
        '{"id": "a", "schedule": {"kind": "interval", "seconds": 1e400}, "command": ["true"]}',
        "/jobs/1/schedule/seconds",
        "1e400 is out of range",
    ),
    "5,000-digit x- integer": (
        _job(**{"x-big": "9" * 5000}),
        "/jobs/1/x-big",
        "5000-digit integer is out of range",
    ),
    "1e18 seconds": (
        '{"id": "a", "schedule": {"kind": "interval", "seconds": 1e18}, "command": ["true"]}',
        "/jobs/1/schedule/seconds",
        "at most 100 years",
    ),
    "a 20-digit number of minutes": (
        '{"id": "a", "schedule": {"kind": "interval", "minutes": 99999999999999999999}, '
        '"command": ["true"]}',
        "/jobs/1/schedule/minutes",
        "at most 100 years",
    ),
    "duplicate key": (
        '{"id": "a", "schedule": {"kind": "interval", "seconds": 60, "seconds": 5}, '
        '"command": ["true"]}',
        "/jobs/1/schedule/seconds",
        "duplicate key 'seconds'",
    ),
    "url that does not parse": (
        _job(http='{"url": "http://[::1"}'),
        "/jobs/1/http/url",
        "not a valid URL",
    ),
    "port over 65535": (
        _job(http='{"url": "http://127.0.0.1:99999/hook"}'),
        "/jobs/1/http/url",
        "Port out of range",
    ),
    "NUL in argv": (_job(command='["echo", "a\\u0000b"]'), "/jobs/1/command/1", "NUL byte"),
    "NUL in an env value": (
        _job(env='{"A": "x\\u0000"}'),
        "/jobs/1/env/A",
        "NUL byte",
    ),
    "NUL in cwd": (_job(cwd='"/tmp\\u0000x"'), "/jobs/1/cwd", "NUL byte"),
    "= in an env name": (_job(env='{"A=B": "x"}'), "/jobs/1/env/A=B", "environment variable name"),
    "empty env name": (_job(env='{"": "x"}'), "/jobs/1/env/", "environment variable name"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_JOBS))
def test_hostile_job_is_a_located_error_in_validate_plan_and_apply(project, case: str) -> None:
    text, pointer, words = HOSTILE_JOBS[case]
    _write(project, _job("good"), text)
    for args in (
        ("validate",),
        ("plan", "--now", NOW),
        ("apply", "--auto-approve", "--now", NOW),
    ):
        res = project.cli(*args)
        assert res.exit_code == 1, (args, res.stderr)
        assert "Traceback" not in res.stderr and "internal error" not in res.stderr
        lines = res.stderr.splitlines()
        assert any(LOCATED.match(line) and f" {pointer}" in line for line in lines), lines
        assert words in res.stderr, res.stderr
        assert res.stdout == "" or "Apply complete" not in res.stdout


def test_a_job_that_turns_hostile_keeps_its_arm(project) -> None:
    """The surrogate case of issue 13: the job vanished from the plan and apply cancelled its arm."""
    _write(project, _job("good"), _job("a", name='"fine"'))
    assert project.cli("apply", "--auto-approve", "--now", NOW).exit_code == 0
    _write(project, _job("good"), _job("a", name='"half \\ud83d"'))
    res = project.cli("apply", "--auto-approve", "--now", NOW)
    assert res.exit_code == 1
    assert "cancel" not in res.stdout.lower()
    # Both arms are still there: with the job mended, nothing is left to do.
    _write(project, _job("good"), _job("a", name='"fine"'))
    res = project.cli("plan", "--now", NOW, "--detailed-exitcode", "--format", "json")
    assert res.exit_code == 0, res.stdout
    assert {a["action"] for a in json.loads(res.stdout)["actions"]} == {"skip"}


def test_yaml_duplicate_keys_and_huge_integers_are_located(project) -> None:
    (project.root / "jobs.yaml").write_text(
        "jobs:\n"
        "- id: a\n"
        "  id: b\n"
        f"  x-big: {'9' * 5000}\n"
        "  schedule: {kind: interval, seconds: 60}\n"
        "  command: ['true']\n"
    )
    res = project.cli("validate", "-f", "jobs.yaml")
    assert res.exit_code == 1
    assert res.stderr.splitlines() == [
        "jobs.yaml:3:3: /jobs/0/id: duplicate key 'id' in one object (only one would count); "
        "keep one",
        "jobs.yaml:4:10: /jobs/0/x-big: a 5000-digit integer is out of range; use a shorter "
        "number or a string",
    ]


def test_config_with_duplicate_keys_and_huge_numbers_is_located(project) -> None:
    project.write_config(
        f"jobs: jobs.json\nprovider: local\nprovider: nas\ntimezone: UTC\nx-n: {'1' * 5000}\n"
    )
    for args in (("validate",), ("plan", "--now", NOW)):
        res = project.cli(*args)
        assert res.exit_code == 1, res.stderr
        assert "cronplan.yaml:3:1: /provider: duplicate key 'provider'" in res.stderr
        assert "cronplan.yaml:5:6: /x-n: a 5000-digit integer is out of range" in res.stderr


def _saved_plan(project) -> Path:
    _write(project, _job("good"))
    res = project.cli("plan", "--now", NOW, "--out", "plan.json")
    assert res.exit_code == 0, res.stderr
    return project.root / "plan.json"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            '"provider": "local",',
            '"provider": "local",\n  "provider": "nas",',
            ":4:3: /provider: duplicate key 'provider'",
        ),
        ('"reason": "missing"', '"reason": "missing\\ud83d"', "/actions/0/reason: this text"),
        ('"arm": 1,', '"arm": ' + "9" * 5000 + ",", "/summary/arm: a 5000-digit integer"),
        ('"arm": 1,', '"arm": 1e400,', "/summary/arm: 1e400 is out of range"),
    ],
)
def test_hostile_saved_plan_is_refused_located(project, old: str, new: str, expected: str) -> None:
    path = _saved_plan(project)
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    res = project.cli("apply", "plan.json", "--now", NOW)
    assert res.exit_code == 1, res.stderr
    assert res.stderr.startswith("plan.json:") and expected in res.stderr, res.stderr
    assert "Apply complete" not in res.stdout


@pytest.mark.parametrize(
    "url", ["http://[::1", "http://127.0.0.1:99999/x", "http://user:pw@127.0.0.1:70000/x"]
)
def test_an_applied_http_job_with_a_bad_url_fails_its_run_not_cronplan(url: str) -> None:
    """A job applied before URLs were checked still fires: its run fails with a message (no crash)."""
    from datetime import datetime, timezone

    from cronplan.clock import PinnedClock
    from cronplan.model import HttpAction, IntervalSchedule, Job
    from cronplan.runner import run_job

    doc = {"id": "h", "schedule": {"kind": "interval", "seconds": 60}, "http": {"url": url}}
    job = Job(
        id="h",
        schedule=IntervalSchedule(seconds=60),
        spec=doc,
        digest="d",
        raw=doc,
        action=HttpAction(url=url),
    )
    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    res = run_job(job, runner_argv=None, fire_at=at, clock=PinnedClock(at))
    assert res.status == "failed" and res.error and "failed" in res.error
    assert "pw" not in res.error


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('callback_url: "http://127.0.0.1:1/\\ud83d"', "cronplan.yaml:4:"),
        ("x-n: 1.0e+400", "cronplan.yaml:4:6: /x-n: "),
    ],
)
def test_config_with_a_surrogate_or_an_infinite_number_is_located(
    project, line: str, expected: str
) -> None:
    project.write_config(f"jobs: jobs.json\nprovider: local\ntimezone: UTC\n{line}\n")
    res = project.cli("plan", "--now", NOW)
    assert res.exit_code == 1, res.stderr
    assert res.stderr.startswith(expected), res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("url", ["http://[::1", "http://127.0.0.1:99999"])
def test_config_callback_url_that_cannot_be_called_is_located(project, url: str) -> None:
    project.write_config(f"jobs: jobs.json\nprovider: local\ncallback_url: {url}\n")
    res = project.cli("validate")
    assert res.exit_code == 1
    assert res.stderr.startswith("cronplan.yaml:3:15: /callback_url: not a valid URL"), res.stderr
