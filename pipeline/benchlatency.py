"""Event-to-alert latency at a fixed offered load, measured on a live worker of its own."""

from __future__ import annotations

import asyncio
import time

import orjson

from pipeline.benchdata import BenchData
from pipeline.benchparts import worker_ready
from pipeline.settings import Settings
from pipeline.stack import LocalStack


async def _latency(s: Settings, data: BenchData, rate: int, seconds: float) -> list[float]:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    from pipeline.worker import kafka_consumer_kwargs

    kw = kafka_consumer_kwargs(s)
    # The instrument's own fetch wait must not count as latency (Tansu holds a fetch for the whole
    # fetch_max_wait_ms when no data is there yet: aiokafka's default 500 ms).
    consumer = AIOKafkaConsumer(s.topic_alerts, group_id=None, auto_offset_reset="latest", fetch_max_wait_ms=20,
                                **kw)  # fmt: skip
    producer = AIOKafkaProducer(linger_ms=5, **kw)
    await consumer.start()
    await producer.start()
    start_ms = int(time.time() * 1000)
    latencies: list[float] = []
    done = asyncio.Event()

    async def listen() -> None:
        while not done.is_set():
            batch = await consumer.getmany(timeout_ms=200)
            now = time.time() * 1000
            for records in batch.values():
                for rec in records:
                    alert = orjson.loads(rec.value)
                    end = _ms(alert["window_end"])
                    if end >= start_ms:
                        latencies.append((now - end) / 1000)

    listener = asyncio.create_task(listen())
    tick, sent, i = 0.05, 0, 0
    per_tick = max(1, int(rate * tick))
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        now_ms = int(time.time() * 1000)
        for _ in range(per_tick):
            key, value = data.items[i % len(data.items)]
            ev = orjson.loads(value)
            ev["ts"], ev["event_id"], ev["account_id"] = now_ms, f"lat-{i}", f"lat-{ev['account_id']}"
            await producer.send(s.topic_requests, orjson.dumps(ev), key=b"lat-" + (key or b""))
            i += 1
        sent += per_tick
        await asyncio.sleep(max(0.0, t0 + sent / rate - time.monotonic()))
    await producer.flush()
    await asyncio.sleep(3.0)  # let the last alerts arrive
    done.set()
    await listener
    await producer.stop()
    await consumer.stop()
    return latencies


def _ms(rfc3339: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(rfc3339).timestamp() * 1000)


def measure_latency(stack: LocalStack, data: BenchData, rate: int, seconds: float) -> dict[str, float]:
    """Event-to-alert latency at ``rate`` offered events/s (event ts = wall clock when produced).

    Measured on a live worker of its own (own request, state and summary topics, own group): the
    worker of the earlier phases replayed hours of simulated history, and its first live event
    would jump event time by years and age all of that out at once (a backfill artefact, not
    live operation). Every other worker is stopped first, so this one has the machine.
    """
    from pipeline.topics import ensure_topics

    for name in list(stack.workers):
        stack.stop_worker(name)
    live = {"topic_requests": "latbench.requests", "topic_state": "latbench.state",
            "topic_summaries": "latbench.summaries", "app_id": stack.settings.app_id + "-latency"}  # fmt: skip
    s = stack.settings.model_copy(update=live)
    ensure_topics(s)
    proc = stack.start_worker("latency", **live)
    deadline = time.monotonic() + 120
    while not worker_ready(proc.web_port):  # type: ignore[attr-defined]
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"latency worker did not become ready; see {stack.workdir}/latency.log")
        time.sleep(0.2)
    lat = sorted(asyncio.run(_latency(s, data, rate, seconds)))
    if not lat:
        return {"latency_alerts": 0.0, "latency_p50_s": float("nan"), "latency_p99_s": float("nan")}
    return {
        "latency_alerts": float(len(lat)),
        "latency_p50_s": lat[len(lat) // 2],
        "latency_p99_s": lat[min(len(lat) - 1, int(len(lat) * 0.99))],
    }
