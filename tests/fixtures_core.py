"""Core fixtures: a project directory and helpers to run the CLI in-process and as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str


@dataclass
class Project:
    """A throwaway project: cronplan.yaml + jobs.json in ``root``, local provider, SQLite ledger."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "cronplan.yaml"

    def write_jobs(self, jobs: list[dict[str, Any]] | dict[str, Any]) -> Path:
        doc = jobs if isinstance(jobs, dict) else {"jobs": jobs}
        path = self.root / "jobs.json"
        path.write_text(json.dumps(doc, indent=2) + "\n")
        return path

    def write_config(self, text: str) -> Path:
        self.config.write_text(text)
        return self.config

    def cli(
        self, *args: str, input: str | None = None, env: dict[str, str] | None = None
    ) -> Result:
        """Run the CLI in-process through the real error handler (cronplan.cli.root.run)."""
        from cronplan.cli.root import run

        runner = CliRunner()
        old = os.getcwd()
        os.chdir(self.root)
        try:
            holder: dict[str, int] = {}

            def target() -> None:
                holder["code"] = run(["--config", str(self.config), *args])

            res = runner.invoke(_wrap(target), [], input=input, env=env, catch_exceptions=False)
        finally:
            os.chdir(old)
        return Result(holder.get("code", res.exit_code), res.stdout, res.stderr)

    def run(
        self,
        *args: str,
        input: str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 120,
    ) -> Result:
        """Run ``python -m cronplan`` as a real subprocess in the project directory."""
        full_env = dict(os.environ)
        full_env.update(env or {})
        proc = subprocess.run(
            [sys.executable, "-m", "cronplan", "--config", str(self.config), *args],
            cwd=self.root,
            input=input,
            capture_output=True,
            text=True,
            env=full_env,
            timeout=timeout,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def apply(self, now: str | None = None, *, env: dict[str, str] | None = None) -> Result:
        """``cronplan apply --auto-approve [--now TS]`` as a subprocess; fires run only applied jobs."""
        args = ["apply", "--auto-approve"] + (["--now", now] if now else [])
        res = self.run(*args, env=env)
        assert res.exit_code == 0, res.stdout + res.stderr
        return res


def _wrap(fn: Callable[[], None]) -> Any:
    import click

    @click.command()
    def _cmd() -> None:
        fn()

    return _cmd


@pytest.fixture
def project(tmp_path: Path) -> Project:
    p = Project(tmp_path)
    p.write_config("jobs: jobs.json\nprovider: local\ntimezone: UTC\n")
    p.write_jobs([])
    return p
