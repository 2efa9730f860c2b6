"""Scoring rule, alert lifecycle."""

from __future__ import annotations

from pipeline.account import AccountState
from pipeline.alerts import IncidentPolicy, alert_id_for
from pipeline.detection import IDX, DetectionConfig, Scorer, combine, evidence
from pipeline.features import NF

T0 = 1_700_000_000_000


def feats(**kw: float) -> list[float]:
    f = [0.0] * NF
    f[IDX["account_age_days"]] = 500.0
    f[IDX["events_6h"]] = 200.0
    for k, v in kw.items():
        f[IDX[k]] = v
    f[IDX["cot_share_6h_lower"]] = f[IDX["cot_share_6h"]]
    f[IDX["cot_share"]] = kw.get("cot_share", f[IDX["cot_share_6h"]])
    return f


def score(f: list[float], old_model: bool = True) -> float:
    return combine(evidence(f, old_model), 0.0)[0]


def test_harvester_scores_high_benign_low() -> None:
    harvester = feats(
        cot_share_6h=0.85,
        template_concentration=0.1,
        category_entropy_6h=0.6,
        rate_per_min_15m=20,
        account_age_days=2,
    )
    chat = feats(cot_share_6h=0.03, template_concentration=0.0, category_entropy_6h=0.5, rate_per_min_15m=1)
    assert score(harvester) > 0.9 > 0.05 > score(chat)


def test_templated_cot_is_not_harvesting() -> None:
    """A benchmark run: all chain-of-thought, but one template, old account."""
    bench = feats(cot_share_6h=0.95, template_concentration=1.0, rate_per_min_15m=30, new_model_share=1.0)
    assert score(bench) < 0.2


def test_finished_cot_run_does_not_make_later_diverse_traffic_harvesting() -> None:
    """6 h CoT share still high from an earlier benchmark run, current diverse traffic without CoT."""
    after = feats(cot_share_6h=0.85, cot_share=0.05, template_concentration=0.5, new_model_share=1.0)
    assert score(after) < 0.1


def test_few_events_carry_little_evidence() -> None:
    f = feats(cot_share_6h=1.0, events_6h=2)
    assert score(f) < 0.1


def test_scorer_reasons_ranked_and_no_learning_when_alerting() -> None:
    sc = Scorer(DetectionConfig())
    st = AccountState("a", 0, created_ms=T0, first_ms=T0)
    f = feats(
        cot_share_6h=0.9,
        template_concentration=0.0,
        category_entropy_6h=0.8,
        rate_per_min_15m=25,
        account_age_days=1,
    )
    s, reasons, harvest = sc.score(st, f)
    assert s > 0.9 and harvest == 1.0
    assert reasons[0].feature == "cot_share_6h"
    assert [r.contribution for r in reasons] == sorted((r.contribution for r in reasons), reverse=True)
    assert sc.learned == 0 and st.own_n == 0  # anomalies never teach the model
    s2, _, _ = sc.score(st, feats())
    assert s2 < 0.5 and sc.learned == 1


def test_lifecycle_open_update_resolve_and_no_flood() -> None:
    p = IncidentPolicy(0.5, 900_000, 0.1, 3_600_000, "d", "v")
    inc, a = p.observe(None, "account", "x", ["x"], 0.7, [], T0, 1, T0)
    assert a is not None and a.state == "open" and a.alert_id == alert_id_for("account", "x", T0)
    msgs = []
    for i in range(1, 600):  # 10 hours of per-minute scores around 0.7
        inc, a = p.observe(inc, "account", "x", ["x"], 0.7 + (i % 3) * 0.01, [], T0 + i * 60_000, i, T0)
        if a:
            msgs.append(a)
    assert msgs == []
    inc, a = p.observe(inc, "account", "x", ["x"], 0.95, [], T0 + 601 * 60_000, 601, T0)
    assert a is not None and a.state == "update" and a.severity == "critical" and a.version == 2
    assert p.resolve_if_quiet(inc, T0 + 610 * 60_000, "account", "x") is None
    r = p.resolve_if_quiet(inc, T0 + 662 * 60_000, "account", "x")
    assert r is not None and r.state == "resolved" and r.version == 3 and r.alert_id == a.alert_id
