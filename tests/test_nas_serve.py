"""End to end: the NAS test server fires JWT-signed callbacks into ``cronplan serve`` and ``fire --request``."""

from __future__ import annotations

import json
import math
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures_nas import NasProject
from tests.fixtures_serve import append_job, read_runs, real_now
from tests.test_nas_verify import ATTACKS

UTC = timezone.utc
JOB = "backup.nightly"  # the job the attack tokens of test_nas_verify are made for
FIRE_AT = "2026-11-27T09:00:00Z"


def ts(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def soon(seconds: float) -> datetime:
    return datetime.fromtimestamp(math.ceil(time.time() + seconds), UTC)


@pytest.mark.timeout(120)
def test_fire_runs_once_and_next_arm_appears(
    nas_project: NasProject, nas_serve: Any, tmp_path: Path
) -> None:
    np, server = nas_project, nas_project.server
    log = tmp_path / "runs.log"
    sp = nas_serve(np)
    # Due in ~4 s from when serve is up (each fire reads the job as applied from the ledger).
    start = soon(4)
    np.write_jobs(
        [
            append_job(
                "tick", log, schedule={"kind": "interval", "seconds": 30, "start_at": ts(start)}
            )
        ]
    )
    res = np.run("apply", "--now", real_now(), "--auto-approve")
    assert res.exit_code == 0, res.stderr
    assert server.armed() == {"tick": ts(start)}

    lists_after_apply = server.count("list_calls")
    assert server.wait_for(lambda: len(read_runs(log)) == 1, timeout=20), sp.stderr()
    nxt = ts(start + timedelta(seconds=30))
    assert server.wait_for(lambda: server.armed().get("tick") == nxt, timeout=15), (
        server.snapshot(),
        sp.stderr(),
    )
    (run,) = read_runs(log)
    assert run[2] == ts(start), run
    assert run[1] >= start.timestamp() - 0.5  # not before its time
    first = [f for f in server.fires if f.fire_at == ts(start)]
    assert [f.status for f in first] == [202]
    # The re-arm is one upsert from the ledger's record: no listing of every arm (docs/performance.md).
    assert server.count("list_calls") == lists_after_apply

    # NAS retries the same fire (say our 202 was lost on the way): a 200 no-op, no second run.
    assert server.deliver(np.callback_url, "tick", ts(start)) == 200
    time.sleep(1.0)
    assert len(read_runs(log)) == 1
    assert server.armed().get("tick") == nxt
    assert server.count("jwks_fetches") == 1
    # A duplicate may mean the recorded arm was consumed: serve re-plans the job against a listing, once.
    assert server.count("list_calls") == lists_after_apply + 1


@pytest.mark.timeout(120)
def test_server_side_duplicate_delivery_runs_once(
    nas_project: NasProject, nas_serve: Any, tmp_path: Path
) -> None:
    np, server = nas_project, nas_project.server
    server.fire_duplicate = True  # every fire is sent twice, as after a lost acknowledgement
    log = tmp_path / "runs.log"
    nas_serve(np)
    # Due in ~4 s from when serve is up (each fire reads the job as applied from the ledger).
    start = soon(4)
    np.write_jobs(
        [
            append_job(
                "tick", log, schedule={"kind": "interval", "seconds": 60, "start_at": ts(start)}
            )
        ]
    )
    assert np.run("apply", "--now", real_now(), "--auto-approve").exit_code == 0
    assert server.armed() == {"tick": ts(start)}
    assert server.wait_for(lambda: server.count("fires_delivered") == 1, timeout=20)
    time.sleep(0.5)
    statuses = [f.status for f in server.fires if f.fire_at == ts(start)]
    assert statuses[0] == 202 and statuses[1:] == [200], statuses
    assert len(read_runs(log)) == 1


def _attack_project(np: NasProject, log: Path) -> None:
    # A real job whose schedule has FIRE_AT as an occurrence, so a valid token would run it.
    np.write_jobs([append_job(JOB, log, schedule={"kind": "interval", "seconds": 60})])
    res = np.run("apply", "--auto-approve")  # fires run the job as applied
    assert res.exit_code == 0, res.stdout + res.stderr


@pytest.mark.timeout(180)
def test_jwt_attacks_get_401_malformed_400_and_nothing_runs(
    nas_project: NasProject, nas_serve: Any, tmp_path: Path
) -> None:
    np, server = nas_project, nas_project.server
    server.fire_enabled = False
    log = tmp_path / "runs.log"
    _attack_project(np, log)
    sp = nas_serve(np)
    with httpx.Client(base_url=sp.url, timeout=10) as client:
        for name in sorted(ATTACKS):
            token, data, _ = ATTACKS[name](server)
            headers = {"content-type": "application/json"}
            if token is not None:
                headers["authorization"] = f"Bearer {token}"
            resp = client.post("/api/cron/fire", content=data, headers=headers)
            assert resp.status_code == 401, (name, resp.status_code, resp.text)
        # Well authenticated but a malformed body: 400, nothing runs.
        resp = client.post(
            "/api/cron/fire",
            content=b'{"job_id": "' + JOB.encode() + b'"}',
            headers={"authorization": f"Bearer {server.mint(JOB, FIRE_AT)}"},
        )
        assert resp.status_code == 400, resp.text
        time.sleep(0.5)
        assert read_runs(log) == []
        res = np.run("status", "--format", "json")
        assert res.exit_code == 0, res.stderr
        (status,) = json.loads(res.stdout)["jobs"]
        assert status["last_run"] is None and status["runs_completed"] == 0, status
        # The same path accepts a genuine token, so the 401s above were the verifier's doing.
        fire_at = ts(datetime.fromtimestamp(time.time() // 60 * 60, UTC))
        token = server.mint(JOB, fire_at)
        body = json.dumps({"job_id": JOB, "fire_at": fire_at}).encode()
        resp = client.post(
            "/api/cron/fire",
            content=body,
            headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
        )
        assert resp.status_code == 202, resp.text
        assert server.wait_for(lambda: len(read_runs(log)) == 1, timeout=20)
    # Many verified requests, one key fetch.
    assert server.count("jwks_fetches") == 1


@pytest.mark.timeout(240)
def test_cold_fire_request_processes_share_one_jwks_fetch(
    nas_project: NasProject, tmp_path: Path
) -> None:
    np, server = nas_project, nas_project.server
    server.fire_enabled = False
    log = tmp_path / "runs.log"
    _attack_project(np, log)
    fire_at = ts(datetime.fromtimestamp(time.time() // 60 * 60, UTC))
    body = {"job_id": JOB, "fire_at": fire_at}
    codes = []
    for _ in range(4):
        req = tmp_path / "req.http"
        req.write_bytes(server.raw_fire_request(body, server.mint(JOB, fire_at)))
        res = np.run("fire", "--now", real_now(), "--request", str(req), "--no-replan")
        codes.append(res.exit_code)
        assert res.exit_code == 0, res.stderr
    assert len(read_runs(log)) == 1  # the first claimed and ran; the others were duplicates
    assert server.count("jwks_fetches") == 1

    # Attacks through the cold path: refused before anything else, exit 1, nothing runs.
    for name in (
        "expired",
        "alg none",
        "HS256 with the public key",
        "tampered job_id",
        "missing header",
    ):
        token, data, _ = ATTACKS[name](server)
        req = tmp_path / "attack.http"
        req.write_bytes(server.raw_fire_request(data, token))
        res = np.run("fire", "--now", real_now(), "--request", str(req))
        assert res.exit_code == 1, (name, res.stderr)
        assert "fire rejected" in res.stderr, (name, res.stderr)
        assert "Traceback" not in res.stderr
    assert len(read_runs(log)) == 1
    assert server.count("jwks_fetches") == 1


@pytest.mark.timeout(120)
def test_duplicate_delivery_of_a_stale_arm_leaves_the_job_armed(
    nas_project: NasProject, nas_serve: Any, tmp_path: Path
) -> None:
    # Found by benchmarks/soak.py: while NAS was still delivering occurrence T (the answer lost, a retry
    # pending), an apply saw no live arm and T unclaimed, and armed a catch-up of T, replacing the re-arm
    # serve had just made. That arm fired T again: a duplicate, answered 200 and nothing else, and the job
    # was left with no arm until the next apply or `fire --overdue`.
    np, server = nas_project, nas_project.server
    log = tmp_path / "runs.log"
    nas_serve(np)
    start = soon(4)
    np.write_jobs(
        [
            append_job(
                "tick", log, schedule={"kind": "interval", "seconds": 30, "start_at": ts(start)}
            )
        ]
    )
    assert np.run("apply", "--now", real_now(), "--auto-approve").exit_code == 0
    nxt = ts(start + timedelta(seconds=30))
    assert server.wait_for(lambda: server.armed().get("tick") == nxt, timeout=20)
    assert server.wait_for(lambda: server.count("fires_delivered") == 1, timeout=10)
    # The apply's catch-up arm of T, made as if NAS had not finished delivering T yet.
    with server.lock:
        server.delivered.clear()
    status, _ = server.provision(
        {
            "job_id": "tick",
            "fire_at": ts(start),
            "agent_callback_url": np.callback_url,
            "dedup_key": f"tick:{ts(start)}",
        }
    )
    assert status == 200
    assert server.wait_for(lambda: server.count("fires_delivered") == 2, timeout=20)
    statuses = [f.status for f in server.fires if f.fire_at == ts(start)]
    assert statuses[0] == 202 and statuses[-1] == 200, statuses
    # The duplicate re-planned the job: armed at its next occurrence again, and T ran once.
    assert server.wait_for(lambda: server.armed().get("tick") == nxt, timeout=15), server.snapshot()
    assert len(read_runs(log)) == 1


def _minutely_tick_applied(np: NasProject, tmp_path: Path, start: str) -> list[datetime]:
    """Job ``tick`` every minute from ``start``, applied 30 s before it; NAS does not fire by itself (the
    test plays the race). Returns the first four occurrences."""
    np.server.fire_enabled = False
    t0 = datetime.strptime(start, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    schedule = {"kind": "interval", "seconds": 60, "start_at": start}
    np.write_jobs([append_job("tick", tmp_path / "runs.log", schedule=schedule)])
    assert np.run("apply", "--now", ts(t0 - timedelta(seconds=30)), "--auto-approve").exit_code == 0
    return [t0 + timedelta(minutes=k) for k in range(4)]


@pytest.mark.parametrize("start", ["2019-03-04T05:00:00Z", "2034-10-11T12:00:00Z"])
def test_a_late_rearm_never_moves_the_arm_back_past_a_later_claim(
    nas_project: NasProject, tmp_path: Path, start: str
) -> None:
    # Found by benchmarks/soak.py: the re-arm after occurrence T was planned from the ledger's record and
    # its provider call was slow (faults, retries). Meanwhile an apply armed the catch-up T+2, which fired
    # and re-armed T+3. Then the late upsert of T+1 landed and replaced T+3: T+1 fired stale ("superseded")
    # and the job had no arm until the next apply. The re-arm now sees the later claim and repairs.
    import threading

    from cronplan import fire as firing
    from cronplan.documents.config import load_config
    from cronplan.model import FireCall
    from cronplan.project import Project as CoreProject

    np, server = nas_project, nas_project.server
    at = _minutely_tick_applied(np, tmp_path, start)
    assert server.armed()["tick"] == ts(at[0])

    class Clock:
        def __init__(self, when: datetime) -> None:
            self.when = when

        def now(self) -> datetime:
            return self.when

    config = load_config(str(np.project.config))
    slow_clock = Clock(at[0] + timedelta(seconds=1))
    slow = CoreProject(config, clock=slow_clock)
    claimed = firing.claim(slow, FireCall("tick", at[0]))
    assert claimed.status == "claimed" and claimed.job is not None

    held, release = threading.Event(), threading.Event()

    def hold_first(doc: Any) -> None:
        if doc["fire_at"] == ts(at[1]) and not held.is_set():
            held.set()
            release.wait(20)

    server.before_provision = hold_first
    outcome: list[tuple[Any, Any, Any]] = []
    rearm = threading.Thread(target=lambda: outcome.append(firing.replan_job(slow, claimed.job)))
    rearm.start()
    try:
        assert held.wait(10), "the re-arm of T+1 never reached the provider"
        # While that call hangs: an apply two minutes on arms the catch-up T+2 ...
        now2 = ts(at[2] + timedelta(seconds=5))
        assert np.run("apply", "--now", now2, "--auto-approve").exit_code == 0
        assert server.armed()["tick"] == ts(at[2])
        # ... which fires, runs and is re-armed at T+3.
        fast = CoreProject(config, clock=Clock(at[2] + timedelta(seconds=6)))
        done = firing.fire(fast, FireCall("tick", at[2]))
        assert done.status == "succeeded" and done.next_fire_at == at[3], done
        assert server.armed()["tick"] == ts(at[3])
    finally:
        slow_clock.when = at[2] + timedelta(seconds=7)
        release.set()
        rearm.join(30)
    assert outcome and outcome[0][2] is None, outcome
    # The late upsert of T+1 landed, was seen as stale, and the job is armed at T+3 again.
    assert server.armed()["tick"] == ts(at[3]), server.snapshot()
    record = CoreProject(config).ledger.job_records(["tick"])["tick"]
    assert record.applied_fire_at == at[3]
    assert any(p["fire_at"] == ts(at[1]) for p in server.provisions)  # the late call did land


@pytest.mark.parametrize("start", ["2018-07-08T09:00:00Z", "2035-01-02T03:00:00Z"])
def test_a_rearm_that_finds_the_job_already_armed_sends_that_arm_again(
    nas_project: NasProject, tmp_path: Path, start: str
) -> None:
    # Found by benchmarks/soak.py: a fire's re-arm recorded T+2 in the ledger; an apply running at the
    # same moment (it had listed the arms before that re-arm landed) armed the catch-up T+1 over it at
    # NAS, and recorded it only later. T+1 fired; its re-arm read the record (T+2, "already armed") and
    # did nothing, but NAS held no arm any more: the job stopped until `fire --overdue`.
    from cronplan import fire as firing
    from cronplan.clock import PinnedClock
    from cronplan.documents.config import load_config
    from cronplan.model import FireCall
    from cronplan.project import Project as CoreProject

    np, server = nas_project, nas_project.server
    at = _minutely_tick_applied(np, tmp_path, start)
    config = load_config(str(np.project.config))

    def at_clock(when: datetime) -> CoreProject:
        return CoreProject(config, clock=PinnedClock(when))

    done = firing.fire(at_clock(at[0] + timedelta(seconds=1)), FireCall("tick", at[0]))
    assert done.status == "succeeded" and server.armed()["tick"] == ts(at[1])
    # The state the race leaves: the ledger records T+2, NAS armed T+1 over it and has delivered it.
    rt = at_clock(at[1])
    rt.ledger.record_armed_many([("tick", at[2], np.callback_url)], at=at[1])
    with server.lock:
        del server.arms["tick"]
    done = firing.fire(at_clock(at[1] + timedelta(seconds=1)), FireCall("tick", at[1]))
    assert done.status == "succeeded" and done.rearm_error is None, done
    assert server.armed().get("tick") == ts(at[2]), server.snapshot()
