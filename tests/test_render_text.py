"""The text renderer: Terraform-style lines, legend, cancel call-out, summary line, color."""

from __future__ import annotations

import random
import re
from datetime import timedelta

from syrupy.assertion import SnapshotAssertion

from cronplan.model import Action, Arm, Plan
from cronplan.render import render_text
from tests.planfile_samples import CALLBACK, NOW, digest, plan_of, sample_actions, sample_plan

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_plain(snapshot: SnapshotAssertion) -> None:
    assert render_text(sample_plan()) == snapshot


def test_color(snapshot: SnapshotAssertion) -> None:
    assert render_text(sample_plan(), color=True) == snapshot


def test_verbose(snapshot: SnapshotAssertion) -> None:
    assert render_text(sample_plan(), verbose=True) == snapshot


def test_no_changes(snapshot: SnapshotAssertion) -> None:
    plan = plan_of([a for a in sample_actions() if a.action == "skip"])
    assert render_text(plan) == "No changes. Arms match jobs.json.\n"
    assert render_text(plan, color=True) == "No changes. Arms match jobs.json.\n"
    assert render_text(plan, verbose=True) == snapshot
    assert (
        render_text(Plan(provider="local", now=NOW, actions=()))
        == "No changes. Arms match jobs.json.\n"
    )


def test_last_line_counts_every_action() -> None:
    lines = render_text(sample_plan()).splitlines()
    assert lines[-1] == "Plan: 3 to arm, 3 to re-arm, 1 to update, 3 to cancel, 2 unchanged."


def test_one_line_per_change_with_symbol_id_time_and_reason() -> None:
    text = render_text(sample_plan())
    assert "  + daily-report  2026-11-27T08:00:00Z (09:00 Europe/Berlin)  missing\n" in text
    assert "  + backup-db     2026-11-27T02:00:00Z  missing\n" in text  # UTC job: no local time
    # A local date that differs from the UTC date is spelled out.
    assert "2026-11-26T23:30:00Z (2026-11-27 08:30 Asia/Tokyo)" in text
    assert (
        "  ~ newsletter    2026-11-27T14:00:00Z \u2192 2026-11-27T15:00:00Z (10:00 America/New_York)"
        "  schedule changed\n"
        '      schedule.expr: "0 9 * * *" \u2192 "0 10 * * *"\n'
        '      x-owner: null \u2192 "team-mail"\n'
    ) in text
    assert "  - old-cleanup   2026-11-27T03:00:00Z  # (because not in jobs.json (orphan))\n" in text
    assert "catch-up of missed 13:30; fires at once" in text
    assert "Warning: 3 arms will be cancelled" in text
    # Skips are only counted without -v.
    assert "hourly-sync" not in text and "disabled-job" not in text
    assert "= unchanged" not in text


def test_skips_are_listed_with_verbose() -> None:
    text = render_text(sample_plan(), verbose=True)
    assert "  = hourly-sync   2026-11-26T15:00:00Z  already armed\n" in text
    assert "  = disabled-job  disabled\n" in text
    assert "  = unchanged\n" in text


def test_legend_shows_only_the_symbols_used() -> None:
    only_arms = plan_of([a for a in sample_actions() if a.action in ("arm", "skip")])
    text = render_text(only_arms)
    legend = text.split("\n\n", 1)[0].splitlines()
    assert legend == ["Actions are shown with these symbols:", "  + arm"]
    assert "Warning" not in text
    assert (
        text.splitlines()[-1]
        == "Plan: 3 to arm, 0 to re-arm, 0 to update, 0 to cancel, 2 unchanged."
    )


def test_color_only_when_asked() -> None:
    plain = render_text(sample_plan())
    colored = render_text(sample_plan(), color=True)
    assert "\x1b" not in plain
    assert "\x1b[32m+\x1b[0m backup-db" in colored
    assert "\x1b[33m~\x1b[0m newsletter" in colored
    assert "\x1b[31m-\x1b[0m old-cleanup" in colored
    assert ANSI.sub("", colored) == plain


def test_byte_identical_and_order_independent() -> None:
    actions = sample_actions()
    first = render_text(sample_plan(), verbose=True)
    assert render_text(sample_plan(), verbose=True) == first
    shuffled = actions[:]
    random.Random(7).shuffle(shuffled)
    plan = Plan(
        provider="nas",
        now=NOW,
        actions=tuple(shuffled),
        callback_url=CALLBACK,
        basis=sample_plan().basis,
        lineage="lineage-1",
    )
    assert render_text(plan, verbose=True) == render_text(plan_of(actions), verbose=True)


def test_long_field_values_are_shortened() -> None:
    from cronplan.model import Change

    long = "x" * 500
    plan = plan_of(
        [
            Action(
                "rearm",
                "a",
                "job changed",
                before=Arm("a", NOW + timedelta(hours=1)),
                after=Arm("a", NOW + timedelta(hours=2)),
                changes=(Change("prompt", long, long + "y"),),
                job_digest=digest("a"),
            )
        ]
    )
    line = next(x for x in render_text(plan).splitlines() if "prompt:" in x)
    assert len(line) < 300 and "\u2026" in line


def test_control_characters_from_a_provider_are_escaped() -> None:
    evil = "orphan\x1b[2Jx\nnext"
    plan = plan_of([Action("cancel", evil, "not in jobs.json\r\n(orphan)", before=Arm(evil, NOW))])
    text = render_text(plan)
    assert "\x1b" not in text and "\r" not in text
    assert "orphan\\x1b[2Jx\\nnext" in text
    lines = text.splitlines()
    assert sum("orphan" in line for line in lines) == 1  # the action stays on one line
