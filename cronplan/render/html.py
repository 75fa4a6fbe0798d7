"""The status page of ``cronplan serve`` (``GET /``): server-rendered HTML from a Jinja2 template.

Job fields are untrusted text (a name, an output tail): the template engine escapes everything
(autoescape on), and the page carries no script and no external asset, only inline CSS and an inline SVG
timeline. Pure: the page depends only on its inputs and ``now`` (docs/observability.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from cronplan.render.timeline import WINDOW, relative, upcoming
from cronplan.render.words import local_time
from cronplan.timefmt import format_ts

if TYPE_CHECKING:
    import jinja2

    from cronplan.model import Job, Run
    from cronplan.status import StatusSnapshot

REFRESH_SECONDS = 30
UNAPPLIED_TEXT = {
    "new": "not applied yet",
    "changed": "jobs.json changed since apply",
    "removed": "removed from jobs.json",
}
_LABEL_W, _CHART_W, _ROW_H, _AXIS_H = 200, 760, 22, 24


@dataclass(frozen=True)
class PageInput:
    snapshot: StatusSnapshot
    failures: Sequence[Run]  # recent failed (or abandoned) runs, newest first
    now: datetime
    provider: str
    title: str = "cronplan status"


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("cronplan.render", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_status_page(page: PageInput) -> str:
    now = page.now
    rows = []
    names: dict[str, str | None] = {}
    for js in page.snapshot.jobs:
        names[js.job_id] = js.name
        last = js.summary.last if js.summary is not None else None
        rows.append(
            {
                "id": js.job_id,
                "name": js.name,
                "next": _when(js.armed_fire_at, js.tz, now),
                "last": None
                if last is None
                else {
                    "when": _when(last.fire_at, js.tz, now),
                    "status": last.status,
                    "exit_code": last.exit_code,
                    "duration": None if last.duration_s is None else f"{last.duration_s:.1f} s",
                },
                "runs": js.completed,
                "failures": js.failures,
                "unapplied": UNAPPLIED_TEXT.get(js.unapplied or ""),
            }
        )
    jobs: list[Job] = [js.job for js in page.snapshot.jobs if js.job is not None]
    failures = [
        {
            "id": run.job_id,
            "name": names.get(run.job_id),
            "when": _when(run.at, None, now),  # a manual run: when it started
            "status": run.status,
            "exit_code": run.exit_code,
            "error": run.error,
            "output": run.output_tail,
        }
        for run in page.failures
    ]
    return (
        _env()
        .get_template("status.html.j2")
        .render(
            title=page.title,
            provider=page.provider,
            now=format_ts(now),
            refresh=REFRESH_SECONDS,
            notes=page.snapshot.notes,
            jobs=rows,
            failures=failures,
            timeline=_timeline(jobs, now),
        )
    )


def _when(t: datetime | None, tz: str | None, now: datetime) -> dict[str, Any] | None:
    if t is None:
        return None
    return {
        "utc": format_ts(t),
        "local": local_time(t, tz) or "",
        "relative": relative(t, now),
        "past": t < now,
    }


def _timeline(jobs: Sequence[Job], now: datetime) -> dict[str, Any]:
    """Geometry of the SVG timeline: one row per job, a tick per fire, hour marks every 3 h (UTC)."""
    span = WINDOW.total_seconds()
    rows = []
    for i, row in enumerate(upcoming(jobs, now)):
        y = _AXIS_H + i * _ROW_H
        ticks = [
            {
                "x": round(_LABEL_W + _CHART_W * (t - now).total_seconds() / span, 1),
                "title": format_ts(t),
            }
            for t in row.fires
        ]
        label = row.job_id if not row.name else f"{row.name} ({row.job_id})"
        more = f"{row.total} fires" if row.total > len(row.fires) else ""
        rows.append(
            {
                "y": y,
                "label": label,
                "short": row.name or row.job_id,
                "ticks": ticks,
                "more": more,
                "count": row.total,
            }
        )
    hours = []
    start = now.replace(minute=0, second=0, microsecond=0)
    for h in range(0, 25):
        t = start.replace() + (WINDOW / 24) * h
        offset = (t - now).total_seconds()
        if 0 <= offset <= span and t.hour % 3 == 0:
            hours.append(
                {"x": round(_LABEL_W + _CHART_W * offset / span, 1), "text": t.strftime("%H:%M")}
            )
    return {
        "rows": rows,
        "hours": hours,
        "width": _LABEL_W + _CHART_W + 10,
        "height": _AXIS_H + max(1, len(rows)) * _ROW_H + 6,
        "label_w": _LABEL_W,
        "chart_w": _CHART_W,
        "row_h": _ROW_H,
        "axis_h": _AXIS_H,
    }


__all__ = ["PageInput", "render_status_page"]
