"""``distillwatch report ALERT_ID_OR_ACCOUNT``: one self-contained HTML page about an incident.

The target is an alert id, an account id or a cluster id. The page holds
inline SVG charts (``pipeline.charts``; no script, nothing fetched): request
rate against the population baseline, score over time, category mix against
the population, the top reasons of the latest alert, and for a cluster its
members and the infrastructure they share (the SQL kit in schemas/queries).
All data comes from ClickHouse through the store.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from pipeline.charts import PALETTE, Bar, Series, bar_chart, line_chart
from pipeline.contract import CATEGORIES
from pipeline.errors import ConfigError
from pipeline.investigate import literal, load_query, render_sql
from pipeline.settings import Settings
from pipeline.store import Store

MAX_POINTS = 240
_CSS = """body{font-family:sans-serif;margin:24px;color:#222;max-width:900px}h1{font-size:20px}
h2{font-size:15px;margin-top:28px;border-bottom:1px solid #ddd}table{border-collapse:collapse;font-size:12px}
td,th{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}
.meta td:first-child{color:#666}"""


@dataclass
class Subject:
    """What the report is about: one account, or a cluster and its members."""

    kind: str  # account | cluster
    id: str
    accounts: list[str]
    alert: dict[str, Any] | None  # latest version of the most relevant alert


def _rows(store: Store, sql: str) -> list[dict[str, Any]]:
    names, rows = store.query(sql)
    return [dict(zip(names, r, strict=True)) for r in rows]


def resolve(store: Store, target: str) -> Subject:
    """Find ``target`` as an alert id, a cluster id or an account id (ConfigError if none)."""
    db, t = store.database, literal(target, "String")
    alerts = _rows(
        store,
        f"""
        SELECT alert_id, subject_kind, subject_id, accounts, score, severity, state, first_seen, window_end,
               reason_features, reason_values, reason_baselines, reason_contributions
        FROM {db}.alerts WHERE alert_id = {t} OR subject_id = {t}
        ORDER BY alert_id = {t} DESC, window_end DESC, version DESC LIMIT 1""",
    )
    if alerts:
        alert = alerts[0]
        if alert["subject_kind"] == "cluster":
            members = _rows(
                store,
                f"SELECT arraySort(groupUniqArrayArray(accounts)) AS m FROM {db}.alerts "
                f"WHERE subject_id = {literal(alert['subject_id'], 'String')}",
            )[0]["m"]
            return Subject("cluster", alert["subject_id"], list(members), alert)
        return Subject("account", alert["subject_id"], [alert["subject_id"]], alert)
    if _rows(store, f"SELECT count() AS n FROM {db}.account_scores WHERE account_id = {t}")[0]["n"]:
        return Subject("account", target, [target], None)
    raise ConfigError(f"no alert, cluster or account {target!r} in {db}")


def _epoch(value: Any) -> float:
    if isinstance(value, datetime):
        return value.replace(tzinfo=value.tzinfo or UTC).timestamp()
    return float(value)


def timeseries(store: Store, accounts: list[str]) -> dict[str, list[tuple[float, float]]]:
    """Rate, baseline rate and max score per time bucket for ``accounts`` (at most MAX_POINTS buckets)."""
    db, acc = store.database, ", ".join(literal(a, "String") for a in accounts)
    span = _rows(
        store,
        f"SELECT toUInt32(min(minute)) AS lo, toUInt32(max(minute)) AS hi "
        f"FROM {db}.account_minute WHERE account_id IN ({acc})",
    )[0]
    bucket = max(60, -(-(int(span["hi"]) - int(span["lo"])) // MAX_POINTS // 60) * 60)
    rate = _rows(
        store,
        f"""
        SELECT intDiv(toUInt32(minute), {bucket}) * {bucket} AS t, sum(ev) / {bucket / 60} AS v
        FROM (SELECT account_id, minute, argMax(events, version) AS ev FROM {db}.account_minute
              WHERE account_id IN ({acc}) GROUP BY account_id, minute)
        GROUP BY t ORDER BY t""",
    )
    scored = _rows(
        store,
        f"""
        SELECT intDiv(toUInt32(ts), {bucket}) * {bucket} AS t, max(score) AS s,
               avg(baseline_values[indexOf(feature_names, 'rate_per_min_15m')]) * uniqExact(account_id) AS b
        FROM {db}.account_scores WHERE account_id IN ({acc}) GROUP BY t ORDER BY t""",
    )
    got = {int(r["t"]): float(r["v"]) for r in rate}
    first = int(span["lo"]) // bucket * bucket
    return {  # quiet buckets are zero requests, not missing
        "rate": [(float(t), got.get(t, 0.0)) for t in range(first, int(span["hi"]) + 1, bucket)],
        "baseline": [(float(r["t"]), float(r["b"])) for r in scored],
        "score": [(float(r["t"]), float(r["s"])) for r in scored],
    }


def category_mix(store: Store, accounts: list[str]) -> list[Bar]:
    """Share of each prompt category for ``accounts``, with the population's share as reference."""
    db, acc = store.database, ", ".join(literal(a, "String") for a in accounts)
    sums = ", ".join(f"sumIf(n_{c}, mine) AS {c}, sum(n_{c}) AS all_{c}" for c in CATEGORIES)
    row = _rows(
        store, f"""SELECT {sums} FROM (SELECT account_id IN ({acc}) AS mine, * FROM {db}.account_minute_v)"""
    )[0]
    mine = sum(row[c] for c in CATEGORIES) or 1
    everyone = sum(row[f"all_{c}"] for c in CATEGORIES) or 1
    bars = [Bar(c, row[c] / mine, row[f"all_{c}"] / everyone, f"({row[c]:,} prompts)") for c in CATEGORIES]
    return [b for b in bars if b.value > 0 or (b.reference or 0) > 0.01]


def contributions(store: Store, subject: Subject) -> tuple[str, list[Bar]]:
    """The latest alert's reasons; without an alert, the features furthest from their baseline."""
    if subject.alert is not None:
        a = subject.alert
        bars = [
            Bar(f, c, None, f"value {v:.3g} vs baseline {b:.3g}")
            for f, v, b, c in zip(
                a["reason_features"],
                a["reason_values"],
                a["reason_baselines"],
                a["reason_contributions"],
                strict=True,
            )
        ]
        return f"Top reasons of alert {a['alert_id']} (contribution to the score)", bars
    rows = _rows(
        store,
        f"SELECT feature_names AS f, feature_values AS v, baseline_values AS b FROM "
        f"{store.database}.account_scores WHERE account_id = {literal(subject.id, 'String')} "
        "ORDER BY ts DESC LIMIT 1",
    )
    if not rows:
        return "Feature deviations", []
    r = rows[0]
    dev = [(f, v, b, (v - b) / (abs(b) + 1e-9)) for f, v, b in zip(r["f"], r["v"], r["b"], strict=True)]
    dev.sort(key=lambda x: -abs(x[3]))
    return "Features furthest from the population baseline (relative deviation, latest scoring)", [
        Bar(f, d, None, f"value {v:.3g} vs baseline {b:.3g}") for f, v, b, d in dev[:8]
    ]


def _table(rows: list[dict[str, Any]], limit: int = 50) -> str:
    if not rows:
        return "<p>none</p>"

    def cell(v: Any) -> str:
        return escape(", ".join(map(str, v)) if isinstance(v, list | tuple) else str(v))

    head = "".join(f"<th>{escape(k)}</th>" for k in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r.values()) + "</tr>" for r in rows[:limit]
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _kit(store: Store, name: str, **params: str) -> list[dict[str, Any]]:
    return _rows(store, render_sql(load_query(name), params, store.database))


def render_report(store: Store, target: str, threshold: float = 0.5) -> str:
    """The whole HTML page for ``target``."""
    subject = resolve(store, target)
    ts = timeseries(store, subject.accounts)
    many = subject.kind == "cluster"
    rate = line_chart(
        "chart-rate",
        "Requests per minute" + (" (all members)" if many else ""),
        [
            Series("requests/min", [p[0] for p in ts["rate"]], [p[1] for p in ts["rate"]], PALETTE[0]),
            Series(
                "population baseline" + (" × active members" if many else ""),
                [p[0] for p in ts["baseline"]],
                [p[1] for p in ts["baseline"]],
                PALETTE[2],
                dashed=True,
            ),
        ],
    )
    score = line_chart(
        "chart-score",
        "Anomaly score" + (" (highest member)" if many else ""),
        [Series("score", [p[0] for p in ts["score"]], [p[1] for p in ts["score"]], PALETTE[1])],
        y_max=1.0,
        hline=(threshold, f"alert threshold {threshold:g}"),
    )
    mix = bar_chart(
        "chart-categories",
        "Prompt category mix (share of prompts)",
        category_mix(store, subject.accounts),
        value_fmt="{:.1%}",
        reference_name="population share",
    )
    title, bars = contributions(store, subject)
    reasons = bar_chart("chart-contributions", title, bars)
    a = subject.alert or {}
    meta = [("subject", f"{subject.kind} {subject.id}"), ("accounts", str(len(subject.accounts)))]
    if a:
        meta += [
            ("alert", a["alert_id"]),
            ("state", a["state"]),
            ("severity", a["severity"]),
            ("score", f"{a['score']:.3f}"),
            ("evidence", f"{a['first_seen']} – {a['window_end']} UTC"),
        ]
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>DistillWatch report {escape(subject.id)}"
        f"</title><style>{_CSS}</style></head><body>"
        f"<h1>DistillWatch report: {escape(subject.kind)} {escape(subject.id)}</h1>",
        "<table class='meta'>"
        + "".join(f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in meta)
        + "</table>",
        "<h2>Activity</h2>",
        rate,
        score,
        "<h2>What it asks for</h2>",
        mix,
        "<h2>Why it was flagged</h2>",
        reasons,
    ]
    if many:
        parts += [
            "<h2>Members</h2>",
            _table(_kit(store, "cluster_members", cluster_id=subject.id)),
            "<h2>Shared infrastructure</h2>",
            _table(_kit(store, "cluster_shared_infrastructure", cluster_id=subject.id)),
        ]
    parts += [
        "<h2>Alert history and verdicts</h2>",
        _table(_kit(store, "alert_history", subject_id=subject.id)),
    ]
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    parts.append(
        f"<p style='color:#888;font-size:11px'>generated {generated} UTC from {escape(store.database)}</p>"
        "</body></html>"
    )
    return "\n".join(parts)


def register(sub: Any) -> None:
    """Add the ``report`` subcommand."""
    p = sub.add_parser("report", help="write a self-contained HTML report about an alert, account or cluster")
    p.add_argument("target", help="alert id, account id or cluster id")
    p.add_argument("--out", type=Path, default=None, help="HTML file to write (default report-TARGET.html)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Render the report from ClickHouse and write it."""
    from pipeline.store import open_store

    out = args.out or Path(
        f"report-{''.join(c if c.isalnum() or c in '-_' else '_' for c in args.target)}.html"
    )
    store = open_store(settings)
    try:
        page = render_report(store, args.target, settings.alert_threshold)
    finally:
        store.close()
    out.write_text(page, encoding="utf-8")
    print(f"wrote {out} ({len(page) // 1024} KiB)")
    return 0
