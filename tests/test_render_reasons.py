"""The words of the reason codes (cronplan/render/reasons.py): every code has them, the planner writes none,
and the plan document and the renderers word a planned action the same way (docs/architecture.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cronplan.model import NO_DETAIL, Action, Arm, JobRecord, Plan, ReasonCode, ReasonDetail
from cronplan.planfile import action_to_json, dumps_plan, load_plan, save_plan
from cronplan.planner import plan
from cronplan.render.reasons import reason_text, reason_words
from cronplan.render.text import render_text
from tests.planning import NOW, make_job, ts


@pytest.mark.parametrize("code", list(ReasonCode))
def test_every_reason_code_has_words(code: ReasonCode) -> None:
    detail = ReasonDetail(at=ts("2026-11-26T08:00:00Z"), tz="UTC", runs=2, max_runs=2, kept="k")
    words = reason_words(code, detail)
    assert words and words == words.strip()
    assert "None" not in words


@pytest.mark.parametrize(
    ("code", "detail", "words"),
    [
        (ReasonCode.REPEAT_EXHAUSTED, ReasonDetail(runs=3, max_runs=5), "repeat exhausted (3/5)"),
        (
            ReasonCode.CATCH_UP,
            ReasonDetail(at=ts("2026-11-26T08:00:00Z"), tz="Europe/Berlin"),
            "catch-up of missed 09:00",
        ),
        (
            ReasonCode.CATCH_UP,
            ReasonDetail(at=ts("2026-11-26T08:00:30Z"), tz="UTC"),
            "catch-up of missed 08:00:30",
        ),
        (
            ReasonCode.MISSED_SKIPPED,
            ReasonDetail(at=ts("2026-11-26T08:00:00Z"), tz="America/New_York"),
            "missed 03:00 beyond grace (catch_up: skip)",
        ),
        (
            ReasonCode.MISSED_SKIPPED,
            ReasonDetail(at=ts("2026-11-26T08:00:00Z"), tz="UTC", no_future=True),
            "missed 08:00 beyond grace (catch_up: skip); no future occurrence",
        ),
        (
            ReasonCode.ALREADY_FIRED,
            ReasonDetail(at=ts("2026-11-26T08:00:00Z"), tz="UTC"),
            "arm of 08:00 already fired; next occurrence",
        ),
        (
            ReasonCode.PASSED_BEYOND_GRACE,
            ReasonDetail(at=ts("2026-11-26T08:00:00Z"), tz="UTC"),
            "arm of 08:00 passed beyond grace without a fire",
        ),
        (
            ReasonCode.DUPLICATE_ARMS,
            ReasonDetail(kept="j:2026-11-26T08:00:00Z"),
            "duplicate arms: keeping j:2026-11-26T08:00:00Z",
        ),
        (ReasonCode.ORPHAN, NO_DETAIL, "not in jobs.json (orphan)"),
        (ReasonCode.DRIFT, NO_DETAIL, "drift: arm changed outside cronplan"),
    ],
)
def test_reason_words_carry_their_detail(
    code: ReasonCode, detail: ReasonDetail, words: str
) -> None:
    assert reason_words(code, detail) == words


def test_text_written_elsewhere_is_shown_as_it_is() -> None:
    written = Action("skip", "j", "already armed (as an older cronplan wrote it)")
    assert reason_text(written) == "already armed (as an older cronplan wrote it)"
    coded = Action("skip", "j", reason_code=ReasonCode.ALREADY_ARMED)
    assert reason_text(coded) == "already armed"


def _planned() -> Plan:
    """A job whose live arm already fired (a re-arm worded with that arm's time) and an orphan arm."""
    job = make_job("j", {"kind": "cron", "expr": "0 12 * * *", "tz": "UTC"})
    record = JobRecord(
        "j",
        applied_spec=job.spec,
        applied_digest=job.digest,
        applied_fire_at=ts("2026-11-25T12:00:00Z"),
        last_fired_at=ts("2026-11-25T12:00:00Z"),
        runs=1,
    )
    live = Arm("j", ts("2026-11-25T12:00:00Z"))
    orphan = Arm("gone", ts("2026-11-27T12:00:00Z"))
    return plan(
        [job],
        [live, orphan],
        {"j": record},
        NOW,
        provider="local",
        callback_url=None,
    )


def test_the_planner_decides_on_codes_and_writes_no_text(tmp_path: Path) -> None:
    planned = _planned()
    by_id = {a.job_id: a for a in planned.actions}
    caught = by_id["j"]
    assert caught.reason is None and by_id["gone"].reason is None  # no words in the planner
    assert (caught.action, caught.reason_code) == ("rearm", ReasonCode.ALREADY_FIRED)
    assert caught.reason_detail == ReasonDetail(at=ts("2026-11-25T12:00:00Z"), tz="UTC")
    # Worded where output is written: the plan document and the text renderer agree.
    doc = action_to_json(caught)
    assert doc["reason"] == reason_text(caught) == "arm of 12:00 already fired; next occurrence"
    assert doc["reason_code"] == caught.reason_code.value
    assert reason_text(caught) in render_text(planned, color=False, verbose=True)
    assert action_to_json(by_id["gone"])["reason"] == "not in jobs.json (orphan)"
    # A saved plan reads back with the same words, and writes the same document again.
    path = tmp_path / "p.json"
    save_plan(planned, path)
    loaded = load_plan(path)
    assert [reason_text(a) for a in loaded.actions] == [reason_text(a) for a in planned.actions]
    assert dumps_plan(loaded) == dumps_plan(planned)
