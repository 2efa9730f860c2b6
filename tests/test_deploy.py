"""Structure of the deployment files: Kubernetes manifests, docker-compose, Grafana, ClickHouse users."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from pipeline.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S = sorted((DEPLOY / "k8s").glob("*.yaml"))
DOCS = [doc for path in K8S for doc in yaml.safe_load_all(path.read_text()) if doc]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SETTINGS_ENV = {f"DW_{name.upper()}" for name in Settings.model_fields}
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))


def objects(kind: str) -> list[dict]:  # type: ignore[type-arg]
    return [d for d in DOCS if d["kind"] == kind]


def one(kind: str) -> dict:  # type: ignore[type-arg]
    (obj,) = objects(kind)
    return obj


def test_every_k8s_object_is_well_formed() -> None:
    assert K8S, "no manifests in deploy/k8s"
    kinds = {d["kind"] for d in DOCS}
    needed = {
        "Namespace",
        "ConfigMap",
        "Secret",
        "Deployment",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    }
    assert needed <= kinds
    names = set()
    for d in DOCS:
        assert d.get("apiVersion") and d.get("kind") and d["metadata"].get("name"), d
        if d["kind"] != "Namespace":
            assert d["metadata"].get("namespace") == "distillwatch", d["metadata"]
        names.add((d["kind"], d["metadata"]["name"]))
    assert len(names) == len(DOCS), "duplicate kind/name"


DEPLOYMENTS = {d["metadata"]["name"]: d for d in objects("Deployment")}
WEB_PORTS = {"distillwatch-worker": Settings().worker_web_port, "distillwatch-sink": Settings().sink_web_port}


def test_worker_and_sink_deployments_exist() -> None:
    assert set(DEPLOYMENTS) == set(WEB_PORTS)


@pytest.mark.parametrize("name", sorted(WEB_PORTS))
def test_deployment(name: str) -> None:
    dep = DEPLOYMENTS[name]
    spec, tpl = dep["spec"], dep["spec"]["template"]
    selector = spec["selector"]["matchLabels"]
    assert selector and selector.items() <= tpl["metadata"]["labels"].items()
    (container,) = tpl["spec"]["containers"]
    assert container["image"].rsplit(":", 1)[-1] not in ("", "latest") and ":" in container["image"]
    declared = {p["containerPort"] for p in container["ports"]}
    config = one("ConfigMap")["data"]
    port = WEB_PORTS[name]
    env_key = "DW_WORKER_WEB_PORT" if "worker" in name else "DW_SINK_WEB_PORT"
    assert int(config.get(env_key, port)) == port in declared
    probes = {k: container[k]["httpGet"] for k in ("livenessProbe", "readinessProbe")}
    assert probes["livenessProbe"]["path"] == "/livez" and probes["readinessProbe"]["path"] == "/readyz"
    assert all(p["port"] in declared or p["port"] == "web" for p in probes.values())
    assert tpl["metadata"]["annotations"]["prometheus.io/port"] == str(port)
    refs = {(k, v["name"]) for src in container["envFrom"] for k, v in src.items()}
    assert refs == {
        ("configMapRef", one("ConfigMap")["metadata"]["name"]),
        ("secretRef", one("Secret")["metadata"]["name"]),
    }
    for key in ("requests", "limits"):
        assert {"cpu", "memory"} <= container["resources"][key].keys()


def test_worker_scaling_capped_by_partitions() -> None:
    partitions = int(one("ConfigMap")["data"]["DW_KAFKA_PARTITIONS"])
    hpa = one("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "distillwatch-worker"
    assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"] <= partitions
    assert DEPLOYMENTS["distillwatch-worker"]["spec"]["replicas"] <= partitions


def test_pdbs_select_deployments() -> None:
    pdb_selectors = [p["spec"]["selector"]["matchLabels"] for p in objects("PodDisruptionBudget")]
    labels = [d["spec"]["template"]["metadata"]["labels"] for d in DEPLOYMENTS.values()]
    assert all(any(sel.items() <= lab.items() for lab in labels) for sel in pdb_selectors)
    assert any(sel.items() <= labels[0].items() for sel in pdb_selectors)


def test_secret_holds_the_secrets_and_config_holds_no_secret() -> None:
    secret = one("Secret")
    values = {**secret.get("stringData", {}), **secret.get("data", {})}
    assert set(values) == {"DW_KAFKA_SASL_PASSWORD", "DW_CLICKHOUSE_PASSWORD"}
    assert all("CHANGE-ME" in v for v in values.values()), "placeholders must be obvious"
    assert not set(values) & set(one("ConfigMap")["data"])


def compose_env() -> set[str]:
    return {
        k
        for svc in COMPOSE["services"].values()
        for k in (svc.get("environment") or {})
        if k.startswith("DW_")
    }


def test_every_dw_variable_is_a_setting() -> None:
    named = compose_env() | set(one("ConfigMap")["data"]) | set(one("Secret")["stringData"])
    assert named, "no DW_* variables found"
    assert named <= SETTINGS_ENV, sorted(named - SETTINGS_ENV)
    assert not {k for k in one("ConfigMap")["data"] if not k.startswith("DW_")}


def test_compose_services() -> None:
    services = COMPOSE["services"]
    assert {"kafka", "clickhouse", "topics", "worker", "sink", "grafana"} <= services.keys()
    for name, svc in services.items():
        deps = svc.get("depends_on") or {}
        assert set(deps) <= services.keys(), (name, deps)
        if "image" in svc and "build" not in svc:
            tag = svc["image"].rsplit(":", 1)
            assert len(tag) == 2 and tag[1] != "latest" and re.search(r"\d", tag[1]), svc["image"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert "broker,controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
    assert services["clickhouse"]["image"].startswith("clickhouse/clickhouse-server:")
    for name, cmd in (("topics", "topics"), ("worker", "worker"), ("sink", "sink")):
        assert services[name]["command"] == [cmd] and "build" in services[name]
        assert services[name]["environment"]["DW_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert services["worker"]["depends_on"]["topics"]["condition"] == "service_completed_successfully"


def test_compose_mounts_exist() -> None:
    for svc in COMPOSE["services"].values():
        for vol in svc.get("volumes", []):
            src = vol.split(":", 1)[0]
            if src.startswith("."):
                assert (ROOT / src).exists(), vol


def _ch_tables() -> set[str]:
    text = "\n".join(p.read_text() for p in (ROOT / "schemas" / "clickhouse").glob("*.sql"))
    return set(re.findall(r"CREATE (?:TABLE|VIEW|MATERIALIZED VIEW) IF NOT EXISTS \{database\}\.(\w+)", text))


def _panel_sql() -> list[str]:
    return [
        t["rawSql"]
        for p in DASHBOARDS
        for panel in json.loads(p.read_text())["panels"]
        for t in panel["targets"]
    ]


def test_grafana_dashboard_sql_uses_existing_tables() -> None:
    assert DASHBOARDS
    tables = _ch_tables()
    assert {"account_minute", "account_scores", "alerts"} <= tables
    used = set()
    for sql in _panel_sql():
        refs = re.findall(r"\bFROM\s+([\w.]+)", sql)
        assert refs, sql
        for ref in refs:
            db, _, table = ref.rpartition(".")
            assert db == "distillwatch" and table in tables, ref
            used.add(table)
    assert len(used) >= 3


def test_grafana_dashboard_sql_runs(chdb_path: Path) -> None:
    """Every panel query compiles against the real DDL (embedded ClickHouse, a private database)."""
    from pipeline.store import EmbeddedStore, apply_schema

    store = EmbeddedStore(Settings(clickhouse_path=chdb_path, clickhouse_database="dw_grafana_check"))
    apply_schema(store)
    for sql in _panel_sql():
        sql = re.sub(r"\$__timeFilter\((\w+)\)", r"\1 >= now() - 3600", sql)
        store.query(sql.replace("distillwatch.", "dw_grafana_check."))


def test_grafana_provisioning() -> None:
    ds = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/clickhouse.yaml").read_text())
    (source,) = ds["datasources"]
    assert source["type"] == "grafana-clickhouse-datasource"
    assert source["jsonData"]["username"] == "investigator"
    uids = {
        t["datasource"]["uid"] for p in DASHBOARDS for t in json.loads(p.read_text())["panels"][0]["targets"]
    }
    assert uids == {source["uid"]}
    providers = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/distillwatch.yaml").read_text())
    mounted = {v.split(":")[1] for v in COMPOSE["services"]["grafana"]["volumes"]}
    assert providers["providers"][0]["options"]["path"] in mounted


def test_clickhouse_users() -> None:
    root = ET.parse(DEPLOY / "clickhouse/users.d/distillwatch.xml").getroot()
    assert root.tag in ("yandex", "clickhouse")
    users = root.find("users")
    assert {u.tag for u in users} == {"distillwatch_writer", "investigator"}
    profile = users.find("investigator/profile").text
    assert root.find(f"profiles/{profile}/readonly").text in ("1", "2")
    writer_profile = users.find("distillwatch_writer/profile").text
    assert root.find(f"profiles/{writer_profile}/readonly") is None
    for user in users:
        assert re.fullmatch(r"[0-9a-f]{64}", user.find("password_sha256_hex").text)
    roles = (DEPLOY / "clickhouse/roles.sql").read_text()
    assert re.search(r"GRANT SELECT ON distillwatch\.\* TO investigator_role", roles)
    investigator_grants = re.findall(r"GRANT ([^;]*) TO investigator_role", roles)
    assert not any(re.search(r"INSERT|ALTER|DROP|CREATE", g) for g in investigator_grants)
    assert re.search(r"GRANT [^;]*INSERT[^;]* TO writer_role", roles)
