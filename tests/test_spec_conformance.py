"""Black-box conformance with /work/shared/SPEC.md: every command, flag, exit code and format it names.

Each test runs ``python -m cronplan`` as a real subprocess (local provider, SQLite ledger) and asserts
what SPEC states, quoting it where the wording matters. Tests are grouped by SPEC section.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from cronplan.clock import PinnedClock
from cronplan.timefmt import parse_ts
from tests.fixtures_core import Project, Result
from tests.fixtures_serve import real_now

NOW = "2026-11-27T08:00:00Z"  # a Friday, winter time in Europe (CET = UTC+1)
TS_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
PLAN_LINE = re.compile(
    r"^Plan: \d+ to arm, \d+ to re-arm, \d+ to update, \d+ to cancel, \d+ unchanged\.$"
)
NO_CHANGES = "No changes. Arms match jobs.json."
ANSI = "\x1b["


def cron(expr: str, tz: str | None = None) -> dict[str, Any]:
    sched: dict[str, Any] = {"kind": "cron", "expr": expr}
    if tz:
        sched["tz"] = tz
    return sched


def job(job_id: str, schedule: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": job_id, "schedule": schedule, "command": ["true"], **extra}


def no_traceback(res: Result) -> None:
    assert "Traceback" not in res.stdout + res.stderr


def plan_json(project: Project, *args: str, now: str = NOW) -> dict[str, Any]:
    res = project.run("plan", "--format", "json", "--now", now, *args)
    assert res.exit_code == 0, res.stderr
    doc: dict[str, Any] = json.loads(res.stdout)
    return doc


def by_job(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["job_id"]: a for a in doc["actions"]}


def status_json(project: Project) -> dict[str, dict[str, Any]]:
    res = project.run("status", "--format", "json")
    assert res.exit_code == 0, res.stderr
    return {j["job_id"]: j for j in json.loads(res.stdout)["jobs"]}


def armed(project: Project) -> dict[str, str]:
    """The live arms, read straight from the local provider's store: job id -> fire_at."""
    from cronplan.local.provider import LocalProvider
    from cronplan.provider import ProviderSettings
    from cronplan.timefmt import format_ts

    provider = LocalProvider(ProviderSettings(name="local", base_dir=project.root))
    try:
        return {a.job_id: format_ts(a.fire_at) for a in provider.list_arms()}
    finally:
        provider.close()


def last_status(project: Project, job_id: str) -> str | None:
    """The status of the job's latest run, read straight from the SQLite ledger."""
    from cronplan.ledger.sqlite import SqliteLedger

    ledger = SqliteLedger.from_url("sqlite:///.cronplan/state.db", base_dir=project.root)
    try:
        runs = ledger.runs(job_id)
    finally:
        ledger.close()
    return runs[0].status if runs else None


def apply_now(project: Project, now: str = NOW, *args: str) -> Result:
    res = project.run("apply", "--auto-approve", "--now", now, *args)
    assert res.exit_code == 0, res.stderr
    return res


def run_concurrently(
    project: Project, calls: list[tuple[tuple[str, ...], dict[str, str] | None]]
) -> list[Result]:
    """Independent read-only invocations, run side by side to keep the suite fast."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda c: project.run(*c[0], env=c[1]), calls))


def run_bare(
    cwd: Path, *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> Result:
    """``python -m cronplan`` without the fixture's ``--config`` (to test config discovery)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "cronplan", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=60,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def daily(project: Project) -> Project:
    """One daily job at 09:00 UTC; at NOW (08:00Z) its first arm is 09:00Z today."""
    project.write_jobs([job("daily", cron("0 9 * * *"))])
    return project


# =========================================================================== §3 Configuration


def test_config_flag_names_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "my.yaml").write_text("jobs: ../wanted.json\n")
    (tmp_path / "wanted.json").write_text(json.dumps({"jobs": [job("w", cron("0 9 * * *"))]}))
    (tmp_path / "cronplan.yaml").write_text("jobs: nothing-here.json\n")
    res = run_bare(tmp_path, "--config", "elsewhere/my.yaml", "validate")
    assert res.exit_code == 0, res.stderr
    assert "1 job" in res.stdout


def test_cronplan_config_env_is_used_without_flag(tmp_path: Path) -> None:
    (tmp_path / "env.yaml").write_text("jobs: env-jobs.json\n")
    (tmp_path / "env-jobs.json").write_text(
        json.dumps([job("a", cron("0 9 * * *")), job("b", cron("0 9 * * *"))])
    )
    res = run_bare(tmp_path, "validate", env={"CRONPLAN_CONFIG": str(tmp_path / "env.yaml")})
    assert res.exit_code == 0, res.stderr
    assert "2 jobs" in res.stdout


def test_config_flag_beats_cronplan_config_env(tmp_path: Path) -> None:
    (tmp_path / "env.yaml").write_text("jobs: missing-file.json\n")
    (tmp_path / "flag.yaml").write_text("jobs: ok.json\n")
    (tmp_path / "ok.json").write_text(json.dumps({"jobs": []}))
    res = run_bare(
        tmp_path,
        "--config",
        "flag.yaml",
        "validate",
        env={"CRONPLAN_CONFIG": str(tmp_path / "env.yaml")},
    )
    assert res.exit_code == 0, res.stderr


def test_cronplan_yaml_in_working_directory_is_the_default(tmp_path: Path) -> None:
    (tmp_path / "cronplan.yaml").write_text("jobs: mine.yaml\n")
    (tmp_path / "mine.yaml").write_text(
        "jobs:\n  - id: y\n    schedule: {kind: cron, expr: '*/5 * * * *'}\n"
    )
    res = run_bare(tmp_path, "validate")
    assert res.exit_code == 0, res.stderr
    assert "1 job" in res.stdout


def test_config_file_is_optional_and_defaults_apply(tmp_path: Path) -> None:
    (tmp_path / "jobs.json").write_text(json.dumps({"jobs": [job("d", cron("0 9 * * *"))]}))
    res = run_bare(tmp_path, "apply", "--auto-approve", "--now", NOW)
    assert res.exit_code == 0, res.stderr
    # Defaults: provider local, state sqlite:///.cronplan/state.db, timezone UTC.
    assert (tmp_path / ".cronplan" / "state.db").exists()
    res = run_bare(tmp_path, "status", "--format", "json")
    assert json.loads(res.stdout)["jobs"][0]["armed_fire_at"] == "2026-11-27T09:00:00Z"


def test_config_timezone_is_the_default_zone(project: Project) -> None:
    project.write_config("jobs: jobs.json\nprovider: local\ntimezone: Europe/Berlin\n")
    project.write_jobs([job("berlin", cron("0 9 * * *")), job("utc", cron("0 9 * * *", "UTC"))])
    acts = by_job(plan_json(project, now="2026-11-27T00:00:00Z"))
    assert acts["berlin"]["after"]["fire_at"] == "2026-11-27T08:00:00Z"
    assert acts["utc"]["after"]["fire_at"] == "2026-11-27T09:00:00Z"


def test_state_from_environment_variable(project: Project) -> None:
    project.write_config("jobs: jobs.json\nprovider: local\nstate: env:SPEC_TEST_STATE\n")
    project.write_jobs([job("a", cron("0 9 * * *"))])
    res = project.run(
        "apply", "--auto-approve", "--now", NOW, env={"SPEC_TEST_STATE": "sqlite:///elsewhere.db"}
    )
    assert res.exit_code == 0, res.stderr
    assert (project.root / "elsewhere.db").exists()
    unset = project.run("plan", "--now", NOW)
    assert unset.exit_code == 1
    assert "SPEC_TEST_STATE" in unset.stderr
    no_traceback(unset)


def test_dsn_password_is_masked(project: Project) -> None:
    project.write_config("jobs: jobs.json\nprovider: local\nstate: env:SPEC_TEST_STATE\n")
    dsn = "postgresql://user:pw-s3cr3t@127.0.0.1:1/db?connect_timeout=2"
    res = project.run("plan", "--now", NOW, env={"SPEC_TEST_STATE": dsn})
    assert res.exit_code == 1
    assert "pw-s3cr3t" not in res.stdout + res.stderr
    no_traceback(res)


BAD_CONFIGS = [
    "provider: [\n",
    "provider: nosuch\n",
    "timezone: Mars/Olympus\n",
    "state: ftp://x\n",
]


def test_bad_config_is_exit_1_without_traceback(tmp_path: Path) -> None:
    projects = []
    for i, text in enumerate(BAD_CONFIGS):
        (tmp_path / str(i)).mkdir()
        projects.append(Project(tmp_path / str(i)))
        projects[-1].write_config(text)
        projects[-1].write_jobs([])
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda p: p.run("plan", "--now", NOW), projects))
    for text, res in zip(BAD_CONFIGS, results, strict=True):
        assert res.exit_code == 1, text
        assert res.stdout == "", text
        assert res.stderr.strip(), text
        no_traceback(res)


