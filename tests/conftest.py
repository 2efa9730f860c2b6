"""Session fixtures that start REAL servers on 127.0.0.1 (Tansu broker, clickhouse-server 18.16).

A missing binary fails the fixture with an install hint; it never skips.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from servers import ClickHouseServer, TansuBroker  # noqa: E402

from pipeline.compiled import StaleBuild, check_fresh  # noqa: E402


def pytest_sessionstart(session: pytest.Session) -> None:
    """Tests run the installed core: after editing a compiled module's source, rebuild first."""
    try:
        check_fresh()
    except StaleBuild as exc:
        pytest.exit(str(exc), returncode=2)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap address ``127.0.0.1:PORT`` of a Tansu broker with in-memory storage."""
    server = TansuBroker(tmp_path_factory.mktemp("tansu") / "tansu.log")
    server.start()
    try:
        yield server.bootstrap
    finally:
        server.stop()


@pytest.fixture(scope="session")
def clickhouse_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseServer]:
    """A private clickhouse-server (Debian 18.16) on free ports; ``.host``, ``.tcp_port``, ``.stop()``."""
    server = ClickHouseServer(tmp_path_factory.mktemp("clickhouse"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Data directory of the embedded ClickHouse (chdb allows one path per process: share it)."""
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture(scope="session")
def investigation(broker: str, chdb_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Simulated traffic run once through worker + sink into chdb (tests/investigation.py)."""
    from investigation import build

    inv = build(broker, chdb_path, tmp_path_factory.mktemp("investigation"))
    try:
        yield inv
    finally:
        inv.store.close()
