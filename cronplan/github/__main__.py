"""``python -m cronplan.github``: the CI helper commands used by action.yml and the example workflows.

    comment upsert --repo O/R --pr N --body-file plan.md   edit the sticky plan comment (or create it)
    comment intent --repo O/R (--pr N | --sha SHA) [--label NAME]
                                                           print the approved intent digest
    comment result --repo O/R (--pr N | --sha SHA) (--body-file apply-result.md | --error-file E)
                                                           post the apply result (or edit it)
    merged-pr --repo O/R --sha SHA                         print the PR number merged as SHA
    drift-issue --repo O/R --state drifted|clean [--body-file plan.md]
    action                                                 the composite action's run step

Needs GITHUB_TOKEN (and GITHUB_API_URL on GitHub Enterprise Server) in the environment.
Exit codes: 0 ok, 1 an expected error (API error, no approved plan), 64 usage.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NoReturn

from cronplan.errors import EXIT_USAGE, CronplanError
from cronplan.github.api import GitHubClient, GitHubError
from cronplan.github.sticky import DEFAULT_AUTHOR


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m cronplan.github", description="CI helpers for cronplan on GitHub."
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def repo_opt(p: argparse.ArgumentParser) -> None:
        default = environ.get("GITHUB_REPOSITORY")
        p.add_argument("--repo", default=default, required=default is None, help="OWNER/NAME")

    def author_opts(p: argparse.ArgumentParser) -> None:
        group = p.add_mutually_exclusive_group()
        group.add_argument(
            "--author",
            default=environ.get("CRONPLAN_COMMENT_AUTHOR") or DEFAULT_AUTHOR,
            help=f"login that writes the plan comments (default: {DEFAULT_AUTHOR})",
        )
        group.add_argument("--any-author", action="store_true", help="trust markers from anyone")

    comment = sub.add_parser("comment", help="the sticky plan comment on a pull request")
    csub = comment.add_subparsers(dest="comment_command", required=True, parser_class=_Parser)
    upsert = csub.add_parser("upsert", help="edit the sticky comment, or create it")
    repo_opt(upsert)
    upsert.add_argument("--pr", type=int, required=True)
    upsert.add_argument("--body-file", type=Path, required=True)
    upsert.add_argument("--footer", default="", help="a line added under the plan when it fits")
    author_opts(upsert)
    intent = csub.add_parser("intent", help="print the intent digest of the sticky comment")
    repo_opt(intent)
    which = intent.add_mutually_exclusive_group(required=True)
    which.add_argument("--pr", type=int)
    which.add_argument("--sha", help="find the pull request merged as this commit first")
    intent.add_argument(
        "--label", default=None, help="the digest of this label's plan comment (plan --label)"
    )
    author_opts(intent)
    result = csub.add_parser(
        "result", help="post the apply result on the merged pull request (one comment, edited)"
    )
    repo_opt(result)
    target = result.add_mutually_exclusive_group(required=True)
    target.add_argument("--pr", type=int)
    target.add_argument("--sha", help="the pull request merged as this commit")
    body = result.add_mutually_exclusive_group(required=True)
    body.add_argument("--body-file", type=Path, help="the action's result-file")
    body.add_argument(
        "--error-file",
        type=Path,
        help="when cronplan never ran (no approved intent): the error output to quote",
    )
    author_opts(result)

    merged = sub.add_parser("merged-pr", help="print the number of the PR merged as a commit")
    repo_opt(merged)
    merged.add_argument(
        "--sha", default=environ.get("GITHUB_SHA"), required=not environ.get("GITHUB_SHA")
    )

    drift = sub.add_parser("drift-issue", help="open/update the drift issue, or close it")
    repo_opt(drift)
    drift.add_argument("--state", choices=("drifted", "clean"), required=True)
    drift.add_argument("--body-file", type=Path)
    drift.add_argument("--title", default=None)
    drift.add_argument("--run-url", default="")
    author_opts(drift)

    sub.add_parser(
        "action", help="run cronplan as the composite action's step (reads CRONPLAN_ACTION_*)"
    )
    return parser


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    env = dict(os.environ) if environ is None else dict(environ)
    args = build_parser(env).parse_args(argv)
    try:
        return _dispatch(args, env)
    except CronplanError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        return exc.exit_code


def _dispatch(args: argparse.Namespace, env: dict[str, str]) -> int:
    if args.command == "action":
        from cronplan.github.action import main as action_main

        return action_main(env)
    author = None if getattr(args, "any_author", False) else getattr(args, "author", DEFAULT_AUTHOR)
    with GitHubClient.from_env(env) as client:
        if args.command == "comment" and args.comment_command == "upsert":
            from cronplan.github.sticky import upsert_sticky_comment

            body = _read(args.body_file)
            upserted = upsert_sticky_comment(
                client, args.repo, args.pr, body, author=author, footer=args.footer
            )
            print(
                f"{upserted.action} comment {upserted.comment_id} {upserted.html_url}".rstrip(),
                file=sys.stderr,
            )
            return 0
        if args.command == "comment" and args.comment_command == "intent":
            from cronplan.github.sticky import intent_for_commit, intent_for_pr

            if args.sha:
                pr, digest = intent_for_commit(
                    client, args.repo, args.sha, author=author, label=args.label or None
                )
            else:
                digest = intent_for_pr(
                    client, args.repo, args.pr, author=author, label=args.label or None
                )
                pr = args.pr
            print(f"Approved intent from pull request #{pr}: {digest}", file=sys.stderr)
            print(digest)
            return 0
        if args.command == "comment" and args.comment_command == "result":
            from cronplan.github.result import (
                apply_result_markdown,
                outcome_from_document,
                run_url,
                upsert_result_comment,
            )
            from cronplan.github.sticky import merged_pr_for_commit

            if args.body_file is not None:
                body = _read(args.body_file)
            else:
                body = apply_result_markdown(
                    outcome_from_document(None, 1),
                    err_tail=_read(args.error_file),
                    run_url=run_url(env),
                )
            pr = merged_pr_for_commit(client, args.repo, args.sha) if args.sha else args.pr
            posted = upsert_result_comment(client, args.repo, pr, body, author=author)
            print(
                f"{posted.action} result comment {posted.comment_id} on pull request #{pr} "
                f"{posted.html_url}".rstrip(),
                file=sys.stderr,
            )
            return 0
        if args.command == "merged-pr":
            from cronplan.github.sticky import merged_pr_for_commit

            print(merged_pr_for_commit(client, args.repo, args.sha))
            return 0
        if args.command == "drift-issue":
            from cronplan.github.drift import DEFAULT_TITLE, sync_drift_issue

            drifted = args.state == "drifted"
            if drifted and args.body_file is None:
                raise GitHubError("--state drifted needs --body-file (the markdown plan).")
            body = _read(args.body_file) if drifted else ""
            result = sync_drift_issue(
                client,
                args.repo,
                drifted=drifted,
                body=body,
                title=args.title or DEFAULT_TITLE,
                author=author,
                run_url=args.run_url,
            )
            where = f" #{result.number} {result.html_url}" if result.number else ""
            print(f"drift issue: {result.action}{where}".rstrip(), file=sys.stderr)
            return 0
    raise AssertionError(f"unhandled command {args.command}")  # pragma: no cover


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise GitHubError(f"Cannot read {path}: {exc.strerror or exc}") from None


if __name__ == "__main__":
    sys.exit(main())
