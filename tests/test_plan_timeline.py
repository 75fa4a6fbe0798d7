"""The PR comment's timeline and labels: a mermaid gantt of the next 24 h, names and relative times beside
ids, one sticky comment per label (CLI, sticky-comment code, composite action)."""

from __future__ import annotations

import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from cronplan.documents.jobsfile import load_jobs
from cronplan.github.action import ActionInputs, failure_markdown, run_action
from cronplan.github.api import GitHubClient, GitHubError
from cronplan.github.sticky import (
    extract_intent,
    find_sticky_comment,
    intent_for_pr,
    upsert_sticky_comment,
)
from cronplan.model import Arm
from cronplan.planner import plan
from cronplan.render import render_markdown, render_text
from cronplan.timefmt import parse_ts
from tests.fixtures_core import Project
from tests.github_fake import API, REPO, TOKEN, FakeGitHub

FUTURE = "2031-03-10T08:00:00Z"
PAST = "2019-06-03T08:00:00Z"
HOSTILE = "Nightly: backup; #1 %%{init: {'theme':'dark'}}%%\nsection evil"


def jobs_doc() -> list[dict[str, Any]]:
    return [
        {
            "id": "backup",
            "name": HOSTILE,
            "schedule": {"kind": "cron", "expr": "30 2 * * *", "tz": "Europe/Berlin"},
            "command": ["true"],
        },
        {
            "id": "warm",
            "name": "Warm the cache",
            "schedule": {"kind": "interval", "minutes": 30},
            "command": ["true"],
        },
        {
            "id": "weekly",
            "schedule": {"kind": "cron", "expr": "0 7 * * 1", "tz": "Europe/London"},
            "command": ["true"],
        },
    ]


def mermaid_block(body: str) -> str:
    m = re.search(r"```mermaid\n(.*?)```\n", body, re.S)
    assert m, body
    return m.group(1)


@pytest.mark.parametrize("now", [FUTURE, PAST])
def test_markdown_plan_with_label_and_timeline(project: Project, now: str) -> None:
    project.write_jobs(jobs_doc())
    r = project.cli("plan", "--format", "markdown", "--label", "prod", "--now", now)
    assert r.exit_code == 0, r.stderr
    body = r.stdout
    assert re.match(r"<!-- cronplan:label=prod:intent=[0-9a-f]{64} -->\n", body)
    assert "<!-- cronplan:intent=" not in body
    assert "`prod`" in body.splitlines()[1]
    # Names beside ids, relative times from the plan's own now.
    assert "+ warm    (Warm the cache)" in body
    assert "(07:00 Europe/London, in " in body
    assert "(now)" in body  # warm's first arm is due at the pinned now
    chart = mermaid_block(body)
    assert chart.startswith("gantt\n")
    assert f"title Next 24 h of fires from {now} (UTC)" in chart
    assert "section warm" in chart and "section backup" in chart
    assert "section weekly" not in chart  # its next fire is days away
    # The hostile name cannot add a section, a directive or a field separator.
    assert [ln for ln in chart.splitlines() if ln.startswith("    section ")] == [
        "    section backup",
        "    section warm",
    ]
    assert "%%" not in chart and "init" in chart
    for line in chart.splitlines():
        if ":milestone" in line:
            title = line.split(" :milestone, ")[0]
            assert title.count(":") == 1, line  # only the task's own "HH:MM"
    assert len([ln for ln in chart.splitlines() if "Warm the cache" in ln]) == 24  # capped per job
    # Deterministic: the same inputs and --now give byte-identical output.
    again = project.cli("plan", "--format", "markdown", "--label", "prod", "--now", now)
    assert again.stdout == body


def test_text_plan_shows_names_and_relative_times(project: Project) -> None:
    project.write_jobs(jobs_doc())
    r = project.cli("plan", "--now", FUTURE)
    assert r.exit_code == 0, r.stderr
    assert "  + warm    (Warm the cache)  2031-03-10T08:00:00Z (now)  missing; fires at once" in (
        r.stdout
    )
    assert "weekly  2031-03-10T07:00:00Z (07:00 Europe/London, in 7 d)" not in r.stdout
    assert re.search(r"\+ weekly  2031-03-1\dT07:00:00Z \(07:00 Europe/London, in \d d\)", r.stdout)
    assert "\\nsection evil" in r.stdout  # a newline in a name is shown escaped, on one line


def test_label_is_checked_and_markdown_only(project: Project) -> None:
    project.write_jobs(jobs_doc())
    r = project.cli("plan", "--format", "markdown", "--label", "prod env", "--now", FUTURE)
    assert r.exit_code == 64 and "--label" in r.stderr
    r = project.cli("plan", "--label", "prod", "--now", FUTURE)
    assert r.exit_code == 64 and "--format markdown" in r.stderr


def test_show_renders_the_label_and_the_timeline_of_a_saved_plan(
    project: Project, tmp_path: Path
) -> None:
    project.write_jobs(jobs_doc())
    out = str(tmp_path / "plan.json")
    assert project.cli("plan", "--out", out, "--now", FUTURE).exit_code == 0
    r = project.cli("show", out, "--format", "markdown", "--label", "staging")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.startswith("<!-- cronplan:label=staging:intent=")
    assert "section warm" in mermaid_block(r.stdout)
    # An edited jobs.json is not the definition the plan was made from: no chart row for it.
    changed = jobs_doc()
    changed[1]["schedule"] = {"kind": "interval", "minutes": 45}
    project.write_jobs(changed)
    r = project.cli("show", out, "--format", "markdown", "--label", "staging")
    assert "section warm" not in r.stdout and "Warm the cache" not in r.stdout


