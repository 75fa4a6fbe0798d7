"""One open drift issue: opened or updated while the live arms differ from jobs.json, closed when clean.

A scheduled workflow runs ``cronplan plan --detailed-exitcode``; exit 2 means the arms drifted (someone
changed them outside cronplan, a fire was lost, a re-arm failed). The issue is found by a hidden marker in
its body, so repeated runs edit one issue instead of filing a new one every hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from cronplan.github.api import GitHubClient, GitHubError
from cronplan.github.sticky import COMMENT_LIMIT, DEFAULT_AUTHOR, check_repo

DRIFT_MARKER = "<!-- cronplan:drift -->"
DEFAULT_TITLE = "cronplan: live arms drifted from jobs.json"
_TRUNCATED = "\n\n_(truncated to fit GitHub's limit; see the workflow run for the full plan)_\n"


@dataclass(frozen=True)
class DriftResult:
    action: Literal["created", "updated", "unchanged", "closed", "none"]
    number: int | None
    html_url: str


def find_drift_issue(
    client: GitHubClient, repo: str, *, author: str | None = DEFAULT_AUTHOR
) -> dict[str, Any] | None:
    """The oldest open issue (not pull request) whose body holds the drift marker."""
    params: dict[str, str | int] = {"state": "open", "sort": "created", "direction": "asc"}
    if author:
        params["creator"] = author
    for raw in client.paginate(f"/repos/{check_repo(repo)}/issues", params=params):
        if not isinstance(raw, dict) or "pull_request" in raw:
            continue  # the issues endpoint lists pull requests too
        if DRIFT_MARKER in str(raw.get("body") or ""):
            return raw
    return None


def drift_body(plan_markdown: str, *, run_url: str = "") -> str:
    """The issue body: marker, the plan, and a link to the run; within GitHub's body limit."""
    tail = f"\n\nDetected by {run_url}\n" if run_url else "\n"
    head = f"{DRIFT_MARKER}\n"
    room = COMMENT_LIMIT - len(head) - len(tail)
    text = plan_markdown.rstrip()
    if len(text) > room:
        cut = text.rfind("\n", 0, room - len(_TRUNCATED))
        text = text[: max(cut, 0)] + _TRUNCATED.rstrip()
    return head + text + tail


def sync_drift_issue(
    client: GitHubClient,
    repo: str,
    *,
    drifted: bool,
    body: str = "",
    title: str = DEFAULT_TITLE,
    author: str | None = DEFAULT_AUTHOR,
    run_url: str = "",
) -> DriftResult:
    """Open/update the drift issue when ``drifted``, else close it if one is open."""
    issue = find_drift_issue(client, repo, author=author)
    if drifted:
        full = drift_body(body, run_url=run_url)
        if issue is None:
            created = client.request(
                "POST", f"/repos/{repo}/issues", json={"title": title, "body": full}
            )
            return DriftResult("created", _number(created), str(created.get("html_url", "")))
        number = _number(issue)
        if issue.get("body") == full and issue.get("title") == title:
            return DriftResult("unchanged", number, str(issue.get("html_url", "")))
        updated = client.request(
            "PATCH", f"/repos/{repo}/issues/{number}", json={"title": title, "body": full}
        )
        return DriftResult("updated", number, str(updated.get("html_url", "")))
    if issue is None:
        return DriftResult("none", None, "")
    number = _number(issue)
    note = "Arms match jobs.json again; closing."
    if run_url:
        note += f" ({run_url})"
    client.request("POST", f"/repos/{repo}/issues/{number}/comments", json={"body": note})
    closed = client.request(
        "PATCH",
        f"/repos/{repo}/issues/{number}",
        json={"state": "closed", "state_reason": "completed"},
    )
    return DriftResult("closed", number, str(closed.get("html_url", "")))


def _number(raw: Any) -> int:
    if not isinstance(raw, dict) or not isinstance(raw.get("number"), int):
        raise GitHubError("GitHub API: an issue without a number in the response")
    return int(raw["number"])
