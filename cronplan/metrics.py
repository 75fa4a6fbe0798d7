"""``GET /metrics``: Prometheus figures read from the ledger and the provider at scrape time.

A custom collector, not counters kept in memory: every ``serve`` instance on one shared (PostgreSQL)
ledger reports the same figures, and a restart loses nothing (docs/observability.md).

- ``cronplan_runs_total{job_id,status}``: finished runs by result (``succeeded``, ``failed``), from the
  per-job counts that survive pruning.
- ``cronplan_runs_in_progress{job_id,status}``: runs ``claimed`` or ``running`` now.
- ``cronplan_run_duration_seconds{job_id}`` and ``cronplan_fire_lag_seconds{job_id}`` (claim time minus
  ``fire_at``): histograms over the runs the ledger still holds (``retention``).
- ``cronplan_arms_live``, ``cronplan_arms_overdue``: live arms, and those past their grace window.
- ``cronplan_last_success_timestamp_seconds{job_id}``: when the latest successful run finished.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from cronplan.errors import CronplanError

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from cronplan.project import Project

DURATION_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)
LAG_BUCKETS = (0.1, 0.5, 1.0, 2.0, 5.0, 15.0, 60.0, 300.0)
#: Runs read per scrape for the histograms and last-success times (newest first).
RUNS_PER_SCRAPE = 100_000


class LedgerCollector(Collector):
    def __init__(self, rt: Project, *, clock: Callable[[], datetime]) -> None:
        self.rt = rt
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        ledger = self.rt.ledger
        from cronplan.status import judged_summaries, run_view

        summaries = judged_summaries(self.rt, ledger.run_summaries())
        view = run_view(self.rt)
        runs = [view(r) for r in ledger.runs(limit=RUNS_PER_SCRAPE)]

        total = CounterMetricFamily(
            "cronplan_runs", "Finished runs by job and result.", labels=["job_id", "status"]
        )
        for job_id in sorted(summaries):
            s = summaries[job_id]
            total.add_metric([job_id, "succeeded"], s.completed - s.failed)
            total.add_metric([job_id, "failed"], s.failed)  # abandoned runs count as failures
        yield total

        durations: dict[str, list[float]] = defaultdict(list)
        lags: dict[str, list[float]] = defaultdict(list)
        in_progress: dict[tuple[str, str], int] = defaultdict(int)
        last_ok: dict[str, datetime] = {}
        for run in runs:
            if run.fire_at is not None:  # a manual run has no occurrence, so no fire lag
                lags[run.job_id].append(max(0.0, (run.claimed_at - run.fire_at).total_seconds()))
            if run.status in ("claimed", "running"):
                in_progress[(run.job_id, run.status)] += 1
            if run.duration_s is not None and run.status != "claimed":
                durations[run.job_id].append(run.duration_s)
            if run.status == "succeeded" and run.finished_at is not None:
                seen = last_ok.get(run.job_id)
                if seen is None or run.finished_at > seen:
                    last_ok[run.job_id] = run.finished_at

        progress = GaugeMetricFamily(
            "cronplan_runs_in_progress",
            "Runs claimed or running now.",
            labels=["job_id", "status"],
        )
        for (job_id, status), n in sorted(in_progress.items()):
            progress.add_metric([job_id, status], n)
        yield progress
        yield _histogram(
            "cronplan_run_duration_seconds",
            "How long runs took (runs still in the ledger).",
            durations,
            DURATION_BUCKETS,
        )
        yield _histogram(
            "cronplan_fire_lag_seconds",
            "Claim time minus fire_at: how late fires were claimed (runs still in the ledger).",
            lags,
            LAG_BUCKETS,
        )
        success = GaugeMetricFamily(
            "cronplan_last_success_timestamp_seconds",
            "When the latest successful run of the job finished (Unix time).",
            labels=["job_id"],
        )
        for job_id in sorted(last_ok):
            success.add_metric([job_id], last_ok[job_id].timestamp())
        yield success
        yield from self._arms()

    def _arms(self) -> Iterator[Metric]:
        from cronplan import schedule as sched

        try:
            arms = self.rt.provider.list_arms()
        except CronplanError:
            up = GaugeMetricFamily(
                "cronplan_provider_up", "1 when the provider's arms could be listed."
            )
            up.add_metric([], 0)
            yield up
            return
        try:
            jobs = self.rt.load_jobs().by_id()
        except CronplanError:
            jobs = {}
        now = self.clock()
        overdue = 0
        for arm in arms:
            job = jobs.get(arm.job_id)
            grace = sched.grace_seconds(job.schedule, arm.fire_at) if job is not None else 120.0
            if (now - arm.fire_at).total_seconds() > grace:
                overdue += 1
        up = GaugeMetricFamily(
            "cronplan_provider_up", "1 when the provider's arms could be listed."
        )
        up.add_metric([], 1)
        yield up
        live = GaugeMetricFamily("cronplan_arms_live", "Live arms at the provider.")
        live.add_metric([], len(arms))
        yield live
        late = GaugeMetricFamily(
            "cronplan_arms_overdue", "Live arms past fire_at beyond their grace window."
        )
        late.add_metric([], overdue)
        yield late


def _histogram(
    name: str, documentation: str, samples: dict[str, list[float]], buckets: Sequence[float]
) -> Metric:
    family = HistogramMetricFamily(name, documentation, labels=["job_id"])
    for job_id in sorted(samples):
        values = samples[job_id]
        counts = [(str(b), sum(1 for v in values if v <= b)) for b in buckets]
        counts.append(("+Inf", len(values)))
        family.add_metric([job_id], counts, sum_value=sum(values))
    return family


def render_metrics(rt: Project, *, clock: Callable[[], datetime]) -> tuple[bytes, str]:
    """The exposition text and its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(LedgerCollector(rt, clock=clock))
    return generate_latest(registry), CONTENT_TYPE_LATEST


__all__ = ["LedgerCollector", "render_metrics"]
