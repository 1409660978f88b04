"""The dashboard's downloads carry a header block (month, as-of date, provisional, disclosure
control) in the reader's language, and their CSV uses the reader's decimal separator (issue 18
item 3); the command line's CSV (SPEC §10) is not changed.

The warehouse holds four lines of March 2025 (as in tests/test_dashboard_smoke.py): P1 starts a
5-step programme on 3 March and gets a 10-capsule reduction step the same day, P2 and P3 start
10-step programmes on 4 and 5 March. By hand (SPEC §2, P = 2.2193):
- an initiation interview: round(2.2193 × 10.47, 2) = round(23.236071, 2) = 23.24;
- a reduction step: round(2.2193 × 7.08, 2) = round(15.712644, 2) = 15.71;
- fees of March: 5 steps 23.24 + 15.71 = 38.95; 7 steps 0.00; 10 steps 2 × 23.24 = 46.48;
  total 85.43.
- as-of date: the latest delivery, 5 March 2025; March is provisional (SPEC §6: 5 March is
  earlier than 31 March + 60 days).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import openpyxl
import pytest

from bench.served import callback_body
from dashboard.app import create_app
from etl.base.registry import load_registry
from etl.cli import main as cli_main
from etl.exports import DownloadHeader, download_csv, download_xlsx
from tests.browser import download_of
from tests.conftest import four_line_warehouse

FEES = load_registry().metric("fees_estimated_eur")
PATIENTS = load_registry().metric("patients_initiated")


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    folder = tmp_path_factory.mktemp("downloads")
    return four_line_warehouse(folder)


@pytest.fixture(scope="module")
def client(db):
    return create_app(db).server.test_client()


def _state_download(client, search: str, fmt: str) -> tuple[str, bytes]:
    pressed = f"state-download-{fmt}-button"
    inputs = [
        (f"state-download-{f}-button", "n_clicks", 1 if f == fmt else None) for f in ("csv", "xlsx")
    ]
    body = callback_body(
        "state-download.data", inputs, [("url", "search", search)], changed=f"{pressed}.n_clicks"
    )
    response = client.post("/_dash-update-component", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return download_of(response.get_json(), "state-download.data")


# --- the helper ------------------------------------------------------------------------------


def _header(lang: str, suppressed: bool = False) -> DownloadHeader:
    return DownloadHeader(
        lang=lang,
        month="2025-03",
        as_of=dt.date(2025, 3, 5),
        provisional=True,
        suppressed=suppressed,
        threshold=5,
    )


@pytest.mark.parametrize(
    "lang,lines",
    [
        ("fr", ["Mois;mars 2025", "Date de référence;5 mars 2025",
                "Statut;Le mois est provisoire : une facturation tardive peut encore ajouter des "
                "événements.",
                "Contrôle de divulgation;non appliqué : chiffres exacts, à usage interne uniquement",
                "", "metric;value", "a;12,5", "b;-3", "c;0,25"]),
        ("en", ["Month,March 2025", "As-of date,5 March 2025",
                "Status,The month is provisional: late billing may still add events.",
                "Disclosure control,\"not applied: exact figures, for internal use only\"",
                "", "metric,value", "a,12.5", "b,-3", "c,0.25"]),
    ],
)  # fmt: skip
def test_csv_header_block_and_decimal_separator(lang, lines):
    """fr/nl: semicolons and a decimal comma (what Excel in fr-BE/nl-BE reads as numbers);
    en: commas and a decimal point. A byte-order mark and CRLF line ends for spreadsheets."""
    from decimal import Decimal

    text = download_csv(
        _header(lang), ["metric", "value"], [["a", 12.5], ["b", -3], ["c", Decimal("0.25")]]
    )
    assert text.startswith("\ufeff")
    assert text[1:].split("\r\n")[:-1] == lines


def test_nl_csv_uses_the_decimal_comma():
    text = download_csv(_header("nl"), ["m", "v"], [["a", 1.5]])
    assert "a;1,5\r\n" in text and text.startswith("\ufeffMaand;maart 2025")


def test_suppressed_download_names_the_rules():
    """SPEC §9: a suppressed output says that disclosure control was applied and which rules
    (threshold 5: counts 1 to 4 shown as <5)."""
    text = download_csv(_header("en", suppressed=True), ["m"], [])
    assert 'Disclosure control,"applied: counts from 1 to 4 are shown as <5;' in text


def test_xlsx_header_rows_and_numeric_cells():
    data = download_xlsx(_header("en"), "2025-03", ["metric", "value"], [["a", 12.5], ["b", 3]])
    sheet = openpyxl.load_workbook(io.BytesIO(data))["2025-03"]
    cells = [[c.value for c in row] for row in sheet.iter_rows()]
    assert cells[0] == ["Month", "March 2025"]
    assert cells[1] == ["As-of date", "5 March 2025"]
    assert cells[2][0] == "Status" and cells[3][0] == "Disclosure control"
    assert cells[4] == [None, None]
    assert cells[5:] == [["metric", "value"], ["a", 12.5], ["b", 3]]
    assert sheet.cell(row=7, column=2).data_type == "n"


# --- the state-of-play downloads -------------------------------------------------------------


def _rows(text: str, delimiter: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=delimiter))


@pytest.mark.parametrize(
    "lang,delimiter,fees",
    [("fr", ";", ["38,95", "0,00", "46,48", "85,43"]),
     ("nl", ";", ["38,95", "0,00", "46,48", "85,43"]),
     ("en", ",", ["38.95", "0.00", "46.48", "85.43"])],
)  # fmt: skip
def test_state_csv_has_the_header_and_the_locale_decimals(client, lang, delimiter, fees):
    name, data = _state_download(client, f"?lang={lang}&month=2025-03", "csv")
    assert name == "state-of-play-2025-03.csv"
    rows = _rows(data.decode("utf-8"), delimiter)
    assert len(rows[0]) == 2 and len(rows[1]) == 2  # month, as-of date
    assert "5" in rows[1][1] and "2025" in rows[1][1]
    table = {row[0]: row[1:] for row in rows[5:]}
    assert table[FEES.label(lang)][:4] == fees
    assert table[PATIENTS.label(lang)][:4] == ["1", "0", "2", "3"]


def test_state_csv_in_the_publication_view_says_it_is_suppressed(client):
    name, data = _state_download(client, "?lang=en&month=2025-03&view=publication", "csv")
    rows = _rows(data.decode("utf-8"), ",")
    assert rows[0] == ["Month", "March 2025"]
    assert rows[1] == ["As-of date", "5 March 2025"]
    assert rows[2] == ["Status", "The month is provisional: late billing may still add events."]
    assert rows[3][0] == "Disclosure control" and rows[3][1].startswith(
        "applied: counts from 1 to 4"
    )
    table = {row[0]: row[1:] for row in rows[5:]}
    assert table[PATIENTS.label("en")][:4] == ["<5", "0", "<5", "<5"]


def test_state_xlsx_keeps_numbers_under_the_header(client):
    name, data = _state_download(client, "?lang=fr&month=2025-03", "xlsx")
    assert name == "state-of-play-2025-03.xlsx"
    sheet = openpyxl.load_workbook(io.BytesIO(data))["2025-03"]
    cells = [[c.value for c in row] for row in sheet.iter_rows()]
    assert cells[0] == ["Mois", "mars 2025", None, None, None, None]
    assert cells[1][:2] == ["Date de référence", "5 mars 2025"]
    table = {row[0]: row[1:] for row in cells[6:]}
    assert table[PATIENTS.label("fr")][:4] == [1, 0, 2, 3]
    assert [float(v) for v in table[FEES.label("fr")][:4]] == [38.95, 0.0, 46.48, 85.43]


def test_the_command_line_csv_is_unchanged(db, capsys):
    """SPEC §10: `report --format csv` is the machine contract: commas, a decimal point, no
    header block, no byte-order mark."""
    assert cli_main(["--db", str(db), "report", "--month", "2025-03", "--format", "csv",
                     "--no-suppress"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert not out.startswith("\ufeff") and "\r\n" not in out
    first = out.splitlines()[0]
    assert "Month" not in first and "Mois" not in first
    doc = json.loads(
        cli_main(["--db", str(db), "report", "--month", "2025-03", "--no-suppress"]) == 0
        and capsys.readouterr().out
    )
    assert doc["schemes"]["total"]["fees_estimated_eur"] == 85.43
    assert "85.43" in out


def test_compliance_csv_has_the_header_block(client):
    """The compliance export has no month: its header block is the as-of date and the
    disclosure control (French: semicolons)."""
    body = callback_body(
        "compliance-download.data",
        [("compliance-export-button", "n_clicks", 1)],
        [("url", "search", "?lang=fr&view=publication")],
    )
    response = client.post("/_dash-update-component", json=body)
    assert response.status_code == 200
    name, data = download_of(response.get_json(), "compliance-download.data")
    assert name == "compliance-counts-2025-03-05.csv"
    rows = _rows(data.decode("utf-8"), ";")
    assert rows[0] == ["Date de référence", "5 mars 2025"]
    assert rows[1][0] == "Contrôle de divulgation"
    assert rows[1][1].startswith("appliqué")
    assert rows[2] == []
    assert rows[3][:2] == ["Situation au", "Règle"]
