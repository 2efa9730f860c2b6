"""Split large state blobs into Kafka-sized records and put them back together on restore.

Kafka's default ``message.max.bytes`` is 1 MB; a River model or a cluster
snapshot can be larger. A blob over ``CHUNK_BYTES`` is written as ``n``
consecutive records keyed ``KEY<US>i<US>n``; readers feed records in log
order to a ``Reassembler``, which returns each blob once all its parts arrived.

>>> parts = split("k", b"x" * 5, limit=2)
>>> [key for key, _ in parts]
['k\\x1f0\\x1f3', 'k\\x1f1\\x1f3', 'k\\x1f2\\x1f3']
>>> r = Reassembler()
>>> [r.feed(k, v) for k, v in parts][-1]
('k', b'xxxxx')
>>> r.feed("small", b"v")
('small', b'v')
"""

from __future__ import annotations

SEP = "\x1f"
CHUNK_BYTES = 900_000


def part_keys(key: str, n: int) -> list[str]:
    """The record keys of a blob written in ``n`` parts."""
    return [key] if n == 1 else [f"{key}{SEP}{i}{SEP}{n}" for i in range(n)]


def pieces(blob: bytes, limit: int = CHUNK_BYTES) -> list[bytes]:
    """``blob`` cut into consecutive pieces of at most ``limit`` bytes (one piece when small or empty)."""
    return [blob[i : i + limit] for i in range(0, len(blob), limit)] or [blob]


def split(key: str, blob: bytes, limit: int = CHUNK_BYTES) -> list[tuple[str, bytes]]:
    """``[(key, blob)]`` when small, else the numbered parts in order."""
    parts = pieces(blob, limit)
    return list(zip(part_keys(key, len(parts)), parts, strict=True))


class Reassembler:
    """Collects numbered parts; a part 0 starts the blob afresh (a newer snapshot)."""

    def __init__(self) -> None:
        self._parts: dict[str, list[bytes]] = {}

    def feed(self, key: str, blob: bytes) -> tuple[str, bytes] | None:
        """Return ``(key, blob)`` when a whole blob is available, else None."""
        if SEP not in key:
            return key, blob
        base, i, n = key.split(SEP)
        if i == "0":
            self._parts[base] = []
        parts = self._parts.get(base)
        if parts is None or len(parts) != int(i):
            return None  # a part without its predecessors (compacted away): wait for a whole set
        parts.append(blob)
        if len(parts) < int(n):
            return None
        del self._parts[base]
        return base, b"".join(parts)
