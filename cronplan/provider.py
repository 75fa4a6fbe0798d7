"""The Provider protocol, and discovery/resolution of providers through entry points.

A provider is a class (or factory) registered in the ``cronplan.providers`` entry-point group and called
with a ``ProviderSettings``. The built-in ``local`` provider is registered through the same group by the
core distribution, and is also known directly so it can never be lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from cronplan.clock import SYSTEM_CLOCK, Clock
from cronplan.model import Arm, FireCall, HttpRequest

ENTRY_POINT_GROUP = "cronplan.providers"
# Set to 1 to ignore every provider that is not built in (tests set it; so can a locked-down CI).
DISABLE_PLUGINS_ENV = "CRONPLAN_DISABLE_PLUGINS"


@dataclass(frozen=True)
class ProviderSettings:
    """What a provider is constructed from.

    ``options`` is the provider's section of cronplan.yaml (``providers.<name>``); ``callback_url`` is the
    base URL fires go to (``{callback_url}/api/cron/fire``); ``base_dir`` is the directory relative paths in
    the options are resolved against; ``environ`` is where secrets (tokens) are read from.
    """

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)
    callback_url: str | None = None
    base_dir: Path = Path(".")
    environ: Mapping[str, str] = field(default_factory=dict)
    #: The command's clock (``cronplan.clock``), for a provider that stamps instants of its own.
    clock: Clock = SYSTEM_CLOCK


@dataclass(frozen=True)
class Availability:
    ok: bool
    detail: str = ""


@runtime_checkable
class Provider(Protocol):
    """A managed scheduler holding at most one live one-shot arm per job id."""

    name: str
    #: False for a provider that calls no URL (local): plans then show ``callback_url: null``.
    calls_back: bool

    def check(self) -> Availability:
        """Is the config present and well formed? Must not touch the network."""
        ...

    def list_arms(self) -> list[Arm]:
        """Every live arm this provider holds."""
        ...

    def arm(self, arm: Arm) -> None:
        """Upsert the arm of ``arm.job_id``; the same ``dedup_key`` again changes nothing."""
        ...

    def cancel(self, job_id: str) -> None:
        """Remove the arm of ``job_id``; unknown job ids are a no-op."""
        ...

    def verify(self, request: HttpRequest) -> FireCall:
        """Authenticate a callback; raise ``AuthError`` (or ``BadRequest``) on anything wrong."""
        ...

    # Optional, looked up with getattr (a provider without it still works):
    #     rearm_without_list: bool
    # True when ``arm`` is an upsert by job id and the ledger's record of the arm can stand in for
    # ``list_arms()`` when a fire re-arms its job (one call per fire, whatever the number of jobs).
    #     def verify_headers(self, headers: Mapping[str, str]) -> None
    # The checks that need no body (a bearer token or signature headers present and well formed), raising
    # ``AuthError``. ``cronplan serve`` calls it before it reads a request body, so a client that cannot
    # be authentic never makes it buffer one (docs/fire.md, "Limits").

    def close(self) -> None:
        """Release connections and pools."""
        ...
