"""The cache of first-reported figures read by mart_state_of_play_revisions (issue 20).

The revisions mart recomputes, for each of the 12 months up to the reported month, the figure
the month's first report printed: the programme rule over the lines of the loads up to that
report's cutoff. That figure is a pure function of its key (the month, the cutoff load id,
the last delivery date seen, grace_days, stabilisation_days, the ledger's ids up to the cutoff
and the version of sql/; see the mart's header), so once computed it is stored in the table
`first_reported_cache` of the warehouse and looked up by the mart.

The publisher calls `refresh_first_reported` once per publication, on the warehouse, before
the snapshot is copied: it deletes the rows no mart can match any more (an unloaded load
changed the ledger's ids up to their cutoff, or sql/ changed) and computes the keys the mart
needs for the default as-of date and the configuration in force that the cache lacks — after
a monthly load, one new month. Any other reading (another as-of date, report month or
configuration, a max_load_id or vintage view) recomputes the keys it does not find, as before.
"""

from __future__ import annotations

import duckdb

from etl.base.config import Config
from etl.base.warehouse import apply_settings

CACHE_TABLE = "first_reported_cache"

_KEY = (
    "month_start_date, load_id, last_date, grace_days, stabilisation_days, ledger_load_ids, "
    "schema_fingerprint"
)


def refresh_first_reported(con: duckdb.DuckDBPyConnection, config: Config) -> int:
    """Bring `first_reported_cache` up to date on the writable warehouse connection `con`.

    In one transaction of its own (on a cursor: `con`'s session variables are left alone):
    delete the stale rows, then insert the first reports the revisions mart needs at the
    default settings of `config` and does not find. Call it with no transaction open on
    `con`. Returns the number of first reports (months) computed.
    """
    cur = con.cursor()
    try:
        apply_settings(cur, config)
        cur.execute("begin transaction")
        try:
            cur.execute(
                f"""
                delete from {CACHE_TABLE} as cache
                where cache.schema_fingerprint is distinct from (
                        select value from warehouse_meta where key = 'schema_fingerprint'
                    )
                    or cache.ledger_load_ids is distinct from (
                        select list(ledger.load_id order by ledger.load_id)
                        from loads as ledger
                        where ledger.load_id <= cache.load_id
                    )
                """
            )
            cur.execute(
                f"""
                create temp table first_reported_new as
                select {_KEY}, scheme, n_patients
                from revisions_first_reported_computed
                where is_cacheable
                """
            )
            (computed,) = cur.execute(
                f"select count(distinct ({_KEY})) from first_reported_new"
            ).fetchone()
            cur.execute(
                f"""
                insert into {CACHE_TABLE}
                select {_KEY}, scheme, n_patients, current_timestamp::timestamp
                from first_reported_new
                """
            )
            cur.execute("drop table first_reported_new")
            cur.execute("commit")
        except BaseException:
            try:
                cur.execute("rollback")
            except duckdb.Error:
                pass  # a commit that failed has ended the transaction itself
            raise
    finally:
        cur.close()
    return computed


def clear_first_reported(con: duckdb.DuckDBPyConnection) -> None:
    """Empty the cache (the mart then recomputes every first report): for tests and benches."""
    con.execute(f"delete from {CACHE_TABLE}")
