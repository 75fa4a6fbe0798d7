"""One sticky plan comment per pull request, found by its hidden intent marker and edited in place.

The markdown plan carries ``<!-- cronplan:intent=DIGEST -->``. On every push the plan workflow edits the
comment holding that marker (or creates it once); on merge the apply workflow reads the digest back from
the merged PR's comment and passes it to ``cronplan apply --expect-intent``. Only comments written by the
workflow's own identity count, so nobody can plant a digest by posting a comment that contains a marker.

With a label (``plan --format markdown --label prod``) the marker is
``<!-- cronplan:label=prod:intent=DIGEST -->``: one pull request carries one sticky comment per label
(an environment), each found only by its own label, and each apply reads the digest of its own label.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from cronplan.github.api import GitHubClient, GitHubError

INTENT_MARKER_PREFIX = "<!-- cronplan:intent="
# The identity GITHUB_TOKEN posts as; a workflow using an app token passes its own login.
DEFAULT_AUTHOR = "github-actions[bot]"
COMMENT_LIMIT = 65536

_MARKER_RE = re.compile(
    r"<!-- cronplan:(?:label=([A-Za-z0-9][A-Za-z0-9._-]{0,63}):)?intent=([A-Za-z0-9:_.-]{0,200}) -->"
)
_LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_REPO_RE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_SHA_RE = re.compile(r"^[0-9a-fA-F]{7,64}$")


@dataclass(frozen=True)
class Comment:
    id: int
    body: str
    author: str
    html_url: str


@dataclass(frozen=True)
class UpsertResult:
    action: Literal["created", "updated", "unchanged"]
    comment_id: int
    html_url: str


def check_repo(repo: str) -> str:
    if not _REPO_RE.match(repo):
        raise GitHubError(f"Not a repository name: {repo!r} (expected OWNER/NAME)")
    return repo


def check_number(number: int) -> int:
    if number <= 0:
        raise GitHubError(f"Not a pull request or issue number: {number}")
    return number


def check_label(label: str | None) -> str | None:
    if label is not None and not _LABEL_RE.match(label):
        raise GitHubError(
            f"Not a label: {label!r} (letters, digits, '.', '_' and '-', at most 64 characters)"
        )
    return label


def marker_prefix(label: str | None = None) -> str:
    """How the marker of the plan comment with this label (None: unlabelled) begins."""
    if label is None:
        return INTENT_MARKER_PREFIX
    return f"<!-- cronplan:label={check_label(label)}:intent="


def marker_label(body: str) -> str | None:
    """The label of the body's marker (None: an unlabelled marker, or none at all)."""
    match = _MARKER_RE.search(body)
    return match.group(1) if match else None


def has_intent_marker(body: str) -> bool:
    """Whether the body carries any plan marker, labelled or not."""
    return _MARKER_RE.search(body) is not None


def extract_intent(body: str, label: str | None = None) -> str | None:
    """The digest in the body's marker for ``label`` (None: the unlabelled marker); ``""`` for a failed
    plan; ``None`` without such a marker."""
    for match in _MARKER_RE.finditer(body):
        if match.group(1) == label:
            return match.group(2)
    return None


def find_sticky_comment(
    client: GitHubClient,
    repo: str,
    pr: int,
    *,
    author: str | None = DEFAULT_AUTHOR,
    label: str | None = None,
) -> Comment | None:
    """The oldest comment on the PR with the marker of ``label``, written by ``author`` (any when None).

    The oldest one is the sticky comment, so its place in the conversation never moves; comments
    come back in creation order, so the search stops at the first page that holds it.
    """
    path = f"/repos/{check_repo(repo)}/issues/{check_number(pr)}/comments"
    prefix = marker_prefix(label)
    for raw in client.paginate(path):
        comment = comment_from_api(raw)
        if prefix not in comment.body:
            continue
        if author is not None and comment.author != author:
            continue
        return comment
    return None


