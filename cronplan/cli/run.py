"""Command: ``run`` (run the applied job now, by hand: a ``manual`` run in the ledger)."""

from __future__ import annotations

import os
import subprocess
import sys

import click

from cronplan.cli.completion import complete_job_ids
from cronplan.cli.context import AppContext, pass_app
from cronplan.errors import CronplanError, JobFailed
from cronplan.runner import sigterm_interrupts as _sigterm_interrupts


@click.command("run")
@click.argument("job_id", metavar="JOB_ID", shell_complete=complete_job_ids)
@click.option(
    "--wait",
    is_flag=True,
    help="Run in the foreground, wait for the job and exit 1 if it failed.",
)
@pass_app
def run_command(app: AppContext, job_id: str, wait: bool) -> None:
    """Run the applied job JOB_ID now, by hand (a ``manual`` run in the ledger).

    A manual run consumes no occurrence: it does not count towards ``repeat`` and leaves the arm alone.
    Without --wait the run is started in a background process and this command returns at once; see the
    result with ``cronplan runs JOB_ID`` or ``cronplan logs JOB_ID --last``.
    """
    from cronplan import fire as firing

    rt = app.project()
    if not wait:
        firing.load_applied(rt, job_id)  # refuse a job that is not applied before detaching
        rt.close()
        argv = [sys.executable, "-m", "cronplan"]
        if app.config_path:
            argv += ["--config", os.path.abspath(app.config_path)]
        argv += ["-q", "run", job_id, "--wait"]
        try:
            child = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # survives this command and its terminal
                env=dict(app.environ),
            )
        except OSError as exc:
            raise CronplanError(f"cannot start the background run: {exc.strerror or exc}") from None
        app.err(
            f"Started a manual run of {job_id} in the background (pid {child.pid}); "
            f"see `cronplan logs {job_id} --last` for its result."
        )
        return
    with _sigterm_interrupts():
        outcome = firing.run_manual(rt, job_id)
    if outcome.inactive is not None:
        app.err(f"Note: the applied job {job_id} is {outcome.inactive}; it was run by hand anyway.")
    if app.verbose and outcome.result.output_tail:
        app.err(outcome.result.output_tail.rstrip("\n"))
    if not outcome.ok:
        raise JobFailed(outcome.describe())
    app.err(outcome.describe())
