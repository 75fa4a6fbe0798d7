"""The result of the apply on merge, told to the merged pull request in one comment.

The apply workflow runs ``cronplan apply --format json``; :func:`apply_result_markdown` turns that document
(or, when cronplan stopped before printing one, its error output) into the comment body, and
:func:`upsert_result_comment` posts it once per pull request: a re-run of the workflow edits the same
comment, so the pull request always shows the latest outcome and never a pile of them.

The body carries its own marker and never an intent marker, so it can never be mistaken for a plan
someone approved.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cronplan.github.api import GitHubClient, GitHubError
from cronplan.github.sticky import (
    COMMENT_LIMIT,
    DEFAULT_AUTHOR,
    INTENT_MARKER_PREFIX,
    UpsertResult,
    check_number,
    check_repo,
    comment_from_api,
    has_intent_marker,
)

RESULT_MARKER = "<!-- cronplan:apply-result -->"
_ROWS_LIMIT = 200  # actions listed one per row; the rest are counted
_TAIL_CHARS = 6000


@dataclass(frozen=True)
class ApplyOutcome:
    """What an apply did, read from its JSON document; decisions are taken on these counts."""

    exit_code: int
    reported: bool  # cronplan printed its result document
    applied: tuple[tuple[str, str], ...] = ()  # (job_id, action)
    failed: tuple[tuple[str, str, str], ...] = ()  # (job_id, action, error)
    updated: int = 0  # definitions recorded with the arm left in place

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.failed

    def count(self, action: str) -> int:
        return sum(1 for _, a in self.applied if a == action)


def outcome_from_document(doc: Mapping[str, Any] | None, exit_code: int) -> ApplyOutcome:
    """Read ``cronplan apply --format json`` output; ``doc`` is None when there was none."""
    if doc is None:
        return ApplyOutcome(exit_code=exit_code, reported=False)
    result = doc.get("result")
    plan = doc.get("plan")
    if not isinstance(result, Mapping) or not isinstance(plan, Mapping):
        raise GitHubError(
            "The apply result has no 'result' or 'plan'; is cronplan older than this?"
        )
    applied = tuple(
        (str(item.get("job_id", "")), str(item.get("action", "")))
        for item in result.get("applied") or ()
        if isinstance(item, Mapping)
    )
    failed = tuple(
        (str(item.get("job_id", "")), str(item.get("action", "")), str(item.get("error", "")))
        for item in result.get("failed") or ()
        if isinstance(item, Mapping)
    )
    actions = plan.get("actions") or ()
    updated = sum(1 for a in actions if isinstance(a, Mapping) and a.get("action") == "update")
    return ApplyOutcome(exit_code, True, applied, failed, updated)


def apply_outputs(outcome: ApplyOutcome) -> dict[str, str]:
    """Step outputs of an apply: what was applied and what failed, as counts."""
    return {
        "applied": str(len(outcome.applied)),
        "failed": str(len(outcome.failed)),
        "arm": str(outcome.count("arm")),
        "rearm": str(outcome.count("rearm")),
        "cancel": str(outcome.count("cancel")),
        "has-changes": "true" if outcome.applied or outcome.updated else "false",
    }


def apply_result_markdown(
    outcome: ApplyOutcome, *, err_tail: str = "", intent: str = "", run_url: str = ""
) -> str:
    """The comment body for the merged pull request (always under GitHub's comment limit)."""
    lines = [RESULT_MARKER]
    counts = (
        f"**{outcome.count('arm')} armed, {outcome.count('rearm')} re-armed, "
        f"{outcome.count('cancel')} cancelled**"
        + (f", {outcome.updated} updated" if outcome.updated else "")
    )
    approved = f" (intent `{intent[:12]}`)" if intent else ""
    if outcome.ok and not outcome.applied and not outcome.updated:
        lines.append("### ✅ cronplan apply: nothing to do")
        lines.append(f"The live arms already matched jobs.json{approved}.")
    elif outcome.ok:
        lines.append("### ✅ cronplan apply succeeded")
        lines.append(f"Applied the plan approved in this pull request{approved}: {counts}.")
    elif outcome.reported:
        total = len(outcome.applied) + len(outcome.failed)
        lines.append("### ❌ cronplan apply failed")
        lines.append(
            f"{len(outcome.failed)} of {total} actions failed; the others were applied "
            f"({counts}). Re-running the apply converges: it re-plans and never arms twice."
        )
    else:
        lines.append(f"### ❌ cronplan apply failed (exit code {outcome.exit_code})")
        lines.append(
            "Nothing was reported as applied: cronplan refused or stopped (or, without an approved "
            "plan, never ran). The error output is below. When the plan changed since it was "
            "reviewed, nothing was applied: open a new pull request to review the current plan."
        )
    rows = [(job, action, error) for job, action, error in outcome.failed] + [
        (job, action, "") for job, action in outcome.applied
    ]
    if rows:
        lines += ["", "<details><summary>Actions</summary>", ""]
        lines += ["| job | action | result |", "|---|---|---|"]
        for job, action, error in rows[:_ROWS_LIMIT]:
            verdict = f"failed: {_cell(error)}" if error else "done"
            lines.append(f"| `{_cell(job)}` | {_label(action)} | {verdict} |")
        if len(rows) > _ROWS_LIMIT:
            lines.append(f"\n_… and {len(rows) - _ROWS_LIMIT} more (see the workflow run)._")
        lines += ["", "</details>"]
    if not outcome.reported and err_tail.strip():
        text = _quote(err_tail.strip()[-_TAIL_CHARS:])
        fence = "```"
        while fence in text:
            fence += "`"
        lines += ["", "<details><summary>Error output</summary>", "", f"{fence}text", text, fence]
        lines += ["", "</details>"]
    if run_url:
        lines += ["", f"[Workflow run]({run_url})"]
    body = "\n".join(lines) + "\n"
    if len(body) > COMMENT_LIMIT:  # only a pathological error text gets here; keep the verdict
        body = "\n".join(lines[:3]) + "\n\n_(details cut to fit a comment; see the workflow run)_\n"
    return body


def upsert_result_comment(
    client: GitHubClient,
    repo: str,
    pr: int,
    body: str,
    *,
    author: str | None = DEFAULT_AUTHOR,
) -> UpsertResult:
    """Post the apply result on the pull request, or edit the result comment already there."""
    if RESULT_MARKER not in body:
        raise GitHubError(f"The result body has no {RESULT_MARKER!r} marker; render it first.")
    if INTENT_MARKER_PREFIX in body or has_intent_marker(body):
        raise GitHubError("The result body carries an intent marker; refusing to post it.")
    if len(body) > COMMENT_LIMIT:
        raise GitHubError(
            f"The comment body has {len(body)} characters; GitHub accepts at most {COMMENT_LIMIT}."
        )
    path = f"/repos/{check_repo(repo)}/issues/{check_number(pr)}/comments"
    for raw in client.paginate(path):
        comment = comment_from_api(raw)
        if RESULT_MARKER not in comment.body:
            continue
        if author is not None and comment.author != author:
            continue
        if comment.body == body:
            return UpsertResult("unchanged", comment.id, comment.html_url)
        updated = client.request(
            "PATCH", f"/repos/{repo}/issues/comments/{comment.id}", json={"body": body}
        )
        edited = comment_from_api(updated)
        return UpsertResult("updated", edited.id, edited.html_url)
    created = comment_from_api(client.request("POST", path, json={"body": body}))
    return UpsertResult("created", created.id, created.html_url)


def run_url(environ: Mapping[str, str]) -> str:
    """The URL of the current workflow run, from the variables GitHub sets; "" outside a workflow."""
    server, repo, run_id = (
        environ.get("GITHUB_SERVER_URL", ""),
        environ.get("GITHUB_REPOSITORY", ""),
        environ.get("GITHUB_RUN_ID", ""),
    )
    if not (server and repo and run_id):
        return ""
    return f"{server.rstrip('/')}/{repo}/actions/runs/{run_id}"


def _label(action: str) -> str:
    return "re-arm" if action == "rearm" else action


def _cell(text: str) -> str:
    """One table cell: no line breaks, no column breaks, no HTML (so no comment markers either)."""
    flat = " ".join(text.split())
    return flat.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def _quote(text: str) -> str:
    # Inside the fence HTML is not rendered, but a marker in it would still be found by a search.
    return text.replace("<!--", "<! --")
