"""``evaluate``: replay an events file through the detection core and score it against labels.

An account counts as detected when an ``open``/``update`` alert of severity
medium or above names it (cluster alerts name their members in ``accounts``).
Time-to-detect is event time from the account's first event to that alert.
The replay is the worker's path: ``decode_event`` per line (invalid lines are
counted, not fatal), ``Engine`` on one partition, summaries into ``ClusterDetector``. Like the
worker, it sets aside an event stamped more than ``max_future_skew_s`` ahead of the wall clock
(counted as ``future_events``): one such event would move the event-time clock there.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time
from collections import Counter
from typing import IO, Any

from pipeline.alerts import DETECTING


def read_labels(path: str) -> dict[str, tuple[str, str]]:
    """account_id -> (label, scenario) from the contract's labels CSV."""
    from pipeline.errors import DistillWatchError

    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise DistillWatchError(f"cannot read labels: {exc}") from None
    if not rows or set(rows[0]) != {"account_id", "label", "scenario"}:
        raise DistillWatchError(f"{path}: labels CSV needs the header account_id,label,scenario")
    out = {}
    for i, r in enumerate(rows, 2):
        if r["label"] not in ("attack", "benign"):
            raise DistillWatchError(f"{path}:{i}: label must be attack or benign, got {r['label']!r}")
        out[r["account_id"]] = (r["label"], r["scenario"])
    return out


