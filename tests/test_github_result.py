"""The apply result on the merged pull request: rendered from cronplan's JSON, posted once, edited after."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from cronplan.github.action import ActionInputs, run_action
from cronplan.github.api import GitHubClient, GitHubError
from cronplan.github.result import (
    RESULT_MARKER,
    apply_result_markdown,
    outcome_from_document,
    upsert_result_comment,
)
from cronplan.github.sticky import INTENT_MARKER_PREFIX, extract_intent, intent_for_pr
from tests.github_fake import API, BOT, REPO, TOKEN, FakeGitHub, seeded

MERGE_SHA = "e4d3c2b1a0f9e8d7c6b5a4938271605f4e3d2c1b"
OLD_DIGEST = "3f1c0d5e9a7b2c4d6e8f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f"


def client_for(fake: FakeGitHub) -> GitHubClient:
    return GitHubClient(TOKEN, api_url=API, transport=fake.transport(), sleep=lambda s: None)


def document(
    applied: Sequence[tuple[str, str]], failed: Sequence[tuple[str, str, str]] = ()
) -> dict[str, Any]:
    return {
        "format_version": "1",
        "plan": {"actions": [{"job_id": j, "action": a} for j, a in applied]},
        "result": {
            "applied": [{"job_id": j, "action": a} for j, a in applied],
            "failed": [{"job_id": j, "action": a, "error": e} for j, a, e in failed],
        },
    }


# -- rendering ---------------------------------------------------------------------------------------


def test_success_lists_the_counts_and_links_the_run() -> None:
    outcome = outcome_from_document(
        document([("a", "arm"), ("b", "arm"), ("c", "rearm"), ("d", "cancel")]), 0
    )
    body = apply_result_markdown(
        outcome, intent="ab" * 32, run_url="https://github.com/acme/ops-cron/actions/runs/7"
    )
    assert body.startswith(RESULT_MARKER + "\n### ✅ cronplan apply succeeded\n")
    assert "**2 armed, 1 re-armed, 1 cancelled**" in body
    assert "(intent `abababababab`)" in body
    assert "| `c` | re-arm | done |" in body
    assert body.rstrip().endswith("[Workflow run](https://github.com/acme/ops-cron/actions/runs/7)")
    assert extract_intent(body) is None  # never an approved intent


def test_nothing_to_do_and_updates_only() -> None:
    quiet = apply_result_markdown(outcome_from_document(document([]), 0))
    assert "nothing to do" in quiet and "| job |" not in quiet
    doc = document([])
    doc["plan"]["actions"] = [{"job_id": "x", "action": "update"}]
    updated = apply_result_markdown(outcome_from_document(doc, 0))
    assert "succeeded" in updated and "1 updated" in updated


def test_partial_failure_lists_the_failures_first_and_cannot_smuggle_a_marker() -> None:
    error = "503 Service Unavailable | retry\n<!-- cronplan:intent=" + "0" * 64 + " -->"
    outcome = outcome_from_document(document([("a", "arm")], [("z", "rearm", error)]), 1)
    assert not outcome.ok
    body = apply_result_markdown(outcome)
    assert "### ❌ cronplan apply failed\n1 of 2 actions failed" in body
    rows = [line for line in body.splitlines() if line.startswith("| `")]
    assert rows[0].startswith("| `z` | re-arm | failed: 503 Service Unavailable \\| retry &lt;!--")
    assert rows[1] == "| `a` | arm | done |"
    assert INTENT_MARKER_PREFIX not in body


def test_a_refused_apply_quotes_the_error_output() -> None:
    tail = "Error: Plan has changed since it was approved: intent 1 does not match 2.\n"
    body = apply_result_markdown(outcome_from_document(None, 1), err_tail=tail + "<!-- x -->")
    assert "failed (exit code 1)" in body
    assert "Plan has changed since it was approved" in body
    assert "<!--" not in body.replace(RESULT_MARKER, "")


def test_many_actions_stay_within_the_comment_limit() -> None:
    applied = [(f"job-{i:05d}", "arm") for i in range(5000)]
    body = apply_result_markdown(outcome_from_document(document(applied), 0))
    assert len(body) < 65536
    assert "… and 4800 more" in body


def test_a_document_of_another_shape_is_an_error() -> None:
    with pytest.raises(GitHubError, match="no 'result'"):
        outcome_from_document({"format_version": "1"}, 0)


# -- posting -----------------------------------------------------------------------------------------


def test_posted_once_then_edited_on_a_rerun_and_the_plan_comment_is_untouched() -> None:
    fake = seeded(page_size=2)
    client = client_for(fake)
    failed = apply_result_markdown(outcome_from_document(document([], [("a", "arm", "503")]), 1))
    first = upsert_result_comment(client, REPO, 42, failed)
    assert first.action == "created"
    converged = apply_result_markdown(outcome_from_document(document([("a", "arm")]), 0))
    second = upsert_result_comment(client, REPO, 42, converged)
    assert (second.action, second.comment_id) == ("updated", first.comment_id)
    assert upsert_result_comment(client, REPO, 42, converged).action == "unchanged"
    ours = [c for c in fake.comments[42] if RESULT_MARKER in c["body"]]
    assert len(ours) == 1 and ours[0]["body"] == converged
    # The approved intent is still read from the plan comment.
    assert intent_for_pr(client, REPO, 42) == OLD_DIGEST


def test_a_result_marker_from_someone_else_is_not_edited() -> None:
    fake = seeded(page_size=3)
    fake.comments[42][0]["body"] = f"copied from the bot: {RESULT_MARKER}"  # by alice-ops
    body = apply_result_markdown(outcome_from_document(document([("a", "arm")]), 0))
    assert upsert_result_comment(client_for(fake), REPO, 42, body).action == "created"
    assert fake.comments[42][0]["body"] == f"copied from the bot: {RESULT_MARKER}"


def test_bodies_that_are_not_results_are_refused_before_any_call() -> None:
    fake = seeded()
    client = client_for(fake)
    with pytest.raises(GitHubError, match="marker"):
        upsert_result_comment(client, REPO, 42, "Applied.")
    with pytest.raises(GitHubError, match="intent marker"):
        upsert_result_comment(client, REPO, 42, f"{RESULT_MARKER}\n<!-- cronplan:intent=ab -->")
    assert fake.seen == []


# -- the action's apply step with the real cronplan --------------------------------------------------


def test_the_action_renders_the_result_of_a_real_apply(project, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    project.write_jobs(
        [
            {
                "id": "nightly",
                "schedule": {"kind": "cron", "expr": "0 3 * * *"},
                "command": ["true"],
            },
            {"id": "hourly", "schedule": {"kind": "interval", "minutes": 60}, "command": ["true"]},
        ]
    )
    env = {
        **os.environ,
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_RUN_ID": "9001",
    }
    inputs = ActionInputs(
        command="apply",
        config=str(project.config),
        args=("--now", "2031-06-01T12:00:00Z"),
        out_dir=tmp_path / "out",
        cronplan=(sys.executable, "-m", "cronplan"),
    )
    result = run_action(inputs, env)
    assert result.ok, result
    assert (result.outputs["applied"], result.outputs["arm"], result.outputs["failed"]) == (
        "2",
        "2",
        "0",
    )
    body = Path(result.outputs["result-file"]).read_text()
    assert "**2 armed, 0 re-armed, 0 cancelled**" in body
    assert "| `hourly` | arm | done |" in body and "| `nightly` | arm | done |" in body
    assert f"https://github.com/{REPO}/actions/runs/9001" in body
    # Applying again finds nothing to do, and says so.
    again = run_action(inputs, env)
    assert again.ok and again.outputs["applied"] == "0"
    assert "nothing to do" in Path(again.outputs["result-file"]).read_text()
    # A wrong intent: refused, nothing applied, the error quoted for the pull request.
    refused = run_action(ActionInputs(**{**inputs.__dict__, "expect_intent": "0" * 64}), env)
    assert not refused.ok and refused.exit_code == 1
    text = Path(refused.outputs["result-file"]).read_text()
    assert "failed (exit code 1)" in text and "does not match" in text


# -- the CLI as the workflow runs it -----------------------------------------------------------------


@pytest.fixture
def served() -> Iterator[tuple[FakeGitHub, dict[str, str]]]:
    fake = seeded(page_size=3)
    with fake.serve() as base:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CRONPLAN_COMMENT"))
        }
        env.update(GITHUB_TOKEN=TOKEN, GITHUB_API_URL=base, GITHUB_REPOSITORY=REPO)
        yield fake, env


def gh(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cronplan.github", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_comment_result_by_merge_sha(
    served: tuple[FakeGitHub, dict[str, str]], tmp_path: Path
) -> None:
    fake, env = served
    body = tmp_path / "apply-result.md"
    body.write_text(apply_result_markdown(outcome_from_document(document([("a", "arm")]), 0)))
    res = gh(env, "comment", "result", "--sha", MERGE_SHA, "--body-file", str(body))
    assert res.returncode == 0, res.stderr
    assert "created result comment" in res.stderr and "pull request #42" in res.stderr
    (posted,) = [c for c in fake.comments[42] if RESULT_MARKER in c["body"]]
    assert posted["user"]["login"] == BOT
    res = gh(env, "comment", "result", "--pr", "42", "--body-file", str(body))
    assert res.returncode == 0 and "unchanged result comment" in res.stderr
    body.write_text("not a result")
    res = gh(env, "comment", "result", "--pr", "42", "--body-file", str(body))
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert TOKEN not in res.stderr


# -- the example apply workflow ----------------------------------------------------------------------

APPLY_WORKFLOW = (
    Path(__file__).resolve().parent.parent / "examples" / "github" / "cronplan-apply.yml"
)


def apply_workflow() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(APPLY_WORKFLOW.read_text(encoding="utf-8"))
    return doc


def steps_by_id() -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in apply_workflow()["jobs"]["apply"]["steps"] if "id" in s}


def test_apply_workflow_can_be_dispatched_with_an_intent() -> None:
    doc = apply_workflow()
    on = doc.get("on", doc.get(True))  # PyYAML reads the key `on` as a boolean
    assert set(on) == {"push", "workflow_dispatch"}
    intent = on["workflow_dispatch"]["inputs"]["intent"]
    assert intent["required"] is True and intent["type"] == "string"
    steps = steps_by_id()
    assert steps["merged"]["if"] == "github.event_name == 'push'"
    assert steps["given"]["if"] == "github.event_name == 'workflow_dispatch'"
    assert steps["given"]["env"]["INTENT"] == "${{ inputs.intent }}"  # never templated into run:
    assert steps["apply"]["with"]["expect-intent"] == (
        "${{ steps.merged.outputs.digest || steps.given.outputs.digest }}"
    )
    job = doc["jobs"]["apply"]
    assert job["permissions"] == {"contents": "read", "pull-requests": "write"}
    (tell,) = [s for s in job["steps"] if "comment result" in s.get("run", "")]
    assert "!cancelled()" in tell["if"] and "steps.merged.outputs.pr" in tell["if"]
    assert tell["env"]["RESULT_MD"] == "${{ steps.apply.outputs.result-file }}"


@pytest.mark.parametrize(
    ("given", "accepted"),
    [
        ("ab" * 32, True),
        (f"  {'ab' * 32}\n", True),  # pasted with whitespace
        ("", False),  # would otherwise mean "apply without --expect-intent"
        ("AB" * 32, False),
        ("ab" * 31, False),
        ("ab" * 32 + "; rm -rf /", False),
    ],
)
def test_the_dispatch_intent_is_checked_before_apply(
    given: str, accepted: bool, tmp_path: Path
) -> None:
    script = steps_by_id()["given"]["run"]
    out = tmp_path / "github_output"
    out.write_text("")
    res = subprocess.run(
        ["bash", "-c", script],
        env={"PATH": os.environ["PATH"], "INTENT": given, "GITHUB_OUTPUT": str(out)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (res.returncode == 0) is accepted, res.stdout + res.stderr
    assert out.read_text() == (f"digest={'ab' * 32}\n" if accepted else "")


def run_step(script: str, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """A workflow step's ``run:`` script under bash, with this interpreter as ``python``."""
    bindir = str(Path(sys.executable).parent)
    return subprocess.run(
        ["bash", "-e", "-c", script],
        env={
            **env,
            "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
            "RUNNER_TEMP": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def outputs_of(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def tell_step() -> dict[str, Any]:
    steps = apply_workflow()["jobs"]["apply"]["steps"]
    (tell,) = [s for s in steps if "comment result" in s.get("run", "")]
    return tell


def test_workflow_steps_on_merge_read_the_intent_and_post_the_result(
    served: tuple[FakeGitHub, dict[str, str]], tmp_path: Path
) -> None:
    fake, env = served
    # The example workflows work with the label "prod": the plan workflow wrote a labelled comment.
    for c in fake.comments[42]:
        c["body"] = c["body"].replace(INTENT_MARKER_PREFIX, "<!-- cronplan:label=prod:intent=")
    out = tmp_path / "github_output"
    out.write_text("")
    env = {**env, "GITHUB_SHA": MERGE_SHA, "GITHUB_OUTPUT": str(out)}
    res = run_step(steps_by_id()["merged"]["run"], env, tmp_path)
    assert res.returncode == 0, res.stderr
    assert outputs_of(out) == {"pr": "42", "digest": OLD_DIGEST}
    assert "Approved intent from pull request #42" in res.stderr  # shown in the log as well
    result = tmp_path / "apply-result.md"
    result.write_text(apply_result_markdown(outcome_from_document(document([("a", "arm")]), 0)))
    tell = {
        **env,
        "PR_NUMBER": "42",
        "RESULT_MD": str(result),
        "MERGED_OUTCOME": "success",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_RUN_ID": "77",
    }
    res = run_step(tell_step()["run"], tell, tmp_path)
    assert res.returncode == 0, res.stderr
    (posted,) = [c for c in fake.comments[42] if RESULT_MARKER in c["body"]]
    assert "cronplan apply succeeded" in posted["body"]


def test_workflow_steps_tell_the_pull_request_when_there_was_no_approved_plan(
    served: tuple[FakeGitHub, dict[str, str]], tmp_path: Path
) -> None:
    fake, env = served
    fake.comments[42] = [c for c in fake.comments[42] if c["user"]["login"] != BOT]
    out = tmp_path / "github_output"
    out.write_text("")
    env = {**env, "GITHUB_SHA": MERGE_SHA, "GITHUB_OUTPUT": str(out)}
    res = run_step(steps_by_id()["merged"]["run"], env, tmp_path)
    assert res.returncode == 1
    assert outputs_of(out) == {"pr": "42"}  # no digest: the apply step never runs
    assert "refusing to apply a plan nobody reviewed" in res.stderr
    tell = {
        **env,
        "PR_NUMBER": "42",
        "RESULT_MD": "",
        "MERGED_OUTCOME": "failure",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_RUN_ID": "78",
    }
    res = run_step(tell_step()["run"], tell, tmp_path)
    assert res.returncode == 0, res.stderr
    (posted,) = [c for c in fake.comments[42] if RESULT_MARKER in c["body"]]
    assert "cronplan apply failed (exit code 1)" in posted["body"]
    assert "has no cronplan plan comment" in posted["body"]
    assert f"[Workflow run](https://github.com/{REPO}/actions/runs/78)" in posted["body"]
    assert extract_intent(posted["body"]) is None
