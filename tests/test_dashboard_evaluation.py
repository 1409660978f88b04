"""SPEC §16 on the dashboard, in headless Chromium: the cumulative incidence on the outcomes page
and the funnel plot on the regions page, in French, Dutch and English, in both views.

The tiny export (as-of = the latest delivery, 2025-02-15), every programme 5 steps, started on
2025-01-06, one pharmacy per postcode:
- PHB (1000, Brussels-Capital): 5 completed (10-capsule steps on 01-06, 01-16, 01-26, 02-05,
  02-15: completed on day 40), 1 stopped (one step on 01-06, covered to 01-15, 01-15 + 30 days
  < 02-15: stopped, stop date day 9);
- PHF (2000, Antwerp, Flanders): 1 completed, 5 stopped;
- PHW (5000, Namur, Wallonia): 1 completed, 1 stopped;
- PHU (no postcode): 2 stopped.

By hand:
- Aalen–Johansen, 5 steps, nothing censored: day 9, 9 stops of 16 at risk: stop 9/16 = 0.5625,
  S = 7/16; day 40, 7 completions of the 7 left: completion 7/16 · 7/7 = 0.4375, S = 0. At 90
  (and 360) days: completion 43.8 %, stop 56.3 % (56.25 % rounded half-even by Babel: 56.2 %),
  equal to the naive rate 7 / 16.
- Funnel, completion by region: national 7/16 = 43.8 %; φ = 1.88 (worked in
  tests/test_funnel.py, test_funnel_by_region_worked_by_hand): limits widened; nobody outside
  99.8 %. Publication view: Wallonia (2 cases < 5) not plotted, 1 unit left out; pharmacies are
  not offered and their ids appear nowhere.
"""

from __future__ import annotations

import pytest

from bench.served import start_server
from etl.cli import main as cli_main
from tests.browser import console_errors, open_page, text_of
from tests.conftest import write_delimited

INIT5, RED10 = "5521950", "5521984"
HEADER = ["patient_id", "pharmacy_id", "delivery_date", "cnk", "quantity", "pharmacy_postcode"]
STEPS = ["06/01/2025", "16/01/2025", "26/01/2025", "05/02/2025", "15/02/2025"]
PLAN = {"PHB": ("1000", 5, 1), "PHF": ("2000", 1, 5), "PHW": ("5000", 1, 1), "PHU": ("", 0, 2)}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("evaluation-tiny")
    rows = []
    for pharmacy, (postcode, completed, stopped) in PLAN.items():
        for i in range(completed + stopped):
            patient = f"{pharmacy}-{i}"
            rows.append([patient, pharmacy, "06/01/2025", INIT5, "1", postcode])
            for day in STEPS if i < completed else STEPS[:1]:
                rows.append([patient, pharmacy, day, RED10, "1", postcode])
    export = write_delimited(folder / "export.csv", HEADER, rows)
    db = folder / "warehouse.duckdb"
    assert cli_main(["--db", str(db), "load", str(export), "--no-progress"]) == 0
    process, url = start_server(db)
    yield url
    process.terminate()
    try:
        process.wait(timeout=10)
    except Exception:
        process.kill()


def _traces(browser, graph_id: str) -> dict[str, dict]:
    data = browser.execute_script(
        "return document.querySelector(arguments[0]).data"
        ".map(t => ({name: t.name, x: Array.from(t.x), y: Array.from(t.y)}));",
        f"#{graph_id} .js-plotly-plot",
    )
    return {t["name"]: t for t in data}


def test_cumulative_incidence_by_hand(tiny, browser):
    open_page(browser, f"{tiny}/outcomes?lang=en", "outcomes-cif-table")
    for day in (90, 360):
        assert text_of(browser, f"outcomes-cif-5-completion-{day}").startswith("43.8% (")
        assert text_of(browser, f"outcomes-cif-5-stop-{day}").startswith("56.2% (")
    assert text_of(browser, "outcomes-cif-10-completion-90") == "—"
    curve = _traces(browser, "outcomes-cif-chart")["5 steps — completion"]
    by_day = dict(zip(curve["x"], curve["y"], strict=True))
    assert (by_day[0], by_day[30], by_day[40], by_day[360]) == (0, 0, 0.4375, 0.4375)
    assert "Naive rates" in text_of(browser, "outcomes-naive-note")
    assert console_errors(browser) == []


@pytest.mark.parametrize(
    "lang,title,phi",
    [
        ("fr", "Graphique en entonnoir", "Facteur de surdispersion φ = 1,88 : limites élargies"),
        ("nl", "Trechterdiagram", "Overdispersiefactor φ = 1,88: grenzen verbreed"),
        ("en", "Funnel plot", "Overdispersion factor φ = 1.88: limits widened"),
    ],
)
def test_funnel_in_three_languages_both_views(tiny, browser, lang, title, phi):
    open_page(browser, f"{tiny}/regions?lang={lang}", "regions-funnel-chart")
    page = browser.page_source
    assert title in page
    assert text_of(browser, "regions-funnel-phi").startswith(phi)
    points = [t for t in _traces(browser, "regions-funnel-chart").values() if t["x"] == [6, 6, 2]]
    assert len(points) == 1 and points[0]["y"] == pytest.approx([5 / 6, 1 / 6, 0.5], abs=1e-4)
    assert "regions-funnel-by" in page and 'value="pharmacy"' in page
    assert console_errors(browser) == []

    open_page(
        browser,
        f"{tiny}/regions?lang={lang}&view=publication&funnel_by=pharmacy",
        "regions-funnel-chart",
    )
    page = browser.page_source
    assert title in page
    assert 'value="pharmacy"' not in page  # pharmacies: the analysts' view only
    assert not [ph for ph in PLAN if ph in page]
    assert text_of(browser, "regions-funnel-not-shown").startswith("1 ")
    shown = [t for t in _traces(browser, "regions-funnel-chart").values() if t["x"] == [6, 6]]
    assert len(shown) == 1
    assert console_errors(browser) == []


def test_funnel_by_pharmacy_and_measure_in_the_url(tiny, browser):
    """Analysts' view, early delivery by pharmacy: 44 reduction steps, none early (10-capsule
    steps exactly 10 days apart): national 0 %, no unit outside."""
    open_page(
        browser,
        f"{tiny}/regions?lang=en&funnel_measure=early_delivery&funnel_by=pharmacy",
        "regions-funnel-chart",
    )
    assert text_of(browser, "regions-funnel-outside") == "No unit outside the 99.8 % limits."
    names = {t["name"] for t in _traces(browser, "regions-funnel-chart").values()}
    assert "Pharmacies (pseudonymised)" in names
    assert console_errors(browser) == []
