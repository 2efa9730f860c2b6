"""deploy/clickhouse/users.d/distillwatch.xml on a real clickhouse-server: the investigator is read-only."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from clickhouse_driver import Client
from clickhouse_driver.errors import ServerException

USERS_D = Path(__file__).resolve().parents[1] / "deploy" / "clickhouse" / "users.d" / "distillwatch.xml"
# The placeholder passwords documented in the users.d file.
INVESTIGATOR = ("investigator", "investigator-change-me")
WRITER = ("distillwatch_writer", "writer-change-me")

pytestmark = pytest.mark.integration


def _login(server: object, user: str, password: str, timeout_s: float = 20.0) -> Client:
    """A client for ``user``, waiting for the server to (re)load users.d."""
    deadline = time.monotonic() + timeout_s
    while True:
        client = Client(server.host, port=server.tcp_port, user=user, password=password, connect_timeout=2)  # type: ignore[attr-defined]
        try:
            client.execute("SELECT 1")
            return client
        except ServerException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.25)


@pytest.fixture(scope="module")
def users(clickhouse_server: object) -> tuple[Client, Client, Client]:
    """(admin, writer, investigator) clients; installs users.d next to the fixture's users.xml."""
    root = Path(clickhouse_server.root)  # type: ignore[attr-defined]
    (root / "users.d").mkdir(exist_ok=True)
    shutil.copy(USERS_D, root / "users.d" / USERS_D.name)
    admin = Client(clickhouse_server.host, port=clickhouse_server.tcp_port)  # type: ignore[attr-defined]
    admin.execute("CREATE DATABASE IF NOT EXISTS distillwatch")
    admin.execute(
        "CREATE TABLE IF NOT EXISTS distillwatch.dw_acl_probe (k String, v UInt64)"
        " ENGINE = MergeTree ORDER BY k"
    )
    admin.execute("INSERT INTO distillwatch.dw_acl_probe VALUES", [("a", 1)])
    admin.execute("CREATE TABLE IF NOT EXISTS default.dw_acl_other (k String) ENGINE = Memory")
    return admin, _login(clickhouse_server, *WRITER), _login(clickhouse_server, *INVESTIGATOR)


def test_investigator_can_read(users: tuple[Client, Client, Client]) -> None:
    _, _, investigator = users
    assert investigator.execute("SELECT count() FROM distillwatch.dw_acl_probe")[0][0] >= 1


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO distillwatch.dw_acl_probe VALUES ('x', 2)",
        "ALTER TABLE distillwatch.dw_acl_probe DELETE WHERE 1",
        "ALTER TABLE distillwatch.dw_acl_probe ADD COLUMN evil String",
        "DROP TABLE distillwatch.dw_acl_probe",
        "TRUNCATE TABLE distillwatch.dw_acl_probe",
        "CREATE TABLE distillwatch.dw_evil (k String) ENGINE = Memory",
        "DROP DATABASE distillwatch",
        "SET readonly = 0",
    ],
)
def test_investigator_cannot_write(users: tuple[Client, Client, Client], sql: str) -> None:
    admin, _, investigator = users
    with pytest.raises(ServerException) as err:
        investigator.execute(sql)
    assert err.value.code == 164, err.value  # READONLY
    assert admin.execute("SELECT count() FROM distillwatch.dw_acl_probe")[0][0] >= 1
    assert admin.execute("EXISTS TABLE distillwatch.dw_evil")[0][0] == 0


def test_investigator_cannot_read_other_databases(users: tuple[Client, Client, Client]) -> None:
    _, _, investigator = users
    with pytest.raises(ServerException) as err:
        investigator.execute("SELECT count() FROM default.dw_acl_other")
    assert "access" in str(err.value).lower(), err.value


def test_writer_can_insert_and_create(users: tuple[Client, Client, Client]) -> None:
    admin, writer, _ = users
    writer.execute("CREATE TABLE IF NOT EXISTS distillwatch.dw_writer_probe (k String) ENGINE = Memory")
    writer.execute("INSERT INTO distillwatch.dw_writer_probe VALUES", [("w",)])
    assert admin.execute("SELECT count() FROM distillwatch.dw_writer_probe")[0][0] >= 1
    writer.execute("DROP TABLE distillwatch.dw_writer_probe")
