"""No English on a French or Dutch screen (issue 18), checked in headless Chromium.

How: every page (both views), the 404 page, the open date picker, a grid's open filter and a
chart's toolbar are read as the reader meets them: every visible text node, and the title,
aria-label, placeholder, alt and Plotly data-title attributes of every element (what a screen
reader reads out or a tooltip shows) — tests/browser.py's page_texts. Each text is cut into
words, and a word of ENGLISH fails the test.

Why a word list rather than a catalogue-coverage check: most of a page is not catalogue text
(figures, dates, registry labels and definitions, Babel's month names, ag-grid's, Plotly's and
Dash's own words, data), and the English that slips through comes precisely from outside the
catalogues. So ENGLISH holds words an English sentence or widget cannot do without (function
words, the words of toolbars, grids, pickers and error pages, month and day names, the domain's
English terms), minus every word that is also French or Dutch (ALSO_FR_NL: "page", "filter",
"date", "total", "programme", "interview", "april", "over"...), so a hit is English for sure.
Identifiers are not words of either language and are left out: text in <code>/<pre>, tokens
with an underscore or a file extension (patients_initiated, export_2025-06.csv), command-line
options and commands ("--load", "benzo-monitor load") and configuration sections ("[fees]").
The list catches a whole untranslated sentence or button, which is what a reader meets; a
lone English word that is also French or Dutch would pass.
"""

from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.browser import console_errors, open_page, page_texts, wait_for

ENGLISH = set(
    """
    the and with without from which this that these those there where when while what who
    whose not are were been being has have having does did doing done should would could must
    for into onto under after before above below between through during about against than
    rows row column columns search select selected loading loaded load download downloads
    upload uploaded files click press enter hide close clear next previous first more less
    equal equals contains begins ends blank blanks apply reset cancel ascending descending
    tooltip input value autoscale snapshot share closest hover chart axis
    month months day days year years week weeks today yesterday tomorrow
    january february march may june july august october
    monday tuesday wednesday thursday friday saturday sunday
    program programs scheme schemes step steps reduction initiated completed stopped
    delivered delivery deliveries fees fee billed billing estimated flagged rule rules
    finding findings warning error errors missing required found headers header refused
    rejected reason reasons example examples unknown invalid number numbers rates
    sorry back home using used mapping decrease increase
    """.split()
)
# Also French or Dutch words (or names): a hit would prove nothing. Kept here so the list above
# can be read as English and checked against it.
ALSO_FR_NL = set(
    """
    page filter menu total date type rate box plot pan is was in of op over on net want die
    programme programmes patient patients stabilisation initiation lasso zoom axes interview
    interviews active open help use file sort last show april september november december
    compare
    """.split()
)
ENGLISH -= ALSO_FR_NL
IDENTIFIERS = re.compile(
    r"\S*_\S*|\S+\.(?:csv|gz|xlsx|parquet|toml|json|md|duckdb)\b|--[\w-]+"
    r"|benzo-monitor(?:\s+[a-z]+)?|\[\w+\]"
)
WORD = re.compile(r"[^\W\d_]+")
PAGES = (
    ("/", "state-cards"),
    ("/outcomes", "outcomes-cohort-grid"),
    ("/fees", "fees-table"),
    ("/compliance", "compliance-summary"),
    ("/regions", "regions-region-table"),
    ("/data", "data-ledger"),
    ("/methodology", "methodology-metrics"),
)


def english_words(text: str) -> list[str]:
    """The words of ENGLISH in `text`, identifiers left out."""
    words = {w.lower() for w in WORD.findall(IDENTIFIERS.sub(" ", text))}
    return sorted(words & ENGLISH)


def test_the_word_list_finds_english_and_only_english():
    """The checker itself, on sentences the dashboard once showed (issue 18) and on their
    French and Dutch versions."""
    assert english_words("Download plot as a PNG") == ["download"]
    assert english_words("1 to 50 of 1,419") == []  # numbers: checked by the separators test
    assert english_words("Page Size:") == []  # "page" is French too: the grid test sees it
    assert english_words("CNK is not 1 to 7 digits: 55219X0") == ["not"]
    assert english_words("Use --mapping FILE to name other headers.") == ["headers"]
    assert english_words("404 - Page not found") == ["found", "not"]
    assert english_words("October") == ["october"]
    assert english_words("Télécharger le graphique en PNG") == []
    assert english_words("Grafiek downloaden als PNG") == []
    assert english_words("patients_initiated, export_2025-06.csv, --load, [fees]") == []
    assert english_words("benzo-monitor rejects --load <chargement>") == []
    assert english_words("Le tableau compare chacun des 12 derniers mois") == []


