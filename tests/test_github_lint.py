"""The workflows and the action: linted by actionlint and zizmor, and held to the project's CI rules."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted([*ROOT.glob(".github/workflows/*.yml"), *ROOT.glob("examples/github/*.yml")])
ACTION = ROOT / "action.yml"
PIN_RE = re.compile(r"^\s*-?\s*uses:\s*(\S+)@(\S+)(?:\s+#\s*(\S+))?\s*$")


def lint_env() -> dict[str, str]:
    # The linters installed next to this interpreter (a venv's bin/) come first.
    bindir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHON": sys.executable,
    }


def run_lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(root / "scripts" / "lint-workflows")],
        capture_output=True,
        text=True,
        env=lint_env(),
        timeout=600,
    )


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_workflows_and_action_have_no_findings() -> None:
    res = run_lint(ROOT)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "lint-workflows: no findings" in res.stdout
    assert "examples/github/cronplan-plan.yml" in res.stdout  # the examples are linted too
    assert "action.yml" in res.stdout


def test_the_linters_do_catch_an_unsafe_workflow(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    for name in ("lint-workflows", "lint-requirements.txt"):
        shutil.copy2(ROOT / "scripts" / name, tmp_path / "scripts" / name)
    action = ACTION.read_text()
    action += "    - name: sloppy\n      shell: bash\n      run: cp $SOURCE /tmp\n"
    (tmp_path / "action.yml").write_text(action)
    wf = tmp_path / ".github" / "workflows"
    wf.mkdir(parents=True)
    (wf / "bad.yml").write_text(
        "name: bad\n"
        "on: pull_request_target\n"
        "jobs:\n"
        "  plan:\n"
        "    runs-on: ubuntu-latest\n"
        "    steps:\n"
        "      - uses: actions/checkout@v4\n"
        '      - run: echo "${{ github.event.pull_request.title }}"\n'
        "      - run: echo ${{ steps.nope.outputs.x }}\n"
    )
    res = run_lint(tmp_path)
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert 'property "nope" is not defined' in out  # actionlint
    assert "unpinned-uses" in out and "template-injection" in out  # zizmor
    assert "SC2086" in out  # shellcheck over the action's run: steps
    assert "lint-workflows: findings above" in out


@pytest.mark.parametrize("path", [*WORKFLOWS, ACTION], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_action_is_pinned_by_full_sha_with_a_version_comment(path: Path) -> None:
    lines = [line for line in path.read_text().splitlines() if re.match(r"^\s*-?\s*uses:", line)]
    remote = [line for line in lines if not re.match(r"^\s*-?\s*uses:\s*\./", line)]
    assert remote, "no uses: lines"
    for line in remote:
        match = PIN_RE.match(line)
        assert match is not None, line
        action, ref, comment = match.groups()
        assert re.fullmatch(r"[0-9a-f]{40}", ref), f"{action}@{ref} is not pinned by SHA"
        assert comment and re.fullmatch(r"v\d+(\.\d+)*", comment), f"{action}: no version comment"


def test_the_same_action_has_the_same_pin_everywhere() -> None:
    seen: dict[str, set[str]] = {}
    for path in [*WORKFLOWS, ACTION]:
        for line in path.read_text().splitlines():
            match = PIN_RE.match(line)
            if match and match.group(1).startswith("actions/"):
                seen.setdefault(match.group(1), set()).add(f"{match.group(2)} {match.group(3)}")
    assert seen.keys() >= {"actions/checkout", "actions/setup-python", "actions/upload-artifact"}
    assert {k: v for k, v in seen.items() if len(v) > 1} == {}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: str(p.relative_to(ROOT)))
def test_least_privilege_and_no_templates_in_shell(path: Path) -> None:
    doc = load(path)
    assert doc["permissions"] == {}, "top-level permissions must be {}"
    for name, job in doc["jobs"].items():
        assert "permissions" in job, f"job {name} has no permissions block"
        assert "write-all" not in str(job["permissions"])
        for step in job["steps"]:
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False
            if "run" in step:
                assert "${{" not in step["run"], f"{name}: template expanded inside run:"
            for key, value in (step.get("with") or {}).items():
                if "secrets." in str(value):
                    assert key == "provider-token", f"{name}: a secret in with.{key}"


def test_action_passes_inputs_to_shell_only_through_env() -> None:
    action = load(ACTION)
    assert action["runs"]["using"] == "composite"
    for step in action["runs"]["steps"]:
        if "run" in step:
            assert "${{" not in step["run"]
    run = next(s for s in action["runs"]["steps"] if s.get("id") == "run")
    assert run["env"]["CRONPLAN_ACTION_TOKEN"] == "${{ inputs.provider-token }}"
    outputs = set(action["outputs"])
    assert outputs >= {
        "exit-code",
        "has-changes",
        "intent-digest",
        "arm",
        "rearm",
        "cancel",
        "skip",
        "counts",
    }


def test_ci_runs_lint_types_tests_on_every_python_and_build() -> None:
    ci = load(ROOT / ".github" / "workflows" / "ci.yml")
    jobs = ci["jobs"]
    runs = {
        name: " ".join(str(s.get("run", "")) for s in job["steps"]) for name, job in jobs.items()
    }
    assert "ruff check" in runs["lint"] and "ruff format --check" in runs["lint"]
    assert (
        "mypy --strict cronplan providers/nas/cronplan_nas providers/temporal/cronplan_temporal"
        in runs["types"]
    )
    assert jobs["tests"]["strategy"]["matrix"]["python"] == ["3.10", "3.11", "3.12", "3.13"]
    assert "bash .ci/run" in runs["tests"]
    assert "python -m build" in runs["build"]