def test_missing_config_named_by_flag_is_an_error(tmp_path: Path) -> None:
    res = run_bare(tmp_path, "--config", "nope.yaml", "plan")
    assert res.exit_code == 1
    assert "nope.yaml" in res.stderr
    no_traceback(res)


# =========================================================================== §4 jobs.json


def test_jobs_object_and_bare_list_are_both_accepted(project: Project) -> None:
    jobs = [job("a", cron("0 9 * * *")), job("b", cron("0 10 * * *"))]
    project.write_jobs({"jobs": jobs})
    wrapped = project.run("plan", "--format", "json", "--now", NOW)
    (project.root / "jobs.json").write_text(json.dumps(jobs))
    bare = project.run("plan", "--format", "json", "--now", NOW)
    assert wrapped.exit_code == bare.exit_code == 0
    assert json.loads(wrapped.stdout)["actions"] == json.loads(bare.stdout)["actions"]


def test_jobs_yaml_is_accepted(project: Project) -> None:
    project.write_config("jobs: jobs.yaml\nprovider: local\n")
    (project.root / "jobs.yaml").write_text(
        "jobs:\n  - id: y\n    schedule: {kind: cron, expr: '0 9 * * *'}\n    command: [echo, hi]\n"
    )
    acts = by_job(plan_json(project))
    assert acts["y"]["after"]["fire_at"] == "2026-11-27T09:00:00Z"


def test_cron_with_six_fields_has_seconds_first(project: Project) -> None:
    project.write_jobs([job("s", cron("30 0 9 * * *"))])
    acts = by_job(plan_json(project))
    assert acts["s"]["after"]["fire_at"] == "2026-11-27T09:00:30Z"


def test_cron_is_evaluated_in_its_tz(project: Project) -> None:
    project.write_jobs([job("b", cron("0 9 * * 1-5", "Europe/Berlin"))])
    acts = by_job(plan_json(project, now="2026-11-27T08:30:00Z"))  # Friday 09:30 Berlin
    assert acts["b"]["after"]["fire_at"] == "2026-11-30T08:00:00Z"  # Monday 09:00 CET


