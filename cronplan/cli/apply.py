"""Commands: plan, apply, show, status, force-unlock."""

from __future__ import annotations

import getpass
import os
import socket
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from cronplan.cli.completion_cmds import complete_job_ids
from cronplan.cli.options import (
    ProgressReporter,
    emit_annotations,
    load_jobs,
    now_option,
    parse_clock,
)
from cronplan.cli.root import AppContext, cli, pass_app
from cronplan.errors import (
    EXIT_CHANGES,
    ApplyFailed,
    CronplanError,
    IntentMismatch,
    StalePlanError,
    UsageError,
    scrub,
)

if TYPE_CHECKING:
    from cronplan.applier import ApplyResult
    from cronplan.documents.jobsfile import JobsFile
    from cronplan.model import Job, Plan
    from cronplan.project import Project

LOCK_LEASE_SECONDS = 120.0


def _compute_plan(
    rt: Project,
    jobs_file: JobsFile,
    now: datetime,
    *,
    targets: Sequence[str] = (),
    excludes: Sequence[str] = (),
    allow_empty: bool = False,
) -> Plan:
    from cronplan import planner

    provider = rt.provider
    arms = provider.list_arms()
    ledger = rt.ledger
    jobs = jobs_file.jobs
    if targets:
        unknown = sorted(set(targets) - {j.id for j in jobs} - {a.job_id for a in arms})
        if unknown:
            raise CronplanError(
                f"--target names no job in {jobs_file.path} and no live arm: {', '.join(unknown)}"
            )
    return planner.plan(
        jobs,
        arms,
        ledger.job_records(),
        now,
        provider=provider.name,
        callback_url=rt.callback_url_for_arms,
        targets=targets,
        excludes=excludes,
        allow_empty=allow_empty,
        lineage=ledger.lineage(),
    )


def _render(
    plan: Plan,
    fmt: str,
    app: AppContext,
    jobs: Mapping[str, Job] | None = None,
    label: str | None = None,
) -> str:
    """Render a plan; ``jobs`` (the definitions it was computed from) adds names, relative times and the
    markdown timeline."""
    from cronplan import render

    text: str
    if fmt == "json":
        text = render.render_json(plan)
    elif fmt == "markdown":
        text = render.render_markdown(plan, jobs=jobs, label=label)
    else:
        text = render.render_text(plan, color=app.color, verbose=app.verbose > 0, jobs=jobs)
    return text


def label_option(f: Any) -> Any:
    return click.option(
        "--label",
        metavar="NAME",
        default=None,
        callback=_check_label,
        help="Markdown only: one sticky PR comment per label (an environment: staging, prod).",
    )(f)


def _check_label(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from cronplan.render.markdown import LABEL_RE

    if value is not None and not LABEL_RE.match(value):
        raise click.BadParameter(
            "use letters, digits, '.', '_' and '-' (at most 64 characters), e.g. prod"
        )
    return value


def _markdown_only(fmt: str, label: str | None) -> None:
    if label is not None and fmt != "markdown":
        raise UsageError(
            "--label names the sticky comment of a markdown plan: add --format markdown"
        )


def _echo_json(plan: Plan) -> None:
    """The plan document as bytes straight to stdout: a million-job plan is never held as text too."""
    from cronplan.planfile import dumps_plan_bytes

    data = dumps_plan_bytes(plan)
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _echo(text: str) -> None:
    # The renderers emit ANSI codes only when --color decided so; click would strip them off a tty.
    click.echo(text, nl=not text.endswith("\n"), color=True)


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


# --------------------------------------------------------------------------- plan


@cli.command()
@click.option(
    "-f", "--file", "jobs_path", metavar="JOBS", help="Jobs file (default: from cronplan.yaml)."
)
@click.option(
    "--out", "out", metavar="PLANFILE", help="Save the plan; `apply PLANFILE` executes exactly it."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
)
@click.option(
    "--detailed-exitcode", is_flag=True, help="Exit 0 for no changes, 2 for changes, 1 on error."
)
@now_option
@click.option("--target", "targets", multiple=True, metavar="ID", shell_complete=complete_job_ids,
              help="Only plan this job (repeatable).")  # fmt: skip
@click.option("--exclude", "excludes", multiple=True, metavar="ID", shell_complete=complete_job_ids,
              help="Leave this job out (repeatable).")  # fmt: skip
@click.option("--allow-empty", is_flag=True, help="Allow an empty jobs.json to cancel every arm.")
@label_option
@pass_app
def plan(
    app: AppContext,
    jobs_path: str | None,
    out: str | None,
    fmt: str,
    detailed_exitcode: bool,
    now_text: str | None,
    targets: tuple[str, ...],
    excludes: tuple[str, ...],
    allow_empty: bool,
    label: str | None,
) -> None:
    """Show the actions that would converge the live arms to jobs.json."""
    _markdown_only(fmt, label)
    rt = app.project(parse_clock(now_text))
    now = rt.clock.now()
    jobs_file = load_jobs(app, rt, jobs_path)
    _require_runner(app, rt, jobs_file)
    result = _compute_plan(
        rt, jobs_file, now, targets=targets, excludes=excludes, allow_empty=allow_empty
    )
    if out:
        from cronplan.planfile import save_plan

        save_plan(result, out)
        app.err(f"Saved the plan to {out}. Apply exactly it with: cronplan apply {out}")
    if fmt == "json":
        _echo_json(result)
    else:
        _echo(_render(result, fmt, app, jobs_file.by_id(), label))
    if detailed_exitcode and result.has_changes:
        click.get_current_context().exit(EXIT_CHANGES)


# --------------------------------------------------------------------------- apply


@cli.command()
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
        _require_runner(app, rt, jobs_file)
    with _apply_lock(rt, lock_timeout):
        if planfile:
            the_plan, jobs_by_id = _load_saved_plan(app, rt, planfile, jobs_path, now)
        else:
            assert jobs_file is not None
            the_plan = _compute_plan(rt, jobs_file, now, allow_empty=allow_empty)
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
            _echo(_render(the_plan, "text", app, jobs_by_id))
        if not the_plan.has_changes:
            if fmt == "json":
                _echo(_apply_json(the_plan, None))
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
        _echo(_apply_json(the_plan, result))
    else:
        _report(app, result)
    if result.failed:
        raise ApplyFailed(
            f"{len(result.failed)} of {len(result.failed) + len(result.done)} actions failed; "
            "the others were applied. Run apply again to converge."
        )


def _require_runner(app: AppContext, rt: Project, jobs_file: JobsFile) -> None:
    """Refuse jobs that nothing could run: no command/http action and no configured runner."""
    if rt.config.runner is not None or all(job.action is not None for job in jobs_file.jobs):
        return
    from cronplan.documents.jobsfile import runner_problems
    from cronplan.errors import ValidationError

    exc = ValidationError(runner_problems(jobs_file))
    emit_annotations(app, exc)
    raise exc


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


# --------------------------------------------------------------------------- show


@cli.command()
@click.argument("planfile", metavar="PLANFILE")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
)
@label_option
@pass_app
def show(app: AppContext, planfile: str, fmt: str, label: str | None) -> None:
    """Render a saved plan."""
    from cronplan.planfile import load_plan

    _markdown_only(fmt, label)
    saved = load_plan(planfile)
    _echo(_render(saved, fmt, app, _planned_jobs(app, saved), label))


