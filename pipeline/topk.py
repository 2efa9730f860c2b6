"""Top-k sketches for per-account state: the heaviest template hashes (``HeavyHitters``,
Misra-Gries) and distinct counts of addresses, agents and payments (``DistinctSketch``, k minimum
values), each with at most ``MAX_K`` = 8 entries (C arrays inside the object in the compiled build,
``topk.pxd``); and the normalised ``entropy`` of a count vector.

>>> h = HeavyHitters(2)
>>> for t in "aaab": h.add(t)
>>> h.top(1), round(entropy(list(h.counts().values())), 3)
(['a'], 0.811)
"""

from __future__ import annotations

import math
from array import array
from sys import intern

from pipeline.sketches import pack, stable_hash, unpack

try:
    import cython  # compile-time class directives (setup.py); uncompiled, its decorators do nothing
except ImportError:  # no Cython on this machine: the module runs uncompiled
    from pipeline.compiled import NoCython as cython


@cython.no_gc  # no reference cycles: no GC header, never walked by collections
@cython.cclass
class HeavyHitters:
    """Misra-Gries top-k of strings (template hashes): concentration = top count / total.

    ``keys`` in the order they were taken, ``vals[i]`` the count of ``keys[i]``; ``k`` is at most
    ``MAX_K`` (in the compiled build, topk.pxd, the counts are a C array inside the object).

    >>> h = HeavyHitters(2)
    >>> for t in "aaab": h.add(t)
    >>> h.top(1), h.concentration(), h.dump()
    (['a'], 0.75, [{'a': 3.0, 'b': 1.0}, 2, 4.0])
    """

    __slots__ = ("keys", "vals", "k", "total")

    MAX_K = 8

    def __init__(self, k: int = 6) -> None:
        if not 1 <= k <= self.MAX_K:
            raise ValueError(f"HeavyHitters: k={k} is outside 1..{self.MAX_K}")
        self.keys: tuple[str, ...] = ()  # a tuple: 40 bytes + 8 a key, where a list took 56 + 32 or 64
        self.vals = array("d", bytes(8 * self.MAX_K))
        self.k = k
        self.total = 0.0

    def add(self, key: str) -> None:
        self.total += 1
        keys = self.keys
        n = len(keys)
        for i in range(n):
            if keys[i] == key:
                self.vals[i] += 1
                return
        if n < self.k:
            self.keys = (*keys, key)
            self.vals[n] = 1
            return
        kept = 0  # decrement all; drop zeros, the others keep their order (a new tuple only then)
        left = None
        for i in range(n):
            c = self.vals[i] - 1
            if c > 0:
                if left is not None:
                    left.append(keys[i])
                self.vals[kept] = c
                kept += 1
            elif left is None:
                left = list(keys[:i])
        if left is not None:
            self.keys = tuple(left)

    def decay(self, factor: float = 0.5) -> None:
        """Age the counts so concentration follows recent traffic."""
        self.total *= factor
        for i in range(len(self.keys)):
            self.vals[i] *= factor

    def counts(self) -> dict[str, float]:
        """Key -> count, in the order the keys were taken."""
        return {self.keys[i]: self.vals[i] for i in range(len(self.keys))}

    def top(self, n: int = 3) -> list[str]:
        """The ``n`` most counted keys, by count, then key."""
        return [self.keys[i] for i in self._order(n)]

    def _order(self, n: int) -> list[int]:
        """Positions of the ``n`` most counted keys, by count, then key: a selection over the counts
        (a C array in the compiled build)."""
        keys = self.keys
        m = len(keys)
        out = []
        used = 0  # bit i set: keys[i] already taken
        for _ in range(min(n, m)):
            at = -1
            for i in range(m):
                if not (used >> i) & 1 and (
                    at < 0
                    or self.vals[i] > self.vals[at]
                    or (self.vals[i] == self.vals[at] and keys[i] < keys[at])
                ):
                    at = i
            used |= 1 << at
            out.append(at)
        return out

    def concentration(self) -> float:
        top = 0.0
        for i in range(len(self.keys)):
            if self.vals[i] > top:
                top = self.vals[i]
        return top / self.total if self.total else 0.0

    def coverage(self, n: int = 3) -> float:
        """Share of all observations (``total`` also counts un-keyed ones) in the top ``n`` keys: their
        counts added largest first, as ``sum`` over the sorted counts adds them (equal counts are equal
        whichever comes first)."""
        if not self.total:
            return 0.0
        taken = 0.0
        for i in self._order(n):
            taken += self.vals[i]
        return taken / self.total

    def dump(self) -> list[object]:
        return [self.counts(), self.k, self.total]

    @classmethod
    def load(cls, d: list) -> HeavyHitters:  # type: ignore[type-arg]
        h = cls(d[1])
        h._restore(d[0], d[2])
        return h

    def _restore(self, counts: dict[str, float], total: float) -> None:
        if len(counts) > self.k:
            raise ValueError(f"HeavyHitters: {len(counts)} counts for k={self.k}")
        self.keys = tuple(intern(k) for k in counts)
        for i, c in enumerate(counts.values()):
            self.vals[i] = c
        self.total = total


