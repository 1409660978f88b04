"""The data page in headless Chromium: the load ledger, and uploads through the loader.

Uploads change a warehouse, so they run against this module's own server on a small hand-made
warehouse (never the shared `served` one).
"""

from __future__ import annotations

import base64
import json

import duckdb
import pytest
from selenium.webdriver.common.by import By

from bench.served import callback_body, find_component, post_callback, start_server
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


def _shown(driver) -> dict[str, str]:
    return {
        field: text_of(driver, f"data-upload-{field}")
        for field in ("file_name", "rows_read", "rows_new", "rows_present", "rows_skipped",
                      "rows_rejected")
    }  # fmt: skip


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

    # The French page, a good export: first the preview (a dry run: nothing loaded yet), then
    # the loader's summary once confirmed; the same counts, worked out by hand.
    open_page(browser, f"{own.url}/data?lang=fr", "data-upload")
    good = write_delimited(tmp_path / "export_2025-03b.csv", CANONICAL_HEADER, GOOD_EXPORT)
    _upload(browser, good)
    wait_for(browser, "data-upload-preview", timeout=60)
    expected = {
        "file_name": "export_2025-03b.csv",
        "rows_read": "5",
        "rows_new": "2",
        "rows_present": "1",
        "rows_skipped": "1",
        "rows_rejected": "1",
    }
    assert _shown(browser) == expected
    assert text_of(browser, "data-upload-reason-quantity_zero") == "1"
    assert text_of(browser, "data-upload-preview-message").startswith("Aperçu : rien n'a")
    assert _figures(own) == before  # the preview changed nothing
    browser.find_element(By.ID, "data-upload-confirm").click()
    wait_for(browser, "data-upload-summary", timeout=60)
    assert _shown(browser) == expected
    assert not browser.find_element(By.ID, "data-upload-actions").is_displayed()
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


def test_a_cancelled_preview_loads_nothing(own, browser, tmp_path):
    before = _figures(own)
    open_page(browser, f"{own.url}/data?lang=en", "data-upload")
    rows = [["PAT08", "PHA02", "06/03/2025", "5521968", "1", "23,24"],
            ["PAT08", "PHA02", "06/03/2025", "5521984", "1", "15,71"]]  # fmt: skip
    later = write_delimited(tmp_path / "cancelled.csv", CANONICAL_HEADER, rows)
    _upload(browser, later)
    wait_for(browser, "data-upload-preview", timeout=60)
    # By hand: PAT08 (a patient the warehouse does not hold) has two lines, both new.
    assert (text_of(browser, "data-upload-rows_read"), text_of(browser, "data-upload-rows_new")) == (
        "2", "2",
    )  # fmt: skip
    browser.find_element(By.ID, "data-upload-cancel").click()
    wait_for_text(browser, "data-upload-cancelled", "Cancelled: nothing was loaded.")
    assert not browser.find_element(By.ID, "data-upload-actions").is_displayed()
    assert _figures(own) == before
    assert console_errors(browser) == []


UPLOAD_OUTPUTS = ["data-upload-result.children", "data-upload-actions.style",
                  "data-upload-pending.data"]  # fmt: skip


def _upload_request(url: str, data: bytes, name: str, lang: str = "en") -> tuple[int, dict]:
    """The upload's callback as the browser sends it (the preview)."""
    body = callback_body(
        UPLOAD_OUTPUTS,
        [("data-upload", "contents", "data:text/csv;base64," + base64.b64encode(data).decode())],
        [("data-upload", "filename", name), ("url", "search", f"?lang={lang}")],
    )
    status, text = post_callback(url, body)
    return status, (json.loads(text) if status == 200 else text)


def test_a_file_name_over_255_bytes_is_refused_plainly(own):
    """A name a browser may send (NTFS holds 255 UTF-16 characters, up to 765 UTF-8 bytes) but
    the server's disk cannot hold: 130 "é" (2 bytes each) + ".csv" = 264 bytes."""
    before = _figures(own)
    data = b"patient_id;pharmacy_id;delivery_date;cnk\r\nPAT09;PHA01;03/03/2025;5521950\r\n"
    status, answer = _upload_request(own.url, data, "é" * 130 + ".csv", "fr")
    assert status == 200, answer
    error = find_component(
        answer["response"]["data-upload-result"]["children"], "data-upload-error"
    )
    text = "".join(
        c if isinstance(c, str) else c["props"]["children"]
        for c in error["props"]["children"] if c
    )  # fmt: skip
    assert text == (
        "Le nom du fichier compte 264 octets ; 255 au plus sont acceptés. Renommez le fichier "
        "avec un nom plus court et chargez-le à nouveau. Rien n'a été chargé."
    )
    assert _figures(own) == before
    # 255 bytes exactly is accepted (123 "é" + "abcde.csv" = 246 + 9 bytes): the preview.
    status, answer = _upload_request(own.url, data, "é" * 123 + "abcde.csv")
    assert status == 200, answer
    preview = answer["response"]["data-upload-result"]["children"]
    assert find_component(preview, "data-upload-preview") is not None
    assert _figures(own) == before


