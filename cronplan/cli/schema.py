"""Command: schema (print a JSON Schema, for editors and other tools)."""

from __future__ import annotations

import click


@click.command("schema")
@click.argument("name", type=click.Choice(["jobs", "config", "plan"]))
def schema_cmd(name: str) -> None:
    """Print the JSON Schema of jobs.json (jobs), cronplan.yaml (config) or a plan file (plan).

    Its "$id" (https://cronplan.dev/schemas/v1/NAME.schema.json) names it; nothing fetches it. Save the
    output next to your files and point your editor at the copy (see docs/editors.md).
    """
    from cronplan.documents.schemas import schema_path

    click.echo(schema_path(name).read_text(encoding="utf-8"), nl=False)
