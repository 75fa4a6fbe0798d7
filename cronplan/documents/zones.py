"""Time zones by name, cached, and the hint for an unknown one (used by the jobs and config loaders)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from cronplan.documents.schema_errors import did_you_mean

ZONE_CACHE: dict[str, ZoneInfo | None] = {}


def zone(name: str) -> ZoneInfo | None:
    if name not in ZONE_CACHE:
        try:
            ZONE_CACHE[name] = ZoneInfo(name)
        except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
            ZONE_CACHE[name] = None
    return ZONE_CACHE[name]


def zone_hint(name: str) -> str:
    import zoneinfo

    zones = zoneinfo.available_timezones() | {"UTC"}
    lowered = {z.lower(): z for z in zones}
    if name.lower() in lowered:
        return f" (did you mean '{lowered[name.lower()]}'?)"
    return did_you_mean(name, zones)
