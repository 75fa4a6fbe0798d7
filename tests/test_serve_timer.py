"""`cronplan serve` with the local provider: the timer loop fires arms on time, through the fire pipeline."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from cronplan.local.timer import TimerLoop
from cronplan.model import Arm
from cronplan.timefmt import format_ts, parse_ts
from tests.fixtures_core import Project
from tests.fixtures_serve import ServeFactory, append_job, read_runs, real_now

TOLERANCE_S = 0.3


def ledger_runs(project: Project, job_id: str | None = None) -> list[Any]:
    from cronplan.ledger.sqlite import SqliteLedger

    led = SqliteLedger(project.root / ".cronplan" / "state.db")
    try:
        return led.runs(job_id)
    finally:
        led.close()


def local_arms(project: Project) -> dict[str, datetime]:
    from cronplan.local.provider import LocalProvider
    from cronplan.provider import ProviderSettings

    local = LocalProvider(ProviderSettings("local", base_dir=project.root))
    try:
        return {a.job_id: a.fire_at for a in local.list_arms()}
    finally:
        local.close()


@pytest.mark.slow
def test_one_second_interval_fires_every_second_on_time(
    project: Project, serve_process: ServeFactory
) -> None:
    log = project.root / "runs.log"
    project.write_jobs([append_job("tick", log, schedule={"kind": "interval", "seconds": 1})])
    serve_process(project.root)
    # Applied by another process after serve started: serve must notice it (within 1 s) and fire on time.
    res = project.run("apply", "--now", real_now(), "--auto-approve")
    applied_at = time.time()
    assert res.exit_code == 0, res.stderr
    time.sleep(10.5)
    runs = sorted(
        (r for r in ledger_runs(project, "tick") if r.started_at), key=lambda r: r.fire_at
    )
    # Every occurrence from the first one on fired; none skipped, none twice.
    assert len(runs) >= 9, [format_ts(r.fire_at) for r in runs]
    fire_times = [r.fire_at for r in runs]
    assert all((b - a) == timedelta(seconds=1) for a, b in itertools.pairwise(fire_times)), (
        fire_times
    )
    # The first arm is the first occurrence at or after apply's clock: at most 1 s after apply returned.
    assert fire_times[0].timestamp() <= applied_at + 1.0
    late = [(format_ts(r.fire_at), (r.started_at - r.fire_at).total_seconds()) for r in runs]
    assert all(abs(d) <= TOLERANCE_S for _, d in late), late
    assert all(r.status == "succeeded" for r in runs if r.finished_at)
    # The job's own clock agrees that it ran then (allowing for a Python start-up on a busy machine).
    for _, at, fire_at in read_runs(log):
        assert -TOLERANCE_S <= at - parse_ts(fire_at).timestamp() <= 1.5


@pytest.mark.slow
def test_cron_with_seconds_near_occurrence_fires_on_time(
    project: Project, serve_process: ServeFactory
) -> None:
    log = project.root / "runs.log"
    serve_process(project.root)
    # A 6-field expression for a time a few seconds from the real clock. A cold `apply` on a busy machine
    # can take seconds; if it armed too late (tomorrow's occurrence), try again with a later time.
    for _attempt in range(3):
        target = (datetime.now(timezone.utc) + timedelta(seconds=5)).replace(microsecond=0)
        expr = f"{target.second} {target.minute} {target.hour} * * *"
        project.write_jobs(
            [append_job("cron", log, schedule={"kind": "cron", "expr": expr, "tz": "UTC"})]
        )
        res = project.run("apply", "--now", real_now(), "--auto-approve")
        assert res.exit_code == 0, res.stderr
        if local_arms(project) == {"cron": target}:
            break
    else:
        pytest.fail("could not arm an occurrence a few seconds ahead (machine too slow?)")
    wait_s = (target - datetime.now(timezone.utc)).total_seconds() + 2
    time.sleep(max(0.0, wait_s))
    [run] = ledger_runs(project, "cron")
    assert run.fire_at == target
    assert run.started_at is not None
    assert abs((run.started_at - target).total_seconds()) <= TOLERANCE_S
    # Re-armed for tomorrow's occurrence.
    assert local_arms(project) == {"cron": target + timedelta(days=1)}


@pytest.mark.slow
def test_once_and_repeat_under_serve(project: Project, serve_process: ServeFactory) -> None:
    log = project.root / "runs.log"
    sp = serve_process(project.root)
    # A run_at far enough ahead that the cold `apply` below arms it in time; on a machine so busy that
    # it did not (a past `once` time is never armed), try again with a later one.
    for _attempt in range(3):
        run_at = (datetime.now(timezone.utc) + timedelta(seconds=5)).replace(microsecond=0)
        once = {"kind": "once", "run_at": format_ts(run_at)}
        twice = {"kind": "interval", "seconds": 1}
        project.write_jobs(
            [
                append_job("once", log, label="once", schedule=once),
                append_job("twice", log, label="twice", schedule=twice, repeat={"times": 2}),
            ]
        )
        assert project.run("apply", "--now", real_now(), "--auto-approve").exit_code == 0
        if local_arms(project).get("once") == run_at:
            break
    else:
        pytest.fail("could not arm a once job a few seconds ahead (machine too slow?)")
    time.sleep((run_at - datetime.now(timezone.utc)).total_seconds() + 3)
    labels = [label for label, _, _ in read_runs(log)]
    assert labels.count("once") == 1, sp.stderr()
    assert labels.count("twice") == 2
    assert local_arms(project) == {}
    res = project.run("plan", "--now", real_now(), "--detailed-exitcode")
    assert res.exit_code == 0, res.stdout + res.stderr


@pytest.mark.slow
def test_fallback_when_provider_unavailable(project: Project, serve_process: ServeFactory) -> None:
    """serve with an unknown provider: a loud warning, the applied jobs armed locally, the timer keeps
    them firing; an unapplied edit of jobs.json stays out (apply is the only door)."""
    import subprocess
    import sys

    log = project.root / "runs.log"
    fb = append_job("fb", log, schedule={"kind": "interval", "seconds": 1})
    project.write_jobs([fb])
    project.apply()  # applied while the provider (local) worked
    (project.root / "local.yaml").write_text(project.config.read_text())
    project.write_config("jobs: jobs.json\nprovider: nosuchprovider\n")
    sp = serve_process(project.root)
    health = sp.wait_healthy()
    assert health["fallback"] is True and health["timer"] is True
    assert "WARNING" in sp.stderr() and "nosuchprovider" in sp.stderr()
    import httpx

    resp = httpx.post(f"{sp.url}/api/cron/fire", content=b"{}", timeout=10)
    assert resp.status_code == 503
    time.sleep(3)
    assert len(read_runs(log)) >= 2
    # A job only added to jobs.json is not armed: nothing applied it.
    added = append_job("added", log, label="added", schedule={"kind": "interval", "seconds": 1})
    project.write_jobs([fb, added])
    time.sleep(2.5)
    assert not any(label == "added" for label, _, _ in read_runs(log)), sp.stderr()
    # Once applied (here with a config whose provider works, on the same store and ledger) it fires.
    res = subprocess.run(
        [sys.executable, "-m", "cronplan", "--config", "local.yaml", "apply", "--auto-approve"],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    time.sleep(3)
    assert any(label == "added" for label, _, _ in read_runs(log)), sp.stderr()


# --------------------------------------------------------------------------- the loop itself, in-process


class _Store:
    def __init__(self) -> None:
        self.gen = 0
        self.arms: list[Arm] = []
        self.lock = threading.Lock()

    def generation(self) -> int:
        with self.lock:
            return self.gen

    def list_arms(self) -> list[Arm]:
        with self.lock:
            return list(self.arms)

    def set(self, arms: list[Arm]) -> None:
        with self.lock:
            self.arms = arms
            self.gen += 1


@pytest.mark.slow
def test_timer_loop_hands_out_each_arm_once_and_sees_changes() -> None:
    store = _Store()
    got: list[tuple[str, float]] = []
    loop = TimerLoop(store, lambda a: got.append((a.dedup_key, time.time())), poll_s=0.5)
    loop.start()
    try:
        now = datetime.now(timezone.utc)
        soon = now + timedelta(seconds=0.8)
        past = now - timedelta(seconds=5)
        store.set([Arm("a", soon), Arm("b", past)])  # changed "by another process": no wake() call
        time.sleep(1.5)
        keys = [k for k, _ in got]
        assert keys == [Arm("b", past).dedup_key, Arm("a", soon).dedup_key]
        fired_a = got[1][1]
        assert abs(fired_a - soon.timestamp()) <= TOLERANCE_S
        # The fired arms stay in the store (not yet re-armed): never handed out twice.
        time.sleep(1.0)
        assert len(got) == 2
        later = datetime.now(timezone.utc) + timedelta(seconds=0.3)
        store.set([Arm("a", later), Arm("b", past)])
        time.sleep(0.8)
        assert [k for k, _ in got][2:] == [Arm("a", later).dedup_key]
    finally:
        loop.stop()
    assert loop.stopped
