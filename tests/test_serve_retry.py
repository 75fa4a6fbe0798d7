"""`cronplan serve` never drops a fire it could not handle: it retries with backoff (docs/fire.md).

A fire the timer loop hands out can fail for a moment (jobs.json half-written by an editor, the ledger
busy or unreachable). The arm is then handed out again after 1 s, 2 s, 4 s, ... (at most 60 s) until the
fire is handled or the arm goes away; and while a PostgreSQL ledger is down, HTTP fires are answered 503
within a few seconds so the provider retries, and succeed once the database is back.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from cronplan.local.timer import TimerLoop
from cronplan.model import Arm
from cronplan.timefmt import format_ts
from tests.fixtures_core import Project
from tests.fixtures_pg import PgCluster
from tests.fixtures_serve import ServeFactory, append_job, fire_body, read_runs, sign

UTC = timezone.utc


class _Store:
    def __init__(self, arms: list[Arm]) -> None:
        self.arms = arms
        self.gen = 0

    def generation(self) -> int:
        return self.gen

    def list_arms(self) -> list[Arm]:
        return list(self.arms)


def test_timer_loop_retries_a_failed_fire_with_backoff_until_handled() -> None:
    arm = Arm("a", datetime.now(UTC) - timedelta(seconds=1))
    store = _Store([arm])
    attempts: list[float] = []
    loop: TimerLoop

    def dispatch(a: Arm) -> None:
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            threading.Thread(
                target=loop.retry, args=(a,)
            ).start()  # fails, as a worker would report
        else:
            loop.handled(a)

    loop = TimerLoop(store, dispatch, poll_s=0.5)
    loop.start()
    try:
        deadline = time.monotonic() + 10
        while len(attempts) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.5)
    finally:
        loop.stop()
    assert len(attempts) == 3  # handled at the third attempt, then never handed out again
    first_gap, second_gap = attempts[1] - attempts[0], attempts[2] - attempts[1]
    assert 0.9 <= first_gap <= 1.6
    assert 1.9 <= second_gap <= 2.6
    assert loop.pending_retries() == 0


def test_timer_loop_stops_retrying_an_arm_that_moved() -> None:
    old = Arm("a", datetime.now(UTC) - timedelta(seconds=1))
    store = _Store([old])
    handed: list[Arm] = []
    loop: TimerLoop

    def dispatch(a: Arm) -> None:
        handed.append(a)
        loop.retry(a)

    loop = TimerLoop(store, dispatch, poll_s=0.2)
    loop.start()
    try:
        time.sleep(0.3)
        moved = Arm("a", datetime.now(UTC) + timedelta(hours=1))
        store.arms = [moved]  # re-armed elsewhere: the old occurrence is superseded
        store.gen += 1
        time.sleep(2.0)
    finally:
        loop.stop()
    assert handed == [old]
    assert loop.pending_retries() == 0


def _arm_once_soon(project: Project, log: Any, lead_s: float) -> datetime:
    """Apply a `once` job due ``lead_s`` seconds from now (retrying on a slow machine)."""
    from tests.test_serve_timer import local_arms

    for _attempt in range(3):
        run_at = (datetime.now(UTC) + timedelta(seconds=lead_s)).replace(microsecond=0)
        project.write_jobs(
            [append_job("once", log, schedule={"kind": "once", "run_at": format_ts(run_at)})]
        )
        assert project.run("apply", "--auto-approve").exit_code == 0
        if local_arms(project).get("once") == run_at:
            return run_at
    pytest.fail("could not arm a once job a few seconds ahead (machine too slow?)")


@pytest.mark.slow
def test_a_fire_that_met_an_invalid_jobs_file_is_retried(
    project: Project, serve_process: ServeFactory
) -> None:
    log = project.root / "runs.log"
    run_at = _arm_once_soon(project, log, lead_s=6)
    good = (project.root / "jobs.json").read_text()
    sp = serve_process(project.root)
    # An editor's save caught half-way: the file is invalid when the arm falls due, and for a while after.
    (project.root / "jobs.json").write_text('{"jobs": [')
    time.sleep(max(0.0, (run_at - datetime.now(UTC)).total_seconds()) + 3.5)
    (project.root / "jobs.json").write_text(good)
    deadline = time.monotonic() + 15
    while not read_runs(log) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    runs = read_runs(log)
    assert [fire_at for _, _, fire_at in runs] == [format_ts(run_at)], sp.stderr()
    res = project.run("plan", "--detailed-exitcode")
    assert res.exit_code == 0, res.stdout + res.stderr  # done: nothing left armed, nothing to do


# --------------------------------------------------------------------------- PostgreSQL down


_HMAC_CONFIG = (
    "jobs: jobs.json\nprovider: testhmac\ncallback_url: http://127.0.0.1:1\nstate: {dsn}\n"
)


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_http_fire_gets_503_fast_while_postgres_is_down_then_202_once(
    project: Project,
    private_pg: PgCluster,
    serve_process: ServeFactory,
    hmac_provider_env: dict[str, str],
) -> None:
    project.write_config(_HMAC_CONFIG.format(dsn=private_pg.dsn))
    log = project.root / "runs.log"
    project.write_jobs([append_job("tick", log, schedule={"kind": "interval", "seconds": 60})])
    assert project.run("apply", "--auto-approve", env=hmac_provider_env).exit_code == 0
    sp = serve_process(project.root, env=hmac_provider_env)
    fire_at = format_ts(datetime.now(UTC).replace(second=0, microsecond=0))
    body = fire_body("tick", fire_at)
    headers = {"content-type": "application/json", "x-test-signature": sign(body)}
    url = f"{sp.url}/api/cron/fire"

    private_pg.kill()
    for _ in range(2):  # the first call after the crash and one while it is known to be down
        started = time.monotonic()
        resp = httpx.post(url, content=body, headers=headers, timeout=30)
        took = time.monotonic() - started
        assert resp.status_code == 503, resp.text
        assert took < 8, f"503 took {took:.1f} s"
        error = resp.json()["error"]
        assert "PostgreSQL ledger" in error and "127.0.0.1" in error  # names the server
    assert sp.wait_healthy(timeout=2)["status"] == "ok"  # the server itself is fine

    private_pg.restart()
    # The provider retries until it is heard; the first retries may still find the pool reconnecting.
    deadline = time.monotonic() + 20
    while True:
        resp = httpx.post(url, content=body, headers=headers, timeout=30)
        if resp.status_code != 503 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert resp.status_code == 202, resp.text + sp.stderr()
    again = httpx.post(url, content=body, headers=headers, timeout=30)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    deadline = time.monotonic() + 20
    while not read_runs(log) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    assert [f for _, _, f in read_runs(log)] == [fire_at]
    assert "s3cret" not in sp.stderr() and "Traceback" not in sp.stderr()


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_timer_fire_during_a_postgres_outage_runs_once_after_it(
    project: Project, private_pg: PgCluster, serve_process: ServeFactory
) -> None:
    project.write_config(f"jobs: jobs.json\nprovider: local\nstate: {private_pg.dsn}\n")
    log = project.root / "runs.log"
    run_at = _arm_once_soon(project, log, lead_s=6)
    sp = serve_process(project.root)
    private_pg.kill()
    time.sleep(max(0.0, (run_at - datetime.now(UTC)).total_seconds()) + 3.0)
    assert read_runs(log) == []
    private_pg.restart()
    deadline = time.monotonic() + 30
    while not read_runs(log) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    assert [f for _, _, f in read_runs(log)] == [format_ts(run_at)], sp.stderr()
    assert "retrying in" in sp.stderr()
    assert "Traceback" not in sp.stderr()
