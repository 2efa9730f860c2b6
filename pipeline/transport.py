"""A small Faust driver that hands the hot topic to a batch handler.

Stock Faust wraps every message in an Event, a stream iteration and a
``wait_first`` of four Tasks (~70-190 µs per message, ~5,000 events/s). For
the request topic that is the whole budget, so this driver overrides one
method of Faust's aiokafka consumer, ``_drain_messages``: records of *batch
topics* go, one list per partition per fetch, straight to an async handler;
every other topic (summaries, tables' changelogs) takes Faust's normal path.

The consumer thread also bounds the fetch long-poll (``FetchWaitConsumerThread``).
Faust keeps everything else: app and worker lifecycle, the consumer group and
rebalancing (the handler is told through ``app.on_partitions_revoked`` /
``on_partitions_assigned``), flow control, tables, agents and the web server.
Offsets of batch topics are committed by the handler (``commit_offsets``)
only after the state they cover is durable; Faust's own ack-based commit
never sees them (they are never tracked as Faust messages).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, cast

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

BatchHandler = Callable[[TP, Sequence[Any]], Awaitable[None]]


class FetchWaitConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread with the fetch long-poll bounded by the app's ``fetch_max_wait_ms``.

    Faust hard-codes 1,500 ms. A broker without long-poll wake-ups (Tansu) then holds a
    caught-up worker's fetch that long: events waited up to 1.5 s before detection saw them.
    """

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = cast(DistillWatchApp, self.app).fetch_max_wait_ms  # read at start()
        return consumer


class BatchConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with batch delivery for the topics in ``batch_topics``."""

    batch_topics: frozenset[str] = frozenset()
    batch_handler: BatchHandler | None = None

    def _new_consumer_thread(self) -> FetchWaitConsumerThread:
        return FetchWaitConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _drain_messages(self, fetcher: Any) -> None:  # noqa: C901 - mirrors Faust's loop
        callback = self.callback
        consumer_stopped = cast(Any, self)._stopped.is_set
        fetcher_stopped = cast(Any, fetcher)._stopped.is_set
        read_offset = self._read_offset
        batch_topics = self.batch_topics
        handler = self.batch_handler
        to_message = self._to_message
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                records, _active = await self._wait_next_records(1.0)
                await asyncio.sleep(0)
                if not records or self.should_stop:
                    continue
                for tp, batch in records.items():
                    if not batch:
                        continue
                    if tp.topic in batch_topics and handler is not None:
                        # Shielded: Faust cancels this loop when it stops the fetcher (rebalances,
                        # table recovery); a batch cut in half would leave state that covers events
                        # whose outputs were never sent. The handler always runs to its end.
                        await asyncio.shield(handler(tp, batch))
                        read_offset[tp] = batch[-1].offset
                        continue
                    for record in batch:  # Faust's normal per-message path
                        r_offset = read_offset[tp]
                        if r_offset is None or record.offset >= r_offset:
                            message = to_message(tp, record)
                            await callback(message)
                            read_offset[tp] = record.offset
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise

    async def commit_offsets(self, offsets: Mapping[TP, int]) -> bool:
        """Commit ``offsets`` (next offset to read) for batch-topic partitions still assigned."""
        assignment = self.assignment()
        mine = {tp: off for tp, off in offsets.items() if tp in assignment}
        if not mine:
            return False
        ok = await self._commit(mine)
        if ok:
            self._committed_offset.update(mine)
        return ok


class BatchTransport(faust_aiokafka.Transport):
    """The aiokafka transport, with ``BatchConsumer`` as its consumer class."""

    Consumer = BatchConsumer


class DistillWatchApp(faust.App):
    """A Faust app whose transport delivers batch topics in batches."""

    _batch_topics: frozenset[str] = frozenset()
    _batch_handler: BatchHandler | None = None
    fetch_max_wait_ms = 1500  # Faust's own value; ``create_app`` sets DW_WORKER_FETCH_MAX_WAIT_MS

    def _new_transport(self) -> Any:
        return BatchTransport(self.conf.broker_consumer, self)

    def _new_consumer(self) -> Any:
        consumer = cast(BatchConsumer, super()._new_consumer())
        consumer.batch_topics = self._batch_topics
        consumer.batch_handler = self._batch_handler
        return consumer

    def set_batch_handler(self, topics: frozenset[str], handler: BatchHandler) -> None:
        """Route ``topics`` to ``handler`` instead of Faust streams (call before the consumer exists)."""
        self._batch_topics = topics
        self._batch_handler = handler
        for name in topics:
            self.topics.add(self.topic(name, value_serializer="raw", key_serializer="raw"))

    @property
    def batch_consumer(self) -> BatchConsumer:
        """The running consumer, typed."""
        return cast(BatchConsumer, self.consumer)
