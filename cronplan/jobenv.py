"""The environment a job runs with (docs/jobs.md, "The job's environment").

``job_env: inherit`` passes cronplan's own environment, ``clean`` only ``PATH``, ``HOME``, ``LANG`` and
``TZ``; either way the variables cronplan reads secrets from (``Config.secret_envs``: provider tokens,
the webhook secret, the notify URL, the status token, an ``env:`` state DSN, ``PGPASSWORD``) are removed,
so a job (or the runner that hands an LLM its prompt) never sees them. The job's own ``env`` is added on
top by the runner.

The policy is set once per process by ``Project`` (the configuration it was built from) and read by the
runner; ``base_environ`` also takes an explicit policy.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cronplan.documents.config import DEFAULT_JOB_ENV, DEFAULT_SECRET_ENVS

CLEAN_KEEP = ("PATH", "HOME", "LANG", "TZ")


@dataclass(frozen=True)
class JobEnvPolicy:
    mode: str = DEFAULT_JOB_ENV  # inherit | clean
    secret_names: frozenset[str] = frozenset(DEFAULT_SECRET_ENVS)


_policy = JobEnvPolicy()


def set_policy(mode: str, secret_names: Iterable[str]) -> None:
    """Use ``mode`` and remove ``secret_names`` (with the bundled defaults) for jobs run from now on."""
    global _policy
    _policy = JobEnvPolicy(mode, frozenset(DEFAULT_SECRET_ENVS) | frozenset(secret_names))


def reset_policy() -> None:
    """Back to the default: inherit, without the bundled default secret variables."""
    global _policy
    _policy = JobEnvPolicy()


def current_policy() -> JobEnvPolicy:
    return _policy


def base_environ(
    environ: Mapping[str, str] | None = None, policy: JobEnvPolicy | None = None
) -> dict[str, str]:
    """The environment a job starts from, before its own ``env``: never holding a secret variable."""
    source = os.environ if environ is None else environ
    rule = policy or _policy
    if rule.mode == "clean":
        env = {name: source[name] for name in CLEAN_KEEP if name in source}
    else:
        env = dict(source)
    for name in rule.secret_names:
        env.pop(name, None)
    return env


__all__ = [
    "CLEAN_KEEP",
    "JobEnvPolicy",
    "base_environ",
    "current_policy",
    "reset_policy",
    "set_policy",
]
