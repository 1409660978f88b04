"""The report pack as a document an actuary reads (issue 18) with its nowcast and budget
(issue 16): the first page's key figures and messages, the charts, the footer and page numbers
of the PDF, the nowcast and budget section and sheets, and the reproduction of a pack issued
before them.

The tiny warehouse of tests/test_report_pack.py (three monthly exports, May-July 2025; patient
I's initiation of 15 May billed in July, J's of 20 June billed in July), plus patient K's
reduction step of 10 July without any initiation (an unassigned event: rule R02). As of
31 July 2025 (the latest delivery), month July 2025. Worked by hand from SPEC v2:

- July's programmes: G (10 steps, 15 July), H (5 steps, 31 July): 1 / 0 / 1, total 2. July
  is provisional (31 July < 31 July + 60 days). June now: E (7), F (10), J (10) = 3; July 2024
  (within the trend, which starts at programme_start 2023-02): 0. So -1 against June, +2
  against July 2024.
- §5, as of 31 July (grace 30 days): A (reduction of 10 capsules on 5 May: covered to 14 May),
  B, C, D, I (no reduction, started in May) and E, F, J (started 10, 30 and 20 June: start + 30
  days < 31 July) are stopped, with stop dates in May and June; G (15 July + 30 = 14 August)
  and H are in progress. In July: 0 completed, 0 stopped, 2 active at the end of the month.
- §8: only R02 flags an event (K's reduction): 1 of the 18 rules.
- §15, vintages: the vintage ending July is known on 31 July. May is final (31 May + 60 days =
  30 July), June and July provisional; the history H = [May] (the first month with a line).
  Patients initiated, total: C(May, lag 0) = C(May, lag 1) = 4 (A-D; I billed in July),
  F(May) = 5, so s_0 = s_1 = 0.8; June known now 3, nowcast 3 / 0.8 = 3.75 -> 3.8 (one
  decimal); July known 2, nowcast 2 / 0.8 = 2.5. One log ratio only: no interval. Scheme 5:
  May's B billed in May, s_0 = 1, July's H: nowcast 1. Scheme 7: May's I only billed in July,
  s_0 = 0: no nowcast for July's 7 steps.
- Fees (SPEC §2: initiation 23.24 €, reduction of 10 capsules 15.71 €): May's lines = 4 x 23.24
  + 15.71 = 108.67 billed in May (A-D and A's step), June's lines E, F = 46.48 billed in June,
  July's lines G, H, I, J = 92.96 billed in July (K's unassigned step, 15.71, is not in the
  total's fees); cumulative 108.67, 155.15, 248.11 against 878,000 € (0.0282 %, 0.0003 as a
  share to four decimals). Fewer than 3 complete months: no run rate, no year-end projection;
  5 months to come (August-December).
"""

from __future__ import annotations

import html
import io
import json
import re
import unicodedata

import openpyxl
import pypdf
import pytest

from etl.base import warehouse
from etl.base.config import load_config
from etl.base.disclosure import Disclosure
from etl.outputs import pack, pack_render
from tests.sqlcase import RED10, run_cli
from tests.test_report_pack import JULY, JUNE, MAY, _load

K_UNASSIGNED = ["K", "PH3", "10/07/2025", RED10, 1, "2025-07"]
LANGS = ("fr", "nl", "en")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tiny")
    db = tmp / "w.duckdb"
    _load(tmp, db, "export_2025-05.csv", MAY)
    _load(tmp, db, "export_2025-06.csv", JUNE)
    _load(tmp, db, "export_2025-07.csv", [*JULY, K_UNASSIGNED])
    return db


def _build(db, suppress: bool = False, revision: int = pack.PACK_REVISION):
    con = warehouse.connect(db, read_only=True)
    try:
        return pack.build_pack(
            con, "2025-07", Disclosure(5, enabled=suppress), load_config(), revision=revision
        )
    finally:
        con.close()


@pytest.fixture(scope="module")
def exact(tiny):
    return _build(tiny)


@pytest.fixture(scope="module")
def suppressed(tiny):
    return _build(tiny, suppress=True)


def _text(document: str) -> str:
    """An HTML document's text, tags removed, spaces collapsed (no-break spaces too)."""
    text = html.unescape(re.sub(r"<[^>]+>", " ", document))
    return " ".join(text.replace("\u202f", " ").replace("\u00a0", " ").split())