def _next_utc(project: Project, job_id: str, n: int, now: str) -> list[str]:
    res = project.run("next", job_id, "-n", str(n), "--now", now)
    assert res.exit_code == 0, res.stderr
    return [re.findall(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", ln)[0] for ln in res.stdout.splitlines()]


def test_cron_dst_gap_fires_at_first_instant_after(project: Project) -> None:
    project.write_jobs([job("g", cron("30 2 * * *", "Europe/Berlin"))])
    # 2026-03-29 02:30 does not exist in Berlin; the first instant after the gap is 03:00 CEST.
    assert _next_utc(project, "g", 2, "2026-03-28T12:00:00Z") == [
        "2026-03-29T01:00:00Z",
        "2026-03-30T00:30:00Z",
    ]


def test_cron_dst_repeated_time_fires_once_wildcard_hour_twice(project: Project) -> None:
    project.write_jobs(
        [
            job("d", cron("30 2 * * *", "Europe/Berlin")),
            job("w", cron("30 * * * *", "Europe/Berlin")),
        ]
    )
    # 2026-10-25 02:30 happens twice in Berlin: a fixed hour fires at the first one only...
    assert _next_utc(project, "d", 2, "2026-10-24T12:00:00Z") == [
        "2026-10-25T00:30:00Z",
        "2026-10-26T01:30:00Z",
    ]
    # ...while a wildcard hour fires in both repeated hours.
    assert _next_utc(project, "w", 3, "2026-10-25T00:00:00Z") == [
        "2026-10-25T00:30:00Z",
        "2026-10-25T01:30:00Z",
        "2026-10-25T02:30:00Z",
    ]


def test_interval_schedules(project: Project) -> None:
    project.write_jobs(
        [
            job("sec", {"kind": "interval", "seconds": 30, "start_at": "2026-11-27T08:00:10Z"}),
            job("later", {"kind": "interval", "minutes": 15, "start_at": "2026-11-28T00:07:00Z"}),
            job("epoch", {"kind": "interval", "minutes": 15}),
        ]
    )
    acts = by_job(plan_json(project, now="2026-11-27T08:01:00Z"))
    assert acts["sec"]["after"]["fire_at"] == "2026-11-27T08:01:10Z"  # start_at + k*30s
    assert acts["later"]["after"]["fire_at"] == "2026-11-28T00:07:00Z"  # k >= 0: start_at first
    assert acts["epoch"]["after"]["fire_at"] == "2026-11-27T08:15:00Z"  # epoch + k*15min


def test_once_naive_run_at_is_read_in_tz(project: Project) -> None:
    project.write_jobs(
        [
            job("o", {"kind": "once", "run_at": "2026-12-01T09:00:00", "tz": "Europe/Berlin"}),
            job("p", {"kind": "once", "run_at": "2026-12-01T09:00:00+01:00"}),
        ]
    )
    acts = by_job(plan_json(project))
    assert acts["o"]["after"]["fire_at"] == "2026-12-01T08:00:00Z"
    assert acts["p"]["after"]["fire_at"] == "2026-12-01T08:00:00Z"


def test_disabled_paused_completed_get_no_arm(project: Project) -> None:
    project.write_jobs(
        [
            job("disabled", cron("0 9 * * *"), enabled=False),
            job("paused", cron("0 9 * * *"), state="paused"),
            job("completed", cron("0 9 * * *"), state="completed"),
            job("errored", cron("0 9 * * *"), state="error"),
        ]
    )
    acts = by_job(plan_json(project))
    for job_id in ("disabled", "paused", "completed"):
        assert acts[job_id]["action"] == "skip"
        assert acts[job_id]["after"] is None
        assert job_id in acts[job_id]["reason"]
    assert acts["errored"]["action"] == "arm"  # only enabled: false, paused and completed stop it


def test_paused_job_with_live_arm_is_cancelled(daily: Project) -> None:
    apply_now(daily)
    daily.write_jobs([job("daily", cron("0 9 * * *"), state="paused")])
    act = by_job(plan_json(daily))["daily"]
    assert act["action"] == "cancel"
    assert "paused" in act["reason"]


def test_repeat_times_limits_runs(project: Project) -> None:
    project.write_jobs([job("r", {"kind": "interval", "minutes": 1}, repeat={"times": 1})])
    apply_now(project)
    res = project.run("fire", "--job-id", "r", "--fire-at", NOW, "--now", NOW)
    assert res.exit_code == 0, res.stderr
    act = by_job(plan_json(project, now="2026-11-27T08:00:30Z"))["r"]
    assert act["action"] == "skip"
    assert "repeat exhausted" in act["reason"]
    assert armed(project).get("r") is None


@pytest.mark.parametrize(
    ("catch_up", "expected"),
    [("once", "2026-11-30T08:00:00Z"), ("skip", "2026-11-30T09:00:00Z")],
)
def test_catch_up_once_arms_missed_skip_arms_next(
    project: Project, catch_up: str, expected: str
) -> None:
    # Hourly: grace is 30 min. The job was armed and fired at NOW (re-armed 09:00), then the provider
    # dropped every fire for three days; at 08:45 the 08:00 occurrence is missed beyond grace.
    project.write_jobs([job("h", cron("0 * * * *"), catch_up=catch_up)])
    apply_now(project)
    res = project.run("fire", "--job-id", "h", "--fire-at", NOW, "--now", NOW)
    assert res.exit_code == 0, res.stderr
    act = by_job(plan_json(project, now="2026-11-30T08:45:00Z"))["h"]
    assert act["action"] in ("arm", "rearm")
    assert act["after"]["fire_at"] == expected
    if catch_up == "once":
        assert "catch-up of missed 08:00" in act["reason"]


def _fire_then_plan_years_away(root: Path, years: int, catch_up: str) -> dict[str, Any]:
    """Apply and fire at T (``years`` from the real today), then plan 3 days 45 minutes later.

    Returns the plan with every instant written as seconds after T, so plans made in different years
    compare equal exactly when cronplan decided the same way.
    """
    from datetime import timedelta

    from cronplan.timefmt import format_ts

    root.mkdir()
    proj = Project(root)
    proj.write_config("jobs: jobs.json\nprovider: local\ntimezone: UTC\n")
    proj.write_jobs([job("h", cron("0 * * * *"), catch_up=catch_up)])
    t = datetime(datetime.now(timezone.utc).year + years, 3, 10, 8, 0, tzinfo=timezone.utc)
    apply_now(proj, format_ts(t))
    res = proj.run("fire", "--job-id", "h", "--fire-at", format_ts(t), "--now", format_ts(t))
    assert res.exit_code == 0, res.stderr
    status = status_json(proj)["h"]
    assert status["last_run"]["started_at"] == format_ts(t)  # stamped by the pinned clock
    doc = plan_json(proj, now=format_ts(t + timedelta(days=3, minutes=45)))

    def rel(value: Any) -> Any:
        if isinstance(value, dict):
            # The lineage is random, and the basis digests absolute instants: neither is a decision.
            return {k: rel(v) for k, v in value.items() if k not in ("lineage", "basis")}
        if isinstance(value, list):
            return [rel(v) for v in value]
        if isinstance(value, str) and TS_Z.match(value):
            return (parse_ts(value) - t).total_seconds()
        if isinstance(value, str):
            return value.replace(str(t.year), "YEAR")
        return value

    return rel(doc)  # type: ignore[no-any-return]


@pytest.mark.parametrize("catch_up", ["once", "skip"])
def test_fire_then_plan_decides_the_same_years_in_the_past_and_in_the_future(
    tmp_path: Path, catch_up: str
) -> None:
    # SPEC §5 (docs/planning.md, "The clock"): --now pins every instant cronplan decides with, claim
    # times included, so the same inputs give the same plan whatever today's date is.
    past = _fire_then_plan_years_away(tmp_path / "past", -7, catch_up)
    future = _fire_then_plan_years_away(tmp_path / "future", 9, catch_up)
    assert past == future
    act = by_job(past)["h"]
    assert act["action"] in ("arm", "rearm")
    expected = 3 * 86400 if catch_up == "once" else 3 * 86400 + 3600
    assert act["after"]["fire_at"] == expected
    assert past["now"] == 3 * 86400 + 45 * 60


def test_hermes_written_jobs_file_validates_and_plans(project: Project) -> None:
    hermes_job = {
        "id": "a1b2c3d4e5f6",
        "name": "Morning brief",
        "prompt": "Summarise the news",
        "skills": ["web"],
        "model": "some-model",
        "provider": "some-llm",
        "base_url": "http://127.0.0.1:9/v1",
        "script": None,
        "no_agent": False,
        "context_from": [],
        "enabled_toolsets": ["web"],
        "workdir": "/tmp",
        "deliver": "origin",
        "origin": {"platform": "cli"},
        "attach_to_session": False,
        "reasoning_effort": "low",
        "failure_deliver": None,
        "monitor_script": None,
        "monitor_url": None,
        "schedule": {"kind": "interval", "minutes": 30, "display": "every 30m"},
        "repeat": {"times": None, "completed": 3},
        "enabled": True,
        "state": "scheduled",
        "next_run_at": "2026-11-27T08:30:00+00:00",
        "last_run_at": "2026-11-27T07:30:00+00:00",
        "last_status": "ok",
        "last_error": None,
        "fire_claim": {"at": "2026-11-27T07:30:00+00:00", "by": "host-1"},
        "created_at": "2026-11-01T00:00:00+00:00",
        "x-team": "ops",
    }
    project.write_jobs({"jobs": [hermes_job], "updated_at": "2026-11-27T07:30:01+00:00"})
    res = project.run("validate")
    assert res.exit_code == 0, res.stderr
    # A prompt job is run by the configured runner; without one, plan refuses it (§6), so configure one.
    project.write_config("jobs: jobs.json\nprovider: local\nrunner: [cat]\n")
    # Runtime fields are ignored by planning: state comes from the ledger (never fired: first is now+).
    act = by_job(plan_json(project, now="2026-11-27T08:10:00Z"))["a1b2c3d4e5f6"]
    assert act["after"]["fire_at"] == "2026-11-27T08:30:00Z"


def test_misspelt_field_gets_did_you_mean(project: Project) -> None:
    project.write_jobs([job("a", cron("0 9 * * *"), enabeld=True)])
    res = project.run("validate")
    assert res.exit_code == 1
    assert "/jobs/0/enabeld" in res.stderr
    assert "did you mean" in res.stderr.lower()
    assert "enabled" in res.stderr


def test_validation_errors_are_located_listed_at_once_on_stderr(project: Project) -> None:
    project.write_jobs(
        [
            job("ok", cron("0 9 * * *")),
            job("bad id!", cron("0 9 * * *")),
            job("two", {"kind": "interval", "seconds": 0}),
            job("three", cron("61 9 * * *")),
        ]
    )
    for res in run_concurrently(project, [(("validate",), None), (("plan", "--now", NOW), None)]):
        assert res.exit_code == 1
        assert res.stdout == ""
        lines = res.stderr.strip().splitlines()
        located = [ln for ln in lines if re.match(r"^jobs\.json:\d+:\d+: /jobs/\d+[^:]*: .+", ln)]
        assert len(located) >= 3, res.stderr
        pointers = {ln.split(": ")[1] for ln in located}
        assert "/jobs/3/schedule/expr" in pointers
        assert any(p.startswith("/jobs/1") for p in pointers)
        assert any(p.startswith("/jobs/2") for p in pointers)
        no_traceback(res)


def test_validation_line_and_column_point_at_the_value(project: Project) -> None:
    text = '{"jobs": [\n  {"id": "a", "schedule": {"kind": "cron", "expr": "0 9 * *"}}\n]}\n'
    (project.root / "jobs.json").write_text(text)
    res = project.run("validate")
    assert res.exit_code == 1
    line = res.stderr.strip().splitlines()[0]
    m = re.match(r"^jobs\.json:(\d+):(\d+): /jobs/0/schedule/expr: .+", line)
    assert m, line
    assert int(m.group(1)) == 2
    col = int(m.group(2))
    assert text.splitlines()[1][col - 1 :].startswith('"0 9 * *"')


def test_yaml_validation_errors_are_located_too(project: Project) -> None:
    project.write_config("jobs: jobs.yaml\nprovider: local\n")
    (project.root / "jobs.yaml").write_text(
        "jobs:\n  - id: a\n    schedule:\n      kind: cron\n      expr: '0 9 * *'\n"
    )
    res = project.run("validate")
    assert res.exit_code == 1
    assert res.stderr.startswith("jobs.yaml:5:13: /jobs/0/schedule/expr: ")


def test_job_id_pattern(project: Project) -> None:
    ok = "A" + "b" * 63
    project.write_jobs(
        [
            job(ok, cron("0 9 * * *")),
            job("x.y_z-1", cron("0 9 * * *")),
            job("A" + "b" * 64, cron("0 9 * * *")),
            job("-leading", cron("0 9 * * *")),
            job("has/slash", cron("0 9 * * *")),
        ]
    )
    res = project.run("validate")
    assert res.exit_code == 1
    flagged = {ln.split(": ")[1] for ln in res.stderr.splitlines() if ": /jobs/" in ln}
    assert flagged == {"/jobs/2/id", "/jobs/3/id", "/jobs/4/id"}


def test_duplicate_ids_are_an_error(project: Project) -> None:
    project.write_jobs([job("a", cron("0 9 * * *")), job("a", cron("0 10 * * *"))])
    res = project.run("validate")
    assert res.exit_code == 1
    assert "/jobs/1" in res.stderr


def test_command_and_http_together_are_an_error(project: Project) -> None:
    project.write_jobs([job("a", cron("0 9 * * *"), http={"url": "http://127.0.0.1:9/x"})])
    res = project.run("validate")
    assert res.exit_code == 1
    assert "/jobs/0" in res.stderr


def test_malformed_json_is_exit_1_located(project: Project) -> None:
    (project.root / "jobs.json").write_text('{"jobs": [\n')
    res = project.run("validate")
    assert res.exit_code == 1
    assert re.match(r"^jobs\.json:\d+:\d+: ", res.stderr)
    no_traceback(res)


# =========================================================================== §5 Time


def test_fire_at_is_rfc3339_z_and_dedup_key_is_job_colon_fire_at(project: Project) -> None:
    project.write_jobs(
        [job("b", cron("0 9 * * *", "Europe/Berlin")), job("s", cron("30 0 9 * * *"))]
    )
    for act in plan_json(project)["actions"]:
        after = act["after"]
        assert TS_Z.match(after["fire_at"])
        assert after["dedup_key"] == f"{act['job_id']}:{after['fire_at']}"


def test_now_pins_the_clock(daily: Project) -> None:
    doc = plan_json(daily, now="2026-11-27T09:30:00+01:00")
    assert doc["now"] == "2026-11-27T08:30:00Z"
    assert by_job(doc)["daily"]["after"]["fire_at"] == "2026-11-27T09:00:00Z"
    doc = plan_json(daily, now="2026-11-27T09:30:00Z")
    assert by_job(doc)["daily"]["after"]["fire_at"] == "2026-11-28T09:00:00Z"


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_same_inputs_give_byte_identical_output(project: Project, fmt: str) -> None:
    project.write_jobs(
        [
            job("zeta", cron("0 9 * * *", "Europe/Berlin")),
            job("alpha", {"kind": "interval", "seconds": 45}),
            job("mid", {"kind": "once", "run_at": "2026-12-01T09:00:00"}, state="paused"),
        ]
    )
    args = ("plan", "--format", fmt, "--now", NOW)
    first, second = run_concurrently(project, [(args, None), (args, None)])
    assert first.exit_code == 0, first.stderr
    assert first.stdout == second.stdout
    assert first.stdout


def test_actions_are_ordered_by_job_id(project: Project) -> None:
    project.write_jobs([job(i, cron("0 9 * * *")) for i in ("c", "a", "b")])
    assert [a["job_id"] for a in plan_json(project)["actions"]] == ["a", "b", "c"]


# =========================================================================== §6 Plan semantics


def test_plan_action_table(project: Project) -> None:
    project.write_jobs(
        [
            job("keep", cron("0 9 * * *")),
            job("change", cron("0 9 * * *")),
            job("orphan", cron("0 9 * * *")),
        ]
    )
    apply_now(project)
    project.write_jobs(
        [
            job("keep", cron("0 9 * * *")),
            job("change", cron("0 10 * * *")),
            job("new", cron("0 11 * * *")),
        ]
    )
    doc = plan_json(project)
    acts = by_job(doc)
    assert acts["keep"]["action"] == "skip"
    assert "already armed" in acts["keep"]["reason"]
    assert acts["new"]["action"] == "arm"
    assert "missing" in acts["new"]["reason"]
    assert acts["orphan"]["action"] == "cancel"
    assert "orphan" in acts["orphan"]["reason"]
    assert acts["orphan"]["after"] is None
    assert acts["orphan"]["before"]["fire_at"] == "2026-11-27T09:00:00Z"
    change = acts["change"]
    assert change["action"] == "rearm"
    assert "schedule changed" in change["reason"]
    assert change["before"]["fire_at"] == "2026-11-27T09:00:00Z"
    assert change["after"]["fire_at"] == "2026-11-27T10:00:00Z"
    assert any(
        "expr" in c["path"] and (c["before"], c["after"]) == ("0 9 * * *", "0 10 * * *")
        for c in change["changes"]
    )
    assert doc["summary"] == {"arm": 1, "rearm": 1, "update": 0, "cancel": 1, "skip": 1}


def test_due_arm_is_left_alone(daily: Project) -> None:
    apply_now(daily)  # armed at 09:00Z; a daily job's grace is 2 h
    act = by_job(plan_json(daily, now="2026-11-27T09:30:00Z"))["daily"]
    assert act["action"] == "skip"
    assert "due, awaiting fire" in act["reason"]


def test_due_once_arm_is_left_alone(project: Project) -> None:
    project.write_jobs([job("o", {"kind": "once", "run_at": "2026-11-27T09:00:00Z"})])
    apply_now(project)
    act = by_job(plan_json(project, now="2026-11-27T09:01:00Z"))["o"]  # once grace: 120 s
    assert act["action"] == "skip"
    assert "due, awaiting fire" in act["reason"]


def test_arm_changed_outside_cronplan_is_drift(daily: Project) -> None:
    from cronplan.local.provider import LocalProvider
    from cronplan.model import Arm
    from cronplan.provider import ProviderSettings

    apply_now(daily)
    provider = LocalProvider(ProviderSettings(name="local", base_dir=daily.root))
    try:
        provider.arm(Arm("daily", datetime(2026, 11, 27, 11, 0, tzinfo=timezone.utc)))
    finally:
        provider.close()
    act = by_job(plan_json(daily))["daily"]
    assert act["action"] == "rearm"
    assert "drift" in act["reason"]
    assert act["before"]["fire_at"] == "2026-11-27T11:00:00Z"
    assert act["after"]["fire_at"] == "2026-11-27T09:00:00Z"


def test_empty_jobs_with_arms_needs_allow_empty(daily: Project) -> None:
    apply_now(daily)
    daily.write_jobs([])
    for cmd in (("plan",), ("apply", "--auto-approve")):
        res = daily.run(*cmd, "--now", NOW)
        assert res.exit_code == 1, res.stdout
        assert "--allow-empty" in res.stderr
        no_traceback(res)
    assert armed(daily).get("daily") == "2026-11-27T09:00:00Z"
    acts = by_job(plan_json(daily, "--allow-empty"))
    assert acts["daily"]["action"] == "cancel"
    res = daily.run("apply", "--auto-approve", "--allow-empty", "--now", NOW)
    assert res.exit_code == 0, res.stderr
    assert armed(daily).get("daily") is None


# =========================================================================== §7 Global options


COLOR_CASES: list[tuple[tuple[str, ...], dict[str, str] | None, bool]] = [
    (("--color", "always"), None, True),
    (("--color", "never"), {"FORCE_COLOR": "1"}, False),
    ((), None, False),  # auto, and stdout is not a terminal
    (("--color", "auto"), None, False),
    ((), {"FORCE_COLOR": "1"}, True),
    ((), {"NO_COLOR": "1"}, False),
    ((), {"TERM": "dumb"}, False),
]


def test_color_option_and_environment(daily: Project) -> None:
    calls = [((*global_args, "plan", "--now", NOW), env) for global_args, env, _ in COLOR_CASES]
    for (global_args, env, colored), res in zip(
        COLOR_CASES, run_concurrently(daily, calls), strict=True
    ):
        assert res.exit_code == 0, res.stderr
        assert (ANSI in res.stdout) is colored, (global_args, env)


def test_verbose_lists_skips(project: Project) -> None:
    project.write_jobs([job("quiet-one", cron("0 9 * * *"), enabled=False)])
    plain, verbose, long_form = run_concurrently(
        project,
        [(("plan", "--now", NOW), None), (("-v", "plan", "--now", NOW), None),
         (("--verbose", "plan", "--now", NOW), None)],
    )  # fmt: skip
    assert "quiet-one" not in plain.stdout
    assert "quiet-one" in verbose.stdout
    assert verbose.stdout.rstrip().splitlines()[-1] == NO_CHANGES
    assert long_form.stdout == verbose.stdout


def test_quiet_keeps_product_and_errors_only(daily: Project) -> None:
    loud, quiet, err = run_concurrently(
        daily,
        [(("plan", "--now", NOW, "--out", "p.json"), None),
         (("-q", "plan", "--now", NOW, "--out", "q.json"), None),
         (("--quiet", "next", "nope"), None)],
    )  # fmt: skip
    assert loud.stderr.strip()  # "Saved the plan to ..." is a log line
    assert quiet.stderr == ""
    assert quiet.stdout == loud.stdout
    assert err.exit_code == 1
    assert err.stderr.strip()


def test_stdout_carries_only_the_product(daily: Project) -> None:
    text, js, md = run_concurrently(
        daily,
        [(("plan", "--now", NOW, "--out", "plan1.json"), None),
         (("plan", "--now", NOW, "--format", "json", "--out", "plan2.json"), None),
         (("plan", "--now", NOW, "--format", "markdown", "--out", "plan3.json"), None)],
    )  # fmt: skip
    assert text.stdout.rstrip().splitlines()[-1].startswith("Plan: ")
    assert "plan1.json" not in text.stdout
    json.loads(js.stdout)  # nothing but the document
    assert "plan3.json" not in md.stdout


# =========================================================================== §7 validate


def test_validate_valid_file_exit_0(daily: Project) -> None:
    res = daily.run("validate")
    assert res.exit_code == 0
    assert res.stderr == ""


def test_validate_f_checks_the_named_file(project: Project) -> None:
    (project.root / "other.json").write_text(json.dumps([job("x", cron("0 9 * *"))]))
    res = project.run("validate", "-f", "other.json")
    assert res.exit_code == 1
    assert res.stderr.startswith("other.json:")
    assert project.run("validate").exit_code == 0  # the configured file is still fine


def test_validate_missing_file_is_exit_1(project: Project) -> None:
    res = project.run("validate", "-f", "absent.json")
    assert res.exit_code == 1
    assert "absent.json" in res.stderr
    no_traceback(res)


# =========================================================================== §7 plan


def test_plan_text_last_line_with_changes(daily: Project) -> None:
    res = daily.run("plan", "--now", NOW)
    assert res.exit_code == 0
    last = res.stdout.rstrip("\n").splitlines()[-1]
    assert last == "Plan: 1 to arm, 0 to re-arm, 0 to update, 0 to cancel, 0 unchanged."
    assert PLAN_LINE.match(last)


def test_plan_text_last_line_without_changes(daily: Project) -> None:
    apply_now(daily)
    res = daily.run("plan", "--now", NOW)
    assert res.stdout.rstrip("\n").splitlines()[-1] == NO_CHANGES


def test_plan_text_symbols_times_and_reasons(project: Project) -> None:
    project.write_jobs(
        [job("berlin", cron("0 9 * * *", "Europe/Berlin")), job("gone", cron("0 9 * * *"))]
    )
    early = "2026-11-27T06:00:00Z"
    apply_now(project, early)
    project.write_jobs(
        [job("berlin", cron("0 10 * * *", "Europe/Berlin")), job("new", cron("0 9 * * *"))]
    )
    out = project.run("plan", "--now", early).stdout
    lines = out.splitlines()
    rearm = next(ln for ln in lines if "~ berlin" in ln)
    assert "2026-11-27T09:00:00Z" in rearm and "10:00" in rearm  # UTC and local time
    arm = next(ln for ln in lines if "+ new" in ln)
    assert "2026-11-27T09:00:00Z" in arm and "missing" in arm
    cancel = next(ln for ln in lines if "- gone" in ln)
    assert "orphan" in cancel
    assert "expr" in out  # the changed field of the re-arm
    assert "~ re-arm" in out  # the legend writes the action as re-arm
    assert any("cancel" in ln.lower() and "warning" in ln.lower() for ln in lines)
    assert lines[-1] == "Plan: 1 to arm, 1 to re-arm, 0 to update, 1 to cancel, 0 unchanged."


def test_plan_detailed_exitcode(daily: Project) -> None:
    assert daily.run("plan", "--now", NOW).exit_code == 0
    assert daily.run("plan", "--now", NOW, "--detailed-exitcode").exit_code == 2
    apply_now(daily)
    assert daily.run("plan", "--now", NOW, "--detailed-exitcode").exit_code == 0
    daily.write_jobs([job("daily", cron("0 9 * *"))])
    assert daily.run("plan", "--now", NOW, "--detailed-exitcode").exit_code == 1


def test_plan_target_and_exclude_are_repeatable(project: Project) -> None:
    project.write_jobs([job(i, cron("0 9 * * *")) for i in ("a", "b", "c", "d")])
    targeted = plan_json(project, "--target", "a", "--target", "c")
    assert {a["job_id"] for a in targeted["actions"] if a["action"] == "arm"} == {"a", "c"}
    excluded = plan_json(project, "--exclude", "a", "--exclude", "b")
    assert {a["job_id"] for a in excluded["actions"] if a["action"] == "arm"} == {"c", "d"}


def test_plan_unknown_target_is_an_error(daily: Project) -> None:
    res = daily.run("plan", "--now", NOW, "--target", "nope")
    assert res.exit_code == 1
    assert "nope" in res.stderr


def test_plan_and_apply_f_use_the_named_jobs_file(daily: Project) -> None:
    (daily.root / "other.json").write_text(json.dumps({"jobs": [job("other", cron("0 7 * * *"))]}))
    acts = by_job(plan_json(daily, "-f", "other.json"))
    assert set(acts) == {"other"}
    res = daily.run("apply", "-f", "other.json", "--auto-approve", "--now", NOW)
    assert res.exit_code == 0, res.stderr
    assert armed(daily) == {"other": "2026-11-28T07:00:00Z"}


def test_plan_out_writes_the_json_plan(daily: Project) -> None:
    res = daily.run("plan", "--now", NOW, "--out", "saved.json")
    assert res.exit_code == 0
    saved = json.loads((daily.root / "saved.json").read_text())
    printed = plan_json(daily)
    for key in ("format_version", "provider", "now", "summary", "intent_digest", "actions"):
        assert saved[key] == printed[key]


# =========================================================================== §8 JSON plan


def test_json_plan_top_level_fields(daily: Project) -> None:
    doc = plan_json(daily)
    assert {"format_version", "provider", "now", "summary", "intent_digest", "actions"} <= set(doc)
    assert doc["provider"] == "local"
    assert doc["now"] == NOW
    assert set(doc["summary"]) == {"arm", "rearm", "update", "cancel", "skip"}
    assert re.fullmatch(r"[0-9a-f]{16,}", doc["intent_digest"])


def test_json_plan_action_fields_and_null_callback_for_local(project: Project) -> None:
    project.write_config("jobs: jobs.json\nprovider: local\ncallback_url: http://127.0.0.1:8787\n")
    project.write_jobs([job("a", cron("0 9 * * *")), job("p", cron("0 9 * * *"), enabled=False)])
    acts = by_job(plan_json(project))
    arm = acts["a"]
    assert {"action", "job_id", "reason", "before", "after", "changes"} <= set(arm)
    assert arm["before"] is None
    assert set(arm["after"]) >= {"fire_at", "callback_url", "dedup_key"}
    assert arm["after"]["callback_url"] is None
    assert arm["changes"] == []
    skip = acts["p"]  # skips are included
    assert skip["action"] == "skip"
    assert skip["after"] is None


def test_json_plan_rearm_changes_have_path_before_after(daily: Project) -> None:
    apply_now(daily)
    daily.write_jobs([job("daily", cron("0 10 * * *"))])
    act = by_job(plan_json(daily))["daily"]
    assert act["action"] == "rearm"
    assert act["changes"]
    for change in act["changes"]:
        assert {"path", "before", "after"} <= set(change)
    assert any(c["before"] == "0 9 * * *" and c["after"] == "0 10 * * *" for c in act["changes"])


def test_json_plan_matches_plan_schema(project: Project) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((Path(__file__).parents[1] / "schemas" / "plan.schema.json").read_text())
    project.write_jobs([job("a", cron("0 9 * * *")), job("p", cron("0 9 * * *"), enabled=False)])
    jsonschema.validate(plan_json(project), schema)


# =========================================================================== §8 markdown


def test_markdown_summary_outside_details_diff_and_intent_marker(daily: Project) -> None:
    md = daily.run("plan", "--now", NOW, "--format", "markdown").stdout
    digest = plan_json(daily)["intent_digest"]
    assert f"<!-- cronplan:intent={digest} -->" in md
    summary = "Plan: 1 to arm, 0 to re-arm, 0 to update, 0 to cancel, 0 unchanged."
    assert summary in md
    assert md.index(summary) < md.index("<details")
    fold = md[md.index("<details") : md.index("</details>")]
    assert "```diff" in fold
    assert "+ daily" in fold
    assert len(md) < 65536


def test_markdown_warns_about_cancels(daily: Project) -> None:
    apply_now(daily)
    daily.write_jobs([job("other", cron("0 9 * * *"))])
    md = daily.run("plan", "--now", NOW, "--format", "markdown").stdout
    before_fold = md[: md.index("<details")]
    assert "cancel" in before_fold.lower()
    assert "daily" in before_fold
    assert "warning" in before_fold.lower()


def test_markdown_stays_under_limit_keeping_summary_and_cancels(project: Project) -> None:
    pad = "x" * 40
    project.write_jobs([job(f"old-{pad}-{i:03d}", cron(f"{i % 60} 9 * * *")) for i in range(600)])
    apply_now(project)
    project.write_jobs([job(f"new-{pad}-{i:03d}", cron(f"{i % 60} 9 * * *")) for i in range(600)])
    md = project.run("plan", "--now", NOW, "--format", "markdown").stdout
    assert len(md) < 65536
    assert "Plan: 600 to arm, 0 to re-arm, 0 to update, 600 to cancel, 0 unchanged." in md
    assert "<!-- cronplan:intent=" in md
    head = md[: md.index("<details")]
    assert all(f"old-{pad}-{i:03d}" in head for i in range(600))  # every cancel is named


# =========================================================================== §7 apply


def test_apply_off_terminal_requires_auto_approve(daily: Project) -> None:
    res = daily.run("apply", "--now", NOW, input="yes\n")
    assert res.exit_code == 1
    assert "--auto-approve" in res.stderr
    no_traceback(res)
    assert armed(daily).get("daily") is None


def _apply_on_a_terminal(project: Project, answer: str) -> tuple[int, str]:
    """``apply`` with stdin/stdout/stderr on a pseudo-terminal, answering its confirmation prompt."""
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cronplan", "--config", str(project.config), "--color", "never",
         "apply", "--now", NOW],
        cwd=project.root, stdin=slave, stdout=slave, stderr=slave, close_fds=True,
    )  # fmt: skip
    os.close(slave)
    seen = b""
    try:
        deadline = time.monotonic() + 30
        while b"accepted" not in seen:
            assert time.monotonic() < deadline, seen
            seen += os.read(master, 4096)
        os.write(master, answer.encode() + b"\n")
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        code = proc.wait(timeout=30)
    finally:
        proc.kill()
        os.close(master)
    return code, seen.decode(errors="replace")


