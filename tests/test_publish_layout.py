"""Issue 20, item 1: a snapshot that is not a full copy of the warehouse (etl/base/publish.py).

The big append-only raw tables (billing_lines, bzra_lines, rejects) are written once per load
as Parquet files under `<db>.snapshots/lines/`; each snapshot's DuckDB file holds every other
table, the views, the published marts, and views over exactly the files of its loads.

The reference everywhere is the earlier method, done here by hand: `ATTACH` a new file and
`COPY FROM DATABASE` the whole warehouse into it, then read its views. Every published mart,
the views at another as-of date, the raw rows and their column types must be identical.

The history: a generated dataset (seed 7) of six monthly exports and its BZRA export (SPEC §14,
loaded third), loaded one at a time, each load publishing; then a hand-made file with a late
line (a step of a programme started in January, delivered in January) and a row with quantity
0 (rejected, SPEC §3); then the unload of load 2 (February), which publishes again.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest

from etl.base import publish as publish_module
from etl.base.config import load_config
from etl.base.publish import (
    FILES_TABLE,
    KEEP,
    LINES,
    PARTITIONED,
    PUBLISHED_SCHEMA,
    config_fingerprint,
    current_snapshot_path,
    ensure_published,
    fresh_snapshot,
    mart_names,
    open_snapshot,
    publish,
    snapshot_dir,
)
from etl.base.warehouse import apply_settings, connect, ledger_ids, open_duckdb
from etl.ingest.load import is_disk_full, load_paths
from etl.ingest.unload import unload_and_publish
from etl.nowcast import data_bounds, vintage_history
from etl.synthetic.generate import generate
from tests.conftest import CANONICAL_HEADER, write_delimited
from tests.sqlcase import INIT10, RED10

OTHER_AS_OF = dt.date(2024, 4, 15)
UNLOADED = 2  # the load of February 2024


def files_on_disk(db: Path) -> dict[str, tuple[int, int]]:
    """The Parquet files of the warehouse's snapshot folder: name -> (inode, mtime in ns)."""
    lines = snapshot_dir(db) / LINES
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in lines.glob("*.parquet")}


def manifest(path: Path) -> list[str]:
    """The Parquet files the snapshot at `path` lists (published.snapshot_files)."""
    con = open_duckdb(path, read_only=True)
    try:
        return [Path(f).name for (f,) in con.execute(
            f"select file from {PUBLISHED_SCHEMA}.{FILES_TABLE}").fetchall()]  # fmt: skip
    finally:
        con.close()


def parquet_rows(path: Path) -> int:
    """The number of rows of one Parquet file."""
    con = open_duckdb()
    try:
        return con.execute("select count(*) from read_parquet(?)", [str(path)]).fetchone()[0]
    finally:
        con.close()


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[str]:
    """The rows of `sql`, as sorted text (a multiset: order-free, exact values)."""
    return sorted(map(repr, con.execute(sql).fetchall()))


def full_copy(con: duckdb.DuckDBPyConnection, target: Path) -> Path:
    """The earlier layout, by hand: the whole warehouse copied into `target` by DuckDB."""
    (name,) = con.execute("select current_database()").fetchone()
    con.execute("checkpoint")
    con.execute(f"attach '{target}' as reference_copy")
    con.execute(f'copy from database "{name}" to reference_copy')
    con.execute("detach reference_copy")
    return target


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    folder = tmp_path_factory.mktemp("layout")
    config = load_config()
    exports = folder / "exports"
    generate(
        exports, seed=7, start=dt.date(2024, 1, 1), end=dt.date(2024, 6, 30),
        weekly_starts=6, bzra=True, other_lines=20, today=dt.date(2024, 7, 15),
    )  # fmt: skip
    db = folder / "w.duckdb"
    snapshot_dir(db).mkdir(parents=True)  # a dashboard has served it: loads publish
    con = connect(db, config=config)
    steps = []  # after each publication: (snapshot, files on disk, its manifest)

    def record():
        path = current_snapshot_path(db)
        steps.append((path, files_on_disk(db), manifest(path)))

    months = sorted(exports.glob("export_*.csv"))
    for export in [*months[:2], exports / "bzra_export.csv", *months[2:]]:
        (outcome,) = load_paths(con, [export], config=config)
        assert outcome.summary is not None, outcome.refused
        record()
    late = write_delimited(
        folder / "late.csv",
        CANONICAL_HEADER,
        [
            ["LATE1", "PH1", "2024-01-08", INIT10, 1, "0"],
            ["LATE1", "PH1", "2024-01-22", RED10, 1, "0"],
            ["LATE2", "PH1", "2024-02-05", INIT10, 0, "0"],  # quantity 0: rejected
        ],
    )
    (outcome,) = load_paths(con, [late], config=config)
    assert outcome.summary.rows_rejected == 1
    record()
    unload_and_publish(con, UNLOADED, config)
    record()
    reference = full_copy(con, folder / "reference.duckdb")
    yield dict(db=db, con=con, config=config, steps=steps, reference=reference, folder=folder)
    con.close()


