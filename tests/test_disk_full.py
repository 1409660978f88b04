"""Issue 19, item 6: a full disk during a load ends with exit status 3 and a plain message.

Before: three tracebacks (the failed commit, then `rollback` and `drop table` on a connection
whose transaction the failed commit had ended) and exit status 1, the status of a refused file.

The warehouse lives on a real, small file system: a 4 MiB tmpfs mounted for the test (this
needs root or CAP_SYS_ADMIN; without it the test is skipped, and says so). A first load of 3
lines fits; the second file (60,000 programme lines, distinct) does not: DuckDB cannot write
its write-ahead log. The command must end with status 3, the message "disk full — nothing
changed" naming the file, no traceback; the warehouse must equal its content before (every raw
table, row by row); and once there is room (the tmpfs remounted at 64 MiB) the same file loads:
3 + 60,000 lines, ledger = lines.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from etl.base import store
from etl.base.config import load_config
from etl.base.warehouse import connect
from etl.ingest.load import DiskFull, is_disk_full, load_paths
from tests.conftest import CANONICAL_HEADER, query, warehouse_content, write_delimited
from tests.test_store import assert_store_is_a_rebuild, late_files


def _mount(folder: Path, size: str, remount: bool = False) -> bool:
    options = f"remount,size={size}" if remount else f"size={size}"
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True
    )
    return result.returncode == 0


@pytest.fixture
def tiny(tmp_path):
    folder = tmp_path / "tiny"
    folder.mkdir()
    if not _mount(folder, "4m"):
        pytest.skip("cannot mount a small tmpfs here (needs root): the full-disk test did not run")
    yield folder
    subprocess.run(["umount", str(folder)], check=False)


def _load(db: Path, *files: Path) -> tuple[int, str]:
    result = subprocess.run(
        [sys.executable, "-m", "etl.cli", "--db", str(db), "load", "--no-progress",
         *map(str, files)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return result.returncode, result.stdout + result.stderr


def test_a_full_disk_ends_with_status_3_and_changes_nothing(tiny, tmp_path):
    db = tiny / "warehouse.duckdb"
    rows = [
        [f"P{i:06d}", f"PH{i % 500}", f"2024-0{1 + i % 9}-1{i % 9}", "5521950", 1, "0"]
        for i in range(60_000)
    ]
    small = write_delimited(tmp_path / "small.csv", CANONICAL_HEADER,
                            [[f"S{i}", "PH1", "2024-03-04", "5521950", 1, "0"] for i in range(3)])  # fmt: skip
    big = write_delimited(tmp_path / "big.csv", CANONICAL_HEADER, rows)
    status, text = _load(db, small)
    assert status == 0, text
    before = warehouse_content(db)

    status, text = _load(db, big)
    flat = " ".join(text.split())
    assert status == 3, text
    assert "disk full — nothing changed: big.csv was not loaded" in flat
    assert "Traceback" not in text
    assert warehouse_content(db) == before

    assert _mount(tiny, "64m", remount=True)
    status, text = _load(db, big)
    assert status == 0, text
    assert query(db, "select count(*) from billing_lines") == [(60_003,)]
    assert query(db, "select sum(rows_new) from loads") == [(60_003,)]


def test_a_full_disk_at_the_store_refresh_checkpoint_changes_nothing(tiny, tmp_path):
    """The store refresh's commit, turned into a checkpoint (checkpoint_threshold 1 KB, as
    DuckDB does for a large commit: tests/test_store.py), on a disk left with 64 KiB free: the
    checkpoint cannot write the warehouse. refresh_store raises DuckDB's own error (failed
    checkpoint, no space left on device: a full disk to the loader's is_disk_full), not one of
    the rollback after it; DuckDB invalidates the database until it is opened again. Reopened,
    the warehouse is what it was before the refresh (every table, store and store_meta
    included: file 2's lines loaded, the store still of file 1); with room again (the filler
    deleted) the refresh recomputes file 2's patients ("patients"), and its store equals a
    rebuild."""
    assert _mount(tiny, "32m", remount=True)
    db = tiny / "warehouse.duckdb"
    config = load_config()
    first, second = late_files(tmp_path)
    con = connect(db, config=config)
    load_paths(con, [first], config=config)  # the store: file 1
    load_paths(con, [second])  # file 2's lines, the store not refreshed
    con.close()
    before = warehouse_content(db)
    assert before["store_meta"] and before["store_netted_lines"]

    con = connect(db, config=config)
    stat = os.statvfs(tiny)
    filler = tiny / "filler"
    filler.write_bytes(b"\0" * (stat.f_bavail * stat.f_frsize - 64 * 1024))
    con.execute("set checkpoint_threshold = '1KB'")
    with pytest.raises(duckdb.Error) as raised:
        store.refresh_store(con, config)
    message = str(raised.value)
    assert "checkpoint" in message and "No space left on device" in message, message
    assert "invalidated" not in message, message  # (the rollback's error, hiding DuckDB's)
    assert is_disk_full(raised.value)
    con.close()
    assert warehouse_content(db) == before

    filler.unlink()
    con = connect(db, config=config)
    try:
        assert store.refresh_store(con, config) == "patients"
        assert_store_is_a_rebuild(con, config)
    finally:
        con.close()


def test_a_full_disk_at_the_loads_store_refresh_keeps_the_lines_and_says_to_publish(tiny, tmp_path):
    """A load whose own commit fits but whose store refresh does not: checkpoint_threshold
    1 KB on the connection (every commit a checkpoint), 2 MiB left free on the tmpfs — the
    load of file 2 (one line each for P1 and P2, tests/test_store.py late_files) writes a few
    of DuckDB's 256 KiB blocks, the refresh's checkpoint of the five store tables more (found
    by trying: 1.6-2.5 MiB free gives this case, 1.5 MiB fails the load itself, 2.75 MiB
    succeeds). load_paths raises DiskFull naming the loaded file and the way out (`publish`),
    not a traceback. Reopened: file 2's 2 lines are in billing_lines (9 + 2 = 11), the store
    is still file 1's (store_meta's load_ids [1]); with the filler deleted, `benzo-monitor
    publish` brings the store to loads [1, 2], equal to a rebuild."""
    from etl.cli import main as main_cli

    assert _mount(tiny, "32m", remount=True)
    db = tiny / "warehouse.duckdb"
    config = load_config()
    first, second = late_files(tmp_path)
    con = connect(db, config=config)
    load_paths(con, [first], config=config)
    con.close()
    con = connect(db, config=config)
    stat = os.statvfs(tiny)
    filler = tiny / "filler"
    filler.write_bytes(b"\0" * (stat.f_bavail * stat.f_frsize - 2048 * 1024))
    con.execute("set checkpoint_threshold = '1KB'")
    with pytest.raises(DiskFull) as raised:
        load_paths(con, [second], config=config)
    message = " ".join(str(raised.value).split())
    assert message.startswith("disk full — two.csv loaded, but the core store could not"), message
    assert "run `benzo-monitor publish`" in message
    try:
        con.close()
    except duckdb.Error:
        pass  # (DuckDB invalidated the database after the failed checkpoint)
    assert query(db, "select count(*) from billing_lines") == [(11,)]
    assert query(db, "select value from store_meta where key = 'load_ids'") == [("[1]",)]

    filler.unlink()
    assert main_cli(["--db", str(db), "publish"]) == 0
    assert query(db, "select value from store_meta where key = 'load_ids'") == [("[1, 2]",)]
    con = connect(db, config=config)
    try:
        assert_store_is_a_rebuild(con, config)
    finally:
        con.close()
