"""The compliance page in headless Chromium: counts per rule against `benzo-monitor compliance`
on the generated warehouse of the `served` fixture, the rule filter, the CSV export, and the
publication view on a tiny hand-made warehouse; the findings' details, severities and CSV
headers in the page's language (rendered through the app's own server and in Chromium)."""

from __future__ import annotations

import csv
import importlib
import json
import re
import time

import pytest

from bench.served import start_server
from etl.cli import main as cli_main
from tests.browser import console_errors, open_page, text_of, wait_for_text
from tests.conftest import CANONICAL_HEADER, write_delimited

# The rules the page shows (the registry's); the CLI also has R16-R18, null until BZRA
# deliveries can be loaded (SPEC §10, §14).
RULES = [f"R{n:02d}" for n in range(1, 16)]


def _computed(rules: dict) -> dict:
    """The CLI's counts of the rules the monitor computes (RULES)."""
    return {rule: rules[rule] for rule in RULES}


TITLES = {"fr": "Conformité", "nl": "Naleving", "en": "Compliance"}
# Identifiers a spreadsheet would run as formulas, to check the export defuses them.
PATIENT, STRAY, PHARMACY = "@PATQ7", "+PATZ9", "=PH+1"
TINY_ROWS = [
    # A 10-step programme whose second 30-capsule step comes too early: the first ends
    # 2025-04-01, the earliest allowed date is 3 working days before, 2025-03-28 (R08).
    [PATIENT, PHARMACY, "03/03/2025", "5521976", "1", ""],
    [PATIENT, PHARMACY, "03/03/2025", "5522008", "1", ""],
    [PATIENT, PHARMACY, "20/03/2025", "5522008", "1", ""],
    # Two reduction steps of a patient with no initiation interview (R02 twice).
    [STRAY, PHARMACY, "05/03/2025", "5521984", "1", ""],
    [STRAY, PHARMACY, "15/03/2025", "5521984", "1", ""],
]


_CLI: dict[tuple, dict] = {}


def _cli_compliance(served, *args: str) -> dict:
    """`benzo-monitor compliance ARGS` on the served warehouse (run once per arguments)."""
    if (served.url, args) not in _CLI:
        done = served.cli("compliance", *args)
        assert done.returncode == 0, done.stderr
        _CLI[(served.url, args)] = json.loads(done.stdout)
    return _CLI[(served.url, args)]


def _number(text: str) -> int:
    return int("".join(ch for ch in text if ch.isdigit()))


def _page_module():
    import dash

    entry = next(p for p in dash.page_registry.values() if p["path"] == "/compliance")
    return importlib.import_module(entry["module"])


def _app(db):
    from dashboard.app import create_app

    return create_app(db)


def _rendered(app, **params) -> dict:
    """The compliance page's layout for `params`, rendered by `app` (an app of the test's own,
    `_app`), as the JSON the browser receives."""
    with app.server.test_request_context():
        layout = _page_module().layout(**params)
    text = json.dumps(layout.to_plotly_json(), default=lambda c: c.to_plotly_json())
    return json.loads(text)


def _component(node, wanted: str):
    """The component of id `wanted` in a rendered layout (None: absent)."""
    if isinstance(node, dict):
        if node.get("props", {}).get("id") == wanted:
            return node
        return next((c for v in node.values() if (c := _component(v, wanted))), None)
    if isinstance(node, list):
        return next((c for v in node if (c := _component(v, wanted))), None)
    return None


# The tiny warehouse's findings, in French: the R08 step (its first 30-capsule step, delivered
# Mon 2025-03-03, ends Tue 04-01; 3 working days before: Mon 03-31, Sat 03-29, Fri 03-28) and
# the two steps of a patient with no initiation interview (R02).
TINY_DETAILS_FR = {
    "R02": "palier de diminution d'un patient sans entretien d'initiation",
    "R08": "palier de diminution délivré le 20 mars 2025, avant la date autorisée au plus tôt, "
    "le 28 mars 2025 (palier de diminution précédent de 30 gélules, délivré le 3 mars 2025 et "
    "se terminant le 1 avril 2025)",
}
# English words of the details (and ISO dates) that a French or Dutch page must not show.
ENGLISH = re.compile(
    r"\b(step|delivered|earliest|allowed|interview|before|after|programme of|prescribed)\b"
    r"|\d{4}-\d{2}-\d{2}"
)


