"""The simulator's benign and attack families, with randomized parameters per seed."""

from __future__ import annotations

import random

from pipeline.contract import CATEGORIES
from pipeline.sim_actors import (
    BROWSERS,
    CLOUD_ASNS,
    DAY,
    HOUR,
    ISP_ASNS,
    MIN,
    NEW_MODEL,
    PROXY_ASNS,
    SDKS,
    Actor,
    Style,
    _ip,
    _templates,
    always_on,
    campaign,
    sessions,
)

BROAD = ("chat", "reasoning", "math", "coding", "writing", "other")


def _new(master: random.Random, family: str, start: int, age_days: tuple[float, float]) -> Actor:
    rng = random.Random(master.getrandbits(64))
    created = start - int(rng.uniform(*age_days) * DAY)
    return Actor(f"acct-{rng.getrandbits(40):010x}", family, rng, created)


def _weights(rng: random.Random, n: int) -> tuple[float, ...]:
    w = [rng.expovariate(1.0) for _ in range(n)]
    return tuple(x / sum(w) for x in w)


def _cloud(a: Actor, n: int = 2) -> None:
    a.asn, a.ua = a.rng.choice(CLOUD_ASNS), a.rng.choice(SDKS)
    a.ips = [_ip(a.rng) for _ in range(n)]


def _adopt(a: Actor, release: int, p: float, delay_h: float, after: tuple) -> None:  # type: ignore[type-arg]
    if a.rng.random() < p:
        a.switch_ts = release + int(a.rng.uniform(0, delay_h) * HOUR)
        a.models_after = after


def chat(m: random.Random, s: int, e: int, r: int) -> list[Actor]:
    a = _new(m, "chat", s, (1, 1500))
    sessions(a, s, e, a.rng.uniform(1, 4), (3, 25), (0.5, 2.5), a.rng.randint(-8, 9))
    _adopt(a, r, 0.35, 24, ((NEW_MODEL, "m-large-1"), (0.7, 0.3)))
    return [a]


def _dev_style(rng: random.Random) -> Style:
    return Style(
        ("coding", "tool_use", "agentic", "chat", "reasoning", "math"),
        (0.55, 0.15, 0.1, 0.1, 0.05, 0.05),
        cot=0.08,
        tools=0.35,
        templates=_templates(rng, 3),
        tpl_p=0.5,
        in_mu=6.5,
    )


def developer(m: random.Random, s: int, e: int, r: int) -> list[Actor]:
    a = _new(m, "developer", s, (5, 1500))
    a.ua, a.styles[""] = a.rng.choice(SDKS), _dev_style(a.rng)
    a.models = (("m-code-1", "m-large-1"), (0.6, 0.4))
    sessions(a, s, e, a.rng.uniform(2, 5), (10, 60), (0.5, 3), a.rng.randint(-8, 9))
    _adopt(a, r, 0.5, 6, ((NEW_MODEL, "m-code-1"), (0.7, 0.3)))
    return [a]


def production_app(m: random.Random, s: int, e: int, r: int) -> list[Actor]:
    a = _new(m, "production_app", s, (60, 1500))
    rng = a.rng
    _cloud(a)
    cats = tuple(rng.sample(("chat", "writing", "other", "coding", "vision", "reasoning"), rng.randint(1, 2)))
    a.styles[""] = Style(
        cats,
        _weights(rng, len(cats)),
        cot=rng.uniform(0, 0.35),
        templates=_templates(rng, 4),
        tpl_p=1.0,
        in_mu=6.0,
    )
    a.models = ((rng.choice(("m-small-1", "m-large-1")),), (1.0,))
    always_on(a, s, e, rng.uniform(0.3, 4), rng.randint(-8, 9))
    _adopt(a, r, 0.2, 20, ((NEW_MODEL,), (1.0,)))
    return [a]


def benchmark(m: random.Random, s: int, e: int, r: int) -> list[Actor]:
    a = _new(m, "benchmark", s, (100, 1500))
    rng = a.rng
    a.ua, a.styles[""] = rng.choice(SDKS), _dev_style(rng)
    sessions(a, s, e, 1.5, (10, 40), (0.3, 1.5), rng.randint(-8, 9))
    for k in range(rng.randint(1, 3)):
        on_new = k == 0 and rng.random() < 0.5 and r + HOUR < e
        cats = tuple(rng.sample(("math", "reasoning", "coding"), rng.randint(1, 2)))
        a.styles[f"bench{k}"] = Style(
            cats,
            _weights(rng, len(cats)),
            cot=rng.uniform(0.85, 1.0),
            templates=_templates(rng, rng.randint(1, 2)),
            tpl_p=1.0,
            in_mu=6.0,
            out_mult=2.5,
        )
        n, rate = rng.randint(300, 3000), rng.uniform(10, 40)
        t0 = r + int(rng.uniform(0.5, 12) * HOUR) if on_new else int(rng.uniform(s, max(s + 1, e - 3 * HOUR)))
        a.segs.append((t0, t0 + int(n / rate * MIN), rate, f"bench{k}"))
        if on_new:
            a.models_after, a.switch_ts = ((NEW_MODEL,), (1.0,)), t0
    return [a]


