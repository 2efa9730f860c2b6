"""Account scoring: directional evidence vs the population and the account's own history,
plus a River HalfSpaceTrees population model, combined into a calibrated score in [0, 1].

Order is always score -> decide -> learn, and an account that is alerting or was
confirmed malicious never teaches the models (so a campaign cannot become "normal").

>>> cfg = DetectionConfig()
>>> f = [0.0] * NF
>>> f[NAMES.index("account_age_days")] = 400.0
>>> round(combine(evidence(f, has_old_model=False), 0.0)[0], 3) < cfg.alert_threshold
True
"""

from __future__ import annotations

import math
import pickle
from array import array
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from pipeline.account import OWN0
from pipeline.alerts import Reason
from pipeline.features import NAMES, NF

if TYPE_CHECKING:
    from pipeline.account import AccountState
    from pipeline.settings import Settings

IDX = {n: i for i, n in enumerate(NAMES)}


@dataclass(frozen=True, slots=True)
class DetectionConfig:
    """Detection tunables (times are event-time milliseconds)."""

    seed: int = 7
    score_interval_ms: int = 60_000
    alert_threshold: float = 0.5
    allowed_lateness_ms: int = 600_000
    min_events_to_score: int = 10
    max_score_gap_ms: int = 600_000  # forced re-score of a hot account (any new events)
    ordinary_score_gap_ms: int = 3_600_000  # forced re-score of an ordinary-looking account
    row_gap_ms: int = 300_000  # a clearly ordinary account's scorings emit rows at most this often
    force_min_events: int = 3  # a forced score needs this many new events (fewer carry no evidence)
    detected_score_every: int = 5  # score intervals between scorings of an account reported detected
    update_gap_ms: int = 900_000
    score_delta: float = 0.1
    quiet_ms: int = 3_600_000
    new_model_window_ms: int = 86_400_000
    idle_evict_ms: int = 86_400_000  # forget accounts idle this long (event time)
    freeze_idle_ms: int = 1_800_000  # hold accounts idle this long compactly (0: never; ``cold``)
    fp_threshold_step: float = 0.1
    hst_trees: int = 10
    hst_height: int = 6
    hst_window: int = 250
    cluster_min_size: int = 3
    cluster_key_cap: int = 40
    cluster_eval_gap_ms: int = 600_000
    bias: float = -5.0
    model_version: str = "dw-detect-1"

    @classmethod
    def from_settings(cls, settings: Settings) -> DetectionConfig:
        return cls(
            seed=settings.seed,
            score_interval_ms=settings.score_interval_s * 1000,
            alert_threshold=settings.alert_threshold,
            allowed_lateness_ms=settings.allowed_lateness_s * 1000,
            freeze_idle_ms=settings.freeze_idle_s * 1000,
        )


def _clip(x: float) -> float:
    return 0.0 if x < 0 else 1.0 if x > 1 else x


# (term name, primary feature shown in reasons, weight)
TERMS = (
    ("cot_harvest", "cot_share_6h", 5.0),
    ("category_breadth", "category_entropy_6h", 1.5),
    ("volume", "rate_per_min_15m", 2.0),
    ("new_account", "account_age_days", 1.5),
    ("category_sweep", "category_sweep", 2.0),
    ("agentic_extraction", "tool_share_6h", 2.0),
    ("new_model_move", "new_model_share", 3.0),
    ("persistence", "hours_active_24h", 1.0),
    ("long_outputs", "out_in_ratio", 1.0),
    ("surge_vs_own_history", "rate_surge", 1.0),
    ("population_outlier", "rate_per_min_6h", 1.0),
)
TERM_FEATURE = [IDX[t[1]] for t in TERMS]
WEIGHTS = [t[2] for t in TERMS]
HARVEST_TERM = 0
# The features the rule reads, by position (C integers in the compiled build).
_RATE, _COT, _COT_LO, _TPL, _TREP, _CAT_H, _AGE, _SWEEP, _TOOL, _NEWM, _HOURS, _OUT_IN, _SURGE, _EV6H = (
    IDX[n]
    for n in (
        "rate_per_min_15m", "cot_share", "cot_share_6h_lower", "template_concentration", "template_repeat_15m",
        "category_entropy_6h", "account_age_days", "category_sweep", "tool_share_6h", "new_model_share",
        "hours_active_24h", "out_in_ratio", "rate_surge", "events_6h",
    )
)  # fmt: skip


