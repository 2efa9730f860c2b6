"""``distillwatch query``: refuses writes and several statements; prints table, CSV or JSON."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from pipeline.cli import main
from pipeline.errors import QueryRefused
from pipeline.query import check_sql, format_table


@pytest.mark.parametrize(
    "sql",
    ["INSERT INTO t VALUES (1)", "alter table t delete where 1", "DROP TABLE t", "CREATE TABLE x (a UInt8)",
     "TRUNCATE TABLE t", "RENAME TABLE a TO b", "OPTIMIZE TABLE t FINAL",
     "SYSTEM STOP MERGES", "KILL QUERY ALL",
     "GRANT SELECT ON *.* TO x", "SET readonly = 0", "SELECT 1; DROP TABLE t", "SELECT 1; SELECT 2",
     "/* hi */ DELETE FROM t WHERE 1", "SELECT 1 INTO OUTFILE '/tmp/x'", "", " ; "],
)  # fmt: skip
def test_writes_and_multiple_statements_are_refused(sql: str) -> None:
    with pytest.raises(QueryRefused):
        check_sql(sql)


@pytest.mark.parametrize(
    "sql",
    ["SELECT 1;", "  with x as (select 1) select * from x", "SHOW TABLES", "DESCRIBE TABLE t", "(SELECT 1)",
     "SELECT ';DROP TABLE t' AS s -- ; DROP", "EXPLAIN SELECT 1", "EXISTS TABLE t"],
)  # fmt: skip
def test_reads_are_allowed(sql: str) -> None:
    assert check_sql(sql) == sql


def test_writes_allowed_with_flag() -> None:
    assert check_sql("DROP TABLE t; SELECT 1", allow_writes=True)


def test_table_format_aligns() -> None:
    out = format_table(["account", "n"], [("a", 5), ("bbbbbb", 12345)]).splitlines()
    assert out[0] == "account      n" and out[2] == "a            5" and out[-1] == "(2 rows)"


@pytest.mark.integration
def test_cli_query_embedded(
    chdb_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("DW_CLICKHOUSE_MODE", "embedded")
    monkeypatch.setenv("DW_CLICKHOUSE_PATH", str(chdb_path))
    monkeypatch.setenv("DW_CLICKHOUSE_DATABASE", "dw_query_cli")
    setup = "CREATE DATABASE IF NOT EXISTS dw_query_cli;\nCREATE TABLE IF NOT EXISTS dw_query_cli.t (a UInt64, s String) ENGINE = MergeTree ORDER BY a;\nINSERT INTO dw_query_cli.t VALUES (1, 'x'), (22, 'y')"  # noqa: E501
    assert main(["query", setup]) == 2  # refused without --allow-writes
    assert "--allow-writes" in capsys.readouterr().err
    assert main(["query", "--allow-writes", setup]) == 0
    capsys.readouterr()
    assert main(["query", "--format", "json", "SELECT a, s FROM dw_query_cli.t ORDER BY a"]) == 0
    assert orjson.loads(capsys.readouterr().out) == [{"a": 1, "s": "x"}, {"a": 22, "s": "y"}]
    (tmp_path / "q.sql").write_text("SELECT s, a FROM dw_query_cli.t ORDER BY a\n")
    assert main(["query", "--format", "csv", "--file", str(tmp_path / "q.sql")]) == 0
    assert capsys.readouterr().out == "s,a\nx,1\ny,22\n"
    assert main(["query", "SELECT * FROM dw_query_cli.missing"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("distillwatch query: error:") and err.count("\n") == 1
