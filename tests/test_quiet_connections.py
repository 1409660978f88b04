"""DuckDB's progress bar must never reach standard output: a query over 2 s (a large warehouse,
a busy machine) would print it inside the JSON of `report`, `cohorts`, `nowcast`... (SPEC §10:
the output is the JSON document alone). Found by the nowcast work on a loaded machine: 12
progress lines in one `nowcast` output. Every connection is opened through
etl.base.warehouse.open_duckdb (or connect), which turns it off."""

from __future__ import annotations

import re
from pathlib import Path

from etl.base.warehouse import connect, open_duckdb

ROOT = Path(__file__).resolve().parent.parent


def progress_bar(con) -> bool:
    return con.execute("select current_setting('enable_progress_bar')").fetchone()[0]


def test_connections_have_no_progress_bar(tmp_path):
    """A fresh DuckDB connection has the progress bar on (DuckDB's default); ours do not."""
    db = tmp_path / "w.duckdb"
    for con in (connect(db), open_duckdb()):
        try:
            assert progress_bar(con) is False
        finally:
            con.close()
    con = connect(db, read_only=True)
    try:
        assert progress_bar(con) is False
    finally:
        con.close()
    con = open_duckdb(db, read_only=True)
    try:
        assert progress_bar(con) is False
    finally:
        con.close()


def test_no_connection_is_opened_around_the_helper():
    """Outside etl/base/warehouse.py, no module of etl/ or dashboard/ calls duckdb.connect."""
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for folder in ("etl", "dashboard")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path.name != "warehouse.py"
        for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"\bduckdb\.connect\(", text)
    ]
    assert offenders == []
