"""What one bot process tells Prometheus (``/metrics``), with prometheus-client.

Two kinds of figures:

- counted as they happen in this process: updates handled and their latency, messages sent,
  Telegram's 429 answers and the ``retry_after`` they asked for;
- read from the database when Prometheus scrapes (:func:`bot.services.status.system_status`):
  the outbox backlog by status and the age of its oldest due message, the people the bot can
  no longer reach, tickets past a deadline by the tier that owns them, each job's last run —
  the same in every process — and whether this process leads the scheduler.

Each :class:`Metrics` has its own registry (no process-wide global), so tests and several apps
in one process do not collide.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.services.jobs import JobStatus
from bot.services.status import SystemStatus

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
RETRY_AFTER_BUCKETS = (1, 2, 5, 10, 30, 60, 300, 3600)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.updates = Counter(
            "gridbot_updates",
            "Telegram updates handled by this process, by outcome (ok, error)",
            ["outcome"],
            registry=self.registry,
        )
        self.update_seconds = Histogram(
            "gridbot_update_seconds",
            "Time to handle one update, from its arrival to its commit",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.sends = Counter(
            "gridbot_outbox_sends",
            "Outbox rows settled (sent, failed, dropped) and attempts to be retried (retry)",
            ["result"],
            registry=self.registry,
        )
        self.too_many_requests = Counter(
            "gridbot_telegram_429",
            "429 Too Many Requests answers from the Bot API",
            registry=self.registry,
        )
        self.retry_after_seconds = Histogram(
            "gridbot_telegram_retry_after_seconds",
            "The retry_after of each 429 answer",
            buckets=RETRY_AFTER_BUCKETS,
            registry=self.registry,
        )
        self.shared = _SharedFigures()
        self.registry.register(self.shared)

    def render(self, status: SystemStatus | None, *, leading: bool | None) -> bytes:
        """The exposition text, with the shared figures as of ``status``."""
        self.shared.status, self.shared.leading = status, leading
        return generate_latest(self.registry)


class _SharedFigures(Collector):
    """Gauges from the last :class:`SystemStatus` read (set just before each scrape)."""

    def __init__(self) -> None:
        self.status: SystemStatus | None = None
        self.leading: bool | None = None

    def describe(self) -> list[Metric]:
        return []  # figures appear only once read; nothing to check for clashes up front

    def collect(self) -> Iterator[Metric]:
        if self.leading is not None:
            leader = GaugeMetricFamily(
                "gridbot_scheduler_leader", "1 if this process leads the scheduler, else 0"
            )
            leader.add_metric([], 1.0 if self.leading else 0.0)
            yield leader
        status = self.status
        if status is None:
            return
        backlog = GaugeMetricFamily(
            "gridbot_outbox_messages", "Outbox rows by status", labels=["status"]
        )
        for name, count in sorted(status.backlog.items()):
            backlog.add_metric([name], count)
        yield backlog
        oldest = GaugeMetricFamily(
            "gridbot_outbox_oldest_due_seconds",
            "How long the oldest message due to be sent has waited (0 when none waits)",
        )
        oldest.add_metric([], status.oldest_pending_seconds or 0.0)
        yield oldest
        unreachable = GaugeMetricFamily(
            "gridbot_unreachable_people", "Active people the bot can no longer reach"
        )
        unreachable.add_metric([], status.unreachable_count)
        yield unreachable
        overdue = GaugeMetricFamily(
            "gridbot_tickets_overdue",
            "Open tickets past their accept or resolve deadline, by the role that owns them",
            labels=["role"],
        )
        for role, count in sorted(status.overdue_by_role.items()):
            overdue.add_metric([str(role)], count)
        yield overdue
        seconds = GaugeMetricFamily(
            "gridbot_job_last_run_seconds",
            "How long each job's last finished run took",
            labels=["job"],
        )
        failed = GaugeMetricFamily(
            "gridbot_job_last_run_failed",
            "1 if the job's last run ended in an error",
            labels=["job"],
        )
        for job in status.jobs:
            if job.seconds is not None:
                seconds.add_metric([job.job_id], job.seconds)
                failed.add_metric([job.job_id], 1.0 if job.status == JobStatus.ERROR else 0.0)
        yield seconds
        yield failed
