"""The drift issue: one open issue while arms drift, edited on later runs, closed when clean."""

from __future__ import annotations

from cronplan.github.api import GitHubClient
from cronplan.github.drift import DEFAULT_TITLE, DRIFT_MARKER, drift_body, sync_drift_issue
from tests.github_fake import API, BOT, REPO, TOKEN, FakeGitHub, load, seeded

RUN = "https://github.com/acme/ops-cron/actions/runs/12000000001"
PLAN = (
    "<!-- cronplan:intent="
    + "d" * 64
    + " -->\n**Plan:** 0 to arm, 2 to re-arm, 0 to update, 0 to cancel, 4 unchanged.\n"
)


def client_for(fake: FakeGitHub) -> GitHubClient:
    return GitHubClient(TOKEN, api_url=API, transport=fake.transport(), sleep=lambda s: None)


def test_drift_updates_the_open_issue_and_skips_pull_requests() -> None:
    fake = seeded()
    result = sync_drift_issue(client_for(fake), REPO, drifted=True, body=PLAN, run_url=RUN)
    assert (result.action, result.number) == ("updated", 53)
    # PR #51 carries the marker in its body too, but the issues endpoint's PRs are never touched.
    writes = fake.writes()
    assert [(w.method, w.path) for w in writes] == [("PATCH", f"/repos/{REPO}/issues/53")]
    assert writes[0].body["body"] == f"{DRIFT_MARKER}\n{PLAN.rstrip()}\n\nDetected by {RUN}\n"
    listing = fake.seen[0]
    assert listing.query["state"] == "open"
    assert listing.query["creator"] == BOT


def test_drift_opens_an_issue_when_none_is_open_then_reuses_it() -> None:
    fake = seeded()
    fake.issues = load("open_issues_without_drift.json")
    first = sync_drift_issue(client_for(fake), REPO, drifted=True, body=PLAN)
    assert first.action == "created"
    post = fake.writes()[0]
    assert (post.method, post.path) == ("POST", f"/repos/{REPO}/issues")
    assert post.body["title"] == DEFAULT_TITLE
    assert post.body["body"].startswith(DRIFT_MARKER)
    again = sync_drift_issue(client_for(fake), REPO, drifted=True, body=PLAN)
    assert (again.action, again.number) == ("unchanged", first.number)
    assert len(fake.writes()) == 1


def test_clean_run_comments_and_closes_the_issue() -> None:
    fake = seeded()
    result = sync_drift_issue(client_for(fake), REPO, drifted=False, run_url=RUN)
    assert (result.action, result.number) == ("closed", 53)
    comment, close = fake.writes()
    assert (comment.method, comment.path) == ("POST", f"/repos/{REPO}/issues/53/comments")
    assert RUN in comment.body["body"]
    assert (close.method, close.path) == ("PATCH", f"/repos/{REPO}/issues/53")
    assert close.body == {"state": "closed", "state_reason": "completed"}
    # Closed issues are not found again: the next clean run does nothing.
    assert sync_drift_issue(client_for(fake), REPO, drifted=False).action == "none"
    assert len(fake.writes()) == 2


def test_clean_run_without_an_issue_writes_nothing() -> None:
    fake = seeded()
    fake.issues = load("open_issues_without_drift.json")
    assert sync_drift_issue(client_for(fake), REPO, drifted=False).action == "none"
    assert fake.writes() == []


def test_issues_by_other_authors_are_left_alone() -> None:
    fake = seeded()
    for issue in fake.issues:
        issue["user"] = {**issue["user"], "login": "mallory"}
    result = sync_drift_issue(client_for(fake), REPO, drifted=True, body=PLAN)
    assert result.action == "created"


def test_the_body_stays_within_githubs_limit() -> None:
    huge = PLAN + "\n".join(
        f"+ arm job-{i:05d}  2026-11-27T02:00:00Z  missing" for i in range(3000)
    )
    body = drift_body(huge, run_url=RUN)
    assert len(body) <= 65536
    assert body.startswith(DRIFT_MARKER)
    assert "truncated to fit" in body
    assert body.endswith(f"Detected by {RUN}\n")
