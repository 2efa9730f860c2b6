"""The ``worker`` process: one function (``create_app``) wires Faust, the hot path and the core.

Topology:

- ``api.requests`` -> batch consumer -> ``HotPath`` (decode, Engine, outputs,
  checkpoint) -> ``anomaly.alerts``, aggregates, scores, summaries, state changelog.
- ``distillwatch.summaries`` (one partition) -> Faust agent -> ``ClusterDetector``
  -> cluster alerts; its state lives in a Faust table (changelog-backed, values in files:
  ``tablestore``).
- ``anomaly.feedback`` -> read in full by every worker (a task) -> engine and clusters.
- web: ``/metrics`` (Prometheus), ``/livez``, ``/readyz``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from pipeline.clusters import ClusterDetector
from pipeline.clusterstate import ClusterState
from pipeline.detection import DetectionConfig
from pipeline.engine import Engine
from pipeline.linking import AccountSummary
from pipeline.logs import configure_logging
from pipeline.metrics import Metrics
from pipeline.processor import HotPath
from pipeline.settings import Settings

log = logging.getLogger("distillwatch.worker")


@dataclass
class FaustProducer:
    """Adapter from Faust's producer to the hot path's ``Producer``; remembers futures to check."""

    app: Any
    pending: list[asyncio.Future[Any]] = field(default_factory=list)

    async def send(self, topic: str, key: bytes | None, value: bytes, partition: int | None) -> Any:
        fut = await self.app.producer.send(topic, key, value, partition, None, None)
        self.pending.append(fut)
        return fut

    async def flush(self) -> None:
        await self.app.producer.flush()
        pending, self.pending = self.pending, []
        for fut in pending:
            if not fut.done():
                await fut
            exc = fut.exception()
            if exc is not None:  # never commit offsets past a message that was not written
                raise exc


def kafka_consumer_kwargs(s: Settings) -> dict[str, Any]:
    """aiokafka connection settings (security included) for auxiliary consumers."""
    kw: dict[str, Any] = dict(s.kafka_client_kwargs())
    ctx = s.ssl_context()
    if ctx is not None:
        kw["ssl_context"] = ctx
    return kw


async def read_partition(s: Settings, topic: str, partition: int | None) -> AsyncIterator[tuple[bytes, bytes]]:
    """Read a topic's partition (or all partitions) from the beginning to its current end."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(enable_auto_commit=False, group_id=None, **kafka_consumer_kwargs(s))
    await consumer.start()
    try:
        if partition is None:
            parts = await consumer._client.fetch_all_metadata()
            tps = [TopicPartition(topic, p) for p in (parts.partitions_for_topic(topic) or ())]
        else:
            tps = [TopicPartition(topic, partition)]
        if not tps:
            return
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        # Some brokers (Tansu) report the last batch's base offset + 1 as the end, so the
        # reported end is only a lower bound: read past it until a fetch comes back empty.
        end = await consumer.end_offsets(tps)
        while True:
            behind = [tp for tp in tps if await consumer.position(tp) < end[tp]]
            batch = await consumer.getmany(timeout_ms=1000 if behind else 200, max_records=10000)
            if not batch and not behind:
                return
            for records in batch.values():
                for rec in records:
                    if rec.value is not None:
                        yield rec.key or b"", rec.value
    finally:
        await consumer.stop()


