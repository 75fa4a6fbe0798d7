"""The composite action's run step: argv, token handling, outputs, markdown file, summary, failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cronplan.github.action import (
    FAILED_MARKER,
    ActionInputs,
    append_summary,
    command_argv,
    failure_markdown,
    inputs_from_env,
    main,
    plan_outputs,
    run_action,
)
from cronplan.github.api import GitHubError
from cronplan.github.sticky import extract_intent

DIGEST = "5d" * 32
SECRET = "nas-secret-token-value-123"

# A stand-in for the cronplan CLI: records its argv and the token it saw, behaves per FAKE_MODE.
FAKE_CRONPLAN = r"""
import json, os, sys
args = sys.argv[1:]
mode = os.environ.get("FAKE_MODE", "changes")
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps({"argv": args, "token": os.environ.get("CRONPLAN_NAS_TOKEN"),
                          "leaked": [k for k in os.environ if k.startswith("CRONPLAN_ACTION_")]}) + "\n")
if "plan" in args:
    if mode == "fail":
        print("jobs.json:4:18: /jobs/0/schedule/expr: bad cron expression '61 * * * *'", file=sys.stderr)
        sys.exit(1)
    counts = {"arm": 2, "rearm": 1, "cancel": 1, "skip": 3} if mode == "changes" else {"arm": 0, "rearm": 0, "cancel": 0, "skip": 7}
    out = args[args.index("--out") + 1]
    with open(out, "w") as fh:
        json.dump({"format_version": "1", "provider": "local", "now": "2026-11-26T14:00:00Z",
                   "summary": counts, "intent_digest": os.environ["FAKE_DIGEST"], "actions": []}, fh)
    print("Plan: 2 to arm, 1 to re-arm, 0 to update, 1 to cancel, 3 unchanged." if mode == "changes" else "No changes. Arms match jobs.json.")
    sys.exit(2 if mode == "changes" else 0)
if "show" in args:
    doc = json.load(open(args[args.index("show") + 1]))
    print(f"<!-- cronplan:intent={doc['intent_digest']} -->")
    print("**Plan:** %(arm)d to arm, %(rearm)d to re-arm, %(cancel)d to cancel, %(skip)d unchanged." % doc["summary"])
    sys.exit(0)
if "apply" in args:
    if mode == "intent-changed":
        print("Error: the plan changed since it was approved (intent differs)", file=sys.stderr)
        sys.exit(1)
    applied = [{"job_id": "a", "action": "arm"}, {"job_id": "b", "action": "arm"},
               {"job_id": "c", "action": "rearm"}, {"job_id": "d", "action": "cancel"}]
    failed = []
    if mode == "partial":
        failed = [{"job_id": "e", "action": "arm", "error": "provider said 503 | <!-- cronplan:intent=x -->"}]
    plan = {"actions": [{"action": "update", "job_id": "f"}]}
    if "--format" in args and args[args.index("--format") + 1] == "json":
        print(json.dumps({"format_version": "1", "plan": plan, "result": {"applied": applied, "failed": failed}}))
    else:
        print("Apply complete: 4 done, 0 failed.")
    sys.exit(1 if failed else 0)
if "validate" in args:
    sys.exit(0)
