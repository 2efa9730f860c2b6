"""Analyst verdicts as the detection core applies them (the ``anomaly.feedback`` topic is read in
``pipeline.feedback``; this is what the engine remembers of it).

>>> v = Verdicts(fp_step=0.1)
>>> v.remember_alert("al-1", "acct-1")
>>> v.record(FeedbackRow("false_positive", alert_id="al-1"))
'acct-1'
>>> v.fp["acct-1"]
0.1
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.records import FeedbackRow

if TYPE_CHECKING:
    from pipeline.account import AccountState


class Verdicts:
    """Allowlisted, false-positive (threshold bias) and confirmed accounts, and the alert ids that
    feedback naming only an alert resolves to."""

    ALERT_INDEX_MAX = 200_000  # alert ids kept for feedback by alert id (bounded: the worker runs for months)
    FP_BIAS_MAX = 0.45

    def __init__(self, fp_step: float) -> None:
        self.fp_step = fp_step
        self.allow: set[str] = set()
        self.fp: dict[str, float] = {}
        self.confirmed: set[str] = set()
        self.alert_account: dict[str, str] = {}

    def remember_alert(self, alert_id: str, account_id: str) -> None:
        """Index an incident's alert id; the oldest of more than ``ALERT_INDEX_MAX`` are forgotten
        (feedback naming the account still applies)."""
        index = self.alert_account
        if alert_id in index:
            return
        index[alert_id] = account_id
        if len(index) > self.ALERT_INDEX_MAX:
            del index[next(iter(index))]

    def record(self, fb: FeedbackRow) -> str:
        """Remember a verdict; returns the account it is about ("" when the alert id is unknown)."""
        a = fb.account_id or self.alert_account.get(fb.alert_id, "")
        if not a:
            return ""
        if fb.verdict == "allowlist":
            self.allow.add(a)
        elif fb.verdict == "false_positive":
            self.fp[a] = min(self.FP_BIAS_MAX, self.fp.get(a, 0.0) + self.fp_step)
        elif fb.verdict == "true_positive":
            self.confirmed.add(a)
        return a

    def apply(self, st: AccountState) -> None:
        """Carry the verdicts known about ``st``'s account onto its state (never weakening one)."""
        a = st.account_id
        st.allowlisted = st.allowlisted or a in self.allow
        st.confirmed = st.confirmed or a in self.confirmed
        st.fp_bias = max(st.fp_bias, self.fp.get(a, 0.0))
