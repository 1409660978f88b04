"""The cache of first-reported figures of mart_state_of_play_revisions (issue 20, item 1).

A month's first-reported figure is a pure function of its key (month, cutoff load id, last
delivery date seen, grace_days, stabilisation_days, the ledger's ids up to the cutoff, the
version of sql/). Each publication stores the keys the default mart needs
(etl/base/revisions_cache.py); the mart reads a matching row and recomputes the others. These
tests check that the mart gives the same rows with the cache as with the cache emptied, on
generated data loaded a month at a time (several as-of dates, report months, a max_load_id
view, a vintage), and on small hand-worked warehouses: a late line changes a month's figure now
but not its first-reported figure, an unloaded load invalidates the keys it touched, and
another grace_days reads no cached row.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from etl.base import publish, warehouse
from etl.base.config import load_config
from etl.base.revisions_cache import refresh_first_reported
from etl.base.warehouse import dict_rows
from tests.conftest import write_delimited
from tests.sqlcase import INIT5, INIT7, INIT10, RED10, run_cli

HEADER = ["patient_id", "pharmacy_id", "delivery_date", "cnk", "quantity", "billing_month"]
CONFIG = load_config()


def _load(db, path) -> None:
    status, out = run_cli("--db", str(db), "load", str(path), "--no-progress")
    assert status == 0, out


def _load_rows(folder, db, name: str, rows: list[list]) -> None:
    _load(db, write_delimited(folder / name, HEADER, rows))


def _new_warehouse(folder):
    """An empty warehouse whose loads publish (its snapshot folder exists, as once a dashboard
    has served it): each load below fills the cache as a real publication does."""
    db = folder / "w.duckdb"
    publish.snapshot_dir(db).mkdir(parents=True)
    return db


def _revisions(
    db,
    *,
    cache: bool = True,
    config=CONFIG,
    as_of: dt.date | None = None,
    report_month: dt.date | None = None,
    max_load_id: int | None = None,
    vintage: dt.date | None = None,
) -> list[dict]:
    """The mart's rows; without `cache`, read in a transaction that empties the cache and is
    rolled back (the warehouse is left as it was)."""
    con = warehouse.connect(db, config=config)
    try:
        warehouse.apply_settings(con, config, as_of, max_load_id, vintage)
        con.execute("set variable report_month = ?::date", [report_month])
        con.execute("begin transaction")
        if not cache:
            con.execute("delete from first_reported_cache")
        rows = dict_rows(
            con, "select * from mart_state_of_play_revisions order by month_start_date, scheme"
        )
        con.execute("rollback")
    finally:
        con.close()
    return rows


def _cutoffs(db, config=CONFIG, **settings) -> list[dict]:
    con = warehouse.connect(db, read_only=True, config=config)
    try:
        warehouse.apply_settings(con, config, settings.get("as_of"))
        return dict_rows(con, "select * from revisions_cutoffs order by month_start_date")
    finally:
        con.close()


def _cache(db) -> list[dict]:
    con = warehouse.connect(db, read_only=True)
    try:
        return dict_rows(
            con, "select * from first_reported_cache order by month_start_date, load_id, scheme"
        )
    finally:
        con.close()


def _by_month(rows: list[dict], scheme: str = "total") -> dict:
    return {r["month"]: r for r in rows if r["scheme"] == scheme}


# --- generated data, a month at a time ---------------------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """A year of generated exports (2024), loaded one monthly file at a time, each load
    published."""
    folder = tmp_path_factory.mktemp("generated")
    exports = folder / "exports"
    status, _ = run_cli(
        "generate", "--output", str(exports), "--start", "2024-01-01", "--end", "2024-12-31",
        "--weekly-starts", "12", "--seed", "2020",
    )  # fmt: skip
    assert status == 0
    db = _new_warehouse(folder)
    for path in sorted(exports.glob("export_*.csv")):
        _load(db, path)
    return db


def test_publication_stores_every_first_report_the_default_mart_needs(generated):
    """After the last publication every month of the default mart whose source is not
    'current' is read from the cache, one row per scheme (5, 7, 10), and a second refresh
    computes nothing."""
    cutoffs = _cutoffs(generated)
    reported = [c for c in cutoffs if c["first_reported_source"] != "current"]
    assert len(reported) >= 10  # the monthly files complete the months of 2024 one by one
    assert all(c["is_cached"] for c in reported)
    assert len(_cache(generated)) >= 3 * len(reported)  # earlier as-of dates added more keys
    con = warehouse.connect(generated, config=CONFIG)
    try:
        assert refresh_first_reported(con, CONFIG) == 0
    finally:
        con.close()


def test_the_published_snapshot_equals_the_mart_without_the_cache(generated):
    """The snapshot's table (computed in the copy, from the cache copied with it) holds the
    rows the mart gives with the cache emptied."""
    path = publish.current_snapshot_path(generated)
    con = publish.open_snapshot(path)
    try:
        published = dict_rows(
            con,
            "select * from published.mart_state_of_play_revisions "
            "order by month_start_date, scheme",
        )
    finally:
        con.close()
    assert published == _revisions(generated, cache=False)


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"as_of": dt.date(2024, 10, 15)},
        {"as_of": dt.date(2024, 7, 31)},
        {"report_month": dt.date(2024, 8, 1)},
        {"max_load_id": 6},
        {"max_load_id": 9, "as_of": dt.date(2024, 8, 20)},
        {"vintage": dt.date(2024, 11, 30)},
    ],
    ids=["default", "as-of-oct-15", "as-of-jul-31", "report-aug", "load-6", "load-9-aug-20",
         "vintage-nov"],
)  # fmt: skip
def test_the_mart_with_the_cache_equals_the_mart_without(generated, settings):
    with_cache = _revisions(generated, **settings)
    without = _revisions(generated, cache=False, **settings)
    assert len(with_cache) == 12 * 4
    assert with_cache == without
    # Not a trivial equality: late billing revises some month's figure.
    assert any(r["patients_initiated_revision"] != 0 for r in without)


# --- hand-worked warehouses ------------------------------------------------------------------

# May 2025: A, B, C, D initiate (Saturday 31 May is May's last working day, so the May file
# completes May). P initiated on 1 April and again on 12 May, with no step between: with
# grace_days 30 the April programme stopped after 1 April + 30 = 1 May, so 12 May opens a new
# programme in May; with grace_days 60 it still runs on 12 May (<= 31 May): a repeat, no May
# programme.
MAY = [
    ["A", "PH1", "05/05/2025", INIT10, 1, "2025-05"],
    ["B", "PH1", "12/05/2025", INIT5, 1, "2025-05"],
    ["C", "PH2", "20/05/2025", INIT10, 1, "2025-05"],
    ["D", "PH2", "31/05/2025", INIT10, 1, "2025-05"],
    ["A", "PH1", "05/05/2025", RED10, 1, "2025-05"],
    ["P", "PH3", "01/04/2025", INIT10, 1, "2025-05"],
    ["P", "PH3", "12/05/2025", INIT10, 1, "2025-05"],
]
# A file with one line: L initiates on 10 June (its latest delivery, 10 June, completes no month).
EARLY_JUNE = [["L", "PH1", "10/06/2025", INIT10, 1, "2025-06"]]
# June 2025 (Monday 30 June, June's last working day): E and F initiate; I's initiation of
# 15 May arrives late, billed in June.
JUNE = [
    ["E", "PH1", "10/06/2025", INIT7, 1, "2025-06"],
    ["F", "PH1", "30/06/2025", INIT10, 1, "2025-06"],
    ["I", "PH3", "15/05/2025", INIT7, 1, "2025-06"],
]


@pytest.fixture()
def three_loads(tmp_path):
    """Load 1 = MAY, load 2 = EARLY_JUNE, load 3 = JUNE, each published."""
    db = _new_warehouse(tmp_path)
    _load_rows(tmp_path, db, "export_2025-05.csv", MAY)
    _load_rows(tmp_path, db, "export_2025-06a.csv", EARLY_JUNE)
    _load_rows(tmp_path, db, "export_2025-06b.csv", JUNE)
    return db


def test_a_late_line_changes_the_figure_now_not_the_cached_first_report(three_loads):
    """May, first reported by load 1 (its latest delivery, Saturday 31 May, is May's last
    working day), over lines up to 31 May: A, C, D, P (10 steps) and B (5 steps) = 5. The
    publication after load 1 cached it: (May, load 1, 31 May, [1]) -> 5: 1, 7: 0, 10: 4.
    Load 3 brings I's initiation of 15 May (7 steps): May now = 6, first reported still 5 —
    read from the row cached after load 1, unchanged."""
    cache = [r for r in _cache(three_loads) if r["month_start_date"] == dt.date(2025, 5, 1)]
    assert [(r["load_id"], r["last_date"], r["ledger_load_ids"], r["scheme"], r["n_patients"])
            for r in cache] == [
        (1, dt.date(2025, 5, 31), [1], 5, 1),
        (1, dt.date(2025, 5, 31), [1], 7, 0),
        (1, dt.date(2025, 5, 31), [1], 10, 4),
    ]  # fmt: skip
    may = _by_month(_revisions(three_loads))["2025-05"]
    assert (may["first_reported_source"], may["first_reported_load_id"]) == ("ledger", 1)
    assert (may["patients_initiated_first_reported"], may["patients_initiated"]) == (5, 6)
    assert _by_month(_revisions(three_loads), "7")["2025-05"]["patients_initiated_revision"] == 1
    # June, first reported by load 3 (30 June): E, F and L (loaded by load 2) = 3 = now.
    june = _by_month(_revisions(three_loads))["2025-06"]
    assert (june["first_reported_load_id"], june["patients_initiated_first_reported"]) == (3, 3)


def test_the_mart_reads_the_cached_row(three_loads):
    """A cached row is what the mart prints (here a row altered on purpose, 4 -> 40 for scheme
    10 in May, in a transaction rolled back): the figure is looked up, not recomputed. With
    the cache emptied, the recomputation gives 5 again."""
    con = warehouse.connect(three_loads, config=CONFIG)
    try:
        con.execute("begin transaction")
        con.execute(
            "update first_reported_cache set n_patients = 40 "
            "where month_start_date = '2025-05-01' and scheme = 10"
        )
        (total,) = con.execute(
            "select patients_initiated_first_reported from mart_state_of_play_revisions "
            "where month = '2025-05' and scheme = 'total'"
        ).fetchone()
        con.execute("rollback")
    finally:
        con.close()
    assert total == 1 + 0 + 40
    may = _by_month(_revisions(three_loads, cache=False))["2025-05"]
    assert may["patients_initiated_first_reported"] == 5


def test_an_unload_invalidates_the_first_reports_after_it(three_loads):
    """June's first report is load 3's (the first load reaching Monday 30 June): E, F and L =
    3, cached under the ledger ids [1, 2, 3]. Unloading load 2 removes L's line: June's first
    report is still load 3's, now over loads 1 and 3: E, F = 2. The cached row [1, 2, 3] no
    longer matches (and the publication after the unload deletes it); May's row (cutoff load
    1 < 2) is kept."""
    before = {(r["month_start_date"], r["scheme"]): r for r in _cache(three_loads)}
    status, out = run_cli("--db", str(three_loads), "unload", "2")
    assert status == 0, out
    june = _by_month(_revisions(three_loads))["2025-06"]
    assert (june["first_reported_load_id"], june["patients_initiated_first_reported"]) == (3, 2)
    assert (
        june["patients_initiated_first_reported"]
        == _by_month(_revisions(three_loads, cache=False))["2025-06"][
            "patients_initiated_first_reported"
        ]
    )
    after = _cache(three_loads)
    june_rows = [r for r in after if r["month_start_date"] == dt.date(2025, 6, 1)]
    assert {tuple(r["ledger_load_ids"]) for r in june_rows} == {(1, 3)}
    assert sum(r["n_patients"] for r in june_rows) == 2
    may_rows = [r for r in after if r["month_start_date"] == dt.date(2025, 5, 1)]
    assert may_rows == [before[(dt.date(2025, 5, 1), s)] for s in (5, 7, 10)]


def test_another_grace_days_reads_no_cached_row(three_loads):
    """With grace_days 60, P's initiation of 12 May is a repeat of the April programme (still
    running: 12 May <= 1 April + 60 = 31 May): May first reported A, B, C, D = 4 (10 steps:
    3), not the 5 cached for grace_days 30. No cached row matches; the figure is the
    recomputation."""
    config = dataclasses.replace(CONFIG, grace_days=60)
    assert not any(c["is_cached"] for c in _cutoffs(three_loads, config))
    rows = _revisions(three_loads, config=config)
    may = _by_month(rows)["2025-05"]
    assert may["patients_initiated_first_reported"] == 4
    assert _by_month(rows, "10")["2025-05"]["patients_initiated_first_reported"] == 3
    assert rows == _revisions(three_loads, config=config, cache=False)


def test_an_archived_pack_is_cached_by_its_last_load_and_as_of_date(three_loads, tmp_path):
    """A June pack issued as of 15 June after the three loads (it saw loads 1 to 3) is June's
    first report: E and L (both 10 June) = 2 (F, 30 June, came after it). The next publication
    caches it as (June, load 3, 15 June, [1, 2, 3]); the mart reads it from there, and gives
    the same rows with the cache emptied."""
    status, out = run_cli(
        "--db", str(three_loads), "report", "--month", "2025-06", "--as-of", "2025-06-15",
        "--format", "xlsx", "--lang", "en", "--output", str(tmp_path / "june.xlsx"),
        "--no-suppress",
    )  # fmt: skip
    assert status == 0, out
    con = warehouse.connect(three_loads, config=CONFIG)
    try:
        publish.publish(con, CONFIG)
    finally:
        con.close()
    june_rows = [
        (r["load_id"], r["last_date"], r["ledger_load_ids"], r["scheme"], r["n_patients"])
        for r in _cache(three_loads)
        if r["month_start_date"] == dt.date(2025, 6, 1) and r["last_date"] == dt.date(2025, 6, 15)
    ]
    assert june_rows == [
        (3, dt.date(2025, 6, 15), [1, 2, 3], 5, 0),
        (3, dt.date(2025, 6, 15), [1, 2, 3], 7, 1),
        (3, dt.date(2025, 6, 15), [1, 2, 3], 10, 1),
    ]
    june_cutoff = [c for c in _cutoffs(three_loads) if c["month"] == "2025-06"][0]
    assert (june_cutoff["first_reported_source"], june_cutoff["is_cached"]) == ("archive", True)
    rows = _revisions(three_loads)
    june = _by_month(rows)["2025-06"]
    assert (june["first_reported_report_id"], june["patients_initiated_first_reported"]) == (1, 2)
    assert june["patients_initiated"] == 3
    assert rows == _revisions(three_loads, cache=False)
