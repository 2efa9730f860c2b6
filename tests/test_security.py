"""Issue 5, "nothing let in": secrets, prompt text and client addresses never leak; TLS is configurable.

(a) secrets (``DW_CLICKHOUSE_PASSWORD``, ``DW_KAFKA_SASL_PASSWORD`` set to
    marker strings) never appear in ``--help`` of the CLI and of every subcommand, in the
    errors of failing commands, in ``repr``/``str`` of the settings, nor in a worker's JSON logs;
(b) no prompt text: after a real run (worker + sink + clickhouse-server 18.16) of events carrying
    raw-text fields the contract does not know (``prompt_text``, ``completion``, ``prompt.text``),
    no text column of any table is named like prompt/completion/text/content (``novel_prompts`` is a
    count), and the text reaches
    neither any ClickHouse table nor any Kafka topic the pipeline writes;
(c) client IPs only as prefixes: no full client address sent is stored in any ClickHouse column
    or written to an output topic; ``account_scores.ip_prefixes`` hold their /24 and /48;
(d) ``query`` refuses writes and several statements unless ``--allow-writes``: covered by
    tests/test_query.py (``check_sql`` cases and the CLI end to end), not repeated here;
(e) Kafka SASL/TLS and ClickHouse TLS/credentials reach the clients (unit tests, no TLS server).
"""

from __future__ import annotations

import os
import re
import ssl
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from stackutil import isolated_settings

from pipeline.broker import free_port
from pipeline.cli import build_parser
from pipeline.reliability import drain
from pipeline.settings import Settings, load_settings
from pipeline.stack import LocalStack, read_topic

ROOT = Path(__file__).resolve().parent.parent
MARKERS = {
    "DW_CLICKHOUSE_PASSWORD": "chpw-MARKER-7f3a9c",
    "DW_KAFKA_SASL_PASSWORD": "saslpw-MARKER-41be02",
}
PROMPT = "SECRET PROMPT 5c1b do not store"
COMPLETION = "SECRET COMPLETION 9e2a do not store"
IPS = ("203.0.113.77", "198.51.100.201", "192.0.2.45", "2001:db8:abcd:12:3456::99")
PREFIXES = {"203.0.113.0/24", "198.51.100.0/24", "192.0.2.0/24", "2001:db8:abcd::/48"}
RAW_TEXT_COLUMN = re.compile(r"prompt|completion|text|content", re.IGNORECASE)


def _cli(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **MARKERS, **env}
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args], env=full, cwd=ROOT, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


def _assert_no_secret(text: str, where: str) -> None:
    for name, marker in MARKERS.items():
        assert marker not in text, f"{name} echoed in {where}"


