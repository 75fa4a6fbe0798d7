"""The sticky plan comment: found by its marker across pages, edited in place, digest read back on merge."""

from __future__ import annotations

import pytest

from cronplan.github.api import GitHubClient, GitHubError
from cronplan.github.sticky import (
    extract_intent,
    find_sticky_comment,
    intent_for_commit,
    intent_for_pr,
    merged_pr_for_commit,
    upsert_sticky_comment,
)
from tests.github_fake import API, BOT, REPO, TOKEN, FakeGitHub, load, seeded

OLD_DIGEST = "3f1c0d5e9a7b2c4d6e8f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f"
NEW_DIGEST = "aa" * 32
MERGE_SHA = "e4d3c2b1a0f9e8d7c6b5a4938271605f4e3d2c1b"
OUR_COMMENT = 2484502231


def plan_body(
    digest: str,
    summary: str = "**Plan:** 2 to arm, 0 to re-arm, 0 to update, 0 to cancel, 4 unchanged.",
) -> str:
    return f"<!-- cronplan:intent={digest} -->\n{summary}\n"


def client_for(fake: FakeGitHub) -> GitHubClient:
    return GitHubClient(TOKEN, api_url=API, transport=fake.transport(), sleep=lambda s: None)


def test_finds_our_comment_on_a_later_page_and_stops_there() -> None:
    fake = seeded(page_size=2)
    comment = find_sticky_comment(client_for(fake), REPO, 42)
    assert comment is not None
    assert comment.id == OUR_COMMENT
    assert comment.author == BOT
    pages = [s.query.get("page", "1") for s in fake.seen]
    assert pages == ["1", "2", "3"]  # the fourth page is never fetched
    # Pages after the first come from GitHub's Link header (/repositories/{id}/... form).
    assert fake.seen[1].path.startswith("/repositories/")


def test_a_human_quoting_the_marker_is_not_our_comment() -> None:
    fake = seeded()
    # Bob quoted a marker (on page 2) before the bot's comment; only --any-author would pick it.
    anyone = find_sticky_comment(client_for(fake), REPO, 42, author=None)
    assert anyone is not None and anyone.author == "bob-dev"
    ours = find_sticky_comment(client_for(fake), REPO, 42)
    assert ours is not None and ours.id == OUR_COMMENT


def test_upsert_edits_the_existing_comment_instead_of_adding_one() -> None:
    fake = seeded()
    before = len(fake.comments[42])
    result = upsert_sticky_comment(client_for(fake), REPO, 42, plan_body(NEW_DIGEST))
    assert result.action == "updated"
    assert result.comment_id == OUR_COMMENT
    assert len(fake.comments[42]) == before
    writes = fake.writes()
    assert [(w.method, w.path) for w in writes] == [
        ("PATCH", f"/repos/{REPO}/issues/comments/{OUR_COMMENT}")
    ]
    assert writes[0].body == {"body": plan_body(NEW_DIGEST)}
    assert [c["id"] for c in fake.bot_marker_comments(42)] == [OUR_COMMENT]


def test_upsert_creates_once_then_keeps_editing_that_comment() -> None:
    fake = seeded()
    fake.comments[42] = [c for c in fake.comments[42] if c["id"] != OUR_COMMENT]
    first = upsert_sticky_comment(client_for(fake), REPO, 42, plan_body(OLD_DIGEST))
    assert first.action == "created"
    assert fake.writes()[0].method == "POST"
    assert fake.writes()[0].path == f"/repos/{REPO}/issues/42/comments"
    # A new push: the same comment is edited; still exactly one bot plan comment.
    second = upsert_sticky_comment(client_for(fake), REPO, 42, plan_body(NEW_DIGEST))
    assert second.action == "updated"
    assert second.comment_id == first.comment_id
    assert len(fake.bot_marker_comments(42)) == 1
    assert extract_intent(fake.bot_marker_comments(42)[0]["body"]) == NEW_DIGEST


def test_no_changes_plan_updates_the_comment_too() -> None:
    fake = seeded()
    body = plan_body("bb" * 32, "No changes. Arms match jobs.json.")
    result = upsert_sticky_comment(client_for(fake), REPO, 42, body)
    assert result.action == "updated"
    assert fake.bot_marker_comments(42)[0]["body"] == body


def test_identical_body_is_not_re_sent() -> None:
    fake = seeded()
    existing = next(c for c in fake.comments[42] if c["id"] == OUR_COMMENT)["body"]
    result = upsert_sticky_comment(client_for(fake), REPO, 42, existing)
    assert result.action == "unchanged"
    assert fake.writes() == []


def test_footer_is_added_when_it_fits_and_dropped_when_it_does_not() -> None:
    fake = seeded()
    upsert_sticky_comment(
        client_for(fake), REPO, 42, plan_body(NEW_DIGEST), footer="planned at abc123"
    )
    assert fake.bot_marker_comments(42)[0]["body"].endswith("\n\nplanned at abc123\n")
    big = plan_body(NEW_DIGEST) + "x" * (65536 - len(plan_body(NEW_DIGEST)))
    upsert_sticky_comment(client_for(fake), REPO, 42, big, footer="planned at abc123")
    assert fake.bot_marker_comments(42)[0]["body"] == big


