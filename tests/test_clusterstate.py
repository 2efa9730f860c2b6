"""ClusterState: a bounded table (one snapshot at rest), crash-safe writes, and the snapshot cadence."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from pathlib import Path
from types import SimpleNamespace

import faust
import orjson
import pytest

from pipeline import clusterstate
from pipeline.chunks import split
from pipeline.clusters import ClusterDetector
from pipeline.clusterstate import ClusterState
from pipeline.detection import DetectionConfig
from pipeline.linking import AccountSummary
from pipeline.tablestore import FileStore, FileValues


class Crash(Exception):
    pass


class Table(MutableMapping[bytes, bytes]):
    """A dict that can 'crash' (raise) after a number of writes, like a worker killed mid-snapshot."""

    def __init__(self) -> None:
        self.d: dict[bytes, bytes] = {}
        self.writes_left = -1

    def __getitem__(self, k: bytes) -> bytes:
        return self.d[k]

    def __setitem__(self, k: bytes, v: bytes) -> None:
        if self.writes_left == 0:
            raise Crash
        self.writes_left -= 1
        self.d[k] = v

    def __delitem__(self, k: bytes) -> None:
        del self.d[k]

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.d)

    def __len__(self) -> int:
        return len(self.d)


def _grow(det: ClusterDetector, start: int, n: int) -> None:
    for i in range(start, start + n):
        det.add_summary(AccountSummary(f"acct-{i}", 1_000 + i, 0, 0, ip_prefixes=[f"10.{i % 250}.{i // 250}.0/24"]))


def _ack() -> SimpleNamespace:
    return SimpleNamespace(ack=lambda: None)


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clusterstate, "CHUNK_BYTES", 256)  # multi-part snapshots from a small detector


def test_table_holds_one_snapshot_while_the_detector_grows(small_parts: None) -> None:
    table = Table()
    det = ClusterDetector(DetectionConfig())
    state = ClusterState(det, table, every_s=0.0)
    sizes = []
    for step in range(6):
        _grow(det, step * 40, 40)
        state.applied(_ack(), step)
        assert state.maybe_snapshot()
        n = int(table[b"detector/meta"].split(b":")[1])
        sizes.append(n)
        assert len(table) == n + 1  # the parts of the current snapshot and the meta record, nothing else
    assert sizes[-1] > sizes[0] > 1  # the part count changed: stale parts were dropped, not kept
    fresh = ClusterDetector(DetectionConfig())
    restored = ClusterState(fresh, table, every_s=10.0)
    restored.restore_once()
    assert restored.applied_offset == 5
    assert fresh.snapshot() == det.snapshot()


def test_a_crash_half_way_through_a_write_leaves_the_previous_snapshot(small_parts: None) -> None:
    table = Table()
    det = ClusterDetector(DetectionConfig())
    state = ClusterState(det, table, every_s=0.0)
    _grow(det, 0, 60)
    state.applied(_ack(), 7)
    state.maybe_snapshot()
    before = det.snapshot()
    _grow(det, 60, 60)
    state.applied(_ack(), 8)
    table.writes_left = 2  # two parts of the next snapshot land, then the worker dies
    with pytest.raises(Crash):
        state.maybe_snapshot()
    fresh = ClusterDetector(DetectionConfig())
    restored = ClusterState(fresh, table, every_s=10.0)
    restored.restore_once()
    assert restored.applied_offset == 7 and fresh.snapshot() == before
    # the restarted state writes to the other slot, and the table is one snapshot again afterwards
    table.writes_left = -1
    _grow(fresh, 60, 60)
    restored.applied(_ack(), 8)
    assert restored.release(rebalancing=True)
    assert len(table) == int(table[b"detector/meta"].split(b":")[1]) + 1


def test_snapshots_written_before_the_slots_still_restore() -> None:
    det = ClusterDetector(DetectionConfig())
    _grow(det, 0, 30)
    table = Table()
    parts = split("detector", det.snapshot(), limit=500)  # the old layout: plain JSON, count in the keys
    for key, blob in parts:
        table[key.encode()] = blob
    table[b"detector/meta"] = f"12:{len(parts)}".encode()
    fresh = ClusterDetector(DetectionConfig())
    state = ClusterState(fresh, table, every_s=10.0)
    state.restore_once()
    assert state.applied_offset == 12 and orjson.loads(fresh.snapshot()) == orjson.loads(det.snapshot())
    state.applied(_ack(), 13)
    assert state.release(rebalancing=True)
    assert not [k for k in table if b"\x1f" in k]  # the old keys are gone with the first new snapshot


def test_cadence_periodic_quiet_rebalance_and_busy() -> None:
    table = Table()
    state = ClusterState(ClusterDetector(DetectionConfig()), table, every_s=10.0, quiet_s=2.0)
    acks: list[int] = []
    ev = SimpleNamespace(ack=lambda: acks.append(1))
    t = state.last_message
    assert not state.maybe_snapshot(now=t + 60)  # nothing held: nothing to write
    state.applied(ev, 1)
    t = state.last_message
    assert not state.maybe_snapshot(now=t + 1)  # a burst: not after every message
    assert not state.release(now=t + 1)  # not quiet yet
    assert state.release(rebalancing=True, now=t + 1) and acks == [1]  # a rebalance waits for the acks
    state.applied(ev, 2)
    t = state.last_message
    state.busy = True  # a message half-way: never snapshot in between
    assert not state.release(now=t + 5) and not state.maybe_snapshot(now=t + 60)
    state.busy = False
    assert state.release(now=t + 2.5) and acks == [1, 1]  # quiet for quiet_s: acks released
    state.applied(ev, 3)
    assert state.maybe_snapshot(now=t + 60) and acks == [1, 1, 1]  # every_s while summaries flow


def test_applying_blocks_snapshots_and_records_only_on_success() -> None:
    state = ClusterState(ClusterDetector(DetectionConfig()), Table(), every_s=0.0)
    state.hold(_ack())  # something held, so a snapshot would otherwise be written
    with state.applying(_ack(), 5):
        assert not state.release(rebalancing=True) and not state.maybe_snapshot()
    assert state.applied_offset == 5
    with pytest.raises(Crash), state.applying(_ack(), 6):
        raise Crash
    assert state.applied_offset == 5 and not state.busy
    assert state.release(rebalancing=True)


def test_the_worker_table_store_keeps_the_snapshot_in_files_and_recovers_it(
    small_parts: None, tmp_path: Path
) -> None:
    """The cluster table's store (``dwfiles://``, as the worker declares it): values in files under the
    table's directory, only keys in memory; a changelog recovery (tombstones included) restores it."""
    app = faust.App("dw-test", datadir=str(tmp_path))
    table = app.Table("cluster-state", partitions=1, key_type=bytes, value_type=bytes, store="dwfiles://tabledir")
    store = table.data
    assert isinstance(store, FileStore)
    det = ClusterDetector(DetectionConfig())
    state = ClusterState(det, store, every_s=0.0)
    changelog: list[tuple[bytes, bytes | None]] = []
    for step in range(3):
        _grow(det, step * 40, 40)
        state.applied(_ack(), step)
        before = {k: store[k] for k in store}
        assert state.maybe_snapshot()
        changelog += [(k, v) for k, v in ((k, store.get(k)) for k in store) if before.get(k) != v]
        changelog += [(k, None) for k in before if k not in store]  # what Faust sends as tombstones
    files = sorted(p.name for p in store.data.root.iterdir())
    assert files == sorted(k.hex() for k in store) and len(files) == int(store[b"detector/meta"].split(b":")[1]) + 1
    assert isinstance(store.data, FileValues)  # the values are files, not a dict in the heap

    # a restarted worker, same data dir: a fresh store (left-over files removed), filled from the changelog
    restarted = faust.App("dw-test", datadir=str(tmp_path))
    again = restarted.Table("cluster-state", partitions=1, key_type=bytes, value_type=bytes, store="dwfiles://tabledir").data
    assert again.data.root == store.data.root and not list(again.data.root.iterdir()) and not len(again)
    events = [SimpleNamespace(key=k, value=v, message=SimpleNamespace(value=v, partition=0)) for k, v in changelog]
    again.apply_changelog_batch(events, lambda k: k, lambda v: v)
    fresh = ClusterDetector(DetectionConfig())
    restored = ClusterState(fresh, again, every_s=10.0)
    restored.restore_once()
    assert restored.applied_offset == 2 and fresh.snapshot() == det.snapshot()
    assert sorted(again) == sorted(store)


def test_file_values_refuse_what_a_raw_table_cannot_hold(tmp_path: Path) -> None:
    values = FileValues(tmp_path / "t")
    with pytest.raises(TypeError, match="bytes keys and values"):
        values[b"k"] = "text"  # type: ignore[assignment]
    with pytest.raises(KeyError):
        values[b"missing"]
