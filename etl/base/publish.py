"""Published snapshots: what readers (the dashboard) see while loads write the warehouse.

DuckDB lets one process write a database file, and no other process may open it while it does.
So readers never open the warehouse itself. After each load, the writer publishes a snapshot:

1. `CHECKPOINT`, so the warehouse file alone holds every committed row (no WAL);
2. the big append-only raw tables (`PARTITIONED`: billing_lines, bzra_lines, rejects) written
   once per load as immutable Parquet files, `<warehouse>.snapshots/lines/<load_id>-<table>-
   <hash>.parquet` (the hash: the load, the table's columns and the load's row count, so a
   changed table or load gets a new file), and once every 4 and 16 loads (`CHUNKS`) into one
   file for the range of load ids it closes (`<first>_<last>-<table>-<hash>.parquet`: fewer files to read). A load only inserts its own rows (and an unload
   removes one load's rows), so the files of earlier loads are reused as they are: a
   publication writes the files of the loads it is the first to see, and its cost grows with
   the load, not with the history;
3. a copy of every other table, the views, macros and sequences to
   `<warehouse>.snapshots/<name>.duckdb.<pid>.tmp`, made by DuckDB itself (`ATTACH` the new
   file, `COPY FROM DATABASE ... (SCHEMA)`, then the rows) while the writer holds the lock, so
   nobody can change it halfway; in it, each partitioned table is a view over `read_parquet`
   of exactly the files of the loads in the snapshot's ledger (listed in
   `published.snapshot_files`), with the table's column types restored exactly. Not a byte
   copy, and the warehouse is never opened a second time: on Linux DuckDB's lock is a POSIX
   record lock (`fcntl`), and closing ANY descriptor a process has on a file drops every such
   lock the process holds on it. `shutil.copyfile` opened and closed the warehouse, after which
   a second `load` could open it for writing while this one was still publishing (issue 19:
   data loss). Through DuckDB the warehouse is read on the descriptor DuckDB keeps open;
   tests/test_publish_race.py starts real second writers during publication. The core store
   (etl/base/store.py: millions of rows at national volume, of which a month's load changes
   about a tenth) is not copied whole either (`copy_store`): a base file
   `<warehouse>.snapshots/store/base-<ns>-<load>.duckdb` holds the store tables as they were
   at some publication, written once and shared by the snapshots after it; each snapshot holds
   the store rows of the patients changed since (its delta, schema `store_delta`) and views
   `main.store_*` reading the base's other patients and the delta. A reader attaches the base
   (`open_snapshot`, the one way to open a snapshot). A new base is written when the store was
   rebuilt (other sql/, settings or tables; or the same, rebuilt for any cause but an unload:
   its generation, store.GENERATION), a load it reflects was unloaded, or the delta grew past
   COMPACT_AT of its rows;
4. in the copy, the marts computed for the default as-of date and the configuration in force
   (on the warehouse's own tables, `publish_marts`), stored as tables in the schema `published`
   (pages read them in milliseconds; the views stay in the copy for any other as-of date);
5. an atomic rename to `<name>.duckdb`, then an atomic rewrite of the pointer file `CURRENT`.

A reader reads `CURRENT` and opens that file read-only. Snapshot files and Parquet files are
never changed after their rename, so a reader sees one complete load or the next one, never half
of one, and never meets a lock. Older snapshots are deleted after a while (open readers keep
theirs: deleting a file on POSIX systems does not take it from a process that has it open). A
Parquet file is deleted once no kept snapshot lists it: `read_parquet` opens the files again at
each query, so a reader of a snapshot still kept (the `KEEP` newest) keeps reading its lines.
(A reader of a snapshot older than that still reads its published marts, but no longer its
lines.) A base file is deleted once no kept snapshot reads it; a reader keeps the base it
attached (an open file). Publications in one process take turns (`_PUBLISHING`); across processes, the
warehouse's write lock makes them take turns. A snapshot of the earlier layout (a full copy, no
`published.snapshot_files`) is read as it is, and is not fresh: the next `ensure_published`
publishes one of this layout.

`publish` computes the core and the marts of step 4 (`compute_marts`) on a cursor of their own
in a thread (`MartsInBackground`) while steps 1 to 3 run, then writes them into the copy
(`write_marts`); `publish_marts` does both in the calling thread.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from etl.base import store
from etl.base.config import Config
from etl.base.revisions_cache import refresh_first_reported
from etl.base.warehouse import (
    apply_settings,
    connect,
    ledger_identity,
    ledger_ids,
    open_duckdb,
    schema_fingerprint,
    stored_schema_fingerprint,
)
from sql import SQL_DIR

POINTER = "CURRENT"
KEEP = 4  # snapshots kept on disk (the newest); older ones are deleted at the next publication
PUBLISHED_SCHEMA = "published"
# The big append-only raw tables, stored once per load as Parquet files (see step 2). Every
# other table of the warehouse (whatever its name) is copied into each snapshot.
PARTITIONED = ("billing_lines", "bzra_lines", "rejects")
# Load ids per shared Parquet file, once their range is closed, largest first (write_load_files)
CHUNKS = (16, 4)
LINES = "lines"  # the folder of the Parquet files, inside the snapshot folder
FILES_TABLE = "snapshot_files"  # published.snapshot_files: the Parquet files a snapshot reads
STORE_DIR = "store"  # the folder of the core store's base files, inside the snapshot folder
BASE_TABLE = "snapshot_store"  # published.snapshot_store: the base file a snapshot reads
BASE_ALIAS = "store_base"  # the name a reader attaches a snapshot's base under (open_snapshot)
DELTA_SCHEMA = "store_delta"  # in a snapshot: the store rows of the patients changed since its base
# A new base once the changed patients' store rows exceed this fraction of the base's rows
# (copy_store; docs/performance.md: measured at 10x, 0.3 amortises best)
COMPACT_AT = 0.30
_PUBLISHING = threading.Lock()  # one publication at a time in this process (see _prune)


@dataclass(frozen=True)
class Snapshot:
    """One published snapshot: its file and what it was computed for."""

    path: Path
    as_of_date: dt.date | None
    config_fingerprint: str
    max_load_id: int | None
    published_at: dt.datetime


def snapshot_dir(db_path: str | os.PathLike) -> Path:
    """Where the snapshots of the warehouse at `db_path` live: `<db>.snapshots/` beside it."""
    path = Path(db_path)
    return path.with_name(path.name.removesuffix(".duckdb") + ".snapshots")


def config_fingerprint(config: Config) -> str:
    """A short hash of the configuration values the marts depend on."""
    return hashlib.sha256(repr(config.as_rows()).encode()).hexdigest()[:16]


def database_path(con: duckdb.DuckDBPyConnection) -> Path:
    """The file of the connection's main database."""
    (path,) = con.execute(
        "select path from duckdb_databases() where database_name = current_database()"
    ).fetchone()
    return Path(path)


