"""Read jobs.json / jobs.yaml once: validate (schema + meaning), locate every problem, build Jobs.

The happy path is a compiled validator (``jsonschema_rs``) and plain dict access; positions and the
detailed ``jsonschema`` report are computed only when something is wrong, so validating a 100,000-job
file costs a small multiple of parsing it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from cronplan.errors import ConfigError, Problem, ValidationError
from cronplan.model import (
    CommandAction,
    CronSchedule,
    HttpAction,
    IntervalSchedule,
    Job,
    JobAction,
    OnceSchedule,
    Schedule,
)
from cronplan.schema_errors import Issue, did_you_mean, locate, schema_issues
from cronplan.timefmt import parse_ts

# Written by Hermes Agent's scheduler while it runs jobs; never part of what a job *is*. Fields starting
# with "_" are Hermes-internal too. cronplan keeps its own state in the ledger.
RUNTIME_FIELDS = frozenset(
    {
        "next_run_at", "last_run_at", "last_status", "last_error", "last_delivery_error",
        "last_delivery_unverified", "last_delivery_at", "last_delivery_success", "last_fire_error",
        "failure_streak", "retry_count", "started_at", "runner_id", "fire_claim", "run_claim",
        "pending_slot", "execution_id", "latest_execution", "monitor_state", "created_at",
        "updated_at", "completed_at", "paused_at",
    }
)  # fmt: skip

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_COMMAND_ONLY = ("env", "cwd")


@dataclass(frozen=True)
class JobsFile:
    path: Path
    jobs: tuple[Job, ...]

    def by_id(self) -> dict[str, Job]:
        return {j.id: j for j in self.jobs}


def _canonical_encoder() -> Callable[[Any], str]:
    """Canonical JSON (sorted keys, compact, UTF-8). Digests are computed per job, so the per-call setup
    of ``json.dumps`` would dominate: build the C encoder once when the interpreter has it."""
    from json import encoder as enc

    def default(value: Any) -> str:
        return str(value)

    if enc.c_make_encoder is not None:
        c_encode = enc.c_make_encoder(
            None, default, enc.c_encode_basestring, None, ":", ",", True, False, True
        )
        return lambda value: "".join(c_encode(value, 0))
    slow = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=default)
    return slow.encode


_canonical = _canonical_encoder()
_sha256 = hashlib.sha256


def canonical_json(value: Any) -> str:
    return _canonical(value)


def spec_digest(spec: Mapping[str, Any]) -> str:
    """SHA-256 hex of the canonical JSON of a job spec (sorted keys, compact, UTF-8)."""
    return _sha256(_canonical(spec).encode("utf-8")).hexdigest()


_new = object.__new__


def _make(cls: type[Any], **values: Any) -> Any:
    """Build a frozen dataclass without its generated ``__init__``: 100,000 jobs make the per-field
    ``object.__setattr__`` of frozen classes a visible cost. Callers pass every field (tested)."""
    obj = _new(cls)
    obj.__dict__.update(values)
    return obj


def display_path(path: Path) -> str:
    """The path as a user would write it: relative to the current directory when it lies under it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return str(path)
    return str(path) if rel.startswith("..") else rel


def load_jobs(path: str | Path, *, default_tz: str = "UTC") -> JobsFile:
    """Read, validate and build the jobs of ``path``.

    Raises ``ValidationError`` with every problem located, or ``ConfigError`` when the file is missing.
    """
    path = Path(path)
    name = display_path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"jobs file not found: {name} (set 'jobs:' in cronplan.yaml or pass -f PATH)"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"jobs file is a directory: {name}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read jobs file {name}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ValidationError([Problem(name, line, 1, "", "file is not valid UTF-8")]) from None
    fmt = "yaml" if path.suffix.lower() in (".yaml", ".yml") else "json"
    jobs = parse_jobs(text, file=name, fmt=fmt, default_tz=default_tz)
    return JobsFile(path=path, jobs=jobs)


def parse_jobs(text: str, *, file: str, fmt: str = "json", default_tz: str = "UTC") -> tuple[Job, ...]:
    """Validate and build the jobs of a jobs-file text (``fmt``: ``json`` or ``yaml``)."""
    default_zone = _zone(default_tz)
    if default_zone is None:
        raise ConfigError(f"unknown default timezone {default_tz!r} (check 'timezone' in cronplan.yaml)")
    doc = _parse(text, file, fmt)

    from cronplan.schemas import fast_validator

    try:
        schema_ok = bool(fast_validator("jobs").is_valid(doc))
    except (ValueError, TypeError, OverflowError):  # a value JSON cannot hold (YAML edge cases)
        schema_ok = False

    issues: list[Issue] = []
    if not schema_ok:
        issues = _schema_issues(doc)
    if isinstance(doc, dict):
        raw_jobs, prefix = doc.get("jobs"), "/jobs"
    else:
        raw_jobs, prefix = doc, ""
    jobs: list[Job] = []
    if isinstance(raw_jobs, list):
        builder = _Builder(default_tz, default_zone)
        jobs, more = builder.build_all(raw_jobs, prefix)
        issues.extend(_not_shadowed(more, issues))
    if schema_ok and not issues:
        return tuple(jobs)
    if not issues:  # the fast and the detailed validator disagree: still never pass silently
        issues = [Issue("", "the file does not match the jobs schema")]
    raise ValidationError(locate(issues, _index(text, fmt), file))


