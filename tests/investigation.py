"""The investigation data set shared by the investigator-query and report tests (built once per session).

The demo path for real: simulated labelled traffic -> real broker -> worker
process -> sink -> chdb, plus one analyst verdict sent through the feedback
topic. ``copy_to`` loads the same rows into another store (the 18.16 server)
so every query is checked on both engines.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stackutil import isolated_settings, produce

from pipeline.settings import Settings
from pipeline.store import Store, apply_schema

SIM = {"seed": 11, "accounts": 200, "hours": 10.0}
DATABASE = "dw_investigate"
CLI_ANALYST = "cli-analyst"
TABLES = ("account_minute", "account_scores", "alerts", "feedback")


@dataclass
class Investigation:
    """What the session's traffic produced and what the simulator says it really was."""

    settings: Settings
    store: Store
    truth: dict[str, tuple[str, str]]  # account -> (label, family)
    alerts: list[dict[str, Any]]  # latest message of every incident
    verdict: dict[str, str]  # the feedback sent: verdict, account_id, alert_id, analyst, note
    events: dict[str, int]  # account -> distinct event_ids simulated
    timings: dict[str, float] = field(default_factory=dict)

    def family(self, account: str) -> str:
        return self.truth.get(account, ("?", "?"))[1]

    def cluster_alerts(self) -> list[dict[str, Any]]:
        """Cluster incidents, the one with the most members first."""
        out = [a for a in self.alerts if a["subject_kind"] == "cluster"]
        return sorted(out, key=lambda a: (-len(a["accounts"]), a["subject_id"]))


def build(broker: str, chdb_path: Path, workdir: Path) -> Investigation:
    """Run traffic through a worker and the sink into chdb; return the open store and ground truth."""
    from pipeline.demo import latest_alerts
    from pipeline.feedback import send_feedback
    from pipeline.records import FeedbackRow, encode_rows
    from pipeline.replay import event_items, produce_values
    from pipeline.simulate import SimConfig, generate, labels
    from pipeline.stack import LocalStack, read_topic

    started = time.monotonic()
    s = isolated_settings(broker, workdir).model_copy(
        update={"clickhouse_mode": "embedded", "clickhouse_path": chdb_path, "clickhouse_database": DATABASE}
    )
    cfg = SimConfig(seed=int(SIM["seed"]), accounts=int(SIM["accounts"]), hours=SIM["hours"])
    truth = {acct: (label, family) for acct, label, family in labels(cfg)}
    events = list(generate(cfg))
    distinct = Counter(acct for acct, _ in {(str(e["account_id"]), e["event_id"]) for e in events})
    with LocalStack.create(s, workdir, with_broker=False) as stack:
        stack.start_worker()
        stack.start_sink()
        asyncio.run(produce_values(s, s.topic_requests, event_items(events), len(events), progress=False))
        stack.wait_drained(s.app_id, s.topic_requests, timeout_s=180)
        alerts = latest_alerts(read_topic(s, s.topic_alerts))
        account_alert = next(a for a in alerts if a["subject_kind"] == "account")
        verdict = {
            "verdict": "true_positive",
            "account_id": account_alert["subject_id"],
            "alert_id": account_alert["alert_id"],
            "analyst": "test-analyst",
            "note": "planted verdict",
        }
        now_ms = int(time.time() * 1000)
        # The sink accepts row batches (a JSON array); `distillwatch feedback` sends a single object,
        # which the sink currently rejects (reported): send both, the tests tell them apart by analyst.
        row = FeedbackRow(ts_ms=now_ms, **verdict)
        produce(s, s.topic_feedback, [(row.account_id.encode(), encode_rows([row]))])
        send_feedback(s, FeedbackRow(ts_ms=now_ms + 1000, **{**verdict, "analyst": CLI_ANALYST}))
        for topic in (s.topic_aggregates, s.topic_scores, s.topic_alerts, s.topic_feedback):
            stack.wait_drained(s.sink_group, topic, timeout_s=120)
        stack.stop_worker("w1")
        stack.stop_sink()
        store, stack.store = stack.open_store(), None  # keep the store open beyond the stack
    inv = Investigation(s, store, truth, alerts, verdict, dict(distinct))
    inv.timings["build_s"] = time.monotonic() - started
    return inv


def copy_to(src: Store, dst: Store) -> None:
    """Copy every table of the investigation into ``dst`` (schema applied there first)."""
    apply_schema(dst)
    for table in TABLES:
        names, rows = src.query(f"SELECT * FROM {src.database}.{table}")
        if rows:
            dst.insert(table, {n: [r[i] for r in rows] for i, n in enumerate(names)})
