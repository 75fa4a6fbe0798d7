"""Command: ``apply`` (execute a plan through the provider: re-planned now, or a saved PLANFILE)."""

from __future__ import annotations

import getpass
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from cronplan.cli.context import AppContext, pass_app
from cronplan.cli.options import ProgressReporter, load_jobs, now_option, parse_clock
from cronplan.cli.planning import compute_plan, echo, render_plan, require_runner
from cronplan.errors import (
    ApplyFailed,
    CronplanError,
    IntentMismatch,
    StalePlanError,
    UsageError,
    scrub,
)

if TYPE_CHECKING:
    from cronplan.applier import ApplyResult
    from cronplan.model import Job, Plan
    from cronplan.project import Project

LOCK_LEASE_SECONDS = 120.0


@contextmanager
def _apply_lock(rt: Project, timeout: float) -> Iterator[None]:
    """Hold the apply lock; a background thread renews its lease while the apply (or its prompt) runs,
    so only a process that died loses it."""
    import threading

    holder = f"{getpass.getuser()}@{socket.gethostname()} pid {os.getpid()}"
    ledger = rt.ledger
    lock = ledger.acquire_lock(
        holder, lease_seconds=LOCK_LEASE_SECONDS, timeout=timeout, clock=rt.clock
    )
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(LOCK_LEASE_SECONDS / 4):
            with suppress(CronplanError):
                ledger.renew_lock(lock.lock_id, lease_seconds=LOCK_LEASE_SECONDS, at=rt.clock.now())

    renewer = threading.Thread(target=renew, name="cronplan-lock-lease", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join(timeout=5)
        # A lock we could not release expires with its lease; the apply's own outcome matters more.
        with suppress(CronplanError):
            ledger.release_lock(lock.lock_id)


@click.command()
@click.argument("planfile", required=False, metavar="[PLANFILE]")
@click.option(
    "-f", "--file", "jobs_path", metavar="JOBS", help="Jobs file (default: from cronplan.yaml)."
)
@click.option(
    "--auto-approve", is_flag=True, help="Apply without asking (required off a terminal)."
)
@click.option(
    "--parallelism",
    type=click.IntRange(1, 256),
    default=10,
    show_default=True,
    help="Provider calls in flight at once.",
)
@click.option(
    "--expect-intent", metavar="DIGEST", help="Refuse unless the re-planned intent equals DIGEST."
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option(
    "--lock-timeout",
    type=click.FloatRange(0),
    default=0.0,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for the apply lock.",
)
@now_option
@click.option("--allow-empty", is_flag=True, help="Allow an empty jobs.json to cancel every arm.")
@pass_app
def apply(
    app: AppContext,
    planfile: str | None,
    jobs_path: str | None,
    auto_approve: bool,
    parallelism: int,
    expect_intent: str | None,
    fmt: str,
    lock_timeout: float,
    now_text: str | None,
    allow_empty: bool,
) -> None:
    """Execute a plan through the provider (re-planning now, or exactly a saved PLANFILE)."""
    from cronplan.applier import apply_plan
    from cronplan.planfile import intent_digest

    clock = parse_clock(now_text)
    now = clock.now()
    if planfile and expect_intent:
        raise UsageError(
            "--expect-intent re-plans now; it cannot be combined with a saved PLANFILE"
        )
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if not planfile and not auto_approve and not interactive:
        raise CronplanError(
            "apply needs approval: not on a terminal, so pass --auto-approve "
            "(or apply a saved plan: cronplan plan --out PLANFILE, then cronplan apply PLANFILE)"
        )
    rt = app.project(clock)
    jobs_file = None
    if not planfile:  # a saved plan carries the definitions it applies
        jobs_file = load_jobs(app, rt, jobs_path)
        require_runner(app, rt, jobs_file)
    with _apply_lock(rt, lock_timeout):
        if planfile:
            the_plan, jobs_by_id = _load_saved_plan(app, rt, planfile, jobs_path, now)
        else:
            assert jobs_file is not None
            the_plan = compute_plan(rt, jobs_file, now, allow_empty=allow_empty)
            jobs_by_id = jobs_file.by_id()
            if expect_intent is not None:
                digest = intent_digest(the_plan)
                if digest != expect_intent.strip():
                    raise IntentMismatch(
                        f"Plan has changed since it was approved: intent {digest} does not match the "
                        f"expected {expect_intent.strip()}. Nothing was applied; review the new plan "
                        "(cronplan plan) and approve it again."
                    )
        if fmt == "text":
            echo(render_plan(the_plan, "text", app, jobs_by_id))
        if not the_plan.has_changes:
            if fmt == "json":
                echo(_apply_json(the_plan, None))
            return
        if not planfile and not auto_approve:
            answer = click.prompt(
                "Do you want to apply these actions? Only 'yes' will be accepted",
                default="",
                show_default=False,
                err=True,
            )
            if answer.strip() != "yes":
                raise CronplanError("Apply cancelled: nothing was changed.")
        progress = ProgressReporter(the_plan.summary.changes, quiet=app.quiet)
        result = apply_plan(
            the_plan,
            rt.provider,
            rt.ledger,
            jobs_by_id,
            clock=rt.clock,
            parallelism=parallelism,
            progress=progress,
        )
        from cronplan.fire import prune_runs

        prune_runs(rt)  # retention: old run records go, per-job counts stay
    if fmt == "json":
        echo(_apply_json(the_plan, result))
    else:
        _report(app, result)
    if result.failed:
        raise ApplyFailed(
            f"{len(result.failed)} of {len(result.failed) + len(result.done)} actions failed; "
            "the others were applied. Run apply again to converge."
        )


def _load_saved_plan(
    app: AppContext, rt: Project, planfile: str, jobs_path: str | None, now: datetime
) -> tuple[Plan, dict[str, Job]]:
    """The saved plan and the job definitions it applies, once it is found current and unmodified."""
    from cronplan.planfile import (
        check_basis,
        check_stale,
        check_unmodified,
        jobs_from_definitions,
        load_plan,
    )

    saved = load_plan(planfile)
    provider = rt.provider
    if saved.provider != provider.name:
        raise StalePlanError(
            f"Saved plan is stale: it was made for provider {saved.provider!r}, "
            f"but the configured provider is {provider.name!r}"
        )
    ledger = rt.ledger
    if saved.lineage is not None and saved.lineage != ledger.lineage():
        raise StalePlanError(
            "Saved plan is stale: it was made against a different ledger (lineage)"
        )
    carried = [a for a in saved.actions if a.is_change and a.job_digest is not None]
    if saved.definitions or not carried:
        jobs = jobs_from_definitions(saved, source=planfile, default_tz=rt.config.timezone)
    else:
        jobs = _legacy_definitions(app, rt, saved, jobs_path)
    ids = list(saved.basis)
    arms_now = [a for a in provider.list_arms() if a.job_id in saved.basis]
    records_now = ledger.job_records(ids)
    check_basis(saved, arms_now, records_now)
    check_unmodified(saved, jobs, records_now, source=planfile)
    check_stale(saved, arms_now, records_now, now)
    if rt.config.runner is None:
        lacking = sorted(i for i, job in jobs.items() if job.action is None)
        if lacking:
            raise CronplanError(
                f"{planfile}: job(s) {', '.join(lacking)} have no 'command' or 'http' action and no "
                "'runner' is configured to run them: set 'runner' in cronplan.yaml, then plan again"
            )
    return saved, jobs


def _legacy_definitions(
    app: AppContext, rt: Project, saved: Plan, jobs_path: str | None
) -> dict[str, Job]:
    """A plan saved before plans carried their definitions: jobs.json, refused if a planned job changed."""
    jobs_file = load_jobs(app, rt, jobs_path)
    jobs = jobs_file.by_id()
    for action in saved.actions:
        if action.is_change and action.job_digest is not None:
            job = jobs.get(action.job_id)
            if job is None or job.digest != action.job_digest:
                raise StalePlanError(
                    f"Saved plan is stale: job {action.job_id!r} changed in {jobs_file.path} since the plan "
                    "was made; run cronplan plan again"
                )
    return {i: jobs[i] for i in saved.basis if i in jobs}


def _report(app: AppContext, result: ApplyResult) -> None:
    counts = {"arm": 0, "rearm": 0, "update": 0, "cancel": 0}
    for a in result.done:
        if a.action in counts:
            counts[a.action] += 1
    for action, error in result.failed:
        label = "re-arm" if action.action == "rearm" else action.action
        click.echo(scrub(f"Error: {label} {action.job_id} failed: {error}"), err=True)
    line = (
        f"{counts['arm']} armed, {counts['rearm']} re-armed, "
        + (f"{counts['update']} updated, " if counts["update"] else "")
        + f"{counts['cancel']} cancelled"
        + (f", {len(result.failed)} failed" if result.failed else "")
    )
    click.echo(("Apply failed: " if result.failed else "Apply complete: ") + line + ".")


def _apply_json(the_plan: Plan, result: ApplyResult | None) -> str:
    import json

    from cronplan.planfile import plan_to_json

    doc: dict[str, Any] = {"format_version": "1", "plan": plan_to_json(the_plan)}
    if result is None:
        doc["result"] = {"applied": [], "failed": []}
    else:
        doc["result"] = {
            "applied": [{"job_id": a.job_id, "action": a.action} for a in result.done],
            "failed": [
                {"job_id": a.job_id, "action": a.action, "error": e} for a, e in result.failed
            ],
        }
    return json.dumps(doc, indent=2) + "\n"
