"""systemd ``.timer`` units (with their ``.service``) -> jobs.

Each ``OnCalendar=`` line becomes a cron job (several lines: one job each, reported); ``OnUnitActiveSec=``
becomes an interval job, reported because systemd counts from the unit's last start while cronplan counts
from the epoch. The service is ``Unit=`` or the timer's own name with ``.service``, found beside the timer;
its ``ExecStart=`` is the argv (no shell, as in systemd), ``Environment=`` the env and
``WorkingDirectory=`` the cwd. ``Persistent=``, ``RandomizedDelaySec=``, ``OnBootSec=`` and whatever else
changes when or how the command runs is reported. See docs/import.md.
"""

from __future__ import annotations

import copy
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cronplan.documents.importers.entries import Entry, IdMaker, dst_note
from cronplan.documents.importers.systemd_calendar import CalendarError, parse_span, to_cron
from cronplan.errors import CronplanError

__all__ = ["Unit", "parse_unit", "read"]

_RESETTABLE = {"OnCalendar", "ExecStart", "Environment", "OnUnitActiveSec", "OnUnitInactiveSec"}
_SPECIFIER = re.compile(r"%(.)")


@dataclass
class Unit:
    """A unit file: ``(section, key) -> [(line, value), ...]`` in file order."""

    file: str
    values: dict[tuple[str, str], list[tuple[int, str]]] = field(default_factory=dict)

    def all(self, section: str, key: str) -> list[tuple[int, str]]:
        return self.values.get((section, key), [])

    def last(self, section: str, key: str) -> tuple[int, str] | None:
        found = self.all(section, key)
        return found[-1] if found else None


def parse_unit(file: str, text: str) -> Unit:
    """Read a unit file: sections, ``Key=value``, comments, continuation lines, empty values resetting."""
    unit = Unit(file)
    section = ""
    pending: tuple[int, str] | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        if pending is not None:
            start, so_far = pending
            line, pending = so_far + " " + raw.strip(), None
            number = start
        else:
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
        if line.endswith("\\"):
            pending = (number, line[:-1].rstrip())
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise CronplanError(f"{file}:{number}: cannot import: expected Key=value or [Section]")
        key, value = key.strip(), value.strip()
        slot = unit.values.setdefault((section, key), [])
        if not value and key in _RESETTABLE:
            slot.clear()
        else:
            slot.append((number, value))
    return unit


def read(path: Path, text: str, ids: IdMaker, *, system: bool = False) -> list[Entry]:
    file = str(path)
    if path.suffix == ".service":
        if _has_timer(path):
            return []  # imported through its timer
        entry = Entry(file, 1, None)
        entry.note("skipped: a .service is imported through the .timer that starts it")
        return [entry]
    timer = parse_unit(file, text)
    if "Timer" not in {section for section, _ in timer.values}:
        raise CronplanError(f"{file}: cannot import: no [Timer] section (is it a .timer unit?)")
    entries: list[Entry] = []
    for key, message in (
        ("Persistent", "Persistent= is not carried over: cronplan catches up one missed run "
         "(catch_up: once, the default) and skips the rest"),
        ("RandomizedDelaySec", "RandomizedDelaySec= is not carried over: cronplan fires on time"),
        ("AccuracySec", "AccuracySec= is not carried over: cronplan fires on time"),
        ("OnBootSec", "OnBootSec= is not carried over: cronplan has no boot event"),
        ("OnStartupSec", "OnStartupSec= is not carried over: cronplan has no boot event"),
        ("OnActiveSec", "OnActiveSec= is not carried over: cronplan has no activation event"),
        ("WakeSystem", "WakeSystem= is not carried over"),
    ):  # fmt: skip
        found = timer.last("Timer", key)
        if found:
            entries.append(Entry(file, found[0], None, [message]))
    service_entry, action = _service(path, timer)
    entries.append(service_entry)
    stem = path.stem
    triggers = [("cal", line, v) for line, v in timer.all("Timer", "OnCalendar")]
    triggers += [("active", line, v) for line, v in timer.all("Timer", "OnUnitActiveSec")]
    triggers += [("inactive", line, v) for line, v in timer.all("Timer", "OnUnitInactiveSec")]
    if not triggers:
        entries.append(Entry(file, 1, None))
        entries[-1].note(
            "not imported: no OnCalendar=, OnUnitActiveSec= or OnUnitInactiveSec=: "
            "nothing cronplan can schedule"
        )
    zone_noted = False
    for index, (kind, line, value) in enumerate(triggers):
        entry = Entry(file, line, None)
        entries.append(entry)
        if len(triggers) > 1 and index == 0:
            entry.note(
                f"{len(triggers)} triggers in this timer: each is imported as a job of its own"
            )
        schedule = _schedule(entry, kind, value, zone_noted)
        if schedule is not None and schedule["kind"] == "cron" and "tz" not in schedule:
            zone_noted = True
        if schedule is None or action is None:
            if action is None:
                entry.note("not imported: its service has no usable ExecStart=")
            continue
        job: dict[str, Any] = {
            "id": ids.make(stem, stem, kind, value),
            "name": stem if len(triggers) == 1 else f"{stem} ({value})",
            "schedule": schedule,
            **copy.deepcopy(action),  # each job its own lists and maps
        }
        entry.job = job
    return entries


