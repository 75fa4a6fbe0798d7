"""Kubernetes ``batch/v1`` CronJob YAML -> jobs (one or many documents, ``kind: List`` too).

``schedule`` (5 fields or a macro, with an optional ``TZ=``/``CRON_TZ=`` prefix) and ``timeZone`` become
the cron schedule; ``suspend: true`` becomes ``enabled: false``; the first container's ``command`` +
``args`` become the argv (no shell, as in Kubernetes), its literal ``env`` the job's env, its
``workingDir`` the cwd, and the Job's ``activeDeadlineSeconds`` the timeout. What Kubernetes does around
the command (the image, other containers, concurrency and deadline policies, retries) is reported.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from cronplan.documents.importers.entries import Entry, IdMaker, dst_note
from cronplan.errors import CronplanError

__all__ = ["read"]

_TZ_PREFIX = re.compile(r"^\s*(?:CRON_)?TZ=(\S+)\s+(.*)$")
_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
_REPORTED = {
    "concurrencyPolicy": "concurrencyPolicy is not carried over: cronplan claims each occurrence once "
    "and never starts a second run of the same occurrence, but runs of different occurrences may overlap",
    "startingDeadlineSeconds": "startingDeadlineSeconds is not carried over: cronplan runs a late "
    "occurrence within its grace window (half the period, 2 min to 2 h) and catch_up decides beyond it",
    "successfulJobsHistoryLimit": "successfulJobsHistoryLimit is not carried over: run history is kept "
    "by 'retention' in cronplan.yaml",
    "failedJobsHistoryLimit": "failedJobsHistoryLimit is not carried over: run history is kept by "
    "'retention' in cronplan.yaml",
}


def read(path: Path, text: str, ids: IdMaker, *, system: bool = False) -> list[Entry]:
    file = str(path)
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise CronplanError(
            f"{file}:{line}: cannot import: invalid YAML: {exc.problem or exc.context}"
        ) from None
    except yaml.YAMLError as exc:
        raise CronplanError(f"{file}:1: cannot import: invalid YAML: {exc}") from None
    entries: list[Entry] = []
    found = False
    for node in nodes:
        if node is None or (isinstance(node, yaml.ScalarNode) and node.value in ("", "~", "null")):
            continue  # an empty document (a trailing ---)
        for item_node in _objects(node):
            obj = yaml.SafeLoader("").construct_document(item_node)
            line = item_node.start_mark.line + 1
            if not isinstance(obj, dict) or obj.get("kind") != "CronJob":
                kind = obj.get("kind") if isinstance(obj, dict) else type(obj).__name__
                entry = Entry(file, line, None)
                entry.note(f"skipped: not a CronJob (kind: {kind})")
                entries.append(entry)
                continue
            found = True
            entries.append(_cronjob(file, line, obj, ids))
    if not found:
        raise CronplanError(f"{file}: cannot import: no Kubernetes CronJob in it (kind: CronJob)")
    return entries


def _objects(node: yaml.Node) -> list[yaml.Node]:
    """The objects of a document: the document itself, or the items of a ``kind: List``."""
    if isinstance(node, yaml.MappingNode):
        fields = {k.value: v for k, v in node.value if isinstance(k, yaml.ScalarNode)}
        kind, items = fields.get("kind"), fields.get("items")
        if (
            isinstance(kind, yaml.ScalarNode)
            and kind.value.endswith("List")
            and isinstance(items, yaml.SequenceNode)
        ):
            return list(items.value)
    return [node]


def _get(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


# One CronJob field after another, each with its own note: a flat list reads better split nowhere.
def _cronjob(file: str, line: int, obj: dict[str, Any], ids: IdMaker) -> Entry:  # noqa: C901, PLR0912
    entry = Entry(file, line, None)
    name = str(_get(obj, "metadata", "name") or "cronjob")
    namespace = str(_get(obj, "metadata", "namespace") or "default")
    raw_spec = obj.get("spec")
    spec: dict[str, Any] = raw_spec if isinstance(raw_spec, dict) else {}
    api = obj.get("apiVersion")
    if api != "batch/v1":
        entry.note(f"apiVersion {api!r}: read as batch/v1")
    schedule_text = spec.get("schedule")
    if not isinstance(schedule_text, str) or not schedule_text.strip():
        entry.note(f"not imported: CronJob {name!r} has no spec.schedule")
        return entry
    tz = spec.get("timeZone")
    prefix = _TZ_PREFIX.match(schedule_text)
    expr = schedule_text.strip()
    if prefix:
        if tz and tz != prefix.group(1):
            entry.note(f"not imported: schedule names zone {prefix.group(1)!r} and timeZone {tz!r}")
            return entry
        tz, expr = prefix.group(1), prefix.group(2).strip()
    if expr.startswith("@") and expr.lower() not in _MACROS:
        entry.note(f"not imported: schedule {expr!r} has no exact cron equivalent in cronplan")
        return entry
    fields = expr.split()
    if len(fields) == 5:
        fields = ["*" if f == "?" else f for f in fields]
        expr = " ".join(fields)
        dom, dow = fields[2], fields[4]
        if dom.startswith("*/") and not dow.startswith("*"):
            entry.note(
                f"day-of-month {dom!r} with day-of-week {dow!r}: Kubernetes matches either, "
                "cronplan (like Debian cron) matches days that satisfy both"
            )
    elif not expr.startswith("@"):
        entry.note(f"not imported: schedule {expr!r} is not a 5-field cron expression")
        return entry
    schedule: dict[str, Any] = {"kind": "cron", "expr": expr}
    if tz:
        schedule["tz"] = str(tz)
        note = dst_note(
            str(tz), "Kubernetes (which skips a skipped time and runs a repeated one twice)"
        )
        if note:
            entry.note(note)
    else:
        entry.note(
            "no timeZone: Kubernetes used kube-controller-manager's zone; read in cronplan's "
            "configured timezone (UTC by default)"
        )
    job: dict[str, Any] = {
        "id": ids.make(name, namespace, name),
        "name": name if namespace == "default" else f"{namespace}/{name}",
        "schedule": schedule,
    }
    if spec.get("suspend") is True:
        job["enabled"] = False
    for key, message in _REPORTED.items():
        if key in spec:
            entry.note(message)
    job_spec = _get(spec, "jobTemplate", "spec") or {}
    if isinstance(job_spec, dict):
        deadline = job_spec.get("activeDeadlineSeconds")
        if isinstance(deadline, int) and deadline > 0:
            job["timeout_seconds"] = deadline
        if "backoffLimit" in job_spec:
            entry.note("backoffLimit is not carried over: cronplan runs an occurrence once")
    if not _container(entry, job, _get(job_spec, "template", "spec")):
        return entry
    entry.job = job
    return entry


def _container(entry: Entry, job: dict[str, Any], pod: Any) -> bool:
    containers = pod.get("containers") if isinstance(pod, dict) else None
    if not isinstance(containers, list) or not containers or not isinstance(containers[0], dict):
        entry.note("not imported: the job template has no containers")
        return False
    first = containers[0]
    if len(containers) > 1:
        entry.note(f"only the first container ({first.get('name')!r}) is carried over")
    command, args = first.get("command"), first.get("args")
    if not command:
        what = (
            "only args, so the image's entrypoint" if args else "no command: the image's entrypoint"
        )
        entry.note(
            f"not imported: the container has {what} runs it, which cronplan cannot see; "
            "add the entrypoint as command"
        )
        return False
    argv = [str(a) for a in [*command, *(args or [])]]
    if any("$(" in a for a in argv):
        entry.note("$(VAR) references in command/args are expanded by Kubernetes, not by cronplan")
    job["command"] = argv
    if first.get("image"):
        entry.note(
            f"ran in image {first['image']!r}: cronplan runs the command where cronplan runs"
        )
    env: dict[str, str] = {}
    for item in first.get("env") or []:
        if isinstance(item, dict) and "value" in item and "name" in item:
            env[str(item["name"])] = str(item["value"])
        elif isinstance(item, dict):
            entry.note(f"env {item.get('name')!r} comes from valueFrom: not carried over")
    if first.get("envFrom"):
        entry.note("envFrom is not carried over")
    if env:
        job["env"] = env
    if isinstance(first.get("workingDir"), str) and first["workingDir"]:
        job["cwd"] = first["workingDir"]
    return True
