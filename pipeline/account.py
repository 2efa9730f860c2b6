"""One account's detector state: the open minute bucket of counters and everything kept between
events (sketches, decayed accumulators, scoring schedule, incident), with its changelog form.

The bucket vector layout (``EV`` .. ``TREP``, then one count per contract category from ``CAT0``)
is shared by the hot path (``engine``), folding and features (``features``) and aggregate rows.
It is an ``array("d")``: 8 bytes a number inside one object, where a list held a pointer to an int
or float object of 24 to 32 bytes for each; every count is an integer below 2**53, exact in a
double, and ``counts`` gives them back as ints. The decayed accumulators of the same layout, short
then long, and from the first learning the own-history EWMA of the features, share one
``array("f")`` (``acc``): one object and one buffer an account instead of three of each.

>>> st = AccountState("a", 0, created_ms=0, first_ms=90_000)
>>> st.bucket.minute_ms, len(st.bucket.v) == NV
(60000, True)
>>> st.bucket.v[EV] += 2; st.bucket.v[LAT] += 12.5; counts(st.bucket.v)[EV:OUT], counts(st.bucket.v)[LAT]
([2, 0], 12.5)
>>> AccountState.load(st.dump()).dump() == st.dump()
True
"""

from __future__ import annotations

from array import array
from operator import attrgetter
from sys import intern
from typing import Any

from pipeline.alerts import Incident
from pipeline.contract import CATEGORIES
from pipeline.sketches import RecentIds, SimhashNovelty, pack, unpack, zeros
from pipeline.topk import DistinctSketch, HeavyHitters

try:
    import cython  # compile-time class directives (setup.py); uncompiled, its decorators do nothing
except ImportError:  # no Cython on this machine: the module runs uncompiled
    from pipeline.compiled import NoCython as cython

# Bucket vector layout.
EV, IN, OUT, ERR, THR, COT, TOOL, NOVEL, NEAR, NEWM, GAP, GAP2, NGAP, LAT, ACT, TREP = range(16)
CAT0 = 16
NV = CAT0 + len(CATEGORIES)
LONG0, OWN0 = NV, 2 * NV  # ``AccountState.acc``: short accumulators, long ones, then own history
SLOT_MS = 300_000  # activity-mask slot (synchronized-timing signature)
_ZEROS = array("d", bytes(8 * NV))


@cython.no_gc  # no reference cycles: no GC header, never walked by collections
@cython.cclass
class MinuteBucket:
    """One account-minute of counters (also the source of ``AggregateRow``)."""

    __slots__ = ("account_id", "minute_ms", "v", "models", "dirty")

    def __init__(self, account_id: str, minute_ms: int, model: str = "") -> None:
        self.account_id = account_id
        self.minute_ms = minute_ms
        self.v = array("d", _ZEROS)  # counts, and the latency sum (``counts``)
        self.models: tuple[str, ...] = (model,) if model else ()  # distinct, at most 8 (a tuple: 48 bytes
        # for the usual one, where a list took 64, or 88 once appended to; the empty tuple is shared)
        self.dirty = False


def counts(v: array) -> list[Any]:  # type: ignore[type-arg]
    """A bucket vector as the numbers it holds: ints, and the latency sum a float (rows, changelog)."""
    out: list[Any] = [int(x) for x in v]
    out[LAT] = v[LAT]
    return out


