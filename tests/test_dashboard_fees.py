"""The fees page in headless Chromium: a tiny hand-made warehouse whose fees are worked out by
hand from SPEC §2, and the generated warehouse of the `served` fixture for the period filter."""

from __future__ import annotations

import importlib
import json
import re

import dash
import pytest
from plotly.utils import PlotlyJSONEncoder

from bench.served import start_server
from etl.cli import main as cli_main
from tests.browser import console_errors, open_page, text_of, wait_for_text
from tests.conftest import CANONICAL_HEADER, write_delimited

# One 5-step initiation and two 30-capsule reduction steps, March 2025, P = 2.2193 (default):
# initiation round(2.2193 x 10.47, 2) = 23.24; a step round(2.2193 x 7.08, 2) = 15.71;
# 23.24 + 2 x 15.71 = 54.66. The export bills 23.24 + 15.71 + 15.00 = 53.95: difference -0.71.
TINY_ROWS = [
    ["PATQ7", "PHX42", "03/03/2025", "5521950", "1", "23,24"],
    ["PATQ7", "PHX42", "03/03/2025", "5522008", "1", "15,71"],
    ["PATQ7", "PHX42", "31/03/2025", "5522008", "1", "15,00"],
]
TITLES = {"fr": "Honoraires", "nl": "Honoraria", "en": "Fees"}
ESTIMATED = {"fr": "estimée, indiquez la valeur officielle",
             "nl": "geschat, vul de officiële waarde in",
             "en": "estimated, set the official value"}  # fmt: skip


def _cents(text: str) -> int:
    """A displayed euro amount in any of the three locales, in cents ("-0,71 €" -> -71)."""
    value = int(re.sub(r"\D", "", text))
    return -value if re.search(r"[-−]", text) else value


def _number(text: str) -> int:
    return int(re.sub(r"\D", "", text))