def test_apply_on_a_terminal_shows_the_plan_and_asks(daily: Project) -> None:
    code, screen = _apply_on_a_terminal(daily, "no")
    assert code == 1
    assert "Plan: 1 to arm" in screen
    assert armed(daily).get("daily") is None
    code, screen = _apply_on_a_terminal(daily, "yes")
    assert code == 0, screen
    assert armed(daily).get("daily") == "2026-11-27T09:00:00Z"


def test_apply_auto_approve_arms_then_converged(daily: Project) -> None:
    res = apply_now(daily)
    assert "Plan: 1 to arm" in res.stdout
    assert armed(daily).get("daily") == "2026-11-27T09:00:00Z"
    again = apply_now(daily)
    assert again.stdout.rstrip().splitlines()[-1] == NO_CHANGES


def test_apply_planfile_executes_exactly_the_saved_plan(project: Project) -> None:
    project.write_jobs([job("a", cron("0 9 * * *")), job("b", cron("0 10 * * *"))])
    assert project.run("plan", "--now", NOW, "--target", "a", "--out", "p.json").exit_code == 0
    res = project.run("apply", "p.json", "--now", NOW)  # the plan file is the approval
    assert res.exit_code == 0, res.stderr
    assert armed(project) == {"a": "2026-11-27T09:00:00Z"}


