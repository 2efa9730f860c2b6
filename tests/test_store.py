"""Schema, degrader, round trip and de-duplication on BOTH clickhouse-server 18.16 and chdb 26.x."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import DistillWatchError, StoreUnavailable
from pipeline.settings import load_settings
from pipeline.sink_rows import aggregates_columns, alert_columns
from pipeline.store import DEGRADATIONS, Store, apply_schema, degrade_ddl, open_store, schema_statements

NOW_MIN_MS = int(time.time()) // 60 * 60_000


def test_degrade_is_identity_on_modern_servers() -> None:
    modern = schema_statements("db", (26, 9, 2))
    assert modern == schema_statements("db")
    assert any("LowCardinality(" in s for s in modern) and any("CODEC(" in s for s in modern)
    assert any("\nTTL " in s for s in modern)
    old = "\n".join(schema_statements("db", (18, 16, 1)))
    assert "LowCardinality" not in old and "CODEC" not in old and "TTL" not in old
    assert "COMMENT 'billing account" in old  # column comments are kept: 18.16 has them


def test_degrade_examples() -> None:
    ddl = "a Array(LowCardinality(String)) CODEC(T64, ZSTD(1)) COMMENT 'x',\nTTL d + INTERVAL 1 DAY\nSETTINGS"
    assert degrade_ddl(ddl, (18, 16)) == "a Array(String) COMMENT 'x',\nSETTINGS"
    assert (
        degrade_ddl(ddl, (19, 3))
        == "a Array(LowCardinality(String)) CODEC(T64, ZSTD(1)) COMMENT 'x',\nSETTINGS"
    )


def _settings(mode: str, server: Any, chdb_path: Path, database: str) -> Any:
    return load_settings(
        clickhouse_mode=mode,
        clickhouse_host="127.0.0.1",
        clickhouse_port=server.tcp_port if server else 9000,
        clickhouse_path=chdb_path,
        clickhouse_database=database,
    )


@pytest.fixture(params=["server", "embedded"])
def store(request: pytest.FixtureRequest, chdb_path: Path) -> Iterator[Store]:
    """A store with the schema applied, in a database of its own."""
    server = request.getfixturevalue("clickhouse_server") if request.param == "server" else None
    name = f"dw_{request.node.name.split('[')[0].removeprefix('test_')[:20]}_{request.param}"
    s = open_store(_settings(request.param, server, chdb_path, name))
    s.execute(f"DROP DATABASE IF EXISTS {name}")
    apply_schema(s)
    apply_schema(s)  # idempotent
    yield s
    s.close()


@pytest.mark.integration
def test_schema_loads_with_comments(store: Store) -> None:
    _, rows = store.query(
        f"SELECT table, name, comment FROM system.columns WHERE database = '{store.database}'"
    )
    tables = {r[0] for r in rows}
    assert {
        "account_minute",
        "account_scores",
        "alerts",
        "feedback",
        "account_minute_v",
        "alerts_latest_v",
    } <= tables
    base = [r for r in rows if not r[0].endswith("_v")]
    assert base and all(r[2] for r in base), [r[:2] for r in base if not r[2]]
    assert [r[1] for r in base if r[0] == "account_minute" and r[1].startswith("n_")][0] == "n_chat"


@pytest.mark.integration
def test_degrader_output_is_minimal_on_18_16(clickhouse_server: Any) -> None:
    """Each degradation is needed: skipping any one of them makes 18.16 reject the schema."""
    import pipeline.store as st

    s = open_store(_settings("server", clickhouse_server, Path("."), "dw_minimal"))
    try:
        assert s.server_version()[:2] == (18, 16)
        for skipped in DEGRADATIONS:
            s.execute("DROP DATABASE IF EXISTS dw_minimal")
            kept = tuple(d for d in DEGRADATIONS if d is not skipped)
            original, st.DEGRADATIONS = st.DEGRADATIONS, kept
            try:
                with pytest.raises(DistillWatchError):
                    for sql in schema_statements("dw_minimal", (18, 16, 1)):
                        s.execute(sql)
            finally:
                st.DEGRADATIONS = original
        s.execute("DROP DATABASE IF EXISTS dw_minimal")
        assert len(apply_schema(s)) == 7
    finally:
        s.close()


def _agg(version: int, events: int, minute_ms: int = NOW_MIN_MS, account: str = "acct-1") -> dict[str, Any]:
    return {"account_id": account, "minute_ms": minute_ms, "version": version, "events": events,
            "input_tokens": 10 * events, "output_tokens": 5, "errors": 0, "throttled": 1, "cot_events": 0,
            "tool_events": 0, "novel_prompts": 2, "latency_ms_sum": 12.5,
            "category_counts": [events, 0, 0, 0, 0, 0, 0, 0, 0, 0], "models": ["m1", "m2"]}  # fmt: skip


@pytest.mark.integration
def test_reinserted_aggregates_count_once(store: Store) -> None:
    db = store.database
    store.insert("account_minute", aggregates_columns([_agg(3, 3), _agg(7, 7, account="acct-2")]))
    store.insert("account_minute", aggregates_columns([_agg(5, 5)]))  # a later, bigger version
    store.insert("account_minute", aggregates_columns([_agg(5, 5), _agg(3, 3)]))  # replay of both
    names, rows = store.query(f"SELECT account_id, sum(events), sum(n_chat) FROM {db}.account_minute_v "
                              "GROUP BY account_id ORDER BY account_id")  # fmt: skip
    assert rows == [("acct-1", 5, 5), ("acct-2", 7, 7)]
    _, final = store.query(f"SELECT sum(events) FROM {db}.account_minute FINAL")
    assert final == [(12,)]
    _, one = store.query(
        f"SELECT minute, models, latency_ms_sum FROM {db}.account_minute_v WHERE account_id='acct-1'"
    )
    assert one[0][0].timestamp() == NOW_MIN_MS // 1000 and one[0][1] == ["m1", "m2"] and one[0][2] == 12.5


@pytest.mark.integration
def test_inserts_skip_the_merge_on_insert_where_the_server_has_it(store: Store) -> None:
    """chdb 26.x: ``optimize_on_insert=0`` (duplicates in one block stay until a merge, reads
    are still exact); 18.16 does not know the setting, so none is sent."""
    db = store.database
    store.insert("account_minute", aggregates_columns([_agg(3, 3), _agg(5, 5), _agg(4, 4)]))  # one block
    modern = store.server_version() >= (21,)
    assert store.insert_settings == ({"optimize_on_insert": 0} if modern else {})
    assert store.query(f"SELECT sum(events) FROM {db}.account_minute_v")[1] == [(5,)]
    assert store.query(f"SELECT sum(events) FROM {db}.account_minute FINAL")[1] == [(5,)]


@pytest.mark.integration
def test_alert_round_trip_latest_version(store: Store) -> None:
    base = {"alert_id": "al-1", "state": "open", "subject_kind": "account", "subject_id": "acct-9",
            "accounts": ["acct-9"], "score": 0.91, "severity": "high", "detector": "hst",
            "reasons": [{"feature": "cot_ratio", "value": 0.9, "baseline": 0.1, "contribution": 0.5}],
            "window_start": "2026-01-01T00:00:00.000Z", "window_end": "2026-01-01T00:05:00.000Z",
            "first_seen": "2026-01-01T00:00:00.000Z", "events": 120, "model_version": "v1",
            "emitted_at": "2026-01-01T00:05:01.000Z"}  # fmt: skip
    for version, state in ((1, "open"), (2, "update"), (2, "update"), (3, "resolved")):
        store.insert("alerts", alert_columns({**base, "version": version, "state": state}))
    _, rows = store.query(f"SELECT latest_version, state, reasons_json FROM {store.database}.alerts_latest_v")
    assert rows[0][:2] == (3, "resolved") and '"cot_ratio"' in rows[0][2]
    _, hist = store.query(f"SELECT count() FROM {store.database}.alerts FINAL")
    assert hist == [(3,)]


@pytest.mark.integration
def test_server_errors_are_one_line_and_secret_free(clickhouse_server: Any) -> None:
    s = open_store(load_settings(clickhouse_mode="server", clickhouse_port=clickhouse_server.tcp_port,
                                 clickhouse_password="hunter2-secret"))  # fmt: skip
    with pytest.raises(DistillWatchError) as err:
        s.query("SELECT 1")
    assert "hunter2" not in str(err.value) and "\n" not in str(err.value)
    dead = open_store(
        load_settings(clickhouse_mode="server", clickhouse_port=1, clickhouse_password="hunter2")
    )
    with pytest.raises(StoreUnavailable) as err2:
        dead.query("SELECT 1")
    assert "hunter2" not in str(err2.value)
