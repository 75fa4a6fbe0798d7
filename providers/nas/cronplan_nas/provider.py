"""``NasProvider``: the cronplan Provider for the NAS managed scheduler.

Constructed from ``ProviderSettings`` (the ``providers.nas`` section); construction never fails and never
touches the network, so ``check()`` can report every problem. The HTTP client and the fire verifier are
made on first use: a cold ``cronplan fire`` process pays only for what it verifies.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from cronplan.errors import ProviderError, ProviderUnavailable
from cronplan.model import Arm, FireCall, HttpRequest
from cronplan.provider import Availability, ProviderSettings
from cronplan.timefmt import format_ts, parse_ts
from cronplan_nas.options import NasOptions, callback_problem, parse_options, read_token

if TYPE_CHECKING:
    import httpx

    from cronplan_nas.client import NasClient
    from cronplan_nas.verify import FireVerifier


class NasProvider:
    name = "nas"
    calls_back = True
    #: A provision is an upsert by job id: a fire re-arms from the ledger's record, without listing
    #: every arm (cronplan/fire.py, ``replan_job``).
    rearm_without_list = True

    def __init__(
        self,
        settings: ProviderSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        # The wall clock on purpose, not cronplan's --now clock (docs/planning.md, "The clock"):
        # it checks real-world token lifetimes.
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        jwks_fetch: Callable[[str, float], Any] | None = None,
    ) -> None:
        self.settings = settings
        self.options: NasOptions = parse_options(settings.options, base_dir=settings.base_dir)
        self._transport = transport
        self._sleep = sleep
        self._monotonic = monotonic
        self._clock = clock
        self._rng = rng
        self._jwks_fetch = jwks_fetch
        self._lock = threading.Lock()
        self._client: NasClient | None = None
        self._verifier: FireVerifier | None = None

    def __repr__(self) -> str:
        return f"NasProvider(portal_url={self.options.portal_url!r})"

    # ------------------------------------------------------------------ availability

    def problems(self) -> list[str]:
        """Everything that keeps this provider from working, without touching the network."""
        found = list(self.options.problems)
        if p := callback_problem(self.settings.callback_url):
            found.append(p)
        _, problem = read_token(self.settings.environ, self.options.token_env)
        if problem:
            found.append(problem)
        return found

    def check(self) -> Availability:
        found = self.problems()
        if found:
            return Availability(False, "; ".join(found))
        return Availability(True, f"NAS portal {self.options.portal_url}")

    # ------------------------------------------------------------------ arms

    def list_arms(self) -> list[Arm]:
        arms: list[Arm] = []
        for entry in self._get_client().list():
            job_id, fire_at = entry.get("job_id"), entry.get("fire_at")
            if not isinstance(job_id, str) or not isinstance(fire_at, str):
                raise ProviderError(f"NAS listed an arm without job_id/fire_at: {_short(entry)}")
            try:
                when = parse_ts(fire_at)
            except ValueError:
                raise ProviderError(
                    f"NAS listed arm of {job_id} with a malformed fire_at {fire_at!r}"
                ) from None
            callback = entry.get("agent_callback_url") or entry.get("callback_url")
            ref = entry.get("schedule_id")
            arms.append(
                Arm(
                    job_id=job_id,
                    fire_at=when,
                    callback_url=callback if isinstance(callback, str) else None,
                    provider_ref=None if ref is None else str(ref),
                )
            )
        return arms

    def arm(self, arm: Arm) -> None:
        callback = arm.callback_url or self.settings.callback_url
        if not callback:
            raise ProviderUnavailable("callback_url is not set (NAS needs a base URL to call back)")
        self._get_client().provision(
            job_id=arm.job_id,
            fire_at=format_ts(arm.fire_at),
            agent_callback_url=callback.rstrip("/"),
            dedup_key=arm.dedup_key,
        )

    def cancel(self, job_id: str) -> None:
        self._get_client().cancel(job_id)

    # ------------------------------------------------------------------ fires

    def verify_headers(self, headers: Mapping[str, str]) -> None:
        """What can be checked before the body is read (``cronplan serve`` calls it first)."""
        from cronplan_nas.verify import check_headers

        check_headers(headers)

    def verify(self, request: HttpRequest) -> FireCall:
        return self._get_verifier().verify(request)

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    # ------------------------------------------------------------------ lazily made parts

    def _get_client(self) -> NasClient:
        with self._lock:
            if self._client is None:
                opts = self.options
                if opts.problems or not opts.portal_url:
                    raise ProviderUnavailable(
                        "NAS provider is misconfigured: " + "; ".join(opts.problems)
                    )
                token, problem = read_token(self.settings.environ, opts.token_env)
                if problem:
                    raise ProviderUnavailable(problem)
                from cronplan_nas.client import NasClient

                self._client = NasClient(
                    opts,
                    token,
                    transport=self._transport,
                    sleep=self._sleep,
                    clock=self._monotonic,
                    rng=self._rng,
                )
            return self._client

    def _get_verifier(self) -> FireVerifier:
        with self._lock:
            if self._verifier is None:
                from cronplan_nas.jwks import JwksCache
                from cronplan_nas.verify import FireVerifier, VerifierConfig

                opts = self.options
                missing = [k for k in ("jwks_url", "issuer", "audience") if not getattr(opts, k)]
                if missing or opts.problems:
                    # Fail closed: nothing is accepted without the full verification config.
                    raise ProviderUnavailable(
                        "NAS fire verification is misconfigured: " + "; ".join(opts.problems)
                    )
                keys = JwksCache(
                    opts.jwks_url,
                    opts.jwks_cache,
                    ttl=opts.jwks_ttl_seconds,
                    floor=opts.jwks_refetch_floor_seconds,
                    fetch_timeout=min(opts.timeout, 10.0),
                    clock=self._clock,
                    fetch=self._jwks_fetch,
                )
                self._verifier = FireVerifier(
                    VerifierConfig(
                        issuer=opts.issuer,
                        audience=opts.audience,
                        require_body_binding=opts.require_body_binding,
                        leeway_seconds=opts.leeway_seconds,
                    ),
                    keys,
                    clock=self._clock,
                )
            return self._verifier


def _short(entry: Any) -> str:
    text = repr(entry)
    return text if len(text) <= 120 else text[:120] + "..."
