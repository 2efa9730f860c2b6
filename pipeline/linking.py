"""Linking evidence between accounts: what the cluster detector knows of an account
(``AccountSummary``), its linking keys by kind, and the weight of the evidence that two accounts are
one operator (shared payment fingerprint 2, IP /24 prefix, ASN + user agent, template hash and
synchronized activity 1 each; a quarter inside one organisation).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field
from sys import intern

try:
    import cython  # compile-time class directives (setup.py); uncompiled, its decorators do nothing
except ImportError:  # no Cython on this machine: the module runs uncompiled
    from pipeline.compiled import NoCython as cython

KIND_WEIGHT = {"pay": 2.0, "ip": 1.0, "au": 1.0, "tpl": 1.0}
# The kinds of linking key and the summary field holding each, in the order a link lists its kinds.
KINDS = (("au", "asn_uas"), ("ip", "ip_prefixes"), ("pay", "payments"), ("tpl", "templates"))


@dataclass(slots=True)
class AccountSummary:
    """What the cluster detector needs to know about one account (sent through Kafka as JSON).

    The key fields are the engine's lists; the cluster detector holds each account's keys of every
    summary so far as sorted tuples in their place (``merged``, a ``HeldSummary``)."""

    account_id: str
    ts_ms: int
    created_ms: int
    first_ms: int
    org_id: str = ""
    score: float = 0.0
    harvest: float = 0.0
    events: int = 0
    ip_prefixes: Sequence[str] = field(default_factory=list)
    asn_uas: Sequence[str] = field(default_factory=list)
    payments: Sequence[str] = field(default_factory=list)
    templates: Sequence[str] = field(default_factory=list)
    act_mask: int = 0  # 48 x 5-minute activity slots ending at act_slot (bit 0)
    act_slot: int = 0
    allowlisted: bool = False

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> AccountSummary:  # type: ignore[type-arg]
        """From the JSON form; strings interned (shared with the engine's account state in a worker,
        and with the cluster detector's key index)."""
        s = cls(**d)
        s.account_id, s.org_id = intern(s.account_id), intern(s.org_id)
        s.ip_prefixes = [intern(x) for x in s.ip_prefixes]
        s.asn_uas = [intern(x) for x in s.asn_uas]
        s.payments = [intern(x) for x in s.payments]
        s.templates = [intern(x) for x in s.templates]
        return s

    def link_keys(self) -> tuple[Sequence[str], Sequence[str], Sequence[str], Sequence[str]]:
        """The linking keys by kind (``KINDS`` order)."""
        return self.asn_uas, self.ip_prefixes, self.payments, self.templates

    def merged(self, held: HeldSummary | None) -> tuple[HeldSummary, list[list[str]]]:
        """This summary with its keys joined to those ``held`` (the account's previous merged
        summary) has, as sorted tuples; and the keys, by kind, that ``held`` did not have.

        >>> first = AccountSummary("a", 0, 0, 0, ip_prefixes=["10.0.0.0/24"], templates=["t2", "t1"])
        >>> m, new = first.merged(None)
        >>> m.ip_prefixes, m.templates, new
        (('10.0.0.0/24',), ('t1', 't2'), [[], ['10.0.0.0/24'], [], ['t1', 't2']])
        >>> m2, new = AccountSummary("a", 60_000, 0, 0, templates=["t3", "t1"]).merged(m)
        >>> m2.ip_prefixes, m2.templates, new
        (('10.0.0.0/24',), ('t1', 't2', 't3'), [[], [], [], ['t3']])
        """
        before = held.link_keys() if held is not None else ((), (), (), ())
        new = [sorted({k for k in keys if k not in old}) for keys, old in zip(self.link_keys(), before, strict=True)]
        au, ip, pay, tpl = [  # a list, not a generator (cheaper compiled)
            tuple(sorted((*old, *add))) if add else tuple(old) for old, add in zip(before, new, strict=True)
        ]
        return HeldSummary(self, ip, au, pay, tpl), new


@cython.no_gc  # no reference cycles: no GC header, never walked by collections
@cython.cclass
class HeldSummary:
    """An account's summary as the cluster detector holds it (``AccountSummary.merged``): the fields
    of the latest summary, with the keys of every summary so far as sorted tuples. Compiled, its
    numbers are C fields (``linking.pxd``): an ``AccountSummary`` holds its eight as int and float
    objects of 24 to 32 bytes each (small ints shared).

    >>> h, _ = AccountSummary("a", 5, 0, 0, score=0.5, templates=["t2", "t1"]).merged(None)
    >>> h.templates, h.score, list(h.to_dict()) == list(AccountSummary.__slots__)
    (('t1', 't2'), 0.5, True)
    """

    __slots__ = AccountSummary.__slots__

    def __init__(self, s: AccountSummary, ip: tuple[str, ...], au: tuple[str, ...], pay: tuple[str, ...],
                 tpl: tuple[str, ...]) -> None:  # fmt: skip
        self.account_id, self.ts_ms, self.created_ms, self.first_ms = s.account_id, s.ts_ms, s.created_ms, s.first_ms
        self.org_id, self.score, self.harvest, self.events = s.org_id, s.score, s.harvest, s.events
        self.ip_prefixes, self.asn_uas, self.payments, self.templates = ip, au, pay, tpl
        self.act_mask, self.act_slot, self.allowlisted = s.act_mask, s.act_slot, s.allowlisted

    def link_keys(self) -> tuple[Sequence[str], Sequence[str], Sequence[str], Sequence[str]]:
        """The linking keys by kind (``KINDS`` order)."""
        return self.asn_uas, self.ip_prefixes, self.payments, self.templates

    def to_dict(self) -> dict[str, object]:
        """The JSON form of the summary, as ``AccountSummary.to_dict`` gives it (its field order)."""
        return {name: getattr(self, name) for name in self.__slots__}


def ip_prefix(ip: str) -> str:
    """Network prefix of an address: /24 for IPv4, /48 for IPv6.

    >>> ip_prefix("10.1.2.3"), ip_prefix("2001:db8:1:2::5")
    ('10.1.2.0/24', '2001:db8:1::/48')
    """
    if ":" in ip:
        return ":".join(ip.split(":")[:3]) + "::/48"
    return ip.rsplit(".", 1)[0] + ".0/24"


def synchronized(a: AccountSummary | HeldSummary, b: AccountSummary | HeldSummary) -> bool:
    """Active in mostly the same 5-minute slots (Jaccard >= 0.6 over >= 4 slots).

    >>> s = AccountSummary("a", 0, 0, 0, act_mask=0b1111, act_slot=10)
    >>> synchronized(s, AccountSummary("b", 0, 0, 0, act_mask=0b11110, act_slot=11))
    True
    """
    shift = a.act_slot - b.act_slot
    ma, mb = a.act_mask, b.act_mask
    if shift > 0:
        mb <<= shift
    else:
        ma <<= -shift
    union = (ma | mb).bit_count()
    # always-on traffic (production apps, bots) is "synchronized" with everything: not evidence
    return 4 <= union <= 36 and (ma & mb).bit_count() / union >= 0.6


def link_weight(
    a: AccountSummary | HeldSummary, b: AccountSummary | HeldSummary, probe: Sequence[Collection[str]]
) -> tuple[float, list[str]]:
    """Evidence that two accounts are one operator: (weight, kinds shared).

    ``probe`` holds ``a``'s keys by kind (``KINDS`` order; sets when reused for many ``b``): a kind
    counts when one of ``b``'s keys of that kind is in it.

    >>> a = AccountSummary("a", 0, 0, 0, ip_prefixes=("5.6.7.0/24",), payments=("pf-1",))
    >>> b = AccountSummary("b", 0, 0, 0, ip_prefixes=("5.6.7.0/24",), payments=("pf-1",), org_id="o")
    >>> link_weight(a, b, a.link_keys())
    (3.0, ['ip', 'pay'])
    """
    kinds: list[str] = []
    for (kind, _), mine, theirs in zip(KINDS, probe, b.link_keys(), strict=True):
        for k in theirs:  # loops, not generators: this runs for every candidate of every relink
            if k in mine:
                kinds.append(kind)
                break
    if "pay" not in kinds and "ip" not in kinds and "tpl" not in kinds:  # needs specific infrastructure or template
        return 0.0, kinds
    w = 0.0
    for k in kinds:
        w += KIND_WEIGHT[k]
    if synchronized(a, b):
        w += 1.0
        kinds.append("sync")
    if a.org_id and a.org_id == b.org_id:
        w *= 0.25
    return w, kinds
