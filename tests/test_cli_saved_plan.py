"""Saved plans carry the definitions they apply, and a hand-edited saved plan is refused (real CLI)."""

from __future__ import annotations

import json

import pytest

from cronplan.ledger import open_ledger
from tests.test_cli_plan_apply import local_arms

NOW = "2026-11-26T12:00:00Z"
FUTURE_NOW = "2031-03-09T12:00:00Z"


def job(command: list[str]) -> dict[str, object]:
    return {"id": "a", "schedule": {"kind": "cron", "expr": "0 9 * * *"}, "command": command}


def save_plan(project, now: str = NOW) -> dict[str, object]:
    r = project.cli("plan", "--now", now, "--out", "p.json")
    assert r.exit_code == 0, r.stderr
    return json.loads((project.root / "p.json").read_text())


def write_plan(project, doc: dict[str, object]) -> None:
    (project.root / "p.json").write_text(json.dumps(doc, indent=2))


def applied_command(project, job_id: str = "a") -> object:
    ledger = open_ledger("sqlite:///.cronplan/state.db", base_dir=str(project.root))
    try:
        record = ledger.job_records([job_id])[job_id]
        assert record.applied_spec is not None
        return record.applied_spec["command"]
    finally:
        ledger.close()


def the_action(doc: dict[str, object]) -> dict[str, object]:
    (action,) = doc["actions"]  # type: ignore[misc]
    return action  # type: ignore[no-any-return]


def set_fire_at(action: dict[str, object], fire_at: str) -> None:
    after = action["after"]
    assert isinstance(after, dict)
    after["fire_at"] = fire_at
    after["dedup_key"] = f"{action['job_id']}:{fire_at}"


def test_a_saved_plan_carries_the_definitions_it_applies(project):
    project.write_jobs([job(["echo", "one"])])
    doc = save_plan(project)
    assert doc["definitions"] == {
        "a": {
            "id": "a",
            "schedule": {"kind": "cron", "expr": "0 9 * * *", "tz": "UTC"},
            "command": ["echo", "one"],
        }
    }


@pytest.mark.parametrize("now", [NOW, FUTURE_NOW])
def test_apply_planfile_records_the_carried_definitions_not_jobs_json_at_apply_time(project, now):
    project.write_jobs([job(["echo", "one"])])
    save_plan(project, now)
    project.write_jobs([job(["echo", "edited", "after", "review"])])  # never reviewed
    r = project.cli("apply", "p.json", "--now", now)
    assert r.exit_code == 0, r.stderr
    assert applied_command(project) == ["echo", "one"]
    assert set(local_arms(project)) == {"a"}
    # The edit made after the plan is what the next plan shows: an update to review.
    r = project.cli("plan", "--now", now, "--detailed-exitcode")
    assert r.exit_code == 2 and "* a" in r.stdout and "job changed" in r.stdout


def test_apply_planfile_of_an_update_records_it_and_then_there_are_no_changes(project):
    project.write_jobs([job(["echo", "one"])])
    assert project.cli("apply", "--auto-approve", "--now", NOW).exit_code == 0
    project.write_jobs([job(["echo", "two"])])
    doc = save_plan(project)
    assert the_action(doc)["action"] == "update"
    r = project.cli("apply", "p.json", "--now", NOW)
    assert r.exit_code == 0, r.stderr
    assert "1 updated" in r.stdout
    assert applied_command(project) == ["echo", "two"]
    assert project.cli("plan", "--now", NOW, "--detailed-exitcode").exit_code == 0


@pytest.mark.parametrize(
    ("fire_at", "reason"),
    [
        ("2026-11-27T09:17:00Z", None),  # not an occurrence of the schedule
        ("2099-11-27T09:00:00Z", None),  # an occurrence, decades out
        ("2026-11-25T09:00:00Z", "catch-up of missed 09:00"),  # yesterday, dressed as a catch-up
    ],
)
def test_a_hand_edited_fire_at_is_refused(project, fire_at, reason):
    project.write_jobs([job(["echo", "one"])])
    doc = save_plan(project)
    action = the_action(doc)
    set_fire_at(action, fire_at)
    if reason is not None:
        action["reason"] = reason
    write_plan(project, doc)  # fire times are not in the intent digest: it still matches
    r = project.cli("apply", "p.json", "--now", NOW)
    assert r.exit_code == 1, r.stdout
    assert "Saved plan was modified: p.json: job a: its after fire_at is " + fire_at in r.stderr
    assert "but its inputs give 2026-11-27T09:00:00Z" in r.stderr
    assert "Traceback" not in r.stderr
    assert local_arms(project) == {}


