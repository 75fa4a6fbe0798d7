"""The update action through the real CLI: an edited definition is a change until apply records it.

Runs on a SQLite and on a PostgreSQL ledger, at a fixed `--now` in the past and in the future of today.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cronplan.ledger import open_ledger
from tests.test_cli_plan_apply import local_arms

SCHEMA = json.loads((Path(__file__).parents[1] / "schemas" / "plan.schema.json").read_text())
# One instant before today and one years after it: nothing here may depend on the real date.
NOWS = ["2026-11-26T12:00:00Z", "2031-03-09T12:00:00Z"]


def job(command: list[str]) -> dict[str, object]:
    return {"id": "report", "schedule": {"kind": "cron", "expr": "0 9 * * *"}, "command": command}


def use_ledger(project, ledger_url: str) -> None:
    project.write_config(f"jobs: jobs.json\nprovider: local\ntimezone: UTC\nstate: {ledger_url}\n")


def applied_spec(project, ledger_url: str, job_id: str) -> dict[str, object] | None:
    ledger = open_ledger(ledger_url, base_dir=str(project.root))
    try:
        record = ledger.job_records([job_id]).get(job_id)
        return None if record is None or record.applied_spec is None else dict(record.applied_spec)
    finally:
        ledger.close()


@pytest.mark.parametrize("now", NOWS)
def test_editing_only_command_is_an_update_until_applied(project, ledger_url, now):
    use_ledger(project, ledger_url)
    project.write_jobs([job(["echo", "one"])])
    assert project.cli("apply", "--auto-approve", "--now", now).exit_code == 0
    armed = local_arms(project)
    r = project.cli("plan", "--now", now, "--detailed-exitcode")
    assert (r.exit_code, r.stdout) == (0, "No changes. Arms match jobs.json.\n")

    project.write_jobs([job(["echo", "two"])])
    r = project.cli("plan", "--now", now, "--detailed-exitcode")
    assert r.exit_code == 2, r.stderr
    assert "  * update\n" in r.stdout  # the legend names the symbol
    assert re.search(rf"^  \* report  {armed['report']} \(in \d+ h\)  job changed$", r.stdout, re.M)
    assert '      command[1]: "one" \u2192 "two"\n' in r.stdout
    assert r.stdout.endswith(
        "Plan: 0 to arm, 0 to re-arm, 1 to update, 0 to cancel, 0 unchanged.\n"
    )

    r = project.cli("plan", "--now", now, "--format", "json")
    doc = json.loads(r.stdout)
    import jsonschema

    jsonschema.validate(doc, SCHEMA)
    assert doc["summary"] == {"arm": 0, "rearm": 0, "update": 1, "cancel": 0, "skip": 0}
    (action,) = doc["actions"]
    assert (action["action"], action["reason"]) == ("update", "job changed")
    assert action["changes"] == [{"path": "command[1]", "before": "one", "after": "two"}]
    assert action["before"]["fire_at"] == action["after"]["fire_at"] == armed["report"]
    assert doc["definitions"]["report"]["command"] == ["echo", "two"]

    r = project.cli("plan", "--now", now, "--format", "markdown")
    assert "**Plan: 0 to arm, 0 to re-arm, 1 to update, 0 to cancel, 0 unchanged.**" in r.stdout
    assert re.search(rf"^\* report  {armed['report']} \(in \d+ h\)  job changed$", r.stdout, re.M)
    assert "`*` update" in r.stdout

    # Until apply, the ledger still holds the definition that was applied.
    assert applied_spec(project, ledger_url, "report")["command"] == ["echo", "one"]
    r = project.cli("apply", "--auto-approve", "--now", now)
    assert r.exit_code == 0, r.stderr
    assert "Apply complete: 0 armed, 0 re-armed, 1 updated, 0 cancelled." in r.stdout
    assert local_arms(project) == armed  # no provider call: the arm stayed
    assert applied_spec(project, ledger_url, "report")["command"] == ["echo", "two"]

    r = project.cli("plan", "--now", now, "--detailed-exitcode")
    assert (r.exit_code, r.stdout) == (0, "No changes. Arms match jobs.json.\n")


def test_an_update_changes_the_intent_digest(project):
    now = NOWS[0]
    project.write_jobs([job(["echo", "one"])])
    assert project.cli("apply", "--auto-approve", "--now", now).exit_code == 0
    before = json.loads(project.cli("plan", "--now", now, "--format", "json").stdout)
    project.write_jobs([job(["echo", "two"])])
    after = json.loads(project.cli("plan", "--now", now, "--format", "json").stdout)
    assert before["intent_digest"] != after["intent_digest"]
    # A digest approved before the edit no longer matches: the edit was never reviewed.
    r = project.cli(
        "apply", "--auto-approve", "--now", now, "--expect-intent", before["intent_digest"]
    )
    assert r.exit_code == 1 and "Plan has changed since it was approved" in r.stderr
    r = project.cli(
        "apply", "--auto-approve", "--now", now, "--expect-intent", after["intent_digest"]
    )
    assert r.exit_code == 0, r.stderr


@pytest.mark.parametrize(
    "edit",
    [
        {"timeout_seconds": 60},
        {"env": {"LEVEL": "debug"}},
        {"name": "Daily report"},
        {"repeat": {"times": 3}},
        {"catch_up": "skip"},
        {"x-owner": "team-data"},
    ],
)
def test_any_field_is_an_update(project, edit):
    now = NOWS[0]
    project.write_jobs([job(["echo", "one"])])
    assert project.cli("apply", "--auto-approve", "--now", now).exit_code == 0
    project.write_jobs([{**job(["echo", "one"]), **edit}])
    r = project.cli("plan", "--now", now, "--detailed-exitcode")
    assert r.exit_code == 2, r.stdout + r.stderr
    assert "1 to update" in r.stdout and f"      {next(iter(edit))}" in r.stdout
    assert project.cli("apply", "--auto-approve", "--now", now).exit_code == 0
    assert project.cli("plan", "--now", now, "--detailed-exitcode").exit_code == 0


def test_a_paused_job_that_changed_is_an_update(project):
    now = NOWS[0]
    project.write_jobs([job(["echo", "one"])])
    assert project.cli("apply", "--auto-approve", "--now", now).exit_code == 0
    project.write_jobs([{**job(["echo", "one"]), "state": "paused"}])
    r = project.cli("plan", "--now", now, "--detailed-exitcode")
    assert r.exit_code == 2 and "- report" in r.stdout  # the cancel records the paused job
    assert project.cli("apply", "--auto-approve", "--now", now).exit_code == 0
    assert local_arms(project) == {}
    assert project.cli("plan", "--now", now, "--detailed-exitcode").exit_code == 0

    project.write_jobs([{**job(["echo", "two"]), "state": "paused"}])
    r = project.cli("plan", "--now", now, "--detailed-exitcode")
    assert r.exit_code == 2 and "* report  job changed" in r.stdout
    assert project.cli("apply", "--auto-approve", "--now", now).exit_code == 0
    assert local_arms(project) == {}
    assert project.cli("plan", "--now", now, "--detailed-exitcode").exit_code == 0


def test_schedule_and_command_changed_together_is_one_rearm_with_both_fields(project):
    now = NOWS[0]
    project.write_jobs([job(["echo", "one"])])
    assert project.cli("apply", "--auto-approve", "--now", now).exit_code == 0
    changed = job(["echo", "two"])
    changed["schedule"] = {"kind": "cron", "expr": "30 9 * * *"}
    project.write_jobs([changed])
    r = project.cli("plan", "--now", now, "--detailed-exitcode")
    assert r.exit_code == 2
    assert "~ report" in r.stdout and "schedule changed" in r.stdout
    assert "command[1]" in r.stdout and "schedule.expr" in r.stdout
    assert r.stdout.endswith(
        "Plan: 0 to arm, 1 to re-arm, 0 to update, 0 to cancel, 0 unchanged.\n"
    )


def test_hermes_fields_are_updates_and_runtime_fields_are_not(project):
    now = NOWS[0]
    project.write_config("jobs: jobs.json\nprovider: local\ntimezone: UTC\nrunner: [cat]\n")
    hermes = {
        "id": "brief",
        "schedule": {"kind": "cron", "expr": "30 7 * * *"},
        "prompt": "Summarise the news",
        "skills": ["web"],
        "model": "small",
        "last_run_at": "2026-11-25T07:30:00+00:00",
        "last_status": "ok",
        "_hermes_internal": 1,
    }
    project.write_jobs([hermes])
    assert project.cli("apply", "--auto-approve", "--now", now).exit_code == 0
    # What Hermes writes while it runs jobs is not part of the definition.
    project.write_jobs(
        [{**hermes, "last_run_at": "2026-11-26T07:30:00+00:00", "last_status": "error"}]
    )
    assert project.cli("plan", "--now", now, "--detailed-exitcode").exit_code == 0
    for field, value in (("prompt", "Summarise the sports news"), ("skills", ["web", "x"]),
                         ("model", "large"), ("x-channel", "#news")):  # fmt: skip
        project.write_jobs([{**hermes, field: value}])
        r = project.cli("plan", "--now", now, "--detailed-exitcode")
        assert r.exit_code == 2, (field, r.stdout)
        assert "* brief" in r.stdout and f"      {field}" in r.stdout
