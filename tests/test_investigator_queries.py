"""The investigator SQL kit (schemas/queries/*.sql) against real pipeline output, on chdb and on 18.16.

The data comes from the session's ``investigation`` fixture: simulated
labelled traffic through a real worker and sink. Each query must find the
accounts the simulator planted (attackers, the hydra cluster, model hoppers).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from investigation import CLI_ANALYST, DATABASE, Investigation, copy_to

from pipeline.cli import main
from pipeline.investigate import QUERY_DIR, declared_params, load_query, render_sql
from pipeline.settings import load_settings
from pipeline.store import Store, open_store

pytestmark = pytest.mark.integration

QUERIES = sorted(p.stem for p in QUERY_DIR.glob("*.sql"))


@pytest.fixture(scope="module", params=["chdb", "clickhouse-18.16"])
def backend(request: pytest.FixtureRequest, investigation: Investigation) -> Iterator[Store]:
    """The session's data in chdb, or copied into the 18.16 server."""
    if request.param == "chdb":
        yield investigation.store
        return
    server = request.getfixturevalue("clickhouse_server")
    store = open_store(
        load_settings(clickhouse_mode="server", clickhouse_port=server.tcp_port, clickhouse_database=DATABASE)
    )
    store.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
    copy_to(investigation.store, store)
    try:
        yield store
    finally:
        store.close()


def run(store: Store, name: str, **params: Any) -> list[dict[str, Any]]:
    sql = render_sql(load_query(name), {k: str(v) for k, v in params.items()}, store.database)
    names, rows = store.query(sql)
    return [dict(zip(names, r, strict=True)) for r in rows]


def documented_columns(text: str) -> list[str]:
    """Column names listed under 'Output columns:' in a query file's header."""
    header = text.split("Output columns:", 1)[1]
    return re.findall(r"^--\s{3}(\w+)\s", header, re.MULTILINE)


@pytest.mark.parametrize("name", QUERIES)
def test_query_file_documents_question_parameters_and_columns(backend: Store, name: str) -> None:
    text = load_query(name)
    assert "-- Question:" in text and "Output columns:" in text
    for p in declared_params(text).values():
        assert p.doc, f"{name}: @param {p.name} has no description"
    names, _ = backend.query(
        render_sql(text, {p: "x" for p in declared_params(text) if p.endswith("_id")}, backend.database)
    )
    assert names == documented_columns(text), name


def test_top_anomalous_accounts_are_mostly_attackers(backend: Store, investigation: Investigation) -> None:
    rows = run(backend, "top_anomalous_accounts", limit=20)
    assert len(rows) == 20
    assert [r["max_score"] for r in rows] == sorted((r["max_score"] for r in rows), reverse=True)
    attackers = [r["account_id"] for r in rows if investigation.truth[r["account_id"]][0] == "attack"]
    assert len(attackers) >= 18, [(r["account_id"], investigation.family(r["account_id"])) for r in rows]
    assert all(r["flagged_scorings"] > 0 and r["alerts"] >= 1 for r in rows[:10])
    late = run(
        backend, "top_anomalous_accounts", **{"from": "2024-06-01 09:00:00", "to": "2024-06-01 09:30:00"}
    )
    assert late and all(r["last_scored"] >= r["first_flagged"] for r in late)
    assert all(str(r["last_scored"]) < "2024-06-01 09:30:00" for r in late)


def test_cluster_members_are_the_hydra_cluster(backend: Store, investigation: Investigation) -> None:
    cluster = investigation.cluster_alerts()[0]
    rows = run(backend, "cluster_members", cluster_id=cluster["subject_id"])
    members = {r["account_id"] for r in rows}
    assert set(cluster["accounts"]) <= members
    assert {investigation.family(a) for a in members} == {"hydra_cluster"}
    assert all(r["ip_prefixes"] and r["asn_user_agents"] and r["payment_fingerprints"] for r in rows)


def test_cluster_shared_infrastructure(backend: Store, investigation: Investigation) -> None:
    cluster = investigation.cluster_alerts()[0]
    rows = run(backend, "cluster_shared_infrastructure", cluster_id=cluster["subject_id"])
    facets = {r["facet"] for r in rows}
    assert {"asn_ua", "ip_prefix", "payment_fingerprint", "template"} <= facets, rows
    size = rows[0]["cluster_size"]
    assert size >= len(cluster["accounts"]) and all(r["members_sharing"] >= 2 for r in rows)
    asn_ua = [r for r in rows if r["facet"] == "asn_ua"]
    assert asn_ua[0]["share"] == 1.0, "every hydra member shares one ASN + user agent"
    shared = {a for r in rows for a in r["members"]}
    assert {investigation.family(a) for a in shared} == {"hydra_cluster"}
    assert run(backend, "cluster_shared_infrastructure", cluster_id="cluster-does-not-exist") == []


