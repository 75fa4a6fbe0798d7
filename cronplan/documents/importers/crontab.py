"""crontab(5) -> jobs: user crontabs and system crontabs (a user field before the command).

A crontab command is a shell line, so a job's argv is ``[SHELL, "-c", line]`` with the SHELL set above
it in the file (``/bin/sh`` by default, as cron does). Variable lines apply to the entries below them:
``CRON_TZ`` (or ``TZ``) becomes the schedule's ``tz``, ``MAILTO``/``MAILFROM`` are reported (cronplan keeps
output in its ledger), every other variable goes to the job's ``env``. An unescaped ``%`` ends the command:
the text after it, with each further ``%`` turned into a newline, is the command's stdin, carried over as
``printf '%s' TEXT | ( COMMAND )`` (and reported); ``\\%`` is a literal ``%``. ``@reboot`` is reported and
skipped. Day-of-month and day-of-week both restricted match either (cron's OR rule), which cronplan's
schedule engine applies the same way.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import Any

from cronplan.documents.importers.entries import Entry, IdMaker

__all__ = ["is_system_crontab", "read", "split_percent"]

_ENV = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")
_FIELD = r"(\S+)\s+"
_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
_NOT_ENV = {"MAILTO", "MAILFROM", "CRON_TZ", "CONTENT_TYPE", "CONTENT_TRANSFER_ENCODING"}


def is_system_crontab(path: Path) -> bool:
    """``/etc/crontab`` and anything under a ``cron.d/`` carry a user field before the command."""
    parts = path.as_posix().split("/")
    return parts[-2:] == ["etc", "crontab"] or "cron.d" in parts[:-1]


def read(path: Path, text: str, ids: IdMaker, *, system: bool = False) -> list[Entry]:
    system = system or is_system_crontab(path)
    file = str(path)
    env: dict[str, str] = {}
    tz: tuple[str, str] | None = None  # (zone, the variable that set it)
    entries: list[Entry] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.lstrip(" \t")
        if not line or line.startswith("#"):
            continue
        var = _ENV.match(line)
        if var:
            name, value = var.group(1), _unquote(var.group(2))
            if name == "CRON_TZ" or (name == "TZ" and (tz is None or tz[1] == "TZ")):
                tz = (value, name) if value else None
            if name not in _NOT_ENV:
                env[name] = value
            elif name != "CRON_TZ" and value:  # the mail settings
                skipped = Entry(file, number, None)
                skipped.note(
                    f"{name} is not carried over: cronplan keeps each run's output in its ledger "
                    "(cronplan logs JOB_ID); notify: in cronplan.yaml reports failures"
                )
                entries.append(skipped)
            continue
        entry = _entry(file, number, line, system, env, tz, ids)
        entries.append(entry)
    first = next((e for e in entries if e.job is not None and "tz" not in e.job["schedule"]), None)
    if first is not None:
        first.note(
            "no CRON_TZ: cron ran these entries in the machine's local zone; they are read in "
            "cronplan's configured timezone (UTC by default): add CRON_TZ=Zone/Name if that differs"
        )
    return entries


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _entry(
    file: str,
    number: int,
    line: str,
    system: bool,
    env: dict[str, str],
    tz_var: tuple[str, str] | None,
    ids: IdMaker,
) -> Entry:
    user_part = _FIELD if system else ""
    if line.startswith("@"):
        match = re.match(r"^(@\S+)\s+" + user_part + r"(.*)$", line)
        nfields = 1
    else:
        match = re.match(r"^" + _FIELD * 5 + user_part + r"(.*)$", line)
        nfields = 5
    if match is None or not match.group(match.lastindex or 1).strip():
        what = "a user and a command" if system else "a command"
        shape = "@macro" if line.startswith("@") else "five time fields"
        entry = Entry(file, number, None)
        entry.note(f"not imported: expected {shape} followed by {what}")
        return entry
    groups = match.groups()
    expr = " ".join(groups[:nfields])
    user = groups[nfields] if system else None
    line_cmd = groups[-1]
    entry = Entry(file, number, None)
    if expr.lower() == "@reboot":
        entry.note("not imported: @reboot runs at boot, which has no equivalent in cronplan")
        return entry
    if nfields == 1 and expr.lower() not in _MACROS:
        entry.note(
            f"not imported: unknown macro {expr!r} "
            f"(cron knows @reboot and {' '.join(sorted(_MACROS))})"
        )
        return entry
    command, stdin = split_percent(line_cmd)
    shell = env.get("SHELL", "/bin/sh")
    script = command
    if stdin is not None:
        script = f"printf '%s' {shlex.quote(stdin)} | ( {command}\n)"
        entry.note(
            "the text after '%' is the command's stdin: carried over as printf '%s' TEXT | ( COMMAND )"
        )
    tz = tz_var[0] if tz_var else None
    schedule: dict[str, Any] = {"kind": "cron", "expr": expr.lower() if nfields == 1 else expr}
    if tz:
        schedule["tz"] = tz
        if tz_var and tz_var[1] == "TZ":
            entry.note(
                f"TZ={tz} is read as the schedule's zone; cron itself scheduled in the machine's zone "
                "unless CRON_TZ was set"
            )
    job: dict[str, Any] = {
        "id": ids.make(_readable(command), expr, user or "", line_cmd, tz or ""),
        "name": _shorten(command),
        "schedule": schedule,
        "command": [shell, "-c", script],
    }
    if env:
        job["env"] = dict(env)
    if user is not None:
        job["x-crontab-user"] = user
        entry.note(f"runs as {user!r} in cron; cronplan runs it as the user cronplan runs as")
    entry.job = job
    return entry


def split_percent(text: str) -> tuple[str, str | None]:
    """Split a crontab command as cron does: ``(command, stdin)``; stdin is None without a ``%``.

    In the command, ``\\%`` becomes ``%``; the first unescaped ``%`` ends it. In the stdin text, ``\\%``
    becomes ``%`` and every other unescaped ``%`` becomes a newline. Other backslashes stay as written.
    """
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] == "%":
            out.append("%")
            i += 2
            continue
        if ch == "%":
            rest = text[i + 1 :]
            return "".join(out), _stdin(rest)
        out.append(ch)
        i += 1
    return "".join(out), None


def _stdin(text: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] == "%":
            out.append("%")
            i += 2
            continue
        out.append("\n" if ch == "%" else ch)
        i += 1
    return "".join(out)


def _readable(command: str) -> str:
    """The program a command line runs, for the readable part of its id (``backup`` for
    ``cd /srv && /usr/local/bin/backup.sh --full``: the first word that is not ``cd``/an assignment)."""
    try:
        words = shlex.split(command, comments=False)
    except ValueError:
        words = command.split()
    skip_next = False
    for word in words:
        if skip_next:
            skip_next = False
            continue
        if word in ("cd", "nice", "ionice", "env", "exec", "sudo", "test", "[", "command"):
            skip_next = word == "cd"
            continue
        if word in ("&&", ";", "||") or re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", word):
            continue
        if word.startswith("-"):
            continue
        base = os.path.basename(word.rstrip("/")) or word
        return os.path.splitext(base)[0] or base
    return "cron"


def _shorten(command: str, limit: int = 80) -> str:
    one = " ".join(command.split())
    return one if len(one) <= limit else one[: limit - 1] + "…"
