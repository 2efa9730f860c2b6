"""Alert messages (``Alert``, ``Reason``) and their lifecycle: one incident per subject,
``open`` -> ``update``* -> ``resolved``.

* ``alert_id`` = hash(subject kind, subject id, first_seen): stable across updates and replays.
* An update is emitted only on a severity change or a material score change
  (``score_delta``), and at most once per ``min_update_gap_ms`` of event time
  (an escalation is never delayed): a long campaign is one incident, not a flood.
* An incident resolves after ``quiet_ms`` of event time without a score above threshold.

>>> p = IncidentPolicy(0.5, 600_000, 0.1, 3_600_000, "account", "v1")
>>> inc, a = p.observe(None, "account", "acc", ["acc"], 0.9, [], 1_700_000_000_000, 10, 1_700_000_000_000)
>>> a.state, a.version, a.severity
('open', 1, 'high')
>>> _, a = p.observe(inc, "account", "acc", ["acc"], 0.91, [], 1_700_000_060_000, 20, 1_700_000_000_000)
>>> a is None
True
>>> p.resolve_if_quiet(inc, 1_700_003_700_000, "account", "acc").state
'resolved'
"""

from __future__ import annotations

import hashlib
from array import array
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

try:
    import cython  # compile-time class directives (setup.py); uncompiled, its decorators do nothing
except ImportError:  # no Cython on this machine: the module runs uncompiled
    from pipeline.compiled import NoCython as cython

SEVERITIES = ("low", "medium", "high", "critical")
ALERT_STATES = ("open", "update", "resolved")
SEV_RANK = {s: i for i, s in enumerate(SEVERITIES)}
DETECTING = SEVERITIES[1:]  # an alert at one of these reports a detection (``evaluate``'s time to detect)


@dataclass(slots=True)
class Reason:
    """One ranked explanation of an alert: a feature, its value, its baseline, its share of the score."""

    feature: str
    value: float
    baseline: float
    contribution: float


@dataclass(slots=True)
class Alert:
    """One alert state change, exactly the contract's ``anomaly.alerts`` message."""

    alert_id: str
    version: int
    state: str
    subject_kind: str
    subject_id: str
    accounts: list[str]
    score: float
    severity: str
    detector: str
    reasons: list[Reason]
    window_start_ms: int
    window_end_ms: int
    first_seen_ms: int
    events: int
    model_version: str

    def to_dict(self, emitted_at_ms: int) -> dict[str, object]:
        """The contract's JSON object; ``emitted_at`` is the only wall-clock field."""
        return {
            "alert_id": self.alert_id,
            "version": self.version,
            "state": self.state,
            "subject_kind": self.subject_kind,
            "subject_id": self.subject_id,
            "accounts": list(self.accounts),
            "score": round(min(1.0, max(0.0, self.score)), 6),
            "severity": self.severity,
            "detector": self.detector,
            "reasons": [
                {"feature": r.feature, "value": r.value, "baseline": r.baseline, "contribution": r.contribution}
                for r in self.reasons
            ],
            "window_start": rfc3339(self.window_start_ms),
            "window_end": rfc3339(self.window_end_ms),
            "first_seen": rfc3339(self.first_seen_ms),
            "events": self.events,
            "model_version": self.model_version,
            "emitted_at": rfc3339(emitted_at_ms),
        }


def rfc3339(ms: int) -> str:
    """Epoch milliseconds -> RFC 3339 UTC with millisecond precision."""

    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def severity_of(score: float, threshold: float) -> str:
    """Severity band of a calibrated score; "" below the alert threshold.

    >>> [severity_of(s, 0.5) for s in (0.4, 0.55, 0.7, 0.85, 0.97)]
    ['', 'low', 'medium', 'high', 'critical']
    """
    if score < threshold:
        return ""
    r = (score - threshold) / max(1e-9, 1 - threshold)
    return "low" if r < 0.3 else "medium" if r < 0.6 else "high" if r < 0.86 else "critical"


def alert_id_for(kind: str, subject: str, first_seen_ms: int) -> str:
    """Deterministic incident id."""
    return hashlib.sha1(f"{kind}|{subject}|{first_seen_ms}".encode()).hexdigest()[:20]


