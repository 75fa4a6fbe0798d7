"""Group commit of claims in serve (cronplan/server/claims.py) on a real ledger, both backends.

Many threads claim at once through one ``ClaimCommitter``: each occurrence is won once, the claims share
commits, a failing ledger is every waiter's error, and after ``close`` claims still work (on their own).
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest

from cronplan.errors import LedgerError
from cronplan.ledger import Ledger
from cronplan.server.claims import ClaimCommitter

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)


def _race(committer: ClaimCommitter, threads: int, keys: list[str]) -> list[tuple[str, bool]]:
    out: list[tuple[str, bool]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def racer(i: int) -> None:
        start.wait(timeout=10)
        for key in keys[i::threads] + keys[(i + 1) % threads :: threads]:
            try:
                won = committer.claim(key, T0, f"t{i}", at=T0)
            except BaseException as exc:
                with lock:
                    errors.append(exc)
                continue
            with lock:
                out.append((key, won))

    workers = [threading.Thread(target=racer, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    if errors:
        raise errors[0]
    return out


def test_concurrent_claims_share_commits_and_each_occurrence_is_won_once(ledger: Ledger) -> None:
    committer = ClaimCommitter(ledger)
    keys = [f"job-{k:03d}" for k in range(300)]
    try:
        answers = _race(committer, 24, keys)
    finally:
        committer.close()
    # Every key was asked for twice (by two threads): one winner each, the other a loser.
    assert len(answers) == 2 * len(keys)
    assert sorted(k for k, won in answers if won) == keys
    assert committer.claims == 2 * len(keys)
    assert committer.commits < committer.claims  # batches carried more than one claim
    for key in keys[:5]:
        run = ledger.get_run(key, T0)
        assert run is not None and run.status == "claimed"


def test_a_failing_ledger_is_every_waiters_error_and_close_keeps_claims_working(
    ledger: Ledger,
) -> None:
    committer = ClaimCommitter(ledger)
    assert committer.claim("a", T0, "me", at=T0) is True
    assert committer.claim("a", T0, "me", at=T0) is False
    committer.close()
    # Closed: a straggler claims on its own, with the same exactly-once answer.
    assert committer.claim("a", T0, "late", at=T0) is False
    assert committer.claim("b", T0, "late", at=T0) is True

    broken = ClaimCommitter(ledger)
    ledger.close()
    try:
        with pytest.raises(LedgerError):
            _race(broken, 8, [f"c{k}" for k in range(16)])
    finally:
        broken.close()
