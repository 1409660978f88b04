"""The outcomes page in headless Chromium: cohort rates, steps reached, time to completion and
the share completed over time since initiation.

Cohort figures are checked against `benzo-monitor cohorts --no-suppress` on the shared served
warehouse; the other three views against a tiny hand-made export, worked out by hand below.

The tiny export (5-step and 10-step schemes; as-of = the latest delivery, 2024-06-21):
- PAT-ALPHA (5 steps, PHARM-ONE): initiation and 10-capsule steps on 01-01, 01-11, 01-21,
  01-31 and 02-10 2024, a follow-up interview on 02-20: completed on 02-10, 40 days after its
  start. Started 172 days before the as-of date.
- PAT-BRAVO (5 steps): initiation and steps on 01-05 and 01-15, then nothing: covered to 01-24,
  stopped after 2 steps. Started 168 days before the as-of date.
- PAT-CHARLIE (5 steps, PHARM-TWO): 20-capsule steps on 03-01, 03-21, 04-10, 04-30, 05-20:
  completed on 05-20, 80 days after its start (31 + 30 + 19). Started 112 days before.
- PAT-DELTA (10 steps): 10-capsule steps on 06-01, 06-11, 06-21: in progress. Started 20 days
  before the as-of date.

By hand:
- steps reached, 5 steps (3 programmes): step 1: 3 (100 %), step 2: 3 (100 %), steps 3-5: 2
  (66.7 %), none in progress; 10 steps (1 programme): steps 1-3: 1 (100 %, 1 in progress),
  steps 4-10: 0 (0 %).
- time to completion, 5 steps: 40 and 80 days: n = 2, quartiles by linear interpolation 50, 60,
  70; 10 steps: none completed.
- share completed within d days, 5 steps: d = 0..30: 0/3; d = 40..110: ALPHA (40 days) of the
  3 (CHARLIE observed 112 days), then CHARLIE too from d = 80: 1/3 at d = 40..70, 2/3 at
  d = 80..110; d = 120..160: ALPHA and BRAVO observed: 1/2; d = 170: ALPHA only: 1/1; from
  d = 180 nobody observed: no point. 10 steps: d = 0, 10, 20: 0/1, then no point.
- publication view: every count is 1-4 ("<5") and every denominator below 5 (rates hidden).
"""

from __future__ import annotations

import json

import pytest

from bench.served import start_server
from etl.cli import main as cli_main
from tests.browser import console_errors, open_page, text_of, wait_for_text
from tests.conftest import write_delimited

INIT5, INIT10 = "5521950", "5521976"
RED10, RED20, FOLLOW = "5521984", "5521992", "5522024"
HEADER = ["patient_id", "pharmacy_id", "delivery_date", "cnk", "quantity"]


def _number(text: str) -> int:
    """A displayed whole number in any of the three locales ("1 234", "1.234", "1,234")."""
    return int("".join(ch for ch in text if ch.isdigit() or ch == "-"))


def _same_rate(shown: str, rate: float | None) -> bool:
    """Does a rate shown in English with one decimal ("66.7%", "" when null) round `rate`?"""
    if rate is None:
        return shown == ""
    return abs(float(shown.removesuffix("%")) / 100 - rate) <= 0.0005 + 1e-9


def _traces(browser, graph_id: str) -> dict[str, dict]:
    """The plotted traces of a dcc.Graph by name: {"x": [...], "y": [...]}."""
    data = browser.execute_script(
        "return document.querySelector(arguments[0]).data"
        ".map(t => ({name: t.name, x: Array.from(t.x), y: Array.from(t.y)}));",
        f"#{graph_id} .js-plotly-plot",
    )
    return {t["name"]: t for t in data}