# ------------------------------------------------------------------------------------------ (a)
def test_help_of_every_command_never_shows_a_secret() -> None:
    parser = build_parser()
    subcommands = sorted(parser._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    assert {"worker", "sink", "query", "topics"} <= set(subcommands)
    for args in [["--help"]] + [[c, "--help"] for c in subcommands]:
        r = _cli(args)
        assert r.returncode == 0, (args, r.stderr[-500:])
        _assert_no_secret(r.stdout + r.stderr, " ".join(args))


@pytest.mark.parametrize(
    "args,env",
    [
        (["query", "SELECT 1"], {"DW_CLICKHOUSE_MODE": "server", "DW_CLICKHOUSE_PORT": "closed"}),
        (["worker"], {"DW_KAFKA_PARTITIONS": "many"}),
        (["worker"], {"DW_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "DW_KAFKA_SASL_MECHANISM": "GSSAPI"}),
        (["query", "DROP TABLE t"], {}),
    ],
    ids=["bad-port", "bad-int", "bad-enum", "refused-write"],
)
def test_failing_commands_never_show_a_secret(args: list[str], env: dict[str, str]) -> None:
    if env.get("DW_CLICKHOUSE_PORT") == "closed":
        env = {**env, "DW_CLICKHOUSE_PORT": str(free_port()), "DW_CLICKHOUSE_SECURE": "true"}
    r = _cli(args, **env)
    assert r.returncode == 2, (r.returncode, r.stderr[-500:])
    assert r.stderr.startswith(f"distillwatch {args[0]}: error:") and r.stderr.count("\n") == 1, r.stderr
    _assert_no_secret(r.stdout + r.stderr, " ".join(args))


@pytest.mark.integration
def test_clickhouse_authentication_failure_never_shows_the_password(clickhouse_server: Any) -> None:
    r = _cli(
        ["query", "SELECT 1"], DW_CLICKHOUSE_MODE="server", DW_CLICKHOUSE_HOST=clickhouse_server.host,
        DW_CLICKHOUSE_PORT=str(clickhouse_server.tcp_port), DW_CLICKHOUSE_USER="intruder",
    )  # fmt: skip
    assert r.returncode == 2 and "error" in r.stderr, r.stderr
    _assert_no_secret(r.stdout + r.stderr, "authentication failure")


def test_settings_repr_str_and_dump_never_show_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, marker in MARKERS.items():
        monkeypatch.setenv(name, marker)
    s = load_settings()
    assert s.clickhouse_password.get_secret_value() == MARKERS["DW_CLICKHOUSE_PASSWORD"]
    for text in (repr(s), str(s), s.model_dump_json(), repr(s.model_dump())):
        _assert_no_secret(text, "settings")


@pytest.mark.integration
def test_worker_json_logs_never_show_a_secret(broker: str, tmp_path: Path) -> None:
    secrets = {k.removeprefix("DW_").lower(): v for k, v in MARKERS.items()}
    s = isolated_settings(broker, tmp_path, **secrets)
    with LocalStack.create(s, tmp_path, with_broker=False) as stack:
        stack.start_worker("w1", log_level="debug")
        from stackutil import encode, event, produce

        produce(s, s.topic_requests, [encode(event(i)) for i in range(50)] + [(b"a", b"{bad")])
        stack.wait_drained(s.app_id, s.topic_requests, timeout_s=60)
    log = (tmp_path / "w1.log").read_text()
    assert '"msg":"dead-lettered message"' in log and len(log) > 10_000  # debug logs were written
    _assert_no_secret(log, "worker log")


# ------------------------------------------------------------------------------------ (b), (c)
def _events() -> list[dict[str, Any]]:
    evs = []
    for i in range(240):
        acct = f"sec-acct-{i % 4}"
        evs.append({
            "event_id": f"sec-{i}", "ts": 1_790_000_000_000 + i * 3_000, "account_id": acct,
            "model": "frontier-2", "status": 200, "input_tokens": 100 + i, "output_tokens": 300,
            "client": {"ip": IPS[i % 4], "asn": 64500, "user_agent": "sdk/1.0"},
            "prompt": {"simhash": f"{i * 7919:016x}", "template_hash": "ab12", "category": "coding",
                       "text": PROMPT},
            "prompt_text": PROMPT, "completion": COMPLETION, "messages": [{"role": "user", "content": PROMPT}],
        })  # fmt: skip
    return evs


@pytest.fixture(scope="module")
def stored(broker: str, clickhouse_server: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A real run into clickhouse-server; every table's columns and rows, every topic's messages."""
    tmp = tmp_path_factory.mktemp("security")
    tag = uuid.uuid4().hex[:8]
    s = isolated_settings(
        broker, tmp, clickhouse_mode="server", clickhouse_host=clickhouse_server.host,
        clickhouse_port=clickhouse_server.tcp_port, clickhouse_database=f"dw_sec_{tag}", sink_flush_interval_s=0.3,
    )  # fmt: skip
    from stackutil import produce

    with LocalStack.create(s, tmp, with_broker=False) as stack:
        stack.start_sink()
        stack.start_worker("w1")
        produce(s, s.topic_requests, [(e["account_id"].encode(), orjson.dumps(e)) for e in _events()])
        drain(stack, 90)
        stack.stop_sink()
        store = stack.open_store()
        db = store.database
        _, columns = store.query(f"SELECT table, name, type FROM system.columns WHERE database = '{db}'")
        _, tables = store.query(f"SELECT name FROM system.tables WHERE database = '{db}'")
        rows = {t: store.query(f"SELECT * FROM {db}.{t}")[1] for (t,) in tables}
        _, prefixes = store.query(f"SELECT DISTINCT arrayJoin(ip_prefixes) FROM {db}.account_scores")
    outputs = {
        t: read_topic(s, t, idle_ms=1000)
        for t in (s.topic_aggregates, s.topic_scores, s.topic_summaries, s.topic_alerts, s.topic_deadletter)
    }
    state = read_topic(s, s.topic_state, idle_ms=1000)
    return {"columns": columns, "rows": rows, "prefixes": {p for (p,) in prefixes}, "outputs": outputs,
            "state": state, "settings": s}  # fmt: skip


@pytest.mark.integration
def test_no_column_is_meant_for_raw_text(stored: dict[str, Any]) -> None:
    columns = stored["columns"]
    assert len({t for t, _, _ in columns}) >= 4 and len(columns) > 40
    named = [(t, c, ty) for t, c, ty in columns if RAW_TEXT_COLUMN.search(c)]
    # a column named like raw text may only hold numbers (e.g. account_minute.novel_prompts, a count)
    textual = [x for x in named if "String" in x[2]]
    assert not textual, textual
    assert all(re.fullmatch(r"U?Int\d+|Float\d+", ty) for _, _, ty in named), named


@pytest.mark.integration
def test_prompt_text_reaches_no_table_and_no_topic(stored: dict[str, Any]) -> None:
    assert sum(len(r) for r in stored["rows"].values()) > 0 and stored["rows"]["account_minute"]
    for table, rows in stored["rows"].items():
        text = repr(rows)
        assert "SECRET" not in text, f"raw text stored in {table}"
    for topic, values in {**stored["outputs"], "state-changelog": stored["state"]}.items():
        for v in values:
            assert b"SECRET" not in v, f"raw text written to {topic}"
    assert (
        stored["outputs"][stored["settings"].topic_aggregates]
        and not stored["outputs"][stored["settings"].topic_deadletter]
    ), "the events were valid (unknown fields ignored)"


@pytest.mark.integration
def test_client_ips_only_as_prefixes(stored: dict[str, Any]) -> None:
    assert stored["prefixes"] == PREFIXES
    for table, rows in stored["rows"].items():
        text = repr(rows)
        for ip in IPS:
            assert ip not in text, f"full client address {ip} stored in {table}"
    for topic, values in stored["outputs"].items():
        for v in values:
            for ip in IPS:
                assert ip.encode() not in v, f"full client address {ip} written to {topic}"


@pytest.mark.integration
def test_state_changelog_holds_no_full_client_ip(stored: dict[str, Any]) -> None:
    for v in stored["state"]:
        for ip in IPS:
            assert ip.encode() not in v


# ------------------------------------------------------------------------------------------ (e)
@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A throw-away self-signed CA certificate and key (openssl), for loading, never for serving."""
    d = tmp_path_factory.mktemp("pki")
    cert, key = d / "ca.pem", d / "ca.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=distillwatch-test-ca"],
        check=True, capture_output=True,
    )  # fmt: skip
    return {"cert": str(cert), "key": str(key)}


def test_kafka_plaintext_has_no_credentials_and_no_tls() -> None:
    s = load_settings(kafka_bootstrap="b1:9092,b2:9092", kafka_sasl_password="unused")
    assert s.kafka_client_kwargs() == {"bootstrap_servers": "b1:9092,b2:9092", "security_protocol": "PLAINTEXT"}
    assert s.ssl_context() is None


def test_kafka_sasl_ssl_kwargs_and_tls_context(pki: dict[str, str]) -> None:
    s = load_settings(
        kafka_bootstrap="b:9093", kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="dw", kafka_sasl_password="pw", kafka_ssl_cafile=pki["cert"],
        kafka_ssl_certfile=pki["cert"], kafka_ssl_keyfile=pki["key"],
    )  # fmt: skip
    kw = s.kafka_client_kwargs()
    ctx = kw.pop("ssl_context")
    assert kw == {
        "bootstrap_servers": "b:9093", "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "dw", "sasl_plain_password": "pw",
    }  # fmt: skip
    assert isinstance(ctx, ssl.SSLContext) and ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    subjects = [dict(x[0] for x in c["subject"]) for c in ctx.get_ca_certs()]
    assert {"commonName": "distillwatch-test-ca"} in subjects  # the configured CA is trusted
    from pipeline.worker import create_app, kafka_consumer_kwargs

    assert isinstance(kafka_consumer_kwargs(s)["ssl_context"], ssl.SSLContext)
    app = create_app(s.model_copy(update={"worker_data_dir": Path(pki["cert"]).parent / "w"}))
    creds = app.conf.broker_credentials
    assert type(creds).__name__ == "SASLCredentials" and creds.username == "dw" and creds.password == "pw"
    assert "SCRAM" in str(creds.mechanism) and isinstance(creds.ssl_context, ssl.SSLContext)


def test_kafka_ssl_and_sasl_plaintext(pki: dict[str, str]) -> None:
    tls = load_settings(kafka_security_protocol="SSL", kafka_ssl_cafile=pki["cert"], kafka_sasl_password="x")
    kw = tls.kafka_client_kwargs()
    assert "sasl_plain_password" not in kw and isinstance(kw["ssl_context"], ssl.SSLContext)
    sasl = load_settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="u", kafka_sasl_password="p")
    kw = sasl.kafka_client_kwargs()
    assert kw["sasl_plain_password"] == "p" and kw["sasl_mechanism"] == "PLAIN" and "ssl_context" not in kw


def test_kafka_bad_ca_file_is_an_error() -> None:
    s = load_settings(kafka_security_protocol="SSL", kafka_ssl_cafile="/nonexistent/ca.pem")
    with pytest.raises(OSError):
        s.ssl_context()


def test_clickhouse_tls_and_credentials_reach_the_driver(pki: dict[str, str]) -> None:
    from pipeline.store import ServerStore

    s: Settings = load_settings(
        clickhouse_mode="server", clickhouse_host="ch.internal", clickhouse_port=9440, clickhouse_user="dw",
        clickhouse_password="chpw", clickhouse_secure=True, clickhouse_ca_certs=pki["cert"],
    )  # fmt: skip
    conn = ServerStore(s)._client.connection  # no network until the first query
    assert (list(conn.hosts), conn.user, conn.password) == ([("ch.internal", 9440)], "dw", "chpw")
    assert conn.secure_socket and conn.verify_cert and conn.ssl_options == {"ca_certs": pki["cert"]}
    plain = ServerStore(load_settings(clickhouse_mode="server"))._client.connection
    assert not plain.secure_socket
