"""The body of the composite action's run step: run cronplan, keep the plan, publish step outputs.

``action.yml`` passes its inputs as ``CRONPLAN_ACTION_*`` environment variables (never templated into a
shell line) and calls ``python -m cronplan.github action``. For ``plan`` this saves the JSON plan, renders
the markdown plan next to it for the comment step, and exposes the exit code, whether there are changes,
the intent digest and the counts as step outputs. For ``apply`` it keeps cronplan's JSON result and
renders the result comment for the merged pull request (``result-file``), with what was applied and what
failed as outputs.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import subprocess
import sys
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cronplan.github.api import GitHubError
from cronplan.github.result import (
    ApplyOutcome,
    apply_outputs,
    apply_result_markdown,
    outcome_from_document,
    run_url,
)
from cronplan.github.sticky import check_label

COMMANDS = ("plan", "apply", "validate")
SUMMARY_LIMIT = 1024 * 1024  # GitHub's per-step limit for $GITHUB_STEP_SUMMARY, in bytes
FAILED_MARKER = "<!-- cronplan:intent= -->"
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TAIL_LINES = 60


@dataclass(frozen=True)
class ActionInputs:
    command: str = "plan"
    config: str = ""
    args: tuple[str, ...] = ()
    expect_intent: str = ""
    label: str | None = None
    token: str = field(default="", repr=False)
    token_env: str = "CRONPLAN_NAS_TOKEN"
    out_dir: Path = Path("cronplan-out")
    summary: bool = True
    fail_on_error: bool = True
    cronplan: tuple[str, ...] = ("cronplan",)


@dataclass(frozen=True)
class ActionResult:
    exit_code: int
    ok: bool
    outputs: dict[str, str]


Runner = Callable[[Sequence[str], Mapping[str, str]], tuple[int, str]]


def inputs_from_env(environ: Mapping[str, str]) -> ActionInputs:
    """Read and check the ``CRONPLAN_ACTION_*`` variables set by action.yml."""
    command = environ.get("CRONPLAN_ACTION_COMMAND", "plan").strip() or "plan"
    if command not in COMMANDS:
        raise GitHubError(f"Unknown command {command!r}: use one of {', '.join(COMMANDS)}.")
    token_env = environ.get("CRONPLAN_ACTION_TOKEN_ENV", "").strip() or "CRONPLAN_NAS_TOKEN"
    if not _ENV_NAME_RE.match(token_env):
        raise GitHubError(f"provider-token-env {token_env!r} is not an environment variable name.")
    try:
        args = tuple(shlex.split(environ.get("CRONPLAN_ACTION_ARGS", "")))
    except ValueError as exc:
        raise GitHubError(f"args: {exc}") from None
    out_dir = environ.get("CRONPLAN_ACTION_OUT_DIR", "").strip()
    if not out_dir:
        out_dir = os.path.join(environ.get("RUNNER_TEMP") or ".", "cronplan")
    return ActionInputs(
        command=command,
        config=environ.get("CRONPLAN_ACTION_CONFIG", "").strip(),
        args=args,
        expect_intent=environ.get("CRONPLAN_ACTION_EXPECT_INTENT", "").strip(),
        label=check_label(environ.get("CRONPLAN_ACTION_LABEL", "").strip() or None),
        token=environ.get("CRONPLAN_ACTION_TOKEN", ""),
        token_env=token_env,
        out_dir=Path(out_dir),
        summary=_flag(environ.get("CRONPLAN_ACTION_SUMMARY", "true")),
        fail_on_error=_flag(environ.get("CRONPLAN_ACTION_FAIL_ON_ERROR", "true")),
    )


def child_env(inputs: ActionInputs, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment cronplan runs with: the provider token under the name the config expects."""
    env = {k: v for k, v in environ.items() if not k.startswith("CRONPLAN_ACTION_")}
    if inputs.token:
        env[inputs.token_env] = inputs.token
    return env


def command_argv(inputs: ActionInputs) -> list[str]:
    base = [*inputs.cronplan]
    if inputs.config:
        base += ["--config", inputs.config]
    if inputs.command == "validate":
        return [*base, "validate", *inputs.args]
    if inputs.command == "plan":
        out = str(inputs.out_dir / "plan.json")
        return [*base, "plan", "--out", out, "--detailed-exitcode", *inputs.args]
    argv = [*base, "apply", "--auto-approve"]
    if inputs.expect_intent:
        argv += ["--expect-intent", inputs.expect_intent]
    # The JSON result (on stdout, kept in out_dir) is what the result comment is made from.
    return [*argv, "--format", "json", *inputs.args]


