"""plan / apply / show / status scenarios against the real local provider and SQLite ledger."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

NOW = "2026-11-26T12:00:00Z"
LATER = "2026-11-26T12:07:00Z"


def job(job_id: str, expr: str = "0 9 * * *", **fields):
    return {"id": job_id, "schedule": {"kind": "cron", "expr": expr}, "command": ["true"], **fields}


def local_arms(project) -> dict[str, str]:
    """The local provider's live arms, read through the provider itself."""
    from cronplan.local.provider import LocalProvider
    from cronplan.provider import ProviderSettings
    from cronplan.timefmt import format_ts

    if not (project.root / ".cronplan" / "local.db").exists():
        return {}
    provider = LocalProvider(ProviderSettings(name="local", base_dir=project.root))
    try:
        return {a.job_id: format_ts(a.fire_at) for a in provider.list_arms()}
    finally:
        provider.close()


def test_full_cycle_arm_rearm_cancel_no_changes(project):
    project.write_jobs([job("a"), job("b", "30 6 * * *")])
    r = project.cli("plan", "--now", NOW)
    assert r.exit_code == 0, r.stderr
    assert "+ a" in r.stdout and "+ b" in r.stdout
    assert r.stdout.rstrip().endswith(
        "Plan: 2 to arm, 0 to re-arm, 0 to update, 0 to cancel, 0 unchanged."
    )

    r = project.cli("apply", "--auto-approve", "--now", NOW)
    assert r.exit_code == 0, r.stderr
    assert "Apply complete: 2 armed, 0 re-armed, 0 cancelled." in r.stdout
    assert set(local_arms(project)) == {"a", "b"}

    r = project.cli("plan", "--now", NOW, "--detailed-exitcode")
    assert (r.exit_code, r.stdout.strip().splitlines()[-1]) == (
        0,
        "No changes. Arms match jobs.json.",
    )

    project.write_jobs([job("a", "15 9 * * *")])  # a changes, b removed
    r = project.cli("plan", "--now", NOW, "--detailed-exitcode")
    assert r.exit_code == 2
    assert "~ a" in r.stdout and "schedule.expr" in r.stdout
    assert "- b" in r.stdout and "orphan" in r.stdout

    r = project.cli("apply", "--auto-approve", "--now", NOW)
    assert r.exit_code == 0, r.stderr
    assert local_arms(project) == {"a": "2026-11-27T09:15:00Z"}

    r = project.cli("plan", "--now", NOW, "--detailed-exitcode")
    assert r.exit_code == 0, r.stdout


def test_plan_json_is_byte_identical_and_matches_schema(project):
    import jsonschema

    project.write_jobs([job("a"), job("b", "*/5 * * * *")])
    one = project.cli("plan", "--now", NOW, "--format", "json")
    two = project.cli("plan", "--now", NOW, "--format", "json")
    assert one.exit_code == 0 and one.stdout == two.stdout
    doc = json.loads(one.stdout)
    schema = json.loads((Path(__file__).parents[1] / "schemas" / "plan.schema.json").read_text())
    jsonschema.validate(doc, schema)
    assert doc["provider"] == "local"
    assert doc["summary"] == {"arm": 2, "rearm": 0, "update": 0, "cancel": 0, "skip": 0}
    assert all(a["after"]["callback_url"] is None for a in doc["actions"])


def test_saved_plan_is_applied_exactly(project, tmp_path):
    project.write_jobs([job("a"), job("b")])
    out = tmp_path / "plan.json"
    r = project.cli("plan", "--now", NOW, "--out", str(out))
    assert r.exit_code == 0 and out.exists()
    shown = project.cli("show", str(out))
    assert "Plan: 2 to arm" in shown.stdout
    r = project.cli("apply", str(out), "--now", NOW)
    assert r.exit_code == 0, r.stderr
    assert set(local_arms(project)) == {"a", "b"}


def test_saved_plan_is_refused_when_stale(project, tmp_path):
    project.write_jobs([job("a"), job("b")])
    out = tmp_path / "plan.json"
    assert project.cli("plan", "--now", NOW, "--out", str(out)).exit_code == 0
    # Someone else applies in between: the live arms of the planned jobs changed.
    assert project.cli("apply", "--auto-approve", "--now", NOW).exit_code == 0
    r = project.cli("apply", str(out), "--now", NOW)
    assert r.exit_code == 1
    assert "Saved plan is stale" in r.stderr
    assert "Traceback" not in r.stderr


