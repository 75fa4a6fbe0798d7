"""Command: ``fire`` (handle one callback: a trusted local call, a raw request, or the overdue backstop).

Its fast path, without click, is cronplan/_fastfire.py: messages and exit codes are the same.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from cronplan.cli.context import AppContext, pass_app
from cronplan.errors import JobFailed, UsageError
from cronplan.runner import sigterm_interrupts as _sigterm_interrupts


@click.command("fire")
@click.option(
    "--job-id", metavar="ID", default=None, help="Job to fire (a trusted local invocation)."
)
@click.option(
    "--fire-at", "fire_at_text", metavar="TS", default=None, help="Occurrence to fire (RFC 3339)."
)
@click.option(
    "--request",
    "request_path",
    metavar="FILE|-",
    default=None,
    help="A raw HTTP request as the provider sent it; authenticated by the provider first.",
)
@click.option(
    "--no-replan", is_flag=True, help="Do not re-arm the job (the arm stays where it is)."
)
@click.option(
    "--overdue",
    is_flag=True,
    help="Misfire backstop: fire every arm overdue beyond its grace window.",
)
@click.option("--now", "now_text", metavar="TS", default=None, help="Pin the clock (RFC 3339).")
@pass_app
def fire_command(
    app: AppContext,
    job_id: str | None,
    fire_at_text: str | None,
    request_path: str | None,
    no_replan: bool,
    overdue: bool,
    now_text: str | None,
) -> None:
    """Handle one fire: authenticate, claim exactly once, run, record, re-arm.

    A duplicate or stale fire is a successful no-op (exit 0); a job that ran and failed exits 1.
    """
    from cronplan import fire as firing
    from cronplan.cli.options import parse_clock, parse_ts_option
    from cronplan.model import FireCall

    modes = sum(
        x
        for x in (job_id is not None or fire_at_text is not None, request_path is not None, overdue)
    )
    if modes != 1:
        raise UsageError("give exactly one of --job-id/--fire-at, --request FILE|-, or --overdue")
    rt = app.project(parse_clock(now_text))

    if overdue:
        from cronplan.timefmt import format_ts

        with _sigterm_interrupts():
            abandoned = firing.abandon_dead_runs(rt)
            outcomes = firing.fire_overdue(rt)
            rearmed = firing.rearm_missing(rt)
            pruned = firing.prune_runs(rt)
        if pruned:
            app.info(f"Pruned {pruned} run record(s) by retention.")
        for run in abandoned:
            what = (
                f"occurrence {format_ts(run.fire_at)}"
                if run.fire_at is not None
                else f"manual run {run.run_id}"
            )
            app.err(f"{run.job_id}: {what} recorded as abandoned: {run.error}")
        for outcome in outcomes:
            app.err(outcome.describe())
            _show_output(app, outcome)
        for action, why in rearmed:
            at = format_ts(action.after.fire_at) if action.after is not None else "?"
            if why is None:
                app.err(f"{action.job_id}: had no live arm; armed at {at}")
            else:
                app.err(f"{action.job_id}: had no live arm; arming at {at} FAILED: {why}")
        if not outcomes and not rearmed and not abandoned:
            app.info("No overdue arms and no missing ones.")
        failed = [o for o in outcomes if not o.ok]
        unarmed = [a for a, why in rearmed if why is not None]
        if failed or unarmed:
            raise JobFailed(
                f"{len(failed)} of {len(outcomes)} overdue fire(s) failed; "
                f"{len(unarmed)} of {len(rearmed)} missing arm(s) could not be armed"
            )
        return

    if request_path is not None:
        raw = sys.stdin.buffer.read() if request_path == "-" else _read_file(request_path)
        # Authentication comes before anything else touches the jobs file or the ledger.
        call = firing.authenticate(rt.provider, firing.parse_http_request(raw))
    else:
        if job_id is None or fire_at_text is None:
            raise UsageError("--job-id and --fire-at go together")
        call = FireCall(job_id, parse_ts_option(fire_at_text, "--fire-at"))

    with _sigterm_interrupts():
        outcome = firing.fire(rt, call, replan=not no_replan)
    _show_output(app, outcome)
    if not outcome.ok:
        raise JobFailed(outcome.describe())
    app.err(outcome.describe())


def _read_file(path: str) -> bytes:
    from cronplan.errors import CronplanError

    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise CronplanError(f"cannot read raw request {path!r}: {exc.strerror or exc}") from None


def _show_output(app: AppContext, outcome: Any) -> None:
    result = getattr(outcome, "result", None)
    if app.verbose and result is not None and result.output_tail:
        app.err(result.output_tail.rstrip("\n"))
