"""The validate benchmark (budget: <= 5x json.load) and the jobs it generates."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).parent.parent / "benchmarks" / "validate.py"


def _bench_module(path: Path = BENCH) -> Any:
    spec = importlib.util.spec_from_file_location(f"cronplan_bench_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.timeout(240)
def test_validate_benchmark_runs_and_reports_its_figures(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The benchmark stays runnable. Its budget (<= 5x json.load) is checked by running it
    (``python benchmarks/validate.py``), not here: a timed test on a shared machine is noise."""
    bench = _bench_module()
    code = bench.main(["--jobs", "2000", "--repeat", "1"])
    out = capsys.readouterr().out
    for line in (
        "json.load:",
        "cronplan validate:",
        "ratio:",
        "load_jobs (build):",
        "one invalid job:",
    ):
        assert line in out, out
    assert code in (0, 1)


def test_benchmark_jobs_are_valid_and_cover_every_kind(tmp_path: Path) -> None:
    from cronplan.documents.jobsfile import load_jobs

    gen = _bench_module(BENCH.parent / "jobsgen.py")
    path = tmp_path / "jobs.json"
    path.write_text(json.dumps(gen.generate_jobs(200)))
    jobs = load_jobs(path).jobs
    assert len(jobs) == 200
    assert {j.schedule.kind for j in jobs} == {"cron", "interval", "once"}
    assert {j.action.kind if j.action else None for j in jobs} == {"command", "http", None}
