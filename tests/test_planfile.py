"""The plan document: JSON round trip, schema, saved files, intent digest, stale-plan detection."""

from __future__ import annotations

import json
import os
import random
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from cronplan.documents.schemas import load_schema
from cronplan.errors import CronplanError, StalePlanError
from cronplan.model import NO_DETAIL, Action, Arm, JobRecord, Plan
from cronplan.planfile import (
    FORMAT_VERSION,
    basis_entry,
    check_stale,
    intent_digest,
    load_plan,
    normalize_reason,
    plan_from_json,
    plan_to_json,
    record_fingerprint,
    save_plan,
)
from cronplan.render import render_json
from cronplan.render.reasons import reason_text
from tests.planfile_samples import (
    CALLBACK,
    NOW,
    big_plan,
    digest,
    plan_of,
    record,
    sample_actions,
    sample_plan,
    t,
)


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = load_schema("plan")  # as the installed package finds it
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


# --------------------------------------------------------------------------- document


def test_round_trip_rebuilds_the_plan_exactly() -> None:
    plan = sample_plan()
    assert plan_from_json(plan_to_json(plan)) == plan
    assert plan_from_json(json.loads(render_json(plan))) == plan


def test_round_trip_of_a_plan_with_no_actions_and_no_callback() -> None:
    plan = Plan(provider="local", now=NOW, actions=(), callback_url=None)
    doc = plan_to_json(plan)
    assert doc["callback_url"] is None
    assert doc["summary"] == {"arm": 0, "rearm": 0, "update": 0, "cancel": 0, "skip": 0}
    assert plan_from_json(doc) == plan


def test_document_has_the_spec_keys_in_a_fixed_order() -> None:
    doc = plan_to_json(sample_plan())
    assert list(doc) == [
        "format_version",
        "provider",
        "now",
        "callback_url",
        "summary",
        "intent_digest",
        "actions",
        "lineage",
        "basis",
        "definitions",
    ]
    assert doc["format_version"] == FORMAT_VERSION == "1"
    assert doc["now"] == "2026-11-26T14:00:00Z"
    assert doc["summary"] == {"arm": 3, "rearm": 3, "update": 1, "cancel": 3, "skip": 2}
    assert list(doc["actions"][0]) == [
        "action",
        "job_id",
        "reason",
        "before",
        "after",
        "changes",
        "job_digest",
        "tz",
        "reason_code",
    ]
    rearm = next(a for a in doc["actions"] if a["job_id"] == "newsletter")
    assert rearm["before"] == {
        "fire_at": "2026-11-27T14:00:00Z",
        "callback_url": CALLBACK,
        "provider_ref": "ref-nl",
    }
    assert rearm["after"] == {
        "fire_at": "2026-11-27T15:00:00Z",
        "callback_url": CALLBACK,
        "dedup_key": "newsletter:2026-11-27T15:00:00Z",
    }
    assert rearm["changes"][0] == {
        "path": "schedule.expr",
        "before": "0 9 * * *",
        "after": "0 10 * * *",
    }


def test_action_order_does_not_depend_on_input_order() -> None:
    actions = sample_actions()
    expected = render_json(plan_of(actions))
    for seed in range(5):
        shuffled = actions[:]
        random.Random(seed).shuffle(shuffled)
        plan = Plan(
            provider="nas",
            now=NOW,
            actions=tuple(shuffled),
            callback_url=CALLBACK,
            basis=dict(reversed(list(plan_of(actions).basis.items()))),
            lineage="lineage-1",
        )
        assert render_json(plan) == expected
    ids = [a["job_id"] for a in json.loads(expected)["actions"]]
    assert ids == sorted(ids)
    dup = [a["action"] for a in json.loads(expected)["actions"] if a["job_id"] == "dup-job"]
    assert dup == ["rearm", "cancel"]  # the kept arm first, then the extra one


def test_json_validates_against_the_schema(validator: Draft202012Validator) -> None:
    for plan in (sample_plan(), big_plan(300), Plan(provider="local", now=NOW, actions=())):
        errors = list(validator.iter_errors(plan_to_json(plan)))
        assert errors == []


def test_schema_rejects_a_malformed_document(validator: Draft202012Validator) -> None:
    doc = plan_to_json(sample_plan())
    doc["actions"][0]["after"] = None  # an arm that arms nothing
    assert not validator.is_valid(doc)
    doc = plan_to_json(sample_plan())
    doc["actions"][0]["action"] = "destroy"
    assert not validator.is_valid(doc)
    doc = plan_to_json(sample_plan())
    doc["now"] = "2026-11-26 14:00"
    assert not validator.is_valid(doc)