def test_apply_planfile_twice_is_stale(daily: Project) -> None:
    daily.run("plan", "--now", NOW, "--out", "p.json")
    assert daily.run("apply", "p.json", "--now", NOW).exit_code == 0
    res = daily.run("apply", "p.json", "--now", NOW)
    assert res.exit_code == 1
    assert "Saved plan is stale" in res.stderr


def test_apply_planfile_stale_when_arms_changed_elsewhere(daily: Project) -> None:
    daily.run("plan", "--now", NOW, "--out", "p.json")
    apply_now(daily)  # someone else applied meanwhile
    res = daily.run("apply", "p.json", "--now", NOW)
    assert res.exit_code == 1
    assert "Saved plan is stale" in res.stderr


def test_apply_planfile_stale_when_ledger_changed(daily: Project) -> None:
    apply_now(daily)  # armed at 09:00Z
    daily.write_jobs([job("daily", cron("0 10 * * *"))])
    daily.run("plan", "--now", NOW, "--out", "p.json")  # re-arm to 10:00Z
    # The applied 09:00 occurrence runs (the arm stays): only the ledger changed since the plan.
    fired = daily.run(
        "fire", "--job-id", "daily", "--fire-at", "2026-11-27T09:00:00Z", "--now", NOW,
        "--no-replan",
    )  # fmt: skip
    assert fired.exit_code == 0, fired.stderr
    res = daily.run("apply", "p.json", "--now", NOW)
    assert res.exit_code == 1
    assert "Saved plan is stale" in res.stderr


