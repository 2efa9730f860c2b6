"""Rows the detection core hands to the sink (through Kafka), one dataclass per ClickHouse table.

Rows travel batched: one Kafka message holds a JSON array of row objects
(``encode_rows``), so the per-message cost is paid once per batch, not per row.
All times are event time in epoch milliseconds; no prompt text, no raw IPs.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from pipeline.alerts import Alert
    from pipeline.linking import AccountSummary


@dataclass(slots=True)
class AggregateRow:
    """Per-account per-minute totals, cumulative within the minute.

    ``version`` is the number of events counted so far in that minute: a
    re-emitted row after a crash or replay carries the same or a higher
    version, so ClickHouse ``ReplacingMergeTree(version)`` keeps exactly one
    row holding every event once.
    """

    account_id: str
    minute_ms: int
    version: int
    events: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    errors: int = 0  # status >= 500
    throttled: int = 0  # status == 429
    cot_events: int = 0
    tool_events: int = 0
    novel_prompts: int = 0  # simhash not near any recent simhash of the account
    latency_ms_sum: float = 0.0
    category_counts: list[int] = field(default_factory=lambda: [0] * 10)  # contract.CATEGORIES order
    models: list[str] = field(default_factory=list)  # distinct, at most 8


@dataclass(slots=True)
class ScoreRow:
    """One scoring of one account: the score, the features behind it, and its infrastructure.

    ``ip_prefixes`` are network prefixes (/24 IPv4, /48 IPv6), never addresses.
    """

    account_id: str
    ts_ms: int
    score: float
    severity: str  # "" when below the alert threshold
    detector: str
    feature_names: list[str]
    feature_values: list[float]
    baseline_values: list[float]
    contributions: list[float]
    org_id: str = ""
    ip_prefixes: list[str] = field(default_factory=list)
    asns: list[int] = field(default_factory=list)
    user_agents: list[str] = field(default_factory=list)
    payment_fingerprints: list[str] = field(default_factory=list)
    top_templates: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    cluster_id: str = ""


@dataclass(slots=True)
class Outputs:
    """Everything the core produced since the previous ``Engine.take_outputs``."""

    alerts: list[Alert] = field(default_factory=list)
    aggregates: list[AggregateRow] = field(default_factory=list)
    scores: list[ScoreRow] = field(default_factory=list)
    summaries: list[AccountSummary] = field(default_factory=list)


@dataclass(slots=True)
class FeedbackRow:
    """An analyst's verdict: ``true_positive``, ``false_positive`` or ``allowlist``."""

    verdict: str
    account_id: str = ""
    alert_id: str = ""
    analyst: str = ""
    note: str = ""
    ts_ms: int = 0


VERDICTS = ("true_positive", "false_positive", "allowlist")


def encode_rows(rows: list[AggregateRow] | list[ScoreRow] | list[FeedbackRow]) -> bytes:
    """One Kafka message value carrying many rows (orjson serializes dataclasses natively, ~18x asdict)."""
    return orjson.dumps(rows)


AGGREGATE_FIELDS = tuple(f.name for f in fields(AggregateRow))
_AGGREGATE_VALUES = attrgetter(*AGGREGATE_FIELDS)


def encode_aggregates(rows: list[AggregateRow]) -> bytes:
    """``AggregateRow`` batches as positional arrays in ``AGGREGATE_FIELDS`` order.

    The aggregates topic carries most of the sink's rows: without the keys a row
    takes less than half the bytes, and the sink builds no dict per row.

    >>> encode_aggregates([AggregateRow("a", 60_000, 2, events=2, models=["m"])])[:30]
    b'[["a",60000,2,2,0,0,0,0,0,0,0,'
    """
    return orjson.dumps(list(map(_AGGREGATE_VALUES, rows)))


def decode_rows(value: bytes) -> list[dict[str, object]]:
    """Inverse of ``encode_rows`` (dicts, ready for columnar insertion)."""
    rows = orjson.loads(value)
    if not isinstance(rows, list):
        raise ValueError("row batch must be a JSON array")
    return rows
