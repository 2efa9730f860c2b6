"""ClickHouse access for the sink and investigators: one protocol, a server and an embedded backend.

``ServerStore`` speaks the native protocol (clickhouse-driver, columnar inserts);
``EmbeddedStore`` runs ClickHouse in-process (chdb) under ``clickhouse_path``.
Both insert a *columnar* batch ``{column: [values...]}`` and answer
``query(sql) -> (column_names, rows)``. Errors never carry a secret.

The DDL in ``schemas/clickhouse/*.sql`` is written for modern ClickHouse;
``degrade_ddl`` removes exactly the constructs an older server lacks
(see ``DEGRADATIONS``), so the same files load on 18.16 and on chdb 26.x.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol

import orjson

from pipeline.errors import ConfigError, DistillWatchError, StoreUnavailable
from pipeline.settings import Settings

# clickhouse-driver logs a traceback (WARNING) on every failed connect. Without a handler of its own
# it reached stderr through logging's last resort: a CLI error became a traceback. Processes that
# configure logging (worker, sink) still get it, as one JSON record.
logging.getLogger("clickhouse_driver").addHandler(logging.NullHandler())

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas" / "clickhouse"
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z").match

# (name, first server version supporting it, pattern, replacement) — applied only below that version.
DEGRADATIONS: tuple[tuple[str, tuple[int, int], re.Pattern[str], str], ...] = (
    # LowCardinality is experimental (off) before 19.0: plain String stores the same values.
    ("low_cardinality", (19, 0), re.compile(r"LowCardinality\((\w+)\)"), r"\1"),
    # Column compression codecs arrive in 19.1: the default LZ4 applies instead.
    ("codec", (19, 1), re.compile(r"\s*CODEC\((?:[^()]|\([^()]*\))*\)"), ""),
    # Table TTL arrives in 19.6 (must sit on its own line): data is kept until dropped by hand.
    ("ttl", (19, 6), re.compile(r"^[ \t]*TTL\b[^\n]*\n", re.MULTILINE), ""),
)


class Store(Protocol):
    """What the sink and the query command need from ClickHouse."""

    database: str
    insert_settings: dict[str, int] | None

    def execute(self, sql: str) -> None:
        """Run one statement, discarding any result."""

    def query(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run one statement and return (column names, rows)."""

    def insert(self, table: str, columns: Mapping[str, Sequence[Any]]) -> int:
        """Insert a columnar batch into ``database.table``; return the number of rows."""

    def server_version(self) -> tuple[int, ...]:
        """The ClickHouse version, e.g. (18, 16, 1)."""

    def close(self) -> None:
        """Release the connection (idempotent)."""


# Settings of every insert, where the server knows them. A ReplacingMergeTree merges each inserted
# block on insert by default; the rows it replaces are replaced anyway by the background merges,
# and reads go through the argMax views or FINAL (exact either way): skipping it cuts the insert
# time by about a quarter (``python scripts/bench_store.py`` vs ``--merge-on-insert``).
INSERT_SETTINGS = {"optimize_on_insert": 0}


def _insert_settings(store: Store) -> dict[str, int]:
    """The ``INSERT_SETTINGS`` that ``store``'s server supports (18.16 has none of them)."""
    names = ", ".join(f"'{k}'" for k in INSERT_SETTINGS)
    known = {row[0] for row in store.query(f"SELECT name FROM system.settings WHERE name IN ({names})")[1]}
    return {k: v for k, v in INSERT_SETTINGS.items() if k in known}


def _check_ident(name: str) -> str:
    if not _IDENT(name):
        raise ConfigError(f"not a valid ClickHouse identifier: {name!r}")
    return name


def _rows_of(columns: Mapping[str, Sequence[Any]]) -> int:
    return len(next(iter(columns.values()))) if columns else 0


