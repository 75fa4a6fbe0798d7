"""Command: ``force-unlock`` (remove a stuck apply lock)."""

from __future__ import annotations

import click

from cronplan.cli.context import AppContext, pass_app


@click.command("force-unlock")
@click.argument("lock_id", metavar="LOCK_ID")
@pass_app
def force_unlock(app: AppContext, lock_id: str) -> None:
    """Remove a stuck apply lock (the id is in the error of the apply that could not get it)."""
    rt = app.project()
    rt.ledger.force_unlock(lock_id)
    click.echo(f"Lock {lock_id} removed. Make sure no apply is still running.")
