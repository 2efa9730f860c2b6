"""Actors of the traffic simulator: per-family activity schedules and request styles.

A schedule is a list of segments ``(start_ms, end_ms, events_per_min, mode)``;
the style of mode ``mode`` decides categories, chain-of-thought share, tools,
templates, tokens and the model.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

MIN = 60_000
HOUR = 3_600_000
DAY = 86_400_000
NEVER = 2**62
OLD_MODELS = ("m-large-1", "m-small-1", "m-code-1")
NEW_MODEL = "m-large-2"
FAMILIES = {
    "chat": "benign",
    "developer": "benign",
    "production_app": "benign",
    "benchmark": "benign",
    "corporate_nat": "benign",
    "power_user": "benign",
    "cot_harvest": "attack",
    "agentic_extraction": "attack",
    "category_sweep": "attack",
    "hydra_cluster": "attack",
    "low_and_slow": "attack",
    "model_hopper": "attack",
}
MIX = {
    "developer": 0.14,
    "production_app": 0.06,
    "benchmark": 0.04,
    "corporate_nat": 0.14,
    "power_user": 0.05,
    "cot_harvest": 0.025,
    "agentic_extraction": 0.025,
    "category_sweep": 0.02,
    "hydra_cluster": 0.07,
    "low_and_slow": 0.02,
    "model_hopper": 0.02,
}  # fmt: skip (chat takes the rest)
ISP_ASNS = (7922, 701, 7018, 20115, 22773, 3320, 3215, 2856, 5089, 12322, 6830, 4134, 4837, 9808, 17676)
CLOUD_ASNS = (16509, 15169, 8075, 14061, 24940, 16276, 63949)
PROXY_ASNS = (9009, 60068, 212238, 396982, 206264)
BROWSERS = tuple(
    f"Mozilla/5.0 ({os}) Chrome/12{v}.0"
    for os in ("Windows NT 10.0", "Macintosh", "X11; Linux")
    for v in range(3)
)
SDKS = (
    "anthropic-python/0.25",
    "openai-python/1.30",
    "python-requests/2.31",
    "node-fetch/3.3",
    "curl/8.4",
    "python-httpx/0.27",
    "anthropic-typescript/0.20",
)


@dataclass(slots=True)
class Style:
    cats: tuple[str, ...] = ("chat", "writing", "other", "coding", "math", "reasoning")
    weights: tuple[float, ...] = (0.6, 0.2, 0.1, 0.05, 0.03, 0.02)
    cot: float = 0.03
    tools: float = 0.0
    templates: list[tuple[str, int]] = field(default_factory=list)
    tpl_p: float = 0.0
    in_mu: float = 5.5
    out_mult: float = 1.5
    near_p: float = 0.08


def _ip(rng: random.Random, prefix: str = "") -> str:
    if prefix:
        return f"{prefix}.{rng.randint(1, 254)}"
    return f"{rng.randint(24, 220)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randint(1, 254)}"


def _templates(rng: random.Random, n: int) -> list[tuple[str, int]]:
    return [(f"{rng.getrandbits(64):016x}", rng.getrandbits(64)) for _ in range(n)]


def diurnal(local_hour: float) -> float:
    """Daily rhythm in [0.05, 1], peaking mid-afternoon."""
    return 0.05 + 0.95 * math.exp(-(((local_hour - 14.5) / 4.5) ** 2))


class Actor:
    """One simulated account."""

    __slots__ = (
        "account_id",
        "family",
        "rng",
        "segs",
        "si",
        "next_ts",
        "styles",
        "created_ms",
        "org_id",
        "ips",
        "asn",
        "ua",
        "payment",
        "models",
        "switch_ts",
        "models_after",
        "n",
        "last_sh",
        "country",
    )

    def __init__(self, account_id: str, family: str, rng: random.Random, created_ms: int) -> None:
        self.account_id, self.family, self.rng, self.created_ms = account_id, family, rng, created_ms
        self.segs: list[tuple[int, int, float, str]] = []
        self.si = 0
        self.next_ts = NEVER
        self.styles: dict[str, Style] = {"": Style()}
        self.org_id = self.payment = ""
        self.ips = [_ip(rng)]
        self.asn = rng.choice(ISP_ASNS)
        self.ua = rng.choice(BROWSERS)
        self.models: tuple[tuple[str, ...], tuple[float, ...]] = (("m-large-1", "m-small-1"), (0.7, 0.3))
        self.models_after: tuple[tuple[str, ...], tuple[float, ...]] = self.models
        self.switch_ts = NEVER
        self.n = 0
        self.last_sh = rng.getrandbits(64)
        self.country = rng.choice(("US", "US", "GB", "DE", "FR", "IN", "BR", "JP", "CA"))

    def start(self) -> None:
        self.segs.sort()
        self.si = 0
        self._advance(self.segs[0][0] if self.segs else NEVER)

    def _advance(self, t: float) -> None:
        segs, rng = self.segs, self.rng
        while self.si < len(segs):
            s, e, rate, _ = segs[self.si]
            t = max(t, s)
            t2 = t + rng.expovariate(rate / MIN) if rate > 0 else NEVER
            if t2 < e:
                self.next_ts = int(t2)
                return
            self.si += 1
        self.next_ts = NEVER

    def emit(self) -> dict[str, object]:
        rng, ts = self.rng, self.next_ts
        mode = self.segs[self.si][3]
        st = self.styles.get(mode) or self.styles[""]
        self.n += 1
        cat = rng.choices(st.cats, st.weights)[0] if not mode.startswith("cat:") else mode[4:]
        prompt: dict[str, object] = {"category": cat, "cot_elicitation": rng.random() < st.cot}
        if st.templates and rng.random() < st.tpl_p:
            th, base = rng.choice(st.templates)
            sh = base ^ (1 << rng.randrange(64)) ^ (1 << rng.randrange(64))
            prompt["template_hash"] = th
        elif rng.random() < st.near_p:
            sh = self.last_sh ^ (1 << rng.randrange(64))
        else:
            sh = rng.getrandbits(64)
        self.last_sh = sh
        prompt["simhash"] = f"{sh:016x}"
        if st.tools and rng.random() < st.tools:
            prompt["tools"] = rng.randint(1, 12)
        names, weights = self.models_after if ts >= self.switch_ts else self.models
        inp = int(rng.lognormvariate(st.in_mu, 0.6))
        out = int(inp * st.out_mult * (3.0 if prompt["cot_elicitation"] else 1.0) * rng.uniform(0.5, 1.5))
        r = rng.random()
        status = 429 if r < 0.004 else 500 if r < 0.006 else 200
        ev: dict[str, object] = {
            "event_id": f"{self.account_id}-{self.n:07d}",
            "ts": ts,
            "account_id": self.account_id,
            "account_created_at": self.created_ms,
            "model": rng.choices(names, weights)[0],
            "endpoint": "/v1/messages",
            "status": status,
            "input_tokens": inp,
            "output_tokens": out if status == 200 else 0,
            "latency_ms": round(200 + out * 8 * rng.random(), 1),
            "stream": rng.random() < 0.5,
            "client": {
                "ip": rng.choice(self.ips),
                "asn": self.asn,
                "country": self.country,
                "user_agent": self.ua,
            },
            "prompt": prompt,
        }
        if self.org_id:
            ev["org_id"] = self.org_id
        if self.payment:
            ev["payment_fingerprint"] = self.payment
        self._advance(ts + 1)
        return ev


def sessions(
    a: Actor,
    start: int,
    end: int,
    per_day: float,
    minutes: tuple[float, float],
    rate: tuple[float, float],
    tz: int,
    mode: str = "",
    peak: float = 14.0,
) -> None:
    """Human sessions: Poisson per day, start hours around ``peak`` local time."""
    rng = a.rng
    day0 = start - start % DAY
    for d in range(day0, end, DAY):
        for _ in range(_poisson(rng, per_day)):
            h = min(23.5, max(6.0, rng.gauss(peak, 3.5)))
            s = d + int((h - tz) * HOUR) % DAY
            dur = rng.uniform(*minutes) * MIN
            a.segs.append((s, int(s + dur), rng.uniform(*rate), mode))


def always_on(
    a: Actor, start: int, end: int, rate: float, tz: int, mode: str = "", swing: float = 0.65
) -> None:
    """24/7 traffic with a daily swing (production apps, bots)."""
    for h in range(start - start % HOUR, end, HOUR):
        local = ((h // HOUR) + tz) % 24
        r = rate * (1 - swing + swing * diurnal(local)) * a.rng.uniform(0.8, 1.2)
        a.segs.append((h, h + HOUR, r, mode))


def campaign(a: Actor, start: int, end: int, rate: float, mode: str = "", chunk: int = 10 * MIN) -> None:
    """Sustained automated traffic in 10-minute chunks of jittered rate."""
    for s in range(start, end, chunk):
        a.segs.append((s, min(end, s + chunk), rate * a.rng.uniform(0.7, 1.3), mode))


def _poisson(rng: random.Random, lam: float) -> int:
    n, p, limit = 0, 1.0, math.exp(-lam)
    while True:
        p *= rng.random()
        if p <= limit:
            return n
        n += 1
