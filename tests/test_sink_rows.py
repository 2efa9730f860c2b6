"""The sink's pure half: message -> columns conversion and the buffer's flush/commit contract."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import pytest

from pipeline.errors import StoreUnavailable
from pipeline.records import AggregateRow, FeedbackRow, ScoreRow, encode_aggregates, encode_rows
from pipeline.sink_rows import DECODERS, SinkBuffer


class RecordingStore:
    """Stands in for ClickHouse in these unit tests only: records inserts, can be told to fail."""

    database = "unit"

    def __init__(self) -> None:
        self.inserted: dict[str, list[dict[str, Any]]] = {}
        self.fail = False

    def insert(self, table: str, columns: Mapping[str, Sequence[Any]]) -> int:
        if self.fail:
            raise StoreUnavailable("down")
        rows = [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]
        self.inserted.setdefault(table, []).extend(rows)
        return len(rows)


def test_aggregate_conversion_spreads_categories() -> None:
    row = AggregateRow("a", 1_700_000_040_000, 4, events=4, category_counts=[1, 2, 0, 0, 0, 0, 0, 0, 0, 1],
                       models=["m"])  # fmt: skip
    cols = DECODERS["account_minute"](encode_rows([row]))
    assert cols["minute"] == [1_700_000_040] and cols["n_coding"] == [2] and cols["n_other"] == [1]
    assert cols["models"] == [("m",)] and cols["version"] == [4]


def test_aggregates_travel_positionally_and_older_keyed_rows_still_decode() -> None:
    row = AggregateRow("a", 1_700_000_040_000, 4, events=4, input_tokens=9, latency_ms_sum=2.5,
                       category_counts=[1, 2, 0, 0, 0, 0, 0, 0, 0, 1], models=["m", "n"])  # fmt: skip
    positional, keyed = encode_aggregates([row]), encode_rows([row])
    assert orjson.loads(positional)[0][:4] == ["a", 1_700_000_040_000, 4, 4] and len(positional) < len(keyed) / 2
    decode = DECODERS["account_minute"]
    assert decode(positional) == decode(keyed)
    assert decode(positional)["models"] == [("m", "n")] and decode(positional)["input_tokens"] == [9]


@pytest.mark.parametrize(
    "row",
    [["a", 60_000, 1], ["a", 60_000, "1", 1, 0, 0, 0, 0, 0, 0, 0, 0.0, [0] * 10, []],
     ["a", 60_000, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0.0, [0] * 9, []],
     ["a", 60_000, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0.0, [0] * 10, [7]],
     ["a", 60_000, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0.0, [0] * 10, "m"]],
)  # fmt: skip
def test_malformed_positional_aggregates_are_rejected(row: list[Any]) -> None:
    with pytest.raises((ValueError, TypeError)):
        DECODERS["account_minute"](orjson.dumps([row]))


def test_sealed_buffer_takes_rows_and_offsets() -> None:
    buf = SinkBuffer(batch_rows=10, flush_interval_s=60.0, clock=lambda: 0.0)
    buf.add("account_minute", DECODERS["account_minute"](encode_aggregates([AggregateRow("a", 60_000, 1)])),
            "agg", 0, 7)  # fmt: skip
    sealed = buf.seal()
    assert buf.rows == 0 and not buf.due() and buf.flush(RecordingStore()) == {}
    store = RecordingStore()
    assert sealed.rows == 1 and sealed.flush(store) == {("agg", 0): 8}
    assert [r["account_id"] for r in store.inserted["account_minute"]] == ["a"]


def test_score_and_feedback_conversion() -> None:
    score = ScoreRow(
        "a", 1_700_000_001_500, 0.7, "high", "hst", ["f"], [1.0], [0.5], [0.2], ip_prefixes=["10.0.0.0/24"]
    )
    cols = DECODERS["account_scores"](encode_rows([score]))
    assert cols["ts"] == [1_700_000_001] and cols["ip_prefixes"] == [["10.0.0.0/24"]]
    fb = DECODERS["feedback"](encode_rows([FeedbackRow("allowlist", account_id="a", ts_ms=2000)]))
    assert fb["verdict"] == ["allowlist"] and fb["ts"] == [2]


@pytest.mark.parametrize(
    "value",
    [b"not json", b"{}", b"[1]", orjson.dumps([{"account_id": "a"}]),
     b'[{"x": 1}]',
     encode_rows([AggregateRow("a", 60_000, "7", category_counts=[0] * 10)])],  # type: ignore[arg-type]
)  # fmt: skip
def test_malformed_batches_are_rejected(value: bytes) -> None:
    with pytest.raises((ValueError, TypeError, KeyError)):
        DECODERS["account_minute"](value)


def test_buffer_commits_only_after_every_table_is_inserted() -> None:
    clock = [0.0]
    buf = SinkBuffer(batch_rows=3, flush_interval_s=1.0, clock=lambda: clock[0])
    store = RecordingStore()
    buf.add(
        "account_minute",
        DECODERS["account_minute"](encode_rows([AggregateRow("a", 60_000, 1)])),
        "agg",
        0,
        10,
    )
    buf.add("feedback", DECODERS["feedback"](encode_rows([FeedbackRow("true_positive", "a")])), "fb", 1, 4)
    buf.skip("agg", 0, 11)
    assert buf.rows == 2 and not buf.due()
    clock[0] = 1.5
    assert buf.due()
    store.fail = True
    with pytest.raises(StoreUnavailable):
        buf.flush(store)
    assert buf.rows == 2  # nothing lost
    store.fail = False
    assert buf.flush(store) == {("agg", 0): 12, ("fb", 1): 5}
    assert buf.rows == 0 and len(store.inserted["account_minute"]) == 1 and not buf.due()


def test_buffer_due_on_size() -> None:
    buf = SinkBuffer(batch_rows=2, flush_interval_s=60.0, clock=lambda: 0.0)
    rows = [AggregateRow("a", 60_000, 1), AggregateRow("b", 60_000, 1)]
    buf.add("account_minute", DECODERS["account_minute"](encode_rows(rows)), "agg", 0, 0)
    assert buf.due()
