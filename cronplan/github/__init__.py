"""GitHub glue for running cronplan in CI: the sticky plan comment, the drift issue, the action step.

Nothing in the core imports this package; it is used by the composite action (``action.yml``) and the
example workflows through ``python -m cronplan.github``. The HTTP transport is injectable so the logic is
tested against recorded GitHub API responses.
"""

from __future__ import annotations

from cronplan.github.api import GitHubClient, GitHubError
from cronplan.github.drift import DRIFT_MARKER, DriftResult, sync_drift_issue
from cronplan.github.result import (
    RESULT_MARKER,
    ApplyOutcome,
    apply_result_markdown,
    outcome_from_document,
    upsert_result_comment,
)
from cronplan.github.sticky import (
    INTENT_MARKER_PREFIX,
    UpsertResult,
    extract_intent,
    find_sticky_comment,
    intent_for_commit,
    intent_for_pr,
    merged_pr_for_commit,
    upsert_sticky_comment,
)

__all__ = [
    "DRIFT_MARKER",
    "INTENT_MARKER_PREFIX",
    "RESULT_MARKER",
    "ApplyOutcome",
    "DriftResult",
    "GitHubClient",
    "GitHubError",
    "UpsertResult",
    "apply_result_markdown",
    "extract_intent",
    "find_sticky_comment",
    "intent_for_commit",
    "intent_for_pr",
    "merged_pr_for_commit",
    "outcome_from_document",
    "sync_drift_issue",
    "upsert_result_comment",
    "upsert_sticky_comment",
]