def evidence(f: list[float], has_old_model: bool, hst: float = 0.0) -> list[float]:
    """Each term in [0, 1]; directional (only the suspicious direction counts).

    ``h`` (chain-of-thought share, 6 h lower bound and recent, x prompt diversity x enough
    events) gates the
    terms that are only suspicious together with harvesting: templated
    production apps and benchmark runs have low diversity. (``detection.pxd`` types it for the
    compiled build: C doubles, the same operations in the same order.)
    """
    conf = _clip(f[_EV6H] / 12)
    # the recent (15 min) traffic must be chain-of-thought heavy too: a finished benchmark run keeps
    # the 6 h share high while the account's current, diverse traffic is ordinary
    recent = _clip((f[_COT] - 0.1) / 0.2)
    cot = _clip((f[_COT_LO] - 0.2) / 0.25) * conf * recent
    templated = max(f[_TPL], f[_TREP])
    div = _clip((0.8 - templated) / 0.35)
    h = cot * div
    vol = _clip((math.log2(f[_RATE] * 60 + 1) - 6) / 4.3)
    return [
        h,
        _clip((f[_CAT_H] - 0.35) / 0.35) * conf,
        vol * div,
        _clip(1 - f[_AGE] / 45),
        _clip((f[_SWEEP] - 3) / 3),
        _clip((f[_TOOL] - 0.3) / 0.4) * div * conf,
        _clip((f[_NEWM] - 0.5) / 0.4) * h if has_old_model else 0.0,
        _clip((f[_HOURS] - 10) / 10) * h,
        _clip((f[_OUT_IN] - 4) / 8) * h,
        _clip((math.log2(max(f[_SURGE], 1e-9)) - 1) / 3) * h,
        _clip((hst - 0.7) / 0.3),
    ]


def combine(ev: list[float], fp_bias: float, bias: float = -5.0) -> tuple[float, list[float]]:
    """Logistic combination -> (score, per-term logit contributions)."""
    weights = WEIGHTS
    if len(ev) != len(weights):
        raise ValueError(f"{len(ev)} evidence terms for {len(weights)} weights")
    contrib = [weights[i] * ev[i] for i in range(len(ev))]
    z = 0.0  # the sum as sum() adds floats: left to right from 0.0
    for c in contrib:
        z += c
    z = bias + z
    return 1.0 / (1.0 + math.exp(-z)), contrib


def squash(f: list[float]) -> dict[str, float]:
    """Features mapped into [0, 1] for HalfSpaceTrees."""
    return {n: (x if 0 <= x <= 1 else x / (1 + abs(x))) for n, x in zip(NAMES, f, strict=True)}


def ranked(values: list[float], n: int) -> list[int]:
    """Positions of the ``n`` largest positive values, largest first, ties in position order: what a
    stable sort by descending value, cut at the first value <= 0, gives.

    >>> ranked([0.5, 2.0, 0.0, 2.0, -1.0], 3)
    [1, 3, 0]
    """
    if len(values) > 63:  # the positions taken are bits of one 64-bit integer in the compiled build
        raise ValueError(f"ranked: {len(values)} values, at most 63")
    out = []
    used = 0  # bit i set: values[i] already taken
    for _ in range(min(n, len(values))):
        best, at = 0.0, -1
        for i in range(len(values)):
            if not (used >> i) & 1 and values[i] > best:
                best, at = values[i], i
        if at < 0:
            break
        used |= 1 << at
        out.append(at)
    return out


def faded(means: list[float], x: list[float], a: float) -> list[float]:
    """The exponentially weighted means moved towards ``x`` by ``a``: ``m + a * (v - m)``, a new list."""
    if len(means) != len(x):
        raise ValueError(f"{len(x)} values for {len(means)} means")
    out = []
    for i in range(len(x)):
        m, v = means[i], x[i]
        out.append(m + a * (v - m))
    return out


def fade_into(acc: array, off: int, x: list[float], a: float) -> None:  # type: ignore[type-arg]
    """``faded`` in place on the single-precision means ``acc[off:off + len(x)]``."""
    w = acc
    for i in range(len(x)):
        m, v = w[off + i], x[i]
        w[off + i] = m + a * (v - m)


class Assessment(NamedTuple):
    """One scoring before explanation: score, per-term logit contributions, evidence, HST input."""

    score: float
    contributions: list[float]
    evidence: list[float]
    x: dict[str, float] | None


