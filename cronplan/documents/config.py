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

from cronplan.errors import ConfigError, CronplanError

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


def load_config(
    path: str | None, environ: Mapping[str, str] | None = None, *, cached: bool = False
) -> Config:
    """Find and load cronplan.yaml; raise ``ValidationError``/``ConfigError`` on a bad file.

    Lookup: ``path`` (``--config``), else ``$CRONPLAN_CONFIG``, else ``./cronplan.yaml``; an explicitly
    named file must exist. Without any file every default applies, relative to the current directory.

    ``cached`` (the cold ``cronplan fire``): keep the validated document in ``.cronplan/config.cache.json``
    next to the config, keyed by a digest of the file's bytes and of cronplan's own config code and
    schema, and reuse it while that digest matches, skipping the YAML parser and the schema validator
    (docs/performance.md, "Cold fire"). Any change to the file misses the cache, so a changed or invalid
    config is read and refused exactly as without it; an invalid config is never cached.
    """
    import os

    env = os.environ if environ is None else environ
    found = find_config(path, env)
    if found is None:
        return Config(base_dir=Path.cwd())
    try:
        data = found.read_bytes()
        text = data.decode("utf-8-sig")
    except FileNotFoundError:
        how = "--config" if path else f"${CONFIG_ENV}"
        raise ConfigError(f"config file not found: {found} (named by {how})") from None
    except IsADirectoryError:
        raise ConfigError(f"config path is a directory, not a file: {found}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file is not valid UTF-8: {found}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {found}: {exc.strerror or exc}") from None
    base_dir = found.resolve().parent
    cache = _DocCache(base_dir, data) if cached else None
    doc = cache.load() if cache is not None else None
    if doc is None:
        from cronplan.documents.jobsfile import display_path

        doc = validated_doc(text, file=display_path(found))
        if cache is not None:
            cache.store(doc)
    return _build(doc, base_dir=base_dir, source=found)


def parse_config(text: str, *, file: str, base_dir: Path, source: Path | None = None) -> Config:
    """Validate a cronplan.yaml text and build the Config (relative paths resolve against ``base_dir``)."""
    doc = validated_doc(text, file=file)
    return _build(doc, base_dir=base_dir, source=source if source is not None else Path(file))


def validated_doc(text: str, *, file: str) -> dict[str, Any]:
    """The cronplan.yaml text as a document that passed every check, or ``ValidationError``."""
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
    return doc


def _build(doc: Mapping[str, Any], *, base_dir: Path, source: Path) -> Config:
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
        source=source,
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


#: Where the cold fire keeps the validated config, relative to the config's directory.
CACHE_FILE = ".cronplan/config.cache.json"


class _DocCache:
    """The validated document of one cronplan.yaml, keyed by what its validity depends on.

    The key digests the file's bytes, cronplan's version and the size and mtime of this module and of the
    config schema, so an edited config, an upgrade or an edited checkout misses. Reading or writing the
    cache never fails a command: any problem just means a miss (the full parse and validation).
    """

    def __init__(self, base_dir: Path, data: bytes) -> None:
        import hashlib

        from cronplan import __version__

        h = hashlib.sha256(b"cronplan.yaml\0" + __version__.encode() + b"\0")
        try:
            from cronplan.documents.schemas import schema_path

            for code in (Path(__file__), schema_path("config")):
                st = code.stat()
                h.update(f"{code}:{st.st_size}:{st.st_mtime_ns}\0".encode())
        except (OSError, CronplanError):
            self.key = ""  # cannot tell which code validated it: never cached
        else:
            h.update(data)
            self.key = h.hexdigest()
        self.path = base_dir / CACHE_FILE

    def load(self) -> dict[str, Any] | None:
        if not self.key:
            return None
        import json

        try:
            entry = json.loads(self.path.read_bytes())
        except (OSError, ValueError):
            return None
        if not isinstance(entry, dict) or entry.get("key") != self.key:
            return None
        doc = entry.get("doc")
        return doc if isinstance(doc, dict) else None

    def store(self, doc: dict[str, Any]) -> None:
        if not self.key:
            return
        import contextlib
        import json
        import os

        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        try:
            text = json.dumps({"key": self.key, "doc": doc}, ensure_ascii=False)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(text, encoding="utf-8")
            os.replace(
                tmp, self.path
            )  # atomic: a concurrent reader sees the old entry or the new one
        except (OSError, TypeError, ValueError):
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)


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