def test_saved_plan_not_stale_for_unrelated_job_changes(project, tmp_path):
    project.write_jobs([job("a"), job("b")])
    assert project.cli("apply", "--auto-approve", "--now", NOW).exit_code == 0
    project.write_jobs([job("a", "0 10 * * *"), job("b")])
    out = tmp_path / "plan.json"
    assert project.cli("plan", "--now", NOW, "--out", str(out)).exit_code == 0
    # b fires (a ledger write for an unrelated job) — the plan only depended on a.
    r = project.cli(
        "fire",
        "--job-id",
        "b",
        "--fire-at",
        "2026-11-27T09:00:00Z",
        "--no-replan",
        "--now",
        "2026-11-27T09:00:01Z",
    )
    assert r.exit_code == 0, r.stderr
    r = project.cli("apply", str(out), "--now", NOW)
    assert r.exit_code == 0, r.stderr


def test_saved_plan_refused_when_planned_time_passed(project, tmp_path):
    project.write_jobs([job("a", "*/5 * * * *")])
    out = tmp_path / "plan.json"
    # Planned at 12:01 for 12:05; applied at 12:30, when 12:05 has passed.
    assert project.cli("plan", "--now", "2026-11-26T12:01:00Z", "--out", str(out)).exit_code == 0
    r = project.cli("apply", str(out), "--now", "2026-11-26T12:30:00Z")
    assert r.exit_code == 1 and "Saved plan is stale" in r.stderr


def test_expect_intent_accepted_after_time_moved_refused_after_job_changed(project):
    project.write_jobs([job("a", "*/5 * * * *"), job("b")])
    doc = json.loads(project.cli("plan", "--now", NOW, "--format", "json").stdout)
    digest = doc["intent_digest"]
    assert len(digest) >= 16
    # Time moved on: fire times differ, the intent does not.
    r = project.cli("apply", "--auto-approve", "--expect-intent", digest, "--now", LATER)
    assert r.exit_code == 0, r.stderr

    project.write_jobs([job("a", "*/5 * * * *"), job("b", "0 10 * * *")])
    doc = json.loads(project.cli("plan", "--now", NOW, "--format", "json").stdout)
    project.write_jobs([job("a", "*/5 * * * *"), job("b", "0 11 * * *")])
    r = project.cli(
        "apply", "--auto-approve", "--expect-intent", doc["intent_digest"], "--now", NOW
    )
    assert r.exit_code == 1
    assert "Plan has changed" in r.stderr


def test_apply_off_terminal_requires_auto_approve(project):
    project.write_jobs([job("a")])
    r = project.run("apply", "--now", NOW)
    assert r.exit_code == 1
    assert "--auto-approve" in r.stderr
    assert local_arms(project) == {}


def test_exit_codes(project):
    project.write_jobs([job("a")])
    assert project.run("plan", "--now", NOW).exit_code == 0
    assert project.run("plan", "--now", NOW, "--detailed-exitcode").exit_code == 2
    assert project.run("plan", "--now", "yesterday").exit_code == 64
    assert project.run("plan", "--bogus").exit_code == 64
    (project.root / "jobs.json").write_text('{"jobs": [{"id": "a"}]}')
    r = project.run("plan", "--now", NOW)
    assert r.exit_code == 1 and "Traceback" not in r.stderr
    assert "jobs.json:1:" in r.stderr


def test_empty_jobs_guard(project):
    project.write_jobs([job("a")])
    assert project.cli("apply", "--auto-approve", "--now", NOW).exit_code == 0
    project.write_jobs([])
    r = project.cli("plan", "--now", NOW)
    assert r.exit_code == 1 and "--allow-empty" in r.stderr
    r = project.cli("apply", "--auto-approve", "--allow-empty", "--now", NOW)
    assert r.exit_code == 0 and local_arms(project) == {}


