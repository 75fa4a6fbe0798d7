"""The JSON renderer: the plan document, byte-stable, valid against schemas/plan.schema.json."""

from __future__ import annotations

import json

from jsonschema import Draft202012Validator
from syrupy.assertion import SnapshotAssertion

from cronplan.documents.schemas import fast_validator, load_schema
from cronplan.model import Action, Arm, Plan
from cronplan.planfile import plan_from_json
from cronplan.render import render_json
from tests.planfile_samples import NOW, big_plan, plan_of, sample_plan

SCHEMA = load_schema("plan")


def test_snapshot(snapshot: SnapshotAssertion) -> None:
    assert render_json(sample_plan()) == snapshot


def test_byte_identical_for_identical_input() -> None:
    assert render_json(sample_plan()) == render_json(sample_plan())
    assert render_json(big_plan(500)) == render_json(big_plan(500))


def test_shape_and_trailing_newline() -> None:
    text = render_json(sample_plan())
    assert text.endswith("}\n") and not text.endswith("\n\n")
    assert text.startswith('{\n  "format_version": "1",\n')
    assert plan_from_json(json.loads(text)) == sample_plan()


def test_validates_against_the_schema() -> None:
    validator = Draft202012Validator(SCHEMA)
    orphan = plan_of(
        [
            Action(
                "cancel",
                "Weird id/from provider",
                "not in jobs.json (orphan)",
                before=Arm("Weird id/from provider", NOW, None, None),
            )
        ]
    )
    for plan in (
        sample_plan(),
        big_plan(1000),
        Plan(provider="local", now=NOW, actions=()),
        orphan,
    ):
        doc = json.loads(render_json(plan))
        assert list(validator.iter_errors(doc)) == []
        assert fast_validator("plan").is_valid(doc)


def test_fast_writer_matches_the_standard_library() -> None:
    from datetime import timedelta

    from cronplan.model import Action, Arm, Change
    from cronplan.planfile import dumps_plan, plan_to_json
    from tests.planfile_samples import CALLBACK, digest, plan_of

    odd = {
        "ünïcode": '日本\u2028"quoted"\\',
        "n": [1, 2.5, -0.0, True, False, None, [], {}],
        "big": 10**20,
        "nested": {"a": {"b": [{"c": None}]}},
    }
    plan = plan_of(
        [
            Action(
                "rearm",
                "odd.job_1",
                'job changed \u2192 "x"',
                before=Arm("odd.job_1", NOW, CALLBACK, "ref/é"),
                after=Arm("odd.job_1", NOW + timedelta(hours=1), CALLBACK),
                changes=(
                    Change("x-data", odd, None),
                    Change("x-empty", [], {}),
                    Change("x-num", 1.25, 3),
                ),
                job_digest=digest("odd"),
                tz="Pacific/Chatham",
            ),
        ]
    )
    for p in (plan, sample_plan(), big_plan(2000)):
        assert dumps_plan(p) == json.dumps(plan_to_json(p), indent=2) + "\n"
