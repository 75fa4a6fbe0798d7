"""Validating a large jobs file stays within a small multiple of parsing it (SPEC: <= 5x json.load)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).parent.parent / "benchmarks" / "validate.py"


def _bench_module() -> Any:
    spec = importlib.util.spec_from_file_location("cronplan_bench_validate", BENCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_validate_is_within_5x_of_json_load(capsys: pytest.CaptureFixture[str]) -> None:
    bench = _bench_module()
    # 20,000 jobs keeps the test short; benchmarks/validate.py runs the full 100,000.
    code = bench.main(["--jobs", "20000", "--repeat", "5"])
    out = capsys.readouterr().out
    assert "ratio:" in out
    assert code == 0, out


def test_benchmark_jobs_are_valid_and_cover_every_kind(tmp_path: Path) -> None:
    from cronplan.jobsfile import load_jobs

    bench = _bench_module()
    path = tmp_path / "jobs.json"
    path.write_text(json.dumps({"jobs": [bench.make_job(i) for i in range(60)]}))
    jobs = load_jobs(path).jobs
    assert len(jobs) == 60
    assert {j.schedule.kind for j in jobs} == {"cron", "interval", "once"}
    assert {j.action.kind if j.action else None for j in jobs} == {"command", "http", None}
