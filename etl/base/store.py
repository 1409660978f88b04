"""The core store: the as-of-independent part of the core views, kept as tables.

The as-of date D enters the core views only as `delivery_date <= D` (core_netted_lines), and
everything up to core_programme_events is a per-patient computation in delivery order whose
rows for the days up to D never look at a later day: netting groups by delivery date,
core_events numbers a patient's events in delivery order, a programme opening depends on
earlier events only, and core_programme_events' windows run from the first event to the
current one. So, computed once with no as-of cut ("as of the end of time", STORE_AS_OF), the
rows as of any D are a filter of those tables:

- core_netted_lines(D)       = store_netted_lines where delivery_date <= D;
- core_events(D)             = the event columns of store_programme_events, delivery_date <= D;
- core_programme_openings(D) = store_programme_openings where start_date <= D, with
  next_start_date null when it is after D;
- core_programme_events(D)   = store_programme_events where delivery_date <= D, with
  programme_first_reduction_date (a minimum over the whole programme, the one column that is
  not a running window) null when it is after D;
- core_initiation_lines(D)   = store_initiation_lines where delivery_date <= D (grouped by
  delivery date, like the netting);
- core_compliance_findings_causal(D) = store_compliance_findings_causal where
  delivery_date <= D: the compliance rules whose finding on an event depends on the
  patient's events up to it only (R01, R03-R15; why, in the view's header), computed on the
  stored core_programme_events (programme_first_reduction_date not nulled: a rule reads it
  only where it is on or before the flagged event) and core_programmes as of STORE_AS_OF
  (R12 reads only a completion date before the flagged follow-up).

The store is a cache of the views: its tables are computed BY the views (sql/core), with the
as-of date set to STORE_AS_OF, never by a second reading of the spec. `refresh_store` keeps it
current after each load, recomputing only the patients that have lines in loads the store has
not seen (the views group everything by patient) and, in its large tables, writing only
their rows that changed (DIFF_MIN_ROWS); `materialise_core` (etl/base/publish.py)
builds the core of a connection from it when it is valid for that connection (same sql/, same
configuration, same ledger, every load and every line: no max_load_id, no vintage), and from
the views otherwise.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import uuid

import duckdb

import sql as sql_pkg
from etl.base.config import SCALAR_FIELDS, Config
from etl.base.warehouse import apply_settings, ledger_ids, stored_schema_fingerprint

STORE_AS_OF = dt.date(9999, 12, 31)

# The configuration variables the views read (etl.base.warehouse.apply_settings sets every
# setting of one value but the budget's two, and the key letter values); the as-of date,
# report_month, max_load_id, vintage_date and report_id are not among them.
NOT_VARIABLES = ("annual_budget_eur", "nowcast_history_months")
SETTINGS_VARIABLES = (
    *(name for name in SCALAR_FIELDS if name not in NOT_VARIABLES),
    "key_letter_values",
)

# store table -> the core view it caches, in the order they are computed.
STORED_VIEWS = {
    "store_netted_lines": "core_netted_lines",
    "store_programme_openings": "core_programme_openings",
    "store_programme_events": "core_programme_events",
    "store_initiation_lines": "core_initiation_lines",
    "store_compliance_findings_causal": "core_compliance_findings_causal",
}
_TABLE_OF = {view: table for table, view in STORED_VIEWS.items()}

# The views computed to fill the store, in order (core_events on the way: the openings and
# core_programme_events read it); each is a filter of the store at any as-of date.
COMPUTED_VIEWS = (
    "core_netted_lines",
    "core_events",
    "core_programme_openings",
    "core_programme_events",
    "core_initiation_lines",
    "core_compliance_findings_causal",
)
# Core views read by a few marts only (profiles and their counts: the regional and profile
# marts; BZRA: three marts, each reading it once): materialise_core(lazy=True) leaves them as
# views over the store-backed core, for a caller that reads a few marts (a report).
LAZY_VIEWS = ("core_programme_profiles", "core_programme_bzra", "core_programme_counts_by_category")


def settings_key(con: duckdb.DuckDBPyConnection) -> str:
    """A hash of the configuration variables set on `con` (see SETTINGS_VARIABLES)."""
    columns = ", ".join(f"getvariable('{name}')" for name in SETTINGS_VARIABLES)
    row = con.execute(f"select {columns}").fetchone()
    return hashlib.sha256(repr(row).encode()).hexdigest()[:16]


def store_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The store tables (STORED_VIEWS, in its order) that the main database of `con` holds."""
    present = {
        name
        for (name,) in con.execute(
            "select table_name from duckdb_tables() "
            "where database_name = current_database() and schema_name = 'main'"
        ).fetchall()
    }
    return [table for table in STORED_VIEWS if table in present]


