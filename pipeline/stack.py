"""A whole DistillWatch deployment on one machine: Tansu broker, worker processes, sink thread.

The demo, the benchmark and the reliability tests all drive this, so what
they measure is the real path: separate worker processes talking to a real
Kafka-protocol broker, and the real sink writing to ClickHouse.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.broker import free_port, start_tansu, stop_process, wait_port
from pipeline.errors import DistillWatchError
from pipeline.settings import Settings
from pipeline.store import Store, apply_schema, open_store
from pipeline.topics import ensure_topics


class LagProbe:
    """Repeated lag queries of one consumer group over one client (cheap enough to poll often)."""

    def __init__(self, settings: Settings, group: str, topic: str) -> None:
        from kafka import KafkaConsumer, TopicPartition

        self._consumer = KafkaConsumer(group_id=group, enable_auto_commit=False, **settings.kafka_client_kwargs())
        self._tps = [TopicPartition(topic, p) for p in self._consumer.partitions_for_topic(topic) or ()]

    def lag(self) -> int:
        end = true_end_offsets(self._consumer, self._tps)
        return sum(end[tp] - (self._consumer.committed(tp) or 0) for tp in self._tps)

    def close(self) -> None:
        self._consumer.close(autocommit=False)


@dataclass
class LocalStack:
    """Start pieces on demand; ``close`` stops everything that was started."""

    settings: Settings
    workdir: Path
    broker: subprocess.Popen[bytes] | None = None
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    store: Store | None = None
    _sink_stop: threading.Event = field(default_factory=threading.Event)
    _sink_thread: threading.Thread | None = None
    sink_stats: Any = None

    @classmethod
    def create(cls, settings: Settings, workdir: Path, with_broker: bool = True) -> LocalStack:
        """A stack rooted at ``workdir``; starts a fresh in-memory Tansu broker unless told not to."""
        workdir.mkdir(parents=True, exist_ok=True)
        stack = cls(settings.model_copy(update={"sink_web_port": free_port()}), workdir)
        if with_broker:
            port = free_port()
            stack.broker = start_tansu(port, workdir / "tansu.log", binary_path=settings.tansu_bin)
            wait_port("127.0.0.1", port, 30.0)
            stack.settings = stack.settings.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{port}"})
        ensure_topics(stack.settings)
        return stack

    def start_worker(
        self, name: str = "w1", log_level: str = "warning", **overrides: Any
    ) -> subprocess.Popen[bytes]:
        """Start ``distillwatch worker`` as its own process (logs in workdir/NAME.log)."""
        s = self.settings.model_copy(
            update={"worker_web_port": free_port(), "worker_data_dir": self.workdir / name, **overrides}
        )
        env = {**os.environ, **s.to_env()}
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "worker", "--log-level", log_level],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        proc.web_port = s.worker_web_port  # type: ignore[attr-defined]
        self.workers[name] = proc
        return proc

    def stop_worker(self, name: str, kill: bool = False) -> None:
        """Stop a worker gracefully (SIGTERM) or crash it (``kill=True``: SIGKILL)."""
        proc = self.workers.pop(name)
        if kill:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        else:
            stop_process(proc, 20.0)

    def open_store(self) -> Store:
        """The ClickHouse store of these settings, schema applied (one per stack)."""
        if self.store is None:
            self.store = open_store(self.settings)
            apply_schema(self.store)
        return self.store

    def start_sink(self) -> None:
        """Run the sink in a thread sharing this stack's store (chdb allows one store per process)."""
        from pipeline.sink import run_sink

        store = self.open_store()

        def target() -> None:
            self.sink_stats = run_sink(self.settings, self._sink_stop, store=store)

        self._sink_thread = threading.Thread(target=target, name="sink", daemon=True)
        self._sink_thread.start()

    def stop_sink(self) -> None:
        """Ask the sink to flush, commit and stop; wait for it."""
        if self._sink_thread is not None:
            self._sink_stop.set()
            self._sink_thread.join(60)
            self._sink_thread = None
            self._sink_stop = threading.Event()

    def group_lag(self, group: str, topic: str) -> int:
        """Messages of ``topic`` not yet committed by consumer group ``group``."""
        probe = LagProbe(self.settings, group, topic)
        try:
            return probe.lag()
        finally:
            probe.close()

    def wait_drained(self, group: str, topic: str, timeout_s: float, poll_s: float = 0.5) -> float:
        """Block until ``group`` has committed everything in ``topic``; returns when it happened."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self.group_lag(group, topic) == 0:
                return time.monotonic()
            for name, proc in self.workers.items():
                if proc.poll() is not None:
                    raise DistillWatchError(f"worker {name} exited with {proc.returncode}; see {self.workdir}")
            if time.monotonic() > deadline:
                raise DistillWatchError(f"{group} did not drain {topic} within {timeout_s:.0f}s")
            time.sleep(poll_s)

    def close(self) -> None:
        """Stop workers, sink, store and broker (in that order)."""
        for name in list(self.workers):
            self.stop_worker(name)
        self.stop_sink()
        if self.store is not None:
            self.store.close()
            self.store = None
        if self.broker is not None:
            stop_process(self.broker)
            self.broker = None

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def true_end_offsets(consumer: Any, tps: list[Any]) -> dict[Any, int]:
    """End offsets, read past the reported ones: Tansu reports the last batch's base offset + 1."""
    end = consumer.end_offsets(tps)
    consumer.assign(tps)
    for tp in tps:
        consumer.seek(tp, max(0, end[tp] - 1))
    while batch := consumer.poll(timeout_ms=300):
        for tp, records in batch.items():
            end[tp] = max(end[tp], records[-1].offset + 1)
    return end


def read_topic(s: Settings, topic: str, idle_ms: int = 1500) -> list[bytes]:
    """Every message value currently in ``topic`` (from the beginning, until ``idle_ms`` of silence)."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic, auto_offset_reset="earliest", enable_auto_commit=False, group_id=None,
        consumer_timeout_ms=idle_ms, **s.kafka_client_kwargs(),
    )  # fmt: skip
    try:
        return [rec.value for rec in consumer if rec.value is not None]
    finally:
        consumer.close()