def _planned_jobs(app: AppContext, saved: Plan) -> dict[str, Job] | None:
    """The jobs of jobs.json whose definition is the one the saved plan was made from (for names and
    the timeline); None when jobs.json cannot be read: the plan alone is rendered then."""
    if saved.has_changes is False:
        return None
    try:
        jobs = app.project().load_jobs().by_id()
    except CronplanError:
        return None
    digests = {a.job_id: a.job_digest for a in saved.actions}
    return {i: job for i, job in jobs.items() if digests.get(i) == job.digest}


# --------------------------------------------------------------------------- status


def _jobs_or_none(app: AppContext, rt: Project) -> JobsFile | None:
    """jobs.json for ``status``, or None when it is missing or invalid: status then still shows the ledger
    and the arms (a stateless instance has no jobs.json), and says that it cannot compare."""
    from cronplan.errors import ConfigError, ValidationError

    try:
        return load_jobs(app, rt, None)
    except (ConfigError, ValidationError) as exc:
        first = exc.message.splitlines()[0] if exc.message else type(exc).__name__
        app.err(f"Warning: jobs file unreadable, unapplied changes unknown: {first}")
        return None


@cli.command()
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@now_option
@pass_app
def status(app: AppContext, fmt: str, now_text: str | None) -> None:
    """Per job: the armed fire time, the last run, runs completed, failures, unapplied changes."""
    import json

    from cronplan.status import collect

    rt = app.project(parse_clock(now_text))  # the clock judges abandoned runs
    snapshot = collect(rt, _jobs_or_none(app, rt))
    for note in snapshot.notes:
        app.err(f"Warning: {note}")
    doc = snapshot.document()
    if fmt == "json":
        click.echo(json.dumps(doc, indent=2))
        return
    rows = doc["jobs"]
    if not rows:
        click.echo("No jobs.")
        return
    width = max(len(r["job_id"]) for r in rows)
    lines = [f"{'JOB':<{width}}  {'ARMED (UTC)':<20}  {'LAST RUN':<34}  RUNS  FAILED  UNAPPLIED"]
    for r in rows:
        last = r["last_run"]
        last_text = "-" if last is None else f"{last['fire_at']} {last['status']}"
        if last is not None and last["duration_s"] is not None:
            last_text += f" {last['duration_s']:.1f}s"
        unapplied = "-" if r["unapplied"] == "none" else r["unapplied"]
        lines.append(
            f"{r['job_id']:<{width}}  {r['armed_fire_at'] or '-':<20}  {last_text:<34}  "
            f"{r['runs_completed']:>4}  {r['failures']:>6}  {unapplied}"
        )
    click.echo("\n".join(lines))


# --------------------------------------------------------------------------- force-unlock


@cli.command("force-unlock")
@click.argument("lock_id", metavar="LOCK_ID")
@pass_app
def force_unlock(app: AppContext, lock_id: str) -> None:
    """Remove a stuck apply lock (the id is in the error of the apply that could not get it)."""
    rt = app.project()
    rt.ledger.force_unlock(lock_id)
    click.echo(f"Lock {lock_id} removed. Make sure no apply is still running.")
