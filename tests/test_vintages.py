"""SPEC §15, vintages: the figures as known on a date, and the reporting triangle.

A tiny warehouse, every line with a billing month except one (known from the month its file
was loaded). Fees with the default configuration: an interview 23.24, a preparation 15.71.

| patient | line                            | billing month | known from  |
| A       | initiation scheme 5, 2025-03-10 | 2025-03       | 2025-03-31  |
| A       | reduction 30 caps, 2025-03-20   | 2025-04       | 2025-04-30  |
| B       | initiation scheme 7, 2025-03-25 | 2025-04       | 2025-04-30  |
| C       | initiation scheme 5, 2025-03-05 | 2025-03       | 2025-03-31  |
| C       | the same line, quantity -1      | 2025-05       | 2025-05-31  |
| D       | initiation scheme 10, 2025-04-02| none (load 2 started 2025-05-15) | 2025-05-31 |
"""

from __future__ import annotations

import datetime as dt

from etl import nowcast
from etl.base.config import load_config
from etl.base.warehouse import connect, set_vintage
from tests.sqlcase import INIT5, INIT7, INIT10, RED30, build, cli_json, d, line, run_cli

LINES = [
    line("A", "2025-03-10", INIT5, billing_month="2025-03"),
    line("A", "2025-03-20", RED30, billing_month="2025-04"),
    line("B", "2025-03-25", INIT7, billing_month="2025-04"),
    line("C", "2025-03-05", INIT5, billing_month="2025-03"),
    line("C", "2025-03-05", INIT5, quantity=-1, billing_month="2025-05"),
    line("D", "2025-04-02", INIT10, load_id=2),
]


def warehouse(tmp_path, lines=LINES):
    """The lines above (or `lines`), in load 1 (started 2025-06-02) and load 2 (started
    2025-05-15)."""
    db = build(tmp_path, lines)
    con = connect(db)
    try:
        for i, row in enumerate(lines):
            con.execute(
                "update billing_lines set billing_month = ? where fingerprint = ?",
                [row.get("billing_month"), i],
            )
        for load_id, started in ((1, "2025-06-02 09:00:00"), (2, "2025-05-15 09:00:00")):
            con.execute(
                """
                insert into loads (load_id, file_name, file_sha256, rows_read, rows_new,
                    rows_present, rows_skipped, rows_rejected, started_at, finished_at, seconds)
                values (?, 'f.csv', 'x', 0, 0, 0, 0, 0, ?::timestamp, ?::timestamp, 1)
                """,
                [load_id, started, started],
            )
    finally:
        con.close()
    return db


def report_total(db, month, vintage=None):
    argv = ["report", "--month", month, "--no-suppress"]
    if vintage:
        argv += ["--vintage", vintage]
    return cli_json(db, *argv)


def test_report_as_known_on_two_dates(tmp_path):
    """March 2025 as known on 2025-03-31: only A and C's initiations were billed (in March):
    2 programme starts of scheme 5, no reduction, fees 2 x 23.24 = 46.48; the as-of date is the
    latest delivery among the lines known, 2025-03-10.
    As known on 2025-04-30: A, B and C (B scheme 7), A's reduction (1 step, scheme 5), fees
    3 x 23.24 + 15.71 = 85.43.
    Everything loaded: C's correction (billed in May) cancels C: 2 starts, fees 62.19."""
    db = warehouse(tmp_path)
    march = report_total(db, "2025-03", "2025-03-31")
    assert march["as_of"] == "2025-03-10"
    assert march["schemes"]["total"]["patients_initiated"] == 2
    assert march["schemes"]["5"]["patients_initiated"] == 2
    assert march["schemes"]["total"]["reduction_steps_delivered"] == 0
    assert march["schemes"]["total"]["fees_estimated_eur"] == 46.48
    april = report_total(db, "2025-03", "2025-04-30")
    assert april["schemes"]["total"]["patients_initiated"] == 3
    assert april["schemes"]["7"]["patients_initiated"] == 1
    assert april["schemes"]["5"]["reduction_steps_delivered"] == 1
    assert april["schemes"]["total"]["fees_estimated_eur"] == 85.43
    now = report_total(db, "2025-03")
    assert now["schemes"]["total"]["patients_initiated"] == 2
    assert now["schemes"]["total"]["fees_estimated_eur"] == 62.19


def test_a_line_without_billing_month_is_known_from_the_end_of_its_load_month(tmp_path):
    """D's initiation has no billing month; its file was loaded on 2025-05-15, so it is known
    from 2025-05-31: April has no start as known on 2025-05-30, one (scheme 10) on 2025-05-31."""
    db = warehouse(tmp_path)
    before = report_total(db, "2025-04", "2025-05-30")
    assert before["schemes"]["total"]["patients_initiated"] == 0
    after = report_total(db, "2025-04", "2025-05-31")
    assert after["schemes"]["10"]["patients_initiated"] == 1


def test_cohorts_as_known_on_a_date(tmp_path):
    """Cohorts of March 2025 as known on 2025-03-31: A and C, scheme 5 (2 programmes)."""
    db = warehouse(tmp_path)
    doc = cli_json(db, "cohorts", "--vintage", "2025-03-31", "--no-suppress")
    march = [c for c in doc["cohorts"] if c["initiation_month"] == "2025-03"]
    assert [(c["scheme"], c["programmes"]) for c in march] == [("5", 2)]