class Scorer:
    """Per-shard population models + the scoring rule; snapshot-able with the shard.

    Population baselines are exponentially weighted means (fading 0.02, the first
    value sets the mean, as River's ``EWMean``). River ``HalfSpaceTrees`` is
    consulted only when its term could move the score across the alert threshold
    (rule score within ``HST_REACH`` logits of it) and learns from a deterministic
    1-in-``HST_LEARN_EVERY`` sample of the learnable scorings: both keep River's
    cost off the common path (most scorings are clearly ordinary).
    """

    HST_REACH = 0.5
    HST_LEARN_EVERY = 4
    HST_LEARN_PER_TICK = 25  # at most this many HST updates per score interval of event time
    FADING = 0.02

    def __init__(self, config: DetectionConfig) -> None:
        from river import anomaly

        self.config = config
        self.pop = [0.0] * NF
        self.hst = anomaly.HalfSpaceTrees(
            n_trees=config.hst_trees,
            height=config.hst_height,
            window_size=config.hst_window,
            seed=config.seed,
        )
        self.learned = 0
        self.hst_learned = 0
        self.hst_budget = self.HST_LEARN_PER_TICK

    def tick(self) -> None:
        """A score interval of event time passed: renew the HalfSpaceTrees learning budget."""
        self.hst_budget = self.HST_LEARN_PER_TICK

    def score(self, st: AccountState, f: list[float]) -> tuple[float, list[Reason], float]:
        """Score one account now: (score, ranked reasons, harvest evidence in [0, 1]); learns if normal."""
        a = self.assess(st, f)
        return a.score, self.explain(st, f, a), a.evidence[HARVEST_TERM]

    def assess(self, st: AccountState, f: list[float]) -> Assessment:
        """The score alone (no reasons, no learning): what the engine's screening needs."""
        cfg = self.config
        threshold = cfg.alert_threshold + st.fp_bias
        ev = evidence(f, st.has_old_model, 0.0)
        score, contrib = combine(ev, st.fp_bias, cfg.bias)
        x = None
        if self.hst_learned >= cfg.hst_window:
            z_thr = math.log(threshold / (1 - threshold)) if threshold < 1 else 50.0
            if cfg.bias + sum(contrib) + WEIGHTS[-1] >= z_thr - self.HST_REACH:
                x = squash(f)
                hst = self.hst.score_one(x)
                if hst > 0.7:
                    ev[-1] = _clip((hst - 0.7) / 0.3)
                    score, contrib = combine(ev, st.fp_bias, cfg.bias)
        return Assessment(score, contrib, ev, x)

    def explain(self, st: AccountState, f: list[float], a: Assessment) -> list[Reason]:
        """Ranked reasons of an assessment; then learn from it if it looked normal."""
        contrib = a.contributions
        total = sum(contrib) or 1.0
        reasons = []
        for k in ranked(contrib, 5):
            fi = TERM_FEATURE[k]
            own = k == 9 or k == 6
            base = st.acc[OWN0 + fi] if own and st.own_n else self.pop[fi]
            reasons.append(Reason(NAMES[fi], round(f[fi], 4), round(base, 4), round(contrib[k] / total, 4)))
        if a.score < self.config.alert_threshold + st.fp_bias and not st.confirmed and st.incident is None:
            self.learn(st, f, a.x)
        return reasons

    def learn(self, st: AccountState, f: list[float], x: dict[str, float] | None = None) -> None:
        """Update population and own-history baselines with a normal-looking observation."""
        a = self.FADING
        if self.learned:
            self.pop = faded(self.pop, f, a)
        else:
            self.pop = list(f)
        if self.learned % self.HST_LEARN_EVERY == 0 and self.hst_budget > 0:
            self.hst.learn_one(x if x is not None else squash(f))
            self.hst_learned += 1
            self.hst_budget -= 1
        self.learned += 1
        st.own_n += 1
        a = max(0.05, 1.0 / st.own_n)
        acc = st.acc
        if st.own_n == 1:  # the own history after the accumulators (``account.OWN0``), in a new
            st.acc = acc + array("f", f)  # array allocated at its length (``extend`` keeps room to grow)
        else:
            fade_into(acc, OWN0, f, a)

    def snapshot(self) -> bytes:
        return pickle.dumps((self.pop, self.hst, self.learned, self.hst_learned, self.hst_budget))

    def restore(self, blob: bytes) -> None:
        self.pop, self.hst, self.learned, self.hst_learned, *budget = pickle.loads(blob)
        self.hst_budget = budget[0] if budget else self.HST_LEARN_PER_TICK  # older snapshots had none
