"""cronplan.yaml: where it is found and what it holds.

Found via ``--config PATH``, else ``$CRONPLAN_CONFIG``, else ``./cronplan.yaml``; optional. Relative paths
in it (``jobs``, ``state`` sqlite paths, ``providers.local.path``) are resolved against the directory of the
config file (the current directory when there is none).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_JOBS = "jobs.json"
DEFAULT_PROVIDER = "local"
DEFAULT_CALLBACK_URL = "http://127.0.0.1:8787"
DEFAULT_TIMEZONE = "UTC"
DEFAULT_STATE = "sqlite:///.cronplan/state.db"
DEFAULT_LOCAL_PATH = ".cronplan/local.db"


@dataclass(frozen=True)
class Config:
    base_dir: Path = Path(".")
    source: Path | None = None  # the cronplan.yaml read, None when defaults apply
    jobs: str = DEFAULT_JOBS
    provider: str = DEFAULT_PROVIDER
    callback_url: str = DEFAULT_CALLBACK_URL
    timezone: str = DEFAULT_TIMEZONE
    state: str = DEFAULT_STATE
    runner: tuple[str, ...] | None = None
    providers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def jobs_path(self) -> Path:
        p = Path(self.jobs)
        return p if p.is_absolute() else self.base_dir / p

    def provider_options(self, name: str) -> Mapping[str, Any]:
        return self.providers.get(name) or {}


def load_config(path: str | None, environ: Mapping[str, str] | None = None) -> Config:
    """Find and load cronplan.yaml; raise ``ValidationError``/``ConfigError`` on a bad file.

    Implemented in the foundation work; see module docstring for the lookup order.
    """
    raise NotImplementedError
