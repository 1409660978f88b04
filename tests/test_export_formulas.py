"""Issue 7, item 1 (exports): text from a billing export never becomes a spreadsheet formula in
any export, and numbers stay numbers.

Two real exports are loaded whose text fields (patient, pharmacy, prescriber, insurer,
postcode, the file names themselves) start with =, +, -, @, with a correction line (quantity
-1, amount -23,24) and rejected rows. Then every export is written and read back:

- CSV (`report`, `cohorts`, `compliance`, `loads`, `rejects`, `reports` --format csv, and the
  dashboard's downloads): no cell starts with =, +, -, @, a tab or a line break unless it is a
  number; such text gets a leading apostrophe, and numbers get none;
- xlsx (the report pack of the CLI and the dashboard, the state-of-play table): no cell is a
  formula, text is the exact text, numbers (a revision of -1) are numbers;
- JSON: text exactly as loaded (JSON is not read as formulas), numbers as JSON numbers.

Inventory of the exports (etl/cli/, etl/outputs/report.py, etl/outputs/pack.py, etl/ingest/load.py `_emit`, and
`dcc.Download` in dashboard/pages/): the CLI's report (json, csv, xlsx, html, pdf), cohorts
(json, csv), compliance (json, csv), loads / rejects / reports (json, csv); the dashboard's
state-of-play table (csv, xlsx), report pack (xlsx, html) and compliance list (csv: findings in
the analyst view, counts per rule in the publication view). The pdf is the html printed by
Chromium (checked in tests/test_report_pack.py).
"""

from __future__ import annotations

import csv
import io
import json
import re

import openpyxl
import pytest

from bench.served import callback_body
from etl.cli import main as cli_main
from etl.exports import spreadsheet_safe
from tests.browser import download_of
from tests.conftest import write_delimited

HEADER = [
    "patient_id", "pharmacy_id", "delivery_date", "cnk", "quantity", "amount_eur",
    "insurer_code", "pharmacy_postcode", "prescriber_id",
]  # fmt: skip
LINK = '=HYPERLINK("http://x")'  # a patient
TWO = "-2+3"  # a patient
ONE = "+1+1"  # a pharmacy
SUM = "@SUM(A1)"  # a pharmacy
CALC = "=cmd|' /C calc'!A0"  # a pharmacy, on a rejected row
FIRST_FILE, SECOND_FILE = "=2+5.csv", "-1+1.csv"
FIRST_ROWS = [
    # A 10-step programme initiated at ONE, its reduction step at SUM (R06: another pharmacy)
    # and prescribed by another physician (R15).
    [LINK, ONE, "03/03/2025", "5521976", "1", "23,24", "=1+1", "-2+3", SUM],
    [LINK, SUM, "10/03/2025", "5521984", "1", "10,00", "+1", "=1", "-1"],
    # A 5-step programme with two follow-up interviews.
    [TWO, ONE, "04/03/2025", "5521950", "1", "23,24", "@x", "1000", "=x"],
    [TWO, ONE, "05/03/2025", "5522024", "1", "23,24", "@x", "1000", "=x"],
    [TWO, ONE, "06/03/2025", "5522024", "1", "23,24", "@x", "1000", "=x"],
    # Rejected: a CNK that is a formula, a quantity that is not a number.
    [SUM, CALC, "05/03/2025", "=1+1", "1", "1", "", "", ""],
    [ONE, TWO, "05/03/2025", "5521950", "x=1", "1", "", "", ""],
]
# The second export cancels TWO's initiation interview (a correction line): March's patients
# initiated go from 2 (as first reported, in pack 1) to 1, a revision of -1; TWO's two
# follow-up interviews are now before any initiation interview (R02 twice).
SECOND_ROWS = [[TWO, ONE, "04/03/2025", "5521950", "-1", "-23,24", "@x", "1000", "=x"]]

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
PLAIN_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")


def _runs_as_formula(cell: str) -> bool:
    """Would a spreadsheet opening the CSV run this cell? (A plain number is not a formula.)"""
    start = cell.lstrip(" ")
    return start.startswith(FORMULA_STARTS) and not PLAIN_NUMBER.fullmatch(start)