def corporate(m: random.Random, s: int, e: int, r: int, size: int) -> list[Actor]:
    org = random.Random(m.getrandbits(64))
    org_id = f"org-{org.getrandbits(32):08x}"
    prefix = f"{org.randint(24, 220)}.{org.randrange(256)}.{org.randrange(256)}"
    ips = [_ip(org, prefix) for _ in range(org.randint(1, 2))]
    asn, ua, tz = org.choice(ISP_ASNS), org.choice(BROWSERS), org.randint(-8, 9)
    pay = f"pf-{org.getrandbits(48):012x}" if org.random() < 0.7 else ""
    onboarded = org.random() < 0.3
    age = org.uniform(2, 20)
    out = []
    for _ in range(size):
        a = _new(m, "corporate_nat", s, (age, age + 1) if onboarded else (30, 1500))
        a.org_id, a.ips, a.asn = org_id, ips, asn
        a.ua = ua if a.rng.random() < 0.8 else a.rng.choice(BROWSERS)
        a.payment = pay or f"pf-{a.rng.getrandbits(48):012x}"
        if a.rng.random() < 0.4:
            a.styles[""] = _dev_style(a.rng)
        sessions(a, s, e, a.rng.uniform(1, 4), (5, 40), (0.5, 2), tz, peak=13)
        _adopt(a, r, 0.3, 24, ((NEW_MODEL, "m-large-1"), (0.7, 0.3)))
        out.append(a)
    return out


def power_user(m: random.Random, s: int, e: int, r: int) -> list[Actor]:
    a = _new(m, "power_user", s, (60, 1500))
    rng = a.rng
    cats = tuple(
        c
        for c in ("chat", "coding", "reasoning", "math", "agentic", "tool_use", "vision", "writing", "other")
    )
    a.styles[""] = Style(
        cats,
        _weights(rng, len(cats)),
        cot=rng.uniform(0.1, 0.2),
        tools=0.15,
        templates=_templates(rng, 4),
        tpl_p=0.3,
    )
    sessions(a, s, e, rng.uniform(4, 8), (30, 120), (1, 3), rng.randint(-8, 9))
    _adopt(a, r, 0.6, 6, ((NEW_MODEL, "m-large-1"), (0.8, 0.2)))
    return [a]


def _attack_window(a: Actor, s: int, e: int, hours: tuple[float, float]) -> tuple[int, int]:
    t0 = int(a.rng.uniform(s + HOUR, max(s + HOUR + 1, e - 4 * HOUR)))
    return t0, min(e, t0 + int(a.rng.uniform(*hours) * HOUR))


def cot_harvest(m: random.Random, s: int, e: int, r: int) -> list[Actor]:
    a = _new(m, "cot_harvest", s, (0, 10))
    rng = a.rng
    _cloud(a, rng.randint(1, 3))
    cats = tuple(rng.sample(("reasoning", "math", "coding", "writing", "chat"), rng.randint(3, 5)))
    a.styles[""] = Style(
        cats,
        _weights(rng, len(cats)),
        cot=rng.uniform(0.7, 0.95),
        templates=_templates(rng, rng.randint(5, 30)),
        tpl_p=rng.uniform(0.3, 0.9),
        out_mult=rng.uniform(3, 6),
    )
    campaign(a, *_attack_window(a, s, e, (3, 20)), rng.uniform(8, 40))
    return [a]


def agentic_extraction(m: random.Random, s: int, e: int, r: int) -> list[Actor]:
    a = _new(m, "agentic_extraction", s, (0, 20))
    rng = a.rng
    _cloud(a, rng.randint(1, 3))
    a.styles[""] = Style(
        ("coding", "agentic", "tool_use"),
        (0.4, 0.3, 0.3),
        cot=rng.uniform(0.3, 0.6),
        tools=rng.uniform(0.6, 0.9),
        templates=_templates(rng, rng.randint(10, 40)),
        tpl_p=0.6,
        in_mu=7.0,
        out_mult=2.0,
    )
    campaign(a, *_attack_window(a, s, e, (4, 20)), rng.uniform(5, 20))
    return [a]


