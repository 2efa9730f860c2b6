"""The offline driver of the detection core: ``evaluate`` and ``bench`` replay files through it.

``OfflineRunner`` wires an ``Engine`` and a ``ClusterDetector`` exactly as the worker does (one
partition, offsets = line numbers, outputs drained every ``drain_every`` events), so a replayed
file gives the alerts the live stream gives.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from pipeline.alerts import Alert
from pipeline.clusters import ClusterDetector
from pipeline.contract import Event
from pipeline.detection import DetectionConfig
from pipeline.engine import Engine
from pipeline.records import Outputs


class OfflineRunner:
    """Engine + ClusterDetector wired exactly like the worker (one partition, offsets = line numbers)."""

    def __init__(self, config: DetectionConfig, drain_every: int = 4096) -> None:
        self.engine = Engine(config)
        self.clusters = ClusterDetector(config)
        self.drain_every = drain_every
        self.n = 0

    def feed(self, event: Event, offset: int) -> list[Alert]:
        self.engine.add(event, 0, offset)
        self.n += 1
        return self.drain() if self.n % self.drain_every == 0 else []

    def drain(self) -> list[Alert]:
        self.engine.discard_changes()  # no changelog offline
        return self.route(self.engine.take_outputs())

    def route(self, out: Outputs) -> list[Alert]:
        """The account alerts of ``out``, then the cluster alerts its summaries raise (the cluster
        agent's order)."""
        alerts = list(out.alerts)
        for s in out.summaries:
            alerts.extend(self.clusters.add_summary(s))
        return alerts

    def finish(self) -> list[Alert]:
        """Flush: one final tick past the last event so overdue accounts are scored."""
        clock = self.engine.clock(0)
        if clock is not None:
            self.engine.advance(0, clock + self.engine.config.max_score_gap_ms)
        return self.drain()


def run_offline(events: Iterable[Event], config: DetectionConfig) -> Iterator[Alert]:
    """Replay events (in order) through the core; yields alerts as the worker would emit them."""
    r = OfflineRunner(config)
    for i, ev in enumerate(events):
        yield from r.feed(ev, i)
    yield from r.finish()
