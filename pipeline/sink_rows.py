"""The sink's pure half: Kafka message values -> columnar batches, and the per-table buffer.

No Kafka and no ClickHouse here, so it is tested directly. A message value is
converted as soon as it arrives (a malformed value is rejected there, alone),
and appended column by column to its table's buffer. ``SinkBuffer.flush``
inserts every non-empty table and only then reports the offsets that are safe
to commit: a failed insert keeps the rows, and the offsets stay uncommitted.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from datetime import datetime
from itertools import chain
from operator import itemgetter
from typing import Any, Protocol

import orjson

from pipeline.contract import CATEGORIES
from pipeline.records import AGGREGATE_FIELDS

Columns = dict[str, list[Any]]


class Inserter(Protocol):
    """The part of ``pipeline.store.Store`` the buffer needs."""

    def insert(self, table: str, columns: Columns) -> int: ...


_AGG_INTS = ("version", "events", "input_tokens", "output_tokens", "errors", "throttled",
             "cot_events", "tool_events", "novel_prompts")  # fmt: skip
_SCORE_LISTS = ("feature_names", "feature_values", "baseline_values", "contributions", "ip_prefixes",
                "asns", "user_agents", "payment_fingerprints", "top_templates", "models")  # fmt: skip


def _seconds(value: object) -> int:
    """RFC 3339 string or epoch milliseconds -> epoch seconds."""
    if isinstance(value, str):
        return int(datetime.fromisoformat(value).timestamp())
    return int(value) // 1000  # type: ignore[call-overload]


_INT: set[type] = {int}
_STR: set[type] = {str}
_NUM: set[type] = {int, float}


def _typed(name: str, column: tuple[Any, ...] | list[Any], allowed: set[type]) -> list[Any]:
    """``column`` as a list, after checking every value's type at C speed (one set of types)."""
    if not set(map(type, column)) <= allowed:
        raise ValueError(f"{name}: values of type {sorted(t.__name__ for t in set(map(type, column)))}")
    return list(column)