def _load(folder, rows, header=CANONICAL_HEADER):
    db = folder / "warehouse.duckdb"
    export = write_delimited(folder / "export.csv", header, rows)
    assert cli_main(["--db", str(db), "load", "--no-progress", str(export)]) == 0
    return db


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A served warehouse of TINY_ROWS."""
    db = _load(tmp_path_factory.mktemp("fees-tiny"), TINY_ROWS)
    process, url = start_server(db)
    yield url
    process.terminate()
    try:
        process.wait(timeout=10)
    except Exception:
        process.kill()


@pytest.mark.parametrize("lang", ["fr", "nl", "en"])
def test_fees_worked_out_by_hand(tiny, browser, lang):
    open_page(browser, f"{tiny}/fees?lang={lang}", "fees-table")
    # The as-of date is the last delivery (2025-03-31): the year to date is January-March.
    assert text_of(browser, "fees-title").startswith(TITLES[lang] + " — ")
    assert text_of(browser, "nav-fees") == TITLES[lang]
    shown = {
        key: text_of(browser, f"fees-cnk-{key}")
        for key in ("5521950-events", "5522008-events", "5521992-events", "total-events")
    }
    assert {k: _number(v) for k, v in shown.items()} == {
        "5521950-events": 1, "5522008-events": 2, "5521992-events": 0, "total-events": 3,
    }  # fmt: skip
    assert _cents(text_of(browser, "fees-cnk-5521950-estimated")) == 2324
    assert _cents(text_of(browser, "fees-cnk-5522008-estimated")) == 3142
    assert _cents(text_of(browser, "fees-cnk-5522016-estimated")) == 0
    assert _cents(text_of(browser, "fees-cnk-total-estimated")) == 5466
    assert _cents(text_of(browser, "fees-cnk-total-billed")) == 5395
    assert _cents(text_of(browser, "fees-cnk-5522008-difference")) == -71
    assert _cents(text_of(browser, "fees-cnk-total-difference")) == -71
    # P and the coefficients in force, with the spec's notes.
    assert text_of(browser, "fees-p-0") == {"fr": "2,2193", "nl": "2,2193", "en": "2.2193"}[lang]
    assert ESTIMATED[lang] in text_of(browser, "fees-p-table")
    assert text_of(browser, "fees-coefficient-preparation") == ("7.08" if lang == "en" else "7,08")
    assert text_of(browser, "fees-coefficient-interview") == ("10.47" if lang == "en" else "10,47")
    note = text_of(browser, "fees-coefficient-note")
    assert "6/3" in note and "7,8" in note and "7,08" in note
    assert not browser.find_elements("id", "fees-no-amounts")
    assert console_errors(browser) == []


def test_publication_view_suppresses_counts_not_fees(tiny, browser):
    open_page(browser, f"{tiny}/fees?lang=en&view=publication", "fees-table")
    assert text_of(browser, "fees-publication-note").startswith("Publication view")
    assert text_of(browser, "fees-cnk-5521950-events") == "<5"
    assert text_of(browser, "fees-cnk-5522008-events") == "<5"
    assert text_of(browser, "fees-cnk-total-events") == "<5"
    assert text_of(browser, "fees-cnk-5521984-events") == "0"
    assert _cents(text_of(browser, "fees-cnk-total-estimated")) == 5466
    assert "PATQ7" not in browser.page_source and "PHX42" not in browser.page_source
    assert console_errors(browser) == []


def test_period_from_the_url_and_the_selector(served, browser):
    # The served warehouse runs to June 2025.
    open_page(browser, f"{served.url}/fees?lang=en", "fees-table")
    assert text_of(browser, "fees-title") == "Fees — January 2025 – June 2025"
    open_page(browser, f"{served.url}/fees?lang=nl&period=12m", "fees-table")
    assert text_of(browser, "fees-title") == "Honoraria — juli 2024 – juni 2025"
    # The selector writes the period into the URL, and the page follows.
    browser.find_element("xpath", "//label[normalize-space()='Sinds het begin']").click()
    # Every month: from the programme start (or an earlier first delivery) to June 2025.
    wait_for_text(browser, "fees-title", " 2023 – juni 2025")
    assert "period=all" in browser.current_url and "lang=nl" in browser.current_url
    assert console_errors(browser) == []


def test_a_month_of_fees_equals_the_report(served, browser):
    # The monthly detail lists the latest month first: the 8 CNKs of June 2025. Their fees
    # add up to the report's fees of June 2025, programmes (total) and unassigned events.
    open_page(browser, f"{served.url}/fees?lang=en", "fees-detail")
    _wait_for_detail_rows(browser)
    fees = []
    for index in range(8):
        row = f"#fees-detail .ag-center-cols-container .ag-row[row-index='{index}']"
        month = browser.find_element("css selector", row + " [col-id='month']").text
        assert month == "2025-06"
        fees.append(
            _cents(
                browser.find_element("css selector", row + " [col-id='fees_estimated_eur']").text
            )
        )
    report = json.loads(served.cli("report", "--month", "2025-06", "--no-suppress").stdout)
    expected = report["schemes"]["total"]["fees_estimated_eur"]
    expected += report["unassigned"]["fees_estimated_eur"]
    assert sum(fees) == round(expected * 100)


def _wait_for_detail_rows(browser):
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 20).until(
        lambda d: d.find_elements("css selector", "#fees-detail .ag-row[row-index='7']")
    )


def test_an_export_without_amounts_says_so(tmp_path):
    from dashboard.app import create_app

    db = _load(tmp_path, [row[:5] for row in TINY_ROWS], CANONICAL_HEADER[:5])
    app = create_app(db)
    entry = next(p for p in dash.page_registry.values() if p["path"] == "/fees")
    with app.server.test_request_context():
        page = importlib.import_module(entry["module"]).layout(lang="fr")
    text = json.dumps(page, cls=PlotlyJSONEncoder)
    assert "L'export ne contient pas de montants" in text
    assert "fees-cnk-total-billed" not in text and "Montants facturés" not in text
    assert "54,66" in text.replace("\u202f", " ").replace("\xa0", " ")
