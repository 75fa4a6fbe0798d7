"""Command: ``providers`` (every discovered provider: its source, version, and whether it is usable)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from cronplan.cli.context import AppContext, pass_app

if TYPE_CHECKING:
    from cronplan.documents.config import Config


@dataclass(frozen=True)
class ProviderStatus:
    name: str
    source: str
    version: str | None
    available: bool
    detail: str
    configured: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "version": self.version,
            "available": self.available,
            "detail": self.detail,
        }


def provider_statuses(config: Config, environ: Mapping[str, str]) -> list[ProviderStatus]:
    """Every discovered provider, checked with its settings from ``config`` (no network)."""
    from cronplan import registry
    from cronplan.project import Project

    rt = Project(config, environ=environ)
    statuses: list[ProviderStatus] = []
    for info in registry.discover(environ):
        configured = info.name == config.provider
        if info.error is not None:
            statuses.append(
                ProviderStatus(info.name, info.source, info.version, False, info.error, configured)
            )
            continue
        available, detail = False, ""
        try:
            provider, _ = registry.construct(rt.provider_settings(info.name))
        except Exception as exc:  # one broken provider must not hide the others
            detail = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        else:
            try:
                result = registry.check(provider)
                available, detail = result.ok, result.detail
            finally:
                with contextlib.suppress(Exception):  # only listing: a failed close changes nothing
                    provider.close()
        statuses.append(
            ProviderStatus(info.name, info.source, info.version, available, detail, configured)
        )
    return statuses


def render_text(statuses: list[ProviderStatus]) -> str:
    rows = [("", "NAME", "SOURCE", "VERSION", "STATUS")]
    for s in statuses:
        state = "available" if s.available else "unavailable"
        if s.detail:
            state += f": {s.detail}"
        rows.append(("*" if s.configured else "", s.name, s.source, s.version or "-", state))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r[:4])) + "  " + r[4] for r in rows
    ]
    lines.append("(* = the configured provider)" if any(s.configured for s in statuses) else "")
    return "\n".join(line.rstrip() for line in lines).rstrip() + "\n"


@click.command("providers")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format.",
)
@pass_app
def providers_cmd(app: AppContext, fmt: str) -> None:
    """List discovered providers: where each comes from, its version, and whether it is usable."""
    from cronplan.registry import plugins_disabled

    config = app.load_config()
    statuses = provider_statuses(config, dict(app.environ))
    if plugins_disabled(app.environ):
        app.err("Note: CRONPLAN_DISABLE_PLUGINS is set: installed provider plugins are not listed.")
    if not any(s.configured for s in statuses):
        app.err(f"Warning: the configured provider {config.provider!r} is not installed.")
    if fmt == "json":
        doc = {"format_version": "1", "providers": [s.to_json() for s in statuses]}
        click.echo(json.dumps(doc, indent=2))
    else:
        click.echo(render_text(statuses), nl=False)
