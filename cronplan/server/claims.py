"""Group commit of claims in ``cronplan serve`` (docs/fire.md, "A burst of fires").

Every claim must be durable before its fire is answered, and a durable commit (an fsync) costs far more than
the insert it makes durable. Claims of concurrent fire requests therefore share commits: each request puts
its claim on a queue and waits; one writer thread takes everything queued, claims it in one transaction
(``Ledger.claim_many``) and wakes each request with its own answer. While a commit is under way the next
batch gathers, so a lone fire pays one commit as before and a burst pays one commit per batch. Exactly once
is the ledger's: a second request for an occurrence, in the same batch or a later one, loses.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from cronplan.ledger import ClaimRequest

if TYPE_CHECKING:
    from cronplan.ledger import Ledger
    from cronplan.project import Project

#: The most claims one commit takes; a larger queue is drained in several commits.
MAX_BATCH = 500


@dataclass
class _Waiting:
    request: ClaimRequest
    done: threading.Event = field(default_factory=threading.Event)
    won: bool = False
    error: BaseException | None = None


class ClaimCommitter:
    """One writer thread committing the queued claims in batches; ``claim`` blocks until its batch is durable."""

    def __init__(self, ledger: Ledger, *, max_batch: int = MAX_BATCH) -> None:
        self.ledger = ledger
        self.max_batch = max_batch
        self._cond = threading.Condition()
        self._queue: list[_Waiting] = []
        self._thread: threading.Thread | None = None
        self._closed = False
        #: Commits made and claims they carried (for the status page and the benchmark).
        self.commits = 0
        self.claims = 0

    def claim(self, job_id: str, fire_at: datetime, holder: str, *, at: datetime) -> bool:
        """``Ledger.claim`` through the shared commit: True only for the one winner, durable on return."""
        waiting = _Waiting(ClaimRequest(job_id, fire_at, holder, at))
        with self._cond:
            if self._closed:
                # Stopped (serve shutting down): a straggler claims on its own.
                return self.ledger.claim(job_id, fire_at, holder, at=at)
            self._queue.append(waiting)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._drain, name="cronplan-claims", daemon=True
                )
                self._thread.start()
            self._cond.notify()
        waiting.done.wait()
        if waiting.error is not None:
            raise waiting.error
        return waiting.won

    def _drain(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                batch = self._queue[: self.max_batch]
                del self._queue[: self.max_batch]
            self._commit(batch)

    def _commit(self, batch: list[_Waiting]) -> None:
        try:
            answers = self.ledger.claim_many([w.request for w in batch])
        except BaseException as exc:  # the ledger's error (or a bug) is every waiter's answer
            for waiting in batch:
                waiting.error = exc
        else:
            self.commits += 1
            self.claims += len(batch)
            for waiting, won in zip(batch, answers, strict=True):
                waiting.won = won
        finally:
            for waiting in batch:
                waiting.done.set()

    def close(self) -> None:
        """Commit what is queued, then stop the writer; later claims go straight to the ledger."""
        with self._cond:
            self._closed = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join()


class _GroupClaimLedger:
    """The ledger as the fire pipeline sees it in serve: claims go through the committer, the rest is the
    ledger itself."""

    def __init__(self, ledger: Ledger, committer: ClaimCommitter) -> None:
        self._ledger = ledger
        self._committer = committer

    def claim(self, job_id: str, fire_at: datetime, holder: str, *, at: datetime) -> bool:
        return self._committer.claim(job_id, fire_at, holder, at=at)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ledger, name)


def group_claiming(rt: Project, committer: ClaimCommitter) -> Project:
    """A view of ``rt`` whose ledger claims through ``committer`` (for ``cronplan.fire.claim``); same config,
    clock and environment, never closed on its own."""
    view = copy.copy(rt)
    view._ledger = cast("Ledger", _GroupClaimLedger(rt.ledger, committer))
    return view


__all__ = ["MAX_BATCH", "ClaimCommitter", "group_claiming"]
