"""The state-of-play page in headless Chromium against a running `benzo-monitor serve`."""

from __future__ import annotations

import json
import time

import openpyxl
import pytest

from tests.browser import console_errors, open_page, text_of, wait_for_text

CARD_METRICS = (
    "patients_initiated",
    "patients_initiated_cumulative",
    "active_programmes_end_of_month",
    "programmes_completed",
    "programmes_stopped",
)


def _number(text: str) -> int:
    """A displayed whole number in any of the three locales ("1 234", "1.234", "1,234")."""
    return int("".join(ch for ch in text if ch.isdigit() or ch == "-"))


@pytest.mark.parametrize("lang,title", [("fr", "État des lieux mensuel — mars 2025"),
                                        ("nl", "Maandelijkse stand van zaken — maart 2025"),
                                        ("en", "Monthly state of play — March 2025")])  # fmt: skip
def test_cards_equal_the_report_for_the_chosen_month(served, browser, lang, title):
    open_page(browser, f"{served.url}/?lang={lang}&month=2025-03", "state-cards")
    assert text_of(browser, "state-title") == title
    done = served.cli("report", "--month", "2025-03", "--no-suppress")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    for scheme in ("5", "7", "10", "total"):
        for metric in CARD_METRICS:
            shown = text_of(browser, f"state-card-{scheme}-{metric}")
            assert _number(shown) == report["schemes"][scheme][metric], (scheme, metric)
    assert console_errors(browser) == []


def test_month_and_language_from_the_url(served, browser):
    open_page(browser, f"{served.url}/?lang=nl&month=2024-11", "state-cards")
    assert text_of(browser, "state-title") == "Maandelijkse stand van zaken — november 2024"
    assert text_of(browser, "nav-state_of_play") == "Maandelijkse stand van zaken"
    # The month picker writes the month into the URL, and the page follows.
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.find_element(By.ID, "state-month-picker").click()
    option = WebDriverWait(browser, 10).until(
        lambda d: d.find_element(By.XPATH, "//*[@role='option'][normalize-space()='januari 2025']")
    )
    option.click()
    wait_for_text(browser, "state-title", "januari 2025")
    assert "month=2025-01" in browser.current_url and "lang=nl" in browser.current_url
    assert console_errors(browser) == []


def test_excel_download_opens(served, browser):
    open_page(browser, f"{served.url}/?lang=en&month=2025-03", "state-cards")
    for old in browser.downloads.glob("*"):
        old.unlink()
    browser.find_element("id", "state-download-xlsx-button").click()
    deadline = time.monotonic() + 20
    target = browser.downloads / "state-of-play-2025-03.xlsx"
    while time.monotonic() < deadline and not target.exists():
        time.sleep(0.2)
    assert target.exists()
    book = openpyxl.load_workbook(target)
    sheet = book["2025-03"]
    # The header block (month, as-of date, status, disclosure control), an empty row, the table.
    assert [sheet.cell(row=r, column=1).value for r in range(1, 6)] == [
        "Month", "As-of date", "Status", "Disclosure control", None,
    ]  # fmt: skip
    assert sheet.cell(row=1, column=2).value == "March 2025"
    header = [c.value for c in sheet[6]]
    assert header == ["metric", "5 steps", "7 steps", "10 steps", "Total", "Unassigned"]
    report = json.loads(served.cli("report", "--month", "2025-03", "--no-suppress").stdout)
    rows = {row[0].value: [c.value for c in row[1:]] for row in sheet.iter_rows(min_row=7)}
    assert rows["Patients who initiated a withdrawal programme"][:4] == [
        report["schemes"][s]["patients_initiated"] for s in ("5", "7", "10", "total")
    ]


@pytest.mark.timeout(400)
def test_the_report_pack_of_the_month_downloads(served, browser):
    open_page(browser, f"{served.url}/?lang=nl&month=2025-03", "state-cards")
    target = browser.downloads / "report-2025-03-nl.xlsx"
    target.unlink(missing_ok=True)
    browser.find_element("id", "state-pack-xlsx-button").click()
    deadline = time.monotonic() + 150  # the pack reads every vintage for its nowcast (SPEC §15)
    while time.monotonic() < deadline and not target.exists():
        time.sleep(0.2)
    book = openpyxl.load_workbook(target)
    assert {"Voorblad", "Stand van zaken", "Herzieningen"} <= set(book.sheetnames)
    assert console_errors(browser) == []


@pytest.mark.timeout(400)
def test_the_pdf_pack_downloads_beside_excel_and_html(served, browser):
    """Issue 18: a PDF button beside Excel and HTML; the PDF's pages end with the footer of
    the view (the analyst's exact figures here) and the page number."""
    import io
    import unicodedata

    import pypdf

    open_page(browser, f"{served.url}/?lang=fr&month=2025-03", "state-cards")
    buttons = browser.find_elements("css selector", ".downloads button[id^=state-pack-]")
    assert [b.text for b in buttons] == ["Excel", "HTML", "PDF"]
    target = browser.downloads / "report-2025-03-fr.pdf"
    target.unlink(missing_ok=True)
    browser.find_element("id", "state-pack-pdf-button").click()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (target.exists() and target.stat().st_size):
        time.sleep(0.5)
    pages = pypdf.PdfReader(io.BytesIO(target.read_bytes())).pages
    # NFKC: Chromium writes "ff" as a ligature.
    texts = [" ".join(unicodedata.normalize("NFKC", p.extract_text()).split()) for p in pages]
    assert all(
        text.endswith(f"chiffres exacts, à usage interne uniquement {n} / {len(texts)}")
        for n, text in enumerate(texts, start=1)
    ), [t[-120:] for t in texts]
    assert "Chiffres clés — mars 2025" in texts[0]
    assert console_errors(browser) == []
