"""runner.run_job: commands (argv, env, cwd, timeout, output tail), http actions, the configured runner."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cronplan.clock import PinnedClock
from cronplan.model import CommandAction, HttpAction, IntervalSchedule, Job
from cronplan.runner import TAIL_BYTES, run_job

FIRE_AT = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)
CLOCK = PinnedClock(FIRE_AT)
PY = sys.executable


def make_job(action: CommandAction | HttpAction | None = None, **raw: Any) -> Job:
    doc = {"id": "j1", "schedule": {"kind": "interval", "seconds": 60}, **raw}
    return Job(
        id="j1",
        schedule=IntervalSchedule(seconds=60),
        spec=doc,
        digest="d",
        raw=doc,
        action=action,
    )


def cmd(*argv: str, **kw: Any) -> Job:
    return make_job(CommandAction(argv=tuple(argv), **kw))


def test_success_exit_code_and_output() -> None:
    res = run_job(
        cmd(PY, "-c", "print('hello'); import sys; print('oops', file=sys.stderr)"),
        runner_argv=None,
        fire_at=FIRE_AT,
        clock=CLOCK,
    )
    assert res.status == "succeeded"
    assert res.exit_code == 0
    assert "hello" in res.output_tail and "oops" in res.output_tail
    assert res.error is None
    assert res.finished_at >= res.started_at


def test_non_zero_exit_is_failure() -> None:
    res = run_job(
        cmd(PY, "-c", "import sys; print('bad'); sys.exit(3)"),
        runner_argv=None,
        fire_at=FIRE_AT,
        clock=CLOCK,
    )
    assert res.status == "failed"
    assert res.exit_code == 3
    assert "exited with status 3" in (res.error or "")
    assert "bad" in res.output_tail


def test_missing_program_and_missing_cwd(tmp_path: Path) -> None:
    res = run_job(cmd("/nonexistent/prog-xyz"), runner_argv=None, fire_at=FIRE_AT, clock=CLOCK)
    assert res.status == "failed" and res.exit_code is None
    assert "command not found" in (res.error or "")
    res = run_job(
        cmd("true", cwd=str(tmp_path / "nope")), runner_argv=None, fire_at=FIRE_AT, clock=CLOCK
    )
    assert res.status == "failed"
    assert "does not exist" in (res.error or "")


def test_env_merged_over_environ_and_fire_vars(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRONPLAN_TEST_INHERITED", "from-parent")
    job = cmd(
        PY,
        "-c",
        "import os, json; print(json.dumps({k: os.environ.get(k) for k in "
        "['CRONPLAN_TEST_INHERITED', 'MYVAR', 'CRONPLAN_JOB_ID', 'CRONPLAN_FIRE_AT']}))",
        env={"MYVAR": "a b $HOME `x`"},
    )
    res = run_job(job, runner_argv=None, fire_at=FIRE_AT, clock=CLOCK)
    assert res.status == "succeeded", res
    seen = json.loads(res.output_tail)
    assert seen == {
        "CRONPLAN_TEST_INHERITED": "from-parent",
        "MYVAR": "a b $HOME `x`",
        "CRONPLAN_JOB_ID": "j1",
        "CRONPLAN_FIRE_AT": "2026-11-27T09:00:00Z",
    }


def test_relative_cwd_resolved_against_base_dir(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    res = run_job(
        cmd(PY, "-c", "import os; print(os.getcwd())", cwd="sub"),
        runner_argv=None,
        fire_at=FIRE_AT,
        clock=CLOCK,
        base_dir=tmp_path,
    )
    assert res.status == "succeeded"
    assert Path(res.output_tail.strip()).resolve() == (tmp_path / "sub").resolve()


def test_no_shell_injection_through_any_field(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = f"; touch {marker} #"
    evil2 = f"$(touch {marker})"
    evil3 = f"`touch {marker}`"
    job = cmd(
        PY,
        "-c",
        "import sys, os; print(repr(sys.argv[1:])); print(os.getcwd())",
        evil,
        evil2,
        evil3,
        "|",
        "&&",
        f"touch {marker}",
        env={"X": evil2},
        cwd=str(tmp_path),
    )
    res = run_job(job, runner_argv=None, fire_at=FIRE_AT, clock=CLOCK)
    assert res.status == "succeeded"
    assert repr([evil, evil2, evil3, "|", "&&", f"touch {marker}"]) in res.output_tail
    # A program name that is shell syntax is looked up literally, never interpreted.
    res = run_job(cmd(f"true; touch {marker}"), runner_argv=None, fire_at=FIRE_AT, clock=CLOCK)
    assert res.status == "failed"
    time.sleep(0.1)
    assert not marker.exists()


@pytest.mark.slow
def test_timeout_kills_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    # The child spawns a grandchild that sleeps long, records its pid, then the child sleeps too.
    script = (
        "import subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
        "print('spawned', flush=True)\n"
        "time.sleep(60)\n"
    )
    t0 = time.monotonic()
    res = run_job(
        cmd(PY, "-c", script, timeout_seconds=1.5), runner_argv=None, fire_at=FIRE_AT, clock=CLOCK
    )
    elapsed = time.monotonic() - t0
    assert res.status == "failed"
    assert "timed out after 1.5 s" in (res.error or "")
    assert "spawned" in res.output_tail
    assert elapsed < 10
    gpid = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(gpid):
        time.sleep(0.05)
    assert not _alive(gpid), "the grandchild survived the timeout"


@pytest.mark.slow
def test_sigterm_ignoring_job_is_sigkilled(tmp_path: Path) -> None:
    script = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\ntime.sleep(60)\n"
    t0 = time.monotonic()
    res = run_job(
        cmd(PY, "-c", script, timeout_seconds=1), runner_argv=None, fire_at=FIRE_AT, clock=CLOCK
    )
    assert res.status == "failed"
    assert res.exit_code == -9
    assert time.monotonic() - t0 < 8


@pytest.mark.slow
def test_cancel_event_stops_the_job() -> None:
    ev = threading.Event()
    threading.Timer(0.5, ev.set).start()
    t0 = time.monotonic()
    res = run_job(cmd("sleep", "30"), runner_argv=None, fire_at=FIRE_AT, clock=CLOCK, cancel=ev)
    assert res.status == "failed"
    assert "cancelled" in (res.error or "")
    assert time.monotonic() - t0 < 5


def test_output_tail_is_bounded() -> None:
    # ~5 MB of output: the tail keeps only the end, and the beginning is reported as dropped.
    script = "import sys\nfor i in range(100000): sys.stdout.write(f'line {i:06d} ' + 'x' * 40 + '\\n')\nsys.stdout.write('THE END\\n')\n"
    res = run_job(cmd(PY, "-c", script), runner_argv=None, fire_at=FIRE_AT, clock=CLOCK)
    assert res.status == "succeeded"
    assert res.output_tail.endswith("THE END\n")
    assert "earlier bytes dropped" in res.output_tail
    assert len(res.output_tail.encode()) <= TAIL_BYTES + 100
    assert "line 000000" not in res.output_tail


@pytest.mark.slow
def test_leftover_background_child_does_not_hang_the_run(tmp_path: Path) -> None:
    # The main process exits at once but leaves a child holding the output pipe open.
    script = "import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\nprint('main done')\n"
    t0 = time.monotonic()
    res = run_job(cmd(PY, "-c", script), runner_argv=None, fire_at=FIRE_AT, clock=CLOCK)
    assert res.status == "succeeded"
    assert "main done" in res.output_tail
    assert time.monotonic() - t0 < 5


def test_runner_gets_job_json_on_stdin(tmp_path: Path) -> None:
    out = tmp_path / "got.json"
    runner = [PY, "-c", f"import sys; open({str(out)!r}, 'w').write(sys.stdin.read())"]
    job = make_job(None, prompt="say hi; rm -rf / $(whoami)", skills=["a"])
    res = run_job(job, runner_argv=runner, fire_at=FIRE_AT, clock=CLOCK)
    assert res.status == "succeeded", res
    got = json.loads(out.read_text())
    assert got["id"] == "j1"
    assert got["prompt"] == "say hi; rm -rf / $(whoami)"
    assert got["skills"] == ["a"]
    assert got["fire_at"] == "2026-11-27T09:00:00Z"


def test_runner_that_ignores_stdin_large_payload() -> None:
    job = make_job(None, prompt="x" * 2_000_000)
    res = run_job(job, runner_argv=["true"], fire_at=FIRE_AT, clock=CLOCK)
    assert res.status == "succeeded"


def test_no_runner_configured_fails_clearly() -> None:
    res = run_job(make_job(None, prompt="hi"), runner_argv=None, fire_at=FIRE_AT, clock=CLOCK)
    assert res.status == "failed"
    assert "no runner is configured" in (res.error or "")


# --------------------------------------------------------------------------- http


class _Handler(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]]

    def _handle(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.seen.append(  # type: ignore[attr-defined]
            {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
        )
        code = 500 if self.path.startswith("/fail") else 200
        if self.path.startswith("/slow"):
            time.sleep(3)
        payload = b"server says " + self.path.encode()
        self.send_response(code)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_POST = do_GET = do_PUT = _handle

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.seen = []  # type: ignore[attr-defined]
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}", srv.seen  # type: ignore[attr-defined]
    finally:
        srv.shutdown()
        srv.server_close()


def test_http_json_body_and_headers(http_server: tuple[str, list[dict[str, Any]]]) -> None:
    base, seen = http_server
    job = make_job(HttpAction(url=f"{base}/hook", headers={"X-Token": "t"}, body={"a": [1, 2]}))
    res = run_job(job, runner_argv=None, fire_at=FIRE_AT, clock=CLOCK)
    assert res.status == "succeeded" and res.exit_code == 200
    assert "server says /hook" in res.output_tail
    assert seen[0]["method"] == "POST"
    assert json.loads(seen[0]["body"]) == {"a": [1, 2]}
    assert seen[0]["headers"]["X-Token"] == "t"
    assert seen[0]["headers"]["Content-Type"] == "application/json"


def test_http_string_body_sent_as_is(http_server: tuple[str, list[dict[str, Any]]]) -> None:
    base, seen = http_server
    job = make_job(HttpAction(url=f"{base}/s", method="put", body="raw {not json}"))
    res = run_job(job, runner_argv=None, fire_at=FIRE_AT, clock=CLOCK)
    assert res.status == "succeeded"
    assert seen[0]["method"] == "PUT"
    assert seen[0]["body"] == b"raw {not json}"


def test_http_error_status_is_failure(http_server: tuple[str, list[dict[str, Any]]]) -> None:
    base, _ = http_server
    res = run_job(
        make_job(HttpAction(url=f"{base}/fail")), runner_argv=None, fire_at=FIRE_AT, clock=CLOCK
    )
    assert res.status == "failed" and res.exit_code == 500
    assert "HTTP 500" in (res.error or "")


def test_http_timeout_and_connection_error(http_server: tuple[str, list[dict[str, Any]]]) -> None:
    base, _ = http_server
    res = run_job(
        make_job(HttpAction(url=f"{base}/slow", timeout_seconds=0.5)),
        runner_argv=None,
        fire_at=FIRE_AT,
        clock=CLOCK,
    )
    assert res.status == "failed" and "timed out" in (res.error or "")
    res = run_job(
        make_job(HttpAction(url="http://user:secret@127.0.0.1:1/x")),
        runner_argv=None,
        fire_at=FIRE_AT,
        clock=CLOCK,
    )
    assert res.status == "failed"
    assert "secret" not in (res.error or "")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its new parent) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_pinned_clock_stamps_the_start_and_the_end_is_the_measured_duration_later() -> None:
    # docs/planning.md, "The clock": --now pins the start; the duration stays real.
    res = run_job(
        cmd(PY, "-c", "import time; time.sleep(0.3)"),
        runner_argv=None,
        fire_at=FIRE_AT,
        clock=CLOCK,
    )
    assert res.status == "succeeded"
    assert res.started_at == FIRE_AT
    assert 0.3 <= res.duration_s < 10
    assert FIRE_AT < res.finished_at < FIRE_AT + timedelta(seconds=10)