def test_an_edited_plan_is_refused() -> None:
    doc = plan_to_json(sample_plan())
    doc["actions"] = [a for a in doc["actions"] if a["action"] != "cancel"]
    with pytest.raises(
        CronplanError,
        match=r"Saved plan was modified: p\.json: its actions do not match its intent_digest",
    ):
        plan_from_json(doc, source="p.json")
    del doc["intent_digest"]  # a document without a digest is taken as it is
    assert plan_from_json(doc).summary.cancel == 0


def test_a_newer_minor_version_with_unknown_keys_is_read() -> None:
    plan = sample_plan()
    doc = plan_to_json(plan)
    doc["format_version"] = "1.2"
    doc["added_later"] = {"x": 1}
    doc["actions"][0]["added_later"] = True
    assert plan_from_json(doc) == plan


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.update(format_version="2"), "newer than this cronplan reads"),
        (lambda d: d.pop("format_version"), "not a cronplan plan file"),
        (lambda d: d.update(format_version=1), "unknown format_version"),
        (lambda d: d.pop("actions"), "missing key 'actions'"),
        (lambda d: d["actions"][1].pop("job_id"), "/actions/1"),
        (lambda d: d["actions"][0].update(action="destroy"), "unknown action 'destroy'"),
        (lambda d: d["actions"][0].update(after=None), "/actions/0/after"),
        (lambda d: d["actions"][0]["after"].update(fire_at="tomorrow"), "/actions/0/after/fire_at"),
        (lambda d: d.update(now=None), "/now"),
        (lambda d: d.update(basis=[]), "/basis"),
    ],
)
def test_shape_errors_name_the_file_and_the_place(mutate: Any, expected: str) -> None:
    doc = plan_to_json(sample_plan())
    mutate(doc)
    with pytest.raises(CronplanError) as err:
        plan_from_json(doc, source="plans/pr-12.json")
    assert "plans/pr-12.json" in str(err.value)
    assert expected in str(err.value)


# --------------------------------------------------------------------------- files


def test_save_and_load(tmp_path: Path) -> None:
    plan = sample_plan()
    path = tmp_path / "plan.json"
    save_plan(plan, path)
    text = path.read_text()
    assert text == render_json(plan)
    assert text.endswith("}\n")
    assert load_plan(path) == plan
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)
    assert os.listdir(tmp_path) == ["plan.json"]  # no temp file left behind


def test_save_replaces_an_existing_file_atomically(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text("old")
    path.chmod(0o600)
    save_plan(sample_plan(), path)
    assert load_plan(path) == sample_plan()
    assert path.stat().st_mode & 0o777 == 0o600
    assert sorted(os.listdir(tmp_path)) == ["plan.json"]


def test_save_into_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CronplanError, match=r"Cannot write plan file .*nope"):
        save_plan(sample_plan(), tmp_path / "nope" / "plan.json")