class ServerStore:
    """A ClickHouse server over the native protocol (TLS and credentials from settings)."""

    def __init__(self, settings: Settings) -> None:
        from clickhouse_driver import Client

        self.database = _check_ident(settings.clickhouse_database)
        self._where = f"{settings.clickhouse_host}:{settings.clickhouse_port}"
        self._secret = settings.clickhouse_password.get_secret_value()
        self._lock = threading.Lock()
        self.insert_settings: dict[str, int] | None = None  # probed at the first insert
        kw: dict[str, Any] = {}
        if settings.clickhouse_secure:
            kw.update(secure=True, verify=True, ca_certs=settings.clickhouse_ca_certs or None)
        self._client = Client(
            host=settings.clickhouse_host,
            port=settings.clickhouse_port,
            user=settings.clickhouse_user,
            password=self._secret,
            connect_timeout=5,
            send_receive_timeout=60,
            **kw,
        )

    def _call(self, sql: str, params: Any = None, **kw: Any) -> Any:
        from clickhouse_driver import errors as cherr

        try:
            with self._lock:  # one connection: calls from several threads (sink, bench poller) take turns
                return self._client.execute(sql, params, **kw)
        except cherr.ServerException as exc:
            raise DistillWatchError(self._scrub(f"ClickHouse error {exc.code}: {exc.message}")) from None
        except (cherr.NetworkError, cherr.SocketTimeoutError, EOFError, OSError) as exc:
            self._client.disconnect()
            msg = f"ClickHouse at {self._where} unavailable ({type(exc).__name__})"
            raise StoreUnavailable(msg) from None
        except cherr.Error as exc:
            self._client.disconnect()
            msg = f"ClickHouse at {self._where}: {type(exc).__name__}"
            raise StoreUnavailable(msg) from None

    def _scrub(self, text: str) -> str:
        text = text.strip().splitlines()[0] if text.strip() else text
        return text.replace(self._secret, "***") if self._secret else text

    def execute(self, sql: str) -> None:
        self._call(sql)

    def query(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        rows, types = self._call(sql, with_column_types=True)
        return [name for name, _ in types], [tuple(r) for r in rows]

    def insert(self, table: str, columns: Mapping[str, Sequence[Any]]) -> int:
        if self.insert_settings is None:
            self.insert_settings = _insert_settings(self)
        names = ", ".join(columns)
        sql = f"INSERT INTO {self.database}.{_check_ident(table)} ({names}) VALUES"
        self._call(sql, [list(c) for c in columns.values()], columnar=True, settings=self.insert_settings)
        return _rows_of(columns)

    def server_version(self) -> tuple[int, ...]:
        return _parse_version(self.query("SELECT version()")[1][0][0])

    def close(self) -> None:
        self._client.disconnect()


class EmbeddedStore:
    """ClickHouse in this process (chdb); one data path per process, calls serialised by a lock."""

    def __init__(self, settings: Settings) -> None:
        from chdb import session

        self.database = _check_ident(settings.clickhouse_database)
        path = Path(settings.clickhouse_path)
        path.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.insert_settings: dict[str, int] | None = None  # probed at the first insert
        try:
            self._session: Any = session.Session(str(path))
        except RuntimeError as exc:
            raise StoreUnavailable(f"embedded ClickHouse at {path}: {str(exc).splitlines()[0]}") from None

    def _run(self, sql: str, fmt: str = "CSV") -> Any:
        with self._lock:
            try:
                return self._session.query(sql, fmt)
            except RuntimeError as exc:
                raise DistillWatchError(f"ClickHouse error: {str(exc).strip().splitlines()[0]}") from None

    def execute(self, sql: str) -> None:
        self._run(sql)

    def query(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        result = self._run(sql, "JSONCompact")
        raw = result.bytes() if result is not None else b""
        if not raw.strip():
            return [], []
        doc = orjson.loads(raw)
        meta = doc.get("meta", [])
        fixers = [_FROM_TEXT.get(re.sub(r"\(.*", "", m["type"].removeprefix("Nullable("))) for m in meta]
        rows = [
            tuple(
                fix(v) if fix is not None and v is not None else v for fix, v in zip(fixers, row, strict=True)
            )
            for row in doc.get("data", [])
        ]
        return [m["name"] for m in meta], rows

    def insert(self, table: str, columns: Mapping[str, Sequence[Any]]) -> int:
        # JSONCompactColumns: one orjson call for the batch, parsed by ClickHouse into the table's
        # own types. (An Arrow table via Python() measured about as fast, but infers types from the
        # data: an all-empty Array column becomes a null list ClickHouse refuses.)
        if self.insert_settings is None:
            self.insert_settings = _insert_settings(self)
        body = orjson.dumps(list(columns.values()))
        names = ", ".join(columns)
        opts = ", ".join(f"{k}={v}" for k, v in self.insert_settings.items())
        sql = f"INSERT INTO {self.database}.{_check_ident(table)} ({names})"
        sql += f" SETTINGS {opts} FORMAT JSONCompactColumns " if opts else " FORMAT JSONCompactColumns "
        self._run(sql + body.decode())
        return _rows_of(columns)

    def server_version(self) -> tuple[int, ...]:
        return _parse_version(self.query("SELECT version()")[1][0][0])

    def close(self) -> None:
        with self._lock:
            self._session.close()


# JSON text -> the Python type clickhouse-driver returns, so both stores answer alike.
_FROM_TEXT: dict[str, Any] = {
    "DateTime": datetime.fromisoformat,
    "DateTime64": datetime.fromisoformat,
    "Date": date.fromisoformat,
    "Date32": date.fromisoformat,
}


def _parse_version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def open_store(settings: Settings) -> Store:
    """The store selected by ``settings.clickhouse_mode``."""
    if settings.clickhouse_mode == "server":
        return ServerStore(settings)
    return EmbeddedStore(settings)


def degrade_ddl(sql: str, version: tuple[int, ...]) -> str:
    """Remove from ``sql`` exactly the constructs that ClickHouse ``version`` does not support."""
    for _name, since, pattern, repl in DEGRADATIONS:
        if tuple(version[:2]) < since:
            sql = pattern.sub(repl, sql)
    return sql


def schema_statements(database: str, version: tuple[int, ...] = (99,)) -> list[str]:
    """The DDL statements of ``schemas/clickhouse/*.sql`` in file order, for ``version``."""
    out: list[str] = [f"CREATE DATABASE IF NOT EXISTS {_check_ident(database)}"]
    for path in sorted(SCHEMA_DIR.glob("*.sql")):
        text = "\n".join(ln for ln in path.read_text().splitlines() if not ln.lstrip().startswith("--"))
        text = degrade_ddl(text.replace("{database}", database) + "\n", version)
        out.extend(s.strip() for s in re.split(r";[ \t]*(?:\n|\Z)", text) if s.strip())
    return out


def apply_schema(store: Store) -> list[str]:
    """Create the database, tables and views (idempotent); return the statements run."""
    statements = schema_statements(store.database, store.server_version())
    for sql in statements:
        store.execute(sql)
    return statements
