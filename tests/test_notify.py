"""`notify`: a webhook POSTed on a failed run and on an overdue arm, retried, never failing the run.

A tiny real HTTP server on 127.0.0.1 receives the notices; `cronplan fire` runs as a real subprocess.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from cronplan import notify
from cronplan.timefmt import parse_ts
from tests.fixtures_core import Project
from tests.fixtures_serve import free_port

SECRET = "T000/B000/XXXXsecretpath"
T0 = "2031-03-10T08:00:00Z"
T_PAST = "2019-06-01T08:00:00Z"


@dataclass
class Receiver:
    port: int
    #: HTTP statuses to answer, in order; 200 once they run out.
    script: list[int] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/{SECRET}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver(free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            rec.received.append(
                {
                    "path": self.path,
                    "type": self.headers.get("content-type"),
                    "doc": json.loads(body),
                }
            )
            code = rec.script.pop(0) if rec.script else 200
            self.send_response(code)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", rec.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()


def setup(project: Project, now: str, *, ok: bool = False) -> None:
    project.write_config(
        "jobs: jobs.json\nprovider: local\nnotify:\n  url_env: CRONPLAN_NOTIFY_URL\n"
    )
    code = "pass" if ok else "import sys; print('boom'); sys.exit(2)"
    project.write_jobs(
        [
            {
                "id": "etl",
                "name": "Nightly ETL",
                "schedule": {"kind": "interval", "seconds": 3600},
                "command": [sys.executable, "-c", code],
            }
        ]
    )
    assert project.cli("apply", "--auto-approve", "--now", now).exit_code == 0


@pytest.mark.parametrize("now", [T0, T_PAST])
def test_failed_run_posts_one_line_notice(project: Project, receiver: Receiver, now: str) -> None:
    setup(project, now)
    env = {"CRONPLAN_NOTIFY_URL": receiver.url}
    r = project.run("fire", "--job-id", "etl", "--fire-at", now, "--now", now, env=env)
    assert r.exit_code == 1  # the job's failure, not the notice's
    assert len(receiver.received) == 1
    got = receiver.received[0]
    assert got["type"] == "application/json"
    doc = got["doc"]
    assert set(doc) == {"event", "job_id", "fire_at", "status", "exit_code", "error", "text"}
    assert doc["event"] == "run_failed" and doc["job_id"] == "etl" and doc["fire_at"] == now
    assert doc["status"] == "failed" and doc["exit_code"] == 2
    assert "\n" not in doc["text"] and "etl" in doc["text"] and "failed" in doc["text"]
    assert SECRET not in r.stdout + r.stderr


def test_success_sends_nothing(project: Project, receiver: Receiver) -> None:
    setup(project, T0, ok=True)
    env = {"CRONPLAN_NOTIFY_URL": receiver.url}
    r = project.run("fire", "--job-id", "etl", "--fire-at", T0, "--now", T0, env=env)
    assert r.exit_code == 0, r.stderr
    assert receiver.received == []


def test_transient_errors_are_retried(project: Project, receiver: Receiver) -> None:
    setup(project, T0)
    receiver.script = [503, 500]
    env = {"CRONPLAN_NOTIFY_URL": receiver.url}
    r = project.run("fire", "--job-id", "etl", "--fire-at", T0, "--now", T0, env=env)
    assert r.exit_code == 1
    assert len(receiver.received) == 3
    assert "notify webhook" not in r.stderr  # delivered in the end: nothing to report


def test_unreachable_webhook_never_fails_the_run_nor_shows_its_url(project: Project) -> None:
    setup(project, T0, ok=True)
    project.write_jobs(
        [
            {
                "id": "etl",
                "schedule": {"kind": "interval", "seconds": 3600},
                "command": [sys.executable, "-c", "import sys; sys.exit(5)"],
            }
        ]
    )
    assert project.cli("apply", "--auto-approve", "--now", T0).exit_code == 0
    dead = f"http://127.0.0.1:{free_port()}/hooks/{SECRET}"
    r = project.run(
        "fire", "--job-id", "etl", "--fire-at", T0, "--now", T0, env={"CRONPLAN_NOTIFY_URL": dead}
    )
    assert r.exit_code == 1  # the job failed; the notice's failure adds nothing
    assert "notify webhook (CRONPLAN_NOTIFY_URL)" in r.stderr
    assert "not delivered" in r.stderr
    assert SECRET not in r.stderr and "127.0.0.1" not in r.stderr
    assert "Traceback" not in r.stderr


def test_refused_notice_is_not_retried(project: Project, receiver: Receiver) -> None:
    setup(project, T0)
    receiver.script = [404]
    env = {"CRONPLAN_NOTIFY_URL": receiver.url}
    r = project.run("fire", "--job-id", "etl", "--fire-at", T0, "--now", T0, env=env)
    assert r.exit_code == 1
    assert len(receiver.received) == 1
    assert "notify webhook (CRONPLAN_NOTIFY_URL): run_failed for etl not delivered: HTTP 404" in (
        r.stderr
    )
    assert SECRET not in r.stderr


def test_overdue_arm_is_notified(project: Project, receiver: Receiver) -> None:
    setup(project, T0, ok=True)
    later = "2031-03-10T11:30:00Z"  # the 08:00 arm is 3.5 h late, beyond its 30 min grace
    env = {"CRONPLAN_NOTIFY_URL": receiver.url}
    r = project.run("fire", "--overdue", "--now", later, env=env)
    assert r.exit_code == 0, r.stderr
    events = [x["doc"] for x in receiver.received]
    assert [e["event"] for e in events] == ["arm_overdue"]
    assert events[0]["job_id"] == "etl" and events[0]["fire_at"] == T0
    assert events[0]["status"] == "overdue" and "overdue" in events[0]["text"]


def test_not_configured_sends_nothing(project: Project, receiver: Receiver) -> None:
    setup(project, T0)
    project.write_config("jobs: jobs.json\nprovider: local\n")
    env = {"CRONPLAN_NOTIFY_URL": receiver.url}
    r = project.run("fire", "--job-id", "etl", "--fire-at", T0, "--now", T0, env=env)
    assert r.exit_code == 1
    assert receiver.received == []


def test_notice_text_is_one_bounded_line() -> None:
    n = notify.run_notice("job", parse_ts(T0), "failed", 1, "line one\nline two " + "x" * 1000)
    assert "\n" not in n.text and len(n.text) <= notify.TEXT_LIMIT
    assert n.text.startswith(
        "cronplan: job job failed (occurrence 2031-03-10T08:00:00Z): line one line"
    )
    n = notify.run_notice("job", parse_ts(T0), "failed", 7, None)
    assert n.text == "cronplan: job job failed (occurrence 2031-03-10T08:00:00Z): exit status 7"


def test_malformed_url_is_named_by_its_variable() -> None:
    said: list[str] = []
    n = notify.run_notice("job", parse_ts(T0), "failed", 1, None)
    env = {"HOOK": f"ftp://example.invalid/{SECRET}"}
    assert notify.send("HOOK", env, n, log=said.append) is False
    assert said == [
        "notify webhook (HOOK): not an http:// or https:// URL; run_failed for job not sent"
    ]
    env = {"HOOK": f"http://127.0.0.1:99999/{SECRET}"}
    assert notify.send("HOOK", env, n, log=said.append, sleep=lambda s: None) is False
    assert SECRET not in said[-1] and said[-1].startswith("notify webhook (HOOK): ")
