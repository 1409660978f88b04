"""New data while the dashboard runs: it shows up without a restart, and readers never meet a
lock error or a half-loaded view (they read published snapshots: etl/base/publish.py)."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from bench.served import find_component, render_page, start_server
from tests.browser import start_gunicorn
from tests.conftest import CANONICAL_HEADER, write_delimited

CARD = "state-card-total-patients_initiated"


def _shown(url: str) -> tuple[int, str | None]:
    status, body = render_page(url, "/", "?lang=en&month=2025-04")
    if status != 200:
        return status, str(body)[:300]
    card = find_component(body, CARD)
    return status, card["props"]["children"] if card else None


def _exports(tmp_path):
    # April 2025: 3 patients initiate (first file), then 2 more (second file), by hand 3 then 5.
    first = write_delimited(
        tmp_path / "april-a.csv",
        CANONICAL_HEADER,
        [[f"P{i}", "PH1", f"0{i}/04/2025", "5521976", "1", "23,24"] for i in (1, 2, 3)],
    )
    # The second export also holds 200,000 lines of other medicines, so that its load takes a
    # while and the readers below really overlap with it.
    rows = [[f"P{i}", "PH2", f"1{i}/04/2025", "5521950", "1", "23,24"] for i in (4, 5)]
    rows += [[f"Q{i}", "PH9", "15/04/2025", "1234567", "1", "3,10"] for i in range(200_000)]
    second = write_delimited(tmp_path / "april-b.csv", CANONICAL_HEADER, rows)
    return first, second


@pytest.mark.parametrize("server", ["builtin", "gunicorn"])
def test_a_load_while_serving_shows_up_and_never_breaks_a_page(tmp_path, server):
    first, second = _exports(tmp_path)
    db = tmp_path / "warehouse.duckdb"
    cli = [sys.executable, "-m", "etl.cli", "--db", str(db)]
    assert subprocess.run([*cli, "load", str(first)], capture_output=True).returncode == 0
    process, url = start_gunicorn(db) if server == "gunicorn" else start_server(db)
    try:
        assert _shown(url) == (200, "3")
        seen: list[tuple[int, str | None]] = []
        stop = threading.Event()

        def reader():
            while not stop.is_set():
                seen.append(_shown(url))

        threads = [threading.Thread(target=reader) for _ in range(2)]
        for thread in threads:
            thread.start()
        loaded = subprocess.run([*cli, "load", str(second)], capture_output=True, text=True)
        after = _shown(url)
        stop.set()
        for thread in threads:
            thread.join()
        assert loaded.returncode == 0, loaded.stderr
        # Every answer during the load is a complete state: before (3) or after (5) it, and the
        # readers did overlap with the load (they saw the state before it).
        assert len(seen) >= 5
        assert {status for status, _ in seen} == {200}
        assert "3" in {shown for _, shown in seen} <= {"3", "5"}
        assert after == (200, "5")  # no restart needed
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_one_request_reads_one_snapshot_even_when_a_load_publishes_meanwhile(tmp_path):
    """Every query of one answer reads the snapshot the answer started with: a load that
    publishes between two of its queries shows up at the next request, never half-way."""
    from dashboard.app import create_app
    from dashboard.data import Warehouse
    from etl.cli import main as cli_main

    first, second = _exports(tmp_path)
    db = tmp_path / "w.duckdb"
    assert cli_main(["--db", str(db), "load", str(first), "--no-progress"]) == 0
    app = create_app(db)  # publishes the first snapshot
    reader = Warehouse(db)
    sql = "select patients_initiated from {mart_state_of_play} where month = '2025-04' and scheme = 'total'"
    with app.server.test_request_context():
        before = reader.rows(sql)
        assert cli_main(["--db", str(db), "load", str(second), "--no-progress"]) == 0
        during = reader.rows(sql)
    with app.server.test_request_context():
        after = reader.rows(sql)
    assert before == during == [{"patients_initiated": 3}]
    assert after == [{"patients_initiated": 5}]


def test_published_marts_equal_the_views(served):
    """Publishing computes the core views once (temporary tables hide them, etl/base/publish.py
    materialise_core); every published mart must still hold exactly the rows of its view."""

    from etl.base.config import load_config
    from etl.base.publish import current_snapshot_path, mart_names, open_snapshot, read_snapshot
    from etl.base.warehouse import apply_settings

    path = current_snapshot_path(served.db)
    con = open_snapshot(path)
    try:
        apply_settings(con, load_config(), read_snapshot(con, path).as_of_date)
        marts = mart_names(con)
        assert len(marts) >= 17
        for mart in marts:
            rows, differ = con.execute(
                f"""
                select (select count(*) from published.{mart}),
                       (select count(*) from (select * from published.{mart}
                                              except all select * from main.{mart}))
                     + (select count(*) from (select * from main.{mart}
                                              except all select * from published.{mart}))
                """
            ).fetchone()
            assert differ == 0, mart
            assert rows > 0 or mart.startswith("mart_data_quality"), mart
    finally:
        con.close()


def test_another_as_of_date_reads_the_views_computed_for_that_date(served):
    """A non-default as-of date goes through a cursor whose core views were computed once for
    that date; its marts must equal the views computed from scratch for the same date."""
    import datetime as dt

    from dashboard.data import Warehouse
    from etl.base.config import load_config
    from etl.base.publish import current_snapshot_path, open_snapshot
    from etl.base.warehouse import apply_settings

    as_of = dt.date(2024, 12, 31)
    reader = Warehouse(served.db)
    con = open_snapshot(current_snapshot_path(served.db))
    try:
        apply_settings(con, load_config(), as_of)
        for mart, order in [("mart_state_of_play", "month, scheme"),
                            ("mart_cohorts", "initiation_month, scheme")]:  # fmt: skip
            expected = con.execute(f"select * from {mart} order by {order}").fetchall()
            got = reader.rows(f"select * from {{{mart}}} order by {order}", as_of=as_of)
            assert [tuple(r.values()) for r in got] == expected
            assert max(r["as_of_date"] for r in got) == as_of
    finally:
        con.close()
