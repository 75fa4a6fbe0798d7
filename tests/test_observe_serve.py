"""`cronplan serve`'s observability routes end to end: `/`, `/api/status`, `/metrics` and who may see them.

Real processes throughout: the CLI applies and fires with a pinned clock (`--now`, years ahead of any
test run so the serve timer never fires the arms itself), then a real `serve` answers over HTTP.
"""

from __future__ import annotations

import json
import re
import sys

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cronplan.server.status_routes import StatusRoutes, is_loopback
from tests.fixtures_core import Project
from tests.fixtures_serve import ServeFactory

T0 = "2031-03-10T08:00:00Z"  # an occurrence of the hourly jobs below
EVIL = "<script>alert('x')</script> nightly backup"


def _failing_command() -> list[str]:
    code = "import sys; print('disk /srv/backup is full'); print('<b>not bold</b>'); sys.exit(3)"
    return [sys.executable, "-c", code]


def seed(project: Project, extra_config: str = "") -> None:
    """Two applied jobs; `backup` has fired once, at T0, and failed."""
    project.write_config("jobs: jobs.json\nprovider: local\ntimezone: UTC\n" + extra_config)
    project.write_jobs(
        [
            {
                "id": "backup",
                "name": EVIL,
                "schedule": {"kind": "interval", "seconds": 3600},
                "command": _failing_command(),
            },
            {
                "id": "report",
                "name": "Morning report",
                "schedule": {"kind": "cron", "expr": "0 9 * * *", "tz": "Europe/Berlin"},
                "command": [sys.executable, "-c", "pass"],
            },
        ]
    )
    r = project.cli("apply", "--auto-approve", "--now", T0)
    assert r.exit_code == 0, r.stderr
    r = project.cli("fire", "--job-id", "backup", "--fire-at", T0, "--now", T0)
    assert r.exit_code == 1, r.stderr


def metric_values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def test_status_page_shows_jobs_failures_and_timeline(
    project: Project, serve_process: ServeFactory
) -> None:
    seed(project)
    sp = serve_process(project.root)
    resp = httpx.get(f"{sp.url}/", timeout=10)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    html = resp.text
    assert '<meta http-equiv="refresh"' in html
    # Untrusted job fields are escaped, never markup.
    assert "<script>" not in html and "<b>not bold</b>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; nightly backup" in html
    assert "&lt;b&gt;not bold&lt;/b&gt;" in html
    # Per job: name and id, next arm (absolute and relative), last run and result, failures.
    assert "Morning report" in html and "backup" in html and "report" in html
    assert "2031-03-10T09:00:00Z" in html  # backup's next arm, after the fire re-armed it
    assert "Europe/Berlin" in html  # report's next arm in its own zone
    assert ">failed</span> (exit 3)" in html
    assert "disk /srv/backup is full" in html  # the failure's output tail
    assert re.search(r'class="rel">in \d+ d<', html)  # relative: the arms are years ahead
    assert "<svg" in html and "Next 24 hours" in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")  # no assets


def test_api_status_is_the_status_json_document(
    project: Project, serve_process: ServeFactory
) -> None:
    seed(project)
    sp = serve_process(project.root)
    resp = httpx.get(f"{sp.url}/api/status", timeout=10)
    assert resp.status_code == 200
    cli = project.cli("status", "--format", "json")
    assert cli.exit_code == 0
    assert resp.json() == json.loads(cli.stdout)
    backup = next(j for j in resp.json()["jobs"] if j["job_id"] == "backup")
    assert backup["failures"] == 1 and backup["last_run"]["status"] == "failed"


def test_metrics_come_from_the_ledger(project: Project, serve_process: ServeFactory) -> None:
    seed(project)
    sp = serve_process(project.root)
    resp = httpx.get(f"{sp.url}/metrics", timeout=10)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    v = metric_values(resp.text)
    assert v[("cronplan_runs_total", (("job_id", "backup"), ("status", "failed")))] == 1
    assert v[("cronplan_runs_total", (("job_id", "backup"), ("status", "succeeded")))] == 0
    assert v[("cronplan_run_duration_seconds_count", (("job_id", "backup"),))] == 1
    assert v[("cronplan_fire_lag_seconds_count", (("job_id", "backup"),))] == 1
    assert v[("cronplan_arms_live", ())] == 2
    assert v[("cronplan_arms_overdue", ())] == 0
    assert not any(name == "cronplan_last_success_timestamp_seconds" for name, _ in v)
    # A second fire that succeeds shows up at the next scrape: nothing is cached in serve.
    project.write_jobs(
        [
            {
                "id": "backup",
                "name": EVIL,
                "schedule": {"kind": "interval", "seconds": 3600},
                "command": [sys.executable, "-c", "pass"],
            },
            {
                "id": "report",
                "name": "Morning report",
                "schedule": {"kind": "cron", "expr": "0 9 * * *", "tz": "Europe/Berlin"},
                "command": [sys.executable, "-c", "pass"],
            },
        ]
    )
    t1 = "2031-03-10T09:00:00Z"
    assert project.cli("apply", "--auto-approve", "--now", t1).exit_code == 0
    assert project.cli("fire", "--job-id", "backup", "--fire-at", t1, "--now", t1).exit_code == 0
    v = metric_values(httpx.get(f"{sp.url}/metrics", timeout=10).text)
    assert v[("cronplan_runs_total", (("job_id", "backup"), ("status", "succeeded")))] == 1
    assert v[("cronplan_last_success_timestamp_seconds", (("job_id", "backup"),))] > 0


