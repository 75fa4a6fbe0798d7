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

from cronplan.errors import ConfigError

DEFAULT_JOBS = "jobs.json"
DEFAULT_PROVIDER = "local"
DEFAULT_CALLBACK_URL = "http://127.0.0.1:8787"
DEFAULT_TIMEZONE = "UTC"
DEFAULT_STATE = "sqlite:///.cronplan/state.db"
DEFAULT_LOCAL_PATH = ".cronplan/local.db"
DEFAULT_NOTIFY_URL_ENV = "CRONPLAN_NOTIFY_URL"
DEFAULT_JOB_ENV = "inherit"
DEFAULT_RUNS_PER_JOB = 1000
DEFAULT_MAX_AGE_DAYS = 90.0
# Secret variables of the bundled providers and of notify, by their default names: never passed to a job
# even when the configuration names other ones (a token exported for another tool is still a token).
DEFAULT_SECRET_ENVS = (
    "CRONPLAN_NAS_TOKEN",
    "CRONPLAN_WEBHOOK_SECRET",
    "CRONPLAN_NOTIFY_URL",
    "CRONPLAN_STATE_DSN",
    "PGPASSWORD",
)


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
    #: ``notify.url_env``: the env var holding the webhook URL (None: no ``notify`` section, no webhook).
    notify_url_env: str | None = None
    #: ``serve.status_token_env``: the env var holding the bearer token of the status routes (None: the
    #: status routes answer loopback clients only).
    status_token_env: str | None = None
    #: ``retention``: run records kept per job, and for how long (docs/fire.md, "Retention").
    retention_runs_per_job: int = DEFAULT_RUNS_PER_JOB
    retention_max_age_days: float = DEFAULT_MAX_AGE_DAYS
    # inherit | clean: the environment jobs run with (docs/jobs.md, "The job's environment").
    job_env: str = DEFAULT_JOB_ENV
    # The variables cronplan reads secrets from: removed from every job's environment, and their
    # values scrubbed from every message (see ``secret_env_names``).
    secret_envs: tuple[str, ...] = DEFAULT_SECRET_ENVS

    @property
    def jobs_path(self) -> Path:
        p = Path(self.jobs)
        return p if p.is_absolute() else self.base_dir / p

    def provider_options(self, name: str) -> Mapping[str, Any]:
        return self.providers.get(name) or {}


CONFIG_ENV = "CRONPLAN_CONFIG"
DEFAULT_CONFIG_NAME = "cronplan.yaml"

# Option names that hold a secret value, and where the secret belongs instead.
_SECRET_KEYS = {
    "token": "token_env",
    "bearer_token": "token_env",
    "access_token": "token_env",
    "api_key": "token_env",
    "apikey": "token_env",
    "password": "an environment variable named by a *_env option",
    "secret": "secret_env",
    "webhook_secret": "secret_env",
    "client_secret": "an environment variable named by a *_env option",
    "private_key": "an environment variable named by a *_env option",
}


def find_config(path: str | None, environ: Mapping[str, str]) -> Path | None:
    """The config file to read: a named one (which must then exist) or ./cronplan.yaml if present."""
    if path:
        return Path(path)
    from_env = environ.get(CONFIG_ENV)
    if from_env:
        return Path(from_env)
    default = Path(DEFAULT_CONFIG_NAME)
    return default if default.is_file() else None


def load_config(path: str | None, environ: Mapping[str, str] | None = None) -> Config:
    """Find and load cronplan.yaml; raise ``ValidationError``/``ConfigError`` on a bad file.

    Lookup: ``path`` (``--config``), else ``$CRONPLAN_CONFIG``, else ``./cronplan.yaml``; an explicitly
    named file must exist. Without any file every default applies, relative to the current directory.
    """
    import os

    env = os.environ if environ is None else environ
    found = find_config(path, env)
    if found is None:
        return Config(base_dir=Path.cwd())
    try:
        text = found.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        how = "--config" if path else f"${CONFIG_ENV}"
        raise ConfigError(f"config file not found: {found} (named by {how})") from None
    except IsADirectoryError:
        raise ConfigError(f"config path is a directory, not a file: {found}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file is not valid UTF-8: {found}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {found}: {exc.strerror or exc}") from None
    from cronplan.documents.jobsfile import display_path

    return parse_config(
        text, file=display_path(found), base_dir=found.resolve().parent, source=found
    )