# The patients a refresh recomputes after new loads (`_recompute_patients`): those with lines
# in them (parameter: the list of their load ids). A snapshot's delta over its store base is
# the same set (etl/base/publish.py copy_store).
PATIENTS_OF_LOADS = (
    "select distinct patient_id from main.billing_lines where list_contains(?, load_id)"
)


# store_meta's key for the last delivery date of the store's lines (max(delivery_date) of
# store_netted_lines, ISO; null when the store has no line), written with the tables in the
# same transaction (_write) so that store_core reads it instead of scanning the table: in a
# snapshot, whose store_meta is the warehouse's copied at publication, the table is a view
# over the base and the delta (an anti join) and its scan costs 60-90 ms at 10x for every
# reader at a new as-of date. A store written before the key existed has none: store_core
# then scans, and the next refresh_store records it.
LAST_DELIVERY = "last_delivery_date"
# store_meta's key for the store's generation: a new random token at each rebuild
# (refresh_store) but one caused by an unload alone, kept by a refresh of some patients. A
# snapshot's store base records the generation it was copied from (etl/base/publish.py
# write_store_base) and is reused only by a store of the same generation (_usable_base): a
# store rebuilt with the same sql/, settings, tables and ledger (a store table dropped by hand,
# store_meta deleted) is otherwise indistinguishable from the base's, and base + delta is the
# store only if no patient outside the delta changed since. Null in a store written before
# the key existed (refreshed since by patients only): as a base of that time, which records
# none.
GENERATION = "generation"


def stored_meta(con: duckdb.DuckDBPyConnection) -> dict[str, str | None] | None:
    """What the store of `con` was computed for (main.store_meta: schema_fingerprint,
    settings_key, load_ids as JSON; and, recorded since, LAST_DELIVERY and GENERATION); None
    when it has no store or an incomplete record."""
    try:
        rows = con.execute("select key, value from main.store_meta").fetchall()
    except duckdb.CatalogException:
        return None
    meta = dict(rows)
    return meta if {"schema_fingerprint", "settings_key", "load_ids"} <= meta.keys() else None


def store_valid(con: duckdb.DuckDBPyConnection) -> bool:
    """Can the core of `con` (its session variables as set) be read from the store?

    Yes when the store was computed with the sql/ of this database, the configuration set on
    `con`, and exactly the loads of its ledger, and `con` sees every load and every line (the
    variables max_load_id and vintage_date are null).
    """
    meta = stored_meta(con)
    if meta is None:
        return False
    max_load_id, vintage = con.execute(
        "select getvariable('max_load_id'), getvariable('vintage_date')"
    ).fetchone()
    return (
        max_load_id is None
        and vintage is None
        and meta["schema_fingerprint"] == stored_schema_fingerprint(con)
        and meta["settings_key"] == settings_key(con)
        and json.loads(meta["load_ids"]) == ledger_ids(con)
    )


