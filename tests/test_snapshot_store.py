"""Issue 20: a snapshot carries the core store as a shared base plus a small delta
(etl/base/publish.py copy_store).

The store (etl/base/store.py, 4 tables) lives in `<db>.snapshots/store/base-*.duckdb`, written
once and shared by the snapshots that use it; each snapshot holds the store rows of the patients
changed since its base (`store_delta`), and views `main.store_*` = the base's rows of the other
patients, then the delta's. Whatever the base and delta, the views must give the warehouse's
store row for row, and the marts at any as-of date computed from them must equal those of a full
copy of the warehouse (the reference, made by hand as in tests/test_publish_layout.py).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import duckdb
import pytest

from etl.base import publish as publish_module
from etl.base.config import load_config
from etl.base.publish import (
    BASE_ALIAS,
    DELTA_SCHEMA,
    KEEP,
    STORE_DIR,
    current_snapshot_path,
    ensure_published,
    fresh_snapshot,
    mart_names,
    materialise_core,
    open_snapshot,
    publish,
    snapshot_base,
    snapshot_dir,
)
from etl.base.store import STORED_VIEWS, store_valid
from etl.base.warehouse import apply_settings, connect, ledger_ids, open_duckdb
from etl.ingest.load import load_paths
from etl.ingest.unload import unload_and_publish
from etl.synthetic.generate import generate
from tests.conftest import CANONICAL_HEADER, write_delimited
from tests.sqlcase import INIT10, RED10
from tests.test_publish_layout import full_copy, rows

OTHER_AS_OF = (dt.date(2024, 3, 31), dt.date(2024, 5, 12))


def store_differences(con: duckdb.DuckDBPyConnection, snapshot: Path) -> dict[str, tuple]:
    """For each store table: (rows in the warehouse of `con`, rows of the snapshot's view, rows
    of the snapshot not in the warehouse, rows of the warehouse not in the snapshot), with
    EXCEPT ALL (a multiset difference). The snapshot and its base are attached to `con`."""
    con.execute(f"attach '{snapshot}' as snap (read_only)")
    base = snapshot_base(snapshot)
    if base:
        con.execute(f"attach '{snapshot.parent / base}' as {BASE_ALIAS} (read_only)")
    try:
        out = {}
        for table in STORED_VIEWS:
            w, s = f"select * from main.{table}", f"select * from snap.main.{table}"
            out[table] = tuple(
                con.execute(f"select count(*) from ({q})").fetchone()[0]
                for q in (w, s, f"{s} except all {w}", f"{w} except all {s}")
            )
        return out
    finally:
        con.execute("detach snap")
        if base:
            con.execute(f"detach {BASE_ALIAS}")


def same_store(con: duckdb.DuckDBPyConnection, snapshot: Path) -> None:
    """The snapshot's store views hold exactly the warehouse's store, and it is not empty (its
    events; a hand-made export may flag no compliance finding)."""
    differences = store_differences(con, snapshot)
    for table, (w, s, extra, missing) in differences.items():
        assert (w, extra, missing) == (s, 0, 0), table
    assert differences["store_programme_events"][0] > 0
    assert store_meta(snapshot) == rows(con, "select * from main.store_meta")


def store_meta(snapshot: Path) -> list:
    """The snapshot's store_meta rows, sorted."""
    con = open_snapshot(snapshot, base=False)
    try:
        return rows(con, "select * from main.store_meta")
    finally:
        con.close()


def delta_patients(snapshot: Path) -> list[str]:
    """The patients of the snapshot's delta (store_delta.patients), sorted."""
    con = open_snapshot(snapshot)
    try:
        return [p for (p,) in con.execute(
            f"select patient_id from {DELTA_SCHEMA}.patients order by 1").fetchall()]  # fmt: skip
    finally:
        con.close()


