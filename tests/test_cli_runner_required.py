"""Jobs that only the configured runner can run: refused by plan/apply without one, warned by validate."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.test_cli_plan_apply import local_arms

NOW = "2026-11-26T12:00:00Z"
EXAMPLES = Path(__file__).parents[1] / "examples"
MESSAGE = "this job has no 'command' or 'http' action and no 'runner' is configured to run it"

JOBS_TEXT = """{
  "jobs": [
    {"id": "plain", "schedule": {"kind": "cron", "expr": "0 9 * * *"}, "command": ["true"]},
    {"id": "briefing",
     "schedule": {"kind": "cron", "expr": "30 7 * * *"},
     "prompt": "Summarise my calendar.", "skills": ["calendar"]},
    {"id": "digest", "schedule": {"kind": "interval", "minutes": 30}, "prompt": "Digest my inbox."}
  ]
}
"""


def write(project, config_extra: str = "") -> None:
    project.write_config(f"jobs: jobs.json\nprovider: local\ntimezone: UTC\n{config_extra}")
    (project.root / "jobs.json").write_text(JOBS_TEXT)


def test_plan_and_apply_refuse_runner_jobs_without_a_runner_listing_each(project):
    write(project)
    for args in (("plan", "--now", NOW), ("apply", "--auto-approve", "--now", NOW)):
        r = project.cli(*args)
        assert r.exit_code == 1, (args, r.stdout)
        assert r.stdout == ""
        assert r.stderr.splitlines() == [
            f"jobs.json:4:5: /jobs/1: {MESSAGE}: set 'runner' in cronplan.yaml (an argv that gets "
            "the job as JSON on stdin), or give the job a 'command'",
            f"jobs.json:7:5: /jobs/2: {MESSAGE}: set 'runner' in cronplan.yaml (an argv that gets "
            "the job as JSON on stdin), or give the job a 'command'",
        ]
    assert local_arms(project) == {}


def test_validate_only_warns(project):
    write(project)
    r = project.cli("validate")
    assert r.exit_code == 0
    assert r.stdout == "jobs.json: 3 jobs valid.\n"
    warnings = r.stderr.splitlines()
    assert [w.split(": ", 3)[:2] for w in warnings] == [
        ["Warning", "jobs.json:4:5"],
        ["Warning", "jobs.json:7:5"],
    ]
    assert all(MESSAGE in w for w in warnings)


def test_with_a_runner_they_are_planned_and_validate_is_quiet(project):
    write(project, "runner: [python3, prompt_runner.py]\n")
    r = project.cli("validate")
    assert (r.exit_code, r.stderr) == (0, "")
    r = project.cli("apply", "--auto-approve", "--now", NOW)
    assert r.exit_code == 0, r.stderr
    assert set(local_arms(project)) == {"plain", "briefing", "digest"}


def test_apply_of_a_saved_plan_refuses_runner_jobs_once_the_runner_is_gone(project):
    write(project, "runner: [python3, prompt_runner.py]\n")
    assert project.cli("plan", "--now", NOW, "--out", "p.json").exit_code == 0
    write(project)  # the runner was removed from cronplan.yaml after the plan was saved
    r = project.cli("apply", "p.json", "--now", NOW)
    assert r.exit_code == 1
    assert "p.json: job(s) briefing, digest have no 'command' or 'http' action" in r.stderr
    assert local_arms(project) == {}


def test_the_example_runner_reads_the_job_from_stdin():
    job = json.loads((EXAMPLES / "jobs.json").read_text())["jobs"][-1]
    assert "prompt" in job and "command" not in job and "http" not in job
    payload = json.dumps({**job, "fire_at": "2026-11-27T07:30:00Z"})
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "prompt_runner.py")],
        input=payload,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    assert f"job {job['id']} for 2026-11-27T07:30:00Z: {job['prompt']}" in proc.stdout
    assert "--skills calendar,email" in proc.stdout
    # With an agent command, the prompt is its last argument.
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "prompt_runner.py")],
        input=payload,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "AGENT_COMMAND": "echo agent-got"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == f"agent-got --skills calendar,email {job['prompt']}"
    bad = subprocess.run(
        [sys.executable, str(EXAMPLES / "prompt_runner.py")],
        input='{"id": "x"}',
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "has no 'prompt'" in bad.stderr
