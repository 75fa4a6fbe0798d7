"""The delivery activity: POST ``{job_id, fire_at}`` to ``{callback_url}/api/cron/fire``, signed.

A 2xx answer is delivery (``202`` accepted, ``200`` a duplicate the claim absorbed). ``408``, ``429``, any
``5xx`` and connection errors are retried by the workflow's retry policy with backoff; any other ``4xx``
(``401`` bad signature, ``400`` malformed body) will not improve on retry and ends the workflow.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from cronplan_temporal.settings import FIRE_PATH
from cronplan_temporal.signing import fire_body, sign
from cronplan_temporal.workflow import ACTIVITY_NAME, NON_RETRYABLE, ArmInput

REQUEST_TIMEOUT_S = 20.0


class FireDelivery:
    def __init__(self, secret: str) -> None:
        self._secret = secret

    @activity.defn(name=ACTIVITY_NAME)
    async def deliver(self, arm: ArmInput) -> str:
        import httpx

        body = fire_body(arm.job_id, arm.fire_at)
        # One id per fire, the same on every retry: the receiver may treat it as an idempotency key.
        webhook_id = f"cronplan-fire:{arm.job_id}:{arm.fire_at}"
        headers = sign(self._secret, webhook_id, body).as_dict()
        headers["content-type"] = "application/json"
        url = arm.callback_url.rstrip("/") + FIRE_PATH
        try:
            async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S) as client:
                response = await client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise ApplicationError(f"POST {url}: {type(exc).__name__}: {exc}") from None
        status = response.status_code
        if 200 <= status < 300:
            return str(status)
        detail = response.text[:200].strip()
        if 400 <= status < 500 and status not in (408, 429):
            raise ApplicationError(
                f"POST {url}: {status} {detail}", type=NON_RETRYABLE, non_retryable=True
            )
        raise ApplicationError(f"POST {url}: {status} {detail}")
