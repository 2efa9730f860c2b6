"""Issue 5, "nothing lost, nothing doubled": faults injected into the real pipeline.

Every test replays simulated traffic through a private Tansu broker, real worker
processes and the real sink writing to the session's clickhouse-server (18.16),
injects faults mid-replay, waits until every consumer group committed
everything, and compares ClickHouse with the offline truth (distinct valid
event ids per account; the account alerts of the core fed the same events in
the same per-partition order). See ``pipeline/reliability.py`` and
docs/reliability.md; the full-size run is ``python scripts/reliability_run.py``.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from pipeline.reliability import Faults, RunResult, run, table
from pipeline.settings import Settings, load_settings

pytestmark = pytest.mark.integration


def _settings(ch: Any, partitions: int = 4, **over: Any) -> Settings:
    tag = uuid.uuid4().hex[:8]
    base: dict[str, Any] = dict(
        kafka_partitions=partitions, app_id=f"dw-rel-{tag}", sink_group=f"sink-rel-{tag}",
        clickhouse_mode="server", clickhouse_host=ch.host, clickhouse_port=ch.tcp_port,
        clickhouse_database=f"dw_rel_{tag}", worker_commit_interval_s=0.5,
        sink_flush_interval_s=0.3, sink_batch_rows=5000, sink_max_buffer_rows=20000,
        **{n: f"t{tag}.{n.removeprefix('topic_')}" for n in Settings.model_fields if n.startswith("topic_")},
    )  # fmt: skip
    base.update(over)
    return load_settings(**base)


def _assert_exact(r: RunResult, name: str) -> None:
    print("\n" + table([(name, r)]))
    assert not r.notes, r.notes
    assert r.counted == r.distinct_events and r.lost == 0 and r.doubled == 0 and r.accounts_wrong == 0, r
    assert r.incidents_expected > 0, "the workload must raise alerts for the comparison to mean something"
    assert r.alert_msgs_missing == 0 and r.alert_msgs_extra == 0, r
    assert r.incidents_got == r.incidents_expected and r.cluster_incidents_bad == 0, r


def test_worker_kill9_and_rebalance_mid_replay(clickhouse_server: Any, tmp_path: Path) -> None:
    """SIGKILL a worker twice mid-replay (restarted), add then remove a second one: exactly once."""
    s = _settings(clickhouse_server)
    plan = {1: ["kill:w1"], 2: ["add:w2"], 4: ["kill:w1"], 6: ["remove:w2"]}
    r = run(s, tmp_path, 20_000, plan, chunks=8, timeout_s=90)
    _assert_exact(r, "kill -9 x2 + rebalance")
    assert sum(f.startswith("kill") for f in r.faults) == 2


def test_clickhouse_outage_mid_replay(clickhouse_server: Any, tmp_path: Path) -> None:
    """clickhouse-server stopped while workers keep producing outputs: the sink retries with
    backoff, holds at most a bounded number of rows (Kafka keeps the backlog), loses nothing."""
    s = _settings(clickhouse_server, sink_batch_rows=2000, sink_max_buffer_rows=4000)
    plan = {1: ["ch_down"], 5: ["ch_up"]}
    r = run(s, tmp_path, 20_000, plan, chunks=8,
            faults=Faults(clickhouse_server.stop, clickhouse_server.start), timeout_s=90)  # fmt: skip
    _assert_exact(r, "clickhouse outage")
    assert r.sink_retries >= 1, "the outage must have been felt by the sink"
    backlog = int(r.faults[-1].split("backlog ")[1].split()[0])
    assert backlog > 0, r.faults
    # bounded memory: one batch plus one poll's worth, never the whole backlog
    assert r.sink_peak_buffer_rows <= s.sink_max_buffer_rows + 5000 * 500, r.sink_peak_buffer_rows


def test_broker_sigstop_mid_replay(clickhouse_server: Any, tmp_path: Path) -> None:
    """SIGSTOP the broker for 8 s mid-replay, then SIGCONT: workers and sink recover by themselves."""
    s = _settings(clickhouse_server)
    plan = {2: ["broker_pause:8"]}
    r = run(s, tmp_path, 20_000, plan, chunks=6, timeout_s=90)
    _assert_exact(r, "broker SIGSTOP 8s")


def test_reliability_run_ci_size(clickhouse_server: Any, tmp_path: Path) -> None:
    """Issue 5's reliability run at CI size: 3 worker kills, a rebalance and one ClickHouse outage."""
    s = _settings(clickhouse_server)
    plan = {0: ["add:w2"], 1: ["kill:w1"], 2: ["ch_down"], 3: ["kill:w2"], 4: ["ch_up"], 5: ["kill:w1"],
            6: ["remove:w2"]}  # fmt: skip
    r = run(s, tmp_path, 25_000, plan, chunks=8,
            faults=Faults(clickhouse_server.stop, clickhouse_server.start), timeout_s=90)  # fmt: skip
    _assert_exact(r, "CI reliability run")
    assert sum(f.startswith("kill") for f in r.faults) == 3
