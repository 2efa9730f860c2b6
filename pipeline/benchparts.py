"""The measurements ``bench`` makes; each returns plain numbers (events/s, rows/s, seconds, bytes)."""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from pipeline.settings import Settings
from pipeline.stack import LagProbe, LocalStack

if TYPE_CHECKING:
    from pipeline.offline import OfflineRunner

SPLIT = 20  # account ids per simulated actor in the benchmark data


@dataclass
class BenchData:
    """The events of one benchmark, serialized once: (account key, JSON value)."""

    items: list[tuple[bytes | None, bytes]]
    accounts: int
    distinct_events: int


def _split_account(ev: dict[str, Any], k: int) -> dict[str, Any]:
    """Account ``k`` of an actor: its own id, address and fingerprints (so splits do not look linked)."""
    ev = {**ev, "account_id": f"{ev['account_id']}.{k}"}
    client = dict(ev.get("client") or {})
    if k and "ip" in client and "." in client["ip"]:
        a, b, c, d = client["ip"].split(".")
        client["ip"] = f"{a}.{(int(b) + k // 256) % 256}.{(int(c) + 7 * k) % 256}.{d}"
        client["user_agent"] = f"{client.get('user_agent', '')} s{k}"
    ev["client"] = client
    if k and ev.get("payment_fingerprint"):
        ev["payment_fingerprint"] = f"{ev['payment_fingerprint']}{k:x}"
    prompt = dict(ev.get("prompt") or {})
    if k and prompt.get("template_hash"):
        prompt["template_hash"] = f"{prompt['template_hash']}{k:x}"
    ev["prompt"] = prompt
    return ev


def _split_for(actor_of: list[str], keys: list[int], accounts: int) -> int:
    """The smallest split (account ids per actor) giving >= ``accounts`` active ids (doubling, then bisection)."""

    def active(split: int) -> int:
        return len({(a, k % split) for a, k in zip(actor_of, keys, strict=True)})

    lo, hi = 1, 1
    while active(hi) < accounts:
        if hi >= 4096:
            return hi
        lo, hi = hi, hi * 2
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if active(mid) < accounts else (lo, mid)
    return hi


