"""The embedded DuckDB warehouse: opening it, its raw tables, its views and their settings."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from pathlib import Path

import duckdb
import holidays

import sql as sql_pkg
from etl.base.codes import FEE_CODES
from etl.base.config import Config
from etl.base.errors import first_line

DB_ENV = "BENZO_MONITOR_DB"
DEFAULT_DB = Path("data") / "benzo_monitor.duckdb"
HOLIDAY_YEARS = range(2020, 2041)


class WarehouseError(RuntimeError):
    """The warehouse cannot be opened or used; the message says why in plain words."""


def default_db_path() -> Path:
    """$BENZO_MONITOR_DB, or data/benzo_monitor.duckdb under the working directory."""
    return Path(os.environ.get(DB_ENV) or DEFAULT_DB)


def schema_fingerprint() -> str:
    digest = hashlib.sha256()
    raw = [sql_pkg.SQL_DIR / "raw" / "tables.sql", sql_pkg.SQL_DIR / "store" / "tables.sql"]
    for path in [*raw, *sql_pkg.view_files()]:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    digest.update(repr(FEE_CODES).encode())
    digest.update(repr(list(HOLIDAY_YEARS)).encode())
    return digest.hexdigest()


def stored_schema_fingerprint(con: duckdb.DuckDBPyConnection) -> str | None:
    """The sql/ fingerprint the database of `con` (a warehouse or a snapshot) was built with
    (`schema_fingerprint` then); None when it records none."""
    try:
        row = con.execute(
            "select value from main.warehouse_meta where key = 'schema_fingerprint'"
        ).fetchone()
    except duckdb.CatalogException:
        return None
    return row[0] if row else None


def ledger_ids(con: duckdb.DuckDBPyConnection) -> list[int]:
    """The load ids of the ledger (`main.loads`) on `con`, a warehouse or a snapshot, in order."""
    return [i for (i,) in con.execute("select load_id from main.loads order by load_id").fetchall()]


def ledger_identity(con: duckdb.DuckDBPyConnection) -> list[tuple[int, str, str]]:
    """Each load of the ledger on `con` as (load id, file hash, start as text), in load order:
    what tells a load from another one that took its id (an unloaded one)."""
    return [
        (load_id, sha, str(started))
        for load_id, sha, started in con.execute(
            "select load_id, file_sha256, started_at from main.loads order by load_id"
        ).fetchall()
    ]


def views_current(con: duckdb.DuckDBPyConnection) -> bool:
    """Do the warehouse's views come from this version of sql/? (False: open it writable once.)"""
    return stored_schema_fingerprint(con) == schema_fingerprint()


def _plain_lock_message(exc: Exception, db_path: Path) -> str:
    text = str(exc)
    if "lock" in text.lower():
        holder = re.search(r"PID (\d+)", text)
        who = f" (process {holder.group(1)})" if holder else ""
        return (
            f"the warehouse {db_path} is in use by another program{who}; "
            "wait for it to finish and try again"
        )
    return f"the warehouse {db_path} cannot be opened: {first_line(exc)}"