def test_a_body_without_marker_or_over_the_limit_is_refused_before_any_call() -> None:
    fake = seeded()
    with pytest.raises(GitHubError, match="marker"):
        upsert_sticky_comment(client_for(fake), REPO, 42, "Plan: 1 to arm.")
    with pytest.raises(GitHubError, match="65536"):
        upsert_sticky_comment(client_for(fake), REPO, 42, plan_body(NEW_DIGEST) + "x" * 65536)
    assert fake.seen == []


def test_extract_intent() -> None:
    assert extract_intent(plan_body(NEW_DIGEST)) == NEW_DIGEST
    assert extract_intent("text\n<!-- cronplan:intent= -->\n") == ""  # a failed plan
    assert extract_intent("no marker here") is None
    assert extract_intent("<!-- cronplan:intent=abc --> and <!-- cronplan:intent=def -->") == "abc"


def test_intent_for_pr_reads_the_bot_comment_not_the_quoted_one() -> None:
    assert intent_for_pr(client_for(seeded()), REPO, 42) == OLD_DIGEST


def test_intent_for_pr_refuses_without_a_comment_or_after_a_failed_plan() -> None:
    fake = seeded()
    fake.comments[42] = [c for c in fake.comments[42] if c["id"] != OUR_COMMENT]
    with pytest.raises(
        GitHubError, match=r"#42 has no cronplan plan comment by github-actions\[bot\]"
    ):
        intent_for_pr(client_for(fake), REPO, 42)
    upsert_sticky_comment(
        client_for(fake), REPO, 42, "**cronplan plan failed**\n<!-- cronplan:intent= -->\n"
    )
    with pytest.raises(GitHubError, match="failed, so there is no approved intent"):
        intent_for_pr(client_for(fake), REPO, 42)


def test_merged_pr_for_commit_picks_the_pr_merged_as_that_commit() -> None:
    fake = seeded()
    assert merged_pr_for_commit(client_for(fake), REPO, MERGE_SHA) == 42
    # Listed with an open stacked PR first: the merged one wins.
    assert (
        merged_pr_for_commit(client_for(fake), REPO, "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678")
        == 42
    )
    assert fake.seen[0].path == f"/repos/{REPO}/commits/{MERGE_SHA}/pulls"


def test_a_direct_push_has_no_approved_plan() -> None:
    fake = seeded()
    with pytest.raises(GitHubError, match="direct push has no reviewed plan"):
        merged_pr_for_commit(client_for(fake), REPO, "0123456789abcdef0123456789abcdef01234567")


def test_several_merged_prs_without_an_exact_match_are_ambiguous() -> None:
    fake = seeded()
    two = load("commit_pulls_merged.json") * 2
    two[1] = {**two[1], "number": 43, "merge_commit_sha": "f" * 40}
    two[0] = {**two[0], "merge_commit_sha": "e" * 40}
    fake.commit_pulls["1234567890abcdef1234567890abcdef12345678"] = two
    with pytest.raises(GitHubError, match="#42, #43"):
        merged_pr_for_commit(client_for(fake), REPO, "1234567890abcdef1234567890abcdef12345678")


def test_intent_for_commit_end_to_end() -> None:
    assert intent_for_commit(client_for(seeded()), REPO, MERGE_SHA) == (42, OLD_DIGEST)


def test_bad_names_never_reach_the_api() -> None:
    fake = seeded()
    with pytest.raises(GitHubError, match="OWNER/NAME"):
        find_sticky_comment(client_for(fake), "acme/ops-cron/../../x", 42)
    with pytest.raises(GitHubError, match="Not a commit SHA"):
        merged_pr_for_commit(client_for(fake), REPO, "main")
    assert fake.seen == []


def test_requests_carry_the_documented_headers() -> None:
    fake = seeded()
    find_sticky_comment(client_for(fake), REPO, 42)
    headers = fake.seen[0].headers
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert headers["accept"] == "application/vnd.github+json"
    assert headers["x-github-api-version"] == "2022-11-28"
    assert fake.seen[0].query["per_page"] == "100"


def test_a_long_conversation_is_paged_100_at_a_time() -> None:
    fake = seeded(page_size=None)  # the server honours per_page, like GitHub
    human, ours = load("pr_comments.json")[0], load("pr_comments.json")[5]
    chatter = [{**human, "id": 3000000000 + i, "body": f"comment {i}"} for i in range(230)]
    fake.comments[42] = [*chatter, ours, *chatter[:5]]
    found = find_sticky_comment(client_for(fake), REPO, 42)
    assert found is not None and found.id == OUR_COMMENT
    assert [s.query.get("page", "1") for s in fake.seen] == ["1", "2", "3"]
    assert all(s.query["per_page"] == "100" for s in fake.seen)
    result = upsert_sticky_comment(client_for(fake), REPO, 42, plan_body(NEW_DIGEST))
    assert (result.action, result.comment_id) == ("updated", OUR_COMMENT)
    assert len(fake.comments[42]) == 236
