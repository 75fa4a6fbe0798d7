"""Wiring: from a Config to the jobs file, the ledger and the provider, each made lazily and closed once."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from cronplan.clock import SYSTEM_CLOCK, Clock
from cronplan.documents.config import Config
from cronplan.provider import Provider, ProviderSettings

if TYPE_CHECKING:
    from cronplan.documents.jobsfile import JobsFile
    from cronplan.ledger import Ledger
    from cronplan.model import Job


class Project:
    """One command's wiring. ``clock`` is its one clock: every instant the core decides with comes from it."""

    def __init__(
        self,
        config: Config,
        *,
        environ: Mapping[str, str] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.config = config
        self.clock = clock
        self.environ: Mapping[str, str] = dict(os.environ) if environ is None else environ
        self._ledger: Ledger | None = None
        self._provider: Provider | None = None
        from cronplan.errors import remember_dsn
        from cronplan.jobenv import set_policy

        # Jobs run by this runtime (fire, serve, run) start from the environment job_env describes;
        # close() puts the default back, so one runtime's policy never outlives it in this process.
        set_policy(config.job_env, config.secret_envs)

        # From here on no message may show these values (tokens, the notify URL, a DSN's password).
        for name in config.secret_envs:
            remember_dsn(self.environ.get(name))

    def load_jobs(self, path: str | None = None) -> JobsFile:
        """Read and validate jobs.json as it is now (``path`` overrides the configured one)."""
        from pathlib import Path

        from cronplan.documents.jobsfile import load_jobs

        return load_jobs(
            Path(path) if path else self.config.jobs_path, default_tz=self.config.timezone
        )

    def load_job(self, job_id: str) -> Job | None:
        """One job of jobs.json as it is now (None when absent), after checking the whole file."""
        from cronplan.documents.jobsfile import load_job

        return load_job(self.config.jobs_path, job_id, default_tz=self.config.timezone)

    def job_environ(self) -> dict[str, str]:
        """The environment a job starts from: ``job_env`` applied, cronplan's secret variables removed."""
        from cronplan.jobenv import JobEnvPolicy, base_environ

        policy = JobEnvPolicy(self.config.job_env, frozenset(self.config.secret_envs))
        return base_environ(self.environ, policy)

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            from cronplan.ledger import open_ledger

            self._ledger = open_ledger(
                self.config.state, base_dir=str(self.config.base_dir), environ=self.environ
            )
        return self._ledger

    def provider_settings(self, name: str | None = None) -> ProviderSettings:
        name = name or self.config.provider
        return ProviderSettings(
            name=name,
            options=dict(self.config.provider_options(name)),
            callback_url=self.config.callback_url,
            base_dir=self.config.base_dir,
            environ=self.environ,
            clock=self.clock,
        )

    @property
    def provider(self) -> Provider:
        """The configured provider, resolved and checked; ``ProviderUnavailable`` otherwise."""
        if self._provider is None:
            from cronplan.registry import resolve

            self._provider = resolve(self.provider_settings())
        return self._provider

    def local_provider(self) -> Provider:
        """The built-in local provider of this project (serve's fallback)."""
        from cronplan.local.provider import LocalProvider

        return LocalProvider(self.provider_settings("local"))

    @property
    def callback_url_for_arms(self) -> str | None:
        """What planned arms carry as callback_url: None for a provider that calls no URL."""
        return self.config.callback_url if self.provider.calls_back else None

    def close(self) -> None:
        from cronplan.jobenv import reset_policy

        reset_policy()
        if self._provider is not None:
            self._provider.close()
            self._provider = None
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None
