"""cronplan-temporal: the ``temporal`` provider of cronplan (each arm a Temporal workflow).

The entry point ``temporal = "cronplan_temporal:TemporalProvider"`` (group ``cronplan.providers``) names the
provider class; the worker runs as ``cronplan-temporal worker [--config PATH]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from cronplan_temporal.provider import TemporalProvider


def __getattr__(name: str) -> Any:
    # Lazy, so the workflow sandbox (which re-imports this package) never loads the provider and cronplan.
    if name == "TemporalProvider":
        from cronplan_temporal.provider import TemporalProvider

        return TemporalProvider
    raise AttributeError(f"module 'cronplan_temporal' has no attribute {name!r}")


__all__ = ["TemporalProvider", "__version__"]
