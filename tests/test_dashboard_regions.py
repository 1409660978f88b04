"""The regions-and-patients page in headless Chromium: regional spread and patient profile.

Totals over the regions are checked against the command line (`report`, `cohorts`) on the
shared served warehouse; the breakdowns against a tiny hand-made export, worked out by hand:

The tiny export (as-of = the latest delivery, 2025-06-30), one pharmacy per postcode:
| patient | pharmacy (postcode) | initiation | scheme | birth | sex | insurer | outcome on 2025-06-30 |
| --- | --- | --- | --- | --- | --- | --- | --- |
| pat-11a | pha-bxl (1000) | 2025-01-10 | 10 | 1950 | F | 100 | stopped (no step within 30 days) |
| pat-22b | pha-antw (2000) | 2025-02-03 | 5 | 1990 | M | 300 | completed (5 reductions, 03-15) |
| pat-33c | pha-antw (2000) | 2025-03-01 | 7 | 1960 | F | 300 | stopped |
| pat-44d | pha-liege (4000) | 2025-01-20 | 10 | 1935 | F | 500 | in progress (30 capsules 06-30) |
| pat-55e | pha-gent (9000) | 2025-02-10 | 5 | 1970 | V | — | stopped |
| pat-66f | pha-nowhere (—) | 2025-03-05 | 7 | — | — | 200 | stopped |
| pat-77g | pha-gent (9000) | 2025-02-15 | 10 | 1980 | M | 100 | stopped (next initiation 06-20) |
| pat-77g | pha-bxl (1000) | 2025-06-20 | 5 | 1980 | M | 100 | in progress (repeat initiation) |

By hand (all schemes): patients are counted at their first initiation, programmes all 8.
- Brussels-Capital (1000): 1 patient (pat-11a; pat-77g's first initiation is in Ghent),
  2 programmes (1 in progress, 1 stopped); 1 / 1,249,597 x 100,000 = 0.08 per 100,000.
- Flanders: Antwerp 2 patients (pat-22b, pat-33c), East Flanders 2 (pat-55e, pat-77g):
  4 patients, 4 programmes (1 completed, 3 stopped); 4 / 6,821,770 x 100,000 = 0.0586 -> 0.06.
- Wallonia: Liège 1 patient, 1 programme in progress; 1 / 3,692,283 x 100,000 = 0.0271 -> 0.03.
- unknown (no postcode): 1 patient, 1 programme stopped. Total: 7 patients = the report's
  cumulative patients initiated for June 2025.
- 5-step scheme only: Brussels 0 patients but 1 programme (pat-77g's repeat, in progress);
  Flanders 2 patients (pat-22b, pat-55e), 2 programmes, 1 completed, 1 stopped.
- Age at initiation = 2025 - birth year: 75 (75-84), 35 (<45), 65 (65-74), 90 (85+),
  55 (45-64), unknown, 45 (45-64): <45 1, 45-64 2, 65-74 1, 75-84 1, 85+ 1, unknown 1.
- Sex: F 4 (V = vrouw), M 2, unknown 1. Insurer: 100 2, 200 1, 300 2, 500 1, unknown 1.
- Publication view: every non-zero count is 1-4, shown "<5"; rates per 100,000 hidden with
  them (a rate on a known population gives the count back); no pseudonymised id anywhere.
"""

from __future__ import annotations

import importlib
import json

import dash
import pytest

from bench.served import start_server
from etl.cli import main as cli_main
from tests.browser import console_errors, open_page, text_of
from tests.conftest import CANONICAL_HEADER, write_delimited
from tests.sqlcase import query

