"""``simulate``: labelled synthetic API traffic (hashes only, never prompt text) from a seed.

Each account is an actor with a precomputed activity schedule (segments of
constant rate in event time, following daily rhythms in its time zone); a heap
merges all actors so events come out in event-time order. A new model
(``m-large-2``) is released part-way through. About 0.2 % of requests are
repeated with the same ``event_id`` (gateway retries).

Benign families: chat, developer, production_app (templated, 24/7),
benchmark (step-by-step evaluation runs), corporate_nat (many employees behind
one address), power_user. Attack families: cot_harvest, agentic_extraction,
category_sweep, hydra_cluster, low_and_slow, model_hopper.

>>> cfg = SimConfig(seed=1, accounts=60, hours=2)
>>> evs = list(generate(cfg))
>>> evs == list(generate(cfg)) and all(a["ts"] <= b["ts"] for a, b in zip(evs, evs[1:]))
True
"""

from __future__ import annotations

import argparse
import csv
import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass

from pipeline.sim_actors import FAMILIES, MIX, Actor
from pipeline.sim_families import (
    agentic_extraction,
    benchmark,
    category_sweep,
    chat,
    corporate,
    cot_harvest,
    developer,
    hydra,
    low_and_slow,
    model_hopper,
    power_user,
    production_app,
)

DEFAULT_START_MS = 1_717_200_000_000  # 2024-06-01T00:00:00Z

SINGLE = {
    "developer": developer,
    "production_app": production_app,
    "benchmark": benchmark,
    "power_user": power_user,
    "cot_harvest": cot_harvest,
    "agentic_extraction": agentic_extraction,
    "category_sweep": category_sweep,
    "low_and_slow": low_and_slow,
    "model_hopper": model_hopper,
}


def build_actors(master: random.Random, n: int, start: int, end: int) -> list[Actor]:
    """All accounts of one simulation (family sizes from ``MIX``; chat takes the rest)."""
    release = start + int(master.uniform(0.3, 0.5) * (end - start))
    actors: list[Actor] = []
    for fam, share in MIX.items():
        want = max(1, round(share * n))
        got: list[Actor] = []
        while len(got) < want:
            left = want - len(got)
            if fam == "corporate_nat":
                got += corporate(master, start, end, release, min(left, master.randint(15, 60)))
            elif fam == "hydra_cluster":
                size = master.randint(6, min(20, left)) if left >= 6 else left
                got += hydra(master, start, end, release, left if left - size < 6 else size)
            else:
                got += SINGLE[fam](master, start, end, release)
        actors += got
    while len(actors) < n:
        actors += chat(master, start, end, release)
    for a in actors:
        a.start()
    return actors


@dataclass(frozen=True, slots=True)
class SimConfig:
    seed: int = 1
    accounts: int = 1000
    hours: float = 48.0
    start_ms: int = DEFAULT_START_MS
    dup_rate: float = 0.002

    @property
    def end_ms(self) -> int:
        return self.start_ms + int(self.hours * 3_600_000)


def _actors(config: SimConfig) -> list[Actor]:
    return build_actors(random.Random(config.seed), config.accounts, config.start_ms, config.end_ms)


def labels(config: SimConfig) -> list[tuple[str, str, str]]:
    """(account_id, attack|benign, scenario) for every simulated account."""
    return [(a.account_id, FAMILIES[a.family], a.family) for a in _actors(config)]


def generate(config: SimConfig) -> Iterator[dict[str, object]]:
    """Contract event dicts in event-time order (deterministic for a seed)."""
    actors = _actors(config)
    rng = random.Random(config.seed * 7919 + 1)
    heap: list[tuple[int, int, int]] = []  # (ts, kind/order, actor index); kind 0 = actor, 1 = retry
    retries: dict[int, dict[str, object]] = {}
    for i, a in enumerate(actors):
        if a.next_ts < config.end_ms:
            heap.append((a.next_ts, 0, i))
    heapq.heapify(heap)
    seq = 0
    while heap:
        ts, kind, i = heapq.heappop(heap)
        if kind:
            yield retries.pop(i)
            continue
        a = actors[i]
        ev = a.emit()
        yield ev
        if rng.random() < config.dup_rate:
            seq += 1
            dup = dict(ev)
            dup["ts"] = ts + rng.randint(1, 3000)
            retries[seq] = dup
            heapq.heappush(heap, (int(dup["ts"]), 1, seq))  # type: ignore[call-overload]
        if a.next_ts < config.end_ms:
            heapq.heappush(heap, (a.next_ts, 0, i))


def _parse_start(text: str) -> int:
    from pipeline.errors import DistillWatchError, InvalidEvent
    from pipeline.validation import parse_ts

    try:
        return parse_ts(int(text) if text.isdigit() else text, "--start")
    except InvalidEvent as exc:
        raise DistillWatchError(f"--start: {exc}") from None


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("simulate", help="write labelled synthetic traffic (events JSONL + labels CSV)")
    p.add_argument("--out-events", help="events JSON Lines file to write")
    p.add_argument("--out-labels", required=True, help="labels CSV file to write")
    p.add_argument("--kafka", action="store_true", help="send the events to DW_TOPIC_REQUESTS instead of a file")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: DW_SEED)")
    p.add_argument("--accounts", type=int, default=1000)
    p.add_argument("--hours", type=float, default=48.0)
    p.add_argument("--start", default=str(DEFAULT_START_MS), help="RFC 3339 or epoch ms")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: object) -> int:
    import orjson

    from pipeline.errors import DistillWatchError

    if args.accounts < 10 or args.hours <= 0:
        raise DistillWatchError("--accounts must be >= 10 and --hours > 0")
    seed = args.seed if args.seed is not None else int(getattr(settings, "seed", 1))
    cfg = SimConfig(seed=seed, accounts=args.accounts, hours=args.hours, start_ms=_parse_start(args.start))
    if args.kafka == bool(args.out_events):
        raise DistillWatchError("give exactly one of --out-events FILE or --kafka")
    n = 0
    try:
        if args.kafka:
            _write_labels(args.out_labels, cfg)
            return _to_kafka(cfg, settings)
        with open(args.out_events, "wb") as fh:
            buf = []
            for ev in generate(cfg):
                buf.append(orjson.dumps(ev))
                n += 1
                if len(buf) >= 10_000:
                    fh.write(b"\n".join(buf) + b"\n")
                    buf.clear()
            if buf:
                fh.write(b"\n".join(buf) + b"\n")
        _write_labels(args.out_labels, cfg)
    except OSError as exc:
        raise DistillWatchError(f"cannot write output: {exc}") from None
    print(f"wrote {n} events for {cfg.accounts} accounts ({cfg.hours} h, seed {seed})")
    return 0


def _write_labels(path: str, cfg: SimConfig) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["account_id", "label", "scenario"])
        w.writerows(labels(cfg))


def _to_kafka(cfg: SimConfig, settings: object) -> int:
    """Produce the simulated events straight into the request topic (keyed by account)."""
    import asyncio

    from pipeline.replay import event_items, produce_values
    from pipeline.settings import Settings

    if not isinstance(settings, Settings):
        raise TypeError("settings must be a Settings")
    topic = settings.topic_requests
    n = asyncio.run(produce_values(settings, topic, event_items(generate(cfg)), desc="simulating"))
    print(f"sent {n} events for {cfg.accounts} accounts ({cfg.hours} h, seed {cfg.seed}) to {topic}")
    return 0
