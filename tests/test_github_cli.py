"""``python -m cronplan.github`` as the workflows run it: a real subprocess against a fake API on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.github_fake import BOT, REPO, TOKEN, FakeGitHub, seeded

OLD_DIGEST = "3f1c0d5e9a7b2c4d6e8f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f"
MERGE_SHA = "e4d3c2b1a0f9e8d7c6b5a4938271605f4e3d2c1b"


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


def test_upsert_then_intent_round_trip(
    served: tuple[FakeGitHub, dict[str, str]], tmp_path: Path
) -> None:
    fake, env = served
    body = tmp_path / "plan.md"
    new = "ab" * 32
    body.write_text(f"<!-- cronplan:intent={new} -->\n**Plan:** 1 to arm.\n")
    res = gh(env, "comment", "upsert", "--pr", "42", "--body-file", str(body), "--footer", "run 7")
    assert res.returncode == 0, res.stderr
    assert res.stderr.startswith("updated comment 2484502231 ")
    assert fake.bot_marker_comments(42)[0]["body"].endswith("\n\nrun 7\n")
    res = gh(env, "comment", "intent", "--sha", MERGE_SHA)
    assert res.returncode == 0, res.stderr
    assert res.stdout == f"{new}\n"  # only the digest on stdout, for $(...)
    assert "pull request #42" in res.stderr


def test_intent_by_pr_and_merged_pr(served: tuple[FakeGitHub, dict[str, str]]) -> None:
    _, env = served
    assert gh(env, "comment", "intent", "--pr", "42").stdout == f"{OLD_DIGEST}\n"
    assert gh(env, "merged-pr", "--sha", MERGE_SHA).stdout == "42\n"
    anyone = gh(env, "comment", "intent", "--pr", "42", "--any-author")
    assert anyone.stdout == "0" * 64 + "\n"  # why the author filter is on by default


def test_direct_push_is_refused_with_exit_1(served: tuple[FakeGitHub, dict[str, str]]) -> None:
    _, env = served
    res = gh(env, "comment", "intent", "--sha", "0123456789abcdef0123456789abcdef01234567")
    assert res.returncode == 1
    assert res.stdout == ""
    assert "direct push has no reviewed plan" in res.stderr
    assert "Traceback" not in res.stderr


def test_drift_issue(served: tuple[FakeGitHub, dict[str, str]], tmp_path: Path) -> None:
    fake, env = served
    plan = tmp_path / "plan.md"
    plan.write_text("<!-- cronplan:intent=" + "e" * 64 + " -->\n**Plan:** 1 to re-arm.\n")
    res = gh(
        env,
        "drift-issue",
        "--state",
        "drifted",
        "--body-file",
        str(plan),
        "--run-url",
        "https://x/run/1",
    )
    assert res.returncode == 0, res.stderr
    assert "drift issue: updated #53" in res.stderr
    res = gh(env, "drift-issue", "--state", "clean")
    assert res.returncode == 0, res.stderr
    assert "drift issue: closed #53" in res.stderr
    assert [i["state"] for i in fake.issues if i["number"] == 53] == ["closed"]
    assert gh(env, "drift-issue", "--state", "drifted").returncode == 1  # needs the plan


def test_bad_token_is_an_expected_error_and_the_token_is_not_printed(
    served: tuple[FakeGitHub, dict[str, str]],
) -> None:
    _, env = served
    bad = "ghs_wrongwrongwrong"
    res = gh({**env, "GITHUB_TOKEN": bad}, "comment", "intent", "--pr", "42")
    assert res.returncode == 1
    assert "401 Bad credentials" in res.stderr
    assert bad not in res.stderr + res.stdout


def test_missing_token_and_usage_errors() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GH_"))}
    res = gh(env, "comment", "intent", "--repo", REPO, "--pr", "1")
    assert res.returncode == 1
    assert "GITHUB_TOKEN" in res.stderr
    assert gh(env, "comment", "intent", "--repo", REPO).returncode == 64
    assert gh(env, "frobnicate").returncode == 64


def test_author_comes_from_the_environment_for_app_tokens(
    served: tuple[FakeGitHub, dict[str, str]],
) -> None:
    _, env = served
    res = gh({**env, "CRONPLAN_COMMENT_AUTHOR": "my-app[bot]"}, "comment", "intent", "--pr", "42")
    assert res.returncode == 1
    assert "by my-app[bot]" in res.stderr
    assert BOT not in res.stderr
