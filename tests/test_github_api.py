"""The GitHub REST client: errors that say what to fix, bounded retries, pagination that stays home."""

from __future__ import annotations

import httpx
import pytest

from cronplan.github.api import GitHubClient, GitHubError
from cronplan.github.sticky import find_sticky_comment, upsert_sticky_comment
from tests.github_fake import API, REPO, TOKEN, load, seeded

BODY = "<!-- cronplan:intent=" + "c" * 64 + " -->\nNo changes. Arms match jobs.json.\n"


def test_permission_error_names_the_missing_permission_and_never_the_token() -> None:
    fake = seeded()
    fake.comments[42] = []
    fake.fail[("POST", f"/repos/{REPO}/issues/42/comments")] = [
        (403, load("error_403_not_accessible.json"), {})
    ]
    client = GitHubClient(TOKEN, api_url=API, transport=fake.transport())
    with pytest.raises(GitHubError) as info:
        upsert_sticky_comment(client, REPO, 42, BODY)
    message = str(info.value)
    assert "403 Resource not accessible by integration" in message
    assert "pull-requests: write" in message
    assert TOKEN not in message
    assert info.value.exit_code == 1


def test_server_errors_are_retried_with_backoff_then_succeed() -> None:
    fake = seeded()
    path = f"/repos/{REPO}/issues/42/comments"
    fake.fail[("GET", path)] = [(502, {"message": "Server Error"}, {}), (503, {"message": "x"}, {})]
    sleeps: list[float] = []
    client = GitHubClient(TOKEN, api_url=API, transport=fake.transport(), sleep=sleeps.append)
    assert find_sticky_comment(client, REPO, 42) is not None
    assert sleeps == [1.0, 2.0]


def test_secondary_rate_limit_honours_retry_after_but_a_plain_403_is_final() -> None:
    fake = seeded()
    path = f"/repos/{REPO}/issues/42/comments"
    limited = {"message": "You have exceeded a secondary rate limit."}
    fake.fail[("GET", path)] = [(403, limited, {"Retry-After": "7"})]
    sleeps: list[float] = []
    client = GitHubClient(TOKEN, api_url=API, transport=fake.transport(), sleep=sleeps.append)
    assert find_sticky_comment(client, REPO, 42) is not None
    assert sleeps == [7.0]
    fake.fail[("GET", path)] = [(403, load("error_403_not_accessible.json"), {})]
    with pytest.raises(GitHubError, match="403"):
        find_sticky_comment(client, REPO, 42)
    assert sleeps == [7.0]


def test_retries_are_bounded() -> None:
    fake = seeded()
    path = f"/repos/{REPO}/issues/42/comments"
    fake.fail[("GET", path)] = [(502, {"message": "Bad Gateway"}, {})] * 5
    sleeps: list[float] = []
    client = GitHubClient(TOKEN, api_url=API, transport=fake.transport(), sleep=sleeps.append)
    with pytest.raises(GitHubError, match="502 Bad Gateway"):
        find_sticky_comment(client, REPO, 42)
    assert len(sleeps) == 2  # three attempts in all


def test_connection_errors_become_one_clear_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = GitHubClient(
        TOKEN, api_url=API, transport=httpx.MockTransport(refuse), sleep=lambda s: None
    )
    with pytest.raises(GitHubError, match="ConnectError"):
        find_sticky_comment(client, REPO, 42)


def test_a_next_link_to_another_host_is_refused() -> None:
    def evil(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json=[{"id": 1, "body": "hi", "user": {"login": "x"}}],
            headers={"Link": '<https://attacker.example/steal?page=2>; rel="next"'},
        )

    client = GitHubClient(TOKEN, api_url=API, transport=httpx.MockTransport(evil))
    with pytest.raises(GitHubError, match="another host"):
        find_sticky_comment(client, REPO, 42)


def test_missing_token_is_a_clear_error() -> None:
    with pytest.raises(GitHubError, match="GITHUB_TOKEN"):
        GitHubClient.from_env({})


def test_api_url_comes_from_github_api_url() -> None:
    fake = seeded()
    fake.base = "https://ghes.example.internal/api/v3"
    client = GitHubClient.from_env(
        {"GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": fake.base}, transport=fake.transport()
    )
    assert find_sticky_comment(client, REPO, 42) is not None
    assert all(s.path.startswith("/api/v3/") for s in fake.seen)
