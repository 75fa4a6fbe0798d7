"""Where the JSON Schemas live, and loading them once per process.

The repository's ``schemas/`` directory is the single source. A wheel carries it as package data under
``cronplan/schemas/`` (pyproject force-includes it); an editable install or a checkout finds it next to
the package. Compiled validators are cached: compiling is the expensive part.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from cronplan.errors import CronplanError

_PACKAGE_DIR = (
    Path(__file__).resolve().parent.parent
)  # cronplan/, which holds schemas/ when installed


def schemas_dir() -> Path:
    """The directory holding ``*.schema.json``: package data first, then the checkout's ``schemas/``."""
    for candidate in (_PACKAGE_DIR / "schemas", _PACKAGE_DIR.parent / "schemas"):
        if (candidate / "jobs.schema.json").is_file():
            return candidate
    raise CronplanError(
        "cronplan's JSON Schemas are missing from this installation "
        f"(looked in {_PACKAGE_DIR / 'schemas'} and {_PACKAGE_DIR.parent / 'schemas'}); reinstall cronplan"
    )


def schema_path(name: str) -> Path:
    """Path of schema ``name`` (``jobs``, ``config``, ``plan``)."""
    return schemas_dir() / f"{name}.schema.json"


@cache
def load_schema(name: str) -> dict[str, Any]:
    with schema_path(name).open(encoding="utf-8") as fh:
        doc: dict[str, Any] = json.load(fh)
    return doc


@cache
def fast_validator(name: str) -> Any:
    """A compiled ``jsonschema_rs`` validator: answers "valid?" quickly, for the happy path."""
    import jsonschema_rs

    return jsonschema_rs.validator_for(load_schema(name))


@cache
def detailed_validator(name: str) -> Any:
    """A ``jsonschema`` Draft 2020-12 validator: slow, but its errors carry paths for the report."""
    return jsonschema_module().Draft202012Validator(load_schema(name))


def jsonschema_module() -> Any:
    """``jsonschema``, imported only on the error path (it is slow to import and untyped)."""
    import importlib

    return importlib.import_module("jsonschema")
