"""A Faust table store that keeps its values in files: the cluster snapshot leaves the heap.

The cluster detector's table holds one zlib-compressed snapshot of the whole
detector (two while the next is written): 12.9 MB at the benchmark's 100,653
accounts (``python scripts/core_profile.py``).
Faust's memory store keeps it resident although the worker reads it only once,
when it restores after a start. ``FileStore`` is Faust's memory store with the
values in one file each under the table's directory (``tabledir``, inside the
worker's data dir) and only the keys in memory, so the snapshot costs page
cache, not resident memory.

It has the memory store's semantics otherwise: it starts empty (left-over
files are removed) and Faust recovers it from the changelog topic, which stays
the durable copy. Writes go to the page cache from the event loop (a snapshot's
parts, ~900 KB each, once per ``worker_commit_interval_s`` at most), the loop that
serializes and compresses the detector for the same snapshot. Registered under the
``faust.stores`` entry point as ``dwfiles``: ``app.Table(..., store="dwfiles://tabledir")`` (a bare
``dwfiles://`` is an empty URL, which Faust takes for "no store given").

>>> import tempfile
>>> from pathlib import Path
>>> values = FileValues(Path(tempfile.mkdtemp()) / "t")
>>> values[b"detector/0/0"] = b"part"
>>> values[b"detector/0/0"], list(values), len(values)
(b'part', [b'detector/0/0'], 1)
>>> del values[b"detector/0/0"]
>>> len(values), list(values.root.iterdir())
(0, [])
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

from faust.stores import memory


class FileValues(MutableMapping[bytes, bytes]):
    """A mapping of bytes to bytes with the keys in memory and each value in a file under ``root``
    (named by the key's hex: keys up to 127 bytes, as the cluster table's are)."""

    def __init__(self, root: Path) -> None:
        shutil.rmtree(root, ignore_errors=True)  # memory-store semantics: empty until recovered
        root.mkdir(parents=True)
        self.root = root
        self._keys: set[bytes] = set()

    def _path(self, key: bytes) -> Path:
        return self.root / key.hex()

    def __getitem__(self, key: bytes) -> bytes:
        if key not in self._keys:
            raise KeyError(key)
        return self._path(key).read_bytes()

    def __setitem__(self, key: bytes, value: bytes) -> None:
        if not isinstance(key, bytes) or not isinstance(value, bytes):  # a raw table only
            raise TypeError(f"FileValues holds bytes keys and values, not {type(key).__name__}/{type(value).__name__}")
        self._path(key).write_bytes(value)
        self._keys.add(key)

    def __delitem__(self, key: bytes) -> None:
        self._keys.remove(key)
        self._path(key).unlink()

    def __iter__(self) -> Iterator[bytes]:
        return iter(list(self._keys))

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._keys


class FileStore(memory.Store):
    """Faust's memory store with its values in files (``FileValues``) under ``tabledir/<table>``."""

    def __init__(self, url: Any, app: Any, table: Any, **kwargs: Any) -> None:
        super().__init__(url, app, table, **kwargs)  # its __post_init__ runs first and sets a dict
        self.data = FileValues(Path(app.conf.tabledir) / self.table_name)

    def apply_changelog_batch(
        self, batch: Iterable[Any], to_key: Callable[[Any], Any], to_value: Callable[[Any], Any]
    ) -> None:
        """Apply recovered changelog records in order (a tombstone, value None, deletes its key)."""
        for event in batch:
            key = to_key(event.key)
            if event.message.value is None:
                self.data.pop(key, None)
                self._key_partition.pop(key, None)
            else:
                self.data[key] = to_value(event.value)
                self._key_partition[key] = event.message.partition