def run_action(
    inputs: ActionInputs, environ: Mapping[str, str], *, runner: Runner | None = None
) -> ActionResult:
    """Run the command and compute the step outputs (files land in ``inputs.out_dir``)."""
    env = child_env(inputs, environ)
    inputs.out_dir.mkdir(parents=True, exist_ok=True)
    apply_path = inputs.out_dir / "apply.json"
    if runner is not None:
        code, err_tail = runner(command_argv(inputs), env)
    elif inputs.command == "apply":
        code, err_tail = run_tee(command_argv(inputs), env, stdout_path=apply_path)
    else:
        code, err_tail = run_tee(command_argv(inputs), env)
    outputs: dict[str, str] = {
        "exit-code": str(code),
        "has-changes": "false",
        "intent-digest": inputs.expect_intent if inputs.command == "apply" else "",
        "arm": "0",
        "rearm": "0",
        "cancel": "0",
        "skip": "0",
        "counts": json.dumps({"arm": 0, "rearm": 0, "cancel": 0, "skip": 0}),
        "plan-file": "",
        "markdown-file": "",
        "applied": "0",
        "failed": "0",
        "result-file": "",
    }
    if inputs.command == "plan":
        ok = code in (0, 2)
        markdown_path = inputs.out_dir / "plan.md"
        plan_path = inputs.out_dir / "plan.json"
        if ok:
            try:
                outputs.update(plan_outputs(_load_json(plan_path), code))
                show = [*inputs.cronplan]
                if inputs.config:
                    show += ["--config", inputs.config]
                show += ["show", str(plan_path), "--format", "markdown"]
                if inputs.label:
                    show += ["--label", inputs.label]
                markdown = _capture(show, env)
            except GitHubError as exc:
                ok, code = False, 1
                err_tail = str(exc)
                outputs["exit-code"] = "1"
            else:
                markdown_path.write_text(markdown, encoding="utf-8")
                outputs["plan-file"] = str(plan_path)
        if not ok:
            failure = failure_markdown("plan", code, err_tail, label=inputs.label)
            markdown_path.write_text(failure, encoding="utf-8")
        outputs["markdown-file"] = str(markdown_path)
    elif inputs.command == "apply":
        ok = code == 0
        outcome = _apply_outcome(apply_path, code)
        if outcome.failed:
            ok = False
        outputs.update(apply_outputs(outcome))
        result_path = inputs.out_dir / "apply-result.md"
        result_path.write_text(
            apply_result_markdown(
                outcome, err_tail=err_tail, intent=inputs.expect_intent, run_url=run_url(environ)
            ),
            encoding="utf-8",
        )
        outputs["result-file"] = str(result_path)
        print(
            f"cronplan apply: {outputs['applied']} applied, {outputs['failed']} failed "
            f"(exit code {code})",
            flush=True,
        )
    else:
        ok = code == 0
    if not ok:
        _annotate_failure(inputs, code)
    return ActionResult(code, ok, outputs)