def base_files(db: Path) -> dict[str, tuple[int, int]]:
    """The base files on disk: name -> (inode, mtime in ns)."""
    return {
        p.name: (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in (snapshot_dir(db) / STORE_DIR).glob("base-*.duckdb")
    }


def base_of(db: Path) -> str:
    """The base file name of the warehouse's current snapshot."""
    return Path(snapshot_base(current_snapshot_path(db))).name


# --- a generated history, a month at a time ------------------------------------------------


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    folder = tmp_path_factory.mktemp("snapstore")
    config = load_config()
    exports = folder / "exports"
    generate(
        exports, seed=11, start=dt.date(2024, 1, 1), end=dt.date(2024, 6, 30),
        weekly_starts=6, other_lines=20, today=dt.date(2024, 7, 15),
    )  # fmt: skip
    db = folder / "w.duckdb"
    snapshot_dir(db).mkdir(parents=True)
    con = connect(db, config=config)
    steps = []  # after each load: (snapshot, its store vs the warehouse's, delta patients, base)
    with pytest.MonkeyPatch.context() as patch:
        # A month of this small history touches most of its patients: no compaction here, so
        # that every later snapshot reads the first base through a growing delta.
        patch.setattr(publish_module, "COMPACT_AT", float("inf"))
        for export in sorted(exports.glob("export_*.csv")):
            (outcome,) = load_paths(con, [export], config=config)
            assert outcome.summary is not None, outcome.refused
            path = current_snapshot_path(db)
            steps.append((path, store_differences(con, path), delta_patients(path), base_of(db)))
    reference = full_copy(con, folder / "reference.duckdb")
    yield dict(db=db, con=con, config=config, steps=steps, reference=reference)
    con.close()


def test_each_snapshot_store_equals_the_warehouse_store(history):
    """After each of the six monthly loads, the snapshot's four store views hold exactly the
    warehouse's store tables at that moment (same counts, nothing extra, nothing missing), and
    every one after the first read the first one's base through a non-empty delta that grows
    (the patients of the loads after the base: a cumulative delta)."""
    steps = history["steps"]
    assert len(steps) == 6
    for _, differences, _, _ in steps:
        for table, (w, s, extra, missing) in differences.items():
            assert (w, extra, missing) == (s, 0, 0) and w > 0, table
    assert steps[0][2] == [] and all(step[3] == steps[0][3] for step in steps)
    for (_, _, before, _), (_, _, after, _) in zip(steps[1:], steps[2:], strict=False):
        assert before and set(before) <= set(after)


def test_marts_at_other_as_of_dates_from_the_snapshot_equal_a_full_copy(history):
    """A dashboard reader of the newest snapshot at an as-of date not published (its core from
    the store views: materialise_core, as dashboard/data.py does) gets every mart exactly as
    the views of a full copy of the warehouse compute them, at two as-of dates."""
    snap = open_snapshot(current_snapshot_path(history["db"]))
    ref = open_duckdb(history["reference"], read_only=True)
    try:
        for day in OTHER_AS_OF:
            cur = snap.cursor()  # (the dashboard reads an as-of date on a cursor of its own)
            apply_settings(cur, history["config"], as_of_date=day)
            apply_settings(ref, history["config"], as_of_date=day)
            materialise_core(cur)
            assert cur.execute("select count(*) from temp.core_programme_events").fetchone()[0]
            marts = mart_names(ref)
            assert len(marts) >= 20
            for mart in marts:
                assert rows(cur, f"select * from main.{mart}") == rows(
                    ref, f"select * from main.{mart}"
                ), (day, mart)
            cur.close()
    finally:
        snap.close()
        ref.close()


# --- a hand-made warehouse: which patients, which base --------------------------------------


def _start(i: int) -> list:
    """One programme start for patient P<i>: a 10-step initiation and a first step, delivered
    together on 2024-03-(2+i): every such patient has the same store rows, dates aside."""
    day = f"2024-03-{2 + i:02d}"
    return [[f"P{i}", "PH1", day, INIT10, 1, "0"], [f"P{i}", "PH1", day, RED10, 1, "0"]]


@pytest.fixture
def small(tmp_path):
    config = load_config()
    db = tmp_path / "w.duckdb"
    snapshot_dir(db).mkdir(parents=True)
    con = connect(db, config=config)
    state = dict(db=db, con=con, config=config, folder=tmp_path, n=0)

    def load(lines: list[list]) -> Path:
        state["n"] += 1
        path = write_delimited(tmp_path / f"f{state['n']}.csv", CANONICAL_HEADER, lines)
        (outcome,) = load_paths(state["con"], [path], config=state["config"])
        assert outcome.summary is not None, outcome.refused
        same_store(state["con"], current_snapshot_path(db))
        return current_snapshot_path(db)

    state["load"] = load
    yield state
    state["con"].close()


def test_base_shared_delta_of_new_loads_and_compaction(small):
    """By hand, with COMPACT_AT = 0.30 and patients of the same shape (_start):
    - load 1: P1..P10 -> no snapshot before: a new base (10 patients), an empty delta;
    - loads 2, 3, 4: P11, P12, P13, one each -> the same base file (same inode and mtime),
      the delta the patients of the loads after the base: [P11], [P11, P12], [P11, P12, P13]
      (3 patients of 10: 30 % of the base's rows, not past the fraction);
    - load 5: P14 -> 4 of 10 = 40 % > 30 %: a new base (14 patients), an empty delta;
    - load 6: one more step for P3 (in the base) -> the same base, delta [P3]: P3's rows in the
      base are hidden, its new ones read from the delta (the views equal the warehouse).
    At every step the views equal the warehouse's store (the fixture's `load` checks it)."""
    assert publish_module.COMPACT_AT == 0.30
    load, db = small["load"], small["db"]
    load([line for i in range(1, 11) for line in _start(i)])
    first = base_of(db)
    assert delta_patients(current_snapshot_path(db)) == []
    stat = base_files(db)[first]
    expected = []
    for i in (11, 12, 13):
        path = load(_start(i))
        expected.append(f"P{i}")
        assert base_of(db) == first and base_files(db)[first] == stat
        assert delta_patients(path) == sorted(expected)
    path = load(_start(14))
    second = base_of(db)
    assert second != first and delta_patients(path) == []
    path = load([["P3", "PH1", "2024-03-25", RED10, 1, "0"]])
    assert base_of(db) == second and delta_patients(path) == ["P3"]


def test_new_base_after_an_unload_and_after_a_settings_change(small, monkeypatch):
    """Loads 1 (P1..P3), 2 (P4, and one more step for P2) and 3 (P5) share the base of load 1
    (COMPACT_AT raised: no compaction here): delta [P2, P4, P5]. Unloading load 2 removes a
    load the base does not reflect: the same base, the delta now [P5] only (P4 is gone from
    the warehouse; P2's rows, recomputed without the step, are the base's again, as the
    warehouse's rebuilt store has them). Unloading load 1, which the base
    reflects: a new base, an empty delta. Publishing with another grace_days (the store is
    rebuilt with another settings key): a new base again. The views equal the warehouse's store
    each time."""
    monkeypatch.setattr(publish_module, "COMPACT_AT", float("inf"))
    load, db, con, config = small["load"], small["db"], small["con"], small["config"]
    load([line for i in (1, 2, 3) for line in _start(i)])
    first = base_of(db)
    load([*_start(4), ["P2", "PH1", "2024-03-28", RED10, 1, "0"]])
    path = load(_start(5))
    assert base_of(db) == first and delta_patients(path) == ["P2", "P4", "P5"]
    unload_and_publish(con, 2, config)
    path = current_snapshot_path(db)
    assert base_of(db) == first and delta_patients(path) == ["P5"]
    same_store(con, path)
    unload_and_publish(con, 1, config)
    path = current_snapshot_path(db)
    second = base_of(db)
    assert second != first and delta_patients(path) == []
    same_store(con, path)
    other = dataclasses.replace(config, grace_days=config.grace_days + 30)
    path = publish(con, other)
    assert base_of(db) not in (first, second) and delta_patients(path) == []
    same_store(con, path)


def test_unused_bases_are_pruned_and_an_old_reader_keeps_reading(small, monkeypatch):
    """A reader opens the snapshot after load 2 (base of load 1, delta [P2]) and keeps it.
    With COMPACT_AT = 0 every later load writes a new base; after KEEP + 1 more loads the
    reader's snapshot and base are no longer kept and are deleted. At every step the base files
    on disk are exactly those the kept snapshots read; the reader still reads its 2 patients'
    store rows, the same as before."""
    load, db = small["load"], small["db"]
    load(_start(1))
    monkeypatch.setattr(publish_module, "COMPACT_AT", float("inf"))
    path = load(_start(2))
    reader = open_snapshot(path)
    query = "select * from main.store_programme_events"
    before = rows(reader, query)
    second = open_snapshot(path)  # (the same DuckDB instance: its base is attached already)
    assert rows(second, query) == before
    second.close()
    old_base = base_of(db)
    monkeypatch.setattr(publish_module, "COMPACT_AT", 0.0)
    for i in range(3, 3 + KEEP + 1):
        load(_start(i))
        kept = sorted(snapshot_dir(db).glob("*.duckdb"))
        assert set(base_files(db)) == {Path(snapshot_base(p)).name for p in kept}
    assert old_base not in base_files(db) and not path.exists()
    assert rows(reader, query) == before
    assert [p for (p,) in reader.execute(
        f"select distinct patient_id from ({query}) order by 1").fetchall()] == ["P1", "P2"]  # fmt: skip
    reader.close()


def test_a_missing_base_is_not_fresh_and_is_republished(small):
    """Deleting the current snapshot's base file makes it not fresh; ensure_published then
    publishes a snapshot with a new base, whose views equal the warehouse's store."""
    load, db, con, config = small["load"], small["db"], small["con"], small["config"]
    load(_start(1))
    load(_start(2))
    ids = ledger_ids(con)
    assert fresh_snapshot(db, config, max(ids), ids) is not None
    gone = snapshot_dir(db) / STORE_DIR / base_of(db)
    gone.unlink()
    assert fresh_snapshot(db, config, max(ids), ids) is None
    with pytest.raises(duckdb.IOException):
        open_snapshot(current_snapshot_path(db))
    con.close()
    path = ensure_published(db, config)
    assert path is not None and base_of(db) != gone.name
    small["con"] = con = connect(db, config=config)
    same_store(con, path)
    assert fresh_snapshot(db, config, max(ids), ids) is not None


# --- what store_meta records, in a snapshot -------------------------------------------------


def _netted_lines(snapshot: Path, config, as_of) -> int:
    """The core_netted_lines rows a reader of `snapshot` gets as of `as_of` (materialise_core,
    its core from the store: asserted)."""
    con = open_snapshot(snapshot)
    try:
        cur = con.cursor()
        apply_settings(cur, config, as_of_date=as_of)
        assert store_valid(cur)
        materialise_core(cur)
        return cur.execute("select count(*) from core_netted_lines").fetchone()[0]
    finally:
        con.close()


def test_snapshot_reads_the_last_delivery_date_of_the_warehouse(small, monkeypatch):
    """Load 1: P1..P3 (_start: each an initiation and a step on 2024-03-03, -04, -05): the
    snapshot's store_meta records 2024-03-05; load 2: P4 (2024-03-06): its snapshot (the same
    base, COMPACT_AT raised; delta [P4]) records 2024-03-06, the max of its store view. (store_meta is the
    warehouse's, row for row, at every load: the fixture's `same_store`.)
    A reader as of 2024-03-04 gets P1's and P2's 2 netted lines each: 4; as of the default
    date (2024-03-06) all 8. A snapshot of the earlier layout, without the key (the current
    one copied, the key deleted), gives the same counts: store_core scans its store view."""
    monkeypatch.setattr(publish_module, "COMPACT_AT", float("inf"))
    load, config = small["load"], small["config"]
    path = load([line for i in (1, 2, 3) for line in _start(i)])
    key = "last_delivery_date"
    assert ("(" + repr(key) + ", '2024-03-05')") in store_meta(path)
    path = load(_start(4))
    assert delta_patients(path) == ["P4"]
    assert ("(" + repr(key) + ", '2024-03-06')") in store_meta(path)
    snap = open_snapshot(path)
    try:
        (last,) = snap.execute("select max(delivery_date) from main.store_netted_lines").fetchone()
        assert last == dt.date(2024, 3, 6)
    finally:
        snap.close()
    old = path.parent / "earlier.duckdb"
    old.write_bytes(path.read_bytes())
    con = duckdb.connect(str(old))
    con.execute("delete from main.store_meta where key = ?", [key])
    con.close()
    assert ("(" + repr(key) + ", '2024-03-06')") not in store_meta(old)
    for snapshot in (path, old):
        assert _netted_lines(snapshot, config, dt.date(2024, 3, 4)) == 4
        assert _netted_lines(snapshot, config, None) == 8


def test_a_store_rebuilt_with_the_same_stamp_gets_a_new_base(small, monkeypatch):
    """Load 1 (P1..P3) writes base A; load 2 (P4) reads A with delta [P4] (COMPACT_AT raised:
    no compaction). A store table dropped by hand: the next publication rebuilds the store with
    the same sql/, settings, tables and ledger, but a new generation: a new base B (another
    file), an empty delta. Dropped again, then load 3 (P5):
    rebuilt again, a new base C. Each time the snapshot's store equals the warehouse's (the
    fixture's `load`, and same_store after the publication); load 4 (P6) then reads C with
    delta [P6]."""
    monkeypatch.setattr(publish_module, "COMPACT_AT", float("inf"))
    load, db, con, config = small["load"], small["db"], small["con"], small["config"]
    load([line for i in (1, 2, 3) for line in _start(i)])
    a = base_of(db)
    path = load(_start(4))
    assert base_of(db) == a and delta_patients(path) == ["P4"]
    con.execute("drop table store_programme_openings")
    path = publish(con, config)
    b = base_of(db)
    assert b != a and delta_patients(path) == []
    same_store(con, path)
    con.execute("drop table store_netted_lines")
    path = load(_start(5))
    c = base_of(db)
    assert c not in (a, b) and delta_patients(path) == []
    path = load(_start(6))
    assert base_of(db) == c and delta_patients(path) == ["P6"]