def _english_on(driver, where: str) -> list[str]:
    found = []
    for kind, tag, text in page_texts(driver):
        words = english_words(text)
        if words:
            found.append(f"{where}: {kind} <{tag}> {text[:120]!r} -> {words}")
    return found


def _open_any_page(driver, url: str, path: str):
    """Open a page: by its known ready element, or (a page added since) by its heading."""
    from selenium.webdriver.support.ui import WebDriverWait

    ready = dict(PAGES).get(path)
    if ready:
        open_page(driver, url, ready, timeout=60)
        return
    driver.get(url)
    WebDriverWait(driver, 60).until(
        lambda d: (
            d.find_elements(By.CSS_SELECTOR, "#_pages_content h1, #_pages_content h2")
            and not d.find_elements(By.CSS_SELECTOR, "[data-dash-is-loading='true']")
        )
    )
    time.sleep(1)


@pytest.mark.parametrize("lang", ["fr", "nl"])
def test_no_english_on_any_page(served, browser, lang):
    """Every page of the navigation (PAGES, and any page added since), in both views, and the
    page of an unknown address."""
    open_page(browser, f"{served.url}/?lang={lang}", "state-cards", timeout=60)
    paths = [
        urlsplit(a.get_attribute("href")).path
        for a in browser.find_elements(By.CSS_SELECTOR, "#app-nav a")
    ]
    assert set(dict(PAGES)) <= set(paths)
    english: list[str] = []
    for view in ("analyst", "publication"):
        query = f"lang={lang}" + ("&view=publication" if view == "publication" else "")
        for path in paths:
            _open_any_page(browser, f"{served.url}{path}?{query}", path)
            english += _english_on(browser, f"{path} ({view})")
    browser.get(f"{served.url}/no-such-page?lang={lang}")
    wait_for(browser, "not-found-title", timeout=30)
    english += _english_on(browser, "404")
    assert english == []
    assert console_errors(browser) == []


@pytest.mark.parametrize("lang", ["fr", "nl"])
def test_the_picker_the_toolbar_and_a_grid_speak_the_language(served, browser, lang):
    """The widgets Dash, Plotly and ag-grid draw themselves: the open date picker (its month
    and weekday names from Babel: Monday first, "lu ma me je ve sa di" / "ma di wo do vr za
    zo"), a chart's toolbar under the pointer, a grid's open column filter and its paging."""
    open_page(browser, f"{served.url}/?lang={lang}", "state-cards", timeout=60)
    # Beside the cards, why their figures matter (the registry's `why`), in the language.
    why = browser.find_element(By.ID, "state-why-programmes_completed").text
    assert why.startswith({"fr": "Les patients arrivés au dernier palier de diminution",
                           "nl": "Patiënten die de laatste afbouwstap"}[lang])  # fmt: skip
    chart = browser.find_element(By.CSS_SELECTOR, "#state-trend .js-plotly-plot, .js-plotly-plot")
    ActionChains(browser).move_to_element(chart).perform()
    button = chart.find_element(By.CSS_SELECTOR, ".modebar-btn")
    ActionChains(browser).move_to_element(button).perform()
    expected_png = {"fr": "Télécharger le graphique en PNG", "nl": "Grafiek downloaden als PNG"}
    assert button.get_attribute("data-title") == expected_png[lang]
    # The date picker, open.
    browser.find_element(By.CSS_SELECTOR, "#app-as-of input, #app-as-of").click()
    time.sleep(1)
    texts = page_texts(browser)
    weekdays = {"fr": ["lu", "ma", "me", "je", "ve", "sa", "di"],
                "nl": ["ma", "di", "wo", "do", "vr", "za", "zo"]}[lang]  # fmt: skip
    shown = [text.lower() for kind, _, text in texts if kind == "text" and len(text) == 2]
    assert shown[:7] == weekdays
    english = _english_on(browser, "/ (picker open)")
    labels = {text for kind, _, text in texts if kind == "aria-label"}
    assert {"fr": "Mois suivant", "nl": "Volgende maand"}[lang] in labels
    # The year box holds the whole year (it cut its last digit).
    year = browser.find_element(By.CSS_SELECTOR, ".dash-datepicker-controls .dash-input input")
    assert browser.execute_script("return arguments[0].scrollWidth", year) <= int(
        year.get_attribute("clientWidth")
    )
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    # A grid with paging, its first column's filter open.
    open_page(browser, f"{served.url}/data?lang={lang}", "data-ledger", timeout=60)
    paging = browser.find_element(By.CSS_SELECTOR, "#data-ledger .ag-paging-row-summary-panel")
    # "1 à 29 sur 29" / "1 tot 29 van 29": the grid's own words, from the catalogues.
    assert {"fr": " à ", "nl": " tot "}[lang] in paging.text
    icons = browser.find_elements(
        By.CSS_SELECTOR,
        "#data-ledger .ag-header-cell-filter-button, #data-ledger .ag-header-cell-menu-button",
    )
    assert icons
    browser.execute_script("arguments[0].click();", icons[0])
    time.sleep(1)
    assert browser.find_elements(By.CSS_SELECTOR, ".ag-popup .ag-filter, .ag-popup .ag-menu")
    english += _english_on(browser, "/data (filter open)")
    assert english == []
    assert console_errors(browser) == []


