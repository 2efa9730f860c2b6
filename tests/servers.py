"""Start real servers for the integration tests: the Tansu broker and a Debian clickhouse-server.

Missing binaries are an error with an install hint, never a skip: the CI
script (``scripts/install-deps.sh``) installs them.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.broker import free_port, start_tansu, stop_process, wait_port
from pipeline.chserver import ClickHouseServer, find_clickhouse_server

__all__ = ["ClickHouseServer", "TansuBroker", "find_clickhouse_server"]

@dataclass
class TansuBroker:
    """The Tansu broker on a free port, in-memory storage."""

    log_path: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        try:
            self.proc = start_tansu(self.port, self.log_path)
            wait_port("127.0.0.1", self.port, 20.0, self.proc)
        except Exception as exc:
            raise AssertionError(f"Tansu broker did not start: {exc}; see {self.log_path}") from None

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None