@cython.no_gc  # no reference cycles: no GC header, never walked by collections
@cython.cclass
class DistinctSketch:
    """Distinct count: exact below ``k`` values, K-minimum-values estimate above; keeps a few examples.

    ``k`` is at most ``MAX_K``: in the compiled build (topk.pxd) the hashes are a C array inside
    the object, and the examples a tuple.

    >>> d = DistinctSketch()
    >>> for v in ["a", "b", "a", "c"]: d.add(v)
    >>> d.estimate(), d.examples
    (3.0, ('a', 'b', 'c'))
    """

    __slots__ = ("mins", "n", "examples", "k", "n_examples")

    MAX_K = 8

    def __init__(self, k: int = 8, n_examples: int = 4) -> None:
        if not 1 <= k <= self.MAX_K:
            raise ValueError(f"DistinctSketch: k={k} is outside 1..{self.MAX_K}")
        self.mins = array("I", bytes(4 * self.MAX_K))  # the n smallest hashes seen, in arrival order
        self.n = 0
        self.examples: tuple[str, ...] = ()
        self.k = k
        self.n_examples = n_examples

    def add(self, value: str) -> None:
        h = stable_hash(value)
        n = self.n
        top = 0  # index of the (first) largest hash held
        for i in range(n):
            m = self.mins[i]
            if m == h:
                return
            if m > self.mins[top]:
                top = i
        if len(self.examples) < self.n_examples:
            self.examples = (*self.examples, value)
        if n < self.k:
            self.mins[n] = h
            self.n = n + 1
        elif h < self.mins[top]:
            self.mins[top] = h

    def estimate(self) -> float:
        n = self.n
        if n < self.k:
            return float(n)
        largest = 0
        for i in range(n):
            if self.mins[i] > largest:
                largest = self.mins[i]
        return (self.k - 1) / (largest / 2**32)

    def hashes(self) -> array:  # type: ignore[type-arg]
        """The hashes held (at most ``k``), in the order they were taken."""
        return array("I", [self.mins[i] for i in range(self.n)])

    def dump(self) -> list[object]:
        return [pack(self.hashes()), list(self.examples), self.k, self.n_examples]

    @classmethod
    def load(cls, d: list) -> DistinctSketch:  # type: ignore[type-arg]
        s = cls(d[2], d[3])
        s._restore(unpack("I", d[0]), tuple(intern(x) for x in d[1]))
        return s

    def _restore(self, hashes: array, examples: tuple[str, ...]) -> None:  # type: ignore[type-arg]
        if len(hashes) > self.k:
            raise ValueError(f"DistinctSketch: {len(hashes)} hashes for k={self.k}")
        for i in range(len(hashes)):
            self.mins[i] = hashes[i]
        self.n = len(hashes)
        self.examples = examples


def entropy(counts: list[float] | array) -> float:  # type: ignore[type-arg]
    """Shannon entropy normalised to [0, 1] by log(len(counts)).

    >>> round(entropy([1, 1, 0, 0]), 3), entropy([5, 0, 0, 0])
    (0.5, 0.0)
    """
    n = len(counts)
    total = 0.0  # C doubles in the compiled build (topk.pxd), summed in order as sum() does
    for i in range(n):
        c = counts[i]
        total += c
    if total <= 0 or n < 2:
        return 0.0
    acc = 0.0
    for i in range(n):
        c = counts[i]
        if c > 0:
            p = c / total
            acc += p * math.log(p)
    r = -acc / math.log(n)
    return r if r > 0.0 else 0.0
