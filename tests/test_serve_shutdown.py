"""serve's job pool at shutdown, in-process: every claimed run ends with a record."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from cronplan import fire as firing
from cronplan.clock import PinnedClock
from cronplan.documents.config import Config
from cronplan.model import FireCall
from cronplan.project import Project
from cronplan.server.service import FireService
from cronplan.timefmt import parse_ts

T0 = parse_ts("2026-11-27T09:00:00Z")


@pytest.mark.slow
def test_shutdown_stops_running_and_records_queued_runs(tmp_path: Path) -> None:
    jobs = [
        {"id": f"j{i}", "schedule": {"kind": "interval", "seconds": 60}, "command": ["sleep", "30"]}
        for i in range(3)
    ]
    (tmp_path / "jobs.json").write_text(json.dumps({"jobs": jobs}))
    rt = Project(Config(base_dir=tmp_path), environ={}, clock=PinnedClock(T0))
    for job in rt.load_jobs().jobs:  # as `apply` records them: fires run the applied job
        rt.ledger.record_applied(
            job.id, spec=job.spec, digest=job.digest, fire_at=T0, callback_url=None, at=T0
        )
    logs: list[str] = []
    service = FireService(rt, verifier=None, arm_provider=rt.provider, log=logs.append, workers=1)
    try:
        for i in range(3):
            claimed = firing.claim(rt, FireCall(f"j{i}", T0))
            assert claimed.status == "claimed"
            service.submit(claimed)
        deadline = time.monotonic() + 10
        while True:
            run = rt.ledger.get_run("j0", T0)
            if run is not None and run.status == "running":
                break
            assert time.monotonic() < deadline, "the first job never started"
            time.sleep(0.05)
        assert service.in_flight() == 3
        t0 = time.monotonic()
        service.shutdown(timeout=0.3)
        assert time.monotonic() - t0 < 10
        runs = {r.job_id: r for r in rt.ledger.runs()}
        assert runs["j0"].status == "failed" and "cancelled" in (runs["j0"].error or "")
        for queued in ("j1", "j2"):
            assert runs[queued].status == "failed"
            assert "not run: cronplan serve was shutting down" in (runs[queued].error or "")
        assert all(r.finished_at is not None for r in runs.values())
        assert service.in_flight() == 0
        # Nothing more is accepted.
        status, _doc, claimed = service.handle_fire(None)  # type: ignore[arg-type]
        assert status == 503 and claimed is None
    finally:
        rt.close()