def _first_page(document: str) -> str:
    return document.split('<section id="state_of_play">')[0]


FIRST_PAGE = {
    "en": [
        "Key figures — July 2025",
        "5-step scheme 7-step scheme 10-step scheme Total",
        "Patients who initiated a withdrawal programme 1 0 1 2",
        "Expected (nowcast) 1.0 1.0 2.5",
        "The month is provisional",
        "exact figures, for internal use only",
        "In July 2025, 2 patients started a programme (provisional figure): −1 compared with "
        "June 2025 (3); +2 compared with July 2024 (0).",
        "In July 2025, 0 programmes were completed and 0 stopped; 2 programmes were active at "
        "the end of the month.",
        "1 of the 18 compliance rules flag events since the start; the rule flagging the most "
        "is R02 (Step or interview before any initiation interview) (events flagged: 1).",
    ],
    "fr": [
        "Chiffres clés — juillet 2025",
        "Schéma à 5 paliers Schéma à 7 paliers Schéma à 10 paliers Total",
        "Patients ayant initié un programme de sevrage 1 0 1 2",
        "Attendu (prévision) 1,0 1,0 2,5",
        "Le mois est provisoire",
        "chiffres exacts, à usage interne uniquement",
        "En juillet 2025, 2 patients ont commencé un programme (chiffre provisoire) : −1 par "
        "rapport à juin 2025 (3) ; +2 par rapport à juillet 2024 (0).",
        "En juillet 2025, 0 programmes ont été achevés et 0 arrêtés ; 2 programmes étaient "
        "actifs à la fin du mois.",
        "1 des 18 règles de conformité signalent des événements depuis le début ; celle qui en "
        "signale le plus est R02 (Palier ou entretien sans entretien d'initiation préalable) "
        "(événements signalés : 1).",
    ],
    "nl": [
        "Kerncijfers — juli 2025",
        "Schema met 5 stappen Schema met 7 stappen Schema met 10 stappen Totaal",
        "Patiënten die een afbouwprogramma opstartten 1 0 1 2",
        "Verwacht (nowcast) 1,0 1,0 2,5",
        "De maand is voorlopig",
        "exacte cijfers, uitsluitend voor intern gebruik",
        "In juli 2025 begonnen 2 patiënten een programma (voorlopig cijfer): −1 ten opzichte van "
        "juni 2025 (3); +2 ten opzichte van juli 2024 (0).",
        "In juli 2025 werden 0 programma's voltooid en 0 gestopt; 2 programma's waren actief op "
        "het einde van de maand.",
        "1 van de 18 nalevingsregels signaleren gebeurtenissen sinds de start; de regel die er "
        "het meest signaleert is R02 (Stap of gesprek zonder voorafgaand opstartgesprek) "
        "(gesignaleerde gebeurtenissen: 1).",
    ],
}


@pytest.mark.parametrize("lang", LANGS)
def test_first_page_has_the_key_figures_messages_and_a_chart(exact, lang):
    """The first page (before the state-of-play section): the hand-worked key figures of the
    module docstring, the three messages, and the trend chart as an embedded SVG image."""
    document = pack_render.to_html(exact, lang)
    first = _first_page(document)
    text = _text(first)
    for phrase in FIRST_PAGE[lang]:
        assert phrase in text, (lang, phrase)
    assert first.count('<img src="data:image/svg+xml;base64,') == 1
    # The file manifest is no longer on the first page: it is the annex, at the end.
    assert "export_2025-05.csv" not in first
    annex = document.split('<section id="annex">')[1]
    assert "export_2025-05.csv" in annex and exact.content_sha256 in annex
    # Every chart: trend, outcomes, fees, budget; self-contained (no http link outside SVG).
    assert document.count('<img src="data:image/svg+xml;base64,') == 4
    assert "http://" not in document and "https://" not in document


def test_first_page_of_the_publication_view_compares_no_masked_count(suppressed):
    """Suppressed: July's total of 2 is masked (<5), so it is compared with nothing."""
    text = _text(_first_page(pack_render.to_html(suppressed, "en")))
    assert (
        "In July 2025, <5 patients started a programme (provisional figure): no comparison "
        "with June 2025 (no figure, or a masked one)" in text
    )
    assert "no comparison with July 2024" in text
    assert "publication view: counts from 1 to 4 masked" in text
    assert "Patients who initiated a withdrawal programme <5 0 <5 <5" in text