def _download(browser, name_start: str) -> list[list[str]]:
    """Click the export button and read the CSV it downloads."""
    for old in browser.downloads.glob("*"):
        old.unlink()
    browser.find_element("id", "compliance-export-button").click()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = [p for p in browser.downloads.glob(name_start + "*.csv") if p.stat().st_size > 0]
        if found:
            time.sleep(0.2)  # the browser renames the file once it is complete
            # English: commas, French and Dutch: semicolons; the table comes after the
            # download's header block (as-of date, disclosure control) and an empty line.
            delimiter = "," if "lang=en" in browser.current_url else ";"
            with found[0].open(encoding="utf-8-sig", newline="") as fh:
                rows = list(csv.reader(fh, delimiter=delimiter))
            return rows[rows.index([]) + 1 :]
        time.sleep(0.2)
    raise AssertionError("no CSV downloaded")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A served warehouse of TINY_ROWS."""
    folder = tmp_path_factory.mktemp("compliance-tiny")
    db = folder / "warehouse.duckdb"
    export = write_delimited(folder / "export.csv", CANONICAL_HEADER, TINY_ROWS)
    assert cli_main(["--db", str(db), "load", "--no-progress", str(export)]) == 0
    process, url = start_server(db)
    yield url, db
    process.terminate()
    try:
        process.wait(timeout=10)
    except Exception:
        process.kill()


@pytest.mark.parametrize("lang", ["fr", "nl", "en"])
def test_counts_per_rule_equal_the_cli(served, browser, lang):
    open_page(browser, f"{served.url}/compliance?lang={lang}", "compliance-summary")
    assert text_of(browser, "compliance-title") == TITLES[lang]
    assert text_of(browser, "nav-compliance") == TITLES[lang]
    rules = _computed(_cli_compliance(served, "--no-suppress")["rules"])
    shown = {rule: _number(text_of(browser, f"compliance-count-{rule}")) for rule in RULES}
    assert shown == rules
    assert _number(text_of(browser, "compliance-findings-count")) == sum(rules.values())
    assert console_errors(browser) == []


def test_rule_filter_from_the_url_and_the_picker(served, browser):
    rules = _cli_compliance(served, "--no-suppress")["rules"]
    open_page(browser, f"{served.url}/compliance?lang=en&rule=R08", "compliance-findings")
    assert text_of(browser, "compliance-title") == "Compliance — R08"
    assert _number(text_of(browser, "compliance-findings-count")) == rules["R08"]
    cells = browser.find_elements(
        "css selector", "#compliance-findings .ag-center-cols-container [col-id='rule_id']"
    )
    assert cells and {c.text for c in cells} == {"R08"}
    # The picker writes the rule into the URL, and the table follows.
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    browser.find_element(By.ID, "compliance-rule").click()
    # Type into the dropdown's search box, so that the option is in view.
    wait = WebDriverWait(browser, 10)
    wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "input.dash-dropdown-search")))
    browser.find_element(By.CSS_SELECTOR, "input.dash-dropdown-search").send_keys("R02")
    option = (By.XPATH, "//*[@role='option'][starts-with(normalize-space(), 'R02')]")

    def click_option(driver) -> bool:
        driver.find_element(*option).click()
        return True

    # The list re-renders as the search narrows it: an option found a moment ago may be gone
    # (stale) by the click, so find and click it again until it holds.
    WebDriverWait(browser, 10, ignored_exceptions=(StaleElementReferenceException,)).until(
        click_option
    )
    wait_for_text(browser, "compliance-title", "R02")
    assert "rule=R02" in browser.current_url and "lang=en" in browser.current_url
    assert _number(text_of(browser, "compliance-findings-count")) == rules["R02"]
    assert console_errors(browser) == []


def test_csv_export_has_the_rule_findings(served, browser):
    open_page(browser, f"{served.url}/compliance?lang=en&rule=R08", "compliance-findings")
    rows = _download(browser, "compliance-findings-")
    header, body = rows[0], rows[1:]
    assert header == [
        "As of", "Rule", "Severity", "Programme (pseudonymised)", "Patient (pseudonymised)",
        "Pharmacy (pseudonymised)", "Delivery date", "CNK", "Kind", "Detail",
    ]  # fmt: skip
    expected = [
        f for f in _cli_compliance(served, "--no-suppress")["findings"] if f["rule"] == "R08"
    ]
    columns = ("Rule", "Severity", "Patient (pseudonymised)", "Pharmacy (pseudonymised)",
               "Delivery date", "CNK")  # fmt: skip
    keys = ("rule", "severity", "patient_id", "pharmacy_id", "delivery_date", "cnk")
    got = sorted(tuple(dict(zip(header, row, strict=True))[k] for k in columns) for row in body)
    assert got == sorted(tuple(f[k] for k in keys) for f in expected)
    assert len(body) == len(expected) > 0
    # The detail for a reader: dates in words, the kind of step in words.
    details = [row[-1] for row in body]
    assert all(d.startswith(("reduction step delivered ", "stabilisation step delivered "))
               for d in details)  # fmt: skip
    assert not [d for d in details if re.search(r"\d{4}-\d{2}-\d{2}", d)]


def test_csv_export_defuses_formulas(tiny, browser):
    url, _db = tiny
    open_page(browser, f"{url}/compliance?lang=fr", "compliance-findings")
    rows = _download(browser, "compliance-findings-")
    header, body = rows[0], rows[1:]
    # The headers, severities, kinds and details in the page's language (French).
    assert header == [
        "Situation au", "Règle", "Gravité", "Programme (pseudonymisé)", "Patient (pseudonymisé)",
        "Pharmacie (pseudonymisée)", "Date de délivrance", "CNK", "Type", "Détail",
    ]  # fmt: skip
    found = sorted(
        (r["Règle"], r["Patient (pseudonymisé)"], r["Pharmacie (pseudonymisée)"],
         r["Date de délivrance"], r["Gravité"], r["Type"], r["Détail"])
        for r in (dict(zip(header, row, strict=True)) for row in body)
    )  # fmt: skip
    step = "palier de diminution"
    assert found == [
        ("R02", "'+PATZ9", "'=PH+1", "2025-03-05", "erreur", step, TINY_DETAILS_FR["R02"]),
        ("R02", "'+PATZ9", "'=PH+1", "2025-03-15", "erreur", step, TINY_DETAILS_FR["R02"]),
        ("R08", "'@PATQ7", "'=PH+1", "2025-03-20", "avertissement", step, TINY_DETAILS_FR["R08"]),
    ]


def test_french_grid_shows_the_details_in_french(tiny, browser):
    url, _db = tiny
    open_page(browser, f"{url}/compliance?lang=fr", "compliance-findings")
    header = browser.find_element(
        "css selector", "#compliance-findings .ag-header-cell[col-id='detail']"
    )
    assert header.text == "Détail"
    cells = browser.find_elements(
        "css selector", "#compliance-findings .ag-center-cols-container [col-id='detail']"
    )
    assert sorted(c.text for c in cells) == sorted(
        [TINY_DETAILS_FR["R02"], TINY_DETAILS_FR["R02"], TINY_DETAILS_FR["R08"]]
    )
    assert "anglais" not in browser.page_source
    assert console_errors(browser) == []


@pytest.mark.parametrize("lang", ["fr", "nl"])
def test_the_grid_has_no_english_detail(served, lang):
    """Server-side render of the generated warehouse's page, rule by rule: every finding sent
    to the browser has its detail and severity in the page's language."""
    app = _app(served.db)
    rows = []
    for rule in RULES:
        grid = _component(_rendered(app, lang=lang, rule=rule), "compliance-findings")["props"]
        detail = next(c for c in grid["columnDefs"] if c["field"] == "detail")
        assert detail["headerName"] == {"fr": "Détail", "nl": "Detail"}[lang]
        rows += grid["rowData"]
    assert len({r["rule_id"] for r in rows}) >= 13  # the generated data has R01-R13
    assert [r["detail"] for r in rows if ENGLISH.search(r["detail"])] == []
    severities = {"fr": {"erreur", "avertissement"}, "nl": {"fout", "waarschuwing"}}[lang]
    assert {r["severity"] for r in rows} <= severities