def _has_timer(service: Path) -> bool:
    """Whether a ``.timer`` beside ``service`` starts it (by its own name or by ``Unit=``)."""
    if service.with_suffix(".timer").exists():
        return True
    wanted = re.compile(r"^\s*Unit\s*=\s*" + re.escape(service.name) + r"\s*$", re.MULTILINE)
    for timer in service.parent.glob("*.timer"):
        try:
            if wanted.search(timer.read_text(encoding="utf-8")):
                return True
        except (OSError, UnicodeDecodeError):
            continue
    return False


def _schedule(entry: Entry, kind: str, value: str, zone_noted: bool) -> dict[str, Any] | None:
    if kind == "cal":
        try:
            cron = to_cron(value)
        except CalendarError as exc:
            entry.note(f"not imported: OnCalendar={value}: {exc}")
            return None
        schedule: dict[str, Any] = {"kind": "cron", "expr": cron.expr}
        if cron.tz:
            schedule["tz"] = cron.tz
            note = dst_note(cron.tz, "systemd (which skips a time that does not exist)")
            if note:
                entry.note(note)
        elif not zone_noted:
            entry.note(
                "no time zone: systemd used the machine's local zone; read in cronplan's "
                "configured timezone (UTC by default): append the zone to OnCalendar= if that differs"
            )
        return schedule
    key = "OnUnitActiveSec" if kind == "active" else "OnUnitInactiveSec"
    try:
        seconds = parse_span(value)
    except CalendarError as exc:
        entry.note(f"not imported: {key}={value}: {exc}")
        return None
    if seconds < 1 or seconds != int(seconds):
        entry.note(f"not imported: {key}={value} is not a whole number of seconds (at least 1)")
        return None
    since = "last started" if kind == "active" else "last finished"
    entry.note(
        f"{key}={value}: every {int(seconds)} s counted from the epoch (cronplan's interval), "
        f"not from when the unit {since}"
    )
    n = int(seconds)
    return (
        {"kind": "interval", "minutes": n // 60}
        if n % 60 == 0
        else {"kind": "interval", "seconds": n}
    )


def _service(timer_path: Path, timer: Unit) -> tuple[Entry, dict[str, Any] | None]:
    """The action (command, env, cwd) of the timer's service, and an entry holding the service's notes."""
    named = timer.last("Timer", "Unit")
    name = named[1] if named else timer_path.stem + ".service"
    path = timer_path.parent / name
    entry = Entry(str(path), 1, None)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        where = f"Unit={name}" if named else f"{name} (the timer's own name)"
        entry = Entry(timer.file, named[0] if named else 1, None)
        entry.note(f"not imported: cannot read the service {where} beside the timer: {path}")
        return entry, None
    service = parse_unit(str(path), text)
    starts = service.all("Service", "ExecStart")
    if not starts:
        entry.note("not imported: no ExecStart= in [Service]")
        return entry, None
    if len(starts) > 1:
        entry.line = starts[1][0]
        entry.note(
            f"not imported: {len(starts)} ExecStart= lines; cronplan runs one command per job"
        )
        return entry, None
    entry.line = starts[0][0]
    env: dict[str, str] = {}
    for _, value in service.all("Service", "Environment"):
        for assignment in shlex.split(value):
            key, sep, val = assignment.partition("=")
            if sep:
                env[key] = val
    argv = _exec_argv(entry, starts[0][1], env)
    if argv is None:
        return entry, None
    action: dict[str, Any] = {"command": argv}
    if env:
        action["env"] = env
    cwd = service.last("Service", "WorkingDirectory")
    if cwd and cwd[1].lstrip("-").startswith("/"):
        action["cwd"] = cwd[1].lstrip("-")
    elif cwd:
        entry.note(f"WorkingDirectory={cwd[1]} is not carried over (only an absolute path is)")
    for key in ("User", "Group", "EnvironmentFile", "DynamicUser"):
        found = service.last("Service", key)
        if found:
            entry.note(f"{key}={found[1]} is not carried over: the job runs as cronplan runs")
    return entry, action


def _exec_argv(entry: Entry, value: str, env: dict[str, str]) -> list[str] | None:
    prefixes = ""
    while value and value[0] in "-@:+!":
        prefixes += value[0]
        value = value[1:]
    if "@" in prefixes:
        entry.note("not imported: ExecStart=@ (a separate argv[0]) has no equivalent in cronplan")
        return None
    if "-" in prefixes:
        entry.note(
            "ExecStart=- (failure ignored): cronplan records a non-zero exit as a failed run"
        )
    if "+" in prefixes or "!" in prefixes:
        entry.note("ExecStart=+/! (privileged) is not carried over: the job runs as cronplan runs")
    specifiers = {m.group(1) for m in _SPECIFIER.finditer(value)} - {"%"}
    if specifiers:
        entry.note(
            "not imported: ExecStart= uses systemd specifiers "
            f"({', '.join('%' + s for s in sorted(specifiers))}) that only systemd can expand"
        )
        return None
    try:
        argv = [word.replace("%%", "%") for word in shlex.split(value)]
    except ValueError as exc:
        entry.note(f"not imported: cannot split ExecStart=: {exc}")
        return None
    if ":" not in prefixes:
        argv = _expand(entry, argv, env)
    return argv or None


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_BARE = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)$")


def _expand(entry: Entry, argv: list[str], env: dict[str, str]) -> list[str]:
    """systemd's own expansion of the service's Environment= in ExecStart=: ``${VAR}`` inside a word
    is replaced by the value, a word that is just ``$VAR`` by the value split at whitespace. A variable the
    service does not set comes from systemd's manager environment, which cronplan cannot see: reported."""
    out: list[str] = []
    unknown: set[str] = set()
    for word in argv:
        bare = _BARE.match(word)
        if bare and bare.group(1) in env:
            out.extend(env[bare.group(1)].split())
            continue
        for name in _VAR.findall(word):
            if name not in env:
                unknown.add(name)
        word = _VAR.sub(lambda m: env.get(m.group(1), m.group(0)), word)
        if bare:
            unknown.add(bare.group(1))
        out.append(word)
    if unknown:
        names = ", ".join(sorted(unknown))
        entry.note(f"ExecStart= refers to {names}, which the service does not set: left as written")
    return out
