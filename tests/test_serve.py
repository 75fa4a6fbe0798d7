"""`cronplan serve`: the HTTP endpoint (SPEC §10 responses, exactly once) and shutdown."""

from __future__ import annotations

import signal
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from cronplan.timefmt import format_ts
from tests.fixtures_core import Project
from tests.fixtures_serve import ServeFactory, append_job, fire_body, read_runs, sign


def minute_floor() -> datetime:
    return datetime.now(timezone.utc).replace(second=0, microsecond=0)


def ledger_runs(project: Project, job_id: str) -> list[Any]:
    from cronplan.ledger.sqlite import SqliteLedger

    led = SqliteLedger(project.root / ".cronplan" / "state.db")
    try:
        return led.runs(job_id)
    finally:
        led.close()


def post(url: str, body: bytes, signature: str | None = None) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers["x-test-signature"] = signature
    return httpx.post(f"{url}/api/cron/fire", content=body, headers=headers, timeout=30)


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def hmac_project(project: Project, hmac_provider_env: dict[str, str]) -> Project:
    project.write_config("jobs: jobs.json\nprovider: testhmac\ncallback_url: http://127.0.0.1:1\n")
    return project


def test_healthz_and_routes(project: Project, serve_process: ServeFactory) -> None:
    sp = serve_process(project.root)
    doc = httpx.get(f"{sp.url}/healthz").json()
    assert doc["status"] == "ok" and doc["provider"] == "local" and doc["timer"] is True
    assert httpx.get(f"{sp.url}/nope").status_code == 404
    assert httpx.get(f"{sp.url}/api/cron/fire").status_code == 405
    assert httpx.post(f"{sp.url}/healthz").status_code == 405


def test_local_provider_refuses_http_fires(project: Project, serve_process: ServeFactory) -> None:
    log = project.root / "runs.log"
    project.write_jobs([append_job("c", log)])
    sp = serve_process(project.root)
    resp = post(sp.url, fire_body("c", format_ts(minute_floor())))
    assert resp.status_code == 401
    time.sleep(0.3)
    assert read_runs(log) == []