def test_reporting_triangle_cells(tmp_path):
    """March 2025, total: programme starts known 2 (vintage March: A, C), 3 (April: + B),
    2 (May: C's correction): cells 2, +1, -1. Fees 46.48, 85.43, 62.19: cells 46.48, 38.95,
    -23.24. Reduction steps 0, 1, 1: cells 0, 1, 0. April, total starts: 0 then 1 (D, known
    from May): cells 0, 1."""
    db = warehouse(tmp_path)
    config = load_config()
    con = connect(db, read_only=True, config=config)
    try:
        history = nowcast.vintage_history(
            con, config, nowcast.month_index("2025-03"), nowcast.month_index("2025-05")
        )
    finally:
        con.close()
    rows = nowcast.triangle_rows(history)

    def cells(month, metric, scheme="total"):
        return [
            r["cell"]
            for r in sorted(rows, key=lambda r: r["lag"])
            if (r["month"], r["metric"], r["scheme"]) == (month, metric, scheme)
        ]

    assert cells("2025-03", "patients_initiated") == [2, 1, -1]
    assert cells("2025-03", "patients_initiated", "5") == [2, 0, -1]
    assert cells("2025-03", "fees_estimated_eur") == [46.48, 38.95, -23.24]
    assert cells("2025-03", "reduction_steps_delivered") == [0, 1, 0]
    assert cells("2025-04", "patients_initiated") == [0, 1]
    assert cells("2025-05", "patients_initiated") == [0]


def test_vintage_month_of_a_date():
    """Lines are known from the last day of a month: 2025-04-30 sees April's vintage, 2025-04-29
    only March's."""
    assert nowcast.month_text(nowcast.vintage_month(d("2025-04-30"))) == "2025-04"
    assert nowcast.month_text(nowcast.vintage_month(d("2025-04-29"))) == "2025-03"
    assert nowcast.month_end(nowcast.month_index("2024-02")) == dt.date(2024, 2, 29)


def test_vintage_reads_the_views_even_when_a_snapshot_is_published(tmp_path):
    """A published snapshot holds the figures of every line; --vintage must not read it:
    March as known on 2025-03-31 is still 2 starts (A and C), the snapshot says 2 as well but
    with fees 62.19 (C cancelled, B and A's step in): 46.48 shows the vintage was applied."""
    db = warehouse(tmp_path)
    assert run_cli("--db", str(db), "publish")[0] == 0
    assert report_total(db, "2025-03")["schemes"]["total"]["fees_estimated_eur"] == 62.19
    march = report_total(db, "2025-03", "2025-03-31")
    assert march["schemes"]["total"]["fees_estimated_eur"] == 46.48


def test_vintage_is_refused_for_a_pack(tmp_path):
    """A pack is archived with the loads it saw, not a vintage: --vintage with xlsx is refused
    with a plain message (exit status 2)."""
    db = warehouse(tmp_path)
    status, _ = run_cli(
        "--db", str(db), "report", "--month", "2025-03", "--format", "xlsx",
        "--vintage", "2025-03-31", "--output", str(tmp_path / "p.xlsx"),
    )  # fmt: skip
    assert status == 2
    assert not (tmp_path / "p.xlsx").exists()


def test_bzra_lines_are_known_from_their_load_month(tmp_path):
    """SPEC §15: "a line is known from the last day of its billing month, or, without one, from
    the last day of the month its file was loaded"; BZRA lines (§14) have no billing month.
    Two BZRA deliveries to X at PH1: 2025-03-01 in load 2 (started 2025-05-15, known from
    2025-05-31) and 2025-03-02 in load 1 (started 2025-06-02, known from 2025-06-30).
    As known on 2025-04-30: none; on 2025-05-31: the first only, so the observed window is
    2025-03-01..2025-03-01; on 2025-06-30 and with everything loaded: both (window ..03-02)."""
    db = warehouse(tmp_path)
    con = connect(db)
    try:
        con.executemany(
            "insert into bzra_lines values (?, 1, ?, 2, 'X', 'PH1', ?::date, '1000001', "
            "'N05BA01', 1)",
            [(100, 2, "2025-03-01"), (101, 1, "2025-03-02")],
        )
    finally:
        con.close()

    def seen(vintage):
        con = connect(db, read_only=True)
        try:
            set_vintage(con, d(vintage) if vintage else None)
            dates = con.execute("select delivery_date from stg_bzra_lines order by 1").fetchall()
            window = con.execute("select * from mart_bzra_window").fetchall()
        finally:
            con.close()
        return [row[0].isoformat() for row in dates], window

    assert seen("2025-04-30")[0] == []
    dates, window = seen("2025-05-31")
    assert dates == ["2025-03-01"]
    assert [c.isoformat() for c in window[0][:2] if c is not None] == ["2025-03-01", "2025-03-01"]
    assert seen("2025-06-30")[0] == ["2025-03-01", "2025-03-02"]
    assert seen(None)[0] == ["2025-03-01", "2025-03-02"]
