"""Helpers shared by the import tests: run `cronplan import`, then `cronplan next` on what it printed."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.fixtures_core import Project, Result

DATA = Path(__file__).parent / "data" / "import"
ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def import_into(project: Project, source: str, *files: Path | str) -> tuple[Result, dict[str, Any]]:
    """Run `cronplan import`, check the document it prints, and make it the project's jobs.json."""
    import jsonschema

    from cronplan.documents.schemas import load_schema

    res = project.cli("import", "--from", source, *map(str, files))
    assert res.exit_code == 0, res.stderr
    assert "Traceback" not in res.stderr
    doc = json.loads(res.stdout)
    jsonschema.Draft202012Validator(load_schema("jobs")).validate(doc)
    assert all(ID.match(job["id"]) for job in doc["jobs"])
    (project.root / "jobs.json").write_text(res.stdout)
    check = project.cli("validate")
    assert check.exit_code == 0, check.stderr
    return res, doc


def by_name(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {job.get("name", job["id"]): job for job in doc["jobs"]}


def next_utc(project: Project, job_id: str, now: str, n: int = 5) -> list[str]:
    """The next ``n`` fire times of ``job_id`` in UTC, as `cronplan next` prints them."""
    res = project.cli("next", job_id, "-n", str(n), "--now", now)
    assert res.exit_code == 0, res.stderr
    return [line.split()[-1] for line in res.stdout.splitlines()]


def notes(res: Result) -> list[str]:
    return [line for line in res.stderr.splitlines() if line]
