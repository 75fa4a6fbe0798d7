"""A burst: every job armed at the same instant, fired by the NAS test server into one `cronplan serve`.

Asserts behaviour, not timing (benchmarks/burst.py measures that, docs/performance.md): every fire is
answered 2xx, every occurrence runs exactly once, every job is re-armed, and no re-arm lists the arms.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures_nas import NasProject
from tests.fixtures_serve import append_job, read_runs, real_now

N = 200


def ts(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_burst_of_simultaneous_fires_runs_each_once(
    nas_project: NasProject, nas_serve: Any, tmp_path: Path
) -> None:
    np, server = nas_project, nas_project.server
    log = tmp_path / "runs.log"
    t = datetime.fromtimestamp(math.ceil(time.time()) + 25, timezone.utc)
    schedule = {"kind": "interval", "minutes": 60, "start_at": ts(t)}
    np.write_jobs(
        [append_job(f"b{i:03d}", log, label=f"b{i:03d}", schedule=schedule) for i in range(N)]
    )
    res = np.run("apply", "--now", real_now(), "--auto-approve", "--parallelism", "16")
    assert res.exit_code == 0, res.stderr
    assert len(server.armed()) == N
    sp = nas_serve(np)
    lists_before = server.count("list_calls")
    assert time.time() < t.timestamp(), "setup ran past the burst instant"

    done = server.wait_for(
        lambda: server.count("fires_delivered") + server.count("fires_dead") >= N, timeout=150
    )
    assert done, (server.snapshot(), sp.stderr()[-2000:])
    assert server.count("fires_dead") == 0
    answered = {f.job_id for f in server.fires if f.status in (200, 202)}
    assert len(answered) == N
    nxt = ts(t + timedelta(minutes=60))
    assert server.wait_for(
        lambda: sum(v == nxt for v in server.armed().values()) == N, timeout=60
    ), sp.stderr()[-2000:]
    assert server.wait_for(lambda: len(read_runs(log)) >= N, timeout=60)
    time.sleep(0.5)
    runs = read_runs(log)
    assert Counter((label, fire_at) for label, _at, fire_at in runs) == Counter(
        {(f"b{i:03d}", ts(t)): 1 for i in range(N)}
    )
    assert server.count("list_calls") == lists_before
