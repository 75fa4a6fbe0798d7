"""Command: import (crontab, Kubernetes CronJobs, systemd timers, Hermes Agent jobs -> jobs.json)."""

from __future__ import annotations

import click

from cronplan.cli.context import AppContext, pass_app

_SOURCES = ("crontab", "k8s", "systemd", "hermes")


@click.command("import")
@click.option("--from", "source", type=click.Choice(_SOURCES), required=True,
              help="What the files are: crontab, k8s (CronJob YAML), systemd (.timer units) or hermes.")  # fmt: skip
@click.option("--system", is_flag=True,
              help="Read crontabs as system crontabs (a user field before the command); "
              "/etc/crontab and files under a cron.d/ are read so anyway.")  # fmt: skip
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@pass_app
def import_cmd(app: AppContext, source: str, system: bool, files: tuple[str, ...]) -> None:
    """Print a jobs.json equivalent to FILE... on stdout.

    Whatever cannot be carried over exactly is reported on stderr, one FILE:LINE: line per entry
    (see docs/import.md). Exit 0 when at least one job was imported.
    """
    import json

    from cronplan.documents.importers import import_files
    from cronplan.errors import CronplanError, UsageError

    if system and source != "crontab":
        raise UsageError("--system applies to --from crontab only")
    result = import_files(source, files, system=system)
    for note in result.notes:
        app.err(str(note))
    if not result.count:
        raise CronplanError(
            f"nothing to import from {', '.join(files)}: no entry could be carried over "
            "(the lines above say why)"
        )
    click.echo(json.dumps(result.document, indent=2, ensure_ascii=False))
    jobs = "job" if result.count == 1 else "jobs"
    app.info(f"Imported {result.count} {jobs}; {len(result.notes)} notes.")