def _pdf_pages(data: bytes) -> list[str]:
    reader = pypdf.PdfReader(io.BytesIO(data))
    # NFKC: Chromium writes "ff", "fi" as ligatures.
    return [" ".join(unicodedata.normalize("NFKC", p.extract_text()).split()) for p in reader.pages]


FOOTERS = {
    "en": "July 2025 · as of 31 July 2025 · exact figures, for internal use only",
    "fr": "juillet 2025 · date de référence 31 juillet 2025 · chiffres exacts, à usage interne "
    "uniquement",
    "nl": "juli 2025 · peildatum 31 juli 2025 · exacte cijfers, uitsluitend voor intern gebruik",
}
CHART_TITLES = {
    "en": "Patients initiated per month and scheme",
    "fr": "Patients ayant commencé un programme, par mois et par schéma",
    "nl": "Patiënten die een programma begonnen, per maand en schema",
}


@pytest.mark.parametrize("lang", LANGS)
def test_pdf_has_a_footer_and_page_numbers_on_every_page(exact, lang):
    """Each page of the PDF ends with the footer (month, as-of date, disclosure) and "n / N";
    the first page holds the key figures and the trend chart's title (drawn in the SVG)."""
    pages = _pdf_pages(pack.render(exact, lang, "pdf"))
    total = len(pages)
    assert total >= 8
    for number, text in enumerate(pages, start=1):
        assert text.endswith(f"{FOOTERS[lang]} {number} / {total}"), (lang, number, text[-200:])
    assert FIRST_PAGE[lang][2] in pages[0]
    assert CHART_TITLES[lang] in pages[0]
    # The annex (export files) is on the last pages.
    assert "export_2025-07.csv" in " ".join(pages[-2:])
    assert "export_2025-07.csv" not in pages[0]


def test_nowcast_and_budget_tables_have_the_hand_worked_figures(exact):
    """The module docstring's nowcast (June 3 -> 3.8, July 2 -> 2.5, share 0.8, no interval
    from one history month) and budget (108.67, 46.48, 92.96 billed; 248.11 cumulative)."""
    rows = {(r[0], r[1], r[2]): r[3:] for r in exact.tables["nowcast"].rows}
    assert rows[("patients_initiated", "2025-06", "total")] == [3, 3.8, None, None, None, None, 0.8]
    assert rows[("patients_initiated", "2025-07", "total")] == [2, 2.5, None, None, None, None, 0.8]
    assert rows[("patients_initiated", "2025-07", "5")][:2] == [1, 1]
    assert rows[("patients_initiated", "2025-07", "7")][:2] == [0, None]
    assert {month for _, month, _ in rows} == {"2025-06", "2025-07"}  # May is final
    months = {r[0]: r for r in exact.tables["budget"].rows}
    assert [months[m][2] for m in ("2025-05", "2025-06", "2025-07")] == [108.67, 46.48, 92.96]
    assert [months[m][3] for m in ("2025-05", "2025-06", "2025-07")] == [108.67, 155.15, 248.11]
    assert months["2025-08"][2:] == [None] * 6
    items = {r[0]: r[1] for r in exact.tables["budget_projection"].rows}
    assert items["pack_budget_annual_budget_eur"] == 878000
    assert items["pack_budget_billed_to_date"] == 248.11
    assert items["pack_budget_billed_share"] == 0.0003
    assert items["pack_budget_year_end"] is None and items["pack_budget_months_remaining"] == 5


def test_the_publication_view_hides_the_fees_that_give_a_small_count(suppressed):
    """SPEC §9. Billing month May added 4 patients initiated + 1 reduction step = 5: shown;
    June added E, F (2) and July G, H, I, J (4): empty, and the cumulative from June on. Every
    delivery month's fees with a small count (May: 1 reduction step) are empty. The
    nowcast of a masked count is empty."""
    months = {r[0]: r for r in suppressed.tables["budget"].rows}
    assert months["2025-05"][2:4] == [108.67, 108.67]
    assert months["2025-06"][2:] == [None] * 6 and months["2025-07"][2:] == [None] * 6
    assert months["2025-05"][4:6] == [None, None]
    items = {r[0]: r[1] for r in suppressed.tables["budget_projection"].rows}
    assert items["pack_budget_billed_to_date"] is None
    rows = {(r[0], r[1], r[2]): r[3:] for r in suppressed.tables["nowcast"].rows}
    assert rows[("patients_initiated", "2025-07", "total")][:2] == ["<5", None]
    fees = {r[0]: r[2] for r in suppressed.tables["fees_by_month"].rows}
    assert fees["2025-06"] is None and fees["2025-07"] is None
    document = html.unescape(pack_render.to_html(suppressed, "fr"))
    assert "46,48\u00a0€" not in document and "92,96\u00a0€" not in document