def parse_config(text: str, *, file: str, base_dir: Path, source: Path | None = None) -> Config:
    """Validate a cronplan.yaml text and build the Config (relative paths resolve against ``base_dir``)."""
    from cronplan.documents.yamlio import YamlSyntaxError, load_yaml
    from cronplan.errors import Problem, ValidationError

    try:
        doc = load_yaml(text, file)
    except YamlSyntaxError as exc:
        raise ValidationError([exc.problem]) from None
    if doc is None:
        doc = {}
    issues = _issues(doc)
    if issues:
        from cronplan.documents.schema_errors import locate
        from cronplan.documents.yamlio import yaml_positions

        raise ValidationError(locate(issues, yaml_positions(text), file))
    if not isinstance(doc, dict):  # pragma: no cover - the schema guarantees an object
        raise ValidationError([Problem(file, 1, 1, "", "expected a mapping of settings")])
    providers = {
        str(name): dict(options or {}) for name, options in (doc.get("providers") or {}).items()
    }
    runner = doc.get("runner")
    notify = doc.get("notify")
    serve = doc.get("serve") or {}
    retention = doc.get("retention") or {}
    return Config(
        retention_runs_per_job=int(retention.get("runs_per_job", DEFAULT_RUNS_PER_JOB)),
        retention_max_age_days=float(retention.get("max_age_days", DEFAULT_MAX_AGE_DAYS)),
        job_env=doc.get("job_env") or DEFAULT_JOB_ENV,
        secret_envs=secret_env_names(doc),
        base_dir=base_dir,
        source=source if source is not None else Path(file),
        jobs=doc.get("jobs", DEFAULT_JOBS),
        provider=doc.get("provider", DEFAULT_PROVIDER),
        callback_url=doc.get("callback_url", DEFAULT_CALLBACK_URL),
        timezone=doc.get("timezone", DEFAULT_TIMEZONE),
        state=doc.get("state", DEFAULT_STATE),
        runner=None if runner is None else tuple(runner),
        providers=providers,
        notify_url_env=None
        if notify is None
        else (notify.get("url_env") or DEFAULT_NOTIFY_URL_ENV),
        status_token_env=serve.get("status_token_env") or None,
    )


def secret_env_names(doc: Mapping[str, Any]) -> tuple[str, ...]:
    """Every variable a cronplan.yaml document makes cronplan read a secret from: any provider option
    ending in ``_env`` (``token_env``, ``secret_env``), ``notify.url_env``, ``serve.status_token_env``, an
    ``env:`` state DSN, plus ``PGPASSWORD`` and the bundled defaults (``DEFAULT_SECRET_ENVS``)."""
    names: list[Any] = list(DEFAULT_SECRET_ENVS)
    for options in (doc.get("providers") or {}).values():
        if isinstance(options, Mapping):
            names += [v for k, v in options.items() if str(k).endswith("_env")]
    for section, key in (("notify", "url_env"), ("serve", "status_token_env")):
        part = doc.get(section)
        if isinstance(part, Mapping):
            names.append(part.get(key))
    state = doc.get("state")
    if isinstance(state, str) and state.startswith("env:"):
        names.append(state[4:])
    return tuple(dict.fromkeys(n for n in names if isinstance(n, str) and n))


def _issues(doc: Any) -> list[Any]:
    from cronplan.documents.schema_errors import Issue, schema_issues
    from cronplan.documents.schemas import detailed_validator, fast_validator
    from cronplan.documents.yamlio import json_compatible

    doc, odd = json_compatible(doc)
    issues: list[Issue] = [Issue(ptr, message, key=is_key) for ptr, is_key, message in odd]
    try:
        valid = bool(fast_validator("config").is_valid(doc))
    except (ValueError, TypeError, OverflowError):  # a value JSON cannot hold
        valid = False
    if not valid:
        taken = {i.pointer for i in issues}
        issues += [
            i for i in schema_issues(detailed_validator("config"), doc) if i.pointer not in taken
        ]
    if not isinstance(doc, dict):
        return issues or [Issue("", "expected a mapping of settings")]
    taken = {i.pointer for i in issues}
    tz = doc.get("timezone")
    if isinstance(tz, str) and "/timezone" not in taken:
        from cronplan.documents.zones import zone, zone_hint

        if zone(tz) is None:
            issues.append(Issue("/timezone", f"unknown timezone {tz!r}{zone_hint(tz)}"))
    callback = doc.get("callback_url")
    if isinstance(callback, str) and "/callback_url" not in taken:
        from cronplan.documents.jobsfile import url_problem

        problem = url_problem(callback)
        if problem:
            issues.append(Issue("/callback_url", problem))
    state = doc.get("state")
    if isinstance(state, str) and _dsn_has_password(state):
        issues.append(
            Issue(
                "/state",
                "the state DSN contains a password; keep secrets out of cronplan.yaml: use "
                "'state: env:CRONPLAN_STATE_DSN' (the whole DSN in that variable) or PGPASSWORD/~/.pgpass",
            )
        )
    providers = doc.get("providers")
    if isinstance(providers, dict):
        for name, options in providers.items():
            if not isinstance(options, dict):
                continue
            for key, value in options.items():
                where = _SECRET_KEYS.get(str(key).lower())
                if where and value not in (None, ""):
                    issues.append(
                        Issue(
                            f"/providers/{name}/{key}",
                            f"secrets never live in cronplan.yaml: remove '{key}' and put the value in "
                            f"an environment variable, named here with {where}",
                            key=True,
                        )
                    )
    return issues


def _dsn_has_password(dsn: str) -> bool:
    if not dsn.startswith(("postgresql://", "postgres://")):
        return False
    from urllib.parse import parse_qs, urlsplit

    try:
        parts = urlsplit(dsn)
        has_password = parts.password is not None
    except ValueError:
        return False
    return has_password or "password" in parse_qs(parts.query)
