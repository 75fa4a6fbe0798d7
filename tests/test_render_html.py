"""The status page renderer and the 24 h timeline, pure: fixed instants, years in the past and the future."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from cronplan.documents.config import parse_config
from cronplan.documents.jobsfile import load_jobs
from cronplan.errors import ValidationError
from cronplan.model import Run, RunSummary
from cronplan.render.html import PageInput, render_status_page
from cronplan.render.timeline import MAX_FIRES_PER_JOB, relative, upcoming
from cronplan.status import JobStatus, StatusSnapshot
from cronplan.timefmt import parse_ts


def jobs_from(tmp_path: Path, docs: list[dict[str, Any]]) -> dict[str, Any]:
    path = tmp_path / "jobs.json"
    path.write_text(json.dumps({"jobs": docs}))
    return load_jobs(path, default_tz="UTC").by_id()


@pytest.mark.parametrize("now_text", ["2019-02-01T10:00:00Z", "2037-07-01T10:00:00Z"])
def test_relative_times(now_text: str) -> None:
    now = parse_ts(now_text)
    assert relative(now, now) == "now"
    assert relative(now + timedelta(seconds=40), now) == "in 40 s"
    assert relative(now + timedelta(minutes=12), now) == "in 12 min"
    assert relative(now + timedelta(hours=3), now) == "in 3 h"
    assert relative(now + timedelta(days=4), now) == "in 4 d"
    assert relative(now - timedelta(minutes=5), now) == "5 min ago"


@pytest.mark.parametrize("now_text", ["2019-02-01T10:00:00Z", "2037-07-01T10:00:00Z"])
def test_upcoming_window(tmp_path: Path, now_text: str) -> None:
    now = parse_ts(now_text)
    jobs = jobs_from(
        tmp_path,
        [
            {"id": "hourly", "schedule": {"kind": "interval", "seconds": 3600}, "command": ["x"]},
            {"id": "fast", "schedule": {"kind": "interval", "seconds": 30}, "command": ["x"]},
            {"id": "off", "enabled": False, "schedule": {"kind": "interval", "seconds": 60}},
            {"id": "far", "schedule": {"kind": "cron", "expr": "0 0 1 1 *"}, "command": ["x"]},
        ],
    )
    rows = {r.job_id: r for r in upcoming(jobs.values(), now)}
    assert set(rows) == {"hourly", "fast"}
    assert rows["hourly"].total == 24 and rows["hourly"].fires[0] == now
    assert rows["fast"].total == 2880 and len(rows["fast"].fires) == MAX_FIRES_PER_JOB
    assert all(now <= t < now + timedelta(hours=24) for r in rows.values() for t in r.fires)


def test_page_escapes_untrusted_fields_and_shows_the_state(tmp_path: Path) -> None:
    now = parse_ts("2037-07-01T10:00:00Z")
    evil = '<img src=x onerror="alert(1)">'
    jobs = jobs_from(
        tmp_path,
        [
            {
                "id": "etl",
                "name": evil,
                "schedule": {"kind": "cron", "expr": "0 12 * * *", "tz": "Asia/Tokyo"},
                "command": ["x"],
            }
        ],
    )
    failed = Run(
        "etl",
        now - timedelta(hours=2),
        "failed",
        claimed_at=now - timedelta(hours=2),
        started_at=now - timedelta(hours=2),
        finished_at=now - timedelta(hours=2) + timedelta(seconds=3),
        exit_code=9,
        output_tail="</pre><script>steal()</script>",
        error="exited with status 9",
    )
    snap = StatusSnapshot(
        (
            JobStatus(
                "etl",
                jobs["etl"],
                None,
                now + timedelta(hours=17),
                RunSummary(failed, completed=4, failed=4),
                "changed",
            ),
        ),
        ("arms unknown: <b>provider down</b>",),
    )
    html = render_status_page(PageInput(snap, [failed], now, provider="local"))
    assert evil not in html and "<script>" not in html and "<b>provider" not in html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html
    assert "&lt;/pre&gt;&lt;script&gt;steal()&lt;/script&gt;" in html
    assert "2037-07-02T03:00:00Z" in html and "12:00 Asia/Tokyo" in html and "in 17 h" in html
    assert "(exit 9)" in html and "2 h ago" in html and "3.0 s" in html
    assert "jobs.json changed since apply" in html
    assert re.search(r'<span class="fails">4</span>', html)
    assert "<svg" in html and html.count('<g class="row">') == 1
    assert '<meta http-equiv="refresh" content="30">' in html


def test_a_due_arm_and_an_unarmed_job_are_called_out(tmp_path: Path) -> None:
    now = parse_ts("2019-02-01T10:00:00Z")
    jobs = jobs_from(
        tmp_path,
        [
            {"id": j, "schedule": {"kind": "interval", "seconds": 60}, "command": ["x"]}
            for j in "ab"
        ],
    )
    snap = StatusSnapshot(
        (
            JobStatus("a", jobs["a"], None, now - timedelta(minutes=3), None, "new"),
            JobStatus("b", jobs["b"], None, None, None, None),
        )
    )
    html = render_status_page(PageInput(snap, [], now, provider="local"))
    assert '3 min ago</span> <span class="warn">due, not fired yet</span>' in html
    assert "not armed" in html and "not applied yet" in html and "never run" in html


def test_page_without_jobs() -> None:
    now = parse_ts("2019-02-01T10:00:00Z")
    html = render_status_page(PageInput(StatusSnapshot(()), [], now, provider="nas"))
    assert "No jobs." in html and "No failures recorded." in html
    assert "No fires in the next 24 hours." in html


def test_config_notify_and_serve_sections() -> None:
    cfg = parse_config("notify: {}\n", file="c.yaml", base_dir=Path("."))
    assert cfg.notify_url_env == "CRONPLAN_NOTIFY_URL" and cfg.status_token_env is None
    cfg = parse_config(
        "notify:\n  url_env: CHAT_HOOK\nserve:\n  status_token_env: STATUS_TOKEN\n",
        file="c.yaml",
        base_dir=Path("."),
    )
    assert cfg.notify_url_env == "CHAT_HOOK" and cfg.status_token_env == "STATUS_TOKEN"
    assert parse_config("jobs: j.json\n", file="c.yaml", base_dir=Path(".")).notify_url_env is None
    with pytest.raises(ValidationError) as exc:
        parse_config(
            "notify:\n  url: https://hooks.example/T0/B0\n", file="c.yaml", base_dir=Path(".")
        )
    assert "c.yaml:2:3: /notify/url" in str(exc.value) and "url_env" in str(exc.value)
    with pytest.raises(ValidationError, match="/serve/status_token_env"):
        parse_config(
            "serve:\n  status_token_env: 'not a name'\n", file="c.yaml", base_dir=Path(".")
        )