def test_every_published_mart_equals_a_full_copy(history):
    """Each published.mart_* of the newest snapshot has exactly the rows the views of a full
    copy give (same settings, default as-of date); and they are many (the registry's marts)."""
    snap = open_snapshot(current_snapshot_path(history["db"]))
    ref = open_duckdb(history["reference"], read_only=True)
    apply_settings(ref, history["config"])
    marts = mart_names(ref)
    assert len(marts) >= 20
    for mart in marts:
        assert rows(snap, f"select * from {PUBLISHED_SCHEMA}.{mart}") == rows(
            ref, f"select * from main.{mart}"
        ), mart
    snap.close()
    ref.close()


def test_views_at_another_as_of_date_equal_a_full_copy(history):
    """A reader computing from the snapshot's views (dashboard/data.py at an as-of date other
    than the published one) gets what a full copy's views give, mart by mart."""
    snap = open_snapshot(current_snapshot_path(history["db"]))
    ref = open_duckdb(history["reference"], read_only=True)
    for con in (snap, ref):
        apply_settings(con, history["config"], as_of_date=OTHER_AS_OF)
    for mart in mart_names(ref):
        assert rows(snap, f"select * from main.{mart}") == rows(
            ref, f"select * from main.{mart}"
        ), mart
    snap.close()
    ref.close()


def test_raw_rows_and_types_round_trip_exactly(history):
    """billing_lines, bzra_lines and rejects read through the Parquet views: the same rows
    (128-bit fingerprints, DECIMAL amounts, dates, ids with their leading zeros) and the same
    column names and types as the warehouse. By hand: the unloaded load 2 is in none of them;
    the late file's rejected row (quantity 0) is the one reject with reason quantity_zero of
    the last load."""
    snap = open_snapshot(current_snapshot_path(history["db"]))
    con = history["con"]
    for table in PARTITIONED:
        assert rows(snap, f"select * from {table}") == rows(con, f"select * from {table}"), table
        assert [r[:2] for r in snap.execute(f"describe {table}").fetchall()] == [
            r[:2] for r in con.execute(f"describe {table}").fetchall()
        ]
        assert snap.execute(
            f"select count(*) from {table} where load_id = {UNLOADED}"
        ).fetchone() == (0,)
        (kind,) = snap.execute(
            "select table_type from information_schema.tables where table_name = ?", [table]
        ).fetchone()
        assert kind == "VIEW"
    assert snap.execute("select count(*) from bzra_lines").fetchone()[0] > 0
    (last,) = con.execute("select max(load_id) from loads").fetchone()
    assert snap.execute(
        "select reason, line_number from rejects where load_id = ?", [last]
    ).fetchall() == [("quantity_zero", 4)]
    assert (
        snap.execute("select typeof(fingerprint), typeof(amount_eur) from billing_lines limit 1")
        .fetchone()
        == ("UHUGEINT", "DECIMAL(12,2)")
    )  # fmt: skip
    snap.close()


def test_each_publication_writes_only_the_files_of_its_new_load(history):
    """After the first publication, each load's publication keeps every earlier file as it was
    (same inode, same modification time) and adds only files of its own load k: named `k-`,
    or `a_k-` for the range of load ids it closes (CHUNKS = (16, 4): by hand, load 3 closes
    0-3 and load 7 closes 4-7). The unload of load 2 writes the range 0-3 again without it
    (loads 1 and 3), only for the tables load 2 had rows in, and nothing else."""
    steps = history["steps"]
    loads = steps[:-1]  # the last step is the unload's
    closed = {3: "0_3", 7: "4_7"}
    for k, ((_, before, listed_before), (_, after, listed_after)) in enumerate(
        zip(loads, loads[1:], strict=False), start=2
    ):
        for name, stat in before.items():
            assert after.get(name, stat) == stat, name  # unchanged (or pruned: none here)
        new = set(after) - set(before)
        assert new == set(listed_after) - set(listed_before)
        assert new and {name.split("-")[0] for name in new} <= {str(k), closed.get(k)}, k
    assert {n.split("-")[0] for n in loads[-1][2]} == {"0_3", "4_7", "8"}
    (_, before, second_last), (_, after, last) = steps[-2:]
    new = set(last) - set(second_last)
    assert new and {n.split("-")[0] for n in new} == {"0_3"}
    gone = set(second_last) - set(last)
    assert gone and all(n.startswith("0_3-") for n in gone)
    # load 2 (February's programme lines) has no BZRA line: range 0-3's BZRA file (load 3's)
    # is the same file before and after
    (bzra,) = [n for n in second_last if n.startswith("0_3-bzra_lines-")]
    assert bzra in last and before[bzra] == after[bzra]