def test_target_and_exclude(project):
    project.write_jobs([job("a"), job("b"), job("c")])
    r = project.cli("apply", "--auto-approve", "--now", NOW, "--format", "text")
    assert r.exit_code == 0
    project.write_jobs([job("a", "0 1 * * *"), job("b", "0 2 * * *"), job("c", "0 3 * * *")])
    r = project.cli("plan", "--now", NOW, "--target", "b", "--format", "json")
    assert [a["job_id"] for a in json.loads(r.stdout)["actions"]] == ["b"]
    r = project.cli("plan", "--now", NOW, "--exclude", "b", "--format", "json")
    assert [a["job_id"] for a in json.loads(r.stdout)["actions"]] == ["a", "c"]
    r = project.cli("plan", "--now", NOW, "--target", "nope")
    assert r.exit_code == 1 and "nope" in r.stderr


def test_status_json(project):
    project.write_jobs([job("a")])
    assert project.cli("apply", "--auto-approve", "--now", NOW).exit_code == 0
    r = project.cli("status", "--format", "json")
    doc = json.loads(r.stdout)
    assert doc["format_version"] == "1"
    assert doc["jobs"] == [
        {
            "job_id": "a",
            "armed_fire_at": "2026-11-27T09:00:00Z",
            "last_run": None,
            "runs_completed": 0,
            "failures": 0,
            "unapplied": "none",
        }
    ]


def _spawn_apply(project, *extra):
    env = dict(os.environ)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cronplan",
            "--config",
            str(project.config),
            "apply",
            "--auto-approve",
            "--now",
            NOW,
            *extra,
        ],
        cwd=project.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.mark.slow
def test_two_concurrent_applies_one_waits_or_fails_cleanly(project):
    project.write_jobs([job(f"j{i:04d}", f"{i % 60} {i % 24} * * *") for i in range(1500)])
    procs = [_spawn_apply(project), _spawn_apply(project)]
    outs = [p.communicate(timeout=120) for p in procs]
    codes = [p.returncode for p in procs]
    assert sorted(codes) in ([0, 0], [0, 1]), outs
    for code, (_out, err) in zip(codes, outs, strict=True):
        if code == 1:
            assert "lock" in err.lower() and "Traceback" not in err
    # Whoever won applied everything once; a second apply (if it got the lock later) found no changes.
    arms = local_arms(project)
    assert len(arms) == 1500
    assert project.cli("plan", "--now", NOW, "--detailed-exitcode").exit_code == 0


_SLOW_PLUGIN = '''
import os
import time

from cronplan.local.provider import LocalProvider


class SlowLocal(LocalProvider):
    """The real local provider, each arm a little slow, every arm call logged (one line per call)."""

    def __init__(self, settings):
        super().__init__(settings)
        self.name = "slow"

    def arm(self, arm):
        time.sleep(float(os.environ["CRONPLAN_TEST_ARM_DELAY"]))
        super().arm(arm)
        with open(os.environ["CRONPLAN_TEST_ARM_LOG"], "a") as log:
            log.write(arm.job_id + "\\n")
'''


def _plugin_site(tmp_path: Path, module: str, source: str, entry: str) -> Path:
    """A directory that, on PYTHONPATH, installs a test provider plugin through the entry-point group."""
    site = tmp_path / f"{module}-site"
    dist = site / f"{module}-0.0.1.dist-info"
    dist.mkdir(parents=True)
    (site / f"{module}.py").write_text(source)
    name = module.replace("_", "-")
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.0.1\n")
    (dist / "entry_points.txt").write_text(f"[cronplan.providers]\n{entry}\n")
    return site


