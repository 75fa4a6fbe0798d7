"""`cronplan schema`, `cronplan completion`, and `validate`/`next --format json`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from cronplan.documents.yamlio import load_yaml
from tests.fixtures_core import Project

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples"
BERLIN = {"id": "berlin", "schedule": {"kind": "cron", "expr": "30 2 * * *", "tz": "Europe/Berlin"}}


def _schema(project: Project, name: str) -> dict[str, Any]:
    res = project.cli("schema", name)
    assert res.exit_code == 0, res.stderr
    doc: dict[str, Any] = json.loads(res.stdout)
    jsonschema.Draft202012Validator.check_schema(doc)
    return doc


def test_schema_output_validates_the_examples(project: Project) -> None:
    jobs = jsonschema.Draft202012Validator(_schema(project, "jobs"))
    jobs.validate(json.loads((EXAMPLES / "jobs.json").read_text()))
    jobs.validate(load_yaml((EXAMPLES / "jobs.yaml").read_text(), "jobs.yaml"))  # cronplan's YAML
    assert not jobs.is_valid({"jobs": [{"id": "a", "schedul": {}}]})
    config = jsonschema.Draft202012Validator(_schema(project, "config"))
    config.validate(yaml.safe_load((EXAMPLES / "cronplan.yaml").read_text()))


def test_plan_schema_validates_a_real_plan(project: Project) -> None:
    project.write_jobs([{**BERLIN, "command": ["true"]}])
    res = project.cli("plan", "--format", "json", "--now", "2031-05-01T00:00:00Z")
    assert res.exit_code == 0, res.stderr
    jsonschema.Draft202012Validator(_schema(project, "plan")).validate(json.loads(res.stdout))


@pytest.mark.parametrize("name", ["jobs", "config", "plan"])
def test_schema_ids_are_stable_versioned_urls_and_nothing_is_fetched(
    project: Project, name: str
) -> None:
    doc = _schema(project, name)
    assert doc["$id"] == f"https://cronplan.dev/schemas/v1/{name}.schema.json"
    # Every reference stays inside the document: validating never needs the network.
    refs = [value for key, value in _walk(doc) if key == "$ref"]
    assert refs and all(ref.startswith("#") for ref in refs)


def _walk(node: Any) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            out.append((key, value))
            out.extend(_walk(value))
    elif isinstance(node, list):
        for value in node:
            out.extend(_walk(value))
    return out


def test_jobs_file_may_name_its_schema(project: Project) -> None:
    project.write_jobs(
        {"$schema": "https://cronplan.dev/schemas/v1/jobs.schema.json", "jobs": [BERLIN]}
    )
    res = project.cli("validate")
    assert (res.exit_code, res.stdout) == (0, "jobs.json: 1 job valid.\n"), res.stderr


def test_unknown_schema_name_is_a_usage_error(project: Project) -> None:
    res = project.cli("schema", "jbos")
    assert res.exit_code == 64
    assert "'jbos' is not one of 'jobs', 'config', 'plan'" in res.stderr


def test_validate_json_lists_every_problem_located(project: Project) -> None:
    shutil.copy(
        ROOT / "tests" / "data" / "jobs" / "invalid" / "typos.json", project.root / "jobs.json"
    )
    res = project.cli("validate", "--format", "json")
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    assert (doc["format_version"], doc["valid"], doc["jobs"], doc["warnings"]) == (
        "1",
        False,
        None,
        [],
    )
    assert doc["problems"][0] == {
        "file": "jobs.json",
        "line": 5,
        "column": 7,
        "pointer": "/jobs/0/nmae",
        "message": "unknown field 'nmae' (did you mean 'name'?)",
    }
    assert [p["pointer"] for p in doc["problems"]] == [
        "/jobs/0/nmae",
        "/jobs/0/comand",
        "/jobs/1/schedule/kind",
        "/update_at",
    ]
    # stderr keeps the usual lines, as in text mode.
    assert res.stderr.splitlines()[0].startswith("jobs.json:5:7: /jobs/0/nmae: unknown field")


def test_validate_json_warns_about_jobs_nothing_can_run(project: Project) -> None:
    project.write_jobs(
        [
            BERLIN,  # no command, no http, no runner configured
            {"id": "cmd", "command": ["true"], "schedule": {"kind": "interval", "seconds": 60}},
            {"id": "off", "enabled": False, "schedule": {"kind": "interval", "seconds": 60}},
        ]
    )
    res = project.cli("validate", "--format", "json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert (doc["valid"], doc["jobs"], doc["problems"]) == (True, 3, [])
    # Every job nothing could run is named, a disabled one too (plan and apply refuse them all).
    warning, disabled = doc["warnings"]
    assert (warning["pointer"], warning["line"], warning["column"]) == ("/jobs/0", 3, 5)
    assert disabled["pointer"] == "/jobs/2"
    assert "this job has no 'command' or 'http' action and no 'runner'" in warning["message"]
    project.write_config("jobs: jobs.json\nrunner: [hermes, cron, run]\n")
    doc = json.loads(project.cli("validate", "--format", "json").stdout)
    assert doc["warnings"] == []


def test_next_json_has_utc_and_local_times(project: Project) -> None:
    project.write_jobs([BERLIN])
    res = project.cli(
        "next", "berlin", "-n", "2", "--now", "2026-03-28T12:00:00Z", "--format", "json"
    )
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout) == {
        "format_version": "1",
        "job_id": "berlin",
        "tz": "Europe/Berlin",
        "now": "2026-03-28T12:00:00Z",
        "inactive": None,
        "fire_times": [
            {"utc": "2026-03-29T01:00:00Z", "local": "2026-03-29T03:00:00+02:00"},
            {"utc": "2026-03-30T00:30:00Z", "local": "2026-03-30T02:30:00+02:00"},
        ],
    }


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("bash", "complete -o nosort -F"),
        ("zsh", "#compdef cronplan"),
        ("fish", "complete --no-files --command cronplan"),
    ],
)
def test_completion_scripts(project: Project, shell: str, marker: str) -> None:
    res = project.cli("completion", shell)
    assert res.exit_code == 0, res.stderr
    assert marker in res.stdout
    assert "_CRONPLAN_COMPLETE" in res.stdout


def _complete(project: Project, words: str) -> list[str]:
    cword = len(words.split()) - (0 if words.endswith(" ") else 1)
    res = project.run(
        env={
            "_CRONPLAN_COMPLETE": "bash_complete",
            "COMP_WORDS": words,
            "COMP_CWORD": str(cword),
        }
    )
    assert res.exit_code == 0, res.stderr
    return [line.split(",", 1)[1] for line in res.stdout.splitlines() if line]


def test_job_ids_complete_from_jobs_json(project: Project) -> None:
    project.write_jobs(
        [
            {"id": "backup", "schedule": {"kind": "interval", "seconds": 60}},
            {"id": "bench", "schedule": {"kind": "interval", "seconds": 60}},
            {"id": "zeta", "schedule": {"kind": "interval", "seconds": 60}},
        ]
    )
    config = str(project.config)
    # The real completion protocol, in a real process, as the shell script drives it.
    assert _complete(project, f"cronplan --config {config} next b") == ["backup", "bench"]
    assert _complete(project, f"cronplan --config {config} plan --target ") == [
        "backup",
        "bench",
        "zeta",
    ]
    assert _complete(project, f"cronplan --config {config} plan --exclude z") == ["zeta"]
    assert "import" in _complete(project, "cronplan im")
    (project.root / "jobs.json").write_text("{broken")
    assert _complete(project, f"cronplan --config {config} next b") == []