def upsert_sticky_comment(
    client: GitHubClient,
    repo: str,
    pr: int,
    body: str,
    *,
    author: str | None = DEFAULT_AUTHOR,
    footer: str = "",
) -> UpsertResult:
    """Edit the PR's sticky plan comment to ``body``, or create it when there is none yet.

    The comment edited is the one with the same label as the body's marker (one sticky per label).
    """
    if _MARKER_RE.search(body) is None:
        raise GitHubError(
            "The comment body has no '<!-- cronplan:intent=' marker, so it could never be found "
            "again; pass the output of 'cronplan plan --format markdown'."
        )
    label = marker_label(body)
    if footer and len(body) + len(footer) + 2 <= COMMENT_LIMIT:
        body = f"{body.rstrip()}\n\n{footer}\n"
    if len(body) > COMMENT_LIMIT:
        raise GitHubError(
            f"The comment body has {len(body)} characters; GitHub accepts at most {COMMENT_LIMIT}."
        )
    existing = find_sticky_comment(client, repo, pr, author=author, label=label)
    if existing is None:
        created = client.request("POST", f"/repos/{repo}/issues/{pr}/comments", json={"body": body})
        comment = comment_from_api(created)
        return UpsertResult("created", comment.id, comment.html_url)
    if existing.body == body:
        # An identical edit would only bump "edited" and notify nobody usefully.
        return UpsertResult("unchanged", existing.id, existing.html_url)
    updated = client.request(
        "PATCH", f"/repos/{repo}/issues/comments/{existing.id}", json={"body": body}
    )
    comment = comment_from_api(updated)
    return UpsertResult("updated", comment.id, comment.html_url)


def intent_for_pr(
    client: GitHubClient,
    repo: str,
    pr: int,
    *,
    author: str | None = DEFAULT_AUTHOR,
    label: str | None = None,
) -> str:
    """The intent digest of the plan (of ``label``) last posted on the PR; an error when none to trust."""
    comment = find_sticky_comment(client, repo, pr, author=author, label=label)
    if comment is None:
        raise GitHubError(
            f"Pull request #{pr} has no cronplan plan comment"
            + (f" labelled {label!r}" if label else "")
            + (f" by {author}" if author else "")
            + "; refusing to apply a plan nobody reviewed."
        )
    digest = extract_intent(comment.body, label)
    if not digest:
        raise GitHubError(
            f"The last cronplan plan on pull request #{pr} failed, so there is no approved intent; "
            f"fix the plan and merge again ({comment.html_url})."
        )
    return digest


def merged_pr_for_commit(client: GitHubClient, repo: str, sha: str) -> int:
    """The number of the pull request whose merge produced ``sha`` on the default branch."""
    if not _SHA_RE.match(sha):
        raise GitHubError(f"Not a commit SHA: {sha!r}")
    pulls = list(client.paginate(f"/repos/{check_repo(repo)}/commits/{sha}/pulls"))
    merged = [p for p in pulls if isinstance(p, dict) and p.get("merged_at")]
    exact = [p for p in merged if str(p.get("merge_commit_sha", "")).lower() == sha.lower()]
    if exact:
        return int(exact[0]["number"])
    if len(merged) == 1:
        return int(merged[0]["number"])
    if not merged:
        raise GitHubError(
            f"No merged pull request contains commit {sha[:12]}: a direct push has no reviewed plan; "
            "refusing to apply. Merge the change through a pull request."
        )
    numbers = ", ".join(f"#{p['number']}" for p in merged)
    raise GitHubError(
        f"Commit {sha[:12]} belongs to several merged pull requests ({numbers}) and none was merged "
        "as this commit; cannot tell which plan was approved."
    )


def intent_for_commit(
    client: GitHubClient,
    repo: str,
    sha: str,
    *,
    author: str | None = DEFAULT_AUTHOR,
    label: str | None = None,
) -> tuple[int, str]:
    """``(pr_number, digest)`` for the pull request merged as ``sha`` (the plan of ``label``)."""
    check_label(label)
    pr = merged_pr_for_commit(client, repo, sha)
    return pr, intent_for_pr(client, repo, pr, author=author, label=label)


def comment_from_api(raw: Any) -> Comment:
    """A comment from the REST API's JSON (the fields cronplan reads)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), int):
        raise GitHubError("GitHub API: a comment without an id in the response")
    user = raw.get("user") or {}
    return Comment(
        id=raw["id"],
        body=str(raw.get("body") or ""),
        author=str(user.get("login") or "") if isinstance(user, dict) else "",
        html_url=str(raw.get("html_url") or ""),
    )