def create_app(settings: Settings, metrics: Metrics | None = None) -> Any:
    """Build the Faust app with every agent, task, timer and web page of the worker."""
    import faust

    from pipeline.transport import DistillWatchApp

    s = settings
    metrics = metrics or Metrics()
    s.worker_data_dir.mkdir(parents=True, exist_ok=True)
    credentials = None
    if s.kafka_security_protocol != "PLAINTEXT":
        credentials = (
            faust.SASLCredentials(
                username=s.kafka_sasl_username,
                password=s.kafka_sasl_password.get_secret_value(),
                mechanism=s.kafka_sasl_mechanism,
                ssl_context=s.ssl_context(),
            )
            if s.kafka_security_protocol.startswith("SASL")
            else faust.SSLCredentials(s.ssl_context())
        )
    app = DistillWatchApp(
        s.app_id,
        broker=[f"kafka://{h.strip()}" for h in s.kafka_bootstrap.split(",")],
        broker_credentials=credentials,
        broker_rebalance_timeout=s.kafka_rebalance_timeout_s,
        broker_session_timeout=s.kafka_session_timeout_s,
        broker_heartbeat_interval=s.kafka_heartbeat_interval_s,
        broker_max_poll_records=s.worker_max_batch,
        broker_commit_interval=s.worker_commit_interval_s,
        topic_replication_factor=1,
        topic_partitions=s.kafka_partitions,
        store="memory://",
        datadir=str(s.worker_data_dir),
        web_port=s.worker_web_port,
        web_host="0.0.0.0",
        web_in_thread=False,
        producer_acks=-1,
        # Faust's default is 16 KB: a checkpoint's snapshots and the row batches (500 rows each)
        # went out in many small produce requests, and alerts queued behind them.
        producer_max_batch_size=512 * 1024,
    )
    app.fetch_max_wait_ms = s.worker_fetch_max_wait_ms
    config = DetectionConfig.from_settings(s)
    engine = Engine(config)
    clusters = ClusterDetector(config)
    producer = FaustProducer(app)

    async def commit(offsets: Any) -> bool:
        return bool(await app.batch_consumer.commit_offsets(offsets))

    hot = HotPath(s, engine, producer, commit, lambda p: read_partition(s, s.topic_state, p), metrics)
    app.set_batch_handler(frozenset({s.topic_requests}), hot.on_batch)  # type: ignore[arg-type]
    app.distillwatch = {"engine": engine, "clusters": clusters, "hot": hot, "metrics": metrics}  # type: ignore[attr-defined]

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def _revoked(sender: Any, revoked: set[Any], **_: Any) -> None:
        await hot.checkpoint()  # everything durable before anyone else reads our partitions

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def _assigned(sender: Any, assigned: set[Any], **_: Any) -> None:
        mine = {tp.partition for tp in assigned if tp.topic == s.topic_requests}
        await hot.on_revoked([p for p in hot.partitions if p not in mine])
        await hot.on_assigned(sorted(mine))

    summaries = app.topic(s.topic_summaries, partitions=1, key_serializer="raw", value_serializer="raw")

    # use_partitioner: the release timer writes outside stream iteration (one partition either way);
    # dwfiles: the snapshot's parts live in files, not in the heap (pipeline/tablestore.py)
    table = app.Table("cluster-state", partitions=1, key_type=bytes, value_type=bytes, use_partitioner=True,
                      store="dwfiles://tabledir")  # fmt: skip
    state = ClusterState(clusters, table, every_s=s.worker_commit_interval_s)

    @app.agent(summaries)
    async def cluster_agent(stream: Any) -> None:
        async for event in stream.noack().events():
            state.restore_once()
            offset = event.message.offset
            if state.should_skip(offset):
                state.hold(event)  # already applied: acked with the next snapshot, which covers it durably
            else:
                with state.applying(event, offset):
                    alerts = []
                    for item in orjson.loads(event.value):
                        alerts.extend(clusters.add_summary(AccountSummary.from_dict(item)))
                    await hot.send_alerts(alerts)
            state.maybe_snapshot()

    @app.timer(1.0)
    async def release_cluster_acks() -> None:
        # Held acks would block Faust's wait_empty (rebalance) and the summaries commit: once the
        # agent is quiet, or a rebalance starts, snapshot and ack what it holds.
        state.release(rebalancing=bool(app.rebalancing))

    @app.task
    async def feedback_reader() -> None:
        from pipeline.feedback import follow_feedback

        async for fb in follow_feedback(s):
            engine.apply_feedback(fb)
            clusters.apply_feedback(fb)

    @app.timer(s.worker_commit_interval_s)
    async def periodic_checkpoint() -> None:
        await hot.checkpoint()
        for tp, next_offset in hot.positions():
            highwater = app.consumer.highwater(tp)  # from the last fetch response; None before one
            if highwater is not None:
                metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(max(0, highwater - next_offset))

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        hot.count_accounts()
        return web.bytes(metrics.render(), content_type="text/plain; version=0.0.4")

    @app.page("/livez")
    async def livez(web: Any, request: Any) -> Any:
        return web.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        ready = app.consumer is not None and not app.rebalancing and bool(hot.partitions)
        return web.json({"ready": ready, "partitions": hot.partitions}, status=200 if ready else 503)

    return app


def run(args: argparse.Namespace, settings: Settings) -> int:
    """``distillwatch worker``: run until SIGTERM/SIGINT."""
    from faust import Worker

    from pipeline.compiled import summary
    from pipeline.tuning import preload, tune_gc, tune_malloc

    configure_logging(args.log_level)
    threshold = settings.worker_malloc_mmap_threshold
    if tune_malloc(threshold):  # before Faust starts its threads
        log.info("malloc: blocks of %d bytes and more are returned to the OS when freed", threshold)
    log.info("detection core: %s", summary())  # uncompiled (no C compiler at install): slower, README
    app = create_app(settings)
    preload()
    tune_gc()
    worker = Worker(app, loglevel=args.log_level, quiet=True, override_logging=False)
    worker.execute_from_commandline()
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("worker", help="consume api.requests, detect, produce alerts (Faust worker)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=run)


__all__ = ["create_app", "read_partition", "register"]
