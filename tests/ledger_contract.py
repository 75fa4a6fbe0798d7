"""The ledger test suite every backend passes (SPEC §12).

Subclass ``LedgerContract`` in a ``tests/test_ledger*.py`` module; the ``ledger`` / ``ledger_factory`` /
``ledger_url`` fixtures (``tests/fixtures_ledger.py``) choose the backend. Nothing here knows which backend
it talks to: cross-process tests open the store through ``cronplan.ledger.open_ledger(url)`` in real
subprocesses.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from cronplan.clock import PinnedClock
from cronplan.errors import LedgerError, LockError
from cronplan.ledger import ClaimRequest, Ledger
from tests.fakes import ManualClock

UTC = timezone.utc
T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def _years_from_today(years: int) -> datetime:
    """An instant ``years`` from the real today, at a fixed microsecond (the ledger keeps microseconds)."""
    today = datetime.now(UTC)
    return datetime(today.year + years, 3, 14, 15, 9, 26, 535897, tzinfo=UTC)


SPEC = {
    "id": "a",
    "schedule": {"kind": "cron", "expr": "0 9 * * *", "tz": "UTC"},
    "command": ["true"],
}

_RACE_SCRIPT = textwrap.dedent(
    """
    import json, os, sys, time
    from datetime import datetime
    from cronplan.ledger import open_ledger

    url, base_dir, workdir, index, fire_at = sys.argv[1:6]
    ledger = open_ledger(url, base_dir=base_dir)
    ledger.serial()  # connected and schema in place before the start signal
    open(os.path.join(workdir, f"ready-{index}"), "w").close()
    go = os.path.join(workdir, "go")
    deadline = time.monotonic() + 60
    while not os.path.exists(go):
        if time.monotonic() > deadline:
            sys.exit("no start signal")
        time.sleep(0.001)
    won = ledger.claim("race", datetime.fromisoformat(fire_at), f"proc-{index}", at=datetime.fromisoformat(fire_at))
    ledger.close()
    print(json.dumps({"index": int(index), "won": won}))
    """
)


def _race_subprocesses(
    url: str, base_dir: Path, workdir: Path, count: int, fire_at: datetime
) -> list[dict[str, object]]:
    """``count`` processes claim the same occurrence at (nearly) the same instant; their answers."""
    workdir.mkdir(parents=True, exist_ok=True)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _RACE_SCRIPT,
                url,
                str(base_dir),
                str(workdir),
                str(i),
                fire_at.isoformat(),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(count)
    ]
    try:
        deadline = time.monotonic() + 90
        while len(list(workdir.glob("ready-*"))) < count:
            if any(p.poll() not in (None, 0) for p in procs):
                break
            assert time.monotonic() < deadline, "racers did not get ready in time"
            time.sleep(0.01)
        (workdir / "go").touch()
        results = []
        for p in procs:
            out, err = p.communicate(timeout=90)
            assert p.returncode == 0, err
            results.append(json.loads(out))
        return results
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


class LedgerContract:
    """Behaviour every ``cronplan.ledger.Ledger`` backend must have."""

    # ------------------------------------------------------------------ identity

    def test_lineage_is_a_uuid_hex_and_stable_across_reopen(
        self, ledger: Ledger, ledger_factory: Callable[[], Ledger]
    ) -> None:
        lineage = ledger.lineage()
        assert len(lineage) == 32 and int(lineage, 16) >= 0
        ledger.record_applied("a", spec=SPEC, digest="d1", fire_at=T0, callback_url=None, at=T0)
        ledger.close()
        again = ledger_factory()
        assert again.lineage() == lineage

    def test_serial_increases_with_every_state_write(self, ledger: Ledger) -> None:
        seen = [ledger.serial()]
        ledger.record_applied("a", spec=SPEC, digest="d1", fire_at=T0, callback_url=None, at=T0)
        seen.append(ledger.serial())
        assert ledger.claim("a", T0, "me", at=T0)
        seen.append(ledger.serial())
        ledger.update_run("a", T0, status="running", started_at=T0)
        seen.append(ledger.serial())
        ledger.record_applied("a", spec=None, digest=None, fire_at=None, callback_url=None, at=T0)
        seen.append(ledger.serial())
        assert seen == sorted(set(seen)), f"serial must strictly increase: {seen}"
        # A lost claim writes nothing.
        before = ledger.serial()
        assert not ledger.claim("a", T0, "other", at=T0)
        assert ledger.serial() == before

    def test_serial_is_shared_between_handles(
        self, ledger: Ledger, ledger_factory: Callable[[], Ledger]
    ) -> None:
        other = ledger_factory()
        before = other.serial()
        ledger.record_applied("a", spec=SPEC, digest="d1", fire_at=T0, callback_url=None, at=T0)
        assert other.serial() > before

    # ------------------------------------------------------------------ claims

    def test_claim_exactly_once_in_one_process(self, ledger: Ledger) -> None:
        assert ledger.claim("a", T0, "first", at=T0) is True
        assert ledger.claim("a", T0, "first", at=T0) is False
        assert ledger.claim("a", T0, "second", at=T0) is False
        assert ledger.claim("a", T0 + timedelta(minutes=1), "second", at=T0) is True
        assert ledger.claim("b", T0, "second", at=T0) is True
        run = ledger.get_run("a", T0)
        assert run is not None and run.claimed_by == "first" and run.status == "claimed"

    def test_claim_compares_instants_not_strings(self, ledger: Ledger) -> None:
        berlin = timezone(timedelta(hours=1))
        assert ledger.claim("a", T0.astimezone(berlin), "first", at=T0)
        assert not ledger.claim("a", T0, "second", at=T0)
        run = ledger.get_run("a", T0)
        assert run is not None and run.fire_at == T0 and run.fire_at.utcoffset() == timedelta(0)

    def test_claim_is_visible_to_another_handle_at_once(
        self, ledger: Ledger, ledger_factory: Callable[[], Ledger]
    ) -> None:
        claimed_at = T0 + timedelta(seconds=2, microseconds=5)
        assert ledger.claim("a", T0, "host:1", at=claimed_at)
        other = ledger_factory()
        run = other.get_run("a", T0)
        assert run is not None
        assert run.claimed_by == "host:1"
        assert run.claimed_at == claimed_at  # the caller's instant, not the ledger's clock
        assert not other.claim("a", T0, "host:2", at=T0)

    def test_claim_exactly_once_across_threads(
        self, ledger: Ledger, ledger_factory: Callable[[], Ledger]
    ) -> None:
        handles = [ledger] + [ledger_factory() for _ in range(3)]
        results: list[bool] = []
        lock = threading.Lock()
        start = threading.Barrier(16)

        def racer(i: int) -> None:
            start.wait(timeout=10)
            won = handles[i % len(handles)].claim("race", T0, f"thread-{i}", at=T0)
            with lock:
                results.append(won)

        threads = [threading.Thread(target=racer, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert len(results) == 16
        assert results.count(True) == 1

    @pytest.mark.timeout(180)
    def test_claim_exactly_once_across_20_processes(
        self, ledger: Ledger, ledger_url: str, tmp_path: Path
    ) -> None:
        ledger.serial()  # the store exists before the race, as in production
        results = _race_subprocesses(ledger_url, tmp_path, tmp_path / "race", 20, T0)
        winners = [r for r in results if r["won"]]
        assert len(results) == 20
        assert len(winners) == 1, results
        run = ledger.get_run("race", T0)
        assert run is not None and run.claimed_by == f"proc-{winners[0]['index']}"
        assert ledger.job_records(["race"])["race"].runs == 1

    @pytest.mark.timeout(60)
    def test_claim_survives_the_claimant_being_killed_right_after(
        self, ledger: Ledger, ledger_url: str, tmp_path: Path
    ) -> None:
        script = textwrap.dedent(
            """
            import os, signal, sys
            from datetime import datetime
            from cronplan.ledger import open_ledger
            ledger = open_ledger(sys.argv[1], base_dir=sys.argv[2])
            assert ledger.claim("a", datetime.fromisoformat(sys.argv[3]), "doomed", at=datetime.fromisoformat(sys.argv[3]))
            os.kill(os.getpid(), signal.SIGKILL)  # no close, no clean exit
            """
        )
        ledger.serial()
        proc = subprocess.run(
            [sys.executable, "-c", script, ledger_url, str(tmp_path), T0.isoformat()],
            capture_output=True,
            text=True,
            timeout=50,
        )
        assert proc.returncode == -9, proc.stderr
        run = ledger.get_run("a", T0)
        assert run is not None and run.claimed_by == "doomed"
        assert not ledger.claim("a", T0, "successor", at=T0)

    # ------------------------------------------------------------------ claims in batches (group commit)

    def test_claim_many_answers_each_request_in_order(
        self, ledger: Ledger, ledger_factory: Callable[[], Ledger]
    ) -> None:
        t1 = T0 + timedelta(hours=1)
        at = T0 + timedelta(seconds=3, microseconds=7)
        assert ledger.claim("old", T0, "single", at=T0)
        before = ledger.serial()
        berlin = timezone(timedelta(hours=1))
        answers = ledger.claim_many(
            [
                ClaimRequest("a", T0, "h:1", at),
                ClaimRequest("old", T0, "h:2", at),  # claimed before the batch
                ClaimRequest("a", T0.astimezone(berlin), "h:3", at),  # earlier in the same batch
                ClaimRequest("a", t1, "h:4", at),
                ClaimRequest("b", T0, "h:5", at),
                ClaimRequest("b", T0, "h:6", at),
            ]
        )
        assert answers == [True, False, False, True, True, False]
        assert ledger.serial() > before
        other = ledger_factory()  # durable and visible to another handle at once
        run = other.get_run("a", T0)
        assert run is not None and run.claimed_by == "h:1" and run.claimed_at == at
        assert run.status == "claimed"
        assert other.get_run("old", T0).claimed_by == "single"  # type: ignore[union-attr]
        assert other.get_run("b", T0).claimed_by == "h:5"  # type: ignore[union-attr]
        assert other.job_records(["a"])["a"].runs == 2
        # Across batches and against single claims, a taken occurrence stays taken.
        assert other.claim_many(
            [ClaimRequest("a", t1, "h:7", at), ClaimRequest("c", T0, "h:8", at)]
        ) == [
            False,
            True,
        ]
        assert not ledger.claim("c", T0, "single", at=T0)

    def test_claim_many_of_nothing_and_of_losers_writes_nothing(self, ledger: Ledger) -> None:
        assert ledger.claim("a", T0, "first", at=T0)
        before = ledger.serial()
        assert ledger.claim_many([]) == []
        assert ledger.claim_many([ClaimRequest("a", T0, "late", T0)] * 3) == [False] * 3
        assert ledger.serial() == before

    def test_claim_many_exactly_once_across_threads_and_handles(
        self, ledger: Ledger, ledger_factory: Callable[[], Ledger]
    ) -> None:
        handles = [ledger] + [ledger_factory() for _ in range(3)]
        keys = [(f"j{k}", T0) for k in range(40)]
        won: list[tuple[str, datetime]] = []
        lock = threading.Lock()
        start = threading.Barrier(8)

        def racer(i: int) -> None:
            # Every racer claims every occurrence, in its own order and batch sizes.
            order = keys[i * 5 :] + keys[: i * 5]
            start.wait(timeout=10)
            for lo in range(0, len(order), 3 + i):
                chunk = order[lo : lo + 3 + i]
                answers = handles[i % len(handles)].claim_many(
                    [ClaimRequest(j, f, f"t{i}", T0) for j, f in chunk]
                )
                with lock:
                    won.extend(k for k, ok in zip(chunk, answers, strict=True) if ok)

        threads = [threading.Thread(target=racer, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sorted(won) == sorted(keys)  # each occurrence won exactly once

    # ------------------------------------------------------------------ runs

    def test_record_armed_keeps_the_applied_definition(self, ledger: Ledger) -> None:
        # A fire's re-arm records where the job is armed, never the definition it read when it started:
        # an apply that recorded a new definition meanwhile must stand (found by benchmarks/soak.py).
        new_spec = {**SPEC, "command": ["true", "v2"]}
        ledger.record_applied("a", spec=new_spec, digest="d2", fire_at=T0, callback_url=None, at=T0)
        later = T0 + timedelta(minutes=1)
        ledger.record_armed_many(
            [("a", later, "http://127.0.0.1:1"), ("gone", later, None)], at=later
        )
        records = ledger.job_records()
        assert set(records) == {"a"}  # a job with no definition is not created
        rec = records["a"]
        assert (rec.applied_digest, rec.applied_spec) == ("d2", new_spec)
        assert rec.applied_fire_at == later and rec.applied_callback_url == "http://127.0.0.1:1"
        ledger.record_armed_many([("a", None, None)], at=later)
        assert ledger.job_records()["a"].applied_fire_at is None
        assert ledger.job_records()["a"].applied_digest == "d2"

    def test_update_run_keeps_fields_not_given(self, ledger: Ledger) -> None:
        assert ledger.claim("a", T0, "me", at=T0)
        started = T0 + timedelta(seconds=1, microseconds=250)
        ledger.update_run("a", T0, status="running", started_at=started)
        finished = started + timedelta(seconds=2.5)
        ledger.update_run(
            "a",
            T0,
            status="failed",
            finished_at=finished,
            exit_code=3,
            output_tail="boom\n",
            error="exit 3",
        )
        run = ledger.get_run("a", T0)
        assert run is not None
        assert run.status == "failed"
        assert run.started_at == started  # microseconds survive
        assert run.finished_at == finished
        assert run.exit_code == 3 and run.output_tail == "boom\n" and run.error == "exit 3"
        assert run.duration_s == 2.5

    def test_update_run_of_an_unclaimed_occurrence_is_an_error(self, ledger: Ledger) -> None:
        with pytest.raises(LedgerError, match="claim"):
            ledger.update_run("nope", T0, status="running")

    def test_get_run_of_unknown_occurrence_is_none(self, ledger: Ledger) -> None:
        assert ledger.get_run("a", T0) is None

    def test_runs_newest_first_filtered_and_limited(self, ledger: Ledger) -> None:
        for i in (2, 0, 3, 1):
            assert ledger.claim("a", T0 + timedelta(hours=i), "me", at=T0)
        assert ledger.claim("b", T0 + timedelta(hours=1, minutes=30), "me", at=T0)
        all_runs = ledger.runs()
        assert [(r.job_id, r.fire_at) for r in all_runs] == [
            ("a", T0 + timedelta(hours=3)),
            ("a", T0 + timedelta(hours=2)),
            ("b", T0 + timedelta(hours=1, minutes=30)),
            ("a", T0 + timedelta(hours=1)),
            ("a", T0),
        ]
        assert [r.fire_at for r in ledger.runs("a", limit=2)] == [
            T0 + timedelta(hours=3),
            T0 + timedelta(hours=2),
        ]
        assert [r.job_id for r in ledger.runs("b")] == ["b"]
        assert ledger.runs("zzz") == []

    # ------------------------------------------------------------------ manual runs

    def test_manual_runs_never_collide_with_claims_nor_count_as_occurrences(
        self, ledger: Ledger, ledger_factory: Callable[[], Ledger]
    ) -> None:
        ledger.record_applied("a", spec=SPEC, digest="d1", fire_at=T0, callback_url=None, at=T0)
        assert ledger.claim("a", T0, "me", at=T0)
        ledger.update_run("a", T0, status="succeeded", exit_code=0)
        started = T0 + timedelta(hours=5, microseconds=7)
        first = ledger.start_manual_run("a", "by-hand", started_at=started)
        second = ledger_factory().start_manual_run("a", "by-hand", started_at=started)
        assert first != second  # two manual runs at the same instant are two runs
        ledger.update_manual_run(
            first,
            status="failed",
            finished_at=started + timedelta(seconds=2),
            exit_code=4,
            output_tail="oops\n",
            error="exit 4",
        )
        run = ledger.get_manual_run(first)
        assert run is not None
        assert (run.kind, run.fire_at, run.run_id, run.status) == ("manual", None, first, "failed")
        assert (run.started_at, run.at, run.claimed_by) == (started, started, "by-hand")
        assert (run.exit_code, run.output_tail, run.error, run.duration_s) == (
            4,
            "oops\n",
            "exit 4",
            2.0,
        )
        assert ledger.get_manual_run("no-such-run") is None
        # The occurrence claim is untouched, and a manual run is no occurrence: no repeat count, no
        # last_fired_at, no failure in what the planner reads.
        record = ledger.job_records(["a"])["a"]
        assert (record.runs, record.failures, record.last_fired_at) == (1, 0, T0)
        assert ledger.claim(
            "a", T0 + timedelta(days=1), "me", at=T0
        )  # claims still work next to them
        kinds = [(r.kind, r.fire_at) for r in ledger.runs("a")]
        assert kinds == [
            ("scheduled", T0 + timedelta(days=1)),
            ("manual", None),
            ("manual", None),
            ("scheduled", T0),
        ]
        # Summaries (status) count occurrences, like job_records: manual runs stay out of them.
        summary = ledger.run_summaries()["a"]
        assert (summary.last.fire_at, summary.completed, summary.failed) == (
            T0 + timedelta(days=1),
            1,
            0,
        )

    def test_update_of_an_unknown_manual_run_is_an_error(self, ledger: Ledger) -> None:
        with pytest.raises(LedgerError, match="manual run"):
            ledger.update_manual_run("nope", status="succeeded")

    def test_runs_filtered_by_failure_and_time(self, ledger: Ledger) -> None:
        for i, status in enumerate(["succeeded", "failed", "succeeded", "failed"]):
            fire = T0 + timedelta(hours=i)
            assert ledger.claim("a" if i % 2 else "b", fire, "me", at=T0)
            ledger.update_run("a" if i % 2 else "b", fire, status=status)  # type: ignore[arg-type]
        manual = ledger.start_manual_run("b", "me", started_at=T0 + timedelta(minutes=150))
        ledger.update_manual_run(manual, status="failed")
        failed = ledger.runs(failed=True)
        assert [(r.job_id, r.at) for r in failed] == [
            ("a", T0 + timedelta(hours=3)),
            ("b", T0 + timedelta(minutes=150)),
            ("a", T0 + timedelta(hours=1)),
        ]
        since = ledger.runs(since=T0 + timedelta(hours=2))
        assert [r.at for r in since] == [
            T0 + timedelta(hours=3),
            T0 + timedelta(minutes=150),
            T0 + timedelta(hours=2),
        ]
        assert [r.at for r in ledger.runs("b", since=T0 + timedelta(hours=1))] == [
            T0 + timedelta(minutes=150),
            T0 + timedelta(hours=2),
        ]
        assert len(ledger.runs(failed=True, limit=1)) == 1

    # ------------------------------------------------------------------ jobs as last applied

    def test_job_records_combine_applied_jobs_and_runs(self, ledger: Ledger) -> None:
        ledger.record_applied(
            "a",
            spec=SPEC,
            digest="d1",
            fire_at=T0 + timedelta(hours=3),
            callback_url="http://127.0.0.1:1",
            at=T0,
        )
        ledger.record_applied(
            "b", spec={"id": "b"}, digest="d2", fire_at=None, callback_url=None, at=T0
        )
        for i, status in enumerate(["succeeded", "failed", "running"]):
            fire = T0 + timedelta(hours=i)
            assert ledger.claim("a", fire, "me", at=T0)
            ledger.update_run("a", fire, status=status)  # type: ignore[arg-type]
        assert ledger.claim("c", T0, "me", at=T0)  # runs but never applied (fired, then removed)

        records = ledger.job_records()
        assert sorted(records) == ["a", "b", "c"]
        a = records["a"]
        assert a.applied_spec == SPEC and a.applied_digest == "d1"
        assert a.applied_fire_at == T0 + timedelta(hours=3)
        assert a.applied_callback_url == "http://127.0.0.1:1"
        assert a.last_fired_at == T0 + timedelta(hours=2)
        assert (a.runs, a.failures) == (3, 1)
        b = records["b"]
        assert (b.applied_digest, b.applied_fire_at, b.last_fired_at, b.runs, b.failures) == (
            "d2",
            None,
            None,
            0,
            0,
        )
        c = records["c"]
        assert c.applied_spec is None and c.applied_digest is None
        assert (c.last_fired_at, c.runs) == (T0, 1)

        some = ledger.job_records(["a", "c", "unknown"])
        assert sorted(some) == ["a", "c"]
        assert some["a"] == a
        assert ledger.job_records([]) == {}

    def test_job_records_report_when_the_latest_claim_was_made(self, ledger: Ledger) -> None:
        old = datetime(2026, 1, 1, 9, tzinfo=timezone.utc)
        assert ledger.claim("late", old, "tester", at=T0)
        record = ledger.job_records(["late"])["late"]
        assert record.last_fired_at == old
        assert record.last_claimed_at == T0

    def test_record_applied_overwrites(self, ledger: Ledger) -> None:
        ledger.record_applied("a", spec=SPEC, digest="d1", fire_at=T0, callback_url=None, at=T0)
        spec2 = {**SPEC, "command": ["false"]}
        ledger.record_applied(
            "a", spec=spec2, digest="d2", fire_at=T0 + timedelta(days=1), callback_url="u", at=T0
        )
        rec = ledger.job_records(["a"])["a"]
        assert (
            rec.applied_spec,
            rec.applied_digest,
            rec.applied_fire_at,
            rec.applied_callback_url,
        ) == (
            spec2,
            "d2",
            T0 + timedelta(days=1),
            "u",
        )

    def test_record_applied_without_spec_forgets_the_job(self, ledger: Ledger) -> None:
        ledger.record_applied("a", spec=SPEC, digest="d1", fire_at=T0, callback_url=None, at=T0)
        ledger.record_applied("b", spec=SPEC, digest="d1", fire_at=T0, callback_url=None, at=T0)
        assert ledger.claim("b", T0, "me", at=T0)
        for job in ("a", "b", "never-applied"):
            ledger.record_applied(
                job, spec=None, digest=None, fire_at=None, callback_url=None, at=T0
            )
        records = ledger.job_records()
        assert "a" not in records
        assert records["b"].applied_spec is None and records["b"].applied_digest is None
        assert records["b"].runs == 1  # the run history stays

    def test_run_summaries_give_each_jobs_latest_run_and_counts(self, ledger: Ledger) -> None:
        assert ledger.run_summaries() == {}
        statuses = ["succeeded", "failed", "failed", "running"]
        for i, status in enumerate(statuses):
            fire = T0 + timedelta(hours=i)
            assert ledger.claim("a", fire, "me", at=T0)
            ledger.update_run("a", fire, status=status, exit_code=i)  # type: ignore[arg-type]
        assert ledger.claim("b", T0 - timedelta(days=1), "me", at=T0)
        ledger.update_run("b", T0 - timedelta(days=1), status="succeeded", exit_code=0)
        assert ledger.claim("c", T0, "me", at=T0)  # claimed, not finished
        summaries = ledger.run_summaries()
        assert sorted(summaries) == ["a", "b", "c"]
        a = summaries["a"]
        assert a.last == ledger.runs("a")[0]
        assert (a.last.fire_at, a.last.status, a.last.exit_code) == (
            T0 + timedelta(hours=3),
            "running",
            3,
        )
        assert (a.completed, a.failed) == (3, 2)
        assert (summaries["b"].completed, summaries["b"].failed) == (1, 0)
        assert summaries["b"].last.fire_at == T0 - timedelta(days=1)
        assert (summaries["c"].last.status, summaries["c"].completed) == ("claimed", 0)

    def test_job_records_for_many_ids(self, ledger: Ledger) -> None:
        count = 12_000  # more than fits in one IN list of most backends
        record_many = getattr(ledger, "record_applied_many", None)
        entries = [
            (f"job-{i:05d}", {"id": f"job-{i:05d}"}, f"d{i}", T0, None) for i in range(count)
        ]
        if record_many is not None:
            record_many(entries, at=T0)
        else:
            for job_id, spec, digest, fire_at, cb in entries:
                ledger.record_applied(
                    job_id, spec=spec, digest=digest, fire_at=fire_at, callback_url=cb, at=T0
                )
        for i in range(0, count, 1000):
            assert ledger.claim(f"job-{i:05d}", T0, "me", at=T0)
        ids = [f"job-{i:05d}" for i in range(count)] + ["missing"]
        records = ledger.job_records(ids)  # more ids than one statement may bind: read in chunks
        assert len(records) == count
        assert records["job-05000"].runs == 1 and records["job-05001"].runs == 0
        assert records["job-11999"].applied_digest == "d11999"

    def test_concurrent_writers_lose_no_update(
        self, ledger: Ledger, ledger_factory: Callable[[], Ledger]
    ) -> None:
        handles = [ledger, ledger, ledger_factory(), ledger_factory()]
        before = ledger.serial()

        def writer(w: int) -> None:
            for i in range(50):
                handles[w % len(handles)].record_applied(
                    f"w{w}-{i}",
                    spec={"w": w, "i": i},
                    digest=str(i),
                    fire_at=T0,
                    callback_url=None,
                    at=T0,
                )

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        records = ledger.job_records()
        assert len(records) == 400
        assert records["w7-49"].applied_spec == {"w": 7, "i": 49}
        assert ledger.serial() - before >= 400

    # ------------------------------------------------------------------ the apply lock

    def test_lock_acquire_and_describe(self, ledger: Ledger) -> None:
        clock = ManualClock(T0)
        assert ledger.current_lock(at=T0) is None
        info = ledger.acquire_lock("ci:42", lease_seconds=60, timeout=0, clock=clock)
        assert info.holder == "ci:42" and info.lock_id
        # The lease runs on the caller's clock (--now pins it), not on the ledger's.
        assert (info.acquired_at, info.expires_at) == (T0, T0 + timedelta(seconds=60))
        assert ledger.current_lock(at=T0) == info
        assert ledger.current_lock(at=T0 + timedelta(seconds=61)) is None  # expired by then
        ledger.release_lock(info.lock_id)
        assert ledger.current_lock(at=T0) is None

    def test_lock_held_elsewhere_fails_with_holder_id_and_force_unlock_hint(
        self, ledger: Ledger, ledger_factory: Callable[[], Ledger]
    ) -> None:
        clock = ManualClock(T0)
        info = ledger.acquire_lock("laptop:1234", lease_seconds=60, timeout=0, clock=clock)
        other = ledger_factory()
        with pytest.raises(LockError) as exc:
            other.acquire_lock("ci:1", lease_seconds=60, timeout=0, clock=clock)
        message = str(exc.value)
        assert "laptop:1234" in message
        assert info.lock_id in message
        assert f"cronplan force-unlock {info.lock_id}" in message
        assert info.acquired_at.strftime("%Y-%m-%dT%H:%M:%S") in message

    @pytest.mark.slow
    def test_lock_waits_for_release(
        self, ledger: Ledger, ledger_factory: Callable[[], Ledger]
    ) -> None:
        clock = ManualClock(T0)
        info = ledger.acquire_lock("first", lease_seconds=60, timeout=0, clock=clock)
        timer = threading.Timer(0.4, ledger.release_lock, args=(info.lock_id,))
        timer.start()
        other = ledger_factory()
        started = time.monotonic()
        got = other.acquire_lock("second", lease_seconds=60, timeout=10, clock=clock)
        waited = time.monotonic() - started
        timer.join()
        assert got.holder == "second" and got.lock_id != info.lock_id
        assert 0.3 <= waited < 5

    @pytest.mark.slow
    def test_lock_timeout_is_honoured(
        self, ledger: Ledger, ledger_factory: Callable[[], Ledger]
    ) -> None:
        clock = ManualClock(T0)
        ledger.acquire_lock("first", lease_seconds=60, timeout=0, clock=clock)
        other = ledger_factory()
        started = time.monotonic()
        with pytest.raises(LockError):
            other.acquire_lock("second", lease_seconds=60, timeout=0.6, clock=clock)
        waited = time.monotonic() - started
        assert 0.55 <= waited < 3

    def test_expired_lease_is_taken_over(
        self, ledger: Ledger, ledger_factory: Callable[[], Ledger]
    ) -> None:
        clock = ManualClock(T0)
        stale = ledger.acquire_lock("crashed", lease_seconds=30, timeout=0, clock=clock)
        other = ledger_factory()
        clock.advance(29)
        with pytest.raises(LockError):
            other.acquire_lock("early", lease_seconds=60, timeout=0, clock=clock)
        clock.advance(2)
        got = other.acquire_lock("next", lease_seconds=60, timeout=0, clock=clock)
        assert got.holder == "next" and got.lock_id != stale.lock_id
        assert got.acquired_at == T0 + timedelta(seconds=31)
        # The crashed holder coming back must not release or renew the new holder's lease.
        ledger.release_lock(stale.lock_id)
        assert ledger.current_lock(at=clock.now()) == got
        with pytest.raises(LockError):
            ledger.renew_lock(stale.lock_id, lease_seconds=60, at=clock.now())

    def test_renew_extends_the_lease(
        self, ledger: Ledger, ledger_factory: Callable[[], Ledger]
    ) -> None:
        clock = ManualClock(T0)
        info = ledger.acquire_lock("me", lease_seconds=30, timeout=0, clock=clock)
        clock.advance(20)
        ledger.renew_lock(info.lock_id, lease_seconds=60, at=clock.now())  # now until T0 + 80 s
        clock.advance(50)
        with pytest.raises(LockError):
            ledger_factory().acquire_lock("other", lease_seconds=60, timeout=0, clock=clock)
        current = ledger.current_lock(at=clock.now())
        assert current is not None and current.lock_id == info.lock_id
        assert current.expires_at == T0 + timedelta(seconds=80)
        clock.advance(11)
        assert ledger_factory().acquire_lock("other", lease_seconds=60, timeout=0, clock=clock)

    def test_force_unlock(self, ledger: Ledger, ledger_factory: Callable[[], Ledger]) -> None:
        clock = ManualClock(T0)
        info = ledger.acquire_lock("gone:1", lease_seconds=600, timeout=0, clock=clock)
        admin = ledger_factory()
        with pytest.raises(LockError, match="no apply lock with id wrong-id"):
            admin.force_unlock("wrong-id")
        assert ledger.current_lock(at=T0) == info
        admin.force_unlock(info.lock_id)
        assert ledger.current_lock(at=T0) is None
        with pytest.raises(LockError):
            admin.force_unlock(info.lock_id)
        assert admin.acquire_lock("new", lease_seconds=60, timeout=0, clock=clock).holder == "new"

    @pytest.mark.parametrize("years", [-7, 9])
    def test_lock_leases_follow_a_pinned_clock_years_away_from_today(
        self, ledger: Ledger, ledger_factory: Callable[[], Ledger], years: int
    ) -> None:
        far = _years_from_today(years)
        info = ledger.acquire_lock("pinned", lease_seconds=60, timeout=0, clock=PinnedClock(far))
        assert (info.acquired_at, info.expires_at) == (far, far + timedelta(seconds=60))
        with pytest.raises(LockError):
            ledger_factory().acquire_lock("b", lease_seconds=60, timeout=0, clock=PinnedClock(far))
        later = PinnedClock(far + timedelta(seconds=61))
        assert ledger_factory().acquire_lock("c", lease_seconds=60, timeout=0, clock=later)

    # ------------------------------------------------------------------ instants come from the caller

    @pytest.mark.parametrize("years", [-7, 9])
    def test_claim_is_stamped_with_the_callers_instant_years_away_from_today(
        self, ledger: Ledger, years: int
    ) -> None:
        at = _years_from_today(years)
        fire = at.replace(second=0, microsecond=0)
        assert ledger.claim("a", fire, "me", at=at)
        run = ledger.get_run("a", fire)
        assert run is not None and run.claimed_at == at

    # ------------------------------------------------------------------ liveness: abandoned runs

    def test_heartbeat_stamps_open_runs_only_and_is_seen_by_another_handle(
        self, ledger: Ledger, ledger_factory: Callable[[], Ledger]
    ) -> None:
        assert ledger.claim("a", T0, "h:1", at=T0)
        serial = ledger.serial()
        beat = T0 + timedelta(seconds=15, microseconds=7)
        assert ledger.heartbeat("a", T0, at=beat)
        assert ledger.serial() == serial  # a sign of life is not a state change
        run = ledger_factory().get_run("a", T0)
        assert run is not None and run.heartbeat_at == beat
        manual = ledger.start_manual_run("a", "h:2", started_at=T0)
        assert ledger.heartbeat("a", None, at=beat, run_id=manual)
        got = ledger.get_manual_run(manual)
        assert got is not None and got.heartbeat_at == beat
        ledger.update_run("a", T0, status="succeeded")
        assert not ledger.heartbeat("a", T0, at=beat + timedelta(seconds=15))  # finished: no beat
        assert not ledger.heartbeat("a", T0 + timedelta(days=1), at=beat)  # no such run

    def test_open_runs_and_mark_abandoned_exactly_once(
        self, ledger: Ledger, ledger_factory: Callable[[], Ledger]
    ) -> None:
        for i, status in enumerate(["succeeded", "running", "claimed"]):
            fire = T0 + timedelta(hours=i)
            assert ledger.claim("a", fire, "h:1", at=fire)
            if status != "claimed":
                ledger.update_run("a", fire, status=status)  # type: ignore[arg-type]
        manual = ledger.start_manual_run("b", "h:2", started_at=T0)
        open_runs = ledger.open_runs()
        assert sorted((r.job_id, r.status, r.run_id or "") for r in open_runs) == [
            ("a", "claimed", ""),
            ("a", "running", ""),
            ("b", "running", manual),
        ]
        running = next(r for r in open_runs if r.fire_at == T0 + timedelta(hours=1))
        ended = T0 + timedelta(hours=1, seconds=30)
        serial = ledger.serial()
        assert ledger.mark_abandoned(running, finished_at=ended, error="gone")
        assert ledger.serial() > serial
        assert not ledger_factory().mark_abandoned(running, finished_at=ended, error="again")
        got = ledger.get_run("a", T0 + timedelta(hours=1))
        assert got is not None
        assert (got.status, got.finished_at, got.error) == ("abandoned", ended, "gone")
        manual_run = next(r for r in open_runs if r.run_id == manual)
        assert ledger.mark_abandoned(manual_run, finished_at=ended, error="gone too")
        assert sorted(r.status for r in ledger.open_runs()) == ["claimed"]
        # An abandoned run is a finished failure in every count, and `runs --failed` lists it.
        summary = ledger.run_summaries()["a"]
        assert (summary.completed, summary.failed) == (2, 1)
        assert ledger.job_records(["a"])["a"].failures == 1
        assert {(r.job_id, r.status) for r in ledger.runs(failed=True)} == {
            ("a", "abandoned"),
            ("b", "abandoned"),
        }

    def test_a_finished_run_is_never_marked_abandoned(self, ledger: Ledger) -> None:
        assert ledger.claim("a", T0, "h:1", at=T0)
        stale = ledger.open_runs()[0]
        ledger.update_run("a", T0, status="succeeded", exit_code=0)
        assert not ledger.mark_abandoned(stale, finished_at=T0, error="too late")
        got = ledger.get_run("a", T0)
        assert got is not None and (got.status, got.error) == ("succeeded", None)

    # ------------------------------------------------------------------ retention

    def test_pruning_keeps_the_newest_runs_and_every_count(
        self, ledger: Ledger, ledger_factory: Callable[[], Ledger]
    ) -> None:
        statuses = ["succeeded", "failed", "abandoned", "succeeded", "succeeded", "running"]
        for i, status in enumerate(statuses):
            fire = T0 + timedelta(days=i)
            assert ledger.claim("a", fire, "h:1", at=fire + timedelta(seconds=1))
            if status == "abandoned":
                (run,) = [r for r in ledger.open_runs() if r.fire_at == fire]
                assert ledger.mark_abandoned(run, finished_at=fire, error="gone")
            else:
                ledger.update_run("a", fire, status=status)  # type: ignore[arg-type]
        manual = ledger.start_manual_run("a", "h:2", started_at=T0 - timedelta(days=1))
        ledger.update_manual_run(manual, status="succeeded")
        assert ledger.claim("b", T0, "h:1", at=T0)
        ledger.update_run("b", T0, status="failed")
        before_records = ledger.job_records()
        before_summaries = ledger.run_summaries()
        serial = ledger.serial()

        # Keep two per job, nothing is too old: a's four oldest finished runs and its manual run go.
        assert ledger.prune_runs(keep_per_job=2, older_than=T0 - timedelta(days=365)) == 5
        assert ledger.serial() > serial
        kept = ledger_factory().runs("a")
        assert [(r.fire_at, r.status) for r in kept] == [
            (T0 + timedelta(days=5), "running"),
            (T0 + timedelta(days=4), "succeeded"),
        ]
        assert ledger.job_records() == before_records
        after = ledger.run_summaries()
        assert {k: (s.completed, s.failed) for k, s in after.items()} == {
            k: (s.completed, s.failed) for k, s in before_summaries.items()
        }
        assert (after["a"].completed, after["a"].failed) == (5, 2)
        assert ledger.prune_runs(keep_per_job=2, older_than=T0 - timedelta(days=365)) == 0

        # By age: every finished run older than the bound goes, even the newest; a running one stays.
        assert ledger.prune_runs(keep_per_job=1000, older_than=T0 + timedelta(days=30)) == 2
        assert [r.status for r in ledger.runs()] == ["running"]
        records = ledger.job_records(["a", "b"])
        assert records == {k: before_records[k] for k in ("a", "b")}
        a = records["a"]
        assert (a.runs, a.completed, a.failures) == (6, 5, 2)
        assert a.last_fired_at == T0 + timedelta(days=5)
        assert a.last_claimed_at == T0 + timedelta(days=5, seconds=1)
        b = records["b"]
        assert (b.runs, b.completed, b.failures, b.last_fired_at) == (1, 1, 1, T0)
        # The pruned counts add up with later runs.
        assert ledger.claim("b", T0 + timedelta(days=1), "h:1", at=T0)
        ledger.update_run("b", T0 + timedelta(days=1), status="succeeded")
        assert (ledger.run_summaries()["b"].completed, ledger.run_summaries()["b"].failed) == (2, 1)
        assert ledger.job_records(["b"])["b"].runs == 2