def refresh_store(con: duckdb.DuckDBPyConnection, config: Config) -> str:
    """Bring the store of the writable warehouse `con` up to date for `config`.

    Returns what it did: "current" (nothing to do), "patients" (recomputed the patients with
    lines in loads the store had not seen) or "rebuilt" (everything: no store yet, another
    sql/ or configuration, or a load it reflects was unloaded). Call it with no transaction
    open; it works on a cursor of its own (its own session variables and temporary tables)
    and writes the tables and what they reflect in one transaction.
    """
    cursor = con.cursor()
    try:
        cursor.execute(sql_pkg.read_sql("store/tables.sql"))
        apply_settings(cursor, config, STORE_AS_OF)
        meta = stored_meta(cursor)
        ledger = ledger_ids(cursor)
        stamp = {
            "schema_fingerprint": stored_schema_fingerprint(cursor),
            "settings_key": settings_key(cursor),
            "load_ids": json.dumps(ledger),
        }
        seen = set(json.loads(meta["load_ids"])) if meta else set()
        same = (  # the store's tables, sql/ and settings are those in force
            meta is not None
            and len(store_tables(cursor)) == len(STORED_VIEWS)
            and meta["schema_fingerprint"] == stamp["schema_fingerprint"]
            and meta["settings_key"] == stamp["settings_key"]
        )
        # The generation (GENERATION) is kept by a refresh of some patients and by a rebuild
        # whose one cause is an unload (a load it reflects left the ledger: a store base
        # reflecting that load is refused on its ledger, one that does not is the store minus
        # the patients of later loads, as after a refresh); any other rebuild makes a new one.
        stamp[GENERATION] = meta.get(GENERATION) if same else uuid.uuid4().hex
        if same and seen <= set(ledger):
            new = sorted(set(ledger) - seen)
            if not new:
                if LAST_DELIVERY not in meta:  # (a store written before the key existed)
                    _write(cursor, [], meta)
                return "current"
            _recompute_patients(cursor, new, stamp)
            return "patients"
        _rebuild(cursor, stamp)
        return "rebuilt"
    finally:
        cursor.close()


def _compute(cursor: duckdb.DuckDBPyConnection) -> None:
    # Each view once, into a temporary table hiding the view of the same name from the views
    # computed after it on this cursor (as materialise_core does).
    for name in COMPUTED_VIEWS:
        cursor.execute(f"create or replace temp table {name} as select * from main.{name}")


# A store table of at least this many rows (four of DuckDB's row groups of 122,880 rows) is
# refreshed by writing only the rows that changed (_diff_statements); a smaller one by deleting
# and inserting all the rows of the patients recomputed. Deleting all their rows leaves deleted
# rows in every row group of a table (a load touches about one patient in ten), and the next
# checkpoint then rewrites the table's row groups whole (DuckDB's vacuum of deleted rows): at
# 10x national volume (tables of 1.5 M rows) that rewrite cost more than the refresh itself,
# while for tables of a few row groups (1x: 150 k rows) reading the stored rows to compare
# them costs more than it saves (issue 20).
DIFF_MIN_ROWS = 4 * 122_880

# The temporary tables of a refresh, dropped when it ends.
_TEMP_TABLES = (
    *COMPUTED_VIEWS,
    "stg_billing_lines",
    "billing_lines",
    "store_patients",
    "store_rows",
    "store_same",
)


def _write(cursor: duckdb.DuckDBPyConnection, statements: list[str], stamp: dict) -> None:
    # The statements, then store_meta (`stamp` and the store's LAST_DELIVERY, read after the
    # statements in the same transaction: a column's scan of a table, a few ms at 10x).
    drops = [f"drop table if exists temp.{name}" for name in _TEMP_TABLES]
    cursor.execute("begin transaction")
    try:
        for statement in statements:
            cursor.execute(statement)
        (last,) = cursor.execute(
            "select max(delivery_date) from main.store_netted_lines"
        ).fetchone()
        meta = {**stamp, LAST_DELIVERY: None if last is None else last.isoformat()}
        cursor.execute("delete from main.store_meta")
        cursor.executemany("insert into main.store_meta values (?, ?)", list(meta.items()))
        cursor.execute("commit")
    except BaseException:
        # The error to raise is this one. A failed commit may have ended the transaction (the
        # rollback then fails: no transaction) or, when DuckDB checkpointed at the commit (a
        # large one) and the checkpoint failed (a full disk), invalidated the database until
        # it is opened again (every statement then fails); either would hide it.
        for statement in ("rollback", *drops):
            with contextlib.suppress(duckdb.Error):
                cursor.execute(statement)
        raise
    for statement in drops:
        cursor.execute(statement)