def aggregates_columns(rows: list[Any]) -> Columns:
    """AggregateRow rows -> columns of ``account_minute`` (category counts spread to n_*).

    Rows are positional arrays in ``AGGREGATE_FIELDS`` order (``encode_aggregates``) or,
    from workers before that format, objects keyed by field. Every field is required;
    types are checked per column, at C speed.
    """
    if not rows:
        return {}
    if isinstance(rows[0], list):
        if set(map(len, rows)) != {len(AGGREGATE_FIELDS)} or not set(map(type, rows)) <= {list}:
            raise ValueError(f"aggregate rows must be arrays of {len(AGGREGATE_FIELDS)} fields")
        fields = list(zip(*rows, strict=True))
    else:
        fields = list(zip(*map(itemgetter(*AGGREGATE_FIELDS), rows), strict=True))
    cols: Columns = {"account_id": _typed("account_id", fields[0], {str}),
                     "minute": [ms // 1000 for ms in _typed("minute_ms", fields[1], _INT)]}  # fmt: skip
    for i, k in enumerate(_AGG_INTS, start=2):
        cols[k] = _typed(k, fields[i], _INT)
    cols["latency_ms_sum"] = _typed("latency_ms_sum", fields[-3], _NUM)
    counts = _typed("category_counts", fields[-2], {list})
    if set(map(len, counts)) != {len(CATEGORIES)}:
        raise ValueError(f"category_counts must have {len(CATEGORIES)} entries")
    for cat, column in zip(CATEGORIES, zip(*counts, strict=True), strict=True):
        cols[f"n_{cat}"] = _typed("category_counts", column, _INT)
    # Tuples of strings are untracked by the GC, lists are not: keeps big buffers cheap to collect.
    cols["models"] = list(map(tuple, _typed("models", fields[-1], {list})))
    if not set(map(type, chain.from_iterable(cols["models"]))) <= _STR:
        raise ValueError("models must be strings")
    return cols


def scores_columns(rows: list[dict[str, Any]]) -> Columns:
    """ScoreRow dicts -> columns of ``account_scores``."""
    cols: Columns = {
        "account_id": [str(r["account_id"]) for r in rows],
        "ts": [int(r["ts_ms"]) // 1000 for r in rows],
        "score": [float(r["score"]) for r in rows],
        "severity": [str(r.get("severity", "")) for r in rows],
        "detector": [str(r.get("detector", "")) for r in rows],
        "org_id": [str(r.get("org_id", "")) for r in rows],
        "cluster_id": [str(r.get("cluster_id", "")) for r in rows],
    }
    for k in _SCORE_LISTS:
        cols[k] = [list(r.get(k) or ()) for r in rows]
    return cols


def alert_columns(alert: dict[str, Any]) -> Columns:
    """One contract alert object -> a one-row batch of ``alerts``."""
    reasons = list(alert.get("reasons") or ())
    row: dict[str, Any] = {k: alert[k] for k in ("alert_id", "state", "subject_kind", "subject_id",
                                                   "severity", "detector")}  # fmt: skip
    row.update(
        version=int(alert["version"]),
        accounts=[str(a) for a in alert.get("accounts", ())],
        score=float(alert["score"]),
        reason_features=[str(r["feature"]) for r in reasons],
        reason_values=[float(r["value"]) for r in reasons],
        reason_baselines=[float(r["baseline"]) for r in reasons],
        reason_contributions=[float(r["contribution"]) for r in reasons],
        reasons_json=orjson.dumps(reasons).decode(),
        events=int(alert.get("events", 0)),
        model_version=str(alert.get("model_version", "")),
    )
    for k in ("window_start", "window_end", "first_seen", "emitted_at"):
        row[k] = _seconds(alert[k])
    return {k: [v] for k, v in row.items()}


def feedback_columns(rows: list[dict[str, Any]]) -> Columns:
    """FeedbackRow dicts -> columns of ``feedback``."""
    keys = ("account_id", "alert_id", "analyst", "note")
    cols: Columns = {k: [str(r.get(k, "")) for r in rows] for k in keys}
    cols["verdict"] = [str(r["verdict"]) for r in rows]
    cols["ts"] = [int(r.get("ts_ms", 0)) // 1000 for r in rows]
    return cols


def _batch(
    convert: Callable[[list[Any]], Columns], shapes: frozenset[type] = frozenset({dict})
) -> Callable[[bytes], Columns]:
    def decode(value: bytes) -> Columns:
        # The cyclic GC would rescan every live buffer while thousands of dicts are created:
        # off for the message (nothing here makes cycles), that triples decode speed.
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            rows = orjson.loads(value)
            if not isinstance(rows, list) or not set(map(type, rows)) <= shapes:
                raise ValueError("row batch must be a JSON array of rows")
            return convert(rows)
        finally:
            if was_enabled:
                gc.enable()

    return decode


DECODERS: dict[str, Callable[[bytes], Columns]] = {
    "account_minute": _batch(aggregates_columns, frozenset({list, dict})),
    "account_scores": _batch(scores_columns),
    "alerts": lambda value: alert_columns(orjson.loads(value)),
    "feedback": _batch(feedback_columns),
}


class SinkBuffer:
    """Columnar rows per table plus the next offset to commit per (topic, partition)."""

    def __init__(self, batch_rows: int, flush_interval_s: float, clock: Callable[[], float] = time.monotonic):
        self.batch_rows = batch_rows
        self.flush_interval_s = flush_interval_s
        self._clock = clock
        self._tables: dict[str, Columns] = {}
        self._counts: dict[str, int] = {}
        self._offsets: dict[tuple[str, int], int] = {}
        self._since: float | None = None
        self.rows = 0

    def add(self, table: str, columns: Columns, topic: str, partition: int, offset: int) -> None:
        """Append a converted batch (may be empty) and remember ``offset`` as consumed."""
        self._offsets[(topic, partition)] = offset + 1
        n = len(next(iter(columns.values()))) if columns else 0
        if n:
            buf = self._tables.setdefault(table, {k: [] for k in columns})
            for k, v in columns.items():
                buf[k].extend(v)
            self._counts[table] = self._counts.get(table, 0) + n
            self.rows += n
        if self._since is None:
            self._since = self._clock()

    def seal(self) -> SinkBuffer:
        """Move every row and offset into a new buffer (to insert elsewhere); this one starts empty."""
        sealed = SinkBuffer(self.batch_rows, self.flush_interval_s, self._clock)
        sealed._tables, sealed._counts, sealed._offsets, sealed._since, sealed.rows = (
            self._tables, self._counts, self._offsets, self._since, self.rows)  # fmt: skip
        self._tables, self._counts, self._offsets, self._since, self.rows = {}, {}, {}, None, 0
        return sealed

    def skip(self, topic: str, partition: int, offset: int) -> None:
        """Mark a rejected message as consumed (it is logged by the caller, never stored)."""
        self.add("", {}, topic, partition, offset)

    def due(self) -> bool:
        """True when some table reached ``batch_rows`` or the oldest data waited ``flush_interval_s``."""
        if self._since is None:
            return False
        if any(n >= self.batch_rows for n in self._counts.values()):
            return True
        return self._clock() - self._since >= self.flush_interval_s

    def flush(self, store: Inserter) -> dict[tuple[str, int], int]:
        """Insert every table; on success return (and forget) the offsets to commit.

        A failure raises; tables already inserted are dropped from the buffer
        (re-inserting them on a replay is harmless: the tables are idempotent).
        """
        for table in list(self._tables):
            store.insert(table, self._tables[table])
            self.rows -= self._counts.pop(table)
            del self._tables[table]
        offsets, self._offsets, self._since = self._offsets, {}, None
        return offsets