def test_an_upload_above_the_configured_size_is_refused_plainly(own, browser, tmp_path):
    """[loading] max_upload_mb = 1: a file of 1.2 MB. The browser does not send it and the
    page says why (assets/upload_size.js); a request that sends it anyway gets the message."""
    import shutil

    from bench.served import start_server_env
    from tests.browser import stop_process

    db = tmp_path / "small.duckdb"
    shutil.copyfile(own.db, db)
    config = tmp_path / "config.toml"
    config.write_text("[loading]\nmax_upload_mb = 1\n", encoding="utf-8")
    process, url = start_server_env(db, {"BENZO_MONITOR_CONFIG": str(config)})
    try:
        rows = [GOOD_EXPORT[1]] * 30_000  # 30,000 lines of 40 bytes: 1.2 MB
        big = write_delimited(tmp_path / "big.csv", CANONICAL_HEADER, rows)
        assert 1 << 20 < big.stat().st_size < 2 << 20
        open_page(browser, f"{url}/data?lang=nl", "data-upload")
        assert (
            "1 MB"
            in browser.find_element(By.ID, "data-upload-box")
            .find_element(By.XPATH, "preceding-sibling::p[1]")
            .text
        )
        _upload(browser, big)
        message = wait_for(browser, "data-upload-too-big", timeout=10).text
        assert message == (
            "Dit bestand is groter dan 1 MB: laad het met benzo-monitor load. Er werd niets geladen."
        ) or message.startswith("Dit bestand is groter dan 1 MB")
        assert text_of(browser, "data-upload-result") == ""
        status, answer = _upload_request(url, big.read_bytes(), "big.csv")
        assert status == 200, answer
        error = answer["response"]["data-upload-result"]["children"]
        assert "larger than 1 MB" in json.dumps(error)
        # A small file next: the message goes.
        small = write_delimited(tmp_path / "small.csv", CANONICAL_HEADER, GOOD_EXPORT[1:3])
        _upload(browser, small)
        wait_for(browser, "data-upload-preview", timeout=60)
        assert not browser.find_element(By.ID, "data-upload-too-big").is_displayed()
        assert console_errors(browser) == []
    finally:
        stop_process(process)


def test_a_load_committed_but_not_published_shows_a_banner(own, browser, tmp_path):
    """A load stopped between its commit and its publication (here: a load without the
    publication step): the pages show the previous snapshot, and say so until a publication."""
    from etl.base.config import load_config
    from etl.base.warehouse import connect
    from etl.ingest.load import Loader

    open_page(browser, f"{own.url}/data?lang=en", "data-ledger")
    assert not browser.find_elements(By.ID, "app-stale-banner")
    extra = write_delimited(
        tmp_path / "unpublished.csv", CANONICAL_HEADER, [["PAT07", "PHA01", "07/03/2025",
                                                          "5521950", "1", "23,24"]]
    )  # fmt: skip
    con = connect(own.db, config=load_config())
    try:
        Loader(con).load_file(extra)  # committed; no publication
    finally:
        con.close()
    for lang, start in (("en", "The figures shown are those published on"),
                        ("fr", "Les chiffres affichés sont ceux publiés le"),
                        ("nl", "De getoonde cijfers zijn die van de publicatie van")):  # fmt: skip
        open_page(browser, f"{own.url}/?lang={lang}", "app-stale-banner")
        assert text_of(browser, "app-stale-banner").startswith(start)
    done = own.cli("publish")
    assert done.returncode == 0, done.stderr
    open_page(browser, f"{own.url}/data?lang=en", "data-ledger")
    assert not browser.find_elements(By.ID, "app-stale-banner")
    assert console_errors(browser) == []
