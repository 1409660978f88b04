"""The data page in headless Chromium: the load ledger, and uploads through the loader.

Uploads change a warehouse, so they run against this module's own server on a small hand-made
warehouse (never the shared `served` one).
"""

from __future__ import annotations

import json

import duckdb
import pytest
from selenium.webdriver.common.by import By

from bench.served import start_server
from tests.browser import Served, console_errors, open_page, text_of, wait_for, wait_for_text
from tests.conftest import CANONICAL_HEADER, write_delimited

TITLES = {"fr": "Données chargées", "nl": "Geladen gegevens", "en": "Loaded data"}
LEDGER_KEYS = ("load_id", "file_name", "file_sha256", "rows_read", "rows_new", "rows_present",
               "rows_skipped", "rows_rejected")  # fmt: skip
# The ledger as the browser's grid holds it (every row, not only the rows drawn on screen).
GRID_ROWS = """
const done = arguments[arguments.length - 1];
dash_ag_grid.getApiAsync(arguments[0]).then(api => {
    const rows = [];
    api.forEachNode(node => rows.push(node.data));
    done(rows);
});
"""


def _grid_rows(driver, grid_id: str) -> list[dict]:
    return driver.execute_async_script(GRID_ROWS, grid_id)


def _ledger(rows: list[dict]) -> list[tuple]:
    return sorted(tuple(row[k] for k in LEDGER_KEYS) for row in rows)


@pytest.mark.parametrize("lang", ["fr", "nl", "en"])
def test_data_page_in_each_language_lists_the_ledger(served, browser, lang):
    open_page(browser, f"{served.url}/data?lang={lang}", "data-ledger")
    assert text_of(browser, "data-title") == TITLES[lang]
    done = served.cli("loads", "--format", "json")
    assert done.returncode == 0, done.stderr
    loads = json.loads(done.stdout)
    assert len(loads) > 1
    assert _ledger(_grid_rows(browser, "data-ledger")) == _ledger(loads)
    assert console_errors(browser) == []


# --- uploads, on this module's own server --------------------------------------------------

FIRST_EXPORT = [
    ["PAT01", "PHA01", "03/03/2025", "5521950", "1", "23,24"],
    ["PAT02", "PHA01", "04/03/2025", "5521976", "1", "23,24"],
    ["PAT03", "PHA02", "05/03/2025", "5521976", "1", "23,24"],
    ["PAT01", "PHA01", "03/03/2025", "5521984", "1", "15,71"],
    # A correction with nothing to cancel: an unmatched correction of PAT03.
    ["PAT03", "PHA02", "05/03/2025", "5522008", "-1", "-15,71"],
]
# By hand: row 1 is already stored (same values, first occurrence); PAT04 initiates a 7-step
# programme and gets a reduction step (2 new lines); 0012345 is another medicine (skipped);
# a quantity of 0 is rejected. Read 5, new 2, already present 1, skipped 1, rejected 1.
GOOD_EXPORT = [
    ["PAT01", "PHA01", "03/03/2025", "5521950", "1", "23,24"],
    ["PAT04", "PHA02", "06/03/2025", "5521968", "1", "23,24"],
    ["PAT04", "PHA02", "06/03/2025", "5521984", "1", "15,71"],
    ["PAT05", "PHA02", "06/03/2025", "0012345", "1", "9,99"],
    ["PAT06", "PHA02", "06/03/2025", "5521976", "0", "0"],
]


@pytest.fixture(scope="module")
def own(tmp_path_factory):
    """A dashboard of its own on a small warehouse (one load of FIRST_EXPORT)."""
    from etl.cli import main as cli_main

    folder = tmp_path_factory.mktemp("data-page")
    db = folder / "small.duckdb"
    first = write_delimited(folder / "first.csv", CANONICAL_HEADER, FIRST_EXPORT)
    assert cli_main(["--db", str(db), "load", str(first), "--no-progress"]) == 0
    process, url = start_server(db)
    yield Served(url=url, db=db, process=process, data_dir=folder)
    process.terminate()
    try:
        process.wait(timeout=10)
    except Exception:
        process.kill()