def _grid_row(browser, row_id: str) -> dict[str, str]:
    """The displayed cells of one row of the cohort grid (scrolled into view first)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.execute_script(
        "const api = dash_ag_grid.getApi('outcomes-cohort-grid');"
        "api.ensureNodeVisible(api.getRowNode(arguments[0]), 'middle');",
        row_id,
    )
    selector = f".ag-center-cols-container .ag-row[row-id='{row_id}'] .ag-cell"
    cells = WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, selector))
    return {c.get_attribute("col-id"): c.text.strip() for c in cells}


# --- the shared served warehouse ------------------------------------------------------------


@pytest.fixture(scope="module")
def cohorts(served) -> list[dict]:
    """`benzo-monitor cohorts --no-suppress` on the served warehouse (run once)."""
    done = served.cli("cohorts", "--no-suppress")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["cohorts"]


@pytest.mark.parametrize("lang,title", [("fr", "Résultats des programmes"),
                                        ("nl", "Resultaten van de programma's"),
                                        ("en", "Programme outcomes")])  # fmt: skip
def test_page_loads_in_each_language(served, browser, lang, title):
    open_page(browser, f"{served.url}/outcomes?lang={lang}", "outcomes-cohort-grid")
    assert text_of(browser, "outcomes-title") == title
    assert text_of(browser, "nav-outcomes") == title
    assert console_errors(browser) == []


def test_cohort_figures_equal_the_cli(served, browser, cohorts):
    by_cohort = {(c["initiation_month"], c["scheme"]): c for c in cohorts}
    open_page(browser, f"{served.url}/outcomes?lang=en", "outcomes-cohort-grid")
    for month, scheme in (("2024-06", "10"), ("2025-05", "5"), ("2023-09", "7")):
        expected = by_cohort[(month, scheme)]
        shown = _grid_row(browser, f"{month}-{scheme}")
        assert shown["initiation_month"] == month
        assert shown["scheme"] == f"{scheme} steps"
        for key in ("programmes", "completed", "stopped", "in_progress"):
            assert _number(shown[key]) == expected[key], (month, scheme, key)
        for key in ("completion_rate", "stabilisation_rate", "follow_up_rate"):
            assert _same_rate(shown[key], expected[key]), (month, scheme, key, shown[key])
    assert console_errors(browser) == []


def test_rate_from_the_url_and_the_rate_control(served, browser, cohorts):
    from selenium.webdriver.common.by import By

    open_page(browser, f"{served.url}/outcomes?lang=en&rate=stabilisation", "outcomes-cohort-chart")
    checked = browser.find_element(By.CSS_SELECTOR, "#outcomes-rate input:checked")
    assert checked.get_attribute("value") == "stabilisation"
    line = _traces(browser, "outcomes-cohort-chart")["10 steps"]
    assert line["y"] == [c["stabilisation_rate"] for c in cohorts if c["scheme"] == "10"]
    # The control writes the rate into the URL, and the chart follows.
    browser.find_element(By.CSS_SELECTOR, "#outcomes-rate input[value='follow_up']").click()
    wait_for_text(browser, "outcomes-cohort-chart", "Follow-up interview rate")
    assert "rate=follow_up" in browser.current_url and "lang=en" in browser.current_url
    line = _traces(browser, "outcomes-cohort-chart")["5 steps"]
    assert line["y"] == [c["follow_up_rate"] for c in cohorts if c["scheme"] == "5"]
    assert console_errors(browser) == []


def test_scheme_from_the_url_funnel_ends_at_completion(served, browser, cohorts):
    # Reaching the scheme's last step is completion: the funnel's last step is the scheme's
    # completed programmes, and its first bar the programmes started, summed over cohorts.
    open_page(browser, f"{served.url}/outcomes?lang=en&scheme=7", "outcomes-funnel-table")
    completed = sum(c["completed"] for c in cohorts if c["scheme"] == "7")
    started = sum(c["programmes"] for c in cohorts if c["scheme"] == "7")
    assert _number(text_of(browser, "outcomes-funnel-7-n")) == completed
    assert "outcomes-funnel-8-n" not in browser.page_source
    bars = _traces(browser, "outcomes-funnel")["7 steps"]
    assert bars["y"][0] == started and bars["y"][-1] == completed
    assert console_errors(browser) == []


# --- a tiny hand-made warehouse -------------------------------------------------------------


def _programme(patient, pharmacy, initiation, steps, dates):
    rows = [[patient, pharmacy, dates[0], initiation, "1"]]
    return rows + [
        [patient, pharmacy, day, cnk, "1"] for day, cnk in zip(dates, steps, strict=True)
    ]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("outcomes-tiny")
    rows = (
        _programme("PAT-ALPHA", "PHARM-ONE", INIT5, [RED10] * 5,
                   ["01/01/2024", "11/01/2024", "21/01/2024", "31/01/2024", "10/02/2024"])
        + [["PAT-ALPHA", "PHARM-ONE", "20/02/2024", FOLLOW, "1"]]
        + _programme("PAT-BRAVO", "PHARM-ONE", INIT5, [RED10] * 2, ["05/01/2024", "15/01/2024"])
        + _programme("PAT-CHARLIE", "PHARM-TWO", INIT5, [RED20] * 5,
                     ["01/03/2024", "21/03/2024", "10/04/2024", "30/04/2024", "20/05/2024"])
        + _programme("PAT-DELTA", "PHARM-TWO", INIT10, [RED10] * 3,
                     ["01/06/2024", "11/06/2024", "21/06/2024"])
    )  # fmt: skip
    export = write_delimited(folder / "export.csv", HEADER, rows)
    db = folder / "warehouse.duckdb"
    # What the `cli` fixture runs (a module-scoped fixture cannot use it): benzo-monitor load.
    assert cli_main(["--db", str(db), "load", str(export), "--no-progress"]) == 0
    process, url = start_server(db)
    yield url
    process.terminate()
    try:
        process.wait(timeout=10)
    except Exception:
        process.kill()


def test_tiny_steps_time_and_curve_by_hand(tiny, browser):
    open_page(browser, f"{tiny}/outcomes?lang=en&scheme=5", "outcomes-funnel-table")
    assert text_of(browser, "outcomes-as-of") == "Data as of 21 June 2024"
    for step, n, share in ((1, 3, "100.0%"), (2, 3, "100.0%"), (3, 2, "66.7%"), (4, 2, "66.7%"),
                           (5, 2, "66.7%")):  # fmt: skip
        assert text_of(browser, f"outcomes-funnel-{step}-n") == str(n)
        assert text_of(browser, f"outcomes-funnel-{step}-in-progress") == "0"
        assert text_of(browser, f"outcomes-funnel-{step}-share") == share
    assert "completed" in browser.find_element("xpath", "//tr[th[starts-with(., 'Step 5')]]").text
    assert _traces(browser, "outcomes-funnel")["5 steps"]["y"] == [3, 3, 3, 2, 2, 2]
    # Time from initiation to completion: 40 and 80 days.
    assert text_of(browser, "outcomes-ttc-5-n") == "2"
    assert text_of(browser, "outcomes-ttc-5-p25_days") == "50.0"
    assert text_of(browser, "outcomes-ttc-5-median_days") == "60.0"
    assert text_of(browser, "outcomes-ttc-5-p75_days") == "70.0"
    assert text_of(browser, "outcomes-ttc-10-n") == "0"
    assert text_of(browser, "outcomes-ttc-10-median_days") == "—"
    bins = _traces(browser, "outcomes-ttc-chart")["5 steps"]
    assert (bins["x"], bins["y"]) == ([45, 85], [1, 1])  # bins 40-49 and 80-89 days
    # Share completed within d days of the start.
    curve = _traces(browser, "outcomes-curve")
    five = dict(zip(curve["5 steps"]["x"], curve["5 steps"]["y"], strict=True))
    expected = {0: 0, 10: 0, 20: 0, 30: 0, 40: 0.3333, 70: 0.3333, 80: 0.6667, 110: 0.6667,
                120: 0.5, 160: 0.5, 170: 1, 180: None, 360: None}  # fmt: skip
    assert {d: five[d] for d in expected} == expected
    assert list(five) == list(range(0, 361, 10))
    ten = dict(zip(curve["10 steps"]["x"], curve["10 steps"]["y"], strict=True))
    assert [ten[d] for d in (0, 10, 20, 30)] == [0, 0, 0, None]
    assert console_errors(browser) == []


def test_tiny_scheme_control_writes_the_url(tiny, browser):
    from selenium.webdriver.common.by import By

    open_page(browser, f"{tiny}/outcomes?lang=en", "outcomes-funnel-table")
    # Default scheme: 10 steps; PAT-DELTA reached steps 1 to 3 and is in progress.
    assert [text_of(browser, f"outcomes-funnel-{k}-n") for k in (1, 3, 4, 10)] == list("1100")
    assert text_of(browser, "outcomes-funnel-3-in-progress") == "1"
    assert text_of(browser, "outcomes-funnel-4-share") == "0.0%"
    browser.find_element(By.CSS_SELECTOR, "#outcomes-scheme input[value='5']").click()
    wait_for_text(browser, "outcomes-funnel-3-share", "66.7%")
    assert "scheme=5" in browser.current_url
    assert "outcomes-funnel-6-n" not in browser.page_source
    assert console_errors(browser) == []


def test_tiny_publication_view_suppresses(tiny, browser):
    open_page(browser, f"{tiny}/outcomes?lang=en&view=publication&scheme=5", "outcomes-funnel")
    assert text_of(browser, "outcomes-publication-note").startswith("Publication view")
    for step in range(1, 6):
        assert text_of(browser, f"outcomes-funnel-{step}-n") == "<5"
        assert text_of(browser, f"outcomes-funnel-{step}-share") == "—"
    assert text_of(browser, "outcomes-ttc-5-n") == "<5"
    assert text_of(browser, "outcomes-ttc-5-median_days") == "—"
    row = _grid_row(browser, "2024-01-5")
    assert (row["programmes"], row["completed"], row["stopped"]) == ("<5", "<5", "<5")
    assert row["completion_rate"] == row["follow_up_rate"] == ""
    # Nothing suppressed is plotted.
    for graph in ("outcomes-cohort-chart", "outcomes-curve", "outcomes-funnel",
                  "outcomes-ttc-chart"):  # fmt: skip
        for name, trace in _traces(browser, graph).items():
            # The mark of a masked value (ui.mark_suppressed) sits at the end of what is drawn:
            # 0 here, where every count is masked; it says "<5", never the count.
            drawn = [0] if name == "Masked value (<5 or x)" else [None]
            assert all(y in drawn for y in trace["y"]), (graph, name)
    page = browser.page_source
    assert not [name for name in ("PAT-", "PHARM-") if name in page]
    assert console_errors(browser) == []
