"""Issue 20: `publish` computes the marts in a thread of their own while it copies the warehouse
(etl/base/publish.py, `MartsInBackground`). An error on either side must end the publication
as before the overlap: the error raised as it is, no snapshot file and no temporary file left,
the previous snapshot still current, no thread left running, and the warehouse's connection
still usable (the next publication succeeds).

The warehouse: two hand-made files, each one programme start for one patient (a 10-step
initiation and a first reduction step delivered the same day: 2 lines per file), loaded one at
a time. The errors are real ones, raised by DuckDB or the OS on a real warehouse:
- in the marts' thread: a view `mart_zz_broken` added to the warehouse that casts the ledger's
  file names ('f1.csv', 'f2.csv') to integers, which DuckDB refuses when the mart is computed
  (a conversion error) — the copy of the warehouse, meanwhile, copies the view without error;
- in the copying thread: the Parquet folder `lines` replaced by a plain file, so writing the
  load's Parquet files fails (FileExistsError) while the marts' thread is computing.
"""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb
import pytest

from etl.base.config import load_config
from etl.base.publish import (
    LINES,
    PUBLISHED_SCHEMA,
    current_snapshot_path,
    mart_names,
    open_snapshot,
    publish,
    snapshot_dir,
)
from etl.base.warehouse import connect
from etl.ingest.load import load_paths
from tests.test_publish_layout import start_file


@pytest.fixture
def warehouse(tmp_path):
    """A warehouse with file 1 loaded and published (its first snapshot current)."""
    config = load_config()
    db = tmp_path / "w.duckdb"
    snapshot_dir(db).mkdir(parents=True)
    con = connect(db, config=config)
    load_paths(con, [start_file(tmp_path, 1)], config=config)
    first = current_snapshot_path(db)
    assert first is not None
    yield dict(db=db, con=con, config=config, folder=tmp_path, first=first)
    con.close()


def _left_behind(db: Path) -> list[str]:
    """Temporary files of a publication in the snapshot folder and its Parquet folder."""
    folder = snapshot_dir(db)
    lines = folder / LINES
    found = [*folder.glob("*.tmp*")]
    if lines.is_dir():
        found += [*lines.glob("*.tmp*")]
    return sorted(p.name for p in found)


def _marts_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "publish-marts" and t.is_alive()]


def _published(path: Path) -> tuple[set[str], int]:
    """The tables of the snapshot's `published` schema, and its billing lines."""
    snap = open_snapshot(path)
    try:
        tables = {
            name
            for (name,) in snap.execute(
                "select table_name from duckdb_tables() where schema_name = ?",
                [PUBLISHED_SCHEMA],
            ).fetchall()
        }
        (lines,) = snap.execute("select count(*) from billing_lines").fetchone()
        return tables, lines
    finally:
        snap.close()


def test_an_error_computing_a_mart_ends_the_publication(warehouse):
    """File 2 loads (its lines are committed), then its publication meets the broken mart in
    the marts' thread: the conversion error of 'f1.csv' (or 'f2.csv') to an integer is raised
    by `publish` itself; CURRENT still names the first snapshot, which is the only snapshot
    file; no temporary file, no marts thread left. With the broken view dropped, the same
    connection publishes: 4 billing lines (2 per file), and every mart of the warehouse
    published (mart_zz_broken no longer among them)."""
    db, con, config = warehouse["db"], warehouse["con"], warehouse["config"]
    con.execute("create view mart_zz_broken as select cast(file_name as integer) as n from loads")
    with pytest.raises(duckdb.ConversionException, match=r"f[12]\.csv"):
        load_paths(con, [start_file(warehouse["folder"], 2)], config=config)
    assert con.execute("select count(*) from billing_lines").fetchone() == (4,)
    assert current_snapshot_path(db) == warehouse["first"]
    assert sorted(p.name for p in snapshot_dir(db).glob("*.duckdb")) == [warehouse["first"].name]
    assert _left_behind(db) == []
    assert _marts_threads() == []

    con.execute("drop view mart_zz_broken")
    path = publish(con, config)
    assert current_snapshot_path(db) == path != warehouse["first"]
    tables, lines = _published(path)
    assert lines == 4
    marts = set(mart_names(con))
    assert "mart_zz_broken" not in marts and len(marts) > 10
    assert marts <= tables


def test_an_error_copying_the_warehouse_stops_the_marts_thread(warehouse):
    """File 2 loads, then its publication cannot write its Parquet file (the folder `lines` is
    a plain file): the OS's FileExistsError is raised — not an interruption of the marts'
    thread, which is stopped and waited for; CURRENT still names the first snapshot, no
    temporary file, no marts thread left. With the folder back, the same connection
    publishes both files: 4 billing lines."""
    db, con, config = warehouse["db"], warehouse["con"], warehouse["config"]
    lines = snapshot_dir(db) / LINES
    kept = lines.with_name("lines.kept")
    lines.rename(kept)
    lines.write_text("not a folder\n", encoding="utf-8")
    with pytest.raises(FileExistsError):
        load_paths(con, [start_file(warehouse["folder"], 2)], config=config)
    assert current_snapshot_path(db) == warehouse["first"]
    assert sorted(p.name for p in snapshot_dir(db).glob("*.duckdb")) == [warehouse["first"].name]
    assert _left_behind(db) == []
    assert _marts_threads() == []

    lines.unlink()
    kept.rename(lines)
    path = publish(con, config)
    assert current_snapshot_path(db) == path != warehouse["first"]
    tables, count = _published(path)
    assert count == 4
    assert set(mart_names(con)) <= tables
