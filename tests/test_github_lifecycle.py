"""PR → merge → apply, end to end: the real cronplan CLI behind the action step, a fake GitHub API.

The plan step posts the sticky comment, a second push edits it, the merge's apply reads the digest back
and applies exactly that intent; after an unreviewed change the same digest is refused.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from cronplan.github.action import ActionInputs, run_action
from cronplan.github.api import GitHubClient, GitHubError
from cronplan.github.result import RESULT_MARKER, upsert_result_comment
from cronplan.github.sticky import intent_for_commit, upsert_sticky_comment
from tests.fixtures_core import Project
from tests.github_fake import API, REPO, TOKEN, FakeGitHub, seeded

MERGE_SHA = "e4d3c2b1a0f9e8d7c6b5a4938271605f4e3d2c1b"
CLI = (sys.executable, "-m", "cronplan")
NOW = "2026-11-26T12:00:00Z"


def job(job_id: str, expr: str) -> dict[str, object]:
    return {"id": job_id, "schedule": {"kind": "cron", "expr": expr}, "command": ["true"]}


def step(project: Project, command: str, **kw: object) -> tuple[int, dict[str, str]]:
    inputs = ActionInputs(
        command=command,
        config=str(project.config),
        args=("--now", NOW),
        cronplan=CLI,
        out_dir=project.root / "out",
        **kw,  # type: ignore[arg-type]
    )
    env = {k: v for k, v in os.environ.items() if k != "GITHUB_ACTIONS"}
    result = run_action(inputs, env)
    return result.exit_code, result.outputs


@pytest.fixture
def github() -> tuple[FakeGitHub, GitHubClient]:
    fake = seeded()
    fake.comments[42] = [c for c in fake.comments[42] if "cronplan:intent" not in c["body"]]
    return fake, GitHubClient(TOKEN, api_url=API, transport=fake.transport(), sleep=lambda s: None)


def test_plan_comment_merge_apply_and_refusal(
    project: Project, github: tuple[FakeGitHub, GitHubClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, client = github
    monkeypatch.chdir(project.root)

    # First push of the PR: one job.
    project.write_jobs([job("nightly-report", "0 2 * * *")])
    code, out = step(project, "plan")
    assert code == 2 and out["has-changes"] == "true" and out["arm"] == "1"
    first = upsert_sticky_comment(client, REPO, 42, Path(out["markdown-file"]).read_text())
    assert first.action == "created"

    # Second push: another job. The same comment is edited, its digest follows.
    project.write_jobs([job("nightly-report", "0 2 * * *"), job("weekly-digest", "0 8 * * 1")])
    code, out = step(project, "plan")
    assert code == 2 and out["arm"] == "2"
    reviewed = out["intent-digest"]
    second = upsert_sticky_comment(client, REPO, 42, Path(out["markdown-file"]).read_text())
    assert (second.action, second.comment_id) == ("updated", first.comment_id)
    assert len(fake.bot_marker_comments(42)) == 1
    assert json.loads(out["counts"]) == {"arm": 2, "cancel": 0, "rearm": 0, "skip": 0}

    # Merge: the apply reads the reviewed digest back and applies exactly that.
    pr, digest = intent_for_commit(client, REPO, MERGE_SHA)
    assert (pr, digest) == (42, reviewed)
    code, out = step(project, "apply", expect_intent=digest)
    assert code == 0 and out["applied"] == "2"
    # ... and tells the merged pull request, in one comment.
    told = upsert_result_comment(client, REPO, 42, Path(out["result-file"]).read_text())
    assert told.action == "created"
    results = [c for c in fake.comments[42] if RESULT_MARKER in c["body"]]
    assert len(results) == 1 and "**2 armed, 0 re-armed, 0 cancelled**" in results[0]["body"]
    assert intent_for_commit(client, REPO, MERGE_SHA) == (42, reviewed)  # still the plan's digest
    code, out = step(project, "plan")
    assert code == 0 and out["has-changes"] == "false"
    assert "No changes" in Path(out["markdown-file"]).read_text()

    # A change nobody reviewed: the approved digest no longer matches, nothing is applied.
    project.write_jobs([job("nightly-report", "30 2 * * *"), job("weekly-digest", "0 8 * * 1")])
    code, out = step(project, "apply", expect_intent=digest)
    assert code == 1 and out["applied"] == "0"
    refused = upsert_result_comment(client, REPO, 42, Path(out["result-file"]).read_text())
    assert (refused.action, refused.comment_id) == ("updated", told.comment_id)
    assert "does not match" in results[0]["body"]
    code, out = step(project, "plan")
    assert code == 2 and out["rearm"] == "1"  # still pending: the refused apply changed nothing


def test_a_failed_plan_replaces_the_comment_and_blocks_apply(
    project: Project, github: tuple[FakeGitHub, GitHubClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, client = github
    monkeypatch.chdir(project.root)
    project.write_jobs([job("nightly-report", "0 2 * * *")])
    _, out = step(project, "plan")
    upsert_sticky_comment(client, REPO, 42, Path(out["markdown-file"]).read_text())
    project.write_jobs([job("nightly-report", "61 2 * * *")])
    code, out = step(project, "plan")
    assert code == 1
    body = Path(out["markdown-file"]).read_text()
    assert "bad minute field" in body
    assert upsert_sticky_comment(client, REPO, 42, body).action == "updated"
    with pytest.raises(GitHubError, match="failed, so there is no approved intent"):
        intent_for_commit(client, REPO, MERGE_SHA)
