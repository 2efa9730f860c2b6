"""The worker's hot path: decode a fetched batch, feed the core, ship outputs, checkpoint.

Durability protocol (at-least-once delivery, exactly-once effect):

1. ``on_batch`` decodes each record (bad ones, and ones stamped beyond ``max_future_skew_s``
   ahead of the wall clock, go to the dead-letter topic),
   calls ``Engine.add`` (O(1)) and ``Engine.advance`` once per batch, and
   enqueues the outputs (row batches, alerts) on the producer without waiting.
2. ``checkpoint`` (every ``worker_commit_interval_s`` and on revocation)
   enqueues a snapshot of every account changed since the last checkpoint to
   the state changelog, waits until the producer has flushed *everything*,
   and only then commits the next offset of each partition.

After a crash the partition restarts from the committed offset with the
latest snapshots; each account's snapshot carries the last offset it applied,
so the engine skips records it has already counted. Aggregate rows are
cumulative with a version, so re-emitted rows replace, never add.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

import orjson

from pipeline.alerts import Alert
from pipeline.chunks import Reassembler, split
from pipeline.contract import deadletter_record, future_horizon
from pipeline.engine import Engine
from pipeline.errors import InvalidEvent
from pipeline.metrics import Metrics
from pipeline.records import Outputs, encode_aggregates, encode_rows
from pipeline.settings import Settings
from pipeline.validation import decode_event

log = logging.getLogger("distillwatch.worker")

ROWS_PER_MESSAGE = 500  # ~350 KB per message: well under the 1 MB default request size
SNAPSHOT_CHUNK = 2000  # accounts dumped and sent between two batches in a periodic checkpoint


class Producer(Protocol):
    """What the hot path needs of a Kafka producer."""

    async def send(self, topic: str, key: bytes | None, value: bytes, partition: int | None) -> Any: ...

    async def flush(self) -> None: ...


class TopicPartition(Protocol):
    """A Kafka topic partition (Faust's TP)."""

    topic: str
    partition: int


Committer = Callable[[Mapping[Any, int]], Awaitable[bool]]
ChangelogReader = Callable[[int], AsyncIterator[tuple[bytes, bytes]]]


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("checkpoint failed", exc_info=task.exception())


class HotPath:
    """Owns the engine for this worker's partitions of the request topic."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        producer: Producer,
        commit: Committer,
        read_changelog: ChangelogReader,
        metrics: Metrics,
        wall_clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.s = settings
        self.engine = engine
        self.producer = producer
        self._commit = commit
        self._read_changelog = read_changelog
        self.metrics = metrics
        self._now_ms = wall_clock_ms
        self._next_offset: dict[Any, int] = {}
        self._watermark: dict[int, int] = {}
        self._ready: dict[int, asyncio.Event] = {}
        self._lock = asyncio.Lock()
        self._batch_done = asyncio.Event()  # clear while on_batch runs: checkpoint never sees half a batch
        self._batch_done.set()
        self._last_checkpoint = time.monotonic()
        self._checkpoint_task: asyncio.Task[None] | None = None

    @property
    def partitions(self) -> list[int]:
        """Partitions of the request topic this worker owns (restored or restoring)."""
        return sorted(self._ready)

    def positions(self) -> list[tuple[Any, int]]:
        """(topic partition, next offset to process) for every partition processed so far."""
        return list(self._next_offset.items())

    # ------------------------------------------------------------------ hot path
    async def on_batch(self, tp: TopicPartition, records: Sequence[Any]) -> None:
        """Process one fetched batch of one partition (called by the batch consumer)."""
        part = tp.partition
        ready = self._ready.get(part)
        if ready is None:  # not (or no longer) assigned to us: the next owner will read it
            return
        await ready.wait()
        self._batch_done.clear()
        t0 = time.perf_counter()
        add = self.engine.add
        wm = self._watermark.get(part, 0)
        bad: list[tuple[Any, InvalidEvent]] = []
        # One event stamped far in the future would move the partition's event-time clock there: every
        # idle account evicted, every later event late. The core has no wall clock; the worker does.
        skew = self.s.max_future_skew_s * 1000
        horizon = future_horizon(self._now_ms(), skew)
        for rec in records:
            try:
                ev = decode_event(rec.value if rec.value is not None else b"")
            except InvalidEvent as exc:
                bad.append((rec, exc))
                continue
            if ev.ts_ms > horizon:
                bad.append((rec, InvalidEvent("out_of_range", "ts", f"over {skew // 1000} s ahead of the wall clock")))
                continue
            add(ev, part, rec.offset)
            if ev.ts_ms > wm:
                wm = ev.ts_ms
        self._watermark[part] = wm
        self.engine.advance(part, wm)
        n = len(records)
        self.metrics.events_in.inc(n)
        self.metrics.events_valid.inc(n - len(bad))
        for rec, err in bad:
            await self._deadletter(tp, rec, err)
        await self._ship(self.engine.take_outputs())
        self._next_offset[tp] = records[-1].offset + 1
        self._batch_done.set()
        self.metrics.batch_seconds.observe(time.perf_counter() - t0)
        if time.monotonic() - self._last_checkpoint >= self.s.worker_commit_interval_s:
            self._checkpoint_beside()

    def _checkpoint_beside(self) -> None:
        """Start a periodic checkpoint as a task of its own: it dumps accounts between the batches
        that follow. A failed checkpoint is logged at once and raised by the next batch."""
        task = self._checkpoint_task
        if task is not None:
            if not task.done():
                return
            self._checkpoint_task = None
            task.result()  # a failed checkpoint stops the worker here, loudly (replay from the last commit)
        self._checkpoint_task = asyncio.create_task(self.checkpoint())
        self._checkpoint_task.add_done_callback(_log_failure)

    async def _deadletter(self, tp: TopicPartition, rec: Any, exc: InvalidEvent) -> None:
        raw = rec.value if rec.value is not None else b""
        value = deadletter_record(raw, exc, tp.topic, tp.partition, rec.offset)
        await self.producer.send(self.s.topic_deadletter, rec.key, value, None)
        self.metrics.deadlettered.labels(exc.reason).inc()
        log.warning(
            "dead-lettered message",
            extra={"topic": tp.topic, "partition": tp.partition, "offset": rec.offset, "reason": exc.reason},
        )

    async def _ship(self, out: Outputs) -> None:
        """Enqueue outputs on the producer (no waiting for acks: checkpoint waits)."""
        send = self.producer.send
        aggs, scores = out.aggregates, out.scores
        for i in range(0, len(aggs), ROWS_PER_MESSAGE):
            await send(self.s.topic_aggregates, None, encode_aggregates(aggs[i : i + ROWS_PER_MESSAGE]), None)
        for i in range(0, len(scores), ROWS_PER_MESSAGE):
            await send(self.s.topic_scores, None, encode_rows(scores[i : i + ROWS_PER_MESSAGE]), None)
        for i in range(0, len(out.summaries), ROWS_PER_MESSAGE):
            chunk = orjson.dumps(out.summaries[i : i + ROWS_PER_MESSAGE])  # dataclasses, natively
            await send(self.s.topic_summaries, None, chunk, 0)  # one partition: one order
        await self.send_alerts(out.alerts)
        for row in out.scores:
            self.metrics.scores.observe(row.score)

    async def send_alerts(self, alerts: Iterable[Alert]) -> None:
        """Produce alerts in the contract's shape, keyed by subject."""
        now = self._now_ms()
        for alert in alerts:
            value = orjson.dumps(alert.to_dict(now))
            await self.producer.send(self.s.topic_alerts, alert.subject_id.encode(), value, None)
            self.metrics.alerts.labels(alert.severity, alert.detector, alert.state).inc()

    # ------------------------------------------------------------------ durability
    async def checkpoint(self, partitions: Iterable[int] | None = None) -> None:
        """Snapshot changed accounts, flush every produced message, then commit offsets.

        A periodic checkpoint (``partitions`` None) dumps and sends the accounts ``SNAPSHOT_CHUNK``
        at a time between batches, so the hot path never stalls for the whole state and at most one
        chunk of snapshots is held: each account is taken as it is then, which covers at least the
        offsets captured at the start (the ones committed) and, after a crash, a replay skips what
        it already holds. A revocation checkpoint takes everything at once.
        """
        async with self._lock:
            t0 = time.perf_counter()
            await self._between_batches()
            parts = list(self._ready) if partitions is None else list(partitions)
            # never snapshot a partition whose restore is still running (it would overwrite the shard record)
            parts = [p for p in parts if p in self._ready and self._ready[p].is_set()]
            offsets = {tp: off for tp, off in self._next_offset.items() if tp.partition in parts}
            # Outputs first: a snapshot must never reach the changelog before the aggregates and
            # alerts of the events it covers (after a crash those events are skipped, not re-emitted).
            # Every dump is taken between batches, after its events' outputs were enqueued, and the
            # flush before its send makes them durable.
            # A revocation takes everything at once, before the partitions move; a periodic
            # checkpoint takes the shard records now and the accounts in chunks below.
            take = self.engine.begin_checkpoint if partitions is None else self.engine.dirty_snapshots
            head = [(p, key, blob) for p in parts for key, blob in take(p)]
            await self.producer.flush()
            await self._send_state(head)
            if partitions is None:
                for part in parts:
                    await self._send_accounts_chunked(part)
            await self.producer.flush()
            if offsets:
                await self._commit(offsets)
            self._last_checkpoint = time.monotonic()
            self.metrics.checkpoint_seconds.observe(time.perf_counter() - t0)

    def count_accounts(self) -> None:
        """Set the held-accounts gauges to the engine's counts now (each ``/metrics`` scrape: the
        event loop's thread, between batches; a gauge set at checkpoints was up to one interval old)."""
        self.metrics.accounts_tracked.set(self.engine.accounts_tracked())
        self.metrics.accounts_frozen.set(self.engine.accounts_frozen())

    async def _send_accounts_chunked(self, part: int) -> None:
        """Dump and send the queued accounts of ``part``, ``SNAPSHOT_CHUNK`` at a time between batches."""
        while True:
            await asyncio.sleep(0)
            await self._between_batches()  # no await from here to the dump below
            chunk = self.engine.checkpoint_accounts(part, SNAPSHOT_CHUNK)
            if not chunk:
                return
            await self.producer.flush()
            await self._send_state([(part, key, blob) for key, blob in chunk])

    async def _send_state(self, snaps: list[tuple[int, str, bytes]]) -> None:
        for part, account_id, blob in snaps:
            for key, chunk in split(account_id, blob):
                await self.producer.send(self.s.topic_state, key.encode(), chunk, part)

    async def _between_batches(self) -> None:
        """Return when no batch is half-way (its state changed but its outputs not yet enqueued)."""
        while not self._batch_done.is_set():
            await self._batch_done.wait()

    async def on_assigned(self, partitions: Iterable[int]) -> None:
        """Restore the state of newly assigned partitions from the changelog before processing them."""
        # Register every new partition before the first (slow) restore: a batch of a partition still
        # waiting for its restore must wait (on_batch), not be taken for someone else's and dropped.
        new = [part for part in partitions if part not in self._ready]
        for part in new:
            self._ready[part] = asyncio.Event()
        for part in new:
            event = self._ready[part]
            restored, parts = 0, Reassembler()
            async for key, blob in self._read_changelog(part):
                whole = parts.feed(key.decode(), blob)
                if whole is not None:
                    self.engine.restore(part, *whole)
                    restored += 1
            log.info("partition assigned", extra={"partition": part, "restored_accounts": restored})
            event.set()

    async def on_revoked(self, partitions: Iterable[int]) -> None:
        """Checkpoint revoked partitions, then forget their state (the new owner restores it)."""
        parts = [p for p in partitions if p in self._ready]
        if not parts:
            return
        await self.checkpoint(parts)
        for part in parts:
            self.engine.drop_shard(part)
            del self._ready[part]
            self._watermark.pop(part, None)
            for tp in [tp for tp in self._next_offset if tp.partition == part]:
                del self._next_offset[tp]
        log.info("partitions revoked", extra={"partitions": parts})
