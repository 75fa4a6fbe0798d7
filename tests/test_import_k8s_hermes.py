"""`cronplan import --from k8s` and `--from hermes`."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fixtures_core import Project
from tests.import_helpers import DATA, by_name, import_into, next_utc

K8S = DATA / "k8s"
HERMES = DATA / "hermes" / "jobs.json"


def test_cronjobs_become_jobs(project: Project) -> None:
    _, doc = import_into(project, "k8s", K8S / "cronjobs.yaml", K8S / "list.yaml")
    jobs = by_name(doc)
    assert sorted(jobs) == ["analytics/nightly-report", "cache-warmer", "weekly-cleanup"]
    report = jobs["analytics/nightly-report"]
    assert report["schedule"] == {"kind": "cron", "expr": "30 2 * * 1-5", "tz": "Europe/Berlin"}
    assert report["command"] == [
        "python",
        "-m",
        "report",
        "--since",
        "24h",
        "--out=/data/report.csv",
    ]
    assert report["env"] == {"REPORT_FORMAT": "csv"}  # the secretKeyRef one is reported, not copied
    assert (report["cwd"], report["timeout_seconds"]) == ("/app", 1800)
    warmer = jobs["cache-warmer"]  # "TZ=America/New_York */10 * * * *" and suspend: true
    assert warmer["schedule"] == {"kind": "cron", "expr": "*/10 * * * *", "tz": "America/New_York"}
    assert warmer["enabled"] is False
    assert jobs["weekly-cleanup"]["command"] == ["cleanup", "--older-than", "30d"]


def test_what_kubernetes_does_around_the_command_is_reported(project: Project) -> None:
    res, _ = import_into(project, "k8s", K8S / "cronjobs.yaml", K8S / "list.yaml")
    first, listed = K8S / "cronjobs.yaml", K8S / "list.yaml"
    for expected in (
        f"{first}:2: concurrencyPolicy is not carried over",
        f"{first}:2: startingDeadlineSeconds is not carried over",
        f"{first}:2: only the first container ('report') is carried over",
        f"{first}:2: env 'DB_PASSWORD' comes from valueFrom: not carried over",
        f"{first}:35: skipped: not a CronJob (kind: ConfigMap)",
        f"{listed}:22: not imported: the container has only args, so the image's entrypoint runs it",
        f"{listed}:36: not imported: schedule '@every 1h' has no exact cron equivalent",
    ):
        assert expected in res.stderr, expected


def test_round_trip_cronjob_schedules(project: Project) -> None:
    _, doc = import_into(project, "k8s", K8S / "cronjobs.yaml", K8S / "list.yaml")
    jobs = by_name(doc)
    # 30 2 * * 1-5 in Berlin from Friday 3 Jan 2031: Fri, then Mon and Tue (CET, UTC+1).
    assert next_utc(project, jobs["analytics/nightly-report"]["id"], "2031-01-02T12:00:00Z", 3) == [
        "2031-01-03T01:30:00Z",
        "2031-01-06T01:30:00Z",
        "2031-01-07T01:30:00Z",
    ]
    # @weekly: Sunday 00:00 UTC.
    assert next_utc(project, jobs["weekly-cleanup"]["id"], "2021-08-01T00:00:01Z", 2) == [
        "2021-08-08T00:00:00Z",
        "2021-08-15T00:00:00Z",
    ]
    # Every 10 minutes in New York: the zone does not move a wildcard-hour schedule.
    assert next_utc(project, jobs["cache-warmer"]["id"], "2030-01-01T00:05:00Z", 2) == [
        "2030-01-01T00:10:00Z",
        "2030-01-01T00:20:00Z",
    ]


def test_a_file_with_no_cronjob_is_an_error(project: Project, tmp_path: Path) -> None:
    other = tmp_path / "deploy.yaml"
    other.write_text("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n")
    res = project.cli("import", "--from", "k8s", str(other))
    assert res.exit_code == 1
    assert "no Kubernetes CronJob in it" in res.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: CronJob\nspec: [unclosed\n")
    res = project.cli("import", "--from", "k8s", str(broken))
    assert res.exit_code == 1
    assert f"{broken}:3: cannot import: invalid YAML" in res.stderr
    assert "Traceback" not in res.stderr


def test_hermes_file_is_normalised_and_keeps_runner_fields(project: Project) -> None:
    res, doc = import_into(project, "hermes", HERMES)
    jobs = {job["id"]: job for job in doc["jobs"]}
    digest = jobs["3f9a1c2b7d4e"]
    assert digest["prompt"].startswith("Collect the most important AI news")
    assert digest["skills"] == ["web-research", "summarise"]
    assert digest["origin"]["platform"] == "telegram"
    for runtime in ("next_run_at", "last_run_at", "fire_claim", "last_status", "created_at"):
        assert runtime not in digest
    assert digest["repeat"] == {"times": None}
    assert "_process_continuation" not in jobs["b71c0e9a22f3"]
    legacy = jobs["legacy-interval-cb050b"]
    assert legacy["schedule"] == {"kind": "interval", "minutes": 30, "display": "every 30m"}
    assert legacy["x-hermes-team_channel"] == "#ops"
    text = res.stderr
    assert f"{HERMES}:174: id 'legacy job!' is not a valid or unique cronplan id" in text
    assert f"{HERMES}:188: not imported: schedule '30m' is ambiguous" in text
    assert f"{HERMES}:195: id '3f9a1c2b7d4e' is not a valid or unique cronplan id" in text
    assert "repeat.completed=4" not in text  # that job is completed: nothing more would run


def test_hermes_round_trip_fires_as_the_original(project: Project) -> None:
    original = json.loads((DATA.parent / "jobs" / "valid" / "hermes.json").read_text())
    project.write_jobs(original)
    before = {
        job["id"]: next_utc(project, job["id"], "2026-11-30T07:00:00Z", 4)
        for job in original["jobs"]
    }
    import_into(project, "hermes", HERMES)
    after = {job_id: next_utc(project, job_id, "2026-11-30T07:00:00Z", 4) for job_id in before}
    assert after == before
    assert before["3f9a1c2b7d4e"][:2] == ["2026-11-30T08:00:00Z", "2026-12-01T08:00:00Z"]


def test_hostile_hermes_values_are_reported_never_a_crash(project: Project, tmp_path: Path) -> None:
    hostile = tmp_path / "hostile.json"
    hostile.write_text(
        '{"jobs": ['
        '{"id": "a", "name": "x\\ud800", "schedule": {"kind": "cron", "expr": "0 1 * * *"}},\n'
        '{"id": "b", "schedule": {"kind": "interval", "minutes": 1e400}},\n'
        '{"id": "c", "schedule": {"kind": "cron", "expr": "0 1 * * *"}, "zz\\ud800": 1},\n'
        '{"id": "ok", "schedule": {"kind": "cron", "expr": "0 1 * * *"}}]}\n'
    )
    res = project.run("import", "--from", "hermes", str(hostile))
    assert res.exit_code == 0, res.stderr
    assert [job["id"] for job in json.loads(res.stdout)["jobs"]] == ["ok"]
    assert (
        f"{hostile}:1: not imported: the result would not validate: a string holds a lone surrogate"
        in res.stderr
    )
    assert (
        f"{hostile}:2: not imported: the result would not validate: a number is out of range"
        in res.stderr
    )
    assert f"{hostile}:3: unknown field 'zz\\ud800' kept as 'x-hermes-zz\\ud800'" in res.stderr
    assert "Traceback" not in res.stderr


def test_nul_bytes_and_bad_json_are_clear_errors(project: Project, tmp_path: Path) -> None:
    nul = tmp_path / "nul.json"
    nul.write_text('{"jobs": [\n{"id": "a\x00"}]}')
    res = project.cli("import", "--from", "hermes", str(nul))
    assert (res.exit_code, res.stderr) == (
        1,
        f"Error: {nul}:2: cannot import: the file contains a NUL byte\n",
    )
    bad = tmp_path / "bad.json"
    bad.write_text('{"jobs": [\n  {"id": "a",}\n]}')
    res = project.cli("import", "--from", "hermes", str(bad))
    assert res.exit_code == 1
    assert f"{bad}:2:14: cannot import: invalid JSON" in res.stderr


def test_image_entrypoint_only_is_reported_not_guessed(project: Project, tmp_path: Path) -> None:
    manifest = tmp_path / "entrypoint.yaml"
    manifest.write_text(
        "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: entry}\n"
        "spec:\n  schedule: '@hourly'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n"
        "          containers: [{name: app, image: 'registry.example/app:1'}]\n"
    )
    res = project.cli("import", "--from", "k8s", str(manifest))
    assert res.exit_code == 1  # the only CronJob cannot be carried over
    assert (
        f"{manifest}:1: not imported: the container has no command: the image's entrypoint"
        in res.stderr
    )
    assert "nothing to import" in res.stderr
