"""The monthly report pack (issue 5): xlsx/html/pdf, revisions, the report archive.

Small warehouses loaded through the real loader (so the load ledger and the billing months
are real); expected figures worked out by hand below.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import shutil

import openpyxl
import pytest

from etl.base import warehouse
from etl.base.config import load_config
from etl.base.disclosure import Disclosure
from etl.base.warehouse import dict_rows
from etl.outputs import pack, pack_render, report
from tests.conftest import write_delimited
from tests.sqlcase import INIT5, INIT7, INIT10, RED10, cli_json, run_cli

HEADER = ["patient_id", "pharmacy_id", "delivery_date", "cnk", "quantity", "billing_month"]
COUNT_FORMATS = ("#,##0", "+#,##0;-#,##0;0")

# Three monthly exports (billing months May, June, July 2025). Patient I's initiation of
# 15 May arrives two months late (billed in July), patient J's of 20 June one month late.
MAY = [
    ["A", "PH1", "05/05/2025", INIT10, 1, "2025-05"],
    ["B", "PH1", "12/05/2025", INIT5, 1, "2025-05"],
    ["C", "PH2", "20/05/2025", INIT10, 1, "2025-05"],
    ["D", "PH2", "31/05/2025", INIT10, 1, "2025-05"],  # Saturday 31 May: last working day
    ["A", "PH1", "05/05/2025", RED10, 1, "2025-05"],
]
JUNE = [
    ["E", "PH1", "10/06/2025", INIT7, 1, "2025-06"],
    ["F", "PH1", "30/06/2025", INIT10, 1, "2025-06"],  # Monday 30 June
]
JULY = [
    ["G", "PH3", "15/07/2025", INIT10, 1, "2025-07"],
    ["H", "PH3", "31/07/2025", INIT5, 1, "2025-07"],
    ["I", "PH3", "15/05/2025", INIT7, 1, "2025-07"],  # two months late
    ["J", "PH3", "20/06/2025", INIT10, 1, "2025-07"],  # one month late
]


def _load(tmp_path, db, name: str, rows: list[list]) -> None:
    path = write_delimited(tmp_path / name, HEADER, rows)
    status, out = run_cli("--db", str(db), "load", str(path), "--no-progress")
    assert status == 0, out


def _workbook(path):
    return openpyxl.load_workbook(path)


def _table(sheet) -> list[list]:
    return [list(row) for row in sheet.iter_rows(values_only=True)]


@pytest.fixture(scope="module")
def revised(tmp_path_factory):
    """May and June loaded; a June pack issued as of 15 June; then July loaded."""
    tmp = tmp_path_factory.mktemp("revised")
    db = tmp / "w.duckdb"
    _load(tmp, db, "export_2025-05.csv", MAY)
    _load(tmp, db, "export_2025-06.csv", JUNE)
    out = tmp / "june.xlsx"
    status, printed = run_cli(
        "--db", str(db), "report", "--month", "2025-06", "--as-of", "2025-06-15",
        "--format", "xlsx", "--lang", "en", "--output", str(out), "--no-suppress",
    )  # fmt: skip
    assert status == 0 and printed.strip() == str(out)
    _load(tmp, db, "export_2025-07.csv", JULY)
    return db


def _revisions(db) -> dict:
    con = warehouse.connect(db, read_only=True, config=load_config())
    try:
        report.set_report_month(con, "2025-07")
        rows = dict_rows(con, "select * from mart_state_of_play_revisions")
    finally:
        con.close()
    return {(r["month"], r["scheme"]): r for r in rows}


def test_revision_table_with_late_lines(revised):
    rows = _revisions(revised)
    assert len(rows) == 12 * 4  # August 2024 to July 2025, schemes 5, 7, 10 and total
    # May: first reported by load 1 (its latest delivery, Saturday 31 May, is May's last
    # working day): A, B, C, D = 4 (5 steps: B; 10 steps: A, C, D). Now I (7 steps, billed
    # two months late) is in: 5.
    may = rows[("2025-05", "total")]
    assert (may["first_reported_source"], may["first_reported_load_id"]) == ("ledger", 1)
    assert may["first_reported_as_of_date"] == dt.date(2025, 5, 31)
    assert (may["patients_initiated_first_reported"], may["patients_initiated"]) == (4, 5)
    assert may["patients_initiated_revision"] == 1
    assert rows[("2025-05", "7")]["patients_initiated_revision"] == 1
    assert rows[("2025-05", "10")]["patients_initiated_first_reported"] == 3
    assert rows[("2025-05", "5")]["patients_initiated_revision"] == 0
    # June: the archived June pack (as of 15 June) first reported E only = 1; now E, F, J = 3.
    june = rows[("2025-06", "total")]
    assert (june["first_reported_source"], june["first_reported_report_id"]) == ("archive", 1)
    assert june["first_reported_as_of_date"] == dt.date(2025, 6, 15)
    assert (june["patients_initiated_first_reported"], june["patients_initiated"]) == (1, 3)
    assert rows[("2025-06", "10")]["patients_initiated_revision"] == 2
    # July: first reported by load 3 (Thursday 31 July): G, H = 2, unchanged.
    july = rows[("2025-07", "total")]
    assert (july["first_reported_source"], july["first_reported_load_id"]) == ("ledger", 3)
    assert (july["patients_initiated_first_reported"], july["patients_initiated_revision"]) == (
        2,
        0,
    )
    # Months without any initiation: nothing to revise.
    assert rows[("2024-08", "total")]["patients_initiated"] == 0


def test_first_reported_equals_the_state_of_play_of_that_load(revised):
    """The one-pass reconstruction equals mart_state_of_play seen through max_load_id."""
    con = warehouse.connect(revised, read_only=True, config=load_config())
    try:
        warehouse.set_max_load_id(con, 1)
        warehouse.set_as_of(con, dt.date(2025, 5, 31))
        (may,) = con.execute(
            "select patients_initiated from mart_state_of_play "
            "where month = '2025-05' and scheme = 'total'"
        ).fetchone()
        (latest,) = con.execute("select max(load_id) from stg_loads").fetchone()
    finally:
        con.close()
    assert (may, latest) == (4, 1)


def test_share_known_after_billing_months(revised):
    con = warehouse.connect(revised, read_only=True, config=load_config())
    try:
        report.set_report_month(con, "2025-07")
        rows = dict_rows(
            con, "select * from mart_state_of_play_billing_delay order by n_billing_months"
        )
    finally:
        con.close()
    # As of 31 July: May is final (31 May + 60 days = 30 July), June and July provisional.
    # May's 5 final initiations: A, B, C, D billed in May, I in July.
    assert [(r["first_month"], r["last_month"], r["n_months"]) for r in rows] == [
        ("2024-08", "2025-05", 10)
    ] * 3
    assert [r["n_initiations_with_billing_month"] for r in rows] == [5, 5, 5]
    assert [r["n_initiations_known"] for r in rows] == [4, 4, 5]
    assert [float(r["share_known"]) for r in rows] == [0.8, 0.8, 1.0]


def test_workbook_cells_equal_the_json_report(revised, tmp_path):
    for flags in ([], ["--no-suppress"]):
        out = tmp_path / f"pack{len(flags)}.xlsx"
        status, _ = run_cli(
            "--db", str(revised), "report", "--month", "2025-07", "--format", "xlsx",
            "--lang", "en", "--output", str(out), *flags,
        )  # fmt: skip
        assert status == 0
        doc = cli_json(revised, "report", "--month", "2025-07", *flags)
        rules = cli_json(revised, "compliance", *flags)["rules"]
        book = _workbook(out)
        table = _table(book["State of play"])
        header, rows = table[0], table[1:]
        assert header[1:6] == [
            "5-step scheme", "7-step scheme", "10-step scheme", "Total", "Unassigned events",
        ]  # fmt: skip
        by_id = {row[-1]: row for row in rows}
        for metric in ["patients_initiated", "initiations_billed", "fees_estimated_eur"]:
            for i, scheme in enumerate(["5", "7", "10", "total"], start=1):
                assert by_id[metric][i] == doc["schemes"][scheme][metric], (metric, scheme)
        for metric, cells in by_id.items():
            for i, scheme in enumerate(["5", "7", "10", "total"], start=1):
                figures = doc["schemes"][scheme]
                expected = figures.get(metric)
                if metric.startswith("reduction_steps_") and metric.endswith("_capsules"):
                    expected = figures["reduction_steps_by_capsules"][metric.split("_")[2]]
                assert cells[i] == expected, (metric, scheme)
        assert (
            by_id["reduction_steps_delivered"][5] == doc["unassigned"]["reduction_steps_delivered"]
        )
        compliance = {row[0]: row[3] for row in _table(book["Compliance"])[1:]}
        # R16-R18 (SPEC §14) are null, not 0, in both while no BZRA delivery is loaded.
        assert {rule: rules[rule] for rule in ("R16", "R17", "R18")} == dict.fromkeys(
            ("R16", "R17", "R18")
        )
        assert compliance == rules
        assert list(compliance) == [f"R{n:02d}" for n in range(1, 19)]
    # Exact figures, by hand: July 2025 has G (10 steps) and H (5 steps); 2 x 23.24 = 46.48.
    assert by_id["patients_initiated"][1:5] == [1, 0, 1, 2]
    assert by_id["fees_estimated_eur"][4] == 46.48
    # The cumulative count as of 31 July: A-J = 10 patients.
    assert by_id["patients_initiated_cumulative"][4] == 10


def test_suppressed_workbook_has_no_count_from_1_to_4(revised, tmp_path):
    def counts(path) -> list:
        found = []
        for sheet in _workbook(path).worksheets:
            for row in sheet.iter_rows():
                for cell in row:
                    if cell.number_format in COUNT_FORMATS and cell.data_type == "n":
                        found.append(cell.value)
        return found

    exact, masked = tmp_path / "exact.xlsx", tmp_path / "masked.xlsx"
    for out, flags in ((exact, ["--no-suppress"]), (masked, [])):
        status, _ = run_cli(
            "--db", str(revised), "report", "--month", "2025-07", "--format", "xlsx",
            "--output", str(out), *flags,
        )  # fmt: skip
        assert status == 0
    assert any(0 < abs(v) < 5 for v in counts(exact))  # the case has small counts
    shown = counts(masked)
    assert shown and all(v == 0 or abs(v) >= 5 for v in shown)
    texts = [c.value for s in _workbook(masked).worksheets for r in s.iter_rows() for c in r]
    assert "<5" in texts


def test_no_text_from_an_export_becomes_a_formula(tmp_path):
    db = tmp_path / "w.duckdb"
    rows = [
        ["=1+1", '=HYPERLINK("x")', "02/06/2025", INIT10, 1, "2025-06"],
        ["+32475", "+32", "03/06/2025", INIT5, 1, "2025-06"],
        ["-x", "-2", "04/06/2025", INIT7, 1, "2025-06"],
        ["@SUM(A1)", "@SUM(1)", "05/06/2025", INIT10, 1, "2025-06"],
    ]
    names = ["=1+1.csv", "+32.csv", "-x.csv", "@SUM(A1).csv"]
    for name, row in zip(names, rows, strict=True):
        _load(tmp_path, db, name, [row])
    out = tmp_path / "pack.xlsx"
    status, _ = run_cli(
        "--db", str(db), "report", "--month", "2025-06", "--format", "xlsx", "--lang", "nl",
        "--output", str(out), "--no-suppress",
    )  # fmt: skip
    assert status == 0
    book = _workbook(out)
    cells = [c for s in book.worksheets for r in s.iter_rows() for c in r if c.value is not None]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    loads = _table(book["Exportbestanden"])
    assert [row[1] for row in loads[1:]] == names
    assert [row[0] for row in loads[1:]] == [1, 2, 3, 4]  # numbers stay numbers
    state = {row[-1]: row for row in _table(book["Stand van zaken"])[1:]}
    assert state["patients_initiated"][1:5] == [1, 1, 2, 4]
    # No pseudonymised identifier in the pack.
    document = html.unescape(pack_render.to_html(_build(db, "2025-06"), "fr"))
    assert "=1+1.csv" in document
    assert "+32475" not in document and "@SUM(1)" not in document


def _build(db, month: str, suppress: bool = False):
    con = warehouse.connect(db, read_only=True)
    try:
        return pack.build_pack(con, month, Disclosure(5, enabled=suppress), load_config())
    finally:
        con.close()


def test_reproducing_an_archived_pack_gives_the_same_data(revised, tmp_path):
    first = tmp_path / "first.xlsx"
    status, _ = run_cli(
        "--db", str(revised), "report", "--month", "2025-07", "--format", "xlsx",
        "--lang", "fr", "--output", str(first),
    )  # fmt: skip
    assert status == 0
    archive = json.loads(run_cli("--db", str(revised), "reports", "--format", "json")[1])
    issued = archive[-1]
    assert (issued["month"], issued["lang"], issued["format"]) == ("2025-07", "fr", "xlsx")
    assert issued["suppressed"] is True and issued["max_load_id"] == 3
    # A late line loaded afterwards changes the figures now, not the pack.
    _load(
        tmp_path, revised, "export_2025-08.csv", [["K", "PH1", "10/07/2025", INIT10, 1, "2025-08"]]
    )
    again = tmp_path / "again.xlsx"
    status, out = run_cli(
        "--db", str(revised), "report", "--reproduce", str(issued["report_id"]),
        "--output", str(again),
    )  # fmt: skip
    assert status == 0 and out.strip() == str(again)
    a, b = _workbook(first), _workbook(again)
    assert a.sheetnames == b.sheetnames
    for name in a.sheetnames:
        assert _table(a[name]) == _table(b[name]), name
    assert first.read_bytes() == again.read_bytes()  # fixed document dates: same file
    con = warehouse.connect(revised, read_only=True)
    try:
        row = pack.archived_packs(con)[-1]
    finally:
        con.close()
    assert row["content_sha256"] == issued["content_sha256"]
    # The same pack in Dutch HTML has the same data, hence the same content hash.
    html_out = tmp_path / "again.html"
    status, _ = run_cli(
        "--db", str(revised), "report", "--reproduce", str(issued["report_id"]),
        "--format", "html", "--output", str(html_out),
    )  # fmt: skip
    assert status == 0
    assert issued["content_sha256"] in html_out.read_text(encoding="utf-8")


def test_html_has_the_cover_and_every_section_in_french_and_dutch(revised):
    built = _build(revised, "2025-07", suppress=True)
    expected = {
        "fr": [
            "État des lieux mensuel du programme de sevrage",
            "Date de référence", "31 juillet 2025", "Mois provisoires", "juin 2025",
            "Fichiers d'export inclus", "export_2025-05.csv",
            "État des lieux mensuel — juillet 2025", "Révisions", "Résultats par cohorte",
            "Honoraires par code (CNK)", "Conformité à l'arrêté", "Méthodologie",
            "Configuration en vigueur", "provisoire", "schéma à 10 paliers",
        ],
        "nl": [
            "Maandelijkse stand van zaken van het afbouwprogramma",
            "Peildatum", "31 juli 2025", "Voorlopige maanden", "juni 2025",
            "Opgenomen exportbestanden", "Maandelijkse stand van zaken — juli 2025",
            "Herzieningen", "Resultaten per cohorte", "Honoraria per code (CNK)",
            "Naleving van het besluit", "Methodologie", "Geldende configuratie", "voorlopig",
            "Schema met 10 stappen",
        ],
    }  # fmt: skip
    for lang, phrases in expected.items():
        document = pack_render.to_html(built, lang)
        assert document.startswith("<!DOCTYPE html>")
        assert f'<html lang="{lang}">' in document
        assert "@page { size: A4" in document and "break-before: page" in document
        assert "http://" not in document and "https://" not in document and "<link" not in document
        text = html.unescape(document)
        for phrase in phrases:
            assert phrase.lower() in text.lower(), (lang, phrase)
    # Numbers written the language's way: 23,24 € of fees per interview in French. In the
    # exact pack: in the suppressed one, SPEC §9 v2 leaves the fees of 2 interviews empty
    # (their count is masked, the fee would give it back).
    exact = _build(revised, "2025-07")
    assert "46,48\u00a0€" in html.unescape(pack_render.to_html(exact, "fr"))
    assert "€\u00a046,48" in html.unescape(pack_render.to_html(exact, "nl"))
    assert "46,48\u00a0€" not in html.unescape(pack_render.to_html(built, "fr"))


@pytest.mark.skipif(
    not any(shutil.which(n) for n in pack_render.CHROMIUM_NAMES), reason="no Chromium"
)
def test_pdf_is_printed_by_chromium(revised):
    con = warehouse.connect(revised, read_only=True)
    try:
        data = pack.render_pack(con.cursor(), "2025-07", "nl", "pdf", Disclosure(5))
    finally:
        con.close()
    assert data.startswith(b"%PDF")


def test_pdf_without_chromium_is_a_plain_error(revised, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(pack_render.shutil, "which", lambda name: None)
    from etl.cli import main

    status = main(
        ["--db", str(revised), "report", "--month", "2025-07", "--format", "pdf",
         "--output", str(tmp_path / "x.pdf")]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert status == 2 and "Chromium" in err and "Traceback" not in err
    assert not (tmp_path / "x.pdf").exists()


def test_render_pack_records_nothing(revised):
    con = warehouse.connect(revised, read_only=True)
    try:
        before = len(pack.archived_packs(con))
        data = pack.render_pack(con.cursor(), "2025-07", "en", "html", Disclosure(5))
        after = len(pack.archived_packs(con))
    finally:
        con.close()
    assert data.startswith(b"<!DOCTYPE html>") and before == after


def test_a_pack_of_an_earlier_revision_of_the_rules_says_so(revised, tmp_path, capsys):
    """A pack archived before the methodology revision (no `methodology_revision` in its
    configuration: revision 1) whose figures now differ: exit 1 and a message naming both
    revisions, not "was the warehouse rebuilt?"."""
    status, _ = run_cli(
        "--db", str(revised), "report", "--month", "2025-07", "--format", "html",
        "--output", str(tmp_path / "p.html"),
    )  # fmt: skip
    assert status == 0
    con = warehouse.connect(revised)
    try:
        (config,) = con.execute("select config from report_archive").fetchone()
        recorded = json.loads(config)
        assert recorded["methodology_revision"] == pack.METHODOLOGY_REVISION == 2
        del recorded["methodology_revision"]
        con.execute(
            "update report_archive set config = ?, content_sha256 = ?",
            [json.dumps(recorded), "0" * 64],
        )
    finally:
        con.close()
    capsys.readouterr()
    status, _ = run_cli(
        "--db", str(revised), "report", "--reproduce", "1", "--output", str(tmp_path / "q.html")
    )
    assert status == 1
    message = " ".join(capsys.readouterr().err.split())
    assert "issued under revision 1 of the rules; this version computes revision 2" in message
