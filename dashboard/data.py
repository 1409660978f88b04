"""The dashboard's only way to the warehouse: read-only, one short-lived connection per call."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from etl.config import Config, load_config
from etl.warehouse import apply_settings


class Warehouse:
    """Reads marts for the dashboard's callbacks (each call opens its own connection)."""

    def __init__(self, db_path: str | Path, config: Config | None = None):
        self.db_path = Path(db_path)
        self.config = config or load_config()

    def rows(
        self, sql: str, params: list | None = None, as_of: dt.date | None = None
    ) -> list[dict]:
        """Rows of `sql` as dicts, computed as of `as_of` (default: latest delivery date)."""
        if not self.db_path.exists():
            return []
        con = duckdb.connect(str(self.db_path), read_only=True)
        try:
            apply_settings(con, self.config, as_of)
            cur = con.execute(sql, params or [])
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        finally:
            con.close()

    def has_table(self, name: str) -> bool:
        rows = self.rows(
            "select count(*) as n from duckdb_tables() where table_name = ? "
            "union all select count(*) from duckdb_views() where view_name = ?",
            [name, name],
        )
        return any(r["n"] for r in rows)