@cython.no_gc  # no reference cycles: no GC header, never walked by collections
@cython.cclass
class Incident:
    """The open incident of one subject (kept inside the subject's snapshot-able state).

    Its reasons are held as their features and one array of their numbers (``reasons`` gives them
    back as ``Reason`` objects): an object and three floats each took about 130 bytes.

    >>> inc = Incident("id", 0); inc.reasons = [Reason("cot_share", 0.9, 0.1, 0.5)]
    >>> inc.reasons, Incident.load(inc.dump()).dump() == inc.dump()
    ([Reason(feature='cot_share', value=0.9, baseline=0.1, contribution=0.5)], True)
    """

    __slots__ = (
        "alert_id",
        "version",
        "first_seen_ms",
        "severity",
        "score",
        "last_emit_ms",
        "last_hot_ms",
        "events",
        "window_start_ms",
        "window_end_ms",
        "reason_features",
        "reason_numbers",
        "accounts",
    )

    def __init__(self, alert_id: str, first_seen_ms: int) -> None:
        self.alert_id = alert_id
        self.version = 0
        self.first_seen_ms = first_seen_ms
        self.severity = ""
        self.score = 0.0
        self.last_emit_ms = first_seen_ms
        self.last_hot_ms = first_seen_ms
        self.events = 0
        self.window_start_ms = first_seen_ms
        self.window_end_ms = first_seen_ms
        self.reasons = []
        self.accounts: list[str] = []

    @property
    def reasons(self) -> list[Reason]:
        """The reasons of the latest message."""
        n = self.reason_numbers
        return [Reason(f, n[3 * i], n[3 * i + 1], n[3 * i + 2]) for i, f in enumerate(self.reason_features)]

    @reasons.setter
    def reasons(self, reasons: list[Reason]) -> None:
        self.reason_features = tuple(r.feature for r in reasons)
        self.reason_numbers = array("d", [x for r in reasons for x in (r.value, r.baseline, r.contribution)])

    def dump(self) -> list[object]:
        """Plain-JSON form (the reasons as [feature, value, baseline, contribution] lists)."""
        return [self.alert_id, self.version, self.first_seen_ms, self.severity, self.score, self.last_emit_ms,
                self.last_hot_ms, self.events, self.window_start_ms, self.window_end_ms,
                [[r.feature, r.value, r.baseline, r.contribution] for r in self.reasons], self.accounts]  # fmt: skip

    @classmethod
    def load(cls, d: list) -> Incident:  # type: ignore[type-arg]
        inc = cls(d[0], d[2])
        (_, inc.version, _, inc.severity, inc.score, inc.last_emit_ms, inc.last_hot_ms, inc.events,
         inc.window_start_ms, inc.window_end_ms, reasons, accounts) = d  # fmt: skip
        inc.reasons = [Reason(*r) for r in reasons]
        inc.accounts = list(accounts)
        return inc


class IncidentPolicy:
    """Turns a stream of scores of one subject into few, meaningful alert messages."""

    @classmethod
    def for_config(cls, config: Any, detector: str) -> IncidentPolicy:
        """The policy of ``detector`` with the thresholds of a ``DetectionConfig``."""
        return cls(config.alert_threshold, config.update_gap_ms, config.score_delta, config.quiet_ms, detector,
                   config.model_version)  # fmt: skip

    def __init__(
        self,
        threshold: float,
        min_update_gap_ms: int,
        score_delta: float,
        quiet_ms: int,
        detector: str,
        model_version: str,
    ) -> None:
        self.threshold = threshold
        self.gap = min_update_gap_ms
        self.delta = score_delta
        self.quiet = quiet_ms
        self.detector = detector
        self.model_version = model_version

    def _alert(self, inc: Incident, state: str, kind: str, subject: str) -> Alert:
        inc.version += 1
        return Alert(
            inc.alert_id,
            inc.version,
            state,
            kind,
            subject,
            list(inc.accounts),
            inc.score,
            inc.severity,
            self.detector,
            list(inc.reasons),
            inc.window_start_ms,
            inc.window_end_ms,
            inc.first_seen_ms,
            inc.events,
            self.model_version,
        )

    def observe(
        self,
        inc: Incident | None,
        kind: str,
        subject: str,
        accounts: list[str],
        score: float,
        reasons: list[Reason],
        now: int,
        events: int,
        window_start_ms: int,
        threshold: float | None = None,
    ) -> tuple[Incident | None, Alert | None]:
        """Feed one score; returns the (possibly new) incident and the message to emit, if any."""
        sev = severity_of(score, self.threshold if threshold is None else threshold)
        if inc is None:
            if not sev:
                return None, None
            inc = Incident(alert_id_for(kind, subject, now), now)
            inc.window_start_ms = window_start_ms
            inc.severity, inc.score, inc.reasons, inc.accounts = sev, score, reasons, accounts
            inc.events, inc.window_end_ms, inc.last_emit_ms, inc.last_hot_ms = events, now, now, now
            return inc, self._alert(inc, "open", kind, subject)
        if not sev:
            return inc, None
        inc.last_hot_ms = now
        inc.window_end_ms = now
        inc.events = events
        grew = len(accounts) > len(inc.accounts)
        escalated = SEV_RANK[sev] > SEV_RANK[inc.severity]
        material = sev != inc.severity or abs(score - inc.score) >= self.delta or grew
        if escalated or (material and now - inc.last_emit_ms >= self.gap):
            inc.severity, inc.score, inc.reasons, inc.last_emit_ms = sev, score, reasons, now
            inc.accounts = sorted(set(inc.accounts) | set(accounts)) if kind == "cluster" else accounts
            return inc, self._alert(inc, "update", kind, subject)
        return inc, None

    def resolve_if_quiet(
        self, inc: Incident, now: int, kind: str = "account", subject: str = ""
    ) -> Alert | None:
        """The ``resolved`` message when the subject has been quiet long enough, else None."""
        if now - inc.last_hot_ms < self.quiet:
            return None
        inc.window_end_ms = max(inc.window_end_ms, inc.last_hot_ms)
        return self._alert(inc, "resolved", kind, subject or inc.accounts[0])