def test_account_timeline_against_baseline(backend: Store, investigation: Investigation) -> None:
    alert = next(
        a
        for a in investigation.alerts
        if a["subject_kind"] == "account" and investigation.family(a["subject_id"]) == "cot_harvest"
    )
    account = alert["subject_id"]
    rows = run(backend, "account_timeline", account_id=account)
    assert len(rows) > 60
    assert [r["minute"] for r in rows] == sorted(r["minute"] for r in rows)
    assert sum(r["events"] for r in rows) == investigation.events[account], "each event counted exactly once"
    flagged = [r for r in rows if r["severity"]]
    assert flagged, "the attacker's timeline shows flagged minutes"
    assert all(r["rate_15m"] > r["baseline_rate_15m"] for r in flagged[-10:])
    assert sum(r["cot_share_6h"] > r["baseline_cot_share_6h"] for r in flagged) > len(flagged) / 2
    window = run(
        backend,
        "account_timeline",
        account_id=account,
        **{"from": str(rows[10]["minute"]), "to": str(rows[20]["minute"])},
    )
    assert [r["minute"] for r in window] == [r["minute"] for r in rows[10:20]]


def test_model_adoption_finds_model_hoppers(backend: Store, investigation: Investigation) -> None:
    rows = run(backend, "model_adoption")
    assert rows and {r["model"] for r in rows} == {"m-large-2"}
    hoppers = [r for r in rows if investigation.family(r["account_id"]) == "model_hopper"]
    assert len(hoppers) >= 2, rows
    assert [investigation.family(r["account_id"]) for r in rows[: len(hoppers)]] == ["model_hopper"] * len(
        hoppers
    )
    assert all(r["rate_ratio"] > 2 and r["share_on_model"] > 0.9 for r in hoppers)
    assert len(run(backend, "model_adoption", min_share=1.01)) == 0


def test_alert_history_with_analyst_verdict(backend: Store, investigation: Investigation) -> None:
    v = investigation.verdict
    rows = run(backend, "alert_history", subject_id=v["account_id"])
    alerts = [r for r in rows if r["kind"] == "alert"]
    verdicts = [r for r in rows if r["kind"] == "verdict" and not r["detail"].startswith(CLI_ANALYST)]
    assert v["alert_id"] in {r["alert_id"] for r in alerts}
    assert [(r["status"], r["alert_id"], r["detail"]) for r in verdicts] == [
        ("true_positive", v["alert_id"], "test-analyst: planted verdict")
    ]
    assert [r["at"] for r in rows] == sorted(r["at"] for r in rows)
    assert alerts[0]["status"] == "open" and alerts[0]["detail"].count("baseline") >= 1


def test_cli_runs_query_files_with_params(
    investigation: Investigation, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DW_CLICKHOUSE_MODE", "embedded")
    monkeypatch.setenv("DW_CLICKHOUSE_PATH", str(investigation.settings.clickhouse_path))
    monkeypatch.setenv("DW_CLICKHOUSE_DATABASE", DATABASE)
    account = investigation.verdict["account_id"]
    path = str(QUERY_DIR / "alert_history.sql")
    assert main(["query", "--format", "json", "--file", path, "--param", f"subject_id={account}"]) == 0
    out = orjson.loads(capsys.readouterr().out)
    assert any(r["kind"] == "verdict" for r in out)
    # A hostile value stays a string literal: it matches nothing instead of everything.
    assert main(["query", "--format", "json", "--file", path, "--param", "subject_id=x' OR 1=1 OR '"]) == 0
    assert capsys.readouterr().out.strip() in ("", "[]")
    assert main(["query", "--file", path]) == 2
    assert "missing --param subject_id" in capsys.readouterr().err
    assert main(["query", "--file", path, "--param", "subject=x"]) == 2
    assert "unknown --param subject" in capsys.readouterr().err


def test_verdict_from_feedback_cli_reaches_clickhouse(investigation: Investigation) -> None:
    rows = run(investigation.store, "alert_history", subject_id=investigation.verdict["account_id"])
    assert any(r["kind"] == "verdict" and r["detail"].startswith(CLI_ANALYST) for r in rows)