def _rebuild(cursor: duckdb.DuckDBPyConnection, stamp: dict) -> None:
    _compute(cursor)
    _write(
        cursor,
        [
            f"create or replace table main.{table} as select * from temp.{view}"
            for table, view in STORED_VIEWS.items()
        ],
        stamp,
    )


def _recompute_patients(
    cursor: duckdb.DuckDBPyConnection, load_ids: list[int], stamp: dict
) -> None:
    # The patients with lines in the new loads.
    cursor.execute(
        f"create or replace temp table store_patients as {PATIENTS_OF_LOADS}", [load_ids]
    )
    # All their lines (of every load): a temporary billing_lines holding only them hides the
    # table from the staging view while it computes a temporary stg_billing_lines, which
    # hides the view from the core views on this cursor. (Filtering the view's output instead
    # would compute its per-line columns for every line of the warehouse first.)
    cursor.execute(
        "create or replace temp table billing_lines as select * from main.billing_lines "
        "where patient_id in (select patient_id from temp.store_patients)"
    )
    try:
        cursor.execute(
            "create or replace temp table stg_billing_lines as select * from main.stg_billing_lines"
        )
    finally:
        cursor.execute("drop table if exists temp.billing_lines")
    _compute(cursor)
    sizes = dict(
        cursor.execute(
            "select table_name, estimated_size from duckdb_tables() "
            "where database_name = current_database() and schema_name = 'main'"
        ).fetchall()
    )
    statements = []
    for table, view in STORED_VIEWS.items():
        if sizes.get(table, 0) >= DIFF_MIN_ROWS:
            statements.extend(_diff_statements(cursor, table, view))
        else:
            statements.append(
                f"delete from main.{table} "
                "where patient_id in (select patient_id from temp.store_patients)"
            )
            statements.append(f"insert into main.{table} select * from temp.{view}")
    _write(cursor, statements, stamp)


def _diff_statements(cursor: duckdb.DuckDBPyConnection, table: str, view: str) -> list[str]:
    """Replace the rows of the patients in temp.store_patients in main.`table` by the rows of
    temp.`view` (their recomputed rows), writing only the difference.

    Most of a patient's rows do not change when a month is loaded (the views never look at a
    later day for an earlier one); deleting and inserting all of them would leave deleted rows
    in every row group of the table, which the next checkpoint rewrites whole (a vacuum of
    the table). Instead each stored row of those patients is paired with an identical
    recomputed row (same patient and row hash, then every column compared, nulls equal), one
    to one (a row that pairs twice, a duplicate, is not paired); the stored rows left unpaired
    are deleted and the recomputed rows left unpaired inserted. With only identical rows
    paired one to one, the patients' rows end up exactly the recomputed ones.
    """
    columns = [
        name
        for (name,) in cursor.execute(
            "select column_name from (describe select * from temp." + view + ")"
        ).fetchall()
    ]
    listed = ", ".join(f'"{name}"' for name in columns)
    # A CASE so that the comparison stays a check of the pairs the hash join finds on
    # (patient, row hash), not one more join key per column to hash and compare.
    same = " and ".join(f'new."{name}" is not distinct from old."{name}"' for name in columns)
    return [
        # The stored rows of those patients: found on patient_id alone, then read whole by row
        # id (the scan then reads the other columns for those rows only: at 10x, 0.15 s of
        # CPU for the events instead of 0.4 s). These statements run in the writing
        # transaction (_write): the row ids are those its delete sees.
        f"""
        create or replace temp table store_rows as
        select rowid as store_row from main.{table}
        where patient_id in (select patient_id from temp.store_patients)
        """,
        f"""
        create or replace temp table store_same as
        with old as (
            select stored.rowid as store_row, hash({listed}) as row_hash, stored.*
            from main.{table} as stored
            semi join temp.store_rows on stored.rowid = store_rows.store_row
        ),
        new as (
            select rowid as new_row, hash({listed}) as row_hash, *
            from temp.{view}
        ),
        pairs as (
            select old.store_row, new.new_row
            from old
            inner join new
                on new.patient_id = old.patient_id and new.row_hash = old.row_hash
            where case when {same} then true else false end
        )
        select * from pairs
        where store_row not in (
                select store_row from pairs group by store_row having count(*) > 1
            )
            and new_row not in (
                select new_row from pairs group by new_row having count(*) > 1
            )
        """,
        f"""
        delete from main.{table}
        where rowid in (
            select store_row from temp.store_rows
            anti join temp.store_same using (store_row)
        )
        """,
        f"""
        insert into main.{table}
        select {listed} from temp.{view}
        where rowid not in (select new_row from temp.store_same)
        """,
    ]


