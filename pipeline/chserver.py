"""A private Debian ``clickhouse-server`` on free 127.0.0.1 ports (tests, ``bench --clickhouse server``).

The binary comes from the OS package (``scripts/install-deps.sh``); a missing
binary is a ``ConfigError`` with the install hint.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.broker import free_port, stop_process, wait_port
from pipeline.errors import ConfigError

CLICKHOUSE_CANDIDATES = ("/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server", "clickhouse-server")

_CONFIG = """<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{d}/server.log</log><errorlog>{d}/error.log</errorlog></logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>{tcp}</tcp_port>
  <http_port>{http}</http_port>
  <path>{d}/data/</path>
  <tmp_path>{d}/tmp/</tmp_path>
  <user_files_path>{d}/user_files/</user_files_path>
  <format_schema_path>{d}/format_schemas/</format_schema_path>
  <users_config>{d}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
</yandex>
"""

_USERS = """<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
    <profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
    <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time>
  </interval></default></quotas>
</yandex>
"""


def find_clickhouse_server() -> str:
    """The clickhouse-server binary, or a ConfigError telling how to install it."""
    for candidate in CLICKHOUSE_CANDIDATES:
        found = candidate if Path(candidate).is_absolute() and Path(candidate).exists() else None
        found = found or (shutil.which(candidate) if "/" not in candidate else None)
        if found:
            return found
    raise ConfigError(
        "clickhouse-server not found (looked for " + ", ".join(CLICKHOUSE_CANDIDATES) + "): "
        "run scripts/install-deps.sh (apt-get install clickhouse-server)"
    )


@dataclass
class ClickHouseServer:
    """A private clickhouse-server under ``root`` on free 127.0.0.1 ports; restartable on the same data."""

    root: Path
    tcp_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 30.0) -> None:
        binary = find_clickhouse_server()
        self.root.mkdir(parents=True, exist_ok=True)
        for sub in ("data", "tmp", "user_files", "format_schemas"):
            (self.root / sub).mkdir(exist_ok=True)
        d = str(self.root.resolve())  # the server runs with cwd=d: relative paths would not resolve
        (self.root / "config.xml").write_text(_CONFIG.format(d=d, tcp=self.tcp_port, http=self.http_port))
        (self.root / "users.xml").write_text(_USERS)
        with open(self.root / "stdout.log", "ab") as log:
            self.proc = subprocess.Popen(
                [binary, f"--config-file={d}/config.xml"],
                cwd=d, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        try:
            wait_port(self.host, self.tcp_port, timeout_s, self.proc)
            self._wait_ready(timeout_s)
        except Exception as exc:
            raise ConfigError(f"clickhouse-server did not start: {exc}; see {d}/error.log") from None

    def _wait_ready(self, timeout_s: float) -> None:
        import time

        from clickhouse_driver import Client

        deadline = time.monotonic() + timeout_s
        while True:
            try:
                Client(self.host, port=self.tcp_port, connect_timeout=1).execute("SELECT 1")
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None