@cython.no_gc  # no reference cycles: no GC header, never walked by collections
@cython.cclass
class AccountState:
    """Everything the detector keeps about one account (bytes per slot: ``scripts/memory_breakdown.py``)."""

    __slots__ = (
        "account_id",
        "shard",
        "last_offset",
        "created_ms",
        "first_ms",
        "prev_ts",
        "org_id",
        "bucket",
        "ids",
        "nov",
        "tpl",
        "ips",
        "asn_ua",
        "pays",
        "last_model",
        "model_new",
        "last_ip",
        "last_ua",
        "last_asn",
        "last_pay",
        "acc",
        "fold_ms",
        "hours",
        "hour_last",
        "act_mask",
        "act_slot",
        "dom_mask",
        "dom_old",
        "dom_rot_ms",
        "pending",
        "next_score_ms",
        "force_ms",
        "last_score_ms",
        "last_score",
        "own_n",
        "fp_bias",
        "confirmed",
        "allowlisted",
        "incident",
        "dups",
        "late",
        "events",
        "dirty",
        "tpl_decay_ms",
        "has_old_model",
        "t1",
        "t2",
        "cusum",
        "row_ms",
    )

    def __init__(self, account_id: str, shard: int, created_ms: int, first_ms: int) -> None:
        self.account_id = account_id
        self.shard = shard
        self.last_offset = -1
        self.created_ms = created_ms or first_ms
        self.first_ms = first_ms
        self.prev_ts = first_ms
        self.org_id = ""
        self.bucket = MinuteBucket(account_id, first_ms - first_ms % 60_000)
        self.ids = RecentIds(16, first_ms)
        self.nov = SimhashNovelty()
        self.tpl = HeavyHitters(6)
        self.ips = DistinctSketch()
        self.asn_ua = DistinctSketch()
        self.pays = DistinctSketch(4, 2)
        self.last_model = ""
        self.model_new = False
        self.has_old_model = False
        self.t1 = self.t2 = ""  # the last two distinct template hashes
        self.last_ip = self.last_ua = self.last_pay = ""
        self.last_asn = -2
        self.acc = zeros("f", 2 * NV)  # decayed accumulators: short [0, NV), long [LONG0, OWN0)
        self.fold_ms = first_ms - first_ms % 60_000
        self.hours = 0  # bit i: active in clock hour hour_last - i (24 bits)
        self.hour_last = 0
        self.act_mask = 0
        self.act_slot = first_ms // SLOT_MS
        self.dom_mask = self.dom_old = 0
        self.dom_rot_ms = first_ms
        self.tpl_decay_ms = first_ms
        self.pending = 0
        self.next_score_ms = 0
        self.force_ms = 0
        self.last_score_ms = 0
        self.last_score = 0.0
        self.own_n = 0  # learnings; from the first, acc[OWN0:] holds the own-history EWMA of the features
        self.fp_bias = 0.0
        self.confirmed = False
        self.allowlisted = False
        self.incident: Incident | None = None
        self.dups = self.late = self.events = 0
        self.dirty = False
        self.cusum = 0  # chain-of-thought CUSUM in tenths (see counting.COT_CUSUM_LEVEL)
        self.row_ms = -(1 << 62)  # event time of the last scoring that emitted rows

    # -- persistence ---------------------------------------------------------
    def dump(self) -> list[object]:
        """Plain-JSON form (orjson) of the whole state (one positional list, slot order)."""
        out = list(_ALL_SLOTS(self))
        b = self.bucket
        out[_I_BUCKET] = [b.minute_ms, counts(b.v), list(b.models)]
        for i in _I_ARRAYS:
            out[i] = pack(out[i])  # type: ignore[arg-type]
        for i in _I_SKETCHES:
            out[i] = out[i].dump()  # type: ignore[attr-defined]
        if self.incident is not None:
            out[_I_INCIDENT] = self.incident.dump()
        out[_I_LAST_IP] = ""  # a memo of the raw address: never written to the changelog (only prefixes are)
        return out

    @classmethod
    def load(cls, d: list) -> AccountState:  # type: ignore[type-arg]
        st = cls.__new__(cls)
        if len(d) == _V0_LEN:
            d = _from_v0(d)
        kinds: dict[str, type[RecentIds | SimhashNovelty | HeavyHitters | DistinctSketch]] = {
            "ids": RecentIds,
            "nov": SimhashNovelty,
            "tpl": HeavyHitters,
            "ips": DistinctSketch,
            "asn_ua": DistinctSketch,
            "pays": DistinctSketch,
        }
        for name, val in zip(cls.__slots__, d, strict=True):
            if name in kinds:
                val = kinds[name].load(val)
            elif name == "acc":
                val = unpack("f", val)
            elif name == "incident":
                val = Incident.load(val) if val is not None else None
            elif name == "bucket":
                bk = MinuteBucket(d[0], val[0])
                bk.v = array("d", val[1])
                val = bk
            setattr(st, name, val)
        st.dirty = False
        # A loaded account (restored, thawed) shares its strings with every other account, as the
        # hot path's are (``counting.count`` interns what an account keeps), and with the cluster detector.
        st.account_id = st.bucket.account_id = intern(st.account_id)
        st.org_id, st.last_model, st.last_ua = intern(st.org_id), intern(st.last_model), intern(st.last_ua)
        st.last_pay, st.t1, st.t2 = intern(st.last_pay), intern(st.t1), intern(st.t2)
        st.bucket.models = tuple(intern(m) for m in d[_I_BUCKET][2])
        return st


_ALL_SLOTS = attrgetter(*AccountState.__slots__)
_I_BUCKET = AccountState.__slots__.index("bucket")
_I_ARRAYS = [AccountState.__slots__.index("acc")]
_I_SKETCHES = [AccountState.__slots__.index(n) for n in ("ids", "nov", "tpl", "ips", "asn_ua", "pays")]
_I_INCIDENT = AccountState.__slots__.index("incident")
_I_LAST_IP = AccountState.__slots__.index("last_ip")

# The record layout before the three vectors became ``acc`` (changelogs written by earlier versions
# restore): "short" and "long" where "acc" is now, and "own" just before "own_n".
_I_ACC = AccountState.__slots__.index("acc")
_I_OWN_N = AccountState.__slots__.index("own_n")
_V0_LEN = len(AccountState.__slots__) + 2


def _from_v0(d: list) -> list:  # type: ignore[type-arg]
    """A record of the earlier layout in this one's (``acc``: short, long, then own if it learned)."""
    short, long, own = d[_I_ACC], d[_I_ACC + 1], d[_I_OWN_N + 1]
    acc = unpack("f", short) + unpack("f", long) + unpack("f", own)
    return [*d[:_I_ACC], pack(acc), *d[_I_ACC + 2 : _I_OWN_N + 1], *d[_I_OWN_N + 2 :]]
