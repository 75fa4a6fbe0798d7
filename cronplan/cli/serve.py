"""Command: ``serve`` (POST /api/cron/fire and GET /healthz; with the local provider, its timer loop)."""

from __future__ import annotations

import click

from cronplan.cli.context import AppContext, pass_app


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8787, show_default=True, type=click.IntRange(0, 65535), help="Port."
)
@click.option(
    "--shutdown-timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0),
    help="On SIGTERM/SIGINT, how long running jobs may finish before they are stopped.",
)
@pass_app
def serve_command(app: AppContext, host: str, port: int, shutdown_timeout: float) -> None:
    """Serve POST /api/cron/fire and GET /healthz; with the local provider, also run its timer loop."""
    from cronplan.errors import scrub
    from cronplan.server.serve import serve

    rt = app.project()
    code = serve(
        rt,
        host=host,
        port=port,
        shutdown_timeout=shutdown_timeout,
        log=app.err,
        warn=lambda message: click.echo(scrub(message), err=True),
        verbose=app.verbose,
    )
    if code:
        raise click.exceptions.Exit(code)