# --------------------------------------------------------------------------- parsing


def _parse(text: str, file: str, fmt: str) -> Any:
    if fmt == "yaml":
        from cronplan.yamlio import YamlSyntaxError, load_yaml

        try:
            doc = load_yaml(text, file)
        except YamlSyntaxError as exc:
            raise ValidationError([exc.problem]) from None
        if doc is None:
            raise ValidationError([Problem(file, 1, 1, "", "the file is empty; expected {jobs: [...]}")])
        return doc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError([Problem(file, exc.lineno, exc.colno, "", f"invalid JSON: {exc.msg}")]) from None
    except RecursionError:
        raise ValidationError([Problem(file, 1, 1, "", "invalid JSON: nested too deeply")]) from None


def _index(text: str, fmt: str) -> Any:
    from cronplan.positions import json_positions, yaml_positions

    return yaml_positions(text) if fmt == "yaml" else json_positions(text)


def _schema_issues(doc: Any) -> list[Issue]:
    from cronplan.schemas import load_schema

    if isinstance(doc, dict):
        target = "document"
    elif isinstance(doc, list):
        target = "jobList"
    else:
        return [Issue("", 'expected an object {"jobs": [...]} or a list of jobs, not ' + _what(doc))]
    return schema_issues(_branch_validator(target), doc) if load_schema("jobs") else []


_BRANCHES: dict[str, Any] = {}


def _branch_validator(target: str) -> Any:
    """A validator for one branch of the top-level union, so errors are not buried in anyOf context."""
    if target not in _BRANCHES:
        import jsonschema

        from cronplan.schemas import load_schema

        root = load_schema("jobs")
        schema = {"$schema": root["$schema"], "$defs": root["$defs"], "$ref": f"#/$defs/{target}"}
        _BRANCHES[target] = jsonschema.Draft202012Validator(schema)
    return _BRANCHES[target]


def _what(value: Any) -> str:
    from cronplan.schema_errors import type_name

    return type_name(value)


def _not_shadowed(semantic: list[Issue], schema: list[Issue]) -> list[Issue]:
    """Semantic issues at (or under) a pointer the schema already complained about add only noise."""
    if not schema:
        return semantic
    taken = [i.pointer for i in schema]
    return [
        i for i in semantic if not any(t == i.pointer or t.startswith(i.pointer + "/") for t in taken)
    ]


# --------------------------------------------------------------------------- zones and cron

_ZONES: dict[str, ZoneInfo | None] = {}


def _zone(name: str) -> ZoneInfo | None:
    if name not in _ZONES:
        try:
            _ZONES[name] = ZoneInfo(name)
        except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
            _ZONES[name] = None
    return _ZONES[name]


def zone_hint(name: str) -> str:
    import zoneinfo

    zones = zoneinfo.available_timezones() | {"UTC"}
    lowered = {z.lower(): z for z in zones}
    if name.lower() in lowered:
        return f" (did you mean '{lowered[name.lower()]}'?)"
    return did_you_mean(name, zones)


def _cron_checker() -> Callable[[str], str | None]:
    try:
        from cronplan.schedule import check_cron
    except ImportError:
        return _fallback_check_cron
    return check_cron


def _fallback_check_cron(expr: str) -> str | None:
    from datetime import timezone

    from cronsim import CronSim, CronSimError

    try:
        CronSim(expr, datetime.now(timezone.utc))
    except CronSimError as exc:
        return f"invalid cron expression {expr!r}: {exc}"
    except Exception as exc:  # noqa: BLE001 - any parser failure is the expression's fault
        return f"invalid cron expression {expr!r}: {exc}"
    return None


# --------------------------------------------------------------------------- building jobs


