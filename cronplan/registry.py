"""Finding providers (entry-point group ``cronplan.providers``) and resolving the configured one.

The core distribution registers ``local`` through the same group a third-party provider uses; ``local`` is
also known here directly, so it survives a broken or missing entry-point table. With
``CRONPLAN_DISABLE_PLUGINS`` set, entry points of every distribution other than cronplan are ignored.

Resolution never substitutes one provider for another: an unknown, broken or unavailable provider is a
``ProviderUnavailable`` saying exactly what is wrong. (Falling back to ``local`` is ``serve``'s decision.)
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cronplan.errors import CronplanError, ProviderUnavailable
from cronplan.provider import (
    DISABLE_PLUGINS_ENV,
    ENTRY_POINT_GROUP,
    Availability,
    Provider,
    ProviderSettings,
)

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

BUILTIN_SOURCE = "built-in"
_CORE_DIST = "cronplan"
_BUILTIN_TARGETS = {"local": "cronplan.local.provider:LocalProvider"}


@dataclass(frozen=True)
class ProviderInfo:
    """One discovered provider: where it comes from and whether it could be imported."""

    name: str
    source: str  # "built-in" or the name of the distribution that registers it
    version: str | None
    target: str  # "module:attr"
    error: str | None = None  # why it cannot be loaded (import failure, name clash), else None


@dataclass(frozen=True)
class _Candidate:
    info: ProviderInfo
    load: Callable[[], Any]


def plugins_disabled(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    value = env.get(DISABLE_PLUGINS_ENV, "").strip().lower()
    return value not in ("", "0", "false", "no", "off")


def _core_version() -> str:
    # The package's own version, not its dist metadata: reading metadata costs fire's cold start ~20 ms.
    from cronplan import __version__

    return str(__version__)


def _load_target(target: str) -> Any:
    import importlib

    module_name, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj


def _dist_name(ep: EntryPoint) -> str | None:
    dist = getattr(ep, "dist", None)
    name = getattr(dist, "name", None) if dist is not None else None
    return str(name) if name else None


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _candidates(environ: Mapping[str, str] | None) -> dict[str, list[_Candidate]]:
    """Every provider by name, built-ins first; several candidates for a name mean a clash."""
    found: dict[str, list[_Candidate]] = {}
    version = _core_version()
    for name, target in _BUILTIN_TARGETS.items():
        info = ProviderInfo(name=name, source=BUILTIN_SOURCE, version=version, target=target)
        found[name] = [_Candidate(info, functools.partial(_load_target, target))]
    disabled = plugins_disabled(environ)
    from importlib import metadata  # lazy: resolving the built-in never scans installed dists

    try:
        entry_points = list(metadata.entry_points(group=ENTRY_POINT_GROUP))
    except Exception:  # a corrupt installed dist must not take the built-ins down with it
        entry_points = []
    seen: set[tuple[str, str]] = set()
    for ep in sorted(entry_points, key=lambda e: (e.name, _dist_name(e) or "", e.value)):
        dist = _dist_name(ep)
        is_core = dist is not None and _normalise(dist) == _CORE_DIST
        if is_core and ep.name in _BUILTIN_TARGETS:
            continue  # the built-in, already known
        if disabled and not is_core:
            continue
        source = BUILTIN_SOURCE if is_core else (dist or "unknown distribution")
        if (ep.name, source) in seen:
            continue  # the same distribution visible twice on sys.path
        seen.add((ep.name, source))
        ep_version = getattr(getattr(ep, "dist", None), "version", None)
        info = ProviderInfo(name=ep.name, source=source, version=ep_version, target=ep.value)
        found.setdefault(ep.name, []).append(_Candidate(info, ep.load))
    return found


def _clash_error(name: str, candidates: list[_Candidate]) -> str | None:
    if len(candidates) < 2:
        return None
    if candidates[0].info.source == BUILTIN_SOURCE and name in _BUILTIN_TARGETS:
        return None  # a built-in always wins; the others are reported individually
    sources = ", ".join(c.info.source for c in candidates)
    return f"provider {name!r} is registered by several distributions ({sources}); uninstall all but one"


def install_command(name: str, source: str | None = None) -> str:
    """The pip command that installs the distribution of provider ``name``.

    ``source`` is the distribution that registers it, when known; else the naming convention of the
    project's provider distributions, ``cronplan-<name>`` (docs/architecture.md).
    """
    if source is None or source in (BUILTIN_SOURCE, "unknown distribution"):
        source = f"cronplan-{name}"
    return f"pip install {source}"


def _load(candidate: _Candidate) -> Any:
    try:
        factory = candidate.load()
    except ImportError as exc:
        # The distribution is half there (its module or one of its dependencies is missing): installing
        # it again brings both back.
        raise _LoadFailed(
            f"cannot import {candidate.info.target}: {type(exc).__name__}: {exc}. "
            f"Install it: {install_command(candidate.info.name, candidate.info.source)}"
        ) from None
    except Exception as exc:  # a broken plugin is reported as such, never a crash of cronplan
        raise _LoadFailed(
            f"cannot import {candidate.info.target}: {type(exc).__name__}: {exc}"
        ) from None
    if not callable(factory):
        raise _LoadFailed(f"{candidate.info.target} is not a class or factory")
    return factory


class _LoadFailed(Exception):
    pass


def discover(environ: Mapping[str, str] | None = None, *, load: bool = True) -> list[ProviderInfo]:
    """Every provider, sorted by name (built-in first within a name). ``load`` imports each to check it."""
    result: list[ProviderInfo] = []
    for name, candidates in sorted(_candidates(environ).items()):
        clash = _clash_error(name, candidates)
        for i, candidate in enumerate(candidates):
            info = candidate.info
            error: str | None = clash
            if error is None and i > 0:
                error = f"ignored: {name!r} is the built-in provider, which always takes precedence"
            if error is None and load:
                try:
                    _load(candidate)
                except _LoadFailed as exc:
                    error = str(exc)
            if error is not None:
                info = ProviderInfo(info.name, info.source, info.version, info.target, error)
            result.append(info)
    return result


def version_lines(environ: Mapping[str, str] | None = None) -> list[str]:
    """``providers:`` and one ``  NAME VERSION (SOURCE)`` line per provider, read from entry points only.

    Nothing is imported (``cronplan --version`` stays cheap and works with a broken plugin installed);
    ``cronplan providers`` is the command that checks whether each one loads and is available.
    """
    infos = discover(environ, load=False)
    width = max(len(i.name) for i in infos)
    lines = ["providers:"]
    for info in infos:
        note = f" - {info.error}" if info.error else ""
        lines.append(f"  {info.name:<{width}}  {info.version or 'unknown'} ({info.source}){note}")
    if plugins_disabled(environ):
        lines.append(
            f"  (plugins of other distributions are ignored: {DISABLE_PLUGINS_ENV} is set)"
        )
    return lines


def known_names(environ: Mapping[str, str] | None = None) -> list[str]:
    return sorted(_candidates(environ))


def _settings_environ(settings: ProviderSettings) -> Mapping[str, str]:
    return settings.environ if settings.environ else os.environ


def construct(settings: ProviderSettings) -> tuple[Provider, ProviderInfo]:
    """Import and construct the provider named by ``settings`` (no availability check)."""
    name = settings.name
    environ = _settings_environ(settings)
    if name in _BUILTIN_TARGETS:
        # Skips the entry-point scan: the built-in can never be shadowed, and fire's cold start pays less.
        info = ProviderInfo(name, BUILTIN_SOURCE, _core_version(), _BUILTIN_TARGETS[name])
        candidates = [_Candidate(info, functools.partial(_load_target, info.target))]
    else:
        candidates = _candidates(environ).get(name, [])
    if not candidates:
        raise ProviderUnavailable(_unknown_message(name, environ))
    clash = _clash_error(name, candidates)
    if clash:
        raise ProviderUnavailable(clash)
    candidate = candidates[0]
    try:
        factory = _load(candidate)
    except _LoadFailed as exc:
        raise ProviderUnavailable(f"provider {name!r} ({candidate.info.source}): {exc}") from None
    try:
        provider = factory(settings)
    except CronplanError as exc:
        raise ProviderUnavailable(f"provider {name!r} is not available: {exc.message}") from None
    except Exception as exc:  # a plugin failing to start is the user's problem to fix, not a crash
        raise ProviderUnavailable(
            f"provider {name!r} ({candidate.info.source}) failed to start: {type(exc).__name__}: {exc}"
        ) from None
    return provider, candidate.info


def _unknown_message(name: str, environ: Mapping[str, str]) -> str:
    """Why ``name`` resolves to nothing, with the fix: a "did you mean", or the install command."""
    import difflib

    names = known_names(environ)
    known = ", ".join(names)
    if plugins_disabled(environ):
        return (
            f"unknown provider {name!r}: {DISABLE_PLUGINS_ENV} is set, so installed plugins are "
            f"ignored; known providers: {known}"
        )
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    if close:
        return (
            f"unknown provider {name!r}; did you mean {close[0]!r}? Known providers: {known}. "
            "Fix `provider:` in cronplan.yaml"
        )
    return (
        f"unknown provider {name!r}: no installed distribution provides it (entry point group "
        f"{ENTRY_POINT_GROUP}; known providers: {known}). If it is a cronplan provider plugin, install "
        f"it: {install_command(name)}; else fix `provider:` in cronplan.yaml"
    )


def check(provider: Provider) -> Availability:
    """The provider's own ``check()``, with a crash in it reported as unavailability."""
    try:
        result = provider.check()
    except CronplanError as exc:
        return Availability(False, exc.message)
    except Exception as exc:  # as above: a crashing check() means "unavailable", with the reason
        return Availability(False, f"check() failed: {type(exc).__name__}: {exc}")
    if not isinstance(result, Availability):
        return Availability(bool(getattr(result, "ok", False)), str(getattr(result, "detail", "")))
    return result


def resolve(settings: ProviderSettings) -> Provider:
    """The provider named by ``settings``, constructed and checked; ``ProviderUnavailable`` otherwise."""
    provider, _info = construct(settings)
    availability = check(provider)
    if not availability.ok:
        with contextlib.suppress(Exception):
            provider.close()
        detail = availability.detail or "its check() reported it unavailable"
        raise ProviderUnavailable(f"provider {settings.name!r} is not available: {detail}")
    return provider
