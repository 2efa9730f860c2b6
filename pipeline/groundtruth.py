"""The ground truth of a reliability run: what an uninterrupted, exactly-once pipeline must end up
with (distinct valid events per account; the account alerts of the detection core fed the same
events in the same per-partition order), and the comparison of ClickHouse with it.
"""

from __future__ import annotations

import itertools
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson

from pipeline.detection import DetectionConfig
from pipeline.engine import Engine
from pipeline.errors import InvalidEvent
from pipeline.simulate import SimConfig, generate
from pipeline.store import Store
from pipeline.validation import event_from_dict


def workload(n_events: int, seed: int = 11, accounts: int | None = None) -> list[dict[str, Any]]:
    """``n_events`` simulated contract events (event-time order, ~0.2 % gateway retries)."""
    accounts = accounts or max(60, min(2000, n_events // 500))
    hours = max(1.0, n_events / (accounts * 80.0))  # ~80 events per account-hour on average
    while True:
        evs = list(itertools.islice(generate(SimConfig(seed=seed, accounts=accounts, hours=hours)), n_events))
        if len(evs) >= n_events:
            return evs
        hours *= 1.5 * n_events / max(1, len(evs))


def partition_of(account_id: str, partitions: int) -> int:
    return zlib.crc32(account_id.encode()) % partitions


@dataclass
class Truth:
    """What an uninterrupted, exactly-once pipeline must end up with."""

    events_per_account: dict[str, int]
    account_alerts: set[tuple[str, int, str]]  # (alert_id, version, state)
    valid: int
    invalid: int


def offline_truth(values: list[bytes], keys: list[str], partitions: int, config: DetectionConfig) -> Truth:
    """Distinct valid event ids per account, and the account alerts of the core on the same order."""
    ids: dict[str, set[str]] = defaultdict(set)
    engine = Engine(config)
    offsets = [0] * partitions
    alerts: set[tuple[str, int, str]] = set()
    valid = invalid = 0
    for i, (key, raw) in enumerate(zip(keys, values, strict=True)):
        part = partition_of(key, partitions)
        off = offsets[part]
        offsets[part] += 1
        try:
            ev = event_from_dict(orjson.loads(raw))
        except (InvalidEvent, orjson.JSONDecodeError):
            invalid += 1
            continue
        valid += 1
        ids[ev.account_id].add(ev.event_id)
        engine.add(ev, part, off)
        if i % 4096 == 0:
            alerts.update((a.alert_id, a.version, a.state) for a in engine.take_outputs().alerts)
    alerts.update((a.alert_id, a.version, a.state) for a in engine.take_outputs().alerts)
    return Truth({a: len(s) for a, s in ids.items()}, alerts, valid, invalid)


@dataclass
class RunResult:
    events: int = 0
    distinct_events: int = 0
    counted: int = 0
    lost: int = 0
    doubled: int = 0
    accounts_wrong: int = 0
    account_alert_msgs_expected: int = 0
    account_alert_msgs_got: int = 0
    alert_msgs_missing: int = 0
    alert_msgs_extra: int = 0
    incidents_expected: int = 0
    incidents_got: int = 0
    cluster_incidents: int = 0
    cluster_incidents_bad: int = 0
    deadlettered: int = 0
    faults: list[str] = field(default_factory=list)
    sink_retries: int = 0
    sink_pauses: int = 0
    sink_peak_buffer_rows: int = 0
    seconds_total: float = 0.0
    seconds_drain: float = 0.0
    notes: list[str] = field(default_factory=list)

    def ok(self) -> bool:
        return (
            self.lost == 0 and self.doubled == 0 and self.accounts_wrong == 0
            and self.alert_msgs_missing == 0 and self.alert_msgs_extra == 0
            and self.cluster_incidents_bad == 0
        )  # fmt: skip


def check(store: Store, truth: Truth, result: RunResult) -> RunResult:
    """Compare ClickHouse with the truth; fills ``result``."""
    db = store.database
    _, rows = store.query(f"SELECT account_id, sum(events) FROM {db}.account_minute_v GROUP BY account_id")
    got = {a: int(n) for a, n in rows}
    result.distinct_events = sum(truth.events_per_account.values())
    result.counted = sum(got.values())
    for a in set(got) | set(truth.events_per_account):
        d = got.get(a, 0) - truth.events_per_account.get(a, 0)
        if d:
            result.accounts_wrong += 1
            if len(result.notes) < 10:
                want = truth.events_per_account.get(a, 0)
                result.notes.append(f"account {a}: {got.get(a, 0)} counted, {want} expected")
            if d > 0:
                result.doubled += d
            else:
                result.lost -= d
    _, rows = store.query(
        f"SELECT DISTINCT alert_id, version, state, subject_kind FROM {db}.alerts"
    )
    acc = {(a, int(v), st) for a, v, st, k in rows if k == "account"}
    result.account_alert_msgs_expected = len(truth.account_alerts)
    result.account_alert_msgs_got = len(acc)
    result.alert_msgs_missing = len(truth.account_alerts - acc)
    result.alert_msgs_extra = len(acc - truth.account_alerts)
    result.incidents_expected = len({a for a, _, _ in truth.account_alerts})
    result.incidents_got = len({a for a, _, _ in acc})
    clusters: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for a, v, st, k in rows:
        if k == "cluster":
            clusters[a].append((int(v), st))
    result.cluster_incidents = len(clusters)
    for msgs in clusters.values():
        versions = sorted(v for v, _ in msgs)
        opens = sum(st == "open" for _, st in msgs)
        if versions != list(range(1, len(versions) + 1)) or opens != 1:
            result.cluster_incidents_bad += 1
    return result
