"""Command: completion (shell completion scripts), and completing job ids from jobs.json."""

from __future__ import annotations

import os
from typing import Any

import click

__all__ = ["complete_job_ids"]

_COMPLETE_VAR = "_CRONPLAN_COMPLETE"


def complete_job_ids(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """The ids of jobs.json (``-f`` if given, else the configured one) that start with ``incomplete``.

    Completion must never fail or be slow to feel: the file is read without validation, and any problem
    (no config, no file, bad JSON) completes nothing.
    """
    from click.shell_completion import CompletionItem

    try:
        return [
            CompletionItem(job_id, help=name)
            for job_id, name in _job_ids(ctx)
            if job_id.startswith(incomplete)
        ]
    except Exception:  # a broken jobs file must not break the shell
        return []


def _job_ids(ctx: click.Context) -> list[tuple[str, str | None]]:
    import json
    from pathlib import Path

    from cronplan.documents.config import load_config

    root = ctx.find_root()
    named = ctx.params.get("jobs_path")
    if named:
        path = Path(named)
    else:
        path = load_config(root.params.get("config_path"), dict(os.environ)).jobs_path
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        doc = yaml.safe_load(text)
    else:
        doc = json.loads(text)
    jobs = doc.get("jobs") if isinstance(doc, dict) else doc
    out: list[tuple[str, str | None]] = []
    for job in jobs if isinstance(jobs, list) else []:
        if isinstance(job, dict) and isinstance(job.get("id"), str):
            name = job.get("name")
            out.append((job["id"], name if isinstance(name, str) else None))
    return sorted(out)


@click.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
@click.pass_context
def completion_cmd(ctx: click.Context, shell: str) -> None:
    """Print the shell completion script for SHELL (bash, zsh or fish).

    \b
    bash:  eval "$(cronplan completion bash)"        (in ~/.bashrc)
    zsh:   eval "$(cronplan completion zsh)"         (in ~/.zshrc)
    fish:  cronplan completion fish > ~/.config/fish/completions/cronplan.fish

    Commands, options and job ids (for `next JOB_ID`, `plan --target/--exclude`) are completed; ids come
    from jobs.json.
    """
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    if cls is None:  # click ships all three; guard against a trimmed click
        raise click.UsageError(f"click offers no completion for {shell}")
    root = ctx.find_root().command  # the whole command line, every command in it
    click.echo(cls(root, {}, "cronplan", _COMPLETE_VAR).source())
