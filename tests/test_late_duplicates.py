"""Issue 5: gateway retries counted once; out-of-order and late events, through the REAL pipeline.

One scripted sequence (one partition, so its order is the order the worker sees) goes through a
private topic set on the session's Tansu broker, a worker process, the sink and the session's
clickhouse-server (18.16), with ``DW_ALLOWED_LATENESS_S=120`` and the default 60 s score
interval. ``account_minute_v`` must then hold exactly the per-minute counts the policy of
``pipeline/engine.py`` gives (docs/reliability.md, "Duplicates, out-of-order and late events"),
and the core fed the same sequence in-process must agree and count the late ones in
``Engine.late``. Minute ``k`` below is ``M(k) = T0 + k * 60 s``; the partition's clock is the
largest event time seen so far.
"""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

import orjson
import pytest

from pipeline.detection import DetectionConfig
from pipeline.engine import Engine
from pipeline.reliability import Producer, drain
from pipeline.settings import Settings, load_settings
from pipeline.stack import LocalStack, read_topic
from pipeline.validation import event_from_dict

pytestmark = pytest.mark.integration
T0 = 1_790_000_000_000 - 1_790_000_000_000 % 60_000
LATENESS_S = 120


def M(k: int, s: float = 0.0) -> int:
    """Event time ``s`` seconds into minute ``k``."""
    return T0 + k * 60_000 + int(s * 1000)


def _ev(eid: str, account: str, ts: int) -> dict[str, Any]:
    return {
        "event_id": eid, "ts": ts, "account_id": account, "model": "frontier-2", "status": 200,
        "input_tokens": 10, "output_tokens": 20, "client": {"ip": "198.51.100.7"},
    }  # fmt: skip


def sequence() -> list[dict[str, Any]]:
    """The scripted partition order (see the expected table in ``EXPECTED``)."""
    seq: list[dict[str, Any]] = []
    # gateway retries: the same event re-sent 2-6 events later (same bytes)
    dup = [_ev(f"dup-{i}", "dup", M(0, i)) for i in range(1, 11)]
    for i, ev in enumerate(dup, start=1):
        seq.append(ev)
        if i == 4:
            seq.append(dup[1])
        if i == 8:
            seq.append(dup[4])
        if i == 10:
            seq.append(dup[0])
    # out of order within the lateness, into minutes the account has used: counted in their minute
    seq += [_ev("o1", "ooo", M(0, 5)), _ev("o2", "ooo", M(1, 5)), _ev("o3", "ooo", M(2, 5)),
            _ev("o4", "ooo", M(1, 30)), _ev("o5", "ooo", M(0, 40))]  # fmt: skip
    # stamped a day ahead of the worker's clock: dead-lettered by the worker (DW_MAX_FUTURE_SKEW_S);
    # were it applied, the partition clock would jump a day and every event below would be late
    seq.append(_ev("f1", "future", int(time.time() * 1000) + 86_400_000))
    # within the lateness, into a minute the account had NOT used (gap): counted in a bucket of its own
    seq += [_ev("g1", "gap", M(1, 10)), _ev("g2", "gap", M(3, 10)), _ev("g3", "gap", M(2, 20))]
    # later than the lateness
    seq += [_ev("l1", "late", M(3, 15)), _ev("l2", "late", M(4, 15))]
    seq += [_ev(f"c{k}", "clock", M(k)) for k in (5, 6, 7, 8)]  # clock -> M(8): minutes < M(5) forgotten
    seq += [_ev("l3", "late", M(3, 20)),  # behind the current minute, minute forgotten: not counted
            _ev("l4", "late", M(4, 30)),  # 4 min behind the clock but the account's current minute: counted
            _ev("l5", "late", M(5, 30))]  # newer minute but behind clock - lateness: not counted  # fmt: skip
    seq += [_ev("h1", "held", M(7, 5)), _ev("h2", "held", M(8, 5)), _ev("c9", "clock", M(9, 50)),
            _ev("h3", "held", M(7, 40))]  # 130 s behind the clock but its minute still held: counted  # fmt: skip
    # a retry arriving after more than 16 newer events of the same account (within seconds: caught)
    d16 = [_ev(f"d16-{i}", "dup16", M(9, 51) + i * 100) for i in range(18)]
    seq += d16 + [d16[0]]
    return seq


# (account, minute index) -> events the policy counts in account_minute_v
EXPECTED = {
    ("dup", 0): 10,
    ("ooo", 0): 2, ("ooo", 1): 2, ("ooo", 2): 1,
    ("gap", 1): 1, ("gap", 2): 1, ("gap", 3): 1,
    ("late", 3): 1, ("late", 4): 2,
    ("clock", 5): 1, ("clock", 6): 1, ("clock", 7): 1, ("clock", 8): 1, ("clock", 9): 1,
    ("held", 7): 2, ("held", 8): 1,
    ("dup16", 9): 18,
}  # fmt: skip
LATE_IDS = {"o4", "o5", "g3", "l3", "l5", "h3"}  # the events Engine.late counts


