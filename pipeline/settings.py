"""The one settings object. Read once (``load_settings``); nothing else reads the environment.

Every field maps to an environment variable ``DW_<FIELD>`` (upper case), e.g.
``DW_KAFKA_BOOTSTRAP=broker:9092``. Secrets are ``SecretStr``: they never
appear in ``repr``, logs, ``--help`` or error messages.
"""

from __future__ import annotations

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
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str = ""
    kafka_sasl_password: SecretStr = SecretStr("")
    kafka_ssl_cafile: str = ""
    kafka_ssl_certfile: str = ""
    kafka_ssl_keyfile: str = ""
    kafka_partitions: int = Field(4, ge=1, description="partitions created by `topics` for the hot topic")
    kafka_rebalance_timeout_s: float = 10.0
    kafka_session_timeout_s: float = 6.0
    kafka_heartbeat_interval_s: float = 2.0

    # --- Topics ------------------------------------------------------------
    topic_requests: str = "api.requests"
    topic_deadletter: str = "api.requests.deadletter"
    topic_alerts: str = "anomaly.alerts"
    topic_feedback: str = "anomaly.feedback"
    topic_aggregates: str = "distillwatch.aggregates"
    topic_scores: str = "distillwatch.scores"
    topic_summaries: str = "distillwatch.summaries"
    topic_state: str = "distillwatch.state-changelog"

    # --- Worker ------------------------------------------------------------
    app_id: str = Field("distillwatch", description="Faust app id = consumer group of the worker")
    worker_web_port: int = 6066
    worker_data_dir: Path = Path(".distillwatch/worker")
    worker_commit_interval_s: float = Field(2.0, gt=0, description="state flush + offset commit period")
    worker_max_batch: int = Field(20000, ge=1, description="records handed to the core in one batch")

    # --- Detection ---------------------------------------------------------
    seed: int = 7
    score_interval_s: int = Field(60, ge=1, description="event-time seconds between scores of one account")
    alert_threshold: float = Field(0.5, ge=0, le=1)
    allowed_lateness_s: int = Field(600, ge=0)

    # --- Sink / ClickHouse ---------------------------------------------------
    sink_group: str = "distillwatch-sink"
    sink_web_port: int = 6067
    sink_batch_rows: int = Field(50000, ge=1)
    sink_flush_interval_s: float = Field(1.0, gt=0)
    sink_max_buffer_rows: int = Field(500000, ge=1, description="stop consuming above this backlog")
    clickhouse_mode: Literal["embedded", "server"] = "embedded"
    clickhouse_path: Path = Path(".distillwatch/chdb")
    clickhouse_host: str = "127.0.0.1"
    clickhouse_port: int = 9000
    clickhouse_user: str = "default"
    clickhouse_password: SecretStr = SecretStr("")
    clickhouse_database: str = "distillwatch"
    clickhouse_secure: bool = False
    clickhouse_ca_certs: str = ""
    ip_hash_key: SecretStr = SecretStr("distillwatch-dev-key")

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
        return kw

    def ssl_context(self) -> object | None:
        """An SSL context for Kafka when TLS is configured, else None."""
        if "SSL" not in self.kafka_security_protocol:
            return None
        import ssl

        ctx = ssl.create_default_context(cafile=self.kafka_ssl_cafile or None)
        if self.kafka_ssl_certfile:
            ctx.load_cert_chain(self.kafka_ssl_certfile, self.kafka_ssl_keyfile or None)
        return ctx


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment (plus explicit overrides); a bad value is a ConfigError."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"DW_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from None
