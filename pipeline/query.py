"""``distillwatch query "SQL"``: read-only investigator queries against ClickHouse (embedded or server).

Only one statement, and only a reading one (SELECT, WITH, SHOW, DESCRIBE,
EXPLAIN, EXISTS), unless ``--allow-writes``. Output is an aligned table, CSV or JSON.

>>> check_sql("SELECT 1 -- ok; really")
'SELECT 1 -- ok; really'
>>> check_sql("DROP TABLE x")
Traceback (most recent call last):
...
pipeline.errors.QueryRefused: DROP is a write: add --allow-writes to run it
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError, QueryRefused
from pipeline.settings import Settings

READ_KEYWORDS = frozenset({"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "EXISTS"})
# Comments and literals, blanked before looking at the statement's structure.
_NOISE = re.compile(r"--[^\n]*|/\*.*?\*/|'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`(?:[^`\\]|\\.)*`", re.DOTALL)


def check_sql(sql: str, allow_writes: bool = False) -> str:
    """Return ``sql`` if it may run; raise QueryRefused for writes or several statements."""
    bare = _NOISE.sub(" ", sql).strip()
    if not bare.rstrip(";").strip():
        raise QueryRefused("empty query")
    if allow_writes:
        return sql
    if ";" in bare.rstrip().rstrip(";"):
        raise QueryRefused("several statements: run them one at a time, or add --allow-writes")
    keyword = re.match(r"\(*\s*(\w+)", bare)
    word = keyword.group(1).upper() if keyword else bare.split()[0]
    if word not in READ_KEYWORDS:
        raise QueryRefused(f"{word} is a write: add --allow-writes to run it")
    if re.search(r"\bINTO\s+OUTFILE\b", bare, re.IGNORECASE):
        raise QueryRefused("INTO OUTFILE writes a file: add --allow-writes to run it")
    return sql


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, datetime | date):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def format_table(names: list[str], rows: list[tuple[Any, ...]]) -> str:
    """An aligned text table: numbers right-aligned, everything else left-aligned."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(n)] + [len(r[i]) for r in cells]) for i, n in enumerate(names)]
    numeric = [bool(rows) and all(isinstance(r[i], int | float) for r in rows) for i in range(len(names))]

    def line(values: list[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)
        )

    out = [line(names), "  ".join("-" * w for w in widths)] + [line(r) for r in cells]
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(s.rstrip() for s in out)


def format_csv(names: list[str], rows: list[tuple[Any, ...]]) -> str:
    """CSV with a header row."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(names)
    writer.writerows([[_cell(v) if not isinstance(v, str) else v for v in row] for row in rows])
    return buf.getvalue().rstrip("\n")


def format_json(names: list[str], rows: list[tuple[Any, ...]]) -> str:
    """A JSON array of objects (dates as ISO strings)."""
    import orjson

    objects = [dict(zip(names, row, strict=True)) for row in rows]
    return orjson.dumps(objects, default=str, option=orjson.OPT_INDENT_2).decode()


FORMATTERS = {"table": format_table, "csv": format_csv, "json": format_json}


def register(sub: Any) -> None:
    """Add the ``query`` subcommand."""
    p = sub.add_parser("query", help="run a read-only SQL query against the investigation store")
    p.add_argument("sql", nargs="?", help="the SQL (or use --file)")
    p.add_argument("--file", type=Path, help="read the SQL from this file")
    p.add_argument("--format", choices=sorted(FORMATTERS), default="table")
    p.add_argument("--allow-writes", action="store_true", help="allow writes and several statements")
    p.add_argument(
        "--param", action="append", metavar="NAME=VALUE",
        help="fill {NAME} declared by '-- @param' in the SQL (repeatable; {db} is automatic)",
    )  # fmt: skip
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the query (or statements, with --allow-writes) and print the result."""
    from pipeline.investigate import declared_params, parse_params, render_sql
    from pipeline.store import open_store

    if (args.sql is None) == (args.file is None):
        raise ConfigError("give the SQL either as an argument or with --file, not both")
    try:
        sql = args.sql if args.sql is not None else args.file.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read {args.file}: {exc.strerror}") from None
    params = parse_params(getattr(args, "param", None))
    if params or declared_params(sql) or "{db}" in sql:
        sql = render_sql(sql, params, settings.clickhouse_database)
    check_sql(sql, args.allow_writes)
    store = open_store(settings)
    try:
        statements = [sql]
        if args.allow_writes:
            statements = [s for s in re.split(r";\s*(?:\n|$)", sql) if s.strip()]
        for statement in statements:
            names, rows = store.query(statement)
            if names:
                print(FORMATTERS[args.format](names, rows))
    finally:
        store.close()
    sys.stdout.flush()
    return 0
