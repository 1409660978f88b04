"""The dashboard's only way to the warehouse: the latest published snapshot, read-only.

Pages read figures through etl.figures with the reader `Warehouse.reader(as_of)` gives them;
they hold no SQL. Pages never open the warehouse file itself (a load may be writing it): they read the snapshot
that the last load published (etl/base/publish.py). Each snapshot is opened once per process and
each call takes its own cursor (DuckDB connections must not be shared across threads, cursors
may). Results are cached per snapshot, so a second reader of the same view costs nothing, and a
new snapshot — new data — shows up at the next request, without a restart.

Marts are read from the snapshot's `published` tables when the page asks for the default as-of
date under the configuration the snapshot was computed with; any other as-of date is computed
from the views in the same snapshot, on a cursor whose core views are computed once for that
date (slower the first time, then cached).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import duckdb
import flask

from etl.base.config import Config, load_config
from etl.base.publish import (
    PUBLISHED_SCHEMA,
    Snapshot,
    config_fingerprint,
    current_snapshot_path,
    materialise_core,
    open_snapshot,
    read_snapshot,
)
from etl.base.warehouse import apply_settings, dict_rows
from etl.figures import resolve_marts

CACHE_SIZE = 512
AS_OF_CURSORS = 4


class NoData(RuntimeError):
    """No snapshot has been published yet (nothing loaded, or the dashboard not started)."""


class Warehouse:
    """Reads marts for the dashboard's callbacks from the latest published snapshot."""

    def __init__(self, db_path: str | Path, config: Config | None = None):
        self.db_path = Path(db_path)
        self.config = config or load_config()
        self._config_fingerprint = config_fingerprint(self.config)
        self._lock = threading.Lock()
        self._open: tuple[Path, duckdb.DuckDBPyConnection, Snapshot] | None = None
        self._cache: OrderedDict[tuple, list[dict]] = OrderedDict()
        self._as_of_lock = threading.Lock()
        self._as_of_cursors: OrderedDict[tuple, tuple] = OrderedDict()

    # --- the snapshot -----------------------------------------------------------------

    def _connection(self) -> tuple[duckdb.DuckDBPyConnection, Snapshot]:
        """The snapshot to read: the latest one, the same for every query of one request.

        A load may publish between two queries of one page; pinning the snapshot in the
        request's context keeps every figure of an answer from one complete load.
        """
        pinned = flask.g.get("benzo_snapshot") if flask.has_request_context() else None
        if pinned is not None and pinned[0] is self:
            return pinned[1], pinned[2]
        con, snap = self._latest()
        if flask.has_request_context():
            flask.g.benzo_snapshot = (self, con, snap)
        return con, snap

    def _latest(self) -> tuple[duckdb.DuckDBPyConnection, Snapshot]:
        for attempt in range(3):
            path = current_snapshot_path(self.db_path)
            if path is None:
                raise NoData(str(self.db_path))
            with self._lock:
                if self._open is not None and self._open[0] == path:
                    return self._open[1], self._open[2]
                try:
                    con = open_snapshot(path)
                except duckdb.IOException:
                    # Pruned between reading CURRENT and opening it: two newer publications
                    # came in meanwhile; read the pointer again.
                    if attempt == 2:
                        raise
                    continue
                self._open = (path, con, read_snapshot(con, path))
                self._cache.clear()
                return con, self._open[2]
        raise NoData(str(self.db_path))  # not reached

    def snapshot(self) -> Snapshot | None:
        """The snapshot pages read now (None before the first publication)."""
        try:
            return self._connection()[1]
        except NoData:
            return None

    def default_as_of(self) -> dt.date | None:
        """The as-of date the snapshot's marts were computed for (the latest delivery date)."""
        snap = self.snapshot()
        return snap.as_of_date if snap else None

    def date_range(self) -> tuple[dt.date | None, dt.date | None]:
        """The as-of dates the data can answer for: from the first delivery date loaded to the
        latest (SPEC §5's default as-of date); (None, None) before any data."""
        from etl.figures import first_delivery_date

        snap = self.snapshot()
        if snap is None or snap.as_of_date is None:
            return None, None
        return first_delivery_date(self.reader()), snap.as_of_date

    # --- queries ----------------------------------------------------------------------

    def rows(self, sql: str, params: list | tuple = (), as_of: dt.date | None = None) -> list[dict]:
        """Rows of `sql` as dicts, computed as of `as_of` (None: the snapshot's default).

        In `sql`, write `{mart_state_of_play}` (a mart name in braces) to read the mart: the
        published table when it was computed for this as-of date, else the view.
        Returns [] when nothing has been published yet.
        """
        try:
            con, snap = self._connection()
        except NoData:
            return []
        published = as_of in (None, snap.as_of_date) and (
            snap.config_fingerprint == self._config_fingerprint
        )
        schema = PUBLISHED_SCHEMA if published else "main"
        key = (snap.path, schema, as_of, sql, tuple(params))
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        text = resolve_marts(sql, schema)
        if published:
            cursor = con.cursor()
            try:
                rows = dict_rows(cursor, text, params)
            finally:
                cursor.close()
        else:
            cursor, lock = self._as_of_cursor(con, snap, as_of)
            with lock:
                rows = dict_rows(cursor, text, params)
        with self._lock:
            self._cache[key] = rows
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return rows

    def _as_of_cursor(self, con, snap: Snapshot, as_of: dt.date | None):
        """A cursor set to `as_of` whose core views are computed once (temporary tables,
        etl/base/publish.py materialise_core), and the lock that serialises its use.

        Another as-of date than the published one is computed from the views; done view by
        view, every mart would compute the programmes again. One such cursor is kept per
        (snapshot, as-of date), for the last AS_OF_CURSORS dates asked.
        """
        key = (snap.path, as_of)
        with self._as_of_lock:
            entry = self._as_of_cursors.get(key)
            if entry is None:
                cursor = con.cursor()
                apply_settings(cursor, self.config, as_of)
                materialise_core(cursor)
                entry = (cursor, threading.Lock())
                self._as_of_cursors[key] = entry
                stale = [k for k in self._as_of_cursors if k[0] != snap.path]
                stale += list(self._as_of_cursors)[
                    : max(0, len(self._as_of_cursors) - AS_OF_CURSORS)
                ]
                for old_key in dict.fromkeys(stale):
                    old, old_lock = self._as_of_cursors.pop(old_key)
                    with old_lock:
                        old.close()
            self._as_of_cursors.move_to_end(key)
        return entry

    def with_cursor(self, work):
        """`work(cursor)` on a cursor of its own over the current snapshot (for code such as
        etl.outputs.pack.render_pack that sets its own session variables). None before any data."""
        try:
            con, _ = self._connection()
        except NoData:
            return None
        cursor = con.cursor()
        try:
            return work(cursor)
        finally:
            cursor.close()

    def reader(self, as_of: dt.date | None = None) -> SnapshotReader:
        """A reader for etl.figures bound to `as_of` (None: the snapshot's default): pages
        hand it to the figures functions, which read the marts through `rows`."""
        return SnapshotReader(self, as_of)


@dataclass(frozen=True)
class SnapshotReader:
    """An etl.figures reader: `rows` of the warehouse's latest snapshot as of one date, with
    its cache and a cursor of its own per query."""

    warehouse: Warehouse
    as_of: dt.date | None = None

    def rows(self, sql: str, params: list | tuple = ()) -> list[dict]:
        """Rows of `sql` as dicts, `{mart_x}` placeholders read as of this reader's date."""
        return self.warehouse.rows(sql, params, self.as_of)
