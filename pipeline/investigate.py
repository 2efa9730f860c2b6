"""Investigator SQL kit: ``schemas/queries/*.sql`` with documented ``{placeholders}``, safely filled.

ClickHouse 18.16 has no query parameters (``{name:Type}``), so each query file
declares its parameters in its header comment, one per line::

    -- @param account_id String            the account to look at
    -- @param from DateTime = 1970-01-01 00:00:00   start of the period (UTC)

and uses them as ``{account_id}``; ``{db}`` is the configured database.
``render_sql`` turns each value into a literal of the declared type (strings
quoted and escaped, numbers and times validated), so a value never becomes SQL.

>>> sql = "-- @param account_id String  who\\n-- @param limit UInt32 = 10  rows\\n"
>>> sql += "SELECT {account_id}, {limit}"
>>> render_sql(sql, {"account_id": "o'k"}, "dw").splitlines()[-1]
"SELECT 'o\\\\'k', 10"
>>> render_sql(sql, {}, "dw")
Traceback (most recent call last):
...
pipeline.errors.ConfigError: missing --param account_id (String: who)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pipeline.errors import ConfigError

QUERY_DIR = Path(__file__).resolve().parent.parent / "schemas" / "queries"
_DECL = re.compile(r"^--\s*@param\s+(\w+)\s+(\w+)(?:\s*=\s*(.*?))?(?:\s{2,}(.*))?\s*$", re.MULTILINE)
_DB = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
TYPES = ("String", "DateTime", "UInt32", "Int64", "Float64")


@dataclass(frozen=True)
class Param:
    """One declared parameter of a query file."""

    name: str
    type: str
    default: str | None
    doc: str


def declared_params(sql: str) -> dict[str, Param]:
    """The ``-- @param`` declarations of a query file, in order."""
    out: dict[str, Param] = {}
    for m in _DECL.finditer(sql):
        name, typ, default, doc = m.group(1), m.group(2), m.group(3), (m.group(4) or "").strip()
        if typ not in TYPES:
            raise ConfigError(f"@param {name}: unsupported type {typ} (use one of {', '.join(TYPES)})")
        out[name] = Param(name, typ, default.strip() if default is not None else None, doc)
    return out


def literal(value: str, typ: str) -> str:
    """``value`` as a ClickHouse literal of type ``typ``; a value that does not fit is a ConfigError."""
    try:
        if typ == "String":
            return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
        if typ == "DateTime":
            ts = datetime.fromisoformat(value.strip().replace("T", " ").removesuffix("Z"))
            return f"toDateTime('{ts.strftime('%Y-%m-%d %H:%M:%S')}', 'UTC')"
        if typ in ("UInt32", "Int64"):
            n = int(value)
            if typ == "UInt32" and not 0 <= n < 2**32:
                raise ValueError
            return str(n)
        if typ == "Float64":
            f = float(value)
            if f != f or f in (float("inf"), float("-inf")):
                raise ValueError
            return repr(f)
    except ValueError:
        raise ConfigError(f"{value!r} is not a valid {typ}") from None
    raise ConfigError(f"unsupported parameter type {typ}")


def parse_params(items: list[str] | None) -> dict[str, str]:
    """``["name=value", ...]`` (the ``--param`` options) as a dict."""
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--param wants NAME=VALUE, got {item!r}")
        out[name.strip()] = value
    return out


def render_sql(sql: str, params: dict[str, str], database: str) -> str:
    """Fill ``{db}`` and the declared ``{name}`` placeholders of ``sql`` with safe literals."""
    if not _DB.match(database):
        raise ConfigError(f"not a valid ClickHouse identifier: {database!r}")
    decls = declared_params(sql)
    unknown = sorted(set(params) - set(decls))
    if unknown:
        known = ", ".join(decls) or "none"
        raise ConfigError(f"unknown --param {', '.join(unknown)} (this query takes: {known})")
    values: dict[str, str] = {"db": database}
    for p in decls.values():
        if p.name in params:
            values[p.name] = literal(params[p.name], p.type)
        elif p.default is not None:
            values[p.name] = literal(p.default, p.type)
        else:
            raise ConfigError(f"missing --param {p.name} ({p.type}: {p.doc or 'no description'})")
    body = "\n".join(ln for ln in sql.splitlines() if not ln.lstrip().startswith("--"))
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), body).strip()


def load_query(name: str) -> str:
    """The text of ``schemas/queries/NAME.sql``."""
    path = QUERY_DIR / f"{name.removesuffix('.sql')}.sql"
    if not path.is_file():
        raise ConfigError(f"no investigator query {name!r} in {QUERY_DIR}")
    return path.read_text()