def open_duckdb(
    path: str | os.PathLike = ":memory:", *, read_only: bool = False
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the progress bar off: DuckDB prints it on standard output for
    any query over 2 s, which would land inside a command's JSON (SPEC §10). Every connection
    of etl/ and dashboard/ is opened here (tests/test_quiet_connections.py)."""
    con = duckdb.connect(str(path), read_only=read_only)
    con.execute("set enable_progress_bar = false")
    return con


def connect(
    db_path: str | os.PathLike | None = None,
    *,
    read_only: bool = False,
    config: Config | None = None,
    memory_limit: str | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse; a writable connection creates or upgrades tables and views.

    When `config` is given, its values are set as the session variables the views read
    (see `apply_settings`).
    """
    path = Path(db_path) if db_path else default_db_path()
    if read_only and not path.exists():
        raise WarehouseError(f"no warehouse at {path}: load an export first (benzo-monitor load)")
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = open_duckdb(path, read_only=read_only)
    except duckdb.Error as exc:
        raise WarehouseError(_plain_lock_message(exc, path)) from exc
    if memory_limit:
        con.execute(f"set memory_limit = '{memory_limit}'")
    if not read_only:
        ensure_schema(con)
    if config is not None:
        apply_settings(con, config)
    return con


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw tables, reference tables and views, or refresh them if sql/ changed."""
    con.execute(sql_pkg.read_sql("raw/tables.sql"))
    con.execute(
        "create table if not exists warehouse_meta (key varchar primary key, value varchar)"
    )
    wanted = schema_fingerprint()
    if stored_schema_fingerprint(con) == wanted:
        return
    con.execute("begin transaction")
    try:
        _write_reference_tables(con)
        for path in sql_pkg.view_files():
            con.execute(path.read_text(encoding="utf-8"))
        con.execute(
            "insert or replace into warehouse_meta values ('schema_fingerprint', ?)", [wanted]
        )
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise


def _write_reference_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        create or replace table fee_codes (
            cnk varchar primary key, kind varchar not null, scheme integer, capsules integer,
            coefficient varchar not null, label_fr varchar, label_nl varchar, label_en varchar
        )
        """
    )
    con.executemany(
        "insert into fee_codes values (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (c.cnk, c.kind, c.scheme, c.capsules, c.coefficient, c.label_fr, c.label_nl, c.label_en)
            for c in FEE_CODES
        ],
    )
    # Belgian public holidays from the maintained `holidays` library (Sundays among them, such
    # as Easter Sunday, are non-working days anyway).
    con.execute(
        "create or replace table belgian_public_holidays (holiday_date date primary key, name varchar)"
    )
    calendar = holidays.country_holidays("BE", years=HOLIDAY_YEARS, language="en_US")
    con.executemany(
        "insert into belgian_public_holidays values (?, ?)",
        sorted((day, name) for day, name in calendar.items()),
    )


def apply_settings(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    as_of_date: dt.date | None = None,
    max_load_id: int | None = None,
    vintage_date: dt.date | None = None,
) -> None:
    """Set the session variables every view reads: the configuration and the as-of date.

    Variables belong to one connection or cursor, so each new cursor needs this call.
    `as_of_date` None means the default: the latest delivery date in the warehouse.
    `max_load_id` None means every load (see `set_max_load_id`).
    `vintage_date` None means every line loaded (see `set_vintage`).
    """
    values = {
        "grace_days": config.grace_days,
        "stabilisation_days": config.stabilisation_days,
        "max_programme_days": config.max_programme_days,
        "early_delivery_working_days": config.early_delivery_working_days,
        "programme_start": config.programme_start,
        "structural_start": config.structural_start,
        "provisional_days": config.provisional_days,
        "suppression_threshold": config.suppression_threshold,
        "interview_coefficient": config.interview_coefficient,
        "preparation_coefficient": config.preparation_coefficient,
    }
    for name, value in values.items():
        if isinstance(value, dt.date):
            con.execute(f"set variable {name} = ?::date", [value])
        elif isinstance(value, int):
            con.execute(f"set variable {name} = ?::integer", [value])
        else:
            con.execute(f"set variable {name} = ?::decimal(10, 4)", [value])
    con.execute(
        "set variable key_letter_values = ?::struct(valid_from date, value decimal(10, 4))[]",
        [[{"valid_from": kv.valid_from, "value": kv.value} for kv in config.key_letter_values]],
    )
    set_max_load_id(con, max_load_id)
    set_vintage(con, vintage_date)
    set_as_of(con, as_of_date)


def set_max_load_id(con: duckdb.DuckDBPyConnection, max_load_id: int | None) -> None:
    """Make the views see only the lines (and loads) of loads up to `max_load_id`: the
    warehouse as it was after that load. None (the default) means every load."""
    con.execute("set variable max_load_id = ?::integer", [max_load_id])


def set_vintage(con: duckdb.DuckDBPyConnection, vintage_date: dt.date | None) -> None:
    """Make the views see only the lines known on or before `vintage_date` (SPEC §15: a line
    is known from the last day of its billing month, else of the month its file was loaded).
    None (the default) means every line loaded."""
    con.execute("set variable vintage_date = ?::date", [vintage_date])


def set_as_of(con: duckdb.DuckDBPyConnection, as_of_date: dt.date | None) -> None:
    """Set (or reset to the default, with None) the as-of date the views compute for."""
    con.execute("set variable as_of_date = ?::date", [as_of_date])


def dict_rows(con: duckdb.DuckDBPyConnection, sql: str, params=None) -> list[dict]:
    """The rows of `sql` as dicts keyed by column name (on a connection or a cursor)."""
    cursor = con.execute(sql, list(params or []))
    names = [c[0] for c in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