def test_nowcast_from_the_snapshot_equals_a_full_copy(history):
    """etl.nowcast's vintage history (it attaches the database it reads) on the snapshot,
    whose raw tables are views over Parquet, equals the same on a full copy."""
    config = history["config"]
    snap = open_snapshot(current_snapshot_path(history["db"]))
    ref = open_duckdb(history["reference"], read_only=True)
    for con in (snap, ref):
        apply_settings(con, config)
    bounds = data_bounds(ref)
    assert bounds is not None and data_bounds(snap) == bounds
    assert vintage_history(snap, config, *bounds).values == (
        vintage_history(ref, config, *bounds).values
    )
    snap.close()
    ref.close()


# --- pruning, readers, the earlier layout: a small warehouse of hand-made files -----------


def start_file(folder: Path, i: int) -> Path:
    """One programme start (a 10-step initiation and a first step) for patient P<i>."""
    day = 2 + i
    return write_delimited(
        folder / f"f{i}.csv",
        CANONICAL_HEADER,
        [[f"P{i}", "PH1", f"2024-03-{day:02d}", INIT10, 1, "0"],
         [f"P{i}", "PH1", f"2024-03-{day:02d}", RED10, 1, "0"]],
    )  # fmt: skip


@pytest.fixture
def small(tmp_path):
    config = load_config()
    db = tmp_path / "w.duckdb"
    snapshot_dir(db).mkdir(parents=True)
    con = connect(db, config=config)
    yield dict(db=db, con=con, config=config, folder=tmp_path)
    con.close()


def test_pruning_keeps_exactly_the_files_kept_snapshots_list(small, monkeypatch):
    """Loads 1-3 publish; load 2 is unloaded (its files stay: kept snapshots list them); after
    KEEP more publications no kept snapshot lists them, and they are deleted. At every step the
    Parquet files on disk are exactly the union of the kept snapshots' lists, and KEEP
    snapshot files are kept."""
    monkeypatch.setattr(publish_module, "CHUNKS", ())  # one file per load
    db, con, config = small["db"], small["con"], small["config"]
    folder = snapshot_dir(db)

    def check():
        kept = sorted(folder.glob("*.duckdb"))
        assert len(kept) <= KEEP
        assert set(files_on_disk(db)) == {n for path in kept for n in manifest(path)}

    for i in (1, 2, 3):
        load_paths(con, [start_file(small["folder"], i)], config=config)
        check()
    unload_and_publish(con, 2, config)
    check()
    assert any(n.startswith("2-") for n in files_on_disk(db))
    for _ in range(KEEP):
        publish(con, config)
        check()
    assert not any(n.startswith("2-") for n in files_on_disk(db))
    assert sorted(n.split("-")[0] for n in files_on_disk(db)) == ["1", "3"]
    assert len(list(folder.glob("*.duckdb"))) == KEEP


def test_a_reader_of_an_old_snapshot_keeps_reading_it(small, monkeypatch):
    """A reader opens the snapshot after load 2 and keeps its connection; load 3 publishes,
    then load 2 is unloaded and that publishes too. The reader still reads what it read: 4
    programme lines (2 per load, by hand), the lines of P1 and P2, and the same mart rows."""
    monkeypatch.setattr(publish_module, "CHUNKS", ())  # one file per load
    db, con, config = small["db"], small["con"], small["config"]
    for i in (1, 2):
        load_paths(con, [start_file(small["folder"], i)], config=config)
    reader = open_snapshot(current_snapshot_path(db))
    apply_settings(reader, config, as_of_date=OTHER_AS_OF)
    query = "select * from main.mart_state_of_play"
    before = rows(reader, query)
    load_paths(con, [start_file(small["folder"], 3)], config=config)
    unload_and_publish(con, 2, config)
    assert reader.execute("select count(*) from billing_lines").fetchone() == (4,)
    assert [p for (p,) in reader.execute(
        "select distinct patient_id from billing_lines order by 1").fetchall()] == ["P1", "P2"]  # fmt: skip
    assert rows(reader, query) == before
    reader.close()
    current = open_snapshot(current_snapshot_path(db))
    assert current.execute("select count(*) from billing_lines").fetchone() == (4,)  # P1, P3
    current.close()


