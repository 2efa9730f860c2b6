"""Reliability harness: replay simulated traffic through a real ``LocalStack`` while injecting faults
(the truth it is compared with: ``groundtruth.py``).

Used by ``tests/test_reliability.py`` (CI-sized) and ``scripts/reliability_run.py`` (full size).

The replay is produced in chunks; between chunks a *fault plan* acts on the
running deployment: ``kill:NAME`` (SIGKILL a worker mid-stream and restart it),
``add:NAME`` / ``remove:NAME`` (grow and shrink the consumer group: rebalances),
``ch_down`` / ``ch_up`` (stop and restart clickhouse-server under the sink),
``broker_pause:SECONDS`` (SIGSTOP the Tansu broker, then SIGCONT). After the
last chunk the harness waits until every consumer group has committed
everything, then compares ClickHouse with the offline truth computed from the
same events in the same per-partition order:

- per-account ``sum(events)`` of ``account_minute_v`` == distinct valid event ids
  (``lost`` and ``doubled`` count the difference in each direction);
- the account alert messages ``(alert_id, version, state)`` in ClickHouse ==
  those of the detection core fed the same events (``Engine.add`` per partition):
  an extra message is a duplicate incident/update, a missing one is lost;
- cluster alerts (order-dependent across partitions, so not compared exactly)
  must have versions 1..n with exactly one ``open`` per incident.

Events are produced to an explicit partition (crc32 of the account id modulo
the partition count) so the offline truth knows each event's shard and order.
"""

from __future__ import annotations

import os
import signal
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import orjson

from pipeline.detection import DetectionConfig
from pipeline.errors import DistillWatchError
from pipeline.groundtruth import RunResult, check, offline_truth, partition_of, workload
from pipeline.settings import Settings
from pipeline.stack import LocalStack
from pipeline.store import Store, open_store

ACTIONS = ("kill", "add", "remove", "ch_down", "ch_up", "broker_pause")


class Producer:
    """kafka-python producer writing in order (one request in flight) to explicit partitions."""

    def __init__(self, s: Settings) -> None:
        from kafka import KafkaProducer

        self._p = KafkaProducer(
            max_in_flight_requests_per_connection=1, retries=20, acks=1, linger_ms=5,
            max_request_size=4 << 20, request_timeout_ms=60000, **s.kafka_client_kwargs(),
        )  # fmt: skip

    def send(self, topic: str, items: Iterable[tuple[bytes, bytes, int]]) -> None:
        futures = [self._p.send(topic, key=k, value=v, partition=p) for k, v, p in items]
        self._p.flush(120)
        for f in futures:
            f.get(0)  # raises if a message was not written: the harness never loses input silently

    def close(self) -> None:
        self._p.close()


def _wait_until(cond: Callable[[], bool], timeout_s: float, what: str, poll_s: float = 0.5) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise DistillWatchError(f"timed out waiting for {what}")
        time.sleep(poll_s)


def drain(stack: LocalStack, timeout_s: float) -> None:
    """Wait until workers committed the requests and summaries and the sink committed every output."""
    s = stack.settings
    stack.wait_drained(s.app_id, s.topic_requests, timeout_s)
    _wait_until(lambda: stack.group_lag(s.app_id, s.topic_summaries) == 0, timeout_s, "summaries")
    for topic in (s.topic_aggregates, s.topic_scores, s.topic_alerts):
        _wait_until(lambda t=topic: stack.group_lag(s.sink_group, t) == 0, timeout_s, f"sink on {topic}")  # type: ignore[misc]
        # the alerts of the cluster agent come after the summaries: check twice with a pause
    time.sleep(1.0)
    _wait_until(lambda: stack.group_lag(s.sink_group, s.topic_alerts) == 0, timeout_s, "sink on alerts")


@dataclass
class Faults:
    """Callables for the faults the harness cannot do by itself (the ClickHouse server is the caller's)."""

    ch_down: Callable[[], None] | None = None
    ch_up: Callable[[], None] | None = None