def make_data(events: int, accounts: int, seed: int, progress: bool = True) -> BenchData:
    """``events`` simulated events with ``accounts`` (or more) active accounts (the simulator's mix of families)."""
    from tqdm import tqdm

    from pipeline.simulate import SimConfig, generate

    # The simulator's actors follow daily rhythms, so a short window holds few active accounts:
    # simulate 1/SPLIT of the accounts, then give each actor's traffic as many account ids (by event
    # id hash) as it takes for ``accounts`` distinct ids to be active among ``events`` events.
    actors = max(100, accounts // SPLIT)
    pilot = SimConfig(seed=seed, accounts=min(actors, 400), hours=1.0)
    per_actor_hour = max(1.0, sum(1 for _ in generate(pilot)) / pilot.accounts)
    hours = 1.15 * events / (actors * per_actor_hour)
    raw: list[dict[str, Any]] = []
    bar = tqdm(total=events, desc="simulating", unit="ev", disable=not progress, mininterval=0.5)
    for ev in generate(SimConfig(seed=seed, accounts=actors, hours=hours)):
        raw.append(ev)
        bar.update(1)
        if len(raw) >= events:
            break
    bar.close()
    keys = [zlib.crc32(str(ev["event_id"]).encode()) for ev in raw]
    split = _split_for([str(ev["account_id"]) for ev in raw], keys, accounts)
    items: list[tuple[bytes | None, bytes]] = []
    seen: set[str] = set()
    for ev, key in zip(raw, keys, strict=True):
        ev = _split_account(ev, key % split)  # a copy: the simulator yields a retried event's dict twice
        acct = str(ev["account_id"])
        items.append((acct.encode(), orjson.dumps(ev)))
        seen.add(acct)
    return BenchData(items, len(seen), len({str(ev["event_id"]) for ev in raw}))


async def measure_ceiling(s: Settings, n: int) -> float:
    """events/s of a bare aiokafka getmany + orjson + per-account count loop over the loaded topic."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from pipeline.worker import kafka_consumer_kwargs

    consumer = AIOKafkaConsumer(enable_auto_commit=False, group_id=None, max_partition_fetch_bytes=8 << 20,
                                fetch_max_bytes=64 << 20, **kafka_consumer_kwargs(s))  # fmt: skip
    await consumer.start()
    try:
        tps = [TopicPartition(s.topic_requests, p) for p in range(s.kafka_partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        counts: dict[str, int] = {}
        seen = 0
        loads = orjson.loads
        t0 = time.perf_counter()
        while seen < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=20000)
            for records in batch.values():
                for rec in records:
                    acct = loads(rec.value)["account_id"]
                    counts[acct] = counts.get(acct, 0) + 1
                seen += len(records)
        return seen / (time.perf_counter() - t0)
    finally:
        await consumer.stop()


def measure_offline(s: Settings, data: BenchData, runner: OfflineRunner | None = None) -> float:
    """events/s of the detection core alone (decode + engine), as ``evaluate`` drives it
    (into ``runner`` when given, so a caller can inspect the state it leaves)."""
    import river.anomaly  # noqa: F401  (imported by the first shard; not part of the measurement)

    from pipeline.contract import decode_event
    from pipeline.detection import DetectionConfig
    from pipeline.offline import OfflineRunner
    from pipeline.tuning import tune_gc

    tune_gc()
    if runner is None:
        runner = OfflineRunner(DetectionConfig.from_settings(s))
    feed = runner.feed
    t0 = time.perf_counter()
    for offset, (_, value) in enumerate(data.items):
        feed(decode_event(value), offset)
    runner.finish()
    return len(data.items) / (time.perf_counter() - t0)


def _metric(port: int, name: str) -> float:
    """A metric of the worker; 0 while its web server does not answer (busy or starting)."""
    return _answered_metric(port, name) or 0.0


def _answered_metric(port: int, name: str) -> float | None:
    """A metric of the worker; None while its web server does not answer."""
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    except OSError:
        return None
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def _ready(port: int) -> bool:
    """The worker answers /readyz with 200 (its partitions are assigned and restored)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (Linux /proc), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def measure_worker(stack: LocalStack, data: BenchData, timeout_s: float = 900.0) -> dict[str, float]:
    """The worker process end to end, first event consumed -> every event's aggregate visible."""
    s = stack.settings
    store = stack.open_store()
    stack.start_sink()
    proc = stack.start_worker("bench")
    port = proc.web_port  # type: ignore[attr-defined]
    rss_base, t0 = 0, 0.0
    deadline = time.monotonic() + timeout_s
    while not t0:
        try:
            # the baseline is the last reading before the first event was consumed (started, River
            # loaded, partitions assigned): what grows after it is the state of the accounts
            rss_before = rss_bytes(proc.pid)
            consumed = _answered_metric(port, "distillwatch_events_in_total")
            if consumed:
                t0 = time.monotonic()
            elif consumed is not None:
                rss_base = rss_before
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"worker did not start consuming; see {stack.workdir}/bench.log")
        time.sleep(0.02)
    # The exact count (argMax per key over the whole table) grows with the table: polled every 0.1 s
    # it competed for CPU with the worker it measures. It runs only once the worker has consumed
    # every event and the raw sum (one column; never below the exact one) reached the total.
    raw_sql = f"SELECT sum(events) FROM {s.clickhouse_database}.account_minute"
    sql = f"SELECT sum(events) FROM {s.clickhouse_database}.account_minute_v"
    last_log = time.monotonic()
    counted = consumed = next_metric = 0.0
    while True:
        raw = store.query(raw_sql)[1][0][0] or 0
        if consumed < len(data.items) and time.monotonic() >= next_metric:  # every 0.5 s: /metrics costs the worker
            consumed, next_metric = _metric(port, "distillwatch_events_in_total"), time.monotonic() + 0.5
        if raw >= data.distinct_events and consumed >= len(data.items):
            counted = store.query(sql)[1][0][0] or 0
        if counted >= data.distinct_events:
            t1 = time.monotonic()
            break
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"only {counted}/{data.distinct_events} events counted; see {stack.workdir}")
        if time.monotonic() - last_log > 10:
            print(f"  worker consumed {consumed:,.0f}, ClickHouse holds {raw:,}/{data.distinct_events:,}")
            last_log = time.monotonic()
        time.sleep(0.1)
    tracked = _metric(port, "distillwatch_accounts_tracked") or data.accounts
    rss = rss_bytes(proc.pid)
    alerts = store.query(f"SELECT count() FROM {s.clickhouse_database}.alerts")[1][0][0]
    return {
        "worker_events_per_s": len(data.items) / (t1 - t0),
        "worker_seconds": t1 - t0,
        "events_counted_in_clickhouse": float(counted),
        "alert_messages_in_clickhouse": float(alerts),
        "worker_rss_mb": rss / 2**20,
        "state_bytes_per_account": (rss - rss_base) / tracked,
    }


