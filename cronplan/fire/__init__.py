"""The fire pipeline (docs/fire.md): authenticate, reject stale fires, claim exactly once, run, record,
re-arm; manual runs; the misfire backstop.

- ``request``: a raw callback request and the provider's verdict on it (step 1);
- ``scheduled``: the claim of an occurrence, its run and record, and ``fire`` chaining them (steps 2-5);
- ``rearm``: the one-job re-plan that arms the next occurrence (step 4);
- ``running``: running the job as applied and recording how it ended, shared by scheduled and manual runs;
- ``manual``: ``cronplan run``;
- ``backstop``: ``cronplan fire --overdue``.

The names below are the pipeline's interface for the CLI and ``serve``. Each module imports only the model at
load time (a cold ``cronplan fire`` pays for nothing it does not use; docs/performance.md).
"""

from __future__ import annotations

from cronplan.fire.backstop import abandon_dead_runs, fire_overdue, prune_runs, rearm_missing
from cronplan.fire.manual import ManualOutcome, load_applied, run_manual
from cronplan.fire.rearm import replan_job
from cronplan.fire.request import FIRE_PATH, authenticate, parse_http_request
from cronplan.fire.running import applied_job
from cronplan.fire.scheduled import (
    Claim,
    FireOutcome,
    check_horizon,
    claim,
    fire,
    record_result,
    run_claimed,
)

__all__ = [
    "FIRE_PATH",
    "Claim",
    "FireOutcome",
    "ManualOutcome",
    "abandon_dead_runs",
    "applied_job",
    "authenticate",
    "check_horizon",
    "claim",
    "fire",
    "fire_overdue",
    "load_applied",
    "parse_http_request",
    "prune_runs",
    "rearm_missing",
    "record_result",
    "replan_job",
    "run_claimed",
    "run_manual",
]
