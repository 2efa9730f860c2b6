"""Prometheus metrics of the worker and the sink, in a registry owned by the process (no globals)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


@dataclass
class Metrics:
    """Every metric DistillWatch exports; create one per process and pass it down."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.events_in = Counter("distillwatch_events_in", "Request events consumed", registry=r)
        self.events_valid = Counter("distillwatch_events_valid", "Request events accepted", registry=r)
        self.deadlettered = Counter(
            "distillwatch_deadlettered", "Messages sent to the dead-letter topic", ["reason"], registry=r
        )
        self.consumer_lag = Gauge(
            "distillwatch_consumer_lag", "High watermark minus next offset", ["topic", "partition"], registry=r
        )
        self.alerts = Counter(
            "distillwatch_alerts", "Alert messages produced", ["severity", "detector", "state"], registry=r
        )
        self.scores = Histogram(
            "distillwatch_score",
            "Calibrated account scores",
            buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
            registry=r,
        )
        self.accounts_tracked = Gauge("distillwatch_accounts_tracked", "Accounts in memory", registry=r)
        self.accounts_frozen = Gauge(
            "distillwatch_accounts_frozen", "Accounts in memory held compressed (idle)", registry=r
        )
        self.batch_seconds = Histogram(
            "distillwatch_batch_seconds", "Time to process one fetched batch", registry=r
        )
        self.checkpoint_seconds = Histogram(
            "distillwatch_checkpoint_seconds", "State flush + offset commit time", registry=r
        )
        self.sink_rows = Counter("distillwatch_sink_rows", "Rows written to ClickHouse", ["table"], registry=r)
        self.sink_batch_seconds = Histogram(
            "distillwatch_sink_batch_seconds", "ClickHouse insert latency per batch", ["table"], registry=r
        )
        self.sink_buffered_rows = Gauge("distillwatch_sink_buffered_rows", "Rows waiting for ClickHouse", registry=r)
        self.sink_failures = Counter("distillwatch_sink_failures", "Failed ClickHouse inserts", registry=r)

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)
