"""Linking evidence between accounts: what the cluster detector knows of an account
(``AccountSummary``), its linking keys, and the weight of the evidence that two accounts are one
operator (shared payment fingerprint 2, IP /24 prefix, ASN + user agent, template hash and
synchronized activity 1 each; a quarter inside one organisation).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from sys import intern

KIND_WEIGHT = {"pay": 2.0, "ip": 1.0, "au": 1.0, "tpl": 1.0}


@dataclass(slots=True)
class AccountSummary:
    """What the cluster detector needs to know about one account (sent through Kafka as JSON)."""

    account_id: str
    ts_ms: int
    created_ms: int
    first_ms: int
    org_id: str = ""
    score: float = 0.0
    harvest: float = 0.0
    events: int = 0
    ip_prefixes: list[str] = field(default_factory=list)
    asn_uas: list[str] = field(default_factory=list)
    payments: list[str] = field(default_factory=list)
    templates: list[str] = field(default_factory=list)
    act_mask: int = 0  # 48 x 5-minute activity slots ending at act_slot (bit 0)
    act_slot: int = 0
    allowlisted: bool = False

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> AccountSummary:  # type: ignore[type-arg]
        """From the JSON form; strings interned (shared with the engine's account state in a worker)."""
        s = cls(**d)
        s.account_id, s.org_id = intern(s.account_id), intern(s.org_id)
        s.ip_prefixes = [intern(x) for x in s.ip_prefixes]
        s.asn_uas = [intern(x) for x in s.asn_uas]
        s.payments = [intern(x) for x in s.payments]
        return s

    def link_keys(self) -> list[str]:
        """Linking keys, interned: an account's key set and the key index share one string per key."""
        return (
            [intern(f"pay:{p}") for p in self.payments]
            + [intern(f"ip:{p}") for p in self.ip_prefixes]
            + [intern(f"au:{a}") for a in self.asn_uas]
            + [intern(f"tpl:{t}") for t in self.templates]
        )


def ip_prefix(ip: str) -> str:
    """Network prefix of an address: /24 for IPv4, /48 for IPv6.

    >>> ip_prefix("10.1.2.3"), ip_prefix("2001:db8:1:2::5")
    ('10.1.2.0/24', '2001:db8:1::/48')
    """
    if ":" in ip:
        return ":".join(ip.split(":")[:3]) + "::/48"
    return ip.rsplit(".", 1)[0] + ".0/24"


def same_sources(a: AccountSummary, b: AccountSummary) -> bool:
    """Same payments, prefixes, ASN/user agents and templates (so the same linking keys)."""
    return (
        a.payments == b.payments
        and a.ip_prefixes == b.ip_prefixes
        and a.asn_uas == b.asn_uas
        and a.templates == b.templates
    )


def synchronized(a: AccountSummary, b: AccountSummary) -> bool:
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
    a: AccountSummary, b: AccountSummary, ka: Collection[str], kb: Collection[str]
) -> tuple[float, list[str]]:
    """Evidence that two accounts are one operator: (weight, kinds shared).

    ``ka`` and ``kb`` are the two accounts' key sets; only the keys they share count, so either may
    come first. Each key of ``ka`` is looked up in ``kb``: pass a set as ``kb`` when it is reused.
    """
    kinds = sorted({k.split(":", 1)[0] for k in ka if k in kb})
    if not {"pay", "ip", "tpl"} & set(kinds):  # needs some specific shared infrastructure or template
        return 0.0, kinds
    w = sum(KIND_WEIGHT[k] for k in kinds)
    if synchronized(a, b):
        w += 1.0
        kinds.append("sync")
    if a.org_id and a.org_id == b.org_id:
        w *= 0.25
    return w, kinds