def test_proxied_requests_are_not_local(project: Project, serve_process: ServeFactory) -> None:
    seed(project)
    sp = serve_process(project.root)
    for path in ("/", "/api/status", "/metrics"):
        assert httpx.get(f"{sp.url}{path}", timeout=10).status_code == 200
        for header in ({"Forwarded": "for=203.0.113.9"}, {"X-Forwarded-For": "203.0.113.9"}):
            resp = httpx.get(f"{sp.url}{path}", headers=header, timeout=10)
            assert resp.status_code == 404, (path, header)
            assert "backup" not in resp.text
    assert httpx.get(f"{sp.url}/healthz", headers={"Forwarded": "for=x"}).status_code == 200


def test_bearer_token_mode(project: Project, serve_process: ServeFactory) -> None:
    token = "s3cret-status-token"
    seed(project, "serve:\n  status_token_env: CRONPLAN_STATUS_TOKEN\n")
    sp = serve_process(project.root, env={"CRONPLAN_STATUS_TOKEN": token})
    for path in ("/", "/api/status", "/metrics"):
        assert httpx.get(f"{sp.url}{path}", timeout=10).status_code == 401
        wrong = {"Authorization": "Bearer not-it"}
        assert httpx.get(f"{sp.url}{path}", headers=wrong, timeout=10).status_code == 401
        basic = {"Authorization": f"Basic {token}"}
        assert httpx.get(f"{sp.url}{path}", headers=basic, timeout=10).status_code == 401
        right = {"Authorization": f"Bearer {token}", "X-Forwarded-For": "203.0.113.9"}
        resp = httpx.get(f"{sp.url}{path}", headers=right, timeout=10)
        assert resp.status_code == 200, path
        assert token not in resp.text
    assert httpx.get(f"{sp.url}/healthz", timeout=10).status_code == 200
    assert token not in sp.stderr()


def test_token_variable_unset_refuses_everyone(
    project: Project, serve_process: ServeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CRONPLAN_STATUS_TOKEN", raising=False)
    seed(project, "serve:\n  status_token_env: CRONPLAN_STATUS_TOKEN\n")
    sp = serve_process(project.root)
    assert httpx.get(f"{sp.url}/", timeout=10).status_code == 401
    assert "CRONPLAN_STATUS_TOKEN, which is not set" in sp.stderr()


def test_exposure_rules_without_a_token(project: Project) -> None:
    from cronplan.documents.config import load_config
    from cronplan.project import Project as CoreProject

    rt = CoreProject(load_config(str(project.config)))

    def routes(bind: str) -> StatusRoutes:
        return StatusRoutes(rt, bind_host=bind, provider_name="local", token_env=None, environ={})

    assert routes("127.0.0.1").allowed({}, "127.0.0.1") is None
    assert routes("::1").allowed({}, "::1") is None
    assert routes("localhost").allowed({}, "127.0.0.5") is None
    # A serve bound to all interfaces answers nobody, not even a loopback client.
    assert routes("0.0.0.0").allowed({}, "127.0.0.1") == 404
    assert routes("192.0.2.10").allowed({}, "127.0.0.1") == 404
    assert routes("127.0.0.1").allowed({}, "192.0.2.7") == 404
    assert routes("127.0.0.1").allowed({}, None) == 404
    assert routes("127.0.0.1").allowed({"forwarded": "for=127.0.0.1"}, "127.0.0.1") == 404
    assert routes("127.0.0.1").allowed({"x-forwarded-for": "127.0.0.1"}, "127.0.0.1") == 404
    assert is_loopback("[::1]") and not is_loopback("example.org")
    rt.close()


@pytest.mark.postgres
def test_serve_instances_on_one_postgres_ledger_report_the_same_figures(
    project: Project, serve_process: ServeFactory, pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRONPLAN_STATE_DSN", pg_dsn)
    seed(project, "state: env:CRONPLAN_STATE_DSN\n")
    one = serve_process(project.root)
    two = serve_process(project.root)
    first = metric_values(httpx.get(f"{one.url}/metrics", timeout=10).text)
    second = metric_values(httpx.get(f"{two.url}/metrics", timeout=10).text)
    assert first == second
    assert first[("cronplan_runs_total", (("job_id", "backup"), ("status", "failed")))] == 1
    # A run recorded by another process (the CLI) is seen by both at their next scrape.
    t1 = "2031-03-10T09:00:00Z"
    assert project.cli("fire", "--job-id", "backup", "--fire-at", t1, "--now", t1).exit_code == 1
    first = metric_values(httpx.get(f"{one.url}/metrics", timeout=10).text)
    second = metric_values(httpx.get(f"{two.url}/metrics", timeout=10).text)
    assert first == second
    assert first[("cronplan_runs_total", (("job_id", "backup"), ("status", "failed")))] == 2
    assert httpx.get(f"{one.url}/api/status").json() == httpx.get(f"{two.url}/api/status").json()


def test_status_routes_methods(project: Project, serve_process: ServeFactory) -> None:
    seed(project)
    sp = serve_process(project.root)
    head = httpx.head(f"{sp.url}/", timeout=10)
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) > 1000
    post = httpx.post(f"{sp.url}/metrics", content=b"x", timeout=10)
    assert post.status_code == 405 and post.headers["allow"] == "GET"
    assert httpx.get(f"{sp.url}/status", timeout=10).status_code == 404