def test_apply_killed_midway_then_apply_again_converges(project, tmp_path):
    n = 500
    site = _plugin_site(
        tmp_path, "cronplan_testslow", _SLOW_PLUGIN, "slow = cronplan_testslow:SlowLocal"
    )
    arm_log = tmp_path / "arm-calls.log"
    env = {
        **os.environ,
        "PYTHONPATH": str(site),
        "CRONPLAN_DISABLE_PLUGINS": "",
        "CRONPLAN_TEST_ARM_DELAY": "0.01",
        "CRONPLAN_TEST_ARM_LOG": str(arm_log),
    }
    project.write_config("jobs: jobs.json\nprovider: slow\n")
    project.write_jobs([job(f"j{i:04d}", f"{i % 60} {i % 24} * * *") for i in range(n)])
    out, err = tmp_path / "apply.out", tmp_path / "apply.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        # Output goes to files: nothing can block on a full pipe while the test watches the arms.
        proc = subprocess.Popen(
            [sys.executable, "-m", "cronplan", "--config", str(project.config), "apply",
             "--auto-approve", "--now", NOW, "--parallelism", "2"],
            cwd=project.root, stdout=stdout, stderr=stderr, env=env,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while (
                len(local_arms(project)) < 40
            ):  # observably midway: some arms exist at the provider
                assert proc.poll() is None, "the apply finished before it could be killed midway"
                assert time.monotonic() < deadline, "the apply armed nothing within 30 s"
                time.sleep(0.01)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert "Apply complete" not in out.read_text()
    armed_before = set(local_arms(project))
    assert 40 <= len(armed_before) < n  # killed midway, for real
    first_calls = arm_log.read_text().split()
    assert sorted(first_calls) == sorted(set(first_calls))  # the dead apply armed each job once

    def apply_again():
        return project.run("apply", "--auto-approve", "--now", NOW, "--parallelism", "4", env=env)

    # The dead apply's lock lease blocks a new apply until it expires or is force-unlocked.
    r = apply_again()
    assert r.exit_code == 1 and "force-unlock" in r.stderr, r.stderr
    lock_id = r.stderr.split("force-unlock ")[1].split()[0].strip("`'\".,")
    assert project.run("force-unlock", lock_id, env=env).exit_code == 0
    arm_log.write_text("")
    r = apply_again()
    assert r.exit_code == 0, r.stderr
    second_calls = arm_log.read_text().split()
    # Converged with no duplicate arm: exactly the jobs the dead apply had not armed were armed, once each.
    assert sorted(second_calls) == sorted({f"j{i:04d}" for i in range(n)} - armed_before)
    assert len(local_arms(project)) == n
    r = project.run("plan", "--now", NOW, "--detailed-exitcode", env=env)
    assert r.exit_code == 0, r.stdout + r.stderr


_FAULTY_PLUGIN = '''
import os

from cronplan.errors import ProviderError
from cronplan.local.provider import LocalProvider


class FaultyLocal(LocalProvider):
    """The real local provider, except that arming the jobs in $CRONPLAN_TEST_FAIL_JOBS fails."""

    def __init__(self, settings):
        super().__init__(settings)
        self.name = "faulty"

    def arm(self, arm):
        if arm.job_id in os.environ.get("CRONPLAN_TEST_FAIL_JOBS", "").split(","):
            raise ProviderError(f"injected failure arming {arm.job_id}")
        super().arm(arm)
'''


def test_cli_partial_failure_exits_1_and_second_apply_converges(project, tmp_path):
    site = tmp_path / "plugin-site"
    dist = site / "cronplan_testfaulty-0.0.1.dist-info"
    dist.mkdir(parents=True)
    (site / "cronplan_testfaulty.py").write_text(_FAULTY_PLUGIN)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: cronplan-testfaulty\nVersion: 0.0.1\n"
    )
    (dist / "entry_points.txt").write_text(
        "[cronplan.providers]\nfaulty = cronplan_testfaulty:FaultyLocal\n"
    )
    env = {
        "PYTHONPATH": str(site),
        "CRONPLAN_DISABLE_PLUGINS": "",
        "CRONPLAN_TEST_FAIL_JOBS": "b,d",
    }
    project.write_config("jobs: jobs.json\nprovider: faulty\n")
    project.write_jobs([job(x) for x in "abcde"])

    r = project.run("apply", "--auto-approve", "--now", NOW, env=env)
    assert r.exit_code == 1, r.stderr
    assert "re-arm" not in r.stderr and "arm b failed: injected failure arming b" in r.stderr
    assert "arm d failed" in r.stderr
    assert "Apply failed: 3 armed, 0 re-armed, 0 cancelled, 2 failed." in r.stdout
    assert "Traceback" not in r.stderr
    assert sorted(local_arms(project)) == ["a", "c", "e"]

    env["CRONPLAN_TEST_FAIL_JOBS"] = ""
    r = project.run("plan", "--now", NOW, env=env)
    assert "Plan: 2 to arm, 0 to re-arm, 0 to update, 0 to cancel, 3 unchanged." in r.stdout
    assert project.run("apply", "--auto-approve", "--now", NOW, env=env).exit_code == 0
    assert sorted(local_arms(project)) == list("abcde")
    assert project.run("plan", "--now", NOW, "--detailed-exitcode", env=env).exit_code == 0


