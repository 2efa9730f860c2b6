"""The benchmark's data: simulated contract events spread over a requested number of account ids.

``make_data`` runs the simulator (its mix of ordinary and abusive families), then splits each actor's
traffic over enough account ids for the requested number of active accounts; every event is
serialized once, so each phase of ``bench`` reads the same bytes.
"""

from __future__ import annotations

import argparse
import zlib
from dataclasses import dataclass
from typing import Any

import orjson

SPLIT = 20  # account ids per simulated actor in the benchmark data


@dataclass
class BenchData:
    """The events of one benchmark, serialized once: (account key, JSON value)."""

    items: list[tuple[bytes | None, bytes]]
    accounts: int
    distinct_events: int


def _split_account(ev: dict[str, Any], k: int) -> dict[str, Any]:
    """Account ``k`` of an actor: its own id, address and fingerprints (so splits do not look linked)."""
    ev = {**ev, "account_id": f"{ev['account_id']}.{k}"}
    client = dict(ev.get("client") or {})
    if k and "ip" in client and "." in client["ip"]:
        a, b, c, d = client["ip"].split(".")
        client["ip"] = f"{a}.{(int(b) + k // 256) % 256}.{(int(c) + 7 * k) % 256}.{d}"
        client["user_agent"] = f"{client.get('user_agent', '')} s{k}"
    ev["client"] = client
    if k and ev.get("payment_fingerprint"):
        ev["payment_fingerprint"] = f"{ev['payment_fingerprint']}{k:x}"
    prompt = dict(ev.get("prompt") or {})
    if k and prompt.get("template_hash"):
        prompt["template_hash"] = f"{prompt['template_hash']}{k:x}"
    ev["prompt"] = prompt
    return ev


def _split_for(actor_of: list[str], keys: list[int], accounts: int) -> int:
    """The smallest split (account ids per actor) giving >= ``accounts`` active ids (doubling, then bisection)."""

    def active(split: int) -> int:
        return len({(a, k % split) for a, k in zip(actor_of, keys, strict=True)})

    lo, hi = 1, 1
    while active(hi) < accounts:
        if hi >= 4096:
            return hi
        lo, hi = hi, hi * 2
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if active(mid) < accounts else (lo, mid)
    return hi


def make_data(events: int, accounts: int, seed: int, progress: bool = True) -> BenchData:
    """``events`` simulated events with ``accounts`` (or more) active accounts (the simulator's mix of families)."""
    from tqdm import tqdm

    from pipeline.simulate import SimConfig, generate

    # The simulator's actors follow daily rhythms, so a short window holds few active accounts:
    # simulate 1/SPLIT of the accounts, then give each actor's traffic as many account ids (by event
    # id hash) as it takes for ``accounts`` distinct ids to be active among ``events`` events.
    actors = max(100, accounts // SPLIT)
    pilot = SimConfig(seed=seed, accounts=min(actors, 400), hours=1.0)
    per_actor_hour = max(1.0, sum(1 for _ in generate(pilot)) / pilot.accounts)
    hours = 1.15 * events / (actors * per_actor_hour)
    raw: list[dict[str, Any]] = []
    bar = tqdm(total=events, desc="simulating", unit="ev", disable=not progress, mininterval=0.5)
    for ev in generate(SimConfig(seed=seed, accounts=actors, hours=hours)):
        raw.append(ev)
        bar.update(1)
        if len(raw) >= events:
            break
    bar.close()
    keys = [zlib.crc32(str(ev["event_id"]).encode()) for ev in raw]
    split = _split_for([str(ev["account_id"]) for ev in raw], keys, accounts)
    items: list[tuple[bytes | None, bytes]] = []
    seen: set[str] = set()
    for ev, key in zip(raw, keys, strict=True):
        ev = _split_account(ev, key % split)  # a copy: the simulator yields a retried event's dict twice
        acct = str(ev["account_id"])
        items.append((acct.encode(), orjson.dumps(ev)))
        seen.add(acct)
    return BenchData(items, len(seen), len({str(ev["event_id"]) for ev in raw}))


def script_parser(doc: str, events: int, accounts: int) -> argparse.ArgumentParser:
    """A measuring script's ``--events``, ``--accounts`` and ``--seed`` flags (``doc``'s first line is its
    help); the script may add its own before parsing."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--events", type=int, default=events)
    p.add_argument("--accounts", type=int, default=accounts)
    p.add_argument("--seed", type=int, default=2024)
    return p


def data_from_cli(doc: str, events: int, accounts: int) -> BenchData:
    """The data of a measuring script (``script_parser``'s flags), built as ``bench`` builds them."""
    args = script_parser(doc, events, accounts).parse_args()
    return make_data(args.events, args.accounts, args.seed)