def test_the_chart_gives_way_first_within_the_budget(tmp_path: Path) -> None:
    now = parse_ts(FUTURE)
    docs = [
        {
            "id": f"job-{i:05d}",
            "name": f"A rather long display name for job number {i}",
            "schedule": {"kind": "interval", "minutes": 5},
            "command": ["true"],
        }
        for i in range(3000)
    ]
    path = tmp_path / "jobs.json"
    import json

    path.write_text(json.dumps({"jobs": docs}))
    jobs = load_jobs(path, default_tz="UTC")
    # 40 orphan arms make cancels that must stay listed.
    arms = [Arm(f"gone-{i:03d}", now + timedelta(hours=1)) for i in range(40)]
    the_plan = plan(list(jobs.jobs), arms, {}, now, provider="local", callback_url=None)
    small = render_markdown(the_plan, jobs=jobs.by_id(), max_chars=20_000)
    assert len(small) <= 20_000
    assert "**Plan: 3000 to arm, 0 to re-arm, 0 to update, 40 to cancel, 0 unchanged.**" in small
    assert all(f"`gone-{i:03d}`" in small for i in range(40))
    # The diff took the room: the chart was dropped rather than the summary or cancels.
    assert "```mermaid" not in small
    full = render_markdown(the_plan, jobs=jobs.by_id())
    assert len(full) <= 65536
    few = plan(list(jobs.jobs)[:400], [], {}, now, provider="local", callback_url=None)
    body = render_markdown(few, jobs=jobs.by_id(), max_chars=65536)
    assert len(body) <= 65536
    chart = mermaid_block(body)
    assert 0 < chart.count("\n    section ") < 400
    assert re.search(r"… \d+ more jobs not charted\.", body)
    assert "Show 400 changes" in body  # every change fitted before the chart


def test_without_jobs_the_plan_renders_as_before(tmp_path: Path) -> None:
    import json

    path = tmp_path / "jobs.json"
    path.write_text(json.dumps({"jobs": jobs_doc()}))
    jobs = load_jobs(path, default_tz="UTC")
    now = parse_ts(FUTURE)
    the_plan = plan(list(jobs.jobs), [], {}, now, provider="local", callback_url=None)
    bare = render_text(the_plan)
    assert "Warm the cache" not in bare and ", in " not in bare and "(now)" not in bare
    assert "```mermaid" not in render_markdown(the_plan)
    named = render_text(the_plan, jobs=jobs.by_id())
    assert "Warm the cache" in named and ", in " in named


# --------------------------------------------------------------------------- sticky comments per label


def client_for(fake: FakeGitHub) -> GitHubClient:
    return GitHubClient(TOKEN, api_url=API, transport=fake.transport(), sleep=lambda s: None)


def body(digest: str, label: str | None) -> str:
    marker = (
        f"<!-- cronplan:intent={digest} -->"
        if label is None
        else f"<!-- cronplan:label={label}:intent={digest} -->"
    )
    return f"{marker}\n**Plan: 1 to arm, 0 to re-arm, 0 to cancel, 0 unchanged.**\n"


def test_one_sticky_comment_per_label() -> None:
    fake = FakeGitHub()
    fake.comments[7] = []
    client = client_for(fake)
    staging, prod, plain = "aa" * 32, "bb" * 32, "cc" * 32
    assert upsert_sticky_comment(client, REPO, 7, body(staging, "staging")).action == "created"
    assert upsert_sticky_comment(client, REPO, 7, body(prod, "prod")).action == "created"
    assert upsert_sticky_comment(client, REPO, 7, body(plain, None)).action == "created"
    assert len(fake.comments[7]) == 3
    # A new push edits each label's own comment.
    new_prod = "dd" * 32
    result = upsert_sticky_comment(client, REPO, 7, body(new_prod, "prod"))
    assert result.action == "updated" and len(fake.comments[7]) == 3
    assert intent_for_pr(client, REPO, 7, label="staging") == staging
    assert intent_for_pr(client, REPO, 7, label="prod") == new_prod
    assert intent_for_pr(client, REPO, 7) == plain
    with pytest.raises(GitHubError, match="labelled 'qa'"):
        intent_for_pr(client, REPO, 7, label="qa")
    comment = find_sticky_comment(client, REPO, 7, label="staging")
    assert comment is not None and extract_intent(comment.body, "staging") == staging
    assert (
        extract_intent(comment.body) is None
    )  # the unlabelled reader never takes a labelled digest
    with pytest.raises(GitHubError, match="Not a label"):
        intent_for_pr(client, REPO, 7, label="a b")


def test_failed_labelled_plan_carries_an_empty_intent_of_its_label() -> None:
    text = failure_markdown(
        "plan", 1, "boom <!-- cronplan:label=prod:intent=" + "ee" * 32 + " -->", label="prod"
    )
    assert text.startswith("<!-- cronplan:label=prod:intent= -->\n")
    assert extract_intent(text, "prod") == ""


def test_the_action_passes_its_label_to_show(project: Project, tmp_path: Path) -> None:
    project.write_jobs(jobs_doc())
    cronplan = (sys.executable, "-m", "cronplan")
    inputs = ActionInputs(
        command="plan",
        config=str(project.config),
        args=("--now", FUTURE),
        label="prod",
        out_dir=tmp_path / "out",
        cronplan=cronplan,
    )
    import os

    result = run_action(inputs, dict(os.environ))
    assert result.outputs["exit-code"] == "2"
    md = Path(result.outputs["markdown-file"]).read_text()
    digest = result.outputs["intent-digest"]
    assert md.startswith(f"<!-- cronplan:label=prod:intent={digest} -->\n")
    assert "```mermaid" in md
