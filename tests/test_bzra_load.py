"""SPEC v2 §3 (`atc` column) and §14 by hand: loading BZRA lines and the product reference.

Real files on disk, loaded through the command line into a real warehouse. A row is a BZRA line
when its ATC — the export's `atc` value, else the product reference's for its CNK — is under
N05BA, N05CD or N05CF; clonazepam (N03AE01) is kept apart; any other valid CNK is another
medicine (skipped and counted); programme CNKs are programme lines whatever the ATC.
"""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import openpyxl

from etl.base.warehouse import connect
from tests.conftest import warehouse_content, write_delimited
from tests.sqlcase import INIT5, query, run_cli

HEADER = ["patient_id", "pharmacy_id", "delivery_date", "cnk", "quantity", "atc"]
REFERENCE_HEADER = ["CNK", "Code ATC", "Substance", "Dosage", "Conditionnement"]
REFERENCE_ROWS = [
    ["1234567", "N05BA01", "diazepam", "10", "30"],
    ["2345678", "n05cf02", "zolpidem", "10,0", "28"],
    ["3456789", "C10AA05", "atorvastatin", "20", "30"],
    ["555", "N03AE01", "clonazepam", "2", "60"],
]


def table(db, sql):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def export_rows() -> list[list[str]]:
    """Nine lines, line numbers 2-10 (header = line 1):
    2 programme line; 3 diazepam by the reference; 4 alprazolam by its own ATC (CNK unknown to
    the reference); 5 zolpidem by the reference; 6 atorvastatin by the reference (skipped);
    7 a statin CNK whose export ATC says lormetazepam (the export's ATC wins: BZRA); 8 the
    diazepam CNK whose export ATC says a statin (skipped); 9 clonazepam (apart), quantity 2;
    10 the diazepam CNK with quantity 0 (rejected like a programme line)."""
    return [
        ["P1", "PH1", "01/03/2025", INIT5, "1", ""],
        ["P1", "PH1", "02/03/2025", "1234567", "1", ""],
        ["P1", "PH1", "03/03/2025", "9999999", "1", "N05BA12"],
        ["P1", "PH1", "04/03/2025", "2345678", "1", ""],
        ["P1", "PH1", "05/03/2025", "3456789", "1", ""],
        ["P1", "PH1", "06/03/2025", "3456789", "1", " n05cd06 "],
        ["P1", "PH1", "07/03/2025", "1234567", "1", "C10AA05"],
        ["P1", "PH1", "08/03/2025", "0000555", "2", ""],
        ["P1", "PH1", "09/03/2025", "1234567", "0", ""],
    ]


def test_reference_then_export(tmp_path):
    db = tmp_path / "w.duckdb"
    ref = write_delimited(tmp_path / "ref.csv", REFERENCE_HEADER, REFERENCE_ROWS)
    status, out = run_cli("--db", str(db), "reference", "load", str(ref))
    assert status == 0, out
    assert "4 product(s) loaded (4 new, 0 replaced), of which 2 BZRA" in out
    export = write_delimited(tmp_path / "pharmacy.csv", HEADER, export_rows())
    status, out = run_cli("--db", str(db), "load", "--no-progress", str(export))
    assert status == 0, out
    # 4 BZRA lines (3, 4, 5, 7), 1 clonazepam line (9), 1 programme line: 6 new; 6 and 8
    # skipped; 10 rejected.
    assert "4 BZRA line(s)" in out and "1 clonazepam line(s) kept apart" in out
    assert table(db, "select rows_read, rows_new, rows_present, rows_skipped, rows_rejected, "
                     "rows_bzra, rows_clonazepam from loads") == [(9, 6, 0, 2, 1, 4, 1)]  # fmt: skip
    assert table(db, "select line_number, cnk, atc, quantity from bzra_lines order by 1") == [
        (3, "1234567", "N05BA01", 1),
        (4, "9999999", "N05BA12", 1),
        (5, "2345678", "N05CF02", 1),
        (7, "3456789", "N05CD06", 1),
        (9, "0000555", "N03AE01", 2),
    ]
    assert table(db, "select line_number, reason from rejects") == [(10, "quantity_zero")]
    assert table(db, "select count(*) from billing_lines") == [(1,)]
    # Loading the same file again stores nothing twice.
    status, out = run_cli("--db", str(db), "load", "--no-progress", str(export))
    assert status == 0, out
    assert table(db, "select rows_new, rows_present, rows_bzra from loads where load_id = 2") == [
        (0, 6, 4)
    ]
    assert table(db, "select count(*) from bzra_lines") == [(5,)]
    # Clonazepam is shown apart, not a delivery (as of the BZRA lines' last day, 2025-03-09):
    # 4 deliveries at PH1 from 03-02 to 03-06.
    (window,) = query(db, "select * from mart_bzra_window", "2025-03-09")
    assert window == {
        "first_date": dt.date(2025, 3, 2),
        "last_date": dt.date(2025, 3, 6),
        "n_deliveries": 4,
        "n_pharmacies": 1,
        "n_clonazepam_lines": 1,
    }


def test_reference_loaded_after_the_export_recovers_on_reload(tmp_path):
    """Without a reference, lines 3, 5, 6, 9 (no ATC in the export) are other medicines; the
    reference command then says to load the export again, which keeps them."""
    db = tmp_path / "w.duckdb"
    export = write_delimited(tmp_path / "pharmacy.csv", HEADER, export_rows())
    status, out = run_cli("--db", str(db), "load", "--no-progress", str(export))
    assert status == 0, out
    # BZRA by their own ATC: lines 4 and 7; skipped: 3, 5, 6, 8, 9 and 10 (another medicine's
    # CNK, so not checked).
    assert table(db, "select rows_new, rows_skipped, rows_bzra from loads") == [(3, 6, 2)]
    ref = write_delimited(tmp_path / "ref.csv", REFERENCE_HEADER, REFERENCE_ROWS)
    status, out = run_cli("--db", str(db), "reference", "load", str(ref))
    assert status == 0 and "Load those files again" in " ".join(out.split()), out
    status, out = run_cli("--db", str(db), "load", "--no-progress", str(export))
    assert status == 0, out
    assert table(db, "select rows_new, rows_present, rows_bzra from loads where load_id = 2") == [
        (3, 3, 4)
    ]
    assert table(db, "select count(*) from bzra_lines") == [(5,)]


