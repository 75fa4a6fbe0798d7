"""Warnings about a valid jobs file: things that validate but will not work as written.

Today one: an active job with neither ``command`` nor ``http`` while no ``runner`` is configured cannot
run (plan and apply refuse it). Warnings are located like validation problems (``Problem``), and are
computed from the raw document, so a check stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cronplan.errors import Problem

__all__ = ["jobs_warnings"]


def jobs_warnings(path: Path, file: str, *, runner: Any) -> list[Problem]:
    """The warnings of the (already validated) jobs file ``path``, displayed as ``file``."""
    if runner:
        return []
    text = path.read_text(encoding="utf-8-sig")
    yaml_file = path.suffix.lower() in (".yaml", ".yml")
    if yaml_file:
        import yaml

        doc = yaml.safe_load(text)
    else:
        import orjson

        doc = orjson.loads(text)
    jobs, prefix = (doc.get("jobs"), "/jobs") if isinstance(doc, dict) else (doc, "")
    found: list[tuple[str, str]] = []
    for i, job in enumerate(jobs if isinstance(jobs, list) else []):
        if not isinstance(job, dict) or "command" in job or "http" in job:
            continue
        if job.get("enabled") is False or job.get("state") in ("paused", "completed"):
            continue
        found.append((f"{prefix}/{i}", str(job.get("id"))))
    if not found:
        return []
    from cronplan.positions import json_positions_of, yaml_positions

    index = yaml_positions(text) if yaml_file else json_positions_of(text, [p for p, _ in found])
    problems = []
    for pointer, job_id in found:
        line, col = index.locate(pointer)
        problems.append(
            Problem(
                file,
                line,
                col,
                pointer,
                f"job {job_id!r} has no command or http action and no runner is configured: "
                "plan and apply refuse it (set runner: in cronplan.yaml)",
            )
        )
    return problems
