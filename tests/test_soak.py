"""The soak (benchmarks/soak.py), shortened to about 75 s: ``serve`` with the NAS provider against the NAS
test server with 30 % injected faults, jobs.json rewritten and applied every few seconds, ``serve`` killed
with SIGKILL and restarted with ``fire --overdue`` after each restart. Every occurrence due runs exactly
once, counted by the jobs themselves (see the module docstring of benchmarks/soak.py for which
occurrences may be absent and why)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_soak_every_occurrence_runs_exactly_once(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "soak.py"),
            "--minutes",
            "1.25",
            "--seed",
            "20261204",
            "--keep",
            str(tmp_path / "soak"),
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=200,
    )
    assert proc.returncode in (0, 1), proc.stderr
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert figures["problems"] == [], figures
    assert proc.returncode == 0
    assert figures["duplicates"] == 0 and figures["lost"] == 0, figures
    # The run was hostile and busy, or it proved nothing.
    assert figures["kills"] >= 2, figures
    assert figures["applies"] >= 8, figures
    assert figures["faults"].get("fault_drop_after", 0) > 0, figures
    assert all(
        figures["faults"].get(f"fire_fault_{k}", 0) > 0 for k in ("duplicate", "delay", "lost")
    )
    assert figures["occurrences_due"] >= 100, figures
    # Most due occurrences ran on time or late; only catch-up rules may skip some.
    skipped = (
        figures["covered_by_late_fire"]
        + figures["skipped_at_rearm"]
        + figures["skipped_at_apply"]
        + figures["skipped_by_catch_up"]
    )
    assert figures["run_once"] + skipped == figures["occurrences_due"], figures
    assert figures["run_once"] >= 0.6 * figures["occurrences_due"], figures
    # The jobs' lines are the ground truth: each line is one run, and none ran twice.
    lines = (tmp_path / "soak" / "runs.log").read_text().splitlines()
    assert len(lines) == len(set(" ".join(line.split()[:2]) for line in lines)) == figures["runs"]
