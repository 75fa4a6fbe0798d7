"""The markdown renderer: PR-comment layout and the 65,536-character budget at scale."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from syrupy.assertion import SnapshotAssertion

from cronplan.model import Action, Arm, Change, Plan
from cronplan.planfile import intent_digest
from cronplan.render import render_markdown, render_step_summary
from cronplan.render.reasons import reason_text
from cronplan.render.words import summary_line
from tests.planfile_samples import CALLBACK, NOW, big_plan, plan_of, sample_actions, sample_plan

LIMIT = 65536
MARKER = re.compile(r"\A<!-- cronplan:intent=([0-9a-f]{64}) -->\n")


def outside_fold(body: str) -> str:
    return body.split("<details>", 1)[0]


def test_snapshot(snapshot: SnapshotAssertion) -> None:
    assert render_markdown(sample_plan()) == snapshot


def test_no_changes_snapshot(snapshot: SnapshotAssertion) -> None:
    plan = plan_of([a for a in sample_actions() if a.action == "skip"])
    body = render_markdown(plan)
    assert body == snapshot
    assert "**No changes. Arms match jobs.json.**" in body
    assert "<details>" not in body and "[!WARNING]" not in body
    assert MARKER.match(body)


def test_layout() -> None:
    plan = sample_plan()
    body = render_markdown(plan)
    m = MARKER.match(body)
    assert m and m.group(1) == intent_digest(plan)
    head = outside_fold(body)
    assert "**Plan: 3 to arm, 3 to re-arm, 1 to update, 3 to cancel, 2 unchanged.**" in head
    assert "| 3 | 3 | 1 | 3 | 2 |" in head
    assert "> [!WARNING]" in head
    for job_id in ("old-cleanup", "paused-job", "dup-job"):
        assert f"`{job_id}`" in head
    fold = body.split("<details>", 1)[1]
    assert "```diff\n" in fold and fold.index("```diff") < fold.index("</details>")
    assert "\n+ backup-db " in fold
    assert "\n! newsletter " in fold  # re-arms use "!" so GitHub highlights them
    assert "\n- old-cleanup " in fold
    assert "hourly-sync" not in body  # skips are only counted
    assert "more action" not in body


def test_byte_identical() -> None:
    assert render_markdown(sample_plan()) == render_markdown(sample_plan())
    assert render_markdown(big_plan(20_000)) == render_markdown(big_plan(20_000))


@pytest.mark.parametrize("n", [10, 1_000, 20_000])
def test_scale(n: int) -> None:
    plan = big_plan(n)
    body = render_markdown(plan, artifact_hint="download the cronplan-plan artifact")
    assert len(body) <= LIMIT
    assert MARKER.match(body)
    head = outside_fold(body)
    s = plan.summary
    summary = (
        f"Plan: {s.arm} to arm, {s.rearm} to re-arm, {s.update} to update, {s.cancel} to cancel, "
        f"{s.skip} unchanged."
    )
    assert f"**{summary}**" in head
    cancelled = [a.job_id for a in plan.actions if a.action == "cancel"]
    assert cancelled
    listed = set(re.findall(r"`(job-\d{6})`", head))
    assert listed == set(cancelled)  # every cancel, outside the fold
    shown = len(re.findall(r"^[+!-] job-", body, flags=re.M))
    if shown < s.changes:
        notice = f"\u2026 {s.changes - shown} more actions not shown; download the cronplan-plan artifact."
        assert notice in body
        assert f"Show {shown} of {s.changes} changes" in body
    else:
        assert "more action" not in body
    assert body.count("```") == 2  # one fence, closed


def test_truncation_keeps_the_fold_in_order() -> None:
    body = render_markdown(big_plan(20_000))
    ids = re.findall(r"^[+!-] (job-\d{6})", body, flags=re.M)
    assert ids == sorted(ids) and ids[0] == "job-000000"
    assert "see the JSON plan artifact" not in body or "more actions not shown" in body


def test_cancels_alone_overflow() -> None:
    plan = big_plan(20_000, cancel_every=1)
    body = render_markdown(plan)
    assert len(body) <= LIMIT
    assert MARKER.match(body)
    assert "**Plan: 0 to arm, 0 to re-arm, 0 to update, 20000 to cancel, 0 unchanged.**" in body
    listed = re.findall(r"`(job-\d{6})`", body)
    assert 1000 < len(listed) < 20_000
    assert (
        f"and {20_000 - len(listed)} more cancelled not listed; see the JSON plan artifact." in body
    )
    assert "\u2026 20000 more actions not shown; see the JSON plan artifact." in body
    assert "<details>" not in body


@pytest.mark.parametrize("budget", [900, 1_500, 3_000, 7_777, 20_000, 40_000])
def test_never_exceeds_any_budget(budget: int) -> None:
    for plan in (big_plan(2_000), big_plan(2_000, cancel_every=1), sample_plan()):
        body = render_markdown(plan, max_chars=budget)
        assert len(body) <= budget
        assert MARKER.match(body)
        assert "**Plan: " in outside_fold(body)


def test_a_budget_too_small_for_the_summary_is_an_error() -> None:
    with pytest.raises(ValueError, match="too small"):
        render_markdown(sample_plan(), max_chars=100)


def test_step_summary_counts_bytes() -> None:
    plan = big_plan(20_000)
    body = render_step_summary(plan)
    assert len(body.encode("utf-8")) <= 1024 * 1024
    assert MARKER.match(body)
    # Re-arm lines carry "→" (3 bytes each): a byte budget must hold fewer of them than a char budget.
    rearms = big_plan(2_000, cancel_every=0, rearm_every=1)
    small = render_step_summary(rearms, 30_000)
    by_chars = render_markdown(rearms, max_chars=30_000)
    assert len(small.encode("utf-8")) <= 30_000 < len(by_chars.encode("utf-8"))
    assert small.count("\n! job-") < by_chars.count("\n! job-")
    full = render_step_summary(big_plan(1_000))
    assert "more action" not in full


def test_markdown_special_characters_in_reasons_are_escaped() -> None:
    plan = plan_of(
        [
            Action(
                "cancel",
                "a",
                "paused <b>by</b> `ops` | *now*",
                before=Arm("a", NOW, CALLBACK),
                job_digest=None,
            )
        ]
    )
    head = outside_fold(render_markdown(plan))
    assert "<b>" not in head and r"\<b\>" in head and r"\`ops\`" in head and r"\|" in head


def test_empty_plan() -> None:
    body = render_markdown(Plan(provider="local", now=NOW, actions=()))
    assert MARKER.match(body)
    assert "**No changes. Arms match jobs.json.**" in body


_REASONS = [
    "missing",
    "paused",
    "not in jobs.json (orphan)",
    "schedule changed",
    "a*b_c `d` <e> | f",
]


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    n = draw(st.integers(0, 120))
    kinds = draw(
        st.lists(st.sampled_from(["arm", "rearm", "cancel", "skip"]), min_size=n, max_size=n)
    )
    actions = []
    for i, kind in enumerate(kinds):
        job_id = f"j{i:04d}" + "x" * draw(st.integers(0, 40))
        reason = draw(st.sampled_from(_REASONS))
        live = Arm(job_id, NOW + timedelta(minutes=i), CALLBACK)
        new = Arm(job_id, NOW + timedelta(minutes=i + 1), CALLBACK)
        changes = (
            tuple(
                Change(f"x-f{k}", "\u00e9" * draw(st.integers(0, 300)), k)
                for k in range(draw(st.integers(0, 3)))
            )
            if kind == "rearm"
            else ()
        )
        actions.append(
            Action(
                kind,
                job_id,
                reason,  # type: ignore[arg-type]
                before=live if kind in ("rearm", "cancel", "skip") else None,
                after=new if kind in ("arm", "rearm") else None,
                changes=changes,
                tz="Europe/Berlin",
            )
        )
    return plan_of(actions)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=plans(), budget=st.integers(1_200, 20_000), in_bytes=st.booleans())
def test_budget_property(plan: Plan, budget: int, in_bytes: bool) -> None:
    if in_bytes:
        body = render_step_summary(plan, budget)
        assert len(body.encode("utf-8")) <= budget
    else:
        body = render_markdown(plan, max_chars=budget)
        assert len(body) <= budget
    assert MARKER.match(body)
    head = outside_fold(body)
    assert summary_line(plan) in head
    cancels = [a.job_id for a in plan.actions if a.action == "cancel"]
    listed = re.findall(r"`(j\d{4}x*)`", head)
    more = re.search(r"and (\d+) more cancelled not listed", head)
    assert len(listed) + (int(more.group(1)) if more else 0) == len(cancels)
    assert listed == [c for c in _cancel_order(plan) if c in set(listed)]
    shown = len(re.findall(r"^[+!-] j\d{4}", body, flags=re.M))
    rest = re.search(r"\u2026 (\d+) more actions? not shown", body)
    assert shown + (int(rest.group(1)) if rest else 0) == plan.summary.changes


def _cancel_order(plan: Plan) -> list[str]:
    by_reason: dict[str, list[str]] = {}
    for a in sorted(plan.actions, key=lambda a: a.job_id):
        if a.action == "cancel":
            by_reason.setdefault(reason_text(a), []).append(a.job_id)
    return [job_id for reason in sorted(by_reason) for job_id in by_reason[reason]]


def test_an_orphan_id_with_backticks_and_newlines_stays_inline() -> None:
    odd = "`odd`\nid"
    plan = plan_of([Action("cancel", odd, "not in jobs.json (orphan)", before=Arm(odd, NOW))])
    body = render_markdown(plan)
    assert "`` `odd`\\nid ``" in outside_fold(body)
    assert "\nid" not in body
