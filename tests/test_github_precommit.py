"""The pre-commit hook definition: well formed, matches the jobs files, and its entry really validates."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
HOOKS = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())


def hook() -> dict[str, object]:
    (found,) = [h for h in HOOKS if h["id"] == "cronplan-validate"]
    return found


def test_hook_definition() -> None:
    h = hook()
    assert h["language"] == "python"
    assert h["entry"] == "cronplan validate"
    assert h["pass_filenames"] is False
    assert {"id", "name", "entry", "language"} <= set(h)


@pytest.mark.parametrize(
    ("path", "matches"),
    [
        ("jobs.json", True),
        ("jobs.yaml", True),
        ("ops/cron/jobs.yml", True),
        ("cronplan.yaml", True),
        ("myjobs.json", False),
        ("jobs.json.bak", False),
        ("docs/jobs.md", False),
    ],
)
def test_hook_files_pattern(path: str, matches: bool) -> None:
    assert bool(re.search(str(hook()["files"]), path)) is matches


def test_hook_entry_validates_the_jobs_file(tmp_path: Path) -> None:
    # The console script installed with this interpreter (a venv's bin/), as pre-commit's env has it.
    beside = Path(sys.executable).parent / "cronplan"
    exe = str(beside) if beside.exists() else shutil.which("cronplan")
    assert exe, "the cronplan console script is not installed"
    (tmp_path / "cronplan.yaml").write_text("jobs: jobs.json\nprovider: local\n")
    good = {"jobs": [{"id": "nightly", "schedule": {"kind": "cron", "expr": "0 2 * * *"}}]}
    (tmp_path / "jobs.json").write_text(json.dumps(good))
    argv = [exe, *shlex.split(str(hook()["entry"]))[1:]]
    env = {k: v for k, v in os.environ.items() if k != "GITHUB_ACTIONS"}
    ok = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=60)
    assert ok.returncode == 0, ok.stderr
    (tmp_path / "jobs.json").write_text(
        '{"jobs": [{"id": "nightly", "schedule": {"kind": "cron", "expr": "61 2 * * *"}}]}'
    )
    bad = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode == 1
    assert re.search(r"jobs\.json:1:\d+: /jobs/0/schedule/expr: ", bad.stderr)