def _apply_outcome(path: Path, code: int) -> ApplyOutcome:
    """The apply's JSON result; an outcome without a report when cronplan printed none."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return outcome_from_document(None, code)
    if not isinstance(doc, dict):
        return outcome_from_document(None, code)
    try:
        return outcome_from_document(doc, code)
    except GitHubError:
        return outcome_from_document(None, code)


def plan_outputs(doc: Mapping[str, Any], exit_code: int) -> dict[str, str]:
    """Outputs taken from a JSON plan document (``intent_digest`` and ``summary``)."""
    summary = doc.get("summary")
    if not isinstance(summary, Mapping):
        raise GitHubError("The plan file has no 'summary'; is cronplan older than this action?")
    counts = {k: _count(summary.get(k)) for k in ("arm", "rearm", "cancel", "skip")}
    updates = _count(summary.get("update"))  # an update (definition only) is a change too
    changes = exit_code == 2 or counts["arm"] + counts["rearm"] + updates + counts["cancel"] > 0
    return {
        "has-changes": "true" if changes else "false",
        "intent-digest": str(doc.get("intent_digest") or ""),
        **{k: str(v) for k, v in counts.items()},
        "counts": json.dumps(counts, sort_keys=True),
    }


def failure_markdown(
    command: str, exit_code: int, err_tail: str, *, label: str | None = None
) -> str:
    """The sticky comment body for a plan that failed: says so, and carries an empty intent."""
    marker = FAILED_MARKER if label is None else f"<!-- cronplan:label={label}:intent= -->"
    text = err_tail.strip() or "(no error output)"
    fence = "```"
    while fence in text:
        fence += "`"
    # The empty marker goes first: readers take the first marker, so one quoted in the error output
    # can never stand in for an approved intent.
    return (
        f"{marker}\n"
        f"**cronplan {command} failed** (exit code {exit_code}). Nothing can be applied from this "
        "pull request until the plan succeeds.\n\n"
        "<details><summary>Error output</summary>\n\n"
        f"{fence}text\n{text}\n{fence}\n\n</details>\n"
    )


def write_outputs(path: str | os.PathLike[str], outputs: Mapping[str, str]) -> None:
    """Append outputs in $GITHUB_OUTPUT syntax, multi-line values with a random delimiter."""
    with open(path, "a", encoding="utf-8") as fh:
        for name, value in outputs.items():
            if "\n" in value:
                delim = f"CRONPLAN_{uuid.uuid4().hex}"
                fh.write(f"{name}<<{delim}\n{value}\n{delim}\n")
            else:
                fh.write(f"{name}={value}\n")


def append_summary(path: str | os.PathLike[str], text: str, *, limit: int = SUMMARY_LIMIT) -> None:
    """Append to $GITHUB_STEP_SUMMARY, cut at a line boundary to stay within ``limit`` bytes."""
    target = Path(path)
    used = target.stat().st_size if target.exists() else 0
    notice = "\n\n_(cut to fit the 1 MiB step summary; the full plan is in the artifact)_\n"
    data = text if text.endswith("\n") else text + "\n"
    room = limit - used
    if len(data.encode("utf-8")) > room:
        budget = room - len(notice.encode("utf-8"))
        if budget <= 0:
            return
        cut = data.encode("utf-8")[:budget].decode("utf-8", errors="ignore")
        data = cut[: cut.rfind("\n") + 1] + notice
    with target.open("a", encoding="utf-8") as fh:
        fh.write(data)


def run_tee(
    argv: Sequence[str], env: Mapping[str, str], *, stdout_path: Path | None = None
) -> tuple[int, str]:
    """Run with stderr echoed live, keeping its tail for the comment.

    stdout is passed through, or written to ``stdout_path`` when one is given (a JSON result).
    """
    tail: deque[str] = deque(maxlen=_TAIL_LINES)
    try:
        with contextlib.ExitStack() as stack:
            out = stack.enter_context(stdout_path.open("wb")) if stdout_path else None
            proc = subprocess.Popen(
                list(argv),
                stdout=out,
                stderr=subprocess.PIPE,
                text=True,
                env=dict(env),
                errors="replace",
            )
            assert proc.stderr is not None
            for line in proc.stderr:
                sys.stderr.write(line)
                tail.append(line)
            return proc.wait(), "".join(tail)
    except OSError as exc:
        message = f"cannot run {argv[0]}: {exc.strerror or exc}"
        print(message, file=sys.stderr)
        return 127, message


def main(environ: Mapping[str, str]) -> int:
    inputs = inputs_from_env(environ)
    sys.stdout.flush()
    result = run_action(inputs, environ)
    if environ.get("GITHUB_OUTPUT"):
        write_outputs(environ["GITHUB_OUTPUT"], result.outputs)
    if inputs.summary and environ.get("GITHUB_STEP_SUMMARY"):
        append_summary(environ["GITHUB_STEP_SUMMARY"], _summary_text(inputs, result))
    if not result.ok and inputs.fail_on_error:
        return result.exit_code or 1
    return 0


def _summary_text(inputs: ActionInputs, result: ActionResult) -> str:
    md = result.outputs.get("markdown-file") or result.outputs.get("result-file")
    if md and Path(md).exists():
        return Path(md).read_text(encoding="utf-8")
    verdict = "succeeded" if result.ok else f"failed (exit code {result.exit_code})"
    line = f"**cronplan {inputs.command}** {verdict}."
    if inputs.command == "apply" and inputs.expect_intent:
        line += f" Expected intent `{inputs.expect_intent}`."
    return line + "\n"


def _annotate_failure(inputs: ActionInputs, code: int) -> None:
    hint = "see the log above"
    if inputs.command == "apply" and inputs.expect_intent:
        hint = (
            "if the plan changed since the pull request was reviewed (intent digest differs), "
            "nothing was applied: open a new pull request to review the current plan"
        )
    print(f"::error title=cronplan {inputs.command} failed::exit code {code}: {hint}", flush=True)


def _capture(argv: Sequence[str], env: Mapping[str, str]) -> str:
    try:
        proc = subprocess.run(
            list(argv), capture_output=True, text=True, env=dict(env), check=False
        )
    except OSError as exc:
        raise GitHubError(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise GitHubError(f"'cronplan show' failed (exit code {proc.returncode}): {proc.stderr}")
    return proc.stdout


def _load_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GitHubError(f"cronplan plan wrote no plan file at {path}") from None
    except ValueError as exc:
        raise GitHubError(f"The plan file {path} is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise GitHubError(f"The plan file {path} is not a JSON object")
    return doc


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


def _flag(value: str) -> bool:
    return value.strip().lower() not in ("false", "0", "no", "off", "")
