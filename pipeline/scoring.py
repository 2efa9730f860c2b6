"""What one reported scoring of an account produces: its score row (ClickHouse ``account_scores``)
and its summary (the cluster detector's input), both from the account's state at that moment.

>>> contributions([])[:3]
[0.0, 0.0, 0.0]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.alerts import Reason
from pipeline.features import NAMES
from pipeline.linking import AccountSummary
from pipeline.records import ScoreRow

if TYPE_CHECKING:
    from pipeline.account import AccountState

DETECTOR = "account-behaviour"
_NAMES = list(NAMES)


def contributions(reasons: list[Reason]) -> list[float]:
    """One contribution per feature of ``NAMES`` (0.0 for features that are not among the reasons)."""
    by_name = {r.feature: r.contribution for r in reasons}
    return [by_name.get(name, 0.0) for name in _NAMES]


def scoring_records(
    st: AccountState,
    now: int,
    score: float,
    severity: str,
    harvest: float,
    features: list[float],
    baseline: list[float],
    reasons: list[Reason],
) -> tuple[ScoreRow, AccountSummary]:
    """The score row and the summary of ``st`` scored ``score`` at event time ``now``."""
    a = st.account_id
    au = st.asn_ua.examples
    # copies of the sketches' example lists, shared by the row and the summary (neither is mutated)
    ips, pays, top = list(st.ips.examples), list(st.pays.examples), st.tpl.top(3)
    row = ScoreRow(
        a, now, score, severity, DETECTOR, _NAMES, features, list(baseline), contributions(reasons), st.org_id,
        ips, [int(x.split("|", 1)[0]) for x in au], [x.split("|", 1)[1] for x in au], pays, top,
        list(st.bucket.models),
    )  # fmt: skip
    summary = AccountSummary(
        a, now, st.created_ms, st.first_ms, st.org_id, score, harvest, st.events, ips, list(au), pays, top,
        st.act_mask, st.act_slot, st.allowlisted,
    )  # fmt: skip
    return row, summary
