"""``TemporalProvider``: cronplan's Provider Protocol on Temporal workflows.

- arm: start workflow ``cronplan-arm:{dedup_key}`` (a running id is rejected, so the same dedup key starts
  nothing; a closed one may start again), then cancel the job's other running arm workflows (upsert).
- cancel: cancel the job's running arm workflows; one that no worker closes in time is terminated, so a
  cancel takes effect even while every worker is down.
- list_arms: a visibility query for running workflows of the arm type on our task queue.
- verify: the Standard Webhooks signature the worker put on the callback; needs no server.

``temporalio`` is imported only by the methods that talk to the server: ``verify`` (on ``fire``'s cold
path) pays for ``standardwebhooks`` alone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from cronplan.errors import AuthError, BadRequest, ProviderError
from cronplan.model import Arm, FireCall, HttpRequest
from cronplan.provider import Availability, ProviderSettings
from cronplan.timefmt import format_ts, parse_ts
from cronplan_temporal.loop import LoopThread
from cronplan_temporal.settings import (
    WORKFLOW_ID_PREFIX,
    WORKFLOW_TYPE,
    TemporalSettings,
    job_prefix,
    read_secret,
    workflow_id,
)
from cronplan_temporal.signing import BodyError, SignatureError, check_headers, verify

if TYPE_CHECKING:
    from temporalio.client import Client

T = TypeVar("T")

CALL_TIMEOUT_S = 30.0
RPC_TIMEOUT = timedelta(seconds=10)
CONNECT_TIMEOUT = timedelta(seconds=10)
VISIBILITY_WAIT_S = 5.0


class TemporalProvider:
    name = "temporal"
    calls_back = True

    def __init__(self, settings: ProviderSettings) -> None:
        self._settings = settings
        self._options = dict(settings.options)
        self.config = TemporalSettings.from_options(self._options)
        self._environ = settings.environ
        self._loop = LoopThread()
        self._client: Client | None = None

    def __repr__(self) -> str:
        c = self.config
        return f"TemporalProvider(address={c.address!r}, namespace={c.namespace!r}, task_queue={c.task_queue!r})"

    # ------------------------------------------------------------------ Protocol

    def check(self) -> Availability:
        problems = self.config.problems(self._options, self._environ)
        callback = self._settings.callback_url
        if not callback or not callback.startswith(("http://", "https://")):
            problems.append("callback_url must be an http(s) URL: the worker POSTs fires to it")
        import importlib.util

        if importlib.util.find_spec("temporalio") is None:
            problems.append("the temporalio SDK is not installed (pip install temporalio)")
        if problems:
            return Availability(False, "; ".join(problems))
        c = self.config
        return Availability(True, f"{c.address} namespace {c.namespace} task queue {c.task_queue}")

    def list_arms(self) -> list[Arm]:
        return self._call("list arms", self._list_arms)

    def arm(self, arm: Arm) -> None:
        self._call(f"arm {arm.job_id}", lambda client: self._arm(client, arm))

    def cancel(self, job_id: str) -> None:
        self._call(f"cancel {job_id}", lambda client: self._cancel_job(client, job_id, keep=None))

    def verify_headers(self, headers: Mapping[str, str]) -> None:
        """What can be checked before the body is read (``cronplan serve`` calls it first)."""
        try:
            check_headers(headers)
        except SignatureError as exc:
            raise AuthError(f"webhook signature rejected: {exc}") from None

    def verify(self, request: HttpRequest) -> FireCall:
        if request.method.upper() != "POST":
            raise AuthError(f"fire callbacks are POST requests, not {request.method}")
        secret, problem = read_secret(self._environ, self.config.secret_env)
        if problem:
            raise AuthError(f"cannot verify the callback: ${self.config.secret_env} {problem}")
        try:
            job_id, fire_at = verify(secret, request.headers, request.body)
        except SignatureError as exc:
            raise AuthError(f"webhook signature rejected: {exc}") from None
        except BodyError as exc:
            raise BadRequest(str(exc)) from None
        try:
            when = parse_ts(fire_at)
        except ValueError as exc:
            raise BadRequest(f"body.fire_at: {exc}") from None
        return FireCall(job_id=job_id, fire_at=when)

    def close(self) -> None:
        self._client = None
        self._loop.close()

    # ------------------------------------------------------------------ plumbing

    def _call(self, what: str, fn: Callable[[Client], Awaitable[T]]) -> T:
        """Run ``fn(client)`` on the private loop; every SDK failure becomes one ``ProviderError``."""

        async def go() -> T:
            client = await self._connect()
            return await fn(client)

        try:
            return self._loop.run(go(), CALL_TIMEOUT_S)
        except ProviderError:
            raise
        except TimeoutError:
            raise ProviderError(
                f"temporal: {what}: no answer from {self.config.address} within {CALL_TIMEOUT_S:g} s"
            ) from None
        except Exception as exc:  # the SDK raises many kinds; the user needs one message
            raise ProviderError(f"temporal: {what}: {_describe(exc)}") from None

    async def _connect(self) -> Client:
        if self._client is None:
            from temporalio.client import Client

            c = self.config
            try:
                self._client = await Client.connect(
                    c.address, namespace=c.namespace, connect_timeout=CONNECT_TIMEOUT
                )
            except Exception as exc:  # connection failures come in several types
                raise ProviderError(
                    f"temporal: cannot connect to {c.address} (namespace {c.namespace}): {_describe(exc)}"
                ) from None
        return self._client

    def _query(self, extra: str = "") -> str:
        c = self.config
        query = (
            f"WorkflowType = '{WORKFLOW_TYPE}' AND TaskQueue = {_quote(c.task_queue)}"
            " AND ExecutionStatus = 'Running'"
        )
        return f"{query} AND {extra}" if extra else query

    async def _list_arms(self, client: Client) -> list[Arm]:
        arms: list[Arm] = []
        async for execution in client.list_workflows(self._query(), rpc_timeout=RPC_TIMEOUT):
            parsed = _parse_workflow_id(execution.id)
            if parsed is None:
                continue  # not one of ours (a hand-started workflow of the same type)
            job_id, fire_at = parsed
            memo = await execution.memo()
            callback = memo.get("callback_url")
            arms.append(
                Arm(
                    job_id=job_id,
                    fire_at=fire_at,
                    callback_url=callback if isinstance(callback, str) else None,
                    provider_ref=execution.id,
                )
            )
        arms.sort(key=lambda a: (a.job_id, a.fire_at))
        return arms

    async def _arm(self, client: Client, arm: Arm) -> None:
        from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
        from temporalio.exceptions import WorkflowAlreadyStartedError

        from cronplan_temporal.workflow import ArmInput, ArmWorkflow

        callback = arm.callback_url or self._settings.callback_url
        if not callback:
            raise ProviderError(
                f"temporal: arm {arm.job_id}: no callback_url to deliver the fire to"
            )
        wid = workflow_id(arm.dedup_key)
        payload = ArmInput(
            job_id=arm.job_id,
            fire_at=format_ts(arm.fire_at),
            callback_url=callback,
            delivery_seconds=self.config.delivery_seconds,
        )

        async def start(conflict: WorkflowIDConflictPolicy) -> None:
            await client.start_workflow(
                ArmWorkflow.run,
                payload,
                id=wid,
                task_queue=self.config.task_queue,
                # A closed arm of the same occurrence may be started again (a reverted schedule change);
                # a running one is never duplicated.
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                id_conflict_policy=conflict,
                memo={"job_id": arm.job_id, "fire_at": payload.fire_at, "callback_url": callback},
                rpc_timeout=RPC_TIMEOUT,
            )

        try:
            await start(WorkflowIDConflictPolicy.FAIL)
        except WorkflowAlreadyStartedError:
            # Same occurrence already armed: nothing to start, unless it calls back somewhere else now.
            running = await client.get_workflow_handle(wid).describe(rpc_timeout=RPC_TIMEOUT)
            if running.task_queue != self.config.task_queue:
                # Workflow ids are unique per namespace: another project with the same job id is here.
                raise ProviderError(
                    f"temporal: arm {arm.job_id}: workflow {wid} is already running on task queue "
                    f"{running.task_queue!r}, not {self.config.task_queue!r}; give each cronplan project "
                    "its own namespace"
                ) from None
            memo = await running.memo()
            if memo.get("callback_url") != callback:
                await start(WorkflowIDConflictPolicy.TERMINATE_EXISTING)
        await self._cancel_job(client, arm.job_id, keep=wid)
        await self._settle(client, arm.job_id, expect=wid)

    async def _cancel_job(self, client: Client, job_id: str, *, keep: str | None) -> None:
        import asyncio

        from temporalio.client import WorkflowExecutionStatus

        query = self._query(f"WorkflowId STARTS_WITH {_quote(job_prefix(job_id))}")
        doomed = [
            execution.id
            async for execution in client.list_workflows(query, rpc_timeout=RPC_TIMEOUT)
            if execution.id != keep
        ]
        for wid in doomed:
            await _ignore_not_found(client.get_workflow_handle(wid).cancel(rpc_timeout=RPC_TIMEOUT))
        if not doomed:
            return
        # A worker closes a cancelled workflow within milliseconds; with no worker running, the
        # cancellation would wait for one, and the arm would still be listed. Terminate the stragglers.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.cancel_wait_seconds
        pending = list(doomed)
        while pending:
            still: list[str] = []
            for wid in pending:
                try:
                    info = await client.get_workflow_handle(wid).describe(rpc_timeout=RPC_TIMEOUT)
                except Exception as exc:
                    if _is_not_found(exc):
                        continue
                    raise
                if info.status == WorkflowExecutionStatus.RUNNING:
                    still.append(wid)
            pending = still
            if not pending or loop.time() >= deadline:
                break
            await asyncio.sleep(0.05)
        for wid in pending:
            await _ignore_not_found(
                client.get_workflow_handle(wid).terminate(
                    reason="cronplan cancel: no worker acted on the cancellation",
                    rpc_timeout=RPC_TIMEOUT,
                )
            )
        if keep is None:
            await self._settle(client, job_id, expect=None)

    async def _running_ids(self, client: Client, job_id: str) -> set[str]:
        query = self._query(f"WorkflowId STARTS_WITH {_quote(job_prefix(job_id))}")
        return {e.id async for e in client.list_workflows(query, rpc_timeout=RPC_TIMEOUT)}

    async def _settle(self, client: Client, job_id: str, *, expect: str | None) -> None:
        """Wait (bounded) until the visibility store shows exactly ``expect`` running for the job.

        Visibility trails writes by a few tens of milliseconds; waiting here gives callers
        read-your-writes: a ``plan`` right after ``apply`` sees what was applied.
        """
        import asyncio

        want = {expect} if expect else set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + VISIBILITY_WAIT_S
        delay = 0.02
        while await self._running_ids(client, job_id) != want and loop.time() < deadline:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.25)


def _parse_workflow_id(wid: str) -> tuple[str, Any] | None:
    if not wid.startswith(WORKFLOW_ID_PREFIX):
        return None
    job_id, sep, stamp = wid[len(WORKFLOW_ID_PREFIX) :].partition(":")
    if not sep or not job_id:
        return None
    try:
        return job_id, parse_ts(stamp)
    except ValueError:
        return None


def _quote(value: str) -> str:
    """A string literal for a visibility query."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _is_not_found(exc: BaseException) -> bool:
    from temporalio.service import RPCError, RPCStatusCode

    return isinstance(exc, RPCError) and exc.status == RPCStatusCode.NOT_FOUND


async def _ignore_not_found(call: Awaitable[Any]) -> None:
    """Cancelling or terminating a workflow that already closed is what we wanted anyway."""
    from temporalio.service import RPCError, RPCStatusCode

    try:
        await call
    except RPCError as exc:
        if exc.status not in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            raise


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


__all__ = ["TemporalProvider"]
