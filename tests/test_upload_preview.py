"""The upload's preview (issue 18, item 5): a dry run of the loader — the same steps and the
same writing transaction, rolled back — gives the counts the real load then gives, and changes
nothing. And the stale snapshot (issue 19, item 9): a load committed but not published leaves
the warehouse newer than the snapshot the dashboard shows, which etl.base.publish detects.
"""

from __future__ import annotations

import dataclasses

from etl.base.config import load_config
from etl.base.publish import fresh_snapshot, ledger_ids, publish, snapshot_behind
from etl.base.warehouse import connect
from etl.ingest.load import Loader, load_paths, preview_path
from etl.ingest.unload import unload
from tests.conftest import warehouse_content
from tests.test_unload import first_file, second_file, write_delimited

COUNTS = ("rows_read", "rows_new", "rows_present", "rows_skipped", "rows_rejected", "rows_bzra",
          "rows_clonazepam", "rejects_by_reason", "previously_loaded_as", "file_sha256")  # fmt: skip


def test_the_preview_counts_what_the_load_then_brings_and_changes_nothing(tmp_path):
    """File B on a warehouse holding file A (tests/test_unload.py, worked by hand there):
    6 rows read, 3 new, 1 already present, 1 skipped, 1 rejected (quantity 0), 1 BZRA line."""
    db = tmp_path / "w.duckdb"
    config = load_config()
    con = connect(db, config=config)
    try:
        load_paths(con, [first_file(tmp_path)], config=config)
    finally:
        con.close()
    before = warehouse_content(db)
    con = connect(db, config=config)
    try:
        preview = preview_path(con, second_file(tmp_path), config).summary
    finally:
        con.close()
    assert warehouse_content(db) == before  # nothing written, no load id drawn
    expected = {
        "rows_read": 6, "rows_new": 3, "rows_present": 1, "rows_skipped": 1, "rows_rejected": 1,
        "rows_bzra": 1, "rows_clonazepam": 0, "rejects_by_reason": {"quantity_zero": 1},
    }  # fmt: skip
    assert {k: getattr(preview, k) for k in expected} == expected
    assert (preview.load_id, preview.dry_run) == (0, True)
    con = connect(db, config=config)
    try:
        (outcome,) = load_paths(con, [second_file(tmp_path)], config=config)
    finally:
        con.close()
    real = outcome.summary
    assert (real.load_id, real.dry_run) == (2, False)
    as_dict = dataclasses.asdict
    assert {k: as_dict(real)[k] for k in COUNTS} == {k: as_dict(preview)[k] for k in COUNTS}


def test_a_preview_of_a_file_loaded_before_and_of_a_refused_file(tmp_path):
    """The same file again: 0 new, 4 present, and the load it came with (load 1). A file
    without the required columns: refused, as the load would refuse it."""
    db = tmp_path / "w.duckdb"
    con = connect(db)
    try:
        Loader(con).load_file(first_file(tmp_path))
        again = preview_path(con, first_file(tmp_path)).summary
        assert (again.rows_new, again.rows_present, again.previously_loaded_as) == (0, 4, 1)
        broken = write_delimited(tmp_path / "broken.csv", ["a", "b"], [["1", "2"]])
        refused = preview_path(con, broken)
        assert refused.summary is None and "required column(s) missing" in refused.refused
        (n,) = con.execute("select count(*) from loads").fetchone()
    finally:
        con.close()
    assert n == 1


def test_a_commit_without_its_publication_leaves_the_snapshot_behind(tmp_path):
    db = tmp_path / "w.duckdb"
    config = load_config()
    con = connect(db, config=config)
    try:
        Loader(con).load_file(first_file(tmp_path))
        publish(con, config)
    finally:
        con.close()
    assert snapshot_behind(db) is False
    # A load committed, the process stopped before publishing (no publication here).
    con = connect(db, config=config)
    try:
        Loader(con).load_file(second_file(tmp_path))
    finally:
        con.close()
    assert snapshot_behind(db) is True
    con = connect(db, config=config)
    try:
        publish(con, config)
    finally:
        con.close()
    assert snapshot_behind(db) is False


def test_an_unload_of_an_earlier_load_without_its_publication_is_seen_too(tmp_path):
    """Loads 1 (A) and 2 (C, no line in common): unloading 1 leaves the latest load id at 2,
    so the snapshot's max_load_id alone would call it up to date; the ledger's ids do not."""
    db = tmp_path / "w.duckdb"
    config = load_config()
    other = write_delimited(
        tmp_path / "july.csv",
        ["patient_id", "pharmacy_id", "delivery_date", "cnk", "quantity"],
        [["P9", "PH9", "01/07/2025", "5521976", "1"]],
    )
    con = connect(db, config=config)
    try:
        Loader(con).load_file(first_file(tmp_path))
        Loader(con).load_file(other)
        publish(con, config)
        unload(con, 1)  # committed; not published
        assert ledger_ids(con) == [2]
        assert fresh_snapshot(db, config, 2) is not None  # the latest id alone: fooled
        assert fresh_snapshot(db, config, 2, ledger_ids(con)) is None
    finally:
        con.close()
    assert snapshot_behind(db) is True
