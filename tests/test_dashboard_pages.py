"""Every page, in every language and in the publication view, in headless Chromium: it loads,
shows its title in the reader's language, keeps the view state in its links, logs no console
error, and answers in well under a second."""

from __future__ import annotations

import json
import time

import pytest

from bench.served import render_page
from tests.browser import console_errors, open_page, text_of

# path -> (id prefix, title in fr, nl, en): spelled out, so a missing page or word fails here.
PAGES = {
    "/": (
        "state",
        "État des lieux mensuel",
        "Maandelijkse stand van zaken",
        "Monthly state of play",
    ),
    "/outcomes": ("outcomes", "Résultats", "Resultaten", "outcomes"),
    "/fees": ("fees", "Honoraires", "Honoraria", "Fees"),
    "/actuarial": ("actuarial", "Revue actuarielle", "Actuariële analyse", "Actuarial review"),
    "/compliance": ("compliance", "Conformité", "Naleving", "Compliance"),
    "/regions": ("regions", "Régions", "Gewesten", "Regions"),
    "/data": ("data", "Données", "Gegevens", "Data"),
    "/methodology": ("methodology", "Méthodologie", "Methodologie", "Methodology"),
}
LANGS = ("fr", "nl", "en")


def _nav_links(browser) -> list[str]:
    """The navigation's links, once the shell has drawn them (it answers after the page)."""
    from selenium.webdriver.support.ui import WebDriverWait

    def drawn(driver):
        hrefs = [
            a.get_attribute("href") for a in driver.find_elements("css selector", "#app-nav a")
        ]
        return hrefs if len(hrefs) == len(PAGES) else False

    try:
        return WebDriverWait(browser, 10).until(drawn)
    except Exception:
        return [
            a.get_attribute("href") for a in browser.find_elements("css selector", "#app-nav a")
        ]


@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize("lang", LANGS)
def test_each_page_in_each_language(served, browser, path, lang):
    prefix, *titles = PAGES[path]
    open_page(browser, f"{served.url}{path}?lang={lang}", f"{prefix}-title")
    assert titles[LANGS.index(lang)].lower() in text_of(browser, f"{prefix}-title").lower()
    # The navigation keeps the language: every page's link carries lang=<lang>.
    links = _nav_links(browser)
    assert len(links) == len(PAGES)
    assert all(f"lang={lang}" in href for href in links)
    assert console_errors(browser) == []


@pytest.mark.parametrize("path", PAGES)
def test_each_page_in_the_publication_view(served, browser, path):
    prefix = PAGES[path][0]
    open_page(browser, f"{served.url}{path}?lang=en&view=publication", f"{prefix}-title")
    links = _nav_links(browser)
    assert len(links) == len(PAGES)
    assert all("view=publication" in href for href in links)
    assert console_errors(browser) == []


@pytest.fixture(scope="module")
def reviewed(served):
    """The served snapshot's actuarial review computed: the first request of a snapshot starts
    it in the background (dashboard/actuarial.py), where it keeps the cores busy for a while;
    the timings below are those of pages answering afterwards."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status, answer = render_page(served.url, "/actuarial", "?lang=fr")
        if status == 200 and "actuarial-pending" not in json.dumps(answer):
            return
        time.sleep(2)
    pytest.fail("the actuarial review was not computed in 10 minutes")


@pytest.mark.parametrize("path", PAGES)
def test_each_page_answers_in_well_under_a_second(served, reviewed, path):
    render_page(served.url, path, "?lang=fr")  # the first answer opens the snapshot
    timings = []
    for lang in LANGS:
        start = time.perf_counter()
        status, _ = render_page(served.url, path, f"?lang={lang}")
        timings.append(time.perf_counter() - start)
        assert status == 200
    assert max(timings) < 0.5, timings