def evaluate_file(
    events_path: str,
    labels: dict[str, tuple[str, str]],
    config: Any = None,
    alerts_out: IO[bytes] | None = None,
    progress: bool = True,
    max_future_skew_ms: int = 0,
) -> dict[str, Any]:
    """Replay ``events_path`` and return the metrics dict (also what ``--json`` writes); events stamped
    over ``max_future_skew_ms`` ahead of the wall clock are set aside as the worker's are (0: none)."""
    import orjson

    from pipeline.contract import future_horizon
    from pipeline.detection import DetectionConfig
    from pipeline.errors import DistillWatchError, InvalidEvent
    from pipeline.offline import OfflineRunner
    from pipeline.tuning import tune_gc
    from pipeline.validation import decode_event

    tune_gc()
    config = config or DetectionConfig()
    runner = OfflineRunner(config)
    first_ts: dict[str, int] = {}
    detected: dict[str, int] = {}
    n_alerts = invalid = future = n = 0
    horizon = future_horizon(int(time.time() * 1000), max_future_skew_ms)

    def consume(alerts: list[Any]) -> None:
        nonlocal n_alerts
        for a in alerts:
            n_alerts += 1
            if alerts_out is not None:
                alerts_out.write(orjson.dumps(a.to_dict(int(time.time() * 1000))) + b"\n")
            if a.state != "resolved" and a.severity in DETECTING:
                for acc in a.accounts:
                    if acc not in detected:
                        detected[acc] = a.window_end_ms

    try:
        size = os.path.getsize(events_path)
        fh = open(events_path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise DistillWatchError(f"cannot read events: {exc}") from None
    from tqdm import tqdm

    bar = tqdm(
        total=size, unit="B", unit_scale=True, disable=not progress or size < 50_000_000, file=sys.stderr
    )
    t0 = time.perf_counter()
    with fh:
        for offset, line in enumerate(fh):
            if offset & 0xFFFF == 0:
                bar.update(fh.tell() - bar.n)
            if not line.strip():
                continue
            try:
                ev = decode_event(line.rstrip(b"\r\n"))
            except InvalidEvent:
                invalid += 1
                continue
            if ev.ts_ms > horizon:
                future += 1
                continue
            n += 1
            if ev.account_id not in first_ts:
                first_ts[ev.account_id] = ev.ts_ms
            consume(runner.feed(ev, offset))
    consume(runner.finish())
    elapsed = time.perf_counter() - t0
    bar.close()
    return _metrics(labels, first_ts, detected, n, invalid, future, n_alerts, elapsed)


def _metrics(
    labels: dict[str, tuple[str, str]],
    first_ts: dict[str, int],
    detected: dict[str, int],
    n: int,
    invalid: int,
    future: int,
    n_alerts: int,
    elapsed: float,
) -> dict[str, Any]:
    tp = sum(1 for a, (lab, _) in labels.items() if lab == "attack" and a in detected)
    fp = sum(1 for a, (lab, _) in labels.items() if lab == "benign" and a in detected)
    pos = sum(1 for lab, _ in labels.values() if lab == "attack")
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / pos if pos else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    fams: dict[str, dict[str, Any]] = {}
    sizes = Counter((lab, sc) for lab, sc in labels.values())
    for (lab, sc), size in sorted(sizes.items()):
        members = [a for a, (la, s) in labels.items() if s == sc and la == lab]
        hits = [a for a in members if a in detected]
        row: dict[str, Any] = {"label": lab, "accounts": size, "alerted": len(hits), "rate": len(hits) / size}
        if lab == "attack":
            ttd = [(detected[a] - first_ts[a]) / 60_000 for a in hits if a in first_ts]
            row["median_ttd_min"] = round(statistics.median(ttd), 1) if ttd else None
        fams[sc] = row
    unlabelled = sum(1 for a in detected if a not in labels)
    return {
        "events": n,
        "invalid_lines": invalid,
        "future_events": future,
        "alerts": n_alerts,
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "tp": tp,
        "fp": fp,
        "fn": pos - tp,
        "unlabelled_alerted": unlabelled,
        "families": fams,
        "seconds": round(elapsed, 2),
        "events_per_s": round(n / elapsed) if elapsed > 0 else 0,
    }


def format_report(m: dict[str, Any]) -> str:
    lines = [
        f"events {m['events']}  invalid lines {m['invalid_lines']}  future-stamped {m['future_events']}  "
        f"alerts emitted {m['alerts']}  "
        f"{m['events_per_s']} events/s ({m['seconds']} s)",
        f"precision {m['precision']:.3f}  recall {m['recall']:.3f}  F1 {m['f1']:.3f}  "
        f"(tp {m['tp']}, fp {m['fp']}, fn {m['fn']})",
        f"{'family':<20} {'label':<7} {'accounts':>8} {'alerted':>8} {'rate':>7} {'median TTD':>11}",
    ]
    for sc, r in m["families"].items():
        ttd = (
            ""
            if r["label"] == "benign"
            else (f"{r['median_ttd_min']} min" if r["median_ttd_min"] is not None else "-")
        )
        lines.append(
            f"{sc:<20} {r['label']:<7} {r['accounts']:>8} {r['alerted']:>8} {r['rate']:>7.1%} {ttd:>11}"
        )
    return "\n".join(lines)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "evaluate", help="replay an events file through the detector and score it against labels"
    )
    p.add_argument("events", help="events JSON Lines file")
    p.add_argument("--labels", required=True, help="labels CSV (account_id,label,scenario)")
    p.add_argument("--alerts-out", help="write the emitted alerts (JSON Lines) here")
    p.add_argument("--json", dest="json_out", help="write the metrics as JSON here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Any) -> int:
    import orjson

    from pipeline.detection import DetectionConfig
    from pipeline.errors import DistillWatchError

    labels = read_labels(args.labels)
    cfg = DetectionConfig.from_settings(settings)
    try:
        out = open(args.alerts_out, "wb") if args.alerts_out else None  # noqa: SIM115
    except OSError as exc:
        raise DistillWatchError(f"cannot write alerts: {exc}") from None
    try:
        m = evaluate_file(args.events, labels, cfg, out, max_future_skew_ms=settings.max_future_skew_s * 1000)
    finally:
        if out is not None:
            out.close()
    print(format_report(m))
    if args.json_out:
        try:
            with open(args.json_out, "wb") as fh:
                fh.write(orjson.dumps(m, option=orjson.OPT_INDENT_2))
        except OSError as exc:
            raise DistillWatchError(f"cannot write --json: {exc}") from None
    return 0