def test_load_errors_name_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    with pytest.raises(CronplanError, match=r"Plan file not found: .*missing\.json"):
        load_plan(missing)
    with pytest.raises(CronplanError, match="is a directory"):
        load_plan(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text('{"format_version": "1",')
    with pytest.raises(
        CronplanError, match=r"bad\.json: not a cronplan plan file \(invalid JSON at line 1"
    ):
        load_plan(bad)
    jobs = tmp_path / "jobs.json"
    jobs.write_text('{"jobs": []}')
    with pytest.raises(
        CronplanError, match=r"jobs\.json: not a cronplan plan file \(no format_version\)"
    ):
        load_plan(jobs)
    binary = tmp_path / "bin.json"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(CronplanError, match="not UTF-8"):
        load_plan(binary)
    newer = tmp_path / "newer.json"
    doc = plan_to_json(sample_plan())
    doc["format_version"] = "2"
    newer.write_text(json.dumps(doc))
    with pytest.raises(CronplanError, match=r"newer\.json: plan format_version 2 is newer"):
        load_plan(newer)


def test_unreadable_path(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    # A path through a regular file fails with an OSError other than "not found" (works even as root).
    with pytest.raises(
        CronplanError, match=r"Cannot read plan file .*afile/plan\.json: Not a directory"
    ):
        load_plan(afile / "plan.json")


# --------------------------------------------------------------------------- intent digest


@pytest.mark.parametrize(
    ("action", "reason", "normalized"),
    [
        ("arm", "catch-up of missed 09:00", "unarmed"),
        ("arm", "missing", "unarmed"),
        ("arm", "missed 09:00 beyond grace (catch_up: skip)", "unarmed"),
        ("skip", "already armed", "armed"),
        ("skip", "due, awaiting fire", "armed"),
        ("skip", "repeat exhausted (5/5)", "repeat exhausted (5/5)"),
        ("rearm", "duplicate arms: keeping a:2026-11-27T09:00:00Z", "duplicate arms: keeping a"),
        (
            "rearm",
            "arm of 09:00:30 already fired; next occurrence",
            "arm of already fired; next occurrence",
        ),
        ("rearm", "drift: arm changed outside cronplan", "drift: arm changed outside cronplan"),
        ("skip", "late by 3m (at 2026-11-27)", "late by"),
        ("cancel", "not in jobs.json (orphan)", "not in jobs.json (orphan)"),
    ],
)
def test_normalize_reason(action: Any, reason: str, normalized: str) -> None:
    assert normalize_reason(action, reason) == normalized


def test_intent_digest_ignores_time_moving_on() -> None:
    before = sample_plan()
    later = NOW + timedelta(hours=5, minutes=17)
    shifted = plan_of(sample_actions(shift=timedelta(hours=5, minutes=17)), now=later)
    assert shifted.actions != before.actions  # the fire times really differ
    assert intent_digest(shifted) == intent_digest(before)


def test_intent_digest_maps_an_armed_skip_that_became_due() -> None:
    armed = plan_of(sample_actions())
    due = plan_of(
        [
            replace(a, reason="due, awaiting fire") if a.reason == "already armed" else a
            for a in sample_actions()
        ]
    )
    assert intent_digest(due) == intent_digest(armed)


def test_intent_digest_is_order_independent() -> None:
    actions = sample_actions()
    a = Plan(provider="nas", now=NOW, actions=tuple(actions))
    b = Plan(provider="nas", now=NOW, actions=tuple(reversed(actions)))
    assert intent_digest(a) == intent_digest(b)


def _swap(actions: list[Action], job_id: str, **changes: Any) -> list[Action]:
    return [replace(a, **changes) if a.job_id == job_id else a for a in actions]


@pytest.mark.parametrize(
    "changed",
    [
        _swap(sample_actions(), "backup-db", job_digest=digest("backup-db v2")),
        _swap(sample_actions(), "paused-job", reason="completed"),
        _swap(sample_actions(), "hourly-sync", reason="paused"),
        [a for a in sample_actions() if a.job_id != "old-cleanup"],
        [*sample_actions(), Action("skip", "zz-new", "paused", job_digest=digest("zz-new"))],
        _swap(sample_actions(), "newsletter", reason="drift: arm changed outside cronplan"),
    ],
    ids=["spec-digest", "cancel-reason", "skip-reason", "job-removed", "job-added", "rearm-reason"],
)
def test_intent_digest_changes_when_the_intent_changes(changed: list[Action]) -> None:
    assert intent_digest(plan_of(changed)) != intent_digest(sample_plan())


def test_intent_digest_changes_with_the_action_kind() -> None:
    actions = sample_actions()
    flipped = [
        Action("skip", a.job_id, "missing", job_digest=a.job_digest)
        if a.job_id == "backup-db"
        else a
        for a in actions
    ]
    assert intent_digest(plan_of(flipped)) != intent_digest(plan_of(actions))


def test_intent_digest_is_a_sha256_hex_and_in_the_document() -> None:
    plan = sample_plan()
    value = intent_digest(plan)
    assert len(value) == 64 and int(value, 16) >= 0
    assert plan_to_json(plan)["intent_digest"] == value
    assert intent_digest(plan_from_json(plan_to_json(plan))) == value


# --------------------------------------------------------------------------- basis & staleness


def test_record_fingerprint() -> None:
    assert record_fingerprint(None) == "none"
    rec = record("a", runs=2, last_fired_at=t("2026-11-26T09:00:00Z"), applied_spec={"id": "a"})
    assert record_fingerprint(rec) == record_fingerprint(replace(rec))
    assert record_fingerprint(rec) != record_fingerprint(replace(rec, runs=3))
    assert record_fingerprint(rec) != record_fingerprint(replace(rec, last_fired_at=NOW))
    assert record_fingerprint(rec) != record_fingerprint(
        replace(rec, applied_spec={"id": "a", "x": 1})
    )
    assert record_fingerprint(rec) != record_fingerprint(None)


def test_basis_entry_sorts_the_arms() -> None:
    a1 = Arm("a", t("2026-11-27T09:00:00Z"), CALLBACK, "r1")
    a2 = Arm("a", t("2026-11-26T09:00:00Z"), CALLBACK, "r2")
    assert basis_entry([a1, a2], None) == basis_entry([a2, a1], None)
    assert basis_entry([a1, a2], None)["arms"][0]["provider_ref"] == "r2"


def _live(plan: Plan) -> list[Arm]:
    """The arms the provider holds when nothing changed since the plan: every action's live arm."""
    return [a.before for a in plan.actions if a.before is not None]


RECORDS = {"newsletter": record("newsletter", runs=3), "hourly-sync": record("hourly-sync", runs=9)}


def test_unchanged_inputs_are_not_stale() -> None:
    plan = sample_plan()
    check_stale(plan, _live(plan), RECORDS, NOW + timedelta(minutes=10), lineage_now="lineage-1")


def test_a_loaded_plan_is_checked_the_same_way(tmp_path: Path) -> None:
    plan = sample_plan()
    save_plan(plan, tmp_path / "p.json")
    loaded = load_plan(tmp_path / "p.json")
    check_stale(loaded, _live(plan), RECORDS, NOW)
    moved = [
        replace(a, fire_at=a.fire_at + timedelta(minutes=1)) if a.job_id == "newsletter" else a
        for a in _live(plan)
    ]
    with pytest.raises(StalePlanError):
        check_stale(loaded, moved, RECORDS, NOW)


def test_a_planned_jobs_live_arm_moved() -> None:
    plan = sample_plan()
    arms = [
        replace(a, fire_at=a.fire_at + timedelta(hours=1)) if a.job_id == "newsletter" else a
        for a in _live(plan)
    ]
    with pytest.raises(StalePlanError) as err:
        check_stale(plan, arms, RECORDS, NOW)
    message = str(err.value)
    assert message.startswith("Saved plan is stale: ")
    assert "newsletter" in message and "2026-11-27T14:00:00Z" in message
    assert message.endswith("run cronplan plan again")


def test_a_planned_jobs_arm_appeared() -> None:
    plan = sample_plan()
    arms = [*_live(plan), Arm("backup-db", t("2026-11-27T02:00:00Z"), CALLBACK, "someone-else")]
    with pytest.raises(StalePlanError, match="backup-db"):
        check_stale(plan, arms, RECORDS, NOW)


def test_a_planned_jobs_arm_disappeared() -> None:
    plan = sample_plan()
    arms = [a for a in _live(plan) if a.job_id != "old-cleanup"]
    with pytest.raises(StalePlanError, match=r"old-cleanup.*now none"):
        check_stale(plan, arms, RECORDS, NOW)


def test_a_planned_jobs_ledger_entry_changed() -> None:
    plan = sample_plan()
    records = {**RECORDS, "newsletter": record("newsletter", runs=4)}
    with pytest.raises(StalePlanError, match="job newsletter: its ledger entry changed"):
        check_stale(plan, _live(plan), records, NOW)
    records = {**RECORDS, "backup-db": record("backup-db")}  # planned against no record at all
    with pytest.raises(StalePlanError, match="job backup-db: its ledger entry changed"):
        check_stale(plan, _live(plan), records, NOW)


def test_an_unrelated_job_changing_does_not_make_the_plan_stale() -> None:
    plan = sample_plan()
    # hourly-sync is only skipped: it fired, its ledger entry moved on and it re-armed itself.
    records = {
        **RECORDS,
        "hourly-sync": record("hourly-sync", runs=10, last_fired_at=NOW),
        "not-in-plan": record("not-in-plan", runs=1),
    }
    arms = [
        replace(a, fire_at=a.fire_at + timedelta(hours=1)) if a.job_id == "hourly-sync" else a
        for a in _live(plan)
    ]
    arms.append(Arm("not-in-plan", NOW + timedelta(hours=2), CALLBACK, "x"))
    check_stale(plan, arms, records, NOW + timedelta(minutes=30))


def test_a_catch_up_planned_in_the_past_is_not_stale() -> None:
    plan = sample_plan()
    catchup = next(a for a in plan.actions if a.job_id == "catchup-job")
    assert catchup.after is not None and catchup.after.fire_at < plan.now
    check_stale(plan, _live(plan), RECORDS, NOW + timedelta(minutes=20))


def test_a_planned_future_fire_time_now_in_the_past_is_stale() -> None:
    plan = sample_plan()
    check_stale(plan, _live(plan), RECORDS, t("2026-11-26T23:30:00Z"))  # due this very second: fine
    with pytest.raises(
        StalePlanError, match=r"webhook-ping was planned to fire at 2026-11-26T23:30:00Z"
    ):
        check_stale(plan, _live(plan), RECORDS, t("2026-11-26T23:30:01Z"))
    with pytest.raises(
        StalePlanError, match=r"backup-db was planned to fire at 2026-11-27T02:00:00Z"
    ):
        check_stale(plan, _live(plan), RECORDS, t("2026-11-27T02:00:01Z"))


def test_a_different_ledger_is_stale() -> None:
    plan = sample_plan()
    with pytest.raises(StalePlanError, match="different state ledger"):
        check_stale(plan, _live(plan), RECORDS, NOW, lineage_now="lineage-2")


def test_a_change_without_a_basis_is_stale() -> None:
    plan = replace(sample_plan(), basis={})
    with pytest.raises(StalePlanError, match="no basis for job backup-db"):
        check_stale(plan, _live(plan), RECORDS, NOW)


def test_stale_message_lists_a_few_and_counts_the_rest() -> None:
    plan = sample_plan()
    with pytest.raises(StalePlanError) as err:
        check_stale(plan, [], {}, NOW + timedelta(days=3))
    message = str(err.value)
    assert message.count("job ") == 5
    assert message.endswith("; and 7 more; run cronplan plan again")


def test_a_skip_only_plan_is_never_stale() -> None:
    only_skips = plan_of(
        [
            Action(
                "skip",
                "a",
                "already armed",
                before=Arm("a", NOW + timedelta(minutes=1), CALLBACK),
                job_digest=digest("a"),
            )
        ]
    )
    assert only_skips.basis == {}
    check_stale(only_skips, [], {"a": JobRecord("a", runs=5)}, NOW + timedelta(days=1))


# --------------------------------------------------------------------------- with the real planner


def _planner_scenario(now: Any) -> tuple[Plan, list[Arm], dict[str, JobRecord]]:
    from cronplan.planner import plan as make_plan
    from tests.planning import make_job

    old_c = make_job("c", {"kind": "cron", "expr": "0 8 * * *"}, command=["true"])
    jobs = [
        make_job(
            "a", {"kind": "cron", "expr": "0 9 * * *", "tz": "Europe/Berlin"}, command=["true"]
        ),
        make_job("b", {"kind": "interval", "minutes": 60}, command=["true"]),
        make_job("c", {"kind": "cron", "expr": "0 10 * * *"}, command=["true"]),
        make_job("d", {"kind": "interval", "minutes": 60}, state="paused", command=["true"]),
        make_job("e", {"kind": "cron", "expr": "30 12 * * *"}, command=["true"]),
    ]
    arms = [
        Arm("b", t("2026-11-26T14:00:00Z"), CALLBACK, "rb"),
        Arm("c", t("2026-11-27T08:00:00Z"), CALLBACK, "rc"),
        Arm("d", t("2026-11-26T14:00:00Z"), CALLBACK, "rd"),
        Arm("gone", t("2026-11-27T01:00:00Z"), CALLBACK, "rg"),
        Arm("e", t("2026-11-26T14:30:00Z"), CALLBACK, "re1"),
        Arm("e", t("2026-11-27T14:30:00Z"), CALLBACK, "re2"),
    ]
    records = {
        "c": JobRecord(
            "c",
            applied_spec=dict(old_c.spec),
            applied_digest=old_c.digest,
            applied_fire_at=t("2026-11-27T08:00:00Z"),
            applied_callback_url=CALLBACK,
        ),
        "b": JobRecord(
            "b",
            applied_digest=jobs[1].digest,
            applied_fire_at=t("2026-11-26T14:00:00Z"),
            applied_callback_url=CALLBACK,
            last_fired_at=t("2026-11-26T13:00:00Z"),
            runs=4,
        ),
    }
    plan = make_plan(
        jobs, arms, records, now, provider="local", callback_url=CALLBACK, lineage="L1"
    )
    return plan, arms, records


def as_read(plan: Plan) -> Plan:
    """``plan`` as a plan document gives it back: each reason as the text it was written with (the
    document holds the words, not the detail they were worded from)."""
    return replace(
        plan,
        actions=tuple(
            replace(a, reason=reason_text(a), reason_detail=NO_DETAIL) for a in plan.actions
        ),
    )


def test_a_real_plan_round_trips_validates_and_is_fresh(
    tmp_path: Path, validator: Draft202012Validator
) -> None:
    now = t("2026-11-26T13:30:00Z")
    plan, arms, records = _planner_scenario(now)
    kinds = {a.action for a in plan.actions}
    assert kinds == {"arm", "rearm", "cancel", "skip"}, plan.actions
    assert any(a.changes for a in plan.actions)
    assert validator.is_valid(plan_to_json(plan))
    save_plan(plan, tmp_path / "p.json")
    loaded = load_plan(tmp_path / "p.json")
    assert loaded == as_read(plan)
    check_stale(loaded, arms, records, now + timedelta(minutes=5), lineage_now="L1")
    # b fires (an unrelated, skipped job): its record and arm move on; the plan stays fresh.
    fired_b = {
        **records,
        "b": replace(records["b"], last_fired_at=t("2026-11-26T14:00:00Z"), runs=5),
    }
    arms_b = [replace(a, fire_at=t("2026-11-26T15:00:00Z")) if a.job_id == "b" else a for a in arms]
    check_stale(loaded, arms_b, fired_b, t("2026-11-26T14:00:30Z"))


def test_a_real_plans_intent_survives_time_moving_on() -> None:
    early, _, _ = _planner_scenario(t("2026-11-26T13:30:00Z"))
    late, _, _ = _planner_scenario(t("2026-11-26T14:01:00Z"))  # b's arm is now due, not yet fired
    reasons = {a.job_id: reason_text(a) for a in late.actions}
    assert reasons["b"] != {a.job_id: reason_text(a) for a in early.actions}["b"]
    assert intent_digest(late) == intent_digest(early)


def test_carried_definitions_round_trip_and_match_the_schema() -> None:
    spec = {
        "id": "prompt-job",
        "schedule": {"kind": "cron", "expr": "0 7 * * *", "tz": "UTC"},
        "command": ["python3", "digest_v2.py"],
        "x-owner": "team-mail",
    }
    plan = replace(sample_plan(), definitions={"prompt-job": spec})
    doc = plan_to_json(plan)
    assert doc["definitions"] == {"prompt-job": spec}
    Draft202012Validator(load_schema("plan")).validate(doc)
    again = plan_from_json(json.loads(render_json(plan)))
    assert again == plan
    # A plan written before definitions were carried still reads (additive format).
    del doc["definitions"]
    assert plan_from_json(doc).definitions == {}
    doc["definitions"] = {"prompt-job": ["not", "an", "object"]}
    with pytest.raises(CronplanError, match=r"at /definitions/prompt-job: expected an object"):
        plan_from_json(doc, source="p.json")


@pytest.mark.parametrize(
    "extra",
    [
        # Non-ASCII: json.dumps escapes it, orjson would not.
        {"name": "Café ☕ \x7f \U0001f600 \u2028"},
        # Small floats: orjson writes them otherwise; then the pure-Python writer runs.
        {"http": {"url": "http://127.0.0.1/x", "body": {"tiny": 1e-7, "small": 2.5e-5}}},
        # Text that looks like a small float: the slow path too.
        {"command": ["echo", "0.00001", "e-5"]},
        {"http": {"url": "http://127.0.0.1/x", "body": {"n": 2**70}}},  # beyond orjson's integers
    ],
)
def test_plan_json_is_byte_for_byte_json_dumps_indent_2(extra: dict[str, Any]) -> None:
    """docs/planning.md: the plan document is byte-stable; the fast writer must equal json.dumps."""
    from cronplan.planfile import dumps_plan, dumps_plan_bytes, plan_to_json
    from cronplan.planner import plan as make_plan
    from tests.planning import NOW, make_job

    jobs = [make_job(f"j{i}", **extra) for i in range(3)]
    the_plan = make_plan(jobs, [], {}, NOW, provider="local", callback_url=None)
    text = dumps_plan(the_plan)
    assert text == json.dumps(plan_to_json(the_plan), indent=2) + "\n"
    assert render_json(the_plan) == text
    assert dumps_plan_bytes(the_plan) == text.encode("ascii")