@pytest.mark.slow
def test_twenty_concurrent_http_fires_run_once(
    hmac_project: Project, hmac_provider_env: dict[str, str], serve_process: ServeFactory
) -> None:
    """Exactly once over HTTP: a verifier that accepts (the test provider's HMAC), 20 racing requests."""
    log = hmac_project.root / "runs.log"
    hmac_project.write_jobs([append_job("c", log)])
    hmac_project.apply(env=hmac_provider_env)
    sp = serve_process(hmac_project.root, env=hmac_provider_env)
    assert sp.wait_healthy()["provider"] == "testhmac"
    body = fire_body("c", format_ts(minute_floor()))
    sig = sign(body)
    codes: list[int] = []
    barrier = threading.Barrier(20)

    def hit() -> None:
        barrier.wait()
        codes.append(post(sp.url, body, sig).status_code)

    threads = [threading.Thread(target=hit) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(codes) == [200] * 19 + [202]
    wait_for(lambda: len(read_runs(log)) >= 1, 10, "the run")
    wait_for(
        lambda: [r.status for r in ledger_runs(hmac_project, "c")] == ["succeeded"],
        10,
        "the record",
    )
    time.sleep(0.5)
    assert len(read_runs(log)) == 1
    # Duplicate after the run: 200, no second run.
    resp = post(sp.url, body, sig)
    assert resp.status_code == 200 and resp.json()["status"] == "duplicate"
    time.sleep(0.3)
    assert len(read_runs(log)) == 1


def test_http_responses_401_400_and_stale_200(
    hmac_project: Project, hmac_provider_env: dict[str, str], serve_process: ServeFactory
) -> None:
    log = hmac_project.root / "runs.log"
    hmac_project.write_jobs([append_job("ok", log), append_job("p", log)])
    hmac_project.apply(env=hmac_provider_env)
    hmac_project.write_jobs([append_job("ok", log), append_job("p", log, state="paused")])
    hmac_project.apply(env=hmac_provider_env)  # p's cancel records it as applied, paused
    # A stateless instance: serve answers fires from the config and the ledger, without jobs.json.
    (hmac_project.root / "jobs.json").unlink()
    sp = serve_process(hmac_project.root, env=hmac_provider_env)
    t = format_ts(minute_floor())
    body = fire_body("ok", t)
    assert post(sp.url, body, sign(body, "wrong")).status_code == 401
    assert post(sp.url, body).status_code == 401
    bad = b'{"job_id": "ok"}'
    assert post(sp.url, bad, sign(bad)).status_code == 400
    for job_id, when, needle in [
        ("p", t, "paused"),
        ("ghost", t, "not applied"),
        ("ok", format_ts(minute_floor() + timedelta(seconds=30)), "not an occurrence"),
    ]:
        b = fire_body(job_id, when)
        resp = post(sp.url, b, sign(b))
        assert resp.status_code == 200, resp.text
        assert resp.json()["status"] == "stale" and needle in resp.json()["reason"]
    time.sleep(0.5)
    assert read_runs(log) == []
    # And the one good request runs (202), after the response.
    resp = post(sp.url, body, sign(body))
    assert resp.status_code == 202 and resp.json()["dedup_key"] == f"ok:{t}"
    wait_for(lambda: len(read_runs(log)) == 1, 10, "the run")


def test_202_only_after_the_claim_is_durable(
    hmac_project: Project, hmac_provider_env: dict[str, str], serve_process: ServeFactory
) -> None:
    """When the response says 202, the claim is already in the ledger (even if the job is still running)."""
    hmac_project.write_jobs(
        [{"id": "slow", "schedule": {"kind": "interval", "seconds": 60}, "command": ["sleep", "3"]}]
    )
    hmac_project.apply(env=hmac_provider_env)
    sp = serve_process(hmac_project.root, env=hmac_provider_env)
    t = minute_floor()
    body = fire_body("slow", format_ts(t))
    resp = post(sp.url, body, sign(body))
    assert resp.status_code == 202
    runs = ledger_runs(hmac_project, "slow")
    assert len(runs) == 1 and runs[0].status in ("claimed", "running")
    assert runs[0].finished_at is None  # the job runs after the response


@pytest.mark.slow
@pytest.mark.parametrize("timeout_arg", [None, "0.5"])
def test_sigterm_mid_run_leaves_a_complete_record(
    hmac_project: Project,
    hmac_provider_env: dict[str, str],
    serve_process: ServeFactory,
    timeout_arg: str | None,
) -> None:
    pidfile = hmac_project.root / "job.pid"
    script = (
        f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); "
        "time.sleep(2 if os.environ.get('SHORT') else 60); print('finished')"
    )
    job = {
        "id": "long",
        "schedule": {"kind": "interval", "seconds": 60},
        "command": [sys.executable, "-c", script],
    }
    if timeout_arg is None:
        job["env"] = {"SHORT": "1"}
    hmac_project.write_jobs([job])
    hmac_project.apply(env=hmac_provider_env)
    args = ("--shutdown-timeout", timeout_arg) if timeout_arg else ()
    sp = serve_process(hmac_project.root, env=hmac_provider_env, args=args)
    t = minute_floor()
    body = fire_body("long", format_ts(t))
    assert post(sp.url, body, sign(body)).status_code == 202
    wait_for(pidfile.exists, 10, "the job to start")
    t0 = time.monotonic()
    assert sp.terminate(signal.SIGTERM, timeout=30) == 0, sp.stderr()
    [run] = ledger_runs(hmac_project, "long")
    assert run.finished_at is not None and run.started_at is not None
    if timeout_arg is None:
        # Within the shutdown grace: the job was allowed to finish.
        assert run.status == "succeeded", (run, sp.stderr())
        assert "finished" in run.output_tail
    else:
        assert run.status == "failed"
        assert "cancelled" in (run.error or "")
        assert time.monotonic() - t0 < 15
        pid = int(pidfile.read_text())
        from tests.test_runner import _alive

        assert not _alive(pid)
    assert "shutting down" in sp.stderr()