def _settings(bootstrap: str, ch: Any) -> Settings:
    tag = uuid.uuid4().hex[:8]
    return load_settings(
        kafka_bootstrap=bootstrap, kafka_partitions=1, app_id=f"dw-late-{tag}", sink_group=f"sink-late-{tag}",
        clickhouse_mode="server", clickhouse_host=ch.host, clickhouse_port=ch.tcp_port,
        clickhouse_database=f"dw_late_{tag}", worker_commit_interval_s=0.5, sink_flush_interval_s=0.3,
        allowed_lateness_s=LATENESS_S,
        **{n: f"t{tag}.{n.removeprefix('topic_')}" for n in Settings.model_fields if n.startswith("topic_")},
    )  # fmt: skip


@pytest.fixture(scope="module")
def late_settings(broker: str, clickhouse_server: Any) -> Settings:
    return _settings(broker, clickhouse_server)


@pytest.fixture(scope="module")
def counted(late_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int], int]:
    """(account, minute index) -> events in account_minute_v after the sequence went through."""
    s = late_settings
    seq = sequence()
    with LocalStack.create(s, tmp_path_factory.mktemp("late"), with_broker=False) as stack:
        stack.start_sink()
        stack.start_worker("w1")
        producer = Producer(stack.settings)
        try:
            producer.send(s.topic_requests, ((e["account_id"].encode(), orjson.dumps(e), 0) for e in seq))
        finally:
            producer.close()
        drain(stack, 90)
        stack.stop_sink()
        store = stack.open_store()
        _, rows = store.query(
            f"SELECT account_id, toUnixTimestamp(minute), events FROM {store.database}.account_minute_v"
        )
    return {(a, (int(m) * 1000 - T0) // 60_000): int(n) for a, m, n in rows}


def test_core_policy_matches_the_table() -> None:
    """The core alone, same order: the expected table, and Engine.late / duplicates as documented."""
    engine = Engine(DetectionConfig.from_settings(load_settings(allowed_lateness_s=LATENESS_S)))
    seq = [d for d in sequence() if d["account_id"] != "future"]  # the worker dead-letters it first
    for i, d in enumerate(seq):
        engine.add(event_from_dict(d), 0, i)
    got = {}
    for r in engine.take_outputs().aggregates:
        got[(r.account_id, (r.minute_ms - T0) // 60_000)] = r.events
    assert got == EXPECTED
    assert engine.late == len(LATE_IDS)
    assert engine.duplicates == 4  # the three retries of "dup" and the retry of dup16


def test_event_from_the_future_is_deadlettered(counted: dict[tuple[str, int], int], late_settings: Settings) -> None:
    """Dead-lettered with a reason, never counted; the table above holds (the clock did not jump)."""
    s = late_settings
    dead = [orjson.loads(v) for v in read_topic(s, s.topic_deadletter, idle_ms=2000)]
    assert [(d["reason"], d["field"]) for d in dead] == [("out_of_range", "ts")]
    assert orjson.loads(base64.b64decode(dead[0]["original_b64"]))["event_id"] == "f1"
    assert not [k for k in counted if k[0] == "future"]


def test_retries_counted_once(counted: dict[tuple[str, int], int]) -> None:
    assert counted[("dup", 0)] == 10  # 13 messages, 10 distinct event ids


def test_out_of_order_within_lateness_counted_in_their_minute(counted: dict[tuple[str, int], int]) -> None:
    assert {k: v for k, v in counted.items() if k[0] == "ooo"} == {("ooo", 0): 2, ("ooo", 1): 2, ("ooo", 2): 1}


def test_later_than_lateness_policy(counted: dict[tuple[str, int], int]) -> None:
    """Beyond the lateness an event is counted only in a minute bucket the account still holds."""
    assert {k: v for k, v in counted.items() if k[0] == "late"} == {("late", 3): 1, ("late", 4): 2}
    assert {k: v for k, v in counted.items() if k[0] == "held"} == {("held", 7): 2, ("held", 8): 1}
    assert counted == EXPECTED  # the whole table, nothing else anywhere


def test_gap_minute_within_lateness_is_counted(counted: dict[tuple[str, int], int]) -> None:
    """Within the lateness into a minute the account had no event in: that minute gets its own row."""
    assert counted.get(("gap", 2)) == 1


def test_retry_after_16_newer_events_counted_once(counted: dict[tuple[str, int], int]) -> None:
    """A fast account's retry after 17 newer events, 1.7 s later: its ring of recent ids had grown."""
    assert counted[("dup16", 9)] == 18
