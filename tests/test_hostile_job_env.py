"""The environment jobs run with (docs/jobs.md): cronplan's secret variables never reach a job or the
runner, whatever ``job_env`` says, and ``job_env: clean`` passes only PATH, HOME, LANG, TZ and the job's
own env. Real subprocess jobs write the environment they see; `apply` and `fire` run as real processes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

NOW = "2026-01-01T00:00:30Z"
FIRE_AT = "2026-01-01T00:00:00Z"
DUMP = "import json, os, sys; open(sys.argv[1], 'w').write(json.dumps(dict(os.environ)))"
# What a runner sees: the same dump, the job JSON arriving on stdin.
RUNNER_DUMP = "import json, os, sys; sys.stdin.read(); open(sys.argv[1], 'w').write(json.dumps(dict(os.environ)))"

SECRETS = {
    "CRONPLAN_NAS_TOKEN": "nas-token-value",
    "MY_NAS_TOKEN": "custom-token-value",
    "CRONPLAN_WEBHOOK_SECRET": "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=",
    "HOOK_URL": "https://hooks.example/T0/B0/abc",
    "STATUS_TOKEN": "status-token-value",
    "PGPASSWORD": "pg-password-value",
}
HARMLESS = {"KEEP_ME": "visible", "LANG": "C.UTF-8", "TZ": "Europe/Berlin"}


def _config(
    project, job_env: str | None, state_file: Path, runner: list[str] | None = None
) -> None:  # type: ignore[no-untyped-def]
    lines = [
        "jobs: jobs.json",
        "provider: local",
        "state: env:MY_STATE_DSN",
        "notify: {url_env: HOOK_URL}",
        "serve: {status_token_env: STATUS_TOKEN}",
        "providers:",
        "  nas: {token_env: MY_NAS_TOKEN}",
    ]
    if job_env:
        lines.append(f"job_env: {job_env}")
    if runner:
        lines.append("runner: " + json.dumps(runner))
    project.write_config("\n".join(lines) + "\n")


def _seen(
    project, job: dict[str, Any], *, job_env: str | None, runner: list[str] | None = None
) -> dict[str, str]:  # type: ignore[no-untyped-def]
    state = project.root / "state.db"
    _config(project, job_env, state, runner)
    project.write_jobs([job])
    env = {**SECRETS, **HARMLESS, "MY_STATE_DSN": f"sqlite:///{state}"}
    res = project.run("apply", "--auto-approve", "--now", NOW, env=env)
    assert res.exit_code == 0, res.stderr
    res = project.run("fire", "--job-id", job["id"], "--fire-at", FIRE_AT, "--now", NOW, env=env)
    assert res.exit_code == 0, res.stderr
    seen: dict[str, str] = json.loads((project.root / "env.json").read_text())
    return seen


def _command_job(project, **extra: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return {
        "id": "envdump",
        "schedule": {"kind": "interval", "seconds": 60},
        "command": [sys.executable, "-c", DUMP, str(project.root / "env.json")],
        **extra,
    }


@pytest.mark.parametrize("job_env", [None, "inherit", "clean"])
def test_secret_variables_never_reach_a_command_job(project, job_env: str | None) -> None:
    seen = _seen(project, _command_job(project), job_env=job_env)
    for name in [*SECRETS, "MY_STATE_DSN"]:
        assert name not in seen, name
    for value in SECRETS.values():
        assert value not in json.dumps(seen)
    assert seen["CRONPLAN_JOB_ID"] == "envdump" and seen["CRONPLAN_FIRE_AT"] == FIRE_AT
    assert seen["LANG"] == "C.UTF-8" and seen["TZ"] == "Europe/Berlin"
    if job_env == "clean":
        assert "KEEP_ME" not in seen
    else:
        assert seen["KEEP_ME"] == "visible"


def test_clean_passes_only_path_home_lang_tz_and_the_jobs_own_env(project) -> None:
    job = _command_job(project, env={"OWN": "mine", "LANG": "de_DE.UTF-8"})
    seen = _seen(project, job, job_env="clean")
    seen.pop("LC_CTYPE", None)  # set by the job's own Python (PEP 538 locale coercion), not passed
    assert set(seen) <= {"PATH", "HOME", "LANG", "TZ", "OWN", "CRONPLAN_JOB_ID", "CRONPLAN_FIRE_AT"}
    assert seen["OWN"] == "mine" and seen["LANG"] == "de_DE.UTF-8" and "PATH" in seen


@pytest.mark.parametrize("job_env", [None, "clean"])
def test_the_runner_gets_the_same_treatment(project, job_env: str | None) -> None:
    job = {"id": "prompt-job", "schedule": {"kind": "interval", "seconds": 60}, "prompt": "hi"}
    runner = [sys.executable, "-c", RUNNER_DUMP, str(project.root / "env.json")]
    seen = _seen(project, job, job_env=job_env, runner=runner)
    for name in [*SECRETS, "MY_STATE_DSN"]:
        assert name not in seen, name
    assert ("KEEP_ME" in seen) is (job_env != "clean")


def test_job_env_must_be_inherit_or_clean(project) -> None:
    project.write_config("jobs: jobs.json\njob_env: empty\n")
    res = project.cli("validate")
    assert res.exit_code == 1
    assert res.stderr.startswith("cronplan.yaml:2:10: /job_env: ")


def test_runtime_job_environ_applies_the_configuration(tmp_path: Path) -> None:
    from cronplan.documents.config import parse_config
    from cronplan.project import Project

    config = parse_config(
        "job_env: clean\nproviders:\n  nas: {token_env: MY_TOKEN}\n",
        file="cronplan.yaml",
        base_dir=tmp_path,
    )
    environ = {"PATH": "/bin", "MY_TOKEN": "t0ken-value", "OTHER": "x", "TZ": "UTC"}
    rt = Project(config, environ=environ)
    try:
        assert rt.job_environ() == {"PATH": "/bin", "TZ": "UTC"}
    finally:
        rt.close()