def _upload(driver, path) -> None:
    field = driver.find_element(By.CSS_SELECTOR, "#data-upload input[type=file]")
    field.send_keys(str(path))


def _figures(own: Served) -> tuple[dict, list]:
    report = own.cli("report", "--month", "2025-03", "--no-suppress")
    loads = own.cli("loads", "--format", "json")
    assert report.returncode == 0 and loads.returncode == 0, report.stderr + loads.stderr
    return json.loads(report.stdout), json.loads(loads.stdout)


def test_publication_view_hides_the_ids_and_the_upload(own, browser):
    open_page(browser, f"{own.url}/data?lang=en", "data-unmatched")
    assert "PAT03" in text_of(browser, "data-unmatched")
    open_page(browser, f"{own.url}/data?lang=en&view=publication", "data-ledger")
    page = browser.find_element(By.TAG_NAME, "body").text
    assert not [p for p in ("PAT01", "PAT02", "PAT03", "PHA01", "PHA02") if p in page]
    assert text_of(browser, "data-unmatched-total") == "Unmatched corrections: <5."
    assert browser.find_elements(By.ID, "data-publication-note")
    assert not browser.find_elements(By.ID, "data-upload")
    assert "analyst view only" in text_of(browser, "data-upload-hidden")
    assert console_errors(browser) == []


def test_a_broken_upload_changes_nothing_and_a_good_one_loads(own, browser, tmp_path):
    before = _figures(own)
    open_page(browser, f"{own.url}/data?lang=en", "data-upload")
    broken = write_delimited(tmp_path / "broken.csv", ["a", "b"], [["1", "2"]])
    _upload(browser, broken)
    message = wait_for(browser, "data-upload-error", timeout=30).text
    assert message.startswith("File refused, nothing was loaded:")
    assert "broken.csv" in message and "patient_id" in message
    assert "Traceback" not in message and str(tmp_path) not in message
    assert _figures(own) == before
    assert console_errors(browser) == []

    # The French page, a good export: the loader's summary, counts worked out by hand.
    open_page(browser, f"{own.url}/data?lang=fr", "data-upload")
    good = write_delimited(tmp_path / "export_2025-03b.csv", CANONICAL_HEADER, GOOD_EXPORT)
    _upload(browser, good)
    wait_for(browser, "data-upload-summary", timeout=60)
    shown = {
        field: text_of(browser, f"data-upload-{field}")
        for field in ("file_name", "rows_read", "rows_new", "rows_present", "rows_skipped",
                      "rows_rejected")
    }  # fmt: skip
    assert shown == {
        "file_name": "export_2025-03b.csv",
        "rows_read": "5",
        "rows_new": "2",
        "rows_present": "1",
        "rows_skipped": "1",
        "rows_rejected": "1",
    }
    report, loads = _figures(own)
    assert [row["file_name"] for row in loads] == ["first.csv", "export_2025-03b.csv"]
    # The page's ledger follows the upload.
    assert _ledger(_grid_rows(browser, "data-ledger")) == _ledger(loads)
    # Patients initiated in March 2025 by hand: PAT01 (5 steps), PAT02 and PAT03 (10 steps),
    # and now PAT04 (7 steps): 1, 1, 2, total 4 — on the running server, without a restart.
    assert report["schemes"]["total"]["patients_initiated"] == 4
    open_page(browser, f"{own.url}/?lang=en&month=2025-03", "state-cards")
    assert text_of(browser, "state-card-7-patients_initiated") == "1"
    assert text_of(browser, "state-card-total-patients_initiated") == "4"
    assert console_errors(browser) == []


def test_an_upload_during_a_load_says_so(own, browser, tmp_path):
    before = _figures(own)
    open_page(browser, f"{own.url}/data?lang=nl", "data-upload")
    good = write_delimited(tmp_path / "later.csv", CANONICAL_HEADER, GOOD_EXPORT[1:3])
    holder = duckdb.connect(str(own.db))  # another program writing the warehouse
    try:
        _upload(browser, good)
        wait_for_text(browser, "data-upload-error", "Er loopt een lading", timeout=30)
    finally:
        holder.close()
    assert _figures(own) == before
    assert console_errors(browser) == []