SHEETS = {
    "en": ("Nowcast", "Budget", "Patients who initiated a withdrawal programme", "Total"),
    "fr": ("Prévision", "Budget", "Patients ayant initié un programme de sevrage", "Total"),
    "nl": ("Nowcast", "Budget", "Patiënten die een afbouwprogramma opstartten", "Totaal"),
}


@pytest.mark.parametrize("lang", LANGS)
def test_workbook_has_the_nowcast_and_budget_sheets(exact, lang):
    nowcast_name, budget_name, label, total = SHEETS[lang]
    book = openpyxl.load_workbook(io.BytesIO(pack.render(exact, lang, "xlsx")))
    names = book.sheetnames
    assert names.index(nowcast_name) < names.index(budget_name) < len(names) - 2
    rows = [list(r) for r in book[nowcast_name].iter_rows(values_only=True)]
    found = [r for r in rows[1:] if r[:3] == [label, "2025-06", total]]
    assert found and found[0][3:5] == [3, 3.8]
    budget = [list(r) for r in book[budget_name].iter_rows(values_only=True)]
    months = {r[0]: r for r in budget if isinstance(r[0], str) and r[0].startswith("2025-")}
    assert [months[m][2] for m in ("2025-05", "2025-06", "2025-07")] == [108.67, 46.48, 92.96]
    assert budget[1][1] == 878000


def test_a_pack_of_revision_1_still_reproduces(tiny, tmp_path, capsys):
    """A pack issued before the nowcast tables (no `pack_revision` in its archived
    configuration, the content hash of the tables it had then) is built again without them,
    so its content hash matches. (Checked once by hand: the revision-1 hash here equals the one
    main's code, without these tables, computes on the same warehouse.)"""
    old = _build(tiny, suppress=True, revision=1)
    assert set(old.tables) == {
        "loads", "state_of_play", "trend", "revisions", "billing_delay", "cohorts",
        "bzra_free", "fees", "compliance", "configuration",
    }  # fmt: skip
    new = _build(tiny, suppress=True)
    assert set(new.tables) - set(old.tables) == set(pack.REVISION_2_TABLES)
    assert new.content_sha256 != old.content_sha256
    status, _ = run_cli(
        "--db", str(tiny), "report", "--month", "2025-07", "--format", "xlsx",
        "--output", str(tmp_path / "p.xlsx"),
    )  # fmt: skip
    assert status == 0
    con = warehouse.connect(tiny)
    try:
        (report_id, config, sha) = con.execute(
            "select report_id, config, content_sha256 from report_archive "
            "order by report_id desc limit 1"
        ).fetchone()
        recorded = json.loads(config)
        assert recorded["pack_revision"] == 2 and sha == new.content_sha256
        del recorded["pack_revision"]
        con.execute(
            "update report_archive set config = ?, content_sha256 = ? where report_id = ?",
            [json.dumps(recorded), old.content_sha256, report_id],
        )
    finally:
        con.close()
    capsys.readouterr()
    status, _ = run_cli(
        "--db", str(tiny), "report", "--reproduce", str(report_id),
        "--output", str(tmp_path / "again.xlsx"),
    )  # fmt: skip
    assert status == 0
    assert "reproduced: same data" in capsys.readouterr().err
    sheets = openpyxl.load_workbook(tmp_path / "again.xlsx").sheetnames
    assert "Prévision" not in sheets and "Budget" not in sheets  # French, as issued


def test_html_without_chromium_says_the_charts_need_it(exact, monkeypatch):
    """No Chromium: the HTML pack is still written, with a plain note where the charts go
    (the PDF refuses with a plain message: tests/test_report_pack.py)."""
    monkeypatch.setattr(pack_render.shutil, "which", lambda name: None)
    monkeypatch.setattr(pack_render.pack_charts, "_cache", type(pack_render.pack_charts._cache)())
    document = pack_render.to_html(exact, "nl")
    assert "<img" not in document
    assert "De grafieken worden door Chromium getekend" in html.unescape(document)