def test_reference_bad_rows_refuse_the_file(tmp_path):
    """Each row checked; one bad row refuses the file (exit 1) and changes nothing."""
    db = tmp_path / "w.duckdb"
    good = write_delimited(tmp_path / "ref.csv", REFERENCE_HEADER, REFERENCE_ROWS)
    assert run_cli("--db", str(db), "reference", "load", str(good))[0] == 0
    before = warehouse_content(db)
    bad = write_delimited(
        tmp_path / "bad.csv",
        ["cnk", "atc", "units_per_pack"],
        [["12a4", "N05BA01", "30"], ["1234567", "N05BA1", "30"], ["7654321", "N05BA01", "0"],
         ["7654322", "N05BA01", "30"], ["7654322", "N05CD02", "30"], ["7654323", "", ""]],
    )  # fmt: skip
    status, out = run_cli("--db", str(db), "reference", "load", str(bad))
    text = " ".join(out.split())
    assert status == 1
    assert "5 of 6 product row(s) fail a check; nothing was loaded" in text
    assert "line 2: the CNK is not 1 to 7 digits: 12a4" in text
    assert "line 3: the ATC code is not a 7-character ATC code (such as N05BA01): N05BA1" in text
    assert "line 4: the units per pack is not a whole number above 0: 0" in text
    assert "line 6: the CNK 7654322 has another ATC code on line 5" in text
    assert "line 7: the ATC code is empty" in text
    assert warehouse_content(db) == before


def test_reference_missing_column_is_refused(tmp_path):
    db = tmp_path / "w.duckdb"
    bad = write_delimited(tmp_path / "bad.csv", ["cnk", "molecule"], [["1234567", "diazepam"]])
    status, out = run_cli("--db", str(db), "reference", "load", str(bad))
    assert status == 1
    assert "column(s) missing: atc" in out and "code_atc" in out


def test_reference_from_xlsx_and_list(tmp_path):
    db = tmp_path / "w.duckdb"
    path = tmp_path / "ref.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Code CNK", "ATC7", "Molécule", "Strength", "Pack size"])
    sheet.append(["1234567", "N05BA01", "diazepam", 10, 30])
    book.save(path)
    assert run_cli("--db", str(db), "reference", "load", str(path))[0] == 0
    status, out = run_cli("--db", str(db), "reference", "list", "--format", "json")
    assert status == 0
    doc = json.loads(out)
    assert len(doc["molecules"]) == 19
    diazepam = next(m for m in doc["molecules"] if m["atc"] == "N05BA01")
    assert diazepam["molecule"] == "diazepam" and diazepam["products"] == 1
    assert [p["cnk"] for p in doc["products"]] == ["1234567"]
    assert doc["products"][0]["units_per_pack"] == 30


def test_decree_table(tmp_path):
    """The annex's 19 molecules: a few rows checked against the decree's table."""
    db = tmp_path / "w.duckdb"
    con = connect(db)
    rows = {
        r[0]: r[1:]
        for r in con.execute(
            "select molecule, atc, duration_of_action, max_daily_dose_mg::double, "
            "diazepam_factor::double from stg_bzra_molecules"
        ).fetchall()
    }
    con.close()
    assert len(rows) == 19
    assert rows["alprazolam"] == ("N05BA12", "ML", 3.0, 10.0)
    assert rows["zopiclone"] == ("N05CF01", "C", 22.5, 1.33)
    assert rows["oxazepam"] == ("N05BA04", "C", 150.0, 0.3)
    assert rows["triazolam"] == ("N05CD05", "UC", 0.75, 80.0)
    assert rows["ethyl loflazepate"] == ("N05BA18", "L", 6.0, 5.0)


def test_bzra_lines_in_a_long_file_keep_their_line_numbers(tmp_path):
    """6,000 lines: every 7th a diazepam pack known only from the reference, every 11th a date
    that cannot be read on such a line (rejected with its line number), the rest statins."""
    db = tmp_path / "w.duckdb"
    ref = write_delimited(tmp_path / "ref.csv", REFERENCE_HEADER, REFERENCE_ROWS)
    assert run_cli("--db", str(db), "reference", "load", str(ref))[0] == 0
    rows, bzra_lines, rejected = [], [], []
    for i in range(6000):
        line_number = i + 2
        if i % 7 == 0:
            date = "31/02/2025" if i % 11 == 0 else "02/03/2025"
            rows.append([f"P{i}", "PH1", date, "1234567", "1", ""])
            (rejected if i % 11 == 0 else bzra_lines).append(line_number)
        else:
            rows.append([f"P{i}", "PH1", "02/03/2025", "3456789", "1", ""])
    export = write_delimited(tmp_path / "long.csv", HEADER, rows)
    status, out = run_cli("--db", str(db), "load", "--no-progress", str(export))
    assert status == 0, out
    assert [r[0] for r in table(db, "select line_number from bzra_lines order by 1")] == bzra_lines
    assert table(db, "select line_number, reason from rejects order by 1") == [
        (n, "date_unreadable") for n in rejected
    ]
    assert table(db, "select patient_id from bzra_lines where line_number = 9") == [("P7",)]