class _Builder:
    """Checks each job's meaning and builds it; caches per distinct cron expression and zone."""

    def __init__(self, default_tz: str, default_zone: ZoneInfo) -> None:
        self.default_tz = default_tz
        self.default_zone = default_zone
        self.check_cron = _cron_checker()
        self.cron_cache: dict[str, str | None] = {}

    def build_all(self, raw_jobs: list[Any], prefix: str) -> tuple[list[Job], list[Issue]]:
        jobs: list[Job] = []
        issues: list[Issue] = []
        first_seen: dict[str, int] = {}
        for i, raw in enumerate(raw_jobs):
            ptr = f"{prefix}/{i}"
            if not isinstance(raw, dict):
                continue  # the schema reports it
            jid = raw.get("id")
            if isinstance(jid, str):
                if jid in first_seen:
                    issues.append(
                        Issue(
                            ptr + "/id",
                            f"duplicate job id '{jid}' (first defined at line {{line}})",
                            related=f"{prefix}/{first_seen[jid]}/id",
                        )
                    )
                else:
                    first_seen[jid] = i
            try:
                job = self.build(raw, ptr, issues)
            except (KeyError, TypeError, AttributeError, ValueError):
                job = None  # malformed in a way the schema reports
            if job is not None:
                jobs.append(job)
        return jobs, issues

    def build(self, raw: dict[str, Any], ptr: str, issues: list[Issue]) -> Job | None:
        before = len(issues)
        jid = raw.get("id")
        sched = raw["schedule"]
        tzname = sched.get("tz") or self.default_tz
        zone = _zone(tzname) if isinstance(tzname, str) else None
        if zone is None:
            issues.append(Issue(ptr + "/schedule/tz", f"unknown timezone {tzname!r}{zone_hint(str(tzname))}"))
        schedule = self._schedule(sched, tzname, zone or self.default_zone, ptr + "/schedule", issues)
        action = self._action(raw, ptr, issues)
        if len(issues) > before or schedule is None or not isinstance(jid, str) or not _ID.fullmatch(jid):
            return None

        spec = {k: v for k, v in raw.items() if k not in RUNTIME_FIELDS and k[:1] != "_"}
        spec_sched = dict(sched)
        spec_sched["tz"] = tzname
        spec["schedule"] = spec_sched
        repeat = raw.get("repeat")
        times = None
        if repeat is not None:
            times = repeat.get("times")
            if "completed" in repeat:
                spec["repeat"] = {k: v for k, v in repeat.items() if k != "completed"}
        return _make(
            Job,
            id=jid,
            schedule=schedule,
            spec=spec,
            digest=spec_digest(spec),
            raw=raw,
            name=raw.get("name"),
            enabled=raw.get("enabled", True),
            state=raw.get("state", "scheduled"),
            repeat_times=times,
            catch_up=raw.get("catch_up", "once"),
            action=action,
        )

    def _schedule(
        self, sched: dict[str, Any], tzname: str, zone: tzinfo, ptr: str, issues: list[Issue]
    ) -> Schedule | None:
        kind = sched["kind"]
        if kind == "cron":
            expr = sched["expr"]
            if expr not in self.cron_cache:
                self.cron_cache[expr] = self.check_cron(expr)
            problem = self.cron_cache[expr]
            if problem is not None:
                issues.append(Issue(ptr + "/expr", problem))
                return None
            return _make(CronSchedule, expr=expr, tz=tzname, kind="cron")
        if kind == "interval":
            seconds = sched.get("seconds")
            if seconds is None:
                seconds = sched["minutes"] * 60
            seconds = int(seconds)
            if seconds < 1:
                issues.append(Issue(ptr, "an interval must be at least 1 second"))
                return None
            start_at = None
            if sched.get("start_at") is not None:
                start_at = self._instant(sched["start_at"], zone, ptr + "/start_at", issues)
                if start_at is None:
                    return None
            return _make(IntervalSchedule, seconds=seconds, start_at=start_at, tz=tzname, kind="interval")
        if kind == "once":
            run_at = self._instant(sched["run_at"], zone, ptr + "/run_at", issues)
            return None if run_at is None else _make(OnceSchedule, run_at=run_at, tz=tzname, kind="once")
        return None

    @staticmethod
    def _instant(text: Any, zone: tzinfo, ptr: str, issues: list[Issue]) -> datetime | None:
        if not isinstance(text, str):
            return None
        try:
            return parse_ts(text, default_tz=zone)
        except ValueError as exc:
            issues.append(Issue(ptr, str(exc)))
            return None

    @staticmethod
    def _action(raw: dict[str, Any], ptr: str, issues: list[Issue]) -> JobAction | None:
        command = raw.get("command")
        http = raw.get("http")
        if command is not None and http is not None:
            issues.append(
                Issue(ptr + "/http", "a job has at most one action: keep 'command' or 'http', not both", key=True)
            )
            return None
        if command is None:
            for name in _COMMAND_ONLY:
                if name in raw:
                    issues.append(Issue(f"{ptr}/{name}", f"'{name}' applies only to a job with 'command'", key=True))
            if "timeout_seconds" in raw:
                where = "put it inside 'http'" if http is not None else "it applies only to 'command'"
                issues.append(Issue(ptr + "/timeout_seconds", f"job-level 'timeout_seconds': {where}", key=True))
        if command is not None:
            return _make(
                CommandAction,
                argv=tuple(command),
                env=dict(raw.get("env") or {}),
                cwd=raw.get("cwd"),
                timeout_seconds=float(raw.get("timeout_seconds", 3600.0)),
                kind="command",
            )
        if http is not None:
            return _make(
                HttpAction,
                url=http["url"],
                method=http.get("method", "POST"),
                headers=dict(http.get("headers") or {}),
                body=http.get("body"),
                timeout_seconds=float(http.get("timeout_seconds", 3600.0)),
                kind="http",
            )
        return None
