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
from typing import Any, cast
from zoneinfo import ZoneInfo

from cronplan._gc import gc_paused
from cronplan.documents.schema_errors import Issue, locate, schema_issues
from cronplan.documents.zones import ZONE_CACHE as _ZONES
from cronplan.documents.zones import zone as _zone
from cronplan.documents.zones import zone_hint
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
    build_frozen,
)
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

_MAX_INTERVAL_S = 100 * 31_557_600  # 100 Julian years
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_COMMAND_ONLY = ("env", "cwd")


@dataclass(frozen=True)
class JobsFile:
    path: Path
    jobs: tuple[Job, ...]

    def by_id(self) -> dict[str, Job]:
        return {j.id: j for j in self.jobs}


def _canonical_encoder() -> Callable[[Any], bytes]:
    """Canonical JSON as UTF-8 bytes (sorted keys, compact). Digests are computed per job, so the encoder is
    on the hot path of ``plan``: orjson sorts and encodes in one C call; a value it cannot encode (an
    integer beyond 64 bits) goes through the standard library's encoder, which writes the same text."""
    import orjson

    dumps = orjson.dumps
    sort_keys = orjson.OPT_SORT_KEYS
    slow = json.JSONEncoder(
        sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode

    def encode(value: Any) -> bytes:
        try:
            return dumps(value, option=sort_keys)
        except TypeError:  # orjson.JSONEncodeError
            return slow(value).encode("utf-8")

    return encode


_canonical = _canonical_encoder()
_sha256 = hashlib.sha256


def canonical_json(value: Any) -> str:
    return _canonical(value).decode("utf-8")


def spec_digest(spec: Mapping[str, Any]) -> str:
    """SHA-256 hex of the canonical JSON of a job spec (sorted keys, compact, UTF-8)."""
    return _sha256(_canonical(spec)).hexdigest()


_new = object.__new__
_UNSEEN: Any = object()


@dataclass(frozen=True)
class Checked:
    """A job that passed every check but was not built (``check_jobs_text`` builds none, ``parse_one``
    one); ``needs_runner`` when it has no command/http action (the configured runner runs it)."""

    needs_runner: bool


_CHECKED = Checked(needs_runner=False)
_CHECKED_FOR_RUNNER = Checked(needs_runner=True)

NO_RUNNER = (
    "this job has no 'command' or 'http' action and no 'runner' is configured to run it: set 'runner' "
    "in cronplan.yaml (an argv that gets the job as JSON on stdin), or give the job a 'command'"
)


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
    text, fmt, name = _read(path)
    jobs = parse_jobs(text, file=name, fmt=fmt, default_tz=default_tz)
    return JobsFile(path=path, jobs=jobs)


def load_job(path: str | Path, job_id: str, *, default_tz: str = "UTC") -> Job | None:
    """The job ``job_id`` of ``path`` (None when there is none), after the same checks as ``load_jobs``.

    Every job is checked, exactly as ``load_jobs`` does, but only this one is built (spec, digest): a fire
    needs one job, and in a file of 100,000 building them all would be most of its cost.
    """
    text, fmt, name = _read(Path(path))
    return parse_one(text, job_id, file=name, fmt=fmt, default_tz=default_tz)


def job_from_spec(spec: Mapping[str, Any], *, default_tz: str = "UTC") -> Job:
    """The ``Job`` of a spec as the ledger records it (the job as applied), built as ``load_jobs`` builds.

    A spec is what ``load_jobs`` made of a job (runtime fields removed, the effective ``schedule.tz``
    filled in), so building it again gives the same ``Job`` with the same digest; the runner receives the
    spec on stdin. A spec that does not build (a ledger edited by hand) raises ``LedgerError``.
    """
    raw = dict(spec)
    zone = _zone(default_tz) or _zone("UTC")
    assert zone is not None
    builder = _Builder(default_tz, zone, build_all=True)
    builder.prefix, builder.index = "", 0
    issues: list[Issue] = []
    try:
        job = builder.build(raw, raw.get("id"), issues)
    except (KeyError, TypeError, AttributeError, ValueError):
        job = None
    if not isinstance(job, Job):
        from cronplan.errors import LedgerError

        why = f": {issues[0].message}" if issues else ""
        raise LedgerError(
            f"the applied definition of job {raw.get('id')!r} in the ledger cannot be read{why}; "
            "apply the job again"
        )
    return job


def check_jobs(path: str | Path, *, default_tz: str = "UTC") -> int:
    """Validate ``path`` exactly as ``load_jobs`` does and return the number of jobs.

    The same checks and the same problems, without building specs and digests that a pure check
    (``cronplan validate``) never uses.
    """
    return inspect_jobs(path, default_tz=default_tz)[0]


def inspect_jobs(path: str | Path, *, default_tz: str = "UTC") -> tuple[int, list[int]]:
    """``check_jobs``, plus the indexes (in the file) of the jobs that need the configured runner."""
    text, fmt, name = _read(Path(path))
    checked = check_jobs_text(text, file=name, fmt=fmt, default_tz=default_tz)
    return len(checked), [i for i, job in enumerate(checked) if job.needs_runner]


def runner_problems(jobs_file: JobsFile) -> list[Problem]:
    """Every job of ``jobs_file`` that has no command/http action, located (for a missing ``runner``)."""
    indexes = [i for i, job in enumerate(jobs_file.jobs) if job.action is None]
    return locate_jobs(jobs_file.path, indexes, NO_RUNNER) if indexes else []


def locate_jobs(path: str | Path, indexes: list[int], message: str) -> list[Problem]:
    """One located Problem per job (by its index in the file) of a file that passed validation.

    Only an error or warning path calls this: it reads the file again to find the positions.
    """
    text, fmt, name = _read(Path(path))
    doc, _ = _parse(text, name, fmt)
    prefix = "/jobs" if isinstance(doc, dict) else ""
    issues = [Issue(f"{prefix}/{i}", message) for i in indexes]
    return locate(issues, _index(text, fmt, [i.pointer for i in issues]), name)


def _read(path: Path) -> tuple[str, str, str]:
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
    return text, fmt, name


def parse_jobs(
    text: str, *, file: str, fmt: str = "json", default_tz: str = "UTC"
) -> tuple[Job, ...]:
    """Validate and build the jobs of a jobs-file text (``fmt``: ``json`` or ``yaml``).

    The collector is paused throughout (here and in ``parse_one`` and ``check_jobs_text``), and resumes
    only once the parsed document is released: what is left then is what the caller keeps (all jobs, one,
    or none), not a million dicts to walk once more.
    """
    with gc_paused(freeze_survivors=True):
        items = _parse_jobs(text, file=file, fmt=fmt, default_tz=default_tz, build_all=True)
    return cast("tuple[Job, ...]", items)  # build_all: every item is a built Job


def parse_one(
    text: str, job_id: str, *, file: str, fmt: str = "json", default_tz: str = "UTC"
) -> Job | None:
    """Check every job of a jobs-file text as ``parse_jobs`` does, but build only ``job_id`` (or None)."""
    with gc_paused():
        items = _parse_jobs(text, file=file, fmt=fmt, default_tz=default_tz, build_id=job_id)
    return next((job for job in items if isinstance(job, Job)), None)


def check_jobs_text(
    text: str, *, file: str, fmt: str = "json", default_tz: str = "UTC"
) -> tuple[Checked, ...]:
    """Check a jobs-file text as ``parse_jobs`` does, building nothing: one ``Checked`` per job."""
    with gc_paused():
        items = _parse_jobs(text, file=file, fmt=fmt, default_tz=default_tz)
    return cast("tuple[Checked, ...]", items)  # neither build_all nor build_id: nothing is built


def _parse_jobs(
    text: str,
    *,
    file: str,
    fmt: str,
    default_tz: str,
    build_all: bool = False,
    build_id: str | None = None,
) -> tuple[Job | Checked, ...]:
    default_zone = _zone(default_tz)
    if default_zone is None:
        raise ConfigError(
            f"unknown default timezone {default_tz!r} (check 'timezone' in cronplan.yaml)"
        )
    doc, suspicious = _parse(text, file, fmt)

    from cronplan.documents.schemas import fast_validator

    issues: list[Issue] = []
    if fmt == "yaml":
        from cronplan.documents.yamlio import json_compatible

        doc, odd = json_compatible(doc)
        issues = [Issue(ptr, message, key=is_key) for ptr, is_key, message in odd]
    elif suspicious:
        from cronplan.documents.strictjson import hostile_values

        issues = [Issue(ptr, message, key=is_key) for ptr, is_key, message in hostile_values(doc)]
    try:
        schema_ok = bool(fast_validator("jobs").is_valid(doc))
    except (ValueError, TypeError, OverflowError):  # a value JSON cannot hold
        schema_ok = False
    if not schema_ok:
        taken = {i.pointer for i in issues}
        issues += [i for i in _schema_issues(doc) if i.pointer not in taken]
    if isinstance(doc, dict):
        raw_jobs, prefix = doc.get("jobs"), "/jobs"
    else:
        raw_jobs, prefix = doc, ""
    jobs: list[Job | Checked] = []
    if isinstance(raw_jobs, list):
        nul = fmt == "yaml" or "\\u0000" in text
        builder = _Builder(
            default_tz, default_zone, build_all=build_all, build_id=build_id, nul_possible=nul
        )
        jobs, more = builder.check_all(raw_jobs, prefix)
        issues.extend(_not_shadowed(more, issues))
    if schema_ok and not issues:
        return tuple(jobs)
    if not issues:  # the fast and the detailed validator disagree: still never pass silently
        issues = [Issue("", "the file does not match the jobs schema")]
    wanted = [i.pointer for i in issues] + [i.related for i in issues if i.related]
    raise ValidationError(locate(issues, _index(text, fmt, wanted), file))


# --------------------------------------------------------------------------- parsing


def _parse(text: str, file: str, fmt: str) -> tuple[Any, bool]:
    """The document, and whether a JSON one may hold values ``strictjson.hostile_values`` reports."""
    if fmt == "yaml":
        from cronplan.documents.yamlio import YamlSyntaxError, load_yaml

        try:
            doc = load_yaml(text, file)
        except YamlSyntaxError as exc:
            raise ValidationError([exc.problem]) from None
        if doc is None:
            raise ValidationError(
                [Problem(file, 1, 1, "", "the file is empty; expected {jobs: [...]}")]
            )
        return doc, True
    from cronplan.documents.strictjson import NotJsonConstant, loads

    try:
        return loads(text)
    except NotJsonConstant as exc:
        m = re.search(r"-?" + exc.args[0], text)
        line, col = _line_col(text, m.start() if m else 0)
        raise ValidationError(
            [Problem(file, line, col, "", f"invalid JSON: {exc.args[0]} is not a JSON number")]
        ) from None
    except json.JSONDecodeError as exc:
        raise ValidationError(
            [Problem(file, exc.lineno, exc.colno, "", f"invalid JSON: {exc.msg}")]
        ) from None
    except RecursionError:
        raise ValidationError(
            [Problem(file, 1, 1, "", "invalid JSON: nested too deeply")]
        ) from None


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _index(text: str, fmt: str, wanted: list[str]) -> Any:
    from cronplan.documents.positions import json_positions_of
    from cronplan.documents.yamlio import yaml_positions

    return yaml_positions(text) if fmt == "yaml" else json_positions_of(text, wanted)


def _schema_issues(doc: Any) -> list[Issue]:
    """The detailed report. ``jsonschema`` is slow, so it only looks at the top level and at the jobs
    the compiled validator rejects: one bad job in 100,000 costs little more than the fast check."""
    if isinstance(doc, dict):
        target, jobs, prefix = "document", doc.get("jobs"), "/jobs"
    elif isinstance(doc, list):
        target, jobs, prefix = "jobList", doc, ""
    else:
        return [
            Issue("", 'expected an object {"jobs": [...]} or a list of jobs, not ' + _what(doc))
        ]
    try:
        if not isinstance(jobs, list):
            return schema_issues(_branch_validator(target), doc)
        top: Any = [] if isinstance(doc, list) else {**doc, "jobs": []}
        issues = schema_issues(_branch_validator(target), top)
        fast, detailed = _fast_job_validator(), _branch_validator("job")
        for i, job in enumerate(jobs):
            try:
                ok = fast.is_valid(job)
            except (ValueError, TypeError, OverflowError):
                ok = False
            if not ok:
                issues += schema_issues(detailed, job, f"{prefix}/{i}")
        return issues
    except RecursionError:
        return [Issue("", "the document is nested too deeply to check")]


_BRANCHES: dict[str, Any] = {}


def _subschema(target: str) -> dict[str, Any]:
    from cronplan.documents.schemas import load_schema

    root = load_schema("jobs")
    return {"$schema": root["$schema"], "$defs": root["$defs"], "$ref": f"#/$defs/{target}"}


def _branch_validator(target: str) -> Any:
    """A detailed validator for one part of the schema, so errors are not buried in anyOf context."""
    if target not in _BRANCHES:
        from cronplan.documents.schemas import jsonschema_module

        _BRANCHES[target] = jsonschema_module().Draft202012Validator(_subschema(target))
    return _BRANCHES[target]


def _fast_job_validator() -> Any:
    if "fast:job" not in _BRANCHES:
        import jsonschema_rs

        _BRANCHES["fast:job"] = jsonschema_rs.validator_for(_subschema("job"))
    return _BRANCHES["fast:job"]


def _what(value: Any) -> str:
    from cronplan.documents.schema_errors import type_name

    return type_name(value)


def _not_shadowed(semantic: list[Issue], schema: list[Issue]) -> list[Issue]:
    """Semantic issues at (or under) a pointer the schema already complained about add only noise."""
    if not schema:
        return semantic
    taken = [i.pointer for i in schema]
    return [
        i
        for i in semantic
        if not any(t == i.pointer or t.startswith(i.pointer + "/") for t in taken)
    ]


# --------------------------------------------------------------------------- zones and cron


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
        # Only the syntax is checked here, so any fixed instant does (never the wall clock).
        CronSim(expr, datetime(2000, 1, 1, tzinfo=timezone.utc))
    except CronSimError as exc:
        return f"invalid cron expression {expr!r}: {exc}"
    except Exception as exc:
        return f"invalid cron expression {expr!r}: {exc}"
    return None


# --------------------------------------------------------------------------- building jobs


class _Builder:
    """Checks each job's meaning and builds it; caches per distinct cron expression and zone."""

    def __init__(
        self,
        default_tz: str,
        default_zone: ZoneInfo,
        *,
        build_all: bool = False,
        build_id: str | None = None,
        nul_possible: bool = True,
    ) -> None:
        # Every job is checked; built are all of them, or only ``build_id``, or none.
        self.build_all = build_all
        self.build_id = build_id
        self.default_tz = default_tz
        self.default_zone = default_zone
        self.check_cron = _cron_checker()
        # Whether any string may hold a NUL byte: JSON can only write one as \u0000 (see _parse_jobs).
        self.nul_possible = nul_possible
        self.cron_cache: dict[str, str | None] = {}
        # Shared anchors (start_at) and batches of one-shots repeat the same texts.
        self.instants: dict[tuple[str, tzinfo], datetime] = {}

    def check_all(
        self, raw_jobs: list[Any], prefix: str
    ) -> tuple[list[Job | Checked], list[Issue]]:
        jobs: list[Job | Checked] = []
        append = jobs.append
        issues: list[Issue] = []
        first_seen: dict[str, int] = {}
        self.prefix = prefix
        build = self.build
        for i, raw in enumerate(raw_jobs):
            if type(raw) is not dict:
                continue  # the schema reports it
            jid = raw.get("id")
            if type(jid) is not str:
                pass
            elif jid in first_seen:
                issues.append(
                    Issue(
                        f"{prefix}/{i}/id",
                        f"duplicate job id '{jid}' (first defined at line {{line}})",
                        related=f"{prefix}/{first_seen[jid]}/id",
                    )
                )
            else:
                first_seen[jid] = i
            self.index = i
            try:
                job = build(raw, jid, issues)
            except (KeyError, TypeError, AttributeError, ValueError, OverflowError) as exc:
                # Malformed in a way the schema reports (the schema's issue then shadows this one).
                # Never a silently missing job: apply would cancel its arm as an orphan.
                issues.append(Issue(self.ptr(""), f"this job cannot be loaded: {exc}"))
                job = None
            if job is not None:
                append(job)
        return jobs, issues

    def ptr(self, suffix: str) -> str:
        """The pointer of the job being built plus ``suffix``; only built when there is a problem."""
        return f"{self.prefix}/{self.index}{suffix}"

    def build(self, raw: dict[str, Any], jid: Any, issues: list[Issue]) -> Job | Checked | None:
        before = len(issues)
        sched = raw["schedule"]
        tzname = sched.get("tz") or self.default_tz
        zone = _ZONES.get(tzname) if type(tzname) is str else None
        if zone is None:
            zone = _zone(tzname) if type(tzname) is str else None
            if zone is None:
                issues.append(
                    Issue(
                        self.ptr("/schedule/tz"),
                        f"unknown timezone {tzname!r}{zone_hint(str(tzname))}",
                    )
                )
                zone = self.default_zone
        schedule = self._schedule(sched, tzname, zone, issues)
        command = raw.get("command")
        http = raw.get("http")
        self._check_action(raw, command, http, issues)
        if (
            len(issues) > before
            or schedule is None
            or type(jid) is not str
            or not _ID.fullmatch(jid)
        ):
            return None
        if not self.build_all and jid != self.build_id:
            return _CHECKED_FOR_RUNNER if command is None and http is None else _CHECKED

        # Most jobs carry no runtime field: copy them whole. Joining the keys finds a "_"-prefixed one at
        # C speed (a NUL inside a key only sends the job down the exact path below).
        keys = "\x00".join(raw)
        if RUNTIME_FIELDS.isdisjoint(raw) and "\x00_" not in keys and keys[:1] != "_":
            spec = raw.copy()
        else:
            spec = {k: v for k, v in raw.items() if k not in RUNTIME_FIELDS and k[:1] != "_"}
        spec_sched = sched.copy()
        spec_sched["tz"] = tzname
        spec["schedule"] = spec_sched
        repeat = raw.get("repeat")
        times = None
        if repeat is not None:
            times = repeat.get("times")
            if "completed" in repeat:
                spec["repeat"] = {k: v for k, v in repeat.items() if k != "completed"}
        action = _make_action(raw, command, http)
        job = _new(Job)
        job.__dict__.update(
            id=jid,
            schedule=schedule,
            spec=spec,
            digest=_sha256(_canonical(spec)).hexdigest(),
            raw=raw,
            name=raw.get("name"),
            enabled=raw.get("enabled", True),
            state=raw.get("state", "scheduled"),
            repeat_times=times,
            catch_up=raw.get("catch_up", "once"),
            action=action,
        )
        return job

    def _schedule(
        self, sched: dict[str, Any], tzname: str, zone: tzinfo, issues: list[Issue]
    ) -> Schedule | None:
        kind = sched["kind"]
        if kind == "cron":
            expr = sched["expr"]
            problem = self.cron_cache.get(expr, _UNSEEN)
            if problem is _UNSEEN:
                problem = self.cron_cache[expr] = self.check_cron(expr)
            if problem is not None:
                issues.append(Issue(self.ptr("/schedule/expr"), str(problem)))
                return None
            return build_frozen(CronSchedule, expr=expr, tz=tzname, kind="cron")
        if kind == "interval":
            seconds = sched.get("seconds")
            if seconds is None:
                seconds = sched["minutes"] * 60
            seconds = int(seconds)
            if seconds < 1:
                issues.append(Issue(self.ptr("/schedule"), "an interval must be at least 1 second"))
                return None
            if seconds > _MAX_INTERVAL_S:
                # 1e18 is an integer to JSON Schema, and such a job would simply never fire.
                field = "seconds" if sched.get("seconds") is not None else "minutes"
                issues.append(
                    Issue(
                        self.ptr(f"/schedule/{field}"),
                        f"an interval must be at most 100 years ({_MAX_INTERVAL_S} seconds)",
                    )
                )
                return None
            start_at = None
            if sched.get("start_at") is not None:
                start_at = self._instant(sched["start_at"], zone, "/schedule/start_at", issues)
                if start_at is None:
                    return None
            return build_frozen(
                IntervalSchedule, seconds=seconds, start_at=start_at, tz=tzname, kind="interval"
            )
        if kind == "once":
            run_at = self._instant(sched["run_at"], zone, "/schedule/run_at", issues)
            if run_at is None:
                return None
            return build_frozen(OnceSchedule, run_at=run_at, tz=tzname, kind="once")
        return None

    def _instant(
        self, text: Any, zone: tzinfo, suffix: str, issues: list[Issue]
    ) -> datetime | None:
        if not isinstance(text, str):
            return None
        key = (text, zone)
        instant = self.instants.get(key)
        if instant is None:
            try:
                instant = self.instants[key] = parse_ts(text, default_tz=zone)
            except ValueError as exc:
                issues.append(Issue(self.ptr(suffix), str(exc)))
                return None
        return instant

    def _check_action(
        self, raw: dict[str, Any], command: Any, http: Any, issues: list[Issue]
    ) -> None:
        if command is not None:
            self._check_command(raw, command, issues)
        if http is not None:
            self._check_http(http, issues)
        if command is not None and http is not None:
            issues.append(
                Issue(
                    self.ptr("/http"),
                    "a job has at most one action: keep 'command' or 'http', not both",
                    key=True,
                )
            )
            return
        if command is None:
            for name in _COMMAND_ONLY:
                if name in raw:
                    issues.append(
                        Issue(
                            self.ptr("/" + name),
                            f"'{name}' applies only to a job with 'command'",
                            key=True,
                        )
                    )
            if "timeout_seconds" in raw:
                where = (
                    "put it inside 'http'" if http is not None else "it applies only to 'command'"
                )
                issues.append(
                    Issue(
                        self.ptr("/timeout_seconds"),
                        f"job-level 'timeout_seconds': {where}",
                        key=True,
                    )
                )

    def _check_command(self, raw: dict[str, Any], command: Any, issues: list[Issue]) -> None:
        """What the schema cannot say: NUL bytes (no OS accepts them in argv, env or a path) and env
        names an environment cannot hold (empty, or with '=' which would split them). Cheap first
        checks keep this off the profile of a 100,000-job file (benchmarks/validate.py)."""
        nul = self.nul_possible
        if nul and type(command) is list:
            for i, arg in enumerate(command):
                if type(arg) is str and "\x00" in arg:
                    issues.append(Issue(self.ptr(f"/command/{i}"), _NUL_MESSAGE))
        env = raw.get("env")
        if type(env) is dict and env and ("" in env or "=" in "".join(env) or nul):
            for name, value in env.items():
                if not name or "=" in name or "\x00" in name:
                    issues.append(
                        Issue(
                            self.ptr("/env/" + _escape(name)),
                            f"invalid environment variable name {_shown(name)}: a name is "
                            "non-empty and holds no '=' or NUL byte",
                            key=True,
                        )
                    )
                elif type(value) is str and "\x00" in value:
                    issues.append(Issue(self.ptr("/env/" + _escape(name)), _NUL_MESSAGE))
        if nul:
            cwd = raw.get("cwd")
            if type(cwd) is str and "\x00" in cwd:
                issues.append(Issue(self.ptr("/cwd"), _NUL_MESSAGE))

    def _check_http(self, http: Any, issues: list[Issue]) -> None:
        if type(http) is not dict:
            return
        url = http.get("url")
        if type(url) is str:
            problem = url_problem(url)
            if problem:
                issues.append(Issue(self.ptr("/http/url"), problem))
        headers = http.get("headers")
        if type(headers) is dict and headers:
            text = "".join(headers) + "".join(v for v in headers.values() if type(v) is str)
            if "" in headers or _BAD_HEADER.search(text):
                for name, value in headers.items():
                    both = name + (value if type(value) is str else "")
                    if not name or _BAD_HEADER.search(both):
                        issues.append(
                            Issue(
                                self.ptr("/http/headers/" + _escape(name)),
                                "a header name or value cannot be empty or hold CR, LF or NUL",
                                key=True,
                            )
                        )


_PLAIN_URL = re.compile(
    r"[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9._~-]+(?::(\d{1,5}))?(?:[/?#][^\x00]*)?\Z"
)
_BAD_HEADER = re.compile(r"[\r\n\x00]")
_NUL_MESSAGE = "contains a NUL byte (\\u0000), which no program argument, variable or path can hold"


def _escape(token: str) -> str:
    from cronplan.documents.positions import escape_token

    return escape_token(token)


def _shown(text: str) -> str:
    return repr(text).replace("\\x00", "\\u0000")


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be called (None when it can): it must parse, name a host, and any port must
    be 1-65535. The schema has already checked the scheme."""
    plain = _PLAIN_URL.match(url)
    if plain and (plain.group(1) is None or 0 < int(plain.group(1)) < 65536):
        return None  # the common case, without urlsplit's cost (benchmarks/validate.py)
    from urllib.parse import urlsplit

    if "\x00" in url:
        return _NUL_MESSAGE
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"not a valid URL ({exc}); write it as http(s)://HOST[:PORT]/PATH"
    if not parts.hostname:
        return "the URL names no host; write it as http(s)://HOST[:PORT]/PATH"
    if port == 0:
        return "port 0 is not a port; use 1-65535"
    return None


def _make_action(raw: dict[str, Any], command: Any, http: Any) -> JobAction | None:
    """The action of a checked job (None: the configured runner runs it)."""
    if command is not None:
        return build_frozen(
            CommandAction,
            argv=tuple(command),
            env=dict(raw.get("env") or {}),
            cwd=raw.get("cwd"),
            timeout_seconds=float(raw.get("timeout_seconds", 3600.0)),
            kind="command",
        )
    if http is not None:
        return build_frozen(
            HttpAction,
            url=http["url"],
            method=http.get("method", "POST"),
            headers=dict(http.get("headers") or {}),
            body=http.get("body"),
            timeout_seconds=float(http.get("timeout_seconds", 3600.0)),
            kind="http",
        )
    return None
