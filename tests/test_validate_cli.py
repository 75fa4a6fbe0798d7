"""`cronplan validate` and `cronplan next`, in-process and as a real subprocess."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data" / "jobs"
EXAMPLES = Path(__file__).parent.parent / "examples"

BERLIN = {"id": "berlin", "schedule": {"kind": "cron", "expr": "30 2 * * *", "tz": "Europe/Berlin"}}


def test_validate_success_line_on_stdout(project) -> None:
    # With a runner configured, jobs without command/http draw no warning (see test_cli_runner_required).
    project.write_config("jobs: jobs.json\nprovider: local\ntimezone: UTC\nrunner: [cat]\n")
    project.write_jobs([BERLIN, {"id": "b", "schedule": {"kind": "interval", "seconds": 5}}])
    res = project.cli("validate")
    assert res.exit_code == 0, res.stderr
    assert res.stdout == "jobs.json: 2 jobs valid.\n"
    assert res.stderr == ""


def test_validate_reports_all_problems_on_stderr_exit_1(project) -> None:
    shutil.copy(DATA / "invalid" / "typos.json", project.root / "jobs.json")
    res = project.cli("validate")
    assert res.exit_code == 1
    assert res.stdout == ""
    lines = res.stderr.splitlines()
    assert lines == [
        "jobs.json:5:7: /jobs/0/nmae: unknown field 'nmae' (did you mean 'name'?)",
        "jobs.json:7:7: /jobs/0/comand: unknown field 'comand' (did you mean 'command'?)",
        "jobs.json:11:28: /jobs/1/schedule/kind: \"intervall\" is not allowed (did you mean 'interval'?); "
        "expected one of: cron, interval, once",
        "jobs.json:14:3: /update_at: unknown field 'update_at' (did you mean 'updated_at'?)",
    ]


def test_validate_dash_f_overrides_the_configured_path(project) -> None:
    shutil.copy(DATA / "valid" / "hermes.json", project.root / "hermes.json")
    res = project.cli("validate", "-f", "hermes.json")
    assert (res.exit_code, res.stdout) == (0, "hermes.json: 4 jobs valid.\n")


def test_validate_yaml_jobs_from_config(project) -> None:
    shutil.copy(EXAMPLES / "jobs.yaml", project.root / "jobs.yaml")
    project.write_config("jobs: jobs.yaml\n")
    res = project.cli("validate")
    assert (res.exit_code, res.stdout) == (0, "jobs.yaml: 3 jobs valid.\n")


def test_missing_jobs_file_is_a_clean_error(project) -> None:
    res = project.cli("validate", "-f", "nope.json")
    assert res.exit_code == 1
    assert "jobs file not found: nope.json" in res.stderr
    assert "Traceback" not in res.stderr


def test_bad_config_is_located(project) -> None:
    project.write_config("jobs: jobs.json\nprovder: local\n")
    res = project.cli("validate")
    assert res.exit_code == 1
    assert res.stderr.strip().endswith(
        "cronplan.yaml:2:1: /provder: unknown field 'provder' (did you mean 'provider'?)"
    )


def test_github_actions_annotations_on_stderr(project) -> None:
    shutil.copy(DATA / "invalid" / "semantic.json", project.root / "jobs.json")
    res = project.cli("validate", env={"GITHUB_ACTIONS": "true"})
    assert res.exit_code == 1
    assert res.stdout == ""  # stdout is the product alone, even in CI
    lines = res.stderr.splitlines()
    annotations = [line for line in lines if line.startswith("::error ")]
    assert len(annotations) == len(lines) - len(annotations) == 7
    assert annotations[0].startswith(
        "::error file=jobs.json,line=2,col=52::/jobs/0/schedule/expr: "
    )
    assert annotations[2] == (
        "::error file=jobs.json,line=4,col=10::/jobs/2/id: duplicate job id 'a' (first defined at line 2)"
    )


def test_no_annotations_outside_github_actions(project) -> None:
    shutil.copy(DATA / "invalid" / "semantic.json", project.root / "jobs.json")
    res = project.cli("validate")
    assert res.stdout == ""


def test_next_across_spring_dst_in_berlin_follows_debian_cron(project) -> None:
    project.write_jobs([BERLIN])
    res = project.cli("next", "berlin", "-n", "4", "--now", "2026-03-27T12:00:00Z")
    assert res.exit_code == 0, res.stderr
    assert res.stdout.splitlines() == [
        "2026-03-28 02:30:00 CET (+0100)   2026-03-28T01:30:00Z",
        # 02:30 does not exist on 29 March: Debian cron runs it right after the jump.
        "2026-03-29 03:00:00 CEST (+0200)  2026-03-29T01:00:00Z",
        "2026-03-30 02:30:00 CEST (+0200)  2026-03-30T00:30:00Z",
        "2026-03-31 02:30:00 CEST (+0200)  2026-03-31T00:30:00Z",
    ]


def test_next_across_autumn_dst_in_berlin_fires_once(project) -> None:
    project.write_jobs([
        BERLIN,
        {"id": "twice", "schedule": {"kind": "cron", "expr": "0,30 2 * * *", "tz": "Europe/Berlin"}},
        {"id": "hourly", "schedule": {"kind": "cron", "expr": "30 * * * *", "tz": "Europe/Berlin"}},
    ])  # fmt: skip
    res = project.cli("next", "berlin", "-n", "3", "--now", "2026-10-24T12:00:00Z")
    assert res.stdout.splitlines() == [
        "2026-10-25 02:30:00 CEST (+0200)  2026-10-25T00:30:00Z",  # the first 02:30 only
        "2026-10-26 02:30:00 CET (+0100)   2026-10-26T01:30:00Z",
        "2026-10-27 02:30:00 CET (+0100)   2026-10-27T01:30:00Z",
    ]
    # Fixed times: 02:00 and 02:30 once each, in the first (summer-time) 02:xx hour.
    res = project.cli("next", "twice", "-n", "3", "--now", "2026-10-24T12:00:00Z")
    assert [line.split()[-1] for line in res.stdout.splitlines()] == [
        "2026-10-25T00:00:00Z",
        "2026-10-25T00:30:00Z",
        "2026-10-26T01:00:00Z",
    ]
    # A wildcard hour runs on "new time": 02:30 comes twice, once in CEST and once in CET.
    res = project.cli("next", "hourly", "-n", "3", "--now", "2026-10-24T23:45:00Z")
    assert res.stdout.splitlines() == [
        "2026-10-25 02:30:00 CEST (+0200)  2026-10-25T00:30:00Z",
        "2026-10-25 02:30:00 CET (+0100)   2026-10-25T01:30:00Z",
        "2026-10-25 03:30:00 CET (+0100)   2026-10-25T02:30:00Z",
    ]


def test_next_of_a_utc_interval_job(project) -> None:
    project.write_jobs([{"id": "i", "schedule": {"kind": "interval", "seconds": 90}}])
    res = project.cli("next", "i", "-n", "2", "--now", "2026-01-01T00:00:00Z")
    assert res.stdout.splitlines() == [
        "2026-01-01 00:01:30 UTC (+0000)  2026-01-01T00:01:30Z",
        "2026-01-01 00:03:00 UTC (+0000)  2026-01-01T00:03:00Z",
    ]


def test_next_with_no_future_occurrence(project) -> None:
    project.write_jobs(
        [{"id": "gone", "schedule": {"kind": "once", "run_at": "2020-01-01T00:00:00Z"}}]
    )
    res = project.cli("next", "gone", "--now", "2026-01-01T00:00:00Z")
    assert res.exit_code == 0
    assert res.stdout == "gone: no future occurrence after 2026-01-01T00:00:00Z.\n"


def test_next_unknown_job_suggests_close_ids(project) -> None:
    project.write_jobs([BERLIN])
    res = project.cli("next", "berlim", "--now", "2026-11-27T09:00:00Z")
    assert res.exit_code == 1
    assert (
        res.stderr.strip() == "Error: no job with id 'berlim' in jobs.json. Did you mean: berlin?"
    )


def test_next_bad_now_is_a_usage_error(project) -> None:
    project.write_jobs([BERLIN])
    res = project.cli("next", "berlin", "--now", "yesterday")
    assert res.exit_code == 64
    assert "--now" in res.stderr and "not an RFC 3339 timestamp" in res.stderr
    assert "Traceback" not in res.stderr


def test_next_on_a_paused_job_notes_it(project) -> None:
    project.write_jobs([dict(BERLIN, state="paused")])
    res = project.cli("next", "berlin", "-n", "1", "--now", "2026-01-01T00:00:00Z")
    assert res.exit_code == 0
    assert "paused" in res.stderr
    assert len(res.stdout.splitlines()) == 1


def test_subprocess_validate_and_next_on_the_examples(project) -> None:
    shutil.copy(EXAMPLES / "jobs.json", project.root / "jobs.json")
    res = project.run("validate")
    assert (res.exit_code, res.stdout) == (0, "jobs.json: 7 jobs valid.\n"), res.stderr
    res = project.run("next", "cache-warm", "-n", "2", "--now", "2026-11-26T10:15:00Z")
    assert res.exit_code == 0, res.stderr
    assert res.stdout.splitlines() == [
        "2026-11-26 11:00:30 UTC (+0000)  2026-11-26T11:00:30Z",
        "2026-11-26 12:00:30 UTC (+0000)  2026-11-26T12:00:30Z",
    ]


def test_subprocess_invalid_files_never_show_a_traceback(project) -> None:
    for path in sorted((DATA / "invalid").iterdir()):
        if path.name == "expected.json":
            continue
        res = project.run("validate", "-f", str(path))
        assert res.exit_code == 1, (path.name, res.stderr)
        assert "Traceback" not in res.stderr + res.stdout
        assert res.stderr.strip(), path.name
    res = project.run("next", "x", "--now", "garbage")
    assert res.exit_code == 64 and "Traceback" not in res.stderr


def test_subprocess_validate_json_written_by_fixture(project) -> None:
    project.write_jobs({"jobs": [BERLIN], "updated_at": "2026-11-26T00:00:00Z"})
    res = project.run("validate")
    assert res.exit_code == 0
    assert json.loads((project.root / "jobs.json").read_text())["jobs"][0]["id"] == "berlin"


@pytest.mark.parametrize("name", ["types.json", "yaml-errors.yaml"])
def test_cli_output_matches_the_library_problems(project, name: str) -> None:
    from cronplan.documents.jobsfile import load_jobs
    from cronplan.errors import ValidationError

    target = project.root / name
    shutil.copy(DATA / "invalid" / name, target)
    res = project.cli("validate", "-f", name)
    with pytest.raises(ValidationError) as info:
        load_jobs(target)
    assert [line.split(": ", 1)[1] for line in res.stderr.splitlines()] == [
        str(p).split(": ", 1)[1] for p in info.value.problems
    ]