INIT5, INIT7, INIT10 = "5521950", "5521968", "5521976"
RED10, RED30 = "5521984", "5522008"
HEADER = [
    "patient_id",
    "pharmacy_id",
    "delivery_date",
    "cnk",
    "quantity",
    "pharmacy_postcode",
    "patient_birth_year",
    "patient_sex",
    "insurer_code",
]
PATIENTS = {
    # patient: (pharmacy, postcode, birth year, sex, insurer)
    "pat-11a": ("pha-bxl", "1000", "1950", "F", "100"),
    "pat-22b": ("pha-antw", "2000", "1990", "M", "300"),
    "pat-33c": ("pha-antw", "2000", "1960", "F", "300"),
    "pat-44d": ("pha-liege", "4000", "1935", "F", "500"),
    "pat-55e": ("pha-gent", "9000", "1970", "V", ""),
    "pat-66f": ("pha-nowhere", "", "", "", "200"),
    "pat-77g": ("pha-gent", "9000", "1980", "M", "100"),
}
DELIVERIES = [
    ("pat-11a", "2025-01-10", INIT10),
    ("pat-22b", "2025-02-03", INIT5),
    *(("pat-22b", day, RED10) for day in ("2025-02-03", "2025-02-13", "2025-02-23",
                                          "2025-03-05", "2025-03-15")),
    ("pat-33c", "2025-03-01", INIT7),
    ("pat-44d", "2025-01-20", INIT10),
    ("pat-44d", "2025-06-30", RED30),
    ("pat-55e", "2025-02-10", INIT5),
    ("pat-66f", "2025-03-05", INIT7),
    ("pat-77g", "2025-02-15", INIT10),
]  # fmt: skip
REPEAT = ["pat-77g", "pha-bxl", "2025-06-20", INIT5, "1", "1000", "1980", "M", "100"]


def _rows() -> list[list[str]]:
    rows = []
    for patient, day, cnk in DELIVERIES:
        pharmacy, postcode, birth, sex, insurer = PATIENTS[patient]
        rows.append([patient, pharmacy, day, cnk, "1", postcode, birth, sex, insurer])
    return [*rows, REPEAT]


def _number(text: str) -> float:
    """A number shown in English ("1,234", "0.08"); the empty cell of a hidden value: None."""
    text = text.replace(",", "").strip()
    return None if text == "" else float(text)


def _grid_row(browser, grid_id: str, row_id: str) -> dict[str, str]:
    """The displayed text of each cell of one row of a grid (scrolled into view first)."""
    from selenium.webdriver.support.ui import WebDriverWait

    script = """
        const api = dash_ag_grid.getApi(arguments[0]);
        const node = api.getRowNode(arguments[1]);
        if (!node) { return null; }
        api.ensureNodeVisible(node, 'middle');
        const row = document.querySelector(
            `#${arguments[0]} .ag-center-cols-container .ag-row[row-id='${arguments[1]}']`);
        if (!row) { return null; }
        return Object.fromEntries(Array.from(row.querySelectorAll('.ag-cell')).map(
            c => [c.getAttribute('col-id'), c.textContent.trim()]));
    """
    return WebDriverWait(browser, 10).until(
        lambda d: d.execute_script(script, grid_id, row_id) or None
    )


def _counts(browser, grid_id: str, row_id: str, columns: tuple[str, ...]) -> tuple:
    row = _grid_row(browser, grid_id, row_id)
    return tuple(_number(row[c]) for c in columns)


