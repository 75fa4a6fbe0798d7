"""Hostile `fire --request` files (docs/security.md): refused with exit 1 before anything runs."""

from __future__ import annotations

import pytest

from tests.fixtures_core import Project
from tests.fixtures_serve import append_job, fire_body, read_runs, sign

NOW = "2026-01-01T00:00:30Z"
FIRE_AT = "2026-01-01T00:00:00Z"


def _request(body: bytes, *, line: str = "POST /api/cron/fire HTTP/1.1", length: str = "") -> bytes:
    head = f"{line}\r\nContent-Type: application/json\r\nX-Test-Signature: {sign(body)}\r\n"
    head += f"Content-Length: {length or len(body)}\r\n\r\n"
    return head.encode("latin-1") + body  # as sent: a byte 0xB2 is "²"


@pytest.fixture
def signed(project: Project, hmac_provider_env: dict[str, str]) -> tuple[Project, dict[str, str]]:
    project.write_config("jobs: jobs.json\nprovider: testhmac\ncallback_url: http://127.0.0.1:1\n")
    project.write_jobs([append_job("c", project.root / "runs.log")])
    project.apply("2025-12-31T23:59:30Z", env=hmac_provider_env)  # fires run the applied job
    return project, hmac_provider_env


@pytest.mark.parametrize(
    ("line", "length", "words"),
    [
        ("GET /api/cron/fire HTTP/1.1", "", "method is 'GET'"),
        ("POST /nope HTTP/1.1", "", "path is '/nope'"),
        ("POST /api/cron/fire/../x HTTP/1.1", "", "path is"),
        ("POST /api/cron/fire HTTP/1.1", "²", "bad Content-Length"),
        ("POST /api/cron/fire HTTP/1.1", "1³", "bad Content-Length"),
    ],
)
def test_validly_signed_but_wrong_request_is_refused_and_nothing_runs(
    signed: tuple[Project, dict[str, str]], line: str, length: str, words: str
) -> None:
    project, env = signed
    raw = _request(fire_body("c", FIRE_AT), line=line, length=length)
    (project.root / "req.http").write_bytes(raw)
    res = project.run("fire", "--request", "req.http", "--now", NOW, env=env)
    assert res.exit_code == 1, res.stderr
    assert words in res.stderr and "Traceback" not in res.stderr
    assert read_runs(project.root / "runs.log") == []


def test_the_same_request_as_post_to_the_fire_path_runs_once(
    signed: tuple[Project, dict[str, str]],
) -> None:
    project, env = signed
    (project.root / "req.http").write_bytes(_request(fire_body("c", FIRE_AT)))
    res = project.run("fire", "--request", "req.http", "--now", NOW, env=env)
    assert res.exit_code == 0, res.stderr
    assert len(read_runs(project.root / "runs.log")) == 1