def _drop_temp(con: duckdb.DuckDBPyConnection, name: str) -> None:
    for kind in ("table", "view"):
        try:
            con.execute(f"drop {kind} if exists temp.{name}")
        except duckdb.CatalogException:
            pass  # the other kind


def _last_delivery(con: duckdb.DuckDBPyConnection) -> dt.date | None:
    """The last delivery date of the store of `con` (None: it has no line): its LAST_DELIVERY
    in store_meta, or a scan of store_netted_lines when the key is absent (a store or a
    snapshot written before it existed)."""
    recorded = con.execute(
        "select value from main.store_meta where key = ?", [LAST_DELIVERY]
    ).fetchall()
    if recorded:
        ((value,),) = recorded
        return None if value is None else dt.date.fromisoformat(value)
    (last,) = con.execute("select max(delivery_date) from main.store_netted_lines").fetchone()
    return last


def store_core(con: duckdb.DuckDBPyConnection) -> None:
    """The stored core views of `con` as temporary views over the store, filtered to the
    as-of date set on `con` (see the module's docstring). Call only when `store_valid(con)`."""
    (as_of,) = con.execute("select as_of_date from main.stg_settings").fetchone()
    day = "null::date" if as_of is None else f"date '{as_of.isoformat()}'"
    event_columns = ", ".join(
        name
        for (name,) in con.execute(
            "select column_name from (describe select * from main.core_events)"
        ).fetchall()
    )
    for name in COMPUTED_VIEWS:
        _drop_temp(con, name)
    last = _last_delivery(con)
    if as_of is not None and last is not None and as_of >= last:
        # Every stored date is on or before the as-of date: the filters would keep every row
        # (and would blur the row counts DuckDB plans joins with).
        for view in COMPUTED_VIEWS:
            table = "store_programme_events" if view == "core_events" else _TABLE_OF[view]
            columns = event_columns if view == "core_events" else "*"
            con.execute(f"create temp view {view} as select {columns} from main.{table}")
        return
    con.execute(
        f"create or replace temp view core_netted_lines as "
        f"select * from main.store_netted_lines where delivery_date <= {day}"
    )
    con.execute(
        f"create or replace temp view core_events as "
        f"select {event_columns} from main.store_programme_events where delivery_date <= {day}"
    )
    con.execute(
        f"create or replace temp view core_programme_openings as "
        f"select * replace (case when next_start_date <= {day} then next_start_date end "
        f"as next_start_date) "
        f"from main.store_programme_openings where start_date <= {day}"
    )
    con.execute(
        f"create or replace temp view core_initiation_lines as "
        f"select * from main.store_initiation_lines where delivery_date <= {day}"
    )
    con.execute(
        f"create or replace temp view core_programme_events as "
        f"select * replace (case when programme_first_reduction_date <= {day} "
        f"then programme_first_reduction_date end as programme_first_reduction_date) "
        f"from main.store_programme_events where delivery_date <= {day}"
    )
    con.execute(
        f"create or replace temp view core_compliance_findings_causal as "
        f"select * from main.store_compliance_findings_causal where delivery_date <= {day}"
    )