COUNTS = ("n_patients_initiated", "n_programmes", "n_in_progress", "n_completed", "n_stopped")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A dashboard served on the tiny hand-made export above: (url, warehouse)."""
    folder = tmp_path_factory.mktemp("regions")
    db = folder / "warehouse.duckdb"
    export = write_delimited(folder / "regions.csv", HEADER, _rows())
    assert cli_main(["--db", str(db), "load", str(export), "--no-progress"]) == 0
    process, url = start_server(db)
    yield url, db
    process.terminate()
    try:
        process.wait(timeout=10)
    except Exception:
        process.kill()


# --- the shared served warehouse ------------------------------------------------------------


@pytest.mark.parametrize("lang,title", [("fr", "Régions et patients"),
                                        ("nl", "Gewesten en patiënten"),
                                        ("en", "Regions and patients")])  # fmt: skip
def test_page_loads_in_each_language(served, browser, lang, title):
    open_page(browser, f"{served.url}/regions?lang={lang}", "regions-region-table")
    assert text_of(browser, "regions-title") == title
    assert text_of(browser, "nav-regions") == title
    assert "Statbel" in text_of(browser, "regions-population-source")
    assert console_errors(browser) == []


def test_regions_add_up_to_the_cli(served, browser):
    cohorts = json.loads(served.cli("cohorts", "--no-suppress").stdout)
    month = cohorts["as_of"][:7]
    done = served.cli("report", "--month", month, "--no-suppress")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    open_page(browser, f"{served.url}/regions?lang=en", "regions-region-table")
    rows = [
        _counts(browser, "regions-region-table", region, COUNTS)
        for region in ("BE-BRU", "BE-VLG", "BE-WAL", "unknown")
    ]
    patients, programmes, in_progress, completed, stopped = (
        sum(col) for col in zip(*rows, strict=True)
    )
    assert patients == report["schemes"]["total"]["patients_initiated_cumulative"]
    assert programmes == sum(c["programmes"] for c in cohorts["cohorts"])
    assert in_progress == sum(c["in_progress"] for c in cohorts["cohorts"])
    assert completed == sum(c["completed"] for c in cohorts["cohorts"])
    assert stopped == sum(c["stopped"] for c in cohorts["cohorts"])
    # Every pharmacy of the generated data has a Belgian postcode: nothing is unknown.
    assert rows[3] == (0, 0, 0, 0, 0)
    assert console_errors(browser) == []


# --- the tiny hand-made warehouse -------------------------------------------------------------


def test_regions_and_provinces_by_hand(tiny, browser):
    url, _ = tiny
    open_page(browser, f"{url}/regions?lang=en", "regions-region-table")
    grid = "regions-region-table"
    assert _counts(browser, grid, "BE-BRU", COUNTS) == (1, 2, 1, 0, 1)
    assert _counts(browser, grid, "BE-VLG", COUNTS) == (4, 4, 0, 1, 3)
    assert _counts(browser, grid, "BE-WAL", COUNTS) == (1, 1, 1, 0, 0)
    assert _counts(browser, grid, "unknown", COUNTS) == (1, 1, 0, 0, 1)
    # Per 100,000 adults (Statbel, 1 January 2023, 18-64 + 65 and over), summed by hand from
    # the districts: Brussels 804,889 + 161,548 = 966,437; Flanders: Antwerp 1,525,490,
    # Limburg 731,139, Flemish Brabant 943,856, West Flanders 1,000,644, East Flanders
    # 1,259,123 = 5,460,252; Wallonia 2,934,535. 1 x 100,000 / 966,437 = 0.10; 4 x 100,000 /
    # 5,460,252 = 0.07; 1 x 100,000 / 2,934,535 = 0.03.
    rate = ("patients_initiated_per_100000_adults", "adult_population")
    assert _counts(browser, grid, "BE-BRU", rate) == (0.1, 966437)
    assert _counts(browser, grid, "BE-VLG", rate) == (0.07, 5460252)
    assert _counts(browser, grid, "BE-WAL", rate) == (0.03, 2934535)
    assert _counts(browser, grid, "unknown", rate) == (None, None)
    patients = ("n_patients_initiated",)
    grid = "regions-province-table"
    for province, expected in (("BE-BRU", 1), ("BE-VAN", 2), ("BE-VOV", 2), ("BE-WLG", 1),
                               ("BE-VLI", 0), ("BE-WHT", 0), ("unknown", 1)):  # fmt: skip
        assert _counts(browser, grid, province, patients) == (expected,), province
    # Antwerp 2 x 100,000 / 1,525,490 = 0.13; East Flanders 2 x 100,000 / 1,259,123 = 0.16;
    # Liège (Liège + Eupen: 622,908 + 202,965 + 47,537 + 16,120 = 889,530) 1 -> 0.11.
    for province, expected in (("BE-VAN", (0.13, 1525490)), ("BE-VOV", (0.16, 1259123)),
                               ("BE-WLG", (0.11, 889530)), ("BE-VLI", (0, 731139)),
                               ("unknown", (None, None))):  # fmt: skip
        assert _counts(browser, grid, province, rate) == expected, province
    assert "Brussels-Capital 966,437" in text_of(browser, "regions-population-source")
    assert console_errors(browser) == []


def test_age_sex_and_insurer_by_hand(tiny, browser):
    url, _ = tiny
    open_page(browser, f"{url}/regions?lang=en", "regions-profile-table")
    expected = {
        "age_band:lt45": 1,
        "age_band:45-64": 2,
        "age_band:65-74": 1,
        "age_band:75-84": 1,
        "age_band:85+": 1,
        "age_band:unknown": 1,
        "sex:F": 4,
        "sex:M": 2,
        "sex:unknown": 1,
        "insurer:100": 2,
        "insurer:200": 1,
        "insurer:300": 2,
        "insurer:500": 1,
        "insurer:unknown": 1,
    }
    for row_id, n in expected.items():
        row = _grid_row(browser, "regions-profile-table", row_id)
        assert _number(row["n_patients_initiated"]) == n, row_id
    assert _grid_row(browser, "regions-profile-table", "insurer:100")["category"] == (
        "100 Christian mutual funds"
    )
    assert console_errors(browser) == []


def test_scheme_filter_from_the_url_and_the_control(tiny, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, _ = tiny
    open_page(browser, f"{url}/regions?lang=en&scheme=5", "regions-region-table")
    grid = "regions-region-table"
    assert _counts(browser, grid, "BE-BRU", COUNTS) == (0, 1, 1, 0, 0)
    assert _counts(browser, grid, "BE-VLG", COUNTS) == (2, 2, 0, 1, 1)
    traces = browser.execute_script(
        "return document.querySelector('#regions-rate-chart .js-plotly-plot').data"
        ".map(t => t.name);"
    )
    assert traces == ["5 steps"]
    # The control writes the scheme into the URL, and the page follows: 7 steps, Antwerp's
    # pat-33c and the unknown pharmacy's pat-66f.
    browser.find_element(By.CSS_SELECTOR, "#regions-scheme input[value='7']").click()
    WebDriverWait(browser, 10).until(lambda d: "scheme=7" in d.current_url)
    WebDriverWait(browser, 10).until(
        lambda d: _counts(d, grid, "BE-VLG", COUNTS) == (1, 1, 0, 0, 1)
    )
    assert "lang=en" in browser.current_url
    assert _counts(browser, grid, "unknown", COUNTS) == (1, 1, 0, 0, 1)
    browser.find_element(By.CSS_SELECTOR, "#regions-scheme input[value='all']").click()
    WebDriverWait(browser, 10).until(lambda d: "scheme=" not in d.current_url)
    WebDriverWait(browser, 10).until(
        lambda d: _counts(d, grid, "BE-VLG", COUNTS) == (4, 4, 0, 1, 3)
    )
    assert console_errors(browser) == []


def test_publication_view_suppresses_and_shows_no_ids(tiny, browser):
    url, _ = tiny
    open_page(browser, f"{url}/regions?lang=en&view=publication", "regions-region-table")
    assert text_of(browser, "regions-publication-note").startswith("Publication view")
    row = _grid_row(browser, "regions-region-table", "BE-VLG")
    assert [row[c] for c in COUNTS] == ["<5", "<5", "0", "<5", "<5"]
    assert row["patients_initiated_per_100000_adults"] == ""
    row = _grid_row(browser, "regions-profile-table", "age_band:45-64")
    assert row["n_patients_initiated"] == "<5"
    # Charts draw no suppressed value (their hover says "<5").
    for chart in ("regions-rate-chart", "regions-province-chart", "regions-age_band-chart"):
        data = browser.execute_script(
            "return document.querySelector(arguments[0]).data"
            ".map(t => ({y: Array.from(t.y), x: Array.from(t.x), text: t.customdata}));",
            f"#{chart} .js-plotly-plot",
        )
        values = [v for t in data for v in (t["x"] if chart.endswith("province-chart") else t["y"])]
        assert all(v in (None, 0) for v in values), chart
        assert any("<5" in text for t in data for text in t["text"]), chart
    source = browser.page_source
    assert not [p for p in [*PATIENTS, "pha-bxl", "pha-gent"] if p in source]
    assert console_errors(browser) == []


def test_report_agrees_on_the_tiny_warehouse(tiny, capsys):
    _, db = tiny
    assert cli_main(["--db", str(db), "report", "--month", "2025-06", "--no-suppress"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["as_of"] == "2025-06-30"
    # 1 (Brussels) + 4 (Flanders) + 1 (Wallonia) + 1 (unknown), as on the page.
    assert report["schemes"]["total"]["patients_initiated_cumulative"] == 7


# --- no browser ---------------------------------------------------------------------------


def test_postcode_rule(tmp_path):
    """Each postcode rule and range boundary, through the loader and the profile view."""
    cases = {
        "B-1300": "BE-WBR",
        "1299": "BE-BRU",
        "1499": "BE-WBR",
        "1500": "BE-VBR",
        "BE 3499": "BE-VBR",
        "3500": "BE-VLI",
        "6599": "BE-WHT",
        "6600": "BE-WLX",
        "7999": "BE-WHT",
        "8000": "BE-VWV",
        "9999": "BE-VOV",
        "999": "unknown",
        "12345": "unknown",
        "L-1000": "unknown",
    }
    rows = [
        [f"pat-{i}", f"pha-{i}", "2025-03-03", INIT10, "1", postcode, "", "", ""]
        for i, postcode in enumerate(cases)
    ]
    db = tmp_path / "w.duckdb"
    export = write_delimited(tmp_path / "p.csv", HEADER, rows)
    assert cli_main(["--db", str(db), "load", str(export), "--no-progress"]) == 0
    found = {
        r["pharmacy_postcode"]: r["province_code"]
        for r in query(db, "select pharmacy_postcode, province_code from core_programme_profiles")
    }
    assert found == cases


def test_an_export_without_profile_columns_says_so(tmp_path):
    """No birth year, sex, insurer or postcode column: a sentence instead of empty charts, and
    every programme counted in the unknown region."""
    from dashboard.app import create_app

    db = tmp_path / "w.duckdb"
    rows = [
        ["P1", "PH1", "03/03/2025", INIT5, "1", ""],
        ["P2", "PH2", "04/03/2025", INIT7, "1", ""],
    ]
    export = write_delimited(tmp_path / "a.csv", CANONICAL_HEADER, rows)
    assert cli_main(["--db", str(db), "load", str(export), "--no-progress"]) == 0
    app = create_app(db)
    entry = next(p for p in dash.page_registry.values() if p["path"] == "/regions")
    page = importlib.import_module(entry["module"])
    with app.server.test_request_context():
        layout = page.layout(lang="en")
    text = json.dumps(layout.to_plotly_json(), default=lambda c: c.to_plotly_json())
    for dimension in ("age_band", "sex", "insurer"):
        assert f'"regions-missing-{dimension}"' in text
        assert f'"regions-{dimension}-chart"' not in text
    assert "The export has no birth year column" in text
    unknown = query(
        db,
        "select n_patients_initiated from mart_programmes_by_region "
        "where region_code = 'unknown' and scheme = 'total'",
    )
    assert unknown == [{"n_patients_initiated": 2}]


def test_rate_per_100000_for_a_region_above_21475_patients(tmp_path):
    """21,475 × 100,000 no longer fits in a 32-bit integer: 30,000 patients in Brussels (found
    at ten times national volume) give 30,000 × 100,000 / 966,437 adults = 3,104.19."""
    rows = [
        [f"pat-{i}", "pha-1", "2025-03-03", INIT10, "1", "1000", "", "", ""] for i in range(30_000)
    ]
    db = tmp_path / "w.duckdb"
    export = write_delimited(tmp_path / "big.csv", HEADER, rows)
    assert cli_main(["--db", str(db), "load", str(export), "--no-progress"]) == 0
    rate = query(
        db,
        "select n_patients_initiated, patients_initiated_per_100000_adults "
        "from mart_programmes_by_region where region_code = 'BE-BRU' and scheme = 'total'",
    )
    assert rate == [
        {"n_patients_initiated": 30_000, "patients_initiated_per_100000_adults": 3104.19}
    ]