def run(
    settings: Settings,
    workdir: Path,
    n_events: int,
    plan: dict[int, list[str]],
    chunks: int = 10,
    faults: Faults | None = None,
    seed: int = 11,
    timeout_s: float = 300.0,
    log: Callable[[str], None] = lambda m: None,
    extra_messages: list[tuple[bytes, bytes]] | None = None,
) -> RunResult:
    """Replay ``n_events`` through a private broker + workers + sink with the fault ``plan``.

    ``plan`` maps a chunk index (the action runs right after that chunk was produced) to actions.
    ``extra_messages`` (key, raw value) are mixed into the stream (e.g. invalid ones).
    """
    faults = faults or Faults()
    t0 = time.monotonic()
    events = workload(n_events, seed)
    keys = [str(e["account_id"]) for e in events]
    values = [orjson.dumps(e) for e in events]
    if extra_messages:
        step = max(1, len(values) // (len(extra_messages) + 1))
        for j, (k, v) in enumerate(extra_messages):
            at = min(len(values), (j + 1) * step + j)
            keys.insert(at, k.decode())
            values.insert(at, v)
    config = DetectionConfig.from_settings(settings)
    P = settings.kafka_partitions
    truth = offline_truth(values, keys, P, config)
    log(f"workload: {len(values)} messages, {truth.valid} valid, {len(truth.events_per_account)} accounts, "
        f"{len({a for a, _, _ in truth.account_alerts})} offline incidents")  # fmt: skip
    result = RunResult(events=len(values))
    stack = LocalStack.create(settings, workdir, with_broker=True)
    s = stack.settings
    reader: Store | None = None
    producer: Producer | None = None
    paused_broker = False
    try:
        stack.start_sink()
        reader = stack.open_store() if s.clickhouse_mode == "embedded" else open_store(s)
        stack.start_worker("w1")
        producer = Producer(s)
        t_replay = time.monotonic()
        size = -(-len(values) // chunks)
        for c in range(chunks):
            lo, hi = c * size, min(len(values), (c + 1) * size)
            producer.send(
                s.topic_requests,
                ((keys[i].encode(), values[i], partition_of(keys[i], P)) for i in range(lo, hi)),
            )
            for action in plan.get(c, []):
                time.sleep(0.7)  # let the workers get into the chunk: the fault lands mid-processing
                name, _, arg = action.partition(":")
                if name == "kill":
                    lag = stack.group_lag(s.app_id, s.topic_requests)
                    stack.stop_worker(arg, kill=True)
                    stack.start_worker(arg)
                    result.faults.append(f"kill -9 {arg} (group lag {lag}) + restart")
                elif name == "add":
                    stack.start_worker(arg)
                    result.faults.append(f"add {arg}")
                elif name == "remove":
                    stack.stop_worker(arg)
                    result.faults.append(f"remove {arg}")
                elif name == "ch_down":
                    assert faults.ch_down is not None, "ch_down needs Faults.ch_down"
                    faults.ch_down()
                    result.faults.append("clickhouse down")
                elif name == "ch_up":
                    assert faults.ch_up is not None, "ch_up needs Faults.ch_up"
                    # make sure the outage was felt: the sink has outputs it could not write
                    deadline = time.monotonic() + 30
                    while (backlog := stack.group_lag(s.sink_group, s.topic_aggregates)) == 0:
                        if time.monotonic() > deadline:
                            break
                        time.sleep(0.5)
                    faults.ch_up()
                    result.faults.append(f"clickhouse up (sink backlog {backlog} messages)")
                    if reader is not None and s.clickhouse_mode == "server":
                        reader.close()
                        reader = open_store(s)
                elif name == "broker_pause":
                    assert stack.broker is not None
                    secs = float(arg or 5)
                    os.kill(stack.broker.pid, signal.SIGSTOP)
                    paused_broker = True
                    time.sleep(secs)
                    os.kill(stack.broker.pid, signal.SIGCONT)
                    paused_broker = False
                    result.faults.append(f"broker SIGSTOP {secs:.0f}s + SIGCONT")
                else:
                    raise ValueError(f"unknown action {action!r} (known: {ACTIONS})")
                log(f"chunk {c}: {result.faults[-1]}")
        t_drain = time.monotonic()
        drain(stack, timeout_s)
        result.seconds_drain = time.monotonic() - t_drain
        log(f"drained in {result.seconds_drain:.1f}s (replay {time.monotonic() - t_replay:.1f}s)")
        for name, proc in stack.workers.items():
            if proc.poll() is not None:
                result.notes.append(f"worker {name} exited with {proc.returncode}")
        stack.stop_sink()
        st = stack.sink_stats
        if st is not None:
            result.sink_retries, result.sink_pauses = st.retries, st.pauses
            result.sink_peak_buffer_rows = getattr(st, "peak_buffer_rows", 0)
        assert reader is not None
        check(reader, truth, result)
        from pipeline.stack import read_topic

        result.deadlettered = len(read_topic(s, s.topic_deadletter, idle_ms=1000))
        if result.accounts_wrong:  # lost where: never produced by a worker, or not written by the sink?
            best: dict[tuple[str, int], int] = {}
            for value in read_topic(s, s.topic_aggregates, idle_ms=1000):
                for row in orjson.loads(value):
                    mk = (row["account_id"], row["minute_ms"])
                    best[mk] = max(best.get(mk, 0), int(row["events"]))
            in_topic: dict[str, int] = defaultdict(int)
            for (a, _), n in best.items():
                in_topic[a] += n
            for i, note in enumerate(result.notes):
                if note.startswith("account "):
                    a = note.split()[1].rstrip(":")
                    where = f"partition {partition_of(a, P)}"
                    result.notes[i] = f"{note}, {in_topic.get(a, 0)} in the topic ({where})"
    finally:
        if paused_broker and stack.broker is not None:
            os.kill(stack.broker.pid, signal.SIGCONT)
        if producer is not None:
            producer.close()
        if reader is not None and s.clickhouse_mode == "server":
            reader.close()
        stack.close()
    result.seconds_total = time.monotonic() - t0
    return result


def table(results: list[tuple[str, RunResult]]) -> str:
    """A Markdown table of runs."""
    head = ("run", "events", "distinct", "counted", "lost", "doubled", "incidents (exp/got)",
            "alert msgs missing/extra", "cluster bad", "faults", "sink retries/pauses/peak rows",
            "seconds")  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in results:
        lines.append("| " + " | ".join(str(x) for x in (
            name, r.events, r.distinct_events, r.counted, r.lost, r.doubled,
            f"{r.incidents_expected}/{r.incidents_got}", f"{r.alert_msgs_missing}/{r.alert_msgs_extra}",
            r.cluster_incidents_bad, "; ".join(r.faults),
            f"{r.sink_retries}/{r.sink_pauses}/{r.sink_peak_buffer_rows}",
            f"{r.seconds_total:.0f}",
        )) + " |")  # fmt: skip
    return "\n".join(lines)


__all__ = ["Faults", "Producer", "drain", "run", "table"]

