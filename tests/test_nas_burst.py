"""A burst: every job armed at the same instant, fired by the NAS test server into `cronplan serve`.

Asserts behaviour, not timing (benchmarks/burst.py measures that, docs/performance.md): every fire is
answered 2xx, every occurrence runs exactly once, a duplicate (delivered again after its answer, or sent at
the same moment as the first delivery, to the same or to another instance) gets 200, every job is
re-armed, and no re-arm lists the arms. Once with one `serve` on the SQLite ledger, once with three
`serve` processes on one PostgreSQL ledger, the NAS test server spreading the fires over them.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.fixtures_nas import NasProject, free_port, nas_options
from tests.fixtures_serve import append_job, read_runs, real_now

N = 200
#: Jobs whose fire is also sent twice more, at the instant NAS fires it (simultaneous duplicates).
RACED = 40


def ts(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _arm_burst(np: NasProject, log: Path, lead_s: int) -> datetime:
    """N jobs armed at one instant T (returned), ``lead_s`` ahead: time for apply and serve's start."""
    t = datetime.fromtimestamp(math.ceil(time.time()) + lead_s, timezone.utc)
    schedule = {"kind": "interval", "minutes": 60, "start_at": ts(t)}
    np.write_jobs(
        [append_job(f"b{i:03d}", log, label=f"b{i:03d}", schedule=schedule) for i in range(N)]
    )
    res = np.run("apply", "--now", real_now(), "--auto-approve", "--parallelism", "16")
    assert res.exit_code == 0, res.stderr
    assert len(np.server.armed()) == N
    return t


def _race_duplicates(np: NasProject, t: datetime, urls: list[str]) -> threading.Thread:
    """At T, send the fires of the first RACED jobs twice more, at once, to every instance in turn."""
    server = np.server

    def race() -> None:
        time.sleep(max(0.0, t.timestamp() - time.time()))
        senders = [
            threading.Thread(
                target=server.deliver, args=(urls[(i + k) % len(urls)], f"b{i:03d}", ts(t))
            )
            for i in range(RACED)
            for k in range(2)
        ]
        for s in senders:
            s.start()
        for s in senders:
            s.join(60)

    thread = threading.Thread(target=race, daemon=True)
    thread.start()
    return thread


def _check_burst(np: NasProject, t: datetime, log: Path, racer: threading.Thread, logs: Any) -> int:
    """Check the burst's answers, runs and re-arms; returns how many duplicates were answered 200."""
    server = np.server
    done = server.wait_for(
        lambda: server.count("fires_delivered") + server.count("fires_dead") >= N, timeout=150
    )
    assert done, (server.snapshot(), logs()[-2000:])
    racer.join(60)
    assert not racer.is_alive()
    assert server.count("fires_dead") == 0, logs()[-2000:]

    answers: dict[str, Counter[int]] = defaultdict(Counter)
    for f in server.fires:
        answers[f.job_id][f.status] += 1
    assert set(answers) == {f"b{i:03d}" for i in range(N)}
    for job_id, got in answers.items():
        # Exactly one delivery won the claim (202); every other one was a duplicate (200); no failures.
        assert got[202] == 1, (job_id, got)
        assert set(got) <= {200, 202}, (job_id, got)
        # The raced ones came twice more; with fire_duplicate NAS delivers every fire again after its 2xx.
        again = 1 if server.fire_duplicate else 0
        assert got[200] >= (2 if int(job_id[1:]) < RACED else 0) + again, (job_id, got)

    nxt = ts(t + timedelta(minutes=60))
    assert server.wait_for(
        lambda: sum(v == nxt for v in server.armed().values()) == N, timeout=60
    ), logs()[-2000:]
    assert server.wait_for(lambda: len(read_runs(log)) >= N, timeout=60)
    time.sleep(0.5)
    runs = read_runs(log)
    assert Counter((label, fire_at) for label, _at, fire_at in runs) == Counter(
        {(f"b{i:03d}", ts(t)): 1 for i in range(N)}
    )
    return sum(got[200] for got in answers.values())


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_burst_of_simultaneous_fires_runs_each_once(
    nas_project: NasProject, nas_serve: Any, tmp_path: Path
) -> None:
    np, server = nas_project, nas_project.server
    log = tmp_path / "runs.log"
    t = _arm_burst(np, log, 25)
    sp = nas_serve(np)
    lists_before = server.count("list_calls")
    assert time.time() < t.timestamp(), "setup ran past the burst instant"
    racer = _race_duplicates(np, t, [np.callback_url])
    duplicates = _check_burst(np, t, log, racer, sp.stderr)
    # A run's re-arm lists no arms; only a duplicate may re-plan its job (which lists them).
    assert duplicates == 2 * RACED
    assert server.count("list_calls") - lists_before <= duplicates < N


def _start_serve(np: NasProject, port: int, err_path: Path) -> subprocess.Popen[bytes]:
    with open(err_path, "w") as err:
        return subprocess.Popen(
            [
                *(sys.executable, "-m", "cronplan", "--config", str(np.project.config)),
                *("serve", "--host", "127.0.0.1", "--port", str(port)),
            ],
            cwd=np.root,
            env=dict(os.environ),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], err_path: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, err_path.read_text()
        try:
            if httpx.get(url + "/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"serve did not become healthy:\n{err_path.read_text()}")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_burst_into_three_serve_on_one_postgres_ledger_runs_each_once(
    nas_project: NasProject, pg_dsn: str, tmp_path: Path
) -> None:
    np, server = nas_project, nas_project.server
    server.fire_duplicate = True
    ports = [int(np.callback_url.rsplit(":", 1)[1]), free_port(), free_port()]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    doc = {
        "jobs": "jobs.json",
        "provider": "nas",
        "timezone": "UTC",
        "callback_url": np.callback_url,
        "state": pg_dsn,
        "providers": {"nas": nas_options(server)},
    }
    np.project.write_config(yaml.safe_dump(doc, sort_keys=False))
    log = tmp_path / "runs.log"
    t = _arm_burst(np, log, 35)
    errs = [tmp_path / f"serve-{p}.stderr" for p in ports]
    procs = [_start_serve(np, p, e) for p, e in zip(ports, errs, strict=True)]

    def logs() -> str:
        return "\n".join(e.read_text() for e in errs if e.exists())

    try:
        for url, proc, err in zip(urls, procs, errs, strict=True):
            _wait_healthy(url, proc, err)
        server.fire_targets = urls
        assert time.time() < t.timestamp(), "setup ran past the burst instant"
        racer = _race_duplicates(np, t, urls)
        _check_burst(np, t, log, racer, logs)
        # Every instance ran some of the jobs: the burst was spread, not served by one.
        for url, proc, err in zip(urls, procs, errs, strict=True):
            assert proc.poll() is None, logs()[-2000:]
            assert httpx.get(url + "/healthz", timeout=5).status_code == 200
            assert ": succeeded in " in err.read_text(), (url, err.read_text()[-2000:])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
    # The ledger agrees: one run per job, each finished.
    import psycopg

    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT job_id, count(*), min(status) FROM cronplan_runs GROUP BY job_id"
        ).fetchall()
    assert sorted(rows) == [(f"b{i:03d}", 1, "succeeded") for i in range(N)]