def _check_csv(rows: list[list[str]]) -> None:
    cells = [cell for row in rows for cell in row]
    assert [c for c in cells if _runs_as_formula(c)] == []
    # Numbers stay numbers: none got an apostrophe.
    assert [c for c in cells if c.startswith("'") and PLAIN_NUMBER.fullmatch(c[1:])] == []


def _parse_csv(text: str, delimiter: str = ",") -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.removeprefix("\ufeff")), delimiter=delimiter))


def _table_of_download(rows: list[list[str]]) -> list[list[str]]:
    """A dashboard download's table: the rows after its header block's empty line."""
    return rows[rows.index([]) + 1 :]


def _records(rows: list[list[str]]) -> list[dict[str, str]]:
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def _check_xlsx(data: bytes):
    book = openpyxl.load_workbook(io.BytesIO(data))
    cells = [c for s in book.worksheets for r in s.iter_rows() for c in r if c.value is not None]
    assert cells
    assert [c.coordinate for c in cells if c.data_type == "f"] == []
    # Text never became a number or a formula: the text cells hold no leading "=".
    assert not [c for c in cells if isinstance(c.value, str) and c.value.startswith("'")]
    return book


def _cli(capsys, *args) -> str:
    status = cli_main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert status == 0, err
    return out


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A warehouse of the two exports, with pack 1 of March 2025 issued between them (so the
    second pack shows a revision of -1) and pack 2 after them."""
    folder = tmp_path_factory.mktemp("hostile")
    db = folder / "warehouse.duckdb"
    first = write_delimited(folder / FIRST_FILE, HEADER, FIRST_ROWS)
    second = write_delimited(folder / SECOND_FILE, HEADER, SECOND_ROWS)
    packs = {}
    for i, path in enumerate((first, second), start=1):
        assert cli_main(["--db", str(db), "load", str(path), "--no-progress"]) == 0
        packs[i] = folder / f"pack-{i}.xlsx"
        status = cli_main(
            ["--db", str(db), "report", "--month", "2025-03", "--format", "xlsx", "--lang", "en",
             "--no-suppress", "--output", str(packs[i])]
        )  # fmt: skip
        assert status == 0
    return db, packs


# --- CLI: CSV ---------------------------------------------------------------------------------


CSV_COMMANDS = {
    "report": ["report", "--month", "2025-03", "--format", "csv", "--no-suppress"],
    "report-suppressed": ["report", "--month", "2025-03", "--format", "csv"],
    "cohorts": ["cohorts", "--format", "csv", "--no-suppress"],
    "compliance": ["compliance", "--format", "csv"],
    "loads": ["loads", "--format", "csv"],
    "rejects": ["rejects", "--format", "csv"],
    "reports": ["reports", "--format", "csv"],
}


@pytest.mark.parametrize("name", CSV_COMMANDS)
def test_no_cli_csv_cell_runs_as_a_formula(hostile, capsys, name):
    db, _ = hostile
    rows = _parse_csv(_cli(capsys, "--db", db, *CSV_COMMANDS[name]))
    assert len(rows) > 1
    _check_csv(rows)


def test_cli_csv_keeps_the_values_behind_an_apostrophe(hostile, capsys):
    db, _ = hostile
    findings = _records(_parse_csv(_cli(capsys, "--db", db, "compliance", "--format", "csv")))
    assert sorted((f["rule"], f["patient_id"], f["pharmacy_id"]) for f in findings) == [
        ("R02", "'" + TWO, "'" + ONE),
        ("R02", "'" + TWO, "'" + ONE),
        ("R06", "'" + LINK, "'" + SUM),
        # SPEC v2 R15: the step's prescriber (-1) differs from the initiation's (@SUM(A1)).
        ("R15", "'" + LINK, "'" + SUM),
    ]
    assert {f["programme_id"] for f in findings if f["rule"] == "R06"} == {"'" + LINK + "#1"}
    loads = _records(_parse_csv(_cli(capsys, "--db", db, "loads", "--format", "csv")))
    assert [(r["file_name"], r["rows_new"], r["rows_rejected"]) for r in loads] == [
        ("'" + FIRST_FILE, "5", "2"),
        ("'" + SECOND_FILE, "1", "0"),
    ]
    # Rejected rows keep their raw values (a JSON object: it starts with "{", never a formula).
    rejects = _records(_parse_csv(_cli(capsys, "--db", db, "rejects", "--format", "csv")))
    assert [(r["file_name"], r["line_number"], r["reason"]) for r in rejects] == [
        ("'" + FIRST_FILE, "7", "cnk_invalid"),
        ("'" + FIRST_FILE, "8", "quantity_not_integer"),
    ]
    raw = json.loads(rejects[0]["raw_values"])
    assert (raw["patient_id"], raw["pharmacy_id"], raw["cnk"]) == (SUM, CALC, "=1+1")
    # The state of play: 1 patient initiated in March (LINK; TWO's initiation was cancelled),
    # numbers written as numbers.
    state = _records(
        _parse_csv(
            _cli(capsys, "--db", db, "report", "--month", "2025-03", "--format", "csv",
                 "--no-suppress")
        )
    )  # fmt: skip
    total = next(r for r in state if r["scheme"] == "total")
    assert total["patients_initiated"] == "1"
    assert float(total["fees_estimated_eur"]) > 0


def test_the_helper_defuses_text_and_leaves_numbers():
    for text in (LINK, TWO, ONE, SUM, CALC, "\t=1", "\r=1", " =1+1", "-", "+", "@", "-x"):
        assert spreadsheet_safe(text) == "'" + text
    for value in ("-1", "+32", "-12.50", "-1,5", "1e-3", "PH1", "", "a=b", -1, -23.24, None):
        assert spreadsheet_safe(value) == value


# --- CLI: JSON and xlsx -----------------------------------------------------------------------


def test_cli_json_keeps_text_exactly_and_numbers_as_numbers(hostile, capsys):
    db, _ = hostile
    doc = json.loads(_cli(capsys, "--db", db, "compliance", "--format", "json"))
    assert {(f["patient_id"], f["pharmacy_id"]) for f in doc["findings"]} == {
        (TWO, ONE),
        (LINK, SUM),
    }
    loads = json.loads(_cli(capsys, "--db", db, "loads", "--format", "json"))
    assert [(r["file_name"], r["rows_new"]) for r in loads] == [(FIRST_FILE, 5), (SECOND_FILE, 1)]
    rejects = json.loads(_cli(capsys, "--db", db, "rejects", "--format", "json"))
    assert json.loads(rejects[1]["raw_values"])["quantity"] == "x=1"
    report = json.loads(
        _cli(capsys, "--db", db, "report", "--month", "2025-03", "--format", "json",
             "--no-suppress")
    )  # fmt: skip
    assert report["schemes"]["total"]["patients_initiated"] == 1


def _sheet(book, title: str) -> list[list]:
    return [[c.value for c in row] for row in book[title].iter_rows()]


def test_cli_pack_xlsx_has_no_formula_and_numbers_stay_numbers(hostile):
    _, packs = hostile
    book = _check_xlsx(packs[2].read_bytes())
    files = _sheet(book, "Export files")
    assert [(row[0], row[1]) for row in files[1:]] == [(1, FIRST_FILE), (2, SECOND_FILE)]
    revisions = _sheet(book, "Revisions")
    header = revisions[0]
    march = next(row for row in revisions if row[0] == "2025-03")
    total = {name: march[i] for i, name in enumerate(header) if name.startswith("Total")}
    # First reported 2 (pack 1), now 1: a revision of -1, the number -1.
    assert total == {
        "Total — first reported": 2,
        "Total — now": 1,
        "Total — difference": -1,
    }
    assert book["Revisions"].cell(row=revisions.index(march) + 1, column=7).data_type == "n"


def test_cli_pack_html_shows_file_names_as_text(hostile, tmp_path):
    db, _ = hostile
    out = tmp_path / "pack.html"
    status = cli_main(
        ["--db", str(db), "report", "--month", "2025-03", "--format", "html", "--lang", "fr",
         "--no-suppress", "--output", str(out)]
    )  # fmt: skip
    assert status == 0
    text = out.read_text(encoding="utf-8")
    assert f">{FIRST_FILE}<" in text and f">{SECOND_FILE}<" in text
    assert "HYPERLINK" not in text  # no pseudonymised identifier in the pack


# --- the dashboard's downloads ----------------------------------------------------------------


@pytest.fixture(scope="module")
def dashboard(hostile):
    from dashboard.app import create_app

    db, _ = hostile
    return create_app(db).server.test_client()


def _download(client, output: str, inputs, search: str, changed: str | None = None):
    # The pack's callback also answers a message (no Chromium for the PDF): both outputs.
    outputs = [output, "state-pack-message.children"] if output.startswith("state-pack") else output
    body = callback_body(outputs, inputs, [("url", "search", search)], changed)
    response = client.post("/_dash-update-component", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return download_of(response.get_json(), output)


def test_dashboard_compliance_csv_defuses_formulas(dashboard):
    button = [("compliance-export-button", "n_clicks", 1)]
    name, data = _download(dashboard, "compliance-download.data", button, "?lang=nl")
    assert name.startswith("compliance-findings-")
    rows = _table_of_download(_parse_csv(data.decode("utf-8"), ";"))
    _check_csv(rows)
    # The headers in the page's language (Dutch).
    keys = ("Regel", "Patiënt (gepseudonimiseerd)", "Apotheek (gepseudonimiseerd)")
    assert sorted(tuple(r[k] for k in keys) for r in _records(rows)) == [
        ("R02", "'" + TWO, "'" + ONE),
        ("R02", "'" + TWO, "'" + ONE),
        ("R06", "'" + LINK, "'" + SUM),
        # SPEC v2 R15: the step's prescriber (-1) differs from the initiation's (@SUM(A1)).
        ("R15", "'" + LINK, "'" + SUM),
    ]
    search = "?lang=fr&view=publication"
    name, data = _download(dashboard, "compliance-download.data", button, search)
    assert name.startswith("compliance-counts-")
    rows = _table_of_download(_parse_csv(data.decode("utf-8"), ";"))
    _check_csv(rows)
    assert {r["Règle"]: r["Constats"] for r in _records(rows)}["R02"] == "<5"


@pytest.mark.parametrize("lang", ["fr", "nl", "en"])
def test_dashboard_state_downloads_keep_numbers(dashboard, lang):
    inputs = [
        ("state-download-csv-button", "n_clicks", 1),
        ("state-download-xlsx-button", "n_clicks", None),
    ]
    search = f"?lang={lang}&month=2025-03"
    name, data = _download(dashboard, "state-download.data", inputs, search)
    assert name == "state-of-play-2025-03.csv"
    rows = _parse_csv(data.decode("utf-8"), "," if lang == "en" else ";")
    _check_csv(rows)
    rows = _table_of_download(rows)
    # The first metric is patients initiated: 0, 0, 1 for the schemes 5, 7, 10, 1 in total.
    assert rows[1][1:5] == ["0", "0", "1", "1"]
    changed = "state-download-xlsx-button.n_clicks"
    name, data = _download(dashboard, "state-download.data", inputs, search, changed)
    assert name == "state-of-play-2025-03.xlsx"
    book = _check_xlsx(data)
    # Below the header block (month, as-of date, status, disclosure), an empty row, the header.
    first = [c for c in next(book.worksheets[0].iter_rows(min_row=7, max_row=7))]
    assert [c.value for c in first[1:5]] == [0, 0, 1, 1]
    assert {c.data_type for c in first[1:5]} == {"n"}


def test_dashboard_pack_downloads_have_no_formula(dashboard):
    inputs = [
        ("state-pack-xlsx-button", "n_clicks", 1),
        ("state-pack-html-button", "n_clicks", None),
        ("state-pack-pdf-button", "n_clicks", None),
    ]
    search = "?lang=en&month=2025-03&view=analyst"
    name, data = _download(dashboard, "state-pack-download.data", inputs, search)
    assert name == "report-2025-03-en.xlsx"
    book = _check_xlsx(data)
    assert [row[1] for row in _sheet(book, "Export files")[1:]] == [FIRST_FILE, SECOND_FILE]
    changed = "state-pack-html-button.n_clicks"
    name, data = _download(dashboard, "state-pack-download.data", inputs, search, changed)
    assert name == "report-2025-03-en.html"
    text = data.decode("utf-8")
    assert FIRST_FILE in text and SECOND_FILE in text  # file names as text
    assert LINK not in text and "HYPERLINK" not in text  # no pseudonymised identifier
