"""The loader (SPEC §3): formats, encodings, aliases, row checks, refusals, idempotency."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from decimal import Decimal

import polars as pl
import pytest
import xlsxwriter

from tests.conftest import CANONICAL_HEADER, query, warehouse_content, write_delimited

INIT5, INIT7, INIT10 = "5521950", "5521968", "5521976"
RED10, RED20, RED30, STAB, FOLLOW = "5521984", "5521992", "5522008", "5522016", "5522024"


def lines(db):
    return query(
        db,
        "select patient_id, pharmacy_id, delivery_date, cnk, quantity, amount_eur "
        "from billing_lines order by line_number, occurrence",
    )


def rejects(db):
    return query(db, "select line_number, reason from rejects order by line_number")


def ledger(db):
    return query(
        db,
        "select file_name, rows_read, rows_new, rows_present, rows_skipped, rows_rejected "
        "from loads order by load_id",
    )


# --- formats, encodings, delimiters -------------------------------------------------------


FRENCH_HEADER = ["id_patient", "id_pharmacie", "date_de_délivrance", "code_cnk", "quantité",
                 "montant"]  # fmt: skip
FRENCH_ROWS = [
    ["P001", "PH01", "14/03/2025", INIT10, "1", "23,24"],
    ["P001", "PH01", "14/03/2025", RED20, "1", "15,71"],
    ["P002", "PH01", "15/03/2025", INIT5, "1", "23,24"],
]
EXPECTED = [
    ("P001", "PH01", dt.date(2025, 3, 14), INIT10, 1, Decimal("23.24")),
    ("P001", "PH01", dt.date(2025, 3, 14), RED20, 1, Decimal("15.71")),
    ("P002", "PH01", dt.date(2025, 3, 15), INIT5, 1, Decimal("23.24")),
]


@pytest.mark.parametrize(
    "delimiter,encoding,bom,gz",
    [
        (";", "cp1252", False, False),
        (";", "utf-8", True, False),
        (";", "utf-8", False, True),
        (",", "utf-8", False, False),
        ("\t", "utf-8", False, False),
        ("|", "cp1252", False, True),
    ],
)
def test_delimited_variants_load_the_same_lines(cli, db, tmp_path, delimiter, encoding, bom, gz):
    rows = FRENCH_ROWS
    if delimiter == ",":  # decimal commas must then be quoted, as real exports do
        rows = [r[:5] + [r[5]] for r in FRENCH_ROWS]
    path = write_delimited(
        tmp_path / ("export.csv.gz" if gz else "export.csv"), FRENCH_HEADER, rows,
        delimiter=delimiter, encoding=encoding, bom=bom, gz=gz,
    )  # fmt: skip
    status, out, _ = cli("--db", db, "load", path)
    assert status == 0, out
    assert lines(db) == EXPECTED
    fmt, enc, delim = query(db, "select file_format, encoding, delimiter from loads")[0]
    assert fmt == ("csv.gz" if gz else "csv")
    assert enc == ("windows-1252" if encoding == "cp1252" else "utf-8")
    assert delim == {";": ";", ",": ",", "\t": "tab", "|": "|"}[delimiter]


def test_windows_1252_bytes_0x80_to_0x9f_are_read(cli, db, tmp_path):
    # The euro sign (0x80) and a curly apostrophe (0x92) exist in Windows-1252, not latin-1.
    header = FRENCH_HEADER + ["libellé"]
    rows = [FRENCH_ROWS[0] + ["Préparation l’officine 5 €"], FRENCH_ROWS[1] + ["x"]]
    rows.append(["", "PH01", "14/03/2025", RED20, "1", "1", "Œuvre €"])  # rejected: no patient
    path = write_delimited(tmp_path / "e.csv", header, rows, encoding="cp1252")
    assert b"\x80" in path.read_bytes()
    status, _, _ = cli("--db", db, "load", path)
    assert status == 0
    assert lines(db) == EXPECTED[:2]
    raw = json.loads(query(db, "select raw_values from rejects")[0][0])
    assert raw["libellé"] == "Œuvre €"
    assert query(db, "select encoding from loads") == [("windows-1252",)]


def test_windows_1252_every_byte_0x80_to_0x9f_comes_back(cli, db, tmp_path):
    # The UTF-8 copy keeps these bytes as C1 control characters and the load maps them back:
    # each of the 27 characters Windows-1252 defines there must come back as itself, in kept
    # values and in a rejected row's raw text; the 5 undefined bytes come back as U+FFFD.
    defined = "€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ"
    assert len(defined) == 27
    rows = [["P€1", "PH‘’", "14/03/2025", INIT10, "1", "23,24"],
            ["P€1", defined, "14/03/2025", RED20, "1", "15,71"],
            ["", defined, "14/03/2025", RED20, "1", "15,71"]]  # fmt: skip
    path = write_delimited(tmp_path / "all.csv", FRENCH_HEADER, rows, encoding="cp1252")
    path.write_bytes(path.read_bytes().replace(b"PH\x91\x92", b"PH\x81\x8d\x8f\x90\x9d"))
    status, _, _ = cli("--db", db, "load", path)
    assert status == 0
    assert [(p, ph) for p, ph, *_ in lines(db)] == [("P€1", "PH" + "\ufffd" * 5), ("P€1", defined)]
    raw = json.loads(query(db, "select raw_values from rejects")[0][0])
    assert raw["id_pharmacie"] == defined


def test_windows_1252_control_bytes_stay_as_they_are(cli, db, tmp_path):
    # Control bytes (here 0x01, in a label) stay as they are beside the restored characters.
    header = FRENCH_HEADER + ["libellé"]
    rows = [FRENCH_ROWS[0] + ["a\x01b"], FRENCH_ROWS[1] + ["5 €"]]
    rows.append(["", "PH01", "14/03/2025", RED20, "1", "1", "Œuvre € \x01"])
    path = write_delimited(tmp_path / "ctl.csv", header, rows, encoding="cp1252")
    status, _, _ = cli("--db", db, "load", path)
    assert status == 0
    assert lines(db) == EXPECTED[:2]
    raw = json.loads(query(db, "select raw_values from rejects")[0][0])
    assert raw["libellé"] == "Œuvre € \x01"


def test_windows_1252_found_after_an_ascii_sample(cli, db, tmp_path):
    # The first megabyte is plain ASCII; an accented byte only comes later.
    filler = [[f"P{i:05d}", "PH01", "01/03/2025", "1234567", "1", "1,00"] for i in range(40000)]
    rows = filler + [["P999", "PHé", "14/03/2025", INIT7, "1", "23,24"]]
    path = write_delimited(tmp_path / "late.csv", CANONICAL_HEADER, rows, encoding="cp1252")
    assert path.stat().st_size > 1 << 20
    status, _, _ = cli("--db", db, "load", path)
    assert status == 0
    assert lines(db) == [("P999", "PHé", dt.date(2025, 3, 14), INIT7, 1, Decimal("23.24"))]
    assert ledger(db) == [("late.csv", 40001, 1, 0, 40000, 0)]


def test_parquet_with_typed_columns(cli, db, tmp_path):
    frame = pl.DataFrame(
        {
            "Patient_Hash": ["P001", "P001", "P002"],
            "Apotheek": ["PH01", "PH01", "PH01"],
            "Afleverdatum": [dt.date(2025, 3, 14), dt.date(2025, 3, 14), dt.date(2025, 3, 15)],
            "CNK": [5521976, 5521992, 5521950],  # integers, as some tools write them
            "Aantal": [1.0, 1.0, 1.0],
            "Bedrag": [23.24, 15.71, 23.24],
        }
    )
    path = tmp_path / "export.parquet"
    frame.write_parquet(path)
    status, _, _ = cli("--db", db, "load", path)
    assert status == 0
    assert lines(db) == EXPECTED
    assert query(db, "select file_format from loads") == [("parquet",)]


def test_xlsx_with_real_dates_and_numbers(cli, db, tmp_path):
    path = tmp_path / "export.xlsx"
    book = xlsxwriter.Workbook(path)
    sheet = book.add_worksheet("Facturation")
    date_format = book.add_format({"num_format": "dd/mm/yyyy"})
    sheet.write_row(
        0, 0, ["Pseudo ID", "Officine", "Dispensing date", "CNK code", "Qty", "Montant EUR"]
    )
    for r, (patient, pharmacy, day, cnk, qty, amount) in enumerate(EXPECTED, start=1):
        sheet.write_string(r, 0, patient)
        sheet.write_string(r, 1, pharmacy)
        sheet.write_datetime(r, 2, dt.datetime.combine(day, dt.time()), date_format)
        sheet.write_number(r, 3, int(cnk))
        sheet.write_number(r, 4, qty)
        sheet.write_number(r, 5, float(amount))
    sheet.write_string(4, 0, "P003")  # line 5: no pharmacy, date or CNK -> rejected
    book.close()
    status, _, _ = cli("--db", db, "load", path)
    assert status == 0
    assert lines(db) == EXPECTED
    assert rejects(db) == [(5, "missing_required")]
    assert query(db, "select line_number from billing_lines order by 1") == [(2,), (3,), (4,)]


# --- header aliases, mapping file, normalisation ------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        ["Patient", "Pharmacie", "Date délivrance", "CNK", "Quantité", "Montant EUR"],
        ["PSEUDO_PATIENT", "ID-Pharmacie", "DATE.DE.DELIVRANCE", "Code CNK", "qty", "amount"],
        [
            "patiënt_pseudonym",
            "apotheek_id",
            "datum aflevering",
            "cnk-code",
            "hoeveelheid",
            "bedrag",
        ],
        ["id_patient", "officine", "dispensing_date", "cnk", "nombre", "montant_eur"],
    ],
)
def test_header_aliases(cli, db, tmp_path, header):
    if header[0] == "patiënt_pseudonym":
        header[0] = "patient_pseudonym"
    path = write_delimited(tmp_path / "a.csv", header, FRENCH_ROWS)
    status, out, err = cli("--db", db, "load", path)
    assert status == 0, out + err
    assert lines(db) == EXPECTED


def test_mapping_file_names_other_headers(cli, db, tmp_path):
    header = ["Client nr", "Apo", "Datum", "Product", "Stuks", "Prijs"]
    path = write_delimited(tmp_path / "a.csv", header, FRENCH_ROWS)
    status, out, _ = cli("--db", db, "load", path)
    assert status != 0 and "patient_id" in out
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(
        '[columns]\n"Client nr" = "patient_id"\n"Apo" = "pharmacy_id"\n"Datum" = "delivery_date"\n'
        '"Product" = "cnk"\n"Stuks" = "quantity"\n"Prijs" = "amount_eur"\n',
        encoding="utf-8",
    )
    status, _, _ = cli("--db", db, "load", path, "--mapping", mapping)
    assert status == 0
    assert lines(db) == EXPECTED
    json_mapping = tmp_path / "m.json"
    json_mapping.write_text(json.dumps({"Client nr": "patient_idx"}), encoding="utf-8")
    status, _, err = cli("--db", db, "load", path, "--mapping", json_mapping)
    assert status == 2 and "patient_idx" in err


@pytest.mark.parametrize(
    "text", ["2025-03-14", "14/03/2025", "14-03-2025", "14.03.2025", "20250314"]
)
def test_date_styles_day_before_month(cli, db, tmp_path, text):
    path = write_delimited(
        tmp_path / "d.csv", CANONICAL_HEADER, [["P1", "PH1", text, INIT5, "1", "23,24"]]
    )
    cli("--db", db, "load", path)
    assert query(db, "select delivery_date from billing_lines") == [(dt.date(2025, 3, 14),)]


def test_optional_columns_are_normalised(cli, db, tmp_path):
    header = CANONICAL_HEADER + ["mois_de_facturation", "OA", "année naissance", "Geslacht",
                                 "code postal", "voorschrijver"]  # fmt: skip
    base = ["P1", "PH1", "14/03/2025"]
    rows = [
        base + [INIT5, "", "1.234,50", "2025-03", "300", "1956", "H", "1000", "DR1"],
        base + [RED10, "1", "15.71", "202504", "", "", "vrouw", "", ""],
        base + [RED20, "-1", "-15,71", "05/2025", "", "x", "X", "", ""],
        base + [RED30, "+2", "31,42", "garbage", "", "", "", "", ""],
        base + [STAB, "1", "", "", "", "", "Homme", "", ""],
        base + [FOLLOW, "3", "", "", "", "", "V", "", ""],
    ]
    path = write_delimited(tmp_path / "o.csv", header, rows)
    status, _, _ = cli("--db", db, "load", path)
    assert status == 0
    got = query(
        db,
        "select cnk, quantity, amount_eur, billing_month, insurer_code, patient_birth_year, "
        "patient_sex, pharmacy_postcode, prescriber_id from billing_lines order by line_number",
    )
    assert got == [
        (INIT5, 1, Decimal("1234.50"), "2025-03", "300", 1956, "M", "1000", "DR1"),
        (RED10, 1, Decimal("15.71"), "2025-04", None, None, "F", None, None),
        (RED20, -1, Decimal("-15.71"), "2025-05", None, None, "U", None, None),
        (RED30, 2, Decimal("31.42"), None, None, None, "U", None, None),
        (STAB, 1, None, None, None, None, "M", None, None),
        (FOLLOW, 3, None, None, None, None, "F", None, None),
    ]


def test_cnk_padding_other_medicines_skipped(cli, db, tmp_path):
    rows = [
        ["P1", "PH1", "14/03/2025", "5521950", "1", "1"],  # programme: kept
        ["P1", "PH1", "14/03/2025", "123", "1", "1"],  # valid CNK 0000123: skipped
        ["P1", "PH1", "14/03/2025", "0552195", "1", "1"],  # another medicine: skipped
        ["", "", "", "4444444", "1", "1"],  # another medicine, even incomplete: skipped
        ["P1", "PH1", "14/03/2025", "12345678", "1", "1"],  # 8 digits: rejected
        ["P1", "PH1", "14/03/2025", "55 21950", "1", "1"],  # not digits only: rejected
    ]
    path = write_delimited(tmp_path / "c.csv", CANONICAL_HEADER, rows)
    status, _, _ = cli("--db", db, "load", path)
    assert status == 0
    assert ledger(db) == [("c.csv", 6, 1, 0, 3, 2)]
    assert rejects(db) == [(6, "cnk_invalid"), (7, "cnk_invalid")]


# --- row checks -----------------------------------------------------------------------------


def test_each_reject_reason_with_line_numbers(cli, db, tmp_path):
    tomorrow = (dt.date.today() + dt.timedelta(days=1)).strftime("%d/%m/%Y")
    today = dt.date.today().strftime("%d/%m/%Y")
    rows = [
        ["P1", "PH1", "14/03/2025", INIT5, "1", "1"],  # line 2: ok
        ["", "PH1", "14/03/2025", INIT5, "1", "1"],  # 3: patient missing
        ["P1", " ", "14/03/2025", INIT5, "1", "1"],  # 4: pharmacy blank
        ["P1", "PH1", "", INIT5, "1", "1"],  # 5: date missing
        ["P1", "PH1", "14/03/2025", "", "1", "1"],  # 6: cnk missing
        ["P1", "PH1", "31/02/2025", INIT5, "1", "1"],  # 7: no such day
        ["P1", "PH1", "0000-00-00", INIT5, "1", "1"],  # 8: unreadable
        ["P1", "PH1", "03/14/2025", INIT5, "1", "1"],  # 9: month first is not Belgian
        ["P1", "PH1", "31/12/2019", INIT5, "1", "1"],  # 10: before 2020-01-01
        ["P1", "PH1", tomorrow, INIT5, "1", "1"],  # 11: after the day of loading
        ["P1", "PH1", "14/03/2025", "55X1950", "1", "1"],  # 12: CNK not digits
        ["P1", "PH1", "14/03/2025", INIT5, "1,5", "1"],  # 13: not an integer
        ["P1", "PH1", "14/03/2025", INIT5, "un", "1"],  # 14: not an integer
        ["P1", "PH1", "14/03/2025", INIT5, "0", "1"],  # 15: zero
        ["P1", "PH1", "14/03/2025", INIT5, "4", "1"],  # 16: above 3
        ["P1", "PH1", "14/03/2025", INIT5, "-4", "1"],  # 17: below -3
        ["P1", "PH1", "01/01/2020", INIT5, "-3", "1"],  # 18: ok (limits)
        ["P1", "PH1", today, INIT5, "3", "1"],  # 19: ok (today is allowed)
    ]
    path = write_delimited(tmp_path / "r.csv", CANONICAL_HEADER, rows)
    with path.open("ab") as fh:
        fh.write(b"P1;PH1;14/03/2025\r\n")  # 20: too few fields
        fh.write(b"P1;PH1;14/03/2025;5521950;1;1;extra\r\n")  # 21: too many fields
        fh.write(b"P1;PH1;15/03/2025;5521950;1;1\r\n")  # 22: ok
    status, out, _ = cli("--db", db, "load", path)
    assert status == 0
    assert "rejected" in out
    assert rejects(db) == [
        (3, "missing_required"), (4, "missing_required"), (5, "missing_required"),
        (6, "missing_required"), (7, "date_unreadable"), (8, "date_unreadable"),
        (9, "date_unreadable"), (10, "date_before_2020"), (11, "date_after_load_day"),
        (12, "cnk_invalid"), (13, "quantity_not_integer"), (14, "quantity_not_integer"),
        (15, "quantity_zero"), (16, "quantity_out_of_range"), (17, "quantity_out_of_range"),
        (20, "malformed_line"), (21, "malformed_line"),
    ]  # fmt: skip
    assert query(db, "select line_number from billing_lines order by 1") == [
        (2,), (18,), (19,), (22,)
    ]  # fmt: skip
    assert ledger(db) == [("r.csv", 21, 4, 0, 0, 17)]
    raw = json.loads(query(db, "select raw_values from rejects where line_number = 13")[0][0])
    assert raw == {"patient_id": "P1", "pharmacy_id": "PH1", "delivery_date": "14/03/2025",
                   "cnk": INIT5, "quantity": "1,5", "amount_eur": "1"}  # fmt: skip
    detail = query(db, "select detail from rejects where line_number = 3")[0][0]
    assert "patient_id" in detail


def test_rejects_command_lists_reasons(cli, db, tmp_path):
    rows = [
        ["P1", "PH1", "14/03/2025", INIT5, "9", "1"],
        ["P2", "PH1", "14/03/2025", INIT5, "1", "1"],
    ]
    cli("--db", db, "load", write_delimited(tmp_path / "r.csv", CANONICAL_HEADER, rows))
    status, out, _ = cli("--db", db, "rejects", "--format", "json")
    assert status == 0
    got = json.loads(out)
    assert [(r["line_number"], r["reason"], r["file_name"]) for r in got] == [
        (2, "quantity_out_of_range", "r.csv")
    ]
    status, out, _ = cli("--db", db, "rejects")
    assert status == 0 and "quantity_out_of_range" in out


# --- file refusals: plain message, non-zero exit, warehouse unchanged ---------------------


def nrn(first9: str) -> str:
    """A national register number with its check digits (SPEC §3), born before 2000."""
    return first9 + f"{97 - int(first9) % 97:02d}"


def nrn_2000(first9: str) -> str:
    """A national register number of someone born from 2000 ("2" before the 9 digits)."""
    return first9 + f"{97 - int('2' + first9) % 97:02d}"


def refused_files(tmp_path):
    good = ["P1", "PH1", "14/03/2025", INIT5, "1", "1"]
    files = {}
    files["empty"] = tmp_path / "empty.csv"
    files["empty"].write_bytes(b"")
    files["header_only"] = write_delimited(tmp_path / "header.csv", CANONICAL_HEADER, [])
    files["missing_column"] = write_delimited(
        tmp_path / "nocnk.csv", ["patient_id", "pharmacy_id", "delivery_date"], [good[:3]]
    )
    files["random_bytes"] = tmp_path / "random.csv"
    files["random_bytes"].write_bytes(bytes(range(256)) * 50)
    files["truncated_gzip"] = tmp_path / "cut.csv.gz"
    whole = gzip.compress(
        ("\n".join([";".join(CANONICAL_HEADER)] + [";".join(good)] * 5000)).encode()
    )
    files["truncated_gzip"].write_bytes(whole[: len(whole) // 2])
    files["corrupt_parquet"] = tmp_path / "bad.parquet"
    files["corrupt_parquet"].write_bytes(b"PAR1" + b"\x00" * 100 + b"PAR1")
    files["corrupt_xlsx"] = tmp_path / "bad.xlsx"
    files["corrupt_xlsx"].write_bytes(b"PK\x03\x04" + b"garbage" * 20)
    ids = [nrn("850730123"), nrn("920101456"), "85.07.30-124." + nrn("850730124")[-2:]]
    ids += [nrn_2000("050315789"), nrn("610912001")]
    rows = [[pid, "PH1", "14/03/2025", INIT5, "1", "1"] for pid in ids]
    rows += [[f"P{i}", "PH1", "14/03/2025", INIT5, "1", "1"] for i in range(20)]  # 5 of 25: 20 %
    files["national_numbers"] = write_delimited(tmp_path / "nrn.csv", CANONICAL_HEADER, rows)
    return files


@pytest.mark.parametrize(
    "case,words",
    [
        ("empty", "empty"),
        ("header_only", "no data rows"),
        ("missing_column", "cnk"),
        ("random_bytes", "not a text export"),
        ("truncated_gzip", "gzip"),
        ("corrupt_parquet", "Parquet"),
        ("corrupt_xlsx", "Excel"),
        ("national_numbers", "national register numbers"),
    ],
)
def test_refused_file_leaves_the_warehouse_unchanged(cli, db, tmp_path, case, words):
    first = write_delimited(
        tmp_path / "first.csv", CANONICAL_HEADER,
        [["P1", "PH1", "14/03/2025", INIT5, "1", "1"], ["P1", "PH1", "14/03/2025", "9", "1", "1"]],
    )  # fmt: skip
    assert cli("--db", db, "load", first)[0] == 0
    before = warehouse_content(db)
    status, out, _ = cli("--db", db, "load", refused_files(tmp_path)[case])
    assert status != 0
    assert words in out
    assert "Traceback" not in out
    assert warehouse_content(db) == before


def test_missing_column_message_lists_headers_and_aliases(cli, db, tmp_path):
    path = write_delimited(tmp_path / "x.csv", ["Patiënt", "Apotheek", "Datum"], [["a", "b", "c"]])
    status, out, _ = cli("--db", db, "load", path)
    assert status == 1
    assert "'Patiënt', 'Apotheek', 'Datum'" in out
    assert "delivery_date" in out and "afleverdatum" in out and "code_cnk" in out


def test_national_numbers_below_the_threshold_are_accepted(cli, db, tmp_path):
    # 5 national numbers among 26 distinct ids (19 %): under 20 %, the file loads.
    ids = [nrn("850730123"), nrn("920101456"), nrn("850730124"), nrn_2000("050315789"),
           nrn("610912001")] + [f"P{i}" for i in range(21)]  # fmt: skip
    rows = [[pid, "PH1", "14/03/2025", INIT5, "1", "1"] for pid in ids]
    assert (
        cli("--db", db, "load", write_delimited(tmp_path / "a.csv", CANONICAL_HEADER, rows))[0] == 0
    )
    # 4 national numbers out of 4 (100 %) but fewer than 5: loads too.
    rows = [[pid, "PH1", "15/03/2025", INIT5, "1", "1"] for pid in ids[:4]]
    assert (
        cli("--db", db, "load", write_delimited(tmp_path / "b.csv", CANONICAL_HEADER, rows))[0] == 0
    )
    # 11-digit ids whose check digits are wrong are not national numbers.
    bad = [nrn(f"8507301{i:02d}")[:-2] + "00" for i in range(10)]
    bad = [b for b in bad if nrn(b[:9]) != b and nrn_2000(b[:9]) != b]
    rows = [[pid, "PH1", "16/03/2025", INIT5, "1", "1"] for pid in bad]
    assert (
        cli("--db", db, "load", write_delimited(tmp_path / "c.csv", CANONICAL_HEADER, rows))[0] == 0
    )


# --- idempotency ------------------------------------------------------------------------------


def test_reload_and_overlap_count_nothing_twice(cli, db, tmp_path):
    jan = ["P1", "PH1", "14/01/2025", INIT5, "1", "23,24"]
    feb = ["P1", "PH1", "10/02/2025", RED10, "1", "15,71"]
    mar = ["P1", "PH1", "02/03/2025", RED10, "1", "15,71"]
    a = write_delimited(tmp_path / "jan_feb.csv", CANONICAL_HEADER, [jan, feb])
    b = write_delimited(tmp_path / "feb_mar.csv", CANONICAL_HEADER, [feb, mar])
    assert cli("--db", db, "load", a)[0] == 0
    status, out, _ = cli("--db", db, "load", a)
    assert status == 0 and "loaded before" in out
    assert cli("--db", db, "load", b)[0] == 0
    assert ledger(db) == [
        ("jan_feb.csv", 2, 2, 0, 0, 0),
        ("jan_feb.csv", 2, 0, 2, 0, 0),
        ("feb_mar.csv", 2, 1, 1, 0, 0),
    ]
    assert len(lines(db)) == 3
    # The same lines in another format and style: nothing new either.
    frame = pl.DataFrame({"patient_id": ["P1"], "pharmacy_id": ["PH1"],
                          "delivery_date": [dt.date(2025, 3, 2)], "cnk": [RED10],
                          "quantity": [1], "amount_eur": [15.71]})  # fmt: skip
    frame.write_parquet(tmp_path / "mar.parquet")
    assert cli("--db", db, "load", tmp_path / "mar.parquet")[0] == 0
    assert ledger(db)[-1] == ("mar.parquet", 1, 0, 1, 0, 0)


def test_identical_rows_in_one_file_are_distinct_occurrences(cli, db, tmp_path):
    row = ["P1", "PH1", "14/03/2025", RED10, "1", "15,71"]
    two = write_delimited(tmp_path / "two.csv", CANONICAL_HEADER, [row, row])
    three = write_delimited(tmp_path / "three.csv", CANONICAL_HEADER, [row, row, row])
    cli("--db", db, "load", two)
    cli("--db", db, "load", two)
    cli("--db", db, "load", three)
    assert ledger(db) == [
        ("two.csv", 2, 2, 0, 0, 0),
        ("two.csv", 2, 0, 2, 0, 0),
        ("three.csv", 3, 1, 2, 0, 0),
    ]
    assert query(db, "select occurrence from billing_lines order by 1") == [(1,), (2,), (3,)]


def test_rejects_of_a_reloaded_file_are_kept_once(cli, db, tmp_path):
    path = write_delimited(
        tmp_path / "r.csv", CANONICAL_HEADER, [["P1", "PH1", "14/03/2025", INIT5, "7", "1"]]
    )
    cli("--db", db, "load", path)
    cli("--db", db, "load", path)
    assert rejects(db) == [(2, "quantity_out_of_range")]
    assert [r[-1] for r in ledger(db)] == [1, 1]


def test_corrections_are_stored_as_lines(cli, db, tmp_path):
    rows = [
        ["P1", "PH1", "14/03/2025", RED10, "1", "15,71"],
        ["P1", "PH1", "14/03/2025", RED10, "-1", "-15,71"],  # cancelled...
        ["P1", "PH1", "14/03/2025", RED10, "1", "15,71"],  # ...and billed again
    ]
    cli("--db", db, "load", write_delimited(tmp_path / "c.csv", CANONICAL_HEADER, rows))
    assert query(db, "select quantity, occurrence from billing_lines order by line_number") == [
        (1, 1),
        (-1, 1),
        (1, 2),
    ]


def test_several_files_each_atomic(cli, db, tmp_path):
    good = write_delimited(
        tmp_path / "good.csv", CANONICAL_HEADER, [["P1", "PH1", "14/03/2025", INIT5, "1", "1"]]
    )
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"")
    status, out, _ = cli("--db", db, "load", bad, good)
    assert status == 1
    assert "refused" in out and "empty" in out
    assert ledger(db) == [("good.csv", 1, 1, 0, 0, 0)]


def test_loads_command_lists_the_ledger(cli, db, tmp_path):
    path = write_delimited(
        tmp_path / "a.csv", CANONICAL_HEADER, [["P1", "PH1", "14/03/2025", INIT5, "1", "1"]]
    )
    cli("--db", db, "load", path)
    status, out, _ = cli("--db", db, "loads", "--format", "json")
    assert status == 0
    (entry,) = json.loads(out)
    assert entry["file_name"] == "a.csv"
    assert entry["rows_new"] == 1
    import hashlib

    assert entry["file_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert entry["min_delivery_date"] == "2025-03-14"


def test_no_warehouse_yet_is_a_plain_message(cli, tmp_path):
    status, _, err = cli("--db", tmp_path / "none.duckdb", "loads")
    assert status == 2
    assert "no warehouse" in err


# --- line numbers on every thread -----------------------------------------------------------


def numbered_rows(n: int) -> list[list[str]]:
    """Rows whose patient names their own line (`P<line>`, the header on line 1): every fifth
    a programme line, every 997th an invalid code (rejected), the others other medicines."""
    rows = []
    for line in range(2, n + 2):
        cnk = "55X" if line % 997 == 0 else (RED20 if line % 5 == 0 else "1234567")
        rows.append([f"P{line}", "PH1", "14/03/2025", cnk, "1", "15,71"])
    return rows


def assert_numbered_by_their_line(db, n_kept: int, n_rejected: int) -> None:
    lines_ = query(db, "select line_number, patient_id from billing_lines")
    assert len(lines_) == n_kept
    assert all(f"P{line}" == patient for line, patient in lines_)
    rejected = query(db, "select line_number, raw_values from rejects")
    assert len(rejected) == n_rejected
    # raw values as JSON ("P<line>" a value), or the raw line of a line DuckDB cannot split
    assert all(f'"P{line}"' in raw or f"P{line};" in raw for line, raw in rejected)


def test_line_numbers_follow_a_large_csv_read_on_several_threads(cli, db, tmp_path):
    # 1.2 million lines, about 45 MB: DuckDB splits the scan between threads. The
    # Windows-1252 byte (0x80, the euro sign) makes the load read a UTF-8 copy; lines that
    # cannot be split (DuckDB's own rejects) shift the numbering of every line after them.
    n = 1_200_000
    rows = numbered_rows(n)
    body = ["patient_id;pharmacy_id;delivery_date;cnk;quantity;amount_eur;label"]
    for i, row in enumerate(rows):
        line = i + 2
        extra = ";x" if line % 100_003 == 0 else ""  # a field too many: malformed
        body.append(";".join(row) + ";\x80" + extra)
    path = tmp_path / "numbered.csv"
    path.write_bytes(("\r\n".join(body) + "\r\n").encode("latin-1"))
    status, _, err = cli("--db", db, "load", path)
    assert status == 0, err
    malformed = [line for line in range(2, n + 2) if line % 100_003 == 0]
    kept = [line for line in range(2, n + 2) if line % 5 == 0 and line % 997 and line % 100_003]
    invalid = [line for line in range(2, n + 2) if line % 997 == 0 and line % 100_003]
    assert len(malformed) == 11
    assert_numbered_by_their_line(db, len(kept), len(invalid) + len(malformed))
    assert query(db, "select line_number from rejects where reason = 'malformed_line'") == [
        (line,) for line in malformed
    ]


def test_line_numbers_follow_a_parquet_file_of_many_row_groups(cli, db, tmp_path):
    n = 300_000
    frame = pl.DataFrame(numbered_rows(n), schema=CANONICAL_HEADER, orient="row")
    path = tmp_path / "numbered.parquet"
    frame.write_parquet(path, row_group_size=7_000)
    status, _, err = cli("--db", db, "load", path)
    assert status == 0, err
    # Parquet has no header row: the first row is line 1, so P<line> is at row line - 1.
    lines_ = query(db, "select line_number, patient_id from billing_lines")
    assert len(lines_) == len([x for x in range(2, n + 2) if x % 5 == 0 and x % 997])
    assert all(f"P{line + 1}" == patient for line, patient in lines_)


def test_line_numbers_follow_a_large_sheet(cli, db, tmp_path):
    n = 40_000
    path = tmp_path / "numbered.xlsx"
    book = xlsxwriter.Workbook(path, {"constant_memory": True})
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, CANONICAL_HEADER)
    for i, row in enumerate(numbered_rows(n), start=1):
        sheet.write_row(i, 0, row)
    book.close()
    status, _, err = cli("--db", db, "load", path)
    assert status == 0, err
    n_invalid = len([x for x in range(2, n + 2) if x % 997 == 0])
    n_kept = len([x for x in range(2, n + 2) if x % 5 == 0 and x % 997])
    assert_numbered_by_their_line(db, n_kept, n_invalid)


def test_a_scan_that_would_lose_the_file_order_is_stopped():
    import duckdb

    from etl.ingest.load import check_order_kept

    con = duckdb.connect()
    con.execute("create table t as select range as x from range(9)")
    check_order_kept(con, "select case when x > 2 then [x::varchar] end from t")
    with pytest.raises(RuntimeError, match="file's order"):  # an IN list becomes a join
        check_order_kept(con, "select x in (select 3) from t")


def test_date_shortcuts_read_what_the_formats_read():
    """normalise_lines.sql reads dd/mm/yyyy, yyyy-mm-dd, mm/yyyy and yyyy-mm with a date cast
    before its list of formats: on every day 00-39 of every month 00-19 of seven years, the
    delivery date and billing month must be those of the formats alone (SPEC §3)."""
    import duckdb

    import sql as sql_pkg

    dates, months, valid = [], [], 0
    for year in ("0000", "0001", "1999", "2020", "2024", "2025", "9999"):
        for month in range(20):
            months += [f"{month:02d}/{year}", f"{year}-{month:02d}"]
            for day in range(40):
                dates += [f"{day:02d}/{month:02d}/{year}", f"{year}-{month:02d}-{day:02d}"]
                try:
                    dt.date(int(year), month, day)
                    valid += 2
                except ValueError:
                    pass
    months += [None] * (len(dates) - len(months))
    con = duckdb.connect()
    con.execute("create table inputs (d varchar, m varchar)")
    con.execute(
        "insert into inputs select unnest(?::varchar[]), unnest(?::varchar[])", [dates, months]
    )
    con.execute(
        "create temp view load_source as select row_number() over () as line_number, "
        "'P1' as patient_id, 'PH1' as pharmacy_id, d as delivery_date, '5521950' as cnk, "
        "'1' as quantity, '1' as amount_eur, m as billing_month, null as insurer_code, "
        "null as patient_birth_year, null as patient_sex, null as pharmacy_postcode, "
        "null as prescriber_id, null as atc from inputs"
    )
    # The tables normalise_lines.sql reads to tell programme lines from BZRA lines (SPEC §14).
    con.execute("create table fee_codes (cnk varchar)")
    con.execute("insert into fee_codes values ('5521950')")
    con.execute("create table product_reference (cnk varchar, atc varchar)")
    con.execute("create temp table rows as " + sql_pkg.read_sql("load/normalise_lines.sql"))
    day_formats = (
        "['%Y-%m-%d', '%d/%m/%Y', '%d-%m-%Y', '%d.%m.%Y', '%Y%m%d', "
        "'%Y-%m-%d %H:%M:%S', '%Y-%m-%dT%H:%M:%S', '%d/%m/%Y %H:%M:%S']"
    )
    month_formats = (
        "coalesce(try_strptime(bm || '-01', '%Y-%m-%d'), try_strptime(bm || '01', '%Y%m%d'), "
        "try_strptime('01/' || bm, '%d/%m/%Y'), try_strptime('01-' || bm, '%d-%m-%Y'), "
        "try_strptime(bm, ['%Y-%m-%d', '%d/%m/%Y', '%d-%m-%Y', '%Y-%m-%d %H:%M:%S']))"
    )
    n, n_dates, n_months, different = con.execute(
        f"""
        select count(*),
               count(r.delivery_date) filter (where year(r.delivery_date) > 0),
               count(r.billing_month),
               count(*) filter (where
                   r.delivery_date is distinct from try_strptime(d, {day_formats})::date
                   or r.billing_month is distinct from strftime({month_formats}, '%Y-%m'))
        from rows r join (select *, billing_month as bm, delivery_date as d from load_source)
            using (line_number)
        """
    ).fetchone()
    assert n == len(dates) == 7 * 20 * 40 * 2
    assert n_dates == valid  # every real day of years 1-9999, in both forms
    assert n_months >= 6 * 12 * 2
    assert different == 0