def test_apply_planfile_now_is_the_staleness_clock(daily: Project) -> None:
    daily.run("plan", "--now", NOW, "--out", "p.json")  # plans 09:00Z
    late = daily.run("apply", "p.json", "--now", "2026-11-27T09:30:00Z")
    assert late.exit_code == 1
    assert "Saved plan is stale" in late.stderr
    assert armed(daily).get("daily") is None
    on_time = daily.run("apply", "p.json", "--now", "2026-11-27T08:59:00Z")
    assert on_time.exit_code == 0, on_time.stderr


def test_apply_expect_intent(daily: Project) -> None:
    digest = plan_json(daily)["intent_digest"]
    wrong = daily.run("apply", "--auto-approve", "--now", NOW, "--expect-intent", "0" * 64)
    assert wrong.exit_code == 1
    assert armed(daily).get("daily") is None
    # The digest leaves fire times out: an hour later the same intent still applies.
    later = "2026-11-27T10:00:00Z"
    res = daily.run("apply", "--auto-approve", "--now", later, "--expect-intent", digest)
    assert res.exit_code == 0, res.stderr
    assert armed(daily).get("daily") == "2026-11-28T09:00:00Z"


def test_apply_parallelism(project: Project) -> None:
    project.write_jobs([job(f"j{i:02d}", cron(f"{i} 9 * * *")) for i in range(25)])
    res = project.run("apply", "--auto-approve", "--now", NOW, "--parallelism", "4")
    assert res.exit_code == 0, res.stderr
    assert len(armed(project)) == 25
    assert "25/25" in res.stderr  # progress goes to stderr, never into the product
    assert "25/25" not in res.stdout
    assert project.run("apply", "--auto-approve", "--parallelism", "x").exit_code == 64