def test_a_snapshot_of_the_earlier_layout_is_read_then_replaced(small):
    """A snapshot written by the earlier method (a full copy, no published.snapshot_files) is
    not fresh: ensure_published publishes one of this layout; pruning meanwhile reads the old
    one as needing no Parquet file."""
    db, con, config = small["db"], small["con"], small["config"]
    load_paths(con, [start_file(small["folder"], 1)], config=config)
    folder = snapshot_dir(db)
    for path in folder.glob("*.duckdb"):
        path.unlink()
    shutil.rmtree(folder / LINES)
    old = folder / "1-1.duckdb"
    full_copy(con, old)
    snap = open_duckdb(old)
    apply_settings(snap, config)
    snap.execute(f"create schema {PUBLISHED_SCHEMA}")
    for mart in mart_names(snap):
        snap.execute(f"create table {PUBLISHED_SCHEMA}.{mart} as select * from main.{mart}")
    snap.execute(
        f"create table {PUBLISHED_SCHEMA}.snapshot_meta as select "
        "(select as_of_date from main.stg_settings) as as_of_date, "
        "?::varchar as config_fingerprint, 1 as max_load_id, now()::timestamp as published_at",
        [config_fingerprint(config)],
    )
    snap.close()
    (folder / "CURRENT").write_text(old.name + "\n")
    assert fresh_snapshot(db, config, 1, ledger_ids(con)) is None
    con.close()
    path = ensure_published(db, config)
    assert path != old and old.exists()
    assert manifest(path) and all((folder / LINES / n).exists() for n in manifest(path))
    con2 = connect(db, config=config)
    assert fresh_snapshot(db, config, 1, ledger_ids(con2)) is not None
    small["con"] = con2


def test_a_moved_snapshot_folder_is_not_fresh(small):
    """The views name their Parquet files in full: a warehouse and snapshot folder copied
    elsewhere still read the originals, so the copy's snapshot is not fresh until republished,
    and then reads its own files."""
    db, con, config = small["db"], small["con"], small["config"]
    load_paths(con, [start_file(small["folder"], 1)], config=config)
    con.close()
    moved = small["folder"] / "moved"
    moved.mkdir()
    shutil.copy(db, moved / db.name)
    shutil.copytree(snapshot_dir(db), snapshot_dir(moved / db.name))
    copy = connect(moved / db.name, config=config)
    assert fresh_snapshot(moved / db.name, config, 1, ledger_ids(copy)) is None
    copy.close()
    path = ensure_published(moved / db.name, config)
    snap = open_snapshot(path)
    (listed,) = snap.execute(f"select list(file) from {PUBLISHED_SCHEMA}.{FILES_TABLE}").fetchone()
    snap.close()
    assert listed and all(
        Path(f).parent.resolve() == (snapshot_dir(moved / db.name) / LINES).resolve()
        for f in listed
    )
    small["con"] = connect(db, config=config)