def aggregate_messages(rows: int, batch: int = 500) -> list[bytes]:
    """``rows`` realistic per-account-minute rows, ``batch`` per Kafka message (as the worker sends them)."""
    from pipeline.records import AggregateRow, encode_aggregates

    base = int(time.time()) // 60 * 60_000
    out = []
    for start in range(0, rows, batch):
        out.append(encode_aggregates([
            AggregateRow(
                account_id=f"acct-{i % 20000:06d}", minute_ms=base + (i // 20000) * 60_000, version=i % 97 + 1,
                events=i % 97 + 1, input_tokens=900 * (i % 7), output_tokens=400 * (i % 5), errors=i % 3,
                latency_ms_sum=123.5 * (i % 11), category_counts=[i % 4, 1, 0, 2, 0, 0, 0, 1, 0, 3],
                models=["m-large-1", "m-large-2"][: 1 + i % 2],
            )
            for i in range(start, min(rows, start + batch))
        ]))  # fmt: skip
    return out


def measure_sink(stack: LocalStack, rows: int, timeout_s: float = 600.0) -> dict[str, float]:
    """rows/s of the real sink (Kafka consumer, decode, ClickHouse insert, commit) over a loaded backlog."""
    from pipeline.replay import produce_values
    from pipeline.sink import run_sink
    from pipeline.topics import ensure_topics

    stack.stop_sink()
    base = stack.settings
    s = base.model_copy(update={
        "sink_group": base.sink_group + "-bench",
        **{f"topic_{t}": f"sinkbench.{t}" for t in ("aggregates", "scores", "alerts", "feedback")},
    })  # fmt: skip
    ensure_topics(s)
    values = aggregate_messages(rows)
    asyncio.run(produce_values(s, s.topic_aggregates, ((None, v) for v in values), progress=False))
    stop = threading.Event()
    stats: list[Any] = []
    thread = threading.Thread(target=lambda: stats.append(run_sink(s, stop, store=stack.open_store())))
    probe = LagProbe(s, s.sink_group, s.topic_aggregates)  # one client, polled: little CPU next to the sink
    try:
        backlog = probe.lag()
        started = time.monotonic()
        thread.start()
        # From the first commit (the group has joined and one batch is in) to the last: the rows
        # committed in between are the backlog left at the first commit, in messages of ROWS each.
        t0, left = 0.0, 0
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            lag = probe.lag()
            if not t0 and lag < backlog:
                t0, left = time.monotonic(), lag
            if lag == 0:
                break
            time.sleep(0.1)
        t1 = time.monotonic()
    finally:
        probe.close()
    stop.set()
    thread.join(60)
    written = sum(stats[0].rows.values()) if stats else 0
    if not left:  # a tiny backlog went in one commit: time it from the start (group join included)
        return {"sink_rows": float(written), "sink_rows_per_s": written / max(1e-9, t1 - started)}
    timed_rows = written * left / max(1, backlog)
    return {"sink_rows": float(written), "sink_rows_per_s": timed_rows / max(1e-9, t1 - t0)}


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
    while not _ready(proc.web_port):  # type: ignore[attr-defined]
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
