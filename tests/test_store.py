"""The core store (etl/base/store.py, issue 20): the as-of-independent core kept as tables,
refreshed for the patients a load touches, and filtered to any as-of date instead of computed
again. Every figure must be the views' own: each test compares the store-backed core
(etl.base.publish.materialise_core when the store is valid) with the core computed from the
views on a cursor of its own, for every core view and every mart.

Real exports written to disk, loaded by the real loader into a real DuckDB file.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest

from etl.base import publish, store
from etl.base.config import load_config
from etl.base.warehouse import apply_settings, connect
from etl.ingest.load import load_paths
from etl.ingest.unload import unload_and_publish
from etl.synthetic.generate import generate
from tests.conftest import write_delimited
from tests.sqlcase import FOLLOW, INIT10, RED10, STAB

HEADER = ["patient_id", "pharmacy_id", "delivery_date", "cnk", "quantity"]
INIT5 = "5521950"


def _rows(cursor, name: str) -> list[str]:
    return sorted(map(repr, cursor.execute(f"select * from {name}").fetchall()))


def _views_cursor(con, config, as_of):
    """A cursor whose core is computed from the views, as before the store existed."""
    cursor = con.cursor()
    apply_settings(cursor, config, as_of)
    for name in publish.core_view_names():
        cursor.execute(f"create or replace temp table {name} as select * from main.{name}")
    return cursor


def _store_cursor(con, config, as_of, lazy=False):
    """A cursor whose core comes from the store (asserting it does)."""
    cursor = con.cursor()
    apply_settings(cursor, config, as_of)
    assert store.store_valid(cursor)
    publish.materialise_core(cursor, lazy=lazy)
    return cursor


def differences(con, config, as_of, lazy=False) -> list[str]:
    """The core views and marts whose rows differ between the store and the views."""
    by_store = _store_cursor(con, config, as_of, lazy)
    by_views = _views_cursor(con, config, as_of)
    try:
        names = [*publish.core_view_names(), *publish.mart_names(con)]
        return [n for n in names if _rows(by_store, n) != _rows(by_views, n)]
    finally:
        by_store.close()
        by_views.close()


def store_content(con) -> dict[str, list[str]]:
    """Every row of the store's tables, sorted, and of store_meta but its generation (a new
    random token at each rebuild)."""
    meta = f"(select * from main.store_meta where key <> '{store.GENERATION}')"
    return {
        **{table: _rows(con, f"main.{table}") for table in store.STORED_VIEWS},
        "store_meta": _rows(con, meta),
    }


def assert_store_is_a_rebuild(con, config) -> None:
    """The store of `con` (refreshed patient by patient) equals the store computed in one go:
    store_meta emptied, refresh_store rebuilds it, every row the same."""
    refreshed = store_content(con)
    con.execute("delete from store_meta")
    assert store.refresh_store(con, config) == "rebuilt"
    assert store_content(con) == refreshed


# --- generated data, one monthly file at a time ----------------------------------------------


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    out = tmp_path_factory.mktemp("store_exports")
    result = generate(
        out, seed=31, start=dt.date(2023, 7, 1), end=dt.date(2024, 1, 31), weekly_starts=5,
        split="month",
    )  # fmt: skip
    return sorted(result.files)


@pytest.mark.parametrize("diff_min_rows", [store.DIFF_MIN_ROWS, 0], ids=["whole", "difference"])
def test_store_matches_the_views_after_each_load(exports, tmp_path, monkeypatch, diff_min_rows):
    """Each monthly file loaded alone, the store refreshed for its patients (their rows written
    whole, or by difference as at 10x volume: store.DIFF_MIN_ROWS); then every core
    view and mart equal through the store and through the views, at the default as-of date and
    (after the third and the last load) at six others: before the first delivery, a mid-month day, a month end,
    a day with an initiation, the day before it, and after the last delivery."""
    monkeypatch.setattr(store, "DIFF_MIN_ROWS", diff_min_rows)
    config = load_config()
    con = connect(tmp_path / "w.duckdb", config=config)
    try:
        for i, path in enumerate(exports):
            (outcome,) = load_paths(con, [path])
            assert outcome.summary is not None, outcome.refused
            assert store.refresh_store(con, config) == ("rebuilt" if i == 0 else "patients")
            assert store.refresh_store(con, config) == "current"
            dates = [None]
            if i in (2, len(exports) - 1):
                first, last, initiation = con.execute(
                    "select min(delivery_date), max(delivery_date), "
                    "max(delivery_date) filter (where cnk = ?) from billing_lines",
                    [INIT10],
                ).fetchone()
                mid = first + (last - first) / 2
                dates += [
                    first - dt.timedelta(days=1),
                    mid.replace(day=15),
                    (mid.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
                    - dt.timedelta(days=1),
                    initiation,
                    initiation - dt.timedelta(days=1),
                    last + dt.timedelta(days=40),
                ]
            for as_of in dates:
                assert differences(con, config, as_of) == [], (path.name, as_of)
        # The store refreshed patient by patient is the store computed in one go.
        assert_store_is_a_rebuild(con, config)
    finally:
        con.close()


# --- hand-built cases ------------------------------------------------------------------------


def _load(con, path, config=None):
    (outcome,) = load_paths(con, [path], config=config)
    return outcome


def _programmes(con, config, as_of=None, *, from_store=True):
    cursor = (_store_cursor if from_store else _views_cursor)(con, config, as_of)
    try:
        return cursor.execute(
            "select patient_id, programme_number, start_date, status, completed_date, "
            "stop_date, n_initiation_events, n_reduction_events from core_programmes "
            "order by patient_id, programme_number"
        ).fetchall()
    finally:
        cursor.close()


def late_files(tmp_path):
    """File 1 (June 2025 export):
      P1: a 5-step initiation on 2025-01-06, three 10-capsule reductions the same day and a
          fourth on 2025-01-20;
      P2: a 10-step initiation on 2025-03-10;
      P3: a 10-step initiation on 2025-04-01 and a 10-capsule reduction on 2025-04-08;
      P4: 10-step initiations on 2025-05-01 and 2025-06-10;
      P9: a 10-step initiation on 2025-06-30 (the latest delivery: the default as-of date).
    File 2, late lines:
      P1: a fifth 10-capsule reduction delivered 2025-02-10;
      P2: a 10-step initiation delivered 2025-03-01, before the one already loaded."""
    first = write_delimited(
        tmp_path / "one.csv",
        HEADER,
        [
            ["P1", "PH1", "06/01/2025", INIT5, "1"],
            ["P1", "PH1", "06/01/2025", RED10, "3"],
            ["P1", "PH1", "20/01/2025", RED10, "1"],
            ["P2", "PH2", "10/03/2025", INIT10, "1"],
            ["P3", "PH2", "01/04/2025", INIT10, "1"],
            ["P3", "PH2", "08/04/2025", RED10, "1"],
            ["P4", "PH1", "01/05/2025", INIT10, "1"],
            ["P4", "PH1", "10/06/2025", INIT10, "1"],
            ["P9", "PH3", "30/06/2025", INIT10, "1"],
        ],
    )
    second = write_delimited(
        tmp_path / "two.csv",
        HEADER,
        [
            ["P1", "PH1", "10/02/2025", RED10, "1"],
            ["P2", "PH2", "01/03/2025", INIT10, "1"],
        ],
    )
    return first, second


def test_late_lines_change_old_programmes(tmp_path):
    """SPEC §5 by hand (grace_days 30, the default):
    After file 1, as of 2025-06-30: P1's programme (5-step, started 2025-01-06) has 4
    reductions of 10 capsules: the three of 01-06 cover 01-06..02-04, the fourth (01-20)
    starts after them, 02-05, and covers until 2025-02-14; 2025-06-30 >
    2025-02-14 + 30 = 2025-03-16: stopped on 2025-02-14. P2's starts 2025-03-10, no step,
    2025-06-30 > 2025-03-10 + 30: stopped on 2025-03-10. P9's started on the as-of date: in
    progress.
    After file 2: P1's fifth reduction (2025-02-10) is reduction number 5 of a 5-step scheme:
    completed on 2025-02-10 (no stop). P2's first initiation is now 2025-03-01: its programme
    starts then, and on 2025-03-10 (<= 2025-03-01 + 30, no step) it still runs, so the 03-10
    initiation is a repeat initiation in it: one programme, two initiation events, stopped on
    its start 2025-03-01 (2025-06-30 > 2025-03-31).
    As of 2025-02-09 (before both late lines' effects matter for P1): P1 has 4 reductions,
    covered until 2025-02-14: in progress; P2 has no programme yet.
    P3: started 2025-04-01, its reduction on 04-08 covers 04-08..04-17; as of 2025-06-30
    (> 04-17 + 30) stopped on 2025-04-17, first reduction 2025-04-08. As of 2025-04-05 it has
    no reduction yet (first_reduction_date null) and runs (04-05 <= 04-01 + 30).
    P4: programme 1 opens 2025-05-01; with no step it runs until 05-31, so the 06-10 initiation
    opens programme 2. As of 2025-06-30: programme 1 stopped on 05-01, programme 2 in progress
    (06-30 <= 06-10 + 30). As of 2025-05-20 only programme 1 exists, with no next start (the
    next opening is not known yet)."""
    config = load_config()
    con = connect(tmp_path / "w.duckdb", config=config)
    try:
        first, second = late_files(tmp_path)
        _load(con, first, config)
        assert _programmes(con, config) == [
            ("P1", 1, dt.date(2025, 1, 6), "stopped", None, dt.date(2025, 2, 14), 1, 4),
            ("P2", 1, dt.date(2025, 3, 10), "stopped", None, dt.date(2025, 3, 10), 1, 0),
            ("P3", 1, dt.date(2025, 4, 1), "stopped", None, dt.date(2025, 4, 17), 1, 1),
            ("P4", 1, dt.date(2025, 5, 1), "stopped", None, dt.date(2025, 5, 1), 1, 0),
            ("P4", 2, dt.date(2025, 6, 10), "in_progress", None, None, 1, 0),
            ("P9", 1, dt.date(2025, 6, 30), "in_progress", None, None, 1, 0),
        ]
        _load(con, second)  # no config: the store is refreshed below, for P1 and P2 only
        assert store.refresh_store(con, config) == "patients"
        expected = [
            ("P1", 1, dt.date(2025, 1, 6), "completed", dt.date(2025, 2, 10), None, 1, 5),
            ("P2", 1, dt.date(2025, 3, 1), "stopped", None, dt.date(2025, 3, 1), 2, 0),
            ("P3", 1, dt.date(2025, 4, 1), "stopped", None, dt.date(2025, 4, 17), 1, 1),
            ("P4", 1, dt.date(2025, 5, 1), "stopped", None, dt.date(2025, 5, 1), 1, 0),
            ("P4", 2, dt.date(2025, 6, 10), "in_progress", None, None, 1, 0),
            ("P9", 1, dt.date(2025, 6, 30), "in_progress", None, None, 1, 0),
        ]
        assert _programmes(con, config) == expected
        assert _programmes(con, config, from_store=False) == expected
        assert _programmes(con, config, dt.date(2025, 2, 9)) == [
            ("P1", 1, dt.date(2025, 1, 6), "in_progress", None, None, 1, 4),
        ]
        cursor = _store_cursor(con, config, None)
        try:
            repeat = cursor.execute(
                "select delivery_date from core_programme_events "
                "where patient_id = 'P2' and is_repeat_initiation"
            ).fetchall()
            assert repeat == [(dt.date(2025, 3, 10),)]
        finally:
            cursor.close()
        # P3's first reduction (2025-04-08) is after 2025-04-05: not known as of that day.
        for as_of, first_reduction in ((None, dt.date(2025, 4, 8)), (dt.date(2025, 4, 5), None)):
            cursor = _store_cursor(con, config, as_of)
            try:
                assert cursor.execute(
                    "select first_reduction_date, n_reduction_events, status "
                    "from core_programmes where patient_id = 'P3'"
                ).fetchall() == [(first_reduction, 1 if as_of is None else 0,
                                  "stopped" if as_of is None else "in_progress")]  # fmt: skip
            finally:
                cursor.close()
        cursor = _store_cursor(con, config, dt.date(2025, 5, 20))
        try:
            assert cursor.execute(
                "select programme_number, start_date, next_start_date "
                "from core_programme_openings where patient_id = 'P4'"
            ).fetchall() == [(1, dt.date(2025, 5, 1), None)]
        finally:
            cursor.close()
        for as_of in (None, dt.date(2025, 1, 5), dt.date(2025, 2, 9), dt.date(2025, 3, 5),
                      dt.date(2025, 4, 5), dt.date(2025, 4, 8), dt.date(2025, 5, 20)):  # fmt: skip
            assert differences(con, config, as_of) == [], as_of
        # As a report reads them (the core views of few marts left as views).
        assert differences(con, config, dt.date(2025, 4, 5), lazy=True) == []
    finally:
        con.close()


def test_unload_restores_the_previous_store(tmp_path):
    """File 1 then file 2 loaded, file 2 unloaded: the store is again exactly what it was after
    file 1 alone (every row of its tables, and the loads it reflects: [1])."""
    config = load_config()
    con = connect(tmp_path / "w.duckdb", config=config)
    try:
        first, second = late_files(tmp_path)
        _load(con, first, config)
        before = store_content(con)
        outcome = _load(con, second, config)
        assert store_content(con) != before
        unload_and_publish(con, outcome.summary.load_id, config)
        assert store_content(con) == before
        (load_ids,) = con.execute("select value from store_meta where key = 'load_ids'").fetchone()
        assert json.loads(load_ids) == [1]
        assert differences(con, config, None) == []
    finally:
        con.close()


def test_refused_file_leaves_the_store_unchanged(tmp_path):
    """A file the loader refuses (no patient column) stores nothing: the store is unchanged
    and current."""
    config = load_config()
    con = connect(tmp_path / "w.duckdb", config=config)
    try:
        first, _ = late_files(tmp_path)
        _load(con, first, config)
        before = store_content(con)
        bad = write_delimited(
            tmp_path / "bad.csv", ["pharmacy_id", "delivery_date", "cnk", "quantity"],
            [["PH1", "06/01/2025", INIT5, "1"]],
        )  # fmt: skip
        outcome = _load(con, bad, config)
        assert outcome.refused is not None
        assert store_content(con) == before
        assert store.refresh_store(con, config) == "current"
    finally:
        con.close()


def test_other_configuration_reads_the_views(tmp_path):
    """A configuration with grace_days 5 is not the store's (computed with 30): the core is
    computed from the views, and gives their figures. By hand, after both files, as of
    2025-06-30 with grace_days 5: P2's programme starts 2025-03-01 with no step; on 2025-03-10
    > 2025-03-01 + 5 it no longer runs, so the 03-10 initiation opens programme 2. Both are
    stopped on their start dates (2025-06-30 is far past start + 5). P1 is completed as before
    (the grace does not change a completion); P3 stopped at its coverage end 2025-04-17
    (2025-06-30 > 04-17 + 5); P4's two programmes (05-01 and 06-10) both stopped on their
    starts (06-30 > 06-10 + 5)."""
    config = load_config()
    other = dataclasses.replace(config, grace_days=5)
    con = connect(tmp_path / "w.duckdb", config=config)
    try:
        first, second = late_files(tmp_path)
        _load(con, first, config)
        _load(con, second, config)
        cursor = con.cursor()
        apply_settings(cursor, other)
        assert not store.store_valid(cursor)
        publish.materialise_core(cursor)
        rows = cursor.execute(
            "select patient_id, programme_number, start_date, status, stop_date "
            "from core_programmes order by all"
        ).fetchall()
        cursor.close()
        assert rows == [
            ("P1", 1, dt.date(2025, 1, 6), "completed", None),
            ("P2", 1, dt.date(2025, 3, 1), "stopped", dt.date(2025, 3, 1)),
            ("P2", 2, dt.date(2025, 3, 10), "stopped", dt.date(2025, 3, 10)),
            ("P3", 1, dt.date(2025, 4, 1), "stopped", dt.date(2025, 4, 17)),
            ("P4", 1, dt.date(2025, 5, 1), "stopped", dt.date(2025, 5, 1)),
            ("P4", 2, dt.date(2025, 6, 10), "stopped", dt.date(2025, 6, 10)),
            ("P9", 1, dt.date(2025, 6, 30), "in_progress", None),
        ]
        # Every core view and mart as the views give them under that configuration.
        cursor, by_views = con.cursor(), _views_cursor(con, other, None)
        apply_settings(cursor, other)
        publish.materialise_core(cursor)
        try:
            names = [*publish.core_view_names(), *publish.mart_names(con)]
            assert [n for n in names if _rows(cursor, n) != _rows(by_views, n)] == []
        finally:
            cursor.close()
            by_views.close()
        # A vintage or a past load (max_load_id) reads the views too.
        cursor = con.cursor()
        apply_settings(cursor, config, max_load_id=1)
        assert not store.store_valid(cursor)
        cursor.close()
    finally:
        con.close()


# --- h-refresh: the refresh writes only the rows that changed (store.DIFF_MIN_ROWS) ----------


def _rows_by_rowid(con, table: str) -> dict[int, tuple]:
    return {row[0]: row[1:] for row in con.execute(f"select rowid, * from main.{table}").fetchall()}


def test_refresh_writes_only_the_changed_rows(tmp_path, monkeypatch):
    """With every store table refreshed by difference (DIFF_MIN_ROWS 0, as the tables of 10x
    volume are), file 2 of late_files changes these rows, by hand (SPEC §4-5):
    - P1's fifth reduction (2025-02-10) comes after its five events: they keep their numbers and
      every column (the programme's first reduction is still 2025-01-06), so their rows stay
      in place; P1/6 is inserted, and its netted line (PH1, 2025-02-10, RED10).
    - P2's initiation of 2025-03-01 comes before the one of 2025-03-10: the event P2/1 was the
      03-10 initiation and is now the 03-01 one, so the stored P2/1 is deleted and P2/1, P2/2
      inserted; P2's programme now starts 2025-03-01 (its opening row deleted and inserted);
      the netted and initiation lines of 03-10 do not change, those of 03-01 are inserted.
    - P3, P4 and P9 have no new line: untouched.
    Deleted rows are the stored row ids that are gone, inserted rows the new row ids; every
    other row keeps its row id and content. The store is then exactly a rebuild's."""
    monkeypatch.setattr(store, "DIFF_MIN_ROWS", 0)
    config = load_config()
    con = connect(tmp_path / "w.duckdb", config=config)
    try:
        first, second = late_files(tmp_path)
        _load(con, first, config)
        before = {table: _rows_by_rowid(con, table) for table in store.STORED_VIEWS}
        _load(con, second)
        assert store.refresh_store(con, config) == "patients"
        after = {table: _rows_by_rowid(con, table) for table in store.STORED_VIEWS}

        def change(table, columns):
            old, new = before[table], after[table]
            for rowid in old.keys() & new.keys():
                assert old[rowid] == new[rowid], (table, rowid)
            return (
                sorted(tuple(old[r][c] for c in columns) for r in old.keys() - new.keys()),
                sorted(tuple(new[r][c] for c in columns) for r in new.keys() - old.keys()),
            )

        # event_id, delivery_date
        assert change("store_programme_events", (0, 4)) == (
            [("P2/1", dt.date(2025, 3, 10))],
            [("P1/6", dt.date(2025, 2, 10)), ("P2/1", dt.date(2025, 3, 1)),
             ("P2/2", dt.date(2025, 3, 10))],
        )  # fmt: skip
        # patient_id, pharmacy_id, delivery_date, cnk
        assert change("store_netted_lines", (0, 1, 2, 3)) == (
            [],
            [
                ("P1", "PH1", dt.date(2025, 2, 10), RED10),
                ("P2", "PH2", dt.date(2025, 3, 1), INIT10),
            ],
        )
        # patient_id, programme_number, start_date
        assert change("store_programme_openings", (0, 1, 2)) == (
            [("P2", 1, dt.date(2025, 3, 10))],
            [("P2", 1, dt.date(2025, 3, 1))],
        )
        # patient_id, pharmacy_id, delivery_date, scheme
        assert change("store_initiation_lines", (0, 1, 2, 3)) == (
            [],
            [("P2", "PH2", dt.date(2025, 3, 1), 10)],
        )
        assert_store_is_a_rebuild(con, config)
        assert differences(con, config, None) == []
    finally:
        con.close()


def test_refresh_by_difference_replaces_duplicate_rows(tmp_path, monkeypatch):
    """A stored row present twice (here written by hand: P1's netted line PH1 2025-01-06 RED10,
    net 3) pairs with its one recomputed copy twice: neither copy is kept as is, both are
    deleted and the recomputed row inserted once, so that after file 2 P1 has exactly its four
    netted lines (01-06 INIT5 1, 01-06 RED10 3, 01-20 RED10 1, 02-10 RED10 1), as a rebuild."""
    monkeypatch.setattr(store, "DIFF_MIN_ROWS", 0)
    config = load_config()
    con = connect(tmp_path / "w.duckdb", config=config)
    try:
        first, second = late_files(tmp_path)
        _load(con, first, config)
        con.execute(
            "insert into store_netted_lines select * from store_netted_lines "
            "where patient_id = 'P1' and cnk = ? and delivery_date = date '2025-01-06'",
            [RED10],
        )
        _load(con, second)
        assert store.refresh_store(con, config) == "patients"
        p1 = con.execute(
            "select delivery_date, cnk, net_quantity from store_netted_lines "
            "where patient_id = 'P1' order by all"
        ).fetchall()
        assert p1 == sorted([
            (dt.date(2025, 1, 6), INIT5, 1),
            (dt.date(2025, 1, 6), RED10, 3),
            (dt.date(2025, 1, 20), RED10, 1),
            (dt.date(2025, 2, 10), RED10, 1),
        ])  # fmt: skip
        assert_store_is_a_rebuild(con, config)
    finally:
        con.close()


# --- compliance findings kept in the store (core_compliance_findings_causal) ------------------


def _findings(con, config, as_of, *, from_store=True):
    """(rule, event, delivery date, detail key, detail values) of every finding of patients
    C07, C08, C09 and C12 in mart_compliance_findings as of `as_of`."""
    cursor = (_store_cursor if from_store else _views_cursor)(con, config, as_of)
    try:
        return cursor.execute(
            "select rule_id, event_id, delivery_date, detail_key, detail_values "
            "from mart_compliance_findings where patient_id in ('C07', 'C08', 'C09', 'C12') "
            "order by all"
        ).fetchall()
    finally:
        cursor.close()


def compliance_files(tmp_path):
    """File 1:
      C07: a 10-step initiation and a 10-capsule reduction on 2024-01-08 (D1), a second
           10-capsule reduction on 2024-12-30;
      C08: a 10-step initiation and a 10-capsule reduction on 2025-01-06 (a Monday), a second
           10-capsule reduction on 2025-01-10;
      C09: the same as C08;
      C12: a 5-step initiation on 2025-02-03 and four 10-capsule reductions on 2025-02-03,
           02-13, 02-23 and 03-05, a follow-up interview on 2025-03-20.
    File 2, late lines: C12's fifth reduction, delivered 2025-03-15; a stabilisation of C09
    delivered 2025-01-08, between its two reductions."""
    one = write_delimited(
        tmp_path / "c1.csv",
        HEADER,
        [
            ["C07", "PH1", "08/01/2024", INIT10, "1"],
            ["C07", "PH1", "08/01/2024", RED10, "1"],
            ["C07", "PH1", "30/12/2024", RED10, "1"],
            ["C08", "PH1", "06/01/2025", INIT10, "1"],
            ["C08", "PH1", "06/01/2025", RED10, "1"],
            ["C08", "PH1", "10/01/2025", RED10, "1"],
            ["C09", "PH1", "06/01/2025", INIT10, "1"],
            ["C09", "PH1", "06/01/2025", RED10, "1"],
            ["C09", "PH1", "10/01/2025", RED10, "1"],
            ["C12", "PH2", "03/02/2025", INIT5, "1"],
            ["C12", "PH2", "03/02/2025", RED10, "1"],
            ["C12", "PH2", "13/02/2025", RED10, "1"],
            ["C12", "PH2", "23/02/2025", RED10, "1"],
            ["C12", "PH2", "05/03/2025", RED10, "1"],
            ["C12", "PH2", "20/03/2025", FOLLOW, "1"],
        ],
    )
    two = write_delimited(
        tmp_path / "c2.csv",
        HEADER,
        [["C12", "PH2", "15/03/2025", RED10, "1"], ["C09", "PH1", "08/01/2025", STAB, "1"]],
    )
    return one, two


R07 = (
    "R07", "C07/3", dt.date(2024, 12, 30), "r07_reduction_after_max_days",
    {"step_end_date": "2025-01-08", "day_number": "367", "first_reduction_date": "2024-01-08",
     "max_programme_days": "360", "last_allowed_date": "2025-01-01"},
)  # fmt: skip
R08 = (
    "R08", "C08/3", dt.date(2025, 1, 10), "r08_early_delivery",
    {"kind": "reduction", "delivery_date": "2025-01-10", "earliest_date": "2025-01-11",
     "previous_capsules": "10", "previous_delivery_date": "2025-01-06",
     "previous_end_date": "2025-01-15"},
)  # fmt: skip
R08_C09_BEFORE = ("R08", "C09/3", *R08[2:])  # C09's reduction of 2025-01-10, as C08's
R08_C09 = (
    "R08", "C09/3", dt.date(2025, 1, 8), "r08_early_delivery",
    {"kind": "stabilisation", "delivery_date": "2025-01-08", "earliest_date": "2025-01-11",
     "previous_capsules": "10", "previous_delivery_date": "2025-01-06",
     "previous_end_date": "2025-01-15"},
)  # fmt: skip
R12 = (
    "R12", "C12/7", dt.date(2025, 3, 20), "r12_follow_up_after_completion",
    {"delivery_date": "2025-03-20", "completed_date": "2025-03-15"},
)  # fmt: skip


def test_compliance_findings_from_the_store(tmp_path):
    """SPEC §8 by hand (defaults: max_programme_days 360, early_delivery_working_days 3,
    working days Monday to Saturday but public holidays). Each event is numbered in its
    patient's delivery order, the initiation before a reduction of its day.
    R07 (C07): D1 = 2024-01-08; the last allowed day is D1 + 359 = 2025-01-01 (2024 has 366
    days: D1 + 366 = 2025-01-08). The second reduction (event 3, 2024-12-30) follows a reduction
    whose step ends 2024-01-17: it starts on its delivery and ends 2024-12-30 + 9 = 2025-01-08,
    day 2025-01-08 - 2024-01-08 + 1 = 367 > 360: flagged as of 2024-12-30 already (its step end
    is checked, later than that as-of date and D1 before it), not as of 2024-12-29 (not
    delivered).
    R08 (C08): the first reduction's step ends 2025-01-06 + 9 = 2025-01-15 (a Wednesday); three
    working days back from it: 01-14, 01-13, 01-11 (Saturday; Sunday 01-12 skipped), so the
    earliest allowed date is 2025-01-11 and the reduction of 2025-01-10 (event 3) is early:
    flagged as of 2025-01-10 and later, not as of 2025-01-09.
    R12 (C12), after file 1: four reductions of five, no completion: the follow-up interview
    (2025-03-20) is not flagged. File 2's late fifth reduction (2025-03-15, after the fourth's
    step end 03-14: on time for R08, earliest 03-11) completes the programme on 2025-03-15: the
    follow-up, now event 7 (initiation, five reductions before it), is delivered after the
    completion: flagged as of 2025-03-20 and later; as of 2025-03-19 it is not delivered yet,
    and as of 2025-03-14 neither is the completion.
    C09, a late line removing a finding: after file 1 its reduction of 2025-01-10 (event 3) is
    early as C08's. File 2's stabilisation of 2025-01-08 becomes event 3 and the reduction event
    4: the stabilisation follows the reduction of 01-06 (step end 01-15, earliest 01-11) and is
    early (R08, as of 2025-01-08 and later); the reduction now follows a stabilisation: R08 does
    not look at it, and no other rule flags it (not R09: it is a reduction; not R07: its step
    end, 2025-01-10 + 9 = 01-19, is day 14).
    The store recomputes C09 and C12 only (the patients of file 2); C07 and C08 keep their
    stored findings."""
    config = load_config()
    con = connect(tmp_path / "w.duckdb", config=config)
    try:
        one, two = compliance_files(tmp_path)
        _load(con, one, config)
        assert _findings(con, config, None) == [R07, R08, R08_C09_BEFORE]
        _load(con, two)
        assert store.refresh_store(con, config) == "patients"
        cases = {
            None: [R07, R08, R08_C09, R12],
            dt.date(2024, 12, 29): [],
            dt.date(2024, 12, 30): [R07],
            dt.date(2025, 1, 7): [R07],
            dt.date(2025, 1, 8): [R07, R08_C09],
            dt.date(2025, 1, 9): [R07, R08_C09],
            dt.date(2025, 1, 10): [R07, R08, R08_C09],
            dt.date(2025, 3, 14): [R07, R08, R08_C09],
            dt.date(2025, 3, 19): [R07, R08, R08_C09],
            dt.date(2025, 3, 20): [R07, R08, R08_C09, R12],
        }
        for as_of, expected in cases.items():
            assert _findings(con, config, as_of) == expected, as_of
            assert _findings(con, config, as_of, from_store=False) == expected, as_of
            assert differences(con, config, as_of) == [], as_of
    finally:
        con.close()


# --- what store_meta records besides the stamp ------------------------------------------------


def _recorded(con, key: str):
    rows = con.execute("select value from store_meta where key = ?", [key]).fetchall()
    return rows[0][0] if rows else "absent"


def _netted_count(con, config, as_of) -> int:
    cursor = _store_cursor(con, config, as_of)
    try:
        return cursor.execute("select count(*) from core_netted_lines").fetchone()[0]
    finally:
        cursor.close()


def test_last_delivery_date_recorded_with_the_store(tmp_path):
    """store_meta's last_delivery_date is the latest delivery of the store's lines, written
    with the store. By hand (late_files): file 1's latest delivery is P9's, 2025-06-30
    (rebuilt); file 2's lines (2025-02-10, 2025-03-01) are earlier: still 2025-06-30 after its
    refresh; a file 3 (P5, 2025-07-15) moves it to 2025-07-15; unloading file 3 (the store
    rebuilt) brings it back to 2025-06-30.
    Without the key (a store written before it existed) store_core scans the table instead and
    the core still equals the views; the next refresh_store ("current") records it again.
    It is what store_core reads: recorded by hand as 2025-01-01, store_core as of 2025-02-09
    believes every stored line is on or before that day and filters nothing: 11 netted lines
    (P1 4: 01-06 INIT5, 01-06 RED10, 01-20, 02-10; P2 2; P3 2; P4 2; P9 1) instead of P1's 3
    delivered by 2025-02-09 (01-06 INIT5, 01-06 RED10, 01-20)."""
    config = load_config()
    con = connect(tmp_path / "w.duckdb", config=config)
    try:
        first, second = late_files(tmp_path)
        third = write_delimited(tmp_path / "three.csv", HEADER, [["P5", "PH1", "15/07/2025", INIT10, "1"]])  # fmt: skip
        _load(con, first, config)
        assert _recorded(con, store.LAST_DELIVERY) == "2025-06-30"
        _load(con, second)
        assert store.refresh_store(con, config) == "patients"
        assert _recorded(con, store.LAST_DELIVERY) == "2025-06-30"
        outcome = _load(con, third, config)
        assert _recorded(con, store.LAST_DELIVERY) == "2025-07-15"
        unload_and_publish(con, outcome.summary.load_id, config)
        assert _recorded(con, store.LAST_DELIVERY) == "2025-06-30"

        con.execute("delete from store_meta where key = ?", [store.LAST_DELIVERY])
        for as_of in (None, dt.date(2025, 2, 9), dt.date(2025, 6, 30), dt.date(2025, 8, 1)):
            assert differences(con, config, as_of) == [], as_of
        assert store.refresh_store(con, config) == "current"
        assert _recorded(con, store.LAST_DELIVERY) == "2025-06-30"

        assert _netted_count(con, config, dt.date(2025, 2, 9)) == 3
        con.execute(
            "update store_meta set value = '2025-01-01' where key = ?", [store.LAST_DELIVERY]
        )
        assert _netted_count(con, config, dt.date(2025, 2, 9)) == 11
    finally:
        con.close()


def test_last_delivery_date_of_an_empty_store(tmp_path):
    """A warehouse whose only file is refused has a store with no line: last_delivery_date is
    recorded as null, and the core is empty at any as-of date (store and views agree)."""
    config = load_config()
    con = connect(tmp_path / "w.duckdb", config=config)
    try:
        bad = write_delimited(
            tmp_path / "bad.csv", ["pharmacy_id", "delivery_date", "cnk", "quantity"],
            [["PH1", "06/01/2025", INIT5, "1"]],
        )  # fmt: skip
        assert _load(con, bad, config).refused is not None
        store.refresh_store(con, config)
        assert _recorded(con, store.LAST_DELIVERY) is None
        assert _netted_count(con, config, None) == 0
        assert _netted_count(con, config, dt.date(2025, 1, 6)) == 0
        assert differences(con, config, dt.date(2025, 1, 6)) == []
    finally:
        con.close()


def test_generation_changes_at_each_rebuild_but_an_unload(tmp_path):
    """store_meta's generation: a token written by a rebuild (file 1: no store yet), kept by a
    refresh of some patients (file 2: P1 and P2); new when the store is rebuilt with the same
    sql/, settings and ledger (a store table dropped by hand: the rebuilt store is row for row
    the store before), kept by a rebuild whose one cause is an unload (file 2's load removed),
    new when store_meta is lost, and new at a rebuild for another configuration (grace_days
    + 30)."""
    config = load_config()
    con = connect(tmp_path / "w.duckdb", config=config)
    try:
        first, second = late_files(tmp_path)
        _load(con, first, config)
        seen = [_recorded(con, store.GENERATION)]
        assert len(seen[0]) == 32
        outcome = _load(con, second, config)
        assert _recorded(con, store.GENERATION) == seen[0]
        before = store_content(con)
        con.execute("drop table store_initiation_lines")
        assert store.refresh_store(con, config) == "rebuilt"
        assert _recorded(con, store.GENERATION) not in (*seen, "absent", None)
        seen.append(_recorded(con, store.GENERATION))
        assert store_content(con) == before
        unload_and_publish(con, outcome.summary.load_id, config)
        assert _recorded(con, store.GENERATION) == seen[-1]
        con.execute("delete from store_meta")
        assert store.refresh_store(con, config) == "rebuilt"
        assert _recorded(con, store.GENERATION) not in (*seen, "absent", None)
        seen.append(_recorded(con, store.GENERATION))
        other = dataclasses.replace(config, grace_days=config.grace_days + 30)
        assert store.refresh_store(con, other) == "rebuilt"
        assert _recorded(con, store.GENERATION) not in (*seen, "absent", None)
    finally:
        con.close()


# --- a refresh whose commit DuckDB turns into a checkpoint ------------------------------------


def _wal_bytes(db) -> int:
    wal = db.with_name(db.name + ".wal")
    return wal.stat().st_size if wal.exists() else 0


@pytest.mark.parametrize("diff_min_rows", [store.DIFF_MIN_ROWS, 0], ids=["whole", "difference"])
def test_refresh_checkpointing_at_its_commit(tmp_path, monkeypatch, diff_min_rows):
    """When a commit's write-ahead log would pass checkpoint_threshold (16 MiB by default:
    the store refresh at 10x volume), DuckDB checkpoints at the commit instead of appending to
    the log. Forced here on small data (checkpoint_threshold 1 KB, set on the warehouse's
    connection before load_paths, which refreshes the store): after file 2 the log is empty
    (the refresh's commit, the last write, checkpointed), where the same loads without the
    setting leave it non-empty. The store is then, by hand (late_files, file 2: P1's fifth
    reduction, P2's earlier initiation): P1's netted lines 01-06 INIT5 1, 01-06 RED10 3,
    01-20 RED10 1, 02-10 RED10 1; P1 completed on 2025-02-10 with 5 reductions; P2's one
    programme from 2025-03-01 with 2 initiation events; 11 netted lines in all; equal to a
    rebuild and to the views. The warehouse reopens with the same store, current."""
    monkeypatch.setattr(store, "DIFF_MIN_ROWS", diff_min_rows)
    config = load_config()
    first, second = late_files(tmp_path)
    control = tmp_path / "control.duckdb"
    con = connect(control, config=config)
    try:
        _load(con, first, config)
        _load(con, second, config)
        assert _wal_bytes(control) > 0
    finally:
        con.close()

    db = tmp_path / "w.duckdb"
    con = connect(db, config=config)
    try:
        con.execute("set checkpoint_threshold = '1KB'")
        _load(con, first, config)
        _load(con, second, config)
        assert _wal_bytes(db) == 0
        assert store.refresh_store(con, config) == "current"
        refreshed = store_content(con)
    finally:
        con.close()

    con = connect(db, config=config)
    try:
        assert store.refresh_store(con, config) == "current"
        assert store_content(con) == refreshed
        assert con.execute(
            "select delivery_date, cnk, net_quantity from store_netted_lines "
            "where patient_id = 'P1' order by all"
        ).fetchall() == sorted([
            (dt.date(2025, 1, 6), INIT5, 1),
            (dt.date(2025, 1, 6), RED10, 3),
            (dt.date(2025, 1, 20), RED10, 1),
            (dt.date(2025, 2, 10), RED10, 1),
        ])  # fmt: skip
        assert _netted_count(con, config, None) == 11
        programmes = _programmes(con, config)
        assert programmes[0] == (
            "P1", 1, dt.date(2025, 1, 6), "completed", dt.date(2025, 2, 10), None, 1, 5
        )  # fmt: skip
        assert programmes[1][:3] == ("P2", 1, dt.date(2025, 3, 1)) and programmes[1][6] == 2
        assert differences(con, config, None) == []
        assert differences(con, config, dt.date(2025, 2, 9)) == []
        con.execute("delete from store_meta")
        assert store.refresh_store(con, config) == "rebuilt"
        assert store_content(con) == refreshed
    finally:
        con.close()