def test_apply_format_json(daily: Project) -> None:
    res = daily.run("apply", "--auto-approve", "--now", NOW, "--format", "json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert isinstance(doc, dict)
    assert "daily" in res.stdout


def test_apply_lock_timeout_and_force_unlock(daily: Project) -> None:
    from cronplan.ledger.sqlite import SqliteLedger

    ledger = SqliteLedger.from_url("sqlite:///.cronplan/state.db", base_dir=daily.root)
    try:
        lock = ledger.acquire_lock(
            "someone-else", lease_seconds=600, timeout=0, clock=PinnedClock(parse_ts(NOW))
        )
    finally:
        ledger.close()
    res = daily.run("apply", "--auto-approve", "--now", NOW, "--lock-timeout", "0.3")
    assert res.exit_code == 1
    assert lock.lock_id in res.stderr  # the id to give force-unlock
    assert armed(daily).get("daily") is None
    unlocked = daily.run("force-unlock", lock.lock_id)
    assert unlocked.exit_code == 0, unlocked.stderr
    assert daily.run("apply", "--auto-approve", "--now", NOW).exit_code == 0


def test_force_unlock_unknown_id_is_exit_1(daily: Project) -> None:
    res = daily.run("force-unlock", "no-such-lock")
    assert res.exit_code == 1
    no_traceback(res)


# =========================================================================== §7 show


def test_show_renders_a_saved_plan_like_plan(daily: Project) -> None:
    fmts = ("text", "json", "markdown")
    planned = run_concurrently(
        daily, [(("plan", "--now", NOW, "--format", f, "--out", f"{f}.plan"), None) for f in fmts]
    )
    shown = run_concurrently(daily, [(("show", f"{f}.plan", "--format", f), None) for f in fmts])
    for fmt, plan_res, show_res in zip(fmts, planned, shown, strict=True):
        assert show_res.exit_code == 0, show_res.stderr
        assert show_res.stdout == plan_res.stdout, fmt


def test_show_missing_or_bad_planfile_is_exit_1(daily: Project) -> None:
    assert daily.run("show", "absent.json").exit_code == 1
    (daily.root / "junk.json").write_text("{not json")
    res = daily.run("show", "junk.json")
    assert res.exit_code == 1
    no_traceback(res)


# =========================================================================== §7 + §11 fire


def test_fire_runs_records_and_rearms(daily: Project) -> None:
    apply_now(daily)
    res = daily.run("fire", "--job-id", "daily", "--fire-at", "2026-11-27T09:00:00Z", "--now", NOW)
    assert res.exit_code == 0, res.stderr
    assert res.stdout == ""
    assert last_status(daily, "daily") == "succeeded"
    assert armed(daily) == {"daily": "2026-11-28T09:00:00Z"}


def test_fire_duplicate_is_exit_0_with_stderr_message(daily: Project) -> None:
    apply_now(daily)
    args = ("fire", "--job-id", "daily", "--fire-at", "2026-11-27T09:00:00Z", "--now", NOW)
    assert daily.run(*args).exit_code == 0
    dup = daily.run(*args)
    assert dup.exit_code == 0
    assert dup.stderr.strip()
    assert status_json(daily)["daily"]["runs_completed"] == 1


@pytest.mark.parametrize(
    ("job_id", "fire_at"),
    [("daily", "2026-11-27T09:00:05Z"), ("nobody", "2026-11-27T09:00:00Z")],
)
def test_fire_stale_is_exit_0_without_running(daily: Project, job_id: str, fire_at: str) -> None:
    res = daily.run("fire", "--job-id", job_id, "--fire-at", fire_at, "--now", NOW)
    assert res.exit_code == 0
    assert res.stderr.strip()
    assert last_status(daily, "daily") is None


def test_fire_paused_job_is_stale(project: Project) -> None:
    project.write_jobs([job("p", cron("0 9 * * *"), state="paused")])
    res = project.run("fire", "--job-id", "p", "--fire-at", "2026-11-27T09:00:00Z", "--now", NOW)
    assert res.exit_code == 0
    assert last_status(project, "p") is None


def test_fire_failed_job_exits_1(project: Project) -> None:
    project.write_jobs([{"id": "bad", "schedule": cron("0 9 * * *"), "command": ["false"]}])
    apply_now(project)
    res = project.run("fire", "--job-id", "bad", "--fire-at", "2026-11-27T09:00:00Z", "--now", NOW)
    assert res.exit_code == 1
    st = status_json(project)["bad"]
    assert st["last_run"]["status"] == "failed"
    assert st["last_run"]["exit_code"] == 1
    assert st["failures"] == 1


def test_fire_no_replan_leaves_the_arm(daily: Project) -> None:
    apply_now(daily)
    res = daily.run(
        "fire",
        "--job-id",
        "daily",
        "--fire-at",
        "2026-11-27T09:00:00Z",
        "--now",
        NOW,
        "--no-replan",
    )
    assert res.exit_code == 0, res.stderr
    assert last_status(daily, "daily") == "succeeded"
    assert armed(daily) == {"daily": "2026-11-27T09:00:00Z"}


def test_fire_job_without_action_goes_to_the_configured_runner(project: Project) -> None:
    script = "import json, sys; open('got.json', 'w').write(sys.stdin.read())"
    project.write_config(
        f'jobs: jobs.json\nprovider: local\nrunner: [{sys.executable}, -c, "{script}"]\n'
    )
    project.write_jobs([{"id": "p", "prompt": "hello", "x-k": 1, "schedule": cron("0 9 * * *")}])
    apply_now(project)
    res = project.run("fire", "--job-id", "p", "--fire-at", "2026-11-27T09:00:00Z", "--now", NOW)
    assert res.exit_code == 0, res.stderr
    got = json.loads((project.root / "got.json").read_text())
    assert (got["id"], got["prompt"], got["x-k"]) == ("p", "hello", 1)


@pytest.mark.slow
def test_fire_command_gets_env_cwd_and_timeout(project: Project) -> None:
    (project.root / "sub").mkdir()
    project.write_jobs(
        [
            {
                "id": "envcwd",
                "schedule": cron("0 9 * * *"),
                "command": ["sh", "-c", 'printf \'%s %s\' "$SPEC_FOO" "$(pwd)" > out.txt'],
                "env": {"SPEC_FOO": "bar"},
                "cwd": "sub",
            },
            {
                "id": "slow",
                "schedule": cron("0 9 * * *"),
                "command": ["sleep", "30"],
                "timeout_seconds": 1,
            },
        ]
    )
    apply_now(project)
    ok = project.run(
        "fire", "--job-id", "envcwd", "--fire-at", "2026-11-27T09:00:00Z", "--now", NOW
    )
    assert ok.exit_code == 0, ok.stderr
    foo, cwd = (project.root / "sub" / "out.txt").read_text().split(" ", 1)
    assert foo == "bar"
    assert Path(cwd).resolve() == (project.root / "sub").resolve()
    started = time.monotonic()
    slow = project.run(
        "fire", "--job-id", "slow", "--fire-at", "2026-11-27T09:00:00Z", "--now", NOW
    )
    assert slow.exit_code == 1
    assert time.monotonic() - started < 20
    assert last_status(project, "slow") == "failed"


def test_fire_http_action_sends_string_as_is_and_json_otherwise(project: Project) -> None:
    received: list[tuple[str, str, str | None, bytes]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def _record(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            received.append((self.command, self.path, self.headers.get("X-Spec"), body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_POST = do_PUT = _record

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        project.write_jobs(
            [
                {
                    "id": "s",
                    "schedule": cron("0 9 * * *"),
                    "http": {"url": f"{url}/s", "body": "raw text"},
                },
                {
                    "id": "o",
                    "schedule": cron("0 9 * * *"),
                    "http": {
                        "url": f"{url}/o",
                        "method": "PUT",
                        "headers": {"X-Spec": "1"},
                        "body": {"k": [1]},
                    },
                },
            ]
        )
        apply_now(project)
        for job_id in ("s", "o"):
            res = project.run(
                "fire", "--job-id", job_id, "--fire-at", "2026-11-27T09:00:00Z", "--now", NOW
            )
            assert res.exit_code == 0, res.stderr
    finally:
        server.shutdown()
        server.server_close()
    by_path = {path: (method, header, body) for method, path, header, body in received}
    assert by_path["/s"] == ("POST", None, b"raw text")
    method, header, body = by_path["/o"]
    assert (method, header, json.loads(body)) == ("PUT", "1", {"k": [1]})


def test_fire_request_is_authenticated_first(daily: Project) -> None:
    body = json.dumps({"job_id": "daily", "fire_at": "2026-11-27T09:00:00Z"})
    raw = (
        "POST /api/cron/fire HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    )
    (daily.root / "req.http").write_text(raw)
    # The local provider sends no HTTP callbacks, so its verifier accepts none: nothing may run.
    for args, stdin in ((("--request", "-"), raw), (("--request", "req.http"), None)):
        res = daily.run("fire", *args, "--now", NOW, input=stdin)
        assert res.exit_code == 1
        assert res.stderr.strip()
        no_traceback(res)
    assert last_status(daily, "daily") is None


def _signed_request(key: bytes, body: str, *, tamper: bool = False) -> str:
    """A Standard Webhooks request as the temporal worker sends it (SPEC §9.1)."""
    import base64
    import hashlib
    import hmac

    msg_id, stamp = "msg_spec_1", str(int(time.time()))
    mac = hmac.new(key, f"{msg_id}.{stamp}.{body}".encode(), hashlib.sha256).digest()
    signature = base64.b64encode(mac).decode()
    if tamper:
        signature = base64.b64encode(b"x" * 32).decode()
    return (
        "POST /api/cron/fire HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"webhook-id: {msg_id}\r\nwebhook-timestamp: {stamp}\r\n"
        f"webhook-signature: v1,{signature}\r\nContent-Length: {len(body)}\r\n\r\n{body}"
    )


def test_fire_request_verified_runs_and_a_failed_rearm_exits_1(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    import base64

    monkeypatch.delenv("CRONPLAN_DISABLE_PLUGINS")  # the bundled temporal plugin verifies requests
    pytest.importorskip("cronplan_temporal")
    key = b"0123456789abcdef0123456789abcdef"
    env = {"CRONPLAN_WEBHOOK_SECRET": "whsec_" + base64.b64encode(key).decode()}
    project.write_jobs([job("a", cron("0 9 * * *"))])
    apply_now(project)  # applied (on the local provider): the ledger holds the job fires run
    project.write_config(
        "jobs: jobs.json\nprovider: temporal\ncallback_url: http://127.0.0.1:8787\n"
        "providers:\n  temporal: {address: '127.0.0.1:1'}\n"  # nothing listens: re-arms fail
    )
    body = json.dumps({"job_id": "a", "fire_at": "2026-11-27T09:00:00Z"})

    # The signature's timestamp is real time (a real-world lifetime); --now pins cronplan's own decisions.
    pinned = ("--now", "2026-11-27T09:00:00Z")
    forged = project.run(
        "fire", "--request", "-", *pinned, input=_signed_request(key, body, tamper=True), env=env
    )
    assert forged.exit_code == 1
    assert last_status(project, "a") is None  # rejected before anything ran

    ok = project.run(
        "fire", "--request", "-", "--no-replan", *pinned, input=_signed_request(key, body), env=env
    )
    assert ok.exit_code == 0, ok.stderr
    assert last_status(project, "a") == "succeeded"

    # SPEC §11.5: a failure to re-arm is recorded and reported (exit 1).
    args = (
        "fire",
        "--job-id",
        "a",
        "--fire-at",
        "2026-11-28T09:00:00Z",
        "--now",
        "2026-11-28T09:00:00Z",
    )
    rearm = project.run(*args, env=env)
    assert rearm.exit_code == 1
    assert last_status(project, "a") == "succeeded"
    no_traceback(rearm)


def test_fire_overdue_fires_dropped_arms(daily: Project) -> None:
    apply_now(daily)  # armed at 09:00Z; daily grace is 2 h
    within = daily.run("fire", "--overdue", "--now", "2026-11-27T10:30:00Z")
    assert within.exit_code == 0, within.stderr
    assert last_status(daily, "daily") is None  # not yet overdue beyond grace: left to the provider
    res = daily.run("fire", "--overdue", "--now", "2026-11-27T12:00:00Z")
    assert res.exit_code == 0, res.stderr
    st = status_json(daily)["daily"]
    assert st["last_run"]["fire_at"] == "2026-11-27T09:00:00Z"
    assert st["armed_fire_at"] == "2026-11-28T09:00:00Z"


# =========================================================================== §7 next


def test_next_shows_n_times_in_job_zone_and_utc(project: Project) -> None:
    project.write_jobs([job("b", cron("0 9 * * *", "Europe/Berlin"))])
    res = project.run("next", "b", "-n", "3", "--now", NOW)
    assert res.exit_code == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 3
    for day, line in zip((28, 29, 30), lines, strict=True):
        assert f"2026-11-{day}T08:00:00Z" in line
        assert "09:00" in line


def test_next_defaults_to_five(daily: Project) -> None:
    res = daily.run("next", "daily", "--now", NOW)
    assert len(res.stdout.strip().splitlines()) == 5
    assert "2026-11-27T09:00:00Z" in res.stdout.splitlines()[0]


def test_next_unknown_job_is_exit_1(daily: Project) -> None:
    res = daily.run("next", "dialy", "--now", NOW)
    assert res.exit_code == 1
    assert "dialy" in res.stderr
    no_traceback(res)


# =========================================================================== §7 status


def test_status_json_exact_shape(project: Project) -> None:
    project.write_jobs([job("ran", cron("0 9 * * *")), job("idle", cron("0 10 * * *"))])
    apply_now(project)
    fired = project.run(
        "fire", "--job-id", "ran", "--fire-at", "2026-11-27T09:00:00Z", "--now", NOW
    )
    assert fired.exit_code == 0, fired.stderr
    res = project.run("status", "--format", "json")
    doc = json.loads(res.stdout)
    assert set(doc) == {"format_version", "jobs"}
    assert doc["format_version"] == "1"
    keys = {"job_id", "armed_fire_at", "last_run", "runs_completed", "failures", "unapplied"}
    for row in doc["jobs"]:
        assert set(row) == keys
    rows = {r["job_id"]: r for r in doc["jobs"]}
    assert rows["idle"]["last_run"] is None
    assert {r["unapplied"] for r in doc["jobs"]} == {"none"}  # jobs.json is what was applied
    assert rows["idle"]["armed_fire_at"] == "2026-11-27T10:00:00Z"
    last = rows["ran"]["last_run"]
    assert set(last) == {
        "fire_at",
        "status",
        "started_at",
        "finished_at",
        "duration_s",
        "exit_code",
    }
    assert last["fire_at"] == "2026-11-27T09:00:00Z"
    assert last["status"] in {"claimed", "running", "succeeded", "failed"}
    assert last["status"] == "succeeded"
    assert TS_Z.match(last["started_at"]) and TS_Z.match(last["finished_at"])
    assert isinstance(last["duration_s"], (int, float))
    assert last["exit_code"] == 0
    assert rows["ran"]["runs_completed"] == 1
    assert rows["ran"]["failures"] == 0
    assert rows["ran"]["armed_fire_at"] == "2026-11-28T09:00:00Z"


def test_status_text(daily: Project) -> None:
    apply_now(daily)
    res = daily.run("status")
    assert res.exit_code == 0
    assert "daily" in res.stdout
    assert "2026-11-27T09:00:00Z" in res.stdout


# =========================================================================== §7 providers


def test_providers_json_lists_local_available(project: Project) -> None:
    res = project.run("providers", "--format", "json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    local = next(p for p in doc["providers"] if p["name"] == "local")
    assert local["available"] is True
    assert local["source"]
    assert local["version"]


def test_providers_text(project: Project) -> None:
    res = project.run("providers")
    assert res.exit_code == 0
    assert "local" in res.stdout


def test_unavailable_provider_is_refused_not_replaced(daily: Project) -> None:
    daily.write_config("jobs: jobs.json\nprovider: nas\n")
    for cmd in (("plan",), ("apply", "--auto-approve")):
        res = daily.run(*cmd, "--now", NOW)
        assert res.exit_code == 1
        assert "nas" in res.stderr
        no_traceback(res)


def test_provider_network_error_is_exit_1_without_traceback_or_secret(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CRONPLAN_DISABLE_PLUGINS")  # the bundled nas plugin
    pytest.importorskip("cronplan_nas")
    project.write_config(
        "jobs: jobs.json\nprovider: nas\ncallback_url: http://127.0.0.1:8787\nproviders:\n"
        "  nas:\n    portal_url: http://127.0.0.1:1\n    token_env: SPEC_TEST_NAS_TOKEN\n"
        "    jwks_url: http://127.0.0.1:1/jwks.json\n    issuer: http://127.0.0.1:1\n"
        "    audience: agent:test\n    retry_total_seconds: 1\n"
    )
    project.write_jobs([job("a", cron("0 9 * * *"))])
    token = "tok-very-secret-4711"
    res = project.run("plan", "--now", NOW, env={"SPEC_TEST_NAS_TOKEN": token})
    assert res.exit_code == 1
    assert res.stderr.strip()
    assert token not in res.stdout + res.stderr
    no_traceback(res)


# =========================================================================== §7 serve


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_serve_healthz_fire_endpoint_and_local_timer(project: Project) -> None:
    from cronplan.ledger.sqlite import SqliteLedger

    project.write_jobs([job("tick", {"kind": "interval", "seconds": 1})])
    # serve has no --now: this test lives on the real clock, and apply is pinned to it too.
    assert project.run("apply", "--auto-approve", "--now", real_now()).exit_code == 0
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cronplan", "--config", str(project.config), "serve",
         "--host", "127.0.0.1", "--port", str(port)],
        cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as resp:
                    assert resp.status == 200
                    break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline and proc.poll() is None, "serve did not start"
                time.sleep(0.1)
        body = json.dumps({"job_id": "tick", "fire_at": NOW}).encode()
        request = urllib.request.Request(f"{base}/api/cron/fire", data=body, method="POST")
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(request, timeout=5)
        assert denied.value.code == 401  # the local provider authenticates no HTTP callback
        ledger = SqliteLedger.from_url("sqlite:///.cronplan/state.db", base_dir=project.root)
        try:
            while not any(r.status == "succeeded" for r in ledger.runs("tick")):
                assert time.monotonic() < deadline + 10, "the timer loop never fired"
                time.sleep(0.1)
        finally:
            ledger.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _out, err = proc.communicate(timeout=20)
        finally:
            proc.kill()
    assert "Traceback" not in err


# =========================================================================== §7 exit codes


USAGE_ERRORS = [
    ("frobnicate",),
    ("--color", "rainbow", "plan"),
    ("plan", "--bogus"),
    ("plan", "--format", "xml"),
    ("plan", "--now", "yesterday"),
    ("apply", "--auto-approve", "--format", "markdown"),
    ("apply", "--auto-approve", "--parallelism", "0"),
    ("status", "--format", "markdown"),
    ("providers", "--format", "yaml"),
    ("next",),
    ("next", "daily", "-n", "0"),
    ("show",),
    ("force-unlock",),
    ("fire",),
    ("fire", "--job-id", "daily"),
    ("fire", "--job-id", "daily", "--fire-at", "not-a-time"),
]


def test_usage_errors_exit_64(daily: Project) -> None:
    results = run_concurrently(daily, [(args, None) for args in USAGE_ERRORS])
    for args, res in zip(USAGE_ERRORS, results, strict=True):
        assert res.exit_code == 64, (args, res.exit_code, res.stderr)
        assert res.stdout == "", args
        assert res.stderr.strip(), args
        no_traceback(res)


def test_unreadable_ledger_is_exit_1_without_traceback(daily: Project) -> None:
    (daily.root / "state-dir").mkdir()
    daily.write_config("jobs: jobs.json\nprovider: local\nstate: sqlite:///state-dir\n")
    res = daily.run("plan", "--now", NOW)
    assert res.exit_code == 1, res.stderr
    no_traceback(res)


def test_interrupt_exits_130(project: Project) -> None:
    project.write_jobs(
        [
            {
                "id": "slow",
                "schedule": cron("0 9 * * *"),
                "command": ["sh", "-c", "touch started; sleep 30"],
            }
        ]
    )
    apply_now(project)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cronplan", "--config", str(project.config), "fire",
         "--job-id", "slow", "--fire-at", "2026-11-27T09:00:00Z", "--now", NOW],
        cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not (project.root / "started").exists():
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert "Traceback" not in err


def _run_with_crashing_planner(project: Project, *args: str) -> Result:
    """The real CLI entry point with a planner that has a bug (an unexpected exception)."""
    code = (
        "import cronplan.planner as p\n"
        "def boom(*a, **k): raise ZeroDivisionError('simulated bug')\n"
        "p.plan = boom\n"
        "from cronplan.cli.root import main\n"
        "main()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "--config", str(project.config), *args],
        cwd=project.root, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return Result(proc.returncode, proc.stdout, proc.stderr)


def test_internal_error_is_exit_3_and_names_v(daily: Project) -> None:
    res = _run_with_crashing_planner(daily, "plan", "--now", NOW)
    assert res.exit_code == 3
    assert "-v" in res.stderr
    no_traceback(res)
    verbose = _run_with_crashing_planner(daily, "-v", "plan", "--now", NOW)
    assert verbose.exit_code == 3
    assert "Traceback" in verbose.stderr


def test_help_is_exit_0(daily: Project) -> None:
    res = daily.run("--help")
    assert res.exit_code == 0
    for command in ("validate", "plan", "apply", "show", "fire", "serve", "next", "status"):
        assert command in res.stdout