@pytest.mark.parametrize("keep_digest", [True, False])
def test_a_hand_edited_reason_is_refused(project, keep_digest):
    project.write_jobs([job(["echo", "one"])])
    doc = save_plan(project)
    the_action(doc)["reason"] = "approved by ops"
    if not keep_digest:
        del doc["intent_digest"]  # a forger who knows the digest is checked leaves it out
    write_plan(project, doc)
    r = project.cli("apply", "p.json", "--now", NOW)
    assert r.exit_code == 1
    assert r.stderr.startswith("Error: Saved plan was modified: p.json: ")
    if not keep_digest:
        assert "its reason is 'approved by ops', but its inputs give 'missing'" in r.stderr
    assert local_arms(project) == {}


def test_a_hand_edited_action_is_refused(project):
    project.write_jobs([job(["echo", "one"])])
    assert project.cli("apply", "--auto-approve", "--now", NOW).exit_code == 0
    project.write_jobs([job(["echo", "two"])])
    doc = save_plan(project)
    action = the_action(doc)
    assert action["action"] == "update"
    action["action"] = "rearm"  # "update" calls no provider; a re-arm would
    del doc["intent_digest"]
    write_plan(project, doc)
    r = project.cli("apply", "p.json", "--now", NOW)
    assert r.exit_code == 1
    assert (
        "Saved plan was modified: p.json: job a: its action is 'rearm', but its inputs give 'update'"
        in r.stderr
    )
    assert applied_command(project) == ["echo", "one"]


def test_a_hand_edited_definition_is_refused(project):
    project.write_jobs([job(["echo", "one"])])
    doc = save_plan(project)
    doc["definitions"]["a"]["command"] = ["rm", "-rf", "/tmp/x"]  # type: ignore[index]
    write_plan(project, doc)
    r = project.cli("apply", "p.json", "--now", NOW)
    assert r.exit_code == 1
    assert "Saved plan was modified: p.json: job a: its job_digest does not match" in r.stderr
    assert local_arms(project) == {}


def test_an_invalid_carried_definition_is_a_clear_error(project):
    project.write_jobs([job(["echo", "one"])])
    doc = save_plan(project)
    doc["definitions"]["a"]["schedule"]["expr"] = "61 * * * *"  # type: ignore[index]
    write_plan(project, doc)
    r = project.cli("apply", "p.json", "--now", NOW)
    assert r.exit_code == 1
    assert (
        "p.json: a job definition the plan carries is not valid (/jobs/0/schedule/expr" in r.stderr
    )
    assert "Traceback" not in r.stderr


def test_a_plan_saved_without_definitions_applies_against_unchanged_jobs_json(project):
    project.write_jobs([job(["echo", "one"])])
    doc = save_plan(project)
    del doc["definitions"]  # as written by a cronplan that did not carry them yet
    write_plan(project, doc)
    r = project.cli("apply", "p.json", "--now", NOW)
    assert r.exit_code == 0, r.stderr
    assert applied_command(project) == ["echo", "one"]


@pytest.mark.parametrize("now", [NOW, FUTURE_NOW])
def test_a_saved_plan_carries_reason_codes(project, now):
    project.write_jobs([job(["echo", "one"])])
    assert the_action(save_plan(project, now))["reason_code"] == "missing"
    assert project.cli("apply", "--auto-approve", "--now", now).exit_code == 0
    project.write_jobs([job(["echo", "two"])])
    action = the_action(save_plan(project, now))
    assert (action["action"], action["reason"], action["reason_code"]) == (
        "update",
        "job changed",
        "job_changed",
    )


def test_a_plan_written_before_reason_codes_still_applies(project):
    project.write_jobs([job(["echo", "one"])])
    doc = save_plan(project)
    del the_action(doc)["reason_code"]  # a plan document from an earlier cronplan
    write_plan(project, doc)
    r = project.cli("apply", "p.json", "--now", NOW)
    assert r.exit_code == 0, r.stderr
    assert set(local_arms(project)) == {"a"}


@pytest.mark.parametrize(
    ("code", "keep_digest", "message"),
    [
        ("already_armed", True, "Saved plan was modified: p.json: its actions do not match"),
        (
            "already_armed",
            False,
            "its reason_code is 'already_armed', but its inputs give 'missing'",
        ),
        ("nope", True, "at /actions/0/reason_code: unknown reason code 'nope'"),
    ],
)
def test_a_hand_edited_reason_code_is_refused(project, code, keep_digest, message):
    project.write_jobs([job(["echo", "one"])])
    doc = save_plan(project)
    the_action(doc)["reason_code"] = code
    if not keep_digest:
        del doc["intent_digest"]
    write_plan(project, doc)
    r = project.cli("apply", "p.json", "--now", NOW)
    assert r.exit_code == 1, r.stdout
    assert message in r.stderr and "Traceback" not in r.stderr
    assert local_arms(project) == {}
