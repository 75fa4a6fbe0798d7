"""The arm workflow: sleep on a durable timer until ``fire_at``, then deliver the fire once.

This module runs inside Temporal's workflow sandbox: it imports nothing but the standard library and
``temporalio``, and it never reads the clock or the environment except through ``workflow``. The webhook
secret never appears here: the activity reads it from the worker's own environment, so it is never part of
workflow inputs or history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from temporalio import workflow
from temporalio.common import RetryPolicy

WORKFLOW_TYPE = "CronplanArm"
ACTIVITY_NAME = "cronplan_deliver_fire"
NON_RETRYABLE = "FireRejected"


@dataclass(frozen=True)
class ArmInput:
    """What a workflow is started with; also what the activity receives."""

    job_id: str
    fire_at: str  # RFC 3339 UTC with Z, second precision (the wire form)
    callback_url: str
    delivery_seconds: float = 3600.0


def parse_fire_at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


@workflow.defn(name=WORKFLOW_TYPE)
class ArmWorkflow:
    @workflow.run
    async def run(self, arm: ArmInput) -> str:
        # Temporal's own (replay-safe) workflow time: the timer waits in the real world.
        delay = (parse_fire_at(arm.fire_at) - workflow.now()).total_seconds()
        if delay > 0:
            await workflow.sleep(delay)
        result: str = await workflow.execute_activity(
            ACTIVITY_NAME,
            arm,
            result_type=str,
            start_to_close_timeout=timedelta(seconds=30),
            schedule_to_close_timeout=timedelta(seconds=max(arm.delivery_seconds, 30.0)),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1),
                backoff_coefficient=2.0,
                maximum_interval=timedelta(seconds=60),
                non_retryable_error_types=[NON_RETRYABLE],
            ),
        )
        return result