def test_the_grid_of_the_tiny_warehouse_in_french(tiny):
    _url, db = tiny
    rows = _component(_rendered(_app(db), lang="fr"), "compliance-findings")["props"]["rowData"]
    assert sorted((r["rule_id"], r["delivery_date"], r["detail"]) for r in rows) == [
        ("R02", "2025-03-05", TINY_DETAILS_FR["R02"]),
        ("R02", "2025-03-15", TINY_DETAILS_FR["R02"]),
        ("R08", "2025-03-20", TINY_DETAILS_FR["R08"]),
    ]


def test_publication_view_suppresses_and_hides_identifiers(tiny, browser, cli):
    url, db = tiny
    open_page(browser, f"{url}/compliance?lang=en&view=publication", "compliance-summary")
    assert text_of(browser, "compliance-publication-note").startswith("Publication view")
    status, out, err = cli("--db", db, "compliance")
    assert status == 0, err
    rules = _computed(json.loads(out)["rules"])
    assert rules["R02"] == rules["R08"] == "<5"
    shown = {rule: text_of(browser, f"compliance-count-{rule}") for rule in RULES}
    assert shown == {rule: str(value) for rule, value in rules.items()}
    assert not browser.find_elements("id", "compliance-findings")
    page = browser.page_source
    assert "PATQ7" not in page and "PATZ9" not in page and "PH+1" not in page
    # The export of the publication view: the counts per rule, suppressed.
    rows = _download(browser, "compliance-counts-")
    assert rows[0] == ["As of", "Rule", "Rule of the decree", "Severity", "Findings"]
    assert {row[1]: (row[3], row[4]) for row in rows[1:]}["R08"] == ("warning", "<5")
    assert console_errors(browser) == []


def test_the_page_sends_at_most_findings_shown_and_says_so(served, monkeypatch):
    """The browser gets the first FINDINGS_SHOWN findings (at ten times national volume all
    of them made a 5 MB answer); the count still says how many there are in all."""
    total = sum(_computed(_cli_compliance(served, "--no-suppress")["rules"]).values())
    assert total > 3
    app = _app(served.db)
    monkeypatch.setattr(_page_module(), "FINDINGS_SHOWN", 3)
    found = _rendered(app, lang="en")
    assert len(_component(found, "compliance-findings")["props"]["rowData"]) == 3
    count = _component(found, "compliance-findings-count")["props"]["children"]
    assert count == f"{total:,} findings"
    assert (
        "The first 3 are shown"
        in _component(found, "compliance-findings-shown")["props"]["children"]
    )