def test_a_full_disk_during_publication_leaves_the_previous_snapshot(tmp_path):
    """The warehouse on a real 32 MiB tmpfs (skipped without the right to mount one). Load 1
    publishes; load 2 is committed without publishing; the disk is then filled to 32 KiB of
    room, and publishing fails as a full disk (etl.ingest.load.is_disk_full: what the load
    command turns into status 3), with CURRENT on the first snapshot and no temporary file
    left, in the snapshot folder or in lines/. With room again, it publishes both loads: 4
    programme lines (2 per file, by hand)."""
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(tiny)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root): the full-disk test did not run")
    config = load_config()
    db = tiny / "w.duckdb"
    snapshot_dir(db).mkdir()
    con = connect(db, config=config)
    try:
        load_paths(con, [start_file(tmp_path, 1)], config=config)
        first = current_snapshot_path(db)
        load_paths(con, [start_file(tmp_path, 2)])  # no config: not published
        con.execute("checkpoint")
        filler = tiny / "filler"
        room = shutil.disk_usage(tiny).free - 32 * 1024
        with filler.open("wb") as out:
            out.write(b"\0" * room)
        with pytest.raises(Exception) as failed:
            publish(con, config)
        assert is_disk_full(failed.value)
        assert current_snapshot_path(db) == first
        folder = snapshot_dir(db)
        assert [p.name for p in [*folder.glob("*.tmp*"), *(folder / LINES).glob("*.tmp*")]] == []
        filler.unlink()
        # The publication first brings the warehouse's own stored tables up to date (the core
        # store, the revisions cache): a full disk there can leave this connection unusable
        # (DuckDB invalidates a database whose checkpoint failed); the next command opens the
        # warehouse again, and its committed rows are all there.
        con.close()
        con = connect(db, config=config)
        assert con.execute("select count(*) from billing_lines").fetchone() == (4,)
        path = publish(con, config)
        snap = open_snapshot(path)
        assert snap.execute("select count(*) from billing_lines").fetchone() == (4,)
        snap.close()
    finally:
        con.close()
        subprocess.run(["umount", str(tiny)], check=False)


def test_a_closed_range_of_loads_shares_one_file(small, monkeypatch):
    """With CHUNKS = (2,) ((16, 4) in use): load ids 0-1, 2-3... share a file once the range is closed
    (the ledger's latest id reaches its end). By hand: after load 1, range 0-1 is closed (no
    load 0 can come): one file `0_1-`; after load 2, `0_1-` as it was and `2-`; after load 3,
    range 2-3 closes: `0_1-` still the same file, and `2_3-` with loads 2 and 3 (4 lines);
    unloading load 2 rewrites range 2-3 with load 3 alone (2 lines). Each snapshot reads
    exactly the warehouse's lines."""
    monkeypatch.setattr(publish_module, "CHUNKS", (2,))
    db, con, config = small["db"], small["con"], small["config"]

    def listed() -> list[str]:
        return sorted(n.split("-")[0] for n in manifest(current_snapshot_path(db)))

    def same_lines():
        snap = open_snapshot(current_snapshot_path(db))
        assert rows(snap, "select * from billing_lines") == rows(con, "select * from billing_lines")
        snap.close()

    load_paths(con, [start_file(small["folder"], 1)], config=config)
    assert listed() == ["0_1"]
    (first,) = manifest(current_snapshot_path(db))
    stat = files_on_disk(db)[first]
    load_paths(con, [start_file(small["folder"], 2)], config=config)
    assert listed() == ["0_1", "2"]
    same_lines()
    load_paths(con, [start_file(small["folder"], 3)], config=config)
    assert listed() == ["0_1", "2_3"]
    assert first in manifest(current_snapshot_path(db)) and files_on_disk(db)[first] == stat
    same_lines()
    (pair,) = [n for n in manifest(current_snapshot_path(db)) if n.startswith("2_3-")]
    lines = snapshot_dir(db) / LINES
    assert parquet_rows(lines / pair) == 4
    unload_and_publish(con, 2, config)
    (alone,) = [n for n in manifest(current_snapshot_path(db)) if n.startswith("2_3-")]
    assert alone != pair
    assert parquet_rows(lines / alone) == 2
    same_lines()


def test_ranges_of_two_sizes(small, monkeypatch):
    """With CHUNKS = (4, 2): after loads 1-5, by hand, the closed ranges are 0-3 (5 >= 3) and
    4-5 (5 >= 5): two files `0_3-` and `4_5-`; after load 6, also `6-` alone (range 4-7 of 4
    is not closed, 6-7 of 2 neither). The snapshot reads exactly the warehouse's 12 lines."""
    monkeypatch.setattr(publish_module, "CHUNKS", (4, 2))
    db, con, config = small["db"], small["con"], small["config"]
    load_paths(con, [start_file(small["folder"], i) for i in range(1, 6)])  # not published
    publish(con, config)
    assert sorted(n.split("-")[0] for n in manifest(current_snapshot_path(db))) == ["0_3", "4_5"]
    load_paths(con, [start_file(small["folder"], 6)], config=config)
    names = sorted(n.split("-")[0] for n in manifest(current_snapshot_path(db)))
    assert names == ["0_3", "4_5", "6"]
    snap = open_snapshot(current_snapshot_path(db))
    assert snap.execute("select count(*) from billing_lines").fetchone() == (12,)
    assert rows(snap, "select * from billing_lines") == rows(con, "select * from billing_lines")
    snap.close()