def test_grid_numbers_use_belgian_separators():
    """ag-grid writes its paging counts with localeText's separators: Babel's for fr-BE (a
    narrow no-break space, U+202F) and nl-BE (a full stop): "1 à 50 sur 1 419"."""
    from dashboard.locale import grid_locale_text

    assert grid_locale_text("fr")["thousandSeparator"] == "\u202f"
    assert grid_locale_text("fr")["decimalSeparator"] == ","
    assert grid_locale_text("nl")["thousandSeparator"] == "."
    assert grid_locale_text("nl")["decimalSeparator"] == ","
    assert grid_locale_text("en")["thousandSeparator"] == ","
    assert grid_locale_text("fr")["to"] == "à" and grid_locale_text("nl")["of"] == "van"


def test_an_upload_refusal_says_what_a_web_user_can_do(db, tmp_path):
    """The loader's refusal of a file without the required columns ("... Use --mapping FILE",
    a command-line option) becomes, on the dashboard, the reason and what to do in the
    reader's language: rename the columns in a copy, or ask an analyst to load it with a
    mapping. The file (headers a, b) lacks every required column of SPEC §3."""
    import importlib

    import dash

    from dashboard.app import create_app
    from etl.base.config import load_config
    from etl.base.warehouse import connect
    from etl.ingest.load import load_paths
    from tests.conftest import write_delimited

    app = create_app(db)
    entry = next(p for p in dash.page_registry.values() if p["path"] == "/data")
    page = importlib.import_module(entry["module"])
    broken = write_delimited(tmp_path / "broken.csv", ["a", "b"], [["1", "2"]])
    con = connect(db, config=load_config())
    try:
        (outcome,) = load_paths(con, [broken])
    finally:
        con.close()
    assert "Use --mapping FILE" in outcome.refused  # the command line's message, unchanged
    with app.server.test_request_context():
        french = page.refusal_message(outcome, "broken.csv", "fr")
        dutch = page.refusal_message(outcome, "broken.csv", "nl")
    assert french.startswith(
        "broken.csv : colonnes obligatoires absentes : patient_id, pharmacy_id, delivery_date, cnk"
    )
    assert "En-têtes trouvés : 'a', 'b'." in french
    assert "Renommez ces colonnes dans une copie de l'export" in french
    assert dutch.startswith("broken.csv: verplichte kolommen ontbreken: patient_id")
    assert "Use --mapping FILE" not in french + dutch
    assert english_words(french) == [] and english_words(dutch) == []


@pytest.mark.parametrize("lang", ["fr", "nl"])
def test_insurers_by_name_and_province_names_not_cut(served, browser, lang):
    """The insurer chart names the insurers (INAMI-RIZIV's codes 100-900 with their name,
    from the catalogues) and no province name on the province chart is cut: every tick label
    lies inside the chart's drawing (the margin grows with the longest name)."""
    open_page(browser, f"{served.url}/regions?lang={lang}", "regions-province-chart", timeout=60)
    categories = browser.execute_script(
        "const p = document.querySelector('#regions-insurer-chart .js-plotly-plot');"
        "return p.data.flatMap(t => t.x);"
    )
    name = {"fr": "100 Mutualités chrétiennes", "nl": "100 Christelijke Mutualiteiten"}[lang]
    assert name in categories
    assert "100" not in categories
    cut = browser.execute_script(
        """
        const plot = document.querySelector('#regions-province-chart .js-plotly-plot');
        const box = plot.getBoundingClientRect();
        return [...plot.querySelectorAll('.ytick text')]
          .filter(t => t.getBoundingClientRect().left < box.left - 0.5)
          .map(t => t.textContent);
        """
    )
    labels = browser.execute_script(
        "return [...document.querySelectorAll('#regions-province-chart .ytick text')]"
        ".map(t => t.textContent);"
    )
    assert {"fr": "Brabant wallon", "nl": "Waals-Brabant"}[lang] in labels
    assert cut == []