def mart_names(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The marts (views named mart_*) of the connection's main database, each after the marts
    it reads (mart_state_of_play reads mart_compliance_findings...), else by name."""
    views = dict(
        con.execute(
            "select view_name, sql from duckdb_views() "
            "where database_name = current_database() and view_name like 'mart\\_%' escape '\\' "
            "order by view_name"
        ).fetchall()
    )
    reads = {
        name: {m for m in re.findall(r"\bmart_\w+", sql) if m in views and m != name}
        for name, sql in views.items()
    }
    ordered: list[str] = []
    while len(ordered) < len(views):
        ready = [n for n in views if n not in ordered and reads[n] <= set(ordered)]
        if not ready:  # a cycle cannot be created by views; keep the rest by name
            ready = [n for n in views if n not in ordered]
        ordered.append(ready[0])
    return ordered


def core_view_names() -> list[str]:
    """The core views, in the order they build on each other (sql/core/NN_<name>.sql)."""
    return [path.stem.split("_", 1)[1] for path in sorted((SQL_DIR / "core").glob("*.sql"))]


def materialise_core(con: duckdb.DuckDBPyConnection, *, lazy: bool = False) -> None:
    """Compute each core view once, into a temporary table of the same name.

    Every mart reads the core views (programmes, events...); left as views, each mart would
    compute them again. A temporary table hides the view of the same name from later queries
    on this connection only, so the marts then read the tables. Call it after the settings
    (as-of date, configuration) are in place; the tables go with the connection.

    When the core store is valid for the connection (etl/base/store.py: same configuration,
    same loads, no max_load_id or vintage), the core views up to core_programme_events are
    temporary views filtering the store to the as-of date instead: nothing recomputed. With
    `lazy` (a caller that reads a few marts), the core views that only some marts read
    (store.LAZY_VIEWS) are then left as views, computed if and when a mart reads them.
    """
    stored = store.store_valid(con)
    if stored:  # the as-of-independent core from the store, filtered (etl/base/store.py)
        store.store_core(con)
    skip = set(store.COMPUTED_VIEWS if stored else ()) | set(
        store.LAZY_VIEWS if stored and lazy else ()
    )
    for name in core_view_names():
        if name not in skip:
            con.execute(f"create or replace temp table {name} as select * from main.{name}")


def publish(con: duckdb.DuckDBPyConnection, config: Config) -> Path:
    """Publish a snapshot of the warehouse behind the writable connection `con`.

    Call it after a load has committed, with no transaction open. Returns the snapshot's path.

    The core and the marts (step 4) are computed on a cursor of their own in a thread
    (`MartsInBackground`) while this thread refreshes the revisions mart's cache, checkpoints,
    writes the Parquet files and copies the warehouse (steps 1 to 3): the two write no table
    the other reads (the core does not read the cache; the marts wait for it), and each alone
    leaves a core idle (many small queries). Then the marts are written into the copy. An
    error in either ends the publication: the copy is deleted and the previous snapshot stays
    current.
    """
    store.refresh_store(con, config)  # no-op when current (etl/base/store.py)
    source = database_path(con)
    folder = snapshot_dir(source).absolute()  # (the views name their Parquet files in full)
    folder.mkdir(parents=True, exist_ok=True)
    with _PUBLISHING:
        (max_load_id,) = con.execute("select max(load_id) from loads").fetchone()
        name = f"{time.time_ns()}-{max_load_id or 0}.duckdb"
        tmp = folder / f"{name}.{os.getpid()}.tmp"  # the pid: see _prune
        try:
            with MartsInBackground(con, config) as marts:
                refresh_first_reported(con, config)  # the revisions mart's cache, copied too
                marts.cache_refreshed()  # the marts may read it now
                con.execute("checkpoint")
                files = write_load_files(con, folder / LINES)
                copy_database(con, tmp, files)
                write_marts(marts.cursor, tmp, config, max_load_id, files, marts.result())
            os.replace(tmp, folder / name)
        except BaseException:
            tmp.unlink(missing_ok=True)
            Path(f"{tmp}.wal").unlink(missing_ok=True)
            raise
        _write_pointer(folder, name)
        _prune(folder, keep={name})
    return folder / name


def compute_marts(
    cur: duckdb.DuckDBPyConnection,
    config: Config,
    stop: threading.Event | None = None,
    cache: threading.Event | None = None,
) -> list[str]:
    """Compute the core and every mart for the default as-of date and `config` into temporary
    tables of the cursor `cur` (each named as its view, which it hides on `cur`: a mart
    read by a later mart, as mart_compliance_findings by mart_state_of_play, is read from its
    table, not computed again); return the marts in the order computed. With `cache`, the
    marts wait for it to be set (the revisions mart's cache refreshed: `publish`). Stops
    between two marts once `stop` is set (what it computed is then of no use)."""
    apply_settings(cur, config)
    materialise_core(cur)
    if cache is not None:
        cache.wait()
    marts = mart_names(cur)
    for mart in marts:
        if stop is not None and stop.is_set():
            break
        cur.execute(f"create temp table {mart} as select * from main.{mart}")
    return marts


def write_marts(
    cur: duckdb.DuckDBPyConnection,
    target: Path,
    config: Config,
    max_load_id: int | None,
    files: dict[str, list[Path]],
    marts: list[str],
) -> None:
    """Write the marts `compute_marts` computed on the cursor `cur` into the schema `published`
    of the snapshot file `target` (step 4), with the snapshot's metadata (for the settings of
    `cur`) and its list of Parquet files `files`."""
    alias = "publish_marts"
    cur.execute(f"attach {sql_string(str(target))} as {alias}")
    try:
        published = f"{alias}.{PUBLISHED_SCHEMA}"
        cur.execute(f"create schema if not exists {published}")  # (copy_database)
        for mart in marts:
            cur.execute(f"create table {published}.{mart} as select * from temp.main.{mart}")
        cur.execute(
            f"""
            create table {published}.snapshot_meta as
            select (select as_of_date from main.stg_settings) as as_of_date,
                   ?::varchar as config_fingerprint,
                   ?::integer as max_load_id,
                   current_timestamp::timestamp as published_at
            """,
            [config_fingerprint(config), max_load_id],
        )
        cur.execute(f"create table {published}.{FILES_TABLE} (table_name varchar, file varchar)")
        cur.executemany(
            f"insert into {published}.{FILES_TABLE} values (?, ?)",
            [(table, str(path)) for table, paths in files.items() for path in paths],
        )
        cur.execute(f"checkpoint {alias}")
    finally:
        cur.execute(f"detach {alias}")


class MartsInBackground:
    """`compute_marts` on a new cursor of `con`, in a thread started at once; a context
    manager (`with MartsInBackground(con, config) as marts:`).

    DuckDB runs queries of two cursors of one database at the same time; a cursor is used by
    one thread at a time (this thread's only once the computation is over: `result`). The
    cursor sees the warehouse as committed, and its settings and temporary tables are its own.
    The one global setting this process changes meanwhile, `preserve_insertion_order`
    (`write_store_base`), is pinned on the cursor to its value now, so the marts' rows come
    in the order a publication without the thread gives. The core is computed at once, the
    marts once `cache_refreshed` is called. Leaving the `with` block waits for the thread
    (after an error in the block, the computation is first interrupted) and closes the
    cursor."""

    def __init__(self, con: duckdb.DuckDBPyConnection, config: Config) -> None:
        self.cursor = con.cursor()
        (ordered,) = self.cursor.execute(
            "select current_setting('preserve_insertion_order')"
        ).fetchone()
        self.cursor.execute(f"set session preserve_insertion_order = {str(ordered).lower()}")
        self._config = config
        self._stop = threading.Event()
        self._cache = threading.Event()
        self._marts: list[str] = []
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="publish-marts", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._marts = compute_marts(self.cursor, self._config, self._stop, self._cache)
        except BaseException as error:  # raised in the publishing thread (result)
            self._error = error

    def cache_refreshed(self) -> None:
        """Let the marts be computed: the revisions mart's cache is up to date."""
        self._cache.set()

    def result(self) -> list[str]:
        """Wait for the computation; return its marts, or raise its error."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._marts

    def __enter__(self) -> MartsInBackground:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        try:
            if error is not None and self._thread.is_alive():
                self._stop.set()
                self._cache.set()  # (a thread waiting for it goes on to `stop`)
                self.cursor.interrupt()
            self._thread.join()
        finally:
            self.cursor.close()


def publish_marts(
    con: duckdb.DuckDBPyConnection,
    target: Path,
    config: Config,
    max_load_id: int | None,
    files: dict[str, list[Path]],
) -> None:
    """Compute every mart for the default as-of date and `config` into the schema `published`
    of the snapshot file `target` (step 4), with the snapshot's metadata and its list of
    Parquet files, in this thread (`publish` computes them in a thread of their own meanwhile
    copying the warehouse: `MartsInBackground`). The marts are computed on a cursor of the
    warehouse `con` (its settings and temporary core tables go with the cursor): the
    warehouse's own tables are read faster than the snapshot's Parquet files, and the rows are
    the same (the snapshot is a copy of them)."""
    cur = con.cursor()
    try:
        write_marts(cur, target, config, max_load_id, files, compute_marts(cur, config))
    finally:
        cur.close()


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    """(name, type) of each column of the table `table` of the connection's main database."""
    return con.execute(
        "select column_name, data_type from duckdb_columns() "
        "where database_name = current_database() and schema_name = 'main' and table_name = ? "
        "order by column_index",
        [table],
    ).fetchall()


# Parquet has no 128-bit integer (DuckDB writes one as a DOUBLE, losing digits): such a column
# is stored as two 64-bit halves, `<name>__hi` and `<name>__lo`, and put together again on read.
_WIDE = {"UHUGEINT": "ubigint", "HUGEINT": "bigint"}


def _parquet_columns(columns: list[tuple[str, str]]) -> str:
    """The select list that writes `columns` to Parquet without loss."""
    out = []
    for name, kind in columns:
        col = sql_identifier(name)
        if kind in _WIDE:
            out.append(f"({col} >> 64)::{_WIDE[kind]} as {sql_identifier(name + '__hi')}")
            out.append(
                f"({col} & 18446744073709551615::{kind})::ubigint as {sql_identifier(name + '__lo')}"
            )
        else:
            out.append(col)
    return ", ".join(out)


def _table_columns_from_parquet(columns: list[tuple[str, str]]) -> str:
    """The select list that reads back what `_parquet_columns` wrote, with the exact types."""
    out = []
    for name, kind in columns:
        col = sql_identifier(name)
        if kind in _WIDE:
            hi, lo = sql_identifier(name + "__hi"), sql_identifier(name + "__lo")
            out.append(f"(({hi}::{kind} << 64) | {lo}::{kind}) as {col}")
        else:
            out.append(f"cast({col} as {kind}) as {col}")
    return ", ".join(out)


def write_load_files(con: duckdb.DuckDBPyConnection, lines: Path) -> dict[str, list[Path]]:
    """Write, into the folder `lines`, the Parquet files of the partitioned tables that are not
    there yet; return the files of each partitioned table with rows, in load order.

    One file per load with rows, except in a closed range of load ids (of a size in `CHUNKS`:
    every id of it at most the ledger's latest, so no later load can fall in it), whose loads
    share one file: the largest such range. Each file costs every query that scans the table
    about half a millisecond, so a history of loads is read from a few files (one per 16
    loads, at most 3 of 4 loads and 3 single loads), while a publication writes its new load's
    rows, and once every 4 (16) loads the rows of the range it closes. A
    file's name says which loads and table it holds, and hashes what makes its content: each
    load's ledger identity (id, file hash, start) and row count, and the table's columns; an
    unloaded load changes the hash of its range, which is written again without it."""
    lines.mkdir(parents=True, exist_ok=True)
    ledger = {load_id: (sha, started) for load_id, sha, started in ledger_identity(con)}
    latest = max(ledger, default=0)
    files: dict[str, list[Path]] = {}
    for table in PARTITIONED:
        columns = table_columns(con, table)
        if not columns:
            continue
        groups: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for load_id, rows in con.execute(
            f"select load_id, count(*) from main.{table} group by load_id order by load_id"
        ).fetchall():
            first = last = load_id
            for size in CHUNKS:  # the largest closed range the load is in
                if load_id < (latest + 1) // size * size:
                    first = load_id // size * size
                    last = first + size - 1
                    break
            groups.setdefault((first, last), []).append((load_id, rows))
        for (first, last), loads in groups.items():
            identity = repr((table, columns, [(i, ledger.get(i), n) for i, n in loads]))
            digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
            ids = str(first) if first == last else f"{first}_{last}"
            path = lines / f"{ids}-{table}-{digest}.parquet"
            if not path.exists():
                tmp = lines / f"{path.name}.{os.getpid()}.tmp"
                try:
                    con.execute(
                        f"copy (select {_parquet_columns(columns)} from main.{table} "
                        f"where load_id between {int(first)} and {int(last)}) "
                        f"to {sql_string(str(tmp))} (format parquet)"
                    )
                    os.replace(tmp, path)
                except BaseException:
                    tmp.unlink(missing_ok=True)
                    raise
            files.setdefault(table, []).append(path)
    return files


def copy_database(
    con: duckdb.DuckDBPyConnection, target: Path, files: dict[str, list[Path]] | None = None
) -> None:
    """Copy the main database of `con` (tables, views, macros, sequences) to the new file
    `target`, through DuckDB: the warehouse file is never opened a second time (see step 3).

    Each table named in `files` becomes, in the copy, a view over `read_parquet` of its files
    (written by `write_load_files`), with the table's column names and types; the rows of
    every other table are copied. Without `files`, a full copy."""
    (source,) = con.execute("select current_database()").fetchone()
    alias = "publish_copy"
    con.execute(f"attach {sql_string(str(target))} as {alias}")
    try:
        if not files:
            con.execute(f"copy from database {sql_identifier(source)} to {alias}")
            return
        con.execute(f"copy from database {sql_identifier(source)} to {alias} (schema)")
        tables = con.execute(
            "select schema_name, table_name from duckdb_tables() where database_name = ?",
            [source],
        ).fetchall()
        stored = copy_store(con, alias, target.parent)
        for schema, table in tables:
            target_table = f"{alias}.{sql_identifier(schema)}.{sql_identifier(table)}"
            if schema == "main" and table in stored:
                continue  # a view over the store's base and delta (copy_store)
            if schema == "main" and files.get(table):
                listed = ", ".join(sql_string(str(path)) for path in files[table])
                con.execute(f"drop table {target_table}")
                con.execute(
                    f"create view {target_table} as select "
                    f"{_table_columns_from_parquet(table_columns(con, table))} "
                    f"from read_parquet([{listed}])"
                )
            else:
                con.execute(
                    f"insert into {target_table} select * from "
                    f"{sql_identifier(source)}.{sql_identifier(schema)}.{sql_identifier(table)}"
                )
    finally:
        con.execute(f"detach {alias}")


def _store_stamp(con: duckdb.DuckDBPyConnection, tables: list[str]) -> dict | None:
    """What the warehouse's store reflects (its sql/ and settings, its tables, the ledger's
    identity: id, file hash and start of each load) and its generation (store.GENERATION:
    changed by each rebuild; None for a store of before the key); None when the store does not
    reflect the ledger (then the snapshot copies it in full)."""
    meta = store.stored_meta(con)
    ledger = [list(row) for row in ledger_identity(con)]
    if meta is None or not tables or json.loads(meta["load_ids"]) != [row[0] for row in ledger]:
        return None
    return {
        "schema_fingerprint": meta["schema_fingerprint"],
        "settings_key": meta["settings_key"],
        "tables": tables,
        "ledger": ledger,
        "generation": meta.get(store.GENERATION),
    }


def _usable_base(con: duckdb.DuckDBPyConnection, folder: Path, stamp: dict) -> dict | None:
    """The base of the current snapshot of `folder`, attached to `con` read-only as
    BASE_ALIAS, with what it reflects, when the warehouse's store is that base plus the
    patients of later loads: the same sql/, settings and tables, the same generation (not
    rebuilt since: store.GENERATION; a base and a store of before the key both have none), and
    every load it reflects still in the ledger as it was. None (nothing attached) otherwise."""
    current = _pointed(folder)
    name = snapshot_base(current) if current is not None else None
    if not name or not (folder / name).exists():
        return None
    con.execute(f"attach {sql_string(str(folder / name))} as {BASE_ALIAS} (read_only)")
    try:
        meta = dict(con.execute(f"select key, value from {BASE_ALIAS}.main.base_meta").fetchall())
        ledger = [tuple(row) for row in stamp["ledger"]]
        usable = (
            meta["schema_fingerprint"] == stamp["schema_fingerprint"]
            and meta["settings_key"] == stamp["settings_key"]
            and json.loads(meta["tables"]) == stamp["tables"]
            and meta.get(store.GENERATION) == stamp["generation"]
            and set(map(tuple, json.loads(meta["ledger"]))) <= set(ledger)
        )
    except (duckdb.Error, KeyError):
        usable = False
    if not usable:
        con.execute(f"detach {BASE_ALIAS}")
        return None
    return {"name": name, "ledger": json.loads(meta["ledger"]), "rows": int(meta["rows"])}


def write_store_base(con: duckdb.DuckDBPyConnection, folder: Path, stamp: dict) -> str:
    """Write the store tables of the warehouse `con` and what they reflect (`stamp`) to a new
    base file in `folder`/store/ (to a temporary name, then renamed: never changed after);
    return its name relative to `folder`."""
    store_dir = folder / STORE_DIR
    store_dir.mkdir(parents=True, exist_ok=True)
    latest = stamp["ledger"][-1][0] if stamp["ledger"] else 0
    name = f"base-{time.time_ns()}-{latest}.duckdb"
    tmp = store_dir / f"{name}.{os.getpid()}.tmp"
    alias = "store_base_new"
    (ordered,) = con.execute("select current_setting('preserve_insertion_order')").fetchone()
    try:
        con.execute(f"attach {sql_string(str(tmp))} as {alias}")
        try:
            total = 0
            # The store's row order means nothing (its readers filter and join): written
            # unordered, DuckDB writes the row groups as they come, and the base costs about a
            # quarter less (2.4 -> 1.8 s at 10x, its checkpoint 0.45 -> 0.01 s).
            con.execute("set preserve_insertion_order = false")
            for table in stamp["tables"]:
                con.execute(f"create table {alias}.main.{table} as select * from main.{table}")
                (n,) = con.execute(f"select count(*) from {alias}.main.{table}").fetchone()
                total += n
            con.execute(f"create table {alias}.main.base_meta (key varchar, value varchar)")
            con.executemany(
                f"insert into {alias}.main.base_meta values (?, ?)",
                [
                    ("schema_fingerprint", stamp["schema_fingerprint"]),
                    ("settings_key", stamp["settings_key"]),
                    ("tables", json.dumps(stamp["tables"])),
                    ("ledger", json.dumps(stamp["ledger"])),
                    ("rows", str(total)),
                    (store.GENERATION, stamp["generation"]),
                ],
            )
            con.execute(f"checkpoint {alias}")
        finally:
            con.execute(f"detach {alias}")
        os.replace(tmp, store_dir / name)
    except BaseException:
        tmp.unlink(missing_ok=True)
        Path(f"{tmp}.wal").unlink(missing_ok=True)
        raise
    finally:
        con.execute(f"set preserve_insertion_order = {str(ordered).lower()}")
    return f"{STORE_DIR}/{name}"


def copy_store(con: duckdb.DuckDBPyConnection, alias: str, folder: Path) -> list[str]:
    """Put the warehouse's core store into the snapshot attached to `con` as `alias` (being
    written in `folder`), as a shared base and a delta; return the store tables so made (each
    a view in the snapshot), [] when the store is copied in full with the other tables (no
    store, or one that does not reflect the ledger).

    The base (`write_store_base`) is the current snapshot's when usable (`_usable_base`) and
    when the store rows of the patients changed since (every patient with lines in a load the
    base does not reflect: the patients refresh_store recomputed since) are at most
    COMPACT_AT of its rows; else a new one, with no delta. The snapshot holds the changed
    patients (`store_delta.patients`), their rows of each store table (`store_delta.<table>`),
    and `main.<table>` = the base's rows of the other patients, then the delta's rows: the
    warehouse's store, row for row. Its base's name: `published.snapshot_store`."""
    tables = store.store_tables(con)
    stamp = _store_stamp(con, tables)
    if stamp is None:
        return []
    delta = f"{alias}.{DELTA_SCHEMA}"
    try:
        base = _usable_base(con, folder, stamp)
        con.execute(f"create schema {delta}")
        con.execute(f"create table {delta}.patients (patient_id varchar)")
        if base is not None:
            seen = {row[0] for row in base["ledger"]}
            new = [row[0] for row in stamp["ledger"] if row[0] not in seen]
            con.execute(f"insert into {delta}.patients {store.PATIENTS_OF_LOADS}", [new])
        changed = 0  # the store rows of those patients
        for table in tables:
            con.execute(f"drop table {alias}.main.{table}")  # (made by the schema copy)
            select = (
                f"select * from main.{table} "
                f"where patient_id in (select patient_id from {delta}.patients)"
            )
            con.execute(f"create table {delta}.{table} as {select}")
            changed += con.execute(f"select count(*) from {delta}.{table}").fetchone()[0]
        if base is not None and changed > COMPACT_AT * base["rows"]:  # compaction: a new base
            con.execute(f"detach {BASE_ALIAS}")
            con.execute(f"delete from {delta}.patients")
            for table in tables:  # (emptied: the new base holds every patient's rows)
                con.execute(
                    f"create or replace table {delta}.{table} as "
                    f"select * from main.{table} where false"
                )
            base = None
        if base is None:
            name = write_store_base(con, folder, stamp)
            con.execute(f"attach {sql_string(str(folder / name))} as {BASE_ALIAS} (read_only)")
        else:
            name = base["name"]
        for table in tables:
            # Unqualified, `store_delta` is the snapshot's own schema when a reader reads it;
            # BASE_ALIAS is the base a reader attaches (open_snapshot).
            con.execute(
                f"create view {alias}.main.{table} as "
                f"select b.* from {BASE_ALIAS}.main.{table} as b "
                f"anti join {DELTA_SCHEMA}.patients as p on b.patient_id = p.patient_id "
                f"union all select * from {DELTA_SCHEMA}.{table}"
            )
        con.execute(f"create schema if not exists {alias}.{PUBLISHED_SCHEMA}")
        con.execute(
            f"create table {alias}.{PUBLISHED_SCHEMA}.{BASE_TABLE} as select ?::varchar as base",
            [name],
        )
    finally:
        attached = con.execute(
            "select count(*) from duckdb_databases() where database_name = ?", [BASE_ALIAS]
        ).fetchone()[0]
        if attached:
            con.execute(f"detach {BASE_ALIAS}")
    return tables


def open_snapshot(path: str | os.PathLike, *, base: bool = True) -> duckdb.DuckDBPyConnection:
    """A read-only connection on the snapshot file at `path`, its store's base attached (as
    BASE_ALIAS, read-only: its store tables are views reading it). Every reader opens a
    snapshot here. `base=False`: not attached, for a reader of the snapshot's metadata only.
    Raises duckdb.Error when the snapshot or its base cannot be opened (pruned, moved)."""
    path = Path(path)
    con = open_duckdb(path, read_only=True)
    if not base:
        return con
    name = _base_name(con)
    if name is None:
        return con  # a snapshot with its store copied (or none): nothing to attach
    try:  # (`if not exists`: DuckDB shares one instance between the connections a process
        # opens on one file, so a second reader of this snapshot finds its base attached)
        con.execute(
            f"attach if not exists {sql_string(str(path.parent / name))} as {BASE_ALIAS} "
            "(read_only)"
        )
    except BaseException:
        con.close()
        raise
    return con


def _base_name(con: duckdb.DuckDBPyConnection) -> str | None:
    """The store base file the snapshot open on `con` reads, relative to its folder (None when
    its store is copied in full, or it has none)."""
    try:
        (name,) = con.execute(f"select base from {PUBLISHED_SCHEMA}.{BASE_TABLE}").fetchone()
    except duckdb.CatalogException:
        return None
    return name


def snapshot_base(path: Path) -> str | None:
    """The store base file the snapshot at `path` reads, relative to its folder (None when it
    reads none, or cannot be read)."""
    try:
        con = open_snapshot(path, base=False)
    except duckdb.Error:
        return None
    try:
        return _base_name(con)
    except duckdb.Error:
        return None
    finally:
        con.close()


def _pointed(folder: Path) -> Path | None:
    """The snapshot file CURRENT names in the snapshot folder `folder`, if it exists."""
    try:
        name = (folder / POINTER).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    path = folder / name
    return path if name and path.exists() else None


def sql_string(text: str) -> str:
    """`text` as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def sql_identifier(name: str) -> str:
    """`name` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _write_pointer(folder: Path, name: str) -> None:
    tmp = folder / f"{POINTER}.{os.getpid()}.tmp"
    tmp.write_text(name + "\n", encoding="utf-8")
    os.replace(tmp, folder / POINTER)


def _prune(folder: Path, keep: set[str]) -> None:
    snapshots = sorted(folder.glob("*.duckdb"), key=lambda p: p.name)
    for old in snapshots[:-KEEP]:
        if old.name not in keep:
            old.unlink(missing_ok=True)
            Path(str(old) + ".wal").unlink(missing_ok=True)
    # A .tmp (and the .tmp.wal of a copy being written) is a publication in progress or one
    # that died (a killed process). Publishing needs the warehouse's write lock, which one
    # process holds at a time, so another process's .tmp is dead: deleted now. This process's
    # own may be another thread's publication in progress: deleted after an hour.
    own = f".{os.getpid()}.tmp"
    lines, bases = folder / LINES, folder / STORE_DIR
    for stale in [
        *folder.glob("*.tmp"),
        *folder.glob("*.tmp.wal"),
        *lines.glob("*.tmp"),
        *bases.glob("*.tmp"),
        *bases.glob("*.tmp.wal"),
    ]:
        try:
            if own not in stale.name or time.time() - stale.stat().st_mtime > 3600:
                stale.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
    # The Parquet files no kept snapshot reads (an unloaded load's, once the snapshots that
    # had it are gone; a failed publication's). Publications take turns (the warehouse's lock,
    # _PUBLISHING), so none is being written now. When a kept snapshot cannot be read, none
    # is deleted this time.
    # The same for the store's base files (copy_store): one no kept snapshot reads is deleted.
    needed: set[str] = set()
    needed_bases: set[str] = set()
    for kept in sorted(folder.glob("*.duckdb")):
        try:
            con = open_snapshot(kept, base=False)
        except duckdb.Error:
            return
        try:
            needed.update(_listed_files(con))
            base = _base_name(con)
        except duckdb.Error:
            return
        finally:
            con.close()
        if base is not None:
            needed_bases.add((folder / base).name)
    for path in lines.glob("*.parquet"):
        if str(path) not in needed:
            path.unlink(missing_ok=True)
    for path in bases.glob("base-*.duckdb"):
        if path.name not in needed_bases:
            path.unlink(missing_ok=True)
            Path(f"{path}.wal").unlink(missing_ok=True)


def _listed_files(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The Parquet files the snapshot open on `con` reads ([] for a snapshot of the earlier
    layout, a full copy)."""
    try:
        return [
            f
            for (f,) in con.execute(f"select file from {PUBLISHED_SCHEMA}.{FILES_TABLE}").fetchall()
        ]
    except duckdb.CatalogException:
        return []


def current_snapshot_path(db_path: str | os.PathLike) -> Path | None:
    """The file of the latest published snapshot of the warehouse at `db_path`, if any."""
    return _pointed(snapshot_dir(db_path))


def read_snapshot(con: duckdb.DuckDBPyConnection, path: Path) -> Snapshot:
    """What the snapshot open on `con` was computed for."""
    as_of, fingerprint, max_load_id, published_at = con.execute(
        f"select * from {PUBLISHED_SCHEMA}.snapshot_meta"
    ).fetchone()
    return Snapshot(path, as_of, fingerprint, max_load_id, published_at)


def fresh_snapshot(
    db_path: str | os.PathLike,
    config: Config,
    max_load_id: int | None,
    load_ids: list[int] | None = None,
) -> Snapshot | None:
    """The current snapshot if it is up to date: the warehouse's loads (its latest load id is
    `max_load_id`; with `load_ids`, its ledger holds exactly these loads — an unloaded load
    other than the latest leaves the latest id as it was), the same sql/ and the same
    configuration, and this layout, its Parquet files in place in its own folder. None
    otherwise."""
    current = current_snapshot_path(db_path)
    if current is None:
        return None
    try:
        snap = open_snapshot(current, base=False)
        try:
            meta = read_snapshot(snap, current)
            schema = stored_schema_fingerprint(snap)
            seen = ledger_ids(snap) if load_ids is not None else None
            files = [
                Path(f)
                for (f,) in snap.execute(
                    f"select file from {PUBLISHED_SCHEMA}.{FILES_TABLE}"
                ).fetchall()
            ]
            base = _base_name(snap)  # (copy_store), resolved in the snapshot's folder
        finally:
            snap.close()
    except duckdb.Error:
        return None  # pruned meanwhile, or not a snapshot of this version (or layout)
    lines = (snapshot_dir(db_path) / LINES).resolve()
    fresh = (
        all(f.parent.resolve() == lines and f.exists() for f in files)  # (a folder moved or copied)
        and (base is None or (current.parent / base).exists())
        and schema == schema_fingerprint()
        and meta.config_fingerprint == config_fingerprint(config)
        and meta.max_load_id == max_load_id
        and (load_ids is None or seen == list(load_ids))
    )
    return meta if fresh else None


def snapshot_behind(db_path: str | os.PathLike) -> bool | None:
    """Does the warehouse hold other loads than its current snapshot (a load or an unload
    committed, then killed before it published)? None when it cannot tell: no snapshot, or the
    warehouse cannot be opened now (a writer holds it: its own publication follows).

    Opens the warehouse read-only for a moment, and only when a file of the warehouse (or its
    write-ahead log) was changed after the snapshot was written: a publication checkpoints the
    warehouse before copying it, so after it the snapshot is the newest file.
    """
    db_path = Path(db_path)
    current = current_snapshot_path(db_path)
    if current is None or not db_path.exists():
        return None
    try:
        written = current.stat().st_mtime_ns
        changed = max(p.stat().st_mtime_ns for p in (db_path, Path(f"{db_path}.wal")) if p.exists())
    except FileNotFoundError:
        return None  # pruned meanwhile
    if changed <= written:
        return False
    ids = []
    for path in (db_path, current):  # (read-only, no schema change, no progress bar)
        try:
            con = (
                connect(path, read_only=True)
                if path == db_path
                else open_snapshot(path, base=False)
            )
        except (RuntimeError, duckdb.Error):  # (WarehouseError is a RuntimeError)
            return None  # a writer holds the warehouse, or the snapshot was pruned meanwhile
        try:
            ids.append(ledger_ids(con))
        except duckdb.Error:
            return None
        finally:
            con.close()
    return ids[0] != ids[1]


def ensure_published(db_path: str | os.PathLike, config: Config) -> Path | None:
    """Publish a snapshot unless the current one is up to date (same loads, sql/ and config).

    Used when the dashboard starts on a warehouse loaded by an older version. Opens the
    warehouse writable briefly; returns None when there is no warehouse.
    """
    db_path = Path(db_path)
    if not db_path.exists():
        return None
    con = connect(db_path, config=config)
    try:
        (max_load_id,) = con.execute("select max(load_id) from loads").fetchone()
        fresh = fresh_snapshot(db_path, config, max_load_id, ledger_ids(con))
        return fresh.path if fresh else publish(con, config)
    finally:
        con.close()
