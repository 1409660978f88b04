"""Removing one load: `benzo-monitor unload LOAD_ID` (issue 18, item 5).

A load wrote four things (etl/ingest/load.py, `Loader._commit`): its row of the ledger `loads`,
its new programme lines (`billing_lines`), its new BZRA and clonazepam lines (`bzra_lines`) and
its rejected rows (`rejects`), each carrying its `load_id`. Unloading deletes exactly those, in
one transaction, and records the load in `unloads` (so that a second unload of the same id is
told apart from an id that never existed). The warehouse is then what it would be had the file
never been loaded, so every figure returns exactly to what it was, and (SPEC §3, idempotency)
the same file can be loaded again: its fingerprints are no longer stored.

Lines "already present" are stored once, under the load that brought them first: a later load
that overlapped may have counted some of this load's lines as present without storing them
again. Which ones is not recorded, so removing this load would remove lines the later file also
held. Such a load is refused (nothing changes), naming the later loads to unload first. A load
seen by an issued report pack (the report archive) is refused too: the pack could no longer be
reproduced (`benzo-monitor report --reproduce`) from the loads it saw.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

from etl.base import audit, publish, store
from etl.base.config import Config


class UnloadRefused(Exception):
    """The load cannot be removed; the message says why. The warehouse is unchanged."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason  # one word for the audit trail: unknown, already, overlap, reported


@dataclass
class UnloadSummary:
    """What one unload removed."""

    load_id: int
    file_name: str
    file_sha256: str
    billing_lines: int
    bzra_lines: int
    rejects: int


def _refuse_unless_removable(con: duckdb.DuckDBPyConnection, load_id: int) -> tuple[str, str]:
    """(file name, SHA-256) of load `load_id`; UnloadRefused when it cannot be removed."""
    row = con.execute(
        "select file_name, file_sha256 from loads where load_id = ?", [load_id]
    ).fetchone()
    if row is None:
        gone = con.execute(
            "select file_name, strftime(unloaded_at, '%Y-%m-%d %H:%M:%S') from unloads "
            "where load_id = ?",
            [load_id],
        ).fetchone()
        if gone is not None:
            raise UnloadRefused(
                f"load {load_id} ({gone[0]}) was already unloaded on {gone[1]}; nothing changed.",
                "already",
            )
        raise UnloadRefused(
            f"there is no load {load_id} in the ledger (benzo-monitor loads lists the load ids); "
            "nothing changed.",
            "unknown",
        )
    file_name, sha = row
    later = con.execute(
        "select load_id, file_name from loads "
        "where load_id > ? and (rows_present > 0 or file_sha256 = ?) order by load_id",
        [load_id, sha],
    ).fetchall()
    if later:
        names = ", ".join(f"{i} ({name})" for i, name in later)
        raise UnloadRefused(
            f"load {load_id} ({file_name}) cannot be unloaded alone: later load(s) {names} held "
            "lines already present in the warehouse, which may be lines of this file, stored "
            "once under this load. Unload the later load(s) first, newest first, then this one, "
            "and load their files again; nothing changed.",
            "overlap",
        )
    reports = con.execute(
        "select report_id from report_archive "
        "where coalesce(list_contains(load_ids, ?), max_load_id >= ?) order by report_id",
        [load_id, load_id],
    ).fetchall()
    if reports:
        ids = ", ".join(str(r) for (r,) in reports)
        raise UnloadRefused(
            f"load {load_id} ({file_name}) was seen by the report pack(s) {ids} of the report "
            "archive (benzo-monitor reports): without it they could not be reproduced; "
            "nothing changed.",
            "reported",
        )
    return file_name, sha


def unload(con: duckdb.DuckDBPyConnection, load_id: int, user: str | None = None) -> UnloadSummary:
    """Remove load `load_id` in one transaction (see the module docstring); UnloadRefused,
    with the warehouse unchanged, when it is unknown, already unloaded or cannot be removed."""
    con.execute("begin transaction")
    try:
        file_name, sha = _refuse_unless_removable(con, load_id)
        counts = []
        for table in ("billing_lines", "bzra_lines", "rejects"):
            (n,) = con.execute(
                f"select count(*) from {table} where load_id = ?", [load_id]
            ).fetchone()
            con.execute(f"delete from {table} where load_id = ?", [load_id])
            counts.append(n)
        con.execute(
            "insert into unloads select load_id, file_name, file_sha256, finished_at, ?, ?, ?, ?, ? "
            "from loads where load_id = ?",
            [*counts, dt.datetime.now(), user, load_id],
        )
        con.execute("delete from loads where load_id = ?", [load_id])
        con.execute("commit")
    except BaseException:
        try:
            con.execute("rollback")
        except duckdb.Error:
            pass  # a commit that failed has ended the transaction itself
        raise
    return UnloadSummary(load_id, file_name, sha, *counts)


def unload_and_publish(
    con: duckdb.DuckDBPyConnection, load_id: int, config: Config | None = None
) -> UnloadSummary:
    """Unload, record it in the audit trail (`unload` or `unload_refused`) and, once a dashboard
    has served this warehouse, publish a snapshot without the load — all on `con`, whose write
    lock is held from the unload to the publication (as `etl.ingest.load.load_paths` does)."""
    db = audit.database_file(con)
    try:
        summary = unload(con, load_id, audit.os_user())
    except UnloadRefused as exc:
        audit.record(db, "unload_refused", load_id=load_id, reason=exc.reason)
        raise
    audit.record(
        db, "unload", load_id=summary.load_id, file=summary.file_name, sha256=summary.file_sha256,
        rows_new=summary.billing_lines, rows_bzra=summary.bzra_lines,
        rows_rejected=summary.rejects,
    )  # fmt: skip
    if config is not None:
        store.refresh_store(con, config)  # rebuilt without the load (etl/base/store.py)
    if config is not None and publish.snapshot_dir(publish.database_path(con)).exists():
        publish.publish(con, config)
    return summary
