"""The machine-readable exports of SPEC §10: `report`, `cohorts` and `compliance`.

This module opens the warehouse for them (the published snapshot when it is fresh, else the
views) and writes JSON; the documents themselves and their CSV layouts are built by
etl.figures, the CSV is written by etl.exports. Which figures are counts, rates or amounts, and
which column holds a rate's denominator, is read from the metric registry
(etl/base/registry.py).

JSON and CSV layouts (documented in docs/methodology.md, "Exports"):
- report: {"month", "as_of", "provisional", "schemes": {"5", "7", "10", "total"}, "unassigned"}
- cohorts: {"as_of", "cohorts": [...]} sorted by initiation month, then scheme 5, 7, 10
- compliance: {"as_of", "rules": {"R01".."R18"}, "findings": [...]}
Disclosure control (SPEC §9, etl.base.disclosure): a suppressed count is the string "<5" (with
the configured threshold) or "x" (complementary); a suppressed rate or fee is null; a suppressed
document ends with a "disclosure" key (a CSV with a `disclosure` column) naming the rules.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb

from etl.base import publish, warehouse
from etl.base.config import Config
from etl.base.errors import UserError, first_line

# --- opening the warehouse ----------------------------------------------------------------


def open_warehouse(
    db_path: Path | None, config: Config, as_of: dt.date | None
) -> duckdb.DuckDBPyConnection:
    """The warehouse, read-only, with the settings and the as-of date applied.

    Views written by an older version of sql/ are refreshed first (a short writable open).
    Raises UserError when there is no warehouse, it is locked, or it holds no billing lines.
    """
    path = Path(db_path) if db_path else warehouse.default_db_path()
    try:
        con = warehouse.connect(path, read_only=True, config=config)
        if not warehouse.views_current(con):
            con.close()
            warehouse.connect(path).close()  # ensure_schema rewrites the views
            con = warehouse.connect(path, read_only=True, config=config)
    except warehouse.WarehouseError as exc:
        raise UserError(str(exc)) from exc
    except duckdb.Error as exc:
        raise UserError(f"the warehouse {path} cannot be read: {first_line(exc)}") from exc
    (n_lines,) = con.execute("select count(*) from billing_lines").fetchone()
    if n_lines == 0:
        con.close()
        raise UserError(
            f"the warehouse {path} holds no billing lines yet: load an export first "
            "(benzo-monitor load FILE)"
        )
    warehouse.set_as_of(con, as_of)
    return con


# --- the month reported, JSON -------------------------------------------------------------


def set_report_month(con: duckdb.DuckDBPyConnection, month: str) -> None:
    """Make the month spine of the views reach `month` (YYYY-MM), the month reported."""
    month_start = dt.datetime.strptime(month, "%Y-%m").date()
    con.execute("set variable report_month = ?::date", [month_start])


def to_json(doc: dict) -> str:
    """The document as indented JSON (UTF-8 text, not ASCII-escaped)."""
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


# --- the command --------------------------------------------------------------------------


def open_for_export(
    db_path: Path | None,
    config: Config,
    as_of: dt.date | None,
    month: str | None,
    vintage: dt.date | None = None,
) -> duckdb.DuckDBPyConnection:
    """A read-only connection on which the marts answer one export quickly.

    When the published snapshot (etl/base/publish.py) is up to date and was computed for this
    as-of date and a spine reaching `month`, its marts are read (search path `published`,
    then `main`): milliseconds. Otherwise the warehouse's views, with the core views computed
    once first (temporary tables on this connection; the settings are final by then).
    `vintage` (SPEC §15): only the lines known on that date, always from the views.
    """
    con = open_warehouse(db_path, config, as_of)
    if vintage is not None:
        warehouse.set_vintage(con, vintage)
        if month is not None:
            set_report_month(con, month)
        publish.materialise_core(con)
        return con
    (max_load_id,) = con.execute("select max(load_id) from loads").fetchone()
    snap = publish.fresh_snapshot(
        publish.database_path(con), config, max_load_id, warehouse.ledger_ids(con)
    )
    if snap is not None and as_of in (None, snap.as_of_date):
        try:
            reader = publish.open_snapshot(snap.path)
        except duckdb.Error:
            reader = None  # pruned meanwhile: read the views
        if reader is not None:
            (last,) = reader.execute(
                f"select max(month) from {publish.PUBLISHED_SCHEMA}.mart_state_of_play"
            ).fetchone()
            if month is None or (last is not None and month <= last):
                con.close()
                warehouse.apply_settings(reader, config, as_of)
                reader.execute(f"set search_path = '{publish.PUBLISHED_SCHEMA},main'")
                return reader
            reader.close()
    if month is not None:
        set_report_month(con, month)
    publish.materialise_core(con, lazy=True)  # one document: a few marts
    return con
