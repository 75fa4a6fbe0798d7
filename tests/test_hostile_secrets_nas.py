"""NAS tokens as read from a mounted secret (docs/security.md): stripped, or refused naming the variable."""

from __future__ import annotations

import time

import pytest

from tests.fixtures_nas import NasProject

NOW = "2030-06-01T06:00:00Z"
JOBS = [{"id": "every-5m", "schedule": {"kind": "interval", "minutes": 5}, "command": ["true"]}]


@pytest.fixture
def np(nas_project: NasProject) -> NasProject:
    nas_project.write_jobs(JOBS)
    return nas_project


@pytest.mark.parametrize("around", ["{}\n", "{}\r\n", "  {}\t\n"])
def test_token_with_stray_whitespace_around_it_is_stripped(np: NasProject, around: str) -> None:
    token = around.format(np.server.token)
    res = np.run("apply", "--auto-approve", "--now", NOW, env={"CRONPLAN_NAS_TOKEN": token})
    assert res.exit_code == 0, res.stderr
    assert set(np.server.armed()) == {"every-5m"}


@pytest.mark.parametrize("bad", ["{} extra", "{}\nsecond-line", "{}é", "tök{}", "{}\x7f", "\t\n"])
def test_token_that_cannot_be_sent_is_refused_at_once_naming_the_variable(
    np: NasProject, bad: str
) -> None:
    token = bad.format(np.server.token)
    np.server.reset_counters()
    for args in (("providers",), ("plan", "--now", NOW), ("apply", "--auto-approve", "--now", NOW)):
        started = time.monotonic()
        res = np.run(*args, env={"CRONPLAN_NAS_TOKEN": token})
        assert time.monotonic() - started < 10, "no retries"
        assert res.exit_code == (0 if args == ("providers",) else 1), (args, res.stderr)
        out = res.stdout + res.stderr
        assert "CRONPLAN_NAS_TOKEN" in out, out
        assert "Traceback" not in out and "internal error" not in out
        for piece in token.split():
            assert piece not in out
    assert sum(np.server.snapshot()["counters"].values()) == 0  # nothing was sent


# --------------------------------------------------------------------------- the Temporal webhook secret


def _temporal_project(project) -> None:  # type: ignore[no-untyped-def]
    project.write_config("jobs: jobs.json\nprovider: temporal\ncallback_url: http://127.0.0.1:1\n")


@pytest.mark.parametrize("bad", ["{} {}", "{}\n{}", "{}é"])
def test_webhook_secret_that_cannot_be_used_is_refused_naming_the_variable(
    project, monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    pytest.importorskip("cronplan_temporal")
    from tests.fixtures_temporal import new_webhook_secret

    monkeypatch.delenv("CRONPLAN_DISABLE_PLUGINS", raising=False)
    _temporal_project(project)
    secret = new_webhook_secret()
    value = bad.format(secret[:12], secret[12:]) if bad.count("{}") == 2 else bad.format(secret)
    res = project.run("plan", "--now", NOW, env={"CRONPLAN_WEBHOOK_SECRET": value})
    assert res.exit_code == 1, res.stderr
    assert "$CRONPLAN_WEBHOOK_SECRET" in res.stderr and "inner whitespace" in res.stderr
    assert secret[12:] not in res.stderr and secret[:12] not in res.stderr


def test_webhook_secret_with_a_trailing_newline_is_stripped_and_verifies(project) -> None:
    pytest.importorskip("cronplan_temporal")
    from cronplan_temporal import TemporalProvider
    from cronplan_temporal.signing import fire_body, sign

    from cronplan.model import HttpRequest
    from cronplan.provider import ProviderSettings
    from tests.fixtures_temporal import new_webhook_secret

    secret = new_webhook_secret()
    env = {"CRONPLAN_WEBHOOK_SECRET": secret + "\n"}
    provider = TemporalProvider(ProviderSettings("temporal", {}, "http://127.0.0.1:1", environ=env))
    assert provider.check().ok
    body = fire_body("a", "2026-11-27T09:00:00Z")
    headers = sign(secret, "cronplan-fire:a:2026-11-27T09:00:00Z", body).as_dict()
    call = provider.verify(HttpRequest("POST", "/api/cron/fire", headers, body))
    assert call.job_id == "a"