sys.exit(64)
"""


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    script = tmp_path / "fake_cronplan.py"
    script.write_text(FAKE_CRONPLAN)
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FAKE_LOG", str(log))
    monkeypatch.setenv("FAKE_DIGEST", DIGEST)
    return {"argv": (sys.executable, str(script)), "log": log, "out": tmp_path / "out"}


def calls(fake: dict[str, object]) -> list[dict[str, object]]:
    log = fake["log"]
    assert isinstance(log, Path)
    return [json.loads(line) for line in log.read_text().splitlines()]


def inputs(fake: dict[str, object], **kw: object) -> ActionInputs:
    base: dict[str, object] = {
        "cronplan": fake["argv"],
        "out_dir": fake["out"],
        "config": "cronplan.yaml",
    }
    base.update(kw)
    return ActionInputs(**base)  # type: ignore[arg-type]


def test_plan_with_changes_sets_outputs_and_writes_the_markdown(fake: dict[str, object]) -> None:
    result = run_action(inputs(fake, token=SECRET), dict(os.environ, CRONPLAN_ACTION_TOKEN=SECRET))
    assert result.ok and result.exit_code == 2
    out = result.outputs
    assert out["exit-code"] == "2"
    assert out["has-changes"] == "true"
    assert out["intent-digest"] == DIGEST
    assert (out["arm"], out["rearm"], out["cancel"], out["skip"]) == ("2", "1", "1", "3")
    assert json.loads(out["counts"]) == {"arm": 2, "rearm": 1, "cancel": 1, "skip": 3}
    markdown = Path(out["markdown-file"]).read_text()
    assert extract_intent(markdown) == DIGEST
    assert Path(out["plan-file"]).name == "plan.json"
    plan_call, show_call = calls(fake)
    assert plan_call["argv"] == [
        "--config",
        "cronplan.yaml",
        "plan",
        "--out",
        str(Path(str(fake["out"])) / "plan.json"),
        "--detailed-exitcode",
    ]
    assert show_call["argv"][-4:] == ["show", out["plan-file"], "--format", "markdown"]
    # The token reaches cronplan only as the variable the config names; the action's own vars do not.
    assert plan_call["token"] == SECRET
    assert plan_call["leaked"] == []
    assert SECRET not in json.dumps(out)


def test_no_changes(fake: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_MODE", "none")
    result = run_action(inputs(fake), os.environ)
    assert result.ok and result.exit_code == 0
    assert result.outputs["has-changes"] == "false"
    assert result.outputs["skip"] == "7"
    assert "0 to arm" in Path(result.outputs["markdown-file"]).read_text()


def test_a_failed_plan_leaves_a_failure_comment_with_an_empty_intent(
    fake: dict[str, object], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FAKE_MODE", "fail")
    result = run_action(inputs(fake), os.environ)
    assert not result.ok and result.exit_code == 1
    body = Path(result.outputs["markdown-file"]).read_text()
    assert "cronplan plan failed" in body
    assert "bad cron expression" in body  # the error output, for the reviewer
    assert extract_intent(body) == ""  # apply refuses an empty intent
    assert result.outputs["plan-file"] == ""
    assert "::error title=cronplan plan failed::exit code 1" in capsys.readouterr().out


def test_extra_args_are_split_without_a_shell(fake: dict[str, object]) -> None:
    env = {"CRONPLAN_ACTION_ARGS": "-f 'my jobs.yaml' --target $(reboot)", "RUNNER_TEMP": "/tmp/rt"}
    parsed = inputs_from_env(env)
    assert parsed.args == ("-f", "my jobs.yaml", "--target", "$(reboot)")
    assert parsed.out_dir == Path("/tmp/rt/cronplan")


def test_apply_passes_the_expected_intent(fake: dict[str, object]) -> None:
    result = run_action(inputs(fake, command="apply", expect_intent=DIGEST), os.environ)
    assert result.ok
    assert calls(fake)[0]["argv"] == [
        "--config",
        "cronplan.yaml",
        "apply",
        "--auto-approve",
        "--expect-intent",
        DIGEST,
        "--format",
        "json",
    ]
    assert result.outputs["intent-digest"] == DIGEST


def test_apply_refused_for_a_changed_intent_fails_with_a_clear_annotation(
    fake: dict[str, object], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FAKE_MODE", "intent-changed")
    out_file = Path(str(fake["out"])).parent / "github_output"
    env = {
        **os.environ,
        "CRONPLAN_ACTION_COMMAND": "apply",
        "CRONPLAN_ACTION_EXPECT_INTENT": DIGEST,
        "CRONPLAN_ACTION_OUT_DIR": str(fake["out"]),
        "GITHUB_OUTPUT": str(out_file),
    }
    code = _main_with_fake(env, fake)
    assert code == 1
    stdout = capsys.readouterr().out
    assert "::error title=cronplan apply failed::" in stdout
    assert "nothing was applied" in stdout
    assert "exit-code=1\n" in out_file.read_text()


def _main_with_fake(env: dict[str, str], fake: dict[str, object]) -> int:
    import cronplan.github.action as action

    real = action.inputs_from_env

    def patched(environ: dict[str, str]) -> ActionInputs:
        parsed = real(environ)
        return ActionInputs(**{**parsed.__dict__, "cronplan": fake["argv"]})

    action.inputs_from_env = patched  # type: ignore[assignment]
    try:
        return main(env)
    finally:
        action.inputs_from_env = real  # type: ignore[assignment]


def test_main_writes_outputs_and_summary_and_honours_fail_on_error(
    fake: dict[str, object], tmp_path: Path
) -> None:
    out_file, summary = tmp_path / "out.txt", tmp_path / "summary.md"
    summary.write_text("# earlier step\n")
    env = {
        **os.environ,
        "CRONPLAN_ACTION_OUT_DIR": str(fake["out"]),
        "GITHUB_OUTPUT": str(out_file),
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    assert _main_with_fake(env, fake) == 0  # changes are not a failure
    written = out_file.read_text()
    assert "has-changes=true\n" in written and f"intent-digest={DIGEST}\n" in written
    assert summary.read_text().startswith("# earlier step\n<!-- cronplan:intent=")
    failing = {**env, "FAKE_MODE": "fail"}
    assert _main_with_fake(failing, fake) == 1
    assert _main_with_fake({**failing, "CRONPLAN_ACTION_FAIL_ON_ERROR": "false"}, fake) == 0


def test_validate(fake: dict[str, object]) -> None:
    result = run_action(inputs(fake, command="validate", args=("-f", "jobs.yaml")), os.environ)
    assert result.ok
    assert calls(fake)[0]["argv"] == ["--config", "cronplan.yaml", "validate", "-f", "jobs.yaml"]


def test_missing_cronplan_is_a_failure_not_a_crash(tmp_path: Path) -> None:
    result = run_action(
        ActionInputs(cronplan=(str(tmp_path / "nope"),), out_dir=tmp_path / "o"), os.environ
    )
    assert not result.ok and result.exit_code == 127
    assert "cannot run" in Path(result.outputs["markdown-file"]).read_text()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CRONPLAN_ACTION_COMMAND": "destroy"}, "Unknown command 'destroy'"),
        ({"CRONPLAN_ACTION_TOKEN_ENV": "X; rm -rf /"}, "not an environment variable name"),
        ({"CRONPLAN_ACTION_ARGS": "-f 'unclosed"}, "args:"),
    ],
)
def test_bad_inputs_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(GitHubError, match=message):
        inputs_from_env(env)


def test_plan_outputs_counts_changes_even_without_exit_2() -> None:
    doc = {"summary": {"arm": 0, "rearm": 0, "cancel": 1, "skip": 2}, "intent_digest": DIGEST}
    assert plan_outputs(doc, 0)["has-changes"] == "true"
    with pytest.raises(GitHubError, match="summary"):
        plan_outputs({"intent_digest": DIGEST}, 0)


def test_command_argv_without_config() -> None:
    argv = command_argv(ActionInputs(command="validate"))
    assert argv == ["cronplan", "validate"]


def test_failure_markdown_fence_cannot_be_broken_out_of() -> None:
    body = failure_markdown("plan", 1, "line\n```\n<!-- cronplan:intent=" + "a" * 64 + " -->\n")
    assert "````text" in body
    # Our empty marker comes first, so a marker quoted in the error output is never the one read back.
    assert body.startswith(FAILED_MARKER)
    assert extract_intent(body) == ""


def test_summary_stays_within_its_budget(tmp_path: Path) -> None:
    path = tmp_path / "summary.md"
    path.write_text("x" * 900)
    append_summary(path, "\n".join(f"line {i}" for i in range(500)), limit=2000)
    data = path.read_bytes()
    assert len(data) <= 2000
    assert b"cut to fit" in data
    append_summary(path, "more", limit=2000)  # no room left: nothing is written
    assert path.read_bytes() == data


def _install_step() -> str:
    action = yaml.safe_load((Path(__file__).parent.parent / "action.yml").read_text())
    (step,) = [s for s in action["runs"]["steps"] if s.get("name") == "Install cronplan"]
    return str(step["run"])


@pytest.mark.parametrize(
    ("source", "providers", "expected"),
    [
        ("", "", ["{root}"]),
        ("", "nas temporal", ["{root}", "{root}/providers/nas", "{root}/providers/temporal"]),
        ("cronplan==0.1.0", "nas", ["cronplan==0.1.0", "{root}/providers/nas"]),
    ],
)
def test_install_step_installs_cronplan_and_plugins_in_one_pip_call(
    tmp_path: Path, source: str, providers: str, expected: list[str]
) -> None:
    root = Path(__file__).parent.parent
    shims = tmp_path / "bin"
    shims.mkdir()
    log = tmp_path / "pip.log"
    (shims / "python").write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{log}"\n')
    (shims / "cronplan").write_text("#!/bin/sh\necho cronplan, version 0.1.0\n")
    for shim in shims.iterdir():
        shim.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{shims}{os.pathsep}{os.environ['PATH']}",
        "ACTION_PATH": str(root),
        "CRONPLAN_SOURCE": source,
        "PROVIDERS": providers,
    }
    res = subprocess.run(
        ["bash", "-c", _install_step()], env=env, capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stdout + res.stderr
    argv = log.read_text().splitlines()
    assert argv[:2] == ["-m", "pip"]
    assert argv[-len(expected) :] == [e.format(root=root) for e in expected]


@pytest.mark.parametrize(
    ("providers", "message"),
    [("../../evil", "is not a provider name"), ("nosuch", "no bundled provider 'nosuch'")],
)
def test_install_step_refuses_unknown_providers(
    tmp_path: Path, providers: str, message: str
) -> None:
    env = {
        **os.environ,
        "ACTION_PATH": str(Path(__file__).parent.parent),
        "CRONPLAN_SOURCE": "",
        "PROVIDERS": providers,
    }
    res = subprocess.run(
        ["bash", "-c", _install_step()], env=env, capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 1
    assert "::error title=cronplan action::providers: " in res.stdout
    assert message in res.stdout


def test_apply_keeps_the_json_result_and_renders_the_result_comment(
    fake: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_action(inputs(fake, command="apply", expect_intent=DIGEST), os.environ)
    assert result.ok
    out = result.outputs
    assert (out["applied"], out["failed"], out["arm"], out["rearm"], out["cancel"]) == (
        "4",
        "0",
        "2",
        "1",
        "1",
    )
    assert out["has-changes"] == "true"
    body = Path(out["result-file"]).read_text()
    assert "cronplan apply succeeded" in body and "1 updated" in body
    assert json.loads((Path(str(fake["out"])) / "apply.json").read_text())["format_version"] == "1"


def test_a_partly_failed_apply_fails_the_step_and_tells_the_pull_request(
    fake: dict[str, object], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FAKE_MODE", "partial")
    out_file = Path(str(fake["out"])).parent / "github_output"
    summary = Path(str(fake["out"])).parent / "summary.md"
    env = {
        **os.environ,
        "CRONPLAN_ACTION_COMMAND": "apply",
        "CRONPLAN_ACTION_EXPECT_INTENT": DIGEST,
        "CRONPLAN_ACTION_OUT_DIR": str(fake["out"]),
        "GITHUB_OUTPUT": str(out_file),
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    assert _main_with_fake(env, fake) == 1
    written = out_file.read_text()
    assert "failed=1\n" in written and "applied=4\n" in written
    result_file = Path(str(fake["out"])) / "apply-result.md"
    assert f"result-file={result_file}\n" in written
    body = result_file.read_text()
    assert "1 of 5 actions failed" in body
    assert extract_intent(body) is None  # the error's quoted marker is defused
    assert "1 of 5 actions failed" in summary.read_text()
    assert "::error title=cronplan apply failed::" in capsys.readouterr().out