@pytest.mark.slow
def test_apply_lock_lease_is_renewed_while_held(project, monkeypatch):
    from cronplan.cli import apply as apply_cmd
    from cronplan.clock import SYSTEM_CLOCK
    from cronplan.documents.config import load_config
    from cronplan.errors import LockError
    from cronplan.project import Project

    monkeypatch.setattr(apply_cmd, "LOCK_LEASE_SECONDS", 0.4)
    rt = Project(load_config(str(project.config)))
    other = Project(load_config(str(project.config)))
    try:
        with apply_cmd._apply_lock(rt, 0):
            time.sleep(1.2)  # three leases long: only renewal keeps it
            with pytest.raises(LockError):
                other.ledger.acquire_lock(
                    "someone else", lease_seconds=1, timeout=0, clock=SYSTEM_CLOCK
                )
        assert rt.ledger.current_lock(at=SYSTEM_CLOCK.now()) is None  # released on exit
    finally:
        rt.close()
        other.close()


@pytest.mark.parametrize(
    ("now", "later"),
    [
        ("2019-05-06T12:00:00Z", "2019-05-08T12:00:00Z"),
        ("2033-02-03T12:00:00Z", "2033-02-05T12:00:00Z"),
    ],
)
def test_a_removed_job_whose_cancel_lost_its_answer_is_forgotten_by_the_next_apply(
    project, tmp_path, now, later
):
    # Found by benchmarks/soak.py: a job removed from jobs.json, its cancel took effect at the provider
    # but the answer was lost, so that apply failed and kept the job as applied. The retry saw no arm and
    # planned nothing: the job stayed applied for good, and `fire --overdue` (which re-arms applied jobs
    # with no arm) brought it back, running a job the plan had shown as removed.
    from cronplan.local.provider import LocalProvider
    from cronplan.provider import ProviderSettings

    project.write_jobs([job("a"), job("b", "30 6 * * *")])
    assert project.cli("apply", "--auto-approve", "--now", now).exit_code == 0
    project.write_jobs([job("a")])
    provider = LocalProvider(ProviderSettings(name="local", base_dir=project.root))
    provider.cancel("b")  # the cancel that took effect, whose apply then failed
    provider.close()
    assert set(local_arms(project)) == {"a"}

    r = project.cli("plan", "--now", now, "--detailed-exitcode")
    assert r.exit_code == 2, r.stdout
    assert "- b" in r.stdout and "orphan" in r.stdout, r.stdout
    assert r.stdout.rstrip().endswith(
        "Plan: 0 to arm, 0 to re-arm, 0 to update, 1 to cancel, 1 unchanged."
    )
    doc = json.loads(project.cli("plan", "--now", now, "--format", "json").stdout)
    (cancel,) = [a for a in doc["actions"] if a["action"] == "cancel"]
    assert (cancel["job_id"], cancel["before"], cancel["reason_code"]) == ("b", None, "orphan")

    # A saved plan carries that cancel too, and applies exactly.
    out = tmp_path / "forget.plan"
    assert project.cli("plan", "--now", now, "--out", str(out)).exit_code == 0
    r = project.cli("apply", str(out), "--now", now)
    assert r.exit_code == 0, r.stderr
    assert "1 cancelled" in r.stdout

    assert project.cli("plan", "--now", now, "--detailed-exitcode").exit_code == 0
    r = project.cli("fire", "--overdue", "--now", later)
    assert r.exit_code == 0, r.stderr
    assert set(local_arms(project)) == {"a"}  # b is not brought back
    r = project.cli("fire", "--job-id", "b", "--fire-at", later[:10] + "T06:30:00Z", "--now", later)
    assert r.exit_code == 0 and "not applied" in r.stderr, r.stderr