def category_sweep(m: random.Random, s: int, e: int, r: int) -> list[Actor]:
    a = _new(m, "category_sweep", s, (0, 30))
    rng = a.rng
    _cloud(a)
    a.styles[""] = Style(cot=rng.uniform(0.4, 0.7), templates=_templates(rng, 10), tpl_p=0.5, out_mult=3)
    t0, t1 = _attack_window(a, s, e, (4, 20))
    cats = list(CATEGORIES)
    rng.shuffle(cats)
    blk, rate = int(rng.uniform(15, 45) * MIN), rng.uniform(5, 20)
    for k, t in enumerate(range(t0, t1, blk)):
        a.segs.append((t, min(t1, t + blk), rate * rng.uniform(0.8, 1.2), f"cat:{cats[k % len(cats)]}"))
    return [a]


def hydra(m: random.Random, s: int, e: int, r: int, size: int) -> list[Actor]:
    c = random.Random(m.getrandbits(64))
    prefixes = [f"{c.randint(24, 220)}.{c.randrange(256)}.{c.randrange(256)}" for _ in range(c.randint(2, 4))]
    asn, ua = c.choice(PROXY_ASNS), c.choice(SDKS)
    pays = [f"pf-{c.getrandbits(48):012x}" for _ in range(c.randint(1, 3))]
    tpls = _templates(c, 6)
    cot = c.uniform(0.6, 0.9)
    base = s - int(c.uniform(1, 10) * DAY)
    t0 = int(c.uniform(s + HOUR, max(s + HOUR + 1, e - 10 * HOUR)))
    t1 = min(e, t0 + int(c.uniform(8, 30) * HOUR))
    windows, t = [], t0
    while t < t1:
        on = int(c.uniform(30, 90) * MIN)
        windows.append((t, min(t1, t + on)))
        t += on + int(c.uniform(10, 60) * MIN)
    out = []
    for _ in range(size):
        a = _new(m, "hydra_cluster", s, (0, 1))
        rng = a.rng
        a.created_ms = base + int(rng.uniform(0, 3) * DAY)
        a.asn, a.ua, a.payment = asn, ua, rng.choice(pays)
        a.ips = [_ip(rng, rng.choice(prefixes)) for _ in range(2)]
        a.styles[""] = Style(
            ("reasoning", "math", "coding", "writing"),
            _weights(c, 4),
            cot=cot,
            templates=tpls,
            tpl_p=0.7,
            out_mult=4,
        )
        join = t0 if rng.random() < 0.7 else t0 + int(rng.uniform(1, 6) * HOUR)
        rate = rng.uniform(0.5, 3)
        for w0, w1 in windows:
            if w1 > join:
                a.segs.append((max(w0, join) + rng.randint(0, 60_000), w1, rate, ""))
        out.append(a)
    return out


def low_and_slow(m: random.Random, s: int, e: int, r: int) -> list[Actor]:
    a = _new(m, "low_and_slow", s, (30, 900))
    rng = a.rng
    a.styles[""] = Style(BROAD, (0.25, 0.2, 0.2, 0.15, 0.1, 0.1), cot=rng.uniform(0.5, 0.65), near_p=0.02)
    always_on(a, s + int(rng.uniform(0, 12) * HOUR), e, rng.uniform(0.6, 2), rng.randint(-8, 9), swing=0.2)
    return [a]


def model_hopper(m: random.Random, s: int, e: int, r: int) -> list[Actor]:
    a = _new(m, "model_hopper", s, (20, 400))
    rng = a.rng
    _cloud(a)
    a.styles[""] = Style(BROAD, _weights(rng, len(BROAD)), cot=rng.uniform(0.5, 0.7), out_mult=3)
    a.styles["hop"] = Style(BROAD, _weights(rng, len(BROAD)), cot=rng.uniform(0.7, 0.9), out_mult=4)
    a.models = (("m-large-1",), (1.0,))
    pre = max(s, r - int(rng.uniform(0.5, 2) * HOUR))
    switch = r + int(rng.uniform(0, 24) * HOUR)
    campaign(a, pre, min(e, switch), rng.uniform(2, 5))
    campaign(a, switch, min(e, switch + int(rng.uniform(4, 12) * HOUR)), rng.uniform(10, 30), "hop")
    a.switch_ts, a.models_after = switch, ((NEW_MODEL, "m-large-1"), (0.95, 0.05))
    return [a]
